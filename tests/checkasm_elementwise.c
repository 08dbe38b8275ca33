/* checkasm family: elementwise loops with a SIMD clone chosen inside the call.
 *
 * optim.adamw_step (core/optim.c: the AVX2+FMA clone of the loop) against the
 * scalar definition written out here with libm fma(), five steps so the
 * moments take varied values; lengths 1, 3, 4, 5, 31, 16384, 16385, 70001 (the
 * tails and the 16384-element chunks), then 30 random ones.
 *
 * quant.quant_codes_u8 (core/quant.c: the AVX2 activation-code loop) against
 * round(clamp((x - zp)/s, 0, qmax)) with quant_round_half_even: bits 1-8 x the
 * ten lengths 69992-70001 (every tail mod 8), with exact ties, values outside
 * the range, -0, NaN (code 0) and +-inf; then 40 random lengths.
 *
 * batchnorm.forward / .backward / .row_sums (core/ops/batchnorm.c's row
 * tables), batchnorm.hardtanh_fused (BN -> hardtanh in one call) and
 * activation.backward (hardtanh's and relu's bit-test masks): see their
 * sections below.
 *
 * All dispatch on cpu_features() inside the call, so they run at every level. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkasm.h"
#include "optim.h"
#include "quant.h"

#define STEPS 5

/* ------------------------------------------------------------ AdamW */
typedef struct {
    size_t n;
    real *p0, *g; /* g: STEPS gradients of n */
} AdCase;

static const AdamWConfig AD_CFG = {0.9, 0.999, 1e-8, 1e-5};

static void *ad_gen(int i, Rng *r, char *shape, size_t len) {
    static const size_t lens[] = {1, 3, 4, 5, 31, 16384, 16385, 70001};
    AdCase *c = calloc(1, sizeof *c);
    c->n = i < 8 ? lens[i] : 1 + rng_below(r, 40000);
    c->p0 = malloc(c->n * sizeof(real));
    c->g = malloc(c->n * STEPS * sizeof(real));
    for (size_t k = 0; k < c->n; k++) c->p0[k] = (real)(2 * rng_uniform(r) - 1);
    for (size_t k = 0; k < c->n * STEPS; k++) c->g[k] = (real)(4 * rng_uniform(r) - 2);
    if (c->n > 2)
        for (int t = 0; t < STEPS; t++) c->g[(size_t)t * c->n + 1] = 0;
    snprintf(shape, len, "n %zu, %d steps", c->n, STEPS);
    return c;
}

static void ad_free(void *cv) {
    AdCase *c = cv;
    free(c->p0), free(c->g), free(c);
}

static real *ad_outs(const AdCase *c, CkOut *o, real **m, real **v) {
    real *p = ck_out(o, "param", CK_REAL, c->n);
    *m = ck_out(o, "exp_avg", CK_REAL, c->n);
    *v = ck_out(o, "exp_avg_sq", CK_REAL, c->n);
    memcpy(p, c->p0, c->n * sizeof(real));
    memset(*m, 0, c->n * sizeof(real));
    memset(*v, 0, c->n * sizeof(real));
    return p;
}

static void ad_ref(const void *cv, CkOut *o) {
    const AdCase *c = cv;
    real *m, *v, *p = ad_outs(c, o, &m, &v);
    const AdamWConfig *k = &AD_CFG;
    for (long t = 1; t <= STEPS; t++) {
        const real *g = c->g + (size_t)(t - 1) * c->n;
        const double lr = 1e-3 * (double)t;
        const double decay = 1.0 - lr * k->weight_decay, bc1 = 1.0 - pow(k->beta1, (double)t);
        const double bc2s = sqrt(1.0 - pow(k->beta2, (double)t)), nss = -(lr / bc1);
        for (size_t i = 0; i < c->n; i++) {
            const double gi = g[i], pi = (double)p[i] * decay;
            m[i] = (real)fma(1.0 - k->beta1, gi, (double)m[i] * k->beta1);
            v[i] = (real)fma((1.0 - k->beta2) * gi, gi, (double)v[i] * k->beta2);
            const double den = sqrt((double)v[i]) / bc2s + k->eps;
            p[i] = (real)(pi + (nss * (double)m[i]) / den);
        }
    }
}

static void ad_run(unsigned mask, const void *cv, CkOut *o) {
    const AdCase *c = cv;
    real *m, *v, *p = ad_outs(c, o, &m, &v);
    for (long t = 1; t <= STEPS; t++)
        adamw_step(p, c->g + (size_t)(t - 1) * c->n, m, v, c->n, 1e-3 * (double)t, &AD_CFG, t);
}

/* ------------------------------------------------------------ activation codes */
typedef struct {
    size_t n;
    int bits;
    real zp, s, qmax;
    real *x;
} QcCase;

#define QC_FIXED 80
static void *qc_gen(int i, Rng *r, char *shape, size_t len) {
    QcCase *c = calloc(1, sizeof *c);
    c->bits = i < QC_FIXED ? 1 + i / 10 : 1 + (int)rng_below(r, 8);
    c->n = i < QC_FIXED ? 70001 - 9 + (size_t)(i % 10) : 1 + rng_below(r, 3000);
    c->zp = (real)-0.75;
    c->s = quant_scale((real)1.9, c->bits);
    c->qmax = quant_qmax(c->bits);
    c->x = malloc((c->n + 8) * sizeof(real));
    for (size_t k = 0; k < c->n; k++) c->x[k] = (real)(-1.2 + 2.6 * rng_uniform(r));
    for (size_t k = 0; k < c->n; k += 7) c->x[k] = c->zp + ((real)(long)(k % 600) * (real)0.5) * c->s; /* ties */
    const real special[] = {(real)-0.0, (real)NAN, (real)INFINITY, (real)-INFINITY};
    for (size_t k = 0; k < 4 && 3 + k < c->n; k++) c->x[3 + k] = special[k];
    snprintf(shape, len, "n %zu bits %d", c->n, c->bits);
    return c;
}

static void qc_free(void *cv) {
    QcCase *c = cv;
    free(c->x), free(c);
}

static void qc_ref(const void *cv, CkOut *o) {
    const QcCase *c = cv;
    uint8_t *codes = ck_out(o, "codes", CK_U8, c->n);
    for (size_t i = 0; i < c->n; i++) {
        real y = (c->x[i] - c->zp) / c->s;
        y = y < 0 ? (real)0 : y > c->qmax ? c->qmax : y;
        y = quant_round_half_even(y);
        codes[i] = y == y ? (uint8_t)y : 0;
    }
}

static void qc_run(unsigned mask, const void *cv, CkOut *o) {
    const QcCase *c = cv;
    quant_codes_u8(ck_out(o, "codes", CK_U8, c->n), c->x, c->n, c->zp, c->s, c->qmax);
}


/* ------------------------------------------------------------ batchnorm rows
 *
 * batchnorm's row tables (core/ops/batchnorm.c: C, AVX2, AVX-512, chosen inside
 * the call) against the definition written out here: ROWSUM8 per row, rows
 * added in sample order, the plain expressions. Forward (train and eval) and
 * backward (train and eval, accumulating and _store); HW over the tails mod 8
 * and the net's rows (16, 64, 256, 1024) first, then random shapes. */
#include "ops.h"
#include "rowsum.h"

typedef struct {
    int N, C, HW;
    real *x, *dy, *dx0, *gamma, *beta, *rm, *rv;
} BnCase;

static void *bn_gen(int i, Rng *r, char *shape, size_t len) {
    static const int hws[] = {1, 7, 8, 9, 15, 16, 17, 64, 256, 1024};
    BnCase *c = calloc(1, sizeof *c);
    c->HW = i < 10 ? hws[i] : 1 + (int)rng_below(r, 300);
    c->N = 1 + (int)rng_below(r, 6);
    c->C = 1 + (int)rng_below(r, 5);
    const size_t n = (size_t)c->N * c->C * c->HW;
    c->x = malloc(n * sizeof(real));
    c->dy = malloc(n * sizeof(real));
    c->dx0 = malloc(n * sizeof(real));
    c->gamma = malloc(4 * (size_t)c->C * sizeof(real));
    c->beta = c->gamma + c->C, c->rm = c->beta + c->C, c->rv = c->rm + c->C;
    const double off = 3 * rng_uniform(r); /* a mean away from 0 */
    for (size_t k = 0; k < n; k++) {
        c->x[k] = (real)(off + 4 * rng_uniform(r) - 2);
        c->dy[k] = (real)(2 * rng_uniform(r) - 1);
        c->dx0[k] = (real)(2 * rng_uniform(r) - 1);
    }
    if (n > 3) c->dy[1] = (real)-0.0, c->dx0[2] = (real)-0.0; /* -0 through 0 + v and dx + v */
    for (int k = 0; k < c->C; k++) {
        c->gamma[k] = (real)(0.5 + rng_uniform(r));
        c->beta[k] = (real)(rng_uniform(r) - 0.5);
        c->rm[k] = (real)(off + rng_uniform(r) - 0.5);
        c->rv[k] = (real)(0.5 + 2 * rng_uniform(r));
    }
    snprintf(shape, len, "N %d C %d HW %d", c->N, c->C, c->HW);
    return c;
}

static void bn_free(void *cv) {
    BnCase *c = cv;
    free(c->x), free(c->dy), free(c->dx0), free(c->gamma), free(c);
}

static BNDims bn_d(const BnCase *c) {
    BNDims d = {c->N, c->C, c->HW, (real)1e-5, (real)0.1, NULL};
    return d;
}

/* outputs: out [n], stats [4C] (mean, rstd, running mean, running var), eval out [n] */
static void bnf_outs(const BnCase *c, CkOut *o, real **out, real **st, real **ev) {
    const size_t n = (size_t)c->N * c->C * c->HW;
    *out = ck_out(o, "out", CK_REAL, n);
    *st = ck_out(o, "stats", CK_REAL, 4 * (size_t)c->C);
    *ev = ck_out(o, "eval_out", CK_REAL, n);
    memcpy(*st + 2 * c->C, c->rm, 2 * (size_t)c->C * sizeof(real)); /* rm, rv follow in c */
}

static void bnf_ref(const void *cv, CkOut *o) {
    const BnCase *c = cv;
    real *out, *st, *ev;
    bnf_outs(c, o, &out, &st, &ev);
    const int N = c->N, C = c->C, HW = c->HW;
    const long cs = (long)C * HW, M = (long)N * HW;
    for (int ch = 0; ch < C; ch++) {
        double sum = 0, ss = 0, r;
        for (int n = 0; n < N; n++) {
            const real *x = c->x + ch * HW + n * cs;
            ROWSUM8(r, HW, (double)x[i]);
            sum += r;
        }
        const double mu = sum / (double)M;
        for (int n = 0; n < N; n++) {
            const real *x = c->x + ch * HW + n * cs;
            ROWSUM8(r, HW, ((double)x[i] - mu) * ((double)x[i] - mu));
            ss += r;
        }
        const double var = ss / (double)M, rs = 1.0 / sqrt(var + (double)(real)1e-5);
        const double scale = (double)c->gamma[ch] * rs, m = (double)(real)0.1;
        const double rse = 1.0 / sqrt((double)c->rv[ch] + (double)(real)1e-5);
        const double scale_e = (double)c->gamma[ch] * rse;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                const long k = ch * HW + n * cs + i;
                out[k] = (real)(((double)c->x[k] - mu) * scale + (double)c->beta[ch]);
                ev[k] = (real)(((double)c->x[k] - (double)c->rm[ch]) * scale_e + (double)c->beta[ch]);
            }
        st[ch] = (real)mu;
        st[C + ch] = (real)rs;
        const double vu = M > 1 ? ss / (double)(M - 1) : var;
        st[2 * C + ch] = (real)((1.0 - m) * (double)st[2 * C + ch] + m * mu);
        st[3 * C + ch] = (real)((1.0 - m) * (double)st[3 * C + ch] + m * vu);
    }
}

static void bnf_run(unsigned mask, const void *cv, CkOut *o) {
    const BnCase *c = cv;
    real *out, *st, *ev;
    bnf_outs(c, o, &out, &st, &ev);
    const BNDims d = bn_d(c);
    batchnorm_forward_train(out, st, st + c->C, st + 2 * c->C, st + 3 * c->C, c->x, c->gamma, c->beta, &d);
    batchnorm_forward_eval(ev, c->x, c->gamma, c->beta, c->rm, c->rv, &d);
}

/* outputs: dx (accumulated on dx0), dx (_store), dparams [2C] (dgamma, dbeta
 * accumulated on gamma, beta's values), each for train (case.mode 0) */
static void bnb_outs(const BnCase *c, CkOut *o, real **dx, real **dxs, real **dp) {
    const size_t n = (size_t)c->N * c->C * c->HW;
    *dx = ck_out(o, "dx", CK_REAL, n);
    *dxs = ck_out(o, "dx_store", CK_REAL, n);
    *dp = ck_out(o, "dgamma_dbeta", CK_REAL, 4 * (size_t)c->C);
    memcpy(*dx, c->dx0, n * sizeof(real));
    memcpy(*dp, c->gamma, 2 * (size_t)c->C * sizeof(real));
    memcpy(*dp + 2 * c->C, c->gamma, 2 * (size_t)c->C * sizeof(real));
}

/* the saved statistics the train backward reads: the rows' mean and an rstd */
static void bnb_stats(const BnCase *c, real *mean, real *rstd) {
    for (int k = 0; k < c->C; k++) mean[k] = c->rm[k], rstd[k] = (real)(1 / sqrt((double)c->rv[k]));
}

/* train (eval = 0: the saved mean and rstd) and eval (running stats) backward
 * by the definition; dp: dgamma, dbeta; dxs: the _store result */
static void bnb_ref1(const BnCase *c, int eval, real *dx, real *dxs, real *dp) {
    const int N = c->N, C = c->C, HW = c->HW;
    const long cs = (long)C * HW, M = (long)N * HW;
    real mean[8], rstd[8];
    bnb_stats(c, mean, rstd);
    for (int ch = 0; ch < C; ch++) {
        const double mu = eval ? (double)c->rm[ch] : (double)mean[ch];
        const double rs = eval ? 1.0 / sqrt((double)c->rv[ch] + (double)(real)1e-5) : (double)rstd[ch];
        double a = 0, b = 0, r1, r2;
        for (int n = 0; n < N; n++) {
            const real *x = c->x + ch * HW + n * cs, *dy = c->dy + ch * HW + n * cs;
            ROWSUM8(r1, HW, (double)dy[i]);
            ROWSUM8(r2, HW, (double)dy[i] * ((double)x[i] - mu) * rs);
            a += r1, b += r2;
        }
        dp[C + ch] += (real)a;
        dp[ch] += (real)b;
        const double k = (double)c->gamma[ch] * rs, mdy = a / (double)M, mdx = b / (double)M;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                const long j = ch * HW + n * cs + i;
                const double xhat = ((double)c->x[j] - mu) * rs;
                const real v = eval ? (real)(k * (double)c->dy[j]) : (real)(k * ((double)c->dy[j] - mdy - xhat * mdx));
                dx[j] = dx[j] + v;
                dxs[j] = (real)0 + v;
            }
    }
}

static void bnb_ref(const void *cv, CkOut *o) {
    const BnCase *c = cv;
    real *dx, *dxs, *dp;
    bnb_outs(c, o, &dx, &dxs, &dp);
    const int eval = (int)(c->HW % 2); /* odd rows: the eval backward */
    bnb_ref1(c, eval, dx, dxs, dp);
    for (int k = 0; k < 2 * c->C; k++) dp[2 * c->C + k] = dp[k]; /* _store adds the same */
}

static void bnb_run(unsigned mask, const void *cv, CkOut *o) {
    const BnCase *c = cv;
    real *dx, *dxs, *dp, mean[8], rstd[8];
    bnb_outs(c, o, &dx, &dxs, &dp);
    const BNDims d = bn_d(c);
    const int C = c->C;
    bnb_stats(c, mean, rstd);
    if (c->HW % 2) {
        batchnorm_backward_eval(dx, dp, dp + C, c->dy, c->x, c->gamma, c->rm, c->rv, &d);
        batchnorm_backward_eval_store(dxs, dp + 2 * C, dp + 3 * C, c->dy, c->x, c->gamma, c->rm, c->rv, &d);
    } else {
        batchnorm_backward(dx, dp, dp + C, c->dy, c->x, mean, rstd, c->gamma, &d);
        batchnorm_backward_store(dxs, dp + 2 * C, dp + 3 * C, c->dy, c->x, mean, rstd, c->gamma, &d);
    }
}

/* the double row sums themselves: a lane or tree slip there rarely reaches a
 * float output, so they are compared as 64-bit patterns; row j of the case is
 * c->x's first j * HW / 4 + 1 values (short rows and tails too) */
static void bns_ref(const void *cv, CkOut *o) {
    const BnCase *c = cv;
    const int n = c->N * c->C * c->HW, rows = n < 5 ? n : 5;
    uint64_t *s = ck_out(o, "row_sums", CK_U64, 4 * (size_t)rows);
    const double mu = (double)c->rm[0], rs = 1.7;
    for (int j = 0; j < rows; j++) {
        const int len = j * n / 4 + (j < 4);
        const real *x = c->x + (n - len), *dy = c->dy + (n - len);
        double r[4];
        ROWSUM8(r[0], len, (double)x[i]);
        ROWSUM8(r[1], len, ((double)x[i] - mu) * ((double)x[i] - mu));
        ROWSUM8(r[2], len, (double)dy[i]);
        ROWSUM8(r[3], len, (double)dy[i] * ((double)x[i] - mu) * rs);
        memcpy(s + 4 * j, r, sizeof r);
    }
}

static void bns_run(unsigned mask, const void *cv, CkOut *o) {
    const BnCase *c = cv;
    const int n = c->N * c->C * c->HW, rows = n < 5 ? n : 5;
    uint64_t *s = ck_out(o, "row_sums", CK_U64, 4 * (size_t)rows);
    for (int j = 0; j < rows; j++) {
        const int len = j * n / 4 + (j < 4);
        double r[4];
        batchnorm_row_sums(r, c->x + (n - len), c->dy + (n - len), len, (double)c->rm[0], 1.7);
        memcpy(s + 4 * j, r, sizeof r);
    }
}

/* BN -> hardtanh fused (batchnorm_hardtanh_*) against the two layers' calls:
 * forward train and eval; backward train (odd HW: eval) with store 1 and 0,
 * dy being hardtanh_backward_store's output as core/model.c makes it */
static void bnh_outs(const BnCase *c, CkOut *o, real **out, real **ev, real **dx, real **dp) {
    const size_t n = (size_t)c->N * c->C * c->HW;
    *out = ck_out(o, "out", CK_REAL, n);
    *ev = ck_out(o, "eval_out", CK_REAL, n);
    *dx = ck_out(o, "dx_store_then_acc", CK_REAL, n);
    *dp = ck_out(o, "stats_dgamma_dbeta", CK_REAL, 8 * (size_t)c->C);
    memcpy(*dp + 2 * c->C, c->rm, 2 * (size_t)c->C * sizeof(real));
    memcpy(*dp + 4 * c->C, c->gamma, 2 * (size_t)c->C * sizeof(real));
    memcpy(*dp + 6 * c->C, c->gamma, 2 * (size_t)c->C * sizeof(real));
}

static void bnh_ref(const void *cv, CkOut *o) {
    const BnCase *c = cv;
    real *out, *ev, *dx, *dp;
    bnh_outs(c, o, &out, &ev, &dx, &dp);
    const size_t n = (size_t)c->N * c->C * c->HW;
    const BNDims d = bn_d(c);
    const int C = c->C;
    real *st = dp, *dy = malloc(n * sizeof(real));
    batchnorm_forward_train(out, st, st + C, st + 2 * C, st + 3 * C, c->x, c->gamma, c->beta, &d);
    hardtanh_forward(out, out, n);
    batchnorm_forward_eval(ev, c->x, c->gamma, c->beta, c->rm, c->rv, &d);
    hardtanh_forward(ev, ev, n);
    hardtanh_backward_store(dy, c->dy, out, n);
    if (c->HW % 2) {
        batchnorm_backward_eval_store(dx, dp + 4 * C, dp + 5 * C, dy, c->x, c->gamma, c->rm, c->rv, &d);
        batchnorm_backward_eval(dx, dp + 6 * C, dp + 7 * C, dy, c->x, c->gamma, c->rm, c->rv, &d);
    } else {
        batchnorm_backward_store(dx, dp + 4 * C, dp + 5 * C, dy, c->x, st, st + C, c->gamma, &d);
        batchnorm_backward(dx, dp + 6 * C, dp + 7 * C, dy, c->x, st, st + C, c->gamma, &d);
    }
    free(dy);
}

static void bnh_run(unsigned mask, const void *cv, CkOut *o) {
    const BnCase *c = cv;
    real *out, *ev, *dx, *dp;
    bnh_outs(c, o, &out, &ev, &dx, &dp);
    const BNDims d = bn_d(c);
    const int C = c->C;
    real *st = dp;
    batchnorm_hardtanh_forward_train(out, st, st + C, st + 2 * C, st + 3 * C, c->x, c->gamma, c->beta, &d);
    batchnorm_hardtanh_forward_eval(ev, c->x, c->gamma, c->beta, c->rm, c->rv, &d);
    int rc = 0;
    if (c->HW % 2) {
        rc |= batchnorm_hardtanh_backward_eval(dx, dp + 4 * C, dp + 5 * C, c->dy, out, c->x, c->gamma, c->rm, c->rv,
                                               &d, 1);
        rc |= batchnorm_hardtanh_backward_eval(dx, dp + 6 * C, dp + 7 * C, c->dy, out, c->x, c->gamma, c->rm, c->rv,
                                               &d, 0);
    } else {
        rc |= batchnorm_hardtanh_backward(dx, dp + 4 * C, dp + 5 * C, c->dy, out, c->x, st, st + C, c->gamma, &d, 1);
        rc |= batchnorm_hardtanh_backward(dx, dp + 6 * C, dp + 7 * C, c->dy, out, c->x, st, st + C, c->gamma, &d, 0);
    }
    if (rc) memset(dx, 0xff, (size_t)c->N * C * c->HW * sizeof(real)); /* an allocation failure: a mismatch */
}

/* ------------------------------------------------------------ activation masks
 *
 * hardtanh's and relu's backward (core/ops/activation.c: the masks as bit
 * tests so the loops vectorise) against the compares they replace, on values
 * at and around the kinks, +-0, denormals, +-inf and NaNs; accumulating and
 * _store. */
typedef struct {
    size_t n;
    real *x, *dy, *dx0;
} ActCase;

static void *act_gen(int i, Rng *r, char *shape, size_t len) {
    static const size_t lens[] = {1, 7, 33, 32768, 70001};
    ActCase *c = calloc(1, sizeof *c);
    c->n = i < 5 ? lens[i] : 1 + rng_below(r, 5000);
    c->x = malloc(c->n * sizeof(real));
    c->dy = malloc(c->n * sizeof(real));
    c->dx0 = malloc(c->n * sizeof(real));
    const real special[] = {-1, 1, 0, (real)-0.0, (real)1e-40, (real)-1e-40, (real)INFINITY, (real)-INFINITY,
                            (real)NAN, -(real)NAN, nextafterf(1, 0), nextafterf(-1, 0), nextafterf(1, 2),
                            nextafterf(-1, -2)};
    const int ns = (int)(sizeof special / sizeof special[0]);
    for (size_t k = 0; k < c->n; k++) {
        const uint64_t u = rng_below(r, 4);
        c->x[k] = u == 0 ? special[rng_below(r, (uint64_t)ns)] : (real)(3 * rng_uniform(r) - 1.5);
        c->dy[k] = u == 1 ? (real)-0.0 : (real)(2 * rng_uniform(r) - 1);
        c->dx0[k] = u == 2 ? (real)-0.0 : (real)(2 * rng_uniform(r) - 1);
    }
    snprintf(shape, len, "n %zu", c->n);
    return c;
}

static void act_free(void *cv) {
    ActCase *c = cv;
    free(c->x), free(c->dy), free(c->dx0), free(c);
}

static void act_outs(const ActCase *c, CkOut *o, real **h, real **hs, real **rl) {
    *h = ck_out(o, "hardtanh_dx", CK_REAL, c->n);
    *hs = ck_out(o, "hardtanh_dx_store", CK_REAL, c->n);
    *rl = ck_out(o, "relu_dx", CK_REAL, c->n);
    memcpy(*h, c->dx0, c->n * sizeof(real));
    memcpy(*rl, c->dx0, c->n * sizeof(real));
}

static void act_ref(const void *cv, CkOut *o) {
    const ActCase *c = cv;
    real *h, *hs, *rl;
    act_outs(c, o, &h, &hs, &rl);
    for (size_t i = 0; i < c->n; i++) {
        const real x = c->x[i], g = (x > -1 && x < 1) ? c->dy[i] : (real)0;
        h[i] = h[i] + g;
        hs[i] = (real)0 + g;
        rl[i] = rl[i] + (x > 0 ? c->dy[i] : (real)0);
    }
}

static void act_run(unsigned mask, const void *cv, CkOut *o) {
    const ActCase *c = cv;
    real *h, *hs, *rl;
    act_outs(c, o, &h, &hs, &rl);
    hardtanh_backward(h, c->dy, c->x, c->n);
    hardtanh_backward_store(hs, c->dy, c->x, c->n);
    relu_backward(rl, c->dy, c->x, c->n);
}

/* ------------------------------------------------------------ weight sign row */
typedef struct {
    size_t n;
    double bits;
    int zplus;
    real *x;
} SrCase;

#define SR_FIXED 54
static void *sr_gen(int i, Rng *r, char *shape, size_t len) {
    static const size_t lens[] = {1, 2, 7, 8, 9, 17, 576, 1152, 4608};
    static const double bitsv[] = {0, 1, 2, 4, 8, 32};
    SrCase *c = calloc(1, sizeof *c);
    c->n = i < SR_FIXED ? lens[i % 9] : 1 + rng_below(r, 5000);
    c->bits = i < SR_FIXED ? bitsv[i / 9] : bitsv[rng_below(r, 6)];
    c->zplus = (int)rng_below(r, 2);
    c->x = malloc(c->n * sizeof(real));
    for (size_t k = 0; k < c->n; k++) c->x[k] = (real)(4 * rng_uniform(r) - 2);
    /* exact zeros, quantized values landing on 0, a constant row, and (rarely) NaN and -0 */
    const uint64_t kind = rng_below(r, 6);
    for (size_t k = 0; k < c->n; k += 5) c->x[k] = kind == 0 ? (real)0 : kind == 1 ? (real)-0.0 : c->x[k];
    if (kind == 2)
        for (size_t k = 0; k < c->n; k++) c->x[k] = (real)0.25;
    if (kind == 3 && c->n > 3) c->x[c->n / 2] = (real)NAN;
    if (kind == 4) { /* a symmetric range: the middle level is 0 exactly at odd qmax + 1 */
        c->x[0] = (real)-1;
        if (c->n > 1) c->x[1] = (real)1;
    }
    snprintf(shape, len, "n %zu bits %g zplus %d kind %d", c->n, c->bits, c->zplus, (int)kind);
    return c;
}

static void sr_free(void *cv) {
    SrCase *c = cv;
    free(c->x), free(c);
}

/* minmax_uniform_row then sign_value: the unfused weight path */
static void sr_ref(const void *cv, CkOut *o) {
    const SrCase *c = cv;
    int8_t *b8 = ck_out(o, "Bw", CK_U8, c->n);
    real *wq = malloc(c->n * sizeof(real));
    minmax_uniform_row(wq, NULL, NULL, c->x, c->n, c->bits, c->bits == 0 ? 0 : quant_qmax(c->bits));
    for (size_t i = 0; i < c->n; i++) b8[i] = (int8_t)sign_value(wq[i], c->zplus);
    free(wq);
}

static void sr_run(unsigned mask, const void *cv, CkOut *o) {
    const SrCase *c = cv;
    (void)mask;
    quant_sign_row_i8(ck_out(o, "Bw", CK_U8, c->n), c->x, c->n, c->bits, c->bits == 0 ? 0 : quant_qmax(c->bits),
                      c->zplus);
}

/* ------------------------------------------------------------ codes of x / sigma[row] */
typedef struct {
    int rows;
    size_t m;
    real zp, s, qmax;
    real *x, *div;
} QrCase;

static void *qr_gen(int i, Rng *r, char *shape, size_t len) {
    QrCase *c = calloc(1, sizeof *c);
    const int bits = 1 + (int)rng_below(r, 8);
    c->rows = 1 + (int)rng_below(r, 4);
    c->m = i < 8 ? 16384 * (size_t)(1 + i / 4) + (size_t)(i % 4) * 3 : 2 + rng_below(r, 5000);
    c->zp = (real)-0.75 * (real)(1 + rng_below(r, 3));
    c->s = quant_scale((real)1.9, bits);
    c->qmax = quant_qmax(bits);
    const size_t n = (size_t)c->rows * c->m;
    c->x = malloc(n * sizeof(real));
    c->div = malloc((size_t)c->rows * sizeof(real));
    for (int k = 0; k < c->rows; k++) c->div[k] = (real)(0.25 + 3 * rng_uniform(r));
    for (size_t k = 0; k < n; k++) c->x[k] = (real)((-1.2 + 2.6 * rng_uniform(r)) * 2);
    /* ties after the division: x = (zp + (j + 1/2) s) * div where that is exact enough to land on one sometimes */
    for (size_t k = 0; k < n; k += 11) c->x[k] = (c->zp + ((real)(long)(k % 600) * (real)0.5) * c->s) * c->div[k / c->m];
    const real special[] = {(real)-0.0, (real)NAN, (real)INFINITY, (real)-INFINITY};
    for (size_t k = 0; k < 4 && 3 + k < n; k++) c->x[3 + k] = special[k];
    snprintf(shape, len, "rows %d m %zu bits %d", c->rows, c->m, bits);
    return c;
}

static void qr_free(void *cv) {
    QrCase *c = cv;
    free(c->x), free(c->div), free(c);
}

/* a0 = x / div as act_normalize_forward writes it, then the scalar codes */
static void qr_ref(const void *cv, CkOut *o) {
    const QrCase *c = cv;
    const size_t n = (size_t)c->rows * c->m;
    uint8_t *codes = ck_out(o, "codes", CK_U8, n);
    for (size_t i = 0; i < n; i++) {
        const real a0 = c->x[i] / c->div[i / c->m];
        real y = (a0 - c->zp) / c->s;
        y = y < 0 ? (real)0 : y > c->qmax ? c->qmax : y;
        y = quant_round_half_even(y);
        codes[i] = y == y ? (uint8_t)y : 0;
    }
}

static void qr_run(unsigned mask, const void *cv, CkOut *o) {
    const QrCase *c = cv;
    (void)mask;
    quant_codes_u8_rows(ck_out(o, "codes", CK_U8, (size_t)c->rows * c->m), c->x, c->rows, c->m, c->div, c->zp, c->s,
                        c->qmax);
}

const CkKernel ck_elementwise[] = {
    {"optim.adamw_step", 8, 30, ad_gen, ad_ref, NULL, ad_run, ad_free},
    {"quant.quant_codes_u8", QC_FIXED, 40, qc_gen, qc_ref, NULL, qc_run, qc_free},
    {"quant.quant_sign_row_i8", SR_FIXED, 60, sr_gen, sr_ref, NULL, sr_run, sr_free},
    {"quant.quant_codes_u8_rows", 8, 40, qr_gen, qr_ref, NULL, qr_run, qr_free},
    {"batchnorm.forward", 10, 40, bn_gen, bnf_ref, NULL, bnf_run, bn_free},
    {"batchnorm.backward", 10, 40, bn_gen, bnb_ref, NULL, bnb_run, bn_free},
    {"batchnorm.row_sums", 10, 40, bn_gen, bns_ref, NULL, bns_run, bn_free},
    {"batchnorm.hardtanh_fused", 10, 40, bn_gen, bnh_ref, NULL, bnh_run, bn_free},
    {"activation.backward", 5, 30, act_gen, act_ref, NULL, act_run, act_free},
};
const int ck_elementwise_n = sizeof ck_elementwise / sizeof ck_elementwise[0];
