// A model's identity as the 32 bytes of the accelerator's MODEL_ID register.

/// The 32 bytes of a model's identity (the hex SHA-256 of its file).
public func identityBytes(_ hex: String) -> [UInt8]? {
    let chars = Array(hex.utf8)
    guard chars.count == 64 else { return nil }
    func nib(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
    var out: [UInt8] = []
    for k in stride(from: 0, to: 64, by: 2) {
        guard let h = nib(chars[k]), let l = nib(chars[k + 1]) else { return nil }
        out.append(h << 4 | l)
    }
    return out
}
