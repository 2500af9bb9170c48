// The daemon core in-process: no broker, no binary. A fake publisher records what would go out and
// the test owns the clock, so routing, policy, limits, eviction, commands and reload are checked
// message by message.
import Testing
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import AIOTModel
import AIOTMQTT
import AIOTStreams
import AIOTTelemetry
@testable import AIOTDaemon

final class FakePublisher: PublishingConnection {
    let sent = Mutex<[(topic: String, payload: String, retain: Bool)]>([])
    let stopped = Atomic<Bool>(false)
    var inflightCount: Int { 0 }
    func waitForPublishes(timeout: Duration) async -> Bool { true }
    func stop() { stopped.store(true, ordering: .sequentiallyConsistent) }
    func publish(_ topic: MQTTTopic, payload: [UInt8], qos: MQTTQoS, retain: Bool) throws(MQTTError) {
        sent.withLock { $0.append((topic.string, String(decoding: payload, as: UTF8.self), retain)) }
    }
    func messages(_ prefix: String) -> [[String: Any]] {
        sent.withLock { $0.filter { $0.topic.hasPrefix(prefix) } }.compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.payload.utf8))) as? [String: Any]
        }
    }
    func count(_ prefix: String) -> Int { sent.withLock { $0.filter { $0.topic.hasPrefix(prefix) }.count } }
}

final class TestClock: @unchecked Sendable {
    let now = Mutex<Double>(T0 + 1)
    var closure: @Sendable () -> Double { { [self] in now.withLock { $0 } } }
}

struct CoreRig {
    let core: DaemonCore
    let pub = FakePublisher()
    let clock = TestClock()
    let configPath: String

    init(_ body: String, limits: String = "", log: String = "") throws {
        let dir = Harness.tempDir("core")
        configPath = dir + "/aiotd.toml"
        try Self.write(configPath, body, limits: limits, logDir: dir + "/energy", log: log)
        let config = try DaemonConfig.load(path: configPath)
        let store = ModelStore(factory: defaultEngineFactory, cpu: NoPowerSource(), board: { nil })
        let path = configPath
        core = try DaemonCore(generation: try Generation.build(config, store: store, engineKind: .software), publisher: pub,
                              energyLog: try EnergyLog(directory: config.logDirectory), metrics: .discarded, logger: Logger(label: "test"),
                              version: "test", clock: clock.closure, loadConfig: { () throws(ConfigError) in try DaemonConfig.load(path: path) })
    }

    static func write(_ path: String, _ body: String, limits: String, logDir: String, log: String = "") throws {
        try """
        gateway = "gw"
        [log]
        directory = "\(logDir)"
        \(log)
        [limits]
        \(limits)

        \(body)
        """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A reading as it would arrive, stamped by the test clock.
    func send(_ sensor: String, step k: Int, _ v: Double) {
        clock.now.withLock { $0 = max($0, T0 + Double(k) * 60 + 1) }
        core.handle(MQTTMessage(topic: "aiot/gw/readings/\(sensor)", payload: Array("{\"t\": \(T0 + Double(k) * 60), \"v\": \(v)}".utf8), qos: 1))
    }
    func command(_ name: String, _ body: String) {
        core.handle(MQTTMessage(topic: "aiot/gw/cmd/\(name)", payload: Array(body.utf8), qos: 1))
    }
    func reply(_ id: String) -> [String: Any]? { pub.messages("aiot/gw/reply/\(id)").last }
}

let fleet = """
[[stream]]
name = "fleet"
sensors = ["+"]
model = "\(singleModel)"
max_future_s = 3.0e9
"""

@Suite struct CoreTests {
    @Test func oneTemplateServesEverySensorWithTheOfflineForecasts() throws {
        let rig = try CoreRig(fleet)
        let sensors = ["a", "b", "meter-17"]
        var rows: [[Double]] = []
        for k in 0..<30 {
            rows.append([signal(k, 0)])
            for (i, s) in sensors.enumerated() { rig.send(s, step: k, signal(k, 0) + Double(i) * 0) }
        }
        let expected = try offlineForecasts(model: singleModel, rows: rows)
        for s in sensors {
            let got = rig.pub.messages("aiot/gw/forecasts/\(s)")
            #expect(got.count == expected.count, "\(s): \(got.count) forecasts")
            for f in got {
                let t = (f["t"] as! NSNumber).doubleValue
                #expect((f["q"] as? [NSNumber])?.map { Int32(truncating: $0) } == expected[t]?.q, "\(s) at \(t)")
                #expect(f["sensor"] as? String == s)
            }
            #expect(got.compactMap { ($0["seq"] as? NSNumber)?.intValue } == Array(1...expected.count))
        }
        // One model, one engine for all of them.
        #expect(rig.core.generation.store.models.count == 1)
        #expect(rig.core.generation.processor.liveSensors == 3)
    }

    @Test func theMostSpecificStanzaWinsAndUnmatchedSensorsAreRejected() throws {
        let rig = try CoreRig("""
        [[stream]]
        name = "rooms"
        sensors = ["room-*", "hall"]
        model = "\(singleModel)"
        max_future_s = 3.0e9
        [[stream]]
        sensor = "room-7"
        model = "\(multiModel)"
        max_future_s = 3.0e9
        """)
        let p = rig.core.generation.processor
        func template(_ n: String) -> Int? { var s = n; return s.withUTF8 { p.template(for: $0) } }
        #expect(template("room-1") == 0 && template("hall") == 0 && template("room-7") == 1 && template("kitchen") == nil)
        rig.send("kitchen", step: 0, 1)
        #expect(rig.core.counters.rejected[RejectReason.unknownSensor.rawValue] == 1)
        #expect(p.liveSensors == 0)
    }

    @Test func sensorsBeyondTheLimitAreRejectedAndCountedNotServed() throws {
        let rig = try CoreRig(fleet, limits: "max_sensors = 2")
        rig.send("a", step: 0, 1); rig.send("b", step: 0, 1); rig.send("c", step: 0, 1); rig.send("c", step: 1, 1)
        #expect(rig.core.counters.rejected[RejectReason.sensorLimit.rawValue] == 2)
        #expect(rig.core.counters.accepted == 2)
        // Garbage never takes a slot either.
        rig.core.handle(MQTTMessage(topic: "aiot/gw/readings/d", payload: Array("{".utf8), qos: 1))
        #expect(rig.core.generation.processor.liveSensors == 2)
        rig.command("status", "{\"id\": \"s1\", \"sensors\": true}")
        let r = try #require(rig.reply("s1"))
        #expect(r["sensor_names"] as? [String] == ["a", "b"])
        let status = r["status"] as? [String: Any]
        #expect(status?["sensors"] as? Int == 2)
        #expect(((status?["counters"] as? [String: Any])?["readings_rejected"] as? [String: Int])?["sensor_limit"] == 2)
        let models = status?["models"] as? [[String: Any]]
        #expect(models?.first?["sensors"] as? Int == 2 && models?.first?["stream"] as? String == "fleet")
    }

    @Test func statusCarriesTheIntakeRefusals() throws {
        let rig = try CoreRig(fleet)
        rig.command("status", "{\"id\": \"h0\"}")
        let before = try #require(rig.reply("h0")?["status"] as? [String: Any])
        #expect((before["counters"] as? [String: Any])?["mqtt_oversized_refused"] as? Int == 0)
        #expect(before["subscription_refused"] == nil)
        rig.core.intakeHealth = { IntakeHealth(oversizedRefused: 3, refusedSubscription: "aiot/gw/readings/+ (SUBACK reason code 0x87)") }
        rig.command("status", "{\"id\": \"h1\"}")
        let after = try #require(rig.reply("h1")?["status"] as? [String: Any])
        #expect((after["counters"] as? [String: Any])?["mqtt_oversized_refused"] as? Int == 3)
        #expect(after["subscription_refused"] as? String == "aiot/gw/readings/+ (SUBACK reason code 0x87)")
    }

    @Test func idleSensorsAreEvictedAndComeBackFresh() throws {
        let rig = try CoreRig(fleet, limits: "sensor_idle_s = 100")
        for k in 0..<5 { rig.send("a", step: k, 1) }
        rig.send("b", step: 4, 1)
        let now = rig.clock.now.withLock { $0 }
        rig.core.tick(now: now + 50)
        #expect(rig.core.generation.processor.liveSensors == 2)
        rig.core.tick(now: now + 150)
        #expect(rig.core.generation.processor.liveSensors == 0)
        #expect(rig.core.generation.processor.counters[0].evicted == 2)
        rig.send("a", step: 10, 1)
        #expect(rig.core.generation.processor.sensor(named: "a")?.accepted == 1)
    }

    @Test func commandsAnswerOnTheirReplyTopicAndBadOnesAreRefused() throws {
        let rig = try CoreRig(fleet + "\n[commands]\nallow = [\"status\", \"engine\"]\n")
        rig.command("nope", "{\"id\": \"x1\"}")
        #expect(rig.reply("x1")?["ok"] as? Bool == false)
        rig.command("engine", "{\"id\": \"x2\", \"engine\": \"warp\"}")
        #expect(rig.reply("x2")?["ok"] as? Bool == false)
        rig.command("engine", "{\"id\": \"x3\", \"engine\": \"fpga\"}")
        #expect(rig.reply("x3")?["ok"] as? Bool == false, "no board configured: refused, software keeps running")
        #expect(rig.core.engineKind == .software)
        rig.command("status", "{\"no id\": 1}")
        rig.command("status", "{\"id\": \"a/b\"}")
        #expect(rig.pub.count("aiot/gw/reply/") == 3)
        rig.command("status", "{\"id\": 42}")
        #expect((rig.reply("42")?["status"] as? [String: Any])?["online"] as? Bool == true)
    }

    @Test func reloadKeepsWindowsOfUnchangedTemplatesAndARefusedReloadChangesNothing() throws {
        let rig = try CoreRig(fleet)
        for k in 0..<30 { rig.send("a", step: k, signal(k, 0)) }
        let before = rig.pub.count("aiot/gw/forecasts/a")
        #expect(before == 30 - 24 + 1)
        // Add a second template; "a" keeps its window: the next reading forecasts at once.
        try CoreRig.write(rig.configPath, fleet + "\n[[stream]]\nsensor = \"solo\"\nmodel = \"\(multiModel)\"\n", limits: "",
                          logDir: rig.core.config.logDirectory)
        #expect(rig.core.reload() == nil)
        #expect(rig.core.generation.processor.templates.count == 2)
        rig.send("a", step: 30, signal(30, 0))
        #expect(rig.pub.count("aiot/gw/forecasts/a") == before + 1)
        #expect(rig.pub.messages("aiot/gw/forecasts/a").last?["seq"] as? Int == before + 1)
        // A broken file, and one with a number that would trap Duration.seconds: refused.
        for bad in ["[[stream]]\nsensor = 3\n", fleet + "\n[status]\ninterval_s = 1e300\n"] {
            try CoreRig.write(rig.configPath, bad, limits: "", logDir: rig.core.config.logDirectory)
            #expect(rig.core.reload() != nil)
            #expect(rig.core.generation.processor.templates.count == 2)
        }
    }

    @Test func spooledMessagesReplayReadingsButNeverCommands() throws {
        // rotate is allowed, so a re-run would answer ok (and a refusal would answer too).
        let rig = try CoreRig(fleet + "\n[commands]\nallow = [\"status\", \"rotate\"]\n")
        let dir = Harness.tempDir("spool")
        let queue = InboundQueue(capacity: 8)
        for k in 0..<3 { _ = queue.push(.message(MQTTMessage(topic: "aiot/gw/readings/a", payload: Array("{\"t\": \(T0 + Double(k) * 60), \"v\": 1}".utf8), qos: 1))) }
        _ = queue.push(.message(MQTTMessage(topic: "aiot/gw/cmd/rotate", payload: Array("{\"id\": \"r\"}".utf8), qos: 1)))
        // Shutdown: intake stopped, nothing processed; what the queue holds goes to the spool.
        ProcessingService.spool(queue.close(), to: ReadingSpool(directory: dir), logger: Logger(label: "test"))
        let r = try ReadingSpool(directory: dir).replay { rec in
            rig.core.handle(MQTTMessage(topic: rec.topic, payload: rec.payload, qos: 1), arrivedAt: rec.arrivedAt)
        }
        #expect(r.replayed == 4)
        #expect(rig.core.counters.accepted == 3)
        #expect(rig.pub.count("aiot/gw/reply/") == 0)
    }
}

@Test func theInboundQueueIsBoundedInBytesAsWellAsMessages() async throws {
    let q = InboundQueue(capacity: 100, maxBytes: 3 << 20)
    let big = MQTTMessage(topic: "aiot/gw/readings/a", payload: [UInt8](repeating: 0x31, count: 2 << 20), qos: 1)
    #expect(q.push(.message(big)))
    // A second 2 MiB message would hold 4 MiB: the network thread waits (TCP pushes back).
    let pushed = Atomic<Bool>(false)
    let t = Thread { _ = q.push(.message(big)); pushed.store(true, ordering: .sequentiallyConsistent) }
    t.start()
    try await Task.sleep(for: .milliseconds(300))
    let early = pushed.load(ordering: .sequentiallyConsistent)
    #expect(!early)
    #expect(q.bytes <= 3 << 20)
    var batch: [MQTTEvent] = []
    #expect(q.popBatch(into: &batch, max: 64) && batch.count == 1)
    q.done()
    let done = await Harness.waitUntil(timeout: 5) { pushed.load(ordering: .sequentiallyConsistent) }
    #expect(done)
    // One message bigger than the whole budget still passes through an empty queue, alone.
    #expect(q.popBatch(into: &batch, max: 64) && batch.count == 1)
    q.done()
    // Shutdown: a full queue no longer holds up the network thread; nothing it hands over is lost.
    let small = MQTTMessage(topic: "aiot/gw/readings/a", payload: [0x31], qos: 1)
    let full = InboundQueue(capacity: 2)
    #expect(full.push(.message(small)) && full.push(.message(small)))
    full.beginDraining()
    #expect(full.push(.message(small)))
    #expect(full.close().count == 3)
    #expect(q.close().isEmpty)
}

/// Graceful shutdown in-process: the processing service drains what intake queued, publishes the
/// retained offline status, waits for acknowledgements, disconnects; what it cannot process in
/// time is spooled, never dropped.
@Test func gracefulShutdownDrainsThenSaysOfflineAndStopsThePublisher() async throws {
    let rig = try CoreRig(fleet)
    let queue = InboundQueue(capacity: 64)
    let spool = ReadingSpool(directory: Harness.tempDir("shutdown"))
    let processing = ProcessingService(holder: CoreHolder(rig.core), inbound: queue, publisher: rig.pub, spool: spool,
                                       notifier: SystemdNotifier(environment: [:]), logger: Logger(label: "test"))
    processing.startThread()
    for k in 0..<30 {
        _ = queue.push(.message(MQTTMessage(topic: "aiot/gw/readings/a", payload: Array("{\"t\": \(T0 + Double(k) * 60), \"v\": \(signal(k, 0))}".utf8), qos: 1)))
    }
    let group = ServiceGroup(configuration: .init(services: [.init(service: processing, successTerminationBehavior: .gracefullyShutdownGroup)],
                                                  logger: Logger(label: "test")))
    try await withThrowingTaskGroup(of: Void.self) { g in
        g.addTask { try await group.run() }
        await group.triggerGracefulShutdown()
        try await g.waitForAll()
    }
    #expect(rig.core.counters.accepted == 30)
    #expect(rig.pub.count("aiot/gw/forecasts/a") == 30 - 24 + 1)
    let last = rig.pub.sent.withLock { $0.last }
    #expect(last?.topic == "aiot/gw/status" && last?.retain == true && last?.payload.contains("\"online\":false") == true)
    let stopped = rig.pub.stopped.load(ordering: .sequentiallyConsistent)
    #expect(stopped)
    #expect(!FileManager.default.fileExists(atPath: spool.spoolPath), "an idle queue leaves no spool")
    #expect(!queue.push(.message(MQTTMessage(topic: "aiot/gw/readings/a", payload: [0x31], qos: 1))), "closed after shutdown")
}
