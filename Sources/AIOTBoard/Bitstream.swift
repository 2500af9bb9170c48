// Xilinx 7-series bitstreams: the .bit container header (fields a-e) and the raw configuration
// packets inside (.bin). Also a generator of realistic images for tests and the board model.

/// A parse failure, with what to do next.
public struct BitstreamError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The 7-series devices the tools know by IDCODE (UG470 table 1-1; revision nibble masked).
public struct FPGAPart: Sendable, Equatable {
    public var name: String
    public var idcode: UInt32
    /// Uncompressed bitstream size in bytes.
    public var bitstreamBytes: Int

    public static let xc7s15 = FPGAPart(name: "xc7s15", idcode: 0x0362_0093, bitstreamBytes: 538_844)
    public static let xc7s25 = FPGAPart(name: "xc7s25", idcode: 0x037C_4093, bitstreamBytes: 1_223_008)
    public static let xc7s50 = FPGAPart(name: "xc7s50", idcode: 0x0362_F093, bitstreamBytes: 2_720_488)
    public static let xc7a35t = FPGAPart(name: "xc7a35t", idcode: 0x0362_D093, bitstreamBytes: 2_192_012)
    public static let known: [FPGAPart] = [.xc7s15, .xc7s25, .xc7s50, .xc7a35t]

    public static func byIDCODE(_ id: UInt32) -> FPGAPart? {
        known.first { ($0.idcode & 0x0FFF_FFFF) == (id & 0x0FFF_FFFF) }
    }
    /// `7s15ftgb196` (the .bit 'b' field) -> xc7s15.
    public static func byPartField(_ field: String) -> FPGAPart? {
        let f = field.lowercased()
        return known.filter { f.hasPrefix(String($0.name.dropFirst(2))) || f.hasPrefix($0.name) }
            .max { $0.name.count < $1.name.count }
    }
}

/// Configuration registers and commands (UG470 tables 5-23, 5-25) used here.
public enum ConfigRegister {
    public static let crc: UInt32 = 0x00, far: UInt32 = 0x01, fdri: UInt32 = 0x02, cmd: UInt32 = 0x04
    public static let ctl0: UInt32 = 0x05, mask: UInt32 = 0x06, cor0: UInt32 = 0x09, idcode: UInt32 = 0x0C
    public static let cor1: UInt32 = 0x0E, wbstar: UInt32 = 0x10, timer: UInt32 = 0x11, ctl1: UInt32 = 0x18
}
public enum ConfigCommand {
    public static let null: UInt32 = 0x0, wcfg: UInt32 = 0x1, dghigh: UInt32 = 0x3, start: UInt32 = 0x5
    public static let rcrc: UInt32 = 0x7, grestore: UInt32 = 0xA, desync: UInt32 = 0xD, iprog: UInt32 = 0xF
}

/// What `bitstream-info` reports.
public struct BitstreamInfo: Sendable, Equatable, Codable {
    public var format: String                 // "bit" or "bin"
    public var designName: String?
    public var userID: String?
    public var toolVersion: String?
    public var part: String?
    public var date: String?
    public var time: String?
    /// Byte offset of the configuration data inside the file.
    public var payloadOffset: Int
    public var payloadLength: Int
    /// Offset of the sync word AA995566 inside the payload.
    public var syncOffset: Int?
    /// The value written to the IDCODE register (0x0C) by a type-1 packet.
    public var idcode: UInt32?
    /// The part that IDCODE belongs to, if known.
    public var idcodePart: String?
    /// Words written to FDRI (frame data).
    public var frameWords: Int
    /// Whether the CRC register writes matched the configuration CRC of the packets before them.
    public var crcChecks: Int
    public var crcOK: Bool
}

/// A parsed bitstream: the header fields and the raw configuration bytes written to flash.
public struct Bitstream: Sendable {
    public var info: BitstreamInfo
    public var payload: [UInt8]

    public static let syncWord: UInt32 = 0xAA99_5566
    static let bitPreamble: [UInt8] = [0x00, 0x09, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x00, 0x00, 0x01]

    public init(bytes: [UInt8]) throws(BitstreamError) {
        var info = BitstreamInfo(format: "bin", payloadOffset: 0, payloadLength: bytes.count, frameWords: 0,
                                 crcChecks: 0, crcOK: true)
        if bytes.count >= Self.bitPreamble.count && Array(bytes[0..<Self.bitPreamble.count]) == Self.bitPreamble {
            info.format = "bit"
            var p = Self.bitPreamble.count
            func u16() throws(BitstreamError) -> Int {
                guard p + 2 <= bytes.count else { throw BitstreamError("truncated .bit header at byte \(p)") }
                defer { p += 2 }
                return Int(bytes[p]) << 8 | Int(bytes[p + 1])
            }
            func text() throws(BitstreamError) -> String {
                let n = try u16()
                guard p + n <= bytes.count else { throw BitstreamError("truncated .bit header field at byte \(p)") }
                defer { p += n }
                return String(decoding: bytes[p..<(p + n)].prefix { $0 != 0 }, as: UTF8.self)
            }
            loop: while p < bytes.count {
                let tag = bytes[p]
                p += 1
                switch tag {
                case 0x61: // 'a': design;UserID=...;Version=...
                    let a = try text()
                    let parts = a.split(separator: ";").map(String.init)
                    info.designName = parts.first
                    for kv in parts.dropFirst() {
                        if kv.hasPrefix("UserID=") { info.userID = String(kv.dropFirst(7)) }
                        if kv.hasPrefix("Version=") { info.toolVersion = String(kv.dropFirst(8)) }
                    }
                case 0x62: info.part = try text()
                case 0x63: info.date = try text()
                case 0x64: info.time = try text()
                case 0x65:
                    guard p + 4 <= bytes.count else { throw BitstreamError("truncated .bit header: no payload length") }
                    let n = Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
                    p += 4
                    guard p + n <= bytes.count else {
                        throw BitstreamError(".bit file is truncated: header declares \(n) payload bytes, \(bytes.count - p) present")
                    }
                    info.payloadOffset = p
                    info.payloadLength = n
                    break loop
                default:
                    throw BitstreamError("unknown .bit header field 0x\(String(tag, radix: 16)) at byte \(p - 1); not a Xilinx .bit file?")
                }
            }
            guard info.payloadOffset > 0 else { throw BitstreamError(".bit header has no 'e' (payload) field") }
        }
        payload = Array(bytes[info.payloadOffset..<(info.payloadOffset + info.payloadLength)])
        let scan = Self.scanPackets(payload)
        guard let sync = scan.syncOffset else {
            throw BitstreamError("no sync word AA995566 in the configuration data; not a 7-series bitstream")
        }
        info.syncOffset = sync
        info.idcode = scan.idcode
        info.idcodePart = scan.idcode.flatMap { FPGAPart.byIDCODE($0)?.name }
        info.frameWords = scan.frameWords
        info.crcChecks = scan.crcChecks
        info.crcOK = scan.crcErrors == 0
        self.info = info
    }

    /// The result of walking configuration packets, shared by the parser and the FPGA model.
    public struct PacketScan: Sendable {
        public var syncOffset: Int?
        public var idcode: UInt32?
        public var frameWords = 0
        public var crcChecks = 0
        public var crcErrors = 0
        public var desynced = false
        public var started = false
        public var wbstar: UInt32?
        public var iprog = false
        /// Bytes consumed up to DESYNC (how much the FPGA reads).
        public var consumed = 0
        public var error: String?
    }

    /// Walks type-1/type-2 packets after the sync word, keeping the configuration CRC.
    /// `data[start..<min(start + limit, count)]` is scanned.
    public static func scanPackets(_ data: [UInt8], from start: Int = 0, limit: Int? = nil) -> PacketScan {
        data.withUnsafeBufferPointer { buf in
            scan(UnsafeBufferPointer(rebasing: buf[start..<min(buf.count, start + (limit ?? buf.count))]))
        }
    }

    static func scan(_ data: UnsafeBufferPointer<UInt8>) -> PacketScan {
        var scan = PacketScan()
        let end = data.count
        func word(_ o: Int) -> UInt32 {
            UInt32(data[o]) << 24 | UInt32(data[o + 1]) << 16 | UInt32(data[o + 2]) << 8 | UInt32(data[o + 3])
        }
        var o = 0
        // The sync word is word-aligned only after the bus-width pattern; search byte by byte.
        while o + 4 <= end {
            if word(o) == syncWord { break }
            o += 1
        }
        guard o + 4 <= end else { return scan }
        scan.syncOffset = o
        o += 4
        var crc = ConfigCRC()
        var lastRegister: UInt32 = 0
        while o + 4 <= end {
            let header = word(o)
            o += 4
            let type = header >> 29
            var register: UInt32
            var count: Int
            let op = (header >> 27) & 0x3
            if type == 1 {
                register = (header >> 13) & 0x3FFF
                count = Int(header & 0x7FF)
                lastRegister = register
            } else if type == 2 {
                register = lastRegister
                count = Int(header & 0x07FF_FFFF)
            } else {
                scan.error = "bad packet header 0x\(String(header, radix: 16)) at byte \(o - 4)"
                break
            }
            if op != 2 { continue }              // NOOP (op 0) and reads carry no write data here
            guard o + 4 * count <= end else { scan.error = "packet runs past the end of the data"; break }
            for k in 0..<count {
                let w = word(o + 4 * k)
                if register == ConfigRegister.crc {
                    scan.crcChecks += 1
                    if w != crc.value { scan.crcErrors += 1 }
                    crc.reset()
                    continue
                }
                crc.update(register: register, word: w)
                switch register {
                case ConfigRegister.idcode: scan.idcode = w
                case ConfigRegister.fdri: scan.frameWords += 1
                case ConfigRegister.wbstar: scan.wbstar = w
                case ConfigRegister.cmd:
                    if w == ConfigCommand.rcrc { crc.reset() }
                    if w == ConfigCommand.start { scan.started = true }
                    if w == ConfigCommand.iprog { scan.iprog = true }
                    if w == ConfigCommand.desync { scan.desynced = true }
                default: break
                }
            }
            o += 4 * count
            if scan.desynced { break }
        }
        scan.consumed = o
        return scan
    }
}

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
