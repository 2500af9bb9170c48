// What the accelerator inside the board model computes: the integer network of docs/arithmetic.md
// §5, read from a parameter image exactly as the RTL reads it. Once the software engine is on main,
// the board model can use it instead (see `BoardModel.computeFactory`); both must agree bit for bit.
import AIOTModel

/// Computes one inference from an input window; sets `cycles` to the modelled accelerator cycles.
public protocol AcceleratorCompute: AnyObject {
    func run(_ input: [Int32]) -> [Int32]
    var cycles: Int { get }
}

/// A direct transcription of docs/arithmetic.md §4-5 over a `ParameterSet`.
public final class ParameterSetCompute: AcceleratorCompute {
    let p: ParameterSet
    public private(set) var cycles: Int

    public init(_ p: ParameterSet) {
        self.p = p
        // Modelled RTL timing: 16 MAC lanes at 100 MHz plus a fixed pipeline cost per stage.
        let s = p.shape
        let macs = s.window * s.dModel * (s.features + 4 * s.dModel + 2 * s.ffn) * s.layers
            + 2 * s.window * s.window * s.dModel * s.layers + s.horizon * s.dModel
        cycles = (macs + 15) / 16 + 64 * (2 + 12 * s.layers)
    }

    static func lo(_ b: Int) -> Int64 { -(Int64(1) << (b - 1)) }
    static func hi(_ b: Int) -> Int64 { (Int64(1) << (b - 1)) - 1 }
    static func sat(_ v: Int64, _ b: Int) -> Int64 { min(max(v, lo(b)), hi(b)) }
    static func rshr(_ v: Int64, _ n: Int) -> Int64 {
        if n == 0 { return v }
        let m = (abs(v) + (Int64(1) << (n - 1))) >> n
        return v < 0 ? -m : m
    }

    func act(_ n: String) -> ImageQuant { p.activations[n]! }
    func t(_ n: String) -> [Int64] { p.tensors[n]!.map(Int64.init) }

    func req(_ acc: Int64, _ name: String, _ y: ImageQuant) -> Int64 {
        let r = p.requant[name]!
        return Self.sat(Int64(y.zeroPoint) + Self.rshr(acc * Int64(r.m1), r.n), y.bits)
    }

    /// (E1) over `x: [T, K]`.
    func linear(_ x: [Int64], T: Int, K: Int, zx: Int64, weight: String, bias: String, J: Int,
                requant: String, out: ImageQuant) -> [Int64] {
        let w = t(weight), b = t(bias), zw = Int64(p.weights[weight]!.zeroPoint)
        var y = [Int64](repeating: 0, count: T * J)
        for i in 0..<T {
            for j in 0..<J {
                var acc = b[j]
                for k in 0..<K { acc += (x[i * K + k] - zx) * (w[j * K + k] - zw) }
                y[i * J + j] = req(acc, requant, out)
            }
        }
        return y
    }

    /// (E2)
    func add(_ a: [Int64], _ za: Int64, _ b: [Int64], _ zb: Int64, requant: String, out: ImageQuant) -> [Int64] {
        let r = p.requant[requant]!
        return zip(a, b).map { x, y in
            Self.sat(Int64(out.zeroPoint) + Self.rshr((x - za) * Int64(r.m1) + (y - zb) * Int64(r.m2), r.n), out.bits)
        }
    }

    /// (E3)
    func norm(_ x: [Int64], T: Int, d: Int, zx: Int64, prefix: String, requant: String, out: ImageQuant) -> [Int64] {
        let g = t(prefix + ".weight"), b = t(prefix + ".bias"), zg = Int64(p.weights[prefix + ".weight"]!.zeroPoint)
        var y = [Int64](repeating: 0, count: T * d)
        for i in 0..<T { for c in 0..<d { y[i * d + c] = req(b[c] + (x[i * d + c] - zx) * (g[c] - zg), requant, out) } }
        return y
    }

    public func run(_ input: [Int32]) -> [Int32] {
        let s = p.shape, W = s.window, d = s.dModel, H = s.heads, dh = d / H
        let xin = input.map(Int64.init)
        let proj = linear(xin, T: W, K: s.features, zx: Int64(act("input").zeroPoint), weight: "input_proj.weight",
                          bias: "input_proj.bias", J: d, requant: "input_proj", out: act("input_proj"))
        var x = add(proj, Int64(act("input_proj").zeroPoint), t("pe"), Int64(act("pe").zeroPoint),
                    requant: "pe_add", out: act("pe_add"))
        var zx = Int64(act("pe_add").zeroPoint)
        for l in 0..<s.layers {
            let L = "layers.\(l)."
            let q = linear(x, T: W, K: d, zx: zx, weight: L + "q.weight", bias: L + "q.bias", J: d, requant: L + "q", out: act(L + "q"))
            let k = linear(x, T: W, K: d, zx: zx, weight: L + "k.weight", bias: L + "k.bias", J: d, requant: L + "k", out: act(L + "k"))
            let v = linear(x, T: W, K: d, zx: zx, weight: L + "v.weight", bias: L + "v.bias", J: d, requant: L + "v", out: act(L + "v"))
            let zq = Int64(act(L + "q").zeroPoint), zk = Int64(act(L + "k").zeroPoint), zv = Int64(act(L + "v").zeroPoint)
            let sA = act(L + "scores"), pA = act(L + "probs"), cA = act(L + "context")
            let exp = t(L + "softmax.exp")
            let R = (Int64(1) << pA.bits) - 1
            var context = [Int64](repeating: 0, count: W * d)
            var row = [Int64](repeating: 0, count: W)
            for h in 0..<H {
                for i in 0..<W {
                    for j in 0..<W {
                        var acc: Int64 = 0
                        for c in (h * dh)..<(h * dh + dh) { acc += (q[i * d + c] - zq) * (k[j * d + c] - zk) }
                        row[j] = req(acc, L + "scores", sA)
                    }
                    let mx = row.max()!
                    var den: Int64 = 0
                    for j in 0..<W { row[j] = exp[Int(mx - row[j])]; den += row[j] }
                    let inv = (R << 30) / den
                    for j in 0..<W { row[j] = Self.sat(Self.lo(pA.bits) + Self.rshr(row[j] * inv, 30), pA.bits) }
                    let za = Int64(pA.zeroPoint)
                    for c in (h * dh)..<(h * dh + dh) {
                        var acc: Int64 = 0
                        for j in 0..<W { acc += (row[j] - za) * (v[j * d + c] - zv) }
                        context[i * d + c] = req(acc, L + "context", cA)
                    }
                }
            }
            let o = linear(context, T: W, K: d, zx: Int64(cA.zeroPoint), weight: L + "o.weight", bias: L + "o.bias",
                           J: d, requant: L + "o", out: act(L + "o"))
            let res1 = add(x, zx, o, Int64(act(L + "o").zeroPoint), requant: L + "res1", out: act(L + "res1"))
            let n1 = norm(res1, T: W, d: d, zx: Int64(act(L + "res1").zeroPoint), prefix: L + "norm1",
                          requant: L + "norm1", out: act(L + "norm1"))
            let zn1 = Int64(act(L + "norm1").zeroPoint)
            let f1A = act(L + "ffn1")
            let f1 = linear(n1, T: W, K: d, zx: zn1, weight: L + "ffn1.weight", bias: L + "ffn1.bias", J: s.ffn,
                            requant: L + "ffn1", out: f1A).map { max($0, Int64(f1A.zeroPoint)) }
            let f2 = linear(f1, T: W, K: s.ffn, zx: Int64(f1A.zeroPoint), weight: L + "ffn2.weight", bias: L + "ffn2.bias",
                            J: d, requant: L + "ffn2", out: act(L + "ffn2"))
            let res2 = add(n1, zn1, f2, Int64(act(L + "ffn2").zeroPoint), requant: L + "res2", out: act(L + "res2"))
            x = norm(res2, T: W, d: d, zx: Int64(act(L + "res2").zeroPoint), prefix: L + "norm2",
                     requant: L + "norm2", out: act(L + "norm2"))
            zx = Int64(act(L + "norm2").zeroPoint)
        }
        var pool = [Int64](repeating: 0, count: d)
        for c in 0..<d {
            var acc: Int64 = 0
            for i in 0..<W { acc += x[i * d + c] - zx }
            pool[c] = req(acc, "pool", act("pool"))
        }
        let out = linear(pool, T: 1, K: d, zx: Int64(act("pool").zeroPoint), weight: "head.weight", bias: "head.bias",
                         J: s.horizon, requant: "head", out: act("output"))
        return out.map { Int32($0) }
    }
}
