// Which engine runs a model: the software engine (AIOTModel); the FPGA engine joins here when the
// board link lands.
import AIOTModel

public struct EngineUnavailable: Error, Sendable, CustomStringConvertible {
    public var description: String
}

public let defaultEngineFactory: EngineFactory = { model, kind in
    switch kind {
    case .software:
        return SoftwareEngine(model: model.quantized)
    case .fpga:
        throw EngineUnavailable(description: "the fpga engine is not part of this build yet; use engine.kind = \"software\"")
    }
}
