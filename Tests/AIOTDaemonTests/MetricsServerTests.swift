// The Prometheus endpoint against real TCP clients: an idle connection must not stall other scrapes.
import Testing
import Foundation
import Prometheus
@testable import AIOTDaemon

/// A TCP connection to 127.0.0.1:`port`, or -1.
private func connectLoopback(_ port: Int) -> Int32 {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var a = sockaddr_in(); a.sin_family = sa_family_t(AF_INET); a.sin_port = in_port_t(UInt16(port).bigEndian)
    a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    if rc != 0 { close(s); return -1 }
    return s
}

/// One GET; the whole response and how long it took.
private func scrape(_ port: Int) -> (text: String, seconds: Double) {
    let t0 = Date()
    let s = connectLoopback(port)
    guard s >= 0 else { return ("", 0) }
    defer { close(s) }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let req = Array("GET /metrics HTTP/1.0\r\n\r\n".utf8)
    _ = req.withUnsafeBytes { send(s, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var all: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        all += buf[0..<n]
    }
    return (String(decoding: all, as: UTF8.self), Date().timeIntervalSince(t0))
}

@Suite(.serialized) struct MetricsEndpoint {
    @Test func idleClientsDoNotStallScrapes() async throws {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "aiotd_test_total").increment(by: Int64(3))
        let server = try MetricsServer(port: 0, registry: registry)
        defer { server.stop() }
        // Three clients connect and say nothing (a stuck scraper, a port scan).
        let idle = (0..<3).map { _ in connectLoopback(server.port) }
        defer { idle.forEach { close($0) } }
        #expect(idle.allSatisfy { $0 >= 0 })
        try await Task.sleep(for: .milliseconds(100))
        for _ in 0..<5 {
            let (text, seconds) = scrape(server.port)
            #expect(text.hasPrefix("HTTP/1.0 200 OK"), "\(text)")
            #expect(text.contains("aiotd_test_total 3"), "\(text)")
            // Before, the single accept loop sat in recv() on the first idle client for 2 s.
            #expect(seconds < 1.0, "a scrape took \(seconds) s behind idle clients")
        }
    }

    @Test func idleClientIsDroppedAfterTheTimeout() async throws {
        let server = try MetricsServer(port: 0, registry: PrometheusCollectorRegistry())
        defer { server.stop() }
        let s = connectLoopback(server.port)
        defer { close(s) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let t0 = Date()
        var b: UInt8 = 0
        let n = recv(s, &b, 1, 0)   // the server closes us: 0 (EOF)
        let waited = Date().timeIntervalSince(t0)
        #expect(n == 0)
        #expect(waited >= Double(MetricsServer.ioTimeoutSeconds) - 0.5 && waited < Double(MetricsServer.ioTimeoutSeconds) + 3, "\(waited) s")
    }
}
