// Who may run which command, and how often: the `[commands]` settings, the reasons a command is
// refused, and the state that enforces them (a token bucket and the nonces seen inside the replay
// window). The signed form is SignedJSON (AIOTModel/HMAC.swift); docs/daemon.md, "Commands".
import Foundation
import AIOTModel

/// The `[commands]` table.
public struct CommandSettings: Sendable, Equatable {
    /// The commands aiotd knows; `allow` names a subset.
    public static let known = ["status", "reload", "engine", "rotate"]
    /// Commands that may run at all (default: status only: it changes nothing).
    public var allow: Set<String> = ["status"]
    /// When set, every command must be signed with this key (hmac_key_file).
    public var key: CommandKey?
    /// A signed command's "ts" may differ from the gateway's clock by this much (seconds).
    public var maxSkewSeconds: Double = 30
    /// Token bucket: commands per minute on average, and the burst allowed above it.
    public var ratePerMinute: Double = 60
    public var burst: Int = 10
    public init() {}
}

/// Key bytes that never appear in a description or log line.
public struct CommandKey: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let path: String
    public var description: String { "key from \(path)" }

    /// Reads a key file: at least 16 bytes (trailing newlines are not part of the key), owner-only
    /// permissions. Refused when group- or world-readable or unreadable, with what to do.
    public static func load(_ path: String) throws(ConfigError) -> CommandKey {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ConfigError("commands.hmac_key_file: cannot stat \(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw ConfigError("commands.hmac_key_file: \(path) is not a regular file") }
        guard st.st_mode & 0o077 == 0 else {
            throw ConfigError("commands.hmac_key_file: \(path) has mode \(String(st.st_mode & 0o777, radix: 8)); others may read the key: run chmod 600 \(path)")
        }
        guard st.st_size <= 4096, let d = FileManager.default.contents(atPath: path) else {
            throw ConfigError("commands.hmac_key_file: cannot read \(path) (at most 4096 bytes, readable by aiotd's user)")
        }
        let bytes = SignedJSON.key(fileContents: Array(d))
        guard bytes.count >= 16 else {
            throw ConfigError("commands.hmac_key_file: \(path) holds \(bytes.count) bytes; use at least 16 (e.g. head -c 32 /dev/urandom | xxd -p -c 64 > \(path))")
        }
        return CommandKey(bytes: bytes, path: path)
    }
}

/// Why a command was refused: a label in `aiotd_commands_refused_total{reason}` and in status.
enum CommandRefusal: Int, CaseIterable, CustomStringConvertible {
    case rateLimited, badRequest, unknown, notAllowed, unsigned, badSignature, stale, replayed, replayMemoryFull

    var description: String {
        ["rate_limited", "bad_request", "unknown", "not_allowed", "unsigned", "bad_signature", "stale", "replayed", "replay_memory_full"][rawValue]
    }
}

/// The per-daemon state behind the settings (lives in DaemonCore; survives reloads).
struct CommandGuard {
    var tokens: Double?
    var lastRefill = 0.0
    /// Nonces of accepted signed commands with their "ts"; pruned when out of the window.
    var nonces: [String: Double] = [:]
    static let maxNonces = 10_000
    var lastLog = [Double](repeating: -.infinity, count: CommandRefusal.allCases.count)

    /// Takes a token; false when the bucket is empty.
    mutating func admit(_ s: CommandSettings, now: Double) -> Bool {
        let capacity = Double(s.burst)
        var t = tokens ?? capacity
        if now > lastRefill { t = min(capacity, t + (now - lastRefill) * s.ratePerMinute / 60) }
        lastRefill = max(lastRefill, now)
        guard t >= 1 else { tokens = t; return false }
        tokens = t - 1
        return true
    }

    /// Checks a signed command's body (after its MAC was verified): the command it names, its time
    /// and its nonce. Records the nonce when everything holds.
    mutating func checkSigned(_ body: JSONValue, command: String, _ s: CommandSettings, now: Double) -> (CommandRefusal, String)? {
        guard case .string(let c)? = body["command"], c == command else {
            return (.badRequest, "a signed command names itself: \"command\": \"\(command)\"")
        }
        let ts: Double
        switch body["ts"] {
        case .int(let i)?: ts = Double(i)
        case .double(let d)? where d.isFinite: ts = d
        default: return (.badRequest, "a signed command carries \"ts\": Unix seconds")
        }
        guard case .string(let nonce)? = body["nonce"], (8...64).contains(nonce.utf8.count) else {
            return (.badRequest, "a signed command carries \"nonce\": a fresh string of 8 to 64 bytes")
        }
        // Nonces older than the window can go: their commands would be refused as stale anyway.
        nonces = nonces.filter { now - $0.value <= s.maxSkewSeconds }
        guard abs(now - ts) <= s.maxSkewSeconds else {
            return (.stale, "\"ts\" is \(Int((now - ts).rounded())) s from the gateway's clock (allowed ±\(s.maxSkewSeconds) s): check both clocks")
        }
        guard nonces[nonce] == nil else { return (.replayed, "nonce already used: sign every command afresh") }
        guard nonces.count < Self.maxNonces else { return (.replayMemoryFull, "too many signed commands inside the replay window; retry later") }
        nonces[nonce] = ts
        return nil
    }

    /// At most one log line per reason per 10 s: a flood must not flood the journal.
    mutating func shouldLog(_ r: CommandRefusal, now: Double) -> Bool {
        guard now - lastLog[r.rawValue] >= 10 else { return false }
        lastLog[r.rawValue] = now
        return true
    }
}
