// A thin, typed wrapper over libmosquitto (threaded loop). No C type appears in the public API.
import CMosquitto
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Quality of service: the daemon uses 0 and 1 (2 costs a round trip for nothing it needs).
public enum MQTTQoS: Int32, Sendable {
    case atMostOnce = 0
    case atLeastOnce = 1
}

public struct MQTTError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public struct MQTTConfiguration: Sendable, Equatable {
    public struct TLS: Sendable, Equatable {
        public var caFile: String
        public var certFile: String?
        public var keyFile: String?
        public init(caFile: String, certFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
        }
    }
    public struct Will: Sendable, Equatable {
        public var topic: String
        public var payload: [UInt8]
        public var qos: MQTTQoS
        public var retain: Bool
        public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = true) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
        }
    }
    public var host: String
    public var port: Int
    /// Fixed client id: with `cleanSession == false` the broker keeps our subscriptions and queues
    /// QoS 1 messages while we are away.
    public var clientID: String
    public var cleanSession: Bool
    public var keepAliveSeconds: Int
    public var username: String?
    public var password: String?
    public var tls: TLS?
    public var will: Will?
    public var reconnectDelayMin: Int
    public var reconnectDelayMax: Int
    /// QoS 1 messages in flight towards the broker before libmosquitto queues locally.
    public var maxInflight: Int

    public init(host: String = "127.0.0.1", port: Int = 1883, clientID: String, cleanSession: Bool = false,
                keepAliveSeconds: Int = 30, username: String? = nil, password: String? = nil,
                tls: TLS? = nil, will: Will? = nil, reconnectDelayMin: Int = 1, reconnectDelayMax: Int = 30,
                maxInflight: Int = 100) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.cleanSession = cleanSession
        self.keepAliveSeconds = keepAliveSeconds
        self.username = username
        self.password = password
        self.tls = tls
        self.will = will
        self.reconnectDelayMin = reconnectDelayMin
        self.reconnectDelayMax = reconnectDelayMax
        self.maxInflight = maxInflight
    }
}

/// One received message. Topic and payload share one buffer (one allocation per message).
public struct MQTTMessage: Sendable {
    public let storage: [UInt8]
    public let topicCount: Int
    public let qos: Int32
    public let retained: Bool
    /// CLOCK_MONOTONIC nanoseconds when the network thread handed the message over.
    public let receivedAtNanos: UInt64

    public init(topic: String, payload: [UInt8], qos: Int32 = 0, retained: Bool = false, receivedAtNanos: UInt64 = monotonicNanos()) {
        var bytes = Array(topic.utf8)
        topicCount = bytes.count
        bytes.append(contentsOf: payload)
        storage = bytes
        self.qos = qos
        self.retained = retained
        self.receivedAtNanos = receivedAtNanos
    }

    init(storage: [UInt8], topicCount: Int, qos: Int32, retained: Bool, receivedAtNanos: UInt64) {
        self.storage = storage
        self.topicCount = topicCount
        self.qos = qos
        self.retained = retained
        self.receivedAtNanos = receivedAtNanos
    }

    public var topic: String { String(decoding: storage[0..<topicCount], as: UTF8.self) }
    public var payload: ArraySlice<UInt8> { storage[topicCount...] }
    public var payloadCount: Int { storage.count - topicCount }

    /// Topic bytes and payload bytes without copying.
    public func withBuffers<R>(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { all in
            let topic = UnsafeBufferPointer(rebasing: all[0..<topicCount])
            let payload = UnsafeBufferPointer(rebasing: all[topicCount...])
            return try body(topic, payload)
        }
    }
}

public enum MQTTEvent: Sendable {
    case connected(sessionPresent: Bool)
    case connectionLost(reason: String)
    case message(MQTTMessage)
}

public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// A publish topic encoded once (NUL-terminated) so the hot path does not re-encode strings.
public struct MQTTTopic: Sendable, Equatable {
    let cString: [CChar]
    public let string: String
    public init(_ topic: String) throws(MQTTError) {
        guard !topic.isEmpty, !topic.contains("+"), !topic.contains("#"), !topic.utf8.contains(0) else {
            throw MQTTError("invalid publish topic \"\(topic)\": it must be non-empty without wildcards")
        }
        string = topic
        cString = topic.utf8CString.map { $0 }
    }
}

private let libraryInit: Void = { _ = mosquitto_lib_init() }()

/// Shared with the C callbacks through userdata; only the sink and counters are touched there.
final class CallbackSink: Sendable {
    let deliver: @Sendable (MQTTEvent) -> Void
    let threadName: String
    let state = Mutex(State())
    struct State {
        var subscriptions: [(String, Int32)] = []
        // Message ids of QoS 1 publishes awaiting PUBACK. The ack may race ahead of the publish
        // call returning its id, and QoS 0 sends also fire the callback: hence the two side sets.
        var pending = Set<Int32>(minimumCapacity: 256)
        var ackedEarly = Set<Int32>(minimumCapacity: 64)
        var ignore = Set<Int32>(minimumCapacity: 64)
        var inflight: Int { pending.count }
        var connected = false
        var reconnects = 0
        var everConnected = false
    }
    init(deliver: @escaping @Sendable (MQTTEvent) -> Void, threadName: String) {
        self.deliver = deliver
        self.threadName = threadName
    }
}

/// An MQTT 3.1.1 client. Thread-safe: libmosquitto runs its own network thread; publish and
/// subscribe may be called from any task.
public final class MQTTClient: @unchecked Sendable {
    // @unchecked: `handle` is set once in init and freed in deinit; libmosquitto locks internally
    // for the calls made here in threaded mode.
    private let handle: OpaquePointer
    private let sink: CallbackSink
    public let configuration: MQTTConfiguration
    private let started = Atomic<Bool>(false)
    private let loopRunning = Atomic<Bool>(false)

    /// `deliver` is called on libmosquitto's network thread; it must return quickly.
    public init(configuration c: MQTTConfiguration, deliver: @escaping @Sendable (MQTTEvent) -> Void) throws(MQTTError) {
        _ = libraryInit
        configuration = c
        sink = CallbackSink(deliver: deliver, threadName: "mq:" + String(c.clientID.suffix(12)))
        guard (1...65535).contains(c.port) else { throw MQTTError("mqtt port \(c.port) is outside 1...65535") }
        let userdata = Unmanaged.passUnretained(sink).toOpaque()
        guard let h = mosquitto_new(c.clientID, c.cleanSession, userdata) else {
            throw MQTTError("could not create an MQTT client (client id \"\(c.clientID)\"; it must be non-empty when clean_session is off)")
        }
        // From here every stored property is set, so a throw below runs deinit, which destroys the
        // handle: the error paths must not destroy it themselves (that was a double free).
        handle = h
        _ = mosquitto_int_option(h, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311)
        // Small messages, latency matters: no Nagle delay on our side of the socket.
        _ = mosquitto_int_option(h, MOSQ_OPT_TCP_NODELAY, 1)
        _ = mosquitto_max_inflight_messages_set(h, UInt32(max(0, c.maxInflight)))
        _ = mosquitto_reconnect_delay_set(h, UInt32(max(1, c.reconnectDelayMin)), UInt32(max(c.reconnectDelayMin, c.reconnectDelayMax)), true)
        var rc: Int32
        if let user = c.username {
            rc = mosquitto_username_pw_set(h, user, c.password)
            if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError("mqtt username/password rejected: \(Self.describe(rc))") }
        }
        if let tls = c.tls {
            rc = mosquitto_tls_set(h, tls.caFile, nil, tls.certFile, tls.keyFile, nil)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                throw MQTTError("mqtt TLS setup failed (ca \(tls.caFile), cert \(tls.certFile ?? "none")): \(Self.describe(rc)); check the files exist and are readable")
            }
        }
        if let will = c.will {
            rc = will.payload.withUnsafeBytes { p in
                mosquitto_will_set(h, will.topic, Int32(p.count), p.baseAddress, will.qos.rawValue, will.retain)
            }
            if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError("mqtt last will on \(will.topic) rejected: \(Self.describe(rc))") }
        }
        mosquitto_connect_with_flags_callback_set(h) { mosq, userdata, rc, flags in
            let sink = Unmanaged<CallbackSink>.fromOpaque(userdata!).takeUnretainedValue()
            // Name the network thread for top -H and profilers (first 15 bytes count).
            nameCurrentThread(sink.threadName)
            guard rc == 0 else {
                sink.deliver(.connectionLost(reason: String(cString: mosquitto_connack_string(rc))))
                return
            }
            // Resubscribe on every connect: harmless with a kept session, required after a lost one.
            let subs = sink.state.withLock { s -> [(String, Int32)] in
                if s.everConnected { s.reconnects += 1 }
                s.everConnected = true
                s.connected = true
                return s.subscriptions
            }
            for (filter, qos) in subs { _ = mosquitto_subscribe(mosq, nil, filter, qos) }
            sink.deliver(.connected(sessionPresent: flags & 1 != 0))
        }
        mosquitto_disconnect_callback_set(h) { _, userdata, rc in
            let sink = Unmanaged<CallbackSink>.fromOpaque(userdata!).takeUnretainedValue()
            sink.state.withLock { $0.connected = false }
            if rc != 0 { sink.deliver(.connectionLost(reason: String(cString: mosquitto_strerror(rc)))) }
        }
        mosquitto_message_callback_set(h) { _, userdata, msg in
            guard let userdata, let msg else { return }
            let now = monotonicNanos()
            let sink = Unmanaged<CallbackSink>.fromOpaque(userdata).takeUnretainedValue()
            // Copy out: libmosquitto frees topic and payload when this returns.
            let m = msg.pointee
            let topicLen = strlen(m.topic)
            let payloadLen = Int(m.payloadlen)
            let storage = [UInt8](unsafeUninitializedCapacity: topicLen + payloadLen) { buf, n in
                UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: m.topic, byteCount: topicLen)
                if payloadLen > 0, let p = m.payload {
                    (UnsafeMutableRawPointer(buf.baseAddress!) + topicLen).copyMemory(from: p, byteCount: payloadLen)
                }
                n = topicLen + payloadLen
            }
            sink.deliver(.message(MQTTMessage(storage: storage, topicCount: topicLen, qos: m.qos, retained: m.retain, receivedAtNanos: now)))
        }
        mosquitto_publish_callback_set(h) { _, userdata, mid in
            let sink = Unmanaged<CallbackSink>.fromOpaque(userdata!).takeUnretainedValue()
            sink.state.withLock { s in
                if s.pending.remove(mid) != nil { return }
                if s.ignore.remove(mid) != nil { return }
                s.ackedEarly.insert(mid)
            }
        }
    }

    /// A client whose events arrive as an AsyncStream (unbounded: for consumers that keep up; the
    /// daemon uses the closure form with a bounded queue so a slow gateway pushes back on the broker).
    public static func withStream(configuration: MQTTConfiguration) throws(MQTTError) -> (MQTTClient, AsyncStream<MQTTEvent>) {
        let (stream, continuation) = AsyncStream.makeStream(of: MQTTEvent.self, bufferingPolicy: .unbounded)
        let client = try MQTTClient(configuration: configuration) { continuation.yield($0) }
        return (client, stream)
    }

    deinit {
        if loopRunning.load(ordering: .relaxed) {
            mosquitto_disconnect(handle)
            mosquitto_loop_stop(handle, true)
        }
        mosquitto_destroy(handle)
    }

    static func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(rc))
    }

    /// Starts the network thread and connects in the background; reconnects with exponential
    /// backoff (reconnectDelayMin...Max seconds) for as long as the client lives, including when
    /// the broker is not up yet at start.
    public func start() throws(MQTTError) {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        if tryFirstConnect() { return }
        // libmosquitto's loop only retries connections it once made, so retry the first one here.
        let minDelay = max(1, configuration.reconnectDelayMin), maxDelay = max(minDelay, configuration.reconnectDelayMax)
        Task.detached { [weak self] in
            var delay = minDelay
            while true {
                try? await Task.sleep(for: .seconds(delay))
                guard let self, self.started.load(ordering: .relaxed) else { return }
                if self.tryFirstConnect() { return }
                delay = min(maxDelay, delay * 2)
            }
        }
    }

    /// connect_async + loop_start; false (nothing started) when the broker refused the socket.
    private func tryFirstConnect() -> Bool {
        let rc = mosquitto_connect_async(handle, configuration.host, Int32(configuration.port), Int32(configuration.keepAliveSeconds))
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            sink.deliver(.connectionLost(reason: "connect to \(configuration.host):\(configuration.port): \(Self.describe(rc))"))
            return false
        }
        loopRunning.store(mosquitto_loop_start(handle) == MOSQ_ERR_SUCCESS.rawValue, ordering: .relaxed)
        return true
    }

    /// Adds a subscription kept for every later (re)connect.
    public func subscribe(_ filter: String, qos: MQTTQoS) throws(MQTTError) {
        let connected = sink.state.withLock { s -> Bool in
            s.subscriptions.append((filter, qos.rawValue))
            return s.connected
        }
        if connected {
            let rc = mosquitto_subscribe(handle, nil, filter, qos.rawValue)
            if rc != MOSQ_ERR_SUCCESS.rawValue && rc != MOSQ_ERR_NO_CONN.rawValue {
                throw MQTTError("subscribe to \(filter) failed: \(Self.describe(rc))")
            }
        }
    }

    /// Publishes bytes. QoS 1 messages are queued by libmosquitto while disconnected and sent on
    /// reconnect, so a broker restart loses none of them.
    public func publish(_ topic: MQTTTopic, payload: UnsafeRawBufferPointer, qos: MQTTQoS, retain: Bool = false) throws(MQTTError) {
        var mid: Int32 = 0
        let rc = topic.cString.withUnsafeBufferPointer { t in
            mosquitto_publish(handle, &mid, t.baseAddress, Int32(payload.count), payload.baseAddress, qos.rawValue, retain)
        }
        if rc == MOSQ_ERR_SUCCESS.rawValue || (rc == MOSQ_ERR_NO_CONN.rawValue && qos != .atMostOnce) {
            sink.state.withLock { s in
                if s.ackedEarly.remove(mid) != nil { return }
                if qos == .atMostOnce { s.ignore.insert(mid) } else { s.pending.insert(mid) }
            }
            return
        }
        // QoS 0 while disconnected is allowed to be lost by definition; report everything else.
        throw MQTTError("publish on \(topic.string) failed: \(Self.describe(rc))")
    }

    public func publish(_ topic: MQTTTopic, payload: [UInt8], qos: MQTTQoS, retain: Bool = false) throws(MQTTError) {
        let r: Result<Void, MQTTError> = payload.withUnsafeBytes { p in
            do throws(MQTTError) { try publish(topic, payload: p, qos: qos, retain: retain); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    public var isConnected: Bool { sink.state.withLock { $0.connected } }
    public var reconnectCount: Int { sink.state.withLock { $0.reconnects } }
    public var inflightCount: Int { sink.state.withLock { $0.inflight } }

    /// Waits until every QoS 1 publish so far is acknowledged, or the timeout passes. Returns true when all are acknowledged.
    public func waitForPublishes(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if inflightCount == 0 { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return inflightCount == 0
    }

    /// Disconnects cleanly (no last will) and stops the network thread.
    public func stop() {
        guard started.exchange(false, ordering: .relaxed) else { return }
        mosquitto_disconnect(handle)
        if loopRunning.exchange(false, ordering: .relaxed) { mosquitto_loop_stop(handle, false) }
    }
}

/// Names the calling thread (Linux: /proc/thread-self/comm, 15 bytes kept).
func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
