/* PLACEHOLDER (issue 16): being written. */
#include "seed_table.h"

int seed_table_write(ResultsFile *f, const ExperimentConfig *e, FILE *out, char *err, size_t errlen) {
    (void)f, (void)e, (void)out;
    if (err && errlen) err[0] = 0;
    return 0;
}
