import FTDI
import XCTest
@testable import AIOTBoard
@testable import AIOTBoardSim
import AIOTDevices

final class MPSSEBuilderTests: XCTestCase {
    func testOpcodesAreByteExact() {
        var b = MPSSEBuffer()
        b.setLow(value: 0x18, direction: 0x1B)
        b.setHigh(value: 0x01, direction: 0x01)
        b.readLow()
        b.readHigh()
        b.clock(divisor: 0)
        b.write([0x9F])
        b.read(count: 3)
        b.writeBits(0xA5, bits: 8)
        b.readBits(1)
        b.idle(bits: 8 * 3 + 5)
        b.waitGPIOL1Low()
        b.waitGPIOL1High()
        b.sendImmediate()
        XCTAssertEqual(b.bytes, [
            0x80, 0x18, 0x1B,           // set ADBUS value, direction
            0x82, 0x01, 0x01,           // set ACBUS
            0x81, 0x83,                 // read ADBUS, ACBUS
            0x8A, 0x86, 0x00, 0x00,     // 60 MHz base, divisor 0 -> 30 MHz
            0x11, 0x00, 0x00, 0x9F,     // 1 byte out, -ve edge, MSB first
            0x20, 0x02, 0x00,           // 3 bytes in, +ve edge
            0x13, 0x07, 0xA5,           // 8 bits out
            0x22, 0x00,                 // 1 bit in
            0x8F, 0x02, 0x00,           // 3 x 8 idle clocks
            0x8E, 0x04,                 // 5 idle clocks
            0x89, 0x88, 0x87,
        ])
        XCTAssertEqual(b.readCount, 1 + 1 + 3 + 1)
    }

    func testLongTransfersEncodeLengthMinusOneLittleEndian() {
        var b = MPSSEBuffer()
        b.read(count: 65536)
        b.writeHeader(count: 0x1234)
        XCTAssertEqual(b.bytes, [0x20, 0xFF, 0xFF, 0x11, 0x33, 0x12])
    }

    func testOneBufferInferenceMatchesTheRegisterMap() {
        var f = InferenceFrame(inputCount: 2, outputCount: 1)
        let crc = [Int32(1), -2].withUnsafeBufferPointer { f.setInput($0) }
        XCTAssertEqual(f.buffer.bytes, [
            0x80, 0x10, 0x1B, 0x11, 0x07, 0x00, 0x02, 0x00, 0x10, 0x00, 0x01, 0x00, 0xFE, 0xFF, 0x80, 0x18, 0x1B,
            0x80, 0x10, 0x1B, 0x11, 0x07, 0x00, 0x02, 0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x80, 0x18, 0x1B,
            0x8E, 0x07,
            0x89,
            0x80, 0x10, 0x1B, 0x11, 0x04, 0x00, 0x0B, 0x00, 0x30, 0x00, 0x00, 0x20, 0x15, 0x00, 0x80, 0x18, 0x1B,
            // MODEL_ID read back in the same buffer: whose weights computed the result.
            0x80, 0x10, 0x1B, 0x11, 0x04, 0x00, 0x0B, 0x00, 0x00, 0x40, 0x00, 0x20, 0x1F, 0x00, 0x80, 0x18, 0x1B,
            0x87,
        ])
        XCTAssertEqual(crc, CRC32.checksum([0x01, 0x00, 0xFE, 0xFF]))
        XCTAssertEqual(f.buffer.readCount, 22 + 32)
        // The default shape: 24 inputs, 1 output.
        let d = InferenceFrame(inputCount: 24, outputCount: 1)
        XCTAssertEqual(d.buffer.bytes.count, 116)
        XCTAssertEqual(d.buffer.readCount, 54)
    }
}

final class CRCTests: XCTestCase {
    func testCRC32CheckValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([]), 0)
    }

    func testConfigCRCTableMatchesBitSerialDefinition() {
        var g = SplitMix(state: 3)
        var c = ConfigCRC()
        var ref: UInt32 = 0
        for _ in 0..<2000 {
            let reg = UInt32(g.int(0...31)), w = UInt32(truncatingIfNeeded: g.next())
            c.update(register: reg, word: w)
            ref = ConfigCRC.bitSerial(ref, register: reg, word: w)
            XCTAssertEqual(c.value, ref)
        }
    }
}

final class FTDITests: XCTestCase {
    /// No FT2232H is attached here: the real libftdi open path runs and ends in the clear message.
    func testOpenWithoutHardwareFailsWithAClearMessage() {
        do {
            _ = try FTDITransport()
            XCTFail("an FT2232H was found; this test expects none")
        } catch {
            XCTAssertEqual(error.kind, .notFound, "\(error)")
            XCTAssertTrue(error.message.hasPrefix("no FTDI device (0403:6010) found; check the cable and the udev rule"), error.message)
            XCTAssertTrue(error.message.contains("ftdi_usb_open_desc_index"), error.message)
        }
    }

    func testListingFindsNoDeviceWithoutHardware() throws {
        do {
            let devices = try FTDIDevice.list()
            XCTAssertEqual(devices, [])
        } catch {
            // A host without USB at all reports it through the same typed error.
            XCTAssertEqual(error.function, "ftdi_usb_find_all", "\(error)")
        }
    }

    func testDeviceAddressParsing() throws {
        XCTAssertEqual(try DeviceAddress(parsing: "ftdi://0403:6010"), .ftdi(vendor: 0x0403, product: 0x6010, serial: nil, board: nil))
        XCTAssertEqual(try DeviceAddress(parsing: "ftdi://0403:6010/FT12345"), .ftdi(vendor: 0x0403, product: 0x6010, serial: "FT12345", board: nil))
        XCTAssertEqual(try DeviceAddress(parsing: "ftdi://0403:6010/FT1?board=icebreaker"),
                       .ftdi(vendor: 0x0403, product: 0x6010, serial: "FT1", board: "icebreaker"))
        XCTAssertEqual(try DeviceAddress(parsing: "ftdi://0403:6010?board=icebreaker").description, "ftdi://0403:6010?board=icebreaker")
        XCTAssertThrowsError(try DeviceAddress(parsing: "ftdi://0403:6010?board=nope")) { e in
            XCTAssertTrue("\(e)".contains("icebreaker"), "\(e)")
        }
        XCTAssertEqual(try DeviceAddress(parsing: "sim:/tmp/x"), .sim(path: "/tmp/x"))
        XCTAssertThrowsError(try DeviceAddress(parsing: "usb:1"))
        XCTAssertEqual(try DeviceAddress(parsing: "sim-rtl:/x/aiot-rtl-sim"), .simRTL(executable: "/x/aiot-rtl-sim"))
        XCTAssertEqual(DeviceAddress.simRTL(executable: "/x/s").description, "sim-rtl:/x/s")
        XCTAssertThrowsError(try DeviceAddress(parsing: "sim-rtl:"))
        XCTAssertThrowsError(try RTLSimTransport(executable: "/nonexistent/aiot-rtl-sim")) { e in
            XCTAssertTrue("\(e)".contains("firmware/cosim/build.sh"), "\(e)")
        }
        XCTAssertThrowsError(try DeviceAddress(parsing: "ftdi://zz:6010"))
    }
}
