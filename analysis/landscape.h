/* Loss landscape of a trained run (method.md 8; Li et al. 2018, "filter
 * normalization"), the core of cbnn_landscape, callable from tests.
 *
 *   LandscapeRun r;   landscape_read_run(path, run, &r, err, n);      config + complete checkpoint
 *   Dataset tr, va, te; landscape_load_data(&r.c, &tr, &va, &te, err, n); as the driver loads it
 *   LandscapeTable t; landscape_compute(&r, &tr, &va, &te, &opt, &t, err, n);
 *   landscape_write(path, run, &r, &opt, &t, err, n);                 /runs/<run>/landscape(1d)
 *
 * Directions: d1, d2 over the latent parameters (binary convs: the real-valued
 * W before standardisation / k-bit quantization / sign). Each conv, binary
 * conv and linear weight tensor gets N(0,1) entries from its own stream
 * rng_stream(seed, RNG_LANDSCAPE, direction (0 or 1), layer index), so the
 * directions depend on the seed and the architecture only; each output filter
 * (row) of the direction is then rescaled to the Frobenius norm of the same
 * filter of the run's weights. BN gamma/beta, linear biases and binary-conv
 * alpha entries of both directions are 0 (Li et al.'s --xignore biasbn; alpha
 * is a per-channel scale like BN's gamma).
 *
 * Every grid point (alpha, beta) evaluates params = theta + alpha*d1 + beta*d2
 * in eval mode (BN running statistics and activation-quantizer running ranges
 * of the checkpoint) at one bit width, on the first `subset` images of a split
 * in the config's eval batches, with the arithmetic of classify_evaluate()
 * (tasks/classify.h) and bit for bit its numbers; the images are read once for
 * the whole grid. Points run
 * in parallel, one model per thread with nested parallelism off; every point
 * is computed the same way whatever the thread count, so the table is
 * bitwise the same for any number of threads. */
#ifndef CBNN_LANDSCAPE_H
#define CBNN_LANDSCAPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "datasets/dataset.h"
#include "experiments/config.h"
#include "model.h"

enum { LANDSCAPE_TEST = 0, LANDSCAPE_TRAIN = 1, LANDSCAPE_VAL = 2 };
/* "test", "train", "val" */
const char *landscape_split_name(int split);

#define LANDSCAPE_DIRECTIONS "gaussian, filter-normalised, bn/bias/alpha zeroed"

typedef struct {
    int grid_n;       /* points per axis (default 51) */
    double range;     /* axes span [-range, range] (default 1) */
    int one_d;        /* 1: a 1-D sweep along d1 (group landscape1d) */
    double bits;      /* evaluation bit width; < 0 (default): the run's own eval rule at the checkpoint's step */
    long subset;      /* the first N images of the split (default 1000) */
    int split;        /* LANDSCAPE_TEST (default), LANDSCAPE_TRAIN (method.md 8 says training loss: the
                       * images the run trained on) or LANDSCAPE_VAL (its data.val_split hold-out) */
    uint64_t seed;    /* the directions' seed (default 1) */
    int threads;      /* 0: OpenMP's default */
    int allow_unfinished; /* 1: accept a run that is not complete (the table then says so: unfinished = 1) */
    FILE *progress;   /* progress lines (NULL: quiet) */
} LandscapeOptions;

void landscape_defaults(LandscapeOptions *o);

/* A run as the results file holds it. */
typedef struct {
    char name[CFG_RUN_NAME];
    RunConfig c;                  /* its resolved configuration */
    char status[16];              /* its status when read: complete, interrupted, running, failed */
    long step;                    /* the step of its complete checkpoint */
    real *params, *buffers;       /* the checkpoint's */
    size_t n_params, n_buffers;
    char *experiment, *experiment_yaml; /* the file's root attributes (for reopening it to write) */
} LandscapeRun;

/* Read run `run` of the results file `path`: its config and its complete
 * checkpoint (params, buffers). 0, or -1 with a message naming the file, the
 * run and what is wrong (no such run, no complete checkpoint, unreadable
 * config, checkpoint of another size). */
int landscape_read_run(const char *path, const char *run, LandscapeRun *r, char *err, size_t errlen);
void landscape_run_free(LandscapeRun *r);

/* Only a complete run's checkpoint holds the trained weights: the landscape
 * of an interrupted, running (killed) or failed run is of weights that the
 * rest of training replaces. 0 when `status` is complete or allow_unfinished
 * is set, else -1 with a one-line message naming the file, the run, its status
 * and step, and --allow-unfinished. */
int landscape_check_status(const char *path, const char *run, const char *status, long step, int allow_unfinished,
                           char *err, size_t errlen);

/* The config's dataset as run_experiment loads it (data_from_config_split:
 * the loader, the data.val_split hold-out into val (n = 0 when none), then
 * the data.train_subset / data.test_subset truncation). 0 or -1 with a message. */
int landscape_load_data(const RunConfig *c, Dataset *train, Dataset *val, Dataset *test, char *err, size_t errlen);

/* The config's model at batch = train.batch_size, with the binary conv options
 * training sets (binary_options_from_config; save_act_codes when the
 * evaluation `bits` are within 1..8, as the training loop sets it) and the
 * given params/buffers (NULL: the initialisation). 0 or -1 with a message. */
int landscape_model(Model *m, const RunConfig *c, const Dataset *ds, const real *params, const real *buffers,
                    double bits, char *err, size_t errlen);

/* Direction `which` (0: d1, 1: d2) into d [m->n_params], filter-normalised to theta. */
void landscape_direction(const Model *m, const real *theta, uint64_t seed, int which, real *d);

/* The binary weights every binary conv uses in its forward at `bits` (after
 * standardisation, the optional ReCU clamp, the per-channel k-bit quantizer
 * and sign: values in {-1, 0, +1}), layer after layer, into bw (may be NULL).
 * Returns their count. */
size_t landscape_binary_weights(const Model *m, const real *params, double bits, real *bw);

/* the eval bits of a run: `bits` >= 0 given, else the run's rule at its
 * checkpoint step (n_train: the truncated training-set size); rule gets a
 * description */
double landscape_eval_bits(const RunConfig *c, long step, long n_train, double bits, char *rule, size_t rulelen);

typedef struct {
    long n_rows;                 /* grid_n^2 (2-D, alpha-major) or grid_n (1-D) */
    int grid_n, one_d, threads;
    double *alpha, *beta;        /* beta NULL in 1-D */
    double *loss, *top1;         /* mean cross-entropy; top-1 in percent */
    int64_t *flips;              /* binary weights that differ from those at (0, 0) */
    double bits;
    char bits_rule[256];
    long subset, n_binary_weights, checkpoint_step;
    double origin_loss, origin_top1;
    double seconds;
} LandscapeTable;

/* val may be NULL unless o->split is LANDSCAPE_VAL; train sets the run's
 * training-set size (its eval rule's step count) whatever the split. */
int landscape_compute(const LandscapeRun *r, const Dataset *train, const Dataset *val, const Dataset *test,
                      const LandscapeOptions *o, LandscapeTable *t, char *err, size_t errlen);
void landscape_table_free(LandscapeTable *t);

/* Write the table into the run: results_open (the file's experiment and
 * yaml), results_run_table, results_close(commit = 1). Refuses (nothing
 * written) when the run's checkpoint is no longer the one the table was
 * computed from, or when the run is not complete and o->allow_unfinished is
 * not set (landscape_check_status, on the status at the time of writing).
 * Besides checkpoint_step, the group records the run's status then
 * (`run_status`) and `unfinished` (1 when it was not complete). */
int landscape_write(const char *path, const LandscapeRun *r, const LandscapeOptions *o, const LandscapeTable *t,
                    char *err, size_t errlen);

/* The surface-file layout of tomgoldstein/loss-landscape (the reference
 * implementation of filter-normalised landscapes), which its plot_2D.py,
 * plot_1D.py and h52vtp.py read: analysis/README.md, "Surface files".
 *
 *   xcoordinates [nx], ycoordinates [ny] (2-D only)     float64, the grid's axes
 *   P_loss, P_acc                                       float64, accuracy in percent,
 *                                                       -1 where no value was computed
 *   flips                                               float64, same layout (ours)
 *
 * P is the split the landscape was evaluated on (train or test, their names),
 * or `prefix` when given. 2-D arrays are declared (ny, nx) and hold point
 * (x_ix, y_iy) at flat index iy*nx + ix (x fastest): the order their crunch()
 * fills (losses.ravel()[k] with k from meshgrid(x, y).ravel()) and the shape
 * their plot_2D.py's meshgrid(x, y) needs. Our grids are square, where this
 * is also their declared (nx, ny). x is alpha (d1), y is beta (d2).
 *
 * Reads /runs/RUN/landscape (or landscape1d when one_d) of the committed
 * results file read-only and writes OUT atomically (OUT.tmp, then rename).
 * Refuses, with a message naming the files: no such run, no such landscape,
 * a landscape of an older checkpoint than the run's now (stale), a table
 * whose rows are not on its grid, OUT being the results file or a directory,
 * OUT's directory missing or unwritable. 0 or -1. */
typedef struct {
    long nx, ny;         /* ny = 1 in 1-D */
    long filled;         /* grid points with a value (the rest are -1) */
    char split[16];      /* train, test, val (the first word of the table's split attribute) */
    char names[2][32];   /* the datasets written: P_loss, P_acc */
} LandscapeSurfaceInfo;

int landscape_export_surface(const char *results_path, const char *run, int one_d, const char *prefix,
                             const char *out_path, LandscapeSurfaceInfo *info, char *err, size_t errlen);

#endif
