// libFuzzer target: the reading payload parser (AIOTStreams), as aiotd's intake calls it.
import FuzzSupport
import AIOTStreams

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let features = FeatureNames(["temp", "hum", "v"], defaultFeature: 0)
    // A size limit above libFuzzer's -max_len so the parser, not the size check, sees every input.
    var parser = PayloadParser(maxPayloadBytes: 1 << 20, maxReadingsPerMessage: 64)
    let reason = parser.parse(input, features: features, now: 1_795_000_000)
    // The contract the pipeline relies on: accepted means 1...max readings, all finite and in range.
    if reason == nil {
        precondition(!parser.readings.isEmpty && parser.readings.count <= 64, "accepted with \(parser.readings.count) readings")
        for r in parser.readings {
            precondition(r.value.isFinite && r.time.isFinite, "accepted a non-finite reading \(r)")
            precondition((0..<3).contains(r.feature), "reading for feature \(r.feature) of 3")
        }
    } else {
        precondition(parser.readings.isEmpty, "rejected (\(reason!)) but left \(parser.readings.count) readings")
    }
    return 0
}
