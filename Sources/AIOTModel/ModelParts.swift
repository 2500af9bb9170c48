// A model from its integers alone, without a model file: what an accelerator's parameter image
// carries (docs/register-map.md §6). The parts go through the same checks as a model file
// (`ModelValidator`), so a damaged or hand-made set that breaks a range or a bound of
// docs/arithmetic.md §6 is refused by name instead of computed.

extension QuantizedModel {
    /// Builds and validates a model from its integer parts, keyed by the names of
    /// docs/arithmetic.md §10: `activations` by activation name (`input`, `layers.0.q`, ...),
    /// `weights` by weight tensor name (`layers.0.q.weight`), `requant` by step name, `tensors` by
    /// tensor name (row-major, dimensions implied by `shape`). A linear step's requant uses `m1` as
    /// its `m` and ignores `m2`.
    ///
    /// The parts carry no real-valued metadata, so the model gets neutral values: every scale 1
    /// except the fixed softmax output grid (§2), features and target with mean 0 and std 1, a
    /// sampling period of 1 s, empty provenance. Such a model computes exactly the integers of the
    /// original, but `quantizeInput` / `dequantizeOutput` (§9) are meaningless on it.
    /// `identity` is whatever the caller knows the parts as (empty when nothing).
    public init(
        shape: ModelShape,
        activations: [String: (bits: Int, zeroPoint: Int)],
        weights: [String: (bits: Int, zeroPoint: Int)],
        requant: [String: (m1: Int, m2: Int, n: Int)],
        tensors: [String: [Int32]],
        identity: String = ""
    ) throws(ModelFileError) {
        try ModelValidator.checkShape(shape)
        // The parts have element counts, not dimensions: a tensor of the right count has the
        // dimensions the shape implies, one of another count is reported as a flat vector.
        let expected = Dictionary(uniqueKeysWithValues: ModelValidator.expectedTensors(shape))
        let dims = tensors.mapValues { values in [values.count] }.map { name, flat in
            (name, expected[name].map { $0.reduce(1, *) == flat[0] ? $0 : flat } ?? flat)
        }
        try ModelValidator.checkTensorDims(shape, Dictionary(uniqueKeysWithValues: dims))
        let source = PartsSource(activations: activations, weights: weights, requant: requant, tensors: tensors)
        self = try ModelValidator.assemble(shape, from: source, identity: identity)
    }
}

private struct PartsSource: ModelSource {
    let activations: [String: (bits: Int, zeroPoint: Int)]
    let weights: [String: (bits: Int, zeroPoint: Int)]
    let requant: [String: (m1: Int, m2: Int, n: Int)]
    let tensors: [String: [Int32]]

    func quant(_ section: ModelSection, _ name: String, allowedBits: ClosedRange<Int>, evenOnly: Bool) throws(ModelFileError) -> QuantParams {
        let path = section.rawValue + "." + name
        guard let q = (section == .weights ? weights : activations)[name] else {
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
        let (m, _, n) = try entry(name)
        return Requant(m: try MetadataReader.checkMultiplier(Int64(m), "requant.\(name).m"),
                       n: try MetadataReader.checkShift(Int64(n), "requant." + name))
    }

    func addRequant(_ name: String) throws(ModelFileError) -> AddRequant {
        let (m1, m2, n) = try entry(name)
        return AddRequant(m1: try MetadataReader.checkMultiplier(Int64(m1), "requant.\(name).m1"),
                          m2: try MetadataReader.checkMultiplier(Int64(m2), "requant.\(name).m2"),
                          n: try MetadataReader.checkShift(Int64(n), "requant." + name))
    }

    func tensor(_ name: String) -> [Int32] { tensors[name]! }

    private func entry(_ name: String) throws(ModelFileError) -> (Int, Int, Int) {
        guard let r = requant[name] else { throw ModelFileError.invalid(.metadata, "requant." + name, "is missing") }
        return (r.m1, r.m2, r.n)
    }
}
