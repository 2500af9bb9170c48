// Bitstream deployment with a way back, on the board model: a good image runs from the new slot;
// one whose configuration fails (wrong CRC) leaves the previous slot running; slot 0 is never written.
import XCTest
@testable import AIOTBoard
import AIOTBoardSim

final class SlotDeployTests: XCTestCase {
    func image(seed: UInt64, corrupt: Bool = false) -> [UInt8] {
        var g = BitstreamGenerator()
        g.seed = seed
        g.corruptCRC = corrupt
        return g.bitFile()
    }

    func testGoodImageRunsFromTheOtherSlotAndABadOneGoesBack() throws {
        let (board, link, golden) = try bootedBoard(seed: 1)
        let f = Flasher(link: link)
        let first = try f.deploy(image(seed: 2), running: nil)
        XCTAssertTrue(first.ok, first.reason ?? "")
        XCTAssertEqual(first.slot, 1)
        XCTAssertEqual(try link.info().bootAddress, first.flash.address)
        // The next image goes to slot 2 while slot 1 runs; it fails its CRC at configuration.
        let second = try f.deploy(image(seed: 3, corrupt: true), running: 1)
        XCTAssertEqual(second.slot, 2)
        XCTAssertEqual(second.rolledBackTo, 1, "seed 3: \(second)")
        XCTAssertTrue(second.reason?.contains("did not configure") == true, second.reason ?? "")
        XCTAssertEqual(try link.info().bootAddress, first.flash.address, "slot 1 runs again")
        // The golden image is untouched.
        XCTAssertEqual(Array(board.flash[0..<golden.count]), golden)
    }

    func testExpectedModelIdentityMustComeUp() throws {
        let (_, link, _) = try bootedBoard(seed: 1)
        let r = try Flasher(link: link).deploy(image(seed: 4), running: nil, expectedModel: String(repeating: "ab", count: 32))
        XCTAssertEqual(r.rolledBackTo, 0)
        XCTAssertTrue(r.reason?.contains("expected") == true, r.reason ?? "")
    }

    func testGoldenSlotAndNonBitstreamsAreRefused() throws {
        let (_, link, _) = try bootedBoard(seed: 1)
        let f = Flasher(link: link)
        XCTAssertThrowsError(try f.deploy(image(seed: 5), slots: [0, 1], running: nil)) { e in
            XCTAssertEqual((e as? BoardError)?.kind, .refused)
        }
        XCTAssertThrowsError(try f.deploy([UInt8](repeating: 0x42, count: 4096), running: nil)) { e in
            XCTAssertEqual((e as? BoardError)?.kind, .image)
        }
    }
}
