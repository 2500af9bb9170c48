// Decodes and validates a model file: container layout, metadata, tensor dimensions, every range
// and every accumulator bound of docs/arithmetic.md §2, §3, §6, §10. The first broken rule is
// reported with the name of its field.

struct ModelDecoder {
    let bytes: UnsafeRawBufferPointer
    private let r = MetadataReader()

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static let layerActivations = ["q", "k", "v", "scores", "probs", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2"]

    func decode() throws(ModelFileError) -> QuantizedModel {
        let file = try SafetensorsFile(bytes: bytes)
        guard let text = file.metadata["aiot"] else {
            throw ModelFileError.invalid(.unsupported, "__metadata__.aiot", "is missing, so this safetensors file is not an aiot model")
        }
        let meta: JSONValue
        do {
            meta = try JSONValue.parse(text)
        } catch {
            throw ModelFileError.invalid(.metadata, "__metadata__.aiot", "is not valid JSON (\(error))")
        }
        guard case .object = meta else { throw ModelFileError.invalid(.metadata, "__metadata__.aiot", "must be a JSON object") }

        let format = try r.string(meta, "format", "")
        guard format == QuantizedModel.format else {
            throw ModelFileError.invalid(.unsupported, "format", "is \"\(format)\", not \"\(QuantizedModel.format)\"")
        }
        let version = try r.int(meta, "version", "")
        guard version == QuantizedModel.version else {
            throw ModelFileError(.unsupported, field: "version", "model file: 'version' is \(version) but this build reads version \(QuantizedModel.version) of docs/arithmetic.md; upgrade aiot-runtime or re-export the model for version \(QuantizedModel.version)")
        }

        let shape = try decodeShape(meta)
        try checkTensorDims(file, shape)
        let tensor = { (name: String) -> [Int32] in file.values(of: file.tensors[name]!, in: bytes) }

        let acts = try r.object(meta, "activations", "")
        let weights = try r.object(meta, "weights", "")
        let requant = try r.object(meta, "requant", "")
        func act(_ name: String) throws(ModelFileError) -> QuantParams {
            try r.quant(acts, "activations", name, allowedBits: 4...8, evenOnly: true)
        }
        func wideAct(_ name: String) throws(ModelFileError) -> QuantParams {
            try r.quant(acts, "activations", name, allowedBits: 4...16, evenOnly: false)
        }
        let d = shape.dModel

        let inputAct = try wideAct("input")
        let inputProjAct = try act("input_proj")
        let peAct = try wideAct("pe")
        let peAddAct = try wideAct("pe_add")
        let poolAct = try act("pool")
        let outputAct = try wideAct("output")

        let inputProj = try linear(tensor, weights, "input_proj", outputs: d, inputs: shape.features, input: inputAct)
        let inputProjReq = try r.requant(requant, "input_proj")
        let pe = tensor("pe")
        try checkValues(pe, "pe", lo: Int64(peAct.lo), hi: Int64(peAct.hi), what: "positional encoding at \(peAct.bits) bits (activations.pe)")
        let peAddReq = try r.addRequant(requant, "pe_add")
        try checkAddition(peAddReq, "pe_add", inputProjAct, peAct)

        var layers: [EncoderLayer] = []
        var x = peAddAct
        for l in 0..<shape.layers {
            let p = "layers.\(l)."
            var a: [String: QuantParams] = [:]
            for name in ModelDecoder.layerActivations where name != "probs" {
                a[name] = try act(p + name)
            }
            let probs = try act(p + "probs")
            try checkProbs(probs, p + "probs")
            let q = try linear(tensor, weights, p + "q", outputs: d, inputs: d, input: x)
            let k = try linear(tensor, weights, p + "k", outputs: d, inputs: d, input: x)
            let v = try linear(tensor, weights, p + "v", outputs: d, inputs: d, input: x)
            let o = try linear(tensor, weights, p + "o", outputs: d, inputs: d, input: a["context"]!)
            let norm1 = try linear(tensor, weights, p + "norm1", outputs: d, inputs: 1, input: a["res1"]!)
            let ffn1 = try linear(tensor, weights, p + "ffn1", outputs: shape.ffn, inputs: d, input: a["norm1"]!)
            let ffn2 = try linear(tensor, weights, p + "ffn2", outputs: d, inputs: shape.ffn, input: a["ffn1"]!)
            let norm2 = try linear(tensor, weights, p + "norm2", outputs: d, inputs: 1, input: a["res2"]!)
            let exp = tensor(p + "softmax.exp")
            try checkExpTable(exp, p + "softmax.exp", scoresBits: a["scores"]!.bits)

            // (E5) and (E7) accumulator bounds.
            let dh = Int64(d / shape.heads)
            let scoreBound = dh * span(a["q"]!.bits) * span(a["k"]!.bits)
            try checkBound(scoreBound, p + "scores", "dh * (2^b_q - 1) * (2^b_k - 1)")
            let contextBound = Int64(shape.window) * span(probs.bits) * span(a["v"]!.bits)
            try checkBound(contextBound, p + "context", "W * (2^b_probs - 1) * (2^b_v - 1)")

            let res1Req = try r.addRequant(requant, p + "res1")
            try checkAddition(res1Req, p + "res1", x, a["o"]!)
            let res2Req = try r.addRequant(requant, p + "res2")
            try checkAddition(res2Req, p + "res2", a["norm1"]!, a["ffn2"]!)

            layers.append(EncoderLayer(
                q: q, k: k, v: v, o: o, norm1: norm1, ffn1: ffn1, ffn2: ffn2, norm2: norm2, exp: exp,
                qAct: a["q"]!, kAct: a["k"]!, vAct: a["v"]!, scoresAct: a["scores"]!, probsAct: probs,
                contextAct: a["context"]!, oAct: a["o"]!, res1Act: a["res1"]!, norm1Act: a["norm1"]!,
                ffn1Act: a["ffn1"]!, ffn2Act: a["ffn2"]!, res2Act: a["res2"]!, norm2Act: a["norm2"]!,
                qReq: try r.requant(requant, p + "q"), kReq: try r.requant(requant, p + "k"),
                vReq: try r.requant(requant, p + "v"), scoresReq: try r.requant(requant, p + "scores"),
                contextReq: try r.requant(requant, p + "context"), oReq: try r.requant(requant, p + "o"),
                res1Req: res1Req, norm1Req: try r.requant(requant, p + "norm1"),
                ffn1Req: try r.requant(requant, p + "ffn1"), ffn2Req: try r.requant(requant, p + "ffn2"),
                res2Req: res2Req, norm2Req: try r.requant(requant, p + "norm2")
            ))
            x = a["norm2"]!
        }
        // (E8) pooling accumulator.
        try checkBound(Int64(shape.window) * span(x.bits), "pool", "W * (2^b_x - 1)")
        let poolReq = try r.requant(requant, "pool")
        let head = try linear(tensor, weights, "head", outputs: shape.horizon, inputs: d, input: poolAct)
        let headReq = try r.requant(requant, "head")

        let (features, target) = try decodeNormalization(meta, shape)
        let period = try r.double(meta, "sampling_period_s", "")
        guard period > 0 else { throw ModelFileError.invalid(.range, "sampling_period_s", "must be positive, found \(period)") }
        let provenance: String
        switch try r.member(meta, "provenance", "") {
        case let .string(s): provenance = s
        case let other: provenance = other.serialized
        }

        return QuantizedModel(
            shape: shape, identity: SHA256.hex(bytes), features: features, target: target,
            samplingPeriodSeconds: period, provenance: provenance,
            inputAct: inputAct, inputProjAct: inputProjAct, peAct: peAct, peAddAct: peAddAct,
            poolAct: poolAct, outputAct: outputAct, inputProj: inputProj, inputProjReq: inputProjReq,
            pe: pe, peAddReq: peAddReq, layers: layers, poolReq: poolReq, head: head, headReq: headReq
        )
    }

    // MARK: shape and dimensions (§3, §10)

    private func decodeShape(_ meta: JSONValue) throws(ModelFileError) -> ModelShape {
        let s = try r.object(meta, "shape", "")
        func dim(_ key: String, _ range: ClosedRange<Int64>) throws(ModelFileError) -> Int {
            let v = try r.int(s, key, "shape")
            guard range.contains(v) else {
                throw ModelFileError.invalid(.shape, "shape." + key, "\(v) is outside \(range.lowerBound) ... \(range.upperBound) (docs/arithmetic.md §3)")
            }
            return Int(v)
        }
        let shape = ModelShape(
            window: try dim("window", 1...256), features: try dim("features", 1...16),
            dModel: try dim("d_model", 2...256), heads: try dim("heads", 1...8), layers: try dim("layers", 1...8),
            ffn: try dim("ffn", 1...1024), horizon: try dim("horizon", 1...64)
        )
        guard shape.dModel % shape.heads == 0 else {
            throw ModelFileError.invalid(.shape, "shape.heads", "d_model \(shape.dModel) is not divisible by \(shape.heads) heads")
        }
        guard shape.ffn == 4 * shape.dModel else {
            throw ModelFileError.invalid(.shape, "shape.ffn", "\(shape.ffn) must be 4 * d_model = \(4 * shape.dModel)")
        }
        return shape
    }

    static func expectedTensors(_ s: ModelShape) -> [(String, [Int])] {
        let d = s.dModel
        var list: [(String, [Int])] = [
            ("input_proj.weight", [d, s.features]), ("input_proj.bias", [d]), ("pe", [s.window, d]),
            ("head.weight", [s.horizon, d]), ("head.bias", [s.horizon]),
        ]
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

    private func checkTensorDims(_ file: SafetensorsFile, _ s: ModelShape) throws(ModelFileError) {
        var expected = Set<String>()
        for (name, dims) in ModelDecoder.expectedTensors(s) {
            expected.insert(name)
            guard let t = file.tensors[name] else {
                throw ModelFileError.invalid(.shape, name, "tensor is missing (expected shape \(dims) for \(describe(s)))")
            }
            guard t.shape == dims else {
                throw ModelFileError.invalid(.shape, name, "tensor has shape \(t.shape) but \(describe(s)) needs \(dims)")
            }
        }
        for l in 0..<s.layers {
            let name = "layers.\(l).softmax.exp"
            expected.insert(name)
            guard let t = file.tensors[name] else { throw ModelFileError.invalid(.shape, name, "tensor is missing") }
            guard t.shape.count == 1 else {
                throw ModelFileError.invalid(.expTable, name, "must be a vector of 2^bits(scores) entries, found shape \(t.shape)")
            }
        }
        if let extra = file.tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw ModelFileError.invalid(.tensorLayout, extra, "tensor is not part of a model of \(describe(s))")
        }
    }

    private func describe(_ s: ModelShape) -> String {
        "shape W=\(s.window) F=\(s.features) d=\(s.dModel) H=\(s.heads) N=\(s.layers) P=\(s.horizon)"
    }

    // MARK: values and bounds (§2, §4, §6)

    /// `2^b - 1`, the largest magnitude of a centered `b`-bit value.
    private func span(_ bits: Int) -> Int64 { (Int64(1) << bits) - 1 }

    private func linear(
        _ tensor: (String) -> [Int32], _ weights: JSONValue, _ name: String,
        outputs: Int, inputs: Int, input: QuantParams
    ) throws(ModelFileError) -> IntegerLinear {
        let wp = try r.quant(weights, "weights", name + ".weight", allowedBits: 4...8, evenOnly: true)
        let w = tensor(name + ".weight")
        try checkValues(w, name + ".weight", lo: Int64(wp.lo), hi: Int64(wp.hi), what: "\(wp.bits)-bit weight")
        let b = tensor(name + ".bias")
        let biasLimit = (Int64(1) << (input.bits + wp.bits + 1)) - 1
        try checkValues(b, name + ".bias", lo: -biasLimit, hi: biasLimit, what: "bias of a \(input.bits)-bit input and \(wp.bits)-bit weight (|B| <= 2^(b_x + b_W + 1) - 1)")
        // (E1)/(E3): K * (2^b_x - 1) * (2^b_W - 1) + 2^(b_x + b_W + 1) - 1 <= 2^31 - 1.
        let bound = Int64(inputs) * span(input.bits) * span(wp.bits) + biasLimit
        try checkBound(bound, name, "K * (2^b_x - 1) * (2^b_W - 1) + 2^(b_x + b_W + 1) - 1 with K = \(inputs)")
        return IntegerLinear(weight: w, bias: b, weightParams: wp, outputs: outputs, inputs: inputs)
    }

    private func checkValues(_ values: [Int32], _ name: String, lo: Int64, hi: Int64, what: String) throws(ModelFileError) {
        if let i = values.firstIndex(where: { Int64($0) < lo || Int64($0) > hi }) {
            throw ModelFileError.invalid(.range, name, "element \(i) is \(values[i]), outside \(lo) ... \(hi) for a \(what)")
        }
    }

    private func checkBound(_ worst: Int64, _ name: String, _ formula: String) throws(ModelFileError) {
        let limit = Int64(Int32.max)
        guard worst <= limit else {
            throw ModelFileError.invalid(.bound, name, "worst-case accumulator \(formula) = \(worst) exceeds 2^31 - 1 (docs/arithmetic.md §6)")
        }
    }

    /// (E2): `(2^b1 - 1) m1 + (2^b2 - 1) m2 < 2^34`.
    private func checkAddition(_ req: AddRequant, _ name: String, _ a: QuantParams, _ b: QuantParams) throws(ModelFileError) {
        let worst = span(a.bits) * req.m1 + span(b.bits) * req.m2
        guard worst < Int64(1) << 34 else {
            throw ModelFileError.invalid(.bound, "requant." + name, "worst-case addition accumulator (2^b1 - 1) m1 + (2^b2 - 1) m2 = \(worst) is not below 2^34 (docs/arithmetic.md §6)")
        }
    }

    /// §2: the softmax output grid is fixed: `scale = 1/(2^b - 1)`, `zero_point = lo(b)`.
    private func checkProbs(_ p: QuantParams, _ name: String) throws(ModelFileError) {
        let expected = 1.0 / Double(span(p.bits))
        guard abs(p.scale - expected) <= 1e-12 * expected else {
            throw ModelFileError.invalid(.range, "activations." + name + ".scale", "is \(p.scale) but the softmax output grid is fixed at 1/(2^\(p.bits) - 1) = \(expected)")
        }
        guard p.zeroPoint == p.lo else {
            throw ModelFileError.invalid(.range, "activations." + name + ".zero_point", "is \(p.zeroPoint) but the softmax output grid is fixed at lo(\(p.bits)) = \(p.lo)")
        }
    }

    /// (E6): `2^b_S` entries, `EXP[0] = 2^15`, non-increasing, `>= 0`.
    private func checkExpTable(_ exp: [Int32], _ name: String, scoresBits: Int) throws(ModelFileError) {
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

    // MARK: normalization (§9)

    private func decodeNormalization(_ meta: JSONValue, _ shape: ModelShape) throws(ModelFileError) -> ([FeatureInfo], TargetInfo) {
        guard case let .array(list) = try r.member(meta, "features", "") else {
            throw ModelFileError.invalid(.metadata, "features", "must be a list of {name, unit, mean, std}")
        }
        guard list.count == shape.features else {
            throw ModelFileError.invalid(.shape, "features", "lists \(list.count) features but shape.features is \(shape.features)")
        }
        var features: [FeatureInfo] = []
        for (i, entry) in list.enumerated() {
            let path = "features[\(i)]"
            let f = FeatureInfo(
                name: try r.string(entry, "name", path), unit: try r.string(entry, "unit", path),
                mean: try r.double(entry, "mean", path), std: try r.double(entry, "std", path)
            )
            guard f.std > 0 else { throw ModelFileError.invalid(.range, path + ".std", "must be positive, found \(f.std)") }
            features.append(f)
        }
        let t = try r.object(meta, "target", "")
        var target = TargetInfo(
            name: try r.string(t, "name", "target"), unit: try r.string(t, "unit", "target"),
            mean: try r.double(t, "mean", "target"), std: try r.double(t, "std", "target"), feature: nil
        )
        guard target.std > 0 else { throw ModelFileError.invalid(.range, "target.std", "must be positive, found \(target.std)") }
        switch t["feature"] {
        case nil, .null?:
            break
        case let .int(i)?:
            guard i >= 0, i < Int64(shape.features) else {
                throw ModelFileError.invalid(.range, "target.feature", "index \(i) is not one of the \(shape.features) input features")
            }
            target.feature = Int(i)
        case let .string(name)?:
            guard let i = features.firstIndex(where: { $0.name == name }) else {
                throw ModelFileError.invalid(.range, "target.feature", "\"\(name)\" is not the name of an input feature")
            }
            target.feature = i
        case let other?:
            throw ModelFileError.invalid(.metadata, "target.feature", "must be a feature index or name, found \(other.serialized)")
        }
        return (features, target)
    }
}
