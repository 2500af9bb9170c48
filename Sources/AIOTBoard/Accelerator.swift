// The host side of docs/register-map.md: register addresses, SPI frames as MPSSE commands, and
// the one-buffer inference.

/// Addresses and bits of the register map.
public enum Reg {
    public static let id = 0x00, version = 0x04, control = 0x08, status = 0x0C, sequence = 0x10
    public static let multibootAddress = 0x14, reboot = 0x18, bootStatus = 0x1C
    public static let paramLength = 0x20, paramExpectedCRC = 0x24, paramCRC = 0x28, paramCapacity = 0x2C
    public static let shape0 = 0x30, shape1 = 0x34, cycles = 0x38, clockHz = 0x3C, modelID = 0x40
    public static let input = 0x1000, result = 0x3000, params = 0x10000

    public static let idValue: UInt32 = 0x544F_4941
    /// 1.1: the RTL runs image format 2 (contract v2, the skip path); 1.0 bitstreams refuse it.
    public static let versionValue: UInt32 = 0x0001_0001
    public static let rebootKey: UInt32 = 0x4752_5049

    public static let start: UInt32 = 1, softReset: UInt32 = 2, clearError: UInt32 = 4, verifyParams: UInt32 = 8
    public static let busy: UInt32 = 1, done: UInt32 = 2, error: UInt32 = 4, paramsValid: UInt32 = 8, verifying: UInt32 = 16

    public static let write: UInt8 = 0x02, read: UInt8 = 0x0B
}

extension MPSSEBuffer {
    /// One accelerator WRITE transaction: CS low, `02 A2 A1 A0 data`, CS high.
    public mutating func accWrite(_ address: Int, _ data: some Collection<UInt8>) {
        setLow(value: PinA.flashCS, direction: PinA.busDirection)
        writeHeader(count: 4 + data.count)
        appendData(Reg.write); appendAddress(address)
        for b in data { appendData(b) }
        setLow(value: PinA.idleValue, direction: PinA.busDirection)
    }

    public mutating func accWrite32(_ address: Int, _ value: UInt32) {
        accWrite(address, le32(value))
    }

    /// One accelerator READ transaction of `count` bytes: CS low, `0B A2 A1 A0 00`, read, CS high.
    public mutating func accRead(_ address: Int, count: Int) {
        setLow(value: PinA.flashCS, direction: PinA.busDirection)
        writeHeader(count: 5)
        appendData(Reg.read); appendAddress(address); appendData(0)
        read(count: count)
        setLow(value: PinA.idleValue, direction: PinA.busDirection)
    }

    mutating func appendAddress(_ a: Int) {
        appendData(UInt8((a >> 16) & 0xFF)); appendData(UInt8((a >> 8) & 0xFF)); appendData(UInt8(a & 0xFF))
    }
}

func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
// Concrete, closure-free forms: the per-inference path must not allocate, even in debug builds.
func readLE32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
    UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
}
func readLE32(_ b: [UInt8], _ o: Int) -> UInt32 {
    UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
}

/// The identity and state of the accelerator, as `status` reports it.
public struct AcceleratorInfo: Sendable, Equatable, Codable {
    public var present: Bool
    public var version: String?
    /// The VERSION register as read (`major << 16 | minor`; 0 without an accelerator).
    public var versionWord: UInt32
    public var status: UInt32
    public var busy: Bool
    public var done: Bool
    public var error: Bool
    public var errorCode: Int
    public var paramsValid: Bool
    public var sequence: UInt32
    public var bootAddress: Int
    public var fallback: Bool
    public var paramLength: Int
    public var paramCRC: UInt32
    public var paramCapacity: Int
    public var shape: [String: Int]
    public var cycles: UInt32
    public var clockHz: UInt32
    public var modelID: String
}

/// The one-buffer inference of register-map.md §7, built once per shape and patched in place.
public struct InferenceFrame {
    public let inputCount: Int
    public let outputCount: Int
    public private(set) var buffer = MPSSEBuffer(capacity: 256)
    /// Where the input bytes sit inside `buffer.bytes`.
    let inputOffset: Int
    public var resultBytes: Int { 16 + 2 * outputCount + 4 }
    /// The reply: the RESULT block, then the 32 bytes of MODEL_ID read in the same buffer.
    public var replyBytes: Int { resultBytes + 32 }

    public init(inputCount: Int, outputCount: Int) {
        self.inputCount = inputCount
        self.outputCount = outputCount
        var b = MPSSEBuffer(capacity: 64 + 2 * inputCount)
        b.setLow(value: PinA.flashCS, direction: PinA.busDirection)
        b.writeHeader(count: 4 + 2 * inputCount)
        b.appendData(Reg.write); b.appendAddress(Reg.input)
        let at = b.bytes.count
        for _ in 0..<(2 * inputCount) { b.appendData(0) }
        b.setLow(value: PinA.idleValue, direction: PinA.busDirection)
        b.accWrite32(Reg.control, Reg.start)
        b.idle(bits: 8)          // BUSY is guaranteed high within 100 ns of CS rising
        b.waitGPIOL1Low()        // wait until BUSY falls
        b.accRead(Reg.result, count: 16 + 2 * outputCount + 4)
        b.accRead(Reg.modelID, count: 32)   // whose weights computed it (FPGAEngine checks)
        b.sendImmediate()
        buffer = b
        inputOffset = at
    }

    /// Writes the inputs into the buffer as i16 LE and returns their CRC-32 (what the accelerator
    /// will report as INPUT_CRC). No allocation.
    public mutating func setInput(_ input: UnsafeBufferPointer<Int32>) -> UInt32 {
        var crc = CRC32()
        let at = inputOffset
        buffer.patch { bytes in
            for (k, v) in input.enumerated() {
                let x = UInt16(bitPattern: Int16(truncatingIfNeeded: v))
                let lo = UInt8(x & 0xFF), hi = UInt8(x >> 8)
                bytes[at + 2 * k] = lo
                bytes[at + 2 * k + 1] = hi
                crc.update(lo); crc.update(hi)
            }
        }
        return crc.value
    }
}

extension MPSSEBuffer {
    mutating func patch(_ body: (inout [UInt8]) -> Void) { body(&bytesStorage) }
}

/// Why a result from the accelerator was refused.
public enum ResultCheck: Sendable, Equatable {
    case ok
    case notDone(status: UInt32)
    case sequence(expected: UInt32, got: UInt32)
    case inputCRC
    case resultCRC
}

/// Checks a RESULT block against what the host sent; decodes outputs into `output` on success.
public func checkResult(_ r: UnsafeRawBufferPointer, expectedSequence: UInt32, inputCRC: UInt32,
                        output: UnsafeMutableBufferPointer<Int32>) -> ResultCheck {
    let n = output.count
    var crc = CRC32()
    crc.update(UnsafeRawBufferPointer(rebasing: r[0..<(16 + 2 * n)]))
    guard crc.value == readLE32(r, 16 + 2 * n) else { return .resultCRC }
    let status = readLE32(r, 0)
    guard status & Reg.done != 0, status & Reg.error == 0 else { return .notDone(status: status) }
    let seq = readLE32(r, 4)
    guard seq == expectedSequence else { return .sequence(expected: expectedSequence, got: seq) }
    guard readLE32(r, 8) == inputCRC else { return .inputCRC }
    for k in 0..<n {
        output[k] = Int32(Int16(bitPattern: UInt16(r[16 + 2 * k]) | UInt16(r[17 + 2 * k]) << 8))
    }
    return .ok
}
