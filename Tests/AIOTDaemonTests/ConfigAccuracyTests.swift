// [accuracy] and the [energy] model keys: defaults, bounds, and a level the model file lacks.
import Testing
import Foundation
import AIOTStreams
import AIOTTelemetry
import AIOTModel
@testable import AIOTDaemon

@Test func accuracyAndEnergyModelDefaults() throws {
    let c = try DaemonConfig.parse(minimal)
    #expect(c.accuracy.policy == AccuracyPolicy(windowSize: 48, anomalyQuantile: 0.999, driftFactor: 2, driftSteps: 48))
    #expect(c.accuracy.publishIntervalSeconds == 60 && c.accuracy.topic == "aiot/{gateway}/accuracy/{sensor}")
    #expect(c.energyModel?.cpu == CPUTimeEnergyModel(wattsPerCore: 1.5) && c.energyModel?.fpga == FPGACycleEnergyModel(watts: 0.033))
    let off = try DaemonConfig.parse(minimal + "\n[energy]\nmodel = \"off\"\n[accuracy]\nanomaly_quantile = 0\nwindow = 96\n")
    #expect(off.energyModel == nil && off.accuracy.policy.anomalyQuantile == nil && off.accuracy.policy.windowSize == 96)
}

@Test(arguments: [
    ("[accuracy]\nwindow = 0\n", "accuracy.window"),
    ("[accuracy]\nanomaly_quantile = 1.5\n", "accuracy.anomaly_quantile"),
    ("[accuracy]\ndrift_factor = 0.5\n", "accuracy.drift_factor"),
    ("[accuracy]\ntopic = \"aiot/{gateway}/acc\"\n", "accuracy.topic"),
    ("[accuracy]\nalert_topic = \"aiot/#/{sensor}\"\n", "accuracy.alert_topic"),
    ("[accuracy]\nbogus = 1\n", "accuracy.bogus"),
    ("[energy]\nmodel = \"guess\"\n", "energy.model"),
    ("[energy]\ncpu_watts_per_core = 0\n", "energy.cpu_watts_per_core"),
    ("[energy]\nfpga_watts = 0\n", "energy.fpga_watts"),
])
func accuracyAndEnergyKeysAreBounded(_ extra: String, _ key: String) {
    let e = configError(minimal + "\n" + extra)
    #expect(e?.contains(key) == true, "\(String(describing: e))")
}

@Test func anAnomalyLevelTheModelDoesNotStoreIsRefusedAtBuild() throws {
    let elec = Harness.packageRoot + "/models/elecdemand/W8A8.safetensors"
    let c = try DaemonConfig.parse("gateway = \"g\"\n[accuracy]\nanomaly_quantile = 0.97\n[[stream]]\nsensor = \"e\"\nmodel = \"\(elec)\"\n")
    let store = ModelStore(factory: { m, _ in SoftwareEngine(model: m.quantized) }, cpu: NoPowerSource(), board: { nil })
    #expect(throws: ConfigError.self) { try Generation.build(c, store: store, engineKind: .software) }
    var ok = c
    ok.accuracy.policy.anomalyQuantile = 0.99
    let g = try Generation.build(ok, store: store, engineKind: .software)
    #expect(g.processor.templates[0].reference.thresholds?.count == 1 && g.processor.templates[0].reference.validationMedian != nil)
}

@Test func rollbackDefaultsAndBounds() throws {
    let c = try DaemonConfig.parse(minimal)
    #expect(c.rollback.steps == 48 && c.rollback.worseByPercent == 20)
    let off = try DaemonConfig.parse(minimal + "\n[rollback]\nsteps = 0\nworse_by = 5.5\n")
    #expect(off.rollback.steps == 0 && off.rollback.worseByPercent == 5.5)
    for (extra, key) in [("steps = -1", "rollback.steps"), ("worse_by = -1", "rollback.worse_by"), ("steps = 1e9", "rollback.steps"), ("after = 3", "rollback.after")] {
        let e = configError(minimal + "\n[rollback]\n" + extra + "\n")
        #expect(e?.contains(key) == true, "\(extra): \(String(describing: e))")
    }
}
