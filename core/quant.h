/* The named quantizers, binarizers and standardisations of the CycleBNN binary
 * convolution (method.md 3.1-3.3, E2-E10), larq-style: each function's comment
 * states its forward and the (pseudo-)gradient its backward applies.
 *
 * Conventions are those of core/ops.h: outputs first, a shape comment on every
 * pointer, backward ACCUMULATES (+=) into its gradient outputs, results do not
 * depend on the number of OpenMP threads (elementwise loops write disjoint
 * outputs; every reduction runs over fixed chunks combined in a fixed order).
 * Elementwise functions allow out == in.
 *
 * `bits` is a double (2.0, 3.0, ...) as in the reference code, where the
 * schedule yields a float64; 2^bits - 1 is computed in double and then
 * converted to `real`, as PyTorch converts a Python scalar to the tensor's
 * dtype (so bits = 32 gives 2^32 in float). bits = 0 means "no k-bit
 * quantization": the quantizers are the identity (the reference code's
 * --num_bits 0 skips them). */
#ifndef CBNN_QUANT_H
#define CBNN_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"

/* ------------------------------------------------------ min-max uniform (E4) */
/* Q_k(x; zp, R):  s  = max(R / (2^k - 1), 1e-8)
 *                 y  = (x - zp) / s            [+ noise, gradients only]
 *                 y  = clamp(y, 0, 2^k - 1)
 *                 y  = round_half_even(y)
 *                 x' = y * s + zp
 * Every step is one rounding in `real`, in the order PyTorch's in-place ops
 * of CPT's UniformQuantize perform them (no fused multiply-add). */

real quant_qmax(double bits);                 /* 2^bits - 1, in double then rounded to real */
real quant_scale(real range, double bits);    /* s = max(range / qmax, 1e-8) */
/* round half to even (rint under the default rounding mode), exact for all finite y */
real quant_round_half_even(real y);

/* The same quantizer as codes: codes[i] = the level round(clamp((x - zp)/s, 0, qmax))
 * (no noise), for qmax <= 255, i.e. 1 <= bits <= 8. Q_k(x) is then exactly
 * lut[codes[i]] with lut from quant_dequant_lut: lut[c] = c * s + zp, rounded as
 * the quantizer rounds (one product, one sum). A binary conv saves the codes of
 * its activations (1 byte) instead of Q_k(A) (4 bytes). */
void quant_codes_u8(uint8_t *codes /* [n] */, const real *x /* [n] */, size_t n, real zp, real s, real qmax);
void quant_dequant_lut(real lut[256], real zp, real s, real qmax);
/* the codes of x[r][i] / div[r] (E3's a0 recomputed, one IEEE division as
 * act_normalize_forward does), without storing a0; an AVX2 clone inside */
void quant_codes_u8_rows(uint8_t *codes /* [rows, m] */, const real *x /* [rows, m] */, int rows, size_t m,
                         const real *div /* [rows] */, real zp, real s, real qmax);

/* zp = min(x), range = max(x) - min(x) over n elements ("extreme" reduction);
 * n = 0 gives 0, 0 */
void quant_minmax_params(real *zp, real *range, const real *x /* [n] */, size_t n);

/* A per-tensor range that extends beyond the x a call sees (issue 15: the
 * other ranks' rows of the batch, core/shard.h): the reduction hands its
 * part's min and max to hook(mn, mx, first, ctx), which replaces them by the
 * whole tensor's; zp and range are then formed from those (zp = mn, range =
 * mx - mn) exactly as without a hook. first is x[0] (0 when n = 0): this
 * reduction, like a serial scan, gives NaN exactly when it is NaN, so the
 * part holding the tensor's first element decides that case. mn and mx are
 * the reduction's own values, except when x[0] is NaN: then the min and max
 * of the part's other (non-NaN) elements, NaN when it has none, so that a
 * part starting with NaN still contributes its numbers. The hook must
 * return the same values on every rank (it is the caller's exchange, e.g.
 * binary_conv.c's). The _ex functions below with hook = NULL are the plain
 * ones, bitwise. */
typedef void (*QuantRangeHook)(real *mn, real *mx, real first, void *ctx);
void quant_minmax_params_ex(real *zp, real *range, const real *x /* [n] */, size_t n, QuantRangeHook hook,
                            void *ctx);

/* out = Q_k(x; zp, range) with deterministic rounding; bits = 0: out = x.
 * Pseudo-gradient (minmax_uniform_backward): identity, no masking (STE). */
void minmax_uniform_apply(real *out /* [n] */, const real *x /* [n] */, size_t n, real zp, real range,
                          double bits);

/* per output channel (weights, E5): row r of x uses zp = min(x[r]), R = max(x[r]) - min(x[r]).
 * zp/range [rows] receive the parameters used (may be NULL). bits = 0: out = x. */
void minmax_uniform_per_channel(real *out /* [rows, n] */, real *zp /* [rows] */, real *range /* [rows] */,
                                const real *x /* [rows, n] */, int rows, size_t n, double bits);
/* one row of it (qmax = quant_qmax(bits), unused when bits = 0): the fused weight path of
 * binary_conv_forward calls it per output channel */
void minmax_uniform_row(real *out /* [n] */, real *zp, real *range, const real *x /* [n] */, size_t n, double bits,
                        real qmax);
/* sign(Q_k(x)) of one weight row as int8 {-1, 0, +1}: bitwise sign_value(.., zplus) of what
 * minmax_uniform_row writes (bits = 0: of x), without storing Q_k(x); the packed forward's
 * weight path (binary_conv_forward). An AVX2 clone is chosen inside the call. */
void quant_sign_row_i8(int8_t *b8 /* [n] */, const real *x /* [n] */, size_t n, double bits, real qmax, int zplus);

/* per tensor (activations, CPT QuantMeasure, momentum 0.9):
 *   train: zp = min(x), R = max(x) - min(x) of the whole batch, then
 *          running[0] = 0.9*running[0] + 0.1*zp,  running[1] = 0.9*running[1] + 0.1*R
 *          (buffers start at 0, no bias correction; 0.1 is the real nearest to 1 - 0.9)
 *   eval:  zp = running[0], R = running[1]; running is not changed.
 * zp_used/range_used receive the parameters used (may be NULL).
 * bits = 0: out = x and running is not updated (the reference never calls the quantizer). */
void minmax_uniform_per_tensor(real *out /* [n] */, real *running /* [2] zp, range */, real *zp_used,
                               real *range_used, const real *x /* [n] */, size_t n, double bits, int train);
/* its parameters alone (bits != 0): the zp and R it would use, and the same running update */
void minmax_per_tensor_params(real *zp_used, real *range_used, real *running /* [2] */, const real *x /* [n] */,
                              size_t n, int train);
/* the same two with the range through a hook (train only; see QuantRangeHook) */
void minmax_uniform_per_tensor_ex(real *out /* [n] */, real *running /* [2] */, real *zp_used, real *range_used,
                                  const real *x /* [n] */, size_t n, double bits, int train, QuantRangeHook hook,
                                  void *ctx);
void minmax_per_tensor_params_ex(real *zp_used, real *range_used, real *running /* [2] */, const real *x /* [n] */,
                                 size_t n, int train, QuantRangeHook hook, void *ctx);
/* its train branch with the min and max already known (first = x[0], not NaN):
 * bitwise minmax_per_tensor_params_ex(.., train = 1, ..) of an x without NaN whose
 * min and max are mn and mx and are not zeros (act_normalize_forward_minmax) */
void minmax_per_tensor_params_known(real *zp_used, real *range_used, real *running /* [2] */, real mn, real mx,
                                    real first, QuantRangeHook hook, void *ctx);

/* pseudo-gradient of every min-max quantizer: dx += dout (straight-through, no clamp mask) */
void minmax_uniform_backward(real *dx /* [n] */, const real *dout /* [n] */, size_t n);

/* ----------------------------------------------------- error quantizer (E8) */
/* out = Q_bits(g; zp = min g, R = max g - min g) with y = (g - zp)/s + noise[i]
 * BEFORE the clamp, then round half even (CPT UniformQuantizeGrad, stochastic).
 * noise [n] holds U(-0.5, 0.5) draws, or NULL for deterministic rounding.
 * Unbiased for every element (the extremes are grid points and stay put).
 * bits = 0: out = g. Used inside a backward pass; it has no gradient itself. */
void grad_quant(real *out /* [n] */, const real *g /* [n] */, size_t n, double bits, const real *noise /* [n] */);
/* the same with the range through a hook (see QuantRangeHook) */
void grad_quant_ex(real *out /* [n] */, const real *g /* [n] */, size_t n, double bits, const real *noise /* [n] */,
                   QuantRangeHook hook, void *ctx);

/* noise[i] ~ U(-0.5, 0.5), exactly representable (24-bit draws for float,
 * 53-bit for double), from the stochastic-rounding stream of (seed, key1,
 * key2): chunk c of NOISE_CHUNK elements draws from its own stream keyed by c,
 * so the values do not depend on the thread count (chunks run in parallel). */
#define NOISE_CHUNK 4096
void quant_fill_noise(real *noise /* [n] */, size_t n, uint64_t seed, uint64_t key1, uint64_t key2);
/* elements [off, off + n) of the fill quant_fill_noise would make of a longer
 * tensor: the slice of one rank's rows (core/shard.h) */
void quant_fill_noise_range(real *noise /* [n] */, size_t off, size_t n, uint64_t seed, uint64_t key1, uint64_t key2);

/* Where an error quantizer's draws come from, so that no whole-tensor noise
 * buffer need exist: draws != NULL: element i's draw is draws[i] (tests feed
 * the draws they give PyTorch); draws == NULL: element off + i of
 * quant_fill_noise(seed, key1, key2), drawn by the consumer a block at a time
 * where it uses them (the chunked stream can start anywhere). Bitwise the
 * same draws either way. A NULL QuantNoise pointer means no noise
 * (deterministic rounding). */
typedef struct {
    const real *draws;
    uint64_t seed, key1, key2;
    size_t off; /* the first element's index in the stream (a rank's first global element) */
} QuantNoise;
/* buf[j] = the draw of element lo + j, for j < n. Serial (call it per block
 * inside a parallel loop); the stream's chunks are drawn from their start, so
 * blocks on the NOISE_CHUNK grid of off + lo make no draw twice. */
void quant_noise_get(real *buf /* [n] */, const QuantNoise *q, size_t lo, size_t n);
/* grad_quant_ex with the draws from q (NULL: deterministic), bitwise */
void grad_quant_nz(real *out /* [n] */, const real *g /* [n] */, size_t n, double bits, const QuantNoise *q,
                   QuantRangeHook hook, void *ctx);

/* The threshold identity (method.md 3.3): for a per-tensor grid (zp, R, k),
 *   theta = zp + (j* + 1/2) * s,   j* = floor((0 - zp) / s),   s = quant_scale(R, k)
 * so that sign(Q_k(x)) == sign(x - theta) for every x in [zp, zp + R], except
 * measure-zero cases: x exactly at theta (a rounding tie), or 0 itself a grid
 * point (then the grid point 0 has sign 0). When zp <= 0 <= zp + R,
 * theta lies in (-s/2, s/2]. */
real quant_threshold(real zp, real range, double bits);

/* ------------------------------------------------------------------- sign */
/* sign(x) = +1 (x > 0), -1 (x < 0), and for x == 0 (either signed zero):
 * 0 (torch.sign, faithful) or +1 (zero_is_plus_one). */
static inline real sign_value(real x, int zero_is_plus_one) {
    return x > 0 ? (real)1 : x < 0 ? (real)-1 : zero_is_plus_one ? (real)1 : (real)0;
}
void sign_forward(real *out /* [n] */, const real *x /* [n] */, size_t n, int zero_is_plus_one);

/* ste_sign (weights): pseudo-gradient identity, dx += dout (no |x| <= 1 mask, no scale) */
void ste_sign_backward(real *dx /* [n] */, const real *dout /* [n] */, size_t n);

/* approx_sign (Bi-Real ApproxSign, activations): pseudo-gradient
 * d sign(x)/dx ~ max(0, 2 - 2|x|), evaluated at the QUANTIZED value x = Q_k(A0) (E10).
 * Computed as 2 - 2*|x| then clamped at 0, one rounding, as torch does. */
static inline real approx_sign_grad(real xq) {
    real t = (real)2 - (real)2 * (xq < 0 ? -xq : xq);
    return t > 0 ? t : (real)0;
}
/* dx += dout * max(0, 2 - 2|xq|) */
void approx_sign_backward(real *dx /* [n] */, const real *dout /* [n] */, const real *xq /* [n] */, size_t n);

/* ----------------------------------------------- weight standardisation (E2) */
/* per output channel o (row of n = C*KH*KW elements; n >= 2):
 *   W0 = W - mean(W[o])            only with center (ReCU balancing; faithful: off)
 *   sigma_o = sqrt(var_unbiased(W0[o]) + 1e-5)
 *   W1 = W0 / (sigma_o / 2 / sqrt(2))          (= 2*sqrt(2) * W0 / sigma_o, in this op order)
 * The variance is accumulated in double (two passes) and rounded to real.
 * sigma [O] and mean [O] (the raw row mean) are saved for backward.
 * Backward: the exact Jacobian, gradients flow through the variance:
 *   dW0_i += c/sigma * dW1_i - c/sigma^3 * (W_i - mean)/(n-1) * sum_j dW1_j W0_j,  c = 2*sqrt(2)
 *   with center: dW_i = dW0_i - mean_j(dW0_j). */
void weight_standardize_forward(real *w1 /* [O,n] */, real *sigma /* [O] */, real *mean /* [O] */,
                                const real *w /* [O,n] */, int O, size_t n, int center);
/* one output channel of it */
void weight_standardize_row(real *w1 /* [n] */, real *sigma, real *mean, const real *w /* [n] */, size_t n, int center);
void weight_standardize_backward(real *dw /* [O,n] */, const real *dw1 /* [O,n] */, const real *w /* [O,n] */,
                                 const real *sigma /* [O] */, const real *mean /* [O] */, int O, size_t n,
                                 int center);

/* ReCU clamp (ReCU's rectified clamp unit; faithful: off, the upstream clamp is inert):
 *   Q = -mean(|W1|) * log(2 - 2*tau), the mean over the WHOLE tensor (as ReCU's
 *   EW), detached (no gradient through Q); tau = 1 gives Q = +inf (identity).
 *   W2 = clamp(W1, -Q, Q)  (torch.clamp: min(max(x, -Q), Q))
 * Backward: STE inside the clamp, dW1 += dW2 where -Q <= W1 <= Q (inclusive, as torch.clamp). */
real recu_clamp_q(const real *w1 /* [n] */, size_t n, double tau);
void recu_clamp_forward(real *w2 /* [n] */, const real *w1 /* [n] */, size_t n, real q);
void recu_clamp_backward(real *dw1 /* [n] */, const real *dw2 /* [n] */, const real *w1 /* [n] */, size_t n, real q);

/* ---------------------------------------------- activation normalisation (E3) */
/* per sample n (row of m = C*H*W elements; m >= 2), training only, no mean subtraction:
 *   sigma_n = sqrt(var_unbiased(A[n]) + 1e-5),  A0 = A / sigma_n
 * sigma [N] and mean [N] (the row mean) are saved for backward.
 * Backward: the exact Jacobian,
 *   dA_i += dA0_i/sigma - (A_i - mean)/((m-1) sigma^3) * sum_j dA0_j A_j. */
void act_normalize_forward(real *a0 /* [N,m] */, real *sigma /* [N] */, real *mean /* [N] */,
                           const real *a /* [N,m] */, int N, size_t m);
/* the same a0, sigma and mean, and the min and max of a0 from the same pass (the
 * per-tensor quantizer's range without another read of a0); a0 NULL: a0 is not
 * written, its extremes are x's divided by sigma (the same values: division by
 * sigma > 0 is monotone after rounding). Returns 1 when they
 * are bitwise what quant_minmax_params(a0) gives: no NaN in a0 (every sigma
 * finite) and neither extreme a zero (whose sign depends on a scan's order);
 * else 0, and the caller scans a0. */
int act_normalize_forward_minmax(real *a0 /* [N,m] */, real *sigma /* [N] */, real *mean /* [N] */, real *mn,
                                 real *mx, const real *a /* [N,m] */, int N, size_t m);
void act_normalize_backward(real *da /* [N,m] */, const real *da0 /* [N,m] */, const real *a /* [N,m] */,
                            const real *sigma /* [N] */, const real *mean /* [N] */, int N, size_t m);

#endif
