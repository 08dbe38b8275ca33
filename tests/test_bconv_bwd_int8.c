/* The integer backward of the binary conv on 8-bit error codes (core/bconv_bwd_int8.h),
 * beyond table-vs-reference. (Every table's dgrad, wgrad and error codes against the
 * references and grad_quant, bitwise, with 1 and 2 threads, on 267 fixed and random
 * shapes, is checkasm's bconv_bwd_int8 family: tests/checkasm_bconv_bwd_int8.c.)
 *
 *  1. The reference against the fp32 path the engine runs (conv2d_backward and
 *     conv2d_backward_ref of the dequantized dY) on checkasm's shapes
 *     (tests/checkasm_bwd8_shapes.h): they differ only by fp32 rounding;
 *     |int8 - fp32| <= tol * M per output, M = sum over the terms of
 *     (|dY| + |code*s| + |zp|) * |B| (a bound on every rounding involved).
 *  2. bconv_bwd_int8_products = quant_codes + dgrad + wgrad of the engine's table,
 *     at every CPU level (the mask lowered: bconv_bwd_int8_fns follows); the sign
 *     helpers; bconv_bwd_int8_simd; the int32 limits.
 *  3. The noise drawn where it is used (QuantNoise, core/quant.h): quant_noise_get
 *     of a key at random first elements and blocks = the slice of one whole
 *     fill (quant_fill_noise_range), bitwise; grad_quant_nz with the key =
 *     grad_quant with that fill, 1 and 2 threads; the products with the key
 *     = the products with the array. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bconv_bwd_int8.h"
#include "checkasm_bwd8_shapes.h"
#include "cpu.h"
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

/* ------------------------------------------------------------ 1. against fp32 */
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
    real *dx_ref = ralloc(nin), *dw_ref = ralloc(nw);
    bconv_bwd_int8_dgrad_ref(dx_ref, codes, bw, zp, s, &d);
    bconv_bwd_int8_wgrad_ref(dw_ref, codes, ba, zp, s, &d);
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
    free(codes); free(bw); free(ba); free(dx_ref); free(dw_ref);
}

/* 2. bconv_bwd_int8_products (the engine's entry) = quant_codes + dgrad + wgrad of the
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
    const QuantNoise arr = {.draws = noise};
    CHECK(f->quant_codes(codes2, &zp, &s, g, dout, alpha, d.N, d.O, (size_t)d.OH * d.OW, 8.0, &arr) == 0, "codes");
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

/* 3. the key gives the array's draws, wherever the blocks start */
static void check_noise(Rng *r) {
    const size_t total = 5 * NOISE_CHUNK + 123;
    real *all = ralloc(total), *buf = ralloc(total), *g = ralloc(total), *a = ralloc(total), *b = ralloc(total);
    quant_fill_noise(all, total, 7, 8, 9);
    const QuantNoise key0 = {.seed = 7, .key1 = 8, .key2 = 9, .off = 0};
    int ok = 1;
    for (int t = 0; t < 40; t++) {
        const size_t lo = (size_t)rng_below(r, total), n = (size_t)rng_below(r, total - lo + 1);
        QuantNoise key = key0;
        key.off = (size_t)rng_below(r, lo + 1); /* element lo of a stream read from off */
        quant_noise_get(buf, &key, lo - key.off, n);
        ok &= same_bits(buf, all + lo, n);
    }
    CHECK(ok, "quant_noise_get != the slice of quant_fill_noise");
    for (int t = 0; t < 12; t++) {
        const size_t off = t < 2 ? 0 : (size_t)rng_below(r, 2 * NOISE_CHUNK);
        const size_t n = t % 3 == 0 ? total - off : 1 + (size_t)rng_below(r, total - off);
        const double bits = t % 2 ? 8.0 : 3.0;
        tu_fill_uniform(g, n, -1, 2, r);
        QuantNoise key = key0;
        key.off = off;
        for (int th = 1; th <= 2; th++) {
            omp_set_num_threads(th);
            grad_quant(a, g, n, bits, all + off);
            grad_quant_nz(b, g, n, bits, &key, NULL, NULL);
            CHECK(same_bits(a, b, n), "grad_quant_nz (key, off %zu, n %zu, %d threads) != grad_quant (array)", off, n,
                  th);
        }
    }
    omp_set_num_threads(2);
    /* the products with the key: the same bits as with the array */
    ConvDims d = conv_dims(5, 7, 12, 12, 9, 3, 1, 1);
    const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * 9, nout = (size_t)d.N * d.O * d.OH * d.OW;
    real *dout = ralloc(nout), *alpha = ralloc(d.O), *noise = ralloc(nout), *gg = ralloc(nout);
    real *dx = ralloc(nin), *dw = ralloc(nw), *ex = ralloc(nin), *ew = ralloc(nw);
    uint8_t *codes = malloc(nout);
    int8_t *ba = malloc(nin), *bw = malloc(nw);
    tu_fill_uniform(dout, nout, -1e-3, 2e-3, r);
    tu_fill_uniform(alpha, d.O, 0, 1, r);
    fill_tern(ba, nin, 1, r);
    fill_tern(bw, nw, 1, r);
    const QuantNoise key = {.seed = 3, .key1 = 4, .key2 = 5, .off = 3 * nout}; /* the 4th rank of 4+ */
    quant_fill_noise_range(noise, key.off, nout, 3, 4, 5);
    CHECK(bconv_bwd_int8_products(ex, ew, gg, codes, dout, alpha, noise, 4.0, ba, bw, &d) == 0, "products refused");
    CHECK(bconv_bwd_int8_products_nz(dx, dw, gg, codes, dout, alpha, &key, 4.0, ba, bw, &d) == 0, "products refused");
    CHECK(same_bits(dx, ex, nin) && same_bits(dw, ew, nw), "products with the key != with the array");
    free(all); free(buf); free(g); free(a); free(b);
    free(dout); free(alpha); free(noise); free(gg); free(dx); free(dw); free(ex); free(ew);
    free(codes); free(ba); free(bw);
}

int main(void) {
    Rng r = rng_stream(4321, RNG_TEST, 0, 0);
    omp_set_num_threads(2);

    /* 1: the reference against the fp32 path on checkasm's fixed shapes */
    static Bwd8Shape sh[BWD8_N_SHAPES];
    const int ns = bwd8_shapes(sh);
    int before = tu_failures;
    for (int i = 0; i < ns; i++)
        if (sh[i].vs_fp32)
            check_case(sh[i].N, sh[i].C, sh[i].H, sh[i].W, sh[i].O, sh[i].K, sh[i].st, sh[i].p, sh[i].fill, &r, 1);
    printf("reference vs fp32 conv2d_backward (%ld shapes): %s\n", n_cases, tu_failures == before ? "ok" : "FAILED");

    /* 2, at each level this machine has: the engine's table follows the lowered mask */
    const unsigned have = cpu_features();
    const unsigned lv[] = {CPU_LEVEL_C, CPU_LEVEL_AVX2, CPU_LEVEL_AVXVNNI, CPU_LEVEL_NATIVE};
    BconvBwdInt8Fns c_table;
    bconv_bwd_int8_init_fns(&c_table, 0);
    const char *prev = NULL;
    for (int l = 0; l < 4; l++) {
        if ((lv[l] & have) != lv[l] && lv[l] != CPU_LEVEL_NATIVE) continue;
        cpu_set_mask_for_tests(lv[l]);
        if (prev && !strcmp(prev, bconv_bwd_int8_fns()->name)) continue;
        prev = bconv_bwd_int8_fns()->name;
        before = tu_failures;
        CHECK(bconv_bwd_int8_simd() == (bconv_bwd_int8_fns()->dgrad != c_table.dgrad), "bconv_bwd_int8_simd");
        check_products(&r);
        printf("products / sign helpers, table %s: %s\n", bconv_bwd_int8_fns()->name,
               tu_failures == before ? "ok" : "FAILED");
    }
    cpu_set_mask_for_tests(CPU_LEVEL_NATIVE);

    /* 3 */
    before = tu_failures;
    check_noise(&r);
    printf("noise drawn where it is used (key = array): %s\n", tu_failures == before ? "ok" : "FAILED");
    return tu_finish("bconv_bwd_int8");
}
