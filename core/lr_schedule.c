/* Learning-rate schedules (contract and formulas in lr_schedule.h).
 *
 * lr_at() is a pure function of the iteration, so a resumed run, a test and
 * the training loop all see the same value without carrying scheduler state.
 * For the cosine schedule this means using PyTorch's closed form rather than
 * the recursive update CosineAnnealingLR.step() actually applies; the two
 * agree to rounding (tests/test_optim.c checks this against values obtained
 * by stepping torch's scheduler 9,000,000 times). */
#include "lr_schedule.h"

#include <math.h>

static const double kPi = 3.14159265358979323846; /* rounds to Python's math.pi */

/* The reference loop (method.md 2.3/5.1) leaves the scheduler untouched for
 * 4W iterations, then calls step() before every forward pass: iteration i
 * trains with the scheduler's last_epoch = i + 1 - 4W. */
static double cosine_lr(const LRSchedule *s, long iter) {
    const long hold = 4 * s->cyclic_warmup;
    if (iter < hold) return s->lr0;
    /* T_max is a float in the reference code ((I - 4W) / num_cyclic_annealing,
     * Python true division), so it need not be an integer. */
    const double t_max = (double)(s->total_iters - hold) / s->num_cyclic_annealing;
    /* A degenerate horizon would give NaN/inf; the configuration layer should
     * reject it, but a constant lr is the least surprising fallback. */
    if (!(t_max > 0.0) || isinf(t_max)) return s->lr0;
    const double last_epoch = (double)(iter + 1 - hold);
    /* Same association as torch's _get_closed_form_lr: (pi * epoch) / T_max.
     * No wrapping of the phase: torch's schedule is 2*T_max-periodic and keeps
     * rising after T_max, which num_cyclic_annealing > 1 relies on. */
    return s->eta_min + (s->lr0 - s->eta_min) * (1.0 + cos(kPi * last_epoch / t_max)) / 2.0;
}

/* StepLR closed form: base_lr * gamma ** (last_epoch // step_size), with
 * last_epoch = i (the scheduler stepped after each iteration). */
static double step_lr(const LRSchedule *s, long iter) {
    if (s->step_size <= 0) return s->lr0;
    const long k = iter / s->step_size; /* iter >= 0 here, so this is floor */
    return s->lr0 * pow(s->gamma, (double)k);
}

double lr_at(const LRSchedule *s, long iter) {
    if (iter < 0) iter = 0;
    double lr;
    switch (s->kind) {
    case LR_COSINE:
        lr = cosine_lr(s, iter);
        break;
    case LR_STEP:
        lr = step_lr(s, iter);
        break;
    case LR_CONSTANT:
    default:
        lr = s->lr0;
        break;
    }
    /* Linear warm-up multiplies whatever the schedule gives, so that the
     * first iteration trains at lr/warmup_iters and iteration warmup_iters-1
     * at the full value. */
    if (s->warmup_iters > 0 && iter < s->warmup_iters)
        lr *= (double)(iter + 1) / (double)s->warmup_iters;
    return lr;
}
