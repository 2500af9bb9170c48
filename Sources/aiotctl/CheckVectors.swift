import AIOTModel
import ArgumentParser

extension AIOTCtl {
    /// Runs the software engine over a shared vector file and reports bit-identity.
    struct CheckVectors: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-vectors",
            abstract: "Check the software engine bit for bit against a vector file (docs/arithmetic.md §11).",
            discussion: "Exits with status 1 if any vector differs, 2 if the model or vector file is unusable."
        )

        @Option(help: "Model file (.safetensors).")
        var model: String

        @Option(help: "Vector file (NAME.vectors.txt) written by the numpy reference for this model.")
        var vectors: String

        @Option(help: "How many mismatching vectors to list.")
        var show = 5

        @Flag(help: "Print one JSON document instead of text.")
        var json = false

        @Option(help: "Kernel variant to run: auto, portable, avx2, avx512, neon, or all (every variant this CPU supports, one after the other). Default: AIOT_KERNEL, else the fastest supported.")
        var kernel: String?

        func validate() throws {
            guard show >= 0 else { throw ValidationError("--show must be 0 or more") }
        }

        func run() throws {
            let m = try loadModel(model)
            let parsed: TestVectors
            do {
                parsed = try TestVectors(text: try readText(vectors))
            } catch let error as VectorFileError {
                printError("\(vectors): \(error.message)")
                throw ExitCode(2)
            }
            let kernels = kernel == "all" ? KernelVariant.supported : [try chooseKernel(kernel)]
            var passed = true
            for variant in kernels {
                let result: VectorCheckResult
                do {
                    result = try parsed.check(with: SoftwareEngine(model: m, kernel: variant), keepMismatches: show)
                } catch {
                    printError("\(vectors): \(error.message)")
                    throw ExitCode(2)
                }
                if json {
                    let doc = JSONValue.object([
                        ("model", .string(model)), ("identity", .string(m.identity)), ("vectors", .string(vectors)),
                        ("kernel", .string(variant.rawValue)),
                        ("total", .int(Int64(result.total))), ("identical", .int(Int64(result.identical))),
                        ("passed", .bool(result.passed)),
                        ("mismatches", .array(result.mismatches.map { mm in
                            .object([
                                ("index", .int(Int64(mm.index))),
                                ("expected", .array(mm.expected.map { .int(Int64($0)) })),
                                ("actual", .array(mm.actual.map { .int(Int64($0)) })),
                            ])
                        })),
                    ])
                    print(doc.serialized)
                } else {
                    print("\(result.identical) of \(result.total) vectors bit-identical (\(model), kernel \(variant.rawValue))")
                    for mm in result.mismatches {
                        print("  vector \(mm.index): expected \(mm.expected), got \(mm.actual)")
                    }
                }
                passed = passed && result.passed
            }
            if !passed { throw ExitCode(1) }
        }
    }
}
