// Start-up ordering against systemd's protocol: READY=1 only once a SIGHUP can be handled.
import Testing
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct StartupOrdering {
    /// systemd may send a reload the instant it sees READY=1: SIGHUP's default action would kill
    /// a daemon whose handler is installed later. Sent here on the READY=1 datagram itself.
    @Test func aSIGHUPRightAtReadyReloadsInsteadOfKilling() async throws {
        let sockPath = Harness.tempDir("notify-hup") + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un(); addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in sockPath.utf8.enumerated() { p[i] = b } }
        #expect(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } } == 0)
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        final class Shared: Sendable { let pid = Mutex<pid_t>(0); let sent = Atomic<Bool>(false); let log = Mutex<[String]>([]) }
        let shared = Shared()
        let reader = LoopThread("notify-reader") { [fd] in
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            let m = String(decoding: buf[0..<n], as: UTF8.self)
            shared.log.withLock { $0.append(m) }
            if m.contains("READY=1"), !shared.sent.load(ordering: .sequentiallyConsistent) {
                let pid = shared.pid.withLock { $0 }
                if pid > 0 { kill(pid, SIGHUP); shared.sent.store(true, ordering: .sequentiallyConsistent) }
            }
        }
        defer { reader.stop() }
        let broker = try await Broker()
        let d = try DaemonUnderTest(port: broker.port, streams: oneStream)
        d.process = try ChildProcess(Harness.aiotdPath, ["--config", d.configPath], logPath: d.dir + "/aiotd.log", environment: ["NOTIFY_SOCKET": sockPath])
        shared.pid.withLock { $0 = d.process.pid }
        let sent = await Harness.waitUntil(timeout: 15) { shared.sent.load(ordering: .sequentiallyConsistent) }
        #expect(sent, "no READY=1: \(shared.log.withLock { $0 })")
        let reloaded = await Harness.waitUntil(timeout: 10) { d.process.log.contains("configuration reloaded") || !d.process.isRunning }
        #expect(reloaded && d.process.isRunning, "log: \(d.process.log)")
        d.process.signal(SIGTERM)
        #expect(exited(await d.process.wait(timeout: 5)) == 0)
    }
}
