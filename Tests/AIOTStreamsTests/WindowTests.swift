import Testing
import AIOTModel
import Foundation
@testable import AIOTStreams

func io(window: Int = 4, features: Int = 1) -> ModelIO {
    ModelIO(window: window, horizon: 1, features: (0..<features).map { .init(name: "f\($0)", mean: 0, std: 1) }, targetFeature: 0,
            targetName: "f0", targetMean: 0, targetStd: 1, inputBits: 8, inputScale: 1, inputZeroPoint: 0,
            outputScale: 1, outputZeroPoint: 0, samplingPeriod: 10)
}

/// Feeds readings and returns the windows produced, in order.
final class Feeder {
    let w: StreamWindow
    var windows: [[Int32]] = []
    var rejects: [RejectReason] = []
    init(_ io: ModelIO, _ policy: WindowPolicy = WindowPolicy(reorderSteps: 2, maxGapFill: 2, maxFutureSeconds: 1e12)) { w = StreamWindow(io: io, policy: policy) }
    func feed(_ step: Int, _ v: Double, f: Int = 0, jitter: Double = 0) {
        let r = w.ingest(Reading(feature: f, time: Double(step) * 10 + jitter, value: v), now: 0) { _ in
            var buf = [Int32](repeating: -99, count: w.io.window * w.io.features.count)
            buf.withUnsafeMutableBufferPointer { w.copyWindow(into: $0) }
            windows.append(buf)
        }
        if let r { rejects.append(r) }
    }
}

@Test func inOrderStepsProduceOneWindowPerStep() {
    let f = Feeder(io())
    for k in 0..<6 { f.feed(k, Double(k + 1), jitter: k % 2 == 0 ? 3 : -4) }
    #expect(f.windows == [[1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]])
    #expect(f.rejects.isEmpty)
}

@Test func outOfOrderWithinToleranceIsPlaced() {
    let f = Feeder(io())
    for k in [0, 1, 2, 3] { f.feed(k, Double(k + 1)) }
    f.feed(5, 6)       // arrives before 4
    f.feed(4, 5)
    #expect(f.windows == [[1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]])
    #expect(f.rejects.isEmpty)
}

@Test func lateAndDuplicateAreRejectedAndCounted() {
    let f = Feeder(io())
    for k in 0..<50 { f.feed(k, Double(k + 1)) }
    f.feed(49, 9)  // newest completed step again
    f.feed(40, 9)  // a step already complete
    f.feed(1, 9)   // behind the window and its late-placement history (4 + 32 steps)
    #expect(f.rejects == [.duplicate, .duplicate, .late])
    #expect(f.windows.count == 47)
}

@Test func redeliveredOutOfOrderReadingsCompleteTheirWindowsLateNeverTwice() {
    // A broker restart redelivers steps 10...29 with 20...29 first: 10...19 are given up as
    // missing (beyond the fill limit), then arrive and complete their windows, flagged late.
    let f = Feeder(io())
    var late: [Int64] = [], all: [Int64] = []
    func feed(_ k: Int) {
        _ = f.w.ingest(Reading(feature: 0, time: Double(k) * 10, value: Double(k + 1)), now: 0) { step, isLate in
            all.append(step); if isLate { late.append(step) }
        }
    }
    for k in 0..<10 { feed(k) }
    for k in 20..<30 { feed(k) }
    for k in 10..<20 { feed(k) }
    for k in [12, 25, 5] { feed(k) }   // duplicates of a redelivery: counted, never forecast twice
    #expect(Set(all) == Set(3...29), "every window ending at 3...29 once")
    #expect(all.count == Set(all).count)
    #expect(!late.isEmpty && late.allSatisfy { (10...28).contains($0) })
    #expect(f.w.counters.lateWindows == late.count)
}

@Test func shortGapsAreFilledLongGapsReset() {
    let f = Feeder(io())
    for k in 0..<4 { f.feed(k, Double(k + 1)) }
    // Step 4 missing; step 7 forces 4 out (filled by holding 4) beyond the 2-step reorder tolerance.
    f.feed(5, 6); f.feed(6, 7); f.feed(7, 8)
    #expect(f.windows == [[1, 2, 3, 4], [2, 3, 4, 4], [3, 4, 4, 6], [4, 4, 6, 7], [4, 6, 7, 8]])
    #expect(f.w.counters.stepsGapFilled == 1)
    // A jump far ahead resets the window: nothing until it fills again.
    let before = f.windows.count
    f.feed(100, 1); f.feed(101, 2); f.feed(102, 3)
    #expect(f.windows.count == before)
    f.feed(103, 4)
    #expect(f.windows.last == [1, 2, 3, 4])
    #expect(f.w.counters.resets == 1)
}

@Test func gapLongerThanTheFillLimitResets() {
    let f = Feeder(io(), WindowPolicy(reorderSteps: 0, maxGapFill: 1, maxFutureSeconds: 1e12))
    for k in 0..<4 { f.feed(k, Double(k + 1)) }
    f.feed(7, 8)   // steps 4, 5, 6 missing: one may be filled, then the window starts over
    #expect(f.w.counters.resets == 1)
    #expect(!f.w.isFull)
}

@Test func multiFeatureStepsAlignByTime() {
    let f = Feeder(io(window: 2, features: 2))
    f.feed(0, 1, f: 0); f.feed(0, 10, f: 1)
    f.feed(1, 20, f: 1)               // features of a step in either order
    #expect(f.windows.isEmpty)
    f.feed(1, 2, f: 0)
    #expect(f.windows == [[1, 10, 2, 20]])
    f.feed(2, 3, f: 0); f.feed(2, 3, f: 0)
    #expect(f.rejects == [.duplicate])
}

@Test func futureReadingsAreRejected() {
    let w = StreamWindow(io: io(), policy: WindowPolicy(maxFutureSeconds: 60))
    #expect(w.ingest(Reading(feature: 0, time: 1000, value: 1), now: 100) { _ in } == .future)
}

@Test func quantizationMatchesTheModelsIOHelper() throws {
    let path = #filePath.components(separatedBy: "/Tests/")[0] + "/models/random/w12f2d8h2n2p3-w4a8.safetensors"
    let m = try QuantizedModel(contentsOf: path)
    let mio = ModelIO(window: m.shape.window, horizon: m.shape.horizon,
                      features: m.features.map { .init(name: $0.name, unit: $0.unit, mean: $0.mean, std: $0.std) },
                      targetFeature: m.target.feature ?? 0, targetName: m.target.name, targetMean: m.target.mean, targetStd: m.target.std,
                      inputBits: m.inputAct.bits, inputScale: m.inputAct.scale, inputZeroPoint: m.inputAct.zeroPoint,
                      outputScale: m.outputAct.scale, outputZeroPoint: m.outputAct.zeroPoint, samplingPeriod: m.samplingPeriodSeconds)
    var seed: UInt64 = 42
    for _ in 0..<200 {
        var raw: [Double] = []
        for _ in 0..<(m.shape.window * m.shape.features) {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            raw.append(Double(Int64(bitPattern: seed >> 11) % 2_000_000) / 1e5 * (seed & 1 == 0 ? 1 : 0.01))
        }
        let expected = try m.quantizeInput(raw)
        let got = raw.enumerated().map { mio.quantize($0.element, feature: $0.offset % m.shape.features) }
        #expect(got == expected)
        let q = Array(expected.prefix(m.shape.horizon))
        #expect(q.map(mio.dequantize) == (try m.dequantizeOutput(q)))
    }
}

@Test func hostileTimestampsAreRejectedNotFatal() {
    let w = StreamWindow(io: io(), policy: WindowPolicy(maxFutureSeconds: 60))
    for t in [-1e300, -5, 1e300, 9.3e18 * 10] {
        let r = w.ingest(Reading(feature: 0, time: t, value: 1), now: 1_700_000_000) { _ in }
        #expect(r == (t > 0 ? .future : .late), "t = \(t)")
    }
    #expect(w.ingest(Reading(feature: 0, time: 1_700_000_000, value: 1), now: 1_700_000_000) { _ in } == nil)
}
