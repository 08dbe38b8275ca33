/* The oneDNN backend of the fp32 conv (model.fp32_conv: onednn,
 * core/ops/conv2d_onednn.c) against the native conv and the double reference.
 *
 * 1. Forward, dX and dW on random shapes (strides 1/2, K 1/3/7, pads 0..3,
 *    odd sizes, batch 1..20, chunk targets 8, 3 and 0) and three fixed ones
 *    (dW in chunks of one size and a smaller last one), backward
 *    accumulating into random dinp/dweight.
 *    Tolerance: every output is a sum of n products (n = C*K*K forward,
 *    O*K*K/stride^2-ish for dX, N*OH*OW for dW). Any fp32 summation order,
 *    FMA or not, blocked or not, is within gamma_n * sum|terms| of the exact
 *    sum, gamma_n = n*u/(1 - n*u), u = 2^-24 (Higham, Accuracy and Stability,
 *    3.1); the double reference is exact to far below that. So each backend
 *    must be within gamma_n * S of the reference, where S = the same conv of
 *    |x| and |w| (computed by the reference), and the two backends within
 *    2 gamma_n * S of each other (accumulation adds one rounding: + u*|y|). A
 *    layout or index bug gives errors of order S, thousands of times the bound.
 * 2. Thread count: the same conv (ResNet-18 layer shapes, batch 8 and 13)
 *    and the same ResNet-18 training step (loss and every parameter gradient)
 *    at 1, 2 and 3 OpenMP threads: bitwise equal, both backends (the suite's
 *    promise; oneDNN's dW keeps it by its fixed sample chunks). The caller's
 *    thread count survives the calls (the chunks set their own to 1).
 *    CBNN_STEP_BATCH=64 runs the step at the benchmark's batch.
 * Skips (exit 77) only in a build without oneDNN. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ops.h"
#include "ops/conv2d_onednn.h"
#include "rng.h"
#include "testutil.h"

static const double U = 5.9604644775390625e-08; /* 2^-24 */

static double gamma_n(double n) { return n * U / (1.0 - n * U); }

static real *copy_of(const real *x, size_t n) {
    real *y = tu_alloc(n);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static void abs_of(real *y, const real *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = (real)fabs((double)x[i]);
}

/* max over i of |a-b| / (k * S), S the abs-conv bound (tiny floor: S = 0 only
 * where every term is 0, and then both sides must be exactly 0) */
static double worst(const real *a, const real *b, const real *base, const real *S, size_t n, double k) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        double lim = k * (double)S[i] + 2.01 * U * fabs((double)base[i]) + 1e-30;
        if (e / lim > w) w = e / lim;
    }
    return w;
}

/* one random shape, both backends and the reference */
static void check_shape(const ConvDims *d0, Rng *r) {
    ConvDims d = *d0;
    const size_t nx = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * d.KH * d.KW;
    const size_t ny = (size_t)d.N * d.O * d.OH * d.OW;
    real *x = tu_alloc_rand(nx, r), *w = tu_alloc_rand(nw, r), *g = tu_alloc_rand(ny, r);
    real *dx0 = tu_alloc_rand(nx, r), *dw0 = tu_alloc_rand(nw, r); /* what backward accumulates into */
    real *ax = tu_alloc(nx), *aw = tu_alloc(nw), *ag = tu_alloc(ny);
    abs_of(ax, x, nx), abs_of(aw, w, nw), abs_of(ag, g, ny);
    real *scratch = tu_alloc(conv2d_scratch_size(&d) + 1);

    /* the reference and the abs bounds S */
    real *y_ref = tu_alloc(ny), *y_S = tu_alloc(ny);
    conv2d_forward_ref(y_ref, x, w, &d);
    conv2d_forward_ref(y_S, ax, aw, &d);
    real *dx_ref = copy_of(dx0, nx), *dw_ref = copy_of(dw0, nw), *dx_S = tu_alloc(nx), *dw_S = tu_alloc(nw);
    conv2d_backward_ref(dx_ref, dw_ref, g, x, w, &d);
    conv2d_backward_ref(dx_S, dw_S, ag, ax, aw, &d);

    real *y[2], *dx[2], *dw[2];
    for (int b = 0; b < 2; b++) {
        d.backend = b ? FP32_CONV_ONEDNN : FP32_CONV_NATIVE;
        y[b] = tu_alloc(ny);
        dx[b] = copy_of(dx0, nx);
        dw[b] = copy_of(dw0, nw);
        conv2d_forward(y[b], x, w, &d, scratch);
        conv2d_backward(dx[b], dw[b], g, x, w, &d, scratch);
    }
    /* terms per output: forward C*K*K; dX at most O*K*K; dW N*OH*OW */
    const double nf = (double)d.C * d.KH * d.KW, nd = (double)d.O * d.KH * d.KW, nwg = (double)d.N * d.OH * d.OW;
    char s[160];
    snprintf(s, sizeof s, "N%d C%d %dx%d O%d K%d s%d p%d", d.N, d.C, d.H, d.W, d.O, d.KH, d.stride, d.pad);
    for (int b = 0; b < 2; b++) {
        const char *who = b ? "onednn" : "native";
        double ef = worst(y[b], y_ref, y_ref, y_S, ny, gamma_n(nf));
        double ed = worst(dx[b], dx_ref, dx_ref, dx_S, nx, gamma_n(nd));
        double ew = worst(dw[b], dw_ref, dw_ref, dw_S, nw, gamma_n(nwg));
        CHECK(ef <= 1 && ed <= 1 && ew <= 1, "%s %s vs reference: err/bound fwd %.3g dX %.3g dW %.3g", who, s, ef,
              ed, ew);
    }
    double ef = worst(y[1], y[0], y_ref, y_S, ny, 2 * gamma_n(nf));
    double ed = worst(dx[1], dx[0], dx_ref, dx_S, nx, 2 * gamma_n(nd));
    double ew = worst(dw[1], dw[0], dw_ref, dw_S, nw, 2 * gamma_n(nwg));
    CHECK(ef <= 1 && ed <= 1 && ew <= 1, "onednn vs native %s: err/bound fwd %.3g dX %.3g dW %.3g", s, ef, ed, ew);
    /* only one of dinp / dweight asked for: the other stays untouched */
    d.backend = FP32_CONV_ONEDNN;
    real *dxa = copy_of(dx0, nx), *dwa = copy_of(dw0, nw);
    conv2d_backward(dxa, NULL, g, x, w, &d, scratch);
    conv2d_backward(NULL, dwa, g, x, w, &d, scratch);
    CHECK(!memcmp(dxa, dx[1], nx * sizeof(real)) && !memcmp(dwa, dw[1], nw * sizeof(real)),
          "onednn %s: dX alone / dW alone differ from both together", s);
    free(dxa), free(dwa);
    for (int b = 0; b < 2; b++) free(y[b]), free(dx[b]), free(dw[b]);
    free(x), free(w), free(g), free(dx0), free(dw0), free(ax), free(aw), free(ag), free(scratch);
    free(y_ref), free(y_S), free(dx_ref), free(dw_ref), free(dx_S), free(dw_S);
}

static void random_shapes(void) {
    Rng r = rng_stream(17, 0, 1, 0);
    static const int KS[3] = {1, 3, 7};
    int done = 0;
    for (int t = 0; t < 40; t++) {
        /* the dW chunk target: the default, a small one, none (one primitive) */
        static const int CH[3] = {CONV2D_ONEDNN_WGRAD_CHUNKS, 3, 0};
        conv2d_onednn_set_wgrad_chunks(CH[t % 3]);
        const int K = KS[rng_below(&r, 3)], s = 1 + (int)rng_below(&r, 2), p = (int)rng_below(&r, (uint32_t)K / 2 + 2);
        const int H = 1 + (int)rng_below(&r, 13), W = 1 + (int)rng_below(&r, 13);
        const int N = t % 2 ? 1 + (int)rng_below(&r, 5) : 9 + (int)rng_below(&r, 12);
        ConvDims d = conv_dims(N, 1 + (int)rng_below(&r, 9), H, W, 1 + (int)rng_below(&r, 11), K, s, p);
        if (d.OH <= 0 || d.OW <= 0) continue;
        check_shape(&d, &r);
        done++;
    }
    /* two shapes of the net itself: the stem and a strided 3x3 (dW in two
     * chunks of 6 and 5 samples) */
    conv2d_onednn_set_wgrad_chunks(CONV2D_ONEDNN_WGRAD_CHUNKS);
    ConvDims a = conv_dims(2, 3, 32, 32, 64, 3, 1, 1), b = conv_dims(11, 64, 16, 16, 128, 3, 2, 1);
    check_shape(&a, &r), check_shape(&b, &r);
    /* dW in 7 chunks of 2, 2, ..., 1 samples (1872 pixels: 7 of >= 256) */
    ConvDims c = conv_dims(13, 5, 12, 12, 7, 3, 1, 1);
    check_shape(&c, &r);
    CHECK(done >= 30, "only %d random shapes had outputs", done);
}

/* |a-b| / max(|a|, |b|) over n, and the count of differing elements */
static double max_rel(const real *a, const real *b, size_t n, size_t *differ) {
    double m = 0;
    *differ = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == b[i]) continue;
        (*differ)++;
        double den = fmax(fabs((double)a[i]), fabs((double)b[i]));
        if (fabs((double)a[i] - (double)b[i]) / den > m) m = fabs((double)a[i] - (double)b[i]) / den;
    }
    return m;
}

/* max |a-b| / max |b| over n */
static double rel_to_max(const real *a, const real *b, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - (double)b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? e / m : e;
}

enum { NT = 3 }; /* thread counts 1..NT */

/* sets the thread count to t and checks that a backend call left it so */
static void set_threads(int t) { omp_set_num_threads(t); }
static void still_threads(int t, const char *who) {
    CHECK(omp_get_max_threads() == t, "%s: the caller's thread count %d became %d", who, t, omp_get_max_threads());
}

/* conv products at 1..NT threads, per backend: bitwise equal (what differs
 * is printed first, for the record) */
static void threads_conv(int backend) {
    const char *who = backend == FP32_CONV_ONEDNN ? "onednn" : "native";
    static const int SH[4][7] = {{8, 64, 32, 64, 3, 1, 1},
                                 {8, 128, 16, 128, 3, 1, 1},
                                 {8, 128, 16, 256, 3, 2, 1},
                                 {13, 64, 16, 96, 1, 2, 0}};
    Rng r = rng_stream(17, 0, 2, 0);
    for (int k = 0; k < 4; k++) {
        ConvDims d = conv_dims(SH[k][0], SH[k][1], SH[k][2], SH[k][2], SH[k][3], SH[k][4], SH[k][5], SH[k][6]);
        const size_t nx = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * d.KH * d.KW;
        const size_t ny = (size_t)d.N * d.O * d.OH * d.OW;
        real *x = tu_alloc_rand(nx, &r), *w = tu_alloc_rand(nw, &r), *g = tu_alloc_rand(ny, &r);
        real *scratch = tu_alloc(conv2d_scratch_size(&d));
        real *y[NT], *dx[NT], *dw[NT];
        d.backend = backend;
        for (int t = 0; t < NT; t++) {
            set_threads(t + 1);
            y[t] = tu_alloc(ny), dx[t] = tu_alloc(nx), dw[t] = tu_alloc(nw);
            conv2d_forward(y[t], x, w, &d, scratch);
            conv2d_backward(dx[t], dw[t], g, x, w, &d, scratch);
            still_threads(t + 1, who);
        }
        for (int t = 1; t < NT; t++) {
            size_t nf, nd, nwd;
            max_rel(y[0], y[t], ny, &nf), max_rel(dx[0], dx[t], nx, &nd), max_rel(dw[0], dw[t], nw, &nwd);
            printf("threads 1 vs %d, %s conv N%d C%d %dx%d O%d K%d s%d: differing fwd %zu/%zu, dX %zu/%zu, dW %zu/%zu "
                   "(max |diff| / max |dW| %.2g)\n",
                   t + 1, who, d.N, d.C, d.H, d.W, d.O, d.KH, d.stride, nf, ny, nd, nx, nwd, nw,
                   rel_to_max(dw[0], dw[t], nw));
            CHECK(nf == 0 && nd == 0 && nwd == 0, "%s conv depends on the thread count (1 vs %d, C%d O%d)", who, t + 1,
                  d.C, d.O);
        }
        for (int t = 0; t < NT; t++) free(y[t]), free(dx[t]), free(dw[t]);
        free(x), free(w), free(g), free(scratch);
    }
}

/* one ResNet-18 training step (forward, loss, backward) at 1..NT threads */
static void threads_step(int backend) {
    const char *who = backend == FP32_CONV_ONEDNN ? "onednn" : "native";
    enum { K = 10 };
    /* CBNN_STEP_BATCH: the batch of the step (default 8; bench/README.md
     * quotes it at 64, the benchmark's batch) */
    const char *eb = getenv("CBNN_STEP_BATCH");
    const int N = eb && atoi(eb) > 0 ? atoi(eb) : 8;
    Model m;
    char err[256];
    CHECK(model_build(&m, "cifar_resnet18", CONV_FP32, 3, 32, 32, K, err, sizeof err) == 0, "build: %s", err);
    m.fp32_conv = backend;
    CHECK(model_alloc(&m, N) == 0, "model_alloc");
    Rng r = rng_stream(17, 0, 3, 0);
    real *x = tu_alloc_rand((size_t)N * 3 * 32 * 32, &r);
    int32_t *labels = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) labels[i] = (int32_t)rng_below(&r, K);
    real *probs = tu_alloc((size_t)N * K), *grads[NT];
    double loss[NT];
    for (int t = 0; t < NT; t++) {
        set_threads(t + 1);
        model_init_params(&m, 5);
        CHECK(model_run(&m, x, N, 1) == 0, "run: %s", m.run_err);
        loss[t] = softmax_ce_forward(probs, model_output(&m, 0), labels, N, K);
        softmax_ce_backward(model_output_grad(&m, 0), probs, labels, N, K, 1);
        model_backward_outputs(&m);
        grads[t] = copy_of(m.grads, m.n_params);
    }
    for (int t = 1; t < NT; t++) {
        size_t differ;
        max_rel(grads[0], grads[t], m.n_params, &differ);
        printf("threads 1 vs %d, %s ResNet-18 step (N=%d): loss %.17g vs %.17g (%s), gradients differing %zu/%zu "
               "(max |diff| / max |grad| %.2g)\n",
               t + 1, who, N, loss[0], loss[t], loss[0] == loss[t] ? "bitwise" : "differ", differ, m.n_params,
               rel_to_max(grads[0], grads[t], m.n_params));
        CHECK(loss[0] == loss[t] && differ == 0, "%s step depends on the thread count (1 vs %d)", who, t + 1);
    }
    for (int t = 0; t < NT; t++) free(grads[t]);
    free(x), free(probs), free(labels);
    model_free(&m);
}

int main(void) {
    if (!conv2d_onednn_available()) {
        printf("SKIP: %s\n", conv2d_backend_error(FP32_CONV_ONEDNN));
        return 77;
    }
    CHECK(conv2d_backend_error(FP32_CONV_ONEDNN) == NULL && conv2d_backend_error(FP32_CONV_NATIVE) == NULL,
          "this build has oneDNN: both backends available");
    const int T = omp_get_max_threads();
    random_shapes();
    /* more threads than processors still splits the work (oversubscribed) */
    for (int b = 0; b < 2; b++) threads_conv(b ? FP32_CONV_ONEDNN : FP32_CONV_NATIVE);
    for (int b = 0; b < 2; b++) threads_step(b ? FP32_CONV_ONEDNN : FP32_CONV_NATIVE);
    omp_set_num_threads(T);
    conv2d_onednn_release();
    return tu_finish("conv_onednn");
}
