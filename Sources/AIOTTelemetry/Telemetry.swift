// Energy and latency telemetry: power sources, the per-inference JSON Lines log, summaries.
#if canImport(Glibc)
import Glibc
#endif
import AIOTModel

// MARK: Power sources

/// Where energy figures come from. A source that cannot measure says so (`nil`): energy is never invented.
public protocol PowerSource: AnyObject {
    /// Short name recorded beside each figure ("rapl", "pac1934", "none").
    var name: String { get }
    /// A cumulative energy counter in microjoules, or nil when unavailable.
    func energyMicrojoules() -> UInt64?
}

/// No measurement available.
public final class NoPowerSource: PowerSource {
    public init() {}
    public var name: String { "none" }
    public func energyMicrojoules() -> UInt64? { nil }
}

/// Linux RAPL package counters (/sys/class/powercap/intel-rapl:N/energy_uj). This is whole-package
/// energy over the inference interval, not the inference alone; the log says "rapl" so readers know.
public final class RAPLPowerSource: PowerSource {
    struct Zone { var fd: Int32; var maxRange: UInt64; var last: UInt64; var total: UInt64 }
    var zones: [Zone]
    public var name: String { "rapl" }

    /// nil when no package zone is readable (no RAPL, or not permitted: since 2020 energy_uj is root-only by default).
    public init?(root: String = "/sys/class/powercap") {
        zones = []
        guard let dir = opendir(root) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            // Top-level package zones only ("intel-rapl:0"), not subzones ("intel-rapl:0:1"), to avoid double counting.
            if n.hasPrefix("intel-rapl:") && n.split(separator: ":").count == 2 { names.append(n) }
        }
        for n in names.sorted() {
            let fd = open("\(root)/\(n)/energy_uj", O_RDONLY | O_CLOEXEC)
            if fd < 0 { continue }
            guard let v = Self.readNumber(fd) else { close(fd); continue }
            let maxFD = open("\(root)/\(n)/max_energy_range_uj", O_RDONLY | O_CLOEXEC)
            let maxRange = maxFD >= 0 ? (Self.readNumber(maxFD) ?? 0) : 0
            if maxFD >= 0 { close(maxFD) }
            zones.append(Zone(fd: fd, maxRange: maxRange, last: v, total: 0))
        }
        if zones.isEmpty { return nil }
    }

    deinit { for z in zones { close(z.fd) } }

    static func readNumber(_ fd: Int32) -> UInt64? {
        var buf: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buf) { b -> UInt64? in
            let n = pread(fd, b.baseAddress, 31, 0)
            guard n > 0 else { return nil }
            var v: UInt64 = 0
            for i in 0..<n {
                let c = b[i]
                if c < 0x30 || c > 0x39 { break }
                v = v &* 10 &+ UInt64(c - 0x30)
            }
            return v
        }
    }

    public func energyMicrojoules() -> UInt64? {
        var sum: UInt64 = 0
        for i in zones.indices {
            guard let v = Self.readNumber(zones[i].fd) else { return nil }
            // The counter wraps at max_energy_range_uj.
            let d = v >= zones[i].last ? v - zones[i].last : (zones[i].maxRange &- zones[i].last &+ v)
            zones[i].last = v
            zones[i].total &+= d
            sum &+= zones[i].total
        }
        return sum
    }
}

/// The best source for the software engine on this machine.
public func defaultSoftwarePowerSource() -> PowerSource {
    RAPLPowerSource() ?? NoPowerSource()
}

// MARK: Records

/// One inference, as logged and as summarized.
public struct InferenceRecord: Sendable, Equatable {
    public var time: Double            // unix seconds at publish
    public var sensor: String
    public var model: String           // model identity
    public var engine: EngineKind
    public var sequence: UInt64
    public var windowEnd: Double       // last window timestamp
    public var queueMicros: Double
    public var preprocessMicros: Double
    public var inferenceMicros: Double
    public var publishMicros: Double
    public var energyMicrojoules: Double?
    public var energySource: String
    /// The source's own average power when it measures one (the board's PAC1934 window), else nil.
    public var sourceWatts: Double?
    /// Online accuracy: forecast − actual of the one-step-ahead forecast whose target is this
    /// window's last step, and the persistence forecast's on the same step; nil when none resolved.
    public var forecastError: Double?
    public var persistenceError: Double?
    /// With `energySource == "model"`: the model and the parameters it used (EnergyModel.swift).
    public var energyModel: EnergyModelUse?
    public init(time: Double, sensor: String, model: String, engine: EngineKind, sequence: UInt64, windowEnd: Double,
                queueMicros: Double, preprocessMicros: Double, inferenceMicros: Double, publishMicros: Double,
                energyMicrojoules: Double?, energySource: String, sourceWatts: Double? = nil,
                forecastError: Double? = nil, persistenceError: Double? = nil) {
        self.sourceWatts = sourceWatts
        self.forecastError = forecastError
        self.persistenceError = persistenceError
        self.time = time; self.sensor = sensor; self.model = model; self.engine = engine; self.sequence = sequence
        self.windowEnd = windowEnd; self.queueMicros = queueMicros; self.preprocessMicros = preprocessMicros
        self.inferenceMicros = inferenceMicros; self.publishMicros = publishMicros
        self.energyMicrojoules = energyMicrojoules; self.energySource = energySource
    }
    public var totalMicros: Double { queueMicros + preprocessMicros + inferenceMicros + publishMicros }
    /// Average power over the inference, watts; nil without an energy figure.
    public var averageWatts: Double? {
        guard let e = energyMicrojoules else { return nil }
        if let sourceWatts { return sourceWatts }
        guard inferenceMicros > 0 else { return nil }
        return e / inferenceMicros
    }
}

/// Appends bytes of JSON to a reusable buffer without Foundation.
public struct JSONWriter {
    public var bytes: [UInt8]
    public init(capacity: Int = 1024) { bytes = []; bytes.reserveCapacity(capacity) }
    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }
    public mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }
    public mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case 0..<0x20:
                raw("\\u00")
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(hex[Int(c >> 4)]); bytes.append(hex[Int(c & 15)])
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
    public mutating func int<T: BinaryInteger>(_ v: T) {
        // Through the magnitude so UInt64 above Int64.max and Int64.min print instead of trapping.
        var x = UInt64(truncatingIfNeeded: v.magnitude)
        if x == 0 { bytes.append(UInt8(ascii: "0")); return }
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &tmp) { b in
            var n = 0
            while x > 0 { b[n] = UInt8(x % 10) + 0x30; x /= 10; n += 1 }
            while n > 0 { n -= 1; bytes.append(b[n]) }
        }
    }
    /// The shortest representation that reads back exactly (Swift's own float printing, written
    /// straight from its stack buffer: no String is built).
    public mutating func double(_ v: Double) {
        guard v.isFinite else { raw("null"); return }
        if v == v.rounded(), abs(v) < 1e15 { int(Int64(v)); return }
        v.write(to: &self)
    }
    /// Fixed decimals (latencies, energies): cheap and readable.
    public mutating func fixed(_ v: Double, decimals: Int) {
        guard v.isFinite else { raw("null"); return }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        // Beyond Int64 fixed point: print it exactly instead (the scaled value must fit in Int64).
        if abs(v) >= 1e15 || abs(v) * scale >= 9e18 { double(v); return }
        let scaled = (abs(v) * scale).rounded()
        if v < 0 && scaled > 0 { bytes.append(UInt8(ascii: "-")) }
        let ip = Int64(scaled / scale)
        int(ip)
        if decimals > 0 {
            bytes.append(UInt8(ascii: "."))
            var frac = Int64(scaled) - ip * Int64(scale)
            var div = Int64(scale) / 10
            while div > 0 { bytes.append(UInt8(frac / div) + 0x30); frac %= div; div /= 10 }
        }
    }
}

extension JSONWriter: TextOutputStream {
    public mutating func write(_ string: String) { bytes.append(contentsOf: string.utf8) }
    // The standard library prints numbers through this hook from a stack buffer.
    public mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) { bytes.append(contentsOf: buffer) }
}

extension InferenceRecord {
    /// Writes the record as one JSON object followed by a newline.
    public func encode(into w: inout JSONWriter) {
        w.raw("{\"ts\":"); w.fixed(time, decimals: 6)
        w.raw(",\"sensor\":"); w.string(sensor)
        w.raw(",\"model\":"); w.string(model)
        w.raw(",\"engine\":"); w.string(engine.rawValue)
        w.raw(",\"seq\":"); w.int(sequence)
        w.raw(",\"window_end\":"); w.double(windowEnd)
        w.raw(",\"latency_us\":{\"queue\":"); w.fixed(queueMicros, decimals: 1)
        w.raw(",\"preprocess\":"); w.fixed(preprocessMicros, decimals: 1)
        w.raw(",\"inference\":"); w.fixed(inferenceMicros, decimals: 1)
        w.raw(",\"publish\":"); w.fixed(publishMicros, decimals: 1)
        w.raw(",\"total\":"); w.fixed(totalMicros, decimals: 1)
        w.raw("},\"energy_uj\":")
        if let e = energyMicrojoules { w.fixed(e, decimals: 1) } else { w.raw("null") }
        w.raw(",\"energy_source\":"); w.string(energySource)
        w.raw(",\"power_w\":")
        if let p = averageWatts { w.fixed(p, decimals: 4) } else { w.raw("null") }
        // Only when a forecast resolved: older readers ignore the members, older logs lack them.
        if let e = forecastError { w.raw(",\"forecast_error\":"); w.double(e) }
        if let e = persistenceError { w.raw(",\"persistence_error\":"); w.double(e) }
        if let m = energyModel {
            w.raw(",\"energy_model\":{\"name\":"); w.string(m.name)
            if let c = m.cycles, let f = m.clockHz {
                w.raw(",\"watts\":"); w.double(m.wattsPerCore)
                w.raw(",\"cycles\":"); w.int(c)
                w.raw(",\"clock_hz\":"); w.int(f)
            } else {
                w.raw(",\"watts_per_core\":"); w.double(m.wattsPerCore)
                w.raw(",\"cpu_us\":"); w.fixed(m.cpuMicros, decimals: 1)
            }
            w.raw("}")
        }
        w.raw("}\n")
    }
}

// MARK: The log

public struct TelemetryError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// JSON Lines log, one file per UTC day (`energy-YYYY-MM-DD.jsonl`), rotated to `.1`, `.2`, ...
/// past `maxBytes`. Each record is one write() on an O_APPEND descriptor, so a kill -9 leaves
/// whole lines only; a short write (disk full) is cut back so no half record stays.
public final class EnergyLog {
    public let directory: String
    public let maxBytes: Int
    public let prefix: String
    var fd: Int32 = -1
    var day: Int64 = -1
    var size = 0
    var writer = JSONWriter(capacity: 512)
    public private(set) var recordsWritten = 0
    public private(set) var writeErrors = 0
    public private(set) var currentPath: String = ""

    public init(directory: String, maxBytes: Int = 64 << 20, prefix: String = "energy") throws(TelemetryError) {
        self.directory = directory
        self.maxBytes = maxBytes
        self.prefix = prefix
        // mkdir -p: every missing parent, then the directory itself.
        var partial = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            partial += "/" + part
            if mkdir(partial, 0o750) != 0 && errno != EEXIST { break }
        }
        var st = stat()
        if stat(directory, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR {
            throw TelemetryError("cannot create the energy log directory \(directory): \(String(cString: strerror(errno))); set log.directory to a writable place")
        }
        // Files open on the first record, so no empty file appears for a day without inferences.
        if access(directory, W_OK) != 0 {
            throw TelemetryError("the energy log directory \(directory) is not writable: \(String(cString: strerror(errno))); fix its owner or set log.directory")
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    static func utcDay(_ t: Double) -> Int64 { Int64((t / 86400).rounded(.down)) }

    public static func dayString(_ day: Int64) -> String {
        var t = time_t(day * 86400)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tmv.tm_year + 1900)-\(two(tmv.tm_mon + 1))-\(two(tmv.tm_mday))"
    }

    private func openFile(forDay d: Int64) throws(TelemetryError) {
        if fd >= 0 { flush(); close(fd); fd = -1 }
        let base = "\(directory)/\(prefix)-\(Self.dayString(d))"
        var st = stat()
        // Append to the day's newest file (the highest index: `rotate` may have left an older one
        // part-full), or the next index when it is full: records stay in file order across
        // rotate, roll-over and restarts (EnergyLog.ordered).
        var n = 0
        while stat("\(base).\(n + 1).jsonl", &st) == 0 { n += 1 }
        var path = n == 0 ? base + ".jsonl" : "\(base).\(n).jsonl"
        if stat(path, &st) == 0 && Int(st.st_size) >= maxBytes {
            n += 1
            path = "\(base).\(n).jsonl"
        }
        let f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if f < 0 {
            throw TelemetryError("cannot open the energy log \(path): \(String(cString: strerror(errno))); check log.directory permissions")
        }
        fd = f
        day = d
        size = stat(path, &st) == 0 ? Int(st.st_size) : 0
        currentPath = path
    }

    /// Appends one record in a single write.
    public func append(_ r: InferenceRecord) throws(TelemetryError) {
        let d = Self.utcDay(r.time)
        if d != day || size >= maxBytes { try openFile(forDay: d) }
        writer.reset()
        r.encode(into: &writer)
        let start = size
        let n = writer.bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n == writer.bytes.count { size += n; recordsWritten += 1; return }
        writeErrors += 1
        let err = n < 0 ? String(cString: strerror(errno)) : "short write (\(n) of \(writer.bytes.count) bytes)"
        if n > 0 { _ = ftruncate(fd, off_t(start)) }  // no half line survives
        throw TelemetryError("energy log write to \(currentPath) failed: \(err)")
    }

    /// Starts a new file now (the `rotate` command).
    public func rotate() throws(TelemetryError) {
        let d = Self.utcDay(Self.now())
        let base = "\(directory)/\(prefix)-\(Self.dayString(d))"
        var st = stat()
        var n = 1
        while stat("\(base).\(n).jsonl", &st) == 0 { n += 1 }
        if fd >= 0 { flush(); close(fd); fd = -1 }
        let path = "\(base).\(n).jsonl"
        let f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if f < 0 { throw TelemetryError("cannot open the energy log \(path): \(String(cString: strerror(errno)))") }
        fd = f; day = d; size = 0; currentPath = path
    }

    /// fsync: every log.fsync_interval_s, before a file is closed (rotate, day change, roll-over)
    /// and at shutdown. Records counted in `syncedRecords` are on the disk.
    public func flush() {
        guard fd >= 0, fsync(fd) == 0 else { return }
        fsyncs += 1
        syncedRecords = recordsWritten
    }
    public private(set) var fsyncs = 0
    /// `recordsWritten` as of the last successful fsync.
    public private(set) var syncedRecords = 0

    /// Log file names in record order: by day, then `.jsonl` before `.1.jsonl`, `.2.jsonl`, ...
    /// `.10.jsonl` (a plain sort puts `.1.jsonl` and `.10.jsonl` first).
    public static func ordered(_ names: [String]) -> [String] {
        func key(_ name: String) -> (String, Int) {
            let stem = name.hasSuffix(".jsonl") ? String(name.dropLast(6)) : name
            if let dot = stem.lastIndex(of: "."), let n = Int(stem[stem.index(after: dot)...]) { return (String(stem[..<dot]), n) }
            return (stem, 0)
        }
        return names.sorted { key($0) < key($1) }
    }
}

// MARK: Summaries

/// Latency and energy summary of a group of inferences (per sensor, engine, day).
public struct SummaryStats: Sendable, Equatable {
    public var count: Int
    public var meanMicros: Double
    public var p50Micros: Double
    public var p99Micros: Double
    public var energyTotalMicrojoules: Double?
    public var energyPerInferenceMicrojoules: Double?
    public var energyCount: Int

    /// `latencies` is sorted in place.
    public static func compute(latencies: inout [Double], energies: [Double]) -> SummaryStats {
        latencies.sort()
        let n = latencies.count
        func pct(_ p: Double) -> Double {
            guard n > 0 else { return 0 }
            // Nearest rank.
            let rank = Int((p * Double(n)).rounded(.up))
            return latencies[min(max(rank, 1), n) - 1]
        }
        let mean = n > 0 ? latencies.reduce(0, +) / Double(n) : 0
        let total: Double? = energies.isEmpty ? nil : energies.reduce(0, +)
        return SummaryStats(count: n, meanMicros: mean, p50Micros: pct(0.5), p99Micros: pct(0.99),
                            energyTotalMicrojoules: total,
                            energyPerInferenceMicrojoules: total.map { $0 / Double(energies.count) },
                            energyCount: energies.count)
    }
}

/// Rolling per (sensor, engine) accumulation in the daemon for the periodic energy topic; bounded memory.
public struct RollingSummary {
    struct Group { var latencies: [Double]; var energies: [Double]; var count: Int }
    struct Key: Hashable, Comparable {
        var sensor: String
        var engine: EngineKind
        static func < (a: Key, b: Key) -> Bool { (a.sensor, a.engine.rawValue) < (b.sensor, b.engine.rawValue) }
    }
    var groups: [Key: Group] = [:]
    let capacity: Int
    // xorshift64 for reservoir sampling: no syscall per draw, unlike the system generator.
    var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    public init(capacity: Int = 4096) { self.capacity = capacity }

    public mutating func add(sensor: String, engine: EngineKind, totalMicros: Double, energy: Double?) {
        let key = Key(sensor: sensor, engine: engine)
        if groups[key] == nil {
            var g = Group(latencies: [], energies: [], count: 0)
            g.latencies.reserveCapacity(capacity)
            g.energies.reserveCapacity(capacity)
            groups[key] = g
        }
        groups[key]!.count += 1
        // Beyond capacity, keep a uniform reservoir so memory stays bounded on fast streams.
        let c = groups[key]!.count
        if groups[key]!.latencies.count < capacity {
            groups[key]!.latencies.append(totalMicros)
            if let energy { groups[key]!.energies.append(energy) }
        } else {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            let j = Int(rng % UInt64(c))
            if j < capacity { groups[key]!.latencies[j] = totalMicros }
            if let energy, groups[key]!.energies.count == capacity, j < capacity { groups[key]!.energies[j] = energy }
        }
    }

    /// Encodes {"period_s":..,"groups":[{sensor,engine,count,...}]} and clears.
    public mutating func drain(periodSeconds: Double, into w: inout JSONWriter) {
        w.raw("{\"period_s\":"); w.double(periodSeconds)
        w.raw(",\"groups\":[")
        var first = true
        for key in groups.keys.sorted() {
            var g = groups[key]!
            let s = SummaryStats.compute(latencies: &g.latencies, energies: g.energies)
            if !first { w.raw(",") }
            first = false
            w.raw("{\"sensor\":"); w.string(key.sensor)
            w.raw(",\"engine\":"); w.string(key.engine.rawValue)
            w.raw(",\"count\":"); w.int(g.count)
            w.raw(",\"latency_us\":{\"mean\":"); w.fixed(s.meanMicros, decimals: 1)
            w.raw(",\"p50\":"); w.fixed(s.p50Micros, decimals: 1)
            w.raw(",\"p99\":"); w.fixed(s.p99Micros, decimals: 1)
            w.raw("},\"energy_uj\":{\"total\":")
            if let t = s.energyTotalMicrojoules { w.fixed(t * Double(g.count) / Double(max(1, g.latencies.count)), decimals: 1) } else { w.raw("null") }
            w.raw(",\"per_inference\":")
            if let p = s.energyPerInferenceMicrojoules { w.fixed(p, decimals: 2) } else { w.raw("null") }
            w.raw("}}")
        }
        w.raw("]}")
        groups.removeAll(keepingCapacity: true)
    }
}
