/* HDF5 results: results/<experiment>.h5 (schema in results/README.md).
 *
 *   /                      attrs: schema_version (int), experiment, first_start_time, and of the
 *                                 latest session: experiment_yaml, git_revision, compiler, build,
 *                                 omp_threads, cpu_model, start_time
 *   /runs/<run>/           attrs: config (resolved YAML), status (pending|running|interrupted|
 *                                 complete|failed), message, final_test_top1, paper_best_top1,
 *                                 test_top1_at_selected, val_top1_at_selected, selected_step,
 *                                 final_test_top1_fixed, test_top1_at_selected_fixed, eval_bits_fixed,
 *                                 val_split, wall_time_s, mean_cost_ratio, bit_macs, fp32_macs, images_per_s
 *   /runs/<run>/train/     step (int64), loss, lr, time_s, bits, grad_bits, cost_ratio, top1 (float64),
 *                          chunked and extendible
 *   /runs/<run>/val/       step (int64), top1 (percent), loss, bits (float64): periodic evaluations on validation
 *   /runs/<run>/test/      step, top1, loss, bits, role (int64: TestRole), fixed (int64 0/1): test evaluations
 *                          (both chunked and extendible; results/README.md says when each is written)
 *   /runs/<run>/cost/      per-layer training cost (a table: see runlog_table)
 *   /runs/<run>/summary/   the model summary (a table)
 *
 *   /runs/<run>/checkpoint/ params, opt_m, opt_v, buffers (+ the loop's state):
 *                          what a resumed run restarts from (experiments/train_run.c, experiments/run_record.c)
 *   /stats/                the statistics over seeds (a table: results_table; experiments/stats.h)
 *
 * Crash safety: the open file is a working copy, PATH.tmp. results_commit()
 * flushes it and publishes it: copy to PATH.commit, fsync, rename over PATH.
 * rename() is atomic, so PATH is always a whole file, the one of the last
 * commit: a run killed at any moment (kill -9 included) leaves either the old
 * or the new file, never a mix. Opening an existing PATH (resume) copies it to
 * PATH.tmp first; a stale PATH.tmp from a killed process is simply replaced.
 * Appends are buffered in memory and reach the working copy at flush/commit. */
#ifndef CBNN_RESULTS_H5_H
#define CBNN_RESULTS_H5_H

#include <stddef.h>

#include <stdint.h>

#define RESULTS_SCHEMA_VERSION 4

typedef struct ResultsFile ResultsFile;
typedef struct RunLog RunLog;

/* Open the results of an experiment. fresh = 1 or no PATH yet: a new file
 * (PATH itself is replaced only at the first commit). Otherwise PATH is copied
 * to the working copy PATH.tmp and opened for update: it must hold the same
 * experiment and schema version (else an error says so and nothing changes).
 * The root attributes describe this session (experiment_yaml, git_revision,
 * omp_threads, ...); first_start_time keeps when the file was first made.
 * Returns NULL and a message in err on failure. */
/* PATH may be a symbolic link: it is resolved once, and the working copy,
 * the commit and the lock live beside its target. A directory, a special file
 * or an empty file in place of PATH is refused with one line saying so (an
 * empty one is replaced by fresh = 1). */
ResultsFile *results_open(const char *path, const char *experiment, const char *experiment_yaml, int omp_threads,
                          int fresh, char *err, size_t errlen);
/* results_open with every choice spelled out. */
typedef struct {
    const char *path, *experiment, *experiment_yaml;
    int omp_threads;
    int fresh;  /* 1: a new file (PATH, whatever it holds, is replaced at the first commit) */
    /* Else NULL: resume PATH with every run it has; or the runs of PATH for
     * which reset() returns 1 are dropped (they start over; --fresh --only),
     * the others are kept whole. */
    int (*reset)(const char *run_name, void *ctx);
    void *reset_ctx;
    int busy;   /* out: 1 when another session holds PATH's lock */
} ResultsOpenArgs;
ResultsFile *results_open_args(ResultsOpenArgs *a, char *err, size_t errlen);
/* Open PATH itself read-only, for looking (run_experiment --dry-run): no lock,
 * no working copy, so it never disturbs a session that is writing the file.
 * Only results_run_info and results_close(…, 0, …) apply. */
ResultsFile *results_open_readonly(const char *path, char *err, size_t errlen);
/* results_open(..., fresh = 1, ...) */
ResultsFile *results_create(const char *path, const char *experiment, const char *experiment_yaml,
                            int omp_threads, char *err, size_t errlen);

/* What the file knows about a run (run_info_free releases config). */
typedef struct {
    int exists;
    char status[16];            /* pending | running | interrupted | complete | failed */
    char *config;               /* the resolved YAML it was declared with */
    /* final_top1: attribute final_test_top1; best_top1: paper_best_top1 (selected on test) */
    double final_top1, best_top1, wall_time_s, mean_cost_ratio, bit_macs, fp32_macs, images_per_s;
    double test_top1_at_selected, val_top1_at_selected, selected_step;   /* issue 16: the selection */
    double final_test_top1_fixed, test_top1_at_selected_fixed, eval_bits_fixed, val_split;
    long checkpoint_step;       /* step of its complete checkpoint, -1 = none */
    char message[512];          /* why it failed, "" otherwise */
    char git_revision[64];      /* the build that started its training, "" if not recorded (older files) */
} RunInfo;
int results_run_info(ResultsFile *f, const char *run_name, RunInfo *out);
void run_info_free(RunInfo *ri);

/* Create /runs/<run_name> with status "pending" unless it exists (then nothing
 * changes). Lets the file list a whole grid before it runs. Returns 1 when it
 * created the run, 0 when it existed, -1 on error. */
int results_run_declare(ResultsFile *f, const char *run_name, const char *config_yaml);
/* Start or continue /runs/<run_name>: a new run is created, an existing one
 * (pending, running, interrupted) is reopened with its rows, to be truncated
 * to its checkpoint by runlog_truncate. Status becomes "running". The first
 * begin records this build's git revision in the run's `git_revision`
 * attribute (kept on resume). NULL if the run is open already or on error. */
RunLog *results_run_begin(ResultsFile *f, const char *run_name, const char *config_yaml);
/* (results_run_begin on an existing run also removes its loss landscapes,
 * /runs/<run>/landscape and landscape1d: they describe weights the run is
 * about to move away from.) */
/* One train/ row, whole: step, loss, lr, time_s, bits, grad_bits, cost_ratio,
 * and the task's metric on its own training minibatch (train/top1). */
typedef struct {
    long step;
    double loss, lr, time_s;
    double bits, grad_bits, cost_ratio;
    double metric;
} TrainRow;
int runlog_train_row(RunLog *r, const TrainRow *row);
/* A row with only step, loss, lr and time_s (the others NaN until the two
 * calls below fill them): for writers without a precision schedule. */
int runlog_train(RunLog *r, long step, double loss, double lr, double time_s);
/* The precision of the step just logged by runlog_train: fills train/bits,
 * train/grad_bits and train/cost_ratio of that row (NaN in rows it is not
 * called for, e.g. in runs without a precision schedule). Call it after
 * runlog_train, at most once per row; -1 if no row was logged yet. */
int runlog_train_precision(RunLog *r, double bits, double grad_bits, double cost_ratio);
/* The top-1 (percent) of the step just logged on its own training minibatch
 * (train/top1; NaN where not given). Same rules as runlog_train_precision. */
int runlog_train_top1(RunLog *r, double top1);
/* A periodic evaluation on the validation split (val/): step, top-1 in
 * percent, loss, the bits it ran at (32 = full precision). */
int runlog_val(RunLog *r, long step, double top1, double loss, double bits);
/* A test evaluation (test/): what it evaluated (role) and whether at the
 * fixed evaluation precision (fixed = 1) or at precision.eval (0). */
typedef enum { TEST_PERIODIC = 0, TEST_SELECTED = 1, TEST_FINAL = 2 } TestRole;
int runlog_test(RunLog *r, long step, double top1, double loss, double bits, TestRole role, int fixed);
/* The mean per-iteration cost ratio cr of the run (core/precision.h); the
 * attribute is NaN until this is called. */
int runlog_mean_cost_ratio(RunLog *r, double mean_cost_ratio);

/* A table: a group /runs/<run>/<group> of 1-D datasets of nrows each, one per
 * column, each with a `units` attribute. Contiguous and fixed-size (written
 * once, read whole). Writing a group again replaces it; "train" and "eval"
 * are refused. data points to nrows values: int64_t, double, or const char *
 * (variable-length UTF-8; NULL reads back as ""). The groups this project
 * writes and their columns are in results/README.md (cost/, summary/). */
typedef enum { RCOL_INT64, RCOL_FLOAT64, RCOL_STRING } ResultsColType;

typedef struct {
    const char *name;
    ResultsColType type;
    const char *units;
    const void *data;
} ResultsColumn;

int runlog_table(RunLog *r, const char *group, long nrows, const ResultsColumn *cols, int ncols);

/* A float64 attribute of the run (bit_macs, fp32_macs, images_per_s, ...). */
int runlog_attr(RunLog *r, const char *name, double v);
/* A string attribute of the run (message: why it failed). */
int runlog_attr_text(RunLog *r, const char *name, const char *v);

/* Drop the train/ rows with step > step and the val/ and test/ rows with step > step
 * (what a killed run logged after its last checkpoint). */
int runlog_truncate(RunLog *r, long step);

/* Checkpoint: named arrays in /runs/<run>/checkpoint/, created at the first
 * save with their sizes fixed, overwritten in place afterwards (the file does
 * not grow). The group's `complete` attribute is 0 while arrays are written
 * and 1 with `step` once all are; a reader only trusts complete = 1. */
typedef enum { CK_REAL, CK_F64, CK_I64 } CkptType;
typedef struct {
    const char *name;
    CkptType type;   /* CK_REAL: the engine's real (stored float32 or float64) */
    size_t n;
    void *data;
} CkptArray;
int runlog_checkpoint_save(RunLog *r, long step, const CkptArray *a, int n);
/* 1 = loaded (step set), 0 = the run has no complete checkpoint, -1 = error
 * (an array missing or of another size: message in err). */
int runlog_checkpoint_load(RunLog *r, long *step, const CkptArray *a, int n, char *err, size_t errlen);
/* Publish the working copy (see the top): after it returns 0, a crash loses
 * nothing written before the call. Errors are sticky. */
int runlog_commit(RunLog *r);
int results_commit(ResultsFile *f, char *err, size_t errlen);
/* 1 when f was opened by results_open_readonly (nothing can be written) */
int results_is_readonly(const ResultsFile *f);
/* The sticky error of the file, "" if none. */
const char *results_error(const ResultsFile *f);

/* For tests: called at named points of a commit ("commit-copy" halfway through
 * copying the working copy) so a test can kill the process there. */
extern void (*results_fault_hook)(const char *where);

/* A table under a run that is not being trained (analysis tools: the loss
 * landscape), with attributes on its group: a numeric one when text is NULL,
 * a string one otherwise. Same rules as runlog_table. */
typedef struct {
    const char *name;
    double value;
    const char *text;
} ResultsAttr;
int results_run_table(ResultsFile *f, const char *run_name, const char *group, long nrows,
                      const ResultsColumn *cols, int ncols, const ResultsAttr *attrs, int nattrs);
/* A run's complete checkpoint without opening the run for training (works
 * on a read-only file too): 1 = read, 0 = none, -1 = error (message in err). */
int results_checkpoint_read(ResultsFile *f, const char *run_name, long *step, const CkptArray *a, int n, char *err,
                            size_t errlen);

/* A string attribute of the file's root (experiment, experiment_yaml, ...)
 * as a malloc'd copy, NULL when absent; works on a read-only file too. */
char *results_root_attr_text(ResultsFile *f, const char *name);

/* A table at the file's root (/stats: the statistics over seeds), with
 * attributes on its group; replaces the group when it exists. Same rules as
 * runlog_table. 0 or -1. */
int results_table(ResultsFile *f, const char *group, long nrows, const ResultsColumn *cols, int ncols,
                  const ResultsAttr *attrs, int nattrs);

/* Write final attributes and status (final_top1 into final_test_top1,
 * best_top1 into paper_best_top1); frees r. */
int runlog_end(RunLog *r, const char *status, double final_top1, double best_top1, double wall_time_s);
int results_flush(ResultsFile *f);
/* commit = 1: flush, close and rename PATH.tmp -> PATH; commit = 0: close and
 * delete PATH.tmp (PATH keeps its last commit). Returns 0 on success; err explains a failure (e.g. disk full). */
int results_close(ResultsFile *f, int commit, char *err, size_t errlen);

/* ------------------------------------------------------------ part files
 * A grid over ranks (issue 15, experiments/parts.h) trains each run in its
 * own results file (a part: today's schema, holding the one run) and merges
 * the complete ones into the experiment's file. */

/* What results_merge_part did with a part. */
typedef enum {
    PART_MERGED = 1,    /* its run was copied into the file, the file committed, the part removed */
    PART_SAME,          /* the file had the run complete and identical (merged before): part removed */
    PART_DIFFERS,       /* the file has the run complete with other content: part kept */
    PART_OTHER_CONFIG,  /* the file declares the run with another configuration: part kept */
    PART_NOT_COMPLETE,  /* the run in the part is not complete (status says which): kept */
    PART_BUSY,          /* its lock is held: being trained, or merged by another session */
    PART_GONE,          /* removed since it was listed (merged by another session) */
    PART_UNREADABLE,    /* not a part file of this experiment (err says why): kept */
} PartOutcome;
typedef struct {
    PartOutcome outcome;
    char run[256];      /* the run the part holds (the name of its one group under /runs) */
    char status[16];    /* its status in the part */
} PartMerge;
/* Merge the part file PART_PATH into f, open for writing: take the part's
 * lock without waiting, and if its run is complete, replace f's group of that
 * run by a copy of the part's (H5Ocopy), commit f, then remove the part. A
 * run already complete in f is not copied again: the part is removed only if
 * its content is identical (results_run_hash), so merging twice is a no-op.
 * 0 (out says what happened; err explains PART_UNREADABLE), -1 when f failed
 * (sticky, message in err). */
int results_merge_part(ResultsFile *f, const char *part_path, PartMerge *out, char *err, size_t errlen);
/* A hash of everything under /runs/<run> (attributes, datasets' values,
 * recursively, in name order): equal for a run and its H5Ocopy. 0 or -1. */
int results_run_hash(ResultsFile *f, const char *run_name, uint64_t *hash);
/* Copy /runs/<run> of `from` (any open file, read-only too) into `to`,
 * replacing the group there: a part starts from the run's state in the
 * experiment's file (its checkpoint). 0 or -1 (sticky on `to`). */
int results_copy_run(ResultsFile *to, ResultsFile *from, const char *run_name);

/* Remove a part file (and its leftovers) under its lock, taken without
 * waiting (--fresh): 0, 1 when another session holds it, -1 on error. */
int results_remove_part(const char *part_path, char *err, size_t errlen);

#endif
