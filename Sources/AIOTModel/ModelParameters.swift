// The typed pieces of a model file (docs/arithmetic.md §2, §10), after validation.

/// Quantization of one tensor: `real = scale * (q - zeroPoint)` with `q` a signed `bits`-wide integer.
public struct QuantParams: Sendable, Equatable {
    public var bits: Int
    public var scale: Double
    public var zeroPoint: Int32

    public init(bits: Int, scale: Double, zeroPoint: Int32) {
        self.bits = bits
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// `lo(b)` of §1.
    public var lo: Int32 { Int32(contractLo(bits)) }
    /// `hi(b)` of §1.
    public var hi: Int32 { Int32(contractHi(bits)) }
}

/// A dyadic multiplier `m * 2^-n` (P3): `0 <= m <= 65535`, `0 <= n <= 40`.
public struct Requant: Sendable, Equatable {
    public var m: Int64
    public var n: Int
    public init(m: Int64, n: Int) {
        self.m = m
        self.n = n
    }
}

/// The two multipliers of a quantized addition (E2), sharing one shift.
public struct AddRequant: Sendable, Equatable {
    public var m1: Int64
    public var m2: Int64
    public var n: Int
    public init(m1: Int64, m2: Int64, n: Int) {
        self.m1 = m1
        self.m2 = m2
        self.n = n
    }
}

/// A linear (E1) or folded-BatchNorm (E3) layer: integer weight `[outputs, inputs]` (BatchNorm: `[d]`,
/// one weight per channel), bias `[outputs]`, and the weight's quantization.
public struct IntegerLinear: Sendable, Equatable {
    public var weight: [Int32]
    public var bias: [Int32]
    public var weightParams: QuantParams
    public var outputs: Int
    /// Inputs per output (1 for a BatchNorm's per-channel weight).
    public var inputs: Int
}

/// One input feature and how it is normalized before quantization (§9).
public struct FeatureInfo: Sendable, Equatable {
    public var name: String
    public var unit: String
    public var mean: Double
    public var std: Double
}

/// The forecast target: its name, unit and normalization (§9). `feature` is the index of the input
/// feature that carries the target's past readings, when it is one of the inputs.
public struct TargetInfo: Sendable, Equatable {
    public var name: String
    public var unit: String
    public var mean: Double
    public var std: Double
    public var feature: Int?
}

/// One encoder layer's integers (§5 steps 3-13).
public struct EncoderLayer: Sendable, Equatable {
    public var q: IntegerLinear
    public var k: IntegerLinear
    public var v: IntegerLinear
    public var o: IntegerLinear
    public var norm1: IntegerLinear
    public var ffn1: IntegerLinear
    public var ffn2: IntegerLinear
    public var norm2: IntegerLinear
    /// (E6) `EXP`, `2^bits(scores)` entries.
    public var exp: [Int32]

    public var qAct: QuantParams
    public var kAct: QuantParams
    public var vAct: QuantParams
    public var scoresAct: QuantParams
    public var probsAct: QuantParams
    public var contextAct: QuantParams
    public var oAct: QuantParams
    public var res1Act: QuantParams
    public var norm1Act: QuantParams
    public var ffn1Act: QuantParams
    public var ffn2Act: QuantParams
    public var res2Act: QuantParams
    public var norm2Act: QuantParams

    public var qReq: Requant
    public var kReq: Requant
    public var vReq: Requant
    public var scoresReq: Requant
    public var contextReq: Requant
    public var oReq: Requant
    public var res1Req: AddRequant
    public var norm1Req: Requant
    public var ffn1Req: Requant
    public var ffn2Req: Requant
    public var res2Req: AddRequant
    public var norm2Req: Requant
}
