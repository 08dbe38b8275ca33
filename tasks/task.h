/* A task: what a batch is, its losses, its metric and the result columns it
 * names. The training loop (experiments/train_run.c) and the evaluation below
 * are written against this table, so a second task (detection) is one more
 * table, not another loop.
 *
 * Life of one step, as the loop drives it:
 *   kind->batch(t, src)                  the batch: inputs and targets, into t's buffers
 *   kind->forward(t, m, n, train, &loss) the graph and the losses; with train = 1 it
 *                                        also writes the gradients of the outputs
 *   model_backward_outputs(m)            (the loop) then the optimizer
 *   kind->metric_add(t, m, n, &acc)      counts the metric of that forward
 * Layering: tasks/ sees core/ (the graph, the ops) and datasets/ (samples and
 * augmentations), never experiments/. */
#ifndef CBNN_TASK_H
#define CBNN_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "dist.h"
#include "loader.h"
#include "model.h"

#define TASK_MAX_METRICS 4

/* What a batch is drawn from: the samples idx[0..n) of ds (train = 1 draws
 * the training augmentations from the run's streams keyed by seed and epoch),
 * or, when loader is set, the next batch of a background loader, which must
 * be the one of step `step`. */
typedef struct {
    const Dataset *ds;
    const int32_t *idx;
    int n;
    const Augment *aug;
    int train;
    uint64_t seed;
    long epoch;
    Loader *loader;
    long step;
} BatchSource;

/* Sums over the samples seen; the task turns them into its metric values. */
typedef struct {
    long n;                          /* samples */
    double loss_sum;                 /* sum over batches of (mean loss x batch size) */
    double sums[TASK_MAX_METRICS];   /* the task's own counts (classification: correct predictions) */
} TaskMetric;

typedef struct Task Task;

typedef struct {
    const char *name;                /* "classification" */
    /* the metric's columns, as the results file names them (train/<name>,
     * eval/<name>); metric 0 is the one "best" keeps (higher is better) */
    int n_metrics;
    const char *metric_names[TASK_MAX_METRICS];
    const char *metric_units[TASK_MAX_METRICS];
    /* buffers for batches of up to max_batch samples of ds's shape; 0 or -1 */
    int (*setup)(Task *t, const Model *m, const Dataset *ds, int max_batch, char *err, size_t errlen);
    void (*release)(Task *t);
    int (*batch)(Task *t, const BatchSource *src, char *err, size_t errlen);
    /* forward of the last batch (n samples) and the mean loss; train = 1 also
     * seeds the output gradients for model_backward_outputs. -1 with a
     * message when a target is out of range or the graph refuses the batch.
     * With a model whose shard plan is not trivial (core/shard.h) a training
     * forward's loss is the mean over the global batch (every rank's rows),
     * the same value on every rank. In eval mode n may exceed the model's
     * max_batch (up to the task's): the kind then runs the graph in pieces,
     * which gives the bits of one forward because an eval forward treats
     * every sample alone (the batch-invariance test). */
    int (*forward)(Task *t, Model *m, int n, int train, double *loss, char *err, size_t errlen);
    void (*metric_add)(Task *t, const Model *m, int n, TaskMetric *acc);
    /* values[n_metrics] from the sums (classification: top-1 percent) */
    void (*metric_values)(const TaskMetric *acc, double *values);
    /* a neutral batch of n samples in t's buffers (NULL: none): a rank whose
     * batch failed still runs the step, whose collectives the other ranks
     * are in, and the step is then discarded by all of them */
    void (*blank)(Task *t, int n);
} TaskKind;

struct Task {
    const TaskKind *kind;
    void *state;                     /* the kind's own (buffers of the batch) */
    int max_batch;                   /* the batches its buffers hold (task_setup) */
};

/* Set up a task of `kind` for batches of up to max_batch samples of ds. */
int task_setup(Task *t, const TaskKind *kind, const Model *m, const Dataset *ds, int max_batch, char *err,
               size_t errlen);
void task_release(Task *t);

/* The metric and the mean loss over the first n samples of ds (n <= 0: all),
 * in batches of at most `batch` (clamped to the model's max_batch), in eval
 * mode. values[kind->n_metrics]. 0, or -1 with a message (a sample that
 * cannot be read, a target out of range). */
int task_evaluate(Task *t, Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *values,
                  double *loss, char *err, size_t errlen);

/* task_evaluate split over the ranks of group (issue 15), with the bits of
 * one process's task_evaluate on a model allocated for `batch` rows: batch
 * k of size `batch` (clamped to t->max_batch, not to the model's: the kind's
 * eval forward takes more rows than the model holds) goes to rank k % R;
 * each batch's (mean loss, batch size, metric sums) are gathered and added
 * in batch order on every rank, so every rank returns the same values. The
 * model's forward must not use its shard plan (train_run.c sets the trivial
 * plan around it). The metric sums must be counts (exact in a double). A
 * rank's failure fails all of them (its message reaches every rank). group
 * NULL or of one rank: task_evaluate. */
int task_evaluate_group(Task *t, Model *m, const Dataset *ds, long n, int batch, const Augment *aug,
                        const DistComm *group, double *values, double *loss, char *err, size_t errlen);

#endif
