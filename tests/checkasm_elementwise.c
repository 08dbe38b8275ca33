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
 * Both dispatch on cpu_features() inside the call, so they run at every level. */
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

const CkKernel ck_elementwise[] = {
    {"optim.adamw_step", 8, 30, ad_gen, ad_ref, NULL, ad_run, ad_free},
    {"quant.quant_codes_u8", QC_FIXED, 40, qc_gen, qc_ref, NULL, qc_run, qc_free},
};
const int ck_elementwise_n = sizeof ck_elementwise / sizeof ck_elementwise[0];
