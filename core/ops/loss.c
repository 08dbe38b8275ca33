/* Losses as plain functions, outside the graph: a task runs the model, calls
 * a loss's forward on an output and its backward into that output's gradient
 * buffer (model_output_grad), then backpropagates.
 *
 * Softmax cross-entropy, mean over the batch (nn.CrossEntropyLoss defaults),
 * and smooth L1 (nn.SmoothL1Loss). Both are small next to any conv, so they
 * run serially: every sum is then trivially in a fixed order. */
#include <math.h>

#include "ops.h"

int softmax_ce_bad_label(const int32_t *labels /* [N] */, int N, int K) {
    for (int n = 0; n < N; n++)
        if (labels[n] < 0 || labels[n] >= K) return n;
    return -1;
}

/* Per row: log p_k = (x_k - max) - log(sum_j exp(x_j - max)). Subtracting the
 * row max keeps every exp in (0, 1], so no overflow, and the sum is >= 1. */
double softmax_ce_forward(real *probs /* [N,K] */, const real *logits /* [N,K] */,
                          const int32_t *labels /* [N] */, int N, int K) {
    /* a wrong label is a bug in the data path, not something to train through:
     * refused before anything is written */
    if (softmax_ce_bad_label(labels, N, K) >= 0) return NAN;
    double total = 0.0;
    for (int n = 0; n < N; n++) {
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
    return N > 0 ? total / (double)N : 0.0;
}

void softmax_ce_backward(real *dlogits /* [N,K] */, const real *probs /* [N,K] */,
                         const int32_t *labels /* [N] */, int N, int K, real dloss) {
    if (!dlogits) return;
    const double s = (double)dloss / (double)N;
    for (int n = 0; n < N; n++) {
        if (labels[n] < 0 || labels[n] >= K) continue; /* forward returned NaN: no gradient from this row */
        const real *p = probs + (long)n * K;
        real *g = dlogits + (long)n * K;
        for (int k = 0; k < K; k++) {
            double t = (double)p[k] - (k == labels[n] ? 1.0 : 0.0);
            g[k] += (real)(s * t);
        }
    }
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

void smooth_l1_backward(real *dpred /* [n] */, const real *pred /* [n] */, const real *target /* [n] */,
                        const real *weight /* [n] or NULL */, size_t n, double beta, double norm, double dloss) {
    if (!dpred) return;
    const double s = dloss / norm;
    for (size_t i = 0; i < n; i++) {
        const double g = smooth_l1_grad((double)pred[i] - (double)target[i], beta);
        dpred[i] += (real)(s * (weight ? (double)weight[i] * g : g));
    }
}
