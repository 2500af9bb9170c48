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
    var scratch = MPSSEBuffer(capacity: 70_000)

    public init(transport: Transport) { self.transport = transport }

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

    public func pins() throws(BoardError) -> ConfigPins {
        let r = try run { b in b.readLow(); b.readHigh(); b.sendImmediate() }
        return ConfigPins(programB: r[1] & PinAHigh.programB != 0, initB: r[0] & PinA.initB != 0,
                          done: r[0] & PinA.done != 0, busy: r[0] & PinA.busy != 0)
    }

    /// Holds the FPGA in reset: it lets go of the flash, which the host may then drive.
    public func holdInReset() throws(BoardError) {
        _ = try run { b in
            b.setLow(value: PinA.idleValue, direction: PinA.busDirection)
            b.setHigh(value: 0, direction: PinAHigh.direction)
            b.idle(bits: 8 * 64)   // T_PROGRAM >= 250 ns; INIT_B follows
        }
    }

    /// Releases PROGRAM_B with the shared flash lines tristated; the FPGA loads slot 0.
    public func releaseReset() throws(BoardError) {
        _ = try run { b in
            b.setLow(value: PinA.accCS, direction: PinA.configDirection)
            b.setHigh(value: PinAHigh.programB, direction: PinAHigh.direction)
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
            let p = ConfigPins(programB: r[1] & PinAHigh.programB != 0, initB: r[0] & PinA.initB != 0,
                               done: r[0] & PinA.done != 0, busy: r[0] & PinA.busy != 0)
            if p.done || (!p.initB && waited > 0.02) || waited >= timeout {
                _ = try run { b in b.setLow(value: PinA.idleValue, direction: PinA.busDirection) }
                return p
            }
        }
    }

    /// Configures from `slot`. Slot 0: pulse PROGRAM_B. Other slots: make sure a design with the
    /// register map runs (golden), then write MULTIBOOT_ADDR and REBOOT; a failed slot falls back
    /// to golden, which BOOT_STATUS reports.
    public func boot(slot: Int) throws(BoardError) -> BootReport {
        let t0 = transport.modelledSeconds
        let address = FlashLayout.slotAddress(slot)
        var report = BootReport(requestedSlot: slot, requestedAddress: address, done: false, initB: false,
                                loadedAddress: nil, fallback: false, seconds: nil)
        let present = try acceleratorPresent()
        let needPulse = slot == 0 || !present
        if needPulse {
            try holdInReset()
            try releaseReset()
            let p = try waitForConfiguration()
            report.done = p.done
            report.initB = p.initB
            if !p.done {
                report.seconds = t0.flatMap { a in transport.modelledSeconds.map { $0 - a } }
                return report
            }
        }
        if slot != 0 {
            _ = try run { b in
                b.accWrite32(Reg.multibootAddress, UInt32(address))
                b.accWrite32(Reg.reboot, Reg.rebootKey)
            }
            let p = try waitForConfiguration()
            report.done = p.done
            report.initB = p.initB
        }
        if report.done, try acceleratorPresent() {
            let info = try info()
            report.loadedAddress = info.bootAddress
            report.fallback = info.fallback
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
            present: present, version: present ? "\(v >> 16).\(v & 0xFFFF)" : nil, status: st,
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
