// Decodes a model file: container layout and metadata (docs/arithmetic.md §10), then hands the
// integers to `ModelValidator`, which checks every range and accumulator bound of §2, §3, §6. The
// first broken rule is reported with the name of its field.

struct ModelDecoder {
    let bytes: UnsafeRawBufferPointer
    private let r = MetadataReader()

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

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
        let known = QuantizedModel.versions
        guard known.contains(version) else {
            throw ModelFileError(.unsupported, field: "version", "model file: 'version' is \(version) but this build reads versions \(known.lowerBound) to \(known.upperBound) of docs/arithmetic.md; upgrade aiot-runtime or re-export the model for version \(known.upperBound) or older")
        }
        // Version 2 is version 1 plus the linear skip path (§5 steps 15-17, §10).
        let skip = version == 2

        let shape = try decodeShape(meta)
        try ModelValidator.checkTensorDims(shape, skip: skip, file.tensors.mapValues(\.shape))
        let source = FileSource(
            file: file, bytes: bytes, activations: try r.object(meta, "activations", ""),
            weights: try r.object(meta, "weights", ""), requant: try r.object(meta, "requant", "")
        )
        var model = try ModelValidator.assemble(shape, skip: skip, from: source, identity: SHA256.hex(bytes))

        (model.features, model.target) = try decodeNormalization(meta, shape)
        let period = try r.double(meta, "sampling_period_s", "")
        guard period > 0 else { throw ModelFileError.invalid(.range, "sampling_period_s", "must be positive, found \(period)") }
        model.samplingPeriodSeconds = period
        switch try r.member(meta, "provenance", "") {
        case let .string(s): model.provenance = s
        case let other: model.provenance = other.serialized
        }
        model.calibration = try r.calibration(meta, horizon: shape.horizon)
        return model
    }

    // MARK: shape (§3)

    private func decodeShape(_ meta: JSONValue) throws(ModelFileError) -> ModelShape {
        let s = try r.object(meta, "shape", "")
        func dim(_ key: String) throws(ModelFileError) -> Int { Int(try r.int(s, key, "shape")) }
        let shape = ModelShape(
            window: try dim("window"), features: try dim("features"), dModel: try dim("d_model"),
            heads: try dim("heads"), layers: try dim("layers"), ffn: try dim("ffn"), horizon: try dim("horizon")
        )
        try ModelValidator.checkShape(shape)
        return shape
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

/// A model file's integers: the `activations`, `weights` and `requant` metadata and the tensors.
private struct FileSource: ModelSource {
    let file: SafetensorsFile
    let bytes: UnsafeRawBufferPointer
    let activations: JSONValue
    let weights: JSONValue
    let requant: JSONValue
    private let r = MetadataReader()

    init(file: SafetensorsFile, bytes: UnsafeRawBufferPointer, activations: JSONValue, weights: JSONValue, requant: JSONValue) {
        self.file = file
        self.bytes = bytes
        self.activations = activations
        self.weights = weights
        self.requant = requant
    }

    func quant(_ section: ModelSection, _ name: String, allowedBits: ClosedRange<Int>, evenOnly: Bool) throws(ModelFileError) -> QuantParams {
        try r.quant(section == .weights ? weights : activations, section.rawValue, name, allowedBits: allowedBits, evenOnly: evenOnly)
    }

    func requant(_ name: String) throws(ModelFileError) -> Requant { try r.requant(requant, name) }
    func addRequant(_ name: String) throws(ModelFileError) -> AddRequant { try r.addRequant(requant, name) }
    func tensor(_ name: String) -> [Int32] { file.values(of: file.tensors[name]!, in: bytes) }
}
