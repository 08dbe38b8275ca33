/* conv2d: no bias, zero padding, square kernel and stride/pad shared by both
 * spatial dims (ConvDims keeps KH/KW separate so the loops read naturally).
 *
 * Fast path, built from single-threaded GEMMs on fixed work units:
 *   forward, per sample n (OpenMP over samples):
 *     col[C*KH*KW, OH*OW] = im2col(inp[n]);  out[n][O, OH*OW] = W[O, C*KH*KW] x col
 *   dW, per fixed block of output channels (OpenMP over blocks):
 *     for n in order: col = im2col(inp[n]);  dW[rows] += dout[n][rows, OH*OW] x col^T
 *   dinp, per sample n (OpenMP over samples):
 *     colgrad[C*KH*KW, OH*OW] = W^T x dout[n];  dinp[n] += col2im(colgrad)
 * The row index of col, (c*KH + kh)*KW + kw, is the flattened weight layout
 * [O, C, KH, KW], so W is used as stored, no repacking.
 *
 * Determinism. OpenBLAS 0.3.21's threaded sgemm changes the last bits of its
 * results with the thread count (and even a sub-block of C computed alone can
 * round differently), measured on this project's AMD EPYC machine. So the BLAS
 * only ever runs single-threaded (core/blas.c) on work units whose shapes do
 * not depend on the thread count: one sample, or one fixed block of output
 * channels whose rows accumulate the samples in order. Which thread runs a
 * unit does not change its bits, so results are the same for any
 * OMP_NUM_THREADS. The dW pass repeats im2col in every thread that owns a
 * block: that costs 1/O_block of the GEMM work and buys the invariance.
 *
 * Scratch: one [C*KH*KW, OH*OW] buffer per thread, for up to omp_get_num_procs()
 * threads (a constant of the process, so a buffer sized once stays valid when
 * the thread count changes; kernels never use more threads than that).
 *
 * Shards (issue 15, core/shard.h). The weight gradient and the bias gradient
 * are the conv's two sums over the batch. With a non-trivial ConvDims.sp each
 * is computed per shard of N/local_shards consecutive samples by the one-shard
 * kernel (dW: conv2d_dweight on the shard's rows into a zeroed partial; the
 * bias: the double sum over the shard's rows), the partials are added by
 * shard_sum_r / shard_sum_d in the fixed pairwise tree (this rank's subtree,
 * then the ranks'), and the root is added into dweight / dbias. Every rank
 * gets the same root, and one process with S shards adds the very tree that R
 * ranks add together, so the bits depend on S, never on R or the thread
 * count. The forward and dinp are per sample and never sharded. With sp NULL
 * (or trivial) the code is the one of always.
 *
 * Backends (model.fp32_conv, ConvDims.backend). FP32_CONV_ONEDNN hands the
 * three products to oneDNN (core/ops/conv2d_onednn.c; its sharded weight
 * gradient still goes through the shard tree here, one oneDNN wgrad per
 * shard). Everything above is the native backend, the default. */
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "ops.h"
#include "ops/conv2d_onednn.h"
#include "shard.h"

#include <omp.h>

ConvDims conv_dims(int N, int C, int H, int W, int O, int K, int stride, int pad) {
    ConvDims d;
    d.N = N; d.C = C; d.H = H; d.W = W;
    d.O = O; d.KH = K; d.KW = K;
    d.stride = stride; d.pad = pad;
    d.sp = NULL;
    d.backend = FP32_CONV_NATIVE;
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

/* threads a kernel may use: never more than the scratch was sized for */
static int conv_threads(void) {
    int t = omp_get_max_threads(), p = omp_get_num_procs();
    return t < p ? t : p;
}

/* one [C*KH*KW, OH*OW] buffer (im2col, or col-grad) per possible thread. The
 * pointwise case needs none, but the general size keeps callers simple. */
size_t conv2d_scratch_size(const ConvDims *d) {
    size_t col = (size_t)d->C * d->KH * d->KW * (size_t)d->OH * d->OW;
    return (size_t)omp_get_num_procs() * col;
}

/* rows of dW per work unit: a function of O only (never of the thread count),
 * a multiple of 8, at most 8 blocks */
static int dw_block_rows(int O) {
    int b = (O + 7) / 8;
    b = (b + 7) / 8 * 8;
    return b < 8 ? 8 : b;
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

/* dinp[c, ih, iw] += colgrad[(c*KH+kh)*KW+kw, oh*OW+ow]: the adjoint of im2col,
 * in a fixed loop order (it runs inside the per-sample parallel loop). */
static void col2im_add(real *dinp /* [C,H,W] */, const real *colgrad /* [C*KH*KW, OH*OW] */, const ConvDims *d) {
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW;
    const int OH = d->OH, OW = d->OW, s = d->stride, p = d->pad;
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
                    real *restrict drow = plane + (long)ih * W;
                    const real *restrict srow = src + (long)oh * OW;
                    if (s == 1) {
                        /* contiguous: a plain vectorisable add */
                        real *restrict dst = drow + ow_lo - p + kw;
                        const real *restrict from = srow + ow_lo;
                        for (int k = 0; k < ow_hi - ow_lo; k++) dst[k] += from[k];
                    } else {
                        for (int ow = ow_lo; ow < ow_hi; ow++) drow[ow * s - p + kw] += srow[ow];
                    }
                }
            }
        }
    }
}

void conv2d_forward(real *out /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                    const real *weight /* [O,C,KH,KW] */, const ConvDims *d, real *scratch) {
    if (d->OH <= 0 || d->OW <= 0) return; /* no outputs, nothing to do (and no valid BLAS strides) */
    if (d->backend == FP32_CONV_ONEDNN) {
        conv2d_onednn_forward(out, inp, weight, d);
        return;
    }
    const int CK = d->C * d->KH * d->KW;
    const int OHW = d->OH * d->OW;
    const long in_stride = (long)d->C * d->H * d->W;
    const long out_stride = (long)d->O * OHW;
    const int pointwise = conv_is_pointwise(d);
    #pragma omp parallel for schedule(static) num_threads(conv_threads())
    for (int n = 0; n < d->N; n++) {
        real *col = scratch + (size_t)omp_get_thread_num() * CK * OHW; /* [CK, OHW] */
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

/* dW: block b of output channels belongs to thread b % T; each block adds
 * the samples in order, so its bits do not depend on T */
static void conv2d_dweight(real *dweight /* [O,C,KH,KW] */, const real *dout /* [N,O,OH,OW] */,
                           const real *inp /* [N,C,H,W] */, const ConvDims *d, real *scratch) {
    const int CK = d->C * d->KH * d->KW;
    const int OHW = d->OH * d->OW;
    const long in_stride = (long)d->C * d->H * d->W;
    const long out_stride = (long)d->O * OHW;
    const int pointwise = conv_is_pointwise(d);
    const int rows = dw_block_rows(d->O), nblocks = (d->O + rows - 1) / rows;
    const int T = conv_threads() < nblocks ? conv_threads() : nblocks;
    #pragma omp parallel num_threads(T)
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        real *col = scratch + (size_t)tid * CK * OHW; /* [CK, OHW] */
        if (tid < nblocks) {
            for (int n = 0; n < d->N; n++) {
                const real *x = inp + n * in_stride;
                const real *g = dout + n * out_stride; /* [O, OHW] */
                const real *b = x;
                if (!pointwise) {
                    im2col(col, x, d);
                    b = col;
                }
                for (int blk = tid; blk < nblocks; blk += nt) {
                    const int o0 = blk * rows, m = d->O - o0 < rows ? d->O - o0 : rows;
                    /* dW[o0:o0+m, CK] += dout[n][o0:o0+m, OHW] x col^T[OHW, CK] */
                    gemm(0, 1, m, CK, OHW, (real)1, g + (long)o0 * OHW, OHW, b, OHW, (real)1,
                         dweight + (long)o0 * CK, CK);
                }
            }
        }
    }
}

/* dW over shards: shard s's rows through conv2d_dweight into zeroed partial
 * s, the tree, then dweight += the root (elementwise: any thread count) */
static void conv2d_dweight_sharded(real *dweight /* [O,C,KH,KW] */, const real *dout /* [N,O,OH,OW] */,
                                   const real *inp /* [N,C,H,W] */, const ConvDims *d, real *scratch) {
    const ShardPlan *sp = d->sp;
    const int ls = sp->local_shards, rows = shard_rows(sp, d->N);
    const size_t wn = (size_t)d->O * d->C * d->KH * d->KW;
    const long in_shard = (long)rows * d->C * d->H * d->W, out_shard = (long)rows * d->O * d->OH * d->OW;
    ConvDims ds = *d;
    ds.N = rows;
    ds.sp = NULL;
    real *tmp;
    void *owned;
    real *parts = shard_ws_r(sp, wn, &tmp, &owned);
    for (int s = 0; s < ls; s++) {
        real *p = parts + (size_t)s * wn;
        memset(p, 0, wn * sizeof(real));
        if (d->backend == FP32_CONV_ONEDNN)
            conv2d_onednn_backward(NULL, p, dout + s * out_shard, inp + s * in_shard, NULL, &ds);
        else
            conv2d_dweight(p, dout + s * out_shard, inp + s * in_shard, &ds, scratch);
    }
    shard_sum_r(sp, parts, wn, tmp);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)wn; i++) dweight[i] += parts[i];
    free(owned);
}

void conv2d_backward(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,KH,KW] or NULL */,
                     const real *dout /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                     const real *weight /* [O,C,KH,KW] */, const ConvDims *d, real *scratch) {
    if (d->OH <= 0 || d->OW <= 0) return; /* no outputs, nothing to do (and no valid BLAS strides) */
    const int CK = d->C * d->KH * d->KW;
    const int OHW = d->OH * d->OW;
    const long in_stride = (long)d->C * d->H * d->W;
    const long out_stride = (long)d->O * OHW;
    const int pointwise = conv_is_pointwise(d);
    if (d->backend == FP32_CONV_ONEDNN) {
        const int sharded = dweight != NULL && !shard_plan_trivial(d->sp);
        if (sharded) conv2d_dweight_sharded(dweight, dout, inp, d, scratch);
        conv2d_onednn_backward(dinp, sharded ? NULL : dweight, dout, inp, weight, d);
        return;
    }
    if (dweight != NULL && !shard_plan_trivial(d->sp)) conv2d_dweight_sharded(dweight, dout, inp, d, scratch);
    else if (dweight != NULL) conv2d_dweight(dweight, dout, inp, d, scratch); /* NULL: a frozen conv */
    if (dinp == NULL) return;

    /* dinp: one sample per work unit */
    #pragma omp parallel for schedule(static) num_threads(conv_threads())
    for (int n = 0; n < d->N; n++) {
        real *colgrad = scratch + (size_t)omp_get_thread_num() * CK * OHW; /* [CK, OHW] */
        const real *g = dout + n * out_stride;
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

/* The bias of a conv that has one, added after the conv (the GEMM above
 * writes out without it): out[n, o, i] += bias[o]. Every (n, o) plane is one
 * work unit. */
void conv2d_bias_forward(real *out /* [N,O,OHW] */, const real *bias /* [O] */, int N, int O, int OHW) {
    #pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)N * O; p++) {
        const real b = bias[p % O];
        real *o = out + p * OHW;
        for (int i = 0; i < OHW; i++) o[i] += b;
    }
}

/* dbias[o] += sum over n then i of dout[n, o, i], in double: one channel per
 * thread, a fixed order */
void conv2d_bias_backward(real *dbias /* [O] */, const real *dout /* [N,O,OHW] */, int N, int O, int OHW) {
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) {
        double acc = 0.0;
        for (int n = 0; n < N; n++) {
            const real *g = dout + ((long)n * O + o) * OHW;
            for (int i = 0; i < OHW; i++) acc += (double)g[i];
        }
        dbias[o] = (real)((double)dbias[o] + acc);
    }
}

/* The same over shards: partial s = the double sum over shard s's rows (n
 * then i, as above), the tree, dbias[o] += (real) of the root. sp NULL or
 * trivial: conv2d_bias_backward itself. */
void conv2d_bias_backward_sp(real *dbias /* [O] */, const real *dout /* [N,O,OHW] */, int N, int O, int OHW,
                             const ShardPlan *sp) {
    if (shard_plan_trivial(sp)) {
        conv2d_bias_backward(dbias, dout, N, O, OHW);
        return;
    }
    const int ls = sp->local_shards, rows = shard_rows(sp, N);
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(sp, (size_t)O, &tmp, &owned);
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++)
        for (int s = 0; s < ls; s++) {
            double acc = 0.0;
            for (int n = s * rows; n < (s + 1) * rows; n++) {
                const real *g = dout + ((long)n * O + o) * OHW;
                for (int i = 0; i < OHW; i++) acc += (double)g[i];
            }
            parts[(size_t)s * O + o] = acc;
        }
    shard_sum_d(sp, parts, (size_t)O, tmp);
    for (int o = 0; o < O; o++) dbias[o] = (real)((double)dbias[o] + parts[o]);
    free(owned);
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
