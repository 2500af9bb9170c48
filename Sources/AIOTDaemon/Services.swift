// The daemon as a swift-service-lifecycle group of small services. Graceful shutdown runs in
// reverse order of the list in Daemon.run: intake stops first (everything it acknowledged is in
// the queue), then metrics, reload and the ticker, and processing drains last.
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import AIOTMQTT
import AIOTTelemetry

/// The core behind a lock: readings are handled on the processing thread; ticks, reloads and
/// shutdown take the same lock from their services.
final class CoreHolder: @unchecked Sendable {
    // @unchecked: `core` is only touched under `lock`.
    private let lock = NSLock()
    private let core: DaemonCore
    init(_ core: DaemonCore) { self.core = core }
    func with<R>(_ body: (DaemonCore) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(core)
    }
}

/// Readings and commands from the broker into the bounded queue (started before the group runs,
/// so READY=1 means subscribed). At shutdown it disconnects first.
struct IntakeService: Service {
    let client: MQTTClient
    let inbound: InboundQueue
    func run() async throws {
        try? await gracefulShutdown()
        // A network thread waiting on a full queue would hold up the disconnect (and the drain
        // budget behind it): from here on its hand-offs do not wait.
        inbound.beginDraining()
        client.stop()
    }
}

/// The processing thread: a plain thread, because it blocks on the queue. At shutdown it drains
/// what intake acknowledged, spools what it cannot process in time, says offline, and waits for
/// the broker's acknowledgements of what it published.
final class ProcessingService: Service, @unchecked Sendable {
    // @unchecked: immutable after init; the holder, queue and clients synchronize themselves.
    let holder: CoreHolder
    let inbound: InboundQueue
    /// Handled messages go back here for intake to reuse (nil: not recycled).
    let buffers: MQTTBufferPool?
    let publisher: any PublishingConnection
    let spool: ReadingSpool
    let notifier: SystemdNotifier
    let logger: Logger
    /// Events handled per hand-off (and per lock round); bounds how long a tick or a reload waits.
    static let batchLimit = 64

    init(holder: CoreHolder, inbound: InboundQueue, buffers: MQTTBufferPool? = nil, publisher: any PublishingConnection, spool: ReadingSpool,
         notifier: SystemdNotifier, logger: Logger) {
        self.holder = holder
        self.inbound = inbound
        self.buffers = buffers
        self.publisher = publisher
        self.spool = spool
        self.notifier = notifier
        self.logger = logger
    }

    func startThread() {
        let (holder, inbound, buffers, notifier, logger) = (holder, inbound, buffers, notifier, logger)
        let t = Thread {
            let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            if fd >= 0 { _ = write(fd, "aiotd-process", 13); close(fd) }
            var batch: [MQTTEvent] = []
            batch.reserveCapacity(Self.batchLimit)
            while inbound.popBatch(into: &batch, max: Self.batchLimit) {
                holder.with { core in
                    for e in batch {
                        switch e {
                        case .message(let m): core.take(m)
                        case .oversized: core.reject(.oversized, now: wallClock())
                        case .publishFailed: break  // intake publishes nothing
                        case .connected(let sessionPresent):
                            logger.notice("mqtt connected", metadata: ["session_present": "\(sessionPresent)"])
                            core.publishStatus(online: true)
                            notifier.notify("STATUS=serving \(core.config.streams.count) stream(s), connected to \(core.config.mqtt.endpoint)")
                        case .connectionLost(let reason):
                            logger.warning("mqtt connection lost; reconnecting with backoff", metadata: ["reason": "\(reason)"])
                            notifier.notify("STATUS=broker unreachable (\(reason)); retrying")
                        }
                    }
                    // The batch's forecasts, one batched pass per model (Batching.swift).
                    core.flushPending()
                }
                if let buffers {
                    for e in batch { if case .message(let m) = e { buffers.give(m) } }
                }
                batch.removeAll(keepingCapacity: true)
                inbound.done()
            }
        }
        t.name = "aiotd-processing"
        t.start()
    }

    func run() async throws {
        try? await gracefulShutdown()
        await drain()
    }

    /// Also the path of every error exit after intake started: nothing acknowledged is lost.
    func drain() async {
        notifier.notify("STOPPING=1\nSTATUS=draining")
        if !inbound.waitIdle(until: Date().addingTimeInterval(3)) { logger.warning("shutdown: readings still being processed after 3 s") }
        // Whatever is still queued was acknowledged to the broker: spool it rather than lose it.
        let limit = holder.with { $0.config.maxPayloadBytes }
        Self.spool(inbound.close(), to: spool, maxPayloadBytes: limit, logger: logger)
        holder.with { core in
            core.publishEnergySummary()
            core.publishStatus(online: false)
        }
        if !(await publisher.waitForPublishes(timeout: .seconds(1.5))) {
            logger.warning("shutdown: \(publisher.inflightCount) QoS 1 publishes not acknowledged by the broker before the deadline")
        }
        publisher.stop()
        holder.with { core in
            core.energyLog.flush()
            logger.notice("aiotd stopped", metadata: ["inferences": "\(core.counters.inferences)", "accepted": "\(core.counters.accepted)",
                                                      "rejected": "\(core.counters.totalRejected)",
                                                      "batched": "\(core.counters.batchedWindows) windows in \(core.counters.batchedPasses) passes"])
        }
    }

    /// Writes queued messages to the spool (fsynced). Connection events are dropped.
    static func spool(_ events: [MQTTEvent], to spool: ReadingSpool, maxPayloadBytes: Int = 1 << 20, logger: Logger) {
        // Arrival times are monotonic; convert to wall-clock so they survive the restart.
        let wallNow = wallClock()
        let monoNow = monotonicNanos()
        var records: [SpoolRecord] = []
        for case .message(let m) in events {
            let age = Double(monoNow &- min(monoNow, m.receivedAtNanos)) * 1e-9
            records.append(SpoolRecord(topic: m.topic, payload: Array(m.payload), arrivedAt: wallNow - age))
        }
        if records.isEmpty { return }
        do {
            let refused = try spool.append(records, maxPayloadBytes: maxPayloadBytes)
            if refused > 0 { logger.warning("shutdown: \(refused) message(s) over limits.max_payload_bytes not spooled (they would be rejected)") }
            logger.warning("shutdown: spooled \(records.count) unprocessed message(s); they are handled first at the next start", metadata: ["spool": "\(spool.spoolPath)"])
        } catch {
            logger.critical("shutdown: \(records.count) message(s) left unprocessed and could not be spooled", metadata: ["error": "\(error)"])
        }
    }

    /// Start: handles the previous shutdown's spool, if any, before intake resumes.
    func replaySpool() {
        let (spool, logger) = (spool, logger)
        let result = holder.with { core in
            Result { () throws(SpoolError) -> SpoolReplay in
                try spool.replay({ rec in
                    core.handle(MQTTMessage(topic: rec.topic, payload: rec.payload, qos: 1), arrivedAt: rec.arrivedAt)
                }, beforeRemoving: { core.energyLog.flush() })
            }
        }
        do {
            let r = try result.get()
            guard r.replayed + r.corrupt + r.alreadyDone > 0 else { return }
            logger.notice("spool: replayed \(r.replayed) message(s)", metadata: ["corrupt_lines_skipped": "\(r.corrupt)",
                                                                                  "already_handled": "\(r.alreadyDone)", "directory": "\(spool.directory)"])
            if r.corrupt > 0 { logger.warning("spool: skipped \(r.corrupt) corrupt or truncated line(s)") }
        } catch {
            logger.error("spool: not replayed; it stays in place for the next start", metadata: ["error": "\(error)"])
        }
    }
}

/// Status, energy summaries, idle eviction and the watchdog, about once a second. Its work takes
/// the core's lock, so a core stuck on a reading also stops the watchdog pings and systemd restarts us.
struct TickerService: Service {
    let holder: CoreHolder
    let notifier: SystemdNotifier
    let interval: Duration
    let reconnects: @Sendable () -> Int
    let metricsReconnects: @Sendable (Int) -> Void

    func run() async throws {
        var seen = 0
        var refusedReported: String?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            holder.with { core in
                if notifier.watchdogInterval != nil { notifier.notify("WATCHDOG=1") }
                let rc = reconnects()
                if rc > seen { metricsReconnects(rc - seen); seen = rc }
                core.tick(now: wallClock())
                // A refused subscription means nothing arrives on it: say so, never "serving".
                let refused = core.intakeHealth().refusedSubscription
                if let refused, refused != refusedReported {
                    core.logger.error("the broker refused a subscription; check its ACL for this client", metadata: ["subscription": "\(refused)"])
                    notifier.notify("STATUS=not serving: the broker refused the subscription \(refused); check its ACL")
                }
                refusedReported = refused
            }
        }
    }
}

/// SIGHUP: reload the configuration file. The signal sequence is created before READY=1, so a
/// SIGHUP right after readiness is handled, not fatal.
struct ReloadService: Service {
    let holder: CoreHolder
    let signals: UnixSignalsSequence
    let notifier: SystemdNotifier

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.notify("RELOADING=1")
            let why = holder.with { $0.reload() }
            notifier.notify("READY=1\nSTATUS=" + (why.map { "reload refused: \($0)" } ?? "reloaded"))
        }
    }
}

/// The Prometheus endpoint, bound before intake starts; closed at shutdown.
struct MetricsService: Service {
    let server: MetricsServer?
    func run() async throws {
        try? await gracefulShutdown()
        server?.stop()
    }
}

func wallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
