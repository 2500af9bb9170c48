// What the core does besides readings: status and energy summaries on their intervals, idle
// sensor eviction, and the atomic reload (build everything first; on any error keep running).
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry

extension DaemonCore {
    func snapshot(online: Bool) -> StatusSnapshot {
        let p = generation.processor
        let templates = p.templates.indices.map { i in
            let b = generation.bindings[i], t = p.templates[i]
            return StatusSnapshot.Template(name: t.name, sensors: t.pattern.description, model: b.model.identity, path: b.model.path,
                                           window: b.model.shape.window, horizon: b.model.shape.horizon, period: t.io.samplingPeriod,
                                           counters: p.counters[i], windowCounters: p.windowCounters(template: i),
                                           drifting: p.driftingSensors(template: i), calibrated: b.model.quantized.calibration != nil,
                                           modelSwitch: switchReport(template: i))
        }
        var counters = counters
        counters.publishErrors += networkPublishFailures()
        return StatusSnapshot(online: online, gateway: config.gateway, version: version, engine: engineKind,
                              uptimeSeconds: Int(max(0, clock() - startedAt)), templates: templates, liveSensors: p.liveSensors,
                              maxSensors: p.limits.maxSensors, counters: counters, reconnects: reconnects(), intake: intakeHealth(),
                              anomaliesPublished: accuracy.anomaliesPublished, anomaliesRateLimited: accuracy.anomaliesRateLimited,
                              rollbacks: switching.rollbacks)
    }

    func publishStatus(online: Bool) {
        guard let topic = try? MQTTTopic(config.topics.expand(config.topics.status, gateway: config.gateway)) else { return }
        do { try publisher.publish(topic, payload: StatusEncoder.encode(snapshot(online: online)), qos: .atLeastOnce, retain: true) } catch {
            logger.warning("status publish failed", metadata: ["error": "\(error)"])
        }
    }

    func publishEnergySummary() {
        guard let topic = try? MQTTTopic(config.topics.expand(config.topics.energy, gateway: config.gateway)) else { return }
        var w = JSONWriter(capacity: 1024)
        summary.drain(periodSeconds: config.energySummaryIntervalSeconds, into: &w)
        do { try publisher.publish(topic, payload: w.bytes, qos: config.qos, retain: false) } catch {
            logger.warning("energy summary publish failed", metadata: ["error": "\(error)"])
        }
    }

    /// Called by the ticker about once a second with the wall clock.
    func tick(now: Double) {
        if now - lastStatus >= config.statusIntervalSeconds {
            lastStatus = now
            publishStatus(online: true)
        }
        if now - lastSummary >= config.energySummaryIntervalSeconds {
            lastSummary = now
            publishEnergySummary()
        }
        publishAccuracy(now: now)
        // Records older than the interval survive power loss whole (docs/daemon.md).
        if now - lastFsync >= config.logFsyncSeconds {
            lastFsync = now
            energyLog.flush()
        }
        // Eviction scans every sensor: at most every tenth of the idle time, at least once a minute.
        if now - lastEviction >= min(60, config.sensorLimits.idleSeconds / 10) {
            lastEviction = now
            let n = generation.processor.evictIdle(now: now)
            if n > 0 { logger.info("evicted idle sensors", metadata: ["count": "\(n)", "live": "\(generation.processor.liveSensors)"]) }
            metrics.sensors.record(generation.processor.liveSensors)
        }
    }

    /// Atomic reload of the configuration file. Returns nil, or why it was refused (nothing changed).
    func reload() -> String? {
        do {
            let new = try loadConfig()
            var restartNeeded: [String] = []
            if new.mqtt != config.mqtt { restartNeeded.append("mqtt") }
            if new.topics != config.topics || new.gateway != config.gateway { restartNeeded.append("topics/gateway") }
            if new.metricsPort != config.metricsPort { restartNeeded.append("metrics.port") }
            if new.queueCapacity != config.queueCapacity || new.queueBytes != config.queueBytes { restartNeeded.append("limits.queue_*") }
            // Intake subscribes to Home Assistant's status topic at start only.
            if new.announcesToHomeAssistant && (homeAssistantBirth == nil || new.homeAssistant.statusTopic != config.homeAssistant.statusTopic) {
                restartNeeded.append("home_assistant.status_topic")
            }
            var applied = new
            applied.mqtt = config.mqtt
            applied.topics = config.topics
            applied.gateway = config.gateway
            applied.metricsPort = config.metricsPort
            let g = try Generation.build(applied, store: generation.store.successor(), engineKind: engineKind)
            // A stream whose only change is its model file switches through switchModel (windows kept, guarded).
            let switches = deferModelSwitches(g)
            var log: EnergyLog? = nil
            if new.logDirectory != config.logDirectory || new.logMaxBytes != config.logMaxBytes {
                do { log = try EnergyLog(directory: new.logDirectory, maxBytes: new.logMaxBytes) } catch { throw ConfigError("log.directory: \(error)") }
            }
            // Commit.
            let announced = config.streams.map(\.homeAssistant) != new.streams.map(\.homeAssistant) || config.homeAssistant != new.homeAssistant
            install(g, engineKind: engineKind)
            for (name, model) in switches { switchModel(streams: .named([name]), to: model, origin: .reload, guarded: true) }
            if announced { announceAll() }
            if let log { energyLog.flush(); energyLog = log }
            logger.notice("configuration reloaded", metadata: ["streams": "\(new.streams.map(\.sensor))"])
            if !restartNeeded.isEmpty { logger.warning("changes to \(restartNeeded.joined(separator: ", ")) take effect on restart") }
            return nil
        } catch {
            logger.error("reload refused, keeping the running configuration", metadata: ["error": "\(error)"])
            return "\(error)"
        }
    }
}
