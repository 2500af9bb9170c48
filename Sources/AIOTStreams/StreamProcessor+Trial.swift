// A template's model switch inside the processor: windows kept (re-quantized when the new model
// normalises its input differently) or rebuilt when the input shape changed, and, for a guarded
// switch, the trial: every sensor of the template keeps a shadow ring and a shadow accuracy state
// for the previous model, both resolved by the same actuals, so the two models' errors are summed
// over the same targets. Shadow state exists only while the trial runs. Pure, like the rest.
import AIOTModel

/// A running trial of a template's new model against its previous one.
public struct ModelTrialSums: Sendable {
    /// The previous model's input and accuracy reference (its forecasts are resolved with them).
    public var previousIO: ModelIO
    public var previousReference: AccuracyReference
    /// Resolved forecast values of windows that ended after the switch: new and previous model.
    public var new = ErrorSums()
    public var previous = ErrorSums()
    /// Target steps resolved for the new model (horizon-1 values: one per sensor and step).
    public var steps = 0
    /// Windows the previous model was run on.
    public var shadowForecasts = 0
}

/// What a switch did to a template's live sensors.
public struct SwitchedWindows: Sendable, Equatable {
    public var kept = 0
    public var requantized = 0
    public var rebuilt = 0
    public init() {}
}

extension SensorAccuracy {
    /// Forgets pending forecasts (they were another model's), keeping actuals and sums.
    mutating func clearPending() {
        for i in 0..<capacity { store[i] = -.infinity }
    }

    /// Takes `o`'s pending forecasts (same horizon and slack: same layout).
    mutating func takePending(from o: SensorAccuracy) {
        guard o.capacity == capacity, o.horizon == horizon else { return }
        for i in 0..<capacity {
            store[i] = o.store[i]
            for p in 0..<horizon { setFloat(i * horizon + p, o.float(i * horizon + p)) }
        }
    }
}

extension StreamProcessor {
    /// Can template `t` switch to `io` with a shadow of the previous model (same input shape and horizon)?
    public func canShadow(template t: Int, to io: ModelIO) -> Bool {
        templates[t].io.sameInput(as: io) && templates[t].io.horizon == io.horizon
    }

    /// Switches template `t` to a model with input `io`, between messages (a step boundary for every
    /// sensor: no window is half-handled). `trial`: keep shadows of the previous model (needs `canShadow`).
    public func switchModel(template t: Int, io: ModelIO, reference: AccuracyReference, trial: Bool) -> SwitchedWindows {
        precondition(!trial || canShadow(template: t, to: io))
        let old = templates[t]
        var done = SwitchedWindows()
        for s in 0..<sensors.count {
            guard let st = sensors[s], st.template == t else { continue }
            if st.window.io.sameInput(as: io) {
                if st.window.retarget(to: io, shadow: trial) == .kept { done.kept += 1 } else { done.requantized += 1 }
                if io.horizon != st.accuracy.horizon {
                    sensors[s]!.accuracy = SensorAccuracy(horizon: io.horizon, slack: accuracySlack(old.policy), windowSize: old.accuracy.windowSize)
                } else if trial {
                    sensors[s]!.shadow = st.accuracy
                    sensors[s]!.trialFrom = st.window.newestWindow ?? .min
                    sensors[s]!.accuracy.clearPending()
                } else {
                    // The pending forecasts were the previous model's: its integers mean nothing under the new output scale.
                    sensors[s]!.accuracy.clearPending()
                }
            } else {
                // Another input shape: the ring starts over (the caller logs it).
                sensors[s]!.window = StreamWindow(io: io, policy: old.policy)
                sensors[s]!.accuracy = SensorAccuracy(horizon: io.horizon, slack: accuracySlack(old.policy), windowSize: old.accuracy.windowSize)
                done.rebuilt += 1
            }
        }
        templates[t].io = io
        templates[t].reference = reference
        featureNames[t] = FeatureNames(io.features.map(\.name), defaultFeature: io.targetFeature)
        trials[t] = trial ? ModelTrialSums(previousIO: old.io, previousReference: old.reference) : nil
        return done
    }

    /// Ends template `t`'s trial: `rollBack` restores the previous model's input, rings and pending
    /// forecasts; either way every shadow is released. Returns the trial's sums.
    @discardableResult
    public func endTrial(template t: Int, rollBack: Bool) -> ModelTrialSums? {
        guard let trial = trials[t] else { return nil }
        for s in 0..<sensors.count {
            guard let st = sensors[s], st.template == t else { continue }
            st.window.endTrial(rollBack: rollBack)
            if rollBack, let sh = st.shadow { sensors[s]!.accuracy.takePending(from: sh) }
            sensors[s]!.shadow = nil
        }
        if rollBack {
            templates[t].io = trial.previousIO
            templates[t].reference = trial.previousReference
            featureNames[t] = FeatureNames(trial.previousIO.features.map(\.name), defaultFeature: trial.previousIO.targetFeature)
        }
        trials[t] = nil
        return trial
    }

    public func trial(template t: Int) -> ModelTrialSums? { trials[t] }

    /// A new sensor of a template under trial gets its shadow state too.
    func joinTrial(slot s: Int) {
        let t = sensors[s]!.template
        guard let trial = trials[t] else { return }
        sensors[s]!.window.beginShadow(previous: trial.previousIO)
        sensors[s]!.shadow = sensors[s]!.accuracy
        sensors[s]!.trialFrom = .min
    }

    /// The previous model's forecast of window `w` (run by the caller on `w.shadowRange`).
    public func recordShadowForecast(_ w: CompletedWindow, output: UnsafeBufferPointer<Int32>) {
        // No local copy of the sensor's state: it would share the shadow's buffer and make the
        // update below copy it (an allocation per window).
        guard w.slot < sensors.count, sensors[w.slot]?.name == w.sensor, sensors[w.slot]?.shadow != nil,
              let t = sensors[w.slot]?.template, trials[t] != nil else { return }
        let from = sensors[w.slot]!.trialFrom
        let io = trials[t]!.previousIO, ref = trials[t]!.previousReference, policy = templates[t].accuracy
        trials[t]!.shadowForecasts += 1
        sensors[w.slot]!.shadow!.forecast(origin: w.step, output: output, io: io, reference: ref, policy: policy) { o, _, f, y, p, _ in
            if o > from { trials[t]!.previous.add(error: f - y, persistence: p - y) }
        }
    }

    /// An actual of a sensor under trial also resolves the previous model's pending forecasts.
    func noteShadowActual(slot s: Int, step: Int64, value: Double) {
        let t = sensors[s]!.template, from = sensors[s]!.trialFrom
        guard trials[t] != nil else { return }
        let io = trials[t]!.previousIO, ref = trials[t]!.previousReference, policy = templates[t].accuracy
        sensors[s]!.shadow!.actual(step: step, value: value, io: io, reference: ref, policy: policy) { o, _, f, y, p, _ in
            if o > from { trials[t]!.previous.add(error: f - y, persistence: p - y) }
        }
    }

    /// The new model's resolved values count for the trial (windows after the switch only).
    func tallyTrial(_ r: ResolvedForecast, slot s: Int) {
        guard trials[r.template] != nil, r.originStep > sensors[s]!.trialFrom else { return }
        trials[r.template]!.new.add(error: r.error, persistence: r.persistence - r.actual)
        if r.horizon == 1 { trials[r.template]!.steps += 1 }
    }
}
