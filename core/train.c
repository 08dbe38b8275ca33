/* The training loop: shuffle per epoch, augment, forward, backward, optimizer
 * step, periodic evaluation, per-step logging. Everything random comes from
 * the run's seeded streams, so a run is fixed by its config. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "lr_schedule.h"
#include "model.h"
#include "optim.h"
#include "progress.h"
#include "rng.h"

volatile int train_stop_requested = 0;

long train_total_iterations(const RunConfig *c, long n_train) {
    if (c->iterations > 0) return c->iterations;
    long per_epoch = n_train / c->batch_size;
    return (long)ceil(c->epochs * (double)per_epoch);
}

void evaluate(Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *top1, double *loss) {
    if (n <= 0 || n > ds->n) n = ds->n;
    if (batch > m->max_batch) batch = m->max_batch;
    size_t chw = (size_t)ds->channels * ds->height * ds->width;
    real *x = malloc((size_t)batch * chw * sizeof *x);
    int32_t *y = malloc((size_t)batch * sizeof *y), *idx = malloc((size_t)batch * sizeof *idx);
    long correct = 0;
    double loss_sum = 0.0;
    for (long start = 0; start < n; start += batch) {
        int B = (int)((n - start) < batch ? (n - start) : batch);
        for (int b = 0; b < B; b++) idx[b] = (int32_t)(start + b);
        dataset_batch(ds, idx, B, x, y, aug, 0, 0, 0);
        loss_sum += model_forward(m, x, y, B, 0) * B;
        correct += model_correct(m, y, B);
    }
    *top1 = 100.0 * (double)correct / (double)n;
    *loss = loss_sum / (double)n;
    free(x);
    free(y);
    free(idx);
}

static void build_lr_schedule(LRSchedule *s, const RunConfig *c, long total) {
    memset(s, 0, sizeof *s);
    s->kind = !strcmp(c->lr_schedule, "cosine") ? LR_COSINE : !strcmp(c->lr_schedule, "step") ? LR_STEP : LR_CONSTANT;
    s->lr0 = c->lr;
    s->eta_min = c->eta_min;
    s->total_iters = total;
    s->cyclic_warmup = c->cyclic_warmup;
    s->num_cyclic_annealing = c->num_cyclic_annealing;
    s->step_size = c->step_size;
    s->gamma = c->gamma;
    s->warmup_iters = c->warmup_iters;
}

int train_run(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
              FILE *progress, TrainResult *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    res->status = -1;
    double t_start = now_seconds();
    engine_set_threads(c->threads);

    Model m;
    ConvKind binary_kind = CONV_FP32; /* model.conv: only "fp32" until the method issue */
    if (model_build(&m, c->arch, binary_kind, train->channels, train->height, train->width, train->num_classes, err,
                    errlen))
        return -1;
    const int B = c->batch_size;
    const long n = train->n;
    const long per_epoch = n / B;
    if (per_epoch < 1) {
        snprintf(err, errlen, "train.batch_size %d is larger than the training set (%ld images)", B, n);
        model_free(&m);
        return -1;
    }
    int max_batch = c->eval_batch_size > B ? c->eval_batch_size : B;
    if (model_alloc(&m, max_batch)) {
        snprintf(err, errlen, "out of memory allocating %s for batch %d", c->arch, max_batch);
        model_free(&m);
        return -1;
    }
    model_init_params(&m, c->seed);
    const long total = train_total_iterations(c, n);
    const long eval_every = c->eval_interval > 0 ? c->eval_interval : per_epoch;
    const long log_every = c->log_interval > 0 ? c->log_interval : 50;
    LRSchedule sched;
    build_lr_schedule(&sched, c, total);
    AdamWConfig adamw = {c->beta1, c->beta2, c->eps, c->weight_decay};
    SGDConfig sgd = {c->momentum, c->dampening, c->weight_decay, c->nesterov};
    const int use_adamw = !strcmp(c->optimizer, "adamw");
    Augment aug = {c->aug_flip, c->aug_crop_pad, c->normalize};
    Augment eval_aug = {0, 0, c->normalize};

    if (progress) {
        fprintf(progress, "== run %s: %s on %s (%ld train / %ld test images), %ld iterations = %.2f epochs of %ld, "
                "batch %d, %s lr %.3g (%s), %d threads\n",
                run_name, c->arch, train->name, n, test->n, total, (double)total / per_epoch, per_epoch, B,
                c->optimizer, c->lr, c->lr_schedule, engine_threads());
        model_summary(&m, progress);
    }

    size_t chw = (size_t)train->channels * train->height * train->width;
    real *x = malloc((size_t)B * chw * sizeof *x);
    int32_t *y = malloc((size_t)B * sizeof *y), *perm = malloc((size_t)n * sizeof *perm);
    if (!x || !y || !perm) {
        snprintf(err, errlen, "out of memory for the input batch");
        goto fail;
    }

    long cur_epoch = -1, i = 0, window_correct = 0, window_n = 0;
    double window_loss = 0.0, train_time = 0.0, best = -1.0, top1 = 0.0, tloss = 0.0;
    for (i = 0; i < total && !train_stop_requested; i++) {
        double t0 = now_seconds();
        long epoch = i / per_epoch, pos = i % per_epoch;
        if (epoch != cur_epoch) {
            Rng r = rng_stream(c->seed, RNG_SHUFFLE, (uint64_t)epoch, 0);
            rng_permutation(&r, perm, n);
            cur_epoch = epoch;
        }
        dataset_batch(train, perm + pos * B, B, x, y, &aug, 1, c->seed, epoch);
        double lr = lr_at(&sched, i);
        double loss = model_forward(&m, x, y, B, 1);
        if (!isfinite(loss)) {
            snprintf(err, errlen, "loss is %g at iteration %ld (lr %.3g): training diverged", loss, i, lr);
            goto fail;
        }
        window_correct += model_correct(&m, y, B);
        model_backward(&m);
        if (use_adamw) adamw_step(m.params, m.grads, m.opt_m, m.opt_v, m.n_params, lr, &adamw, i + 1);
        else sgd_step(m.params, m.grads, m.opt_m, m.n_params, lr, &sgd, i + 1);
        train_time += now_seconds() - t0;
        window_loss += loss;
        window_n++;
        if (log && runlog_train(log, i + 1, loss, lr, now_seconds() - t_start)) {
            snprintf(err, errlen, "writing the results file failed at iteration %ld", i + 1);
            goto fail;
        }
        if (progress && ((i + 1) % log_every == 0 || i + 1 == total)) {
            double ips = (double)(i + 1) * B / train_time;
            char eta[32];
            format_duration(eta, sizeof eta, (double)(total - i - 1) * B / ips);
            fprintf(progress, "[%s] step %ld/%ld (%.1f%%) epoch %.2f | loss %.4f | train acc %.2f%% | lr %.3e | "
                    "%.0f img/s | ETA %s\n",
                    run_name, i + 1, total, 100.0 * (i + 1) / total, (double)(i + 1) / per_epoch,
                    window_loss / window_n, 100.0 * window_correct / ((double)window_n * B), lr, ips, eta);
            fflush(progress);
            window_loss = 0.0;
            window_correct = window_n = 0;
        }
        if ((i + 1) % eval_every == 0 || i + 1 == total) {
            evaluate(&m, test, 0, c->eval_batch_size, &eval_aug, &top1, &tloss);
            if (top1 > best) best = top1;
            if (log) runlog_eval(log, i + 1, top1, tloss);
            if (progress) {
                fprintf(progress, "[%s] eval @ step %ld: top-1 %.2f%% | loss %.4f | best %.2f%%\n", run_name, i + 1,
                        top1, tloss, best);
                fflush(progress);
            }
        }
    }
    res->iterations = i;
    res->final_top1 = top1;
    res->best_top1 = best < 0 ? 0 : best;
    res->final_loss = tloss;
    res->wall_time_s = now_seconds() - t_start;
    res->images_per_s = train_time > 0 ? (double)i * B / train_time : 0;
    res->status = i == total ? 0 : 1;
    free(x);
    free(y);
    free(perm);
    model_free(&m);
    return res->status;
fail:
    res->wall_time_s = now_seconds() - t_start;
    free(x);
    free(y);
    free(perm);
    model_free(&m);
    return -1;
}
