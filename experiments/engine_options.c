/* RunConfig -> engine option structs (experiments/engine_options.h). */
#include "engine_options.h"
#include "split.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cifar10.h"
#include "cost.h"
#include "detect_cost.h"
#include "imagenet.h"

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

ConvKind conv_kind_from_config(const RunConfig *c) { return c->conv; }

/* what model.conv and binary.* select */
void binary_options_from_config(BinaryConvOptions *o, const RunConfig *c) {
    *o = binary_conv_faithful();
    o->sign_zero = c->sign_zero;
    o->pad_minus_one = c->bin_pad == BIN_PAD_MINUS_ONE;
    o->act_grad = c->act_grad;
    o->act_norm = c->act_norm;
    o->weight_center = c->weight_center;
    o->recu_clamp = c->recu_clamp;
    if (c->recu_clamp) o->clamp_tau = c->clamp_tau;
    o->grad_quant = c->grad_quant;
    o->grad_stochastic = c->grad_stochastic;
    o->bwd_fp32 = c->bin_backward == BIN_BACKWARD_FP32;
}

void prec_from_config(const RunConfig *c, long total_iters, PrecSchedule *s, PrecEval *e) {
    if (s) {
        memset(s, 0, sizeof *s);
        s->kind = c->prec_schedule;
        s->bits_min = c->bits.min;
        s->bits_max = c->bits.max;
        s->grad_min = c->grad_bits.min;
        s->grad_max = c->grad_bits.max;
        s->cycles = c->prec_cycles;
        s->total_iters = total_iters;
        s->cyclic_warmup = c->cyclic_warmup;
        s->warmup_bits = c->warmup_bits;
        s->warmup_grad_bits = 0.0;
    }
    if (e) {
        e->kind = c->prec_eval;
        e->bits = config_eval_bits(c); /* 0 = the top of the bit range */
    }
}

void lr_schedule_from_config(const RunConfig *c, long total_iters, LRSchedule *s) {
    memset(s, 0, sizeof *s);
    s->kind = c->lr_schedule;
    s->lr0 = c->lr;
    s->eta_min = c->eta_min;
    s->total_iters = total_iters;
    s->cyclic_warmup = c->cyclic_warmup;
    s->num_cyclic_annealing = c->num_cyclic_annealing;
    s->step_size = c->step_size;
    s->gamma = c->gamma;
    s->warmup_iters = c->warmup_iters;
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

int data_from_config_split(const RunConfig *c, Dataset *train, Dataset *val, Dataset *test, char *err,
                          size_t errlen) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    int rc;
    if (!strcmp(c->dataset, "fashion_mnist")) {
        rc = fashion_mnist_load(train, test, c->data_path, err, errlen);
    } else if (!strcmp(c->dataset, "cifar10")) {
        rc = cifar10_load(train, test, c->data_path, err, errlen);
    } else if (!strcmp(c->dataset, "imagenet")) {
        ImagenetOptions opt;
        imagenet_default_options(&opt);
        opt.skip_bad = c->skip_bad;
        rc = imagenet_load_opts(train, test, c->data_path, c->image_size, &opt, err, errlen);
    } else {
        snprintf(err, errlen, "dataset '%s' has no loader", c->dataset);
        return -1;
    }
    if (rc) return -1;
    /* the hold-out first (drawn from the whole file by data.split_seed), then
     * data.train_subset: the first N of what is left */
    const long n_val = config_val_split(c, train->n);
    if (n_val > 0) {
        Dataset full = *train;
        if (dataset_holdout(&full, n_val, c->split_seed, train, val, err, errlen)) {
            dataset_free(&full);
            dataset_free(test);
            memset(train, 0, sizeof *train);
            return -1;
        }
    }
    dataset_truncate(train, c->train_subset);
    dataset_truncate(test, c->test_subset);
    return 0;
}

int data_from_config(const RunConfig *c, Dataset *train, Dataset *test, char *err, size_t errlen) {
    Dataset val;
    if (data_from_config_split(c, train, &val, test, err, errlen)) return -1;
    dataset_free(&val);
    return 0;
}

int data_shape_from_config(const RunConfig *c, DatasetShape *shape, long *n_train) {
    if (dataset_nominal(c->dataset, shape)) return -1;
    const long left = shape->n_train - config_val_split(c, shape->n_train); /* the validation hold-out */
    *n_train = c->train_subset > 0 && c->train_subset < left ? c->train_subset : left;
    return 0;
}

int model_from_config(Model *m, const RunConfig *c, int C, int H, int W, int num_classes, char *err, size_t errlen) {
    if (model_build(m, c->arch, conv_kind_from_config(c), C, H, W, num_classes, err, errlen)) return -1;
    binary_options_from_config(&m->bconv, c);
    m->seed = c->seed;
    m->memory_lean = c->train_memory;
    m->fp32_conv = c->fp32_conv;
    return 0;
}

int train_options_from_config(const RunConfig *c, long n_train, TrainOptions *o, char *err, size_t errlen) {
    memset(o, 0, sizeof *o);
    snprintf(o->arch, sizeof o->arch, "%s", c->arch);
    o->binary_kind = conv_kind_from_config(c);
    binary_options_from_config(&o->bconv, c);
    o->batch = c->batch_size;
    o->per_epoch = o->batch > 0 ? n_train / o->batch : 0;
    if (o->per_epoch < 1) {
        snprintf(err, errlen, "train.batch_size %d is larger than the training set (%ld images)", o->batch, n_train);
        return -1;
    }
    if (train_check_iterations(c, n_train, err, errlen)) return -1;
    o->total = train_total_iterations(c, n_train);
    prec_from_config(c, o->total, &o->prec, &o->prec_eval);
    o->fixed_eval.kind = PREC_EVAL_FIXED;
    o->fixed_eval.bits = config_eval_bits(c);
    o->fixed_eval_too = c->prec_schedule == PREC_CYCLIC && c->prec_eval != PREC_EVAL_FIXED;
    /* binary convs keep 1-byte activation codes for backward when every
     * forward of this run (training and evaluation) quantizes to 1..8 bits */
    o->bconv.save_act_codes = prec_bits_within(&o->prec, &o->prec_eval, 1, 8);
    lr_schedule_from_config(c, o->total, &o->lr);
    o->optim = c->optimizer;
    o->adamw = (AdamWConfig){c->beta1, c->beta2, c->eps, c->weight_decay};
    o->sgd = (SGDConfig){c->momentum, c->dampening, c->weight_decay, c->nesterov};
    train_augment_from_config(c, &o->aug, &o->eval_aug);
    o->loader_workers = c->loader_workers;
    o->eval_batch = c->eval_batch_size;
    o->eval_every = c->eval_interval > 0 ? c->eval_interval : o->per_epoch;
    o->log_every = c->log_interval > 0 ? c->log_interval : 50;
    o->seed = c->seed;
    o->threads = c->threads;
    o->shards = c->shards;
    o->memory_lean = c->train_memory;
    o->fp32_conv = c->fp32_conv;
    o->conv_name = config_enum_name("model.conv", c->conv);
    o->optim_name = config_enum_name("optim.name", c->optimizer);
    o->lr_name = config_enum_name("schedule.lr", c->lr_schedule);
    o->prec_name = config_enum_name("precision.schedule", c->prec_schedule);
    return 0;
}

/* the per-iteration factors of a unit binary layer, summed over the run */
static int unit_bit_factors(const PrecSchedule *prec, long total, PrecMacs *f, double *mean_cr, char *err,
                            size_t errlen) {
    /* weighted MACs are linear in the raw counts: sum the per-iteration
     * factors of a unit binary layer once, then scale every layer. The sum is
     * taken per stretch of constant bits (prec_tally), not per iteration:
     * each factor is b*b/1024 or b*g/1024 with whole b, g <= 32, so every
     * product count * factor and every partial sum is a multiple of 2^-10
     * below 2^50 and exact in a double, and f is bitwise the sum the
     * per-iteration loop gave. */
    PrecTally tally[PREC_TALLY_MAX];
    const int nt = prec_tally(prec, total, tally, PREC_TALLY_MAX);
    if (nt < 0) {
        snprintf(err, errlen, "the precision schedule has more than %d stretches of constant bits", PREC_TALLY_MAX);
        return -1;
    }
    const PrecMacs unit = {1, 1, 1};
    *f = (PrecMacs){0, 0, 0};
    for (int t = 0; t < nt; t++) {
        PrecMacs w = prec_weighted_macs(unit, 1, tally[t].b.bits, tally[t].b.grad_bits);
        const double n = (double)tally[t].count;
        f->fwd += n * w.fwd;
        f->err += n * w.err;
        f->wgrad += n * w.wgrad;
    }
    *mean_cr = prec_tally_cost_mean(tally, nt);
    return 0;
}

int train_estimate(const RunConfig *c, int channels, int height, int width, int num_classes, long n_train,
                   TrainEstimate *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    Model m;
    if (train_check_iterations(c, n_train, err, errlen)) return -1;
    if (model_build(&m, c->arch, conv_kind_from_config(c), channels, height, width, num_classes, err, errlen))
        return -1;
    const long total = train_total_iterations(c, n_train);
    LayerCost *lc = calloc((size_t)m.n_layers, sizeof *lc);
    PrecSchedule prec;
    prec_from_config(c, total, &prec, NULL);
    PrecMacs f;
    double mean_cr = NAN;
    int rc = lc ? unit_bit_factors(&prec, total, &f, &mean_cr, err, errlen) : -1;
    if (!lc) snprintf(err, errlen, "out of memory");
    if (rc == 0) {
        layer_costs_init(lc, &m);
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
        out->mean_cost_ratio = conv_kind_from_config(c) == CONV_BINARY ? mean_cr : total > 0 ? 1.0 : NAN;
    }
    free(lc);
    model_free(&m);
    return rc;
}

/* ---- detection ---- */

void detect_options_from_config(const RunConfig *c, DetectOptions *o) {
    *o = detect_defaults();
    o->width = c->width;
    o->rpn_conv = (RpnConvKind)c->rpn_conv;
    o->binary_kind = c->conv;
    o->n_scales = c->n_anchor_scales;
    o->n_ratios = c->n_anchor_ratios;
    for (int i = 0; i < c->n_anchor_scales; i++) o->scales[i] = c->anchor_scales[i];
    for (int i = 0; i < c->n_anchor_ratios; i++) o->ratios[i] = c->anchor_ratios[i];
    DetectTargetOptions *t = &o->tgt;
    t->rpn_pos_iou = (float)c->rpn_pos_iou;
    t->rpn_neg_iou = (float)c->rpn_neg_iou;
    t->rpn_batch = c->rpn_batch;
    t->rpn_fg_fraction = (float)c->rpn_fg_fraction;
    t->pre_nms_train = c->pre_nms_train;
    t->post_nms_train = c->post_nms_train;
    t->pre_nms_test = c->pre_nms_test;
    t->post_nms_test = c->post_nms_test;
    t->rpn_nms = (float)c->rpn_nms;
    t->min_size = (float)c->proposal_min_size;
    t->delta_clamp = c->delta_clamp;
    t->rois_per_image = c->rois_per_image;
    t->roi_fg_fraction = (float)c->roi_fg_fraction;
    t->roi_fg_iou = (float)c->roi_fg_iou;
    t->roi_bg_hi = (float)c->roi_bg_hi;
    t->roi_bg_lo = (float)c->roi_bg_lo;
    t->nms_gt_or_equal = c->nms_ge;
    o->roi.PH = o->roi.PW = c->pool_size;
    o->roi.aligned = c->roi_aligned;
    o->rpn_sigma = c->rpn_sigma;
    o->rcnn_sigma = c->rcnn_sigma;
    o->sample_sigma = c->sample_sigma;
    o->box_noise = (BoxNoise)c->box_noise;
    o->rpn_weight_last_image = c->rpn_weight == 0;
    o->head_prior_zero = c->head_prior_zero;
    o->head_prior_score = c->head_prior_score;
    o->test_nms = c->test_nms;
    o->test_score = c->test_score;
    o->max_per_image = c->max_per_image;
    o->max_gt = c->max_gt_boxes;
    o->bn_gamma = c->bn_gamma_init;
}

/* The published sizes of the detection sets: VOC07 trainval (5,011) + VOC12
 * trainval (11,540) and VOC07 test (4,952); synth_voc_write puts half its
 * images in VOC2007 (every other one in test) and half in VOC2012. */
static void detect_nominal(const RunConfig *c, long *train, long *test) {
    if (!strcmp(c->dataset, "voc")) *train = 16551, *test = 4952;
    else *train = c->synth_images / 2 + c->synth_images / 4, *test = c->synth_images - *train;
}

int detect_estimate(const RunConfig *c, TrainEstimate *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    long n_train, n_test;
    detect_nominal(c, &n_train, &n_test);
    const long entries = c->det_flip ? 2 * n_train : n_train;
    const long per_epoch = entries / c->batch_size;
    if (per_epoch < 1) return snprintf(err, errlen, "%ld training entries make no batch of %d", entries, c->batch_size), -1;
    const long total = c->iterations > 0 ? c->iterations : (long)ceil(c->epochs * (double)per_epoch);
    /* the nominal image: VOC's typical 500 x 375 at the shorter side min_size */
    const int H = c->min_size, W = (int)lround(c->min_size * 4.0 / 3.0);
    DetectOptions o;
    detect_options_from_config(c, &o);
    DetectCost dc;
    if (detect_cost(&o, H, W, 0, 0, &dc, err, errlen)) return -1;
    PrecSchedule prec;
    prec_from_config(c, total, &prec, NULL);
    PrecMacs f;
    double mean_cr = NAN;
    if (unit_bit_factors(&prec, total, &f, &mean_cr, err, errlen)) return -1;
    const double B = c->batch_size;
    out->iterations = total;
    out->fwd_macs = (long)dc.train_fwd.total;
    out->fp32_macs = (double)total * B * dc.train.total;
    out->bit_macs = (double)total * B * dc.train.fp32 +
                    B * (f.fwd * dc.train_fwd.binary + f.err * dc.train_err.binary + f.wgrad * dc.train_wgrad.binary);
    out->mean_cost_ratio = c->conv == CONV_BINARY ? mean_cr : total > 0 ? 1.0 : NAN;
    return 0;
}
