// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "aiot-runtime",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "aiotd", targets: ["aiotd"]),
        .executable(name: "aiotctl", targets: ["aiotctl"]),
        .library(name: "AIOTModel", targets: ["AIOTModel"]),
        .library(name: "AIOTDaemon", targets: ["AIOTDaemon"]),
        // For the fuzz targets in Fuzz/ (a nested package built with -sanitize=fuzzer,address).
        .library(name: "AIOTStreams", targets: ["AIOTStreams"]),
        .library(name: "AIOTBoard", targets: ["AIOTBoard"]),
        .library(name: "AIOTTelemetry", targets: ["AIOTTelemetry"]),
        .library(name: "AIOTDeploy", targets: ["AIOTDeploy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
    ],
    targets: [
        // The integer model: contract primitives, model file, engines. Depends only on CKernels.
        .target(name: "AIOTModel", dependencies: ["CKernels"]),
        // The engine's 16-bit matrix product in C, one variant per instruction set (AVX2, AVX-512
        // VNNI, NEON) chosen at run time: Swift cannot compile one function for another CPU.
        .target(name: "CKernels"),
        // Per-sensor time-aligned windows, payload parsing, reading policy.
        .target(name: "AIOTStreams", dependencies: ["AIOTModel"]),
        // C libraries, each behind exactly one thin Swift wrapper.
        .systemLibrary(name: "CFTDI", pkgConfig: "libftdi1", providers: [.apt(["libftdi1-dev", "libusb-1.0-0-dev"])]),
        .target(name: "FTDI", dependencies: ["CFTDI"]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .target(name: "AIOTMQTT", dependencies: ["CMosquitto"]),
        // The board: MPSSE transport, SPI flash, bitstreams, accelerator protocol, board model.
        .target(name: "AIOTBoard", dependencies: ["AIOTModel", "FTDI"]),
        // The simulated boards (XC7S15 gateway, iCE40 board) and test-bitstream generators: for
        // tests and the `sim:` device, not part of the production board module.
        .target(name: "AIOTBoardSim", dependencies: ["AIOTBoard", "AIOTModel"]),
        // One device selector: DeviceAddress -> transport (FTDI, sim:, sim-rtl:) -> engine; used by
        // aiotd and aiotctl alike.
        .target(name: "AIOTDevices", dependencies: ["AIOTBoard", "AIOTBoardSim", "AIOTModel"]),
        // The artifact channel (docs/deploy.md): signed manifests, chunk reassembly, A/B store.
        .target(name: "AIOTDeploy", dependencies: ["AIOTModel", .product(name: "Crypto", package: "swift-crypto")]),
        // Energy/latency log, power sources, summaries.
        .target(name: "AIOTTelemetry", dependencies: ["AIOTModel"]),
        // The daemon core as a library so tests run it in-process.
        .target(
            name: "AIOTDaemon",
            dependencies: [
                "AIOTModel", "AIOTStreams", "AIOTMQTT", "AIOTTelemetry", "AIOTBoard", "AIOTDevices", "AIOTDeploy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .executableTarget(
            name: "aiotd",
            dependencies: [
                "AIOTDaemon", "AIOTModel", .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "aiotctl",
            dependencies: [
                "AIOTModel", "AIOTBoard", "AIOTBoardSim", "AIOTDevices", "AIOTTelemetry", "AIOTDeploy", "AIOTMQTT",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Benchmarks: a release-mode executable with a malloc counter interposed.
        .target(name: "CMallocCounter"),
        // Test fixtures shared by the MQTT and daemon tests (children with signals unblocked).
        .target(name: "AIOTTestSupport"),
        .executableTarget(name: "aiot-bench", dependencies: ["AIOTModel", "CMallocCounter"]),

        .testTarget(name: "AIOTModelTests", dependencies: ["AIOTModel"]),
        .testTarget(name: "AIOTStreamsTests", dependencies: ["AIOTStreams"]),
        .testTarget(name: "AIOTBoardTests", dependencies: ["AIOTBoard", "AIOTBoardSim", "AIOTDevices", "FTDI", "CMallocCounter"]),
        .testTarget(name: "AIOTMQTTTests", dependencies: ["AIOTMQTT", "AIOTTestSupport"]),
        .testTarget(name: "AIOTTelemetryTests", dependencies: ["AIOTTelemetry"]),
        .testTarget(name: "AIOTDeployTests", dependencies: ["AIOTDeploy"]),
        .testTarget(name: "AIOTDaemonTests", dependencies: [
            "AIOTDaemon", "AIOTBoardSim", "AIOTDeploy", "AIOTTestSupport", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
