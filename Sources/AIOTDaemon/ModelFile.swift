// Reads what the daemon needs from a model file's header (docs/arithmetic.md §10): shape,
// input/output quantization, feature normalization, sampling period, identity.
import Foundation
import AIOTModel
import AIOTStreams

/// A model file as the daemon sees it: its I/O description and identity. The integer weights
/// are loaded by the engine factory.
public struct LoadedModel: Sendable, Equatable {
    public var path: String
    public var identity: String
    public var shape: ModelShape
    public var io: ModelIO
}

public struct ModelFileError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension LoadedModel {
    public init(contentsOf path: String) throws(ModelFileError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelFileError("cannot read model file \(path): check the path and permissions")
        }
        let bytes = [UInt8](data)
        func fail(_ why: String) -> ModelFileError { ModelFileError("model file \(path) is not a valid aiot model: \(why)") }
        guard bytes.count >= 8 else { throw fail("shorter than the 8-byte safetensors header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n > 0, n <= UInt64(bytes.count - 8), n < 100 << 20 else { throw fail("header length \(n) does not fit the file (\(bytes.count) bytes)") }
        let header = Data(bytes[8..<(8 + Int(n))])
        guard let top = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
              let meta = top["__metadata__"] as? [String: Any], let aiotText = meta["aiot"] as? String,
              let aiot = try? JSONSerialization.jsonObject(with: Data(aiotText.utf8)) as? [String: Any]
        else { throw fail("no __metadata__.aiot JSON document in the header") }
        guard aiot["format"] as? String == "aiot-int-transformer" else { throw fail("format is not aiot-int-transformer") }
        func int(_ d: [String: Any]?, _ k: String) throws(ModelFileError) -> Int {
            guard let v = d?[k] as? NSNumber else { throw fail("missing integer \(k)") }
            return v.intValue
        }
        func dbl(_ d: [String: Any]?, _ k: String) throws(ModelFileError) -> Double {
            guard let v = d?[k] as? NSNumber else { throw fail("missing number \(k)") }
            return v.doubleValue
        }
        let s = aiot["shape"] as? [String: Any]
        let shape = ModelShape(window: try int(s, "window"), features: try int(s, "features"), dModel: try int(s, "d_model"),
                               heads: try int(s, "heads"), layers: try int(s, "layers"), ffn: try int(s, "ffn"), horizon: try int(s, "horizon"))
        let acts = aiot["activations"] as? [String: Any]
        let input = acts?["input"] as? [String: Any], output = acts?["output"] as? [String: Any]
        guard let featureList = aiot["features"] as? [[String: Any]], featureList.count == shape.features else {
            throw fail("features list missing or not \(shape.features) long")
        }
        var features: [ModelIO.Feature] = []
        for f in featureList {
            guard let name = f["name"] as? String else { throw fail("a feature has no name") }
            let std = try dbl(f, "std")
            guard std > 0, std.isFinite else { throw fail("feature \(name) has std \(std)") }
            features.append(.init(name: name, unit: f["unit"] as? String ?? "", mean: try dbl(f, "mean"), std: std))
        }
        let target = aiot["target"] as? [String: Any]
        var targetIndex = 0
        if let tf = target?["feature"] as? String, let i = features.firstIndex(where: { $0.name == tf }) { targetIndex = i }
        else if let tf = target?["feature"] as? NSNumber, (0..<features.count).contains(tf.intValue) { targetIndex = tf.intValue }
        else if let tn = target?["name"] as? String, let i = features.firstIndex(where: { $0.name == tn }) { targetIndex = i }
        let period = try dbl(aiot, "sampling_period_s")
        guard period > 0 else { throw fail("sampling_period_s must be positive") }
        let bits = try int(input, "bits")
        guard (2...16).contains(bits) else { throw fail("input bits \(bits) outside 2...16") }
        self.path = path
        self.identity = SHA256.hex(bytes)
        self.shape = shape
        self.io = ModelIO(window: shape.window, horizon: shape.horizon, features: features, targetFeature: targetIndex,
                          targetName: target?["name"] as? String ?? features[targetIndex].name, targetUnit: target?["unit"] as? String ?? "",
                          targetMean: try dbl(target, "mean"), targetStd: try dbl(target, "std"),
                          inputBits: bits, inputScale: try dbl(input, "scale"), inputZeroPoint: Int32(try int(input, "zero_point")),
                          outputScale: try dbl(output, "scale"), outputZeroPoint: Int32(try int(output, "zero_point")),
                          samplingPeriod: period)
    }
}
