import Foundation
import XCTest
@testable import AIOTModel

/// Bit-identity of the Swift engine with the numpy reference on every committed vector file.
final class VectorTests: XCTestCase {
    func testEveryCommittedVectorFileIsBitIdentical() throws {
        let pairs = committedModelsWithVectors()
        // The committed set covers every bit-width configuration at the default shape and more shapes.
        XCTAssertGreaterThanOrEqual(pairs.count, 10, "expected the committed random models under models/random")
        var vectorsChecked = 0
        for (modelURL, vectorsURL) in pairs {
            let model = try QuantizedModel(contentsOf: modelURL.path)
            let vectors = try TestVectors(text: String(contentsOf: vectorsURL, encoding: .utf8))
            XCTAssertGreaterThan(vectors.count, 0, vectorsURL.lastPathComponent)
            let engine = SoftwareEngine(model: model)
            let result = try vectors.check(with: engine)
            XCTAssertEqual(result.identical, result.total, "\(modelURL.lastPathComponent): first mismatches \(result.mismatches)")
            vectorsChecked += result.total
        }
        XCTAssertGreaterThan(vectorsChecked, 0)
    }

    func testTheCheckReportsAnAlteredExpectedOutput() throws {
        let (modelURL, vectorsURL) = try XCTUnwrap(committedModelsWithVectors().first)
        let engine = SoftwareEngine(model: try QuantizedModel(contentsOf: modelURL.path))
        var vectors = try TestVectors(text: String(contentsOf: vectorsURL, encoding: .utf8))
        XCTAssertTrue(try vectors.check(with: engine).passed)
        let altered = min(3, vectors.count - 1)
        vectors.outputs[altered * vectors.outputCount] &+= 1
        let result = try vectors.check(with: engine)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.identical, result.total - 1)
        XCTAssertEqual(result.mismatches.map(\.index), [altered])
        XCTAssertEqual(result.mismatches.first?.expected.first, result.mismatches.first.map { $0.actual[0] &+ 1 })
    }

    func testTheCheckFailsOnAnAlteredVectorFileOnDisk() throws {
        let (modelURL, vectorsURL) = try XCTUnwrap(committedModelsWithVectors().first)
        var lines = try String(contentsOf: vectorsURL, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Change the last integer (an expected output) of the first vector line.
        var tokens = lines[1].split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let last = try XCTUnwrap(tokens.lastIndex(where: { Int32($0) != nil }))
        tokens[last] = String(Int32(tokens[last])! &+ 1)
        lines[1] = tokens.joined(separator: " ")
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("altered-\(UUID().uuidString).vectors.txt")
        try lines.joined(separator: "\n").write(to: temp, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: temp) }
        let engine = SoftwareEngine(model: try QuantizedModel(contentsOf: modelURL.path))
        let result = try TestVectors(text: String(contentsOf: temp, encoding: .utf8)).check(with: engine)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.mismatches.first?.index, 0)
    }

    func testThirtyTwoBitPathGivesTheSameIntegers() throws {
        // Committed models narrow nearly every product to 16 bits; a model with a 16-bit pe_add runs
        // its q/k/v on the 32-bit path. Force that path everywhere and require the same vectors.
        for (modelURL, vectorsURL) in committedModelsWithVectors() {
            let engine = SoftwareEngine(model: try QuantizedModel(contentsOf: modelURL.path), narrowOperands: false)
            let vectors = try TestVectors(text: String(contentsOf: vectorsURL, encoding: .utf8))
            let result = try vectors.check(with: engine)
            XCTAssertEqual(result.identical, result.total, "\(modelURL.lastPathComponent): \(result.mismatches)")
        }
    }

    func testBatchEqualsSingleInference() throws {
        for (modelURL, vectorsURL) in committedModelsWithVectors() {
            let engine = SoftwareEngine(model: try QuantizedModel(contentsOf: modelURL.path))
            let vectors = try TestVectors(text: String(contentsOf: vectorsURL, encoding: .utf8))
            var outputs = [Int32](repeating: 0, count: vectors.count * vectors.outputCount)
            try vectors.inputs.withUnsafeBufferPointer { (inp) throws(InferenceError) in
                try outputs.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in
                    try engine.inferBatch(inp, count: vectors.count, into: out)
                }
            }
            XCTAssertEqual(outputs, vectors.outputs, modelURL.lastPathComponent)
        }
    }

    func testEngineRejectsWrongLengthsAndOutOfRangeInputs() throws {
        let model = try QuantizedModel(contentsOf: defaultModelURL.path)
        let engine = SoftwareEngine(model: model)
        let n = model.shape.window * model.shape.features
        XCTAssertThrowsError(try engine.infer([Int32](repeating: 0, count: n - 1))) { error in
            XCTAssertEqual((error as? InferenceError)?.code, .shape)
        }
        var input = [Int32](repeating: 0, count: n)
        input[5] = model.inputAct.hi + 1
        XCTAssertThrowsError(try engine.infer(input)) { error in
            XCTAssertEqual((error as? InferenceError)?.code, .inputRange)
            XCTAssertTrue((error as? InferenceError)?.message.contains("input integer 5") ?? false)
        }
        input[5] = model.inputAct.hi
        XCTAssertEqual(try engine.infer(input).count, model.shape.horizon)
    }

    func testRefusedBatchLeavesOutputsUntouched() throws {
        let model = try QuantizedModel(contentsOf: defaultModelURL.path)
        let engine = SoftwareEngine(model: model)
        let n = model.shape.window * model.shape.features
        var inputs = [Int32](repeating: 0, count: 3 * n)
        inputs[2 * n + 1] = model.inputAct.lo - 1  // the last window is bad
        var outputs = [Int32](repeating: 99, count: 3 * model.shape.horizon)
        XCTAssertThrowsError(try inputs.withUnsafeBufferPointer { (inp) throws(InferenceError) in
            try outputs.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in try engine.inferBatch(inp, count: 3, into: out) }
        }) { error in
            XCTAssertEqual((error as? InferenceError)?.code, .inputRange)
            XCTAssertTrue((error as? InferenceError)?.message.contains("window 2") ?? false)
        }
        XCTAssertEqual(outputs, [Int32](repeating: 99, count: 3 * model.shape.horizon))
    }

    func testVectorFileParserRejectsTruncatedFiles() {
        XCTAssertThrowsError(try TestVectors(text: "aiotvec1 2 3 1\n1 2 3 4\n1 2 3"))
        XCTAssertThrowsError(try TestVectors(text: "aiotvec2 1 1 1\n1 2"))
        XCTAssertThrowsError(try TestVectors(text: "aiotvec1 1 1 1\n1 2 3"))
        XCTAssertEqual(try TestVectors(text: "aiotvec1 1 2 1\n-1 2 3\n").outputs, [3])
    }
}
