import AIOTBoard
import ArgumentParser

struct BitstreamInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bitstream-info",
        abstract: "Show a Xilinx .bit header (design, part, date, time, length) or a raw .bin (sync word, IDCODE), or an iCE40 .bin (preamble, device, CRC).")

    @Argument(help: "A .bit or .bin file.")
    var file: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        do {
            let b = try Bitstream(bytes: try readFile(file))
            let i = b.info
            if json { printJSON(i); return }
            if let ice = i.ice40 {
                var lines = ["format:        iCE40 .bin (icepack)"]
                if !ice.comment.isEmpty { lines.append("comment:       \(ice.comment.joined(separator: " / "))") }
                lines.append("size:          \(i.payloadLength) bytes")
                lines.append("preamble:      7EAA997E at offset \(i.syncOffset ?? 0)")
                if let a = ice.bootAddress {
                    lines.append("boot header:   jumps to 0x\(String(a, radix: 16)) (a multi-image header entry, not a configuration)")
                } else {
                    lines.append("device:        \(ice.device ?? "unknown") (CRAM \(ice.cramWidth) x \(ice.cramHeight) bits per bank)")
                    lines.append("CRAM / BRAM:   \(ice.cramBytes) / \(ice.bramBytes) bytes")
                    lines.append("clock range:   \(ice.freqRange ?? "not set"); warm boot \(ice.warmbootEnabled == true ? "enabled" : "disabled")")
                    lines.append("CRC-16 checks: \(i.crcChecks) " + (i.crcOK ? "(all match)" : "(MISMATCH: the image is corrupt)"))
                }
                print(lines.joined(separator: "\n"))
                return
            }
            var lines = ["format:        \(i.format)"]
            if let v = i.designName { lines.append("design:        \(v)") }
            if let v = i.userID { lines.append("user id:       \(v)") }
            if let v = i.toolVersion { lines.append("tool version:  \(v)") }
            if let v = i.part { lines.append("part:          \(v)") }
            if let v = i.date { lines.append("date:          \(v)") }
            if let v = i.time { lines.append("time:          \(v)") }
            lines.append("payload:       \(i.payloadLength) bytes at offset \(i.payloadOffset)")
            lines.append("sync word:     " + (i.syncOffset.map { "AA995566 at payload offset \($0)" } ?? "not found"))
            lines.append("IDCODE:        " + (i.idcode.map { "0x" + String($0, radix: 16, uppercase: false).leftPad(8) + " (\(i.idcodePart ?? "unknown part"))" } ?? "not written"))
            lines.append("frame words:   \(i.frameWords)")
            lines.append("CRC checks:    \(i.crcChecks) " + (i.crcOK ? "(all match)" : "(MISMATCH: the image is corrupt)"))
            print(lines.joined(separator: "\n"))
        } catch {
            fail(error, json: json)
        }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
