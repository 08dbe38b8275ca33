/* The detector's compute cost in multiply-accumulates (issue 14), for
 * `cyclebnn --dry-run` and the benchmarks: what one image costs at
 * inference and in training, and what a run costs, at any image size and
 * without allocating the graphs.
 *
 * Counting, per layer, as core/cost.c does for classification:
 *   forward  = the layer kind's MACs (model_macs; BN, pooling and the
 *              spatial mean count their small elementwise MACs too);
 *   err      = the same again for the input gradient, except for a layer
 *              reading the graph's input when the graph computes no input
 *              gradient (the base: conv1). The head computes one (RoIAlign's
 *              backward needs it), so its first convs count it;
 *   wgrad    = the same again for layers with a weight tensor (conv, binary
 *              conv, BiDet conv, linear) that train: the frozen conv1 has none.
 * A training image runs the base once and the head on rois_per_image RoIs;
 * a test image runs the head on post_nms_test proposals. Not counted:
 * RoIAlign (about C x 7 x 7 x 4 bilinear taps x samples per bin per RoI,
 * well under 1 % of the head), the RPN's decode, NMS and the targets.
 *
 * Splits: `binary` is what model_macs calls binary (the CycleBNN convs, 1-bit
 * x 1-bit forward, 8-bit error x 1-bit backward); `fp32` the rest, of which
 * `bidet` is the BiDet RPN conv: model_macs counts it as 32-bit (it is not a
 * CycleBNN conv) although its forward is 1-bit x 1-bit too. */
#ifndef CBNN_DETECT_COST_H
#define CBNN_DETECT_COST_H

#include "detect.h"
#include "model.h"

typedef struct {
    double total, fp32, binary; /* total = fp32 + binary */
    double bidet;               /* part of fp32: BiDet convs */
} DetMacs;

typedef struct {
    int H, W;                   /* image (canvas) size */
    int feat_H, feat_W;         /* the stride-16 feature map */
    int test_rois, train_rois;  /* per image: post_nms_test, rois_per_image */
    DetMacs base;               /* base + RPN forward, per image */
    DetMacs head;               /* head forward, per RoI */
    DetMacs infer;              /* per test image: base + test_rois x head */
    DetMacs train_fwd;          /* per training image: base + train_rois x head */
    DetMacs train_err, train_wgrad; /* the backward's two products, per training image */
    DetMacs train;              /* train_fwd + train_err + train_wgrad */
    long images_per_epoch;
    double epochs;
    double run;                 /* train.total x images_per_epoch x epochs */
} DetectCost;

/* The cost of a detector with options o on H x W images: builds both graphs
 * (shapes only: no arena is allocated), counts, frees them. images_per_epoch
 * and epochs only scale `run` (0 gives run = 0). 0, or -1 with a message (a
 * graph that does not build: an image under 32 px a side). */
int detect_cost(const DetectOptions *o, int H, int W, long images_per_epoch, double epochs, DetectCost *c, char *err,
                size_t errlen);

/* The same from graphs already built (allocated or not) at their current
 * sizes: base at the image size, head at pool x pool. */
void detect_cost_of(const Model *base, const Model *head, int test_rois, int train_rois, long images_per_epoch,
                    double epochs, DetectCost *c);

#endif
