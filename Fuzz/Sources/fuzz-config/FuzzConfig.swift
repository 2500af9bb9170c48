// libFuzzer target: the TOML config loader (AIOTDaemon DaemonConfig, TOMLKit underneath).
import AIOTDaemon

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? DaemonConfig.parse(text, source: "fuzz.toml")
    return 0
}
