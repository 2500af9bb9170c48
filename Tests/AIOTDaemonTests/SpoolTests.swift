import Testing
import Foundation
@testable import AIOTDaemon

@Suite struct SpoolTests {
    let records = [
        SpoolRecord(topic: "aiot/gw/readings/single", payload: Array("{\"t\": 1700000000, \"v\": 1.5}".utf8), arrivedAt: 1_764_140_000.123456),
        // Bytes JSON would mangle: newline, NUL, quote, invalid UTF-8; a topic needing escapes.
        SpoolRecord(topic: "aiot/gw/readings/\"odd\" ünï", payload: [0x0a, 0x00, 0x22, 0xff, 0xfe, 0x5c], arrivedAt: 1_764_140_001.5),
        SpoolRecord(topic: "aiot/gw/cmd/status", payload: [], arrivedAt: 1_764_140_002),
    ]

    func fileText(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func writesWholeLinesAndReadsThemBackExactly() throws {
        let spool = ReadingSpool(directory: Harness.tempDir("spool") + "/state/nested")
        try spool.append(Array(records[0..<2]))
        try spool.append([records[2]])  // a second shutdown appends
        let text = fileText(spool.spoolPath)
        #expect(text.split(separator: "\n").count == 3)
        #expect(text.hasSuffix("\n"))
        let (back, corrupt) = try ReadingSpool.read(path: spool.spoolPath)
        #expect(corrupt == 0)
        #expect(back == records)
    }

    @Test func truncatedLastLineIsSkippedAndCountedNotFatal() throws {
        let spool = ReadingSpool(directory: Harness.tempDir("spool"))
        try spool.append(records)
        // Power loss mid-write: the last line is cut short; a garbage line in the middle too.
        var data = try Data(contentsOf: URL(fileURLWithPath: spool.spoolPath))
        data.removeLast(7)
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var mangled = Data(lines[0]) + Data("\n{\"t\":1,\"topic\":\"x\",\"payload\":\"%%%\"}\n".utf8)
        mangled += Data(lines[1]) + Data("\n".utf8) + Data(lines[2])
        try mangled.write(to: URL(fileURLWithPath: spool.spoolPath))
        let (back, corrupt) = try ReadingSpool.read(path: spool.spoolPath)
        #expect(back == Array(records[0..<2]))
        #expect(corrupt == 2)

        var handled: [SpoolRecord] = []
        var flushed = false
        let r = try spool.replay({ handled.append($0) }, beforeRemoving: { flushed = true })
        #expect(handled == Array(records[0..<2]))
        #expect(r == SpoolReplay(replayed: 2, corrupt: 2, alreadyDone: 0))
        #expect(flushed)
        for p in [spool.spoolPath, spool.replayingPath, spool.progressPath] { #expect(!FileManager.default.fileExists(atPath: p), "\(p) left behind") }
        // Nothing left: a second replay handles nothing.
        #expect(try spool.replay({ handled.append($0) }) == SpoolReplay())
        #expect(handled.count == 2)
    }

    /// A power loss mid-replay re-handles at most `progressSyncEvery` records: the progress count
    /// is made durable that often, not only at the end.
    @Test func replayProgressIsSyncedEverySoManyRecords() throws {
        let spool = ReadingSpool(directory: Harness.tempDir("spool"))
        let many = (0..<200).map { SpoolRecord(topic: "aiot/gw/readings/s", payload: Array("{\"t\": \(1700000000 + $0 * 60), \"v\": 1}".utf8), arrivedAt: 1_764_140_000 + Double($0)) }
        try spool.append(many)
        var synced: [Int] = []
        var handled = 0
        let r = try spool.replay({ _ in handled += 1 }, progressSynced: { synced.append($0) })
        #expect(r.replayed == 200 && handled == 200)
        let every = ReadingSpool.progressSyncEvery
        #expect(synced == Array(stride(from: every, through: 200, by: every)) + [200], "\(synced)")
    }

    @Test func replayCutShortResumesAfterTheRecordedCountThenTheNewerSpool() throws {
        let dir = Harness.tempDir("spool")
        let spool = ReadingSpool(directory: dir)
        try spool.append(records)
        // Simulate a crash after the first record was handled: the spool renamed, count 1 recorded.
        #expect(rename(spool.spoolPath, spool.replayingPath) == 0)
        try "                   1\n".write(toFile: spool.progressPath, atomically: false, encoding: .utf8)
        // Meanwhile a later shutdown spooled one more message into a fresh spool.jsonl.
        let newer = SpoolRecord(topic: "aiot/gw/readings/late", payload: Array("{\"v\":2}".utf8), arrivedAt: 1_764_150_000)
        try spool.append([newer])
        var handled: [SpoolRecord] = []
        let r = try spool.replay({ handled.append($0) })
        #expect(handled == Array(records[1...]) + [newer], "each record once, oldest spool first")
        #expect(r == SpoolReplay(replayed: 3, corrupt: 0, alreadyDone: 1))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func unwritableStateDirectoryIsAClearError() {
        let spool = ReadingSpool(directory: "/proc/aiotd-cannot-exist")
        #expect { try spool.append(records) } throws: { "\($0)".contains("state.directory") }
    }

    @Test func stateDirectoryDefaultsUnderTheLogDirectory() throws {
        let base = """
        gateway = "gw1"
        [log]
        directory = "/tmp/x/energy"
        [[stream]]
        sensor = "elec"
        model = "\(singleModel)"
        """
        if ProcessInfo.processInfo.environment["STATE_DIRECTORY"] == nil {
            #expect(try DaemonConfig.parse(base).stateDirectory == "/tmp/x/energy/state")
        }
        let explicit = base.replacingOccurrences(of: "[[stream]]", with: "[state]\ndirectory = \"/var/lib/aiotd\"\n[[stream]]")
        #expect(try DaemonConfig.parse(explicit).stateDirectory == "/var/lib/aiotd")
        #expect(configError(base.replacingOccurrences(of: "[[stream]]", with: "[state]\ndir = \"x\"\n[[stream]]")) != nil)
    }
}

@Test func oversizedRecordsAreRefusedAndReplayStreamsPastGiantLines() throws {
    let dir = Harness.tempDir("spool-big")
    let spool = ReadingSpool(directory: dir)
    let small = SpoolRecord(topic: "aiot/gw/readings/a", payload: Array("{\"t\": 1, \"v\": 1}".utf8), arrivedAt: 1)
    let big = SpoolRecord(topic: "aiot/gw/readings/a", payload: [UInt8](repeating: 0x20, count: 5000), arrivedAt: 1)
    #expect(try spool.append([small, big, small], maxPayloadBytes: 4096) == 1)
    #expect(try ReadingSpool.read(path: spool.spoolPath).records == [small, small])
    // A line longer than replay will hold (an older or damaged spool): skipped, counted, the rest replayed.
    let h = FileHandle(forWritingAtPath: spool.spoolPath)!
    h.seekToEndOfFile()
    h.write(Data(repeating: UInt8(ascii: "x"), count: ReadingSpool.maxLineBytes + 10))
    h.write(Data("\n".utf8))
    h.closeFile()
    try spool.append([small])
    var seen = 0
    let r = try spool.replay { _ in seen += 1 }
    #expect(seen == 3 && r.replayed == 3 && r.corrupt == 1)
}
