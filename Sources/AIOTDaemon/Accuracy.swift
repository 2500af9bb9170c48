// Online accuracy in the daemon: the per-sensor accuracy topic on its interval, anomaly messages
// (rate-limited per sensor, all counted), retained drift alerts, and the per-template gauges.
// The errors themselves are computed by AIOTStreams (OnlineAccuracy.swift).
import Metrics
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry

/// The daemon's accuracy bookkeeping (one per core).
struct AccuracyState {
    var lastPublish = -Double.infinity
    var anomaliesPublished = 0
    var anomaliesRateLimited = 0
    var alertsRaised = 0
    var alertsCleared = 0
    /// Per template name: MAE, RMSE, skill and drifting-sensor gauges, anomaly counter.
    var gauges: [String: (mae: Gauge, rmse: Gauge, skill: Gauge, drifting: Gauge, anomalies: Counter)] = [:]
}

/// The model's calibration resolved for a stream; an anomaly level the file does not store is refused.
func accuracyReference(_ model: LoadedModel, _ policy: AccuracyPolicy, stream i: Int) throws(ConfigError) -> AccuracyReference {
    if let q = policy.anomalyQuantile, let c = model.quantized.calibration, c.threshold(level: q) == nil {
        throw ConfigError("accuracy.anomaly_quantile: \(q) is not a level stored in \(model.path) (stream[\(i)]); use one of \(c.levels.map { "\($0)" }.joined(separator: ", ")) or 0 to turn anomaly flags off")
    }
    return AccuracyReference(calibration: model.quantized.calibration, policy: policy)
}

extension DaemonCore {
    private func topic(_ template: String, sensor: String) -> MQTTTopic? {
        try? MQTTTopic(config.topics.expand(template, gateway: config.gateway, "sensor", sensor))
    }

    /// After a message: anomaly messages and drift alerts for what it resolved.
    func publishAccuracyEvents(now: Double) {
        let p = generation.processor
        for r in out.resolved where r.anomalyThreshold != nil {
            gauges(p.templates[r.template].name).anomalies.increment()
            guard p.anomalyDue(slot: r.slot, now: now, minInterval: config.accuracy.anomalyMinIntervalSeconds) else {
                accuracy.anomaliesRateLimited += 1
                continue
            }
            guard let sensor = p.sensorName(slot: r.slot), let t = topic(config.accuracy.anomalyTopic, sensor: sensor) else { continue }
            let io = p.templates[r.template].io
            var w = JSONWriter(capacity: 256)
            w.raw("{\"sensor\":"); w.string(sensor)
            w.raw(",\"t\":"); w.double(Double(r.targetStep) * io.samplingPeriod)
            w.raw(",\"origin_t\":"); w.double(Double(r.originStep) * io.samplingPeriod)
            w.raw(",\"horizon\":"); w.int(r.horizon)
            w.raw(",\"forecast\":"); w.double(r.forecast)
            w.raw(",\"actual\":"); w.double(r.actual)
            w.raw(",\"residual\":"); w.double(r.actual - r.forecast)
            w.raw(",\"threshold\":"); w.double(r.anomalyThreshold!)
            w.raw(",\"quantile\":"); w.double(config.accuracy.policy.anomalyQuantile ?? 0)
            w.raw(",\"unit\":"); w.string(io.targetUnit)
            w.raw(",\"model\":"); w.string(generation.bindings[r.template].model.identity)
            w.raw("}")
            accuracy.anomaliesPublished += 1
            do { try publisher.publish(t, payload: w.bytes, qos: config.qos, retain: false) } catch {
                counters.publishErrors += 1
                logger.warning("anomaly publish failed", metadata: ["sensor": "\(sensor)", "error": "\(error)"])
            }
        }
        for d in out.drift {
            guard let a = p.accuracy(slot: d.slot), let t = topic(config.accuracy.alertTopic, sensor: a.name) else { continue }
            let tpl = p.templates[a.template]
            if d.change == .raised { accuracy.alertsRaised += 1 } else { accuracy.alertsCleared += 1 }
            var w = JSONWriter(capacity: 256)
            w.raw("{\"sensor\":"); w.string(a.name)
            w.raw(",\"alert\":\"drift\",\"active\":"); w.raw(d.change == .raised ? "true" : "false")
            w.raw(",\"t\":"); w.fixed(now, decimals: 3)
            // The series time of the newest step that moved the alarm (the readings' own clock).
            let step = out.resolved.lazy.filter { $0.slot == d.slot }.map(\.targetStep).max() ?? 0
            w.raw(",\"step_t\":"); w.double(Double(step) * tpl.io.samplingPeriod)
            w.raw(",\"rolling_median_abs_error\":"); w.double(a.rollingMedian ?? .nan)
            w.raw(",\"validation_median_abs_error\":"); w.double(tpl.reference.validationMedian ?? .nan)
            w.raw(",\"rolling_mae\":"); w.double(a.rolling.mae ?? .nan)
            w.raw(",\"validation_mae\":"); w.double(tpl.reference.validationMAE ?? .nan)
            w.raw(",\"factor\":"); w.double(tpl.accuracy.driftFactor)
            w.raw(",\"steps\":"); w.int(tpl.accuracy.driftSteps)
            w.raw(",\"unit\":"); w.string(tpl.io.targetUnit)
            w.raw("}")
            logger.notice(d.change == .raised ? "drift alarm raised" : "drift alarm cleared", metadata: ["sensor": "\(a.name)", "rolling_median_abs_error": "\(a.rollingMedian ?? .nan)"])
            // Retained: a dashboard that connects later still sees the sensor's current alarm state.
            do { try publisher.publish(t, payload: w.bytes, qos: .atLeastOnce, retain: true) } catch {
                counters.publishErrors += 1
                logger.warning("alert publish failed", metadata: ["sensor": "\(a.name)", "error": "\(error)"])
            }
        }
    }

    private func gauges(_ name: String) -> (mae: Gauge, rmse: Gauge, skill: Gauge, drifting: Gauge, anomalies: Counter) {
        if let g = accuracy.gauges[name] { return g }
        let d = [("stream", name)]
        let g = (Gauge(label: "aiotd_forecast_mae", dimensions: d, factory: metrics.factory),
                 Gauge(label: "aiotd_forecast_rmse", dimensions: d, factory: metrics.factory),
                 Gauge(label: "aiotd_forecast_skill", dimensions: d, factory: metrics.factory),
                 Gauge(label: "aiotd_drifting_sensors", dimensions: d, factory: metrics.factory),
                 Counter(label: "aiotd_anomalies_total", dimensions: d, factory: metrics.factory))
        accuracy.gauges[name] = g
        return g
    }

    /// On the ticker: every sensor with new resolved forecasts, and the per-template gauges.
    func publishAccuracy(now: Double) {
        guard now - accuracy.lastPublish >= config.accuracy.publishIntervalSeconds else { return }
        accuracy.lastPublish = now
        let p = generation.processor
        for (i, tpl) in p.templates.enumerated() {
            let g = gauges(tpl.name), a = p.counters[i].accuracy
            if let v = a.mae { g.mae.record(v) }
            if let v = a.rmse { g.rmse.record(v) }
            if let v = a.skill { g.skill.record(v) }
            g.drifting.record(p.driftingSensors(template: i))
        }
        var w = JSONWriter(capacity: 1024)
        for s in p.takeChangedAccuracy() {
            guard let a = p.accuracy(slot: s), let t = topic(config.accuracy.topic, sensor: a.name) else { continue }
            let tpl = p.templates[a.template]
            AccuracyEncoder.encode(a, template: tpl, model: generation.bindings[a.template].model.identity, into: &w)
            if config.accuracy.perSensorMetrics, let v = a.total.mae {
                Gauge(label: "aiotd_sensor_forecast_mae", dimensions: [("sensor", a.name)], factory: metrics.factory).record(v)
            }
            do { try publisher.publish(t, payload: w.bytes, qos: config.qos, retain: false) } catch {
                counters.publishErrors += 1
                logger.warning("accuracy publish failed", metadata: ["sensor": "\(a.name)", "error": "\(error)"])
            }
        }
    }
}

enum AccuracyEncoder {
    static func sums(_ s: ErrorSums, into w: inout JSONWriter, persistence: Bool = true) {
        w.raw("{\"n\":"); w.int(s.count)
        w.raw(",\"mae\":"); w.double(s.mae ?? .nan)
        w.raw(",\"rmse\":"); w.double(s.rmse ?? .nan)
        if persistence {
            w.raw(",\"persistence_mae\":"); w.double(s.persistenceMAE ?? .nan)
            w.raw(",\"persistence_rmse\":"); w.double(s.persistenceRMSE ?? .nan)
            w.raw(",\"skill\":"); w.double(s.skill ?? .nan)
        }
        w.raw("}")
    }

    /// `{"sensor","stream","unit","model","run":{n,mae,rmse,persistence_mae,persistence_rmse,skill},
    ///   "rolling":{n,mae,rmse},"per_step":[{...} per horizon step],"anomalies","drifting","validation_mae"}`
    static func encode(_ a: SensorAccuracySummary, template tpl: StreamTemplate, model: String, into w: inout JSONWriter) {
        w.reset()
        w.raw("{\"sensor\":"); w.string(a.name)
        w.raw(",\"stream\":"); w.string(tpl.name)
        w.raw(",\"unit\":"); w.string(tpl.io.targetUnit)
        w.raw(",\"model\":"); w.string(model)
        w.raw(",\"run\":"); sums(a.total, into: &w)
        w.raw(",\"rolling\":"); sums(a.rolling, into: &w, persistence: false)
        w.raw(",\"window\":"); w.int(tpl.accuracy.windowSize)
        w.raw(",\"per_step\":[")
        for (h, s) in a.run.enumerated() {
            if h > 0 { w.raw(",") }
            sums(s, into: &w)
        }
        w.raw("],\"anomalies\":"); w.int(a.anomalies)
        w.raw(",\"drifting\":"); w.raw(a.drifting ? "true" : "false")
        w.raw(",\"rolling_median_abs_error\":"); w.double(a.rollingMedian ?? .nan)
        w.raw(",\"validation_mae\":"); w.double(tpl.reference.validationMAE ?? .nan)
        w.raw(",\"validation_median_abs_error\":"); w.double(tpl.reference.validationMedian ?? .nan)
        w.raw("}")
    }
}
