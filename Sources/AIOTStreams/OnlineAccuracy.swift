// Online accuracy, pure: a sensor's forecasts wait in a fixed ring until the actuals of their
// target steps arrive on the same topic; each (forecast, actual) pair gives one error per horizon
// step, beside the persistence forecast's error on the same pair (the window's last actual).
// Errors are in the target's engineering units, the published forecast's. No clock, no I/O, no
// allocation after init: a sensor's rings are sized once from the model's horizon and the stream's
// policy.
import AIOTModel

/// How errors are judged (the `[accuracy]` table); per template.
public struct AccuracyPolicy: Sendable, Equatable {
    /// Rolling statistics over the last this many resolved forecast values.
    public var windowSize: Int
    /// |residual| above the calibration's quantile at this level flags an anomaly; nil: off.
    public var anomalyQuantile: Double?
    /// Drift: the rolling median |error| above `driftFactor` x the validation median (the
    /// calibration's 0.5 quantile) ... (a median, so a burst of anomalies is not a drift)
    public var driftFactor: Double
    /// ... for this many resolved values in a row raises the alarm; as many below clears it.
    public var driftSteps: Int
    public init(windowSize: Int = 48, anomalyQuantile: Double? = 0.999, driftFactor: Double = 2, driftSteps: Int = 48) {
        self.windowSize = windowSize
        self.anomalyQuantile = anomalyQuantile
        self.driftFactor = driftFactor
        self.driftSteps = driftSteps
    }
}

/// What a template's model says about its own errors, resolved once from its calibration.
public struct AccuracyReference: Sendable, Equatable {
    /// |residual| threshold per horizon step (the calibration's quantile at the policy's level).
    public var thresholds: [Double]?
    /// The validation MAE over all horizon steps (reported beside the rolling MAE).
    public var validationMAE: Double?
    /// The validation median |residual| over all horizon steps: the drift reference (nil: no drift alarm).
    public var validationMedian: Double?
    public init(thresholds: [Double]? = nil, validationMAE: Double? = nil, validationMedian: Double? = nil) {
        self.thresholds = thresholds
        self.validationMAE = validationMAE
        self.validationMedian = validationMedian
    }
    public init(calibration: ModelCalibration?, policy: AccuracyPolicy) {
        thresholds = policy.anomalyQuantile.flatMap { calibration?.threshold(level: $0) }
        validationMAE = calibration.map { $0.mae.reduce(0, +) / Double(max(1, $0.mae.count)) }
        validationMedian = calibration?.threshold(level: 0.5).map { $0.reduce(0, +) / Double(max(1, $0.count)) }
    }
}

/// Sums of errors (model and persistence on the same pairs); MAE, RMSE and skill from them.
public struct ErrorSums: Sendable, Equatable {
    public var count = 0
    public var absSum = 0.0
    public var sqSum = 0.0
    public var persistenceAbsSum = 0.0
    public var persistenceSqSum = 0.0
    public init() {}
    @inline(__always)
    public mutating func add(error e: Double, persistence p: Double) {
        count += 1
        absSum += abs(e); sqSum += e * e
        persistenceAbsSum += abs(p); persistenceSqSum += p * p
    }
    public mutating func add(_ o: ErrorSums) {
        count += o.count
        absSum += o.absSum; sqSum += o.sqSum
        persistenceAbsSum += o.persistenceAbsSum; persistenceSqSum += o.persistenceSqSum
    }
    public var mae: Double? { count > 0 ? absSum / Double(count) : nil }
    public var rmse: Double? { count > 0 ? (sqSum / Double(count)).squareRoot() : nil }
    public var persistenceMAE: Double? { count > 0 ? persistenceAbsSum / Double(count) : nil }
    public var persistenceRMSE: Double? { count > 0 ? (persistenceSqSum / Double(count)).squareRoot() : nil }
    /// 1 - MSE_model / MSE_persistence: above 0 beats the last value; nil when undefined.
    public var skill: Double? { count > 0 && persistenceSqSum > 0 ? 1 - sqSum / persistenceSqSum : nil }
}

/// One forecast value met by its actual.
public struct ResolvedForecast: Sendable, Equatable {
    public var slot: Int
    public var template: Int
    /// The forecast's window end (origin) step and the target step (origin + horizon).
    public var originStep: Int64
    public var targetStep: Int64
    /// 1 = next step.
    public var horizon: Int
    public var forecast: Double
    public var actual: Double
    /// The persistence forecast: the actual at the window's last step.
    public var persistence: Double
    /// Set when |forecast - actual| exceeds the threshold: the threshold.
    public var anomalyThreshold: Double?
    public var error: Double { forecast - actual }
}

/// The drift alarm's transitions, reported by `SensorAccuracy` as they happen.
public enum DriftChange: Sendable, Equatable { case raised, cleared }

/// One sensor's pending forecasts, recent actuals and error statistics, in one array allocated once
/// (a fleet holds 10,000 of these: every array costs a header and a malloc block, so every ring
/// shares one buffer; the pending outputs and the rolling window are Float in its tail).
public struct SensorAccuracy: Sendable {
    let horizon: Int
    let capacity: Int
    /// Layout in Doubles, C = capacity, H = horizon: [0, C) pending forecasts' origin steps;
    /// [C, 2C) actuals' steps; [2C, 3C) actual values; then per horizon step 5 sums (count, |e|,
    /// e², |p|, p²). Steps are whole numbers well below 2^53 for any time a reading can carry; an
    /// empty slot holds -inf. Then, as Float from `floatBase`: C*H pending outputs (the model's
    /// integers, at most 16 bits: exact in a Float) and the rolling window's |errors|.
    var store: [Double]
    /// Entries of the rolling window.
    let windowCount: Int
    var rNext = 0
    var rCount = 0
    /// Rolling sums (no persistence: the run-wide skill is the one reported).
    public private(set) var rolling = ErrorSums()
    public private(set) var anomalies = 0
    /// Resolved values since the last `takeChanged()` (the periodic publication skips idle sensors).
    public private(set) var changed = 0
    // Drift: consecutive resolved values above / below the reference.
    var above = 0
    var below = 0
    public private(set) var drifting = false
    /// When the last anomaly of this sensor was published (the daemon's rate limit), or -inf.
    public var lastAnomalyPublished = -Double.infinity
    /// Anomalies not published because of the rate limit.
    public var anomaliesSuppressed = 0

    /// `slack`: how many steps a forecast or an actual may arrive after a newer one and still be
    /// matched (the window's reorder steps and one more; a later one is not scored).
    public init(horizon: Int, slack: Int, windowSize: Int) {
        self.horizon = horizon
        capacity = horizon + slack + 1
        windowCount = max(1, windowSize)
        let runBase = 3 * capacity, floats = capacity * horizon + windowCount
        store = [Double](repeating: -.infinity, count: runBase + 5 * horizon + (floats + 1) / 2)
        for k in runBase..<store.count { store[k] = 0 }
    }

    var runBase: Int { 3 * capacity }
    /// Byte offset of the Float tail.
    var floatBase: Int { (3 * capacity + 5 * horizon) * MemoryLayout<Double>.stride }
    @inline(__always) func float(_ k: Int) -> Float {
        store.withUnsafeBytes { $0.load(fromByteOffset: floatBase + k * 4, as: Float.self) }
    }
    @inline(__always) mutating func setFloat(_ k: Int, _ v: Float) {
        let o = floatBase + k * 4
        store.withUnsafeMutableBytes { $0.storeBytes(of: v, toByteOffset: o, as: Float.self) }
    }
    /// The rolling window's k-th |error|.
    func rolled(_ k: Int) -> Float { float(capacity * horizon + k) }
    @inline(__always) func slot(_ s: Int64) -> Int { Int(((s % Int64(capacity)) + Int64(capacity)) % Int64(capacity)) }
    @inline(__always) func fStep(_ i: Int) -> Double { store[i] }
    @inline(__always) func aStep(_ i: Int) -> Double { store[capacity + i] }

    func actual(at s: Int64) -> Double? {
        let i = slot(s)
        return aStep(i) == Double(s) ? store[2 * capacity + i] : nil
    }

    /// The newest actual at or before `s` still held (a gap-filled step holds the value before it).
    func actualAtOrBefore(_ s: Int64) -> Double? {
        var k = s
        while k > s - Int64(capacity) {
            if let v = actual(at: k) { return v }
            k -= 1
        }
        return nil
    }

    /// Run-wide sums per horizon step.
    public var run: [ErrorSums] {
        (0..<horizon).map { h in
            let b = runBase + 5 * h
            var e = ErrorSums()
            e.count = Int(store[b]); e.absSum = store[b + 1]; e.sqSum = store[b + 2]
            e.persistenceAbsSum = store[b + 3]; e.persistenceSqSum = store[b + 4]
            return e
        }
    }

    /// The window ending at `origin` was forecast: keep its outputs until their actuals arrive;
    /// actuals already here (a reading that arrived before its window was complete) resolve now.
    public mutating func forecast(origin: Int64, output q: UnsafeBufferPointer<Int32>, io: ModelIO, reference: AccuracyReference,
                                  policy: AccuracyPolicy, emit: (Int64, Int, Double, Double, Double, Double?) -> Void) {
        // The persistence forecast needs the window's last actual (or the one a filled step held).
        guard actualAtOrBefore(origin) != nil else { return }
        let i = slot(origin)
        // A late window must not push out a newer pending forecast.
        if fStep(i) >= Double(origin) { return }
        store[i] = Double(origin)
        for p in 0..<min(horizon, q.count) { setFloat(i * horizon + p, Float(q[p])) }
        for h in 1...horizon {
            if let y = actual(at: origin + Int64(h)) {
                resolve(origin: origin, h: h, actual: y, io: io, reference: reference, policy: policy, emit: emit)
            }
        }
    }

    /// The actual of step `s` arrived: resolve every pending forecast that targets it.
    public mutating func actual(step s: Int64, value: Double, io: ModelIO, reference: AccuracyReference,
                                policy: AccuracyPolicy, emit: (Int64, Int, Double, Double, Double, Double?) -> Void) {
        let i = slot(s)
        // A step older than everything held would overwrite a newer one: it can resolve nothing
        // (and a duplicate would count twice).
        if aStep(i) >= Double(s) { return }
        store[capacity + i] = Double(s)
        store[2 * capacity + i] = value
        for h in 1...horizon {
            let origin = s - Int64(h)
            if fStep(slot(origin)) == Double(origin) {
                resolve(origin: origin, h: h, actual: value, io: io, reference: reference, policy: policy, emit: emit)
            }
        }
    }

    /// emit(origin, horizon, forecast, actual, persistence, anomaly threshold or nil)
    private mutating func resolve(origin: Int64, h: Int, actual y: Double, io: ModelIO, reference: AccuracyReference,
                                  policy: AccuracyPolicy, emit: (Int64, Int, Double, Double, Double, Double?) -> Void) {
        let i = slot(origin)
        let f = io.dequantize(Int32(float(i * horizon + h - 1)))
        // The actual at the origin is still held: the ring keeps horizon + slack steps.
        let pers = actualAtOrBefore(origin) ?? y
        let e = f - y, pe = pers - y
        let b = runBase + 5 * (h - 1)
        store[b] += 1; store[b + 1] += abs(e); store[b + 2] += e * e; store[b + 3] += abs(pe); store[b + 4] += pe * pe
        // Rolling window: drop the oldest value, add this one.
        let n = windowCount
        if rCount == n {
            let old = Double(rolled(rNext))
            rolling.count -= 1; rolling.absSum -= old; rolling.sqSum -= old * old
        } else { rCount += 1 }
        setFloat(capacity * horizon + rNext, Float(abs(e)))
        let v = Double(rolled(rNext))
        rolling.count += 1; rolling.absSum += v; rolling.sqSum += v * v
        rNext = (rNext + 1) % n
        changed += 1
        var threshold: Double? = nil
        if let t = reference.thresholds, h - 1 < t.count, abs(e) > t[h - 1] {
            threshold = t[h - 1]
            anomalies += 1
        }
        emit(origin, h, f, y, pers, threshold)
    }

    /// The median |error| over the rolling window, sorted in `scratch` (the caller's, reused: no
    /// allocation per reading); nil when empty.
    public func rollingMedian(scratch: inout [Float]) -> Double? {
        guard rCount > 0 else { return nil }
        if scratch.count < rCount { scratch = [Float](repeating: 0, count: windowCount) }
        for k in 0..<rCount { scratch[k] = rolled(k) }
        scratch[0..<rCount].sort()
        let m = rCount / 2
        return rCount % 2 == 1 ? Double(scratch[m]) : (Double(scratch[m - 1]) + Double(scratch[m])) / 2
    }

    /// The same, for status and the accuracy topic (allocates: not on the reading path).
    public var rollingMedian: Double? {
        var scratch: [Float] = []
        return rollingMedian(scratch: &scratch)
    }

    /// Advances the drift alarm after the values resolved by one message; nil when nothing changed.
    public mutating func updateDrift(reference: AccuracyReference, policy: AccuracyPolicy, resolved: Int, scratch: inout [Float]) -> DriftChange? {
        guard let v = reference.validationMedian, resolved > 0, rCount >= min(windowCount, policy.driftSteps),
              let med = rollingMedian(scratch: &scratch) else { return nil }
        if med > policy.driftFactor * v { above += resolved; below = 0 } else { below += resolved; above = 0 }
        if !drifting && above >= policy.driftSteps { drifting = true; return .raised }
        if drifting && below >= policy.driftSteps { drifting = false; return .cleared }
        return nil
    }

    /// Whole-run sums over every horizon step.
    public var total: ErrorSums {
        var s = ErrorSums()
        for r in run { s.add(r) }
        return s
    }

    /// Returns the values resolved since the last call and resets the count.
    public mutating func takeChanged() -> Int {
        defer { changed = 0 }
        return changed
    }
}
