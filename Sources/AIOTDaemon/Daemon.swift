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

/// What the service task handles; readings are handled on the MQTT network thread.
enum DaemonEvent: Sendable {
    case tick
    case reload
    case shutdown
}

/// The pipeline behind a lock: readings are handled on the processing thread (fed by a bounded
/// queue from libmosquitto's network thread); ticks, reloads and shutdown take the same lock from
/// the service task.
final class PipelineHolder: @unchecked Sendable {
    // @unchecked: `pipeline` is only touched under `lock`.
    private let lock = NSLock()
    private var pipeline: Pipeline?
    func set(_ p: Pipeline) { lock.lock(); pipeline = p; lock.unlock() }
    func with<R>(_ body: (Pipeline) -> R) -> R? {
        lock.lock()
        defer { lock.unlock() }
        return pipeline.map(body)
    }
}

/// Everything a daemon run needs besides the configuration file.
public struct DaemonOptions: Sendable {
    public var configPath: String
    /// nil: software engines, and the board named by board.device for the fpga engine.
    public var engineFactory: EngineFactory?
    public var powerSource: @Sendable () -> PowerSource
    public var notifier: SystemdNotifier
    public init(configPath: String, engineFactory: EngineFactory? = nil,
                powerSource: @escaping @Sendable () -> PowerSource = defaultSoftwarePowerSource,
                notifier: SystemdNotifier = SystemdNotifier()) {
        self.configPath = configPath
        self.engineFactory = engineFactory
        self.powerSource = powerSource
        self.notifier = notifier
    }
}

/// Validates a configuration fully (file, keys, models, engines) without connecting: `--check-config`.
public func checkConfiguration(path: String, engineFactory: EngineFactory? = nil) throws -> DaemonConfig {
    let config = try DaemonConfig.load(path: path)
    let provider = EngineProvider(device: config.engineDevice, upload: false, settings: config.board)
    defer { provider.close() }
    _ = try Pipeline.makeStreams(config, old: [], engineKind: config.engine, factory: engineFactory ?? provider.factory)
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

    /// Events handled per hand-off from the intake thread (and per pipeline lock round); bounds
    /// how long a reload or a tick waits for the lock (64 × ~50 µs).
    static let batchLimit = 64

    public func run() async throws {
        var config = initialConfig
        let notifier = options.notifier
        let (events, continuation) = AsyncStream.makeStream(of: DaemonEvent.self, bufferingPolicy: .unbounded)
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000, 250_000, 1_000_000].map { Duration.microseconds($0) }
        let metrics = DaemonMetrics(factory: factory)

        let provider = EngineProvider(device: config.engineDevice, upload: config.engineUpload, settings: config.board)
        defer { provider.close() }
        let engineFactory = options.engineFactory ?? provider.factory
        let streams = try Pipeline.makeStreams(config, old: [], engineKind: config.engine, factory: engineFactory)
        let energyLog = try EnergyLog(directory: config.logDirectory, maxBytes: config.logMaxBytes)
        let statusTopic = config.topics.expand(config.topics.status, gateway: config.gateway)
        var mqttConfig = config.mqtt
        let offline = "{\"online\":false,\"gateway\":\"\(config.gateway)\",\"version\":\"\(aiotdVersion)\",\"reason\":\"connection lost\"}"
        mqttConfig.will = .init(topic: statusTopic, payload: Array(offline.utf8), qos: .atLeastOnce, retain: true)
        let holder = PipelineHolder()
        let inbound = InboundQueue(capacity: config.queueCapacity)
        // Two connections. Intake (readings, commands, the last will) feeds the bounded queue; when
        // it is full its network thread waits, TCP pushes back, and the broker keeps the backlog in
        // our persistent session. Publishing (forecasts, status, replies) has its own network
        // thread, so forecasts keep flowing, and acknowledgements keep arriving, whatever intake does.
        let mqtt = try MQTTClient(configuration: mqttConfig) { event in
            _ = inbound.push(event)
        }
        var pubConfig = config.mqtt
        pubConfig.clientID = config.mqtt.clientID + "-pub"
        let publisher = try MQTTClient(configuration: pubConfig) { [logger] event in
            if case .connectionLost(let reason) = event { logger.warning("mqtt publisher connection lost; reconnecting", metadata: ["reason": "\(reason)"]) }
        }
        let pipeline = Pipeline(config: config, streams: streams, mqtt: publisher, intake: mqtt, energyLog: energyLog, power: options.powerSource(),
                                metrics: metrics, logger: logger, engineFactory: engineFactory)
        pipeline.version = aiotdVersion
        pipeline.boardPowerSource = { provider.boardPower }
        pipeline.notifier = notifier
        let configPath = options.configPath
        let logger = self.logger
        pipeline.reloadHandler = { [unowned pipeline] in
            Self.reload(pipeline: pipeline, path: configPath, logger: logger, notifier: notifier)
        }
        let energySource = pipeline.power.name
        holder.set(pipeline)

        let readings = config.topics.expand(config.topics.readings, gateway: config.gateway, "sensor", "+")
        let commands = config.topics.expand(config.topics.commands, gateway: config.gateway, "name", "+")
        // The processing thread: a plain thread, because it blocks on the queue.
        let processing = Thread {
            let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            if fd >= 0 { _ = write(fd, "aiotd-process", 13); close(fd) }
            var batch: [MQTTEvent] = []
            batch.reserveCapacity(Self.batchLimit)
            while inbound.popBatch(into: &batch, max: Self.batchLimit) {
                holder.with { p in for e in batch { p.handle(e) } }
                batch.removeAll(keepingCapacity: true)
                inbound.done()
            }
        }
        processing.name = "aiotd-processing"
        processing.start()

        try mqtt.subscribe(readings, qos: config.qos)
        try mqtt.subscribe(commands, qos: .atLeastOnce)
        try publisher.start()
        // Readings spooled at the last shutdown arrived before anything the broker still holds
        // for us: handle them before intake starts.
        Self.replaySpool(ReadingSpool(directory: config.stateDirectory), holder: holder, logger: logger)
        try mqtt.start()

        var metricsServer: MetricsServer? = nil
        if config.metricsPort != 0 {
            metricsServer = try MetricsServer(port: config.metricsPort, registry: registry)
            logger.info("metrics", metadata: ["url": "http://127.0.0.1:\(metricsServer!.port)/metrics"])
        }

        // The ticker drives status, summaries and the watchdog. Its work takes the pipeline lock,
        // so a pipeline stuck on a reading also stops the watchdog pings and systemd restarts us.
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
                                                   "broker": "\(config.mqtt.host):\(config.mqtt.port)", "energy_source": "\(energySource)"])
        var lastStatus = ContinuousClock.now
        var lastSummary = ContinuousClock.now
        var lastReconnects = 0

        await withGracefulShutdownHandler {
            loop: for await event in events {
                switch event {
                case .tick:
                    holder.with { p in
                        if notifier.watchdogInterval != nil { notifier.notify("WATCHDOG=1") }
                        let now = ContinuousClock.now
                        let rc = mqtt.reconnectCount + publisher.reconnectCount
                        if rc > lastReconnects { metrics.reconnects.increment(by: rc - lastReconnects); lastReconnects = rc }
                        if now - lastStatus >= .seconds(p.config.statusIntervalSeconds) {
                            lastStatus = now
                            p.publishStatus(online: true, version: aiotdVersion)
                        }
                        if now - lastSummary >= .seconds(p.config.energySummaryIntervalSeconds) {
                            lastSummary = now
                            p.publishEnergySummary(periodSeconds: p.config.energySummaryIntervalSeconds)
                        }
                    }
                case .reload:
                    _ = holder.with { Self.reload(pipeline: $0, path: configPath, logger: logger, notifier: notifier) }
                case .shutdown:
                    break loop
                }
            }
        } onGracefulShutdown: {
            continuation.yield(.shutdown)
        }

        // Drain without loss. Disconnect intake first: every message libmosquitto read (and so
        // acknowledged) before that is in the queue; everything else stays queued at the broker for
        // our persistent session. Then process the queue, publish, and wait for the broker's
        // acknowledgements on the publishing connection before leaving.
        notifier.notify("STOPPING=1\nSTATUS=draining")
        ticker.cancel()
        hup.cancel()
        mqtt.stop()
        if !inbound.waitIdle(until: Date().addingTimeInterval(3)) { logger.warning("shutdown: readings still being processed after 3 s") }
        // Whatever is still queued was acknowledged to the broker: spool it rather than lose it.
        // The processing thread finishes the batch it holds and stops.
        Self.spool(inbound.close(), to: ReadingSpool(directory: config.stateDirectory), logger: logger)
        holder.with { p in
            p.publishEnergySummary(periodSeconds: p.config.energySummaryIntervalSeconds)
            p.publishStatus(online: false, version: aiotdVersion)
        }
        let acked = await publisher.waitForPublishes(timeout: .seconds(1.5))
        if !acked { logger.warning("shutdown: \(publisher.inflightCount) QoS 1 publishes not acknowledged by the broker before the deadline") }
        publisher.stop()
        continuation.finish()
        holder.with { p in
            p.energyLog.flush()
            logger.notice("aiotd stopped", metadata: ["inferences": "\(p.counters.inferences)", "accepted": "\(p.counters.accepted)", "rejected": "\(p.counters.totalRejected)"])
        }
        metricsServer?.stop()
    }

    /// Shutdown: writes the queued messages to the spool (fsynced). Connection events are dropped.
    static func spool(_ events: [MQTTEvent], to spool: ReadingSpool, logger: Logger) {
        // Arrival times are monotonic; convert to wall-clock so they survive the restart.
        let wallNow = Pipeline.wallClock()
        let monoNow = monotonicNanos()
        var records: [SpoolRecord] = []
        for case .message(let m) in events {
            let age = Double(monoNow &- min(monoNow, m.receivedAtNanos)) * 1e-9
            records.append(SpoolRecord(topic: m.topic, payload: Array(m.payload), arrivedAt: wallNow - age))
        }
        if records.isEmpty { return }
        do {
            try spool.append(records)
            logger.warning("shutdown: spooled \(records.count) unprocessed message(s); they are handled first at the next start", metadata: ["spool": "\(spool.spoolPath)"])
        } catch {
            logger.critical("shutdown: \(records.count) message(s) left unprocessed and could not be spooled", metadata: ["error": "\(error)"])
        }
    }

    /// Start: handles the previous shutdown's spool, if any, before intake resumes.
    static func replaySpool(_ spool: ReadingSpool, holder: PipelineHolder, logger: Logger) {
        do {
            let result = holder.with { p in
                Result { () throws(SpoolError) -> SpoolReplay in
                    try spool.replay({ rec in
                        p.handle(MQTTMessage(topic: rec.topic, payload: rec.payload, qos: 1), arrivedAt: rec.arrivedAt)
                    }, beforeRemoving: { p.energyLog.flush() })
                }
            }
            guard let r = try result?.get(), r.replayed + r.corrupt + r.alreadyDone > 0 else { return }
            logger.notice("spool: replayed \(r.replayed) message(s)", metadata: ["corrupt_lines_skipped": "\(r.corrupt)",
                                                                                  "already_handled": "\(r.alreadyDone)", "directory": "\(spool.directory)"])
            if r.corrupt > 0 { logger.warning("spool: skipped \(r.corrupt) corrupt or truncated line(s)") }
        } catch {
            logger.error("spool: not replayed; it stays in place for the next start", metadata: ["error": "\(error)"])
        }
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
