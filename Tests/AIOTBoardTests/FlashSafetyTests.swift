import Foundation
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

/// Issue 11 point 4: slots are checked against the part, parts over 16 MiB use 4-byte addresses,
/// and the model simulates the 32 MiB S25FL256S faithfully (a 3-byte address wraps there).
final class FlashSafetyTests: XCTestCase {
    /// A 32 MiB board (S25FL256S) with a golden image in slot 0, configured and running.
    func bootedBoard256(seed: UInt64 = 1) throws -> (BoardModel, BoardLink, [UInt8]) {
        let board = try BoardModel(flash: .s25fl256s)
        var gen = BitstreamGenerator()
        gen.seed = seed
        let golden = gen.payload()
        board.factoryProgram(golden, at: 0)
        board.powerCycle()
        XCTAssertTrue(board.configured)
        return (board, BoardLink(transport: board), golden)
    }

    func testANegativeSlotIsRefusedBeforeTouchingTheBoard() throws {
        let (board, link, golden) = try bootedBoard()
        var gen = BitstreamGenerator()
        gen.seed = 77
        let bit = try Bitstream(bytes: gen.bitFile())
        let before = board.counters(.a)
        for slot in [-16, -1, Int.min] {
            var o = FlashOptions()
            o.slot = slot
            XCTAssertThrowsError(try Flasher(link: link).flash(bit, options: o), "slot \(slot)") { e in
                XCTAssertEqual((e as! BoardError).kind, .refused, "\(e)")
            }
        }
        XCTAssertEqual(board.counters(.a), before, "refused before any USB traffic")
        XCTAssertEqual(Array(board.flash[0..<golden.count]), golden, "the golden image is untouched")
        XCTAssertThrowsError(try Flasher(link: link).verify(bit, slot: -1)) { e in
            XCTAssertEqual((e as! BoardError).kind, .refused, "\(e)")
        }
        XCTAssertTrue(try link.waitForConfiguration().done, "a refused verify releases the FPGA again")
    }

    func testSlotsBeyondThePartAreRefused() throws {
        let (board, link, _) = try bootedBoard()
        let bit = try Bitstream(bytes: BitstreamGenerator().bitFile())
        var o = FlashOptions()
        o.slot = 16          // 16 MiB S25FL128S: slots 0...15
        XCTAssertThrowsError(try Flasher(link: link).flash(bit, options: o)) { e in
            XCTAssertEqual((e as! BoardError).kind, .refused)
            XCTAssertTrue("\(e)".contains("0...15"), "\(e)")
        }
        XCTAssertTrue(board.configured, "the FPGA was released after the refusal")
    }

    /// The model is faithful: a 3-byte READ on the 32 MiB part reaches the lower 16 MiB only, so a
    /// host using 3-byte addresses for slot 20 would read (and verify) slot 4.
    func testTheModelWrapsThreeByteAddressesOnThe32MiBPart() throws {
        let (board, link, _) = try bootedBoard256()
        board.factoryProgram([0xA5, 0x5A], at: 4 << 20)
        board.factoryProgram([0x11, 0x22], at: 20 << 20)
        try link.holdInReset()
        func read(_ op: UInt8, _ address: [UInt8]) throws -> [UInt8] {
            try link.run { b in
                b.setLow(value: PinA.accCS, direction: PinA.busDirection)
                b.writeHeader(count: 1 + address.count)
                b.appendData(op)
                for x in address { b.appendData(x) }
                b.read(count: 2)
                b.setLow(value: PinA.idleValue, direction: PinA.busDirection)
                b.sendImmediate()
            }
        }
        // 20 MiB = 0x01400000: three bytes carry 0x400000, i.e. 4 MiB.
        XCTAssertEqual(try read(FlashCommand.read, [0x40, 0x00, 0x00]), [0xA5, 0x5A])
        XCTAssertEqual(try read(FlashCommand.read4, [0x01, 0x40, 0x00, 0x00]), [0x11, 0x22])
        XCTAssertEqual(try Flasher(link: link).identify(), .s25fl256s)
        try link.releaseReset()
    }

    /// The model keeps the NOR rules for both address widths: a page program without WREN, or
    /// while the part is busy, changes nothing.
    func testTheModelIgnoresProgramsWithoutWriteEnable() throws {
        let (board, link, _) = try bootedBoard256()
        try link.holdInReset()
        for (op, address) in [(FlashCommand.pageProgram, [UInt8]([0x10, 0x00, 0x00])), (FlashCommand.pageProgram4, [0x01, 0x10, 0x00, 0x00])] {
            _ = try link.run { b in
                b.setLow(value: PinA.accCS, direction: PinA.busDirection)
                b.writeHeader(count: 1 + address.count + 4)
                b.appendData(op)
                for x in address + [1, 2, 3, 4] { b.appendData(x) }
                b.setLow(value: PinA.idleValue, direction: PinA.busDirection)
            }
        }
        XCTAssertTrue(board.flash[0x100000..<0x100004].allSatisfy { $0 == 0xFF })
        XCTAssertTrue(board.flash[0x1100000..<0x1100004].allSatisfy { $0 == 0xFF })
        try link.releaseReset()
    }

    /// Slots 16-31 of the 32 MiB part land where they say (4-byte addressing), verify reads them
    /// from there, and slot 4 below is untouched.
    func testUpperSlotsOfThe32MiBPartAreWrittenWhereTheySay() throws {
        let (board, link, golden) = try bootedBoard256()
        var gen = BitstreamGenerator()
        gen.seed = 20
        let bit = try Bitstream(bytes: gen.bitFile())
        for slot in [20, 31] {
            var o = FlashOptions()
            o.slot = slot
            let r = try Flasher(link: link).flash(bit, options: o)
            XCTAssertEqual(r.address, slot << 20)
            XCTAssertTrue(r.verified)
            XCTAssertEqual(r.flashPart, FlashPart.s25fl256s.name)
            XCTAssertEqual(Array(board.flash[(slot << 20)..<((slot << 20) + bit.payload.count)]), bit.payload, "slot \(slot)")
            XCTAssertTrue(board.flash[((slot - 16) << 20)..<(((slot - 16) << 20) + bit.payload.count)].allSatisfy { $0 == 0xFF },
                          "slot \(slot - 16) (where a 3-byte address wraps) stays erased")
        }
        XCTAssertEqual(Array(board.flash[0..<golden.count]), golden)
        XCTAssertEqual(try Flasher(link: link).verify(bit, slot: 20), nil)
        // A worn cell in slot 20 is found there, not in slot 4.
        board.corruptFlash(at: (20 << 20) + 1000)
        XCTAssertEqual(try Flasher(link: link).verify(bit, slot: 20), (20 << 20) + 1000)
        var o = FlashOptions()
        o.slot = 32
        XCTAssertThrowsError(try Flasher(link: link).flash(bit, options: o)) { e in
            XCTAssertTrue("\(e)".contains("0...31"), "\(e)")
        }
    }

    func testBootChecksTheSlot() throws {
        let (board, link, _) = try bootedBoard()
        for slot in [-1, -16, 16] {
            XCTAssertThrowsError(try link.boot(slot: slot), "slot \(slot)") { e in
                XCTAssertEqual((e as! BoardError).kind, .refused, "\(e)")
            }
            XCTAssertTrue(board.configured, "slot \(slot): the FPGA runs again after the refusal")
        }
        // 32 MiB part: slot 20 exists but MULTIBOOT_ADDR holds 24 bits: refused, not booted from 4 MiB.
        let (big, bigLink, _) = try bootedBoard256()
        XCTAssertThrowsError(try bigLink.boot(slot: 20)) { e in
            XCTAssertTrue("\(e)".contains("24 bits"), "\(e)")
        }
        XCTAssertEqual(big.loadedFrom, 0)
        XCTAssertTrue(try bigLink.boot(slot: 0).done)
    }

    /// A sim: state file keeps its flash part: separate `aiotctl` runs act on a 32 MiB board.
    func testTheFlashPartPersists() throws {
        let path = NSTemporaryDirectory() + "aiot-256-\(getpid()).sim"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let b = try BoardModel(path: path, flash: .s25fl256s)
        b.factoryProgram([1, 2, 3], at: 30 << 20)
        try b.save()
        let again = try BoardModel(path: path)
        XCTAssertEqual(again.flashPart, .s25fl256s)
        XCTAssertEqual(Array(again.flash[(30 << 20)..<((30 << 20) + 3)]), [1, 2, 3])
        XCTAssertEqual(try BoardSession(parsing: "sim:" + path).profile, .xc7s15Gateway)
    }
}
