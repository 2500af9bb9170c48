// The integer building blocks of docs/arithmetic.md §4 on raw buffers, for the software engine.
// Activations travel between kernels as centered values `x' = q - z` (Int32): every consumer in §4
// uses `x'`, and ReLU and the softmax row maximum are unchanged by the shift. Accumulators are Int32
// with wrapping operators: the loader proved every accumulator bound (§6), so no wrap can occur and
// the checks would only cost time. Requantization goes through the contract primitives in Int64.

/// Requantization to an activation, returning the centered output `REQ_y(acc) - z_y` (P3).
///
/// Evaluated without branches as `min(max((p + h - [p < 0]) >> n, lo - z), hi - z)` with
/// `p = acc * m`, `h = 2^(n-1)`: for `n >= 1` that equals `sign(p) * ((|p| + h) >> n)` (P2) because
/// `-((-p + h) >> n) = ceil((p - h) / 2^n) = (p + h - 1) >> n` for `p < 0`. `RequantStepTests`
/// checks it against the contract's `requantize` on edge cases and random operands.
struct RequantStep {
    let m: Int64
    let n: Int64
    let half: Int64
    /// 1 when `n >= 1` (the `- [p < 0]` term), 0 for `n = 0` where the shift is the identity.
    let negativeAdjust: Int64
    let lo: Int64
    let hi: Int64

    init(_ r: Requant, _ y: QuantParams) {
        self.init(m: r.m, n: r.n, zeroPoint: Int64(y.zeroPoint), bits: y.bits)
    }

    init(m: Int64, n: Int, zeroPoint: Int64, bits: Int) {
        self.m = m
        self.n = Int64(n)
        half = n > 0 ? Int64(1) << (n - 1) : 0
        negativeAdjust = n > 0 ? 1 : 0
        lo = contractLo(bits) - zeroPoint
        hi = contractHi(bits) - zeroPoint
    }

    @inline(__always)
    init(copying other: RequantStep) {
        m = other.m
        n = other.n
        half = other.half
        negativeAdjust = other.negativeAdjust
        lo = other.lo
        hi = other.hi
    }

    /// `SAT(z + RSHR(v, n)) - z` for an exact product or sum `v` (`|v| < 2^47`).
    @inline(__always)
    func centered(product v: Int64) -> Int32 {
        let r = (v &+ half &- ((v >> 63) & negativeAdjust)) >> n
        return Int32(truncatingIfNeeded: min(max(r, lo), hi))
    }

    @inline(__always)
    func centered(_ acc: Int32) -> Int32 {
        centered(product: Int64(acc) &* m)
    }
}

/// (E2) addition of two centered operands to a centered output.
struct AddStep {
    let m1: Int64
    let m2: Int64
    let shift: RequantStep

    init(_ r: AddRequant, _ y: QuantParams) {
        m1 = r.m1
        m2 = r.m2
        shift = RequantStep(m: 1, n: r.n, zeroPoint: Int64(y.zeroPoint), bits: y.bits)
    }

    /// `SAT_by(z_y + RSHR(acc, n)) - z_y` for an accumulator `acc = x1' m1 + x2' m2` (< 2^34).
    @inline(__always)
    func centered(_ acc: Int64) -> Int32 {
        shift.centered(product: acc)
    }
}

enum Kernels {
    /// (E1) `y'[t, j] = REQ(B[j] + sum_k x'[t, k] w'[j, k]) - z_y` with `w` centered, `[J, K]` row-major.
    /// With `relu`, (E4) follows: `max(y', 0)`, the centered form of `max(q, z_y)`.
    @inline(__always)
    static func linear(
        _ x: UnsafePointer<Int32>, rows: Int, inputs k: Int,
        _ w: UnsafePointer<Int32>, _ bias: UnsafePointer<Int32>, outputs j: Int,
        _ req: RequantStep, relu: Bool, _ y: UnsafeMutablePointer<Int32>
    ) {
        for t in 0..<rows {
            let xr = x + t * k
            let yr = y + t * j
            for o in 0..<j {
                let wr = w + o * k
                var acc = bias[o]
                for i in 0..<k { acc &+= xr[i] &* wr[i] }
                let v = req.centered(acc)
                yr[o] = relu ? max(v, 0) : v
            }
        }
    }

    /// `sum_i x[i] w[i]` over `count` 16-bit values, `count` a multiple of 8 (rows are zero-padded).
    /// The even/odd pairing is the shape x86's 16-bit multiply-add (`pmaddwd`) and ARM's `smlal`
    /// pairs compute, so the compiler emits one such instruction per 8 products.
    @inline(__always)
    static func dot16(_ x: UnsafePointer<Int16>, _ w: UnsafePointer<Int16>, _ count: Int) -> Int32 {
        var acc = SIMD4<Int32>.zero
        var i = 0
        while i < count {
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Int16>.self)
            let wv = UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Int16>.self)
            let p = SIMD8<Int32>(truncatingIfNeeded: xv) &* SIMD8<Int32>(truncatingIfNeeded: wv)
            acc &+= p.evenHalf &+ p.oddHalf
            i += 8
        }
        return acc.wrappedSum()
    }

    /// (E1) with 16-bit operands, used when every centered value fits Int16 (weights have at most
    /// 8 bits; inputs at most 15). `x` is `[rows, stride]`, `w` is `[J, stride]`, both zero-padded
    /// from `K` to `stride` (a multiple of 8), so the padding adds nothing to the sums.
    @inline(__always)
    static func linear16(
        _ x: UnsafePointer<Int16>, rows: Int, stride: Int,
        _ w: UnsafePointer<Int16>, _ bias: UnsafePointer<Int32>, outputs j: Int,
        _ req: RequantStep, relu: Bool, _ y: UnsafeMutablePointer<Int32>
    ) {
        let floor: Int32 = relu ? 0 : Int32.min
        // A local copy keeps the requantization constants in registers across the stores to `y`.
        let req = RequantStep(copying: req)
        for t in 0..<rows {
            let xr = x + t * stride
            let yr = y + t * j
            var o = 0
            // Four outputs at a time share each load of the input row.
            while o + 4 <= j {
                let w0 = w + o * stride, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride
                var a0 = SIMD4<Int32>.zero, a1 = SIMD4<Int32>.zero, a2 = SIMD4<Int32>.zero, a3 = SIMD4<Int32>.zero
                var i = 0
                while i < stride {
                    let xv = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD8<Int16>.self))
                    let p0 = xv &* SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(w0 + i).loadUnaligned(as: SIMD8<Int16>.self))
                    let p1 = xv &* SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(w1 + i).loadUnaligned(as: SIMD8<Int16>.self))
                    let p2 = xv &* SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(w2 + i).loadUnaligned(as: SIMD8<Int16>.self))
                    let p3 = xv &* SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(w3 + i).loadUnaligned(as: SIMD8<Int16>.self))
                    a0 &+= p0.evenHalf &+ p0.oddHalf
                    a1 &+= p1.evenHalf &+ p1.oddHalf
                    a2 &+= p2.evenHalf &+ p2.oddHalf
                    a3 &+= p3.evenHalf &+ p3.oddHalf
                    i += 8
                }
                yr[o] = max(req.centered(bias[o] &+ a0.wrappedSum()), floor)
                yr[o + 1] = max(req.centered(bias[o + 1] &+ a1.wrappedSum()), floor)
                yr[o + 2] = max(req.centered(bias[o + 2] &+ a2.wrappedSum()), floor)
                yr[o + 3] = max(req.centered(bias[o + 3] &+ a3.wrappedSum()), floor)
                o += 4
            }
            while o < j {
                yr[o] = max(req.centered(bias[o] &+ dot16(xr, w + o * stride, stride)), floor)
                o += 1
            }
        }
    }

    /// Copies centered `[rows, cols]` Int32 values into `[rows, stride]` Int16, zero-padding each row.
    /// The caller guarantees the values fit (they come from activations of at most 15 bits).
    @inline(__always)
    static func pack16(_ x: UnsafePointer<Int32>, rows: Int, cols: Int, stride: Int, _ y: UnsafeMutablePointer<Int16>) {
        for t in 0..<rows {
            for c in 0..<cols { y[t * stride + c] = Int16(truncatingIfNeeded: x[t * cols + c]) }
            for c in cols..<stride { y[t * stride + c] = 0 }
        }
    }

    /// (E3) folded BatchNorm per channel: `y'[t, c] = REQ(B[c] + x'[t, c] G'[c]) - z_y`.
    @inline(__always)
    static func batchNorm(
        _ x: UnsafePointer<Int32>, rows: Int, channels: Int,
        _ g: UnsafePointer<Int32>, _ bias: UnsafePointer<Int32>, _ req: RequantStep, _ y: UnsafeMutablePointer<Int32>
    ) {
        for t in 0..<rows {
            for c in 0..<channels {
                let i = t * channels + c
                y[i] = req.centered(bias[c] &+ x[i] &* g[c])
            }
        }
    }

    /// (E2) `y' = SAT(z + RSHR(x1' m1 + x2' m2, n)) - z` elementwise.
    @inline(__always)
    static func add(
        _ a: UnsafePointer<Int32>, _ b: UnsafePointer<Int32>, count: Int, _ step: AddStep, _ y: UnsafeMutablePointer<Int32>
    ) {
        for i in 0..<count {
            y[i] = step.centered(Int64(a[i]) &* step.m1 &+ Int64(b[i]) &* step.m2)
        }
    }

    /// (E2) with the second operand's product `x2' m2` precomputed (the constant positional encoding).
    @inline(__always)
    static func addPrescaled(
        _ a: UnsafePointer<Int32>, _ bScaled: UnsafePointer<Int64>, count: Int, _ step: AddStep, _ y: UnsafeMutablePointer<Int32>
    ) {
        for i in 0..<count {
            y[i] = step.centered(Int64(a[i]) &* step.m1 &+ bScaled[i])
        }
    }

    /// (E5)-(E7) for one head: scores, softmax and context, one query row at a time so only a row
    /// of scores and probabilities is ever held. Operands are 16-bit (q, k, v and probs have at most
    /// 8 bits): `q`, `k` are the head's `[W, dhStride]`, `vT` its transposed values `[dh, wStride]`;
    /// `ctx` is `[W, d]` centered Int32 and the head writes channels `c0 ..< c0 + dh`.
    @inline(__always)
    static func attentionHead(
        q: UnsafePointer<Int16>, k: UnsafePointer<Int16>, vT: UnsafePointer<Int16>,
        window: Int, dh: Int, dhStride: Int, wStride: Int, dModel: Int, c0: Int,
        scoresReq: RequantStep, exp: UnsafePointer<Int32>, probsBits: Int, contextReq: RequantStep,
        scoreRow: UnsafeMutablePointer<Int32>, probRow: UnsafeMutablePointer<Int16>,
        ctx: UnsafeMutablePointer<Int32>
    ) {
        let range = (Int64(1) << probsBits) - 1  // R = 2^b_A - 1
        // SAT_bA(lo + RSHR(v, 30)) - lo, the centered probability.
        let probsStep = RequantStep(m: 1, n: 30, zeroPoint: contractLo(probsBits), bits: probsBits)
        for i in 0..<window {
            // (E5) S'[j] = REQ_S(sum_k Q'[i, k] K'[j, k]) - z_S; mx - S is the same on centered values.
            let qr = q + i * dhStride
            var mx = Int32.min
            for j in 0..<window {
                let s = scoresReq.centered(dot16(qr, k + j * dhStride, dhStride))
                scoreRow[j] = s
                mx = max(mx, s)
            }
            // (E6) e_j = EXP[mx - S_j], den = sum e_j, inv = floor(R 2^30 / den),
            // A'_j = SAT_bA(lo + RSHR(e_j inv, 30)) - lo.
            var den: Int64 = 0
            for j in 0..<window {
                let e = exp[Int(mx &- scoreRow[j])]
                scoreRow[j] = e
                den &+= Int64(e)
            }
            let inv = (range << 30) / den
            for j in 0..<window {
                probRow[j] = Int16(truncatingIfNeeded: probsStep.centered(product: Int64(scoreRow[j]) &* inv))
            }
            // (E7) C[i, k] = REQ_C(sum_j A'_j V'[j, k]); probRow's padding stays zero.
            let cr = ctx + i * dModel + c0
            for c in 0..<dh { cr[c] = contextReq.centered(dot16(probRow, vT + c * wStride, wStride)) }
        }
    }

    /// (E8) `p'[c] = REQ_pool(sum_t x'[t, c]) - z_pool`.
    @inline(__always)
    static func averagePool(
        _ x: UnsafePointer<Int32>, rows: Int, channels: Int, _ req: RequantStep, _ y: UnsafeMutablePointer<Int32>
    ) {
        for c in 0..<channels {
            var a: Int32 = 0
            for t in 0..<rows { a &+= x[t * channels + c] }
            y[c] = req.centered(a)
        }
    }
}
