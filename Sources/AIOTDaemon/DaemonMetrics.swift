// The daemon's counters (status) and their Prometheus twins (metrics), created once per daemon
// with its own factory: no global bootstrap.
import Metrics
import AIOTModel
import AIOTStreams

/// Rejection and acceptance counts, also exported to Prometheus.
struct Counters: Sendable, Equatable {
    var accepted = 0
    var rejected = [Int](repeating: 0, count: RejectReason.allCases.count)
    var inferences = 0
    /// Batched passes of two or more windows (Batching.swift), and the windows they ran.
    var batchedPasses = 0
    var batchedWindows = 0
    /// Forecasts for steps completed by a reading that arrived after a newer step (flagged "late").
    var lateForecasts = 0
    var inferenceErrors = 0
    var publishErrors = 0
    var logErrors = 0
    var commands = 0
    var commandsRefused = [Int](repeating: 0, count: CommandRefusal.allCases.count)
    var totalRejected: Int { rejected.reduce(0, +) }
}

struct DaemonMetrics {
    let accepted: Counter
    let rejected: [Counter]
    let inferences: [EngineKind: Counter]
    let latency: Metrics.Timer
    let inferenceLatency: Metrics.Timer
    let energy: FloatingPointCounter
    let reconnects: Counter
    let publishErrors: Counter
    let sensors: Gauge
    let commandsRefused: [Counter]
    /// Model switches, rollbacks by reason, and the shadow runs of trials (ModelSwitch.swift).
    let modelSwitches: Counter
    let rollbacks: [Counter]
    let shadowInferences: Counter
    let shadowEnergy: FloatingPointCounter
    /// For metrics labelled by stream, made when a stream first needs them (Accuracy.swift).
    let factory: MetricsFactory

    init(factory: MetricsFactory) {
        self.factory = factory
        accepted = Counter(label: "aiotd_readings_accepted_total", dimensions: [], factory: factory)
        rejected = RejectReason.allCases.map { Counter(label: "aiotd_readings_rejected_total", dimensions: [("reason", $0.description)], factory: factory) }
        var inf: [EngineKind: Counter] = [:]
        for k in EngineKind.allCases { inf[k] = Counter(label: "aiotd_inferences_total", dimensions: [("engine", k.rawValue)], factory: factory) }
        inferences = inf
        latency = Metrics.Timer(label: "aiotd_reading_to_forecast_seconds", dimensions: [], factory: factory)
        inferenceLatency = Metrics.Timer(label: "aiotd_inference_seconds", dimensions: [], factory: factory)
        energy = FloatingPointCounter(label: "aiotd_energy_microjoules_total", dimensions: [], factory: factory)
        reconnects = Counter(label: "aiotd_mqtt_reconnects_total", dimensions: [], factory: factory)
        publishErrors = Counter(label: "aiotd_publish_errors_total", dimensions: [], factory: factory)
        sensors = Gauge(label: "aiotd_sensors", dimensions: [], factory: factory)
        modelSwitches = Counter(label: "aiotd_model_switches_total", dimensions: [], factory: factory)
        rollbacks = RollbackReason.allCases.map { Counter(label: "aiotd_model_rollbacks_total", dimensions: [("reason", $0.description)], factory: factory) }
        shadowInferences = Counter(label: "aiotd_shadow_inferences_total", dimensions: [], factory: factory)
        shadowEnergy = FloatingPointCounter(label: "aiotd_shadow_energy_microjoules_total", dimensions: [], factory: factory)
        commandsRefused = CommandRefusal.allCases.map { Counter(label: "aiotd_commands_refused_total", dimensions: [("reason", $0.description)], factory: factory) }
    }
}

extension DaemonMetrics {
    /// Metrics that go nowhere: in-process tests and tools.
    static var discarded: DaemonMetrics { DaemonMetrics(factory: NOOPMetricsHandler.instance) }
}
