// The seam between the board logic and whatever executes MPSSE bytes: the FT2232H through libftdi,
// or the board model. One `execute` is one USB round trip: a command buffer out, its reply in.
import FTDI

/// Why a command buffer did not run.
public struct LinkError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound, permission, disconnected, timeout, protocolError, other
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// What crossed the USB cable, per channel.
public struct LinkCounters: Sendable, Equatable, Codable {
    public var roundTrips = 0
    public var bytesOut = 0
    public var bytesIn = 0
    public init() {}
}

/// Executes MPSSE command buffers. Not `Sendable`: one owner at a time.
public protocol Transport: AnyObject {
    /// Sends `commands` to `channel` and fills `reply` with exactly the bytes the commands return.
    func execute(_ channel: Channel, _ commands: UnsafeRawBufferPointer,
                 reply: UnsafeMutableRawBufferPointer) throws(LinkError)
    /// Brings the link back after a timeout (stalled wait-on-GPIO) or a transfer error.
    func recover() throws(LinkError)
    func counters(_ channel: Channel) -> LinkCounters
    /// Modelled seconds spent on the link so far, if the transport can tell (the board model can).
    var modelledSeconds: Double? { get }
    /// A short description for status output.
    var name: String { get }
}

extension Transport {
    /// Convenience for non-hot paths: allocates the reply.
    public func execute(_ channel: Channel, _ buffer: MPSSEBuffer) throws(LinkError) -> [UInt8] {
        var reply = [UInt8](repeating: 0, count: buffer.readCount)
        let result: Result<Void, LinkError> = buffer.bytes.withUnsafeBytes { cmd in
            reply.withUnsafeMutableBytes { out in
                do throws(LinkError) {
                    try self.execute(channel, cmd, reply: out)
                    return .success(())
                } catch { return .failure(error) }
            }
        }
        try result.get()
        return reply
    }
}

/// The FT2232H through libftdi: channel A for SPI at `sckHz`, channel B for I2C at 400 kHz.
public final class FTDITransport: Transport {
    private var channels: [FTDIDevice]
    private var stats = [LinkCounters(), LinkCounters()]
    public let name: String
    public let sckHz: Int
    public var modelledSeconds: Double? { nil }

    public init(vendor: UInt16 = 0x0403, product: UInt16 = 0x6010, serial: String? = nil,
                sckHz: Int = 30_000_000) throws(LinkError) {
        self.sckHz = sckHz
        self.name = ftdiAddress(vendor: vendor, product: product, serial: serial)
        do throws(FTDIError) {
            let a = try FTDIDevice(vendor: vendor, product: product, serial: serial, interface: .a)
            let b = try FTDIDevice(vendor: vendor, product: product, serial: serial, interface: .b)
            channels = [a, b]
        } catch {
            throw Self.map(error)
        }
        try initialize()
    }

    private func initialize() throws(LinkError) {
        var a = MPSSEBuffer()
        a.raw(MPSSE.loopbackOff)
        a.raw(MPSSE.adaptiveOff)
        a.raw(MPSSE.threePhaseOff)
        a.clock(divisor: UInt16(max(0, 30_000_000 / sckHz - 1)))
        a.setLow(value: PinA.idleValue, direction: PinA.busDirection)
        a.setHigh(value: PinAHigh.programB, direction: PinAHigh.direction)
        _ = try execute(.a, a)
        var b = MPSSEBuffer()
        b.raw(MPSSE.loopbackOff)
        b.raw(MPSSE.adaptiveOff)
        b.raw(MPSSE.threePhaseOn)   // I2C needs data valid on both edges
        b.clock(divisor: 49)        // 600 kHz * 2/3 (three-phase) = 400 kHz
        b.setLow(value: PinB.scl | PinB.sdaOut, direction: PinB.scl | PinB.sdaOut)
        _ = try execute(.b, b)
    }

    public func execute(_ channel: Channel, _ commands: UnsafeRawBufferPointer,
                        reply: UnsafeMutableRawBufferPointer) throws(LinkError) {
        let device = channels[channel.rawValue]
        do throws(FTDIError) {
            try device.write(commands)
            try device.read(into: reply)
        } catch {
            throw Self.map(error)
        }
        stats[channel.rawValue].roundTrips += 1
        stats[channel.rawValue].bytesOut += commands.count
        stats[channel.rawValue].bytesIn += reply.count
    }

    public func recover() throws(LinkError) {
        do throws(FTDIError) {
            for c in channels { try c.purge() }
        } catch {
            throw Self.map(error)
        }
        try initialize()
    }

    public func counters(_ channel: Channel) -> LinkCounters { stats[channel.rawValue] }

    static func map(_ e: FTDIError) -> LinkError {
        switch e.kind {
        case .notFound: return LinkError(.notFound, e.description)
        case .permission: return LinkError(.permission, e.description)
        case .io: return LinkError(.disconnected, e.description)
        case .timeout: return LinkError(.timeout, e.description)
        case .other: return LinkError(.other, e.description)
        }
    }
}

/// One FT2232H on the bus, for `aiotctl devices`.
public struct USBDevice: Sendable, Equatable, Codable {
    public var address: String
    public var manufacturer: String?
    public var description: String?
    public var serial: String?
    /// Set when the device could not be read, with the udev hint.
    public var error: String?
}

/// Lists FT2232H devices (ftdi_usb_find_all); a device whose strings cannot be read is listed
/// with an error naming the udev rule.
public func listUSBDevices(vendor: UInt16 = 0x0403, product: UInt16 = 0x6010) throws(LinkError) -> [USBDevice] {
    do throws(FTDIError) {
        return try FTDIDevice.list(vendor: vendor, product: product).map {
            USBDevice(address: ftdiAddress(vendor: vendor, product: product, serial: $0.serial),
                      manufacturer: $0.manufacturer, description: $0.description, serial: $0.serial, error: $0.error)
        }
    } catch {
        throw FTDITransport.map(error)
    }
}

/// `ftdi://VID:PID[/serial]` in the form `--device` takes.
public func ftdiAddress(vendor: UInt16, product: UInt16, serial: String?) -> String {
    func h(_ x: UInt16) -> String { let t = String(x, radix: 16); return String(repeating: "0", count: 4 - t.count) + t }
    return "ftdi://\(h(vendor)):\(h(product))" + (serial.map { "/\($0)" } ?? "")
}
