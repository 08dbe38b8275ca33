/* Statistics over seeds (experiments/stats.h). PLACEHOLDER: only
 * stats_group_name is implemented; the rest is being written (issue 16). */
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

char *stats_group_name(const char *run_name, char *out, size_t cap) {
    size_t o = 0;
    if (!cap) return out;
    out[0] = 0;
    const char *p = run_name;
    while (*p) {
        size_t len = strcspn(p, ",");
        int is_seed = len > 5 && !strncmp(p, "seed=", 5) && strspn(p + 5, "0123456789") == len - 5;
        if (!is_seed) {
            const size_t need = (o ? 1 : 0) + len;
            if (o + need < cap) {
                if (o) out[o++] = ',';
                memcpy(out + o, p, len);
                o += len;
                out[o] = 0;
            }
        }
        p += len;
        if (*p == ',') p++;
    }
    return out;
}

int stats_summary(const double *x, int n, double level, SeedStats *out) {
    (void)x, (void)n, (void)level, (void)out;
    return -1;
}

int stats_paired(const double *a, const double *b, int n, double level, PairedStats *out) {
    (void)a, (void)b, (void)n, (void)level, (void)out;
    return -1;
}

int stats_time_to_accuracy(const long *step, const double *top1, const double *seconds, int n, double target,
                           long *steps, double *secs) {
    (void)step, (void)top1, (void)seconds, (void)n, (void)target, (void)steps, (void)secs;
    return -1;
}
