/* Determinism: the same config and seed give bitwise-equal per-step losses
 * (and the same test accuracy) with 1 and with 2 threads, through the real
 * training loop (shuffling, augmentation, BLAS convs, BN reductions, AdamW)
 * and the real results writer. 20 steps of ResNet-8 on a Fashion-MNIST subset,
 * once with fp32 convs and once with the CycleBNN binary conv (cyclic 2-6 bits,
 * stochastic 8-bit errors: the noise streams must not depend on threads
 * either); the binary run's per-step bits must follow the schedule. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiments/config.h"
#include "datasets/dataset.h"
#include "results_h5.h"
#include "testutil.h"
#include "train_run.h"

#define STEPS 20

/* read /runs/<run>/<name> (float64, STEPS values) */
static int read_series(const char *path, const char *dset, double *out, int n) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    int rc = -1;
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        hsize_t len = 0;
        H5Sget_simple_extent_dims(s, &len, NULL);
        if ((int)len == n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0) rc = 0;
        H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
    return rc;
}

static void run_once(const Dataset *train, const Dataset *test, int threads, int binary, const char *path,
                     TrainResult *res) {
    RunConfig c;
    config_defaults(&c);
    if (binary) tu_config_cyclebnn(&c, 2);
    snprintf(c.arch, sizeof c.arch, "cifar_resnet8");
    c.iterations = STEPS;
    c.batch_size = 16;
    c.eval_interval = 10;
    c.eval_batch_size = 100;
    c.aug_flip = 1;
    c.aug_crop_pad = 2;
    c.threads = threads;
    c.seed = 7;
    char err[512] = "";
    ResultsFile *rf = results_create(path, "determinism", "", threads, err, sizeof err);
    CHECK(rf != NULL, "results_create: %s", err);
    if (!rf) return;
    RunLog *log = results_run_begin(rf, "run", "");
    int rc = train_run(&c, "run", train, test, log, NULL, res, err, sizeof err);
    CHECK(rc == 0, "train_run (%d threads): %s", threads, err);
    runlog_end(log, "complete", res->final_top1, res->best_top1, res->wall_time_s);
    CHECK(results_close(rf, 1, err, sizeof err) == 0, "results_close: %s", err);
}

int main(void) {
    Dataset train, test;
    tu_load_fmnist(&train, &test, 640, 200);

    char dir[] = "/tmp/cbnn_determinism_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    for (int binary = 0; binary < 2; binary++) {
        const char *what = binary ? "cyclebnn" : "fp32";
        char p1[256], p2[256], p3[256];
        snprintf(p1, sizeof p1, "%s/t1.h5", dir);
        snprintf(p2, sizeof p2, "%s/t2.h5", dir);
        snprintf(p3, sizeof p3, "%s/t2b.h5", dir);
        TrainResult r1, r2, r3;
        run_once(&train, &test, 1, binary, p1, &r1);
        run_once(&train, &test, 2, binary, p2, &r2);
        run_once(&train, &test, 2, binary, p3, &r3);

        double l1[STEPS], l2[STEPS], l3[STEPS];
        CHECK(read_series(p1, "/runs/run/train/loss", l1, STEPS) == 0, "reading %s", p1);
        CHECK(read_series(p2, "/runs/run/train/loss", l2, STEPS) == 0, "reading %s", p2);
        CHECK(read_series(p3, "/runs/run/train/loss", l3, STEPS) == 0, "reading %s", p3);
        for (int i = 0; i < STEPS; i++)
            printf("%s step %2d  loss 1 thread %.9g  2 threads %.9g\n", what, i + 1, l1[i], l2[i]);
        CHECK(memcmp(l1, l2, sizeof l1) == 0, "%s: per-step losses differ between 1 and 2 threads", what);
        CHECK(memcmp(l2, l3, sizeof l2) == 0, "%s: per-step losses differ between two 2-thread runs", what);
        CHECK(r1.final_top1 == r2.final_top1, "%s: test top-1 differs: %.4f vs %.4f", what, r1.final_top1,
              r2.final_top1);
        CHECK(l1[0] != l1[STEPS - 1], "%s: the loss did not change over %d steps", what, STEPS);
        if (binary) {
            /* 20 iterations, 2 cycles: P = 10, bits = rint(4 - 2 cos(pi * (i mod 10) / 10)):
             * 4 - 2cos = 2, 2.098, 2.382, 2.824, 3.382, 4, 4.618, 5.176, 5.618, 5.902, then again */
            double bits[STEPS], gbits[STEPS], cr[STEPS];
            CHECK(read_series(p1, "/runs/run/train/bits", bits, STEPS) == 0, "reading train/bits");
            CHECK(read_series(p1, "/runs/run/train/grad_bits", gbits, STEPS) == 0, "reading train/grad_bits");
            CHECK(read_series(p1, "/runs/run/train/cost_ratio", cr, STEPS) == 0, "reading train/cost_ratio");
            static const double want[STEPS] = {2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6};
            for (int i = 0; i < STEPS; i++) {
                CHECK(bits[i] == want[i], "bits at iteration %d: %g, expected %g", i, bits[i], want[i]);
                CHECK(gbits[i] == 8, "grad bits at iteration %d: %g", i, gbits[i]);
                double expect = (want[i] * want[i] + 2 * want[i] * 8) / 3072.0;
                CHECK(cr[i] == expect, "cost ratio at iteration %d: %.17g, expected %.17g", i, cr[i], expect);
            }
        }
        unlink(p1);
        unlink(p2);
        unlink(p3);
    }
    rmdir(dir);
    dataset_free(&train);
    dataset_free(&test);
    return tu_finish("determinism");
}
