// The host's view of the board over a `Transport`: pins, configuration (PROGRAM_B / DONE /
// INIT_B, multiboot), accelerator registers and the parameter upload.

/// A board operation failed; `message` says what happened and what to do.
public struct BoardError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case link(LinkError.Kind), notConfigured, noAccelerator, wrongPart, verify, crc, identity, image, refused, timeout
    }
    public var kind: Kind
    public var message: String
    /// First mismatching address of a verify, when there is one.
    public var address: Int?
    public init(_ kind: Kind, _ message: String, address: Int? = nil) {
        self.kind = kind
        self.message = message
        self.address = address
    }
    public init(_ e: LinkError) { self.init(.link(e.kind), e.message) }
    public var description: String { message }
}

/// Levels of the configuration pins.
public struct ConfigPins: Sendable, Equatable, Codable {
    public var programB: Bool
    public var initB: Bool
    public var done: Bool
    public var busy: Bool
}

/// Outcome of `boot`.
public struct BootReport: Sendable, Equatable, Codable {
    public var requestedSlot: Int
    public var requestedAddress: Int
    public var done: Bool
    public var initB: Bool
    public var loadedAddress: Int?
    public var fallback: Bool
    public var seconds: Double?
}

public final class BoardLink {
    public let transport: Transport
    /// How this board is configured and flashed (the accelerator is the same on every board).
    public let profile: BoardProfile
    var scratch = MPSSEBuffer(capacity: 70_000)

    public init(transport: Transport, profile: BoardProfile = .xc7s15Gateway) {
        self.transport = transport
        self.profile = profile
    }

    public func run(_ channel: Channel = .a, _ build: (inout MPSSEBuffer) -> Void) throws(BoardError) -> [UInt8] {
        scratch.removeAll()
        build(&scratch)
        do throws(LinkError) {
            return try transport.execute(channel, scratch)
        } catch {
            throw BoardError(error)
        }
    }

    // MARK: pins and configuration

    /// PROGRAM_B/INIT_B/DONE on the 7-series board. On the iCE40 board `programB` is CRESET_B,
    /// `done` is CDONE, and `initB` is always true (the iCE40 has no error pin: a failed
    /// configuration leaves CDONE low).
    func decodePins(_ low: UInt8, _ high: UInt8) -> ConfigPins {
        switch profile.resetLine {
        case .programBOnACBUS0:
            ConfigPins(programB: high & PinAHigh.programB != 0, initB: low & PinA.initB != 0,
                       done: low & PinA.done != 0, busy: low & PinA.busy != 0)
        case .cresetOnADBUS7:
            ConfigPins(programB: low & PinA.cresetB != 0, initB: true, done: low & PinA.cdone != 0, busy: low & PinA.busy != 0)
        }
    }

    public func pins() throws(BoardError) -> ConfigPins {
        let r = try run { b in b.readLow(); b.readHigh(); b.sendImmediate() }
        return decodePins(r[0], r[1])
    }

    /// Holds the FPGA in reset: it lets go of the flash, which the host may then drive.
    public func holdInReset() throws(BoardError) {
        _ = try run { b in
            switch profile.resetLine {
            case .programBOnACBUS0:
                b.setLow(value: PinA.idleValue, direction: PinA.busDirection)
                b.setHigh(value: 0, direction: PinAHigh.direction)
            case .cresetOnADBUS7:
                // CRESET_B driven low (value bit 7 = 0) together with the idle bus.
                b.setLow(value: PinA.idleValue, direction: PinA.busDirection | PinA.cresetB)
            }
            b.idle(bits: 8 * 64)   // T_PROGRAM >= 250 ns (iCE40 t_CRESET_B >= 200 ns)
        }
    }

    /// Releases the reset with the shared flash lines tristated; the FPGA loads its power-on image.
    public func releaseReset() throws(BoardError) {
        _ = try run { b in
            b.setLow(value: PinA.accCS, direction: PinA.configDirection)
            if profile.resetLine == .programBOnACBUS0 {
                b.setHigh(value: PinAHigh.programB, direction: PinAHigh.direction)
            }
        }
    }

    /// Polls DONE / INIT_B until DONE rises, INIT_B reports an error, or `timeout` modelled /
    /// wall seconds pass. Each poll is one round trip with ~10 ms of idle clocks in front of it.
    public func waitForConfiguration(timeout: Double = 2.0) throws(BoardError) -> ConfigPins {
        var waited = 0.0
        while true {
            let r = try run { b in
                b.idle(bits: 8 * 37_500)   // 10 ms at 30 MHz
                b.readLow(); b.readHigh(); b.sendImmediate()
            }
            waited += 0.01
            let p = decodePins(r[0], r[1])
            if p.done || (!p.initB && waited > 0.02) || waited >= timeout {
                _ = try run { b in b.setLow(value: PinA.idleValue, direction: PinA.busDirection) }
                return p
            }
        }
    }

    /// Configures from `slot`. The slot is checked against the flash on the board first (which
    /// needs the FPGA held in reset, so the power-on image loads on the way). Slot 0: that is all.
    /// Other slots: write MULTIBOOT_ADDR and REBOOT; on the 7-series a failed slot falls back to
    /// golden by itself (BOOT_STATUS says so); the iCE40 has no fallback, so a slot that leaves
    /// CDONE low is answered by pulsing CRESET_B (golden again) and reported as a fallback.
    public func boot(slot: Int) throws(BoardError) -> BootReport {
        let t0 = transport.modelledSeconds
        guard slot >= 0 else {
            throw BoardError(.refused, "slot \(slot) does not exist; slots are numbered from 0 (the golden image)")
        }
        try holdInReset()
        let address: Int
        do throws(BoardError) {
            let part = try Flasher(link: self).identify()
            address = try profile.layout.address(slot: slot, flashBytes: part.sizeBytes)
            // MULTIBOOT_ADDR carries 24 bits (docs/register-map.md): a slot beyond 16 MiB can be
            // written but not booted; refuse rather than boot the image 16 MiB below it.
            guard profile.family == .ice40 || address < 1 << 24 else {
                throw BoardError(.refused, "slot \(slot) starts at 0x\(String(address, radix: 16)); MULTIBOOT_ADDR holds 24 bits, so only slots below 16 MiB (0...15) can be booted")
            }
        } catch {
            try? releaseReset()
            _ = try? waitForConfiguration()
            throw error
        }
        var report = BootReport(requestedSlot: slot, requestedAddress: address, done: false, initB: false,
                                loadedAddress: nil, fallback: false, seconds: nil)
        try releaseReset()
        let p = try waitForConfiguration()
        report.done = p.done
        report.initB = p.initB
        if !p.done || slot == 0 {
            if p.done, try acceleratorPresent() { report.loadedAddress = try info().bootAddress }
            report.seconds = t0.flatMap { a in transport.modelledSeconds.map { $0 - a } }
            return report
        }
        // iCE40: the RTL drives SB_WARMBOOT's S1:S0 from MULTIBOOT_ADDR[1:0] (the image number).
        let target = profile.family == .ice40 ? UInt32(slot) : UInt32(address)
        _ = try run { b in
            b.accWrite32(Reg.multibootAddress, target)
            b.accWrite32(Reg.reboot, Reg.rebootKey)
        }
        let q = try waitForConfiguration()
        report.done = q.done
        report.initB = q.initB
        if !q.done && profile.family == .ice40 {
            try holdInReset()
            try releaseReset()
            let g = try waitForConfiguration()
            report.done = g.done
            report.initB = g.initB
            report.fallback = true
        }
        if report.done, try acceleratorPresent() {
            let info = try info()
            report.loadedAddress = info.bootAddress
            report.fallback = report.fallback || info.fallback
        }
        report.seconds = t0.flatMap { a in transport.modelledSeconds.map { $0 - a } }
        return report
    }

    // MARK: accelerator registers

    public func readAccelerator(_ address: Int, count: Int) throws(BoardError) -> [UInt8] {
        var out: [UInt8] = []
        var a = address
        while out.count < count {
            let n = min(60 << 10, count - out.count)
            out += try run { b in b.accRead(a, count: n); b.sendImmediate() }
            a += n
        }
        return out
    }

    public func writeAccelerator(_ address: Int, _ data: [UInt8]) throws(BoardError) {
        var k = 0
        while k < data.count {
            let n = min(60 << 10, data.count - k)
            _ = try run { b in b.accWrite(address + k, data[k..<(k + n)]) }
            k += n
        }
    }

    public func acceleratorPresent() throws(BoardError) -> Bool {
        let r = try readAccelerator(Reg.id, count: 8)
        return readLE32(r, 0) == Reg.idValue
    }

    public func info() throws(BoardError) -> AcceleratorInfo {
        let r = try readAccelerator(0, count: 0x60)
        let present = readLE32(r, 0) == Reg.idValue
        let st = readLE32(r, Reg.status)
        let v = readLE32(r, Reg.version)
        let s0 = readLE32(r, Reg.shape0), s1 = readLE32(r, Reg.shape1)
        let boot = readLE32(r, Reg.bootStatus)
        return AcceleratorInfo(
            present: present, version: present ? "\(v >> 16).\(v & 0xFFFF)" : nil, versionWord: present ? v : 0, status: st,
            busy: st & Reg.busy != 0, done: st & Reg.done != 0, error: st & Reg.error != 0,
            errorCode: Int((st >> 8) & 0xFF), paramsValid: st & Reg.paramsValid != 0,
            sequence: readLE32(r, Reg.sequence), bootAddress: Int(boot >> 8), fallback: boot & 1 != 0,
            paramLength: Int(readLE32(r, Reg.paramLength)), paramCRC: readLE32(r, Reg.paramCRC),
            paramCapacity: Int(readLE32(r, Reg.paramCapacity)),
            shape: ["window": Int(s0 & 0xFFFF), "features": Int(s0 >> 16), "d_model": Int(s1 & 0xFF),
                    "heads": Int((s1 >> 8) & 0xFF), "layers": Int((s1 >> 16) & 0xFF), "horizon": Int(s1 >> 24)],
            cycles: readLE32(r, Reg.cycles), clockHz: readLE32(r, Reg.clockHz),
            modelID: hex(r[Reg.modelID..<(Reg.modelID + 32)]))
    }

    // MARK: parameter upload (register-map.md §6.5)

    public struct UploadReport: Sendable, Equatable, Codable {
        public var bytes: Int
        public var crc: UInt32
        public var deviceCRC: UInt32
        public var identity: String
        public var seconds: Double?
        public var roundTrips: Int
    }

    /// Writes the image, has the accelerator check its CRC, reads it back, sets and checks the
    /// identity. Any failure leaves PARAMS_VALID clear, so the FPGA engine refuses to run.
    public func upload(image: [UInt8], identity: [UInt8]) throws(BoardError) -> UploadReport {
        precondition(identity.count == 32)
        let t0 = transport.modelledSeconds, rt0 = transport.counters(.a).roundTrips
        guard try acceleratorPresent() else {
            throw BoardError(.noAccelerator, "no accelerator answers on SPI (ID register is not AIOT); run `aiotctl boot` first")
        }
        let info0 = try info()
        // A 1.0 bitstream has no skip path: it would refuse the format 2 header (error 0x04);
        // say why, and what to do, before writing anything.
        if ParameterImage.formatVersion(image) == ParameterImage.skipVersion && info0.versionWord < ParameterImage.skipPathAcceleratorVersion {
            throw BoardError(.image, ParameterImage.v2Refusal(acceleratorVersion: info0.version ?? "?"))
        }
        guard image.count <= info0.paramCapacity else {
            throw BoardError(.image, "parameter image is \(image.count) bytes, the accelerator holds \(info0.paramCapacity)")
        }
        let crc = CRC32.checksum(image)
        try writeAccelerator(Reg.params, image)
        _ = try run { b in
            b.accWrite32(Reg.control, Reg.clearError)
            b.accWrite32(Reg.paramLength, UInt32(image.count))
            b.accWrite32(Reg.paramExpectedCRC, crc)
            b.accWrite32(Reg.control, Reg.verifyParams)
        }
        var st = try info()
        var polls = 0
        while st.status & Reg.verifying != 0 && polls < 100 { st = try info(); polls += 1 }
        guard st.paramCRC == crc, st.paramsValid else {
            let why = st.errorCode == 0x04 ? "the accelerator refused the image: its header or shape does not match (accelerator shape \(st.shape)) or its integers break a bound of docs/arithmetic.md §6"
                : "CRC-32 over \(image.count) bytes is 0x\(hex32(st.paramCRC)) on the device, 0x\(hex32(crc)) on the host"
            throw BoardError(.crc, "weights upload failed: \(why); inference stays disabled. Retry the upload.")
        }
        let back = try readAccelerator(Reg.params, count: image.count)
        if let k = image.indices.first(where: { back[$0] != image[$0] }) {
            throw BoardError(.verify, "weights readback differs at 0x\(String(Reg.params + k, radix: 16))", address: Reg.params + k)
        }
        try writeAccelerator(Reg.modelID, identity)
        let id = try readAccelerator(Reg.modelID, count: 32)
        guard id == identity else { throw BoardError(.identity, "model identity readback differs; retry the upload") }
        let tr = transport.modelledSeconds
        return UploadReport(bytes: image.count, crc: crc, deviceCRC: st.paramCRC, identity: hex(identity[...]),
                            seconds: t0.flatMap { a in tr.map { $0 - a } },
                            roundTrips: transport.counters(.a).roundTrips - rt0)
    }
}

func hex(_ b: ArraySlice<UInt8>) -> String {
    let d = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for x in b { out.append(d[Int(x >> 4)]); out.append(d[Int(x & 15)]) }
    return String(decoding: out, as: UTF8.self)
}
func hex32(_ v: UInt32) -> String { let s = String(v, radix: 16); return String(repeating: "0", count: 8 - s.count) + s }
