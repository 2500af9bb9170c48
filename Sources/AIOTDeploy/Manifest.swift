// What a signed deployment says about its artifact (docs/deploy.md, "Manifest"). The signature
// covers the artifact's size and SHA-256, so the artifact itself needs no second signature.

public enum ArtifactKind: String, Sendable, CaseIterable {
    case model, bitstream
}

public struct Manifest: Sendable, Equatable {
    public static let header = "aiot-deploy-manifest v1"
    static let keys = ["kind", "name", "version", "gateways", "stream", "size", "sha256", "not_before", "expires", "key_id"]

    public var kind: ArtifactKind
    /// The artifact's file name (letters, digits, . _ -), for logs and status.
    public var name: String
    /// Monotonic per gateway and stream: a version at or below the highest one activated is refused.
    public var version: UInt64
    public var gateways: [String]
    /// The stream the artifact serves: a `[[stream]]`'s name or its sensor pattern as written.
    public var stream: String
    public var size: UInt64
    public var sha256: [UInt8]
    /// Unix seconds: valid from `notBefore` until `expires`.
    public var notBefore: Int64
    public var expires: Int64
    public var keyID: String
    /// The signed text as received (what gets stored beside the artifact).
    public var text: [UInt8] = []

    public init(kind: ArtifactKind, name: String, version: UInt64, gateways: [String], stream: String, size: UInt64, sha256: [UInt8],
                notBefore: Int64, expires: Int64, keyID: String) {
        (self.kind, self.name, self.version, self.gateways, self.stream) = (kind, name, version, gateways, stream)
        (self.size, self.sha256, self.notBefore, self.expires, self.keyID) = (size, sha256, notBefore, expires, keyID)
    }

    var fields: [(String, String)] {
        [("kind", kind.rawValue), ("name", name), ("version", String(version)), ("gateways", gateways.joined(separator: ",")),
         ("stream", stream), ("size", String(size)), ("sha256", Hex.encode(sha256)), ("not_before", String(notBefore)),
         ("expires", String(expires)), ("key_id", keyID)]
    }

    /// The signed manifest text (what `aiotctl sign` writes and `aiotctl deploy` publishes).
    public func signed(with key: DeploySigningKey) throws(DeployError) -> [UInt8] {
        var m = self
        m.keyID = key.publicKey.id
        let body = SignedText.encode(header: Self.header, m.fields)
        return SignedText.attach(body, signature: try key.sign(body))
    }

    /// Parses a signed manifest (no signature check: `verify` does that).
    public static func parse(_ bytes: [UInt8]) throws(DeployError) -> (Manifest, SignedText) {
        let t = try SignedText.parse(bytes, header: header, keys: keys)
        func f(_ k: String) -> String { t[k]! }
        guard let kind = ArtifactKind(rawValue: f("kind")) else { throw DeployError(.malformed, "kind must be model or bitstream") }
        let name = f("name")
        guard (1...128).contains(name.utf8.count), name.utf8.allSatisfy({ isNameByte($0) }), name != ".", name != ".." else {
            throw DeployError(.malformed, "name must be 1-128 letters, digits, '.', '_' or '-'")
        }
        guard let version = UInt64(f("version")), version > 0 else { throw DeployError(.malformed, "version must be a positive integer") }
        let gateways = f("gateways").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !gateways.isEmpty, gateways.allSatisfy({ !$0.isEmpty && !$0.contains("/") && !$0.contains("+") && !$0.contains("#") }) else {
            throw DeployError(.malformed, "gateways must be a comma-separated list of gateway names")
        }
        let stream = f("stream")
        guard (1...256).contains(stream.utf8.count) else { throw DeployError(.malformed, "stream must name a [[stream]] (1-256 characters)") }
        guard let size = UInt64(f("size")), size > 0 else { throw DeployError(.malformed, "size must be a positive integer") }
        guard let digest = Hex.decode(f("sha256")), digest.count == 32 else { throw DeployError(.malformed, "sha256 must be 64 hex digits") }
        guard let nb = Int64(f("not_before")), let ex = Int64(f("expires")), ex > nb else {
            throw DeployError(.malformed, "not_before and expires must be Unix seconds with expires after not_before")
        }
        let keyID = f("key_id")
        guard keyID.utf8.count == 16, Hex.decode(keyID) != nil else { throw DeployError(.malformed, "key_id must be 16 hex digits") }
        var m = Manifest(kind: kind, name: name, version: version, gateways: gateways, stream: stream, size: size, sha256: digest,
                         notBefore: nb, expires: ex, keyID: keyID)
        m.text = bytes
        return (m, t)
    }

    static func isNameByte(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x2E || b == 0x5F || b == 0x2D
    }

    /// Parses and checks a manifest for this gateway: signature by a trusted key, gateway, validity
    /// window, size limit, and a version above `floor` (the highest version this stream activated).
    public static func verify(_ bytes: [UInt8], keys: TrustedKeys, gateway: String, now: Double, maxSize: UInt64,
                              floor: (Manifest) -> UInt64) throws(DeployError) -> Manifest {
        let (m, t) = try parse(bytes)
        try keys.verify(t)
        guard m.gateways.contains(gateway) else {
            throw DeployError(.wrongGateway, "the manifest targets \(m.gateways.joined(separator: ",")), not this gateway (\(gateway))")
        }
        guard now >= Double(m.notBefore) else {
            throw DeployError(.notYetValid, "the manifest is valid from \(m.notBefore) (Unix s), \(Int(Double(m.notBefore) - now)) s from now: check the clocks")
        }
        guard now < Double(m.expires) else {
            throw DeployError(.expired, "the manifest expired at \(m.expires) (Unix s), \(Int(now - Double(m.expires))) s ago: sign it again")
        }
        guard m.size <= maxSize else {
            throw DeployError(.tooLarge, "the artifact is \(m.size) bytes; this gateway takes at most \(maxSize) (deploy.max_artifact_bytes)")
        }
        let f = floor(m)
        guard m.version > f else {
            throw DeployError(.oldVersion, "version \(m.version) is not above \(f), the highest this stream has activated: sign with a higher version")
        }
        return m
    }
}
