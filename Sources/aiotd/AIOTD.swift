// aiotd: the streaming daemon. Flags: --config/-c FILE (default /etc/aiotd/aiotd.toml),
// --check-config FILE, --version. Argument parsing goes through swift-argument-parser so that
// --help, the man page and the shell completions come from one declaration. (@main, not a
// main.swift: top-level `await AIOTD.main()` picks the synchronous main, which only prints help.)
import AIOTDaemon
import AIOTModel
import ArgumentParser
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

enum FileHandleStderr {
    static func write(_ s: String) { let b = Array(s.utf8); _ = b.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) } }
}

@main
struct AIOTD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aiotd",
        abstract: "MQTT forecasting daemon: sensor readings in, forecasts out, one energy/latency record per inference.",
        discussion: """
            Runs under systemd as aiotd.service (Type=notify, watchdog). SIGHUP reloads the \
            configuration atomically (a broken file keeps the running one); SIGTERM drains, publishes \
            the retained offline status and exits 0.
            """,
        version: "aiotd \(aiotdVersion)"
    )

    @Option(name: [.customLong("config"), .customShort("c")], help: ArgumentHelp("The configuration file.", valueName: "file"),
            completion: .file(extensions: ["toml"]))
    var config: String = "/etc/aiotd/aiotd.toml"

    @Option(name: .customLong("check-config"),
            help: ArgumentHelp("Validate a configuration file (and its models) and exit: 0 when it is good, 1 with the reason otherwise.", valueName: "file"),
            completion: .file(extensions: ["toml"]))
    var checkConfig: String?

    func run() async throws {
        if let path = checkConfig {
            do {
                let c = try checkConfiguration(path: path)
                print("\(path): OK (\(c.streams.count) stream(s): \(c.streams.map(\.sensor).joined(separator: ", ")); broker \(c.mqtt.endpoint))")
                return
            } catch {
                FileHandleStderr.write("aiotd: \(error)\n")
                throw ExitCode(1)
            }
        }
        try await serve(configPath: config)
    }

    private func serve(configPath: String) async throws {
        // Journald adds timestamps; stderr lines stay short.
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .info
            return h
        }
        var logger = Logger(label: "aiotd")
        // The software engine's kernel variant: AIOT_KERNEL must name one this CPU runs.
        switch KernelVariant.environmentChoice {
        case .success(let k):
            logger.info("software engine kernel: \(k.rawValue) (supported here: \(KernelVariant.supported.map(\.rawValue).joined(separator: ", ")))")
        case .failure(let e):
            FileHandleStderr.write("aiotd: \(e.message)\n")
            throw ExitCode(1)
        }

        let daemon: Daemon
        do {
            daemon = try Daemon(options: DaemonOptions(configPath: configPath), logger: logger)
        } catch {
            FileHandleStderr.write("aiotd: \(error)\n")
            throw ExitCode(1)
        }
        logger.logLevel = Logger.Level(rawValue: daemon.initialConfig.logLevel) ?? .info

        let group = ServiceGroup(configuration: .init(
            services: [.init(service: daemon, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            FileHandleStderr.write("aiotd: \(error)\n")
            throw ExitCode(1)
        }
    }
}

