// libFuzzer target: the energy-log reader behind `aiotctl energy` (AIOTTelemetry): reading,
// grouping per day/sensor/engine, the JSON summary, the table and the SVG plot.
import AIOTModel
import AIOTTelemetry

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = EnergyLogReader()
    reader.add(UnsafeBufferPointer(start: data, count: size))
    let report = EnergyReport(points: reader.points, skippedLines: reader.skipped)
    // What we write must read back as JSON.
    precondition((try? JSONValue.parse(report.json())) != nil, "the summary is not valid JSON")
    _ = report.table()
    _ = EnergyPlot.svg(reader.points)
    return 0
}
