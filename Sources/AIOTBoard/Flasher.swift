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
    /// Nil: the board profile's FPGA.
    public var boardPart: FPGAPart?
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
            flashFrame(&b, FlashCommand.readID, read: 6)
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
        guard let p = part else { throw BoardError(.notConfigured, "identify the flash first") }
        try checkRange(address, count, p)
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let n = min(60 << 10, count - out.count)
            let a = address + out.count
            out += try link.run { b in
                flashFrame(&b, p.readOpcode, address: a, read: n)
                b.sendImmediate()
            }
            progress?("read", out.count, count)
        }
        return out
    }

    /// Every flash address the flasher sends lies on the part: nothing relies on the chip's own
    /// wrap-around at the end of its 3- or 4-byte address space.
    func checkRange(_ address: Int, _ count: Int, _ p: FlashPart) throws(BoardError) {
        guard address >= 0, count >= 0, address + count <= p.sizeBytes else {
            throw BoardError(.refused, "flash range 0x\(String(address, radix: 16)) + \(count) lies outside the \(p.sizeBytes >> 20) MiB \(p.name)")
        }
    }

    /// ADBUS direction while the FPGA is held in reset: the SPI bus, both chip selects and, on the
    /// iCE40 board, CRESET_B driven low (its value bit is 0 in every value below).
    var busDirection: UInt8 { PinA.busDirection | link.profile.resetHoldMask }

    /// One flash transaction: chip select, the opcode and its address (3 or 4 bytes, as the part
    /// needs) if any, `read` reply bytes, deselect.
    func flashFrame(_ b: inout MPSSEBuffer, _ op: UInt8, address: Int? = nil, read: Int = 0) {
        let addressBytes = part?.addressBytes ?? 3
        b.setLow(value: PinA.accCS, direction: busDirection)
        b.writeHeader(count: address == nil ? 1 : 1 + addressBytes)
        b.appendData(op)
        if let address { appendFlashAddress(&b, address, addressBytes) }
        if read > 0 { b.read(count: read) }
        b.setLow(value: PinA.idleValue, direction: busDirection)
    }

    func appendFlashAddress(_ b: inout MPSSEBuffer, _ a: Int, _ n: Int) {
        for k in stride(from: n - 1, through: 0, by: -1) { b.appendData(UInt8(truncatingIfNeeded: a >> (8 * k))) }
    }

    func status(_ b: inout MPSSEBuffer) { flashFrame(&b, FlashCommand.readStatus, read: 1) }

    /// Polls RDSR with `interval` seconds of idle clocks per round trip until WIP clears.
    func waitReady(interval: Double, timeout: Double, what: String) throws(BoardError) -> UInt8 {
        var waited = 0.0
        let bits = Int(interval * 30e6)
        while true {
            let r = try link.run { b in b.idle(bits: bits); status(&b); b.sendImmediate() }
            waited += interval
            if r[0] & FlashCommand.wip == 0 { return r[0] }
            if waited > timeout { throw BoardError(.timeout, "flash still busy after \(what) (\(timeout) s); power-cycle the board") }
        }
    }

    public func eraseSector(_ address: Int) throws(BoardError) {
        guard let part else { throw BoardError(.notConfigured, "identify the flash first") }
        try checkRange(address, part.sectorBytes, part)
        let st = try link.run { b in
            flashFrame(&b, FlashCommand.writeEnable)
            flashFrame(&b, part.sectorEraseOpcode, address: address)
            status(&b)
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
        try checkRange(address, data.count, part)
        let pb = part.pageBytes
        let dir = busDirection
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
                    flashFrame(&b, FlashCommand.writeEnable)
                    b.setLow(value: PinA.accCS, direction: dir)
                    let chunk = data[(p * pb)..<min(data.count, p * pb + pb)]
                    b.writeHeader(count: 1 + part.addressBytes + chunk.count)
                    b.appendData(part.programOpcode)
                    appendFlashAddress(&b, a, part.addressBytes)
                    for x in chunk { b.appendData(x) }
                    b.setLow(value: PinA.idleValue, direction: dir)
                    b.idle(bits: waitBits)
                    status(&b)
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
        let profile = link.profile
        let boardPart = o.boardPart ?? profile.fpga
        // Slot checks that need no board come first: a refused slot never touches the flash.
        guard o.slot >= 0 else {
            throw BoardError(.refused, "slot \(o.slot) does not exist; slots are numbered from 0 (the golden image)")
        }
        guard o.slot != 0 || o.golden else {
            throw BoardError(.refused, "slot 0 holds the golden image the board falls back to; write it only with --golden")
        }
        guard !o.golden || o.slot == 0 else {
            throw BoardError(.refused, "--golden writes slot 0; do not combine it with --slot \(o.slot)")
        }
        if !o.force { try checkPart(bit.info, boardPart) }
        guard bit.payload.count <= profile.layout.slotBytes else {
            throw BoardError(.image, "image is \(bit.payload.count) bytes, a slot holds \(profile.layout.slotBytes)")
        }
        do throws(BoardError) {
            return try write(bit, options: o, progress: progress)
        } catch {
            // Never leave the FPGA held in reset: let it boot whatever slot 0 holds.
            try? link.releaseReset()
            throw error
        }
    }

    func checkPart(_ info: BitstreamInfo, _ boardPart: FPGAPart) throws(BoardError) {
        guard info.family == boardPart.family else {
            throw BoardError(.wrongPart, "image is a \(info.family == .ice40 ? "Lattice iCE40" : "Xilinx 7-series") bitstream; the board's FPGA is \(boardPart.name). Use --force only if you know better.")
        }
        if info.family == .ice40 {
            guard let d = info.ice40?.device else {
                throw BoardError(.wrongPart, "iCE40 image of unknown device (CRAM \(info.ice40?.cramWidth ?? 0) x \(info.ice40?.cramHeight ?? 0)); cannot check it is for \(boardPart.name). Use --force to write it anyway.")
            }
            guard d == boardPart.name else {
                throw BoardError(.wrongPart, "image is for \(d); the board's FPGA is \(boardPart.name). Use --force only if you know better.")
            }
            guard info.ice40?.bootAddress == nil else {
                throw BoardError(.image, "this file is an iCE40 multi-image boot header, not a configuration; flash a plain icepack .bin (the header is written with --golden)")
            }
            guard info.crcOK else { throw BoardError(.image, "iCE40 image CRC mismatch: the file is corrupt; rebuild it with icepack") }
            return
        }
        if let id = info.idcode, (id & 0x0FFF_FFFF) != (boardPart.idcode & 0x0FFF_FFFF) {
            let other = FPGAPart.byIDCODE(id)?.name ?? "an unknown part"
            throw BoardError(.wrongPart, "image writes IDCODE 0x\(hex32(id)) (\(other)); the board's FPGA is \(boardPart.name) (0x\(hex32(boardPart.idcode))). Use --force only if you know better.")
        }
        if info.idcode == nil {
            throw BoardError(.wrongPart, "image writes no IDCODE; cannot check it is for \(boardPart.name). Use --force to write it anyway.")
        }
        if let p = info.part, let known = FPGAPart.byPartField(p), known != boardPart {
            throw BoardError(.wrongPart, "image is for part \(p); the board's FPGA is \(boardPart.name). Use --force only if you know better.")
        }
    }

    /// What goes where: the image at its slot and, with the golden image on a board that has one,
    /// the boot header at address 0.
    func regions(_ bit: Bitstream, slotAddress: Int, golden: Bool) -> [(address: Int, bytes: [UInt8])] {
        var r = [(address: slotAddress, bytes: bit.payload)]
        if golden, link.profile.layout.headerBytes != nil {
            r.insert((address: 0, bytes: ICE40Bitstream.header(layout: link.profile.layout)), at: 0)
        }
        return r
    }

    func write(_ bit: Bitstream, options o: FlashOptions, progress: FlashProgress?) throws(BoardError) -> FlashReport {
        let tr = link.transport
        let c0 = tr.counters(.a), t0 = tr.modelledSeconds
        try link.holdInReset()
        let part = try identify()
        let address = try link.profile.layout.address(slot: o.slot, flashBytes: part.sizeBytes)
        var report = FlashReport(flashPart: part.name, slot: o.slot, address: address, imageBytes: bit.payload.count)
        report.dryRun = o.dryRun
        let sectorBytes = part.sectorBytes
        // Release the reset so the FPGA configures again, whether or not anything was written.
        func finish() throws(BoardError) -> FlashReport {
            try link.releaseReset()
            report.done = try link.waitForConfiguration().done
            fill(&report, c0, t0)
            return report
        }
        // Sectors to consider: those covering each region, with the wanted content (region bytes,
        // FF elsewhere: a sector shared by two regions is never the case in either layout).
        var plan: [(address: Int, want: [UInt8])] = []
        for region in regions(bit, slotAddress: address, golden: o.golden) {
            let first = region.address / sectorBytes * sectorBytes
            var a = first
            while a < region.address + region.bytes.count {
                var want = [UInt8](repeating: 0xFF, count: sectorBytes)
                let lo = max(a, region.address), hi = min(a + sectorBytes, region.address + region.bytes.count)
                for k in lo..<hi { want[k - a] = region.bytes[k - region.address] }
                plan.append((a, want))
                a += sectorBytes
            }
        }
        var toWrite: [Int] = []
        for (i, sector) in plan.enumerated() {
            let have = try read(sector.address, count: sectorBytes) { _, d, _ in progress?("compare", i * sectorBytes + d, plan.count * sectorBytes) }
            if have == sector.want { report.sectorsSkipped.append(sector.address) } else { toWrite.append(i) }
        }
        if o.dryRun {
            report.sectorsErased = toWrite.map { plan[$0].address }
            return try finish()
        }
        let tErase0 = tr.modelledSeconds
        for (i, k) in toWrite.enumerated() {
            try eraseSector(plan[k].address)
            report.sectorsErased.append(plan[k].address)
            progress?("erase", i + 1, toWrite.count)
        }
        let tProg0 = tr.modelledSeconds
        for k in toWrite {
            report.pagesProgrammed += try program(plan[k].address, plan[k].want, pagesPerBuffer: o.pagesPerBuffer) { _, d, t in
                progress?("program", d, t)
            }
        }
        let tVer0 = tr.modelledSeconds
        if let a = tErase0, let b = tProg0 { report.eraseSeconds = b - a }
        if let a = tProg0, let b = tVer0 { report.programSeconds = b - a }
        if o.verify {
            for region in regions(bit, slotAddress: address, golden: o.golden) {
                let back = try read(region.address, count: region.bytes.count) { _, d, t in progress?("verify", d, t) }
                if let k = region.bytes.indices.first(where: { back[$0] != region.bytes[$0] }) {
                    throw BoardError(.verify, "verify failed: flash differs from the image at address 0x\(String(region.address + k, radix: 16)) (wrote 0x\(String(region.bytes[k], radix: 16)), read 0x\(String(back[k], radix: 16)))", address: region.address + k)
                }
            }
            report.verified = true
            if let a = tVer0, let b = tr.modelledSeconds { report.verifySeconds = b - a }
        }
        return try finish()
    }

    /// Reads a slot back and compares it with an image (for `flash --verify-only` and tests).
    public func verify(_ bit: Bitstream, slot: Int) throws(BoardError) -> Int? {
        try link.holdInReset()
        do throws(BoardError) {
            let part = try identify()
            let address = try link.profile.layout.address(slot: slot, flashBytes: part.sizeBytes)
            let back = try read(address, count: bit.payload.count)
            try link.releaseReset()
            _ = try link.waitForConfiguration()
            return bit.payload.indices.first { back[$0] != bit.payload[$0] }.map { address + $0 }
        } catch {
            try? link.releaseReset()
            throw error
        }
    }

    func fill(_ r: inout FlashReport, _ c0: LinkCounters, _ t0: Double?) {
        let c = link.transport.counters(.a)
        r.roundTrips = c.roundTrips - c0.roundTrips
        r.bytesOut = c.bytesOut - c0.bytesOut
        r.bytesIn = c.bytesIn - c0.bytesIn
        if let t0, let t = link.transport.modelledSeconds { r.totalSeconds = t - t0 }
    }
}
