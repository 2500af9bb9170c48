// Commands on `topics.commands` ({name}): status, reload, engine, rotate. Each answers on
// `topics.replies` ({id}) with {"id","command","ok",...}. Before one runs: a token from the rate
// limit, a usable id, a known name, the allow list, and (with a key) a valid signature inside the
// replay window (CommandPolicy.swift). Refusals are counted by reason and answered when they
// carry an id; rate-limited ones are not answered (a flood must not turn into a reply flood).
import AIOTModel
import AIOTMQTT
import AIOTStreams

extension DaemonCore {
    func handleCommand(_ name: String, payload message: MQTTMessage) {
        counters.commands += 1
        let now = clock()
        let settings = config.commands
        // Never log a raw name: it comes from the network and could forge journal lines.
        let shown = printable(name)
        guard commandGuard.admit(settings, now: now) else {
            return refuse(.rateLimited, shown, id: nil, "over commands.rate_per_minute", now: now)
        }
        guard message.payloadCount <= config.maxPayloadBytes else {
            return refuse(.badRequest, shown, id: nil, "payload over limits.max_payload_bytes", now: now)
        }
        let payload = Array(message.payload)
        let body = (try? JSONValue.parse(payload)) ?? .null
        let id: String
        switch body["id"] {
        case .string(let s)?: id = s
        case .int(let n)?: id = String(n)
        default: id = ""
        }
        guard !id.isEmpty, id.utf8.count <= 128, !id.contains("/"), !id.contains("+"), !id.contains("#"), !id.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            return refuse(.badRequest, shown, id: nil, "no usable request id", now: now)
        }
        guard CommandSettings.known.contains(name) else {
            return refuse(.unknown, shown, id: id, "unknown command \"\(shown)\" (\(CommandSettings.known.joined(separator: ", ")))", now: now)
        }
        guard settings.allow.contains(name) else {
            return refuse(.notAllowed, name, id: id, "\"\(name)\" is not allowed on this gateway (commands.allow = \(settings.allow.sorted()))", now: now)
        }
        var args = body
        if let key = settings.key {
            guard let signed = SignedJSON.verify(payload, key: key.bytes) else {
                let unsigned = SignedJSON.split(payload) == nil
                return refuse(unsigned ? .unsigned : .badSignature, name, id: id,
                              unsigned ? "commands must be signed (end with ,\"hmac\":\"<hex>\"}; aiotctl sign-command)" : "signature does not verify with this gateway's key", now: now)
            }
            args = (try? JSONValue.parse(signed)) ?? .null
            if let (reason, why) = commandGuard.checkSigned(args, command: name, settings, now: now) {
                return refuse(reason, name, id: id, why, now: now)
            }
        }
        publishReply(id, run(name, id: id, args), shown)
    }

    /// Runs an admitted command; returns the reply.
    private func run(_ name: String, id: String, _ body: JSONValue) -> [UInt8] {
        switch name {
        case "status":
            var r = ReplyEncoder(id: id, command: name, ok: true)
            r.member("status", raw: StatusEncoder.encode(snapshot(online: true)))
            // {"sensors": true} lists live sensor names (or {"sensors": "stream name"} one template's).
            switch body["sensors"] {
            case .bool(true)?: r.member("sensor_names", strings: generation.processor.sensorNames(limit: 100_000))
            case .string(let t)?:
                if let i = generation.processor.templates.firstIndex(where: { $0.name == t }) {
                    r.member("sensor_names", strings: generation.processor.sensorNames(template: i, limit: 100_000))
                }
            default: break
            }
            return r.finish()
        case "reload":
            if let why = reload() { return failure(id, name, why) }
            var r = ReplyEncoder(id: id, command: name, ok: true)
            return r.finish()
        case "engine":
            guard case .string(let s)? = body["engine"], let k = EngineKind(rawValue: s) else {
                return failure(id, name, "give \"engine\": \"software\" or \"fpga\"")
            }
            do {
                let g = try Generation.build(config, store: generation.store, engineKind: k)
                install(g, engineKind: k)
                logger.notice("engine switched", metadata: ["engine": "\(k.rawValue)"])
                var r = ReplyEncoder(id: id, command: name, ok: true)
                r.member("engine", string: k.rawValue)
                return r.finish()
            } catch {
                return failure(id, name, "\(error)")
            }
        default: // rotate (handleCommand admits known names only)
            do {
                try energyLog.rotate()
                var r = ReplyEncoder(id: id, command: name, ok: true)
                r.member("path", string: energyLog.currentPath)
                return r.finish()
            } catch { return failure(id, name, "\(error)") }
        }
    }

    /// Counts a refusal (status and metrics), logs it at most once per reason per 10 s, and
    /// answers it when there is an id to answer.
    private func refuse(_ reason: CommandRefusal, _ shown: String, id: String?, _ why: String, now: Double) {
        counters.commandsRefused[reason.rawValue] += 1
        metrics.commandsRefused[reason.rawValue].increment()
        if commandGuard.shouldLog(reason, now: now) {
            logger.warning("command refused", metadata: ["command": "\(shown)", "reason": "\(reason)", "total": "\(counters.commandsRefused[reason.rawValue])"])
        }
        guard let id else { return }
        var r = ReplyEncoder(id: id, command: shown, ok: false)
        r.member("error", string: why)
        r.member("reason", string: reason.description)
        publishReply(id, r.finish(), shown)
    }

    private func publishReply(_ id: String, _ reply: [UInt8], _ shown: String) {
        guard let topic = try? MQTTTopic(config.topics.expand(config.topics.replies, gateway: config.gateway, "id", id)) else { return }
        do { try publisher.publish(topic, payload: reply, qos: config.qos, retain: false) } catch {
            counters.publishErrors += 1
            logger.warning("reply publish failed", metadata: ["command": "\(shown)", "error": "\(printable("\(error)", limit: 400))"])
        }
    }

    private func failure(_ id: String, _ name: String, _ why: String) -> [UInt8] {
        var r = ReplyEncoder(id: id, command: name, ok: false)
        r.member("error", string: why)
        return r.finish()
    }
}
