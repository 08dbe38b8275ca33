/* Learning on real data: ResNet-8 trained from scratch on the first 2,000
 * Fashion-MNIST training images for a few epochs must classify held-out test
 * images (the first 1,000 of the official test split, never trained on) far
 * above chance, within a minute on 2 cores. The threshold is set below the
 * accuracy measured when the test was written (see the comment at the CHECK). */
#include <stdio.h>
#include <string.h>

#include "experiments/config.h"
#include "datasets/dataset.h"
#include "progress.h"
#include "testutil.h"
#include "train_run.h"

/* measured 80.80% in 9.2 s (release build, 2-core AMD EPYC, 2026-11-26); chance is 10% */
#define LEARNING_MIN_TOP1 75.0
/* binary ResNet-8 (cyclic 2-6 bits, 8-bit errors), same data and budget: measured 66.20% in 10.5 s */
#define LEARNING_MIN_TOP1_BINARY 55.0

int main(void) {
    Dataset train, test;
    tu_load_fmnist(&train, &test, 2000, 1000);
    char err[512];

    RunConfig c;
    config_defaults(&c);
    snprintf(c.arch, sizeof c.arch, "cifar_resnet8");
    c.batch_size = 32;
    c.epochs = 4;
    c.lr = 2e-3;
    c.eval_interval = 0; /* once per epoch */
    c.eval_batch_size = 250;
    c.log_interval = 62;
    c.seed = 1;
    double t0 = now_seconds();
    TrainResult res;
    int rc = train_run(&c, "learning", &train, &test, NULL, stdout, &res, err, sizeof err);
    double secs = now_seconds() - t0;
    CHECK(rc == 0, "train_run: %s", err);
    printf("held-out top-1 %.2f%% (best %.2f%%) after %ld iterations in %.1f s\n", res.final_top1, res.best_top1,
           res.iterations, secs);
    /* measured when written: see tests/README.md */
    CHECK(res.final_top1 >= LEARNING_MIN_TOP1, "held-out top-1 %.2f%% is below %.1f%%", res.final_top1,
          (double)LEARNING_MIN_TOP1);
    /* the time is printed, not asserted: a timed check fails on a loaded machine
     * (76 s and 116 s while other builds shared the 2 cores), and speed belongs
     * to bench/ (bench/train_step, bench/run_step_bench) */

    /* the same with the CycleBNN binary conv, cyclic 2-6 bits, 8-bit errors */
    tu_config_cyclebnn(&c, 4);
    t0 = now_seconds();
    rc = train_run(&c, "learning_binary", &train, &test, NULL, stdout, &res, err, sizeof err);
    secs = now_seconds() - t0;
    CHECK(rc == 0, "train_run (binary): %s", err);
    printf("binary: held-out top-1 %.2f%% (best %.2f%%), mean cost ratio %.5f, in %.1f s\n", res.final_top1,
           res.best_top1, res.mean_cost_ratio, secs);
    CHECK(res.final_top1 >= LEARNING_MIN_TOP1_BINARY, "binary: held-out top-1 %.2f%% is below %.1f%%",
          res.final_top1, (double)LEARNING_MIN_TOP1_BINARY);
    CHECK(res.mean_cost_ratio > 0.02 && res.mean_cost_ratio < 0.035, "binary: mean cost ratio %.5f", res.mean_cost_ratio);
    dataset_free(&train);
    dataset_free(&test);
    return tu_finish("learning");
}
