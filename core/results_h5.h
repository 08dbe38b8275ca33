/* HDF5 results: results/<experiment>.h5 (schema in results/README.md).
 *
 *   /                      attrs: schema_version (int), experiment, experiment_yaml,
 *                                 git_revision, compiler, build, omp_threads, cpu_model, start_time
 *   /runs/<run>/           attrs: config (resolved YAML), status (pending|running|complete|failed),
 *                                 final_top1, best_top1, wall_time_s
 *   /runs/<run>/train/     step (int64), loss, lr, time_s (float64), chunked and extendible
 *   /runs/<run>/eval/      step (int64), top1 (percent), loss (float64), chunked and extendible
 *
 * Crash safety: the file is written at PATH.tmp and renamed to PATH by
 * results_close(commit = 1); a killed run leaves PATH untouched (the previous
 * complete file, or nothing). Appends are buffered in memory and flushed to
 * the datasets by results_flush() and at close. */
#ifndef CBNN_RESULTS_H5_H
#define CBNN_RESULTS_H5_H

#include <stddef.h>

#define RESULTS_SCHEMA_VERSION 1

typedef struct ResultsFile ResultsFile;
typedef struct RunLog RunLog;

/* Open PATH.tmp for writing (any stale PATH.tmp is replaced), write the root
 * attributes. Returns NULL and a message in err on failure. */
ResultsFile *results_create(const char *path, const char *experiment, const char *experiment_yaml,
                            int omp_threads, char *err, size_t errlen);
/* Create /runs/<run_name> with its config attribute and status "running". */
RunLog *results_run_begin(ResultsFile *f, const char *run_name, const char *config_yaml);
int runlog_train(RunLog *r, long step, double loss, double lr, double time_s);
int runlog_eval(RunLog *r, long step, double top1, double loss);
/* Write final attributes and status; frees r. */
int runlog_end(RunLog *r, const char *status, double final_top1, double best_top1, double wall_time_s);
int results_flush(ResultsFile *f);
/* commit = 1: flush, close and rename PATH.tmp -> PATH; commit = 0: close and
 * delete PATH.tmp. Returns 0 on success; err explains a failure (e.g. disk full). */
int results_close(ResultsFile *f, int commit, char *err, size_t errlen);

#endif
