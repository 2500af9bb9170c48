import Foundation
import XCTest
@testable import AIOTModel

/// The loader refuses truncated, corrupt and hostile model files with an error naming the field.
/// Each test corrupts the committed default-shape W8A8 model in one way.
final class LoaderRejectionTests: XCTestCase {
    private var original: [UInt8] = []

    override func setUpWithError() throws {
        original = try bytes(of: defaultModelURL)
        XCTAssertNoThrow(try QuantizedModel(bytes: original), "the base model must load")
    }

    private func editedMeta(_ path: [String], _ value: JSONValue) throws -> [UInt8] {
        var f = try EditableModelFile(original)
        f.editMeta(path, value)
        return f.bytes()
    }

    // MARK: container

    func testTruncatedFiles() throws {
        assertRejects(Array(original.prefix(5)), .truncated)
        assertRejects(Array(original.prefix(100)), .truncated, mentioning: ["truncated"])          // inside the header
        assertRejects(Array(original.prefix(original.count - 1)), .truncated, mentioning: ["truncated"])  // inside the data
        assertRejects(Array(original.prefix(original.count / 2)), .truncated)
        assertRejects([], .truncated)
    }

    func testWrongHeaderLength() throws {
        let f = try EditableModelFile(original)
        assertRejects(f.bytes(headerLength: UInt64(original.count)), .truncated, mentioning: ["header length"])
        assertRejects(f.bytes(headerLength: 1 << 40), .header, mentioning: ["header length"])
        assertRejects(f.bytes(headerLength: 0), .header)
        // Too short: the JSON is cut and the rest is read as data.
        assertRejects(f.bytes(headerLength: 64), .header, mentioning: ["not valid JSON"])
    }

    func testNotASafetensorsFile() {
        assertRejects(Array("GIF89a this is not a model file at all......".utf8), .header)
    }

    func testInvalidHeaderJSON() throws {
        var bad = original
        bad[8] = UInt8(ascii: "[")  // header must start with '{'
        assertRejects(bad, .header, mentioning: ["JSON"])
        // Break the closing brace of the header object.
        var bad2 = original
        var length = 0
        for i in 0..<8 { length |= Int(original[i]) << (8 * i) }
        let close = try XCTUnwrap((8..<(8 + length)).last(where: { original[$0] == UInt8(ascii: "}") }))
        bad2[close] = UInt8(ascii: ",")
        assertRejects(bad2, .header, mentioning: ["not valid JSON"])
    }

    func testInvalidMetadataJSON() throws {
        // bytes() would re-serialize the metadata; write the broken string directly instead.
        let f = try EditableModelFile(original)
        var h = f.header
        h.set("__metadata__", .object([("aiot", .string("{\"format\": \"aiot-int-transformer\", "))]))
        var text = Array(h.serialized.utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        let file = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(text.count) >> (8 * UInt64($0))) } + text + f.data
        assertRejects(file, .metadata, field: "__metadata__.aiot", mentioning: ["not valid JSON"])
    }

    func testMissingMetadata() throws {
        var f = try EditableModelFile(original)
        f.header.remove("__metadata__")
        var text = Array(f.header.serialized.utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        let file = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(text.count) >> (8 * UInt64($0))) } + text + f.data
        assertRejects(file, .unsupported, field: "__metadata__.aiot")
    }

    func testHeaderThatLiesAboutTensorSizes() throws {
        var f = try EditableModelFile(original)
        // Claim a bigger shape for the same bytes.
        f.editHeader(["layers.0.q.weight", "shape"], .array([.int(16), .int(17)]))
        assertRejects(f.bytes(), .tensorLayout, field: "layers.0.q.weight", mentioning: ["needs"])

        var g = try EditableModelFile(original)
        g.editHeader(["pe", "dtype"], .string("I16"))  // half the bytes it spans
        assertRejects(g.bytes(), .tensorLayout, field: "pe")

        var h = try EditableModelFile(original)
        h.editHeader(["head.bias", "dtype"], .string("F32"))
        assertRejects(h.bytes(), .tensorLayout, field: "head.bias", mentioning: ["dtype"])
    }

    func testOverlappingAndHoleyOffsets() throws {
        var f = try EditableModelFile(original)
        let r = f.range(of: "head.bias")
        // Shift one tensor's range by 4 bytes: it now overlaps one neighbour and leaves a hole.
        f.editHeader(["head.bias", "data_offsets"], .array([.int(Int64(r.lowerBound + 4)), .int(Int64(r.upperBound + 4))]))
        assertRejects(f.bytes(), .tensorLayout)

        var g = try EditableModelFile(original)
        g.data += [0, 0, 0, 0]
        assertRejects(g.bytes(), .tensorLayout, mentioning: ["belong to no tensor"])

        var h = try EditableModelFile(original)
        h.editHeader(["head.bias", "data_offsets"], .array([.int(Int64(r.upperBound)), .int(Int64(r.lowerBound))]))
        assertRejects(h.bytes(), .tensorLayout, field: "head.bias")
    }

    // MARK: metadata values

    func testOutOfRangeZeroPoint() throws {
        assertRejects(try editedMeta(["activations", "layers.0.q", "zero_point"], .int(200)), .range,
                      field: "activations.layers.0.q.zero_point", mentioning: ["-128 ... 127"])
        assertRejects(try editedMeta(["weights", "layers.0.ffn1.weight", "zero_point"], .int(-129)), .range,
                      field: "weights.layers.0.ffn1.weight.zero_point")
    }

    func testMultiplierAndShiftOutOfBounds() throws {
        assertRejects(try editedMeta(["requant", "layers.0.q", "m"], .int(65536)), .range, field: "requant.layers.0.q.m", mentioning: ["65535"])
        assertRejects(try editedMeta(["requant", "layers.0.q", "m"], .int(-1)), .range, field: "requant.layers.0.q.m")
        assertRejects(try editedMeta(["requant", "head", "n"], .int(41)), .range, field: "requant.head.n", mentioning: ["40"])
        assertRejects(try editedMeta(["requant", "head", "n"], .int(-1)), .range, field: "requant.head.n")
        assertRejects(try editedMeta(["requant", "layers.0.res1", "m2"], .int(70000)), .range, field: "requant.layers.0.res1.m2")
        assertRejects(try editedMeta(["requant", "pe_add", "n"], .int(64)), .range, field: "requant.pe_add.n")
    }

    func testMismatchedDims() throws {
        var wider = try EditableModelFile(original)
        wider.editMeta(["shape", "d_model"], .int(32))
        wider.editMeta(["shape", "ffn"], .int(128))
        assertRejects(wider.bytes(), .shape, mentioning: ["shape W=24 F=1 d=32"])
        assertRejects(try editedMeta(["shape", "window"], .int(12)), .shape, field: "pe")
        assertRejects(try editedMeta(["shape", "horizon"], .int(3)), .shape, field: "head.weight")
        assertRejects(try editedMeta(["shape", "ffn"], .int(48)), .shape, field: "shape.ffn")
        assertRejects(try editedMeta(["shape", "heads"], .int(3)), .shape, field: "shape.heads")
        assertRejects(try editedMeta(["shape", "window"], .int(257)), .shape, field: "shape.window")
        // Same byte count, different dims: [16, 16] read as [8, 32].
        var f = try EditableModelFile(original)
        f.editHeader(["layers.0.k.weight", "shape"], .array([.int(8), .int(32)]))
        assertRejects(f.bytes(), .shape, field: "layers.0.k.weight", mentioning: ["[8, 32]"])
        assertRejects(try editedMeta(["features"], .array([])), .shape, field: "features")
    }

    func testMissingKeys() throws {
        var f = try EditableModelFile(original)
        f.meta.remove("requant")
        assertRejects(f.bytes(), .metadata, field: "requant", mentioning: ["missing"])
        var g = try EditableModelFile(original)
        g.editMeta(["activations", "layers.0.norm1"], .object([("bits", .int(8)), ("scale", .double(0.1))]))
        assertRejects(g.bytes(), .metadata, field: "activations.layers.0.norm1.zero_point")
        assertRejects(try editedMeta(["target", "unit"], .int(3)), .metadata, field: "target.unit")
    }

    func testWrongFormatOrVersion() throws {
        assertRejects(try editedMeta(["format"], .string("onnx")), .unsupported, field: "format")
        assertRejects(try editedMeta(["version"], .int(3)), .unsupported, field: "version", mentioning: ["upgrade"])
    }

    func testNonFiniteAndNonPositiveScales() throws {
        assertRejects(try editedMeta(["activations", "input", "scale"], .double(.nan)), .range, field: "activations.input.scale", mentioning: ["finite"])
        assertRejects(try editedMeta(["weights", "head.weight", "scale"], .double(.infinity)), .range, field: "weights.head.weight.scale")
        assertRejects(try editedMeta(["activations", "pool", "scale"], .double(0)), .range, field: "activations.pool.scale", mentioning: ["positive"])
    }

    func testNormalizationMustBeUsable() throws {
        assertRejects(try editedMeta(["features"], .array([.object([("name", .string("x0")), ("unit", .string("1")), ("mean", .double(0)), ("std", .double(0))])])),
                      .range, field: "features[0].std")
        assertRejects(try editedMeta(["target", "std"], .double(-1)), .range, field: "target.std")
        assertRejects(try editedMeta(["target", "mean"], .double(.infinity)), .range, field: "target.mean")
        assertRejects(try editedMeta(["target", "feature"], .int(1)), .range, field: "target.feature")
        assertRejects(try editedMeta(["sampling_period_s"], .double(0)), .range, field: "sampling_period_s")
    }

    func testBitWidthsPerTensorKind() throws {
        assertRejects(try editedMeta(["weights", "layers.0.v.weight", "bits"], .int(5)), .range, field: "weights.layers.0.v.weight.bits")
        assertRejects(try editedMeta(["activations", "layers.0.ffn1", "bits"], .int(16)), .range, field: "activations.layers.0.ffn1.bits")
        assertRejects(try editedMeta(["activations", "input", "bits"], .int(17)), .range, field: "activations.input.bits")
        assertRejects(try editedMeta(["activations", "input", "bits"], .int(3)), .range, field: "activations.input.bits")
    }

    func testProbsGridIsFixed() throws {
        assertRejects(try editedMeta(["activations", "layers.0.probs", "scale"], .double(0.01)), .range, field: "activations.layers.0.probs.scale")
        assertRejects(try editedMeta(["activations", "layers.0.probs", "zero_point"], .int(0)), .range, field: "activations.layers.0.probs.zero_point")
    }

    // MARK: tensor values

    func testWeightOutOfRange() throws {
        // Declaring the 8-bit weights as 4-bit puts most of them out of range.
        var parts = try ModelParts(original)
        parts.editMeta(["weights", "layers.0.o.weight", "bits"], .int(4))
        assertRejects(parts.bytes(), .range, field: "layers.0.o.weight", mentioning: ["-8 ... 7"])
        // An I16 weight tensor can hold a value no 8-bit weight may have.
        var wide = try ModelParts(original)
        wide.tensors["head.weight"]!.dtype = "I16"
        wide.tensors["head.weight"]!.values[0] = 300
        assertRejects(wide.bytes(), .range, field: "head.weight")
    }

    func testBiasOutOfRange() throws {
        var parts = try ModelParts(original)
        parts.tensors["layers.0.ffn2.bias"]!.values[3] = 1 << 17  // 8-bit x, 8-bit w: |B| <= 2^17 - 1
        assertRejects(parts.bytes(), .range, field: "layers.0.ffn2.bias", mentioning: ["element 3"])
    }

    func testPositionalEncodingOutOfRange() throws {
        var parts = try ModelParts(original)
        parts.tensors["pe"]!.values[10] = 128
        assertRejects(parts.bytes(), .range, field: "pe")
    }

    func testBadExpTables() throws {
        var first = try ModelParts(original)
        first.tensors["layers.0.softmax.exp"]!.values[0] = 32767
        assertRejects(first.bytes(), .expTable, field: "layers.0.softmax.exp", mentioning: ["EXP[0]"])
        var rising = try ModelParts(original)
        rising.tensors["layers.0.softmax.exp"]!.values[5] = rising.tensors["layers.0.softmax.exp"]!.values[4] + 1
        assertRejects(rising.bytes(), .expTable, field: "layers.0.softmax.exp", mentioning: ["non-increasing"])
        var negative = try ModelParts(original)
        let n = negative.tensors["layers.0.softmax.exp"]!.values.count
        negative.tensors["layers.0.softmax.exp"]!.values[n - 1] = -1
        assertRejects(negative.bytes(), .expTable, field: "layers.0.softmax.exp")
        var short = try ModelParts(original)
        short.tensors["layers.0.softmax.exp"]!.values.removeLast(128)
        short.tensors["layers.0.softmax.exp"]!.shape = [128]
        assertRejects(short.bytes(), .expTable, field: "layers.0.softmax.exp", mentioning: ["2^8 = 256"])
    }

    func testExtraAndMissingTensors() throws {
        var extra = try ModelParts(original)
        extra.tensors["layers.1.q.weight"] = .init(dtype: "I8", shape: [1], values: [0])
        assertRejects(extra.bytes(), .tensorLayout, field: "layers.1.q.weight")
        var missing = try ModelParts(original)
        missing.tensors["layers.0.norm2.bias"] = nil
        assertRejects(missing.bytes(), .shape, field: "layers.0.norm2.bias", mentioning: ["missing"])
    }

    func testAccumulatorBound() throws {
        // d = 256 with a 16-bit pe_add feeding 8-bit q/k/v weights:
        // 256 * (2^16 - 1) * 255 + 2^25 - 1 > 2^31 - 1.
        let ok = ModelParts.synthetic(dModel: 256, wideBits: 8)
        XCTAssertNoThrow(try QuantizedModel(bytes: ok.bytes()))
        let hostile = ModelParts.synthetic(dModel: 256, wideBits: 16)
        assertRejects(hostile.bytes(), .bound, field: "layers.0.q", mentioning: ["2^31 - 1"])
    }

    // MARK: what is accepted

    func testWiderStorageTypesLoadAndRunIdentically() throws {
        var parts = try ModelParts(original)
        for name in parts.tensors.keys where parts.tensors[name]!.dtype == "I8" { parts.tensors[name]!.dtype = "I16" }
        let widened = try QuantizedModel(bytes: parts.bytes())
        let base = try QuantizedModel(bytes: original)
        let vectors = try TestVectors(text: String(contentsOf: defaultModelURL.deletingPathExtension().appendingPathExtension("vectors.txt"), encoding: .utf8))
        XCTAssertTrue(try vectors.check(with: SoftwareEngine(model: widened)).passed)
        XCTAssertNotEqual(widened.identity, base.identity)
    }

    func testRandomByteFlipsNeverCrash() throws {
        // Hostile input: flipping header bytes must give an error or a valid model, never a trap.
        var generator = SystemRandomNumberGenerator()
        var refused = 0
        for _ in 0..<300 {
            var f = original
            let i = Int.random(in: 0..<min(f.count, 4096), using: &generator)
            f[i] ^= UInt8.random(in: 1...255, using: &generator)
            do { _ = try QuantizedModel(bytes: f) } catch { refused += 1 }
        }
        XCTAssertGreaterThan(refused, 0)
    }
}
