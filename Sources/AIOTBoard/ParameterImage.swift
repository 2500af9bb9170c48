// The parameter image of docs/register-map.md §6: every tensor and integer quantization parameter
// of a model, as the one flat byte string the host writes into the accelerator's PARAM memory.
// `ParameterImage.serialize` is THE serializer; the RTL tools reproduce it byte for byte.
import AIOTModel

/// The image's content is exactly a model's integer parts (docs/arithmetic.md §10).
public typealias ParameterSet = ModelIntegers
public typealias ImageQuant = ModelIntegers.Quant
public typealias ImageRequant = ModelIntegers.Multiplier

/// The image's fixed order of names (docs/register-map.md §6). `skip`: contract v2 (image format
/// 2), the skip path's names appended (its activations before `output`, as in the model file).
extension ParameterSet {
    public static func activationNames(layers: Int, skip: Bool = false) -> [String] {
        var names = ["input", "input_proj", "pe", "pe_add"]
        for l in 0..<layers {
            for s in ["q", "k", "v", "scores", "probs", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2"] {
                names.append("layers.\(l).\(s)")
            }
        }
        return names + (skip ? ["pool", "head", "skip", "output"] : ["pool", "output"])
    }

    public static func requantNames(layers: Int, skip: Bool = false) -> [String] {
        var names = ["input_proj", "pe_add"]
        for l in 0..<layers {
            for s in ["q", "k", "v", "scores", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2"] {
                names.append("layers.\(l).\(s)")
            }
        }
        return names + ["pool", "head"] + (skip ? ["skip", "output"] : [])
    }

    public static func tensorNames(layers: Int, skip: Bool = false) -> [String] {
        var names = ["input_proj.weight", "input_proj.bias", "pe"]
        for l in 0..<layers {
            let p = "layers.\(l)."
            for s in ["q", "k", "v", "o"] { names += [p + s + ".weight", p + s + ".bias"] }
            names.append(p + "softmax.exp")
            for s in ["norm1", "ffn1", "ffn2", "norm2"] { names += [p + s + ".weight", p + s + ".bias"] }
        }
        return names + ["head.weight", "head.bias"] + (skip ? ["skip.weight", "skip.bias"] : [])
    }

    /// Element counts by tensor name for a shape (softmax tables: 2^bits(scores) entries).
    public static func tensorCounts(shape s: ModelShape, scoreBits: [Int], skip: Bool = false) -> [(String, Int)] {
        let d = s.dModel, f = s.ffn
        var out: [(String, Int)] = [("input_proj.weight", d * s.features), ("input_proj.bias", d), ("pe", s.window * d)]
        for l in 0..<s.layers {
            let p = "layers.\(l)."
            for x in ["q", "k", "v", "o"] { out += [(p + x + ".weight", d * d), (p + x + ".bias", d)] }
            out.append((p + "softmax.exp", 1 << scoreBits[l]))
            out += [(p + "norm1.weight", d), (p + "norm1.bias", d), (p + "ffn1.weight", f * d), (p + "ffn1.bias", f),
                    (p + "ffn2.weight", d * f), (p + "ffn2.bias", d), (p + "norm2.weight", d), (p + "norm2.bias", d)]
        }
        out += [("head.weight", s.horizon * d), ("head.bias", s.horizon)]
        if skip { out += [("skip.weight", s.horizon * s.window * s.features), ("skip.bias", s.horizon)] }
        return out
    }

    var scoreBits: [Int] { (0..<shape.layers).map { activations["layers.\($0).scores"]?.bits ?? 8 } }
    /// Contract v2: the model has the skip path (docs/arithmetic.md §5 steps 15-17).
    public var hasSkipPath: Bool { tensors["skip.weight"] != nil }
}

/// Why an image could not be built or read.
public struct ParameterImageError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum ParameterImage {
    public static let magic: [UInt8] = Array("AIOTPRM1".utf8)
    /// Image format 1 holds a contract v1 model, format 2 a contract v2 one (the skip path).
    public static let version = 1
    public static let skipVersion = 2
    public static let headerBytes = 64
    /// The accelerator VERSION (register-map.md §3) from which the RTL runs format 2 images.
    public static let skipPathAcceleratorVersion: UInt32 = 0x0001_0001
    /// Why a contract v2 model (linear skip path) cannot go to an accelerator whose bitstream
    /// predates the skip path (VERSION 1.0), and what to do.
    public static func v2Refusal(acceleratorVersion: String) -> String {
        "this is a contract version 2 model (linear skip path, docs/arithmetic.md §5); the accelerator reports VERSION \(acceleratorVersion), a bitstream without the skip path (it needs 1.1 or later), so it cannot run there: flash and boot a current bitstream (`aiotctl flash`, `aiotctl boot`), or use engine \"software\" for this model"
    }

    /// The image format of an image's header (0 when it is too short to say).
    public static func formatVersion(_ image: [UInt8]) -> Int {
        image.count >= 10 ? Int(image[8]) | Int(image[9]) << 8 : 0
    }

    /// Element width in the image, by tensor name (§6.4).
    public static func elementBytes(_ name: String) -> Int {
        if name.hasSuffix(".weight") { return 1 }
        if name.hasSuffix(".bias") { return 4 }
        return 2 // pe (i16) and softmax.exp (u16)
    }

    /// One row of `layout`: where a tensor sits in the image.
    public struct Entry: Sendable, Equatable, Codable {
        public var name: String
        public var offset: Int
        public var count: Int
        public var elementBytes: Int
    }

    /// Offsets of the tables and of every tensor, determined by the shape alone.
    public struct Layout: Sendable, Equatable, Codable {
        public var activationTable: Int
        public var activationCount: Int
        public var weightTable: Int
        public var weightCount: Int
        public var requantTable: Int
        public var requantCount: Int
        public var directory: Int
        public var tensors: [Entry]
        public var totalBytes: Int
    }

    static func align4(_ x: Int) -> Int { (x + 3) & ~3 }

    public static func layout(shape: ModelShape, scoreBits: [Int], skip: Bool = false) -> Layout {
        let acts = ParameterSet.activationNames(layers: shape.layers, skip: skip).count
        let weights = ParameterSet.tensorNames(layers: shape.layers, skip: skip).filter { $0.hasSuffix(".weight") }.count
        let reqs = ParameterSet.requantNames(layers: shape.layers, skip: skip).count
        let counts = ParameterSet.tensorCounts(shape: shape, scoreBits: scoreBits, skip: skip)
        var o = headerBytes
        let actAt = o; o += 4 * acts
        let wAt = o; o += 4 * weights
        let rAt = o; o += 8 * reqs
        let dirAt = o; o += 8 * counts.count
        var entries: [Entry] = []
        for (name, n) in counts {
            o = align4(o)
            let eb = elementBytes(name)
            entries.append(Entry(name: name, offset: o, count: n, elementBytes: eb))
            o += n * eb
        }
        return Layout(activationTable: actAt, activationCount: acts, weightTable: wAt, weightCount: weights,
                      requantTable: rAt, requantCount: reqs, directory: dirAt, tensors: entries, totalBytes: align4(o))
    }

    /// The image bytes (docs/register-map.md §6). Fails with the name of a missing or out-of-range field.
    public static func serialize(_ p: ParameterSet) throws(ParameterImageError) -> [UInt8] {
        // A v2 model is format 2: the skip path's tables and tensors appended, never dropped
        // (dropping them would compute another model's forecasts).
        let skip = p.hasSkipPath
        let s = p.shape
        let lay = layout(shape: s, scoreBits: p.scoreBits, skip: skip)
        var out = [UInt8](repeating: 0, count: lay.totalBytes)
        func put(_ v: Int, _ bytes: Int, at o: Int) {
            for k in 0..<bytes { out[o + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        }
        for (k, b) in magic.enumerated() { out[k] = b }
        put(skip ? skipVersion : version, 2, at: 8); put(headerBytes, 2, at: 10); put(lay.totalBytes, 4, at: 12)
        for (k, v) in [s.window, s.features, s.dModel, s.heads, s.layers, s.ffn, s.horizon].enumerated() {
            guard v >= 0 && v <= 0xFFFF else { throw ParameterImageError("shape field \(k) = \(v) does not fit 16 bits") }
            put(v, 2, at: 16 + 2 * k)
        }
        put(lay.activationTable, 4, at: 32); put(lay.activationCount, 4, at: 36)
        put(lay.weightTable, 4, at: 40); put(lay.weightCount, 4, at: 44)
        put(lay.requantTable, 4, at: 48); put(lay.requantCount, 4, at: 52)
        put(lay.directory, 4, at: 56); put(lay.tensors.count, 4, at: 60)
        func qp(_ q: ImageQuant?, _ name: String, at o: Int) throws(ParameterImageError) {
            guard let q else { throw ParameterImageError("model has no quantization parameters for '\(name)'") }
            guard (1...16).contains(q.bits), q.zeroPoint >= -32768, q.zeroPoint <= 32767 else {
                throw ParameterImageError("'\(name)': bits \(q.bits) / zero point \(q.zeroPoint) out of range")
            }
            put(q.bits, 1, at: o); put(q.zeroPoint, 2, at: o + 2)
        }
        for (k, name) in ParameterSet.activationNames(layers: s.layers, skip: skip).enumerated() {
            try qp(p.activations[name], name, at: lay.activationTable + 4 * k)
        }
        for (k, name) in lay.tensors.map(\.name).filter({ $0.hasSuffix(".weight") }).enumerated() {
            try qp(p.weights[name], name, at: lay.weightTable + 4 * k)
        }
        for (k, name) in ParameterSet.requantNames(layers: s.layers, skip: skip).enumerated() {
            guard let r = p.requant[name] else { throw ParameterImageError("model has no requant entry for '\(name)'") }
            guard (0...65535).contains(r.m1), (0...65535).contains(r.m2), (0...40).contains(r.n) else {
                throw ParameterImageError("requant '\(name)' out of range (m 0...65535, n 0...40)")
            }
            let o = lay.requantTable + 8 * k
            put(r.m1, 2, at: o); put(r.m2, 2, at: o + 2); put(r.n, 1, at: o + 4)
        }
        for (k, e) in lay.tensors.enumerated() {
            put(e.offset, 4, at: lay.directory + 8 * k); put(e.count, 4, at: lay.directory + 8 * k + 4)
            guard let values = p.tensors[e.name] else { throw ParameterImageError("model has no tensor '\(e.name)'") }
            guard values.count == e.count else {
                throw ParameterImageError("tensor '\(e.name)' has \(values.count) elements, the shape needs \(e.count)")
            }
            let range: ClosedRange<Int32> = switch e.elementBytes {
            case 1: -128...127
            case 2: e.name == "pe" ? -32768...32767 : 0...65535
            default: Int32.min...Int32.max
            }
            for (i, v) in values.enumerated() {
                guard range.contains(v) else { throw ParameterImageError("tensor '\(e.name)'[\(i)] = \(v) does not fit its image encoding") }
                put(Int(v), e.elementBytes, at: e.offset + i * e.elementBytes)
            }
        }
        return out
    }

    /// Reads an image back (the board model uses this; so can tools checking an upload).
    public static func deserialize(_ b: some RandomAccessCollection<UInt8>) throws(ParameterImageError) -> ParameterSet {
        let bytes = Array(b)
        guard bytes.count >= headerBytes, Array(bytes[0..<8]) == magic else { throw ParameterImageError("not a parameter image (bad magic)") }
        func u(_ o: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(bytes[o + $1]) << (8 * $1) } }
        func s16(_ o: Int) -> Int { Int(Int16(truncatingIfNeeded: u(o, 2))) }
        guard u(8, 2) == version || u(8, 2) == skipVersion, u(10, 2) == headerBytes else { throw ParameterImageError("unsupported image version \(u(8, 2))") }
        let skip = u(8, 2) == skipVersion
        let total = u(12, 4)
        guard total <= bytes.count else { throw ParameterImageError("image declares \(total) bytes, \(bytes.count) present") }
        let f = (0..<7).map { u(16 + 2 * $0, 2) }
        let shape = ModelShape(window: f[0], features: f[1], dModel: f[2], heads: f[3], layers: f[4], ffn: f[5], horizon: f[6])
        guard shape.layers >= 1, shape.layers <= 8 else { throw ParameterImageError("image has \(shape.layers) layers") }
        var acts: [String: ImageQuant] = [:]
        let aAt = u(32, 4), actNames = ParameterSet.activationNames(layers: shape.layers, skip: skip)
        guard aAt == headerBytes, aAt + 4 * actNames.count <= total else { throw ParameterImageError("image activation table is not where its header says") }
        for (k, n) in actNames.enumerated() {
            acts[n] = ImageQuant(bits: u(aAt + 4 * k, 1), zeroPoint: s16(aAt + 4 * k + 2))
        }
        let scoreBits = (0..<shape.layers).map { acts["layers.\($0).scores"]!.bits }
        let lay = layout(shape: shape, scoreBits: scoreBits, skip: skip)
        guard lay.totalBytes == total, u(56, 4) == lay.directory else { throw ParameterImageError("image layout does not match its shape") }
        var weights: [String: ImageQuant] = [:]
        for (k, n) in lay.tensors.map(\.name).filter({ $0.hasSuffix(".weight") }).enumerated() {
            weights[n] = ImageQuant(bits: u(lay.weightTable + 4 * k, 1), zeroPoint: s16(lay.weightTable + 4 * k + 2))
        }
        var req: [String: ImageRequant] = [:]
        for (k, n) in ParameterSet.requantNames(layers: shape.layers, skip: skip).enumerated() {
            let o = lay.requantTable + 8 * k
            req[n] = ImageRequant(m1: u(o, 2), m2: u(o + 2, 2), n: u(o + 4, 1))
        }
        var tensors: [String: [Int32]] = [:]
        for e in lay.tensors {
            tensors[e.name] = (0..<e.count).map { i in
                let o = e.offset + i * e.elementBytes
                switch e.elementBytes {
                case 1: return Int32(Int8(bitPattern: bytes[o]))
                case 2: return e.name == "pe" ? Int32(Int16(truncatingIfNeeded: u(o, 2))) : Int32(u(o, 2))
                default: return Int32(truncatingIfNeeded: u(o, 4))
                }
            }
        }
        return ParameterSet(shape: shape, activations: acts, weights: weights, requant: req, tensors: tensors)
    }
}
