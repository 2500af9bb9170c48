// aiot-bench: per-inference time and steady-state allocations of the software engine for every
// committed model (models/**/NAME.safetensors with NAME.vectors.txt). Build in release:
//   swift build -c release --product aiot-bench && .build/release/aiot-bench [--json]
// tools/bench_engine.sh runs it beside the numpy reference and prints the ratios.

import AIOTModel
import CMallocCounter
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Options {
    var modelsDir = "models"
    var json = false
    var runs = 7
    var minSeconds = 0.05
    var filter: String?
    /// Run this many single inferences per model and print nothing else: a fixed amount of work
    /// for instruction-counting profilers (callgrind), where timing-calibrated loops vary.
    var profile: Int?
    /// With `profile`: run the windows through `inferBatch`, as many whole batches of every vector
    /// (64 windows for the committed files) as reach N.
    var profileBatch = false
    /// The software engine's kernel variant (nil: AIOT_KERNEL, else the fastest supported).
    var kernel: String?
    var listKernels = false

    static let usage = """
        usage: aiot-bench [--models DIR] [--runs N] [--min-seconds S] [--filter TEXT] [--json] [--profile N] [--kernel K] [--list-kernels]
          --models DIR       directory searched for NAME.safetensors + NAME.vectors.txt (default: models)
          --runs N           timed runs per entry point; the median is reported (default: 7)
          --min-seconds S    minimum duration of one run; iterations grow to reach it (default: 0.05)
          --filter TEXT      only models whose path contains TEXT
          --json             print JSON instead of a table
          --profile N        only run N checked single inferences per model, untimed (for callgrind)
          --profile-batch    with --profile: N windows as whole batches of every vector through inferBatch
          --kernel K         kernel variant: auto, portable, avx2, avx512, neon (default: AIOT_KERNEL, else auto)
          --list-kernels     print the variants this CPU runs, one per line, and exit
        """

    init(_ args: [String]) {
        var i = 1
        func value() -> String {
            i += 1
            guard i < args.count else { fail("\(args[i - 1]) needs a value\n\(Options.usage)") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--models": modelsDir = value()
            case "--json": json = true
            case "--runs": runs = Int(value()) ?? 0
            case "--min-seconds": minSeconds = Double(value()) ?? 0
            case "--filter": filter = value()
            case "--profile": profile = Int(value()) ?? 0
            case "--profile-batch": profileBatch = true
            case "--kernel": kernel = value()
            case "--list-kernels": listKernels = true
            case "-h", "--help": print(Options.usage); exit(0)
            default: fail("unknown argument \(args[i])\n\(Options.usage)")
            }
            i += 1
        }
        if runs < 1 || minSeconds <= 0 { fail("--runs must be >= 1 and --min-seconds > 0") }
        if let p = profile, p < 1 { fail("--profile needs a count >= 1") }
        while modelsDir.count > 1 && modelsDir.hasSuffix("/") { modelsDir.removeLast() }
    }
}

func fail(_ message: String) -> Never {
    let text = "aiot-bench: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU time of this process: unlike wall time it does not count time spent descheduled, so it stays
/// comparable on a loaded machine.
func cpuNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func readText(_ path: String) -> String? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Every NAME.safetensors under `dir` with NAME.vectors.txt beside it, sorted by path.
func findModels(_ dir: String) -> [(model: String, vectors: String)] {
    var found: [(String, String)] = []
    func walk(_ path: String, depth: Int) {
        guard depth < 8, let d = opendir(path) else { return }
        defer { closedir(d) }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name == "." || name == ".." { continue }
            let full = path + "/" + name
            if entry.pointee.d_type == UInt8(DT_DIR) {
                walk(full, depth: depth + 1)
            } else if name.hasSuffix(".safetensors") {
                let vectors = String(full.dropLast(".safetensors".count)) + ".vectors.txt"
                if access(vectors, R_OK) == 0 { found.append((full, vectors)) }
            }
        }
    }
    walk(dir, depth: 0)
    return found.sorted { $0.0 < $1.0 }
}

/// Median wall and CPU seconds per item of `body`, which processes `itemsPerCall` items per call.
func measure(runs: Int, minSeconds: Double, itemsPerCall: Int, _ body: () -> Void) -> (seconds: Double, cpuSeconds: Double, iterations: Int) {
    // Calibrate the number of calls per run so each run lasts at least minSeconds.
    var calls = 1
    while true {
        let t0 = now()
        for _ in 0..<calls { body() }
        let t = now() - t0
        if t >= minSeconds / 4 || calls >= 1 << 24 {
            calls = max(1, Int(Double(calls) * minSeconds / max(t, 1e-9)))
            break
        }
        calls *= 4
    }
    var wall: [Double] = [], cpu: [Double] = []
    for _ in 0..<runs {
        let t0 = now(), c0 = cpuNow()
        for _ in 0..<calls { body() }
        let c1 = cpuNow(), t1 = now()
        wall.append((t1 - t0) / Double(calls * itemsPerCall))
        cpu.append((c1 - c0) / Double(calls * itemsPerCall))
    }
    wall.sort()
    cpu.sort()
    return (wall[wall.count / 2], cpu[cpu.count / 2], calls * itemsPerCall)
}

/// Proves the interposed malloc counter counts: a deliberate heap allocation must move it.
func verifyMallocCounter() -> Bool {
    let before = aiot_malloc_count()
    let p = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
    p.storeBytes(of: 1, as: UInt8.self)
    let after = aiot_malloc_count()
    p.deallocate()
    return after > before
}

struct Row {
    var name: String
    var shape: ModelShape
    var singleMicros: Double
    var batchMicros: Double
    var singleCPUMicros: Double
    var batchCPUMicros: Double
    var singleAllocs: Double
    var batchAllocs: Double
    var iterations: Int
    var vectors: Int
}

let options = Options(CommandLine.arguments)
if options.listKernels {
    for v in KernelVariant.supported { print(v.rawValue) }
    exit(0)
}
let kernelChoice: Result<KernelVariant, KernelSelectionError> = options.kernel.map { name in
    Result { () throws(KernelSelectionError) in try KernelVariant.resolve(name) }
} ?? KernelVariant.environmentChoice
let kernel: KernelVariant
switch kernelChoice {
case .success(let k): kernel = k
case .failure(let e): fail(e.message)
}
guard verifyMallocCounter() else { fail("the malloc counter did not count a deliberate allocation; allocation figures would be meaningless") }
let pairs = findModels(options.modelsDir).filter { options.filter == nil || $0.model.contains(options.filter!) }
if pairs.isEmpty { fail("no NAME.safetensors with NAME.vectors.txt under \(options.modelsDir); run from the repository root or pass --models") }

var rows: [Row] = []
for (modelPath, vectorsPath) in pairs {
    let model: QuantizedModel
    let vectors: TestVectors
    do {
        model = try QuantizedModel(contentsOf: modelPath)
        guard let text = readText(vectorsPath) else { fail("cannot read \(vectorsPath)") }
        vectors = try TestVectors(text: text)
    } catch {
        fail("\(modelPath): \(error)")
    }
    let engine = SoftwareEngine(model: model, kernel: kernel)
    let count = vectors.count
    let nIn = vectors.inputCount, nOut = vectors.outputCount
    var outputs = [Int32](repeating: 0, count: count * nOut)
    // Models are named by their path under --models (elecdemand/W8A8 and nox/W8A8 are different models).
    let name = String(modelPath.dropFirst(options.modelsDir.count + 1).dropLast(".safetensors".count))

    if let n = options.profile {
        let ok = vectors.inputs.withUnsafeBufferPointer { inp in
            outputs.withUnsafeMutableBufferPointer { out in
                if options.profileBatch {
                    for _ in 0..<max(1, n / count) { try! engine.inferBatch(inp, count: count, into: out) }
                    return Array(out) == vectors.outputs
                }
                for i in 0..<n {
                    let v = i % count
                    try! engine.infer(UnsafeBufferPointer(rebasing: inp[(v * nIn)..<((v + 1) * nIn)]),
                                      into: UnsafeMutableBufferPointer(rebasing: out[(v * nOut)..<((v + 1) * nOut)]))
                }
                return n < count || Array(out) == vectors.outputs
            }
        }
        guard ok else { fail("\(modelPath): outputs differ from the reference vectors; run aiotctl check-vectors") }
        print("\(name): \(options.profileBatch ? max(1, n / count) * count : n) inferences\(options.profileBatch ? " in batches of \(count)" : "")")
        continue
    }

    // Every figure below comes from inferences whose outputs are checked against the reference.
    let (single, singleAllocs, singleOK) = vectors.inputs.withUnsafeBufferPointer { inp in
        outputs.withUnsafeMutableBufferPointer { buffer in
            let out = buffer
            var cursor = 0
            let single = {
                let i = cursor
                cursor = cursor + 1 == count ? 0 : cursor + 1
                try! engine.infer(UnsafeBufferPointer(rebasing: inp[(i * nIn)..<((i + 1) * nIn)]),
                                  into: UnsafeMutableBufferPointer(rebasing: out[(i * nOut)..<((i + 1) * nOut)]))
            }
            for _ in 0..<(2 * count) { single() }  // warm-up, and every output written once
            let a0 = aiot_malloc_count()
            let allocCalls = 10 * count
            for _ in 0..<allocCalls { single() }
            let allocs = Double(aiot_malloc_count() - a0) / Double(allocCalls)
            let m = measure(runs: options.runs, minSeconds: options.minSeconds, itemsPerCall: 1, single)
            return (m, allocs, Array(out) == vectors.outputs)
        }
    }
    outputs = [Int32](repeating: 0, count: count * nOut)
    let (batched, batchAllocs, batchOK) = vectors.inputs.withUnsafeBufferPointer { inp in
        outputs.withUnsafeMutableBufferPointer { buffer in
            let out = buffer
            let batch = { try! engine.inferBatch(inp, count: count, into: out) }
            batch()
            let a0 = aiot_malloc_count()
            for _ in 0..<10 { batch() }
            let allocs = Double(aiot_malloc_count() - a0) / Double(10 * count)
            let m = measure(runs: options.runs, minSeconds: options.minSeconds, itemsPerCall: count, batch)
            return (m, allocs, Array(out) == vectors.outputs)
        }
    }
    guard singleOK, batchOK else { fail("\(modelPath): outputs differ from the reference vectors; run aiotctl check-vectors") }
    rows.append(Row(name: name, shape: model.shape, singleMicros: single.seconds * 1e6, batchMicros: batched.seconds * 1e6,
                    singleCPUMicros: single.cpuSeconds * 1e6, batchCPUMicros: batched.cpuSeconds * 1e6,
                    singleAllocs: singleAllocs, batchAllocs: batchAllocs, iterations: single.iterations, vectors: count))
}

func fixed(_ v: Double, _ digits: Int) -> String {
    var s = String(Int((v * pow(10, Double(digits))).rounded()))
    while s.count <= digits { s = "0" + s }
    return digits == 0 ? s : String(s.dropLast(digits)) + "." + String(s.suffix(digits))
}

if options.profile != nil { exit(0) }
if options.json {
    let models = rows.map { r -> JSONValue in
        .object([
            ("name", .string(r.name)),
            ("shape", .object([("window", .int(Int64(r.shape.window))), ("features", .int(Int64(r.shape.features))),
                               ("d_model", .int(Int64(r.shape.dModel))), ("heads", .int(Int64(r.shape.heads))),
                               ("layers", .int(Int64(r.shape.layers))), ("horizon", .int(Int64(r.shape.horizon)))])),
            ("single_us", .double(r.singleMicros)), ("batch_us", .double(r.batchMicros)),
            ("single_cpu_us", .double(r.singleCPUMicros)), ("batch_cpu_us", .double(r.batchCPUMicros)),
            ("allocations_per_inference_single", .double(r.singleAllocs)),
            ("allocations_per_inference_batch", .double(r.batchAllocs)),
            ("timed_inferences_per_run", .int(Int64(r.iterations))), ("vectors", .int(Int64(r.vectors))),
        ])
    }
    print(JSONValue.object([("engine", .string("software")), ("kernel", .string(kernel.rawValue)), ("runs", .int(Int64(options.runs))),
                            ("malloc_counter_verified", .bool(true)), ("models", .array(models))]).serialized)
} else {
    let width = max(5, rows.map(\.name.count).max() ?? 5)
    func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
    func lpad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
    print(pad("model", width) + "  " + lpad("single us", 10) + "  " + lpad("batch us", 10) + "  " + lpad("cpu us", 10)
          + "  " + lpad("cpu batch", 10) + "  " + lpad("allocs/inf", 10))
    for r in rows {
        print(pad(r.name, width) + "  " + lpad(fixed(r.singleMicros, 2), 10) + "  " + lpad(fixed(r.batchMicros, 2), 10)
              + "  " + lpad(fixed(r.singleCPUMicros, 2), 10) + "  " + lpad(fixed(r.batchCPUMicros, 2), 10)
              + "  " + lpad(fixed(max(r.singleAllocs, r.batchAllocs), 2), 10))
    }
    print("kernel \(kernel.rawValue); us per inference: wall and process CPU time, median of \(options.runs) runs; allocations counted by the interposed malloc counter (verified to count)")
}
