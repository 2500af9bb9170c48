// The scalar reference form of the product in plain C, for any compiler and CPU: the x86-64
// package does not dispatch to it (its baseline is the Swift kernel, tuned for SSE2); tests hold
// the Swift kernel and every vector variant (tools/neon_check.sh: NEON under qemu) against it.
#include "CKernels.h"
#include "requant_scalar.h"

void aiot_linear16_scalar(const int16_t *x, long rows, long stride, const int16_t *w, const int32_t *bias,
                            long outputs, const aiot_requant *rq, int32_t *y) {
    for (long t = 0; t < rows; t++) {
        const int16_t *xr = x + t * stride;
        for (long o = 0; o < outputs; o++) {
            const int16_t *wr = w + o * stride;
            // Wrapping unsigned adds: the exact sum fits int32 (loader's bound), so the wrapped
            // sum equals it whatever the order.
            uint32_t acc = (uint32_t)bias[o];
            for (long i = 0; i < stride; i++) acc += (uint32_t)((int32_t)xr[i] * (int32_t)wr[i]);
            y[t * outputs + o] = aiot_requant_scalar((int32_t)acc, rq);
        }
    }
}

void aiot_add_norm_scalar(const int32_t *v, const int32_t *a, long rows, long d, const aiot_add_norm *p,
                          int32_t *y32, int16_t *y16, long stride16) {
    for (long t = 0; t < rows; t++) {
        for (long c = 0; c < d; c++) {
            long i = t * d + c;
            int32_t r = aiot_requant_scalar64((int64_t)a[i] * p->m1 + (int64_t)v[i] * p->m2, &p->add);
            // b + r g fits int32: the loader's norm accumulator bound.
            int32_t y = aiot_requant_scalar((int32_t)((uint32_t)p->b[c] + (uint32_t)r * (uint32_t)p->g[c]), &p->norm);
            y32[i] = y;
            y16[t * stride16 + c] = (int16_t)y;
        }
    }
}

void aiot_softmax_scalar(int32_t *s, long w, const int32_t *exp, long expNonzero, int64_t range, int16_t *probs, long wStride) {
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
        // e inv < 2^15 * 2^23 (inv <= range 2^15): exact in 64 bits.
        for (long j = 0; j < w; j++) {
            int64_t p = ((int64_t)row[j] * inv + (1LL << 29)) >> 30;
            prow[j] = (int16_t)(p < range ? p : range);
        }
    }
}

int aiot_requant_select32(aiot_requant *rq, int64_t bound) {
    rq->fast32 = 0;
    rq->cap32 = 0;
    if (rq->m < 0 || rq->m > 65535 || rq->n < 0 || rq->n > 40 || bound < 0 || bound > INT32_MAX) return 0;
    if (rq->lo > 0 || rq->hi < 0) return 0;
    if (rq->half != (rq->n > 0 ? (int64_t)1 << (rq->n - 1) : 0)) return 0;
    // C = max(-lo, hi); a* = least a >= 0 with a m + half >= C 2^n (none when m = 0 and C > 0).
    __int128 c = rq->lo < 0 ? -(__int128)rq->lo : 0;
    if ((__int128)rq->hi > c) c = rq->hi;
    __int128 need = (c << rq->n) - rq->half, astar;
    if (need <= 0) astar = 0;
    else if (rq->m == 0) astar = (__int128)bound + 1;
    else astar = (need + rq->m - 1) / rq->m;
    __int128 cap = astar < bound ? astar : bound;
    __int128 top = cap * rq->m + rq->half;
    if (top > 0xFFFFFFFFLL || (top >> rq->n) > INT32_MAX) return 0;
    rq->cap32 = (uint32_t)cap;
    rq->fast32 = 1;
    return 1;
}

int aiot_add_norm_select32(aiot_add_norm *p, long d, int64_t aBound, int64_t vBound) {
    p->fast32 = 0;
    if (aBound < 0 || vBound < 0 || p->m1 < 0 || p->m1 > 65535 || p->m2 < 0 || p->m2 > 65535) return 0;
    if (aBound > INT32_MAX || vBound > INT32_MAX) return 0;
    int64_t sum = aBound * p->m1 + vBound * p->m2;  // < 2^31 2^16 2: no int64 overflow
    if (sum > INT32_MAX || !aiot_requant_select32(&p->add, sum)) return 0;
    int64_t r = p->add.lo < 0 ? -(int64_t)p->add.lo : 0;
    if (p->add.hi > r) r = p->add.hi;
    int64_t nb = 0;
    for (long c = 0; c < d; c++) {
        int64_t g = p->g[c] < 0 ? -(int64_t)p->g[c] : p->g[c], b = p->b[c] < 0 ? -(int64_t)p->b[c] : p->b[c];
        if (b + r * g > nb) nb = b + r * g;
    }
    if (nb > INT32_MAX || !aiot_requant_select32(&p->norm, nb)) return 0;
    p->fast32 = 1;
    return 1;
}

void aiot_pack_pairs(const int16_t *w, long outputs, long stride, int16_t *wp) {
    long jp = (outputs + 7) & ~7L;
    for (long o = 0; o < outputs; o++)
        for (long k = 0; k < stride; k++) wp[((k / 2) * jp + o) * 2 + (k & 1)] = w[o * stride + k];
}
