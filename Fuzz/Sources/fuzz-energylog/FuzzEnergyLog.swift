// libFuzzer target: the energy-log reader behind `aiotctl energy` (AIOTTelemetry): reading,
// grouping per day/sensor/engine, the JSON summary, the table and the SVG plot.
import FuzzSupport
import AIOTModel
import AIOTTelemetry

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    var reader = EnergyLogReader()
    reader.add(input)
    let report = EnergyReport(points: reader.points, skippedLines: reader.skipped)
    // What we write must read back as JSON.
    precondition((try? JSONValue.parse(report.json())) != nil, "the summary is not valid JSON")
    _ = report.table()
    _ = EnergyPlot.svg(reader.points)
    return 0
}
