import CKernels

/// The integer model of docs/arithmetic.md run on the CPU, bit-identical to the numpy reference.
///
/// All weights are centered (`q - z`) once at load into contiguous buffers laid out for the inner
/// loops, and every scratch buffer is allocated at init: an inference allocates nothing. One engine
/// serves one task at a time (it owns its scratch).
public final class SoftwareEngine: InferenceEngine {
    public let kind = EngineKind.software
    public let model: QuantizedModel
    /// The matrix-product variant this engine runs (`KernelVariant.selected` unless given).
    public let kernel: KernelVariant
    /// Its C function; nil for the Swift kernel.
    private let fast: aiot_linear16_fn?
    private let fastAddNorm: aiot_add_norm_fn?
    private let fastSoftmax: aiot_softmax_fn?
    private let fastPacked: aiot_linear16p_fn?
    private let fastWide: aiot_linear16p_wide_fn?

    private let arena = Arena()
    private let window: Int, features: Int, dModel: Int, heads: Int, ffn: Int, horizon: Int
    private let inputZero: Int32, inputLo: Int32, inputHi: Int32, outputZero: Int32
    private let inputProj: LinearPlan
    private let peScaled: UnsafeMutablePointer<Int64>
    private let peScaledDouble: UnsafeMutablePointer<Double>
    private let peAdd: AddStep
    /// The PE add as the C residual+norm step with an identity norm (pe' m2 + v m1, then
    /// `REQ(0 + r * 1)` with m = 1, n = 0: r itself): `a` = the centered PE `[W, d]`.
    private let peCentered: UnsafeMutablePointer<Int32>
    private let peAsAddNorm: aiot_add_norm
    private let layers: [LayerPlan]
    private let poolReq: RequantStep
    private let head: LinearPlan
    private let skip: SkipPlan?                       // contract v2 only

    /// Windows one fused pass runs together (`inferBatch` splits larger batches); the row-wise
    /// scratch below holds `rowsCap = batchWindows * W` rows.
    public let batchWindows: Int
    private let rowsCap: Int

    // Scratch, [W, d] unless noted; "rows" = rowsCap.
    private let xIn: UnsafeMutablePointer<Int32>      // [W, F]
    private let x: UnsafeMutablePointer<Int32>       // [rows, d]
    private let q: UnsafeMutablePointer<Int32>
    private let k: UnsafeMutablePointer<Int32>
    private let v: UnsafeMutablePointer<Int32>
    private let ctx: UnsafeMutablePointer<Int32>
    private let tmp: UnsafeMutablePointer<Int32>
    private let res: UnsafeMutablePointer<Int32>
    private let norm1: UnsafeMutablePointer<Int32>   // [rows, d]
    private let ffn1: UnsafeMutablePointer<Int32>     // [W, 4d]
    private let narrow: UnsafeMutablePointer<Int16>   // [W, pad8(max(4d, F))]: 16-bit copy of a linear's input
    private let dh: Int, dhStride: Int, wStride: Int
    private let q16: UnsafeMutablePointer<Int16>      // [H, rows, dhStride]
    private let k16: UnsafeMutablePointer<Int16>      // [H, rows, dhStride]
    private let vT16: UnsafeMutablePointer<Int16>     // [H, dh, wStride]: values transposed per head
    private let scoreRow: UnsafeMutablePointer<Int32> // [W]
    private let probRow: UnsafeMutablePointer<Int16>  // [wStride], zero past W
    private let pool: UnsafeMutablePointer<Int32>     // [d]
    private let out: UnsafeMutablePointer<Int32>      // [P]

    // The fused path (`run`): each activation a linear reads is written once, in 16 bits, by the
    // kernel that produces it, in the layout its consumer reads. Each buffer has one layout, so its
    // zero padding is never overwritten.
    private let fused: Bool
    private let dStride: Int, fStride: Int, inStride: Int
    private let in16: UnsafeMutablePointer<Int16>     // [W, pad8(F)]
    private let x16: UnsafeMutablePointer<Int16>      // [rows, pad8(d)]
    private let ctx16: UnsafeMutablePointer<Int16>    // [rows, pad8(d)]
    private let norm16: UnsafeMutablePointer<Int16>   // [rows, pad8(d)]
    private let ffn16: UnsafeMutablePointer<Int16>    // [rows, pad8(4d)]
    private let zeros: UnsafeMutablePointer<Int32>    // [max(W, d)]: the attention products' zero bias
    private let identity: UnsafeMutablePointer<Int>   // cols[o] = o
    private let headCols: UnsafeMutablePointer<Int>   // q, k channel o -> h * rows * dhStride + o % dh
    private let vCols: UnsafeMutablePointer<Int>      // v channel o -> o * wStride (transposed)
    private let accs: UnsafeMutablePointer<Int32>     // [rows, max(4d, d)] and [W, W]: a product's accumulators
    private let scores: UnsafeMutablePointer<Int32>   // [W, W]: one head's scores, then its exp values
    private let probs16: UnsafeMutablePointer<Int16>  // [W, wStride]: one head's probabilities, zero past W
    // One head on a packed-product variant: k and v of a window written straight in the pair layout
    // the packed product reads as weights (scores = q k^T, context = probs v), zero past W and dh.
    private let kPairs: UnsafeMutablePointer<Int16>   // [dhStride / 2, pad8(W), 2]
    private let vPairs: UnsafeMutablePointer<Int16>   // [wStride / 2, pad8(dh), 2]

    public convenience init(model: QuantizedModel) {
        self.init(model: model, narrowOperands: true, kernel: .selected)
    }

    /// An engine running `kernel`, which must be supported here (`KernelVariant.resolve` checks
    /// a user's choice; `KernelVariant.supported` lists them).
    public convenience init(model: QuantizedModel, kernel: KernelVariant) {
        self.init(model: model, narrowOperands: true, kernel: kernel)
    }

    /// `narrowOperands: false` runs every linear layer on the 32-bit path, which production uses only
    /// for inputs wider than 15 bits; tests use it to prove both paths give the same integers.
    /// `batchWindows` (default 64) sizes the batched pass's scratch; tests pass small values to
    /// exercise the split of a larger batch.
    init(model: QuantizedModel, narrowOperands: Bool, kernel: KernelVariant = .selected, batchWindows: Int = 64) {
        precondition(batchWindows >= 1, "a pass holds at least one window")
        precondition(kernel.isSupported, "kernel variant \(kernel.rawValue) is not supported on this CPU; choose one with KernelVariant.resolve")
        self.model = model
        self.kernel = kernel
        fast = kernel.linear16
        fastAddNorm = kernel.addNorm
        fastSoftmax = kernel.softmax
        fastPacked = kernel.linear16p
        fastWide = kernel.linear16pWide
        let s = model.shape
        window = s.window; features = s.features; dModel = s.dModel; heads = s.heads; ffn = s.ffn; horizon = s.horizon
        inputZero = model.inputAct.zeroPoint
        inputLo = model.inputAct.lo
        inputHi = model.inputAct.hi
        outputZero = model.outputAct.zeroPoint

        let a = arena
        inputProj = LinearPlan(model.inputProj, input: model.inputAct, req: RequantStep(model.inputProjReq, model.inputProjAct), narrow: narrowOperands, pack: kernel.linear16p != nil, arena: a)
        peScaled = a.allocate(Int64.self, s.window * s.dModel)
        for i in 0..<(s.window * s.dModel) {
            peScaled[i] = (Int64(model.pe[i]) - Int64(model.peAct.zeroPoint)) * model.peAddReq.m2
        }
        peScaledDouble = a.allocate(Double.self, s.window * s.dModel)
        for i in 0..<(s.window * s.dModel) { peScaledDouble[i] = Double(peScaled[i]) }
        peAdd = AddStep(model.peAddReq, model.peAddAct)
        peCentered = a.allocate(Int32.self, s.window * s.dModel)
        for i in 0..<(s.window * s.dModel) { peCentered[i] = model.pe[i] - model.peAct.zeroPoint }
        let ones = a.allocate(Int32.self, s.dModel), zerosD = a.allocate(Int32.self, s.dModel)
        for c in 0..<s.dModel { ones[c] = 1 }
        let addRq = aiot_requant(peAdd.shift)
        var peStep = aiot_add_norm(m1: peAdd.m2, m2: peAdd.m1, add: addRq,
                                   norm: aiot_requant(m: 1, half: 0, n: 0, lo: addRq.lo, hi: addRq.hi, fast32: 0, cap32: 0), g: ones, b: zerosD, fast32: 0)
        var peMax: Int64 = 0
        for i in 0..<(s.window * s.dModel) { peMax = max(peMax, abs(Int64(peCentered[i]))) }
        aiot_add_norm_select32(&peStep, s.dModel, peMax, centeredMax(model.inputProjAct))
        peAsAddNorm = peStep
        var plans: [LayerPlan] = []
        var xAct = model.peAddAct
        for layer in model.layers {
            plans.append(LayerPlan(layer, input: xAct, dh: s.dModel / s.heads, window: s.window, narrow: narrowOperands, pack: kernel.linear16p != nil, arena: a))
            xAct = layer.norm2Act
        }
        layers = plans
        poolReq = RequantStep(model.poolReq, model.poolAct)
        // v1: the head writes `output`; v2: it writes `head`, and `output = Add(head, skip)`.
        head = LinearPlan(model.head, input: model.poolAct, req: RequantStep(model.headReq, model.skip?.headAct ?? model.outputAct), narrow: narrowOperands, arena: a)
        skip = model.skip.map { SkipPlan($0, input: model.inputAct, output: model.outputAct, inputCount: s.inputCount, narrow: narrowOperands, arena: a) }

        self.batchWindows = batchWindows
        let rowsCap = batchWindows * s.window
        self.rowsCap = rowsCap
        let wd = s.window * s.dModel
        xIn = a.allocate(Int32.self, s.window * s.features)
        x = a.allocate(Int32.self, rowsCap * s.dModel)
        q = a.allocate(Int32.self, wd)
        k = a.allocate(Int32.self, wd)
        v = a.allocate(Int32.self, wd)
        ctx = a.allocate(Int32.self, wd)
        tmp = a.allocate(Int32.self, wd)
        res = a.allocate(Int32.self, wd)
        norm1 = a.allocate(Int32.self, rowsCap * s.dModel)
        ffn1 = a.allocate(Int32.self, s.window * s.ffn)
        narrow = a.allocate(Int16.self, s.window * pad8(max(s.ffn, s.features)))
        dh = s.dModel / s.heads
        dhStride = pad8(dh)
        wStride = pad8(s.window)
        q16 = a.allocate(Int16.self, s.heads * rowsCap * dhStride)
        k16 = a.allocate(Int16.self, s.heads * rowsCap * dhStride)
        vT16 = a.allocate(Int16.self, s.heads * dh * wStride)
        scoreRow = a.allocate(Int32.self, s.window)
        probRow = a.allocate(Int16.self, wStride)
        pool = a.allocate(Int32.self, s.dModel)
        out = a.allocate(Int32.self, s.horizon)

        fused = narrowOperands
        dStride = pad8(s.dModel)
        fStride = pad8(s.ffn)
        inStride = pad8(s.features)
        in16 = a.allocate(Int16.self, s.window * pad8(s.features))
        x16 = a.allocate(Int16.self, rowsCap * pad8(s.dModel))
        ctx16 = a.allocate(Int16.self, rowsCap * pad8(s.dModel))
        norm16 = a.allocate(Int16.self, rowsCap * pad8(s.dModel))
        ffn16 = a.allocate(Int16.self, rowsCap * pad8(s.ffn))
        zeros = a.allocate(Int32.self, max(s.window, s.dModel))
        let widest = max(s.ffn, s.window, s.dModel, s.horizon)
        identity = a.allocate(Int.self, widest)
        for o in 0..<widest { identity[o] = o }
        accs = a.allocate(Int32.self, max(rowsCap * max(s.ffn, s.dModel), s.window * s.window))
        scores = a.allocate(Int32.self, s.window * s.window)
        probs16 = a.allocate(Int16.self, s.window * pad8(s.window))
        kPairs = a.allocate(Int16.self, dhStride * wStride)
        vPairs = a.allocate(Int16.self, wStride * dhStride)
        headCols = a.allocate(Int.self, s.dModel)
        vCols = a.allocate(Int.self, s.dModel)
        for o in 0..<s.dModel {
            headCols[o] = (o / dh) * rowsCap * dhStride + o % dh
            vCols[o] = o * wStride
        }
    }

    /// Each product the packed C variants run and each residual+norm step, by its name in the model
    /// file, and whether it runs in the 32-bit form (`aiot_requant_select32`, `aiot_add_norm_select32`
    /// proved it at load) or the 64-bit one. The same on every variant; only avx2 and avx512 use it.
    var thirtyTwoBitRequant: [(name: String, fast: Bool)] {
        var r: [(name: String, fast: Bool)] = [("input_proj", inputProj.rq.fast32 != 0), ("pe_add", peAsAddNorm.fast32 != 0)]
        for (i, l) in layers.enumerated() {
            let p = "layers.\(i)."
            r += [(p + "q", l.q.rq.fast32 != 0), (p + "k", l.k.rq.fast32 != 0), (p + "v", l.v.rq.fast32 != 0),
                  (p + "scores", l.scoresRq.fast32 != 0), (p + "context", l.contextRq.fast32 != 0), (p + "o", l.o.rq.fast32 != 0),
                  (p + "ffn1", l.ffn1.rqRelu.fast32 != 0), (p + "ffn2", l.ffn2.rq.fast32 != 0),
                  (p + "res1+norm1", l.addNorm1.fast32 != 0), (p + "res2+norm2", l.addNorm2.fast32 != 0)]
        }
        return r
    }

    /// One window `[W, F]` of quantized inputs to `P` quantized outputs.
    public func infer(_ input: UnsafeBufferPointer<Int32>, into output: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) {
        guard input.count == window * features else {
            throw InferenceError(.shape, "input holds \(input.count) integers but the model takes a window of \(window) x \(features) = \(window * features)")
        }
        guard output.count == horizon else {
            throw InferenceError(.shape, "output has room for \(output.count) integers but the model forecasts \(horizon)")
        }
        try checkRange(input.baseAddress!, window: nil)
        run(input.baseAddress!, output.baseAddress!, count: 1)
    }

    /// `count` windows back to back (`[count, W, F]`) to `[count, P]` outputs: one call for a batch,
    /// same results as `count` calls of `infer`, run `batchWindows` windows per pass (the row-wise
    /// layers over all of a pass's rows at once, see `runFused`). Every window is checked before any is run, so a
    /// refused batch leaves `outputs` untouched.
    public func inferBatch(_ inputs: UnsafeBufferPointer<Int32>, count: Int, into outputs: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) {
        let n = window * features
        guard count >= 0, inputs.count == count * n else {
            throw InferenceError(.shape, "batch input holds \(inputs.count) integers but \(count) windows of \(window) x \(features) need \(count * n)")
        }
        guard outputs.count == count * horizon else {
            throw InferenceError(.shape, "batch output has room for \(outputs.count) integers but \(count) forecasts need \(count * horizon)")
        }
        guard count > 0 else { return }
        let inBase = inputs.baseAddress!
        let outBase = outputs.baseAddress!
        for b in 0..<count { try checkRange(inBase + b * n, window: b) }
        var b = 0
        while b < count {
            let c = min(batchWindows, count - b)
            run(inBase + b * n, outBase + b * horizon, count: c)
            b += c
        }
    }

    @inline(__always)
    private func run(_ input: UnsafePointer<Int32>, _ output: UnsafeMutablePointer<Int32>, count: Int) {
        if fused {
            runFused(input, output, count: count)
        } else {
            for b in 0..<count { runLayered(input + b * window * features, output + b * horizon) }
        }
    }

    /// §5 on `count` (<= `batchWindows`) range-checked windows, every elementwise step folded into
    /// the epilogue of the matrix product before it (PE add into the input projection; residual +
    /// norm into o and ffn2) and every 16-bit operand written once, where its consumer reads it.
    ///
    /// The row-wise layers (q, k, o, ffn1, ffn2) run over all `count * W` rows as one product, so
    /// a batch pays each call's setup and each weight panel's loads once; what mixes rows within a
    /// window (attention, with v in its transposed layout, pooling, the head) and the input
    /// projection (whose PE add is indexed by the row within the window) run window by window.
    /// Every output row depends only on its own input row, so the integers are those of `count`
    /// single runs.
    private func runFused(_ input: UnsafePointer<Int32>, _ output: UnsafeMutablePointer<Int32>, count nb: Int) {
        let w = window, d = dModel, rows = nb &* w
        // 1-2: input projection with the positional encoding in its epilogue, window by window.
        let xNarrow = layers.first.map { $0.q.weight16 != nil } ?? false
        for b in 0..<nb {
            let inp = input + b &* w &* features
            let peSink = AddPEStore(pe: peScaled, peDouble: peScaledDouble, d: d, add: peAdd, y32: x + b &* w &* d,
                                    y16: xNarrow ? x16 + b &* w &* dStride : nil, stride16: dStride)
            if let w16 = inputProj.weight16 {
                for t in 0..<w {
                    for f in 0..<features { in16[t &* inStride &+ f] = Int16(truncatingIfNeeded: inp[t &* features &+ f] &- inputZero) }
                }
                if xNarrow, let fastAddNorm, let fastPacked, let wp = inputProj.packed {
                    // All in C: the product into accs, then the PE add (an add+norm with identity norm).
                    var rq = inputProj.rq
                    var p = peAsAddNorm
                    fastPacked(in16, w, inStride, wp, inputProj.bias, d, &rq, accs, nil, 0, 1, Int32(AIOT_Y16_PLAIN))
                    fastAddNorm(accs, peCentered, w, d, &p, x + b &* w &* d, x16 + b &* w &* dStride, dStride)
                    continue
                }
                Kernels.linear16(in16, rows: w, stride: inStride, w16, inputProj.bias, outputs: d, inputProj.req, relu: false, scratch: accs, fast: fast, packed: packed(inputProj), peSink)
            } else if let w32 = inputProj.weight32 {
                for i in 0..<(w * features) { xIn[i] = inp[i] &- inputZero }
                if let fastWide, let fastAddNorm, let wp = inputProj.widePacked {
                    // All in C, as for a narrow input: the wide product into accs, then the PE add.
                    // (x16 holds truncated copies when x is wider than 16 bits; the first layer
                    // then reads x, not x16.)
                    var rq = inputProj.rq
                    var p = peAsAddNorm
                    fastWide(xIn, w, features, inputProj.stride, wp, inputProj.bias, d, &rq, accs, nil, 0, 1, Int32(AIOT_Y16_PLAIN))
                    fastAddNorm(accs, peCentered, w, d, &p, x + b &* w &* d, x16 + b &* w &* dStride, dStride)
                    continue
                }
                Kernels.linear(xIn, rows: w, inputs: features, w32, inputProj.bias, outputs: d, inputProj.req, relu: false, peSink)
            }
        }
        for layer in layers {
            // 3: q, k over all rows straight into per-head rows ([H, rows, dhStride]).
            let qSink = Store16(y: q16, cols: headCols, rowStep: dhStride)
            let kSink = Store16(y: k16, cols: headCols, rowStep: dhStride)
            if let wq = layer.q.weight16, let wk = layer.k.weight16 {
                // One head: q and k rows are plain [rows, dhStride] rows, which the packed C product
                // writes in 16 bits itself (k not at all when `attend` writes it in pairs).
                if heads == 1, packed16(x16, rows: rows, stride: dStride, layer.q, relu: false, into: q16, rowStride: dhStride),
                   pairAttention(layer) || packed16(x16, rows: rows, stride: dStride, layer.k, relu: false, into: k16, rowStride: dhStride) {
                } else {
                    Kernels.linear16(x16, rows: rows, stride: dStride, wq, layer.q.bias, outputs: d, layer.q.req, relu: false, scratch: accs, fast: fast, packed: packed(layer.q), qSink)
                    Kernels.linear16(x16, rows: rows, stride: dStride, wk, layer.k.bias, outputs: d, layer.k.req, relu: false, scratch: accs, fast: fast, packed: packed(layer.k), kSink)
                }
            } else if let wq = layer.q.weight32, let wk = layer.k.weight32 {
                if wideAttention(layer), let fastWide, let wqp = layer.q.widePacked {
                    // q straight into its 16-bit rows; k and v in `attend`, in the pair layouts.
                    var rq = layer.q.rq
                    fastWide(x, rows, d, layer.q.stride, wqp, layer.q.bias, d, &rq, accs, q16, dhStride, 1, Int32(AIOT_Y16_PLAIN))
                } else if !wideProduct(x, rows: rows, layer.q, qSink) {
                    Kernels.linear(x, rows: rows, inputs: d, wq, layer.q.bias, outputs: d, layer.q.req, relu: false, qSink)
                }
                if !wideAttention(layer), !wideProduct(x, rows: rows, layer.k, kSink) {
                    Kernels.linear(x, rows: rows, inputs: d, wk, layer.k.bias, outputs: d, layer.k.req, relu: false, kSink)
                }
            }
            for b in 0..<nb { attend(layer, window: b) }
            // 7-9: o with res1 and norm1 in its epilogue; 10: ffn1 (ReLU) in 16 bits; 11-13: ffn2
            // with res2 and norm2 in its epilogue, giving the next x; all over every row.
            guard let wo = layer.o.weight16, let w1 = layer.ffn1.weight16, let w2 = layer.ffn2.weight16 else {
                preconditionFailure("internal activations have at most 8 bits, so o, ffn1 and ffn2 take 16-bit operands")
            }
            linearAddNorm(ctx16, rows: rows, stride: dStride, layer.o, wo, layer.addNorm1,
                             AddNormStore(a: x, d: d, add: layer.res1, g: layer.norm1Weight, b: layer.norm1Bias, norm: layer.norm1Req,
                                          y32: norm1, y16: norm16, stride16: dStride))
            if !packed16(norm16, rows: rows, stride: dStride, layer.ffn1, relu: true, into: ffn16, rowStride: fStride) {
                Kernels.linear16(norm16, rows: rows, stride: dStride, w1, layer.ffn1.bias, outputs: ffn, layer.ffn1.req, relu: true, scratch: accs, fast: fast, packed: packed(layer.ffn1),
                                 Store16(y: ffn16, cols: identity, rowStep: fStride))
            }
            linearAddNorm(ffn16, rows: rows, stride: fStride, layer.ffn2, w2, layer.addNorm2,
                             AddNormStore(a: norm1, d: d, add: layer.res2, g: layer.norm2Weight, b: layer.norm2Bias, norm: layer.norm2Req,
                                          y32: x, y16: x16, stride16: dStride))
        }
        // 14-15: pooling and the head, window by window.
        for b in 0..<nb {
            Kernels.averagePool(x + b &* w &* d, rows: w, channels: d, poolReq, pool)
            head.prepare(pool, rows: 1, narrow: narrow)
            head.apply(pool, rows: 1, narrow: narrow, relu: false, into: out)
            let o = output + b &* horizon
            if let skip {
                skip.run(input + b &* w &* features, inputZero: inputZero, head: out, outputZero: outputZero, into: o)
            } else {
                for p in 0..<horizon { o[p] = out[p] &+ outputZero }
            }
        }
    }

    /// (E1) on a 16-bit input (centered |x'| <= 2^16 - 1, too wide for the 16-bit product) through
    /// the wide packed C product (x' split into 8-bit halves in C) with an identity requantization
    /// (m = 1, n = 0: the raw accumulators, which fit Int32 by the loader's bound), then the usual
    /// epilogue into `sink`: for layouts the C product cannot write (several heads). False (nothing
    /// done) without a wide product.
    @inline(__always)
    private func wideProduct<S: OutputSink>(_ x: UnsafePointer<Int32>, rows: Int, _ l: LinearPlan, _ sink: S) -> Bool {
        guard let fastWide, let wp = l.widePacked else { return false }
        let j = l.outputs
        var id = aiot_requant(m: 1, half: 0, n: 0, lo: Int32.min, hi: Int32.max, fast32: 0, cap32: 0)
        fastWide(x, rows, l.inputs, l.stride, wp, l.bias, j, &id, accs, nil, 0, 1, Int32(AIOT_Y16_PLAIN))
        Kernels.epilogue(accs, rows: rows, outputs: j, l.req, floor: Int32.min, sink)
        return true
    }

    /// Whether `attend` runs `layer`'s attention as packed products over the pair layouts.
    @inline(__always)
    private func pairAttention(_ layer: LayerPlan) -> Bool {
        (heads == 1 && fastPacked != nil && fastSoftmax != nil && layer.k.packed != nil && layer.v.packed != nil) || wideAttention(layer)
    }

    /// The same on a 16-bit input (a 16-bit PE add): q, k and v through the wide packed product.
    @inline(__always)
    private func wideAttention(_ layer: LayerPlan) -> Bool {
        heads == 1 && fastPacked != nil && fastWide != nil && fastSoftmax != nil
            && layer.q.widePacked != nil && layer.k.widePacked != nil && layer.v.widePacked != nil
    }

    /// 3 (v) and 4-6 for window `b` of the pass: v into per-head transposed rows, then per head all
    /// scores as one product with the keys as weights, the softmax row by row, and all contexts as
    /// one product with the transposed values as weights, into the window's rows of ctx16.
    @inline(__always)
    private func attend(_ layer: LayerPlan, window b: Int) {
        let w = window, d = dModel
        let xb16 = x16 + b &* w &* dStride
        if pairAttention(layer), let fastPacked, let fastSoftmax {
            // All four products packed: k, v of this window into the pair layouts, then scores
            // with k as weights and contexts with v as weights.
            var rq = layer.k.rq
            if let kp = layer.k.packed, let vp = layer.v.packed {
                fastPacked(xb16, w, dStride, kp, layer.k.bias, d, &rq, accs, kPairs, 2, 2 &* wStride, Int32(AIOT_Y16_COL_PAIRS))
                rq = layer.v.rq
                fastPacked(xb16, w, dStride, vp, layer.v.bias, d, &rq, accs, vPairs, 2 &* dhStride, 2, Int32(AIOT_Y16_ROW_PAIRS))
            } else if let fastWide, let kp = layer.k.widePacked, let vp = layer.v.widePacked {
                // A 16-bit x: this window's int32 rows.
                let xb = x + b &* w &* d, st = layer.k.stride
                fastWide(xb, w, d, st, kp, layer.k.bias, d, &rq, accs, kPairs, 2, 2 &* wStride, Int32(AIOT_Y16_COL_PAIRS))
                rq = layer.v.rq
                fastWide(xb, w, d, st, vp, layer.v.bias, d, &rq, accs, vPairs, 2 &* dhStride, 2, Int32(AIOT_Y16_ROW_PAIRS))
            }
            rq = layer.scoresRq
            fastPacked(q16 + b &* w &* dhStride, w, dhStride, kPairs, zeros, w, &rq, scores, nil, 0, 1, Int32(AIOT_Y16_PLAIN))
            fastSoftmax(scores, w, layer.exp, layer.expNonzero, (Int64(1) << layer.probsBits) - 1, probs16, wStride)
            rq = layer.contextRq
            fastPacked(probs16, w, wStride, vPairs, zeros, d, &rq, accs, ctx16 + b &* w &* dStride, dStride, 1, Int32(AIOT_Y16_PLAIN))
            return
        }
        let vSink = Store16(y: vT16, cols: vCols, rowStep: 1)
        if let wv = layer.v.weight16 {
            // v transposed ([dh, wStride] per head; one head: channel o at row o).
            if !(heads == 1 && packed16(xb16, rows: w, stride: dStride, layer.v, relu: false, into: vT16, rowStride: 1, columnStride: wStride)) {
                Kernels.linear16(xb16, rows: w, stride: dStride, wv, layer.v.bias, outputs: d, layer.v.req, relu: false, scratch: accs, fast: fast, packed: packed(layer.v), vSink)
            }
        } else if let wv = layer.v.weight32 {
            if !wideProduct(x + b &* w &* d, rows: w, layer.v, vSink) {
                Kernels.linear(x + b &* w &* d, rows: w, inputs: d, wv, layer.v.bias, outputs: d, layer.v.req, relu: false, vSink)
            }
        }
        let range = (Int64(1) << layer.probsBits) - 1
        let probsStep = RequantStep(m: 1, n: 30, zeroPoint: contractLo(layer.probsBits), bits: layer.probsBits)
        let probs4 = RequantStep4(probsStep)
        for h in 0..<heads {
            let qh = q16 + (h &* rowsCap &+ b &* w) &* dhStride, kh = k16 + (h &* rowsCap &+ b &* w) &* dhStride
            let vh = vT16 + (h &* dh &* wStride)
            if let fast, let fastSoftmax {
                var rq = aiot_requant(layer.scoresReq)
                fast(qh, w, dhStride, kh, zeros, w, &rq, scores)
                fastSoftmax(scores, w, layer.exp, layer.expNonzero, range, probs16, wStride)
            } else {
                Kernels.linear16(qh, rows: w, stride: dhStride, kh, zeros, outputs: w, layer.scoresReq, relu: false, scratch: accs, fast: fast,
                                 Store32(y: scores, stride: w))
                for i in 0..<w {
                    let row = scores + i &* w, prow = probs16 + i &* wStride
                    var mx = Int32.min
                    for j in 0..<w { mx = max(mx, row[j]) }
                    var den: Int64 = 0
                    for j in 0..<w {
                        let e = layer.exp[Int(mx &- row[j])]
                        row[j] = e
                        den &+= Int64(e)
                    }
                    let inv = (range << 30) / den
                    let invD = SIMD4<Double>(repeating: Double(inv))  // e * inv < 2^38: exact
                    var j = 0
                    while j &+ 4 <= w {
                        let e4 = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD4<Int32>.self)
                        let p = probs4.centered(product: SIMD4<Double>(e4) * invD)
                        UnsafeMutableRawPointer(prow + j).storeBytes(of: SIMD4<Int16>(truncatingIfNeeded: p), as: SIMD4<Int16>.self)
                        j &+= 4
                    }
                    while j < w {
                        prow[j] = Int16(truncatingIfNeeded: probsStep.centered(product: Int64(row[j]) &* inv))
                        j &+= 1
                    }
                }
            }
            Kernels.linear16(probs16, rows: w, stride: wStride, vh, zeros, outputs: dh, layer.contextReq, relu: false, scratch: accs, fast: fast,
                             Store16(y: ctx16 + b &* w &* dStride + h &* dh, cols: identity, rowStep: dStride))
        }
    }

    /// (E1) through the packed C product straight into 16-bit rows `[rows, rowStride]` of `y16`; false
    /// (nothing done) when this engine's variant or `l` has no packed form.
    @inline(__always)
    private func packed16(_ x16: UnsafePointer<Int16>, rows: Int, stride: Int, _ l: LinearPlan, relu: Bool,
                          into y16: UnsafeMutablePointer<Int16>, rowStride: Int, columnStride: Int = 1) -> Bool {
        guard let fastPacked, let wp = l.packed else { return false }
        var rq = relu ? l.rqRelu : l.rq
        fastPacked(x16, rows, stride, wp, l.bias, l.outputs, &rq, accs, y16, rowStride, columnStride, Int32(AIOT_Y16_PLAIN))
        return true
    }

    /// The packed-weight product and `l`'s packed weights, when both exist.
    @inline(__always)
    private func packed(_ l: LinearPlan) -> (aiot_linear16p_fn, UnsafePointer<Int16>)? {
        guard let fastPacked, let wp = l.packed else { return nil }
        return (fastPacked, UnsafePointer(wp))
    }

    /// (E1) into `[W, d]` followed by the residual and the norm `sink` describes: on a C variant
    /// both in C (the product into `accs`, then the elementwise step), else the Swift kernel with
    /// the step in its epilogue.
    @inline(__always)
    private func linearAddNorm(_ x16: UnsafePointer<Int16>, rows: Int, stride: Int, _ l: LinearPlan, _ w16: UnsafePointer<Int16>,
                               _ step: aiot_add_norm, _ sink: AddNormStore) {
        if let fast, let fastAddNorm {
            var rq = l.rq
            if let fastPacked, let wp = l.packed {
                fastPacked(x16, rows, stride, wp, l.bias, dModel, &rq, accs, nil, 0, 1, Int32(AIOT_Y16_PLAIN))
            } else {
                fast(x16, rows, stride, w16, l.bias, dModel, &rq, accs)
            }
            var p = step  // the same step as `sink`, prepared at load
            fastAddNorm(accs, sink.a, rows, dModel, &p, sink.y32, sink.y16, sink.stride16)
        } else {
            Kernels.linear16(x16, rows: rows, stride: stride, w16, l.bias, outputs: dModel, l.req, relu: false, scratch: accs, sink)
        }
    }

    /// Splits q, k (`[W, d]`) into per-head 16-bit rows and v into per-head transposed rows, all
    /// zero-padded to multiples of 8. Every value fits: q, k, v are internal activations (<= 8 bits).
    @inline(__always)
    private func packHeads() {
        for h in 0..<heads {
            let c0 = h * dh
            let qh = q16 + h * window * dhStride, kh = k16 + h * window * dhStride, vh = vT16 + h * dh * wStride
            for t in 0..<window {
                for c in 0..<dh {
                    qh[t * dhStride + c] = Int16(truncatingIfNeeded: q[t * dModel + c0 + c])
                    kh[t * dhStride + c] = Int16(truncatingIfNeeded: k[t * dModel + c0 + c])
                    vh[c * wStride + t] = Int16(truncatingIfNeeded: v[t * dModel + c0 + c])
                }
            }
        }
    }

    /// Every input integer must lie on the model's input grid (an engine never saturates its input).
    private func checkRange(_ input: UnsafePointer<Int32>, window b: Int?) throws(InferenceError) {
        for i in 0..<(window * features) {
            let qv = input[i]
            guard qv >= inputLo, qv <= inputHi else {
                let whereText = b.map { "window \($0), " } ?? ""
                throw InferenceError(.inputRange, "\(whereText)input integer \(i) is \(qv), outside \(inputLo) ... \(inputHi) of the model's \(model.inputAct.bits)-bit input; quantize readings with QuantizedModel.quantizeInput")
            }
        }
    }

    /// §5 on one range-checked window, one layer at a time through Int32 buffers: the path that
    /// `narrowOperands: false` selects, so tests can hold the fused path against it.
    private func runLayered(_ input: UnsafePointer<Int32>, _ output: UnsafeMutablePointer<Int32>) {
        for i in 0..<(window * features) { xIn[i] = input[i] &- inputZero }
        let wd = window * dModel
        // 1-2: input projection and positional encoding.
        inputProj.prepare(xIn, rows: window, narrow: narrow)
        inputProj.apply(xIn, rows: window, narrow: narrow, relu: false, into: tmp)
        Kernels.addPrescaled(tmp, peScaled, count: wd, peAdd, x)
        // 3-13 per layer.
        for layer in layers {
            // q, k and v read the same input: narrow it once.
            layer.q.prepare(x, rows: window, narrow: narrow)
            layer.q.apply(x, rows: window, narrow: narrow, relu: false, into: q)
            layer.k.apply(x, rows: window, narrow: narrow, relu: false, into: k)
            layer.v.apply(x, rows: window, narrow: narrow, relu: false, into: v)
            packHeads()
            for h in 0..<heads {
                Kernels.attentionHead(
                    q: q16 + h * window * dhStride, k: k16 + h * window * dhStride, vT: vT16 + h * dh * wStride,
                    window: window, dh: dh, dhStride: dhStride, wStride: wStride, dModel: dModel, c0: h * dh,
                    scoresReq: layer.scoresReq, exp: layer.exp, probsBits: layer.probsBits, contextReq: layer.contextReq,
                    scoreRow: scoreRow, probRow: probRow, ctx: ctx
                )
            }
            layer.o.prepare(ctx, rows: window, narrow: narrow)
            layer.o.apply(ctx, rows: window, narrow: narrow, relu: false, into: tmp)
            Kernels.add(x, tmp, count: wd, layer.res1, res)
            Kernels.batchNorm(res, rows: window, channels: dModel, layer.norm1Weight, layer.norm1Bias, layer.norm1Req, norm1)
            layer.ffn1.prepare(norm1, rows: window, narrow: narrow)
            layer.ffn1.apply(norm1, rows: window, narrow: narrow, relu: true, into: ffn1)
            layer.ffn2.prepare(ffn1, rows: window, narrow: narrow)
            layer.ffn2.apply(ffn1, rows: window, narrow: narrow, relu: false, into: tmp)
            Kernels.add(norm1, tmp, count: wd, layer.res2, res)
            Kernels.batchNorm(res, rows: window, channels: dModel, layer.norm2Weight, layer.norm2Bias, layer.norm2Req, x)
        }
        // 14-15: pooling and the head.
        Kernels.averagePool(x, rows: window, channels: dModel, poolReq, pool)
        head.prepare(pool, rows: 1, narrow: narrow)
        head.apply(pool, rows: 1, narrow: narrow, relu: false, into: out)
        if let skip {
            skip.run(input, inputZero: inputZero, head: out, outputZero: outputZero, into: output)
        } else {
            for p in 0..<horizon { output[p] = out[p] &+ outputZero }
        }
    }
}
