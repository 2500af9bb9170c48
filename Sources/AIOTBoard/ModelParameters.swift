// From a loaded, validated model file to the parameter set the accelerator's image is built from.
import AIOTModel

extension ParameterSet {
    /// Every tensor and integer quantization parameter of `model`, under the names of
    /// docs/arithmetic.md §10.
    public init(model m: QuantizedModel) {
        var acts: [String: ImageQuant] = [:]
        var weights: [String: ImageQuant] = [:]
        var req: [String: ImageRequant] = [:]
        var tensors: [String: [Int32]] = [:]
        func q(_ p: QuantParams) -> ImageQuant { ImageQuant(bits: p.bits, zeroPoint: Int(p.zeroPoint)) }
        func r(_ x: AIOTModel.Requant) -> ImageRequant { ImageRequant(m1: Int(x.m), m2: 0, n: x.n) }
        func a(_ x: AddRequant) -> ImageRequant { ImageRequant(m1: Int(x.m1), m2: Int(x.m2), n: x.n) }
        func lin(_ name: String, _ l: IntegerLinear) {
            tensors[name + ".weight"] = l.weight
            tensors[name + ".bias"] = l.bias
            weights[name + ".weight"] = q(l.weightParams)
        }
        acts["input"] = q(m.inputAct); acts["input_proj"] = q(m.inputProjAct); acts["pe"] = q(m.peAct)
        acts["pe_add"] = q(m.peAddAct); acts["pool"] = q(m.poolAct); acts["output"] = q(m.outputAct)
        lin("input_proj", m.inputProj)
        tensors["pe"] = m.pe
        req["input_proj"] = r(m.inputProjReq); req["pe_add"] = a(m.peAddReq)
        for (i, L) in m.layers.enumerated() {
            let p = "layers.\(i)."
            lin(p + "q", L.q); lin(p + "k", L.k); lin(p + "v", L.v); lin(p + "o", L.o)
            lin(p + "norm1", L.norm1); lin(p + "ffn1", L.ffn1); lin(p + "ffn2", L.ffn2); lin(p + "norm2", L.norm2)
            tensors[p + "softmax.exp"] = L.exp
            for (n, v) in [("q", L.qAct), ("k", L.kAct), ("v", L.vAct), ("scores", L.scoresAct), ("probs", L.probsAct),
                           ("context", L.contextAct), ("o", L.oAct), ("res1", L.res1Act), ("norm1", L.norm1Act),
                           ("ffn1", L.ffn1Act), ("ffn2", L.ffn2Act), ("res2", L.res2Act), ("norm2", L.norm2Act)] {
                acts[p + n] = q(v)
            }
            for (n, v) in [("q", L.qReq), ("k", L.kReq), ("v", L.vReq), ("scores", L.scoresReq), ("context", L.contextReq),
                           ("o", L.oReq), ("norm1", L.norm1Req), ("ffn1", L.ffn1Req), ("ffn2", L.ffn2Req), ("norm2", L.norm2Req)] {
                req[p + n] = r(v)
            }
            req[p + "res1"] = a(L.res1Req); req[p + "res2"] = a(L.res2Req)
        }
        lin("head", m.head)
        req["pool"] = r(m.poolReq); req["head"] = r(m.headReq)
        self.init(shape: m.shape, activations: acts, weights: weights, requant: req, tensors: tensors)
    }
}

/// The 32 bytes of a model's identity (the hex SHA-256 of its file).
public func identityBytes(_ hex: String) -> [UInt8]? {
    let chars = Array(hex.utf8)
    guard chars.count == 64 else { return nil }
    func nib(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
    var out: [UInt8] = []
    for k in stride(from: 0, to: 64, by: 2) {
        guard let h = nib(chars[k]), let l = nib(chars[k + 1]) else { return nil }
        out.append(h << 4 | l)
    }
    return out
}
