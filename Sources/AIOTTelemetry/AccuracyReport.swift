// `aiotctl accuracy`: online accuracy summarized from the energy/latency log's forecast_error and
// persistence_error members (one-step-ahead errors, one per resolved step), per sensor and UTC day.
import AIOTModel

public struct AccuracyReport: Sendable {
    public struct Row: Sendable, Equatable {
        public var day: String
        public var sensor: String
        public var count: Int
        public var mae: Double
        public var rmse: Double
        /// Only over records that carry both errors.
        public var persistenceMAE: Double?
        public var persistenceRMSE: Double?
        public var skill: Double?
    }
    public var rows: [Row]
    /// Records without an error (no forecast resolved: the first windows, gaps, older logs).
    public var withoutError: Int

    public init(points: [EnergyPoint]) {
        struct Acc { var n = 0, abs = 0.0, sq = 0.0, pn = 0, pabs = 0.0, psq = 0.0, msq = 0.0 }
        var groups: [String: [String: Acc]] = [:]
        var missing = 0
        for p in points {
            guard let e = p.forecastError else { missing += 1; continue }
            let day = EnergyLog.dayString(EnergyLog.utcDay(p.time))
            var a = groups[day, default: [:]][p.sensor, default: Acc()]
            a.n += 1; a.abs += Swift.abs(e); a.sq += e * e
            if let pe = p.persistenceError { a.pn += 1; a.pabs += Swift.abs(pe); a.psq += pe * pe; a.msq += e * e }
            groups[day, default: [:]][p.sensor] = a
        }
        var rows: [Row] = []
        for day in groups.keys.sorted() {
            for sensor in groups[day]!.keys.sorted() {
                let a = groups[day]![sensor]!
                let n = Double(a.n), pn = Double(a.pn)
                rows.append(Row(day: day, sensor: sensor, count: a.n, mae: a.abs / n, rmse: (a.sq / n).squareRoot(),
                                persistenceMAE: a.pn > 0 ? a.pabs / pn : nil, persistenceRMSE: a.pn > 0 ? (a.psq / pn).squareRoot() : nil,
                                skill: a.pn > 0 && a.psq > 0 ? 1 - a.msq / a.psq : nil))
            }
        }
        self.rows = rows
        withoutError = missing
    }

    public func json() -> [UInt8] {
        var w = JSONWriter(capacity: 256 * (rows.count + 1))
        w.raw("{\"groups\":[")
        for (i, r) in rows.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"day\":"); w.string(r.day)
            w.raw(",\"sensor\":"); w.string(r.sensor)
            w.raw(",\"n\":"); w.int(r.count)
            w.raw(",\"mae\":"); w.double(r.mae)
            w.raw(",\"rmse\":"); w.double(r.rmse)
            w.raw(",\"persistence_mae\":"); w.double(r.persistenceMAE ?? .nan)
            w.raw(",\"persistence_rmse\":"); w.double(r.persistenceRMSE ?? .nan)
            w.raw(",\"skill\":"); w.double(r.skill ?? .nan)
            w.raw("}")
        }
        w.raw("],\"records_without_error\":"); w.int(withoutError)
        w.raw("}\n")
        return w.bytes
    }

    public func table() -> String {
        func f(_ v: Double?) -> String { v.map { fixedString($0, 5) } ?? "n/a" }
        let header = ["day", "sensor", "n", "MAE", "RMSE", "persist_MAE", "persist_RMSE", "skill"]
        var cells = [header]
        for r in rows { cells.append([r.day, r.sensor, "\(r.count)", f(r.mae), f(r.rmse), f(r.persistenceMAE), f(r.persistenceRMSE), f(r.skill)]) }
        let widths = (0..<header.count).map { c in cells.map { $0[c].count }.max()! }
        var out = ""
        for r in cells { out += r.enumerated().map { c, v in v + String(repeating: " ", count: widths[c] - v.count) }.joined(separator: "  ") + "\n" }
        if rows.isEmpty { out += "no record carries forecast_error (aiotd before online accuracy, or no forecast resolved yet)\n" }
        out += "\(withoutError) record(s) without a resolved forecast\n"
        return out
    }
}
