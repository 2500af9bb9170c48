// swift-tools-version:6.0
// libFuzzer targets, one executable per parser, built apart from the main package so its build and
// CI do not pay for the sanitizers:
//   swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address
// tools/fuzz.sh builds and runs them (long runs); tools/fuzz.sh --smoke is the bounded CI run.
import PackageDescription
import Foundation

// A path dependency's identity is its directory's name, which differs between clones and worktrees.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = root.lastPathComponent

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: rootPackage) })
}

let package = Package(
    name: "aiot-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzSupport"),
        fuzzTarget("fuzz-payload", ["AIOTStreams"]),
        fuzzTarget("fuzz-safetensors", ["AIOTModel"]),
        fuzzTarget("fuzz-bitstream", ["AIOTBoard"]),
        fuzzTarget("fuzz-config", ["AIOTDaemon"]),
        fuzzTarget("fuzz-vectors", ["AIOTModel"]),
        fuzzTarget("fuzz-spool", ["AIOTDaemon"]),
        fuzzTarget("fuzz-energylog", ["AIOTTelemetry"]),
        fuzzTarget("fuzz-board-replies", ["AIOTBoard"]),
        fuzzTarget("fuzz-command", ["AIOTModel"]),
        fuzzTarget("fuzz-deploy", ["AIOTDeploy"]),
    ],
    swiftLanguageModes: [.v6]
)
