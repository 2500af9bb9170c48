// The FPGA as an `InferenceEngine`: one MPSSE buffer and one USB round trip per inference, with a
// health state machine that falls back to the bit-identical software engine when the board fails,
// and probes to come back.
import AIOTModel

/// What the host knows about the accelerator's weights, shared by every `FPGAEngine` on one board
/// (several streams, several models): whose model is loaded and the board's START sequence. An
/// engine runs only while it holds the lease (`identity` is its model); taking it over checks
/// MODEL_ID on the board and uploads only when the engine may. Not `Sendable`, like the transport
/// it belongs to: one owner at a time.
public final class AcceleratorLease {
    /// MODEL_ID of the weights the board holds, as last verified by the holder; nil: unknown.
    public internal(set) var identity: [UInt8]?
    /// The accelerator's SEQUENCE after the last START on this board.
    var sequence: UInt32 = 0
    /// Times an engine took the lease over (a model switch on the board).
    public internal(set) var handovers = 0
    public init() {}
}

public final class FPGAEngine: InferenceEngine {
    public enum Health: Sendable, Equatable, CustomStringConvertible {
        case healthy
        /// The last inference failed; this many retries have been used.
        case retrying(Int)
        /// The software engine answers; the board is probed every `probeEvery` inferences.
        case fallenBack
        public var description: String {
            switch self {
            case .healthy: "healthy"
            case let .retrying(n): "retrying(\(n))"
            case .fallenBack: "fallen back to software"
            }
        }
    }

    public struct Policy: Sendable {
        /// Retries of one inference over the link before falling back.
        public var maxRetries = 2
        /// While fallen back, probe the board once every this many inferences.
        public var probeEvery = 20
        public init() {}
    }

    public struct Stats: Sendable, Equatable {
        public var fpgaInferences = 0
        /// Uploads of this model's weights after start (taking the board over from another model).
        public var uploads = 0
        /// Results discarded because MODEL_ID read back in the same round trip was another model's.
        public var identityMismatches = 0
        public var fallbackInferences = 0
        public var failures = 0
        public var probes = 0
        public var recoveries = 0
        public var lastError: String?
    }

    public let kind = EngineKind.fpga
    public var model: QuantizedModel { fallback.model }
    public private(set) var health = Health.healthy
    public private(set) var stats = Stats()
    /// Which engine produced the last output.
    public private(set) var lastEngine = EngineKind.fpga
    /// The accelerator's CYCLES of the last inference it answered (its RESULT block), and its
    /// CLOCK_HZ (read when the engine took the board over); 0 when unknown.
    public private(set) var lastCycles: UInt32 = 0
    public private(set) var clockHz: UInt32 = 0
    public let policy: Policy

    let link: BoardLink
    let fallback: InferenceEngine
    let identity: [UInt8]
    let image: [UInt8]
    let inputRange: ClosedRange<Int32>
    var frame: InferenceFrame
    var reply: [UInt8]
    public let lease: AcceleratorLease
    /// Whether this engine may replace the board's weights with its own.
    let mayUpload: Bool
    var sinceProbe = 0
    let power: PowerMonitor
    var windowInferences = 0

    /// Connects to the accelerator and checks it holds exactly this model (PARAMS_VALID and
    /// MODEL_ID equal to `identity`). With `upload`, a board without it gets the image first;
    /// without, a mismatch is refused. With `startWithoutBoard`, a board that does not answer at
    /// all (unplugged, unconfigured) is not an error: the engine starts fallen back and probes.
    /// Engines that share a board must share its `lease` (AIOTDevices' `BoardSession` does): with
    /// `upload`, each takes the board over (re-uploading its weights) when another model ran last;
    /// without, an engine whose model the board does not hold answers from the software engine.
    public init(link: BoardLink, parameters: ParameterSet, identity: [UInt8], fallback: InferenceEngine,
                upload: Bool = false, startWithoutBoard: Bool = false, policy: Policy = Policy(),
                lease: AcceleratorLease = AcceleratorLease()) throws(BoardError) {
        guard identity.count == 32 else { throw BoardError(.identity, "model identity must be 32 bytes (SHA-256)") }
        do throws(ParameterImageError) {
            image = try ParameterImage.serialize(parameters)
        } catch {
            throw BoardError(.image, error.message)
        }
        self.link = link
        self.fallback = fallback
        self.identity = identity
        self.policy = policy
        self.lease = lease
        self.mayUpload = upload
        let inBits = parameters.activations["input"]?.bits ?? 16
        inputRange = Int32(-(1 << (inBits - 1)))...Int32((1 << (inBits - 1)) - 1)
        let s = parameters.shape
        frame = InferenceFrame(inputCount: s.window * s.features, outputCount: s.horizon)
        reply = [UInt8](repeating: 0, count: frame.replyBytes)
        power = PowerMonitor(transport: link.transport, profile: link.profile)
        do throws(BoardError) {
            try claim(uploadAllowed: upload)
            stats.uploads = 0
        } catch {
            let unreachable: Bool = switch error.kind {
            case .link, .noAccelerator: true
            default: false
            }
            guard startWithoutBoard && unreachable else { throw error }
            health = .fallenBack
            stats.lastError = error.message
        }
    }

    func modelLoaded() throws(BoardError) -> Bool {
        let info = try link.info()
        guard info.present else {
            throw BoardError(.noAccelerator, "no accelerator answers on SPI; run `aiotctl boot` first")
        }
        return info.paramsValid && info.modelID == hex(identity[...])
    }

    /// Clears the accelerator's sequence and error state so the next START is sequence 1.
    func resync() throws(BoardError) {
        _ = try link.run { b in b.accWrite32(Reg.control, Reg.softReset | Reg.clearError) }
        lease.sequence = 0
    }

    /// Takes the board over for this model: keeps weights that are already this model's (checked
    /// on the board: PARAMS_VALID and MODEL_ID), otherwise uploads them if allowed. A board whose
    /// weights were lost (PARAMS_VALID clear) may always get ours back; a board holding another
    /// model's valid weights is left alone unless `uploadAllowed`.
    func claim(uploadAllowed: Bool) throws(BoardError) {
        lease.identity = nil
        let info = try link.info()
        guard info.present else {
            throw BoardError(.noAccelerator, "no accelerator answers on SPI; run `aiotctl boot` first")
        }
        if !(info.paramsValid && info.modelID == hex(identity[...])) {
            guard uploadAllowed else {
                throw BoardError(.identity, info.paramsValid
                    ? "the accelerator holds another model (MODEL_ID \(info.modelID.prefix(12))...); this engine may not replace it (allow uploads, or run `aiotctl upload-weights`)"
                    : "the accelerator does not hold this model (identity or weights differ); run `aiotctl upload-weights` first")
            }
            _ = try link.upload(image: image, identity: identity)
            stats.uploads += 1
        }
        try resync()
        clockHz = info.clockHz
        lease.identity = identity
        lease.handovers += 1
    }

    /// Whether this engine holds the lease (compares without allocating).
    var holdsLease: Bool {
        guard let id = lease.identity, id.count == identity.count else { return false }
        for k in 0..<id.count where id[k] != identity[k] { return false }
        return true
    }

    public func infer(_ input: UnsafeBufferPointer<Int32>, into output: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) {
        guard input.count == frame.inputCount, output.count == frame.outputCount else {
            throw InferenceError(.shape, "expected \(frame.inputCount) inputs and \(frame.outputCount) outputs, got \(input.count) and \(output.count)")
        }
        for v in input where !inputRange.contains(v) {
            throw InferenceError(.inputRange, "input \(v) outside \(inputRange)")
        }
        if health == .fallenBack {
            sinceProbe += 1
            if sinceProbe >= policy.probeEvery {
                sinceProbe = 0
                if probe() { health = .healthy; stats.recoveries += 1 }
            }
            if health == .fallenBack { return try runFallback(input, output) }
        }
        var attempt = 0
        while true {
            do throws(BoardError) {
                if !holdsLease { try claim(uploadAllowed: mayUpload) }
                try runOnce(input, output)
                health = .healthy
                stats.fpgaInferences += 1
                windowInferences += 1
                lastEngine = .fpga
                return
            } catch {
                stats.failures += 1
                stats.lastError = error.message
                // Another model's weights that this engine may not replace: no retry helps.
                if error.kind == .identity && !mayUpload { break }
                attempt += 1
                if attempt > policy.maxRetries { break }
                health = .retrying(attempt)
                if case .link = error.kind, !reconnect() { break }
            }
        }
        health = .fallenBack
        sinceProbe = 0
        return try runFallback(input, output)
    }

    func runFallback(_ input: UnsafeBufferPointer<Int32>, _ output: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) {
        try fallback.infer(input, into: output)
        stats.fallbackInferences += 1
        lastEngine = fallback.kind
    }

    /// One inference: one command buffer, one round trip. Allocates nothing on success. The same
    /// buffer reads MODEL_ID back after the result: a result computed on weights that are not this
    /// model's (another process uploaded, or the lease was bypassed) is discarded, never returned.
    func runOnce(_ input: UnsafeBufferPointer<Int32>, _ output: UnsafeMutableBufferPointer<Int32>) throws(BoardError) {
        let crc = frame.setInput(input)
        lease.sequence &+= 1
        let sequence = lease.sequence
        let transport = link.transport
        let identityAt = frame.resultBytes
        let result: Result<RunCheck, LinkError> = frame.buffer.bytes.withUnsafeBytes { cmd in
            reply.withUnsafeMutableBytes { r in
                do throws(LinkError) {
                    try transport.execute(.a, cmd, reply: r)
                    for k in 0..<32 where r[identityAt + k] != identity[k] { return .success(.identity) }
                    return .success(.result(checkResult(UnsafeRawBufferPointer(rebasing: r[0..<identityAt]), expectedSequence: sequence, inputCRC: crc, output: output)))
                } catch { return .failure(error) }
            }
        }
        let check: RunCheck
        do throws(LinkError) { check = try result.get() } catch { throw BoardError(error) }
        func protocolError(_ m: String) -> BoardError { BoardError(.link(.protocolError), m) }
        switch check {
        case .identity:
            lease.identity = nil
            stats.identityMismatches += 1
            throw BoardError(.identity, "the accelerator's MODEL_ID changed under this engine (another model's weights); result discarded")
        case .result(.ok):
            lastCycles = readLE32(reply, 12)
            return
        case let .result(.notDone(status)): throw protocolError("accelerator result not valid (status 0x\(String(status, radix: 16)))")
        case let .result(.sequence(e, g)): throw protocolError("accelerator answered sequence \(g), expected \(e)")
        case .result(.inputCRC): throw protocolError("input window corrupted on the way to the accelerator (INPUT_CRC mismatch)")
        case .result(.resultCRC): throw protocolError("result corrupted on the way back (RESULT_CRC mismatch)")
        }
    }

    /// After a failure: reset the USB side, then take the board over again (a power loss clears
    /// the weights: they come back only if this engine may upload).
    func reconnect() -> Bool {
        do {
            try link.transport.recover()
            try claim(uploadAllowed: mayUpload)
            return true
        } catch {
            return false
        }
    }

    /// While fallen back: is the board back, with this model? Weights the board lost are uploaded
    /// again; another model's valid weights are replaced only if this engine may upload.
    func probe() -> Bool {
        stats.probes += 1
        do {
            try link.transport.recover()
            let info = try link.info()
            try claim(uploadAllowed: mayUpload || (info.present && !info.paramsValid))
            return true
        } catch {
            stats.lastError = "\(error)"
            return false
        }
    }

    /// For benchmarks and tests that drive the engine with a device double: marks the link healthy
    /// with sequence 0 without touching the device.
    public func forceHealthyForMeasurement() {
        health = .healthy
        lease.sequence = 0
        lease.identity = identity
    }

    enum RunCheck { case result(ResultCheck), identity }

    /// Energy of the FPGA rails (monitor 0) since the previous call, and the inferences run over
    /// the link in that window; one channel-B round trip per monitor, never inside an inference.
    public struct EnergyWindow: Sendable, Equatable {
        public var joules: Double
        public var seconds: Double
        public var inferences: Int
        public var joulesPerInference: Double? { inferences > 0 ? joules / Double(inferences) : nil }
    }

    public func closeEnergyWindow() throws(LinkError) -> EnergyWindow {
        let rails = try power.read()
        let fpga = rails.filter { $0.monitor == Int(power.addresses[0]) }
        let joules = fpga.reduce(0) { $0 + $1.joules }
        let seconds = Double(fpga.first?.samples ?? 0) / PowerMonitor.samplesPerSecond
        defer { windowInferences = 0 }
        return EnergyWindow(joules: joules, seconds: seconds, inferences: windowInferences)
    }
}
