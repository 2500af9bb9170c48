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

static inline int32_t aiot_requant_scalar(int32_t acc, const aiot_requant *rq) {
    return aiot_requant_scalar64((int64_t)acc * rq->m, rq);
}
#endif
