// The automatic rollback through the built aiotd and a real mosquitto: the elecdemand test split
// is published, the stream's model file is overwritten with a deliberately worse model of the same
// shape (head weights from a seeded generator, seed printed) and the daemon gets SIGHUP; after
// `rollback.steps` resolved steps the previous model serves again, the verdict is on the retained
// status topic and in the metrics.
import Testing
import Foundation
import AIOTModel
@testable import AIOTDaemon
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct RollbackIntegration {
    @Test func aWorseModelIsRolledBackByTheDaemonAfterASighup() async throws {
        let seed = UInt64(0xBAD_5EED)
        let ref = try AccuracyReferenceData.load(model: elecModel)
        let dir = Harness.tempDir("rollback-int")
        let path = dir + "/elec.safetensors"
        try FileManager.default.copyItem(atPath: elecModel, toPath: path)
        let good = try QuantizedModel(contentsOf: path)
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let metricsPort = Harness.freePort()
        let d = try DaemonUnderTest(port: broker.port, metricsPort: metricsPort, streams: """
        [rollback]
        steps = 48
        worse_by = 20

        [[stream]]
        name = "elec"
        sensor = "elec"
        model = "\(path)"
        max_future_s = 3.0e9
        """)
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        func forecasts() -> [Double: [Int32]] {
            var f: [Double: [Int32]] = [:]
            for m in watcher.received("aiot/gw/forecasts/elec") {
                f[(m.json["t"] as! NSNumber).doubleValue] = (m.json["q"] as! [NSNumber]).map { Int32(truncating: $0) }
            }
            return f
        }
        func offline(_ model: QuantizedModel, _ k: Int) throws -> [Int32] {
            try SoftwareEngine(model: model).infer(try model.quantizeInput(ref.rows[(k - 23)...k].flatMap { $0 }))
        }
        func lastSwitch() -> [String: Any]? {
            (watcher.received("aiot/gw/status").last?.json["models"] as? [[String: Any]])?.first?["model_switch"] as? [String: Any]
        }
        for k in 0..<200 { try pub.publish("aiot/gw/readings/elec", ref.payload(k)) }
        #expect(await Harness.waitUntil(timeout: 30) { forecasts().count == 200 - 23 }, "log: \(d.process.log.suffix(2000))")
        try writePerturbedModel(elecModel, to: path, seed: seed)
        let worse = try QuantizedModel(contentsOf: path)
        d.process.signal(SIGHUP)
        #expect(await Harness.waitUntil(timeout: 10) { lastSwitch()?["state"] as? String == "trial" }, "log: \(d.process.log.suffix(2000))")
        for k in 200..<300 { try pub.publish("aiot/gw/readings/elec", ref.payload(k)) }
        #expect(await Harness.waitUntil(timeout: 30) { forecasts().count == 300 - 23 && lastSwitch()?["state"] as? String == "rolled_back" },
                "seed \(seed): \(String(describing: lastSwitch())); log: \(d.process.log.suffix(2000))")
        let s = try #require(lastSwitch())
        print("rollback (aiotd, mosquitto): seed \(seed): \(s)")
        #expect(s["reason"] as? String == "worse" && (s["steps"] as? NSNumber)?.intValue == 48, "seed \(seed)")
        #expect((s["windows"] as? [String: Any])?["kept"] as? Int == 1)
        // The verdict came with the reading that resolved the 48th step (step 248): the worse model
        // forecast the windows ending at 200 ... 248, the previous model every one after.
        let f = forecasts()
        for k in 200...248 { #expect(f[ref.times[k]] == (try offline(worse, k)), "seed \(seed), step \(k)") }
        for k in 249..<300 { #expect(f[ref.times[k]] == (try offline(good, k)), "seed \(seed), step \(k)") }
        let metrics = Harness.httpGet(port: metricsPort, path: "/metrics") ?? ""
        #expect(metrics.contains("aiotd_model_rollbacks_total{reason=\"worse\"} 1\n"), "\(metrics)")
        #expect(metrics.contains("aiotd_shadow_inferences_total 49\n"), "\(metrics)")
        #expect(d.process.log.contains("model rolled back"))
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
    }
}
