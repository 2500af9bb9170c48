import Testing
@testable import AIOTStreams

func parse(_ text: String, names: [String] = ["demand", "temp"], def: Int = 0, now: Double = 1000, max: Int = 4096) -> (RejectReason?, [Reading]) {
    var p = PayloadParser(maxPayloadBytes: max)
    let bytes = Array(text.utf8)
    let r = bytes.withUnsafeBufferPointer { p.parse($0, features: FeatureNames(names, defaultFeature: def), now: now) }
    return (r, p.readings)
}

@Test func plainNumbersAreStampedOnArrival() {
    #expect(parse("42.5").1 == [Reading(feature: 0, time: 1000, value: 42.5)])
    #expect(parse("  -1e3\n").1 == [Reading(feature: 0, time: 1000, value: -1000)])
    #expect(parse("7", def: 1).1 == [Reading(feature: 1, time: 1000, value: 7)])
}

@Test func jsonTV() {
    #expect(parse("{\"t\": 1700000000.5, \"v\": 3.25}").1 == [Reading(feature: 0, time: 1700000000.5, value: 3.25)])
    #expect(parse("{\"v\": 3, \"t\": 5, \"unit\": \"GW\", \"meta\": {\"a\": [1, 2, null]}}").1 == [Reading(feature: 0, time: 5, value: 3)])
    #expect(parse("{\"v\": 3}").1 == [Reading(feature: 0, time: 1000, value: 3)])
}

@Test func jsonValuesByFeatureName() {
    let (r, readings) = parse("{\"t\": 10, \"values\": {\"temp\": 21.5, \"demand\": 4.2}}")
    #expect(r == nil)
    #expect(readings == [Reading(feature: 1, time: 10, value: 21.5), Reading(feature: 0, time: 10, value: 4.2)])
}

@Test func senmlPacks() {
    let (r, readings) = parse("[{\"bn\": \"urn:dev:ow:10e2073a01080063:\", \"bt\": 1.276020076e9, \"n\": \"demand\", \"v\": 4.5, \"u\": \"GW\"}, {\"n\": \"temp\", \"t\": 10, \"v\": 20}]")
    #expect(r == nil)
    #expect(readings == [Reading(feature: 0, time: 1.276020076e9, value: 4.5), Reading(feature: 1, time: 1.276020086e9, value: 20)])
    // Relative times (below 2^28) count from now; base value adds.
    #expect(parse("[{\"bv\": 10, \"v\": 1.5, \"t\": -5}]").1 == [Reading(feature: 0, time: 995, value: 11.5)])
}

@Test(arguments: [
    ("{\"t\": 1, \"v\": }", RejectReason.malformed),
    ("{\"t\": 1, \"v\": 1} x", .malformed),
    ("", .malformed),
    ("{}", .malformed),
    ("{\"t\": 1}", .malformed),
    ("[]", .malformed),
    ("[{\"n\": \"demand\"}]", .malformed),
    ("{\"t\": 1, \"v\": 01a}", .malformed),
    ("\u{ff}\u{fe}", .malformed),
    ("{\"t\": 1, \"v\": \"12\"}", .wrongType),
    ("{\"t\": 1, \"v\": true}", .wrongType),
    ("{\"t\": 1, \"v\": null}", .wrongType),
    ("{\"t\": \"now\", \"v\": 1}", .wrongType),
    ("{\"t\": 1, \"values\": {\"demand\": [1]}}", .wrongType),
    ("[{\"n\": \"demand\", \"vs\": \"high\"}]", .wrongType),
    ("\"12\"", .wrongType),
    ("true", .wrongType),
    ("NaN", .nonFinite),
    ("-Infinity", .nonFinite),
    ("1e999", .nonFinite),
    ("{\"t\": 1, \"v\": NaN}", .nonFinite),
    ("{\"t\": 1, \"values\": {\"demand\": 1, \"temp\": -1e400}}", .nonFinite),
    ("{\"t\": 1, \"values\": {\"humidity\": 1}}", .unknownFeature),
    ("[{\"n\": \"humidity\", \"v\": 1}]", .unknownFeature),
])
func rejectedWhole(_ text: String, _ reason: RejectReason) {
    let (r, readings) = parse(text)
    #expect(r == reason, "\(text)")
    #expect(readings.isEmpty)
}

@Test func oversizedPayloadsAndPacks() {
    #expect(parse(String(repeating: " ", count: 100) + "1", max: 64).0 == .oversized)
    let many = "[" + (0..<100).map { "{\"n\": \"demand\", \"t\": \($0), \"v\": 1}" }.joined(separator: ",") + "]"
    #expect(parse(many, max: 1 << 20).0 == .oversized)
}

@Test func deepNestingIsRefusedNotRecursedForever() {
    let deep = "{\"t\": 1, \"v\": 1, \"x\": " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}"
    #expect(parse(deep, max: 1 << 20).0 == .malformed)
}
