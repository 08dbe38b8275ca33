/* The background loader (datasets/loader.c).
 *
 * 1. Bit-identity: for 1, 2 and 3 workers and depth 2 and 4, every batch
 *    loader_next delivers equals, bit for bit, what the training loop's
 *    dataset_batch gives for that step (same epoch permutation, same
 *    augmentation streams), across epoch boundaries and from a mid-epoch
 *    start_step. A get() that sleeps a little at random makes the workers
 *    finish out of order. Also the zero-copy loader_next_ref.
 * 2. loader_stop while the ring is full and the workers are blocked, before
 *    anything was read, mid-epoch, and while a worker is inside a slow batch.
 * 3. A failing get() reaches loader_next as -1 with a message naming the
 *    sample and step; the steps before it are still delivered intact.
 * 4. Argument checks.
 *
 * `test_loader --bench [B] [step_ms]` (not part of the test): on the Debian
 * Fashion-MNIST, how long loader_next blocks per step while a fake training
 * step (an OpenMP busy loop of step_ms on all threads) runs, against the
 * synchronous dataset_batch of experiments/train_run.c. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "datasets/loader.h"
#include "testutil.h"

enum { N = 103, C = 3, H = 6, W = 5 };

static long bad_index = -1;      /* get() of this sample fails */
static int jitter_us = 0;        /* get() sleeps up to this long */

static int get_test(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng) {
    if (i == bad_index) return -1;
    if (jitter_us > 0) {
        /* a sleep that depends on the sample, not on a shared generator */
        unsigned h = (unsigned)(i * 2654435761u) >> 7;
        usleep((useconds_t)(h % (unsigned)jitter_us));
    }
    return dataset_get_u8(ds, i, out, label, aug, rng);
}

static void make_ds(Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "loader-test");
    ds->n = N;
    ds->channels = C, ds->height = H, ds->width = W, ds->num_classes = 10;
    ds->images = malloc((size_t)N * C * H * W);
    ds->labels = malloc(N);
    for (size_t k = 0; k < (size_t)N * C * H * W; k++) ds->images[k] = (uint8_t)(k * 37 + k / 11);
    for (int i = 0; i < N; i++) ds->labels[i] = (uint8_t)(i % 10);
    for (int c = 0; c < C; c++) ds->mean[c] = 0.4f + 0.05f * c, ds->std[c] = 0.25f + 0.02f * c;
    ds->get = get_test;
}

/* the training loop's batch of step s (experiments/train_run.c) */
static void ref_batch(const Dataset *ds, int B, const Augment *aug, uint64_t seed, long s, int32_t *perm, real *x,
                      int32_t *y) {
    long per_epoch = ds->n / B, epoch = s / per_epoch, pos = s % per_epoch;
    Rng r = rng_stream(seed, RNG_SHUFFLE, (uint64_t)epoch, 0);
    rng_permutation(&r, perm, ds->n);
    CHECK(dataset_batch(ds, perm + pos * B, B, x, y, aug, 1, seed, epoch, NULL, 0) == 0, "dataset_batch");
}

static void test_identity(const Dataset *ds) {
    const int B = 8;                        /* per_epoch = 12 */
    const long per_epoch = N / B;
    const uint64_t seed = 1234;
    Augment aug = {.flip = 1, .crop_pad = 2, .normalize = 1};
    size_t bs = (size_t)B * C * H * W;
    real *x = tu_alloc(bs), *xr = tu_alloc(bs);
    int32_t y[8], yr[8], *perm = malloc(sizeof(int32_t) * N);
    /* (start, total): from 0 across two epoch boundaries; from mid-epoch
     * across one; a start exactly on a boundary */
    const long ranges[3][2] = {{0, 2 * per_epoch + 5}, {per_epoch + 7, 3 * per_epoch + 2}, {per_epoch, per_epoch + 4}};
    for (int wk = 1; wk <= 3; wk++) {
        for (int depth = 2; depth <= 4; depth += 2) {
            for (int r = 0; r < 3; r++) {
                jitter_us = (r == 0) ? 300 : 0;
                char err[256];
                Loader *l = loader_start(ds, B, &aug, seed, ranges[r][0], ranges[r][1], wk, depth, err, sizeof err);
                CHECK(l, "loader_start: %s", err);
                if (!l) continue;
                long step = -1, expect = ranges[r][0];
                int mism = 0, rc;
                while ((rc = loader_next(l, x, y, &step)) == 0) {
                    if (step != expect) mism++;
                    ref_batch(ds, B, &aug, seed, step, perm, xr, yr);
                    if (memcmp(x, xr, bs * sizeof(real)) || memcmp(y, yr, sizeof y)) mism++;
                    expect++;
                }
                CHECK(rc == 1, "workers %d depth %d range %d: end returns %d (%s)", wk, depth, r, rc, loader_error(l));
                CHECK(expect == ranges[r][1], "workers %d depth %d range %d: delivered up to %ld of %ld", wk, depth, r,
                      expect, ranges[r][1]);
                CHECK(mism == 0, "workers %d depth %d range %d: %d batches differ from dataset_batch", wk, depth, r,
                      mism);
                CHECK(loader_next(l, x, y, &step) == 1, "after the end loader_next keeps returning 1");
                double waited;
                long got;
                loader_stats(l, &waited, &got);
                CHECK(got == ranges[r][1] - ranges[r][0], "stats: %ld delivered", got);
                loader_stop(l);
            }
        }
    }
    /* zero-copy, with no augmentation at all (aug NULL) and 2 workers */
    jitter_us = 100;
    char err[256];
    Loader *l = loader_start(ds, B, NULL, 7, 5, 5 + 2 * per_epoch, 2, 3, err, sizeof err);
    CHECK(l, "loader_start: %s", err);
    if (l) {
        const real *px;
        const int32_t *py;
        long step, expect = 5;
        int mism = 0;
        while (loader_next_ref(l, &px, &py, &step) == 0) {
            ref_batch(ds, B, NULL, 7, step, perm, xr, yr);
            if (step != expect++ || memcmp(px, xr, bs * sizeof(real)) || memcmp(py, yr, sizeof yr)) mism++;
            if (step % 2) loader_release(l); /* release early on odd steps, implicitly on even ones */
        }
        CHECK(mism == 0 && expect == 5 + 2 * per_epoch, "zero-copy: %d batches differ, reached %ld", mism, expect);
        loader_stop(l);
    }
    jitter_us = 0;
    free(x), free(xr), free(perm);
}

static void test_stop(const Dataset *ds) {
    Augment aug = {.flip = 1, .crop_pad = 1};
    char err[256];
    real *x = tu_alloc((size_t)4 * C * H * W);
    int32_t y[4];
    for (int wk = 1; wk <= 3; wk++) {
        /* never read: the ring fills and every worker blocks */
        Loader *l = loader_start(ds, 4, &aug, 1, 0, 1000000, wk, 2, err, sizeof err);
        CHECK(l, "loader_start: %s", err);
        usleep(20000);
        loader_stop(l);
        /* read a few, mid-epoch, then stop with a full ring */
        l = loader_start(ds, 4, &aug, 1, 3, 1000000, wk, 4, err, sizeof err);
        CHECK(l, "loader_start: %s", err);
        long step = -1;
        for (int k = 0; k < 5; k++) CHECK(loader_next(l, x, y, &step) == 0, "next: %s", loader_error(l));
        CHECK(step == 7, "mid-epoch start 3 + 5 batches: last step %ld", step);
        usleep(10000);
        loader_stop(l);
        /* stop while workers are inside slow batches, holding a zero-copy slot */
        jitter_us = 20000;
        l = loader_start(ds, 4, &aug, 1, 0, 1000000, wk, 2, err, sizeof err);
        const real *px;
        CHECK(loader_next_ref(l, &px, NULL, NULL) == 0, "next_ref: %s", loader_error(l));
        loader_stop(l);
        jitter_us = 0;
    }
    loader_stop(NULL);
    free(x);
}

static void test_error(const Dataset *ds) {
    const int B = 8;
    const uint64_t seed = 99;
    Augment aug = {.flip = 1};
    int32_t *perm = malloc(sizeof(int32_t) * N);
    size_t bs = (size_t)B * C * H * W;
    real *x = tu_alloc(bs), *xr = tu_alloc(bs);
    int32_t y[8], yr[8];
    /* the sample at position 3 of step 17 (epoch 1) fails */
    const long per_epoch = N / B, bad_step = 17;
    Rng r = rng_stream(seed, RNG_SHUFFLE, 1, 0);
    rng_permutation(&r, perm, N);
    long bad = perm[(bad_step % per_epoch) * B + 3];
    /* the first step from 2 on whose batch holds the bad sample */
    long first_bad = -1;
    for (long s = 2; s < 40 && first_bad < 0; s++) {
        Rng q = rng_stream(seed, RNG_SHUFFLE, (uint64_t)(s / per_epoch), 0);
        rng_permutation(&q, perm, N);
        for (int b = 0; b < B; b++)
            if (perm[(s % per_epoch) * B + b] == bad) first_bad = s;
    }
    CHECK(first_bad >= 2 && first_bad <= bad_step, "first bad step %ld", first_bad);
    Dataset plain = *ds; /* the reference reads through a get() that never fails */
    plain.get = dataset_get_u8;
    for (int wk = 1; wk <= 3; wk++) {
        char err[256];
        bad_index = bad;
        Loader *l = loader_start(ds, B, &aug, seed, 2, 40, wk, 3, err, sizeof err);
        CHECK(l, "loader_start: %s", err);
        long step = -1;
        int rc, ok = 0, mism = 0;
        while ((rc = loader_next(l, x, y, &step)) == 0) {
            ok++;
            ref_batch(&plain, B, &aug, seed, step, perm, xr, yr);
            if (memcmp(x, xr, bs * sizeof(real)) || memcmp(y, yr, sizeof y)) mism++;
        }
        CHECK(rc == -1, "workers %d: a failing get() gives loader_next %d", wk, rc);
        CHECK(mism == 0, "workers %d: %d batches before the error differ", wk, mism);
        CHECK(ok == first_bad - 2, "workers %d: %d batches delivered before the failing step %ld", wk, ok, first_bad);
        const char *msg = loader_error(l);
        char want[64];
        snprintf(want, sizeof want, "sample %ld failed (step %ld ", bad, first_bad);
        CHECK(strstr(msg, want) && strstr(msg, "loader-test"), "workers %d: message '%s' names sample and dataset", wk,
              msg);
        CHECK(loader_next(l, x, y, &step) == -1, "workers %d: the error is sticky", wk);
        loader_stop(l);
    }
    bad_index = -1;
    free(perm), free(x), free(xr);
}

static void test_args(const Dataset *ds) {
    char err[256];
    CHECK(!loader_start(ds, N + 1, NULL, 0, 0, 10, 1, 2, err, sizeof err) && strstr(err, "batch size"),
          "B > n rejected: %s", err);
    CHECK(!loader_start(ds, 4, NULL, 0, 0, 10, 1, 0, err, sizeof err) && strstr(err, "depth"), "depth 0: %s", err);
    CHECK(!loader_start(ds, 4, NULL, 0, 11, 10, 1, 2, err, sizeof err), "start > total rejected");
    CHECK(!loader_start(NULL, 4, NULL, 0, 0, 10, 1, 2, err, sizeof err), "NULL dataset rejected");
    /* an empty range: ends at once */
    Loader *l = loader_start(ds, 4, NULL, 0, 10, 10, 2, 2, err, sizeof err);
    CHECK(l && loader_next(l, NULL, NULL, NULL) == 1, "empty range ends at once");
    loader_stop(l);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* a fake training step: a fixed amount of arithmetic over the batch, shared
 * by the OpenMP threads (work, not wall time: a worker that steals a core
 * makes it slower, as it would a real step) */
static volatile double sink;
static long step_iters = 1000000;
static void fake_step(const real *x, size_t n) {
    double acc = 0;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (long k = 0; k < step_iters; k++) {
        double v = x[(size_t)k * 97 % n];
        for (int r = 0; r < 8; r++) v = v * 0.999 + 0.001;
        acc += v;
    }
    sink = acc;
}

static int bench(int B, double step_ms) {
    Dataset train;
    char err[512];
    if (fashion_mnist_load(&train, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    Augment aug = {.flip = 1, .crop_pad = 2, .normalize = 1};
    const long per_epoch = train.n / B, steps = 400, start = per_epoch - 200; /* crosses an epoch boundary */
    size_t bs = (size_t)B * 784;
    real *x = tu_alloc(bs);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)B), *perm = malloc(sizeof(int32_t) * (size_t)train.n);
    /* calibrate the step to step_ms when it runs alone */
    for (int k = 0; k < 3; k++) {
        double a = now_s();
        fake_step(x, bs);
        double t = now_s() - a;
        step_iters = (long)((double)step_iters * step_ms * 1e-3 / t);
    }
    printf("Fashion-MNIST, B=%d, crop_pad 2 + flip + normalize, fake step %.1f ms on %d OpenMP threads, %ld steps\n",
           B, step_ms, omp_get_max_threads(), steps);
    /* synchronous, as experiments/train_run.c does today */
    double t_load = 0, t0 = now_s();
    long cur = -1;
    for (long s = start; s < start + steps; s++) {
        double a = now_s();
        long e = s / per_epoch;
        if (e != cur) {
            Rng r = rng_stream(1, RNG_SHUFFLE, (uint64_t)e, 0);
            rng_permutation(&r, perm, train.n);
            cur = e;
        }
        CHECK(dataset_batch(&train, perm + (s % per_epoch) * B, B, x, y, &aug, 1, 1, e, NULL, 0) == 0, "dataset_batch");
        t_load += now_s() - a;
        fake_step(x, bs);
    }
    double t_all = now_s() - t0;
    printf("  synchronous dataset_batch: %.3f ms/step loading, %.1f%% of %.3f ms/step\n", 1e3 * t_load / steps,
           100 * t_load / t_all, 1e3 * t_all / steps);
    for (int wk = 1; wk <= 2; wk++) {
        for (int depth = 2; depth <= 4; depth += 2) {
            Loader *l = loader_start(&train, B, &aug, 1, start, start + steps, wk, depth, err, sizeof err);
            if (!l) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            double w0 = 0, t_first = 0;
            t0 = now_s();
            long step;
            int n = 0;
            while (loader_next(l, x, y, &step) == 0) {
                if (n++ == 0) t_first = now_s() - t0; /* the cold start: nothing is ahead yet */
                fake_step(x, bs);
            }
            t_all = now_s() - t0;
            long got;
            loader_stats(l, &w0, &got);
            loader_stop(l);
            printf("  loader %d worker(s), depth %d: blocked %.3f ms/step = %.2f%% of %.3f ms/step "
                   "(first batch %.2f ms)\n",
                   wk, depth, 1e3 * w0 / got, 100 * w0 / t_all, 1e3 * t_all / got, 1e3 * t_first);
        }
    }
    free(x), free(y), free(perm);
    dataset_free(&train);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench(argc > 2 ? atoi(argv[2]) : 64, argc > 3 ? atof(argv[3]) : 5.0);
    Dataset ds;
    make_ds(&ds);
    test_args(&ds);
    test_identity(&ds);
    test_stop(&ds);
    test_error(&ds);
    dataset_free(&ds);
    return tu_finish("loader");
}
