#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/* Every test main checks the CPU-feature environment first, as the programs
 * do: with a mistyped CBNN_SIMD the kernels run the C tables only, and a test
 * of the SIMD tables would pass without having run them. */
__attribute__((constructor)) static void tu_check_cpu_env(void) {
    if (cpu_env_error()) {
        fprintf(stderr, "test: %s\n", cpu_env_error());
        exit(2);
    }
}

int tu_failures = 0;
int tu_checks = 0;

real *tu_alloc(size_t n) {
    real *p = calloc(n ? n : 1, sizeof(real));
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

real *tu_alloc_rand(size_t n, Rng *r) {
    real *p = tu_alloc(n);
    tu_fill_uniform(p, n, -1.0, 1.0, r);
    return p;
}

void tu_fill_uniform(real *x, size_t n, double lo, double hi, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(lo + (hi - lo) * rng_uniform(r));
}

double tu_max_rel_err(const real *a, const real *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs((double)b[i]) > 1.0 ? fabs((double)b[i]) : 1.0;
        double e = fabs((double)a[i] - (double)b[i]) / den;
        if (!(e <= worst)) worst = e; /* NaN propagates as a failure */
    }
    return worst;
}

void tu_load_fmnist(Dataset *train, Dataset *test, long n_train, long n_test) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    char err[512];
    if (fashion_mnist_load(train, test, NULL, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    dataset_truncate(train, n_train);
    dataset_truncate(test, n_test);
}

void tu_config_cyclebnn(RunConfig *c, int cycles) {
    c->conv = CONV_BINARY;
    c->prec_schedule = PREC_CYCLIC;
    c->bits.min = 2;
    c->bits.max = 6;
    c->grad_bits.min = c->grad_bits.max = 8;
    c->prec_cycles = cycles;
}

int tu_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}
