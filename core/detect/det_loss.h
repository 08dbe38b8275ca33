/* The detector's losses (issue 14, method.md 4.4), outside the graph as the
 * classification loss is: each returns its value and writes (adds, scaled by
 * dloss) the gradient w.r.t. its input.
 *
 *   smooth-L1(sigma) per element: 0.5 sigma^2 d^2 if |d| < 1/sigma^2 else |d| - 0.5/sigma^2,
 *     d = in_w * (pred - target), times out_w; RPN sigma 3, RCNN sigma 1
 *   the BiDet information-bottleneck terms:
 *     mean square   mean(x^2)                       (rpn_reg, head_reg)
 *     entropy prior -sum p log(p + 1e-6) / n_gt, p = s / sum(s) with sum(s)
 *                   a constant (detached, as the reference) (rpn_prior, head_prior)
 *   the box sampling of BiDet's box outputs: value = mu + eps * exp(0.5 log_var) * sigma_s */
#ifndef CBNN_DET_LOSS_H
#define CBNN_DET_LOSS_H

#include <stddef.h>

#include "real.h"

/* sum over n of out_w[i] * smoothl1(in_w[i] * (pred[i] - target[i])) (in_w,
 * out_w may be NULL = 1); the caller divides (the reference sums over
 * dimensions and averages over the batch: see tasks/detect.c) */
double smooth_l1_sigma_forward(const real *pred, const float *target, const float *in_w, const float *out_w,
                               size_t n, double sigma);
/* dpred[i] += dloss * d/dpred of the same term: out_w in_w sigma^2 d inside,
 * out_w in_w sign(d) outside (the branch flag is detached; sign(0) = 0) */
void smooth_l1_sigma_backward(real *dpred, const real *pred, const float *target, const float *in_w,
                              const float *out_w, size_t n, double sigma, double dloss);

double mean_square_forward(const real *x, size_t n);
void mean_square_backward(real *dx, const real *x, size_t n, double dloss);

/* -sum_i p_i log(p_i + 1e-6) / n_gt with p_i = s_i / S, S = sum(s) taken as a
 * constant (the reference reads it with .item()), so ds_i = -dloss (log(p_i +
 * 1e-6) + p_i / (p_i + 1e-6)) / (S n_gt). n <= 0, n_gt <= 0 or S == 0: 0 and
 * no gradient (guards; the reference would divide by zero). head_prior's
 * other division by zero, the mean over qualifying classes when none
 * qualifies (0/0 upstream), is the caller's: it becomes 0 there, the named
 * fix detect.head_prior_zero. rpn_prior has no gradient upstream (its scores
 * are .data): its caller logs the forward only. */
double entropy_prior_forward(const real *s, int n, double n_gt);
void entropy_prior_backward(real *ds, const real *s, int n, double n_gt, double dloss);

/* out[i] = mu[i] + eps[i] * exp(0.5 * log_var[i]) * sample_sigma, and its
 * backward into dmu, dlog_var (+=; either may be NULL):
 * dmu += dout, dlog_var += dout * eps * sample_sigma * 0.5 exp(0.5 log_var) */
void box_sample_forward(real *out, const real *mu, const real *log_var, const real *eps, size_t n,
                        double sample_sigma);
void box_sample_backward(real *dmu, real *dlog_var, const real *dout, const real *log_var, const real *eps,
                         size_t n, double sample_sigma);

#endif
