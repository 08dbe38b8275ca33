/* The training loop (experiments/train_run.h): setup, resume, step, progress,
 * evaluation, checkpoint and the run's record, each its own function over one
 * Run. Everything random comes from the run's seeded streams, so a run is
 * fixed by its options. */
#include "train_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    const Dataset *val;         /* the validation split (TrainControl.val), or NULL: periodic evaluations on test */
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
    double train_bytes, train_bytes_fp32; /* the training arenas of m and of its fp32 twin */
    /* the progress window since the last line */
    long window_n;
    double window_loss, window_correct;
    double last_lr;             /* of the last step, for the progress line */
    PrecBits last_bits;
    /* the ranks of the run (issue 15; experiments/train_run.h) */
    const DistComm *group;      /* NULL: this process alone */
    int R, grank, rows;         /* ranks, this one's index, its rows of each batch */
    int has_log;                /* group rank 0 holds a results log (checkpoints are due) */
    int stop_now;               /* the last step's reduction asked to stop (R > 1) */
    char pending[400];          /* a results-file write that failed on this rank, for the next reduction */
    long fault_step;            /* CBNN_FAULT_EXIT_AT_STEP here (0: none) */
    char pfx[96];               /* "cyclebnn[r/N host] " when the session has several ranks, else "" */
} Run;

/* The size of one message the ranks exchange when one of them failed. */
enum { MSG_LEN = 400 };

/* Every rank's message gathered (after a reduction said some rank failed):
 * err becomes the first failing rank's, named, unless this rank failed
 * itself (its own message stays). mine: this rank's message or "". */
static void group_fail_message(const Run *r, const char *mine, char *err, size_t errlen) {
    char own[MSG_LEN], *all = malloc((size_t)r->R * MSG_LEN);
    if (!all) dist_abort(r->group, 3); /* the others are in the gather: it cannot be left */
    snprintf(own, sizeof own, "%s", mine);
    dist_allgather(r->group, own, MSG_LEN, all);
    if (!own[0])
        for (int q = 0; q < r->R; q++)
            if (all[(size_t)q * MSG_LEN]) {
                snprintf(err, errlen, "rank %d of the run failed: %.*s", q, MSG_LEN, all + (size_t)q * MSG_LEN);
                break;
            }
    free(all);
}

/* The training arenas of a twin of the run's model planned for the run's
 * whole batch in one process (never allocated), its convs `kind` and
 * train.memory `lean`: the run's own settings give its own net, CONV_FP32 and
 * fast its fp32 twin (the issue-17 memory ratio's denominator). Planned at
 * the global batch, not this rank's rows, so that the recorded numbers do not
 * depend on the rank count; NaN if it cannot be planned. */
static double twin_train_bytes(const Run *r, const TrainOptions *o, ConvKind kind, int lean) {
    Model twin;
    char err[200];
    double bytes = NAN;
    if (model_build(&twin, o->arch, kind, r->train->channels, r->train->height, r->train->width,
                    r->train->num_classes, err, sizeof err) == 0) {
        twin.bconv = o->bconv;
        twin.memory_lean = lean;
        if (model_layout(&twin, o->batch) == 0) bytes = (double)model_train_bytes(&twin);
    }
    model_free(&twin);
    return bytes;
}

/* the model, the task and the buffers; prints the run's header */
static int run_setup(Run *r, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    Model *m = &r->m;
    if (model_build(m, o->arch, o->binary_kind, r->train->channels, r->train->height, r->train->width,
                    r->train->num_classes, err, errlen))
        return -1;
    m->bconv = o->bconv;
    m->seed = o->seed;
    m->memory_lean = o->memory_lean;
    m->fp32_conv = o->fp32_conv;
    /* the shard plan: train.shards over the run's ranks (R must divide S) */
    const int S = o->shards > 0 ? o->shards : 1;
    ShardPlan plan = shard_plan_single();
    if ((S > 1 || r->R > 1) && shard_plan_make(&plan, S, o->batch, r->group, err, errlen)) return -1;
    r->rows = o->batch / r->R;
    /* activations and what backward saves are sized for this rank's rows of
     * the training batch; evaluation runs in batches of at most the global
     * batch (task_evaluate clamps; a rank runs them in pieces) */
    if (model_alloc(m, r->rows)) {
        snprintf(err, errlen, "out of memory allocating %s for batch %d", o->arch, r->rows);
        return -1;
    }
    if (model_set_shards(m, &plan, err, errlen)) return -1;
    model_init_params(m, o->seed);
    r->train_bytes = twin_train_bytes(r, o, o->binary_kind, o->memory_lean);
    r->train_bytes_fp32 = twin_train_bytes(r, o, CONV_FP32, 0);
    r->lcost = calloc((size_t)m->n_layers, sizeof *r->lcost);
    r->perm = malloc((size_t)r->train->n * sizeof *r->perm);
    if (!r->lcost || !r->perm || run_state_init(&r->st, m) || (r->val && run_state_enable_selection(&r->st, m))) {
        snprintf(err, errlen, "out of memory for the loop's state");
        return -1;
    }
    layer_costs_init(r->lcost, m);
    /* one process: the batch; a rank: its rows, or the one-process eval batch */
    int task_rows = o->batch;
    if (r->R > 1) {
        const int eval_rows = o->eval_batch < o->batch ? o->eval_batch : o->batch;
        task_rows = eval_rows > r->rows ? eval_rows : r->rows;
    }
    if (r->R > 1 && !r->task.kind->blank) {
        snprintf(err, errlen, "the %s task cannot train over several ranks (no blank batch)", r->task.kind->name);
        return -1;
    }
    if (task_setup(&r->task, r->task.kind, m, r->train, task_rows, err, errlen)) return -1;
    r->cur_epoch = -1;
    if (r->progress) {
        fprintf(r->progress,
                "%s== run %s: %s (%s convs) on %s (%ld train / %ld validation / %ld test images), %ld iterations = "
                "%.2f epochs of %ld, batch %d, %s lr %.3g (%s), precision %s, %d threads%s\n",
                r->pfx, r->name, o->arch, o->conv_name, r->train->name, r->train->n, r->val ? r->val->n : 0L,
                r->test->n, o->total,
                (double)o->total / o->per_epoch, o->per_epoch, o->batch, o->optim_name, o->lr.lr0, o->lr_name,
                o->prec_name, engine_threads(), r->R > 1 ? " per rank" : "");
        if (S > 1 || r->R > 1)
            fprintf(r->progress, "%s   %d shards of the batch over %d ranks (%d rows each)\n", r->pfx, S, r->R,
                    r->rows);
        model_summary(m, r->progress);
    }
    return 0;
}

/* After setup, over R ranks: whether every rank is ready (a rank that failed
 * fails them all, its message on every rank) and whether rank 0 has a log. */
static int run_setup_sync(Run *r, int rc, char *err, size_t errlen) {
    if (r->R <= 1) {
        r->has_log = r->log != NULL;
        return rc;
    }
    const int mine[2] = {rc != 0, r->log != NULL};
    int *all = malloc(sizeof mine * (size_t)r->R);
    if (!all) dist_abort(r->group, 3);
    dist_allgather(r->group, mine, sizeof mine, all);
    int failed = 0;
    for (int q = 0; q < r->R; q++) failed |= all[2 * q];
    r->has_log = all[1];
    free(all);
    if (!failed) return 0;
    group_fail_message(r, rc ? err : "", err, errlen);
    return -1;
}

/* read the run's checkpoint (the rank with the log): 1 loaded, 0 none, -1 */
static int run_load(Run *r, char *err, size_t errlen) {
    long step = 0;
    int got = run_checkpoint_load(r->log, &r->m, &r->st, r->lcost, &step, err, errlen);
    if (got == 1 && run_state_check(&r->st, step, r->o->seed, r->o->total, r->o->per_epoch)) {
        snprintf(err, errlen, "the checkpoint of run %s (step %ld) does not belong to this configuration", r->name,
                 step);
        got = -1;
    }
    /* rows logged after the checkpoint (or by a start that never made one) go */
    if (got >= 0 && runlog_truncate(r->log, r->st.step)) {
        snprintf(err, errlen, "truncating the log of run %s to its checkpoint failed", r->name);
        got = -1;
    }
    return got;
}

/* group rank 0's load, broadcast: its outcome (and message), then the
 * tensors and the loop's state. Returns the outcome on every rank. */
static int run_load_share(Run *r, int got, char *err, size_t errlen) {
    struct {
        int32_t got;
        char msg[MSG_LEN];
    } h;
    memset(&h, 0, sizeof h);
    h.got = got;
    if (r->grank == 0 && got < 0) snprintf(h.msg, sizeof h.msg, "%s", err);
    dist_bcast(r->group, &h, sizeof h, 0);
    if (h.got < 0) {
        if (r->grank != 0) snprintf(err, errlen, "rank 0 of the run could not resume it: %s", h.msg);
        return -1;
    }
    if (h.got == 1) {
        Model *m = &r->m;
        RunState *st = &r->st;
        dist_bcast(r->group, m->params, m->n_params * sizeof *m->params, 0);
        dist_bcast(r->group, m->opt_m, m->n_params * sizeof *m->opt_m, 0);
        dist_bcast(r->group, m->opt_v, m->n_params * sizeof *m->opt_v, 0);
        dist_bcast(r->group, m->buffers, m->n_buffers * sizeof *m->buffers, 0);
        dist_bcast(r->group, st->loop, sizeof st->loop, 0);
        dist_bcast(r->group, st->counts, sizeof st->counts, 0);
        dist_bcast(r->group, st->lc_flat, 3 * (size_t)m->n_layers * sizeof *st->lc_flat, 0);
        if (st->sel_params) {
            dist_bcast(r->group, st->sel_params, m->n_params * sizeof *st->sel_params, 0);
            dist_bcast(r->group, st->sel_buffers, m->n_buffers * sizeof *st->sel_buffers, 0);
            dist_bcast(r->group, st->sel, sizeof st->sel, 0);
        }
        if (r->grank != 0) run_state_unpack(st, m, r->lcost);
    }
    return h.got;
}

/* continue from the run's checkpoint if it has one; drop the rows logged after it */
static int run_resume(Run *r, TrainResult *res, char *err, size_t errlen) {
    if (!r->has_log || !r->ctl->resume) return 0;
    int got = r->log ? run_load(r, err, errlen) : 0;
    if (r->R > 1) got = run_load_share(r, got, err, errlen);
    if (got < 0) return -1;
    if (got == 1) {
        res->resumed_from = r->st.step;
        if (r->progress)
            fprintf(r->progress, "%s[%s] resuming from the checkpoint at step %ld/%ld\n", r->pfx, r->name,
                    r->st.step, r->o->total);
    }
    return 0;
}

/* the batch of step i: from the loader, or the epoch's permutation */
static int run_batch(Run *r, long i, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    BatchSource src = {.ds = r->train, .n = r->rows, .aug = &o->aug, .train = 1, .seed = o->seed,
                       .loader = r->ld, .step = i};
    if (!r->ld) {
        const long epoch = i / o->per_epoch, pos = i % o->per_epoch;
        if (epoch != r->cur_epoch) {
            Rng g = rng_stream(o->seed, RNG_SHUFFLE, (uint64_t)epoch, 0);
            rng_permutation(&g, r->perm, r->train->n);
            r->cur_epoch = epoch;
        }
        /* this rank's rows of the global batch: its samples keep their
         * identity (the augmentation's key), whichever rank draws them */
        src.idx = r->perm + pos * o->batch + (long)r->grank * r->rows;
        src.epoch = epoch;
    }
    return r->task.kind->batch(&r->task, &src, err, errlen);
}

/* the trainable parameters [0, n_trainable): frozen layers' come after them */
static void optimizer_step(const TrainOptions *o, Model *m, double lr, long t) {
    if (o->optim == OPTIM_ADAMW) adamw_step(m->params, m->grads, m->opt_m, m->opt_v, m->n_trainable, lr, &o->adamw, t);
    else sgd_step(m->params, m->grads, m->opt_m, m->n_trainable, lr, &o->sgd, t);
}

/* this rank's stop request after step i: a signal, or TrainControl.stop_after */
static int stop_wanted(const Run *r, long i) {
    return train_stop_requested || (r->ctl->stop_after > 0 && i + 1 >= r->ctl->stop_after);
}

/* The one reduction of a step over R ranks: every rank's failure flag, stop
 * request and metric counts, gathered (exact, summed in rank order). A
 * failure anywhere fails every rank, with the failing rank's message. */
static int step_reduce(Run *r, long i, int failed, TaskMetric *metric, char *err, size_t errlen) {
    enum { F_FAIL, F_STOP, F_SUMS, F_LEN = F_SUMS + TASK_MAX_METRICS };
    if (r->pending[0] && !failed) {
        snprintf(err, errlen, "%s", r->pending); /* the row write of an earlier step */
        failed = 1;
    }
    int64_t mine[F_LEN] = {failed, stop_wanted(r, i)};
    for (int j = 0; j < TASK_MAX_METRICS; j++) mine[F_SUMS + j] = (int64_t)llround(metric->sums[j]);
    int64_t *all = malloc(sizeof mine * (size_t)r->R);
    if (!all) dist_abort(r->group, 3);
    dist_allgather(r->group, mine, sizeof mine, all);
    int any_fail = 0, any_stop = 0;
    for (int j = 0; j < TASK_MAX_METRICS; j++) metric->sums[j] = 0;
    for (int q = 0; q < r->R; q++) {
        const int64_t *v = all + (size_t)q * F_LEN;
        any_fail |= v[F_FAIL] != 0;
        any_stop |= v[F_STOP] != 0;
        for (int j = 0; j < TASK_MAX_METRICS; j++) metric->sums[j] += (double)v[F_SUMS + j];
    }
    free(all);
    r->stop_now = any_stop;
    if (!any_fail) return 0;
    group_fail_message(r, failed ? err : "", err, errlen);
    return -1;
}

/* one training step: batch, forward and losses, backward, optimizer; its row.
 * Over several ranks a rank whose batch failed trains a blank one (the
 * others are in the step's collectives) and the step's reduction then fails
 * them all, before anything of the step is evaluated or saved. */
static int run_step(Run *r, long i, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    Model *m = &r->m;
    const double t0 = now_seconds();
    int failed = 0;
    if (run_batch(r, i, err, errlen)) {
        if (r->R == 1) return -1;
        r->task.kind->blank(&r->task, r->rows);
        failed = 1;
    }
    TrainRow row = {.step = i + 1, .lr = lr_at(&o->lr, i)};
    const PrecBits pb = prec_at(&o->prec, i);
    m->bits = pb.bits;
    m->grad_bits = pb.grad_bits;
    m->step = i;
    char ferr[MSG_LEN];
    if (r->task.kind->forward(&r->task, m, r->rows, 1, &row.loss, failed ? ferr : err, failed ? sizeof ferr : errlen))
        return -1; /* the graph refused the batch: the same on every rank (shapes, sizes) */
    if (!isfinite(row.loss) && !failed) {
        /* the loss is the global batch's: every rank sees the same value */
        snprintf(err, errlen, "loss is %g at iteration %ld (lr %.3g): training diverged", row.loss, i, row.lr);
        if (r->R == 1) return -1;
        failed = 1;
    }
    TaskMetric step_metric = {.n = o->batch};
    r->task.kind->metric_add(&r->task, m, r->rows, &step_metric);
    model_backward_outputs(m);
    optimizer_step(o, m, row.lr, i + 1);
    if (r->R > 1 && step_reduce(r, i, failed, &step_metric, err, errlen)) return -1;
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
        if (r->R == 1) return -1;
        /* the others learn of it at the next reduction (or checkpoint) */
        snprintf(r->pending, sizeof r->pending, "%s", err);
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
    fprintf(r->progress, "%s[%s%s] step %ld/%ld (%.1f%%) epoch %.2f | loss %.4f | train acc %.2f%% | lr %.3e | "
            "bits %g/%g | cr %.4f | %.0f img/s | ETA %s%s\n",
            r->pfx, which, r->name, i + 1, o->total, 100.0 * (i + 1) / o->total, (double)(i + 1) / o->per_epoch,
            r->window_loss / r->window_n, 100.0 * r->window_correct / ((double)r->window_n * o->batch), r->last_lr,
            r->last_bits.bits, r->last_bits.grad_bits, prec_cost_mean(&r->st.cost_mean), ips, eta, grid);
    fflush(r->progress);
    r->window_loss = 0.0;
    r->window_correct = 0.0;
    r->window_n = 0;
}

/* One evaluation of the current weights on ds at `bits`: top-1 and loss,
 * the same on every rank of the run. */
static int run_eval_on(Run *r, const Dataset *ds, double bits, double *top1, double *loss, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    r->m.bits = bits;
    /* Eval batches are whole on one rank: no exchange (nothing of an eval
     * forward reduces over the batch, and a rank's batch is not the others').
     * But a sharded run keeps a non-trivial local plan of one shard: it makes
     * the linear layer take one GEMM call per row (core/ops/linear.c), so a
     * row's logits do not depend on how many rows share the call -- a rank
     * evaluates in pieces of B/R rows where one process takes B, and
     * OpenBLAS rounds a row differently for different M. */
    const ShardPlan keep = r->m.shard;
    if (shard_plan_trivial(&keep)) r->m.shard = shard_plan_single();
    else {
        r->m.shard.local_shards = 1;
        r->m.shard.ranks = 1;
        r->m.shard.rank = 0;
        r->m.shard.comm = NULL;
    }
    const int rc = r->R > 1 ? task_evaluate_group(&r->task, &r->m, ds, 0, o->eval_batch, &o->eval_aug, r->group,
                                                  top1, loss, err, errlen)
                            : task_evaluate(&r->task, &r->m, ds, 0, o->eval_batch, &o->eval_aug, top1, loss, err,
                                            errlen);
    r->m.shard = keep;
    return rc ? -1 : 0;
}

/* The periodic evaluation after step i (every eval_every steps and at the
 * end), at the evaluation precision (method.md 5.4): on the validation split
 * when there is one -- a new best validation top-1 (strictly: the first of
 * equals stays) becomes the selected checkpoint -- else on the test set, the
 * authors' practice, whose best is then selected on test. */
static int run_evaluate(Run *r, long i, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    if ((i + 1) % o->eval_every != 0 && i + 1 != o->total) return 0;
    const double bits = prec_eval_bits(&o->prec, &o->prec_eval, i + 1);
    if (run_eval_on(r, r->val ? r->val : r->test, bits, &r->st.metric, &r->st.loss, err, errlen)) return -1;
    const int better = r->st.metric > r->st.best;
    if (better) r->st.best = r->st.metric;
    if (r->val) {
        if (better) run_state_select(&r->st, &r->m, i + 1, r->st.metric, r->st.loss, bits);
        if (r->log) runlog_val(r->log, i + 1, r->st.metric, r->st.loss, bits);
    } else if (r->log) {
        runlog_test(r->log, i + 1, r->st.metric, r->st.loss, bits, i + 1 == o->total ? TEST_FINAL : TEST_PERIODIC, 0);
    }
    if (r->progress) {
        fprintf(r->progress, "%s[%s] eval @ step %ld (%g bits) on %s: top-1 %.2f%% | loss %.4f | best %.2f%%%s\n",
                r->pfx, r->name, i + 1, bits, r->val ? "validation" : "test", r->st.metric, r->st.loss, r->st.best,
                r->val ? (better ? " (selected)" : "") : " (selected on test)");
        fflush(r->progress);
    }
    return 0;
}

/* one test evaluation at the end: its row and progress line */
static int run_test_once(Run *r, long step, double bits, TestRole role, int fixed, double *top1, double *loss,
                         char *err, size_t errlen) {
    if (run_eval_on(r, r->test, bits, top1, loss, err, errlen)) return -1;
    if (r->log) runlog_test(r->log, step, *top1, *loss, bits, role, fixed);
    if (r->progress) {
        fprintf(r->progress, "%s[%s] test @ step %ld (%g bits%s, %s weights): top-1 %.2f%% | loss %.4f\n", r->pfx,
                r->name, step, bits, fixed ? ", fixed" : "", role == TEST_SELECTED ? "selected" : "final", *top1,
                *loss);
        fflush(r->progress);
    }
    return 0;
}

/* The fixed-precision twin of a test row: evaluated at fixed_eval.bits, or,
 * when those are the bits the evaluation precision already used (a cyclic
 * run ending at the top of its range), the same numbers recorded again
 * without reading the test set twice. */
static int run_test_fixed(Run *r, long step, TestRole role, double bits_done, double top1_done, double loss_done,
                          double *top1, char *err, size_t errlen) {
    const double bits = r->o->fixed_eval.bits;
    double loss;
    if (bits != bits_done) return run_test_once(r, step, bits, role, 1, top1, &loss, err, errlen);
    *top1 = top1_done;
    if (r->log) runlog_test(r->log, step, top1_done, loss_done, bits, role, 1);
    return 0;
}

/* The test set after a completed run (results/README.md): the final weights
 * and the selected ones (once, when they differ), each at the evaluation
 * precision and, for cyclic runs, at the fixed one. Without a validation
 * split the last periodic evaluation was the final test one. The model ends
 * with the final weights. */
static int run_final_tests(Run *r, TrainResult *res, char *err, size_t errlen) {
    const TrainOptions *o = r->o;
    const long T = o->total;
    const double bits_T = prec_eval_bits(&o->prec, &o->prec_eval, T);
    double loss;
    res->has_fixed = o->fixed_eval_too;
    res->eval_bits_fixed = o->fixed_eval.bits;
    res->final_top1 = r->st.metric;
    res->final_loss = r->st.loss;
    if (r->val) {
        res->selection = 1;
        if (run_test_once(r, T, bits_T, TEST_FINAL, 0, &res->final_top1, &res->final_loss, err, errlen)) return -1;
    }
    if (o->fixed_eval_too && run_test_fixed(r, T, TEST_FINAL, bits_T, res->final_top1, res->final_loss,
                                            &res->final_top1_fixed, err, errlen))
        return -1;
    res->selected_step = T;
    res->test_top1_at_selected = res->final_top1;
    res->selected_top1_fixed = res->final_top1_fixed;
    res->best_top1 = r->val ? res->final_top1 : (r->st.best < 0 ? 0 : r->st.best);
    if (!r->val) return 0;
    res->val_top1_at_selected = r->st.sel[SEL_TOP1];
    const long sel = (long)r->st.sel[SEL_STEP];
    if (sel <= 0 || sel == T) return 0;
    /* the selected weights in, evaluated, the final ones back */
    Model *m = &r->m;
    real *keep = malloc(sizeof *keep * (m->n_params + m->n_buffers + 1));
    if (!keep) {
        snprintf(err, errlen, "out of memory for the selected checkpoint's evaluation");
        return -1;
    }
    memcpy(keep, m->params, sizeof *keep * m->n_params);
    memcpy(keep + m->n_params, m->buffers, sizeof *keep * m->n_buffers);
    memcpy(m->params, r->st.sel_params, sizeof *keep * m->n_params);
    memcpy(m->buffers, r->st.sel_buffers, sizeof *keep * m->n_buffers);
    const double bits_sel = prec_eval_bits(&o->prec, &o->prec_eval, sel);
    int rc = run_test_once(r, sel, bits_sel, TEST_SELECTED, 0, &res->test_top1_at_selected, &loss, err, errlen);
    if (!rc && o->fixed_eval_too)
        rc = run_test_fixed(r, sel, TEST_SELECTED, bits_sel, res->test_top1_at_selected, loss,
                            &res->selected_top1_fixed, err, errlen);
    memcpy(m->params, keep, sizeof *keep * m->n_params);
    memcpy(m->buffers, keep + m->n_params, sizeof *keep * m->n_buffers);
    free(keep);
    if (rc) return -1;
    res->selected_step = sel;
    if (res->test_top1_at_selected > res->best_top1) res->best_top1 = res->test_top1_at_selected;
    return 0;
}

/* FNV-1a over 64-bit words (then the tail's bytes): a replica's fingerprint */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t bytes) {
    const unsigned char *b = p;
    size_t k = 0;
    for (; k + 8 <= bytes; k += 8) {
        uint64_t w;
        memcpy(&w, b + k, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; k < bytes; k++) h = (h ^ b[k]) * 0x100000001b3ull;
    return h;
}

/* The ranks' replicas must be the same bits: parameters, both optimizer
 * moments, buffers. A difference fails the run, naming the ranks that
 * differ from rank 0, before anything is written. */
static int replicas_check(Run *r, long i, char *err, size_t errlen) {
    const Model *m = &r->m;
    uint64_t h = 0xcbf29ce484222325ull;
    h = hash_bytes(h, m->params, m->n_params * sizeof *m->params);
    h = hash_bytes(h, m->opt_m, m->n_params * sizeof *m->opt_m);
    h = hash_bytes(h, m->opt_v, m->n_params * sizeof *m->opt_v);
    h = hash_bytes(h, m->buffers, m->n_buffers * sizeof *m->buffers);
    uint64_t *all = malloc(sizeof h * (size_t)r->R);
    if (!all) dist_abort(r->group, 3);
    dist_allgather(r->group, &h, sizeof h, all);
    char list[200] = "";
    int bad = 0;
    for (int q = 1; q < r->R; q++)
        if (all[q] != all[0]) {
            const size_t at = strlen(list);
            snprintf(list + at, sizeof list - at, "%s%d", bad++ ? ", " : "", q);
        }
    free(all);
    if (!bad) return 0;
    snprintf(err, errlen, "the ranks' replicas differ at iteration %ld: rank%s %s hold%s other parameters, optimizer "
             "state or buffers than rank 0; no checkpoint written", i + 1, bad > 1 ? "s" : "", list,
             bad > 1 ? "" : "s");
    return -1;
}

/* a checkpoint after step i when one is due (every checkpoint_every steps, at
 * the end, on a stop); the final one is committed by the caller with the
 * run's end status, intermediate ones here */
static int run_checkpoint(Run *r, long i, int stop, char *err, size_t errlen) {
    const long every = r->ctl->checkpoint_every;
    if (!r->has_log || !(stop || i + 1 == r->o->total || (every > 0 && (i + 1) % every == 0))) return 0;
    if (r->R > 1 && replicas_check(r, i, err, errlen)) return -1;
    r->st.step = i + 1;
    int failed = 0;
    if (r->log) {
        const double wall_before = r->st.wall_before;
        r->st.wall_before = wall_before + now_seconds() - r->t_start; /* the total so far goes in the file */
        const int rc = run_checkpoint_save(r->log, &r->m, &r->st, r->lcost, r->o->seed, r->o->per_epoch);
        r->st.wall_before = wall_before;
        if (rc || (i + 1 < r->o->total && runlog_commit(r->log))) {
            snprintf(err, errlen, "writing the checkpoint at iteration %ld failed (the results file keeps the "
                     "previous one)", i + 1);
            failed = 1;
        } else if (r->pending[0]) {
            snprintf(err, errlen, "%s", r->pending);
            failed = 1;
        }
    }
    if (r->R > 1 && dist_any(r->group, failed)) {
        if (!failed) snprintf(err, errlen, "rank 0 of the run failed writing its results file at iteration %ld", i + 1);
        return -1;
    }
    return failed ? -1 : 0;
}

/* the run's numbers after `done` iterations */
static void run_result(const Run *r, long done, TrainResult *res) {
    const TrainOptions *o = r->o;
    res->iterations = done;
    res->val_split = r->val ? r->val->n : 0;
    res->wall_time_s = r->st.wall_before + now_seconds() - r->t_start;
    res->images_per_s = r->st.train_time > 0 ? (double)done * o->batch / r->st.train_time : 0;
    res->mean_cost_ratio = prec_cost_mean(&r->st.cost_mean);
    res->train_memory_bytes = r->train_bytes;
    res->train_memory_fp32_bytes = r->train_bytes_fp32;
    res->memory_lean = o->memory_lean;
    res->fp32_conv = o->fp32_conv;
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
        r->ld = loader_start_rows(r->train, o->batch, r->grank * r->rows, r->rows, &o->aug, o->seed, i0, o->total,
                                  o->loader_workers, 3, err, errlen);
        /* a rank that cannot start its loader fails them all, before any step */
        const int failed = r->ld == NULL;
        if (r->R > 1 && dist_any(r->group, failed)) {
            if (!failed) snprintf(err, errlen, "another rank of the run could not start its batch loader");
            return -1;
        }
        if (failed) return -1;
    }
    for (long i = i0; i < o->total; i++) {
        if (run_step(r, i, err, errlen)) return -1;
        run_progress(r, i);
        if (run_evaluate(r, i, err, errlen)) return -1;
        /* over several ranks the step's reduction decided it, for all */
        const int stop = (r->R > 1 ? r->stop_now : stop_wanted(r, i)) && i + 1 < o->total;
        if (run_checkpoint(r, i, stop, err, errlen)) return -1;
        if (r->fault_step == i + 1) {
            fflush(NULL);
            _exit(9); /* CBNN_FAULT_EXIT_AT_STEP (train_run.h) */
        }
        if (stop) return i + 1;
    }
    return o->total > i0 ? o->total : i0;
}

/* CBNN_FAULT_EXIT_AT_STEP for this process (CBNN_FAULT_RANK: only that world rank), or 0 */
static long fault_step_here(void) {
    const char *s = getenv("CBNN_FAULT_EXIT_AT_STEP"), *rk = getenv("CBNN_FAULT_RANK");
    if (!s || !*s) return 0;
    if (rk && *rk && atoi(rk) != dist_world()->rank) return 0;
    return atol(s);
}

/* who trains the run: the group's size and this rank; only group rank 0
 * keeps the log and prints progress */
static void run_ranks(Run *r) {
    const DistComm *g = r->ctl->group;
    r->group = g && g->size > 1 ? g : NULL;
    r->R = r->group ? g->size : 1;
    r->grank = r->group ? g->rank : 0;
    if (r->grank != 0) {
        r->log = NULL;
        r->progress = NULL;
    }
    r->fault_step = fault_step_here();
    if (dist_world()->size > 1) snprintf(r->pfx, sizeof r->pfx, "%s ", dist_prefix());
}

int train_run_task(const TrainOptions *o, const TaskKind *task, const char *run_name, const Dataset *train,
                   const Dataset *test, RunLog *log, const TrainControl *ctl, FILE *progress, TrainResult *res,
                   char *err, size_t errlen) {
    static const TrainControl lone;
    Run r = {.o = o, .name = run_name, .train = train, .test = test, .log = log, .ctl = ctl ? ctl : &lone,
             .val = ctl && ctl->val && ctl->val->n > 0 ? ctl->val : NULL,
             .progress = progress, .task = {.kind = task}, .t_start = now_seconds()};
    run_ranks(&r);
    memset(res, 0, sizeof *res);
    res->status = -1;
    engine_set_threads(o->threads);
    long done = -1;
    if (run_setup_sync(&r, run_setup(&r, err, errlen), err, errlen) == 0 && run_resume(&r, res, err, errlen) == 0)
        done = run_loop(&r, err, errlen);
    if (done < 0) {
        res->wall_time_s = r.st.wall_before + now_seconds() - r.t_start;
        run_teardown(&r);
        return -1;
    }
    run_result(&r, done, res);
    loader_stop(r.ld);
    r.ld = NULL;
    if (res->status == 0 && run_final_tests(&r, res, err, errlen)) {
        res->status = -1;
        run_teardown(&r);
        return -1;
    }
    res->wall_time_s = r.st.wall_before + now_seconds() - r.t_start; /* the test evaluations included */
    if (r.log && run_record_results(r.log, &r.m, r.lcost, res)) {
        snprintf(err, errlen, "writing the cost and summary tables failed");
        res->status = -1;
    }
    if (r.ctl->on_end) r.ctl->on_end(&r.m, r.ctl->on_end_arg);
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
