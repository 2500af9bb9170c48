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
    // Known crash, not fixed here (Fuzz/regressions/config-tomlpp-assert*.toml): toml++ in TOMLKit
    // 0.6.0 aborts on an assertion when a table header's first key character is neither a bare-key
    // character nor a quote (`[ästream]`, `[;x]`, `[[[x`). Skipped so the fuzzer keeps exploring;
    // remove once the loader rejects such documents itself.
    if hasBadTableHeader(input) || hasBraceWhereValueExpected(input) { return 0 }
    _ = try? DaemonConfig.parse(text, source: "fuzz.toml")
    return 0
}

/// A line whose first non-blank characters are `[` or `[[`, blanks, then a byte that cannot start a
/// key (not A-Z a-z 0-9 _ - " ' ]; a line end, the end of the input and a third `[` all count).
func hasBadTableHeader(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    var lineStart = true
    while i < bytes.count {
        let b = bytes[i]
        if b == UInt8(ascii: "\n") { lineStart = true; i += 1; continue }
        if lineStart && (b == UInt8(ascii: " ") || b == UInt8(ascii: "\t")) { i += 1; continue }
        if lineStart && b == UInt8(ascii: "[") {
            // `[` or `[[` (adjacent), then blanks: the next byte is where toml++ expects a key.
            var j = i + 1
            if j < bytes.count, bytes[j] == UInt8(ascii: "[") { j += 1 }
            while j < bytes.count, bytes[j] == UInt8(ascii: " ") || bytes[j] == UInt8(ascii: "\t") { j += 1 }
            if j == bytes.count || !canStartKey(bytes[j]) { return true }
        }
        lineStart = false
        i += 1
    }
    return false
}

func canStartKey(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
         UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "]"):
        return true
    default:
        return false
    }
}

/// A `}` right after `[` or `,` (blanks and line ends between): toml++ asserts in `parse_value()`
/// (`x = [}]`, Fuzz/regressions/config-tomlpp-assert-5.toml).
func hasBraceWhereValueExpected(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var last: UInt8 = 0
    for b in bytes {
        if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") { continue }
        if b == UInt8(ascii: "}") && (last == UInt8(ascii: "[") || last == UInt8(ascii: ",")) { return true }
        last = b
    }
    return false
}
