/* CIFAR-10 training augmentations (method.md 5.2), on uint8 CHW images.
 *
 * Pipeline (cifar_augment): crop (pad, fill) -> horizontal flip -> AutoAugment
 * CIFAR10Policy -> scale to [0,1] -> Cutout (hole = mean colour) [-> normalize].
 * The reference (lowbinary/modules/data.py of the authors' code) runs
 * RandomCrop(32, padding=4, fill=mean_int) -> RandomHorizontalFlip ->
 * CIFAR10Policy(fillcolor=mean_int) -> ToTensor -> CutoutAfterToTensor(1, 16,
 * fill_color=mean) on PIL images; every op below reproduces PIL's integer
 * arithmetic (see augment_cifar.c for each op and where it is approximated).
 *
 * Random draws, always from the Rng passed in and always in this order, each
 * only when its stage is enabled (and AutoAugment's only when an op fires):
 *   1. crop row offset     rng_below(2*pad+1)       (torchvision draws i, then j)
 *   2. crop column offset  rng_below(2*pad+1)
 *   3. flip                top bit of rng_u64        (p = 0.5)
 *   4. sub-policy          rng_below(25)
 *   5. u1 = rng_uniform;   op1 fires when u1 < p1; a signed op then draws its
 *                          sign (top bit of rng_u64: 1 = negative)
 *   6. u2 = rng_uniform;   likewise for op2
 *   7. Cutout centre row   rng_below(H), then column rng_below(W)
 * The first three are exactly those of dataset_get_u8 (datasets/dataset.c). */
#ifndef CBNN_AUGMENT_CIFAR_H
#define CBNN_AUGMENT_CIFAR_H

#include <stdint.h>

#include "dataset.h"
#include "real.h"
#include "rng.h"

/* AutoAugment operations, named as in CIFAR10Policy's SubPolicy */
typedef enum {
    AA_SHEAR_X, AA_SHEAR_Y, AA_TRANSLATE_X, AA_TRANSLATE_Y, AA_ROTATE, AA_COLOR, AA_POSTERIZE,
    AA_SOLARIZE, AA_CONTRAST, AA_SHARPNESS, AA_BRIGHTNESS, AA_AUTOCONTRAST, AA_EQUALIZE, AA_INVERT,
    AA_NUM_OPS
} AaOp;

/* one sub-policy: (op, probability, magnitude index) twice */
typedef struct {
    AaOp op1;
    double p1;
    int m1;
    AaOp op2;
    double p2;
    int m2;
} AaSubPolicy;

#define AA_CIFAR10_NUM_POLICIES 25
extern const AaSubPolicy aa_cifar10_policy[AA_CIFAR10_NUM_POLICIES];

/* the rotate op's fill: rotate_with_fill composites onto (128,128,128),
 * whatever fillcolor the policy was given */
#define AA_ROTATE_FILL 128

const char *aa_op_name(AaOp op);
/* 1 when the op draws a random sign (shear, translate, color, contrast, sharpness, brightness) */
int aa_op_signed(AaOp op);
/* the SubPolicy magnitude for index 0..9 (np.linspace ranges; posterize is
 * rounded to int bits; solarize is the threshold; rotate in degrees;
 * translate as a fraction of the width/height) */
double aa_magnitude(AaOp op, int idx);

/* Apply one op in place to img [C, H, W] (C = 1 or 3; 3 = RGB) with the given
 * magnitude value and sign (+1/-1, ignored by unsigned ops); fill [C] is the
 * fillcolor of shear/translate. tmp holds C*H*W bytes of scratch. */
void aa_apply(AaOp op, double magnitude, int sign, uint8_t *img, uint8_t *tmp, int C, int H, int W,
              const uint8_t *fill);

/* rotate by deg degrees counter-clockwise about the centre (PIL Image.rotate,
 * NEAREST), uncovered pixels = fill_value in every channel */
void aa_rotate(uint8_t *img, uint8_t *tmp, int C, int H, int W, double deg, uint8_t fill_value);

/* The CIFAR10Policy: draws (4)-(6) above and applies the chosen sub-policy in
 * place. Returns the sub-policy index; *fired (may be NULL) gets bit 0 = op1
 * applied, bit 1 = op2 applied. */
int aa_cifar10_apply(uint8_t *img, uint8_t *tmp, int C, int H, int W, const uint8_t *fill, Rng *rng, int *fired);

/* crop with padding and flip: dst(y, x) = P(y + dy, x' + dx) with x' = W-1-x
 * when flip, else x, where P is src padded with fill[c] (dy, dx in [-pad, pad]) */
void cifar_crop_flip(const uint8_t *src, uint8_t *dst, int C, int H, int W, int dy, int dx, int flip,
                     const uint8_t *fill);

/* Cutout hole for a centre (cy, cx) and side len, as CutoutAfterToTensor:
 * rows [clip(cy - len/2), clip(cy + len/2)), columns likewise (integer len/2,
 * so an odd len gives a hole of len-1 and the hole is clipped at the borders) */
void cutout_rect(int H, int W, int len, int cy, int cx, int *y0, int *y1, int *x0, int *x1);

/* the padding colour of RandomCrop / fillcolor of CIFAR10Policy: int(255 * mean[c])
 * (truncated, as the reference's data_mean_int: (125, 122, 113) on CIFAR-10) */
void cifar_mean_u8(const float *mean, int C, uint8_t *out);

/* The whole pipeline on one image src [C, H, W] (C <= 3) into out [C, H, W].
 * mean/std are the dataset's (on [0,1]); honours aug->crop_pad, crop_fill_mean,
 * flip, autoaugment, cutout, normalize. rng NULL or aug NULL: no random
 * augmentation (only scaling and, with aug->normalize, normalisation). */
void cifar_augment(const uint8_t *src, real *out, int C, int H, int W, const float *mean, const float *std,
                   const Augment *aug, Rng *rng);

#endif
