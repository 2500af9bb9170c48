// aiotctl energy: arguments and files only; reading, grouping and plotting live in AIOTTelemetry
// (EnergyReport.swift). PNG is the SVG rendered by rsvg-convert.
import ArgumentParser
import Foundation
import AIOTModel
import AIOTTelemetry

struct Energy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize an energy/latency log (per sensor, engine, day) and plot it.",
        discussion: "PATH is a log file or a directory of energy-*.jsonl files (default /var/log/aiotd).")

    @Argument(help: "Log files or directories.")
    var paths: [String] = ["/var/log/aiotd"]

    @Option(help: "Write an SVG plot of latency and energy over time to this file.")
    var svg: String?

    @Option(help: "Write the plot to this file: .svg, or .png (rendered with rsvg-convert from librsvg2-bin).")
    var plot: String?

    @Option(help: "Only this sensor.")
    var sensor: String?

    @Flag(help: "Print the summary as JSON instead of a table.")
    var json = false

    func run() throws {
        let files = try Self.logFiles(paths)
        var reader = EnergyLogReader(sensor: sensor)
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else { throw ValidationError("cannot read \(f)") }
            reader.add(data)
        }
        try report(reader)
    }

    /// Log files named directly, and the .jsonl files of directories, in name order.
    static func logFiles(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                throw ValidationError("\(p) does not exist; give a log file or aiotd's log.directory")
            }
            if isDir.boolValue {
                let names = EnergyLog.ordered(try FileManager.default.contentsOfDirectory(atPath: p).filter { $0.hasSuffix(".jsonl") })
                files += names.map { p + "/" + $0 }
            } else {
                files.append(p)
            }
        }
        guard !files.isEmpty else { throw ValidationError("no .jsonl files under \(paths.joined(separator: ", "))") }
        return files
    }

    func report(_ reader: EnergyLogReader) throws {
        let report = EnergyReport(points: reader.points, skippedLines: reader.skipped)
        if json {
            FileHandle.standardOutput.write(Data(report.json()))
        } else {
            print(report.table(), terminator: "")
        }
        if let svg {
            try write(EnergyPlot.svg(reader.points), to: svg)
            if !json { print("wrote \(svg)") }
        }
        if let plot {
            if plot.lowercased().hasSuffix(".png") {
                let tmp = plot + ".tmp.svg"
                defer { try? FileManager.default.removeItem(atPath: tmp) }
                try write(EnergyPlot.svg(reader.points), to: tmp)
                try Self.renderPNG(svg: tmp, to: plot)
            } else if plot.lowercased().hasSuffix(".svg") {
                try write(EnergyPlot.svg(reader.points), to: plot)
            } else {
                throw ValidationError("--plot \(plot): give a file name ending in .svg or .png")
            }
            if !json { print("wrote \(plot)") }
        }
    }

    func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw ValidationError("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// SVG to PNG with rsvg-convert (Debian librsvg2-bin), found on PATH; written beside and renamed
    /// into place so a failed render leaves no partial file.
    static func renderPNG(svg: String, to png: String) throws {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        guard let tool = dirs.map({ $0 + "/rsvg-convert" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ValidationError("PNG needs rsvg-convert: install it with `apt-get install librsvg2-bin` (tools/setup.sh does), or write --plot FILE.svg")
        }
        let tmp = png + ".tmp"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["--format=png", "--background-color=white", "--output", tmp, svg]
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationStatus == 0 else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw ValidationError("rsvg-convert failed (status \(p.terminationStatus)): \(message)")
        }
        guard rename(tmp, png) == 0 else {
            let e = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: tmp)
            throw ValidationError("cannot write \(png): \(e)")
        }
    }
}
