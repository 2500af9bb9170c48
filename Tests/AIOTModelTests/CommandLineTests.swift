import Foundation
import XCTest
@testable import AIOTModel

/// `aiotctl infer` and `aiotctl check-vectors` run as a user runs them: the built binary, its exit
/// status and its output. (`swift build --build-tests` builds aiotctl beside the test bundle.)
final class CommandLineTests: XCTestCase {
    private func aiotctl() throws -> URL {
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent("aiotctl"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("aiotctl"),
            repoRoot.appendingPathComponent(".build/debug/aiotctl"),
        ]
        guard let url = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            // Fail, not skip: a test that silently does not run proves nothing.
            XCTFail("aiotctl is not built; run `swift build --build-tests` first")
            throw CocoaError(.fileNoSuchFile)
        }
        return url
    }

    private func run(_ arguments: [String], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = try aiotctl()
        p.arguments = arguments
        p.currentDirectoryURL = repoRoot
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    private let model = "models/random/w24f1d16h1n1p1-w8a8.safetensors"
    private let vectors = "models/random/w24f1d16h1n1p1-w8a8.vectors.txt"

    func testCheckVectorsPasses() throws {
        let r = try run(["check-vectors", "--model", model, "--vectors", vectors])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("64 of 64 vectors bit-identical"), r.out)
    }

    func testCheckVectorsFailsOnAnAlteredVector() throws {
        var text = try String(contentsOf: repoRoot.appendingPathComponent(vectors), encoding: .utf8)
        var lines = text.split(separator: "\n").map(String.init)
        var tokens = lines[3].split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        tokens[tokens.count - 1] = String(Int(tokens[tokens.count - 1])! + 1)
        lines[3] = tokens.joined(separator: " ")
        text = lines.joined(separator: "\n") + "\n"
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString).vectors.txt")
        try text.write(to: temp, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: temp) }
        let r = try run(["check-vectors", "--model", model, "--vectors", temp.path, "--json"])
        XCTAssertEqual(r.status, 1)
        let doc = try JSONValue.parse(r.out)
        XCTAssertEqual(doc["identical"], .int(63))
        XCTAssertEqual(doc["passed"], .bool(false))
        guard case let .array(mismatches)? = doc["mismatches"] else { return XCTFail(r.out) }
        XCTAssertEqual(mismatches.first?["index"], .int(2))
    }

    func testCorruptModelExitsWithTheLoaderMessage() throws {
        let bytes = try Data(contentsOf: repoRoot.appendingPathComponent(model))
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString).safetensors")
        try bytes.prefix(bytes.count - 10).write(to: temp)
        defer { try? FileManager.default.removeItem(at: temp) }
        let r = try run(["check-vectors", "--model", temp.path, "--vectors", vectors])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.err.contains("truncated"), r.err)
    }

    func testInferPrintsForecastsAndReportsBadLines() throws {
        let m = try QuantizedModel(contentsOf: repoRoot.appendingPathComponent(model).path)
        let window = (0..<24).map { 0.5 * sin(Double($0) / 3) }
        let expected = try m.dequantizeOutput(SoftwareEngine(model: m).infer(m.quantizeInput(window)))
        let good = window.map { "\($0)" }.joined(separator: ",")
        let csv = "# a comment\n\(good)\n" + Array(repeating: "1", count: 23).joined(separator: ",") + ",nan\n\(good)\n"
        let r = try run(["infer", "--model", model, "--input", "-", "--json"], stdin: csv)
        XCTAssertEqual(r.status, 1, "a bad line makes the exit status 1")
        let doc = try JSONValue.parse(r.out)
        guard case let .array(forecasts)? = doc["forecasts"], case let .array(errors)? = doc["errors"] else { return XCTFail(r.out) }
        XCTAssertEqual(forecasts.count, 2, "the good lines still run")
        XCTAssertEqual(forecasts.first?["line"], .int(2))
        XCTAssertEqual(forecasts.first?["forecast"], .array(expected.map { .double($0) }))
        XCTAssertEqual(errors.first?["line"], .int(3))
        let text = try run(["infer", "--model", model, "--input", "-"], stdin: good + "\n")
        XCTAssertEqual(text.status, 0, text.err)
        XCTAssertTrue(text.out.contains("line 1: t+1 "), text.out)
        XCTAssertTrue(text.out.contains(" \(m.target.unit)"), text.out)
    }

    func testEveryOptionHasHelp() throws {
        for command in ["infer", "check-vectors"] {
            let r = try run([command, "--help"])
            XCTAssertEqual(r.status, 0)
            for line in r.out.split(separator: "\n") where line.hasPrefix("  --") && !line.hasPrefix("  --help") {
                // An option without help is printed alone on its line.
                XCTAssertTrue(line.split(separator: " ", omittingEmptySubsequences: true).count > 2, "\(command): \(line)")
            }
        }
    }
}
