// SPI NOR flash: the JEDEC table (data, like openFPGALoader's), the command set the tools use, and
// the slot layout of the configuration flash.

/// One flash part the tools can program.
public struct FlashPart: Sendable, Equatable, Codable {
    public var name: String
    /// RDID bytes 0-2: manufacturer, memory type, capacity.
    public var jedec: [UInt8]
    public var sizeBytes: Int
    public var sectorBytes: Int
    public var pageBytes: Int
    /// Typical page program and sector erase times from the datasheet, seconds.
    public var pageProgramSeconds: Double
    public var sectorEraseSeconds: Double
    public var maxPageProgramSeconds: Double
    public var maxSectorEraseSeconds: Double
    /// Read clock limit of READ 0x03.
    public var maxReadHz: Int
}

/// Parts by RDID. The S25FL128S/256S entries are the uniform-256 KiB-sector, 512-byte-page variants
/// (RDID byte 4 = 0x00, CFI page size 2^9) used on the board; datasheet typical/max times.
public let flashParts: [FlashPart] = [
    FlashPart(name: "S25FL128S (256 KiB sectors)", jedec: [0x01, 0x20, 0x18], sizeBytes: 16 << 20,
              sectorBytes: 256 << 10, pageBytes: 512, pageProgramSeconds: 340e-6, sectorEraseSeconds: 0.52,
              maxPageProgramSeconds: 750e-6, maxSectorEraseSeconds: 2.6, maxReadHz: 50_000_000),
    FlashPart(name: "S25FL256S (256 KiB sectors)", jedec: [0x01, 0x02, 0x19], sizeBytes: 32 << 20,
              sectorBytes: 256 << 10, pageBytes: 512, pageProgramSeconds: 340e-6, sectorEraseSeconds: 0.52,
              maxPageProgramSeconds: 750e-6, maxSectorEraseSeconds: 2.6, maxReadHz: 50_000_000),
]

public func flashPart(jedec: [UInt8]) -> FlashPart? {
    flashParts.first { Array(jedec.prefix(3)) == $0.jedec }
}

/// SPI NOR commands (3-byte addresses).
public enum FlashCommand {
    public static let readID: UInt8 = 0x9F
    public static let readStatus: UInt8 = 0x05
    public static let writeEnable: UInt8 = 0x06
    public static let sectorErase: UInt8 = 0xD8
    public static let pageProgram: UInt8 = 0x02
    public static let read: UInt8 = 0x03
    /// Status register 1 bits.
    public static let wip: UInt8 = 0x01
    public static let wel: UInt8 = 0x02
    public static let eraseError: UInt8 = 0x20
    public static let programError: UInt8 = 0x40
}

/// Where bitstreams live: slot N starts at N MiB (4 sectors). Slot 0 is the golden image the FPGA
/// loads at power-on and falls back to.
public enum FlashLayout {
    public static let slotBytes = 1 << 20
    public static func slotAddress(_ slot: Int) -> Int { slot * slotBytes }
    public static func slotCount(flashBytes: Int) -> Int { flashBytes / slotBytes }
}
