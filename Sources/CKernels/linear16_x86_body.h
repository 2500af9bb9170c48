// The body of the x86 vector variants, included by linear16_x86.c once per instruction set with
// AIOT_FN (the function's name) and AIOT_MADD(acc, a, b) (acc + pairwise 16-bit products: pmaddwd
// then add on AVX2, one vpdpwssd with AVX-512 VNNI) defined, inside a target pragma. The residual
// + norm, softmax and packed products are generated only where AIOT_ADD_NORM_FN, AIOT_SOFTMAX_FN,
// AIOT_PACKED_FN and AIOT_WIDE_FN name them (AVX-512 has its own, in 512-bit vectors:
// linear16_avx512.c).
//
// Exactness. pmaddwd/vpdpwssd form x0*w0 + x1*w1 in int32: |x|, |w| <= 32767, so a pair is at most
// 2 * 32767^2 < 2^31 (the one overflowing case, (-32768)^2 * 2, cannot occur: centered values are
// never -32768). The further adds wrap, but the exact sum fits int32 (loader's bound, §6), and a
// wrapped sum of integers whose exact total fits equals that total whatever the order.

/// The four lanes' sums of eight vectors, side by side: result[k] = sum of all lanes of a_k.
static inline __m256i AIOT_NAME(reduce8)(__m256i a0, __m256i a1, __m256i a2, __m256i a3,
                                         __m256i a4, __m256i a5, __m256i a6, __m256i a7) {
    __m256i s01 = _mm256_hadd_epi32(a0, a1), s23 = _mm256_hadd_epi32(a2, a3);
    __m256i s45 = _mm256_hadd_epi32(a4, a5), s67 = _mm256_hadd_epi32(a6, a7);
    __m256i s0123 = _mm256_hadd_epi32(s01, s23), s4567 = _mm256_hadd_epi32(s45, s67);
    // Each 128-bit lane now holds partial sums of a0..a3 (s0123) or a4..a7 (s4567).
    __m256i lo = _mm256_permute2x128_si256(s0123, s4567, 0x20);
    __m256i hi = _mm256_permute2x128_si256(s0123, s4567, 0x31);
    return _mm256_add_epi32(lo, hi);
}

/// (P2)+(P3) on eight accumulators: magnitudes times m as exact unsigned 64-bit products
/// (|acc| <= 2^31 - 1, m < 2^16), plus half, shifted by n, capped at 2^31 - 1 (the clamp to
/// lo..hi, |lo|, |hi| <= 65535, saturates those anyway), sign restored, clamped.
static inline __m256i AIOT_NAME(finish8)(__m256i pe, __m256i po, __m256i neg, __m256i half, __m128i n,
                                         __m256i cap, __m256i lo, __m256i hi, int capit);

static inline __m256i AIOT_NAME(requant8)(__m256i acc, __m256i m, __m256i half, __m128i n,
                                          __m256i cap, __m256i lo, __m256i hi, int capit) {
    __m256i neg = _mm256_srai_epi32(acc, 31);
    __m256i a = _mm256_abs_epi32(acc);
    __m256i pe = _mm256_mul_epu32(a, m);                        // lanes 0, 2, 4, 6
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m); // lanes 1, 3, 5, 7
    return AIOT_NAME(finish8)(pe, po, neg, half, n, cap, lo, hi, capit);
}

/// The 32-bit form of (P3) (`aiot_requant_select32` proved it for this layer; `aiot_requant_scalar32`
/// is the same in scalar C): |acc| capped at cap32, times m and plus half in unsigned 32-bit lanes
/// (no wrap: cap32 m + half < 2^32), shifted by n (a count >= 32 gives 0, as the exact shift of a
/// value below 2^32 does), the sign put back (vpsignd: acc = 0 gives 0, and f(0) = 0), clamped.
/// Eight instructions for eight outputs, against about fourteen for the 64-bit form.
static inline __m256i AIOT_NAME(requant8_32)(__m256i acc, __m256i cap, __m256i m, __m256i half, __m128i n,
                                             __m256i lo, __m256i hi) {
    __m256i a = _mm256_min_epu32(_mm256_abs_epi32(acc), cap);
    __m256i p = _mm256_srl_epi32(_mm256_add_epi32(_mm256_mullo_epi32(a, m), half), n);
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_sign_epi32(p, acc), lo), hi);
}

/// The rest of (P2)+(P3) from magnitudes (even lanes in `pe`, odd in `po`, each < 2^47 in a
/// 64-bit lane) and the 32-bit lanes' sign masks `neg`. `capit` is 0 when n >= 16: then
/// (|v| + half) >> n < (2^47 - 2^31 + 2^15) / 2^16 < 2^31 already (|acc| <= 2^31 - 1, m <= 2^16 - 1;
/// addition accumulators < 2^34), so the cap (four instructions) is skipped.
static inline __m256i AIOT_NAME(finish8)(__m256i pe, __m256i po, __m256i neg, __m256i half, __m128i n,
                                         __m256i cap, __m256i lo, __m256i hi, int capit) {
    pe = _mm256_srl_epi64(_mm256_add_epi64(pe, half), n);
    po = _mm256_srl_epi64(_mm256_add_epi64(po, half), n);
    if (capit) {
        pe = _mm256_blendv_epi8(pe, cap, _mm256_cmpgt_epi64(pe, cap));
        po = _mm256_blendv_epi8(po, cap, _mm256_cmpgt_epi64(po, cap));
    }
    __m256i r = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    r = _mm256_sub_epi32(_mm256_xor_si256(r, neg), neg);
    return _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
}

void AIOT_FN(const int16_t *x, long rows, long stride, const int16_t *w, const int32_t *bias,
             long outputs, const aiot_requant *rq, int32_t *y) {
    const __m256i m = _mm256_set1_epi64x(rq->m), half = _mm256_set1_epi64x(rq->half);
    const __m128i n = _mm_cvtsi32_si128(rq->n);
    const __m256i cap = _mm256_set1_epi64x(INT32_MAX);
    const __m256i lo = _mm256_set1_epi32(rq->lo), hi = _mm256_set1_epi32(rq->hi);
    const long wide = stride & ~15L;   // 16 lanes at a time, then one 8-lane tail
    const int tail = (stride & 8) != 0;
    for (long t = 0; t < rows; t++) {
        const int16_t *xr = x + t * stride;
        int32_t *yr = y + t * outputs;
        long o = 0;
        for (; o + 8 <= outputs; o += 8) {
            const int16_t *wr = w + o * stride;
            __m256i a[8];
            for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_si256();
            for (long i = 0; i < wide; i += 16) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xr + i));
                for (int k = 0; k < 8; k++)
                    a[k] = AIOT_MADD(a[k], xv, _mm256_loadu_si256((const __m256i *)(wr + k * stride + i)));
            }
            if (tail) {
                __m256i xv = _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(xr + wide)));
                for (int k = 0; k < 8; k++)
                    a[k] = AIOT_MADD(a[k], xv, _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(wr + k * stride + wide))));
            }
            __m256i sums = _mm256_add_epi32(AIOT_NAME(reduce8)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]),
                                            _mm256_loadu_si256((const __m256i *)(bias + o)));
            _mm256_storeu_si256((__m256i *)(yr + o), AIOT_NAME(requant8)(sums, m, half, n, cap, lo, hi, rq->n < 16));
        }
        for (; o < outputs; o++) {
            const int16_t *wr = w + o * stride;
            uint32_t acc = (uint32_t)bias[o];
            for (long i = 0; i < stride; i++) acc += (uint32_t)((int32_t)xr[i] * (int32_t)wr[i]);
            yr[o] = aiot_requant_scalar((int32_t)acc, rq);
        }
    }
}

#ifdef AIOT_ADD_NORM_FN
/// |v| of signed 64-bit lanes and their sign masks.
static inline __m256i AIOT_NAME(abs64)(__m256i v, __m256i *sign) {
    *sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
    return _mm256_sub_epi64(_mm256_xor_si256(v, *sign), *sign);
}

/// (E2)+(E3) in 32-bit lanes (`aiot_add_norm_select32` proved every step fits): s = a m1 + v m2
/// exact in int32, r = the add's 32-bit requantization of s (its m is 1, so no multiply), then the
/// norm's of b + r g. About half the instructions of the 64-bit form.
static void AIOT_NAME(add_norm32)(const int32_t *v, const int32_t *a, long rows, long d, const aiot_add_norm *p,
                                  int32_t *y32, int16_t *y16, long stride16) {
    const __m256i m1 = _mm256_set1_epi32((int32_t)p->m1), m2 = _mm256_set1_epi32((int32_t)p->m2);
    const __m256i acap = _mm256_set1_epi32((int32_t)p->add.cap32), ahalf = _mm256_set1_epi32((int32_t)(uint32_t)p->add.half);
    const __m256i alo = _mm256_set1_epi32(p->add.lo), ahi = _mm256_set1_epi32(p->add.hi);
    const __m128i an = _mm_cvtsi32_si128(p->add.n);
    const __m256i ncap = _mm256_set1_epi32((int32_t)p->norm.cap32), nm = _mm256_set1_epi32((int32_t)p->norm.m);
    const __m256i nhalf = _mm256_set1_epi32((int32_t)(uint32_t)p->norm.half);
    const __m256i nlo = _mm256_set1_epi32(p->norm.lo), nhi = _mm256_set1_epi32(p->norm.hi);
    const __m128i nn = _mm_cvtsi32_si128(p->norm.n);
    for (long t = 0; t < rows; t++) {
        long c = 0;
        for (; c + 8 <= d; c += 8) {
            long i = t * d + c;
            __m256i av = _mm256_loadu_si256((const __m256i *)(a + i)), vv = _mm256_loadu_si256((const __m256i *)(v + i));
            __m256i sum = _mm256_add_epi32(_mm256_mullo_epi32(av, m1), _mm256_mullo_epi32(vv, m2));
            __m256i mag = _mm256_min_epu32(_mm256_abs_epi32(sum), acap);
            mag = _mm256_srl_epi32(_mm256_add_epi32(mag, ahalf), an);
            __m256i r = _mm256_min_epi32(_mm256_max_epi32(_mm256_sign_epi32(mag, sum), alo), ahi);
            __m256i acc = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(p->b + c)),
                                           _mm256_mullo_epi32(r, _mm256_loadu_si256((const __m256i *)(p->g + c))));
            __m256i y = AIOT_NAME(requant8_32)(acc, ncap, nm, nhalf, nn, nlo, nhi);
            _mm256_storeu_si256((__m256i *)(y32 + i), y);
            __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(y, y), 0x08);  // values fit 16 bits
            _mm_storeu_si128((__m128i *)(y16 + t * stride16 + c), _mm256_castsi256_si128(packed));
        }
        for (; c < d; c++) {  // the exact 64-bit scalar form (equal by the same proof)
            long i = t * d + c;
            int32_t r = aiot_requant_scalar64((int64_t)a[i] * p->m1 + (int64_t)v[i] * p->m2, &p->add);
            int32_t y = aiot_requant_scalar((int32_t)((uint32_t)p->b[c] + (uint32_t)r * (uint32_t)p->g[c]), &p->norm);
            y32[i] = y;
            y16[t * stride16 + c] = (int16_t)y;
        }
    }
}

void AIOT_ADD_NORM_FN(const int32_t *v, const int32_t *a, long rows, long d, const aiot_add_norm *p,
                      int32_t *y32, int16_t *y16, long stride16) {
    if (p->fast32) {
        AIOT_NAME(add_norm32)(v, a, rows, d, p, y32, y16, stride16);
        return;
    }
    const __m256i m1 = _mm256_set1_epi64x(p->m1), m2 = _mm256_set1_epi64x(p->m2);
    const __m256i ah = _mm256_set1_epi64x(p->add.half), alo = _mm256_set1_epi32(p->add.lo), ahi = _mm256_set1_epi32(p->add.hi);
    const __m128i an = _mm_cvtsi32_si128(p->add.n);
    const __m256i nm = _mm256_set1_epi64x(p->norm.m), nh = _mm256_set1_epi64x(p->norm.half);
    const __m256i nlo = _mm256_set1_epi32(p->norm.lo), nhi = _mm256_set1_epi32(p->norm.hi);
    const __m128i nn = _mm_cvtsi32_si128(p->norm.n);
    const __m256i cap = _mm256_set1_epi64x(INT32_MAX);
    for (long t = 0; t < rows; t++) {
        long c = 0;
        for (; c + 8 <= d; c += 8) {
            long i = t * d + c;
            __m256i av = _mm256_loadu_si256((const __m256i *)(a + i)), vv = _mm256_loadu_si256((const __m256i *)(v + i));
            // a m1 + v m2 exactly in 64 bits (|a|, |v| < 2^17, m < 2^16), even and odd lanes.
            __m256i se, so;
            __m256i pe = AIOT_NAME(abs64)(_mm256_add_epi64(_mm256_mul_epi32(av, m1), _mm256_mul_epi32(vv, m2)), &se);
            __m256i po = AIOT_NAME(abs64)(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(av, 32), m1),
                                                           _mm256_mul_epi32(_mm256_srli_epi64(vv, 32), m2)), &so);
            __m256i r = AIOT_NAME(finish8)(pe, po, _mm256_blend_epi32(se, so, 0xAA), ah, an, cap, alo, ahi, p->add.n < 16);
            __m256i acc = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(p->b + c)),
                                           _mm256_mullo_epi32(r, _mm256_loadu_si256((const __m256i *)(p->g + c))));
            __m256i y = AIOT_NAME(requant8)(acc, nm, nh, nn, cap, nlo, nhi, p->norm.n < 16);
            _mm256_storeu_si256((__m256i *)(y32 + i), y);
            __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(y, y), 0x08);  // values fit 16 bits
            _mm_storeu_si128((__m128i *)(y16 + t * stride16 + c), _mm256_castsi256_si128(packed));
        }
        for (; c < d; c++) {
            long i = t * d + c;
            int32_t r = aiot_requant_scalar64((int64_t)a[i] * p->m1 + (int64_t)v[i] * p->m2, &p->add);
            int32_t y = aiot_requant_scalar((int32_t)((uint32_t)p->b[c] + (uint32_t)r * (uint32_t)p->g[c]), &p->norm);
            y32[i] = y;
            y16[t * stride16 + c] = (int16_t)y;
        }
    }
}

#endif

#ifdef AIOT_SOFTMAX_FN
void AIOT_SOFTMAX_FN(int32_t *s, long w, const int32_t *exp, long expNonzero, int64_t range, int16_t *probs, long wStride) {
    (void)expNonzero;  // every index is in the table
    for (long i = 0; i < w; i++) {
        int32_t *row = s + i * w;
        int16_t *prow = probs + i * wStride;
        int32_t mx = INT32_MIN;
        for (long j = 0; j < w; j++) mx = row[j] > mx ? row[j] : mx;
        int64_t den = 0;
        for (long j = 0; j < w; j++) {
            int32_t e = exp[mx - row[j]];
            row[j] = e;
            den += e;
        }
        int64_t inv = (range << 30) / den;  // den >= 2^15: the row maximum contributes exp[0]
        // (e inv + 2^29) >> 30 in 32-bit lanes: e <= 2^15, inv <= range 2^15 < 2^23, so with
        // inv = ih 2^15 + il (il < 2^15, ih < 2^8): e il + 2^29 < 2^31 (no wrap), e ih < 2^23, and
        // e inv + 2^29 = e ih 2^15 + (e il + 2^29), so the shift by 30 is
        // (e ih + ((e il + 2^29) >> 15)) >> 15 exactly (nested floors by powers of two).
        const __m256i ih = _mm256_set1_epi32((int32_t)(inv >> 15)), il = _mm256_set1_epi32((int32_t)(inv & 32767));
        const __m256i h29 = _mm256_set1_epi32(1 << 29), rv = _mm256_set1_epi32((int32_t)range);
        long j = 0;
        for (; j + 8 <= w; j += 8) {
            __m256i e = _mm256_loadu_si256((const __m256i *)(row + j));
            __m256i lo = _mm256_srli_epi32(_mm256_add_epi32(_mm256_mullo_epi32(e, il), h29), 15);
            __m256i p = _mm256_min_epi32(_mm256_srli_epi32(_mm256_add_epi32(_mm256_mullo_epi32(e, ih), lo), 15), rv);
            __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(p, p), 0x08);  // p <= range < 2^15
            _mm_storeu_si128((__m128i *)(prow + j), _mm256_castsi256_si128(packed));
        }
        for (; j < w; j++) {
            int64_t p = ((int64_t)row[j] * inv + (1LL << 29)) >> 30;  // exact in 64 bits
            prow[j] = (int16_t)(p < range ? p : range);
        }
    }
}

#endif

#ifdef AIOT_PACKED_FN
/// Eight requantized outputs to row t's int32 slots, or to its int16 slots when `y16` is given.
/// Where int16 output (t, o) goes in `layout` (CKernels.h).
static inline long AIOT_NAME(at16)(long t, long o, long s, long c, int layout) {
    switch (layout) {
    case AIOT_Y16_ROW_PAIRS: return (t >> 1) * s + (t & 1) + o * c;
    case AIOT_Y16_COL_PAIRS: return t * s + (o >> 1) * c + (o & 1);
    default: return t * s + o * c;
    }
}

/// `mode`: 0 int32 rows, 1 int16 plain rows, 2 int16 anywhere else (element by element, at16);
/// a constant where inlined, so each specialization of the packed product has no store branches.
static inline __attribute__((always_inline)) void AIOT_NAME(store8)(int32_t *yr, int16_t *y16, long t, long y16stride, long y16col, int layout,
                                                                    long o, __m256i v, int mode) {
    if (mode == 2) {
        int32_t lanes[8];
        _mm256_storeu_si256((__m256i *)lanes, v);
        for (int k = 0; k < 8; k++) y16[AIOT_NAME(at16)(t, o + k, y16stride, y16col, layout)] = (int16_t)lanes[k];
    } else if (mode == 1) {
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0x08);  // values fit 16 bits
        _mm_storeu_si128((__m128i *)(y16 + t * y16stride + o), _mm256_castsi256_si128(packed));
    } else if (mode == 3) {
        // AIOT_Y16_COL_PAIRS: o is a multiple of 8, so outputs o + 2j and o + 2j + 1 are adjacent
        // int16s (at16: (o >> 1) * y16col + (o & 1)): one 32-bit store per pair.
        __m128i h = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0x08));
        int16_t *base = y16 + t * y16stride + (o >> 1) * y16col;
        int32_t d0 = _mm_cvtsi128_si32(h), d1 = _mm_extract_epi32(h, 1), d2 = _mm_extract_epi32(h, 2), d3 = _mm_extract_epi32(h, 3);
        __builtin_memcpy(base, &d0, 4);
        __builtin_memcpy(base + y16col, &d1, 4);
        __builtin_memcpy(base + 2 * y16col, &d2, 4);
        __builtin_memcpy(base + 3 * y16col, &d3, 4);
    } else {
        _mm256_storeu_si256((__m256i *)(yr + o), v);
    }
}

/// The requantization constants of one product, loaded once per call.
typedef struct {
    __m256i m, half, cap, lo, hi;
    __m256i m32, half32, cap32;  // the 32-bit form's, when rq->fast32
    __m128i n;
    int capit;
} AIOT_NAME(rq8);

/// Eight accumulators of row t, outputs o ..< o + 8 (o + 8 may pass `outputs`: only the real
/// ones are written), plus bias, requantized and stored.
static inline __attribute__((always_inline)) void AIOT_NAME(emit8)(__m256i a, const int32_t *bias, long outputs, const aiot_requant *rq, const AIOT_NAME(rq8) *c,
                                    int32_t *y, int16_t *y16, long y16stride, long y16col, int layout, long t, long o, int mode, int r32) {
    if (o + 8 <= outputs) {
        a = _mm256_add_epi32(a, _mm256_loadu_si256((const __m256i *)(bias + o)));
        AIOT_NAME(store8)(y + t * outputs, y16, t, y16stride, y16col, layout, o,
                          r32 ? AIOT_NAME(requant8_32)(a, c->cap32, c->m32, c->half32, c->n, c->lo, c->hi)
                              : AIOT_NAME(requant8)(a, c->m, c->half, c->n, c->cap, c->lo, c->hi, c->capit), mode);
    } else {
        int32_t acc[8];
        _mm256_storeu_si256((__m256i *)acc, a);
        for (long k = 0; o + k < outputs; k++) {
            int32_t sum = (int32_t)((uint32_t)acc[k] + (uint32_t)bias[o + k]);
            int32_t v = r32 ? aiot_requant_scalar32(sum, rq) : aiot_requant_scalar(sum, rq);
            if (y16) y16[AIOT_NAME(at16)(t, o + k, y16stride, y16col, layout)] = (int16_t)v; else y[t * outputs + o + k] = v;
        }
    }
}

/// AIOT_Y16_ROW_PAIRS with y16col = 2 (mode 4): rows t (even) and t + 1, outputs o ..< o + 8,
/// interleave (at16: (t >> 1) * y16stride + (t & 1) + 2 o), so both rows' eight outputs form
/// sixteen consecutive int16s: two 128-bit stores. Partial blocks go element by element (mode 2).
static inline __attribute__((always_inline)) void AIOT_NAME(emit8x2)(__m256i ae, __m256i ao, const int32_t *bias, long outputs, const aiot_requant *rq, const AIOT_NAME(rq8) *c,
                                    int32_t *y, int16_t *y16, long y16stride, long y16col, int layout, long t, long o, int r32) {
    if (o + 8 <= outputs) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(bias + o));
        ae = _mm256_add_epi32(ae, b);
        ao = _mm256_add_epi32(ao, b);
        __m256i ve = r32 ? AIOT_NAME(requant8_32)(ae, c->cap32, c->m32, c->half32, c->n, c->lo, c->hi)
                         : AIOT_NAME(requant8)(ae, c->m, c->half, c->n, c->cap, c->lo, c->hi, c->capit);
        __m256i vo = r32 ? AIOT_NAME(requant8_32)(ao, c->cap32, c->m32, c->half32, c->n, c->lo, c->hi)
                         : AIOT_NAME(requant8)(ao, c->m, c->half, c->n, c->cap, c->lo, c->hi, c->capit);
        __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(ve, vo), 0xD8);  // ve 0..7 | vo 0..7, as int16
        __m128i he = _mm256_castsi256_si128(p), ho = _mm256_extracti128_si256(p, 1);
        int16_t *base = y16 + (t >> 1) * y16stride + 2 * o;
        _mm_storeu_si128((__m128i *)base, _mm_unpacklo_epi16(he, ho));
        _mm_storeu_si128((__m128i *)(base + 8), _mm_unpackhi_epi16(he, ho));
    } else {
        AIOT_NAME(emit8)(ae, bias, outputs, rq, c, y, y16, y16stride, y16col, layout, t, o, 2, r32);
        AIOT_NAME(emit8)(ao, bias, outputs, rq, c, y, y16, y16stride, y16col, layout, t + 1, o, 2, r32);
    }
}

/// One input pair of row `xr` broadcast to every 32-bit lane.
static inline __m256i AIOT_NAME(pair)(const int16_t *xr, long i) {
    int32_t pair;
    __builtin_memcpy(&pair, xr + 2 * i, 4);
    return _mm256_set1_epi32(pair);
}

/// Four rows by sixteen outputs (8 accumulators: a[2 r] outputs o..o+7 of row r, a[2 r + 1] the
/// next eight): each weight vector loaded serves four rows, each broadcast pair two blocks, so
/// the loop is mostly multiply-adds.
static inline __attribute__((always_inline)) void AIOT_NAME(acc4x16)(const int16_t *x0, long stride, const int16_t *wr, long ws, long pairs, __m256i a[8]) {
    const int16_t *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (long i = 0; i < pairs; i++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(wr + i * ws));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(wr + i * ws + 16));
        __m256i b = AIOT_NAME(pair)(x0, i);
        a00 = AIOT_MADD(a00, b, w0); a01 = AIOT_MADD(a01, b, w1);
        b = AIOT_NAME(pair)(x1, i);
        a10 = AIOT_MADD(a10, b, w0); a11 = AIOT_MADD(a11, b, w1);
        b = AIOT_NAME(pair)(x2, i);
        a20 = AIOT_MADD(a20, b, w0); a21 = AIOT_MADD(a21, b, w1);
        b = AIOT_NAME(pair)(x3, i);
        a30 = AIOT_MADD(a30, b, w0); a31 = AIOT_MADD(a31, b, w1);
    }
    a[0] = a00; a[1] = a01; a[2] = a10; a[3] = a11; a[4] = a20; a[5] = a21; a[6] = a30; a[7] = a31;
}

/// Four rows by eight outputs (the last block when pad8(J) is not a multiple of 16).
static inline __attribute__((always_inline)) void AIOT_NAME(acc4x8)(const int16_t *x0, long stride, const int16_t *wr, long ws, long pairs, __m256i a[4]) {
    const int16_t *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (long i = 0; i < pairs; i++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(wr + i * ws));
        a0 = AIOT_MADD(a0, AIOT_NAME(pair)(x0, i), w0);
        a1 = AIOT_MADD(a1, AIOT_NAME(pair)(x1, i), w0);
        a2 = AIOT_MADD(a2, AIOT_NAME(pair)(x2, i), w0);
        a3 = AIOT_MADD(a3, AIOT_NAME(pair)(x3, i), w0);
    }
    a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
}

/// One row by `nb` (1 or 2) blocks of eight outputs.
static inline __attribute__((always_inline)) void AIOT_NAME(acc1)(const int16_t *xr, const int16_t *wr, long ws, long pairs, int nb, __m256i a[2]) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (long i = 0; i < pairs; i++) {
        __m256i b = AIOT_NAME(pair)(xr, i);
        a0 = AIOT_MADD(a0, b, _mm256_loadu_si256((const __m256i *)(wr + i * ws)));
        if (nb == 2) a1 = AIOT_MADD(a1, b, _mm256_loadu_si256((const __m256i *)(wr + i * ws + 16)));
    }
    a[0] = a0; a[1] = a1;
}

/// x = 256 xhi + xlo for `n` rows of int32 `xw` ([n, k], centered |x| < 2^16) into int16 rows of
/// `hi`, `lo` ([n, stride], zero past k).
static inline void AIOT_NAME(split)(const int32_t *xw, long n, long k, long stride, int16_t *hi, int16_t *lo) {
    for (long r = 0; r < n; r++) {
        for (long c = 0; c < k; c++) {
            hi[r * stride + c] = (int16_t)(xw[r * k + c] >> 8);  // arithmetic shift: in [-256, 255]
            lo[r * stride + c] = (int16_t)(xw[r * k + c] & 255);
        }
        for (long c = k; c < stride; c++) hi[r * stride + c] = lo[r * stride + c] = 0;
    }
}

static inline __attribute__((always_inline)) void AIOT_NAME(packed)(
        const int16_t *x, long rows, long stride, const int16_t *wp, const int32_t *bias,
        long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout, int mode, int r32) {
    AIOT_NAME(rq8) c;
    c.m32 = _mm256_set1_epi32((int32_t)rq->m);
    c.half32 = _mm256_set1_epi32((int32_t)(uint32_t)rq->half);  // < 2^32 when fast32 (else unused)
    c.cap32 = _mm256_set1_epi32((int32_t)rq->cap32);
    c.m = _mm256_set1_epi64x(rq->m); c.half = _mm256_set1_epi64x(rq->half);
    c.n = _mm_cvtsi32_si128(rq->n);
    c.cap = _mm256_set1_epi64x(INT32_MAX);
    c.lo = _mm256_set1_epi32(rq->lo); c.hi = _mm256_set1_epi32(rq->hi);
    c.capit = rq->n < 16;
    const long jp = (outputs + 7) & ~7L, pairs = stride / 2, ws = jp * 2;
    long t = 0;
    // Four rows by sixteen outputs per pass (8 accumulators): each weight vector loaded serves
    // four rows, each broadcast pair two blocks, so the loop is mostly multiply-adds.
    for (; t + 4 <= rows; t += 4) {
        const int16_t *x0 = x + t * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
        long o = 0;
        for (; o + 16 <= jp; o += 16) {
            __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            const int16_t *wr = wp + o * 2;
            for (long i = 0; i < pairs; i++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(wr + i * ws));
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(wr + i * ws + 16));
                __m256i b = AIOT_NAME(pair)(x0, i);
                a00 = AIOT_MADD(a00, b, w0); a01 = AIOT_MADD(a01, b, w1);
                b = AIOT_NAME(pair)(x1, i);
                a10 = AIOT_MADD(a10, b, w0); a11 = AIOT_MADD(a11, b, w1);
                b = AIOT_NAME(pair)(x2, i);
                a20 = AIOT_MADD(a20, b, w0); a21 = AIOT_MADD(a21, b, w1);
                b = AIOT_NAME(pair)(x3, i);
                a30 = AIOT_MADD(a30, b, w0); a31 = AIOT_MADD(a31, b, w1);
            }
            if (mode == 4) {
                AIOT_NAME(emit8x2)(a00, a10, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, r32);
                AIOT_NAME(emit8x2)(a01, a11, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o + 8, r32);
                AIOT_NAME(emit8x2)(a20, a30, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o, r32);
                AIOT_NAME(emit8x2)(a21, a31, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o + 8, r32);
                continue;
            }
            AIOT_NAME(emit8)(a00, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, mode, r32);
            AIOT_NAME(emit8)(a01, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o + 8, mode, r32);
            AIOT_NAME(emit8)(a10, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 1, o, mode, r32);
            AIOT_NAME(emit8)(a11, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 1, o + 8, mode, r32);
            AIOT_NAME(emit8)(a20, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o, mode, r32);
            AIOT_NAME(emit8)(a21, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o + 8, mode, r32);
            AIOT_NAME(emit8)(a30, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 3, o, mode, r32);
            AIOT_NAME(emit8)(a31, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 3, o + 8, mode, r32);
        }
        for (; o < jp; o += 8) {
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            const int16_t *wr = wp + o * 2;
            for (long i = 0; i < pairs; i++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(wr + i * ws));
                a0 = AIOT_MADD(a0, AIOT_NAME(pair)(x0, i), w0);
                a1 = AIOT_MADD(a1, AIOT_NAME(pair)(x1, i), w0);
                a2 = AIOT_MADD(a2, AIOT_NAME(pair)(x2, i), w0);
                a3 = AIOT_MADD(a3, AIOT_NAME(pair)(x3, i), w0);
            }
            if (mode == 4) {
                AIOT_NAME(emit8x2)(a0, a1, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, r32);
                AIOT_NAME(emit8x2)(a2, a3, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o, r32);
                continue;
            }
            AIOT_NAME(emit8)(a0, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, mode, r32);
            AIOT_NAME(emit8)(a1, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 1, o, mode, r32);
            AIOT_NAME(emit8)(a2, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o, mode, r32);
            AIOT_NAME(emit8)(a3, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 3, o, mode, r32);
        }
    }
    // The last rows (fewer than four) one at a time, two blocks per pass.
    for (; t < rows; t++) {
        const int16_t *xr = x + t * stride;
        long o = 0;
        for (; o + 16 <= jp; o += 16) {
            __m256i a0 = _mm256_setzero_si256(), a1 = a0;
            const int16_t *wr = wp + o * 2;
            for (long i = 0; i < pairs; i++) {
                __m256i b = AIOT_NAME(pair)(xr, i);
                a0 = AIOT_MADD(a0, b, _mm256_loadu_si256((const __m256i *)(wr + i * ws)));
                a1 = AIOT_MADD(a1, b, _mm256_loadu_si256((const __m256i *)(wr + i * ws + 16)));
            }
            AIOT_NAME(emit8)(a0, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, mode == 4 ? 2 : mode, r32);
            AIOT_NAME(emit8)(a1, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o + 8, mode == 4 ? 2 : mode, r32);
        }
        for (; o < jp; o += 8) {
            __m256i a0 = _mm256_setzero_si256();
            const int16_t *wr = wp + o * 2;
            for (long i = 0; i < pairs; i++)
                a0 = AIOT_MADD(a0, AIOT_NAME(pair)(xr, i), _mm256_loadu_si256((const __m256i *)(wr + i * ws)));
            AIOT_NAME(emit8)(a0, bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, mode == 4 ? 2 : mode, r32);
        }
    }
}

/// The product over int32 `xw` ([rows, k], a 16-bit input): each block of rows split into halves
/// on the stack (x = 256 xhi + xlo), one pass per half, acc = (xhi sums << 8) + xlo sums; the
/// shift and add wrap in int32, but the exact total fits (the loader's bound), so they give it.
/// (The narrow product above keeps its own loop: sharing this one measured slower on AVX2.)
static inline __attribute__((always_inline)) void AIOT_NAME(packed_wide)(
        const int32_t *xw, long k, long rows, long stride, const int16_t *wp, const int32_t *bias,
        long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout, int mode, int r32) {
    AIOT_NAME(rq8) c;
    c.m32 = _mm256_set1_epi32((int32_t)rq->m);
    c.half32 = _mm256_set1_epi32((int32_t)(uint32_t)rq->half);  // < 2^32 when fast32 (else unused)
    c.cap32 = _mm256_set1_epi32((int32_t)rq->cap32);
    c.m = _mm256_set1_epi64x(rq->m); c.half = _mm256_set1_epi64x(rq->half);
    c.n = _mm_cvtsi32_si128(rq->n);
    c.cap = _mm256_set1_epi64x(INT32_MAX);
    c.lo = _mm256_set1_epi32(rq->lo); c.hi = _mm256_set1_epi32(rq->hi);
    c.capit = rq->n < 16;
    const long jp = (outputs + 7) & ~7L, pairs = stride / 2, ws = jp * 2;
    int16_t hi[4 * 256], lo[4 * 256];  // one block of split rows (stride <= 256)
    long t = 0;
    for (; t + 4 <= rows; t += 4) {
        AIOT_NAME(split)(xw + t * k, 4, k, stride, hi, lo);
        long o = 0;
        for (; o + 16 <= jp; o += 16) {
            __m256i a[8];
            __m256i l[8];
            AIOT_NAME(acc4x16)(hi, stride, wp + o * 2, ws, pairs, a);
            AIOT_NAME(acc4x16)(lo, stride, wp + o * 2, ws, pairs, l);
            _Pragma("clang loop unroll(full)")
            for (int q = 0; q < 8; q++) a[q] = _mm256_add_epi32(l[q], _mm256_slli_epi32(a[q], 8));
            if (mode == 4) {
                AIOT_NAME(emit8x2)(a[0], a[2], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, r32);
                AIOT_NAME(emit8x2)(a[1], a[3], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o + 8, r32);
                AIOT_NAME(emit8x2)(a[4], a[6], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o, r32);
                AIOT_NAME(emit8x2)(a[5], a[7], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o + 8, r32);
                continue;
            }
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < 4; r++) {
                AIOT_NAME(emit8)(a[2 * r], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + r, o, mode, r32);
                AIOT_NAME(emit8)(a[2 * r + 1], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + r, o + 8, mode, r32);
            }
        }
        for (; o < jp; o += 8) {
            __m256i a[4];
            __m256i l[4];
            AIOT_NAME(acc4x8)(hi, stride, wp + o * 2, ws, pairs, a);
            AIOT_NAME(acc4x8)(lo, stride, wp + o * 2, ws, pairs, l);
            _Pragma("clang loop unroll(full)")
            for (int q = 0; q < 4; q++) a[q] = _mm256_add_epi32(l[q], _mm256_slli_epi32(a[q], 8));
            if (mode == 4) {
                AIOT_NAME(emit8x2)(a[0], a[1], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, r32);
                AIOT_NAME(emit8x2)(a[2], a[3], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + 2, o, r32);
                continue;
            }
            _Pragma("clang loop unroll(full)")
            for (int r = 0; r < 4; r++) AIOT_NAME(emit8)(a[r], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t + r, o, mode, r32);
        }
    }
    // The last rows (fewer than four) one at a time, two blocks per pass.
    for (; t < rows; t++) {
        AIOT_NAME(split)(xw + t * k, 1, k, stride, hi, lo);
        for (long o = 0; o < jp; o += 16) {
            const int nb = o + 16 <= jp ? 2 : 1;
            __m256i a[2];
            __m256i l[2];
            AIOT_NAME(acc1)(hi, wp + o * 2, ws, pairs, nb, a);
            AIOT_NAME(acc1)(lo, wp + o * 2, ws, pairs, nb, l);
            _Pragma("clang loop unroll(full)")
            for (int q = 0; q < 2; q++) a[q] = _mm256_add_epi32(l[q], _mm256_slli_epi32(a[q], 8));
            AIOT_NAME(emit8)(a[0], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o, mode == 4 ? 2 : mode, r32);
            if (nb == 2) AIOT_NAME(emit8)(a[1], bias, outputs, rq, &c, y, y16, y16stride, y16col, layout, t, o + 8, mode == 4 ? 2 : mode, r32);
        }
    }
}

/// Both entry points: each (output mode, requantization form) pair is its own specialization, no
/// branch per output. Modes: 0 int32 rows; 1 int16 plain rows; 3 the pair layout of the result
/// (one 32-bit store per output pair); 4 the pair layout of the transpose with y16col = 2 (two
/// rows interleaved); 2 anything else, element by element.
static inline __attribute__((always_inline)) void AIOT_NAME(packed_dispatch)(
        const int16_t *x, const int32_t *xw, long k, int wide, long rows, long stride, const int16_t *wp, const int32_t *bias,
        long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout) {
    const int mode = aiot_packed_mode(y16, y16col, layout);
#define AIOT_PACKED_CASE(md, r) \
    (wide ? AIOT_NAME(packed_wide)(xw, k, rows, stride, wp, bias, outputs, rq, y, y16, y16stride, y16col, layout, md, r) \
          : AIOT_NAME(packed)(x, rows, stride, wp, bias, outputs, rq, y, y16, y16stride, y16col, layout, md, r))
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

void AIOT_PACKED_FN(const int16_t *x, long rows, long stride, const int16_t *wp, const int32_t *bias,
                    long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout) {
    AIOT_NAME(packed_dispatch)(x, NULL, 0, 0, rows, stride, wp, bias, outputs, rq, y, y16, y16stride, y16col, layout);
}

void AIOT_WIDE_FN(const int32_t *x, long rows, long k, long stride, const int16_t *wp, const int32_t *bias,
                  long outputs, const aiot_requant *rq, int32_t *y, int16_t *y16, long y16stride, long y16col, int layout) {
    AIOT_NAME(packed_dispatch)(NULL, x, k, 1, rows, stride, wp, bias, outputs, rq, y, y16, y16stride, y16col, layout);
}
#endif
