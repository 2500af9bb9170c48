// The daemon core: one processing task fed by MQTT, a ticker and SIGHUP; run under a ServiceGroup.
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry

public let aiotdVersion = "0.1.0"

enum DaemonEvent: Sendable {
    case mqtt(MQTTEvent)
    case tick
    case reload
    case shutdown
}

/// Everything a daemon run needs besides the configuration file.
public struct DaemonOptions: Sendable {
    public var configPath: String
    public var engineFactory: EngineFactory
    public var powerSource: @Sendable () -> PowerSource
    public var notifier: SystemdNotifier
    public init(configPath: String, engineFactory: @escaping EngineFactory = defaultEngineFactory,
                powerSource: @escaping @Sendable () -> PowerSource = defaultSoftwarePowerSource,
                notifier: SystemdNotifier = SystemdNotifier()) {
        self.configPath = configPath
        self.engineFactory = engineFactory
        self.powerSource = powerSource
        self.notifier = notifier
    }
}

/// Validates a configuration fully (file, keys, models, engines) without connecting: `--check-config`.
public func checkConfiguration(path: String, engineFactory: EngineFactory = defaultEngineFactory) throws -> DaemonConfig {
    let config = try DaemonConfig.load(path: path)
    _ = try Pipeline.makeStreams(config, old: [], engineKind: config.engine, factory: engineFactory)
    return config
}

public final class Daemon: Service {
    public let options: DaemonOptions
    public let initialConfig: DaemonConfig
    let logger: Logger
    /// The Prometheus registry behind /metrics (one per daemon: no global state).
    public let registry = PrometheusCollectorRegistry()

    public init(options: DaemonOptions, logger: Logger) throws {
        self.options = options
        self.logger = logger
        initialConfig = try DaemonConfig.load(path: options.configPath)
    }

    public func run() async throws {
        var config = initialConfig
        let notifier = options.notifier
        let (events, continuation) = AsyncStream.makeStream(of: DaemonEvent.self, bufferingPolicy: .unbounded)
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000, 250_000, 1_000_000].map { Duration.microseconds($0) }
        let metrics = DaemonMetrics(factory: factory)

        let streams = try Pipeline.makeStreams(config, old: [], engineKind: config.engine, factory: options.engineFactory)
        let energyLog = try EnergyLog(directory: config.logDirectory, maxBytes: config.logMaxBytes)
        let statusTopic = config.topics.expand(config.topics.status, gateway: config.gateway)
        var mqttConfig = config.mqtt
        let offline = "{\"online\":false,\"gateway\":\"\(config.gateway)\",\"version\":\"\(aiotdVersion)\",\"reason\":\"connection lost\"}"
        mqttConfig.will = .init(topic: statusTopic, payload: Array(offline.utf8), qos: .atLeastOnce, retain: true)
        let mqtt = try MQTTClient(configuration: mqttConfig) { continuation.yield(.mqtt($0)) }
        let pipeline = Pipeline(config: config, streams: streams, mqtt: mqtt, energyLog: energyLog, power: options.powerSource(),
                                metrics: metrics, logger: logger, engineFactory: options.engineFactory)
        pipeline.version = aiotdVersion
        let configPath = options.configPath
        let logger = self.logger
        pipeline.reloadHandler = { [unowned pipeline] in
            Self.reload(pipeline: pipeline, path: configPath, logger: logger, notifier: notifier)
        }

        let readings = config.topics.expand(config.topics.readings, gateway: config.gateway, "sensor", "+")
        let commands = config.topics.expand(config.topics.commands, gateway: config.gateway, "name", "+")
        try mqtt.subscribe(readings, qos: config.qos)
        try mqtt.subscribe(commands, qos: .atLeastOnce)
        try mqtt.start()

        var metricsServer: MetricsServer? = nil
        if config.metricsPort != 0 {
            metricsServer = try MetricsServer(port: config.metricsPort, registry: registry)
            logger.info("metrics", metadata: ["url": "http://127.0.0.1:\(metricsServer!.port)/metrics"])
        }

        // The ticker drives status, summaries and the watchdog through the same loop as the
        // readings, so a stuck loop stops the watchdog pings and systemd restarts us.
        var tick = Duration.seconds(1)
        if let w = notifier.watchdogInterval, w / 2 < tick { tick = w / 2 }
        let tickInterval = tick
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: tickInterval)
                continuation.yield(.tick)
            }
        }
        let hup = Task {
            for await _ in await UnixSignalsSequence(trapping: .sighup) { continuation.yield(.reload) }
        }

        notifier.notify("READY=1\nSTATUS=serving \(config.streams.count) stream(s), waiting for the broker")
        logger.notice("aiotd started", metadata: ["version": "\(aiotdVersion)", "streams": "\(config.streams.map(\.sensor))",
                                                   "broker": "\(config.mqtt.host):\(config.mqtt.port)", "energy_source": "\(pipeline.power.name)"])
        var lastStatus = ContinuousClock.now
        var lastSummary = ContinuousClock.now
        var lastReconnects = 0

        await withGracefulShutdownHandler {
            loop: for await event in events {
                switch event {
                case .mqtt(.message(let m)):
                    pipeline.handle(m)
                case .mqtt(.connected(let sessionPresent)):
                    logger.notice("mqtt connected", metadata: ["session_present": "\(sessionPresent)"])
                    pipeline.publishStatus(online: true, version: aiotdVersion)
                    notifier.notify("STATUS=serving \(pipeline.streams.count) stream(s), connected to \(config.mqtt.host):\(config.mqtt.port)")
                case .mqtt(.connectionLost(let reason)):
                    logger.warning("mqtt connection lost; reconnecting with backoff", metadata: ["reason": "\(reason)"])
                    notifier.notify("STATUS=broker unreachable (\(reason)); retrying")
                case .tick:
                    if notifier.watchdogInterval != nil { notifier.notify("WATCHDOG=1") }
                    let now = ContinuousClock.now
                    let rc = mqtt.reconnectCount
                    if rc > lastReconnects { metrics.reconnects.increment(by: rc - lastReconnects); lastReconnects = rc }
                    if now - lastStatus >= .seconds(pipeline.config.statusIntervalSeconds) {
                        lastStatus = now
                        pipeline.publishStatus(online: true, version: aiotdVersion)
                    }
                    if now - lastSummary >= .seconds(pipeline.config.energySummaryIntervalSeconds) {
                        lastSummary = now
                        pipeline.publishEnergySummary(periodSeconds: pipeline.config.energySummaryIntervalSeconds)
                    }
                case .reload:
                    _ = Self.reload(pipeline: pipeline, path: configPath, logger: logger, notifier: notifier)
                    config = pipeline.config
                case .shutdown:
                    break loop
                }
            }
        } onGracefulShutdown: {
            continuation.yield(.shutdown)
        }

        // Drain: every message queued before the shutdown event has been processed above.
        notifier.notify("STOPPING=1\nSTATUS=draining")
        ticker.cancel()
        hup.cancel()
        pipeline.publishEnergySummary(periodSeconds: pipeline.config.energySummaryIntervalSeconds)
        pipeline.publishStatus(online: false, version: aiotdVersion)
        let acked = await mqtt.waitForPublishes(timeout: .seconds(3))
        if !acked { logger.warning("shutdown: \(mqtt.inflightCount) QoS 1 publishes not acknowledged by the broker before the deadline") }
        mqtt.stop()
        continuation.finish()
        pipeline.energyLog.flush()
        metricsServer?.stop()
        logger.notice("aiotd stopped", metadata: ["inferences": "\(pipeline.counters.inferences)", "accepted": "\(pipeline.counters.accepted)", "rejected": "\(pipeline.counters.totalRejected)"])
    }

    /// Atomic reload: build everything for the new file first; on any error keep the old config.
    static func reload(pipeline: Pipeline, path: String, logger: Logger, notifier: SystemdNotifier) -> String? {
        notifier.notify("RELOADING=1")
        defer { notifier.notify("READY=1") }
        do {
            let new = try DaemonConfig.load(path: path)
            let streams = try Pipeline.makeStreams(new, old: pipeline.streams, engineKind: pipeline.engineKind, factory: pipeline.engineFactory)
            var log: EnergyLog? = nil
            if new.logDirectory != pipeline.config.logDirectory || new.logMaxBytes != pipeline.config.logMaxBytes {
                log = try EnergyLog(directory: new.logDirectory, maxBytes: new.logMaxBytes)
            }
            var restartNeeded: [String] = []
            if new.mqtt != pipeline.config.mqtt { restartNeeded.append("mqtt") }
            if new.topics != pipeline.config.topics || new.gateway != pipeline.config.gateway { restartNeeded.append("topics/gateway") }
            if new.metricsPort != pipeline.config.metricsPort { restartNeeded.append("metrics.port") }
            // Commit.
            var applied = new
            applied.mqtt = pipeline.config.mqtt
            applied.topics = pipeline.config.topics
            applied.gateway = pipeline.config.gateway
            applied.metricsPort = pipeline.config.metricsPort
            pipeline.config = applied
            pipeline.streams = streams
            pipeline.routes = Pipeline.makeRoutes(streams)
            pipeline.parser = PayloadParser(maxPayloadBytes: new.maxPayloadBytes)
            if let log { pipeline.energyLog.flush(); pipeline.energyLog = log }
            logger.notice("configuration reloaded", metadata: ["path": "\(path)", "streams": "\(new.streams.map(\.sensor))"])
            if !restartNeeded.isEmpty {
                logger.warning("changes to \(restartNeeded.joined(separator: ", ")) take effect on restart")
            }
            notifier.notify("STATUS=reloaded \(path)")
            return nil
        } catch {
            logger.error("reload refused, keeping the running configuration", metadata: ["path": "\(path)", "error": "\(error)"])
            notifier.notify("STATUS=reload refused: \(error)")
            return "\(error)"
        }
    }
}
