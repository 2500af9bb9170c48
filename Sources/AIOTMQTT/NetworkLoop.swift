// The network loop we drive ourselves (issue 17, point 1), one thread of ours per connection: it
// connects and reconnects with backoff, polls the client's socket and an eventfd, and runs
// libmosquitto's read, write and keepalive steps. libmosquitto runs unthreaded: every call on the
// handle is made under `handleLock`, so a publish is written straight to the socket. A publisher
// that finds the lock free and nothing queued publishes itself (no hand-off, no wake-up); otherwise
// (the loop is reading, or blocked in a connect) the publish goes into the outbox, in order, and the
// loop is woken at most once per batch.
import CMosquitto
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// What the network thread owns: the handle, the callback sink, the outbox and the wake-up
/// descriptor. The client and the running thread both hold it; whichever lets go last frees the
/// handle, so a thread blocked in a connect never outlives its handle.
final class Connection: @unchecked Sendable {
    // @unchecked: `handle` is used only under `handleLock` once the thread runs (before that, by
    // the client's init); `spare` only by the network thread; everything else is atomic or locked.
    let handle: OpaquePointer
    let sink: CallbackSink
    let configuration: MQTTConfiguration
    private let outbox = Mutex(Outbox(reservingBytes: 64 << 10, entries: 256))
    /// The network thread's emptied outbox, swapped with the shared one each round.
    private var spare = Outbox(reservingBytes: 64 << 10, entries: 256)
    /// Publishes handed over and not yet given to libmosquitto.
    let queued = Atomic<Int>(0)
    /// Set by the thread just before it sleeps in poll: a hand-over then writes the eventfd.
    private let sleeping = Atomic<Bool>(false)
    let stopping = Atomic<Bool>(false)
    let exited = Atomic<Bool>(false)
    /// A subscription added while connected waits for the thread to send it.
    let subscribeRequested = Atomic<Bool>(false)
    private let wakeFD: Int32
    private let thread = Mutex<pthread_t?>(nil)
    /// Held around every libmosquitto call once the thread runs (never around poll).
    private let handleLock = Mutex<Void>(())

    init(handle: OpaquePointer, sink: CallbackSink, configuration: MQTTConfiguration) throws(MQTTError) {
        self.handle = handle
        self.sink = sink
        self.configuration = configuration
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw MQTTError("cannot create the MQTT network loop's eventfd (errno \(errno)); the process may be out of file descriptors") }
    }

    deinit {
        Mosquitto.destroy(handle)
        close(wakeFD)
    }

    // MARK: any thread

    /// Publishes now if the handle is free and nothing is queued ahead, else hands the publish to
    /// the network thread (copied). Never waits for the network or for the loop.
    func publish(topic: [CChar], payload: UnsafeRawBufferPointer, qos: Int32, retain: Bool) {
        let done = handleLock.withLockIfAvailable { _ -> (done: Bool, wantWrite: Bool) in
            // Something queued goes first: a thread's publishes stay in order. Nothing goes to
            // libmosquitto before the broker's CONNACK (see handOver), so before the first
            // connection everything waits in the outbox.
            guard queued.load(ordering: .sequentiallyConsistent) == 0, sink.state.withLock({ $0.connected }) else { return (false, false) }
            topic.withUnsafeBufferPointer { publishNow($0.baseAddress!, payload, qos, retain) }
            return (true, Mosquitto.wantWrite(handle))
        }
        if let done, done.done {
            // The socket took only part of it: the loop must poll for POLLOUT to finish it.
            if done.wantWrite { wake() }
            return
        }
        enqueue(topic: topic, payload: payload, qos: qos, retain: retain)
    }

    /// Hands a publish to the network thread (the payload is copied; nothing waits for the network).
    private func enqueue(topic: [CChar], payload: UnsafeRawBufferPointer, qos: Int32, retain: Bool) {
        outbox.withLock { box in
            box.append(topic: topic, payload: payload, qos: qos, retain: retain)
            queued.add(1, ordering: .sequentiallyConsistent)
        }
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) { wake() }
    }

    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    func start() {
        detachedThread { [self] in
            thread.withLock { $0 = pthread_self() }
            run()
            exited.store(true, ordering: .releasing)
        }
    }

    /// Asks the thread to hand over what is queued, disconnect cleanly and end; waits up to
    /// `timeout` for it (a thread blocked in a TCP connect ends by itself later).
    func stop(timeout: Duration) {
        stopping.store(true, ordering: .sequentiallyConsistent)
        wake()
        if let t = thread.withLock({ $0 }), pthread_equal(t, pthread_self()) != 0 { return }
        let deadline = ContinuousClock.now + timeout
        while !exited.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(1000) }
    }

    // MARK: the network thread

    private func run() {
        nameCurrentThread(sink.threadName)
        let c = configuration
        let minDelay = max(1, c.reconnectDelayMin), maxDelay = max(minDelay, c.reconnectDelayMax)
        var delay = minDelay
        var opened = false
        while !stopping.load(ordering: .relaxed) {
            do throws(MQTTError) {
                // Under the lock: a publisher meanwhile queues in the outbox instead of waiting.
                try handleLock.withLock { _ throws(MQTTError) in if opened { try Mosquitto.reconnect(handle) } else { try openFirst() } }
                opened = true
                let connacks = sink.state.withLock { $0.connacks }
                serve()
                // A connection that was accepted starts the backoff over.
                if sink.state.withLock({ $0.connacks }) != connacks { delay = minDelay }
            } catch {
                // libmosquitto reports a lost connection through the disconnect callback; failed
                // attempts before the first connection are reported here.
                if !opened { sink.deliver(.connectionLost(reason: "\(error)")) }
            }
            if stopping.load(ordering: .relaxed) { break }
            waitForRetry(seconds: delay)
            delay = min(maxDelay, delay * 2)
        }
        handOver()
        let connected = handleLock.withLock { _ -> Bool in
            guard Mosquitto.socket(handle) >= 0 else { return false }
            Mosquitto.disconnect(handle)
            return true
        }
        if connected { flushWrites(for: .seconds(2)) }
    }

    private func openFirst() throws(MQTTError) {
        let c = configuration
        // libmosquitto takes a Unix socket as the host with port 0.
        let host = c.unixSocket ?? c.host, port = c.unixSocket == nil ? Int32(c.port) : 0
        switch c.protocolVersion {
        case .v5:
            // Without a Session Expiry Interval a v5 session ends at disconnect; clean_session off
            // means "keep it", as 3.1.1 did. libmosquitto keeps the properties for reconnects.
            try Mosquitto.connectV5(handle, host, port, Int32(c.keepAliveSeconds),
                                    maximumPacketSize: c.maximumPacketSize, sessionExpiry: c.cleanSession ? nil : UInt32.max)
        case .v311:
            try Mosquitto.connect(handle, host, port, Int32(c.keepAliveSeconds))
        }
    }

    /// Polls the connected socket until the connection is lost or the client stops.
    private func serve() {
        var fds = [pollfd(fd: -1, events: 0, revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .relaxed) {
            handOver()
            let (sock, wantWrite) = handleLock.withLock { _ in (Mosquitto.socket(handle), Mosquitto.wantWrite(handle)) }
            guard sock >= 0 else { return }
            fds[0].fd = sock
            fds[0].events = Int16(POLLIN) | (wantWrite ? Int16(POLLOUT) : 0)
            fds[0].revents = 0
            fds[1].revents = 0
            if !sleep(fds: &fds, timeoutMs: 1000) { continue }
            let r = fds[0].revents
            let lost = handleLock.withLock { _ -> Bool in
                if r & Int16(POLLIN | POLLERR | POLLHUP) != 0, !readAvailable() { return true }
                if r & Int16(POLLOUT) != 0, Mosquitto.loopWrite(handle) != 0 || Mosquitto.socket(handle) < 0 { return true }
                // Keepalive: PINGREQ when due, and the connection dropped if the broker stopped answering.
                return Mosquitto.loopMisc(handle) != 0 || Mosquitto.socket(handle) < 0
            }
            if lost { return }
        }
    }

    /// Reads the packets already in the socket, up to `readBurst` (the caller holds `handleLock`);
    /// false when the connection is gone. `mosquitto_loop_read` reads one packet per call unless
    /// QoS 2 messages are in flight, so one poll per packet would be the price under load; instead
    /// it is called again until a read runs dry. errno is cleared before each call: a dry read
    /// leaves EAGAIN, a whole packet leaves it as it was. A stale EAGAIN from a callback only
    /// sends the loop back to poll, which returns at once.
    private func readAvailable() -> Bool {
        for _ in 0..<Self.readBurst {
            errno = 0
            if Mosquitto.loopRead(handle) != 0 || Mosquitto.socket(handle) < 0 { return false }
            if errno == EAGAIN || errno == EWOULDBLOCK { return true }
        }
        return true
    }

    /// Packets read per wake-up before the loop polls again, so that queued publishes and the
    /// keepalive get their turn under a flood.
    static let readBurst = 64

    /// poll(2) unless work is already waiting; false when interrupted (retry).
    private func sleep(fds: inout [pollfd], timeoutMs: Int32) -> Bool {
        sleeping.store(true, ordering: .sequentiallyConsistent)
        // Queued publishes make it busy only when they can go (connected): while the connection is
        // down QoS 1 waits in the outbox, and spinning on it would burn a core for the outage.
        let busy = (queued.load(ordering: .sequentiallyConsistent) > 0 && sink.state.withLock { $0.connected })
            || subscribeRequested.load(ordering: .sequentiallyConsistent) || stopping.load(ordering: .sequentiallyConsistent)
        let n = poll(&fds, nfds_t(fds.count), busy ? 0 : timeoutMs)
        sleeping.store(false, ordering: .relaxed)
        if n < 0 { return false }
        if fds[fds.count - 1].revents & Int16(POLLIN) != 0 {
            var v: UInt64 = 0
            _ = read(wakeFD, &v, 8)
        }
        return true
    }

    /// Between connection attempts: still hands publishes to libmosquitto (QoS 1 waits in its
    /// queue for the connection; QoS 0 fails and is counted), and ends early when stopping.
    private func waitForRetry(seconds: Int) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .relaxed) {
            handOver()
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return }
            fds[0].revents = 0
            _ = sleep(fds: &fds, timeoutMs: Int32(min(1000, max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))))
        }
    }

    /// After DISCONNECT: lets libmosquitto finish writing (it closes the socket when done).
    private func flushWrites(for limit: Duration) {
        let deadline = ContinuousClock.now + limit
        var fds = [pollfd(fd: -1, events: Int16(POLLOUT), revents: 0)]
        while ContinuousClock.now < deadline {
            let (sock, wantWrite) = handleLock.withLock { _ in (Mosquitto.socket(handle), Mosquitto.wantWrite(handle)) }
            guard sock >= 0, wantWrite else { return }
            fds[0].fd = sock
            fds[0].revents = 0
            if poll(&fds, 1, 100) > 0, handleLock.withLock({ _ in Mosquitto.loopWrite(handle) }) != 0 { return }
        }
    }

    /// Gives every handed-over publish to libmosquitto, in order, and sends new subscriptions.
    private func handOver() {
        if subscribeRequested.exchange(false, ordering: .sequentiallyConsistent) { sendNewSubscriptions() }
        guard queued.load(ordering: .sequentiallyConsistent) > 0 else { return }
        // Until the broker's CONNACK, QoS 1 stays here: libmosquitto would send a publish made
        // between CONNECT and CONNACK at once and again after the CONNACK resets its send quota
        // (seen as duplicates in oneNetworkThreadPerClientAndConcurrentHandOvers). QoS 0 is dropped.
        guard sink.state.withLock({ $0.connected }) else {
            let dropped = outbox.withLock { box in
                let d = box.removeAtMostOnce()
                queued.subtract(d.count, ordering: .sequentiallyConsistent)
                return d
            }
            for topic in dropped { publishFailed(topic, MOSQ_ERR_NO_CONN.rawValue, "QoS 0 is not kept while the connection is down") }
            return
        }
        // The handle lock first: a publisher that sees `queued` reach 0 under it finds every
        // earlier publish already given to libmosquitto.
        handleLock.withLock { _ in
            outbox.withLock { swap(&$0, &spare) }
            spare.forEach { topic, payload, qos, retain in
                publishNow(topic, payload, qos, retain)
                // After publishNow recorded it as pending: inflight never reads 0 in between.
                queued.subtract(1, ordering: .sequentiallyConsistent)
            }
        }
        spare.removeAll()
    }

    private func publishNow(_ topic: UnsafePointer<CChar>, _ payload: UnsafeRawBufferPointer, _ qos: Int32, _ retain: Bool) {
        let (rc, mid) = Mosquitto.publish(handle, topic, payload, qos, retain)
        // QoS 1 while disconnected waits in libmosquitto's queue and goes out on reconnect.
        if rc == MOSQ_ERR_SUCCESS.rawValue || (rc == MOSQ_ERR_NO_CONN.rawValue && qos != 0) {
            sink.state.withLock { s in
                // QoS 0 is acknowledged (the callback fires) when written, which here is inside
                // mosquitto_publish itself.
                if s.ackedEarly.remove(mid) != nil { return }
                if qos == 0 { s.ignore.insert(mid) } else { s.pending.insert(mid) }
            }
            return
        }
        publishFailed(String(cString: topic), rc)
    }

    /// Counts a publish that will not go out and tells the client's owner (off the hot path).
    private func publishFailed(_ topic: String, _ rc: Int32, _ why: String? = nil) {
        sink.failedPublishes.add(1, ordering: .relaxed)
        let reason = "mosquitto_publish failed: \(String(cString: mosquitto_strerror(rc))) (rc \(rc))" + (why.map { ": " + $0 } ?? "")
        sink.deliver(.publishFailed(topic: topic, reason: reason))
    }

    private func sendNewSubscriptions() {
        let subs = sink.state.withLock { s -> [(filter: String, qos: Int32)] in
            defer { s.unsent.removeAll() }
            return s.connected ? s.unsent : []
        }
        for sub in subs {
            // A failure means the connection just went: the next connect subscribes to everything.
            if let mid = handleLock.withLock({ _ in try? Mosquitto.subscribe(handle, sub.filter, sub.qos) }) {
                sink.state.withLock { $0.subscribed(mid, sub.filter) }
            }
        }
    }
}
