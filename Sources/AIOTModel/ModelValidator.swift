// The integer rules of docs/arithmetic.md §2, §3, §6 that make a model safe to run: shape ranges,
// tensor dimensions, value ranges, exp tables and every accumulator bound. Model files
// (`ModelDecoder`) and bare integer parts (`QuantizedModel(integers:)`) both come
// through here, so nothing reaches an engine without passing the same checks.

/// Which metadata table a quantization comes from.
enum ModelSection: String {
    case activations, weights
}

/// Where a model's integers are read from. `quant`, `requant` and `addRequant` apply the range
/// rules of §2 and P3 (`MetadataReader.checked*`); `tensor` is called only for tensors that
/// `ModelValidator.checkTensorDims` has accepted.
protocol ModelSource {
    func quant(_ section: ModelSection, _ name: String, allowedBits: ClosedRange<Int>, evenOnly: Bool) throws(ModelFileError) -> QuantParams
    func requant(_ name: String) throws(ModelFileError) -> Requant
    func addRequant(_ name: String) throws(ModelFileError) -> AddRequant
    func tensor(_ name: String) -> [Int32]
}

enum ModelValidator {
    static let layerActivations = ["q", "k", "v", "scores", "probs", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2"]

    /// The validated integer model of `shape` read from `source`. Normalization, sampling period and
    /// provenance are not integers: they get neutral values (unit scale, zero mean, period 1 s) that
    /// the caller replaces when it has them.
    static func assemble(_ shape: ModelShape, skip hasSkip: Bool, from source: some ModelSource, identity: String) throws(ModelFileError) -> QuantizedModel {
        func act(_ name: String) throws(ModelFileError) -> QuantParams {
            try source.quant(.activations, name, allowedBits: 4...8, evenOnly: true)
        }
        func wideAct(_ name: String) throws(ModelFileError) -> QuantParams {
            try source.quant(.activations, name, allowedBits: 4...16, evenOnly: false)
        }
        func linear(_ name: String, outputs: Int, inputs: Int, input: QuantParams) throws(ModelFileError) -> IntegerLinear {
            try ModelValidator.linear(source, name, outputs: outputs, inputs: inputs, input: input)
        }
        let d = shape.dModel

        let inputAct = try wideAct("input")
        let inputProjAct = try act("input_proj")
        let peAct = try wideAct("pe")
        let peAddAct = try wideAct("pe_add")
        let poolAct = try act("pool")
        let outputAct = try wideAct("output")

        let inputProj = try linear("input_proj", outputs: d, inputs: shape.features, input: inputAct)
        let inputProjReq = try source.requant("input_proj")
        let pe = source.tensor("pe")
        try checkValues(pe, "pe", lo: Int64(peAct.lo), hi: Int64(peAct.hi), what: "positional encoding at \(peAct.bits) bits (activations.pe)")
        let peAddReq = try source.addRequant("pe_add")
        try checkAddition(peAddReq, "pe_add", inputProjAct, peAct)

        var layers: [EncoderLayer] = []
        var x = peAddAct
        for l in 0..<shape.layers {
            let p = "layers.\(l)."
            var a: [String: QuantParams] = [:]
            for name in layerActivations where name != "probs" {
                a[name] = try act(p + name)
            }
            let probs = try act(p + "probs")
            try checkProbs(probs, p + "probs")
            let q = try linear(p + "q", outputs: d, inputs: d, input: x)
            let k = try linear(p + "k", outputs: d, inputs: d, input: x)
            let v = try linear(p + "v", outputs: d, inputs: d, input: x)
            let o = try linear(p + "o", outputs: d, inputs: d, input: a["context"]!)
            let norm1 = try linear(p + "norm1", outputs: d, inputs: 1, input: a["res1"]!)
            let ffn1 = try linear(p + "ffn1", outputs: shape.ffn, inputs: d, input: a["norm1"]!)
            let ffn2 = try linear(p + "ffn2", outputs: d, inputs: shape.ffn, input: a["ffn1"]!)
            let norm2 = try linear(p + "norm2", outputs: d, inputs: 1, input: a["res2"]!)
            let exp = source.tensor(p + "softmax.exp")
            try checkExpTable(exp, p + "softmax.exp", scoresBits: a["scores"]!.bits)

            // (E5) and (E7) accumulator bounds.
            let dh = Int64(d / shape.heads)
            let scoreBound = dh * span(a["q"]!.bits) * span(a["k"]!.bits)
            try checkBound(scoreBound, p + "scores", "dh * (2^b_q - 1) * (2^b_k - 1)")
            let contextBound = Int64(shape.window) * span(probs.bits) * span(a["v"]!.bits)
            try checkBound(contextBound, p + "context", "W * (2^b_probs - 1) * (2^b_v - 1)")

            let res1Req = try source.addRequant(p + "res1")
            try checkAddition(res1Req, p + "res1", x, a["o"]!)
            let res2Req = try source.addRequant(p + "res2")
            try checkAddition(res2Req, p + "res2", a["norm1"]!, a["ffn2"]!)

            layers.append(EncoderLayer(
                q: q, k: k, v: v, o: o, norm1: norm1, ffn1: ffn1, ffn2: ffn2, norm2: norm2, exp: exp,
                qAct: a["q"]!, kAct: a["k"]!, vAct: a["v"]!, scoresAct: a["scores"]!, probsAct: probs,
                contextAct: a["context"]!, oAct: a["o"]!, res1Act: a["res1"]!, norm1Act: a["norm1"]!,
                ffn1Act: a["ffn1"]!, ffn2Act: a["ffn2"]!, res2Act: a["res2"]!, norm2Act: a["norm2"]!,
                qReq: try source.requant(p + "q"), kReq: try source.requant(p + "k"),
                vReq: try source.requant(p + "v"), scoresReq: try source.requant(p + "scores"),
                contextReq: try source.requant(p + "context"), oReq: try source.requant(p + "o"),
                res1Req: res1Req, norm1Req: try source.requant(p + "norm1"),
                ffn1Req: try source.requant(p + "ffn1"), ffn2Req: try source.requant(p + "ffn2"),
                res2Req: res2Req, norm2Req: try source.requant(p + "norm2")
            ))
            x = a["norm2"]!
        }
        // (E8) pooling accumulator.
        try checkBound(Int64(shape.window) * span(x.bits), "pool", "W * (2^b_x - 1)")
        let poolReq = try source.requant("pool")
        let head = try linear("head", outputs: shape.horizon, inputs: d, input: poolAct)
        let headReq = try source.requant("head")
        var skip: SkipPath?
        if hasSkip {
            // v2 (§5 steps 15-17): head and skip on their own activations, output = Add(head, skip).
            let headAct = try wideAct("head")
            let skipAct = try wideAct("skip")
            let skipLinear = try linear("skip", outputs: shape.horizon, inputs: shape.inputCount, input: inputAct)
            let outputReq = try source.addRequant("output")
            try checkAddition(outputReq, "output", headAct, skipAct)
            skip = SkipPath(headAct: headAct, skipAct: skipAct, linear: skipLinear, skipReq: try source.requant("skip"), outputReq: outputReq)
        }

        let features = (0..<shape.features).map { FeatureInfo(name: "feature\($0)", unit: "", mean: 0, std: 1) }
        let target = TargetInfo(name: "target", unit: "", mean: 0, std: 1, feature: nil)
        return QuantizedModel(
            shape: shape, identity: identity, features: features, target: target,
            samplingPeriodSeconds: 1, provenance: "",
            inputAct: inputAct, inputProjAct: inputProjAct, peAct: peAct, peAddAct: peAddAct,
            poolAct: poolAct, outputAct: outputAct, inputProj: inputProj, inputProjReq: inputProjReq,
            pe: pe, peAddReq: peAddReq, layers: layers, poolReq: poolReq, head: head, headReq: headReq, skip: skip
        )
    }

    // MARK: shape and dimensions (§3, §10)

    static func checkShape(_ s: ModelShape) throws(ModelFileError) {
        let dims: [(String, Int, ClosedRange<Int>)] = [
            ("window", s.window, 1...256), ("features", s.features, 1...16), ("d_model", s.dModel, 2...256),
            ("heads", s.heads, 1...8), ("layers", s.layers, 1...8), ("ffn", s.ffn, 1...1024), ("horizon", s.horizon, 1...64),
        ]
        for (key, v, range) in dims where !range.contains(v) {
            throw ModelFileError.invalid(.shape, "shape." + key, "\(v) is outside \(range.lowerBound) ... \(range.upperBound) (docs/arithmetic.md §3)")
        }
        guard s.dModel % s.heads == 0 else {
            throw ModelFileError.invalid(.shape, "shape.heads", "d_model \(s.dModel) is not divisible by \(s.heads) heads")
        }
        guard s.ffn == 4 * s.dModel else {
            throw ModelFileError.invalid(.shape, "shape.ffn", "\(s.ffn) must be 4 * d_model = \(4 * s.dModel)")
        }
    }

    static func expectedTensors(_ s: ModelShape, skip: Bool) -> [(String, [Int])] {
        let d = s.dModel
        var list: [(String, [Int])] = [
            ("input_proj.weight", [d, s.features]), ("input_proj.bias", [d]), ("pe", [s.window, d]),
            ("head.weight", [s.horizon, d]), ("head.bias", [s.horizon]),
        ]
        if skip {
            list.append(("skip.weight", [s.horizon, s.inputCount]))
            list.append(("skip.bias", [s.horizon]))
        }
        for l in 0..<s.layers {
            let p = "layers.\(l)."
            for name in ["q", "k", "v", "o"] {
                list.append((p + name + ".weight", [d, d]))
                list.append((p + name + ".bias", [d]))
            }
            for name in ["norm1", "norm2"] {
                list.append((p + name + ".weight", [d]))
                list.append((p + name + ".bias", [d]))
            }
            list.append((p + "ffn1.weight", [s.ffn, d]))
            list.append((p + "ffn1.bias", [s.ffn]))
            list.append((p + "ffn2.weight", [d, s.ffn]))
            list.append((p + "ffn2.bias", [d]))
        }
        return list
    }

    /// Every tensor a model of shape `s` needs is present with its dimensions, and no other.
    static func checkTensorDims(_ s: ModelShape, skip: Bool, _ present: [String: [Int]]) throws(ModelFileError) {
        var expected = Set<String>()
        for (name, dims) in expectedTensors(s, skip: skip) {
            expected.insert(name)
            guard let shape = present[name] else {
                throw ModelFileError.invalid(.shape, name, "tensor is missing (expected shape \(dims) for \(describe(s))\(skip ? ", contract version 2" : ""))")
            }
            guard shape == dims else {
                throw ModelFileError.invalid(.shape, name, "tensor has shape \(shape) but \(describe(s)) needs \(dims)")
            }
        }
        for l in 0..<s.layers {
            let name = "layers.\(l).softmax.exp"
            expected.insert(name)
            guard let shape = present[name] else { throw ModelFileError.invalid(.shape, name, "tensor is missing") }
            guard shape.count == 1 else {
                throw ModelFileError.invalid(.expTable, name, "must be a vector of 2^bits(scores) entries, found shape \(shape)")
            }
        }
        if let extra = present.keys.sorted().first(where: { !expected.contains($0) }) {
            let hint = extra.hasPrefix("skip.") ? " (the skip path is contract version 2: set \"version\": 2 in the metadata)" : ""
            throw ModelFileError.invalid(.tensorLayout, extra, "tensor is not part of a version \(skip ? 2 : 1) model of \(describe(s))\(hint)")
        }
    }

    static func describe(_ s: ModelShape) -> String {
        "shape W=\(s.window) F=\(s.features) d=\(s.dModel) H=\(s.heads) N=\(s.layers) P=\(s.horizon)"
    }

    // MARK: values and bounds (§2, §4, §6)

    /// `2^b - 1`, the largest magnitude of a centered `b`-bit value.
    private static func span(_ bits: Int) -> Int64 { (Int64(1) << bits) - 1 }

    private static func linear(
        _ source: some ModelSource, _ name: String, outputs: Int, inputs: Int, input: QuantParams
    ) throws(ModelFileError) -> IntegerLinear {
        let wp = try source.quant(.weights, name + ".weight", allowedBits: 4...8, evenOnly: true)
        let w = source.tensor(name + ".weight")
        try checkValues(w, name + ".weight", lo: Int64(wp.lo), hi: Int64(wp.hi), what: "\(wp.bits)-bit weight")
        let b = source.tensor(name + ".bias")
        let biasLimit = (Int64(1) << (input.bits + wp.bits + 1)) - 1
        try checkValues(b, name + ".bias", lo: -biasLimit, hi: biasLimit, what: "bias of a \(input.bits)-bit input and \(wp.bits)-bit weight (|B| <= 2^(b_x + b_W + 1) - 1)")
        // (E1)/(E3): K * (2^b_x - 1) * (2^b_W - 1) + 2^(b_x + b_W + 1) - 1 <= 2^31 - 1.
        let bound = Int64(inputs) * span(input.bits) * span(wp.bits) + biasLimit
        try checkBound(bound, name, "K * (2^b_x - 1) * (2^b_W - 1) + 2^(b_x + b_W + 1) - 1 with K = \(inputs)")
        return IntegerLinear(weight: w, bias: b, weightParams: wp, outputs: outputs, inputs: inputs)
    }

    private static func checkValues(_ values: [Int32], _ name: String, lo: Int64, hi: Int64, what: String) throws(ModelFileError) {
        if let i = values.firstIndex(where: { Int64($0) < lo || Int64($0) > hi }) {
            throw ModelFileError.invalid(.range, name, "element \(i) is \(values[i]), outside \(lo) ... \(hi) for a \(what)")
        }
    }

    private static func checkBound(_ worst: Int64, _ name: String, _ formula: String) throws(ModelFileError) {
        let limit = Int64(Int32.max)
        guard worst <= limit else {
            throw ModelFileError.invalid(.bound, name, "worst-case accumulator \(formula) = \(worst) exceeds 2^31 - 1 (docs/arithmetic.md §6)")
        }
    }

    /// (E2): `(2^b1 - 1) m1 + (2^b2 - 1) m2 < 2^34`.
    private static func checkAddition(_ req: AddRequant, _ name: String, _ a: QuantParams, _ b: QuantParams) throws(ModelFileError) {
        let worst = span(a.bits) * req.m1 + span(b.bits) * req.m2
        guard worst < Int64(1) << 34 else {
            throw ModelFileError.invalid(.bound, "requant." + name, "worst-case addition accumulator (2^b1 - 1) m1 + (2^b2 - 1) m2 = \(worst) is not below 2^34 (docs/arithmetic.md §6)")
        }
    }

    /// §2: the softmax output grid is fixed: `scale = 1/(2^b - 1)`, `zero_point = lo(b)`.
    private static func checkProbs(_ p: QuantParams, _ name: String) throws(ModelFileError) {
        let expected = 1.0 / Double(span(p.bits))
        guard abs(p.scale - expected) <= 1e-12 * expected else {
            throw ModelFileError.invalid(.range, "activations." + name + ".scale", "is \(p.scale) but the softmax output grid is fixed at 1/(2^\(p.bits) - 1) = \(expected)")
        }
        guard p.zeroPoint == p.lo else {
            throw ModelFileError.invalid(.range, "activations." + name + ".zero_point", "is \(p.zeroPoint) but the softmax output grid is fixed at lo(\(p.bits)) = \(p.lo)")
        }
    }

    /// (E6): `2^b_S` entries, `EXP[0] = 2^15`, non-increasing, `>= 0`.
    private static func checkExpTable(_ exp: [Int32], _ name: String, scoresBits: Int) throws(ModelFileError) {
        let size = 1 << scoresBits
        guard exp.count == size else {
            throw ModelFileError.invalid(.expTable, name, "has \(exp.count) entries but \(scoresBits)-bit scores need 2^\(scoresBits) = \(size)")
        }
        guard exp[0] == 1 << 15 else {
            throw ModelFileError.invalid(.expTable, name, "EXP[0] is \(exp[0]), must be 2^15 = 32768")
        }
        for i in 1..<size {
            guard exp[i] >= 0 else { throw ModelFileError.invalid(.expTable, name, "EXP[\(i)] is \(exp[i]), must be >= 0") }
            guard exp[i] <= exp[i - 1] else {
                throw ModelFileError.invalid(.expTable, name, "EXP[\(i)] = \(exp[i]) is larger than EXP[\(i - 1)] = \(exp[i - 1]); the table must be non-increasing")
            }
        }
    }
}
