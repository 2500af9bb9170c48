// The AVX-512 variant's packed product, residual+norm step and softmax in 512-bit vectors (the
// unpacked product, used only for several heads, stays the 256-bit VNNI body of linear16_x86.c).
// Why 512 bits on a CPU that executes them as two 256-bit halves (Zen 4): the products here are
// small (K = 16-64 inputs, 16-64 outputs), so the time goes to instructions around the
// multiply-adds. One zmm holds a whole 16-output row block; the input pair rides in the
// multiply-add as an embedded broadcast ({1to16}; see z_madd), so a pass over eight rows is one weight load
// and eight `vpdpwssd` per input pair; masks replace the scalar tails; one `vpmovdw` store writes
// 16 int16 outputs; and the requantization runs on 16 lanes per instruction.
//
// Exactness is the 256-bit body's (linear16_x86_body.h): the same pairwise products, wrapped int32
// sums whose exact total fits, and the same two requantization forms lane for lane.
#include "CKernels.h"
#if AIOT_X86_VARIANTS
#include <immintrin.h>
#include "requant_scalar.h"
#include "packed_mode.h"

#pragma clang attribute push(__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

/// A requantization's constants in 16 lanes, loaded once per call.
typedef struct {
    __m512i m, half, cap;        // the 64-bit form: per 64-bit lane
    __m512i m32, half32, cap32;  // the 32-bit form (rq->fast32)
    __m512i lo, hi;
    __m128i n;
    int capit;
} z_rq;

static inline z_rq z_constants(const aiot_requant *rq) {
    z_rq c;
    c.m = _mm512_set1_epi64(rq->m);
    c.half = _mm512_set1_epi64(rq->half);
    c.cap = _mm512_set1_epi64(INT32_MAX);
    c.m32 = _mm512_set1_epi32((int32_t)rq->m);
    c.half32 = _mm512_set1_epi32((int32_t)(uint32_t)rq->half);  // < 2^32 when fast32 (else unused)
    c.cap32 = _mm512_set1_epi32((int32_t)rq->cap32);
    c.lo = _mm512_set1_epi32(rq->lo);
    c.hi = _mm512_set1_epi32(rq->hi);
    c.n = _mm_cvtsi32_si128(rq->n);
    c.capit = rq->n < 16;  // see finish8 in linear16_x86_body.h: n >= 16 cannot pass 2^31 - 1
    return c;
}

/// The 32-bit form of (P3) on 16 accumulators (requant8_32 of the 256-bit body; AVX-512 has no
/// vpsignd, so the sign goes back as a masked negation: acc = 0 keeps f(0) = 0).
static inline __m512i z_requant32(__m512i acc, const z_rq *c) {
    __m512i a = _mm512_min_epu32(_mm512_abs_epi32(acc), c->cap32);
    __m512i p = _mm512_srl_epi32(_mm512_add_epi32(_mm512_mullo_epi32(a, c->m32), c->half32), c->n);
    p = _mm512_mask_sub_epi32(p, _mm512_cmplt_epi32_mask(acc, _mm512_setzero_si512()), _mm512_setzero_si512(), p);
    return _mm512_min_epi32(_mm512_max_epi32(p, c->lo), c->hi);
}

/// The 64-bit form on 16 magnitudes' products: even lanes in `pe`, odd in `po` (each < 2^47 in a
/// 64-bit lane), `neg` the 32-bit lanes' signs; plus half, shifted, capped at 2^31 - 1, sign
/// restored, clamped (finish8 of the 256-bit body).
static inline __m512i z_finish64(__m512i pe, __m512i po, __mmask16 neg, const z_rq *c) {
    pe = _mm512_srl_epi64(_mm512_add_epi64(pe, c->half), c->n);
    po = _mm512_srl_epi64(_mm512_add_epi64(po, c->half), c->n);
    if (c->capit) {
        pe = _mm512_min_epu64(pe, c->cap);
        po = _mm512_min_epu64(po, c->cap);
    }
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
    r = _mm512_mask_sub_epi32(r, neg, _mm512_setzero_si512(), r);
    return _mm512_min_epi32(_mm512_max_epi32(r, c->lo), c->hi);
}

static inline __m512i z_requant64(__m512i acc, const z_rq *c) {
    __mmask16 neg = _mm512_cmplt_epi32_mask(acc, _mm512_setzero_si512());
    __m512i a = _mm512_abs_epi32(acc);
    __m512i pe = _mm512_mul_epu32(a, c->m);
    __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), c->m);
    return z_finish64(pe, po, neg, c);
}

static inline __attribute__((always_inline)) __m512i z_requant(__m512i acc, const z_rq *c, int r32) {
    return r32 ? z_requant32(acc, c) : z_requant64(acc, c);
}

/// Where int16 output (t, o) goes in `layout` (CKernels.h).
static inline long z_at16(long t, long o, long s, long col, int layout) {
    switch (layout) {
    case AIOT_Y16_ROW_PAIRS: return (t >> 1) * s + (t & 1) + o * col;
    case AIOT_Y16_COL_PAIRS: return t * s + (o >> 1) * col + (o & 1);
    default: return t * s + o * col;
    }
}

/// Row t's accumulators for outputs o ..< o + `no` (no <= 16; `b` = their biases, zero past no),
/// requantized and stored. `mode` (a constant where inlined): 0 int32 rows; 1 int16 plain rows;
/// 3 the pair layout of the result (AIOT_Y16_COL_PAIRS; o is a multiple of 16, so outputs o + 2p
/// and o + 2p + 1 share one 32-bit slot); 2 anything else, element by element.
static inline __attribute__((always_inline)) void z_emit(__m512i a, __m512i b, long no, __mmask16 omask, const z_rq *c,
                                                         int32_t *y, long outputs, int16_t *y16, long s, long col, int layout,
                                                         long t, long o, int mode, int r32) {
    __m512i v = z_requant(_mm512_add_epi32(a, b), c, r32);
    if (mode == 0) {
        _mm512_mask_storeu_epi32(y + t * outputs + o, omask, v);
    } else if (mode == 1) {
        _mm512_mask_cvtepi32_storeu_epi16(y16 + t * s + o, omask, v);  // values fit 16 bits
    } else if (mode == 3) {
        __m256i h = _mm512_cvtepi32_epi16(v);
        int32_t pairs[8];
        _mm256_storeu_si256((__m256i *)pairs, h);
        int16_t *base = y16 + t * s + (o >> 1) * col;
        long p = 0;
        for (; 2 * p + 2 <= no; p++) __builtin_memcpy(base + p * col, &pairs[p], 4);
        if (2 * p < no) base[p * col] = (int16_t)pairs[p];  // an odd last output: its slot alone
    } else {
        int32_t lanes[16];
        _mm512_storeu_si512(lanes, v);
        for (long k = 0; k < no; k++) y16[z_at16(t, o + k, s, col, layout)] = (int16_t)lanes[k];
    }
}

/// AIOT_Y16_ROW_PAIRS with col = 2 (mode 4): rows t (even) and t + 1 interleave, (t >> 1) s + (t & 1)
/// + 2 o, so their `no` outputs each are 2 no consecutive int16s: one word permutation (the low
/// halves of both rows' lanes, alternately) and one masked store.
static inline __attribute__((always_inline)) void z_emit_pair(__m512i ae, __m512i ao, __m512i b, long no, const z_rq *c,
                                                              int16_t *y16, long s, long t, long o, int r32) {
    const __m512i idx = _mm512_set_epi16(62, 30, 60, 28, 58, 26, 56, 24, 54, 22, 52, 20, 50, 18, 48, 16,
                                         46, 14, 44, 12, 42, 10, 40, 8, 38, 6, 36, 4, 34, 2, 32, 0);
    __m512i ve = z_requant(_mm512_add_epi32(ae, b), c, r32), vo = z_requant(_mm512_add_epi32(ao, b), c, r32);
    __m512i w = _mm512_permutex2var_epi16(ve, idx, vo);
    __mmask32 m = no >= 16 ? 0xFFFFFFFFu : (__mmask32)((1u << (2 * no)) - 1);
    _mm512_mask_storeu_epi16(y16 + (t >> 1) * s + 2 * o, m, w);
}

/// acc + the pairwise products of `w` with the input pair at `xr + 2 i` broadcast to every lane:
/// one `vpdpwssd` with the pair as an embedded broadcast. In assembly because LLVM otherwise
/// splits it into `vpmaddwd` + `vpaddd` (a tuning for CPUs where the fused form's latency hurts;
/// eight independent accumulators hide it here) and loads the broadcast separately: three
/// instructions for one.
static inline __attribute__((always_inline)) __m512i z_madd(__m512i acc, const int16_t *xr, long i, __m512i w) {
    // Addressed as row + 4 i, so the row pointers stay in registers; it reads memory the compiler
    // cannot see through the operands, hence the clobber.
    __asm__("vpdpwssd (%[p],%[i],4)%{1to16%}, %[w], %[acc]" : [acc] "+v"(acc) : [w] "v"(w), [p] "r"(xr), [i] "r"(i) : "memory");
    return acc;
}

/// Eight rows' accumulators for one block of 16 outputs: per input pair one weight load and eight
/// multiply-adds.
typedef struct {
    __m512i a[8];
} z_acc8;

static inline __attribute__((always_inline)) z_acc8 z_rows8(const int16_t *x0, long stride, const int16_t *wr, long ws, long pairs,
                                                            __mmask16 wmask) {
    const int16_t *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    const int16_t *x4 = x3 + stride, *x5 = x4 + stride, *x6 = x5 + stride, *x7 = x6 + stride;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (long i = 0; i < pairs; i++) {
        const __m512i wv = _mm512_maskz_loadu_epi32(wmask, wr + i * ws);
        a0 = z_madd(a0, x0, i, wv);
        a1 = z_madd(a1, x1, i, wv);
        a2 = z_madd(a2, x2, i, wv);
        a3 = z_madd(a3, x3, i, wv);
        a4 = z_madd(a4, x4, i, wv);
        a5 = z_madd(a5, x5, i, wv);
        a6 = z_madd(a6, x6, i, wv);
        a7 = z_madd(a7, x7, i, wv);
    }
    z_acc8 r = {{a0, a1, a2, a3, a4, a5, a6, a7}};
    return r;
}

static inline __attribute__((always_inline)) __m512i z_row1(const int16_t *xr, const int16_t *wr, long ws, long pairs, __mmask16 wmask) {
    __m512i a0 = _mm512_setzero_si512();
    for (long i = 0; i < pairs; i++) a0 = z_madd(a0, xr, i, _mm512_maskz_loadu_epi32(wmask, wr + i * ws));
    return a0;
}

/// x = 256 xhi + xlo for `n` rows of int32 `x` ([n, k]) into int16 rows of `hi`, `lo` ([n, stride],
/// zero past k): an arithmetic shift and a mask, 16 values per vector.
static inline __attribute__((always_inline)) void z_split(const int32_t *x, long n, long k, long stride, int16_t *hi, int16_t *lo) {
    const __m512i low8 = _mm512_set1_epi32(255);
    for (long r = 0; r < n; r++)
        for (long c = 0; c < stride; c += 16) {
            const __mmask16 in = k - c >= 16 ? 0xFFFF : k - c <= 0 ? 0 : (__mmask16)((1u << (k - c)) - 1);
            const __mmask16 out = stride - c >= 16 ? 0xFFFF : (__mmask16)((1u << (stride - c)) - 1);
            const __m512i v = _mm512_maskz_loadu_epi32(in, x + r * k + c);
            _mm512_mask_cvtepi32_storeu_epi16(hi + r * stride + c, out, _mm512_srai_epi32(v, 8));  // in [-256, 255]
            _mm512_mask_cvtepi32_storeu_epi16(lo + r * stride + c, out, _mm512_and_si512(v, low8));
        }
}

/// The product over int16 `x`, or with `wide` over int32 `xw` ([rows, k], a 16-bit input): each
/// block of rows split into halves on the stack (x = 256 xhi + xlo), one pass per half (the
/// weights stay in L1), acc = (xhi sums << 8) + xlo sums; the shift and add wrap in int32, but the
/// exact total fits (the loader's bound), so they give it.
static inline __attribute__((always_inline)) void z_packed(
        const int16_t *x, const int32_t *xw, long k, int wide, long rows, long stride, const int16_t *wp, const int32_t *bias,
        long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long s, long col, int layout, int mode, int r32) {
    const z_rq c = z_constants(rq);
    const long jp = (outputs + 7) & ~7L, pairs = stride / 2, ws = jp * 2;
    int16_t hi[8 * 256], lo[8 * 256];  // one block of split rows (stride <= 256)
    // Output blocks of 16 outside, rows inside: a block's bias, masks and weight panel (pairs x 64
    // bytes) stay put while every row passes through it, eight rows at a time.
    for (long o = 0; o < jp; o += 16) {
        const __mmask16 wmask = jp - o >= 16 ? 0xFFFF : 0x00FF;  // packed lanes present (jp is a multiple of 8)
        const long no = outputs - o < 16 ? outputs - o : 16;      // real outputs in the block
        const __mmask16 omask = (__mmask16)((1u << no) - 1);
        const __m512i b = _mm512_maskz_loadu_epi32(omask, bias + o);
        const int16_t *wr = wp + o * 2;
        long t = 0;
        for (; t + 8 <= rows; t += 8) {
            z_acc8 r;
            if (wide) {
                z_split(xw + t * k, 8, k, stride, hi, lo);
                r = z_rows8(hi, stride, wr, ws, pairs, wmask);
                const z_acc8 l = z_rows8(lo, stride, wr, ws, pairs, wmask);
                for (int q = 0; q < 8; q++) r.a[q] = _mm512_add_epi32(l.a[q], _mm512_slli_epi32(r.a[q], 8));
            } else {
                r = z_rows8(x + t * stride, stride, wr, ws, pairs, wmask);
            }
            if (mode == 4) {
                for (int q = 0; q < 8; q += 2) z_emit_pair(r.a[q], r.a[q + 1], b, no, &c, y16, s, t + q, o, r32);
                continue;
            }
            for (int q = 0; q < 8; q++) z_emit(r.a[q], b, no, omask, &c, y, outputs, y16, s, col, layout, t + q, o, mode, r32);
        }
        // The last rows (fewer than eight) one at a time; the row-pair layout element by element.
        for (; t < rows; t++) {
            __m512i a0;
            if (wide) {
                z_split(xw + t * k, 1, k, stride, hi, lo);
                a0 = _mm512_add_epi32(z_row1(lo, wr, ws, pairs, wmask), _mm512_slli_epi32(z_row1(hi, wr, ws, pairs, wmask), 8));
            } else {
                a0 = z_row1(x + t * stride, wr, ws, pairs, wmask);
            }
            z_emit(a0, b, no, omask, &c, y, outputs, y16, s, col, layout, t, o, mode == 4 ? 2 : mode, r32);
        }
    }
}

/// Both entry points: each (output mode, requantization form) pair is its own specialization, no
/// branch per output. Modes as in the 256-bit body: 0 int32 rows; 1 int16 plain rows; 3 the pair
/// layout of the result; 4 the pair layout of the transpose with y16col = 2; 2 anything else.
static inline __attribute__((always_inline)) void z_dispatch(
        const int16_t *x, const int32_t *xw, long k, int wide, long rows, long stride, const int16_t *wp, const int32_t *bias,
        long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout) {
    const int mode = aiot_packed_mode(y16, y16col, layout);
#define AIOT_PACKED_CASE(md, r) z_packed(x, xw, k, wide, rows, stride, wp, bias, outputs, rq, y, y16, y16stride, y16col, layout, md, r)
    if (rq->fast32) {
        switch (mode) {
        case 0: AIOT_PACKED_CASE(0, 1); break;
        case 1: AIOT_PACKED_CASE(1, 1); break;
        case 3: AIOT_PACKED_CASE(3, 1); break;
        case 4: AIOT_PACKED_CASE(4, 1); break;
        default: AIOT_PACKED_CASE(2, 1); break;
        }
    } else {
        switch (mode) {
        case 0: AIOT_PACKED_CASE(0, 0); break;
        case 1: AIOT_PACKED_CASE(1, 0); break;
        case 3: AIOT_PACKED_CASE(3, 0); break;
        case 4: AIOT_PACKED_CASE(4, 0); break;
        default: AIOT_PACKED_CASE(2, 0); break;
        }
    }
#undef AIOT_PACKED_CASE
}

void aiot_linear16p_avx512(const int16_t *x, long rows, long stride, const int16_t *wp, const int32_t *bias,
                           long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout) {
    z_dispatch(x, NULL, 0, 0, rows, stride, wp, bias, outputs, rq, y, y16, y16stride, y16col, layout);
}

void aiot_linear16p_wide_avx512(const int32_t *x, long rows, long k, long stride, const int16_t *wp, const int32_t *bias,
                                long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout) {
    z_dispatch(NULL, x, k, 1, rows, stride, wp, bias, outputs, rq, y, y16, y16stride, y16col, layout);
}

/// (E2)+(E3), 16 channels per vector (d not a multiple of 16: masked), in the 32-bit form when
/// `aiot_add_norm_select32` proved it (add_norm32 of the 256-bit body), else the 64-bit one.
static inline __attribute__((always_inline)) void z_add_norm(const int32_t *v, const int32_t *a, long rows, long d, const aiot_add_norm *p,
                                                             int32_t *y32, int16_t *y16, long stride16, int r32) {
    const __m512i zero = _mm512_setzero_si512();
    const z_rq ac = z_constants(&p->add), nc = z_constants(&p->norm);
    const __m512i m1 = r32 ? _mm512_set1_epi32((int32_t)p->m1) : _mm512_set1_epi64(p->m1);
    const __m512i m2 = r32 ? _mm512_set1_epi32((int32_t)p->m2) : _mm512_set1_epi64(p->m2);
    for (long c = 0; c < d; c += 16) {
        const __mmask16 mk = d - c >= 16 ? 0xFFFF : (__mmask16)((1u << (d - c)) - 1);
        const __m512i g = _mm512_maskz_loadu_epi32(mk, p->g + c), bb = _mm512_maskz_loadu_epi32(mk, p->b + c);
        for (long t = 0; t < rows; t++) {
            const long i = t * d + c;
            const __m512i av = _mm512_maskz_loadu_epi32(mk, a + i), vv = _mm512_maskz_loadu_epi32(mk, v + i);
            __m512i r;
            if (r32) {
                // s = a m1 + v m2 exact in int32; the add's m is 1: |s| capped, plus half, shifted.
                __m512i sum = _mm512_add_epi32(_mm512_mullo_epi32(av, m1), _mm512_mullo_epi32(vv, m2));
                __m512i mag = _mm512_srl_epi32(_mm512_add_epi32(_mm512_min_epu32(_mm512_abs_epi32(sum), ac.cap32), ac.half32), ac.n);
                mag = _mm512_mask_sub_epi32(mag, _mm512_cmplt_epi32_mask(sum, zero), zero, mag);
                r = _mm512_min_epi32(_mm512_max_epi32(mag, ac.lo), ac.hi);
            } else {
                // a m1 + v m2 exactly in 64 bits (|a|, |v| < 2^17, m < 2^16), even and odd lanes.
                __m512i se = _mm512_add_epi64(_mm512_mul_epi32(av, m1), _mm512_mul_epi32(vv, m2));
                __m512i so = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(av, 32), m1),
                                              _mm512_mul_epi32(_mm512_srli_epi64(vv, 32), m2));
                // The 32-bit lanes' signs: lane 2k from se's lane k, lane 2k + 1 from so's.
                __mmask16 neg = _mm512_cmplt_epi32_mask(
                    _mm512_mask_blend_epi32(0xAAAA, _mm512_srai_epi64(se, 63), _mm512_srai_epi64(so, 63)), zero);
                r = z_finish64(_mm512_abs_epi64(se), _mm512_abs_epi64(so), neg, &ac);
            }
            __m512i yv = z_requant(_mm512_add_epi32(bb, _mm512_mullo_epi32(r, g)), &nc, r32);
            _mm512_mask_storeu_epi32(y32 + i, mk, yv);
            _mm512_mask_cvtepi32_storeu_epi16(y16 + t * stride16 + c, mk, yv);  // values fit 16 bits
        }
    }
}

void aiot_add_norm_avx512(const int32_t *v, const int32_t *a, long rows, long d, const aiot_add_norm *p,
                          int32_t *y32, int16_t *y16, long stride16) {
    if (p->fast32) z_add_norm(v, a, rows, d, p, y32, y16, stride16, 1);
    else z_add_norm(v, a, rows, d, p, y32, y16, stride16, 0);
}

/// (E6) as the 256-bit body's softmax, 16 scores per vector: the row maximum; e_j = exp[top - s_j]
/// from the table held in 32-entry blocks (`vpermt2d` picks by the index's low five bits, a
/// compare on the rest keeps the block's lanes; indices past the last block read 0, as the table
/// does from `expNonzero` on: one gather costs more than sixteen loads on Zen 4, a block three
/// instructions); their sum; the probabilities (the same exact split of e inv + 2^29 into 32-bit
/// lanes), stored as int16 under a mask (columns past w untouched).
void aiot_softmax_avx512(int32_t *s, long w, const int32_t *exp, long expNonzero, int64_t range, int16_t *probs, long wStride) {
    const __m512i lowest = _mm512_set1_epi32(INT32_MIN), zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i h29 = _mm512_set1_epi32(1 << 29), rv = _mm512_set1_epi32((int32_t)range);
    const long blocks = (expNonzero + 31) / 32;
    for (long i = 0; i < w; i++) {
        int32_t *row = s + i * w;
        int16_t *prow = probs + i * wStride;
        __m512i mx = lowest;
        for (long j = 0; j < w; j += 16) {
            const __mmask16 mk = w - j >= 16 ? 0xFFFF : (__mmask16)((1u << (w - j)) - 1);
            mx = _mm512_max_epi32(mx, _mm512_mask_loadu_epi32(lowest, mk, row + j));
        }
        const __m512i top = _mm512_set1_epi32(_mm512_reduce_max_epi32(mx));
        __m512i den = zero;  // sum e_j <= w 2^15 <= 2^23 (W <= 256): int32 lanes hold it
        for (long j = 0; j < w; j += 16) {
            const __mmask16 mk = w - j >= 16 ? 0xFFFF : (__mmask16)((1u << (w - j)) - 1);
            const __m512i idx = _mm512_sub_epi32(top, _mm512_maskz_loadu_epi32(mk, row + j));  // >= 0
            const __m512i blockOf = _mm512_srli_epi32(idx, 5);
            __m512i e = zero, k = zero;
            for (long b = 0; b < blocks; b++) {
                const __m512i v = _mm512_permutex2var_epi32(_mm512_loadu_si512(exp + 32 * b), idx, _mm512_loadu_si512(exp + 32 * b + 16));
                e = _mm512_mask_mov_epi32(e, _mm512_mask_cmpeq_epi32_mask(mk, blockOf, k), v);
                k = _mm512_add_epi32(k, one);
            }
            _mm512_mask_storeu_epi32(row + j, mk, e);
            den = _mm512_add_epi32(den, e);
        }
        const int64_t inv = (range << 30) / (int64_t)_mm512_reduce_add_epi32(den);  // den >= 2^15: exp[0]
        // (e inv + 2^29) >> 30 = (e ih + ((e il + 2^29) >> 15)) >> 15 (see the 256-bit body).
        const __m512i ih = _mm512_set1_epi32((int32_t)(inv >> 15)), il = _mm512_set1_epi32((int32_t)(inv & 32767));
        for (long j = 0; j < w; j += 16) {
            const __mmask16 mk = w - j >= 16 ? 0xFFFF : (__mmask16)((1u << (w - j)) - 1);
            __m512i e = _mm512_maskz_loadu_epi32(mk, row + j);
            __m512i lo = _mm512_srli_epi32(_mm512_add_epi32(_mm512_mullo_epi32(e, il), h29), 15);
            __m512i pv = _mm512_min_epi32(_mm512_srli_epi32(_mm512_add_epi32(_mm512_mullo_epi32(e, ih), lo), 15), rv);
            _mm512_mask_cvtepi32_storeu_epi16(prow + j, mk, pv);  // p <= range < 2^15
        }
    }
}

#pragma clang attribute pop
#endif
