import AIOTBoard
import ArgumentParser

struct FlashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flash",
        abstract: "Write a bitstream into a configuration-flash slot (FPGA held in PROGRAM_B meanwhile), verify it.")

    @Argument(help: "A .bit or .bin file for the board's FPGA (XC7S15, or the iCE40UP5K on an icebreaker board).")
    var file: String
    @Option(help: "Flash slot (1 MiB each on the XC7S15 board, 256 KiB on the iCE40 board, docs/board.md); slot 0 is the golden image.")
    var slot: Int = 1
    @Flag(help: "Allow writing slot 0, the golden image the board falls back to.")
    var golden = false
    @Flag(name: .customLong("no-verify"), help: "Skip the read-back verify.")
    var noVerify = false
    @Flag(help: "Write an image whose part or IDCODE does not match the board.")
    var force = false
    @Flag(name: .customLong("dry-run"), help: "Show which sectors would be erased and written; change nothing.")
    var dryRun = false
    @OptionGroup var board: BoardOptions

    func run() throws {
        let slot = golden && slot == 1 ? 0 : slot
        let progress = ProgressBar(json: board.json).callback()
        try withBoard(board, { b in
            let bit = try Bitstream(bytes: try readFile(file))
            var o = FlashOptions()
            o.slot = slot
            o.golden = golden
            o.verify = !noVerify
            o.force = force
            o.dryRun = dryRun
            return try Flasher(link: b.link).flash(bit, options: o, progress: progress)
        }, text: { r in
            var s = "\(r.dryRun ? "dry run: would write" : "wrote") \(r.imageBytes) bytes to slot \(r.slot) at \(hexAddress(r.address)) of \(r.flashPart)\n"
            s += "sectors erased: \(r.sectorsErased.map(hexAddress).joined(separator: " ").nonEmpty ?? "none"), skipped (identical): \(r.sectorsSkipped.count)\n"
            s += "pages programmed: \(r.pagesProgrammed); verify: \(r.dryRun ? "n/a" : r.verified ? "ok" : "skipped")\n"
            s += "USB: \(r.roundTrips) round trips, \(r.bytesOut) bytes out, \(r.bytesIn) in"
            if let t = r.totalSeconds { s += String(format: "; modelled time %.2f s", t) }
            if let d = r.done { s += "\nFPGA after release: DONE \(d ? "high" : "low")" }
            return s
        })
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
