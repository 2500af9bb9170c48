// libFuzzer target: the test-vector file reader (AIOTModel TestVectors).
import AIOTModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let v = try? TestVectors(text: text) {
        precondition(v.inputs.count == v.count * v.inputCount && v.outputs.count == v.count * v.outputCount,
                     "inconsistent vectors: \(v.inputs.count) inputs, \(v.outputs.count) outputs for \(v.count)")
    }
    return 0
}
