import Foundation
import XCTest
@testable import AIOTModel

/// Contract v2 (docs/arithmetic.md §5 steps 15-17): the linear skip path loads, runs bit-identically
/// (VectorTests covers every committed v2 vector file), and inconsistent files are refused by name.
final class ContractV2Tests: XCTestCase {
    private let v2URL = repoRoot.appendingPathComponent("models/random-v2/w24f1d16h1n1p1-w8a8-skip.safetensors")

    func testVersionsLoadWithAndWithoutTheSkipPath() throws {
        let v1 = try QuantizedModel(contentsOf: defaultModelURL.path)
        XCTAssertEqual(v1.version, 1)
        XCTAssertNil(v1.skip)
        let v2 = try QuantizedModel(contentsOf: v2URL.path)
        XCTAssertEqual(v2.version, 2)
        let skip = try XCTUnwrap(v2.skip)
        XCTAssertEqual(skip.linear.outputs, v2.shape.horizon)
        XCTAssertEqual(skip.linear.inputs, v2.shape.window * v2.shape.features)
        XCTAssertEqual(skip.skipAct.bits, 16)
    }

    func testTheSkipPathChangesTheForecast() throws {
        // Guards against an engine that ignores the skip path: zeroing its weights (centered) must
        // change some output of the committed vectors.
        let model = try QuantizedModel(contentsOf: v2URL.path)
        let vectors = try TestVectors(text: String(contentsOf: v2URL.deletingPathExtension().appendingPathExtension("vectors.txt"), encoding: .utf8))
        var parts = ModelIntegers(model: model)
        let zw = Int32(parts.weights["skip.weight"]!.zeroPoint)
        parts.tensors["skip.weight"] = parts.tensors["skip.weight"]!.map { _ in zw }
        let same = try QuantizedModel(integers: ModelIntegers(model: model))
        XCTAssertTrue(try vectors.check(with: SoftwareEngine(model: same)).passed, "the integer parts round-trip")
        let without = try QuantizedModel(integers: parts)
        XCTAssertFalse(try vectors.check(with: SoftwareEngine(model: without)).passed)
    }

    func testInconsistentVersionAndTensorsAreRefused() throws {
        let v2 = try bytes(of: v2URL)
        var f = try EditableModelFile(v2)
        f.editMeta(["version"], .int(1))
        assertRejects(f.bytes(), .tensorLayout, field: "skip.bias", mentioning: ["version 2"])
        var g = try EditableModelFile(try bytes(of: defaultModelURL))
        g.editMeta(["version"], .int(2))
        assertRejects(g.bytes(), .shape, field: "skip.weight", mentioning: ["[1, 24]", "version 2"])
        var h = try EditableModelFile(v2)
        h.editMeta(["version"], .int(3))
        assertRejects(h.bytes(), .unsupported, field: "version", mentioning: ["1 to 2"])
    }

    func testV2MetadataIsChecked() throws {
        let v2 = try bytes(of: v2URL)
        var f = try EditableModelFile(v2)
        f.editMeta(["activations", "skip", "bits"], .int(17))
        assertRejects(f.bytes(), .range, field: "activations.skip.bits")
        var g = try EditableModelFile(v2)
        g.editMeta(["requant", "output", "m2"], .int(70000))
        assertRejects(g.bytes(), .range, field: "requant.output.m2")
    }

    func testInconsistentSkipShapesAreRefusedInIntegerParts() throws {
        var parts = ModelIntegers(model: try QuantizedModel(contentsOf: v2URL.path))
        parts.tensors["skip.weight"]!.removeLast()
        XCTAssertThrowsError(try QuantizedModel(integers: parts)) { e in
            let err = e as! ModelFileError
            XCTAssertEqual(err.field, "skip.weight")
            XCTAssertTrue(err.message.contains("[1, 24]"), err.message)
        }
        var noReq = ModelIntegers(model: try QuantizedModel(contentsOf: v2URL.path))
        noReq.requant["output"] = nil
        XCTAssertThrowsError(try QuantizedModel(integers: noReq)) { e in
            XCTAssertEqual((e as! ModelFileError).field, "requant.output")
        }
    }
}
