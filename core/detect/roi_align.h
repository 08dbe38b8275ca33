/* RoIAlign as torchvision's roi_align(aligned=False, sampling_ratio=0), the
 * `ROIAlign((7, 7), 1/16, 0)` of the reference (method.md 4.4):
 *   a RoI (b, x1, y1, x2, y2) in image pixels is scaled by spatial_scale
 *   (1/16, unrounded); aligned = 0: no half-pixel offset and the RoI's w, h
 *   are at least 1; aligned = 1: offset -0.5, no minimum (detect.roi_aligned);
 *   each of the PH x PW bins averages ceil(roi_h / PH) x ceil(roi_w / PW)
 *   bilinear samples (sampling_ratio 0) at the sub-bin centres; a sample
 *   outside [-1, H] x [-1, W] counts 0, one inside clamps to the map's edge.
 * feat [N, C, H, W], rois [R][5] (batch index, x1, y1, x2, y2; float),
 * out [R, C, PH, PW]. */
#ifndef CBNN_ROI_ALIGN_H
#define CBNN_ROI_ALIGN_H

#include "real.h"

typedef struct {
    int PH, PW;            /* 7, 7 */
    double spatial_scale;  /* 1/16 */
    int sampling_ratio;    /* 0: adaptive ceil(size/bins) */
    int aligned;           /* 0 as the reference */
} RoIAlignOptions;

/* OpenMP over RoIs x channels; bitwise the same for any thread count */
void roi_align_forward(real *out, const real *feat, int N, int C, int H, int W, const float *rois, int R,
                       const RoIAlignOptions *o);
/* dfeat += the adjoint of the forward applied to dout (dfeat is accumulated,
 * not overwritten); deterministic: every thread owns whole channels */
void roi_align_backward(real *dfeat, const real *dout, int N, int C, int H, int W, const float *rois, int R,
                        const RoIAlignOptions *o);
/* the plain reference of both: one loop nest, one sample at a time */
void roi_align_forward_ref(real *out, const real *feat, int N, int C, int H, int W, const float *rois, int R,
                           const RoIAlignOptions *o);
void roi_align_backward_ref(real *dfeat, const real *dout, int N, int C, int H, int W, const float *rois, int R,
                            const RoIAlignOptions *o);

#endif
