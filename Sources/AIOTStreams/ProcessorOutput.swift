// What the processor hands back per message: the completed windows and everything else the
// message did, in buffers reused across messages.
import AIOTModel

/// A window completed by a message: the model input is `values[range]` of the output.
public struct CompletedWindow: Sendable, Equatable {
    public var slot: Int
    public var sensor: String
    public var template: Int
    public var step: Int64
    /// Time of the window's last step (seconds since 1970).
    public var windowEnd: Double
    /// The forecast sequence number for this sensor (1, 2, ...).
    public var sequence: UInt64
    public var range: Range<Int>
    /// Completed by a reading that arrived after a newer step had already been forecast.
    public var late: Bool = false
    /// During a model trial: the same window quantized for the previous model (its shadow run).
    public var shadowRange: Range<Int>? = nil
}

/// What one message did. Reused across messages (`reset` keeps capacity).
public struct ProcessorOutput: Sendable {
    public var accepted = 0
    /// One entry per rejected reading (or one for a message rejected whole).
    public var rejected: [RejectReason] = []
    public var windows: [CompletedWindow] = []
    public var values: [Int32] = []
    /// The template the message was routed to, or nil.
    public var template: Int? = nil
    /// Forecast values whose actual arrived with this message (OnlineAccuracy.swift).
    public var resolved: [ResolvedForecast] = []
    /// Drift alarms raised or cleared by this message: (slot, change).
    public var drift: [(slot: Int, change: DriftChange)] = []
    /// The sensor whose window this message created (its first good message), or nil.
    public var createdSensor: String? = nil
    /// Nothing was done: the caller holds an unrecorded forecast of this sensor (`process`).
    public var deferred = false
    public init() {
        rejected.reserveCapacity(64)
        windows.reserveCapacity(8)
    }
    public mutating func reset() {
        accepted = 0
        template = nil
        createdSensor = nil
        deferred = false
        rejected.removeAll(keepingCapacity: true)
        windows.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        resolved.removeAll(keepingCapacity: true)
        drift.removeAll(keepingCapacity: true)
    }
}
