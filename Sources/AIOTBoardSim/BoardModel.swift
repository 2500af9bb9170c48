// A faithful model of a board behind the same `Transport` the FT2232H uses: it executes the MPSSE
// byte streams the hardware would get. Two boards (AIOTBoard's `BoardProfile`):
// - the XC7S15 gateway: channel A SPI to an S25FL128S or S25FL256S (32 MiB: 3-byte commands reach
//   only the lower 16 MiB, the 4-byte ones all of it), only while PROGRAM_B is held low, and to the
//   accelerator register map; PROGRAM_B / INIT_B / DONE / BUSY and 7-series configuration from the
//   flash with multiboot fallback. Channel B: I2C to two PAC1934 monitors.
// - the iCEBreaker-class iCE40UP5K board: W25Q128JV flash, CRESET_B (ADBUS7) / CDONE (ADBUS6),
//   cold boot through the icemulti header at address 0, warm boot to images 0-3, no fallback, no
//   power monitors.
// Time is simulated; state can persist in a file so that separate `aiotctl` runs act on one board.
// Faults can be injected to test the host's error paths.
import AIOTBoard
import AIOTModel
import Foundation

/// Faults the model injects; all counters are armed from the moment they are set.
public struct BoardFaults: Sendable, Codable, Equatable {
    /// The USB device vanishes after this many more command bytes (mid-buffer); it stays gone until
    /// `reappear()`.
    public var disappearAfterBytes: Int?
    /// Flips bit 0 of the N-th SPI byte the host sends to a slave (MOSI), counted from 0.
    public var flipMOSIByte: Int?
    /// Flips bit 0 of the N-th byte the host reads back, counted from 0.
    public var flipMISOByte: Int?
    /// The accelerator never finishes: BUSY stays high.
    public var stallBusy = false
    /// Board power fails when the flash has received this many page-program data bytes: the page
    /// being programmed is torn at that byte and everything volatile is lost.
    public var powerLossAtFlashByte: Int?
    public init() {}
}

/// Rails on the two PAC1934 monitors: (I2C address, channel) -> rail.
public struct Rail: Sendable, Codable, Equatable {
    public var name: String
    public var volts: Double
    public var idleAmps: Double
    public var busyAmps: Double
    /// Current when the FPGA is not configured.
    public var unconfiguredAmps: Double
}

public final class BoardModel: Transport {
    // MARK: persistent state
    struct FlashState: Codable {
        var busyUntil = 0.0
        var wel = false
        var status: UInt8 = 0
        var programmedBytes = 0     // page-program data bytes received (fault counter)
    }
    struct FPGAState: Codable {
        /// Held in reset: PROGRAM_B low (7-series) or CRESET_B low (iCE40).
        var programBLow = false
        var configured = false
        var initBHigh = false
        var doneAt: Double?          // DONE rises at this time (configuration takes time)
        var loadedFrom = 0
        var fallback = false
        var lastError: String?
    }
    struct AccelState: Codable {
        var control = [UInt8](repeating: 0, count: 256)   // MULTIBOOT_ADDR, PARAM_LENGTH, ... MODEL_ID
        var paramsValid = false
        var error: UInt8 = 0
        var busy = false
        var busyUntil = 0.0
        var sequence: UInt32 = 0
        var result = [UInt8](repeating: 0, count: 256)
        var pendingResult: [UInt8]?
        var paramCRC: UInt32 = 0
        var cycles: UInt32 = 0
        var busySeconds = 0.0    // time spent computing since the last PAC refresh
    }
    struct PACState: Codable {
        var lastRefresh = 0.0
        var busyAtRefresh = 0.0
        var latchedCount: UInt32 = 0
        var latchedAcc = [UInt64](repeating: 0, count: 4)
        var latchedPower = [UInt32](repeating: 0, count: 4)
        var latchedVbus = [UInt16](repeating: 0, count: 4)
        var latchedVsense = [UInt16](repeating: 0, count: 4)
    }
    struct State: Codable {
        /// Board profile name and flash part (RDID) of this board.
        var board = BoardProfile.xc7s15Gateway.name
        var flashJEDEC = FlashPart.s25fl128s.jedec
        var time = 0.0
        var sckHz = [30_000_000.0, 400_000.0]
        var lowValue: [UInt8] = [PinA.idleValue, 0x03]
        var lowDirection: [UInt8] = [0, 0]
        var highValue: UInt8 = PinAHigh.programB
        var highDirection: UInt8 = 0
        var flash = FlashState()
        var fpga = FPGAState()
        var accel = AccelState()
        var pac = [PACState(), PACState()]
        var faults = BoardFaults()
        var vanished = false
        var hung = false
        var poweredOff = false
        var counters = [LinkCounters(), LinkCounters()]
        var synthesizedShape = ModelShape(window: 24, features: 1, dModel: 16, heads: 1, layers: 1, ffn: 64, horizon: 1)
        /// The bitstream's VERSION register; nil: the current RTL (`Reg.versionValue`).
        var acceleratorVersion: UInt32?
        var moSIBytes = 0
        var misoBytes = 0
        var commandBytes = 0
        var energyJoules = 0.0
    }

    var s = State()
    public private(set) var flash: [UInt8]
    var params: [UInt8]
    public private(set) var flashPart: FlashPart
    public private(set) var profile: BoardProfile
    public var device: FPGAPart { profile.fpga }
    var isICE40: Bool { profile.family == .ice40 }
    public static let paramCapacity = 32 << 10
    public static let acceleratorClockHz = 100_000_000.0
    /// The iCE40 core's clock: the shell's PLL from the 12 MHz oscillator (docs/hardware.md §5).
    public static let ice40ClockHz = 15_937_500.0
    /// This board's accelerator clock (CLOCK_HZ).
    public var clockHz: Double { isICE40 ? Self.ice40ClockHz : Self.acceleratorClockHz }
    /// Master SPI x1 configuration clock (COR0 ConfigRate); sets the modelled configuration time.
    public static let configClockHz = 33_000_000.0
    /// One USB round trip: the OUT bulk transfer and the IN reply after SEND_IMMEDIATE, at least
    /// two high-speed microframes; the FT2232H's latency timer is bypassed by 0x87.
    public static let roundTripSeconds = 250e-6
    /// USB 2.0 high-speed bulk payload rate the model assumes for long buffers.
    public static let usbBytesPerSecond = 40e6
    public static let readTimeoutSeconds = 1.0
    public let path: String?
    public var name: String { path.map { "sim:\($0)" } ?? "sim:(memory)" }
    public var modelledSeconds: Double? { s.time }
    /// The accelerator's datapath: the Swift software engine over the model in PARAM memory, so the
    /// board computes exactly what the contract says. It exists exactly while PARAMS_VALID is set:
    /// built when VERIFY_PARAMS accepts an image (or a saved board is loaded), dropped by any PARAM
    /// write, reset or reconfiguration. The image carries no scales or normalization, so the model
    /// gets neutral ones (`QuantizedModel(integers:)`); the accelerator never needs them: it takes
    /// quantized inputs and returns quantized outputs, and the host converts with its model file.
    private var engine: SoftwareEngine?
    /// Why the last parameter check refused an image whose CRC matched (header, shape, or a range
    /// or bound of docs/arithmetic.md §6); the host sees only error code 0x04.
    public private(set) var parameterRefusal: String?
    /// The loaded image is format 2 (the skip path runs).
    var skipPath = false

    public static let rails: [[Rail]] = [
        // PAC1934 at 0x11: FPGA rails; at 0x12: board rails. R_sense 0.82 ohm on every channel.
        [Rail(name: "VCCINT 1.0V", volts: 1.0, idleAmps: 0.030, busyAmps: 0.095, unconfiguredAmps: 0.008),
         Rail(name: "VCCAUX 1.8V", volts: 1.8, idleAmps: 0.012, busyAmps: 0.014, unconfiguredAmps: 0.010),
         Rail(name: "VCCO 3.3V", volts: 3.3, idleAmps: 0.004, busyAmps: 0.006, unconfiguredAmps: 0.002),
         Rail(name: "VCCBRAM 1.0V", volts: 1.0, idleAmps: 0.003, busyAmps: 0.011, unconfiguredAmps: 0.001)],
        [Rail(name: "FLASH 3.3V", volts: 3.3, idleAmps: 0.001, busyAmps: 0.001, unconfiguredAmps: 0.001),
         Rail(name: "FT2232H 3.3V", volts: 3.3, idleAmps: 0.025, busyAmps: 0.025, unconfiguredAmps: 0.025),
         Rail(name: "BOARD 5V", volts: 5.0, idleAmps: 0.060, busyAmps: 0.075, unconfiguredAmps: 0.040),
         Rail(name: "SPARE", volts: 0, idleAmps: 0, busyAmps: 0, unconfiguredAmps: 0)],
    ]
    var pacAddresses: [UInt8] { profile.powerMonitorAddresses }
    public static let senseOhms = 0.82

    /// A fresh board: blank flash, unconfigured FPGA. With `path`, state is loaded from and saved to
    /// it (a saved board keeps its own profile and flash part; the arguments apply to a new one).
    public init(path: String? = nil, profile: BoardProfile = .xc7s15Gateway, flash part: FlashPart? = nil) throws(LinkError) {
        self.path = path
        self.profile = profile
        flashPart = part ?? (profile.family == .ice40 ? .w25q128jv : .s25fl128s)
        s.board = profile.name
        s.flashJEDEC = flashPart.jedec
        flash = [UInt8](repeating: 0xFF, count: flashPart.sizeBytes)
        params = [UInt8](repeating: 0, count: Self.paramCapacity)
        if let path, FileManager.default.fileExists(atPath: path) { try load(path) }
    }

    // MARK: persistence: magic, JSON length, JSON, flash bytes, parameter memory

    static let fileMagic = Array("AIOTSIM1".utf8)

    func load(_ path: String) throws(LinkError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LinkError(.other, "cannot read simulated board state \(path)")
        }
        let b = [UInt8](data)
        guard b.count > 12, Array(b[0..<8]) == Self.fileMagic else {
            throw LinkError(.other, "\(path) is not a simulated board state file; remove it or pick another sim: path")
        }
        let n = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
        guard b.count >= 12 + n else {
            throw LinkError(.other, "\(path) is truncated or from another version; remove it to start a fresh board")
        }
        do {
            s = try JSONDecoder().decode(State.self, from: Data(b[12..<(12 + n)]))
        } catch {
            throw LinkError(.other, "\(path): bad board state (\(error)); remove it to start a fresh board")
        }
        guard let prof = BoardProfile.named(s.board), let part = AIOTBoard.flashPart(jedec: s.flashJEDEC) else {
            throw LinkError(.other, "\(path): unknown board \(s.board) or flash; remove it to start a fresh board")
        }
        profile = prof
        flashPart = part
        flash = [UInt8](repeating: 0xFF, count: part.sizeBytes)
        guard b.count == 12 + n + flash.count + params.count else {
            throw LinkError(.other, "\(path) is truncated or from another version; remove it to start a fresh board")
        }
        flash = Array(b[(12 + n)..<(12 + n + flash.count)])
        params = Array(b[(12 + n + flash.count)...])
        if s.accel.paramsValid { _ = loadParameters() }
    }

    /// Writes the state atomically (temp file + rename): an interrupted save never leaves half a board.
    public func save() throws(LinkError) {
        guard let path else { return }
        do {
            let json = [UInt8](try JSONEncoder().encode(s))
            var out = Self.fileMagic
            let n = json.count
            out += le32(UInt32(n))
            out += json
            out += flash
            out += params
            try Data(out).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw LinkError(.other, "cannot save simulated board state to \(path): \(error)")
        }
    }

    // MARK: test and CLI controls

    public var faults: BoardFaults {
        get { s.faults }
        set {
            s.faults = newValue
            s.moSIBytes = 0; s.misoBytes = 0; s.commandBytes = 0; s.flash.programmedBytes = 0
        }
    }
    /// The vanished device comes back (replugged).
    public func reappear() {
        s.vanished = false
        // A re-enumerated FT2232H starts with every pin an input: the pull-ups deselect both slaves.
        s.lowDirection = [0, 0]
        s.highDirection = 0
        selected = .none
    }
    public var isVanished: Bool { s.vanished }
    public var time: Double { s.time }
    public var synthesizedShape: ModelShape {
        get { s.synthesizedShape }
        set { s.synthesizedShape = newValue }
    }
    /// VERSION of the accelerator in the bitstream; 0x0001_0000 models a bitstream from before the
    /// skip path, which refuses format 2 images (contract v2) like that RTL does (error 0x04).
    /// The iCE40 core implements contract v1 only and reports VERSION 1.0.
    public var acceleratorVersion: UInt32 {
        get { s.acceleratorVersion ?? (isICE40 ? 0x0001_0000 : Reg.versionValue) }
        set { s.acceleratorVersion = newValue }
    }
    public var configured: Bool { s.fpga.configured }
    public var loadedFrom: Int { s.fpga.loadedFrom }
    public var fallback: Bool { s.fpga.fallback }
    public var lastConfigError: String? { s.fpga.lastError }
    /// Direct write into flash (a factory-programmed board); bypasses the SPI path.
    public func factoryProgram(_ bytes: [UInt8], at address: Int) {
        for (k, b) in bytes.enumerated() { flash[address + k] = b }
    }
    /// Flips one bit of the flash directly (a worn cell), for verify tests.
    public func corruptFlash(at address: Int) { flash[address] ^= 0x10 }
    /// Power cycle: everything volatile is lost; the FPGA configures from address 0.
    public func powerCycle() {
        s.poweredOff = false
        s.flash.busyUntil = s.time
        s.flash.wel = false
        resetAccelerator()
        // PROGRAM_B is an input with a pull-up on the FPGA side: if the host still drives it low,
        // the FPGA waits in reset.
        s.fpga = FPGAState()
        if resetPinLow() {
            s.fpga.programBLow = true
            return
        }
        configure(from: 0, multiboot: false)
    }

    /// Whether the host drives the reset pin low (PROGRAM_B on ACBUS0, or CRESET_B on ADBUS7).
    func resetPinLow() -> Bool {
        isICE40 ? !level(s.lowValue[0], s.lowDirection[0], PinA.cresetB, pull: true)
            : !level(s.highValue, s.highDirection, PinAHigh.programB, pull: true)
    }

    /// Follows the reset pin: asserting it stops the FPGA and frees the flash; releasing it loads
    /// the power-on image.
    func resetPinChanged() {
        let low = resetPinLow()
        if low && !s.fpga.programBLow {
            s.fpga.programBLow = true
            s.fpga.configured = false
            s.fpga.initBHigh = false
            s.fpga.doneAt = nil
            resetAccelerator()
        } else if !low && s.fpga.programBLow {
            s.fpga.programBLow = false
            configure(from: 0, multiboot: false)
        }
    }

    public func counters(_ channel: Channel) -> LinkCounters { s.counters[channel.rawValue] }

    public func recover() throws(LinkError) {
        if s.vanished { throw LinkError(.notFound, "no FTDI device (0403:6010) found; check the cable and the udev rule") }
        s.hung = false
        s.time += 0.01 // purge + MPSSE re-init, which drives the idle pin state again
        setLow(.a, value: PinA.idleValue, direction: PinA.busDirection)
        setLow(.b, value: PinB.scl | PinB.sdaOut, direction: PinB.scl | PinB.sdaOut)
    }

    // MARK: MPSSE execution

    public func execute(_ channel: Channel, _ commands: UnsafeRawBufferPointer,
                        reply: UnsafeMutableRawBufferPointer) throws(LinkError) {
        if s.vanished { throw LinkError(.notFound, "no FTDI device (0403:6010) found; check the cable and the udev rule") }
        if s.poweredOff { powerCycle() }
        if s.hung && channel == .a {
            s.time += Self.readTimeoutSeconds
            throw LinkError(.timeout, "the MPSSE engine is still waiting on BUSY; recover the link")
        }
        s.counters[channel.rawValue].roundTrips += 1
        s.counters[channel.rawValue].bytesOut += commands.count
        s.time += Self.roundTripSeconds + Double(commands.count + reply.count) / Self.usbBytesPerSecond
        var out = 0
        func emit(_ b: UInt8) throws(LinkError) {
            guard out < reply.count else {
                throw LinkError(.protocolError, "the command buffer returns more bytes than the caller expects (\(reply.count))")
            }
            var v = b
            if let k = s.faults.flipMISOByte, k == s.misoBytes { v ^= 0x01; s.faults.flipMISOByte = nil }
            s.misoBytes += 1
            reply[out] = v
            out += 1
        }
        var i = 0
        let n = commands.count
        func arg(_ k: Int) throws(LinkError) -> UInt8 {
            guard i + k < n else { throw LinkError(.protocolError, "MPSSE command 0x\(String(commands[i], radix: 16)) truncated") }
            return commands[i + k]
        }
        let ch = channel.rawValue
        let bitTime = { [s] in 1.0 / s.sckHz[ch] }
        func vanishIfDue(_ consumed: Int) throws(LinkError) {
            if let d = s.faults.disappearAfterBytes, s.commandBytes + consumed >= d {
                s.vanished = true
                s.faults.disappearAfterBytes = nil
                selected = .none
                throw LinkError(.disconnected, "FTDI device 0403:6010 stopped answering (unplugged or reset); replug it and retry")
            }
        }
        while i < n {
            try vanishIfDue(0)
            let opStart = i
            let op = commands[i]
            switch op {
            case MPSSE.setLow:
                let v = try arg(1), d = try arg(2)
                setLow(channel, value: v, direction: d)
                i += 3
            case MPSSE.setHigh:
                let v = try arg(1), d = try arg(2)
                if channel == .a { setHigh(value: v, direction: d) }
                i += 3
            case MPSSE.readLow:
                try emit(channel == .a ? pinsA() : pinsB())
                i += 1
            case MPSSE.readHigh:
                try emit(channel == .a ? (isICE40 ? s.highValue : (s.fpga.programBLow ? 0 : PinAHigh.programB)) : 0xFF)
                i += 1
            case 0x10, 0x11, 0x31, 0x34, 0x20, 0x24:
                let count = Int(try arg(1)) | Int(try arg(2)) << 8 + 1
                let writes = op & 0x10 != 0, reads = op & 0x20 != 0
                i += 3
                if writes && i + count > n { throw LinkError(.protocolError, "MPSSE write runs past the buffer") }
                for k in 0..<count {
                    if writes { try vanishIfDue(3 + k) }
                    let mosi: UInt8 = writes ? commands[i + k] : 0x00
                    let miso = try shift(channel, mosi, sentByHost: writes)
                    if reads { try emit(miso) }
                    s.time += 8 * bitTime()
                    if s.poweredOff { throw LinkError(.disconnected, "the board lost power during a flash write; it will boot the golden image when power returns") }
                }
                if writes { i += count }
            case 0x12, 0x13, 0x22, 0x26, 0x32, 0x33:
                let bits = Int(try arg(1)) + 1
                let writes = op & 0x10 != 0, reads = op & 0x20 != 0
                let value: UInt8 = writes ? try arg(2) : 0
                i += writes ? 3 : 2
                let r = i2cBits(channel, value: value, bits: bits, writes: writes)
                if reads { try emit(r) }
                s.time += Double(bits) * bitTime()
            case MPSSE.clockDivisor:
                let div = Double(Int(try arg(1)) | Int(try arg(2)) << 8)
                s.sckHz[ch] = 60e6 / ((1 + div) * 2) * (channel == .b ? 2.0 / 3.0 : 1)
                i += 3
            case MPSSE.clockBits:
                s.time += Double(Int(try arg(1)) + 1) * bitTime()
                i += 2
            case MPSSE.clockBytes:
                s.time += Double((Int(try arg(1)) | Int(try arg(2)) << 8) + 1) * 8 * bitTime()
                i += 3
            case MPSSE.waitGPIOL1High, MPSSE.waitGPIOL1Low:
                let wantHigh = op == MPSSE.waitGPIOL1High
                if channel == .a {
                    advanceAccelerator()
                    let busy = s.accel.busy && s.fpga.configured
                    if busy != wantHigh {
                        if wantHigh || s.faults.stallBusy || s.accel.busyUntil == .infinity {
                            s.hung = true
                            s.time += Self.readTimeoutSeconds
                            throw LinkError(.timeout, "no reply within \(Self.readTimeoutSeconds) s: the accelerator kept BUSY high (MPSSE wait-on-GPIOL1 has no timeout); recover the link and reset the accelerator")
                        }
                        s.time = max(s.time, s.accel.busyUntil)
                        advanceAccelerator()
                    }
                }
                i += 1
            case MPSSE.sendImmediate, MPSSE.divideBy5Off, MPSSE.divideBy5On, MPSSE.threePhaseOn, MPSSE.threePhaseOff,
                 MPSSE.loopbackOff, 0x84, MPSSE.adaptiveOff, 0x96:
                i += 1
            default:
                try emit(MPSSE.badCommandEcho)
                try emit(op)
                i += 1
            }
            s.commandBytes += i - opStart
        }
        guard out == reply.count else {
            throw LinkError(.protocolError, "the command buffer returned \(out) bytes, the caller expected \(reply.count)")
        }
        s.counters[ch].bytesIn += out
    }

    // MARK: pins

    func level(_ value: UInt8, _ direction: UInt8, _ bit: UInt8, pull: Bool) -> Bool {
        direction & bit != 0 ? value & bit != 0 : pull
    }

    func setLow(_ channel: Channel, value: UInt8, direction: UInt8) {
        let ch = channel.rawValue
        let old = (s.lowValue[ch], s.lowDirection[ch])
        s.lowValue[ch] = value
        s.lowDirection[ch] = direction
        if channel == .a {
            // iCE40: CRESET_B shares this byte. Reset takes effect before a chip select falls in
            // the same command, and is released after the selects rise.
            if isICE40 && resetPinLow() { resetPinChanged() }
            let accWas = level(old.0, old.1, PinA.accCS, pull: true), accNow = level(value, direction, PinA.accCS, pull: true)
            let flWas = level(old.0, old.1, PinA.flashCS, pull: true), flNow = level(value, direction, PinA.flashCS, pull: true)
            if accWas && !accNow { accSelect() }
            if !accWas && accNow { accDeselect() }
            if flWas && !flNow { flashSelect() }
            if !flWas && flNow { flashDeselect() }
            if isICE40 && !resetPinLow() { resetPinChanged() }
        } else {
            let sclWas = level(old.0, old.1, PinB.scl, pull: true), sdaWas = level(old.0, old.1, PinB.sdaOut, pull: true)
            let scl = level(value, direction, PinB.scl, pull: true), sda = level(value, direction, PinB.sdaOut, pull: true)
            if sclWas && scl && sdaWas && !sda { i2cStart() }
            if sclWas && scl && !sdaWas && sda { i2cStop() }
        }
    }

    func setHigh(value: UInt8, direction: UInt8) {
        s.highValue = value
        s.highDirection = direction
        if !isICE40 { resetPinChanged() }   // ACBUS is not wired to the iCE40's configuration pins
    }

    func pinsA() -> UInt8 {
        advanceAccelerator()
        var v: UInt8 = PinA.miso
        let d = s.lowDirection[0], val = s.lowValue[0]
        if level(val, d, PinA.accCS, pull: true) { v |= PinA.accCS }
        if level(val, d, PinA.flashCS, pull: true) { v |= PinA.flashCS }
        if level(val, d, PinA.sck, pull: false) { v |= PinA.sck }
        if level(val, d, PinA.mosi, pull: false) { v |= PinA.mosi }
        if s.fpga.configured && s.accel.busy { v |= PinA.busy }
        if let t = s.fpga.doneAt, s.time >= t, s.fpga.configured { v |= PinA.done }
        if isICE40 {
            // ADBUS7 reads CRESET_B itself (pulled up unless the host drives it low).
            if level(val, d, PinA.cresetB, pull: true) { v |= PinA.cresetB }
        } else if s.fpga.initBHigh { v |= PinA.initB }
        return v
    }

    func pinsB() -> UInt8 {
        var v = s.lowValue[1] & (PinB.scl | PinB.sdaOut)
        if level(s.lowValue[1], s.lowDirection[1], PinB.sdaOut, pull: true) { v |= PinB.sdaIn }
        return v
    }

    // MARK: SPI

    enum Selected: Codable { case none, accelerator, flash }
    var spiFrame: [UInt8] = []
    var spiAddress = 0
    var selected = Selected.none
    var pageBuffer: [(Int, UInt8)] = []

    func shift(_ channel: Channel, _ mosiIn: UInt8, sentByHost: Bool) throws(LinkError) -> UInt8 {
        if channel == .b { return i2cByte(mosiIn, reads: !sentByHost) }
        var mosi = mosiIn
        if sentByHost, selected != .none {
            if let k = s.faults.flipMOSIByte, k == s.moSIBytes { mosi ^= 0x01; s.faults.flipMOSIByte = nil }
            s.moSIBytes += 1
        }
        switch selected {
        case .none: return 0xFF
        case .accelerator: return accTransfer(mosi)
        case .flash: return flashTransfer(mosi)
        }
    }

    // MARK: flash

    func flashSelect() {
        // While PROGRAM_B is high the FPGA owns CCLK/D0/FCS_B; the host must not use the flash.
        guard s.fpga.programBLow else { selected = .none; return }
        selected = .flash
        spiFrame.removeAll(keepingCapacity: true)
        pageBuffer.removeAll(keepingCapacity: true)
    }

    var flashBusy: Bool { s.time < s.flash.busyUntil }

    /// Address bytes of an addressed flash command; nil for commands without an address or ones
    /// this part does not have. 3-byte forms reach the lower 16 MiB only (the S25FL256S's bank
    /// register is 0 after power-up and nothing here changes it): a 32 MiB part wraps there.
    func addressBytes(_ cmd: UInt8) -> Int? {
        switch cmd {
        case FlashCommand.read, FlashCommand.pageProgram, flashPart.eraseOpcode: 3
        case FlashCommand.read4, FlashCommand.pageProgram4, FlashCommand.sectorErase4:
            flashPart.jedec[0] == 0x01 ? 4 : nil   // the Spansion S25FL-S family has the 4-byte set
        default: nil
        }
    }

    func frameAddress(_ n: Int) -> Int {
        let a = (1...n).reduce(0) { $0 << 8 | Int(spiFrame[$1]) }
        return a % flash.count
    }

    func flashTransfer(_ mosi: UInt8) -> UInt8 {
        let index = spiFrame.count
        spiFrame.append(mosi)
        let cmd = spiFrame[0]
        if index == 0 { return 0xFF }
        let n = addressBytes(cmd) ?? 0
        switch cmd {
        case FlashCommand.readID:
            let id: [UInt8] = flashPart.jedec + [0x4D, 0x00, 0x80]
            return index - 1 < id.count ? id[index - 1] : 0xFF
        case FlashCommand.readStatus:
            return s.flash.status | (flashBusy ? FlashCommand.wip : 0) | (s.flash.wel ? FlashCommand.wel : 0)
        case let c where (c == FlashCommand.read || c == FlashCommand.read4) && n > 0 && !flashBusy:
            if index == n { spiAddress = frameAddress(n) }
            if index > n {
                let v = flash[spiAddress % flash.count]
                spiAddress += 1
                return v
            }
            return 0xFF
        case let c where (c == FlashCommand.pageProgram || c == FlashCommand.pageProgram4) && n > 0 && !flashBusy && s.flash.wel:
            if index > n {
                let a = frameAddress(n)
                let page = a & ~(flashPart.pageBytes - 1)
                let addr = page + (a + index - n - 1) % flashPart.pageBytes
                if let k = s.faults.powerLossAtFlashByte, s.flash.programmedBytes == k {
                    // Power fails while this page is being loaded: the cells already programmed keep
                    // their data, the byte in flight is torn, the rest of the page stays erased.
                    for (pa, pv) in pageBuffer { flash[pa] &= pv }
                    flash[addr] &= mosi | 0xF0
                    s.faults.powerLossAtFlashByte = nil
                    powerFail()
                    return 0xFF
                }
                s.flash.programmedBytes += 1
                pageBuffer.append((addr, mosi))
            }
            return 0xFF
        default:
            return 0xFF
        }
    }

    func flashDeselect() {
        defer { selected = .none }
        guard selected == .flash, let cmd = spiFrame.first else { return }
        if flashBusy { return }  // only RDSR is served while an operation runs
        let n = addressBytes(cmd) ?? 0
        switch cmd {
        case FlashCommand.writeEnable where spiFrame.count == 1:
            s.flash.wel = true
        case let c where (c == flashPart.eraseOpcode || c == FlashCommand.sectorErase4) && n > 0 && spiFrame.count == 1 + n && s.flash.wel:
            let start = frameAddress(n) & ~(flashPart.sectorBytes - 1)
            for k in start..<(start + flashPart.sectorBytes) { flash[k] = 0xFF }
            s.flash.busyUntil = s.time + flashPart.sectorEraseSeconds
            s.flash.wel = false
        case let c where (c == FlashCommand.pageProgram || c == FlashCommand.pageProgram4) && n > 0 && spiFrame.count > 1 + n && s.flash.wel:
            for (a, v) in pageBuffer { flash[a] &= v }   // NOR programming only clears bits
            s.flash.busyUntil = s.time + flashPart.pageProgramSeconds
            s.flash.wel = false
        default:
            break
        }
    }

    func powerFail() {
        s.poweredOff = true
        s.fpga = FPGAState()
        resetAccelerator()
        selected = .none
        s.flash.wel = false
        s.flash.busyUntil = 0
    }

    // MARK: FPGA configuration

    /// Loads a bitstream from `address`, as the configuration logic does; a failed multiboot falls
    /// back to the golden image at address 0.
    func configure(from address: Int, multiboot: Bool) {
        if isICE40 { return configureICE40(header: multiboot ? address : 0) }
        let limit = min(SlotLayout.xilinx7.slotBytes * 4, flash.count - address)
        let scan = Bitstream.scanPackets(flash, from: address, limit: limit)
        var error: String?
        if scan.syncOffset == nil || scan.syncOffset! > 4096 {
            error = "no sync word at 0x\(String(address, radix: 16))"
        } else if scan.idcode != device.idcode {
            error = "IDCODE mismatch: image for 0x\(String(scan.idcode ?? 0, radix: 16)), device is 0x\(String(device.idcode, radix: 16))"
        } else if scan.crcErrors > 0 || scan.crcChecks == 0 {
            error = "configuration CRC error"
        } else if let e = scan.error {
            error = e
        } else if !scan.started || !scan.desynced {
            error = "bitstream ends before startup"
        }
        let duration = Double(scan.consumed) * 8 / Self.configClockHz
        s.time += 0.001   // INIT_B release and memory clear
        if let error {
            if address != 0 {
                configure(from: 0, multiboot: true)
                s.fpga.fallback = true
                s.fpga.lastError = "slot at 0x\(String(address, radix: 16)): \(error); fell back to the golden image"
                return
            }
            s.fpga.configured = false
            s.fpga.initBHigh = false   // INIT_B low flags the CRC/ID error
            s.fpga.doneAt = nil
            s.fpga.lastError = error
            s.fpga.loadedFrom = address
            return
        }
        s.fpga.configured = true
        s.fpga.initBHigh = true
        s.fpga.doneAt = s.time + duration
        s.fpga.loadedFrom = address
        s.fpga.fallback = false
        s.fpga.lastError = nil
        resetAccelerator()
    }

    /// iCE40 (TN1248): the configuration logic reads at `header` (0 at power-on / CRESET_B, 32 x
    /// (image + 1) on warm boot). A multi-image header entry there sends it on to its boot address;
    /// a plain image at 0 also configures. Any failure leaves CDONE low: there is no fallback.
    func configureICE40(header: Int) {
        s.time += 0.001   // CRESET_B release to the first SPI read
        var address = header
        var scan = ICE40Bitstream.scan(flash, from: address, limit: 64)
        if scan.reboot, let target = scan.bootAddress, target < flash.count {
            address = target
        }
        scan = ICE40Bitstream.scan(flash, from: address, limit: min(SlotLayout.ice40.slotBytes, flash.count - address))
        var error: String?
        if scan.preambleOffset == nil {
            error = "no iCE40 preamble at 0x\(String(address, radix: 16))"
        } else if let e = scan.error {
            error = e
        } else if !scan.wakeup {
            error = "image at 0x\(String(address, radix: 16)) has no wakeup"
        } else if scan.device != device.name {
            error = "image for \(scan.device ?? "an unknown device"), the FPGA is \(device.name)"
        } else if scan.crcErrors > 0 || scan.crcChecks == 0 {
            error = "configuration CRC error"
        }
        s.fpga.fallback = false
        s.fpga.loadedFrom = address
        if let error {
            s.fpga.configured = false
            s.fpga.initBHigh = false
            s.fpga.doneAt = nil
            s.fpga.lastError = error
            return
        }
        s.fpga.configured = true
        s.fpga.initBHigh = true
        s.fpga.doneAt = s.time + Double(scan.consumed) * 8 / Self.ice40ConfigClockHz
        s.fpga.lastError = nil
        resetAccelerator()
    }

    /// iCE40 master SPI configuration clock ("low" frequency range).
    public static let ice40ConfigClockHz = 12_000_000.0

    // MARK: accelerator

    func accSelect() {
        selected = s.fpga.configured ? .accelerator : .none
        spiFrame.removeAll(keepingCapacity: true)
    }

    func accTransfer(_ mosi: UInt8) -> UInt8 {
        let index = spiFrame.count
        spiFrame.append(mosi)
        if index == 3 { spiAddress = Int(spiFrame[1]) << 16 | Int(spiFrame[2]) << 8 | Int(spiFrame[3]) }
        switch spiFrame[0] {
        case 0x02 where index >= 4:
            accWrite(spiAddress, mosi)
            spiAddress += 1
        case 0x0B where index >= 5:
            advanceAccelerator()
            let v = accRead(spiAddress)
            spiAddress += 1
            return v
        default: break
        }
        return 0x00
    }

    var pendingControl: UInt8 = 0

    func accWrite(_ a: Int, _ v: UInt8) {
        switch a {
        case 0x08: pendingControl |= v
        case 0x14..<0x1C, 0x20..<0x28, 0x40..<0x60: s.accel.control[a] = v
        case 0x1000..<0x3000: inputWindow[a - 0x1000] = v
        case 0x10000..<(0x10000 + Self.paramCapacity):
            params[a - 0x10000] = v
            s.accel.paramsValid = false
            engine = nil
            for k in 0x40..<0x60 { s.accel.control[k] = 0 }
        default: break
        }
    }

    var inputWindow = [UInt8](repeating: 0, count: 0x2000)

    func u32(_ a: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(s.accel.control[a + $1]) << (8 * $1) } }

    var statusWord: UInt32 {
        var st: UInt32 = 0
        if s.accel.busy { st |= 1 }
        if !s.accel.busy && s.accel.sequence > 0 && s.accel.pendingResult == nil && s.accel.error == 0 { st |= 2 }
        if s.accel.error != 0 { st |= 4 | UInt32(s.accel.error) << 8 }
        if s.accel.paramsValid { st |= 8 }
        return st
    }

    func accRead(_ a: Int) -> UInt8 {
        func reg(_ v: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: v >> (8 * (a & 3))) }
        let shape = s.synthesizedShape
        switch a {
        case 0x00..<0x04: return reg(0x544F_4941)
        case 0x04..<0x08: return reg(acceleratorVersion)
        case 0x0C..<0x10: return reg(statusWord)
        case 0x10..<0x14: return reg(s.accel.sequence)
        case 0x1C..<0x20: return reg(UInt32(s.fpga.loadedFrom) << 8 | (s.fpga.fallback ? 1 : 0))
        case 0x28..<0x2C: return reg(s.accel.paramCRC)
        case 0x2C..<0x30: return reg(UInt32(Self.paramCapacity))
        case 0x30..<0x34: return reg(UInt32(shape.window) | UInt32(shape.features) << 16)
        case 0x34..<0x38:
            return reg(UInt32(shape.dModel) | UInt32(shape.heads) << 8 | UInt32(shape.layers) << 16 | UInt32(shape.horizon) << 24)
        case 0x38..<0x3C: return reg(s.accel.cycles)
        case 0x3C..<0x40: return reg(UInt32(clockHz))
        case 0x14..<0x1C, 0x20..<0x28, 0x40..<0x60: return s.accel.control[a]
        case 0x3000..<0x3100: return s.accel.result[a - 0x3000]
        case 0x10000..<(0x10000 + Self.paramCapacity): return params[a - 0x10000]
        default: return 0
        }
    }

    func accDeselect() {
        defer { selected = .none }
        guard selected == .accelerator else { return }
        if spiFrame.first == 0x02 && spiFrame.count >= 8 && (0x18..<0x1C).contains(Int(spiFrame[1]) << 16 | Int(spiFrame[2]) << 8 | Int(spiFrame[3])) {
            let a = Int(spiFrame[1]) << 16 | Int(spiFrame[2]) << 8 | Int(spiFrame[3])
            if a == 0x18 && Array(spiFrame[4..<8]) == [0x49, 0x50, 0x52, 0x47] {
                if isICE40 {
                    // SB_WARMBOOT: S1:S0 = MULTIBOOT_ADDR[1:0] selects header entry 1...4.
                    configure(from: 32 * (Int(u32(0x14) & 3) + 1), multiboot: true)
                } else {
                    configure(from: Int(u32(0x14) & 0xFF_FFFF), multiboot: true)
                }
                return
            }
        }
        let cmd = pendingControl
        pendingControl = 0
        if cmd & 0x02 != 0 { // SOFT_RESET
            s.accel.busy = false; s.accel.error = 0; s.accel.sequence = 0; s.accel.pendingResult = nil
            s.accel.result = [UInt8](repeating: 0, count: 256)
        }
        if cmd & 0x04 != 0 { s.accel.error = 0 }
        if cmd & 0x08 != 0 { verifyParams() }
        if cmd & 0x01 != 0 { start() }
    }

    /// Power-up state of the accelerator: no parameters, so no datapath.
    func resetAccelerator() {
        s.accel = AccelState()
        engine = nil
    }

    func verifyParams() {
        engine = nil
        let length = Int(u32(0x20))
        guard length <= params.count else { s.accel.error = 0x03; s.accel.paramsValid = false; return }
        s.accel.paramCRC = CRC32.checksum(params[0..<length])
        guard s.accel.paramCRC == u32(0x24) else { s.accel.error = 0x03; s.accel.paramsValid = false; return }
        if !loadParameters() { s.accel.error = 0x04 }
    }

    /// Builds the datapath from PARAM memory `[0, PARAM_LENGTH)` and sets PARAMS_VALID iff the image
    /// fits the synthesized shape and its integers pass the checks a model file gets
    /// (`QuantizedModel(integers:)`): a damaged image is refused, never computed.
    func loadParameters() -> Bool {
        engine = nil
        s.accel.paramsValid = false
        do throws(ParameterImageError) {
            let image = params[0..<min(Int(u32(0x20)), params.count)]
            if ParameterImage.formatVersion(Array(image.prefix(10))) == ParameterImage.skipVersion
                && acceleratorVersion < ParameterImage.skipPathAcceleratorVersion {
                throw ParameterImageError("image format 2 (contract v2, skip path) on an accelerator of VERSION 0x\(String(acceleratorVersion, radix: 16)): its header check refuses it")
            }
            let set = try ParameterImage.deserialize(image)
            skipPath = set.hasSkipPath
            guard set.shape == s.synthesizedShape else {
                throw ParameterImageError("image shape \(set.shape) differs from the synthesized shape \(s.synthesizedShape)")
            }
            let model: QuantizedModel
            do { model = try QuantizedModel(integers: set) } catch { throw ParameterImageError(error.message) }
            engine = SoftwareEngine(model: model)
            s.accel.paramsValid = true
            parameterRefusal = nil
        } catch {
            parameterRefusal = error.message
        }
        return s.accel.paramsValid
    }

    /// Modelled RTL timing: 16 MAC lanes at 100 MHz plus a fixed pipeline cost per stage; the skip
    /// path (contract v2) adds its linear pass (`W*F` steps a block of 16 outputs), the addition (16
    /// epilogue cycles a block) and two pass changes, as the RTL measures (docs/hardware.md §2).
    /// The iCE40 core's timing, modelled: one MAC a cycle plus about 20 cycles per requantized
    /// output (bias read, drain, requant multiply, the sequential shift). Fitted to the five shapes
    /// the RTL test bench measured (239,406 cycles for the default shape's W8A8; 102,455 to 625,343
    /// for the others): within 5.3 % of each (docs/hardware.md §5).
    public static func modelledICE40Cycles(_ s: ModelShape) -> Int {
        let (w, d, h, n) = (s.window, s.dModel, s.heads, s.layers)
        let macs = w * d * (s.features + 4 * d + 2 * s.ffn) * n + 2 * w * w * d * n + s.horizon * d
        let outputs = 2 * w * d + n * (10 * w * d + 2 * w * w * h + w * s.ffn) + s.horizon
        return macs + 20 * outputs
    }

    /// This board's modelled cycles for one inference.
    public func modelledCycles(_ shape: ModelShape, skip: Bool = false) -> Int {
        isICE40 ? Self.modelledICE40Cycles(shape) : Self.modelledCycles(shape, skip: skip)
    }

    public static func modelledCycles(_ s: ModelShape, skip: Bool = false) -> Int {
        let macs = s.window * s.dModel * (s.features + 4 * s.dModel + 2 * s.ffn) * s.layers
            + 2 * s.window * s.window * s.dModel * s.layers + s.horizon * s.dModel
        let v1 = (macs + 15) / 16 + 64 * (2 + 12 * s.layers)
        return skip ? v1 + (s.horizon + 15) / 16 * (s.window * s.features + 16) + 56 : v1
    }

    func start() {
        guard s.accel.paramsValid, let engine else { s.accel.error = 0x01; return }
        guard !s.accel.busy else { s.accel.error = 0x02; return }
        let shape = s.synthesizedShape
        let n = shape.window * shape.features
        let inBytes = Array(inputWindow[0..<(2 * n)])
        let input = (0..<n).map { Int32(Int16(bitPattern: UInt16(inBytes[2 * $0]) | UInt16(inBytes[2 * $0 + 1]) << 8)) }
        s.accel.sequence &+= 1
        s.accel.busy = true
        s.accel.pendingResult = nil
        // An input off the model's input grid (only a corrupted transfer: the host checks its
        // inputs) breaks the premise of every bound: error 0x05 instead of outputs.
        let output = try? engine.infer(input)
        if output == nil { s.accel.error = 0x05 }
        let cycles = modelledCycles(shape, skip: skipPath)
        s.accel.busyUntil = s.faults.stallBusy ? .infinity : s.time + Double(cycles) / clockHz
        // RESULT block (§5): status (DONE | PARAMS_VALID at completion, or ERROR), SEQUENCE,
        // INPUT_CRC, CYCLES, the outputs as i16, RESULT_CRC.
        let status: UInt32 = output == nil ? Reg.error | 0x05 << 8 | Reg.paramsValid : Reg.done | Reg.paramsValid
        var block = le32(status) + le32(s.accel.sequence) + le32(CRC32.checksum(inBytes)) + le32(UInt32(cycles))
        for v in output ?? [Int32](repeating: 0, count: shape.horizon) {
            let x = UInt16(bitPattern: Int16(clamping: v))
            block += [UInt8(x & 0xFF), UInt8(x >> 8)]
        }
        block += le32(CRC32.checksum(block))
        s.accel.pendingResult = block
        s.accel.cycles = UInt32(cycles)
    }

    func advanceAccelerator() {
        guard s.accel.busy, s.time >= s.accel.busyUntil, let block = s.accel.pendingResult else { return }
        s.accel.busy = false
        s.accel.busySeconds += s.accel.busyUntil - (s.accel.busyUntil - Double(s.accel.cycles) / clockHz)
        s.accel.pendingResult = nil
        s.accel.result = block + [UInt8](repeating: 0, count: 256 - block.count)
    }

    // MARK: I2C + PAC1934

    enum I2CPhase: Codable { case idle, address, write, read }
    var i2cPhase = I2CPhase.idle
    var i2cDevice: Int?
    var i2cPointer: UInt8 = 0
    var i2cFirstWrite = true
    var i2cReadQueue: [UInt8] = []
    var i2cLastAck: UInt8 = 1

    func i2cStart() {
        i2cPhase = .address
        i2cDevice = nil
        i2cFirstWrite = true
    }

    func i2cStop() {
        if i2cPhase == .write, let dev = i2cDevice, !i2cFirstWrite || true {
            // A "send byte" of REFRESH (0x00) or REFRESH_V (0x1F) latches the accumulators.
            if i2cWroteOnlyPointer && (i2cPointer == 0x00 || i2cPointer == 0x1F || i2cPointer == 0x1E) {
                pacRefresh(dev, reset: i2cPointer != 0x1F)
            }
        }
        i2cPhase = .idle
    }

    var i2cWroteOnlyPointer = false

    func i2cByte(_ b: UInt8, reads: Bool) -> UInt8 {
        reads ? i2cReadByte() : { i2cWriteByte(b); return 0xFF }()
    }

    func i2cWriteByte(_ b: UInt8) {
        switch i2cPhase {
        case .address:
            let addr = b >> 1
            if let dev = pacAddresses.firstIndex(of: addr) {
                i2cDevice = dev
                i2cLastAck = 0
                if b & 1 == 1 {
                    i2cPhase = .read
                    i2cReadQueue = pacRegisters(dev, from: i2cPointer)
                } else {
                    i2cPhase = .write
                    i2cWroteOnlyPointer = false
                    i2cFirstWrite = true
                }
            } else {
                i2cLastAck = 1
                i2cPhase = .idle
            }
        case .write:
            if i2cFirstWrite {
                i2cPointer = b
                i2cFirstWrite = false
                i2cWroteOnlyPointer = true
            } else {
                i2cWroteOnlyPointer = false // register writes (CTRL etc.) are accepted and ignored
            }
            i2cLastAck = 0
        default:
            i2cLastAck = 1
        }
    }

    func i2cReadByte() -> UInt8 {
        guard i2cPhase == .read, !i2cReadQueue.isEmpty else { return 0xFF }
        return i2cReadQueue.removeFirst()
    }

    /// Bit-level MPSSE commands on channel B: 8 bits out = a byte, 1 bit in = the slave's ACK,
    /// 8 bits in = a data byte, 1 bit out = the master's ACK/NACK.
    func i2cBits(_ channel: Channel, value: UInt8, bits: Int, writes: Bool) -> UInt8 {
        guard channel == .b else { return 0 }
        if writes && bits == 8 { i2cWriteByte(value); return 0 }
        if !writes && bits == 1 { return i2cLastAck }
        if !writes && bits == 8 { return i2cReadByte() }
        return 0
    }

    /// PAC1934 register bytes starting at `pointer` in block-read order (big-endian registers).
    func pacRegisters(_ dev: Int, from pointer: UInt8) -> [UInt8] {
        let p = s.pac[dev]
        func be(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * (n - 1 - $0))) } }
        var out: [UInt8] = []
        var r = Int(pointer)
        while out.count < 64 && r <= 0xFF {
            switch r {
            case 0x02: out += be(UInt64(p.latchedCount), 3)
            case 0x03...0x06: out += be(p.latchedAcc[r - 0x03], 6)
            case 0x07...0x0A: out += be(UInt64(p.latchedVbus[r - 0x07]), 2)
            case 0x0B...0x0E: out += be(UInt64(p.latchedVsense[r - 0x0B]), 2)
            case 0x17...0x1A: out += be(UInt64(p.latchedPower[r - 0x17]) << 4, 4)
            case 0xFD: out += [0x5B]   // PAC1934 product ID
            case 0xFE: out += [0x5D]   // Microchip
            case 0xFF: out += [0x03]
            default: out += [0x00]
            }
            r += 1
        }
        return out
    }

    /// Latches accumulators: the model integrates each rail's power over simulated time, with the
    /// accelerator's busy time at its busy current. 1024 samples per second.
    func pacRefresh(_ dev: Int, reset: Bool) {
        advanceAccelerator()
        let elapsed = max(0, s.time - s.pac[dev].lastRefresh)
        let busy = min(elapsed, max(0, s.accel.busySeconds - s.pac[dev].busyAtRefresh))
        let samples = UInt32(elapsed * 1024)
        s.pac[dev].latchedCount = samples
        for c in 0..<4 {
            let rail = Self.rails[dev][c]
            let idleA = s.fpga.configured ? rail.idleAmps : rail.unconfiguredAmps
            let avgA = elapsed > 0 ? (idleA * (elapsed - busy) + rail.busyAmps * busy) / elapsed : idleA
            let vsense = avgA * Self.senseOhms
            let vbusCode = UInt64(min(65535, rail.volts / 32.0 * 65536))
            let vsenseCode = UInt64(min(65535, vsense / 0.1 * 65536))
            let powerCode = (vbusCode * vsenseCode) >> 4   // 28-bit VPOWER
            s.pac[dev].latchedVbus[c] = UInt16(vbusCode)
            s.pac[dev].latchedVsense[c] = UInt16(vsenseCode)
            s.pac[dev].latchedPower[c] = UInt32(powerCode)
            s.pac[dev].latchedAcc[c] = powerCode * UInt64(samples)
        }
        if reset {
            s.pac[dev].lastRefresh = s.time
            s.pac[dev].busyAtRefresh = s.accel.busySeconds
        }
    }
}

func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
