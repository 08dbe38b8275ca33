/* Spatial pools over NCHW. Every (n, c) plane is independent: the parallel loops
 * run over the N*C planes and each plane is handled by one thread in scan order,
 * so backward scatters (overlapping windows) never race and always add in the
 * same order. Output sizes use floor (ceil_mode = False). */
#include <math.h>

#include "ops.h"

PoolDims pool_dims(int N, int C, int H, int W, int K, int stride, int pad) {
    PoolDims d;
    d.N = N; d.C = C; d.H = H; d.W = W;
    d.K = K; d.stride = stride; d.pad = pad;
    d.OH = (H + 2 * pad - K) / stride + 1;
    d.OW = (W + 2 * pad - K) / stride + 1;
    return d;
}

/* Padding acts as -inf, i.e. padded positions are simply never candidates.
 * For pad < K every window holds at least one real position. The comparison is
 * strict, so among equal values the first in scan order (row-major inside the
 * window) keeps the argmax. */
void maxpool_forward(real *out /* [N,C,OH,OW] */, int32_t *argmax /* [N,C,OH,OW] */,
                     const real *inp /* [N,C,H,W] */, const PoolDims *d) {
    const int H = d->H, W = d->W, K = d->K, S = d->stride, P = d->pad, OH = d->OH, OW = d->OW;
    const long planes = (long)d->N * d->C;

    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        const real *x = inp + p * H * W;
        real *o = out + p * OH * OW;
        int32_t *am = argmax + p * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                int h0 = oh * S - P, w0 = ow * S - P;
                real best = (real)-INFINITY;
                int32_t idx = -1;
                for (int kh = 0; kh < K; kh++) {
                    int h = h0 + kh;
                    if (h < 0 || h >= H) continue;
                    for (int kw = 0; kw < K; kw++) {
                        int w = w0 + kw;
                        if (w < 0 || w >= W) continue;
                        real v = x[h * W + w];
                        /* idx < 0: take the first real position even if it is -inf */
                        if (idx < 0 || v > best) { best = v; idx = h * W + w; }
                    }
                }
                o[oh * OW + ow] = best;
                am[oh * OW + ow] = idx;
            }
        }
    }
}

void maxpool_backward(real *dinp /* [N,C,H,W] or NULL */, const real *dout /* [N,C,OH,OW] */,
                      const int32_t *argmax /* [N,C,OH,OW] */, const PoolDims *d) {
    if (!dinp) return;
    const long HW = (long)d->H * d->W, OHW = (long)d->OH * d->OW;
    const long planes = (long)d->N * d->C;

    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        real *dx = dinp + p * HW;
        const real *dy = dout + p * OHW;
        const int32_t *am = argmax + p * OHW;
        for (long i = 0; i < OHW; i++)
            if (am[i] >= 0) dx[am[i]] += dy[i];
    }
}

/* count_include_pad = True: the divisor is always K*K. (PyTorch clips the window
 * to the padded extent [-pad, H+pad) before counting; with floor output sizes no
 * window reaches past it, so that is K*K too.) */
void avgpool_forward(real *out /* [N,C,OH,OW] */, const real *inp /* [N,C,H,W] */, const PoolDims *d) {
    const int H = d->H, W = d->W, K = d->K, S = d->stride, P = d->pad, OH = d->OH, OW = d->OW;
    const long planes = (long)d->N * d->C;
    const double inv = 1.0 / ((double)K * K);

    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        const real *x = inp + p * H * W;
        real *o = out + p * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                int h0 = oh * S - P, w0 = ow * S - P;
                double sum = 0.0;
                for (int kh = 0; kh < K; kh++) {
                    int h = h0 + kh;
                    if (h < 0 || h >= H) continue;
                    for (int kw = 0; kw < K; kw++) {
                        int w = w0 + kw;
                        if (w < 0 || w >= W) continue;
                        sum += (double)x[h * W + w];
                    }
                }
                o[oh * OW + ow] = (real)(sum * inv);
            }
        }
    }
}

void avgpool_backward(real *dinp /* [N,C,H,W] or NULL */, const real *dout /* [N,C,OH,OW] */,
                      const PoolDims *d) {
    if (!dinp) return;
    const int H = d->H, W = d->W, K = d->K, S = d->stride, P = d->pad, OH = d->OH, OW = d->OW;
    const long planes = (long)d->N * d->C;
    const double inv = 1.0 / ((double)K * K);

    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        real *dx = dinp + p * H * W;
        const real *dy = dout + p * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                int h0 = oh * S - P, w0 = ow * S - P;
                real g = (real)((double)dy[oh * OW + ow] * inv);
                for (int kh = 0; kh < K; kh++) {
                    int h = h0 + kh;
                    if (h < 0 || h >= H) continue;
                    for (int kw = 0; kw < K; kw++) {
                        int w = w0 + kw;
                        if (w < 0 || w >= W) continue;
                        dx[h * W + w] += g;
                    }
                }
            }
        }
    }
}

void global_avgpool_forward(real *out /* [N,C] */, const real *inp /* [N,C,HW] */, int N, int C, int HW) {
    const long planes = (long)N * C;
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        const real *x = inp + p * HW;
        double sum = 0.0;
        for (int i = 0; i < HW; i++) sum += (double)x[i];
        out[p] = (real)(sum / (double)HW);
    }
}

void global_avgpool_backward(real *dinp /* [N,C,HW] or NULL */, const real *dout /* [N,C] */,
                             int N, int C, int HW) {
    if (!dinp) return;
    const long planes = (long)N * C;
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        real *dx = dinp + p * HW;
        real g = (real)((double)dout[p] / (double)HW);
        for (int i = 0; i < HW; i++) dx[i] += g;
    }
}
