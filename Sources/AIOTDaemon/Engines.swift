// Which engine runs a model: the software engine (AIOTModel) or the board's accelerator
// (AIOTBoard.FPGAEngine, which falls back to the software engine while the board is unreachable).
import Foundation
import AIOTModel
import AIOTBoard
import AIOTDevices

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

/// Makes engines for a daemon run, opening the board (board.device) once and sharing it: every
/// fpga engine on it shares the board's `AcceleratorLease`, so streams with different models never
/// run on each other's weights (with upload_weights they take turns, re-uploading on a switch).
/// Devices and engines come from AIOTDevices, the selector aiotctl uses too.
public final class EngineProvider: @unchecked Sendable {
    // @unchecked: `session` and `power` are touched only under `lock`.
    let device: String
    let upload: Bool
    let settings: DaemonConfig.BoardSettings
    private let lock = NSLock()
    private var session: BoardSession?
    private var power: BoardPowerSource?

    public init(device: String, upload: Bool, settings: DaemonConfig.BoardSettings = .init()) {
        self.device = device
        self.upload = upload
        self.settings = settings
    }

    /// The board's FPGA-rail energy counter, once the board is open (nil before: software only;
    /// nil on a board without power monitors, such as the iCEBreaker: its energy is modelled).
    public var boardPower: BoardPowerSource? {
        lock.lock()
        defer { lock.unlock() }
        if power == nil, let session, !session.profile.powerMonitorAddresses.isEmpty {
            power = BoardPowerSource(transport: session.transport, windowSeconds: settings.energyWindowSeconds, profile: session.profile)
        }
        return power
    }

    public var factory: EngineFactory {
        { [self] model, kind in try self.make(model, kind) }
    }

    func make(_ model: LoadedModel, _ kind: EngineKind) throws -> any InferenceEngine {
        var policy = FPGAEngine.Policy()
        policy.maxRetries = settings.maxRetries
        policy.probeEvery = settings.probeEvery
        let board = kind == .fpga ? try openSession() : nil
        do {
            return try lock.withLock {
                try makeEngine(kind, model: model.quantized, board: board, upload: upload, policy: policy)
            }
        } catch {
            throw EngineUnavailable(description: kind == .fpga ? "board.device \(device): \(error)" : "\(error)")
        }
    }

    private func openSession() throws -> BoardSession {
        lock.lock()
        defer { lock.unlock() }
        if let session { return session }
        do {
            let s = try BoardSession(parsing: device, sckHz: settings.sckHz)
            session = s
            return s
        } catch {
            throw EngineUnavailable(description: "board.device \(device): \(error); check the board is plugged in and readable (systemd/README.md), or use engine.kind = \"software\"")
        }
    }

    /// Runs `body` on the board's link, opening the board if no engine has (bitstream
    /// deployments); a simulated board's state is saved afterwards.
    func withBoardLink<R>(_ body: (BoardLink) throws -> R) throws -> R {
        let s = try openSession()
        defer { try? s.save() }
        return try body(s.link())
    }

    /// Saves a simulated board's state (a real board keeps its own).
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        try? session?.save()
    }
}
