import CKernels
import Foundation
import XCTest
@testable import AIOTModel

/// The 32-bit requantization form (`aiot_requant_select32`, docs/performance.md "session 21"): where
/// the selection rule admits it, every C variant's packed product equals the contract's `requantize`
/// at and around every boundary of the proved range; where it does not, the 64-bit form runs.
final class RequantFormTests: XCTestCase {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["AIOT_TEST_SEED"].flatMap { UInt64($0) }
        ?? UInt64.random(in: 0...UInt64.max)

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        super.recordFailure(withDescription: description + " [replay with AIOT_TEST_SEED=\(Self.seed)]", inFile: filePath, atLine: lineNumber, expected: expected)
    }

    /// The rule restated independently in Int64: cap = min(a*, bound) with a* the least a >= 0 for
    /// which (a m + half) >> n >= C = max(-lo, hi); the form is exact iff cap m + half < 2^32 and
    /// (cap m + half) >> n < 2^31. Returns (selected, a*, cap).
    static func rule(m: Int64, n: Int, lo: Int64, hi: Int64, bound: Int64) -> (Bool, Int64, Int64) {
        let half: Int64 = n > 0 ? 1 << (n - 1) : 0
        let c = max(-lo, hi)
        let need = (c << n) - half  // c <= 2^16, n <= 40: below 2^57
        let aStar: Int64 = need <= 0 ? 0 : (m == 0 ? bound + 1 : (need + m - 1) / m)
        let cap = min(aStar, bound)
        let top = cap * m + half
        return (top <= 0xFFFF_FFFF && (top >> n) <= Int64(Int32.max), aStar, cap)
    }

    /// Random multipliers, shifts (the extremes the loader accepts: m in 0...65535, n in 0...40),
    /// output widths, zero points, ReLU floors and accumulator bounds. The C selection must agree
    /// with `rule`; where it selects the 32-bit form, accumulators at 0, at and around a*, the cap
    /// and the bound, at every rounding tie near them (a m + half a multiple of 2^n), dense runs
    /// and random ones, both signs, go through every packed variant (as biases of a product with a
    /// zero input, so the accumulator is the bias) and must equal `requantize`.
    func testThirtyTwoBitFormEqualsTheContractAroundItsBoundary() throws {
        var rng = SeededGenerator(seed: Self.seed)
        let variants = KernelVariant.supported.compactMap { v in v.linear16p.map { (v, $0) } }
        let mChoices: [Int64] = [0, 1, 2, 3, 255, 256, 32767, 32768, 65534, 65535]
        let nChoices = [0, 1, 2, 7, 8, 15, 16, 17, 22, 23, 24, 25, 30, 31, 32, 33, 39, 40]
        var selected = 0, refused = 0, checked = 0
        for trial in 0..<20000 {
            let m = Bool.random(using: &rng) ? mChoices.randomElement(using: &rng)! : Int64.random(in: 0...65535, using: &rng)
            let n = Bool.random(using: &rng) ? nChoices.randomElement(using: &rng)! : Int.random(in: 0...40, using: &rng)
            let bits = Int.random(in: 4...16, using: &rng)
            let zChoices = [contractLo(bits), contractHi(bits), 0]
            let z = trial % 3 == 0 ? zChoices.randomElement(using: &rng)! : Int64.random(in: contractLo(bits)...contractHi(bits), using: &rng)
            let relu = Bool.random(using: &rng)
            let req = RequantStep(m: m, n: n, zeroPoint: z, bits: bits)
            let floor: Int32 = relu ? 0 : Int32.min
            let bound: Int64
            switch trial % 4 {
            case 0: bound = Int64(Int32.max)
            case 1: bound = Int64.random(in: 0...4096, using: &rng)
            default: bound = Int64.random(in: 0...Int64(Int32.max), using: &rng)
            }
            var rq = aiot_requant(req, floor: floor)
            let got = aiot_requant_select32(&rq, bound) == 1
            let lo = Int64(rq.lo), hi = Int64(rq.hi)
            let (want, aStar, cap) = Self.rule(m: m, n: n, lo: lo, hi: hi, bound: bound)
            XCTAssertEqual(got, want, "trial \(trial): selection m \(m) n \(n) lo \(lo) hi \(hi) bound \(bound)")
            XCTAssertEqual(rq.fast32 != 0, got)
            guard got else { refused += 1; continue }
            XCTAssertEqual(Int64(rq.cap32), cap, "trial \(trial): cap")
            selected += 1
            // Magnitudes to check, all within 0...bound.
            var mags: [Int64] = [0, 1, 2, bound, bound - 1, bound - 2]
            for centre in [aStar, cap] { for d in -3...3 { mags.append(centre + Int64(d)) } }
            // Rounding ties: a m + half = k 2^n, for k near C and near 1.
            let c = max(-lo, hi)
            if m > 0 {
                for k in [Int64(1), 2, c - 1, c, c + 1] where k > 0 {
                    let t = ((k << n) - req.half)
                    if t >= 0 && t % m == 0 { for d in -1...1 { mags.append(t / m + Int64(d)) } }
                    let a = (t + m - 1) / m
                    for d in -1...1 { mags.append(a + Int64(d)) }
                }
            }
            let dense = Int64.random(in: 0...max(0, bound - 64), using: &rng)
            for d in 0..<64 { mags.append(dense + Int64(d)) }
            for _ in 0..<32 { mags.append(Int64.random(in: 0...bound, using: &rng)) }
            let accs: [Int32] = mags.filter { $0 >= 0 && $0 <= bound }.flatMap { [Int32($0), Int32(-$0)] }
            let expected = accs.map { a in max(Int32(requantize(Int64(a), m: m, n: n, zeroPoint: z, bits: bits) - z), floor) }
            // One row, K = 1 (a zero input), the accumulators as biases: J outputs, 8 at a time
            // through the vector epilogue and the last J % 8 through the scalar 32-bit form.
            let x = [Int16](repeating: 0, count: 8), wp = [Int16](repeating: 0, count: 4 * pad8(accs.count) * 2)
            for (v, f) in variants {
                var y = [Int32](repeating: 0, count: accs.count)
                f(x, 1, 8, wp, accs, accs.count, &rq, &y, nil, 0, 1, Int32(AIOT_Y16_PLAIN))
                if y != expected {
                    let i = y.indices.first { y[$0] != expected[$0] }!
                    XCTFail("trial \(trial): \(v.rawValue) acc \(accs[i]) gives \(y[i]), the contract \(expected[i]) (m \(m) n \(n) z \(z) bits \(bits) relu \(relu) bound \(bound) cap \(cap))")
                    break
                }
            }
            checked += accs.count
        }
        XCTAssertGreaterThan(selected, 2500)
        XCTAssertGreaterThan(refused, 2500)
        print("seed \(Self.seed): 32-bit requantization selected for \(selected) random (m, n, range, bound), refused for \(refused); \(checked) accumulators equal to the contract on \(variants.map(\.0.rawValue))")
    }

    /// Every bundled model: how many products and residual+norm steps the rule admits (printed,
    /// with the names of those kept on the 64-bit form). Their exactness on the committed vectors
    /// is `KernelVariantTests`' part.
    func testBundledModelsSelectTheThirtyTwoBitFormWhereProved() throws {
        var fast = 0, total = 0
        var slow: [String: Int] = [:]  // steps kept on the 64-bit form, by name without the layer
        for (modelURL, _) in committedModelsWithVectors() {
            let model = try QuantizedModel(contentsOf: modelURL.path)
            let engine = SoftwareEngine(model: model, kernel: .portable)
            for l in engine.thirtyTwoBitRequant {
                total += 1
                if l.fast { fast += 1 } else { slow[l.name.split(separator: ".").last.map(String.init) ?? l.name, default: 0] += 1 }
            }
        }
        XCTAssertGreaterThan(total, 0)
        print("bundled models: \(fast) of \(total) products and residual+norm steps run the 32-bit form; 64-bit: \(slow.sorted { $0.key < $1.key })")
    }

    /// A synthetic model whose multipliers and weights push the proved bound past 32 bits in the
    /// linear layers and norms (m = 65535, n = 30, every centered weight 127): those keep the 64-bit form,
    /// the attention products (small multipliers) take the 32-bit one, and every C variant gives
    /// the integers of the portable Swift kernel and of the layer-at-a-time path on random windows.
    func testAModelWhoseBoundForcesTheSixtyFourBitPathStaysExact() throws {
        var rng = SeededGenerator(seed: Self.seed)
        var parts = ModelParts.synthetic()
        for name in ["q", "k", "v", "o", "ffn1", "ffn2"] {
            parts.editMeta(["requant", "layers.0.\(name)"], .object([("m", .int(65535)), ("n", .int(30))]))
            let w = parts.tensors["layers.0.\(name).weight"]!
            parts.tensors["layers.0.\(name).weight"] = ModelParts.Tensor(dtype: w.dtype, shape: w.shape,
                                                             values: w.values.map { _ in Bool.random(using: &rng) ? 127 : -127 })
        }
        // The norms: weights +-127 and biases up to +-131071 (the widest the loader admits at 8
        // bits) with m = 65535, n = 30 push b + r g times m past 2^32: the residual+norm steps too.
        for name in ["norm1", "norm2"] {
            parts.editMeta(["requant", "layers.0.\(name)"], .object([("m", .int(65535)), ("n", .int(30))]))
            let g = parts.tensors["layers.0.\(name).weight"]!, b = parts.tensors["layers.0.\(name).bias"]!
            parts.tensors["layers.0.\(name).weight"] = ModelParts.Tensor(dtype: g.dtype, shape: g.shape, values: g.values.map { _ in Bool.random(using: &rng) ? 127 : -127 })
            parts.tensors["layers.0.\(name).bias"] = ModelParts.Tensor(dtype: b.dtype, shape: b.shape, values: b.values.indices.map { i in
                i == 0 ? 131071 : Int32.random(in: -131071...131071, using: &rng) })
        }
        let w = parts.tensors["input_proj.weight"]!
        parts.tensors["input_proj.weight"] = ModelParts.Tensor(dtype: w.dtype, shape: w.shape, values: w.values.map { _ in Int32.random(in: -127...127, using: &rng) })
        let model = try QuantizedModel(bytes: parts.bytes())
        let reference = SoftwareEngine(model: model, narrowOperands: false, kernel: .portable)
        let forms = Dictionary(uniqueKeysWithValues: reference.thirtyTwoBitRequant.map { ($0.name, $0.fast) })
        for name in ["q", "k", "v", "o", "ffn1", "ffn2", "res1+norm1", "res2+norm2"] {
            XCTAssertEqual(forms["layers.0.\(name)"], false, "layers.0.\(name) must keep the 64-bit form")
        }
        XCTAssertEqual(forms["layers.0.scores"], true)
        XCTAssertEqual(forms["layers.0.context"], true)
        let n = model.shape.window * model.shape.features
        var checked = 0
        for variant in KernelVariant.supported {
            let engine = SoftwareEngine(model: model, kernel: variant)
            for _ in 0..<24 {
                let input = (0..<n).map { _ in Int32.random(in: model.inputAct.lo...model.inputAct.hi, using: &rng) }
                var got = [Int32](repeating: 0, count: model.shape.horizon), want = got
                try input.withUnsafeBufferPointer { (inp) throws(InferenceError) in
                    try got.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in try engine.infer(inp, into: out) }
                    try want.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in try reference.infer(inp, into: out) }
                }
                XCTAssertEqual(got, want, "\(variant.rawValue)")
                checked += 1
            }
        }
        print("seed \(Self.seed): \(checked) random windows of the 64-bit-forcing model equal on \(KernelVariant.supported.map(\.rawValue)) and the layered path")
    }
}
