// Per-sensor time-aligned windows: one row per sampling step, features aligned by step, quantized
// on arrival (docs/arithmetic.md §9), one completed window per completed step.
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

/// Reading policy knobs, per stream.
public struct WindowPolicy: Sendable, Equatable {
    /// How many steps a reading may trail the newest step and still be placed (out-of-order tolerance).
    public var reorderSteps: Int
    /// Missing steps (or missing features of a step) filled by holding the last value, at most this many in a row; more resets the window.
    public var maxGapFill: Int
    /// Readings stamped further than this into the future (seconds) are rejected.
    public var maxFutureSeconds: Double
    public init(reorderSteps: Int = 2, maxGapFill: Int = 3, maxFutureSeconds: Double = 300) {
        self.reorderSteps = reorderSteps
        self.maxGapFill = maxGapFill
        self.maxFutureSeconds = maxFutureSeconds
    }
}

/// Counts of what happened to a window, besides accepted/rejected readings.
public struct WindowCounters: Sendable, Equatable {
    public var stepsCompleted = 0
    public var stepsGapFilled = 0
    public var resets = 0
    public init() {}
}

/// A time-aligned window for one sensor stream. Not thread-safe: owned by the daemon's single
/// processing task. All buffers are allocated at init; ingest allocates nothing.
public final class StreamWindow {
    public let io: ModelIO
    public let policy: WindowPolicy
    public private(set) var counters = WindowCounters()
    let w: Int, f: Int, slots: Int
    let period: Double
    var ring: [Int32]            // w rows of f, ring order
    var head = 0                 // next row to write
    var filled = 0               // completed rows since the last reset (capped at w)
    var lastRow: [Int32]
    var haveLastRow = false
    var consecutiveFilled = 0
    var lastStep: Int64? = nil   // newest completed step
    var pending: [Int32]         // slots * f
    var pendingMask: [UInt32]    // slots
    let fullMask: UInt32

    public init(io: ModelIO, policy: WindowPolicy) {
        precondition(io.features.count >= 1 && io.features.count <= 32 && io.window >= 1 && io.samplingPeriod > 0)
        self.io = io
        self.policy = policy
        w = io.window
        f = io.features.count
        slots = max(0, policy.reorderSteps) + 1
        period = io.samplingPeriod
        ring = [Int32](repeating: 0, count: w * f)
        lastRow = [Int32](repeating: 0, count: f)
        pending = [Int32](repeating: 0, count: slots * f)
        pendingMask = [UInt32](repeating: 0, count: slots)
        fullMask = f == 32 ? UInt32.max : (UInt32(1) << UInt32(f)) - 1
    }

    /// The step a timestamp belongs to (nearest multiple of the sampling period).
    @inline(__always)
    public func step(of time: Double) -> Int64 { Int64((time / period).rounded(.toNearestOrAwayFromZero)) }
    public func time(of step: Int64) -> Double { Double(step) * period }

    /// Places one reading. Returns nil when accepted. `onStep` runs for every step this reading
    /// completes while the window is full; `copyWindow` inside it yields that step's window.
    public func ingest(_ r: Reading, now: Double, onStep: (Int64) -> Void) -> RejectReason? {
        if r.time > now + policy.maxFutureSeconds { return .future }
        // Before 1970, or so far back the step number would not fit: in the past, so late.
        guard r.time >= 0, r.time / period < 4e18 else { return .late }
        let k = step(of: r.time)
        if lastStep == nil { lastStep = k - 1 }
        var offset = k - lastStep! - 1
        // The newest completed step again is a duplicate; anything older is late.
        if offset == -1 { return .duplicate }
        if offset < 0 { return .late }
        if offset >= Int64(slots) {
            // A jump far past everything we hold: nothing pending can be filled sensibly.
            if offset > Int64(slots + policy.maxGapFill + 1) {
                reset()
                lastStep = k - 1
                offset = 0
            } else {
                while offset >= Int64(slots) {
                    forceOldest(onStep: onStep)
                    offset -= 1
                }
            }
        }
        let slot = Int(offset)
        let bit = UInt32(1) << UInt32(r.feature)
        if pendingMask[slot] & bit != 0 { return .duplicate }
        pending[slot * f + r.feature] = io.quantize(r.value, feature: r.feature)
        pendingMask[slot] |= bit
        while pendingMask[0] == fullMask {
            consecutiveFilled = 0
            complete(onStep: onStep)
        }
        return nil
    }

    /// Fills the oldest pending step from the last row when allowed, else resets; then completes it.
    private func forceOldest(onStep: (Int64) -> Void) {
        consecutiveFilled += 1
        if !haveLastRow || consecutiveFilled > policy.maxGapFill {
            // Too long a gap (or nothing to hold): drop the incomplete step and start the window over.
            if haveLastRow || filled > 0 { counters.resets += 1 }
            filled = 0
            haveLastRow = false
            consecutiveFilled = 0
            shift()
            lastStep! += 1
            return
        }
        for j in 0..<f where pendingMask[0] & (UInt32(1) << UInt32(j)) == 0 {
            pending[j] = lastRow[j]
        }
        pendingMask[0] = fullMask
        counters.stepsGapFilled += 1
        complete(onStep: onStep)
    }

    private func complete(onStep: (Int64) -> Void) {
        let base = head * f
        for j in 0..<f {
            ring[base + j] = pending[j]
            lastRow[j] = pending[j]
        }
        haveLastRow = true
        head = (head + 1) % w
        if filled < w { filled += 1 }
        shift()
        lastStep! += 1
        counters.stepsCompleted += 1
        if filled == w { onStep(lastStep!) }
    }

    private func shift() {
        for s in 0..<(slots - 1) {
            pendingMask[s] = pendingMask[s + 1]
            for j in 0..<f { pending[s * f + j] = pending[(s + 1) * f + j] }
        }
        pendingMask[slots - 1] = 0
    }

    public func reset() {
        counters.resets += 1
        filled = 0
        haveLastRow = false
        consecutiveFilled = 0
        lastStep = nil
        for s in 0..<slots { pendingMask[s] = 0 }
    }

    public var isFull: Bool { filled == w }

    /// Copies the current window, oldest row first, time-major [W, F], into `out`.
    public func copyWindow(into out: UnsafeMutableBufferPointer<Int32>) {
        precondition(out.count >= w * f)
        ring.withUnsafeBufferPointer { r in
            var o = 0
            for i in 0..<w {
                let row = (head + i) % w
                for j in 0..<f { out[o] = r[row * f + j]; o += 1 }
            }
        }
    }
}
