// Switching a stream's model between messages (a step boundary for every sensor), the one entry
// point for a reload and a deployment alike. Guarded: the previous model stays loaded and is run
// on the same windows (its shadow, no publish) until `rollback.steps` target steps have resolved;
// the verdict keeps the new model, or puts the previous one back when the new one errs or forecasts
// worse (docs/rollback.md). Verdicts go to the log, the status topic, the reply topic and metrics.
import Logging
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry

/// Which streams a switch applies to, by `[[stream]]` name (`name`, or "stream[i]").
public enum StreamSelector: Sendable, Equatable {
    case all
    case named([String])
    func matches(_ name: String) -> Bool {
        switch self {
        case .all: true
        case .named(let n): n.contains(name)
        }
    }
}

/// Who asked for a switch; reported with it.
public enum SwitchOrigin: Sendable, Equatable {
    case reload
    case deployment(String)
    var text: String {
        switch self {
        case .reload: "reload"
        case .deployment(let id): "deployment:\(id)"
        }
    }
}

/// Why a new model was abandoned: the `reason` of `aiotd_model_rollbacks_total`.
enum RollbackReason: Int, CaseIterable, CustomStringConvertible {
    case loadFailed, inferenceError, worse
    var description: String { ["load_failed", "inference_error", "worse"][rawValue] }
}

/// A stream's running trial: the previous model, kept loaded for its shadow run.
struct ModelTrial {
    var previous: Binding
    var report: ModelSwitchReport
    var reply: MQTTTopic?
}

/// The core's switch bookkeeping: trials by template, the last report per stream, counts.
struct SwitchState {
    var trials: [ModelTrial?] = []
    var active = 0
    var last: [String: ModelSwitchReport] = [:]
    var rollbacks = [Int](repeating: 0, count: RollbackReason.allCases.count)
    /// The previous model's output, reused by every shadow run.
    var shadowOutput = [Int32](repeating: 0, count: 1)
}

extension DaemonCore {
    /// Switches the selected streams to `model` (validated by the caller: loaded from a file or a
    /// staged deployment). `guarded` with `rollback.steps` > 0 and the same input shape and horizon
    /// starts a trial; otherwise the switch is final. Each stream's report is also published on
    /// the status topic and, when given, on `reply`. A stream the model cannot serve is refused
    /// (reason load_failed) and keeps its model.
    @discardableResult
    func switchModel(streams: StreamSelector, to model: LoadedModel, origin: SwitchOrigin, guarded: Bool, reply: MQTTTopic? = nil) -> [ModelSwitchReport] {
        var reports: [ModelSwitchReport] = []
        for t in generation.processor.templates.indices where streams.matches(generation.processor.templates[t].name) {
            reports.append(switchOne(t, to: model, origin: origin, guarded: guarded, reply: reply))
        }
        if reports.isEmpty { logger.error("model switch matched no stream", metadata: ["streams": "\(streams)", "model": "\(model.identity)", "origin": "\(origin.text)"]) }
        publishStatus(online: true)
        return reports
    }

    private func switchOne(_ t: Int, to model: LoadedModel, origin: SwitchOrigin, guarded: Bool, reply: MQTTTopic?) -> ModelSwitchReport {
        let p = generation.processor
        // A switch during a trial judges against the model serving now.
        if switching.trials[t] != nil { endTrial(t, rollBack: false, state: "superseded") }
        let current = generation.bindings[t]
        let sc = config.streams[t]
        var report = ModelSwitchReport(stream: p.templates[t].name, from: current.model.identity, to: model.identity, origin: origin, state: "switched", at: clock())
        let engine: MeteredEngine, reference: AccuracyReference
        do {
            for (feature, _) in sc.featureTopics where !model.io.features.contains(where: { $0.name == feature }) {
                throw ConfigError("the model has no feature \"\(feature)\" (feature_topics of stream \(report.stream))")
            }
            engine = try generation.store.engine(model, engineKind)
            reference = try accuracyReference(model, config.accuracy.policy, stream: t)
        } catch {
            report.state = "rolled_back"
            report.reason = RollbackReason.loadFailed.description
            report.detail = printable("\(error)", limit: 400)
            count(.loadFailed)
            logger.error("new model refused, the previous one keeps serving", metadata: ["stream": "\(report.stream)", "model": "\(model.identity)", "origin": "\(origin.text)", "error": "\(report.detail!)"])
            return finish(report, reply: reply)
        }
        var io = model.io
        if let period = sc.periodSeconds { io.samplingPeriod = period }
        let compare = guarded && config.rollback.steps > 0
        let trial = compare && p.canShadow(template: t, to: io)
        if compare && !trial {
            logger.warning("no shadow comparison for this switch: the new model reads another input shape or horizon", metadata: ["stream": "\(report.stream)"])
        }
        report.windows = p.switchModel(template: t, io: io, reference: reference, trial: trial)
        generation.bindings[t] = Binding(model: model, engine: engine)
        sizeOutput()
        metrics.modelSwitches.increment()
        let w = report.windows
        logger.notice("model switched", metadata: ["stream": "\(report.stream)", "from": "\(report.from)", "to": "\(report.to)", "origin": "\(origin.text)",
                                                   "windows_kept": "\(w.kept)", "windows_requantized": "\(w.requantized)", "windows_rebuilt": "\(w.rebuilt)",
                                                   "trial_steps": "\(trial ? config.rollback.steps : 0)"])
        if w.rebuilt > 0 { logger.warning("windows rebuilt: the new model reads another input shape; its sensors forecast again once a window has filled", metadata: ["stream": "\(report.stream)", "sensors": "\(w.rebuilt)"]) }
        if trial {
            report.state = "trial"
            switching.trials[t] = ModelTrial(previous: current, report: report, reply: reply)
            switching.active += 1
            if switching.shadowOutput.count < current.model.shape.horizon { switching.shadowOutput = [Int32](repeating: 0, count: current.model.shape.horizon) }
        } else {
            retainEngines()
        }
        return finish(report, reply: reply)
    }

    /// The previous model's run on the same window (no publish; counted, see docs/rollback.md).
    func shadowForecast(_ w: CompletedWindow) {
        guard let r = w.shadowRange, let trial = switching.trials[w.template] else { return }
        let h = trial.previous.model.shape.horizon
        var m: Measurement
        do {
            m = try out.values.withUnsafeBufferPointer { v throws(InferenceError) in
                try switching.shadowOutput.withUnsafeMutableBufferPointer { o throws(InferenceError) in
                    try trial.previous.engine.infer(UnsafeBufferPointer(rebasing: v[r]), into: UnsafeMutableBufferPointer(rebasing: o[0..<h]))
                }
            }
        } catch {
            switching.trials[w.template]!.report.shadowErrors += 1
            return
        }
        applyEnergyModel(&m)
        switching.trials[w.template]!.report.shadowInferences += 1
        switching.trials[w.template]!.report.shadowCPUNanos += m.cpuNanos
        metrics.shadowInferences.increment()
        if let e = m.energyMicrojoules {
            switching.trials[w.template]!.report.shadowEnergy += e
            metrics.shadowEnergy.increment(by: e)
        }
        switching.shadowOutput.withUnsafeBufferPointer { o in
            generation.processor.recordShadowForecast(w, output: UnsafeBufferPointer(rebasing: o[0..<h]))
        }
    }

    /// After each message while a trial runs: the verdict once enough steps have resolved.
    func checkTrials() {
        for t in switching.trials.indices where switching.trials[t] != nil {
            guard let sums = generation.processor.trial(template: t), sums.steps >= config.rollback.steps else { continue }
            if let n = sums.new.mae, let o = sums.previous.mae, n > (1 + config.rollback.worseByPercent / 100) * o {
                rollBack(t, .worse, detail: "online MAE \(n) > (1 + \(config.rollback.worseByPercent)/100) x \(o) (previous model) over \(sums.steps) steps")
            } else {
                endTrial(t, rollBack: false, state: "kept")
            }
        }
    }

    /// Puts the previous model back at once (also: the new model raised an inference error).
    func rollBack(_ t: Int, _ reason: RollbackReason, detail: String) {
        guard let trial = switching.trials[t] else { return }
        generation.bindings[t] = trial.previous
        count(reason)
        endTrial(t, rollBack: true, state: "rolled_back", reason: reason, detail: detail)
    }

    func endTrial(_ t: Int, rollBack: Bool, state: String, reason: RollbackReason? = nil, detail: String? = nil) {
        guard var trial = switching.trials[t] else { return }
        let sums = generation.processor.endTrial(template: t, rollBack: rollBack)
        switching.trials[t] = nil
        switching.active -= 1
        deploymentTrialEnded(t, rolledBack: rollBack)
        var r = trial.report
        r.state = state
        r.reason = reason?.description
        r.detail = detail
        r.at = clock()
        r.steps = sums?.steps ?? 0
        r.newMAE = sums?.new.mae
        r.previousMAE = sums?.previous.mae
        trial.report = r
        retainEngines()
        sizeOutput()
        let meta: Logger.Metadata = ["stream": "\(r.stream)", "from": "\(r.from)", "to": "\(r.to)", "origin": "\(r.origin.text)", "steps": "\(r.steps)",
                                     "new_mae": "\(r.newMAE ?? .nan)", "previous_mae": "\(r.previousMAE ?? .nan)", "reason": "\(r.reason ?? "-")", "detail": "\(detail ?? "-")"]
        if rollBack { logger.warning("model rolled back: the previous model serves again", metadata: meta) } else { logger.notice("model trial ended: \(state)", metadata: meta) }
        _ = finish(r, reply: trial.reply)
        publishStatus(online: true)
    }

    /// Before `g` replaces the running generation: a trial continues in `g` when its stream has the
    /// same name, model, input, policy and accuracy settings there, on the same engine kind (the
    /// processor's `adopt` carries its shadows); any other ends keeping the model serving now.
    func carryTrials(into g: Generation, sameEngine: Bool) -> [ModelTrial?] {
        var carried = [ModelTrial?](repeating: nil, count: g.processor.templates.count)
        for o in switching.trials.indices where switching.trials[o] != nil {
            let old = generation.processor.templates[o]
            if sameEngine, let t = g.processor.templates.firstIndex(where: { $0.name == old.name }),
               g.bindings[t].model.identity == generation.bindings[o].model.identity,
               g.processor.templates[t].io == old.io, g.processor.templates[t].policy == old.policy, g.processor.templates[t].accuracy == old.accuracy {
                carried[t] = switching.trials[o]
            } else {
                endTrial(o, rollBack: false, state: "superseded")
            }
        }
        switching.active = carried.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
        return carried
    }

    private func count(_ reason: RollbackReason) {
        switching.rollbacks[reason.rawValue] += 1
        metrics.rollbacks[reason.rawValue].increment()
    }

    private func retainEngines() {
        var used = Set(generation.bindings.map { ObjectIdentifier($0.engine) })
        for case let trial? in switching.trials { used.insert(ObjectIdentifier(trial.previous.engine)) }
        generation.store.retain(only: used)
    }

    /// Records the report for status and answers on the reply topic, if any.
    private func finish(_ r: ModelSwitchReport, reply: MQTTTopic?) -> ModelSwitchReport {
        switching.last[r.stream] = r
        if let reply {
            var w = JSONWriter(capacity: 512)
            ModelSwitchReport.encode(r, into: &w)
            do { try publisher.publish(reply, payload: w.bytes, qos: .atLeastOnce, retain: false) } catch {
                counters.publishErrors += 1
                logger.warning("model switch reply failed", metadata: ["stream": "\(r.stream)", "error": "\(error)"])
            }
        }
        return r
    }
}
