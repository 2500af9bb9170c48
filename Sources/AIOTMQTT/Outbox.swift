// Publishes handed from any thread to the connection's network loop. Topic and payload bytes are
// copied back to back into one growing buffer; the loop swaps the whole outbox for its emptied
// spare (both keep their capacity), so in steady state handing over and taking a batch allocate
// nothing, and one lock round covers a whole batch.

struct Outbox {
    struct Entry {
        /// Offset of the topic's bytes (NUL-terminated, as libmosquitto takes it) in `bytes`.
        var topicStart: Int
        var topicCount: Int
        var payloadCount: Int
        var qos: Int32
        var retain: Bool
    }
    private(set) var bytes: [UInt8] = []
    private(set) var entries: [Entry] = []

    init(reservingBytes n: Int, entries e: Int) {
        bytes.reserveCapacity(n)
        entries.reserveCapacity(e)
    }

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    mutating func append(topic: [CChar], payload: UnsafeRawBufferPointer, qos: Int32, retain: Bool) {
        let start = bytes.count
        topic.withUnsafeBytes { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: payload)
        entries.append(Entry(topicStart: start, topicCount: topic.count, payloadCount: payload.count, qos: qos, retain: retain))
    }

    /// Calls `body` with each entry's topic (NUL-terminated) and payload, in order.
    func forEach(_ body: (UnsafePointer<CChar>, UnsafeRawBufferPointer, Int32, Bool) -> Void) {
        bytes.withUnsafeBytes { all in
            for e in entries {
                let topic = (all.baseAddress! + e.topicStart).assumingMemoryBound(to: CChar.self)
                let payload = UnsafeRawBufferPointer(rebasing: all[(e.topicStart + e.topicCount)..<(e.topicStart + e.topicCount + e.payloadCount)])
                body(topic, payload, e.qos, e.retain)
            }
        }
    }

    /// Drops the QoS 0 entries (kept order for the rest) and returns their topics: while the
    /// connection is down they are lost by definition; QoS 1 waits here for the next connection.
    /// Allocates, but only while disconnected.
    mutating func removeAtMostOnce() -> [String] {
        guard entries.contains(where: { $0.qos == 0 }) else { return [] }
        var dropped: [String] = []
        var kept = Outbox(reservingBytes: bytes.capacity, entries: entries.capacity)
        bytes.withUnsafeBytes { all in
            for e in entries {
                let topic = all[e.topicStart..<(e.topicStart + e.topicCount)].map { CChar(bitPattern: $0) }
                if e.qos == 0 {
                    dropped.append(String(decoding: all[e.topicStart..<(e.topicStart + e.topicCount - 1)], as: UTF8.self))
                } else {
                    let start = e.topicStart + e.topicCount
                    kept.append(topic: topic, payload: UnsafeRawBufferPointer(rebasing: all[start..<(start + e.payloadCount)]), qos: e.qos, retain: e.retain)
                }
            }
        }
        self = kept
        return dropped
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
    }
}
