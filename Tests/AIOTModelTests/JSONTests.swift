import XCTest
@testable import AIOTModel

/// The model header's JSON reader: strict, bounded, and exact on numbers.
final class JSONTests: XCTestCase {
    func testParsesValuesExactly() throws {
        let v = try JSONValue.parse(#" {"a": [1, -2, 0.1, 1e-3, 9007199254740993, true, null, "x\"\u00e9\ud83d\ude00"], "b": {}} "#)
        guard case let .array(items)? = v["a"] else { return XCTFail() }
        XCTAssertEqual(items[0], .int(1))
        XCTAssertEqual(items[1], .int(-2))
        XCTAssertEqual(items[2], .double(0.1))
        XCTAssertEqual(items[3], .double(0.001))
        XCTAssertEqual(items[4], .int(9007199254740993))  // beyond 2^53: kept as an integer, not rounded
        XCTAssertEqual(items[5], .bool(true))
        XCTAssertEqual(items[6], .null)
        XCTAssertEqual(items[7], .string("x\"é😀"))
        XCTAssertEqual(v["b"], .object([]))
    }

    func testRoundTripsThroughItsWriter() throws {
        let text = #"{"scale":0.021348765057270527,"z":-16,"name":"a\nb","list":[1.5e-300,-0.0,NaN]}"#
        let v = try JSONValue.parse(text)
        let again = try JSONValue.parse(v.serialized)
        guard case let .double(s)? = again["scale"] else { return XCTFail() }
        XCTAssertEqual(s, 0.021348765057270527)
        XCTAssertEqual(again["name"], .string("a\nb"))
        guard case let .array(list)? = again["list"], case let .double(nan) = list[2] else { return XCTFail() }
        XCTAssertTrue(nan.isNaN)
    }

    func testRejectsMalformedAndHostileDocuments() {
        let bad = [
            "", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", "\"abc", "\"\\q\"", "\"\\ud800\"",
            "{\"a\":1,\"a\":2}", "tru", "[1] [2]", "\"a\u{01}b\"", "1e999",
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
        for text in bad {
            XCTAssertThrowsError(try JSONValue.parse(text), "accepted \(text.prefix(20))")
        }
    }

    func testErrorsCarryTheOffset() {
        XCTAssertThrowsError(try JSONValue.parse("{\"a\": x}")) { error in
            XCTAssertEqual((error as? JSONParseError)?.offset, 6)
        }
    }
}
