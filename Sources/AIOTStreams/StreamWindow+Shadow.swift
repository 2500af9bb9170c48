// A model switch seen from one sensor's window ring: the ring is kept when the new model reads
// the same input (window, features, period), re-quantized when the new model normalises it
// differently, and, during a guarded switch, shadowed by the previous model's quantization of the
// same readings so the previous model can be run on exactly the windows it would have seen.
import AIOTModel

extension ModelIO {
    /// Same input shape: window length, feature names in order, sampling period. A ring of one
    /// fits the other (its values may need re-quantizing: `sameNormalisation`).
    public func sameInput(as o: ModelIO) -> Bool {
        window == o.window && samplingPeriod == o.samplingPeriod && features.map(\.name) == o.features.map(\.name)
    }

    /// Same quantization of the input: the ring's integers mean the same readings under both.
    public func sameNormalisation(as o: ModelIO) -> Bool {
        features == o.features && inputBits == o.inputBits && inputScale == o.inputScale && inputZeroPoint == o.inputZeroPoint
    }

    /// The reading a quantized input stands for (§9 inverted: the centre of its quantization step;
    /// a clipped value stays at the clip). Used only when a switch re-quantizes a ring.
    public func dequantizeInput(_ q: Int32, feature f: Int) -> Double {
        let ft = features[f]
        return Double(q - inputZeroPoint) * inputScale * ft.std + ft.mean
    }
}

extension StreamWindow {
    /// How a switch treated this ring.
    public enum Retarget: Sendable, Equatable { case kept, requantized }

    /// Takes the new model's input (same shape: the caller checked `sameInput`). With `shadow`, the
    /// ring as it is (the previous model's integers) becomes the shadow, kept up to date by every
    /// later reading until `endTrial`. Allocates (at the switch, never per reading).
    @discardableResult
    public func retarget(to new: ModelIO, shadow: Bool) -> Retarget {
        precondition(new.sameInput(as: io))
        let old = io
        if shadow {
            shadowValues = values
            shadowIO = old
        }
        io = new
        if new.sameNormalisation(as: old) { return .kept }
        for k in 0..<values.count {
            let j = k % f
            values[k] = Int16(new.quantize(old.dequantizeInput(Int32(values[k]), feature: j), feature: j))
        }
        return .requantized
    }

    /// A sensor created during a trial: its (empty) ring gets a shadow for the previous model.
    public func beginShadow(previous: ModelIO) {
        precondition(previous.sameInput(as: io))
        shadowValues = [Int16](repeating: 0, count: values.count)
        shadowIO = previous
    }

    public var hasShadow: Bool { shadowIO != nil }

    /// Copies the window being emitted as the previous model sees it (inside `onWindow`).
    public func copyShadowWindow(into out: UnsafeMutableBufferPointer<Int32>) {
        copy(shadowValues, into: out)
    }

    /// Ends a trial: `rollBack` puts the previous model's integers (and input) back; either way
    /// the shadow is released.
    public func endTrial(rollBack: Bool) {
        guard let sio = shadowIO else { return }
        if rollBack {
            swap(&values, &shadowValues)
            io = sio
        }
        shadowIO = nil
        shadowValues = []
    }
}
