// The artifact channel end to end: a real mosquitto, aiotd as a child process, aiotctl's real
// sign/deploy commands, and hostile messages published by the test (docs/deploy.md).
import Testing
import Foundation
import Crypto
import AIOTDeploy
import AIOTBoard
import AIOTBoardSim
@testable import AIOTDaemon
#if canImport(Glibc)
import Glibc
#endif

private let newModel = Harness.packageRoot + "/models/random/w24f1d16h1n1p1-w4a8.safetensors"

private var aiotctlPath: String { URL(fileURLWithPath: Harness.aiotdPath).deletingLastPathComponent().appendingPathComponent("aiotctl").path }

/// Runs aiotctl to completion; its exit code and output.
private func aiotctl(_ args: [String], log: String) async throws -> (Int32?, String) {
    let p = try ChildProcess(aiotctlPath, args, logPath: log)
    let st = await p.wait(timeout: 120)
    if st == nil { p.killAndReap() }
    return (exited(st), p.log)
}

private final class DeployFixture: @unchecked Sendable {
    let broker: Broker
    let watcher: TestClient
    let daemon: DaemonUnderTest
    let keyPath: String
    let key: DeploySigningKey
    var deployDir: String { daemon.dir + "/deploy" }
    var k = 0

    init(name: String, extra: String = "", metricsPort: Int = 0) async throws {
        broker = try await Broker()
        watcher = try TestClient(port: broker.port, id: "watch-\(name)")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let dir = Harness.tempDir("deploykey")
        keyPath = dir + "/deploy.key"
        key = DeploySigningKey.generate()
        try key.write(to: keyPath)
        let hex = key.publicKey.hex
        daemon = try DaemonUnderTest(port: broker.port, metricsPort: metricsPort, streams: oneStream,
                                     extra: { d in "[deploy]\ntrusted_keys = [\"\(hex)\"]\ndirectory = \"\(d)/deploy\"\n" + extra.replacingOccurrences(of: "DIR", with: d) })
    }

    func start(environment: [String: String] = [:]) async throws {
        try await daemon.start(waitFor: watcher, environment: environment)
    }

    func restart() async throws {
        watcher.messages.withLock { $0.removeAll() }
        try await start()
    }

    /// Feeds `n` more readings and returns the model identity of the last forecast. A full
    /// window each time: a restart starts with empty windows, and a model whose input
    /// quantization differs does not inherit them.
    func feed(_ n: Int = 26) async throws -> String? {
        let before = watcher.count("aiot/gw/forecasts/single")
        for _ in 0..<n {
            try watcher.publish("aiot/gw/readings/single", "{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}")
            k += 1
        }
        _ = await Harness.waitUntil(timeout: 10) { watcher.count("aiot/gw/forecasts/single") > before }
        // Until the forecasts stop arriving.
        var seen = -1
        while seen != watcher.count("aiot/gw/forecasts/single") {
            seen = watcher.count("aiot/gw/forecasts/single")
            try await Task.sleep(for: .milliseconds(400))
        }
        return watcher.received("aiot/gw/forecasts/single").last?.json["model"] as? String
    }

    func manifest(_ artifact: [UInt8], version: UInt64, gateway: String = "gw", expires: Int64? = nil, stream: String = "single") -> Manifest {
        let now = Int64(Date().timeIntervalSince1970)
        return Manifest(kind: .model, name: "m.safetensors", version: version, gateways: [gateway], stream: stream, size: UInt64(artifact.count),
                        sha256: Array(SHA256.hash(data: artifact)), notBefore: now - 60, expires: expires ?? now + 3600, keyID: "")
    }

    /// Publishes a deploy message and waits for the reply with this id whose state is not "receiving".
    func send(_ id: String, _ part: String, _ payload: [UInt8], final: Bool = true) async throws -> [String: Any]? {
        let before = watcher.received("aiot/gw/reply/\(id)").count
        try watcher.publish("aiot/gw/deploy/\(id)/\(part)", bytes: payload)
        var r: [String: Any]?
        _ = await Harness.waitUntil(timeout: 10) {
            r = watcher.received("aiot/gw/reply/\(id)").dropFirst(before).first { !final || ($0.json["state"] as? String) != "receiving" }?.json
            return r != nil
        }
        return r
    }

    func deployWithCLI(_ artifact: String, version: UInt64, id: String? = nil, timeout: Double = 20) async throws -> (Int32?, String) {
        let manifest = daemon.dir + "/\(version).manifest"
        let (rc, out) = try await aiotctl(["sign", artifact, "--key", keyPath, "--version", "\(version)", "--gateway", "gw", "--stream", "single", "--out", manifest],
                                          log: daemon.dir + "/sign.log")
        #expect(rc == 0, "aiotctl sign: \(out)")
        return try await aiotctl(["deploy", artifact, "--manifest", manifest, "--broker", "127.0.0.1:\(broker.port)", "--gateway", "gw",
                                  "--chunk-size", "1024", "--timeout", "\(timeout)"] + (id.map { ["--id", $0] } ?? []),
                                 log: daemon.dir + "/deploy-\(version)-\(UInt32.random(in: 0...UInt32.max)).log")
    }
}

private func identity(_ path: String) throws -> String { try LoadedModel(contentsOf: path).identity }

@Suite(.serialized) struct DeployIntegrationTests {
    @Test func signedModelDeploysServesSurvivesRestartAndRollsBack() async throws {
        let f = try await DeployFixture(name: "ok")
        try await f.start()
        defer { f.daemon.process.killAndReap() }
        let (old, new) = (try identity(singleModel), try identity(newModel))
        #expect(old != new)
        #expect(try await f.feed(30) == old)
        let (rc, out) = try await f.deployWithCLI(newModel, version: 1)
        #expect(rc == 0, "aiotctl deploy: \(out)\n\(f.daemon.process.log)")
        #expect(out.contains("activated version 1"), "\(out)")
        #expect(try await f.feed() == new, "forecasts after the deploy: \(f.daemon.process.log)")
        // A restart serves the active slot, not the configured file.
        f.daemon.process.signal(SIGTERM)
        #expect(exited(await f.daemon.process.wait(timeout: 10)) == 0)
        try await f.restart()
        #expect(try await f.feed() == new)
        // Replaying the same signed version is refused (version floor).
        let replay = try await f.deployWithCLI(newModel, version: 1, timeout: 5)
        #expect(replay.0 != 0 && replay.1.contains("old_version"), "\(replay.1)")
        // Operator rollback (signed) goes back to the previous slot... which here is empty: only
        // one deployed version. Deploy the original as version 2, then roll back to version 1.
        #expect(try await f.deployWithCLI(singleModel, version: 2).0 == 0)
        #expect(try await f.feed() == old)
        let (rrc, rout) = try await aiotctl(["deploy", "--rollback", "--stream", "single", "--key", f.keyPath, "--broker", "127.0.0.1:\(f.broker.port)", "--gateway", "gw"],
                                            log: f.daemon.dir + "/rollback.log")
        #expect(rrc == 0 && rout.contains("rolled_back version 1"), "\(rout)")
        #expect(try await f.feed() == new)
        let (src, sout) = try await aiotctl(["deploy", "--status", "--broker", "127.0.0.1:\(f.broker.port)", "--gateway", "gw"], log: f.daemon.dir + "/status.log")
        #expect(src == 0 && sout.contains("\"active_version\" : 1") && sout.contains("\"floor\" : 2") && sout.contains("\"rollbacks\" : 1"), "\(sout)")
    }

    @Test func hostileAndBrokenDeploymentsAreRefusedWithTheirReasonAndNothingChanges() async throws {
        let metricsPort = Harness.freePort()
        let f = try await DeployFixture(name: "bad", metricsPort: metricsPort)
        try await f.start()
        defer { f.daemon.process.killAndReap() }
        let old = try identity(singleModel)
        #expect(try await f.feed(30) == old)
        let art = Array(try Data(contentsOf: URL(fileURLWithPath: newModel)))

        func reason(_ r: [String: Any]?) -> String? { r?["reason"] as? String }
        // Bad signature: one hex digit of the signature changed.
        var bad = try f.manifest(art, version: 1).signed(with: f.key)
        bad[bad.count - 5] = bad[bad.count - 5] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        #expect(reason(try await f.send("sig", "manifest", bad)) == "bad_signature")
        #expect(reason(try await f.send("other", "manifest", try f.manifest(art, version: 1).signed(with: .generate()))) == "unknown_key")
        #expect(reason(try await f.send("gw2", "manifest", try f.manifest(art, version: 1, gateway: "gw2").signed(with: f.key))) == "wrong_gateway")
        let past = Int64(Date().timeIntervalSince1970) - 10
        var expired = f.manifest(art, version: 1)
        expired.notBefore = past - 3600; expired.expires = past
        #expect(reason(try await f.send("exp", "manifest", try expired.signed(with: f.key))) == "expired")
        #expect(reason(try await f.send("strm", "manifest", try f.manifest(art, version: 1, stream: "nope").signed(with: f.key))) == "wrong_stream")

        // A good manifest, then a truncated chunk and a corrupted one: each refused, staging goes on.
        let chunks = Chunk.split(art, size: 1024)
        let begun = try await f.send("good", "manifest", try f.manifest(art, version: 1).signed(with: f.key), final: false)
        #expect(begun?["state"] as? String == "receiving" && begun?["next_offset"] as? Int == 0)
        let trunc = try await f.send("good", "chunk", Array(chunks[0].encoded().dropLast(10)))
        #expect(reason(trunc) == "malformed" && trunc?["state"] as? String == "need" && trunc?["next_offset"] as? Int == 0)
        var corrupt = chunks[0]
        var d = Array(corrupt.data); d[100] ^= 0x40; corrupt.data = d[...]
        let cr = try await f.send("good", "chunk", corrupt.encoded())
        #expect(reason(cr) == "chunk_corrupt" && cr?["next_offset"] as? Int == 0)
        // The sender stops half way (truncated artifact): nothing is activated.
        for c in chunks.prefix(chunks.count / 2) { try f.watcher.publish("aiot/gw/deploy/good/chunk", bytes: c.encoded()) }
        #expect(try await f.feed() == old)

        // A signed artifact that is not a loadable model: refused by the loader's validation.
        var broken = art
        broken.replaceSubrange(8..<40, with: [UInt8](repeating: 0x7B, count: 32))
        _ = try await f.send("broken", "manifest", try f.manifest(broken, version: 3).signed(with: f.key), final: false)
        let bc = Chunk.split(broken, size: 1024)
        for c in bc.dropLast() { try f.watcher.publish("aiot/gw/deploy/broken/chunk", bytes: c.encoded()) }
        let verdict = try await f.send("broken", "chunk", bc.last!.encoded())
        #expect(reason(verdict) == "validation_failed", "\(String(describing: verdict))")
        #expect(try await f.feed() == old)
        // A chunk for an id nobody deploys: counted, not answered (no reply flood).
        try f.watcher.publish("aiot/gw/deploy/ghost/chunk", bytes: chunks[0].encoded())
        try await Task.sleep(for: .milliseconds(500))
        #expect(f.watcher.count("aiot/gw/reply/ghost") == 0)
        // Nothing was activated, and the refusals were counted.
        #expect(!FileManager.default.fileExists(atPath: f.deployDir + "/" + Deployments.directoryName(.model, "single") + "/active"))
        let st = try await f.send("st", "status", [])
        let refused = (st?["deploy"] as? [String: Any])?["refused"] as? [String: Int]
        #expect(refused?["bad_signature"] == 1 && refused?["unknown_key"] == 1 && refused?["expired"] == 1 && refused?["chunk_corrupt"] == 1
                && refused?["validation_failed"] == 1 && refused?["malformed"] == 1 && refused?["no_manifest"] == 1, "\(String(describing: refused))")
        let metrics = Harness.httpGet(port: metricsPort, path: "/metrics") ?? ""
        #expect(metrics.contains("aiotd_deploy_refused_total{reason=\"bad_signature\"} 1"), "\(metrics.split(separator: "\n").filter { $0.contains("deploy") })")
        #expect(f.daemon.process.isRunning)
    }

    /// kill -9 at each point, then restart: the old version serves unless the flip completed, and
    /// an interrupted staging resumes (same id) rather than starting over. The broker is restarted
    /// too (it keeps no sessions), so what aiotctl had queued for aiotd is not redelivered: the
    /// restart sees exactly the disk state the kill left.
    @Test(arguments: ["mid-staging", "after-staging", "after-flip"])
    func killNineDuringADeploymentLeavesAConsistentVersion(point: String) async throws {
        let f = try await DeployFixture(name: point)
        try await f.start(environment: ["AIOTD_DEPLOY_KILL_AT": point])
        defer { f.daemon.process.killAndReap() }
        let (old, new) = (try identity(singleModel), try identity(newModel))
        #expect(try await f.feed(30) == old)
        let (rc, _) = try await f.deployWithCLI(newModel, version: 1, id: "dep1", timeout: 3)
        #expect(rc != 0)
        #expect(await f.daemon.process.wait(timeout: 10) != nil, "aiotd was not killed at \(point)")
        let ch = f.deployDir + "/" + Deployments.directoryName(.model, "single")
        let exists = { (name: String) in FileManager.default.fileExists(atPath: ch + "/" + name) }
        let active = (try? String(contentsOfFile: ch + "/active", encoding: .utf8)) ?? ""
        switch point {
        case "mid-staging": #expect(exists("staging.bin") && !exists("active") && !exists("a.bin"))
        case "after-staging": #expect(!exists("staging.bin") && !exists("active") && exists("a.bin") && exists("a.manifest"))
        default: #expect(!exists("staging.bin") && active == "slot=a\nversion=1\nfloor=1\n")
        }
        await f.broker.stopGracefully()
        try await f.broker.start()
        #expect(await Harness.waitUntil(timeout: 10) { f.watcher.client.isConnected })
        try await Task.sleep(for: .milliseconds(300))
        try await f.restart()
        #expect(try await f.feed() == (point == "after-flip" ? new : old), "\(point): \(f.daemon.process.log)")
        if point == "mid-staging" {
            #expect(exists("staging.bin"))
            // The same deployment resumes where it stopped and completes.
            let (rc2, out2) = try await f.deployWithCLI(newModel, version: 1, id: "dep1")
            #expect(rc2 == 0 && out2.contains("gateway needs bytes from 1024 of"), "aiotctl said: \(out2)")
            #expect(try await f.feed() == new)
        }
    }

    /// A bitstream goes to a board slot (never golden) through the flasher's verify path and boots;
    /// one that does not configure is refused and the previous slot runs again (board model).
    @Test func bitstreamDeploysToABoardSlotAndAFailingOneFallsBack() async throws {
        let f = try await DeployFixture(name: "bit", extra: "[engine]\nkind = \"fpga\"\n[board]\ndevice = \"sim:DIR/board.sim\"\nupload_weights = true\n")
        let golden = BitstreamGenerator().payload()
        let board = try BoardModel(path: f.daemon.dir + "/board.sim")
        board.factoryProgram(golden, at: 0)
        board.powerCycle()
        try board.save()
        try await f.start()
        defer { f.daemon.process.killAndReap() }
        func image(_ seed: UInt64, corrupt: Bool = false) throws -> String {
            var g = BitstreamGenerator()
            g.seed = seed
            g.corruptCRC = corrupt
            let path = f.daemon.dir + "/image-\(seed).bit"
            try Data(g.bitFile()).write(to: URL(fileURLWithPath: path))
            return path
        }
        func deploy(_ path: String, version: UInt64) async throws -> (Int32?, String) {
            let manifest = path + ".manifest"
            let (rc, out) = try await aiotctl(["sign", path, "--key", f.keyPath, "--kind", "bitstream", "--version", "\(version)", "--gateway", "gw", "--stream", "board", "--out", manifest],
                                              log: f.daemon.dir + "/sign-bit.log")
            #expect(rc == 0, "\(out)")
            return try await aiotctl(["deploy", path, "--manifest", manifest, "--broker", "127.0.0.1:\(f.broker.port)", "--gateway", "gw", "--timeout", "60"],
                                     log: f.daemon.dir + "/deploy-bit-\(version).log")
        }
        let good = try image(2)
        let (rc, out) = try await deploy(good, version: 1)
        #expect(rc == 0 && out.contains("activated version 1 in slot a"), "\(out)\n\(f.daemon.process.log)")
        let (rc2, out2) = try await deploy(try image(3, corrupt: true), version: 2)
        #expect(rc2 != 0 && out2.contains("validation_failed") && out2.contains("did not configure") && out2.contains("slot 1 runs again"), "\(out2)")
        // On the board: slot 1 holds the good image, golden is untouched; the daemon still serves.
        let after = try BoardModel(path: f.daemon.dir + "/board.sim")
        let slot1 = try BoardProfile.xc7s15Gateway.layout.address(slot: 1, flashBytes: after.flash.count)
        let payload = try Bitstream(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: good)))).payload
        #expect(Array(after.flash[slot1..<slot1 + payload.count]) == payload)
        #expect(Array(after.flash[0..<golden.count]) == golden)
        #expect(try await f.feed(30) != nil && f.daemon.process.isRunning)
        let active = try String(contentsOfFile: f.deployDir + "/" + Deployments.directoryName(.bitstream, "board") + "/active", encoding: .utf8)
        #expect(active == "slot=a\nversion=1\nfloor=1\n")
        // A power cycle loads golden; the restarted daemon boots the deployed slot again.
        f.daemon.process.signal(SIGTERM)
        #expect(exited(await f.daemon.process.wait(timeout: 10)) == 0)
        let cycled = try BoardModel(path: f.daemon.dir + "/board.sim")
        cycled.powerCycle()
        try cycled.save()
        #expect(try BoardLink(transport: cycled).info().bootAddress == 0)
        try await f.restart()
        f.daemon.process.signal(SIGTERM)
        #expect(exited(await f.daemon.process.wait(timeout: 10)) == 0)
        #expect(try BoardLink(transport: try BoardModel(path: f.daemon.dir + "/board.sim")).info().bootAddress == slot1, "\(f.daemon.process.log)")
    }
}
