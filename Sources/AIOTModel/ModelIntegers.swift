// A model as bare integers, without a model file: what an accelerator's parameter image carries
// (docs/register-map.md §6). Back to a `QuantizedModel` they go through the same checks as a model
// file (`ModelValidator`), so a damaged or hand-made set that breaks a range or a bound of
// docs/arithmetic.md §6 is refused by name instead of computed.

/// A model's integers without its real-valued metadata: the shape, `bits` and `zero_point` of every
/// activation and weight, every requant multiplier and every tensor, keyed by the names of
/// docs/arithmetic.md §10 (`input`, `layers.0.q`, `layers.0.q.weight`, ...). Tensors are row-major,
/// their dimensions implied by the shape. This is exactly what a parameter image carries.
public struct ModelIntegers: Sendable, Equatable {
    /// `bits` and `zero_point` of one tensor.
    public struct Quant: Sendable, Equatable, Codable {
        public var bits: Int
        public var zeroPoint: Int
        public init(bits: Int, zeroPoint: Int) {
            self.bits = bits
            self.zeroPoint = zeroPoint
        }
    }

    /// A requant multiplier: `(m, n)` of a linear-like step as `m1`, `n` (and `m2` 0), or the
    /// `(m1, m2, n)` of an addition.
    public struct Multiplier: Sendable, Equatable, Codable {
        public var m1: Int
        public var m2: Int
        public var n: Int
        public init(m1: Int, m2: Int = 0, n: Int) {
            self.m1 = m1
            self.m2 = m2
            self.n = n
        }
    }

    public var shape: ModelShape
    public var activations: [String: Quant]
    /// Keyed by tensor name, e.g. `layers.0.q.weight`.
    public var weights: [String: Quant]
    public var requant: [String: Multiplier]
    public var tensors: [String: [Int32]]

    public init(shape: ModelShape, activations: [String: Quant], weights: [String: Quant],
                requant: [String: Multiplier], tensors: [String: [Int32]]) {
        self.shape = shape
        self.activations = activations
        self.weights = weights
        self.requant = requant
        self.tensors = tensors
    }

    /// The integer parts of a loaded model.
    public init(model m: QuantizedModel) {
        var acts: [String: Quant] = [:]
        var weights: [String: Quant] = [:]
        var req: [String: Multiplier] = [:]
        var tensors: [String: [Int32]] = [:]
        func q(_ p: QuantParams) -> Quant { Quant(bits: p.bits, zeroPoint: Int(p.zeroPoint)) }
        func r(_ x: Requant) -> Multiplier { Multiplier(m1: Int(x.m), n: x.n) }
        func a(_ x: AddRequant) -> Multiplier { Multiplier(m1: Int(x.m1), m2: Int(x.m2), n: x.n) }
        func lin(_ name: String, _ l: IntegerLinear) {
            tensors[name + ".weight"] = l.weight
            tensors[name + ".bias"] = l.bias
            weights[name + ".weight"] = q(l.weightParams)
        }
        acts["input"] = q(m.inputAct); acts["input_proj"] = q(m.inputProjAct); acts["pe"] = q(m.peAct)
        acts["pe_add"] = q(m.peAddAct); acts["pool"] = q(m.poolAct); acts["output"] = q(m.outputAct)
        lin("input_proj", m.inputProj)
        tensors["pe"] = m.pe
        req["input_proj"] = r(m.inputProjReq); req["pe_add"] = a(m.peAddReq)
        for (i, L) in m.layers.enumerated() {
            let p = "layers.\(i)."
            lin(p + "q", L.q); lin(p + "k", L.k); lin(p + "v", L.v); lin(p + "o", L.o)
            lin(p + "norm1", L.norm1); lin(p + "ffn1", L.ffn1); lin(p + "ffn2", L.ffn2); lin(p + "norm2", L.norm2)
            tensors[p + "softmax.exp"] = L.exp
            for (n, v) in [("q", L.qAct), ("k", L.kAct), ("v", L.vAct), ("scores", L.scoresAct), ("probs", L.probsAct),
                           ("context", L.contextAct), ("o", L.oAct), ("res1", L.res1Act), ("norm1", L.norm1Act),
                           ("ffn1", L.ffn1Act), ("ffn2", L.ffn2Act), ("res2", L.res2Act), ("norm2", L.norm2Act)] {
                acts[p + n] = q(v)
            }
            for (n, v) in [("q", L.qReq), ("k", L.kReq), ("v", L.vReq), ("scores", L.scoresReq), ("context", L.contextReq),
                           ("o", L.oReq), ("norm1", L.norm1Req), ("ffn1", L.ffn1Req), ("ffn2", L.ffn2Req), ("norm2", L.norm2Req)] {
                req[p + n] = r(v)
            }
            req[p + "res1"] = a(L.res1Req); req[p + "res2"] = a(L.res2Req)
        }
        lin("head", m.head)
        req["pool"] = r(m.poolReq); req["head"] = r(m.headReq)
        if let sk = m.skip {
            acts["head"] = q(sk.headAct); acts["skip"] = q(sk.skipAct)
            lin("skip", sk.linear)
            req["skip"] = r(sk.skipReq); req["output"] = a(sk.outputReq)
        }
        self.init(shape: m.shape, activations: acts, weights: weights, requant: req, tensors: tensors)
    }
}

extension QuantizedModel {
    /// Builds and validates a model from its integer parts, with the checks a model file gets
    /// (ranges of §2 and P3, dimensions, exp tables, every bound of §6): the first broken rule is
    /// reported by name. A linear step's multiplier uses `m1` as its `m` and ignores `m2`.
    ///
    /// The parts carry no real-valued metadata, so the model gets neutral values: every scale 1
    /// except the fixed softmax output grid (§2), features and target with mean 0 and std 1, a
    /// sampling period of 1 s, empty provenance. It computes exactly the integers of the original
    /// model (engines read no scale), but `quantizeInput` / `dequantizeOutput` (§9) are meaningless
    /// on it; a consumer of quantized windows (an accelerator, the board model) never calls them. `identity` is whatever the caller knows the parts as (empty when nothing).
    public init(integers parts: ModelIntegers, identity: String = "") throws(ModelFileError) {
        let shape = parts.shape
        // Parts carry no version: a skip weight makes them contract v2 (§10).
        let skip = parts.tensors["skip.weight"] != nil
        try ModelValidator.checkShape(shape)
        // The parts have element counts, not dimensions: a tensor of the right count has the
        // dimensions the shape implies, one of another count is reported as a flat vector.
        let expected = Dictionary(uniqueKeysWithValues: ModelValidator.expectedTensors(shape, skip: skip))
        let dims = parts.tensors.map { name, values in
            (name, expected[name].flatMap { $0.reduce(1, *) == values.count ? $0 : nil } ?? [values.count])
        }
        try ModelValidator.checkTensorDims(shape, skip: skip, Dictionary(uniqueKeysWithValues: dims))
        self = try ModelValidator.assemble(shape, skip: skip, from: PartsSource(parts: parts), identity: identity)
    }
}

private struct PartsSource: ModelSource {
    let parts: ModelIntegers

    func quant(_ section: ModelSection, _ name: String, allowedBits: ClosedRange<Int>, evenOnly: Bool) throws(ModelFileError) -> QuantParams {
        let path = section.rawValue + "." + name
        guard let q = (section == .weights ? parts.weights : parts.activations)[name] else {
            throw ModelFileError.invalid(.metadata, path, "is missing")
        }
        // Only the softmax output grid has a scale the integers depend on (§2: 1 / (2^b - 1)).
        let scale = name.hasSuffix(".probs") && (1...16).contains(q.bits) ? 1 / Double((1 << q.bits) - 1) : 1
        return try MetadataReader.checkedQuant(
            bits: Int64(q.bits), scale: scale, zeroPoint: Int64(q.zeroPoint), path: path,
            allowedBits: allowedBits, evenOnly: evenOnly
        )
    }

    func requant(_ name: String) throws(ModelFileError) -> Requant {
        let r = try multiplier(name)
        return Requant(m: try MetadataReader.checkMultiplier(Int64(r.m1), "requant.\(name).m"),
                       n: try MetadataReader.checkShift(Int64(r.n), "requant." + name))
    }

    func addRequant(_ name: String) throws(ModelFileError) -> AddRequant {
        let r = try multiplier(name)
        return AddRequant(m1: try MetadataReader.checkMultiplier(Int64(r.m1), "requant.\(name).m1"),
                          m2: try MetadataReader.checkMultiplier(Int64(r.m2), "requant.\(name).m2"),
                          n: try MetadataReader.checkShift(Int64(r.n), "requant." + name))
    }

    func tensor(_ name: String) -> [Int32] { parts.tensors[name]! }

    private func multiplier(_ name: String) throws(ModelFileError) -> ModelIntegers.Multiplier {
        guard let r = parts.requant[name] else { throw ModelFileError.invalid(.metadata, "requant." + name, "is missing") }
        return r
    }
}
