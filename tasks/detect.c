/* The detection task (tasks/detect.h). */
#include "detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxes.h"
#include "det_loss.h"
#include "progress.h"
#include "rng.h"

/* the streams of the detector's random draws, beside core/rng.h's */
enum { RNG_DETECT_SAMPLE = 40, RNG_DETECT_NOISE = 41 };

DetectOptions detect_defaults(void) {
    DetectOptions o = {
        .width = 64,
        .rpn_conv = RPN_CONV_BIDET,
        .binary_kind = CONV_BINARY,
        .bn_gamma = 1e-8,
        .num_classes = 21,
        .anchor_base = 16,
        .stride = 16,
        .n_ratios = 3,
        .n_scales = 3,
        .ratios = {0.5, 1, 2},
        .scales = {8, 16, 32},
        .tgt = detect_target_defaults(),
        .roi = {.PH = 7, .PW = 7, .spatial_scale = 1.0 / 16.0, .sampling_ratio = 0, .aligned = 0},
        .rpn_sigma = 3,
        .rcnn_sigma = 1,
        .sample_sigma = 0.001,
        .box_noise = BOX_NOISE_ALWAYS,
        .rpn_weight_last_image = 1,
        .head_prior_zero = 1,
        .head_prior_score = 0.01,
        .test_nms = 0.3,
        .test_score = 0.0,
        .max_per_image = 100,
        .max_gt = 20,
    };
    return o;
}

/* the step's buffers, sized at init for max_batch images of the largest size */
typedef struct {
    int max_anchors;                /* K * A at the largest feature map */
    int post_max;                   /* max(post_nms_train, post_nms_test) */
    int rois_max;                   /* max_batch * max(rois_per_image, post_nms_test) */
    float *anchors;                 /* [max_anchors][4] */
    float *fg;                      /* [max_batch][max_anchors] */
    float *deltas;                  /* [max_batch][max_anchors][4] the sampled RPN boxes */
    real *eps;                      /* [max_batch][max_anchors][4] their noise */
    int8_t *labels;                 /* [max_batch][max_anchors] */
    float *targets, *inw;           /* [max_batch][max_anchors][4], [max_batch][max_anchors] */
    float *props, *pscores;         /* [max_batch][post_max][4], [max_batch][post_max] */
    float *roi5;                    /* [rois_max][5] */
    int32_t *roi_labels;            /* [rois_max] */
    float *roi_targets, *roi_inw;   /* [rois_max][4], [rois_max] */
    real *pooled;                   /* [rois_max][C3 * PH * PW] */
    real *hprob;                    /* [rois_max][num_classes] */
    real *heps, *hbox;              /* [rois_max][4]: the head box noise and sampled box */
    float *dec;                     /* [rois_max][4] decoded boxes (head prior, test) */
    float *cscore;                  /* [rois_max] */
    int *idx, *keep;                /* [rois_max] */
    int n_lab[DETECT_MAX_BATCH];     /* labelled anchors per image of the last targets */
    long counts[4];                 /* rpn fg, rpn bg, RoI fg, RoI bg of the last targets */
    int targets_valid;              /* the targets above belong to an earlier step (freeze_targets) */
    double phase_t;                 /* Detector.phase_s: when the current phase began */
} DetBuf;

/* Detector.phase_s: the seconds since the last mark go to phase i (i < 0: only restart) */
static void phase_mark(Detector *d, int i) {
    if (!d->phase_s) return;
    DetBuf *s = d->buf;
    const double t = now_seconds();
    if (i >= 0) d->phase_s[i] += t - s->phase_t;
    s->phase_t = t;
}

void detector_free(Detector *d) {
    DetBuf *s = d->buf;
    if (s) {
        free(s->anchors); free(s->fg); free(s->deltas); free(s->eps); free(s->labels); free(s->targets);
        free(s->inw); free(s->props); free(s->pscores); free(s->roi5); free(s->roi_labels); free(s->roi_targets);
        free(s->roi_inw); free(s->pooled); free(s->hprob); free(s->heps); free(s->hbox); free(s->dec);
        free(s->cscore); free(s->idx); free(s->keep);
        free(s);
    }
    d->buf = NULL;
    free(d->anchors0);
    d->anchors0 = NULL;
    model_free(&d->base);
    model_free(&d->head);
}

long detector_params(const Detector *d) { return (long)(d->base.n_params + d->head.n_params); }

static int detbuf_alloc(Detector *d, int maxH, int maxW) {
    DetBuf *s = calloc(1, sizeof *s);
    if (!s) return -1;
    d->buf = s;
    const DetectOptions *o = &d->o;
    const Layer *feat = &d->base.layers[d->base.outputs[FRCNN_FEAT]];
    (void)maxH; (void)maxW;
    /* the plan's feature map is the largest one (model_plan sized the base for maxH x maxW) */
    const size_t B = (size_t)d->max_batch, NA = (size_t)feat->H * feat->W * d->A;
    s->max_anchors = (int)NA;
    s->post_max = o->tgt.post_nms_train > o->tgt.post_nms_test ? o->tgt.post_nms_train : o->tgt.post_nms_test;
    const int per_img = o->tgt.rois_per_image > o->tgt.post_nms_test ? o->tgt.rois_per_image : o->tgt.post_nms_test;
    s->rois_max = d->max_batch * per_img;
    const size_t R = (size_t)s->rois_max, P = (size_t)s->post_max;
    const size_t pooled = (size_t)feat->C * o->roi.PH * o->roi.PW;
    s->anchors = malloc(NA * 4 * sizeof *s->anchors);
    s->fg = malloc(B * NA * sizeof *s->fg);
    s->deltas = malloc(B * NA * 4 * sizeof *s->deltas);
    s->eps = malloc(B * NA * 4 * sizeof *s->eps);
    s->labels = malloc(B * NA * sizeof *s->labels);
    s->targets = malloc(B * NA * 4 * sizeof *s->targets);
    s->inw = malloc(B * NA * sizeof *s->inw);
    s->props = malloc(B * P * 4 * sizeof *s->props);
    s->pscores = malloc(B * P * sizeof *s->pscores);
    s->roi5 = malloc(R * 5 * sizeof *s->roi5);
    s->roi_labels = malloc(R * sizeof *s->roi_labels);
    s->roi_targets = malloc(R * 4 * sizeof *s->roi_targets);
    s->roi_inw = malloc(R * sizeof *s->roi_inw);
    s->pooled = malloc(R * pooled * sizeof *s->pooled);
    s->hprob = malloc(R * (size_t)o->num_classes * sizeof *s->hprob);
    s->heps = malloc(R * 4 * sizeof *s->heps);
    s->hbox = malloc(R * 4 * sizeof *s->hbox);
    s->dec = malloc(R * 4 * sizeof *s->dec);
    s->cscore = malloc(R * sizeof *s->cscore);
    s->idx = malloc(R * sizeof *s->idx);
    s->keep = malloc(R * sizeof *s->keep);
    return s->anchors && s->fg && s->deltas && s->eps && s->labels && s->targets && s->inw && s->props &&
                   s->pscores && s->roi5 && s->roi_labels && s->roi_targets && s->roi_inw && s->pooled && s->hprob &&
                   s->heps && s->hbox && s->dec && s->cscore && s->idx && s->keep
               ? 0
               : -1;
}

int detector_init(Detector *d, const DetectOptions *o, int max_batch, int maxH, int maxW, uint64_t seed, char *err,
                  size_t errlen) {
    memset(d, 0, sizeof *d);
    d->o = *o;
    d->max_batch = max_batch;
    d->A = o->n_ratios * o->n_scales;
    d->anchors0 = malloc((size_t)d->A * 4 * sizeof *d->anchors0);
    if (!d->anchors0) goto oom;
    anchors_base(o->anchor_base, o->ratios, o->n_ratios, o->scales, o->n_scales, d->anchors0);
    if (frcnn_build_base(&d->base, o->width, o->rpn_conv, o->binary_kind, maxH, maxW, d->A, (real)o->bn_gamma, err,
                         errlen) ||
        frcnn_build_head(&d->head, o->width, o->binary_kind, o->roi.PH, o->num_classes, (real)o->bn_gamma, err,
                         errlen))
        return -1;
    if (model_plan(&d->base, max_batch, maxH, maxW, err, errlen)) return -1;
    const int per_img = o->tgt.rois_per_image > o->tgt.post_nms_test ? o->tgt.rois_per_image : o->tgt.post_nms_test;
    if (model_alloc(&d->head, max_batch * per_img)) {
        snprintf(err, errlen, "out of memory for the detector head (%d RoIs)", max_batch * per_img);
        return -1;
    }
    model_init_params(&d->base, seed);
    model_init_params(&d->head, seed ^ 0x68656164ULL); /* "head": its own streams */
    d->base.seed = d->head.seed = seed;
    if (detbuf_alloc(d, maxH, maxW) == 0) return 0;
oom:
    snprintf(err, errlen, "out of memory for the detector's buffers (batch %d, %dx%d)", max_batch, maxW, maxH);
    return -1;
}

/* ---- the RPN ---- */

/* fg probabilities and sampled deltas of image b, anchor order k*A + a:
 * cls [2A, K], box [8A, K] (K = Hf*Wf) */
static void rpn_decode_outputs(const Detector *d, int b, int K, int noise, uint64_t seed, long key) {
    DetBuf *s = d->buf;
    const int A = d->A, NA = K * A;
    const real *cls = model_output(&d->base, FRCNN_RPN_CLS) + (size_t)b * 2 * A * K;
    const real *box = model_output(&d->base, FRCNN_RPN_BOX) + (size_t)b * 8 * A * K;
    float *fg = s->fg + (size_t)b * s->max_anchors, *dl = s->deltas + (size_t)b * s->max_anchors * 4;
    real *eps = s->eps + (size_t)b * s->max_anchors * 4;
    Rng r = rng_stream(seed, RNG_DETECT_NOISE, (uint64_t)key, (uint64_t)b);
    for (int k = 0; k < K; k++)
        for (int a = 0; a < A; a++) {
            const int i = k * A + a;
            const double zb = cls[(size_t)a * K + k], zf = cls[(size_t)(A + a) * K + k];
            fg[i] = (float)(1.0 / (1.0 + exp(zb - zf)));
            for (int c = 0; c < 4; c++) {
                const real lv = box[(size_t)(8 * a + c) * K + k], mu = box[(size_t)(8 * a + 4 + c) * K + k];
                eps[4 * i + c] = noise ? (real)rng_normal(&r) : 0;
                dl[4 * i + c] = (float)(mu + eps[4 * i + c] * exp(0.5 * lv) * d->o.sample_sigma);
            }
        }
    (void)NA;
}

/* The RPN losses of the batch and their gradients into the base's outputs.
 * cls: CE over every labelled anchor of the batch (mean). box: per image the
 * sum of out_w * smoothL1(sigma, inw * (delta - target)) with out_w = 1/(the
 * labelled anchors of the last image) for labelled anchors, then the mean
 * over images (net_utils._smooth_l1_loss with dim = [1, 2, 3]). */
static void rpn_losses(Detector *d, int B, int K, const int *n_lab, DetectLosses *L, int train) {
    DetBuf *s = d->buf;
    const int A = d->A, NA = K * A;
    long n_all = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < NA; i++) n_all += s->labels[(size_t)b * s->max_anchors + i] >= 0;
    const real *cls = model_output(&d->base, FRCNN_RPN_CLS);
    const real *box = model_output(&d->base, FRCNN_RPN_BOX);
    real *dcls = train ? model_output_grad(&d->base, FRCNN_RPN_CLS) : NULL;
    real *dbox = train ? model_output_grad(&d->base, FRCNN_RPN_BOX) : NULL;
    double ce = 0, sl1 = 0;
    for (int b = 0; b < B; b++) {
        /* the reference weights every image's box loss by the LAST image's count */
        const int nw = d->o.rpn_weight_last_image ? n_lab[B - 1] : n_lab[b];
        const double out_w = nw > 0 ? 1.0 / nw : 0.0;
        for (int k = 0; k < K; k++)
            for (int a = 0; a < A; a++) {
                const int i = k * A + a;
                const int lab = s->labels[(size_t)b * s->max_anchors + i];
                if (lab < 0) continue;
                const size_t ib = ((size_t)b * 2 * A + a) * K + k, iff = ((size_t)b * 2 * A + A + a) * K + k;
                const double zb = cls[ib], zf = cls[iff], mx = zb > zf ? zb : zf;
                const double lse = mx + log(exp(zb - mx) + exp(zf - mx));
                ce += lse - (lab ? zf : zb);
                if (dcls) {
                    const double pf = exp(zf - lse), pb = exp(zb - lse);
                    dcls[ib] += (real)((pb - (lab == 0)) / (double)n_all);
                    dcls[iff] += (real)((pf - (lab == 1)) / (double)n_all);
                }
                const float *t = s->targets + ((size_t)b * s->max_anchors + i) * 4;
                const float inw = s->inw[(size_t)b * s->max_anchors + i], ow = (float)out_w;
                if (inw == 0) continue;
                /* the sampled deltas again in real (s->deltas is float, for the proposals: as the loss's
                 * input it would make the f64 engine's loss a step function at float resolution) */
                real pred[4];
                const real *ep = s->eps + ((size_t)b * s->max_anchors + i) * 4;
                for (int c = 0; c < 4; c++)
                    pred[c] = (real)(box[((size_t)b * 8 * A + 8 * a + 4 + c) * K + k] +
                                     ep[c] * exp(0.5 * box[((size_t)b * 8 * A + 8 * a + c) * K + k]) *
                                         d->o.sample_sigma);
                const float iw4[4] = {inw, inw, inw, inw}, ow4[4] = {ow, ow, ow, ow};
                sl1 += smooth_l1_sigma_forward(pred, t, iw4, ow4, 4, d->o.rpn_sigma) / B;
                if (!dbox) continue;
                real dpred[4] = {0, 0, 0, 0}, dmu[4] = {0, 0, 0, 0}, dlv[4] = {0, 0, 0, 0}, lv[4];
                smooth_l1_sigma_backward(dpred, pred, t, iw4, ow4, 4, d->o.rpn_sigma, 1.0 / B);
                const real *eps = s->eps + ((size_t)b * s->max_anchors + i) * 4;
                for (int c = 0; c < 4; c++) lv[c] = box[((size_t)b * 8 * A + 8 * a + c) * K + k];
                box_sample_backward(dmu, dlv, dpred, lv, eps, 4, d->o.sample_sigma);
                for (int c = 0; c < 4; c++) {
                    dbox[((size_t)b * 8 * A + 8 * a + c) * K + k] += dlv[c];
                    dbox[((size_t)b * 8 * A + 8 * a + 4 + c) * K + k] += dmu[c];
                }
            }
    }
    L->rpn_cls = n_all > 0 ? ce / (double)n_all : 0;
    L->rpn_box = sl1;
}

/* ---- the head ---- */

/* RoIAlign of the batch's RoIs (roi5) on feat, then the head graph */
static int head_forward(Detector *d, int R, int train) {
    DetBuf *s = d->buf;
    const Layer *f = &d->base.layers[d->base.outputs[FRCNN_FEAT]];
    roi_align_forward(s->pooled, model_output(&d->base, FRCNN_FEAT), d->base.batch, f->C, f->H, f->W, s->roi5, R,
                      &d->o.roi);
    if (train) phase_mark(d, DETECT_PHASE_ROI_FWD);
    return model_run(&d->head, s->pooled, R, train);
}

/* class probabilities [R][num_classes] and the sampled boxes [R][4] of the last head run */
static void head_decode_outputs(Detector *d, int R, int noise, uint64_t seed, long key) {
    DetBuf *s = d->buf;
    const int NC = d->o.num_classes;
    const real *z = model_output(&d->head, FRCNN_HEAD_CLS), *bx = model_output(&d->head, FRCNN_HEAD_BOX);
    Rng r = rng_stream(seed, RNG_DETECT_NOISE, (uint64_t)key, 1000003);
    for (int i = 0; i < R; i++) {
        const real *zi = z + (size_t)i * NC;
        double mx = zi[0], sum = 0;
        for (int c = 1; c < NC; c++) mx = zi[c] > mx ? zi[c] : mx;
        for (int c = 0; c < NC; c++) sum += exp(zi[c] - mx);
        for (int c = 0; c < NC; c++) s->hprob[(size_t)i * NC + c] = (real)(exp(zi[c] - mx) / sum);
        for (int c = 0; c < 4; c++) s->heps[4 * i + c] = noise ? (real)rng_normal(&r) : 0;
        box_sample_forward(s->hbox + 4 * (size_t)i, bx + 8 * (size_t)i + 4, bx + 8 * (size_t)i, s->heps + 4 * (size_t)i,
                           4, d->o.sample_sigma);
    }
}

/* RoI boxes refined by the head's (sampled) deltas times the stds, clipped to
 * the image, divided by its scale (test_net.py, and the head prior) */
static void head_boxes(Detector *d, const float *rois4, int stride, int n, const float *im_info, int divide) {
    DetBuf *s = d->buf;
    for (int i = 0; i < n; i++) {
        float dl[4];
        for (int c = 0; c < 4; c++) dl[c] = (float)(s->hbox[4 * (size_t)i + c] * d->o.tgt.box_stds[c]);
        box_decode(rois4 + (size_t)i * stride, dl, d->o.tgt.delta_clamp, s->dec + 4 * (size_t)i);
        box_clip(s->dec + 4 * (size_t)i, (int)im_info[1], (int)im_info[0]);
        if (divide)
            for (int c = 0; c < 4; c++) s->dec[4 * (size_t)i + c] /= im_info[2];
    }
}

/* BiDet's head prior over image b's RoIs [r0, r0 + n): for each class with a
 * GT in the image, the class scores above head_prior_score, NMS test_nms on
 * the decoded boxes, and when more are kept than the class has GTs, the
 * entropy of the kept scores / GT count. Mean over the qualifying classes,
 * times the weight; its gradient into dprob [R][NC] (d loss / d prob). */
static double head_prior(Detector *d, const DetBatch *bt, int b, int r0, int n, real *dprob, int *count) {
    DetBuf *s = d->buf;
    const int NC = d->o.num_classes;
    double sum = 0;
    const float *gt = bt->gt + (size_t)b * d->o.max_gt * 5;
    head_boxes(d, s->roi5 + (size_t)r0 * 5 + 1, 5, n, bt->im_info + 3 * b, 1);
    for (int j = 1; j < NC; j++) {
        int n_gt = 0;
        for (int g = 0; g < bt->num_boxes[b]; g++) n_gt += (int)gt[5 * g + 4] == j;
        if (!n_gt) continue;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (s->hprob[(size_t)(r0 + i) * NC + j] > d->o.head_prior_score) s->idx[m++] = i;
        if (!m) continue;
        float *bx = malloc((size_t)m * 4 * sizeof *bx);
        if (!bx) continue;
        for (int q = 0; q < m; q++) {
            s->cscore[q] = (float)s->hprob[(size_t)(r0 + s->idx[q]) * NC + j];
            memcpy(bx + 4 * q, s->dec + 4 * (size_t)s->idx[q], 4 * sizeof *bx);
        }
        int *kp = malloc((size_t)m * sizeof *kp);
        const int nk = kp ? nms(bx, s->cscore, m, (float)d->o.test_nms, d->o.tgt.nms_gt_or_equal, kp, m, NULL) : 0;
        if (nk > n_gt) {
            real *ks = malloc((size_t)nk * sizeof *ks), *dks = calloc((size_t)nk, sizeof *dks);
            if (ks && dks) {
                for (int q = 0; q < nk; q++) ks[q] = s->hprob[(size_t)(r0 + s->idx[kp[q]]) * NC + j];
                sum += entropy_prior_forward(ks, nk, n_gt);
                if (dprob) {
                    entropy_prior_backward(dks, ks, nk, n_gt, 1.0);
                    for (int q = 0; q < nk; q++) dprob[(size_t)(r0 + s->idx[kp[q]]) * NC + j] += dks[q];
                }
                (*count)++;
            }
            free(ks);
            free(dks);
        }
        free(kp);
        free(bx);
    }
    return sum;
}

/* the head's losses and gradients: rcnn_cls, rcnn_box, head_reg, head_prior */
static int head_losses(Detector *d, const DetBatch *bt, int B, int R, DetectLosses *L, char *err, size_t errlen) {
    DetBuf *s = d->buf;
    const DetectOptions *o = &d->o;
    const int NC = o->num_classes, per = o->tgt.rois_per_image;
    const real *bx = model_output(&d->head, FRCNN_HEAD_BOX);
    real *dz = model_output_grad(&d->head, FRCNN_HEAD_CLS), *dbx = model_output_grad(&d->head, FRCNN_HEAD_BOX);
    /* cross-entropy, mean over the RoIs */
    double ce = 0;
    for (int i = 0; i < R; i++) {
        const int y = s->roi_labels[i];
        ce -= log((double)s->hprob[(size_t)i * NC + y] > 0 ? (double)s->hprob[(size_t)i * NC + y] : 1e-300);
        for (int c = 0; c < NC; c++) dz[(size_t)i * NC + c] += (real)((s->hprob[(size_t)i * NC + c] - (c == y)) / R);
    }
    L->rcnn_cls = ce / R;
    /* smooth-L1 (sigma 1) of the sampled box, fg RoIs: sum over coordinates, mean over RoIs */
    double sl1 = 0;
    for (int i = 0; i < R; i++) {
        const float w = s->roi_inw[i];
        if (w == 0) continue;
        const float iw4[4] = {w, w, w, w}, ow4[4] = {1, 1, 1, 1};
        const float *t = s->roi_targets + 4 * (size_t)i;
        sl1 += smooth_l1_sigma_forward(s->hbox + 4 * (size_t)i, t, iw4, ow4, 4, o->rcnn_sigma) / R;
        real dpred[4] = {0, 0, 0, 0};
        smooth_l1_sigma_backward(dpred, s->hbox + 4 * (size_t)i, t, iw4, ow4, 4, o->rcnn_sigma, 1.0 / R);
        box_sample_backward(dbx + 8 * (size_t)i + 4, dbx + 8 * (size_t)i, dpred, bx + 8 * (size_t)i,
                            s->heps + 4 * (size_t)i, 4, o->sample_sigma);
    }
    L->rcnn_box = sl1;
    /* head_reg = w mean(fc7^2) */
    if (o->w_head_reg != 0) {
        const size_t n = (size_t)R * d->head.layers[d->head.outputs[FRCNN_HEAD_FC7]].C;
        L->head_reg = o->w_head_reg * mean_square_forward(model_output(&d->head, FRCNN_HEAD_FC7), n);
        mean_square_backward(model_output_grad(&d->head, FRCNN_HEAD_FC7), model_output(&d->head, FRCNN_HEAD_FC7), n,
                             o->w_head_reg);
    }
    /* head_prior: d/dprob, then through the softmax into the logits */
    if (o->w_head_prior != 0) {
        real *dprob = calloc((size_t)R * NC, sizeof *dprob);
        if (!dprob) {
            snprintf(err, errlen, "out of memory for the head prior");
            return -1;
        }
        int count = 0;
        double sum = 0;
        for (int b = 0; b < B; b++) sum += head_prior(d, bt, b, b * per, per, dprob, &count);
        if (count > 0 || !o->head_prior_zero) {
            const double scale = o->w_head_prior / count; /* count 0 without the fix: NaN as upstream */
            L->head_prior = sum * scale;
            for (int i = 0; i < R && count > 0; i++) {
                const real *p = s->hprob + (size_t)i * NC, *g = dprob + (size_t)i * NC;
                double dot = 0;
                for (int c = 0; c < NC; c++) dot += (double)g[c] * p[c];
                for (int c = 0; c < NC; c++) dz[(size_t)i * NC + c] += (real)(scale * p[c] * (g[c] - dot));
            }
        }
        free(dprob);
    }
    return 0;
}

/* the whole image's gt rows [n][5] of batch image b */
static const float *image_gt(const Detector *d, const DetBatch *bt, int b) { return bt->gt + (size_t)b * d->o.max_gt * 5; }

static int check_finite(const DetectLosses *L, long step, char *err, size_t errlen) {
    const char *names[] = {"rpn_cls", "rpn_box", "rcnn_cls", "rcnn_box", "rpn_prior", "rpn_reg", "head_prior",
                           "head_reg"};
    const double v[] = {L->rpn_cls, L->rpn_box, L->rcnn_cls, L->rcnn_box, L->rpn_prior, L->rpn_reg, L->head_prior,
                        L->head_reg};
    for (int i = 0; i < 8; i++)
        if (!isfinite(v[i])) {
            snprintf(err, errlen, "the detection loss %s is %g at step %ld: training diverged", names[i], v[i], step);
            return -1;
        }
    return 0;
}

/* The targets of the batch from the RPN outputs just decoded: per image the
 * proposals, the anchor targets and the sampled RoIs (roi5), with every draw
 * from the stream of (seed, step, image). */
static int batch_targets(Detector *d, const DetBatch *bt, uint64_t seed, long step, int NA, char *err,
                         size_t errlen) {
    DetBuf *s = d->buf;
    const DetectOptions *o = &d->o;
    const int P = o->tgt.post_nms_train, per = o->tgt.rois_per_image;
    memset(s->counts, 0, sizeof s->counts);
    for (int b = 0; b < bt->B; b++) {
        const float *info = bt->im_info + 3 * b;
        if (proposals(&o->tgt, 1, s->anchors, s->fg + (size_t)b * s->max_anchors,
                      s->deltas + (size_t)b * s->max_anchors * 4, NA, (int)info[0], (int)info[1], info[2],
                      s->props + (size_t)b * s->post_max * 4, s->pscores + (size_t)b * s->post_max) < 0)
            goto oom;
        Rng r = rng_stream(seed, RNG_DETECT_SAMPLE, (uint64_t)step, (uint64_t)b);
        int nfg = 0;
        s->n_lab[b] = anchor_targets(&o->tgt, s->anchors, NA, (int)info[0], (int)info[1], image_gt(d, bt, b),
                                     bt->num_boxes[b], &r, s->labels + (size_t)b * s->max_anchors,
                                     s->targets + (size_t)b * s->max_anchors * 4, s->inw + (size_t)b * s->max_anchors,
                                     &nfg);
        if (s->n_lab[b] < 0) goto oom;
        s->counts[0] += nfg;
        s->counts[1] += s->n_lab[b] - nfg;
        /* RoIs: the proposals (zero rows included) plus the GT boxes */
        const int fgc = roi_sample(&o->tgt, s->props + (size_t)b * s->post_max * 4, P, image_gt(d, bt, b),
                                   bt->num_boxes[b], &r, s->dec + (size_t)b * per * 4, s->roi_labels + b * per,
                                   s->roi_targets + (size_t)b * per * 4, s->roi_inw + b * per);
        if (fgc == -2) goto oom;
        if (fgc < 0) {
            snprintf(err, errlen, "step %ld: image %d of the batch has neither foreground nor background RoIs", step, b);
            return -1;
        }
        s->counts[2] += fgc;
        s->counts[3] += per - fgc;
        for (int i = 0; i < per; i++) {
            float *r5 = s->roi5 + ((size_t)b * per + i) * 5;
            r5[0] = (float)b;
            memcpy(r5 + 1, s->dec + ((size_t)b * per + i) * 4, 4 * sizeof *r5);
        }
    }
    /* the box loss is weighted by 1/(labelled anchors of the last image): none labelled is the reference's 1/0 */
    if (o->rpn_weight_last_image && s->n_lab[bt->B - 1] == 0) {
        snprintf(err, errlen, "step %ld: the batch's last image has no labelled anchor (the RPN box loss weight "
                 "would be 1/0)", step);
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory computing the targets of step %ld", step);
    return -1;
}

int detect_train_step(Detector *d, const DetBatch *bt, uint64_t seed, long step, DetectLosses *L, char *err,
                      size_t errlen) {
    DetBuf *s = d->buf;
    const DetectOptions *o = &d->o;
    const int B = bt->B;
    memset(L, 0, sizeof *L);
    phase_mark(d, -1);
    if (model_set_input_size(&d->base, bt->H, bt->W, err, errlen)) return -1;
    if (model_run(&d->base, bt->images, B, 1)) {
        snprintf(err, errlen, "%s", d->base.run_err);
        return -1;
    }
    phase_mark(d, DETECT_PHASE_BASE_FWD);
    const Layer *f = &d->base.layers[d->base.outputs[FRCNN_FEAT]];
    const int K = f->H * f->W, NA = K * d->A;
    anchors_shift(d->anchors0, d->A, f->H, f->W, o->stride, s->anchors);
    const int noise = o->box_noise != BOX_NOISE_OFF;
    if (B > DETECT_MAX_BATCH) {
        snprintf(err, errlen, "a detection batch of %d images (at most %d)", B, DETECT_MAX_BATCH);
        return -1;
    }
    for (int b = 0; b < B; b++) rpn_decode_outputs(d, b, K, noise, seed, step);
    if (!(o->freeze_targets && s->targets_valid) && batch_targets(d, bt, seed, step, NA, err, errlen)) return -1;
    s->targets_valid = 1;
    phase_mark(d, DETECT_PHASE_GLUE);
    L->rpn_fg = s->counts[0], L->rpn_bg = s->counts[1], L->roi_fg = s->counts[2], L->roi_bg = s->counts[3];
    const int P = o->tgt.post_nms_train, per = o->tgt.rois_per_image;
    const int *n_lab = s->n_lab;
    rpn_losses(d, B, K, n_lab, L, 1);
    /* rpn_prior: logged only (the reference feeds it the scores' .data) */
    if (o->w_rpn_prior != 0) {
        double rp = 0;
        for (int b = 0; b < B; b++) {
            real *sc = malloc((size_t)P * sizeof *sc);
            if (!sc) continue;
            for (int i = 0; i < P; i++) sc[i] = s->pscores[(size_t)b * s->post_max + i];
            rp += entropy_prior_forward(sc, P, bt->num_boxes[b]);
            free(sc);
        }
        L->rpn_prior = o->w_rpn_prior * rp / B;
    }
    if (o->w_rpn_reg != 0) {
        const Layer *rf = &d->base.layers[d->base.outputs[FRCNN_RPN_FEAT]];
        const size_t n = (size_t)B * rf->C * rf->H * rf->W;
        L->rpn_reg = o->w_rpn_reg * mean_square_forward(model_output(&d->base, FRCNN_RPN_FEAT), n);
        mean_square_backward(model_output_grad(&d->base, FRCNN_RPN_FEAT), model_output(&d->base, FRCNN_RPN_FEAT), n,
                             o->w_rpn_reg);
    }
    const int R = B * per;
    phase_mark(d, DETECT_PHASE_LOSSES);
    if (model_set_input_size(&d->head, o->roi.PH, o->roi.PW, err, errlen)) return -1;
    if (head_forward(d, R, 1)) {
        snprintf(err, errlen, "%s", d->head.run_err);
        return -1;
    }
    phase_mark(d, DETECT_PHASE_HEAD_FWD);
    head_decode_outputs(d, R, noise, seed, step);
    if (head_losses(d, bt, B, R, L, err, errlen)) return -1;
    L->total = L->rpn_cls + L->rpn_box + L->rcnn_cls + L->rcnn_box + L->rpn_prior + L->rpn_reg + L->head_prior +
               L->head_reg;
    if (check_finite(L, step, err, errlen)) return -1;
    phase_mark(d, DETECT_PHASE_LOSSES);
    model_backward_outputs(&d->head);
    phase_mark(d, DETECT_PHASE_HEAD_BWD);
    roi_align_backward(model_output_grad(&d->base, FRCNN_FEAT), model_input_grad_buf(&d->head), B, f->C, f->H, f->W,
                       s->roi5, R, &o->roi);
    phase_mark(d, DETECT_PHASE_ROI_BWD);
    model_backward_outputs(&d->base);
    phase_mark(d, DETECT_PHASE_BASE_BWD);
    return 0;
}

/* ---- inference ---- */

static int cmp_float_desc(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* the fraction of the image's GT boxes some proposal covers at IoU >= 0.5 */
static double proposal_recall(const Detector *d, const DetBatch *bt, int P) {
    const DetBuf *s = d->buf;
    const float *gt = image_gt(d, bt, 0);
    int hit = 0;
    for (int g = 0; g < bt->num_boxes[0]; g++) {
        float best = 0;
        for (int i = 0; i < P; i++) {
            const float v = box_iou(s->props + 4 * (size_t)i, gt + 5 * g);
            best = v > best ? v : best;
        }
        hit += best >= 0.5f;
    }
    return bt->num_boxes[0] > 0 ? (double)hit / bt->num_boxes[0] : NAN;
}

/* base, RPN and proposals of test image bt (eval mode) into roi5[P]; the
 * head on them; the refined boxes in s->dec (original pixels) */
static int test_forward(Detector *d, const DetBatch *bt, uint64_t seed, long key, double *recall, char *err,
                        size_t errlen) {
    DetBuf *s = d->buf;
    const DetectOptions *o = &d->o;
    if (model_set_input_size(&d->base, bt->H, bt->W, err, errlen)) return -1;
    if (model_run(&d->base, bt->images, 1, 0)) return snprintf(err, errlen, "%s", d->base.run_err), -1;
    const Layer *f = &d->base.layers[d->base.outputs[FRCNN_FEAT]];
    const int K = f->H * f->W, NA = K * d->A, P = o->tgt.post_nms_test;
    anchors_shift(d->anchors0, d->A, f->H, f->W, o->stride, s->anchors);
    const int noise = o->box_noise == BOX_NOISE_ALWAYS;
    rpn_decode_outputs(d, 0, K, noise, seed, key);
    const float *info = bt->im_info;
    if (proposals(&o->tgt, 0, s->anchors, s->fg, s->deltas, NA, (int)info[0], (int)info[1], info[2], s->props,
                  s->pscores) < 0)
        return snprintf(err, errlen, "out of memory for the proposals"), -1;
    if (recall) *recall = proposal_recall(d, bt, P);
    /* every row, the zero-padded ones included, goes through the head (the reference's padding) */
    for (int i = 0; i < P; i++) {
        float *r5 = s->roi5 + (size_t)i * 5;
        r5[0] = 0;
        memcpy(r5 + 1, s->props + 4 * (size_t)i, 4 * sizeof *r5);
    }
    if (model_set_input_size(&d->head, o->roi.PH, o->roi.PW, err, errlen)) return -1;
    if (head_forward(d, P, 0)) return snprintf(err, errlen, "%s", d->head.run_err), -1;
    head_decode_outputs(d, P, noise, seed, key);
    head_boxes(d, s->roi5 + 1, 5, P, info, 1);
    return 0;
}

/* class j's detections among the P refined boxes: score > test_score, NMS;
 * appended to *out at *n */
static int class_detections(Detector *d, int P, int j, Detection **out, int *cap, int *n, char *err, size_t errlen) {
    DetBuf *s = d->buf;
    const DetectOptions *o = &d->o;
    const int NC = o->num_classes;
    int m = 0;
    for (int i = 0; i < P; i++)
        if (s->hprob[(size_t)i * NC + j] > o->test_score) s->idx[m++] = i;
    if (!m) return 0;
    float *bx = malloc((size_t)m * 4 * sizeof *bx);
    int *kp = malloc((size_t)m * sizeof *kp);
    int nk = -1;
    if (bx && kp) {
        for (int q = 0; q < m; q++) {
            s->cscore[q] = (float)s->hprob[(size_t)s->idx[q] * NC + j];
            memcpy(bx + 4 * q, s->dec + 4 * (size_t)s->idx[q], 4 * sizeof *bx);
        }
        nk = nms(bx, s->cscore, m, (float)o->test_nms, o->tgt.nms_gt_or_equal, kp, m, NULL);
    }
    if (nk >= 0 && *n + nk > *cap) {
        const int nc = (*n + nk) * 2 + 16;
        Detection *g = realloc(*out, (size_t)nc * sizeof *g);
        if (g) *out = g, *cap = nc;
        else nk = -1;
    }
    for (int q = 0; q < nk; q++) {
        Detection *t = &(*out)[(*n)++];
        t->cls = j;
        t->score = s->cscore[kp[q]];
        memcpy(t->box, bx + 4 * kp[q], sizeof t->box);
    }
    free(bx);
    free(kp);
    if (nk < 0) return snprintf(err, errlen, "out of memory for the detections"), -1;
    return 0;
}

/* at most max_per_image detections: those scoring >= the max_per_image-th highest (test_net.py) */
static int cap_per_image(const DetectOptions *o, Detection *dets, int n) {
    if (o->max_per_image <= 0 || n <= o->max_per_image) return n;
    float *sc = malloc((size_t)n * sizeof *sc);
    if (!sc) return -1;
    for (int i = 0; i < n; i++) sc[i] = dets[i].score;
    qsort(sc, (size_t)n, sizeof *sc, cmp_float_desc);
    const float th = sc[o->max_per_image - 1];
    free(sc);
    int w = 0;
    for (int i = 0; i < n; i++)
        if (dets[i].score >= th) dets[w++] = dets[i];
    return w;
}

int detect_image(Detector *d, const DetBatch *bt, uint64_t seed, long image_key, Detection **out, int *cap,
                 double *recall, char *err, size_t errlen) {
    /* test-time draws use keys past any training step's */
    if (test_forward(d, bt, seed, -1 - image_key, recall, err, errlen)) return -1;
    int n = 0;
    for (int j = 1; j < d->o.num_classes; j++)
        if (class_detections(d, d->o.tgt.post_nms_test, j, out, cap, &n, err, errlen)) return -1;
    n = cap_per_image(&d->o, *out, n);
    if (n < 0) snprintf(err, errlen, "out of memory in detect_image");
    return n;
}

int detect_dataset(Detector *d, const DetData *test, long n, uint64_t seed, DetBatch *b, Detection **dets,
                   int *dcap, VocDet **all, long *n_all, long *cap, double *recall50, char *err, size_t errlen) {
    double hits = 0, gts = 0;
    for (long e = 0; e < n; e++) {
        int32_t ent = (int32_t)e;
        if (det_batch_load(test, &ent, 1, seed, 0, b, err, errlen)) return -1;
        DetEntryInfo info;
        det_data_entry(test, e, &info);
        double rec = NAN;
        const int k = detect_image(d, b, seed, e, dets, dcap, &rec, err, errlen);
        if (k < 0) return -1;
        if (isfinite(rec)) hits += rec * b->num_boxes[0], gts += b->num_boxes[0];
        if (*n_all + k > *cap) {
            const long nc = 2 * (*n_all + k) + 64;
            VocDet *g = realloc(*all, (size_t)nc * sizeof *g);
            if (!g) return snprintf(err, errlen, "out of memory for detections"), -1;
            *all = g;
            *cap = nc;
        }
        for (int i = 0; i < k; i++) {
            VocDet *v = &(*all)[(*n_all)++];
            v->image = info.image;
            v->label = (*dets)[i].cls;
            v->score = (*dets)[i].score;
            for (int c = 0; c < 4; c++) v->box[c] = (*dets)[i].box[c];
        }
    }
    if (recall50) *recall50 = gts > 0 ? hits / gts : NAN;
    return 0;
}
