// Batched inference: the windows completed by the messages of one queue batch run as one batched
// pass per model (SoftwareEngine.inferBatch: each weight panel loaded once for all of them), then
// are published and logged one by one as before. Nothing waits for a batch to fill: the processing
// thread flushes at the end of whatever the queue held, so at low rates a batch is one window.
import AIOTModel
import AIOTStreams
import AIOTMQTT
import AIOTTelemetry
import Logging

/// Forecasts held until the end of the batch; buffers reserved once and reused (no allocation per
/// reading once they have grown to the largest batch).
struct PendingForecasts {
    struct Entry {
        var window: CompletedWindow
        var receivedAt: UInt64
        var startedAt: UInt64
        /// The one-step forecast this window's last step resolved: its error and persistence's.
        var resolved: (error: Double, persistence: Double)?
    }
    private(set) var entries: [Entry] = []
    /// The held windows' inputs; `entries[i].window.range` indexes it.
    private(set) var values: [Int32] = []
    private var slots = Set<Int>()
    /// One model's windows gathered for its batched pass, and their outputs.
    var inputs: [Int32] = []
    var outputs: [Int32] = []
    var group: [Int] = []
    var done: [Bool] = []
    /// Swapped with the core's `out` while flushing, so the message being handled keeps its output.
    var side = ProcessorOutput()

    init(capacity: Int = 64) {
        entries.reserveCapacity(capacity)
        group.reserveCapacity(capacity)
        done.reserveCapacity(capacity)
        slots.reserveCapacity(capacity)
    }

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    func holds(slot: Int) -> Bool { slots.contains(slot) }

    mutating func add(_ w: CompletedWindow, values from: ArraySlice<Int32>, receivedAt: UInt64, startedAt: UInt64,
                      resolved: (error: Double, persistence: Double)?) {
        var w = w
        let start = values.count
        values.append(contentsOf: from)
        w.range = start..<values.count
        entries.append(Entry(window: w, receivedAt: receivedAt, startedAt: startedAt, resolved: resolved))
        slots.insert(w.slot)
    }

    mutating func clear() {
        entries.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
    }
}

extension DaemonCore {
    /// Holds a window of the current message (`out`) for the batch.
    func hold(_ w: CompletedWindow, receivedAt: UInt64, startedAt: UInt64) {
        let resolved = out.resolved.last { $0.slot == w.slot && $0.targetStep == w.step && $0.horizon == 1 }
        pending.add(w, values: out.values[w.range], receivedAt: receivedAt, startedAt: startedAt,
                    resolved: resolved.map { ($0.error, $0.persistence - $0.actual) })
    }

    /// Runs every held window: one batched pass per model, then each forecast published and logged
    /// in the order its window completed within that model's group.
    func flushPending() {
        guard !pending.isEmpty else { return }
        swap(&out, &pending.side)
        out.reset()
        let n = pending.count
        // The gather buffers leave `pending` for the flush: `pending` is read below while they change.
        var (group, inputs, outputs, done) = ([Int](), [Int32](), [Int32](), [Bool]())
        swap(&group, &pending.group); swap(&inputs, &pending.inputs); swap(&outputs, &pending.outputs); swap(&done, &pending.done)
        defer { swap(&group, &pending.group); swap(&inputs, &pending.inputs); swap(&outputs, &pending.outputs); swap(&done, &pending.done) }
        done.removeAll(keepingCapacity: true)
        done.append(contentsOf: repeatElement(false, count: n))
        for i in 0..<n where !done[i] {
            let b = generation.bindings[pending.entries[i].window.template]
            let h = b.model.shape.horizon
            group.removeAll(keepingCapacity: true)
            inputs.removeAll(keepingCapacity: true)
            for j in i..<n where !done[j] && generation.bindings[pending.entries[j].window.template].engine === b.engine {
                group.append(j)
                inputs.append(contentsOf: pending.values[pending.entries[j].window.range])
                done[j] = true
            }
            let c = group.count
            if outputs.count < c * h { outputs.append(contentsOf: repeatElement(0, count: c * h - outputs.count)) }
            let t1 = monotonicNanos()
            let m: Measurement
            do {
                m = try inputs.withUnsafeBufferPointer { inp throws(InferenceError) in
                    try outputs.withUnsafeMutableBufferPointer { o throws(InferenceError) in
                        try b.engine.inferBatch(inp, count: c, into: UnsafeMutableBufferPointer(rebasing: o[0..<(c * h)]))
                    }
                }
            } catch {
                // A window out of range refuses the whole batch before any runs: run them one by
                // one, so only the bad one fails (and says so), as without batching.
                for j in group { forecastHeld(j, binding: b) }
                continue
            }
            let t2 = t1 &+ m.inferNanos
            if c > 1 { counters.batchedPasses += 1; counters.batchedWindows += c }
            var share = m
            share.inferNanos = m.inferNanos / UInt64(c)
            share.cpuNanos = m.cpuNanos / UInt64(c)
            share.energyMicrojoules = m.energyMicrojoules.map { $0 / Double(c) }
            for k in 0..<c {
                let e = pending.entries[group[k]]
                outputs.withUnsafeBufferPointer { o in
                    finish(e.window, binding: b, output: UnsafeBufferPointer(rebasing: o[(k * h)..<((k + 1) * h)]), measured: share,
                           receivedAt: e.receivedAt, startedAt: e.startedAt, inferStart: t1, inferEnd: t2, resolved: e.resolved)
                }
            }
        }
        // Forecasts recorded for steps whose actuals had already arrived resolve at once.
        if !out.resolved.isEmpty || !out.drift.isEmpty { publishAccuracyEvents(now: clock()) }
        swap(&out, &pending.side)
        pending.clear()
    }

    /// One held window on its own (after its batch was refused).
    private func forecastHeld(_ j: Int, binding b: Binding) {
        let e = pending.entries[j]
        let h = b.model.shape.horizon
        let t1 = monotonicNanos()
        let m: Measurement
        do {
            m = try inferOne(b, values: pending.values, range: e.window.range)
        } catch {
            counters.inferenceErrors += 1
            logger.error("inference failed", metadata: ["sensor": "\(printable(e.window.sensor))", "engine": "\(b.engine.kind.rawValue)", "error": "\(error)"])
            return
        }
        output.withUnsafeBufferPointer { o in
            finish(e.window, binding: b, output: UnsafeBufferPointer(rebasing: o[0..<h]), measured: m, receivedAt: e.receivedAt,
                   startedAt: e.startedAt, inferStart: t1, inferEnd: t1 &+ m.inferNanos, resolved: e.resolved)
        }
    }
}
