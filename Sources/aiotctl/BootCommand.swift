import AIOTBoard
import ArgumentParser

struct BootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Configure the FPGA from a flash slot and report DONE / INIT_B (CDONE); a failed slot falls back to golden.")

    @Option(help: "Flash slot, checked against the board's flash; 0 (golden) pulses PROGRAM_B / CRESET_B, others use multiboot (7-series: WBSTAR + IPROG) or warm boot (iCE40).")
    var slot: Int = 0
    @OptionGroup var board: BoardOptions

    func run() throws {
        try withBoard(board, { b in try b.link.boot(slot: slot) }, text: { r in
            var s = "slot \(r.requestedSlot) (\(hexAddress(r.requestedAddress))): DONE \(r.done ? "high" : "low"), INIT_B \(r.initB ? "high" : "low (configuration error)")"
            if let a = r.loadedAddress { s += "\nrunning image loaded from \(hexAddress(a))" }
            if r.fallback { s += "\nthe requested slot failed; the FPGA fell back to the golden image" }
            if let t = r.seconds { s += String(format: "\nmodelled time %.3f s", t) }
            return s
        })
    }
}
