// The FPGA's energy for the per-inference log: the board's PAC1934 accumulators (AIOTBoard's
// PowerMonitor) behind AIOTTelemetry's PowerSource protocol.
#if canImport(Glibc)
import Glibc
#endif
import AIOTBoard
import AIOTTelemetry

/// The FPGA rails (PAC1934 at 0x11: VCCINT, VCCAUX, VCCO, VCCBRAM) as a cumulative energy counter.
///
/// The accumulators are read once per energy window (`board.energy_window_s`) by `closeWindowIfDue`,
/// which the pipeline calls between inferences: never inside one, because reading them takes
/// channel-B round trips and a ≥ 1 ms REFRESH settle. The PAC samples at 1024/s, far coarser than
/// one inference (~0.35 ms), so an inference's energy is the FPGA rails' average power over the
/// latest closed window times the inference's own interval on the board's clock (the modelled clock
/// of a simulated board, the monotonic clock otherwise). Before the first window closes, and after
/// a failed read, the counter is unavailable (nil): no figure rather than an invented one.
public final class BoardPowerSource: PowerSource {
    public var name: String { "pac1934" }
    let monitor: PowerMonitor
    let transport: Transport
    let windowSeconds: Double
    /// Energy measured by the accumulators over all closed windows (joules).
    public private(set) var measuredJoules = 0.0
    /// The counter's value at `windowStart`: it integrates the latest average power over time, so it
    /// is continuous and monotonic across window boundaries.
    var baseJoules = 0.0
    /// Average FPGA-rail power over the latest closed window, if any.
    public private(set) var watts: Double?
    var windowStart: Double
    public private(set) var windows = 0
    public private(set) var readErrors = 0
    public private(set) var lastError: String?

    public init(transport: Transport, windowSeconds: Double, profile: BoardProfile = .xc7s15Gateway) {
        self.transport = transport
        monitor = PowerMonitor(transport: transport, profile: profile)
        self.windowSeconds = windowSeconds
        windowStart = 0
        // Start a window now: resets the accumulators, so the first figure covers only our own run.
        _ = try? monitor.refresh(resetAccumulators: true)
        windowStart = clock()
    }

    func clock() -> Double {
        if let t = transport.modelledSeconds { return t }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Closes the energy window when it is due (or when no figure exists yet and a first short
    /// window of 1/100 of the configured length has passed). Call between inferences.
    public func closeWindowIfDue() {
        let elapsed = clock() - windowStart
        guard elapsed >= (watts == nil ? windowSeconds / 100 : windowSeconds) else { return }
        closeWindow()
    }

    /// Reads the accumulators of the FPGA rails (and resets them): one energy window.
    public func closeWindow() {
        let now = clock()
        if let watts { baseJoules += watts * max(0, now - windowStart) }
        do {
            let rails = try monitor.read(resetAccumulators: true)
            let fpga = rails.filter { $0.monitor == Int(monitor.addresses[0]) }
            let joules = fpga.reduce(0) { $0 + $1.joules }
            let seconds = Double(fpga.first?.samples ?? 0) / PowerMonitor.samplesPerSecond
            measuredJoules += joules
            if seconds > 0 { watts = joules / seconds }
            windows += 1
        } catch {
            // A board that went away: no figures until a window reads again.
            readErrors += 1
            lastError = error.message
            watts = nil
        }
        windowStart = now
    }

    public func energyMicrojoules() -> UInt64? {
        energyJoules().map { UInt64($0 * 1e6) }
    }

    /// The same counter in joules, without the protocol's 1 µJ steps (an inference is ~20-80 µJ).
    public func energyJoules() -> Double? {
        guard let watts else { return nil }
        return baseJoules + watts * max(0, clock() - windowStart)
    }
}
