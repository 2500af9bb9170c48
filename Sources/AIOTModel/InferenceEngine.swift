/// Which engine produced a forecast; reported in forecasts and in the energy log.
public enum EngineKind: String, Sendable, Codable, CaseIterable {
    case software
    case fpga
}

/// Why an inference did not produce outputs.
public struct InferenceError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The caller passed a buffer of the wrong length.
        case shape
        /// An input integer lies outside the model's input range.
        case inputRange
        /// The device behind the engine failed (FPGA engines only).
        case device
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// Runs the integer model of docs/arithmetic.md: quantized input window in, quantized forecast out.
///
/// Engines own scratch buffers, so they are classes used from one task at a time (not `Sendable`);
/// the daemon keeps each engine inside one actor. `input` holds `window * features` integers,
/// time-major; `output` receives `horizon` integers.
public protocol InferenceEngine: AnyObject {
    var kind: EngineKind { get }
    var model: QuantizedModel { get }
    func infer(_ input: UnsafeBufferPointer<Int32>, into output: UnsafeMutableBufferPointer<Int32>) throws(InferenceError)
    /// `count` windows back to back (`[count, W, F]`) to `[count, P]` outputs, the same integers as
    /// `count` calls of `infer`. Engines with a batched pass (the software engine) override it.
    func inferBatch(_ inputs: UnsafeBufferPointer<Int32>, count: Int, into outputs: UnsafeMutableBufferPointer<Int32>) throws(InferenceError)
}

extension InferenceEngine {
    /// One window after the other: engines without a batched pass (the FPGA runs one window per
    /// command). A window that fails stops the batch; the outputs before it are written.
    public func inferBatch(_ inputs: UnsafeBufferPointer<Int32>, count: Int, into outputs: UnsafeMutableBufferPointer<Int32>) throws(InferenceError) {
        let n = inputs.count / max(count, 1), h = outputs.count / max(count, 1)
        guard count >= 0, inputs.count == count * n, outputs.count == count * h else {
            throw InferenceError(.shape, "batch of \(count) windows: \(inputs.count) inputs and room for \(outputs.count) outputs do not divide into windows")
        }
        for b in 0..<count {
            try infer(UnsafeBufferPointer(rebasing: inputs[(b * n)..<((b + 1) * n)]),
                      into: UnsafeMutableBufferPointer(rebasing: outputs[(b * h)..<((b + 1) * h)]))
        }
    }

    /// Convenience for tests and tools; allocates. The daemon uses the buffer form.
    public func infer(_ input: [Int32]) throws(InferenceError) -> [Int32] {
        var output = [Int32](repeating: 0, count: model.shape.horizon)
        let result: Result<Void, InferenceError> = input.withUnsafeBufferPointer { inp in
            output.withUnsafeMutableBufferPointer { out in
                do throws(InferenceError) {
                    try self.infer(inp, into: out)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
        return output
    }
}
