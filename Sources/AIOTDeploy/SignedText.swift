// The signed text form shared by manifests and rollback requests: a header line, `key=value`
// lines in a fixed order, then `signature=<hex>`. The signed bytes are everything before the
// signature line, exactly as received, so there is one encoding and nothing to canonicalize.

public struct SignedText: Sendable, Equatable {
    /// Signed messages are small; anything larger is refused before it is looked at.
    public static let maxBytes = 4096
    public var header: String
    public var fields: [(key: String, value: String)]
    public var signed: [UInt8]
    public var signature: [UInt8]

    public static func == (a: SignedText, b: SignedText) -> Bool { a.signed == b.signed && a.signature == b.signature }

    /// Encodes `fields` under `header` (the bytes to sign; append the signature line with `signing`).
    public static func encode(header: String, _ fields: [(String, String)]) -> [UInt8] {
        var s = header + "\n"
        for (k, v) in fields { s += "\(k)=\(v)\n" }
        return Array(s.utf8)
    }

    /// `body` plus its signature line.
    public static func attach(_ body: [UInt8], signature: [UInt8]) -> [UInt8] {
        body + Array("signature=\(Hex.encode(signature))\n".utf8)
    }

    /// Parses `bytes` whose header must be `header` and whose keys must be `keys`, in order.
    public static func parse(_ bytes: [UInt8], header: String, keys: [String]) throws(DeployError) -> SignedText {
        guard bytes.count <= maxBytes else { throw DeployError(.malformed, "signed message is \(bytes.count) bytes (at most \(maxBytes))") }
        guard bytes.last == 0x0A else { throw DeployError(.malformed, "signed message must end with a newline (truncated?)") }
        for b in bytes where b != 0x0A && (b < 0x20 || b > 0x7E) {
            throw DeployError(.malformed, "signed message holds byte 0x\(String(b, radix: 16)); only printable ASCII lines are allowed")
        }
        let lines = bytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
        guard lines.count == keys.count + 2 else {
            throw DeployError(.malformed, "expected \(keys.count + 2) lines (header, \(keys.joined(separator: ", ")), signature), got \(lines.count)")
        }
        guard String(decoding: lines[0], as: UTF8.self) == header else {
            throw DeployError(.malformed, "first line must be \"\(header)\"")
        }
        var fields: [(key: String, value: String)] = []
        for (i, key) in keys.enumerated() {
            fields.append((key, try value(lines[i + 1], key)))
        }
        let sigHex = try value(lines[keys.count + 1], "signature")
        guard let sig = Hex.decode(sigHex), sig.count == 64 else { throw DeployError(.malformed, "signature must be 128 hex digits (Ed25519)") }
        let signedCount = bytes.count - (sigHex.utf8.count + "signature=\n".utf8.count)
        return SignedText(header: header, fields: fields, signed: Array(bytes[0..<signedCount]), signature: sig)
    }

    private static func value(_ line: ArraySlice<UInt8>, _ key: String) throws(DeployError) -> String {
        let prefix = Array((key + "=").utf8)
        guard line.starts(with: prefix) else { throw DeployError(.malformed, "expected a line \"\(key)=...\"") }
        return String(decoding: line.dropFirst(prefix.count), as: UTF8.self)
    }

    public subscript(key: String) -> String? { fields.first { $0.key == key }?.value }
}

/// Lower-case hexadecimal.
public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil unless `s` is an even number of lower- or upper-case hex digits.
    public static func decode(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }
}
