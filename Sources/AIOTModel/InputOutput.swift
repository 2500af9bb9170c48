// The two float helpers around the integer path (docs/arithmetic.md §9). Both evaluate their
// formula in IEEE double precision in exactly the documented order, so every host (Swift, numpy)
// produces the same integers and the same engineering values.

/// Why readings could not be turned into a quantized window (or outputs into values).
public struct QuantizationError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        /// A reading is NaN or infinite.
        case nonFinite
        /// A buffer has the wrong length for the model.
        case shape
    }
    public var code: Code
    /// The offending element (time-major index into the window), when there is one.
    public var index: Int?
    public var message: String
    public var description: String { message }
}

/// The one input quantizer (§9), used by every path (the daemon's windows, `aiotd`, `aiotctl infer`,
/// the vector checks): `SAT(z + round_half_away(((x - mean) / std) / s))`, evaluated in IEEE double
/// in exactly this order, with numpy's rounding (`roundHalfAway`), so 0.49999999999999994 gives 1
/// as in numpy (`.rounded(.toNearestOrAwayFromZero)` gives 0). Saturates in double before
/// converting, so a wild reading clamps instead of trapping. Callers refuse non-finite readings
/// first; a NaN that slips through maps to the zero point rather than trapping.
@inline(__always)
public func quantizeReading(_ x: Double, mean: Double, std: Double, scale: Double, zeroPoint: Int32, lo: Int32, hi: Int32) -> Int32 {
    let v = Double(zeroPoint) + roundHalfAway(((x - mean) / std) / scale)
    guard !v.isNaN else { return zeroPoint }
    return Int32(min(max(v, Double(lo)), Double(hi)))
}

extension QuantizedModel {
    /// Quantizes one window of raw readings `[W, F]` (time-major, features interleaved per step):
    /// `q_in[t, f] = SAT_b_in(z_in + round_half_away(((x[t, f] - mean_f) / std_f) / s_in))`.
    /// Refuses non-finite readings before any arithmetic.
    public func quantizeInput(window: UnsafeBufferPointer<Double>, into q: UnsafeMutableBufferPointer<Int32>) throws(QuantizationError) {
        let n = shape.window * shape.features
        guard window.count == n, q.count == n else {
            throw QuantizationError(code: .shape, index: nil, message: "a window holds \(shape.window) steps x \(shape.features) features = \(n) readings, got \(window.count) readings and room for \(q.count) integers")
        }
        for i in 0..<n where !window[i].isFinite {
            throw QuantizationError(code: .nonFinite, index: i, message: "reading \(i) (step \(i / shape.features), feature '\(features[i % shape.features].name)') is \(window[i]); only finite readings can be quantized, so drop or repair it before inference")
        }
        let s = inputAct.scale, z = inputAct.zeroPoint, lo = inputAct.lo, hi = inputAct.hi
        for i in 0..<n {
            let f = features[i % shape.features]
            q[i] = quantizeReading(window[i], mean: f.mean, std: f.std, scale: s, zeroPoint: z, lo: lo, hi: hi)
        }
    }

    /// Turns `P` quantized outputs into forecasts in the target's engineering units:
    /// `y_norm = (q_out - z_out) * s_out`, `y = y_norm * std_y + mean_y`.
    public func dequantizeOutput(_ q: UnsafeBufferPointer<Int32>, into y: UnsafeMutableBufferPointer<Double>) throws(QuantizationError) {
        guard q.count == shape.horizon, y.count == shape.horizon else {
            throw QuantizationError(code: .shape, index: nil, message: "the model forecasts \(shape.horizon) steps, got \(q.count) integers and room for \(y.count) values")
        }
        let s = outputAct.scale
        let z = Int64(outputAct.zeroPoint)
        for p in 0..<shape.horizon {
            let yNorm = Double(Int64(q[p]) - z) * s
            y[p] = yNorm * target.std + target.mean
        }
    }

    /// Array form of `quantizeInput(window:into:)` for tools and tests (allocates).
    public func quantizeInput(_ window: [Double]) throws(QuantizationError) -> [Int32] {
        var q = [Int32](repeating: 0, count: shape.window * shape.features)
        let result: Result<Void, QuantizationError> = window.withUnsafeBufferPointer { w in
            q.withUnsafeMutableBufferPointer { out in
                do throws(QuantizationError) {
                    try quantizeInput(window: w, into: out)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
        return q
    }

    /// Array form of `dequantizeOutput(_:into:)` for tools and tests (allocates).
    public func dequantizeOutput(_ q: [Int32]) throws(QuantizationError) -> [Double] {
        var y = [Double](repeating: 0, count: shape.horizon)
        let result: Result<Void, QuantizationError> = q.withUnsafeBufferPointer { qb in
            y.withUnsafeMutableBufferPointer { out in
                do throws(QuantizationError) {
                    try dequantizeOutput(qb, into: out)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
        return y
    }
}
