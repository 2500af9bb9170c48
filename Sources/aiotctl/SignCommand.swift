import AIOTModel
import ArgumentParser
import Foundation

/// Prints a signed command payload for a gateway with commands.hmac_key_file, to publish with any
/// MQTT client: mosquitto_pub -t aiot/GW/cmd/reload -m "$(aiotctl sign-command reload --key FILE)".
struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-command", abstract: "A signed aiotd command payload (HMAC-SHA256; docs/daemon.md, Commands).")

    @Argument(help: "The command: status, reload, engine or rotate.") var command: String
    @Option(help: "The key file (the gateway's commands.hmac_key_file).") var key: String
    @Option(help: "Request id: the reply arrives on the replies topic with this {id} (default: random).") var id: String?
    @Option(name: .customLong("arg"), help: "NAME=VALUE added to the payload (VALUE as JSON if it parses, else a string), e.g. --arg engine=software.")
    var args: [String] = []
    @Option(help: "Unix seconds to sign with (default: now).") var ts: Int?

    func run() throws {
        guard let data = FileManager.default.contents(atPath: key) else { throw ValidationError("cannot read the key file \(key)") }
        let keyBytes = SignedJSON.key(fileContents: Array(data))
        guard keyBytes.count >= 16 else { throw ValidationError("\(key) holds \(keyBytes.count) bytes; a key has at least 16") }
        var g = SystemRandomNumberGenerator()
        let random = { (n: Int) in (0..<n).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined() }
        var members: [(String, JSONValue)] = [
            ("command", .string(command)), ("id", .string(id ?? random(8))),
            ("ts", .int(Int64(ts ?? Int(Date().timeIntervalSince1970)))), ("nonce", .string(random(16))),
        ]
        for a in args {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else { throw ValidationError("--arg \(a): give NAME=VALUE") }
            let name = String(a[..<eq]), text = String(a[a.index(after: eq)...])
            guard !["command", "id", "ts", "nonce", "hmac"].contains(name) else { throw ValidationError("--arg \(name): set by sign-command itself") }
            members.append((name, (try? JSONValue.parse(text)) ?? .string(text)))
        }
        print(String(decoding: SignedJSON.sign(Array(JSONValue.object(members).serialized.utf8), key: keyBytes), as: UTF8.self))
    }
}
