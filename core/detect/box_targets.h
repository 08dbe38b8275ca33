/* The targets and samplers between the detector's graph and its losses
 * (issue 14, method.md 4.4): anchor targets (anchor_target_layer.py),
 * proposals (proposal_layer.py) and RoI sampling
 * (proposal_target_layer_cascade.py), with the reference's constants as
 * defaults (detect_target_defaults) and every random draw from an Rng the
 * caller keys (so a step does not depend on threads).
 *
 * Layouts, per image (the caller loops over the batch):
 *   anchors      [K*A][4], k*A + a (core/detect/boxes.h)
 *   gt           [n_gt][5] = x1, y1, x2, y2, class (1..20; 0 = background), 0-based inclusive;
 *                only the real boxes (the reference pads to 20 rows of zeros, which
 *                box_iou_matrix's masking makes inert: they are never a max-IoU gt nor
 *                a sampled RoI, so leaving them out changes no result)
 *   RPN scores   [2A, Hf, Wf] logits: channel a = background, A + a = foreground of anchor a
 *   RPN deltas   [4A, Hf, Wf]: channels 4a..4a+3 = dx, dy, dw, dh of anchor a
 * The functions here take per-anchor arrays in anchor order (k*A + a): the
 * caller transposes the maps ([A, Hf, Wf] -> [Hf, Wf, A], as the reference's
 * permute(0, 2, 3, 1)).
 *
 * Comparisons of an IoU with a threshold are in float, as torch compares a
 * float32 tensor with a Python scalar. */
#ifndef CBNN_BOX_TARGETS_H
#define CBNN_BOX_TARGETS_H

#include <stdint.h>

#include "rng.h"

typedef struct {
    /* anchor targets (cfg.TRAIN.RPN_*) */
    float rpn_pos_iou, rpn_neg_iou; /* 0.7, 0.3 */
    int rpn_batch;                  /* 256 labelled anchors per image */
    float rpn_fg_fraction;          /* 0.5: at most int(0.5 * 256) = 128 fg */
    int rpn_clobber_positives;      /* 0: negatives first, then positives overwrite */
    /* proposals (cfg.TRAIN/TEST.RPN_*) */
    int pre_nms_train, post_nms_train; /* 12000, 2000 */
    int pre_nms_test, post_nms_test;   /* 6000, 300 */
    float rpn_nms;                  /* 0.7 (train and test) */
    float min_size;                 /* 0: no filter (the reference's is commented out; its cfg says 8 / 16) */
    double delta_clamp;             /* 0: none (box_decode) */
    /* RoI sampling (cfg.TRAIN.*) */
    int rois_per_image;             /* 256 (bidet18.yml's BATCH_SIZE; config.py's default is 128) */
    float roi_fg_fraction;          /* 0.25: at most round(0.25 * 256) = 64 fg */
    float roi_fg_iou;               /* 0.5 */
    float roi_bg_hi, roi_bg_lo;     /* [0.0, 0.5) (bidet18.yml's BG_THRESH_LO 0.0; config.py's 0.1) */
    float box_stds[4];              /* 0.1, 0.1, 0.2, 0.2 (means 0) */
    int nms_gt_or_equal;            /* 0: suppress when IoU > t (the CUDA kernel) */
} DetectTargetOptions;

DetectTargetOptions detect_target_defaults(void);

/* Anchor targets of one image of size H x W (the padded batch image:
 * im_info's H, W), anchors [n_anchors][4]:
 *   inside  iff x1 >= 0, y1 >= 0, x2 < W, y2 < H (the reference's allowed
 *           border 0); only inside anchors take part in anything below;
 *   labels  [n_anchors]: -1 ignore, 0 bg, 1 fg (outside anchors: -1);
 *   overlaps = box_iou_matrix(inside anchors, gt) (its masking included);
 *   with rpn_clobber_positives = 0, in this order:
 *     bg where the anchor's max IoU < rpn_neg_iou;
 *     fg where an anchor's IoU with some gt equals that gt's maximum over the
 *       inside anchors (every tied anchor; float equality). A gt whose maximum
 *       is 0 (it overlaps no inside anchor, or it is a single pixel, which the
 *       masking zeroes) has the maximum replaced by 1e-5, which no IoU equals:
 *       such a gt marks no anchor;
 *     fg where max IoU >= rpn_pos_iou;
 *   (clobber = 1: the bg rule runs last instead, overriding fg.)
 *   fg over int(rpn_fg_fraction * rpn_batch): a random excess (a permutation
 *     of the fg anchors in index order, its first n_fg - cap) goes back to -1;
 *   then bg over rpn_batch - (fg after that): the same for bg. Draws from rng:
 *     rng_permutation(n_fg) only if fg overflowed, then rng_permutation(n_bg)
 *     only if bg overflowed.
 *   targets [n_anchors][4] = box_encode(anchor, its max-IoU gt, the first on
 *     ties) for every inside anchor whatever its label; 0 for outside ones and
 *     for all when n_gt = 0 (the reference encodes against a zero padding row
 *     there; the weight is 0 either way);
 *   inside_w [n_anchors] 1 for fg, 0 else (the reference's 4 equal columns).
 * n_gt = 0: every inside anchor is bg (max IoU 0 < rpn_neg_iou), then sampled
 * to rpn_batch. No inside anchor: all -1, returns 0.
 * *n_fg (may be NULL) receives the final fg count. Returns the number of
 * labelled anchors (fg + bg), or -1 when out of memory. The caller weights the
 * box loss by 1/that of the batch's LAST image (the reference's quirk,
 * detect.rpn_weight: last_image); a 0 there is a division by zero upstream
 * (Python raises), so the caller must refuse it. */
int anchor_targets(const DetectTargetOptions *o, const float *anchors, int n_anchors, int H, int W,
                   const float *gt, int n_gt, Rng *rng, int8_t *labels, float *targets, float *inside_w,
                   int *n_fg);

/* Proposals of one image: fg probabilities fg[n_anchors] (the softmax over
 * the channel pair (a, A + a) already taken, anchor order k*A + a), deltas
 * [n_anchors][4] (anchor order), the image H x W for clipping:
 *   decode every anchor (box_decode, o->delta_clamp), clip to the image;
 *   if min_size > 0: drop boxes with w or h < min_size * im_scale (the +1
 *     widths; the reference's commented-out _filter_boxes);
 *   sort by fg descending (stable: ties in anchor order; NaN last), keep the
 *     first pre_nms if 0 < pre_nms < the candidates;
 *   NMS at rpn_nms (o->nms_gt_or_equal), which drops non-finite boxes/scores;
 *   the first post_nms kept.
 * train selects pre/post_nms_train or _test; post_nms must be > 0.
 * rois[post_nms][4] and scores[post_nms] (the kept boxes' fg) in descending
 * score; rows past the returned count are zero (the reference pads with
 * zeros). Returns the count, or -1 when out of memory (outputs then zero). */
int proposals(const DetectTargetOptions *o, int train, const float *anchors, const float *fg, const float *deltas,
              int n_anchors, int H, int W, double im_scale, float *rois, float *scores);

/* RoI sampling of one image: proposals rois[n_rois][4] (the zero-padded rows
 * included, as the reference: boxes [0,0,0,0]) with the gt boxes appended
 * (candidate i >= n_rois is gt i - n_rois);
 *   overlaps = box_iou_matrix(candidates, gt): a single-pixel candidate (the
 *     zero padding) has max IoU -1 and is never sampled;
 *   each candidate's gt = its max-IoU gt (the first on ties), label = that
 *     gt's class; fg where max IoU >= roi_fg_iou, bg where max IoU in
 *     [roi_bg_lo, roi_bg_hi);
 *   fg_cap = round(roi_fg_fraction * rois_per_image) (half to even; 0 -> 1);
 *   fg and bg: fg_n = min(fg_cap, fg) fg WITHOUT replacement (the first fg_n
 *     of a random permutation, in that order), then rois_per_image - fg_n bg
 *     WITH replacement (rng_below(bg) each);
 *   fg but no bg: rois_per_image fg WITH replacement (all fg);
 *   bg but no fg: rois_per_image bg WITH replacement;
 *   n_gt = 0: every candidate that is not a single pixel has max IoU 0, so it
 *     is bg if roi_bg_lo <= 0 (the default), else there is nothing.
 * Outputs, fg rows first: out_rois[rois_per_image][4], out_labels (the gt
 * class for fg rows, 0 for bg rows), out_targets[rois_per_image][4] =
 * box_encode(roi, its gt) / box_stds where the label is > 0, else 0,
 * out_inside_w[rois_per_image] (1 where the label is > 0, else 0; the
 * reference's 4 equal columns).
 * Returns the fg row count; -1 when there is neither fg nor bg (the reference
 * raises; outputs untouched), -2 when out of memory. */
int roi_sample(const DetectTargetOptions *o, const float *rois, int n_rois, const float *gt, int n_gt, Rng *rng,
               float *out_rois, int32_t *out_labels, float *out_targets, float *out_inside_w);

#endif
