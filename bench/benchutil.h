/* Helpers shared by the timing programs of bench/: a monotonic clock, the
 * median of repetitions, and the binary 3x3 conv shapes of CIFAR-10 ResNet-18. */
#ifndef CBNN_BENCHUTIL_H
#define CBNN_BENCHUTIL_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of t[0..n) (t is left as it was); the mean of the middle two for even n */
static inline double bench_median(const double *t, int n) {
    double *c = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!c || n < 1) {
        free(c);
        return 0.0;
    }
    memcpy(c, t, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof *c, bench_cmp_double);
    const double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* the binary convs of CIFAR-10 ResNet-18 (3x3, pad 1), one row per distinct shape */
typedef struct { const char *name; int C, H, O, stride; } BenchBinLayer;
static const BenchBinLayer bench_bin_layers[] = {
    {"64->64 32x32", 64, 32, 64, 1},      {"64->128 s2 32x32", 64, 32, 128, 2},
    {"128->128 16x16", 128, 16, 128, 1},  {"128->256 s2 16x16", 128, 16, 256, 2},
    {"256->256 8x8", 256, 8, 256, 1},     {"256->512 s2 8x8", 256, 8, 512, 2},
    {"512->512 4x4", 512, 4, 512, 1},
};
#define BENCH_N_BIN_LAYERS ((int)(sizeof bench_bin_layers / sizeof bench_bin_layers[0]))

#endif
