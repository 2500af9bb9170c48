// sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET (a leading @ is the abstract namespace).
import Foundation

public struct SystemdNotifier: Sendable {
    let path: String?
    /// Watchdog interval from $WATCHDOG_USEC (only when $WATCHDOG_PID is unset or ours).
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        if let us = environment["WATCHDOG_USEC"].flatMap(UInt64.init), us > 0,
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdogInterval = .microseconds(us)
        } else {
            watchdogInterval = nil
        }
    }

    public var isActive: Bool { path != nil }

    /// Sends e.g. "READY=1\nSTATUS=serving". Returns false when unset or the send failed.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let path else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let cap = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < cap else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let sent = state.utf8CString.withUnsafeBufferPointer { msg in
            withUnsafePointer(to: &addr) { ap in
                ap.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    sendto(fd, msg.baseAddress, msg.count - 1, Int32(MSG_NOSIGNAL), sa, len)
                }
            }
        }
        return sent >= 0
    }
}
