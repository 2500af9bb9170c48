import XCTest
@testable import FTDI

/// Issue 11 point 4: the FTDI read timeout is wall-clock time, not a count of empty polls (each of
/// which already waits a USB transfer on real hardware: "1 s" was about 11 s).
final class FTDIReadTimeoutTests: XCTestCase {
    func testTimeoutIsWallClockWhenEveryPollBlocks() throws {
        var buffer = [UInt8](repeating: 0, count: 22)
        var polls = 0
        let clock = ContinuousClock()
        let start = clock.now
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { b in
            try FTDIDevice.readFully(into: b, timeout: .milliseconds(200)) { (_, _) throws(FTDIError) -> Int in
                polls += 1
                usleep(20_000)   // libusb waits a bulk transfer before reporting "no data"
                return 0
            }
        }) { e in
            let e = e as! FTDIError
            XCTAssertEqual(e.kind, .timeout)
            XCTAssertTrue(e.message.contains("0 of 22 bytes within 200 ms"), e.message)
        }
        let elapsed = clock.now - start
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(200))
        XCTAssertLessThan(elapsed, .milliseconds(600), "took \(elapsed) over \(polls) polls; the timeout must be wall-clock")
    }

    func testBytesArrivingInPiecesComplete() throws {
        var buffer = [UInt8](repeating: 0, count: 10)
        var next: UInt8 = 1
        var turn = 0
        try buffer.withUnsafeMutableBytes { b in
            try FTDIDevice.readFully(into: b, timeout: .milliseconds(500)) { (p, n) throws(FTDIError) -> Int in
                turn += 1
                guard turn % 2 == 0 else { return 0 }   // every other poll: nothing yet
                let k = min(n, 3)
                for i in 0..<k { p[i] = next; next += 1 }
                return k
            }
        }
        XCTAssertEqual(buffer, Array(1...10))
    }
}
