/* Seeded random streams.
 *
 * A run draws from separate streams (init, shuffle, augmentation, stochastic
 * rounding), each derived from (seed, stream id, and any further keys such as
 * epoch and sample index) by SplitMix64 mixing, so that a draw never depends
 * on how many draws another stream made nor on which thread made it.
 * The generator is xoshiro256**. */
#ifndef CBNN_RNG_H
#define CBNN_RNG_H

#include <stdint.h>

enum { RNG_INIT = 1, RNG_SHUFFLE = 2, RNG_AUGMENT = 3, RNG_STOCHASTIC = 4,
       RNG_LANDSCAPE = 5, /* loss-landscape directions (analysis/landscape.c) */
       RNG_SPLIT = 6,     /* the validation hold-out (datasets/split.c), keyed by data.split_seed */
       RNG_TEST = 99 };

typedef struct { uint64_t s[4]; } Rng;

/* stream for (seed, id, key1, key2): key1/key2 e.g. epoch and sample index */
Rng rng_stream(uint64_t seed, uint64_t id, uint64_t key1, uint64_t key2);
uint64_t rng_u64(Rng *r);
double rng_uniform(Rng *r);            /* [0, 1), 53 bits */
double rng_normal(Rng *r);             /* N(0, 1), Box-Muller, no cached second value */
uint64_t rng_below(Rng *r, uint64_t n); /* uniform in [0, n), unbiased */
/* Fisher-Yates permutation of 0..n-1 */
void rng_permutation(Rng *r, int32_t *perm, long n);

#endif
