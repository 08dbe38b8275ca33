/* Losses as plain functions, outside the graph: a task runs the model, calls
 * a loss's forward on an output and its backward into that output's gradient
 * buffer (model_output_grad), then backpropagates.
 *
 * Softmax cross-entropy, mean over the batch (nn.CrossEntropyLoss defaults),
 * and smooth L1 (nn.SmoothL1Loss). Both are small next to any conv, so they
 * run serially: every sum is then trivially in a fixed order.
 *
 * Shards (issue 15, core/shard.h): the _sp forms take the loss over the
 * global batch of R ranks. The forward sums each shard of N/local_shards
 * consecutive rows in double in today's order, adds the shards' sums in the
 * fixed pairwise tree (shard_sum_d: this rank's subtree, then the ranks'),
 * and divides by the global count; the backward scales by 1/(global rows).
 * One process with S shards adds the very tree R ranks add together, so the
 * loss's bits depend on S, never on R. With a NULL or trivial plan they are
 * the one-shard functions, bitwise. */
#include <math.h>
#include <stdlib.h>

#include "ops.h"
#include "shard.h"

int softmax_ce_bad_label(const int32_t *labels /* [N] */, int N, int K) {
    for (int n = 0; n < N; n++)
        if (labels[n] < 0 || labels[n] >= K) return n;
    return -1;
}

/* Per row: log p_k = (x_k - max) - log(sum_j exp(x_j - max)). Subtracting the
 * row max keeps every exp in (0, 1], so no overflow, and the sum is >= 1. */
/* rows [n0, n1): probs written, the sum of -log p_label (double, in row order) returned */
static double softmax_ce_rows(real *probs /* [N,K] */, const real *logits /* [N,K] */, const int32_t *labels /* [N] */,
                              int n0, int n1, int K) {
    double total = 0.0;
    for (int n = n0; n < n1; n++) {
        const real *x = logits + (long)n * K;
        real *p = probs + (long)n * K;
        double mx = (double)x[0];
        for (int k = 1; k < K; k++)
            if ((double)x[k] > mx) mx = (double)x[k];
        double sum = 0.0;
        for (int k = 0; k < K; k++) sum += exp((double)x[k] - mx);
        double log_sum = log(sum);
        for (int k = 0; k < K; k++) p[k] = (real)exp((double)x[k] - mx - log_sum);
        total += log_sum - ((double)x[labels[n]] - mx); /* -log p_label */
    }
    return total;
}

double softmax_ce_forward(real *probs /* [N,K] */, const real *logits /* [N,K] */,
                          const int32_t *labels /* [N] */, int N, int K) {
    /* a wrong label is a bug in the data path, not something to train through:
     * refused before anything is written */
    if (softmax_ce_bad_label(labels, N, K) >= 0) return NAN;
    const double total = softmax_ce_rows(probs, logits, labels, 0, N, K);
    return N > 0 ? total / (double)N : 0.0;
}

double softmax_ce_forward_sp(real *probs /* [N,K] */, const real *logits /* [N,K] */,
                             const int32_t *labels /* [N] */, int N, int K, const ShardPlan *sp) {
    if (shard_plan_trivial(sp)) return softmax_ce_forward(probs, logits, labels, N, K);
    const int ls = sp->local_shards, rows = shard_rows(sp, N);
    const long G = shard_global_rows(sp, N);
    /* a bad label still takes part in the tree (the other ranks wait for it):
     * as NaN partials, so that every rank returns NaN; nothing written here */
    const int bad = softmax_ce_bad_label(labels, N, K) >= 0;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(sp, 1, &tmp, &owned);
    for (int s = 0; s < ls; s++)
        parts[s] = bad ? NAN : softmax_ce_rows(probs, logits, labels, s * rows, (s + 1) * rows, K);
    shard_sum_d(sp, parts, 1, tmp);
    const double loss = G > 0 ? parts[0] / (double)G : 0.0;
    free(owned);
    return loss;
}

/* dlogits += (probs - onehot) * scale, rows with a bad label skipped */
static void softmax_ce_grad(real *dlogits, const real *probs, const int32_t *labels, int N, int K, double scale) {
    for (int n = 0; n < N; n++) {
        if (labels[n] < 0 || labels[n] >= K) continue; /* forward returned NaN: no gradient from this row */
        const real *p = probs + (long)n * K;
        real *g = dlogits + (long)n * K;
        for (int k = 0; k < K; k++) {
            double t = (double)p[k] - (k == labels[n] ? 1.0 : 0.0);
            g[k] += (real)(scale * t);
        }
    }
}

void softmax_ce_backward(real *dlogits /* [N,K] */, const real *probs /* [N,K] */,
                         const int32_t *labels /* [N] */, int N, int K, real dloss) {
    if (!dlogits) return;
    softmax_ce_grad(dlogits, probs, labels, N, K, (double)dloss / (double)N);
}

void softmax_ce_backward_sp(real *dlogits /* [N,K] */, const real *probs /* [N,K] */, const int32_t *labels /* [N] */,
                            int N, int K, real dloss, const ShardPlan *sp) {
    if (!dlogits) return;
    softmax_ce_grad(dlogits, probs, labels, N, K, (double)dloss / (double)shard_global_rows(sp, N));
}

/* PyTorch's SmoothL1Loss per element, x = pred - target:
 *   0.5 x^2 / beta  if |x| < beta,  |x| - 0.5 beta  otherwise
 * (beta = 0 never takes the first branch: plain |x|, as PyTorch's l1 path) */
static double smooth_l1(double x, double beta) {
    const double a = fabs(x);
    return a < beta ? 0.5 * x * x / beta : a - 0.5 * beta;
}

/* its derivative: x / beta inside, sign(x) outside (0 at x = 0; at |x| =
 * beta both sides give +-1) */
static double smooth_l1_grad(double x, double beta) {
    if (x <= -beta) return x < 0 ? -1.0 : 0.0;
    if (x >= beta) return x > 0 ? 1.0 : 0.0;
    return x / beta;
}

double smooth_l1_forward(const real *pred /* [n] */, const real *target /* [n] */, const real *weight /* [n] or NULL */,
                         size_t n, double beta, double norm) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double l = smooth_l1((double)pred[i] - (double)target[i], beta);
        total += weight ? (double)weight[i] * l : l;
    }
    return total / norm;
}

double smooth_l1_forward_sp(const real *pred /* [n] */, const real *target /* [n] */,
                            const real *weight /* [n] or NULL */, size_t n, double beta, double norm,
                            const ShardPlan *sp) {
    if (shard_plan_trivial(sp)) return smooth_l1_forward(pred, target, weight, n, beta, norm);
    const size_t ls = (size_t)sp->local_shards;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(sp, 1, &tmp, &owned);
    for (size_t s = 0; s < ls; s++) {
        /* shard s: elements [s*n/ls, (s+1)*n/ls), the shard's rows when n is rows x values */
        double total = 0.0;
        for (size_t i = s * n / ls; i < (s + 1) * n / ls; i++) {
            const double l = smooth_l1((double)pred[i] - (double)target[i], beta);
            total += weight ? (double)weight[i] * l : l;
        }
        parts[s] = total;
    }
    shard_sum_d(sp, parts, 1, tmp);
    const double loss = parts[0] / norm;
    free(owned);
    return loss;
}

void smooth_l1_backward(real *dpred /* [n] */, const real *pred /* [n] */, const real *target /* [n] */,
                        const real *weight /* [n] or NULL */, size_t n, double beta, double norm, double dloss) {
    if (!dpred) return;
    const double s = dloss / norm;
    for (size_t i = 0; i < n; i++) {
        const double g = smooth_l1_grad((double)pred[i] - (double)target[i], beta);
        dpred[i] += (real)(s * (weight ? (double)weight[i] * g : g));
    }
}
