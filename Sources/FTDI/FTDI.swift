// The one thin wrapper over libftdi1. Every C call is a one-liner here; `check` is the single place
// that turns a negative return code into a typed error carrying the C function name, the code and
// libftdi's own message. No C type is visible outside this file.
import CFTDI

#if canImport(Glibc)
import Glibc
#endif

/// A failed libftdi call, or a condition found around one.
public struct FTDIError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No device with the requested vendor/product (and serial) is on the bus.
        case notFound
        /// The device is there but the user may not open it (udev rule missing).
        case permission
        /// The device stopped answering or vanished mid-transfer.
        case io
        /// A read did not complete within the timeout.
        case timeout
        /// Any other libftdi failure.
        case other
    }
    public var kind: Kind
    /// The C function that failed, e.g. `ftdi_usb_open_desc_index`.
    public var function: String
    public var code: Int32
    /// The text of `ftdi_get_error_string` at the time of the failure.
    public var libftdiMessage: String
    /// What the user should read first.
    public var message: String

    public var description: String {
        function.isEmpty ? message : "\(message) (\(function) returned \(code): \(libftdiMessage))"
    }
}

/// The udev rule shipped in configs/udev/, named in permission errors.
public let ftdiUdevRuleHint =
    "install configs/udev/60-aiot-ft2232h.rules into /etc/udev/rules.d/, run `udevadm control --reload` and replug the cable"

/// One FTDI device on the bus, as listed by `ftdi_usb_find_all`.
public struct FTDIDeviceInfo: Sendable, Equatable, Codable {
    public var vendor: UInt16
    public var product: UInt16
    public var manufacturer: String?
    public var description: String?
    public var serial: String?
    /// Set when the strings could not be read, usually missing permissions.
    public var error: String?
}

/// Which MPSSE engine of a dual-channel chip.
public enum FTDIInterface: Sendable {
    case a, b
}

/// An open FTDI interface in MPSSE mode. Not `Sendable`: one owner at a time.
public final class FTDIDevice {
    private let context: UnsafeMutablePointer<ftdi_context>
    public let vendor: UInt16
    public let product: UInt16
    /// Bytes read by `read` must arrive within this many milliseconds.
    public var readTimeoutMilliseconds: Int = 1000

    /// Lists devices with the given ids. Permission problems on individual devices are reported in
    /// their `error` field and, if no device could be read at all, as a `.permission` error.
    public static func list(vendor: UInt16 = 0x0403, product: UInt16 = 0x6010) throws(FTDIError) -> [FTDIDeviceInfo] {
        guard let ctx = ftdi_new() else {
            throw FTDIError(kind: .other, function: "ftdi_new", code: -1, libftdiMessage: "out of memory",
                            message: "libftdi could not allocate a context")
        }
        defer { ftdi_free(ctx) }
        var list: UnsafeMutablePointer<ftdi_device_list>? = nil
        let count = ftdi_usb_find_all(ctx, &list, Int32(vendor), Int32(product))
        defer { ftdi_list_free(&list) }
        try Self.check(ctx, count, "ftdi_usb_find_all", vendor: vendor, product: product)
        var result: [FTDIDeviceInfo] = []
        var node = list
        while let current = node {
            let dev = current.pointee.dev
            var manufacturer = [CChar](repeating: 0, count: 128)
            var description = [CChar](repeating: 0, count: 128)
            var serial = [CChar](repeating: 0, count: 128)
            let rc = ftdi_usb_get_strings(ctx, dev, &manufacturer, 128, &description, 128, &serial, 128)
            if rc < 0 {
                let text = String(cString: ftdi_get_error_string(ctx))
                result.append(FTDIDeviceInfo(
                    vendor: vendor, product: product, manufacturer: nil, description: nil, serial: nil,
                    error: "cannot read device strings (ftdi_usb_get_strings returned \(rc): \(text)); \(ftdiUdevRuleHint)"))
            } else {
                result.append(FTDIDeviceInfo(
                    vendor: vendor, product: product, manufacturer: string(manufacturer),
                    description: string(description), serial: string(serial), error: nil))
            }
            node = current.pointee.next
        }
        return result
    }

    /// Opens `interface` of the first device with the ids (and serial), resets it and enters MPSSE
    /// mode with the given pin directions (1 = output) on the low byte.
    public init(vendor: UInt16 = 0x0403, product: UInt16 = 0x6010, serial: String? = nil,
                interface: FTDIInterface, latencyMilliseconds: UInt8 = 1) throws(FTDIError) {
        guard let ctx = ftdi_new() else {
            throw FTDIError(kind: .other, function: "ftdi_new", code: -1, libftdiMessage: "out of memory",
                            message: "libftdi could not allocate a context")
        }
        do throws(FTDIError) {
            try Self.check(ctx, ftdi_set_interface(ctx, interface == .a ? INTERFACE_A : INTERFACE_B),
                           "ftdi_set_interface", vendor: vendor, product: product)
            let rc: Int32 = serial.map { s in
                s.withCString { ftdi_usb_open_desc_index(ctx, Int32(vendor), Int32(product), nil, $0, 0) }
            } ?? ftdi_usb_open_desc_index(ctx, Int32(vendor), Int32(product), nil, nil, 0)
            try Self.check(ctx, rc, "ftdi_usb_open_desc_index", vendor: vendor, product: product, serial: serial)
            try Self.check(ctx, ftdi_usb_reset(ctx), "ftdi_usb_reset", vendor: vendor, product: product)
            try Self.check(ctx, ftdi_set_bitmode(ctx, 0, UInt8(BITMODE_RESET.rawValue)), "ftdi_set_bitmode",
                           vendor: vendor, product: product)
            try Self.check(ctx, ftdi_tcioflush(ctx), "ftdi_tcioflush", vendor: vendor, product: product)
            try Self.check(ctx, ftdi_set_latency_timer(ctx, latencyMilliseconds), "ftdi_set_latency_timer",
                           vendor: vendor, product: product)
            try Self.check(ctx, ftdi_read_data_set_chunksize(ctx, 65536), "ftdi_read_data_set_chunksize",
                           vendor: vendor, product: product)
            try Self.check(ctx, ftdi_write_data_set_chunksize(ctx, 65536), "ftdi_write_data_set_chunksize",
                           vendor: vendor, product: product)
            try Self.check(ctx, ftdi_set_bitmode(ctx, 0, UInt8(BITMODE_MPSSE.rawValue)), "ftdi_set_bitmode",
                           vendor: vendor, product: product)
        } catch {
            // Not yet a fully initialized object, so deinit will not run: free here, once.
            _ = ftdi_usb_close(ctx)
            ftdi_free(ctx)
            throw error
        }
        self.context = ctx
        self.vendor = vendor
        self.product = product
    }

    deinit {
        _ = ftdi_set_bitmode(context, 0, UInt8(BITMODE_RESET.rawValue))
        _ = ftdi_usb_close(context)
        ftdi_free(context)
    }

    /// Writes all bytes (an MPSSE command buffer).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FTDIError) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        var offset = 0
        while offset < bytes.count {
            let rc = ftdi_write_data(context, base.assumingMemoryBound(to: UInt8.self) + offset,
                                     Int32(bytes.count - offset))
            try Self.check(context, rc, "ftdi_write_data", vendor: vendor, product: product)
            offset += Int(rc)
        }
    }

    /// Reads exactly `buffer.count` bytes or fails with `.timeout` once `readTimeoutMilliseconds`
    /// of wall-clock time have passed. (Counting empty polls instead made "1 s" about 11 s: each
    /// `ftdi_read_data` that returns nothing already waits a USB transfer, on top of the sleep.)
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(FTDIError) {
        let ctx = context, vendor = vendor, product = product
        try Self.readFully(into: buffer, timeout: .milliseconds(readTimeoutMilliseconds)) { (p, n) throws(FTDIError) -> Int in
            let rc = ftdi_read_data(ctx, p, Int32(n))
            try Self.check(ctx, rc, "ftdi_read_data", vendor: vendor, product: product)
            return Int(rc)
        }
    }

    /// The read loop, separate from libftdi so tests can drive it with a fake `poll` that returns
    /// how many bytes it wrote (0: nothing yet). Sleeps 100 us between empty polls.
    package static func readFully(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration,
                                  clock: ContinuousClock = ContinuousClock(),
                                  poll: (UnsafeMutablePointer<UInt8>, Int) throws(FTDIError) -> Int) throws(FTDIError) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        let deadline = clock.now.advanced(by: timeout)
        var offset = 0
        while offset < buffer.count {
            let n = try poll(bytes + offset, buffer.count - offset)
            offset += n
            if n == 0 && offset < buffer.count {
                if clock.now >= deadline {
                    let ms = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
                    throw FTDIError(kind: .timeout, function: "ftdi_read_data", code: 0, libftdiMessage: "",
                                    message: "the device sent \(offset) of \(buffer.count) bytes within \(ms) ms")
                }
                usleep(100)
            }
        }
    }

    /// Drops anything queued in the chip, after a timeout or a stalled wait-on-GPIO.
    public func purge() throws(FTDIError) {
        try Self.check(context, ftdi_tcioflush(context), "ftdi_tcioflush", vendor: vendor, product: product)
    }

    private static func check(_ ctx: UnsafeMutablePointer<ftdi_context>, _ rc: Int32, _ function: String, vendor: UInt16,
                              product: UInt16, serial: String? = nil) throws(FTDIError) {
        guard rc < 0 else { return }
        let text = String(cString: ftdi_get_error_string(ctx))
        let ids = hex4(vendor) + ":" + hex4(product) + (serial.map { "/\($0)" } ?? "")
        let kind: FTDIError.Kind
        let message: String
        switch (function, rc) {
        case ("ftdi_usb_open_desc_index", -3), ("ftdi_usb_find_all", -3):
            kind = .notFound
            message = "no FTDI device (\(ids)) found; check the cable and the udev rule"
        case ("ftdi_usb_open_desc_index", -4), ("ftdi_usb_open_desc_index", -5),
             ("ftdi_usb_open_desc_index", -8), ("ftdi_usb_open_desc_index", -10):
            kind = .permission
            message = "FTDI device \(ids) found but cannot be opened; \(ftdiUdevRuleHint)"
        case ("ftdi_read_data", _), ("ftdi_write_data", _):
            kind = .io
            message = "FTDI device \(ids) stopped answering (unplugged or reset); replug it and retry"
        default:
            kind = .other
            message = "libftdi call failed for \(ids)"
        }
        throw FTDIError(kind: kind, function: function, code: rc, libftdiMessage: text, message: message)
    }

    private static func hex4(_ v: UInt16) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 4 - s.count) + s
    }

    private static func string(_ chars: [CChar]) -> String? {
        let s = String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return s.isEmpty ? nil : s
    }
}
