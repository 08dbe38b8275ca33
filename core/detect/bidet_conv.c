/* BiDet's binary convolution (bidet_conv.h): the sign map is written, with
 * its -1 border, into a padded buffer, and core/ops' conv2d runs on it with
 * pad 0, so the border enters the forward and the weight gradient exactly as
 * F.pad(value=-1) followed by an unpadded F.conv2d does; the input gradient
 * is taken on the padded buffer and only its interior is kept.
 *
 * Scratch (reals, each part rounded up to 16 so every part stays aligned as
 * the arena's start is): padded sign map, its gradient, Wb, gWb, then the
 * conv kernel's own scratch for the padded shape. All parallel loops write
 * disjoint outputs and each reduction runs in a fixed order, so the results
 * do not depend on the thread count. */
#include "bidet_conv.h"

#include <string.h>

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* the same conv on the padded input, with no padding of its own */
static ConvDims padded_dims(const ConvDims *d) {
    return conv_dims(d->N, d->C, d->H + 2 * d->pad, d->W + 2 * d->pad, d->O, d->KH, d->stride, 0);
}

typedef struct { real *xpad, *dpad, *wb, *gwb, *conv; } Parts;

static Parts parts(const ConvDims *d, real *scratch) {
    const ConvDims pd = padded_dims(d);
    const size_t nx = round16((size_t)pd.N * pd.C * pd.H * pd.W), nw = round16((size_t)d->O * d->C * d->KH * d->KW);
    Parts p;
    p.xpad = scratch;
    p.dpad = p.xpad + nx;
    p.wb = p.dpad + nx;
    p.gwb = p.wb + nw;
    p.conv = p.gwb + nw;
    return p;
}

size_t bidet_conv_scratch_size(const ConvDims *d) {
    const ConvDims pd = padded_dims(d);
    const size_t nx = round16((size_t)pd.N * pd.C * pd.H * pd.W), nw = round16((size_t)d->O * d->C * d->KH * d->KW);
    return 2 * nx + 2 * nw + conv2d_scratch_size(&pd);
}

void bidet_weight_binarize(real *wb, real *alpha, const real *w, int O, size_t CK) {
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) {
        const real *wo = w + (size_t)o * CK;
        double s = 0.0;
        for (size_t j = 0; j < CK; j++) s += wo[j] < 0 ? -(double)wo[j] : (double)wo[j];
        const real a = (real)(s / (double)CK);
        if (alpha) alpha[o] = a;
        for (size_t j = 0; j < CK; j++) wb[(size_t)o * CK + j] = a * bidet_sign(wo[j]);
    }
}

/* xpad[n, c] = -1 on the border of width pad, sign(inp[n, c]) inside */
static void sign_pad(real *xpad, const real *inp, const ConvDims *d) {
    const int p = d->pad, Hp = d->H + 2 * p, Wp = d->W + 2 * p;
    #pragma omp parallel for schedule(static)
    for (long plane = 0; plane < (long)d->N * d->C; plane++) {
        real *dst = xpad + plane * Hp * Wp;
        const real *src = inp + plane * d->H * d->W;
        for (int i = 0; i < Hp; i++) {
            real *row = dst + (long)i * Wp;
            const int in_row = i >= p && i < p + d->H;
            for (int j = 0; j < Wp; j++)
                row[j] = in_row && j >= p && j < p + d->W ? bidet_sign(src[(long)(i - p) * d->W + (j - p)]) : (real)-1;
        }
    }
}

void bidet_conv_forward(real *out, const real *inp, const real *weight, const real *bias, const ConvDims *d,
                        real *scratch) {
    const ConvDims pd = padded_dims(d);
    const Parts s = parts(d, scratch);
    sign_pad(s.xpad, inp, d);
    bidet_weight_binarize(s.wb, NULL, weight, d->O, (size_t)d->C * d->KH * d->KW);
    conv2d_forward(out, s.xpad, s.wb, &pd, s.conv);
    if (bias) conv2d_bias_forward(out, bias, d->N, d->O, d->OH * d->OW);
}

/* dW[o] += a_o * g[o] + sign(W[o]) / n * sum_j g[o, j] sign(W[o, j]) */
static void weight_grad(real *dweight, const real *gwb, const real *w, int O, size_t CK) {
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) {
        const real *wo = w + (size_t)o * CK, *go = gwb + (size_t)o * CK;
        double sabs = 0.0, sg = 0.0;
        for (size_t j = 0; j < CK; j++) {
            sabs += wo[j] < 0 ? -(double)wo[j] : (double)wo[j];
            sg += (double)go[j] * (double)bidet_sign(wo[j]);
        }
        const double a = (double)(real)(sabs / (double)CK); /* a_o exactly as the forward rounded it */
        const double m = sg / (double)CK;
        real *dw = dweight + (size_t)o * CK;
        for (size_t j = 0; j < CK; j++) dw[j] += (real)(a * (double)go[j] + m * (double)bidet_sign(wo[j]));
    }
}

/* dinp += dpad's interior * max(0, 2 - 2|x|) */
static void input_grad(real *dinp, const real *dpad, const real *inp, const ConvDims *d) {
    const int p = d->pad, Hp = d->H + 2 * p, Wp = d->W + 2 * p;
    #pragma omp parallel for schedule(static)
    for (long plane = 0; plane < (long)d->N * d->C; plane++) {
        const real *g = dpad + plane * Hp * Wp;
        const real *x = inp + plane * d->H * d->W;
        real *dx = dinp + plane * d->H * d->W;
        for (int i = 0; i < d->H; i++)
            for (int j = 0; j < d->W; j++) {
                const long k = (long)i * d->W + j;
                dx[k] += g[(long)(i + p) * Wp + (j + p)] * bidet_sign_grad(x[k]);
            }
    }
}

void bidet_conv_backward(real *dinp, real *dweight, real *dbias, const real *dout, const real *inp,
                         const real *weight, const ConvDims *d, real *scratch) {
    if (dbias) conv2d_bias_backward(dbias, dout, d->N, d->O, d->OH * d->OW);
    if (!dinp && !dweight) return;
    const ConvDims pd = padded_dims(d);
    const Parts s = parts(d, scratch);
    const size_t CK = (size_t)d->C * d->KH * d->KW, nx = (size_t)pd.N * pd.C * pd.H * pd.W;
    /* conv2d_backward accumulates: both targets start from zero */
    if (dweight) {
        sign_pad(s.xpad, inp, d); /* the weight gradient reads the padded sign map, border included */
        memset(s.gwb, 0, (size_t)d->O * CK * sizeof(real));
    }
    if (dinp) memset(s.dpad, 0, nx * sizeof(real));
    bidet_weight_binarize(s.wb, NULL, weight, d->O, CK);
    conv2d_backward(dinp ? s.dpad : NULL, dweight ? s.gwb : NULL, dout, s.xpad, s.wb, &pd, s.conv);
    if (dweight) weight_grad(dweight, s.gwb, weight, d->O, CK);
    if (dinp) input_grad(dinp, s.dpad, inp, d);
}
