// The `[deploy]` table: read with its defaults, refused with the key named.
import Testing
import Foundation
import AIOTDeploy
import Crypto
import Logging
@testable import AIOTDaemon

@Suite struct DeployConfigTests {
    let key = DeploySigningKey.generate().publicKey

    @Test func deployTableIsReadWithDefaults() throws {
        #expect(try DaemonConfig.parse(minimal).deploy == nil)
        let c = try DaemonConfig.parse(minimal + "\n[deploy]\ntrusted_keys = [\"\(key.hex)\"]\n")
        #expect(c.deploy?.trustedKeys.keys == [key])
        #expect(c.deploy?.directory == "/var/lib/aiotd/deploy" && c.deploy?.maxArtifactBytes == 16 << 20 && c.deploy?.topic == "aiot/{gateway}/deploy")
    }

    @Test(arguments: [
        ("[deploy]\ndirectory = \"/tmp/x\"\n", "deploy.trusted_keys"),
        ("[deploy]\ntrusted_keys = []\n", "deploy.trusted_keys"),
        ("[deploy]\ntrusted_keys = [\"abcd\"]\n", "deploy.trusted_keys[0]"),
        ("[deploy]\ntrusted_keys = [1]\n", "deploy.trusted_keys[0]"),
        ("[deploy]\ntrusted_keys = [\"KEY\"]\nmax_artifact_bytes = 10\n", "deploy.max_artifact_bytes"),
        ("[deploy]\ntrusted_keys = [\"KEY\"]\ntopic = \"aiot/+/deploy\"\n", "deploy.topic"),
        ("[deploy]\ntrusted_keys = [\"KEY\"]\nkeys = 1\n", "deploy.keys"),
    ])
    func errorsNameTheKey(_ table: String, _ name: String) {
        let e = configError(minimal + "\n" + table.replacingOccurrences(of: "KEY", with: key.hex))
        #expect(e?.contains(name) == true, "\(String(describing: e))")
    }

    /// A stream's active deployed model replaces its configured file at start; a damaged slot does not.
    @Test func activeSlotReplacesTheConfiguredModel() throws {
        let dir = Harness.tempDir("deploycfg")
        let c = try DaemonConfig.parse(minimal + "\n[deploy]\ntrusted_keys = [\"\(key.hex)\"]\ndirectory = \"\(dir)\"\n")
        #expect(Deployments.applyActive(c, logger: .init(label: "t")) == c)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: singleModel)))
        let ch = try DeployChannel(directory: dir + "/" + Deployments.directoryName(.model, "elec"))
        let signer = DeploySigningKey.generate()
        var m = Manifest(kind: .model, name: "m", version: 4, gateways: ["gw1"], stream: "elec", size: UInt64(bytes.count),
                         sha256: Array(Crypto.SHA256.hash(data: bytes)), notBefore: 0, expires: 1, keyID: "")
        (m, _) = try Manifest.parse(try m.signed(with: signer))
        try ch.begin(m)
        for chunk in Chunk.split(bytes, size: 4000) { _ = try ch.write(chunk) }
        try ch.flip(to: try ch.commit(), version: 4)
        let applied = Deployments.applyActive(c, logger: .init(label: "t"))
        #expect(applied.streams[0].model == ch.artifactPath("a"))
        let fh = try #require(FileHandle(forWritingAtPath: ch.artifactPath("a")))
        try fh.seek(toOffset: 100); try fh.write(contentsOf: Data([0x00, 0x01])); try fh.close()
        #expect(Deployments.applyActive(c, logger: .init(label: "t")).streams[0].model == singleModel)
    }
}
