// The model's validation error statistics (metadata key `calibration`, docs/arithmetic.md §10):
// optional, read-only facts about the model's forecasts, never part of the integer arithmetic.

/// Validation errors per horizon step, in the target's engineering units (the published forecast's).
public struct ModelCalibration: Sendable, Equatable {
    /// The split the statistics come from ("val").
    public var split: String
    /// Forecasts per horizon step the statistics cover.
    public var windows: Int
    /// Per horizon step (P entries).
    public var mae: [Double]
    public var rmse: [Double]
    /// Quantile level (e.g. 0.99) -> |residual| at that level per horizon step; levels ascending.
    public var quantiles: [(level: Double, values: [Double])]

    public init(split: String, windows: Int, mae: [Double], rmse: [Double], quantiles: [(level: Double, values: [Double])]) {
        self.split = split
        self.windows = windows
        self.mae = mae
        self.rmse = rmse
        self.quantiles = quantiles
    }

    public static func == (a: ModelCalibration, b: ModelCalibration) -> Bool {
        a.split == b.split && a.windows == b.windows && a.mae == b.mae && a.rmse == b.rmse
            && a.quantiles.map(\.level) == b.quantiles.map(\.level) && a.quantiles.map(\.values) == b.quantiles.map(\.values)
    }

    /// |residual| thresholds per horizon step at `level` (one of the stored levels), or nil.
    public func threshold(level: Double) -> [Double]? {
        quantiles.first { abs($0.level - level) < 1e-12 }?.values
    }

    /// The stored levels, for messages.
    public var levels: [Double] { quantiles.map(\.level) }
}

extension MetadataReader {
    /// `calibration`: `{"split", "windows", "mae": [P], "rmse": [P], "abs_residual_quantiles": {"0.99": [P], ...}}`.
    /// Absent: nil (files exported before it existed still load). Present but broken: an error naming the key.
    func calibration(_ meta: JSONValue, horizon: Int) throws(ModelFileError) -> ModelCalibration? {
        guard let c = meta["calibration"] else { return nil }
        if case .null = c { return nil }
        guard case .object = c else { throw ModelFileError.invalid(.metadata, "calibration", "must be a JSON object") }
        func list(_ v: JSONValue, _ path: String) throws(ModelFileError) -> [Double] {
            guard case let .array(items) = v, items.count == horizon else {
                throw ModelFileError.invalid(.metadata, path, "must be a list of \(horizon) numbers (one per horizon step)")
            }
            var out: [Double] = []
            for (i, x) in items.enumerated() {
                let d: Double
                switch x {
                case let .int(n): d = Double(n)
                case let .double(f): d = f
                default: throw ModelFileError.invalid(.metadata, "\(path)[\(i)]", "must be a number, found \(x.serialized)")
                }
                guard d.isFinite, d >= 0 else { throw ModelFileError.invalid(.range, "\(path)[\(i)]", "must be finite and >= 0, found \(d)") }
                out.append(d)
            }
            return out
        }
        let split = try string(c, "split", "calibration")
        let windows = try int(c, "windows", "calibration")
        guard windows >= 1 else { throw ModelFileError.invalid(.range, "calibration.windows", "must be >= 1, found \(windows)") }
        let mae = try list(try member(c, "mae", "calibration"), "calibration.mae")
        let rmse = try list(try member(c, "rmse", "calibration"), "calibration.rmse")
        var quantiles: [(level: Double, values: [Double])] = []
        if let q = c["abs_residual_quantiles"] {
            guard case let .object(members) = q else {
                throw ModelFileError.invalid(.metadata, "calibration.abs_residual_quantiles", "must be an object of \"level\": [P numbers]")
            }
            for (key, v) in members {
                let path = "calibration.abs_residual_quantiles.\(key)"
                guard let level = Double(key), level > 0, level < 1 else {
                    throw ModelFileError.invalid(.metadata, path, "the key must be a quantile level between 0 and 1")
                }
                quantiles.append((level, try list(v, path)))
            }
            quantiles.sort { $0.level < $1.level }
        }
        return ModelCalibration(split: split, windows: Int(windows), mae: mae, rmse: rmse, quantiles: quantiles)
    }
}
