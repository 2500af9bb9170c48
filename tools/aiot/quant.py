"""Exporter-side quantization rules (docs/arithmetic.md §8) and the integer primitives P1-P3.

The primitives here work on int64 numpy arrays only; the float helpers are for the exporter."""
from __future__ import annotations

import math

import numpy as np

M_MAX = 65535          # (P3) m is 16-bit unsigned
N_MAX = 40             # (P3) shift range 0..40
EXP_ONE = 1 << 15      # (E6) EXP[0]
SOFTMAX_SHIFT = 30     # (E6) inv = floor(R * 2^30 / den)
ACC_MAX = (1 << 31) - 1


class QuantError(ValueError):
    """A value that the contract cannot represent."""


def lo(bits: int) -> int:
    return -(1 << (bits - 1))


def hi(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def sat(v, bits: int):
    """(P1) Saturate to signed `bits`."""
    return np.clip(v, lo(bits), hi(bits))


def rshr(v, n: int):
    """(P2) Right shift by n with rounding half away from zero, exact on int64."""
    v = np.asarray(v, dtype=np.int64)
    if n == 0:
        return v
    a = np.abs(v)
    r = (a + (np.int64(1) << np.int64(n - 1))) >> np.int64(n)
    return np.where(v < 0, -r, r)


def requant(acc, m: int, n: int, zero_point: int, bits: int):
    """(P3) REQ_y(acc; m, n) = SAT(z + RSHR(acc * m, n))."""
    acc = np.asarray(acc, dtype=np.int64)
    return sat(np.int64(zero_point) + rshr(acc * np.int64(m), n), bits)


def round_half_away(x):
    """Float rounding used by the exporter and the I/O helpers: half away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def act_qparams(lo_f: float, hi_f: float, bits: int) -> tuple[float, int]:
    """Scale and zero point of an asymmetric signed grid covering [lo_f, hi_f] and 0 (§8)."""
    if not (math.isfinite(lo_f) and math.isfinite(hi_f)):
        raise QuantError(f"range [{lo_f}, {hi_f}] is not finite")
    a = min(float(lo_f), 0.0)
    b = max(float(hi_f), 0.0)
    if b - a <= 0.0:
        b = a + 1e-8
    scale = (b - a) / float((1 << bits) - 1)
    zp = int(np.clip(lo(bits) - round_half_away(a / scale), lo(bits), hi(bits)))
    return scale, zp


def quantize(x, scale: float, zero_point: int, bits: int):
    """q = SAT(z + round_half_away(x / s)) as int64."""
    q = zero_point + round_half_away(np.asarray(x, dtype=np.float64) / scale)
    return sat(q, bits).astype(np.int64)


def requant_multiplier(M: float) -> tuple[int, int]:
    """(P3) (m, n) with the largest n <= 40 such that m = round_half_away(M * 2^n) <= 65535."""
    if not math.isfinite(M) or M < 0:
        raise QuantError(f"multiplier {M} must be finite and non-negative")
    if M == 0:
        return 0, 0
    for n in range(N_MAX, -1, -1):
        m = int(round_half_away(M * float(1 << n)))
        if m <= M_MAX:
            return m, n
    raise QuantError(f"multiplier {M} is too large (>= 65535.5): the output scale is too small")


def requant_multiplier_pair(M1: float, M2: float) -> tuple[int, int, int]:
    """(E2) (m1, m2, n) sharing the largest n <= 40 for which both fit 16 bits."""
    for M in (M1, M2):
        if not math.isfinite(M) or M < 0:
            raise QuantError(f"multiplier {M} must be finite and non-negative")
    for n in range(N_MAX, -1, -1):
        m1 = int(round_half_away(M1 * float(1 << n)))
        m2 = int(round_half_away(M2 * float(1 << n)))
        if m1 <= M_MAX and m2 <= M_MAX:
            return m1, m2, n
    raise QuantError(f"addition multipliers ({M1}, {M2}) are too large (>= 65535.5)")


def positional_encoding(window: int, d: int) -> np.ndarray:
    """Fixed sinusoidal encoding: sin on even channels, cos on odd, base 10000 (float64 [W, d])."""
    pos = np.arange(window, dtype=np.float64)[:, None]
    i = np.arange(d)
    rate = np.power(10000.0, -(2 * (i // 2)).astype(np.float64) / d)
    angle = pos * rate[None, :]
    return np.where(i % 2 == 0, np.sin(angle), np.cos(angle))


def exp_table(scale_scores: float, bits_scores: int) -> np.ndarray:
    """(E6) EXP[k] = round_half_away(2^15 * exp(-s_S * k)) for k in 0 .. 2^b_S - 1."""
    k = np.arange(1 << bits_scores, dtype=np.float64)
    return round_half_away(EXP_ONE * np.exp(-scale_scores * k)).astype(np.int64)
