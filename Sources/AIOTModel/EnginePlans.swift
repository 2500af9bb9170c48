import CKernels

// The software engine's load-time preparation: its buffer arena and the layers with centered,
// padded and packed weights (SoftwareEngine.swift runs them).

/// `n` rounded up to a multiple of 8, the 16-bit lane count of `Kernels.dot16`.
@inline(__always)
func pad8(_ n: Int) -> Int { (n + 7) & ~7 }

/// Owns the engine's buffers; freed with the engine.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []

    func allocate<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1) * MemoryLayout<T>.stride)
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    deinit {
        for b in blocks { b.deallocate() }
    }
}

/// A linear layer with centered weights `[J, K]`; 16-bit and zero-padded to `[J, pad8(K)]` when its
/// input's centered values fit Int16, else 32-bit.
struct LinearPlan {
    let inputs: Int
    let outputs: Int
    let stride: Int
    let bias: UnsafeMutablePointer<Int32>
    let weight32: UnsafeMutablePointer<Int32>?
    let weight16: UnsafeMutablePointer<Int16>?
    /// `weight16` in the C kernels' pair layout (`aiot_pack_pairs`), when the engine's variant has
    /// a packed-weight product.
    let packed: UnsafeMutablePointer<Int16>?
    /// On the 32-bit path (a 16-bit input): the weights in the same pair layout, for the wide packed
    /// product, which splits the input into 8-bit halves (`aiot_linear16p_wide_fn`).
    let widePacked: UnsafeMutablePointer<Int16>?
    let req: RequantStep
    /// The bound on |acc| this layer's weights, bias and input range allow (§4 E1 with the actual
    /// weights: max over outputs of sum |w'| max|x'| + |B|), and the C kernels' requantization with
    /// the 32-bit form selected where that bound proves it exact (`rqRelu`: with the ReLU floor).
    let accBound: Int64
    let rq: aiot_requant
    let rqRelu: aiot_requant

    init(_ l: IntegerLinear, input: QuantParams, req: RequantStep, narrow: Bool, pack: Bool = false, arena: Arena) {
        inputs = l.inputs
        outputs = l.outputs
        stride = pad8(l.inputs)
        self.req = req
        let xMax = centeredMax(input)
        var bound: Int64 = 0
        for j in 0..<l.outputs {
            var s = abs(Int64(l.bias[j]))
            for k in 0..<l.inputs { s += abs(Int64(l.weight[j * l.inputs + k]) - Int64(l.weightParams.zeroPoint)) * xMax }
            bound = max(bound, s)
        }
        accBound = bound
        rq = aiot_requant(req, accBound: bound)
        rqRelu = aiot_requant(req, floor: 0, accBound: bound)
        bias = arena.allocate(Int32.self, l.outputs)
        for j in 0..<l.outputs { bias[j] = l.bias[j] }
        let zw = l.weightParams.zeroPoint
        // Centered input |x'| <= 2^b - 1 fits Int16 for b <= 15; weights are at most 8 bits.
        if narrow && input.bits <= 15 {
            let w16 = arena.allocate(Int16.self, l.outputs * stride)  // zeroed: padding adds nothing
            for j in 0..<l.outputs {
                for k in 0..<l.inputs { w16[j * stride + k] = Int16(l.weight[j * l.inputs + k] - zw) }
            }
            weight16 = w16
            weight32 = nil
            if pack {
                let wp = arena.allocate(Int16.self, (stride / 2) * pad8(l.outputs) * 2)  // zeroed past J
                aiot_pack_pairs(w16, l.outputs, stride, wp)
                packed = wp
            } else {
                packed = nil
            }
            widePacked = nil
        } else {
            let w32 = arena.allocate(Int32.self, l.outputs * l.inputs)
            for i in 0..<(l.outputs * l.inputs) { w32[i] = l.weight[i] - zw }
            weight32 = w32
            weight16 = nil
            packed = nil
            if narrow && pack && input.bits <= 16 {
                // Weights have at most 8 bits, so their centered values fit Int16; the split of a
                // centered input into 16-bit halves needs |x'| < 2^16.
                let w16 = arena.allocate(Int16.self, l.outputs * stride)
                for j in 0..<l.outputs {
                    for k in 0..<l.inputs { w16[j * stride + k] = Int16(l.weight[j * l.inputs + k] - zw) }
                }
                let wp = arena.allocate(Int16.self, (stride / 2) * pad8(l.outputs) * 2)
                aiot_pack_pairs(w16, l.outputs, stride, wp)
                widePacked = wp
            } else {
                widePacked = nil
            }
        }
    }

    /// Writes the 16-bit padded copy of `x` that `apply` reads (no-op on the 32-bit path). Linears
    /// that share an input and its width share one `prepare`.
    @inline(__always)
    func prepare(_ x: UnsafePointer<Int32>, rows: Int, narrow: UnsafeMutablePointer<Int16>) {
        if weight16 != nil { Kernels.pack16(x, rows: rows, cols: inputs, stride: stride, narrow) }
    }

    /// `y = Linear(x)` (E1), with (E4) when `relu`; on the 16-bit path `narrow` must hold `prepare(x)`.
    @inline(__always)
    func apply(_ x: UnsafePointer<Int32>, rows: Int, narrow: UnsafeMutablePointer<Int16>, relu: Bool, into y: UnsafeMutablePointer<Int32>) {
        if let w16 = weight16 {
            Kernels.linear16(narrow, rows: rows, stride: stride, w16, bias, outputs: outputs, req, relu: relu, y)
        } else if let w32 = weight32 {
            Kernels.linear(x, rows: rows, inputs: inputs, w32, bias, outputs: outputs, req, relu: relu, y)
        }
    }
}

/// One encoder layer ready to run.
struct LayerPlan {
    let q: LinearPlan, k: LinearPlan, v: LinearPlan, o: LinearPlan, ffn1: LinearPlan, ffn2: LinearPlan
    let norm1Weight: UnsafeMutablePointer<Int32>, norm1Bias: UnsafeMutablePointer<Int32>, norm1Req: RequantStep
    let norm2Weight: UnsafeMutablePointer<Int32>, norm2Bias: UnsafeMutablePointer<Int32>, norm2Req: RequantStep
    /// The exp table, zero-padded to a multiple of 32 entries past its last nonzero one, which is
    /// `exp[expNonzero - 1]` (the C softmax's contract).
    let exp: UnsafeMutablePointer<Int32>
    let expNonzero: Int
    let scoresReq: RequantStep
    let contextReq: RequantStep
    /// The C kernels' scores and context requantizations, 32-bit form where proved: |acc| <= dh
    /// max|q'| max|k'| (E5) and <= W R max|v'| (E7).
    let scoresRq: aiot_requant
    let contextRq: aiot_requant
    let probsBits: Int
    let res1: AddStep
    let res2: AddStep
    /// The C kernels' residual+norm steps after o and ffn2, the 32-bit form selected where proved
    /// (`aiot_add_norm_select32`; operand ranges: x and o's, norm1's and ffn2's).
    let addNorm1: aiot_add_norm
    let addNorm2: aiot_add_norm

    init(_ l: EncoderLayer, input x: QuantParams, dh: Int, window: Int, narrow: Bool, pack: Bool = false, arena: Arena) {
        q = LinearPlan(l.q, input: x, req: RequantStep(l.qReq, l.qAct), narrow: narrow, pack: pack, arena: arena)
        k = LinearPlan(l.k, input: x, req: RequantStep(l.kReq, l.kAct), narrow: narrow, pack: pack, arena: arena)
        v = LinearPlan(l.v, input: x, req: RequantStep(l.vReq, l.vAct), narrow: narrow, pack: pack, arena: arena)
        o = LinearPlan(l.o, input: l.contextAct, req: RequantStep(l.oReq, l.oAct), narrow: narrow, pack: pack, arena: arena)
        ffn1 = LinearPlan(l.ffn1, input: l.norm1Act, req: RequantStep(l.ffn1Req, l.ffn1Act), narrow: narrow, pack: pack, arena: arena)
        ffn2 = LinearPlan(l.ffn2, input: l.ffn1Act, req: RequantStep(l.ffn2Req, l.ffn2Act), narrow: narrow, pack: pack, arena: arena)
        func centered(_ t: IntegerLinear) -> (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) {
            let w = arena.allocate(Int32.self, t.weight.count)
            let b = arena.allocate(Int32.self, t.bias.count)
            for i in 0..<t.weight.count { w[i] = t.weight[i] - t.weightParams.zeroPoint }
            for i in 0..<t.bias.count { b[i] = t.bias[i] }
            return (w, b)
        }
        (norm1Weight, norm1Bias) = centered(l.norm1)
        (norm2Weight, norm2Bias) = centered(l.norm2)
        norm1Req = RequantStep(l.norm1Req, l.norm1Act)
        norm2Req = RequantStep(l.norm2Req, l.norm2Act)
        // The loader proved the table non-increasing from exp[0] = 2^15 and non-negative.
        let nonzero = (l.exp.lastIndex { $0 != 0 } ?? 0) + 1
        let padded = max(l.exp.count, (nonzero + 31) / 32 * 32)
        exp = arena.allocate(Int32.self, padded)
        for i in 0..<padded { exp[i] = i < l.exp.count ? l.exp[i] : 0 }
        expNonzero = nonzero
        scoresReq = RequantStep(l.scoresReq, l.scoresAct)
        contextReq = RequantStep(l.contextReq, l.contextAct)
        probsBits = l.probsAct.bits
        scoresRq = aiot_requant(scoresReq, accBound: Int64(dh) * centeredMax(l.qAct) * centeredMax(l.kAct))
        contextRq = aiot_requant(contextReq, accBound: Int64(window) * ((Int64(1) << probsBits) - 1) * centeredMax(l.vAct))
        res1 = AddStep(l.res1Req, l.res1Act)
        res2 = AddStep(l.res2Req, l.res2Act)
        var p1 = aiot_add_norm(res1, g: norm1Weight, b: norm1Bias, norm: norm1Req)
        aiot_add_norm_select32(&p1, l.norm1.outputs, centeredMax(x), centeredMax(l.oAct))
        addNorm1 = p1
        var p2 = aiot_add_norm(res2, g: norm2Weight, b: norm2Bias, norm: norm2Req)
        aiot_add_norm_select32(&p2, l.norm2.outputs, centeredMax(l.norm1Act), centeredMax(l.ffn2Act))
        addNorm2 = p2
    }
}
