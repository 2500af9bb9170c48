// Shared, read-only model state: one loaded model per file, one engine per model and engine kind.
// Every sensor of every template on the same model uses the same engine; the processing thread
// is the only caller, so the software engine's scratch buffers are never used concurrently.
import AIOTModel
import AIOTBoard
import AIOTMQTT
import AIOTTelemetry

/// Makes the engine for a model: the software engine, or the FPGA when the board is present.
public typealias EngineFactory = @Sendable (LoadedModel, EngineKind) throws -> any InferenceEngine

/// An engine that says what really ran (the FPGA engine may answer from its software fallback).
protocol ReportsEngineRun: AnyObject {
    var lastEngine: EngineKind { get }
    /// The accelerator's cycles of the last inference and its clock (0: unknown).
    var lastCycles: UInt32 { get }
    var clockHz: UInt32 { get }
}
extension FPGAEngine: ReportsEngineRun {}

/// What one inference measured, reported by the engine's wrapper (no caller inspects engine types).
struct Measurement {
    var ranOn: EngineKind
    var inferNanos: UInt64
    var energyMicrojoules: Double?
    var energySource: String
    var sourceWatts: Double?
    /// CPU time of the calling thread during the inference (the energy model's input).
    var cpuNanos: UInt64 = 0
    /// Set when the figure is modelled, not measured (EnergyModel.swift in the daemon).
    var energyModel: EnergyModelUse? = nil
    /// FPGA inferences: the accelerator's cycle count and clock (the FPGA energy model's input).
    var cycles: UInt32 = 0
    var clockHz: UInt32 = 0
    /// Whether a meter covers this inference's engine (a board's PAC1934); a meter's missing
    /// figure (its first window still open) stays missing rather than modelled.
    var metered = false
}

/// An engine with its energy meters: the CPU package counter for software inferences, the
/// board's FPGA-rail monitor for FPGA inferences (never one for the other; no figure is invented).
final class MeteredEngine {
    let engine: any InferenceEngine
    private let report: ReportsEngineRun?
    private let cpu: PowerSource
    private let board: () -> BoardPowerSource?

    init(_ engine: any InferenceEngine, cpu: PowerSource, board: @escaping () -> BoardPowerSource?) {
        self.engine = engine
        report = engine as? ReportsEngineRun
        self.cpu = cpu
        self.board = engine.kind == .fpga ? board : { nil }
    }

    var kind: EngineKind { engine.kind }

    func infer(_ input: UnsafeBufferPointer<Int32>, into output: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) -> Measurement {
        try measure { () throws(InferenceError) in try engine.infer(input, into: output) }
    }

    /// `count` windows in one batched pass; the measurement covers the whole batch (the caller
    /// shares it out per window).
    func inferBatch(_ inputs: UnsafeBufferPointer<Int32>, count: Int, into outputs: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) -> Measurement {
        try measure { () throws(InferenceError) in try engine.inferBatch(inputs, count: count, into: outputs) }
    }

    private func measure(_ run: () throws(InferenceError) -> Void) throws(InferenceError) -> Measurement {
        let b = board()
        // The board's accumulators are read between inferences, when its window is due.
        b?.closeWindowIfDue()
        let b0 = b?.energyJoules()
        let e0 = cpu.energyMicrojoules()
        let c0 = threadCPUNanos()
        let t0 = monotonicNanos()
        try run()
        let t1 = monotonicNanos()
        let c1 = threadCPUNanos()
        let e1 = cpu.energyMicrojoules()
        let b1 = b?.energyJoules()
        let ran = report?.lastEngine ?? engine.kind
        var m = Measurement(ranOn: ran, inferNanos: t1 &- t0, energyMicrojoules: nil, energySource: cpu.name, sourceWatts: nil, cpuNanos: c1 &- c0)
        if ran == .fpga {
            m.cycles = report?.lastCycles ?? 0; m.clockHz = report?.clockHz ?? 0
            m.metered = b != nil
            if let b, let b0, let b1, b1 >= b0 {
                m.energyMicrojoules = (b1 - b0) * 1e6; m.energySource = b.name; m.sourceWatts = b.watts
            } else { m.energySource = "none" }
        } else if let e0, let e1, e1 >= e0 {
            m.energyMicrojoules = Double(e1 - e0)
        }
        return m
    }
}

/// Models by file and engines by (model, kind), built once and shared.
final class ModelStore {
    private(set) var models: [String: LoadedModel] = [:]
    private var engines: [String: MeteredEngine] = [:]
    let factory: EngineFactory
    let cpu: PowerSource
    let board: () -> BoardPowerSource?

    init(factory: @escaping EngineFactory, cpu: PowerSource, board: @escaping () -> BoardPowerSource?) {
        self.factory = factory
        self.cpu = cpu
        self.board = board
    }

    /// A fresh store for a reload: files are read again, engines of unchanged models are kept.
    func successor() -> ModelStore {
        let s = ModelStore(factory: factory, cpu: cpu, board: board)
        s.engines = engines
        return s
    }

    func model(_ path: String) throws(ModelFileError) -> LoadedModel {
        if let m = models[path] { return m }
        let m = try LoadedModel(contentsOf: path)
        models[path] = m
        return m
    }

    func engine(_ model: LoadedModel, _ kind: EngineKind) throws -> MeteredEngine {
        let key = model.identity + "/" + kind.rawValue
        if let e = engines[key] { return e }
        let e = MeteredEngine(try factory(model, kind), cpu: cpu, board: board)
        engines[key] = e
        return e
    }

    /// Drops engines no template uses any more (after a reload or an engine switch).
    func retain(only used: Set<ObjectIdentifier>) {
        engines = engines.filter { used.contains(ObjectIdentifier($0.value)) }
    }
}
