/* conv2d: no bias, zero padding, square kernel and stride/pad shared by both
 * spatial dims (ConvDims keeps KH/KW separate so the loops read naturally).
 *
 * Fast path, one sample at a time:
 *   col[C*KH*KW, OH*OW] = im2col(inp[n])
 *   out[n]  [O, OH*OW]  = W[O, C*KH*KW] x col                   (gemm, beta = 0)
 *   dW      [O, C*KH*KW] += dout[n][O, OH*OW] x col^T            (gemm, beta = 1)
 *   colgrad [C*KH*KW, OH*OW] = W^T x dout[n]                     (gemm, beta = 0)
 *   dinp[n] += col2im(colgrad)
 * The row index of col, (c*KH + kh)*KW + kw, is the flattened weight layout
 * [O, C, KH, KW], so W is used as stored, no repacking.
 *
 * Determinism: dW is accumulated sample by sample in order, im2col writes
 * disjoint rows and col2im disjoint channels (with a fixed add order inside a
 * channel), so nothing of ours depends on the thread count. The GEMMs are the
 * BLAS's, threaded internally: OpenBLAS 0.3.21's sgemm is NOT bitwise
 * thread-count invariant on this machine (tests/test_kernels.c probes it and
 * reports it; bench/README.md). A run repeated with the same thread count is
 * bitwise reproducible. We never wrap a BLAS call in our own parallel region:
 * nested parallelism would either oversubscribe the cores or serialise the BLAS. */
#include <string.h>

#include "blas.h"
#include "ops.h"

/* below this many elements touched, an OpenMP fork costs more than the copy */
#define CONV_OMP_MIN_WORK 8192L

ConvDims conv_dims(int N, int C, int H, int W, int O, int K, int stride, int pad) {
    ConvDims d;
    d.N = N; d.C = C; d.H = H; d.W = W;
    d.O = O; d.KH = K; d.KW = K;
    d.stride = stride; d.pad = pad;
    /* a kernel wider than the padded input has no output (C division would
     * truncate a negative numerator to 0 and claim one) */
    d.OH = H + 2 * pad < K ? 0 : (H + 2 * pad - K) / stride + 1;
    d.OW = W + 2 * pad < K ? 0 : (W + 2 * pad - K) / stride + 1;
    return d;
}

long conv_macs(const ConvDims *d) {
    return (long)d->N * d->O * d->OH * d->OW * d->C * d->KH * d->KW;
}

/* a 1x1, stride 1, unpadded conv is a plain GEMM on the input as stored */
static int conv_is_pointwise(const ConvDims *d) {
    return d->KH == 1 && d->KW == 1 && d->stride == 1 && d->pad == 0;
}

/* im2col buffer + col-grad buffer, both [C*KH*KW, OH*OW]. Backward needs them
 * at the same time only conceptually (it could reuse one), but keeping them
 * apart leaves the order of the dW and dinp GEMMs free. The pointwise case
 * needs none, but we still report the general size so callers can size one
 * arena for any conv without special cases. */
size_t conv2d_scratch_size(const ConvDims *d) {
    size_t col = (size_t)d->C * d->KH * d->KW * (size_t)d->OH * d->OW;
    return 2 * col;
}

/* first and one-past-last output coordinate whose input coordinate
 * o*stride - pad + k falls inside [0, size): outside it the tap reads padding */
static void valid_range(int k, int stride, int pad, int size, int out_size, int *lo, int *hi) {
    /* o*stride >= pad - k  ->  o >= ceil((pad - k) / stride) */
    int a = pad - k;
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    /* o*stride <= size - 1 + pad - k  ->  o <= floor((size - 1 + pad - k) / stride) */
    int b = size - 1 + pad - k;
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > out_size) h = out_size;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* col[(c*KH+kh)*KW+kw, oh*OW+ow] = inp[c, oh*s-p+kh, ow*s-p+kw], 0 in the padding */
static void im2col(real *col /* [C*KH*KW, OH*OW] */, const real *inp /* [C,H,W] */, const ConvDims *d) {
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW;
    const int OH = d->OH, OW = d->OW, s = d->stride, p = d->pad;
    const long rows = (long)C * KH * KW;
    /* every row is written by exactly one iteration: disjoint, any thread count */
    #pragma omp parallel for schedule(static) if (rows * OH * OW >= CONV_OMP_MIN_WORK)
    for (long r = 0; r < rows; r++) {
        const int kw = (int)(r % KW);
        const int kh = (int)((r / KW) % KH);
        const int c = (int)(r / ((long)KW * KH));
        const real *plane = inp + (long)c * H * W;
        real *dst = col + r * OH * OW;
        int ow_lo, ow_hi;
        valid_range(kw, s, p, W, OW, &ow_lo, &ow_hi);
        for (int oh = 0; oh < OH; oh++) {
            real *drow = dst + (long)oh * OW;
            const int ih = oh * s - p + kh;
            if (ih < 0 || ih >= H) {
                memset(drow, 0, sizeof(real) * OW);
                continue;
            }
            const real *srow = plane + (long)ih * W;
            for (int ow = 0; ow < ow_lo; ow++) drow[ow] = 0;
            if (s == 1) {
                if (ow_hi > ow_lo) memcpy(drow + ow_lo, srow + ow_lo - p + kw, sizeof(real) * (ow_hi - ow_lo));
            } else {
                for (int ow = ow_lo; ow < ow_hi; ow++) drow[ow] = srow[ow * s - p + kw];
            }
            for (int ow = ow_hi; ow < OW; ow++) drow[ow] = 0;
        }
    }
}

/* dinp[c, ih, iw] += colgrad[(c*KH+kh)*KW+kw, oh*OW+ow]: the adjoint of im2col.
 * Different (kh, kw) taps of one channel hit the same input pixels, so we
 * parallelise over channels only; inside a channel the order of the adds is
 * the fixed loop order below, whatever the thread count. */
static void col2im_add(real *dinp /* [C,H,W] */, const real *colgrad /* [C*KH*KW, OH*OW] */, const ConvDims *d) {
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW;
    const int OH = d->OH, OW = d->OW, s = d->stride, p = d->pad;
    #pragma omp parallel for schedule(static) if ((long)C * KH * KW * OH * OW >= CONV_OMP_MIN_WORK)
    for (int c = 0; c < C; c++) {
        real *plane = dinp + (long)c * H * W;
        for (int kh = 0; kh < KH; kh++) {
            for (int kw = 0; kw < KW; kw++) {
                const real *src = colgrad + ((long)(c * KH + kh) * KW + kw) * OH * OW;
                int ow_lo, ow_hi;
                valid_range(kw, s, p, W, OW, &ow_lo, &ow_hi);
                for (int oh = 0; oh < OH; oh++) {
                    const int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H) continue; /* the gradient of padding is dropped */
                    real *drow = plane + (long)ih * W;
                    const real *srow = src + (long)oh * OW;
                    for (int ow = ow_lo; ow < ow_hi; ow++) drow[ow * s - p + kw] += srow[ow];
                }
            }
        }
    }
}

void conv2d_forward(real *out /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                    const real *weight /* [O,C,KH,KW] */, const ConvDims *d, real *scratch) {
    if (d->OH <= 0 || d->OW <= 0) return; /* no outputs, nothing to do (and no valid BLAS strides) */
    const int CK = d->C * d->KH * d->KW;
    const int OHW = d->OH * d->OW;
    const long in_stride = (long)d->C * d->H * d->W;
    const long out_stride = (long)d->O * OHW;
    const int pointwise = conv_is_pointwise(d);
    real *col = scratch; /* [CK, OHW] */
    for (int n = 0; n < d->N; n++) {
        const real *x = inp + n * in_stride;
        const real *b = x; /* pointwise: the input [C, H*W] already is col */
        if (!pointwise) {
            im2col(col, x, d);
            b = col;
        }
        /* out[n][O, OHW] = W[O, CK] x col[CK, OHW] */
        gemm(0, 0, d->O, OHW, CK, (real)1, weight, CK, b, OHW, (real)0, out + n * out_stride, OHW);
    }
}

void conv2d_backward(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,KH,KW] */,
                     const real *dout /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                     const real *weight /* [O,C,KH,KW] */, const ConvDims *d, real *scratch) {
    if (d->OH <= 0 || d->OW <= 0) return; /* no outputs, nothing to do (and no valid BLAS strides) */
    const int CK = d->C * d->KH * d->KW;
    const int OHW = d->OH * d->OW;
    const long in_stride = (long)d->C * d->H * d->W;
    const long out_stride = (long)d->O * OHW;
    const int pointwise = conv_is_pointwise(d);
    real *col = scratch;                       /* [CK, OHW] */
    real *colgrad = scratch + (size_t)CK * OHW; /* [CK, OHW] */
    for (int n = 0; n < d->N; n++) {
        const real *x = inp + n * in_stride;
        const real *g = dout + n * out_stride; /* [O, OHW] */
        const real *b = x;
        if (!pointwise) {
            im2col(col, x, d);
            b = col;
        }
        /* dW[O, CK] += dout[n][O, OHW] x col^T[OHW, CK]; samples in order */
        gemm(0, 1, d->O, CK, OHW, (real)1, g, OHW, b, OHW, (real)1, dweight, CK);
        if (dinp == NULL) continue;
        real *dx = dinp + n * in_stride;
        if (pointwise) {
            /* dinp[n][C, HW] += W^T[C, O] x dout[n][O, HW], straight into dinp */
            gemm(1, 0, CK, OHW, d->O, (real)1, weight, CK, g, OHW, (real)1, dx, OHW);
        } else {
            /* colgrad[CK, OHW] = W^T[CK, O] x dout[n][O, OHW], then scatter-add */
            gemm(1, 0, CK, OHW, d->O, (real)1, weight, CK, g, OHW, (real)0, colgrad, OHW);
            col2im_add(dx, colgrad, d);
        }
    }
}

/* ------------------------------------------------------------ reference */
/* Direct loops, double accumulators; the definitions the fast path is tested
 * against. Backward uses the gather form for dinp (each input pixel sums the
 * outputs it fed) so there is no scatter to get wrong. */

void conv2d_forward_ref(real *out /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                        const real *weight /* [O,C,KH,KW] */, const ConvDims *d) {
    const int N = d->N, C = d->C, H = d->H, W = d->W, O = d->O, KH = d->KH, KW = d->KW;
    const int OH = d->OH, OW = d->OW, s = d->stride, p = d->pad;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = 0.0;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * s - p + kh, iw = ow * s - p + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)inp[(((long)n * C + c) * H + ih) * W + iw] *
                                       (double)weight[(((long)o * C + c) * KH + kh) * KW + kw];
                            }
                    out[(((long)n * O + o) * OH + oh) * OW + ow] = (real)acc;
                }
}

void conv2d_backward_ref(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,KH,KW] */,
                         const real *dout /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                         const real *weight /* [O,C,KH,KW] */, const ConvDims *d) {
    const int N = d->N, C = d->C, H = d->H, W = d->W, O = d->O, KH = d->KH, KW = d->KW;
    const int OH = d->OH, OW = d->OW, s = d->stride, p = d->pad;
    /* dW[o,c,kh,kw] += sum_{n,oh,ow} dout[n,o,oh,ow] * inp[n,c,oh*s-p+kh,ow*s-p+kw] */
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    double acc = 0.0;
                    for (int n = 0; n < N; n++)
                        for (int oh = 0; oh < OH; oh++)
                            for (int ow = 0; ow < OW; ow++) {
                                int ih = oh * s - p + kh, iw = ow * s - p + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)dout[(((long)n * O + o) * OH + oh) * OW + ow] *
                                       (double)inp[(((long)n * C + c) * H + ih) * W + iw];
                            }
                    real *dw = &dweight[(((long)o * C + c) * KH + kh) * KW + kw];
                    *dw = (real)((double)*dw + acc);
                }
    if (dinp == NULL) return;
    /* dinp[n,c,ih,iw] += sum_{o,kh,kw} dout[n,o,oh,ow] * W[o,c,kh,kw]
     * over the (oh, ow) with oh*s - p + kh == ih and ow*s - p + kw == iw */
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int ih = 0; ih < H; ih++)
                for (int iw = 0; iw < W; iw++) {
                    double acc = 0.0;
                    for (int o = 0; o < O; o++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int th = ih + p - kh, tw = iw + p - kw;
                                if (th < 0 || tw < 0 || th % s != 0 || tw % s != 0) continue;
                                int oh = th / s, ow = tw / s;
                                if (oh >= OH || ow >= OW) continue;
                                acc += (double)dout[(((long)n * O + o) * OH + oh) * OW + ow] *
                                       (double)weight[(((long)o * C + c) * KH + kh) * KW + kw];
                            }
                    real *dx = &dinp[(((long)n * C + c) * H + ih) * W + iw];
                    *dx = (real)((double)*dx + acc);
                }
}
