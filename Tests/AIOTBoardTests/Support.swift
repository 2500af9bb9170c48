import AIOTModel
import Foundation
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A deterministic generator for test data.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
}

/// A random but well-formed parameter set (every bound of the contract respected) for `shape`.
func randomParameters(_ shape: ModelShape, seed: UInt64 = 7) -> ParameterSet {
    var g = SplitMix(state: seed)
    var acts: [String: ImageQuant] = [:]
    for n in ParameterSet.activationNames(layers: shape.layers) {
        let bits = n == "input" || n == "output" || n == "pe" ? 12 : 8
        let lo = -(1 << (bits - 1))
        acts[n] = ImageQuant(bits: bits, zeroPoint: n.hasSuffix("probs") ? lo : g.int(lo / 4...(-lo / 4)))
    }
    var weights: [String: ImageQuant] = [:]
    var req: [String: ImageRequant] = [:]
    for n in ParameterSet.requantNames(layers: shape.layers) {
        let isAdd = n == "pe_add" || n.hasSuffix("res1") || n.hasSuffix("res2")
        req[n] = ImageRequant(m1: g.int(20000...60000), m2: isAdd ? g.int(20000...60000) : 0, n: g.int(15...24))
    }
    var tensors: [String: [Int32]] = [:]
    for (name, count) in ParameterSet.tensorCounts(shape: shape, scoreBits: Array(repeating: 8, count: shape.layers)) {
        if name.hasSuffix(".weight") {
            weights[name] = ImageQuant(bits: 8, zeroPoint: g.int(-8...8))
            tensors[name] = (0..<count).map { _ in Int32(g.int(-128...127)) }
        } else if name.hasSuffix(".bias") {
            tensors[name] = (0..<count).map { _ in Int32(g.int(-5000...5000)) }
        } else if name == "pe" {
            tensors[name] = (0..<count).map { _ in Int32(g.int(-2048...2047)) }
        } else {
            var e = 32768
            tensors[name] = (0..<count).map { k in
                if k > 0 { e = max(0, e - g.int(0...600)) }
                return Int32(e)
            }
        }
    }
    return ParameterSet(shape: shape, activations: acts, weights: weights, requant: req, tensors: tensors)
}

let defaultShape = ModelShape(window: 24, features: 1, dModel: 16, heads: 1, layers: 1, ffn: 64, horizon: 1)

/// A board with a golden image in slot 0, configured and running.
func bootedBoard(seed: UInt64 = 1) throws -> (BoardModel, BoardLink, [UInt8]) {
    let board = try BoardModel()
    var gen = BitstreamGenerator()
    gen.seed = seed
    let golden = gen.payload()
    board.factoryProgram(golden, at: 0)
    board.powerCycle()
    return (board, BoardLink(transport: board), golden)
}
