// `[energy] model`: where nothing measures a software inference (no readable RAPL), its energy is
// modelled as CPU time × `cpu_watts_per_core`, recorded as `energy_source: "model"` with the
// parameters (docs/daemon.md, "Energy where no meter exists"). An FPGA inference without the
// board's PAC1934 is modelled as its cycles × clock period × `fpga_watts`. Measured figures are
// never replaced or mixed.
import TOMLKit
import AIOTModel
import AIOTTelemetry

extension Reader {
    func readEnergyModel(_ energy: TOMLTable?) throws(ConfigError) -> EnergyModels? {
        let watts = try double(energy, "cpu_watts_per_core", "energy.cpu_watts_per_core", default: CPUTimeEnergyModel.defaultWattsPerCore, min: 0.001, max: 1000)!
        let fpga = try double(energy, "fpga_watts", "energy.fpga_watts", default: FPGACycleEnergyModel.defaultWatts, min: 0.0001, max: 100)!
        switch try string(energy, "model", "energy.model", default: "auto") {
        case "auto": return EnergyModels(cpu: CPUTimeEnergyModel(wattsPerCore: watts), fpga: FPGACycleEnergyModel(watts: fpga))
        case "off": return nil
        case let other: throw err("energy.model", "\"\(other)\" is not \"auto\" (model the software engine's energy where nothing measures it) or \"off\"")
        }
    }
}

extension DaemonCore {
    /// Fills an unmeasured inference's energy from its model, labelled as such.
    func applyEnergyModel(_ m: inout Measurement) {
        guard let models = config.energyModel, m.energyMicrojoules == nil else { return }
        switch m.ranOn {
        case .software:
            let model = models.cpu
            m.energyMicrojoules = model.microjoules(cpuNanos: m.cpuNanos)
            m.sourceWatts = model.wattsPerCore
            m.energyModel = EnergyModelUse(name: CPUTimeEnergyModel.name, wattsPerCore: model.wattsPerCore, cpuMicros: Double(m.cpuNanos) / 1000)
        case .fpga:
            guard !m.metered, let e = models.fpga.microjoules(cycles: m.cycles, clockHz: m.clockHz) else { return }
            m.energyMicrojoules = e
            m.sourceWatts = models.fpga.watts
            m.energyModel = EnergyModelUse(fpgaWatts: models.fpga.watts, cycles: m.cycles, clockHz: m.clockHz)
        }
        m.energySource = "model"
    }
}

/// The energy models `[energy] model = "auto"` enables: one per engine kind.
public struct EnergyModels: Sendable, Equatable {
    public var cpu: CPUTimeEnergyModel
    public var fpga: FPGACycleEnergyModel
    public init(cpu: CPUTimeEnergyModel = CPUTimeEnergyModel(), fpga: FPGACycleEnergyModel = FPGACycleEnergyModel()) {
        self.cpu = cpu
        self.fpga = fpga
    }
}
