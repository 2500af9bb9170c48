// SPI NOR flash: the JEDEC table (data, like openFPGALoader's), the command set the tools use, and
// the slot layouts of the configuration flash.

/// One flash part the tools can program.
public struct FlashPart: Sendable, Equatable, Codable {
    public var name: String
    /// RDID bytes 0-2: manufacturer, memory type, capacity.
    public var jedec: [UInt8]
    public var sizeBytes: Int
    /// The erase unit the flasher uses (its opcode: `eraseOpcode`).
    public var sectorBytes: Int
    public var pageBytes: Int
    /// Typical page program and sector erase times from the datasheet, seconds.
    public var pageProgramSeconds: Double
    public var sectorEraseSeconds: Double
    public var maxPageProgramSeconds: Double
    public var maxSectorEraseSeconds: Double
    /// Read clock limit of READ 0x03 / 0x13.
    public var maxReadHz: Int
    /// Erase opcode for `sectorBytes` with a 3-byte address (0xD8: 256 KiB sector on the S25FL-S,
    /// 64 KiB block on the W25Q).
    public var eraseOpcode: UInt8 = FlashCommand.sectorErase

    /// Parts over 16 MiB cannot be addressed with 3 address bytes: a 3-byte READ/PP/SE there reaches
    /// only the lower 16 MiB (the S25FL256S's bank register starts at 0), so everything beyond would
    /// wrap onto it. Such parts are driven with the 4-byte opcodes, which carry the whole address
    /// and need no mode state (no EN4B/BRWR that a power cycle or another tool could leave behind).
    public var fourByteAddressing: Bool { sizeBytes > 1 << 24 }
    public var readOpcode: UInt8 { fourByteAddressing ? FlashCommand.read4 : FlashCommand.read }
    public var programOpcode: UInt8 { fourByteAddressing ? FlashCommand.pageProgram4 : FlashCommand.pageProgram }
    public var sectorEraseOpcode: UInt8 {
        guard fourByteAddressing else { return eraseOpcode }
        return eraseOpcode == FlashCommand.sectorErase ? FlashCommand.sectorErase4 : eraseOpcode
    }
    public var addressBytes: Int { fourByteAddressing ? 4 : 3 }

    public static let s25fl128s = FlashPart(
        name: "S25FL128S (256 KiB sectors)", jedec: [0x01, 0x20, 0x18], sizeBytes: 16 << 20,
        sectorBytes: 256 << 10, pageBytes: 512, pageProgramSeconds: 340e-6, sectorEraseSeconds: 0.52,
        maxPageProgramSeconds: 750e-6, maxSectorEraseSeconds: 2.6, maxReadHz: 50_000_000)
    public static let s25fl256s = FlashPart(
        name: "S25FL256S (256 KiB sectors)", jedec: [0x01, 0x02, 0x19], sizeBytes: 32 << 20,
        sectorBytes: 256 << 10, pageBytes: 512, pageProgramSeconds: 340e-6, sectorEraseSeconds: 0.52,
        maxPageProgramSeconds: 750e-6, maxSectorEraseSeconds: 2.6, maxReadHz: 50_000_000)
    /// The iCEBreaker's 16 MiB flash: 64 KiB block erase 0xD8, 256-byte pages (W25Q128JV datasheet:
    /// page program 0.4/3 ms, 64 KiB block erase 150/2000 ms, READ 0x03 to 50 MHz).
    public static let w25q128jv = FlashPart(
        name: "W25Q128JV (64 KiB blocks)", jedec: [0xEF, 0x40, 0x18], sizeBytes: 16 << 20,
        sectorBytes: 64 << 10, pageBytes: 256, pageProgramSeconds: 0.4e-3, sectorEraseSeconds: 0.15,
        maxPageProgramSeconds: 3e-3, maxSectorEraseSeconds: 2.0, maxReadHz: 50_000_000)
}

/// Parts by RDID. The S25FL128S/256S entries are the uniform-256 KiB-sector, 512-byte-page variants
/// (RDID byte 4 = 0x00, CFI page size 2^9) used on the board; datasheet typical/max times.
public let flashParts: [FlashPart] = [.s25fl128s, .s25fl256s, .w25q128jv]

public func flashPart(jedec: [UInt8]) -> FlashPart? {
    flashParts.first { Array(jedec.prefix(3)) == $0.jedec }
}

/// SPI NOR commands.
public enum FlashCommand {
    public static let readID: UInt8 = 0x9F
    public static let readStatus: UInt8 = 0x05
    public static let writeEnable: UInt8 = 0x06
    /// 3-byte address forms.
    public static let sectorErase: UInt8 = 0xD8
    public static let pageProgram: UInt8 = 0x02
    public static let read: UInt8 = 0x03
    /// 4-byte address forms (S25FL256S 4SE, 4PP, 4READ).
    public static let sectorErase4: UInt8 = 0xDC
    public static let pageProgram4: UInt8 = 0x12
    public static let read4: UInt8 = 0x13
    /// Status register 1 bits.
    public static let wip: UInt8 = 0x01
    public static let wel: UInt8 = 0x02
    public static let eraseError: UInt8 = 0x20
    public static let programError: UInt8 = 0x40
}

/// Where bitstreams live in a board's configuration flash: slot N starts at `base + N * slotBytes`.
/// Slot 0 is the golden image the FPGA loads at power-on (and, on the 7-series, falls back to).
public struct SlotLayout: Sendable, Equatable {
    public var base: Int
    public var slotBytes: Int
    /// A limit below what the flash holds (iCE40 warm boot selects one of four images).
    public var maxSlots: Int?
    /// A boot header the flasher writes together with the golden image (the iCE40 multi-image
    /// header at address 0), if the board has one.
    public var headerBytes: Int?

    /// 7-series: slot N at N MiB (4 sectors of 256 KiB); an XC7S15 image is 538,844 bytes.
    public static let xilinx7 = SlotLayout(base: 0, slotBytes: 1 << 20, maxSlots: nil, headerBytes: nil)
    /// iCE40: the multi-image header (5 x 32 bytes, icemulti's format) in the first 64 KiB block,
    /// slot N (0...3) at (N + 1) x 256 KiB; a UP5K image is 104,090 bytes.
    public static let ice40 = SlotLayout(base: 256 << 10, slotBytes: 256 << 10, maxSlots: 4, headerBytes: 160)

    public func slotCount(flashBytes: Int) -> Int {
        let fit = max(0, (flashBytes - base) / slotBytes)
        return maxSlots.map { min($0, fit) } ?? fit
    }

    /// The address of `slot`, or a typed refusal when the slot does not exist on this flash: never a
    /// negative or wrapped address (slot -16 once meant address 0, the golden image).
    public func address(slot: Int, flashBytes: Int) throws(BoardError) -> Int {
        let count = slotCount(flashBytes: flashBytes)
        guard slot >= 0 && slot < count else {
            throw BoardError(.refused, "slot \(slot) does not exist: this \(flashBytes >> 20) MiB flash has slots 0...\(count - 1) (0 is the golden image)")
        }
        return base + slot * slotBytes
    }
}
