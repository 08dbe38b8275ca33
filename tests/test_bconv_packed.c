/* The packed binary conv forward (core/bitpack.h, core/bconv_packed.h): the C
 * table against the definitions. (Every SIMD table against the C table, with
 * 1 and 2 threads, is checkasm's bconv_packed family: tests/checkasm_bconv_packed.c.)
 *
 * On random ternary tensors (about 1/3 exact zeros) and on {-1,+1} tensors
 * (the sign(0) = +1 option), for odd channel counts (3, 63, 64, 65, 130),
 * kernels 1 and 3, strides 1 and 2, padding 0 and 1, odd spatial sizes and
 * output-channel counts that are not multiples of the 4-filter AVX2 block:
 *  1. the C table's packed forward equals the fp32 reference conv times alpha
 *     BITWISE, both the direct loop conv2d_forward_ref and the engine's GEMM
 *     conv2d_forward (and alpha = NULL gives the raw integer Y);
 *  2. -1 padding packed at the border equals the fp32 conv of an explicitly
 *     -1-padded input, bitwise;
 *     (filters 0-3 and every third one are zero-free, as in checkasm);
 *  3. the faithful binary_conv_forward in eval mode with bits = 0 (where
 *     Bw = sign(W), Ba = sign(A)) equals alpha * packed conv of sign(A),
 *     sign(W), bitwise, for sign(0) = 0 and sign(0) = +1 and for 0 / -1 padding,
 *     at every CPU level this machine has (cpu_set_mask_for_tests lowers the
 *     tables binary_conv_forward itself uses). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bconv_packed.h"
#include "binary_conv.h"
#include "checkasm_packed_shapes.h"
#include "cpu.h"
#include "testutil.h"

static void fill_ternary(real *x, size_t n, int with_zeros, Rng *r) {
    for (size_t i = 0; i < n; i++) {
        uint64_t k = rng_below(r, with_zeros ? 3 : 2);
        x[i] = k == 0 ? (real)-1 : k == 1 ? (real)1 : (real)0;
    }
}

static uint64_t *walloc(size_t n) {
    uint64_t *p = aligned_alloc(32, ((n * sizeof(uint64_t) + 31) / 32 + 1) * 32);
    if (!p) { fprintf(stderr, "oom\n"); exit(1); }
    memset(p, 0xA5, ((n * sizeof(uint64_t) + 31) / 32 + 1) * 32); /* packers must overwrite everything */
    return p;
}

/* run one table: pack + conv; returns words in *pa_out (caller frees) */
static void run_packed(const BconvPackedFns *f, real *out, uint64_t **pa_out, uint64_t **pw_out, const real *a,
                       const real *w, const real *alpha, const ConvDims *d, int pad_m1) {
    uint64_t *pa = walloc(bitpack_act_words(d)), *pw = walloc(bitpack_weight_words(d));
    f->pack_act(pa, a, d, pad_m1);
    f->pack_weight(pw, w, d);
    f->conv_fwd(out, pa, pw, alpha, d);
    *pa_out = pa;
    *pw_out = pw;
}

static int same_bits(const real *a, const real *b, size_t n) { return n == 0 || memcmp(a, b, n * sizeof(real)) == 0; }

/* the input with an explicit border of -1, [N,C,H+2p,W+2p] */
static real *pad_minus_one(const real *a, const ConvDims *d) {
    const int p = d->pad, Hp = d->H + 2 * p, Wp = d->W + 2 * p;
    real *b = tu_alloc((size_t)d->N * d->C * Hp * Wp);
    for (long pl = 0; pl < (long)d->N * d->C; pl++)
        for (int y = 0; y < Hp; y++)
            for (int x = 0; x < Wp; x++) {
                int iy = y - p, ix = x - p;
                b[((size_t)pl * Hp + y) * Wp + x] =
                    (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) ? (real)-1 : a[((size_t)pl * d->H + iy) * d->W + ix];
            }
    return b;
}

static void check_case(int N, int C, int H, int W, int O, int K, int s, int p, int with_zeros, Rng *r,
                       const BconvPackedFns *cf) {
    ConvDims d = conv_dims(N, C, H, W, O, K, s, p);
    const size_t nin = (size_t)N * C * H * W, nw = (size_t)O * C * K * K, nout = (size_t)N * O * d.OH * d.OW;
    real *a = tu_alloc(nin), *w = tu_alloc(nw), *alpha = tu_alloc(O);
    fill_ternary(a, nin, with_zeros, r);
    fill_ternary(w, nw, with_zeros, r);
    /* filters with and without zero weights, mixed within and across the
     * 4-filter blocks (the SIMD kernels have a faster path for zero-free blocks) */
    const size_t per_o = (size_t)C * K * K;
    for (int o = 0; o < O; o++)
        if (o < 4 || o % 3 == 0)
            for (size_t i = 0; i < per_o; i++)
                if (w[o * per_o + i] == 0) w[o * per_o + i] = (i & 1) ? 1 : -1;
    tu_fill_uniform(alpha, O, 0.01, 2.0, r);
    real *yref = tu_alloc(nout + 1), *ref = tu_alloc(nout + 1), *fast = tu_alloc(nout + 1);
    real *o_c = tu_alloc(nout + 1), *y_c = tu_alloc(nout + 1);
    real *scratch = tu_alloc(conv2d_scratch_size(&d) + 1);
    conv2d_forward_ref(yref, a, w, &d);
    for (size_t i = 0; i < nout; i++) ref[i] = yref[i] * alpha[i / ((size_t)d.OH * d.OW) % O];
    conv2d_forward(fast, a, w, &d, scratch);
    for (size_t i = 0; i < nout; i++) fast[i] *= alpha[i / ((size_t)d.OH * d.OW) % O];

    uint64_t *pa_c, *pw_c;
    run_packed(cf, o_c, &pa_c, &pw_c, a, w, alpha, &d, 0);
    cf->conv_fwd(y_c, pa_c, pw_c, NULL, &d);
    CHECK(same_bits(o_c, ref, nout), "C packed != ref  N%d C%d %dx%d O%d K%d s%d p%d z%d", N, C, H, W, O, K, s, p, with_zeros);
    CHECK(same_bits(o_c, fast, nout), "C packed != conv2d_forward  C%d %dx%d O%d K%d s%d p%d", C, H, W, O, K, s, p);
    CHECK(same_bits(y_c, yref, nout), "C packed Y != ref Y  C%d %dx%d K%d s%d p%d", C, H, W, K, s, p);
    free(pa_c);
    free(pw_c);

    if (p > 0) { /* -1 padding */
        real *ap = pad_minus_one(a, &d);
        ConvDims dp = conv_dims(N, C, H + 2 * p, W + 2 * p, O, K, s, 0);
        conv2d_forward_ref(yref, ap, w, &dp);
        for (size_t i = 0; i < nout; i++) ref[i] = yref[i] * alpha[i / ((size_t)d.OH * d.OW) % O];
        run_packed(cf, o_c, &pa_c, &pw_c, a, w, alpha, &d, 1);
        CHECK(same_bits(o_c, ref, nout), "C packed pad -1 != ref  C%d %dx%d K%d s%d", C, H, W, K, s);
        free(pa_c); free(pw_c);
        free(ap);
    }
    free(a); free(w); free(alpha); free(yref); free(ref); free(fast); free(o_c); free(y_c); free(scratch);
}

/* 3: against binary_conv_forward itself (eval, bits = 0) */
static void check_binary_conv(int C, int H, int O, int K, int s, int p, int zplus, int padm1, Rng *r,
                              const BconvPackedFns *bf) {
    const int N = 2;
    ConvDims d = conv_dims(N, C, H, H, O, K, s, p);
    const size_t nin = (size_t)N * C * H * H, nw = (size_t)O * C * K * K, nout = (size_t)N * O * d.OH * d.OW;
    real *a = tu_alloc_rand(nin, r), *w = tu_alloc_rand(nw, r), *alpha = tu_alloc(O);
    for (size_t i = 0; i < nin; i += 5) a[i] = 0; /* exact zeros: sign 0 (or +1) */
    for (size_t i = 0; i < nw; i += 7) w[i] = 0;
    tu_fill_uniform(alpha, O, 0.01, 2.0, r);
    BinaryConvOptions opt = binary_conv_faithful();
    opt.sign_zero = zplus ? SIGN_ZERO_IS_PLUS_ONE : SIGN_ZERO_IS_ZERO;
    opt.pad_minus_one = padm1;
    real *saved = tu_alloc(binary_conv_saved_size(&d, NULL)), *scratch = tu_alloc(binary_conv_scratch_size(&d));
    real running[2] = {0, 1};
    real *out = tu_alloc(nout + 1), *o_b = tu_alloc(nout + 1);
    binary_conv_forward(out, saved, running, a, w, alpha, &d, 0.0, 0, &opt, scratch);
    /* sign with the option's sign(0); the packers read sign(v), sign(0) = 0 */
    real *sa = tu_alloc(nin), *sw = tu_alloc(nw);
    for (size_t i = 0; i < nin; i++) sa[i] = a[i] > 0 ? 1 : a[i] < 0 ? -1 : (zplus ? 1 : 0);
    for (size_t i = 0; i < nw; i++) sw[i] = w[i] > 0 ? 1 : w[i] < 0 ? -1 : (zplus ? 1 : 0);
    uint64_t *pa, *pw;
    run_packed(bf, o_b, &pa, &pw, sa, sw, alpha, &d, padm1);
    CHECK(same_bits(o_b, out, nout), "packed != binary_conv_forward  C%d H%d O%d K%d s%d p%d zplus%d padm1%d",
          C, H, O, K, s, p, zplus, padm1);
    free(pa); free(pw); free(sa); free(sw); free(a); free(w); free(alpha); free(saved); free(scratch); free(out); free(o_b);
}

int main(void) {
    Rng r = rng_stream(1234, RNG_TEST, 0, 0);
    BconvPackedFns cf;
    bconv_packed_init_fns(&cf, 0);
    PkShape sh[PK_N_SHAPES];
    const int n = pk_shapes(sh);
    int before = tu_failures;
    for (int k = 0; k < n; k++)
        check_case(sh[k].N, sh[k].C, sh[k].H, sh[k].W, sh[k].O, sh[k].K, sh[k].s, sh[k].p, sh[k].zeros, &r, &cf);
    printf("C table vs the fp32 conv (%d shapes): %s\n", n, tu_failures == before ? "ok" : "FAILED");

    /* 3, at each level: the engine's own table follows the lowered mask */
    const unsigned lv[] = {CPU_LEVEL_C, CPU_LEVEL_AVX2, CPU_LEVEL_NATIVE};
    const char *prev = NULL;
    const unsigned have = cpu_features();
    for (int l = 0; l < 3; l++) {
        if ((lv[l] & have) != lv[l] && lv[l] != CPU_LEVEL_NATIVE) continue;
        cpu_set_mask_for_tests(lv[l]);
        const BconvPackedFns *bf = bconv_packed_fns();
        if (prev && !strcmp(prev, bf->name)) continue;
        prev = bf->name;
        before = tu_failures;
        for (int zplus = 0; zplus <= 1; zplus++)
            for (int padm1 = 0; padm1 <= 1; padm1++) {
                check_binary_conv(65, 7, 6, 3, 1, 1, zplus, padm1, &r, bf);
                check_binary_conv(3, 9, 5, 3, 2, 1, zplus, padm1, &r, bf);
                check_binary_conv(130, 5, 4, 1, 1, 0, zplus, padm1, &r, bf);
            }
        printf("binary_conv_forward vs the packed conv, table %s: %s\n", bf->name,
               tu_failures == before ? "ok" : "FAILED");
    }
    cpu_set_mask_for_tests(CPU_LEVEL_NATIVE);
    return tu_finish("bconv_packed");
}
