/* The training loop: shuffle per epoch, augment, forward, backward, optimizer
 * step, periodic evaluation, per-step logging. Everything random comes from
 * the run's seeded streams, so a run is fixed by its config. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "datasets/loader.h"
#include "layers.h"
#include "lr_schedule.h"
#include "model.h"
#include "optim.h"
#include "precision.h"
#include "progress.h"
#include "rng.h"

volatile int train_stop_requested = 0;

long train_total_iterations(const RunConfig *c, long n_train) {
    if (c->iterations > 0) return c->iterations > CFG_MAX_ITERATIONS ? CFG_MAX_ITERATIONS + 1 : c->iterations;
    long per_epoch = c->batch_size > 0 ? n_train / c->batch_size : 0;
    /* in double, then compared before the conversion: epochs: 1e300 would not
     * fit in a long, and converting it is undefined (x86 gives LONG_MIN, and
     * a run that trains for a negative number of steps) */
    const double total = ceil(c->epochs * (double)per_epoch);
    if (!(total <= (double)CFG_MAX_ITERATIONS)) return CFG_MAX_ITERATIONS + 1;
    return total > 0 ? (long)total : 0;
}

int train_check_iterations(const RunConfig *c, long n_train, char *err, size_t errlen) {
    const long total = train_total_iterations(c, n_train);
    if (total <= CFG_MAX_ITERATIONS) return 0;
    if (c->iterations > 0)
        snprintf(err, errlen, "train.iterations = %ld is more than %ld (2^40), the most a run may train for",
                 c->iterations, (long)CFG_MAX_ITERATIONS);
    else
        snprintf(err, errlen,
                 "train.epochs = %g over %ld training images at batch %d is more than %ld iterations (2^40), the "
                 "most a run may train for",
                 c->epochs, n_train, c->batch_size, (long)CFG_MAX_ITERATIONS);
    return -1;
}

int evaluate(Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *top1, double *loss,
             char *err, size_t errlen) {
    if (n <= 0 || n > ds->n) n = ds->n;
    if (batch > m->max_batch) batch = m->max_batch;
    size_t chw = (size_t)ds->channels * ds->height * ds->width;
    real *x = malloc((size_t)batch * chw * sizeof *x);
    int32_t *y = malloc((size_t)batch * sizeof *y), *idx = malloc((size_t)batch * sizeof *idx);
    long correct = 0;
    double loss_sum = 0.0;
    int rc = (x && y && idx) ? 0 : -1;
    if (rc) snprintf(err, errlen, "out of memory for an evaluation batch of %d", batch);
    for (long start = 0; start < n && rc == 0; start += batch) {
        int B = (int)((n - start) < batch ? (n - start) : batch);
        for (int b = 0; b < B; b++) idx[b] = (int32_t)(start + b);
        rc = dataset_batch(ds, idx, B, x, y, aug, 0, 0, 0, err, errlen);
        if (rc) break;
        loss_sum += model_forward(m, x, y, B, 0) * B;
        correct += model_correct(m, y, B);
    }
    *top1 = 100.0 * (double)correct / (double)n;
    *loss = loss_sum / (double)n;
    free(x);
    free(y);
    free(idx);
    return rc;
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

/* what model.conv and binary.* select (train.h) */
void binary_options_from_config(BinaryConvOptions *o, const RunConfig *c) {
    *o = binary_conv_faithful();
    o->sign_zero = !strcmp(c->sign_zero, "plus_one") ? SIGN_ZERO_IS_PLUS_ONE : SIGN_ZERO_IS_ZERO;
    o->pad_minus_one = !strcmp(c->bin_pad, "minus_one");
    o->act_grad = !strcmp(c->act_grad, "ste") ? ACT_GRAD_STE : ACT_GRAD_APPROX_SIGN;
    o->act_norm = c->act_norm;
    o->weight_center = c->weight_center;
    o->recu_clamp = c->recu_clamp;
    if (c->recu_clamp) o->clamp_tau = c->clamp_tau;
    o->grad_quant = c->grad_quant;
    o->grad_stochastic = c->grad_stochastic;
    o->bwd_fp32 = !strcmp(c->bin_backward, "fp32");
}

/* Per-layer training cost, accumulated over the run (method.md 6.3): for every
 * layer the three GEMM-like products of a step (forward, error back-prop,
 * weight gradient), raw and bit-weighted. Raw counts per sample: forward =
 * the layer's forward MACs; error = the same when the layer has an input
 * gradient to compute (not for the first layer); weight gradient = the same
 * for layers with a weight tensor (conv, binary conv, linear), else 0. */
typedef struct {
    PrecMacs raw;       /* per sample per step */
    PrecMacs weighted;  /* summed over the run, times the batch */
    int binary;
} LayerCost;

static void layer_costs_init(LayerCost *lc, const Model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        double macs = (double)l->kind->macs(l);
        int has_weight = l->kind->has_weights;
        lc[i].raw.fwd = macs;
        lc[i].raw.err = l->in0 == 0 ? 0 : macs;
        lc[i].raw.wgrad = has_weight ? macs : 0;
        lc[i].weighted.fwd = lc[i].weighted.err = lc[i].weighted.wgrad = 0;
        lc[i].binary = l->kind->binary;
    }
}

static void layer_costs_add(LayerCost *lc, int n, int batch, double bits, double grad_bits) {
    for (int i = 0; i < n; i++) {
        PrecMacs w = prec_weighted_macs(lc[i].raw, lc[i].binary, bits, grad_bits);
        lc[i].weighted.fwd += batch * w.fwd;
        lc[i].weighted.err += batch * w.err;
        lc[i].weighted.wgrad += batch * w.wgrad;
    }
}

void train_augment_from_config(const RunConfig *c, Augment *train, Augment *eval) {
    memset(train, 0, sizeof *train);
    train->flip = c->aug_flip;
    train->crop_pad = c->aug_crop_pad;
    train->normalize = c->normalize;
    train->crop_fill_mean = c->aug_crop_fill_mean;
    train->autoaugment = c->aug_autoaugment;
    train->cutout = c->aug_cutout;
    train->rrc = c->aug_rrc;
    train->rrc_scale_min = c->rrc_scale_min;
    train->rrc_scale_max = c->rrc_scale_max;
    train->rrc_ratio_min = c->rrc_ratio_min;
    train->rrc_ratio_max = c->rrc_ratio_max;
    train->lighting = c->aug_lighting;
    train->eval_resize = c->eval_resize;
    /* evaluation: no random step; a streaming loader resizes and centre-crops */
    memset(eval, 0, sizeof *eval);
    eval->normalize = c->normalize;
    eval->eval_resize = c->eval_resize;
}

int train_estimate(const RunConfig *c, int channels, int height, int width, int num_classes, long n_train,
                   TrainEstimate *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    Model m;
    ConvKind binary_kind = !strcmp(c->conv, "cyclebnn") ? CONV_BINARY : CONV_FP32;
    if (train_check_iterations(c, n_train, err, errlen)) return -1;
    if (model_build(&m, c->arch, binary_kind, channels, height, width, num_classes, err, errlen)) return -1;
    const long total = train_total_iterations(c, n_train);
    LayerCost *lc = calloc((size_t)m.n_layers, sizeof *lc);
    if (!lc) {
        snprintf(err, errlen, "out of memory");
        model_free(&m);
        return -1;
    }
    layer_costs_init(lc, &m);
    PrecSchedule prec;
    PrecEval prec_eval;
    prec_from_config(c, total, &prec, &prec_eval);
    /* weighted MACs are linear in the raw counts: sum the per-iteration
     * factors of a unit binary layer once, then scale every layer. The sum is
     * taken per stretch of constant bits (prec_tally), not per iteration:
     * each factor is b*b/1024 or b*g/1024 with whole b, g <= 32, so every
     * product count * factor and every partial sum is a multiple of 2^-10
     * below 2^50 and exact in a double, and f is bitwise the sum the
     * per-iteration loop gave. */
    PrecTally tally[PREC_TALLY_MAX];
    const int nt = prec_tally(&prec, total, tally, PREC_TALLY_MAX);
    if (nt < 0) {
        snprintf(err, errlen, "the precision schedule has more than %d stretches of constant bits", PREC_TALLY_MAX);
        free(lc);
        model_free(&m);
        return -1;
    }
    const PrecMacs unit = {1, 1, 1};
    PrecMacs f = {0, 0, 0};
    for (int t = 0; t < nt; t++) {
        PrecMacs w = prec_weighted_macs(unit, 1, tally[t].b.bits, tally[t].b.grad_bits);
        const double n = (double)tally[t].count;
        f.fwd += n * w.fwd;
        f.err += n * w.err;
        f.wgrad += n * w.wgrad;
    }
    const double B = c->batch_size;
    for (int l = 0; l < m.n_layers; l++) {
        double raw = lc[l].raw.fwd + lc[l].raw.err + lc[l].raw.wgrad;
        out->fp32_macs += (double)total * B * raw;
        if (lc[l].binary)
            out->bit_macs += B * (f.fwd * lc[l].raw.fwd + f.err * lc[l].raw.err + f.wgrad * lc[l].raw.wgrad);
        else
            out->bit_macs += (double)total * B * raw;
        out->fwd_macs += (long)lc[l].raw.fwd;
    }
    out->iterations = total;
    /* an fp32 model's cr is 1 at every iteration (NaN without iterations, as before) */
    out->mean_cost_ratio = binary_kind == CONV_BINARY ? prec_tally_cost_mean(tally, nt) : total > 0 ? 1.0 : NAN;
    free(lc);
    model_free(&m);
    return 0;
}

/* cost/ and summary/ tables of the run (results/README.md) */
static int write_tables(RunLog *log, const Model *m, const LayerCost *lc) {
    int n = m->n_layers, rc = 0;
    SummaryRow *rows = calloc((size_t)n, sizeof *rows);
    const char **names = calloc((size_t)n, sizeof *names), **kinds = calloc((size_t)n, sizeof *kinds),
               **shapes = calloc((size_t)n, sizeof *shapes);
    int64_t *fwd = calloc((size_t)n, sizeof *fwd), *ib = calloc((size_t)n, sizeof *ib),
            *p1 = calloc((size_t)n, sizeof *p1), *p32 = calloc((size_t)n, sizeof *p32),
            *m1 = calloc((size_t)n, sizeof *m1), *m32 = calloc((size_t)n, sizeof *m32);
    double *wf = calloc((size_t)n, sizeof *wf), *we = calloc((size_t)n, sizeof *we),
           *ww = calloc((size_t)n, sizeof *ww), *mem = calloc((size_t)n, sizeof *mem);
    if (!rows || !names || !kinds || !shapes || !fwd || !ib || !p1 || !p32 || !m1 || !m32 || !wf || !we || !ww ||
        !mem) {
        rc = -1;
        goto out;
    }
    model_summary_rows(m, rows);
    for (int i = 0; i < n; i++) {
        names[i] = rows[i].name;
        kinds[i] = rows[i].kind;
        shapes[i] = rows[i].output_shape;
        fwd[i] = (int64_t)lc[i].raw.fwd;
        wf[i] = lc[i].weighted.fwd;
        we[i] = lc[i].weighted.err;
        ww[i] = lc[i].weighted.wgrad;
        ib[i] = rows[i].input_bits;
        p1[i] = rows[i].params_1bit;
        p32[i] = rows[i].params_32bit;
        mem[i] = rows[i].memory_bytes;
        m1[i] = rows[i].macs_1bit;
        m32[i] = rows[i].macs_32bit;
    }
    ResultsColumn cost[] = {
        {"name", RCOL_STRING, "", names},
        {"kind", RCOL_STRING, "", kinds},
        {"fwd_macs", RCOL_INT64, "MACs per sample", fwd},
        {"fwd_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", wf},
        {"err_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", we},
        {"wgrad_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", ww},
    };
    ResultsColumn summary[] = {
        {"name", RCOL_STRING, "", names},
        {"kind", RCOL_STRING, "", kinds},
        {"input_bits", RCOL_INT64, "bits", ib},
        {"output_shape", RCOL_STRING, "", shapes},
        {"params_1bit", RCOL_INT64, "parameters", p1},
        {"params_32bit", RCOL_INT64, "parameters", p32},
        {"memory_bytes", RCOL_FLOAT64, "bytes", mem},
        {"macs_1bit", RCOL_INT64, "MACs per sample", m1},
        {"macs_32bit", RCOL_INT64, "MACs per sample", m32},
    };
    if (runlog_table(log, "cost", n, cost, (int)(sizeof cost / sizeof *cost)) ||
        runlog_table(log, "summary", n, summary, (int)(sizeof summary / sizeof *summary)))
        rc = -1;
out:
    free(rows); free(names); free(kinds); free(shapes); free(fwd); free(ib); free(p1); free(p32);
    free(m1); free(m32); free(wf); free(we); free(ww); free(mem);
    return rc;
}

/* The loop's own state, beside the model's tensors, in a checkpoint. */
enum { LS_BEST, LS_TOP1, LS_TLOSS, LS_TRAIN_TIME, LS_WALL, LS_CR_SUM, LS_CR_COMP, LS_N };
enum { LC_STEP, LC_CR_N, LC_SEED, LC_EPOCH, LC_CURSOR, LC_N };

static int checkpoint_arrays(CkptArray *a, Model *m, double *loop, int64_t *counts, double *lc_flat) {
    int n = 0;
    a[n++] = (CkptArray){"params", CK_REAL, m->n_params, m->params};
    a[n++] = (CkptArray){"opt_m", CK_REAL, m->n_params, m->opt_m};
    a[n++] = (CkptArray){"opt_v", CK_REAL, m->n_params, m->opt_v};
    a[n++] = (CkptArray){"buffers", CK_REAL, m->n_buffers, m->buffers};
    a[n++] = (CkptArray){"loop_state", CK_F64, LS_N, loop};
    a[n++] = (CkptArray){"loop_counts", CK_I64, LC_N, counts};
    /* the per-layer bit-weighted MAC sums (fwd, err, wgrad) of the run so far */
    a[n++] = (CkptArray){"layer_bitmacs", CK_F64, 3 * (size_t)m->n_layers, lc_flat};
    return n;
}

int train_run(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
              FILE *progress, TrainResult *res, char *err, size_t errlen) {
    return train_run_ctl(c, run_name, train, test, log, NULL, progress, res, err, errlen);
}

int train_run_ctl(const RunConfig *c, const char *run_name, const Dataset *train, const Dataset *test, RunLog *log,
                  const TrainControl *ctl_in, FILE *progress, TrainResult *res, char *err, size_t errlen) {
    TrainControl ctl0;
    memset(&ctl0, 0, sizeof ctl0);
    const TrainControl *ctl = ctl_in ? ctl_in : &ctl0;
    memset(res, 0, sizeof *res);
    res->status = -1;
    double t_start = now_seconds();
    engine_set_threads(c->threads);

    Model m;
    ConvKind binary_kind = !strcmp(c->conv, "cyclebnn") ? CONV_BINARY : CONV_FP32;
    if (model_build(&m, c->arch, binary_kind, train->channels, train->height, train->width, train->num_classes, err,
                    errlen))
        return -1;
    binary_options_from_config(&m.bconv, c);
    m.seed = c->seed;
    const int B = c->batch_size;
    const long n = train->n;
    const long per_epoch = n / B;
    if (per_epoch < 1) {
        snprintf(err, errlen, "train.batch_size %d is larger than the training set (%ld images)", B, n);
        model_free(&m);
        return -1;
    }
    if (train_check_iterations(c, n, err, errlen)) {
        model_free(&m);
        return -1;
    }
    const long total = train_total_iterations(c, n);
    PrecSchedule prec;
    PrecEval prec_eval;
    prec_from_config(c, total, &prec, &prec_eval);
    /* binary convs keep 1-byte activation codes for backward when every
     * forward of this run (training and evaluation) quantizes to 1..8 bits */
    m.bconv.save_act_codes = prec_bits_within(&prec, &prec_eval, 1, 8);
    /* activations and what backward saves are sized for the training batch;
     * evaluation runs in batches of at most that size (evaluate() clamps) */
    if (model_alloc(&m, B)) {
        snprintf(err, errlen, "out of memory allocating %s for batch %d", c->arch, B);
        model_free(&m);
        return -1;
    }
    model_init_params(&m, c->seed);
    const long eval_every = c->eval_interval > 0 ? c->eval_interval : per_epoch;
    const long log_every = c->log_interval > 0 ? c->log_interval : 50;
    LRSchedule sched;
    build_lr_schedule(&sched, c, total);
    PrecCostMean cost_mean = {0, 0, 0};
    LayerCost *lcost = calloc((size_t)m.n_layers, sizeof *lcost);
    AdamWConfig adamw = {c->beta1, c->beta2, c->eps, c->weight_decay};
    SGDConfig sgd = {c->momentum, c->dampening, c->weight_decay, c->nesterov};
    const int use_adamw = !strcmp(c->optimizer, "adamw");
    Augment aug, eval_aug;
    train_augment_from_config(c, &aug, &eval_aug);
    if (lcost) layer_costs_init(lcost, &m);

    if (progress) {
        fprintf(progress, "== run %s: %s (%s convs) on %s (%ld train / %ld test images), %ld iterations = %.2f epochs "
                "of %ld, batch %d, %s lr %.3g (%s), precision %s, %d threads\n",
                run_name, c->arch, c->conv, train->name, n, test->n, total, (double)total / per_epoch, per_epoch, B,
                c->optimizer, c->lr, c->lr_schedule, c->prec_schedule, engine_threads());
        model_summary(&m, progress);
    }

    double *lc_flat = NULL, wall_before = 0.0;
    Loader *ld = NULL; /* background batches (data.loader_workers > 0) */
    size_t chw = (size_t)train->channels * train->height * train->width;
    real *x = malloc((size_t)B * chw * sizeof *x);
    int32_t *y = malloc((size_t)B * sizeof *y), *perm = malloc((size_t)n * sizeof *perm);
    if (!x || !y || !perm || !lcost) {
        snprintf(err, errlen, "out of memory for the input batch");
        goto fail;
    }

    long cur_epoch = -1, i = 0, window_correct = 0, window_n = 0, i0 = 0;
    double window_loss = 0.0, train_time = 0.0, best = -1.0, top1 = 0.0, tloss = 0.0;

    /* checkpoint I/O goes through these (state <-> flat arrays) */
    double loop[LS_N];
    int64_t counts[LC_N];
    lc_flat = malloc(sizeof *lc_flat * 3 * (size_t)m.n_layers + 1);
    CkptArray ck[8];
    int nck = checkpoint_arrays(ck, &m, loop, counts, lc_flat);
    if (!lc_flat) {
        snprintf(err, errlen, "out of memory for the checkpoint state");
        goto fail;
    }
    if (log && ctl->resume) {
        long step = 0;
        int got = runlog_checkpoint_load(log, &step, ck, nck, err, errlen);
        if (got < 0) goto fail;
        if (got == 1) {
            if (counts[LC_STEP] != step || (uint64_t)counts[LC_SEED] != c->seed || step > total ||
                counts[LC_EPOCH] != step / per_epoch || counts[LC_CURSOR] != step % per_epoch) {
                snprintf(err, errlen, "the checkpoint of run %s (step %ld) does not belong to this configuration",
                         run_name, step);
                goto fail;
            }
            i0 = step;
            best = loop[LS_BEST];
            top1 = loop[LS_TOP1];
            tloss = loop[LS_TLOSS];
            train_time = loop[LS_TRAIN_TIME];
            wall_before = loop[LS_WALL];
            cost_mean.sum = loop[LS_CR_SUM];
            cost_mean.comp = loop[LS_CR_COMP];
            cost_mean.n = (long)counts[LC_CR_N];
            for (int l = 0; l < m.n_layers; l++) {
                lcost[l].weighted.fwd = lc_flat[3 * l];
                lcost[l].weighted.err = lc_flat[3 * l + 1];
                lcost[l].weighted.wgrad = lc_flat[3 * l + 2];
            }
            res->resumed_from = step;
            if (progress)
                fprintf(progress, "[%s] resuming from the checkpoint at step %ld/%ld\n", run_name, step, total);
        }
        /* rows logged after the checkpoint (or by a start that never made one) go */
        if (runlog_truncate(log, i0)) {
            snprintf(err, errlen, "truncating the log of run %s to its checkpoint failed", run_name);
            goto fail;
        }
    }

    if (c->loader_workers > 0 && i0 < total) {
        /* the same batches, decoded ahead by worker threads (datasets/loader.h) */
        ld = loader_start(train, B, &aug, c->seed, i0, total, c->loader_workers, 3, err, errlen);
        if (!ld) goto fail;
    }
    for (i = i0; i < total; i++) {
        double t0 = now_seconds();
        if (ld) {
            long got_step;
            if (loader_next(ld, x, y, &got_step) != 0 || got_step != i) {
                snprintf(err, errlen, "the background loader failed at step %ld: %s", i, loader_error(ld));
                goto fail;
            }
        } else {
            long epoch = i / per_epoch, pos = i % per_epoch;
            if (epoch != cur_epoch) {
                Rng r = rng_stream(c->seed, RNG_SHUFFLE, (uint64_t)epoch, 0);
                rng_permutation(&r, perm, n);
                cur_epoch = epoch;
            }
            if (dataset_batch(train, perm + pos * B, B, x, y, &aug, 1, c->seed, epoch, err, errlen)) goto fail;
        }
        double lr = lr_at(&sched, i);
        PrecBits pb = prec_at(&prec, i);
        m.bits = pb.bits;
        m.grad_bits = pb.grad_bits;
        m.step = i;
        double loss = model_forward(&m, x, y, B, 1);
        if (!isfinite(loss)) {
            snprintf(err, errlen, "loss is %g at iteration %ld (lr %.3g): training diverged", loss, i, lr);
            goto fail;
        }
        const int correct = model_correct(&m, y, B);
        window_correct += correct;
        model_backward(&m);
        if (use_adamw) adamw_step(m.params, m.grads, m.opt_m, m.opt_v, m.n_params, lr, &adamw, i + 1);
        else sgd_step(m.params, m.grads, m.opt_m, m.n_params, lr, &sgd, i + 1);
        train_time += now_seconds() - t0;
        /* the cost ratio counts the quantized convs only; a run without any
         * (model.conv = fp32) is a full-precision step whatever precision says */
        double cr = binary_kind == CONV_BINARY ? prec_cost_ratio(pb.bits, pb.grad_bits) : 1.0;
        prec_cost_add(&cost_mean, cr);
        layer_costs_add(lcost, m.n_layers, B, pb.bits, pb.grad_bits);
        window_loss += loss;
        window_n++;
        if (log && (runlog_train(log, i + 1, loss, lr, wall_before + now_seconds() - t_start) ||
                    runlog_train_precision(log, pb.bits, pb.grad_bits, cr) ||
                    runlog_train_top1(log, 100.0 * correct / B))) {
            snprintf(err, errlen, "writing the results file failed at iteration %ld", i + 1);
            goto fail;
        }
        if (progress && ((i + 1) % log_every == 0 || i + 1 == total)) {
            double ips = (double)(i + 1) * B / train_time;
            char eta[32], grid[64] = "", which[48] = "";
            format_duration(eta, sizeof eta, (double)(total - i - 1) * B / ips);
            if (ctl->n_runs > 0) {
                char geta[32];
                /* the later runs are assumed to cost what this one does per image */
                format_duration(geta, sizeof geta, ((double)(total - i - 1) + ctl->grid_iters_after) * B / ips);
                snprintf(grid, sizeof grid, " | grid ETA %s", geta);
                snprintf(which, sizeof which, "run %d/%d ", ctl->run_index, ctl->n_runs);
            }
            fprintf(progress, "[%s%s] step %ld/%ld (%.1f%%) epoch %.2f | loss %.4f | train acc %.2f%% | lr %.3e | "
                    "bits %g/%g | cr %.4f | %.0f img/s | ETA %s%s\n",
                    which, run_name, i + 1, total, 100.0 * (i + 1) / total, (double)(i + 1) / per_epoch,
                    window_loss / window_n, 100.0 * window_correct / ((double)window_n * B), lr, pb.bits,
                    pb.grad_bits, prec_cost_mean(&cost_mean), ips, eta, grid);
            fflush(progress);
            window_loss = 0.0;
            window_correct = window_n = 0;
        }
        if ((i + 1) % eval_every == 0 || i + 1 == total) {
            m.bits = prec_eval_bits(&prec, &prec_eval, i + 1);
            if (evaluate(&m, test, 0, c->eval_batch_size, &eval_aug, &top1, &tloss, err, errlen)) goto fail;
            if (top1 > best) best = top1;
            if (log) runlog_eval(log, i + 1, top1, tloss);
            if (progress) {
                fprintf(progress, "[%s] eval @ step %ld (%g bits): top-1 %.2f%% | loss %.4f | best %.2f%%\n", run_name,
                        i + 1, m.bits, top1, tloss, best);
                fflush(progress);
            }
        }
        const int stop = train_stop_requested && i + 1 < total;
        if (log && (stop || i + 1 == total || (ctl->checkpoint_every > 0 && (i + 1) % ctl->checkpoint_every == 0))) {
            loop[LS_BEST] = best;
            loop[LS_TOP1] = top1;
            loop[LS_TLOSS] = tloss;
            loop[LS_TRAIN_TIME] = train_time;
            loop[LS_WALL] = wall_before + now_seconds() - t_start;
            loop[LS_CR_SUM] = cost_mean.sum;
            loop[LS_CR_COMP] = cost_mean.comp;
            counts[LC_STEP] = i + 1;
            counts[LC_CR_N] = cost_mean.n;
            counts[LC_SEED] = (int64_t)c->seed;
            counts[LC_EPOCH] = (i + 1) / per_epoch;
            counts[LC_CURSOR] = (i + 1) % per_epoch;
            for (int l = 0; l < m.n_layers; l++) {
                lc_flat[3 * l] = lcost[l].weighted.fwd;
                lc_flat[3 * l + 1] = lcost[l].weighted.err;
                lc_flat[3 * l + 2] = lcost[l].weighted.wgrad;
            }
            /* the final checkpoint is committed by the caller with the run's
             * end status; intermediate ones are committed here */
            if (runlog_checkpoint_save(log, i + 1, ck, nck) || (i + 1 < total && runlog_commit(log))) {
                snprintf(err, errlen, "writing the checkpoint at iteration %ld failed (the results file keeps the "
                         "previous one)", i + 1);
                goto fail;
            }
        }
        if (stop) {
            i++;
            break;
        }
    }
    res->iterations = i;
    res->final_top1 = top1;
    res->best_top1 = best < 0 ? 0 : best;
    res->final_loss = tloss;
    res->wall_time_s = wall_before + now_seconds() - t_start;
    res->images_per_s = train_time > 0 ? (double)i * B / train_time : 0;
    res->mean_cost_ratio = prec_cost_mean(&cost_mean);
    for (int l = 0; l < m.n_layers; l++) {
        res->bit_macs += lcost[l].weighted.fwd + lcost[l].weighted.err + lcost[l].weighted.wgrad;
        res->fp32_macs += (double)i * B * (lcost[l].raw.fwd + lcost[l].raw.err + lcost[l].raw.wgrad);
    }
    loader_stop(ld);
    ld = NULL;
    res->status = i == total ? 0 : 1;
    if (log && (runlog_mean_cost_ratio(log, res->mean_cost_ratio) || write_tables(log, &m, lcost))) {
        snprintf(err, errlen, "writing the cost and summary tables failed");
        res->status = -1;
    }
    free(x);
    free(y);
    free(perm);
    free(lcost);
    free(lc_flat);
    model_free(&m);
    return res->status;
fail:
    loader_stop(ld);
    res->wall_time_s = wall_before + now_seconds() - t_start;
    free(lc_flat);
    free(x);
    free(y);
    free(perm);
    free(lcost);
    model_free(&m);
    return -1;
}
