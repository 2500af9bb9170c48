/// Why a model file was refused. The message names the offending field and says what to do next;
/// `field` carries the same name for programs (tests, the daemon's log).
public struct ModelFileError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable, Equatable {
        /// The file could not be opened or read.
        case unreadable
        /// The file ends before its header or its tensor data does.
        case truncated
        /// The 8-byte header length or the header JSON is malformed.
        case header
        /// Tensor entries lie about their bytes: wrong dtype, size, offsets, holes or overlaps.
        case tensorLayout
        /// A metadata key is missing or has the wrong type.
        case metadata
        /// Not an aiot integer Transformer of a version this build reads.
        case unsupported
        /// Shape parameters out of range or inconsistent with a tensor's dimensions.
        case shape
        /// A bit width, zero point, scale, multiplier, shift or stored integer outside its range.
        case range
        /// An accumulator bound of docs/arithmetic.md §4/§6 is broken.
        case bound
        /// A softmax exp table breaks (E6): size, first entry, monotonicity or sign.
        case expTable
    }

    public var code: Code
    /// The metadata key or tensor name at fault (empty when the file as a whole is at fault).
    public var field: String
    public var message: String

    public init(_ code: Code, field: String, _ message: String) {
        self.code = code
        self.field = field
        self.message = message
    }

    public var description: String { message }

    /// The common advice for a file that an exporter wrote wrongly or that was damaged since.
    static let reexport = "re-export the model with the aiot exporter (tools/aiot/export.py) or restore an intact copy of the file"

    static func invalid(_ code: Code, _ field: String, _ what: String) -> ModelFileError {
        ModelFileError(code, field: field, "model file: \(field.isEmpty ? "" : "'\(field)': ")\(what); \(reexport)")
    }
}
