import Testing
import Foundation
import AIOTModel
import AIOTBoard
import AIOTBoardSim
@testable import AIOTDaemon

/// The daemon's engine factory on a simulated board: one board session shared by every stream's
/// engine (issue 11 point 4: two models on one board never run on each other's weights), on the
/// XC7S15 board and on the iCE40 board (issue 15 point 2: the daemon's fpga engine serves from it).
@Suite struct EngineProviderTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func model(_ name: String) throws -> LoadedModel {
        try LoadedModel(contentsOf: Self.root.appendingPathComponent("models/random/\(name).safetensors").path)
    }

    /// A booted simulated board of `profile` in a fresh state file.
    func board(_ profile: BoardProfile) throws -> String {
        let path = NSTemporaryDirectory() + "aiot-provider-\(profile.name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sim"
        let b = try BoardModel(path: path, profile: profile)
        let link = BoardLink(transport: b, profile: profile)
        var o = FlashOptions()
        o.slot = 0
        o.golden = true
        let image = profile.family == .ice40 ? ICE40BitstreamGenerator().bitFile() : BitstreamGenerator().bitFile()
        _ = try Flasher(link: link).flash(try Bitstream(bytes: image), options: o)
        try b.save()
        return path
    }

    @Test(arguments: [BoardProfile.xc7s15Gateway, .icebreaker])
    func twoStreamsWithTwoModelsOnOneBoard(profile: BoardProfile) throws {
        let path = try board(profile)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let provider = EngineProvider(device: "sim:" + path, upload: true)
        defer { provider.close() }
        let a = try model("w24f1d16h1n1p1-w8a8"), b = try model("w24f1d16h1n1p1-w4a8")
        let ea = try #require(try provider.factory(a, .fpga) as? FPGAEngine)
        let eb = try #require(try provider.factory(b, .fpga) as? FPGAEngine)
        #expect(ea.lease === eb.lease, "one lease per board")
        let sa = SoftwareEngine(model: a.quantized), sb = SoftwareEngine(model: b.quantized)
        let bits = min(a.quantized.inputAct.bits, b.quantized.inputAct.bits)
        let half = Int64(1) << (bits - 1)
        var g = UInt64(7)   // seeded: the same windows every run
        for k in 0..<8 {
            let x: [Int32] = (0..<24).map { _ in
                g = g &* 6364136223846793005 &+ 1442695040888963407
                return Int32(Int64(g >> 33) % (2 * half) - half)
            }
            let ya = try ea.infer(x), yb = try eb.infer(x)
            #expect(ya == (try sa.infer(x)), "A, window \(k), seed 7")
            #expect(yb == (try sb.infer(x)), "B, window \(k), seed 7")
            #expect(ea.lastEngine == .fpga && eb.lastEngine == .fpga)
        }
        #expect(ea.stats.identityMismatches + eb.stats.identityMismatches == 0)
        #expect(try provider.factory(a, .software) is SoftwareEngine)
    }
}
