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

/// One sensor's pending forecasts, recent actuals and error statistics.
public struct SensorAccuracy: Sendable {
    let horizon: Int
    let capacity: Int
    // Pending forecasts by origin step (ring slot = step mod capacity; the tag says which step).
    var fStep: [Int64]
    var fQ: [Int32]
    var fPersistence: [Double]
    // Actuals of the target feature by step.
    var aStep: [Int64]
    var aValue: [Double]
    /// Whole run, per horizon step.
    public private(set) var run: [ErrorSums]
    // Rolling window over the last `windowSize` resolved values (Float: a ring of a fleet's sensors
    // stays small; the sums are Double).
    var rAbs: [Float]
    var rSq: [Float]
    var rPSq: [Float]
    /// The window's |errors| kept sorted, for the rolling median (no allocation: shifted in place).
    var rSorted: [Float]
    var rNext = 0
    var rCount = 0
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

    /// `slack`: how many steps a forecast or an actual may arrive after a newer one (the window's
    /// reorder and late steps).
    public init(horizon: Int, slack: Int, windowSize: Int) {
        self.horizon = horizon
        capacity = horizon + slack + 1
        fStep = [Int64](repeating: .min, count: capacity)
        fQ = [Int32](repeating: 0, count: capacity * horizon)
        fPersistence = [Double](repeating: .nan, count: capacity)
        aStep = [Int64](repeating: .min, count: capacity)
        aValue = [Double](repeating: .nan, count: capacity)
        run = [ErrorSums](repeating: ErrorSums(), count: horizon)
        let n = max(1, windowSize)
        rAbs = [Float](repeating: 0, count: n)
        rSq = [Float](repeating: 0, count: n)
        rPSq = [Float](repeating: 0, count: n)
        rSorted = [Float](repeating: 0, count: n)
    }

    @inline(__always) func slot(_ s: Int64) -> Int { Int(((s % Int64(capacity)) + Int64(capacity)) % Int64(capacity)) }

    func actual(at s: Int64) -> Double? {
        let i = slot(s)
        return aStep[i] == s ? aValue[i] : nil
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

    /// The window ending at `origin` was forecast: keep its outputs until their actuals arrive;
    /// actuals already here (a reading that arrived before its window was complete) resolve now.
    public mutating func forecast(origin: Int64, output q: UnsafeBufferPointer<Int32>, io: ModelIO, reference: AccuracyReference,
                                  policy: AccuracyPolicy, emit: (Int64, Int, Double, Double, Double, Double?) -> Void) {
        guard let persistence = actualAtOrBefore(origin) else { return }
        let i = slot(origin)
        // A late window must not push out a newer pending forecast.
        if fStep[i] >= origin { return }
        fStep[i] = origin
        fPersistence[i] = persistence
        for p in 0..<min(horizon, q.count) { fQ[i * horizon + p] = q[p] }
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
        // A step older than everything held would overwrite a newer one: it can resolve nothing.
        // (and a duplicate would count twice).
        if aStep[i] >= s { return }
        aStep[i] = s
        aValue[i] = value
        for h in 1...horizon {
            let origin = s - Int64(h)
            if fStep[slot(origin)] == origin {
                resolve(origin: origin, h: h, actual: value, io: io, reference: reference, policy: policy, emit: emit)
            }
        }
    }

    /// emit(origin, horizon, forecast, actual, persistence, anomaly threshold or nil)
    private mutating func resolve(origin: Int64, h: Int, actual y: Double, io: ModelIO, reference: AccuracyReference,
                                  policy: AccuracyPolicy, emit: (Int64, Int, Double, Double, Double, Double?) -> Void) {
        let i = slot(origin)
        let f = io.dequantize(fQ[i * horizon + h - 1])
        let pers = fPersistence[i]
        let e = f - y, pe = pers - y
        run[h - 1].add(error: e, persistence: pe)
        // Rolling window: drop the oldest value, add this one.
        let n = rAbs.count
        let newAbs = Float(abs(e))
        if rCount == n {
            removeSorted(rAbs[rNext])
            rolling.count -= 1
            rolling.absSum -= Double(rAbs[rNext]); rolling.sqSum -= Double(rSq[rNext]); rolling.persistenceSqSum -= Double(rPSq[rNext])
        }
        insertSorted(newAbs)
        rCount += 1
        rAbs[rNext] = newAbs; rSq[rNext] = Float(e * e); rPSq[rNext] = Float(pe * pe)
        rolling.count += 1
        rolling.absSum += Double(rAbs[rNext]); rolling.sqSum += Double(rSq[rNext]); rolling.persistenceSqSum += Double(rPSq[rNext])
        rNext = (rNext + 1) % n
        changed += 1
        var threshold: Double? = nil
        if let t = reference.thresholds, h - 1 < t.count, abs(e) > t[h - 1] {
            threshold = t[h - 1]
            anomalies += 1
        }
        emit(origin, h, f, y, pers, threshold)
    }

    /// rSorted[0..<rCount] stays sorted: binary search, then one shift (the caller counts it in).
    private mutating func insertSorted(_ v: Float) {
        var lo = 0, hi = rCount
        while lo < hi { let m = (lo + hi) / 2; if rSorted[m] < v { lo = m + 1 } else { hi = m } }
        var i = rCount
        while i > lo { rSorted[i] = rSorted[i - 1]; i -= 1 }
        rSorted[lo] = v
    }

    /// Removes one entry equal to `v` (called while rCount still counts it; rCount is then one less).
    private mutating func removeSorted(_ v: Float) {
        var lo = 0, hi = rCount
        while lo < hi { let m = (lo + hi) / 2; if rSorted[m] < v { lo = m + 1 } else { hi = m } }
        guard lo < rCount else { return }
        for i in lo..<(rCount - 1) { rSorted[i] = rSorted[i + 1] }
        rCount -= 1
    }

    /// The median |error| over the rolling window, nil when empty.
    public var rollingMedian: Double? {
        guard rCount > 0 else { return nil }
        let m = rCount / 2
        return rCount % 2 == 1 ? Double(rSorted[m]) : (Double(rSorted[m - 1]) + Double(rSorted[m])) / 2
    }

    /// Advances the drift alarm after the values resolved by one message; nil when nothing changed.
    public mutating func updateDrift(reference: AccuracyReference, policy: AccuracyPolicy, resolved: Int) -> DriftChange? {
        guard let v = reference.validationMedian, resolved > 0, rCount >= min(rAbs.count, policy.driftSteps), let med = rollingMedian else { return nil }
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
