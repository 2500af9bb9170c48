// aiotd: the streaming daemon. Flags: --config FILE (default /etc/aiotd/aiotd.toml),
// --check-config FILE, --version.
import AIOTDaemon
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

func usage() -> Never {
    FileHandleStderr.write("usage: aiotd [--config FILE] | --check-config FILE | --version\n")
    exit(2)
}

enum FileHandleStderr {
    static func write(_ s: String) { let b = Array(s.utf8); _ = b.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) } }
}

var configPath = "/etc/aiotd/aiotd.toml"
var checkOnly = false
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--config", "-c": guard let v = args.popFirst() else { usage() }; configPath = v
    case "--check-config": guard let v = args.popFirst() else { usage() }; configPath = v; checkOnly = true
    case "--version": print("aiotd \(aiotdVersion)"); exit(0)
    case "--help", "-h": usage()
    default: FileHandleStderr.write("aiotd: unknown argument \(a)\n"); usage()
    }
}

if checkOnly {
    do {
        let c = try checkConfiguration(path: configPath)
        print("\(configPath): OK (\(c.streams.count) stream(s): \(c.streams.map(\.sensor).joined(separator: ", ")); broker \(c.mqtt.host):\(c.mqtt.port))")
        exit(0)
    } catch {
        FileHandleStderr.write("aiotd: \(error)\n")
        exit(1)
    }
}

// Journald adds timestamps; stderr lines stay short.
LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    h.logLevel = .info
    return h
}
var logger = Logger(label: "aiotd")

let daemon: Daemon
do {
    daemon = try Daemon(options: DaemonOptions(configPath: configPath), logger: logger)
} catch {
    FileHandleStderr.write("aiotd: \(error)\n")
    exit(1)
}
logger.logLevel = Logger.Level(rawValue: daemon.initialConfig.logLevel) ?? .info

let group = ServiceGroup(configuration: .init(
    services: [.init(service: daemon, successTerminationBehavior: .gracefullyShutdownGroup)],
    gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger))
do {
    try await group.run()
    exit(0)
} catch {
    FileHandleStderr.write("aiotd: \(error)\n")
    exit(1)
}
