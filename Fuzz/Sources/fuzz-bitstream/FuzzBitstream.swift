// libFuzzer target: the .bit/.bin bitstream parser and its packet scanner (AIOTBoard).
import FuzzSupport
import AIOTBoard

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let bytes = Array(input)
    if let b = try? Bitstream(bytes: bytes) {
        precondition(b.info.payloadOffset >= 0 && b.info.payloadOffset + b.info.payloadLength <= bytes.count,
                     "payload \(b.info.payloadOffset)+\(b.info.payloadLength) outside \(bytes.count) bytes")
    }
    _ = Bitstream.scanPackets(bytes)
    _ = Bitstream.scanPackets(bytes, from: min(bytes.count, 13), limit: 4096)
    return 0
}
