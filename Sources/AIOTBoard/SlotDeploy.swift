// A bitstream update with a way back: write a non-golden slot through the flasher's checks
// (part/IDCODE, erase, program, read-back verify), boot it, and boot the previous slot again when
// the new one does not come up (configuration failed and the FPGA fell back to golden, no
// accelerator answering, or not the expected model identity). docs/deploy.md, "Bitstreams".

/// What `deploy` did.
public struct SlotDeployResult: Sendable, Equatable {
    public var slot: Int
    public var flash: FlashReport
    public var boot: BootReport
    /// Set when the new slot did not come up: the slot booted again instead, and why.
    public var rolledBackTo: Int?
    public var reason: String?
    public var ok: Bool { rolledBackTo == nil }
}

extension Flasher {
    /// Writes `bytes` into whichever of `slots` is not `running` (slot 0, the golden image, is
    /// never written here), boots it, and checks it. `expectedModel`: the accelerator's model
    /// identity the new image must report (nil: any accelerator that answers).
    public func deploy(_ bytes: [UInt8], slots: [Int] = [1, 2], running: Int?, expectedModel: String? = nil) throws(BoardError) -> SlotDeployResult {
        guard !slots.contains(where: { $0 <= 0 }) else {
            throw BoardError(.refused, "bitstream deployments never write slot 0 (the golden image); use slots 1 and up")
        }
        guard let target = slots.first(where: { $0 != running }) else {
            throw BoardError(.refused, "no slot other than the running one (\(running ?? 0)) among \(slots)")
        }
        let bit: Bitstream
        do { bit = try Bitstream(bytes: bytes) } catch { throw BoardError(.image, "not a bitstream for this board: \(error.message)") }
        var o = FlashOptions()
        o.slot = target
        o.verify = true
        let report = try flash(bit, options: o)
        guard report.verified else { throw BoardError(.verify, "slot \(target) was not verified") }
        let boot = try link.boot(slot: target)
        var why: String?
        if !boot.done || boot.fallback {
            why = "slot \(target) did not configure (DONE \(boot.done ? "high" : "low")\(boot.fallback ? ", fell back to golden" : ""))"
        } else if boot.loadedAddress != report.address {
            why = "the FPGA runs the image at \(boot.loadedAddress.map { "0x" + String($0, radix: 16) } ?? "an unknown address"), not slot \(target)"
        } else {
            let info = try link.info()
            if !info.present {
                why = "slot \(target) configured but no accelerator answers"
            } else if let expectedModel, !(info.paramsValid && info.modelID == expectedModel) {
                why = "slot \(target) reports model \(info.paramsValid ? info.modelID : "none"), expected \(expectedModel)"
            }
        }
        var result = SlotDeployResult(slot: target, flash: report, boot: boot)
        if let why {
            let back = running ?? 0
            _ = try link.boot(slot: back)
            result.rolledBackTo = back
            result.reason = why
        }
        return result
    }
}
