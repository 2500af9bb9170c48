// The daemon's outgoing JSON: forecasts, status, command replies. One writer (AIOTTelemetry's
// JSONWriter), no Foundation, field names documented in docs/daemon.md.
import AIOTModel
import AIOTStreams
import AIOTTelemetry

enum ForecastEncoder {
    /// `{"sensor","t","forecast_t","forecast","q","unit","model","engine","latency_us","energy_uj","seq"[,"late"]}`
    static func encode(into json: inout JSONWriter, sensor: String, windowEnd: Double, output q: UnsafeBufferPointer<Int32>,
                       io: ModelIO, model: String, engine: EngineKind, latencyMicros: Double, energy: Double?, sequence: UInt64, late: Bool) {
        json.reset()
        json.raw("{\"sensor\":"); json.string(sensor)
        json.raw(",\"t\":"); json.double(windowEnd)
        json.raw(",\"forecast_t\":[")
        for p in 0..<q.count { if p > 0 { json.raw(",") }; json.double(windowEnd + Double(p + 1) * io.samplingPeriod) }
        json.raw("],\"forecast\":[")
        for p in 0..<q.count { if p > 0 { json.raw(",") }; json.double(io.dequantize(q[p])) }
        json.raw("],\"q\":[")
        for p in 0..<q.count { if p > 0 { json.raw(",") }; json.int(q[p]) }
        json.raw("],\"unit\":"); json.string(io.targetUnit)
        json.raw(",\"model\":"); json.string(model)
        json.raw(",\"engine\":"); json.string(engine.rawValue)
        json.raw(",\"latency_us\":"); json.fixed(latencyMicros, decimals: 1)
        json.raw(",\"energy_uj\":"); if let energy { json.fixed(energy, decimals: 1) } else { json.raw("null") }
        json.raw(",\"seq\":"); json.int(sequence)
        if late { json.raw(",\"late\":true") }
        json.raw("}")
    }
}

/// What the status message reports; gathered by the core, written here.
struct StatusSnapshot {
    struct Template {
        var name: String
        var sensors: String
        var model: String
        var path: String
        var window: Int
        var horizon: Int
        var period: Double
        var counters: TemplateCounters
        var windowCounters: WindowCounters
        /// Online accuracy: live sensors whose drift alarm is up; whether the model has calibration.
        var drifting = 0
        var calibrated = false
        /// The stream's last model switch (a running trial with its figures so far).
        var modelSwitch: ModelSwitchReport? = nil
    }
    var online: Bool
    var gateway: String
    var version: String
    var engine: EngineKind
    var uptimeSeconds: Int
    var templates: [Template]
    var liveSensors: Int
    var maxSensors: Int
    var counters: Counters
    var reconnects: Int
    var intake = IntakeHealth()
    var anomaliesPublished = 0
    var anomaliesRateLimited = 0
    var rollbacks = [Int](repeating: 0, count: RollbackReason.allCases.count)
}

/// The intake connection's own refusals, for status (see `DaemonCore.intakeHealth`).
struct IntakeHealth: Sendable, Equatable {
    var oversizedRefused = 0
    /// "FILTER (SUBACK reason code 0xNN)" of the first refused subscription, if any.
    var refusedSubscription: String?
}

enum StatusEncoder {
    static func encode(_ s: StatusSnapshot) -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        encode(s, into: &w)
        return w.bytes
    }

    static func encode(_ s: StatusSnapshot, into w: inout JSONWriter) {
        w.raw("{\"online\":"); w.raw(s.online ? "true" : "false")
        w.raw(",\"gateway\":"); w.string(s.gateway)
        w.raw(",\"version\":"); w.string(s.version)
        w.raw(",\"engine\":"); w.string(s.engine.rawValue)
        w.raw(",\"uptime_s\":"); w.int(s.uptimeSeconds)
        w.raw(",\"sensors\":"); w.int(s.liveSensors)
        w.raw(",\"max_sensors\":"); w.int(s.maxSensors)
        // One entry per template: counts, never the names of a fleet (the status command lists them).
        w.raw(",\"models\":[")
        for (i, t) in s.templates.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"stream\":"); w.string(t.name)
            w.raw(",\"sensor\":"); w.string(t.sensors)
            w.raw(",\"model\":"); w.string(t.model)
            w.raw(",\"path\":"); w.string(t.path)
            w.raw(",\"window\":"); w.int(t.window)
            w.raw(",\"horizon\":"); w.int(t.horizon)
            w.raw(",\"period_s\":"); w.double(t.period)
            w.raw(",\"sensors\":"); w.int(t.counters.sensors)
            w.raw(",\"sensors_created\":"); w.int(t.counters.created)
            w.raw(",\"sensors_evicted\":"); w.int(t.counters.evicted)
            w.raw(",\"readings_accepted\":"); w.int(t.counters.accepted)
            w.raw(",\"readings_rejected\":"); w.int(t.counters.rejected)
            w.raw(",\"windows\":"); w.int(t.counters.windows)
            w.raw(",\"window_resets\":"); w.int(t.windowCounters.resets)
            // Every resolved forecast value of the stream (docs/daemon.md, "Online accuracy").
            w.raw(",\"accuracy\":"); AccuracyEncoder.sums(t.counters.accuracy, into: &w)
            w.raw(",\"anomalies\":"); w.int(t.counters.anomalies)
            w.raw(",\"drifting_sensors\":"); w.int(t.drifting)
            w.raw(",\"calibrated\":"); w.raw(t.calibrated ? "true" : "false")
            if let r = t.modelSwitch { w.raw(",\"model_switch\":"); ModelSwitchReport.encode(r, into: &w) }
            w.raw("}")
        }
        let c = s.counters
        w.raw("],\"counters\":{\"readings_accepted\":"); w.int(c.accepted)
        w.raw(",\"readings_rejected\":{")
        for (i, r) in RejectReason.allCases.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(r.description); w.raw(":"); w.int(c.rejected[r.rawValue])
        }
        w.raw("},\"readings_rejected_total\":"); w.int(c.totalRejected)
        w.raw(",\"inferences\":"); w.int(c.inferences)
        w.raw(",\"late_forecasts\":"); w.int(c.lateForecasts)
        w.raw(",\"batched_passes\":"); w.int(c.batchedPasses)
        w.raw(",\"batched_windows\":"); w.int(c.batchedWindows)
        w.raw(",\"inference_errors\":"); w.int(c.inferenceErrors)
        w.raw(",\"publish_errors\":"); w.int(c.publishErrors)
        w.raw(",\"energy_log_errors\":"); w.int(c.logErrors)
        w.raw(",\"commands\":"); w.int(c.commands)
        w.raw(",\"commands_refused\":{")
        for r in CommandRefusal.allCases { w.raw(r.rawValue > 0 ? "," : ""); w.string(r.description); w.raw(":"); w.int(c.commandsRefused[r.rawValue]) }
        w.raw("}")
        w.raw(",\"window_resets\":"); w.int(s.templates.reduce(0) { $0 + $1.windowCounters.resets })
        w.raw(",\"steps_gap_filled\":"); w.int(s.templates.reduce(0) { $0 + $1.windowCounters.stepsGapFilled })
        w.raw(",\"mqtt_reconnects\":"); w.int(s.reconnects)
        w.raw(",\"mqtt_oversized_refused\":"); w.int(s.intake.oversizedRefused)
        w.raw(",\"anomalies_published\":"); w.int(s.anomaliesPublished)
        w.raw(",\"anomalies_rate_limited\":"); w.int(s.anomaliesRateLimited)
        w.raw(",\"model_rollbacks\":{")
        for r in RollbackReason.allCases { w.raw(r.rawValue > 0 ? "," : ""); w.string(r.description); w.raw(":"); w.int(s.rollbacks[r.rawValue]) }
        w.raw("}")
        w.raw("}")
        if let refused = s.intake.refusedSubscription { w.raw(",\"subscription_refused\":"); w.string(refused) }
        w.raw("}")
    }
}

/// `{"id","command","ok"[,"error"][, extra members]}`
struct ReplyEncoder {
    var w = JSONWriter(capacity: 512)
    init(id: String, command: String, ok: Bool) {
        w.raw("{\"id\":"); w.string(id)
        w.raw(",\"command\":"); w.string(command)
        w.raw(",\"ok\":"); w.raw(ok ? "true" : "false")
    }
    mutating func member(_ key: String, string: String) { w.raw(","); w.string(key); w.raw(":"); w.string(string) }
    mutating func member(_ key: String, raw: [UInt8]) { w.raw(","); w.string(key); w.raw(":"); w.bytes += raw }
    mutating func member(_ key: String, strings: [String]) {
        w.raw(","); w.string(key); w.raw(":[")
        for (i, s) in strings.enumerated() { if i > 0 { w.raw(",") }; w.string(s) }
        w.raw("]")
    }
    mutating func finish() -> [UInt8] { w.raw("}"); return w.bytes }
}
