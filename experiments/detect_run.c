/* A detection run (experiments/detect_run.h). */
#include "detect_run.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backbone_init.h"
#include "blas.h"
#include "cpu.h"
#include "detect.h"
#include "engine_options.h"
#include "optim.h"
#include "precision.h"
#include "progress.h"

int detect_config(const RunConfig *c) { return !strcmp(c->arch, "frcnn_resnet18"); }

/* per-step components kept for the detect_train table (and the checkpoint) */
enum { DT_RPN_CLS, DT_RPN_BOX, DT_RCNN_CLS, DT_RCNN_BOX, DT_RPN_PRIOR, DT_RPN_REG, DT_HEAD_PRIOR, DT_HEAD_REG,
       DT_RPN_FG, DT_ROI_FG, DT_N };
static const char *const DT_NAMES[DT_N] = {"rpn_cls", "rpn_box", "rcnn_cls", "rcnn_box", "rpn_prior",
                                           "rpn_reg", "head_prior", "head_reg", "rpn_fg", "roi_fg"};
enum { DE_STEP, DE_MAP07, DE_MAP_ALL, DE_MAP07_70, DE_RECALL50, DE_N };
#define MAX_EVALS 4096

typedef struct {
    const RunConfig *c;
    const char *name;
    RunLog *log;
    const TrainControl *ctl;
    FILE *progress;
    VocSet *train_set, *test_set;
    DetData *train, *test;
    Detector det;
    DetectOptions o;
    PrecSchedule prec;
    AdamWConfig adamw;
    long total, per_epoch, n_test;
    int batch;
    /* loop state (checkpointed) */
    long step;
    /* best, last map07, train_time, wall_before, n_evals, fp32 MACs so far, the cost mean's sum, comp, n */
    double loop[10];
    LayerCost *lcb, *lch;    /* per-layer costs of the base (per image) and the head (per RoI) */
    double *lc_flat;         /* [3 * (base layers + head layers)]: their weighted sums, for the checkpoint */
    PrecCostMean cost_mean;
    double *rows;            /* [total][DT_N] */
    double evals[MAX_EVALS][DE_N];
    long n_evals;
    double t_start;
    DetBatch b;
    /* the last evaluation's detections */
    Detection *dets;
    int dcap;
    VocDet *all;
    long n_all, cap_all;
} DetRun;

/* ---- data ---- */

static int dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* data.path/VOCdevkit of the synthetic stand-in, written once (into a
 * temporary directory renamed into place: never half-written) */
static int synth_devkit(const RunConfig *c, char *devkit, int len, FILE *progress, char *err, size_t errlen) {
    char root[CFG_PATH];
    if (*c->data_path) snprintf(root, sizeof root, "%s", c->data_path);
    else snprintf(root, sizeof root, "data/synth_voc_%ld", c->synth_images);
    if (strlen(root) + 12 > (size_t)len) return snprintf(err, errlen, "data.path is too long"), -1;
    snprintf(devkit, (size_t)len, "%.*s/VOCdevkit", len - 12, root);
    if (dir_exists(devkit)) return 0;
    char tmp[CFG_PATH + 96];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", root, (long)getpid());
    if (progress) fprintf(progress, "writing the synthetic VOC devkit (%ld images) to %s\n", c->synth_images, root);
    /* the data do not depend on the run's seed: every run of a grid sees the same images */
    if (synth_voc_write(tmp, c->synth_images, 2024, err, errlen)) return -1;
    if (rename(tmp, root)) {
        if (dir_exists(devkit)) { /* another process made it first */
            char cmd[2 * CFG_PATH];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
            if (system(cmd)) {}
            return 0;
        }
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, root, strerror(errno));
        return -1;
    }
    return 0;
}

static int open_data(DetRun *r, char *err, size_t errlen) {
    const RunConfig *c = r->c;
    char devkit[CFG_PATH + 64];
    if (!strcmp(c->dataset, "synth_voc")) {
        if (synth_devkit(c, devkit, (int)sizeof devkit, r->progress, err, errlen)) return -1;
    } else {
        snprintf(devkit, sizeof devkit, "%s", *c->data_path ? c->data_path : "data/VOCdevkit");
        if (!dir_exists(devkit)) {
            snprintf(err, errlen, "no VOCdevkit at %s (data.path): datasets/fetch_voc.sh downloads PASCAL VOC 2007 "
                     "and 2012 there", devkit);
            return -1;
        }
    }
    const char *tr[] = {"VOC2007/trainval", "VOC2012/trainval", NULL}, *te[] = {"VOC2007/test", NULL};
    VocOpenOptions vo = {.keep_difficult = 1, .skip_bad = c->skip_bad, .check_images = 1};
    r->train_set = voc_open_ex(devkit, tr, &vo, err, errlen);
    if (!r->train_set) return -1;
    r->test_set = voc_open_ex(devkit, te, &vo, err, errlen);
    if (!r->test_set) return -1;
    DetDataOptions to = det_data_options_default(1), eo = det_data_options_default(0);
    to.min_size = eo.min_size = c->min_size;
    to.flip = c->det_flip;
    to.train_difficult = c->train_difficult;
    to.max_gt = eo.max_gt = c->max_gt_boxes;
    r->train = det_data_open(r->train_set, &to, err, errlen);
    if (!r->train) return -1;
    r->test = det_data_open(r->test_set, &eo, err, errlen);
    if (!r->test) return -1;
    /* images without a box are left out of training, as the reference's filter_roidb does: counted */
    const long skipped = det_data_skipped(r->train);
    if (r->log) runlog_attr(r->log, "images_skipped", (double)skipped);
    if (skipped && r->progress)
        fprintf(r->progress, "[%s] %ld training images have no box (after the difficult filter): left out\n",
                r->name, skipped);
    r->n_test = det_data_entries(r->test);
    if (c->test_subset > 0 && c->test_subset < r->n_test) r->n_test = c->test_subset;
    return 0;
}

/* the epoch's lr: x gamma after each schedule.step_epochs entry (0-based
 * epoch e >= s: the reference decays at the start of its 1-based epoch s + 1) */
static int decays_before(const RunConfig *c, long epoch) {
    int k = 0;
    for (int i = 0; i < c->n_step_epochs; i++) k += epoch >= (long)c->step_epochs[i];
    return k;
}

/* BiDet's IB weights: 0 until the first lr decay (detect.ib_start: first_decay) */
static void ib_weights(const RunConfig *c, long epoch, DetectOptions *o) {
    const int on = c->ib_start == 1 || (c->ib_start == 0 && decays_before(c, epoch) > 0);
    o->w_rpn_prior = on ? c->ib_rpn_prior : 0;
    o->w_rpn_reg = on ? c->ib_rpn_reg : 0;
    o->w_head_prior = on ? c->ib_head_prior : 0;
    o->w_head_reg = on ? c->ib_head_reg : 0;
}

/* ---- evaluation ---- */

/* the detections of the first n_test test images into r->all */
static int detect_test_set(DetRun *r, double *recall50, char *err, size_t errlen) {
    r->n_all = 0;
    return detect_dataset(&r->det, r->test, r->n_test, r->c->seed, &r->b, &r->dets, &r->dcap, &r->all, &r->n_all,
                          &r->cap_all, recall50, err, errlen);
}

/* mAP07, mAP all-point at IoU 0.5 and mAP07 at 0.7 (and per class at 0.5) */
static int score_detections(DetRun *r, const VocGtSet *g, double *m, VocApResult *per, char *err, size_t errlen) {
    double a07[VOC_NUM_CLASSES], aall[VOC_NUM_CLASSES], a70[VOC_NUM_CLASSES];
    for (int c = 0; c < VOC_NUM_CLASSES; c++) {
        VocApResult x, y;
        if (voc_ap_class(g->img, r->test_set->n, r->all, r->n_all, c + 1, 0.5, &x, err, errlen) ||
            voc_ap_class(g->img, r->test_set->n, r->all, r->n_all, c + 1, 0.7, &y, err, errlen))
            return -1;
        a07[c] = x.ap07, aall[c] = x.ap_all, a70[c] = y.ap07;
        if (per) per[c] = x;
    }
    m[0] = voc_ap_mean(a07, VOC_NUM_CLASSES);
    m[1] = voc_ap_mean(aall, VOC_NUM_CLASSES);
    m[2] = voc_ap_mean(a70, VOC_NUM_CLASSES);
    return 0;
}

static int run_evaluate(DetRun *r, long i, VocApResult *per, char *err, size_t errlen) {
    const RunConfig *c = r->c;
    const long every = c->eval_interval > 0 ? c->eval_interval : r->per_epoch;
    if ((i + 1) % every != 0 && i + 1 != r->total) return 0;
    const PrecBits pb = prec_at(&r->prec, i);
    r->det.base.bits = r->det.head.bits = pb.bits;
    VocGtSet g = {0};
    double m[3], rec = NAN;
    int rc = voc_gt_from_set(r->test_set, &g) ? (snprintf(err, errlen, "out of memory"), -1) : 0;
    if (!rc) rc = detect_test_set(r, &rec, err, errlen);
    if (!rc) rc = score_detections(r, &g, m, per, err, errlen);
    voc_gt_free(&g);
    if (rc) return -1;
    if (r->n_evals < MAX_EVALS) {
        double *e = r->evals[r->n_evals++];
        e[DE_STEP] = (double)(i + 1), e[DE_MAP07] = m[0], e[DE_MAP_ALL] = m[1], e[DE_MAP07_70] = m[2];
        e[DE_RECALL50] = rec;
    }
    r->loop[1] = 100 * m[0];
    if (100 * m[0] > r->loop[0]) r->loop[0] = 100 * m[0];
    /* the detector is selected as the reference selects it, on the test set
     * (data.val_split is 0 for VOC): periodic test rows, the last the final */
    if (r->log)
        runlog_test(r->log, i + 1, 100 * m[0], NAN, pb.bits, i + 1 == r->total ? TEST_FINAL : TEST_PERIODIC, 0);
    if (r->progress) {
        fprintf(r->progress, "[%s] eval @ step %ld on %ld images: mAP07 %.2f%% | mAP %.2f%% | mAP07@0.7 %.2f%% | "
                "proposal recall@0.5 %.3f | %ld detections\n", r->name, i + 1, r->n_test, 100 * m[0], 100 * m[1],
                100 * m[2], rec, r->n_all);
        fflush(r->progress);
    }
    return 0;
}

/* ---- checkpoint ---- */

/* the cost accumulators in and out of the checkpoint's arrays */
static void costs_to_state(DetRun *r) {
    const int nb = r->det.base.n_layers, nh = r->det.head.n_layers;
    for (int l = 0; l < nb + nh; l++) {
        const LayerCost *c = l < nb ? &r->lcb[l] : &r->lch[l - nb];
        r->lc_flat[3 * l] = c->weighted.fwd, r->lc_flat[3 * l + 1] = c->weighted.err;
        r->lc_flat[3 * l + 2] = c->weighted.wgrad;
    }
    r->loop[6] = r->cost_mean.sum, r->loop[7] = r->cost_mean.comp, r->loop[8] = (double)r->cost_mean.n;
}

static void costs_from_state(DetRun *r) {
    const int nb = r->det.base.n_layers, nh = r->det.head.n_layers;
    for (int l = 0; l < nb + nh; l++) {
        LayerCost *c = l < nb ? &r->lcb[l] : &r->lch[l - nb];
        c->weighted.fwd = r->lc_flat[3 * l], c->weighted.err = r->lc_flat[3 * l + 1];
        c->weighted.wgrad = r->lc_flat[3 * l + 2];
    }
    r->cost_mean.sum = r->loop[6], r->cost_mean.comp = r->loop[7], r->cost_mean.n = (long)r->loop[8];
}

static int ckpt_arrays(DetRun *r, CkptArray *a) {
    Model *b = &r->det.base, *h = &r->det.head;
    int n = 0;
    a[n++] = (CkptArray){"params", CK_REAL, b->n_params, b->params};
    a[n++] = (CkptArray){"opt_m", CK_REAL, b->n_params, b->opt_m};
    a[n++] = (CkptArray){"opt_v", CK_REAL, b->n_params, b->opt_v};
    a[n++] = (CkptArray){"buffers", CK_REAL, b->n_buffers, b->buffers};
    a[n++] = (CkptArray){"head_params", CK_REAL, h->n_params, h->params};
    a[n++] = (CkptArray){"head_opt_m", CK_REAL, h->n_params, h->opt_m};
    a[n++] = (CkptArray){"head_opt_v", CK_REAL, h->n_params, h->opt_v};
    a[n++] = (CkptArray){"head_buffers", CK_REAL, h->n_buffers, h->buffers};
    a[n++] = (CkptArray){"loop_state", CK_F64, 10, r->loop};
    a[n++] = (CkptArray){"layer_bitmacs", CK_F64, 3 * (size_t)(b->n_layers + h->n_layers), r->lc_flat};
    a[n++] = (CkptArray){"detect_rows", CK_F64, (size_t)r->total * DT_N, r->rows};
    a[n++] = (CkptArray){"detect_evals", CK_F64, (size_t)MAX_EVALS * DE_N, r->evals};
    return n;
}

static int run_checkpoint(DetRun *r, long i, int stop, char *err, size_t errlen) {
    const long every = r->ctl->checkpoint_every;
    if (!r->log || !(stop || i + 1 == r->total || (every > 0 && (i + 1) % every == 0))) return 0;
    const double wall_before = r->loop[3];
    r->loop[3] = wall_before + now_seconds() - r->t_start;
    r->loop[4] = (double)r->n_evals;
    costs_to_state(r);
    CkptArray a[12];
    const int n = ckpt_arrays(r, a);
    const int rc = runlog_checkpoint_save(r->log, i + 1, a, n);
    r->loop[3] = wall_before;
    if (rc || (i + 1 < r->total && runlog_commit(r->log))) {
        snprintf(err, errlen, "writing the checkpoint at iteration %ld failed (the results file keeps the previous "
                 "one)", i + 1);
        return -1;
    }
    return 0;
}

static int run_resume(DetRun *r, TrainResult *res, char *err, size_t errlen) {
    if (!r->log || !r->ctl->resume) return 0;
    CkptArray a[12];
    const int n = ckpt_arrays(r, a);
    long step = 0;
    const int got = runlog_checkpoint_load(r->log, &step, a, n, err, errlen);
    if (got < 0) return -1;
    if (got == 1) {
        if (step > r->total) {
            snprintf(err, errlen, "the checkpoint of run %s (step %ld) does not belong to this configuration",
                     r->name, step);
            return -1;
        }
        r->step = step;
        r->n_evals = (long)r->loop[4];
        costs_from_state(r);
        res->resumed_from = step;
        if (r->progress) fprintf(r->progress, "[%s] resuming from the checkpoint at step %ld/%ld\n", r->name, step,
                                 r->total);
    }
    if (runlog_truncate(r->log, r->step)) {
        snprintf(err, errlen, "truncating the log of run %s to its checkpoint failed", r->name);
        return -1;
    }
    return 0;
}

/* ---- the step ---- */

static void optimizer_step(DetRun *r, double lr, long t) {
    Model *ms[2] = {&r->det.base, &r->det.head};
    for (int k = 0; k < 2; k++) {
        Model *m = ms[k];
        if (r->c->optimizer == OPTIM_ADAMW) adamw_step(m->params, m->grads, m->opt_m, m->opt_v, m->n_trainable, lr,
                                                       &r->adamw, t);
        else {
            SGDConfig s = {.momentum = r->c->momentum, .dampening = r->c->dampening,
                           .weight_decay = r->c->weight_decay, .nesterov = r->c->nesterov};
            sgd_step(m->params, m->grads, m->opt_m, m->n_trainable, lr, &s, t);
        }
    }
}

static int run_step(DetRun *r, long i, double *lr_out, DetectLosses *L, char *err, size_t errlen) {
    const RunConfig *c = r->c;
    const double t0 = now_seconds();
    const long epoch = i / r->per_epoch, pos = i % r->per_epoch;
    int32_t ent[256];
    if (det_data_batch_entries(r->train, r->batch, c->seed, epoch, pos, ent) != r->batch)
        return snprintf(err, errlen, "batch %ld of epoch %ld is out of range", pos, epoch), -1;
    if (det_batch_load(r->train, ent, r->batch, c->seed, epoch, &r->b, err, errlen)) return -1;
    ib_weights(c, epoch, &r->det.o);
    const PrecBits pb = prec_at(&r->prec, i);
    Model *ms[2] = {&r->det.base, &r->det.head};
    for (int k = 0; k < 2; k++) {
        ms[k]->bits = pb.bits;
        ms[k]->grad_bits = pb.grad_bits;
        ms[k]->step = i;
    }
    if (detect_train_step(&r->det, &r->b, c->seed, i, L, err, errlen)) return -1;
    const double lr = c->lr * pow(c->gamma, decays_before(c, epoch));
    optimizer_step(r, lr, i + 1);
    r->loop[2] += now_seconds() - t0;
    /* the step's cost: the base at this batch's size per image, the head per RoI */
    const int R = r->batch * c->rois_per_image;
    layer_costs_raw(r->lcb, &r->det.base);
    layer_costs_add(r->lcb, r->det.base.n_layers, r->batch, pb.bits, pb.grad_bits);
    layer_costs_add(r->lch, r->det.head.n_layers, R, pb.bits, pb.grad_bits);
    for (int l = 0; l < r->det.base.n_layers; l++)
        r->loop[5] += (double)r->batch * (r->lcb[l].raw.fwd + r->lcb[l].raw.err + r->lcb[l].raw.wgrad);
    for (int l = 0; l < r->det.head.n_layers; l++)
        r->loop[5] += (double)R * (r->lch[l].raw.fwd + r->lch[l].raw.err + r->lch[l].raw.wgrad);
    const double cr = c->conv == CONV_BINARY ? prec_cost_ratio(pb.bits, pb.grad_bits) : 1.0;
    prec_cost_add(&r->cost_mean, cr);
    double *row = r->rows + (size_t)i * DT_N;
    const double v[DT_N] = {L->rpn_cls, L->rpn_box, L->rcnn_cls, L->rcnn_box, L->rpn_prior, L->rpn_reg,
                            L->head_prior, L->head_reg, (double)L->rpn_fg, (double)L->roi_fg};
    memcpy(row, v, sizeof v);
    *lr_out = lr;
    if (r->log) {
        TrainRow tr = {.step = i + 1, .loss = L->total, .lr = lr, .time_s = r->loop[3] + now_seconds() - r->t_start,
                       .bits = pb.bits, .grad_bits = pb.grad_bits, .cost_ratio = cr, .metric = NAN};
        if (runlog_train_row(r->log, &tr)) {
            snprintf(err, errlen, "writing the results file failed at iteration %ld", i + 1);
            return -1;
        }
    }
    return 0;
}

static void run_progress(DetRun *r, long i, double lr, const DetectLosses *L) {
    const long every = r->c->log_interval > 0 ? r->c->log_interval : 10;
    if (!r->progress || ((i + 1) % every != 0 && i + 1 != r->total)) return;
    const double done = (double)(i + 1 - r->step), ips = done > 0 ? done * r->batch / (r->loop[2] + 1e-9) : 0;
    char eta[32];
    format_duration(eta, sizeof eta, ips > 0 ? (double)(r->total - i - 1) * r->batch / ips : 0);
    fprintf(r->progress, "[%s] step %ld/%ld epoch %.2f | loss %.4f (rpn %.3f/%.3f rcnn %.3f/%.3f ib %.3f) | "
            "fg %ld/%ld | lr %.2e | %.1f img/s | ETA %s\n", r->name, i + 1, r->total,
            (double)(i + 1) / r->per_epoch, L->total, L->rpn_cls, L->rpn_box, L->rcnn_cls, L->rcnn_box,
            L->rpn_reg + L->rpn_prior + L->head_reg + L->head_prior, L->rpn_fg, L->roi_fg, lr, ips, eta);
    fflush(r->progress);
}

/* ---- the run's tables ---- */

static int write_tables(DetRun *r, const VocApResult *per, long done) {
    int rc = 0;
    /* detect_train */
    {
        double *cols = malloc(sizeof *cols * (size_t)done * DT_N + 1);
        int64_t *steps = malloc(sizeof *steps * (size_t)done + 1);
        if (!cols || !steps) rc = -1;
        ResultsColumn cc[DT_N + 1];
        if (!rc) {
            for (long i = 0; i < done; i++) {
                steps[i] = i + 1;
                for (int k = 0; k < DT_N; k++) cols[(size_t)k * done + i] = r->rows[(size_t)i * DT_N + k];
            }
            cc[0] = (ResultsColumn){"step", RCOL_INT64, "iterations", steps};
            for (int k = 0; k < DT_N; k++)
                cc[k + 1] = (ResultsColumn){DT_NAMES[k], RCOL_FLOAT64, k >= DT_RPN_FG ? "count" : "loss",
                                            cols + (size_t)k * done};
            rc = runlog_table(r->log, "detect_train", done, cc, DT_N + 1);
        }
        free(cols);
        free(steps);
    }
    /* detect_eval */
    if (!rc && r->n_evals > 0) {
        const long n = r->n_evals;
        double *cols = malloc(sizeof *cols * (size_t)n * DE_N);
        if (!cols) return -1;
        for (long i = 0; i < n; i++)
            for (int k = 0; k < DE_N; k++) cols[(size_t)k * n + i] = r->evals[i][k];
        const ResultsColumn cc[DE_N] = {{"step", RCOL_FLOAT64, "iterations", cols},
                                        {"map07", RCOL_FLOAT64, "VOC07 11-point mAP at IoU 0.5", cols + n},
                                        {"map_all", RCOL_FLOAT64, "all-point mAP at IoU 0.5", cols + 2 * n},
                                        {"map07_iou70", RCOL_FLOAT64, "VOC07 mAP at IoU 0.7", cols + 3 * n},
                                        {"recall50", RCOL_FLOAT64, "GT boxes covered by a proposal at IoU 0.5",
                                         cols + 4 * n}};
        rc = runlog_table(r->log, "detect_eval", n, cc, DE_N);
        free(cols);
    }
    /* ap: per class */
    if (!rc) {
        const char *names[VOC_NUM_CLASSES];
        int64_t ngt[VOC_NUM_CLASSES], ndet[VOC_NUM_CLASSES];
        double a07[VOC_NUM_CLASSES], aall[VOC_NUM_CLASSES];
        for (int c = 0; c < VOC_NUM_CLASSES; c++) {
            names[c] = VOC_CLASSES[c];
            ngt[c] = per[c].n_gt, ndet[c] = per[c].n_det, a07[c] = per[c].ap07, aall[c] = per[c].ap_all;
        }
        const ResultsColumn cc[5] = {{"class", RCOL_STRING, "", names}, {"n_gt", RCOL_INT64, "boxes", ngt},
                                     {"n_det", RCOL_INT64, "detections", ndet},
                                     {"ap07", RCOL_FLOAT64, "VOC07 11-point AP", a07},
                                     {"ap_all", RCOL_FLOAT64, "all-point AP", aall}};
        rc = runlog_table(r->log, "ap", VOC_NUM_CLASSES, cc, 5);
    }
    /* detections and the ids of the test images */
    if (!rc) {
        const long n = r->n_all;
        int64_t *ints = malloc(sizeof *ints * (2 * (size_t)n + 1));
        double *reals = malloc(sizeof *reals * (5 * (size_t)n + 1));
        const char **ids = malloc(sizeof *ids * ((size_t)r->test_set->n + 1));
        if (ints && reals && ids) {
            for (long i = 0; i < n; i++) {
                ints[i] = r->all[i].image, ints[n + i] = r->all[i].label;
                reals[i] = r->all[i].score;
                for (int c = 0; c < 4; c++) reals[(size_t)(c + 1) * n + i] = r->all[i].box[c];
            }
            const ResultsColumn cc[7] = {{"image", RCOL_INT64, "index into detection_images", ints},
                                         {"class", RCOL_INT64, "1..20, VOC_CLASSES order + 1", ints + n},
                                         {"score", RCOL_FLOAT64, "probability", reals},
                                         {"x1", RCOL_FLOAT64, "pixels, 0-based inclusive", reals + n},
                                         {"y1", RCOL_FLOAT64, "pixels, 0-based inclusive", reals + 2 * n},
                                         {"x2", RCOL_FLOAT64, "pixels, 0-based inclusive", reals + 3 * n},
                                         {"y2", RCOL_FLOAT64, "pixels, 0-based inclusive", reals + 4 * n}};
            rc = runlog_table(r->log, "detections", n, cc, 7);
            for (long i = 0; i < r->test_set->n; i++) ids[i] = r->test_set->images[i].id;
            const ResultsColumn ic[1] = {{"id", RCOL_STRING, "VOC image id", ids}};
            if (!rc) rc = runlog_table(r->log, "detection_images", r->test_set->n, ic, 1);
        } else rc = -1;
        free(ints);
        free(reals);
        free(ids);
    }
    return rc;
}

/* cost/ and summary/ of both graphs: the base's layers per image, then the
 * head's times the RoIs of a training image (their weighted sums are totals) */
static int record_costs(DetRun *r, const TrainResult *res) {
    const Model *b = &r->det.base, *h = &r->det.head;
    const int nb = b->n_layers, n = nb + h->n_layers, R = r->c->rois_per_image;
    SummaryRow *rows = calloc((size_t)n, sizeof *rows);
    LayerCost *lc = calloc((size_t)n, sizeof *lc);
    int rc = -1;
    if (rows && lc) {
        model_summary_rows(b, rows);
        model_summary_rows(h, rows + nb);
        for (int l = 0; l < nb; l++) lc[l] = r->lcb[l];
        for (int l = nb; l < n; l++) {
            SummaryRow *w = &rows[l];
            w->macs_1bit *= R, w->macs_32bit *= R;
            lc[l] = r->lch[l - nb];
            lc[l].raw.fwd *= R, lc[l].raw.err *= R, lc[l].raw.wgrad *= R;
            char name[sizeof w->name];
            snprintf(name, sizeof name, "head.%.40s", w->name);
            memcpy(w->name, name, sizeof name);
        }
        rc = run_record_results_rows(r->log, rows, lc, n, res);
    }
    free(rows);
    free(lc);
    return rc;
}

/* ---- the run ---- */

static int run_setup(DetRun *r, char *err, size_t errlen) {
    const RunConfig *c = r->c;
    if (open_data(r, err, errlen)) return -1;
    r->batch = c->batch_size;
    if (r->batch > 256) return snprintf(err, errlen, "train.batch_size %d: a detection batch holds at most 256 images",
                                        r->batch), -1;
    r->per_epoch = det_data_batches(r->train, r->batch);
    if (r->per_epoch < 1) {
        snprintf(err, errlen, "%ld training images with boxes make no batch of %d", det_data_entries(r->train),
                 r->batch);
        return -1;
    }
    r->total = c->iterations > 0 ? c->iterations : (long)ceil(c->epochs * (double)r->per_epoch);
    r->rows = calloc((size_t)r->total * DT_N + 1, sizeof *r->rows);
    if (!r->rows) return snprintf(err, errlen, "out of memory for %ld steps' rows", r->total), -1;
    int mh, mw, th, tw;
    det_data_max_size(r->train, r->batch, &mh, &mw);
    det_data_max_size(r->test, 1, &th, &tw);
    detect_options_from_config(c, &r->o);
    if (detector_init(&r->det, &r->o, r->batch, mh > th ? mh : th, mw > tw ? mw : tw, c->seed, err, errlen))
        return -1;
    if (*c->backbone_init) {
        char msg[1024];
        if (backbone_init(&r->det.base, &r->det.head, c->backbone_init, msg, sizeof msg)) {
            snprintf(err, errlen, "detect.backbone_init: %s", msg);
            return -1;
        }
        if (r->progress) fprintf(r->progress, "[%s] %s\n", r->name, msg);
    }
    r->det.base.bconv = r->det.head.bconv = binary_conv_faithful();
    binary_options_from_config(&r->det.base.bconv, c);
    binary_options_from_config(&r->det.head.bconv, c);
    PrecEval pe;
    prec_from_config(c, r->total, &r->prec, &pe);
    const int nb = r->det.base.n_layers, nh = r->det.head.n_layers;
    r->lcb = calloc((size_t)nb, sizeof *r->lcb);
    r->lch = calloc((size_t)nh, sizeof *r->lch);
    r->lc_flat = calloc(3 * (size_t)(nb + nh), sizeof *r->lc_flat);
    if (!r->lcb || !r->lch || !r->lc_flat) return snprintf(err, errlen, "out of memory for the cost tables"), -1;
    layer_costs_init(r->lcb, &r->det.base);
    layer_costs_init(r->lch, &r->det.head);
    r->adamw = (AdamWConfig){.beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps, .weight_decay = c->weight_decay};
    r->loop[0] = -1;
    if (r->progress)
        fprintf(r->progress, "== run %s: frcnn_resnet18 width %d (%s backbone convs, %s RPN conv) on %s: %ld train "
                "entries (%ld images), %ld test images, %ld iterations = %.2f epochs of %ld, batch %d, %s lr %.3g, "
                "%ld parameters, %d threads\n", r->name, c->width, config_enum_name("model.conv", c->conv),
                config_enum_name("detect.rpn_conv", c->rpn_conv), c->dataset, det_data_entries(r->train),
                r->train_set->n, r->n_test, r->total, (double)r->total / r->per_epoch, r->per_epoch, r->batch,
                config_enum_name("optim.name", c->optimizer), c->lr, detector_params(&r->det), engine_threads());
    return 0;
}

static void run_teardown(DetRun *r) {
    detector_free(&r->det);
    det_batch_free(&r->b);
    det_data_close(r->train);
    det_data_close(r->test);
    voc_close(r->train_set);
    voc_close(r->test_set);
    free(r->rows);
    free(r->lcb);
    free(r->lch);
    free(r->lc_flat);
    free(r->dets);
    free(r->all);
}

int detect_run(const RunConfig *c, const char *run_name, RunLog *log, const TrainControl *ctl, FILE *progress,
               TrainResult *res, char *err, size_t errlen) {
    static const TrainControl lone;
    DetRun *r = calloc(1, sizeof *r);
    memset(res, 0, sizeof *res);
    res->status = -1;
    if (!r) return snprintf(err, errlen, "out of memory"), -1;
    /* the detector's step has no shard plan (its RoI heads and losses are
     * per image, its batch tiny): one process trains it (issue 15) */
    if (c->shards > 1 || (ctl && ctl->group && ctl->group->size > 1)) {
        snprintf(err, errlen, "a detection run trains on one process: train.shards is %d and %d ranks were given "
                 "(set train.shards: 1 and --ranks-per-run 1)", c->shards, ctl && ctl->group ? ctl->group->size : 1);
        free(r);
        return -1;
    }
    *r = (DetRun){.c = c, .name = run_name, .log = log, .ctl = ctl ? ctl : &lone, .progress = progress,
                  .t_start = now_seconds()};
    engine_set_threads(c->threads);
    VocApResult per[VOC_NUM_CLASSES];
    memset(per, 0, sizeof per);
    long done = -1;
    if (run_setup(r, err, errlen) == 0 && run_resume(r, res, err, errlen) == 0) {
        done = r->step;
        for (long i = r->step; i < r->total; i++) {
            double lr;
            DetectLosses L;
            if (run_step(r, i, &lr, &L, err, errlen)) { done = -1; break; }
            run_progress(r, i, lr, &L);
            if (run_evaluate(r, i, per, err, errlen)) { done = -1; break; }
            const int stop = train_stop_requested && i + 1 < r->total;
            if (run_checkpoint(r, i, stop, err, errlen)) { done = -1; break; }
            done = i + 1;
            if (stop) break;
        }
        /* a resumed run that had finished: evaluate once more for the tables */
        if (done == r->total && r->step == r->total && run_evaluate(r, r->total - 1, per, err, errlen)) done = -1;
    }
    res->wall_time_s = r->loop[3] + now_seconds() - r->t_start;
    if (done >= 0) {
        res->iterations = done;
        res->final_top1 = r->loop[1];
        res->best_top1 = r->loop[0] < 0 ? 0 : r->loop[0];
        res->final_loss = NAN;
        res->images_per_s = r->loop[2] > 0 ? (double)done * r->batch / r->loop[2] : 0;
        res->status = done == r->total ? 0 : 1;
        res->mean_cost_ratio = prec_cost_mean(&r->cost_mean);
        res->fp32_macs = r->loop[5];
        for (int l = 0; l < r->det.base.n_layers; l++)
            res->bit_macs += r->lcb[l].weighted.fwd + r->lcb[l].weighted.err + r->lcb[l].weighted.wgrad;
        for (int l = 0; l < r->det.head.n_layers; l++)
            res->bit_macs += r->lch[l].weighted.fwd + r->lch[l].weighted.err + r->lch[l].weighted.wgrad;
        if (log && record_costs(r, res)) {
            snprintf(err, errlen, "writing the cost and summary tables failed");
            res->status = -1;
        }
        if (log && res->status == 0 && write_tables(r, per, done)) {
            snprintf(err, errlen, "writing the detection tables failed");
            res->status = -1;
        }
    }
    run_teardown(r);
    free(r);
    return res->status;
}
