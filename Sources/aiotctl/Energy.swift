// aiotctl energy: summarize aiotd's energy/latency JSON Lines per sensor, engine and day, and
// optionally plot latency and energy over time as SVG, or PNG (the SVG rendered by rsvg-convert).
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

    struct Point { var time: Double; var latency: Double; var energy: Double?; var sensor: String; var engine: String }

    func run() throws {
        var files: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                throw ValidationError("\(p) does not exist; give a log file or aiotd's log.directory")
            }
            if isDir.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: p).filter { $0.hasSuffix(".jsonl") }.sorted()
                files += names.map { p + "/" + $0 }
            } else {
                files.append(p)
            }
        }
        guard !files.isEmpty else { throw ValidationError("no .jsonl files under \(paths.joined(separator: ", "))") }

        var points: [Point] = []
        var skipped = 0
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else { throw ValidationError("cannot read \(f)") }
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let ts = (o["ts"] as? NSNumber)?.doubleValue, let s = o["sensor"] as? String, let e = o["engine"] as? String,
                      let total = ((o["latency_us"] as? [String: Any])?["total"] as? NSNumber)?.doubleValue
                else { skipped += 1; continue }
                if let only = sensor, only != s { continue }
                points.append(Point(time: ts, latency: total, energy: (o["energy_uj"] as? NSNumber)?.doubleValue, sensor: s, engine: e))
            }
        }
        points.sort { $0.time < $1.time }

        struct Key: Hashable, Comparable {
            var day: String, sensor: String, engine: String
            static func < (a: Key, b: Key) -> Bool { (a.day, a.sensor, a.engine) < (b.day, b.sensor, b.engine) }
        }
        var groups: [Key: (lat: [Double], en: [Double])] = [:]
        for p in points {
            let k = Key(day: EnergyLog.dayString(Int64((p.time / 86400).rounded(.down))), sensor: p.sensor, engine: p.engine)
            groups[k, default: ([], [])].lat.append(p.latency)
            if let e = p.energy { groups[k, default: ([], [])].en.append(e) }
        }
        var rows: [(Key, SummaryStats)] = []
        for k in groups.keys.sorted() {
            var g = groups[k]!
            rows.append((k, SummaryStats.compute(latencies: &g.lat, energies: g.en)))
        }

        if json {
            let arr: [[String: Any]] = rows.map { k, s in
                ["day": k.day, "sensor": k.sensor, "engine": k.engine, "count": s.count,
                 "latency_us": ["mean": s.meanMicros, "p50": s.p50Micros, "p99": s.p99Micros],
                 "energy_uj": ["total": s.energyTotalMicrojoules as Any? ?? NSNull(), "per_inference": s.energyPerInferenceMicrojoules as Any? ?? NSNull(),
                               "measured": s.energyCount]]
            }
            let d = try JSONSerialization.data(withJSONObject: ["groups": arr, "skipped_lines": skipped], options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            func f(_ v: Double?, _ d: Int = 1) -> String { v.map { String(format: "%.\(d)f", $0) } ?? "n/a" }
            let header = ["day", "sensor", "engine", "count", "mean_us", "p50_us", "p99_us", "energy_uJ", "uJ/inference"]
            var table = [header]
            for (k, s) in rows {
                table.append([k.day, k.sensor, k.engine, "\(s.count)", f(s.meanMicros), f(s.p50Micros), f(s.p99Micros),
                              f(s.energyTotalMicrojoules), f(s.energyPerInferenceMicrojoules, 2)])
            }
            let widths = (0..<header.count).map { c in table.map { $0[c].count }.max()! }
            for r in table { print(r.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")) }
            if rows.allSatisfy({ $0.1.energyCount == 0 }) {
                print("energy: n/a (no power source was available when these inferences ran; aiotd never estimates it)")
            }
            if skipped > 0 { print("skipped \(skipped) unreadable line(s)") }
        }
        if let svg {
            try Self.plot(points, to: svg)
            if !json { print("wrote \(svg)") }
        }
        if let plot {
            if plot.lowercased().hasSuffix(".png") {
                let tmp = plot + ".tmp.svg"
                defer { try? FileManager.default.removeItem(atPath: tmp) }
                try Self.plot(points, to: tmp)
                try Self.renderPNG(svg: tmp, to: plot)
            } else if plot.lowercased().hasSuffix(".svg") {
                try Self.plot(points, to: plot)
            } else {
                throw ValidationError("--plot \(plot): give a file name ending in .svg or .png")
            }
            if !json { print("wrote \(plot)") }
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

    /// Two stacked panels sharing the time axis: total latency (µs) and energy per inference (µJ).
    static func plot(_ points: [Point], to path: String) throws {
        let w = 900.0, panelH = 260.0, left = 70.0, right = 20.0, top = 30.0, gap = 50.0
        let h = top + 2 * panelH + gap + 40
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        let t0 = points.first?.time ?? 0, t1 = max(points.last?.time ?? 1, t0 + 1e-3)
        let sensors = Array(Set(points.map { "\($0.sensor) (\($0.engine))" })).sorted()
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        func x(_ t: Double) -> Double { left + (t - t0) / (t1 - t0) * (w - left - right) }
        func panel(_ y0: Double, _ title: String, _ values: [(Point, Double)]) {
            out += "<text x=\"\(left)\" y=\"\(y0 - 8)\" font-size=\"13\">\(title)</text>\n"
            out += "<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(w - left - right)\" height=\"\(panelH)\" fill=\"none\" stroke=\"#888\"/>\n"
            guard !values.isEmpty else {
                out += "<text x=\"\(w / 2)\" y=\"\(y0 + panelH / 2)\" text-anchor=\"middle\" fill=\"#666\">no measurements (no power source available: never estimated)</text>\n"
                return
            }
            var sorted = values.map(\.1).sorted()
            let top = max(sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.999))] * 1.05, 1e-9)
            sorted.removeAll()
            // Round axis steps (1, 2, 2.5 or 5 × 10^k) so the tick labels read easily.
            let raw = top / 4, mag = pow(10, (log10(raw)).rounded(.down))
            let step = ([1, 2, 2.5, 5, 10].first { $0 * mag >= raw } ?? 10) * mag
            let vmax = step * 4
            let decimals = step >= 1 ? 0 : Int((-log10(step)).rounded(.up)) + 1
            func y(_ v: Double) -> Double { y0 + panelH - min(v, vmax) / vmax * panelH }
            for i in 0...4 {
                let v = vmax * Double(i) / 4
                out += "<line x1=\"\(left - 4)\" x2=\"\(w - right)\" y1=\"\(y(v))\" y2=\"\(y(v))\" stroke=\"#eee\"/>"
                out += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.\(decimals)f", v))</text>\n"
            }
            // Thin long series to at most ~4000 points per panel so the file stays small.
            let stride = max(1, values.count / 4000)
            for (i, (p, v)) in values.enumerated() where i % stride == 0 {
                let c = colors[(sensors.firstIndex(of: "\(p.sensor) (\(p.engine))") ?? 0) % colors.count]
                out += "<circle cx=\(String(format: "\"%.1f\"", x(p.time))) cy=\(String(format: "\"%.1f\"", y(v))) r=\"1.5\" fill=\"\(c)\"/>"
            }
            out += "\n"
        }
        panel(top, "latency per inference, reading to forecast (µs)", points.map { ($0, $0.latency) })
        panel(top + panelH + gap, "energy per inference (µJ)", points.compactMap { p in p.energy.map { (p, $0) } })
        let fmt = DateFormatter()
        fmt.dateFormat = "yyyy-MM-dd HH:mm:ss"
        fmt.timeZone = TimeZone(identifier: "UTC")
        out += "<text x=\"\(left)\" y=\"\(h - 10)\">\(fmt.string(from: Date(timeIntervalSince1970: t0))) UTC</text>"
        out += "<text x=\"\(w - right)\" y=\"\(h - 10)\" text-anchor=\"end\">\(fmt.string(from: Date(timeIntervalSince1970: t1))) UTC</text>\n"
        for (i, s) in sensors.enumerated() {
            out += "<text x=\"\(w - right - 10)\" y=\"\(top + 14 + Double(i) * 14)\" text-anchor=\"end\" fill=\"\(colors[i % colors.count])\">\(s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;"))</text>\n"
        }
        out += "</svg>\n"
        try out.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
