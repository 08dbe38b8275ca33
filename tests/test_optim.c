/* Optimizers and learning-rate schedules against PyTorch (double engine).
 *
 *  - adamw_step / sgd_step trajectories (10 steps, 7 elements, per-step lr)
 *    vs torch.optim.AdamW / SGD in float64, and the optimizer state after the
 *    last step. Same operations as torch (fused multiply-adds included), so
 *    the double build agrees bit for bit with the checked-in golden; the
 *    tolerance is 1e-12 relative so that a golden regenerated with a torch
 *    whose CPU kernels do not fuse (non-AVX2 builds) still passes.
 *  - the same updates on a tensor large enough for the OpenMP path, built by
 *    tiling the 7 elements: every tile must equal the golden trajectory.
 *  - lr_at() vs torch's CosineAnnealingLR / StepLR driven like the reference
 *    training loop (tests/golden/make_optim_golden.py), both against torch's
 *    closed form (tight: same formula, same libm) and against the lr that
 *    stepping the scheduler actually produced (looser: torch's recursive
 *    update drifts from its own closed form by ~1e-12 relative over 9e6
 *    steps; the drift is measured and printed).
 *  - properties: cosine ends at eta_min, the 4W hold is at lr0, the schedule
 *    is monotone, num_cyclic_annealing = 2 bottoms out at I/2 - 1 and rises
 *    back to lr0, step decay boundaries, linear warm-up ramp.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden/optim_golden.h"
#include "lr_schedule.h"
#include "optim.h"
#include "testutil.h"

#if !REAL_IS_DOUBLE
#error "test_optim compares against float64 torch results: link the double engine"
#endif

#define OPT_RTOL 1e-12     /* optimizer trajectories vs torch float64 */
#define CLOSED_RTOL 1e-14  /* lr_at vs torch's closed form (same formula) */
#define STEPPED_RTOL 4e-12 /* lr_at vs torch's recursively stepped scheduler */
/* Absolute floor for lr comparisons, relative to lr0: 1 + cos(x) carries an
 * absolute rounding error of ~1e-16, so near the bottom of the cosine the lr
 * is only known to ~1e-16 * lr0 by any implementation, torch's included. */
#define LR_AFLOOR 1e-15

static int close_rel(double a, double b, double rtol, double atol) {
    return fabs(a - b) <= rtol * fabs(b) + atol; /* false for NaN */
}

static double rel_err(double a, double b) {
    double d = fabs(a - b);
    if (d == 0.0) return 0.0;
    return d / (fabs(b) > 0.0 ? fabs(b) : 1.0);
}

static double max_opt_err = 0.0;

/* Compare n values to golden, element i of `got` against golden[i % OG_N]. */
static void check_vec(const real *got, const double *golden, size_t n, const char *what,
                      const char *name, int step) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double e = rel_err((double)got[i], golden[i % OG_N]);
        if (e > max_opt_err) max_opt_err = e;
        if (!close_rel((double)got[i], golden[i % OG_N], OPT_RTOL, 0.0) && bad++ < 3)
            fprintf(stderr, "  %s [%s] step %d elem %zu: got %.17g want %.17g\n", what, name, step,
                    i, (double)got[i], golden[i % OG_N]);
    }
    CHECK(bad == 0, "%s [%s] step %d: %d of %zu elements off", what, name, step, bad, n);
}

/* Run one AdamW golden case on n elements (n a multiple of OG_N: tiles). */
static void run_adamw_case(const OgAdamW *gc, size_t n) {
    real *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
    real *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    if (!p || !g || !m || !v) exit(2);
    for (size_t i = 0; i < n; i++) p[i] = (real)og_init[i % OG_N];
    AdamWConfig cfg = {gc->beta1, gc->beta2, gc->eps, gc->weight_decay};
    for (int s = 0; s < OG_STEPS; s++) {
        for (size_t i = 0; i < n; i++) g[i] = (real)og_grads[s][i % OG_N];
        adamw_step(p, g, m, v, n, gc->lr[s], &cfg, (long)s + 1);
        check_vec(p, gc->param[s], n, n > OG_N ? "adamw (parallel)" : "adamw", gc->name, s + 1);
    }
    check_vec(m, gc->exp_avg, n, "adamw exp_avg", gc->name, OG_STEPS);
    check_vec(v, gc->exp_avg_sq, n, "adamw exp_avg_sq", gc->name, OG_STEPS);
    free(p), free(g), free(m), free(v);
}

static void run_sgd_case(const OgSGD *gc, size_t n) {
    real *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
    real *buf = calloc(n, sizeof *buf);
    if (!p || !g || !buf) exit(2);
    for (size_t i = 0; i < n; i++) p[i] = (real)og_init[i % OG_N];
    SGDConfig cfg = {gc->momentum, gc->dampening, gc->weight_decay, gc->nesterov};
    for (int s = 0; s < OG_STEPS; s++) {
        for (size_t i = 0; i < n; i++) g[i] = (real)og_grads[s][i % OG_N];
        sgd_step(p, g, buf, n, gc->lr[s], &cfg, (long)s + 1);
        check_vec(p, gc->param[s], n, n > OG_N ? "sgd (parallel)" : "sgd", gc->name, s + 1);
    }
    check_vec(buf, gc->momentum_buffer, n, "sgd momentum_buffer", gc->name, OG_STEPS);
    free(p), free(g), free(buf);
}

static void test_optimizers(void) {
    /* 7 * 20000 elements: above the OpenMP threshold in optim.c */
    const size_t big = (size_t)OG_N * 20000;
    for (int k = 0; k < OG_N_ADAMW; k++) {
        run_adamw_case(&og_adamw[k], OG_N);
        run_adamw_case(&og_adamw[k], big);
    }
    for (int k = 0; k < OG_N_SGD; k++) {
        run_sgd_case(&og_sgd[k], OG_N);
        run_sgd_case(&og_sgd[k], big);
    }
    printf("optimizers: max rel. deviation from torch float64 = %.3g\n", max_opt_err);
}

static LRSchedule cosine(double lr0, double eta_min, long I, long W, double nca) {
    LRSchedule s = {LR_COSINE, lr0, eta_min, I, W, nca, 0, 0.0, 0};
    return s;
}

static void test_cosine_golden(void) {
    double worst_closed = 0.0, worst_stepped = 0.0, torch_drift = 0.0;
    for (int k = 0; k < OG_N_COSINE; k++) {
        const OgCosine *gc = &og_cosine[k];
        LRSchedule s = cosine(gc->lr0, gc->eta_min, gc->total_iters, gc->cyclic_warmup,
                              gc->num_cyclic_annealing);
        const double afloor = LR_AFLOOR * gc->lr0;
        int bad_closed = 0, bad_stepped = 0;
        for (int j = 0; j < gc->n; j++) {
            const long it = gc->iters[j];
            const double lr = lr_at(&s, it);
            const double dc = fabs(lr - gc->lr_closed[j]), ds = fabs(lr - gc->lr_stepped[j]);
            const double dt = fabs(gc->lr_stepped[j] - gc->lr_closed[j]);
            /* report errors on the scale they are tested on */
            if (dc / (fabs(gc->lr_closed[j]) + afloor) > worst_closed)
                worst_closed = dc / (fabs(gc->lr_closed[j]) + afloor);
            if (ds / (fabs(gc->lr_stepped[j]) + afloor) > worst_stepped)
                worst_stepped = ds / (fabs(gc->lr_stepped[j]) + afloor);
            if (dt / (fabs(gc->lr_closed[j]) + afloor) > torch_drift)
                torch_drift = dt / (fabs(gc->lr_closed[j]) + afloor);
            if (!close_rel(lr, gc->lr_closed[j], CLOSED_RTOL, afloor) && bad_closed++ < 3)
                fprintf(stderr, "  cosine [%s] i=%ld: lr_at %.17g, torch closed form %.17g\n",
                        gc->name, it, lr, gc->lr_closed[j]);
            if (!close_rel(lr, gc->lr_stepped[j], STEPPED_RTOL, afloor) && bad_stepped++ < 3)
                fprintf(stderr, "  cosine [%s] i=%ld: lr_at %.17g, torch stepped %.17g\n", gc->name,
                        it, lr, gc->lr_stepped[j]);
        }
        CHECK(bad_closed == 0, "cosine [%s]: %d of %d iterations differ from torch's closed form",
              gc->name, bad_closed, gc->n);
        CHECK(bad_stepped == 0, "cosine [%s]: %d of %d iterations differ from torch's stepped lr",
              gc->name, bad_stepped, gc->n);
        /* the T_max the generator handed torch is the one lr_at must derive */
        CHECK((double)(gc->total_iters - 4 * gc->cyclic_warmup) / gc->num_cyclic_annealing ==
                  gc->t_max,
              "cosine [%s]: T_max mismatch", gc->name);
    }
    printf("cosine: max rel. deviation of lr_at from torch closed form %.3g, from stepped torch "
           "%.3g (torch stepped vs its own closed form: %.3g)\n",
           worst_closed, worst_stepped, torch_drift);
}

static void test_step_golden(void) {
    double worst = 0.0;
    for (int k = 0; k < OG_N_STEP; k++) {
        const OgStep *gc = &og_step[k];
        LRSchedule s = {LR_STEP, gc->lr0, 0.0, 0, 0, 1.0, gc->step_size, gc->gamma, 0};
        int bad = 0;
        for (int i = 0; i < gc->n; i++) {
            const double lr = lr_at(&s, i);
            double e = rel_err(lr, gc->lr_stepped[i]);
            if (e > worst) worst = e;
            if ((!close_rel(lr, gc->lr_stepped[i], OPT_RTOL, 0.0) ||
                 !close_rel(lr, gc->lr_closed[i], CLOSED_RTOL, 0.0)) &&
                bad++ < 3)
                fprintf(stderr, "  step [%s] i=%d: lr_at %.17g, torch %.17g / closed %.17g\n",
                        gc->name, i, lr, gc->lr_stepped[i], gc->lr_closed[i]);
        }
        CHECK(bad == 0, "step [%s]: %d of %d iterations differ from torch StepLR", gc->name, bad,
              gc->n);
    }
    printf("step: max rel. deviation from stepped torch StepLR %.3g\n", worst);
}

static void test_cosine_properties(void) {
    /* ends exactly at eta_min with num_cyclic_annealing = 1 (cos(pi) == -1) */
    const struct { double lr0, eta_min; long I, W; } ends[] = {
        {1e-3, 0.0, 9000000, 0}, {1e-3, 0.0, 187500, 0}, {0.1, 1e-3, 1000, 25},
        {0.05, 1e-5, 777, 3},    {1e-3, 1e-6, 9000000, 1000},
    };
    for (size_t k = 0; k < sizeof ends / sizeof ends[0]; k++) {
        LRSchedule s = cosine(ends[k].lr0, ends[k].eta_min, ends[k].I, ends[k].W, 1.0);
        double last = lr_at(&s, ends[k].I - 1);
        CHECK(last == ends[k].eta_min, "cosine I=%ld W=%ld: lr(I-1) = %.17g, want eta_min %.17g",
              ends[k].I, ends[k].W, last, ends[k].eta_min);
        /* the 4W hold trains at lr0 exactly; the first annealed iteration is below it */
        for (long i = 0; i < 4 * ends[k].W; i++)
            if (lr_at(&s, i) != ends[k].lr0) {
                CHECK(0, "cosine W=%ld: lr(%ld) = %.17g during the hold, want lr0", ends[k].W, i,
                      lr_at(&s, i));
                break;
            }
        double first = lr_at(&s, 4 * ends[k].W);
        CHECK(first < ends[k].lr0 && first > ends[k].lr0 * (1 - 1e-3),
              "cosine W=%ld: first annealed lr %.17g should be just below lr0", ends[k].W, first);
    }

    /* W = 0: iteration 0 is already one scheduler step in (method.md 5.1) */
    {
        LRSchedule s = cosine(1e-3, 0.0, 9000000, 0, 1.0);
        const double pi = 3.14159265358979323846;
        CHECK(lr_at(&s, 0) == 0.5 * 1e-3 * (1 + cos(pi * 1 / 9e6)) && lr_at(&s, 0) < 1e-3,
              "cosine: lr(0) = %.17g, want 0.5*lr0*(1+cos(pi/T))", lr_at(&s, 0));
        CHECK(close_rel(lr_at(&s, 4499999), 0.5e-3, 1e-15, 0.0), "cosine: lr(I/2-1) = %.17g",
              lr_at(&s, 4499999));
    }

    /* monotone non-increasing over a whole nca = 1 run */
    {
        LRSchedule s = cosine(0.1, 1e-3, 1000, 25, 1.0);
        int ok = 1;
        for (long i = 1; i < 1000 && ok; i++) ok = lr_at(&s, i) <= lr_at(&s, i - 1);
        CHECK(ok, "cosine nca=1 not monotone non-increasing");
    }

    /* num_cyclic_annealing = 2: bottom at I/2 - 1, then rising back to lr0 */
    const long Is[] = {1000, 9000000};
    for (size_t k = 0; k < 2; k++) {
        const long I = Is[k];
        LRSchedule s = cosine(1e-3, 0.0, I, 0, 2.0);
        CHECK(lr_at(&s, I / 2 - 1) == 0.0, "nca=2 I=%ld: lr(I/2-1) = %.17g, want eta_min", I,
              lr_at(&s, I / 2 - 1));
        CHECK(lr_at(&s, I / 2) > 0.0 && lr_at(&s, I / 2 + 1) > lr_at(&s, I / 2),
              "nca=2 I=%ld: lr does not rise after the minimum", I);
        CHECK(lr_at(&s, I / 2 - 2) > 0.0 && lr_at(&s, I / 2 - 2) == lr_at(&s, I / 2),
              "nca=2 I=%ld: lr not symmetric about the minimum", I);
        CHECK(close_rel(lr_at(&s, I - 1), 1e-3, 1e-15, 0.0),
              "nca=2 I=%ld: lr(I-1) = %.17g, want lr0 (a full period)", I, lr_at(&s, I - 1));
        /* strictly increasing over the second half (checked densely for the small run,
         * on a stride for the long one) */
        const long stride = I > 100000 ? 9973 : 1;
        int ok = 1;
        for (long i = I / 2 - 1 + stride; i < I && ok; i += stride)
            ok = lr_at(&s, i) > lr_at(&s, i - stride);
        CHECK(ok, "nca=2 I=%ld: lr not increasing over the second half", I);
    }

    /* eta_min is the floor for nca = 1, and also the minimum reached with nca = 2 */
    {
        LRSchedule s = cosine(0.2, 0.01, 400, 0, 2.0);
        CHECK(lr_at(&s, 199) == 0.01, "nca=2 eta_min 0.01: lr(I/2-1) = %.17g", lr_at(&s, 199));
        double lo = 1.0;
        for (long i = 0; i < 400; i++) lo = fmin(lo, lr_at(&s, i));
        CHECK(lo == 0.01, "nca=2: min over run %.17g, want eta_min", lo);
    }
}

static void test_step_and_constant_properties(void) {
    LRSchedule s = {LR_STEP, 0.01, 0.0, 0, 0, 1.0, 6, 0.1, 0};
    CHECK(lr_at(&s, 0) == 0.01 && lr_at(&s, 5) == 0.01, "step: first period not at lr0");
    CHECK(lr_at(&s, 6) == 0.01 * 0.1 && lr_at(&s, 11) == 0.01 * 0.1,
          "step: second period %.17g, want lr0*gamma", lr_at(&s, 6));
    CHECK(close_rel(lr_at(&s, 12), 1e-4, 1e-15, 0.0) && close_rel(lr_at(&s, 24), 1e-6, 1e-15, 0.0),
          "step: lr(12) = %.17g, lr(24) = %.17g", lr_at(&s, 12), lr_at(&s, 24));

    LRSchedule c = {LR_CONSTANT, 0.05, 0.0, 100, 0, 1.0, 0, 0.0, 0};
    CHECK(lr_at(&c, 0) == 0.05 && lr_at(&c, 99) == 0.05 && lr_at(&c, 123456789) == 0.05,
          "constant schedule not constant");
}

static void test_linear_warmup(void) {
    /* constant: (i+1)/w * lr0 for i < w, lr0 afterwards */
    LRSchedule c = {LR_CONSTANT, 0.1, 0.0, 1000, 0, 1.0, 0, 0.0, 10};
    CHECK(close_rel(lr_at(&c, 0), 0.01, 1e-15, 0.0), "warm-up: lr(0) = %.17g, want lr0/10",
          lr_at(&c, 0));
    CHECK(close_rel(lr_at(&c, 4), 0.05, 1e-15, 0.0), "warm-up: lr(4) = %.17g, want lr0/2",
          lr_at(&c, 4));
    CHECK(lr_at(&c, 9) == 0.1 && lr_at(&c, 10) == 0.1 && lr_at(&c, 500) == 0.1,
          "warm-up: full lr0 not reached at i = w-1");
    int ok = 1;
    for (long i = 1; i < 10 && ok; i++) ok = lr_at(&c, i) > lr_at(&c, i - 1);
    CHECK(ok, "warm-up ramp not increasing");

    /* it multiplies any schedule and disappears after warmup_iters */
    LRSchedule cs = cosine(1e-3, 0.0, 5000, 10, 1.0), cw = cs;
    cw.warmup_iters = 100;
    ok = 1;
    for (long i = 0; i < 5000 && ok; i++) {
        double want = lr_at(&cs, i);
        if (i < 100) want *= (double)(i + 1) / 100.0;
        ok = close_rel(lr_at(&cw, i), want, 1e-15, 0.0);
        if (!ok) fprintf(stderr, "  warm-up x cosine i=%ld: %.17g vs %.17g\n", i, lr_at(&cw, i), want);
    }
    CHECK(ok, "warm-up does not multiply the cosine schedule");

    LRSchedule st = {LR_STEP, 0.01, 0.0, 0, 0, 1.0, 6, 0.1, 4};
    CHECK(close_rel(lr_at(&st, 1), 0.005, 1e-15, 0.0) && lr_at(&st, 4) == 0.01 &&
              lr_at(&st, 6) == 0.01 * 0.1,
          "warm-up x step: lr(1) = %.17g", lr_at(&st, 1));
}

int main(void) {
    printf("golden: torch %s\n", OG_TORCH_VERSION);
    test_optimizers();
    test_cosine_golden();
    test_step_golden();
    test_cosine_properties();
    test_step_and_constant_properties();
    test_linear_warmup();
    return tu_finish("optim_schedule");
}
