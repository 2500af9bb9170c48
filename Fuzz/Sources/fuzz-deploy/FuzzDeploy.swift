// libFuzzer target: what aiotd reads from its deploy topics (AIOTDeploy): a signed manifest, a
// rollback request, a chunk; and the channel's `active` pointer file, which a crash or a disk
// fault may leave damaged. Besides "no crash": a manifest that parses, signed again with a fixed
// key, verifies and parses to the same values; a chunk that parses encodes back to its bytes.
import FuzzSupport
import AIOTDeploy

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

/// Not a top-level `let`: `runLibFuzzer` above never returns, so a global would be uninitialized.
enum Seeds { static let rawKey: [UInt8] = (0..<32).map { UInt8($0 &* 7 &+ 1) } }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let bytes = Array(input)
    let key = try! DeploySigningKey(raw: Seeds.rawKey)
    let keys = TrustedKeys([key.publicKey])
    if let (m, _) = try? Manifest.parse(bytes) {
        let text = try! m.signed(with: key)
        let (again, signed) = try! Manifest.parse(text)
        try! keys.verify(signed)
        var expected = m
        expected.keyID = key.publicKey.id
        expected.text = text
        precondition(again == expected, "a re-signed manifest parses to other values")
        var tampered = text
        tampered[tampered.count / 3] ^= 0x01
        if let (_, t) = try? Manifest.parse(tampered) { precondition((try? keys.verify(t)) == nil, "a tampered manifest verifies") }
    }
    _ = try? RollbackRequest.verify(bytes, keys: keys, gateway: "gw", now: 1_795_000_000, maxSkew: 300)
    if let c = try? Chunk.parse(bytes) { precondition(c.encoded() == bytes, "a chunk does not encode back to its bytes") }
    if let p = ActivePointer(text: String(decoding: bytes, as: UTF8.self)) {
        precondition(ActivePointer(text: p.text) == p, "an active pointer does not parse back from its own text")
    }
    return 0
}
