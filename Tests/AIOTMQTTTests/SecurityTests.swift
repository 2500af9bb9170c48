// Username/password and TLS (CA file, client certificate) against a real mosquitto.
import Testing
import Foundation
import Synchronization
@testable import AIOTMQTT
import AIOTTestSupport

func run(_ args: [String], in dir: String) throws {
    let status = try runTool(args, in: dir)
    guard status == 0 else { throw MQTTError("\(args.joined(separator: " ")) failed with \(status)") }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
func makePKI(_ dir: String) throws {
    try run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=aiot-test-ca", "-keyout", "ca.key", "-out", "ca.pem"], in: dir)
    for name in ["server", "client"] {
        try run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name == "server" ? "127.0.0.1" : "aiotd")", "-keyout", "\(name).key", "-out", "\(name).csr"], in: dir)
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir + "/\(name).ext", atomically: true, encoding: .utf8)
        try run(["openssl", "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "\(name).ext", "-out", "\(name).pem"], in: dir)
    }
}

@Suite(.serialized) struct MQTTSecurity {
    @Test func tlsWithClientCertificateAndPassword() async throws {
        let dir = NSTemporaryDirectory() + "aiot-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makePKI(dir)
        try run(["mosquitto_passwd", "-c", "-b", dir + "/passwd", "aiotd", "s3cret"], in: dir)
        let port = freePort()
        var conf = """
        listener \(port) 127.0.0.1
        cafile \(dir)/ca.pem
        certfile \(dir)/server.pem
        keyfile \(dir)/server.key
        require_certificate true
        allow_anonymous false
        password_file \(dir)/passwd
        persistence false
        log_dest none

        """
        if getuid() == 0 { conf += "user root\n" }
        try conf.write(toFile: dir + "/m.conf", atomically: true, encoding: .utf8)
        let pid = try spawnBroker(config: dir + "/m.conf")
        defer { kill(pid, SIGKILL); waitpid(pid, nil, 0) }
        try await Task.sleep(for: .milliseconds(300))

        let tls = MQTTConfiguration.TLS(caFile: dir + "/ca.pem", certFile: dir + "/client.pem", keyFile: dir + "/client.key")
        let got = Collected()
        let good = try MQTTClient(configuration: .init(port: port, clientID: "good", username: "aiotd", password: "s3cret", tls: tls)) { got.handle($0) }
        try good.subscribe("secure/#", qos: .atLeastOnce)
        try good.start()
        #expect(await eventually(10) { good.isConnected })
        try await Task.sleep(for: .milliseconds(200))
        try good.publish(try MQTTTopic("secure/x"), payload: Array("ok".utf8), qos: .atLeastOnce)
        #expect(await eventually(5) { got.messages.withLock { $0.count } == 1 })

        // Wrong password: refused by the broker, reported, never connected.
        final class Box: Sendable { let m = Mutex<[String]>([]) }
        let box = Box()
        let bad = try MQTTClient(configuration: .init(port: port, clientID: "bad", username: "aiotd", password: "wrong", tls: tls)) { e in
            if case .connectionLost(let r) = e { box.m.withLock { $0.append(r) } }
        }
        try bad.start()
        #expect(await eventually(5) { !box.m.withLock { $0.isEmpty } })
        #expect(!bad.isConnected)
        #expect(box.m.withLock { $0.first?.lowercased().contains("authori") ?? false }, "\(box.m.withLock { $0 })")
        // No client certificate: the TLS handshake fails, never connected.
        let anon = try MQTTClient(configuration: .init(port: port, clientID: "anon", username: "aiotd", password: "s3cret", tls: .init(caFile: dir + "/ca.pem"))) { _ in }
        try anon.start()
        try await Task.sleep(for: .seconds(1))
        #expect(!anon.isConnected)
        good.stop(); bad.stop(); anon.stop()
    }
}

func spawnBroker(config: String) throws -> pid_t {
    try spawnChild([ProcessInfo.processInfo.environment["MOSQUITTO_BIN"] ?? "/usr/sbin/mosquitto", "-c", config])
}
