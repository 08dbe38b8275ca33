/* Residual connections: the elementwise add that joins the two branches, and
 * the parameter-free option-A shortcut (He et al. 2016, CIFAR ResNets) used
 * when a block changes resolution or width. */
#include "ops.h"

#define RES_PAR_MIN 32768

void add_forward(real *out /* [n] */, const real *a /* [n] */, const real *b /* [n] */, size_t n) {
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= RES_PAR_MIN)
    for (long i = 0; i < len; i++) out[i] = a[i] + b[i];
}

/* both branches receive dout; either may be NULL (e.g. an input that needs no gradient) */
void add_backward(real *da /* [n] or NULL */, real *db /* [n] or NULL */, const real *dout /* [n] */, size_t n) {
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= RES_PAR_MIN)
    for (long i = 0; i < len; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}

/* 1 when the channel layout fits: the builder (core/model.c) checks it, so a
 * misfit here is a caller's error, refused without writing anything */
static int shortcut_ok(int C, int Cout, int pad_before, int stride) {
    return stride >= 1 && pad_before >= 0 && C + pad_before <= Cout;
}

/* out[n, pad_before + c] = AvgPool2d(kernel = stride = s)(inp[n, c]); the other
 * output channels are zero. Spatial size floor(H/s) x floor(W/s), so for odd H the
 * last row/column is dropped, as nn.AvgPool2d does. */
int shortcut_a_forward(real *out /* [N,Cout,H/s,W/s] */, const real *inp /* [N,C,H,W] */,
                       int N, int C, int H, int W, int stride, int Cout, int pad_before) {
    if (!shortcut_ok(C, Cout, pad_before, stride)) return -1;
    const int S = stride, OH = H / S, OW = W / S;
    const long planes = (long)N * Cout;
    const double inv = 1.0 / ((double)S * S);

    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        long n = p / Cout;
        int c = (int)(p % Cout) - pad_before; /* input channel, or out of range = zero pad */
        real *o = out + p * OH * OW;
        if (c < 0 || c >= C) {
            for (long i = 0; i < (long)OH * OW; i++) o[i] = (real)0;
            continue;
        }
        const real *x = inp + (n * C + c) * (long)H * W;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                double sum = 0.0;
                for (int i = 0; i < S; i++)
                    for (int j = 0; j < S; j++) sum += (double)x[(oh * S + i) * W + ow * S + j];
                o[oh * OW + ow] = (real)(sum * inv);
            }
        }
    }
    return 0;
}

int shortcut_a_backward(real *dinp /* [N,C,H,W] or NULL */, const real *dout /* [N,Cout,H/s,W/s] */,
                        int N, int C, int H, int W, int stride, int Cout, int pad_before) {
    if (!shortcut_ok(C, Cout, pad_before, stride)) return -1;
    if (!dinp) return 0;
    const int S = stride, OH = H / S, OW = W / S;
    const long planes = (long)N * C;
    const double inv = 1.0 / ((double)S * S);

    /* pooling windows do not overlap: each input element gets at most one term */
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < planes; p++) {
        long n = p / C;
        int c = (int)(p % C);
        real *dx = dinp + p * (long)H * W;
        const real *dy = dout + (n * Cout + pad_before + c) * (long)OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                real g = (real)((double)dy[oh * OW + ow] * inv);
                for (int i = 0; i < S; i++)
                    for (int j = 0; j < S; j++) dx[(oh * S + i) * W + ow * S + j] += g;
            }
        }
    }
    return 0;
}
