/* The detection task (issue 14; method.md 4.4): the binary Faster R-CNN of
 * core/detect/frcnn.h, its targets, losses and post-processing, as the
 * reference (BiDet's faster-rcnn.pytorch) computes them.
 *
 * One training step, detect_train_step:
 *   base graph on the batch -> feat, rpn_feat, RPN cls/box
 *   RPN: fg = softmax over (a, A + a); deltas = mu + eps exp(log_var / 2) sigma_s
 *     (BiDet's sampled boxes); proposals (decode, clip, top 12000, NMS 0.7, top 2000)
 *   anchor targets -> rpn_cls (CE over the labelled anchors), rpn_box
 *     (smooth-L1 sigma 3, weight 1 / labelled anchors of the batch's LAST image,
 *     summed per image, mean over images)
 *   RoI sampling -> 256 RoIs per image -> RoIAlign 7x7 on feat -> head graph
 *     -> rcnn_cls (CE), rcnn_box (smooth-L1 sigma 1 on the sampled box, fg only)
 *   BiDet's IB terms with the current weights: rpn_reg = w mean(rpn_feat^2),
 *     head_reg = w mean(fc7^2), rpn_prior (logged only: no gradient upstream),
 *     head_prior (entropy of the NMS-kept class scores, gradient through softmax)
 *   backward: head -> RoIAlign adjoint into feat's gradient -> base.
 * Every random draw (anchor and RoI sampling, box noise) is keyed by (seed,
 * step, image), so a step does not depend on threads. */
#ifndef CBNN_DETECT_H
#define CBNN_DETECT_H

#include <stdint.h>

#include "box_targets.h"
#include "detect_batch.h"
#include "frcnn.h"
#include "model.h"
#include "roi_align.h"
#include "voc_ap.h"

#define DETECT_MAX_ANCHOR_SIZES 8
#define DETECT_MAX_BATCH 256

/* BiDet samples its boxes in training AND at test (the reference's forward has no training check) */
typedef enum { BOX_NOISE_ALWAYS = 0, BOX_NOISE_TRAIN = 1, BOX_NOISE_OFF = 2 } BoxNoise;

typedef struct {
    int width;                     /* model.width: 64 at paper scale */
    RpnConvKind rpn_conv;          /* detect.rpn_conv: bidet (the reference) */
    ConvKind binary_kind;          /* model.conv: what the backbone's binary convs run */
    double bn_gamma;               /* the backbone's BN gamma init when not loaded from a checkpoint */
    int num_classes;               /* 21 = background + 20 */
    int anchor_base, stride;       /* 16, 16 */
    int n_ratios, n_scales;
    double ratios[DETECT_MAX_ANCHOR_SIZES], scales[DETECT_MAX_ANCHOR_SIZES]; /* {0.5, 1, 2}, {8, 16, 32} */
    DetectTargetOptions tgt;       /* anchor targets, proposals, RoI sampling */
    RoIAlignOptions roi;           /* 7x7, 1/16, sampling 0, aligned 0 */
    double rpn_sigma, rcnn_sigma;  /* smooth-L1: 3, 1 */
    double sample_sigma;           /* 0.001 */
    BoxNoise box_noise;            /* BOX_NOISE_ALWAYS (faithful) */
    int rpn_weight_last_image;     /* 1: 1/(labelled anchors of the batch's last image), the reference's quirk */
    int head_prior_zero;           /* 1: head_prior with no qualifying class is 0 (upstream 0/0 = NaN) */
    /* the IB terms' weights now (the loop sets them: 0 until the first lr decay) */
    double w_rpn_prior, w_rpn_reg, w_head_prior, w_head_reg;
    double head_prior_score;       /* 0.01: class scores above it enter the head prior */
    double test_nms;               /* 0.3 (cfg.TEST.NMS; also the head prior's NMS) */
    double test_score;             /* 0.0: a detection needs a score above it */
    int max_per_image;             /* 100 */
    int max_gt;                    /* 20 */
    /* tests only (finite differences): reuse the targets, proposals and RoIs
     * of the previous step instead of recomputing them from the outputs */
    int freeze_targets;
} DetectOptions;

DetectOptions detect_defaults(void);

typedef struct {
    Model base, head;
    DetectOptions o;
    int max_batch, A;
    float *anchors0;               /* [A][4] */
    void *buf;                     /* the step's buffers (tasks/detect.c) */
    /* optional (bench/det_step): when non-NULL, detect_train_step adds each
     * phase's wall seconds to phase_s[DETECT_PHASE_*]; NULL costs nothing */
    double *phase_s;
} Detector;

/* detect_train_step's phases; GLUE: the RPN decode, proposals, anchor targets
 * and RoI sampling; LOSSES: the RPN and head losses with their gradients */
enum { DETECT_PHASE_BASE_FWD, DETECT_PHASE_GLUE, DETECT_PHASE_ROI_FWD, DETECT_PHASE_HEAD_FWD, DETECT_PHASE_LOSSES,
       DETECT_PHASE_HEAD_BWD, DETECT_PHASE_ROI_BWD, DETECT_PHASE_BASE_BWD, DETECT_N_PHASES };

/* the step's losses (the IB terms already weighted) and counts */
typedef struct {
    double rpn_cls, rpn_box, rcnn_cls, rcnn_box, rpn_prior, rpn_reg, head_prior, head_reg;
    double total;                  /* their sum: what the gradient is of (rpn_prior excepted) */
    long rpn_fg, rpn_bg, roi_fg, roi_bg;
} DetectLosses;

/* Build both graphs for batches of up to max_batch images of at most maxH x
 * maxW, allocate, initialise from seed. 0, or -1 with a message. */
int detector_init(Detector *d, const DetectOptions *o, int max_batch, int maxH, int maxW, uint64_t seed, char *err,
                  size_t errlen);
void detector_free(Detector *d);
/* parameters of both graphs */
long detector_params(const Detector *d);

/* Forward, losses and backward of one batch: afterwards both models' grads
 * hold the gradient of L->total. 0, or -1 with a message (a non-finite loss
 * names its component and the step). */
int detect_train_step(Detector *d, const DetBatch *b, uint64_t seed, long step, DetectLosses *L, char *err,
                      size_t errlen);

/* One detection (original image pixels, 0-based inclusive). */
typedef struct {
    int cls;                       /* 1..num_classes-1 */
    float score;
    float box[4];
} Detection;

/* Detections of test batch b (one image, eval mode): per class score >
 * test_score, NMS test_nms, at most max_per_image in all, boxes divided by
 * the image's scale. *out grows (realloc); returns the count, -1 with a
 * message. Also the fraction of the image's GT boxes (gt, n_gt, resized
 * pixels) some proposal covers at IoU >= 0.5 (recall may be NULL). */
int detect_image(Detector *d, const DetBatch *b, uint64_t seed, long image_key, Detection **out, int *cap,
                 double *recall, char *err, size_t errlen);

/* Detections of the first n entries of a test DetData (one image a batch),
 * appended to *all as VocDets (image = the VocSet index, label = the class
 * 1..20, box in original 0-based pixels) growing *cap; *recall50 (may be
 * NULL) the share of the GT boxes some proposal covers at IoU >= 0.5. The
 * batch and detection buffers b, dets/dcap are the caller's, reused. 0, or
 * -1 with a message. */
int detect_dataset(Detector *d, const DetData *test, long n, uint64_t seed, DetBatch *b, Detection **dets,
                   int *dcap, VocDet **all, long *n_all, long *cap, double *recall50, char *err, size_t errlen);

#endif
