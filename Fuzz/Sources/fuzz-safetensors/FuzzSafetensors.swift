// libFuzzer target: the safetensors model loader (header JSON, tensor table, metadata, validation).
import FuzzSupport
import AIOTModel

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let bytes = Array(input)
    guard let model = try? QuantizedModel(bytes: bytes) else { return 0 }
    // A model that loads must also run: one inference on a zero-point window.
    let engine = SoftwareEngine(model: model)
    let n = model.shape.window * model.shape.features
    let input = [Int32](repeating: 0, count: n)
    var output = [Int32](repeating: 0, count: model.shape.horizon)
    input.withUnsafeBufferPointer { i in
        output.withUnsafeMutableBufferPointer { o in _ = try? engine.infer(i, into: o) }
    }
    return 0
}
