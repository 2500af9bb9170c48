import AIOTBoard
import AIOTBoardSim
import AIOTDevices
import ArgumentParser
import Foundation

/// Helpers for the simulated board: test bitstreams and fault injection.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim", abstract: "Simulated board helpers: make a test bitstream, inject faults.",
        subcommands: [New.self, MakeBitstream.self, Fault.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a blank simulated board (unconfigured FPGA, erased flash) of a given kind.")
        @Option(help: "sim:PATH (must not exist yet)") var device: String
        @Option(help: "Board: xc7s15 (the gateway) or icebreaker (iCE40UP5K).") var board = "xc7s15"
        @Option(help: "Flash part for the xc7s15 board: s25fl128s (16 MiB) or s25fl256s (32 MiB).") var flash: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard case let .sim(path)? = try? DeviceAddress(parsing: device) else { throw CLIError("--device must be sim:PATH") }
            guard let profile = BoardProfile.named(board) else {
                throw CLIError("unknown board \(board); use \(BoardProfile.all.map(\.name).joined(separator: " or "))")
            }
            let parts = ["s25fl128s": FlashPart.s25fl128s, "s25fl256s": .s25fl256s, "w25q128jv": .w25q128jv]
            var part: FlashPart?
            if let flash {
                guard let p = parts[flash] else { throw CLIError("unknown flash \(flash); use \(parts.keys.sorted().joined(separator: ", "))") }
                part = p
            }
            guard !FileManager.default.fileExists(atPath: path) else {
                throw CLIError("\(path) exists; remove it first (a sim: board keeps its kind for life)")
            }
            do {
                let b = try BoardModel(path: path, profile: profile, flash: part)
                try b.save()
                if json { printJSON(["board": profile.name, "flash": b.flashPart.name, "file": path]) } else {
                    print("new \(profile.name) board with \(b.flashPart.name) in \(path)")
                }
            } catch { throw CLIError(error.message) }
        }
    }

    struct MakeBitstream: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "make-bitstream", abstract: "Write a realistic XC7S15-sized .bit (valid header, packets, CRC), or an iCE40UP5K .bin.")
        @Argument var output: String
        @Option(help: "Part: xc7s15, xc7s25, xc7s50, xc7a35t, ice40up5k.") var part = "xc7s15"
        @Option(help: "Seed of the frame data.") var seed: UInt64 = 1
        @Option(help: "Design name in the header.") var design = "aiot_accel"
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            if part == FPGAPart.ice40up5k.name {
                var g = ICE40BitstreamGenerator()
                g.seed = seed
                g.comment = [design]
                return try write(g.bitFile())
            }
            guard let p = FPGAPart.known.first(where: { $0.name == part }) else { throw CLIError("unknown part \(part)") }
            var g = BitstreamGenerator()
            g.part = p
            g.packageField = p == .xc7s15 ? "7s15ftgb196" : String(p.name.dropFirst(2)) + "csga324"
            g.payloadBytes = p == .xc7s15 ? nil : 600_000
            g.seed = seed
            g.designName = design
            try write(g.bitFile())
        }

        func write(_ bytes: [UInt8]) throws {
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
