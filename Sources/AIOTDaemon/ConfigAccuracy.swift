// The `[accuracy]` table: online accuracy, anomaly flags and the drift alarm (docs/daemon.md,
// "Online accuracy"). Every number bounded, every message naming the key.
import TOMLKit
import AIOTStreams

public struct AccuracyConfig: Sendable, Equatable {
    /// Judging errors (rolling window, anomaly quantile, drift factor and steps).
    public var policy = AccuracyPolicy()
    /// Each sensor with new resolved forecasts is published this often.
    public var publishIntervalSeconds = 60.0
    /// At most one anomaly message per sensor this often; the rest are counted.
    public var anomalyMinIntervalSeconds = 60.0
    /// Per-sensor Prometheus gauges: off by default (10k sensors would be 10k series per gauge).
    public var perSensorMetrics = false
    public var topic = "aiot/{gateway}/accuracy/{sensor}"
    public var anomalyTopic = "aiot/{gateway}/anomalies/{sensor}"
    public var alertTopic = "aiot/{gateway}/alerts/{sensor}"
    public init() {}
}

extension Reader {
    func readAccuracy(_ root: TOMLTable) throws(ConfigError) -> AccuracyConfig {
        var c = AccuracyConfig()
        guard let t = try table(root, "accuracy") else { return c }
        try checkKeys(t, "accuracy", ["window", "publish_interval_s", "anomaly_quantile", "anomaly_min_interval_s", "drift_factor",
                                      "drift_steps", "per_sensor_metrics", "topic", "anomaly_topic", "alert_topic"])
        c.policy.windowSize = try int(t, "window", "accuracy.window", default: 48, range: 1...100_000)
        c.publishIntervalSeconds = try double(t, "publish_interval_s", "accuracy.publish_interval_s", default: 60, min: 1, max: 86400 * 366)!
        // 0 turns anomaly flags off; otherwise one of the levels the model file stores.
        let q = try double(t, "anomaly_quantile", "accuracy.anomaly_quantile", default: 0.999, min: 0, max: 0.999999)!
        c.policy.anomalyQuantile = q == 0 ? nil : q
        c.anomalyMinIntervalSeconds = try double(t, "anomaly_min_interval_s", "accuracy.anomaly_min_interval_s", default: 60, min: 0, max: 86400 * 366)!
        c.policy.driftFactor = try double(t, "drift_factor", "accuracy.drift_factor", default: 2, min: 1, max: 1000)!
        c.policy.driftSteps = try int(t, "drift_steps", "accuracy.drift_steps", default: 48, range: 1...100_000)
        c.perSensorMetrics = try bool(t, "per_sensor_metrics", "accuracy.per_sensor_metrics", default: false)
        func tpl(_ key: String, _ def: String) throws(ConfigError) -> String {
            let v = try string(t, key, "accuracy.\(key)", default: def)
            if !v.contains("{sensor}") { throw err("accuracy.\(key)", "\"\(v)\" must contain {sensor}") }
            if v.contains("+") || v.contains("#") { throw err("accuracy.\(key)", "\"\(v)\" must not contain MQTT wildcards") }
            do { _ = try TopicPattern(v.replacingOccurrences(of: "{gateway}", with: "g"), placeholder: "{sensor}") } catch {
                throw err("accuracy.\(key)", error.description)
            }
            return v
        }
        c.topic = try tpl("topic", c.topic)
        c.anomalyTopic = try tpl("anomaly_topic", c.anomalyTopic)
        c.alertTopic = try tpl("alert_topic", c.alertTopic)
        return c
    }
}
