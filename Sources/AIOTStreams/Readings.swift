// What payload parsing produces: readings, the reasons a reading is rejected, and feature names
// as bytes for matching JSON keys.
#if canImport(Glibc)
import Glibc
#endif

/// Why a reading (or a whole message) was not used. Every rejection is counted by one of these.
public enum RejectReason: Int, CaseIterable, Sendable, CustomStringConvertible {
    case malformed
    case wrongType
    case nonFinite
    case oversized
    case unknownSensor
    case unknownFeature
    case late
    case duplicate
    case future
    /// A new sensor while `limits.max_sensors` windows are live.
    case sensorLimit

    public var description: String {
        switch self {
        case .malformed: "malformed"
        case .wrongType: "wrong_type"
        case .nonFinite: "non_finite"
        case .oversized: "oversized"
        case .unknownSensor: "unknown_sensor"
        case .unknownFeature: "unknown_feature"
        case .late: "late"
        case .duplicate: "duplicate"
        case .future: "future"
        case .sensorLimit: "sensor_limit"
        }
    }
}

/// One parsed reading: which feature, when (unix seconds), what value (engineering units).
public struct Reading: Sendable, Equatable {
    public var feature: Int
    public var time: Double
    public var value: Double
    public init(feature: Int, time: Double, value: Double) {
        self.feature = feature
        self.time = time
        self.value = value
    }
}

/// Feature names as bytes, for matching JSON keys without building Strings.
public struct FeatureNames: Sendable {
    let names: [[UInt8]]
    /// The feature a bare value ("v" or a plain number) feeds.
    public let defaultFeature: Int
    public init(_ names: [String], defaultFeature: Int) {
        self.names = names.map { Array($0.utf8) }
        self.defaultFeature = defaultFeature
    }
    public var count: Int { names.count }

    func index(of key: UnsafeBufferPointer<UInt8>) -> Int? {
        for (i, n) in names.enumerated() where n.count == key.count {
            if n.withUnsafeBufferPointer({ memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0 }) { return i }
        }
        return nil
    }
}
