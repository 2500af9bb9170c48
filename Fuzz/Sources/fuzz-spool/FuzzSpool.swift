// libFuzzer target: the shutdown-spool line decoder (AIOTDaemon ReadingSpool), and the
// encode/decode round trip of whatever it accepts.
import FuzzSupport
import AIOTDaemon
import Foundation

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let line = Data(buffer: input)
    guard let r = ReadingSpool.decode(line) else { return 0 }
    let again = ReadingSpool.encode(r)
    guard let back = ReadingSpool.decode(Data(again.dropLast())) else {
        preconditionFailure("a decoded record does not decode after encoding: \(String(decoding: again, as: UTF8.self))")
    }
    precondition(back.topic == r.topic && back.payload == r.payload, "spool round trip changed the record")
    return 0
}
