import AIOTModel
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

final class ParameterImageTests: XCTestCase {
    func testRoundTripAndLayout() throws {
        let p = randomParameters(defaultShape)
        let image = try ParameterImage.serialize(p)
        XCTAssertEqual(image.count, 5672)
        XCTAssertEqual(Array(image[0..<8]), Array("AIOTPRM1".utf8))
        XCTAssertEqual(try ParameterImage.deserialize(image), p)
        let lay = ParameterImage.layout(shape: defaultShape, scoreBits: [8])
        XCTAssertEqual(lay.tensors.count, 22)
        XCTAssertEqual(lay.tensors.first?.offset, 484)
        XCTAssertTrue(lay.tensors.allSatisfy { $0.offset % 4 == 0 })
    }

    func testOutOfRangeValuesAreRefusedByName() {
        var p = randomParameters(defaultShape)
        p.tensors["layers.0.q.weight"]![3] = 200
        XCTAssertThrowsError(try ParameterImage.serialize(p)) { e in
            XCTAssertTrue("\(e)".contains("layers.0.q.weight"), "\(e)")
        }
        var q = randomParameters(defaultShape)
        q.requant["pool"] = nil
        XCTAssertThrowsError(try ParameterImage.serialize(q)) { e in XCTAssertTrue("\(e)".contains("pool")) }
    }
}

final class AcceleratorTests: XCTestCase {
    let identity = (0..<32).map { UInt8($0 * 7 & 0xFF) }

    func testUploadChecksCRCReadsBackAndSetsIdentity() throws {
        let (_, link, _) = try bootedBoard()
        let image = try ParameterImage.serialize(randomParameters(defaultShape))
        let r = try link.upload(image: image, identity: identity)
        XCTAssertEqual(r.crc, CRC32.checksum(image))
        XCTAssertEqual(r.deviceCRC, r.crc)
        let info = try link.info()
        XCTAssertTrue(info.paramsValid)
        XCTAssertEqual(info.modelID, r.identity)
        XCTAssertEqual(info.version, "1.1")
        XCTAssertEqual(info.shape["window"], 24)
    }

    func testWeightsWithACorruptedByteFailTheCRCCheck() throws {
        let (board, link, _) = try bootedBoard()
        let image = try ParameterImage.serialize(randomParameters(defaultShape))
        var f = BoardFaults()
        f.flipMOSIByte = 2000     // inside the image write
        board.faults = f
        XCTAssertThrowsError(try link.upload(image: image, identity: identity)) { e in
            XCTAssertEqual((e as! BoardError).kind, .crc)
            XCTAssertTrue("\(e)".contains("CRC-32"), "\(e)")
        }
        let info = try link.info()
        XCTAssertFalse(info.paramsValid)
        XCTAssertEqual(info.modelID, String(repeating: "0", count: 64), "no identity on a failed upload")
        XCTAssertEqual(info.errorCode, 3)
        // START without valid parameters is refused by the accelerator itself.
        var frame = InferenceFrame(inputCount: 24, outputCount: 1)
        let input = [Int32](repeating: 5, count: 24)
        let crc = input.withUnsafeBufferPointer { frame.setInput($0) }
        let reply = try board.execute(.a, frame.buffer)
        var out = [Int32](repeating: 0, count: 1)
        let check = reply.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer { checkResult(r, expectedSequence: 1, inputCRC: crc, output: $0) } }
        XCTAssertNotEqual(check, .ok)
        // A clean upload afterwards succeeds.
        XCTAssertNoThrow(try link.upload(image: image, identity: identity))
    }

    func testAnImageThatBreaksTheContractIsRefusedNotComputed() throws {
        let (board, link, _) = try bootedBoard()
        var p = randomParameters(defaultShape)
        p.weights["layers.0.ffn1.weight"]!.bits = 4     // its 8-bit values are off a 4-bit grid
        let image = try ParameterImage.serialize(p)
        XCTAssertThrowsError(try link.upload(image: image, identity: identity)) { e in
            XCTAssertEqual((e as! BoardError).kind, .crc)
            XCTAssertTrue("\(e)".contains("docs/arithmetic.md §6"), "\(e)")
        }
        let info = try link.info()
        XCTAssertEqual(info.paramCRC, CRC32.checksum(image), "the transfer itself was intact")
        XCTAssertFalse(info.paramsValid)
        XCTAssertEqual(info.errorCode, 4)
        let why = try XCTUnwrap(board.parameterRefusal)
        XCTAssertTrue(why.contains("layers.0.ffn1.weight"), why)
        // START is refused rather than computed on the rejected image.
        _ = try link.run { b in b.accWrite32(Reg.control, Reg.clearError | Reg.start) }
        XCTAssertEqual(try link.info().errorCode, 1)
        XCTAssertNoThrow(try link.upload(image: try ParameterImage.serialize(randomParameters(defaultShape)), identity: identity))
        XCTAssertNil(board.parameterRefusal)
    }

    func testAnUploadForAnotherShapeIsRefusedByTheAccelerator() throws {
        let (_, link, _) = try bootedBoard()
        var s = defaultShape
        s.window = 12
        let image = try ParameterImage.serialize(randomParameters(s))
        XCTAssertThrowsError(try link.upload(image: image, identity: identity)) { e in
            XCTAssertTrue("\(e)".contains("shape"), "\(e)")
        }
    }

    func testOneInferenceIsOneRoundTripAndMatchesTheModelCompute() throws {
        let (board, link, _) = try bootedBoard()
        let p = randomParameters(defaultShape)
        _ = try link.upload(image: try ParameterImage.serialize(p), identity: identity)
        _ = try link.run { b in b.accWrite32(Reg.control, Reg.softReset) }
        let reference = SoftwareEngine(model: try QuantizedModel(integers: p))
        var frame = InferenceFrame(inputCount: 24, outputCount: 1)
        var reply = [UInt8](repeating: 0, count: frame.replyBytes)
        var g = SplitMix(state: 99)
        for seq in 1...20 {
            let input = (0..<24).map { _ in Int32(g.int(-2048...2047)) }
            let crc = input.withUnsafeBufferPointer { frame.setInput($0) }
            let before = board.counters(.a)
            try frame.buffer.bytes.withUnsafeBytes { c in try reply.withUnsafeMutableBytes { try board.execute(.a, c, reply: $0) } }
            let after = board.counters(.a)
            XCTAssertEqual(after.roundTrips - before.roundTrips, 1)
            XCTAssertEqual(after.bytesOut - before.bytesOut, 116)
            XCTAssertEqual(after.bytesIn - before.bytesIn, 54)
            XCTAssertEqual(Array(reply[frame.resultBytes...]), identity, "MODEL_ID follows the result")
            var out = [Int32](repeating: 0, count: 1)
            let check = reply.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer { checkResult(r, expectedSequence: UInt32(seq), inputCRC: crc, output: $0) } }
            XCTAssertEqual(check, .ok)
            XCTAssertEqual(out, try reference.infer(input))
        }
    }

    func testCorruptedTransfersAreDetected() throws {
        let (board, link, _) = try bootedBoard()
        let p = randomParameters(defaultShape)
        _ = try link.upload(image: try ParameterImage.serialize(p), identity: identity)
        _ = try link.run { b in b.accWrite32(Reg.control, Reg.softReset) }
        var frame = InferenceFrame(inputCount: 24, outputCount: 1)
        let input = [Int32](repeating: 100, count: 24)
        let crc = input.withUnsafeBufferPointer { frame.setInput($0) }
        func run(_ seq: UInt32) throws -> ResultCheck {
            let reply = try board.execute(.a, frame.buffer)
            var out = [Int32](repeating: 0, count: 1)
            return reply.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer { checkResult(r, expectedSequence: seq, inputCRC: crc, output: $0) } }
        }
        var f = BoardFaults()
        f.flipMOSIByte = 10          // an input byte
        board.faults = f
        XCTAssertEqual(try run(1), .inputCRC)
        f = BoardFaults()
        f.flipMISOByte = 17          // an output byte
        board.faults = f
        XCTAssertEqual(try run(2), .resultCRC)
        XCTAssertEqual(try run(3), .ok)
        XCTAssertEqual(try run(5), .sequence(expected: 5, got: 4))
    }

    func testStalledBusyTimesOutAndTheLinkRecovers() throws {
        let (board, link, _) = try bootedBoard()
        _ = try link.upload(image: try ParameterImage.serialize(randomParameters(defaultShape)), identity: identity)
        var f = BoardFaults()
        f.stallBusy = true
        board.faults = f
        var frame = InferenceFrame(inputCount: 24, outputCount: 1)
        _ = [Int32](repeating: 1, count: 24).withUnsafeBufferPointer { frame.setInput($0) }
        XCTAssertThrowsError(try board.execute(.a, frame.buffer)) { e in XCTAssertEqual((e as! LinkError).kind, .timeout) }
        XCTAssertThrowsError(try link.info(), "still hung until recovered")
        try board.recover()
        board.faults = BoardFaults()
        _ = try link.run { b in b.accWrite32(Reg.control, Reg.softReset) }
        XCTAssertFalse(try link.info().busy)
        XCTAssertNoThrow(try board.execute(.a, frame.buffer))
    }

    func testPowerMonitorsReportRailsAndEnergyOfCompute() throws {
        let (board, link, _) = try bootedBoard()
        _ = try link.upload(image: try ParameterImage.serialize(randomParameters(defaultShape)), identity: identity)
        let pm = PowerMonitor(transport: board)
        _ = try pm.read()
        // An idle second, then the same second with 2000 inferences in it.
        _ = try link.run { b in b.idle(bits: 30_000_000) }
        let idle = try pm.read()
        XCTAssertEqual(idle.count, 8)
        let vccint = try XCTUnwrap(idle.first { $0.name.hasPrefix("VCCINT") })
        XCTAssertEqual(vccint.volts, 1.0, accuracy: 0.001)
        XCTAssertEqual(vccint.amps, 0.030, accuracy: 0.001)
        XCTAssertEqual(vccint.samples, 1024, accuracy: 4)
        XCTAssertEqual(vccint.joules, 0.030, accuracy: 0.002)
        _ = try link.run { b in b.accWrite32(Reg.control, Reg.softReset) }
        var frame = InferenceFrame(inputCount: 24, outputCount: 1)
        _ = [Int32](repeating: 1, count: 24).withUnsafeBufferPointer { frame.setInput($0) }
        let t0 = board.time
        for _ in 0..<2000 { _ = try board.execute(.a, frame.buffer) }
        _ = try link.run { b in b.idle(bits: Int((1.0 - (board.time - t0)) * 30e6)) }
        let busy = try pm.read()
        let v2 = try XCTUnwrap(busy.first { $0.name.hasPrefix("VCCINT") })
        XCTAssertGreaterThan(v2.joules, vccint.joules, "compute costs energy")
    }
}
