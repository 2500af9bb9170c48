// Commands against the policy (allow list, rate limit, signatures, replay window) in-process with
// the test's clock, and the key file rules. The real-broker ACL test is in CommandACLTests.swift.
import Testing
import Foundation
import AIOTModel
@testable import AIOTDaemon

/// A key file with the given mode in a fresh directory.
func writeKey(_ bytes: String = "0123456789abcdef0123456789abcdef\n", mode: mode_t = 0o600) throws -> String {
    let path = Harness.tempDir("key") + "/cmd.key"
    try bytes.write(toFile: path, atomically: false, encoding: .utf8)
    chmod(path, mode)
    return path
}

extension CoreRig {
    var refused: [String: Int] {
        Dictionary(uniqueKeysWithValues: CommandRefusal.allCases.map { ($0.description, core.counters.commandsRefused[$0.rawValue]) })
    }
    /// A signed payload as `aiotctl sign-command` makes it.
    func signed(_ name: String, id: String, ts: Double? = nil, nonce: String = UUID().uuidString, key: String, extra: [(String, JSONValue)] = []) -> String {
        let t = ts ?? clock.now.withLock { $0 }
        let body = JSONValue.object([("command", .string(name)), ("id", .string(id)), ("ts", .int(Int64(t))), ("nonce", .string(nonce))] + extra)
        return String(decoding: SignedJSON.sign(Array(body.serialized.utf8), key: Array(key.utf8)), as: UTF8.self)
    }
}

@Suite struct CommandAuthTests {
    @Test func onlyStatusRunsByDefaultAndRefusalsAreAnsweredAndCounted() throws {
        let rig = try CoreRig(fleet)
        #expect(rig.core.config.commands.allow == ["status"])
        rig.command("reload", "{\"id\": \"r1\"}")
        rig.command("rotate", "{\"id\": \"r2\"}")
        rig.command("engine", "{\"id\": \"r3\", \"engine\": \"software\"}")
        for id in ["r1", "r2", "r3"] {
            #expect(rig.reply(id)?["ok"] as? Bool == false)
            #expect(rig.reply(id)?["reason"] as? String == "not_allowed")
        }
        rig.command("status", "{\"id\": \"s1\"}")
        #expect(rig.reply("s1")?["ok"] as? Bool == true)
        let counters = (rig.reply("s1")?["status"] as? [String: Any])?["counters"] as? [String: Any]
        #expect((counters?["commands_refused"] as? [String: Int])?["not_allowed"] == 3)
        #expect(rig.refused["not_allowed"] == 3)
        // A name that could forge a log line is refused as unknown, and never echoed raw.
        rig.command("x\nFAKE", "{\"id\": \"u1\"}")
        #expect(rig.reply("u1")?["reason"] as? String == "unknown")
        #expect((rig.reply("u1")?["error"] as? String)?.contains("\n") == false)
    }

    @Test func theAllowListOpensNamedCommands() throws {
        let rig = try CoreRig(fleet + "\n[commands]\nallow = [\"status\", \"rotate\"]\n")
        rig.command("rotate", "{\"id\": \"r\"}")
        #expect(rig.reply("r")?["ok"] as? Bool == true)
        rig.command("reload", "{\"id\": \"l\"}")
        #expect(rig.reply("l")?["reason"] as? String == "not_allowed")
    }

    @Test func aTokenBucketLimitsTheRateAndAFloodGetsNoReplies() throws {
        let rig = try CoreRig(fleet + "\n[commands]\nrate_per_minute = 60\nburst = 3\n")
        for i in 0..<10 { rig.command("status", "{\"id\": \"f\(i)\"}") }
        #expect(rig.pub.count("aiot/gw/reply/") == 3)
        #expect(rig.refused["rate_limited"] == 7)
        #expect(rig.core.counters.commands == 10)
        // One token a second comes back.
        rig.clock.now.withLock { $0 += 1.01 }
        rig.command("status", "{\"id\": \"later\"}")
        rig.command("status", "{\"id\": \"later2\"}")
        #expect(rig.reply("later")?["ok"] as? Bool == true)
        #expect(rig.reply("later2") == nil)
        #expect(rig.refused["rate_limited"] == 8)
    }

    @Test func withAKeyOnlyFreshCorrectlySignedCommandsRun() throws {
        let key = "0123456789abcdef0123456789abcdef"
        let path = try writeKey(key + "\n")
        let rig = try CoreRig(fleet + "\n[commands]\nallow = [\"status\", \"engine\"]\nhmac_key_file = \"\(path)\"\nmax_skew_s = 30\n")
        let good = rig.signed("status", id: "g1", key: key)
        rig.command("status", good)
        #expect(rig.reply("g1")?["ok"] as? Bool == true)
        // The same bytes again: a replay inside the window.
        rig.command("status", good)
        #expect(rig.pub.messages("aiot/gw/reply/g1").last?["reason"] as? String == "replayed")
        // Unsigned, a flipped byte, the wrong key, a stale or future time, another command's payload.
        rig.command("status", "{\"id\": \"u\"}")
        #expect(rig.reply("u")?["reason"] as? String == "unsigned")
        let flipped = rig.signed("status", id: "b1", key: key).replacingOccurrences(of: "\"b1\"", with: "\"b2\"")
        rig.command("status", flipped)
        #expect(rig.reply("b2")?["reason"] as? String == "bad_signature")
        rig.command("status", rig.signed("status", id: "w", key: "another key, 16+ bytes long"))
        #expect(rig.reply("w")?["reason"] as? String == "bad_signature")
        let now = rig.clock.now.withLock { $0 }
        rig.command("status", rig.signed("status", id: "old", ts: now - 31, key: key))
        #expect(rig.reply("old")?["reason"] as? String == "stale")
        rig.command("status", rig.signed("status", id: "fut", ts: now + 31, key: key))
        #expect(rig.reply("fut")?["reason"] as? String == "stale")
        rig.command("engine", rig.signed("status", id: "moved", key: key, extra: [("engine", .string("software"))]))
        #expect(rig.reply("moved")?["reason"] as? String == "bad_request")
        // Arguments travel inside the signature.
        rig.command("engine", rig.signed("engine", id: "e", key: key, extra: [("engine", .string("software"))]))
        #expect(rig.reply("e")?["ok"] as? Bool == true)
        // After the window the old payload is stale, not merely replayed (its nonce is forgotten).
        rig.clock.now.withLock { $0 += 31 }
        rig.command("status", good)
        #expect(rig.pub.messages("aiot/gw/reply/g1").last?["reason"] as? String == "stale")
        #expect(rig.core.commandGuard.nonces.count == 0)
        #expect(rig.refused == ["rate_limited": 0, "bad_request": 1, "unknown": 0, "not_allowed": 0, "unsigned": 1, "bad_signature": 2,
                                "stale": 3, "replayed": 1, "replay_memory_full": 0])
    }

    @Test func keyFilesOthersCanReadOrThatAreMissingOrShortAreRefused() throws {
        for (mode, content, needle) in [(mode_t(0o644), "0123456789abcdef0123\n", "chmod 600"), (0o640, "0123456789abcdef0123\n", "chmod 600"),
                                        (0o600, "short\n", "at least 16")] {
            let path = try writeKey(content, mode: mode)
            #expect(throws: ConfigError.self) { _ = try CoreRig(fleet + "\n[commands]\nhmac_key_file = \"\(path)\"\n") }
            do { _ = try DaemonConfig.parse("gateway = \"gw\"\n" + fleet + "\n[commands]\nhmac_key_file = \"\(path)\"\n") } catch {
                #expect(error.message.contains(needle), "\(error.message)")
                #expect(!error.message.contains("0123456789abcdef"), "the key never appears in a message")
            }
        }
        do { _ = try DaemonConfig.parse("gateway = \"gw\"\n" + fleet + "\n[commands]\nhmac_key_file = \"/nonexistent/key\"\n"); Issue.record("accepted a missing key file") } catch {
            #expect(error.message.contains("commands.hmac_key_file"))
        }
        do { _ = try DaemonConfig.parse("gateway = \"gw\"\n" + fleet + "\n[commands]\nallow = [\"status\", \"format-disk\"]\n"); Issue.record("accepted an unknown command") } catch {
            #expect(error.message.contains("commands.allow[1]"))
        }
    }

    @Test func aReloadReReadsTheKeyAndRefusesAFileMadeReadable() throws {
        let path = try writeKey("0123456789abcdef0123456789abcdef\n")
        let body = fleet + "\n[commands]\nhmac_key_file = \"\(path)\"\n"
        let rig = try CoreRig(body)
        try "fedcba9876543210fedcba9876543210\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(rig.core.reload() == nil)
        rig.command("status", rig.signed("status", id: "n", key: "fedcba9876543210fedcba9876543210"))
        #expect(rig.reply("n")?["ok"] as? Bool == true)
        chmod(path, 0o644)
        #expect(rig.core.reload()?.contains("chmod 600") == true)
        #expect(rig.core.config.commands.key?.bytes == Array("fedcba9876543210fedcba9876543210".utf8))
    }
}

@Test func networkTextIsLoggedPrintableOnly() {
    #expect(printable("reload\nJan 01 aiotd[1]: FAKE") == "reload?Jan 01 aiotd[1]: FAKE")
    #expect(printable("a\u{1b}[31mb\u{2028}c\u{7f}") == "a?[31mb?c?")
    #expect(printable(String(repeating: "x", count: 100)).count == 64)
}
