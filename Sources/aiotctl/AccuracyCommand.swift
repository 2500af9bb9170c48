// aiotctl accuracy: online accuracy from the energy/latency log (AIOTTelemetry/AccuracyReport.swift).
import ArgumentParser
import Foundation
import AIOTTelemetry

struct AccuracyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accuracy",
        abstract: "Summarize online forecast accuracy (MAE, RMSE, persistence skill) per sensor and day from aiotd's log.",
        discussion: "PATH is a log file or a directory of energy-*.jsonl files (default /var/log/aiotd). The errors are the one-step-ahead forecasts' (forecast_error); `aiotctl energy --plot` draws them beside latency and energy.")

    @Argument(help: "Log files or directories.")
    var paths: [String] = ["/var/log/aiotd"]

    @Option(help: "Only this sensor.")
    var sensor: String?

    @Flag(help: "Print the summary as JSON instead of a table.")
    var json = false

    func run() throws {
        var reader = EnergyLogReader(sensor: sensor)
        for f in try Energy.logFiles(paths) {
            guard let data = FileManager.default.contents(atPath: f) else { throw ValidationError("cannot read \(f)") }
            reader.add(data)
        }
        let report = AccuracyReport(points: reader.points)
        if json { FileHandle.standardOutput.write(Data(report.json())) } else { print(report.table(), terminator: "") }
    }
}
