// libFuzzer target: the shutdown-spool line decoder (AIOTDaemon ReadingSpool), and the
// encode/decode round trip of whatever it accepts.
import AIOTDaemon
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = Data(bytes: data, count: size)
    guard let r = ReadingSpool.decode(line) else { return 0 }
    let again = ReadingSpool.encode(r)
    guard let back = ReadingSpool.decode(Data(again.dropLast())) else {
        preconditionFailure("a decoded record does not decode after encoding: \(String(decoding: again, as: UTF8.self))")
    }
    precondition(back.topic == r.topic && back.payload == r.payload, "spool round trip changed the record")
    return 0
}
