import XCTest
@testable import AIOTModel

final class HMACTests: XCTestCase {
    /// RFC 4231, section 4: the seven HMAC-SHA-256 test cases (case 5 truncated to 128 bits as there).
    func testRFC4231Vectors() {
        let long = "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."
        let cases: [([UInt8], [UInt8], String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (Array(1...25), [UInt8](repeating: 0xcd, count: 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0x0c, count: 20), Array("Test With Truncation".utf8), "a3b6167473100ee06e0c796c2955552b"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ([UInt8](repeating: 0xaa, count: 131), Array(long.utf8), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for (i, (key, data, expected)) in cases.enumerated() {
            XCTAssertTrue(HMACSHA256.hex(HMACSHA256.mac(key: key, message: data)).hasPrefix(expected), "RFC 4231 case \(i + 1)")
        }
        // A key of exactly one block is used as is (no hashing): checked against Python's hmac.
        XCTAssertEqual(HMACSHA256.hex(HMACSHA256.mac(key: [UInt8](repeating: 0x61, count: 64), message: Array("abc".utf8))),
                       "6608ac82dca1cb1fddbb5d81e3d9877642b744f565cd9697ac27daa250c80d28")
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2]))
    }

    /// From fuzz-command: the smallest objects sign and verify to themselves, a flipped key byte does
    /// not verify, and a key with a zero byte appended is the same HMAC key (RFC 2104 pads keys
    /// with zeros), which is why the fuzzer's "another key" must differ inside the key.
    func testSignedFormOfTheSmallestObjects() {
        let key = Array("fuzz-key-0123456789abcdef".utf8)
        var other = key
        other[0] ^= 1
        for object in ["{ }", "{\"a\":1}", "{\"id\":,\"hmac\":\"zz\"}"] {
            let signed = SignedJSON.sign(Array(object.utf8), key: key)
            XCTAssertEqual(SignedJSON.verify(signed, key: key), Array(object.utf8), object)
            XCTAssertNil(SignedJSON.verify(signed, key: other), object)
            XCTAssertEqual(SignedJSON.verify(signed, key: key + [0]), Array(object.utf8), "zero-padded key: \(object)")
        }
    }
}
