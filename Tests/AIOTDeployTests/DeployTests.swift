// The artifact channel's pieces without a daemon: manifests and signatures, chunks, the A/B store.
import Crypto
import Foundation
import Testing
@testable import AIOTDeploy

let now = 1_800_000_000.0

/// Every directory tempDir() makes is under this one, which the suite removes when it ends.
private let tempRoot = NSTemporaryDirectory() + "aiot-deploy-test-\(getpid())"

private func tempDir() -> String {
    let p = tempRoot + "/\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

/// Removes `tempRoot` once every test of the suite has run (its tests run in parallel).
private struct RemovesTempDirs: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        defer { try? FileManager.default.removeItem(atPath: tempRoot) }
        try await function()
    }
}

/// A seeded artifact (the seed is in the failure message via `#expect` on its bytes' origin).
func artifact(_ n: Int, seed: UInt64) -> [UInt8] {
    var s = seed
    return (0..<n).map { _ in s = s &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: s >> 33) }
}

func manifest(for a: [UInt8], version: UInt64 = 2, gateways: [String] = ["gw"], expires: Int64 = 1_800_003_600) -> Manifest {
    Manifest(kind: .model, name: "m.safetensors", version: version, gateways: gateways, stream: "temp-*", size: UInt64(a.count),
             sha256: Array(SHA256.hash(data: a)), notBefore: 1_799_990_000, expires: expires, keyID: "")
}

struct Fixture {
    let key = DeploySigningKey.generate()
    var trusted: TrustedKeys { TrustedKeys([key.publicKey]) }
    func verify(_ bytes: [UInt8], gateway: String = "gw", at t: Double = now, floor: UInt64 = 1) throws(DeployError) -> Manifest {
        try Manifest.verify(bytes, keys: trusted, gateway: gateway, now: t, maxSize: 1 << 20, floor: { _ in floor })
    }
}

private func refusal(_ body: () throws -> Void) -> DeployRefusal? {
    do { try body(); return nil } catch { return (error as? DeployError)?.reason }
}

@Suite struct ManifestTests {
    let f = Fixture()
    let a = artifact(5000, seed: 1)

    @Test func signedManifestVerifiesAndRoundTrips() throws {
        let text = try manifest(for: a).signed(with: f.key)
        let m = try f.verify(text)
        #expect(m.version == 2 && m.size == 5000 && m.gateways == ["gw"] && m.stream == "temp-*" && m.keyID == f.key.publicKey.id)
        #expect(m.sha256 == Array(SHA256.hash(data: a)))
    }

    @Test func everyTamperedByteIsRefused() throws {
        let text = try manifest(for: a).signed(with: f.key)
        let sigStart = text.count - 129 - 10
        // Every byte of the signed part and the signature: flipping any must not verify.
        for i in 0..<text.count - 1 where i < sigStart || i >= sigStart + 10 {
            var t = text
            t[i] ^= 0x01
            let r = refusal { _ = try f.verify(t) }
            #expect(r != nil, "byte \(i) flipped still verified")
        }
    }

    @Test func wrongKeyAndUnknownKey() throws {
        let other = DeploySigningKey.generate()
        let text = try manifest(for: a).signed(with: other)
        #expect(refusal { _ = try f.verify(text) } == .unknownKey)
        // Signed by another key but claiming the trusted key's id.
        var m = manifest(for: a)
        m.keyID = f.key.publicKey.id
        let body = SignedText.encode(header: Manifest.header, m.fields)
        let forged = SignedText.attach(body, signature: try other.sign(body))
        #expect(refusal { _ = try f.verify(forged) } == .badSignature)
    }

    @Test func gatewayValidityWindowSizeAndVersion() throws {
        #expect(refusal { _ = try f.verify(try manifest(for: a, gateways: ["gw2", "gw3"]).signed(with: f.key)) } == .wrongGateway)
        #expect(try f.verify(try manifest(for: a, gateways: ["gw2", "gw"]).signed(with: f.key)).gateways == ["gw2", "gw"])
        let text = try manifest(for: a).signed(with: f.key)
        #expect(refusal { _ = try f.verify(text, at: 1_800_003_600) } == .expired)
        #expect(refusal { _ = try f.verify(text, at: 1_799_989_999) } == .notYetValid)
        #expect(refusal { _ = try Manifest.verify(text, keys: f.trusted, gateway: "gw", now: now, maxSize: 4999, floor: { _ in 0 }) } == .tooLarge)
        // Replay of an older (or the same) signed version.
        #expect(refusal { _ = try f.verify(text, floor: 2) } == .oldVersion)
        #expect(refusal { _ = try f.verify(text, floor: 3) } == .oldVersion)
    }

    @Test func truncatedAndMalformedManifests() throws {
        let text = try manifest(for: a).signed(with: f.key)
        for n in [0, 1, 30, text.count / 2, text.count - 1] {
            #expect(refusal { _ = try f.verify(Array(text[0..<n])) } == .malformed, "truncated to \(n)")
        }
        #expect(refusal { _ = try f.verify(text + [0x0A]) } == .malformed)
        #expect(refusal { _ = try f.verify([UInt8](repeating: 0x41, count: 5000) + [0x0A]) } == .malformed)
    }
}

@Suite(RemovesTempDirs()) struct ChunkAndStoreTests {
    let f = Fixture()

    func stage(_ ch: DeployChannel, _ a: [UInt8], version: UInt64 = 2) throws -> [Chunk] {
        let m = try f.verify(try manifest(for: a, version: version).signed(with: f.key), floor: ch.pointer()?.floor ?? 0)
        #expect(try ch.begin(m) == 0)
        return Chunk.split(a, size: 700)
    }

    @Test func chunkWireFormatRoundTripsAndRefusesTruncation() throws {
        let a = artifact(1500, seed: 2)
        for c in Chunk.split(a, size: 700) {
            let e = c.encoded()
            #expect(try Chunk.parse(e) == c)
            #expect(refusal { _ = try Chunk.parse(Array(e.dropLast())) } == .malformed)
        }
    }

    @Test func reorderedAndDuplicatedChunksAssembleTheArtifact() throws {
        let a = artifact(5000, seed: 3)
        let ch = try DeployChannel(directory: tempDir())
        let chunks = try stage(ch, a)
        // Seeded shuffle with every chunk twice: out-of-order ones are gaps, repeats are duplicates.
        var order = chunks + chunks
        var rng = SplitMix(seed: 42)
        order.shuffle(using: &rng)
        var complete = false
        var rounds = 0
        while !complete && rounds < 100 {
            rounds += 1
            for c in order where !complete {
                if try ch.write(c) == .complete { complete = true }
            }
        }
        #expect(complete, "seed 42: not complete after \(rounds) rounds")
        #expect(FileManager.default.contents(atPath: ch.stagedArtifact!).map(Array.init) == a)
    }

    @Test func corruptChunkWritesNothingAndOutOfRangeIsRefused() throws {
        let a = artifact(2000, seed: 4)
        let ch = try DeployChannel(directory: tempDir())
        let chunks = try stage(ch, a)
        var bad = chunks[0]
        var d = Array(bad.data); d[10] ^= 0xFF; bad.data = d[...]
        #expect(refusal { _ = try ch.write(bad) } == .chunkCorrupt)
        #expect(ch.next == 0)
        var far = chunks.last!
        far.offset = 1990
        #expect(refusal { _ = try ch.write(far) } == .chunkOutOfRange)
        #expect(try ch.write(chunks[1]) == .gap(next: 0))
        #expect(try ch.write(chunks[0]) == .appended(next: 700))
        #expect(try ch.write(chunks[0]) == .duplicate(next: 700))
    }

    @Test func digestMismatchAtTheEndDropsTheStagingFile() throws {
        let a = artifact(1000, seed: 5)
        let ch = try DeployChannel(directory: tempDir())
        var m = try f.verify(try manifest(for: a).signed(with: f.key))
        m.sha256 = Array(SHA256.hash(data: [1]))  // a manifest that promises other bytes
        try ch.begin(m)
        let cs = Chunk.split(a, size: 700)
        _ = try ch.write(cs[0])
        #expect(refusal { _ = try ch.write(cs[1]) } == .digestMismatch)
        #expect(ch.staging == nil && !FileManager.default.fileExists(atPath: ch.directory + "/staging.bin"))
    }

    @Test func stagingResumesAfterARestartAndOnlyTheFlipActivates() throws {
        let dir = tempDir()
        let v1 = artifact(1500, seed: 6), v2 = artifact(2100, seed: 7)
        do {
            let ch = try DeployChannel(directory: dir)
            for c in try stage(ch, v1, version: 1) { _ = try ch.write(c) }
            try ch.flip(to: try ch.commit(), version: 1)
            let cs = try stage(ch, v2, version: 2)
            _ = try ch.write(cs[0])
        }
        // "Restart" mid-staging: v1 still active, staging resumes at 700.
        var ch = try DeployChannel(directory: dir)
        #expect(try ch.active()?.0.version == 1)
        #expect(ch.staging?.version == 2 && ch.next == 700)
        // The same artifact signed again (a later expiry) resumes; the staged manifest is the new one.
        let resigned = try f.verify(try manifest(for: v2, version: 2, expires: 1_800_007_200).signed(with: f.key))
        #expect(try ch.begin(resigned, tag: "again") == 700 && ch.staging?.expires == 1_800_007_200 && ch.tag == "again")
        let cs = Chunk.split(v2, size: 700)
        for c in cs.dropFirst() { _ = try ch.write(c) }
        let slot = try ch.commit()
        #expect(slot == "b")
        // "Restart" after the commit, before the flip: v1 still serves.
        ch = try DeployChannel(directory: dir)
        #expect(try ch.active()?.0.version == 1 && ch.staging == nil)
        try ch.flip(to: slot, version: 2)
        ch = try DeployChannel(directory: dir)
        let (m, path) = try #require(try ch.active())
        #expect(m.version == 2 && FileManager.default.contents(atPath: path).map(Array.init) == v2)
        // Rollback goes to v1; the floor stays at 2, so v2's signed manifest cannot be replayed.
        let r = try ch.rollbackCandidate()
        #expect(r.manifest.version == 1)
        try ch.flip(to: r.slot, version: r.manifest.version)
        #expect(ch.pointer() == ActivePointer(slot: "a", version: 1, floor: 2))
        #expect(refusal { _ = try f.verify(try manifest(for: v2, version: 2).signed(with: f.key), floor: ch.pointer()!.floor) } == .oldVersion)
        #expect(refusal { _ = try ch.rollbackCandidate() } == .nothingToRollBack)
    }

    @Test func aCompleteStagingSurvivesARestartOnlyIfItsBytesMatch() throws {
        let a = artifact(1500, seed: 9)
        let (good, bad) = (tempDir(), tempDir())
        for dir in [good, bad] {
            let ch = try DeployChannel(directory: dir)
            for c in try stage(ch, a) { _ = try ch.write(c) }
            #expect(ch.stagedArtifact != nil)
        }
        // Killed before the commit; in `bad` the staged bytes were damaged meanwhile.
        let fh = try #require(FileHandle(forWritingAtPath: bad + "/staging.bin"))
        try fh.seek(toOffset: 3); try fh.write(contentsOf: Data([0x55])); try fh.close()
        #expect(try DeployChannel(directory: good).stagedArtifact != nil)
        let b = try DeployChannel(directory: bad)
        #expect(b.staging == nil && b.stagedArtifact == nil && !FileManager.default.fileExists(atPath: bad + "/staging.bin"))
    }

    @Test func aDamagedActiveSlotIsNotServed() throws {
        let dir = tempDir()
        let ch = try DeployChannel(directory: dir)
        for c in try stage(ch, artifact(900, seed: 8), version: 1) { _ = try ch.write(c) }
        try ch.flip(to: try ch.commit(), version: 1)
        let fh = try #require(FileHandle(forWritingAtPath: dir + "/a.bin"))
        try fh.seek(toOffset: 5); try fh.write(contentsOf: Data([0xAA])); try fh.close()
        #expect(refusal { _ = try ch.active() } == .digestMismatch)
    }

    @Test func keyFileIsOwnerOnlyAndRoundTrips() throws {
        let path = tempDir() + "/deploy.key"
        let k = DeploySigningKey.generate()
        try k.write(to: path)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try DeploySigningKey.load(path).publicKey == k.publicKey)
        #expect(refusal { try k.write(to: path) } == .storage)
        chmod(path, 0o644)
        #expect(refusal { _ = try DeploySigningKey.load(path) } == .storage)
    }
}

/// A seeded generator for shuffles (the seed is named in the failure message).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
