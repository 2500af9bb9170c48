// Energy where no meter exists: a model, labelled as one in every record it fills
// (`energy_source: "model"` with the model's name and parameters), never mixed with measurements.
#if canImport(Glibc)
import Glibc
#endif

/// Software engine: the CPU time the inference took on its thread × a power figure per busy core.
/// The figure is an input (configuration, or fitted by `aiotctl calibrate-energy` where RAPL is
/// readable), not a measurement; the log carries it beside each figure.
public struct CPUTimeEnergyModel: Sendable, Equatable {
    public static let name = "cpu-time"
    /// Documented default (docs/daemon.md): one busy core of a small ARM gateway SoC, order of magnitude.
    public static let defaultWattsPerCore = 1.5
    public var wattsPerCore: Double
    public init(wattsPerCore: Double = defaultWattsPerCore) { self.wattsPerCore = wattsPerCore }

    /// Microjoules for `cpuNanos` of thread CPU time.
    public func microjoules(cpuNanos: UInt64) -> Double { Double(cpuNanos) * 1e-9 * wattsPerCore * 1e6 }
}

/// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), nanoseconds.
@inline(__always)
public func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// FPGA engine without a power monitor: the accelerator's own cycle count of the inference (the
/// RESULT block's CYCLES) × its clock period × a device power figure. The figure is an input
/// (configuration; the default is the operating point of docs/hardware.md's power model), not a
/// measurement: the log carries it, the cycles and the clock beside each figure.
public struct FPGACycleEnergyModel: Sendable, Equatable {
    public static let name = "fpga-cycles"
    /// docs/hardware.md, "Energy per inference": the XC7S15 operating point, 33 mW.
    public static let defaultWatts = 0.033
    public var watts: Double
    public init(watts: Double = defaultWatts) { self.watts = watts }

    /// Microjoules for `cycles` at `clockHz`; nil when the board reported no cycles or clock.
    public func microjoules(cycles: UInt32, clockHz: UInt32) -> Double? {
        guard cycles > 0, clockHz > 0 else { return nil }
        return Double(cycles) / Double(clockHz) * watts * 1e6
    }
}

/// What a modelled figure was computed from, written into its record.
public struct EnergyModelUse: Sendable, Equatable {
    public var name: String
    /// The power figure: per busy core (cpu-time) or of the device (fpga-cycles).
    public var wattsPerCore: Double
    public var cpuMicros: Double
    /// fpga-cycles only: the accelerator's cycles and clock.
    public var cycles: UInt32?
    public var clockHz: UInt32?
    public init(name: String, wattsPerCore: Double, cpuMicros: Double) {
        self.name = name
        self.wattsPerCore = wattsPerCore
        self.cpuMicros = cpuMicros
    }
    public init(fpgaWatts: Double, cycles: UInt32, clockHz: UInt32) {
        name = FPGACycleEnergyModel.name
        wattsPerCore = fpgaWatts
        cpuMicros = 0
        self.cycles = cycles
        self.clockHz = clockHz
    }
}
