/* One training run: build the model of a config, train it with a task on a
 * dataset, evaluate periodically on the test split, record rows, checkpoints
 * and the run's end in the results file (experiments/run_record.h). */
#ifndef CBNN_TRAIN_RUN_H
#define CBNN_TRAIN_RUN_H

#include <stdio.h>

#include "config.h"
#include "dist.h"
#include "dataset.h"
#include "engine_options.h"
#include "results_h5.h"
#include "run_record.h"
#include "task.h"

/* TrainResult: experiments/run_record.h
 *
 * Over R ranks (TrainControl.group, issue 15): rank r takes rows
 * [r*B/R, (r+1)*B/R) of each global batch B (the epoch's permutation, each
 * sample with its own (epoch, sample) augmentation), the model is allocated
 * for B/R rows with the plan of train.shards S (core/shard.h), and the loss
 * is the global batch's mean: any R dividing S gives the bits of one process
 * at the same S (R not dividing S: -1, naming both). Every rank steps the
 * optimizer on the same gradients, so parameters stay replicas. After each
 * step one gather carries the ranks' failures (a batch that could not be
 * read, a non-finite loss, a results-file write), stop requests and metric
 * counts: all ranks stop at the same step. Evaluation is split by batches
 * over the ranks and added in the one-process order (task_evaluate_group).
 * At a checkpoint the ranks compare a hash of parameters, optimizer state
 * and buffers (a mismatch fails the run, naming the ranks, and writes no
 * checkpoint); group rank 0 writes it, and on resume reads it and broadcasts
 * it, so a run may resume on another R dividing S, bitwise. A rank's
 * progress lines start with dist_prefix() when the session has several
 * ranks; only group rank 0 prints them.
 *
 * Fault injection (for the grid's tests): with the environment variable
 * CBNN_FAULT_EXIT_AT_STEP=<k> (k = iterations done, as the train/step rows
 * count them) the process calls _exit(9) right after step k's checkpoint
 * and its commit, or right after step k (its evaluation included) when no
 * checkpoint is due there; the last step's checkpoint is committed only with
 * the run's end, so an exit there leaves the file at the previous commit.
 * CBNN_FAULT_RANK=<world rank> limits it to that rank (unset: every rank). */

/* How a run is driven (all zero = a lone run, no checkpoints). */
typedef struct {
    long checkpoint_every;     /* iterations between checkpoints; 0 = only at the end and on a stop */
    int resume;                /* continue from the run's checkpoint in log, if it has one */
    int run_index, n_runs;     /* for the progress lines: run i/N (n_runs 0 = not shown) */
    double grid_iters_after;   /* iterations of the runs after this one, for the grid's ETA */
    /* the ranks that train this run together (issue 15): NULL or size 1 = this
     * process alone. Rank 0 of it writes the log; the others pass log = NULL
     * (a log given to another rank is ignored). It must outlive the run. */
    const DistComm *group;
    /* stop as on a request (train_stop_requested) once this many iterations
     * are done (0: never): the checkpoint is written, the run returns 1 */
    long stop_after;
    /* called on every rank with the trained model, just before it is freed,
     * when the run completed or stopped (NULL: none; tests compare replicas) */
    void (*on_end)(const Model *m, void *arg);
    void *on_end_arg;
    /* the validation split (issue 16; datasets/split.h): periodic evaluations
     * on it, the checkpoint of its best top-1 selected, the test set only at
     * the end (results/README.md). NULL or empty: periodic evaluations on test. */
    const Dataset *val;
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
int train_run_task(const TrainOptions *o, const TaskKind *task, const char *run_name, const Dataset *train,
                   const Dataset *test, RunLog *log, const TrainControl *ctl, FILE *progress, TrainResult *res,
                   char *err, size_t errlen);
/* train_run_task of a config's options with the classification task */
int train_run_ctl(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
                  const TrainControl *ctl, FILE *progress, TrainResult *res, char *err, size_t errlen);
/* train_run_ctl without checkpoints */
int train_run(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
              FILE *progress, TrainResult *res, char *err, size_t errlen);

/* set by a SIGINT handler: the loop stops after the current step */
extern volatile int train_stop_requested;

#endif
