/* The training loop (experiments/train_run.h): setup, resume, step, progress,
 * evaluation, checkpoint and the run's record, each its own function over one
 * Run. Everything random comes from the run's seeded streams, so a run is
 * fixed by its options. */
#include "train_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "classify.h"
#include "cost.h"
#include "loader.h"
#include "model.h"
#include "optim.h"
#include "precision.h"
#include "progress.h"
#include "rng.h"
#include "run_record.h"

volatile int train_stop_requested = 0;

typedef struct {
    const TrainOptions *o;
    const char *name;
    const Dataset *train, *test;
    RunLog *log;
    const TrainControl *ctl;
    FILE *progress;
    Model m;
    Task task;
    LayerCost *lcost;
    int32_t *perm;              /* the data order of the current epoch */
    long cur_epoch;
    Loader *ld;                 /* background batches (data.loader_workers > 0) */
    RunState st;                /* what a checkpoint keeps (experiments/run_record.h) */
    double t_start;
    /* the progress window since the last line */
    long window_n;
    double window_loss, window_correct;
    double last_lr;             /* of the last step, for the progress line */
    PrecBits last_bits;
} Run;

/* the model, the task and the buffers; prints the run's header */
static int run_setup(Run *r, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    Model *m = &r->m;
    if (model_build(m, o->arch, o->binary_kind, r->train->channels, r->train->height, r->train->width,
                    r->train->num_classes, err, errlen))
        return -1;
    m->bconv = o->bconv;
    m->seed = o->seed;
    /* activations and what backward saves are sized for the training batch;
     * evaluation runs in batches of at most that size (task_evaluate clamps) */
    if (model_alloc(m, o->batch)) {
        snprintf(err, errlen, "out of memory allocating %s for batch %d", o->arch, o->batch);
        return -1;
    }
    model_init_params(m, o->seed);
    r->lcost = calloc((size_t)m->n_layers, sizeof *r->lcost);
    r->perm = malloc((size_t)r->train->n * sizeof *r->perm);
    if (!r->lcost || !r->perm || run_state_init(&r->st, m)) {
        snprintf(err, errlen, "out of memory for the loop's state");
        return -1;
    }
    layer_costs_init(r->lcost, m);
    if (task_setup(&r->task, r->task.kind, m, r->train, o->batch, err, errlen)) return -1;
    r->cur_epoch = -1;
    if (r->progress) {
        fprintf(r->progress, "== run %s: %s (%s convs) on %s (%ld train / %ld test images), %ld iterations = %.2f "
                "epochs of %ld, batch %d, %s lr %.3g (%s), precision %s, %d threads\n",
                r->name, o->arch, o->conv_name, r->train->name, r->train->n, r->test->n, o->total,
                (double)o->total / o->per_epoch, o->per_epoch, o->batch, o->optim_name, o->lr.lr0, o->lr_name,
                o->prec_name, engine_threads());
        model_summary(m, r->progress);
    }
    return 0;
}

/* continue from the run's checkpoint if it has one; drop the rows logged after it */
static int run_resume(Run *r, TrainResult *res, char *err, size_t errlen) {
    if (!r->log || !r->ctl->resume) return 0;
    long step = 0;
    int got = run_checkpoint_load(r->log, &r->m, &r->st, r->lcost, &step, err, errlen);
    if (got < 0) return -1;
    if (got == 1) {
        if (run_state_check(&r->st, step, r->o->seed, r->o->total, r->o->per_epoch)) {
            snprintf(err, errlen, "the checkpoint of run %s (step %ld) does not belong to this configuration",
                     r->name, step);
            return -1;
        }
        res->resumed_from = step;
        if (r->progress)
            fprintf(r->progress, "[%s] resuming from the checkpoint at step %ld/%ld\n", r->name, step, r->o->total);
    }
    /* rows logged after the checkpoint (or by a start that never made one) go */
    if (runlog_truncate(r->log, r->st.step)) {
        snprintf(err, errlen, "truncating the log of run %s to its checkpoint failed", r->name);
        return -1;
    }
    return 0;
}

/* the batch of step i: from the loader, or the epoch's permutation */
static int run_batch(Run *r, long i, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    BatchSource src = {.ds = r->train, .n = o->batch, .aug = &o->aug, .train = 1, .seed = o->seed,
                       .loader = r->ld, .step = i};
    if (!r->ld) {
        const long epoch = i / o->per_epoch, pos = i % o->per_epoch;
        if (epoch != r->cur_epoch) {
            Rng g = rng_stream(o->seed, RNG_SHUFFLE, (uint64_t)epoch, 0);
            rng_permutation(&g, r->perm, r->train->n);
            r->cur_epoch = epoch;
        }
        src.idx = r->perm + pos * o->batch;
        src.epoch = epoch;
    }
    return r->task.kind->batch(&r->task, &src, err, errlen);
}

/* the trainable parameters [0, n_trainable): frozen layers' come after them */
static void optimizer_step(const TrainOptions *o, Model *m, double lr, long t) {
    if (o->optim == OPTIM_ADAMW) adamw_step(m->params, m->grads, m->opt_m, m->opt_v, m->n_trainable, lr, &o->adamw, t);
    else sgd_step(m->params, m->grads, m->opt_m, m->n_trainable, lr, &o->sgd, t);
}

/* one training step: batch, forward and losses, backward, optimizer; its row */
static int run_step(Run *r, long i, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    Model *m = &r->m;
    const double t0 = now_seconds();
    if (run_batch(r, i, err, errlen)) return -1;
    TrainRow row = {.step = i + 1, .lr = lr_at(&o->lr, i)};
    const PrecBits pb = prec_at(&o->prec, i);
    m->bits = pb.bits;
    m->grad_bits = pb.grad_bits;
    m->step = i;
    if (r->task.kind->forward(&r->task, m, o->batch, 1, &row.loss, err, errlen)) return -1;
    if (!isfinite(row.loss)) {
        snprintf(err, errlen, "loss is %g at iteration %ld (lr %.3g): training diverged", row.loss, i, row.lr);
        return -1;
    }
    TaskMetric step_metric = {.n = o->batch};
    r->task.kind->metric_add(&r->task, m, o->batch, &step_metric);
    model_backward_outputs(m);
    optimizer_step(o, m, row.lr, i + 1);
    r->st.train_time += now_seconds() - t0;
    /* the cost ratio counts the quantized convs only; a run without any
     * (model.conv = fp32) is a full-precision step whatever precision says */
    row.bits = pb.bits;
    row.grad_bits = pb.grad_bits;
    row.cost_ratio = o->binary_kind == CONV_BINARY ? prec_cost_ratio(pb.bits, pb.grad_bits) : 1.0;
    prec_cost_add(&r->st.cost_mean, row.cost_ratio);
    layer_costs_add(r->lcost, m->n_layers, o->batch, pb.bits, pb.grad_bits);
    r->task.kind->metric_values(&step_metric, &row.metric);
    r->window_loss += row.loss;
    r->window_correct += step_metric.sums[0];
    r->window_n++;
    row.time_s = r->st.wall_before + now_seconds() - r->t_start;
    if (r->log && runlog_train_row(r->log, &row)) {
        snprintf(err, errlen, "writing the results file failed at iteration %ld", i + 1);
        return -1;
    }
    r->last_lr = row.lr;
    r->last_bits = pb;
    return 0;
}

/* the progress line after step i (every log_every steps and at the end) */
static void run_progress(Run *r, long i) {
    const TrainOptions *o = r->o;
    if (!r->progress || ((i + 1) % o->log_every != 0 && i + 1 != o->total)) return;
    const double ips = (double)(i + 1) * o->batch / r->st.train_time;
    char eta[32], grid[64] = "", which[48] = "";
    format_duration(eta, sizeof eta, (double)(o->total - i - 1) * o->batch / ips);
    if (r->ctl->n_runs > 0) {
        char geta[32];
        /* the later runs are assumed to cost what this one does per image */
        format_duration(geta, sizeof geta, ((double)(o->total - i - 1) + r->ctl->grid_iters_after) * o->batch / ips);
        snprintf(grid, sizeof grid, " | grid ETA %s", geta);
        snprintf(which, sizeof which, "run %d/%d ", r->ctl->run_index, r->ctl->n_runs);
    }
    fprintf(r->progress, "[%s%s] step %ld/%ld (%.1f%%) epoch %.2f | loss %.4f | train acc %.2f%% | lr %.3e | "
            "bits %g/%g | cr %.4f | %.0f img/s | ETA %s%s\n",
            which, r->name, i + 1, o->total, 100.0 * (i + 1) / o->total, (double)(i + 1) / o->per_epoch,
            r->window_loss / r->window_n, 100.0 * r->window_correct / ((double)r->window_n * o->batch), r->last_lr,
            r->last_bits.bits, r->last_bits.grad_bits, prec_cost_mean(&r->st.cost_mean), ips, eta, grid);
    fflush(r->progress);
    r->window_loss = 0.0;
    r->window_correct = 0.0;
    r->window_n = 0;
}

/* the test evaluation after step i (every eval_every steps and at the end),
 * at the evaluation precision (method.md 5.4) */
static int run_evaluate(Run *r, long i, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    if ((i + 1) % o->eval_every != 0 && i + 1 != o->total) return 0;
    r->m.bits = prec_eval_bits(&o->prec, &o->prec_eval, i + 1);
    if (task_evaluate(&r->task, &r->m, r->test, 0, o->eval_batch, &o->eval_aug, &r->st.metric, &r->st.loss, err,
                      errlen))
        return -1;
    if (r->st.metric > r->st.best) r->st.best = r->st.metric;
    if (r->log) runlog_eval(r->log, i + 1, r->st.metric, r->st.loss);
    if (r->progress) {
        fprintf(r->progress, "[%s] eval @ step %ld (%g bits): top-1 %.2f%% | loss %.4f | best %.2f%%\n", r->name,
                i + 1, r->m.bits, r->st.metric, r->st.loss, r->st.best);
        fflush(r->progress);
    }
    return 0;
}

/* a checkpoint after step i when one is due (every checkpoint_every steps, at
 * the end, on a stop); the final one is committed by the caller with the
 * run's end status, intermediate ones here */
static int run_checkpoint(Run *r, long i, int stop, char *err, size_t errlen) {
    const long every = r->ctl->checkpoint_every;
    if (!r->log || !(stop || i + 1 == r->o->total || (every > 0 && (i + 1) % every == 0))) return 0;
    r->st.step = i + 1;
    const double wall_before = r->st.wall_before;
    r->st.wall_before = wall_before + now_seconds() - r->t_start; /* the total so far goes in the file */
    const int rc = run_checkpoint_save(r->log, &r->m, &r->st, r->lcost, r->o->seed, r->o->per_epoch);
    r->st.wall_before = wall_before;
    if (rc || (i + 1 < r->o->total && runlog_commit(r->log))) {
        snprintf(err, errlen, "writing the checkpoint at iteration %ld failed (the results file keeps the previous "
                 "one)", i + 1);
        return -1;
    }
    return 0;
}

/* the run's numbers after `done` iterations */
static void run_result(const Run *r, long done, TrainResult *res) {
    const TrainOptions *o = r->o;
    res->iterations = done;
    res->final_top1 = r->st.metric;
    res->best_top1 = r->st.best < 0 ? 0 : r->st.best;
    res->final_loss = r->st.loss;
    res->wall_time_s = r->st.wall_before + now_seconds() - r->t_start;
    res->images_per_s = r->st.train_time > 0 ? (double)done * o->batch / r->st.train_time : 0;
    res->mean_cost_ratio = prec_cost_mean(&r->st.cost_mean);
    for (int l = 0; l < r->m.n_layers; l++) {
        const LayerCost *c = &r->lcost[l];
        res->bit_macs += c->weighted.fwd + c->weighted.err + c->weighted.wgrad;
        res->fp32_macs += (double)done * o->batch * (c->raw.fwd + c->raw.err + c->raw.wgrad);
    }
    res->status = done == o->total ? 0 : 1;
}

static void run_teardown(Run *r) {
    loader_stop(r->ld);
    task_release(&r->task);
    run_state_free(&r->st);
    free(r->lcost);
    free(r->perm);
    model_free(&r->m);
}

/* steps from the resumed one to the end or a stop; the iterations done, or -1 */
static long run_loop(Run *r, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    const long i0 = r->st.step;
    if (o->loader_workers > 0 && i0 < o->total) {
        /* the same batches, decoded ahead by worker threads (datasets/loader.h) */
        r->ld = loader_start(r->train, o->batch, &o->aug, o->seed, i0, o->total, o->loader_workers, 3, err, errlen);
        if (!r->ld) return -1;
    }
    for (long i = i0; i < o->total; i++) {
        if (run_step(r, i, err, errlen)) return -1;
        run_progress(r, i);
        if (run_evaluate(r, i, err, errlen)) return -1;
        const int stop = train_stop_requested && i + 1 < o->total;
        if (run_checkpoint(r, i, stop, err, errlen)) return -1;
        if (stop) return i + 1;
    }
    return o->total > i0 ? o->total : i0;
}

int train_run_task(const TrainOptions *o, const TaskKind *task, const char *run_name, const Dataset *train,
                   const Dataset *test, RunLog *log, const TrainControl *ctl, FILE *progress, TrainResult *res,
                   char *err, size_t errlen) {
    static const TrainControl lone;
    Run r = {.o = o, .name = run_name, .train = train, .test = test, .log = log, .ctl = ctl ? ctl : &lone,
             .progress = progress, .task = {.kind = task}, .t_start = now_seconds()};
    memset(res, 0, sizeof *res);
    res->status = -1;
    engine_set_threads(o->threads);
    long done = -1;
    if (run_setup(&r, err, errlen) == 0 && run_resume(&r, res, err, errlen) == 0) done = run_loop(&r, err, errlen);
    if (done < 0) {
        res->wall_time_s = r.st.wall_before + now_seconds() - r.t_start;
        run_teardown(&r);
        return -1;
    }
    run_result(&r, done, res);
    loader_stop(r.ld);
    r.ld = NULL;
    if (log && run_record_results(log, &r.m, r.lcost, res)) {
        snprintf(err, errlen, "writing the cost and summary tables failed");
        res->status = -1;
    }
    run_teardown(&r);
    return res->status;
}

int train_run_ctl(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
                  const TrainControl *ctl, FILE *progress, TrainResult *res, char *err, size_t errlen) {
    TrainOptions o;
    memset(res, 0, sizeof *res);
    res->status = -1;
    if (train_options_from_config(c, train->n, &o, err, errlen)) return -1;
    return train_run_task(&o, &TASK_CLASSIFY, run_name, train, test, log, ctl, progress, res, err, errlen);
}

int train_run(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
              FILE *progress, TrainResult *res, char *err, size_t errlen) {
    return train_run_ctl(c, run_name, train, test, log, NULL, progress, res, err, errlen);
}
