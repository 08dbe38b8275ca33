/* --dry-run: list the runs of a grid with their iterations, MACs and
 * estimated time, touching nothing. */
#ifndef CBNN_DRY_RUN_H
#define CBNN_DRY_RUN_H

#include "config.h"

/* the machine shape of --nodes N --cores M (issue 15's cost model,
 * bench/README.md "Cost model") */
typedef struct {
    int nodes;          /* N nodes (0: not given: the estimate is for this machine) */
    int cores;          /* M cores per node (one rank per node runs M threads; 0: this machine's threads) */
    int ranks_per_run;  /* K ranks per run (--ranks-per-run; 0: one node per run) */
    const char *machine; /* --machine FILE: the measured figures (NULL: bench/scaling.json of the source
                          * tree: $CBNN_SOURCE_ROOT, else the directory above the executable's, else ./) */
} DryRunCluster;

/* print the table of the selected runs (sel[nsel] indices into e->runs) and
 * their estimated time on `threads` threads (cluster NULL or nodes 0: exactly
 * the one-machine table) or on the cluster from the cost model; 0, or 1 when a
 * run cannot be estimated or the machine file cannot be read */
int dry_run(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
            const DryRunCluster *cluster);

#endif
