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
