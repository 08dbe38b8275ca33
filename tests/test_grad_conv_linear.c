/* Finite-difference gradient checks for conv2d (fast and reference) and
 * linear, on the double engine (`real` is double here).
 *
 * Loss L = sum(out * R) with a fixed random R, so dL/dout = R and the analytic
 * gradients are one backward call from zero. The numeric gradient of one
 * parameter x_i is the central difference
 *     (L(x_i + h) - L(x_i - h)) / 2h,   h = 1e-6
 * computed as sum_j (out+_j - out-_j) * R_j: outputs that x_i does not touch
 * are bitwise identical in both evaluations and drop out exactly, so the
 * rounding noise comes only from the few outputs x_i feeds. Both ops are
 * linear in each of their inputs, so there is no truncation error either and
 * the tolerance can be tight.
 *
 * Hand-picked edge shapes plus a few random ones. Tensors of up to
 * MAX_CHECKED elements are checked element by element in full; larger ones
 * on a random subset.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "testutil.h"

#if !REAL_IS_DOUBLE
#error "test_grad_conv_linear must link the double engine (cbnn_f64)"
#endif

#define FD_H 1e-6
#define TOL 1e-6
#define MAX_CHECKED 300 /* per tensor; tensors up to this size are checked in full */

static long elements_checked = 0;

/* relative error with a small floor, so that exact-zero gradients (inputs a
 * strided conv never reads) must come out as (near) zero on both sides */
static double grad_err(double analytic, double numeric) {
    double den = fmax(fmax(fabs(analytic), fabs(numeric)), 1e-2);
    return fabs(analytic - numeric) / den;
}

/* The op under test, as "recompute out from the current parameters". */
typedef void (*ForwardFn)(void *ctx, real *out);

/* numeric dL/dparam[i] for the chosen i, against analytic[i] */
static void check_tensor(const char *what, const char *name, real *param, size_t n, const real *analytic,
                         ForwardFn fwd, void *ctx, real *out_p, real *out_m, const real *R, size_t nout,
                         Rng *pick) {
    size_t count = n <= MAX_CHECKED ? n : MAX_CHECKED;
    double worst = 0.0;
    size_t worst_i = 0;
    for (size_t t = 0; t < count; t++) {
        size_t i = n <= MAX_CHECKED ? t : (size_t)rng_below(pick, n);
        real saved = param[i];
        param[i] = saved + FD_H;
        fwd(ctx, out_p);
        param[i] = saved - FD_H;
        fwd(ctx, out_m);
        param[i] = saved;
        double dl = 0.0;
        for (size_t j = 0; j < nout; j++) dl += ((double)out_p[j] - (double)out_m[j]) * (double)R[j];
        double numeric = dl / (2.0 * FD_H);
        double e = grad_err((double)analytic[i], numeric);
        elements_checked++;
        if (!(e <= worst)) {
            worst = e;
            worst_i = i;
        }
    }
    CHECK(worst < TOL, "%s %s: max rel err %.3g at element %zu (analytic %.10g)", what, name, worst, worst_i,
          (double)analytic[worst_i]);
}

/* ---------------------------------------------------------------- conv2d */

typedef struct {
    ConvDims d;
    int use_ref;
    real *inp, *weight, *scratch;
} ConvCtx;

static void conv_fwd(void *p, real *out) {
    ConvCtx *c = (ConvCtx *)p;
    if (c->use_ref) conv2d_forward_ref(out, c->inp, c->weight, &c->d);
    else conv2d_forward(out, c->inp, c->weight, &c->d, c->scratch);
}

typedef struct { int N, C, H, W, O, K, stride, pad; } ConvCase;

static void test_conv_case(const ConvCase *cc, uint64_t k) {
    char name[128];
    snprintf(name, sizeof(name), "N=%d C=%d H=%d W=%d O=%d K=%d s=%d p=%d", cc->N, cc->C, cc->H, cc->W, cc->O,
             cc->K, cc->stride, cc->pad);
    ConvCtx ctx;
    ctx.d = conv_dims(cc->N, cc->C, cc->H, cc->W, cc->O, cc->K, cc->stride, cc->pad);
    const ConvDims *d = &ctx.d;
    size_t nin = (size_t)d->N * d->C * d->H * d->W;
    size_t nw = (size_t)d->O * d->C * d->KH * d->KW;
    size_t nout = (size_t)d->N * d->O * d->OH * d->OW;
    Rng r = rng_stream(11, RNG_TEST, k, 0);
    ctx.inp = tu_alloc_rand(nin, &r);
    ctx.weight = tu_alloc_rand(nw, &r);
    ctx.scratch = tu_alloc(conv2d_scratch_size(d));
    real *R = tu_alloc_rand(nout, &r);
    real *out_p = tu_alloc(nout), *out_m = tu_alloc(nout);

    for (int use_ref = 0; use_ref < 2; use_ref++) {
        ctx.use_ref = use_ref;
        real *dinp = tu_alloc(nin), *dw = tu_alloc(nw); /* zeroed: backward accumulates */
        if (use_ref) conv2d_backward_ref(dinp, dw, R, ctx.inp, ctx.weight, d);
        else conv2d_backward(dinp, dw, R, ctx.inp, ctx.weight, d, ctx.scratch);
        Rng pick = rng_stream(12, RNG_TEST, k, (uint64_t)use_ref);
        const char *kind = use_ref ? "conv_ref" : "conv";
        char what[64];
        snprintf(what, sizeof(what), "%s dinp", kind);
        check_tensor(what, name, ctx.inp, nin, dinp, conv_fwd, &ctx, out_p, out_m, R, nout, &pick);
        snprintf(what, sizeof(what), "%s dweight", kind);
        check_tensor(what, name, ctx.weight, nw, dw, conv_fwd, &ctx, out_p, out_m, R, nout, &pick);
        free(dinp);
        free(dw);
    }
    free(ctx.inp); free(ctx.weight); free(ctx.scratch); free(R); free(out_p); free(out_m);
}

static void test_conv(void) {
    static const ConvCase cases[] = {
        /* N  C  H   W  O  K  s  p */
        {1, 2, 5, 5, 3, 3, 1, 1},     /* batch 1 */
        {2, 3, 7, 6, 4, 3, 2, 1},     /* stride 2, odd/non-square */
        {2, 3, 6, 9, 2, 5, 2, 2},
        {1, 4, 5, 7, 3, 1, 1, 0},     /* pointwise GEMM path */
        {2, 3, 7, 7, 2, 1, 2, 0},     /* 1x1 stride 2: unread inputs have zero gradient */
        {1, 2, 4, 5, 3, 7, 1, 3},     /* kernel larger than the image */
        {2, 5, 9, 8, 6, 3, 2, 3},     /* pad 3 with K 3: outputs that only see padding */
        {1, 3, 6, 4, 5, 3, 1, 0},     /* no padding */
        {2, 16, 12, 10, 12, 3, 1, 1}, /* larger: random subset */
        {2, 9, 11, 13, 7, 5, 2, 2},
    };
    uint64_t k = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) test_conv_case(&cases[i], k++);

    /* and a few drawn at random */
    Rng r = rng_stream(15, RNG_TEST, 0, 0);
    static const int ks[] = {1, 3, 5, 7};
    for (int done = 0; done < 6;) {
        ConvCase c;
        c.N = 1 + (int)rng_below(&r, 2);
        c.C = 1 + (int)rng_below(&r, 6);
        c.H = 1 + (int)rng_below(&r, 10);
        c.W = 1 + (int)rng_below(&r, 10);
        c.O = 1 + (int)rng_below(&r, 6);
        c.K = ks[rng_below(&r, 4)];
        c.stride = 1 + (int)rng_below(&r, 2);
        c.pad = (int)rng_below(&r, 4);
        if (c.H + 2 * c.pad < c.K || c.W + 2 * c.pad < c.K) continue;
        test_conv_case(&c, k++);
        done++;
    }
}

/* ---------------------------------------------------------------- linear */

typedef struct {
    int N, IN, OUT;
    int use_ref;
    real *inp, *weight, *bias;
} LinCtx;

static void lin_fwd(void *p, real *out) {
    LinCtx *c = (LinCtx *)p;
    if (c->use_ref) linear_forward_ref(out, c->inp, c->weight, c->bias, c->N, c->IN, c->OUT);
    else linear_forward(out, c->inp, c->weight, c->bias, c->N, c->IN, c->OUT);
}

static void test_linear_case(int N, int IN, int OUT, uint64_t k) {
    char name[64];
    snprintf(name, sizeof(name), "N=%d IN=%d OUT=%d", N, IN, OUT);
    LinCtx ctx = {N, IN, OUT, 0, NULL, NULL, NULL};
    size_t nin = (size_t)N * IN, nw = (size_t)OUT * IN, nout = (size_t)N * OUT;
    Rng r = rng_stream(13, RNG_TEST, k, 0);
    ctx.inp = tu_alloc_rand(nin, &r);
    ctx.weight = tu_alloc_rand(nw, &r);
    ctx.bias = tu_alloc_rand(OUT, &r);
    real *R = tu_alloc_rand(nout, &r);
    real *out_p = tu_alloc(nout), *out_m = tu_alloc(nout);
    for (int use_ref = 0; use_ref < 2; use_ref++) {
        ctx.use_ref = use_ref;
        real *dinp = tu_alloc(nin), *dw = tu_alloc(nw), *db = tu_alloc(OUT);
        if (use_ref) linear_backward_ref(dinp, dw, db, R, ctx.inp, ctx.weight, N, IN, OUT);
        else linear_backward(dinp, dw, db, R, ctx.inp, ctx.weight, N, IN, OUT);
        Rng pick = rng_stream(14, RNG_TEST, k, (uint64_t)use_ref);
        const char *kind = use_ref ? "linear_ref" : "linear";
        char what[64];
        snprintf(what, sizeof(what), "%s dinp", kind);
        check_tensor(what, name, ctx.inp, nin, dinp, lin_fwd, &ctx, out_p, out_m, R, nout, &pick);
        snprintf(what, sizeof(what), "%s dweight", kind);
        check_tensor(what, name, ctx.weight, nw, dw, lin_fwd, &ctx, out_p, out_m, R, nout, &pick);
        snprintf(what, sizeof(what), "%s dbias", kind);
        check_tensor(what, name, ctx.bias, OUT, db, lin_fwd, &ctx, out_p, out_m, R, nout, &pick);
        free(dinp); free(dw); free(db);
    }
    free(ctx.inp); free(ctx.weight); free(ctx.bias); free(R); free(out_p); free(out_m);
}

static void test_linear(void) {
    static const int shapes[][3] = {{1, 1, 1}, {1, 7, 3}, {3, 17, 10}, {5, 33, 9}, {16, 512, 10}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        test_linear_case(shapes[i][0], shapes[i][1], shapes[i][2], i);
}

int main(void) {
    test_conv();
    test_linear();
    printf("grad_conv_linear: %ld gradient elements compared with finite differences\n", elements_checked);
    return tu_finish("grad_conv_linear");
}
