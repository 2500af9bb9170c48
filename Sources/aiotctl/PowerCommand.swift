import AIOTBoard
import ArgumentParser
import Foundation

struct PowerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "power", abstract: "PAC1934 rails: voltage, current, power, and energy since the last read.")

    @Flag(name: .customLong("keep-accumulators"), help: "Read with REFRESH_V, leaving the accumulators running.")
    var keep = false
    @OptionGroup var board: BoardOptions

    func run() throws {
        try withBoard(board, { b in try PowerMonitor(transport: b.transport, profile: b.session.profile).read(resetAccumulators: !keep) }, text: { rails in
            rails.map { r in
                String(format: "0x%02x ch%d %@ %6.3f V %8.2f mA %8.2f mW %10.4f J over %.2f s",
                       r.monitor, r.channel, r.name.padding(toLength: 14, withPad: " ", startingAt: 0) as NSString, r.volts, r.amps * 1000, r.watts * 1000, r.joules,
                       Double(r.samples) / PowerMonitor.samplesPerSecond)
            }.joined(separator: "\n")
        })
    }
}
