/// A loaded, validated integer model (docs/arithmetic.md §10). Filled in by the model-file loader.
public struct QuantizedModel: Sendable {
    public var shape: ModelShape
}
