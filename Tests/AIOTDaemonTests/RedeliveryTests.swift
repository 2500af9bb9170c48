// Issue 11: QoS 1 means one forecast per reading, also after a broker restart. A persistent
// mosquitto is stopped (SIGTERM) in the middle of a stream of 5 sensors at about 400 readings/s
// from publishers with 100 messages in flight and persistent sessions, then restarted on the same
// store. Every window must still be forecast exactly once.
//
// An observer subscribed like aiotd (QoS 1, persistent session) counts the readings that reach a
// subscriber out of order (older than one already seen from that sensor) or twice, so each run
// shows whether redelivery really reordered. With one libmosquitto publisher it does not (it
// resends its queue in order): `oneOrderedPublisher`, 0 out of order in every run.
// `twoPublishersReorderAcrossTheRestart` sends the readings of the 5 steps while the broker is down
// through a second connection that retries every 4 s (the first every 1 s), and lets the first
// publish 26 newer steps before the second's backlog arrives: readings arrive 27-31 steps out of
// order, as from a client that resends its in-flight messages after newer ones (paho in the
// issue's run). The windows they unblock are older than ones already forecast: flagged late. Each
// runs AIOT_RESTART_RUNS times (default in CI: 1 ordered, 2 reordered); `tools/restart_runs.sh N` is the measurement in
// docs/reliability.md.
import Testing
import Foundation
import AIOTModel
#if canImport(Glibc)
import Glibc
#endif

let restartRuns = Int(ProcessInfo.processInfo.environment["AIOT_RESTART_RUNS"] ?? "") ?? 2
/// The ordered scenario only shows that nothing reorders: one run in CI.
let orderedRestartRuns = Int(ProcessInfo.processInfo.environment["AIOT_RESTART_RUNS"] ?? "") ?? 1

@Suite(.serialized) struct BrokerRestartRedelivery {
    @Test(arguments: 0..<orderedRestartRuns)
    func oneOrderedPublisher(_ run: Int) async throws {
        try await restartScenario(run: run, publishers: 1)
    }

    @Test(arguments: 0..<restartRuns)
    func twoPublishersReorderAcrossTheRestart(_ run: Int) async throws {
        let (outOfOrder, late) = try await restartScenario(run: run, publishers: 2)
        #expect(outOfOrder > 0, "run \(run): nothing arrived out of order; the scenario did not reorder")
        #expect(late > 0, "run \(run): no forecast flagged late")
    }

    /// Returns how many readings reached the observer out of order, and how many forecasts were flagged late.
    @discardableResult
    func restartScenario(run: Int, publishers: Int) async throws -> (outOfOrder: Int, late: Int) {
        let broker = try await Broker(persistence: true)
        let watcher = try TestClient(port: broker.port, id: "watcher-\(run)", cleanSession: false)
        try await watcher.start(subscribing: ["aiot/gw/forecasts/#", "aiot/gw/status"])
        let observer = try TestClient(port: broker.port, id: "observer-\(run)", cleanSession: false)
        try await observer.start(subscribing: ["aiot/gw/readings/#"])
        // max_gap_fill = 0 with two publishers: a step missing past the reorder buffer is given up
        // (never filled with a held value), so every forecast can be checked exactly, and the
        // windows a late reading unblocks are forecast then, flagged late.
        let d = try DaemonUnderTest(port: broker.port, streams: """
        [[stream]]
        name = "five"
        sensors = ["s?"]
        model = "\(singleModel)"
        max_future_s = 3.0e9
        \(publishers > 1 ? "max_gap_fill = 0" : "")
        """)
        try await d.start(waitFor: watcher)
        var pubs: [TestClient] = []
        for p in 0..<publishers {
            // The second publisher retries its connection every 4 s, the first every second: after
            // the restart the first one's backlog reaches the broker seconds before the second's.
            let c = try TestClient(port: broker.port, id: "pub-\(run)-\(p)", cleanSession: false, reconnectDelay: p == 0 ? 1 : 4)
            try await c.start()
            pubs.append(c)
        }
        let model = try QuantizedModel(contentsOf: singleModel)
        let w = model.shape.window, sensors = 5, steps = 240
        // The restart lands at a different point each run.
        let stopAt = 90 + 23 * run % 60
        // Two publishers: 5 steps down, then 26 newer steps before the backlog: readings up to 31
        // steps out of order, within the default late_steps (32), the depth the policy promises to
        // place without loss; and more than a window (24) ahead, so newer windows are forecast
        // first and the ones the backlog unblocks are late. AIOT_RESTART_AHEAD=40 (45 deep) shows
        // what lies beyond: windows whose oldest steps left the ring are lost (docs/reliability.md).
        let restartAt = stopAt + (publishers == 1 ? 40 : 5)
        let ahead = Int(ProcessInfo.processInfo.environment["AIOT_RESTART_AHEAD"] ?? "") ?? 26
        for k in 0..<steps {
            if k == stopAt { await broker.stopGracefully() }
            if k == restartAt {
                try await broker.start()
                if publishers > 1 { _ = await Harness.waitUntil(timeout: 10) { pubs[0].client.isConnected } }
            }
            // The second publisher's backlog (the steps of the downtime) arrives `ahead` steps later.
            if publishers > 1 && k == restartAt + ahead { _ = await Harness.waitUntil(timeout: 10) { pubs[1].client.isConnected } }
            let p = publishers > 1 && k >= stopAt && k < restartAt ? 1 : 0
            for s in 0..<sensors {
                try pubs[p].publish("aiot/gw/readings/s\(s)", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k + 7 * s, 0))}")
            }
            try await Task.sleep(for: .microseconds(12_500))   // 5 readings per 12.5 ms: 400/s
        }
        let expected = sensors * (steps - w + 1)
        let ok = await Harness.waitUntil(timeout: 60) { watcher.count("aiot/gw/forecasts/") >= expected }
        try await Task.sleep(for: .milliseconds(500))   // a duplicate would arrive by now
        // The order the broker delivered the readings in, as a subscriber like aiotd saw it.
        var newest: [String: Double] = [:], delivered: [String: Set<Double>] = [:]
        var outOfOrder = 0, duplicates = 0
        for m in observer.received("aiot/gw/readings/") {
            guard let t = (m.json["t"] as? NSNumber)?.doubleValue else { continue }
            if t < newest[m.topic, default: -1] { outOfOrder += 1 }
            newest[m.topic] = max(newest[m.topic, default: -1], t)
            if !delivered[m.topic, default: []].insert(t).inserted { duplicates += 1 }
        }
        if ProcessInfo.processInfo.environment["AIOT_RESTART_TRACE"] != nil {
            print("trace s0:", observer.received("aiot/gw/readings/s0").compactMap { (($0.json["t"] as? NSNumber)?.doubleValue).map { Int(($0 - T0) / 60) } }.filter { $0 >= stopAt - 5 && $0 <= restartAt + 10 })
        }
        // The same window twice with the same payload (same seq) is the broker redelivering a
        // QoS 1 publish whose PUBACK the restart cut off: allowed by QoS 1. Twice with different
        // seq would be aiotd forecasting a window twice: never.
        var seen: [String: Set<Int>] = [:]
        var copies = 0
        var late = 0
        let engine = SoftwareEngine(model: model)
        for m in watcher.received("aiot/gw/forecasts/") {
            guard let sensor = m.json["sensor"] as? String, let s = Int(sensor.dropFirst()),
                  let t = (m.json["t"] as? NSNumber)?.doubleValue else { continue }
            copies += 1
            seen["\(sensor)@\(t)", default: []].insert((m.json["seq"] as? NSNumber)?.intValue ?? -1)
            if m.json["late"] as? Bool == true { late += 1 }
            let end = Int(((t - T0) / 60).rounded())
            let q = try engine.infer(try model.quantizeInput((end - w + 1...end).map { signal($0 + 7 * s, 0) }))
            #expect((m.json["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == q, "\(sensor) at step \(end)")
        }
        var missing: [String] = []
        for s in 0..<sensors { for k in (w - 1)..<steps where seen["s\(s)@\(T0 + Double(k) * 60)"] == nil { missing.append("s\(s)@\(k)") } }
        let doubled = seen.filter { $0.value.count > 1 }.map(\.key)
        #expect(ok && missing.isEmpty, "run \(run): \(missing.count) of \(expected) forecasts missing: \(missing.prefix(20)); log: \(d.process.log.suffix(1500))")
        #expect(doubled.isEmpty, "run \(run): published twice: \(doubled.prefix(10))")
        #expect(delivered.values.reduce(0) { $0 + $1.count } == sensors * steps, "the broker lost readings: the scenario is not QoS 1 lossless")
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
        // One energy record per inference: the daemon ran each window once.
        let inferences = d.energyLines.filter { !$0.isEmpty }.count
        #expect(inferences == expected, "run \(run): \(inferences) inferences for \(expected) windows")
        print("broker restart, \(publishers) publisher(s), run \(run) (stop at step \(stopAt)): readings to a subscriber \(outOfOrder) out of order, "
              + "\(duplicates) twice; \(seen.count)/\(expected) windows forecast, \(inferences) inferences, "
              + "\(late) flagged late, \(copies - seen.count) QoS 1 redelivered copies, \(doubled.count) forecast twice")
        return (outOfOrder, late)
    }
}
