import AIOTModel
import Foundation
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

/// Issue 15 point 2 (board side): iCE40 bitstreams, and the iCEBreaker-class board (iCE40UP5K,
/// W25Q128JV, CRESET_B/CDONE) simulated so flash, boot, upload and inference run against it.
final class ICE40Tests: XCTestCase {
    /// icepack's output for a small UP5K design (Tests/fixtures/ice40/README.md).
    func icepackFixture() throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-dc", repoRoot.appendingPathComponent("Tests/fixtures/ice40/counter-up5k.bin.gz").path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return [UInt8](d)
    }

    func testAnIcepackImageParses() throws {
        let bytes = try icepackFixture()
        XCTAssertEqual(bytes.count, 104_090)
        let bit = try Bitstream(bytes: bytes)
        let i = bit.info
        XCTAssertEqual(i.format, "ice40-bin")
        XCTAssertEqual(i.family, .ice40)
        XCTAssertEqual(i.syncOffset, 4, "preamble after the empty comment FF 00 00 FF")
        XCTAssertEqual(i.ice40?.device, "ice40up5k")
        XCTAssertEqual(i.ice40?.cramWidth, 692)
        XCTAssertEqual(i.ice40?.cramHeight, 336)
        XCTAssertEqual(i.ice40?.cramBytes, 2 * (29_064 + 15_224))
        XCTAssertEqual(i.ice40?.bramBytes, 2 * (2 * 2_560 + 2 * 1_280))
        XCTAssertEqual(i.ice40?.warmbootEnabled, true)
        XCTAssertEqual(i.crcChecks, 1)
        XCTAssertTrue(i.crcOK)
        XCTAssertEqual(i.fpgaPart, .ice40up5k)
        XCTAssertEqual(bit.payload, bytes, "an iCE40 image is written to flash as it is")
        // One flipped CRAM bit breaks the CRC-16.
        var bad = bytes
        bad[0x1000] ^= 0x04
        XCTAssertFalse(try Bitstream(bytes: bad).info.crcOK)
        // Truncated images are refused with a reason.
        XCTAssertThrowsError(try Bitstream(bytes: Array(bytes[0..<50_000]))) { e in
            XCTAssertTrue("\(e)".contains("iCE40"), "\(e)")
        }
    }

    /// The generator writes what icepack writes for the UP5K: same size, same command stream.
    func testTheGeneratorMatchesIcepacksStructure() throws {
        let real = ICE40Bitstream.scan(try icepackFixture())
        var g = ICE40BitstreamGenerator()
        g.comment = []
        let bytes = g.bitFile()
        XCTAssertEqual(bytes.count, 104_090)
        var ours = ICE40Bitstream.scan(bytes)
        XCTAssertNil(ours.error)
        XCTAssertEqual(ours.crcErrors, 0)
        ours.comment = real.comment
        XCTAssertEqual(ours, real)
        var bad = ICE40BitstreamGenerator()
        bad.corruptCRC = true
        XCTAssertFalse(try Bitstream(bytes: bad.bitFile()).info.crcOK)
        var other = ICE40BitstreamGenerator()
        other.cramWidth = 656
        XCTAssertNil(try Bitstream(bytes: other.bitFile()).info.fpgaPart)
    }

    /// Damaged images (flipped command bytes, truncations, random lengths in the command stream)
    /// give a typed error or a parse with `crcOK == false`, never a trap. Seeded; the seed is in
    /// every failure message.
    func testDamagedImagesNeverTrap() throws {
        let seed: UInt64 = 2026
        var g = SplitMix(state: seed)
        let good = ICE40BitstreamGenerator().bitFile()
        let header = ICE40Bitstream.header(layout: .ice40)
        let crcStart = try XCTUnwrap(ICE40Bitstream.scan(good).preambleOffset) + 8   // after "51 00 01 05"
        var detected = 0
        for k in 0..<100 {
            var b = k % 3 == 2 ? header : good
            var changedAt: Int?
            switch k % 4 {
            case 0:
                let at = g.int(0...min(200, b.count - 1))
                let v = UInt8(g.int(0...255))
                if v != b[at] { changedAt = at }
                b[at] = v
            case 1: b = Array(b[0..<g.int(0...b.count - 1)])
            case 2: for _ in 0..<8 { b[g.int(0...b.count - 1)] = UInt8(g.int(0...255)) }
            default: b = (0..<g.int(0...64)).map { _ in UInt8(g.int(0...255)) } + ICE40Bitstream.preamble + (0..<g.int(0...64)).map { _ in UInt8(g.int(0...255)) }
            }
            do {
                let bit = try Bitstream(bytes: b)
                // One changed byte of the image after the CRC reset: CRC-16 catches every one.
                if let at = changedAt, at >= crcStart, k % 3 != 2 {
                    XCTAssertFalse(bit.info.crcOK, "seed \(seed) case \(k): byte \(at) changed, CRC still OK")
                    detected += 1
                }
            } catch {
                XCTAssertFalse("\(error)".isEmpty, "seed \(seed) case \(k)")
                if changedAt != nil { detected += 1 }
            }
            _ = ICE40Bitstream.scan(b, from: g.int(0...b.count), limit: g.int(0...200))
        }
        XCTAssertGreaterThan(detected, 5, "seed \(seed): the single-byte cases must exercise the check")
    }

    func testTheMultiImageHeaderIsIcemulti() {
        let h = ICE40Bitstream.header(layout: .ice40)
        XCTAssertEqual(h.count, 160)
        XCTAssertEqual(Array(h[0..<17]), [0x7E, 0xAA, 0x99, 0x7E, 0x92, 0x00, 0x00, 0x44, 0x03, 0x04, 0x00, 0x00, 0x82, 0x00, 0x00, 0x01, 0x08])
        let entry3 = ICE40Bitstream.scan(h, from: 32 * 4, limit: 32)
        XCTAssertTrue(entry3.reboot)
        XCTAssertEqual(entry3.bootAddress, 0x100000, "warm boot image 3 = slot 3 at 4 x 256 KiB")
    }

    func iceBoard() throws -> (BoardModel, BoardLink) {
        let b = try BoardModel(profile: .icebreaker)
        XCTAssertEqual(b.flashPart, .w25q128jv)
        return (b, BoardLink(transport: b, profile: .icebreaker))
    }

    func image(seed: UInt64) throws -> Bitstream {
        var g = ICE40BitstreamGenerator()
        g.seed = seed
        return try Bitstream(bytes: g.bitFile())
    }

    func testFlashBootUploadAndInferOnTheSimulatedICE40Board() throws {
        let (board, link) = try iceBoard()
        XCTAssertFalse(board.configured, "blank flash: CDONE low")
        let golden = try image(seed: 1)
        var o = FlashOptions()
        o.slot = 0
        XCTAssertThrowsError(try Flasher(link: link).flash(golden, options: o)) { e in
            XCTAssertEqual((e as! BoardError).kind, .refused)
        }
        XCTAssertThrowsError(try Flasher(link: link).flash(try Bitstream(bytes: BitstreamGenerator().bitFile()), options: FlashOptions())) { e in
            XCTAssertEqual((e as! BoardError).kind, .wrongPart, "a 7-series image on the iCE40 board")
        }
        o.golden = true
        let r = try Flasher(link: link).flash(golden, options: o)
        XCTAssertTrue(r.verified)
        XCTAssertEqual(r.done, true, "CDONE after CRESET_B is released")
        XCTAssertEqual(r.address, 0x40000)
        XCTAssertEqual(r.flashPart, FlashPart.w25q128jv.name)
        XCTAssertEqual(r.sectorsErased, [0x00000, 0x40000, 0x50000], "header block, then 104,090 B in two 64 KiB blocks")
        XCTAssertEqual(Array(board.flash[0..<160]), ICE40Bitstream.header(layout: .ice40))
        XCTAssertEqual(board.loadedFrom, 0x40000, "power-on image through the header")
        XCTAssertEqual(try link.pins().done, true)

        // Slot 2, then warm boot into it; an empty slot 3 leaves CDONE low and the host pulses
        // CRESET_B back to golden.
        o = FlashOptions()
        o.slot = 2
        let r2 = try Flasher(link: link).flash(try image(seed: 2), options: o)
        XCTAssertEqual(r2.address, 0xC0000)
        XCTAssertEqual(Array(board.flash[0..<160]), ICE40Bitstream.header(layout: .ice40), "a slot write leaves the header")
        let b2 = try link.boot(slot: 2)
        XCTAssertTrue(b2.done)
        XCTAssertFalse(b2.fallback)
        XCTAssertEqual(b2.loadedAddress, 0xC0000)
        let b3 = try link.boot(slot: 3)
        XCTAssertTrue(b3.done)
        XCTAssertTrue(b3.fallback)
        XCTAssertEqual(b3.loadedAddress, 0x40000)
        XCTAssertThrowsError(try link.boot(slot: 4)) { e in XCTAssertTrue("\(e)".contains("0...3"), "\(e)") }
        o.slot = 4
        XCTAssertThrowsError(try Flasher(link: link).flash(try image(seed: 4), options: o))

        // The accelerator is the same: upload and bit-identical inference.
        let (_, m, v) = try XCTUnwrap(committedModels().first { $0.name == "w24f1d16h1n1p1-w8a8" })
        board.synthesizedShape = m.shape
        let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                    fallback: SoftwareEngine(model: m), upload: true)
        for k in 0..<v.count {
            let x = Array(v.inputs[(k * v.inputCount)..<((k + 1) * v.inputCount)])
            XCTAssertEqual(try engine.infer(x), Array(v.outputs[(k * v.outputCount)..<((k + 1) * v.outputCount)]), "vector \(k)")
            XCTAssertEqual(engine.lastEngine, .fpga)
        }
        XCTAssertThrowsError(try engine.closeEnergyWindow(), "no power monitors on this board: an error, not a figure")
        // The board models the iCE40 core: its clock, its cycles, contract v1 only (VERSION 1.0).
        XCTAssertEqual(engine.clockHz, 15_937_500)
        XCTAssertEqual(Int(engine.lastCycles), BoardModel.modelledICE40Cycles(m.shape))
        XCTAssertEqual(Double(engine.lastCycles), 239_406, accuracy: 239_406 * 0.05, "the RTL test bench's W8A8 figure (docs/hardware.md §5)")
        XCTAssertEqual(try link.info().version, "1.0")
        let v2 = try QuantizedModel(contentsOf: repoRoot.appendingPathComponent("models/random-v2/w24f1d16h1n1p1-w8a8-skip.safetensors").path)
        XCTAssertThrowsError(try FPGAEngine(link: link, parameters: ParameterSet(model: v2), identity: identityBytes(v2.identity)!,
                                            fallback: SoftwareEngine(model: v2), upload: true)) { e in
            XCTAssertTrue((e as! BoardError).message.contains("VERSION 1.0"), "\(e)")
        }
    }

    /// Power lost while slot 1 is written: the header and golden image are untouched and the
    /// board comes back on golden.
    func testPowerLossDuringASlotWriteKeepsGolden() throws {
        let (board, link) = try iceBoard()
        var o = FlashOptions()
        o.slot = 0
        o.golden = true
        _ = try Flasher(link: link).flash(try image(seed: 1), options: o)
        let before = Array(board.flash[0..<(0x40000 + 104_090)])
        var f = BoardFaults()
        f.powerLossAtFlashByte = 30_000
        board.faults = f
        o = FlashOptions()
        o.slot = 1
        XCTAssertThrowsError(try Flasher(link: link).flash(try image(seed: 9), options: o))
        XCTAssertTrue(try link.waitForConfiguration().done)
        XCTAssertEqual(board.loadedFrom, 0x40000)
        XCTAssertTrue(Array(board.flash[0..<(0x40000 + 104_090)]) == before)
    }
}
