// configs/mosquitto-acl.example on a real mosquitto (password_file + acl_file, no anonymous
// clients) in front of the aiotd binary: a client without the right to command publishes commands
// and aiotd never sees them; the operator's signed commands (aiotctl sign-command) are answered.
import Testing
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a tool to completion; its output (stdout and stderr) and exit code.
func runTool(_ path: String, _ args: [String]) async throws -> (out: String, code: Int32?) {
    let log = Harness.tempDir("tool") + "/out"
    let p = try ChildProcess(path, args, logPath: log)
    let st = await p.wait(timeout: 30)
    return (p.log, exited(st))
}

@Suite(.serialized) struct CommandACLTests {
    @Test func aClientWithoutRightsCannotCommandAndTheOperatorCan() async throws {
        let dir = Harness.tempDir("acl")
        let acl = try String(contentsOfFile: Harness.packageRoot + "/configs/mosquitto-acl.example", encoding: .utf8)
        try acl.replacingOccurrences(of: "gw-0001", with: "gw").write(toFile: dir + "/aiot.acl", atomically: true, encoding: .utf8)
        let users = [("aiotd", "pw-aiotd"), ("sensors", "pw-sensors"), ("operator", "pw-operator")]
        for (i, (u, p)) in users.enumerated() {
            let r = try await runTool("/usr/bin/mosquitto_passwd", (i == 0 ? ["-c"] : []) + ["-b", dir + "/passwd", u, p])
            #expect(r.code == 0, "mosquitto_passwd: \(r.out)")
        }
        // log_type all: the broker logs each publish it denies.
        let broker = try await Broker(anonymous: false, extra: "password_file \(dir)/passwd\nacl_file \(dir)/aiot.acl\nlog_type all\n")

        let keyPath = try writeKey("an operator key of 32 bytes......\n")
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream,
                                    extra: { _ in "[commands]\nallow = [\"status\", \"reload\"]\nhmac_key_file = \"\(keyPath)\"\n" })
        let config = try String(contentsOfFile: d.configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "client_id = \"aiotd-test\"", with: "client_id = \"aiotd-test\"\nusername = \"aiotd\"\npassword = \"pw-aiotd\"")
            .write(toFile: d.configPath, atomically: true, encoding: .utf8)
        let op = try TestClient(port: broker.port, id: "op", username: "operator", password: "pw-operator")
        try await op.start(subscribing: ["aiot/gw/#"])
        try await d.start(waitFor: op)

        // Anonymous clients are not let in at all.
        let anon = try TestClient(port: broker.port, id: "anon")
        try anon.client.start()
        try await Task.sleep(for: .milliseconds(1500))
        #expect(!anon.client.isConnected)
        anon.client.stop()

        let aiotctl = URL(fileURLWithPath: Harness.aiotdPath).deletingLastPathComponent().appendingPathComponent("aiotctl").path
        func sign(_ cmd: String, _ id: String) async throws -> String {
            let r = try await runTool(aiotctl, ["sign-command", cmd, "--key", keyPath, "--id", id])
            #expect(r.code == 0, "aiotctl sign-command: \(r.out)")
            return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // A sensor client, even with a correctly signed payload, has no right to publish commands:
        // the broker drops them and aiotd never sees them.
        let sensor = try TestClient(port: broker.port, id: "sensor", username: "sensors", password: "pw-sensors")
        try await sensor.start()
        try sensor.publish("aiot/gw/cmd/reload", try await sign("reload", "x1"))
        try sensor.publish("aiot/gw/cmd/status", try await sign("status", "x2"))
        try sensor.publish("aiot/gw/cmd/status", "{\"id\": \"x3\"}")
        // The operator's signed status is answered, and it is the first command aiotd saw.
        try op.publish("aiot/gw/cmd/status", try await sign("status", "op1"))
        #expect(await Harness.waitUntil(timeout: 10) { op.count("aiot/gw/reply/op1") > 0 }, "log: \(d.process.log.suffix(1500))")
        let reply = op.received("aiot/gw/reply/op1").first?.json
        #expect(reply?["ok"] as? Bool == true)
        let counters = (reply?["status"] as? [String: Any])?["counters"] as? [String: Any]
        #expect(counters?["commands"] as? Int == 1, "aiotd saw only the operator's command")
        #expect((counters?["commands_refused"] as? [String: Int])?.values.reduce(0, +) == 0)
        try await Task.sleep(for: .milliseconds(500))
        #expect(op.count("aiot/gw/reply/x") == 0)
        // An unsigned command from the operator is refused by aiotd (the key is required).
        try op.publish("aiot/gw/cmd/status", "{\"id\": \"op2\"}")
        #expect(await Harness.waitUntil(timeout: 10) { op.count("aiot/gw/reply/op2") > 0 })
        #expect(op.received("aiot/gw/reply/op2").first?.json["reason"] as? String == "unsigned")
        try op.publish("aiot/gw/cmd/reload", try await sign("reload", "op3"))
        #expect(await Harness.waitUntil(timeout: 10) { op.count("aiot/gw/reply/op3") > 0 })
        #expect(op.received("aiot/gw/reply/op3").first?.json["ok"] as? Bool == true)
        #expect(op.count("aiot/gw/reply/x") == 0)
        // And the broker's own log says it refused the sensor's publishes.
        #expect(broker.process?.log.contains("Denied PUBLISH from sensor") == true, "\(broker.process?.log.suffix(1500) ?? "")")
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
    }
}
