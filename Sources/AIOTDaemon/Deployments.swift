// The artifact channel's state in the daemon (docs/deploy.md): one DeployChannel per stream on
// disk, the rollback nonces, and the refusal counters. At start (and on every reload) the active
// slot of each stream replaces the model file its [[stream]] names; `activateDeployedModel` is
// the one place a new model goes live while running.
import Foundation
import Logging
import AIOTMQTT
import Metrics
import Crypto
import AIOTDeploy
import AIOTModel
import AIOTTelemetry
import AIOTBoard

final class Deployments {
    let settings: DeploySettings
    let gateway: String
    /// `<deploy.topic>/` expanded: every deploy message's topic starts with it.
    let prefix: [UInt8]
    var filter: String { String(decoding: prefix, as: UTF8.self) + "#" }
    private var channels: [String: DeployChannel] = [:]
    /// Rollback nonces seen inside the skew window.
    var nonces: [String: Double] = [:]
    var refused = [Int](repeating: 0, count: DeployRefusal.allCases.count)
    var activated = 0
    var rollbacks = 0
    /// Deployed models under trial, by template: what to put back if the trial rolls them back.
    var trials: [Int: DeployTrial] = [:]
    /// Deployments rolled back by their trial (docs/rollback.md), on disk as well.
    var trialRollbacks = 0
    let refusedMetric: [Counter]
    let activatedMetric: Counter
    /// Writes a bitstream into a board slot and boots it (Flasher.deploy); nil without a board.
    var flashBitstream: ((_ bytes: [UInt8], _ slot: Int, _ running: Int?) throws -> SlotDeployResult)?
    /// Test hook (AIOTD_DEPLOY_KILL_AT, read once at start): SIGKILL at this point.
    let killAt: DeployPoint?
    var lastLog = [Double](repeating: -.infinity, count: DeployRefusal.allCases.count)

    init(settings: DeploySettings, gateway: String, metrics: MetricsFactory, killAt: DeployPoint?) {
        self.settings = settings
        self.gateway = gateway
        prefix = Array((settings.topic.replacingOccurrences(of: "{gateway}", with: gateway) + "/").utf8)
        refusedMetric = DeployRefusal.allCases.map { Counter(label: "aiotd_deploy_refused_total", dimensions: [("reason", $0.description)], factory: metrics) }
        activatedMetric = Counter(label: "aiotd_deploy_activated_total", dimensions: [], factory: metrics)
        self.killAt = killAt
        // Channels with a staged artifact must be findable by their id after a restart.
        for d in ((try? FileManager.default.contentsOfDirectory(atPath: settings.directory)) ?? []) where d.hasPrefix("model-") || d.hasPrefix("bitstream-") {
            if let c = try? DeployChannel(directory: settings.directory + "/" + d) { adopt(c, key: d) }
        }
    }

    private func adopt(_ c: DeployChannel, key: String) {
        if let killAt { c.checkpoint = { p in if p == killAt { kill(getpid(), SIGKILL) } } }
        channels[key] = c
    }

    /// The channel receiving the deployment with this id.
    func channel(tag: String) -> DeployChannel? {
        channels.values.first { $0.staging != nil && $0.tag == tag }
    }

    /// The deploy topic's remainder (`<id>/<part>`), or nil when `topic` is not a deploy topic.
    func match(_ topic: UnsafeBufferPointer<UInt8>) -> (id: String, part: String)? {
        guard topic.count > prefix.count, topic.starts(with: prefix) else { return nil }
        let rest = topic[prefix.count...].split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard rest.count == 2 else { return ("", "") }
        return (String(decoding: rest[0], as: UTF8.self), String(decoding: rest[1], as: UTF8.self))
    }

    /// The channel of one artifact kind and stream: `<kind>-<readable stream>-<hash>`, so any
    /// stream string maps to one safe directory name.
    func channel(_ kind: ArtifactKind, _ stream: String) throws(DeployError) -> DeployChannel {
        let key = Self.directoryName(kind, stream)
        if let c = channels[key] { return c }
        let c = try DeployChannel(directory: settings.directory + "/" + key)
        adopt(c, key: key)
        return c
    }

    static func directoryName(_ kind: ArtifactKind, _ stream: String) -> String {
        let readable = String(stream.utf8.prefix(40).map { b -> Character in
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x2D || b == 0x5F ? Character(UnicodeScalar(b)) : "_"
        })
        return "\(kind.rawValue)-\(readable)-" + Hex.encode(Crypto.SHA256.hash(data: Array(stream.utf8)).prefix(4))
    }

    /// The config's streams a manifest's `stream` names (by name or by sensor pattern as written).
    static func streams(_ config: DaemonConfig, matching stream: String) -> [Int] {
        config.streams.indices.filter { config.streams[$0].name == stream || config.streams[$0].sensor == stream }
    }

    /// `config` with each stream's model replaced by its active deployed model, if any. A damaged
    /// active slot is logged and skipped: the configured model serves.
    static func applyActive(_ config: DaemonConfig, logger: Logger) -> DaemonConfig {
        guard let s = config.deploy else { return config }
        var c = config
        let dirs = ((try? FileManager.default.contentsOfDirectory(atPath: s.directory)) ?? []).filter { $0.hasPrefix("model-") }.sorted()
        for d in dirs {
            guard let ch = try? DeployChannel(directory: s.directory + "/" + d) else { continue }
            do {
                guard let (m, path) = try ch.active() else { continue }
                for i in streams(c, matching: m.stream) { c.streams[i].model = path }
            } catch {
                logger.error("deployed model not served; the configured model serves instead", metadata: ["channel": "\(d)", "error": "\(error)"])
            }
        }
        return c
    }

    /// The board slot of the active deployed bitstream, if any (booted at start: a power cycle
    /// loads the golden image, not the deployed one).
    static func activeBoardSlot(_ s: DeploySettings) -> Int? {
        let dirs = ((try? FileManager.default.contentsOfDirectory(atPath: s.directory)) ?? []).filter { $0.hasPrefix("bitstream-") }.sorted()
        for d in dirs {
            if let p = (try? DeployChannel(directory: s.directory + "/" + d))?.pointer(), !p.isNone { return DaemonCore.boardSlot(p.slot) }
        }
        return nil
    }

    func count(_ r: DeployRefusal, logger: Logger, now: Double, _ why: String) {
        refused[r.rawValue] += 1
        refusedMetric[r.rawValue].increment()
        // At most one line per reason per 10 s: a flood must not flood the journal.
        guard now - lastLog[r.rawValue] >= 10 else { return }
        lastLog[r.rawValue] = now
        logger.warning("deployment refused", metadata: ["reason": "\(r)", "why": "\(printable(why, limit: 300))", "total": "\(refused[r.rawValue])"])
    }

    /// Status of every channel on disk, for `aiotctl deploy --status`.
    func statusJSON() -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        func num(_ key: StaticString, _ v: UInt64) { w.raw(","); w.string("\(key)"); w.raw(":"); w.int(v) }
        w.raw("{\"channels\":[")
        var first = true
        // The channels known since start (every one on disk then, and those made since): a status
        // request re-reads no staging file.
        for (d, ch) in channels.sorted(by: { $0.key < $1.key }) {
            let p = ch.pointer()
            guard p != nil || ch.staging != nil else { continue }
            if !first { w.raw(",") }
            first = false
            w.raw("{\"channel\":"); w.string(d)
            if let p {
                w.raw(",\"active_slot\":"); w.string(p.slot)
                num("active_version", p.version); num("floor", p.floor)
                if let m = ch.manifest(slot: p.slot) { w.raw(",\"stream\":"); w.string(m.stream); w.raw(",\"name\":"); w.string(m.name) }
                if let o = ch.manifest(slot: p.otherSlot) { num("other_version", o.version) }
            }
            if let s = ch.staging { num("staging_version", s.version); num("staging_next", ch.next); num("staging_size", s.size) }
            w.raw("}")
        }
        w.raw("]")
        num("activated", UInt64(activated)); num("rollbacks", UInt64(rollbacks))
        w.raw(",\"refused\":{")
        for r in DeployRefusal.allCases {
            if r.rawValue > 0 { w.raw(",") }
            w.string(r.description); w.raw(":"); w.int(refused[r.rawValue])
        }
        w.raw("}}")
        return w.bytes
    }
}

/// A deployed model on trial: its channel's pointer and the stream's model file before it.
struct DeployTrial {
    var channel: DeployChannel
    var previous: ActivePointer?
    var previousPath: String
}

extension DaemonCore {
    /// The one place a deployed (or rolled-back) model goes live: the guarded model switch
    /// (ModelSwitch.swift), windows kept. `guarded`: a trial against the model serving now, whose
    /// verdict may put that one back (then `deploymentTrialEnded` reverts the disk too).
    func activateDeployedModel(streams: [Int], path: String, origin: SwitchOrigin, guarded: Bool, reply: MQTTTopic? = nil) throws(ConfigError) {
        let model: LoadedModel
        do { model = try generation.store.model(path) } catch { throw ConfigError("\(path): \(error)") }
        let names = streams.map { generation.processor.templates[$0].name }
        let reports = switchModel(streams: .named(names), to: model, origin: origin, guarded: guarded, reply: reply)
        if let refused = reports.first(where: { $0.reason == RollbackReason.loadFailed.description }) {
            throw ConfigError(refused.detail ?? "stream \(refused.stream) cannot run \(path)")
        }
        // What a reload compares against and a restart would load (Deployments.applyActive).
        for i in streams { generation.config.streams[i].model = path }
        logger.notice("deployed model active", metadata: ["streams": "\(names)", "model": "\(model.identity)", "origin": "\(origin.text)", "trial": "\(guarded)"])
    }

    /// Called whenever a trial ends: a deployed model rolled back by its trial is rolled back on
    /// disk as well, so a restart serves the model that won, not the one that lost.
    func deploymentTrialEnded(_ t: Int, rolledBack: Bool) {
        guard let d = deployments, let e = d.trials.removeValue(forKey: t), rolledBack else { return }
        generation.config.streams[t].model = e.previousPath
        d.trialRollbacks += 1
        do {
            try e.channel.revert(to: e.previous)
            logger.warning("deployment rolled back on disk: a restart serves the previous model", metadata: ["stream": "\(generation.processor.templates[t].name)", "active_slot": "\(e.previous?.slot ?? ActivePointer.none)"])
        } catch {
            logger.error("deployment rolled back in memory but its pointer could not be reverted: a restart would serve the rolled-back model", metadata: ["error": "\(error)"])
        }
    }

    /// Full validation of a staged model for `streams` without installing it: the loader's checks
    /// and everything a reload would check (feature topics, engine, accuracy reference).
    func validateDeployedModel(streams: [Int], path: String) throws(ConfigError) {
        var c = config
        for i in streams { c.streams[i].model = path }
        _ = try Generation.build(c, store: generation.store.successor(), engineKind: engineKind)
    }
}
