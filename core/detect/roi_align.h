/* RoIAlign as torchvision's roi_align(aligned=False, sampling_ratio=0), the
 * `ROIAlign((7, 7), 1/16, 0)` of the reference (method.md 4.4):
 *   a RoI (b, x1, y1, x2, y2) in image pixels is scaled by spatial_scale
 *   (1/16, unrounded); aligned = 0: no half-pixel offset and the RoI's w, h
 *   are at least 1; aligned = 1: offset -0.5, no minimum (detect.roi_aligned);
 *   each of the PH x PW bins averages ceil(roi_h / PH) x ceil(roi_w / PW)
 *   bilinear samples (sampling_ratio 0) at the sub-bin centres; a sample
 *   outside [-1, H] x [-1, W] counts 0, one inside clamps to the map's edge.
 * feat [N, C, H, W], rois [R][5] (batch index, x1, y1, x2, y2; float),
 * out [R, C, PH, PW].
 *
 * Precision: the RoI arithmetic runs in `real` (torchvision's kernel runs in
 * the input's dtype, spatial_scale cast to it), so the f32 engine computes
 * what roi_align computes on float32 tensors and the f64 engine what it
 * computes on float64 ones.
 * Guards torchvision does not have: a RoI whose batch index is outside
 * [0, N), or with a non-finite coordinate, or more than 2^20 samples per bin
 * axis, gives zeros and no gradient (torchvision reads out of bounds or
 * loops without end). R = 0 (or any dimension 0) does nothing.
 * The four functions give bitwise the same results: the fast ones evaluate
 * the reference's expressions in the same order from per-RoI tables. */
#ifndef CBNN_ROI_ALIGN_H
#define CBNN_ROI_ALIGN_H

#include "real.h"

typedef struct {
    int PH, PW;            /* 7, 7 */
    double spatial_scale;  /* 1/16 */
    int sampling_ratio;    /* 0: adaptive ceil(size/bins) */
    int aligned;           /* 0 as the reference */
} RoIAlignOptions;

/* out is overwritten. OpenMP over (RoI, channel) pairs; bitwise the same for
 * any thread count. Falls back to the reference loop when the per-RoI tables
 * cannot be allocated. */
void roi_align_forward(real *out, const real *feat, int N, int C, int H, int W, const float *rois, int R,
                       const RoIAlignOptions *o);
/* dfeat [N, C, H, W] += the adjoint of the forward applied to dout
 * [R, C, PH, PW] (accumulated, not overwritten: zero it first); each
 * sample's g * w / count goes to its four corners. Deterministic: OpenMP over
 * the feature planes (b, c), each owned by one thread, which adds the RoIs of
 * image b in ascending order; no atomics. */
void roi_align_backward(real *dfeat, const real *dout, int N, int C, int H, int W, const float *rois, int R,
                        const RoIAlignOptions *o);
/* the plain reference of both: one loop nest (RoI, channel, bin, sample),
 * every sample's weights computed from scratch; serial */
void roi_align_forward_ref(real *out, const real *feat, int N, int C, int H, int W, const float *rois, int R,
                           const RoIAlignOptions *o);
void roi_align_backward_ref(real *dfeat, const real *dout, int N, int C, int H, int W, const float *rois, int R,
                            const RoIAlignOptions *o);

#endif
