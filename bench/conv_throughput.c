/* conv2d throughput on the conv layers of CIFAR-10 ResNet-18 (or, with
 * --imagenet, ImageNet ResNet-18) at batch 16, next to the BLAS's own sgemm on
 * exactly the GEMMs conv2d issues, and (in a build with oneDNN) the oneDNN
 * backend (model.fp32_conv: onednn) on the same tensors; its backward also
 * with round one's multi-threaded dW ("bwd MT-dW": faster, but its bits
 * follow the thread count).
 *
 *   conv_throughput [reps] [--engine] [--imagenet] [--batch N]
 *       reps: default 7; median of reps after 1 warm-up, conv, oneDNN and
 *       sgemm runs interleaved. --engine: first call engine_set_threads() as
 *       training does (experiments/train_run.c), so the BLAS gets whatever
 *       thread count the engine gives it; without it the BLAS follows
 *       OMP_NUM_THREADS. --batch: default 16. --dw-chunks K: oneDNN's dW
 *       chunk target (conv2d_onednn_set_wgrad_chunks; default the backend's).
 *       --dnn-only: time the oneDNN runs alone (the other columns read 1 s).
 *       The last line, "per step", weights each shape by how many convs of
 *       it the net has (the 1x1 shortcuts are not in the table).
 *
 * GFLOP/s = 2 * MACs / time. Forward does conv_macs() MACs; backward (with
 * dinp) does twice that (dW and dinp each one forward's worth). The "sgemm"
 * columns time cblas_sgemm alone with the same M, N, K, transposes, betas and
 * number of calls (one per sample, per GEMM), on a pre-filled col buffer; the
 * ratio conv/sgemm is then the share of the time the GEMM would take without
 * im2col/col2im and the per-sample loop around it (1.00 = no overhead).
 *
 * Not a test: numbers depend on the machine. Thread count from
 * OMP_NUM_THREADS (the OpenMP build of OpenBLAS follows it). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "blas.h"
#include "cpu.h"
#include "ops.h"
#include "ops/conv2d_onednn.h"
#include "rng.h"

typedef struct {
    const char *name;
    int C, H, W, O, K, stride, pad;
    int count; /* convs of this shape in the net */
} Layer;

/* CIFAR-10 ResNet-18 (3x3 convs; one row per distinct shape) */
static const Layer layers[] = {
    {"stem 3->64 32x32", 3, 32, 32, 64, 3, 1, 1, 1},
    {"64->64 32x32", 64, 32, 32, 64, 3, 1, 1, 4},
    {"64->128 s2 32x32", 64, 32, 32, 128, 3, 2, 1, 1},
    {"128->128 16x16", 128, 16, 16, 128, 3, 1, 1, 3},
    {"128->256 s2 16x16", 128, 16, 16, 256, 3, 2, 1, 1},
    {"256->256 8x8", 256, 8, 8, 256, 3, 1, 1, 3},
    {"256->512 s2 8x8", 256, 8, 8, 512, 3, 2, 1, 1},
    {"512->512 4x4", 512, 4, 4, 512, 3, 1, 1, 3},
};

/* ImageNet ResNet-18 at 224x224 (the 7x7 stem, then the 3x3 convs; one row per distinct shape) */
static const Layer imagenet_layers[] = {
    {"stem 3->64 7x7 s2", 3, 224, 224, 64, 7, 2, 3, 1},
    {"64->64 56x56", 64, 56, 56, 64, 3, 1, 1, 4},
    {"64->128 s2 56x56", 64, 56, 56, 128, 3, 2, 1, 1},
    {"128->128 28x28", 128, 28, 28, 128, 3, 1, 1, 3},
    {"128->256 s2 28x28", 128, 28, 28, 256, 3, 2, 1, 1},
    {"256->256 14x14", 256, 14, 14, 256, 3, 1, 1, 3},
    {"256->512 s2 14x14", 256, 14, 14, 512, 3, 2, 1, 1},
    {"512->512 7x7", 512, 7, 7, 512, 3, 1, 1, 3},
};



static float *alloc_rand(size_t n, Rng *r) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)(2.0 * rng_uniform(r) - 1.0);
    return p;
}

/* everything one layer's timings need */
typedef struct {
    ConvDims d;
    float *inp, *w, *out, *dout, *dinp, *dw, *scratch;
    float *col, *colgrad; /* [CK, OHW] each, for the sgemm-only runs */
} Bufs;

/* RUN_DNN_BWD: the backend as runs use it (dW in fixed sample chunks,
 * independent of the thread count); RUN_DNN_BWD_MT: its dW as one oneDNN
 * primitive at the thread count (conv2d_onednn_set_wgrad_chunks(0)), the
 * speed the chunks give up */
enum { RUN_CONV_FWD, RUN_CONV_BWD, RUN_GEMM_FWD, RUN_GEMM_BWD, RUN_DNN_FWD, RUN_DNN_BWD, RUN_DNN_BWD_MT, N_RUNS };

static int dw_chunks = CONV2D_ONEDNN_WGRAD_CHUNKS; /* --dw-chunks */
static int dnn_only;                               /* --dnn-only */

static void run_once(Bufs *b, int what) {
    const ConvDims *d = &b->d;
    ConvDims dd = b->d;
    dd.backend = FP32_CONV_ONEDNN;
    const int CK = d->C * d->KH * d->KW, OHW = d->OH * d->OW;
    switch (what) {
    case RUN_CONV_FWD:
        conv2d_forward(b->out, b->inp, b->w, d, b->scratch);
        break;
    case RUN_CONV_BWD:
        conv2d_backward(b->dinp, b->dw, b->dout, b->inp, b->w, d, b->scratch);
        break;
    case RUN_DNN_FWD:
        conv2d_forward(b->out, b->inp, b->w, &dd, b->scratch);
        break;
    case RUN_DNN_BWD:
        conv2d_backward(b->dinp, b->dw, b->dout, b->inp, b->w, &dd, b->scratch);
        break;
    case RUN_DNN_BWD_MT:
        conv2d_onednn_set_wgrad_chunks(0);
        conv2d_backward(b->dinp, b->dw, b->dout, b->inp, b->w, &dd, b->scratch);
        conv2d_onednn_set_wgrad_chunks(dw_chunks);
        break;
    case RUN_GEMM_FWD: /* out[n] = W x col, per sample */
        for (int n = 0; n < d->N; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->O, OHW, CK, 1.0f, b->w, CK, b->col, OHW,
                        0.0f, b->out + (size_t)n * d->O * OHW, OHW);
        break;
    case RUN_GEMM_BWD: /* dW += dout[n] x col^T; colgrad = W^T x dout[n], per sample */
        for (int n = 0; n < d->N; n++) {
            const float *g = b->dout + (size_t)n * d->O * OHW;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->O, CK, OHW, 1.0f, g, OHW, b->col, OHW, 1.0f,
                        b->dw, CK);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CK, OHW, d->O, 1.0f, b->w, CK, g, OHW, 0.0f,
                        b->colgrad, OHW);
        }
        break;
    }
}


/* median times of the runs (nw: 4 without oneDNN, 7 with); the runs are
 * interleaved rep by rep so a burst of load from elsewhere on the machine
 * hits conv, oneDNN and sgemm alike and the ratios stay meaningful */
static void time_layer(Bufs *b, int reps, int nw, double med[N_RUNS]) {
    double *t = (double *)malloc(sizeof(double) * N_RUNS * reps);
    const int w0 = dnn_only ? RUN_DNN_FWD : 0;
    for (int w = 0; w < w0; w++) t[w * reps] = 1, med[w] = 1;
    for (int w = w0; w < nw; w++) run_once(b, w); /* warm-up: page faults, BLAS buffers, primitives, thread pool */
    for (int r = 0; r < reps; r++)
        for (int w = w0; w < nw; w++) {
            double t0 = bench_now();
            run_once(b, w);
            t[w * reps + r] = bench_now() - t0;
        }
    for (int w = w0; w < N_RUNS; w++) med[w] = w < nw ? bench_median(t + w * reps, reps) : 0;
    free(t);
}

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        fprintf(stderr, "conv_throughput: %s\n", cpu_env_error());
        return 2;
    }
    int reps = 7, engine = 0, imagenet = 0, BATCH = 16;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--engine") == 0) engine = 1;
        else if (strcmp(argv[i], "--imagenet") == 0) imagenet = 1;
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) BATCH = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dw-chunks") == 0 && i + 1 < argc) dw_chunks = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dnn-only") == 0) dnn_only = 1;
        else reps = atoi(argv[i]);
    }
    if (BATCH < 1) BATCH = 1;
    conv2d_onednn_set_wgrad_chunks(dw_chunks);
    const int dnn = conv2d_onednn_available(), n_runs = dnn ? N_RUNS : 4;
    const Layer *set = imagenet ? imagenet_layers : layers;
    const size_t n_set = imagenet ? sizeof imagenet_layers / sizeof imagenet_layers[0] : sizeof layers / sizeof layers[0];
    if (reps < 1) reps = 1;
    if (engine) engine_set_threads(omp_get_max_threads());
    /* warm the BLAS up once so it reports the thread count it will really use */
    float one = 1.0f, c = 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &c, 1);
    printf("conv_throughput: %s ResNet-18 convs, batch %d, %d OpenMP threads, BLAS threads %d%s, OpenBLAS core %s, median of %d reps\n",
           imagenet ? "ImageNet" : "CIFAR-10", BATCH, omp_get_max_threads(), openblas_get_num_threads(), engine ? " (engine_set_threads)" : "",
           openblas_get_corename(), reps);
    printf("%-19s %9s | %9s %9s %6s | %9s %9s %6s | %9s %9s %9s\n", "layer", "fwd GMAC", "fwd GF/s", "sgemm", "ratio",
           "bwd GF/s", "sgemm", "ratio", "dnn fwd", "dnn bwd", "bwd MT-dW");
    double tot[N_RUNS] = {0}, step[N_RUNS] = {0}, tot_macs = 0;
    for (size_t i = 0; i < n_set; i++) {
        const Layer *L = &set[i];
        Bufs b;
        b.d = conv_dims(BATCH, L->C, L->H, L->W, L->O, L->K, L->stride, L->pad);
        const ConvDims *d = &b.d;
        size_t nin = (size_t)d->N * d->C * d->H * d->W, nw = (size_t)d->O * d->C * d->KH * d->KW;
        size_t nout = (size_t)d->N * d->O * d->OH * d->OW;
        size_t ncol = (size_t)d->C * d->KH * d->KW * d->OH * d->OW;
        Rng r = rng_stream(1, RNG_TEST, i, 0);
        b.inp = alloc_rand(nin, &r);
        b.w = alloc_rand(nw, &r);
        b.dout = alloc_rand(nout, &r);
        b.out = alloc_rand(nout, &r);
        b.dinp = alloc_rand(nin, &r);
        b.dw = alloc_rand(nw, &r);
        b.scratch = alloc_rand(conv2d_scratch_size(d), &r);
        b.col = alloc_rand(ncol, &r);
        b.colgrad = alloc_rand(ncol, &r);

        double macs = (double)conv_macs(d);
        double t[N_RUNS];
        time_layer(&b, reps, n_runs, t);
        double gf = 1e-9 * 2.0 * macs;
        printf("%-19s %9.3f | %9.1f %9.1f %6.2f | %9.1f %9.1f %6.2f | %9.1f %9.1f %9.1f\n", L->name, 1e-9 * macs,
               gf / t[RUN_CONV_FWD], gf / t[RUN_GEMM_FWD], t[RUN_GEMM_FWD] / t[RUN_CONV_FWD],
               2 * gf / t[RUN_CONV_BWD], 2 * gf / t[RUN_GEMM_BWD], t[RUN_GEMM_BWD] / t[RUN_CONV_BWD],
               dnn ? gf / t[RUN_DNN_FWD] : 0, dnn ? 2 * gf / t[RUN_DNN_BWD] : 0,
               dnn ? 2 * gf / t[RUN_DNN_BWD_MT] : 0);
        for (int w = 0; w < N_RUNS; w++) tot[w] += t[w], step[w] += L->count * t[w];
        tot_macs += macs;
        free(b.inp); free(b.w); free(b.dout); free(b.out); free(b.dinp); free(b.dw);
        free(b.scratch); free(b.col); free(b.colgrad);
    }
    double gf = 1e-9 * 2.0 * tot_macs;
    printf("%-19s %9.3f | %9.1f %9.1f %6.2f | %9.1f %9.1f %6.2f | %9.1f %9.1f %9.1f\n", "all layers", 1e-9 * tot_macs,
           gf / tot[RUN_CONV_FWD], gf / tot[RUN_GEMM_FWD], tot[RUN_GEMM_FWD] / tot[RUN_CONV_FWD],
           2 * gf / tot[RUN_CONV_BWD], 2 * gf / tot[RUN_GEMM_BWD], tot[RUN_GEMM_BWD] / tot[RUN_CONV_BWD],
           dnn ? gf / tot[RUN_DNN_FWD] : 0, dnn ? 2 * gf / tot[RUN_DNN_BWD] : 0, dnn ? 2 * gf / tot[RUN_DNN_BWD_MT] : 0);
    printf("time per pass over these layers: fwd %.1f ms (sgemm %.1f), bwd %.1f ms (sgemm %.1f)", 1e3 * tot[RUN_CONV_FWD],
           1e3 * tot[RUN_GEMM_FWD], 1e3 * tot[RUN_CONV_BWD], 1e3 * tot[RUN_GEMM_BWD]);
    if (dnn)
        printf("; oneDNN fwd %.1f ms, bwd %.1f ms (multi-threaded dW %.1f ms)", 1e3 * tot[RUN_DNN_FWD],
               1e3 * tot[RUN_DNN_BWD], 1e3 * tot[RUN_DNN_BWD_MT]);
    printf("\nper step (each shape times its count): native fwd %.1f ms, bwd %.1f ms", 1e3 * step[RUN_CONV_FWD],
           1e3 * step[RUN_CONV_BWD]);
    if (dnn)
        printf("; oneDNN fwd %.1f ms, bwd %.1f ms (multi-threaded dW %.1f ms)", 1e3 * step[RUN_DNN_FWD],
               1e3 * step[RUN_DNN_BWD], 1e3 * step[RUN_DNN_BWD_MT]);
    printf("\n");
    conv2d_onednn_release();
    return 0;
}
