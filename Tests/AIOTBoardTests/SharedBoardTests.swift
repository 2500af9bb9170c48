import AIOTModel
import Foundation
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

/// Issue 11 point 4: several FPGA streams share one board. No inference may run on, or return a
/// result computed with, weights that are not its own model's.
final class SharedBoardTests: XCTestCase {
    /// Two models of the same shape whose outputs differ on the committed vectors.
    func twoModels() throws -> (QuantizedModel, QuantizedModel, TestVectors) {
        let models = committedModels()
        let (_, a, v) = try XCTUnwrap(models.first { $0.name == "w24f1d16h1n1p1-w8a8" })
        let (_, b, _) = try XCTUnwrap(models.first { $0.name == "w24f1d16h1n1p1-w4a8" })
        XCTAssertEqual(a.shape, b.shape)
        return (a, b, v)
    }

    func window(_ v: TestVectors, _ k: Int) -> [Int32] { Array(v.inputs[(k * v.inputCount)..<((k + 1) * v.inputCount)]) }

    /// Streams A and B, both allowed to upload, sharing the board's lease (as the daemon's
    /// EngineProvider does): they take turns, each re-uploading its weights on a switch.
    func testTwoModelsTakeTurnsOnOneBoard() throws {
        let (a, b, v) = try twoModels()
        let (_, link) = try board(for: a.shape)
        let lease = AcceleratorLease()
        func engine(_ m: QuantizedModel) throws -> FPGAEngine {
            try FPGAEngine(link: link, parameters: ParameterSet(model: m), identity: identityBytes(m.identity)!,
                           fallback: SoftwareEngine(model: m), upload: true, lease: lease)
        }
        let ea = try engine(a), eb = try engine(b)
        let sa = SoftwareEngine(model: a), sb = SoftwareEngine(model: b)
        var differ = 0
        for k in 0..<v.count {
            let x = window(v, k)
            let ya = try ea.infer(x), yb = try eb.infer(x)
            XCTAssertEqual(ya, try sa.infer(x), "A, vector \(k)")
            XCTAssertEqual(yb, try sb.infer(x), "B, vector \(k)")
            XCTAssertEqual(ea.lastEngine, .fpga)
            XCTAssertEqual(eb.lastEngine, .fpga)
            if ya != yb { differ += 1 }
        }
        XCTAssertGreaterThan(differ, 0, "the two models must disagree somewhere, or the test proves nothing")
        XCTAssertEqual(ea.stats.identityMismatches + eb.stats.identityMismatches, 0, "the lease prevents every wrong run")
        XCTAssertEqual(ea.stats.fpgaInferences, v.count)
        XCTAssertGreaterThanOrEqual(ea.stats.uploads, v.count - 1, "A re-uploads after each of B's turns")
    }

    /// Without a shared lease (two processes, or engines made apart), the MODEL_ID read back in
    /// the same round trip catches the switch: the result is discarded and recomputed on this
    /// model's weights.
    func testWithoutASharedLeaseTheReadBackIdentityCatchesTheSwitch() throws {
        let (a, b, v) = try twoModels()
        let (_, link) = try board(for: a.shape)
        let ea = try FPGAEngine(link: link, parameters: ParameterSet(model: a), identity: identityBytes(a.identity)!,
                                fallback: SoftwareEngine(model: a), upload: true)
        let eb = try FPGAEngine(link: link, parameters: ParameterSet(model: b), identity: identityBytes(b.identity)!,
                                fallback: SoftwareEngine(model: b), upload: true)
        let sa = SoftwareEngine(model: a), sb = SoftwareEngine(model: b)
        for k in 0..<v.count {
            let x = window(v, k)
            XCTAssertEqual(try ea.infer(x), try sa.infer(x), "A, vector \(k)")
            XCTAssertEqual(try eb.infer(x), try sb.infer(x), "B, vector \(k)")
            XCTAssertEqual(ea.lastEngine, .fpga)
        }
        XCTAssertGreaterThan(ea.stats.identityMismatches, 0, "A's results on B's weights were seen and discarded")
    }

    /// An engine that may not upload (upload_weights = false) and finds another model's weights
    /// (another tool uploaded them) answers from the software engine, with its own model.
    func testAnEngineThatMayNotUploadNeverUsesAnotherModelsWeights() throws {
        let (a, b, v) = try twoModels()
        let (_, link) = try board(for: a.shape)
        _ = try link.upload(image: try ParameterImage.serialize(ParameterSet(model: a)), identity: identityBytes(a.identity)!)
        let ea = try FPGAEngine(link: link, parameters: ParameterSet(model: a), identity: identityBytes(a.identity)!,
                                fallback: SoftwareEngine(model: a))
        let sa = SoftwareEngine(model: a)
        XCTAssertEqual(try ea.infer(window(v, 0)), try sa.infer(window(v, 0)))
        XCTAssertEqual(ea.lastEngine, .fpga)
        // `aiotctl upload-weights B` while the daemon serves A.
        _ = try link.upload(image: try ParameterImage.serialize(ParameterSet(model: b)), identity: identityBytes(b.identity)!)
        for k in 1..<v.count {
            XCTAssertEqual(try ea.infer(window(v, k)), try sa.infer(window(v, k)), "vector \(k)")
            XCTAssertEqual(ea.lastEngine, .software, "vector \(k)")
        }
        XCTAssertEqual(ea.stats.identityMismatches, 1)
        XCTAssertEqual(ea.stats.uploads, 0, "B's weights were left alone")
        XCTAssertEqual(try link.info().modelID, b.identity)
    }

    /// The daemon's path: one BoardSession, engines from the shared selector.
    func testTheSelectorSharesOneLeasePerBoard() throws {
        let (a, b, v) = try twoModels()
        let path = NSTemporaryDirectory() + "aiot-shared-\(getpid()).sim"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try BoardModel(path: path)
        model.factoryProgram(BitstreamGenerator().payload(), at: 0)
        model.powerCycle()
        try model.save()
        let session = try BoardSession(parsing: "sim:" + path)
        let ea = try makeEngine(.fpga, model: a, board: session, upload: true) as! FPGAEngine
        let eb = try makeEngine(.fpga, model: b, board: session, upload: true) as! FPGAEngine
        XCTAssertTrue(ea.lease === eb.lease)
        XCTAssertTrue(try makeEngine(.software, model: a, board: nil, upload: false) is SoftwareEngine)
        XCTAssertThrowsError(try makeEngine(.fpga, model: a, board: nil, upload: false))
        for k in 0..<4 {
            XCTAssertEqual(try ea.infer(window(v, k)), try SoftwareEngine(model: a).infer(window(v, k)))
            XCTAssertEqual(try eb.infer(window(v, k)), try SoftwareEngine(model: b).infer(window(v, k)))
        }
        XCTAssertEqual(ea.stats.identityMismatches + eb.stats.identityMismatches, 0)
    }
}
