// `[energy] model`: where nothing measures a software inference (no readable RAPL), its energy is
// modelled as CPU time × `cpu_watts_per_core`, recorded as `energy_source: "model"` with the
// parameters (docs/daemon.md, "Energy where no meter exists"). Measured figures are never replaced
// or mixed; FPGA inferences without the board's PAC1934 stay unmeasured ("none").
import TOMLKit
import AIOTModel
import AIOTTelemetry

extension Reader {
    func readEnergyModel(_ energy: TOMLTable?) throws(ConfigError) -> CPUTimeEnergyModel? {
        let watts = try double(energy, "cpu_watts_per_core", "energy.cpu_watts_per_core", default: CPUTimeEnergyModel.defaultWattsPerCore, min: 0.001, max: 1000)!
        switch try string(energy, "model", "energy.model", default: "auto") {
        case "auto": return CPUTimeEnergyModel(wattsPerCore: watts)
        case "off": return nil
        case let other: throw err("energy.model", "\"\(other)\" is not \"auto\" (model the software engine's energy where nothing measures it) or \"off\"")
        }
    }
}

extension DaemonCore {
    /// Fills an unmeasured software inference's energy from the model, labelled as such.
    func applyEnergyModel(_ m: inout Measurement) {
        guard let model = config.energyModel, m.ranOn == .software, m.energyMicrojoules == nil else { return }
        m.energyMicrojoules = model.microjoules(cpuNanos: m.cpuNanos)
        m.energySource = "model"
        m.sourceWatts = model.wattsPerCore
        m.energyModel = EnergyModelUse(name: CPUTimeEnergyModel.name, wattsPerCore: model.wattsPerCore, cpuMicros: Double(m.cpuNanos) / 1000)
    }
}
