import Foundation
import XCTest
@testable import AIOTModel

/// SplitMix64: a small generator whose sequence depends only on its seed, so a failing run replays.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The engine's branch-free requantization and 16-bit dot product equal the contract exactly.
/// Random operands come from one seed per run: AIOT_TEST_SEED=N replays a run; every failure
/// message carries the seed.
final class KernelTests: XCTestCase {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["AIOT_TEST_SEED"].flatMap { UInt64($0) }
        ?? UInt64.random(in: 0...UInt64.max)

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        super.recordFailure(withDescription: description + " [replay with AIOT_TEST_SEED=\(Self.seed)]", inFile: filePath, atLine: lineNumber, expected: expected)
    }

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
        var rng = SeededGenerator(seed: Self.seed)
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

    func testVectorRequantEqualsContract() {
        // RequantStep4 (doubles + integer shifts) against the contract on edge cases, every tie and
        // random operands, through both entry points (an accumulator, and an exact signed product).
        var rng = SeededGenerator(seed: Self.seed)
        var cases: [(acc: Int64, m: Int64, n: Int, z: Int64, bits: Int)] = []
        let accs: [Int64] = [0, 1, -1, 2, -2, 3, -3, 127, -128, 1 << 20, -(1 << 20), Int64(Int32.max), Int64(Int32.min) + 1]
        for bits in [4, 8, 16] {
            for z in [contractLo(bits), 0, contractHi(bits)] {
                for n in [0, 1, 2, 15, 16, 30, 39, 40] {
                    for m: Int64 in [0, 1, 3, 32768, 65535] { for acc in accs { cases.append((acc, m, n, z, bits)) } }
                }
            }
        }
        for n in 1...40 {
            for k: Int64 in [-3, -1, 0, 2] {
                let v = (2 * k + 1) << Int64(n - 1)  // exact ties of RSHR(v, n) with m = 1
                if abs(v) < Int64(Int32.max) { for d: Int64 in [-1, 0, 1] { cases.append((v + d, 1, n, 0, 16)) } }
            }
        }
        for _ in 0..<100_000 {
            let bits = [4, 6, 8, 12, 16].randomElement(using: &rng)!
            cases.append((Int64(Int32.random(in: (Int32.min + 1)...Int32.max, using: &rng)), .random(in: 0...65535, using: &rng),
                          .random(in: 0...40, using: &rng), .random(in: contractLo(bits)...contractHi(bits), using: &rng), bits))
        }
        for c in cases {
            let step = RequantStep(m: c.m, n: c.n, zeroPoint: c.z, bits: c.bits)
            let expected = requantize(c.acc, m: c.m, n: c.n, zeroPoint: c.z, bits: c.bits) - c.z
            let lanes = SIMD4<Int32>(Int32(c.acc), 0, -Int32(c.acc), 1)
            let got = RequantStep4(step).centered(lanes)
            XCTAssertEqual(Int64(got[0]), expected, "acc \(c.acc) m \(c.m) n \(c.n) z \(c.z) b \(c.bits)")
            XCTAssertEqual(Int64(got[2]), requantize(-c.acc, m: c.m, n: c.n, zeroPoint: c.z, bits: c.bits) - c.z)
            let product = RequantStep4(RequantStep(m: 1, n: c.n, zeroPoint: c.z, bits: c.bits))
                .centered(product: SIMD4<Double>(repeating: Double(c.acc * c.m)))
            XCTAssertEqual(Int64(product[1]), expected, "product acc \(c.acc) m \(c.m) n \(c.n)")
            let relu = RequantStep4(step, floor: 0).centered(lanes)
            XCTAssertEqual(Int64(relu[0]), max(expected, 0))
        }
    }

    func testAdditionStepEqualsContract() {
        var rng = SeededGenerator(seed: Self.seed)
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
        var rng = SeededGenerator(seed: Self.seed)
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
