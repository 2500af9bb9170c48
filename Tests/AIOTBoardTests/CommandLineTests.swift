import Foundation
import XCTest

/// The board commands of `aiotctl` as a user runs them, as one session on one simulated board
/// (`--device sim:PATH`): every command is a separate process acting on the state file.
final class BoardCommandLineTests: XCTestCase {
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

    @discardableResult
    private func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = try aiotctl()
        p.arguments = arguments
        p.currentDirectoryURL = repoRoot
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    func testASessionOnOneSimulatedBoard() throws {
        let dir = NSTemporaryDirectory() + "aiot-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dev = "sim:\(dir)/board.sim"
        let model = "models/random/w24f1d16h1n1p1-w8a8.safetensors"

        var r = try run(["sim", "make-bitstream", "\(dir)/golden.bit"])
        XCTAssertEqual(r.status, 0, r.err)
        r = try run(["bitstream-info", "\(dir)/golden.bit", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try json(r.out)["idcode"] as? Int, 0x0362_0093)
        XCTAssertEqual(try json(r.out)["part"] as? String, "7s15ftgb196")

        r = try run(["flash", "\(dir)/golden.bit", "--device", dev])   // slot 1 on a blank board: fine
        XCTAssertEqual(r.status, 0, r.err)
        r = try run(["flash", "\(dir)/golden.bit", "--slot", "0", "--device", dev, "--json"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue((try json(r.out)["error"] as? String)?.contains("--golden") == true, r.out)
        r = try run(["flash", "\(dir)/golden.bit", "--golden", "--device", dev, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try json(r.out)["verified"] as? Bool, true)
        XCTAssertFalse(r.err.contains("["), "no progress bar when stderr is not a terminal")

        r = try run(["sim", "make-bitstream", "\(dir)/s25.bit", "--part", "xc7s25"])
        r = try run(["flash", "\(dir)/s25.bit", "--slot", "2", "--device", dev])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("xc7s25"), r.err)

        r = try run(["boot", "--slot", "1", "--device", dev, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try json(r.out)["loadedAddress"] as? Int, 0x100000)
        r = try run(["boot", "--slot", "3", "--device", dev, "--json"])
        XCTAssertEqual(try json(r.out)["fallback"] as? Bool, true, "an empty slot falls back to golden")

        r = try run(["infer", "--model", model, "--input", "-", "--device", dev])
        XCTAssertNotEqual(r.status, 0, "refused: the board does not hold the model")
        XCTAssertTrue(r.err.contains("upload-weights"), r.err)
        r = try run(["upload-weights", model, "--device", dev, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        let up = try json(r.out)
        XCTAssertEqual(up["crc"] as? Int, up["deviceCRC"] as? Int)

        let csv = "\(dir)/w.csv"
        try (0..<3).map { k in (0..<24).map { String(Double($0 + k) * 0.1 - 1) }.joined(separator: ",") }
            .joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        let sw = try run(["infer", "--model", model, "--input", csv, "--json"])
        let hw = try run(["infer", "--model", model, "--input", csv, "--device", dev, "--json"])
        XCTAssertEqual(hw.status, 0, hw.err)
        let swDoc = try json(sw.out), hwDoc = try json(hw.out)
        XCTAssertEqual((swDoc["forecasts"] as? [[String: Any]])?.map { $0["quantized"] as! [Int] },
                       (hwDoc["forecasts"] as? [[String: Any]])?.map { $0["quantized"] as! [Int] })
        XCTAssertEqual(hwDoc["engine"] as? String, "fpga")
        XCTAssertEqual(hwDoc["fpga_inferences"] as? Int, 3)

        r = try run(["status", "--device", dev, "--json"])
        let acc = try XCTUnwrap(try json(r.out)["accelerator"] as? [String: Any], r.out)
        XCTAssertEqual(acc["paramsValid"] as? Bool, true)
        XCTAssertEqual(acc["sequence"] as? Int, 3)
        r = try run(["power", "--device", dev, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [Any])?.count, 8)

        // The board vanishes: infer still answers, from the software engine, with the same forecasts.
        r = try run(["sim", "fault", "--device", dev, "--disappear-after", "30"])
        XCTAssertEqual(r.status, 0, r.err)
        let gone = try run(["infer", "--model", model, "--input", csv, "--device", dev, "--json"])
        XCTAssertEqual(gone.status, 0, gone.err)
        let goneDoc = try json(gone.out)
        XCTAssertEqual(goneDoc["engine"] as? String, "software")
        XCTAssertEqual((goneDoc["forecasts"] as? [[String: Any]])?.map { $0["quantized"] as! [Int] },
                       (swDoc["forecasts"] as? [[String: Any]])?.map { $0["quantized"] as! [Int] })
    }

    /// The same session on a simulated iCEBreaker-class board, and the flash-slot checks on a
    /// 32 MiB gateway board, as a user types them.
    func testASessionOnASimulatedICE40Board() throws {
        let dir = NSTemporaryDirectory() + "aiot-cli-ice-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dev = "sim:\(dir)/ice.sim"
        let model = "models/random/w24f1d16h1n1p1-w8a8.safetensors"
        var r = try run(["sim", "new", "--board", "icebreaker", "--device", dev])
        XCTAssertEqual(r.status, 0, r.err)
        r = try run(["sim", "make-bitstream", "\(dir)/golden.bin", "--part", "ice40up5k"])
        XCTAssertEqual(r.status, 0, r.err)
        r = try run(["bitstream-info", "\(dir)/golden.bin", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try json(r.out)["format"] as? String, "ice40-bin")
        XCTAssertEqual((try json(r.out)["ice40"] as? [String: Any])?["device"] as? String, "ice40up5k")
        r = try run(["bitstream-info", "\(dir)/golden.bin"])
        XCTAssertTrue(r.out.contains("7EAA997E"), r.out)
        r = try run(["flash", "\(dir)/golden.bin", "--slot", "0", "--device", dev])
        XCTAssertEqual(r.status, 1, "golden needs --golden")
        r = try run(["flash", "\(dir)/golden.bin", "--golden", "--device", dev, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try json(r.out)["verified"] as? Bool, true)
        XCTAssertEqual(try json(r.out)["done"] as? Bool, true)
        r = try run(["boot", "--slot", "0", "--device", dev, "--json"])
        XCTAssertEqual(try json(r.out)["done"] as? Bool, true, r.out + r.err)
        r = try run(["boot", "--slot=-1", "--device", dev, "--json"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue((try json(r.out)["error"] as? String)?.contains("slot -1") == true, r.out)
        r = try run(["upload-weights", model, "--device", dev, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        let csv = "\(dir)/w.csv"
        try (0..<3).map { k in (0..<24).map { String(Double($0 + k) * 0.1 - 1) }.joined(separator: ",") }
            .joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)
        let sw = try run(["infer", "--model", model, "--input", csv, "--json"])
        let hw = try run(["infer", "--model", model, "--input", csv, "--device", dev, "--json"])
        XCTAssertEqual(hw.status, 0, hw.err)
        XCTAssertEqual(try json(hw.out)["engine"] as? String, "fpga")
        XCTAssertEqual((try json(sw.out)["forecasts"] as? [[String: Any]])?.map { $0["quantized"] as! [Int] },
                       (try json(hw.out)["forecasts"] as? [[String: Any]])?.map { $0["quantized"] as! [Int] })

        // A 32 MiB gateway board: slot 20 is written at 20 MiB; slot -16 is refused.
        let big = "sim:\(dir)/big.sim"
        r = try run(["sim", "new", "--board", "xc7s15", "--flash", "s25fl256s", "--device", big])
        XCTAssertEqual(r.status, 0, r.err)
        r = try run(["sim", "make-bitstream", "\(dir)/a.bit"])
        r = try run(["flash", "\(dir)/a.bit", "--slot=-16", "--device", big, "--json"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue((try json(r.out)["error"] as? String)?.contains("slot -16") == true, r.out)
        r = try run(["flash", "\(dir)/a.bit", "--slot", "20", "--device", big, "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try json(r.out)["address"] as? Int, 20 << 20)
        XCTAssertEqual(try json(r.out)["flashPart"] as? String, "S25FL256S (256 KiB sectors)")
    }

    func testDevicesWithoutHardware() throws {
        let r = try run(["devices"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "no FTDI device (0403:6010) found; check the cable and the udev rule\n")
        let s = try run(["status", "--json"])
        XCTAssertEqual(s.status, 1)
        XCTAssertTrue((try json(s.out)["error"] as? String)?.hasPrefix("no FTDI device (0403:6010) found") == true, s.out)
    }
}
