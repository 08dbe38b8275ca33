/* Precision schedules and cost counting (core/precision.h) against the worked
 * examples of method.md 2.1-2.3, 5.4 and 6.1, and the cosine LR horizon of
 * core/lr_schedule.h divided by num_cyclic_annealing (method.md 2.3); the
 * closed-form run totals (prec_tally, train_estimate) against the
 * per-iteration loop, and the iteration count's overflow guard. */
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lr_schedule.h"
#include "precision.h"
#include "testutil.h"
#include "train_run.h"

static const double kPi = 3.14159265358979323846;

/* The paper's schedule: 2-6 bits, error at 8, N_cyc = 8, no warm-up. */
static PrecSchedule paper(long iters) {
    PrecSchedule s;
    memset(&s, 0, sizeof s);
    s.kind = PREC_CYCLIC;
    s.bits_min = 2;
    s.bits_max = 6;
    s.grad_min = 8;
    s.grad_max = 8;
    s.cycles = 8;
    s.total_iters = iters;
    return s;
}

static double bits_at(const PrecSchedule *s, long i) { return prec_at(s, i).bits; }

/* method.md 2.2: epochs as the time unit, I = 600, P = 75 */
static void test_worked_example(void) {
    PrecSchedule s = paper(600);
    CHECK(prec_cycle_length(&s) == 75, "P = %ld", prec_cycle_length(&s));
    static const long e[] = {0, 17, 18, 30, 37, 45, 57, 60, 74, 75, 150, 599};
    static const double want[] = {2, 2, 3, 3, 4, 5, 5, 6, 6, 2, 2, 6};
    for (size_t k = 0; k < sizeof e / sizeof e[0]; k++)
        CHECK(bits_at(&s, e[k]) == want[k], "e = %ld: %g bits, want %g", e[k], bits_at(&s, e[k]), want[k]);

    /* every cycle: 18 epochs at 2, 14 at 3, 12 at 4, 14 at 5, 17 at 6, rising monotonically */
    static const int band[5] = {18, 14, 12, 14, 17};
    for (int c = 0; c < 8; c++) {
        int len[PREC_MAX_BITS + 1] = {0};
        int monotone = 1;
        for (long t = 0; t < 75; t++) {
            double b = bits_at(&s, 75L * c + t);
            if (t > 0 && b < bits_at(&s, 75L * c + t - 1)) monotone = 0;
            if (b >= 0 && b <= PREC_MAX_BITS) len[(int)b]++;
        }
        CHECK(monotone, "cycle %d does not rise monotonically", c);
        for (int b = 2; b <= 6; b++)
            CHECK(len[b] == band[b - 2], "cycle %d: %d epochs at %d bits, want %d", c, len[b], b, band[b - 2]);
    }
    /* the error bits stay at 8 */
    int g_ok = 1;
    for (long i = 0; i < 600; i++) g_ok &= prec_at(&s, i).grad_bits == 8;
    CHECK(g_ok, "grad bits not constantly 8");
    /* the closed form of the table: rint(4 - 2 cos(pi e/75)) */
    int closed_ok = 1;
    for (long i = 0; i < 600; i++) closed_ok &= bits_at(&s, i) == rint(4 - 2 * cos(kPi * (double)(i % 75) / 75));
    CHECK(closed_ok, "differs from rint(4 - 2 cos(pi e / 75))");
}

/* method.md 2.3: the README configurations */
static void test_readme_runs(void) {
    PrecSchedule in = paper(9000000);
    CHECK(prec_cycle_length(&in) == 1125000, "ImageNet P = %ld", prec_cycle_length(&in));
    static const long it[] = {0, 262500, 562500, 1000000, 1124999, 1125000, 8999999};
    static const double want[] = {2, 3, 4, 6, 6, 2, 6};
    for (size_t k = 0; k < sizeof it / sizeof it[0]; k++)
        CHECK(bits_at(&in, it[k]) == want[k], "ImageNet i = %ld: %g bits, want %g", it[k], bits_at(&in, it[k]),
              want[k]);
    PrecEval faithful = {PREC_EVAL_FAITHFUL, 0};
    CHECK(prec_eval_bits(&in, &faithful, 9000000) == 6, "ImageNet final eval bits %g",
          prec_eval_bits(&in, &faithful, 9000000));

    PrecSchedule cf = paper(187500);
    CHECK(prec_cycle_length(&cf) == 23437, "CIFAR P = %ld", prec_cycle_length(&cf));
    /* 8 * 23437 = 187496: the last four iterations start a ninth, partial cycle */
    CHECK(bits_at(&cf, 187495) == 6, "CIFAR i = 187495: %g", bits_at(&cf, 187495));
    for (long i = 187496; i <= 187499; i++) CHECK(bits_at(&cf, i) == 2, "CIFAR i = %ld: %g bits", i, bits_at(&cf, i));
    CHECK(prec_eval_bits(&cf, &faithful, 187500) == 2, "CIFAR final eval bits %g",
          prec_eval_bits(&cf, &faithful, 187500));
    /* an evaluation in mid-run sees the bits of the iteration just before it */
    CHECK(prec_eval_bits(&cf, &faithful, 1250) == bits_at(&cf, 1249), "eval after 1250 iterations");
    CHECK(prec_eval_bits(&cf, &faithful, 23437) == 6 && prec_eval_bits(&cf, &faithful, 23438) == 2,
          "eval at a cycle boundary");
    /* before any iteration: the reference's initial --num_bits (0) */
    CHECK(prec_eval_bits(&cf, &faithful, 0) == 0, "eval before training %g", prec_eval_bits(&cf, &faithful, 0));
    PrecEval fixed = {PREC_EVAL_FIXED, 1};
    CHECK(prec_eval_bits(&cf, &fixed, 187500) == 1 && prec_eval_bits(&cf, &fixed, 0) == 1, "fixed eval bits");
    CHECK(prec_eval_bits(&cf, NULL, 187500) == 2, "NULL eval = faithful");
}

/* warm-up: 4W iterations at warmup bits, then the cycles, offset by 4W */
static void test_warmup_and_leftover(void) {
    PrecSchedule s = paper(640);
    s.cyclic_warmup = 10; /* 4W = 40, P = (640 - 40) / 8 = 75 */
    s.warmup_bits = 3;
    s.warmup_grad_bits = 0;
    CHECK(prec_cycle_length(&s) == 75, "P with warm-up = %ld", prec_cycle_length(&s));
    for (long i = 0; i < 40; i++) {
        PrecBits b = prec_at(&s, i);
        CHECK(b.bits == 3 && b.grad_bits == 0, "warm-up i = %ld: %g/%g", i, b.bits, b.grad_bits);
    }
    PrecSchedule ref = paper(600);
    int same = 1;
    for (long i = 40; i < 640; i++) same &= bits_at(&s, i) == bits_at(&ref, i - 40);
    CHECK(same, "the schedule after warm-up is not the W = 0 one shifted by 4W");
    CHECK(bits_at(&s, 40) == 2 && bits_at(&s, 58) == 3 && bits_at(&s, 114) == 6 && bits_at(&s, 115) == 2,
          "warm-up offset spot values");
    PrecEval faithful = {PREC_EVAL_FAITHFUL, 0};
    CHECK(prec_eval_bits(&s, &faithful, 20) == 3 && prec_eval_bits(&s, &faithful, 0) == 3, "eval during warm-up");
    s.warmup_bits = 0;
    CHECK(bits_at(&s, 39) == 0 && prec_cost_ratio(bits_at(&s, 39), 0) == 1.0, "0 bits count as 32 in cr");

    /* truncated P: I = 605 leaves 5 iterations, which restart at b_min */
    PrecSchedule l = paper(605);
    CHECK(prec_cycle_length(&l) == 75, "P(605) = %ld", prec_cycle_length(&l));
    for (long i = 600; i < 605; i++) CHECK(bits_at(&l, i) == bits_at(&l, i - 600) && bits_at(&l, i) == 2, "leftover %ld", i);

    /* cycles shorter than an iteration (rejected by the config when I is known): b_min */
    PrecSchedule tiny = paper(5);
    CHECK(prec_cycle_length(&tiny) == 1, "P(5 iterations, 8 cycles) = %ld", prec_cycle_length(&tiny));
    for (long i = 0; i < 5; i++) CHECK(bits_at(&tiny, i) == 2, "tiny cycle %ld", i);

    /* round half to even, as numpy.rint. With whole-number ranges the cosine
     * never lands exactly on a half (cos(1.5 pi) is -1.8e-16, not 0), so the
     * ties are made with half-integer ranges: 2.5 -> 2, 3.5 -> 4 */
    PrecSchedule h = paper(16);
    h.bits_min = h.bits_max = 2.5;
    h.grad_min = h.grad_max = 3.5;
    for (long i = 0; i < 16; i += 5) {
        PrecBits t = prec_at(&h, i);
        CHECK(t.bits == 2 && t.grad_bits == 4, "ties at %ld: %g and %g, want 2 and 4", i, t.bits, t.grad_bits);
    }
    h.bits_min = h.bits_max = 2.5000000000000004;
    CHECK(bits_at(&h, 3) == 3, "just above a half rounds up");
    CHECK(bits_at(&s, -5) == bits_at(&s, 0), "negative iterations count as 0");
}

static void test_fixed_full(void) {
    PrecSchedule f;
    memset(&f, 0, sizeof f);
    f.kind = PREC_FIXED;
    f.bits_min = f.bits_max = 4;
    f.grad_min = f.grad_max = 8;
    PrecSchedule full;
    memset(&full, 0, sizeof full);
    full.kind = PREC_FULL;
    int ok = 1;
    for (long i = 0; i < 1000; i += 7) {
        PrecBits a = prec_at(&f, i), b = prec_at(&full, i);
        ok &= a.bits == 4 && a.grad_bits == 8 && b.bits == 32 && b.grad_bits == 32;
    }
    CHECK(ok, "fixed / full not constant");
    PrecEval faithful = {PREC_EVAL_FAITHFUL, 0};
    CHECK(prec_eval_bits(&f, &faithful, 0) == 4 && prec_eval_bits(&f, &faithful, 100) == 4, "fixed eval");
    CHECK(prec_eval_bits(&full, &faithful, 0) == 32, "full eval");
    CHECK(prec_cycle_length(&f) == 0 && prec_cycle_length(&full) == 0, "no cycles");
    double share[PREC_MAX_BITS + 1];
    prec_bit_shares(&f, 1000, share);
    CHECK(share[4] == 1.0, "fixed share %g", share[4]);
    prec_bit_shares(&full, 10, share);
    CHECK(share[32] == 1.0, "full share %g", share[32]);
    prec_bit_shares(&full, 0, share);
    CHECK(share[32] == 0.0, "share of an empty run");
}

/* method.md 2.1: shares of 2..6 bits, 6.1: mean cr = 0.02676 */
static void test_shares_and_cost(void) {
    const long n = 1000000;
    PrecSchedule s = paper(n);
    double share[PREC_MAX_BITS + 1];
    prec_bit_shares(&s, n, share);
    static const double want[5] = {23.00, 18.95, 16.09, 18.95, 23.00};
    double total = 0, mean_b = 0, mean_b2 = 0;
    for (int b = 0; b <= PREC_MAX_BITS; b++) {
        total += share[b];
        mean_b += b * share[b];
        mean_b2 += (double)b * b * share[b];
    }
    printf("shares over 10^6 steps (2-6 bits, 8 cycles):");
    for (int b = 2; b <= 6; b++) {
        printf(" %d: %.4f %%", b, 100 * share[b]);
        CHECK(fabs(100 * share[b] - want[b - 2]) < 0.01, "%d bits: %.4f %%, method.md 2.1 says %.2f %%", b,
              100 * share[b], want[b - 2]);
    }
    printf("\n  E[b] = %.6f, E[b^2] = %.6f\n", mean_b, mean_b2);
    CHECK(fabs(total - 1) < 1e-12 && share[0] == 0 && share[1] == 0 && share[7] == 0, "shares outside 2..6");
    /* the continuous band edges: phase acos(+-0.75)/pi, acos(+-0.25)/pi */
    double edge[4] = {acos(0.75) / kPi, acos(0.25) / kPi, acos(-0.25) / kPi, acos(-0.75) / kPi};
    double cont[5] = {edge[0], edge[1] - edge[0], edge[2] - edge[1], edge[3] - edge[2], 1 - edge[3]};
    for (int b = 2; b <= 6; b++)
        CHECK(fabs(share[b] - cont[b - 2]) < 1e-4, "%d bits: %.6f vs the continuous %.6f", b, share[b], cont[b - 2]);
    CHECK(fabs(mean_b - 4.0) < 1e-3 && fabs(mean_b2 - 18.22) < 5e-3, "E[b] %g, E[b^2] %g", mean_b, mean_b2);

    /* mean cr, per iteration as the reference accumulates it */
    PrecCostMean acc = {0, 0, 0};
    CHECK(isnan(prec_cost_mean(&acc)), "mean of nothing is NaN");
    for (long i = 0; i < n; i++) {
        PrecBits b = prec_at(&s, i);
        prec_cost_add(&acc, prec_cost_ratio(b.bits, b.grad_bits));
    }
    double mcr = prec_cost_mean(&acc);
    printf("  mean cr over 10^6 steps = %.17g (1 - cr = %.4f %%)\n", mcr, 100 * (1 - mcr));
    CHECK(acc.n == n, "count %ld", acc.n);
    CHECK(fabs(mcr - 0.02676) < 5e-6, "mean cr %.8f, method.md 6.1 says 0.02676", mcr);
    /* = (E[b^2] + 2*8*E[b]) / 3072 */
    CHECK(fabs(mcr - (mean_b2 + 16 * mean_b) / 3072) < 1e-14, "mean cr %.17g vs shares %.17g", mcr,
          (mean_b2 + 16 * mean_b) / 3072);

    /* the README runs, for the record */
    const long runs[2] = {187500, 9000000};
    for (int r = 0; r < 2; r++) {
        PrecSchedule rs = paper(runs[r]);
        PrecCostMean a = {0, 0, 0};
        for (long i = 0; i < runs[r]; i++) {
            PrecBits b = prec_at(&rs, i);
            prec_cost_add(&a, prec_cost_ratio(b.bits, b.grad_bits));
        }
        printf("  mean cr over I = %ld: %.17g\n", runs[r], prec_cost_mean(&a));
        CHECK(fabs(prec_cost_mean(&a) - 0.02676) < 5e-5, "I = %ld: mean cr %.8f", runs[r], prec_cost_mean(&a));
    }
}

static void test_cost_formulas(void) {
    CHECK(prec_cost_ratio(32, 32) == 1.0, "cr(32, 32)");
    CHECK(prec_cost_ratio(0, 0) == 1.0 && prec_cost_ratio(0, 32) == 1.0, "0 bits count as 32");
    CHECK(prec_cost_ratio(2, 8) == 36.0 / 3072, "cr(2, 8) = %.17g", prec_cost_ratio(2, 8));
    CHECK(prec_cost_ratio(6, 8) == 132.0 / 3072, "cr(6, 8)");
    CHECK(prec_cost_ratio(1, 1) == 3.0 / 3072, "cr(1, 1)");
    CHECK(prec_cost_ratio(0, 8) == (1024.0 + 512.0) / 3072, "cr(0, 8)");

    PrecMacs raw = {1000, 900, 1000};
    PrecMacs w = prec_weighted_macs(raw, 1, 2, 8);
    CHECK(w.fwd == 1000 * 4 / 1024.0 && w.err == 900 * 16 / 1024.0 && w.wgrad == 1000 * 16 / 1024.0,
          "binary 2/8: %g %g %g", w.fwd, w.err, w.wgrad);
    w = prec_weighted_macs(raw, 0, 2, 8);
    CHECK(w.fwd == 1000 && w.err == 900 && w.wgrad == 1000, "fp32 layer at weight 1");
    w = prec_weighted_macs(raw, 1, 0, 8);
    CHECK(w.fwd == 1000 && w.err == 900 * 256 / 1024.0 && w.wgrad == 1000 * 256 / 1024.0, "0 bits as 32");
    w = prec_weighted_macs(raw, 1, 32, 32);
    CHECK(w.fwd == 1000 && w.err == 900 && w.wgrad == 1000, "32/32 is fp32");
    /* one binary layer with equal GEMMs: the three weighted counts are 3 * MACs * cr */
    PrecMacs eq = {4096, 4096, 4096};
    for (int b = 1; b <= 8; b++) {
        w = prec_weighted_macs(eq, 1, b, 8);
        CHECK(fabs(w.fwd + w.err + w.wgrad - 3 * 4096 * prec_cost_ratio(b, 8)) < 1e-9, "cr vs MACs at %d bits", b);
    }
}

/* method.md 2.3: CosineAnnealingLR(T_max = (I - 4W) / num_cyclic_annealing) */
static void test_lr_horizon(void) {
    const long I = 1000;
    for (long W = 0; W <= 5; W += 5) {
        for (int n = 1; n <= 2; n++) {
            LRSchedule s;
            memset(&s, 0, sizeof s);
            s.kind = LR_COSINE;
            s.lr0 = 1.0;
            s.total_iters = I;
            s.cyclic_warmup = W;
            s.num_cyclic_annealing = n;
            const double T = (double)(I - 4 * W) / n;
            double worst = 0;
            for (long i = 4 * W; i < I; i++) {
                double want = 0.5 * (1 + cos(kPi * (double)(i + 1 - 4 * W) / T));
                worst = fmax(worst, fabs(lr_at(&s, i) - want));
            }
            CHECK(worst < 1e-14, "W %ld, n %d: lr differs from the T = (I - 4W)/n closed form by %g", W, n, worst);
            /* the lr reaches eta_min = 0 after T steps of the scheduler (iteration 4W + T - 1) */
            long at_min = 4 * W + (long)T - 1;
            CHECK(fabs(lr_at(&s, at_min)) < 1e-15, "W %ld, n %d: lr(%ld) = %g, want 0", W, n, at_min,
                  lr_at(&s, at_min));
            CHECK(fabs(lr_at(&s, 4 * W + (long)(T / 2) - 1) - 0.5) < 1e-12, "W %ld, n %d: half way", W, n);
            if (n == 1) {
                /* one half-cosine over the run: the last iteration trains at 0 */
                CHECK(fabs(lr_at(&s, I - 1)) < 1e-15, "n = 1: last lr %g", lr_at(&s, I - 1));
            } else {
                /* 2T-periodic, so the lr climbs back to lr0 by the end (not a warm restart) */
                CHECK(fabs(lr_at(&s, I - 1) - 1.0) < 1e-12 && lr_at(&s, at_min + 10) > lr_at(&s, at_min),
                      "n = 2: the lr does not rise again after T (%g at the end)", lr_at(&s, I - 1));
            }
            /* during warm-up the scheduler is not stepped */
            if (W > 0) CHECK(lr_at(&s, 4 * W - 1) == 1.0, "warm-up lr");
        }
    }
}

/* precision.* of a RunConfig */
static void test_from_config(void) {
    RunConfig c;
    config_defaults(&c);
    PrecSchedule s;
    PrecEval e;
    prec_from_config(&c, 1000, &s, &e);
    CHECK(s.kind == PREC_FULL && e.kind == PREC_EVAL_FAITHFUL, "defaults: full, faithful");
    CHECK(prec_at(&s, 5).bits == 32 && prec_at(&s, 5).grad_bits == 32, "defaults give 32/32");
    c.prec_schedule = PREC_CYCLIC;
    c.cyclic_warmup = 10;
    c.warmup_bits = 4;
    prec_from_config(&c, 640, &s, &e);
    CHECK(s.kind == PREC_CYCLIC && s.bits_min == 2 && s.bits_max == 6 && s.grad_min == 8 && s.grad_max == 8 &&
              s.cycles == 8 && s.total_iters == 640 && s.cyclic_warmup == 10 && s.warmup_bits == 4 &&
              s.warmup_grad_bits == 0,
          "cyclic mapping");
    CHECK(bits_at(&s, 0) == 4 && bits_at(&s, 40) == 2 && prec_cycle_length(&s) == 75, "cyclic from config");
    c.prec_eval = PREC_EVAL_FIXED;
    c.eval_bits = 3;
    prec_from_config(&c, 640, NULL, &e);
    CHECK(e.kind == PREC_EVAL_FIXED && e.bits == 3, "fixed eval mapping");
    c.prec_schedule = PREC_FIXED;
    c.bits.min = c.bits.max = 5;
    prec_from_config(&c, 640, &s, NULL);
    CHECK(s.kind == PREC_FIXED && bits_at(&s, 77) == 5 && prec_at(&s, 77).grad_bits == 8, "fixed mapping");
}

/* ---- closed-form totals over a run (issue 12 item 5) ----
 * --dry-run summed the cost of a run one iteration at a time, so
 * train.iterations: 10^18 never finished. prec_tally groups the iterations
 * into stretches of constant bits instead; these tests hold it to the
 * per-iteration loop it replaced, kept here as the reference. */

/* What the per-iteration loop of train_estimate summed: the weighted MACs of
 * a unit binary layer, and the Kahan mean of cr, plus the count of each
 * (bits, grad_bits) pair */
typedef struct {
    PrecMacs f;
    PrecCostMean cm;
    int n;
    PrecBits pair[4 * PREC_TALLY_MAX];
    long count[4 * PREC_TALLY_MAX];
} LoopRef;

static void loop_ref(const PrecSchedule *s, long iters, LoopRef *r) {
    memset(r, 0, sizeof *r);
    const PrecMacs unit = {1, 1, 1};
    for (long i = 0; i < iters; i++) {
        PrecBits pb = prec_at(s, i);
        PrecMacs w = prec_weighted_macs(unit, 1, pb.bits, pb.grad_bits);
        r->f.fwd += w.fwd;
        r->f.err += w.err;
        r->f.wgrad += w.wgrad;
        prec_cost_add(&r->cm, prec_cost_ratio(pb.bits, pb.grad_bits));
        int k = 0;
        while (k < r->n && !(r->pair[k].bits == pb.bits && r->pair[k].grad_bits == pb.grad_bits)) k++;
        if (k == r->n && r->n < 4 * PREC_TALLY_MAX) r->pair[r->n++] = pb;
        if (k < r->n) r->count[k]++;
    }
}

/* the tally of s over iters against the loop: the same iterations at the
 * same widths, the MAC sums bitwise equal, the mean cr within float rounding */
static int tally_matches_loop(const PrecSchedule *s, long iters, const char *what) {
    PrecTally t[PREC_TALLY_MAX];
    int n = prec_tally(s, iters, t, PREC_TALLY_MAX);
    LoopRef r;
    loop_ref(s, iters, &r);
    int ok = n >= 0;
    long sum = 0;
    for (int i = 0; ok && i < n; i++) {
        ok = t[i].count > 0;
        sum += t[i].count;
    }
    ok = ok && sum == (iters > 0 ? iters : 0);
    /* per pair of widths: the tally's counts (a pair may span two entries,
     * the warm-up's and a cycle's) add up to the loop's */
    for (int k = 0; ok && k < r.n; k++) {
        long c = 0;
        for (int i = 0; i < n; i++)
            if (t[i].b.bits == r.pair[k].bits && t[i].b.grad_bits == r.pair[k].grad_bits) c += t[i].count;
        ok = c == r.count[k];
    }
    /* the sums train_estimate takes: count x factor per entry */
    const PrecMacs unit = {1, 1, 1};
    PrecMacs f = {0, 0, 0};
    for (int i = 0; ok && i < n; i++) {
        PrecMacs w = prec_weighted_macs(unit, 1, t[i].b.bits, t[i].b.grad_bits);
        f.fwd += (double)t[i].count * w.fwd;
        f.err += (double)t[i].count * w.err;
        f.wgrad += (double)t[i].count * w.wgrad;
    }
    ok = ok && !memcmp(&f, &r.f, sizeof f);
    const double mean = prec_tally_cost_mean(t, n), kahan = prec_cost_mean(&r.cm);
    ok = ok && (iters > 0 ? fabs(mean - kahan) <= 4 * DBL_EPSILON * kahan : isnan(mean) && isnan(kahan));
    if (!ok)
        fprintf(stderr, "  %s, %ld iterations: %d entries summing to %ld; f %a %a %a vs loop %a %a %a; cr %a vs %a\n",
                what, iters, n, sum, f.fwd, f.err, f.wgrad, r.f.fwd, r.f.err, r.f.wgrad, mean, kahan);
    return ok;
}

static void test_tally_against_loop(void) {
    static const int cycles[] = {1, 2, 3, 7, 8, 16, 32, 101};
    static const int ranges[][2] = {{2, 6}, {1, 32}, {3, 3}, {2, 8}, {4, 5}};
    static const int grads[][2] = {{8, 8}, {4, 8}, {1, 32}};
    static const long totals[] = {1, 2, 7, 100, 640, 1001, 4321};
    int cases = 0, bad = 0;
    char what[160];
    for (size_t ci = 0; ci < sizeof cycles / sizeof cycles[0]; ci++)
        for (size_t ri = 0; ri < sizeof ranges / sizeof ranges[0]; ri++)
            for (size_t gi = 0; gi < sizeof grads / sizeof grads[0]; gi++)
                for (long w = 0; w <= 30; w += 15)
                    for (size_t ti = 0; ti < sizeof totals / sizeof totals[0]; ti++) {
                        PrecSchedule s = paper(totals[ti]);
                        s.cycles = cycles[ci];
                        s.bits_min = ranges[ri][0];
                        s.bits_max = ranges[ri][1];
                        s.grad_min = grads[gi][0];
                        s.grad_max = grads[gi][1];
                        s.cyclic_warmup = w;    /* 4W = 60 or 120: all warm-up in the short runs */
                        s.warmup_bits = w ? 4 : 0;
                        /* the run's own length, a prefix (evaluations, prec_bit_shares) and beyond */
                        const long iters[3] = {totals[ti], totals[ti] / 2 + 1, totals[ti] + 13};
                        for (int k = 0; k < 3; k++) {
                            snprintf(what, sizeof what, "cyclic %d-%d / %d-%d, %d cycles, W %ld, I %ld", ranges[ri][0],
                                     ranges[ri][1], grads[gi][0], grads[gi][1], cycles[ci], w, totals[ti]);
                            cases++;
                            bad += !tally_matches_loop(&s, iters[k], what);
                        }
                    }
    /* fixed and full, and the paper's lengths */
    PrecSchedule f;
    memset(&f, 0, sizeof f);
    f.kind = PREC_FIXED;
    for (int b = 1; b <= 32; b += 5) {
        f.bits_min = f.bits_max = b;
        f.grad_min = f.grad_max = 8;
        cases += 2;
        bad += !tally_matches_loop(&f, 1000, "fixed") + !tally_matches_loop(&f, 0, "fixed, empty");
    }
    PrecSchedule full;
    memset(&full, 0, sizeof full);
    full.kind = PREC_FULL;
    cases += 2;
    bad += !tally_matches_loop(&full, 777, "full") + !tally_matches_loop(&full, -3, "full, negative");
    for (int c = 1; c <= 32; c *= 2) {
        PrecSchedule s = paper(187500);
        s.cycles = c;
        cases++;
        bad += !tally_matches_loop(&s, 187500, "paper 187,500");
    }
    PrecSchedule big = paper(1000003);
    big.cycles = 3;
    big.grad_min = 1;
    big.grad_max = 32;
    cases++;
    bad += !tally_matches_loop(&big, 1000003, "10^6, 3 cycles, grads 1-32");
    CHECK(bad == 0, "%d of %d schedules: the tally differs from the per-iteration loop", bad, cases);
    printf("tally vs per-iteration loop: %d schedules, MAC sums bitwise equal, mean cr within 4 ulp\n", cases);

    /* 2^40 iterations in one cycle: no loop could check it, so against the
     * continuous band edges (as in test_shares_and_cost), within 10^-9 */
    PrecSchedule huge = paper(CFG_MAX_ITERATIONS);
    huge.cycles = 1;
    PrecTally t[PREC_TALLY_MAX];
    int n = prec_tally(&huge, CFG_MAX_ITERATIONS, t, PREC_TALLY_MAX);
    CHECK(n == 5, "2-6 bits at 8 error bits: %d stretches", n);
    double edge[4] = {acos(0.75) / kPi, acos(0.25) / kPi, acos(-0.25) / kPi, acos(-0.75) / kPi};
    double cont[5] = {edge[0], edge[1] - edge[0], edge[2] - edge[1], edge[3] - edge[2], 1 - edge[3]};
    long sum = 0;
    for (int i = 0; i < n && i < 5; i++) {
        sum += t[i].count;
        CHECK(t[i].b.bits == 2 + i && t[i].b.grad_bits == 8, "stretch %d: %g/%g bits", i, t[i].b.bits,
              t[i].b.grad_bits);
        CHECK(fabs((double)t[i].count / (double)CFG_MAX_ITERATIONS - cont[i]) < 1e-9, "stretch %d: share %.12f vs %.12f",
              i, (double)t[i].count / (double)CFG_MAX_ITERATIONS, cont[i]);
    }
    CHECK(sum == CFG_MAX_ITERATIONS, "counts sum to %ld", sum);
    /* a boundary lies exactly where prec_at changes */
    long b = t[0].count;
    CHECK(prec_at(&huge, b - 1).bits == 2 && prec_at(&huge, b).bits == 3, "edge at %ld", b);
    /* a cap that is too small is reported, not overrun */
    CHECK(prec_tally(&huge, CFG_MAX_ITERATIONS, t, 4) == -1, "cap of 4");
}

static void deadline(int sig) {
    (void)sig;
    static const char msg[] = "FAIL test_precision.c: train_estimate of 2^40 iterations did not finish within 20 s "
                              "(a loop over the iterations?)\n";
    if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
    _exit(1);
}

/* The quick cycles ablation's base (experiments/quick/ablation_cycles.yaml):
 * binary ResNet-8 on Fashion-MNIST, cyclic 2-6 / 8, 640 steps of 64 */
static RunConfig quick_cycles(int cycles) {
    RunConfig c;
    config_defaults(&c);
    snprintf(c.arch, sizeof c.arch, "cifar_resnet8");
    tu_config_cyclebnn(&c, cycles);
    c.iterations = 640;
    c.batch_size = 64;
    c.train_subset = 40960;
    return c;
}

/* train_estimate: the numbers it gave before (the per-iteration loop), the
 * MACs bitwise, and a run of 2^40 iterations in well under a second */
static void test_estimate_closed_form(void) {
    DatasetShape fm, cf;
    CHECK(dataset_nominal("fashion_mnist", &fm) == 0 && dataset_nominal("cifar10", &cf) == 0, "dataset_nominal");
    char err[512];
    TrainEstimate est;
    /* --dry-run of experiments/quick/ablation_cycles.yaml before the change, %a */
    static const double quick_bit[6] = {0x1.470254cp+35, 0x1.46cc7f8p+35, 0x1.4660d5p+35,
                                        0x1.459abap+35,  0x1.440e84p+35,  0x1.40b13p+35};
    static const double quick_cr[6] = {0x1.b61dddddddddep-6, 0x1.b5b3333333333p-6, 0x1.b4ddddddddddep-6,
                                       0x1.b355555555555p-6, 0x1.b044444444445p-6, 0x1.a99999999999ap-6};
    for (int k = 0, cyc = 1; k < 6; k++, cyc *= 2) {
        RunConfig c = quick_cycles(cyc);
        int rc = train_estimate(&c, fm.channels, fm.height, fm.width, fm.num_classes, 40960, &est, err, sizeof err);
        CHECK(rc == 0 && est.iterations == 640 && est.fwd_macs == 9204864 && est.fp32_macs == 0x1.05b53p+40 &&
                  est.bit_macs == quick_bit[k] && fabs(est.mean_cost_ratio - quick_cr[k]) <= 4 * DBL_EPSILON * quick_cr[k],
              "quick cycles=%d: rc %d %s; %ld it, %ld MACs/img, fp32 %a, bit %a (want %a), cr %a (want %a)", cyc, rc,
              rc ? err : "", est.iterations, est.fwd_macs, est.fp32_macs, est.bit_macs, quick_bit[k],
              est.mean_cost_ratio, quick_cr[k]);
    }
    /* experiments/ablation_cycles.yaml (CIFAR-10 ResNet-18, 187,500 steps of 16), before the change */
    static const double paper_bit[6] = {0x1.09655508p+47, 0x1.09652004p+47, 0x1.0964ba1p+47,
                                        0x1.0963329p+47,  0x1.0960239p+47,  0x1.095cf3fp+47};
    static const double paper_cr[6] = {0x1.b680a4be31585p-6, 0x1.b68043ced37eep-6, 0x1.b67f8964f7a1bp-6,
                                       0x1.b67cbd9107836p-6, 0x1.b67725e92746bp-6, 0x1.b671529a485cdp-6};
    for (int k = 0, cyc = 1; k < 6; k++, cyc *= 2) {
        RunConfig c;
        config_defaults(&c);
        snprintf(c.arch, sizeof c.arch, "cifar_resnet18");
        snprintf(c.dataset, sizeof c.dataset, "cifar10");
        tu_config_cyclebnn(&c, cyc);
        c.iterations = 187500;
        int rc = train_estimate(&c, cf.channels, cf.height, cf.width, cf.num_classes, cf.n_train, &est, err, sizeof err);
        CHECK(rc == 0 && est.fp32_macs == 0x1.18d25aaap+52 && est.bit_macs == paper_bit[k] &&
                  fabs(est.mean_cost_ratio - paper_cr[k]) <= 4 * DBL_EPSILON * paper_cr[k],
              "CIFAR cycles=%d: fp32 %a, bit %a (want %a), cr %a (want %a)", cyc, est.fp32_macs, est.bit_macs,
              paper_bit[k], est.mean_cost_ratio, paper_cr[k]);
    }
    /* an fp32 model costs cr 1 at every step */
    RunConfig fp = quick_cycles(8);
    fp.conv = CONV_FP32;
    CHECK(train_estimate(&fp, fm.channels, fm.height, fm.width, fm.num_classes, 40960, &est, err, sizeof err) == 0 &&
              est.mean_cost_ratio == 1.0 && est.bit_macs == est.fp32_macs,
          "fp32: cr %g, bit %a vs fp32 %a", est.mean_cost_ratio, est.bit_macs, est.fp32_macs);

    /* the largest run a config allows: the loop took 3.7 s per 10^8 iterations */
    RunConfig big = quick_cycles(8);
    big.iterations = CFG_MAX_ITERATIONS;
    signal(SIGALRM, deadline);
    alarm(20);
    const double t0 = (double)clock() / CLOCKS_PER_SEC;
    int rc = train_estimate(&big, fm.channels, fm.height, fm.width, fm.num_classes, 40960, &est, err, sizeof err);
    const double secs = (double)clock() / CLOCKS_PER_SEC - t0;
    alarm(0);
    RunConfig small = quick_cycles(8);
    TrainEstimate e640;
    train_estimate(&small, fm.channels, fm.height, fm.width, fm.num_classes, 40960, &e640, err, sizeof err);
    printf("train_estimate of 2^40 iterations: %.3f s CPU, cr %.6f\n", secs, est.mean_cost_ratio);
    CHECK(rc == 0 && est.iterations == CFG_MAX_ITERATIONS && secs < 1.0, "2^40 iterations: rc %d, %ld it, %.3f s", rc,
          est.iterations, secs);
    /* fp32 MACs scale with the iterations; 2^40 / 8 cycles is a whole P, so
     * the mean cr is the continuous one (method.md 6.1: 0.02676) */
    CHECK(fabs(est.fp32_macs / e640.fp32_macs - (double)CFG_MAX_ITERATIONS / 640) < 1e-6 &&
              fabs(est.mean_cost_ratio - 0.02676) < 5e-6 && est.bit_macs > 0 && est.bit_macs < est.fp32_macs,
          "2^40: fp32 %g, cr %.8f, bit %g", est.fp32_macs, est.mean_cost_ratio, est.bit_macs);
}

/* Issue 12 item 6: train.epochs x steps per epoch overflowed a long when
 * converted (epochs: 1e300 gave LONG_MIN: a run "interrupted at step 0",
 * negative MACs in --dry-run). The count saturates above the bound, and
 * train_check_iterations / train_estimate refuse it. */
static void test_total_iterations_guard(void) {
    RunConfig c;
    config_defaults(&c); /* batch 16 */
    c.epochs = 1e300;
    const long total = train_total_iterations(&c, 60000);
    CHECK(total == CFG_MAX_ITERATIONS + 1, "epochs 1e300: %ld iterations", total);
    char err[512] = "";
    CHECK(train_check_iterations(&c, 60000, err, sizeof err) == -1 &&
              strstr(err, "train.epochs = 1e+300 over 60000 training images at batch 16 is more than 1099511627776 "
                          "iterations") && !strchr(err, '\n'),
          "check: [%s]", err);
    TrainEstimate est;
    err[0] = 0;
    CHECK(train_estimate(&c, 1, 28, 28, 10, 60000, &est, err, sizeof err) == -1 && strstr(err, "train.epochs") &&
              est.fp32_macs >= 0,
          "train_estimate of epochs 1e300: [%s], fp32 MACs %g", err, est.fp32_macs);
    /* at the bound and one over: one step per epoch */
    c.epochs = (double)CFG_MAX_ITERATIONS;
    CHECK(train_total_iterations(&c, 16) == CFG_MAX_ITERATIONS && train_check_iterations(&c, 16, err, sizeof err) == 0,
          "epochs 2^40 of one step");
    c.epochs = (double)CFG_MAX_ITERATIONS + 1;
    CHECK(train_total_iterations(&c, 16) == CFG_MAX_ITERATIONS + 1 && train_check_iterations(&c, 16, err, sizeof err) == -1,
          "epochs 2^40 + 1 of one step");
    /* ordinary counts are unchanged: ceil(epochs x (n / batch)) */
    c.epochs = 1.5;
    CHECK(train_total_iterations(&c, 60000) == 5625 && train_total_iterations(&c, 60010) == 5625, "1.5 epochs");
    c.epochs = 0.0001;
    CHECK(train_total_iterations(&c, 60000) == 1, "a fraction of a step rounds up");
    CHECK(train_total_iterations(&c, 8) == 0, "no whole batch: 0");
    /* train.iterations itself (a hand-built config, past experiment_load's range check) */
    c.iterations = 1000000000000000000L;
    CHECK(train_total_iterations(&c, 60000) == CFG_MAX_ITERATIONS + 1 &&
              train_check_iterations(&c, 60000, err, sizeof err) == -1 && strstr(err, "train.iterations = "),
          "iterations 10^18: [%s]", err);
    c.iterations = 640;
    CHECK(train_total_iterations(&c, 0) == 640 && train_check_iterations(&c, 0, err, sizeof err) == 0, "iterations 640");

    /* the training loop refuses it on the set it loaded, before any step
     * (it used to "stop at step 0" as if interrupted) */
    Dataset train, test;
    tu_load_fmnist(&train, &test, 64, 64);
    config_defaults(&c);
    snprintf(c.arch, sizeof c.arch, "cifar_resnet8");
    c.epochs = 1e300;
    TrainResult res;
    memset(&res, 0, sizeof res);
    err[0] = 0;
    int rc = train_run(&c, "guard", &train, &test, NULL, NULL, &res, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "train.epochs = 1e+300 over 64 training images at batch 16"), "train_run: rc %d [%s]",
          rc, err);
    dataset_free(&train);
    dataset_free(&test);
}

int main(void) {
    test_worked_example();
    test_readme_runs();
    test_warmup_and_leftover();
    test_fixed_full();
    test_shares_and_cost();
    test_cost_formulas();
    test_lr_horizon();
    test_from_config();
    test_tally_against_loop();
    test_estimate_closed_form();
    test_total_iterations_guard();
    return tu_finish("precision");
}
