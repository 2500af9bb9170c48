// One deployment channel on disk (one per artifact kind and stream): a staging file, two slots
// and an `active` pointer. Chunks go straight to the staging file (never held in memory); a
// finished, validated artifact moves into the inactive slot, and only then does the pointer
// flip, written atomically (temp file, fsync, rename, fsync directory). So a half-written staging
// file is never activated and the last active version is what starts (docs/deploy.md, "Store").
import Crypto
import Foundation

/// The `active` file: which slot serves, its version, and the highest version ever activated
/// (rollback lowers `version`, never `floor`: an old signed artifact cannot be replayed).
public struct ActivePointer: Sendable, Equatable {
    public var slot: String
    public var version: UInt64
    public var floor: UInt64
    public init(slot: String, version: UInt64, floor: UInt64) { (self.slot, self.version, self.floor) = (slot, version, floor) }

    public var text: String { "slot=\(slot)\nversion=\(version)\nfloor=\(floor)\n" }
    /// Parses an `active` file; nil when it is damaged (then no deployed version is served).
    public init?(text: String) {
        var d: [String: String] = [:]
        for l in text.split(separator: "\n") {
            guard let eq = l.firstIndex(of: "=") else { return nil }
            d[String(l[..<eq])] = String(l[l.index(after: eq)...])
        }
        guard let s = d["slot"], s == "a" || s == "b" || s == ActivePointer.none, let v = d["version"].flatMap(UInt64.init), let f = d["floor"].flatMap(UInt64.init) else { return nil }
        (slot, version, floor) = (s, v, f)
    }
    public var otherSlot: String { slot == "a" ? "b" : "a" }
    /// The slot of a pointer that names no deployed version (a deployment was rolled back to the
    /// configuration's own model); it keeps the floor.
    public static let none = "none"
    public var isNone: Bool { slot == Self.none }
}

/// Points where a test may stop the process (the daemon's AIOTD_DEPLOY_KILL_AT hook).
public enum DeployPoint: String, Sendable {
    case midStaging = "mid-staging", afterStaging = "after-staging", afterFlip = "after-flip"
}

public final class DeployChannel {
    public let directory: String
    /// Called at each DeployPoint (tests kill the process there).
    public var checkpoint: (DeployPoint) -> Void = { _ in }
    /// The deployment being received, if any.
    public private(set) var staging: Manifest?
    public private(set) var next: UInt64 = 0
    /// The sender's deployment id for the staged artifact (kept on disk so a restart resumes it).
    public private(set) var tag: String?
    private var hasher = Crypto.SHA256()
    private var fd: Int32 = -1

    public init(directory: String) throws(DeployError) {
        self.directory = directory
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
            throw DeployError(.storage, "cannot create \(directory): \(error.localizedDescription)")
        }
        resumeStaging()
    }
    deinit { if fd >= 0 { close(fd) } }

    var stagingPath: String { directory + "/staging.bin" }
    var stagingManifestPath: String { directory + "/staging.manifest" }
    var stagingTagPath: String { directory + "/staging.tag" }
    public func artifactPath(_ slot: String) -> String { directory + "/\(slot).bin" }
    func manifestPath(_ slot: String) -> String { directory + "/\(slot).manifest" }
    var pointerPath: String { directory + "/active" }

    public func pointer() -> ActivePointer? {
        (try? String(contentsOfFile: pointerPath, encoding: .utf8)).flatMap(ActivePointer.init(text:))
    }

    /// The manifest stored with a slot (nil when the slot is empty or unreadable).
    public func manifest(slot: String) -> Manifest? {
        FileManager.default.contents(atPath: manifestPath(slot)).flatMap { try? Manifest.parse(Array($0)).0 }
    }

    /// The active slot's manifest and artifact path, after checking the artifact's size and
    /// SHA-256 against its manifest (a damaged slot is not served).
    public func active() throws(DeployError) -> (Manifest, String)? {
        guard let p = pointer(), !p.isNone else { return nil }
        guard let m = manifest(slot: p.slot) else { throw DeployError(.storage, "\(manifestPath(p.slot)) is missing or unreadable") }
        let path = artifactPath(p.slot)
        guard let d = FileManager.default.contents(atPath: path), UInt64(d.count) == m.size, Array(Crypto.SHA256.hash(data: d)) == m.sha256 else {
            throw DeployError(.digestMismatch, "\(path) does not match its manifest (size or SHA-256); deploy again or roll back")
        }
        return (m, path)
    }

    // MARK: staging

    /// Starts receiving an artifact, or resumes when the staged one has the same size and SHA-256
    /// (the bytes are bound to the digest, so a manifest signed again, e.g. with a later expiry,
    /// keeps them). Returns the next byte needed.
    @discardableResult
    public func begin(_ m: Manifest, tag: String = "") throws(DeployError) -> UInt64 {
        if let s = staging, s.sha256 == m.sha256, s.size == m.size {
            if s.text != m.text { try writeAtomically(stagingManifestPath, m.text); staging = m }
            if tag != self.tag { try writeAtomically(stagingTagPath, Array(tag.utf8)); self.tag = tag }
            return next
        }
        abandonStaging()
        try writeAtomically(stagingTagPath, Array(tag.utf8))
        self.tag = tag
        try writeAtomically(stagingManifestPath, m.text)
        fd = open(stagingPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DeployError(.storage, "cannot create \(stagingPath): \(String(cString: strerror(errno)))") }
        staging = m
        next = 0
        hasher = Crypto.SHA256()
        return 0
    }

    /// After a restart: the staged manifest and the bytes already received (re-hashed from disk).
    private func resumeStaging() {
        guard let d = FileManager.default.contents(atPath: stagingManifestPath), let (m, _) = try? Manifest.parse(Array(d)) else { return }
        let f = open(stagingPath, O_RDWR | O_CLOEXEC)
        guard f >= 0 else { return }
        // Re-hash what is on disk in blocks (an artifact may be large; memory stays small).
        var h = Crypto.SHA256()
        var block = [UInt8](repeating: 0, count: 1 << 16)
        var total: UInt64 = 0
        while true {
            let n = block.withUnsafeMutableBytes { read(f, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            h.update(data: block[0..<n])
            total += UInt64(n)
        }
        guard total <= m.size else { close(f); return }
        fd = f
        staging = m
        tag = FileManager.default.contents(atPath: stagingTagPath).map { String(decoding: $0, as: UTF8.self) }
        hasher = h
        next = total
        // Complete but killed before the commit: only bytes that match the manifest may go on.
        if next == m.size && Array(hasher.finalize()) != m.sha256 { abandonStaging() }
    }

    /// Drops the staging file and manifest (a refused or superseded deployment).
    public func abandonStaging() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(stagingPath)
        unlink(stagingManifestPath)
        unlink(stagingTagPath)
        staging = nil
        tag = nil
        next = 0
    }

    /// Writes one chunk to the staging file. Duplicates and chunks ahead of `next` write nothing;
    /// a chunk whose running hash disagrees writes nothing and throws `.chunkCorrupt`.
    public func write(_ c: Chunk) throws(DeployError) -> ChunkOutcome {
        guard let m = staging else { throw DeployError(.noManifest, "no deployment is being received; publish the manifest first") }
        guard c.end <= m.size else { throw DeployError(.chunkOutOfRange, "chunk [\(c.offset), \(c.end)) runs past the artifact's \(m.size) bytes") }
        if c.end <= next { return .duplicate(next: next) }
        if c.offset != next { return c.offset > next ? .gap(next: next) : .duplicate(next: next) }
        var h = hasher
        h.update(data: c.data)
        guard Array(h.finalize()) == c.running else {
            throw DeployError(.chunkCorrupt, "chunk at offset \(c.offset) does not match its running SHA-256 (altered in transit); resend from \(next)")
        }
        let ok = c.data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(c.offset)) == $0.count }
        guard ok else { throw DeployError(.storage, "cannot write \(stagingPath): \(String(cString: strerror(errno)))") }
        hasher = h
        next = c.end
        checkpoint(.midStaging)
        guard next == m.size else { return .appended(next: next) }
        guard Array(hasher.finalize()) == m.sha256 else {
            abandonStaging()
            throw DeployError(.digestMismatch, "the artifact's SHA-256 differs from the manifest's; deploy again")
        }
        guard fsync(fd) == 0 else { throw DeployError(.storage, "fsync \(stagingPath): \(String(cString: strerror(errno)))") }
        return .complete
    }

    /// The complete staged artifact's path (for validation before it is committed).
    public var stagedArtifact: String? { staging != nil && next == staging!.size ? stagingPath : nil }

    /// Moves the complete staged artifact into the inactive slot and returns that slot; the
    /// pointer does not change yet (`flip` does that).
    public func commit() throws(DeployError) -> String {
        guard let m = staging, next == m.size else { throw DeployError(.noManifest, "nothing complete is staged") }
        let slot = pointer()?.otherSlot ?? "a"
        // The slot's old manifest goes first: a slot never pairs a manifest with another artifact.
        unlink(manifestPath(slot))
        guard rename(stagingPath, artifactPath(slot)) == 0 else { throw DeployError(.storage, "rename into slot \(slot): \(String(cString: strerror(errno)))") }
        try writeAtomically(manifestPath(slot), m.text)
        if fd >= 0 { close(fd); fd = -1 }
        unlink(stagingManifestPath)
        unlink(stagingTagPath)
        try syncDirectory()
        staging = nil
        tag = nil
        next = 0
        checkpoint(.afterStaging)
        return slot
    }

    /// Makes `slot` the active one (atomically).
    public func flip(to slot: String, version: UInt64) throws(DeployError) {
        let floor = max(pointer()?.floor ?? 0, version)
        try writeAtomically(pointerPath, Array(ActivePointer(slot: slot, version: version, floor: floor).text.utf8))
        checkpoint(.afterFlip)
    }

    /// Puts the pointer back to `previous` (nil: no deployed version serves, the configured model
    /// does), keeping the floor: the version given up cannot be replayed (automatic rollback).
    public func revert(to previous: ActivePointer?) throws(DeployError) {
        let floor = pointer()?.floor ?? 0
        let p = previous.map { ActivePointer(slot: $0.slot, version: $0.version, floor: max(floor, $0.floor)) }
            ?? ActivePointer(slot: ActivePointer.none, version: 0, floor: floor)
        try writeAtomically(pointerPath, Array(p.text.utf8))
    }

    /// The other slot, when it holds an intact version older than the active one.
    public func rollbackCandidate() throws(DeployError) -> (slot: String, manifest: Manifest) {
        guard let p = pointer() else { throw DeployError(.nothingToRollBack, "nothing was deployed on this stream") }
        let o = p.otherSlot
        guard let m = manifest(slot: o), m.version < p.version else {
            throw DeployError(.nothingToRollBack, "slot \(o) holds no older version than the active \(p.version)")
        }
        guard let d = FileManager.default.contents(atPath: artifactPath(o)), Array(Crypto.SHA256.hash(data: d)) == m.sha256 else {
            throw DeployError(.digestMismatch, "slot \(o) does not match its manifest; it cannot be rolled back to")
        }
        return (o, m)
    }

    // MARK: files

    func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(DeployError) {
        let tmp = path + ".tmp"
        let f = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard f >= 0 else { throw DeployError(.storage, "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let ok = bytes.withUnsafeBytes { Foundation.write(f, $0.baseAddress, $0.count) == $0.count } && fsync(f) == 0
        close(f)
        guard ok, rename(tmp, path) == 0 else { throw DeployError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))") }
        try syncDirectory()
    }

    func syncDirectory() throws(DeployError) {
        let d = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard d >= 0 else { throw DeployError(.storage, "cannot open \(directory): \(String(cString: strerror(errno)))") }
        defer { close(d) }
        guard fsync(d) == 0 else { throw DeployError(.storage, "fsync \(directory): \(String(cString: strerror(errno)))") }
    }
}
