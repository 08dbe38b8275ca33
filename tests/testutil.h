/* Small helpers shared by the tests: checks that count failures, random tensors. */
#ifndef CBNN_TESTUTIL_H
#define CBNN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"
#include "rng.h"
#include "experiments/config.h"
#include "datasets/dataset.h"

extern int tu_failures;
extern int tu_checks;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        tu_checks++;                                                          \
        if (!(cond)) {                                                        \
            tu_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
        }                                                                     \
    } while (0)

/* n reals, zeroed (exits on out-of-memory: a test cannot go on without them) */
real *tu_alloc(size_t n);
/* n reals drawn from U(-1, 1) */
real *tu_alloc_rand(size_t n, Rng *r);
/* fill with U(lo, hi) from a test stream */
void tu_fill_uniform(real *x, size_t n, double lo, double hi, Rng *r);
/* max |a-b| / max(1, |b|) over n */
double tu_max_rel_err(const real *a, const real *b, size_t n);
/* the first n_train / n_test images of the Debian Fashion-MNIST; exits with
 * the loader's message when the files are missing (a failure, not a skip) */
void tu_load_fmnist(Dataset *train, Dataset *test, long n_train, long n_test);
/* switch a config to the CycleBNN binary conv with cyclic 2-6 bits, 8-bit errors */
void tu_config_cyclebnn(RunConfig *c, int cycles);
/* print a summary, return the process exit status (0 = all passed) */
int tu_finish(const char *name);

#endif
