// The pure processor: bytes and arrival times in, readings, rejections and windows out.
import Testing
import AIOTModel
@testable import AIOTStreams

func processor(_ patterns: [[String]], maxSensors: Int = 100, idle: Double = 60) throws -> StreamProcessor {
    let templates = try patterns.enumerated().map { i, p in
        StreamTemplate(name: "t\(i)", pattern: try SensorPattern(p), io: io(window: 3), policy: WindowPolicy(maxFutureSeconds: 1e12))
    }
    return StreamProcessor(templates: templates, readings: try TopicPattern("a/gw/r/{sensor}", placeholder: "{sensor}"),
                           limits: SensorLimits(maxSensors: maxSensors, idleSeconds: idle), maxPayloadBytes: 256)
}

@discardableResult
func feed(_ p: StreamProcessor, _ sensor: String, _ t: Double, _ v: Double, now: Double? = nil) -> ProcessorOutput {
    var out = ProcessorOutput()
    var topic = Array("a/gw/r/\(sensor)".utf8), payload = Array("{\"t\": \(t), \"v\": \(v)}".utf8)
    topic.withUnsafeBufferPointer { tb in payload.withUnsafeBufferPointer { pb in p.process(topic: tb, payload: pb, arrivedAt: now ?? t, into: &out) } }
    _ = (topic.removeAll(), payload.removeAll())
    return out
}

@Test(arguments: [
    ("dev-*", "dev-1", true), ("dev-*", "dev-", true), ("dev-*", "de", false), ("*-temp", "a-b-temp", true),
    ("?x*", "ax", true), ("?x*", "x", false), ("a*b*c", "aXbYbZc", true), ("a*b*c", "aXbYbZ", false), ("exact", "exact", true),
])
func globs(_ pattern: String, _ name: String, _ matches: Bool) throws {
    #expect(try SensorPattern([pattern]).matches(name) == matches)
}

@Test func patternsAndTopicTemplatesRefuseWhatCannotMatch() {
    #expect(throws: PatternError.self) { try SensorPattern([]) }
    #expect(throws: PatternError.self) { try SensorPattern(["a/b"]) }
    #expect(throws: PatternError.self) { try SensorPattern(["a+"]) }
    #expect(throws: PatternError.self) { try TopicPattern("a/x{sensor}", placeholder: "{sensor}") }
    #expect(throws: PatternError.self) { try TopicPattern("a/{sensor}x/b", placeholder: "{sensor}") }
    #expect(throws: PatternError.self) { try TopicPattern("a/{sensor}/{sensor}", placeholder: "{sensor}") }
    #expect((try? TopicPattern("{sensor}/in", placeholder: "{sensor}"))?.filter == "+/in")
}

@Test func windowsComeOutWithTheirSensorSequenceAndInput() throws {
    let p = try processor([["+"]])
    var windows: [CompletedWindow] = []
    var values: [[Int32]] = []
    for k in 0..<5 {
        let out = feed(p, "s", Double(k) * 10, Double(k))
        #expect(out.accepted == 1 && out.rejected.isEmpty)
        for w in out.windows { windows.append(w); values.append(Array(out.values[w.range])) }
    }
    #expect(windows.map(\.step) == [2, 3, 4])
    #expect(windows.map(\.sequence) == [1, 2, 3])
    let m = io(window: 3)
    #expect(values[0] == [0, 1, 2].map { m.quantize(Double($0), feature: 0) })
}

@Test func limitEvictionAndAdoption() throws {
    let p = try processor([["a", "b", "c"]], maxSensors: 2, idle: 60)
    // Times on the 10 s grid of io(); arrival times given separately.
    feed(p, "a", 0, 1); feed(p, "b", 0, 1)
    #expect(feed(p, "c", 0, 1).rejected == [.sensorLimit])
    #expect(feed(p, "zz", 0, 1).rejected == [.unknownSensor])
    feed(p, "a", 10, 1, now: 50)
    #expect(p.evictIdle(now: 100) == 1)   // b idle since 0
    #expect(p.sensorNames() == ["a"])
    #expect(feed(p, "c", 20, 1, now: 100).rejected.isEmpty)
    // A reload with the same template keeps "a"'s window (its next step completes a window).
    let q = try processor([["+"]])
    q.adopt(from: p)
    #expect(q.sensorNames() == ["a", "c"])
    #expect(feed(q, "a", 20, 1, now: 120).windows.count == 1)
}
