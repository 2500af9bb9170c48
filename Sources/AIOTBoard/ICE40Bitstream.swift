// Lattice iCE40 bitstreams as icepack writes them: an optional comment (FF 00 ... 00 FF), the
// preamble 7E AA 99 7E, then commands. A command byte's high nibble is the opcode and its low
// nibble the payload length; 0x0_ with payload 1/3 is followed by CRAM/BRAM data of the current
// bank width x height bits and two zero bytes. The CRC-16-CCITT (init 0xFFFF after "01 05") over
// everything up to and including "22 hi lo" leaves 0. Also the icemulti boot header: per entry a
// preamble, boot mode (92), boot address (44, 3 bytes), bank offset (82) and reboot (01 08).

/// What `bitstream-info` shows for an iCE40 image.
public struct ICE40Info: Sendable, Equatable, Codable {
    public var device: String?
    public var cramWidth: Int
    public var cramHeight: Int
    public var cramBytes: Int
    public var bramBytes: Int
    public var freqRange: String?
    public var warmbootEnabled: Bool?
    public var comment: [String]
    /// A multi-image header entry (boot address + reboot) rather than a configuration.
    public var bootAddress: Int?
}

/// The result of walking iCE40 commands, shared by the parser and the board model.
public struct ICE40Scan: Sendable, Equatable {
    public var preambleOffset: Int?
    public var comment: [String] = []
    public var freqRange: String?
    public var bootMode: Int?
    public var cramWidth = 0
    public var cramHeight = 0
    public var cramBytes = 0
    public var bramBytes = 0
    public var crcChecks = 0
    public var crcErrors = 0
    public var wakeup = false
    public var reboot = false
    public var bootAddress: Int?
    /// Bytes read up to the wakeup or reboot command (how much the FPGA reads).
    public var consumed = 0
    public var error: String?

    /// icepack's chip names by CRAM size.
    public var device: String? {
        switch (cramWidth, cramHeight) {
        case (182, 80): "ice40lp384"
        case (332, 144): "ice40hx1k"
        case (872, 272): "ice40hx8k"
        case (692, 336): "ice40up5k"
        case (656, 176): "ice40u4k"
        default: nil
        }
    }
}

public enum ICE40Bitstream {
    public static let preamble: [UInt8] = [0x7E, 0xAA, 0x99, 0x7E]

    /// CRC-16-CCITT, polynomial 0x1021, MSB first, no final XOR (icepack's `update_crc16`).
    public static func crc16(_ crc: UInt16, _ byte: UInt8) -> UInt16 {
        var c = crc
        for i in stride(from: 7, through: 0, by: -1) {
            let bit = ((c >> 15) ^ UInt16((byte >> UInt8(i)) & 1)) & 1
            c = (c << 1) ^ (bit != 0 ? 0x1021 : 0)
        }
        return c
    }

    /// Offset of the preamble within the first `window` bytes, if any.
    public static func findPreamble(_ data: [UInt8], from start: Int = 0, window: Int = 4096) -> Int? {
        let end = min(data.count, start + window) - 3
        var o = start
        while o < end {
            if data[o] == 0x7E && data[o + 1] == 0xAA && data[o + 2] == 0x99 && data[o + 3] == 0x7E { return o }
            o += 1
        }
        return nil
    }

    /// Walks the commands after the preamble in `data[start..<start+limit]`. Pure: never traps,
    /// allocates nothing proportional to declared sizes; a malformed stream sets `error`.
    public static func scan(_ data: [UInt8], from start: Int = 0, limit: Int? = nil) -> ICE40Scan {
        var s = ICE40Scan()
        let end = min(data.count, start + (limit ?? data.count))
        guard start >= 0, start < end else { s.error = "no data"; return s }
        // Comment: FF 00, zero-terminated strings, 00 FF.
        var o = start
        if end - o >= 2 && data[o] == 0xFF && data[o + 1] == 0x00 {
            var k = o + 2
            var current: [UInt8] = []
            while k + 1 < end && !(data[k] == 0x00 && data[k + 1] == 0xFF) {
                if data[k] == 0 {
                    if !current.isEmpty { s.comment.append(String(decoding: current, as: UTF8.self)) }
                    current = []
                } else if current.count < 256 { current.append(data[k]) }
                k += 1
            }
            if !current.isEmpty { s.comment.append(String(decoding: current, as: UTF8.self)) }
            o = k + 2
        }
        guard let p = findPreamble(data, from: min(o, end), window: 4096) else { s.error = "no iCE40 preamble 7EAA997E"; return s }
        s.preambleOffset = p - start
        o = p + 4
        var crc: UInt16 = 0
        var width = 0, height = 0, offset = 0
        func byte() -> UInt8? {
            guard o < end else { return nil }
            let b = data[o]
            o += 1
            crc = crc16(crc, b)
            return b
        }
        while true {
            guard let command = byte() else { s.error = "bitstream ends before wakeup (byte \(o - start))"; break }
            let n = Int(command & 0x0F)
            var payload: UInt64 = 0
            var truncated = false
            for _ in 0..<n {
                guard let b = byte() else { truncated = true; break }
                payload = payload << 8 | UInt64(b)
            }
            if truncated { s.error = "command 0x\(String(command, radix: 16)) truncated"; break }
            switch command & 0xF0 {
            case 0x00:
                switch payload {
                case 0x01, 0x03:
                    let bits = width * height
                    guard bits > 0, bits % 8 == 0 else { s.error = "data block with bank size \(width) x \(height) bits"; break }
                    let bytes = bits / 8
                    guard o + bytes + 2 <= end else { s.error = "data block runs past the end of the image"; break }
                    for k in o..<(o + bytes + 2) { crc = crc16(crc, data[k]) }
                    if data[o + bytes] != 0 || data[o + bytes + 1] != 0 { s.error = "no 00 00 after a data block at byte \(o + bytes - start)" }
                    o += bytes + 2
                    if payload == 0x01 {
                        s.cramBytes += bytes
                        s.cramWidth = max(s.cramWidth, width)
                        s.cramHeight = max(s.cramHeight, offset + height)
                    } else {
                        s.bramBytes += bytes
                    }
                case 0x05: crc = 0xFFFF
                case 0x06: s.wakeup = true
                case 0x08: s.reboot = true
                default: s.error = "unknown command 01 \(String(payload, radix: 16))"
                }
            case 0x10: break                               // bank number
            case 0x20:
                s.crcChecks += 1
                if crc != 0 { s.crcErrors += 1 }
            // Boot address: the flash READ opcode (03) and a 24-bit address (icemulti's "44 03 a a a").
            case 0x40: s.bootAddress = Int(truncatingIfNeeded: payload & 0xFF_FFFF)
            case 0x50: s.freqRange = ["low", "medium", "high"][safe: Int(truncatingIfNeeded: payload)] ?? "0x\(String(payload, radix: 16))"
            case 0x60: width = Int(truncatingIfNeeded: payload & 0xFFFF) + 1
            case 0x70: height = Int(truncatingIfNeeded: payload & 0xFFFF)
            case 0x80: offset = Int(truncatingIfNeeded: payload & 0xFFFF)
            case 0x90: s.bootMode = Int(truncatingIfNeeded: payload & 0xFFFF)
            default: s.error = "unknown command 0x\(String(command, radix: 16)) at byte \(o - 1 - n - start)"
            }
            if s.error != nil || s.wakeup || s.reboot { break }
        }
        s.consumed = o - start
        return s
    }

    /// The icemulti header for `entries` (entry 0: power-on image, 1...4: warm boot images 0...3),
    /// each 32 bytes; the flasher writes it with the golden image.
    public static func multiImageHeader(_ addresses: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        for a in addresses {
            var e = preamble + [0x92, 0x00, 0x00, 0x44, 0x03, UInt8((a >> 16) & 0xFF), UInt8((a >> 8) & 0xFF), UInt8(a & 0xFF),
                                0x82, 0x00, 0x00, 0x01, 0x08]
            e += [UInt8](repeating: 0, count: 32 - e.count)
            out += e
        }
        return out
    }

    /// Our layout's header: power-on and warm boot image 0 at slot 0, warm boot images 1...3 at slots 1...3.
    public static func header(layout: SlotLayout) -> [UInt8] {
        let slots = (0..<4).map { layout.base + $0 * layout.slotBytes }
        return multiImageHeader([slots[0]] + slots)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}
