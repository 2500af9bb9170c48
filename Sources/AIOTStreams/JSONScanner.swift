// The byte scanner under PayloadParser: a JSON subset, no Foundation, no allocation (numbers go
// through strtod from a stack buffer).
#if canImport(Glibc)
import Glibc
#endif

/// Byte scanner for the JSON subset PayloadParser reads (plus NaN/Infinity tokens, so they are counted as
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
