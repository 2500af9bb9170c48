// The aarch64 variant of the product with Advanced SIMD intrinsics (baseline on every ARMv8-A CPU,
// so no run-time check). The residual-and-norm and softmax steps are the scalar reference code,
// which the compiler vectorizes for NEON itself. Not executed by the Swift build here (x86-64):
// tools/neon_check.sh cross-compiles it and runs it under qemu-user against the scalar reference.
#include "CKernels.h"
#if defined(__aarch64__)
#include <arm_neon.h>
#include "requant_scalar.h"

void aiot_add_norm_scalar(const int32_t *, const int32_t *, long, long, const aiot_add_norm *, int32_t *, int16_t *, long);
void aiot_softmax_scalar(int32_t *, long, const int32_t *, long, int64_t, int16_t *, long);

/// (P2)+(P3) on four accumulators, as the x86 variants: exact unsigned 64-bit |acc| m, plus half,
/// shifted by n, capped at 2^31 - 1 (the clamp saturates those anyway), sign restored, clamped.
static inline int32x4_t requant4(int32x4_t acc, uint32x2_t m, uint64x2_t half, int64x2_t shift, uint64x2_t cap,
                                 int32x4_t lo, int32x4_t hi) {
    int32x4_t neg = vshrq_n_s32(acc, 31);
    uint32x4_t a = vreinterpretq_u32_s32(vabsq_s32(acc));  // |acc| <= 2^31 - 1 (loader's bound)
    uint64x2_t pl = vshlq_u64(vaddq_u64(vmull_u32(vget_low_u32(a), m), half), shift);
    uint64x2_t ph = vshlq_u64(vaddq_u64(vmull_u32(vget_high_u32(a), m), half), shift);
    pl = vbslq_u64(vcgtq_u64(pl, cap), cap, pl);
    ph = vbslq_u64(vcgtq_u64(ph, cap), cap, ph);
    int32x4_t r = vreinterpretq_s32_u32(vcombine_u32(vmovn_u64(pl), vmovn_u64(ph)));
    r = vsubq_s32(veorq_s32(r, neg), neg);
    return vminq_s32(vmaxq_s32(r, lo), hi);
}

void aiot_linear16_neon(const int16_t *x, long rows, long stride, const int16_t *w, const int32_t *bias,
                        long outputs, const aiot_requant *rq, int32_t *y) {
    const uint32x2_t m = vdup_n_u32((uint32_t)rq->m);
    const uint64x2_t half = vdupq_n_u64((uint64_t)rq->half), cap = vdupq_n_u64(INT32_MAX);
    const int64x2_t shift = vdupq_n_s64(-(int64_t)rq->n);  // a negative count shifts right
    const int32x4_t lo = vdupq_n_s32(rq->lo), hi = vdupq_n_s32(rq->hi);
    for (long t = 0; t < rows; t++) {
        const int16_t *xr = x + t * stride;
        int32_t *yr = y + t * outputs;
        long o = 0;
        for (; o + 4 <= outputs; o += 4) {
            const int16_t *w0 = w + o * stride, *w1 = w0 + stride, *w2 = w1 + stride, *w3 = w2 + stride;
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            // smlal: exact 16x16 products; the wrapping adds are exact as in the x86 variants.
            for (long i = 0; i < stride; i += 8) {
                int16x8_t xv = vld1q_s16(xr + i);
                int16x8_t v0 = vld1q_s16(w0 + i), v1 = vld1q_s16(w1 + i), v2 = vld1q_s16(w2 + i), v3 = vld1q_s16(w3 + i);
                a0 = vmlal_high_s16(vmlal_s16(a0, vget_low_s16(xv), vget_low_s16(v0)), xv, v0);
                a1 = vmlal_high_s16(vmlal_s16(a1, vget_low_s16(xv), vget_low_s16(v1)), xv, v1);
                a2 = vmlal_high_s16(vmlal_s16(a2, vget_low_s16(xv), vget_low_s16(v2)), xv, v2);
                a3 = vmlal_high_s16(vmlal_s16(a3, vget_low_s16(xv), vget_low_s16(v3)), xv, v3);
            }
            int32x4_t sums = vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
            sums = vaddq_s32(sums, vld1q_s32(bias + o));
            vst1q_s32(yr + o, requant4(sums, m, half, shift, cap, lo, hi));
        }
        for (; o < outputs; o++) {
            const int16_t *wr = w + o * stride;
            uint32_t acc = (uint32_t)bias[o];
            for (long i = 0; i < stride; i++) acc += (uint32_t)((int32_t)xr[i] * (int32_t)wr[i]);
            yr[o] = aiot_requant_scalar((int32_t)acc, rq);
        }
    }
}

void aiot_add_norm_neon(const int32_t *v, const int32_t *a, long rows, long d, const aiot_add_norm *p,
                        int32_t *y32, int16_t *y16, long stride16) {
    aiot_add_norm_scalar(v, a, rows, d, p, y32, y16, stride16);
}

void aiot_softmax_neon(int32_t *s, long w, const int32_t *exp, long expNonzero, int64_t range, int16_t *probs, long wStride) {
    aiot_softmax_scalar(s, w, exp, expNonzero, range, probs, wStride);
}
#endif
