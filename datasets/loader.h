/* Background batch loader: worker threads decode and augment the training
 * batches of the coming steps while the current step trains.
 *
 * The batches are exactly those of the training loop (experiments/train_run.c): step s
 * is epoch e = s / per_epoch, position p = s % per_epoch (per_epoch = n / B),
 * samples perm_e[p*B .. p*B+B) with perm_e = rng_permutation over
 * rng_stream(seed, RNG_SHUFFLE, e, 0), and sample idx's augmentation drawn
 * from rng_stream(seed, RNG_AUGMENT, e, idx). So loader_next's batch for step
 * s is bit-identical to dataset_batch(ds, perm_e + p*B, B, x, y, aug, 1, seed, e, ...),
 * for any number of workers and any queue depth (tests/test_loader.c).
 *
 * Threads: n_workers pthreads, each fills a whole batch by calling ds->get
 * once per sample, serially and without OpenMP, so the loader never starts
 * OpenMP teams of its own that would compete with the training step's. The
 * cost is that one batch is decoded by one core: the loader keeps up as long
 * as (time to decode a batch on one core) / n_workers < time of a step.
 * Batches are finished out of order by the workers but delivered in step
 * order through a ring of `depth` slots; a worker takes step s only when the
 * consumer has released step s - depth, so at most depth batches exist.
 *
 * Errors: a get() that fails makes the batch of that step an error; the
 * steps before it are still delivered, then loader_next returns -1 and
 * loader_error() says which sample of which step failed (from then on every
 * loader_next returns -1). The same meaning as dataset_batch's -1
 * (dataset.h): a corrupt file stops a run, it is never trained on as zeros. */
#ifndef CBNN_LOADER_H
#define CBNN_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

typedef struct Loader Loader;

/* Start workers producing steps start_step .. total_steps-1 of a run with
 * batch size B, augmentation *aug (copied; NULL = none) and seed.
 * n_workers >= 1 (0 = 1), depth = ring size in batches, 1..16 (2..4 is
 * plenty). ds must stay valid and unchanged until loader_stop.
 * Returns NULL with a message on bad arguments or out of memory. */
Loader *loader_start(const Dataset *ds, int B, const Augment *aug, uint64_t seed, long start_step,
                     long total_steps, int n_workers, int depth, char *err, size_t errlen);

/* The same for one rank's rows of each batch (issue 15: R ranks train one
 * run, rank r takes rows [r*B/R, (r+1)*B/R)): step s's batch is the samples
 * perm_e[p*B + row0 .. p*B + row0 + rows) of the global batch of B, each with
 * the augmentation of its sample (epoch, idx), so the rows are bitwise those
 * of the whole batch's loader. loader_start is row0 = 0, rows = B; slots and
 * loader_next's copies hold `rows` samples. 0 <= row0, row0 + rows <= B. */
Loader *loader_start_rows(const Dataset *ds, int B, int row0, int rows, const Augment *aug, uint64_t seed,
                          long start_step, long total_steps, int n_workers, int depth, char *err, size_t errlen);

/* Copy the next step's batch into x [B, C, H, W] and y [B] (either may be
 * NULL to skip it) and its step number into *step (may be NULL); blocks until
 * that batch is ready. Returns 0, 1 once all steps up to total_steps have
 * been delivered (nothing written), or -1 on an error (loader_error()).
 * The copy is B*C*H*W reals; loader_next_ref avoids it. */
int loader_next(Loader *l, real *x, int32_t *y, long *step);

/* Zero-copy variant: *x and *y point into the loader's ring and stay valid
 * until the next loader_next / loader_next_ref / loader_release / loader_stop,
 * which hand the slot back to the workers. Same return values. Call
 * loader_release as soon as the batch is no longer needed (e.g. right after
 * the forward pass has copied it into the first layer) so the worker can
 * refill the slot during the rest of the step. */
int loader_next_ref(Loader *l, const real **x, const int32_t **y, long *step);
void loader_release(Loader *l);

/* the message of the last error ("" if none) */
const char *loader_error(const Loader *l);

/* Statistics for reports: seconds loader_next spent blocked waiting for a
 * batch, and the number of batches delivered. */
void loader_stats(const Loader *l, double *wait_seconds, long *delivered);

/* Stop the workers (also mid-epoch, also while they are blocked on a full
 * ring or in the middle of a batch: that batch is finished first), join them
 * and free everything. NULL is ignored. */
void loader_stop(Loader *l);

#endif
