/* The targets and samplers between the detector's graph and its losses
 * (issue 14, method.md 4.4): anchor targets (anchor_target_layer.py),
 * proposals (proposal_layer.py) and RoI sampling
 * (proposal_target_layer_cascade.py), with the reference's constants as
 * defaults (detect_defaults) and every random draw from an Rng the caller
 * keys (so a step does not depend on threads).
 *
 * Layouts, per image (the caller loops over the batch):
 *   anchors      [K*A][4], k*A + a (core/detect/boxes.h)
 *   gt           [n_gt][5] = x1, y1, x2, y2, class (1..20; 0 = background), 0-based inclusive
 *   RPN scores   [2A, Hf, Wf] logits: channel a = background, A + a = foreground of anchor a
 *   RPN deltas   [4A, Hf, Wf]: channels 4a..4a+3 = dx, dy, dw, dh of anchor a */
#ifndef CBNN_BOX_TARGETS_H
#define CBNN_BOX_TARGETS_H

#include <stdint.h>

#include "rng.h"

typedef struct {
    /* anchor targets (cfg.TRAIN.RPN_*) */
    float rpn_pos_iou, rpn_neg_iou; /* 0.7, 0.3 */
    int rpn_batch;                  /* 256 labelled anchors per image */
    float rpn_fg_fraction;          /* 0.5 */
    int rpn_clobber_positives;      /* 0: negatives first, then positives overwrite */
    /* proposals (cfg.TRAIN/TEST.RPN_*) */
    int pre_nms_train, post_nms_train; /* 12000, 2000 */
    int pre_nms_test, post_nms_test;   /* 6000, 300 */
    float rpn_nms;                  /* 0.7 */
    float min_size;                 /* 0: no filter (the reference's is commented out) */
    double delta_clamp;             /* 0: none (box_decode) */
    /* RoI sampling (cfg.TRAIN.*) */
    int rois_per_image;             /* 256 */
    float roi_fg_fraction;          /* 0.25 */
    float roi_fg_iou;               /* 0.5 */
    float roi_bg_hi, roi_bg_lo;     /* [0.0, 0.5) */
    float box_stds[4];              /* 0.1, 0.1, 0.2, 0.2 (means 0) */
    int nms_gt_or_equal;            /* 0: suppress when IoU > t (the CUDA kernel) */
} DetectTargetOptions;

DetectTargetOptions detect_target_defaults(void);

/* Anchor targets of one image of size H x W (the padded batch image:
 * im_info's H, W), anchors [n_anchors][4]:
 *   inside  iff x1 >= 0, y1 >= 0, x2 < W, y2 < H (the reference's allowed border 0);
 *   labels  -1 ignore, 0 bg, 1 fg, for every anchor (outside ones: -1);
 *   bg where max IoU < neg_iou; fg where an anchor has a gt's maximum IoU (a
 *   maximum of 0 counts as 1e-5, so such a gt marks its anchors with IoU
 *   exactly 0 only if ... as the reference: gt_max == 0 -> 1e-5, then
 *   anchors whose IoU == gt_max); fg where max IoU >= pos_iou;
 *   fg kept <= fg_fraction * rpn_batch (excess disabled at random), bg kept <=
 *   rpn_batch - fg (excess disabled at random);
 *   targets [n_anchors][4] = box_encode(anchor, its max-IoU gt) (0 for outside anchors);
 *   inside_w [n_anchors] 1 for fg, 0 else (the reference's 4 equal columns).
 * n_gt may be 0 (every inside anchor bg, then sampled). Returns the number of
 * labelled anchors (fg + bg): the caller weights the box loss by 1/that of the
 * batch's LAST image (the reference's quirk, detect.rpn_weight: last_image). */
int anchor_targets(const DetectTargetOptions *o, const float *anchors, int n_anchors, int H, int W,
                   const float *gt, int n_gt, Rng *rng, int8_t *labels, float *targets, float *inside_w,
                   int *n_fg);

/* Proposals of one image: fg probabilities fg[n_anchors] (softmax already
 * taken, in anchor order k*A + a), deltas [n_anchors][4] (anchor order), the
 * image H x W for clipping; decode, clip, (min_size filter if > 0, scaled by
 * im_scale), top pre_nms by score (stable), NMS rpn_nms, top post_nms.
 * rois[post_nms][4] and scores[post_nms]; rows past the returned count are
 * zero (the reference pads with zeros). train selects the TRAIN or TEST counts. */
int proposals(const DetectTargetOptions *o, int train, const float *anchors, const float *fg, const float *deltas,
              int n_anchors, int H, int W, double im_scale, float *rois, float *scores);

/* RoI sampling of one image: proposals rois[n_rois][4] (the zero-padded rows
 * included, as the reference: they are boxes [0,0,0,0]) with the gt boxes
 * appended; labels = the max-IoU gt's class where IoU >= fg_iou (fg) else 0;
 * fg: at most round(fg_fraction * rois_per_image) without replacement; bg (IoU
 * in [bg_lo, bg_hi)) fills the rest WITH replacement; no bg -> fg with
 * replacement; n_gt = 0 -> ... (see the .c). out_rois[rois_per_image][4],
 * out_labels, out_targets[rois_per_image][4] = box_encode / stds for fg (0
 * for bg), out_inside_w (1 for fg). Returns the fg count, -1 when there is
 * neither fg nor bg (the reference raises). */
int roi_sample(const DetectTargetOptions *o, const float *rois, int n_rois, const float *gt, int n_gt, Rng *rng,
               float *out_rois, int32_t *out_labels, float *out_targets, float *out_inside_w);

#endif
