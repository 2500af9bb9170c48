// What a stream needs to know about its model's input and output (docs/arithmetic.md §9, §10),
// quantizing through the model's one quantizer.
import AIOTModel

/// What a stream needs to know about its model's input and output (docs/arithmetic.md §9, §10).
public struct ModelIO: Sendable, Equatable {
    public struct Feature: Sendable, Equatable {
        public var name: String
        public var unit: String
        public var mean: Double
        public var std: Double
        public init(name: String, unit: String = "", mean: Double, std: Double) {
            self.name = name
            self.unit = unit
            self.mean = mean
            self.std = std
        }
    }
    public var window: Int
    public var horizon: Int
    public var features: [Feature]
    /// Index of the target among `features` (a bare "v" reading feeds it), or 0.
    public var targetFeature: Int
    public var targetName: String
    public var targetUnit: String
    public var targetMean: Double
    public var targetStd: Double
    public var inputBits: Int
    public var inputScale: Double
    public var inputZeroPoint: Int32
    public var outputScale: Double
    public var outputZeroPoint: Int32
    public var samplingPeriod: Double

    public init(window: Int, horizon: Int, features: [Feature], targetFeature: Int, targetName: String, targetUnit: String = "",
                targetMean: Double, targetStd: Double, inputBits: Int, inputScale: Double, inputZeroPoint: Int32,
                outputScale: Double, outputZeroPoint: Int32, samplingPeriod: Double) {
        self.window = window
        self.horizon = horizon
        self.features = features
        self.targetFeature = targetFeature
        self.targetName = targetName
        self.targetUnit = targetUnit
        self.targetMean = targetMean
        self.targetStd = targetStd
        self.inputBits = inputBits
        self.inputScale = inputScale
        self.inputZeroPoint = inputZeroPoint
        self.outputScale = outputScale
        self.outputZeroPoint = outputZeroPoint
        self.samplingPeriod = samplingPeriod
    }

    /// §9 through the model's one quantizer (AIOTModel.quantizeReading), so the live path gives
    /// the integers numpy and `aiotctl infer` give.
    @inline(__always)
    public func quantize(_ x: Double, feature f: Int) -> Int32 {
        let ft = features[f]
        return quantizeReading(x, mean: ft.mean, std: ft.std, scale: inputScale, zeroPoint: inputZeroPoint,
                               lo: Int32(-(1 << (inputBits - 1))), hi: Int32((1 << (inputBits - 1)) - 1))
    }

    /// §9: y = ((q_out - z_out) * s_out) * std_y + mean_y.
    @inline(__always)
    public func dequantize(_ q: Int32) -> Double {
        let yNorm = Double(q - outputZeroPoint) * outputScale
        return yNorm * targetStd + targetMean
    }
}
