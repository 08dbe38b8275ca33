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

/* TrainResult: experiments/run_record.h */

/* How a run is driven (all zero = a lone run, no checkpoints). */
typedef struct {
    long checkpoint_every;     /* iterations between checkpoints; 0 = only at the end and on a stop */
    int resume;                /* continue from the run's checkpoint in log, if it has one */
    int run_index, n_runs;     /* for the progress lines: run i/N (n_runs 0 = not shown) */
    double grid_iters_after;   /* iterations of the runs after this one, for the grid's ETA */
    /* the ranks that train this run together (issue 15): NULL or size 1 = this
     * process alone. Rank 0 of it writes the log; the others pass log = NULL. */
    const DistComm *group;
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
