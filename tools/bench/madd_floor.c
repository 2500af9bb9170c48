/* The multiply-add floor of the AVX-512 engine on this CPU: how many 512-bit `vpdpwssd` (16 lanes,
 * two 16-bit products each, memory broadcast operand as the packed product uses it) retire per ns
 * with eight independent accumulators, and the clock (four dependent adds per iteration retire one
 * per cycle). Instructions per window / this rate = the floor of the product's multiply-adds
 * (docs/performance.md, "512-bit AVX-512 kernels", stop 27).
 *   clang -O2 -o /tmp/madd_floor tools/bench/madd_floor.c && /tmp/madd_floor   (x86-64, AVX-512 VNNI) */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double vnni_per_ns(long n) {
    __m512i a0 = _mm512_set1_epi32(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const __m512i w = _mm512_set1_epi32(3);
    static int x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    double t0 = cpu_seconds();
    for (long i = 0; i < n; i++) {
        __asm__ volatile(
            "vpdpwssd (%[p])%{1to16%}, %[w], %[a0]\n\t"
            "vpdpwssd 4(%[p])%{1to16%}, %[w], %[a1]\n\t"
            "vpdpwssd 8(%[p])%{1to16%}, %[w], %[a2]\n\t"
            "vpdpwssd 12(%[p])%{1to16%}, %[w], %[a3]\n\t"
            "vpdpwssd 16(%[p])%{1to16%}, %[w], %[a4]\n\t"
            "vpdpwssd 20(%[p])%{1to16%}, %[w], %[a5]\n\t"
            "vpdpwssd 24(%[p])%{1to16%}, %[w], %[a6]\n\t"
            "vpdpwssd 28(%[p])%{1to16%}, %[w], %[a7]"
            : [a0] "+v"(a0), [a1] "+v"(a1), [a2] "+v"(a2), [a3] "+v"(a3), [a4] "+v"(a4), [a5] "+v"(a5), [a6] "+v"(a6), [a7] "+v"(a7)
            : [w] "v"(w), [p] "r"(x));
    }
    double s = cpu_seconds() - t0;
    __m512i t = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                 _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    if (_mm512_reduce_add_epi32(t) == 42) printf(" ");  // keeps the accumulators live
    return 8.0 * n / s / 1e9;
}

int main(void) {
    if (!__builtin_cpu_supports("avx512vnni")) { fprintf(stderr, "madd_floor: this CPU has no AVX-512 VNNI\n"); return 2; }
    const long n = 200000000;
    double rate = vnni_per_ns(n);
    long v = 0;
    double t0 = cpu_seconds();
    for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(v));
    double ghz = 4.0 * n / (cpu_seconds() - t0) / 1e9;
    printf("zmm vpdpwssd: %.2f per ns; clock about %.2f GHz (%.2f per cycle)\n", rate, ghz, rate / ghz);
    return v == 0;
}
