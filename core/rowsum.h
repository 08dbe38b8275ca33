/* Sums in double over 8 interleaved accumulators, combined in a fixed tree.
 *
 * A serial double sum costs one add latency per element; eight independent
 * chains run in parallel and vectorise. The order depends on n alone (element
 * i goes to chain i % 8 in the body, the tail to chains 0..), so results do
 * not depend on the thread count; they differ from a serial sum by double
 * rounding only.
 *
 *   double s;
 *   ROWSUM8(s, n, (double)x[i] * (double)y[i]);   // `i` is the element index in expr
 */
#ifndef CBNN_ROWSUM_H
#define CBNN_ROWSUM_H

#include <stddef.h>

#define ROWSUM8(result, n, expr)                                                         \
    do {                                                                                 \
        double acc_[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                       \
        const size_t n_ = (size_t)(n);                                                   \
        size_t b_ = 0;                                                                   \
        for (; b_ + 8 <= n_; b_ += 8)                                                    \
            for (int k_ = 0; k_ < 8; k_++) {                                             \
                const size_t i = b_ + (size_t)k_;                                        \
                acc_[k_] += (expr);                                                      \
            }                                                                            \
        for (int k_ = 0; b_ < n_; b_++, k_++) {                                          \
            const size_t i = b_;                                                         \
            acc_[k_] += (expr);                                                          \
        }                                                                                \
        (result) = ((acc_[0] + acc_[1]) + (acc_[2] + acc_[3])) + ((acc_[4] + acc_[5]) + (acc_[6] + acc_[7])); \
    } while (0)

#endif
