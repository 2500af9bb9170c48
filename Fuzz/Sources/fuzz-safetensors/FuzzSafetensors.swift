// libFuzzer target: the safetensors model loader (header JSON, tensor table, metadata, validation).
import AIOTModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
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
