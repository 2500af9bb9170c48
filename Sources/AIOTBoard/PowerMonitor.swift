// The two PAC1934 power monitors on channel B, as an I2C master built from MPSSE commands
// (AN_113 style: three-phase clocking, SDA released by switching its direction to input).

/// One rail's latest reading and the energy accumulated since the previous refresh.
public struct RailReading: Sendable, Equatable, Codable {
    public var monitor: Int          // I2C address
    public var channel: Int          // 1...4
    public var name: String
    public var volts: Double
    public var amps: Double
    public var watts: Double
    public var joules: Double
    public var samples: Int
}

public final class PowerMonitor {
    public let transport: Transport
    public let addresses: [UInt8]
    public let senseOhms: Double
    public let names: [[String]]
    public static let samplesPerSecond = 1024.0
    var b = MPSSEBuffer(capacity: 1024)

    public convenience init(transport: Transport, profile: BoardProfile = .xc7s15Gateway) {
        self.init(transport: transport, addresses: profile.powerMonitorAddresses, senseOhms: profile.senseOhms,
                  names: profile.railNames)
    }

    public init(transport: Transport, addresses: [UInt8], senseOhms: Double, names: [[String]]) {
        self.transport = transport
        self.addresses = addresses
        self.senseOhms = senseOhms
        self.names = names
    }

    static let scl = PinB.scl, sda = PinB.sdaOut, dir = PinB.scl | PinB.sdaOut

    func start() {
        for _ in 0..<4 { b.setLow(value: Self.scl | Self.sda, direction: Self.dir) }
        for _ in 0..<4 { b.setLow(value: Self.scl, direction: Self.dir) }
        for _ in 0..<4 { b.setLow(value: 0, direction: Self.dir) }
    }
    func stop() {
        for _ in 0..<4 { b.setLow(value: 0, direction: Self.dir) }
        for _ in 0..<4 { b.setLow(value: Self.scl, direction: Self.dir) }
        for _ in 0..<4 { b.setLow(value: Self.scl | Self.sda, direction: Self.dir) }
    }
    func repeatedStart() {
        b.setLow(value: Self.sda, direction: Self.dir)
        start()
    }
    /// Byte out, then release SDA and clock in the slave's ACK (one reply byte).
    func writeByte(_ v: UInt8) {
        b.setLow(value: 0, direction: Self.dir)
        b.writeBits(v, bits: 8)
        b.setLow(value: 0, direction: Self.scl)
        b.readBits(1)
    }
    /// Byte in (one reply byte), then drive ACK (0) or NACK (1).
    func readByte(ack: Bool) {
        b.setLow(value: 0, direction: Self.scl)
        b.readBits(8)
        b.setLow(value: 0, direction: Self.dir)
        b.writeBits(ack ? 0x00 : 0x80, bits: 1)
    }

    func run() throws(LinkError) -> [UInt8] {
        b.sendImmediate()
        return try transport.execute(.b, b)
    }

    /// Sends REFRESH (resets the accumulators) or REFRESH_V (keeps them) to every monitor.
    public func refresh(resetAccumulators: Bool = true) throws(LinkError) {
        guard !addresses.isEmpty else {
            throw LinkError(.other, "this board has no power monitors (no PAC1934 on channel B); energy cannot be measured on it")
        }
        b.removeAll()
        for a in addresses {
            start(); writeByte(a << 1); writeByte(resetAccumulators ? 0x00 : 0x1F); stop()
        }
        b.idle(bits: 400)   // >= 1 ms at 400 kHz before the registers are read
        let r = try run()
        for (k, ack) in r.enumerated() where ack & 1 != 0 {
            throw LinkError(.protocolError, "PAC1934 at 0x\(String(addresses[k / 2], radix: 16)) does not acknowledge on I2C (channel B)")
        }
    }

    /// Refreshes and reads every rail: voltage, current, power and the energy accumulated since the
    /// previous refresh.
    public func read(resetAccumulators: Bool = true) throws(LinkError) -> [RailReading] {
        try refresh(resetAccumulators: resetAccumulators)
        var out: [RailReading] = []
        for (m, a) in addresses.enumerated() {
            b.removeAll()
            // Block read from ACC_COUNT (0x02): count(3) + 4 x VPOWER_ACC(6) + 4 x VBUS(2) + 4 x VSENSE(2).
            start(); writeByte(a << 1); writeByte(0x02)
            repeatedStart(); writeByte(a << 1 | 1)
            let n = 3 + 24 + 8 + 8
            for k in 0..<n { readByte(ack: k < n - 1) }
            stop()
            let r = try run()
            guard r[0] & 1 == 0, r[1] & 1 == 0, r[2] & 1 == 0 else {
                throw LinkError(.protocolError, "PAC1934 at 0x\(String(a, radix: 16)) does not acknowledge on I2C (channel B)")
            }
            let d = Array(r[3...])
            func be(_ o: Int, _ n: Int) -> UInt64 { (0..<n).reduce(0) { $0 << 8 | UInt64(d[o + $1]) } }
            let count = Int(be(0, 3))
            for c in 0..<4 {
                let acc = Double(be(3 + 6 * c, 6))
                let vbus = 32.0 * Double(be(27 + 2 * c, 2)) / 65536
                let vsense = 0.1 * Double(be(35 + 2 * c, 2)) / 65536
                let fsrWatts = 3.2 / senseOhms
                let amps = vsense / senseOhms
                out.append(RailReading(monitor: Int(a), channel: c + 1, name: names[m][c], volts: vbus, amps: amps,
                                       watts: vbus * amps, joules: acc * fsrWatts / 268_435_456 / Self.samplesPerSecond,
                                       samples: count))
            }
        }
        return out
    }
}
