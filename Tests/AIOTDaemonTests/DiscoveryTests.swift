// Home Assistant discovery: in-process with the fake publisher (topics, retain, fields parsed back),
// and once against a real mosquitto with the aiotd binary.
import Testing
import Foundation
import AIOTMQTT
@testable import AIOTDaemon

private let announced = """
[home_assistant]
discovery_prefix = "ha"
[[stream]]
name = "rooms"
sensors = ["room-*", "odd.name"]
model = "\(singleModel)"
max_future_s = 3.0e9
home_assistant = true
[[stream]]
name = "quiet"
sensors = ["+"]
model = "\(singleModel)"
max_future_s = 3.0e9
"""

@Suite struct DiscoveryTests {
    func configs(_ rig: CoreRig) -> [(topic: String, payload: String, retain: Bool)] {
        rig.pub.sent.withLock { $0.filter { $0.topic.hasPrefix("ha/") } }
    }

    @Test func aSensorIsAnnouncedOnceWhenItFirstAppearsWithHomeAssistantsSchema() throws {
        let rig = try CoreRig(announced, limits: "sensor_idle_s = 600")
        for k in 0..<3 { rig.send("room-1", step: k, 20 + Double(k)) }
        rig.send("other", step: 0, 1)  // a template without home_assistant: nothing announced
        let sent = configs(rig)
        #expect(sent.count == 1, "\(sent.map(\.topic))")
        let m = try #require(sent.first)
        #expect(m.topic == "ha/sensor/aiot_gw/room-1_forecast/config")
        #expect(m.retain)
        let j = try #require(try JSONSerialization.jsonObject(with: Data(m.payload.utf8)) as? [String: Any])
        #expect(j["name"] as? String == "Forecast")
        #expect(j["unique_id"] as? String == "aiot_gw_room-1_forecast")
        #expect(j["state_topic"] as? String == "aiot/gw/forecasts/room-1")
        #expect(j["json_attributes_topic"] as? String == "aiot/gw/forecasts/room-1")
        #expect(j["value_template"] as? String == "{{ value_json.forecast[0] }}")
        #expect(j["state_class"] as? String == "measurement")
        #expect(j["expire_after"] as? Int == 600)
        let unit = rig.core.generation.processor.templates[0].io.targetUnit
        #expect(j["unit_of_measurement"] as? String == (unit.isEmpty ? nil : unit))
        let device = try #require(j["device"] as? [String: Any])
        #expect(device["identifiers"] as? [String] == ["aiot_gw_room-1"])
        #expect(device["name"] as? String == "room-1")
        #expect(device["manufacturer"] as? String == "aiot-runtime")
        let id = rig.core.generation.bindings[0].model.identity
        #expect(device["model"] as? String == "w24f1d16h1n1p1-w8a8.safetensors (\(id.prefix(12)))")
        #expect(device["sw_version"] as? String == "test")
        let a = try #require((j["availability"] as? [[String: Any]])?.first)
        #expect(a["topic"] as? String == "aiot/gw/status")
        #expect(a["payload_available"] as? String == "online" && a["payload_not_available"] as? String == "offline")
        #expect(a["value_template"] as? String == "{{ 'online' if value_json.online else 'offline' }}")
        // The availability template reads the status we publish: `online` is a JSON boolean there.
        rig.core.publishStatus(online: true)
        #expect(rig.pub.messages("aiot/gw/status").last?["online"] as? Bool == true)
    }

    @Test func namesOutsideHomeAssistantsIdAlphabetGetAHashNotACollision() throws {
        #expect(DiscoveryEncoder.id("room-1_a") == "room-1_a")
        let dotted = DiscoveryEncoder.id("odd.name"), underscored = DiscoveryEncoder.id("odd_name")
        #expect(dotted != underscored)
        #expect(dotted.hasPrefix("odd_name_") && dotted.count == "odd_name_".count + 8)
        #expect(dotted.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        let rig = try CoreRig(announced)
        rig.send("odd.name", step: 0, 1)
        #expect(configs(rig).map(\.topic) == ["ha/sensor/aiot_gw/\(dotted)_forecast/config"])
    }

    @Test func homeAssistantsBirthMessageRepublishesEveryLiveSensor() throws {
        let rig = try CoreRig(announced)
        for s in ["room-1", "room-2", "room-3"] { rig.send(s, step: 0, 1) }
        rig.send("other", step: 0, 1)
        #expect(configs(rig).count == 3)
        rig.core.handle(MQTTMessage(topic: "homeassistant/status", payload: Array("offline".utf8), qos: 1))
        #expect(configs(rig).count == 3)
        rig.core.handle(MQTTMessage(topic: "homeassistant/status", payload: Array("online".utf8), qos: 1))
        let sent = configs(rig)
        #expect(sent.count == 6)
        #expect(Set(sent.suffix(3).map(\.topic)) == Set(sent.prefix(3).map(\.topic)))
        #expect(sent.allSatisfy { $0.retain })
        // The birth message is not a reading of a sensor called "status".
        #expect(rig.core.counters.totalRejected == 0)
    }

    @Test func evictionKeepsTheConfigAndAReturningSensorIsAnnouncedAgain() throws {
        let rig = try CoreRig(announced, limits: "sensor_idle_s = 60")
        rig.send("room-1", step: 0, 1)
        // Idle time below two sampling periods (60 s): expire_after is two periods, so the entity
        // does not flap unavailable between forecasts.
        let first = try #require(configs(rig).first)
        #expect((try JSONSerialization.jsonObject(with: Data(first.payload.utf8)) as? [String: Any])?["expire_after"] as? Int == 120)
        rig.core.tick(now: T0 + 10_000)
        #expect(rig.core.generation.processor.liveSensors == 0)
        // No empty (removing) retained message on eviction: expire_after marks it unavailable.
        #expect(configs(rig).count == 1 && configs(rig).allSatisfy { !$0.payload.isEmpty })
        rig.send("room-1", step: 200, 1)
        #expect(configs(rig).count == 2)
    }

    @Test func withoutHomeAssistantNothingIsAnnouncedNorSubscribed() throws {
        let rig = try CoreRig(fleet)
        rig.send("a", step: 0, 1)
        #expect(rig.pub.sent.withLock { $0.filter { $0.topic.hasPrefix("homeassistant/") }.count } == 0)
        #expect(rig.core.homeAssistantBirth == nil)
    }

    @Test func theSectionIsCheckedAndAReloadThatTurnsItOnAnnouncesLiveSensors() throws {
        #expect(throws: ConfigError.self) { try CoreRig("[home_assistant]\ndiscovery_prefix = \"ha/#\"\n" + fleet) }
        #expect(throws: ConfigError.self) { try CoreRig("[home_assistant]\nprefix = \"ha\"\n" + fleet) }
        let rig = try CoreRig(announced)
        rig.send("room-1", step: 0, 1)
        rig.send("x", step: 0, 1)
        #expect(configs(rig).count == 1)
        // Now the catch-all template is announced too: both live sensors are sent.
        try CoreRig.write(rig.configPath, announced + "\nhome_assistant = true\n",
                          limits: "", logDir: rig.core.config.logDirectory)
        #expect(rig.core.reload() == nil)
        #expect(configs(rig).count == 3)
        #expect(configs(rig).suffix(2).map(\.topic).sorted() == ["ha/sensor/aiot_gw/room-1_forecast/config", "ha/sensor/aiot_gw/x_forecast/config"])
    }
}

@Suite(.serialized) struct DiscoveryIntegration {
    @Test func discoveryConfigsAreRetainedOnARealBrokerAndSentAgainOnBirth() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/status", "homeassistant/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: """
        [[stream]]
        sensors = ["dev-*"]
        model = "\(singleModel)"
        max_future_s = 3.0e9
        home_assistant = true
        """)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        for i in 0..<3 { try pub.publish("aiot/gw/readings/dev-\(i)", "{\"t\": \(T0), \"v\": 1}") }
        let configTopic = "homeassistant/sensor/aiot_gw/"
        #expect(await Harness.waitUntil(timeout: 10) { watcher.count(configTopic) >= 3 }, "\(d.process.log.suffix(1500))")
        // A client arriving later (Home Assistant after a restart) gets them retained.
        let late = try TestClient(port: broker.port, id: "ha")
        try await late.start(subscribing: ["homeassistant/sensor/#"])
        #expect(await Harness.waitUntil(timeout: 5) { late.count(configTopic) >= 3 })
        let got = late.received(configTopic)
        #expect(got.count == 3 && got.allSatisfy { $0.retained })
        #expect(Set(got.compactMap { $0.json["state_topic"] as? String }) == Set((0..<3).map { "aiot/gw/forecasts/dev-\($0)" }))
        // Home Assistant's birth message: every live sensor is sent again.
        try late.publish("homeassistant/status", "online")
        #expect(await Harness.waitUntil(timeout: 5) { watcher.count(configTopic) >= 6 })
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
    }
}
