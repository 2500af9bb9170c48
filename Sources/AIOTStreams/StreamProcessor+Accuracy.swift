// The processor's side of online accuracy: actuals come from accepted readings of the target
// feature, forecasts from the caller after each inference; both meet in the sensor's
// `SensorAccuracy` rings (OnlineAccuracy.swift). Still pure: no clock, no I/O.
import AIOTModel

/// A sensor's accuracy as status and the accuracy topic report it.
public struct SensorAccuracySummary: Sendable {
    public var name: String
    public var template: Int
    public var run: [ErrorSums]
    public var total: ErrorSums
    public var rolling: ErrorSums
    public var rollingMedian: Double?
    public var anomalies: Int
    public var drifting: Bool
}

/// Forecasts and actuals are matched across the window's reordering (and one step more); a forecast
/// made later than that (a late window, `late_steps`) is not scored: a fleet's memory is the price.
func accuracySlack(_ p: WindowPolicy) -> Int { p.reorderSteps + 1 }

extension StreamProcessor {
    func noteActual(slot s: Int, _ r: Reading, into out: inout ProcessorOutput) {
        let t = sensors[s]!.template
        let tpl = templates[t]
        let step = sensors[s]!.window.step(of: r.time)
        sensors[s]!.accuracy.actual(step: step, value: r.value, io: tpl.io, reference: tpl.reference, policy: tpl.accuracy) { o, h, f, y, p, th in
            out.resolved.append(ResolvedForecast(slot: s, template: t, originStep: o, targetStep: step, horizon: h,
                                                 forecast: f, actual: y, persistence: p, anomalyThreshold: th))
        }
        if sensors[s]!.shadow != nil { noteShadowActual(slot: s, step: step, value: r.value) }
    }

    /// After one message: template totals and the drift alarm, from what it resolved.
    func noteDrift(slot s: Int, into out: inout ProcessorOutput) {
        tally(slot: s, from: 0, into: &out)
    }

    private func tally(slot s: Int, from first: Int, into out: inout ProcessorOutput) {
        var n = 0
        for i in first..<out.resolved.count where out.resolved[i].slot == s {
            let r = out.resolved[i]
            counters[r.template].accuracy.add(error: r.error, persistence: r.persistence - r.actual)
            if r.anomalyThreshold != nil { counters[r.template].anomalies += 1 }
            if trials[r.template] != nil { tallyTrial(r, slot: s) }
            n += 1
        }
        // Only the template index is read: a `let` copy of the sensor's state would share its
        // buffers, and the mutation below would then copy them (one allocation per forecast).
        guard n > 0, let t = sensors[s]?.template else { return }
        let tpl = templates[t]
        if let c = sensors[s]!.accuracy.updateDrift(reference: tpl.reference, policy: tpl.accuracy, resolved: n, scratch: &medianScratch) {
            out.drift.append((s, c))
        }
    }

    /// The forecast of window `w` ran and gave `output` (the model's integers): keep it until the
    /// actuals of its target steps arrive; any already here resolve now (into `out.resolved`).
    public func recordForecast(_ w: CompletedWindow, output: UnsafeBufferPointer<Int32>, into out: inout ProcessorOutput) {
        // No `let` copy of the sensor's state (see tally): it would make the update below copy it.
        guard w.slot < sensors.count, sensors[w.slot]?.name == w.sensor, let t = sensors[w.slot]?.template else { return }
        let tpl = templates[t]
        let first = out.resolved.count
        let s = w.slot
        sensors[s]!.accuracy.forecast(origin: w.step, output: output, io: tpl.io, reference: tpl.reference, policy: tpl.accuracy) { o, h, f, y, p, th in
            out.resolved.append(ResolvedForecast(slot: s, template: t, originStep: o, targetStep: o + Int64(h), horizon: h,
                                                 forecast: f, actual: y, persistence: p, anomalyThreshold: th))
        }
        tally(slot: s, from: first, into: &out)
    }

    /// One sensor's accuracy (nil: not live).
    public func accuracy(slot s: Int) -> SensorAccuracySummary? {
        guard s >= 0, s < sensors.count, let st = sensors[s] else { return nil }
        let a = st.accuracy
        return SensorAccuracySummary(name: st.name, template: st.template, run: a.run, total: a.total, rolling: a.rolling, rollingMedian: a.rollingMedian,
                                     anomalies: a.anomalies, drifting: a.drifting)
    }

    public func accuracy(named name: String) -> SensorAccuracySummary? {
        index[name].flatMap { accuracy(slot: $0) }
    }

    /// Slots of live sensors with values resolved since the last call (each call resets them).
    public func takeChangedAccuracy(limit: Int = .max) -> [Int] {
        var out: [Int] = []
        for s in 0..<sensors.count where sensors[s] != nil && out.count < limit {
            if sensors[s]!.accuracy.takeChanged() > 0 { out.append(s) }
        }
        return out
    }

    /// Live sensors of a template whose drift alarm is up.
    public func driftingSensors(template t: Int) -> Int {
        var n = 0
        for case let st? in sensors where st.template == t && st.accuracy.drifting { n += 1 }
        return n
    }

    /// The anomaly rate limit's state, kept with the sensor: true when one may be published now.
    public func anomalyDue(slot s: Int, now: Double, minInterval: Double) -> Bool {
        guard s < sensors.count, sensors[s] != nil else { return false }
        if now - sensors[s]!.accuracy.lastAnomalyPublished >= minInterval {
            sensors[s]!.accuracy.lastAnomalyPublished = now
            return true
        }
        sensors[s]!.accuracy.anomaliesSuppressed += 1
        return false
    }

    public func sensorName(slot s: Int) -> String? { s >= 0 && s < sensors.count ? sensors[s]?.name : nil }
}
