// Online accuracy, pure: pending forecasts meet their actuals in either order, errors per horizon
// step equal a brute-force computation, anomalies and the drift alarm follow the reference.
import Testing
import AIOTModel
@testable import AIOTStreams

/// A model I/O whose output integers dequantize to q * 0.01 + 5 (so forecasts are exact decimals).
func accIO(horizon: Int) -> ModelIO {
    ModelIO(window: 3, horizon: horizon, features: [.init(name: "f0", mean: 5, std: 2)], targetFeature: 0, targetName: "f0",
            targetMean: 5, targetStd: 2, inputBits: 8, inputScale: 0.05, inputZeroPoint: 0, outputScale: 0.005, outputZeroPoint: 0, samplingPeriod: 10)
}

struct SplitMix {
    var s: UInt64
    mutating func next() -> Double {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
}

@Test(arguments: [1, 3]) func errorsPerHorizonStepEqualBruteForce(horizon: Int) throws {
    let seed: UInt64 = 20261206 + UInt64(horizon)
    var rng = SplitMix(s: seed)
    let io = accIO(horizon: horizon)
    var acc = SensorAccuracy(horizon: horizon, slack: 3, windowSize: 10)
    let n = 200
    let actual = (0..<n).map { _ in 5 + (rng.next() - 0.5) * 4 }
    var q: [[Int32]] = []
    for _ in 0..<n { q.append((0..<horizon).map { _ in Int32((rng.next() - 0.5) * 800) }) }
    var resolved = 0
    for k in 0..<n {
        // Odd steps: the actual arrives before the window ending at the step before is forecast.
        let emit: (Int64, Int, Double, Double, Double, Double?) -> Void = { _, _, _, _, _, _ in resolved += 1 }
        func fc(_ s: Int) { q[s].withUnsafeBufferPointer { acc.forecast(origin: Int64(s), output: $0, io: io, reference: .init(), policy: .init(), emit: emit) } }
        acc.actual(step: Int64(k), value: actual[k], io: io, reference: .init(), policy: .init(), emit: emit)
        // Even steps forecast before the next actual; odd ones after it (a reading that arrived
        // before its window was complete).
        if k % 2 == 0 {
            if k > 0 { fc(k - 1) }
            fc(k)
        } else if k == n - 1 { fc(k) }
    }
    // Brute force: forecast at s for step s+h against actual[s+h]; persistence actual[s].
    var want = [ErrorSums](repeating: ErrorSums(), count: horizon)
    for s in 0..<n { for h in 1...horizon where s + h < n {
        want[h - 1].add(error: io.dequantize(q[s][h - 1]) - actual[s + h], persistence: actual[s] - actual[s + h])
    } }
    #expect(resolved == want.reduce(0) { $0 + $1.count }, "seed \(seed)")
    for h in 0..<horizon {
        #expect(acc.run[h].count == want[h].count, "seed \(seed)")
        #expect(abs(acc.run[h].absSum - want[h].absSum) < 1e-9, "seed \(seed)")
        #expect(abs(acc.run[h].sqSum - want[h].sqSum) < 1e-9, "seed \(seed)")
        #expect(abs(acc.run[h].persistenceSqSum - want[h].persistenceSqSum) < 1e-9, "seed \(seed)")
    }
    // Rolling: the last 10 resolved values only.
    #expect(acc.rolling.count == 10)
    // Constant memory: the rings never grew.
    #expect(acc.store.count == 3 * (horizon + 4) + 5 * horizon + ((horizon + 4) * horizon + 10 + 1) / 2 && acc.windowCount == 10)
    // The rolling median is the median of the last 10 |errors|; RMSE from the same values.
    var last = (0..<10).map { Double(acc.rolled($0)) }
    last.sort()
    #expect(acc.rollingMedian == (last[4] + last[5]) / 2)
    #expect(abs((acc.rolling.rmse ?? 0) - (last.reduce(0) { $0 + $1 * $1 } / 10).squareRoot()) < 1e-9)
}

@Test func actualBeforeItsForecastStillResolvesOnceAndDuplicatesDoNot() {
    let io = accIO(horizon: 1)
    var acc = SensorAccuracy(horizon: 1, slack: 3, windowSize: 4)
    var got: [(Int64, Double, Double)] = []
    let emit: (Int64, Int, Double, Double, Double, Double?) -> Void = { o, _, f, y, _, _ in got.append((o, f, y)) }
    acc.actual(step: 10, value: 6, io: io, reference: .init(), policy: .init(), emit: emit)
    acc.actual(step: 11, value: 7, io: io, reference: .init(), policy: .init(), emit: emit)   // arrives first
    [Int32(200)].withUnsafeBufferPointer { acc.forecast(origin: 10, output: $0, io: io, reference: .init(), policy: .init(), emit: emit) }
    acc.actual(step: 11, value: 7, io: io, reference: .init(), policy: .init(), emit: emit)   // duplicate
    #expect(got.count == 1)
    // q 200 -> 200 * 0.005 * 2 + 5 = 7; persistence 6.
    #expect(got.first?.0 == 10 && got.first?.1 == 7 && got.first?.2 == 7)
    #expect(acc.run[0].count == 1 && acc.run[0].absSum == 0)
    #expect(acc.run[0].persistenceAbsSum == 1)
}

@Test func anomaliesBeyondTheThresholdAndTheDriftAlarmRaiseAndClear() {
    let io = accIO(horizon: 1)
    let policy = AccuracyPolicy(windowSize: 4, anomalyQuantile: 0.99, driftFactor: 2, driftSteps: 4)
    let ref = AccuracyReference(thresholds: [0.5], validationMAE: 0.1, validationMedian: 0.1)
    var acc = SensorAccuracy(horizon: 1, slack: 3, windowSize: 4)
    var flagged: [Int64] = []
    var changes: [(Int, DriftChange)] = []
    var scratch: [Float] = []
    // The forecast is always 5 (q = 0); actuals 5.05 (error 0.05), then 6 from step 20 on, then back.
    for k in 0..<60 {
        let y = (20..<35).contains(k) ? 6.0 : 5.05
        var n = 0
        acc.actual(step: Int64(k), value: y, io: io, reference: ref, policy: policy) { o, _, _, _, _, th in n += 1; if th != nil { flagged.append(o + 1) } }
        [Int32(0)].withUnsafeBufferPointer { acc.forecast(origin: Int64(k), output: $0, io: io, reference: ref, policy: policy) { _, _, _, _, _, _ in } }
        if let c = acc.updateDrift(reference: ref, policy: policy, resolved: n, scratch: &scratch) { changes.append((k, c)) }
    }
    #expect(flagged == Array(20..<35).map(Int64.init))
    #expect(acc.anomalies == 15)
    // Raised once the rolling median |error| (4 values) is above 0.2 for 4 values in a row.
    #expect(changes.map(\.1) == [.raised, .cleared])
    #expect(changes.first.map { $0.0 >= 20 && $0.0 < 20 + 4 + 4 } == true, "\(changes)")
    #expect(changes.last.map { $0.0 >= 35 && $0.0 < 35 + 4 + 4 } == true, "\(changes)")
}

@Test func theProcessorFeedsActualsAndCountsPerTemplate() throws {
    var tpl = StreamTemplate(name: "t", pattern: try SensorPattern(["+"]), io: accIO(horizon: 1), policy: WindowPolicy(maxFutureSeconds: 1e12))
    tpl.accuracy = AccuracyPolicy(windowSize: 8)
    let p = StreamProcessor(templates: [tpl], readings: try TopicPattern("a/gw/r/{sensor}", placeholder: "{sensor}"),
                            limits: SensorLimits(), maxPayloadBytes: 256)
    var resolved = 0
    for k in 0..<20 {
        let out0 = feed(p, "s", Double(k) * 10, 5 + Double(k % 3))
        var out = out0
        resolved += out.resolved.count
        for w in out0.windows { [Int32(100)].withUnsafeBufferPointer { p.recordForecast(w, output: $0, into: &out) } }
    }
    // Windows of 3 complete from step 2 (after reorder_steps=2: step k settles when k+2 arrives).
    let a = try #require(p.accuracy(named: "s"))
    #expect(a.total.count == resolved)
    #expect(resolved > 10)
    #expect(p.counters[0].accuracy.count == resolved)
    #expect(p.counters[0].accuracy.absSum == a.total.absSum)
}

@Test func reloadKeepsPendingForecastsAndTotals() throws {
    let tpl = StreamTemplate(name: "t", pattern: try SensorPattern(["+"]), io: accIO(horizon: 1), policy: WindowPolicy(maxFutureSeconds: 1e12))
    let topic = try TopicPattern("a/gw/r/{sensor}", placeholder: "{sensor}")
    let p = StreamProcessor(templates: [tpl], readings: topic, limits: SensorLimits(), maxPayloadBytes: 256)
    func run(_ p: StreamProcessor, _ steps: Range<Int>) -> Int {
        var n = 0
        for k in steps {
            let out0 = feed(p, "s", Double(k) * 10, 5 + Double(k % 4))
            var out = out0
            for w in out0.windows { [Int32(50)].withUnsafeBufferPointer { p.recordForecast(w, output: $0, into: &out) } }
            n += out.resolved.count
        }
        return n
    }
    let before = run(p, 0..<20)
    let q = StreamProcessor(templates: [tpl], readings: topic, limits: SensorLimits(), maxPayloadBytes: 256)
    q.adopt(from: p)
    #expect(q.accuracy(named: "s")?.total.count == before)
    // The forecast pending at the reload resolves in the new generation: no step is lost.
    let after = run(q, 20..<30)
    #expect(q.accuracy(named: "s")?.total.count == before + after)
    #expect(q.counters[0].accuracy.count == before + after)
    #expect(after == 10)
}
