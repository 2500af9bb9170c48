// The one device selector of aiotd and aiotctl: a `--device` / `board.device` string becomes a
// `DeviceAddress`, an open `BoardSession` (transport, board profile, the lease its engines share),
// and an engine. Nothing else opens boards.
import AIOTBoard
import AIOTBoardSim
import AIOTModel

/// A device address: `ftdi://0403:6010[/serial][?board=icebreaker]`, `sim:PATH` (the board model,
/// state kept in PATH; its board profile is in the file) or `sim-rtl:EXECUTABLE` (the accelerator
/// RTL in a co-simulation process).
public enum DeviceAddress: Sendable, Equatable, CustomStringConvertible {
    case ftdi(vendor: UInt16, product: UInt16, serial: String?, board: String?)
    case sim(path: String)
    case simRTL(executable: String)

    public static let defaultFTDI = DeviceAddress.ftdi(vendor: 0x0403, product: 0x6010, serial: nil, board: nil)

    public init(parsing text: String) throws(LinkError) {
        if text.hasPrefix("sim-rtl:") {
            let path = String(text.dropFirst(8))
            guard !path.isEmpty else {
                throw LinkError(.other, "sim-rtl: needs the co-simulation executable, e.g. sim-rtl:firmware/build/cosim/aiot-rtl-sim (build it with firmware/cosim/build.sh)")
            }
            self = .simRTL(executable: path)
            return
        }
        if text.hasPrefix("sim:") {
            let path = String(text.dropFirst(4))
            guard !path.isEmpty else { throw LinkError(.other, "sim: needs a state file path, e.g. sim:/tmp/board.sim") }
            self = .sim(path: path)
            return
        }
        guard text.hasPrefix("ftdi://") else {
            throw LinkError(.other, "unknown device '\(text)'; use ftdi://0403:6010[/serial][?board=\(BoardProfile.all.map(\.name).joined(separator: "|"))], sim:PATH or sim-rtl:EXECUTABLE")
        }
        var rest = Substring(text.dropFirst(7))
        var board: String?
        if let q = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: q)...]
            rest = rest[..<q]
            guard query.hasPrefix("board="), BoardProfile.named(String(query.dropFirst(6))) != nil else {
                throw LinkError(.other, "bad device option '\(query)' in '\(text)'; the only option is board=\(BoardProfile.all.map(\.name).joined(separator: "|"))")
            }
            board = String(query.dropFirst(6))
        }
        let parts = rest.split(separator: "/", maxSplits: 1)
        let ids = (parts.first ?? "").split(separator: ":")
        guard ids.count == 2, let v = UInt16(ids[0], radix: 16), let p = UInt16(ids[1], radix: 16) else {
            throw LinkError(.other, "bad FTDI address '\(text)'; expected ftdi://VID:PID[/serial] in hex, e.g. ftdi://0403:6010")
        }
        self = .ftdi(vendor: v, product: p, serial: parts.count > 1 ? String(parts[1]) : nil, board: board)
    }

    /// The RTL co-simulation: a fresh process (configured FPGA, no weights) each time it is opened.
    public var isRTLCosimulation: Bool { if case .simRTL = self { true } else { false } }

    public var description: String {
        switch self {
        case let .ftdi(v, p, s, b): ftdiAddress(vendor: v, product: p, serial: s) + (b.map { "?board=\($0)" } ?? "")
        case let .sim(path): "sim:\(path)"
        case let .simRTL(path): "sim-rtl:\(path)"
        }
    }
}

/// An open board: its transport, its profile, and the lease every engine on it shares (so two
/// streams with two models never run on each other's weights). A simulated board's state is
/// written back by `save()`.
public final class BoardSession {
    public let address: DeviceAddress
    public let transport: Transport
    public let profile: BoardProfile
    /// The board model behind a `sim:` address.
    public let sim: BoardModel?
    public let lease = AcceleratorLease()

    /// Opens the device. `sckHz` sets channel A's SPI clock on a real FT2232H.
    public init(_ address: DeviceAddress, sckHz: Int = 30_000_000) throws(LinkError) {
        self.address = address
        switch address {
        case let .sim(path):
            let b = try BoardModel(path: path)
            sim = b
            transport = b
            profile = b.profile
        case let .ftdi(v, p, s, board):
            transport = try FTDITransport(vendor: v, product: p, serial: s, sckHz: sckHz)
            sim = nil
            profile = board.flatMap(BoardProfile.named) ?? .xc7s15Gateway
        case let .simRTL(path):
            transport = try RTLSimTransport(executable: path)
            sim = nil
            profile = .xc7s15Gateway
        }
    }

    public convenience init(parsing text: String, sckHz: Int = 30_000_000) throws(LinkError) {
        try self.init(DeviceAddress(parsing: text), sckHz: sckHz)
    }

    /// The co-simulated FPGA starts without weights: engines on it must upload.
    public var isFreshRTL: Bool { address.isRTLCosimulation }

    public func link() -> BoardLink { BoardLink(transport: transport, profile: profile) }

    /// Saves a simulated board's state (a real board keeps its own).
    public func save() throws(LinkError) { try sim?.save() }

    /// The FPGA engine for `model` on this board, sharing the board's lease. A board that does
    /// not answer starts the engine fallen back to the software engine (it probes to come back).
    public func fpgaEngine(model: QuantizedModel, upload: Bool, startWithoutBoard: Bool = true,
                           policy: FPGAEngine.Policy = FPGAEngine.Policy()) throws(BoardError) -> FPGAEngine {
        guard let id = identityBytes(model.identity) else {
            throw BoardError(.identity, "model identity is not a SHA-256; reload the model file")
        }
        return try FPGAEngine(link: link(), parameters: ParameterSet(model: model), identity: id,
                              fallback: SoftwareEngine(model: model), upload: upload || isFreshRTL,
                              startWithoutBoard: startWithoutBoard, policy: policy, lease: lease)
    }
}

/// Why an engine could not be made.
public struct EngineSelectionError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The engine selector: `kind` on `model`, on `board` for the fpga engine.
public func makeEngine(_ kind: EngineKind, model: QuantizedModel, board: BoardSession?, upload: Bool,
                       policy: FPGAEngine.Policy = FPGAEngine.Policy()) throws(EngineSelectionError) -> any InferenceEngine {
    switch kind {
    case .software:
        return SoftwareEngine(model: model)
    case .fpga:
        guard let board else { throw EngineSelectionError("the fpga engine needs a board device (board.device / --device)") }
        do {
            return try board.fpgaEngine(model: model, upload: upload, policy: policy)
        } catch {
            throw EngineSelectionError("board \(board.address): \(error)")
        }
    }
}
