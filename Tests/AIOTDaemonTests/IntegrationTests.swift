// End-to-end: a real mosquitto, aiotd as a child process, readings in, forecasts out.
import Testing
import Foundation
import AIOTModel
import AIOTMQTT
import Synchronization
import AIOTBoard
import AIOTBoardSim
@testable import AIOTDaemon
#if canImport(Glibc)
import Glibc
#endif

let singleModel = Harness.packageRoot + "/models/random/w24f1d16h1n1p1-w8a8.safetensors"
let multiModel = Harness.packageRoot + "/models/random/w12f2d8h2n2p3-w4a8.safetensors"
// On the 60 s grid: the daemon aligns readings to multiples of the sampling period.
let T0 = 1_699_999_980.0

/// A deterministic signal (no randomness across runs).
func signal(_ k: Int, _ f: Int) -> Double {
    let x = Double(k)
    return (sin(x * 0.31 + Double(f)) * 1.7 + cos(x * 0.07) * 0.6 + Double((k * 7919 + f * 104729) % 97) / 97.0 - 0.5) * (f == 0 ? 1 : 2.5)
}

/// Publishes `count` single-feature JSON readings, one a minute from T0 (`scale` x signal(k, 0)), to
/// `sensor`; returns them as rows for `offlineForecasts`.
func publishSingleReadings(_ pub: TestClient, sensor: String = "single", count: Int, scale: Double = 1) throws -> [[Double]] {
    var rows: [[Double]] = []
    for k in 0..<count {
        rows.append([signal(k, 0) * scale])
        try pub.publish("aiot/gw/readings/\(sensor)", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(rows[k][0])}")
    }
    return rows
}

/// What the software engine computes offline for the window ending at each step.
func offlineForecasts(model path: String, rows: [[Double]]) throws -> [Double: (q: [Int32], y: [Double])] {
    let model = try QuantizedModel(contentsOf: path)
    let engine = SoftwareEngine(model: model)
    let w = model.shape.window
    var out: [Double: (q: [Int32], y: [Double])] = [:]
    for end in (w - 1)..<rows.count {
        let window = rows[(end - w + 1)...end].flatMap { $0 }
        let q = try engine.infer(try model.quantizeInput(window))
        out[T0 + Double(end) * model.samplingPeriodSeconds] = (q, try model.dequantizeOutput(q))
    }
    return out
}

func forecastsByTime(_ c: TestClient, sensor: String) -> [Double: [String: Any]] {
    var d: [Double: [String: Any]] = [:]
    for m in c.received("aiot/gw/forecasts/\(sensor)") { if let t = (m.json["t"] as? NSNumber)?.doubleValue { d[t] = m.json } }
    return d
}

let twoStreams = """
[[stream]]
sensor = "multi"
model = "\(multiModel)"
reorder_steps = 2
max_gap_fill = 3
max_future_s = 3.0e9
[stream.feature_topics]
x1 = "aux"

[[stream]]
sensor = "single"
model = "\(singleModel)"
max_future_s = 3.0e9
"""

let oneStream = """
[[stream]]
sensor = "single"
model = "\(singleModel)"
reorder_steps = 2
max_gap_fill = 3
max_future_s = 3.0e9
"""

@Suite(.serialized) struct DaemonIntegration {

    @Test func forecastsEqualTheSoftwareEngineOffline() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: twoStreams)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()

        let steps = 40
        var multiRows: [[Double]] = []
        for k in 0..<steps {
            let t = T0 + Double(k) * 60
            let a = signal(k, 0), b = signal(k, 1)
            multiRows.append([a, b])
            // Features arrive together, separately (one topic per feature, either order), or as SenML.
            switch k % 4 {
            case 0: try pub.publish("aiot/gw/readings/multi", "{\"t\": \(t), \"values\": {\"x0\": \(a), \"x1\": \(b)}}")
            case 1: try pub.publish("aiot/gw/readings/multi", "{\"t\": \(t), \"v\": \(a)}"); try pub.publish("aiot/gw/readings/aux", "{\"t\": \(t), \"v\": \(b)}")
            case 2: try pub.publish("aiot/gw/readings/aux", "{\"v\": \(b), \"t\": \(t)}"); try pub.publish("aiot/gw/readings/multi", "{\"t\": \(t), \"v\": \(a)}")
            default: try pub.publish("aiot/gw/readings/multi", "[{\"bn\": \"urn:dev:gw1:\", \"bt\": \(t), \"n\": \"x0\", \"v\": \(a)}, {\"n\": \"x1\", \"v\": \(b), \"u\": \"W\"}]")
            }
        }
        let multiExpected = try offlineForecasts(model: multiModel, rows: multiRows)
        let ok = await Harness.waitUntil(timeout: 20) { forecastsByTime(watcher, sensor: "multi").count >= multiExpected.count }
        let got = forecastsByTime(watcher, sensor: "multi")
        #expect(ok, "got \(got.count) of \(multiExpected.count) forecasts; daemon log: \(d.process.log)")
        #expect(Set(got.keys) == Set(multiExpected.keys))
        for (t, exp) in multiExpected {
            guard let f = got[t] else { continue }
            let q = (f["q"] as? [NSNumber])?.map { Int32(truncating: $0) }
            #expect(q == exp.q, "window ending \(t)")
            #expect(exactArray(f, "forecast") == exp.y, "forecast values at \(t)")
            #expect((f["forecast_t"] as? [NSNumber])?.map(\.doubleValue) == [t + 60, t + 120, t + 180])
            #expect(f["engine"] as? String == "software")
            #expect(f["energy_uj"] is NSNull || f["energy_uj"] is NSNumber)
            #expect((f["model"] as? String)?.count == 64)
        }
        let seqs = got.values.compactMap { ($0["seq"] as? NSNumber)?.intValue }.sorted()
        #expect(seqs == Array(1...multiExpected.count))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    @Test func singleFeatureJSONWindowsMatchOffline() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/forecasts/#", "aiot/gw/status"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        var rows: [[Double]] = []
        for k in 0..<60 {
            let v = signal(k, 0) * 3
            rows.append([v])
            try pub.publish("aiot/gw/readings/single", k % 3 == 0 ? "[{\"bt\": \(T0 + Double(k) * 60), \"v\": \(v)}]" : "{\"t\": \(T0 + Double(k) * 60), \"v\": \(v)}")
        }
        let expected = try offlineForecasts(model: singleModel, rows: rows)
        _ = await Harness.waitUntil(timeout: 20) { forecastsByTime(watcher, sensor: "single").count >= expected.count }
        let got = forecastsByTime(watcher, sensor: "single")
        #expect(got.count == expected.count)
        for (t, e) in expected {
            #expect((got[t]?["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == e.q)
            #expect(exactArray(got[t], "forecast") == e.y)
        }
        // One energy log record per inference, each a whole JSON line.
        _ = await Harness.waitUntil(timeout: 5) { d.energyLines.filter { !$0.isEmpty }.count >= expected.count }
        let lines = d.energyLines.filter { !$0.isEmpty }
        #expect(lines.count == expected.count)
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o?["sensor"] as? String == "single")
            let lat = o?["latency_us"] as? [String: Any]
            for k in ["queue", "preprocess", "inference", "publish", "total"] { #expect(lat?[k] is NSNumber, "latency_us.\(k)") }
            #expect(o?["energy_source"] as? String != nil)
        }
        // aiotctl energy summarizes the same log.
        let ctl = URL(fileURLWithPath: Harness.aiotdPath).deletingLastPathComponent().appendingPathComponent("aiotctl").path
        let svg = d.dir + "/plot.svg"
        let png = d.dir + "/plot.png"
        let p = try ChildProcess(ctl, ["energy", "--json", "--svg", svg, "--plot", png, d.logDir], logPath: d.dir + "/ctl.out")
        #expect(exited(await p.wait(timeout: 20)) == 0)
        let summary = try JSONSerialization.jsonObject(with: Data(p.log.utf8)) as? [String: Any]
        let g = (summary?["groups"] as? [[String: Any]])?.first
        #expect(g?["count"] as? Int == expected.count)
        #expect(g?["sensor"] as? String == "single")
        #expect((try? String(contentsOfFile: svg, encoding: .utf8))?.contains("<svg") == true)
        // The PNG (rsvg-convert, installed by tools/setup.sh): signature, then IHDR width 900 x height
        // 950 (latency, energy and, since the log holds online accuracy, |error| panels).
        let bytes = [UInt8](FileManager.default.contents(atPath: png) ?? Data())
        #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "\(p.log)")
        #expect(bytes.count > 24 && bytes[16..<24].elementsEqual([0, 0, 0x03, 0x84, 0, 0, 0x03, 0xB6]))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    /// `mqtt.unix_socket`: aiotd talks to the broker through its Unix socket (mosquitto's
    /// `listener 0 PATH`) while the sensors and the watcher use TCP; the forecasts are the offline
    /// engine's, and `--check-config` and the status name the socket.
    @Test func unixSocketBrokerServesTheSameForecasts() async throws {
        let path = Harness.tempDir("sock") + "/mqtt.sock"
        let broker = try await Broker(extra: "listener 0 \(path)\n")
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/forecasts/#", "aiot/gw/status"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream, unixSocket: path)
        let check = try ChildProcess(Harness.aiotdPath, ["--check-config", d.configPath], logPath: d.dir + "/check.log")
        #expect(exited(await check.wait(timeout: 20)) == 0)
        #expect(check.log.contains("broker unix:\(path)"), "\(check.log)")
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        let rows = try publishSingleReadings(pub, count: 40, scale: 3)
        let expected = try offlineForecasts(model: singleModel, rows: rows)
        _ = await Harness.waitUntil(timeout: 20) { forecastsByTime(watcher, sensor: "single").count >= expected.count }
        let got = forecastsByTime(watcher, sensor: "single")
        #expect(got.count == expected.count, "daemon log: \(d.process.log)")
        for (t, e) in expected {
            #expect((got[t]?["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == e.q)
            #expect(exactArray(got[t], "forecast") == e.y)
        }
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
        #expect(d.process.log.contains("unix:\(path)"), "the start line names the socket: \(d.process.log)")
    }

    @Test func brokerRestartWithQoS1LosesNoForecast() async throws {
        let broker = try await Broker(persistence: true)
        let watcher = try TestClient(port: broker.port, id: "watcher", cleanSession: false)
        try await watcher.start(subscribing: ["aiot/gw/forecasts/#", "aiot/gw/status"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub", cleanSession: false)
        try await pub.start()
        var rows: [[Double]] = []
        for k in 0..<80 { rows.append([signal(k, 0)]) }
        func send(_ r: Range<Int>) throws {
            for k in r { try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(rows[k][0])}") }
        }
        try send(0..<40)
        try await Task.sleep(for: .milliseconds(100))
        // Restart mid-stream: readings published while the broker is down wait in the publisher's
        // QoS 1 queue; forecasts in flight wait in the daemon's; the watcher's session is persistent.
        await broker.stopGracefully()
        try send(40..<60)
        try await Task.sleep(for: .milliseconds(500))
        try await broker.start()
        try send(60..<80)
        let expected = try offlineForecasts(model: singleModel, rows: rows)
        let ok = await Harness.waitUntil(timeout: 30) { forecastsByTime(watcher, sensor: "single").count >= expected.count }
        let got = forecastsByTime(watcher, sensor: "single")
        #expect(ok, "got \(got.count) of \(expected.count); missing \(Set(expected.keys).subtracting(got.keys).sorted())")
        #expect(Set(got.keys) == Set(expected.keys))
        for (t, e) in expected { #expect((got[t]?["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == e.q) }
        #expect(d.process.log.contains("mqtt connection lost"))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    @Test func malformedPayloadsAreRejectedCountedAndTheDaemonKeepsServing() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let metricsPort = Harness.freePort()
        let d = try DaemonUnderTest(port: broker.port, metricsPort: metricsPort, streams: twoStreams,
                                    extra: { _ in "[commands]\nallow = [\"status\", \"rotate\", \"engine\"]\n" })
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        let r = "aiot/gw/readings/single"
        let now = Date().timeIntervalSince1970
        // Fill a window first so late/duplicate have something to be late against.
        for k in 0..<30 { try pub.publish(r, "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        let bad: [(String, String, String)] = [
            ("malformed", r, "{\"t\": 1, \"v\": }"),
            ("malformed", r, "{\"t\": 1700000000, \"v\": 1} trailing"),
            ("malformed", r, ""),
            ("wrong_type", r, "{\"t\": \(T0 + 1800), \"v\": \"12.5\"}"),
            ("wrong_type", r, "{\"t\": \(T0 + 1800), \"v\": true}"),
            ("wrong_type", r, "\"12\""),
            ("non_finite", r, "NaN"),
            ("non_finite", r, "{\"t\": \(T0 + 1800), \"v\": 1e999}"),
            ("non_finite", r, "{\"t\": \(T0 + 1800), \"v\": -Infinity}"),
            ("oversized", r, "{\"t\": \(T0 + 1800), \"v\": 1, \"pad\": \"" + String(repeating: "x", count: 5000) + "\"}"),
            ("unknown_sensor", "aiot/gw/readings/ghost", "1.0"),
            ("unknown_feature", "aiot/gw/readings/multi", "{\"t\": \(T0), \"values\": {\"nope\": 1}}"),
            // Behind the window (24 steps) and its late-placement history (late_steps, 32): late.
            ("late", r, "{\"t\": \(T0 - 120 * 60), \"v\": 1}"),
            ("duplicate", r, "{\"t\": \(T0 + 60), \"v\": 1}"),
            ("duplicate", r, "{\"t\": \(T0 + 29 * 60), \"v\": 1}"),
            ("future", r, "{\"t\": \(now + 1e10), \"v\": 1}"),
        ]
        for (_, topic, payload) in bad { try pub.publish(topic, payload) }
        try pub.publish("aiot/gw/readings/single", bytes: [0xff, 0xfe, 0x00, 0x7b])  // binary junk
        // Still serving: the next steps produce forecasts.
        let before = forecastsByTime(watcher, sensor: "single").count
        for k in 30..<40 { try pub.publish(r, "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        let ok = await Harness.waitUntil(timeout: 15) { forecastsByTime(watcher, sensor: "single").count >= 40 - 24 + 1 }
        #expect(ok && forecastsByTime(watcher, sensor: "single").count > before, "log: \(d.process.log)")
        #expect(d.process.isRunning)

        var expected: [String: Int] = [:]
        for (reason, _, _) in bad { expected[reason, default: 0] += 1 }
        expected["malformed", default: 0] += 1
        let metrics = Harness.httpGet(port: metricsPort, path: "/metrics") ?? ""
        for (reason, n) in expected {
            #expect(metrics.contains("aiotd_readings_rejected_total{reason=\"\(reason)\"} \(n)\n"), "\(reason) x\(n) in:\n\(metrics)")
        }
        #expect(metrics.contains("aiotd_readings_accepted_total 40\n"))
        #expect(metrics.contains("aiotd_inferences_total{engine=\"software\"} 17\n"))
        #expect(metrics.contains("aiotd_reading_to_forecast_seconds_bucket"))

        // The status command reports the same counters.
        try pub.publish("aiot/gw/cmd/status", "{\"id\": \"q1\"}")
        _ = await Harness.waitUntil(timeout: 5) { !watcher.received("aiot/gw/reply/q1").isEmpty }
        let reply = watcher.received("aiot/gw/reply/q1").first?.json
        #expect(reply?["ok"] as? Bool == true)
        let counters = (reply?["status"] as? [String: Any])?["counters"] as? [String: Any]
        let rejected = counters?["readings_rejected"] as? [String: Int]
        for (reason, n) in expected { #expect(rejected?[reason] == n, "status counter \(reason)") }
        try pub.publish("aiot/gw/cmd/rotate", "{\"id\": \"q2\"}")
        try pub.publish("aiot/gw/cmd/engine", "{\"id\": \"q3\", \"engine\": \"fpga\"}")
        try pub.publish("aiot/gw/cmd/bogus", "{\"id\": \"q4\"}")
        _ = await Harness.waitUntil(timeout: 5) { !watcher.received("aiot/gw/reply/q4").isEmpty }
        #expect(watcher.received("aiot/gw/reply/q2").first?.json["ok"] as? Bool == true)
        #expect(watcher.received("aiot/gw/reply/q3").first?.json["ok"] as? Bool == false)
        #expect(watcher.received("aiot/gw/reply/q4").first?.json["ok"] as? Bool == false)
        // Refused commands are counted by reason in Prometheus too.
        let after = Harness.httpGet(port: metricsPort, path: "/metrics") ?? ""
        #expect(after.contains("aiotd_commands_refused_total{reason=\"unknown\"} 1\n"), "\(after)")
        #expect(after.contains("aiotd_commands_refused_total{reason=\"not_allowed\"} 0\n"))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    @Test func sighupWithABrokenConfigKeepsTheOldOne() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        let good = try String(contentsOfFile: d.configPath, encoding: .utf8)

        for k in 0..<20 { try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        try "gateway = \n[[stream]\n".write(toFile: d.configPath, atomically: true, encoding: .utf8)
        d.process.signal(SIGHUP)
        #expect(await Harness.waitUntil(timeout: 5) { d.process.log.contains("reload refused") })
        try good.replacingOccurrences(of: "max_gap_fill = 3", with: "max_gap_fill = \"three\"").write(toFile: d.configPath, atomically: true, encoding: .utf8)
        d.process.signal(SIGHUP)
        #expect(await Harness.waitUntil(timeout: 5) { d.process.log.contains("stream[0].max_gap_fill") })
        #expect(d.process.isRunning)
        // The old configuration and the window built so far keep serving.
        for k in 20..<30 { try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        #expect(await Harness.waitUntil(timeout: 10) { forecastsByTime(watcher, sensor: "single").count == 7 })
        // A valid file is taken.
        try good.replacingOccurrences(of: "interval_s = 60", with: "interval_s = 30").write(toFile: d.configPath, atomically: true, encoding: .utf8)
        d.process.signal(SIGHUP)
        #expect(await Harness.waitUntil(timeout: 5) { d.process.log.contains("configuration reloaded") })
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    @Test func sigtermDrainsAndExitsZeroWithOfflineStatusRetained() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/forecasts/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        let statusWatch = try TestClient(port: broker.port, id: "status-watch")
        try await statusWatch.start(subscribing: ["aiot/gw/status"])
        try await d.start(waitFor: statusWatch)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        for k in 0..<3000 { try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        // Stop while readings are still streaming through.
        _ = await Harness.waitUntil(timeout: 10) { d.energyLines.count > 50 }
        let start = Date()
        d.process.signal(SIGTERM)
        let st = await d.process.wait(timeout: 6)
        let took = Date().timeIntervalSince(start)
        #expect(exited(st) == 0, "status \(String(describing: st)); log: \(d.process.log)")
        #expect(took < 5, "took \(took) s")
        // Every inference it logged reached the broker (drained, acknowledged), none twice.
        let logged = d.energyLines.filter { !$0.isEmpty }.count
        _ = await Harness.waitUntil(timeout: 5) { watcher.count("aiot/gw/forecasts/single") >= logged }
        #expect(logged > 0)
        #expect(forecastsByTime(watcher, sensor: "single").count == logged)
        // A newcomer sees the retained offline status.
        let late = try TestClient(port: broker.port, id: "late")
        try await late.start(subscribing: ["aiot/gw/status"])
        _ = await Harness.waitUntil(timeout: 5) { !late.received("aiot/gw/status").isEmpty }
        let status = late.received("aiot/gw/status").last
        #expect(status?.retained == true)
        #expect(status?.json["online"] as? Bool == false)
        #expect(d.process.log.contains("aiotd stopped"))
        // On a loaded machine the 3 s drain budget can run out: whatever was received but not
        // processed must be spooled (never dropped), and replayed first by the next run.
        let firstLog = d.process.log
        #expect(!firstLog.contains("could not be spooled"), "log: \(firstLog)")
        let spooled = Int(firstLog.range(of: #"spooled (\d+) unprocessed"#, options: .regularExpression).map { firstLog[$0].dropFirst(8).prefix { $0.isNumber } } ?? "") ?? 0
        #expect(firstLog.components(separatedBy: "unprocessed").count - 1 == (spooled > 0 ? 1 : 0), "unprocessed messages not spooled; log: \(firstLog)")
        let spoolPath = d.logDir + "/state/spool.jsonl"
        if spooled > 0 {
            let (records, corrupt) = try ReadingSpool.read(path: spoolPath)
            #expect(records.count == spooled && corrupt == 0)
        }

        // Nothing was lost: what the first run did not take is in the spool or stays queued at the
        // broker for the persistent session, and a second run picks it up. Together they accept
        // every reading once.
        let first = Int(firstLog.range(of: #"accepted=(\d+)"#, options: .regularExpression).map { firstLog[$0].dropFirst(9) } ?? "") ?? -1
        #expect(first > 0 && first < 3000, "first run accepted \(first)")
        try await d.start(waitFor: late)
        let ctl = try TestClient(port: broker.port, id: "ctl")
        try await ctl.start(subscribing: ["aiot/gw/reply/#"])
        // Asked until the second run has all of them, or its count has stood still for 10 s (a
        // loaded machine can take longer than a fixed number of polls: one run ended its 100 polls
        // at 2,874 while readings were still arriving), at most 120 s.
        var second = -1
        var lastChange = Date()
        let deadline = Date().addingTimeInterval(120)
        var i = 0
        while first + second < 3000, Date().timeIntervalSince(lastChange) < 10, Date() < deadline {
            try ctl.publish("aiot/gw/cmd/status", "{\"id\": \"s\(i)\"}")
            _ = await Harness.waitUntil(timeout: 2) { !ctl.received("aiot/gw/reply/s\(i)").isEmpty }
            let c = (ctl.received("aiot/gw/reply/s\(i)").first?.json["status"] as? [String: Any])?["counters"] as? [String: Any]
            let now = c?["readings_accepted"] as? Int ?? -1
            if now != second { second = now; lastChange = Date() }
            i += 1
            try await Task.sleep(for: .milliseconds(100))
        }
        // No reading lost. Exactly once is what an idle machine shows (3,000 in every run alone);
        // under CI load one full-suite run counted 3,062: readings the broker delivered while the
        // disconnect was under way were handled and, their PUBACK not having preceded the
        // DISCONNECT, delivered again to the next run (QoS 1 is at least once across a restart;
        // docs/reliability.md, "Not covered yet"). Bounded by what can be in flight then.
        #expect(first + second >= 3000, "lost readings: first run \(first) + second run \(second) (\(i) status polls); log: \(d.process.log.suffix(3000))")
        #expect(first + second <= 3000 + 300, "more duplicates than readings in flight: first run \(first) + second run \(second)")
        if first + second > 3000 { print("sigterm drain: \(first + second - 3000) reading(s) delivered to both runs") }
        if spooled > 0 { #expect(d.process.log.contains("spool: replayed \(spooled) message(s)"), "log: \(d.process.log)") }
        #expect(!FileManager.default.fileExists(atPath: spoolPath) && !FileManager.default.fileExists(atPath: d.logDir + "/state/spool.replaying.jsonl"))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    @Test func spooledReadingsAreReplayedFirstAtStartThenRemoved() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/status", "aiot/gw/forecasts/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        // A previous run's shutdown spool: 200 readings, then a line cut short by a crash.
        let now = Date().timeIntervalSince1970
        let spool = ReadingSpool(directory: d.logDir + "/state")
        try spool.append((0..<200).map { k in
            SpoolRecord(topic: "aiot/gw/readings/single", payload: Array("{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}".utf8), arrivedAt: now - 10)
        })
        let h = FileHandle(forWritingAtPath: spool.spoolPath)!
        h.seekToEndOfFile(); h.write(Data("{\"t\":1,\"topic\":\"aiot/gw/rea".utf8)); h.closeFile()
        try await d.start(waitFor: watcher)
        let ctl = try TestClient(port: broker.port, id: "ctl")
        try await ctl.start(subscribing: ["aiot/gw/reply/#"])
        try ctl.publish("aiot/gw/cmd/status", "{\"id\": \"s\"}")
        _ = await Harness.waitUntil(timeout: 5) { !ctl.received("aiot/gw/reply/s").isEmpty }
        let c = (ctl.received("aiot/gw/reply/s").first?.json["status"] as? [String: Any])?["counters"] as? [String: Any]
        #expect(c?["readings_accepted"] as? Int == 200)
        #expect(d.process.log.contains("spool: replayed 200 message(s)"), "log: \(d.process.log)")
        #expect(d.process.log.contains("corrupt_lines_skipped=1"))
        #expect(!FileManager.default.fileExists(atPath: spool.spoolPath) && !FileManager.default.fileExists(atPath: spool.replayingPath))
        // Forecasts from the replayed readings went out like any others.
        _ = await Harness.waitUntil(timeout: 5) { watcher.count("aiot/gw/forecasts/single") > 0 && watcher.count("aiot/gw/forecasts/single") >= d.energyLines.filter { !$0.isEmpty }.count }
        #expect(watcher.count("aiot/gw/forecasts/single") == d.energyLines.filter { !$0.isEmpty }.count)
        #expect(d.energyLines.filter { !$0.isEmpty }.count > 0)
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    @Test func energyLogAfterKill9ParsesLineByLine() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/status"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        for k in 0..<4000 { try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}") }
        _ = await Harness.waitUntil(timeout: 10) { d.energyLines.count > 200 }
        d.process.signal(SIGKILL)
        _ = await d.process.wait(timeout: 5)
        let lines = d.energyLines
        #expect(lines.count > 200)
        #expect(lines.last == "", "the file ends with a newline: no partial record")
        var seqs: [Int] = []
        for l in lines.dropLast() {
            let o = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o != nil, "unparseable line: \(l)")
            if let s = (o?["seq"] as? NSNumber)?.intValue { seqs.append(s) }
        }
        #expect(seqs == Array(1...seqs.count))
        // The broker published the will: the daemon is offline.
        _ = await Harness.waitUntil(timeout: 5) { watcher.received("aiot/gw/status").last?.json["online"] as? Bool == false }
        #expect(watcher.received("aiot/gw/status").last?.json["online"] as? Bool == false)
    }

    @Test func systemdNotifyProtocol() async throws {
        let sockPath = Harness.tempDir("notify") + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un(); addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in sockPath.utf8.enumerated() { p[i] = b } }
        #expect(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } } == 0)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        final class Received: Sendable { let m = Mutex<[String]>([]) }
        let received = Received()
        let reader = LoopThread("notify-reader") { [fd] in
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { let m = String(decoding: buf[0..<n], as: UTF8.self); received.m.withLock { $0.append(m) } }
        }
        defer { reader.stop() }
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/status"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        try await d.start(waitFor: watcher, environment: ["NOTIFY_SOCKET": sockPath, "WATCHDOG_USEC": "1000000"])
        func all() -> String { received.m.withLock { $0.joined(separator: "\n") } }
        #expect(await Harness.waitUntil(timeout: 5) { all().contains("READY=1") && all().contains("WATCHDOG=1") }, "\(all())")
        #expect(all().contains("STATUS="))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
        #expect(await Harness.waitUntil(timeout: 2) { all().contains("STOPPING=1") }, "\(all())")
    }

    @Test func fpgaEngineWithoutABoardServesFromItsSoftwareFallback() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        // A simulated board that was never booted: the accelerator does not answer.
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream) { dir in "[engine]\nkind = \"fpga\"\ndevice = \"sim:\(dir)/board.sim\"\n" }
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        let rows = try publishSingleReadings(pub, count: 40)
        let expected = try offlineForecasts(model: singleModel, rows: rows)
        _ = await Harness.waitUntil(timeout: 20) { forecastsByTime(watcher, sensor: "single").count >= expected.count }
        let got = forecastsByTime(watcher, sensor: "single")
        #expect(got.count == expected.count, "\(d.process.log)")
        for (t, e) in expected {
            #expect((got[t]?["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == e.q)
            #expect(got[t]?["engine"] as? String == "software", "the forecast says which engine really ran")
        }
        #expect(watcher.received("aiot/gw/status").last?.json["engine"] as? String == "fpga")
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }

    /// Starts `d` (an fpga engine on a prepared board), publishes `readings` readings of the single
    /// sensor, checks every forecast equals the offline one and came from the FPGA, stops `d`.
    /// Returns the forecasts by time, the energy-log records and the number of forecasts expected.
    func servedByTheBoard(_ d: DaemonUnderTest, broker: Broker, watcher: TestClient, readings: Int) async throws
        -> (forecasts: [Double: [String: Any]], records: [[String: Any]], expected: Int) {
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        var rows: [[Double]] = []
        for k in 0..<readings {
            rows.append([signal(k, 0)])
            try pub.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(rows[k][0])}")
        }
        let expected = try offlineForecasts(model: singleModel, rows: rows)
        _ = await Harness.waitUntil(timeout: 20) { forecastsByTime(watcher, sensor: "single").count >= expected.count }
        let got = forecastsByTime(watcher, sensor: "single")
        #expect(got.count == expected.count, "\(d.process.log)")
        for (t, e) in expected {
            #expect((got[t]?["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == e.q)
            #expect(got[t]?["engine"] as? String == "fpga", "the board answers: \(d.process.log)")
        }
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
        let records = d.energyLines.filter { !$0.isEmpty }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (got, records, expected.count)
    }

    @Test func fpgaEnergyComesFromTheBoardsPowerMonitor() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        // A simulated board booted with a golden image; the daemon uploads the model's weights.
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream) { dir in
            "[engine]\nkind = \"fpga\"\n[board]\ndevice = \"sim:\(dir)/board.sim\"\nupload_weights = true\nenergy_window_s = 0.01\n"
        }
        let board = try BoardModel(path: d.dir + "/board.sim")
        board.factoryProgram(BitstreamGenerator().payload(), at: 0)
        board.powerCycle()
        try board.save()
        let (got, records, expected) = try await servedByTheBoard(d, broker: broker, watcher: watcher, readings: 80)
        // The model's FPGA rails draw 0.068 W idle and 0.151 W busy; one modelled inference round
        // trip is 250-500 us: so each figure lies within 17-76 uJ.
        #expect(records.count == expected)
        let measured = records.filter { $0["energy_source"] as? String == "pac1934" }
        // Only inferences before the first window closed have no figure.
        #expect(measured.count >= records.count - 5, "\(records.prefix(8))")
        for r in records where r["energy_source"] as? String != "pac1934" {
            #expect(r["energy_uj"] is NSNull && r["energy_source"] as? String == "none", "\(r)")
        }
        for r in measured {
            let e = (r["energy_uj"] as? NSNumber)?.doubleValue ?? -1
            #expect(e >= 17 && e <= 76, "\(r)")
            let w = (r["power_w"] as? NSNumber)?.doubleValue ?? -1
            #expect(w >= 0.0678 * 0.99 && w <= 0.151 * 1.01, "\(r)")
        }
        // The forecasts carry the same figures.
        let fromForecasts = got.values.compactMap { ($0["energy_uj"] as? NSNumber)?.doubleValue }
        #expect(fromForecasts.count == measured.count)
    }

    /// A board without a power monitor (the iCEBreaker profile): every FPGA inference's energy is
    /// modelled from the accelerator's own cycle count, labelled "model" with its inputs.
    @Test func fpgaEnergyWithoutAMonitorIsModelledFromTheBoardsCycles() async throws {
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream) { dir in
            "[engine]\nkind = \"fpga\"\n[board]\ndevice = \"sim:\(dir)/board.sim\"\nupload_weights = true\n"
        }
        let board = try BoardModel(path: d.dir + "/board.sim", profile: .icebreaker)
        var o = FlashOptions()
        o.slot = 0
        o.golden = true
        _ = try Flasher(link: BoardLink(transport: board, profile: .icebreaker)).flash(try Bitstream(bytes: ICE40BitstreamGenerator().bitFile()), options: o)
        try board.save()
        let (_, records, expected) = try await servedByTheBoard(d, broker: broker, watcher: watcher, readings: 40)
        #expect(records.count == expected && !records.isEmpty)
        let shape = try QuantizedModel(contentsOf: singleModel).shape
        // The simulated iCEBreaker models the iCE40 core: its cycles and its 15.94 MHz clock.
        let cycles = BoardModel.modelledICE40Cycles(shape)
        for r in records {
            #expect(r["energy_source"] as? String == "model", "\(r)")
            let m = r["energy_model"] as? [String: Any]
            #expect(m?["name"] as? String == "fpga-cycles", "\(r)")
            #expect((m?["cycles"] as? NSNumber)?.intValue == cycles, "\(r)")
            let hz = (m?["clock_hz"] as? NSNumber)?.doubleValue ?? 0
            #expect(hz == BoardModel.ice40ClockHz, "\(r)")
            #expect((m?["watts"] as? NSNumber)?.doubleValue == 0.033, "the documented default: \(r)")
            let e = (r["energy_uj"] as? NSNumber)?.doubleValue ?? -1
            let want = Double(cycles) / BoardModel.ice40ClockHz * 0.033 * 1e6
            #expect(abs(e - want) <= 0.05 + want * 1e-3, "\(r): want \(want) uJ")
        }
    }

    @Test func fpgaEngineWithAMissingUSBDeviceIsAClearStartError() async throws {
        let d = try DaemonUnderTest(port: 1, streams: oneStream) { _ in "[engine]\nkind = \"fpga\"\ndevice = \"ftdi://0403:6010\"\n" }
        let p = try ChildProcess(Harness.aiotdPath, ["--check-config", d.configPath], logPath: d.dir + "/check.log")
        #expect(exited(await p.wait(timeout: 20)) == 1)
        #expect(p.log.contains("board.device ftdi://0403:6010"), "\(p.log)")
    }
}
