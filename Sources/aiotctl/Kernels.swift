import AIOTModel
import ArgumentParser

/// The kernel variant a command runs: `--kernel NAME`, else AIOT_KERNEL, else the fastest this CPU
/// has. A name this CPU cannot run is an error (exit 2), never silently replaced.
func chooseKernel(_ name: String?) throws -> KernelVariant {
    do {
        if let name { return try KernelVariant.resolve(name) }
        return try KernelVariant.environmentChoice.get()
    } catch {
        printError("\(error.message)")
        throw ExitCode(2)
    }
}

extension AIOTCtl {
    /// Lists the software engine's kernel variants and which one runs here.
    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kernels",
            abstract: "List the software engine's kernel variants, which this CPU runs, and which is selected.",
            discussion: "The engine picks the fastest variant the CPU supports at run time; AIOT_KERNEL=portable|avx2|avx512|neon overrides it (for comparisons and tests)."
        )

        @Flag(help: "Print one JSON document instead of text.")
        var json = false

        func run() throws {
            let selected = try chooseKernel(nil)
            if json {
                print(JSONValue.object([
                    ("selected", .string(selected.rawValue)), ("best", .string(KernelVariant.best.rawValue)),
                    ("supported", .array(KernelVariant.supported.map { .string($0.rawValue) })),
                    ("variants", .array(KernelVariant.allCases.map { .string($0.rawValue) })),
                ]).serialized)
                return
            }
            for v in KernelVariant.allCases {
                let mark = v == selected ? "*" : " "
                print("\(mark) \(v.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(v.isSupported ? "supported" : "not available on this CPU/build")")
            }
            print("selected: \(selected.rawValue)" + (selected == KernelVariant.best ? " (fastest supported)" : " (from \(KernelVariant.environmentVariable))"))
        }
    }
}
