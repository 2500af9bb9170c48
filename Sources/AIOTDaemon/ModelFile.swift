// A model file as the daemon sees it: the validated integer model (AIOTModel) plus the I/O
// description a stream window needs (docs/arithmetic.md §9).
import AIOTModel
import AIOTStreams

public struct LoadedModel: Sendable {
    public var path: String
    public var quantized: QuantizedModel
    public var io: ModelIO
    public var identity: String { quantized.identity }
    public var shape: ModelShape { quantized.shape }

    public init(contentsOf path: String) throws(ModelFileError) {
        let q = try QuantizedModel(contentsOf: path)
        self.init(path: path, model: q)
    }

    public init(path: String, model q: QuantizedModel) {
        self.path = path
        quantized = q
        let features = q.features.map { ModelIO.Feature(name: $0.name, unit: $0.unit, mean: $0.mean, std: $0.std) }
        io = ModelIO(window: q.shape.window, horizon: q.shape.horizon, features: features,
                     targetFeature: q.target.feature ?? 0, targetName: q.target.name, targetUnit: q.target.unit,
                     targetMean: q.target.mean, targetStd: q.target.std,
                     inputBits: q.inputAct.bits, inputScale: q.inputAct.scale, inputZeroPoint: q.inputAct.zeroPoint,
                     outputScale: q.outputAct.scale, outputZeroPoint: q.outputAct.zeroPoint,
                     samplingPeriod: q.samplingPeriodSeconds)
    }
}
