// Holds one C kernel variant (Sources/CKernels) to the scalar reference on random operands at the
// widths the loader admits (docs/arithmetic.md §6): the product with requantization, the residual
// and norm step, the softmax. Used by tools/neon_check.sh (the NEON variant under qemu-user) and
// runnable natively for the x86 variants. The Swift tests hold the scalar reference to the Swift
// kernel and every variant this CPU runs to the committed vectors.
//   kernel_check VARIANT TRIALS [SEED]     VARIANT: 1 avx2, 2 avx512, 3 neon
// Prints the seed and ends with "N passed, M failed"; exit 1 on any mismatch, 2 if unsupported.
#include "CKernels.h"
#include "requant_scalar.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state;
static unsigned long long next(void) {  // SplitMix64
    unsigned long long z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static long r(long lo, long hi) { return lo + (long)(next() % (unsigned long long)(hi - lo + 1)); }

static aiot_requant random_requant(int floor_relu, int max_bits) {
    aiot_requant q;
    q.m = r(0, 65535);
    q.n = (int32_t)r(0, 40);
    q.half = q.n ? 1LL << (q.n - 1) : 0;
    int b = (int)r(4, max_bits);
    long lo = -(1L << (b - 1)), hi = (1L << (b - 1)) - 1, z = r(lo, hi);
    q.lo = (int32_t)(lo - z);
    q.hi = (int32_t)(hi - z);
    if (floor_relu && q.lo < 0) q.lo = 0;
    q.fast32 = 0;  // the 64-bit form; aiot_requant_select32 may switch a copy to the 32-bit one
    q.cap32 = 0;
    return q;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: kernel_check VARIANT TRIALS [SEED]\n"); return 2; }
    int variant = atoi(argv[1]);
    long trials = atol(argv[2]);
    state = argc > 3 ? strtoull(argv[3], 0, 10) : 20261206ULL;
    printf("kernel_check: variant %d, seed %llu\n", variant, state);
    aiot_linear16_fn lin = aiot_kernel_linear16(variant), lin_ref = aiot_kernel_linear16(AIOT_KERNEL_SCALAR);
    aiot_add_norm_fn an = aiot_kernel_add_norm(variant), an_ref = aiot_kernel_add_norm(AIOT_KERNEL_SCALAR);
    aiot_softmax_fn sm = aiot_kernel_softmax(variant), sm_ref = aiot_kernel_softmax(AIOT_KERNEL_SCALAR);
    if (!lin || !an || !sm) { printf("variant %d not supported here\n0 passed, 1 failed\n", variant); return 2; }
    static int16_t x[40 * 80], w[80 * 80], p1[256 * 256], p2[256 * 256], y16a[40 * 72], y16b[40 * 72];
    static int32_t b[80], y1[40 * 80], y2[40 * 80], g[80], nb[80], e[256 + 32], s1[256 * 256], s2[256 * 256];
    long passed = 0, failed = 0, selected32 = 0;
    for (long tr = 0; tr < trials; tr++) {
        // (E1): random widths; every fourth trial all operands at +-max (the largest sums).
        long rows = r(1, 40), k = r(1, 80), stride = (k + 7) & ~7L, outs = r(1, 80);
        int xb = (int)r(4, 15), wb = (int)r(4, 8), extreme = tr % 4 == 0;
        long xm = (1L << xb) - 1, wm = (1L << wb) - 1;  // centered magnitudes
        long bmax = 1L << (xb + wb + 1);
        if (k * xm * wm + bmax > 2147483647L) { k = (2147483647L - bmax) / (xm * wm); if (k < 1) continue; stride = (k + 7) & ~7L; }
        memset(x, 0, sizeof x); memset(w, 0, sizeof w);
        for (long t = 0; t < rows; t++) for (long i = 0; i < k; i++) x[t * stride + i] = (int16_t)(extreme ? (r(0, 1) ? xm : -xm) : r(-xm, xm));
        for (long o = 0; o < outs; o++) for (long i = 0; i < k; i++) w[o * stride + i] = (int16_t)(extreme ? (r(0, 1) ? wm : -wm) : r(-wm, wm));
        for (long o = 0; o < outs; o++) b[o] = (int32_t)r(-bmax, bmax);
        aiot_requant q = random_requant((int)r(0, 1), 16);
        lin_ref(x, rows, stride, w, b, outs, &q, y1);
        lin(x, rows, stride, w, b, outs, &q, y2);
        int ok = memcmp(y1, y2, sizeof(int32_t) * rows * outs) == 0;
        aiot_linear16p_fn linp = aiot_kernel_linear16p(variant);
        if (linp) {  // the packed-weight form, where the variant has one
            static int16_t wp[80 * 80];
            memset(wp, 0, sizeof wp);
            aiot_pack_pairs(w, outs, stride, wp);
            memset(y2, 0, sizeof y2);
            linp(x, rows, stride, wp, b, outs, &q, y2, NULL, 0, 1, AIOT_Y16_PLAIN);
            ok = ok && memcmp(y1, y2, sizeof(int32_t) * rows * outs) == 0;
            // The 32-bit requantization where aiot_requant_select32 proves it for this trial's
            // bound, against the 64-bit scalar reference (y1).
            long bound = k * xm * wm + bmax;
            aiot_requant qf = q;
            if (aiot_requant_select32(&qf, bound)) {
                selected32++;
                memset(y2, 0, sizeof y2);
                linp(x, rows, stride, wp, b, outs, &qf, y2, NULL, 0, 1, AIOT_Y16_PLAIN);
                ok = ok && memcmp(y1, y2, sizeof(int32_t) * rows * outs) == 0;
            }
            // The int16 output form, on outputs that fit 16 bits (internal activations); half the
            // trials with the 32-bit form where it is proved.
            aiot_requant q8 = random_requant((int)r(0, 1), 8);
            if (r(0, 1) && aiot_requant_select32(&q8, bound)) selected32++;
            static int16_t z16[40 * 88];
            long zs = outs + r(0, 8);
            memset(z16, 0, sizeof z16);
            lin_ref(x, rows, stride, w, b, outs, &q8, y1);
            linp(x, rows, stride, wp, b, outs, &q8, y2, z16, zs, 1, AIOT_Y16_PLAIN);
            for (long t = 0; t < rows; t++)
                for (long o = 0; o < outs; o++) ok = ok && z16[t * zs + o] == y1[t * outs + o];
            // Transposed: y16[o * cs + t].
            long cs = rows + r(0, 8);
            static int16_t zt[88 * 48];
            memset(zt, 0, sizeof zt);
            linp(x, rows, stride, wp, b, outs, &q8, y2, zt, 1, cs, AIOT_Y16_PLAIN);
            for (long t = 0; t < rows; t++)
                for (long o = 0; o < outs; o++) ok = ok && zt[o * cs + t] == y1[t * outs + o];
            // The pair layouts: the result (COL_PAIRS) or its transpose (ROW_PAIRS) as
            // aiot_pack_pairs lays out weights, so the next product reads it as packed weights.
            static int16_t ref[88 * 48], mat[88 * 48], got[88 * 48];
            long jr = (rows + 7) & ~7L, jo = (outs + 7) & ~7L, so = (outs + 1) & ~1L, sr = (rows + 1) & ~1L;
            memset(mat, 0, sizeof mat); memset(ref, 0, sizeof ref); memset(got, 0, sizeof got);
            for (long t = 0; t < rows; t++) for (long o = 0; o < outs; o++) mat[t * so + o] = (int16_t)y1[t * outs + o];
            aiot_pack_pairs(mat, rows, so, ref);
            linp(x, rows, stride, wp, b, outs, &q8, y2, got, 2, 2 * jr, AIOT_Y16_COL_PAIRS);
            ok = ok && memcmp(ref, got, sizeof(int16_t) * (size_t)(so * jr)) == 0;
            memset(mat, 0, sizeof mat); memset(ref, 0, sizeof ref); memset(got, 0, sizeof got);
            for (long t = 0; t < rows; t++) for (long o = 0; o < outs; o++) mat[o * sr + t] = (int16_t)y1[t * outs + o];
            aiot_pack_pairs(mat, outs, sr, ref);
            linp(x, rows, stride, wp, b, outs, &q8, y2, got, 2 * jo, 2, AIOT_Y16_ROW_PAIRS);
            ok = ok && memcmp(ref, got, sizeof(int16_t) * (size_t)(sr * jo)) == 0;
        }
        // The wide-input product (where the variant has one): centered inputs of up to 16 bits
        // (int32), against the exact sum requantized by the scalar reference, into int32
        // rows and every int16 layout.
        aiot_linear16p_wide_fn wide = aiot_kernel_linear16p_wide(variant);
        if (wide) {
            static int32_t xw[40 * 80];
            static int16_t wpw[80 * 80], z16w[40 * 88], gotw[88 * 48];
            long kw = r(1, 80), stw = (kw + 7) & ~7L, xwm = (1L << 16) - 1, rw = r(1, 40), ow = r(1, 80);
            long bw = 1L << 20;
            while (kw > 1 && kw * xwm * wm + bw > 2147483647L) kw--;
            stw = (kw + 7) & ~7L;
            memset(w, 0, sizeof w); memset(wpw, 0, sizeof wpw);
            for (long o = 0; o < ow; o++) for (long i = 0; i < kw; i++) w[o * stw + i] = (int16_t)(extreme ? (r(0, 1) ? wm : -wm) : r(-wm, wm));
            for (long t = 0; t < rw; t++) for (long i = 0; i < kw; i++) xw[t * kw + i] = (int32_t)(extreme ? (r(0, 1) ? xwm : -xwm) : r(-xwm, xwm));
            for (long o = 0; o < ow; o++) b[o] = (int32_t)r(-bw, bw);
            aiot_pack_pairs(w, ow, stw, wpw);
            long bound = kw * xwm * wm + bw;
            for (int form = 0; form < 2; form++) {
                aiot_requant qw = random_requant((int)r(0, 1), form ? 8 : 16);
                if (r(0, 1) && aiot_requant_select32(&qw, bound)) selected32++;
                for (long t = 0; t < rw; t++)
                    for (long o = 0; o < ow; o++) {
                        int64_t acc = b[o];
                        for (long i = 0; i < kw; i++) acc += (int64_t)xw[t * kw + i] * w[o * stw + i];
                        y1[t * ow + o] = aiot_requant_scalar((int32_t)acc, &qw);
                    }
                if (form == 0) {
                    memset(y2, 0, sizeof y2);
                    wide(xw, rw, kw, stw, wpw, b, ow, &qw, y2, NULL, 0, 1, AIOT_Y16_PLAIN);
                    ok = ok && memcmp(y1, y2, sizeof(int32_t) * rw * ow) == 0;
                    continue;
                }
                // int16 outputs (8-bit activations): plain rows, then both pair layouts.
                long zs = ow + r(0, 8), jr = (rw + 7) & ~7L, jo = (ow + 7) & ~7L;
                memset(z16w, 0, sizeof z16w);
                wide(xw, rw, kw, stw, wpw, b, ow, &qw, y2, z16w, zs, 1, AIOT_Y16_PLAIN);
                for (long t = 0; t < rw; t++) for (long o = 0; o < ow; o++) ok = ok && z16w[t * zs + o] == y1[t * ow + o];
                memset(gotw, 0, sizeof gotw);
                wide(xw, rw, kw, stw, wpw, b, ow, &qw, y2, gotw, 2, 2 * jr, AIOT_Y16_COL_PAIRS);
                for (long t = 0; t < rw; t++) for (long o = 0; o < ow; o++) ok = ok && gotw[t * 2 + (o >> 1) * 2 * jr + (o & 1)] == y1[t * ow + o];
                memset(gotw, 0, sizeof gotw);
                wide(xw, rw, kw, stw, wpw, b, ow, &qw, y2, gotw, 2 * jo, 2, AIOT_Y16_ROW_PAIRS);
                for (long t = 0; t < rw; t++) for (long o = 0; o < ow; o++) ok = ok && gotw[(t >> 1) * 2 * jo + (t & 1) + o * 2] == y1[t * ow + o];
            }
        }
        // (E2)+(E3) on the product's outputs (as centered activations of up to 16 bits).
        long d = r(1, 72), rows2 = r(1, 40), st16 = (d + 7) & ~7L;
        aiot_add_norm p;
        p.m1 = r(0, 65535); p.m2 = r(0, 65535);
        p.add = random_requant(0, 16); p.add.m = 1;
        p.norm = random_requant(0, 8);  // norm outputs are internal activations (<= 8 bits): their 16-bit copy fits
        int gb = (int)r(4, 8), ab = (int)r(4, 8);
        for (long c = 0; c < d; c++) { g[c] = (int32_t)r(-((1L << gb) - 1), (1L << gb) - 1); nb[c] = (int32_t)r(-(1L << (gb + ab + 1)) + 1, (1L << (gb + ab + 1)) - 1); }
        p.g = g; p.b = nb;
        static int32_t av[40 * 72], vv[40 * 72], o1[40 * 72], o2[40 * 72];
        long am = (1L << 16) - 1;
        for (long i = 0; i < rows2 * d; i++) { av[i] = (int32_t)r(-am, am); vv[i] = (int32_t)r(-am, am); }
        // The norm's input is the add's output, clamped to the add's own range, so clamp the add
        // to the norm weight's admissible input width as the loader's bound implies.
        long addm = (1L << ab) - 1;
        if (p.add.lo < -addm) p.add.lo = (int32_t)-addm;
        if (p.add.hi > addm) p.add.hi = (int32_t)addm;
        memset(y16a, 0, sizeof y16a); memset(y16b, 0, sizeof y16b);
        an_ref(vv, av, rows2, d, &p, o1, y16a, st16);
        an(vv, av, rows2, d, &p, o2, y16b, st16);
        ok = ok && memcmp(o1, o2, sizeof(int32_t) * rows2 * d) == 0 && memcmp(y16a, y16b, sizeof y16a) == 0;
        // The 32-bit form where aiot_add_norm_select32 proves it, on operands within the ranges it
        // was given (4 to 9 bits: internal activations are centered 8-bit values, at most 256).
        {
            long am2 = (1L << r(3, 9)) - 1, vm2 = (1L << r(3, 9)) - 1;
            aiot_add_norm pf = p;
            if (aiot_add_norm_select32(&pf, d, am2, vm2)) {
                selected32++;
                for (long i = 0; i < rows2 * d; i++) {
                    long e = r(0, 7);  // an eighth of the operands at their extremes
                    av[i] = (int32_t)(e == 0 ? am2 : e == 1 ? -am2 : r(-am2, am2));
                    vv[i] = (int32_t)(e == 2 ? vm2 : e == 3 ? -vm2 : r(-vm2, vm2));
                }
                memset(y16a, 0, sizeof y16a); memset(y16b, 0, sizeof y16b);
                an_ref(vv, av, rows2, d, &p, o1, y16a, st16);
                an(vv, av, rows2, d, &pf, o2, y16b, st16);
                ok = ok && memcmp(o1, o2, sizeof(int32_t) * rows2 * d) == 0 && memcmp(y16a, y16b, sizeof y16a) == 0;
            }
        }
        // (E6): scores in a b_S-bit range, a non-increasing table with EXP[0] = 2^15 that falls
        // fast (a few nonzero entries), slowly (nonzero to its end) or to a zero tail, zero-padded
        // past the next 32 entries as the softmax's contract asks; the exp values written back
        // into the scores are compared too.
        long wn = r(0, 7) == 0 ? r(65, 256) : r(1, 64), ws = (wn + 7) & ~7L;  // up to W = 256: row sums up to 2^23
        int sb = (int)r(4, 8), pb = (int)r(4, 8);
        long ne = 1L << sb, decay = r(0, 3) == 0 ? 1 : r(2, 64), nonzero = 0;
        memset(e, 0, sizeof e);
        e[0] = 32768;
        for (long i = 1; i < ne; i++) e[i] = (int32_t)(e[i - 1] - r(0, e[i - 1] / decay));
        if (r(0, 3) == 0) for (long i = r(1, ne); i < ne; i++) e[i] = 0;
        for (long i = 0; i < ne; i++) if (e[i]) nonzero = i + 1;
        for (long i = 0; i < wn * wn; i++) s1[i] = s2[i] = (int32_t)r(0, ne - 1) - (int32_t)(ne / 2);
        memset(p1, 0, sizeof p1); memset(p2, 0, sizeof p2);
        sm_ref(s1, wn, e, nonzero, (1LL << pb) - 1, p1, ws);
        sm(s2, wn, e, nonzero, (1LL << pb) - 1, p2, ws);
        ok = ok && memcmp(p1, p2, sizeof p1) == 0 && memcmp(s1, s2, sizeof(int32_t) * (size_t)(wn * wn)) == 0;
        if (ok) passed++;
        else if (failed++ < 5) printf("mismatch in trial %ld (rows %ld K %ld J %ld)\n", tr, rows, k, outs);
    }
    printf("%ld products and residual+norm steps had the 32-bit form selected (run where the variant has it)\n", selected32);
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed != 0;
}
