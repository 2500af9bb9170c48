// Which engine runs a model: the software engine (AIOTModel) or the board's accelerator
// (AIOTBoard.FPGAEngine, which falls back to the software engine while the board is unreachable).
import Foundation
import AIOTModel
import AIOTBoard

public struct EngineUnavailable: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Software engines only: for tools and tests that have no board settings.
public let defaultEngineFactory: EngineFactory = { model, kind in
    switch kind {
    case .software:
        return SoftwareEngine(model: model.quantized)
    case .fpga:
        throw EngineUnavailable(description: "the fpga engine needs board.device in the configuration")
    }
}

/// Makes engines for a daemon run, opening the board (board.device) once and sharing it.
public final class EngineProvider: @unchecked Sendable {
    // @unchecked: `transport` and `sim` are touched only under `lock`.
    let device: String
    let upload: Bool
    let settings: DaemonConfig.BoardSettings
    private let lock = NSLock()
    private var transport: Transport?
    private var sim: BoardModel?
    private var power: BoardPowerSource?
    /// sim-rtl: the co-simulated FPGA starts without weights, so the engine always uploads them.
    private var freshRTL = false

    public init(device: String, upload: Bool, settings: DaemonConfig.BoardSettings = .init()) {
        self.device = device
        self.upload = upload
        self.settings = settings
    }

    /// The board's FPGA-rail energy counter, once the board is open (nil before: software only).
    public var boardPower: BoardPowerSource? {
        lock.lock()
        defer { lock.unlock() }
        if power == nil, let transport { power = BoardPowerSource(transport: transport, windowSeconds: settings.energyWindowSeconds) }
        return power
    }

    public var factory: EngineFactory {
        { [self] model, kind in try self.make(model, kind) }
    }

    func make(_ model: LoadedModel, _ kind: EngineKind) throws -> any InferenceEngine {
        switch kind {
        case .software:
            return SoftwareEngine(model: model.quantized)
        case .fpga:
            let t = try openTransport()
            guard let id = identityBytes(model.identity) else { throw EngineUnavailable(description: "model identity is not a SHA-256") }
            do {
                // A board that does not answer (unplugged, not booted) starts the engine fallen back
                // to the software engine; it probes and takes over again when the board returns.
                var policy = FPGAEngine.Policy()
                policy.maxRetries = settings.maxRetries
                policy.probeEvery = settings.probeEvery
                return try FPGAEngine(link: BoardLink(transport: t), parameters: ParameterSet(model: model.quantized), identity: id,
                                      fallback: SoftwareEngine(model: model.quantized), upload: upload || lock.withLock { freshRTL }, startWithoutBoard: true, policy: policy)
            } catch {
                throw EngineUnavailable(description: "board.device \(device): \(error)")
            }
        }
    }

    private func openTransport() throws -> Transport {
        lock.lock()
        defer { lock.unlock() }
        if let transport { return transport }
        let address: DeviceAddress
        do { address = try DeviceAddress(parsing: device) } catch {
            throw EngineUnavailable(description: "board.device \"\(device)\": \(error)")
        }
        do {
            switch address {
            case .sim(let path):
                let b = try BoardModel(path: path)
                sim = b
                transport = b
            case let .ftdi(v, p, s):
                transport = try FTDITransport(vendor: v, product: p, serial: s, sckHz: settings.sckHz)
            case let .simRTL(path):
                transport = try RTLSimTransport(executable: path)
                freshRTL = true
            }
        } catch {
            throw EngineUnavailable(description: "board.device \(device): \(error); check the board is plugged in and readable (systemd/README.md), or use engine.kind = \"software\"")
        }
        return transport!
    }

    /// Saves a simulated board's state (a real board keeps its own).
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        try? sim?.save()
    }
}

