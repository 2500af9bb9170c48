// The integer building blocks of docs/arithmetic.md §4 on raw buffers, for the software engine.
// Activations travel between kernels as centered values `x' = q - z` (Int32): every consumer in §4
// uses `x'`, and ReLU and the softmax row maximum are unchanged by the shift. Accumulators are Int32
// with wrapping operators: the loader proved every accumulator bound (§6), so no wrap can occur and
// the checks would only cost time. Requantization goes through the contract primitives in Int64.

/// Requantization to an activation, returning the centered output `REQ_y(acc) - z_y` (P3).
struct RequantStep {
    let m: Int64
    let n: Int
    let zeroPoint: Int64
    let bits: Int

    init(_ r: Requant, _ y: QuantParams) {
        m = r.m
        n = r.n
        zeroPoint = Int64(y.zeroPoint)
        bits = y.bits
    }

    @inline(__always)
    func centered(_ acc: Int32) -> Int32 {
        Int32(truncatingIfNeeded: requantize(Int64(acc), m: m, n: n, zeroPoint: zeroPoint, bits: bits) - zeroPoint)
    }
}

/// (E2) addition of two centered operands to a centered output.
struct AddStep {
    let m1: Int64
    let m2: Int64
    let n: Int
    let zeroPoint: Int64
    let bits: Int

    init(_ r: AddRequant, _ y: QuantParams) {
        m1 = r.m1
        m2 = r.m2
        n = r.n
        zeroPoint = Int64(y.zeroPoint)
        bits = y.bits
    }

    /// `SAT_by(z_y + RSHR(acc, n)) - z_y` for an accumulator `acc = x1' m1 + x2' m2` (< 2^34).
    @inline(__always)
    func centered(_ acc: Int64) -> Int32 {
        Int32(truncatingIfNeeded: saturate(zeroPoint + roundingShiftRight(acc, n), bits: bits) - zeroPoint)
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

    /// (E1) with 16-bit operands: the same sums when every centered value fits in Int16 (weights are
    /// at most 8 bits; inputs at most 15), which lets the compiler use 16-bit multiply-add lanes.
    @inline(__always)
    static func linear16(
        _ x: UnsafePointer<Int16>, rows: Int, inputs k: Int,
        _ w: UnsafePointer<Int16>, _ bias: UnsafePointer<Int32>, outputs j: Int,
        _ req: RequantStep, relu: Bool, _ y: UnsafeMutablePointer<Int32>
    ) {
        for t in 0..<rows {
            let xr = x + t * k
            let yr = y + t * j
            for o in 0..<j {
                let wr = w + o * k
                var acc = bias[o]
                for i in 0..<k { acc &+= Int32(xr[i]) &* Int32(wr[i]) }
                let v = req.centered(acc)
                yr[o] = relu ? max(v, 0) : v
            }
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
    /// of scores and probabilities is ever held. `q`, `k`, `v`, `ctx` are `[W, d]` centered; the head
    /// covers channels `c0 ..< c0 + dh`.
    @inline(__always)
    static func attentionHead(
        q: UnsafePointer<Int32>, k: UnsafePointer<Int32>, v: UnsafePointer<Int32>,
        window: Int, dModel: Int, c0: Int, dh: Int,
        scoresReq: RequantStep, exp: UnsafePointer<Int32>, probsBits: Int, contextReq: RequantStep,
        scoreRow: UnsafeMutablePointer<Int32>, probRow: UnsafeMutablePointer<Int32>, acc: UnsafeMutablePointer<Int32>,
        ctx: UnsafeMutablePointer<Int32>
    ) {
        let range = (Int64(1) << probsBits) - 1  // R = 2^b_A - 1
        let probsLo = contractLo(probsBits)
        for i in 0..<window {
            // (E5) S'[j] = REQ_S(sum_k Q'[i, k] K'[j, k]) - z_S; mx - S is the same on centered values.
            let qr = q + i * dModel + c0
            var mx = Int32.min
            for j in 0..<window {
                let kr = k + j * dModel + c0
                var a: Int32 = 0
                for c in 0..<dh { a &+= qr[c] &* kr[c] }
                let s = scoresReq.centered(a)
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
                let a = saturate(probsLo + roundingShiftRight(Int64(scoreRow[j]) &* inv, 30), bits: probsBits)
                probRow[j] = Int32(truncatingIfNeeded: a - probsLo)
            }
            // (E7) C[i, k] = REQ_C(sum_j A'_j V'[j, k]).
            for c in 0..<dh { acc[c] = 0 }
            for j in 0..<window {
                let p = probRow[j]
                let vr = v + j * dModel + c0
                for c in 0..<dh { acc[c] &+= p &* vr[c] }
            }
            let cr = ctx + i * dModel + c0
            for c in 0..<dh { cr[c] = contextReq.centered(acc[c]) }
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
