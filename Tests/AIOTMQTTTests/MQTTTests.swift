// The wrapper against a real mosquitto on a free loopback port.
import Testing
import Foundation
import Synchronization
@testable import AIOTMQTT

final class Collected: Sendable {
    let messages = Mutex<[(String, [UInt8])]>([])
    let connects = Atomic<Int>(0)
    func handle(_ e: MQTTEvent) {
        switch e {
        case .message(let m): messages.withLock { $0.append((m.topic, Array(m.payload))) }
        case .connected: connects.add(1, ordering: .relaxed)
        case .connectionLost, .oversized: break
        }
    }
}

func freePort() -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var a = sockaddr_in(); a.sin_family = sa_family_t(AF_INET); a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
    return Int(UInt16(bigEndian: a.sin_port))
}

/// mosquitto as a child with an empty signal mask (Swift's threads block signals; children inherit it).
func startBroker(port: Int, dir: String) throws -> pid_t {
    var conf = "listener \(port) 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
    if getuid() == 0 { conf += "user root\n" }
    try conf.write(toFile: dir + "/m.conf", atomically: true, encoding: .utf8)
    var attr = posix_spawnattr_t(); posix_spawnattr_init(&attr); defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t(); sigemptyset(&empty); posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    let path = ProcessInfo.processInfo.environment["MOSQUITTO_BIN"] ?? "/usr/sbin/mosquitto"
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), strdup("-c"), strdup(dir + "/m.conf"), nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, path, nil, &attr, argv, environ) == 0 else { throw MQTTError("cannot start \(path)") }
    return pid
}

func eventually(_ seconds: Double, _ cond: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end { if cond() { return true }; try? await Task.sleep(for: .milliseconds(20)) }
    return cond()
}

@Suite(.serialized) struct MQTTAgainstMosquitto {
    @Test func publishSubscribeAndResubscribeAfterBrokerRestart() async throws {
        let port = freePort()
        let dir = NSTemporaryDirectory() + "aiot-mqtt-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let sub = Collected(), pub = Collected()
        // Clean session on the subscriber: only resubscription can bring the subscription back.
        let s = try MQTTClient(configuration: .init(port: port, clientID: "sub", cleanSession: true, reconnectDelayMin: 1, reconnectDelayMax: 1)) { sub.handle($0) }
        let p = try MQTTClient(configuration: .init(port: port, clientID: "pub", reconnectDelayMin: 1, reconnectDelayMax: 1)) { pub.handle($0) }
        try s.subscribe("t/#", qos: .atLeastOnce)
        // Clients start before the broker exists: the first connection is retried too.
        try s.start(); try p.start()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!s.isConnected)
        var broker = try startBroker(port: port, dir: dir)
        defer { kill(broker, SIGKILL); waitpid(broker, nil, 0) }
        #expect(await eventually(10) { s.isConnected && p.isConnected })
        try await Task.sleep(for: .milliseconds(200))
        try p.publish(try MQTTTopic("t/a"), payload: Array("one".utf8), qos: .atLeastOnce)
        #expect(await eventually(5) { sub.messages.withLock { $0.count } == 1 })
        #expect(await p.waitForPublishes(timeout: .seconds(2)))

        kill(broker, SIGKILL); waitpid(broker, nil, 0)
        #expect(await eventually(5) { !s.isConnected })
        broker = try startBroker(port: port, dir: dir)
        #expect(await eventually(15) { s.isConnected && p.isConnected && s.reconnectCount >= 1 })
        try await Task.sleep(for: .milliseconds(300))
        try p.publish(try MQTTTopic("t/b"), payload: Array("two".utf8), qos: .atLeastOnce)
        #expect(await eventually(5) { sub.messages.withLock { $0.count } == 2 })
        #expect(sub.messages.withLock { $0.map(\.0) } == ["t/a", "t/b"])
        #expect(sub.connects.load(ordering: .relaxed) >= 2)
        s.stop(); p.stop()
    }

    @Test func eventsAsAnAsyncStream() async throws {
        let port = freePort()
        let dir = NSTemporaryDirectory() + "aiot-mqtt-stream-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let broker = try startBroker(port: port, dir: dir)
        defer { kill(broker, SIGKILL); waitpid(broker, nil, 0) }
        let (client, events) = try MQTTClient.withStream(configuration: .init(port: port, clientID: "streamer"))
        try client.subscribe("s/#", qos: .atLeastOnce)
        try client.start()
        var received: [String] = []
        for await e in events {
            switch e {
            case .connected:
                try await Task.sleep(for: .milliseconds(200))
                for i in 0..<3 { try client.publish(try MQTTTopic("s/\(i)"), payload: [UInt8(i)], qos: .atLeastOnce) }
            case .message(let m):
                received.append(m.topic)
                #expect(Array(m.payload) == [UInt8(received.count - 1)])
            case .connectionLost, .oversized:
                break
            }
            if received.count == 3 { break }
        }
        #expect(received == ["s/0", "s/1", "s/2"])
        client.stop()
    }

    @Test func badSettingsAreClearErrors() {
        #expect(throws: MQTTError.self) { try MQTTTopic("a/+/b") }
        #expect(throws: MQTTError.self) { try MQTTClient(configuration: .init(port: 70000, clientID: "x")) { _ in } }
        #expect(throws: MQTTError.self) {
            try MQTTClient(configuration: .init(clientID: "x", tls: .init(caFile: "/nonexistent/ca.pem"))) { _ in }
        }
    }
}

/// The forecast path rewrites one topic per forecast in place: same bytes as building it anew,
/// storage reused, wildcards and NUL refused as by `init`.
@Test func topicRewrittenInPlaceMatchesANewOneAndKeepsItsStorage() throws {
    var t = MQTTTopic(reservingCapacity: 64)
    let prefix = Array("aiot/gw/forecasts/".utf8), suffix: [UInt8] = []
    try t.set(prefix: prefix, value: "sensor-with-a-long-name-0001", suffix: suffix)
    #expect(t == (try MQTTTopic("aiot/gw/forecasts/sensor-with-a-long-name-0001")))
    #expect(t.string == "aiot/gw/forecasts/sensor-with-a-long-name-0001")
    let storage = t.cString.withUnsafeBufferPointer { $0.baseAddress }
    try t.set(prefix: prefix, value: "s2", suffix: Array("/x".utf8))
    #expect(t.string == "aiot/gw/forecasts/s2/x")
    #expect(t.cString.withUnsafeBufferPointer { $0.baseAddress } == storage, "storage reallocated")
    for bad in ["a+b", "a#", "a\u{0}b"] {
        #expect(throws: MQTTError.self) { try t.set(prefix: prefix, value: bad, suffix: suffix) }
    }
    #expect(throws: MQTTError.self) { try t.set(prefix: [], value: "", suffix: []) }
}
