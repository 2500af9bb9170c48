// Reading payloads: JSON {"t","v"}, JSON {"t","values":{...}}, SenML packs (RFC 8428), plain numbers.
// A small byte-level parser: no Foundation, no allocation per message; a message is accepted whole
// or rejected whole with one reason.
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

/// Parses payloads into a reused reading buffer.
public struct PayloadParser: Sendable {
    public let maxPayloadBytes: Int
    public let maxReadingsPerMessage: Int
    public private(set) var readings: [Reading]

    public init(maxPayloadBytes: Int = 4096, maxReadingsPerMessage: Int = 64) {
        self.maxPayloadBytes = maxPayloadBytes
        self.maxReadingsPerMessage = maxReadingsPerMessage
        readings = []
        readings.reserveCapacity(maxReadingsPerMessage)
    }

    /// Parses `payload`; on success `readings` holds the message's readings (at least one).
    /// `now` (unix seconds) stamps values that carry no time.
    public mutating func parse(_ payload: UnsafeBufferPointer<UInt8>, features: FeatureNames, now: Double) -> RejectReason? {
        readings.removeAll(keepingCapacity: true)
        if payload.count > maxPayloadBytes { return .oversized }
        var s = Scanner(bytes: payload)
        s.skipWhitespace()
        guard let first = s.peek() else { return .malformed }
        let result: RejectReason?
        switch first {
        case UInt8(ascii: "{"): result = parseObject(&s, features: features, now: now)
        case UInt8(ascii: "["): result = parseSenML(&s, features: features, now: now)
        case UInt8(ascii: "\""), UInt8(ascii: "t"), UInt8(ascii: "f"): result = .wrongType
        default:
            switch s.number() {
            case .value(let v):
                result = v.isFinite ? append(Reading(feature: features.defaultFeature, time: now, value: v)) : .nonFinite
            case .nonFinite: result = .nonFinite
            case .invalid: result = .malformed
            }
        }
        if let result { readings.removeAll(keepingCapacity: true); return result }
        s.skipWhitespace()
        if !s.atEnd { readings.removeAll(keepingCapacity: true); return .malformed }
        return nil
    }

    private mutating func append(_ r: Reading) -> RejectReason? {
        if readings.count >= maxReadingsPerMessage { return .oversized }
        readings.append(r)
        return nil
    }

    /// {"t": seconds, "v": number} or {"t": seconds, "values": {"name": number, ...}}
    private mutating func parseObject(_ s: inout Scanner, features: FeatureNames, now: Double) -> RejectReason? {
        var time: Double? = nil
        var value: Double? = nil
        var sawValues = false
        var deferred: RejectReason? = nil
        let valuesStart = readings.count
        guard s.consume(UInt8(ascii: "{")) else { return .malformed }
        s.skipWhitespace()
        if s.consume(UInt8(ascii: "}")) { return .malformed }
        while true {
            guard let key = s.memberName() else { return .malformed }
            if key.count == 1 && (key[0] == UInt8(ascii: "t") || key[0] == UInt8(ascii: "v")) {
                let isTime = key[0] == UInt8(ascii: "t")
                switch s.numberOrType() {
                case .value(let v): if isTime { time = v } else { value = v }
                case .nonFinite: deferred = deferred ?? .nonFinite
                case .wrongType: deferred = deferred ?? .wrongType
                case .invalid: return .malformed
                }
            } else if key.elementsEqual("values".utf8) {
                sawValues = true
                guard s.consume(UInt8(ascii: "{")) else {
                    if s.skipValue() { deferred = deferred ?? .wrongType; s.skipWhitespace(); if s.consume(UInt8(ascii: ",")) { continue }; break }
                    return .malformed
                }
                s.skipWhitespace()
                if !s.consume(UInt8(ascii: "}")) {
                    while true {
                        guard let name = s.memberName() else { return .malformed }
                        let f = features.index(of: name)
                        switch s.numberOrType() {
                        case .value(let v):
                            if let f { if let r = append(Reading(feature: f, time: .nan, value: v)) { return r } } else { deferred = deferred ?? .unknownFeature }
                        case .nonFinite: deferred = deferred ?? .nonFinite
                        case .wrongType: deferred = deferred ?? .wrongType
                        case .invalid: return .malformed
                        }
                        s.skipWhitespace()
                        if s.consume(UInt8(ascii: ",")) { continue }
                        if s.consume(UInt8(ascii: "}")) { break }
                        return .malformed
                    }
                }
            } else {
                guard s.skipValue() else { return .malformed }
            }
            s.skipWhitespace()
            if s.consume(UInt8(ascii: ",")) { continue }
            if s.consume(UInt8(ascii: "}")) { break }
            return .malformed
        }
        if let deferred { return deferred }
        let t = time ?? now
        if let value {
            if sawValues { return .malformed }
            return append(Reading(feature: features.defaultFeature, time: t, value: value))
        }
        guard sawValues, readings.count > valuesStart else { return .malformed }
        for i in valuesStart..<readings.count { readings[i].time = t }
        return nil
    }

    /// RFC 8428 pack: [{"bn":..,"bt":..,"n":..,"t":..,"v":..}, ...]. Names resolve to features by
    /// `n`; times below 2^28 are relative to now (RFC 8428 §4.5.3).
    private mutating func parseSenML(_ s: inout Scanner, features: FeatureNames, now: Double) -> RejectReason? {
        guard s.consume(UInt8(ascii: "[")) else { return .malformed }
        var baseTime = 0.0
        var baseValue = 0.0
        var deferred: RejectReason? = nil
        s.skipWhitespace()
        if s.consume(UInt8(ascii: "]")) { return .malformed }
        while true {
            s.skipWhitespace()
            guard s.consume(UInt8(ascii: "{")) else { return .malformed }
            var name: UnsafeBufferPointer<UInt8>? = nil
            var t = 0.0
            var v: Double? = nil
            var otherValue = false
            s.skipWhitespace()
            if !s.consume(UInt8(ascii: "}")) {
                while true {
                    guard let key = s.memberName() else { return .malformed }
                    if key.elementsEqual("n".utf8) || key.elementsEqual("bn".utf8) {
                        guard let str = s.string() else {
                            guard s.skipValue() else { return .malformed }
                            deferred = deferred ?? .wrongType
                            s.skipWhitespace(); if s.consume(UInt8(ascii: ",")) { continue }; if s.consume(UInt8(ascii: "}")) { break }; return .malformed
                        }
                        if key.count == 1 { name = str }
                    } else if key.elementsEqual("t".utf8) || key.elementsEqual("bt".utf8) || key.elementsEqual("v".utf8) || key.elementsEqual("bv".utf8) {
                        switch s.numberOrType() {
                        case .value(let x):
                            if key.elementsEqual("t".utf8) { t = x } else if key.elementsEqual("bt".utf8) { baseTime = x } else if key.elementsEqual("v".utf8) { v = x } else { baseValue = x }
                        case .nonFinite: deferred = deferred ?? .nonFinite
                        case .wrongType: deferred = deferred ?? .wrongType
                        case .invalid: return .malformed
                        }
                    } else if key.elementsEqual("vs".utf8) || key.elementsEqual("vb".utf8) || key.elementsEqual("vd".utf8) {
                        otherValue = true
                        guard s.skipValue() else { return .malformed }
                    } else {
                        guard s.skipValue() else { return .malformed }
                    }
                    s.skipWhitespace()
                    if s.consume(UInt8(ascii: ",")) { continue }
                    if s.consume(UInt8(ascii: "}")) { break }
                    return .malformed
                }
            }
            if let v {
                let fullTime = baseTime + t
                let time = fullTime < 268_435_456 ? now + fullTime : fullTime
                // Features match the record name `n`; the base name usually names the device, so a
                // record without `n` feeds the topic's default feature.
                let f: Int?
                if let name { f = features.index(of: name) } else { f = features.defaultFeature }
                if let f {
                    if let r = append(Reading(feature: f, time: time, value: baseValue + v)) { return r }
                } else {
                    deferred = deferred ?? .unknownFeature
                }
            } else if otherValue {
                deferred = deferred ?? .wrongType
            }
            s.skipWhitespace()
            if s.consume(UInt8(ascii: ",")) { continue }
            if s.consume(UInt8(ascii: "]")) { break }
            return .malformed
        }
        if let deferred { return deferred }
        return readings.isEmpty ? .malformed : nil
    }
}

/// Byte scanner for the JSON subset above (plus NaN/Infinity tokens, so they are counted as
/// non-finite rather than malformed).
struct Scanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var i = 0
    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var atEnd: Bool { i >= bytes.count }
    func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }
    mutating func consume(_ c: UInt8) -> Bool {
        if i < bytes.count && bytes[i] == c { i += 1; return true }
        return false
    }
    mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }
    /// An object member's name and its colon, with the whitespace around them: `"name" :`.
    mutating func memberName() -> UnsafeBufferPointer<UInt8>? {
        skipWhitespace()
        guard let name = string() else { return nil }
        skipWhitespace()
        guard consume(UInt8(ascii: ":")) else { return nil }
        skipWhitespace()
        return name
    }
    /// A JSON string's raw bytes (escapes left in place: our keys and names never need them).
    mutating func string() -> UnsafeBufferPointer<UInt8>? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\\") { i += 2; continue }
            if c < 0x20 { return nil }
            if c == UInt8(ascii: "\"") {
                let r = UnsafeBufferPointer(rebasing: bytes[start..<i])
                i += 1
                return r
            }
            i += 1
        }
        return nil
    }

    enum Number { case value(Double), nonFinite, invalid }
    enum Typed { case value(Double), nonFinite, wrongType, invalid }

    private mutating func matchWord(_ w: StaticString) -> Bool {
        let n = w.utf8CodeUnitCount
        guard bytes.count - i >= n else { return false }
        for k in 0..<n where bytes[i + k] != w.utf8Start[k] { return false }
        i += n
        return true
    }

    mutating func number() -> Number {
        let start = i
        var neg = false
        if consume(UInt8(ascii: "-")) { neg = true } else { _ = consume(UInt8(ascii: "+")) }
        if matchWord("NaN") || matchWord("nan") || matchWord("Infinity") || matchWord("inf") || matchWord("Inf") { _ = neg; return .nonFinite }
        var digits = 0
        while let c = peek(), c >= 0x30 && c <= 0x39 { i += 1; digits += 1 }
        if consume(UInt8(ascii: ".")) {
            var frac = 0
            while let c = peek(), c >= 0x30 && c <= 0x39 { i += 1; frac += 1 }
            if frac == 0 { return .invalid }
        }
        if digits == 0 { return .invalid }
        if let c = peek(), c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            i += 1
            if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
            var exp = 0
            while let c = peek(), c >= 0x30 && c <= 0x39 { i += 1; exp += 1 }
            if exp == 0 { return .invalid }
        }
        let len = i - start
        if len > 63 { return .invalid }
        // strtod needs a NUL-terminated copy; a stack buffer keeps this allocation-free.
        let v: Double = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buf in
            for k in 0..<len { buf[k] = CChar(bitPattern: bytes[start + k]) }
            buf[len] = 0
            return strtod(buf.baseAddress!, nil)
        }
        return v.isFinite ? .value(v) : .nonFinite
    }

    mutating func numberOrType() -> Typed {
        guard let c = peek() else { return .invalid }
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "t"), UInt8(ascii: "f"):
            return skipValue() ? .wrongType : .invalid
        case UInt8(ascii: "n"):
            if matchWord("null") { return .wrongType }
            return number() == .nonFinite ? .nonFinite : .invalid
        default:
            switch number() {
            case .value(let v): return .value(v)
            case .nonFinite: return .nonFinite
            case .invalid: return .invalid
            }
        }
    }

    /// Skips any JSON value; false when it is not well formed.
    mutating func skipValue(depth: Int = 0) -> Bool {
        if depth > 16 { return false }
        skipWhitespace()
        guard let c = peek() else { return false }
        switch c {
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = c == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            i += 1
            skipWhitespace()
            if consume(close) { return true }
            while true {
                skipWhitespace()
                if c == UInt8(ascii: "{") {
                    guard string() != nil else { return false }
                    skipWhitespace()
                    guard consume(UInt8(ascii: ":")) else { return false }
                }
                guard skipValue(depth: depth + 1) else { return false }
                skipWhitespace()
                if consume(UInt8(ascii: ",")) { continue }
                return consume(close)
            }
        case UInt8(ascii: "t"): return matchWord("true")
        case UInt8(ascii: "f"): return matchWord("false")
        case UInt8(ascii: "n"): return matchWord("null") || number() == .nonFinite
        default: return number() != .invalid
        }
    }
}

extension Scanner.Number: Equatable {}
