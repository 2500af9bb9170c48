import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

final class FlashTests: XCTestCase {
    func testFlashVerifyBootARealisticImage() throws {
        let (board, link, _) = try bootedBoard()
        XCTAssertTrue(board.configured)
        var gen = BitstreamGenerator()
        gen.seed = 42
        let bit = try Bitstream(bytes: gen.bitFile())
        var o = FlashOptions()
        o.slot = 1
        let r = try Flasher(link: link).flash(bit, options: o)
        XCTAssertEqual(r.flashPart, "S25FL128S (256 KiB sectors)")
        XCTAssertEqual(r.sectorsErased, [0x100000, 0x140000, 0x180000])
        XCTAssertEqual(r.pagesProgrammed, 1053)     // 538,844 bytes / 512, all pages hold data
        XCTAssertTrue(r.verified)
        XCTAssertEqual(r.done, true)
        XCTAssertEqual(Array(board.flash[0x100000..<(0x100000 + bit.payload.count)]), bit.payload)
        // Modelled time: 3 erases at 0.52 s dominate; programming close to 1053 x 340 us.
        let t = try XCTUnwrap(r.totalSeconds)
        XCTAssertGreaterThan(t, 1.56 + 0.36)
        XCTAssertLessThan(t, 3.5)

        let boot = try link.boot(slot: 1)
        XCTAssertTrue(boot.done)
        XCTAssertEqual(boot.loadedAddress, 0x100000)
        XCTAssertFalse(boot.fallback)

        // Flashing the same image again skips every sector.
        let again = try Flasher(link: link).flash(bit, options: o)
        XCTAssertEqual(again.sectorsErased, [])
        XCTAssertEqual(again.sectorsSkipped.count, 3)
        XCTAssertEqual(again.pagesProgrammed, 0)
    }

    func testAFlippedFlashByteIsFoundByVerifyWithItsAddress() throws {
        let (board, link, _) = try bootedBoard()
        let bit = try Bitstream(bytes: BitstreamGenerator().bitFile())
        var o = FlashOptions()
        o.slot = 2
        _ = try Flasher(link: link).flash(bit, options: o)
        board.corruptFlash(at: 0x200000 + 123_457)
        XCTAssertEqual(try Flasher(link: link).verify(bit, slot: 2), 0x200000 + 123_457)
        // A byte flipped on the wire while programming is caught by the flash command's own verify.
        var gen = BitstreamGenerator()
        gen.seed = 9
        let other = try Bitstream(bytes: gen.bitFile())
        var f = BoardFaults()
        f.flipMOSIByte = 300_000
        board.faults = f
        XCTAssertThrowsError(try Flasher(link: link).flash(other, options: o)) { e in
            let e = e as! BoardError
            XCTAssertEqual(e.kind, .verify)
            XCTAssertNotNil(e.address)
            XCTAssertTrue(e.message.contains("0x\(String(e.address!, radix: 16))"), e.message)
        }
    }

    func testAnImageForAnotherPartIsRefused() throws {
        let (board, link, _) = try bootedBoard()
        var gen = BitstreamGenerator()
        gen.part = .xc7s25
        gen.packageField = "7s25csga324"
        gen.payloadBytes = 600_000
        let bit = try Bitstream(bytes: gen.bitFile())
        let before = board.counters(.a)
        XCTAssertThrowsError(try Flasher(link: link).flash(bit, options: FlashOptions())) { e in
            XCTAssertEqual((e as! BoardError).kind, .wrongPart)
            XCTAssertTrue("\(e)".contains("xc7s25"), "\(e)")
        }
        XCTAssertEqual(board.counters(.a), before, "refused before touching the board")
        // A matching IDCODE with a foreign part field is refused too; --force writes it anyway.
        var g2 = BitstreamGenerator()
        g2.packageField = "7a35tcpg236"
        let mislabeled = try Bitstream(bytes: g2.bitFile())
        XCTAssertThrowsError(try Flasher(link: link).flash(mislabeled, options: FlashOptions()))
        var force = FlashOptions()
        force.force = true
        force.verify = false
        XCTAssertNoThrow(try Flasher(link: link).flash(mislabeled, options: force))
    }

    func testSlotZeroNeedsGolden() throws {
        let (_, link, _) = try bootedBoard()
        let bit = try Bitstream(bytes: BitstreamGenerator().bitFile())
        var o = FlashOptions()
        o.slot = 0
        XCTAssertThrowsError(try Flasher(link: link).flash(bit, options: o)) { e in
            XCTAssertEqual((e as! BoardError).kind, .refused)
        }
        o.golden = true
        XCTAssertNoThrow(try Flasher(link: link).flash(bit, options: o))
    }

    func testDryRunWritesNothing() throws {
        let (board, link, _) = try bootedBoard()
        let before = board.flash
        var o = FlashOptions()
        o.dryRun = true
        let r = try Flasher(link: link).flash(try Bitstream(bytes: BitstreamGenerator().bitFile()), options: o)
        XCTAssertEqual(r.sectorsErased.count, 3)
        XCTAssertEqual(r.pagesProgrammed, 0)
        XCTAssertTrue(board.flash == before)
    }

    /// Power fails at chosen bytes of a slot-1 write (first byte, inside a page, at a page edge, the
    /// last byte, and random ones): the board always comes back on the golden image, and booting
    /// the torn slot falls back to golden.
    func testPowerLossAtAnyFlashByteLeavesGoldenBootable() throws {
        var g = SplitMix(state: 11)
        let chosen = [0, 1, 511, 512, 70_000, 538_843] + (0..<4).map { _ in g.int(0...538_843) }
        var gen = BitstreamGenerator()
        gen.seed = 5
        let bit = try Bitstream(bytes: gen.bitFile())
        let configEnd = Bitstream.scanPackets(bit.payload).consumed
        XCTAssertLessThan(configEnd, 538_843)
        for k in chosen {
            let (board, link, golden) = try bootedBoard()
            var f = BoardFaults()
            f.powerLossAtFlashByte = k
            board.faults = f
            var o = FlashOptions()
            o.slot = 1
            XCTAssertThrowsError(try Flasher(link: link).flash(bit, options: o), "byte \(k)") { e in
                XCTAssertEqual((e as! BoardError).kind, .link(.disconnected), "\(e)")
            }
            // Power returns: the flasher has let go of PROGRAM_B, the FPGA loads slot 0 by itself.
            let pins = try link.waitForConfiguration()
            XCTAssertTrue(pins.done, "byte \(k)")
            XCTAssertEqual(board.loadedFrom, 0)
            XCTAssertEqual(Array(board.flash[0..<golden.count]), golden, "golden untouched, byte \(k)")
            let boot = try link.boot(slot: 1)
            XCTAssertTrue(boot.done, "byte \(k)")
            if k < configEnd {
                XCTAssertTrue(boot.fallback, "torn slot 1 must fall back, byte \(k)")
                XCTAssertEqual(boot.loadedAddress, 0)
            } else {
                // Torn in the padding after DESYNC: the FPGA never reads it, slot 1 is fine.
                XCTAssertEqual(boot.loadedAddress, 0x100000, "byte \(k)")
            }
        }
    }

    func testBootOfAnEmptySlotFallsBackAndBadGoldenRaisesInitB() throws {
        let (board, link, _) = try bootedBoard()
        let r = try link.boot(slot: 5)
        XCTAssertTrue(r.done)
        XCTAssertTrue(r.fallback)
        XCTAssertEqual(r.loadedAddress, 0)
        XCTAssertNotNil(board.lastConfigError)
        // A corrupt golden image: CRC error, INIT_B low, DONE low.
        board.corruptFlash(at: 300_000)
        let g = try link.boot(slot: 0)
        XCTAssertFalse(g.done)
        XCTAssertFalse(g.initB)
        XCTAssertEqual(board.lastConfigError, "configuration CRC error")
    }

    func testFlashIsOnlyReachableWhileProgramBIsLow() throws {
        let (_, link, _) = try bootedBoard()
        // Without holding PROGRAM_B the FPGA owns the flash pins: RDID reads nothing.
        XCTAssertThrowsError(try Flasher(link: link).identify()) { e in
            XCTAssertTrue("\(e)".contains("PROGRAM_B"), "\(e)")
        }
        try link.holdInReset()
        XCTAssertEqual(try Flasher(link: link).identify().jedec, [0x01, 0x20, 0x18])
    }
}
