/* The float kernels over shards of the batch (issue 15 b, core/shard.h), on
 * one process, for S = 1, 2, 4, 8 shards of N = 8 rows.
 *
 * Each kernel given a plan is compared bitwise with an independent
 * computation written here: the one-shard kernel (sp NULL) or a reference
 * loop run on each shard's rows alone, the shards then added by a recursive
 * pairwise tree (tree_r / tree_d below, not the iterative one of
 * core/shard.c):
 *  - conv2d_backward's weight gradient (3x3 pad 1, 3x3 stride 2, pointwise)
 *    and conv2d_bias_backward_sp; the input gradient equals sp NULL's;
 *  - linear_backward_sp's dweight, dbias; its dinp and linear_forward_sp's
 *    out are one row per call (the one-shard kernel on each row alone);
 *  - batchnorm_forward_train (out, saved mean/rstd, running stats), the train
 *    backward (accumulating and _store), the eval backward (with parameter
 *    gradients, and frozen: NULL), at HW = 5 (a row tail for ROWSUM8) and 1;
 *  - softmax_ce_forward_sp / _backward_sp and smooth_l1_forward_sp; a bad
 *    label gives NaN with nothing written; a plan of rank 0 of 2 without a
 *    communicator divides by the global 2N.
 * Also: S = 1 with a plan is sp NULL bitwise; the plan's workspace and the
 * malloc fallback (a plan without workspace) give the same bits; 1 and 2
 * threads give the same bits; S = 2 differs from S = 1 in the last bits
 * somewhere (so the tree is really taken) yet agrees to 1e-5 relative. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "rowsum.h"
#include "shard.h"
#include "testutil.h"

enum { N = 8 };
static const int SHARDS[] = {1, 2, 4, 8};

/* ------------------------------------------------------------- helpers */

/* a plan of S shards of a batch of N on one process, with workspace for
 * reductions of up to ws_n values (0: none, the kernels' malloc fallback) */
typedef struct {
    ShardPlan p;
    void *mem;
} TestPlan;

static TestPlan plan_make(int S, size_t ws_n) {
    TestPlan t = {0};
    char err[200];
    if (shard_plan_make(&t.p, S, N, NULL, err, sizeof err)) {
        fprintf(stderr, "FAIL plan: %s\n", err);
        exit(1);
    }
    if (ws_n) {
        const size_t slots = (size_t)t.p.local_shards + 1;
        t.mem = calloc(slots * ws_n * (sizeof(double) + sizeof(real)) + 2 * ws_n * sizeof(int64_t), 1);
        if (!t.mem) exit(2);
        t.p.ws_d = t.mem;
        t.p.ws_r = (real *)(t.p.ws_d + slots * ws_n);
        t.p.ws_i = (int64_t *)(t.p.ws_r + slots * ws_n);
        t.p.ws_n = ws_n;
    }
    return t;
}

/* parts[count * n] -> the sum in one pairwise tree over [lo, hi), recursively */
static double tree_d1(const double *parts, size_t n, size_t i, int lo, int hi) {
    if (hi - lo == 1) return parts[(size_t)lo * n + i];
    const int mid = (lo + hi) / 2;
    return tree_d1(parts, n, i, lo, mid) + tree_d1(parts, n, i, mid, hi);
}
static real tree_r1(const real *parts, size_t n, size_t i, int lo, int hi) {
    if (hi - lo == 1) return parts[(size_t)lo * n + i];
    const int mid = (lo + hi) / 2;
    return tree_r1(parts, n, i, lo, mid) + tree_r1(parts, n, i, mid, hi);
}

static int same(const real *a, const real *b, size_t n) { return memcmp(a, b, n * sizeof(real)) == 0; }
static int differs_somewhere(const real *a, const real *b, size_t n) { return !same(a, b, n); }

static real *dup(const real *x, size_t n) {
    real *p = tu_alloc(n);
    memcpy(p, x, n * sizeof(real));
    return p;
}

/* --------------------------------------------------------------- conv2d */

/* dW and dinp of conv2d_backward under plan sp (NULL: none), from dw0 and zeros */
static void conv_grads(real *dw, real *dx, const real *dw0, const real *dout, const real *inp, const real *w,
                       const ConvDims *d0, const ShardPlan *sp, real *scratch) {
    ConvDims d = *d0;
    d.sp = sp;
    const size_t wn = (size_t)d.O * d.C * d.KH * d.KW;
    memcpy(dw, dw0, wn * sizeof(real));
    memset(dx, 0, (size_t)d.N * d.C * d.H * d.W * sizeof(real));
    conv2d_backward(dx, dw, dout, inp, w, &d, scratch);
}

static void test_conv(int K, int stride, int pad) {
    Rng r = rng_stream(11, RNG_TEST, (uint64_t)K * 10 + stride, (uint64_t)pad);
    const ConvDims d = conv_dims(N, 3, 6, 6, 5, K, stride, pad);
    const size_t wn = (size_t)d.O * d.C * d.KH * d.KW, xn = (size_t)N * d.C * d.H * d.W;
    const size_t yn = (size_t)N * d.O * d.OH * d.OW, ohw = (size_t)d.OH * d.OW;
    real *inp = tu_alloc_rand(xn, &r), *w = tu_alloc_rand(wn, &r), *dout = tu_alloc_rand(yn, &r);
    real *dw0 = tu_alloc_rand(wn, &r), *db0 = tu_alloc_rand((size_t)d.O, &r);
    real *scratch = tu_alloc(conv2d_scratch_size(&d));
    real *dw_none = tu_alloc(wn), *dx_none = tu_alloc(xn), *dw = tu_alloc(wn), *dx = tu_alloc(xn);
    real *dw_s1 = tu_alloc(wn), *dw_ref = tu_alloc(wn), *parts = tu_alloc(8 * wn), *dx_sh = tu_alloc(xn);
    real *db = tu_alloc((size_t)d.O), *db_ref = tu_alloc((size_t)d.O);
    conv_grads(dw_none, dx_none, dw0, dout, inp, w, &d, NULL, scratch);

    for (size_t k = 0; k < sizeof SHARDS / sizeof *SHARDS; k++) {
        const int S = SHARDS[k], rows = N / S;
        TestPlan tp = plan_make(S, wn);
        conv_grads(dw, dx, dw0, dout, inp, w, &d, &tp.p, scratch);
        CHECK(same(dx, dx_none, xn), "conv K%d s%d S=%d: dinp differs from sp NULL's", K, stride, S);
        /* reference: sp NULL on each shard's rows into zeros, the tree, added to dw0 */
        ConvDims ds = d;
        ds.N = rows;
        for (int s = 0; s < S; s++) {
            memset(parts + (size_t)s * wn, 0, wn * sizeof(real));
            conv2d_backward(dx_sh, parts + (size_t)s * wn, dout + (size_t)s * rows * d.O * ohw,
                            inp + (size_t)s * rows * d.C * d.H * d.W, w, &ds, scratch);
        }
        /* (S = 1 is today's path, which accumulates the samples into dweight
         * itself: checked against sp NULL below) */
        for (size_t i = 0; i < wn; i++) dw_ref[i] = dw0[i] + tree_r1(parts, wn, i, 0, S);
        CHECK(S == 1 || same(dw, dw_ref, wn), "conv K%d s%d S=%d: dweight is not the shards' tree", K, stride, S);
        if (S == 1) {
            CHECK(same(dw, dw_none, wn), "conv K%d s%d: S=1 with a plan differs from sp NULL", K, stride);
            memcpy(dw_s1, dw, wn * sizeof(real));
        }
        if (S == 2) {
            CHECK(differs_somewhere(dw, dw_s1, wn), "conv K%d s%d: S=2 gives S=1's bits: no tree taken?", K,
                  stride);
            CHECK(tu_max_rel_err(dw, dw_s1, wn) < 1e-5, "conv K%d s%d: S=2 vs S=1 %g", K, stride,
                  tu_max_rel_err(dw, dw_s1, wn));
        }
        /* the malloc fallback (no workspace in the plan), and 2 threads vs 1 */
        TestPlan bare = plan_make(S, 0);
        real *dw2 = tu_alloc(wn), *dx2 = tu_alloc(xn);
        conv_grads(dw2, dx2, dw0, dout, inp, w, &d, &bare.p, scratch);
        CHECK(same(dw2, dw, wn), "conv S=%d: no workspace (malloc'd) differs", S);
        const int t0 = omp_get_max_threads();
        omp_set_num_threads(t0 == 1 ? 2 : 1);
        conv_grads(dw2, dx2, dw0, dout, inp, w, &d, &tp.p, scratch);
        omp_set_num_threads(t0);
        CHECK(same(dw2, dw, wn) && same(dx2, dx, xn), "conv S=%d: another thread count differs", S);
        free(dw2), free(dx2);

        /* bias: double per shard, n then i, the tree in double, added */
        memcpy(db, db0, (size_t)d.O * sizeof(real));
        conv2d_bias_backward_sp(db, dout, N, d.O, (int)ohw, &tp.p);
        for (int o = 0; o < d.O; o++) {
            double p[8];
            for (int s = 0; s < S; s++) {
                double acc = 0.0;
                for (int n = s * rows; n < (s + 1) * rows; n++)
                    for (size_t i = 0; i < ohw; i++) acc += (double)dout[((size_t)n * d.O + o) * ohw + i];
                p[s] = acc;
            }
            db_ref[o] = (real)((double)db0[o] + tree_d1(p, 1, 0, 0, S));
        }
        CHECK(same(db, db_ref, (size_t)d.O), "conv bias S=%d: not the shards' tree", S);
        if (S == 1) {
            memcpy(db_ref, db0, (size_t)d.O * sizeof(real));
            conv2d_bias_backward(db_ref, dout, N, d.O, (int)ohw);
            CHECK(same(db, db_ref, (size_t)d.O), "conv bias: S=1 with a plan differs from sp NULL");
        }
        free(tp.mem);
    }
    free(inp), free(w), free(dout), free(dw0), free(db0), free(scratch), free(dw_none), free(dx_none), free(dw),
        free(dx), free(dw_s1), free(dw_ref), free(parts), free(dx_sh), free(db), free(db_ref);
}

/* --------------------------------------------------------------- linear */

static void test_linear(void) {
    enum { IN = 37, OUT = 6 };
    Rng r = rng_stream(12, RNG_TEST, 0, 0);
    real *inp = tu_alloc_rand(N * IN, &r), *w = tu_alloc_rand(OUT * IN, &r), *dout = tu_alloc_rand(N * OUT, &r);
    real *dw0 = tu_alloc_rand(OUT * IN, &r), *db0 = tu_alloc_rand(OUT, &r);
    real *dx_none = tu_alloc(N * IN), *dw_none = dup(dw0, OUT * IN), *db_none = dup(db0, OUT);
    linear_backward(dx_none, dw_none, db_none, dout, inp, w, N, IN, OUT);
    real *dw_s1 = tu_alloc(OUT * IN), *parts = tu_alloc(8 * OUT * IN), *dw_ref = tu_alloc(OUT * IN);
    /* with a plan, a row's dinp and out are those of the row alone */
    real *dx_rows = tu_alloc(N * IN), *y_rows = tu_alloc(N * OUT), *y_none = tu_alloc(N * OUT), *y = tu_alloc(N * OUT);
    for (int n = 0; n < N; n++) {
        linear_backward(dx_rows + n * IN, NULL, NULL, dout + n * OUT, inp + n * IN, w, 1, IN, OUT);
        linear_forward(y_rows + n * OUT, inp + n * IN, w, db0, 1, IN, OUT);
    }
    linear_forward(y_none, inp, w, db0, N, IN, OUT);
    for (size_t k = 0; k < sizeof SHARDS / sizeof *SHARDS; k++) {
        const int S = SHARDS[k], rows = N / S;
        TestPlan tp = plan_make(S, OUT * IN);
        real *dx = tu_alloc(N * IN), *dw = dup(dw0, OUT * IN), *db = dup(db0, OUT);
        linear_backward_sp(dx, dw, db, dout, inp, w, N, IN, OUT, &tp.p);
        CHECK(same(dx, S == 1 ? dx_none : dx_rows, N * IN), "linear S=%d: dinp is not %s", S,
              S == 1 ? "sp NULL's" : "that of each row alone");
        linear_forward_sp(y, inp, w, db0, N, IN, OUT, &tp.p);
        CHECK(same(y, S == 1 ? y_none : y_rows, N * OUT), "linear S=%d: forward is not %s", S,
              S == 1 ? "sp NULL's" : "that of each row alone");
        for (int s = 0; s < S; s++) {
            memset(parts + (size_t)s * OUT * IN, 0, OUT * IN * sizeof(real));
            linear_backward(NULL, parts + (size_t)s * OUT * IN, NULL, dout + (size_t)s * rows * OUT,
                            inp + (size_t)s * rows * IN, w, rows, IN, OUT);
        }
        for (size_t i = 0; i < OUT * IN; i++) dw_ref[i] = dw0[i] + tree_r1(parts, OUT * IN, i, 0, S);
        CHECK(same(dw, dw_ref, OUT * IN), "linear S=%d: dweight is not the shards' tree", S);
        int bias_ok = 1;
        for (int o = 0; o < OUT; o++) {
            double p[8];
            for (int s = 0; s < S; s++) {
                double acc = 0.0;
                for (int n = s * rows; n < (s + 1) * rows; n++) acc += (double)dout[n * OUT + o];
                p[s] = acc;
            }
            bias_ok &= db[o] == (real)((double)db0[o] + tree_d1(p, 1, 0, 0, S));
        }
        CHECK(bias_ok, "linear S=%d: dbias is not the shards' tree", S);
        if (S == 1) {
            CHECK(same(dw, dw_none, OUT * IN) && same(db, db_none, OUT), "linear: S=1 with a plan differs");
            memcpy(dw_s1, dw, OUT * IN * sizeof(real));
        }
        if (S == 2) {
            CHECK(differs_somewhere(dw, dw_s1, OUT * IN), "linear: S=2 gives S=1's bits: no tree taken?");
            CHECK(tu_max_rel_err(dw, dw_s1, OUT * IN) < 1e-5, "linear: S=2 vs S=1 %g",
                  tu_max_rel_err(dw, dw_s1, OUT * IN));
        }
        /* frozen (dweight NULL) and no bias: dinp alone, as sp NULL's */
        memset(dx, 0, N * IN * sizeof(real));
        linear_backward_sp(dx, NULL, NULL, dout, inp, w, N, IN, OUT, &tp.p);
        CHECK(same(dx, S == 1 ? dx_none : dx_rows, N * IN), "linear S=%d frozen: dinp differs", S);
        free(dx), free(dw), free(db), free(tp.mem);
    }
    free(inp), free(w), free(dout), free(dw0), free(db0), free(dx_none), free(dw_none), free(db_none), free(dw_s1),
        free(parts), free(dw_ref), free(dx_rows), free(y_rows), free(y_none), free(y);
}

/* ------------------------------------------------------------ batchnorm */

/* The train forward by hand: per channel, per shard the rows' ROWSUM8 sums
 * added in sample order, the shards by the tree, over the global count */
static void bn_forward_ref(real *out, real *mean, real *rstd, real *rm, real *rv, const real *x, const real *g,
                           const real *b, int C, int HW, int S) {
    const int rows = N / S;
    const long M = (long)N * HW;
    for (int c = 0; c < C; c++) {
        double p[8], q[8];
        for (int s = 0; s < S; s++) {
            p[s] = 0.0;
            for (int n = s * rows; n < (s + 1) * rows; n++) {
                const real *xn = x + ((size_t)n * C + c) * HW;
                double v;
                ROWSUM8(v, HW, (double)xn[i]);
                p[s] += v;
            }
        }
        const double mu = tree_d1(p, 1, 0, 0, S) / (double)M;
        for (int s = 0; s < S; s++) {
            q[s] = 0.0;
            for (int n = s * rows; n < (s + 1) * rows; n++) {
                const real *xn = x + ((size_t)n * C + c) * HW;
                double v;
                ROWSUM8(v, HW, ((double)xn[i] - mu) * ((double)xn[i] - mu));
                q[s] += v;
            }
        }
        const double ss = tree_d1(q, 1, 0, 0, S), var = ss / (double)M;
        const double rs = 1.0 / sqrt(var + 1e-5f);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                const size_t j = ((size_t)n * C + c) * HW + i;
                out[j] = (real)(((double)x[j] - mu) * ((double)g[c] * rs) + (double)b[c]);
            }
        mean[c] = (real)mu;
        rstd[c] = (real)rs;
        const double m = (double)0.1f;
        rm[c] = (real)((1.0 - m) * (double)rm[c] + m * mu);
        rv[c] = (real)((1.0 - m) * (double)rv[c] + m * ss / (double)(M - 1));
    }
}

/* the backward sums by hand: per shard sum dy and sum dy * xhat, the tree */
static void bn_sums_ref(double *sdy, double *sdyx, const real *dy, const real *x, int c, int C, int HW, int S,
                        double mu, double rs) {
    const int rows = N / S;
    double p[8], q[8];
    for (int s = 0; s < S; s++) {
        p[s] = q[s] = 0.0;
        for (int n = s * rows; n < (s + 1) * rows; n++) {
            const real *xn = x + ((size_t)n * C + c) * HW, *dyn = dy + ((size_t)n * C + c) * HW;
            double v1, v2;
            ROWSUM8(v1, HW, (double)dyn[i]);
            ROWSUM8(v2, HW, (double)dyn[i] * ((double)xn[i] - mu) * rs);
            p[s] += v1;
            q[s] += v2;
        }
    }
    *sdy = tree_d1(p, 1, 0, 0, S);
    *sdyx = tree_d1(q, 1, 0, 0, S);
}

static void test_bn(int C, int HW) {
    Rng r = rng_stream(13, RNG_TEST, (uint64_t)C, (uint64_t)HW);
    const size_t n = (size_t)N * C * HW;
    real *x = tu_alloc(n), *dy = tu_alloc_rand(n, &r), *g = tu_alloc(C), *b = tu_alloc_rand(C, &r);
    tu_fill_uniform(x, n, 0.5, 2.5, &r); /* a mean far from 0: the variance pass matters */
    tu_fill_uniform(g, C, 0.5, 1.5, &r);
    real *rm0 = tu_alloc_rand(C, &r), *rv0 = tu_alloc(C);
    tu_fill_uniform(rv0, C, 0.5, 2.0, &r);
    real *dx_acc0 = tu_alloc_rand(n, &r), *dg0 = tu_alloc_rand(C, &r), *db0 = tu_alloc_rand(C, &r);
    real *out = tu_alloc(n), *mean = tu_alloc(C), *rstd = tu_alloc(C), *rm = tu_alloc(C), *rv = tu_alloc(C);
    real *out_r = tu_alloc(n), *mean_r = tu_alloc(C), *rstd_r = tu_alloc(C), *rm_r = tu_alloc(C), *rv_r = tu_alloc(C);
    real *dx = tu_alloc(n), *dg = tu_alloc(C), *db = tu_alloc(C), *dx_r = tu_alloc(n), *dg_r = tu_alloc(C),
         *db_r = tu_alloc(C);
    real *dx_none = tu_alloc(n), *dx2 = tu_alloc(n);
    for (size_t k = 0; k < sizeof SHARDS / sizeof *SHARDS; k++) {
        const int S = SHARDS[k];
        TestPlan tp = plan_make(S, 2 * (size_t)C);
        BNDims d = {N, C, HW, (real)1e-5, (real)0.1, &tp.p};
        BNDims d0 = {N, C, HW, (real)1e-5, (real)0.1, NULL};

        /* forward, train */
        memcpy(rm, rm0, C * sizeof(real)), memcpy(rv, rv0, C * sizeof(real));
        memcpy(rm_r, rm0, C * sizeof(real)), memcpy(rv_r, rv0, C * sizeof(real));
        batchnorm_forward_train(out, mean, rstd, rm, rv, x, g, b, &d);
        bn_forward_ref(out_r, mean_r, rstd_r, rm_r, rv_r, x, g, b, C, HW, S);
        CHECK(same(out, out_r, n) && same(mean, mean_r, C) && same(rstd, rstd_r, C) && same(rm, rm_r, C) &&
                  same(rv, rv_r, C),
              "bn C%d HW%d S=%d: train forward is not the shards' tree", C, HW, S);
        if (S == 1) {
            batchnorm_forward_train(out_r, mean_r, rstd_r, rm_r, rv_r, x, g, b, &d0);
            CHECK(same(out, out_r, n), "bn: S=1 with a plan differs from sp NULL");
        }
        TestPlan bare = plan_make(S, 0);
        BNDims db_ = d;
        db_.sp = &bare.p;
        memcpy(rm_r, rm0, C * sizeof(real)), memcpy(rv_r, rv0, C * sizeof(real));
        const int t0 = omp_get_max_threads();
        omp_set_num_threads(t0 == 1 ? 2 : 1);
        batchnorm_forward_train(out_r, mean_r, rstd_r, rm_r, rv_r, x, g, b, &db_);
        omp_set_num_threads(t0);
        CHECK(same(out, out_r, n) && same(rv, rv_r, C), "bn S=%d: no workspace / other threads differ", S);

        /* backward, train: accumulating into dx_acc0, and _store */
        memcpy(dx, dx_acc0, n * sizeof(real)), memcpy(dg, dg0, C * sizeof(real)), memcpy(db, db0, C * sizeof(real));
        batchnorm_backward(dx, dg, db, dy, x, mean, rstd, g, &d);
        const long M = (long)N * HW;
        for (int c = 0; c < C; c++) {
            const double mu = (double)mean[c], rs = (double)rstd[c];
            double sdy, sdyx;
            bn_sums_ref(&sdy, &sdyx, dy, x, c, C, HW, S, mu, rs);
            db_r[c] = db0[c] + (real)sdy;
            dg_r[c] = dg0[c] + (real)sdyx;
            const double kk = (double)g[c] * rs;
            for (int nn = 0; nn < N; nn++)
                for (int i = 0; i < HW; i++) {
                    const size_t j = ((size_t)nn * C + c) * HW + i;
                    const double xh = ((double)x[j] - mu) * rs;
                    const real v = (real)(kk * ((double)dy[j] - sdy / (double)M - xh * (sdyx / (double)M)));
                    dx_r[j] = dx_acc0[j] + v;
                    dx_none[j] = (real)0 + v;
                }
        }
        CHECK(same(dx, dx_r, n) && same(dg, dg_r, C) && same(db, db_r, C),
              "bn C%d HW%d S=%d: train backward is not the shards' tree", C, HW, S);
        memcpy(dg, dg0, C * sizeof(real)), memcpy(db, db0, C * sizeof(real));
        memset(dx2, 0x7f, n * sizeof(real)); /* store never reads it */
        batchnorm_backward_store(dx2, dg, db, dy, x, mean, rstd, g, &d);
        CHECK(same(dx2, dx_none, n) && same(dg, dg_r, C) && same(db, db_r, C), "bn S=%d: _store differs", S);

        /* backward, eval: parameter sums through the tree, dx per value */
        memcpy(dx, dx_acc0, n * sizeof(real)), memcpy(dg, dg0, C * sizeof(real)), memcpy(db, db0, C * sizeof(real));
        batchnorm_backward_eval(dx, dg, db, dy, x, g, rm0, rv0, &d);
        memcpy(dx_r, dx_acc0, n * sizeof(real));
        batchnorm_backward_eval(dx_r, NULL, NULL, dy, x, g, rm0, rv0, &d0);
        for (int c = 0; c < C; c++) {
            const double mu = (double)rm0[c], rs = 1.0 / sqrt((double)rv0[c] + (double)(real)1e-5);
            double sdy, sdyx;
            bn_sums_ref(&sdy, &sdyx, dy, x, c, C, HW, S, mu, rs);
            db_r[c] = db0[c] + (real)sdy;
            dg_r[c] = dg0[c] + (real)sdyx;
        }
        CHECK(same(dx, dx_r, n) && same(dg, dg_r, C) && same(db, db_r, C),
              "bn C%d HW%d S=%d: eval backward is not the shards' tree", C, HW, S);
        memset(dx2, 0x7f, n * sizeof(real));
        batchnorm_backward_eval_store(dx2, NULL, NULL, dy, x, g, rm0, rv0, &d); /* frozen: no sums */
        memset(dx, 0, n * sizeof(real));
        batchnorm_backward_eval(dx, NULL, NULL, dy, x, g, rm0, rv0, &d0);
        CHECK(same(dx2, dx, n), "bn S=%d: frozen eval backward differs from sp NULL's", S);
        free(tp.mem);
    }
    free(x), free(dy), free(g), free(b), free(rm0), free(rv0), free(dx_acc0), free(dg0), free(db0), free(out),
        free(mean), free(rstd), free(rm), free(rv), free(out_r), free(mean_r), free(rstd_r), free(rm_r), free(rv_r),
        free(dx), free(dg), free(db), free(dx_r), free(dg_r), free(db_r), free(dx_none), free(dx2);
}

/* One channel of 1d BN where the order of the sum shows in the mean: 1e17
 * absorbs each following 1 in a sequential sum (S = 1: ((1e17 + 1 + 1 + 1)
 * - 1e17) + 3 = 3), while at S = 2 the halves are 1e17 and -1e17 (0). */
static void test_bn_tree_taken(void) {
    real x[N] = {1e17f, 1, 1, 1, -1e17f, 1, 1, 1}, out[N], mean1, mean2, rstd;
    TestPlan t1 = plan_make(1, 2), t2 = plan_make(2, 2);
    BNDims d1 = {N, 1, 1, (real)1e-5, (real)0.1, &t1.p}, d2 = d1;
    d2.sp = &t2.p;
    batchnorm_forward_train(out, &mean1, &rstd, NULL, NULL, x, NULL, NULL, &d1);
    batchnorm_forward_train(out, &mean2, &rstd, NULL, NULL, x, NULL, NULL, &d2);
    CHECK(mean1 == (real)(3.0 / N) && mean2 == 0, "bn tree: means %g (S=1, want 3/8) and %g (S=2, want 0)",
          (double)mean1, (double)mean2);
    free(t1.mem), free(t2.mem);
}

/* ----------------------------------------------------------------- loss */

static void test_loss(void) {
    enum { B = 64, K = 7 };
    Rng r = rng_stream(14, RNG_TEST, 0, 0);
    real *logits = tu_alloc(B * K), *probs = tu_alloc(B * K), *probs0 = tu_alloc(B * K);
    int32_t labels[B];
    tu_fill_uniform(logits, B * K, -4, 4, &r);
    for (int n = 0; n < B; n++) labels[n] = (int32_t)rng_below(&r, K);
    const double l0 = softmax_ce_forward(probs0, logits, labels, B, K);
    double l1 = NAN;
    char err[200];
    for (size_t k = 0; k < sizeof SHARDS / sizeof *SHARDS; k++) {
        const int S = SHARDS[k], rows = B / S;
        TestPlan tp = {0};
        CHECK(shard_plan_make(&tp.p, S, B, NULL, err, sizeof err) == 0, "plan: %s", err);
        const double l = softmax_ce_forward_sp(probs, logits, labels, B, K, &tp.p); /* no workspace: malloc'd */
        CHECK(same(probs, probs0, B * K), "ce S=%d: probs differ from sp NULL's", S);
        /* -log p_label per row by hand, summed per shard in row order, the tree, / B */
        double p[8];
        for (int s = 0; s < S; s++) {
            p[s] = 0.0;
            for (int n = s * rows; n < (s + 1) * rows; n++) {
                const real *x = logits + n * K;
                double mx = x[0], sum = 0.0;
                for (int j = 1; j < K; j++) mx = (double)x[j] > mx ? (double)x[j] : mx;
                for (int j = 0; j < K; j++) sum += exp((double)x[j] - mx);
                p[s] += log(sum) - ((double)x[labels[n]] - mx);
            }
        }
        const double want = tree_d1(p, 1, 0, 0, S) / B;
        CHECK(memcmp(&l, &want, sizeof l) == 0, "ce S=%d: %.17g, the shards' tree gives %.17g", S, l, want);
        if (S == 1) {
            CHECK(memcmp(&l, &l0, sizeof l) == 0, "ce: S=1 with a plan %.17g, sp NULL %.17g", l, l0);
            l1 = l;
        }
        if (S == 2)
            CHECK(l != l1 && fabs(l - l1) < 1e-12 * fabs(l1), "ce: S=2 %.17g vs S=1 %.17g: want the last bits only",
                  l, l1);
        /* one process: the backward is the one-shard backward, bitwise */
        real *g = tu_alloc(B * K), *g0 = tu_alloc(B * K);
        softmax_ce_backward_sp(g, probs, labels, B, K, (real)0.75, &tp.p);
        softmax_ce_backward(g0, probs, labels, B, K, (real)0.75);
        CHECK(same(g, g0, B * K), "ce S=%d: backward differs from sp NULL's", S);
        free(g), free(g0);

        /* smooth L1 over B x K values, rows of K: shards of rows, the tree, / norm */
        const double sl = smooth_l1_forward_sp(logits, probs, NULL, B * K, 0.5, 123.0, &tp.p);
        for (int s = 0; s < S; s++) {
            p[s] = 0.0;
            for (int i = s * rows * K; i < (s + 1) * rows * K; i++) {
                const double xx = (double)logits[i] - (double)probs[i], a = fabs(xx);
                p[s] += a < 0.5 ? 0.5 * xx * xx / 0.5 : a - 0.25;
            }
        }
        const double slw = tree_d1(p, 1, 0, 0, S) / 123.0;
        CHECK(memcmp(&sl, &slw, sizeof sl) == 0, "smooth_l1 S=%d: %.17g, the shards' tree gives %.17g", S, sl, slw);
        if (S == 1) {
            const double sl0 = smooth_l1_forward(logits, probs, NULL, B * K, 0.5, 123.0);
            CHECK(memcmp(&sl, &sl0, sizeof sl) == 0, "smooth_l1: S=1 with a plan differs from sp NULL");
        }
    }

    /* a bad label: NaN, nothing written */
    {
        TestPlan tp = plan_make(4, 4);
        int32_t bad[B];
        memcpy(bad, labels, sizeof bad);
        bad[37] = K;
        memset(probs, 0, B * K * sizeof(real));
        const double l = softmax_ce_forward_sp(probs, logits, bad, B, K, &tp.p);
        real *zeros = tu_alloc(B * K);
        CHECK(isnan(l) && same(probs, zeros, B * K), "ce sharded, bad label: %g and probs written", l);
        free(zeros), free(tp.mem);
    }

    /* rank 0 of 2 without a communicator (the exchange skipped, the rest is
     * the rank's own): the loss and its gradient divide by the global 2B */
    {
        ShardPlan p2 = {.shards = 2, .local_shards = 1, .ranks = 2, .rank = 0, .comm = NULL};
        double total = 0.0;
        for (int n = 0; n < B; n++) {
            const real *x = logits + n * K;
            double mx = x[0], sum = 0.0;
            for (int j = 1; j < K; j++) mx = (double)x[j] > mx ? (double)x[j] : mx;
            for (int j = 0; j < K; j++) sum += exp((double)x[j] - mx);
            total += log(sum) - ((double)x[labels[n]] - mx);
        }
        const double l = softmax_ce_forward_sp(probs, logits, labels, B, K, &p2), want = total / (2.0 * B);
        CHECK(memcmp(&l, &want, sizeof l) == 0, "ce rank 0 of 2: %.17g, want %.17g", l, want);
        real *g = tu_alloc(B * K);
        softmax_ce_backward_sp(g, probs, labels, B, K, (real)1, &p2);
        int ok = 1;
        for (int n = 0; n < B; n++)
            for (int j = 0; j < K; j++)
                ok &= g[n * K + j] == (real)((1.0 / (2.0 * B)) * ((double)probs[n * K + j] - (j == labels[n])));
        CHECK(ok, "ce rank 0 of 2: the gradient is not (p - onehot) / 2B");
        free(g);
    }
    free(logits), free(probs), free(probs0);
}

int main(void) {
    test_conv(3, 1, 1);
    test_conv(3, 2, 1);
    test_conv(1, 1, 0);
    test_linear();
    test_bn(3, 5);
    test_bn(4, 1);
    test_bn_tree_taken();
    test_loss();
    return tu_finish("shard_ops");
}
