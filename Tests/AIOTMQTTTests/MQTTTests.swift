// The wrapper against a real mosquitto on a free loopback port.
import Testing
import Foundation
import Synchronization
@testable import AIOTMQTT
import AIOTTestSupport

final class Collected: Sendable {
    let messages = Mutex<[(String, [UInt8])]>([])
    let connects = Atomic<Int>(0)
    func handle(_ e: MQTTEvent) {
        switch e {
        case .message(let m): messages.withLock { $0.append((m.topic, Array(m.payload))) }
        case .connected: connects.add(1, ordering: .relaxed)
        case .connectionLost, .oversized, .publishFailed: break
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

/// mosquitto on 127.0.0.1:`port` (and on the Unix socket `unixSocket`), anonymous, no persistence,
/// its configuration written into `dir`.
func startBroker(port: Int, dir: String, unixSocket: String? = nil) throws -> pid_t {
    var conf = "listener \(port) 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
    if let unixSocket { conf += "listener 0 \(unixSocket)\n" }
    if getuid() == 0 { conf += "user root\n" }
    try conf.write(toFile: dir + "/m.conf", atomically: true, encoding: .utf8)
    return try spawnBroker(config: dir + "/m.conf")
}

/// A tool run to completion (`args[0]` an absolute path; with `dir`, run there through /bin/sh and
/// PATH), its output discarded, its exit status returned. Not Foundation's Process: that one learns
/// of the exit from a dispatch source, which runs on the same worker threads as the test tasks; on
/// a 2-core machine two tests blocked on those threads left an openssl unreaped (a zombie) and the
/// whole test run waiting for ever. Here this thread reaps its own child with waitpid.
func runTool(_ args: [String], in dir: String? = nil) throws -> Int32 {
    let pid = try spawnChild(dir.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + args } ?? args, output: .discard)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw MQTTError("waitpid for \(args.joined(separator: " ")) failed: errno \(errno)") }
    }
    // WIFEXITED / WEXITSTATUS, which Swift does not import: the low 7 bits are the terminating signal
    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
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
        defer { try? FileManager.default.removeItem(atPath: dir) }
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

    /// The same through the broker's Unix socket (`unixSocket`, libmosquitto's port 0): clients
    /// started before the socket exists keep retrying, connect once it appears, and reconnect and
    /// resubscribe after the broker is killed and started again (a new socket file at the same path).
    @Test func unixSocketClientsConnectLateAndReconnectAfterBrokerRestart() async throws {
        let port = freePort()
        let dir = NSTemporaryDirectory() + "aiot-mqtt-unix-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/mqtt.sock"
        let sub = Collected()
        let s = try MQTTClient(configuration: .init(clientID: "usub", cleanSession: true, reconnectDelayMin: 1, reconnectDelayMax: 1, unixSocket: path)) { sub.handle($0) }
        let p = try MQTTClient(configuration: .init(clientID: "upub", reconnectDelayMin: 1, reconnectDelayMax: 1, unixSocket: path)) { _ in }
        #expect(s.configuration.endpoint == "unix:" + path)
        try s.subscribe("u/#", qos: .atLeastOnce)
        try s.start(); try p.start()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!s.isConnected && !FileManager.default.fileExists(atPath: path))
        var broker = try startBroker(port: port, dir: dir, unixSocket: path)
        defer { kill(broker, SIGKILL); waitpid(broker, nil, 0) }
        #expect(await eventually(10) { s.isConnected && p.isConnected })
        try await s.waitForSubscriptions(timeout: .seconds(10))
        try p.publish(try MQTTTopic("u/a"), payload: Array("one".utf8), qos: .atLeastOnce)
        #expect(await eventually(5) { sub.messages.withLock { $0.count } == 1 })

        kill(broker, SIGKILL); waitpid(broker, nil, 0)
        #expect(await eventually(5) { !s.isConnected })
        broker = try startBroker(port: port, dir: dir, unixSocket: path)
        #expect(await eventually(15) { s.isConnected && p.isConnected && s.reconnectCount >= 1 })
        try await Task.sleep(for: .milliseconds(300))
        try p.publish(try MQTTTopic("u/b"), payload: Array("two".utf8), qos: .atLeastOnce)
        #expect(await eventually(5) { sub.messages.withLock { $0.count } == 2 })
        #expect(sub.messages.withLock { $0.map(\.0) } == ["u/a", "u/b"])
        s.stop(); p.stop()
    }

    @Test func unixSocketPathsLibmosquittoCannotUseAreRefused() {
        for (path, says) in [("run/mqtt.sock", "not an absolute path"), ("/" + String(repeating: "s", count: 107), "at most 107")] {
            do {
                _ = try MQTTClient(configuration: .init(clientID: "bad", unixSocket: path)) { _ in }
                Issue.record("\(path) was accepted")
            } catch {
                #expect(error.description.contains(says), "\(error)")
            }
        }
        // 107 bytes is the longest path sun_path holds (with its terminating zero).
        #expect(MQTTConfiguration.unixSocketProblem("/" + String(repeating: "s", count: 106)) == nil)
    }

    /// Our own network loop: one thread per started client, named for it, none of libmosquitto's
    /// ("mosquitto loop"); publishes handed over from several threads at once all arrive, each
    /// thread's in its order; stop ends the thread.
    @Test func oneNetworkThreadPerClientAndConcurrentHandOvers() async throws {
        let port = freePort()
        let dir = NSTemporaryDirectory() + "aiot-mqtt-threads-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try startBroker(port: port, dir: dir)
        defer { kill(broker, SIGKILL); waitpid(broker, nil, 0) }
        func threads(named name: String) -> Int {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return tasks.filter { (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8))?.hasPrefix(name) == true }.count
        }
        let sub = Collected()
        let s = try MQTTClient(configuration: .init(port: port, clientID: "loopthreads-s", cleanSession: true)) { sub.handle($0) }
        let p = try MQTTClient(configuration: .init(port: port, clientID: "loopthreads-p", cleanSession: true)) { _ in }
        #expect(threads(named: "mq:oopthreads-") == 0)
        try s.subscribe("lt/#", qos: .atLeastOnce)
        try s.start()
        try await s.waitForSubscriptions(timeout: .seconds(10))
        // Before its thread runs, publishes wait in the outbox; after, they go direct when the
        // handle is free: the early ones must still arrive first, in order.
        for i in 0..<50 { try p.publish(try MQTTTopic("lt/early"), payload: Array("\(i)".utf8), qos: .atLeastOnce) }
        #expect(p.inflightCount == 50)
        try p.start()
        #expect(await eventually(10) { p.isConnected })
        for i in 50..<100 { try p.publish(try MQTTTopic("lt/early"), payload: Array("\(i)".utf8), qos: .atLeastOnce) }
        #expect(await eventually(10) { sub.messages.withLock { $0.count } == 100 })
        let early = sub.messages.withLock { $0.map { Int(String(decoding: $0.1, as: UTF8.self))! } }
        #expect(early == Array(0..<100))
        sub.messages.withLock { $0.removeAll() }
        #expect(threads(named: "mq:oopthreads-s") == 1 && threads(named: "mq:oopthreads-p") == 1)
        #expect(threads(named: "mosquitto loop") == 0, "no libmosquitto-owned thread")
        let senders = 4, each = 500
        DispatchQueue.concurrentPerform(iterations: senders) { t in
            let topic = try! MQTTTopic("lt/\(t)")
            for i in 0..<each { try! p.publish(topic, payload: Array("\(i)".utf8), qos: .atLeastOnce) }
        }
        #expect(await p.waitForPublishes(timeout: .seconds(20)))
        #expect(await eventually(20) { sub.messages.withLock { $0.count } == senders * each })
        let got = sub.messages.withLock { $0 }
        for t in 0..<senders {
            let seq = got.filter { $0.0 == "lt/\(t)" }.map { Int(String(decoding: $0.1, as: UTF8.self))! }
            #expect(seq == Array(0..<each), "sender \(t): \(seq.count) messages, first out of order at \(Array(zip(seq, 0..<each)).firstIndex { $0.0 != $0.1 } ?? -1)")
        }
        s.stop(); p.stop()
        #expect(await eventually(5) { threads(named: "mq:oopthreads-") == 0 })
    }

    @Test func eventsAsAnAsyncStream() async throws {
        let port = freePort()
        let dir = NSTemporaryDirectory() + "aiot-mqtt-stream-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
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
            case .connectionLost, .oversized, .publishFailed:
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

/// Intake's message buffers are recycled: each message arrives whole and exact in a reused buffer
/// (no bytes of a longer earlier message left over), buffers are reused rather than allocated,
/// and large or surplus buffers are not kept.
@Suite(.serialized) struct MQTTBufferRecycling {
    @Test func recycledBuffersCarryEachMessageExactly() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["AIOT_TEST_SEED"] ?? "") ?? 20261206
        var rng = SplitMix(seed)
        let port = freePort()
        let dir = NSTemporaryDirectory() + "aiot-mqtt-pool-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try startBroker(port: port, dir: dir)
        defer { kill(broker, SIGKILL); waitpid(broker, nil, 0) }
        let pool = MQTTBufferPool(maxBuffers: 8, maxBufferBytes: 4096)
        final class Seen: Sendable {
            let got = Mutex<[(String, [UInt8])]>([])
            let addresses = Mutex<Set<UInt>>([])
            let reused = Atomic<Int>(0)
        }
        let seen = Seen()
        let s = try MQTTClient(configuration: .init(port: port, clientID: "pooled", cleanSession: true), pool: pool) { e in
            guard case .message(let m) = e else { return }
            let address = m.storage.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            if seen.addresses.withLock({ !$0.insert(address).inserted }) { seen.reused.add(1, ordering: .relaxed) }
            seen.got.withLock { $0.append((m.topic, Array(m.payload))) }
            pool.give(m)  // as the processing thread does once a batch is handled
        }
        let p = try MQTTClient(configuration: .init(port: port, clientID: "pool-pub")) { _ in }
        try s.subscribe("pool/#", qos: .atLeastOnce)
        try s.start(); try p.start()
        try await s.waitForSubscriptions(timeout: .seconds(10))
        #expect(await eventually(10) { p.isConnected })
        // Long and short messages interleaved; two over the pool's buffer limit.
        var sent: [(String, [UInt8])] = []
        for i in 0..<300 {
            let n = i == 100 || i == 200 ? 10_000 : Int(rng.next() % 600)
            let payload = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let topic = "pool/\(i % 7 == 0 ? "a-longer-topic-name/\(i)" : "\(i)")"
            sent.append((topic, payload))
            try p.publish(try MQTTTopic(topic), payload: payload, qos: .atLeastOnce)
        }
        #expect(await eventually(15) { seen.got.withLock { $0.count } == sent.count })
        let got = seen.got.withLock { $0 }
        #expect(got.count == sent.count, "seed \(seed)")
        for (i, (a, b)) in zip(got, sent).enumerated() where a.0 != b.0 || a.1 != b.1 {
            Issue.record("message \(i) differs after recycling (seed \(seed)): topic \(a.0) vs \(b.0), \(a.1.count) vs \(b.1.count) bytes")
            break
        }
        // Most messages arrived in a reused buffer (the first few and the two large ones could not).
        #expect(seen.reused.load(ordering: .relaxed) >= 250, "reused \(seen.reused.load(ordering: .relaxed)) of 300 (seed \(seed))")
        #expect(pool.count <= 8)
        // A buffer over the limit is not kept.
        let before = pool.count
        pool.give(MQTTMessage(topic: "big", payload: [UInt8](repeating: 1, count: 8192)))
        #expect(pool.count == before)
        s.stop(); p.stop()
    }
}

/// A seeded generator (the seed is printed with any failure).
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
