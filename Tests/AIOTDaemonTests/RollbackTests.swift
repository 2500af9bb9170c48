// Model switches and automatic rollback, in-process: the bundled elecdemand model on its real test
// split (tools/train/accuracy_reference.py), a deliberately worse model of the same shape (its head
// weights replaced from a seeded generator: the seed is printed), an equally good one, one whose
// engine raises inference errors and one no engine accepts. The core's clock is the test's.
import Testing
import Foundation
import Logging
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry
@testable import AIOTDaemon

/// A publisher that drops everything (allocation counts see only the daemon's own work).
final class NullPublisher: Publisher {
    func publish(_ topic: MQTTTopic, payload: [UInt8], qos: MQTTQoS, retain: Bool) throws(MQTTError) {}
}

/// Writes a copy of the safetensors file `source` to `path` with its head weights (int8) replaced
/// by values from `seed`: same shape, features and normalisation, forecasts no better than noise.
func writePerturbedModel(_ source: String, to path: String, seed: UInt64) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
    let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
    let head = header["head.weight"] as! [String: Any]
    #expect(head["dtype"] as? String == "I8")
    let range = (head["data_offsets"] as! [NSNumber]).map(\.intValue)
    var rng = SplitMix64(seed)
    for i in (8 + n + range[0])..<(8 + n + range[1]) { bytes[i] = UInt8(bitPattern: Int8(Int(rng.next() % 255) - 127)) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// An engine that always fails, like a board that stopped answering.
final class FailingEngine: InferenceEngine {
    let model: QuantizedModel
    init(model: QuantizedModel) { self.model = model }
    var kind: EngineKind { .software }
    func infer(_ input: UnsafeBufferPointer<Int32>, into output: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) {
        throw InferenceError(.device, "test engine: always fails")
    }
}

/// The same model under another identity (what a re-signed, re-deployed copy would be).
func renamed(_ path: String, _ identity: String) throws -> LoadedModel {
    var q = try QuantizedModel(contentsOf: path)
    q.identity = identity
    return LoadedModel(path: path + "#" + identity, model: q)
}

struct RollbackRig {
    let core: DaemonCore
    let pub = FakePublisher()
    let clock = TestClock()
    let ref: AccuracyReferenceData
    let dir: String
    let configPath: String

    /// Models named "broken" get an engine that always fails; "unloadable" gets none.
    init(model: String, steps: Int = 48, silent: Bool = false) throws {
        dir = Harness.tempDir("rollback")
        configPath = dir + "/aiotd.toml"
        ref = try AccuracyReferenceData.load(model: elecModel)
        try CoreRig.write(configPath, """
        [rollback]
        steps = \(steps)
        worse_by = 20

        [[stream]]
        name = "elec"
        sensor = "elec"
        model = "\(model)"
        max_future_s = 3.0e9
        """, limits: "", logDir: dir + "/energy")
        let config = try DaemonConfig.load(path: configPath)
        let factory: EngineFactory = { m, kind in
            if m.identity == "unloadable" { throw EngineUnavailable(description: "test: no engine for this model") }
            if m.identity == "broken" { return FailingEngine(model: m.quantized) }
            return try defaultEngineFactory(m, kind)
        }
        let store = ModelStore(factory: factory, cpu: NoPowerSource(), board: { nil })
        let path = configPath
        core = try DaemonCore(generation: try Generation.build(config, store: store, engineKind: .software), publisher: silent ? NullPublisher() : pub,
                              energyLog: try EnergyLog(directory: config.logDirectory), metrics: .discarded, logger: Logger(label: "test"),
                              version: "test", clock: clock.closure, loadConfig: { () throws(ConfigError) in try DaemonConfig.load(path: path) })
    }

    func feed(_ k: Int) { feed(k, message(k)) }
    func message(_ k: Int) -> MQTTMessage { MQTTMessage(topic: "aiot/gw/readings/elec", payload: Array(ref.payload(k).utf8), qos: 1) }
    func feed(_ k: Int, _ m: MQTTMessage) {
        clock.now.withLock { $0 = max($0, ref.times[k] + 1) }
        core.handle(m)
    }

    /// Published forecasts by window end time: (q, seq).
    var forecasts: [Double: (q: [Int32], seq: Int)] {
        var d: [Double: (q: [Int32], seq: Int)] = [:]
        for f in pub.messages("aiot/gw/forecasts/elec") {
            d[(f["t"] as! NSNumber).doubleValue] = ((f["q"] as! [NSNumber]).map { Int32(truncating: $0) }, (f["seq"] as! NSNumber).intValue)
        }
        return d
    }

    /// What `model` forecasts offline for the window ending at step k.
    func offline(_ model: QuantizedModel, _ k: Int) throws -> [Int32] {
        let w = model.shape.window
        return try SoftwareEngine(model: model).infer(try model.quantizeInput(ref.rows[(k - w + 1)...k].flatMap { $0 }))
    }

    var report: ModelSwitchReport? { core.switching.last["elec"] }
    var status: [String: Any]? { (pub.messages("aiot/gw/status").last?["models"] as? [[String: Any]])?.first?["model_switch"] as? [String: Any] }
}

@Suite(.serialized) struct RollbackTests {
    @Test func aWorseModelFromAReloadIsRolledBackWithinNStepsAndTheOldModelServesAgain() throws {
        let seed = UInt64(0x5EED_2026)
        let dir = Harness.tempDir("worse")
        let path = dir + "/elec.safetensors"
        try FileManager.default.copyItem(atPath: elecModel, toPath: path)
        let rig = try RollbackRig(model: path)
        let good = try QuantizedModel(contentsOf: path)
        for k in 0..<300 { rig.feed(k) }
        let before = rig.forecasts[rig.ref.times[299]]!.seq
        try writePerturbedModel(elecModel, to: path, seed: seed)
        let worse = try QuantizedModel(contentsOf: path)
        #expect(rig.core.reload() == nil)
        let last1 = rig.report
        let r0 = try #require(last1, "seed \(seed)")
        #expect(r0.state == "trial" && r0.origin == .reload && r0.windows == { var w = SwitchedWindows(); w.kept = 1; return w }(), "\(r0)")
        #expect(rig.status?["state"] as? String == "trial")
        var k = 300
        while rig.report?.state == "trial" && k < 400 { rig.feed(k); k += 1 }
        let last2 = rig.report
        let r = try #require(last2)
        print("rollback: seed \(seed): \(r.state) \(r.reason ?? "-") after \(k - 300) readings, \(r.steps) steps, new MAE \(r.newMAE ?? .nan), previous MAE \(r.previousMAE ?? .nan)")
        #expect(r.state == "rolled_back" && r.reason == "worse", "seed \(seed): \(r)")
        // N resolved steps: the window ending at the switch's first reading resolves with the next one.
        #expect(r.steps == 48 && k - 300 <= 48 + 1, "seed \(seed): \(k - 300) readings")
        #expect((r.newMAE ?? 0) > 1.2 * (r.previousMAE ?? .infinity), "seed \(seed)")
        #expect(rig.core.switching.rollbacks[RollbackReason.worse.rawValue] == 1)
        #expect(rig.core.generation.bindings[0].model.identity == good.identity)
        #expect(rig.core.generation.processor.trial(template: 0) == nil)
        #expect(rig.status?["state"] as? String == "rolled_back" && rig.status?["reason"] as? String == "worse")
        // During the trial the new model served the windows kept across the switch: no lost step.
        let f = rig.forecasts
        #expect(f[rig.ref.times[300]]?.seq == before + 1)
        for j in 300..<k { #expect(f[rig.ref.times[j]]?.q == (try rig.offline(worse, j)), "seed \(seed), step \(j)") }
        // After the rollback the previous model serves again, on the same windows.
        for j in k..<(k + 30) { rig.feed(j) }
        let g = rig.forecasts
        for j in k..<(k + 30) { #expect(g[rig.ref.times[j]]?.q == (try rig.offline(good, j)), "seed \(seed), step \(j)") }
        #expect(g.count == 300 - 23 + (k + 30 - 300))
    }

    @Test func anEquallyGoodModelIsKeptAndTheVerdictGoesToTheReplyTopic() throws {
        let rig = try RollbackRig(model: elecModel)
        for k in 0..<300 { rig.feed(k) }
        let reply = try MQTTTopic("aiot/gw/deploy/reply/d1")
        let copy = try renamed(elecModel, "elec-copy")
        let rs = rig.core.switchModel(streams: .named(["elec"]), to: copy, origin: .deployment("d1"), guarded: true, reply: reply)
        #expect(rs.count == 1 && rs[0].state == "trial")
        for k in 300..<349 { rig.feed(k) }
        let last3 = rig.report
        let r = try #require(last3)
        #expect(r.state == "kept" && r.steps == 48, "\(r)")
        // The same weights: both errors are measured on the same targets, so they are equal.
        #expect(r.newMAE != nil && r.newMAE == r.previousMAE, "\(r)")
        let replies = rig.pub.messages("aiot/gw/deploy/reply/d1")
        #expect(replies.map { $0["state"] as? String } == ["trial", "kept"])
        #expect(replies.last?["origin"] as? String == "deployment:d1")
        #expect(rig.core.generation.bindings[0].model.identity == "elec-copy")
        // Another quantization of the same data set (W6A8S after elecModel's W8A8S: its own input scale): the ring is
        // re-quantized, and the model is kept when it is within worse_by.
        let w6 = try LoadedModel(contentsOf: Harness.packageRoot + "/models/elecdemand/W6A8S.safetensors")
        let r2 = rig.core.switchModel(streams: .all, to: w6, origin: .reload, guarded: true)[0]
        #expect(r2.windows.requantized == 1 && r2.state == "trial", "\(r2)")
        for k in 349..<398 { rig.feed(k) }
        let last4 = rig.report
        let r3 = try #require(last4)
        print("rollback: W6A8S after W8A8S: \(r3.state), new MAE \(r3.newMAE ?? .nan), previous MAE \(r3.previousMAE ?? .nan)")
        #expect(r3.state == "kept" && r3.to == w6.identity, "\(r3)")
        #expect(rig.core.switching.rollbacks == [0, 0, 0])
    }

    @Test func aModelThatRaisesInferenceErrorsIsRolledBackAtOnceAndNoStepIsLost() throws {
        let rig = try RollbackRig(model: elecModel)
        let good = try QuantizedModel(contentsOf: elecModel)
        for k in 0..<100 { rig.feed(k) }
        #expect(rig.core.switchModel(streams: .all, to: try renamed(elecModel, "broken"), origin: .deployment("d2"), guarded: true)[0].state == "trial")
        rig.feed(100)
        let last5 = rig.report
        let r = try #require(last5)
        #expect(r.state == "rolled_back" && r.reason == "inference_error" && r.steps == 0, "\(r)")
        #expect(rig.core.counters.inferenceErrors == 1)
        #expect(rig.core.switching.rollbacks[RollbackReason.inferenceError.rawValue] == 1)
        for k in 101..<110 { rig.feed(k) }
        let f = rig.forecasts
        // The failed window was forecast by the previous model: every step has its forecast.
        for k in 99..<110 { #expect(f[rig.ref.times[k]]?.q == (try rig.offline(good, k)), "step \(k)") }
        #expect(f.count == 110 - 23)
    }

    @Test func aModelNoEngineAcceptsIsRefusedAndAnotherShapeRebuildsTheWindows() throws {
        let rig = try RollbackRig(model: elecModel)
        for k in 0..<50 { rig.feed(k) }
        let r = rig.core.switchModel(streams: .all, to: try renamed(elecModel, "unloadable"), origin: .deployment("d3"), guarded: true)[0]
        #expect(r.state == "rolled_back" && r.reason == "load_failed" && (r.detail ?? "").contains("no engine"), "\(r)")
        #expect(rig.core.generation.bindings[0].model.identity != "unloadable")
        rig.feed(50)
        #expect(rig.forecasts.count == 51 - 23)
        // Another horizon, the same input: windows kept, no shadow comparison (the switch is final).
        let p48 = try LoadedModel(contentsOf: Harness.packageRoot + "/models/elecdemand-p48/W6A8.safetensors")
        let r48 = rig.core.switchModel(streams: .all, to: p48, origin: .reload, guarded: true)[0]
        #expect(r48.state == "switched" && r48.windows.kept + r48.windows.requantized == 1, "\(r48)")
        rig.feed(51)
        #expect(rig.forecasts.count == 52 - 23)
        // Another input shape: the window starts over.
        let other = try LoadedModel(contentsOf: Harness.packageRoot + "/models/random/w12f2d8h2n2p3-w4a8.safetensors")
        let rr = rig.core.switchModel(streams: .all, to: other, origin: .reload, guarded: true)[0]
        #expect(rr.state == "switched" && rr.windows.rebuilt == 1, "\(rr)")
        #expect(rig.core.switchModel(streams: .named(["nope"]), to: other, origin: .reload, guarded: true).isEmpty)
    }

    @Test func aReloadDuringATrialKeepsItUnlessTheStreamChanged() throws {
        let seed = UInt64(0x5EED_2027)
        let dir = Harness.tempDir("worse2")
        let path = dir + "/elec.safetensors"
        try FileManager.default.copyItem(atPath: elecModel, toPath: path)
        let rig = try RollbackRig(model: path)
        let good = try QuantizedModel(contentsOf: path)
        for k in 0..<300 { rig.feed(k) }
        try writePerturbedModel(elecModel, to: path, seed: seed)
        #expect(rig.core.reload() == nil && rig.report?.state == "trial")
        for k in 300..<320 { rig.feed(k) }
        // The same file again (a SIGHUP for another reason): the trial and its shadows continue.
        #expect(rig.core.reload() == nil)
        #expect(rig.report?.state == "trial" && rig.core.generation.processor.trial(template: 0)?.steps == 19, "seed \(seed): \(String(describing: rig.report))")
        var k = 320
        while rig.report?.state == "trial" && k < 400 { rig.feed(k); k += 1 }
        #expect(rig.report?.state == "rolled_back" && rig.report?.steps == 48 && k - 300 == 49, "seed \(seed): \(String(describing: rig.report)) after \(k - 300)")
        for j in k..<(k + 5) { rig.feed(j) }
        for j in k..<(k + 5) { #expect(rig.forecasts[rig.ref.times[j]]?.q == (try rig.offline(good, j)), "seed \(seed), step \(j)") }
        // A trial whose stream changes otherwise (here its reorder policy) ends keeping the model serving.
        #expect(rig.core.reload() == nil && rig.report?.state == "trial")
        let text = try String(contentsOfFile: rig.configPath, encoding: .utf8)
        try text.replacingOccurrences(of: "max_future_s = 3.0e9", with: "max_future_s = 3.0e9\nreorder_steps = 3").write(toFile: rig.configPath, atomically: true, encoding: .utf8)
        #expect(rig.core.reload() == nil)
        #expect(rig.report?.state == "superseded" && rig.core.switching.active == 0 && rig.core.generation.processor.trial(template: 0) == nil)
    }

    @Test func aReloadToAModelThatNormalisesDifferentlyKeepsTheWindow() throws {
        // Before switchModel a reload kept a window only when the new model's I/O was identical: a
        // retrained or requantized model (W6A8S after W8A8S: another input scale and zero point)
        // started every window over, losing `window` steps of forecasts.
        let dir = Harness.tempDir("requant")
        let path = dir + "/elec.safetensors"
        try FileManager.default.copyItem(atPath: elecModel, toPath: path)
        let rig = try RollbackRig(model: path)
        for k in 0..<100 { rig.feed(k) }
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: Harness.packageRoot + "/models/elecdemand/W6A8S.safetensors", toPath: path)
        #expect(rig.core.reload() == nil)
        let r = rig.report
        #expect(r?.state == "trial" && r?.windows.requantized == 1, "\(String(describing: r))")
        rig.feed(100)
        #expect(rig.forecasts[rig.ref.times[100]]?.seq == 100 - 23 + 1, "the first reading after the reload forecasts")
    }
}

/// Failure messages name the rig, not its data (the test split is thousands of numbers).
extension RollbackRig: CustomTestStringConvertible {
    var testDescription: String { "RollbackRig(\(dir))" }
}
