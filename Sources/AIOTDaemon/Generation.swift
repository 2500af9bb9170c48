// One configuration made runnable: the stream processor (templates, topic pattern, limits) and,
// per template, the shared model and engine it runs on. Built whole before it replaces anything,
// so a refused reload changes nothing.
import AIOTModel
import AIOTStreams

struct Binding {
    var model: LoadedModel
    var engine: MeteredEngine
}

final class Generation {
    /// Changed in place only by a deployment (the model path its streams now load).
    var config: DaemonConfig
    let processor: StreamProcessor
    var bindings: [Binding]
    let store: ModelStore

    init(config: DaemonConfig, processor: StreamProcessor, bindings: [Binding], store: ModelStore) {
        self.config = config
        self.processor = processor
        self.bindings = bindings
        self.store = store
    }

    /// Loads each model file once and makes one engine per model; errors name the stanza.
    static func build(_ config: DaemonConfig, store: ModelStore, engineKind: EngineKind) throws(ConfigError) -> Generation {
        var templates: [StreamTemplate] = []
        var bindings: [Binding] = []
        for (i, sc) in config.streams.enumerated() {
            let model: LoadedModel
            do { model = try store.model(sc.model) } catch { throw ConfigError("stream[\(i)].model: \(error)") }
            for (feature, _) in sc.featureTopics where !model.io.features.contains(where: { $0.name == feature }) {
                throw ConfigError("stream[\(i)].feature_topics.\(feature): the model has no feature \"\(feature)\" (it has \(model.io.features.map(\.name).joined(separator: ", ")))")
            }
            let engine: MeteredEngine
            do { engine = try store.engine(model, engineKind) } catch {
                throw ConfigError("stream[\(i)].model: the \(engineKind.rawValue) engine cannot run \(sc.model): \(error)")
            }
            var io = model.io
            if let p = sc.periodSeconds { io.samplingPeriod = p }
            var tpl = StreamTemplate(name: sc.name, pattern: sc.sensors, io: io, policy: sc.policy, featureTopics: sc.featureTopics)
            tpl.accuracy = config.accuracy.policy
            tpl.reference = try accuracyReference(model, config.accuracy.policy, stream: i)
            templates.append(tpl)
            bindings.append(Binding(model: model, engine: engine))
        }
        let readings: TopicPattern
        do { readings = try TopicPattern(config.topics.expand(config.topics.readings, gateway: config.gateway), placeholder: "{sensor}") } catch {
            throw ConfigError("topics.readings: \(error)")
        }
        let processor = StreamProcessor(templates: templates, readings: readings, limits: config.sensorLimits, maxPayloadBytes: config.maxPayloadBytes)
        store.retain(only: Set(bindings.map { ObjectIdentifier($0.engine) }))
        return Generation(config: config, processor: processor, bindings: bindings, store: store)
    }
}
