// HMAC-SHA256 (RFC 2104) on this module's SHA-256: aiotd's signed commands (docs/daemon.md,
// "Commands"). Beside SHA256 so there is one SHA-256 in the project; tested on RFC 4231's vectors.

public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: UnsafeRawBufferPointer) -> [UInt8] {
        // Keys longer than the 64-byte block are hashed first; shorter ones are zero-padded.
        var k = key.count > 64 ? key.withUnsafeBytes { SHA256.digest($0) } : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        var inner = k.map { $0 ^ 0x36 }
        inner.append(contentsOf: message)
        var outer = k.map { $0 ^ 0x5c }
        outer += inner.withUnsafeBytes { SHA256.digest($0) }
        return outer.withUnsafeBytes { SHA256.digest($0) }
    }

    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { mac(key: key, message: $0) }
    }

    /// Lower-case hex, the form a signed command carries.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return s
    }

    /// Equal in time independent of where they differ (no timing oracle for a forger).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in a.indices { d |= a[i] ^ b[i] }
        return d == 0
    }
}

/// The signed form of a JSON object: the object's exact bytes with the member `,"hmac":"<64
/// lower-case hex>"` inserted before its closing brace, the MAC computed over the bytes without it.
/// No canonical JSON is needed: the verifier removes that last member and checks the bytes as sent.
public enum SignedJSON {
    static let member = Array(",\"hmac\":\"".utf8)
    /// Length of `,"hmac":"` + 64 hex digits + `"}`.
    static let trailerCount = member.count + 64 + 2

    /// The key a key file holds: its bytes without trailing newlines (so `openssl dgst -hmac "$(cat FILE)"` agrees).
    public static func key(fileContents: [UInt8]) -> [UInt8] {
        var bytes = fileContents
        while let last = bytes.last, last == 0x0a || last == 0x0d { bytes.removeLast() }
        return bytes
    }

    /// `object` must be a JSON object with at least one member, written without trailing whitespace.
    public static func sign(_ object: [UInt8], key: [UInt8]) -> [UInt8] {
        // `{}` would become `{,"hmac":…}`, which no verifier accepts: at least one member.
        precondition(object.count >= 3 && object.last == UInt8(ascii: "}"), "sign a JSON object with at least one member")
        let mac = HMACSHA256.hex(HMACSHA256.mac(key: key, message: object))
        return object.dropLast() + member + Array(mac.utf8) + Array("\"}".utf8)
    }

    /// The signed bytes (the payload without its final hmac member) and the MAC carried; nil when the
    /// payload does not end with exactly `,"hmac":"<64 lower-case hex>"}`.
    public static func split(_ payload: [UInt8]) -> (signed: [UInt8], mac: [UInt8])? {
        let n = payload.count
        guard n >= trailerCount + 2, payload[n - 2] == UInt8(ascii: "\""), payload[n - 1] == UInt8(ascii: "}") else { return nil }
        let start = n - trailerCount
        guard payload[start..<start + member.count].elementsEqual(member) else { return nil }
        var mac: [UInt8] = []
        mac.reserveCapacity(32)
        var i = start + member.count
        while i < n - 2 {
            guard let hi = nibble(payload[i]), let lo = nibble(payload[i + 1]) else { return nil }
            mac.append(hi << 4 | lo)
            i += 2
        }
        return (Array(payload[0..<start]) + [UInt8(ascii: "}")], mac)
    }

    /// Whether `payload` is `signed` form under `key`; returns the signed bytes if so.
    public static func verify(_ payload: [UInt8], key: [UInt8]) -> [UInt8]? {
        guard let (signed, mac) = split(payload) else { return nil }
        return HMACSHA256.constantTimeEqual(HMACSHA256.mac(key: key, message: signed), mac) ? signed : nil
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
