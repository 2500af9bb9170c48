// The integer arithmetic contract of docs/arithmetic.md §1: primitives P1-P3.
// Every engine in this module narrows, rounds and requantizes only through these functions, so the
// rules live in one place. They are written on Int64, which holds every bound of §6.

/// Smallest value of a signed `bits`-wide integer: `lo(b) = -2^(b-1)` (§1).
@inline(__always)
public func contractLo(_ bits: Int) -> Int64 { -(Int64(1) << (bits - 1)) }

/// Largest value of a signed `bits`-wide integer: `hi(b) = 2^(b-1) - 1` (§1).
@inline(__always)
public func contractHi(_ bits: Int) -> Int64 { (Int64(1) << (bits - 1)) - 1 }

/// (P1) Saturation: `SAT_b(v) = min(max(v, lo(b)), hi(b))`. Never wraps.
@inline(__always)
public func saturate(_ v: Int64, bits: Int) -> Int64 {
    min(max(v, contractLo(bits)), contractHi(bits))
}

/// (P2) Rounding right shift, half away from zero:
/// `RSHR(v, 0) = v`, `RSHR(v, n) = sign(v) * ((|v| + 2^(n-1)) >> n)` for `n >= 1`.
///
/// Precondition: `0 <= n <= 62` and `|v| < 2^62` (the contract needs `n <= 40`, `|v| < 2^47`).
@inline(__always)
public func roundingShiftRight(_ v: Int64, _ n: Int) -> Int64 {
    // half = 2^(n-1) for n >= 1 and 0 for n = 0, so one expression covers both cases.
    let half: Int64 = n > 0 ? Int64(1) << (n - 1) : 0
    let magnitude = (v.magnitude &+ UInt64(half)) >> UInt64(n)
    let r = Int64(magnitude)
    return v < 0 ? -r : r
}

/// (P3) Requantization: `REQ_y(acc; m, n) = SAT_by(z_y + RSHR(acc * m, n))`, with `acc * m` an exact
/// int64 product (`|acc| < 2^31`, `m < 2^16`, so `|acc * m| < 2^47`).
@inline(__always)
public func requantize(_ acc: Int64, m: Int64, n: Int, zeroPoint: Int64, bits: Int) -> Int64 {
    saturate(zeroPoint + roundingShiftRight(acc * m, n), bits: bits)
}

/// Round half away from zero on a double (§8, §9), evaluated as `sign(x) * floor(|x| + 0.5)` in
/// IEEE double, exactly as the numpy reference does. (C's `round` differs on a few inputs such as
/// 0.49999999999999994, where `|x| + 0.5` rounds up to 1; bit-identity needs the same expression.)
@inline(__always)
public func roundHalfAway(_ x: Double) -> Double {
    let r = (x.magnitude + 0.5).rounded(.down)
    return x < 0 ? -r : (x > 0 ? r : 0)
}
