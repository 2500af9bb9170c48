// The FPGA as an `InferenceEngine`: one MPSSE buffer and one USB round trip per inference, with a
// health state machine that falls back to the bit-identical software engine when the board fails,
// and probes to come back.
import AIOTModel

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
    public let policy: Policy

    let link: BoardLink
    let fallback: InferenceEngine
    let identity: [UInt8]
    let image: [UInt8]
    let inputRange: ClosedRange<Int32>
    var frame: InferenceFrame
    var reply: [UInt8]
    var sequence: UInt32 = 0
    var sinceProbe = 0
    let power: PowerMonitor
    var windowInferences = 0

    /// Connects to the accelerator and checks it holds exactly this model (PARAMS_VALID and
    /// MODEL_ID equal to `identity`). With `upload`, a board without it gets the image first;
    /// without, a mismatch is refused. With `startWithoutBoard`, a board that does not answer at
    /// all (unplugged, unconfigured) is not an error: the engine starts fallen back and probes.
    public init(link: BoardLink, parameters: ParameterSet, identity: [UInt8], fallback: InferenceEngine,
                upload: Bool = false, startWithoutBoard: Bool = false, policy: Policy = Policy()) throws(BoardError) {
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
        let inBits = parameters.activations["input"]?.bits ?? 16
        inputRange = Int32(-(1 << (inBits - 1)))...Int32((1 << (inBits - 1)) - 1)
        let s = parameters.shape
        frame = InferenceFrame(inputCount: s.window * s.features, outputCount: s.horizon)
        reply = [UInt8](repeating: 0, count: 16 + 2 * s.horizon + 4)
        power = PowerMonitor(transport: link.transport)
        do throws(BoardError) {
            if try !modelLoaded() {
                guard upload else {
                    throw BoardError(.identity, "the accelerator does not hold this model (identity or weights differ); run `aiotctl upload-weights` first")
                }
                _ = try link.upload(image: image, identity: identity)
            }
            try resync()
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
        sequence = 0
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
            do throws(LinkError) {
                try runOnce(input, output)
                health = .healthy
                stats.fpgaInferences += 1
                windowInferences += 1
                lastEngine = .fpga
                return
            } catch {
                stats.failures += 1
                stats.lastError = error.message
                attempt += 1
                if attempt > policy.maxRetries { break }
                health = .retrying(attempt)
                if !reconnect() { break }
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

    /// One inference: one command buffer, one round trip. Allocates nothing on success.
    func runOnce(_ input: UnsafeBufferPointer<Int32>, _ output: UnsafeMutableBufferPointer<Int32>) throws(LinkError) {
        let crc = frame.setInput(input)
        sequence &+= 1
        let transport = link.transport
        let result: Result<ResultCheck, LinkError> = frame.buffer.bytes.withUnsafeBytes { cmd in
            reply.withUnsafeMutableBytes { r in
                do throws(LinkError) {
                    try transport.execute(.a, cmd, reply: r)
                    return .success(checkResult(UnsafeRawBufferPointer(r), expectedSequence: sequence, inputCRC: crc, output: output))
                } catch { return .failure(error) }
            }
        }
        switch try result.get() {
        case .ok: return
        case let .notDone(status): throw LinkError(.protocolError, "accelerator result not valid (status 0x\(String(status, radix: 16)))")
        case let .sequence(e, g): throw LinkError(.protocolError, "accelerator answered sequence \(g), expected \(e)")
        case .inputCRC: throw LinkError(.protocolError, "input window corrupted on the way to the accelerator (INPUT_CRC mismatch)")
        case .resultCRC: throw LinkError(.protocolError, "result corrupted on the way back (RESULT_CRC mismatch)")
        }
    }

    /// After a failure: reset the USB side, then the accelerator's sequence; checks the model is
    /// still loaded (a power loss clears it).
    func reconnect() -> Bool {
        do {
            try link.transport.recover()
            guard try modelLoaded() else { return false }
            try resync()
            return true
        } catch {
            return false
        }
    }

    /// While fallen back: is the board back, with this model (re-uploading it if the board lost it)?
    func probe() -> Bool {
        stats.probes += 1
        do {
            try link.transport.recover()
            if try !modelLoaded() { _ = try link.upload(image: image, identity: identity) }
            try resync()
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
        sequence = 0
    }

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
