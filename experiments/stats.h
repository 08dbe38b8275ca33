/* Statistics over seeds (issue 16): what a reviewer asks of a table of
 * accuracies. The distributions come from GSL (gsl_cdf_tdist_Pinv,
 * gsl_cdf_tdist_Q), never from a typed table of quantiles.
 *
 * A configuration is a run name without its `seed=N` component
 * (stats_group_name); its seeds are the runs that share it. Every function
 * here is pure: numbers in, numbers out, NaN where a quantity is undefined
 * (an interval of one value, a p-value of identical differences). */
#ifndef CBNN_STATS_H
#define CBNN_STATS_H

#include <stddef.h>

/* One configuration's values over its seeds. */
typedef struct {
    int n;                /* values (NaN and +-inf are not counted) */
    double mean;          /* NaN when n = 0 */
    double sd;            /* sample standard deviation (n - 1); NaN when n < 2 */
    double t_crit;        /* the t quantile of the interval: t_{(1+level)/2, n-1}; NaN when n < 2 */
    double ci_lo, ci_hi;  /* mean -+ t_crit * sd / sqrt(n); NaN when n < 2 (sd 0: both = mean) */
    double olympic_mean;  /* mean without the smallest and largest value when n >= 5, else NaN */
} SeedStats;

/* x[0..n), non-finite values skipped; level e.g. 0.95. Equal values: sd 0
 * and the interval [mean, mean], mean exactly that value. 0, or -1 for
 * level outside (0, 1) or x NULL with n > 0 (out is then all NaN, n 0). */
int stats_summary(const double *x, int n, double level, SeedStats *out);

/* The paired comparison of a configuration a against a reference b, seed by
 * seed: d_i = a_i - b_i over the pairs where both are finite. */
typedef struct {
    int n;                /* pairs */
    double mean_diff;     /* mean of d; NaN when n = 0 */
    double sd_diff;       /* sample std of d; NaN when n < 2 */
    double ci_lo, ci_hi;  /* t interval of the mean difference at `level`; NaN when n < 2 */
    double t;             /* mean_diff / (sd_diff / sqrt(n)); NaN when n < 2 or sd_diff = 0 */
    int df;               /* n - 1 */
    double p_two_sided;   /* paired t-test, 2 * Q_t(|t|; df); NaN when t is (sd 0: no test) */
} PairedStats;

/* Differences whose spread is within the rounding of a - b (8 ulps of the
 * largest |a_i|, |b_i|: 91.3 - 90.3 vs 92.1 - 91.1) count as equal: sd_diff
 * 0, no test. 0, or -1 as stats_summary (and when out of memory). */
int stats_paired(const double *a, const double *b, int n, double level, PairedStats *out);

/* name without its `seed=<digits>` comma-separated component, into out
 * (cap bytes); "" when nothing else is left. Returns out. */
char *stats_group_name(const char *run_name, char *out, size_t cap);

/* Time to accuracy (MLPerf's metric): the evaluation i with the smallest
 * step among those with top1[i] >= target (the rows may be in any order; a
 * NaN top-1 never reaches it); *steps = step[i], *secs = seconds[i] (NaN
 * when seconds is NULL). 0 when reached, 1 when never (*steps = -1,
 * *secs = NaN), -1 for step or top1 NULL with n > 0. */
int stats_time_to_accuracy(const long *step, const double *top1, const double *seconds, int n, double target,
                           long *steps, double *secs);

#endif
