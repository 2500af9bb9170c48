import Foundation
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

final class PersistenceTests: XCTestCase {
    func testASimulatedBoardKeepsItsStateAcrossOpens() throws {
        let path = NSTemporaryDirectory() + "aiot-board-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sim"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bit = try Bitstream(bytes: BitstreamGenerator().bitFile())
        do {
            let b = try BoardModel(path: path)
            var o = FlashOptions()
            o.slot = 0
            o.golden = true
            let r = try Flasher(link: BoardLink(transport: b)).flash(bit, options: o)
            XCTAssertEqual(r.done, true)
            _ = try BoardLink(transport: b).upload(image: try ParameterImage.serialize(randomParameters(defaultShape)),
                                                   identity: [UInt8](repeating: 0xAB, count: 32))
            try b.save()
        }
        let again = try BoardModel(path: path)
        XCTAssertEqual(Array(again.flash[0..<bit.payload.count]), bit.payload)
        XCTAssertTrue(again.configured)
        let info = try BoardLink(transport: again).info()
        XCTAssertTrue(info.paramsValid)
        XCTAssertEqual(info.modelID, String(repeating: "ab", count: 32))
        XCTAssertGreaterThan(again.counters(.a).roundTrips, 100)
        // A file that is not a board state is refused with a clear message, not overwritten.
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try BoardModel(path: path)) { e in
            XCTAssertTrue("\(e)".contains("not a simulated board state"), "\(e)")
        }
    }
}
