// The shutdown spool: messages libmosquitto already acknowledged to the broker but the pipeline did
// not process before the SIGTERM deadline. Written whole at shutdown, replayed first at the next
// start. Never touched on the per-reading path.
import Foundation

/// One spooled message: topic, payload bytes, and wall-clock arrival time (seconds since 1970).
public struct SpoolRecord: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var arrivedAt: Double
    public init(topic: String, payload: [UInt8], arrivedAt: Double) {
        self.topic = topic
        self.payload = payload
        self.arrivedAt = arrivedAt
    }
}

public struct SpoolError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// What a replay did.
public struct SpoolReplay: Sendable, Equatable {
    public var replayed = 0
    /// Lines that did not decode (a truncated last line after a crash mid-write): skipped.
    public var corrupt = 0
    /// Records a crashed earlier replay had already handled: not handled again.
    public var alreadyDone = 0
}

/// JSON Lines in `directory`: `{"t":<arrival s>,"topic":"...","payload":"<base64>"}` per line.
///
/// Crash rules (docs/daemon.md, "Shutdown spool"):
/// - write: one `write` per record on an O_APPEND file (a failed or short write is truncated away),
///   then fsync the file and the directory before exit;
/// - replay: rename `spool.jsonl` to `spool.replaying.jsonl` (new spools never touch a file being
///   replayed), handle records in order, after each one record the count handled in
///   `spool.replaying.done`, fsynced every `progressSyncEvery` records (a power loss re-handles
///   at most that many: their forecasts may be published twice, none is lost); when all are handled, `beforeRemoving` (fsync the energy log), then
///   delete the replaying file, then the progress file. A start that finds a replaying file resumes
///   it after the recorded count, before any newer `spool.jsonl`.
public struct ReadingSpool: Sendable {
    public let directory: String
    public var spoolPath: String { directory + "/spool.jsonl" }
    public var replayingPath: String { directory + "/spool.replaying.jsonl" }
    public var progressPath: String { directory + "/spool.replaying.done" }

    public init(directory: String) { self.directory = directory }

    // MARK: Encoding

    public static func encode(_ r: SpoolRecord) -> [UInt8] {
        var o: [UInt8] = Array("{\"t\":".utf8)
        o += Array(String(format: "%.6f", r.arrivedAt).utf8)
        o += Array(",\"topic\":".utf8)
        // JSONSerialization escapes the topic correctly; wrap it in an array to get a fragment.
        let topicJSON = (try? JSONSerialization.data(withJSONObject: [r.topic])) ?? Data("[\"\"]".utf8)
        o += Array(topicJSON.dropFirst().dropLast())
        o += Array(",\"payload\":\"".utf8)
        o += Array(Data(r.payload).base64EncodedString().utf8)
        o += Array("\"}\n".utf8)
        return o
    }

    /// nil for a line that is not a whole record.
    public static func decode(_ line: Data) -> SpoolRecord? {
        guard let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
              let t = (o["t"] as? NSNumber)?.doubleValue, t.isFinite,
              let topic = o["topic"] as? String,
              let p = o["payload"] as? String, let payload = Data(base64Encoded: p) else { return nil }
        return SpoolRecord(topic: topic, payload: Array(payload), arrivedAt: t)
    }

    /// The longest line replay reads (a record of a maximal 1 MiB payload is about 1.4 MB of
    /// base64): a longer line is skipped as corrupt without being held in memory.
    public static let maxLineBytes = 2 << 20

    /// Every whole record in `path`, in order, and how many lines were skipped. A last line
    /// without its newline is a write cut short and counts as corrupt. (Tools and tests; replay
    /// streams with `forEachRecord`.)
    public static func read(path: String) throws(SpoolError) -> (records: [SpoolRecord], corrupt: Int) {
        var records: [SpoolRecord] = []
        let corrupt = try forEachRecord(path: path) { records.append($0) }
        return (records, corrupt)
    }

    /// Streams the records of `path` in order, reading 64 KiB at a time: memory stays bounded
    /// whatever the file's size. Returns the number of corrupt, oversized or truncated lines.
    public static func forEachRecord(path: String, _ body: (SpoolRecord) -> Void) throws(SpoolError) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("cannot read the spool \(path): \(String(cString: strerror(errno))); check state.directory permissions") }
        defer { close(fd) }
        var corrupt = 0
        var line: [UInt8] = []
        var skipping = false
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SpoolError("cannot read the spool \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            var start = 0
            while start < n {
                let nl = chunk[start..<n].firstIndex(of: UInt8(ascii: "\n"))
                let end = nl ?? n
                if !skipping {
                    if line.count + (end - start) > maxLineBytes {
                        skipping = true; line.removeAll(keepingCapacity: false)
                    } else {
                        line.append(contentsOf: chunk[start..<end])
                    }
                }
                guard let nl else { break }
                if skipping { corrupt += 1 } else if !line.isEmpty {
                    if let r = decode(Data(line)) { body(r) } else { corrupt += 1 }
                }
                line.removeAll(keepingCapacity: true)
                skipping = false
                start = nl + 1
            }
        }
        if skipping || !line.isEmpty { corrupt += 1 }  // truncated last line
        return corrupt
    }

    // MARK: Writing (shutdown)

    /// Appends the records, one write each, then fsyncs file and directory. Records whose payload
    /// exceeds `maxPayloadBytes` are refused (they would be rejected as oversized anyway, and a
    /// spooled giant must not re-kill every start); returns how many were refused.
    @discardableResult
    public func append(_ records: [SpoolRecord], maxPayloadBytes: Int = 1 << 20) throws(SpoolError) -> Int {
        let refused = records.count
        let records = records.filter { $0.payload.count <= maxPayloadBytes }
        if records.isEmpty { return refused }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw SpoolError("cannot create the state directory \(directory): \(error); set state.directory to a writable directory")
        }
        let fd = open(spoolPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if fd < 0 { throw SpoolError("cannot open the spool \(spoolPath): \(String(cString: strerror(errno))); check state.directory permissions") }
        defer { close(fd) }
        var st = stat()
        var size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        for r in records {
            let line = Self.encode(r)
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n != line.count {
                let err = n < 0 ? String(cString: strerror(errno)) : "short write (\(n) of \(line.count) bytes)"
                if n > 0 { _ = ftruncate(fd, off_t(size)) }  // no half line survives
                _ = fsync(fd)
                throw SpoolError("spool write to \(spoolPath) failed: \(err)")
            }
            size += n
        }
        if fsync(fd) != 0 { throw SpoolError("fsync of \(spoolPath) failed: \(String(cString: strerror(errno)))") }
        syncDirectory()
        return refused - records.count
    }

    // MARK: Replay (start)

    /// Records between fsyncs of the replay's progress file.
    public static let progressSyncEvery = 64

    /// Handles every spooled record once, oldest spool first; nothing to do when there is no spool.
    /// `progressSynced` is told each count made durable (for tests).
    public func replay(_ handle: (SpoolRecord) -> Void, beforeRemoving: () -> Void = {},
                       progressSynced: (Int) -> Void = { _ in }) throws(SpoolError) -> SpoolReplay {
        var result = SpoolReplay()
        let fm = FileManager.default
        while true {
            var done = 0
            if fm.fileExists(atPath: replayingPath) {
                // A replay was cut short: resume after what it recorded as handled.
                if let d = fm.contents(atPath: progressPath), let s = String(data: d, encoding: .utf8),
                   let n = Int(s.trimmingCharacters(in: .whitespacesAndNewlines)) { done = n }
            } else if fm.fileExists(atPath: spoolPath) {
                _ = unlink(progressPath)  // left over from a replay that finished removing its file
                if rename(spoolPath, replayingPath) != 0 {
                    throw SpoolError("cannot rename \(spoolPath) for replay: \(String(cString: strerror(errno))); check state.directory permissions")
                }
                syncDirectory()
            } else {
                return result
            }
            let pfd = open(progressPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
            if pfd < 0 { throw SpoolError("cannot open \(progressPath): \(String(cString: strerror(errno))); check state.directory permissions") }
            defer { close(pfd) }
            var i = 0
            result.corrupt += try Self.forEachRecord(path: replayingPath) { r in
                defer { i += 1 }
                if i < done { result.alreadyDone += 1; return }
                handle(r)
                result.replayed += 1
                // Fixed width, so a shorter count never leaves digits of a longer one behind.
                let mark = Array(String(format: "%20d\n", i + 1).utf8)
                _ = mark.withUnsafeBytes { pwrite(pfd, $0.baseAddress, $0.count, 0) }
                if (i + 1) % Self.progressSyncEvery == 0, fsync(pfd) == 0 { progressSynced(i + 1) }
            }
            beforeRemoving()
            if fsync(pfd) == 0 { progressSynced(i) }
            if unlink(replayingPath) != 0 { throw SpoolError("cannot remove \(replayingPath): \(String(cString: strerror(errno)))") }
            _ = unlink(progressPath)
            syncDirectory()
        }
    }

    private func syncDirectory() {
        let d = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { _ = fsync(d); close(d) }
    }
}
