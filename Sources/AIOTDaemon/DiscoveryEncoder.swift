// Home Assistant MQTT discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
// one retained config message per entity on <prefix>/<component>/<node_id>/<object_id>/config.
// Written once per sensor, so plain Strings are fine here (the forecast path stays allocation-free).
import AIOTTelemetry

/// One Home Assistant entity of a sensor. The forecast is one; other stages (accuracy, anomalies)
/// add theirs by describing them the same way.
struct DiscoveryEntity: Sendable, Equatable {
    /// "sensor", "binary_sensor", ...
    var component: String
    /// Short key, unique per sensor: ends the object id and the unique_id ("forecast").
    var key: String
    /// Shown after the device's name ("Forecast").
    var name: String
    var stateTopic: String
    var valueTemplate: String
    var unit: String? = nil
    var stateClass: String? = nil
    var deviceClass: String? = nil
    var jsonAttributesTemplate: String? = nil
    /// Seconds without a state message after which Home Assistant shows the entity unavailable.
    var expireAfter: Int? = nil
    /// binary_sensor: the rendered values meaning on and off.
    var payloadOn: String? = nil
    var payloadOff: String? = nil
}

/// The Home Assistant device an entity belongs to: one per sensor.
struct DiscoveryDevice: Sendable, Equatable {
    var identifier: String
    var name: String
    var model: String
    var swVersion: String
    var manufacturer = "aiot-runtime"
}

/// Where Home Assistant learns whether the gateway is up: our retained status, whose `online` is
/// false in the last will and at shutdown, true while serving.
struct DiscoveryAvailability: Sendable, Equatable {
    var topic: String
    static let template = "{{ 'online' if value_json.online else 'offline' }}"
    static let available = "online"
    static let notAvailable = "offline"
}

enum DiscoveryEncoder {
    /// Home Assistant accepts only [a-zA-Z0-9_-] in node and object ids. Names with other bytes are
    /// mapped to '_' and get a hash of the original, so "a.b" and "a_b" stay two entities.
    static func id(_ raw: String) -> String {
        var out = ""
        var changed = false
        for u in raw.unicodeScalars {
            if u.isASCII, u.properties.isAlphabetic || (u.value >= 48 && u.value <= 57) || u == "_" || u == "-" {
                out.unicodeScalars.append(u)
            } else {
                out.append("_")
                changed = true
            }
        }
        guard changed || out.isEmpty else { return out }
        var h: UInt32 = 2_166_136_261  // FNV-1a
        for b in raw.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        let hex = String(h, radix: 16)
        return out + "_" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    static func topic(prefix: String, entity: DiscoveryEntity, gateway: String, sensor: String) -> String {
        "\(prefix)/\(entity.component)/aiot_\(id(gateway))/\(id(sensor))_\(entity.key)/config"
    }

    static func uniqueID(entity: DiscoveryEntity, gateway: String, sensor: String) -> String {
        "aiot_\(gateway)_\(sensor)_\(entity.key)"
    }

    static func encode(_ e: DiscoveryEntity, device d: DiscoveryDevice, availability a: DiscoveryAvailability, uniqueID: String) -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        func member(_ k: String, _ v: String?, first: Bool = false) {
            guard let v else { return }
            if !first { w.raw(",") }
            w.string(k); w.raw(":"); w.string(v)
        }
        w.raw("{")
        member("name", e.name, first: true)
        member("unique_id", uniqueID)
        member("state_topic", e.stateTopic)
        member("value_template", e.valueTemplate)
        member("unit_of_measurement", e.unit)
        member("state_class", e.stateClass)
        member("device_class", e.deviceClass)
        member("payload_on", e.payloadOn)
        member("payload_off", e.payloadOff)
        if let t = e.jsonAttributesTemplate {
            member("json_attributes_topic", e.stateTopic)
            member("json_attributes_template", t)
        }
        if let x = e.expireAfter { w.raw(",\"expire_after\":"); w.int(x) }
        w.raw(",\"qos\":1,\"availability\":[{")
        member("topic", a.topic, first: true)
        member("value_template", DiscoveryAvailability.template)
        member("payload_available", DiscoveryAvailability.available)
        member("payload_not_available", DiscoveryAvailability.notAvailable)
        w.raw("}],\"device\":{\"identifiers\":["); w.string(d.identifier); w.raw("]")
        member("name", d.name)
        member("manufacturer", d.manufacturer)
        member("model", d.model)
        member("sw_version", d.swVersion)
        w.raw("},\"origin\":{\"name\":\"aiotd\"")
        member("sw_version", d.swVersion)
        w.raw("}}")
        return w.bytes
    }
}
