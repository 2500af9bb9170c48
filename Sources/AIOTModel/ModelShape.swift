/// The shape of the integer Transformer (docs/arithmetic.md §3).
public struct ModelShape: Sendable, Equatable, Codable {
    public var window: Int
    public var features: Int
    public var dModel: Int
    public var heads: Int
    public var layers: Int
    public var ffn: Int
    public var horizon: Int

    public init(window: Int, features: Int, dModel: Int, heads: Int, layers: Int, ffn: Int, horizon: Int) {
        self.window = window
        self.features = features
        self.dModel = dModel
        self.heads = heads
        self.layers = layers
        self.ffn = ffn
        self.horizon = horizon
    }

    public var inputCount: Int { window * features }
}
