// Reading payloads: JSON {"t","v"}, JSON {"t","values":{...}}, SenML packs (RFC 8428), plain numbers.
// A small byte-level parser: no Foundation, no allocation per message; a message is accepted whole
// or rejected whole with one reason. Its reasons and readings: Readings.swift; its scanner: JSONScanner.swift.

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
