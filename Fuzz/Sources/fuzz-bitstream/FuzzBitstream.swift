// libFuzzer target: the .bit/.bin bitstream parser and its packet scanner (AIOTBoard).
import AIOTBoard

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let b = try? Bitstream(bytes: bytes) {
        precondition(b.info.payloadOffset >= 0 && b.info.payloadOffset + b.info.payloadLength <= bytes.count,
                     "payload \(b.info.payloadOffset)+\(b.info.payloadLength) outside \(bytes.count) bytes")
    }
    _ = Bitstream.scanPackets(bytes)
    _ = Bitstream.scanPackets(bytes, from: min(bytes.count, 13), limit: 4096)
    return 0
}
