// Test harness: a real mosquitto on a free loopback port, aiotd as a real child process, and a
// real libmosquitto client (AIOTMQTT) to publish readings and watch topics.
import Foundation
import Synchronization
import AIOTMQTT
import AIOTTestSupport
#if canImport(Glibc)
import Glibc
#endif

enum Harness {
    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
    /// The aiotd built beside this test binary.
    static var aiotdPath: String {
        if let p = ProcessInfo.processInfo.environment["AIOTD_BIN"] { return p }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 {
            let c = dir.appendingPathComponent("aiotd").path
            if FileManager.default.isExecutableFile(atPath: c) { return c }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot + "/.build/debug/aiotd"
    }
    static var mosquittoPath: String { ProcessInfo.processInfo.environment["MOSQUITTO_BIN"] ?? "/usr/sbin/mosquitto" }

    static func tempDir(_ name: String) -> String {
        let p = NSTemporaryDirectory() + "aiotd-test-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    static func freePort() -> Int {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }

    static func waitUntil(timeout: Double, _ cond: () -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if cond() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return cond()
    }

    /// Simple HTTP GET on loopback.
    static func httpGet(port: Int, path: String) -> String? {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard withUnsafePointer(to: &addr, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0 else { return nil }
        let req = Array("GET \(path) HTTP/1.0\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { send(s, $0.baseAddress, $0.count, 0) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A child process (`spawnChild`: empty signal mask, default dispositions) with its output in a
/// log file, reaped by this object.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let logPath: String
    private var status: Int32? = nil

    init(_ path: String, _ args: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env.removeValue(forKey: "NOTIFY_SOCKET")
        for (k, v) in environment where k == "NOTIFY_SOCKET" { env[k] = v }
        do {
            pid = try spawnChild([path] + args, output: .appendTo(logPath), environment: env)
        } catch {
            throw HarnessError(error.description)
        }
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Non-blocking reap; the exit status when the child has ended.
    func poll() -> Int32? {
        if let status { return status }
        var st: Int32 = 0
        if waitpid(pid, &st, WNOHANG) == pid { status = st; return st }
        return nil
    }

    var isRunning: Bool { poll() == nil }

    /// Waits for exit up to `timeout` seconds; returns the raw wait status.
    func wait(timeout: Double) async -> Int32? {
        _ = await Harness.waitUntil(timeout: timeout) { poll() != nil }
        return poll()
    }

    func killAndReap() {
        if poll() == nil {
            kill(pid, SIGKILL)
            var st: Int32 = 0
            waitpid(pid, &st, 0)
            status = st
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    deinit { killAndReap() }
}

/// `step` called over and over on a thread of its own until `stop()`: for blocking reads (recv with
/// a timeout) that must not run as a Swift task. Tasks share a pool as wide as the machine has cores
/// (2 here): a task that loops on a blocking read holds one of them until the test ends, and with a
/// second blocked one (a Foundation Process wait) no task could run at all, the run hung for ever.
final class LoopThread: Sendable {
    private final class Flag: Sendable { let stop = Atomic<Bool>(false) }
    private let flag = Flag()
    private let done = DispatchSemaphore(value: 0)

    init(_ name: String, _ step: @escaping @Sendable () -> Void) {
        let thread = Thread { [flag, done] in
            while !flag.stop.load(ordering: .acquiring) { step() }
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Returns once the loop has seen the request (within one step: keep steps short, e.g. a receive
    /// timeout of 100-200 ms) or after 5 s.
    func stop() {
        guard !flag.stop.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = done.wait(timeout: .now() + 5)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func exited(_ st: Int32?) -> Int32? {
    guard let st else { return nil }
    return (st & 0x7f) == 0 ? (st >> 8) & 0xff : nil
}

/// A real mosquitto broker on a free loopback port.
final class Broker: @unchecked Sendable {
    let port: Int
    let dir: String
    let persistence: Bool
    var process: ChildProcess?

    init(persistence: Bool = false, anonymous: Bool = true, extra: String = "") async throws {
        port = Harness.freePort()
        dir = Harness.tempDir("broker")
        self.persistence = persistence
        var conf = "listener \(port) 127.0.0.1\nallow_anonymous \(anonymous)\nlog_dest stderr\n"
        conf += persistence ? "persistence true\npersistence_location \(dir)/\nautosave_interval 0\n" : "persistence false\n"
        // QoS 1 stays lossless only if the broker never drops queued messages for a slow or absent client.
        conf += "max_queued_messages 0\nmax_inflight_messages 0\n"
        if getuid() == 0 { conf += "user root\n" }
        conf += extra
        try conf.write(toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        try await start()
    }

    /// A broker whose whole configuration the test writes (given the port and its directory).
    init(configuration: (_ port: Int, _ dir: String) throws -> String) async throws {
        port = Harness.freePort()
        dir = Harness.tempDir("broker")
        persistence = true
        try configuration(port, dir).write(toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        try await start()
    }

    func start() async throws {
        let p = try ChildProcess(Harness.mosquittoPath, ["-c", dir + "/mosquitto.conf"], logPath: dir + "/mosquitto.log")
        process = p
        guard await Harness.waitUntil(timeout: 10, { Harness.canConnect(port) }) else {
            throw HarnessError("mosquitto did not come up on port \(port): \(p.log)")
        }
    }

    /// Graceful stop (SIGTERM, so a persistent broker writes its database), then wait.
    func stopGracefully() async {
        guard let p = process else { return }
        p.signal(SIGTERM)
        if await p.wait(timeout: 10) == nil { p.killAndReap() }
        process = nil
    }

    func kill9() { process?.killAndReap(); process = nil }
    deinit { process?.killAndReap() }
}

/// A test client collecting messages by topic.
final class TestClient: @unchecked Sendable {
    let client: MQTTClient
    let messages = Mutex<[(String, [UInt8], Bool)]>([])
    let connects = Atomic<Int>(0)

    init(port: Int, id: String, cleanSession: Bool = true, username: String? = nil, password: String? = nil, reconnectDelay: Int = 1) throws {
        let box = MessagesBox()
        client = try MQTTClient(configuration: MQTTConfiguration(port: port, clientID: id, cleanSession: cleanSession, username: username, password: password,
                                                                 reconnectDelayMin: reconnectDelay, reconnectDelayMax: reconnectDelay)) { ev in
            box.handle(ev)
        }
        box.owner = self
    }

    final class MessagesBox: @unchecked Sendable {
        weak var owner: TestClient?
        func handle(_ ev: MQTTEvent) {
            guard let o = owner else { return }
            switch ev {
            case .message(let m): o.messages.withLock { $0.append((m.topic, Array(m.payload), m.retained)) }
            case .connected: o.connects.add(1, ordering: .relaxed)
            case .connectionLost, .oversized, .publishFailed: break
            }
        }
    }

    func start(subscribing filters: [String] = []) async throws {
        for f in filters { try client.subscribe(f, qos: .atLeastOnce) }
        try client.start()
        guard await Harness.waitUntil(timeout: 10, { client.isConnected }) else { throw HarnessError("test client did not connect") }
        // Let the SUBACK arrive before the test publishes.
        try await Task.sleep(for: .milliseconds(150))
    }

    func publish(_ topic: String, _ payload: String, qos: MQTTQoS = .atLeastOnce, retain: Bool = false) throws {
        try client.publish(try MQTTTopic(topic), payload: Array(payload.utf8), qos: qos, retain: retain)
    }
    func publish(_ topic: String, bytes: [UInt8]) throws {
        try client.publish(try MQTTTopic(topic), payload: bytes, qos: .atLeastOnce)
    }

    /// Messages under a topic prefix, decoded; `json["_raw"]` keeps the payload text, because
    /// Foundation's JSON parser on Linux rounds some doubles (exact checks read the text).
    func received(_ prefix: String) -> [(topic: String, json: [String: Any], retained: Bool)] {
        messages.withLock { list in
            list.filter { $0.0.hasPrefix(prefix) }.compactMap { t, p, r in
                (try? JSONSerialization.jsonObject(with: Data(p)) as? [String: Any]).map { j in
                    var j = j
                    j["_raw"] = String(decoding: p, as: UTF8.self)
                    return (t, j, r)
                }
            }
        }
    }
    func count(_ prefix: String) -> Int { messages.withLock { $0.filter { $0.0.hasPrefix(prefix) }.count } }
}

/// Writes a config file for a daemon under test.
func writeConfig(_ path: String, port: Int, logDir: String, metricsPort: Int = 0, streams: String, extra: String = "", unixSocket: String? = nil) throws {
    let text = """
    gateway = "gw"
    \(extra)
    [mqtt]
    \(unixSocket.map { "unix_socket = \"\($0)\"" } ?? "host = \"127.0.0.1\"\nport = \(port)")
    client_id = "aiotd-test"
    qos = 1
    reconnect_min_s = 1
    reconnect_max_s = 1

    [log]
    directory = "\(logDir)"
    level = "info"

    [metrics]
    port = \(metricsPort)

    [status]
    interval_s = 60

    [energy]
    summary_interval_s = 60

    \(streams)
    """
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// A daemon under test with its directory, config and log.
final class DaemonUnderTest: @unchecked Sendable {
    let dir: String
    let configPath: String
    let logDir: String
    var process: ChildProcess!
    init(port: Int, metricsPort: Int = 0, streams: String, unixSocket: String? = nil, extra: (String) -> String = { _ in "" }) throws {
        dir = Harness.tempDir("aiotd")
        configPath = dir + "/aiotd.toml"
        logDir = dir + "/energy"
        try writeConfig(configPath, port: port, logDir: logDir, metricsPort: metricsPort, streams: streams, extra: extra(dir), unixSocket: unixSocket)
    }
    func start(waitFor client: TestClient, environment: [String: String] = [:]) async throws {
        process = try ChildProcess(Harness.aiotdPath, ["--config", configPath], logPath: dir + "/aiotd.log", environment: environment)
        // Ready once the retained online status appears.
        guard await Harness.waitUntil(timeout: 15, { client.received("aiot/gw/status").contains { ($0.json["online"] as? Bool) == true } || !process.isRunning }) , process.isRunning else {
            throw HarnessError("aiotd did not come up: \(process.log)")
        }
    }
    var energyLines: [String] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: logDir)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
        return files.flatMap { f -> [String] in
            let text = (try? String(contentsOfFile: logDir + "/" + f, encoding: .utf8)) ?? ""
            return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
    }
}

/// The numbers of a flat JSON array member, parsed exactly from the payload text.
func exactArray(_ json: [String: Any]?, _ key: String) -> [Double]? {
    guard let raw = json?["_raw"] as? String, let r = raw.range(of: "\"\(key)\":[") else { return nil }
    let rest = raw[r.upperBound...]
    guard let end = rest.firstIndex(of: "]") else { return nil }
    return rest[..<end].split(separator: ",").compactMap { Double($0) }
}
