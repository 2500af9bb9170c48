// Commands on `topics.commands` ({name}): status, reload, engine, rotate. Each answers on
// `topics.replies` ({id}) with {"id","command","ok",...}; a command without a usable id is dropped.
import AIOTModel
import AIOTMQTT
import AIOTStreams

extension DaemonCore {
    func handleCommand(_ name: String, payload message: MQTTMessage) {
        counters.commands += 1
        // Never log a raw name: it comes from the network and could forge journal lines.
        let shown = String(name.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "?" }.prefix(64))
        guard message.payloadCount <= config.maxPayloadBytes else {
            logger.warning("command ignored: payload over limits.max_payload_bytes", metadata: ["command": "\(shown)", "bytes": "\(message.payloadCount)"])
            return
        }
        let body = (try? JSONValue.parse(message.payload)) ?? .null
        let id: String
        switch body["id"] {
        case .string(let s)?: id = s
        case .int(let n)?: id = String(n)
        default: id = ""
        }
        guard !id.isEmpty, id.utf8.count <= 128, !id.contains("/"), !id.contains("+"), !id.contains("#"), !id.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            logger.warning("command without a usable request id ignored", metadata: ["command": "\(shown)"])
            return
        }
        let reply: [UInt8]
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
            reply = r.finish()
        case "reload":
            if let why = reload() { reply = failure(id, name, why) } else { reply = success(id, name) }
        case "engine":
            guard case .string(let s)? = body["engine"], let k = EngineKind(rawValue: s) else {
                reply = failure(id, name, "give \"engine\": \"software\" or \"fpga\""); break
            }
            do {
                let g = try Generation.build(config, store: generation.store, engineKind: k)
                install(g, engineKind: k)
                logger.notice("engine switched", metadata: ["engine": "\(k.rawValue)"])
                var r = ReplyEncoder(id: id, command: name, ok: true)
                r.member("engine", string: k.rawValue)
                reply = r.finish()
            } catch {
                reply = failure(id, name, "\(error)")
            }
        case "rotate":
            do {
                try energyLog.rotate()
                var r = ReplyEncoder(id: id, command: name, ok: true)
                r.member("path", string: energyLog.currentPath)
                reply = r.finish()
            } catch { reply = failure(id, name, "\(error)") }
        default:
            reply = failure(id, name, "unknown command \"\(shown)\" (status, reload, engine, rotate)")
        }
        guard let topic = try? MQTTTopic(config.topics.expand(config.topics.replies, gateway: config.gateway, "id", id)) else { return }
        do { try publisher.publish(topic, payload: reply, qos: config.qos, retain: false) } catch {
            counters.publishErrors += 1
            logger.warning("reply publish failed", metadata: ["command": "\(shown)", "error": "\(error)"])
        }
    }

    private func success(_ id: String, _ name: String) -> [UInt8] {
        var r = ReplyEncoder(id: id, command: name, ok: true)
        return r.finish()
    }

    private func failure(_ id: String, _ name: String, _ why: String) -> [UInt8] {
        var r = ReplyEncoder(id: id, command: name, ok: false)
        r.member("error", string: why)
        return r.finish()
    }
}
