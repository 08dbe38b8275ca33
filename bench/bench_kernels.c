/* Google Benchmark runs of the hot kernels (through the C shim):
 * conv2d forward/backward on a few CIFAR-10 ResNet-18 layer shapes at batch
 * 16, and gemm on the forward GEMM of one of them plus a square one.
 *
 *   bench_kernels [--benchmark_filter=REGEX] [--benchmark_min_time=SECONDS] ...
 *
 * `meson test -C BUILD --benchmark` runs it with a short min time. For the
 * im2col overhead next to plain sgemm see conv_throughput. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "blas.h"
#include "gbench_shim.h"
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

int main(int argc, char **argv) {
    /* C, H, W, O, K, stride, pad */
    static const int shapes[][7] = {
        {64, 32, 32, 64, 3, 1, 1},
        {128, 16, 16, 128, 3, 1, 1},
        {256, 8, 8, 512, 3, 2, 1},
        {512, 4, 4, 512, 3, 1, 1},
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
            gb_register(names[2 * i + b], bm_conv, cb, (b ? 4.0 : 2.0) * (double)conv_macs(&cb->d));
        }
    }
    /* the forward GEMM of 64->64 at 32x32 (one sample), and a square one */
    static GemmBench gemms[] = {{64, 1024, 576}, {512, 512, 512}};
    static char gnames[2][64];
    for (int i = 0; i < 2; i++) {
        snprintf(gnames[i], sizeof(gnames[0]), "gemm_nn/M%d_N%d_K%d", gemms[i].M, gemms[i].N, gemms[i].K);
        gb_register(gnames[i], bm_gemm, &gemms[i], 2.0 * gemms[i].M * gemms[i].N * gemms[i].K);
    }
    char threads[16];
    snprintf(threads, sizeof(threads), "%d", omp_get_max_threads());
    gb_add_context("omp_threads", threads);
    gb_add_context("openblas_core", openblas_get_corename());
    gb_add_context("real", REAL_NAME);
    return gb_run(argc, argv);
}
