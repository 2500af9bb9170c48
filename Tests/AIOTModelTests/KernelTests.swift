import XCTest
@testable import AIOTModel

/// The engine's branch-free requantization and 16-bit dot product equal the contract exactly.
final class KernelTests: XCTestCase {
    func testFastRequantEqualsContractOnEdgeCases() {
        let accs: [Int64] = [0, 1, -1, 2, -2, 3, -3, 127, -128, 1 << 20, -(1 << 20), Int64(Int32.max), Int64(Int32.min) + 1]
        for bits in [4, 6, 8, 16] {
            for z in [contractLo(bits), -1, 0, 3, contractHi(bits)] {
                for n in [0, 1, 2, 15, 16, 30, 39, 40] {
                    for m: Int64 in [0, 1, 2, 3, 32768, 65535] {
                        let step = RequantStep(m: m, n: n, zeroPoint: z, bits: bits)
                        for acc in accs {
                            let expected = requantize(acc, m: m, n: n, zeroPoint: z, bits: bits) - z
                            XCTAssertEqual(Int64(step.centered(product: acc * m)), expected, "acc \(acc) m \(m) n \(n) z \(z) b \(bits)")
                            if acc >= Int64(Int32.min), acc <= Int64(Int32.max) {
                                XCTAssertEqual(Int64(step.centered(Int32(acc))), expected)
                            }
                        }
                    }
                }
            }
        }
    }

    func testFastRequantEqualsContractOnExactTies() {
        // v = (2k + 1) * 2^(n-1): exactly half-way between two integers after the shift.
        for n in 1...40 {
            let step = RequantStep(m: 1, n: n, zeroPoint: 0, bits: 16)
            for k: Int64 in [-3, -2, -1, 0, 1, 2] {
                let v = (2 * k + 1) << Int64(n - 1)
                XCTAssertEqual(Int64(step.centered(product: v)), saturate(roundingShiftRight(v, n), bits: 16))
                XCTAssertEqual(Int64(step.centered(product: v - 1)), saturate(roundingShiftRight(v - 1, n), bits: 16))
                XCTAssertEqual(Int64(step.centered(product: v + 1)), saturate(roundingShiftRight(v + 1, n), bits: 16))
            }
        }
    }

    func testFastRequantEqualsContractOnRandomOperands() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let bits = [4, 6, 8, 12, 16].randomElement(using: &rng)!
            let z = Int64.random(in: contractLo(bits)...contractHi(bits), using: &rng)
            let m = Int64.random(in: 0...65535, using: &rng)
            let n = Int.random(in: 0...40, using: &rng)
            let acc = Int64(Int32.random(in: (Int32.min + 1)...Int32.max, using: &rng))
            let step = RequantStep(m: m, n: n, zeroPoint: z, bits: bits)
            XCTAssertEqual(Int64(step.centered(Int32(acc))), requantize(acc, m: m, n: n, zeroPoint: z, bits: bits) - z)
        }
    }

    func testAdditionStepEqualsContract() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<100_000 {
            let bits = [4, 6, 8, 16].randomElement(using: &rng)!
            let z = Int64.random(in: contractLo(bits)...contractHi(bits), using: &rng)
            let r = AddRequant(m1: .random(in: 0...65535, using: &rng), m2: .random(in: 0...65535, using: &rng), n: .random(in: 0...40, using: &rng))
            let step = AddStep(r, QuantParams(bits: bits, scale: 1, zeroPoint: Int32(z)))
            let a = Int64.random(in: -65535...65535, using: &rng), b = Int64.random(in: -65535...65535, using: &rng)
            let acc = a * r.m1 + b * r.m2
            XCTAssertEqual(Int64(step.centered(acc)), saturate(z + roundingShiftRight(acc, r.n), bits: bits) - z)
        }
    }

    func testDot16EqualsScalarSum() {
        var rng = SystemRandomNumberGenerator()
        for count in stride(from: 8, through: 1024, by: 8) {
            let x = (0..<count).map { _ in Int16.random(in: -32767...32767, using: &rng) }
            let w = (0..<count).map { _ in Int16.random(in: -255...255, using: &rng) }
            var expected: Int64 = 0
            for i in 0..<count { expected += Int64(x[i]) * Int64(w[i]) }
            let got = x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { Kernels.dot16(xb.baseAddress!, $0.baseAddress!, count) } }
            if abs(expected) < Int64(Int32.max) { XCTAssertEqual(Int64(got), expected, "count \(count)") }
        }
    }
}
