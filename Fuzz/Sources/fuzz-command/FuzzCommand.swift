// libFuzzer target: a command payload as aiotd reads it from `cmd/{name}` (AIOTModel JSONValue,
// then the HMAC signed form of SignedJSON). Besides "no crash": a payload that verifies is a JSON
// object again without its MAC, and any object-shaped payload signs and verifies to itself.
import FuzzSupport
import AIOTModel

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

/// The seeds' key (Fuzz/make_seeds.py). Not a top-level `let`: top-level code runs in order, and
/// `runLibFuzzer` above never returns, so such a global would still be uninitialized here.
enum Seeds { static let key = Array("fuzz-key-0123456789abcdef".utf8) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let key = Seeds.key
    let bytes = Array(input)
    _ = try? JSONValue.parse(bytes)
    if let signed = SignedJSON.verify(bytes, key: key) {
        precondition(signed.last == UInt8(ascii: "}") && signed.count < bytes.count, "verified bytes are the object without its MAC")
        _ = try? JSONValue.parse(signed)
    }
    // SignedJSON.sign takes an object with at least one member (`{}` has no signed form).
    if bytes.count >= 3, bytes.first == UInt8(ascii: "{"), bytes.last == UInt8(ascii: "}") {
        let s = SignedJSON.sign(bytes, key: key)
        precondition(SignedJSON.verify(s, key: key) == bytes, "a signed object does not verify to itself")
        // (Not `key + [0]`: HMAC pads keys with zero bytes, so that one is the same key.)
        var other = key
        other[0] ^= 1
        precondition(SignedJSON.verify(s, key: other) == nil, "a signed object verifies under another key")
    }
    return 0
}
