/* ImageNet preprocessing (method.md 5.1) on decoded 8-bit RGB images.
 *
 * Train: RandomResizedCrop(S, scale, ratio) -> horizontal flip -> Lighting ->
 * ToTensor (/255) -> Normalize. Eval: Resize(shorter side R) -> CenterCrop(S)
 * -> ToTensor -> Normalize.
 *
 * Interpolation: PIL's BILINEAR resize (what torchvision applies to the PIL
 * images of the original): a separable triangle filter whose support is
 * widened by the downscale factor (i.e. antialiased on downscaling, plain
 * bilinear with half-pixel centres on upscaling), horizontal pass first,
 * 22-bit fixed-point weights, and the intermediate and the result rounded to
 * uint8, as Pillow's ImagingResample does. The crop is taken first (taps never
 * reach outside the crop box), as torchvision's resized_crop = crop + resize.
 *
 * Random draws, always in this order and only for what is enabled:
 *   RandomResizedCrop: per attempt (up to 10) U(scale_min, scale_max) then
 *   U(log ratio_min, log ratio_max); for the accepted attempt the top offset
 *   rng_below(H - h + 1) then the left offset rng_below(W - w + 1);
 *   flip: one rng_u64, top bit (p = 0.5);
 *   Lighting: three rng_normal (alpha_0..2, times alphastd, rounded to float).
 * The original draws Lighting before the flip; the two commute (one is
 * per-channel, the other spatial), so only the stream order differs. */
#ifndef CBNN_AUGMENT_IMAGENET_H
#define CBNN_AUGMENT_IMAGENET_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"
#include "rng.h"

#define INET_LIGHTING_STD 0.1
extern const float INET_MEAN[3], INET_STD[3];
extern const double INET_PCA_EIGVAL[3];
extern const double INET_PCA_EIGVEC[3][3];

/* torchvision RandomResizedCrop.get_params for a width x height image:
 * 10 attempts of target area = area * U(scale) and aspect = exp(U(log ratio)),
 * w = round(sqrt(area_t * aspect)), h = round(sqrt(area_t / aspect)) (round
 * half to even, as Python), accepted when 0 < w <= width and 0 < h <= height,
 * then top i ~ U{0..height-h}, left j ~ U{0..width-w}; otherwise the centre
 * crop fallback (aspect clamped to the ratio range). Returns the box in
 * torchvision's (i = top, j = left, h, w) order. Returns the attempt that was
 * accepted (0..9) or 10 for the fallback. */
int inet_rrc_params(int width, int height, double scale_min, double scale_max, double ratio_min, double ratio_max,
                    Rng *rng, int *i, int *j, int *h, int *w);

/* torchvision Resize(R) (shorter side to R, the longer int(R * long / short))
 * then CenterCrop(S) (top = round((rh - S) / 2), half to even): the resized
 * size and the crop's offset in it. */
void inet_eval_geometry(int width, int height, int resize, int crop, int *rw, int *rh, int *top, int *left);

/* PIL-style bilinear resampling of the region [x0, x1) x [y0, y1) of an RGB
 * image (src_w x src_h, rows of 3*src_w bytes) to a virtual vw x vh image, of
 * which the dw x dh window at (ox, oy) is written to dst (RGB, 3*dw per row).
 * Filter taps are clamped to the integer hull of the region. Returns 0, or -1
 * on bad arguments / out of memory. */
int inet_resample(const uint8_t *src, int src_w, int src_h, double x0, double y0, double x1, double y1, int vw,
                  int vh, int ox, int oy, uint8_t *dst, int dw, int dh);

/* Lighting: the per-channel offsets eigvec . (alpha * eigval), alpha ~
 * N(0, alphastd) (3 draws), and their application to uint8 RGB as the
 * original does on the PIL image: v = clip(p + inc, 0, 255) cast to uint8,
 * i.e. truncated. With |inc| ~ 0.01 << 1 a channel with a negative offset
 * loses 1 on every pixel > 0 and one with a positive offset is unchanged. */
void inet_lighting_offsets(Rng *rng, double alphastd, double inc[3]);
void inet_lighting_apply(uint8_t *rgb, size_t npix, const double inc[3]);

/* HWC uint8 RGB (w x h) -> CHW reals: x / 255, mirrored when flip, then
 * (x - mean) / std when normalize. */
void inet_to_chw(const uint8_t *rgb, int w, int h, int flip, int normalize, const float mean[3], const float std[3],
                 real *out);

#endif
