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
    /// The 7-series IDCODE (iCE40 bitstreams carry none: 0).
    public var idcode: UInt32
    /// Uncompressed bitstream size in bytes.
    public var bitstreamBytes: Int
    public var family: FPGAFamily = .xilinx7

    public static let xc7s15 = FPGAPart(name: "xc7s15", idcode: 0x0362_0093, bitstreamBytes: 538_844)
    public static let xc7s25 = FPGAPart(name: "xc7s25", idcode: 0x037C_4093, bitstreamBytes: 1_223_008)
    public static let xc7s50 = FPGAPart(name: "xc7s50", idcode: 0x0362_F093, bitstreamBytes: 2_720_488)
    public static let xc7a35t = FPGAPart(name: "xc7a35t", idcode: 0x0362_D093, bitstreamBytes: 2_192_012)
    public static let known: [FPGAPart] = [.xc7s15, .xc7s25, .xc7s50, .xc7a35t]
    /// iCE40UP5K: CRAM 692 x 336 bits per bank (icepack's "5k"); an icepack .bin is 104,090 bytes.
    public static let ice40up5k = FPGAPart(name: "ice40up5k", idcode: 0, bitstreamBytes: 104_090, family: .ice40)

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
    public var format: String                 // "bit", "bin" (7-series) or "ice40-bin"
    public var family: FPGAFamily = .xilinx7
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
    /// iCE40 images: device by CRAM size, CRAM/BRAM bytes, comment.
    public var ice40: ICE40Info?

    /// The FPGA part the image is for, when the image says (7-series IDCODE or iCE40 CRAM size).
    public var fpgaPart: FPGAPart? {
        switch family {
        case .xilinx7: idcode.flatMap { FPGAPart.byIDCODE($0) }
        case .ice40: ice40?.device == FPGAPart.ice40up5k.name ? .ice40up5k : nil
        }
    }
}

/// A parsed bitstream: the header fields and the raw configuration bytes written to flash.
public struct Bitstream: Sendable {
    public var info: BitstreamInfo
    public var payload: [UInt8]

    public static let syncWord: UInt32 = 0xAA99_5566
    public static let bitPreamble: [UInt8] = [0x00, 0x09, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x00, 0x00, 0x01]

    public init(bytes: [UInt8]) throws(BitstreamError) {
        if Self.looksLikeICE40(bytes) {
            try self.init(ice40: bytes)
        } else {
            try self.init(xilinx7: bytes)
        }
    }

    init(xilinx7 bytes: [UInt8]) throws(BitstreamError) {
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

    /// An iCE40 image starts with icepack's comment (FF 00) or directly with its preamble, which
    /// comes before any 7-series sync word.
    static func looksLikeICE40(_ b: [UInt8]) -> Bool {
        if b.count >= 2 && b[0] == 0xFF && b[1] == 0x00 { return true }
        guard let p = ICE40Bitstream.findPreamble(b) else { return false }
        var k = 0
        while k + 4 <= p {
            if b[k] == 0xAA && b[k + 1] == 0x99 && b[k + 2] == 0x55 && b[k + 3] == 0x66 { return false }
            k += 1
        }
        return true
    }

    /// An iCE40 .bin: written to the flash as it is, comment included (the FPGA skips to the preamble).
    init(ice40 bytes: [UInt8]) throws(BitstreamError) {
        let s = ICE40Bitstream.scan(bytes)
        guard let p = s.preambleOffset else {
            throw BitstreamError("no iCE40 preamble 7EAA997E in the first 4 KiB; not an icepack .bin")
        }
        if let e = s.error { throw BitstreamError("iCE40 image: \(e); rebuild it with icepack") }
        guard s.wakeup || s.reboot else { throw BitstreamError("iCE40 image has no wakeup command; it is truncated") }
        var info = BitstreamInfo(format: "ice40-bin", family: .ice40, payloadOffset: 0, payloadLength: bytes.count,
                                 frameWords: 0, crcChecks: s.crcChecks, crcOK: s.crcErrors == 0 && s.crcChecks > 0)
        info.syncOffset = p
        info.ice40 = ICE40Info(device: s.device, cramWidth: s.cramWidth, cramHeight: s.cramHeight, cramBytes: s.cramBytes,
                               bramBytes: s.bramBytes, freqRange: s.freqRange,
                               warmbootEnabled: s.bootMode.map { $0 & 0x20 != 0 }, comment: s.comment,
                               bootAddress: s.reboot ? s.bootAddress : nil)
        self.info = info
        payload = bytes
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

