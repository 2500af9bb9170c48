// aiotd's wiring: build everything that can fail (config, models, engines, energy log, metrics
// port, SIGHUP handler) before intake starts, then run the services (Services.swift) as a group.
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
import AIOTDeploy
import AIOTBoard

public let aiotdVersion = "0.1.0"

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
    let store = ModelStore(factory: engineFactory ?? provider.factory, cpu: NoPowerSource(), board: { nil })
    _ = try Generation.build(config, store: store, engineKind: config.engine)
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
        // The active deployed model of a stream serves in place of the file its [[stream]] names.
        let config = Deployments.applyActive(initialConfig, logger: logger)
        let (notifier, logger, configPath) = (options.notifier, self.logger, options.configPath)
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000, 250_000, 1_000_000].map { Duration.microseconds($0) }
        let metrics = DaemonMetrics(factory: factory)

        let provider = EngineProvider(device: config.engineDevice, upload: config.engineUpload, settings: config.board)
        defer { provider.close() }
        if let s = config.deploy, config.engine == .fpga, options.engineFactory == nil, let slot = Deployments.activeBoardSlot(s) {
            // The deployed bitstream runs, not whatever the board loaded at power-on.
            do {
                let r = try provider.withBoardLink { try $0.boot(slot: slot) }
                logger.notice("booted the deployed bitstream", metadata: ["board_slot": "\(slot)", "done": "\(r.done)", "fallback": "\(r.fallback)"])
            } catch { logger.error("could not boot the deployed bitstream", metadata: ["board_slot": "\(slot)", "error": "\(error)"]) }
        }
        let store = ModelStore(factory: options.engineFactory ?? provider.factory, cpu: options.powerSource(), board: { provider.boardPower })
        let generation = try Generation.build(config, store: store, engineKind: config.engine)
        let energyLog = try EnergyLog(directory: config.logDirectory, maxBytes: config.logMaxBytes)
        // Bound before intake: a port already taken is a start error with nothing acknowledged yet.
        let metricsServer = config.metricsPort != 0 ? try MetricsServer(port: config.metricsPort, registry: registry) : nil
        if let metricsServer { logger.info("metrics", metadata: ["url": "http://127.0.0.1:\(metricsServer.port)/metrics"]) }
        // The SIGHUP handler exists before READY=1 (systemd may send a reload right after it).
        let hup = await UnixSignalsSequence(trapping: .sighup)

        // Two connections. Intake (readings, commands, the last will) feeds the bounded queue; when
        // it is full its network thread waits, TCP pushes back, and the broker keeps the backlog in
        // our persistent session. Publishing (forecasts, status, replies) has its own network
        // thread, so forecasts keep flowing, and acknowledgements keep arriving, whatever intake does.
        let statusTopic = config.topics.expand(config.topics.status, gateway: config.gateway)
        var intakeConfig = config.mqtt
        // MQTT v5's Maximum Packet Size tells the broker not to send us anything larger, so a
        // hostile 200 MB publish never reaches libmosquitto's buffers (docs/reliability.md).
        intakeConfig.maxPayloadBytes = config.maxPayloadBytes
        let offline = "{\"online\":false,\"gateway\":\"\(config.gateway)\",\"version\":\"\(aiotdVersion)\",\"reason\":\"connection lost\"}"
        intakeConfig.will = .init(topic: statusTopic, payload: Array(offline.utf8), qos: .atLeastOnce, retain: true)
        var pubConfig = config.mqtt
        pubConfig.clientID = config.mqtt.clientID + "-pub"
        let publisher = try MQTTClient(configuration: pubConfig) { event in
            switch event {
            case .connectionLost(let reason):
                logger.warning("mqtt publisher connection lost; reconnecting", metadata: ["reason": "\(reason)"])
            case .publishFailed(let topic, let reason):
                logger.warning("publish failed", metadata: ["topic": "\(topic)", "reason": "\(reason)"])
                metrics.publishErrors.increment()
            default: break
            }
        }
        let core = try DaemonCore(generation: generation, publisher: publisher, energyLog: energyLog, metrics: metrics, logger: logger,
                                  version: aiotdVersion, clock: { wallClock() }, loadConfig: { () throws(ConfigError) in Deployments.applyActive(try DaemonConfig.load(path: configPath), logger: logger) })
        if let s = config.deploy {
            // AIOTD_DEPLOY_KILL_AT: a test hook (docs/deploy.md), read once here.
            let killAt = ProcessInfo.processInfo.environment["AIOTD_DEPLOY_KILL_AT"].flatMap(DeployPoint.init(rawValue:))
            let d = Deployments(settings: s, gateway: config.gateway, metrics: factory, killAt: killAt)
            if config.engine == .fpga && options.engineFactory == nil {
                d.flashBitstream = { bytes, slot, running in try provider.withBoardLink { try Flasher(link: $0).deploy(bytes, slots: [slot], running: running) } }
            }
            core.deployments = d
        }
        let holder = CoreHolder(core)
        let inbound = InboundQueue(capacity: config.queueCapacity, maxBytes: config.queueBytes)
        // The processing thread gives each message's buffer back: intake then copies the next
        // message into it instead of allocating (docs/performance.md, allocations per reading).
        let buffers = MQTTBufferPool()
        let intake = try MQTTClient(configuration: intakeConfig, pool: buffers) { event in _ = inbound.push(event) }
        core.reconnects = { intake.reconnectCount + publisher.reconnectCount }
        core.networkPublishFailures = { publisher.failedPublishCount }
        let homeAssistant = config.announcesToHomeAssistant ? [config.homeAssistant.statusTopic] : []
        let deployFilter = core.deployments.map { [$0.filter] } ?? []
        let filters = [generation.processor.readings.filter, core.commands.filter] + homeAssistant + deployFilter
        core.intakeHealth = {
            var h = IntakeHealth(oversizedRefused: intake.oversizedCount)
            for f in filters {
                if case .refused(let code) = intake.subscriptionState(f) {
                    h.refusedSubscription = "\(f) (SUBACK reason code 0x\(String(code, radix: 16)))"
                    break
                }
            }
            return h
        }
        let processing = ProcessingService(holder: holder, inbound: inbound, buffers: buffers, publisher: publisher,
                                           spool: ReadingSpool(directory: config.stateDirectory), notifier: notifier, logger: logger)
        processing.startThread()
        do {
            try intake.subscribe(generation.processor.readings.filter, qos: config.qos)
            try intake.subscribe(core.commands.filter, qos: .atLeastOnce)
            for f in homeAssistant + deployFilter { try intake.subscribe(f, qos: .atLeastOnce) }
            try publisher.start()
            // Readings spooled at the last shutdown arrived before anything the broker still holds
            // for us: handle them before intake starts.
            processing.replaySpool()
            try intake.start()
        } catch {
            // Whatever intake took before the failure was acknowledged: spool it, then fail.
            inbound.beginDraining()
            intake.stop()
            await processing.drain()
            metricsServer?.stop()
            throw error
        }

        var tick = Duration.seconds(1)
        if let w = notifier.watchdogInterval, w / 2 < tick { tick = w / 2 }
        notifier.notify("READY=1\nSTATUS=serving \(config.streams.count) stream(s), waiting for the broker")
        logger.notice("aiotd started", metadata: ["version": "\(aiotdVersion)", "streams": "\(config.streams.map(\.sensor))",
                                                   "broker": "\(config.mqtt.endpoint)", "energy_source": "\(store.cpu.name)"])
        // Shutdown runs in reverse: intake, metrics, reload, ticker, then processing drains.
        let services: [any Service] = [
            processing,
            TickerService(holder: holder, notifier: notifier, interval: tick, reconnects: { intake.reconnectCount + publisher.reconnectCount },
                          metricsReconnects: { metrics.reconnects.increment(by: $0) }),
            ReloadService(holder: holder, signals: hup, notifier: notifier),
            MetricsService(server: metricsServer),
            IntakeService(client: intake, inbound: inbound),
        ]
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) }, logger: logger))
        try await group.run()
    }
}
