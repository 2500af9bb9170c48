// A complete, verified bitstream artifact: parsed, written into the board slot that is not
// running (A/B = board slots 1/2; never the golden slot 0) through the flasher's checks and
// read-back verify, booted, and only if the board comes up is the pointer flipped. A board that
// does not come up is booted back into the previous slot and the deployment is refused.
import AIOTBoard
import AIOTDeploy
import Foundation

extension DaemonCore {
    /// Board slot of a channel slot.
    static func boardSlot(_ s: String) -> Int { s == "a" ? 1 : 2 }

    func finishBitstream(_ d: Deployments, _ ch: DeployChannel, _ m: Manifest, id: String, now: Double) {
        do throws(DeployError) {
            guard let path = ch.stagedArtifact, let bytes = FileManager.default.contents(atPath: path).map(Array.init),
                  let flash = d.flashBitstream else { throw DeployError(.storage, "the staged bitstream vanished") }
            do { _ = try Bitstream(bytes: bytes) } catch {
                ch.abandonStaging()
                throw DeployError(.validationFailed, "not a bitstream: \(error.message)")
            }
            let p = ch.pointer()
            let target = Self.boardSlot(p?.otherSlot ?? "a")
            let result: SlotDeployResult
            do { result = try flash(bytes, target, p.map { Self.boardSlot($0.slot) }) } catch {
                ch.abandonStaging()
                throw DeployError(.validationFailed, "board slot \(target): \(error)")
            }
            guard result.ok else {
                ch.abandonStaging()
                throw DeployError(.validationFailed, "\(result.reason ?? "the board did not come up"); slot \(result.rolledBackTo ?? 0) runs again")
            }
            let slot = try ch.commit()
            try ch.flip(to: slot, version: m.version)
            d.activated += 1
            d.activatedMetric.increment()
            logger.notice("deployed bitstream running", metadata: ["board_slot": "\(target)", "version": "\(m.version)", "name": "\(m.name)"])
            var r = ReplyEncoder(id: id, command: "deploy", ok: true)
            r.member("state", string: "activated")
            r.member("version", string: String(m.version))
            r.member("slot", string: slot)
            r.member("board_slot", string: String(target))
            deployReply(id, r.finish())
        } catch {
            refuseDeploy(d, id: id, error, now: now)
        }
    }
}
