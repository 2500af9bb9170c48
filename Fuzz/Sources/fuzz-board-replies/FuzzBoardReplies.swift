// libFuzzer target: the board reply decoders (AIOTBoard): the RESULT block check, the register
// block behind `status`, the pin read, the flash JEDEC ID, flash reads. A transport plays a board
// whose every reply byte comes from the fuzzer (cycled when the input is shorter than a reply).
import FuzzSupport
import AIOTBoard

final class FuzzTransport: Transport {
    let bytes: [UInt8]
    var at = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func execute(_ channel: Channel, _ commands: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(LinkError) {
        guard !bytes.isEmpty else { throw LinkError(.timeout, "no reply") }
        for i in 0..<reply.count { reply[i] = bytes[at % bytes.count]; at += 1 }
    }
    func recover() throws(LinkError) {}
    func counters(_ channel: Channel) -> LinkCounters { LinkCounters() }
    var modelledSeconds: Double? { nil }
    var name: String { "fuzz" }
}

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let bytes = Array(input)
    // RESULT block: 16 header bytes, 2 per output, CRC-32; output count from the first byte.
    let outputs = Int(bytes.first ?? 0) % 9
    let need = 16 + 2 * outputs + 4
    if bytes.count >= need + 1 {
        var out = [Int32](repeating: 0, count: outputs)
        let block = Array(bytes[1...need])
        _ = block.withUnsafeBytes { r in
            out.withUnsafeMutableBufferPointer { o in checkResult(r, expectedSequence: 7, inputCRC: 0x1234_5678, output: o) }
        }
    }
    let link = BoardLink(transport: FuzzTransport(bytes))
    _ = try? link.pins()
    _ = try? link.acceleratorPresent()
    _ = try? link.info()
    let flasher = Flasher(link: link)
    _ = try? flasher.identify()
    _ = try? flasher.read(0, count: 64)
    return 0
}
