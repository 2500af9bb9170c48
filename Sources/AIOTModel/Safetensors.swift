// The safetensors container (https://github.com/huggingface/safetensors, "format"): an 8-byte
// little-endian header length, a JSON header mapping tensor names to dtype, shape and byte offsets
// into the data that follows, and an optional `__metadata__` object of string values.
// This reader accepts the integer dtypes the model file uses and proves the offsets tile the data
// exactly (no holes, no overlaps, no trailing bytes) before any tensor is read.

/// Integer element types the aiot model file may use.
public enum TensorDType: String, Sendable {
    case i8 = "I8"
    case i16 = "I16"
    case i32 = "I32"

    var byteCount: Int {
        switch self {
        case .i8: return 1
        case .i16: return 2
        case .i32: return 4
        }
    }
}

/// One tensor's entry in the header, checked against the data section.
struct TensorEntry: Sendable {
    var name: String
    var dtype: TensorDType
    var shape: [Int]
    /// Byte range inside the data section (after the header).
    var begin: Int
    var end: Int
    var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed, layout-checked safetensors file.
struct SafetensorsFile {
    /// Largest header accepted; real aiot headers are a few kilobytes.
    static let maxHeaderLength = 16 << 20

    var tensors: [String: TensorEntry]
    var metadata: [String: String]
    /// Offset of the data section in the file.
    var dataStart: Int

    init(bytes: UnsafeRawBufferPointer) throws(ModelFileError) {
        guard bytes.count >= 8 else {
            throw ModelFileError(.truncated, field: "", "model file: \(bytes.count) bytes is shorter than the 8-byte safetensors header length; the file is truncated: \(ModelFileError.reexport)")
        }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length >= 2, length <= UInt64(SafetensorsFile.maxHeaderLength) else {
            throw ModelFileError(.header, field: "", "model file: header length \(length) is not a plausible safetensors header (2 ... \(SafetensorsFile.maxHeaderLength) bytes); this is not a safetensors model file or it is corrupt: \(ModelFileError.reexport)")
        }
        guard length <= UInt64(bytes.count - 8) else {
            throw ModelFileError(.truncated, field: "", "model file: header length \(length) runs past the end of the \(bytes.count)-byte file; the file is truncated or its header length is wrong: \(ModelFileError.reexport)")
        }
        let headerLength = Int(length)
        dataStart = 8 + headerLength
        let header: JSONValue
        do {
            header = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]))
        } catch {
            throw ModelFileError(.header, field: "", "model file: the safetensors header is not valid JSON (\(error)): \(ModelFileError.reexport)")
        }
        guard case let .object(members) = header else {
            throw ModelFileError(.header, field: "", "model file: the safetensors header is not a JSON object: \(ModelFileError.reexport)")
        }
        let dataLength = bytes.count - dataStart
        var tensors: [String: TensorEntry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(entries) = value else {
                    throw ModelFileError.invalid(.header, name, "must be an object of strings")
                }
                for (key, v) in entries {
                    guard case let .string(s) = v else {
                        throw ModelFileError.invalid(.header, "__metadata__.\(key)", "must be a string (safetensors metadata values are strings)")
                    }
                    metadata[key] = s
                }
                continue
            }
            tensors[name] = try SafetensorsFile.entry(name, value, dataLength: dataLength)
        }
        // The tensors must tile the data section exactly.
        let ordered = tensors.values.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = 0
        for t in ordered {
            if t.begin > cursor {
                throw ModelFileError.invalid(.tensorLayout, t.name, "data starts at byte \(t.begin) but the previous tensor ends at \(cursor): the data section has a hole")
            }
            if t.begin < cursor {
                throw ModelFileError.invalid(.tensorLayout, t.name, "data starts at byte \(t.begin), inside the previous tensor (which ends at \(cursor)): tensors overlap")
            }
            cursor = t.end
        }
        if cursor != dataLength {
            if cursor > dataLength {
                throw ModelFileError(.truncated, field: "", "model file: tensors need \(cursor) data bytes but only \(dataLength) follow the header; the file is truncated: \(ModelFileError.reexport)")
            }
            throw ModelFileError(.tensorLayout, field: "", "model file: \(dataLength - cursor) bytes after the last tensor belong to no tensor: \(ModelFileError.reexport)")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func entry(_ name: String, _ value: JSONValue, dataLength: Int) throws(ModelFileError) -> TensorEntry {
        guard case .object = value else { throw ModelFileError.invalid(.header, name, "tensor entry must be an object") }
        guard case let .string(dtypeName)? = value["dtype"] else {
            throw ModelFileError.invalid(.header, name, "tensor entry has no string 'dtype'")
        }
        guard let dtype = TensorDType(rawValue: dtypeName) else {
            throw ModelFileError.invalid(.tensorLayout, name, "dtype \(dtypeName) is not one of I8, I16, I32")
        }
        guard case let .array(dims)? = value["shape"] else {
            throw ModelFileError.invalid(.header, name, "tensor entry has no 'shape' array")
        }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard case let .int(v) = d, v >= 0, v <= Int64(Int32.max) else {
                throw ModelFileError.invalid(.tensorLayout, name, "shape must hold non-negative integers")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(v))
            guard !overflow, product <= 1 << 40 else {
                throw ModelFileError.invalid(.tensorLayout, name, "shape \(dims.map { $0.serialized }) holds more elements than any model file can")
            }
            count = product
            shape.append(Int(v))
        }
        guard case let .array(offsets)? = value["data_offsets"], offsets.count == 2,
              case let .int(begin) = offsets[0], case let .int(end) = offsets[1]
        else {
            throw ModelFileError.invalid(.header, name, "tensor entry has no 'data_offsets' pair of integers")
        }
        guard begin >= 0, begin <= end else {
            throw ModelFileError.invalid(.tensorLayout, name, "data_offsets [\(begin), \(end)] are not an increasing byte range")
        }
        guard end <= Int64(dataLength) else {
            throw ModelFileError(.truncated, field: name, "model file: '\(name)': data_offsets end at byte \(end) but the data section has \(dataLength) bytes; the file is truncated or its header lies: \(ModelFileError.reexport)")
        }
        let expected = count * dtype.byteCount
        guard end - begin == Int64(expected) else {
            throw ModelFileError.invalid(.tensorLayout, name, "data_offsets span \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(expected)")
        }
        return TensorEntry(name: name, dtype: dtype, shape: shape, begin: Int(begin), end: Int(end))
    }

    /// The tensor's elements widened to Int32 (little-endian in the file).
    func values(of entry: TensorEntry, in bytes: UnsafeRawBufferPointer) -> [Int32] {
        let base = dataStart + entry.begin
        let count = entry.elementCount
        var out = [Int32](repeating: 0, count: count)
        switch entry.dtype {
        case .i8:
            for i in 0..<count { out[i] = Int32(Int8(bitPattern: bytes[base + i])) }
        case .i16:
            for i in 0..<count {
                let u = UInt16(bytes[base + 2 * i]) | UInt16(bytes[base + 2 * i + 1]) << 8
                out[i] = Int32(Int16(bitPattern: u))
            }
        case .i32:
            for i in 0..<count {
                var u: UInt32 = 0
                for b in 0..<4 { u |= UInt32(bytes[base + 4 * i + b]) << (8 * UInt32(b)) }
                out[i] = Int32(bitPattern: u)
            }
        }
        return out
    }
}
