// Batched inference in the core: the messages of one queue batch are taken one by one and their
// windows run as one batched pass per model (Batching.swift). What goes out must be what one
// message at a time gives: the same forecasts, sequence numbers and resolved errors per sensor.
import Testing
import Foundation
import AIOTMQTT
import AIOTStreams
@testable import AIOTDaemon

@Suite struct BatchingTests {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["AIOT_TEST_SEED"].flatMap { UInt64($0) }
        ?? UInt64(Date().timeIntervalSince1970)

    /// Readings of six sensors, 40 steps, sent in a shuffled-but-per-sensor-ordered interleaving.
    static func readings(seed: UInt64) -> [(sensor: String, step: Int, value: Double)] {
        var rng = SplitMix64(seed)
        let sensors = (0..<6).map { "s\($0)" }
        var next = [Int](repeating: 0, count: sensors.count)
        var out: [(String, Int, Double)] = []
        while next.contains(where: { $0 < 40 }) {
            let i = Int(rng.next() % UInt64(sensors.count))
            guard next[i] < 40 else { continue }
            out.append((sensors[i], next[i], signal(next[i], 0) + Double(i) * 0.1))
            next[i] += 1
        }
        return out
    }

    func message(_ r: (sensor: String, step: Int, value: Double)) -> MQTTMessage {
        MQTTMessage(topic: "aiot/gw/readings/\(r.sensor)", payload: Array("{\"t\": \(T0 + Double(r.step) * 60), \"v\": \(r.value)}".utf8), qos: 1)
    }

    func forecastErrors(_ rig: CoreRig) -> [String: [Double?]] {
        rig.core.energyLog.flush()
        let dir = (rig.configPath as NSString).deletingLastPathComponent + "/energy"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
        var out: [String: [Double?]] = [:]
        for f in files {
            let text = (try? String(contentsOfFile: dir + "/" + f, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                guard let j = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let s = j["sensor"] as? String else { continue }
                out[s, default: []].append((j["forecast_error"] as? NSNumber)?.doubleValue)
            }
        }
        return out
    }

    @Test func batchesGiveWhatOneMessageAtATimeGives() throws {
        let seed = Self.seed
        let rs = Self.readings(seed: seed)
        let single = try CoreRig(fleet), batched = try CoreRig(fleet)
        single.clock.now.withLock { $0 = T0 + 41 * 60 }
        batched.clock.now.withLock { $0 = T0 + 41 * 60 }
        for r in rs { single.core.handle(message(r)) }
        var rng = SplitMix64(seed ^ 0x5eed)
        var i = 0
        while i < rs.count {
            // Batches of 1 to 64 messages, as the queue hands them over.
            let n = min(rs.count - i, 1 + Int(rng.next() % 64))
            for r in rs[i..<(i + n)] { batched.core.take(message(r)) }
            batched.core.flushPending()
            i += n
        }
        #expect(batched.core.counters.batchedPasses > 0, "seed \(seed): no batched pass ran")
        #expect(batched.core.counters.batchedWindows > batched.core.counters.batchedPasses, "seed \(seed)")
        #expect(batched.core.counters.inferences == single.core.counters.inferences, "seed \(seed)")
        // Status says how much ran batched.
        batched.command("status", "{\"id\": \"b1\"}")
        let counters = (batched.reply("b1")?["status"] as? [String: Any])?["counters"] as? [String: Any]
        #expect((counters?["batched_windows"] as? NSNumber)?.intValue == batched.core.counters.batchedWindows, "seed \(seed): \(String(describing: counters))")
        #expect((counters?["batched_passes"] as? NSNumber)?.intValue == batched.core.counters.batchedPasses, "seed \(seed)")
        #expect(single.core.counters.inferences == 6 * (40 - 23), "seed \(seed): \(single.core.counters.inferences) inferences")
        for s in (0..<6).map({ "s\($0)" }) {
            let a = single.pub.messages("aiot/gw/forecasts/\(s)"), b = batched.pub.messages("aiot/gw/forecasts/\(s)")
            #expect(a.count == b.count, "seed \(seed) \(s)")
            for (x, y) in zip(a, b) {
                #expect((x["q"] as? [NSNumber]) == (y["q"] as? [NSNumber]), "seed \(seed) \(s)")
                #expect((x["t"] as? NSNumber) == (y["t"] as? NSNumber) && (x["seq"] as? NSNumber) == (y["seq"] as? NSNumber), "seed \(seed) \(s)")
            }
        }
        // The next reading of a sensor whose forecast waits in the batch resolves it (the batch is
        // flushed first): the log's resolved errors are the same, none missing.
        let e1 = forecastErrors(single), e2 = forecastErrors(batched)
        #expect(e1 == e2, "seed \(seed)")
        let resolvedCount: Int = e1.values.reduce(0) { n, errors in n + errors.filter { $0 != nil }.count }
        #expect(resolvedCount == 6 * (40 - 24), "seed \(seed)")
    }

    @Test func batchWindowsOneRunsEveryWindowAlone() throws {
        let rs = Self.readings(seed: Self.seed)
        let rig = try CoreRig(fleet, limits: "batch_windows = 1")
        #expect(rig.core.config.batchWindows == 1)
        rig.clock.now.withLock { $0 = T0 + 41 * 60 }
        for chunk in stride(from: 0, to: rs.count, by: 32) {
            for r in rs[chunk..<min(rs.count, chunk + 32)] { rig.core.take(message(r)) }
            rig.core.flushPending()
        }
        #expect(rig.core.counters.inferences == 6 * (40 - 23))
        #expect(rig.core.counters.batchedPasses == 0 && rig.core.counters.batchedWindows == 0)
        #expect(throws: (any Error).self) { _ = try CoreRig(fleet, limits: "batch_windows = 65") }
    }

    @Test func aLowRateBatchIsOneWindowAndWaitsForNothing() throws {
        let rig = try CoreRig(fleet)
        rig.clock.now.withLock { $0 = T0 + 41 * 60 }
        for k in 0..<30 {
            rig.core.take(message(("solo", k, signal(k, 0))))
            rig.core.flushPending()
            // Published before the next message is taken.
            #expect(rig.pub.count("aiot/gw/forecasts/solo") == max(0, k - 22))
        }
        #expect(rig.core.counters.batchedPasses == 0)
    }
}
