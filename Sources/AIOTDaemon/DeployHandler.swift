// Messages of the artifact channel (docs/deploy.md): `<deploy.topic>/<id>/manifest`, `/chunk`,
// `/status` and `/rollback`. Answers go to the replies topic with the deployment's id: progress
// ("receiving", "need" with the next offset), and the verdict ("activated" or "refused" with the
// reason). Every refusal is counted by reason and leaves the serving model as it was.
import AIOTDeploy
import AIOTModel
import AIOTMQTT

extension DaemonCore {
    func handleDeploy(_ d: Deployments, id: String, part: String, payload message: MQTTMessage) {
        let now = clock()
        // The id becomes a topic level of the reply: refuse anything that could not be one.
        guard !id.isEmpty, id.utf8.count <= 128, !id.contains("+"), !id.contains("#"), !id.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            return d.count(.malformed, logger: logger, now: now, "deploy topic without a usable id (\(printable(part)))")
        }
        let payload = Array(message.payload)
        switch part {
        case "manifest": deployManifest(d, id: id, payload, now: now)
        case "chunk": deployChunk(d, id: id, payload, now: now)
        case "rollback": deployRollback(d, id: id, payload, now: now)
        case "status":
            var r = ReplyEncoder(id: id, command: "deploy", ok: true)
            r.member("state", string: "status")
            r.member("deploy", raw: d.statusJSON())
            deployReply(id, r.finish())
        default:
            refuseDeploy(d, id: id, DeployError(.malformed, "unknown deploy message \"\(printable(part))\" (manifest, chunk, status, rollback)"), now: now)
        }
    }

    private func deployManifest(_ d: Deployments, id: String, _ payload: [UInt8], now: Double) {
        do throws(DeployError) {
            let s = d.settings
            let m = try Manifest.verify(payload, keys: s.trustedKeys, gateway: config.gateway, now: now, maxSize: UInt64(s.maxArtifactBytes),
                                        floor: { m in (try? d.channel(m.kind, m.stream))?.pointer()?.floor ?? 0 })
            guard m.kind == .model || d.flashBitstream != nil else {
                throw DeployError(.unsupported, "this gateway has no board (board.device with engine.kind = \"fpga\") to take a bitstream")
            }
            guard m.kind == .bitstream || !Deployments.streams(config, matching: m.stream).isEmpty else {
                throw DeployError(.wrongStream, "no [[stream]] here is named or has sensors \"\(printable(m.stream))\" (streams: \(config.streams.map(\.name)))")
            }
            let ch = try d.channel(m.kind, m.stream)
            if let s = ch.staging, s.version > m.version {
                throw DeployError(.oldVersion, "version \(s.version) is being received; an older manifest (\(m.version)) does not replace it")
            }
            let next = try ch.begin(m, tag: id)
            progress(id, "receiving", next: next, size: m.size)
            // Staged whole before a restart cut the activation short: finish it now.
            if ch.stagedArtifact != nil { finishDeployment(d, ch, m, id: id, now: now) }
        } catch {
            refuseDeploy(d, id: id, error, now: now)
        }
    }

    private func deployChunk(_ d: Deployments, id: String, _ payload: [UInt8], now: Double) {
        guard let ch = d.channel(tag: id), let m = ch.staging else {
            // Not answered: chunks of an unknown id could be a flood, and there is nobody to tell.
            return d.count(.noManifest, logger: logger, now: now, "chunk for \(printable(id)), which is not being received")
        }
        do throws(DeployError) {
            let c = try Chunk.parse(payload)
            switch try ch.write(c) {
            case .appended(let next):
                // Progress every 32 chunks or so (the sender needs none; operators like it).
                if (next / UInt64(c.data.count)) % 32 == 0 { progress(id, "receiving", next: next, size: m.size) }
            case .duplicate: break
            case .gap(let next): progress(id, "need", next: next, size: m.size)
            case .complete: finishDeployment(d, ch, m, id: id, now: now)
            }
        } catch {
            refuseDeploy(d, id: id, error, now: now, next: ch.staging != nil ? ch.next : nil)
        }
    }

    /// The artifact is complete and matches its manifest: validate, move to the inactive slot,
    /// flip the pointer, then switch the streams.
    private func finishDeployment(_ d: Deployments, _ ch: DeployChannel, _ m: Manifest, id: String, now: Double) {
        if m.kind == .bitstream { return finishBitstream(d, ch, m, id: id, now: now) }
        let streams = Deployments.streams(config, matching: m.stream)
        do throws(DeployError) {
            guard let staged = ch.stagedArtifact else { throw DeployError(.storage, "the staged artifact vanished") }
            do { try validateDeployedModel(streams: streams, path: staged) } catch {
                ch.abandonStaging()
                throw DeployError(.validationFailed, "the model does not load here: \(error.message)")
            }
            let previous = ch.pointer()
            let previousPaths = streams.map { config.streams[$0].model }
            let slot = try ch.commit()
            try ch.flip(to: slot, version: m.version)
            do {
                try activateDeployedModel(streams: streams, path: ch.artifactPath(slot), origin: .deployment("\(m.name) v\(m.version)"), guarded: true,
                                          reply: try? MQTTTopic(config.topics.expand(config.topics.replies, gateway: config.gateway, "id", id)))
            } catch {
                // Validated a moment ago, so this is rare: put the pointer back so a restart agrees.
                try? ch.revert(to: previous.flatMap { $0.isNone ? nil : $0 })
                throw DeployError(.validationFailed, "the model did not go live: \(error.message)")
            }
            // Under trial: its verdict may still roll it back (deploymentTrialEnded).
            for (k, t) in streams.enumerated() where switching.trials[t] != nil {
                d.trials[t] = DeployTrial(channel: ch, previous: previous.flatMap { $0.isNone ? nil : $0 }, previousPath: previousPaths[k])
            }
            d.activated += 1
            d.activatedMetric.increment()
            var r = ReplyEncoder(id: id, command: "deploy", ok: true)
            r.member("state", string: "activated")
            r.member("version", string: String(m.version))
            r.member("slot", string: slot)
            r.member("model", string: generation.bindings[streams[0]].model.identity)
            r.member("streams", strings: streams.map { config.streams[$0].name })
            deployReply(id, r.finish())
        } catch {
            refuseDeploy(d, id: id, error, now: now)
        }
    }

    private func deployRollback(_ d: Deployments, id: String, _ payload: [UInt8], now: Double) {
        do throws(DeployError) {
            let s = d.settings
            let r = try RollbackRequest.verify(payload, keys: s.trustedKeys, gateway: config.gateway, now: now, maxSkew: s.maxSkewSeconds)
            d.nonces = d.nonces.filter { now - $0.value <= s.maxSkewSeconds }
            guard d.nonces[r.nonce] == nil else { throw DeployError(.replayed, "this rollback's nonce was already used: sign afresh") }
            guard d.nonces.count < 10_000 else { throw DeployError(.replayed, "too many rollbacks inside the skew window; retry later") }
            d.nonces[r.nonce] = Double(r.ts)
            let streams = Deployments.streams(config, matching: r.stream)
            guard r.kind == .model, !streams.isEmpty else { throw DeployError(.wrongStream, "no [[stream]] here is \"\(printable(r.stream))\"") }
            let ch = try d.channel(r.kind, r.stream)
            let (slot, m) = try ch.rollbackCandidate()
            try ch.flip(to: slot, version: m.version)
            do { try activateDeployedModel(streams: streams, path: ch.artifactPath(slot), origin: .deployment("rollback to v\(m.version)"), guarded: false) } catch {
                throw DeployError(.validationFailed, "version \(m.version) no longer loads: \(error.message)")
            }
            d.rollbacks += 1
            var rep = ReplyEncoder(id: id, command: "deploy", ok: true)
            rep.member("state", string: "rolled_back")
            rep.member("version", string: String(m.version))
            rep.member("slot", string: slot)
            deployReply(id, rep.finish())
        } catch {
            refuseDeploy(d, id: id, error, now: now)
        }
    }

    private func progress(_ id: String, _ state: String, next: UInt64, size: UInt64) {
        var r = ReplyEncoder(id: id, command: "deploy", ok: true)
        r.member("state", string: state)
        r.member("next_offset", raw: Array(String(next).utf8))
        r.member("size", raw: Array(String(size).utf8))
        deployReply(id, r.finish())
    }

    /// Counts the refusal and answers it with the reason (and, when the deployment goes on,
    /// the offset to resend from).
    func refuseDeploy(_ d: Deployments, id: String, _ e: DeployError, now: Double, next: UInt64? = nil) {
        d.count(e.reason, logger: logger, now: now, e.message)
        var r = ReplyEncoder(id: id, command: "deploy", ok: false)
        r.member("state", string: next == nil ? "refused" : "need")
        r.member("reason", string: e.reason.description)
        r.member("error", string: e.message)
        if let next { r.member("next_offset", raw: Array(String(next).utf8)) }
        deployReply(id, r.finish())
    }

    func deployReply(_ id: String, _ reply: [UInt8]) {
        guard let topic = try? MQTTTopic(config.topics.expand(config.topics.replies, gateway: config.gateway, "id", id)) else { return }
        do { try publisher.publish(topic, payload: reply, qos: .atLeastOnce, retain: false) } catch {
            counters.publishErrors += 1
            logger.warning("deploy reply publish failed", metadata: ["id": "\(printable(id))", "error": "\(printable("\(error)", limit: 400))"])
        }
    }
}
