// `aiotctl keygen` and `aiotctl sign`: the operator's half of the artifact channel (docs/deploy.md).
import AIOTDeploy
import ArgumentParser
import Crypto
import Foundation

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "A new Ed25519 deploy signing key (mode 0600); prints the public key for deploy.trusted_keys.")

    @Option(help: "Where to write the private key (never overwritten).") var out: String

    func run() throws {
        let k = DeploySigningKey.generate()
        do { try k.write(to: out) } catch { throw CLIError(error.message) }
        print("public key: \(k.publicKey.hex)")
        print("key id:     \(k.publicKey.id)")
        print("add to the gateways' aiotd.toml:  [deploy] trusted_keys = [\"\(k.publicKey.hex)\"]")
    }
}

struct SignArtifactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign", abstract: "A signed deployment manifest for an artifact (written to ARTIFACT.manifest unless --out).")

    @Argument(help: "The model (.safetensors) or bitstream to deploy.") var artifact: String
    @Option(help: "The private key file (aiotctl keygen).") var key: String
    @Option(help: "model or bitstream.") var kind: String = "model"
    @Option(help: "Version: above every version the target streams have activated.") var version: UInt64
    @Option(name: .customLong("gateway"), help: "A target gateway (repeat for several).") var gateways: [String]
    @Option(help: "The [[stream]] it serves: the stream's name or its sensor pattern as written in the config.") var stream: String
    @Option(help: "Valid for this many seconds from now.") var validFor: Int = 7 * 86400
    @Option(help: "Valid from (Unix seconds; default: now minus 5 minutes, for clock skew).") var notBefore: Int64?
    @Option(help: "Output file (default: ARTIFACT.manifest).") var out: String?

    func run() throws {
        guard let kind = ArtifactKind(rawValue: kind) else { throw CLIError("--kind: model or bitstream") }
        guard let data = FileManager.default.contents(atPath: artifact) else { throw CLIError("cannot read \(artifact)") }
        let now = Int64(Date().timeIntervalSince1970)
        let nb = notBefore ?? now - 300
        let name = String(URL(fileURLWithPath: artifact).lastPathComponent.utf8.prefix(128).map { b -> Character in
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x2E || b == 0x5F || b == 0x2D ? Character(UnicodeScalar(b)) : "_"
        })
        let m = Manifest(kind: kind, name: name, version: version, gateways: gateways, stream: stream, size: UInt64(data.count),
                         sha256: Array(Crypto.SHA256.hash(data: data)), notBefore: nb, expires: now + Int64(validFor), keyID: "")
        let path = out ?? artifact + ".manifest"
        do {
            let text = try m.signed(with: try DeploySigningKey.load(key))
            _ = try Manifest.parse(text)  // what the gateway will parse
            try Data(text).write(to: URL(fileURLWithPath: path))
        } catch let e as DeployError { throw CLIError(e.message) }
        print("wrote \(path): \(kind.rawValue) \(name) version \(version), \(data.count) bytes, for \(gateways.joined(separator: ",")) stream \(stream)")
    }
}
