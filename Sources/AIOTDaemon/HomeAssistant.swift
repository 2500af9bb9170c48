// Home Assistant discovery for templates with `home_assistant = true`: a sensor's entities are
// announced (retained) when the sensor's window is created, again for every live sensor when Home
// Assistant says it came online on its status topic, and after a reload that changes what is
// announced. Eviction does not remove them (docs/daemon.md says why): the entity's expire_after
// makes it unavailable when the sensor falls silent, and the same unique_id returns with it.
import TOMLKit
import AIOTMQTT
import AIOTStreams

/// `[home_assistant]`: where discovery configs go and where Home Assistant announces itself.
public struct HomeAssistantSettings: Sendable, Equatable {
    /// Home Assistant's discovery prefix (its MQTT integration's setting; "homeassistant" by default).
    public var discoveryPrefix = "homeassistant"
    /// Home Assistant's birth message topic; "online" there makes us announce every live sensor again.
    public var statusTopic = "homeassistant/status"
    public init() {}
}

extension Reader {
    func homeAssistantSettings(_ root: TOMLTable) throws(ConfigError) -> HomeAssistantSettings {
        var s = HomeAssistantSettings()
        guard let t = try table(root, "home_assistant") else { return s }
        try checkKeys(t, "home_assistant", ["discovery_prefix", "status_topic"])
        func topic(_ key: String, _ def: String) throws(ConfigError) -> String {
            let v = try string(t, key, "home_assistant.\(key)", default: def)
            guard !v.isEmpty, !v.contains("+"), !v.contains("#"), !v.hasPrefix("/"), !v.hasSuffix("/") else {
                throw err("home_assistant.\(key)", "\"\(v)\" must be a topic without wildcards and without a leading or trailing /")
            }
            return v
        }
        s.discoveryPrefix = try topic("discovery_prefix", s.discoveryPrefix)
        s.statusTopic = try topic("status_topic", s.statusTopic)
        return s
    }
}

extension DaemonConfig {
    /// Any template announced to Home Assistant: then intake also subscribes to its status topic.
    var announcesToHomeAssistant: Bool { streams.contains(where: \.homeAssistant) }
}

extension DaemonCore {
    /// The entities of one sensor: its forecast (the first step ahead; the whole forecast as
    /// attributes). Stages after inference add theirs here.
    func discoveryEntities(sensor: String, template t: Int) -> [DiscoveryEntity] {
        let io = generation.processor.templates[t].io
        return [DiscoveryEntity(
            component: "sensor", key: "forecast", name: "Forecast", stateTopic: forecasts.topic(sensor),
            valueTemplate: "{{ value_json.forecast[0] }}", unit: io.targetUnit.isEmpty ? nil : io.targetUnit, stateClass: "measurement",
            jsonAttributesTemplate: "{{ {'forecast': value_json.forecast, 'forecast_t': value_json.forecast_t, 'window_end': value_json.t, 'model': value_json.model, 'engine': value_json.engine} | tojson }}",
            // Unavailable once the daemon would forget the sensor, never between two forecasts.
            expireAfter: Int(max(config.sensorLimits.idleSeconds, 2 * io.samplingPeriod).rounded(.up)))]
    }

    /// Publishes a sensor's discovery configs (retained, QoS 1).
    func announce(sensor: String, template t: Int) {
        guard config.streams[t].homeAssistant else { return }
        let gateway = config.gateway
        // The model as a person reads it: its file name and the start of its SHA-256.
        let m = generation.bindings[t].model
        let model = "\(m.path.split(separator: "/").last.map(String.init) ?? m.path) (\(m.identity.prefix(12)))"
        let device = DiscoveryDevice(identifier: "aiot_\(gateway)_\(sensor)", name: sensor, model: model, swVersion: version)
        let availability = DiscoveryAvailability(topic: config.topics.expand(config.topics.status, gateway: gateway))
        for e in discoveryEntities(sensor: sensor, template: t) {
            let topic = DiscoveryEncoder.topic(prefix: config.homeAssistant.discoveryPrefix, entity: e, gateway: gateway, sensor: sensor)
            let payload = DiscoveryEncoder.encode(e, device: device, availability: availability,
                                                  uniqueID: DiscoveryEncoder.uniqueID(entity: e, gateway: gateway, sensor: sensor))
            do { try publisher.publish(try MQTTTopic(topic), payload: payload, qos: .atLeastOnce, retain: true) } catch {
                counters.publishErrors += 1
                metrics.publishErrors.increment()
                logger.warning("home assistant discovery publish failed", metadata: ["sensor": "\(sensor)", "topic": "\(topic)", "error": "\(error)"])
            }
        }
    }

    /// Every live sensor of every announced template.
    func announceAll() {
        var n = 0
        for t in config.streams.indices where config.streams[t].homeAssistant {
            for s in generation.processor.sensorNames(template: t) { announce(sensor: s, template: t); n += 1 }
        }
        if n > 0 { logger.info("home assistant discovery sent", metadata: ["sensors": "\(n)"]) }
    }

    /// A message on Home Assistant's status topic: "online" is its birth (it restarted, or first
    /// connected) and may have lost what it knew; retained configs are sent again.
    func homeAssistantStatus(_ message: MQTTMessage) {
        let online = message.withBuffers { _, p in p.elementsEqual("online".utf8) }
        if online { announceAll() }
    }
}
