// Per-sensor time-aligned windows: one row per sampling step, features aligned by step, quantized
// on arrival (docs/arithmetic.md §9), one completed window per completed step.
import AIOTModel

/// Reading policy knobs, per stream.
public struct WindowPolicy: Sendable, Equatable {
    /// How many steps an incomplete step may trail the newest step before it is filled (or, past
    /// `maxGapFill`, given up as missing): the wait for out-of-order readings.
    public var reorderSteps: Int
    /// Missing steps (or missing features of a step) filled by holding the last value, at most this many in a row; more resets the window.
    public var maxGapFill: Int
    /// Readings stamped further than this into the future (seconds) are rejected.
    public var maxFutureSeconds: Double
    /// How many steps behind the window a reading may still be placed: a step given up as missing
    /// (a broker redelivering out of order after a restart) is completed when its reading arrives,
    /// and the windows it completes are forecast, flagged late. Older readings are `late`.
    public var lateSteps: Int
    public init(reorderSteps: Int = 2, maxGapFill: Int = 3, maxFutureSeconds: Double = 300, lateSteps: Int = 32) {
        self.reorderSteps = reorderSteps
        self.maxGapFill = maxGapFill
        self.maxFutureSeconds = maxFutureSeconds
        self.lateSteps = lateSteps
    }
}

/// Counts of what happened to a window, besides accepted/rejected readings.
public struct WindowCounters: Sendable, Equatable {
    public var stepsCompleted = 0
    public var stepsGapFilled = 0
    public var resets = 0
    /// Windows forecast after a newer one (a late reading completed them).
    public var lateWindows = 0
    public init() {}
}

/// A time-aligned window for one sensor stream, over a history ring of `window + lateSteps`
/// steps. A step is open until all its features are present (complete), or until it trails the
/// newest step by more than `reorderSteps`: then it is filled from the step before (at most
/// `maxGapFill` in a row) or given up as missing. A window is emitted once, when its W steps are all
/// complete or filled; one emitted after a newer one is late. A reading for a missing step still
/// in the ring completes it, so windows blocked by it are emitted then (a broker's redelivery after
/// a restart loses nothing). Not thread-safe: owned by the daemon's single processing thread.
/// All buffers are allocated at init; ingest allocates nothing.
public final class StreamWindow {
    /// The model input this ring is quantized for; changed only by a model switch (`retarget`).
    public internal(set) var io: ModelIO
    public let policy: WindowPolicy
    public private(set) var counters = WindowCounters()
    let w: Int, f: Int, h: Int
    let period: Double
    let fullMask: UInt16
    // Per ring row (step mod h): the values, and one word for features present, state and emitted.
    var values: [Int16]
    // One word per row: features present (bits 0-15), state (bits 16-17), emitted (bit 18).
    var rows: [UInt32]
    static let emittedBit: UInt32 = 1 << 18
    @inline(__always) func mask(_ i: Int) -> UInt16 { UInt16(truncatingIfNeeded: rows[i]) }
    @inline(__always) func state(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: rows[i] >> 16) & 3 }
    @inline(__always) func emitted(_ i: Int) -> Bool { rows[i] & Self.emittedBit != 0 }
    @inline(__always) func setState(_ i: Int, _ st: UInt8) { rows[i] = rows[i] & ~(UInt32(3) << 16) | UInt32(st) << 16 }
    static let open: UInt8 = 0, complete: UInt8 = 1, filled: UInt8 = 2, missing: UInt8 = 3
    var hi: Int64? = nil          // newest step with a reading
    var settled: Int64 = 0        // steps <= settled are decided (complete, filled or missing)
    var run = 0                   // usable steps in a row ending at `settled`
    var consecutiveFilled = 0
    var newestEmitted: Int64? = nil
    var current: Int64 = 0        // the window being emitted (for copyWindow(into:))
    /// During a guarded model switch only: the previous model's quantization of the same rows
    /// (StreamWindow+Shadow.swift); empty otherwise, so a fleet pays nothing outside a trial.
    var shadowIO: ModelIO? = nil
    var shadowValues: [Int16] = []

    public init(io: ModelIO, policy: WindowPolicy) {
        // 16 bits hold every input value (the contract allows 4 ... 16 input bits) and every feature
        // mask (a model reads at most 16 features): a fleet holds 10,000 of these rings.
        precondition(io.features.count >= 1 && io.features.count <= 16 && io.inputBits <= 16 && io.window >= 1 && io.samplingPeriod > 0)
        self.io = io
        self.policy = policy
        w = io.window
        f = io.features.count
        h = io.window + max(policy.lateSteps, policy.reorderSteps + 1)
        period = io.samplingPeriod
        values = [Int16](repeating: 0, count: h * f)
        rows = [UInt32](repeating: UInt32(Self.missing) << 16, count: h)
        fullMask = f == 16 ? UInt16.max : (UInt16(1) << UInt16(f)) - 1
    }

    /// The step a timestamp belongs to (nearest multiple of the sampling period).
    @inline(__always)
    public func step(of time: Double) -> Int64 { Int64((time / period).rounded(.toNearestOrAwayFromZero)) }
    public func time(of step: Int64) -> Double { Double(step) * period }
    @inline(__always) func row(_ s: Int64) -> Int { Int(((s % Int64(h)) + Int64(h)) % Int64(h)) }
    @inline(__always) func usable(_ s: Int64) -> Bool { let st = state(row(s)); return st == Self.complete || st == Self.filled }

    /// Places one reading. Returns nil when accepted. `onStep` runs for every window this reading
    /// completes; `copyWindow(into:)` inside it yields that window.
    public func ingest(_ r: Reading, now: Double, onStep: (Int64) -> Void) -> RejectReason? {
        ingest(r, now: now) { step, _ in onStep(step) }
    }

    /// As above; `onWindow` also says whether the window is late (a newer one was emitted before).
    public func ingest(_ r: Reading, now: Double, onWindow: (Int64, Bool) -> Void) -> RejectReason? {
        if r.time > now + policy.maxFutureSeconds { return .future }
        // Before 1970, or so far back the step number would not fit: in the past, so late.
        guard r.time >= 0, r.time / period < 4e18 else { return .late }
        let k = step(of: r.time)
        if let top = hi, k - top > Int64(h + policy.maxGapFill) {
            // A jump far past everything held: start over.
            if run > 0 || newestEmitted != nil { counters.resets += 1 }
            hi = nil
            newestEmitted = nil
        }
        if hi == nil { start(at: k) }
        if k > hi! { advance(to: k) }
        guard k > hi! - Int64(h) else { return .late }
        let i = row(k)
        let bit = UInt16(1) << UInt16(r.feature)
        if mask(i) & bit != 0 { return .duplicate }
        let q = Int16(io.quantize(r.value, feature: r.feature))  // within lo(b)...hi(b), b <= 16
        rows[i] |= UInt32(bit)
        switch state(i) {
        case Self.filled:
            // The real value of a filled step: kept, but windows already emitted are not redone.
            values[i * f + r.feature] = q
            if mask(i) == fullMask { setState(i, Self.complete) }
        case Self.missing where k <= settled:
            values[i * f + r.feature] = q
            if mask(i) == fullMask {
                setState(i, Self.complete)
                counters.stepsCompleted += 1
                lateCompletion(k, onWindow: onWindow)
            }
        default:
            values[i * f + r.feature] = q
        }
        if let sio = shadowIO { shadowValues[i * f + r.feature] = Int16(sio.quantize(r.value, feature: r.feature)) }
        settle(onWindow: onWindow)
        return nil
    }

    private func start(at k: Int64) {
        for i in 0..<h { rows[i] = UInt32(Self.missing) << 16 }
        setState(row(k), Self.open)
        hi = k
        settled = k - 1
        run = 0
        consecutiveFilled = 0
    }

    /// Newer steps take over the ring rows of the oldest.
    private func advance(to k: Int64) {
        // Steps about to leave the ring undecided are given up (their rows are reused).
        let oldest = k - Int64(h) + 1
        if settled < oldest - 1 {
            if run > 0 { counters.resets += 1 }
            settled = oldest - 1
            run = 0
            consecutiveFilled = 0
        }
        var s = hi! + 1
        if k - s >= Int64(h) { s = k - Int64(h) + 1 }
        while s <= k {
            let i = row(s)
            rows[i] = UInt32(Self.open) << 16
            s += 1
        }
        hi = k
    }

    /// Decides open steps in order: complete ones at once; ones trailing the newest step by more
    /// than `reorderSteps` are filled or given up.
    private func settle(onWindow: (Int64, Bool) -> Void) {
        while settled < hi! {
            let s = settled + 1, i = row(s)
            if state(i) == Self.open && mask(i) == fullMask {
                setState(i, Self.complete)
                counters.stepsCompleted += 1
                consecutiveFilled = 0
            } else if hi! - s > Int64(policy.reorderSteps) {
                if state(i) == Self.open, run > 0, consecutiveFilled < policy.maxGapFill {
                    let p = row(s - 1)
                    for j in 0..<f where mask(i) & (UInt16(1) << UInt16(j)) == 0 { values[i * f + j] = values[p * f + j] }
                    if shadowIO != nil {
                        for j in 0..<f where mask(i) & (UInt16(1) << UInt16(j)) == 0 { shadowValues[i * f + j] = shadowValues[p * f + j] }
                    }
                    setState(i, Self.filled)
                    consecutiveFilled += 1
                    counters.stepsGapFilled += 1
                } else {
                    setState(i, Self.missing)
                    if run > 0 { counters.resets += 1 }
                    consecutiveFilled = 0
                }
            } else {
                return
            }
            settled = s
            if state(i) == Self.missing { run = 0; continue }
            run += 1
            if run >= w { emit(s, onWindow: onWindow) }
        }
    }

    /// A missing step completed late: emit every window it unblocks, and rebuild the run.
    private func lateCompletion(_ k: Int64, onWindow: (Int64, Bool) -> Void) {
        let oldest = hi! - Int64(h) + 1
        var j = k
        while j <= settled && j < k + Int64(w) {
            let first = j - Int64(w) + 1
            if first >= oldest, !emitted(row(j)) {
                var ok = true
                var s = first
                while s <= j { if !usable(s) { ok = false; break }; s += 1 }
                if ok { emit(j, onWindow: onWindow) }
            }
            j += 1
        }
        run = 0
        var s = settled
        while s >= oldest && usable(s) { run += 1; s -= 1 }
    }

    private func emit(_ j: Int64, onWindow: (Int64, Bool) -> Void) {
        let i = row(j)
        guard !emitted(i) else { return }
        rows[i] |= Self.emittedBit
        let late = newestEmitted.map { j < $0 } ?? false
        if late { counters.lateWindows += 1 } else { newestEmitted = j }
        current = j
        onWindow(j, late)
    }

    public func reset() {
        counters.resets += 1
        hi = nil
        newestEmitted = nil
        run = 0
    }

    public var isFull: Bool { run >= w }

    /// Copies the window being emitted (inside `onStep`/`onWindow`), oldest row first, time-major [W, F].
    public func copyWindow(into out: UnsafeMutableBufferPointer<Int32>) {
        copy(values, into: out)
    }

    func copy(_ source: [Int16], into out: UnsafeMutableBufferPointer<Int32>) {
        precondition(out.count >= w * f)
        var o = 0
        var s = current - Int64(w) + 1
        while s <= current {
            let i = row(s)
            for j in 0..<f { out[o] = Int32(source[i * f + j]); o += 1 }
            s += 1
        }
    }

    /// The newest window emitted in order (nil: none yet).
    public var newestWindow: Int64? { newestEmitted }
}
