/* make_cifar10 DIR [--train N] [--test N] [--seed S]
 * Writes a small synthetic CIFAR-10 in the real binary format into
 * DIR/cifar-10-batches-bin/ (datasets/synth_cifar10.c): data_batch_1..5.bin
 * splitting N training images (default 5000), test_batch.bin (default 1000),
 * batches.meta.txt. Deterministic from the seed (default 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cifar10.h"

static int usage(void) {
    fprintf(stderr, "usage: make_cifar10 DIR [--train N] [--test N] [--seed S]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    long n_train = 5000, n_test = 1000;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--train") && i + 1 < argc) n_train = strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--test") && i + 1 < argc) n_test = strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(), 0;
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else return usage();
        if (end && *end) {
            fprintf(stderr, "make_cifar10: not a number: %s\n", argv[i]);
            return 2;
        }
    }
    if (!dir) return usage();
    char err[1024];
    if (cifar10_synth_write(dir, n_train, n_test, (uint64_t)seed, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("make_cifar10: %ld training and %ld test images (seed %llu) in %s/%s\n", n_train, n_test, seed, dir,
           CIFAR10_SUBDIR);
    return 0;
}
