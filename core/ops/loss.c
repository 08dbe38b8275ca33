/* Softmax cross-entropy, mean over the batch (nn.CrossEntropyLoss defaults).
 *
 * The logits are small ([N, classes]) next to any conv, so this runs serially:
 * the loss sum is then trivially in a fixed order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops.h"

static void check_label(int32_t y, int n, int K) {
    if (y < 0 || y >= K) {
        /* a wrong label is a bug in the data path, not something to train through */
        fprintf(stderr, "softmax_ce: label %d of sample %d outside [0, %d)\n", (int)y, n, K);
        abort();
    }
}

/* Per row: log p_k = (x_k - max) - log(sum_j exp(x_j - max)). Subtracting the
 * row max keeps every exp in (0, 1], so no overflow, and the sum is >= 1. */
double softmax_ce_forward(real *probs /* [N,K] */, const real *logits /* [N,K] */,
                          const int32_t *labels /* [N] */, int N, int K) {
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const real *x = logits + (long)n * K;
        real *p = probs + (long)n * K;
        check_label(labels[n], n, K);
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
        check_label(labels[n], n, K);
        const real *p = probs + (long)n * K;
        real *g = dlogits + (long)n * K;
        for (int k = 0; k < K; k++) {
            double t = (double)p[k] - (k == labels[n] ? 1.0 : 0.0);
            g[k] += (real)(s * t);
        }
    }
}
