// The body of the x86 vector variants, included by linear16_x86.c once per instruction set with
// AIOT_FN (the function's name) and AIOT_MADD(acc, a, b) (acc + pairwise 16-bit products: pmaddwd
// then add on AVX2, one vpdpwssd with AVX-512 VNNI) defined, inside a target pragma.
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
static inline __m256i AIOT_NAME(requant8)(__m256i acc, __m256i m, __m256i half, __m128i n,
                                          __m256i cap, __m256i lo, __m256i hi) {
    __m256i neg = _mm256_srai_epi32(acc, 31);
    __m256i a = _mm256_abs_epi32(acc);
    __m256i pe = _mm256_mul_epu32(a, m);                        // lanes 0, 2, 4, 6
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m); // lanes 1, 3, 5, 7
    pe = _mm256_srl_epi64(_mm256_add_epi64(pe, half), n);
    po = _mm256_srl_epi64(_mm256_add_epi64(po, half), n);
    pe = _mm256_blendv_epi8(pe, cap, _mm256_cmpgt_epi64(pe, cap));
    po = _mm256_blendv_epi8(po, cap, _mm256_cmpgt_epi64(po, cap));
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
            _mm256_storeu_si256((__m256i *)(yr + o), AIOT_NAME(requant8)(sums, m, half, n, cap, lo, hi));
        }
        for (; o < outputs; o++) {
            const int16_t *wr = w + o * stride;
            uint32_t acc = (uint32_t)bias[o];
            for (long i = 0; i < stride; i++) acc += (uint32_t)((int32_t)xr[i] * (int32_t)wr[i]);
            yr[o] = aiot_requant_scalar((int32_t)acc, rq);
        }
    }
}
