/// A loaded, validated integer model (docs/arithmetic.md §10).
///
/// Construction reads the safetensors container, decodes the `aiot` metadata and checks every range
/// and bound of §2, §3, §6 and §10; a value of this type is a model every engine can run without
/// further checks.
public struct QuantizedModel: Sendable {
    public var shape: ModelShape
    /// Lower-case hex SHA-256 of the model file's bytes.
    public var identity: String
    public var features: [FeatureInfo]
    public var target: TargetInfo
    public var samplingPeriodSeconds: Double
    /// The exporter's free-text provenance (tool, data set, seed, configuration), as JSON text when
    /// the file stores an object.
    public var provenance: String
    /// The exporter's validation error statistics (metadata `calibration`), nil in older files.
    public var calibration: ModelCalibration? = nil

    public var inputAct: QuantParams
    public var inputProjAct: QuantParams
    public var peAct: QuantParams
    public var peAddAct: QuantParams
    public var poolAct: QuantParams
    public var outputAct: QuantParams

    public var inputProj: IntegerLinear
    public var inputProjReq: Requant
    /// The quantized positional encoding `[W, d]`.
    public var pe: [Int32]
    public var peAddReq: AddRequant
    public var layers: [EncoderLayer]
    public var poolReq: Requant
    public var head: IntegerLinear
    /// Requantizes the head onto `outputAct` (v1) or onto `skip.headAct` (v2).
    public var headReq: Requant
    /// Contract v2's linear skip path (docs/arithmetic.md §5 steps 15-17); nil in a v1 model.
    public var skip: SkipPath?

    /// The contract version of this model: 2 when it has the skip path.
    public var version: Int64 { skip == nil ? 1 : 2 }

    public static let format = "aiot-int-transformer"
    /// The contract versions this build reads (docs/arithmetic.md §10).
    public static let versions: ClosedRange<Int64> = 1...2

    /// Loads and validates the model file at `path`.
    public init(contentsOf path: String) throws(ModelFileError) {
        let bytes = try readFileBytes(path)
        try self.init(bytes: bytes)
    }

    /// Validates and decodes a model file held in memory.
    public init(bytes: [UInt8]) throws(ModelFileError) {
        let result: Result<QuantizedModel, ModelFileError> = bytes.withUnsafeBytes { raw in
            do throws(ModelFileError) {
                return .success(try ModelDecoder(bytes: raw).decode())
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    init(
        shape: ModelShape, identity: String, features: [FeatureInfo], target: TargetInfo,
        samplingPeriodSeconds: Double, provenance: String,
        inputAct: QuantParams, inputProjAct: QuantParams, peAct: QuantParams, peAddAct: QuantParams,
        poolAct: QuantParams, outputAct: QuantParams, inputProj: IntegerLinear, inputProjReq: Requant,
        pe: [Int32], peAddReq: AddRequant, layers: [EncoderLayer], poolReq: Requant,
        head: IntegerLinear, headReq: Requant, skip: SkipPath? = nil
    ) {
        self.shape = shape
        self.identity = identity
        self.features = features
        self.target = target
        self.samplingPeriodSeconds = samplingPeriodSeconds
        self.provenance = provenance
        self.inputAct = inputAct
        self.inputProjAct = inputProjAct
        self.peAct = peAct
        self.peAddAct = peAddAct
        self.poolAct = poolAct
        self.outputAct = outputAct
        self.inputProj = inputProj
        self.inputProjReq = inputProjReq
        self.pe = pe
        self.peAddReq = peAddReq
        self.layers = layers
        self.poolReq = poolReq
        self.head = head
        self.headReq = headReq
        self.skip = skip
    }
}

/// Contract v2 (docs/arithmetic.md §5): `skip = Linear(input flattened [W*F] -> [P])` (E1) on its
/// own activation, the head on its own activation `head`, and `output = Add(head, skip)` (E2).
public struct SkipPath: Sendable {
    public var headAct: QuantParams
    public var skipAct: QuantParams
    /// Weight `[P, W*F]` over the time-major window, bias `[P]`.
    public var linear: IntegerLinear
    public var skipReq: Requant
    /// The (E2) multipliers of `output = Add(head, skip)`.
    public var outputReq: AddRequant

    public init(headAct: QuantParams, skipAct: QuantParams, linear: IntegerLinear, skipReq: Requant, outputReq: AddRequant) {
        self.headAct = headAct
        self.skipAct = skipAct
        self.linear = linear
        self.skipReq = skipReq
        self.outputReq = outputReq
    }
}
