/* Batch normalisation over [N, C, HW] with PyTorch semantics.
 *
 * One channel is reduced by one thread, over n then hw in a fixed order, with
 * double accumulators (eight interleaved per sample's row, core/rowsum.h): the result is the same bitwise for any thread count,
 * and float inputs with a large mean do not lose the variance to cancellation
 * (the variance is taken in a second pass around the mean, not as E[x^2]-E[x]^2). */
#include <math.h>

#include "ops.h"
#include "rowsum.h"

void batchnorm_forward_train(real *out /* [N,C,HW] */, real *mean /* [C] saved */, real *rstd /* [C] saved */,
                             real *running_mean /* [C] */, real *running_var /* [C] */,
                             const real *inp /* [N,C,HW] */, const real *gamma /* [C] */,
                             const real *beta /* [C] */, const BNDims *d) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = (long)N * HW; /* values per channel */
    const long cstride = (long)C * HW; /* distance between samples */
    const double m = (double)d->momentum;

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const real *x = inp + (long)c * HW;
        double sum = 0.0;
        for (int n = 0; n < N; n++) {
            const real *xn = x + n * cstride;
            double r;
            ROWSUM8(r, HW, (double)xn[i]);
            sum += r;
        }
        double mu = sum / (double)M;
        double ss = 0.0;
        for (int n = 0; n < N; n++) {
            const real *xn = x + n * cstride;
            double r;
            ROWSUM8(r, HW, ((double)xn[i] - mu) * ((double)xn[i] - mu));
            ss += r;
        }
        double var = ss / (double)M; /* biased: what normalises */
        double rs = 1.0 / sqrt(var + (double)d->eps);

        double g = gamma ? (double)gamma[c] : 1.0;
        double b = beta ? (double)beta[c] : 0.0;
        double scale = g * rs;
        for (int n = 0; n < N; n++) {
            const real *xn = x + n * cstride;
            real *on = out + (long)c * HW + n * cstride;
            for (int i = 0; i < HW; i++) on[i] = (real)(((double)xn[i] - mu) * scale + b);
        }

        mean[c] = (real)mu;
        rstd[c] = (real)rs;
        /* running_var tracks the unbiased variance (PyTorch). With a single
         * value per channel (M = 1) that is 0/0; PyTorch refuses such a batch in
         * training, we fall back to the biased value (0) instead of a NaN. */
        double var_unbiased = M > 1 ? ss / (double)(M - 1) : var;
        if (running_mean) running_mean[c] = (real)((1.0 - m) * (double)running_mean[c] + m * mu);
        if (running_var) running_var[c] = (real)((1.0 - m) * (double)running_var[c] + m * var_unbiased);
    }
}

void batchnorm_forward_eval(real *out /* [N,C,HW] */, const real *inp /* [N,C,HW] */,
                            const real *gamma /* [C] */, const real *beta /* [C] */,
                            const real *running_mean /* [C] */, const real *running_var /* [C] */,
                            const BNDims *d) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long cstride = (long)C * HW;

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu = (double)running_mean[c];
        double rs = 1.0 / sqrt((double)running_var[c] + (double)d->eps);
        double g = gamma ? (double)gamma[c] : 1.0;
        double b = beta ? (double)beta[c] : 0.0;
        double scale = g * rs;
        for (int n = 0; n < N; n++) {
            const real *xn = inp + (long)c * HW + n * cstride;
            real *on = out + (long)c * HW + n * cstride;
            for (int i = 0; i < HW; i++) on[i] = (real)(((double)xn[i] - mu) * scale + b);
        }
    }
}

/* Train-mode backward. With xhat = (x - mean) * rstd and y = gamma * xhat + beta,
 *   dbeta  = sum dy,  dgamma = sum dy * xhat,
 *   dx     = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat))
 * (the two mean terms are the gradient flowing through the batch mean and the
 * batch variance). Sums are over the M = N*HW values of the channel. */
/* Of channel c: sum dy and sum dy * xhat, xhat = (x - mu) * rs, each row
 * summed with ROWSUM8 and the rows added in sample order (the training and the
 * eval-mode backward share it, so their parameter gradients round alike). */
static inline void bn_channel_sums(double *sum_dy, double *sum_dy_xhat, const real *dout, const real *inp, int c,
                                   int N, int HW, long cstride, double mu, double rs) {
    double a = 0.0, b = 0.0;
    for (int n = 0; n < N; n++) {
        const real *xn = inp + (long)c * HW + n * cstride;
        const real *dyn = dout + (long)c * HW + n * cstride;
        double r1, r2;
        ROWSUM8(r1, HW, (double)dyn[i]);
        ROWSUM8(r2, HW, (double)dyn[i] * ((double)xn[i] - mu) * rs);
        a += r1;
        b += r2;
    }
    *sum_dy = a;
    *sum_dy_xhat = b;
}

/* store = 1: dinp is written as 0 + v instead of read and accumulated (a fresh buffer) */
static void bn_backward(real *dinp /* [N,C,HW] or NULL */, real *dgamma /* [C] or NULL */,
                        real *dbeta /* [C] or NULL */, const real *dout /* [N,C,HW] */,
                        const real *inp /* [N,C,HW] */, const real *mean /* [C] */,
                        const real *rstd /* [C] */, const real *gamma /* [C] */, const BNDims *d, int store) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = (long)N * HW;
    const long cstride = (long)C * HW;

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = (double)mean[c], rs = (double)rstd[c];
        double sum_dy, sum_dy_xhat;
        bn_channel_sums(&sum_dy, &sum_dy_xhat, dout, inp, c, N, HW, cstride, mu, rs);
        if (dbeta) dbeta[c] += (real)sum_dy;
        if (dgamma) dgamma[c] += (real)sum_dy_xhat;
        if (!dinp) continue;

        double g = gamma ? (double)gamma[c] : 1.0;
        double k = g * rs;
        double mean_dy = sum_dy / (double)M, mean_dy_xhat = sum_dy_xhat / (double)M;
        for (int n = 0; n < N; n++) {
            const real *xn = inp + (long)c * HW + n * cstride;
            const real *dyn = dout + (long)c * HW + n * cstride;
            real *dxn = dinp + (long)c * HW + n * cstride;
            for (int i = 0; i < HW; i++) {
                double xhat = ((double)xn[i] - mu) * rs;
                const real v = (real)(k * ((double)dyn[i] - mean_dy - xhat * mean_dy_xhat));
                dxn[i] = store ? (real)0 + v : dxn[i] + v; /* 0 + v: what += gives on zeros, -0 included */
            }
        }
    }
}

void batchnorm_backward(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp, const real *mean,
                        const real *rstd, const real *gamma, const BNDims *d) {
    bn_backward(dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, d, 0);
}

void batchnorm_backward_store(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                              const real *mean, const real *rstd, const real *gamma, const BNDims *d) {
    bn_backward(dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, d, 1);
}

/* Eval-mode backward: the running statistics are constants, so y = x * k + b'
 * per channel with k = gamma * rstd_running, rstd_running = 1/sqrt(running_var
 * + eps) as the eval forward computes it:
 *   dx = dy * k,  dgamma = sum dy * xhat (xhat = (x - running_mean) * rstd_running),  dbeta = sum dy
 * For a frozen BN (no parameter gradients: dgamma, dbeta NULL) and for a
 * backward after an eval-mode forward. store as in bn_backward. */
static void bn_backward_eval(real *dinp /* [N,C,HW] or NULL */, real *dgamma /* [C] or NULL */,
                             real *dbeta /* [C] or NULL */, const real *dout /* [N,C,HW] */,
                             const real *inp /* [N,C,HW] */, const real *gamma /* [C] */,
                             const real *running_mean /* [C] */, const real *running_var /* [C] */,
                             const BNDims *d, int store) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long cstride = (long)C * HW;

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = (double)running_mean[c];
        const double rs = 1.0 / sqrt((double)running_var[c] + (double)d->eps);
        if (dgamma || dbeta) {
            double sum_dy, sum_dy_xhat;
            bn_channel_sums(&sum_dy, &sum_dy_xhat, dout, inp, c, N, HW, cstride, mu, rs);
            if (dbeta) dbeta[c] += (real)sum_dy;
            if (dgamma) dgamma[c] += (real)sum_dy_xhat;
        }
        if (!dinp) continue;
        const double k = (gamma ? (double)gamma[c] : 1.0) * rs;
        for (int n = 0; n < N; n++) {
            const real *dyn = dout + (long)c * HW + n * cstride;
            real *dxn = dinp + (long)c * HW + n * cstride;
            for (int i = 0; i < HW; i++) {
                const real v = (real)(k * (double)dyn[i]);
                dxn[i] = store ? (real)0 + v : dxn[i] + v;
            }
        }
    }
}

void batchnorm_backward_eval(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                             const real *gamma, const real *running_mean, const real *running_var, const BNDims *d) {
    bn_backward_eval(dinp, dgamma, dbeta, dout, inp, gamma, running_mean, running_var, d, 0);
}

void batchnorm_backward_eval_store(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                                   const real *gamma, const real *running_mean, const real *running_var,
                                   const BNDims *d) {
    bn_backward_eval(dinp, dgamma, dbeta, dout, inp, gamma, running_mean, running_var, d, 1);
}
