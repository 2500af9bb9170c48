// Why a deployment (or one of its messages) was refused: a label for metrics and replies, and a
// message that says what to do. Every refusal leaves the active version serving.

/// The reason labels of `aiotd_deploy_refused_total{reason}` and of the reply's "reason".
public enum DeployRefusal: Int, CaseIterable, Sendable, CustomStringConvertible {
    case malformed, unknownKey, badSignature, wrongGateway, wrongStream, notYetValid, expired, oldVersion
    case tooLarge, noManifest, chunkOutOfRange, chunkCorrupt, digestMismatch, validationFailed, unsupported
    case stale, replayed, nothingToRollBack, storage

    public var description: String {
        ["malformed", "unknown_key", "bad_signature", "wrong_gateway", "wrong_stream", "not_yet_valid", "expired", "old_version",
         "too_large", "no_manifest", "chunk_out_of_range", "chunk_corrupt", "digest_mismatch", "validation_failed", "unsupported",
         "stale", "replayed", "nothing_to_roll_back", "storage"][rawValue]
    }
}

public struct DeployError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: DeployRefusal
    public var message: String
    public init(_ reason: DeployRefusal, _ message: String) {
        self.reason = reason
        self.message = message
    }
    public var description: String { "\(reason): \(message)" }
}
