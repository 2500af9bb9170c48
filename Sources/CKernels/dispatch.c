// Run-time choice of the product's variant: what this build contains and this CPU executes.
#include "CKernels.h"
#include <stddef.h>

void aiot_linear16_scalar(const int16_t *, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *);
void aiot_softmax_scalar(int32_t *, long, const int32_t *, long, int64_t, int16_t *, long);
void aiot_add_norm_scalar(const int32_t *, const int32_t *, long, long, const aiot_add_norm *, int32_t *, int16_t *, long);
#if AIOT_X86_VARIANTS
void aiot_linear16p_avx2(const int16_t *, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *, int16_t *, long, long, int);
void aiot_linear16p_avx512(const int16_t *, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *, int16_t *, long, long, int);
void aiot_linear16p_wide_avx2(const int32_t *, long, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *, int16_t *, long, long, int);
void aiot_linear16p_wide_avx512(const int32_t *, long, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *, int16_t *, long, long, int);
void aiot_softmax_avx2(int32_t *, long, const int32_t *, long, int64_t, int16_t *, long);
void aiot_softmax_avx512(int32_t *, long, const int32_t *, long, int64_t, int16_t *, long);
void aiot_add_norm_avx2(const int32_t *, const int32_t *, long, long, const aiot_add_norm *, int32_t *, int16_t *, long);
void aiot_add_norm_avx512(const int32_t *, const int32_t *, long, long, const aiot_add_norm *, int32_t *, int16_t *, long);
void aiot_linear16_avx2(const int16_t *, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *);
void aiot_linear16_avx512(const int16_t *, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *);
#endif
#if defined(__aarch64__)
void aiot_linear16_neon(const int16_t *, long, long, const int16_t *, const int32_t *, long, const aiot_requant *, int32_t *);
void aiot_softmax_neon(int32_t *, long, const int32_t *, long, int64_t, int16_t *, long);
void aiot_add_norm_neon(const int32_t *, const int32_t *, long, long, const aiot_add_norm *, int32_t *, int16_t *, long);
#endif

int aiot_kernel_supported(int variant) {
    switch (variant) {
    case AIOT_KERNEL_SCALAR:
        return 1;
#if AIOT_X86_VARIANTS
    case AIOT_KERNEL_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
    case AIOT_KERNEL_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    case AIOT_KERNEL_NEON:
        return 1;  // Advanced SIMD is part of every ARMv8-A CPU
#endif
    default:
        return 0;
    }
}

aiot_linear16_fn aiot_kernel_linear16(int variant) {
    if (!aiot_kernel_supported(variant)) return NULL;
    switch (variant) {
    case AIOT_KERNEL_SCALAR: return aiot_linear16_scalar;
#if AIOT_X86_VARIANTS
    case AIOT_KERNEL_AVX2: return aiot_linear16_avx2;
    case AIOT_KERNEL_AVX512: return aiot_linear16_avx512;
#endif
#if defined(__aarch64__)
    case AIOT_KERNEL_NEON: return aiot_linear16_neon;
#endif
    default: return NULL;
    }
}

aiot_add_norm_fn aiot_kernel_add_norm(int variant) {
    if (!aiot_kernel_supported(variant)) return NULL;
    switch (variant) {
    case AIOT_KERNEL_SCALAR: return aiot_add_norm_scalar;
#if AIOT_X86_VARIANTS
    case AIOT_KERNEL_AVX2: return aiot_add_norm_avx2;
    case AIOT_KERNEL_AVX512: return aiot_add_norm_avx512;
#endif
#if defined(__aarch64__)
    case AIOT_KERNEL_NEON: return aiot_add_norm_neon;
#endif
    default: return NULL;
    }
}

aiot_softmax_fn aiot_kernel_softmax(int variant) {
    if (!aiot_kernel_supported(variant)) return NULL;
    switch (variant) {
    case AIOT_KERNEL_SCALAR: return aiot_softmax_scalar;
#if AIOT_X86_VARIANTS
    case AIOT_KERNEL_AVX2: return aiot_softmax_avx2;
    case AIOT_KERNEL_AVX512: return aiot_softmax_avx512;
#endif
#if defined(__aarch64__)
    case AIOT_KERNEL_NEON: return aiot_softmax_neon;
#endif
    default: return NULL;
    }
}

aiot_linear16p_fn aiot_kernel_linear16p(int variant) {
    if (!aiot_kernel_supported(variant)) return NULL;
    switch (variant) {
#if AIOT_X86_VARIANTS
    case AIOT_KERNEL_AVX2: return aiot_linear16p_avx2;
    case AIOT_KERNEL_AVX512: return aiot_linear16p_avx512;
#endif
    default: return NULL;
    }
}

aiot_linear16p_wide_fn aiot_kernel_linear16p_wide(int variant) {
    if (!aiot_kernel_supported(variant)) return NULL;
    switch (variant) {
#if AIOT_X86_VARIANTS
    case AIOT_KERNEL_AVX2: return aiot_linear16p_wide_avx2;
    case AIOT_KERNEL_AVX512: return aiot_linear16p_wide_avx512;
#endif
    default: return NULL;
    }
}
