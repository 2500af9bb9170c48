import XCTest
@testable import AIOTModel

final class ContractTests: XCTestCase {
    func testSaturateClampsBothEnds() {
        XCTAssertEqual(saturate(128, bits: 8), 127)
        XCTAssertEqual(saturate(-129, bits: 8), -128)
        XCTAssertEqual(saturate(-128, bits: 8), -128)
        XCTAssertEqual(saturate(127, bits: 8), 127)
        XCTAssertEqual(saturate(1 << 40, bits: 16), 32767)
        XCTAssertEqual(saturate(-(1 << 40), bits: 4), -8)
        XCTAssertEqual(saturate(7, bits: 4), 7)
    }

    func testRoundingShiftRightTiesGoAwayFromZero() {
        XCTAssertEqual(roundingShiftRight(5, 1), 3)     // 2.5 -> 3
        XCTAssertEqual(roundingShiftRight(-5, 1), -3)   // -2.5 -> -3, not -2 (floor) nor -2 (even)
        XCTAssertEqual(roundingShiftRight(3, 1), 2)     // 1.5 -> 2
        XCTAssertEqual(roundingShiftRight(-3, 1), -2)
        XCTAssertEqual(roundingShiftRight(1, 1), 1)     // 0.5 -> 1
        XCTAssertEqual(roundingShiftRight(-1, 1), -1)
        XCTAssertEqual(roundingShiftRight(6, 2), 2)     // 1.5 -> 2
        XCTAssertEqual(roundingShiftRight(5, 2), 1)     // 1.25 -> 1
        XCTAssertEqual(roundingShiftRight(-5, 2), -1)
        XCTAssertEqual(roundingShiftRight(-7, 2), -2)   // -1.75 -> -2
        XCTAssertEqual(roundingShiftRight(0, 40), 0)
    }

    func testRoundingShiftRightByZeroIsIdentity() {
        for v: Int64 in [-7, -1, 0, 1, 12345, -(1 << 46)] {
            XCTAssertEqual(roundingShiftRight(v, 0), v)
        }
    }

    func testRoundingShiftRightAtLargestOperands() {
        // |acc * m| < 2^47 and n = 40.
        let v = (Int64(1) << 47) - 1
        XCTAssertEqual(roundingShiftRight(v, 40), 128)  // (2^47 - 1) / 2^40 = 127.99...
        XCTAssertEqual(roundingShiftRight(-v, 40), -128)
        XCTAssertEqual(roundingShiftRight(Int64(1) << 39, 40), 1)      // exactly 0.5
        XCTAssertEqual(roundingShiftRight(-(Int64(1) << 39), 40), -1)
        XCTAssertEqual(roundingShiftRight((Int64(1) << 39) - 1, 40), 0)
    }

    func testRequantizeMatchesTheFormula() {
        // acc * m = 1000 * 3 = 3000; 3000 / 2^4 = 187.5 -> 188; + z = 188 - 100 = 88.
        XCTAssertEqual(requantize(1000, m: 3, n: 4, zeroPoint: -100, bits: 8), 88)
        XCTAssertEqual(requantize(-1000, m: 3, n: 4, zeroPoint: 0, bits: 8), -128)  // -188 saturates
        XCTAssertEqual(requantize(1000, m: 3, n: 4, zeroPoint: 0, bits: 8), 127)
        XCTAssertEqual(requantize(0, m: 65535, n: 40, zeroPoint: 5, bits: 6), 5)
        // Largest m and accumulator: exact int64 product, no float rounding.
        let acc = Int64(Int32.max)
        XCTAssertEqual(requantize(acc, m: 65535, n: 40, zeroPoint: 0, bits: 16), 128)
        XCTAssertEqual(requantize(-acc, m: 65535, n: 40, zeroPoint: 0, bits: 16), -128)
        XCTAssertEqual(requantize(acc, m: 65535, n: 20, zeroPoint: 0, bits: 16), 32767)
        XCTAssertEqual(requantize(-acc, m: 65535, n: 20, zeroPoint: 0, bits: 16), -32768)
    }

    func testRoundHalfAwayOnDoubles() {
        XCTAssertEqual(roundHalfAway(2.5), 3)
        XCTAssertEqual(roundHalfAway(-2.5), -3)
        XCTAssertEqual(roundHalfAway(0.5), 1)
        XCTAssertEqual(roundHalfAway(-0.5), -1)
        XCTAssertEqual(roundHalfAway(1.4999), 1)
        XCTAssertEqual(roundHalfAway(0), 0)
        // The numpy expression sign(x) * floor(|x| + 0.5): 0.49999999999999994 + 0.5 rounds to 1.0.
        XCTAssertEqual(roundHalfAway(0.49999999999999994), 1)
    }

    func testLimits() {
        XCTAssertEqual(contractLo(4), -8)
        XCTAssertEqual(contractHi(4), 7)
        XCTAssertEqual(contractLo(16), -32768)
        XCTAssertEqual(contractHi(16), 32767)
    }
}
