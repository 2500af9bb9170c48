// A model switch as reported: on the status topic (the stream's last switch, with a running
// trial's figures so far) and on a deployment's reply topic.
import AIOTStreams
import AIOTTelemetry

struct ModelSwitchReport: Sendable, Equatable {
    var stream: String
    var from: String
    var to: String
    var origin: SwitchOrigin
    /// "trial" (running), "switched" (unguarded), "kept", "rolled_back", "superseded".
    var state: String
    /// For "rolled_back": load_failed, inference_error or worse; and the detail.
    var reason: String? = nil
    var detail: String? = nil
    var at: Double
    var windows = SwitchedWindows()
    /// The trial: resolved target steps and both models' online MAE over the same targets.
    var steps = 0
    var newMAE: Double? = nil
    var previousMAE: Double? = nil
    /// The shadow runs: how many, their CPU time and energy (measured or modelled, where known).
    var shadowInferences = 0
    var shadowErrors = 0
    var shadowCPUNanos: UInt64 = 0
    var shadowEnergy = 0.0

    /// `{"stream","from","to","origin","state"[,"reason","detail"],"t","windows":{kept,requantized,rebuilt},
    ///   "steps","new_mae","previous_mae","shadow":{"inferences","errors","cpu_s","energy_uj"}}`
    static func encode(_ r: ModelSwitchReport, into w: inout JSONWriter) {
        w.raw("{\"stream\":"); w.string(r.stream)
        w.raw(",\"from\":"); w.string(r.from)
        w.raw(",\"to\":"); w.string(r.to)
        w.raw(",\"origin\":"); w.string(r.origin.text)
        w.raw(",\"state\":"); w.string(r.state)
        if let reason = r.reason { w.raw(",\"reason\":"); w.string(reason) }
        if let detail = r.detail { w.raw(",\"detail\":"); w.string(detail) }
        w.raw(",\"t\":"); w.fixed(r.at, decimals: 3)
        w.raw(",\"windows\":{\"kept\":"); w.int(r.windows.kept)
        w.raw(",\"requantized\":"); w.int(r.windows.requantized)
        w.raw(",\"rebuilt\":"); w.int(r.windows.rebuilt)
        w.raw("},\"steps\":"); w.int(r.steps)
        w.raw(",\"new_mae\":"); w.double(r.newMAE ?? .nan)
        w.raw(",\"previous_mae\":"); w.double(r.previousMAE ?? .nan)
        w.raw(",\"shadow\":{\"inferences\":"); w.int(r.shadowInferences)
        w.raw(",\"errors\":"); w.int(r.shadowErrors)
        w.raw(",\"cpu_s\":"); w.double(Double(r.shadowCPUNanos) / 1e9)
        w.raw(",\"energy_uj\":"); w.double(r.shadowEnergy)
        w.raw("}}")
    }
}

extension DaemonCore {
    /// The stream's last switch for status; a running trial with its figures so far.
    func switchReport(template t: Int) -> ModelSwitchReport? {
        if t < switching.trials.count, let trial = switching.trials[t] {
            var r = trial.report
            if let sums = generation.processor.trial(template: t) {
                r.steps = sums.steps
                r.newMAE = sums.new.mae
                r.previousMAE = sums.previous.mae
            }
            return r
        }
        return switching.last[generation.processor.templates[t].name]
    }
}

extension DaemonCore {
    /// Reload: streams of `g` that differ from the running ones only by their model file are
    /// built on the running model (so `install` carries their windows as they are) and returned,
    /// to be switched by `switchModel` once `g` is installed.
    func deferModelSwitches(_ g: Generation) -> [(String, LoadedModel)] {
        var out: [(String, LoadedModel)] = []
        for (t, sc) in g.config.streams.enumerated() {
            guard let o = generation.processor.templates.firstIndex(where: { $0.name == g.processor.templates[t].name }), o < config.streams.count else { continue }
            let running = generation.bindings[o], next = g.bindings[t]
            guard running.model.identity != next.model.identity else { continue }
            var same = config.streams[o]
            same.model = sc.model
            guard same == sc, g.processor.templates[t].accuracy == generation.processor.templates[o].accuracy else { continue }
            let tpl = generation.processor.templates[o]
            g.bindings[t] = running
            _ = g.processor.switchModel(template: t, io: tpl.io, reference: tpl.reference, trial: false)
            out.append((g.processor.templates[t].name, next.model))
        }
        return out
    }
}
