/* Box arithmetic of the detector (issue 14, method.md 4.4), in the
 * conventions of the code that ran (py-faster-rcnn / faster-rcnn.pytorch as
 * BiDet ships them), not the paper's:
 *
 *   a box is float[4] = x1, y1, x2, y2 in 0-based INCLUSIVE pixels: it covers
 *   columns x1..x2, so its width is x2 - x1 + 1 (and IoU adds the 1 too);
 *   centre x1 + 0.5 w; decoding puts x2 at ctr + 0.5 w (no "- 1").
 *
 * Arithmetic is in float, as the reference's float32 tensors (anchors_base
 * alone works in double, as numpy, and rounds the result to float). */
#ifndef CBNN_BOXES_H
#define CBNN_BOXES_H

#include <stddef.h>

/* IoU with the +1 convention, the formula of bbox_overlaps and of the NMS
 * kernel: inter / (area_a + area_b - inter), inter = max(0, min x2 - max x1
 * + 1) * (same in y). IoU([0,0,9,9],[0,0,9,19]) = 100/200 = 0.5. Boxes that
 * do not overlap (including ones that touch: [0,0,9,9] and [10,0,19,9]) give
 * 0. No special case for single-pixel boxes (box_iou_matrix has them). */
float box_iou(const float *a, const float *b);
/* overlaps[i*nb + j] as bbox_overlaps_batch, which anchor_target_layer and
 * proposal_target_layer call: box_iou(a_i, b_j), except
 *   - a b_j with w = h = 1 (x1 == x2 and y1 == y2: the zero rows that pad
 *     the reference's gt tensor) gives 0 in its whole column;
 *   - an a_i with w = h = 1 (the zero rows that pad the proposals) gives -1
 *     in its whole row, which wins over the 0 above.
 * A row of -1 is never foreground nor background (bg needs IoU >= 0). */
void box_iou_matrix(const float *a, int na, const float *b, int nb, float *overlaps);

/* The base anchors of generate_anchors.py: a base_size box [0, 0, base-1,
 * base-1] (w = h = base, centre (base-1)/2), for each ratio r w = round(sqrt(
 * base^2 / r)), h = round(w r) (numpy's round: half to even, so 23 * 0.5 =
 * 11.5 -> 12), then each scale s (w s, h s), each box x1 = ctr - 0.5 (w - 1),
 * x2 = ctr + 0.5 (w - 1). out[n_ratios * n_scales][4], ratio-major (row =
 * r * n_scales + s). base 16, ratios {0.5, 1, 2}, scales {8, 16, 32}: rows
 * (-84, -40, 99, 55) ... (-168, -344, 183, 359). */
void anchors_base(int base_size, const double *ratios, int n_ratios, const double *scales, int n_scales,
                  float *out);
/* All anchors of a Hf x Wf feature map: anchor k*A + a (k = y*Wf + x) is base
 * anchor a shifted by stride*(x, y). out[Hf*Wf*A][4]. */
void anchors_shift(const float *base, int A, int Hf, int Wf, int stride, float *out);

/* Regression targets of gt relative to ex (bbox_transform): with w = x2 - x1
 * + 1 and ctr = x1 + 0.5 w of each, dx = (gcx - ecx)/ew, dy = (gcy - ecy)/eh,
 * dw = log(gw/ew), dh = log(gh/eh). t[4]. */
void box_encode(const float *ex, const float *gt, float *t);
/* bbox_transform_inv: ctr + d * size, size * exp(d); x1 = ctr - 0.5 w, x2 =
 * ctr + 0.5 w (so decode(ex, encode(ex, gt)) = gt + (0, 0, 1, 1): the
 * reference's inverse is not exact in the +1 convention, kept as it ran).
 * clamp > 0 clamps dw, dh to at most clamp before exp (torchvision's
 * log(1000/16), key detect.delta_clamp); 0 = none, as the reference. */
void box_decode(const float *box, const float *d, double clamp, float *out);
/* clip to [0, W-1] x [0, H-1] (clip_boxes); a NaN coordinate stays NaN (as
 * torch's clamp) so that NMS still sees and drops it */
void box_clip(float *box, int W, int H);

/* Greedy NMS: the boxes by descending score, a stable sort (ties keep their
 * index order); a box is suppressed when its IoU (box_iou) with a kept one is
 * > thresh (the CUDA kernel that ran; gt_or_equal = 1 gives its CPU twin's
 * >=). keep[] receives at most max_keep indices into boxes, in kept (score)
 * order, and the count is returned. (The reference returns the kept indices
 * sorted by index; every caller passes boxes already sorted by score, where
 * the two orders agree.) Boxes with a non-finite coordinate or score are
 * dropped (never kept, never suppress), and *n_bad (may be NULL) counts them
 * over all n. Returns -1 when out of memory. */
int nms(const float *boxes, const float *scores, int n, float thresh, int gt_or_equal, int *keep, int max_keep,
        int *n_bad);
/* order[n]: indices of scores sorted descending, stable (ties in index
 * order; NaN after every number). The reference's torch.sort is not stable;
 * ties are rare on real scores and stable is reproducible. */
void argsort_desc(const float *scores, int n, int *order);

#endif
