import AIOTBoard
import AIOTDevices
import AIOTModel
import ArgumentParser
import Foundation

extension AIOTCtl {
    /// Runs the software engine on windows of raw readings and prints forecasts in engineering units.
    struct Infer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forecast from windows of raw readings with the software engine.",
            discussion: """
                Each non-empty line of the CSV is one window: W x F readings in engineering units, \
                time-major with the features interleaved per step (t0f0, t0f1, ..., t1f0, ...). \
                Lines starting with '#' and a first line that is not numeric (a header) are skipped. \
                A line that cannot be used is reported and the others still run; the exit status is \
                1 if any line failed.
                """
        )

        @Option(help: "Model file (.safetensors) exported by the aiot exporter.")
        var model: String

        @Option(help: "CSV file with one window of raw readings per line ('-' reads standard input).")
        var input: String

        @Flag(help: "Print one JSON document instead of text.")
        var json = false

        @Option(help: "Run on the board's accelerator (ftdi://0403:6010[/serial][?board=...] or sim:PATH) instead of the software engine; it must hold this model (aiotctl upload-weights). sim-rtl:EXECUTABLE runs the accelerator RTL (firmware/cosim), which starts empty, so the model's weights are uploaded first. Falls back to the software engine if the board fails.")
        var device: String?

        @Option(help: "Software engine kernel variant (auto, portable, avx2, avx512, neon); default AIOT_KERNEL, else the fastest this CPU supports. `aiotctl kernels` lists them.")
        var kernel: String?

        func run() throws {
            let variant = try chooseKernel(kernel)
            let m = try loadModel(model)
            let board = try device.map { d in
                do { return try OpenBoard(d) } catch { printError("\(error)"); throw ExitCode(2) }
            }
            defer { try? board?.close() }
            let engine: InferenceEngine
            if let board {
                do {
                    engine = try makeEngine(.fpga, model: m, board: board.session, upload: false)
                    if let f = engine as? FPGAEngine, f.health == .fallenBack, !json {
                        printError("board not reachable (\(f.stats.lastError ?? "?")); using the software engine")
                    }
                } catch {
                    printError("\(error)")
                    throw ExitCode(2)
                }
            } else {
                engine = SoftwareEngine(model: m, kernel: variant)
            }
            let text = try readText(input)
            let n = m.shape.window * m.shape.features
            var forecasts: [JSONValue] = []
            var failures: [JSONValue] = []
            var window = [Double](repeating: 0, count: n)
            var q = [Int32](repeating: 0, count: n)
            var out = [Int32](repeating: 0, count: m.shape.horizon)
            var y = [Double](repeating: 0, count: m.shape.horizon)
            if !json {
                let t = m.target
                print("model \(model) (sha256 \(m.identity.prefix(12))): \(t.name) [\(t.unit)], \(m.shape.horizon) step(s) of \(m.samplingPeriodSeconds) s ahead; \(engineLabel(engine))")
            }
            for (lineNumber, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map({ ($0 + 1, $1) }) {
                let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                let fields = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                if forecasts.isEmpty, failures.isEmpty, fields.allSatisfy({ Double($0) == nil }) { continue }  // header
                do {
                    guard fields.count == n else {
                        throw LineError("has \(fields.count) readings but a window of \(m.shape.window) steps x \(m.shape.features) features needs \(n)")
                    }
                    for (i, f) in fields.enumerated() {
                        guard let v = Double(f) else { throw LineError("reading \(i + 1) ('\(f)') is not a number") }
                        window[i] = v
                    }
                    try window.withUnsafeBufferPointer { w in try q.withUnsafeMutableBufferPointer { try m.quantizeInput(window: w, into: $0) } }
                    try q.withUnsafeBufferPointer { qi in try out.withUnsafeMutableBufferPointer { try engine.infer(qi, into: $0) } }
                    try out.withUnsafeBufferPointer { o in try y.withUnsafeMutableBufferPointer { try m.dequantizeOutput(o, into: $0) } }
                } catch {
                    let message = "line \(lineNumber): \(error)"
                    failures.append(.object([("line", .int(Int64(lineNumber))), ("error", .string("\(error)"))]))
                    if !json { printError(message) }
                    continue
                }
                if json {
                    forecasts.append(.object([
                        ("line", .int(Int64(lineNumber))),
                        ("forecast", .array(y.map { .double($0) })),
                        ("quantized", .array(out.map { .int(Int64($0)) })),
                    ]))
                } else {
                    forecasts.append(.null)
                    let steps = y.enumerated().map { "t+\($0 + 1) \(format($1)) \(m.target.unit)" }.joined(separator: ", ")
                    print("line \(lineNumber): \(steps)")
                }
            }
            if json {
                let doc = JSONValue.object([
                    ("model", .string(model)), ("identity", .string(m.identity)),
                    ("target", .object([("name", .string(m.target.name)), ("unit", .string(m.target.unit))])),
                    ("sampling_period_s", .double(m.samplingPeriodSeconds)),
                    ("forecasts", .array(forecasts)), ("errors", .array(failures)),
                ] + boardFields(engine, board) + kernelFields(engine))
                print(doc.serialized)
            }
            if !failures.isEmpty { throw ExitCode(1) }
        }

        /// Which engine answered and what crossed the link, when `--device` is given.
        private func boardFields(_ engine: InferenceEngine, _ board: OpenBoard?) -> [(String, JSONValue)] {
            guard let board, let f = engine as? FPGAEngine else { return [] }
            let c = board.counters
            return [("engine", .string(f.lastEngine.rawValue)), ("health", .string(f.health.description)),
                    ("fpga_inferences", .int(Int64(f.stats.fpgaInferences))),
                    ("fallback_inferences", .int(Int64(f.stats.fallbackInferences))),
                    ("usb_round_trips", .int(Int64(c.roundTrips))), ("usb_bytes_out", .int(Int64(c.bytesOut))),
                    ("usb_bytes_in", .int(Int64(c.bytesIn)))]
        }

        /// The software engine's kernel variant (`aiotctl kernels`).
        private func kernelFields(_ engine: InferenceEngine) -> [(String, JSONValue)] {
            guard let s = engine as? SoftwareEngine else { return [] }
            return [("kernel", .string(s.kernel.rawValue))]
        }

        private func engineLabel(_ engine: InferenceEngine) -> String {
            if let s = engine as? SoftwareEngine { return "software engine, kernel \(s.kernel.rawValue)" }
            return "\(engine.kind.rawValue) engine"
        }

        private func format(_ v: Double) -> String {
            String(format: "%.6g", v)
        }
    }
}

/// Why one input line could not be used.
struct LineError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Loads a model, or prints the loader's message and exits with status 2.
func loadModel(_ path: String) throws -> QuantizedModel {
    do {
        return try QuantizedModel(contentsOf: path)
    } catch {
        printError(error.message)
        throw ExitCode(2)
    }
}

/// A whole text file, or standard input for "-".
func readText(_ path: String) throws -> String {
    if path == "-" {
        return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        printError("cannot read \(path): \(error.localizedDescription); check the path")
        throw ExitCode(2)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("aiotctl: " + message + "\n").utf8))
}
