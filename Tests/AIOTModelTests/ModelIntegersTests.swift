import Foundation
import XCTest
@testable import AIOTModel

/// `QuantizedModel(integers:)`: a model rebuilt from its bare integers (what a parameter image
/// carries) computes the same outputs, and integers that break a rule of docs/arithmetic.md are
/// refused by name, exactly as in a model file.
final class ModelIntegersTests: XCTestCase {
    func testEveryCommittedModelRebuiltFromItsIntegersIsBitIdentical() throws {
        let pairs = committedModelsWithVectors()
        XCTAssertGreaterThanOrEqual(pairs.count, 10)
        for (modelURL, vectorsURL) in pairs {
            let name = modelURL.lastPathComponent
            let model = try QuantizedModel(contentsOf: modelURL.path)
            let integers = ModelIntegers(model: model)
            let rebuilt = try QuantizedModel(integers: integers, identity: model.identity)
            XCTAssertEqual(ModelIntegers(model: rebuilt), integers, name)
            XCTAssertEqual(rebuilt.layers.map(\.probsAct), model.layers.map(\.probsAct), "the softmax grid is fixed: \(name)")
            XCTAssertEqual(rebuilt.identity, model.identity)
            let vectors = try TestVectors(text: String(contentsOf: vectorsURL, encoding: .utf8))
            let result = try vectors.check(with: SoftwareEngine(model: rebuilt))
            XCTAssertEqual(result.identical, result.total, "\(name): first mismatches \(result.mismatches)")
        }
    }

    func testIntegersThatBreakTheContractAreRefusedByName() throws {
        let good = ModelIntegers(model: try QuantizedModel(contentsOf: defaultModelURL.path))
        XCTAssertNoThrow(try QuantizedModel(integers: good))
        func rejects(_ code: ModelFileError.Code, _ field: String, line: UInt = #line, _ edit: (inout ModelIntegers) -> Void) {
            var m = good
            edit(&m)
            XCTAssertThrowsError(try QuantizedModel(integers: m), line: line) { e in
                guard let e = e as? ModelFileError else { return XCTFail("\(e)", line: line) }
                XCTAssertEqual(e.code, code, e.message, line: line)
                XCTAssertEqual(e.field, field, e.message, line: line)
            }
        }
        rejects(.shape, "shape.layers") { $0.shape.layers = 9 }
        rejects(.shape, "pe") { $0.tensors["pe"]!.removeLast() }
        rejects(.shape, "layers.0.ffn1.weight") { $0.tensors["layers.0.ffn1.weight"] = nil }
        rejects(.tensorLayout, "layers.1.q.weight") { $0.tensors["layers.1.q.weight"] = [0] }
        rejects(.range, "layers.0.q.weight") { $0.tensors["layers.0.q.weight"]![3] = 200 }
        rejects(.range, "layers.0.q.weight") { $0.weights["layers.0.q.weight"]!.bits = 4 }   // 8-bit values on a 4-bit grid
        rejects(.range, "activations.layers.0.k.bits") { $0.activations["layers.0.k"]!.bits = 7 }
        rejects(.range, "activations.layers.0.probs.zero_point") { $0.activations["layers.0.probs"]!.zeroPoint = 0 }
        rejects(.range, "requant.head.m") { $0.requant["head"]!.m1 = 70000 }
        rejects(.range, "requant.layers.0.res1.n") { $0.requant["layers.0.res1"]!.n = 41 }
        rejects(.metadata, "requant.pool") { $0.requant["pool"] = nil }
        rejects(.metadata, "activations.output") { $0.activations["output"] = nil }
        rejects(.expTable, "layers.0.softmax.exp") { $0.tensors["layers.0.softmax.exp"]![5] = 40000 }
        rejects(.expTable, "layers.0.softmax.exp") { $0.tensors["layers.0.softmax.exp"]![0] = 30000 }
    }

    func testAnAccumulatorBoundIsEnforced() throws {
        // As in LoaderRejectionTests.testAccumulatorBound: d = 256 with a 16-bit pe_add feeding 8-bit
        // q/k/v weights, 256 * (2^16 - 1) * 255 + 2^25 - 1 > 2^31 - 1.
        var wide = ModelIntegers(model: try QuantizedModel(bytes: ModelParts.synthetic(dModel: 256, wideBits: 8).bytes()))
        XCTAssertNoThrow(try QuantizedModel(integers: wide))
        wide.activations["pe_add"]!.bits = 16
        XCTAssertThrowsError(try QuantizedModel(integers: wide)) { e in
            let e = e as! ModelFileError
            XCTAssertEqual(e.code, .bound)
            XCTAssertEqual(e.field, "layers.0.q")
            XCTAssertTrue(e.message.contains("2^31 - 1"), e.message)
        }
    }
}
