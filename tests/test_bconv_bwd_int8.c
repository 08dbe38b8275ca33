/* The integer backward of the binary conv on 8-bit error codes (core/bconv_bwd_int8.h).
 *
 *  1. bconv_bwd_quant_codes: dequantizing its codes as fl(fl(code * s) + zp)
 *     gives grad_quant's output BITWISE (same zp, s), for 8, 4, 2 and 7.5 bits,
 *     stochastic (noise) and deterministic rounding, in place (g == dout) or
 *     not, with exact zeros (the sign of a zero minimum); bits 0 and 9 and a
 *     NaN are refused, leaving g = dout * alpha bitwise for the fallback.
 *  2. Every table (C, AVX2, AVX-VNNI, AVX-512 VNNI, the ones this CPU has)
 *     against the direct-loop references, bitwise, dgrad both on its direct
 *     (no col2im) path where it applies and on the GEMM + col2im path, on odd shapes: C and O not
 *     multiples of 4/16/32/64, K 1 and 3, stride 1 and 2, pad 0 and 1, 1x1,
 *     tiny and empty outputs, codes at the 255 extreme with all-(+1)/(-1)
 *     operands (the AVX2 int16 partial sums at their bound), reductions longer
 *     than one AVX2 chunk (O > 256) and one wgrad K chunk (N*OH*OW > 4096).
 *  3. Thread-count invariance: 1 and 2 threads give the same bits (every table).
 *  4. The reference against the fp32 path the engine runs (conv2d_backward and
 *     conv2d_backward_ref of the dequantized dY): they differ only by fp32
 *     rounding; |int8 - fp32| <= tol * M per output, M = sum over the terms of
 *     (|dY| + |code*s| + |zp|) * |B| (a bound on every rounding involved).
 *  5. bconv_bwd_int8_products = quant_codes + dgrad + wgrad; the sign helpers. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bconv_bwd_int8.h"
#include "quant.h"
#include "testutil.h"

static void fill_tern(int8_t *x, size_t n, int zeros, Rng *r) {
    for (size_t i = 0; i < n; i++) {
        uint64_t k = rng_below(r, zeros ? 3 : 2);
        x[i] = k == 0 ? -1 : k == 1 ? 1 : 0;
    }
}

static int same_bits(const real *a, const real *b, size_t n) { return n == 0 || memcmp(a, b, n * sizeof(real)) == 0; }

static real *ralloc(size_t n) { return tu_alloc(n + 1); }

/* ------------------------------------------------------------ 1. quantizer */
static const BconvBwdInt8Fns *qtab; /* the table whose quant_codes runs */
static void check_quant(int N, int O, int OHW, double bits, int use_noise, int inplace, Rng *r) {
    const size_t n = (size_t)N * O * OHW;
    real *dout = ralloc(n), *alpha = ralloc(O), *noise = ralloc(n), *g = ralloc(n), *ref = ralloc(n), *deq = ralloc(n);
    uint8_t *codes = malloc(n + 1);
    tu_fill_uniform(dout, n, -0.02, 0.03, r);
    for (size_t i = 0; i < n; i += 17) dout[i] = 0; /* exact zeros, as dead ReLU paths give */
    tu_fill_uniform(alpha, O, 0.0, 1.0, r);
    quant_fill_noise(noise, n, 99, 3, (uint64_t)n);
    /* the engine: dy = dout * alpha, grad_quant in place */
    for (size_t i = 0; i < n; i++) ref[i] = dout[i] * alpha[(i / OHW) % O];
    real *gexp = ralloc(n);
    memcpy(gexp, ref, n * sizeof(real));
    grad_quant(ref, ref, n, bits, use_noise ? noise : NULL);
    real zp, s;
    real *gout = g;
    if (inplace) {
        memcpy(g, dout, n * sizeof(real));
        gout = g;
    }
    int rc = qtab->quant_codes(codes, &zp, &s, gout, inplace ? g : dout, alpha, N, O, OHW, bits,
                               use_noise ? noise : NULL);
    CHECK(rc == 0, "quant_codes refused bits %g", bits);
    real zr, R;
    quant_minmax_params(&zr, &R, gexp, n);
    const real sr = quant_scale(R, bits);
    CHECK(zp == zr && memcmp(&s, &sr, sizeof s) == 0, "zp/s differ from grad_quant's");
    const real qmax = quant_qmax(bits);
    int inrange = 1;
    for (size_t i = 0; i < n; i++) {
        real t = (real)codes[i] * s;
        deq[i] = t + zp;
        if ((real)codes[i] > qmax) inrange = 0;
    }
    CHECK(inrange, "code above qmax  bits %g", bits);
    CHECK(same_bits(deq, ref, n), "%s: dequantized codes != grad_quant  N%d O%d OHW%d bits %g noise %d inplace %d",
          qtab->name, N, O, OHW, bits, use_noise, inplace);
    free(dout); free(alpha); free(noise); free(g); free(ref); free(deq); free(codes); free(gexp);
}

/* a zero minimum, -0 (from -0 * alpha) first or +0 first, in different blocks: its sign
 * may differ from quant_minmax_params' (lane order), the codes and outputs may not */
static void check_quant_zero_min(Rng *r) {
    const int N = 4, O = 8, OHW = 3000; /* rows of 3000: blocks of 5 rows */
    const size_t n = (size_t)N * O * OHW;
    real *dout = ralloc(n), *alpha = ralloc(O), *g = ralloc(n), *ref = ralloc(n);
    uint8_t *codes = malloc(n);
    for (int first_neg = 0; first_neg <= 1; first_neg++) {
        tu_fill_uniform(dout, n, 0.001, 1, r);
        tu_fill_uniform(alpha, O, 0.1, 1, r);
        dout[20000] = first_neg ? (real)-0.0 : (real)0.0; /* in the second block */
        dout[50000] = first_neg ? (real)0.0 : (real)-0.0;
        for (size_t i = 0; i < n; i++) ref[i] = dout[i] * alpha[(i / OHW) % O];
        real zr, R, zp, s;
        quant_minmax_params(&zr, &R, ref, n);
        CHECK(zr == 0, "test setup: zero minimum");
        CHECK(qtab->quant_codes(codes, &zp, &s, g, dout, alpha, N, O, OHW, 8.0, NULL) == 0, "zero min refused");
        CHECK(zp == 0, "%s: zero minimum differs (first -0: %d)", qtab->name, first_neg);
        /* the integer outputs do not see the sign of a zero zp either */
        const real zpos = 0, zneg = -zpos;
        CHECK(memcmp(&(real){bconv_bwd_int8_out(s, zpos, 0, 3)}, &(real){bconv_bwd_int8_out(s, zneg, 0, 3)}, sizeof(real)) == 0 &&
                  memcmp(&(real){bconv_bwd_int8_out(s, zpos, 0, -3)}, &(real){bconv_bwd_int8_out(s, zneg, 0, -3)}, sizeof(real)) == 0,
              "output depends on the sign of a zero zp");
        grad_quant(ref, ref, n, 8.0, NULL);
        int ok = 1;
        for (size_t i = 0; i < n; i++) {
            real t = (real)codes[i] * s;
            t = t + zp;
            ok &= memcmp(&t, &ref[i], sizeof t) == 0;
        }
        CHECK(ok, "%s: zero-minimum dequantized codes != grad_quant", qtab->name);
    }
    free(dout); free(alpha); free(g); free(ref); free(codes);
}

static void check_quant_refusals(Rng *r) {
    const int N = 1, O = 3, OHW = 5;
    const size_t n = (size_t)N * O * OHW;
    real *dout = ralloc(n), *alpha = ralloc(O), *g = ralloc(n);
    uint8_t codes[16];
    tu_fill_uniform(dout, n, -1, 1, r);
    tu_fill_uniform(alpha, O, 0.1, 1, r);
    real zp, s;
    CHECK(qtab->quant_codes(codes, &zp, &s, g, dout, alpha, N, O, OHW, 0.0, NULL) != 0, "bits 0 accepted");
    int gok = 1; /* refused: g = dout * alpha for the fp32 fallback */
    for (size_t i = 0; i < n; i++) {
        const real e = dout[i] * alpha[(i / OHW) % O];
        gok &= memcmp(&g[i], &e, sizeof(real)) == 0;
    }
    CHECK(gok, "refused quant_codes: g != dout * alpha");
    CHECK(qtab->quant_codes(codes, &zp, &s, g, dout, alpha, N, O, OHW, 9.0, NULL) != 0, "bits 9 accepted");
    CHECK(qtab->quant_codes(codes, &zp, &s, g, dout, alpha, N, O, OHW, 8.0, NULL) == 0, "bits 8 refused");
    dout[7] = (real)NAN;
    CHECK(qtab->quant_codes(codes, &zp, &s, g, dout, alpha, N, O, OHW, 8.0, NULL) != 0, "NaN accepted");
    /* a NaN inside a SIMD block, not first (min/max skip it: only the codes pass sees it) */
    const size_t nb = 4 * 16 * 9;
    real *db = ralloc(nb), *gb = ralloc(nb), *ab = ralloc(16);
    uint8_t *cb = malloc(nb);
    tu_fill_uniform(db, nb, -1, 1, r);
    tu_fill_uniform(ab, 16, 0.1, 1, r);
    db[37] = (real)NAN;
    CHECK(qtab->quant_codes(cb, &zp, &s, gb, db, ab, 4, 16, 9, 8.0, NULL) != 0, "inner NaN accepted");
    free(db); free(gb); free(ab); free(cb);
    free(dout); free(alpha); free(g);
}

/* ------------------------------------------------------------ 2-4. kernels */
#define MAXT 4
static BconvBwdInt8Fns tabs[MAXT];
static int ntabs = 0;
static int tab_fails[MAXT];
static long n_cases = 0;

/* fill: 0 random codes and ternary, 1 codes 255 and operands +1, 2 codes 255 and operands -1 */
static void check_case(int N, int C, int H, int W, int O, int K, int st, int p, int fill, Rng *r, int vs_fp32) {
    ConvDims d = conv_dims(N, C, H, W, O, K, st, p);
    const size_t nin = (size_t)N * C * H * W, nw = (size_t)O * C * K * K, nout = (size_t)N * O * d.OH * d.OW;
    uint8_t *codes = malloc(nout + 1);
    int8_t *bw = malloc(nw + 1), *ba = malloc(nin + 1);
    if (fill == 0) {
        for (size_t i = 0; i < nout; i++) codes[i] = (uint8_t)rng_below(r, 256);
        fill_tern(bw, nw, 1, r);
        fill_tern(ba, nin, 1, r);
    } else {
        memset(codes, 255, nout);
        memset(bw, fill == 1 ? 1 : -1, nw);
        memset(ba, fill == 1 ? 1 : -1, nin);
    }
    real s = (real)(0.001 + 0.01 * rng_uniform(r)), zp = (real)(-0.5 * s * 255 * (0.5 + rng_uniform(r)));
    real *dx_ref = ralloc(nin), *dw_ref = ralloc(nw), *dx = ralloc(nin), *dw = ralloc(nw);
    bconv_bwd_int8_dgrad_ref(dx_ref, codes, bw, zp, s, &d);
    bconv_bwd_int8_wgrad_ref(dw_ref, codes, ba, zp, s, &d);
    for (int t = 0; t < ntabs; t++)
        for (int th = 1; th <= 2; th++) {
            omp_set_num_threads(th);
            for (size_t i = 0; i < nin; i++) dx[i] = (real)12345; /* must be overwritten */
            for (size_t i = 0; i < nw; i++) dw[i] = (real)12345;
            tabs[t].wgrad(dw, codes, ba, zp, s, &d);
            int ok = same_bits(dw, dw_ref, nw);
            for (int direct = 1; direct >= 0; direct--) { /* dgrad's direct path (where it applies) and col2im path */
                for (size_t i = 0; i < nin; i++) dx[i] = (real)12345;
                bconv_bwd_int8_set_dgrad_direct(direct);
                tabs[t].dgrad(dx, codes, bw, zp, s, &d);
                ok &= same_bits(dx, dx_ref, nin);
                CHECK(same_bits(dx, dx_ref, nin), "%s dgrad (direct %d) != ref  N%d C%d %dx%d O%d K%d s%d p%d fill%d threads %d",
                      tabs[t].name, direct, N, C, H, W, O, K, st, p, fill, th);
            }
            bconv_bwd_int8_set_dgrad_direct(1);
            CHECK(same_bits(dw, dw_ref, nw), "%s wgrad != ref  N%d C%d %dx%d O%d K%d s%d p%d fill%d threads %d",
                  tabs[t].name, N, C, H, W, O, K, st, p, fill, th);
            if (!ok) tab_fails[t]++;
        }
    omp_set_num_threads(2);
    n_cases++;

    if (vs_fp32) {
        /* the fp32 path on the dequantized dY, Ba, Bw as reals */
        real *dy = ralloc(nout), *fa = ralloc(nin), *fw = ralloc(nw);
        for (size_t i = 0; i < nout; i++) {
            real t = (real)codes[i] * s;
            dy[i] = t + zp;
        }
        for (size_t i = 0; i < nin; i++) fa[i] = ba[i];
        for (size_t i = 0; i < nw; i++) fw[i] = bw[i];
        real *gx = ralloc(nin), *gw = ralloc(nw), *rx = ralloc(nin), *rw = ralloc(nw);
        real *scratch = ralloc(conv2d_scratch_size(&d));
        conv2d_backward(gx, gw, dy, fa, fw, &d, scratch);
        conv2d_backward_ref(rx, rw, dy, fa, fw, &d);
        /* magnitudes M: the same sums on |dy| + |code*s| + |zp| and |B| (reference loops, double) */
        real *my = ralloc(nout), *ma = ralloc(nin), *mw = ralloc(nw), *Mx = ralloc(nin), *Mw = ralloc(nw);
        for (size_t i = 0; i < nout; i++) my[i] = fabs(dy[i]) + fabs((real)codes[i] * s) + fabs(zp);
        for (size_t i = 0; i < nin; i++) ma[i] = fabs(fa[i]);
        for (size_t i = 0; i < nw; i++) mw[i] = fabs(fw[i]);
        conv2d_backward_ref(Mx, Mw, my, ma, mw, &d);
        double e_fast = 0, e_ref = 0;
        int bad_fast = 0, bad_ref = 0;
        for (size_t i = 0; i < nin; i++) {
            const double m = Mx[i] > 0 ? Mx[i] : 1e-30;
            const double ef = fabs((double)dx_ref[i] - gx[i]) / m, er = fabs((double)dx_ref[i] - rx[i]) / m;
            if (ef > e_fast) e_fast = ef;
            if (er > e_ref) e_ref = er;
        }
        for (size_t i = 0; i < nw; i++) {
            const double m = Mw[i] > 0 ? Mw[i] : 1e-30;
            const double ef = fabs((double)dw_ref[i] - gw[i]) / m, er = fabs((double)dw_ref[i] - rw[i]) / m;
            if (ef > e_fast) e_fast = ef;
            if (er > e_ref) e_ref = er;
        }
        /* the fp32 sgemm sums up to O*K*K or N*OH*OW terms in float: a few
         * units of 2^-24 of M in practice; the double reference rounds dY and
         * the result only */
        bad_fast = e_fast > 1e-5;
        bad_ref = e_ref > 3.0 * 0x1p-24;
        CHECK(!bad_fast, "int8 vs conv2d_backward: max err/M %.3g  N%d C%d %dx%d O%d K%d s%d p%d", e_fast, N, C, H, W,
              O, K, st, p);
        CHECK(!bad_ref, "int8 vs conv2d_backward_ref: max err/M %.3g  N%d C%d %dx%d O%d K%d s%d p%d", e_ref, N, C, H,
              W, O, K, st, p);
        static double worst_fast = 0, worst_ref = 0;
        if (e_fast > worst_fast || e_ref > worst_ref) {
            if (e_fast > worst_fast) worst_fast = e_fast;
            if (e_ref > worst_ref) worst_ref = e_ref;
            printf("  worst err/M so far: vs conv2d_backward %.3g, vs conv2d_backward_ref %.3g (N%d C%d %dx%d O%d K%d s%d p%d)\n",
                   worst_fast, worst_ref, N, C, H, W, O, K, st, p);
        }
        free(dy); free(fa); free(fw); free(gx); free(gw); free(rx); free(rw); free(scratch);
        free(my); free(ma); free(mw); free(Mx); free(Mw);
    }
    free(codes); free(bw); free(ba); free(dx_ref); free(dw_ref); free(dx); free(dw);
}

/* 5. bconv_bwd_int8_products (the engine's entry) = quant_codes + dgrad + wgrad of the
 * best table, bitwise; dba NULL skips dgrad; bits 0 refused; bconv_bwd_i8_from_codes */
static void check_products(Rng *r) {
    ConvDims d = conv_dims(3, 19, 9, 10, 21, 3, 2, 1);
    const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * 9, nout = (size_t)d.N * d.O * d.OH * d.OW;
    real *dout = ralloc(nout), *alpha = ralloc(d.O), *noise = ralloc(nout), *g = ralloc(nout);
    real *dx = ralloc(nin), *dw = ralloc(nw), *ex = ralloc(nin), *ew = ralloc(nw);
    uint8_t *codes = malloc(nout), *codes2 = malloc(nout);
    int8_t *ba = malloc(nin), *bw = malloc(nw);
    tu_fill_uniform(dout, nout, -1e-3, 2e-3, r);
    tu_fill_uniform(alpha, d.O, 0, 1, r);
    quant_fill_noise(noise, nout, 1, 2, 3);
    fill_tern(ba, nin, 1, r);
    fill_tern(bw, nw, 1, r);
    const BconvBwdInt8Fns *f = bconv_bwd_int8_fns();
    real zp, s;
    CHECK(f->quant_codes(codes2, &zp, &s, g, dout, alpha, d.N, d.O, (size_t)d.OH * d.OW, 8.0, noise) == 0, "codes");
    f->dgrad(ex, codes2, bw, zp, s, &d);
    f->wgrad(ew, codes2, ba, zp, s, &d);
    CHECK(bconv_bwd_int8_products(dx, dw, g, codes, dout, alpha, noise, 8.0, ba, bw, &d) == 0, "products refused");
    CHECK(same_bits(dx, ex, nin) && same_bits(dw, ew, nw), "products != quant_codes + dgrad + wgrad");
    for (size_t i = 0; i < nin; i++) dx[i] = 7;
    memset(dw, 0, nw * sizeof(real));
    CHECK(bconv_bwd_int8_products(NULL, dw, g, codes, dout, alpha, noise, 8.0, ba, bw, &d) == 0, "products refused");
    CHECK(same_bits(dw, ew, nw), "products (dba NULL) dw differs");
    CHECK(bconv_bwd_int8_products(dx, dw, g, codes, dout, alpha, noise, 0.0, ba, bw, &d) != 0, "bits 0 accepted");
    int untouched = 1;
    for (size_t i = 0; i < nin; i++) untouched &= dx[i] == 7;
    CHECK(untouched, "refused products wrote dba");
    /* the int32 limit: refused with g = dout * alpha, and fits() on the edge */
    ConvDims big = conv_dims(8421505, 1, 1, 1, 1, 1, 1, 0); /* N*OH*OW = 8421505 > (2^31 - 1)/255 */
    ConvDims edge = conv_dims(8421504, 1, 1, 1, 1, 1, 1, 0);
    CHECK(!bconv_bwd_int8_fits(&big) && bconv_bwd_int8_fits(&edge), "bconv_bwd_int8_fits edge");
    ConvDims wide = conv_dims(1, 1, 1, 1, 8421505, 1, 1, 0); /* O*KH*KW over the limit */
    CHECK(!bconv_bwd_int8_fits(&wide), "bconv_bwd_int8_fits O");
    /* Ba from activation codes through a sign table */
    real sval[256];
    for (int c = 0; c < 256; c++) sval[c] = c < 100 ? (real)-1 : c == 100 ? (real)0 : (real)1;
    int8_t *b8 = malloc(nout);
    bconv_bwd_i8_from_codes(b8, codes, nout, sval);
    int ok = 1;
    for (size_t i = 0; i < nout; i++) ok &= b8[i] == (codes[i] < 100 ? -1 : codes[i] == 100 ? 0 : 1);
    CHECK(ok, "bconv_bwd_i8_from_codes");
    /* sign_i8 against sign_value, both zero conventions, with zeros, NaN and -0 */
    real v[7] = {(real)1.5, (real)-2, (real)0, (real)-0.0, (real)NAN, (real)1e-30, (real)-1e-30};
    int8_t o8[7];
    for (int z = 0; z <= 1; z++) {
        bconv_bwd_sign_i8(o8, v, 7, z);
        ok = 1;
        for (int i = 0; i < 7; i++) ok &= (real)o8[i] == sign_value(v[i], z);
        CHECK(ok, "bconv_bwd_sign_i8 != sign_value (zero_is_plus_one %d)", z);
    }
    free(dout); free(alpha); free(noise); free(g); free(dx); free(dw); free(ex); free(ew);
    free(codes); free(codes2); free(ba); free(bw); free(b8);
}

int main(void) {
    Rng r = rng_stream(4321, RNG_TEST, 0, 0);
    omp_set_num_threads(2);


    /* tables: C, then each SIMD level this CPU has */
    const unsigned fl = bconv_bwd_int8_cpu_flags();
    printf("cpu flags:%s%s%s%s\n", fl & BWD8_CPU_AVX2 ? " avx2" : "", fl & BWD8_CPU_AVXVNNI ? " avx-vnni" : "",
           fl & BWD8_CPU_AVX512VNNI ? " avx512-vnni" : "", fl ? "" : " none (C only)");
    bconv_bwd_int8_init_fns(&tabs[ntabs++], 0);
    const unsigned levels[] = {BWD8_CPU_AVX2, BWD8_CPU_AVX2 | BWD8_CPU_AVXVNNI, ~0u};
    const unsigned need[] = {BWD8_CPU_AVX2, BWD8_CPU_AVXVNNI, BWD8_CPU_AVX512VNNI};
    for (int i = 0; i < 3; i++)
        if (fl & need[i]) bconv_bwd_int8_init_fns(&tabs[ntabs++], levels[i]);
    CHECK(bconv_bwd_int8_simd() == (bconv_bwd_int8_fns()->dgrad != tabs[0].dgrad), "bconv_bwd_int8_simd");
    printf("tables:");
    for (int t = 0; t < ntabs; t++) printf(" %s", tabs[t].name);
    printf("\n");

    /* 1, for every table's codes loop */
    const double bitss[] = {8.0, 4.0, 2.0, 7.5};
    for (int t = 0; t < ntabs; t++) {
        const int before = tu_failures;
        qtab = &tabs[t];
        for (int b = 0; b < 4; b++)
            for (int nz = 0; nz <= 1; nz++)
                for (int ip = 0; ip <= 1; ip++) {
                    check_quant(2, 5, 7, bitss[b], nz, ip, &r); /* 70: scalar tails */
                    check_quant(3, 7, 333, bitss[b], nz, ip, &r); /* several odd-sized chunks */
                    check_quant(16, 64, 1024, bitss[b], nz, ip, &r); /* > 4096-element noise chunks, > PAR_MIN */
                }
        check_quant_refusals(&r);
        check_quant_zero_min(&r);
        printf("quantizer %s: %s\n", qtab->name, tu_failures == before ? "ok" : "FAILED");
    }

    /* 2-4: the odd-shape grid */
    const int Cs[] = {1, 3, 5, 63, 65, 130};
    const int Os[] = {1, 5, 13, 17, 67};
    const int HWs[][2] = {{1, 1}, {2, 3}, {7, 5}, {9, 11}, {4, 4}};
    const int Ns[] = {1, 2, 3};
    int idx = 0;
    for (int K = 1; K <= 3; K += 2)
        for (int st = 1; st <= 2; st++)
            for (int p = 0; p <= 1; p++)
                for (int ci = 0; ci < 6; ci++)
                    for (int h = 0; h < 5; h++, idx++)
                        check_case(Ns[idx % 3], Cs[ci], HWs[h][0], HWs[h][1], Os[idx % 5], K, st, p, 0, &r, 1);
    /* extremes: codes 255 and all-+1 / all--1 operands (AVX2 int16 partial sums at 64*510) */
    for (int fill = 1; fill <= 2; fill++) {
        check_case(2, 64, 6, 6, 300, 3, 1, 1, fill, &r, 1); /* dgrad reduction 300 > 256 (several chunks) */
        check_case(1, 7, 5, 5, 64, 3, 2, 1, fill, &r, 1);
        check_case(2, 8, 16, 16, 20, 3, 1, 1, fill, &r, 1); /* wgrad segments of 72 k-steps (> 64) */
    }
    /* long reductions: dgrad O = 520 (K = 520), wgrad N*OH*OW = 4 * 33 * 33 = 4356 > 4096 */
    check_case(1, 9, 4, 4, 520, 3, 1, 1, 0, &r, 1);
    check_case(4, 5, 33, 33, 18, 3, 1, 1, 0, &r, 1);
    /* dgrad's direct path: odd C/O/widths, pad 0 and 1, K 1 and 3, H*W >= 64 */
    check_case(2, 13, 8, 9, 7, 3, 1, 0, 0, &r, 1);
    check_case(1, 70, 11, 7, 29, 3, 1, 1, 0, &r, 1);
    check_case(3, 5, 13, 5, 67, 1, 1, 0, 0, &r, 1);
    check_case(1, 3, 64, 3, 5, 3, 1, 1, 0, &r, 1);
    /* strides 3, kernel 5, pad wider than the kernel (every path's phase / window arithmetic) */
    check_case(2, 7, 13, 11, 9, 5, 3, 2, 0, &r, 1);
    check_case(1, 4, 10, 10, 6, 3, 3, 1, 0, &r, 1);
    check_case(1, 5, 9, 9, 6, 3, 1, 3, 0, &r, 1);
    check_case(2, 6, 12, 9, 10, 5, 2, 2, 0, &r, 1);
    check_case(1, 3, 6, 5, 4, 1, 3, 0, 0, &r, 1);
    /* CIFAR-like shapes (small batch) */
    check_case(2, 64, 16, 16, 64, 3, 1, 1, 0, &r, 1);
    check_case(2, 64, 16, 16, 128, 3, 2, 1, 0, &r, 1);
    check_case(1, 256, 4, 4, 256, 3, 1, 1, 0, &r, 0);
    /* no output pixels (kernel wider than the padded input): everything 0 */
    check_case(2, 3, 1, 2, 4, 3, 1, 0, 0, &r, 1);

    const int before = tu_failures;
    check_products(&r);
    printf("products / sign helpers: %s\n", tu_failures == before ? "ok" : "FAILED");
    for (int t = 0; t < ntabs; t++) printf("table %s: %s\n", tabs[t].name, tab_fails[t] ? "FAILED" : "ok");
    printf("%ld shapes\n", n_cases);
    return tu_finish("bconv_bwd_int8");
}
