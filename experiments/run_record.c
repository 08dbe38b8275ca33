/* What a run writes to its results file (experiments/run_record.h). */
#include "run_record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "imagenet.h"

/* the checkpoint's loop_state and loop_counts entries (their order is the
 * file format: older files resume with it) */
enum { LS_BEST, LS_TOP1, LS_TLOSS, LS_TRAIN_TIME, LS_WALL, LS_CR_SUM, LS_CR_COMP, LS_N };
enum { LC_STEP, LC_CR_N, LC_SEED, LC_EPOCH, LC_CURSOR, LC_N };

int run_state_init(RunState *s, const Model *m) {
    memset(s, 0, sizeof *s);
    s->best = -1.0;
    s->lc_flat = malloc(sizeof *s->lc_flat * 3 * (size_t)m->n_layers + 1);
    return s->lc_flat ? 0 : -1;
}

void run_state_free(RunState *s) {
    free(s->lc_flat);
    free(s->sel_params);
    free(s->sel_buffers);
    s->lc_flat = NULL;
    s->sel_params = s->sel_buffers = NULL;
}

int run_state_enable_selection(RunState *s, const Model *m) {
    s->sel_params = malloc(sizeof *s->sel_params * (m->n_params + 1));
    s->sel_buffers = malloc(sizeof *s->sel_buffers * (m->n_buffers + 1));
    if (!s->sel_params || !s->sel_buffers) return -1;
    /* nothing selected yet: the initial weights, step 0 */
    memcpy(s->sel_params, m->params, sizeof *m->params * m->n_params);
    memcpy(s->sel_buffers, m->buffers, sizeof *m->buffers * m->n_buffers);
    s->sel[SEL_STEP] = 0;
    s->sel[SEL_TOP1] = s->sel[SEL_LOSS] = s->sel[SEL_BITS] = NAN;
    return 0;
}

void run_state_select(RunState *s, const Model *m, long step, double top1, double loss, double bits) {
    memcpy(s->sel_params, m->params, sizeof *m->params * m->n_params);
    memcpy(s->sel_buffers, m->buffers, sizeof *m->buffers * m->n_buffers);
    s->sel[SEL_STEP] = (double)step;
    s->sel[SEL_TOP1] = top1;
    s->sel[SEL_LOSS] = loss;
    s->sel[SEL_BITS] = bits;
}

static int checkpoint_arrays(CkptArray *a, Model *m, RunState *s) {
    int n = 0;
    a[n++] = (CkptArray){"params", CK_REAL, m->n_params, m->params};
    a[n++] = (CkptArray){"opt_m", CK_REAL, m->n_params, m->opt_m};
    a[n++] = (CkptArray){"opt_v", CK_REAL, m->n_params, m->opt_v};
    a[n++] = (CkptArray){"buffers", CK_REAL, m->n_buffers, m->buffers};
    a[n++] = (CkptArray){"loop_state", CK_F64, LS_N, s->loop};
    a[n++] = (CkptArray){"loop_counts", CK_I64, LC_N, s->counts};
    /* the per-layer bit-weighted MAC sums (fwd, err, wgrad) of the run so far */
    a[n++] = (CkptArray){"layer_bitmacs", CK_F64, 3 * (size_t)m->n_layers, s->lc_flat};
    if (s->sel_params) {
        /* the selected checkpoint (issue 16) */
        a[n++] = (CkptArray){"selected_params", CK_REAL, m->n_params, s->sel_params};
        a[n++] = (CkptArray){"selected_buffers", CK_REAL, m->n_buffers, s->sel_buffers};
        a[n++] = (CkptArray){"selected_state", CK_F64, 4, s->sel};
    }
    return n;
}

int run_checkpoint_load(RunLog *log, Model *m, RunState *s, LayerCost *lc, long *step, char *err, size_t errlen) {
    CkptArray ck[12];
    const int nck = checkpoint_arrays(ck, m, s);
    const int got = runlog_checkpoint_load(log, step, ck, nck, err, errlen);
    if (got != 1) return got;
    run_state_unpack(s, m, lc);
    s->step = *step; /* the checkpoint's own; run_state_check compares the counters with it */
    return 1;
}

void run_state_unpack(RunState *s, const Model *m, LayerCost *lc) {
    s->step = (long)s->counts[LC_STEP];
    s->best = s->loop[LS_BEST];
    s->metric = s->loop[LS_TOP1];
    s->loss = s->loop[LS_TLOSS];
    s->train_time = s->loop[LS_TRAIN_TIME];
    s->wall_before = s->loop[LS_WALL];
    s->cost_mean.sum = s->loop[LS_CR_SUM];
    s->cost_mean.comp = s->loop[LS_CR_COMP];
    s->cost_mean.n = (long)s->counts[LC_CR_N];
    for (int l = 0; l < m->n_layers; l++) {
        lc[l].weighted.fwd = s->lc_flat[3 * l];
        lc[l].weighted.err = s->lc_flat[3 * l + 1];
        lc[l].weighted.wgrad = s->lc_flat[3 * l + 2];
    }
}

int run_state_check(const RunState *s, long step, uint64_t seed, long total, long per_epoch) {
    const int64_t *c = s->counts;
    return (c[LC_STEP] != step || (uint64_t)c[LC_SEED] != seed || step > total || c[LC_EPOCH] != step / per_epoch ||
            c[LC_CURSOR] != step % per_epoch)
               ? -1
               : 0;
}

int run_checkpoint_save(RunLog *log, Model *m, RunState *s, const LayerCost *lc, uint64_t seed, long per_epoch) {
    s->loop[LS_BEST] = s->best;
    s->loop[LS_TOP1] = s->metric;
    s->loop[LS_TLOSS] = s->loss;
    s->loop[LS_TRAIN_TIME] = s->train_time;
    s->loop[LS_WALL] = s->wall_before; /* the caller's total so far (see train_run.c) */
    s->loop[LS_CR_SUM] = s->cost_mean.sum;
    s->loop[LS_CR_COMP] = s->cost_mean.comp;
    s->counts[LC_STEP] = s->step;
    s->counts[LC_CR_N] = s->cost_mean.n;
    s->counts[LC_SEED] = (int64_t)seed;
    s->counts[LC_EPOCH] = s->step / per_epoch;
    s->counts[LC_CURSOR] = s->step % per_epoch;
    for (int l = 0; l < m->n_layers; l++) {
        s->lc_flat[3 * l] = lc[l].weighted.fwd;
        s->lc_flat[3 * l + 1] = lc[l].weighted.err;
        s->lc_flat[3 * l + 2] = lc[l].weighted.wgrad;
    }
    CkptArray ck[12];
    const int nck = checkpoint_arrays(ck, m, s);
    return runlog_checkpoint_save(log, s->step, ck, nck);
}

/* cost/ and summary/ tables of the run (results/README.md) */
static int write_rows(RunLog *log, const SummaryRow *rows, const LayerCost *lc, int n) {
    int rc = -1;
    const char **names = calloc((size_t)n, sizeof *names), **kinds = calloc((size_t)n, sizeof *kinds),
               **shapes = calloc((size_t)n, sizeof *shapes);
    int64_t *ints = calloc(6 * (size_t)n, sizeof *ints);        /* fwd, input bits, params 1/32, MACs 1/32 */
    double *reals = calloc(4 * (size_t)n, sizeof *reals);      /* weighted fwd, err, wgrad; memory */
    if (names && kinds && shapes && ints && reals) {
        int64_t *fwd = ints, *ib = ints + n, *p1 = ints + 2 * n, *p32 = ints + 3 * n, *m1 = ints + 4 * n,
                *m32 = ints + 5 * n;
        double *wf = reals, *we = reals + n, *ww = reals + 2 * n, *mem = reals + 3 * n;
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
        const ResultsColumn cost[] = {
            {"name", RCOL_STRING, "", names},
            {"kind", RCOL_STRING, "", kinds},
            {"fwd_macs", RCOL_INT64, "MACs per sample", fwd},
            {"fwd_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", wf},
            {"err_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", we},
            {"wgrad_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", ww},
        };
        const ResultsColumn summary[] = {
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
        rc = runlog_table(log, "cost", n, cost, (int)(sizeof cost / sizeof *cost)) ||
                     runlog_table(log, "summary", n, summary, (int)(sizeof summary / sizeof *summary))
                 ? -1
                 : 0;
    }
    free(names);
    free(kinds);
    free(shapes);
    free(ints);
    free(reals);
    return rc;
}

static int write_tables(RunLog *log, const Model *m, const LayerCost *lc) {
    SummaryRow *rows = calloc((size_t)m->n_layers, sizeof *rows);
    if (!rows) return -1;
    model_summary_rows(m, rows);
    const int rc = write_rows(log, rows, lc, m->n_layers);
    free(rows);
    return rc;
}

static int record_attrs(RunLog *log, const TrainResult *res) {
    if (res->status != 0) return 0;
    int rc = runlog_attr(log, "bit_macs", res->bit_macs) | runlog_attr(log, "fp32_macs", res->fp32_macs) |
             runlog_attr(log, "images_per_s", res->images_per_s);
    /* the measured memory (issue 17): the classification loop plans it; a
     * loop that does not (the detector's) leaves the attributes NaN */
    const int mem = res->train_memory_bytes > 0 && res->train_memory_fp32_bytes > 0;
    rc |= runlog_attr(log, "train_memory_bytes", mem ? res->train_memory_bytes : NAN) |
          runlog_attr(log, "train_memory_fp32_bytes", mem ? res->train_memory_fp32_bytes : NAN) |
          runlog_attr(log, "train_memory_ratio", mem ? res->train_memory_bytes / res->train_memory_fp32_bytes : NAN);
    if (mem)
        rc |= runlog_attr_text(log, "train_memory", res->memory_lean ? "lean" : "fast") |
              runlog_attr_text(log, "fp32_conv", res->fp32_conv == FP32_CONV_ONEDNN ? "onednn" : "native");
    /* the process's peak so far: in a grid, the largest run up to this one */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) rc |= runlog_attr(log, "peak_rss_bytes", 1024.0 * (double)ru.ru_maxrss);
    return rc ? -1 : 0;
}

int run_record_results(RunLog *log, const Model *m, const LayerCost *lc, const TrainResult *res) {
    if (runlog_mean_cost_ratio(log, res->mean_cost_ratio) || write_tables(log, m, lc)) return -1;
    return record_attrs(log, res);
}

int run_record_results_rows(RunLog *log, const SummaryRow *rows, const LayerCost *lc, int n, const TrainResult *res) {
    if (runlog_mean_cost_ratio(log, res->mean_cost_ratio) || write_rows(log, rows, lc, n)) return -1;
    return record_attrs(log, res);
}

int run_record_end(RunLog *log, int rc, const TrainResult *res, const char *message, const Dataset *train,
                   const Dataset *test) {
    if (!strcmp(train->name, "imagenet")) {
        /* data.skip_bad: undecodable images skipped (and libjpeg warnings), for the run's log */
        runlog_attr(log, "images_skipped", (double)(imagenet_bad_count(train) + imagenet_bad_count(test)));
        runlog_attr(log, "jpeg_warnings", (double)(imagenet_warning_count(train) + imagenet_warning_count(test)));
    }
    if (rc == 0) {
        /* the selection: without a validation split, the final weights */
        const int sel = res->selection && res->selected_step > 0 && res->selected_step != res->iterations;
        int bad = runlog_attr(log, "selected_step", (double)(sel ? res->selected_step : res->iterations)) |
                  runlog_attr(log, "val_top1_at_selected", res->selection ? res->val_top1_at_selected : NAN) |
                  runlog_attr(log, "test_top1_at_selected", sel ? res->test_top1_at_selected : res->final_top1) |
                  runlog_attr(log, "final_test_top1_fixed", res->has_fixed ? res->final_top1_fixed : NAN) |
                  runlog_attr(log, "test_top1_at_selected_fixed",
                              !res->has_fixed ? NAN : sel ? res->selected_top1_fixed : res->final_top1_fixed) |
                  runlog_attr(log, "eval_bits_fixed", res->has_fixed ? res->eval_bits_fixed : NAN) |
                  runlog_attr(log, "val_split", (double)res->val_split);
        const int end = runlog_end(log, "complete", res->final_top1, res->best_top1, res->wall_time_s);
        return bad ? -1 : end;
    }
    if (rc == 1) return runlog_end(log, "interrupted", NAN, NAN, res->wall_time_s);
    runlog_attr_text(log, "message", message);
    return runlog_end(log, "failed", NAN, NAN, res->wall_time_s);
}
