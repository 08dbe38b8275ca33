/* BiDet's binary conv (core/detect/bidet_conv.h) against independent plain
 * loops written here from the reference's definitions (binary_utils.py):
 *   - forward: a direct loop over output pixels and taps, where a tap outside
 *     the input reads -1 (F.pad value -1), sign(0) = 0, Wb = mean|W_o| sign(W),
 *     plus the bias; on random data with exact zeros, +-1 and |x| > 1; and a
 *     hand-computed 2x2 case;
 *   - backward: sign has derivative 0, so finite differences cannot see the
 *     straight-through estimators. dx is compared with a direct transposed
 *     loop times SignTwoOrders' piecewise 2 - 2x / 2 + 2x; dW with the formula
 *     a_o gW + sign(W)/n sum(gW sign(W)) computed from a direct gW loop, and
 *     by finite differences: (1) of the real forward, which with |W| > h keeps
 *     sign fixed and so sees only the mean|W| term, and (2) of the surrogate
 *     mean|W| * (sign(W0) + W - W0) (value = sign, derivative 1 = the STE),
 *     which autograd differentiates exactly as the reference does; dbias by
 *     finite differences of the forward;
 *   - the layer: input -> model_bidet_conv -> output, model_run and
 *     model_backward_outputs against the direct functions; its init;
 *   - 1 vs 2 OpenMP threads bitwise.
 * Links the f64 engine. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bidet_conv.h"
#include "model.h"
#include "testutil.h"

#if !REAL_IS_DOUBLE
#error "test_bidet_conv must link the f64 engine (finite differences need double)"
#endif

#define FD_H 1e-6
#define FD_TOL 1e-7
#define EXACT_TOL 1e-12

static uint64_t stream_key;
static Rng next_rng(void) { return rng_stream(4242, RNG_TEST, stream_key++, 0); }

/* ------------------------------------------------------ independent loops */

static double tsign(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }

/* SignTwoOrders.backward, written as the reference's two masks */
static double two_orders(double x) {
    if (x >= 0 && x < 1) return 2 - 2 * x;
    if (x >= -1 && x < 0) return 2 + 2 * x;
    return 0;
}

/* the padded sign map's value at input coordinates (ih, iw) of plane x */
static double ba_at(const real *x, int H, int W, int ih, int iw) {
    if (ih < 0 || ih >= H || iw < 0 || iw >= W) return -1.0;
    return tsign(x[ih * W + iw]);
}

/* per-channel mean |W| */
static void alphas(double *a, const real *w, int O, int CK) {
    for (int o = 0; o < O; o++) {
        double s = 0;
        for (int j = 0; j < CK; j++) s += fabs(w[o * CK + j]);
        a[o] = s / CK;
    }
}

/* y = conv(pad_-1(sign x), wbin) + bias, wbin given in full [O, CK] */
static void naive_forward_wbin(real *y, const real *x, const double *wbin, const real *bias, const ConvDims *d) {
    const int CK = d->C * d->KH * d->KW;
    for (int n = 0; n < d->N; n++)
        for (int o = 0; o < d->O; o++)
            for (int oh = 0; oh < d->OH; oh++)
                for (int ow = 0; ow < d->OW; ow++) {
                    double s = bias ? bias[o] : 0;
                    for (int c = 0; c < d->C; c++)
                        for (int kh = 0; kh < d->KH; kh++)
                            for (int kw = 0; kw < d->KW; kw++) {
                                int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                                s += wbin[o * CK + (c * d->KH + kh) * d->KW + kw] *
                                     ba_at(x + ((long)n * d->C + c) * d->H * d->W, d->H, d->W, ih, iw);
                            }
                    y[(((long)n * d->O + o) * d->OH + oh) * d->OW + ow] = (real)s;
                }
}

static void naive_wbin(double *wbin, const real *w, int O, int CK) {
    double *a = malloc(sizeof *a * O);
    alphas(a, w, O, CK);
    for (int o = 0; o < O; o++)
        for (int j = 0; j < CK; j++) wbin[o * CK + j] = a[o] * tsign(w[o * CK + j]);
    free(a);
}

static void naive_forward(real *y, const real *x, const real *w, const real *bias, const ConvDims *d) {
    const int CK = d->C * d->KH * d->KW;
    double *wbin = malloc(sizeof *wbin * d->O * CK);
    naive_wbin(wbin, w, d->O, CK);
    naive_forward_wbin(y, x, wbin, bias, d);
    free(wbin);
}

/* dx = (sum over the taps that read (ih, iw) of dy * Wb) * two_orders(x);
 * gw[o, c, kh, kw] = sum dy * Ba (border -1 included) */
static void naive_backward(double *dx, double *gw, const real *dy, const real *x, const real *w, const ConvDims *d) {
    const int CK = d->C * d->KH * d->KW;
    double *wbin = malloc(sizeof *wbin * d->O * CK);
    naive_wbin(wbin, w, d->O, CK);
    memset(dx, 0, sizeof *dx * d->N * d->C * d->H * d->W);
    memset(gw, 0, sizeof *gw * d->O * CK);
    for (int n = 0; n < d->N; n++)
        for (int o = 0; o < d->O; o++)
            for (int oh = 0; oh < d->OH; oh++)
                for (int ow = 0; ow < d->OW; ow++) {
                    const double g = dy[(((long)n * d->O + o) * d->OH + oh) * d->OW + ow];
                    for (int c = 0; c < d->C; c++)
                        for (int kh = 0; kh < d->KH; kh++)
                            for (int kw = 0; kw < d->KW; kw++) {
                                int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                                const real *xp = x + ((long)n * d->C + c) * d->H * d->W;
                                const int j = (c * d->KH + kh) * d->KW + kw;
                                gw[o * CK + j] += g * ba_at(xp, d->H, d->W, ih, iw);
                                if (ih >= 0 && ih < d->H && iw >= 0 && iw < d->W)
                                    dx[(((long)n * d->C + c) * d->H + ih) * d->W + iw] += g * wbin[o * CK + j];
                            }
                }
    for (long i = 0; i < (long)d->N * d->C * d->H * d->W; i++) dx[i] *= two_orders(x[i]);
    free(wbin);
}

static double dot_r(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

static double max_rel_d(const real *a, const double *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs(b[i]) > 1 ? fabs(b[i]) : 1;
        double e = fabs((double)a[i] - b[i]) / den;
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

/* x with exact zeros, exact +-1 and values beyond [-1, 1] mixed in */
static void fill_input(real *x, size_t n, Rng *r) {
    static const real special[] = {0, 0, 1, -1, 0.5, -0.5, 1.5, -2, 0.999, -0.999};
    for (size_t i = 0; i < n; i++) {
        if (rng_below(r, 3) == 0) x[i] = special[rng_below(r, sizeof special / sizeof *special)];
        else x[i] = (real)(3.0 * rng_uniform(r) - 1.5);
    }
}

/* weights away from 0 by more than the FD step (so sign stays fixed under
 * the perturbation), with a few exact zeros unless nozero */
static void fill_weight(real *w, size_t n, Rng *r, int nozero) {
    for (size_t i = 0; i < n; i++) {
        double v = 0.05 + 0.95 * rng_uniform(r);
        w[i] = (real)(rng_below(r, 2) ? v : -v);
        if (!nozero && rng_below(r, 8) == 0) w[i] = 0;
    }
}

/* ------------------------------------------------------------------ tests */

/* one input plane [[1, -1], [0, 2]], a 3x3 kernel of 0.5 (a = 0.5, Wb = 0.5),
 * pad 1: every window covers all 4 interior cells (signs 1 - 1 + 0 + 1 = 1)
 * and 5 border cells (-1 each), so y = 0.5 (1 - 5) + b = -2 + b everywhere;
 * an all-zero input gives 0.5 (-5) + b */
static void test_hand(void) {
    ConvDims d = conv_dims(1, 1, 2, 2, 1, 3, 1, 1);
    real x[4] = {1, -1, 0, 2}, w[9], b[1] = {0.25}, y[4];
    for (int i = 0; i < 9; i++) w[i] = 0.5;
    real *scr = tu_alloc(bidet_conv_scratch_size(&d));
    bidet_conv_forward(y, x, w, b, &d, scr);
    for (int i = 0; i < 4; i++) CHECK(fabs(y[i] - (-2.0 + 0.25)) < EXACT_TOL, "hand: y[%d] = %.17g, want -1.75", i, y[i]);
    real z[4] = {0, 0, 0, 0};
    bidet_conv_forward(y, z, w, b, &d, scr);
    for (int i = 0; i < 4; i++) CHECK(fabs(y[i] - (-2.5 + 0.25)) < EXACT_TOL, "hand zeros: y[%d] = %.17g, want -2.25", i, y[i]);
    /* the weight scale: a kernel of signs (+-1, 0) scaled by mean |w| */
    real w2[9] = {1, -2, 0, 3, 0, 0, 0, 0, 0}; /* a = 6/9; Wb = (2/3)(1, -1, 0, 1, 0...) */
    real xa[4] = {1, 1, 1, 1};
    bidet_conv_forward(y, xa, w2, NULL, &d, scr);
    /* output (0, 0): taps (kh, kw) read input (kh-1, kw-1); taps 0, 1, 3 read the border: -1 */
    CHECK(fabs(y[0] - (2.0 / 3.0) * (-1.0 + 1.0 - 1.0)) < EXACT_TOL, "hand scale: y[0] = %.17g", y[0]);
    /* output (1, 1): taps 0, 1, 3 read (0,0), (0,1), (1,0): all +1 */
    CHECK(fabs(y[3] - (2.0 / 3.0) * (1.0 - 1.0 + 1.0)) < EXACT_TOL, "hand scale: y[3] = %.17g", y[3]);
    free(scr);
}

typedef struct { int N, C, H, W, O, K, stride, pad; } Shape;

typedef struct {
    ConvDims d;
    real *x, *w, *b, *R, *y, *scr;
    size_t nx, nw, ny;
} Case;

/* L(w) = sum(R * forward(x, w, b)) of the library */
static double lib_loss(Case *c) {
    bidet_conv_forward(c->y, c->x, c->w, c->b, &c->d, c->scr);
    return dot_r(c->y, c->R, c->ny);
}

/* the STE surrogate: Wb(W) = mean|W_o| * (sign(W0) + W - W0) */
static double surrogate_loss(Case *c, const real *w0) {
    const int O = c->d.O, CK = (int)(c->nw / (size_t)O);
    double *a = malloc(sizeof *a * O), *wbin = malloc(sizeof *wbin * c->nw);
    alphas(a, c->w, O, CK);
    for (int o = 0; o < O; o++)
        for (int j = 0; j < CK; j++) {
            const int k = o * CK + j;
            wbin[k] = a[o] * (tsign(w0[k]) + ((double)c->w[k] - (double)w0[k]));
        }
    naive_forward_wbin(c->y, c->x, wbin, c->b, &c->d);
    free(a);
    free(wbin);
    return dot_r(c->y, c->R, c->ny);
}

static void test_shape(Shape s) {
    Rng r = next_rng();
    Case c;
    c.d = conv_dims(s.N, s.C, s.H, s.W, s.O, s.K, s.stride, s.pad);
    const ConvDims *d = &c.d;
    c.nx = (size_t)s.N * s.C * s.H * s.W;
    c.nw = (size_t)s.O * s.C * s.K * s.K;
    c.ny = (size_t)s.N * s.O * d->OH * d->OW;
    const int CK = s.C * s.K * s.K;
    char tag[96];
    snprintf(tag, sizeof tag, "N%d C%d %dx%d O%d K%d s%d p%d", s.N, s.C, s.H, s.W, s.O, s.K, s.stride, s.pad);
    c.x = tu_alloc(c.nx);
    c.w = tu_alloc(c.nw);
    c.b = tu_alloc_rand((size_t)s.O, &r);
    c.R = tu_alloc_rand(c.ny, &r);
    c.y = tu_alloc(c.ny);
    c.scr = tu_alloc(bidet_conv_scratch_size(d));
    fill_input(c.x, c.nx, &r);
    fill_weight(c.w, c.nw, &r, 0);

    /* forward against the direct loop */
    real *yref = tu_alloc(c.ny);
    naive_forward(yref, c.x, c.w, c.b, d);
    bidet_conv_forward(c.y, c.x, c.w, c.b, d, c.scr);
    CHECK(tu_max_rel_err(c.y, yref, c.ny) < EXACT_TOL, "%s forward: max rel err %.3e", tag,
          tu_max_rel_err(c.y, yref, c.ny));
    /* without the bias */
    naive_forward(yref, c.x, c.w, NULL, d);
    bidet_conv_forward(c.y, c.x, c.w, NULL, d, c.scr);
    CHECK(tu_max_rel_err(c.y, yref, c.ny) < EXACT_TOL, "%s forward, no bias: max rel err %.3e", tag,
          tu_max_rel_err(c.y, yref, c.ny));

    /* backward, accumulating on a random pre-fill */
    real *dx = tu_alloc_rand(c.nx, &r), *dw = tu_alloc_rand(c.nw, &r), *db = tu_alloc_rand((size_t)s.O, &r);
    real *dx0 = tu_alloc(c.nx), *dw0 = tu_alloc(c.nw), *db0 = tu_alloc((size_t)s.O);
    memcpy(dx0, dx, c.nx * sizeof(real));
    memcpy(dw0, dw, c.nw * sizeof(real));
    memcpy(db0, db, (size_t)s.O * sizeof(real));
    bidet_conv_backward(dx, dw, db, c.R, c.x, c.w, d, c.scr);
    for (size_t i = 0; i < c.nx; i++) dx[i] -= dx0[i];
    for (size_t i = 0; i < c.nw; i++) dw[i] -= dw0[i];
    for (int i = 0; i < s.O; i++) db[i] -= db0[i];

    double *dx_ref = malloc(sizeof *dx_ref * c.nx), *gw = malloc(sizeof *gw * c.nw), *dw_ref = malloc(sizeof *dw_ref * c.nw);
    double *a = malloc(sizeof *a * s.O);
    naive_backward(dx_ref, gw, c.R, c.x, c.w, d);
    CHECK(max_rel_d(dx, dx_ref, c.nx) < EXACT_TOL, "%s dx vs the direct loop: max rel err %.3e", tag,
          max_rel_d(dx, dx_ref, c.nx));
    alphas(a, c.w, s.O, CK);
    for (int o = 0; o < s.O; o++) {
        double m = 0;
        for (int j = 0; j < CK; j++) m += gw[o * CK + j] * tsign(c.w[o * CK + j]);
        m /= CK;
        for (int j = 0; j < CK; j++) dw_ref[o * CK + j] = a[o] * gw[o * CK + j] + tsign(c.w[o * CK + j]) * m;
    }
    CHECK(max_rel_d(dw, dw_ref, c.nw) < EXACT_TOL, "%s dW vs the formula: max rel err %.3e", tag,
          max_rel_d(dw, dw_ref, c.nw));

    /* FD of the real forward: with sign fixed only the mean|W| term moves,
     * i.e. dW - a_o gW. Weights without zeros: |w| has no derivative at 0. */
    fill_weight(c.w, c.nw, &r, 1);
    naive_backward(dx_ref, gw, c.R, c.x, c.w, d);
    alphas(a, c.w, s.O, CK);
    memset(dw, 0, c.nw * sizeof(real));
    bidet_conv_backward(NULL, dw, NULL, c.R, c.x, c.w, d, c.scr);
    double worst_mean = 0, worst_ste = 0, worst_b = 0;
    real *w0 = tu_alloc(c.nw);
    memcpy(w0, c.w, c.nw * sizeof(real));
    for (size_t i = 0; i < c.nw; i++) {
        const int o = (int)(i / (size_t)CK);
        const real wi = c.w[i];
        c.w[i] = wi + FD_H;
        double lp = lib_loss(&c), sp = surrogate_loss(&c, w0);
        c.w[i] = wi - FD_H;
        double lm = lib_loss(&c), sm = surrogate_loss(&c, w0);
        c.w[i] = wi;
        const double fd_mean = (lp - lm) / (2 * FD_H), fd_ste = (sp - sm) / (2 * FD_H);
        const double want_mean = (double)dw[i] - a[o] * gw[i];
        double e1 = fabs(fd_mean - want_mean) / fmax(1, fabs(want_mean));
        double e2 = fabs(fd_ste - (double)dw[i]) / fmax(1, fabs((double)dw[i]));
        if (!(e1 <= worst_mean)) worst_mean = e1;
        if (!(e2 <= worst_ste)) worst_ste = e2;
    }
    CHECK(worst_mean <= FD_TOL, "%s dW's mean|W| term vs FD of the forward: %.3e", tag, worst_mean);
    CHECK(worst_ste <= FD_TOL, "%s dW vs FD of the STE surrogate: %.3e", tag, worst_ste);
    for (int o = 0; o < s.O; o++) {
        const real bo = c.b[o];
        c.b[o] = bo + FD_H;
        double lp = lib_loss(&c);
        c.b[o] = bo - FD_H;
        double lm = lib_loss(&c);
        c.b[o] = bo;
        double e = fabs((lp - lm) / (2 * FD_H) - (double)db[o]) / fmax(1, fabs((double)db[o]));
        if (!(e <= worst_b)) worst_b = e;
    }
    CHECK(worst_b <= FD_TOL, "%s dbias vs FD: %.3e", tag, worst_b);

    /* NULL targets: dbias alone, dx alone give the same values */
    real *dx2 = tu_alloc(c.nx), *db2 = tu_alloc((size_t)s.O);
    bidet_conv_backward(dx2, NULL, NULL, c.R, c.x, c.w, d, c.scr);
    bidet_conv_backward(NULL, NULL, db2, c.R, c.x, c.w, d, c.scr);
    CHECK(max_rel_d(dx2, dx_ref, c.nx) < EXACT_TOL, "%s dx alone: %.3e", tag, max_rel_d(dx2, dx_ref, c.nx));
    double dbmax = 0;
    for (int o = 0; o < s.O; o++) dbmax = fmax(dbmax, fabs(db2[o] - db[o]));
    CHECK(dbmax < EXACT_TOL, "%s dbias alone differs by %.3e", tag, dbmax);

    free(dx2); free(db2); free(w0);
    free(dx_ref); free(gw); free(dw_ref); free(a);
    free(dx); free(dw); free(db); free(dx0); free(dw0); free(db0);
    free(yref); free(c.x); free(c.w); free(c.b); free(c.R); free(c.y); free(c.scr);
}

/* the input gradient's piecewise factor at the edges of its pieces */
static void test_sign_grad_points(void) {
    static const double xs[] = {0, 0.5, -0.5, 1, -1, 0.999, -0.999, 1.5, -3, 0.25};
    static const double want[] = {2, 1, 1, 0, 0, 0.002, 0.002, 0, 0, 1.5};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        double g = bidet_sign_grad((real)xs[i]);
        CHECK(fabs(g - want[i]) < 1e-12, "sign grad at %g: %.17g, want %g", xs[i], g, want[i]);
        CHECK(fabs(g - two_orders(xs[i])) < 1e-12, "sign grad at %g differs from the reference's masks", xs[i]);
    }
    CHECK(bidet_sign(0) == 0 && bidet_sign(-0.0) == 0 && bidet_sign(1e-300) == 1 && bidet_sign(-1e-300) == -1,
          "torch.sign at 0 and tiny values");
}

/* input -> model_bidet_conv -> output, against the direct functions */
static void test_model(void) {
    enum { N = 2, C = 3, H = 6, W = 5, O = 4 };
    Model m;
    model_init(&m, "bidet_t", C, H, W, 0);
    int x = model_input(&m);
    int y = model_bidet_conv(&m, x, O, 3, 1, 1, "rpn_conv");
    CHECK(y == 1, "model_bidet_conv index %d", y);
    CHECK(model_input_grad(&m, 1) == 0, "model_input_grad");
    CHECK(model_alloc(&m, N) == 0, "model_alloc: %s", m.err);
    model_init_params(&m, 7);
    const Layer *l = &m.layers[y];
    CHECK(strcmp(l->kind->name, "bidet_conv") == 0 && layer_kind_find("bidet_conv") == l->kind,
          "the kind is found by its name");
    CHECK(l->C == O && l->H == H && l->W == W && l->w_n == (size_t)O * C * 9 && l->b_n == O,
          "shape %dx%dx%d, w_n %zu, b_n %zu", l->C, l->H, l->W, l->w_n, l->b_n);
    CHECK(!l->kind->binary, "not the CycleBNN binary conv: its MACs are not scaled by the cyclic bits");
    long fp = -1, bin = -1;
    long total = model_macs(&m, &fp, &bin);
    CHECK(total == (long)O * H * W * C * 9 && fp == total && bin == 0, "macs %ld (fp %ld, bin %ld)", total, fp, bin);
    /* default init: nn.Conv2d's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and bias */
    const double bound = 1.0 / sqrt(C * 9.0);
    int in_bound = 1, bias_nonzero = 0;
    for (size_t j = 0; j < l->w_n; j++) in_bound &= fabs(m.params[l->w_off + j]) <= bound;
    for (size_t j = 0; j < l->b_n; j++) {
        in_bound &= fabs(m.params[l->b_off + j]) <= bound;
        bias_nonzero |= m.params[l->b_off + j] != 0;
    }
    CHECK(in_bound && bias_nonzero, "default init within +-1/sqrt(fan_in), bias drawn");

    Rng r = next_rng();
    const size_t nx = (size_t)N * C * H * W, ny = (size_t)N * O * H * W;
    real *in = tu_alloc(nx), *R = tu_alloc_rand(ny, &r);
    fill_input(in, nx, &r);
    CHECK(model_run(&m, in, N, 1) == 0, "model_run: %s", m.run_err);
    ConvDims d = conv_dims(N, C, H, W, O, 3, 1, 1);
    real *scr = tu_alloc(bidet_conv_scratch_size(&d)), *yd = tu_alloc(ny);
    bidet_conv_forward(yd, in, m.params + l->w_off, m.params + l->b_off, &d, scr);
    CHECK(memcmp(model_output(&m, 0), yd, ny * sizeof(real)) == 0, "model forward differs from bidet_conv_forward");
    memcpy(model_output_grad(&m, 0), R, ny * sizeof(real));
    model_backward_outputs(&m);
    real *dx = tu_alloc(nx), *dw = tu_alloc(l->w_n), *db = tu_alloc(l->b_n);
    bidet_conv_backward(dx, dw, db, R, in, m.params + l->w_off, &d, scr);
    CHECK(memcmp(model_input_grad_buf(&m), dx, nx * sizeof(real)) == 0, "model dx differs");
    CHECK(memcmp(m.grads + l->w_off, dw, l->w_n * sizeof(real)) == 0, "model dW differs");
    CHECK(memcmp(m.grads + l->b_off, db, l->b_n * sizeof(real)) == 0, "model dbias differs");
    /* and the model's gradients against the independent loop */
    double *dx_ref = malloc(sizeof *dx_ref * nx), *gw = malloc(sizeof *gw * l->w_n);
    naive_backward(dx_ref, gw, R, in, m.params + l->w_off, &d);
    CHECK(max_rel_d(model_input_grad_buf(&m), dx_ref, nx) < EXACT_TOL, "model dx vs the direct loop");
    free(dx_ref); free(gw);
    model_free(&m);

    /* N(0, init_std) and a zero bias when the builder sets init_std (the detector's normal_init) */
    model_init(&m, "bidet_t", 64, 4, 4, 0);
    x = model_input(&m);
    y = model_bidet_conv(&m, x, 32, 3, 1, 1, "rpn_conv");
    m.layers[y].init_std = 0.01;
    CHECK(model_alloc(&m, 1) == 0, "model_alloc: %s", m.err);
    model_init_params(&m, 3);
    l = &m.layers[y];
    double s2 = 0;
    int bias_zero = 1;
    for (size_t j = 0; j < l->w_n; j++) s2 += m.params[l->w_off + j] * m.params[l->w_off + j];
    for (size_t j = 0; j < l->b_n; j++) bias_zero &= m.params[l->b_off + j] == 0;
    const double sd = sqrt(s2 / (double)l->w_n); /* 18432 draws: the estimate is within ~0.5 % */
    CHECK(fabs(sd - 0.01) < 0.0003 && bias_zero, "init_std 0.01: sample std %.5f, bias zero %d", sd, bias_zero);
    model_free(&m);

    /* a bad window is refused by the builder */
    model_init(&m, "bidet_t", 3, 2, 2, 0);
    x = model_input(&m);
    CHECK(model_bidet_conv(&m, x, 4, 5, 1, 0, "too_big") == -1 && strstr(m.err, "too_big"), "5x5 on 2x2: '%s'", m.err);
    model_free(&m);

    free(in); free(R); free(scr); free(yd); free(dx); free(dw); free(db);
}

/* 1 and 2 threads give the same bits */
static void test_threads(void) {
    Rng r = next_rng();
    ConvDims d = conv_dims(3, 5, 9, 7, 20, 3, 2, 1);
    const size_t nx = (size_t)3 * 5 * 9 * 7, nw = (size_t)20 * 5 * 9, ny = (size_t)3 * 20 * d.OH * d.OW;
    real *x = tu_alloc(nx), *w = tu_alloc(nw), *b = tu_alloc_rand(20, &r), *R = tu_alloc_rand(ny, &r);
    fill_input(x, nx, &r);
    fill_weight(w, nw, &r, 0);
    real *scr = tu_alloc(bidet_conv_scratch_size(&d));
    real *y[2], *dx[2], *dw[2], *db[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        y[t] = tu_alloc(ny); dx[t] = tu_alloc(nx); dw[t] = tu_alloc(nw); db[t] = tu_alloc(20);
        bidet_conv_forward(y[t], x, w, b, &d, scr);
        bidet_conv_backward(dx[t], dw[t], db[t], R, x, w, &d, scr);
    }
    omp_set_num_threads(2);
    CHECK(!memcmp(y[0], y[1], ny * sizeof(real)) && !memcmp(dx[0], dx[1], nx * sizeof(real)) &&
              !memcmp(dw[0], dw[1], nw * sizeof(real)) && !memcmp(db[0], db[1], 20 * sizeof(real)),
          "1 vs 2 threads differ");
    for (int t = 0; t < 2; t++) { free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); }
    free(x); free(w); free(b); free(R); free(scr);
}

int main(void) {
    test_hand();
    test_sign_grad_points();
    const Shape shapes[] = {
        {2, 3, 5, 6, 4, 3, 1, 1}, /* the RPN's 3x3, stride 1, pad 1 */
        {2, 2, 7, 5, 3, 3, 2, 1}, /* stride 2 */
        {1, 3, 4, 4, 2, 1, 1, 0}, /* 1x1, no border */
        {1, 2, 3, 4, 3, 3, 1, 2}, /* a border wider than the kernel's reach: outputs of border only */
        {1, 1, 6, 6, 2, 5, 3, 2},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) test_shape(shapes[i]);
    test_model();
    test_threads();
    return tu_finish("test_bidet_conv");
}
