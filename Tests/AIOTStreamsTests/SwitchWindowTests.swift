// A model switch seen by one window ring (StreamWindow+Shadow.swift): kept, re-quantized for a
// model that normalises differently, shadowed for the previous model during a trial, and put back
// exactly by a rollback.
import Testing
import AIOTModel
import Foundation
@testable import AIOTStreams

private func scaled(_ scale: Double, zero: Int32 = 0, mean: Double = 0) -> ModelIO {
    var m = io(window: 4, features: 2)
    m.inputScale = scale
    m.inputZeroPoint = zero
    m.features[0].mean = mean
    return m
}

private func window(_ w: StreamWindow, shadow: Bool = false) -> [Int32] {
    var buf = [Int32](repeating: -99, count: 8)
    buf.withUnsafeMutableBufferPointer { shadow ? w.copyShadowWindow(into: $0) : w.copyWindow(into: $0) }
    return buf
}

@Test func aSwitchKeepsRequantizesShadowsAndRollsBackTheRing() {
    let a = scaled(0.05), b = scaled(0.07, zero: -3, mean: 0.5)
    let w = StreamWindow(io: a, policy: WindowPolicy(reorderSteps: 2, maxGapFill: 2, maxFutureSeconds: 1e12))
    func value(_ k: Int, _ f: Int) -> Double { sin(Double(k) * 0.7 + Double(f)) * 3 }
    var last: (plain: [Int32], shadow: [Int32]?) = ([], nil)
    func feed(_ k: Int) {
        for f in 0..<2 {
            _ = w.ingest(Reading(feature: f, time: Double(k) * 10, value: value(k, f)), now: 0) { _ in
                last = (window(w), w.hasShadow ? window(w, shadow: true) : nil)
            }
        }
    }
    func expected(_ m: ModelIO, ending k: Int) -> [Int32] { (k - 3...k).flatMap { s in (0..<2).map { m.quantize(value(s, $0), feature: $0) } } }
    for k in 0..<6 { feed(k) }
    #expect(last.plain == expected(a, ending: 5))
    // The same normalisation: kept as is.
    #expect(w.retarget(to: a, shadow: false) == .kept)
    // Another one, guarded: re-quantized within one step of b; the shadow is a's exactly.
    #expect(w.retarget(to: b, shadow: true) == .requantized && w.hasShadow)
    feed(6)
    let want = expected(b, ending: 6)
    for (got, exp) in zip(last.plain, want) { #expect(abs(got - exp) <= 1, "\(last.plain) vs \(want)") }
    #expect(Array(last.plain.suffix(2)) == Array(want.suffix(2)), "the reading after the switch is quantized by b itself")
    #expect(last.shadow == expected(a, ending: 6))
    for k in 7..<10 { feed(k) }
    #expect(last.plain == expected(b, ending: 9) && last.shadow == expected(a, ending: 9))
    // Rollback: a's integers for every reading, the trial's included; the shadow is released.
    w.endTrial(rollBack: true)
    #expect(w.io == a && !w.hasShadow)
    feed(10)
    #expect(last.plain == expected(a, ending: 10) && last.shadow == nil)
}
