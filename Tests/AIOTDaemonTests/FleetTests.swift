// One [[stream]] template serving a fleet, against a real mosquitto and the aiotd binary.
import Testing
import Foundation
import AIOTModel
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct FleetIntegration {
    @Test func oneTemplateServesAThousandSensorsWithOneModel() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/forecasts/#", "aiot/gw/status", "aiot/gw/reply/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: """
        [limits]
        max_sensors = 1000
        [[stream]]
        name = "fleet"
        sensors = ["dev-*"]
        model = "\(singleModel)"
        max_future_s = 3.0e9
        """)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        let model = try QuantizedModel(contentsOf: singleModel)
        let w = model.shape.window, n = 1000, steps = w
        // Sensor i sees the signal shifted by i steps, so every sensor's forecasts differ. Each
        // sensor sends its readings as one SenML pack (base time + offsets), as batching devices do.
        for i in 0..<n {
            let records = (0..<steps).map { k in (k == 0 ? "{\"bt\": \(T0), " : "{") + "\"t\": \(k * 60), \"v\": \(signal(k + i, 0))}" }
            try pub.publish("aiot/gw/readings/dev-\(i)", "[" + records.joined(separator: ",") + "]")
        }
        // One more sensor than max_sensors: refused, counted.
        try pub.publish("aiot/gw/readings/dev-extra", "{\"t\": \(T0), \"v\": 1}")
        let expected = n * (steps - w + 1)
        let ok = await Harness.waitUntil(timeout: 120) { watcher.count("aiot/gw/forecasts/") >= expected }
        #expect(ok, "\(watcher.count("aiot/gw/forecasts/")) of \(expected) forecasts; log: \(d.process.log.suffix(2000))")
        // Every forecast equals the software engine offline on that sensor's window.
        let engine = SoftwareEngine(model: model)
        var checked = 0
        for m in watcher.received("aiot/gw/forecasts/") {
            guard let sensor = m.json["sensor"] as? String, let i = Int(sensor.dropFirst(4)),
                  let t = (m.json["t"] as? NSNumber)?.doubleValue else { continue }
            let end = Int(((t - T0) / 60).rounded())
            let window = (end - w + 1...end).map { signal($0 + i, 0) }
            let q = try engine.infer(try model.quantizeInput(window))
            #expect((m.json["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == q, "\(sensor) at \(t)")
            checked += 1
        }
        #expect(checked == expected)
        try pub.publish("aiot/gw/cmd/status", "{\"id\": \"fleet\"}")
        _ = await Harness.waitUntil(timeout: 5) { watcher.count("aiot/gw/reply/fleet") > 0 }
        let status = watcher.received("aiot/gw/reply/fleet").first?.json["status"] as? [String: Any]
        #expect(status?["sensors"] as? Int == n)
        let rejected = (status?["counters"] as? [String: Any])?["readings_rejected"] as? [String: Int]
        #expect(rejected?["sensor_limit"] == 1)
        #expect((status?["models"] as? [[String: Any]])?.count == 1)
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
    }

    /// A start that fails on the metrics port must not have acknowledged (and so lost) readings the
    /// broker was holding for the persistent session: everything is bound before intake subscribes.
    @Test func aTakenMetricsPortFailsTheStartWithoutLosingQueuedReadings() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/status", "aiot/gw/reply/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        // First run: creates the persistent session (subscriptions) at the broker.
        try await d.start(waitFor: watcher)
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        for k in 0..<30 { try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        try await Task.sleep(for: .milliseconds(300))
        // Second run: the metrics port is taken. It must fail before it takes anything from the broker.
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        _ = listen(s, 1)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        let taken = Int(UInt16(bigEndian: addr.sin_port))
        try writeConfig(d.configPath, port: broker.port, logDir: d.logDir, metricsPort: taken, streams: oneStream)
        let failed = try ChildProcess(Harness.aiotdPath, ["--config", d.configPath], logPath: d.dir + "/aiotd-failed.log")
        let st = await failed.wait(timeout: 10)
        #expect(st != nil && exited(st) != 0, "aiotd with a taken metrics port: \(failed.log)")
        // Third run: everything the broker held is still there.
        try writeConfig(d.configPath, port: broker.port, logDir: d.logDir, metricsPort: 0, streams: oneStream)
        try await d.start(waitFor: watcher)
        var accepted = -1
        for i in 0..<50 where accepted != 30 {
            try pub.publish("aiot/gw/cmd/status", "{\"id\": \"m\(i)\"}")
            _ = await Harness.waitUntil(timeout: 2) { watcher.count("aiot/gw/reply/m\(i)") > 0 }
            let c = (watcher.received("aiot/gw/reply/m\(i)").first?.json["status"] as? [String: Any])?["counters"] as? [String: Any]
            accepted = c?["readings_accepted"] as? Int ?? -1
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(accepted == 30, "log: \(d.process.log)")
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }
}
