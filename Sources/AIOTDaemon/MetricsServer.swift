// A minimal HTTP/1.0 responder for Prometheus scrapes, bound to 127.0.0.1 only.
// Each connection is served on its own short-lived thread with receive and send timeouts, so a
// client that connects and then says nothing (or never reads) delays nobody else's scrape and holds
// its thread for at most `ioTimeoutSeconds` per call; at most `maxConnections` are served at once.
import Foundation
import Prometheus
import Synchronization

public final class MetricsServer: Sendable {
    let fd: Int32
    public let port: Int
    let registry: PrometheusCollectorRegistry
    /// Connections being served now, and those closed unanswered because `maxConnections` were busy.
    let active = Atomic<Int>(0)
    let refused = Atomic<Int>(0)
    public static let maxConnections = 16
    public static let ioTimeoutSeconds = 2

    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves every GET with the registry's text.
    public init(port: Int, registry: PrometheusCollectorRegistry) throws(ConfigError) {
        self.registry = registry
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw ConfigError("metrics.port: cannot create a socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0, listen(s, 64) == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw ConfigError("metrics.port: cannot listen on 127.0.0.1:\(port): \(e); pick another port or 0 to disable")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
        fd = s
        let t = Thread { [self] in self.acceptLoop() }
        t.name = "aiotd-metrics"
        t.start()
    }

    /// Scrapes refused because `maxConnections` were being served.
    public var refusedConnections: Int { refused.load(ordering: .relaxed) }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE { continue }
                return  // closed by stop()
            }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)  // not inherited by anything aiotd spawns
            guard active.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                active.subtract(1, ordering: .relaxed)
                refused.add(1, ordering: .relaxed)
                close(c)
                continue
            }
            let worker = Thread { [self] in
                self.serve(c)
                close(c)
                self.active.subtract(1, ordering: .relaxed)
            }
            worker.name = "aiotd-scrape"
            worker.start()
        }
    }

    private func serve(_ c: Int32) {
        var tv = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // The request line is all we need (every GET gets the metrics); one read, bounded.
        var request = [UInt8](repeating: 0, count: 2048)
        let n = request.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return }  // timed out or closed without a request
        var body: [UInt8] = []
        registry.emit(into: &body)
        var out = Array("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        out.append(contentsOf: body)
        var off = 0
        while off < out.count {
            let sent = out[off...].withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }  // the peer stopped reading (send timeout) or left
            off += sent
        }
    }

    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
