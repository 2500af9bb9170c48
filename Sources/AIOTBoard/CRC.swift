// Checksums used on the link: CRC-32 (zlib) for weights and results, and the 7-series
// configuration CRC that the FPGA checks while loading a bitstream.

/// CRC-32/ISO-HDLC (zlib, PNG): reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF.
public struct CRC32: Sendable {
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        return c
    }
    private var state: UInt32 = 0xFFFF_FFFF
    public init() {}

    public mutating func update(_ byte: UInt8) {
        state = Self.table[Int((state ^ UInt32(byte)) & 0xFF)] ^ (state >> 8)
    }
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        for b in bytes { update(b) }
    }
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes { update(b) }
    }
    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }
}

/// The CRC the 7-series configuration logic keeps over register writes (UG470 "CRC"): CRC-32C
/// (Castagnoli, reflected 0x82F63B78) fed LSB first with 37 bits per word, the 32 data bits then
/// the 5-bit register address. Reset to 0 by the RCRC command and by a write to the CRC register.
public struct ConfigCRC: Sendable {
    public private(set) var value: UInt32 = 0
    public init() {}
    public mutating func reset() { value = 0 }
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }
    public mutating func update(register: UInt32, word: UInt32) {
        // 32 data bits LSB first, a byte at a time through the table, then 5 address bits.
        var crc = value
        var w = word
        for _ in 0..<4 {
            crc = Self.table[Int((crc ^ w) & 0xFF)] ^ (crc >> 8)
            w >>= 8
        }
        var a = register & 0x1F
        for _ in 0..<5 {
            crc = ((a ^ crc) & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            a >>= 1
        }
        value = crc
    }

    /// The bit-serial definition, kept to test the table form against.
    public static func bitSerial(_ start: UInt32, register: UInt32, word: UInt32) -> UInt32 {
        var v = (UInt64(register & 0x1F) << 32) | UInt64(word)
        var crc = start
        for _ in 0..<37 {
            crc = ((UInt32(truncatingIfNeeded: v) ^ crc) & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            v >>= 1
        }
        return crc
    }
}
