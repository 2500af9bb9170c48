// The per-reading and per-inference path: topic routing, payload parsing, windows, inference,
// forecast publishing, the energy log and counters. Owned by the daemon's single processing task.
import Foundation
import Logging
import Metrics
import AIOTModel
import AIOTBoard
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry

/// Makes the engine for a model: the software engine, or the FPGA when the board is present.
public typealias EngineFactory = @Sendable (LoadedModel, EngineKind) throws -> any InferenceEngine

/// One configured stream at run time. Buffers are allocated once here.
final class StreamRuntime {
    let config: StreamConfig
    let model: LoadedModel
    var engine: any InferenceEngine
    let window: StreamWindow
    let forecastTopic: MQTTTopic
    var sequence: UInt64 = 0
    let input: UnsafeMutableBufferPointer<Int32>
    let output: UnsafeMutableBufferPointer<Int32>
    let forecastTimes: [Double]

    init(config: StreamConfig, model: LoadedModel, engine: any InferenceEngine, forecastTopic: MQTTTopic) {
        self.config = config
        self.model = model
        self.engine = engine
        var io = model.io
        if let p = config.periodSeconds { io.samplingPeriod = p }
        window = StreamWindow(io: io, policy: config.policy)
        self.forecastTopic = forecastTopic
        input = .allocate(capacity: model.shape.inputCount)
        input.initialize(repeating: 0)
        output = .allocate(capacity: model.shape.horizon)
        output.initialize(repeating: 0)
        forecastTimes = (1...model.shape.horizon).map { Double($0) * io.samplingPeriod }
    }
    deinit {
        input.deallocate()
        output.deallocate()
    }

    /// Same stream, same model, same policy: windows carry over a reload.
    func compatible(with c: StreamConfig, model m: LoadedModel) -> Bool {
        c == config && m.identity == model.identity
    }
}

/// Where a reading topic's sensor goes: a stream, and which feature a bare value feeds.
struct Route {
    var sensor: [UInt8]
    var stream: Int
    var names: FeatureNames
}

/// Rejection and acceptance counts, also exported to Prometheus.
struct Counters {
    var accepted = 0
    var rejected = [Int](repeating: 0, count: RejectReason.allCases.count)
    var inferences = 0
    var inferenceErrors = 0
    var publishErrors = 0
    var logErrors = 0
    var commands = 0
    var totalRejected: Int { rejected.reduce(0, +) }
}

/// Metric handles, created once per daemon with its own factory (no global bootstrap).
struct DaemonMetrics {
    let accepted: Counter
    let rejected: [Counter]
    let inferences: [EngineKind: Counter]
    let latency: Metrics.Timer
    let inferenceLatency: Metrics.Timer
    let energy: FloatingPointCounter
    let reconnects: Counter
    let publishErrors: Counter

    init(factory: MetricsFactory) {
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
    }
}

final class Pipeline {
    var config: DaemonConfig
    var streams: [StreamRuntime]
    var routes: [Route]
    var parser: PayloadParser
    let readingsPrefix: [UInt8], readingsSuffix: [UInt8]
    let commandsPrefix: [UInt8], commandsSuffix: [UInt8]
    /// The publishing connection.
    let mqtt: MQTTClient
    /// The intake connection (readings, commands); only its counters are read here.
    let intake: MQTTClient
    var energyLog: EnergyLog
    let power: PowerSource
    let metrics: DaemonMetrics
    var logger: Logger
    var counters = Counters()
    var summary = RollingSummary()
    var json = JSONWriter(capacity: 2048)
    var engineKind: EngineKind
    let engineFactory: EngineFactory
    let startedAt = Date()
    var lastRejectLog = [Double](repeating: 0, count: RejectReason.allCases.count)
    var rejectsSinceLog = [Int](repeating: 0, count: RejectReason.allCases.count)

    init(config: DaemonConfig, streams: [StreamRuntime], mqtt: MQTTClient, intake: MQTTClient, energyLog: EnergyLog, power: PowerSource,
         metrics: DaemonMetrics, logger: Logger, engineFactory: @escaping EngineFactory) {
        self.config = config
        self.streams = streams
        self.mqtt = mqtt
        self.intake = intake
        self.energyLog = energyLog
        self.power = power
        self.metrics = metrics
        self.logger = logger
        self.engineFactory = engineFactory
        engineKind = config.engine
        parser = PayloadParser(maxPayloadBytes: config.maxPayloadBytes)
        (readingsPrefix, readingsSuffix) = Self.split(config.topics.expand(config.topics.readings, gateway: config.gateway), "{sensor}")
        (commandsPrefix, commandsSuffix) = Self.split(config.topics.expand(config.topics.commands, gateway: config.gateway), "{name}")
        routes = Self.makeRoutes(streams)
    }

    static func split(_ template: String, _ key: String) -> ([UInt8], [UInt8]) {
        let r = template.range(of: key)!
        return (Array(template[..<r.lowerBound].utf8), Array(template[r.upperBound...].utf8))
    }

    static func makeRoutes(_ streams: [StreamRuntime]) -> [Route] {
        var routes: [Route] = []
        for (i, s) in streams.enumerated() {
            let names = s.model.io.features.map(\.name)
            routes.append(Route(sensor: Array(s.config.sensor.utf8), stream: i, names: FeatureNames(names, defaultFeature: s.model.io.targetFeature)))
            for (feature, sensor) in s.config.featureTopics.sorted(by: { $0.key < $1.key }) {
                guard let f = names.firstIndex(of: feature) else { continue }
                routes.append(Route(sensor: Array(sensor.utf8), stream: i, names: FeatureNames(names, defaultFeature: f)))
            }
        }
        return routes
    }

    /// Builds stream runtimes for a config, reusing `old` streams that did not change.
    static func makeStreams(_ config: DaemonConfig, old: [StreamRuntime], engineKind: EngineKind, factory: EngineFactory) throws -> [StreamRuntime] {
        var out: [StreamRuntime] = []
        for (i, sc) in config.streams.enumerated() {
            let model: LoadedModel
            do { model = try LoadedModel(contentsOf: sc.model) } catch { throw ConfigError("stream[\(i)].model: \(error)") }
            for (feature, _) in sc.featureTopics where !model.io.features.contains(where: { $0.name == feature }) {
                throw ConfigError("stream[\(i)].feature_topics.\(feature): the model has no feature \"\(feature)\" (it has \(model.io.features.map(\.name).joined(separator: ", ")))")
            }
            if let p = sc.periodSeconds, p != model.io.samplingPeriod {
                // Allowed (a model may be reused at another rate), but worth saying once.
            }
            if let reuse = old.first(where: { $0.compatible(with: sc, model: model) }) {
                out.append(reuse)
                continue
            }
            let engine: any InferenceEngine
            do { engine = try factory(model, engineKind) } catch { throw ConfigError("stream[\(i)].model: the \(engineKind.rawValue) engine cannot run \(sc.model): \(error)") }
            let topic: MQTTTopic
            do { topic = try MQTTTopic(config.topics.expand(config.topics.forecasts, gateway: config.gateway, "sensor", sc.sensor)) } catch { throw ConfigError("topics.forecasts: \(error)") }
            out.append(StreamRuntime(config: sc, model: model, engine: engine, forecastTopic: topic))
        }
        return out
    }

    // MARK: hot path

    @inline(__always)
    static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    var notifier = SystemdNotifier(environment: [:])

    /// Handles one MQTT event on the network thread.
    func handle(_ event: MQTTEvent) {
        switch event {
        case .message(let m):
            handle(m)
        case .connected(let sessionPresent):
            logger.notice("mqtt connected", metadata: ["session_present": "\(sessionPresent)"])
            publishStatus(online: true, version: version)
            notifier.notify("STATUS=serving \(streams.count) stream(s), connected to \(config.mqtt.host):\(config.mqtt.port)")
        case .connectionLost(let reason):
            logger.warning("mqtt connection lost; reconnecting with backoff", metadata: ["reason": "\(reason)"])
            notifier.notify("STATUS=broker unreachable (\(reason)); retrying")
        }
    }

    /// Handles one MQTT message: a reading or a command. `arrivedAt` (wall-clock seconds) is given
    /// only when replaying the shutdown spool, so a reading is judged as of when it arrived.
    func handle(_ message: MQTTMessage, arrivedAt: Double? = nil) {
        let startNanos = monotonicNanos()
        let isCommand: Bool = message.withBuffers { topic, _ in
            Self.match(topic, commandsPrefix, commandsSuffix) != nil
        }
        if isCommand { handleCommand(message); return }
        let now = arrivedAt ?? Self.wallClock()
        message.withBuffers { topic, payload in
            guard let sensor = Self.match(topic, readingsPrefix, readingsSuffix), let r = route(sensor) else {
                reject(.unknownSensor, count: 1)
                return
            }
            let stream = streams[routes[r].stream]
            if let reason = parser.parse(payload, features: routes[r].names, now: now) {
                reject(reason, count: 1)
                return
            }
            for i in 0..<parser.readings.count {
                let reading = parser.readings[i]
                let result = stream.window.ingest(reading, now: now) { step in
                    infer(stream, step: step, receivedAt: message.receivedAtNanos, startedAt: startNanos)
                }
                if let result { reject(result, count: 1) } else {
                    counters.accepted += 1
                    metrics.accepted.increment()
                }
            }
        }
    }

    @inline(__always)
    static func match(_ topic: UnsafeBufferPointer<UInt8>, _ prefix: [UInt8], _ suffix: [UInt8]) -> UnsafeBufferPointer<UInt8>? {
        let n = topic.count
        guard n > prefix.count + suffix.count else { return nil }
        for i in 0..<prefix.count where topic[i] != prefix[i] { return nil }
        for i in 0..<suffix.count where topic[n - suffix.count + i] != suffix[i] { return nil }
        let mid = UnsafeBufferPointer(rebasing: topic[prefix.count..<(n - suffix.count)])
        if mid.contains(UInt8(ascii: "/")) { return nil }
        return mid
    }

    @inline(__always)
    func route(_ sensor: UnsafeBufferPointer<UInt8>) -> Int? {
        for i in 0..<routes.count where routes[i].sensor.count == sensor.count {
            let same = routes[i].sensor.withUnsafeBufferPointer { memcmp($0.baseAddress!, sensor.baseAddress!, sensor.count) == 0 }
            if same { return i }
        }
        return nil
    }

    func reject(_ reason: RejectReason, count: Int) {
        counters.rejected[reason.rawValue] += count
        metrics.rejected[reason.rawValue].increment(by: count)
        rejectsSinceLog[reason.rawValue] += count
        // At most one line per reason per 10 s: a flood of bad input must not flood the journal.
        let now = Self.wallClock()
        if now - lastRejectLog[reason.rawValue] >= 10 {
            logger.warning("rejected readings", metadata: ["reason": "\(reason)", "count": "\(rejectsSinceLog[reason.rawValue])", "total": "\(counters.rejected[reason.rawValue])"])
            lastRejectLog[reason.rawValue] = now
            rejectsSinceLog[reason.rawValue] = 0
        }
    }

    /// One inference for a completed step: copy window, infer, publish, log.
    func infer(_ s: StreamRuntime, step: Int64, receivedAt: UInt64, startedAt: UInt64) {
        s.window.copyWindow(into: s.input)
        // The board's energy counter for an FPGA engine; its window closes here, between inferences.
        let fpga = s.engine as? FPGAEngine
        let board = fpga != nil ? boardPower() : nil
        board?.closeWindowIfDue()
        let b0 = board?.energyJoules()
        let e0 = power.energyMicrojoules()
        let t1 = monotonicNanos()
        do {
            try s.engine.infer(UnsafeBufferPointer(s.input), into: s.output)
        } catch {
            counters.inferenceErrors += 1
            logger.error("inference failed", metadata: ["sensor": "\(s.config.sensor)", "engine": "\(s.engine.kind.rawValue)", "error": "\(error)"])
            return
        }
        let t2 = monotonicNanos()
        let e1 = power.energyMicrojoules()
        let b1 = board?.energyJoules()
        var energy: Double? = (e0 != nil && e1 != nil && e1! >= e0!) ? Double(e1! - e0!) : nil
        let windowEnd = s.window.time(of: step)
        s.sequence += 1
        let queueUs = Double(startedAt &- receivedAt) / 1000
        let preUs = Double(t1 &- startedAt) / 1000
        let inferUs = Double(t2 &- t1) / 1000
        // The FPGA engine may have answered from its software fallback: report what really ran.
        let kind = fpga?.lastEngine ?? s.engine.kind
        // An FPGA inference's energy is the FPGA rails' (PAC1934); the CPU's package counter says
        // nothing about them. No board figure (no window closed yet, board gone): null, never invented.
        var energySource = power.name
        var sourceWatts: Double? = nil
        if kind == .fpga {
            if let board, let b0, let b1, b1 >= b0 {
                energy = (b1 - b0) * 1e6; energySource = board.name; sourceWatts = board.watts
            } else { energy = nil; energySource = "none" }
        }

        json.reset()
        json.raw("{\"sensor\":"); json.string(s.config.sensor)
        json.raw(",\"t\":"); json.double(windowEnd)
        json.raw(",\"forecast_t\":[")
        for p in 0..<s.output.count { if p > 0 { json.raw(",") }; json.double(windowEnd + s.forecastTimes[p]) }
        json.raw("],\"forecast\":[")
        for p in 0..<s.output.count { if p > 0 { json.raw(",") }; json.double(s.window.io.dequantize(s.output[p])) }
        json.raw("],\"q\":[")
        for p in 0..<s.output.count { if p > 0 { json.raw(",") }; json.int(s.output[p]) }
        json.raw("],\"unit\":"); json.string(s.window.io.targetUnit)
        json.raw(",\"model\":"); json.string(s.model.identity)
        json.raw(",\"engine\":"); json.string(kind.rawValue)
        json.raw(",\"latency_us\":"); json.fixed(queueUs + preUs + inferUs, decimals: 1)
        json.raw(",\"energy_uj\":"); if let energy { json.fixed(energy, decimals: 1) } else { json.raw("null") }
        json.raw(",\"seq\":"); json.int(s.sequence)
        json.raw("}")
        let t3 = monotonicNanos()
        do {
            try mqtt.publish(s.forecastTopic, payload: json.bytes, qos: config.qos)
        } catch {
            counters.publishErrors += 1
            metrics.publishErrors.increment()
            logger.warning("forecast publish failed", metadata: ["sensor": "\(s.config.sensor)", "error": "\(error)"])
        }
        let t4 = monotonicNanos()
        let pubUs = Double(t4 &- t3) / 1000
        counters.inferences += 1
        metrics.inferences[kind]!.increment()
        metrics.latency.recordNanoseconds(Int64(t4 &- receivedAt))
        metrics.inferenceLatency.recordNanoseconds(Int64(t2 &- t1))
        if let energy { metrics.energy.increment(by: energy) }
        let record = InferenceRecord(time: Self.wallClock(), sensor: s.config.sensor, model: s.model.identity, engine: kind, sequence: s.sequence,
                                     windowEnd: windowEnd, queueMicros: queueUs, preprocessMicros: preUs, inferenceMicros: inferUs,
                                     publishMicros: pubUs, energyMicrojoules: energy, energySource: energySource,
                                     sourceWatts: sourceWatts)
        do { try energyLog.append(record) } catch {
            counters.logErrors += 1
            if counters.logErrors == 1 || counters.logErrors % 1000 == 0 { logger.error("energy log", metadata: ["error": "\(error)", "errors": "\(counters.logErrors)"]) }
        }
        summary.add(sensor: s.config.sensor, engine: kind, totalMicros: record.totalMicros, energy: energy)
    }

    // MARK: status, summaries, commands

    func statusJSON(online: Bool, version: String) -> [UInt8] {
        var rejected: [String: Int] = [:]
        for r in RejectReason.allCases { rejected[r.description] = counters.rejected[r.rawValue] }
        let obj: [String: Any] = [
            "online": online,
            "gateway": config.gateway,
            "version": version,
            "engine": engineKind.rawValue,
            "uptime_s": Int(Date().timeIntervalSince(startedAt)),
            "models": streams.map { ["sensor": $0.config.sensor, "model": $0.model.identity, "path": $0.model.path,
                                     "window": $0.model.shape.window, "horizon": $0.model.shape.horizon,
                                     "period_s": $0.window.io.samplingPeriod] as [String: Any] },
            "counters": [
                "readings_accepted": counters.accepted,
                "readings_rejected": rejected,
                "readings_rejected_total": counters.totalRejected,
                "inferences": counters.inferences,
                "inference_errors": counters.inferenceErrors,
                "publish_errors": counters.publishErrors,
                "energy_log_errors": counters.logErrors,
                "window_resets": streams.reduce(0) { $0 + $1.window.counters.resets },
                "steps_gap_filled": streams.reduce(0) { $0 + $1.window.counters.stepsGapFilled },
                "mqtt_reconnects": mqtt.reconnectCount + intake.reconnectCount,
            ] as [String: Any],
        ]
        do { return [UInt8](try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) } catch {
            logger.error("status encoding failed", metadata: ["error": "\(error)"])
            return Array("{\"online\":\(online)}".utf8)
        }
    }

    func publishStatus(online: Bool, version: String) {
        guard let topic = try? MQTTTopic(config.topics.expand(config.topics.status, gateway: config.gateway)) else { return }
        do { try mqtt.publish(topic, payload: statusJSON(online: online, version: version), qos: .atLeastOnce, retain: true) } catch {
            logger.warning("status publish failed", metadata: ["error": "\(error)"])
        }
    }

    func publishEnergySummary(periodSeconds: Double) {
        guard let topic = try? MQTTTopic(config.topics.expand(config.topics.energy, gateway: config.gateway)) else { return }
        var w = JSONWriter(capacity: 1024)
        summary.drain(periodSeconds: periodSeconds, into: &w)
        try? mqtt.publish(topic, payload: w.bytes, qos: config.qos)
    }

    /// Set by the daemon: the board's energy counter once the board is open (cached when found).
    var boardPowerSource: () -> BoardPowerSource? = { nil }
    var cachedBoardPower: BoardPowerSource?
    @inline(__always)
    func boardPower() -> BoardPowerSource? {
        if cachedBoardPower == nil { cachedBoardPower = boardPowerSource() }
        return cachedBoardPower
    }

    /// Set by the daemon: reloads the configuration file, returning nil or the reason it was refused.
    var reloadHandler: (() -> String?)?
    var version = "0"

    func handleCommand(_ message: MQTTMessage) {
        counters.commands += 1
        guard message.payloadCount <= config.maxPayloadBytes else {
            logger.warning("command ignored: payload over limits.max_payload_bytes", metadata: ["bytes": "\(message.payloadCount)"])
            return
        }
        let name: String = message.withBuffers { topic, _ in
            String(decoding: Self.match(topic, commandsPrefix, commandsSuffix)!, as: UTF8.self)
        }
        let body = (try? JSONSerialization.jsonObject(with: Data(message.payload))) as? [String: Any] ?? [:]
        guard let id = (body["id"] as? String) ?? (body["id"] as? NSNumber)?.stringValue, !id.isEmpty,
              !id.contains("/"), !id.contains("+"), !id.contains("#") else {
            logger.warning("command without a usable request id ignored", metadata: ["command": "\(name)"])
            return
        }
        var reply: [String: Any] = ["id": id, "command": name]
        switch name {
        case "status":
            reply["ok"] = true
            reply["status"] = (try? JSONSerialization.jsonObject(with: Data(statusJSON(online: true, version: version)))) ?? [:]
        case "reload":
            if let why = reloadHandler?() { reply["ok"] = false; reply["error"] = why } else { reply["ok"] = true }
        case "engine":
            guard let k = (body["engine"] as? String).flatMap(EngineKind.init(rawValue:)) else {
                reply["ok"] = false; reply["error"] = "give \"engine\": \"software\" or \"fpga\""; break
            }
            do {
                var engines: [any InferenceEngine] = []
                for s in streams { engines.append(try engineFactory(s.model, k)) }
                for (s, e) in zip(streams, engines) { s.engine = e }
                engineKind = k
                reply["ok"] = true; reply["engine"] = k.rawValue
                logger.notice("engine switched", metadata: ["engine": "\(k.rawValue)"])
            } catch {
                reply["ok"] = false; reply["error"] = "\(error)"
            }
        case "rotate":
            do { try energyLog.rotate(); reply["ok"] = true; reply["path"] = energyLog.currentPath } catch {
                reply["ok"] = false; reply["error"] = "\(error)"
            }
        default:
            reply["ok"] = false
            reply["error"] = "unknown command \"\(name)\" (status, reload, engine, rotate)"
        }
        guard let data = try? JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys]),
              let topic = try? MQTTTopic(config.topics.expand(config.topics.replies, gateway: config.gateway, "id", id)) else { return }
        try? mqtt.publish(topic, payload: [UInt8](data), qos: config.qos)
    }
}
