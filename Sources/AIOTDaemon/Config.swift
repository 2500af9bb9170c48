// aiotd configuration: TOML, validated at start and on reload, with messages naming the key.
import Foundation
import TOMLKit
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry

public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One `[[stream]]`: a template serving every sensor its pattern matches, all on one shared model.
public struct StreamConfig: Sendable, Equatable {
    /// A label for status and logs ("stream[i]" when not given).
    public var name: String
    /// `sensor = "x"` (one sensor, the original form) or `sensors = ["a", "b-*", "+"]`.
    public var sensors: SensorPattern
    /// The pattern as written: the sensor's name for a one-sensor stanza.
    public var sensor: String { sensors.description }
    public var model: String
    /// nil: the model's sampling_period_s.
    public var periodSeconds: Double?
    public var policy: WindowPolicy
    /// feature name -> sensor name whose bare values ("v", plain numbers) feed that feature.
    public var featureTopics: [String: String]
    /// Announce this template's sensors to Home Assistant (`home_assistant = true`).
    public var homeAssistant = false
}

public struct DaemonConfig: Sendable, Equatable {
    public var gateway: String
    public var mqtt: MQTTConfiguration
    public var qos: MQTTQoS
    public var topics: Topics
    public var maxPayloadBytes: Int
    /// Messages buffered between the network thread and the processing thread.
    public var queueCapacity: Int
    /// Bytes (payload + 64 per message) buffered there at most (limits.queue_bytes).
    public var queueBytes: Int = 16 << 20
    /// Windows one batched inference pass runs at most (limits.batch_windows; 1: one at a time).
    public var batchWindows: Int = 64
    /// The energy log is fsynced this often (log.fsync_interval_s), besides rotation and shutdown.
    public var logFsyncSeconds: Double = 5
    public var logDirectory: String
    public var logMaxBytes: Int
    public var logLevel: String
    /// Where readings unprocessed at a shutdown deadline are spooled (state.directory; default:
    /// $STATE_DIRECTORY from systemd's StateDirectory=, else log.directory/state).
    public var stateDirectory: String
    public var metricsPort: Int
    public var statusIntervalSeconds: Double
    public var energySummaryIntervalSeconds: Double
    public var engine: EngineKind
    /// The board for the fpga engine: ftdi://VID:PID[/serial] or sim:PATH.
    public var engineDevice: String
    /// Upload the model's parameters when the board does not hold them.
    public var engineUpload: Bool
    /// The `[board]` section (docs/board.md): link and energy settings for the fpga engine.
    public var board = BoardSettings()
    public var streams: [StreamConfig]
    /// Live sensors at most (limits.max_sensors) and their idle eviction (limits.sensor_idle_s).
    public var sensorLimits = SensorLimits()
    /// The `[commands]` table: allow list, HMAC key, replay window, rate (CommandPolicy.swift).
    public var commands = CommandSettings()
    /// `[accuracy]` (ConfigAccuracy.swift).
    public var accuracy = AccuracyConfig()
    /// `[rollback]`: the guarded model switch (ConfigRollback.swift, docs/rollback.md).
    public var rollback = RollbackConfig()
    /// `[deploy]` (DeployConfig.swift); nil: the artifact channel is off.
    public var deploy: DeploySettings?
    /// `energy.model` / `energy.cpu_watts_per_core` / `energy.fpga_watts` (EnergyModel.swift); nil: off.
    public var energyModel: EnergyModels? = EnergyModels()
    /// The `[home_assistant]` section (HomeAssistant.swift).
    public var homeAssistant = HomeAssistantSettings()

    public struct BoardSettings: Sendable, Equatable {
        /// Channel A SPI clock of a real FT2232H (the board model ignores it).
        public var sckHz = 30_000_000
        public var maxRetries = 2
        public var probeEvery = 20
        /// How often the PAC1934 accumulators are read (between inferences).
        public var energyWindowSeconds = 60.0
        public init() {}
    }

    public struct Topics: Sendable, Equatable {
        public var readings = "aiot/{gateway}/readings/{sensor}"
        public var forecasts = "aiot/{gateway}/forecasts/{sensor}"
        public var status = "aiot/{gateway}/status"
        public var commands = "aiot/{gateway}/cmd/{name}"
        public var replies = "aiot/{gateway}/reply/{id}"
        public var energy = "aiot/{gateway}/energy"

        func expand(_ template: String, gateway: String, _ key: String = "", _ value: String = "") -> String {
            var s = template.replacingOccurrences(of: "{gateway}", with: gateway)
            if !key.isEmpty { s = s.replacingOccurrences(of: "{\(key)}", with: value) }
            return s
        }
    }

    /// A configuration is a page of settings, not a data file: a larger one is refused unread.
    public static let maxConfigBytes = 1 << 20

    /// Reads and validates a file. Errors name the file and the key.
    public static func load(path: String) throws(ConfigError) -> DaemonConfig {
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxConfigBytes {
            throw ConfigError("\(path): \(size) bytes; a configuration is at most \(maxConfigBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("\(path): cannot read the file (check the path and that aiotd may read it)")
        }
        return try parse(text, source: path)
    }

    public static func parse(_ text: String, source: String = "config") throws(ConfigError) -> DaemonConfig {
        guard text.utf8.count <= maxConfigBytes else {
            throw ConfigError("\(source): \(text.utf8.count) bytes; a configuration is at most \(maxConfigBytes) bytes")
        }
        if let bad = tomlPrecheck(text) {
            throw ConfigError("\(source):\(bad.line):\(bad.column): TOML syntax error: \(bad.message)")
        }
        let root: TOMLTable
        do { root = try TOMLTable(string: text) } catch let e as TOMLParseError {
            throw ConfigError("\(source):\(e.source.begin.line):\(e.source.begin.column): TOML syntax error: \(e.description)")
        } catch {
            throw ConfigError("\(source): TOML syntax error: \(error)")
        }
        var r = Reader(source: source)
        return try r.read(root)
    }
}

/// Typed access with key paths in messages ("mqtt.port: expected ...").
struct Reader {
    let source: String

    mutating func read(_ root: TOMLTable) throws(ConfigError) -> DaemonConfig {
        try checkKeys(root, "", ["gateway", "mqtt", "topics", "limits", "log", "state", "metrics", "status", "energy", "engine", "board", "stream", "commands", "accuracy", "home_assistant", "rollback", "deploy"])
        let gateway = try name(try string(root, "gateway", "gateway"), "gateway")

        let m = try table(root, "mqtt")
        if let m { try checkKeys(m, "mqtt", ["host", "port", "unix_socket", "client_id", "clean_session", "keepalive_s", "qos", "username", "password", "password_file", "reconnect_min_s", "reconnect_max_s", "max_inflight", "protocol", "tls"]) }
        var password = try optString(m, "password", "mqtt.password")
        if let pf = try optString(m, "password_file", "mqtt.password_file") {
            guard let d = FileManager.default.contents(atPath: pf), let s = String(data: d, encoding: .utf8) else {
                throw err("mqtt.password_file", "cannot read \(pf)")
            }
            password = s.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var tls: MQTTConfiguration.TLS? = nil
        if let tv = m?["tls"] {
            guard let t = tv.table else { throw err("mqtt.tls", "expected a table [mqtt.tls]") }
            try checkKeys(t, "mqtt.tls", ["ca_file", "cert_file", "key_file"])
            let ca = try string(t, "ca_file", "mqtt.tls.ca_file")
            guard FileManager.default.isReadableFile(atPath: ca) else { throw err("mqtt.tls.ca_file", "\(ca) is not a readable file") }
            let cert = try optString(t, "cert_file", "mqtt.tls.cert_file")
            let key = try optString(t, "key_file", "mqtt.tls.key_file")
            guard (cert == nil) == (key == nil) else { throw err(cert == nil ? "mqtt.tls.cert_file" : "mqtt.tls.key_file", "client certificate needs both cert_file and key_file") }
            tls = .init(caFile: ca, certFile: cert, keyFile: key)
        }
        let qosInt = try int(m, "qos", "mqtt.qos", default: 1, range: 0...1)
        // MQTT 5 lets us announce a Maximum Packet Size (no oversized publish reaches memory);
        // "3.1.1" is for brokers that speak nothing newer.
        let protocolVersion: MQTTProtocolVersion
        switch try string(m, "protocol", "mqtt.protocol", default: "5") {
        case "5": protocolVersion = .v5
        case "3.1.1": protocolVersion = .v311
        case let other: throw err("mqtt.protocol", "\"\(other)\" is not \"5\" or \"3.1.1\"")
        }
        let minDelay = try int(m, "reconnect_min_s", "mqtt.reconnect_min_s", default: 1, range: 1...3600)
        // A broker on this machine through its Unix socket: replaces host and port, so naming both is
        // a mistake we refuse rather than guess at.
        let unixSocket = try optString(m, "unix_socket", "mqtt.unix_socket")
        if let path = unixSocket {
            if let problem = MQTTConfiguration.unixSocketProblem(path) { throw err("mqtt.unix_socket", problem) }
            if let clash = ["host", "port"].first(where: { m?[$0] != nil }) {
                throw err("mqtt.unix_socket", "set with mqtt.\(clash): the socket replaces host and port; remove one of them")
            }
            // libmosquitto would verify the broker's certificate against the path as a host name.
            if tls != nil { throw err("mqtt.unix_socket", "set with [mqtt.tls]: a local socket needs no TLS (file permissions guard it); remove one of them") }
        }
        let mqtt = MQTTConfiguration(
            host: try string(m, "host", "mqtt.host", default: "127.0.0.1"),
            port: try int(m, "port", "mqtt.port", default: 1883, range: 1...65535),
            clientID: try string(m, "client_id", "mqtt.client_id", default: "aiotd-\(gateway)"),
            cleanSession: try bool(m, "clean_session", "mqtt.clean_session", default: false),
            keepAliveSeconds: try int(m, "keepalive_s", "mqtt.keepalive_s", default: 30, range: 5...3600),
            username: try optString(m, "username", "mqtt.username"), password: password, tls: tls, will: nil,
            reconnectDelayMin: minDelay,
            reconnectDelayMax: try int(m, "reconnect_max_s", "mqtt.reconnect_max_s", default: 30, range: minDelay...3600),
            maxInflight: try int(m, "max_inflight", "mqtt.max_inflight", default: 0, range: 0...65535),
            protocolVersion: protocolVersion, unixSocket: unixSocket)

        var topics = DaemonConfig.Topics()
        if let t = try table(root, "topics") {
            try checkKeys(t, "topics", ["readings", "forecasts", "status", "commands", "replies", "energy"])
            func tpl(_ key: String, _ def: String, needs: String?) throws(ConfigError) -> String {
                let v = try string(t, key, "topics.\(key)", default: def)
                if let needs, !v.contains("{\(needs)}") { throw err("topics.\(key)", "\"\(v)\" must contain {\(needs)}") }
                if v.contains("+") || v.contains("#") { throw err("topics.\(key)", "\"\(v)\" must not contain MQTT wildcards") }
                return v
            }
            func level(_ key: String, _ v: String, _ placeholder: String) throws(ConfigError) {
                do { _ = try TopicPattern(v, placeholder: "{\(placeholder)}") } catch { throw err("topics.\(key)", error.description) }
            }
            topics.readings = try tpl("readings", topics.readings, needs: "sensor")
            topics.forecasts = try tpl("forecasts", topics.forecasts, needs: "sensor")
            topics.status = try tpl("status", topics.status, needs: nil)
            topics.commands = try tpl("commands", topics.commands, needs: "name")
            topics.replies = try tpl("replies", topics.replies, needs: "id")
            topics.energy = try tpl("energy", topics.energy, needs: nil)
            try level("readings", topics.readings, "sensor")
            try level("forecasts", topics.forecasts, "sensor")
            try level("commands", topics.commands, "name")
            try level("replies", topics.replies, "id")
        }
        let limits = try table(root, "limits")
        if let limits { try checkKeys(limits, "limits", ["max_payload_bytes", "queue_capacity", "queue_bytes", "batch_windows", "max_sensors", "sensor_idle_s"]) }
        let log = try table(root, "log")
        if let log { try checkKeys(log, "log", ["directory", "max_bytes", "level", "fsync_interval_s"]) }
        let level = try string(log, "level", "log.level", default: "info")
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw err("log.level", "\"\(level)\" is not one of trace, debug, info, notice, warning, error, critical")
        }
        let state = try table(root, "state")
        if let state { try checkKeys(state, "state", ["directory"]) }
        let logDirectory = try string(log, "directory", "log.directory", default: "/var/log/aiotd")
        let systemdState = ProcessInfo.processInfo.environment["STATE_DIRECTORY"]?.split(separator: ":").first.map(String.init)
        let stateDirectory = try string(state, "directory", "state.directory", default: systemdState ?? logDirectory + "/state")
        let metrics = try table(root, "metrics")
        if let metrics { try checkKeys(metrics, "metrics", ["port"]) }
        let status = try table(root, "status")
        if let status { try checkKeys(status, "status", ["interval_s"]) }
        let energy = try table(root, "energy")
        if let energy { try checkKeys(energy, "energy", ["summary_interval_s", "model", "cpu_watts_per_core", "fpga_watts"]) }
        let engineT = try table(root, "engine")
        if let engineT { try checkKeys(engineT, "engine", ["kind", "device", "upload"]) }
        let engineName = try string(engineT, "kind", "engine.kind", default: "software")
        guard let engine = EngineKind(rawValue: engineName) else { throw err("engine.kind", "\"\(engineName)\" is not software or fpga") }
        // [board] is the documented home of the board settings; engine.device / engine.upload are
        // the older spelling, still accepted, but not both at once.
        let boardT = try table(root, "board")
        if let boardT { try checkKeys(boardT, "board", ["device", "sck_hz", "upload_weights", "max_retries", "probe_every", "energy_window_s"]) }
        if boardT?["device"] != nil && engineT?["device"] != nil { throw err("board.device", "given twice (also engine.device); keep board.device") }
        if boardT?["upload_weights"] != nil && engineT?["upload"] != nil { throw err("board.upload_weights", "given twice (also engine.upload); keep board.upload_weights") }
        let device = boardT?["device"] != nil ? try string(boardT, "device", "board.device", default: "")
                                              : try string(engineT, "device", "engine.device", default: "ftdi://0403:6010")
        let upload = boardT?["upload_weights"] != nil ? try bool(boardT, "upload_weights", "board.upload_weights", default: false)
                                                      : try bool(engineT, "upload", "engine.upload", default: false)
        var board = DaemonConfig.BoardSettings()
        board.sckHz = try int(boardT, "sck_hz", "board.sck_hz", default: 30_000_000, range: 100_000...30_000_000)
        board.maxRetries = try int(boardT, "max_retries", "board.max_retries", default: 2, range: 0...100)
        board.probeEvery = try int(boardT, "probe_every", "board.probe_every", default: 20, range: 1...1_000_000)
        board.energyWindowSeconds = try double(boardT, "energy_window_s", "board.energy_window_s", default: 60, min: 0.01)!

        guard let sv = root["stream"] else { throw err("stream", "missing; add at least one [[stream]] with sensor and model") }
        guard let arr = sv.array else { throw err("stream", "expected an array of tables [[stream]]") }
        var streams: [StreamConfig] = []
        var sensors = Set<String>()
        for (i, item) in arr.enumerated() {
            let p = "stream[\(i)]"
            guard let t = item.table else { throw err(p, "expected a table") }
            try checkKeys(t, p, ["name", "sensor", "sensors", "model", "period_s", "reorder_steps", "max_gap_fill", "max_future_s", "late_steps", "feature_topics", "home_assistant"])
            let pattern = try sensorPattern(t, p)
            // Exact names belong to one stanza; globs and "+" may overlap (the most specific wins).
            for case .exact(let bytes) in pattern.items {
                let sensor = String(decoding: bytes, as: UTF8.self)
                guard sensors.insert(sensor).inserted else { throw err("\(p).sensor", "\"\(sensor)\" is used by another stream or feature topic") }
            }
            let model = try string(t, "model", "\(p).model")
            guard FileManager.default.isReadableFile(atPath: model) else { throw err("\(p).model", "\(model) is not a readable file") }
            var ft: [String: String] = [:]
            if let fv = t["feature_topics"] {
                guard pattern.singleName != nil else { throw err("\(p).feature_topics", "only a stream naming one sensor (sensor = \"x\") can take feature topics") }
                guard let ftt = fv.table else { throw err("\(p).feature_topics", "expected a table of feature = \"sensor\"") }
                for k in ftt.keys {
                    let s = try name(try string(ftt, k, "\(p).feature_topics.\(k)"), "\(p).feature_topics.\(k)")
                    guard sensors.insert(s).inserted else { throw err("\(p).feature_topics.\(k)", "\"\(s)\" is used by another stream or feature topic") }
                    ft[k] = s
                }
            }
            streams.append(StreamConfig(
                name: try optString(t, "name", "\(p).name") ?? p, sensors: pattern, model: model,
                periodSeconds: try double(t, "period_s", "\(p).period_s", default: nil, min: 0.001),
                policy: WindowPolicy(reorderSteps: try int(t, "reorder_steps", "\(p).reorder_steps", default: 2, range: 0...64),
                                     maxGapFill: try int(t, "max_gap_fill", "\(p).max_gap_fill", default: 3, range: 0...1024),
                                     maxFutureSeconds: try double(t, "max_future_s", "\(p).max_future_s", default: 300, min: 0, max: 1e12)!,
                                     lateSteps: try int(t, "late_steps", "\(p).late_steps", default: 32, range: 0...1024)),
                featureTopics: ft, homeAssistant: try bool(t, "home_assistant", "\(p).home_assistant", default: false)))
        }
        guard !streams.isEmpty else { throw err("stream", "empty; add at least one [[stream]]") }
        let sensorLimits = SensorLimits(
            maxSensors: try int(limits, "max_sensors", "limits.max_sensors", default: 10_000, range: 1...1_000_000),
            idleSeconds: try double(limits, "sensor_idle_s", "limits.sensor_idle_s", default: 3600, min: 1, max: 1e9)!)

        var config = DaemonConfig(
            gateway: gateway, mqtt: mqtt, qos: qosInt == 0 ? .atMostOnce : .atLeastOnce, topics: topics,
            maxPayloadBytes: try int(limits, "max_payload_bytes", "limits.max_payload_bytes", default: 4096, range: 16...1 << 20),
            queueCapacity: try int(limits, "queue_capacity", "limits.queue_capacity", default: 1024, range: 1...1 << 20),
            logDirectory: logDirectory,
            logMaxBytes: try int(log, "max_bytes", "log.max_bytes", default: 64 << 20, range: 4096...(1 << 40)),
            logLevel: level,
            stateDirectory: stateDirectory,
            metricsPort: try int(metrics, "port", "metrics.port", default: 9464, range: 0...65535),
            statusIntervalSeconds: try double(status, "interval_s", "status.interval_s", default: 30, min: 1)!,
            energySummaryIntervalSeconds: try double(energy, "summary_interval_s", "energy.summary_interval_s", default: 60, min: 1)!,
            engine: engine,
            engineDevice: device,
            engineUpload: upload,
            board: board,
            streams: streams,
            sensorLimits: sensorLimits)
        config.queueBytes = try int(limits, "queue_bytes", "limits.queue_bytes", default: 16 << 20, range: (64 << 10)...(1 << 30))
        config.batchWindows = try int(limits, "batch_windows", "limits.batch_windows", default: 64, range: 1...64)
        config.homeAssistant = try homeAssistantSettings(root)
        config.logFsyncSeconds = try double(log, "fsync_interval_s", "log.fsync_interval_s", default: 5, min: 0.1, max: 86400)!
        config.commands = try commands(root)
        config.accuracy = try readAccuracy(root)
        config.rollback = try readRollback(root)
        config.energyModel = try readEnergyModel(energy)
        config.deploy = try deploy(root)
        return config
    }
}
