#ifndef AIOT_CKERNELS_H
#define AIOT_CKERNELS_H
// The software engine's 16-bit matrix product with its requantization epilogue, in variants for
// instruction sets chosen at run time (docs/performance.md, "Kernel variants"). Every variant
// computes the same exact integers: accumulation in int32 is exact because the loader proved every
// accumulator bound (docs/arithmetic.md §6), and the requantization is exact integer arithmetic.
#include <stdint.h>

// The x86 variants need clang's per-function target attributes (Swift's C targets are compiled by
// clang); another compiler builds the scalar reference only.
#if defined(__x86_64__) && defined(__clang__)
#define AIOT_X86_VARIANTS 1
#else
#define AIOT_X86_VARIANTS 0
#endif

/// (P3) with the output's zero point folded into the clamp bounds: `y' = clamp(sign(v) *
/// ((|v| + half) >> n), lo, hi)` with `v = acc * m` (exact, |v| < 2^47). `lo` already includes a
/// ReLU floor (0) when the product is followed by (E4).
///
/// `fast32`, `cap32`: the 32-bit form, set only by `aiot_requant_select32` (zero = the 64-bit form).
/// With `fast32` = 1 the packed products compute `clamp(sign(acc) * ((min(|acc|, cap32) m + half)
/// >> n), lo, hi)` in unsigned 32-bit lanes, which `aiot_requant_select32` proved equal to (P3) for
/// every |acc| up to the layer's accumulator bound.
typedef struct {
    int64_t m;
    int64_t half;
    int32_t n;
    int32_t lo;
    int32_t hi;
    int32_t fast32;
    uint32_t cap32;
} aiot_requant;

/// Selects the 32-bit form for `rq` (sets `fast32`, `cap32`) when it equals (P3) for every
/// accumulator with |acc| <= `bound` (the layer's proved bound, <= 2^31 - 1); returns 1 if selected,
/// else 0 with `fast32` = 0 (the 64-bit form). Proof (docs/performance.md, session 21): with
/// lo <= 0 <= hi and C = max(-lo, hi), f(a) = (a m + half) >> n is non-decreasing and the clamp
/// reads f only through min(f, C); a* = the least a with f(a) >= C gives min(f(a), C) = min(f(min(a,
/// a*)), C) for all a >= 0. So |acc| may be capped at cap = min(a*, bound), and the form is exact when
/// cap m + half < 2^32 (no unsigned 32-bit wrap) and (cap m + half) >> n < 2^31 (a non-negative int32
/// before the sign is restored).
int aiot_requant_select32(aiot_requant *rq, int64_t bound);

/// y[t, o] = REQ(bias[o] + sum_i x[t, i] w[o, i]) - z for t < rows, o < outputs.
/// `x` is [rows, stride], `w` is [outputs, stride] (both int16, zero-padded; stride a multiple of
/// 8; every |value| <= 32767, never -32768), `y` is [rows, outputs] int32.
typedef void (*aiot_linear16_fn)(const int16_t *x, long rows, long stride, const int16_t *w, const int32_t *bias,
                                 long outputs, const aiot_requant *rq, int32_t *y);

/// The same product with the weights packed for broadcast input pairs: `wp` is
/// [stride / 2][pad8(outputs)][2] int16, wp[(i * pad8(J) + o) * 2 + e] = w[o, 2i + e] (zero past J),
/// so eight outputs accumulate side by side and no horizontal sums are needed. For the x86
/// variants' static weights; `aiot_pack_pairs` lays them out.
/// With `y16` non-NULL the outputs go there instead, as int16, for outputs that fit 16 bits
/// (internal activations), and `y` is not touched; `layout` says where output (t, o) goes:
///   AIOT_Y16_PLAIN      y16[t * y16stride + o * y16col] (rows: y16col = 1; transposed: y16stride = 1)
///   AIOT_Y16_ROW_PAIRS  y16[(t / 2) * y16stride + t % 2 + o * y16col]: with y16stride = 2 pad8(J),
///                       y16col = 2, the pair layout of the transposed result (attention's values)
///   AIOT_Y16_COL_PAIRS  y16[t * y16stride + (o / 2) * y16col + o % 2]: with y16stride = 2,
///                       y16col = 2 pad8(rows), the pair layout of the result itself (the keys)
/// so the next product can read it as packed weights without a copy.
typedef void (*aiot_linear16p_fn)(const int16_t *x, long rows, long stride, const int16_t *wp, const int32_t *bias,
                                  long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col,
                                  int layout);

enum {
    AIOT_Y16_PLAIN = 0,
    AIOT_Y16_ROW_PAIRS = 1,
    AIOT_Y16_COL_PAIRS = 2,
};

/// The packed product on an input too wide for 16-bit operands: `x` is [rows, k] int32 with
/// centered |x| <= 2^16 - 1 (a 16-bit input grid), `wp` packed for `stride` = pad8(k) inputs
/// (stride <= 256). The kernel splits x into xhi = x >> 8 (in [-256, 255]) and xlo = x & 255, so
/// acc = bias + 256 sum(xhi w) + sum(xlo w), exact in wrapping int32 because the true sum fits
/// (the loader's bound). Outputs and layouts as `aiot_linear16p_fn`.
typedef void (*aiot_linear16p_wide_fn)(const int32_t *x, long rows, long k, long stride, const int16_t *wp,
                                       const int32_t *bias, long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16,
                                       long y16stride, long y16col, int layout);

/// Packs row-major `w` ([outputs, stride]) into the pair layout above (`wp` zeroed by the caller).
void aiot_pack_pairs(const int16_t *w, long outputs, long stride, int16_t *wp);

/// (E2) then (E3) on a product's requantized outputs `v` (the residual and the norm after `o` and
/// `ffn2`): r = SAT(z + RSHR(a m1 + v m2, n)) - z via `add` (its m is 1), then
/// y = REQ(b[c] + r g[c]) - z via `norm`. `a`, `v`, `y32` are [rows, d]; `y16` is [rows, stride16].
typedef struct {
    int64_t m1;
    int64_t m2;
    aiot_requant add;
    aiot_requant norm;
    const int32_t *g;
    const int32_t *b;
    int32_t fast32;  // set only by aiot_add_norm_select32: the whole step in 32-bit lanes
} aiot_add_norm;

/// Selects the 32-bit form of the step for `p` when |a| <= `aBound` and |v| <= `vBound` (the two
/// operands' centered ranges) prove it exact: a m1 + v m2 fits int32 (|.| <= aBound m1 + vBound m2
/// <= 2^31 - 1), the add's requantization (m = 1) and the norm's (|b[c] + r g[c]| <= max_c |b[c]| +
/// max(-add.lo, add.hi) |g[c]|, over the `d` channels) pass `aiot_requant_select32`. Returns 1 and
/// sets `fast32` (and the two requantizations' 32-bit fields) if so, else 0 with `fast32` = 0.
int aiot_add_norm_select32(aiot_add_norm *p, long d, int64_t aBound, int64_t vBound);

typedef void (*aiot_add_norm_fn)(const int32_t *v, const int32_t *a, long rows, long d, const aiot_add_norm *p,
                                 int32_t *y32, int16_t *y16, long stride16);

/// (E6) on one head's requantized, centered scores `s` ([w, w]; overwritten with the exp values):
/// per row e_j = exp[max - s_j], inv = floor(range 2^30 / sum e_j), probability
/// min((e_j inv + 2^29) >> 30, range) written as int16 to `probs` ([w, wStride]; columns past w
/// are left as they are, zero).
/// `exp` is the layer's table, every index the scores can produce readable; its entries from
/// `expNonzero` on are zero, and it is readable (zero) up to the next multiple of 32 past
/// `expNonzero`: the AVX-512 variant looks values up in 32-entry blocks and stops there.
typedef void (*aiot_softmax_fn)(int32_t *s, long w, const int32_t *exp, long expNonzero, int64_t range, int16_t *probs, long wStride);

/// Variant ids, in increasing order of preference.
enum {
    AIOT_KERNEL_SCALAR = 0,
    AIOT_KERNEL_AVX2 = 1,
    AIOT_KERNEL_AVX512 = 2,
    AIOT_KERNEL_NEON = 3,
};

/// 1 when this build contains `variant` and this CPU can execute it, else 0.
int aiot_kernel_supported(int variant);

/// The product for `variant`, or NULL when `aiot_kernel_supported(variant)` is 0.
aiot_linear16_fn aiot_kernel_linear16(int variant);

/// The residual-and-norm step for `variant`, or NULL as for `aiot_kernel_linear16`.
aiot_add_norm_fn aiot_kernel_add_norm(int variant);

/// The softmax for `variant`, or NULL as for `aiot_kernel_linear16`.
aiot_softmax_fn aiot_kernel_softmax(int variant);

/// The packed-weight product for `variant`, or NULL (also for variants without one).
aiot_linear16p_fn aiot_kernel_linear16p(int variant);

/// The wide-input packed product for `variant`, or NULL (also for variants without one).
aiot_linear16p_wide_fn aiot_kernel_linear16p_wide(int variant);

#endif
