// libFuzzer target: the TOML config loader (AIOTDaemon DaemonConfig, TOMLKit underneath).
import FuzzSupport
import AIOTDaemon

runLibFuzzer { LLVMFuzzerTestOneInput($0, $1) }

/// Also the standard entry, so the target links wherever libFuzzer's own main is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(fuzzInput(data, size)) }

func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    // DaemonConfig.load refuses a file that is not UTF-8 before parsing: so do we.
    guard let text = String(validating: input, as: UTF8.self) else { return 0 }
    // The documents that reached toml++'s assertions (Fuzz/regressions/config-tomlpp-assert*.toml)
    // are refused by AIOTDaemon's TOMLPrecheck before the parser sees them; nothing is skipped.
    _ = try? DaemonConfig.parse(text, source: "fuzz.toml")
    return 0
}
