// Test bitstreams: realistic images for tests, `aiotctl sim make-bitstream` and the board model.
import AIOTBoard

/// Builds a realistic uncompressed 7-series bitstream: the .bit header, the bus-width pattern,
/// sync, the configuration register writes Vivado emits, the frame data through FDRI and the CRC
/// checks, sized like the real part (538,844 bytes of configuration data for an XC7S15).
public struct BitstreamGenerator: Sendable {
    public var part: FPGAPart = .xc7s15
    public var packageField = "7s15ftgb196"
    public var designName = "aiot_accel"
    public var date = "2026/11/26"
    public var time = "05:40:00"
    /// Seed for the frame data, so two images with different seeds differ everywhere.
    public var seed: UInt64 = 1
    /// Overrides the size of the configuration data (default: the part's size).
    public var payloadBytes: Int?
    /// Writes a wrong CRC, for tests of the FPGA's check.
    public var corruptCRC = false

    public init() {}

    public func payload() -> [UInt8] {
        var words: [UInt32] = []
        func w(_ x: UInt32) { words.append(x) }
        func type1Write(_ reg: UInt32, _ count: UInt32) -> UInt32 { 0x3000_0000 | (reg << 13) | count }
        var crc = ConfigCRC()
        func write(_ reg: UInt32, _ value: UInt32) {
            w(type1Write(reg, 1)); w(value)
            crc.update(register: reg, word: value)
            if reg == ConfigRegister.cmd && value == ConfigCommand.rcrc { crc.reset() }
        }
        let target = payloadBytes ?? part.bitstreamBytes
        for _ in 0..<8 { w(0xFFFF_FFFF) }
        w(0x0000_00BB); w(0x1122_0044); w(0xFFFF_FFFF); w(0xFFFF_FFFF)
        w(Bitstream.syncWord)
        w(0x2000_0000)
        write(ConfigRegister.timer, 0)
        write(ConfigRegister.wbstar, 0)
        write(ConfigRegister.cmd, ConfigCommand.null)
        w(0x2000_0000)
        write(ConfigRegister.cmd, ConfigCommand.rcrc)
        w(0x2000_0000); w(0x2000_0000)
        write(ConfigRegister.cor0, 0x0200_3FE5)
        write(ConfigRegister.cor1, 0)
        write(ConfigRegister.idcode, part.idcode)
        write(ConfigRegister.cmd, 0x9) // SWITCH
        w(0x2000_0000)
        write(ConfigRegister.mask, 0x401)
        write(ConfigRegister.ctl0, 0x501)
        write(ConfigRegister.mask, 0)
        write(ConfigRegister.ctl1, 0)
        for _ in 0..<8 { w(0x2000_0000) }
        write(ConfigRegister.far, 0)
        write(ConfigRegister.cmd, ConfigCommand.wcfg)
        w(0x2000_0000)
        // Trailer: CRC, GRESTORE, DGHIGH, START, CRC, DESYNC, NOOP padding (counted below).
        let trailerWords = 2 + 2 + 1 + 2 + 100 + 2 + 1 + 2 + 2 + 16
        let frameWords = max(101, target / 4 - words.count - 2 - trailerWords)
        w(type1Write(ConfigRegister.fdri, 0))
        w(0x5000_0000 | UInt32(frameWords))
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<frameWords {
            // Frame data: mostly zero (unused fabric), xorshift noise where logic is placed.
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            let used = (i / 101) % 5 != 4
            let v = used ? UInt32(truncatingIfNeeded: state) : 0
            w(v)
            crc.update(register: ConfigRegister.fdri, word: v)
        }
        w(type1Write(ConfigRegister.crc, 1)); w(corruptCRC ? crc.value ^ 1 : crc.value)
        crc.reset()
        write(ConfigRegister.cmd, ConfigCommand.grestore)
        w(0x2000_0000)
        write(ConfigRegister.cmd, ConfigCommand.dghigh)
        for _ in 0..<100 { w(0x2000_0000) }
        write(ConfigRegister.cmd, ConfigCommand.start)
        w(0x2000_0000)
        w(type1Write(ConfigRegister.crc, 1)); w(crc.value)
        crc.reset()
        write(ConfigRegister.cmd, ConfigCommand.desync)
        while words.count * 4 < target { w(0x2000_0000) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(words.count * 4)
        for x in words { bytes += [UInt8(x >> 24), UInt8((x >> 16) & 0xFF), UInt8((x >> 8) & 0xFF), UInt8(x & 0xFF)] }
        return bytes
    }

    /// The .bit file: header fields a-e then the payload.
    public func bitFile() -> [UInt8] {
        let data = payload()
        var out = Bitstream.bitPreamble
        func field(_ tag: UInt8, _ s: String) {
            let b = Array(s.utf8) + [0]
            out.append(tag); out.append(UInt8(b.count >> 8)); out.append(UInt8(b.count & 0xFF)); out += b
        }
        field(0x61, "\(designName);UserID=0XFFFFFFFF;Version=2025.1")
        field(0x62, packageField)
        field(0x63, date)
        field(0x64, time)
        out.append(0x65)
        let n = data.count
        out += [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        out += data
        return out
    }
}

/// Builds an iCE40UP5K image with the exact command structure icepack writes for the UP5K (checked
/// against an icepack 0.x .bin of a small design: 104,090 bytes, CRAM banks 692 x 336/176/336/176,
/// BRAM banks 160/80/160/80 x two chunks of 128, CRC-16 then wakeup): comment, preamble, frequency
/// range, CRC reset, warm boot enable, the data blocks, CRC, wakeup, a padding byte.
public struct ICE40BitstreamGenerator: Sendable {
    public var seed: UInt64 = 1
    public var comment = ["aiot_accel ice40up5k test image"]
    /// Writes a wrong CRC, for tests of the FPGA's check.
    public var corruptCRC = false
    /// CRAM width: 692 is the UP5K; another value makes an image for another (unknown) device.
    public var cramWidth = 692

    public init() {}

    public func bitFile() -> [UInt8] {
        var out: [UInt8] = [0xFF, 0x00]
        for line in comment { out += Array(line.utf8) + [0] }
        out += [0x00, 0xFF]
        var crc: UInt16 = 0
        func put(_ b: UInt8) { out.append(b); crc = ICE40Bitstream.crc16(crc, b) }
        func cmd(_ op: UInt8, _ payload: Int, _ n: Int) {
            put(op << 4 | UInt8(n))
            for k in stride(from: n - 1, through: 0, by: -1) { put(UInt8(truncatingIfNeeded: payload >> (8 * k))) }
        }
        for b in ICE40Bitstream.preamble { put(b) }
        cmd(0x5, 0, 1)                 // frequency range: low
        cmd(0x0, 0x05, 1); crc = 0xFFFF // reset CRC
        cmd(0x9, 0x20, 2)              // warm boot enabled
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func data(_ kind: Int, _ bytes: Int) {
            cmd(0x0, kind, 1)
            for i in 0..<bytes {
                // Mostly zero (unused tiles), xorshift noise where logic is placed.
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                put((i / 64) % 4 == 0 ? UInt8(truncatingIfNeeded: state) : 0)
            }
            put(0); put(0)
        }
        cmd(0x6, cramWidth - 1, 2)
        cmd(0x8, 0, 2)
        for (bank, height) in [336, 176, 336, 176].enumerated() {
            cmd(0x7, height, 2)
            cmd(0x1, bank, 1)
            data(0x01, cramWidth * height / 8)
        }
        cmd(0x7, 128, 2)
        for (bank, width) in [160, 80, 160, 80].enumerated() {
            cmd(0x1, bank, 1)
            for offset in [0, 128] {
                cmd(0x8, offset, 2)
                cmd(0x6, width - 1, 2)
                data(0x03, width * 128 / 8)
            }
        }
        put(0x22)
        let value = corruptCRC ? crc ^ 1 : crc
        put(UInt8(value >> 8)); put(UInt8(value & 0xFF))
        cmd(0x0, 0x06, 1)              // wakeup
        put(0x00)
        return out
    }
}
