// libFuzzer target: the TOML config loader (AIOTDaemon DaemonConfig, TOMLKit underneath).
import FuzzSupport
import AIOTDaemon

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let text = String(decoding: input, as: UTF8.self)
    _ = try? DaemonConfig.parse(text, source: "fuzz.toml")
    return 0
}
