// Issue 11, point 2, at the daemon: hostile payloads of 10, 60 and 200 MiB published to a readings
// topic of the real aiotd binary through a real mosquitto (its default 256 MB packet limit). aiotd's
// peak RSS (VmHWM of its process, reset before each publish) must stay under the unit's MemoryMax,
// and a normal reading afterwards still gets its forecast. All three sizes run in CI (about 5 s:
// the broker drops them for aiotd); AIOT_DAEMON_OVERSIZE_MB picks others, and
// AIOT_DAEMON_MQTT_PROTOCOL=3.1.1 measures the old wire protocol (no Maximum Packet Size).
import Testing
import Foundation
#if canImport(Glibc)
import Glibc
#endif

let daemonOversizeMB = (ProcessInfo.processInfo.environment["AIOT_DAEMON_OVERSIZE_MB"] ?? "10,60,200").split(separator: ",").compactMap { Int($0) }
let daemonProtocol = ProcessInfo.processInfo.environment["AIOT_DAEMON_MQTT_PROTOCOL"] ?? "5"

/// VmHWM of a process in MiB.
func peakRSSMiB(pid: pid_t) -> Double {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
    return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
}

/// The unit's MemoryMax (systemd/aiotd.service) in MiB.
func unitMemoryMaxMiB() throws -> Double {
    let unit = try String(contentsOfFile: Harness.packageRoot + "/systemd/aiotd.service", encoding: .utf8)
    guard let line = unit.split(separator: "\n").first(where: { $0.hasPrefix("MemoryMax=") }), line.hasSuffix("M"),
          let v = Double(line.dropFirst("MemoryMax=".count).dropLast()) else { throw HarnessError("no MemoryMax=NM in aiotd.service") }
    return v
}

@Suite(.serialized) struct DaemonOversize {
    @Test func hostilePayloadsStayUnderTheUnitsMemoryMaxAndTheDaemonKeepsServing() async throws {
        let memoryMax = try unitMemoryMaxMiB()
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/forecasts/#", "aiot/gw/status", "aiot/gw/reply/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream, extra: { _ in "" })
        if daemonProtocol != "5" {
            let c = try String(contentsOfFile: d.configPath, encoding: .utf8)
            try c.replacingOccurrences(of: "qos = 1\n", with: "qos = 1\nprotocol = \"\(daemonProtocol)\"\n").write(toFile: d.configPath, atomically: true, encoding: .utf8)
        }
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        let w = 24
        for k in 0..<w { try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        #expect(await Harness.waitUntil(timeout: 20) { watcher.count("aiot/gw/forecasts/single") == 1 })
        let dir = Harness.tempDir("oversize")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var k = w
        for mb in daemonOversizeMB {
            let file = dir + "/big-\(mb).bin"
            FileManager.default.createFile(atPath: file, contents: nil)
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            for _ in 0..<mb { h.write(Data(repeating: UInt8(ascii: "x"), count: 1 << 20)) }
            try h.close()
            try "5".write(toFile: "/proc/\(d.process.pid)/clear_refs", atomically: false, encoding: .utf8)
            let before = peakRSSMiB(pid: d.process.pid)
            let r = try await runTool("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-q", "1", "-t", "aiot/gw/readings/single", "-f", file])
            #expect(r.code == 0, "mosquitto_pub: \(r.out)")
            try? FileManager.default.removeItem(atPath: file)
            // A normal reading after the big one still gets its forecast.
            try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}")
            k += 1
            let served = await Harness.waitUntil(timeout: 60) { watcher.count("aiot/gw/forecasts/single") == k - w + 1 }
            let peak = peakRSSMiB(pid: d.process.pid)
            print("aiotd oversized \(mb) MiB publish, MQTT \(daemonProtocol): peak RSS \(String(format: "%.1f", before)) -> \(String(format: "%.1f", peak)) MiB (MemoryMax \(Int(memoryMax)) MiB), served \(served), running \(d.process.isRunning)")
            #expect(d.process.isRunning, "aiotd died on a \(mb) MiB publish: \(d.process.log.suffix(1000))")
            #expect(served, "no forecast for the reading after the \(mb) MiB publish")
            #expect(peak < memoryMax, "peak RSS \(peak) MiB for a \(mb) MiB publish; the unit's MemoryMax is \(memoryMax) MiB")
        }
        // Where the daemon sees the big message (MQTT 3.1.1, or a broker ignoring Maximum Packet
        // Size) it counts it; under MQTT 5 the broker never sends it (mosquitto drops it for us).
        try pub.publish("aiot/gw/cmd/status", "{\"id\": \"big\"}")
        #expect(await Harness.waitUntil(timeout: 10) { watcher.count("aiot/gw/reply/big") > 0 })
        let counters = (watcher.received("aiot/gw/reply/big").first?.json["status"] as? [String: Any])?["counters"] as? [String: Any]
        let oversized = counters?["mqtt_oversized_refused"] as? Int
        print("aiotd mqtt_oversized_refused = \(oversized.map(String.init) ?? "nil") after \(daemonOversizeMB.count) publish(es), MQTT \(daemonProtocol)")
        #expect(oversized == (daemonProtocol == "5" ? 0 : daemonOversizeMB.count))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
    }
}
