// Message buffers handed back by the consumer and reused by the network callback, so a steady
// stream of small messages costs no heap allocation per message on our side of libmosquitto.
import Synchronization

/// A bounded free list of message buffers. The consumer gives a message back once it is done with
/// it (`give`); the network callback takes one for the next message (`take`). Only small buffers
/// are kept, and only a bounded number: a burst of large messages cannot pin memory here.
public final class MQTTBufferPool: Sendable {
    public let maxBuffers: Int
    /// Buffers whose capacity exceeds this are dropped, not kept.
    public let maxBufferBytes: Int
    private let free: Mutex<[[UInt8]]>

    public init(maxBuffers: Int = 256, maxBufferBytes: Int = 4096) {
        self.maxBuffers = maxBuffers
        self.maxBufferBytes = maxBufferBytes
        var list: [[UInt8]] = []
        list.reserveCapacity(maxBuffers)
        free = Mutex(list)
    }

    /// Buffers waiting for reuse.
    public var count: Int { free.withLock { $0.count } }

    /// An emptied buffer for the next message, or nil when none is waiting.
    func take() -> [UInt8]? {
        guard var b = free.withLock({ $0.popLast() }) else { return nil }
        // Emptied here, not in `give`: by now the consumer's copies are gone, so this keeps the
        // storage; in `give` the message still shares it and emptying would allocate.
        b.removeAll(keepingCapacity: true)
        return b
    }

    /// Returns a message's buffer for reuse. Reuse allocates nothing if no other copy of the
    /// message is alive by the time it is taken again (otherwise that write copies: still correct).
    public func give(_ message: MQTTMessage) {
        guard message.storage.capacity <= maxBufferBytes else { return }
        free.withLock { list in
            if list.count < maxBuffers { list.append(message.storage) }
        }
    }
}
