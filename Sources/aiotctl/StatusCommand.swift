import AIOTBoard
import ArgumentParser

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Configuration pins and the accelerator's registers.")

    @OptionGroup var board: BoardOptions

    struct Report: Encodable {
        var device: String
        var board: String
        var pins: ConfigPins
        var accelerator: AcceleratorInfo?
        var link: LinkCounters
        var modelledSeconds: Double?
    }

    func run() throws {
        try withBoard(board, { b in
            let link = b.link
            let pins = try link.pins()
            let info = pins.done ? try link.info() : nil
            return Report(device: b.transport.name, board: b.session.profile.name, pins: pins, accelerator: info?.present == true ? info : nil,
                          link: b.transport.counters(.a), modelledSeconds: b.transport.modelledSeconds)
        }, text: { r in
            var s = r.board == BoardProfile.icebreaker.name
                ? "\(r.device) (\(r.board)): CRESET_B \(r.pins.programB ? "released" : "held low"), CDONE \(r.pins.done ? "high" : "low")"
                : "\(r.device) (\(r.board)): PROGRAM_B \(r.pins.programB ? "released" : "held low"), INIT_B \(r.pins.initB ? "high" : "low"), DONE \(r.pins.done ? "high" : "low")"
            guard let a = r.accelerator else { return s + "\naccelerator: not answering (FPGA not configured?)" }
            s += "\naccelerator \(a.version ?? "?"): \(a.busy ? "busy" : "idle"), sequence \(a.sequence), image from \(hexAddress(a.bootAddress))\(a.fallback ? " (FALLBACK to golden)" : "")"
            s += "\nshape: " + ["window", "features", "d_model", "heads", "layers", "horizon"].map { "\($0)=\(a.shape[$0] ?? 0)" }.joined(separator: " ")
            s += "\nweights: \(a.paramsValid ? "valid" : "NOT valid"), \(a.paramLength) of \(a.paramCapacity) bytes, CRC-32 0x\(String(a.paramCRC, radix: 16))"
            s += "\nmodel identity: \(a.paramsValid ? a.modelID : "none")"
            if a.error { s += "\nerror code \(a.errorCode)" }
            return s
        })
    }
}
