/* Layer ops: forward and backward side by side, in the llm.c style.
 *
 * Conventions (every op here follows them; tests rely on them):
 *  - outputs first, then const inputs, then dims; a shape comment on every pointer.
 *  - tensors are contiguous NCHW (or [N, F] for vectors), type `real` (core/real.h).
 *  - backward ACCUMULATES: dinp += ..., dweight += ...  (a tensor read by two
 *    consumers, e.g. a residual input, gets both contributions; the caller zeroes
 *    gradients once per step). A NULL dinp means "not needed" (first layer): skip it;
 *    so does a NULL dweight where the signature says "or NULL" (a frozen layer).
 *  - no abort()/exit(): a call the shapes do not allow is refused with an error
 *    value where the signature has one, named on each function.
 *  - forward OVERWRITES its outputs.
 *  - each fast kernel has a plain reference twin *_ref with the same contract;
 *    tests compare the two on random data.
 *  - parallel loops write disjoint outputs and every reduction runs in a fixed
 *    order, so results do not depend on the number of OpenMP threads.
 */
#ifndef CBNN_OPS_H
#define CBNN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"

/* ---------------------------------------------------------------- conv2d */
/* The conv has no bias (every conv of the paper's models has bias=False); a
 * conv with one adds it afterwards (conv2d_bias_*). Zero padding. */
typedef struct {
    int N, C, H, W;      /* input  [N, C, H, W] */
    int O, KH, KW;       /* weight [O, C, KH, KW] */
    int stride, pad;     /* same in both spatial dims */
    int OH, OW;          /* output [N, O, OH, OW] */
    /* shards of the batch's float reductions (core/shard.h): NULL (what
     * conv_dims sets) = one shard, one process, the arithmetic of always */
    const struct ShardPlan *sp;
    /* which fp32 conv runs (model.fp32_conv): FP32_CONV_NATIVE (what
     * conv_dims sets) or FP32_CONV_ONEDNN */
    int backend;
} ConvDims;
enum { FP32_CONV_NATIVE = 0, FP32_CONV_ONEDNN = 1 };

ConvDims conv_dims(int N, int C, int H, int W, int O, int K, int stride, int pad);
long conv_macs(const ConvDims *d); /* forward multiply-accumulates for the whole batch */
/* scratch the fast path needs, in reals: one im2col buffer of one sample per
 * possible thread (omp_get_num_procs(), so it stays valid if the thread count
 * changes). The fast path is bitwise independent of OMP_NUM_THREADS. */
size_t conv2d_scratch_size(const ConvDims *d);

void conv2d_forward(real *out /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                    const real *weight /* [O,C,KH,KW] */, const ConvDims *d, real *scratch);
void conv2d_backward(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,KH,KW] or NULL */,
                     const real *dout /* [N,O,OH,OW] */, const real *inp, const real *weight,
                     const ConvDims *d, real *scratch);
/* out[n,o,:] += bias[o];  dbias[o] += sum_{n,i} dout[n,o,i] (double, fixed order) */
void conv2d_bias_forward(real *out /* [N,O,OHW] */, const real *bias /* [O] */, int N, int O, int OHW);
void conv2d_bias_backward(real *dbias /* [O] */, const real *dout /* [N,O,OHW] */, int N, int O, int OHW);
/* conv2d_bias_backward over sp's shards (core/shard.h): per-shard double sums,
 * the fixed tree, then added; sp NULL or trivial: conv2d_bias_backward.
 * (conv2d_backward shards its weight gradient by d->sp itself.) */
void conv2d_bias_backward_sp(real *dbias /* [O] */, const real *dout /* [N,O,OHW] */, int N, int O, int OHW,
                             const struct ShardPlan *sp);
void conv2d_forward_ref(real *out, const real *inp, const real *weight, const ConvDims *d);
void conv2d_backward_ref(real *dinp, real *dweight, const real *dout, const real *inp,
                         const real *weight, const ConvDims *d);

/* ---------------------------------------------------------------- linear */
/* out[n,o] = sum_i inp[n,i] * weight[o,i] + bias[o]   (bias may be NULL) */
void linear_forward(real *out /* [N,OUT] */, const real *inp /* [N,IN] */,
                    const real *weight /* [OUT,IN] */, const real *bias /* [OUT] */, int N, int IN, int OUT);
void linear_backward(real *dinp /* [N,IN] or NULL */, real *dweight /* [OUT,IN] or NULL */, real *dbias /* [OUT] or NULL */,
                     const real *dout /* [N,OUT] */, const real *inp, const real *weight, int N, int IN, int OUT);
/* With a non-trivial plan sp (core/shard.h): the forward and dinp one row
 * per GEMM call, so that a row's bits do not depend on the batch it is in
 * (the BLAS's do: core/ops/linear.c), and dweight and dbias summed per shard
 * and added by the fixed tree. sp NULL or trivial: linear_forward /
 * linear_backward, bitwise. */
void linear_forward_sp(real *out /* [N,OUT] */, const real *inp /* [N,IN] */, const real *weight /* [OUT,IN] */,
                       const real *bias /* [OUT] or NULL */, int N, int IN, int OUT, const struct ShardPlan *sp);
void linear_backward_sp(real *dinp /* [N,IN] or NULL */, real *dweight /* [OUT,IN] or NULL */,
                        real *dbias /* [OUT] or NULL */, const real *dout /* [N,OUT] */, const real *inp,
                        const real *weight, int N, int IN, int OUT, const struct ShardPlan *sp);
void linear_forward_ref(real *out, const real *inp, const real *weight, const real *bias, int N, int IN, int OUT);
void linear_backward_ref(real *dinp, real *dweight, real *dbias, const real *dout, const real *inp,
                         const real *weight, int N, int IN, int OUT);

/* ------------------------------------------------------------- batchnorm */
/* BatchNorm over [N, C, HW] (2d: HW = H*W; 1d: HW = 1), PyTorch semantics:
 * train normalises with the biased batch variance and updates
 *   running_mean = (1-momentum)*running_mean + momentum*mean
 *   running_var  = (1-momentum)*running_var  + momentum*var_unbiased
 * eval normalises with the running statistics. mean/rstd are saved for backward. */
typedef struct {
    int N, C, HW;
    real eps, momentum;
    const struct ShardPlan *sp;   /* as ConvDims.sp: NULL = one shard, one process */
} BNDims;

void batchnorm_forward_train(real *out /* [N,C,HW] */, real *mean /* [C] saved */, real *rstd /* [C] saved */,
                             real *running_mean /* [C] */, real *running_var /* [C] */,
                             const real *inp /* [N,C,HW] */, const real *gamma /* [C] */,
                             const real *beta /* [C] */, const BNDims *d);
void batchnorm_forward_eval(real *out, const real *inp, const real *gamma, const real *beta,
                            const real *running_mean, const real *running_var, const BNDims *d);
void batchnorm_backward(real *dinp /* [N,C,HW] */, real *dgamma /* [C] */, real *dbeta /* [C] */,
                        const real *dout /* [N,C,HW] */, const real *inp, const real *mean,
                        const real *rstd, const real *gamma, const BNDims *d);
/* the same, but dinp is written as if accumulated into zeros (each element 0 + v,
 * bitwise what += gives on a zeroed buffer) without reading it: for a gradient
 * buffer that this call brings alive (core/model.c skips zeroing it) */
void batchnorm_backward_store(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                              const real *mean, const real *rstd, const real *gamma, const BNDims *d);
/* The backward of batchnorm_forward_eval (the running statistics are
 * constants): dx = dy * gamma * rstd_running, dgamma = sum dy * xhat, dbeta =
 * sum dy; dgamma and dbeta may be NULL (a frozen BN). _store as above. */
void batchnorm_backward_eval(real *dinp /* [N,C,HW] or NULL */, real *dgamma /* [C] or NULL */,
                             real *dbeta /* [C] or NULL */, const real *dout /* [N,C,HW] */,
                             const real *inp /* [N,C,HW] */, const real *gamma /* [C] */,
                             const real *running_mean /* [C] */, const real *running_var /* [C] */, const BNDims *d);
void batchnorm_backward_eval_store(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                                   const real *gamma, const real *running_mean, const real *running_var,
                                   const BNDims *d);
/* the name of the row-kernel table the batchnorm calls use now ("c", "avx2",
 * "avx512": cpu_features(), core/cpu.h); every table gives the same bits */
const char *batchnorm_table_name(void);
/* BN then hardtanh fused (the graph's BN -> hardtanh where nothing else reads
 * the BN output): out = hardtanh(BN(inp)), bitwise the two layers' result, the
 * BN output never stored. The backward takes the hardtanh's output gradient
 * dout and its output out, and gives bitwise what hardtanh_backward_store
 * followed by batchnorm_backward(_store) (store = 1) or batchnorm_backward
 * (store = 0) give; inp and the statistics as there. Returns -1 when it cannot
 * allocate its per-thread row scratch (HW values a thread), writing nothing. */
void batchnorm_hardtanh_forward_train(real *out, real *mean, real *rstd, real *running_mean, real *running_var,
                                      const real *inp, const real *gamma, const real *beta, const BNDims *d);
void batchnorm_hardtanh_forward_eval(real *out, const real *inp, const real *gamma, const real *beta,
                                     const real *running_mean, const real *running_var, const BNDims *d);
int batchnorm_hardtanh_backward(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *out,
                                const real *inp, const real *mean, const real *rstd, const real *gamma,
                                const BNDims *d, int store);
int batchnorm_hardtanh_backward_eval(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *out,
                                     const real *inp, const real *gamma, const real *running_mean,
                                     const real *running_var, const BNDims *d, int store);
/* tests: one row's double sums by the table in use: out = {sum x, sum (x -
 * mu)^2, sum dy, sum dy * (x - mu) * rs}, each ROWSUM8's order */
void batchnorm_row_sums(double out[4], const real *x, const real *dy, int n, double mu, double rs);

/* ----------------------------------------------------------- activations */
/* hardtanh to [-1, 1]; gradient 1 strictly inside (-1, 1), 0 elsewhere (PyTorch) */
void hardtanh_forward(real *out, const real *inp, size_t n);
void hardtanh_backward(real *dinp, const real *dout, const real *inp, size_t n);
/* the same written into a fresh buffer (0 + v, as batchnorm_backward_store) */
void hardtanh_backward_store(real *dinp, const real *dout, const real *inp, size_t n);
/* the two on the calling thread only (rows inside another op's parallel loop) */
void hardtanh_forward_serial(real *out, const real *inp, size_t n);
void hardtanh_backward_store_serial(real *dinp, const real *dout, const real *inp, size_t n);
/* relu; gradient 1 where inp > 0 */
void relu_forward(real *out, const real *inp, size_t n);
void relu_backward(real *dinp, const real *dout, const real *inp, size_t n);

/* ----------------------------------------------------------------- pools */
typedef struct { int N, C, H, W, K, stride, pad, OH, OW; } PoolDims;
PoolDims pool_dims(int N, int C, int H, int W, int K, int stride, int pad);

/* max-pool, padding counts as -inf; argmax (flat index into the H*W plane, -1
 * never happens for pad < K) is saved; ties go to the first in scan order */
void maxpool_forward(real *out /* [N,C,OH,OW] */, int32_t *argmax /* [N,C,OH,OW] */,
                     const real *inp /* [N,C,H,W] */, const PoolDims *d);
void maxpool_backward(real *dinp, const real *dout, const int32_t *argmax, const PoolDims *d);
/* avg-pool, count_include_pad = true (PyTorch default) */
void avgpool_forward(real *out, const real *inp, const PoolDims *d);
void avgpool_backward(real *dinp, const real *dout, const PoolDims *d);
/* global average pool [N,C,HW] -> [N,C] */
void global_avgpool_forward(real *out /* [N,C] */, const real *inp /* [N,C,HW] */, int N, int C, int HW);
void global_avgpool_backward(real *dinp, const real *dout, int N, int C, int HW);

/* -------------------------------------------------------------- residual */
/* out = a + b */
void add_forward(real *out, const real *a, const real *b, size_t n);
void add_backward(real *da, real *db, const real *dout, size_t n);
/* option-A shortcut (method.md 4.1): AvgPool2d(stride) then zero-padding of the
 * channel dim with pad_before zeros in front and Cout - C - pad_before behind.
 * stride 1 means no pooling. inp [N,C,H,W] -> out [N,Cout,H/stride,W/stride].
 * 0, or -1 (nothing written) when stride < 1 or the channels do not fit. */
int shortcut_a_forward(real *out, const real *inp, int N, int C, int H, int W, int stride, int Cout, int pad_before);
int shortcut_a_backward(real *dinp, const real *dout, int N, int C, int H, int W, int stride, int Cout, int pad_before);

/* ------------------------------------------------------------------ loss */
/* Losses are plain functions outside the graph (core/ops/loss.c): forward
 * returns the loss, backward accumulates its gradient times dloss into the
 * gradient of what it read (an output's model_output_grad). */

/* mean softmax cross-entropy over the batch; probs saved for backward.
 * Returns the mean loss (accumulated in double, fixed order), or NAN, with
 * nothing written, when a label is outside [0, K) (softmax_ce_bad_label
 * names the sample). */
double softmax_ce_forward(real *probs /* [N,K] */, const real *logits /* [N,K] */,
                          const int32_t *labels /* [N] */, int N, int K);
/* dlogits += (probs - onehot) / N * dloss; a row with a bad label gets nothing */
void softmax_ce_backward(real *dlogits, const real *probs, const int32_t *labels, int N, int K, real dloss);
/* The loss over the global batch of sp's ranks (core/shard.h): N is this
 * rank's rows; the forward sums each shard's rows in double in the order
 * above, adds the shards by the fixed tree and divides by
 * shard_global_rows(sp, N) (NaN on every rank when any rank has a bad label);
 * the backward scales by dloss / shard_global_rows(sp, N). sp NULL or
 * trivial: the functions above, bitwise. */
double softmax_ce_forward_sp(real *probs /* [N,K] */, const real *logits /* [N,K] */, const int32_t *labels /* [N] */,
                             int N, int K, const struct ShardPlan *sp);
void softmax_ce_backward_sp(real *dlogits, const real *probs, const int32_t *labels, int N, int K, real dloss,
                            const struct ShardPlan *sp);
/* the first sample whose label is outside [0, K), or -1 */
int softmax_ce_bad_label(const int32_t *labels /* [N] */, int N, int K);

/* Smooth L1 (PyTorch's SmoothL1Loss), x = pred - target per element:
 *   l(x) = 0.5 x^2 / beta  if |x| < beta,  |x| - 0.5 beta  otherwise   (beta >= 0; 0: |x|)
 * times weight[i] (NULL: 1), summed in double in order and divided by norm
 * (> 0): n for the mean over the elements, 1 for the sum, or any count the
 * caller normalises by (a detector's positives). Returns the loss. */
double smooth_l1_forward(const real *pred /* [n] */, const real *target /* [n] */, const real *weight /* [n] or NULL */,
                         size_t n, double beta, double norm);
/* the same summed per shard of sp (core/shard.h) and added by the fixed tree:
 * n is this rank's elements, rows x values per row with the rows divisible
 * by sp->local_shards (shard s: elements [s*n/ls, (s+1)*n/ls)); norm is the
 * global one (a count the caller has summed over the ranks). The backward is
 * per element: smooth_l1_backward with the global norm is already sharded.
 * sp NULL or trivial: smooth_l1_forward, bitwise. */
double smooth_l1_forward_sp(const real *pred, const real *target, const real *weight, size_t n, double beta,
                            double norm, const struct ShardPlan *sp);
/* dpred += dloss / norm * weight[i] * l'(x),  l'(x) = x / beta inside, sign(x) outside (0 at x = 0) */
void smooth_l1_backward(real *dpred /* [n] */, const real *pred, const real *target, const real *weight, size_t n,
                        double beta, double norm, double dloss);

#endif
