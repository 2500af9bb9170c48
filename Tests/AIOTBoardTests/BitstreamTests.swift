import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

final class BitstreamTests: XCTestCase {
    func testGeneratedXC7S15BitParsesWithHeaderFieldsAndIDCODE() throws {
        let file = BitstreamGenerator().bitFile()
        XCTAssertGreaterThan(file.count, 538_000)
        XCTAssertLessThan(file.count, 540_000)
        let b = try Bitstream(bytes: file)
        XCTAssertEqual(b.info.format, "bit")
        XCTAssertEqual(b.info.designName, "aiot_accel")
        XCTAssertEqual(b.info.userID, "0XFFFFFFFF")
        XCTAssertEqual(b.info.toolVersion, "2025.1")
        XCTAssertEqual(b.info.part, "7s15ftgb196")
        XCTAssertEqual(b.info.date, "2026/11/26")
        XCTAssertEqual(b.info.time, "05:40:00")
        XCTAssertEqual(b.info.payloadLength, FPGAPart.xc7s15.bitstreamBytes)
        XCTAssertEqual(b.info.payloadOffset + b.info.payloadLength, file.count)
        XCTAssertEqual(b.info.syncOffset, 48)
        XCTAssertEqual(b.info.idcode, 0x0362_0093)
        XCTAssertEqual(b.info.idcodePart, "xc7s15")
        XCTAssertEqual(b.info.crcChecks, 2)
        XCTAssertTrue(b.info.crcOK)
        XCTAssertGreaterThan(b.info.frameWords, 130_000)
    }

    func testRawBinParsesToTheSamePayload() throws {
        let bit = try Bitstream(bytes: BitstreamGenerator().bitFile())
        let bin = try Bitstream(bytes: bit.payload)
        XCTAssertEqual(bin.info.format, "bin")
        XCTAssertNil(bin.info.part)
        XCTAssertEqual(bin.info.idcode, 0x0362_0093)
        XCTAssertEqual(bin.payload, bit.payload)
    }

    func testCorruptCRCIsReported() throws {
        var g = BitstreamGenerator()
        g.corruptCRC = true
        let b = try Bitstream(bytes: g.payload())
        XCTAssertFalse(b.info.crcOK)
        // And a flipped frame-data bit is caught by the same check.
        var p = BitstreamGenerator().payload()
        p[200_000] ^= 0x04
        XCTAssertFalse(try Bitstream(bytes: p).info.crcOK)
    }

    func testTruncatedAndForeignFilesAreRefused() {
        let file = BitstreamGenerator().bitFile()
        XCTAssertThrowsError(try Bitstream(bytes: Array(file[0..<100_000]))) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
        XCTAssertThrowsError(try Bitstream(bytes: Array(repeating: 0x55, count: 4096))) { e in
            XCTAssertTrue("\(e)".contains("sync word"), "\(e)")
        }
    }

    /// A real Vivado header (the enV5 bitstream quoted in the board reference): fields a-e.
    func testVivadoStyleHeader() throws {
        var file: [UInt8] = [0x00, 0x09, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x00, 0x00, 0x01]
        func field(_ t: Character, _ s: String) {
            let b = Array(s.utf8) + [0]
            file += [t.asciiValue!, UInt8(b.count >> 8), UInt8(b.count & 0xFF)] + b
        }
        field("a", "env5_top_reconfig;UserID=0XFFFFFFFF;COMPRESS=TRUE;Version=2020.1")
        field("b", "7s15ftgb196")
        field("c", "2023/05/11")
        field("d", "14:02:55")
        let payload = BitstreamGenerator().payload()
        let n = payload.count
        file += [0x65, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + payload
        let b = try Bitstream(bytes: file)
        XCTAssertEqual(b.info.designName, "env5_top_reconfig")
        XCTAssertEqual(b.info.toolVersion, "2020.1")
        XCTAssertEqual(b.info.part, "7s15ftgb196")
        XCTAssertEqual(FPGAPart.byPartField(b.info.part!), .xc7s15)
        XCTAssertEqual(FPGAPart.byPartField("7s25csga324"), .xc7s25)
    }
}
