// `aiotctl deploy`: publishes a signed manifest and the artifact's chunks (QoS 1) to the
// gateway's deploy topic and follows its replies: resumes from the offset it asks for, and
// prints its verdict. Also --status and --rollback (signed). docs/deploy.md.
import AIOTDeploy
import AIOTMQTT
import ArgumentParser
import Foundation
import Synchronization

struct DeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Deploy a signed model to a gateway over MQTT; --status, --rollback.")

    @Argument(help: "The artifact (its manifest is ARTIFACT.manifest unless --manifest).") var artifact: String?
    @Option(help: "Broker HOST:PORT.") var broker: String = "127.0.0.1:1883"
    @Option(help: "The gateway.") var gateway: String
    @Option(help: "The signed manifest (aiotctl sign).") var manifest: String?
    @Flag(help: "Print the gateway's deployments.") var status = false
    @Flag(help: "Switch a stream back to its previous version (signed with --key).") var rollback = false
    @Option(help: "Private key file, for --rollback.") var key: String?
    @Option(help: "The stream, for --rollback.") var stream: String?
    @Option(help: "Data bytes per chunk; with the 52-byte header it must fit the gateway's limits.max_payload_bytes.") var chunkSize: Int = 3072
    @Option(help: "Seconds to wait for the gateway at each step.") var timeout: Double = 20
    @Option(help: "The gateway's deploy.topic.") var topic: String = "aiot/{gateway}/deploy"
    @Option(help: "The gateway's topics.replies.") var replies: String = "aiot/{gateway}/reply/{id}"
    @Option(help: "Deployment id (default: random; reuse one to resume).") var id: String?

    func run() throws {
        let parts = broker.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw CLIError("--broker HOST:PORT") }
        let id = id ?? "d" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let base = topic.replacingOccurrences(of: "{gateway}", with: gateway) + "/" + id
        let replyTopic = replies.replacingOccurrences(of: "{gateway}", with: gateway).replacingOccurrences(of: "{id}", with: id)
        let inbox = Inbox()
        let client = try MQTTClient(configuration: MQTTConfiguration(host: String(parts[0]), port: port, clientID: "aiotctl-" + id, cleanSession: true)) { ev in
            if case .message(let m) = ev { inbox.add(Array(m.payload)) }
        }
        defer { client.stop() }
        try client.subscribe(replyTopic, qos: .atLeastOnce)
        try client.start()
        guard wait(timeout, { client.isConnected }) else { throw CLIError("cannot connect to \(broker)") }
        Thread.sleep(forTimeInterval: 0.2)  // the SUBACK before the first publish
        func send(_ part: String, _ payload: [UInt8]) throws { try client.publish(try MQTTTopic(base + "/" + part), payload: payload, qos: .atLeastOnce) }
        func reply() throws -> [String: Any] {
            var r: [String: Any]?
            guard wait(timeout, { r = inbox.take(); return r != nil }), let r else { throw CLIError("no answer from \(gateway) within \(timeout) s (is aiotd running with [deploy]?)") }
            return r
        }
        if status {
            try send("status", [])
            let r = try reply()
            print(String(data: try JSONSerialization.data(withJSONObject: r["deploy"] ?? r, options: [.prettyPrinted, .sortedKeys]), encoding: .utf8)!)
            return
        }
        if rollback {
            guard let key, let stream else { throw CLIError("--rollback needs --key and --stream") }
            let req = RollbackRequest(gateway: gateway, kind: .model, stream: stream, ts: Int64(Date().timeIntervalSince1970),
                                      nonce: String(UInt64.random(in: 0...UInt64.max), radix: 16) + String(UInt64.random(in: 0...UInt64.max), radix: 16))
            do { try send("rollback", try req.signed(with: try DeploySigningKey.load(key))) } catch let e as DeployError { throw CLIError(e.message) }
            return try verdict(try reply())
        }
        guard let artifact, let bytes = FileManager.default.contents(atPath: artifact).map(Array.init) else { throw CLIError("give the artifact to deploy") }
        let mpath = manifest ?? artifact + ".manifest"
        guard let mtext = FileManager.default.contents(atPath: mpath).map(Array.init) else { throw CLIError("cannot read the manifest \(mpath) (aiotctl sign)") }
        guard chunkSize >= 64 else { throw CLIError("--chunk-size at least 64") }
        let chunks = Chunk.split(bytes, size: chunkSize)
        try send("manifest", mtext)
        var r = try reply()
        // Rounds: send from the offset the gateway needs; a "need" or silence starts the next.
        for _ in 0..<20 {
            guard r["state"] as? String != "refused", r["state"] as? String != "activated" else { break }
            let next = (r["next_offset"] as? Int) ?? 0
            if next > 0 { print("gateway needs bytes from \(next) of \(bytes.count)") }
            for c in chunks where c.end > UInt64(next) { try send("chunk", c.encoded()) }
            var got: [String: Any]?
            _ = wait(timeout) {
                while let m = inbox.take() {
                    let s = m["state"] as? String
                    if s == "activated" || s == "refused" || s == "need" { got = m; return true }
                }
                return false
            }
            if let got { r = got } else {
                try send("manifest", mtext)  // silence: ask where it stands
                r = try reply()
            }
        }
        try verdict(r)
    }

    private func verdict(_ r: [String: Any]) throws {
        guard r["ok"] as? Bool == true, let s = r["state"] as? String, s == "activated" || s == "rolled_back" else {
            throw CLIError("refused by \(gateway): \(r["reason"] ?? "?"): \(r["error"] ?? r["state"] ?? "")")
        }
        print("\(s) version \(r["version"] ?? "?") in slot \(r["slot"] ?? "?")\((r["model"] as? String).map { ", model \($0)" } ?? "")")
    }

    private func wait(_ seconds: Double, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if cond() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return cond()
    }
}

/// Replies as they arrive (from the MQTT thread), taken in order by the command.
final class Inbox: Sendable {
    private let list = Mutex<[[UInt8]]>([])
    func add(_ payload: [UInt8]) { list.withLock { $0.append(payload) } }
    /// The next reply that is a JSON object.
    func take() -> [String: Any]? {
        while let p = list.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
            if let j = (try? JSONSerialization.jsonObject(with: Data(p))) as? [String: Any] { return j }
        }
        return nil
    }
}
