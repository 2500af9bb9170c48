// The fleet path: two real mosquitto brokers, the gateway's configured from
// configs/mosquitto-bridge.example.conf (only its ports, directory and gateway name changed, its
// TLS and login lines dropped on loopback), bridged to a central one; aiotd on the gateway side.
import Testing
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The example bridge configuration made runnable on loopback. Fails if a line it rewrites is gone,
/// so the test follows the example rather than silently testing something else.
func gatewayBrokerConfiguration(port: Int, dir: String, central: Int) throws -> String {
    let example = try String(contentsOfFile: Harness.packageRoot + "/configs/mosquitto-bridge.example.conf", encoding: .utf8)
    var out: [String] = []
    var rewritten = Set<String>()
    for line in example.split(separator: "\n", omittingEmptySubsequences: false) {
        var l = String(line).replacingOccurrences(of: "gw-0001", with: "gw")
        for (key, value) in [("listener ", "listener \(port) 127.0.0.1"), ("persistence_location ", "persistence_location \(dir)/"),
                             ("address ", "address 127.0.0.1:\(central)")] where l.hasPrefix(key) {
            l = value
            rewritten.insert(key)
        }
        if l.hasPrefix("bridge_cafile") || l.hasPrefix("bridge_certfile") || l.hasPrefix("bridge_keyfile") { continue }
        // Logins and the ACL are CommandACLTests' subject (configs/mosquitto-acl.example on a real
        // mosquitto); here every client is anonymous on loopback.
        if l.hasPrefix("password_file") || l.hasPrefix("acl_file") || l.hasPrefix("remote_username") || l.hasPrefix("remote_password") { continue }
        if l == "allow_anonymous false" { l = "allow_anonymous true"; rewritten.insert("allow_anonymous") }
        out.append(l)
    }
    guard rewritten.count == 4 else { throw HarnessError("the example bridge config lacks listener, persistence_location, address or allow_anonymous false: \(rewritten)") }
    out.append("log_dest stderr")
    if getuid() == 0 { out.append("user root") }
    return out.joined(separator: "\n") + "\n"
}

@Suite(.serialized) struct BridgeIntegration {
    @Test func forecastsStatusSummariesAndCommandsCrossTheBridgeAndAnOutageLosesNoForecast() async throws {
        let central = try await Broker(persistence: true)
        let gateway = try await Broker { port, dir in
            try gatewayBrokerConfiguration(port: port, dir: dir, central: central.port)
        }
        // The fleet's consumer: a persistent session on the central broker.
        let fleet = try TestClient(port: central.port, id: "fleet-consumer", cleanSession: false)
        try await fleet.start(subscribing: ["aiot/gw/#"])
        #expect(await Harness.waitUntil(timeout: 20) { fleet.count("aiot/gw/bridge") > 0 }, "bridge did not connect: \(gateway.process?.log.suffix(1500) ?? "")")

        let d = try DaemonUnderTest(port: gateway.port, streams: """
        [[stream]]
        sensor = "s1"
        model = "\(singleModel)"
        max_future_s = 3.0e9
        """)
        try await d.start(waitFor: fleet)  // the retained online status reached central
        let local = try TestClient(port: gateway.port, id: "local-watcher")
        try await local.start(subscribing: ["aiot/gw/forecasts/#"])
        let sensor = try TestClient(port: gateway.port, id: "sensor")
        try await sensor.start()
        func send(_ steps: Range<Int>) throws {
            for k in steps { try sensor.publish("aiot/gw/readings/s1", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        }
        func seqs(_ c: TestClient) -> [Int] { c.received("aiot/gw/forecasts/s1").compactMap { ($0.json["seq"] as? NSNumber)?.intValue } }
        let w = 24, n = 300
        let expected = Set(1...(n - w + 1))

        // 1. Link up: forecasts reach central; a command from central is answered on central.
        try send(0..<100)
        #expect(await Harness.waitUntil(timeout: 20) { Set(seqs(fleet)).isSuperset(of: 1...(100 - w + 1)) }, "\(seqs(fleet).count) forecasts at central")
        let operator_ = try TestClient(port: central.port, id: "operator")
        try await operator_.start()
        try operator_.publish("aiot/gw/cmd/status", "{\"id\": \"from-central\"}")
        #expect(await Harness.waitUntil(timeout: 10) { fleet.count("aiot/gw/reply/from-central") > 0 }, "no reply at central")
        #expect(fleet.received("aiot/gw/reply/from-central").first?.json["ok"] as? Bool == true)

        // 2. Cut the uplink: stop the central broker (it saves its sessions); aiotd keeps forecasting.
        await central.stopGracefully()
        try send(100..<200)
        #expect(await Harness.waitUntil(timeout: 20) { Set(seqs(local)).isSuperset(of: 1...(200 - w + 1)) }, "aiotd did not forecast locally during the outage")
        try await Task.sleep(for: .seconds(3))

        // 3. Central back: everything published during the outage arrives, then the rest.
        try await central.start()
        try send(200..<n)
        let complete = await Harness.waitUntil(timeout: 60) { Set(seqs(fleet)) == expected }
        let atCentral = seqs(fleet)
        let missing = expected.subtracting(atCentral).sorted()
        #expect(complete && missing.isEmpty, "missing at central: \(missing.prefix(20)) (\(missing.count)); gateway log: \(gateway.process?.log.suffix(1500) ?? "")")
        #expect(Set(seqs(local)) == expected)
        // QoS 1 may repeat a forecast, never invent one.
        print("bridge: \(atCentral.count) forecast messages at central for \(expected.count) forecasts (\(atCentral.count - Set(atCentral).count) duplicates)")

        // 4. Shutdown: the energy summary and the offline status reach central too.
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
        #expect(await Harness.waitUntil(timeout: 10) {
            fleet.count("aiot/gw/energy") > 0 && fleet.received("aiot/gw/status").last?.json["online"] as? Bool == false
        }, "energy: \(fleet.count("aiot/gw/energy")), last status: \(fleet.received("aiot/gw/status").last?.json["_raw"] ?? "none")")
        let summary = fleet.received("aiot/gw/energy").last?.json
        #expect(summary != nil)
        gateway.kill9()
        central.kill9()
    }
}
