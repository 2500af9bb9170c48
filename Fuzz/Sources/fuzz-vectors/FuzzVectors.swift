// libFuzzer target: the test-vector file reader (AIOTModel TestVectors).
import FuzzSupport
import AIOTModel

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let text = String(decoding: input, as: UTF8.self)
    if let v = try? TestVectors(text: text) {
        precondition(v.inputs.count == v.count * v.inputCount && v.outputs.count == v.count * v.outputCount,
                     "inconsistent vectors: \(v.inputs.count) inputs, \(v.outputs.count) outputs for \(v.count)")
    }
    return 0
}
