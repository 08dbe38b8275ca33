/* The statistics over seeds of an experiment's results file (issue 16):
 * one row per configuration (a run name without seed=N) and metric, from the
 * file's complete runs, written to the root table /stats (results/README.md,
 * "Statistics over seeds") and printed as the per-configuration table after
 * the runs' table. The numbers come from experiments/stats.h. */
#ifndef CBNN_SEED_TABLE_H
#define CBNN_SEED_TABLE_H

#include <stdio.h>

#include "config.h"
#include "results_h5.h"

/* From f's runs of e (complete ones only): write /stats (replacing it) and,
 * when out is not NULL, print the table of mean +- sd, 95 % interval and the
 * paired comparison with e->compare_to for each configuration. Only the
 * runs of e are read (a file may hold runs of an older version of the YAML).
 *
 * Configurations are in the order of their first run in e; a run's partner
 * in the reference is the reference's complete run with the same train.seed
 * (runs without one are left out of the pairs). The fixed-bits metrics get
 * rows where some complete run has them (cyclic runs); they are compared with
 * the reference's fixed-bits value, or with its plain value when the
 * reference is not cyclic (its evaluation precision is fixed already). A
 * configuration without complete runs gets rows with n = 0 and one printed
 * line. /stats reaches the published file at the caller's next commit.
 * 0, or -1 with a message in err (a write that failed: f read-only, disk). */
int seed_table_write(ResultsFile *f, const ExperimentConfig *e, FILE *out, char *err, size_t errlen);

#endif
