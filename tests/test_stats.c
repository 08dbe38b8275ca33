/* The statistics over seeds (experiments/stats.c) against values computed by
 * hand or by methods independent of GSL: the t quantiles of df = 1 and 2 in
 * closed form, p-values from the closed-form t CDF (df = 1, 2) and from
 * Simpson integration of the t density (df = 4); and the /stats table and
 * printed table of experiments/seed_table.c from a results file made here. */
#include <errno.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiments/config.h"
#include "experiments/results_h5.h"
#include "experiments/seed_table.h"
#include "experiments/stats.h"
#include "testutil.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

/* t quantiles in closed form (independent of GSL):
 *   df = 1 (Cauchy):  F(t) = 1/2 + atan(t)/pi         =>  t_p = tan(pi (p - 1/2))
 *   df = 2:           F(t) = 1/2 + t / (2 sqrt(2 + t^2)) =>  t_p = (2p - 1) / sqrt(2 p (1 - p)) */
static double t_df1(double p) { return tan(M_PI * (p - 0.5)); }
static double t_df2(double p) { return (2 * p - 1) / sqrt(2 * p * (1 - p)); }

/* two-sided p-value P(|T| > t) by Simpson's rule on the t density over
 * [0, |t|] (2000 panels), the constant from lgamma: independent of GSL */
static double p_simpson(double t, int df) {
    const double nu = df, c = exp(lgamma((nu + 1) / 2) - lgamma(nu / 2)) / sqrt(nu * M_PI);
    const int m = 2000;
    const double h = fabs(t) / m;
    double s = 0;
    for (int i = 0; i <= m; i++) {
        const double x = i * h, f = c * pow(1 + x * x / nu, -(nu + 1) / 2);
        s += f * (i == 0 || i == m ? 1 : i % 2 ? 4 : 2);
    }
    return 1 - 2 * s * h / 3;
}

static void test_summary(void) {
    SeedStats s;
    /* x = {1, 2, 3}: mean 6/3 = 2; deviations -1, 0, 1, squares sum 2, sd = sqrt(2/2) = 1;
     * t_{0.975, 2} = 4.302652729749464 (tables; closed form 0.95 / sqrt(2 * 0.975 * 0.025)
     * = 0.95 / sqrt(0.04875)); CI = 2 -+ 4.302652729749464 / sqrt(3) = 2 -+ 2.4841377118 */
    const double x[] = {1, 2, 3};
    CHECK(stats_summary(x, 3, 0.95, &s) == 0, "summary {1,2,3}");
    CHECK(s.n == 3 && s.mean == 2 && s.sd == 1, "{1,2,3}: n %d mean %.17g sd %.17g", s.n, s.mean, s.sd);
    CHECK(NEAR(s.t_crit, 4.302652729749464, 1e-9), "t_{0.975,2} = %.17g, tables 4.302652729749464", s.t_crit);
    CHECK(NEAR(s.t_crit, t_df2(0.975), 1e-12), "t_{0.975,2} = %.17g, closed form %.17g", s.t_crit, t_df2(0.975));
    const double half = 4.302652729749464 / sqrt(3);
    CHECK(NEAR(s.ci_lo, 2 - half, 1e-9) && NEAR(s.ci_hi, 2 + half, 1e-9) && NEAR(half, 2.4841377118, 1e-9),
          "{1,2,3}: CI [%.12g, %.12g], want 2 -+ %.12g", s.ci_lo, s.ci_hi, half);
    CHECK(isnan(s.olympic_mean), "olympic mean of n = 3 is NaN: %g", s.olympic_mean);

    /* x = {1, 3} at level 0.90: mean 2, sd sqrt(((-1)^2 + 1^2) / 1) = sqrt(2);
     * t_{0.95, 1} = tan(0.45 pi) = 6.313751514675043; half = t sqrt(2) / sqrt(2) = t */
    const double x2[] = {3, 1};
    CHECK(stats_summary(x2, 2, 0.90, &s) == 0 && s.n == 2 && s.mean == 2 && NEAR(s.sd, sqrt(2), 1e-15),
          "{3,1}: mean %.17g sd %.17g", s.mean, s.sd);
    CHECK(NEAR(s.t_crit, t_df1(0.95), 1e-9) && NEAR(s.t_crit, 6.313751514675043, 1e-9),
          "t_{0.95,1} = %.17g, tan(0.45 pi) = %.17g", s.t_crit, t_df1(0.95));
    CHECK(NEAR(s.ci_lo, 2 - t_df1(0.95), 1e-9) && NEAR(s.ci_hi, 2 + t_df1(0.95), 1e-9), "{3,1}: CI [%g, %g]",
          s.ci_lo, s.ci_hi);

    /* far from 0: {1e9+1, 1e9+2, 1e9+3} has sd 1 exactly; the one-pass
     * sum(x^2) - n mean^2 works with 3e18, whose ulp is 512, and gets it wrong */
    const double big[] = {1e9 + 1, 1e9 + 2, 1e9 + 3};
    CHECK(stats_summary(big, 3, 0.95, &s) == 0 && s.mean == 1e9 + 2 && NEAR(s.sd, 1, 1e-12),
          "1e9 + {1,2,3}: mean %.17g sd %.17g", s.mean, s.sd);

    /* NaN and inf are not counted: the same as {1, 2, 3} */
    const double xn[] = {NAN, 1, 2, INFINITY, 3, NAN};
    CHECK(stats_summary(xn, 6, 0.95, &s) == 0 && s.n == 3 && s.mean == 2 && s.sd == 1 &&
              NEAR(s.ci_hi, 2 + half, 1e-9),
          "{NaN,1,2,inf,3,NaN}: n %d mean %g sd %g", s.n, s.mean, s.sd);

    /* n = 1: a mean, no sd, no interval */
    const double one[] = {NAN, 42.5};
    CHECK(stats_summary(one, 2, 0.95, &s) == 0 && s.n == 1 && s.mean == 42.5 && isnan(s.sd) && isnan(s.t_crit) &&
              isnan(s.ci_lo) && isnan(s.ci_hi) && isnan(s.olympic_mean),
          "n = 1: n %d mean %g sd %g ci [%g, %g]", s.n, s.mean, s.sd, s.ci_lo, s.ci_hi);
    /* n = 0: nothing, or only NaN */
    CHECK(stats_summary(NULL, 0, 0.95, &s) == 0 && s.n == 0 && isnan(s.mean) && isnan(s.sd) && isnan(s.ci_lo),
          "n = 0: n %d mean %g", s.n, s.mean);
    const double nans[] = {NAN, NAN};
    CHECK(stats_summary(nans, 2, 0.95, &s) == 0 && s.n == 0 && isnan(s.mean), "only NaN: n %d mean %g", s.n, s.mean);

    /* equal values: sd 0, interval [mean, mean], and the mean is the value
     * itself (0.1 + 0.1 + 0.1 = 0.30000000000000004, / 3 = 0.10000000000000002) */
    const double eq[] = {0.1, 0.1, 0.1};
    CHECK(stats_summary(eq, 3, 0.95, &s) == 0 && s.n == 3 && s.mean == 0.1 && s.sd == 0 && s.ci_lo == 0.1 &&
              s.ci_hi == 0.1,
          "{0.1,0.1,0.1}: mean %.17g sd %g ci [%.17g, %.17g]", s.mean, s.sd, s.ci_lo, s.ci_hi);

    /* a level outside (0, 1) is refused */
    const double lv[] = {0, 1, -0.5, 1.5, NAN};
    for (int i = 0; i < 5; i++) CHECK(stats_summary(x, 3, lv[i], &s) == -1, "level %g accepted", lv[i]);
}

static void test_olympic(void) {
    SeedStats s;
    /* n = 4: no olympic mean */
    const double x4[] = {1, 2, 3, 100};
    CHECK(stats_summary(x4, 4, 0.95, &s) == 0 && isnan(s.olympic_mean), "olympic of n = 4: %g", s.olympic_mean);
    /* {10, 1, 4, 7, 100}: without 1 and 100, (10 + 4 + 7) / 3 = 7 */
    const double x5[] = {10, 1, 4, 7, 100};
    CHECK(stats_summary(x5, 5, 0.95, &s) == 0 && NEAR(s.olympic_mean, 7, 1e-14) && NEAR(s.mean, 122.0 / 5, 1e-13),
          "olympic {10,1,4,7,100} = %.17g, want 7 (mean %.17g, want 24.4)", s.olympic_mean, s.mean);
    /* a NaN among them is not a value: n = 5, the same 7 */
    const double x5n[] = {10, NAN, 1, 4, 7, 100};
    CHECK(stats_summary(x5n, 6, 0.95, &s) == 0 && s.n == 5 && NEAR(s.olympic_mean, 7, 1e-14),
          "olympic with a NaN: n %d %.17g", s.n, s.olympic_mean);
    /* ties: {1, 1, 2, 3, 3} drops one 1 and one 3: (1 + 2 + 3) / 3 = 2 */
    const double xt[] = {3, 1, 2, 1, 3};
    CHECK(stats_summary(xt, 5, 0.95, &s) == 0 && NEAR(s.olympic_mean, 2, 1e-15), "olympic with ties: %.17g",
          s.olympic_mean);
    /* all equal: that value */
    const double xe[] = {5, 5, 5, 5, 5};
    CHECK(stats_summary(xe, 5, 0.95, &s) == 0 && s.olympic_mean == 5 && s.sd == 0, "olympic of equal values: %g",
          s.olympic_mean);
    /* n = 6: {1, 2, 3, 4, 5, 60} without 1 and 60: 14 / 4 = 3.5 */
    const double x6[] = {60, 2, 3, 4, 5, 1};
    CHECK(stats_summary(x6, 6, 0.95, &s) == 0 && NEAR(s.olympic_mean, 3.5, 1e-15), "olympic n = 6: %.17g",
          s.olympic_mean);
}

static void test_paired(void) {
    PairedStats p;
    /* a = {2, 4, 6}, b = {1, 2, 3}: d = {1, 2, 3}, mean 2, sd 1, df 2;
     * t = 2 / (1 / sqrt 3) = 2 sqrt 3 = 3.4641016151377544;
     * df = 2: P(|T| > t) = 1 - t / sqrt(2 + t^2) = 1 - 2 sqrt 3 / sqrt 14 = 0.07417990022744858 */
    const double a[] = {2, 4, 6}, b[] = {1, 2, 3};
    CHECK(stats_paired(a, b, 3, 0.95, &p) == 0 && p.n == 3 && p.df == 2 && p.mean_diff == 2 && p.sd_diff == 1,
          "paired {1,2,3}: n %d df %d mean %g sd %g", p.n, p.df, p.mean_diff, p.sd_diff);
    CHECK(NEAR(p.t, 2 * sqrt(3), 1e-12), "t = %.17g, want 2 sqrt 3", p.t);
    const double p_hand = 1 - 2 * sqrt(3) / sqrt(14);
    CHECK(NEAR(p_hand, 0.07417990022744858, 1e-15) && NEAR(p.p_two_sided, p_hand, 1e-12) &&
              NEAR(p.p_two_sided, p_simpson(p.t, 2), 1e-9),
          "p = %.17g, closed form %.17g, Simpson %.17g", p.p_two_sided, p_hand, p_simpson(p.t, 2));
    const double half = t_df2(0.975) / sqrt(3);
    CHECK(NEAR(p.ci_lo, 2 - half, 1e-9) && NEAR(p.ci_hi, 2 + half, 1e-9), "paired CI [%g, %g]", p.ci_lo, p.ci_hi);
    /* the sign: b - a has t = -2 sqrt 3, the same p, the interval mirrored */
    PairedStats q;
    CHECK(stats_paired(b, a, 3, 0.95, &q) == 0 && NEAR(q.t, -p.t, 1e-12) && NEAR(q.p_two_sided, p.p_two_sided, 1e-15) &&
              NEAR(q.ci_lo, -p.ci_hi, 1e-12),
          "reversed: t %g p %g", q.t, q.p_two_sided);

    /* df = 4: a = {3, 5, 6, 9, 12}, b = {1, 2, 4, 5, 7}: d = {2, 3, 2, 4, 5}, mean 16/5 = 3.2;
     * deviations -1.2, -0.2, -1.2, 0.8, 1.8, squares 1.44 + 0.04 + 1.44 + 0.64 + 3.24 = 6.8;
     * sd = sqrt(6.8 / 4) = sqrt(1.7); t = 3.2 sqrt 5 / sqrt 1.7 = 5.487954724560284;
     * p from Simpson's rule on the t(4) density: 0.00537044198... */
    const double a4[] = {3, 5, 6, 9, 12}, b4[] = {1, 2, 4, 5, 7};
    CHECK(stats_paired(a4, b4, 5, 0.95, &p) == 0 && p.n == 5 && p.df == 4 && NEAR(p.mean_diff, 3.2, 1e-14) &&
              NEAR(p.sd_diff, sqrt(1.7), 1e-14) && NEAR(p.t, 3.2 * sqrt(5) / sqrt(1.7), 1e-12),
          "paired df 4: mean %.17g sd %.17g t %.17g", p.mean_diff, p.sd_diff, p.t);
    CHECK(NEAR(p.p_two_sided, p_simpson(p.t, 4), 1e-9) && NEAR(p.p_two_sided, 0.00537044198, 1e-10),
          "p(df 4) = %.12g, Simpson %.12g", p.p_two_sided, p_simpson(p.t, 4));
    /* a large p: d = {-1, 0.5, -2, 1, -0.5}, mean -0.4 */
    const double a5[] = {0, 1.5, -1, 2, 0.5}, b5[] = {1, 1, 1, 1, 1};
    CHECK(stats_paired(a5, b5, 5, 0.95, &p) == 0 && NEAR(p.mean_diff, -0.4, 1e-15) && p.t < 0 &&
              NEAR(p.p_two_sided, p_simpson(p.t, 4), 1e-9) && p.p_two_sided > 0.3,
          "p(d = {-1,.5,-2,1,-.5}) = %.12g, Simpson %.12g", p.p_two_sided, p_simpson(p.t, 4));

    /* pairs with a NaN on either side are left out: (2,1), (6,3) remain;
     * d = {1, 3}: mean 2, sd sqrt 2, t = 2 / (sqrt 2 / sqrt 2) = 2, df 1;
     * Cauchy: P(|T| > 2) = 1 - 2 atan(2) / pi = 0.2951672353008665 */
    const double an[] = {2, NAN, 6, 4}, bn[] = {1, 2, 3, NAN};
    CHECK(stats_paired(an, bn, 4, 0.95, &p) == 0 && p.n == 2 && p.df == 1 && p.mean_diff == 2 && NEAR(p.t, 2, 1e-14),
          "NaN pairs: n %d mean %g t %g", p.n, p.mean_diff, p.t);
    CHECK(NEAR(p.p_two_sided, 0.2951672353008665, 1e-12) && NEAR(p.p_two_sided, 1 - 2 * atan(2) / M_PI, 1e-12),
          "p(df 1, t 2) = %.17g", p.p_two_sided);
    CHECK(NEAR(p.ci_hi, 2 + t_df1(0.975), 1e-9), "df 1 CI hi %.12g, want 2 + tan(0.475 pi)", p.ci_hi);

    /* equal differences: sd 0, interval [1, 1], no test */
    const double ae[] = {2, 3, 4}, be[] = {1, 2, 3};
    CHECK(stats_paired(ae, be, 3, 0.95, &p) == 0 && p.n == 3 && p.mean_diff == 1 && p.sd_diff == 0 && p.ci_lo == 1 &&
              p.ci_hi == 1 && isnan(p.t) && isnan(p.p_two_sided),
          "equal differences: sd %g t %g p %g", p.sd_diff, p.t, p.p_two_sided);
    /* equal up to the rounding of a - b: 90.0 - 89.3 = 0.7000000000000028 but
     * 90.07 - 89.37 = 0.6999999999999886; the same 0.7 points on both seeds */
    const double ar[] = {90.0, 90.07}, br[] = {89.3, 89.37};
    CHECK(ar[0] - br[0] != ar[1] - br[1], "the rounding example lost its rounding");
    CHECK(stats_paired(ar, br, 2, 0.95, &p) == 0 && p.sd_diff == 0 && isnan(p.t) && isnan(p.p_two_sided) &&
              NEAR(p.mean_diff, 0.7, 1e-12),
          "differences equal up to rounding: sd %g t %g p %g", p.sd_diff, p.t, p.p_two_sided);

    /* n = 1 and n = 0 */
    CHECK(stats_paired(a, b, 1, 0.95, &p) == 0 && p.n == 1 && p.df == 0 && p.mean_diff == 1 && isnan(p.sd_diff) &&
              isnan(p.ci_lo) && isnan(p.t) && isnan(p.p_two_sided),
          "paired n = 1: mean %g sd %g t %g", p.mean_diff, p.sd_diff, p.t);
    CHECK(stats_paired(NULL, NULL, 0, 0.95, &p) == 0 && p.n == 0 && isnan(p.mean_diff) && isnan(p.p_two_sided),
          "paired n = 0: mean %g", p.mean_diff);
    CHECK(stats_paired(a, b, 3, 1.0, &p) == -1, "paired level 1 accepted");
}

static void test_time_to_accuracy(void) {
    const long step[] = {100, 200, 300, 400};
    const double top1[] = {50, 70, 80, 90}, secs[] = {1.5, 3, 4.5, 6};
    long st;
    double sc;
    CHECK(stats_time_to_accuracy(step, top1, secs, 4, 75, &st, &sc) == 0 && st == 300 && sc == 4.5,
          "target 75: step %ld s %g", st, sc);
    /* exactly equal counts as reached */
    CHECK(stats_time_to_accuracy(step, top1, secs, 4, 70, &st, &sc) == 0 && st == 200 && sc == 3,
          "target 70 (equal): step %ld s %g", st, sc);
    CHECK(stats_time_to_accuracy(step, top1, secs, 4, 90.0000001, &st, &sc) == 1 && st == -1 && isnan(sc),
          "never: step %ld s %g", st, sc);
    CHECK(stats_time_to_accuracy(step, top1, NULL, 4, 10, &st, &sc) == 0 && st == 100 && isnan(sc),
          "no seconds: step %ld s %g", st, sc);
    /* rows out of order and a NaN: the earliest step that reached it */
    const long step2[] = {400, 300, 100, 200};
    const double top2[] = {90, 85, NAN, 60};
    CHECK(stats_time_to_accuracy(step2, top2, NULL, 4, 80, &st, NULL) == 0 && st == 300, "out of order: step %ld", st);
    CHECK(stats_time_to_accuracy(step, top1, secs, 0, 10, &st, &sc) == 1 && st == -1, "no rows: step %ld", st);
}

static void test_group_name(void) {
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"cycles=8,seed=2", "cycles=8"},
        {"seed=3", ""},
        {"a,seed=1,b", "a,b"},
        {"seedling=1", "seedling=1"},
        {"seed=x", "seed=x"},
        {"seed=", "seed="},
        {"fixed2", "fixed2"},
        {"seed=12,cycles=1", "cycles=1"},
        {"approx,cycles=4,seed=2", "approx,cycles=4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char g[64];
        stats_group_name(cases[i].in, g, sizeof g);
        CHECK(!strcmp(g, cases[i].want), "group of '%s' = '%s', want '%s'", cases[i].in, g, cases[i].want);
    }
}

/* ---------------------------------------------------------------- seed_table */

/* Four configurations over seeds 1-3, compared with fixed2:
 *   fixed2  complete on every seed: test@sel {80, 82, 84}, final {79, 81, 83}, paper {81, 83, 85}
 *   cyclic  complete on every seed: test@sel {83, 84, 88}, final {82, 83, 84}, paper {84, 85, 89},
 *           at fixed 6 bits: test@sel {85, 86, 87}, final {84, 85, NaN}
 *   lonely  seed 1 failed, seed 2 complete (test@sel 90), seed 3 pending: one value, paired with
 *           fixed2's seed 2 (82), not its first run (80)
 *   never   declared only */
static const char ST_YAML[] = "name: st\n"
                              "base: {precision: {schedule: cyclic, bits: [2, 6]}}\n"
                              "runs:\n"
                              "  fixed2: {precision: {schedule: fixed, bits: 2}}\n"
                              "  cyclic: {precision.schedule: cyclic}\n"
                              "  lonely: {precision: {schedule: fixed, bits: 4}}\n"
                              "  never: {precision: {schedule: fixed, bits: 6}}\n"
                              "seeds: [1, 2, 3]\n"
                              "compare_to: fixed2\n";

typedef struct {
    const char *run, *status;  /* status NULL: declared only */
    double sel, fin, paper, sel_fixed, fin_fixed, bits;
} StRun;

static const StRun ST_RUNS[] = {
    {"fixed2,seed=1", "complete", 80, 79, 81, NAN, NAN, NAN},
    {"fixed2,seed=2", "complete", 82, 81, 83, NAN, NAN, NAN},
    {"fixed2,seed=3", "complete", 84, 83, 85, NAN, NAN, NAN},
    {"cyclic,seed=1", "complete", 83, 82, 84, 85, 84, 6},
    {"cyclic,seed=2", "complete", 84, 83, 85, 86, 85, 6},
    {"cyclic,seed=3", "complete", 88, 84, 89, 87, NAN, 6},
    {"lonely,seed=1", "failed", 70, 70, 70, NAN, NAN, NAN},
    {"lonely,seed=2", "complete", 90, 89, 91, NAN, NAN, NAN},
    {"lonely,seed=3", NULL, 0, 0, 0, 0, 0, 0},
    {"never,seed=1", NULL, 0, 0, 0, 0, 0, 0},
    {"never,seed=2", NULL, 0, 0, 0, 0, 0, 0},
    {"never,seed=3", NULL, 0, 0, 0, 0, 0, 0},
    /* not a run of the YAML (an older version of it): never read */
    {"stale,seed=1", "complete", 10, 10, 10, NAN, NAN, NAN},
};

static int st_write_runs(ResultsFile *f) {
    int rc = 0;
    for (size_t i = 0; i < sizeof ST_RUNS / sizeof ST_RUNS[0]; i++) {
        const StRun *r = &ST_RUNS[i];
        if (!r->status) {
            rc |= results_run_declare(f, r->run, "test") < 0;
            continue;
        }
        RunLog *l = results_run_begin(f, r->run, "test");
        if (!l) return -1;
        rc |= runlog_attr(l, "test_top1_at_selected", r->sel) |
              runlog_attr(l, "test_top1_at_selected_fixed", r->sel_fixed) |
              runlog_attr(l, "final_test_top1_fixed", r->fin_fixed) | runlog_attr(l, "eval_bits_fixed", r->bits);
        rc |= runlog_end(l, r->status, r->fin, r->paper, 1.0);
    }
    return rc ? -1 : 0;
}

/* A column of /stats, read with HDF5 alone (not through the writer's code). */
static int read_doubles(hid_t file, const char *col, double *v, int n) {
    char path[64];
    snprintf(path, sizeof path, "/stats/%s", col);
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    const int len = (int)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    const int rc = len == n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 ? 0 : -1;
    H5Dclose(d);
    return rc;
}

/* strings: out[i] is a malloc'd copy */
static int read_strings(hid_t file, const char *col, char **out, int n) {
    char path[64];
    snprintf(path, sizeof path, "/stats/%s", col);
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    const int len = (int)H5Sget_simple_extent_npoints(sp);
    char **raw = calloc((size_t)(len > 0 ? len : 1), sizeof *raw);
    int rc = raw && len == n && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0 ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) out[i] = strdup(raw[i] ? raw[i] : "");
    if (rc == 0) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, raw);
    free(raw);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

static double attr_double(hid_t loc, const char *name) {
    double v = NAN;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a >= 0) H5Aread(a, H5T_NATIVE_DOUBLE, &v), H5Aclose(a);
    return v;
}

enum { ST_ROWS = 14 };

/* the expected /stats rows (NaN: must be NaN) */
typedef struct {
    const char *config, *metric;
    int n;
    double mean, sd, ci_half;
    const char *reference;
    int pairs;
    double diff, diff_half, t, p;
} StRow;

static void check_stats_table(const char *path) {
    const double t2 = 4.302652729749464, r3 = sqrt(3);
    const StRow want[ST_ROWS] = {
        /* fixed2: {80, 82, 84} mean 82, sd 2, half 4.3027 * 2 / sqrt 3; the reference: no pairs */
        {"fixed2", "test_top1_at_selected", 3, 82, 2, t2 * 2 / r3, "", 0, NAN, NAN, NAN, NAN},
        {"fixed2", "final_test_top1", 3, 81, 2, t2 * 2 / r3, "", 0, NAN, NAN, NAN, NAN},
        {"fixed2", "paper_best_top1", 3, 83, 2, t2 * 2 / r3, "", 0, NAN, NAN, NAN, NAN},
        /* cyclic: {83, 84, 88}: mean 85, squares 4 + 1 + 9 = 14, sd sqrt 7; d = {3, 2, 4}:
         * mean 3, sd 1, t = 3 sqrt 3, p = 1 - t / sqrt(2 + t^2) = 1 - 3 sqrt 3 / sqrt 29 */
        {"cyclic", "test_top1_at_selected", 3, 85, sqrt(7), t2 * sqrt(7) / r3, "fixed2", 3, 3, t2 / r3, 3 * r3,
         1 - 3 * r3 / sqrt(29)},
        /* final {82, 83, 84} - {79, 81, 83} = {3, 2, 1}: mean 2, sd 1, t 2 sqrt 3, p 1 - 2 sqrt 3 / sqrt 14 */
        {"cyclic", "final_test_top1", 3, 83, 1, t2 / r3, "fixed2", 3, 2, t2 / r3, 2 * r3, 1 - 2 * r3 / sqrt(14)},
        /* paper {84, 85, 89} - {81, 83, 85} = {3, 2, 4}, as test@sel */
        {"cyclic", "paper_best_top1", 3, 86, sqrt(7), t2 * sqrt(7) / r3, "fixed2", 3, 3, t2 / r3, 3 * r3,
         1 - 3 * r3 / sqrt(29)},
        /* at fixed bits {85, 86, 87} against fixed2's test@sel (it has no fixed-bits value):
         * d = {5, 4, 3}, mean 4, sd 1, t 4 sqrt 3, p 1 - 4 sqrt 3 / sqrt 50 */
        {"cyclic", "test_top1_at_selected_fixed", 3, 86, 1, t2 / r3, "fixed2", 3, 4, t2 / r3, 4 * r3,
         1 - 4 * r3 / sqrt(50)},
        /* final at fixed bits {84, 85} (seed 3 NaN) - {79, 81} = {5, 4}: mean 4.5, sd sqrt 0.5, df 1;
         * t = 4.5 / (sqrt 0.5 / sqrt 2) = 9; Cauchy: p = 1 - 2 atan(9) / pi; half tan(0.475 pi) / 2 */
        {"cyclic", "final_test_top1_fixed", 2, 84.5, sqrt(0.5), t_df1(0.975) * sqrt(0.5) / sqrt(2), "fixed2", 2, 4.5,
         t_df1(0.975) * sqrt(0.5) / sqrt(2), 9, 1 - 2 * atan(9) / M_PI},
        /* lonely: one complete seed (2): 90 - fixed2's seed 2 (82) = 8, one pair, no interval, no test */
        {"lonely", "test_top1_at_selected", 1, 90, NAN, NAN, "fixed2", 1, 8, NAN, NAN, NAN},
        {"lonely", "final_test_top1", 1, 89, NAN, NAN, "fixed2", 1, 8, NAN, NAN, NAN},
        {"lonely", "paper_best_top1", 1, 91, NAN, NAN, "fixed2", 1, 8, NAN, NAN, NAN},
        {"never", "test_top1_at_selected", 0, NAN, NAN, NAN, "fixed2", 0, NAN, NAN, NAN, NAN},
        {"never", "final_test_top1", 0, NAN, NAN, NAN, "fixed2", 0, NAN, NAN, NAN, NAN},
        {"never", "paper_best_top1", 0, NAN, NAN, NAN, "fixed2", 0, NAN, NAN, NAN, NAN},
    };
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(file >= 0, "open %s", path);
    if (file < 0) return;
    char *config[ST_ROWS] = {0}, *metric[ST_ROWS] = {0}, *ref[ST_ROWS] = {0};
    double n[ST_ROWS], mean[ST_ROWS], sd[ST_ROWS], lo[ST_ROWS], hi[ST_ROWS], oly[ST_ROWS], pairs[ST_ROWS],
        dm[ST_ROWS], dlo[ST_ROWS], dhi[ST_ROWS], t[ST_ROWS], p[ST_ROWS];
    int rc = read_strings(file, "config", config, ST_ROWS) | read_strings(file, "metric", metric, ST_ROWS) |
             read_strings(file, "reference", ref, ST_ROWS) | read_doubles(file, "n", n, ST_ROWS) |
             read_doubles(file, "mean", mean, ST_ROWS) | read_doubles(file, "sd", sd, ST_ROWS) |
             read_doubles(file, "ci_lo", lo, ST_ROWS) | read_doubles(file, "ci_hi", hi, ST_ROWS) |
             read_doubles(file, "olympic_mean", oly, ST_ROWS) | read_doubles(file, "pairs", pairs, ST_ROWS) |
             read_doubles(file, "diff_mean", dm, ST_ROWS) | read_doubles(file, "diff_ci_lo", dlo, ST_ROWS) |
             read_doubles(file, "diff_ci_hi", dhi, ST_ROWS) | read_doubles(file, "t", t, ST_ROWS) |
             read_doubles(file, "p", p, ST_ROWS);
    CHECK(rc == 0, "/stats: the 15 columns of %d rows", ST_ROWS);
/* equal, or both NaN */
#define SAME(x, y) ((isnan(x) && isnan(y)) || NEAR(x, y, 1e-9))
    for (int i = 0; rc == 0 && i < ST_ROWS; i++) {
        const StRow *w = &want[i];
        CHECK(!strcmp(config[i], w->config) && !strcmp(metric[i], w->metric) && !strcmp(ref[i], w->reference),
              "row %d: %s %s ref '%s', want %s %s '%s'", i, config[i], metric[i], ref[i], w->config, w->metric,
              w->reference);
        CHECK(n[i] == w->n && SAME(mean[i], w->mean) && SAME(sd[i], w->sd) && SAME(lo[i], w->mean - w->ci_half) &&
                  SAME(hi[i], w->mean + w->ci_half) && isnan(oly[i]),
              "row %d (%s %s): n %g mean %.12g sd %.12g CI [%.12g, %.12g], want n %d mean %g sd %.12g half %.12g", i,
              w->config, w->metric, n[i], mean[i], sd[i], lo[i], hi[i], w->n, w->mean, w->sd, w->ci_half);
        CHECK(pairs[i] == w->pairs && SAME(dm[i], w->diff) && SAME(dlo[i], w->diff - w->diff_half) &&
                  SAME(dhi[i], w->diff + w->diff_half) && SAME(t[i], w->t) && SAME(p[i], w->p),
              "row %d (%s %s): pairs %g diff %.12g [%.12g, %.12g] t %.12g p %.12g, "
              "want %d %g half %.12g t %.12g p %.12g",
              i, w->config, w->metric, pairs[i], dm[i], dlo[i], dhi[i], t[i], p[i], w->pairs, w->diff, w->diff_half,
              w->t, w->p);
    }
#undef SAME
    hid_t g = H5Gopen2(file, "/stats", H5P_DEFAULT);
    CHECK(g >= 0 && attr_double(g, "level") == 0.95 && attr_double(g, "n_complete") == 7,
          "/stats attributes: level %g n_complete %g (want 0.95, 7)", attr_double(g, "level"),
          attr_double(g, "n_complete"));
    if (g >= 0) {
        char *cmp = NULL;
        hid_t a = H5Aopen(g, "compare_to", H5P_DEFAULT), t_ = H5Tcopy(H5T_C_S1);
        H5Tset_size(t_, H5T_VARIABLE);
        CHECK(a >= 0 && H5Aread(a, t_, &cmp) >= 0 && cmp && !strcmp(cmp, "fixed2"), "compare_to attribute '%s'",
              cmp ? cmp : "(none)");
        if (cmp) H5free_memory(cmp);
        H5Tclose(t_);
        if (a >= 0) H5Aclose(a);
        H5Gclose(g);
    }
    for (int i = 0; i < ST_ROWS; i++) free(config[i]), free(metric[i]), free(ref[i]);
    H5Fclose(file);
}

/* the printed table: hand-computed cells, every line < 160 characters */
static void check_printed(const char *text) {
    static const char *const want[] = {
        "85.00 \xc2\xb1 2.65",   /* cyclic: mean 85, sd sqrt 7 = 2.6458 */
        "[78.43, 91.57]",        /* 85 -+ 4.3027 sqrt 7 / sqrt 3 = 85 -+ 6.5727 */
        "+3.00 [+0.52, +5.48]",  /* 3 -+ 4.3027 / sqrt 3 = 3 -+ 2.4841 */
        "0.035",                 /* p = 1 - 3 sqrt 3 / sqrt 29 = 0.0350987 */
        "82.00 \xc2\xb1 2.00",   /* fixed2 */
        "[77.03, 86.97]",        /* 82 -+ 4.3027 * 2 / sqrt 3 = 82 -+ 4.9683 */
        "(reference)", "at fixed 6 bits", "+4.00 [+1.52, +6.48]", "0.020", /* 1 - 4 sqrt 3 / sqrt 50 = 0.0202 */
        "no complete run yet", "SELECTED ON TEST", "SELECTED ON VALIDATION", "vs fixed2",
        "7 complete runs of 12",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(strstr(text, want[i]) != NULL, "the printed table lacks '%s':\n%s", want[i], text);
    CHECK(!strstr(text, "stale"), "the printed table shows a run that is not in the YAML:\n%s", text);
    /* lonely: n 1, the mean alone (no sd, no interval), +8.00 without an interval, p undefined */
    const char *l = strstr(text, "\nlonely");
    CHECK(l && strstr(l, "90.00 ") && !strncmp(strstr(l, "90.00 ") + 6, " ", 1), "lonely's line:\n%s", text);
    if (l) {
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(l + 1, "\n"), l + 1);
        CHECK(strstr(line, " 1  ") && strstr(line, "+8.00 ") && !strstr(line, "\xc2\xb1") && !strstr(line, "["),
              "lonely: n 1, no sd or interval, diff +8.00: '%s'", line);
    }
    int lines = 0;
    for (const char *s = text; *s; lines++) {
        const size_t len = strcspn(s, "\n");
        int w = 0;
        for (size_t k = 0; k < len; k++) w += ((unsigned char)s[k] & 0xC0) != 0x80;
        CHECK(w < 160, "line of %d characters: %.*s", w, (int)len, s);
        s += len + (s[len] == '\n');
    }
    CHECK(lines >= 9, "%d lines printed", lines);
}

static void test_seed_table(const char *root) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/st.h5", root);
    ExperimentConfig e;
    if (experiment_parse(&e, ST_YAML, strlen(ST_YAML), "st.yaml", err, sizeof err)) {
        CHECK(0, "parse: %s", err);
        return;
    }
    CHECK(e.n_runs == 12 && !strcmp(e.compare_to, "fixed2"), "%d runs", e.n_runs);
    ResultsFile *f = results_create(path, "st", ST_YAML, 1, err, sizeof err);
    CHECK(f != NULL, "results_create: %s", err);
    if (!f) {
        experiment_free(&e);
        return;
    }
    CHECK(st_write_runs(f) == 0, "writing the runs");
    /* twice: the second replaces the first */
    FILE *out = tmpfile();
    CHECK(seed_table_write(f, &e, NULL, err, sizeof err) == 0, "seed_table_write: %s", err);
    CHECK(seed_table_write(f, &e, out, err, sizeof err) == 0 && !err[0], "seed_table_write again: %s", err);
    CHECK(results_close(f, 1, err, sizeof err) == 0, "close: %s", err);
    check_stats_table(path);
    if (out) {
        char text[16384];
        rewind(out);
        const size_t len = fread(text, 1, sizeof text - 1, out);
        text[len] = 0;
        fclose(out);
        check_printed(text);
        if (getenv("STATS_SHOW")) fputs(text, stdout);
    }
    /* a file another session holds (opened read-only, a --max-runs job's
     * view): the table is printed from it, /stats left to the writer */
    ResultsFile *ro = results_open_readonly(path, err, sizeof err);
    CHECK(ro != NULL, "open read-only: %s", err);
    if (ro) {
        CHECK(seed_table_write(ro, &e, NULL, err, sizeof err) == 0, "a read-only file: '%s'", err);
        results_close(ro, 0, err, sizeof err);
    }
    experiment_free(&e);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int main(void) {
    test_summary();
    test_olympic();
    test_paired();
    test_time_to_accuracy();
    test_group_name();
    const char *tmpenv = getenv("TMPDIR");
    char root[512];
    snprintf(root, sizeof root, "%s/cbnn_stats_XXXXXX", tmpenv && *tmpenv ? tmpenv : "/tmp");
    if (!mkdtemp(root)) {
        CHECK(0, "mkdtemp %s: %s", root, strerror(errno));
        return tu_finish("stats");
    }
    test_seed_table(root);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    H5close(); /* HDF5's global state, so LeakSanitizer reports only real leaks */
    return tu_finish("stats");
}
