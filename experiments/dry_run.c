/* --dry-run (experiments/dry_run.h): the expanded runs, their cost and their
 * estimated time. */
#include "dry_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine_options.h"
#include "progress.h"
#include "results_h5.h"
#include "detect_run.h"

/* Training throughput used by --dry-run when the results file has no
 * finished run to measure it from: fp32-equivalent training MACs per second
 * per thread (everything is emulated in fp32). Measured with
 * experiments/fmnist_quick.yaml (binary ResNet-8, batch 64) on the 2-core
 * AMD EPYC (Zen 5) development machine: 1.66e12 MACs in 70 s on 2 threads. */
#define DRY_RUN_MACS_PER_S_PER_THREAD 1.2e10
/* The same for the detector at paper shape (600 x 800, width 64, 256 RoIs:
 * larger convs run nearer the machine's peak): bench/det_step's paper-shape
 * step, 148.3 GMAC per training image at 0.378 img/s on 2 threads
 * (bench/RESULTS.md, issue 14) = 2.8e10 per thread. */
#define DRY_RUN_DET_MACS_PER_S_PER_THREAD 2.8e10

/* --dry-run: the expanded runs, their cost and estimated time */
int dry_run(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
            const DryRunCluster *cluster) {
    (void)cluster;
    /* measured rate from the file's complete runs, when it has some */
    double rate = 0, sum_macs = 0, sum_time = 0;
    char err[1024];
    ResultsFile *rf = NULL;
    struct stat st;
    if (stat(path, &st) == 0) {
        rf = results_open_readonly(path, err, sizeof err);
        if (!rf) printf("(the existing results file is not readable as this build's: %s)\n", err);
    }
    RunInfo *infos = calloc((size_t)nsel, sizeof *infos);
    if (!infos) return 1;
    for (int k = 0; k < nsel && rf; k++) {
        results_run_info(rf, e->runs[sel[k]].name, &infos[k]);
        if (!strcmp(infos[k].status, "complete") && infos[k].fp32_macs > 0 && infos[k].wall_time_s > 0) {
            sum_macs += infos[k].fp32_macs;
            sum_time += infos[k].wall_time_s;
        }
    }
    if (rf) results_close(rf, 0, err, sizeof err);
    if (sum_time > 0) rate = sum_macs / sum_time;
    const char *rate_from = "measured from this file's complete runs";
    if (rate <= 0) {
        rate = DRY_RUN_MACS_PER_S_PER_THREAD * threads;
        rate_from = "the built-in rate measured on a 2-core Zen 5, scaled by threads";
    }
    printf("%s: %d run%s selected of %d\n\n", e->name, nsel, nsel == 1 ? "" : "s", e->n_runs);
    printf("%-4s %-34s %-11s %10s %11s %11s %11s %8s %9s\n", "#", "run", "status", "iterations", "MACs/img",
           "fp32 MACs", "bit-MACs", "cr", "est. time");
    double total_time = 0, total_macs = 0;
    int rc = 0, has_detect = 0;
    for (int k = 0; k < nsel; k++) {
        const RunSpec *r = &e->runs[sel[k]];
        DatasetShape ds;
        TrainEstimate est;
        long n_train;
        if (!detect_config(&r->c) && data_shape_from_config(&r->c, &ds, &n_train)) {
            printf("%-4d %-34s unknown dataset %s\n", k + 1, r->name, r->c.dataset);
            rc = 1;
            continue;
        }
        if (detect_config(&r->c) ? detect_estimate(&r->c, &est, err, sizeof err)
                                 : train_estimate(&r->c, ds.channels, ds.height, ds.width, ds.num_classes, n_train,
                                                  &est, err, sizeof err)) {
            printf("%-4d %-34s %s\n", k + 1, r->name, err);
            rc = 1;
            continue;
        }
        const char *status = infos[k].exists ? infos[k].status : "new";
        double t = est.fp32_macs / rate;
        if (detect_config(&r->c) && sum_time <= 0) t = est.fp32_macs / (DRY_RUN_DET_MACS_PER_S_PER_THREAD * threads);
        has_detect |= detect_config(&r->c);
        if (!strcmp(status, "complete")) t = 0;
        else if (infos[k].checkpoint_step > 0 && est.iterations > 0)
            t *= 1.0 - (double)infos[k].checkpoint_step / (double)est.iterations;
        char when[32];
        format_duration(when, sizeof when, t);
        total_time += t;
        total_macs += est.fp32_macs;
        printf("%-4d %-34s %-11s %10ld %11.3e %11.3e %11.3e %8.5f %9s\n", k + 1, r->name, status, est.iterations,
               (double)est.fwd_macs, est.fp32_macs, est.bit_macs, est.mean_cost_ratio, when);
    }
    char tt[32];
    format_duration(tt, sizeof tt, total_time);
    printf("\ntotal: %.3e training MACs, estimated %s to train what is not complete (%.2e MACs/s, %s; evaluation "
           "and data loading not included)\nresults: %s\n",
           total_macs, tt, rate, rate_from, path);
    if (has_detect && sum_time <= 0)
        printf("(detection runs: %.2e MACs/s, bench/det_step's paper-shape rate on a 2-core Zen 5, scaled by threads)\n",
               DRY_RUN_DET_MACS_PER_S_PER_THREAD * threads);
    for (int k = 0; k < nsel; k++) run_info_free(&infos[k]);
    free(infos);
    return rc;
}

