/* One training run: build the model of a RunConfig, train it on a dataset,
 * evaluate periodically on the test split, log to the results file. */
#ifndef CBNN_TRAIN_H
#define CBNN_TRAIN_H

#include <stdio.h>

#include "../datasets/dataset.h"
#include "../experiments/config.h"
#include "binary_conv.h"
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
    long resumed_from;             /* step the run continued from (0 = it started fresh) */
} TrainResult;

/* The binary conv options (model.conv, binary.*) of a config, as training
 * sets them on the model (analysis tools rebuild a trained model with them). */
void binary_options_from_config(BinaryConvOptions *o, const RunConfig *c);

/* Iterations a config trains for, given the training-set size: train.iterations,
 * or ceil(train.epochs * (n_train / batch_size)). Never overflows: a count
 * over CFG_MAX_ITERATIONS comes back as CFG_MAX_ITERATIONS + 1, which
 * train_check_iterations refuses. */
long train_total_iterations(const RunConfig *c, long n_train);
/* 0 when that count is at most CFG_MAX_ITERATIONS; else -1 with a one-line
 * message (key, value, images, batch) in err. experiment_load checks the same
 * with the dataset's published size; this is for the size actually loaded. */
int train_check_iterations(const RunConfig *c, long n_train, char *err, size_t errlen);

/* How a run is driven (all zero = a lone run, no checkpoints). */
typedef struct {
    long checkpoint_every;     /* iterations between checkpoints; 0 = only at the end and on a stop */
    int resume;                /* continue from the run's checkpoint in log, if it has one */
    int run_index, n_runs;     /* for the progress lines: run i/N (n_runs 0 = not shown) */
    double grid_iters_after;   /* iterations of the runs after this one, for the grid's ETA */
} TrainControl;

/* Train and evaluate. log may be NULL. Progress lines go to `progress` (may be
 * NULL). Returns 0 when the run completed, 1 when it stopped on request
 * (train_stop_requested; a checkpoint was written and committed), -1 on
 * failure (message in err).
 *
 * With a log, a checkpoint -- parameters, both optimizer moments, BN running
 * statistics and activation-quantizer running ranges (the buffers), the loop's
 * counters and cost accumulators -- is written every ctl->checkpoint_every
 * iterations, at the end and on a stop, each time followed by a commit of the
 * results file. The random streams need no state: every draw is keyed by
 * (seed, stream, epoch or step), and the data order of an epoch is a seeded
 * permutation, so the step number restores them. A resumed run therefore
 * computes bitwise the same losses and weights as an uninterrupted one. */
int train_run_ctl(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
                  const TrainControl *ctl, FILE *progress, TrainResult *res, char *err, size_t errlen);
/* train_run_ctl without checkpoints */
int train_run(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
              FILE *progress, TrainResult *res, char *err, size_t errlen);

/* Evaluate top-1 (percent) and mean loss on the first n samples of ds (n <= 0: all).
 * Returns 0, or -1 with the message in err (a sample that cannot be read). */
struct Model;
int evaluate(struct Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *top1, double *loss,
             char *err, size_t errlen);

/* The training and evaluation augmentations a config asks for (data.augment.*). */
void train_augment_from_config(const RunConfig *c, Augment *train, Augment *eval);

/* What a run will cost, computed from its config without training (the
 * same accounting train_run logs): for --dry-run. */
typedef struct {
    long iterations;
    long fwd_macs;          /* forward MACs per sample */
    double fp32_macs;       /* training MACs (forward + error + weight gradient), all at fp32 */
    double bit_macs;        /* the same, bit-weighted by the precision schedule (method.md 6.3) */
    double mean_cost_ratio; /* mean cr over the iterations */
} TrainEstimate;
int train_estimate(const RunConfig *c, int channels, int height, int width, int num_classes, long n_train,
                   TrainEstimate *out, char *err, size_t errlen);

/* set by a SIGINT handler: the loop stops after the current step */
extern volatile int train_stop_requested;

#endif
