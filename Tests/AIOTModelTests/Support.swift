import Foundation
import XCTest
@testable import AIOTModel

/// The repository root, found from this file's path (Tests/AIOTModelTests/Support.swift).
let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Every committed `NAME.safetensors` under models/ that has a `NAME.vectors.txt` beside it.
func committedModelsWithVectors() -> [(model: URL, vectors: URL)] {
    let models = repoRoot.appendingPathComponent("models")
    guard let walker = FileManager.default.enumerator(at: models, includingPropertiesForKeys: nil) else { return [] }
    var pairs: [(URL, URL)] = []
    for case let url as URL in walker where url.pathExtension == "safetensors" {
        let vectors = url.deletingPathExtension().appendingPathExtension("vectors.txt")
        if FileManager.default.fileExists(atPath: vectors.path) { pairs.append((url, vectors)) }
    }
    return pairs.sorted { $0.0.path < $1.0.path }
}

/// The default-shape W8A8 random model, the base that rejection tests corrupt.
let defaultModelURL = repoRoot.appendingPathComponent("models/random/w24f1d16h1n1p1-w8a8.safetensors")

func bytes(of url: URL) throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }

/// A model file taken apart into its header JSON, `aiot` metadata and data section, so a test can
/// change one field and write the file back.
struct EditableModelFile {
    var header: JSONValue
    var meta: JSONValue
    var data: [UInt8]

    init(_ file: [UInt8]) throws {
        var length = 0
        for i in 0..<8 { length |= Int(file[i]) << (8 * i) }
        header = try JSONValue.parse(file[8..<(8 + length)])
        guard case let .string(text)? = header["__metadata__"]?["aiot"] else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "no aiot metadata"]) }
        meta = try JSONValue.parse(text)
        data = Array(file[(8 + length)...])
    }

    /// Serializes back: header with the (possibly edited) metadata, padded to 8 bytes like the exporter.
    func bytes(headerLength override: UInt64? = nil) -> [UInt8] {
        var h = header
        h.set("__metadata__", .object([("aiot", .string(meta.serialized))]))
        var text = Array(h.serialized.utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        let length = override ?? UInt64(text.count)
        var out: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) }
        out += text
        out += data
        return out
    }

    /// Edits the object at a path of keys inside the metadata.
    mutating func editMeta(_ path: [String], _ value: JSONValue) {
        meta = EditableModelFile.setting(meta, path[...], value)
    }

    mutating func editHeader(_ path: [String], _ value: JSONValue) {
        header = EditableModelFile.setting(header, path[...], value)
    }

    private static func setting(_ root: JSONValue, _ path: ArraySlice<String>, _ value: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        var copy = root
        let child = root[key] ?? .null
        copy.set(key, setting(child, path.dropFirst(), value))
        return copy
    }

    /// Byte range of tensor `name` inside `data`.
    func range(of name: String) -> Range<Int> {
        guard case let .array(offsets)? = header[name]?["data_offsets"],
              case let .int(begin) = offsets[0], case let .int(end) = offsets[1] else { return 0..<0 }
        return Int(begin)..<Int(end)
    }

    /// Writes an Int32 element of an I32 tensor, or an Int8 element of an I8 tensor.
    mutating func setElement(_ name: String, _ index: Int, _ value: Int32) {
        let r = range(of: name)
        guard case let .string(dtype)? = header[name]?["dtype"] else { return }
        if dtype == "I8" {
            data[r.lowerBound + index] = UInt8(bitPattern: Int8(value))
        } else {
            let u = UInt32(bitPattern: value)
            for b in 0..<4 { data[r.lowerBound + 4 * index + b] = UInt8(truncatingIfNeeded: u >> (8 * UInt32(b))) }
        }
    }
}

/// Asserts that loading `file` fails with `code`, naming `field` in the error and in its message.
func assertRejects(
    _ file: [UInt8], _ code: ModelFileError.Code, field: String? = nil, mentioning words: [String] = [],
    file path: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try QuantizedModel(bytes: file)
        XCTFail("the loader accepted a corrupt model file", file: path, line: line)
    } catch {
        XCTAssertEqual(error.code, code, "\(error.message)", file: path, line: line)
        if let field {
            XCTAssertEqual(error.field, field, "\(error.message)", file: path, line: line)
            XCTAssertTrue(error.message.contains(field), "message does not name \(field): \(error.message)", file: path, line: line)
        }
        for w in words {
            XCTAssertTrue(error.message.contains(w), "message lacks '\(w)': \(error.message)", file: path, line: line)
        }
        XCTAssertTrue(error.message.contains("re-export") || error.message.contains("upgrade") || error.message.contains("check the path"),
                      "message does not say what to do: \(error.message)", file: path, line: line)
    }
}

/// A model file as metadata plus decoded tensors, re-laid out from scratch on `bytes()`: for edits
/// that change a tensor's values, dtype or shape while keeping the container honest.
struct ModelParts {
    struct Tensor {
        var dtype: String
        var shape: [Int]
        var values: [Int32]
    }
    var meta: JSONValue
    var tensors: [String: Tensor]

    init(meta: JSONValue, tensors: [String: Tensor]) {
        self.meta = meta
        self.tensors = tensors
    }

    init(_ file: [UInt8]) throws {
        let raw = try EditableModelFile(file)
        meta = raw.meta
        tensors = [:]
        guard case let .object(members) = raw.header else { return }
        for (name, entry) in members where name != "__metadata__" {
            guard case let .string(dtype)? = entry["dtype"], case let .array(dims)? = entry["shape"] else { continue }
            let shape = dims.compactMap { v -> Int? in if case let .int(i) = v { return Int(i) } else { return nil } }
            let r = raw.range(of: name)
            let width = dtype == "I8" ? 1 : dtype == "I16" ? 2 : 4
            var values: [Int32] = []
            for i in stride(from: r.lowerBound, to: r.upperBound, by: width) {
                var u: UInt32 = 0
                for b in 0..<width { u |= UInt32(raw.data[i + b]) << (8 * UInt32(b)) }
                switch width {
                case 1: values.append(Int32(Int8(bitPattern: UInt8(u))))
                case 2: values.append(Int32(Int16(bitPattern: UInt16(u))))
                default: values.append(Int32(bitPattern: u))
                }
            }
            tensors[name] = Tensor(dtype: dtype, shape: shape, values: values)
        }
    }

    mutating func editMeta(_ path: [String], _ value: JSONValue) {
        var e = EditableModelFile.empty
        e.meta = meta
        e.editMeta(path, value)
        meta = e.meta
    }

    func bytes() -> [UInt8] {
        var header: [(String, JSONValue)] = []
        var data: [UInt8] = []
        for name in tensors.keys.sorted() {
            let t = tensors[name]!
            let begin = data.count
            for v in t.values {
                switch t.dtype {
                case "I8": data.append(UInt8(bitPattern: Int8(truncatingIfNeeded: v)))
                case "I16":
                    let u = UInt16(bitPattern: Int16(truncatingIfNeeded: v))
                    data += [UInt8(u & 0xFF), UInt8(u >> 8)]
                default:
                    let u = UInt32(bitPattern: v)
                    for b in 0..<4 { data.append(UInt8(truncatingIfNeeded: u >> (8 * UInt32(b)))) }
                }
            }
            header.append((name, .object([
                ("dtype", .string(t.dtype)), ("shape", .array(t.shape.map { .int(Int64($0)) })),
                ("data_offsets", .array([.int(Int64(begin)), .int(Int64(data.count))])),
            ])))
        }
        var e = EditableModelFile.empty
        e.header = .object(header)
        e.meta = meta
        e.data = data
        return e.bytes()
    }

    /// A structurally valid model of any shape: zero weights, the given widths, an exact exp table.
    static func synthetic(window: Int = 24, features: Int = 1, dModel: Int = 16, heads: Int = 1, layers: Int = 1,
                          horizon: Int = 1, weightBits: Int = 8, actBits: Int = 8, wideBits: Int = 8) -> ModelParts {
        let d = dModel, ffn = 4 * dModel
        func q(_ bits: Int, _ scale: Double = 0.05, _ z: Int64 = 0) -> JSONValue {
            .object([("bits", .int(Int64(bits))), ("scale", .double(scale)), ("zero_point", .int(z))])
        }
        var acts: [(String, JSONValue)] = [("input", q(wideBits)), ("input_proj", q(actBits)), ("pe", q(wideBits)),
                                           ("pe_add", q(wideBits)), ("pool", q(actBits)), ("output", q(wideBits))]
        var weights: [(String, JSONValue)] = [("input_proj.weight", q(weightBits)), ("head.weight", q(weightBits))]
        var requant: [(String, JSONValue)] = [("input_proj", .object([("m", .int(40000)), ("n", .int(20))])),
                                              ("pe_add", .object([("m1", .int(30000)), ("m2", .int(30000)), ("n", .int(16))])),
                                              ("pool", .object([("m", .int(40000)), ("n", .int(20))])),
                                              ("head", .object([("m", .int(40000)), ("n", .int(20))]))]
        var tensors: [String: Tensor] = [
            "input_proj.weight": Tensor(dtype: "I8", shape: [d, features], values: .init(repeating: 1, count: d * features)),
            "input_proj.bias": Tensor(dtype: "I32", shape: [d], values: .init(repeating: 0, count: d)),
            "pe": Tensor(dtype: "I32", shape: [window, d], values: .init(repeating: 0, count: window * d)),
            "head.weight": Tensor(dtype: "I8", shape: [horizon, d], values: .init(repeating: 1, count: horizon * d)),
            "head.bias": Tensor(dtype: "I32", shape: [horizon], values: .init(repeating: 0, count: horizon)),
        ]
        for l in 0..<layers {
            let p = "layers.\(l)."
            for name in ["q", "k", "v", "scores", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2"] {
                acts.append((p + name, q(actBits)))
            }
            acts.append((p + "probs", q(actBits, 1.0 / Double((1 << actBits) - 1), contractLo(actBits))))
            for name in ["q", "k", "v", "o", "ffn1", "ffn2", "norm1", "norm2"] {
                weights.append((p + name + ".weight", q(weightBits)))
            }
            for name in ["q", "k", "v", "scores", "context", "o", "norm1", "ffn1", "ffn2", "norm2"] {
                requant.append((p + name, .object([("m", .int(40000)), ("n", .int(20))])))
            }
            for name in ["res1", "res2"] {
                requant.append((p + name, .object([("m1", .int(30000)), ("m2", .int(30000)), ("n", .int(16))])))
            }
            for (name, rows, cols) in [("q", d, d), ("k", d, d), ("v", d, d), ("o", d, d), ("ffn1", ffn, d), ("ffn2", d, ffn)] {
                tensors[p + name + ".weight"] = Tensor(dtype: "I8", shape: [rows, cols], values: .init(repeating: 1, count: rows * cols))
                tensors[p + name + ".bias"] = Tensor(dtype: "I32", shape: [rows], values: .init(repeating: 0, count: rows))
            }
            for name in ["norm1", "norm2"] {
                tensors[p + name + ".weight"] = Tensor(dtype: "I8", shape: [d], values: .init(repeating: 1, count: d))
                tensors[p + name + ".bias"] = Tensor(dtype: "I32", shape: [d], values: .init(repeating: 0, count: d))
            }
            let size = 1 << actBits
            let exp = (0..<size).map { k in Int32(roundHalfAway(32768 * Foundation.exp(-0.05 * Double(k)))) }
            tensors[p + "softmax.exp"] = Tensor(dtype: "I32", shape: [size], values: exp)
        }
        let features = (0..<features).map { i in
            JSONValue.object([("name", .string("x\(i)")), ("unit", .string("1")), ("mean", .double(0)), ("std", .double(1))])
        }
        let meta = JSONValue.object([
            ("format", .string("aiot-int-transformer")), ("version", .int(1)),
            ("shape", .object([("window", .int(Int64(window))), ("features", .int(Int64(features.count))),
                               ("d_model", .int(Int64(d))), ("heads", .int(Int64(heads))), ("layers", .int(Int64(layers))),
                               ("ffn", .int(Int64(ffn))), ("horizon", .int(Int64(horizon)))])),
            ("activations", .object(acts)), ("weights", .object(weights)), ("requant", .object(requant)),
            ("features", .array(features)),
            ("target", .object([("name", .string("x0")), ("unit", .string("1")), ("mean", .double(0)), ("std", .double(1)), ("feature", .int(0))])),
            ("sampling_period_s", .double(60)), ("provenance", .string("synthetic test model")),
        ])
        return ModelParts(meta: meta, tensors: tensors)
    }
}

extension EditableModelFile {
    static var empty: EditableModelFile { EditableModelFile(header: .object([]), meta: .object([]), data: []) }
    init(header: JSONValue, meta: JSONValue, data: [UInt8]) {
        self.header = header
        self.meta = meta
        self.data = data
    }
}
