import Testing
import Foundation
import AIOTModel
@testable import AIOTTelemetry

func tmp(_ n: String) -> String {
    let p = NSTemporaryDirectory() + "aiot-tel-\(n)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

func record(_ seq: UInt64, time: Double = 1_795_000_000, energy: Double? = 12.5) -> InferenceRecord {
    InferenceRecord(time: time, sensor: "elec \"north\"", model: "abc", engine: .software, sequence: seq, windowEnd: 1_700_000_000,
                    queueMicros: 10.25, preprocessMicros: 3, inferenceMicros: 250.5, publishMicros: 7, energyMicrojoules: energy, energySource: energy == nil ? "none" : "rapl")
}

@Test func recordsAreOneWholeJSONLineEach() throws {
    var w = JSONWriter()
    record(1).encode(into: &w)
    let line = String(decoding: w.bytes, as: UTF8.self)
    #expect(line.hasSuffix("}\n"))
    #expect(line.filter { $0 == "\n" }.count == 1)
    let o = try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any]
    #expect(o?["sensor"] as? String == "elec \"north\"")
    #expect((o?["latency_us"] as? [String: Any])?["total"] as? Double == 270.8)
    #expect(o?["energy_uj"] as? Double == 12.5)
    #expect((o?["power_w"] as? Double).map { abs($0 - 12.5 / 250.5) < 1e-4 } == true)
    w.reset()
    record(2, energy: nil).encode(into: &w)
    let o2 = try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any]
    #expect(o2?["energy_uj"] is NSNull, "no power source: null, never invented")
    #expect(o2?["power_w"] is NSNull)
}

@Test func jsonWriterNumbersRoundTrip() {
    for v in [0.1, -0.31386398794771225, 1e-300, 123456789.125, -7.0, 2.0 / 3.0] {
        var w = JSONWriter()
        w.double(v)
        #expect(Double(String(decoding: w.bytes, as: UTF8.self)) == v)
    }
    var w = JSONWriter()
    w.fixed(-0.05, decimals: 1); w.raw(" "); w.fixed(12.345, decimals: 2); w.raw(" "); w.int(-42)
    #expect(String(decoding: w.bytes, as: UTF8.self) == "-0.1 12.35 -42")
    w.reset(); w.fixed(1e300, decimals: 1)
    #expect(Double(String(decoding: w.bytes, as: UTF8.self)) == 1e300, "huge values print, never trap")
}

@Test func logRotatesBySizeAndDay() throws {
    let dir = tmp("rot") + "/nested/energy"
    let log = try EnergyLog(directory: dir, maxBytes: 4096)
    let day1 = 1_795_000_000.0
    for i in 0..<40 { try log.append(record(UInt64(i), time: day1)) }
    try log.append(record(99, time: day1 + 86400))
    let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
    let d1 = EnergyLog.dayString(Int64(day1 / 86400)), d2 = EnergyLog.dayString(Int64(day1 / 86400) + 1)
    #expect(files.contains("energy-\(d1).jsonl") && files.contains("energy-\(d1).1.jsonl") && files.contains("energy-\(d2).jsonl"), "\(files)")
    var total = 0
    for f in files {
        let text = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n")
        total += lines.count
        for l in lines { #expect((try? JSONSerialization.jsonObject(with: Data(l.utf8))) != nil) }
        #expect(text.utf8.count <= 4096 + 600)
    }
    #expect(total == 41)
    try log.rotate()
    #expect(log.currentPath.hasSuffix(".jsonl"))
}

@Test func unwritableDirectoryIsAClearError() {
    #expect(throws: TelemetryError.self) { try EnergyLog(directory: "/proc/aiot-cannot-exist") }
}

@Test func raplReadsPackageCountersWithWraparound() throws {
    let root = tmp("rapl")
    for (zone, v) in [("intel-rapl:0", "1000\n"), ("intel-rapl:1", "500\n"), ("intel-rapl:0:0", "7\n")] {
        try FileManager.default.createDirectory(atPath: "\(root)/\(zone)", withIntermediateDirectories: true)
        try v.write(toFile: "\(root)/\(zone)/energy_uj", atomically: false, encoding: .utf8)
        try "2000\n".write(toFile: "\(root)/\(zone)/max_energy_range_uj", atomically: false, encoding: .utf8)
    }
    let src = try #require(RAPLPowerSource(root: root))
    #expect(src.name == "rapl")
    let e0 = try #require(src.energyMicrojoules())
    // In-place rewrites, as sysfs does: 1000 -> 1900 (+900), 500 -> 100 (wrapped: +1600).
    func put(_ z: String, _ s: String) throws {
        let fh = try #require(FileHandle(forWritingAtPath: "\(root)/\(z)/energy_uj"))
        try fh.truncate(atOffset: 0); try fh.write(contentsOf: Data(s.utf8)); try fh.close()
    }
    try put("intel-rapl:0", "1900\n")
    try put("intel-rapl:1", "100\n")
    let e1 = try #require(src.energyMicrojoules())
    #expect(e1 - e0 == 2500, "subzone intel-rapl:0:0 is not double counted")
}

@Test func noRaplMeansNoEnergy() {
    #expect(RAPLPowerSource(root: tmp("empty")) == nil)
    #expect(NoPowerSource().energyMicrojoules() == nil)
}

@Test func summariesUseNearestRankPercentiles() {
    var lat = (1...100).map(Double.init).reversed().map { $0 }
    let s = SummaryStats.compute(latencies: &lat, energies: [1, 2, 3])
    #expect(s.count == 100 && s.p50Micros == 50 && s.p99Micros == 99 && s.meanMicros == 50.5)
    #expect(s.energyTotalMicrojoules == 6 && s.energyPerInferenceMicrojoules == 2)
    var none: [Double] = [5]
    #expect(SummaryStats.compute(latencies: &none, energies: []).energyTotalMicrojoules == nil)
}

/// Issue 11: records stay in order across `rotate`, size roll-over and restarts (a restart used
/// to append to the day's first file again, before the records `rotate` had moved on to), and
/// every file is fsynced before it is closed.
@Test func recordsStayInOrderAcrossRotateRollOverAndRestarts() throws {
    let dir = tmp("order")
    let now = Date().timeIntervalSince1970
    var seq: UInt64 = 0
    func write(_ log: EnergyLog, _ n: Int) throws { for _ in 0..<n { try log.append(record(seq, time: now)); seq += 1 } }
    var log = try EnergyLog(directory: dir, maxBytes: 4096)
    try write(log, 5)
    try log.rotate()
    #expect(log.syncedRecords == 5 && log.fsyncs == 1, "rotate fsyncs the file it closes")
    try write(log, 5)
    log.flush()
    log = try EnergyLog(directory: dir, maxBytes: 4096)    // a restart
    try write(log, 150)                                    // rolls over by size past .10
    #expect(log.fsyncs >= 9, "each roll-over fsyncs the file it closes (\(log.fsyncs))")
    try log.rotate()
    try write(log, 3)
    log.flush()
    log = try EnergyLog(directory: dir, maxBytes: 4096)
    try write(log, 2)
    log.flush()
    let names = EnergyLog.ordered(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".jsonl") })
    #expect(names.count > 11, "\(names)")
    var seqs: [Int] = []
    for f in names {
        for l in try String(contentsOfFile: dir + "/" + f, encoding: .utf8).split(separator: "\n") {
            seqs.append(((try JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any])?["seq"] as? Int ?? -1)
        }
    }
    #expect(seqs == Array(0..<Int(seq)), "records out of order across files \(names)")
    #expect(EnergyLog.ordered(["e-d.10.jsonl", "e-d.2.jsonl", "e-d.jsonl", "e-d.1.jsonl", "e-c.3.jsonl"])
            == ["e-c.3.jsonl", "e-d.jsonl", "e-d.1.jsonl", "e-d.2.jsonl", "e-d.10.jsonl"])
}
