/* --dry-run: list the runs of a grid with their iterations, MACs and
 * estimated time, touching nothing. */
#ifndef CBNN_DRY_RUN_H
#define CBNN_DRY_RUN_H

#include "config.h"

/* the machine shape of --nodes N --cores M (issue 15's cost model) */
typedef struct {
    int nodes;          /* N nodes (0: not given: the estimate is for this machine) */
    int cores;          /* M cores per node */
    int ranks_per_run;  /* K ranks per run (--ranks-per-run; 0: one node per run) */
} DryRunCluster;

/* print the table of the selected runs (sel[nsel] indices into e->runs) and
 * their estimated time on `threads` threads (cluster NULL) or on the cluster;
 * 0, or 1 when a run cannot be estimated */
int dry_run(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
            const DryRunCluster *cluster);

#endif
