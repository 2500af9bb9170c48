import AIOTBoard
import ArgumentParser
import Foundation

/// Helpers for the simulated board: test bitstreams and fault injection.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim", abstract: "Simulated board helpers: make a test bitstream, inject faults.",
        subcommands: [MakeBitstream.self, Fault.self])

    struct MakeBitstream: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "make-bitstream", abstract: "Write a realistic XC7S15-sized .bit (valid header, packets, CRC).")
        @Argument var output: String
        @Option(help: "Part: xc7s15, xc7s25, xc7s50, xc7a35t.") var part = "xc7s15"
        @Option(help: "Seed of the frame data.") var seed: UInt64 = 1
        @Option(help: "Design name in the header.") var design = "aiot_accel"
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let p = FPGAPart.known.first(where: { $0.name == part }) else { throw CLIError("unknown part \(part)") }
            var g = BitstreamGenerator()
            g.part = p
            g.packageField = p == .xc7s15 ? "7s15ftgb196" : String(p.name.dropFirst(2)) + "csga324"
            g.payloadBytes = p == .xc7s15 ? nil : 600_000
            g.seed = seed
            g.designName = design
            let bytes = g.bitFile()
            let ok = FileManager.default.createFile(atPath: output, contents: Data(bytes))
            if !ok { throw CLIError("cannot write \(output)") }
            if json { printJSON(["file": output, "bytes": String(bytes.count)]) } else { print("wrote \(bytes.count) bytes to \(output)") }
        }
    }

    struct Fault: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Arm faults on a sim: board (kept in its state file).")
        @Option(help: "sim:PATH") var device: String
        @Option(name: .customLong("disappear-after"), help: "Vanish after N more command bytes.") var disappear: Int?
        @Option(name: .customLong("flip-mosi"), help: "Flip the N-th SPI byte sent.") var flipMOSI: Int?
        @Option(name: .customLong("flip-miso"), help: "Flip the N-th byte read back.") var flipMISO: Int?
        @Flag(name: .customLong("stall-busy"), help: "BUSY never falls.") var stall = false
        @Option(name: .customLong("power-loss-at-flash-byte"), help: "Cut power at the N-th page-program byte.") var powerLoss: Int?
        @Option(name: .customLong("corrupt-flash"), help: "Flip a bit of the flash at this address.") var corrupt: Int?
        @Flag(help: "Clear all faults; a vanished device reappears.") var clear = false
        @Flag(help: "Print JSON (the armed faults are always printed as JSON).") var json = false

        func run() throws {
            guard case let .sim(path)? = try? DeviceAddress(parsing: device) else { throw CLIError("--device must be sim:PATH") }
            let b = try BoardModel(path: path)
            var f = clear ? BoardFaults() : b.faults
            if clear { b.reappear() }
            if let v = disappear { f.disappearAfterBytes = v }
            if let v = flipMOSI { f.flipMOSIByte = v }
            if let v = flipMISO { f.flipMISOByte = v }
            if stall { f.stallBusy = true }
            if let v = powerLoss { f.powerLossAtFlashByte = v }
            b.faults = f
            if let a = corrupt { b.corruptFlash(at: a) }
            try b.save()
            printJSON(f)
        }
    }
}
