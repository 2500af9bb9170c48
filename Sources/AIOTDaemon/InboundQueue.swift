// A bounded hand-off from libmosquitto's network thread to the processing thread.
import Foundation
import AIOTMQTT

/// Fixed-capacity FIFO, bounded in messages and in bytes. `push` blocks while full: the network
/// thread stops reading, TCP pushes back, and the broker keeps QoS 1 messages queued for our
/// persistent session instead of this process buffering without bound (1,024 messages of a
/// broker's maximum size would otherwise be gigabytes). No allocation per message (the ring is
/// allocated once).
final class InboundQueue: @unchecked Sendable {
    // @unchecked: every field is touched only under `cond`.
    private let cond = NSCondition()
    private var ring: [MQTTEvent?]
    private var head = 0
    private var count = 0
    private var busy = false
    private var closed = false
    /// Shutdown has begun: pushes no longer wait (they go to `overflow`), so disconnecting intake
    /// never blocks on a full queue; what the network thread still hands over was acknowledged.
    private var draining = false
    private var overflow: [MQTTEvent] = []
    private(set) var highWater = 0
    /// Payload and topic bytes held; one message alone may exceed `maxBytes` (it waits for an empty queue).
    private(set) var bytes = 0
    let maxBytes: Int

    init(capacity: Int, maxBytes: Int = 16 << 20) {
        ring = [MQTTEvent?](repeating: nil, count: max(1, capacity))
        self.maxBytes = maxBytes
    }

    static func size(_ e: MQTTEvent) -> Int {
        if case .message(let m) = e { return m.payloadCount + 64 }
        return 64
    }

    /// Network thread. Returns false once closed (the event is dropped and counted by the caller).
    func push(_ e: MQTTEvent) -> Bool {
        let n = Self.size(e)
        cond.lock()
        defer { cond.unlock() }
        while (count == ring.count || (count > 0 && bytes + n > maxBytes)) && !closed && !draining { cond.wait() }
        if closed { return false }
        if count == ring.count || (count > 0 && bytes + n > maxBytes) {
            overflow.append(e)
            cond.broadcast()
            return true
        }
        ring[(head + count) % ring.count] = e
        count += 1
        bytes += n
        if count > highWater { highWater = count }
        cond.broadcast()
        return true
    }

    /// Processing thread: moves every waiting event, up to `max`, into `batch` (emptied first;
    /// reserve its capacity once and nothing is allocated), blocking while there are none. False
    /// when closed. Call `done()` after handling the batch. One lock round per batch instead of
    /// per message: under load the hand-off's futex traffic is shared by the whole batch.
    func popBatch(into batch: inout [MQTTEvent], max: Int) -> Bool {
        batch.removeAll(keepingCapacity: true)
        cond.lock()
        defer { cond.unlock() }
        while count == 0 && overflow.isEmpty && !closed { cond.wait() }
        if count == 0 && !overflow.isEmpty {
            // Only while draining: the few messages intake handed over after shutdown began.
            let n = min(overflow.count, max)
            batch.append(contentsOf: overflow.prefix(n))
            overflow.removeFirst(n)
            busy = true
            return true
        }
        if count == 0 { return false }
        let n = min(count, max)
        let wasFull = count == ring.count || bytes > maxBytes / 2
        for _ in 0..<n {
            let e = ring[head]!
            bytes -= Self.size(e)
            batch.append(e)
            ring[head] = nil
            head = head + 1 == ring.count ? 0 : head + 1
        }
        count -= n
        busy = true
        // Only a full queue (in messages or bytes) can have a producer waiting on it.
        if wasFull { cond.broadcast() }
        return true
    }

    func done() {
        cond.lock()
        busy = false
        cond.broadcast()
        cond.unlock()
    }

    /// Waits until everything pushed so far has been handled, or the deadline passes.
    func waitIdle(until deadline: Date) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while (count > 0 || !overflow.isEmpty || busy) && Date() < deadline { _ = cond.wait(until: min(deadline, Date().addingTimeInterval(0.05))) }
        return count == 0 && overflow.isEmpty && !busy
    }

    /// Shutdown: from now on `push` never waits.
    func beginDraining() {
        cond.lock()
        draining = true
        cond.broadcast()
        cond.unlock()
    }

    /// Stops the queue and hands back the events still waiting, oldest first, so the caller can
    /// spool them (they were already acknowledged to the broker). The processing thread finishes
    /// the batch it holds and then sees the queue closed.
    func close() -> [MQTTEvent] {
        cond.lock()
        defer { cond.unlock() }
        closed = true
        var left: [MQTTEvent] = []
        left.reserveCapacity(count)
        for i in 0..<count { left.append(ring[(head + i) % ring.count]!) }
        left += overflow
        overflow.removeAll()
        for i in 0..<ring.count { ring[i] = nil }
        count = 0
        bytes = 0
        cond.broadcast()
        return left
    }
}
