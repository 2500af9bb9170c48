// The operator's rollback request: signed like a manifest, fresh (ts within a window of the
// gateway's clock) and used once (nonce), so a recorded request cannot be replayed later.

public struct RollbackRequest: Sendable, Equatable {
    public static let header = "aiot-deploy-rollback v1"
    static let keys = ["gateway", "kind", "stream", "ts", "nonce", "key_id"]
    public var gateway: String
    public var kind: ArtifactKind
    public var stream: String
    public var ts: Int64
    public var nonce: String
    public var keyID: String = ""

    public init(gateway: String, kind: ArtifactKind, stream: String, ts: Int64, nonce: String) {
        (self.gateway, self.kind, self.stream, self.ts, self.nonce) = (gateway, kind, stream, ts, nonce)
    }

    public func signed(with key: DeploySigningKey) throws(DeployError) -> [UInt8] {
        let body = SignedText.encode(header: Self.header, [("gateway", gateway), ("kind", kind.rawValue), ("stream", stream),
                                                           ("ts", String(ts)), ("nonce", nonce), ("key_id", key.publicKey.id)])
        return SignedText.attach(body, signature: try key.sign(body))
    }

    /// Parses and checks a request: trusted signature, this gateway, `ts` within `maxSkew` of `now`.
    /// The caller checks the nonce against the ones it has seen.
    public static func verify(_ bytes: [UInt8], keys: TrustedKeys, gateway: String, now: Double, maxSkew: Double) throws(DeployError) -> RollbackRequest {
        let t = try SignedText.parse(bytes, header: header, keys: Self.keys)
        try keys.verify(t)
        guard let kind = ArtifactKind(rawValue: t["kind"]!), let ts = Int64(t["ts"]!), (8...64).contains(t["nonce"]!.utf8.count) else {
            throw DeployError(.malformed, "a rollback names kind (model|bitstream), ts (Unix s) and a nonce of 8-64 characters")
        }
        guard t["gateway"]! == gateway else { throw DeployError(.wrongGateway, "the rollback targets \(t["gateway"]!), not this gateway (\(gateway))") }
        guard abs(now - Double(ts)) <= maxSkew else {
            throw DeployError(.stale, "ts is \(Int(now - Double(ts))) s from the gateway's clock (allowed ±\(Int(maxSkew)) s): sign afresh, check clocks")
        }
        var r = RollbackRequest(gateway: gateway, kind: kind, stream: t["stream"]!, ts: ts, nonce: t["nonce"]!)
        r.keyID = t["key_id"]!
        return r
    }
}
