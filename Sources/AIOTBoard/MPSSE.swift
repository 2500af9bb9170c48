// A pure builder of MPSSE command buffers (FTDI AN_108). It only appends bytes; nothing here talks
// to a device, so every sequence is unit-testable byte for byte.

/// MPSSE opcodes used by the board link, named after AN_108.
public enum MPSSE {
    public static let bytesOutFalling: UInt8 = 0x11      // clock bytes out MSB first, change on -ve edge
    public static let bytesOutRising: UInt8 = 0x10
    public static let bytesInRising: UInt8 = 0x20        // clock bytes in MSB first, sample on +ve edge
    public static let bytesInFalling: UInt8 = 0x24
    public static let bytesInOutMode0: UInt8 = 0x31      // out on -ve, in on +ve
    public static let bitsOutFalling: UInt8 = 0x13
    public static let bitsInRising: UInt8 = 0x22
    public static let setLow: UInt8 = 0x80
    public static let readLow: UInt8 = 0x81
    public static let setHigh: UInt8 = 0x82
    public static let readHigh: UInt8 = 0x83
    public static let loopbackOff: UInt8 = 0x85
    public static let clockDivisor: UInt8 = 0x86
    public static let sendImmediate: UInt8 = 0x87
    public static let waitGPIOL1High: UInt8 = 0x88
    public static let waitGPIOL1Low: UInt8 = 0x89
    public static let divideBy5Off: UInt8 = 0x8A
    public static let divideBy5On: UInt8 = 0x8B
    public static let threePhaseOn: UInt8 = 0x8C
    public static let threePhaseOff: UInt8 = 0x8D
    public static let clockBits: UInt8 = 0x8E            // N bits, no data (length-1 in one byte)
    public static let clockBytes: UInt8 = 0x8F           // N*8 bits, no data (length-1, two bytes LE)
    public static let adaptiveOff: UInt8 = 0x97
    /// The chip answers an unknown opcode with `0xFA` and the opcode.
    public static let badCommandEcho: UInt8 = 0xFA
    /// Longest data transfer of one byte-clocking command.
    public static let maxTransfer = 65536
}

/// An MPSSE command buffer under construction, plus how many bytes the device will send back.
/// Reusable: `removeAll()` keeps the capacity, so a steady-state caller does not allocate.
public struct MPSSEBuffer: Sendable, Equatable {
    public var bytes: [UInt8] { bytesStorage }
    var bytesStorage: [UInt8] = []
    /// Bytes the device returns when this buffer runs.
    public private(set) var readCount = 0

    public init(capacity: Int = 512) { bytesStorage.reserveCapacity(capacity) }

    public mutating func removeAll() {
        bytesStorage.removeAll(keepingCapacity: true)
        readCount = 0
    }

    public mutating func raw(_ b: UInt8) { bytesStorage.append(b) }

    /// Sets the low GPIO byte (ADBUS0-7): value and direction (1 = output).
    public mutating func setLow(value: UInt8, direction: UInt8) {
        bytesStorage.append(MPSSE.setLow); bytesStorage.append(value); bytesStorage.append(direction)
    }

    /// Sets the high GPIO byte (ACBUS0-7).
    public mutating func setHigh(value: UInt8, direction: UInt8) {
        bytesStorage.append(MPSSE.setHigh); bytesStorage.append(value); bytesStorage.append(direction)
    }

    public mutating func readLow() { bytesStorage.append(MPSSE.readLow); readCount += 1 }
    public mutating func readHigh() { bytesStorage.append(MPSSE.readHigh); readCount += 1 }

    /// SCK = 60 MHz / ((1 + divisor) * 2) with divide-by-5 off: divisor 0 is 30 MHz.
    public mutating func clock(divisor: UInt16) {
        bytesStorage.append(MPSSE.divideBy5Off)
        bytesStorage.append(MPSSE.clockDivisor); bytesStorage.append(UInt8(divisor & 0xFF)); bytesStorage.append(UInt8(divisor >> 8))
    }

    /// Clocks `count` bytes out MSB first on the falling edge (SPI mode 0 writes). Caller supplies
    /// the data with `appendData`; `count` must be 1...65536.
    public mutating func writeHeader(count: Int) {
        precondition(count >= 1 && count <= MPSSE.maxTransfer)
        bytesStorage.append(MPSSE.bytesOutFalling)
        bytesStorage.append(UInt8((count - 1) & 0xFF)); bytesStorage.append(UInt8((count - 1) >> 8))
    }

    public mutating func write(_ data: some Collection<UInt8>) {
        writeHeader(count: data.count)
        bytesStorage.append(contentsOf: data)
    }

    public mutating func appendData(_ b: UInt8) { bytesStorage.append(b) }
    public mutating func appendData(_ data: UnsafeRawBufferPointer) { bytesStorage.append(contentsOf: data) }

    /// Clocks `count` bytes in MSB first on the rising edge (SPI mode 0 reads).
    public mutating func read(count: Int) {
        precondition(count >= 1 && count <= MPSSE.maxTransfer)
        bytesStorage.append(MPSSE.bytesInRising)
        bytesStorage.append(UInt8((count - 1) & 0xFF)); bytesStorage.append(UInt8((count - 1) >> 8))
        readCount += count
    }

    /// Clocks `bits` (1...8) bits of `value` out MSB first on the falling edge (I2C byte/ack out).
    public mutating func writeBits(_ value: UInt8, bits: Int) {
        precondition(bits >= 1 && bits <= 8)
        bytesStorage.append(MPSSE.bitsOutFalling); bytesStorage.append(UInt8(bits - 1)); bytesStorage.append(value)
    }

    /// Clocks `bits` (1...8) bits in on the rising edge; the device returns one byte.
    public mutating func readBits(_ bits: Int) {
        precondition(bits >= 1 && bits <= 8)
        bytesStorage.append(MPSSE.bitsInRising); bytesStorage.append(UInt8(bits - 1))
        readCount += 1
    }

    /// Idle SCK cycles with no data: a delay measured in clock periods.
    public mutating func idle(bits: Int) {
        var remaining = bits
        if remaining <= 8 && remaining > 0 {
            bytesStorage.append(MPSSE.clockBits); bytesStorage.append(UInt8(remaining - 1))
            return
        }
        while remaining >= 8 {
            let chunks = min(remaining / 8, 65536)
            bytesStorage.append(MPSSE.clockBytes)
            bytesStorage.append(UInt8((chunks - 1) & 0xFF)); bytesStorage.append(UInt8((chunks - 1) >> 8))
            remaining -= chunks * 8
        }
        if remaining > 0 { bytesStorage.append(MPSSE.clockBits); bytesStorage.append(UInt8(remaining - 1)) }
    }

    public mutating func waitGPIOL1Low() { bytesStorage.append(MPSSE.waitGPIOL1Low) }
    public mutating func waitGPIOL1High() { bytesStorage.append(MPSSE.waitGPIOL1High) }
    public mutating func sendImmediate() { bytesStorage.append(MPSSE.sendImmediate) }
}
