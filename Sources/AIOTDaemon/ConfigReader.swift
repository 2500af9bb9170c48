// The typed accessors behind the configuration reader: every value checked for type and range,
// every message naming the key.
import Foundation
import TOMLKit
import AIOTStreams

extension Reader {
    func err(_ key: String, _ what: String) -> ConfigError { ConfigError("\(source): \(key): \(what)") }

    func checkKeys(_ t: TOMLTable, _ prefix: String, _ allowed: Set<String>) throws(ConfigError) {
        for k in t.keys where !allowed.contains(k) {
            throw err(prefix.isEmpty ? k : "\(prefix).\(k)", "unknown key (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }
    func string(_ t: TOMLTable?, _ key: String, _ path: String, default d: String? = nil) throws(ConfigError) -> String {
        guard let v = t?[key] else {
            if let d { return d }
            throw err(path, "missing; add it as a string")
        }
        guard let s = v.string else { throw err(path, "expected a string, got \(v.type)") }
        return s
    }
    func optString(_ t: TOMLTable?, _ key: String, _ path: String) throws(ConfigError) -> String? {
        guard let v = t?[key] else { return nil }
        guard let s = v.string else { throw err(path, "expected a string, got \(v.type)") }
        return s.isEmpty ? nil : s
    }
    func int(_ t: TOMLTable?, _ key: String, _ path: String, default d: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let v = t?[key] else { return d }
        guard let i = v.int else { throw err(path, "expected an integer in \(range.lowerBound)...\(range.upperBound), got \(v.type)") }
        guard range.contains(i) else { throw err(path, "\(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }
    /// Every number is bounded above as well: `Duration.seconds(x)` traps near 1.8e20, and no
    /// setting means anything beyond a few years.
    func double(_ t: TOMLTable?, _ key: String, _ path: String, default d: Double?, min: Double, max: Double = 1e9) throws(ConfigError) -> Double? {
        guard let v = t?[key] else { return d }
        let x: Double
        if let i = v.int { x = Double(i) } else if let f = v.double { x = f } else { throw err(path, "expected a number, got \(v.type)") }
        guard x.isFinite, x >= min, x <= max else { throw err(path, "\(x) must be a finite number in \(min)...\(max)") }
        return x
    }
    func sensorPattern(_ t: TOMLTable, _ p: String) throws(ConfigError) -> SensorPattern {
        let list: [String]
        switch (t["sensor"], t["sensors"]) {
        case (nil, nil): throw err("\(p).sensor", "missing; name the sensor (sensor = \"x\") or the sensors (sensors = [\"a\", \"b-*\"] or [\"+\"])")
        case (.some, .some): throw err("\(p).sensors", "give sensor or sensors, not both")
        case (.some, nil): list = [try name(try string(t, "sensor", "\(p).sensor"), "\(p).sensor")]
        case (nil, .some(let v)):
            guard let a = v.array else { throw err("\(p).sensors", "expected an array of names, globs or \"+\"") }
            var l: [String] = []
            for (i, x) in a.enumerated() {
                guard let s = x.string else { throw err("\(p).sensors[\(i)]", "expected a string, got \(x.type)") }
                l.append(s)
            }
            list = l
        }
        do { return try SensorPattern(list) } catch { throw err(list.count == 1 && t["sensor"] != nil ? "\(p).sensor" : "\(p).sensors", error.description) }
    }
    func bool(_ t: TOMLTable?, _ key: String, _ path: String, default d: Bool) throws(ConfigError) -> Bool {
        guard let v = t?[key] else { return d }
        guard let b = v.bool else { throw err(path, "expected true or false, got \(v.type)") }
        return b
    }
    func table(_ t: TOMLTable, _ key: String) throws(ConfigError) -> TOMLTable? {
        guard let v = t[key] else { return nil }
        guard let tt = v.table else { throw err(key, "expected a table [\(key)], got \(v.type)") }
        return tt
    }
    func name(_ s: String, _ path: String) throws(ConfigError) -> String {
        guard !s.isEmpty, !s.contains("/"), !s.contains("+"), !s.contains("#"), !s.contains("{") else {
            throw err(path, "\"\(s)\" must be non-empty and contain none of / + # {")
        }
        return s
    }
}
