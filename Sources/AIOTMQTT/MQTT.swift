// Layer 3 of the MQTT wrapper: the typed Swift API (configuration, messages, events, the client).
// Layer 1 is the CMosquitto module, layer 2 the checked calls in Mosquitto.swift; no C type
// appears in this public API.
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
    /// A broker on this machine through its Unix domain socket (mosquitto's `listener 0 PATH`)
    /// instead of `host` and `port`: the same MQTT, without the loopback TCP stack under every
    /// packet. An absolute path of at most 107 bytes (`sun_path`).
    public var unixSocket: String?
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
    /// Incoming payloads larger than this are refused inside the network callback, before any
    /// copy, and counted (`oversizedCount`); nil accepts any size. The default is aiotd's ceiling
    /// for `limits.max_payload_bytes` (1 MiB).
    public var maxPayloadBytes: Int?
    /// v5 (default) lets the broker know our Maximum Packet Size, so mosquitto never sends a larger
    /// packet: libmosquitto reads every packet whole before any callback, so with 3.1.1 a 200 MB
    /// publish costs 200 MB here before it can be refused (docs/reliability.md has the measurements).
    public var protocolVersion: MQTTProtocolVersion

    public init(host: String = "127.0.0.1", port: Int = 1883, clientID: String, cleanSession: Bool = false,
                keepAliveSeconds: Int = 30, username: String? = nil, password: String? = nil,
                tls: TLS? = nil, will: Will? = nil, reconnectDelayMin: Int = 1, reconnectDelayMax: Int = 30,
                maxInflight: Int = 100, maxPayloadBytes: Int? = 1 << 20, protocolVersion: MQTTProtocolVersion = .v5,
                unixSocket: String? = nil) {
        self.host = host
        self.port = port
        self.unixSocket = unixSocket
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
        self.maxPayloadBytes = maxPayloadBytes
        self.protocolVersion = protocolVersion
    }

    /// Where the client connects, for messages: `host:port` or `unix:PATH`.
    public var endpoint: String { unixSocket.map { "unix:" + $0 } ?? "\(host):\(port)" }

    /// Why `path` cannot be a broker's Unix socket for libmosquitto, or nil if it can.
    public static func unixSocketProblem(_ path: String) -> String? {
        if !path.hasPrefix("/") { return "\"\(path)\" is not an absolute path" }
        if path.utf8.count > 107 { return "\"\(path)\" is \(path.utf8.count) bytes; a Unix socket path has at most 107" }
        return nil
    }

    /// The MQTT v5 Maximum Packet Size announced on CONNECT: the payload limit plus room for the
    /// fixed header, a topic of up to 64 KiB and properties.
    var maximumPacketSize: UInt32? {
        guard protocolVersion == .v5, let max = maxPayloadBytes else { return nil }
        return UInt32(clamping: max + 65_536 + 1024)
    }
}

public enum MQTTProtocolVersion: Sendable, Equatable {
    case v311, v5
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
    /// A message over `maxPayloadBytes`, refused in the network callback without a copy: only its
    /// size is kept, so the application can count it where it counts other rejections.
    case oversized(bytes: Int)
    /// A publish libmosquitto refused on the network thread (publishes are handed over without
    /// waiting, so the caller learns of it here and in `failedPublishCount`). QoS 0 while
    /// disconnected lands here too.
    case publishFailed(topic: String, reason: String)
}

public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// A publish topic encoded once (NUL-terminated) so the hot path does not re-encode strings.
public struct MQTTTopic: Sendable, Equatable {
    /// The topic's bytes and a NUL, as libmosquitto takes it.
    private(set) var cString: [CChar]
    public var string: String { String(decoding: cString.dropLast().lazy.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    public init(_ topic: String) throws(MQTTError) {
        guard !topic.isEmpty, !topic.contains("+"), !topic.contains("#"), !topic.utf8.contains(0) else {
            throw MQTTError("invalid publish topic \"\(topic)\": it must be non-empty, without wildcards or NUL")
        }
        cString = topic.utf8CString.map { $0 }
    }

    /// Storage for `set(prefix:value:suffix:)` to fill before any publish (empty until then).
    public init(reservingCapacity n: Int) {
        cString = [0]
        cString.reserveCapacity(n)
    }

    /// Rewrites this topic in place as `prefix + value + suffix`: no allocation once its storage
    /// has held a topic as long (a forecast per reading publishes on a per-sensor topic).
    public mutating func set(prefix: [UInt8], value: String, suffix: [UInt8]) throws(MQTTError) {
        cString.removeAll(keepingCapacity: true)
        var bad = false
        func add(_ b: UInt8) {
            if b == 0 || b == UInt8(ascii: "+") || b == UInt8(ascii: "#") { bad = true }
            cString.append(CChar(bitPattern: b))
        }
        for b in prefix { add(b) }
        for b in value.utf8 { add(b) }
        for b in suffix { add(b) }
        let empty = cString.isEmpty
        cString.append(0)
        if bad || empty {
            throw MQTTError("invalid publish topic \"\(string)\": it must be non-empty, without wildcards or NUL")
        }
    }
}

/// A subscription's state on the current connection, from its SUBACK.
public enum MQTTSubscriptionState: Sendable, Equatable {
    /// SUBSCRIBE sent (or waiting for the connection), no SUBACK yet.
    case pending
    /// Granted at this QoS (the broker may grant less than asked).
    case granted(qos: Int32)
    /// Refused with this SUBACK reason code (0x80 in 3.1.1; 0x80-0xA2 in v5, 0x87 = not authorized).
    case refused(code: Int32)
}

/// Shared with the C callbacks through userdata; only this sink is touched there.
final class CallbackSink: Sendable {
    let deliver: @Sendable (MQTTEvent) -> Void
    let threadName: String
    /// Payloads above this are refused in the callback without a copy.
    let maxPayloadBytes: Int
    /// CONNACK codes are v5 reason codes (0x87 not authorized) or 3.1.1 return codes (5).
    let v5: Bool
    let oversized = Atomic<Int>(0)
    let failedPublishes = Atomic<Int>(0)
    let oversizedBytes = Atomic<Int>(0)
    /// Where message buffers come from when the consumer recycles them (nil: a new one each time).
    let pool: MQTTBufferPool?
    let state = Mutex(State())
    struct State {
        var subscriptions: [(filter: String, qos: Int32)] = []
        /// Per filter, from the SUBACKs of the current connection.
        var subscriptionStates: [String: MQTTSubscriptionState] = [:]
        /// SUBSCRIBE message ids awaiting their SUBACK, and SUBACKs that beat the id back to us.
        var subscribing: [Int32: String] = [:]
        var subackedEarly: [Int32: Int32] = [:]
        // Message ids of QoS 1 publishes awaiting PUBACK. The ack may race ahead of the publish
        // call returning its id, and QoS 0 sends also fire the callback: hence the two side sets.
        var pending = Set<Int32>(minimumCapacity: 256)
        var ackedEarly = Set<Int32>(minimumCapacity: 64)
        var ignore = Set<Int32>(minimumCapacity: 64)
        var inflight: Int { pending.count }
        var connected = false
        var reconnects = 0
        var everConnected = false
        /// Accepted CONNACKs so far: the network loop restarts its backoff after one.
        var connacks = 0
        /// Subscriptions added while connected, for the network thread to send.
        var unsent: [(filter: String, qos: Int32)] = []

        mutating func subscribed(_ mid: Int32, _ filter: String) {
            if let code = subackedEarly.removeValue(forKey: mid) { subscriptionStates[filter] = Self.state(code) } else { subscribing[mid] = filter }
        }
        mutating func suback(_ mid: Int32, _ code: Int32) {
            if let filter = subscribing.removeValue(forKey: mid) { subscriptionStates[filter] = Self.state(code) } else { subackedEarly[mid] = code }
        }
        static func state(_ code: Int32) -> MQTTSubscriptionState { code >= 0x80 ? .refused(code: code) : .granted(qos: code) }
    }
    init(deliver: @escaping @Sendable (MQTTEvent) -> Void, threadName: String, maxPayloadBytes: Int, v5: Bool, pool: MQTTBufferPool?) {
        self.v5 = v5
        self.pool = pool
        self.deliver = deliver
        self.threadName = threadName
        self.maxPayloadBytes = maxPayloadBytes
    }
}

/// An MQTT client (v5 by default, or 3.1.1). Thread-safe: one network thread of ours per client
/// (NetworkLoop.swift) owns the libmosquitto handle once started; publish and subscribe may be
/// called from any thread and hand their work to it.
public final class MQTTClient: Sendable {
    private let connection: Connection
    private var sink: CallbackSink { connection.sink }
    public let configuration: MQTTConfiguration
    private let started = Atomic<Bool>(false)

    /// QoS 1 messages the broker may have in flight to us (MQTT v5 Receive Maximum).
    static let receiveMaximum: Int32 = 20

    /// `deliver` is called on the client's network thread; it must return quickly. With a `pool`,
    /// message buffers come from it; give each message back to it when done (`MQTTBufferPool.give`).
    /// The corresponding C functions are `mosquitto_new` and the `mosquitto_*_set` options.
    public init(configuration c: MQTTConfiguration, pool: MQTTBufferPool? = nil, deliver: @escaping @Sendable (MQTTEvent) -> Void) throws(MQTTError) {
        _ = Mosquitto.libraryReady
        configuration = c
        if let path = c.unixSocket {
            if let problem = MQTTConfiguration.unixSocketProblem(path) { throw MQTTError("mqtt unix socket: \(problem)") }
        } else {
            guard (1...65535).contains(c.port) else { throw MQTTError("mqtt port \(c.port) is outside 1...65535") }
        }
        guard c.maxPayloadBytes.map({ $0 >= 0 }) ?? true else { throw MQTTError("mqtt maxPayloadBytes \(c.maxPayloadBytes!) is negative") }
        let sink = CallbackSink(deliver: deliver, threadName: "mq:" + String(c.clientID.suffix(12)), maxPayloadBytes: c.maxPayloadBytes ?? Int.max,
                                v5: c.protocolVersion == .v5, pool: pool)
        let h = try Mosquitto.new(c.clientID, c.cleanSession, Unmanaged.passUnretained(sink).toOpaque())
        // From here the connection owns the handle: a throw below frees it with the connection.
        do throws(MQTTError) { connection = try Connection(handle: h, sink: sink, configuration: c) } catch { Mosquitto.destroy(h); throw error }
        try Mosquitto.intOption(h, MOSQ_OPT_PROTOCOL_VERSION, c.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311)
        if c.protocolVersion == .v5 {
            // v5 lets the broker send up to 65,535 unacknowledged QoS 1 messages by default; 3.1.1
            // brokers keep about 20 in flight. Ask for the 3.1.1 figure: a slow consumer is not
            // flooded, and stop() has only a few read messages to hand over, not a socket full.
            try Mosquitto.intOption(h, MOSQ_OPT_RECEIVE_MAXIMUM, Self.receiveMaximum)
        }
        // Small messages, latency matters: no Nagle delay on our side of the socket (TCP only).
        if c.unixSocket == nil { try Mosquitto.intOption(h, MOSQ_OPT_TCP_NODELAY, 1) }
        try Mosquitto.maxInflightMessages(h, UInt32(clamping: c.maxInflight))
        let minDelay = UInt32(clamping: max(1, c.reconnectDelayMin))
        try Mosquitto.reconnectDelay(h, minDelay, max(minDelay, UInt32(clamping: c.reconnectDelayMax)), true)
        if let user = c.username { try Mosquitto.usernamePassword(h, user, c.password) }
        if let tls = c.tls { try Mosquitto.tls(h, tls.caFile, tls.certFile, tls.keyFile) }
        if let will = c.will { try Mosquitto.will(h, will.topic, will.payload, will.qos.rawValue, will.retain) }
        Self.installCallbacks(h)
    }

    /// The C callbacks: non-capturing, they find the sink through userdata.
    private static func installCallbacks(_ h: OpaquePointer) {
        mosquitto_connect_with_flags_callback_set(h) { mosq, userdata, rc, flags in
            let sink = Unmanaged<CallbackSink>.fromOpaque(userdata!).takeUnretainedValue()
            // Name the network thread for top -H and profilers (first 15 bytes count).
            nameCurrentThread(sink.threadName)
            guard rc == 0 else {
                sink.deliver(.connectionLost(reason: String(cString: sink.v5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc))))
                return
            }
            // Resubscribe on every connect: harmless with a kept session, required after a lost one.
            // Each filter's state restarts as pending until this connection's SUBACK.
            let subs = sink.state.withLock { s -> [(filter: String, qos: Int32)] in
                if s.everConnected { s.reconnects += 1 }
                s.everConnected = true
                s.connected = true
                s.connacks += 1
                s.unsent.removeAll()
                s.subscribing.removeAll()
                s.subackedEarly.removeAll()
                for sub in s.subscriptions { s.subscriptionStates[sub.filter] = .pending }
                return s.subscriptions
            }
            for sub in subs {
                if let mid = try? Mosquitto.subscribe(mosq!, sub.filter, sub.qos) { sink.state.withLock { $0.subscribed(mid, sub.filter) } }
            }
            sink.deliver(.connected(sessionPresent: flags & 1 != 0))
        }
        mosquitto_subscribe_callback_set(h) { _, userdata, mid, count, granted in
            let sink = Unmanaged<CallbackSink>.fromOpaque(userdata!).takeUnretainedValue()
            // One filter per SUBSCRIBE: one reason code.
            let code: Int32 = count >= 1 && granted != nil ? granted![0] : 0x80
            sink.state.withLock { $0.suback(mid, code) }
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
            let m = msg.pointee
            let payloadLen = Int(m.payloadlen)
            // Refused before any copy: only a counter moves.
            if payloadLen > sink.maxPayloadBytes {
                sink.oversized.add(1, ordering: .relaxed)
                sink.oversizedBytes.add(payloadLen, ordering: .relaxed)
                sink.deliver(.oversized(bytes: payloadLen))
                return
            }
            // Copy out: libmosquitto frees topic and payload when this returns. Into a recycled
            // buffer when the consumer gives them back (no allocation), else a new one.
            let topicLen = strlen(m.topic)
            let storage: [UInt8]
            if var reused = sink.pool?.take() {
                reused.append(contentsOf: UnsafeBufferPointer(start: UnsafeRawPointer(m.topic).assumingMemoryBound(to: UInt8.self), count: topicLen))
                if payloadLen > 0, let p = m.payload {
                    reused.append(contentsOf: UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: payloadLen))
                }
                storage = reused
            } else {
                storage = [UInt8](unsafeUninitializedCapacity: topicLen + payloadLen) { buf, n in
                    UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: m.topic, byteCount: topicLen)
                    if payloadLen > 0, let p = m.payload {
                        (UnsafeMutableRawPointer(buf.baseAddress!) + topicLen).copyMemory(from: p, byteCount: payloadLen)
                    }
                    n = topicLen + payloadLen
                }
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
        // A running network thread disconnects cleanly and ends; it holds the connection until then.
        connection.stopping.store(true, ordering: .sequentiallyConsistent)
        connection.wake()
    }

    /// Starts connecting in the background and returns at once; reconnects with exponential
    /// backoff (reconnectDelayMin...Max seconds) for as long as the client lives, including when
    /// the broker is not up yet at start. Connection failures arrive as `.connectionLost` events.
    public func start() throws(MQTTError) {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        connection.start()
    }

    /// Adds a subscription kept for every later (re)connect. A malformed filter (`a/b+`) throws at
    /// once; whether the broker granted it shows in `subscriptionState(_:)` once its SUBACK is in,
    /// and `waitForSubscriptions(timeout:)` turns a refusal into an error.
    /// The corresponding C function is `mosquitto_subscribe`.
    public func subscribe(_ filter: String, qos: MQTTQoS) throws(MQTTError) {
        guard !filter.isEmpty, !filter.utf8.contains(0) else { throw MQTTError("empty subscription filter (or one with NUL); check the topics section") }
        try Mosquitto.subTopicCheck(filter)
        let connected = sink.state.withLock { s -> Bool in
            s.subscriptions.append((filter, qos.rawValue))
            s.subscriptionStates[filter] = .pending
            if s.connected { s.unsent.append((filter, qos.rawValue)) }
            return s.connected
        }
        // Otherwise the connect callback sends it with the others.
        guard connected else { return }
        connection.subscribeRequested.store(true, ordering: .sequentiallyConsistent)
        connection.wake()
    }

    /// The state of `filter` on the current connection (nil if never subscribed).
    public func subscriptionState(_ filter: String) -> MQTTSubscriptionState? {
        sink.state.withLock { $0.subscriptionStates[filter] }
    }

    /// Waits until every subscription has its SUBACK on the current connection. Throws
    /// `.subscriptionRefused` naming the first refused filter and its reason code, or `.timeout`.
    public func waitForSubscriptions(timeout: Duration) async throws(MQTTError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (connected, states) = sink.state.withLock { s in
                (s.connected, s.subscriptions.map { ($0.filter, s.subscriptionStates[$0.filter] ?? .pending) })
            }
            if let (filter, state) = states.first(where: { if case .refused = $0.1 { return true } else { return false } }),
               case let .refused(code) = state {
                var e = MQTTError("the broker refused the subscription to \(filter) (SUBACK reason code 0x\(String(code, radix: 16))); check the broker's ACL for this client", code: .subscriptionRefused)
                e.returnCode = code
                throw e
            }
            if connected && states.allSatisfy({ $0.1 != .pending }) { return }
            guard ContinuousClock.now < deadline else {
                let waiting = states.filter { $0.1 == .pending }.map(\.0)
                throw MQTTError(connected ? "no SUBACK within \(timeout) for \(waiting.joined(separator: ", "))"
                                          : "not connected to \(configuration.endpoint) within \(timeout)", code: .timeout)
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Publishes bytes, in order, without waiting for the network: written to the socket at once
    /// when the connection's handle is free, else handed to its network thread.
    /// QoS 1 messages wait in libmosquitto's queue while disconnected and are sent on reconnect, so
    /// a broker restart loses none of them; a publish libmosquitto refuses arrives as
    /// `.publishFailed` and counts in `failedPublishCount`. The C function is `mosquitto_publish`.
    public func publish(_ topic: MQTTTopic, payload: UnsafeRawBufferPointer, qos: MQTTQoS, retain: Bool = false) throws(MQTTError) {
        // MQTT's own limit (the remaining length is at most 268,435,455 bytes).
        guard payload.count <= 268_435_455 - topic.cString.count - 4 else {
            throw MQTTError(function: "mosquitto_publish", returnCode: MOSQ_ERR_PAYLOAD_SIZE.rawValue,
                            message: "publish on \(topic.string): \(payload.count) bytes is over MQTT's packet size limit")
        }
        connection.publish(topic: topic.cString, payload: payload, qos: qos.rawValue, retain: retain)
    }

    public func publish(_ topic: MQTTTopic, payload: [UInt8], qos: MQTTQoS, retain: Bool = false) throws(MQTTError) {
        let r: Result<Void, MQTTError> = payload.withUnsafeBytes { p in
            do throws(MQTTError) { try publish(topic, payload: p, qos: qos, retain: retain); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    public var isConnected: Bool { sink.state.withLock { $0.connected } }
    public var reconnectCount: Int { sink.state.withLock { $0.reconnects } }
    /// Publishes not yet handed to the broker or (QoS 1) not yet acknowledged by it.
    public var inflightCount: Int { connection.queued.load(ordering: .sequentiallyConsistent) + sink.state.withLock { $0.inflight } }
    /// Publishes libmosquitto refused (`.publishFailed` events).
    public var failedPublishCount: Int { sink.failedPublishes.load(ordering: .relaxed) }
    /// Incoming messages refused for exceeding `maxPayloadBytes` (never copied), and their bytes.
    public var oversizedCount: Int { sink.oversized.load(ordering: .relaxed) }
    public var oversizedBytes: Int { sink.oversizedBytes.load(ordering: .relaxed) }

    /// Waits until every QoS 1 publish so far is acknowledged, or the timeout passes. Returns true when all are acknowledged.
    public func waitForPublishes(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if inflightCount == 0 { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return inflightCount == 0
    }

    /// Hands over what is queued, disconnects cleanly (no last will) and stops the network thread:
    /// waits for it up to 5 s (a thread blocked in a TCP connect to an unreachable broker ends by
    /// itself when that attempt does).
    public func stop() {
        guard started.exchange(false, ordering: .relaxed) else { return }
        connection.stop(timeout: .seconds(5))
    }
}

/// Runs `body` on a new detached thread (pthread: this module has no Foundation).
func detachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { p in
        Unmanaged<Box>.fromOpaque(p!).takeRetainedValue().body()
        return nil
    }, box)
    // Out of threads: run it here rather than never (the caller then waits for one connect attempt).
    guard rc == 0 else { Unmanaged<Box>.fromOpaque(box).takeRetainedValue().body(); return }
    pthread_detach(thread)
}

/// Names the calling thread (Linux: /proc/thread-self/comm, 15 bytes kept).
func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
