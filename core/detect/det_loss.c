/* The detector's losses (det_loss.h), elementwise as the reference computes
 * them (net_utils._smooth_l1_loss; the IB terms of faster_rcnn.py and
 * rpn.py). Each runs serially in double with its sums in index order: they
 * are tiny next to the convs, and the order makes them thread-independent. */
#include "det_loss.h"

#include <math.h>

/* the reference's smooth-L1 of one already weighted difference d = in_w * (pred - target):
 * the branch flag |d| < 1/sigma^2 is detached, so the derivative is sigma^2 d
 * inside and d/dd |d| = sign(d) outside (torch.abs: 0 at 0) */
static double sl1(double d, double s2) {
    const double a = fabs(d);
    return a < 1.0 / s2 ? 0.5 * s2 * d * d : a - 0.5 / s2;
}
static double sl1_grad(double d, double s2) {
    if (fabs(d) < 1.0 / s2) return s2 * d;
    return d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;
}

double smooth_l1_sigma_forward(const real *pred, const float *target, const float *in_w, const float *out_w,
                               size_t n, double sigma) {
    const double s2 = sigma * sigma;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double wi = in_w ? (double)in_w[i] : 1.0, wo = out_w ? (double)out_w[i] : 1.0;
        total += wo * sl1(wi * ((double)pred[i] - (double)target[i]), s2);
    }
    return total;
}

void smooth_l1_sigma_backward(real *dpred, const real *pred, const float *target, const float *in_w,
                              const float *out_w, size_t n, double sigma, double dloss) {
    if (!dpred) return;
    const double s2 = sigma * sigma;
    for (size_t i = 0; i < n; i++) {
        const double wi = in_w ? (double)in_w[i] : 1.0, wo = out_w ? (double)out_w[i] : 1.0;
        const double d = wi * ((double)pred[i] - (double)target[i]);
        dpred[i] += (real)(dloss * wo * wi * sl1_grad(d, s2));
    }
}

double mean_square_forward(const real *x, size_t n) {
    if (n == 0) return 0.0;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s / (double)n;
}

void mean_square_backward(real *dx, const real *x, size_t n, double dloss) {
    if (!dx || n == 0) return;
    const double k = 2.0 * dloss / (double)n;
    for (size_t i = 0; i < n; i++) dx[i] += (real)(k * (double)x[i]);
}

#define PRIOR_EPS 1e-6 /* the reference's log(p + 1e-6) */

static double prior_sum(const real *s, int n) {
    double S = 0.0;
    for (int i = 0; i < n; i++) S += (double)s[i];
    return S;
}

double entropy_prior_forward(const real *s, int n, double n_gt) {
    if (n <= 0 || n_gt <= 0) return 0.0;
    const double S = prior_sum(s, n);
    if (S == 0.0) return 0.0;
    double h = 0.0;
    for (int i = 0; i < n; i++) {
        const double p = (double)s[i] / S;
        h += p * log(p + PRIOR_EPS);
    }
    return -h / n_gt;
}

/* S is a constant (the reference reads it with .item()), so dp_i/ds_i = 1/S
 * alone and d/dp [p log(p + eps)] = log(p + eps) + p / (p + eps) */
void entropy_prior_backward(real *ds, const real *s, int n, double n_gt, double dloss) {
    if (!ds || n <= 0 || n_gt <= 0) return;
    const double S = prior_sum(s, n);
    if (S == 0.0) return;
    const double k = -dloss / (S * n_gt);
    for (int i = 0; i < n; i++) {
        const double p = (double)s[i] / S;
        ds[i] += (real)(k * (log(p + PRIOR_EPS) + p / (p + PRIOR_EPS)));
    }
}

void box_sample_forward(real *out, const real *mu, const real *log_var, const real *eps, size_t n,
                        double sample_sigma) {
    for (size_t i = 0; i < n; i++)
        out[i] = (real)((double)mu[i] + (double)eps[i] * exp(0.5 * (double)log_var[i]) * sample_sigma);
}

void box_sample_backward(real *dmu, real *dlog_var, const real *dout, const real *log_var, const real *eps,
                         size_t n, double sample_sigma) {
    for (size_t i = 0; i < n; i++) {
        if (dmu) dmu[i] += dout[i];
        if (dlog_var)
            dlog_var[i] += (real)((double)dout[i] * (double)eps[i] * sample_sigma * 0.5 * exp(0.5 * (double)log_var[i]));
    }
}
