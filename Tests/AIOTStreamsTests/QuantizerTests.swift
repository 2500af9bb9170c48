// The live path (StreamWindow) and the offline path (QuantizedModel) must round inputs the same
// way as numpy: sign(x) * floor(|x| + 0.5) in IEEE double (docs/arithmetic.md §9).
import Testing
import AIOTModel
@testable import AIOTStreams

/// An identity normalization (mean 0, std 1, scale 1, zero point 0) so the rounding is seen bare.
func identityIO(bits: Int = 8, zeroPoint: Int32 = 0) -> ModelIO {
    ModelIO(window: 1, horizon: 1, features: [.init(name: "v", mean: 0, std: 1)], targetFeature: 0, targetName: "v",
            targetMean: 0, targetStd: 1, inputBits: bits, inputScale: 1, inputZeroPoint: zeroPoint,
            outputScale: 1, outputZeroPoint: 0, samplingPeriod: 1)
}

// Expected values printed by numpy: np.sign(x) * np.floor(np.abs(x) + 0.5).
@Test(arguments: [
    (0.49999999999999994, 1.0), (-0.49999999999999994, -1.0),
    (0.5, 1.0), (-0.5, -1.0), (2.5, 3.0), (-2.5, -3.0), (0.0, 0.0),
    (4503599627370496.0, 4503599627370496.0), (-4503599627370496.0, -4503599627370496.0),
    (4503599627370497.0, 4503599627370498.0), (-4503599627370497.0, -4503599627370498.0),
    (4503599627370495.5, 4503599627370496.0),
])
func roundingIsNumpys(_ x: Double, _ numpy: Double) {
    #expect(roundHalfAway(x) == numpy, "x = \(x)")
}

@Test(arguments: [
    (0.49999999999999994, Int32(1)), (-0.49999999999999994, Int32(-1)),
    (0.49999999999999989, Int32(0)), (1.4999999999999998, Int32(1)),
    (4503599627370496.0, Int32(127)), (-4503599627370496.0, Int32(-128)),
    (4503599627370497.0, Int32(127)), (-4503599627370497.0, Int32(-128)),
    (1e300, Int32(127)), (-1e300, Int32(-128)), (.infinity, Int32(127)), (-.infinity, Int32(-128)),
])
func liveQuantizerRoundsLikeTheContract(_ x: Double, _ q: Int32) throws {
    let io = identityIO()
    #expect(io.quantize(x, feature: 0) == q, "x = \(x)")
    // The model's own quantizer (aiotctl infer, the vector checks) gives the same integer.
    if x.isFinite { #expect(quantizeReading(x, mean: 0, std: 1, scale: 1, zeroPoint: 0, lo: -128, hi: 127) == q) }
}

@Test func liveQuantizerKeepsTheZeroPointAndSaturatesAfterIt() {
    let io = identityIO(bits: 8, zeroPoint: 5)
    #expect(io.quantize(0.49999999999999994, feature: 0) == 6)
    #expect(io.quantize(121.5, feature: 0) == 127)
    #expect(io.quantize(-133.49999999999997, feature: 0) == -128)
    #expect(io.quantize(-132.49999999999997, feature: 0) == -127)
}
