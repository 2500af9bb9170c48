// The `[deploy]` table: the artifact channel's trusted keys, where it keeps its files and how
// large an artifact may be (docs/deploy.md). Without the table, or with no key, nothing is
// subscribed and no artifact is ever accepted.
import TOMLKit
import AIOTDeploy

public struct DeploySettings: Sendable, Equatable {
    /// Public keys whose signatures this gateway accepts (`trusted_keys`, hex from aiotctl keygen).
    public var trustedKeys = TrustedKeys([])
    /// Staging file, A/B slots and the active pointers, one subdirectory per stream.
    public var directory = "/var/lib/aiotd/deploy"
    /// Larger artifacts are refused at the manifest, before a byte is staged.
    public var maxArtifactBytes = 16 << 20
    /// Manifests, chunks, status and rollback requests arrive under `<topic>/<id>/...`.
    public var topic = "aiot/{gateway}/deploy"
    /// A signed rollback's "ts" may differ from the gateway's clock by this much.
    public var maxSkewSeconds = 300.0
    public init() {}
}

extension Reader {
    func deploy(_ root: TOMLTable) throws(ConfigError) -> DeploySettings? {
        guard let t = try table(root, "deploy") else { return nil }
        try checkKeys(t, "deploy", ["trusted_keys", "directory", "max_artifact_bytes", "topic", "max_skew_s"])
        var s = DeploySettings()
        guard let a = t["trusted_keys"]?.array, !a.isEmpty else {
            throw err("deploy.trusted_keys", "missing; list the public keys (64 hex digits each, from aiotctl keygen) whose artifacts this gateway accepts")
        }
        var keys: [DeployPublicKey] = []
        for (i, v) in a.enumerated() {
            guard let h = v.string else { throw err("deploy.trusted_keys[\(i)]", "expected a string of 64 hex digits") }
            do { keys.append(try DeployPublicKey(hex: h)) } catch { throw err("deploy.trusted_keys[\(i)]", error.message) }
        }
        s.trustedKeys = TrustedKeys(keys)
        s.directory = try string(t, "directory", "deploy.directory", default: s.directory)
        s.maxArtifactBytes = try int(t, "max_artifact_bytes", "deploy.max_artifact_bytes", default: s.maxArtifactBytes, range: 1024...(1 << 30))
        s.topic = try string(t, "topic", "deploy.topic", default: s.topic)
        if s.topic.contains("+") || s.topic.contains("#") || s.topic.hasSuffix("/") { throw err("deploy.topic", "\"\(s.topic)\" must not contain wildcards or end with /") }
        s.maxSkewSeconds = try double(t, "max_skew_s", "deploy.max_skew_s", default: 300, min: 1, max: 86400)!
        return s
    }
}
