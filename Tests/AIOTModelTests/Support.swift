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
        guard case let .string(text)? = header["__metadata__"]?["aiot"] else { throw XCTSkip("no aiot metadata") }
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
