#ifndef AIOT_REQUANT_SCALAR_H
#define AIOT_REQUANT_SCALAR_H
#include "CKernels.h"

/// (P2)+(P3) on one exact product `v` (|v| < 2^47), exactly as docs/arithmetic.md defines it: RSHR on the magnitude,
/// the sign put back, then the clamp. |acc| <= 2^31 - 1, m < 2^16, so |acc| m < 2^47.
static inline int32_t aiot_requant_scalar64(int64_t v, const aiot_requant *rq) {
    int64_t a = v < 0 ? -v : v;
    int64_t r = (a + rq->half) >> rq->n;
    if (v < 0) r = -r;
    if (r < rq->lo) r = rq->lo;
    if (r > rq->hi) r = rq->hi;
    return (int32_t)r;
}

/// The 32-bit form of (P3) that `aiot_requant_select32` proves (valid only when it set `fast32`):
/// unsigned 32-bit lanes, |acc| capped at `cap32`. The vector variants compute exactly this.
static inline int32_t aiot_requant_scalar32(int32_t acc, const aiot_requant *rq) {
    uint32_t a = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
    if (a > rq->cap32) a = rq->cap32;
    uint32_t p = a * (uint32_t)rq->m + (uint32_t)rq->half;
    p = rq->n < 32 ? p >> rq->n : 0;
    int32_t r = acc < 0 ? -(int32_t)p : (acc > 0 ? (int32_t)p : 0);
    if (r < rq->lo) r = rq->lo;
    if (r > rq->hi) r = rq->hi;
    return r;
}

static inline int32_t aiot_requant_scalar(int32_t acc, const aiot_requant *rq) {
    return aiot_requant_scalar64((int64_t)acc * rq->m, rq);
}
#endif
