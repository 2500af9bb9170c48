// Ed25519 keys for the artifact channel: the operator's private key file, the gateways' trusted
// public keys, and the key id (a short name that lets a gateway pick the key without trying all).
import Crypto
import Foundation

/// A trusted public key and its id (the first 8 bytes of the SHA-256 of the raw key, in hex).
public struct DeployPublicKey: Sendable, Equatable {
    public let raw: [UInt8]
    public let id: String

    /// `hex`: the 64 hex digits `aiotctl keygen` prints.
    public init(hex: String) throws(DeployError) {
        guard let raw = Hex.decode(hex.trimmingCharacters(in: .whitespaces)), raw.count == 32,
              (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else {
            throw DeployError(.malformed, "a deploy public key is 64 hex digits (aiotctl keygen prints it)")
        }
        self.raw = raw
        id = Self.keyID(raw)
    }

    public static func keyID(_ raw: [UInt8]) -> String { Hex.encode(Crypto.SHA256.hash(data: raw).prefix(8)) }

    public var hex: String { Hex.encode(raw) }

    public func isValid(signature: [UInt8], for message: [UInt8]) -> Bool {
        guard let k = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return false }
        return k.isValidSignature(signature, for: message)
    }
}

/// The keys a gateway accepts (`deploy.trusted_keys`).
public struct TrustedKeys: Sendable, Equatable {
    public var keys: [DeployPublicKey]
    public init(_ keys: [DeployPublicKey]) { self.keys = keys }

    /// Checks `text`'s signature with the key its `key_id` names.
    public func verify(_ text: SignedText) throws(DeployError) {
        let id = text["key_id"] ?? ""
        guard let key = keys.first(where: { $0.id == id }) else {
            throw DeployError(.unknownKey, "key \(id.prefix(16)) is not in this gateway's deploy.trusted_keys; sign with a trusted key or add its public key")
        }
        guard key.isValid(signature: text.signature, for: text.signed) else {
            throw DeployError(.badSignature, "the signature does not verify with key \(id): the message was altered or signed with another key")
        }
    }
}

/// The operator's signing key. The file holds one line: `aiot-deploy-key v1 <64 hex digits>`.
public struct DeploySigningKey {
    let key: Curve25519.Signing.PrivateKey
    static let prefix = "aiot-deploy-key v1 "

    public static func generate() -> DeploySigningKey { DeploySigningKey(key: .init()) }

    /// A key from its 32 raw bytes (fuzz targets and tests that need a fixed key).
    public init(raw: [UInt8]) throws(DeployError) {
        guard let k = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else { throw DeployError(.malformed, "an Ed25519 private key is 32 bytes") }
        key = k
    }
    init(key: Curve25519.Signing.PrivateKey) { self.key = key }

    public var publicKey: DeployPublicKey { try! DeployPublicKey(hex: Hex.encode(key.publicKey.rawRepresentation)) }

    public func sign(_ message: [UInt8]) throws(DeployError) -> [UInt8] {
        do { return Array(try key.signature(for: message)) } catch { throw DeployError(.storage, "signing failed: \(error)") }
    }

    /// Writes the key with mode 0600, refusing to overwrite an existing file.
    public func write(to path: String) throws(DeployError) {
        let text = Self.prefix + Hex.encode(key.rawRepresentation) + "\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DeployError(.storage, "cannot create \(path): \(String(cString: strerror(errno))) (an existing key is never overwritten)") }
        defer { close(fd) }
        let ok = Array(text.utf8).withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) == $0.count }
        guard ok, fsync(fd) == 0 else { throw DeployError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// Reads a key file; refused when others may read it.
    public static func load(_ path: String) throws(DeployError) -> DeploySigningKey {
        var st = stat()
        guard stat(path, &st) == 0 else { throw DeployError(.storage, "cannot stat \(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & 0o077 == 0 else {
            throw DeployError(.storage, "\(path) has mode \(String(st.st_mode & 0o777, radix: 8)); others may read the signing key: run chmod 600 \(path)")
        }
        guard let d = FileManager.default.contents(atPath: path), d.count < 256 else { throw DeployError(.storage, "cannot read \(path)") }
        let text = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix(prefix), let raw = Hex.decode(String(text.dropFirst(prefix.count))), raw.count == 32,
              let k = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw DeployError(.malformed, "\(path) is not a deploy key (aiotctl keygen writes one)")
        }
        return DeploySigningKey(key: k)
    }
}
