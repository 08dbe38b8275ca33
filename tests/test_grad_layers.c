/* Gradient and value checks of the layer ops other than conv/linear:
 * batchnorm, hardtanh, relu, max/avg/global pools, residual add, option-A
 * shortcut and softmax cross-entropy.
 *
 * Links the f64 engine. For every op and every input/parameter, the analytic
 * backward of the scalar L = sum(out * R) (R fixed random) is compared with a
 * central finite difference (L(x+h) - L(x-h)) / 2h, h = 1e-6. Gradients are
 * pre-filled with random values and the pre-fill subtracted afterwards, which
 * also checks that backward accumulates (+=) rather than overwrites.
 * Then value checks against numbers worked out independently, and a check
 * that results are bitwise identical with 1 and 2 OpenMP threads. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "testutil.h"

#define FD_H 1e-6
/* |fd - analytic| / max(1, |analytic|). In double with h = 1e-6 the truncation
 * error is ~1e-12 and the rounding error ~1e-16 * |L| / h ~ 1e-9 for our sizes. */
#define FD_TOL 1e-6

#if !REAL_IS_DOUBLE
#error "test_grad_layers must link the f64 engine (finite differences need double)"
#endif

/* ------------------------------------------------------------------ helpers */

enum { OP_BN, OP_HARDTANH, OP_RELU, OP_MAXPOOL, OP_AVGPOOL, OP_GAP, OP_ADD, OP_SHORTCUT, OP_CE, OP_COUNT };
static const char *op_names[OP_COUNT] = {"batchnorm", "hardtanh", "relu", "maxpool", "avgpool",
                                         "global_avgpool", "add", "shortcut_a", "softmax_ce"};
static double op_worst[OP_COUNT];
static int op_fd_checks[OP_COUNT];

static real *alloc_r(size_t n) {
    real *p = calloc(n ? n : 1, sizeof(real));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static real *copy_r(const real *x, size_t n) {
    real *p = alloc_r(n);
    memcpy(p, x, n * sizeof(real));
    return p;
}

static double dot(const real *a, const real *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

/* g -= g0: what backward added on top of the random pre-fill */
static void sub_prefill(real *g, const real *g0, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] -= g0[i];
}

typedef double (*LossFn)(void *ctx);

/* central finite differences of f w.r.t. every element of x, against the analytic gradient g */
static void fd_check(int op, const char *what, real *x, size_t n, const real *g, LossFn f, void *ctx) {
    double worst = 0.0, fd_at = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        real xi = x[i];
        x[i] = xi + FD_H;
        double lp = f(ctx);
        x[i] = xi - FD_H;
        double lm = f(ctx);
        x[i] = xi;
        double fd = (lp - lm) / (2.0 * FD_H);
        double den = fabs((double)g[i]) > 1.0 ? fabs((double)g[i]) : 1.0;
        double e = fabs(fd - (double)g[i]) / den;
        if (!(e <= worst)) { worst = e; at = i; fd_at = fd; }
    }
    f(ctx); /* leave the op's saved state as it was for the unperturbed input */
    CHECK(worst <= FD_TOL, "%s %s: max fd error %.3e at %zu (fd %.12g, analytic %.12g)", op_names[op], what,
          worst, at, fd_at, n ? (double)g[at] : 0.0);
    if (!(worst <= op_worst[op])) op_worst[op] = worst;
    op_fd_checks[op]++;
}

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (fabs(b) > 1.0 ? fabs(b) : 1.0); }

/* inputs for piecewise-linear ops: U(lo, hi) but never within `gap` of a kink,
 * so that x +- h stays on one linear piece */
static void fill_away_from(real *x, size_t n, double lo, double hi, const double *kinks, int nk, double gap,
                           Rng *r) {
    for (size_t i = 0; i < n; i++) {
        for (;;) {
            double v = lo + (hi - lo) * rng_uniform(r);
            int ok = 1;
            for (int k = 0; k < nk; k++)
                if (fabs(v - kinks[k]) < gap) ok = 0;
            if (ok) { x[i] = (real)v; break; }
        }
    }
}

/* distinct values 0.01 apart in random order: no ties, so max-pool argmaxes
 * cannot flip under a 1e-6 perturbation */
static void fill_distinct(real *x, size_t n, Rng *r) {
    int32_t *perm = malloc((n ? n : 1) * sizeof(int32_t));
    rng_permutation(r, perm, (long)n);
    for (size_t i = 0; i < n; i++) x[i] = (real)(0.01 * perm[i] - 0.005 * (double)n);
    free(perm);
}

static uint64_t stream_key = 0; /* a fresh test stream per case */
static Rng next_rng(void) { return rng_stream(1234, RNG_TEST, stream_key++, 0); }

/* ---------------------------------------------------------------- batchnorm */

typedef struct {
    BNDims d;
    real *inp, *gamma, *beta, *out, *mean, *rstd, *rm, *rv, *R;
} BNCtx;

static double bn_loss(void *p) {
    BNCtx *c = p;
    batchnorm_forward_train(c->out, c->mean, c->rstd, c->rm, c->rv, c->inp, c->gamma, c->beta, &c->d);
    return dot(c->out, c->R, (size_t)c->d.N * c->d.C * c->d.HW);
}

static void test_bn_grad(int N, int C, int HW) {
    Rng r = next_rng();
    size_t n = (size_t)N * C * HW;
    BNCtx c = {.d = {N, C, HW, 1e-5, 0.1}};
    c.inp = alloc_r(n); c.out = alloc_r(n); c.R = alloc_r(n);
    c.gamma = alloc_r(C); c.beta = alloc_r(C); c.mean = alloc_r(C); c.rstd = alloc_r(C);
    c.rm = alloc_r(C); c.rv = alloc_r(C);
    tu_fill_uniform(c.inp, n, -2, 2, &r);
    for (size_t i = 0; i < n; i++) c.inp[i] += (real)(0.5 * ((i / HW) % C)); /* per-channel offsets */
    tu_fill_uniform(c.gamma, C, 0.5, 1.5, &r);
    tu_fill_uniform(c.beta, C, -0.5, 0.5, &r);
    tu_fill_uniform(c.R, n, -1, 1, &r);
    for (int i = 0; i < C; i++) c.rv[i] = 1;

    real *dinp = alloc_r(n), *dgamma = alloc_r(C), *dbeta = alloc_r(C);
    tu_fill_uniform(dinp, n, -1, 1, &r);
    tu_fill_uniform(dgamma, C, -1, 1, &r);
    tu_fill_uniform(dbeta, C, -1, 1, &r);
    real *dinp0 = copy_r(dinp, n), *dgamma0 = copy_r(dgamma, C), *dbeta0 = copy_r(dbeta, C);

    bn_loss(&c);
    batchnorm_backward(dinp, dgamma, dbeta, c.R, c.inp, c.mean, c.rstd, c.gamma, &c.d);
    sub_prefill(dinp, dinp0, n);
    sub_prefill(dgamma, dgamma0, C);
    sub_prefill(dbeta, dbeta0, C);

    char what[64];
    snprintf(what, sizeof what, "[%d,%d,%d] dinp", N, C, HW);
    fd_check(OP_BN, what, c.inp, n, dinp, bn_loss, &c);
    snprintf(what, sizeof what, "[%d,%d,%d] dgamma", N, C, HW);
    fd_check(OP_BN, what, c.gamma, C, dgamma, bn_loss, &c);
    snprintf(what, sizeof what, "[%d,%d,%d] dbeta", N, C, HW);
    fd_check(OP_BN, what, c.beta, C, dbeta, bn_loss, &c);

    /* NULL dinp (first layer) still produces the parameter gradients */
    real *dg2 = alloc_r(C), *db2 = alloc_r(C);
    batchnorm_backward(NULL, dg2, db2, c.R, c.inp, c.mean, c.rstd, c.gamma, &c.d);
    CHECK(tu_max_rel_err(dg2, dgamma, C) < 1e-14 && tu_max_rel_err(db2, dbeta, C) < 1e-14,
          "batchnorm backward with NULL dinp differs");

    free(c.inp); free(c.out); free(c.R); free(c.gamma); free(c.beta); free(c.mean); free(c.rstd);
    free(c.rm); free(c.rv); free(dinp); free(dgamma); free(dbeta); free(dinp0); free(dgamma0);
    free(dbeta0); free(dg2); free(db2);
}

/* running statistics after two training batches, and eval mode, against plain loops */
static void test_bn_values(void) {
    enum { N = 3, C = 2, HW = 4, M = N * HW };
    const double eps = 1e-5, mom = 0.1;
    BNDims d = {N, C, HW, (real)eps, (real)mom, NULL};
    Rng r = next_rng();
    real x[2][N * C * HW], out[N * C * HW], gamma[C], beta[C], mean[C], rstd[C];
    real rm[C] = {0, 0}, rv[C] = {1, 1}; /* PyTorch's initial running statistics */
    tu_fill_uniform(&x[0][0], 2 * N * C * HW, -3, 5, &r);
    tu_fill_uniform(gamma, C, 0.5, 2, &r);
    tu_fill_uniform(beta, C, -1, 1, &r);

    double erm[C] = {0, 0}, erv[C] = {1, 1};
    double worst = 0.0;
    for (int b = 0; b < 2; b++) {
        batchnorm_forward_train(out, mean, rstd, rm, rv, x[b], gamma, beta, &d);
        for (int c = 0; c < C; c++) {
            double s = 0, ss = 0;
            for (int n = 0; n < N; n++)
                for (int i = 0; i < HW; i++) s += x[b][(n * C + c) * HW + i];
            double mu = s / M;
            for (int n = 0; n < N; n++)
                for (int i = 0; i < HW; i++) {
                    double t = x[b][(n * C + c) * HW + i] - mu;
                    ss += t * t;
                }
            double var_b = ss / M, var_u = ss / (M - 1);
            erm[c] = (1 - mom) * erm[c] + mom * mu;
            erv[c] = (1 - mom) * erv[c] + mom * var_u;
            CHECK(near(mean[c], mu, 1e-13) && near(rstd[c], 1 / sqrt(var_b + eps), 1e-13),
                  "bn saved mean/rstd, batch %d channel %d", b, c);
            for (int n = 0; n < N; n++)
                for (int i = 0; i < HW; i++) {
                    int k = (n * C + c) * HW + i;
                    double e = (x[b][k] - mu) / sqrt(var_b + eps) * gamma[c] + beta[c];
                    double err = fabs(out[k] - e);
                    if (err > worst) worst = err;
                }
        }
    }
    CHECK(worst < 1e-12, "bn train output vs plain loops: err %.3e", worst);
    for (int c = 0; c < C; c++)
        CHECK(near(rm[c], erm[c], 1e-13) && near(rv[c], erv[c], 1e-13),
              "bn running stats channel %d: got (%.15g, %.15g), want (%.15g, %.15g)", c, rm[c], rv[c], erm[c],
              erv[c]);

    /* eval: normalise by the running statistics, batch statistics ignored */
    batchnorm_forward_eval(out, x[0], gamma, beta, rm, rv, &d);
    worst = 0.0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) {
                int k = (n * C + c) * HW + i;
                double e = (x[0][k] - erm[c]) / sqrt(erv[c] + eps) * gamma[c] + beta[c];
                if (fabs(out[k] - e) > worst) worst = fabs(out[k] - e);
            }
    CHECK(worst < 1e-12, "bn eval output vs plain loops: err %.3e", worst);

    /* one value per channel (BatchNorm1d, batch 1): no NaN; x - mean = 0 so out = beta,
     * and the unbiased variance falls back to the biased one, 0 */
    BNDims d1 = {1, 3, 1, 1e-5, 0.1, NULL};
    real x1[3] = {0.3, -2, 7}, g1[3] = {1, 2, 3}, b1[3] = {0.1, 0.2, 0.3}, o1[3], m1[3], s1[3];
    real rm1[3] = {0, 0, 0}, rv1[3] = {1, 1, 1}, dx1[3] = {0, 0, 0}, dg1[3] = {0, 0, 0}, db1[3] = {0, 0, 0};
    real dy1[3] = {1, -1, 0.5};
    batchnorm_forward_train(o1, m1, s1, rm1, rv1, x1, g1, b1, &d1);
    batchnorm_backward(dx1, dg1, db1, dy1, x1, m1, s1, g1, &d1);
    for (int c = 0; c < 3; c++) {
        CHECK(o1[c] == b1[c], "bn M=1 out %g != beta %g", o1[c], b1[c]);
        CHECK(near(rm1[c], 0.1 * x1[c], 1e-15) && near(rv1[c], 0.9, 1e-15), "bn M=1 running stats %g %g",
              rm1[c], rv1[c]);
        CHECK(dx1[c] == 0 && dg1[c] == 0 && db1[c] == dy1[c], "bn M=1 backward %g %g %g", dx1[c], dg1[c],
              db1[c]);
    }
}

/* -------------------------------------------------------------- activations */

typedef struct {
    int relu;
    size_t n;
    real *inp, *out, *R;
} ActCtx;

static double act_loss(void *p) {
    ActCtx *c = p;
    if (c->relu) relu_forward(c->out, c->inp, c->n);
    else hardtanh_forward(c->out, c->inp, c->n);
    return dot(c->out, c->R, c->n);
}

static void test_act_grad(int relu, size_t n) {
    Rng r = next_rng();
    ActCtx c = {relu, n, alloc_r(n), alloc_r(n), alloc_r(n)};
    const double kinks_relu[1] = {0}, kinks_ht[2] = {-1, 1};
    if (relu) fill_away_from(c.inp, n, -2, 2, kinks_relu, 1, 1e-3, &r);
    else fill_away_from(c.inp, n, -2, 2, kinks_ht, 2, 1e-3, &r);
    tu_fill_uniform(c.R, n, -1, 1, &r);
    real *dinp = alloc_r(n);
    tu_fill_uniform(dinp, n, -1, 1, &r);
    real *dinp0 = copy_r(dinp, n);

    act_loss(&c);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double x = c.inp[i];
        double e = relu ? (x > 0 ? x : 0) : (x < -1 ? -1 : (x > 1 ? 1 : x));
        if (c.out[i] != (real)e) bad++;
    }
    CHECK(bad == 0, "%s forward: %d wrong values", relu ? "relu" : "hardtanh", bad);

    if (relu) relu_backward(dinp, c.R, c.inp, n);
    else hardtanh_backward(dinp, c.R, c.inp, n);
    sub_prefill(dinp, dinp0, n);
    char what[64];
    snprintf(what, sizeof what, "[%zu] dinp", n);
    fd_check(relu ? OP_RELU : OP_HARDTANH, what, c.inp, n, dinp, act_loss, &c);
    free(c.inp); free(c.out); free(c.R); free(dinp); free(dinp0);
}

/* exactly at the kinks PyTorch passes no gradient */
static void test_act_kinks(void) {
    real x[5] = {-1, 1, 0, -0.5, 2}, dy[5] = {1, 1, 1, 1, 1}, dx[5] = {0, 0, 0, 0, 0};
    hardtanh_backward(dx, dy, x, 5);
    CHECK(dx[0] == 0 && dx[1] == 0 && dx[2] == 1 && dx[3] == 1 && dx[4] == 0,
          "hardtanh grad at kinks: %g %g %g %g %g", dx[0], dx[1], dx[2], dx[3], dx[4]);
    memset(dx, 0, sizeof dx);
    relu_backward(dx, dy, x, 5);
    CHECK(dx[0] == 0 && dx[1] == 1 && dx[2] == 0 && dx[3] == 0 && dx[4] == 1,
          "relu grad at kinks: %g %g %g %g %g", dx[0], dx[1], dx[2], dx[3], dx[4]);
}

/* -------------------------------------------------------------------- pools */

typedef struct {
    int op;
    PoolDims d;
    real *inp, *out, *R;
    int32_t *argmax;
} PoolCtx;

static double pool_loss(void *p) {
    PoolCtx *c = p;
    if (c->op == OP_MAXPOOL) maxpool_forward(c->out, c->argmax, c->inp, &c->d);
    else avgpool_forward(c->out, c->inp, &c->d);
    return dot(c->out, c->R, (size_t)c->d.N * c->d.C * c->d.OH * c->d.OW);
}

static void test_pool_grad(int op, int N, int C, int H, int W, int K, int S, int P) {
    Rng r = next_rng();
    PoolCtx c = {.op = op, .d = pool_dims(N, C, H, W, K, S, P)};
    size_t n = (size_t)N * C * H * W, m = (size_t)N * C * c.d.OH * c.d.OW;
    c.inp = alloc_r(n); c.out = alloc_r(m); c.R = alloc_r(m);
    c.argmax = malloc(m * sizeof(int32_t));
    if (op == OP_MAXPOOL) fill_distinct(c.inp, n, &r);
    else tu_fill_uniform(c.inp, n, -2, 2, &r);
    tu_fill_uniform(c.R, m, -1, 1, &r);
    real *dinp = alloc_r(n);
    tu_fill_uniform(dinp, n, -1, 1, &r);
    real *dinp0 = copy_r(dinp, n);

    pool_loss(&c);
    if (op == OP_MAXPOOL) maxpool_backward(dinp, c.R, c.argmax, &c.d);
    else avgpool_backward(dinp, c.R, &c.d);
    sub_prefill(dinp, dinp0, n);
    char what[96];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] k%d s%d p%d dinp", N, C, H, W, K, S, P);
    fd_check(op, what, c.inp, n, dinp, pool_loss, &c);
    free(c.inp); free(c.out); free(c.R); free(c.argmax); free(dinp); free(dinp0);
}

typedef struct {
    int N, C, HW;
    real *inp, *out, *R;
} GapCtx;

static double gap_loss(void *p) {
    GapCtx *c = p;
    global_avgpool_forward(c->out, c->inp, c->N, c->C, c->HW);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}

static void test_gap_grad(int N, int C, int HW) {
    Rng r = next_rng();
    size_t n = (size_t)N * C * HW, m = (size_t)N * C;
    GapCtx c = {N, C, HW, alloc_r(n), alloc_r(m), alloc_r(m)};
    tu_fill_uniform(c.inp, n, -2, 2, &r);
    tu_fill_uniform(c.R, m, -1, 1, &r);
    real *dinp = alloc_r(n);
    tu_fill_uniform(dinp, n, -1, 1, &r);
    real *dinp0 = copy_r(dinp, n);
    gap_loss(&c);
    global_avgpool_backward(dinp, c.R, N, C, HW);
    sub_prefill(dinp, dinp0, n);
    char what[64];
    snprintf(what, sizeof what, "[%d,%d,%d] dinp", N, C, HW);
    fd_check(OP_GAP, what, c.inp, n, dinp, gap_loss, &c);
    free(c.inp); free(c.out); free(c.R); free(dinp); free(dinp0);
}

static void test_pool_values(void) {
    /* 3x3 input 1..9:   1 2 3
     *                   4 5 6
     *                   7 8 9
     * avgpool K=2 S=2 P=1: output 2x2, windows over the zero-padded 5x5, divisor always 4:
     *   [0,0] = 1/4 = 0.25          [0,1] = (2+3)/4 = 1.25
     *   [1,0] = (4+7)/4 = 2.75      [1,1] = (5+6+8+9)/4 = 7
     * avgpool K=3 S=1 P=1: corner (1+2+4+5)/9 = 4/3, edge (1+2+3+4+5+6)/9 = 7/3, centre 45/9 = 5 */
    real x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, o[9];
    PoolDims d = pool_dims(1, 1, 3, 3, 2, 2, 1);
    CHECK(d.OH == 2 && d.OW == 2, "pool_dims 3x3 k2 s2 p1 -> %dx%d", d.OH, d.OW);
    avgpool_forward(o, x, &d);
    CHECK(o[0] == 0.25 && o[1] == 1.25 && o[2] == 2.75 && o[3] == 7, "avgpool k2 s2 p1: %g %g %g %g", o[0],
          o[1], o[2], o[3]);
    d = pool_dims(1, 1, 3, 3, 3, 1, 1);
    avgpool_forward(o, x, &d);
    const double e3[9] = {12 / 9., 21 / 9., 16 / 9., 27 / 9., 5, 33 / 9., 24 / 9., 39 / 9., 28 / 9.};
    int bad = 0;
    for (int i = 0; i < 9; i++) bad += !near(o[i], e3[i], 1e-15);
    CHECK(bad == 0, "avgpool k3 s1 p1 (count_include_pad): %d wrong", bad);
    /* its backward: the centre input is in all 9 windows, a corner in 4, each with weight 1/9 */
    real dy[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, dx[9] = {0};
    avgpool_backward(dx, dy, &d);
    CHECK(near(dx[4], 1.0, 1e-15) && near(dx[0], 4 / 9., 1e-15) && near(dx[1], 6 / 9., 1e-15),
          "avgpool backward counts: %g %g %g", dx[4], dx[0], dx[1]);

    /* max-pool: all-equal negative input, K=3 S=1 P=1. Padding is -inf, never the
     * zero it would be in avg-pool, so every output is -5; ties keep the first real
     * position in scan order: argmax[oh,ow] = max(oh-1,0)*3 + max(ow-1,0). */
    real xn[9], om[9];
    int32_t am[9];
    for (int i = 0; i < 9; i++) xn[i] = -5;
    maxpool_forward(om, am, xn, &d);
    bad = 0;
    for (int oh = 0; oh < 3; oh++)
        for (int ow = 0; ow < 3; ow++) {
            int e = (oh > 0 ? oh - 1 : 0) * 3 + (ow > 0 ? ow - 1 : 0);
            bad += om[oh * 3 + ow] != -5 || am[oh * 3 + ow] != e;
        }
    CHECK(bad == 0, "maxpool padding/ties: %d wrong", bad);
    /* standard ResNet stem pool 3x3 s2 p1 on 112 -> 56 */
    d = pool_dims(1, 1, 112, 112, 3, 2, 1);
    CHECK(d.OH == 56 && d.OW == 56, "pool_dims 112 k3 s2 p1 -> %d", d.OH);

    real g[6] = {1, 2, 3, 4, 5, 6}, go[2];
    global_avgpool_forward(go, g, 2, 1, 3);
    CHECK(go[0] == 2 && go[1] == 5, "global avgpool %g %g", go[0], go[1]);
}

/* ----------------------------------------------------------------- residual */

typedef struct {
    size_t n;
    real *a, *b, *out, *R;
} AddCtx;

static double add_loss(void *p) {
    AddCtx *c = p;
    add_forward(c->out, c->a, c->b, c->n);
    return dot(c->out, c->R, c->n);
}

static void test_add_grad(size_t n) {
    Rng r = next_rng();
    AddCtx c = {n, alloc_r(n), alloc_r(n), alloc_r(n), alloc_r(n)};
    tu_fill_uniform(c.a, n, -2, 2, &r);
    tu_fill_uniform(c.b, n, -2, 2, &r);
    tu_fill_uniform(c.R, n, -1, 1, &r);
    real *da = alloc_r(n), *db = alloc_r(n);
    tu_fill_uniform(da, n, -1, 1, &r);
    tu_fill_uniform(db, n, -1, 1, &r);
    real *da0 = copy_r(da, n), *db0 = copy_r(db, n);
    add_loss(&c);
    add_backward(da, db, c.R, n);
    sub_prefill(da, da0, n);
    sub_prefill(db, db0, n);
    char what[64];
    snprintf(what, sizeof what, "[%zu] da", n);
    fd_check(OP_ADD, what, c.a, n, da, add_loss, &c);
    snprintf(what, sizeof what, "[%zu] db", n);
    fd_check(OP_ADD, what, c.b, n, db, add_loss, &c);
    free(c.a); free(c.b); free(c.out); free(c.R); free(da); free(db); free(da0); free(db0);
}

typedef struct {
    int N, C, H, W, S, Cout, pad_before;
    real *inp, *out, *R;
} ShortCtx;

static size_t short_out_size(const ShortCtx *c) { return (size_t)c->N * c->Cout * (c->H / c->S) * (c->W / c->S); }

static double short_loss(void *p) {
    ShortCtx *c = p;
    shortcut_a_forward(c->out, c->inp, c->N, c->C, c->H, c->W, c->S, c->Cout, c->pad_before);
    return dot(c->out, c->R, short_out_size(c));
}

static void test_shortcut_grad(int N, int C, int H, int W, int S, int Cout, int pad_before) {
    Rng r = next_rng();
    ShortCtx c = {N, C, H, W, S, Cout, pad_before, NULL, NULL, NULL};
    size_t n = (size_t)N * C * H * W, m = short_out_size(&c);
    c.inp = alloc_r(n); c.out = alloc_r(m); c.R = alloc_r(m);
    tu_fill_uniform(c.inp, n, -2, 2, &r);
    tu_fill_uniform(c.R, m, -1, 1, &r);
    real *dinp = alloc_r(n);
    tu_fill_uniform(dinp, n, -1, 1, &r);
    real *dinp0 = copy_r(dinp, n);
    short_loss(&c);
    shortcut_a_backward(dinp, c.R, N, C, H, W, S, Cout, pad_before);
    sub_prefill(dinp, dinp0, n);
    char what[96];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] s%d Cout%d pad%d dinp", N, C, H, W, S, Cout, pad_before);
    fd_check(OP_SHORTCUT, what, c.inp, n, dinp, short_loss, &c);
    free(c.inp); free(c.out); free(c.R); free(dinp); free(dinp0);
}

static void test_shortcut_values(void) {
    /* inp [1, 2, 4, 4] with x[c,h,w] = 100c + 10h + w; stride 2, Cout 4, pad_before 1.
     * Each 2x2 block averages to 100c + 10(2oh) + 2ow + (0+1+10+11)/4 = 100c + 20oh + 2ow + 5.5:
     *   out channel 0: zeros
     *   out channel 1 (= input channel 0):   5.5   7.5 /  25.5  27.5
     *   out channel 2 (= input channel 1): 105.5 107.5 / 125.5 127.5
     *   out channel 3: zeros */
    real x[2 * 16], o[4 * 4];
    for (int c = 0; c < 2; c++)
        for (int h = 0; h < 4; h++)
            for (int w = 0; w < 4; w++) x[(c * 4 + h) * 4 + w] = (real)(100 * c + 10 * h + w);
    for (int i = 0; i < 16; i++) o[i] = 999; /* forward must overwrite the zero channels too */
    shortcut_a_forward(o, x, 1, 2, 4, 4, 2, 4, 1);
    const real e[16] = {0, 0, 0, 0, 5.5, 7.5, 25.5, 27.5, 105.5, 107.5, 125.5, 127.5, 0, 0, 0, 0};
    CHECK(memcmp(o, e, sizeof e) == 0, "shortcut_a layout: got %g %g %g %g | %g %g %g %g | %g %g %g %g | %g %g %g %g",
          o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9], o[10], o[11], o[12], o[13], o[14], o[15]);

    /* stride 1: a pure channel shift, [1,1,1,3] -> [1,3,1,3] with pad_before 2 */
    real x1[3] = {1, 2, 3}, o1[9];
    shortcut_a_forward(o1, x1, 1, 1, 1, 3, 1, 3, 2);
    const real e1[9] = {0, 0, 0, 0, 0, 0, 1, 2, 3};
    CHECK(memcmp(o1, e1, sizeof e1) == 0, "shortcut_a stride 1 layout");
}

/* --------------------------------------------------------------------- loss */

typedef struct {
    int N, K;
    real *logits, *probs;
    int32_t *labels;
    real dloss;
} CECtx;

static double ce_loss(void *p) {
    CECtx *c = p;
    return (double)c->dloss * softmax_ce_forward(c->probs, c->logits, c->labels, c->N, c->K);
}

static void test_ce_grad(int N, int K) {
    Rng r = next_rng();
    size_t n = (size_t)N * K;
    CECtx c = {N, K, alloc_r(n), alloc_r(n), malloc(N * sizeof(int32_t)), 0.7};
    tu_fill_uniform(c.logits, n, -3, 3, &r);
    for (int i = 0; i < N; i++) c.labels[i] = (int32_t)rng_below(&r, K);
    real *dl = alloc_r(n);
    tu_fill_uniform(dl, n, -1, 1, &r);
    real *dl0 = copy_r(dl, n);
    ce_loss(&c);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += c.probs[i * K + k];
        if (fabs(s - 1) > worst) worst = fabs(s - 1);
    }
    CHECK(worst < 1e-14, "softmax rows sum to 1: err %.3e", worst);
    softmax_ce_backward(dl, c.probs, c.labels, N, K, c.dloss);
    sub_prefill(dl, dl0, n);
    char what[64];
    snprintf(what, sizeof what, "[%d,%d] dlogits", N, K);
    fd_check(OP_CE, what, c.logits, n, dl, ce_loss, &c);
    free(c.logits); free(c.probs); free(c.labels); free(dl); free(dl0);
}

static void test_ce_values(void) {
    /* Row 0: logits (0, 0, 0), label 2: softmax = (1/3, 1/3, 1/3), loss = -ln(1/3) = ln 3.
     * Row 1: logits (ln 2, 0, ln 5), label 0: exp = (2, 1, 5), sum 8,
     *        softmax = (1/4, 1/8, 5/8), loss = -ln(1/4) = ln 4.
     * Mean = (ln 3 + ln 4) / 2 = ln(12) / 2 = 2.4849066497880004 / 2 = 1.2424533248940002.
     * Backward with dloss = 1 divides by N = 2:
     *   row 0: (1/3, 1/3, 1/3 - 1) / 2 = (1/6, 1/6, -1/3)
     *   row 1: (1/4 - 1, 1/8, 5/8) / 2 = (-3/8, 1/16, 5/16) */
    real logits[6] = {0, 0, 0, log(2.0), 0, log(5.0)}, probs[6], dl[6] = {0};
    int32_t labels[2] = {2, 0};
    double loss = softmax_ce_forward(probs, logits, labels, 2, 3);
    CHECK(near(loss, 1.2424533248940002, 1e-15), "CE 2x3 loss %.17g", loss);
    const double ep[6] = {1 / 3., 1 / 3., 1 / 3., 0.25, 0.125, 0.625};
    const double eg[6] = {1 / 6., 1 / 6., -1 / 3., -0.375, 0.0625, 0.3125};
    softmax_ce_backward(dl, probs, labels, 2, 3, 1.0);
    int bad = 0;
    for (int i = 0; i < 6; i++) bad += !near(probs[i], ep[i], 1e-15) || !near(dl[i], eg[i], 1e-15);
    CHECK(bad == 0, "CE 2x3 probs/grad: %d wrong", bad);

    /* stability: exp(1000) overflows a double; the max-shift must avoid it.
     * label 0 -> loss ~ exp(-1000) ~ 0; label 2 -> loss = 2000 + log(1 + e^-1000 + e^-2000) = 2000 */
    real big[6] = {1000, 0, -1000, 1000, 0, -1000};
    int32_t lb[2] = {0, 2};
    loss = softmax_ce_forward(probs, big, lb, 2, 3);
    CHECK(isfinite(loss) && near(loss, 1000.0, 1e-15), "CE large logits: %.17g", loss);
}

/* -------------------------------------------------------------- determinism */

/* forward + backward of BN, max-pool, avg-pool, global avg-pool with nthreads; all results
 * written to res (fresh zeroed gradients) */
static size_t run_for_threads(int nthreads, real *res) {
    omp_set_num_threads(nthreads);
    Rng r = rng_stream(1234, RNG_TEST, 999999, 0);
    size_t k = 0;

    /* batchnorm [5, 16, 37] */
    BNDims bd = {5, 16, 37, 1e-5, 0.1, NULL};
    size_t n = (size_t)5 * 16 * 37;
    real *x = alloc_r(n), *dy = alloc_r(n), *g = alloc_r(16), *b = alloc_r(16);
    tu_fill_uniform(x, n, -2, 3, &r);
    tu_fill_uniform(dy, n, -1, 1, &r);
    tu_fill_uniform(g, 16, 0.5, 1.5, &r);
    tu_fill_uniform(b, 16, -1, 1, &r);
    real *out = res + k; k += n;
    real *mean = res + k; k += 16;
    real *rstd = res + k; k += 16;
    real *rm = res + k; k += 16;
    real *rv = res + k; k += 16;
    real *dx = res + k; k += n;
    real *dg = res + k; k += 16;
    real *db = res + k; k += 16;
    batchnorm_forward_train(out, mean, rstd, rm, rv, x, g, b, &bd);
    batchnorm_backward(dx, dg, db, dy, x, mean, rstd, g, &bd);
    free(x); free(dy); free(g); free(b);

    /* pools on [3, 11, 13, 13], 3x3 stride 2 pad 1; random values, so ties are possible
     * in principle but the result must still be the same for any thread count */
    PoolDims pd = pool_dims(3, 11, 13, 13, 3, 2, 1);
    n = (size_t)3 * 11 * 13 * 13;
    size_t m = (size_t)3 * 11 * pd.OH * pd.OW;
    x = alloc_r(n); dy = alloc_r(m);
    int32_t *am = malloc(m * sizeof(int32_t));
    tu_fill_uniform(x, n, -2, 2, &r);
    tu_fill_uniform(dy, m, -1, 1, &r);
    out = res + k; k += m;
    dx = res + k; k += n;
    maxpool_forward(out, am, x, &pd);
    maxpool_backward(dx, dy, am, &pd);
    for (size_t i = 0; i < m; i++) res[k++] = (real)am[i];
    out = res + k; k += m;
    dx = res + k; k += n;
    avgpool_forward(out, x, &pd);
    avgpool_backward(dx, dy, &pd);
    out = res + k; k += 3 * 11;
    dx = res + k; k += n;
    global_avgpool_forward(out, x, 3, 11, 13 * 13);
    global_avgpool_backward(dx, dy, 3, 11, 13 * 13);
    free(x); free(dy); free(am);
    return k;
}

static void test_determinism(void) {
    const size_t cap = 100000;
    real *r1 = alloc_r(cap), *r2 = alloc_r(cap);
    int saved = omp_get_max_threads();
    size_t k1 = run_for_threads(1, r1);
    size_t k2 = run_for_threads(2, r2);
    omp_set_num_threads(saved);
    CHECK(k1 == k2 && k1 <= cap, "determinism: result sizes %zu %zu", k1, k2);
    CHECK(memcmp(r1, r2, k1 * sizeof(real)) == 0, "BN/pool results differ between 1 and 2 OpenMP threads");
    free(r1); free(r2);
}

/* --------------------------------------------------------------------- main */

int main(void) {
    Rng shapes = rng_stream(1234, RNG_TEST, 0, 1);
    stream_key = 1;

    /* batchnorm: 2d, odd sizes, batch 1 with HW > 1, 1d (HW = 1), one channel */
    test_bn_grad(2, 3, 25);
    test_bn_grad(1, 2, 21);
    test_bn_grad(5, 4, 1);
    test_bn_grad(3, 1, 9);
    test_bn_grad(2, 1, 1); /* smallest valid: two values per channel */
    for (int t = 0; t < 2; t++)
        test_bn_grad(1 + (int)rng_below(&shapes, 4), 1 + (int)rng_below(&shapes, 5), 1 + (int)rng_below(&shapes, 30));
    test_bn_values();

    test_act_grad(0, 1);
    test_act_grad(0, 777);
    test_act_grad(1, 1);
    test_act_grad(1, 777);
    test_act_kinks();

    /* pools: odd sizes, stride 2, padding, batch 1, K = 1, non-overlapping and overlapping */
    for (int op = OP_MAXPOOL; op <= OP_AVGPOOL; op++) {
        test_pool_grad(op, 2, 3, 7, 7, 3, 2, 1);
        test_pool_grad(op, 1, 2, 8, 6, 2, 2, 0);
        test_pool_grad(op, 1, 1, 5, 9, 3, 1, 1);
        test_pool_grad(op, 3, 2, 4, 5, 1, 1, 0);
        test_pool_grad(op, 2, 2, 6, 6, 4, 3, 2);
        for (int t = 0; t < 2; t++) {
            int K = 1 + (int)rng_below(&shapes, 3), S = 1 + (int)rng_below(&shapes, 2);
            int P = (int)rng_below(&shapes, (uint64_t)(K / 2 + 1));
            int H = K + (int)rng_below(&shapes, 7), W = K + (int)rng_below(&shapes, 7);
            test_pool_grad(op, 1 + (int)rng_below(&shapes, 3), 1 + (int)rng_below(&shapes, 3), H, W, K, S, P);
        }
    }
    test_gap_grad(2, 3, 16);
    test_gap_grad(1, 5, 7);
    test_gap_grad(3, 2, 1);
    test_pool_values();

    test_add_grad(1);
    test_add_grad(301);
    /* shortcut: CIFAR ResNet case (C -> 2C, pad C/2 each side), odd H/W, stride 1, batch 1 */
    test_shortcut_grad(2, 4, 8, 8, 2, 8, 2);
    test_shortcut_grad(1, 3, 7, 5, 2, 7, 1);
    test_shortcut_grad(2, 2, 3, 3, 1, 5, 3);
    test_shortcut_grad(1, 3, 6, 6, 3, 3, 0);
    test_shortcut_values();

    test_ce_grad(1, 2);
    test_ce_grad(3, 10);
    test_ce_grad(5, 7);
    test_ce_values();

    test_determinism();

    for (int op = 0; op < OP_COUNT; op++)
        printf("  %-15s %2d fd checks, max rel error %.3e\n", op_names[op], op_fd_checks[op], op_worst[op]);
    return tu_finish("grad_layers");
}
