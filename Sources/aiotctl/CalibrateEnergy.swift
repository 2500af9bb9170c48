// aiotctl calibrate-energy: fits the energy model's watts per busy core (aiotd's
// energy.cpu_watts_per_core) against the RAPL package counter, where the machine lets us read it.
import ArgumentParser
import Foundation
import AIOTModel
import AIOTTelemetry

struct CalibrateEnergy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate-energy",
        abstract: "Fit energy.cpu_watts_per_core (aiotd's energy model) against RAPL on this machine.",
        discussion: """
            Measures the package power idle, then while the software engine runs the model on one thread, and \
            divides the extra energy by the thread's CPU time. Needs readable RAPL counters \
            (/sys/class/powercap/intel-rapl:N/energy_uj, root-only on current kernels); VMs and ARM gateways \
            usually have none, and then it says so and fits nothing.
            """)

    @Option(help: "Model file (.safetensors); its NAME.vectors.txt inputs are used when present.")
    var model: String

    @Option(help: "Seconds to measure idle and busy, each (1...600).")
    var seconds = 5.0

    @Option(help: "RAPL root (for tests).")
    var powercap = "/sys/class/powercap"

    func validate() throws {
        guard (1...600).contains(seconds) else { throw ValidationError("--seconds must be within 1...600") }
    }

    func run() throws {
        guard let rapl = RAPLPowerSource(root: powercap), let e0 = rapl.energyMicrojoules() else {
            printError("RAPL package counters are not readable here (\(powercap)/intel-rapl:N/energy_uj missing or not permitted; reading them needs root on kernels since 2020): nothing to fit. Keep energy.cpu_watts_per_core at its default (\(CPUTimeEnergyModel.defaultWattsPerCore) W) or set it from an external meter's reading.")
            throw ExitCode(2)
        }
        let m = try loadModel(model)
        let engine = SoftwareEngine(model: m)
        let n = m.shape.window * m.shape.features
        var input = [Int32](repeating: 0, count: n)
        let vpath = model.hasSuffix(".safetensors") ? String(model.dropLast(12)) + ".vectors.txt" : ""
        if let text = try? String(contentsOfFile: vpath, encoding: .utf8), let v = try? TestVectors(text: text), v.count > 0 {
            input = Array(v.inputs[0..<n])
        }
        var output = [Int32](repeating: 0, count: m.shape.horizon)
        func wall() -> Double { Date().timeIntervalSince1970 }
        // Idle: the package with this process asleep.
        let i0 = wall()
        Thread.sleep(forTimeInterval: seconds)
        guard let e1 = rapl.energyMicrojoules() else { throw ValidationError("RAPL stopped answering") }
        let idleW = Double(e1 - e0) / 1e6 / (wall() - i0)
        // Busy: inferences back to back on this thread.
        let c0 = threadCPUNanos(), b0 = wall()
        var runs = 0
        while wall() - b0 < seconds {
            for _ in 0..<64 {
                try input.withUnsafeBufferPointer { i in try output.withUnsafeMutableBufferPointer { o in try engine.infer(i, into: o) } }
            }
            runs += 64
        }
        guard let e2 = rapl.energyMicrojoules() else { throw ValidationError("RAPL stopped answering") }
        let busyS = wall() - b0, cpuS = Double(threadCPUNanos() - c0) * 1e-9
        let busyW = Double(e2 - e1) / 1e6 / busyS
        let perCore = max(0, busyW - idleW) * busyS / cpuS
        print("idle package power \(fixed(idleW)) W, busy \(fixed(busyW)) W over \(runs) inferences (\(fixed(cpuS)) s CPU in \(fixed(busyS)) s)")
        print("energy.cpu_watts_per_core = \(fixed(perCore))   # fitted on this machine; RAPL counts the whole package, so other load inflates it")
    }

    func fixed(_ v: Double) -> String { String(format: "%.3f", v) }
}
