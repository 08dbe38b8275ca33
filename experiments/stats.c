/* Statistics over seeds (experiments/stats.h): mean, sample sd, the t
 * interval of the mean, the olympic mean, the paired t-test and time to
 * accuracy. The t distribution comes from GSL.
 *
 * Means and sums of squares are two-pass (mean, then the squared deviations
 * from it, with the first pass's rounding corrected by the mean deviation):
 * accuracies of seeds agree to many digits, so the one-pass sum of squares
 * minus n mean^2 would cancel catastrophically. */
#include "stats.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

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

/* Moments of the finite values of x[0..n) except the indices skip1 and skip2
 * (-1: none): count, two-pass mean, sum of squared deviations, and whether
 * every counted value is the same (then the mean is that value exactly and
 * the sum of squares is exactly 0, whatever the rounding of sum / n). */
typedef struct {
    int n;
    double mean, ss, min, max;
    int imin, imax;
} Moments;

static Moments moments(const double *x, int n, int skip1, int skip2) {
    Moments m = {0, NAN, NAN, NAN, NAN, -1, -1};
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (i == skip1 || i == skip2 || !isfinite(x[i])) continue;
        if (!m.n || x[i] < m.min) m.min = x[i], m.imin = i;
        if (!m.n || x[i] > m.max) m.max = x[i], m.imax = i;
        sum += x[i];
        m.n++;
    }
    if (!m.n) return m;
    if (m.min == m.max) {
        m.mean = m.min;
        m.ss = 0;
        return m;
    }
    double mean = sum / m.n, dev = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        if (i == skip1 || i == skip2 || !isfinite(x[i])) continue;
        const double d = x[i] - mean;
        dev += d;
        ss += d * d;
    }
    /* corrected two-pass (Chan, Golub & LeVeque): dev is the first pass's rounding */
    m.mean = mean + dev / m.n;
    m.ss = ss - dev * dev / m.n;
    if (m.ss < 0) m.ss = 0;
    return m;
}

/* t_{(1+level)/2, df}: the half-width multiplier of a two-sided interval */
static double t_quantile(double level, int df) {
    return gsl_cdf_tdist_Pinv(0.5 * (1.0 + level), (double)df);
}

static int bad_level(double level) {
    return !(level > 0 && level < 1);
}

int stats_summary(const double *x, int n, double level, SeedStats *out) {
    if (!out) return -1;
    *out = (SeedStats){0, NAN, NAN, NAN, NAN, NAN, NAN};
    if (bad_level(level) || n < 0 || (n > 0 && !x)) return -1;
    const Moments m = moments(x, n, -1, -1);
    out->n = m.n;
    out->mean = m.mean;
    if (m.n < 2) return 0;
    out->sd = sqrt(m.ss / (m.n - 1));
    out->t_crit = t_quantile(level, m.n - 1);
    const double half = out->t_crit * out->sd / sqrt((double)m.n);
    out->ci_lo = m.mean - half;
    out->ci_hi = m.mean + half;
    if (m.n >= 5) {
        /* drop one smallest and one largest (distinct indices even when all are equal) */
        const int imax = m.imax != m.imin ? m.imax : -1;
        int skip2 = imax;
        for (int i = 0; skip2 < 0 && i < n; i++)
            if (i != m.imin && isfinite(x[i])) skip2 = i;
        out->olympic_mean = moments(x, n, m.imin, skip2).mean;
    }
    return 0;
}

int stats_paired(const double *a, const double *b, int n, double level, PairedStats *out) {
    if (!out) return -1;
    *out = (PairedStats){0, NAN, NAN, NAN, NAN, NAN, -1, NAN};
    if (bad_level(level) || n < 0 || (n > 0 && (!a || !b))) return -1;
    /* differences of the finite pairs, packed; scale: the largest |input|, for
     * telling a spread of differences from the rounding of a - b */
    double *d = malloc(sizeof *d * (size_t)(n + 1)), scale = 0;
    if (!d) return -1;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) continue;
        d[k++] = a[i] - b[i];
        scale = fmax(scale, fmax(fabs(a[i]), fabs(b[i])));
    }
    Moments m = moments(d, k, -1, -1);
    free(d);
    out->n = m.n;
    out->df = m.n - 1;
    out->mean_diff = m.mean;
    if (m.n < 2) return 0;
    /* Differences that differ only by the rounding of the subtraction (a run
     * one point above its reference on every seed: 91.3 - 90.3 vs 92.1 -
     * 91.1) are equal: a spread of a few ulps of the inputs would otherwise
     * give t ~ 1e14 and p = 0. */
    if (m.max - m.min <= 8 * DBL_EPSILON * scale) m.ss = 0;
    out->sd_diff = sqrt(m.ss / (m.n - 1));
    const double half = t_quantile(level, m.n - 1) * out->sd_diff / sqrt((double)m.n);
    out->ci_lo = m.mean - half;
    out->ci_hi = m.mean + half;
    if (out->sd_diff > 0) {
        out->t = m.mean / (out->sd_diff / sqrt((double)m.n));
        out->p_two_sided = fmin(1.0, 2.0 * gsl_cdf_tdist_Q(fabs(out->t), (double)out->df));
    }
    return 0;
}

int stats_time_to_accuracy(const long *step, const double *top1, const double *seconds, int n, double target,
                           long *steps, double *secs) {
    if (steps) *steps = -1;
    if (secs) *secs = NAN;
    if (n < 0 || (n > 0 && (!step || !top1))) return -1;
    /* the earliest step that reached the target, whatever order the rows are in */
    int best = -1;
    for (int i = 0; i < n; i++)
        if (top1[i] >= target && (best < 0 || step[i] < step[best])) best = i;
    if (best < 0) return 1;
    if (steps) *steps = step[best];
    if (secs) *secs = seconds ? seconds[best] : NAN;
    return 0;
}
