// A minimal HTTP/1.0 responder for Prometheus scrapes, bound to 127.0.0.1 only.
import Foundation
import Prometheus

public final class MetricsServer: Sendable {
    let fd: Int32
    public let port: Int
    let registry: PrometheusCollectorRegistry

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
        guard ok == 0, listen(s, 16) == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw ConfigError("metrics.port: cannot listen on 127.0.0.1:\(port): \(e); pick another port or 0 to disable")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
        fd = s
        let t = Thread { [self] in self.serve() }
        t.name = "aiotd-metrics"
        t.start()
    }

    private func serve() {
        var request = [UInt8](repeating: 0, count: 2048)
        var body: [UInt8] = []
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // closed by stop()
            }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = request.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            body.removeAll(keepingCapacity: true)
            registry.emit(into: &body)
            let head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            var out = Array(head.utf8)
            out.append(contentsOf: body)
            var off = 0
            while off < out.count {
                let n = out[off...].withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                off += n
            }
            close(c)
        }
    }

    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
