/* Batch normalisation over [N, C, HW] with PyTorch semantics.
 *
 * One channel is reduced by one thread, over n then hw in a fixed order, with
 * double accumulators (eight interleaved per sample's row, core/rowsum.h): the result is the same bitwise for any thread count,
 * and float inputs with a large mean do not lose the variance to cancellation
 * (the variance is taken in a second pass around the mean, not as E[x^2]-E[x]^2).
 *
 * Shards (issue 15, core/shard.h). With a non-trivial BNDims.sp every sum over
 * the batch -- the mean's, the variance's, and backward's sum dy and sum dy *
 * xhat -- is taken per shard of N/local_shards consecutive samples with the
 * one-shard arithmetic above (rows in sample order, ROWSUM8 within a row),
 * and the shards' partials are added by shard_sum_d: the fixed pairwise tree
 * in shard order, this rank's subtree here, the ranks' above it. The mean and
 * variance divide by the global count, and every rank then holds the same
 * statistics, running ones included. So the bits depend on S (train.shards),
 * never on the number of ranks R or of threads: one rank with S shards adds
 * exactly the tree R ranks add together. The pass structure is forced by the
 * tree (it spans ranks): partials of every channel, one tree call outside the
 * parallel loop, then the channels again. With sp NULL (or trivial) the code
 * below the sharded functions is the one of always. */
#include <math.h>
#include <stdlib.h>

#include "ops.h"
#include "rowsum.h"
#include "shard.h"

/* ---------------------------------------------------------------- shards */

static int bn_sharded(const BNDims *d) { return !shard_plan_trivial(d->sp); }

/* sum over rows [0, rows) of one channel (x at the channel's first value of
 * the shard's first sample): the one-shard pass 1 */
static inline double bn_rows_sum(const real *x, int rows, int HW, long cstride) {
    double sum = 0.0;
    for (int n = 0; n < rows; n++) {
        const real *xn = x + n * cstride;
        double r;
        ROWSUM8(r, HW, (double)xn[i]);
        sum += r;
    }
    return sum;
}

/* sum of (x - mu)^2 over rows [0, rows): the one-shard pass 2 */
static inline double bn_rows_ssd(const real *x, int rows, int HW, long cstride, double mu) {
    double ss = 0.0;
    for (int n = 0; n < rows; n++) {
        const real *xn = x + n * cstride;
        double r;
        ROWSUM8(r, HW, ((double)xn[i] - mu) * ((double)xn[i] - mu));
        ss += r;
    }
    return ss;
}

/* Train forward over shards. Workspace: 2C doubles a slot; pass 1's partials
 * at stride C, the means kept at parts + ls*C (inside the ls slots, past what
 * pass 2's partials use), pass 2's partials at stride C again. */
static void bn_forward_train_sharded(real *out, real *mean, real *rstd, real *running_mean, real *running_var,
                                     const real *inp, const real *gamma, const real *beta, const BNDims *d) {
    const ShardPlan *sp = d->sp;
    const int N = d->N, C = d->C, HW = d->HW, ls = sp->local_shards, rows = shard_rows(sp, N);
    const long M = shard_global_rows(sp, N) * HW; /* values per channel over the global batch */
    const long cstride = (long)C * HW;
    const long sstride = (long)rows * cstride; /* distance between shards */
    const double m = (double)d->momentum;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(sp, 2 * (size_t)C, &tmp, &owned);
    double *mus = parts + (size_t)ls * C;

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int s = 0; s < ls; s++) parts[(size_t)s * C + c] = bn_rows_sum(inp + (long)c * HW + s * sstride, rows, HW, cstride);
    shard_sum_d(sp, parts, (size_t)C, tmp);
    for (int c = 0; c < C; c++) mus[c] = parts[c] / (double)M;

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int s = 0; s < ls; s++)
            parts[(size_t)s * C + c] = bn_rows_ssd(inp + (long)c * HW + s * sstride, rows, HW, cstride, mus[c]);
    shard_sum_d(sp, parts, (size_t)C, tmp);

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = mus[c], ss = parts[c];
        const double var = ss / (double)M; /* biased: what normalises */
        const double rs = 1.0 / sqrt(var + (double)d->eps);
        const double g = gamma ? (double)gamma[c] : 1.0;
        const double b = beta ? (double)beta[c] : 0.0;
        const double scale = g * rs;
        for (int n = 0; n < N; n++) {
            const real *xn = inp + (long)c * HW + n * cstride;
            real *on = out + (long)c * HW + n * cstride;
            for (int i = 0; i < HW; i++) on[i] = (real)(((double)xn[i] - mu) * scale + b);
        }
        mean[c] = (real)mu;
        rstd[c] = (real)rs;
        const double var_unbiased = M > 1 ? ss / (double)(M - 1) : var; /* as the one-shard path */
        if (running_mean) running_mean[c] = (real)((1.0 - m) * (double)running_mean[c] + m * mu);
        if (running_var) running_var[c] = (real)((1.0 - m) * (double)running_var[c] + m * var_unbiased);
    }
    free(owned);
}

void batchnorm_forward_train(real *out /* [N,C,HW] */, real *mean /* [C] saved */, real *rstd /* [C] saved */,
                             real *running_mean /* [C] */, real *running_var /* [C] */,
                             const real *inp /* [N,C,HW] */, const real *gamma /* [C] */,
                             const real *beta /* [C] */, const BNDims *d) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = (long)N * HW; /* values per channel */
    const long cstride = (long)C * HW; /* distance between samples */
    const double m = (double)d->momentum;
    if (bn_sharded(d)) {
        bn_forward_train_sharded(out, mean, rstd, running_mean, running_var, inp, gamma, beta, d);
        return;
    }

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

/* a channel's statistics as the backward uses them: the saved mean and rstd
 * (train), or the running ones with rstd = 1/sqrt(running_var + eps) (eval) */
static inline void bn_stats(double *mu, double *rs, const real *a, const real *b, int eval, const BNDims *d, int c) {
    *mu = (double)a[c];
    *rs = eval ? 1.0 / sqrt((double)b[c] + (double)d->eps) : (double)b[c];
}

/* Sharded backward sums: parts[s*2C + c] = shard s's sum dy of channel c,
 * parts[s*2C + C + c] its sum dy * xhat, each by bn_channel_sums on the
 * shard's rows; one tree over the 2C values leaves the batch's sums in
 * parts[0..2C). a, b, eval: the statistics, as bn_stats reads them. */
static void bn_sums_sharded(double *parts, double *tmp, const real *dout, const real *inp, const real *a,
                            const real *b, int eval, const BNDims *d) {
    const ShardPlan *sp = d->sp;
    const int C = d->C, HW = d->HW, ls = sp->local_shards, rows = shard_rows(sp, d->N);
    const long cstride = (long)C * HW, sstride = (long)rows * cstride;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu, rs;
        bn_stats(&mu, &rs, a, b, eval, d, c);
        for (int s = 0; s < ls; s++)
            bn_channel_sums(&parts[(size_t)s * 2 * C + c], &parts[(size_t)s * 2 * C + C + c], dout + s * sstride,
                            inp + s * sstride, c, rows, HW, cstride, mu, rs);
    }
    shard_sum_d(sp, parts, 2 * (size_t)C, tmp);
}

/* Train backward over shards: the sums through the tree, then dgamma, dbeta
 * and dx per channel as in bn_backward, with the global count */
static void bn_backward_sharded(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                                const real *mean, const real *rstd, const real *gamma, const BNDims *d, int store) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = shard_global_rows(d->sp, N) * HW;
    const long cstride = (long)C * HW;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(d->sp, 2 * (size_t)C, &tmp, &owned);
    bn_sums_sharded(parts, tmp, dout, inp, mean, rstd, 0, d);

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = (double)mean[c], rs = (double)rstd[c];
        const double sum_dy = parts[c], sum_dy_xhat = parts[C + c];
        if (dbeta) dbeta[c] += (real)sum_dy;
        if (dgamma) dgamma[c] += (real)sum_dy_xhat;
        if (!dinp) continue;
        const double k = (gamma ? (double)gamma[c] : 1.0) * rs;
        const double mean_dy = sum_dy / (double)M, mean_dy_xhat = sum_dy_xhat / (double)M;
        for (int n = 0; n < N; n++) {
            const real *xn = inp + (long)c * HW + n * cstride;
            const real *dyn = dout + (long)c * HW + n * cstride;
            real *dxn = dinp + (long)c * HW + n * cstride;
            for (int i = 0; i < HW; i++) {
                const double xhat = ((double)xn[i] - mu) * rs;
                const real v = (real)(k * ((double)dyn[i] - mean_dy - xhat * mean_dy_xhat));
                dxn[i] = store ? (real)0 + v : dxn[i] + v;
            }
        }
    }
    free(owned);
}

/* Eval-mode backward's parameter sums over shards (dx is per sample: the
 * one-shard code does it) */
static void bn_backward_eval_sums_sharded(real *dgamma, real *dbeta, const real *dout, const real *inp,
                                          const real *running_mean, const real *running_var, const BNDims *d) {
    const int C = d->C;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(d->sp, 2 * (size_t)C, &tmp, &owned);
    bn_sums_sharded(parts, tmp, dout, inp, running_mean, running_var, 1, d);
    for (int c = 0; c < C; c++) {
        if (dbeta) dbeta[c] += (real)parts[c];
        if (dgamma) dgamma[c] += (real)parts[C + c];
    }
    free(owned);
}

/* store = 1: dinp is written as 0 + v instead of read and accumulated (a fresh buffer) */
static void bn_backward(real *dinp /* [N,C,HW] or NULL */, real *dgamma /* [C] or NULL */,
                        real *dbeta /* [C] or NULL */, const real *dout /* [N,C,HW] */,
                        const real *inp /* [N,C,HW] */, const real *mean /* [C] */,
                        const real *rstd /* [C] */, const real *gamma /* [C] */, const BNDims *d, int store) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = (long)N * HW;
    const long cstride = (long)C * HW;
    if (bn_sharded(d)) {
        bn_backward_sharded(dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, d, store);
        return;
    }

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
    /* sharded: the parameter sums through the tree first, then dx alone below */
    const int sharded = bn_sharded(d) && (dgamma || dbeta);
    if (sharded) bn_backward_eval_sums_sharded(dgamma, dbeta, dout, inp, running_mean, running_var, d);

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = (double)running_mean[c];
        const double rs = 1.0 / sqrt((double)running_var[c] + (double)d->eps);
        if (!sharded && (dgamma || dbeta)) {
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
