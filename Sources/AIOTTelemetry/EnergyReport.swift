// Reading the energy/latency log back: one record per line into an `EnergyPoint`, grouped per
// (UTC day, sensor, engine) into `SummaryStats`, written as JSON (with the module's one
// `JSONWriter`), as a text table, or plotted as SVG. `aiotctl energy` only parses arguments and
// lists files; everything a hostile or damaged log can reach lives here, with no Foundation.
#if canImport(Glibc)
import Glibc
#endif
import AIOTModel

/// One inference as the log recorded it.
public struct EnergyPoint: Sendable, Equatable {
    /// Unix seconds, within `EnergyLogReader.validTimes`.
    public var time: Double
    public var latencyMicros: Double
    public var energyMicrojoules: Double?
    public var sensor: String
    public var engine: String
    /// Online accuracy (records from aiotd with forecast_error; nil in older logs).
    public var forecastError: Double? = nil
    public var persistenceError: Double? = nil
    /// "rapl", "pac1934", "model" or "none": groups never mix measured and modelled figures.
    public var energySource = ""
    public init(time: Double, latencyMicros: Double, energyMicrojoules: Double?, sensor: String, engine: String) {
        self.time = time
        self.latencyMicros = latencyMicros
        self.energyMicrojoules = energyMicrojoules
        self.sensor = sensor
        self.engine = engine
    }
}

/// Parses log lines. A line that is not a whole, plausible record is skipped and counted, never a trap:
/// logs are read after power loss, disk-full cuts and hand edits.
public struct EnergyLogReader: Sendable {
    /// 1970-01-01 up to the end of 9999: a day number, a date string and a plot axis exist for every
    /// time in here (`"ts":1e300` once trapped converting the day to Int64).
    public static let validTimes: Range<Double> = 0..<253_402_300_800
    /// Latency and energy beyond this (about 30 years in µs / 1 EJ) are damage, not measurements.
    public static let maxMagnitude = 1e15

    public private(set) var points: [EnergyPoint] = []
    public private(set) var skipped = 0
    /// Only this sensor's records are kept (others are neither kept nor counted as skipped).
    public let sensor: String?

    public init(sensor: String? = nil) { self.sensor = sensor }

    /// Adds every line of `bytes` (a file's contents; the last line may lack its newline).
    public mutating func add(_ bytes: some Collection<UInt8>) {
        var line: [UInt8] = []
        line.reserveCapacity(512)
        for b in bytes {
            if b == UInt8(ascii: "\n") { addLine(line); line.removeAll(keepingCapacity: true) } else { line.append(b) }
        }
        addLine(line)
    }

    /// One line; empty lines are ignored.
    public mutating func addLine(_ line: [UInt8]) {
        guard !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) else { return }
        guard let p = Self.parse(line) else { skipped += 1; return }
        if let only = sensor, only != p.sensor { return }
        points.append(p)
    }

    /// One record, or nil when the line is not one.
    public static func parse(_ line: [UInt8]) -> EnergyPoint? {
        guard let o = try? JSONValue.parse(line),
              let ts = o["ts"]?.number, validTimes.contains(ts),
              case let .string(sensor)? = o["sensor"], case let .string(engine)? = o["engine"],
              let total = o["latency_us"]?["total"]?.number, total.isFinite, abs(total) <= maxMagnitude
        else { return nil }
        var energy: Double? = nil
        switch o["energy_uj"] {
        case nil, .null?: break
        case let v?:
            guard let e = v.number, e.isFinite, abs(e) <= maxMagnitude else { return nil }
            energy = e
        }
        var p = EnergyPoint(time: ts, latencyMicros: total, energyMicrojoules: energy, sensor: sensor, engine: engine)
        if case let .string(src)? = o["energy_source"] { p.energySource = src }
        // Optional members: a damaged one drops the error, not the record.
        if let e = o["forecast_error"]?.number, e.isFinite, abs(e) <= maxMagnitude { p.forecastError = e }
        if let e = o["persistence_error"]?.number, e.isFinite, abs(e) <= maxMagnitude { p.persistenceError = e }
        return p
    }
}

extension JSONValue {
    /// An int or double member as Double.
    var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
}

/// Summaries per UTC day, sensor and engine, in that order.
public struct EnergyReport: Sendable {
    public struct Key: Hashable, Comparable, Sendable {
        public var day: String, sensor: String, engine: String
        /// The energy source: a measured and a modelled figure never share a row.
        public var source = ""
        public static func < (a: Key, b: Key) -> Bool { (a.day, a.sensor, a.engine, a.source) < (b.day, b.sensor, b.engine, b.source) }
    }
    public var rows: [(key: Key, stats: SummaryStats)]
    public var skippedLines: Int

    /// `points` must hold times within `EnergyLogReader.validTimes` (the reader guarantees it).
    public init(points: [EnergyPoint], skippedLines: Int) {
        var groups: [Key: (lat: [Double], en: [Double])] = [:]
        for p in points {
            let k = Key(day: EnergyLog.dayString(EnergyLog.utcDay(p.time)), sensor: p.sensor, engine: p.engine, source: p.energySource)
            groups[k, default: ([], [])].lat.append(p.latencyMicros)
            if let e = p.energyMicrojoules { groups[k, default: ([], [])].en.append(e) }
        }
        rows = groups.keys.sorted().map { k in
            var g = groups[k]!
            return (k, SummaryStats.compute(latencies: &g.lat, energies: g.en))
        }
        self.skippedLines = skippedLines
    }

    /// `{"groups":[{day,sensor,engine,count,latency_us:{mean,p50,p99},energy_uj:{total,per_inference,measured}}],"skipped_lines":N}`
    public func json() -> [UInt8] {
        var w = JSONWriter(capacity: 256 * (rows.count + 1))
        w.raw("{\"groups\":[")
        for (i, (k, s)) in rows.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"day\":"); w.string(k.day)
            w.raw(",\"sensor\":"); w.string(k.sensor)
            w.raw(",\"engine\":"); w.string(k.engine)
            w.raw(",\"energy_source\":"); w.string(k.source)
            w.raw(",\"count\":"); w.int(s.count)
            w.raw(",\"latency_us\":{\"mean\":"); w.double(s.meanMicros)
            w.raw(",\"p50\":"); w.double(s.p50Micros)
            w.raw(",\"p99\":"); w.double(s.p99Micros)
            w.raw("},\"energy_uj\":{\"total\":")
            if let t = s.energyTotalMicrojoules { w.double(t) } else { w.raw("null") }
            w.raw(",\"per_inference\":")
            if let p = s.energyPerInferenceMicrojoules { w.double(p) } else { w.raw("null") }
            w.raw(",\"measured\":"); w.int(s.energyCount)
            w.raw("}}")
        }
        w.raw("],\"skipped_lines\":"); w.int(skippedLines)
        w.raw("}\n")
        return w.bytes
    }

    /// A space-aligned table with a header row, and notes on missing energy and skipped lines.
    public func table() -> String {
        func f(_ v: Double?, _ d: Int = 1) -> String { v.map { fixedString($0, d) } ?? "n/a" }
        let header = ["day", "sensor", "engine", "source", "count", "mean_us", "p50_us", "p99_us", "energy_uJ", "uJ/inference"]
        var cells = [header]
        for (k, s) in rows {
            cells.append([k.day, k.sensor, k.engine, k.source, "\(s.count)", f(s.meanMicros), f(s.p50Micros), f(s.p99Micros),
                          f(s.energyTotalMicrojoules), f(s.energyPerInferenceMicrojoules, 2)])
        }
        let widths = (0..<header.count).map { c in cells.map { $0[c].count }.max()! }
        var out = ""
        for r in cells {
            out += r.enumerated().map { c, v in v + String(repeating: " ", count: widths[c] - v.count) }.joined(separator: "  ") + "\n"
        }
        if rows.allSatisfy({ $0.stats.energyCount == 0 }) {
            out += "energy: n/a (no power source was available when these inferences ran, and the energy model was off)\n"
        }
        if rows.contains(where: { $0.key.source == "model" && $0.stats.energyCount > 0 }) {
            out += "energy of source \"model\": CPU time x a power figure, or FPGA cycles x clock period x a device power figure (see each record's energy_model), not a measurement\n"
        }
        if skippedLines > 0 { out += "skipped \(skippedLines) unreadable line(s)\n" }
        return out
    }
}

/// Fixed decimals through the one JSON number writer (no Foundation `String(format:)`).
func fixedString(_ v: Double, _ decimals: Int) -> String {
    var w = JSONWriter(capacity: 32)
    w.fixed(v, decimals: decimals)
    return String(decoding: w.bytes, as: UTF8.self)
}

/// `YYYY-MM-DD HH:MM:SS` for a time within `EnergyLogReader.validTimes`.
func utcTimestamp(_ t: Double) -> String {
    let day = EnergyLog.utcDay(t)
    let s = Int((t - Double(day) * 86400).rounded(.down))
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(EnergyLog.dayString(day)) \(two(s / 3600)):\(two(s / 60 % 60)):\(two(s % 60))"
}

/// Two stacked panels sharing the time axis: total latency (µs) and energy per inference (µJ).
public enum EnergyPlot {
    /// The SVG text for `points` (any order).
    public static func svg(_ unsorted: [EnergyPoint]) -> String {
        let points = unsorted.sorted { $0.time < $1.time }
        let w = 900.0, panelH = 260.0, left = 70.0, right = 20.0, top = 30.0, gap = 50.0
        // A third panel when the log holds online accuracy (aiotd's forecast_error).
        let errors = points.compactMap { p in p.forecastError.map { (p, abs($0)) } }
        let panels = errors.isEmpty ? 2.0 : 3.0
        let h = top + panels * panelH + (panels - 1) * gap + 40
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        let t0 = points.first?.time ?? 0, t1 = max(points.last?.time ?? 1, t0 + 1e-3)
        let series = Array(Set(points.map { "\($0.sensor) (\($0.engine))" })).sorted()
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        func x(_ t: Double) -> Double { left + (t - t0) / (t1 - t0) * (w - left - right) }
        func panel(_ y0: Double, _ title: String, _ values: [(EnergyPoint, Double)]) {
            out += "<text x=\"\(left)\" y=\"\(y0 - 8)\" font-size=\"13\">\(title)</text>\n"
            out += "<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(w - left - right)\" height=\"\(panelH)\" fill=\"none\" stroke=\"#888\"/>\n"
            guard !values.isEmpty else {
                out += "<text x=\"\(w / 2)\" y=\"\(y0 + panelH / 2)\" text-anchor=\"middle\" fill=\"#666\">no figures (no power source available, energy model off)</text>\n"
                return
            }
            let sorted = values.map(\.1).sorted()
            let top = max(sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.999))] * 1.05, 1e-9)
            // Round axis steps (1, 2, 2.5 or 5 × 10^k) so the tick labels read easily.
            let raw = top / 4, mag = pow(10, log10(raw).rounded(.down))
            let step = ([1, 2, 2.5, 5, 10].first { $0 * mag >= raw } ?? 10) * mag
            let vmax = step * 4
            let decimals = step >= 1 ? 0 : min(12, Int((-log10(step)).rounded(.up)) + 1)
            func y(_ v: Double) -> Double { y0 + panelH - max(0, min(v, vmax)) / vmax * panelH }
            for i in 0...4 {
                let v = vmax * Double(i) / 4
                out += "<line x1=\"\(left - 4)\" x2=\"\(w - right)\" y1=\"\(y(v))\" y2=\"\(y(v))\" stroke=\"#eee\"/>"
                out += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(fixedString(v, decimals))</text>\n"
            }
            // Thin long series to at most ~4000 points per panel so the file stays small.
            let stride = max(1, values.count / 4000)
            for (i, (p, v)) in values.enumerated() where i % stride == 0 {
                let c = colors[(series.firstIndex(of: "\(p.sensor) (\(p.engine))") ?? 0) % colors.count]
                out += "<circle cx=\"\(fixedString(x(p.time), 1))\" cy=\"\(fixedString(y(v), 1))\" r=\"1.5\" fill=\"\(c)\"/>"
            }
            out += "\n"
        }
        panel(top, "latency per inference, reading to forecast (µs)", points.map { ($0, $0.latencyMicros) })
        let sources = Set(points.filter { $0.energyMicrojoules != nil }.map(\.energySource)).sorted()
        let label = sources.isEmpty ? "" : ", source: " + sources.map { $0 == "model" ? "model (CPU time × W per core, not measured)" : $0 }.joined(separator: " / ")
        panel(top + panelH + gap, "energy per inference (µJ\(xmlEscaped(label)))", points.compactMap { p in p.energyMicrojoules.map { (p, $0) } })
        if !errors.isEmpty { panel(top + 2 * (panelH + gap), "|forecast error| of the one-step forecast each step resolved (output units)", errors) }
        out += "<text x=\"\(left)\" y=\"\(h - 10)\">\(utcTimestamp(t0)) UTC</text>"
        out += "<text x=\"\(w - right)\" y=\"\(h - 10)\" text-anchor=\"end\">\(utcTimestamp(t1)) UTC</text>\n"
        for (i, s) in series.enumerated() {
            out += "<text x=\"\(w - right - 10)\" y=\"\(top + 14 + Double(i) * 14)\" text-anchor=\"end\" fill=\"\(colors[i % colors.count])\">\(xmlEscaped(s))</text>\n"
        }
        out += "</svg>\n"
        return out
    }

    static func xmlEscaped(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default:
                // Control characters are not allowed in XML 1.0 text.
                if c.value < 0x20 && c != "\t" && c != "\n" { o += "?" } else { o.unicodeScalars.append(c) }
            }
        }
        return o
    }
}
