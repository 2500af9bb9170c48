import AIOTModel
import Foundation
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

/// Sizes and CRC-32s of the parameter images `tools/aiot/paramimage.py` (`serialize`) builds for the committed
/// models (tools/tests/test_paramimage.py pins the same table): Swift and Python agree byte for byte.
let pythonImages: [String: (Int, UInt32)] = [
    "w12f1d32h1n2p3-w6a8i16o16": (30380, 0x454c519b),
    "w12f2d8h2n2p3-w4a8": (4372, 0x390c13c5),
    "w24f1d16h1n1p1-w4a4": (5192, 0xd5010184),
    "w24f1d16h1n1p1-w4a8": (5672, 0x8f554a7e),
    "w24f1d16h1n1p1-w6a6": (5288, 0xe0896620),
    "w24f1d16h1n1p1-w6a8": (5672, 0x6242e8a8),
    "w24f1d16h1n1p1-w8a8": (5672, 0x83e8cebb),
    "w24f1d16h1n1p1-w8a8o16": (5672, 0x83e0f51a),
    "w24f2d8h1n1p3-w6a6": (2216, 0xc6b7106c),
    "w24f7d32h2n1p1-w8a8": (16680, 0x127a9338),
    "w24f1d16h1n1p1-w8a8i16p16o16": (5672, 0x1bab7abd),
    "w12f2d16h2n1p3-w8a8i16p16o16": (5344, 0xf88d8755),
    // contract v2 (models/random-v2): image format 2 (tools/tests/test_paramimage.py PINNED_V2)
    "w12f2d8h2n2p3-w6a8o16-skip": (4500, 0xfa9f2fa3),
    "w24f1d16h1n1p1-w4a8-skip": (5744, 0xeba35b10),
    "w24f1d16h1n1p1-w8a8-skip": (5744, 0xf0db29c2),
    "w24f1d16h1n1p1-w8a8i16p16o16-skip": (5744, 0x8ce710ed),
    "w24f2d16h1n1p48-w8a8i16o16-skip": (9168, 0xb427acb4),
]

func committedModels(_ folder: String = "models/random") -> [(name: String, model: QuantizedModel, vectors: TestVectors)] {
    let dir = repoRoot.appendingPathComponent(folder)
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
        .filter { $0.hasSuffix(".safetensors") }.sorted()
    return names.compactMap { f in
        let name = String(f.dropLast(".safetensors".count))
        guard let m = try? QuantizedModel(contentsOf: dir.appendingPathComponent(f).path),
              let text = try? String(contentsOfFile: dir.appendingPathComponent(name + ".vectors.txt").path, encoding: .utf8),
              let v = try? TestVectors(text: text) else { return nil }
        return (name, m, v)
    }
}

/// A board running the golden image, synthesized for `shape`.
func board(for shape: ModelShape) throws -> (BoardModel, BoardLink) {
    let (b, link, _) = try bootedBoard()
    b.synthesizedShape = shape
    return (b, link)
}

final class EngineTests: XCTestCase {
    func testSwiftImageMatchesPythonImageForEveryCommittedModel() throws {
        let models = committedModels() + committedModels("models/random-v2")
        XCTAssertEqual(models.count, pythonImages.count, "every committed model loads")
        for (name, m, _) in models {
            let image = try ParameterImage.serialize(ParameterSet(model: m))
            let expected = try XCTUnwrap(pythonImages[name], name)
            XCTAssertEqual(image.count, expected.0, name)
            XCTAssertEqual(CRC32.checksum(image), expected.1, name)
            XCTAssertEqual(try ParameterImage.deserialize(image), ParameterSet(model: m), name)
        }
    }

    /// Over the link, on every committed vector: outputs equal the software engine's and the
    /// numpy reference's, and the counters show exactly one USB round trip per inference.
    func testInferenceOverTheLinkIsBitIdenticalWithOneRoundTripEach() throws {
        for (name, m, v) in committedModels() {
            let (b, link) = try board(for: m.shape)
            let sw = SoftwareEngine(model: m)
            let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                        fallback: SoftwareEngine(model: m), upload: true)
            let before = b.counters(.a)
            for k in 0..<v.count {
                let input = Array(v.inputs[(k * v.inputCount)..<((k + 1) * v.inputCount)])
                let out = try engine.infer(input)
                XCTAssertEqual(out, Array(v.outputs[(k * v.outputCount)..<((k + 1) * v.outputCount)]), "\(name) vector \(k)")
                XCTAssertEqual(out, try sw.infer(input), "\(name) vector \(k)")
                XCTAssertEqual(engine.lastEngine, .fpga)
            }
            let after = b.counters(.a)
            XCTAssertEqual(after.roundTrips - before.roundTrips, v.count, "\(name): one round trip per inference")
            let perInference = (after.bytesOut - before.bytesOut) / v.count
            XCTAssertEqual(perInference, 68 + 2 * v.inputCount, "\(name) bytes out")
            XCTAssertEqual((after.bytesIn - before.bytesIn) / v.count, 16 + 2 * v.outputCount + 4 + 32, "\(name) bytes in")
            XCTAssertEqual(engine.stats.fpgaInferences, v.count)
            XCTAssertEqual(engine.health, .healthy)
        }
    }

    func testADeviceThatVanishesMidInferenceFallsBackWithTheSameOutputsAndComesBack() throws {
        let (name, m, v) = try XCTUnwrap(committedModels().first { $0.name == "w24f1d16h1n1p1-w8a8" })
        let (b, link) = try board(for: m.shape)
        var policy = FPGAEngine.Policy()
        policy.probeEvery = 5
        let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                    fallback: SoftwareEngine(model: m), upload: true, policy: policy)
        var used: [EngineKind] = []
        for k in 0..<v.count {
            if k == 3 {
                var f = BoardFaults()
                f.disappearAfterBytes = 40   // inside the input window of the next buffer
                b.faults = f
            }
            if k == 12 { b.reappear() }
            let input = Array(v.inputs[(k * v.inputCount)..<((k + 1) * v.inputCount)])
            XCTAssertEqual(try engine.infer(input), Array(v.outputs[(k * v.outputCount)..<((k + 1) * v.outputCount)]), "\(name) vector \(k)")
            used.append(engine.lastEngine)
            if k == 3 { XCTAssertEqual(engine.health, .fallenBack) }
        }
        XCTAssertEqual(Array(used[0..<3]), [.fpga, .fpga, .fpga])
        XCTAssertTrue(used[3..<12].allSatisfy { $0 == .software })
        XCTAssertEqual(used.last, .fpga, "probes bring the board back")
        XCTAssertEqual(engine.health, .healthy)
        XCTAssertEqual(engine.stats.recoveries, 1)
        XCTAssertGreaterThan(engine.stats.probes, 1)
    }

    func testFlippedBytesAndAStalledBusyAreRetriedThenFallBack() throws {
        let (_, m, v) = try XCTUnwrap(committedModels().first { $0.name == "w24f1d16h1n1p1-w8a8" })
        let (b, link) = try board(for: m.shape)
        let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                    fallback: SoftwareEngine(model: m), upload: true)
        let input = Array(v.inputs[0..<v.inputCount]), expected = Array(v.outputs[0..<v.outputCount])
        var f = BoardFaults()
        f.flipMISOByte = 18
        b.faults = f
        XCTAssertEqual(try engine.infer(input), expected)
        XCTAssertEqual(engine.lastEngine, .fpga, "one retry over the link fixed it")
        XCTAssertEqual(engine.stats.failures, 1)
        XCTAssertTrue(engine.stats.lastError?.contains("RESULT_CRC") == true)
        f = BoardFaults()
        f.stallBusy = true
        b.faults = f
        XCTAssertEqual(try engine.infer(input), expected)
        XCTAssertEqual(engine.lastEngine, .software)
        XCTAssertEqual(engine.health, .fallenBack)
    }

    func testEngineRefusesABoardHoldingAnotherModel() throws {
        let models = committedModels()
        let (_, a, _) = try XCTUnwrap(models.first { $0.name == "w24f1d16h1n1p1-w8a8" })
        let (_, other, _) = try XCTUnwrap(models.first { $0.name == "w24f1d16h1n1p1-w4a8" })
        let (_, link) = try board(for: a.shape)
        _ = try link.upload(image: try ParameterImage.serialize(ParameterSet(model: other)), identity: identityBytes(other.identity)!)
        XCTAssertThrowsError(try FPGAEngine(link: link, parameters: ParameterSet(model: a), identity: identityBytes(a.identity)!,
                                            fallback: SoftwareEngine(model: a))) { e in
            XCTAssertEqual((e as! BoardError).kind, .identity)
        }
    }

    /// A contract v2 model (linear skip path) on a bitstream from before the skip path (VERSION
    /// 1.0): the upload, and with it the fpga engine (daemon and aiotctl build it the same way),
    /// refuses it by name before writing anything, instead of a bare header error; and the board
    /// model's 1.0 accelerator refuses the format 2 image itself (error 0x04) like that RTL.
    func testContractV2ModelIsRefusedOnTheFPGAEngine() throws {
        let path = repoRoot.appendingPathComponent("models/random-v2/w24f1d16h1n1p1-w8a8-skip.safetensors").path
        let m = try QuantizedModel(contentsOf: path)
        XCTAssertEqual(m.version, 2)
        let image = try ParameterImage.serialize(ParameterSet(model: m))
        XCTAssertEqual(ParameterImage.formatVersion(image), 2)
        let (b, link) = try board(for: m.shape)
        b.acceleratorVersion = 0x0001_0000
        XCTAssertEqual(try link.info().version, "1.0")
        let sent = b.counters(.a).bytesOut
        XCTAssertThrowsError(try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                            fallback: SoftwareEngine(model: m), upload: true)) { e in
            XCTAssertEqual((e as! BoardError).kind, .image)
            let msg = (e as! BoardError).message
            XCTAssertTrue(msg.contains("version 2") && msg.contains("VERSION 1.0") && msg.contains("engine \"software\""), msg)
        }
        XCTAssertLessThan(b.counters(.a).bytesOut - sent, image.count, "nothing of the image was written")
        // bypassing the host's check: the 1.0 accelerator's header check refuses format 2
        try link.writeAccelerator(Reg.params, image)
        _ = try link.run { c in
            c.accWrite32(Reg.paramLength, UInt32(image.count))
            c.accWrite32(Reg.paramExpectedCRC, CRC32.checksum(image))
            c.accWrite32(Reg.control, Reg.verifyParams)
        }
        let st = try link.info()
        XCTAssertFalse(st.paramsValid)
        XCTAssertEqual(st.errorCode, 0x04)
        XCTAssertTrue(b.parameterRefusal?.contains("format 2") == true, b.parameterRefusal ?? "nil")
        // the same board with the current bitstream takes it
        b.acceleratorVersion = Reg.versionValue
        XCTAssertNoThrow(try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                        fallback: SoftwareEngine(model: m), upload: true))
    }

    /// Every contract v2 model of models/random-v2 served by the fpga engine through the board
    /// model (image format 2, VERSION 1.1): outputs equal the committed vectors (numpy) and the
    /// software engine's, all from the accelerator.
    func testContractV2ModelsServeOnTheFPGAEngine() throws {
        let models = committedModels("models/random-v2")
        XCTAssertEqual(models.count, 5, "every committed v2 model loads")
        for (name, m, v) in models {
            XCTAssertEqual(m.version, 2, name)
            let (b, link) = try board(for: m.shape)
            let sw = SoftwareEngine(model: m)
            let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                        fallback: SoftwareEngine(model: m), upload: true)
            for k in 0..<v.count {
                let input = Array(v.inputs[(k * v.inputCount)..<((k + 1) * v.inputCount)])
                let out = try engine.infer(input)
                XCTAssertEqual(out, Array(v.outputs[(k * v.outputCount)..<((k + 1) * v.outputCount)]), "\(name) vector \(k)")
                XCTAssertEqual(out, try sw.infer(input), "\(name) vector \(k)")
                XCTAssertEqual(engine.lastEngine, .fpga, name)
            }
            XCTAssertEqual(Int(engine.lastCycles), BoardModel.modelledCycles(m.shape, skip: true), name)
            XCTAssertGreaterThan(BoardModel.modelledCycles(m.shape, skip: true), BoardModel.modelledCycles(m.shape), name)
            _ = b
        }
    }

    func testEnergyPerInferenceComesFromTheAccumulators() throws {
        let (_, m, v) = try XCTUnwrap(committedModels().first { $0.name == "w24f1d16h1n1p1-w8a8" })
        let (_, link) = try board(for: m.shape)
        let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                    fallback: SoftwareEngine(model: m), upload: true)
        _ = try engine.closeEnergyWindow()
        let input = Array(v.inputs[0..<v.inputCount])
        for _ in 0..<500 { _ = try engine.infer(input) }
        let w = try engine.closeEnergyWindow()
        XCTAssertEqual(w.inferences, 500)
        let e = try XCTUnwrap(w.joulesPerInference)
        // Idle FPGA rails draw ~51 mW; each inference is one ~0.3 ms round trip plus compute.
        XCTAssertGreaterThan(e, 1e-6)
        XCTAssertLessThan(e, 1e-3)
        XCTAssertGreaterThan(w.seconds, 0)
    }
}

/// The figures quoted in docs/performance.md ("Board link"), measured on the board model.
final class LinkFigureTests: XCTestCase {
    func testModelledLinkFigures() throws {
        for (name, m, v) in committedModels() where name == "w24f1d16h1n1p1-w8a8" || name == "w24f7d32h2n1p1-w8a8" {
            let (b, link) = try board(for: m.shape)
            let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                        fallback: SoftwareEngine(model: m), upload: true)
            let input = Array(v.inputs[0..<v.inputCount])
            let c0 = b.counters(.a), t0 = b.time
            for _ in 0..<100 { _ = try engine.infer(input) }
            let c1 = b.counters(.a), t1 = b.time
            let perInference = (t1 - t0) / 100
            let cycles = BoardModel.modelledCycles(m.shape)
            print(String(format: "LINK %@: %d round trips/inference, %d B out, %d B in, modelled %.1f us/inference (compute %d cycles = %.1f us at 100 MHz)",
                         name, (c1.roundTrips - c0.roundTrips) / 100, (c1.bytesOut - c0.bytesOut) / 100, (c1.bytesIn - c0.bytesIn) / 100,
                         perInference * 1e6, cycles, Double(cycles) / 100))
            XCTAssertEqual((c1.roundTrips - c0.roundTrips), 100)
            XCTAssertLessThan(perInference, 1e-3)
        }
        let (_, link, _) = try bootedBoard()
        var gen = BitstreamGenerator()
        gen.seed = 3
        let bit = try Bitstream(bytes: gen.bitFile())
        var o = FlashOptions()
        o.slot = 1
        let r = try Flasher(link: link).flash(bit, options: o)
        let part = flashParts[0]
        let chip = Double(r.sectorsErased.count) * part.sectorEraseSeconds + Double(r.pagesProgrammed) * part.pageProgramSeconds
        print(String(format: "FLASH %d bytes: erase %.3f s, program %.3f s, verify %.3f s, total %.3f s (incl. compare reads); chip's own typ erase+program %.3f s; %d round trips, %d B out, %d B in",
                     r.imageBytes, r.eraseSeconds ?? 0, r.programSeconds ?? 0, r.verifySeconds ?? 0, r.totalSeconds ?? 0, chip,
                     r.roundTrips, r.bytesOut, r.bytesIn))
        XCTAssertGreaterThan(r.totalSeconds!, chip)
        let boot = try link.boot(slot: 1)
        print(String(format: "BOOT slot 1: %.3f s", boot.seconds ?? 0))
    }
}

final class EngineStartTests: XCTestCase {
    func testAnUnreachableBoardStartsFallenBackAndIsPickedUpByAProbe() throws {
        let (_, m, v) = try XCTUnwrap(committedModels().first { $0.name == "w24f1d16h1n1p1-w8a8" })
        let (b, link) = try board(for: m.shape)
        var f = BoardFaults()
        f.disappearAfterBytes = 0
        b.faults = f
        var policy = FPGAEngine.Policy()
        policy.probeEvery = 2
        XCTAssertThrowsError(try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                            fallback: SoftwareEngine(model: m), upload: true, policy: policy))
        let engine = try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                                    fallback: SoftwareEngine(model: m), upload: true, startWithoutBoard: true, policy: policy)
        XCTAssertEqual(engine.health, .fallenBack)
        let input = Array(v.inputs[0..<v.inputCount]), expected = Array(v.outputs[0..<v.outputCount])
        XCTAssertEqual(try engine.infer(input), expected)
        XCTAssertEqual(engine.lastEngine, .software)
        b.reappear()
        XCTAssertEqual(try engine.infer(input), expected)
        XCTAssertEqual(engine.lastEngine, .fpga, "the probe uploaded the weights and the board took over")
    }
}

/// A device double for counting the host's own allocations: it answers the one-buffer inference
/// with a well-formed RESULT block (right sequence, INPUT_CRC of the bytes it was sent, RESULT_CRC)
/// computed in place, so anything allocated during `infer` is the host's.
final class CountingAccelerator: Transport {
    var sequence: UInt32 = 0
    var roundTrips = 0
    let name = "counting"
    var modelledSeconds: Double? { nil }
    let inputOffset = 10, inputBytes: Int
    /// MODEL_ID as the double reports it after each result.
    let identity: [UInt8]
    init(inputCount: Int, identity: [UInt8]) { inputBytes = 2 * inputCount; self.identity = identity }
    func execute(_ channel: Channel, _ commands: UnsafeRawBufferPointer, reply all: UnsafeMutableRawBufferPointer) throws(LinkError) {
        roundTrips += 1
        guard commands.count == 68 + inputBytes else {   // not an inference: registers read as zero
            for k in 0..<all.count { all[k] = 0 }
            return
        }
        for k in 0..<32 { all[all.count - 32 + k] = identity[k] }
        let reply = UnsafeMutableRawBufferPointer(rebasing: all[0..<(all.count - 32)])
        sequence &+= 1
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(rebasing: commands[inputOffset..<(inputOffset + inputBytes)]))
        func put(_ v: UInt32, _ o: Int) { for k in 0..<4 { reply[o + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
        put(Reg.done | Reg.paramsValid, 0); put(sequence, 4); put(crc.value, 8); put(0, 12)
        for k in 16..<(reply.count - 4) { reply[k] = 0 }
        var rc = CRC32()
        rc.update(UnsafeRawBufferPointer(rebasing: reply[0..<(reply.count - 4)]))
        put(rc.value, reply.count - 4)
    }
    func recover() throws(LinkError) {}
    func counters(_ channel: Channel) -> LinkCounters { LinkCounters() }
}
