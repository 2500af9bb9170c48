// Writing bitstreams into the configuration flash over the same SPI lines, while PROGRAM_B holds
// the FPGA off the bus: identify (RDID), erase only the 256 KiB sectors that change, program 512-byte
// pages pipelined several to a USB round trip, read back and verify.

/// What `flash` will do or did.
public struct FlashReport: Sendable, Equatable, Codable {
    public var flashPart: String
    public var slot: Int
    public var address: Int
    public var imageBytes: Int
    public var sectorsErased: [Int] = []
    public var sectorsSkipped: [Int] = []
    public var pagesProgrammed = 0
    public var verified = false
    public var dryRun = false
    /// Modelled seconds (board model) for erase, program, verify.
    public var eraseSeconds: Double?
    public var programSeconds: Double?
    public var verifySeconds: Double?
    public var totalSeconds: Double?
    public var roundTrips = 0
    public var bytesOut = 0
    public var bytesIn = 0
    public var done: Bool?
}

public struct FlashOptions: Sendable {
    public var slot = 1
    public var golden = false
    public var verify = true
    public var force = false
    public var dryRun = false
    /// The FPGA on the board; images for another IDCODE or part are refused without `force`.
    public var boardPart = FPGAPart.xc7s15
    /// Pages per USB round trip while programming.
    public var pagesPerBuffer = 16
    public init() {}
}

public typealias FlashProgress = (_ phase: String, _ done: Int, _ total: Int) -> Void

public final class Flasher {
    public let link: BoardLink
    public private(set) var part: FlashPart?

    public init(link: BoardLink) { self.link = link }

    /// Reads the JEDEC ID; the FPGA must be held in reset.
    public func identify() throws(BoardError) -> FlashPart {
        let r = try link.run { b in
            Self.flashFrame(&b, FlashCommand.readID, read: 6)
            b.sendImmediate()
        }
        guard let p = flashPart(jedec: r) else {
            let id = r.prefix(3).map { hex32(UInt32($0)).suffix(2) }.joined(separator: " ")
            throw BoardError(.wrongPart, id == "ff ff ff" || id == "00 00 00"
                ? "no flash answers RDID (read \(id)); is the cable seated and PROGRAM_B held low?"
                : "unknown flash JEDEC ID \(id); supported: \(flashParts.map { $0.name }.joined(separator: ", "))")
        }
        part = p
        return p
    }

    public func read(_ address: Int, count: Int, progress: FlashProgress? = nil) throws(BoardError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let n = min(60 << 10, count - out.count)
            let a = address + out.count
            out += try link.run { b in
                Self.flashFrame(&b, FlashCommand.read, address: a, read: n)
                b.sendImmediate()
            }
            progress?("read", out.count, count)
        }
        return out
    }

    /// One flash transaction: chip select, the opcode and its 24-bit address if any, `read` reply
    /// bytes, deselect.
    static func flashFrame(_ b: inout MPSSEBuffer, _ op: UInt8, address: Int? = nil, read: Int = 0) {
        b.setLow(value: PinA.accCS, direction: PinA.busDirection)
        b.writeHeader(count: address == nil ? 1 : 4)
        b.appendData(op)
        if let address { b.appendAddress(address) }
        if read > 0 { b.read(count: read) }
        b.setLow(value: PinA.idleValue, direction: PinA.busDirection)
    }

    static func status(_ b: inout MPSSEBuffer) { flashFrame(&b, FlashCommand.readStatus, read: 1) }

    /// Polls RDSR with `interval` seconds of idle clocks per round trip until WIP clears.
    func waitReady(interval: Double, timeout: Double, what: String) throws(BoardError) -> UInt8 {
        var waited = 0.0
        let bits = Int(interval * 30e6)
        while true {
            let r = try link.run { b in b.idle(bits: bits); Self.status(&b); b.sendImmediate() }
            waited += interval
            if r[0] & FlashCommand.wip == 0 { return r[0] }
            if waited > timeout { throw BoardError(.timeout, "flash still busy after \(what) (\(timeout) s); power-cycle the board") }
        }
    }

    public func eraseSector(_ address: Int) throws(BoardError) {
        guard let part else { throw BoardError(.notConfigured, "identify the flash first") }
        let st = try link.run { b in
            Self.flashFrame(&b, FlashCommand.writeEnable)
            Self.flashFrame(&b, FlashCommand.sectorErase, address: address)
            Self.status(&b)
            b.sendImmediate()
        }
        guard st[0] & FlashCommand.wip != 0 else {
            throw BoardError(.verify, "flash did not start erasing sector 0x\(String(address, radix: 16)) (status 0x\(String(st[0], radix: 16))); it may be write-protected")
        }
        let s = try waitReady(interval: 0.05, timeout: part.maxSectorEraseSeconds * 2, what: "erase")
        if s & FlashCommand.eraseError != 0 { throw BoardError(.verify, "flash reports an erase error at 0x\(String(address, radix: 16))") }
    }

    /// Programs `data` at `address` (page aligned), skipping all-0xFF pages. Pages are pipelined:
    /// each buffer holds WREN, PP, a wait of the typical program time and RDSR per page; a page whose
    /// RDSR still shows WIP means the next WREN was ignored, so programming resumes there after
    /// polling, with a longer wait.
    public func program(_ address: Int, _ data: [UInt8], pagesPerBuffer: Int = 16,
                        progress: FlashProgress? = nil) throws(BoardError) -> Int {
        guard let part else { throw BoardError(.notConfigured, "identify the flash first") }
        let pb = part.pageBytes
        let pages = (0..<((data.count + pb - 1) / pb)).filter { p in
            data[(p * pb)..<min(data.count, p * pb + pb)].contains { $0 != 0xFF }
        }
        var waitBits = Int((part.pageProgramSeconds * 1.15) * 30e6)
        var next = 0
        var programmed = 0
        while next < pages.count {
            let batch = Array(pages[next..<min(pages.count, next + pagesPerBuffer)])
            let r = try link.run { b in
                for p in batch {
                    let a = address + p * pb
                    Self.flashFrame(&b, FlashCommand.writeEnable)
                    b.setLow(value: PinA.accCS, direction: PinA.busDirection)
                    let chunk = data[(p * pb)..<min(data.count, p * pb + pb)]
                    b.writeHeader(count: 4 + chunk.count)
                    b.appendData(FlashCommand.pageProgram)
                    b.appendAddress(a)
                    for x in chunk { b.appendData(x) }
                    b.setLow(value: PinA.idleValue, direction: PinA.busDirection)
                    b.idle(bits: waitBits)
                    Self.status(&b)
                }
                b.sendImmediate()
            }
            if let k = r.firstIndex(where: { $0 & FlashCommand.wip != 0 }) {
                // Pages after k were sent while the flash was busy and were ignored.
                _ = try waitReady(interval: part.pageProgramSeconds, timeout: part.maxPageProgramSeconds * 10, what: "page program")
                next += k + 1
                programmed += k + 1
                waitBits = min(waitBits * 2, Int(part.maxPageProgramSeconds * 30e6))
            } else {
                next += batch.count
                programmed += batch.count
            }
            if r.contains(where: { $0 & FlashCommand.programError != 0 }) {
                throw BoardError(.verify, "flash reports a program error near 0x\(String(address + batch[0] * pb, radix: 16))")
            }
            progress?("program", programmed, pages.count)
        }
        return programmed
    }

    /// The whole `flash` command: checks, plan, erase, program, verify, release.
    public func flash(_ bit: Bitstream, options o: FlashOptions, progress: FlashProgress? = nil) throws(BoardError) -> FlashReport {
        let info = bit.info
        if !o.force {
            if let id = info.idcode, (id & 0x0FFF_FFFF) != (o.boardPart.idcode & 0x0FFF_FFFF) {
                let other = FPGAPart.byIDCODE(id)?.name ?? "an unknown part"
                throw BoardError(.wrongPart, "image writes IDCODE 0x\(hex32(id)) (\(other)); the board's FPGA is \(o.boardPart.name) (0x\(hex32(o.boardPart.idcode))). Use --force only if you know better.")
            }
            if info.idcode == nil {
                throw BoardError(.wrongPart, "image writes no IDCODE; cannot check it is for \(o.boardPart.name). Use --force to write it anyway.")
            }
            if let p = info.part, let known = FPGAPart.byPartField(p), known != o.boardPart {
                throw BoardError(.wrongPart, "image is for part \(p); the board's FPGA is \(o.boardPart.name). Use --force only if you know better.")
            }
        }
        guard o.slot != 0 || o.golden else {
            throw BoardError(.refused, "slot 0 holds the golden image the board falls back to; write it only with --golden")
        }
        guard bit.payload.count <= FlashLayout.slotBytes else {
            throw BoardError(.image, "image is \(bit.payload.count) bytes, a slot holds \(FlashLayout.slotBytes)")
        }
        do throws(BoardError) {
            return try write(bit, options: o, progress: progress)
        } catch {
            // Never leave the FPGA held in reset: let it boot whatever slot 0 holds.
            try? link.releaseReset()
            throw error
        }
    }

    func write(_ bit: Bitstream, options o: FlashOptions, progress: FlashProgress?) throws(BoardError) -> FlashReport {
        let tr = link.transport
        let c0 = tr.counters(.a), t0 = tr.modelledSeconds
        try link.holdInReset()
        let part = try identify()
        let address = FlashLayout.slotAddress(o.slot)
        guard address + FlashLayout.slotBytes <= part.sizeBytes else {
            throw BoardError(.refused, "slot \(o.slot) lies beyond the \(part.sizeBytes >> 20) MiB flash (slots 0...\(FlashLayout.slotCount(flashBytes: part.sizeBytes) - 1))")
        }
        var report = FlashReport(flashPart: part.name, slot: o.slot, address: address, imageBytes: bit.payload.count)
        report.dryRun = o.dryRun
        let sectorBytes = part.sectorBytes
        let sectors = (bit.payload.count + sectorBytes - 1) / sectorBytes
        func payload(sector k: Int) -> [UInt8] { Array(bit.payload[(k * sectorBytes)..<min(bit.payload.count, (k + 1) * sectorBytes)]) }
        // Release PROGRAM_B so the FPGA configures again, whether or not anything was written.
        func finish() throws(BoardError) -> FlashReport {
            try link.releaseReset()
            report.done = try link.waitForConfiguration().done
            fill(&report, c0, t0)
            return report
        }
        var toWrite: [Int] = []
        for k in 0..<sectors {
            let a = address + k * sectorBytes
            var want = payload(sector: k)
            want += [UInt8](repeating: 0xFF, count: sectorBytes - want.count)
            let have = try read(a, count: sectorBytes) { _, d, t in progress?("compare", k * sectorBytes + d, sectors * sectorBytes) }
            if have == want { report.sectorsSkipped.append(a) } else { toWrite.append(k) }
        }
        if o.dryRun {
            report.sectorsErased = toWrite.map { address + $0 * sectorBytes }
            return try finish()
        }
        let tErase0 = tr.modelledSeconds
        for (i, k) in toWrite.enumerated() {
            try eraseSector(address + k * sectorBytes)
            report.sectorsErased.append(address + k * sectorBytes)
            progress?("erase", i + 1, toWrite.count)
        }
        let tProg0 = tr.modelledSeconds
        for k in toWrite {
            report.pagesProgrammed += try program(address + k * sectorBytes, payload(sector: k), pagesPerBuffer: o.pagesPerBuffer) { _, d, t in
                progress?("program", d, t)
            }
        }
        let tVer0 = tr.modelledSeconds
        if let a = tErase0, let b = tProg0 { report.eraseSeconds = b - a }
        if let a = tProg0, let b = tVer0 { report.programSeconds = b - a }
        if o.verify {
            let back = try read(address, count: bit.payload.count) { _, d, t in progress?("verify", d, t) }
            if let k = bit.payload.indices.first(where: { back[$0] != bit.payload[$0] }) {
                throw BoardError(.verify, "verify failed: flash differs from the image at address 0x\(String(address + k, radix: 16)) (wrote 0x\(String(bit.payload[k], radix: 16)), read 0x\(String(back[k], radix: 16)))", address: address + k)
            }
            report.verified = true
            if let a = tVer0, let b = tr.modelledSeconds { report.verifySeconds = b - a }
        }
        return try finish()
    }

    /// Reads a slot back and compares it with an image (for `flash --verify-only` and tests).
    public func verify(_ bit: Bitstream, slot: Int) throws(BoardError) -> Int? {
        try link.holdInReset()
        _ = try identify()
        let address = FlashLayout.slotAddress(slot)
        let back = try read(address, count: bit.payload.count)
        try link.releaseReset()
        _ = try link.waitForConfiguration()
        return bit.payload.indices.first { back[$0] != bit.payload[$0] }.map { address + $0 }
    }

    func fill(_ r: inout FlashReport, _ c0: LinkCounters, _ t0: Double?) {
        let c = link.transport.counters(.a)
        r.roundTrips = c.roundTrips - c0.roundTrips
        r.bytesOut = c.bytesOut - c0.bytesOut
        r.bytesIn = c.bytesIn - c0.bytesIn
        if let t0, let t = link.transport.modelledSeconds { r.totalSeconds = t - t0 }
    }
}
