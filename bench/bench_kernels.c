/* Google Benchmark runs of the hot kernels (through the C shim), on CIFAR-10
 * ResNet-18 layer shapes at batch 16:
 *   conv2d_fwd / conv2d_bwd   the fp32 conv (FLOPS, share of the fp32 FMA peak)
 *   gemm_nn                   the BLAS alone (FLOPS, share of the fp32 FMA peak)
 *   bconv_fwd                 activation packing + the packed 1-bit conv (bitMAC/s,
 *                             share of the popcount peak x 64)
 *   bconv_bwd                 error codes + both integer backward products
 *                             (MAC/s, share of the int8 multiply-accumulate peak)
 *   pack_act, quant_codes     the memory-bound passes (bytes read + written per second)
 * The peaks are measured at startup (bench/peak.c) and printed in the context.
 *
 *   bench_kernels [--benchmark_filter=REGEX] [--benchmark_min_time=SECONDS] ...
 *
 * `meson test -C BUILD --benchmark` runs it with a short min time. For the
 * im2col overhead next to plain sgemm see conv_throughput. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "bconv_bwd_int8.h"
#include "bconv_packed.h"
#include "bitpack.h"
#include "blas.h"
#include "cpu.h"
#include "gbench_shim.h"
#include "peak.h"
#include "quant.h"
#include "ops.h"
#include "rng.h"

#define BATCH 16

static real *alloc_rand(size_t n, uint64_t key) {
    real *p = (real *)malloc((n ? n : 1) * sizeof(real));
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    Rng r = rng_stream(1, RNG_TEST, key, n);
    for (size_t i = 0; i < n; i++) p[i] = (real)(2.0 * rng_uniform(&r) - 1.0);
    return p;
}

typedef struct {
    ConvDims d;
    int backward;
} ConvBench;

/* buffers live only while their benchmark runs: allocated before the timed
 * loop, freed after it */
static void bm_conv(GbState *st, void *arg) {
    const ConvBench *cb = (const ConvBench *)arg;
    const ConvDims *d = &cb->d;
    size_t nin = (size_t)d->N * d->C * d->H * d->W, nw = (size_t)d->O * d->C * d->KH * d->KW;
    size_t nout = (size_t)d->N * d->O * d->OH * d->OW;
    real *inp = alloc_rand(nin, 1), *w = alloc_rand(nw, 2), *out = alloc_rand(nout, 3);
    real *dout = alloc_rand(nout, 4), *dinp = alloc_rand(nin, 5), *dw = alloc_rand(nw, 6);
    real *scratch = alloc_rand(conv2d_scratch_size(d), 7);
    if (cb->backward) {
        while (gb_keep_running(st)) conv2d_backward(dinp, dw, dout, inp, w, d, scratch);
    } else {
        while (gb_keep_running(st)) conv2d_forward(out, inp, w, d, scratch);
    }
    free(inp); free(w); free(out); free(dout); free(dinp); free(dw); free(scratch);
}

typedef struct { int M, N, K; } GemmBench;

static void bm_gemm(GbState *st, void *arg) {
    const GemmBench *g = (const GemmBench *)arg;
    real *A = alloc_rand((size_t)g->M * g->K, 8), *B = alloc_rand((size_t)g->K * g->N, 9);
    real *C = alloc_rand((size_t)g->M * g->N, 10);
    while (gb_keep_running(st)) gemm(0, 0, g->M, g->N, g->K, (real)1, A, g->K, B, g->N, (real)0, C, g->N);
    free(A); free(B); free(C);
}

/* ternary operands as the binary conv makes them: ~6% zeros */
static real *alloc_ternary(size_t n, uint64_t key) {
    real *p = alloc_rand(n, key);
    for (size_t i = 0; i < n; i++) p[i] = (i % 16 == 5) ? (real)0 : p[i] > 0 ? (real)1 : (real)-1;
    return p;
}

typedef struct {
    ConvDims d;
    int kind; /* 0 bconv_fwd, 1 bconv_bwd, 2 pack_act, 3 quant_codes */
} BinBench;

static void bm_binary(GbState *st, void *arg) {
    const BinBench *bb = (const BinBench *)arg;
    const ConvDims *d = &bb->d;
    const size_t nin = (size_t)d->N * d->C * d->H * d->W, nw = (size_t)d->O * d->C * d->KH * d->KW;
    const size_t nout = (size_t)d->N * d->O * d->OH * d->OW;
    real *a = alloc_ternary(nin, 11), *w = alloc_ternary(nw, 12), *out = alloc_rand(nout, 13);
    real *dout = alloc_rand(nout, 14), *alpha = alloc_rand((size_t)d->O, 15), *noise = alloc_rand(nout, 16);
    for (size_t i = 0; i < nout; i++) noise[i] *= (real)0.49;
    real *dx = alloc_rand(nin, 17), *dw = alloc_rand(nw, 18), *g = alloc_rand(nout, 19);
    uint64_t *pa = malloc(bitpack_act_words(d) * sizeof *pa), *pw = malloc(bitpack_weight_words(d) * sizeof *pw);
    int8_t *a8 = malloc(nin), *w8 = malloc(nw);
    uint8_t *codes = malloc(nout), *acodes = malloc(nin);
    if (!pa || !pw || !a8 || !w8 || !codes || !acodes) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    const BconvPackedFns *f = bconv_packed_fns();
    bconv_bwd_sign_i8(a8, a, nin, 0);
    bconv_bwd_sign_i8(w8, w, nw, 0);
    f->pack_weight(pw, w, d);
    switch (bb->kind) {
    case 0:
        while (gb_keep_running(st)) {
            f->pack_act(pa, a, d, 0);
            f->conv_fwd(out, pa, pw, alpha, d);
        }
        break;
    case 1:
        while (gb_keep_running(st)) bconv_bwd_int8_products(dx, dw, g, codes, dout, alpha, noise, 8.0, a8, w8, d);
        break;
    case 2:
        while (gb_keep_running(st)) f->pack_act(pa, a, d, 0);
        break;
    default: {
        real zp, range;
        quant_minmax_params(&zp, &range, dout, nout);
        while (gb_keep_running(st)) quant_codes_u8(acodes, dout, nin < nout ? nin : nout, zp, quant_scale(range, 4), 15);
    }
    }
    free(a); free(w); free(out); free(dout); free(alpha); free(noise); free(dx); free(dw); free(g);
    free(pa); free(pw); free(a8); free(w8); free(codes); free(acodes);
}

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        fprintf(stderr, "bench_kernels: %s\n", cpu_env_error());
        return 2;
    }
    const char *how_f = "", *how_b = "", *how_i = "";
    const double pk_f = peak_fp32_flops(&how_f), pk_b = peak_bitmacs(&how_b), pk_i = peak_int8_macs(&how_i);
    /* C, H, W, O, K, stride, pad */
    static const int shapes[][7] = {
        /* CIFAR-10 ResNet-18 (32x32 input) */
        {64, 32, 32, 64, 3, 1, 1},
        {128, 16, 16, 128, 3, 1, 1},
        {256, 8, 8, 512, 3, 2, 1},
        {512, 4, 4, 512, 3, 1, 1},
        /* ImageNet ResNet-18 (224x224 input): the 3x3 convs of each stage and a stride-2 entry */
        {64, 56, 56, 64, 3, 1, 1},
        {64, 56, 56, 128, 3, 2, 1},
        {128, 28, 28, 128, 3, 1, 1},
        {256, 14, 14, 256, 3, 1, 1},
        {512, 7, 7, 512, 3, 1, 1},
    };
    enum { NS = sizeof(shapes) / sizeof(shapes[0]) };
    static ConvBench conv[2 * NS];
    static char names[2 * NS][96];
    for (int i = 0; i < NS; i++) {
        const int *s = shapes[i];
        for (int b = 0; b < 2; b++) {
            ConvBench *cb = &conv[2 * i + b];
            cb->d = conv_dims(BATCH, s[0], s[1], s[2], s[3], s[4], s[5], s[6]);
            cb->backward = b;
            snprintf(names[2 * i + b], sizeof(names[0]), "conv2d_%s/N%d_C%d_%dx%d_O%d_K%d_s%d", b ? "bwd" : "fwd",
                     BATCH, s[0], s[1], s[2], s[3], s[4], s[5]);
            /* backward with dinp = two forwards' worth of MACs */
            gb_register_rate(names[2 * i + b], bm_conv, cb, (b ? 4.0 : 2.0) * (double)conv_macs(&cb->d), "FLOPS", pk_f);
        }
    }
    /* the forward GEMM of 64->64 at 32x32 (one sample), and a square one */
    static GemmBench gemms[] = {{64, 1024, 576}, {512, 512, 512}};
    static char gnames[2][64];
    for (int i = 0; i < 2; i++) {
        snprintf(gnames[i], sizeof(gnames[0]), "gemm_nn/M%d_N%d_K%d", gemms[i].M, gemms[i].N, gemms[i].K);
        gb_register_rate(gnames[i], bm_gemm, &gemms[i], 2.0 * gemms[i].M * gemms[i].N * gemms[i].K, "FLOPS", pk_f);
    }
    /* the binary kernels on the same conv shapes */
    static BinBench bins[4 * NS];
    static char bnames[4 * NS][96];
    static const char *kinds[4] = {"bconv_fwd", "bconv_bwd", "pack_act", "quant_codes"};
    for (int i = 0; i < NS; i++) {
        const int *s = shapes[i];
        for (int k = 0; k < 4; k++) {
            BinBench *bb = &bins[4 * i + k];
            bb->d = conv_dims(BATCH, s[0], s[1], s[2], s[3], s[4], s[5], s[6]);
            bb->kind = k;
            snprintf(bnames[4 * i + k], sizeof(bnames[0]), "%s/N%d_C%d_%dx%d_O%d_K%d_s%d", kinds[k], BATCH, s[0], s[1],
                     s[2], s[3], s[4], s[5]);
            const double macs = (double)conv_macs(&bb->d);
            const size_t nin = (size_t)BATCH * s[0] * s[1] * s[2], nout = (size_t)BATCH * s[3] * (s[1] / s[5]) * (s[2] / s[5]);
            if (k == 0) gb_register_rate(bnames[4 * i + k], bm_binary, bb, macs, "bitMAC/s", pk_b);
            if (k == 1) gb_register_rate(bnames[4 * i + k], bm_binary, bb, 2.0 * macs, "MAC/s", pk_i);
            /* bytes: reals in, packed words out; reals in, codes out */
            if (k == 2) gb_register_rate(bnames[4 * i + k], bm_binary, bb, (double)nin * sizeof(real) +
                                         (double)bitpack_act_words(&bb->d) * 8, "bytes/s", 0);
            if (k == 3) gb_register_rate(bnames[4 * i + k], bm_binary, bb,
                                         (double)(nin < nout ? nin : nout) * (sizeof(real) + 1), "bytes/s", 0);
        }
    }
    char pk[160];
    snprintf(pk, sizeof pk, "%.1f GFLOP/s (%s)", pk_f * 1e-9, how_f);
    gb_add_context("peak_fp32", pk);
    snprintf(pk, sizeof pk, "%.1f G bit-MAC/s (%s)", pk_b * 1e-9, how_b);
    gb_add_context("peak_bitmac", pk);
    snprintf(pk, sizeof pk, "%.1f G MAC/s (%s)", pk_i * 1e-9, how_i);
    gb_add_context("peak_int8", pk);
    gb_add_context("bconv_bwd_table", bconv_bwd_int8_fns()->name);
    char threads[16];
    snprintf(threads, sizeof(threads), "%d", omp_get_max_threads());
    gb_add_context("omp_threads", threads);
    gb_add_context("openblas_core", openblas_get_corename());
    gb_add_context("real", REAL_NAME);
    return gb_run(argc, argv);
}
