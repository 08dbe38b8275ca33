/* HDF5 results: results/<experiment>.h5 (schema in results/README.md).
 *
 *   /                      attrs: schema_version (int), experiment, experiment_yaml,
 *                                 git_revision, compiler, build, omp_threads, cpu_model, start_time
 *   /runs/<run>/           attrs: config (resolved YAML), status (pending|running|complete|failed),
 *                                 final_top1, best_top1, wall_time_s, mean_cost_ratio
 *   /runs/<run>/train/     step (int64), loss, lr, time_s, bits, grad_bits, cost_ratio (float64),
 *                          chunked and extendible
 *   /runs/<run>/eval/      step (int64), top1 (percent), loss (float64), chunked and extendible
 *   /runs/<run>/cost/      per-layer training cost (a table: see runlog_table)
 *   /runs/<run>/summary/   the model summary (a table)
 *
 * Crash safety: the file is written at PATH.tmp and renamed to PATH by
 * results_close(commit = 1); a killed run leaves PATH untouched (the previous
 * complete file, or nothing). Appends are buffered in memory and flushed to
 * the datasets by results_flush() and at close. */
#ifndef CBNN_RESULTS_H5_H
#define CBNN_RESULTS_H5_H

#include <stddef.h>

#include <stdint.h>

#define RESULTS_SCHEMA_VERSION 2

typedef struct ResultsFile ResultsFile;
typedef struct RunLog RunLog;

/* Open PATH.tmp for writing (any stale PATH.tmp is replaced), write the root
 * attributes. Returns NULL and a message in err on failure. */
ResultsFile *results_create(const char *path, const char *experiment, const char *experiment_yaml,
                            int omp_threads, char *err, size_t errlen);
/* Create /runs/<run_name> with its config attribute and status "running". */
RunLog *results_run_begin(ResultsFile *f, const char *run_name, const char *config_yaml);
int runlog_train(RunLog *r, long step, double loss, double lr, double time_s);
/* The precision of the step just logged by runlog_train: fills train/bits,
 * train/grad_bits and train/cost_ratio of that row (NaN in rows it is not
 * called for, e.g. in runs without a precision schedule). Call it after
 * runlog_train, at most once per row; -1 if no row was logged yet. */
int runlog_train_precision(RunLog *r, double bits, double grad_bits, double cost_ratio);
int runlog_eval(RunLog *r, long step, double top1, double loss);
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

/* Write final attributes and status; frees r. */
int runlog_end(RunLog *r, const char *status, double final_top1, double best_top1, double wall_time_s);
int results_flush(ResultsFile *f);
/* commit = 1: flush, close and rename PATH.tmp -> PATH; commit = 0: close and
 * delete PATH.tmp. Returns 0 on success; err explains a failure (e.g. disk full). */
int results_close(ResultsFile *f, int commit, char *err, size_t errlen);

#endif
