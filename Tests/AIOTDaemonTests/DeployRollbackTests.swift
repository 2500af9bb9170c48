// A deployment's automatic rollback, end to end: a signed, deliberately worse model (head weights
// from a seeded generator, seed printed) deployed with aiotctl to the built aiotd over a real
// mosquitto goes live under trial, is rolled back by its online error after `rollback.steps`
// resolved steps, and is rolled back on disk too: a restart serves the model that won.
import Testing
import Foundation
import AIOTDeploy
import AIOTModel
@testable import AIOTDaemon
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct DeployRollbackIntegration {
    @Test func aWorseDeployedModelIsRolledBackInMemoryAndOnDisk() async throws {
        let seed = UInt64(0xDE9_10B)
        let ref = try AccuracyReferenceData.load(model: elecModel)
        let dir = Harness.tempDir("deploy-rollback")
        let worsePath = dir + "/worse.safetensors"
        try writePerturbedModel(elecModel, to: worsePath, seed: seed)
        let (goodID, worseID) = (try LoadedModel(contentsOf: elecModel).identity, try LoadedModel(contentsOf: worsePath).identity)
        let keyPath = dir + "/deploy.key"
        let key = DeploySigningKey.generate()
        try key.write(to: keyPath)
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: """
        [rollback]
        steps = 48
        worse_by = 20

        [[stream]]
        name = "elec"
        sensor = "elec"
        model = "\(elecModel)"
        max_future_s = 3.0e9
        """, extra: { dir in "[deploy]\ntrusted_keys = [\"\(key.publicKey.hex)\"]\ndirectory = \"\(dir)/deploy\"\n" })
        try await d.start(waitFor: watcher)
        defer { d.process.killAndReap() }
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        func forecasts() -> [(t: Double, model: String)] {
            watcher.received("aiot/gw/forecasts/elec").map { (($0.json["t"] as! NSNumber).doubleValue, $0.json["model"] as! String) }
        }
        func lastSwitch() -> [String: Any]? {
            (watcher.received("aiot/gw/status").last?.json["models"] as? [[String: Any]])?.first?["model_switch"] as? [String: Any]
        }
        for k in 0..<100 { try pub.publish("aiot/gw/readings/elec", ref.payload(k)) }
        #expect(await Harness.waitUntil(timeout: 30) { forecasts().count == 100 - 23 }, "log: \(d.process.log.suffix(2000))")

        // Sign and deploy the worse model with aiotctl, as an operator would.
        let aiotctl = URL(fileURLWithPath: Harness.aiotdPath).deletingLastPathComponent().appendingPathComponent("aiotctl").path
        func run(_ args: [String], _ log: String) async throws -> (Int32?, String) {
            let p = try ChildProcess(aiotctl, args, logPath: dir + "/" + log)
            let st = await p.wait(timeout: 120)
            if st == nil { p.killAndReap() }
            return (exited(st), p.log)
        }
        let manifest = dir + "/worse.manifest"
        let signed = try await run(["sign", worsePath, "--key", keyPath, "--version", "1", "--gateway", "gw", "--stream", "elec", "--out", manifest], "sign.log")
        #expect(signed.0 == 0, "\(signed.1)")
        let deployed = try await run(["deploy", worsePath, "--manifest", manifest, "--broker", "127.0.0.1:\(broker.port)", "--gateway", "gw",
                                      "--chunk-size", "1024", "--timeout", "60"], "deploy.log")
        #expect(deployed.0 == 0 && deployed.1.contains("activated version 1"), "\(deployed.1)\n\(d.process.log.suffix(2000))")
        #expect(await Harness.waitUntil(timeout: 10) { lastSwitch()?["state"] as? String == "trial" }, "\(String(describing: lastSwitch()))")
        let channel = try DeployChannel(directory: d.dir + "/deploy/" + Deployments.directoryName(.model, "elec"))
        #expect(channel.pointer()?.version == 1)

        for k in 100..<200 { try pub.publish("aiot/gw/readings/elec", ref.payload(k)) }
        #expect(await Harness.waitUntil(timeout: 30) { forecasts().count == 200 - 23 && lastSwitch()?["state"] as? String == "rolled_back" },
                "seed \(seed): \(String(describing: lastSwitch())); log: \(d.process.log.suffix(2000))")
        let s = try #require(lastSwitch())
        print("deploy rollback (aiotd, mosquitto): seed \(seed): \(s)")
        #expect(s["reason"] as? String == "worse" && (s["steps"] as? NSNumber)?.intValue == 48, "seed \(seed)")
        #expect((s["origin"] as? String)?.hasPrefix("deployment:") == true, "\(s)")
        // Forecasts: the worse model's during the trial, the previous model's after the verdict.
        let byModel = Dictionary(grouping: forecasts().filter { $0.t >= ref.times[100] }, by: \.model).mapValues(\.count)
        #expect(byModel[worseID] == 49 && forecasts().last?.model == goodID, "seed \(seed): \(byModel)")
        // On disk: the pointer names no deployed version now, and the floor keeps version 1 out.
        let p = try #require(channel.pointer())
        #expect(p.isNone && p.floor == 1, "\(p)")

        // A restart serves the configured model again, not the rolled-back deployment.
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
        watcher.messages.withLock { $0.removeAll() }
        try await d.start(waitFor: watcher)
        for k in 200..<230 { try pub.publish("aiot/gw/readings/elec", ref.payload(k)) }
        #expect(await Harness.waitUntil(timeout: 30) { forecasts().count == 30 - 23 }, "log: \(d.process.log.suffix(2000))")
        #expect(Set(forecasts().map(\.model)) == [goodID], "seed \(seed): after the restart \(Set(forecasts().map(\.model)))")
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
    }
}
