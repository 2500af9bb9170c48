// The x86-64 vector variants of the product, each compiled for its instruction set by a target
// attribute on its functions only, so the package still runs on a baseline CPU; which one runs is
// decided at run time by cpuid (dispatch.c).
#include "CKernels.h"
#if AIOT_X86_VARIANTS
#include <immintrin.h>
#include "requant_scalar.h"
#include "packed_mode.h"

#define AIOT_MADD_AVX2(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#define AIOT_MADD_VNNI(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define AIOT_FN aiot_linear16_avx2
#define AIOT_ADD_NORM_FN aiot_add_norm_avx2
#define AIOT_SOFTMAX_FN aiot_softmax_avx2
#define AIOT_PACKED_FN aiot_linear16p_avx2
#define AIOT_WIDE_FN aiot_linear16p_wide_avx2
#define AIOT_NAME(s) avx2_##s
#define AIOT_MADD AIOT_MADD_AVX2
#include "linear16_x86_body.h"
#undef AIOT_FN
#undef AIOT_ADD_NORM_FN
#undef AIOT_SOFTMAX_FN
#undef AIOT_PACKED_FN
#undef AIOT_WIDE_FN
#undef AIOT_NAME
#undef AIOT_MADD
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#define AIOT_FN aiot_linear16_avx512  // the rest of this variant: linear16_avx512.c
#define AIOT_NAME(s) avx512_##s
#define AIOT_MADD AIOT_MADD_VNNI
#include "linear16_x86_body.h"
#undef AIOT_FN
#undef AIOT_NAME
#undef AIOT_MADD
#pragma clang attribute pop
#endif
