// Options and helpers shared by the board subcommands.
import AIOTBoard
import AIOTBoardSim
import AIOTDevices
import ArgumentParser
import Foundation

/// `--device` and `--json`, on every board command.
struct BoardOptions: ParsableArguments {
    @Option(name: .long, help: "ftdi://0403:6010[/serial][?board=xc7s15|icebreaker], sim:PATH (a simulated board kept in PATH; `aiotctl sim new` picks its board) or sim-rtl:EXECUTABLE (the accelerator RTL, firmware/cosim).")
    var device: String = "ftdi://0403:6010"

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false
}

/// A failure with the message the user should read.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// An open board (AIOTDevices' `BoardSession`); a simulated one is saved when the command ends,
/// whatever happened.
final class OpenBoard {
    let session: BoardSession
    var transport: Transport { session.transport }
    var sim: BoardModel? { session.sim }
    /// A sim-rtl: device: a new co-simulation process per command, so an FPGA with no weights yet.
    var isFreshRTL: Bool { session.isFreshRTL }
    var link: BoardLink { session.link() }
    /// Channel A counters when the board was opened (a simulated board keeps its totals).
    private(set) var startCounters = LinkCounters()

    /// What crossed channel A during this command.
    var counters: LinkCounters {
        let c = transport.counters(.a)
        var d = LinkCounters()
        d.roundTrips = c.roundTrips - startCounters.roundTrips
        d.bytesOut = c.bytesOut - startCounters.bytesOut
        d.bytesIn = c.bytesIn - startCounters.bytesIn
        return d
    }

    init(_ device: String) throws {
        do { session = try BoardSession(parsing: device) } catch { throw CLIError(error.message) }
        startCounters = session.transport.counters(.a)
    }

    func close() throws {
        do { try session.save() } catch { throw CLIError(error.message) }
    }
}

/// Runs `body` on the board, always saving a simulated board afterwards; errors become a message
/// (or a JSON object with `error` under --json) and exit status 1.
func withBoard<T: Encodable>(_ o: BoardOptions, _ body: (OpenBoard) throws -> T, text: (T) -> String) throws {
    do {
        let board = try OpenBoard(o.device)
        let result: Result<T, Error> = Result { try body(board) }
        try board.close()
        let value = try result.get()
        if o.json { printJSON(value) } else { print(text(value)) }
    } catch {
        fail(error, json: o.json)
    }
}

func fail(_ error: Error, json: Bool) -> Never {
    let message = "\(error)"
    if json {
        printJSON(["error": message])
    } else {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }
    exit(1)
}

func printJSON<T: Encodable>(_ v: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    if let d = try? e.encode(v) { print(String(decoding: d, as: UTF8.self)) }
}

/// A progress bar on stderr, drawn only when stderr is a terminal and output is not JSON.
struct ProgressBar {
    let enabled: Bool
    init(json: Bool) { enabled = !json && isatty(STDERR_FILENO) != 0 }
    func callback() -> FlashProgress? {
        guard enabled else { return nil }
        return { phase, done, total in
            let width = 30
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let pct = total > 0 ? 100 * done / total : 100
            FileHandle.standardError.write(Data("\r\(phase.padding(toLength: 8, withPad: " ", startingAt: 0)) [\(bar)] \(pct)%".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        }
    }
}

func hexAddress(_ a: Int) -> String { "0x" + String(a, radix: 16) }

func readFile(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
    return [UInt8](d)
}
