// The daemon's data path as a straight line, for one message at a time on the processing thread:
// command or reading → StreamProcessor (windows) → engine → ForecastEncoder → Publisher → energy
// log and counters. No MQTT connection, no threads, no clock of its own: tests drive it directly
// with a fake publisher and their own times.
import Logging
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry

final class DaemonCore {
    private(set) var generation: Generation
    var config: DaemonConfig { generation.config }
    var engineKind: EngineKind
    let publisher: any Publisher
    var energyLog: EnergyLog
    let metrics: DaemonMetrics
    var logger: Logger
    var counters = Counters()
    var summary = RollingSummary()
    let commands: TopicPattern
    let forecasts: TopicPattern
    let version: String
    /// Wall-clock seconds since 1970; injected so tests replay any timeline.
    let clock: @Sendable () -> Double
    let startedAt: Double
    /// Reconnections of the MQTT connections (the intake's and the publisher's), for status.
    var reconnects: () -> Int = { 0 }
    /// Publishes the publishing connection's network thread could not hand to libmosquitto
    /// (publishes are handed over without waiting), added to `publish_errors` in status.
    var networkPublishFailures: () -> Int = { 0 }
    /// What the intake connection refused on its own: payloads over the limit (refused in the
    /// network callback before any copy) and subscriptions the broker refused in its SUBACK.
    var intakeHealth: () -> IntakeHealth = { IntakeHealth() }
    /// Reads and builds the configuration for `reload`; the daemon re-reads its file.
    var loadConfig: () throws(ConfigError) -> DaemonConfig
    var lastStatus: Double
    var lastSummary: Double
    var lastEviction: Double
    var lastFsync: Double
    var rejectLog = RejectLog()
    var commandGuard = CommandGuard()
    var out = ProcessorOutput()
    var json = JSONWriter(capacity: 2048)
    /// The forecast topic, rewritten in place per forecast (no allocation per reading).
    var forecastTopic = MQTTTopic(reservingCapacity: 256)
    var output: [Int32]
    /// Forecasts of this batch waiting for their batched inference (Batching.swift).
    var pending = PendingForecasts()
    /// Home Assistant's status topic when intake subscribes to it (HomeAssistant.swift).
    let homeAssistantBirth: [UInt8]?
    /// The energy summary's group label per template.
    var summaryLabels: [String] = []
    /// Online accuracy: publication times, counts, gauges (Accuracy.swift).
    var accuracy = AccuracyState()
    /// Model switches: running trials and the last report per stream (ModelSwitch.swift).
    var switching = SwitchState()
    /// The artifact channel when `[deploy]` is configured (Deployments.swift).
    var deployments: Deployments?

    init(generation: Generation, publisher: any Publisher, energyLog: EnergyLog, metrics: DaemonMetrics, logger: Logger,
         version: String, clock: @escaping @Sendable () -> Double, loadConfig: @escaping () throws(ConfigError) -> DaemonConfig) throws(ConfigError) {
        self.generation = generation
        let c = generation.config
        engineKind = c.engine
        self.publisher = publisher
        self.energyLog = energyLog
        self.metrics = metrics
        self.logger = logger
        self.version = version
        self.clock = clock
        self.loadConfig = loadConfig
        do {
            commands = try TopicPattern(c.topics.expand(c.topics.commands, gateway: c.gateway), placeholder: "{name}")
            forecasts = try TopicPattern(c.topics.expand(c.topics.forecasts, gateway: c.gateway), placeholder: "{sensor}")
        } catch { throw ConfigError("topics: \(error)") }
        homeAssistantBirth = c.announcesToHomeAssistant ? Array(c.homeAssistant.statusTopic.utf8) : nil
        startedAt = clock()
        (lastStatus, lastSummary, lastEviction, lastFsync) = (startedAt, startedAt, startedAt, startedAt)
        output = [Int32](repeating: 0, count: 1)
        sizeOutput()
        switching.trials = Array(repeating: nil, count: generation.processor.templates.count)
    }

    func sizeOutput() {
        summaryLabels = generation.processor.templates.map { $0.pattern.singleName ?? $0.name }
        let h = generation.bindings.map(\.model.shape.horizon).max() ?? 1
        if output.count < h { output = [Int32](repeating: 0, count: h) }
    }

    /// Replaces the running configuration (reload, engine switch). Windows carry over where the
    /// sensor's template reads the same input the same way.
    func install(_ g: Generation, engineKind k: EngineKind) {
        flushPending()  // held windows belong to the running generation's templates
        // Trials of streams that stay as they are continue; the others end keeping the model serving now.
        let trials = carryTrials(into: g, sameEngine: k == engineKind)
        g.processor.adopt(from: generation.processor)
        switching.trials = trials
        generation = g
        engineKind = k
        sizeOutput()
        metrics.sensors.record(g.processor.liveSensors)
    }

    // MARK: messages

    /// One MQTT message: a command or a reading, its forecasts published before returning.
    /// `arrivedAt` (wall-clock seconds) is given when replaying the shutdown spool, so a reading is
    /// judged as of when it arrived.
    func handle(_ message: MQTTMessage, arrivedAt: Double? = nil) {
        take(message, arrivedAt: arrivedAt)
        flushPending()
    }

    /// One message of a batch: its forecasts on the software engine wait in `pending` until
    /// `flushPending` runs them as one batched pass (Batching.swift), at the latest at the end of
    /// the batch the processing thread took from the queue: nothing waits for a batch to fill.
    func take(_ message: MQTTMessage, arrivedAt: Double? = nil) {
        let start = monotonicNanos()
        if let birth = homeAssistantBirth, message.withBuffers({ t, _ in t.elementsEqual(birth) }) {
            flushPending()
            homeAssistantStatus(message)
            return
        }
        if let d = deployments, let (id, part) = message.withBuffers({ t, _ in d.match(t) }) {
            flushPending()
            // Like commands, a spooled deploy message is not re-run: its sender resumes by itself.
            if arrivedAt == nil { handleDeploy(d, id: id, part: part, payload: message) }
            return
        }
        let command: String? = message.withBuffers { topic, _ in commands.match(topic).map { String(decoding: $0, as: UTF8.self) } }
        if let command {
            flushPending()
            // A spooled command is not re-run at the next start: its requester has long given up.
            if arrivedAt == nil { handleCommand(command, payload: message) }
            return
        }
        let now = arrivedAt ?? clock()
        process(message, now: now, checkPending: true)
        if out.deferred {
            // This sensor's previous forecast waits in the batch: record it first, so this
            // message's actual resolves it.
            flushPending()
            process(message, now: now, checkPending: false)
        }
        if out.accepted > 0 {
            counters.accepted += out.accepted
            metrics.accepted.increment(by: out.accepted)
        }
        for r in out.rejected { reject(r, now: now) }
        if let created = out.createdSensor, let t = out.template { announce(sensor: created, template: t) }
        for i in 0..<out.windows.count {
            let w = out.windows[i]
            if switching.active == 0, w.shadowRange == nil, generation.bindings[w.template].engine.kind == .software {
                hold(w, receivedAt: message.receivedAtNanos, startedAt: start)
                if pending.count >= config.batchWindows { flushPending() }
            } else {
                flushPending()
                forecast(w, receivedAt: message.receivedAtNanos, startedAt: start)
            }
        }
        if switching.active > 0 { checkTrials() }
        if !out.resolved.isEmpty || !out.drift.isEmpty { publishAccuracyEvents(now: now) }
    }

    private func process(_ message: MQTTMessage, now: Double, checkPending: Bool) {
        out.reset()
        message.withBuffers { topic, payload in
            if checkPending && !pending.isEmpty {
                generation.processor.process(topic: topic, payload: payload, arrivedAt: now, into: &out, holdsUnrecorded: { pending.holds(slot: $0) })
            } else {
                generation.processor.process(topic: topic, payload: payload, arrivedAt: now, into: &out)
            }
        }
    }

    func reject(_ reason: RejectReason, now: Double) {
        counters.rejected[reason.rawValue] += 1
        metrics.rejected[reason.rawValue].increment()
        // At most one line per reason per 10 s: a flood of bad input must not flood the journal.
        if let n = rejectLog.due(reason, now: now) {
            logger.warning("rejected readings", metadata: ["reason": "\(reason)", "count": "\(n)", "total": "\(counters.rejected[reason.rawValue])"])
        }
    }

    /// One inference for a completed window: infer, encode, publish, log.
    func forecast(_ w: CompletedWindow, receivedAt: UInt64, startedAt: UInt64) {
        var w = w
        // Rolled back earlier in this message: the window as the previous model (serving again) reads it.
        if let r = w.shadowRange, switching.trials[w.template] == nil { (w.range, w.shadowRange) = (r, nil) }
        let b = generation.bindings[w.template]
        let h = b.model.shape.horizon
        let t1 = monotonicNanos()
        let m: Measurement
        do {
            m = try inferOne(b, values: out.values, range: w.range)
        } catch {
            counters.inferenceErrors += 1
            logger.error("inference failed", metadata: ["sensor": "\(printable(w.sensor))", "engine": "\(b.engine.kind.rawValue)", "error": "\(error)"])
            if switching.trials[w.template] != nil, let r = w.shadowRange {
                // A new model that errs is rolled back at once, and the previous one forecasts this window: no step lost.
                rollBack(w.template, .inferenceError, detail: printable("\(error)", limit: 400))
                var again = w
                (again.range, again.shadowRange) = (r, nil)
                forecast(again, receivedAt: receivedAt, startedAt: startedAt)
            }
            return
        }
        let resolved = out.resolved.last { $0.slot == w.slot && $0.targetStep == w.step && $0.horizon == 1 }
        output.withUnsafeBufferPointer { o in
            finish(w, binding: b, output: UnsafeBufferPointer(rebasing: o[0..<h]), measured: m, receivedAt: receivedAt, startedAt: startedAt,
                   inferStart: t1, inferEnd: t1 &+ m.inferNanos, resolved: resolved.map { ($0.error, $0.persistence - $0.actual) })
        }
    }

    /// One window, `values[range]`, into `output[0..<horizon]` on `b`'s engine.
    func inferOne(_ b: Binding, values: [Int32], range: Range<Int>) throws(InferenceError) -> Measurement {
        let h = b.model.shape.horizon
        return try values.withUnsafeBufferPointer { v throws(InferenceError) in
            try output.withUnsafeMutableBufferPointer { o throws(InferenceError) in
                try b.engine.infer(UnsafeBufferPointer(rebasing: v[range]), into: UnsafeMutableBufferPointer(rebasing: o[0..<h]))
            }
        }
    }

    /// Encode, record, publish and log one forecast. `m` is this window's measurement (its share of
    /// a batch); the batch ran from `inferStart` to `inferEnd`. `resolved`: the error of the
    /// one-step forecast this window's last step resolved, and persistence's.
    func finish(_ w: CompletedWindow, binding b: Binding, output: UnsafeBufferPointer<Int32>, measured m: Measurement, receivedAt: UInt64,
                startedAt: UInt64, inferStart t1: UInt64, inferEnd t2: UInt64, resolved: (error: Double, persistence: Double)?) {
        var m = m
        let io = generation.processor.templates[w.template].io
        applyEnergyModel(&m)
        let queueUs = Double(startedAt &- receivedAt) / 1000
        let preUs = Double(t1 &- startedAt) / 1000
        let inferUs = Double(m.inferNanos) / 1000
        let late = w.late
        if late { counters.lateForecasts += 1 }
        ForecastEncoder.encode(into: &json, sensor: w.sensor, windowEnd: w.windowEnd, output: output, io: io,
                               model: b.model.identity, engine: m.ranOn, latencyMicros: Double(t2 &- receivedAt) / 1000,
                               energy: m.energyMicrojoules, sequence: w.sequence, late: late)
        // Kept until the actuals of its target steps arrive (online accuracy).
        generation.processor.recordForecast(w, output: output, into: &out)
        if w.shadowRange != nil { shadowForecast(w) }
        let t3 = monotonicNanos()
        do {
            try forecastTopic.set(prefix: forecasts.prefix, value: w.sensor, suffix: forecasts.suffix)
            try publisher.publish(forecastTopic, payload: json.bytes, qos: config.qos, retain: false)
        } catch {
            counters.publishErrors += 1
            metrics.publishErrors.increment()
            logger.warning("forecast publish failed", metadata: ["sensor": "\(printable(w.sensor))", "error": "\(printable("\(error)", limit: 400))"])
        }
        let t4 = monotonicNanos()
        counters.inferences += 1
        metrics.inferences[m.ranOn]!.increment()
        metrics.latency.recordNanoseconds(Int64(t4 &- receivedAt))
        metrics.inferenceLatency.recordNanoseconds(Int64(m.inferNanos))
        if let e = m.energyMicrojoules { metrics.energy.increment(by: e) }
        var record = InferenceRecord(time: clock(), sensor: w.sensor, model: b.model.identity, engine: m.ranOn, sequence: w.sequence,
                                     windowEnd: w.windowEnd, queueMicros: queueUs, preprocessMicros: preUs, inferenceMicros: inferUs,
                                     publishMicros: Double(t4 &- t3) / 1000, energyMicrojoules: m.energyMicrojoules,
                                     energySource: m.energySource, sourceWatts: m.sourceWatts,
                                     forecastError: resolved?.error, persistenceError: resolved?.persistence)
        record.energyModel = m.energyModel
        do { try energyLog.append(record) } catch {
            counters.logErrors += 1
            if counters.logErrors == 1 || counters.logErrors % 1000 == 0 { logger.error("energy log", metadata: ["error": "\(error)", "errors": "\(counters.logErrors)"]) }
        }
        // Summaries group by stream (a one-sensor stanza's group is its sensor): per-sensor groups
        // would cost a fleet kilobytes per sensor and a megabyte-sized summary message.
        summary.add(sensor: summaryLabels[w.template], engine: m.ranOn, totalMicros: record.totalMicros, energy: m.energyMicrojoules)
    }
}

/// Rate limit for rejection log lines: the count since the last line, at most once per 10 s per reason.
struct RejectLog {
    var last = [Double](repeating: -.infinity, count: RejectReason.allCases.count)
    var since = [Int](repeating: 0, count: RejectReason.allCases.count)
    mutating func due(_ r: RejectReason, now: Double) -> Int? {
        since[r.rawValue] += 1
        guard now - last[r.rawValue] >= 10 else { return nil }
        last[r.rawValue] = now
        defer { since[r.rawValue] = 0 }
        return since[r.rawValue]
    }
}
