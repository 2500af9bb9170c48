import CKernels

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
        // Masking shifts (`&>>`): `n <= 40` (§3), so Swift's overshift branches would never fire.
        let r = (v &+ half &- ((v &>> 63) & negativeAdjust)) &>> n
        return Int32(truncatingIfNeeded: min(max(r, lo), hi))
    }

    @inline(__always)
    func centered(_ acc: Int32) -> Int32 {
        centered(product: Int64(acc) &* m)
    }
}

/// `RequantStep` on four values at once, exact, with 2-lane double and 32/64-bit integer operations
/// that every x86-64 (SSE2) and ARM64 (NEON) CPU has, so no 64-bit multiply, compare or arithmetic
/// shift, which SSE2 lacks.
///
/// RSHR is taken on magnitudes, as (P2) defines it: `r = (|v| + h) >> n`, then the sign is put back.
/// Every `|v|` here is an exact double (`|acc| m < 2^47`, addition accumulators `< 2^34`, softmax
/// products `< 2^38`). Capped at `2^min(n + 17, 47)` (the cap only changes results that saturate
/// anyway: `|lo|, |hi| <= 65535 < 2^17`) and added to `2^52 + h` (exact: below 2^53), the double's
/// low 52 mantissa bits are the integer `|v| + h`, and an integer shift by `n` finishes it.
/// `KernelTests` checks it against the contract's `requantize`.
struct RequantStep4 {
    let m: SIMD4<Double>
    let cap: SIMD4<Double>
    let magic: SIMD4<Double>
    let n: SIMD4<UInt64>
    let lo: SIMD4<Int32>
    let hi: SIMD4<Int32>
    /// Only for `n < 16` can `(|v| + h) >> n` (`|v| < 2^47`) exceed 2^31 and need the cap; with
    /// `n >= 16` the 32-bit clamp alone saturates it, and the cap (a compare and a blend, three
    /// instructions per two lanes on SSE2) is skipped.
    let needsCap: Bool

    init(_ r: RequantStep, floor: Int32 = Int32.min) {
        needsCap = r.n < 16
        m = SIMD4(repeating: Double(r.m))
        cap = SIMD4(repeating: Double(Int64(1) << min(r.n + 17, 47)))
        magic = SIMD4(repeating: 4503599627370496.0 + Double(r.half))  // 2^52 + h
        n = SIMD4(repeating: UInt64(r.n))
        lo = SIMD4(repeating: max(Int32(truncatingIfNeeded: r.lo), floor))
        hi = SIMD4(repeating: Int32(truncatingIfNeeded: r.hi))
    }

    /// `sign * ((|v| + h) >> n)` clamped to `lo ... hi`, for `|v|` given as an exact double and the
    /// sign as a lane mask (-1 negative, 0 not).
    @inline(__always)
    func shift(magnitude a: SIMD4<Double>, negative: SIMD4<Int32>) -> SIMD4<Int32> {
        let capped = needsCap ? a.replacing(with: cap, where: cap .< a) : a
        let bits = unsafeBitCast(capped + magic, to: SIMD4<UInt64>.self) & SIMD4(repeating: 0x000F_FFFF_FFFF_FFFF)
        let r = SIMD4<Int32>(truncatingIfNeeded: bits &>> n)
        return ((r ^ negative) &- negative).clamped(lowerBound: lo, upperBound: hi)
    }

    /// `REQ(acc) - z` lane by lane (`|acc| <= 2^31 - 1`, the loader's bound), clamped below at
    /// `floor` (ReLU) when one was given.
    @inline(__always)
    func centered(_ acc: SIMD4<Int32>) -> SIMD4<Int32> {
        let negative = acc &>> 31
        return shift(magnitude: SIMD4<Double>((acc ^ negative) &- negative) * m, negative: negative)
    }

    /// `SAT(z + RSHR(v, n)) - z` for exact products or sums `v` (the multiplier already applied).
    @inline(__always)
    func centered(product v: SIMD4<Double>) -> SIMD4<Int32> {
        let bits = unsafeBitCast(v, to: SIMD4<Int64>.self)
        let negative = SIMD4<Int32>(truncatingIfNeeded: bits &>> 32) &>> 31
        let magnitude = unsafeBitCast(bits & SIMD4(repeating: Int64.max), to: SIMD4<Double>.self)
        return shift(magnitude: magnitude, negative: negative)
    }
}

extension aiot_requant {
    /// The C kernels' form of `r`, with a ReLU `floor` folded into the lower clamp (the 64-bit form).
    init(_ r: RequantStep, floor: Int32 = Int32.min) {
        self.init(m: r.m, half: r.half, n: Int32(truncatingIfNeeded: r.n),
                  lo: max(Int32(truncatingIfNeeded: r.lo), floor), hi: Int32(truncatingIfNeeded: r.hi), fast32: 0, cap32: 0)
    }

    /// The same, with the 32-bit form selected when `aiot_requant_select32` proves it exact for every
    /// accumulator with |acc| <= `accBound` (the layer's bound, computed at load); else the 64-bit form.
    init(_ r: RequantStep, floor: Int32 = Int32.min, accBound: Int64) {
        self.init(r, floor: floor)
        aiot_requant_select32(&self, accBound)
    }
}

extension aiot_add_norm {
    /// The C kernels' residual (E2) then norm (E3), in the 64-bit form (`aiot_add_norm_select32`
    /// may switch it to the 32-bit one).
    init(_ add: AddStep, g: UnsafePointer<Int32>, b: UnsafePointer<Int32>, norm: RequantStep) {
        self.init(m1: add.m1, m2: add.m2, add: aiot_requant(add.shift), norm: aiot_requant(norm), g: g, b: b, fast32: 0)
    }
}

/// Largest centered magnitude `max(hi(b) - z, z - lo(b))` of an activation (§1).
@inline(__always)
func centeredMax(_ p: QuantParams) -> Int64 {
    max(Int64(p.hi) - Int64(p.zeroPoint), Int64(p.zeroPoint) - Int64(p.lo))
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

    /// (E1) as `linear16`, each requantized output handed to `sink` (which may store it in 16 bits,
    /// in a head's layout, or fold the next elementwise step in) instead of a second pass over memory.
    ///
    /// Two phases: all accumulators into `scratch` (`[rows, J]`), then the epilogue over them. The
    /// epilogue of four outputs is one long dependency chain (reduce, requantize, residual,
    /// requantize, norm, requantize); run back to back over memory, consecutive chains overlap in
    /// the out-of-order window, where interleaved with the products they did not (measured: 2-phase
    /// is faster although it executes a few more instructions).
    @inline(__always)
    static func linear16<S: OutputSink>(
        _ x: UnsafePointer<Int16>, rows: Int, stride: Int,
        _ w: UnsafePointer<Int16>, _ bias: UnsafePointer<Int32>, outputs j: Int,
        _ req: RequantStep, relu: Bool, scratch: UnsafeMutablePointer<Int32>, fast: aiot_linear16_fn? = nil,
        packed: (aiot_linear16p_fn, UnsafePointer<Int16>)? = nil, _ sink: S
    ) {
        let floor: Int32 = relu ? 0 : Int32.min
        if let fast {
            // A CPU-specific C variant computes products and requantization into `scratch`; only
            // the sink's part (layout, fused residual and norm) stays here.
            var rq = aiot_requant(req, floor: floor)
            if let (fn, wp) = packed {
                fn(x, rows, stride, wp, bias, j, &rq, scratch, nil, 0, 1, Int32(AIOT_Y16_PLAIN))
            } else {
                fast(x, rows, stride, w, bias, j, &rq, scratch)
            }
            handOver(scratch, rows: rows, outputs: j, sink)
            return
        }
        var t = 0
        while t < rows {
            let xr = x + t &* stride
            let ar = scratch + t &* j
            var o = 0
            while o &+ 4 <= j {
                let w0 = w + o &* stride, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride
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
                    i &+= 8
                }
                // The four sums side by side in one vector.
                let p01 = SIMD4(lowHalf: a0.evenHalf &+ a0.oddHalf, highHalf: a1.evenHalf &+ a1.oddHalf)
                let p23 = SIMD4(lowHalf: a2.evenHalf &+ a2.oddHalf, highHalf: a3.evenHalf &+ a3.oddHalf)
                let sums = SIMD4(lowHalf: p01.evenHalf &+ p01.oddHalf, highHalf: p23.evenHalf &+ p23.oddHalf)
                UnsafeMutableRawPointer(ar + o).storeBytes(of: sums &+ UnsafeRawPointer(bias + o).loadUnaligned(as: SIMD4<Int32>.self), as: SIMD4<Int32>.self)
                o &+= 4
            }
            while o < j {
                ar[o] = bias[o] &+ dot16(xr, w + o &* stride, stride)
                o &+= 1
            }
            t &+= 1
        }
        epilogue(scratch, rows: rows, outputs: j, req, floor: floor, sink)
    }

    /// Requantizes `[rows, J]` accumulators (four at a time) and hands them to `sink`.
    @inline(__always)
    static func epilogue<S: OutputSink>(
        _ acc: UnsafePointer<Int32>, rows: Int, outputs j: Int, _ req: RequantStep, floor: Int32, _ sink: S
    ) {
        let req4 = RequantStep4(req, floor: floor)
        let req = RequantStep(copying: req)
        var t = 0
        while t < rows {
            let ar = acc + t &* j
            var o = 0
            while o &+ 4 <= j {
                sink.store4(t, o, req4.centered(UnsafeRawPointer(ar + o).loadUnaligned(as: SIMD4<Int32>.self)))
                o &+= 4
            }
            while o < j {
                sink.store(t, o, max(req.centered(ar[o]), floor))
                o &+= 1
            }
            t &+= 1
        }
    }

    /// Hands `[rows, J]` already requantized outputs to `sink`, four at a time.
    @inline(__always)
    static func handOver<S: OutputSink>(_ y: UnsafePointer<Int32>, rows: Int, outputs j: Int, _ sink: S) {
        var t = 0
        while t < rows {
            let yr = y + t &* j
            var o = 0
            while o &+ 4 <= j {
                sink.store4(t, o, UnsafeRawPointer(yr + o).loadUnaligned(as: SIMD4<Int32>.self))
                o &+= 4
            }
            while o < j {
                sink.store(t, o, yr[o])
                o &+= 1
            }
            t &+= 1
        }
    }

    /// (E1) on 32-bit operands (an input wider than 15 bits) into a sink.
    @inline(__always)
    static func linear<S: OutputSink>(
        _ x: UnsafePointer<Int32>, rows: Int, inputs k: Int,
        _ w: UnsafePointer<Int32>, _ bias: UnsafePointer<Int32>, outputs j: Int,
        _ req: RequantStep, relu: Bool, _ sink: S
    ) {
        for t in 0..<rows {
            let xr = x + t * k
            for o in 0..<j {
                let wr = w + o * k
                var acc = bias[o]
                for i in 0..<k { acc &+= xr[i] &* wr[i] }
                let v = req.centered(acc)
                sink.store(t, o, relu ? max(v, 0) : v)
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
        // Row by row into `y` (contiguous, so the adds vectorize), then requantized in place; the
        // exact sums fit Int32 (loader's bound), so the order does not matter.
        for c in 0..<channels { y[c] = 0 }
        for t in 0..<rows {
            let r = x + t &* channels
            for c in 0..<channels { y[c] &+= r[c] }
        }
        for c in 0..<channels { y[c] = req.centered(y[c]) }
    }
}

/// Where a fused kernel puts output `(t, o)` (centered). Implementations are small structs the
/// compiler specializes and inlines into the kernel's loop.
protocol OutputSink {
    func store(_ t: Int, _ o: Int, _ v: Int32)
    /// Outputs `o ..< o + 4` of row `t`.
    func store4(_ t: Int, _ o: Int, _ v: SIMD4<Int32>)
}

extension OutputSink {
    @inline(__always) func store4(_ t: Int, _ o: Int, _ v: SIMD4<Int32>) {
        store(t, o, v[0])
        store(t, o &+ 1, v[1])
        store(t, o &+ 2, v[2])
        store(t, o &+ 3, v[3])
    }
}

/// Row-major Int32 `[rows, stride]`.
struct Store32: OutputSink {
    let y: UnsafeMutablePointer<Int32>
    let stride: Int
    @inline(__always) func store(_ t: Int, _ o: Int, _ v: Int32) { y[t &* stride &+ o] = v }
    @inline(__always) func store4(_ t: Int, _ o: Int, _ v: SIMD4<Int32>) {
        UnsafeMutableRawPointer(y + (t &* stride &+ o)).storeBytes(of: v, as: SIMD4<Int32>.self)
    }
}

/// Int16 at `y[cols[o] + t * rowStep]`: plain padded rows (`cols[o] = o`, `rowStep` = row stride),
/// a head's slice, or a transposed layout (`cols[o] = o * wStride`, `rowStep = 1`). Every value
/// stored fits: internal activations have at most 8 bits.
struct Store16: OutputSink {
    let y: UnsafeMutablePointer<Int16>
    let cols: UnsafePointer<Int>
    let rowStep: Int
    @inline(__always) func store(_ t: Int, _ o: Int, _ v: Int32) { y[cols[o] &+ t &* rowStep] = Int16(truncatingIfNeeded: v) }
    @inline(__always) func store4(_ t: Int, _ o: Int, _ v: SIMD4<Int32>) {
        let c = cols[o]
        if cols[o &+ 3] == c &+ 3 {  // four adjacent channels (rows, or one head's slice)
            UnsafeMutableRawPointer(y + (c &+ t &* rowStep)).storeBytes(of: SIMD4<Int16>(truncatingIfNeeded: v), as: SIMD4<Int16>.self)
        } else {
            store(t, o, v[0]); store(t, o &+ 1, v[1]); store(t, o &+ 2, v[2]); store(t, o &+ 3, v[3])
        }
    }
}

/// (E2) then (E3): `y = BatchNorm(Add(a, v))` for each output `v` of the kernel, the residual and the
/// norm folded into its epilogue; `y` is kept in 32 bits (the next residual reads it) and in 16 bits
/// (the next linear reads it), both `[rows, d]`-shaped with their own strides.
struct AddNormStore: OutputSink {
    let a: UnsafePointer<Int32>
    let d: Int
    let add: AddStep
    let g: UnsafePointer<Int32>
    let b: UnsafePointer<Int32>
    let norm: RequantStep
    let y32: UnsafeMutablePointer<Int32>
    let y16: UnsafeMutablePointer<Int16>
    let stride16: Int
    let add4: RequantStep4
    let norm4: RequantStep4

    init(a: UnsafePointer<Int32>, d: Int, add: AddStep, g: UnsafePointer<Int32>, b: UnsafePointer<Int32>, norm: RequantStep,
         y32: UnsafeMutablePointer<Int32>, y16: UnsafeMutablePointer<Int16>, stride16: Int) {
        self.a = a; self.d = d; self.add = add; self.g = g; self.b = b; self.norm = norm
        self.y32 = y32; self.y16 = y16; self.stride16 = stride16
        add4 = RequantStep4(add.shift)
        norm4 = RequantStep4(norm)
    }

    @inline(__always) func store(_ t: Int, _ o: Int, _ v: Int32) {
        let i = t &* d &+ o
        let r = add.centered(Int64(a[i]) &* add.m1 &+ Int64(v) &* add.m2)
        let n = norm.centered(b[o] &+ r &* g[o])
        y32[i] = n
        y16[t &* stride16 &+ o] = Int16(truncatingIfNeeded: n)
    }
    @inline(__always) func store4(_ t: Int, _ o: Int, _ v: SIMD4<Int32>) {
        let i = t &* d &+ o
        let av = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD4<Int32>.self)
        let acc = SIMD4<Double>(av) * SIMD4(repeating: Double(add.m1)) + SIMD4<Double>(v) * SIMD4(repeating: Double(add.m2))
        let r = add4.centered(product: acc)
        let gv = UnsafeRawPointer(g + o).loadUnaligned(as: SIMD4<Int32>.self)
        let bv = UnsafeRawPointer(b + o).loadUnaligned(as: SIMD4<Int32>.self)
        let n = norm4.centered(bv &+ r &* gv)
        UnsafeMutableRawPointer(y32 + i).storeBytes(of: n, as: SIMD4<Int32>.self)
        UnsafeMutableRawPointer(y16 + (t &* stride16 &+ o)).storeBytes(of: SIMD4<Int16>(truncatingIfNeeded: n), as: SIMD4<Int16>.self)
    }
}

/// (E2) with the constant positional encoding (`x2' m2` precomputed), kept in 32 bits and, when the
/// next linears take 16-bit operands, in 16 bits.
struct AddPEStore: OutputSink {
    let pe: UnsafePointer<Int64>
    let peDouble: UnsafePointer<Double>  // the same products as exact doubles (< 2^34)
    let d: Int
    let add: AddStep
    let y32: UnsafeMutablePointer<Int32>
    let y16: UnsafeMutablePointer<Int16>?
    let stride16: Int
    let add4: RequantStep4

    init(pe: UnsafePointer<Int64>, peDouble: UnsafePointer<Double>, d: Int, add: AddStep,
         y32: UnsafeMutablePointer<Int32>, y16: UnsafeMutablePointer<Int16>?, stride16: Int) {
        self.pe = pe; self.peDouble = peDouble; self.d = d; self.add = add
        self.y32 = y32; self.y16 = y16; self.stride16 = stride16
        add4 = RequantStep4(add.shift)
    }

    @inline(__always) func store4(_ t: Int, _ o: Int, _ v: SIMD4<Int32>) {
        let i = t &* d &+ o
        let acc = SIMD4<Double>(v) * SIMD4(repeating: Double(add.m1)) + UnsafeRawPointer(peDouble + i).loadUnaligned(as: SIMD4<Double>.self)
        let r = add4.centered(product: acc)
        UnsafeMutableRawPointer(y32 + i).storeBytes(of: r, as: SIMD4<Int32>.self)
        if let y16 {
            UnsafeMutableRawPointer(y16 + (t &* stride16 &+ o)).storeBytes(of: SIMD4<Int16>(truncatingIfNeeded: r), as: SIMD4<Int16>.self)
        }
    }
    @inline(__always) func store(_ t: Int, _ o: Int, _ v: Int32) {
        let i = t &* d &+ o
        let r = add.centered(Int64(v) &* add.m1 &+ pe[i])
        y32[i] = r
        if let y16 { y16[t &* stride16 &+ o] = Int16(truncatingIfNeeded: r) }
    }
}
