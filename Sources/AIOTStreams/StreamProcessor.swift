// The pure core of the daemon's data path: message bytes and arrival time in; accepted and
// rejected readings and completed windows out. No MQTT, no logging, no Foundation, no clock: the
// caller says when a message arrived, so tests replay any timeline. Not thread-safe: one owner
// (the daemon's single processing thread).
import AIOTModel

/// One `[[stream]]`: which sensors it serves, what its model reads, how readings are judged.
public struct StreamTemplate: Sendable, Equatable {
    /// For status and logs: the stanza's `name`, else "stream[i]".
    public var name: String
    public var pattern: SensorPattern
    public var io: ModelIO
    public var policy: WindowPolicy
    /// Feature name -> another sensor whose bare values feed that feature (one-sensor stanzas).
    public var featureTopics: [String: String]
    /// Online accuracy: how errors are judged, and the model's own validation figures.
    public var accuracy = AccuracyPolicy()
    public var reference = AccuracyReference()
    public init(name: String, pattern: SensorPattern, io: ModelIO, policy: WindowPolicy, featureTopics: [String: String] = [:]) {
        self.name = name
        self.pattern = pattern
        self.io = io
        self.policy = policy
        self.featureTopics = featureTopics
    }
}

/// Limits on the sensor table.
public struct SensorLimits: Sendable, Equatable {
    /// Live sensors (windows) at most; a new sensor beyond is rejected as `sensor_limit`.
    public var maxSensors: Int
    /// A sensor with no reading for this long (arrival time) is evicted by `evictIdle`.
    public var idleSeconds: Double
    public init(maxSensors: Int = 10_000, idleSeconds: Double = 3600) {
        self.maxSensors = maxSensors
        self.idleSeconds = idleSeconds
    }
}

/// Counts per template, for status (not per-sensor names: a fleet would be megabytes).
public struct TemplateCounters: Sendable, Equatable {
    public var sensors = 0
    public var created = 0
    public var evicted = 0
    public var accepted = 0
    public var rejected = 0
    public var windows = 0
    /// Window counters of sensors already evicted (live ones are summed on demand).
    public var retired = WindowCounters()
    /// Every resolved forecast value of the template's sensors (evicted ones included), and anomalies.
    public var accuracy = ErrorSums()
    public var anomalies = 0
    public init() {}
}

/// One live sensor: its window ring and its counters; the model and engine are shared per template.
struct SensorState {
    var name: String
    var template: Int
    var window: StreamWindow
    var lastSeen: Double
    var accepted = 0
    var sequence: UInt64 = 0
    var accuracy: SensorAccuracy
    /// During a guarded model switch: the previous model's accuracy state, and the newest window
    /// before the switch (trial sums count later windows only). StreamProcessor+Trial.swift.
    var shadow: SensorAccuracy? = nil
    var trialFrom: Int64 = .min
}

public final class StreamProcessor {
    /// Changed in place only by a model switch (StreamProcessor+Trial.swift).
    public internal(set) var templates: [StreamTemplate]
    public let readings: TopicPattern
    public let limits: SensorLimits
    public internal(set) var counters: [TemplateCounters]
    var parser: PayloadParser
    var featureNames: [FeatureNames]
    var sensors: [SensorState?] = []
    var free: [Int] = []
    var index: [String: Int] = [:]
    /// Alias sensor -> (owner sensor, template, feature names with the alias's feature as default).
    var aliases: [String: (owner: String, template: Int, names: FeatureNames)] = [:]
    /// The rolling median's sort buffer, shared by every sensor (OnlineAccuracy.swift).
    var medianScratch: [Float] = []
    /// Per template: its running model trial, if any (StreamProcessor+Trial.swift).
    var trials: [ModelTrialSums?]

    public init(templates: [StreamTemplate], readings: TopicPattern, limits: SensorLimits, maxPayloadBytes: Int) {
        self.templates = templates
        self.readings = readings
        self.limits = limits
        counters = Array(repeating: TemplateCounters(), count: templates.count)
        trials = Array(repeating: nil, count: templates.count)
        parser = PayloadParser(maxPayloadBytes: maxPayloadBytes)
        featureNames = templates.map { FeatureNames($0.io.features.map(\.name), defaultFeature: $0.io.targetFeature) }
        for (t, tpl) in templates.enumerated() {
            guard let owner = tpl.pattern.singleName else { continue }
            let names = tpl.io.features.map(\.name)
            for (feature, alias) in tpl.featureTopics {
                guard let f = names.firstIndex(of: feature) else { continue }
                aliases[alias] = (owner, t, FeatureNames(names, defaultFeature: f))
            }
        }
        // Room for every sensor the limit allows, reserved once: the slots fill from the front, so
        // pages no sensor reached stay untouched (not resident), and a growing fleet does not pay
        // the array's doubling (up to 64% slack). Not for `index`: a hash table touches every page.
        sensors.reserveCapacity(min(limits.maxSensors, 1 << 17))
    }

    public var liveSensors: Int { index.count }

    /// The template serving `name`: the most specific match, the first stanza on a tie.
    public func template(for name: UnsafeBufferPointer<UInt8>) -> Int? {
        var best: (t: Int, rank: Int)? = nil
        for (t, tpl) in templates.enumerated() {
            if let r = tpl.pattern.match(name), r > (best?.rank ?? -1) { best = (t, r) }
        }
        return best?.t
    }

    /// Handles one reading message. `topic` not a readings topic: `unknown_sensor`.
    ///
    /// `holdsUnrecorded(slot)`: whether the caller still holds a forecast of this sensor it has not
    /// recorded (batched inference). Then nothing is done (`out.deferred`), so the caller records it
    /// and calls again: this message's actual must resolve that forecast.
    public func process(topic: UnsafeBufferPointer<UInt8>, payload: UnsafeBufferPointer<UInt8>, arrivedAt now: Double, into out: inout ProcessorOutput,
                        holdsUnrecorded: (Int) -> Bool = { _ in false }) {
        guard let level = readings.match(topic) else { out.rejected.append(.unknownSensor); return }
        var name = String(decoding: level, as: UTF8.self)
        let t: Int
        let names: FeatureNames
        var slot = index[name]
        if !aliases.isEmpty, let a = aliases[name] {
            name = a.owner; t = a.template; names = a.names; slot = index[name]
        } else if let s = slot {
            t = sensors[s]!.template; names = featureNames[t]
        } else {
            guard let tt = template(for: level) else { out.rejected.append(.unknownSensor); return }
            t = tt; names = featureNames[t]
        }
        out.template = t
        if let reason = parser.parse(payload, features: names, now: now) {
            reject(reason, template: t, into: &out)
            return
        }
        if let slot, holdsUnrecorded(slot) {
            out.deferred = true
            return
        }
        // A sensor's window is created on its first good message, not on garbage.
        let s: Int
        if let slot { s = slot } else {
            guard index.count < limits.maxSensors else {
                reject(.sensorLimit, template: t, count: parser.readings.count, into: &out)
                return
            }
            s = create(name, template: t, now: now)
            out.createdSensor = name
        }
        sensors[s]!.lastSeen = now
        let window = sensors[s]!.window
        for i in 0..<parser.readings.count {
            let result = window.ingest(parser.readings[i], now: now) { step, late in
                emit(slot: s, step: step, late: late, into: &out)
            }
            if let result { reject(result, template: t, into: &out) } else {
                out.accepted += 1
                if parser.readings[i].feature == templates[t].io.targetFeature { noteActual(slot: s, parser.readings[i], into: &out) }
            }
        }
        noteDrift(slot: s, into: &out)
        sensors[s]!.accepted += out.accepted
        counters[t].accepted += out.accepted
    }

    private func reject(_ r: RejectReason, template t: Int, count: Int = 1, into out: inout ProcessorOutput) {
        for _ in 0..<count { out.rejected.append(r) }
        counters[t].rejected += count
    }

    private func emit(slot s: Int, step: Int64, late: Bool, into out: inout ProcessorOutput) {
        sensors[s]!.sequence += 1
        let st = sensors[s]!
        let n = st.window.io.window * st.window.io.features.count
        let start = out.values.count
        out.values.append(contentsOf: repeatElement(0, count: n))
        out.values.withUnsafeMutableBufferPointer { b in
            st.window.copyWindow(into: UnsafeMutableBufferPointer(rebasing: b[start..<(start + n)]))
        }
        counters[st.template].windows += 1
        var cw = CompletedWindow(slot: s, sensor: st.name, template: st.template, step: step,
                                 windowEnd: st.window.time(of: step), sequence: st.sequence, range: start..<(start + n), late: late)
        if st.window.hasShadow {
            // The same window as the previous model sees it, for its shadow run.
            let s2 = out.values.count
            out.values.append(contentsOf: repeatElement(0, count: n))
            out.values.withUnsafeMutableBufferPointer { b in
                st.window.copyShadowWindow(into: UnsafeMutableBufferPointer(rebasing: b[s2..<(s2 + n)]))
            }
            cw.shadowRange = s2..<(s2 + n)
        }
        out.windows.append(cw)
    }

    private func create(_ name: String, template t: Int, now: Double) -> Int {
        let tpl = templates[t]
        let state = SensorState(name: name, template: t, window: StreamWindow(io: tpl.io, policy: tpl.policy), lastSeen: now,
                                accuracy: SensorAccuracy(horizon: tpl.io.horizon, slack: accuracySlack(tpl.policy), windowSize: tpl.accuracy.windowSize))
        let s: Int
        if let f = free.popLast() { s = f; sensors[s] = state } else { s = sensors.count; sensors.append(state) }
        index[name] = s
        counters[t].sensors += 1
        counters[t].created += 1
        if trials[t] != nil { joinTrial(slot: s) }
        return s
    }

    private func remove(_ s: Int) {
        guard let st = sensors[s] else { return }
        let c = st.window.counters
        counters[st.template].retired.stepsCompleted += c.stepsCompleted
        counters[st.template].retired.stepsGapFilled += c.stepsGapFilled
        counters[st.template].retired.resets += c.resets
        counters[st.template].sensors -= 1
        counters[st.template].evicted += 1
        index[st.name] = nil
        sensors[s] = nil
        free.append(s)
    }

    /// Evicts sensors idle (by arrival time) for longer than `limits.idleSeconds`; returns how many.
    @discardableResult
    public func evictIdle(now: Double) -> Int {
        var n = 0
        for s in 0..<sensors.count {
            if let st = sensors[s], now - st.lastSeen > limits.idleSeconds { remove(s); n += 1 }
        }
        return n
    }

    /// Window counters per template: live sensors summed plus those already evicted.
    public func windowCounters(template t: Int) -> WindowCounters {
        var c = counters[t].retired
        for case let st? in sensors where st.template == t {
            c.stepsCompleted += st.window.counters.stepsCompleted
            c.stepsGapFilled += st.window.counters.stepsGapFilled
            c.resets += st.window.counters.resets
        }
        return c
    }

    /// Live sensors of a template (or all), sorted by name, for the `status` command's listing.
    public func sensorNames(template: Int? = nil, limit: Int = .max) -> [String] {
        var out: [String] = []
        for case let st? in sensors where template == nil || st.template == template { out.append(st.name) }
        out.sort()
        return Array(out.prefix(limit))
    }

    public struct SensorSummary: Sendable, Equatable {
        public var name: String
        public var template: Int
        public var accepted: Int
        public var forecasts: UInt64
        public var lastSeen: Double
    }

    public func sensor(named name: String) -> SensorSummary? {
        guard let s = index[name], let st = sensors[s] else { return nil }
        return SensorSummary(name: st.name, template: st.template, accepted: st.accepted, forecasts: st.sequence, lastSeen: st.lastSeen)
    }

    /// Reload: takes over the windows of `old`'s sensors whose template here reads the same
    /// input the same way (same I/O, same policy); the others start over on their next reading.
    public func adopt(from old: StreamProcessor) {
        // Per-template totals continue under the same stanza name; live counts are rebuilt below.
        for (t, tpl) in templates.enumerated() {
            if let o = old.templates.firstIndex(where: { $0.name == tpl.name }) {
                counters[t] = old.counters[o]
                counters[t].sensors = 0
                // A model trial continues when the stream reads and judges the same way.
                if let trial = old.trials[o], old.templates[o].io == tpl.io, old.templates[o].policy == tpl.policy, old.templates[o].accuracy == tpl.accuracy {
                    trials[t] = trial
                }
            }
        }
        for case let st? in old.sensors {
            guard index.count < limits.maxSensors else { break }
            var name = st.name
            let t = name.withUTF8 { template(for: $0) }
            guard let t, templates[t].io == st.window.io, templates[t].policy == st.window.policy else { continue }
            let s = create(st.name, template: t, now: st.lastSeen)
            counters[t].created -= 1
            var carried = SensorState(name: st.name, template: t, window: st.window, lastSeen: st.lastSeen, accepted: st.accepted, sequence: st.sequence,
                                      accuracy: sensors[s]!.accuracy)
            // Pending forecasts and error history carry over while the rings keep their shape.
            if templates[t].accuracy.windowSize == old.templates[st.template].accuracy.windowSize { carried.accuracy = st.accuracy }
            if trials[t] != nil && old.trials[st.template] != nil && st.shadow != nil && old.templates[st.template].name == templates[t].name {
                (carried.shadow, carried.trialFrom) = (st.shadow, st.trialFrom)
            } else {
                st.window.endTrial(rollBack: false)
            }
            sensors[s] = carried
        }
    }
}
