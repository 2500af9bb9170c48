import CKernels
import Foundation
import XCTest
@testable import AIOTModel

/// Every matrix-product variant the CPU runs gives the integers of the Swift kernel and the scalar C
/// reference, on random operands at the widths the loader admits and on the committed vectors.
final class KernelVariantTests: XCTestCase {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["AIOT_TEST_SEED"].flatMap { UInt64($0) }
        ?? UInt64.random(in: 0...UInt64.max)

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        super.recordFailure(withDescription: description + " [replay with AIOT_TEST_SEED=\(Self.seed)]", inFile: filePath, atLine: lineNumber, expected: expected)
    }

    /// The C variants the CPU supports, by the CPU's own flags (so a broken cpuid check fails here).
    func testSupportMatchesTheCPUFlags() throws {
        XCTAssertTrue(KernelVariant.portable.isSupported)
        #if arch(x86_64) && os(Linux)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        XCTAssertEqual(KernelVariant.avx2.isSupported, flags.contains("avx2"))
        XCTAssertEqual(KernelVariant.avx512.isSupported,
                       ["avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"].allSatisfy(flags.contains))
        XCTAssertFalse(KernelVariant.neon.isSupported)
        #endif
        print("kernel variants supported here: \(KernelVariant.supported.map(\.rawValue)); best \(KernelVariant.best.rawValue)")
    }

    func testResolveNamesAndRefusals() throws {
        XCTAssertEqual(try KernelVariant.resolve(nil), KernelVariant.best)
        XCTAssertEqual(try KernelVariant.resolve("auto"), KernelVariant.best)
        XCTAssertEqual(try KernelVariant.resolve("portable"), .portable)
        XCTAssertThrowsError(try KernelVariant.resolve("sse9")) { error in
            XCTAssertTrue("\(error)".contains("unknown kernel variant 'sse9'"), "\(error)")
        }
        for v in KernelVariant.allCases where !v.isSupported {
            XCTAssertThrowsError(try KernelVariant.resolve(v.rawValue)) { error in
                XCTAssertTrue("\(error)".contains("not available"), "\(error)")
            }
        }
    }

    /// Random products (bias, widths, requantization, ReLU floor) through the Swift kernel, the
    /// scalar C reference and every supported C variant: all equal.
    func testEveryVariantEqualsTheSwiftKernelOnRandomOperands() throws {
        var rng = SeededGenerator(seed: Self.seed)
        let scalar = try XCTUnwrap(aiot_kernel_linear16(Int32(AIOT_KERNEL_SCALAR)))
        let variants = KernelVariant.supported.compactMap { v in v.linear16.map { (v, $0) } }
        var checked = 0
        for trial in 0..<200 {
            let rows = Int.random(in: 1...30, using: &rng)
            let k = Int.random(in: 1...72, using: &rng)
            let stride = pad8(k)
            let outs = Int.random(in: 1...70, using: &rng)
            let xBits = Int.random(in: 4...15, using: &rng), wBits = Int.random(in: 4...8, using: &rng)
            let xMax = (1 << xBits) - 1, wMax = (1 << wBits) - 1  // centered magnitudes (§1)
            // The loader's bound (§4 E1): K (2^bx - 1)(2^bw - 1) + |B| <= 2^31 - 1.
            let bMax = min(1 << (xBits + wBits + 1), Int(Int32.max) - k * xMax * wMax)
            guard bMax >= 0 else { continue }
            let extreme = trial % 4 == 0  // every operand at +-max: the largest sums
            var x = [Int16](repeating: 0, count: rows * stride), w = [Int16](repeating: 0, count: outs * stride)
            for t in 0..<rows { for i in 0..<k { x[t * stride + i] = Int16(extreme ? (Bool.random(using: &rng) ? xMax : -xMax) : Int.random(in: -xMax...xMax, using: &rng)) } }
            for o in 0..<outs { for i in 0..<k { w[o * stride + i] = Int16(extreme ? (Bool.random(using: &rng) ? wMax : -wMax) : Int.random(in: -wMax...wMax, using: &rng)) } }
            let bias = (0..<outs).map { _ in Int32(Int.random(in: -bMax...bMax, using: &rng)) }
            let yBits = Int.random(in: 4...16, using: &rng)
            let req = RequantStep(m: Int64.random(in: 0...65535, using: &rng), n: Int.random(in: 0...40, using: &rng),
                                  zeroPoint: Int64.random(in: contractLo(yBits)...contractHi(yBits), using: &rng), bits: yBits)
            let relu = Bool.random(using: &rng)
            var swiftY = [Int32](repeating: 0, count: rows * outs)
            Kernels.linear16(x, rows: rows, stride: stride, w, bias, outputs: outs, req, relu: relu, &swiftY)
            var rq = aiot_requant(m: req.m, half: req.half, n: Int32(req.n), lo: max(Int32(req.lo), relu ? 0 : Int32.min), hi: Int32(req.hi), fast32: 0, cap32: 0)
            var refY = [Int32](repeating: 0, count: rows * outs)
            scalar(x, rows, stride, w, bias, outs, &rq, &refY)
            XCTAssertEqual(refY, swiftY, "trial \(trial): scalar C reference vs Swift kernel, rows \(rows) K \(k) J \(outs)")
            for (v, f) in variants {
                var y = [Int32](repeating: 0, count: rows * outs)
                f(x, rows, stride, w, bias, outs, &rq, &y)
                XCTAssertEqual(y, swiftY, "trial \(trial): \(v.rawValue) vs Swift kernel, rows \(rows) K \(k) J \(outs) m \(req.m) n \(req.n)")
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 150)
        print("seed \(Self.seed): \(checked) random products equal on Swift, scalar C and \(variants.map(\.0.rawValue))")
    }

    /// Every committed vector, single and batched, on every variant the CPU runs.
    func testEveryVariantIsBitIdenticalOnEveryCommittedVector() throws {
        let pairs = committedModelsWithVectors()
        XCTAssertGreaterThanOrEqual(pairs.count, 10)
        for variant in KernelVariant.supported {
            var total = 0
            for (modelURL, vectorsURL) in pairs {
                let engine = SoftwareEngine(model: try QuantizedModel(contentsOf: modelURL.path), kernel: variant)
                XCTAssertEqual(engine.kernel, variant)
                let vectors = try TestVectors(text: String(contentsOf: vectorsURL, encoding: .utf8))
                let result = try vectors.check(with: engine)
                XCTAssertEqual(result.identical, result.total, "\(variant.rawValue) \(modelURL.path): \(result.mismatches)")
                // The batch entry on every vector at once: one pass of up to 64 windows (the
                // row-wise layers over all their rows), then the rest; the first 16 on the
                // portable kernel (same batching code, and the debug build's Swift kernel is slow).
                let b = variant == .portable ? min(16, vectors.count) : vectors.count
                var outputs = [Int32](repeating: 0, count: b * vectors.outputCount)
                try vectors.inputs[0..<(b * vectors.inputCount)].withUnsafeBufferPointer { (inp) throws(InferenceError) in
                    try outputs.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in
                        try engine.inferBatch(inp, count: b, into: out)
                    }
                }
                XCTAssertEqual(outputs, Array(vectors.outputs[0..<(b * vectors.outputCount)]), "\(variant.rawValue) batch \(modelURL.path)")
                total += result.total
            }
            print("kernel \(variant.rawValue): \(total) vectors of \(pairs.count) models bit-identical, single and as one batch per model")
        }
    }

    /// The batched pass gives the integers of one `infer` per window, on random in-range windows
    /// of every committed model, for batch sizes that fill, split and part-fill a pass (passes of
    /// 64 windows, the default, and of 5), on every variant.
    func testRandomBatchesEqualSingleInferences() throws {
        var rng = SeededGenerator(seed: Self.seed)
        let pairs = committedModelsWithVectors()
        XCTAssertGreaterThanOrEqual(pairs.count, 10)
        for variant in KernelVariant.supported {
            var checked = 0, models = 0
            // Every model on the C variants; every fourth on the debug-build Swift kernel (slow),
            // which runs the same batching code.
            for (index, (modelURL, _)) in pairs.enumerated() where variant != .portable || index % 4 == 0 {
                models += 1
                let model = try QuantizedModel(contentsOf: modelURL.path)
                let single = SoftwareEngine(model: model, kernel: variant)
                let n = model.shape.window * model.shape.features, p = model.shape.horizon
                for windowsPerPass in [64, 5] {
                    let engine = SoftwareEngine(model: model, narrowOperands: true, kernel: variant, batchWindows: windowsPerPass)
                    // Past 64 on the C variants (a split pass); the debug-build Swift kernel is slow.
                    let most = windowsPerPass == 64 ? (variant == .portable ? 20 : 70) : 13
                    let count = Int.random(in: 1...most, using: &rng)
                    let inputs = (0..<(count * n)).map { _ in Int32.random(in: model.inputAct.lo...model.inputAct.hi, using: &rng) }
                    var batch = [Int32](repeating: 0, count: count * p)
                    try inputs.withUnsafeBufferPointer { (inp) throws(InferenceError) in
                        try batch.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in
                            try engine.inferBatch(inp, count: count, into: out)
                        }
                    }
                    var expected: [Int32] = []
                    for b in 0..<count {
                        var one = [Int32](repeating: 0, count: p)
                        try inputs[(b * n)..<((b + 1) * n)].withUnsafeBufferPointer { (inp) throws(InferenceError) in
                            try one.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in try single.infer(inp, into: out) }
                        }
                        expected += one
                    }
                    XCTAssertEqual(batch, expected, "\(variant.rawValue) \(modelURL.path): batch of \(count), passes of \(windowsPerPass)")
                    checked += count
                }
            }
            print("seed \(Self.seed): kernel \(variant.rawValue): \(checked) random windows in batches equal to single inferences (\(models) models)")
        }
    }

    /// 16-bit-input models: the split of a wide input into 16-bit halves for the packed C product
    /// gives the integers of the layer-at-a-time 32-bit path, on random windows over the whole
    /// input range (the committed vectors hold realistic inputs only), on every C variant.
    func testSixteenBitInputsEqualTheThirtyTwoBitPath() throws {
        var rng = SeededGenerator(seed: Self.seed)
        var checked = 0
        for (modelURL, _) in committedModelsWithVectors() {
            let model = try QuantizedModel(contentsOf: modelURL.path)
            guard model.inputAct.bits > 15 else { continue }
            let reference = SoftwareEngine(model: model, narrowOperands: false, kernel: .portable)
            let n = model.shape.window * model.shape.features, p = model.shape.horizon
            for variant in KernelVariant.supported where variant != .portable {
                let engine = SoftwareEngine(model: model, kernel: variant)
                for _ in 0..<8 {
                    let input = (0..<n).map { _ in Int32.random(in: model.inputAct.lo...model.inputAct.hi, using: &rng) }
                    var got = [Int32](repeating: 0, count: p), want = got
                    try input.withUnsafeBufferPointer { (inp) throws(InferenceError) in
                        try got.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in try engine.infer(inp, into: out) }
                        try want.withUnsafeMutableBufferPointer { (out) throws(InferenceError) in try reference.infer(inp, into: out) }
                    }
                    XCTAssertEqual(got, want, "\(variant.rawValue) \(modelURL.path)")
                    checked += 1
                }
            }
        }
        print("seed \(Self.seed): \(checked) random windows of 16-bit-input models equal on the C variants and the 32-bit path")
    }
}
