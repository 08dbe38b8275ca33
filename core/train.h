/* One training run: build the model of a RunConfig, train it on a dataset,
 * evaluate periodically on the test split, log to the results file. */
#ifndef CBNN_TRAIN_H
#define CBNN_TRAIN_H

#include <stdio.h>

#include "../datasets/dataset.h"
#include "../experiments/config.h"
#include "results_h5.h"

typedef struct {
    double final_top1, best_top1;  /* percent */
    double final_loss;             /* test loss at the last evaluation */
    long iterations;
    double wall_time_s;
    double images_per_s;           /* training throughput (train steps only) */
    double mean_cost_ratio;        /* CPT's cr averaged over the iterations (method.md 6.1) */
    double bit_macs;               /* bit-weighted training MACs of the run, fp32-MAC equivalents (6.3) */
    double fp32_macs;              /* the same run counted at full precision */
    int status;                    /* 0 complete, 1 interrupted (SIGINT), -1 failed */
} TrainResult;

/* Iterations a config trains for, given the training-set size. */
long train_total_iterations(const RunConfig *c, long n_train);

/* Train and evaluate. log may be NULL. Progress lines go to `progress` (may be
 * NULL). Returns 0 when the run completed. */
int train_run(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
              FILE *progress, TrainResult *res, char *err, size_t errlen);

/* Evaluate top-1 (percent) and mean loss on the first n samples of ds (n <= 0: all). */
struct Model;
void evaluate(struct Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *top1, double *loss);

/* set by a SIGINT handler: the loop stops after the current step */
extern volatile int train_stop_requested;

#endif
