// The energy-log reader, grouping and plot behind `aiotctl energy`, including the damaged and hostile
// lines the fuzzer (Fuzz/) and review fed it.
import Testing
import AIOTModel
@testable import AIOTTelemetry

private func lines(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct EnergyLogReading {
    @Test func recordsTheDaemonWritesReadBack() throws {
        var w = JSONWriter()
        record(1).encode(into: &w)
        record(2, time: 1_795_000_000 + 86_400, energy: nil).encode(into: &w)
        var r = EnergyLogReader()
        r.add(w.bytes)
        #expect(r.skipped == 0)
        #expect(r.points.count == 2)
        var want = EnergyPoint(time: 1_795_000_000, latencyMicros: 270.8, energyMicrojoules: 12.5, sensor: "elec \"north\"", engine: "software")
        want.energySource = r.points[0].energySource
        #expect(r.points[0] == want && !want.energySource.isEmpty)
        #expect(r.points[1].energyMicrojoules == nil)
        let report = EnergyReport(points: r.points, skippedLines: r.skipped)
        #expect(report.rows.map(\.key.day) == ["2026-11-18", "2026-11-19"])
        let json = try JSONValue.parse(report.json())
        guard case let .array(groups)? = json["groups"] else { Issue.record("no groups: \(json)"); return }
        #expect(groups.count == 2)
        #expect(groups[0]["count"] == .int(1))
        #expect(groups[1]["energy_uj"]?["total"] == .null)
        #expect(json["skipped_lines"] == .int(0))
    }

    /// `"ts":1e300` trapped converting the UTC day to Int64; NaN-like and huge values likewise.
    @Test func outOfRangeTimesAreSkippedNotTraps() {
        var r = EnergyLogReader()
        for ts in ["1e300", "-1e300", "-1", "253402300800", "9223372036854775807", "1e19"] {
            r.addLine(lines("{\"ts\":\(ts),\"sensor\":\"s\",\"engine\":\"software\",\"latency_us\":{\"total\":1}}"))
        }
        #expect(r.points.isEmpty)
        #expect(r.skipped == 6)
        // And the whole path that trapped: grouping, JSON, table and plot of what is left.
        r.addLine(lines("{\"ts\":253402300799,\"sensor\":\"s\",\"engine\":\"software\",\"latency_us\":{\"total\":1e14},\"energy_uj\":-5e14}"))
        let report = EnergyReport(points: r.points, skippedLines: r.skipped)
        #expect(report.rows.map(\.key.day) == ["9999-12-31"])
        #expect(!report.json().isEmpty && report.table().contains("skipped 6"))
        #expect(EnergyPlot.svg(r.points).contains("9999-12-31 23:59:59 UTC"))
    }

    @Test func damagedLinesAreCountedAndSensorFilterApplies() {
        var r = EnergyLogReader(sensor: "b")
        r.add(lines("""
        {"ts":1,"sensor":"a","engine":"fpga","latency_us":{"total":2}}
        {"ts":2,"sensor":"b","engine":"fpga","latency_us":{"total":3},"energy_uj":4}
        {"ts":3,"sensor":"b","engine":"fpga","latency_us":{"total":"x"}}
        {"ts":4,"sensor":"b","engine":"fpga","latency_us":{"total":1},"energy_uj":"many"}
        {"ts":5,"sensor":"b","engine":"fpga","latency_us":{"tot
        \u{0}\u{ff}

        {"ts":6,"sensor":"b","engine":"fpga","latency_us":{"total":1e400}}
        """))
        #expect(r.points.map(\.time) == [2])
        #expect(r.skipped == 5)
    }

    @Test func plotEscapesNamesAndHandlesNoPoints() {
        #expect(EnergyPlot.svg([]).contains("no figures"))
        let svg = EnergyPlot.svg([EnergyPoint(time: 10, latencyMicros: 0, energyMicrojoules: 0, sensor: "<a&b\u{1}>", engine: "x")])
        #expect(svg.contains("&lt;a&amp;b?&gt; (x)"))
        #expect(!svg.contains("nan") && !svg.contains("\"inf") && !svg.contains("\"-inf"))
    }

    @Test func jsonWriterHandlesExtremeIntegersAndFixedValues() {
        var w = JSONWriter()
        w.int(UInt64.max); w.raw(" "); w.int(Int64.min); w.raw(" "); w.fixed(1e14, decimals: 6)
        #expect(String(decoding: w.bytes, as: UTF8.self) == "18446744073709551615 -9223372036854775808 100000000000000")
    }
}

@Suite struct AccuracyFromTheLog {
    @Test func errorsRoundTripAndOlderRecordsStillRead() throws {
        var w = JSONWriter()
        var r1 = InferenceRecord(time: 1_795_000_000, sensor: "s", model: "m", engine: .software, sequence: 1, windowEnd: 1, queueMicros: 1,
                                 preprocessMicros: 1, inferenceMicros: 1, publishMicros: 1, energyMicrojoules: nil, energySource: "none")
        r1.encode(into: &w)   // no error: the members are absent, as in logs written before them
        r1.forecastError = -0.125; r1.persistenceError = 0.25; r1.time += 1
        r1.encode(into: &w)
        r1.forecastError = 0.375; r1.persistenceError = -0.5; r1.time += 1
        r1.encode(into: &w)
        #expect(!String(decoding: w.bytes, as: UTF8.self).split(separator: "\n")[0].contains("forecast_error"))
        var reader = EnergyLogReader()
        reader.add(w.bytes)
        // A line from before online accuracy existed (copied from docs/daemon.md) still reads.
        reader.addLine(Array(#"{"ts":1795671484.955454,"sensor":"elecdemand","model":"53bf","engine":"software","seq":7,"window_end":1700001780,"latency_us":{"queue":79.9,"preprocess":57.6,"inference":516.0,"publish":15.5,"total":669.0},"energy_uj":null,"energy_source":"none","power_w":null}"#.utf8))
        #expect(reader.skipped == 0 && reader.points.count == 4)
        #expect(reader.points.map(\.forecastError) == [nil, -0.125, 0.375, nil])
        let rep = AccuracyReport(points: reader.points)
        #expect(rep.withoutError == 2)
        let row = try #require(rep.rows.first { $0.sensor == "s" })
        #expect(row.count == 2 && row.mae == 0.25 && row.persistenceMAE == 0.375)
        #expect(row.skill == 1 - (0.125 * 0.125 + 0.375 * 0.375) / (0.25 * 0.25 + 0.5 * 0.5))
        #expect(EnergyPlot.svg(reader.points).contains("forecast error"))
    }
}
