/* Box arithmetic of the detector (issue 14, method.md 4.4), in the
 * conventions of the code that ran (py-faster-rcnn / faster-rcnn.pytorch as
 * BiDet ships them), not the paper's:
 *
 *   a box is float[4] = x1, y1, x2, y2 in 0-based INCLUSIVE pixels: it covers
 *   columns x1..x2, so its width is x2 - x1 + 1 (and IoU adds the 1 too);
 *   centre x1 + 0.5 w; decoding puts x2 at ctr + 0.5 w (no "- 1").
 *
 * Arithmetic is in float, as the reference's float32 tensors. */
#ifndef CBNN_BOXES_H
#define CBNN_BOXES_H

#include <stddef.h>

/* IoU with the +1 convention: IoU([0,0,9,9],[0,0,9,19]) = 100/200 = 0.5.
 * Boxes that do not overlap (including ones that touch: [0,0,9,9] and
 * [10,0,19,9]) give 0. */
float box_iou(const float *a, const float *b);
/* overlaps[i*nb + j] = IoU(a_i, b_j) as anchor_target/proposal_target compute
 * it (a zero-area gt, w = h = 1 with the +1, counts as an ordinary box) */
void box_iou_matrix(const float *a, int na, const float *b, int nb, float *overlaps);

/* The base anchors of generate_anchors.py: a base_size box [0, 0, base-1,
 * base-1], for each ratio (w = round(sqrt(area / r)), h = round(w r), numpy's
 * round half to even), then each scale (w * s, h * s), around the base
 * centre. out[n_ratios * n_scales][4], ratio-major (row = r * n_scales + s).
 * base 16, ratios {0.5, 1, 2}, scales {8, 16, 32}: rows (-84, -40, 99, 55) ...
 * (-168, -344, 183, 359). */
void anchors_base(int base_size, const double *ratios, int n_ratios, const double *scales, int n_scales,
                  float *out);
/* All anchors of a Hf x Wf feature map: anchor k*A + a (k = y*Wf + x) is base
 * anchor a shifted by stride*(x, y). out[Hf*Wf*A][4]. */
void anchors_shift(const float *base, int A, int Hf, int Wf, int stride, float *out);

/* Regression targets of gt relative to ex (bbox_transform): dx = (gcx -
 * ecx)/ew, dy, dw = log(gw/ew), dh. */
void box_encode(const float *ex, const float *gt, float *t);
/* bbox_transform_inv: ctr + d * size, size * exp(d); x1 = ctr - 0.5 w, x2 =
 * ctr + 0.5 w. clamp > 0 clamps dw, dh to at most clamp before exp
 * (torchvision's log(1000/16), key detect.delta_clamp); 0 = none, as the
 * reference. */
void box_decode(const float *box, const float *d, double clamp, float *out);
/* clip to [0, W-1] x [0, H-1] (clip_boxes) */
void box_clip(float *box, int W, int H);

/* Greedy NMS: the boxes by descending score, a stable sort (ties keep their
 * index order); a box is suppressed when its IoU with a kept one is > thresh
 * (the CUDA kernel that ran; gt_or_equal = 1 gives its CPU twin's >=).
 * keep[] receives at most max_keep indices into boxes, in kept (score) order;
 * returns their count. Boxes with a non-finite coordinate or score are
 * dropped (never kept), and *n_bad (may be NULL) counts them.
 * order_scratch: n ints, or NULL to allocate. */
int nms(const float *boxes, const float *scores, int n, float thresh, int gt_or_equal, int *keep, int max_keep,
        int *n_bad);
/* indices of scores sorted descending, stable (the reference's torch.sort is
 * not stable; ties are rare on real scores and stable is reproducible) */
void argsort_desc(const float *scores, int n, int *order);

#endif
