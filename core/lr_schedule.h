/* Learning-rate schedules as pure functions of the 0-based iteration index.
 *
 * cosine: the reference code steps torch's CosineAnnealingLR once per iteration
 *   BEFORE the forward pass, so iteration i trains with
 *     lr(i) = eta_min + (lr0 - eta_min) * (1 + cos(pi * (i + 1 - 4W) / T)) / 2,
 *     T = (I - 4W) / num_cyclic_annealing   (method.md 2.3, 5.1)
 *   (PyTorch's closed form; 2T-periodic, so T < I makes the lr rise again).
 *   During warm-up (i < 4W) the scheduler is not stepped and lr = lr0.
 * step: lr0 * gamma^floor(i / step_size)
 * constant: lr0
 * linear warm-up (warmup_iters > 0, any schedule): lr is multiplied by
 *   (i + 1) / warmup_iters while i < warmup_iters. (Distinct from the
 *   reference code's unused `--warmup W`, which is `cyclic_warmup` here.) */
#ifndef CBNN_LR_SCHEDULE_H
#define CBNN_LR_SCHEDULE_H

typedef enum { LR_CONSTANT = 0, LR_COSINE, LR_STEP } LRKind;

typedef struct {
    LRKind kind;
    double lr0;
    double eta_min;            /* cosine floor */
    long total_iters;          /* I */
    long cyclic_warmup;        /* W of the reference code: 4W iterations at lr0, scheduler not stepped */
    double num_cyclic_annealing; /* divides the cosine horizon */
    long step_size;            /* step decay period (iterations) */
    double gamma;              /* step decay factor */
    long warmup_iters;         /* linear warm-up */
} LRSchedule;

double lr_at(const LRSchedule *s, long iter);

#endif
