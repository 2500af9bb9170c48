// `--device sim-rtl:PATH`: the accelerator RTL (firmware/cosim/aiot-rtl-sim, a Verilator model of
// aiot_top) behind the same `Transport` seam as the FT2232H. Every channel-A command buffer goes to
// the process as one frame and its reply comes back, so the bytes the FPGA engine and the upload
// send are executed by the real RTL through its SPI pins (firmware/README.md "Co-simulation").
//
// What it models: the accelerator's register map, parameter upload and VERIFY_PARAMS, inference,
// BUSY on GPIOL1, a configured FPGA (DONE and INIT_B read high). What it does not: the
// configuration flash and bitstream loading (the process starts configured and empty, so each
// `aiotctl` run sees a freshly booted FPGA with no weights), the power monitors on channel B
// (refused with a clear error), and USB timing (`modelledSeconds` is nil).
import Glibc

public final class RTLSimTransport: Transport {
    public let name: String
    public var modelledSeconds: Double? { nil }
    private let pid: pid_t
    /// Our end of a socket pair that is the child's stdin and stdout. A socket rather than pipes so
    /// a dead child is an error from `send` (MSG_NOSIGNAL), not a SIGPIPE that kills the host.
    private var fd: Int32
    private var stats = [LinkCounters(), LinkCounters()]
    /// Frame header scratch, allocated once: the per-inference path allocates nothing.
    private let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)

    public init(executable: String) throws(LinkError) {
        name = "sim-rtl:\(executable)"
        guard access(executable, X_OK) == 0 else {
            throw LinkError(.notFound, "no co-simulation executable at \(executable); build it with firmware/cosim/build.sh (it prints the path)")
        }
        var sv: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
            throw LinkError(.other, "socketpair failed: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, sv[1], 0)
        posix_spawn_file_actions_adddup2(&actions, sv[1], 1)
        var child: pid_t = 0
        let rc = executable.withCString { path in
            var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
            defer { free(argv[0]) }
            return posix_spawn(&child, path, &actions, nil, &argv, environ)
        }
        close(sv[1])
        guard rc == 0 else {
            close(sv[0])
            throw LinkError(.other, "cannot start \(executable): \(String(cString: strerror(rc))); rebuild it with firmware/cosim/build.sh")
        }
        pid = child
        fd = sv[0]
    }

    deinit {
        if fd >= 0 {
            var q: UInt8 = UInt8(ascii: "Q")
            _ = send(fd, &q, 1, Int32(MSG_NOSIGNAL))
            close(fd)
        }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        header.deallocate()
    }

    public func execute(_ channel: Channel, _ commands: UnsafeRawBufferPointer,
                        reply: UnsafeMutableRawBufferPointer) throws(LinkError) {
        guard channel == .a else {
            throw LinkError(.other, "\(name) models the accelerator only; channel B (power monitors) is not simulated — use sim:PATH for the whole board")
        }
        guard fd >= 0 else { throw LinkError(.disconnected, "\(name) has exited; run the command again") }
        let n = UInt32(commands.count)
        header[0] = UInt8(ascii: "X"); header[1] = 0
        header[2] = UInt8(n & 0xFF); header[3] = UInt8(n >> 8 & 0xFF)
        header[4] = UInt8(n >> 16 & 0xFF); header[5] = UInt8(n >> 24)
        try sendAll(UnsafeRawBufferPointer(rebasing: header[0..<6]))
        try sendAll(commands)
        try receiveAll(UnsafeMutableRawBufferPointer(rebasing: header[0..<5]))
        let status = header[0]
        let length = Int(header[1]) | Int(header[2]) << 8 | Int(header[3]) << 16 | Int(header[4]) << 24
        if status != 0 {
            let message = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 1)
            defer { message.deallocate() }
            try receiveAll(message)
            throw LinkError(.protocolError, "\(name): " + String(decoding: message, as: UTF8.self))
        }
        guard length == reply.count else {
            shutDown()
            throw LinkError(.protocolError, "\(name) returned \(length) bytes for a buffer that reads \(reply.count)")
        }
        try receiveAll(reply)
        stats[0].roundTrips += 1
        stats[0].bytesOut += commands.count
        stats[0].bytesIn += reply.count
    }

    /// The process keeps no USB state to reset; a dead one stays dead (the caller falls back).
    public func recover() throws(LinkError) {
        guard fd >= 0 else { throw LinkError(.disconnected, "\(name) has exited; run the command again") }
    }

    public func counters(_ channel: Channel) -> LinkCounters { stats[channel.rawValue] }

    private func sendAll(_ b: UnsafeRawBufferPointer) throws(LinkError) {
        var k = 0
        while k < b.count {
            let w = send(fd, b.baseAddress! + k, b.count - k, Int32(MSG_NOSIGNAL))
            if w < 0 && errno == EINTR { continue }
            guard w > 0 else { shutDown(); throw LinkError(.disconnected, "\(name) stopped reading (\(String(cString: strerror(errno))))") }
            k += w
        }
    }

    private func receiveAll(_ b: UnsafeMutableRawBufferPointer) throws(LinkError) {
        var k = 0
        while k < b.count {
            let r = recv(fd, b.baseAddress! + k, b.count - k, 0)
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { shutDown(); throw LinkError(.disconnected, "\(name) exited mid-reply") }
            k += r
        }
    }

    private func shutDown() {
        if fd >= 0 { close(fd); fd = -1 }
    }
}
