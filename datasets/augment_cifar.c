/* CIFAR-10 augmentations: RandomCrop with mean fill, flip, the AutoAugment
 * CIFAR10Policy and Cutout, reproducing what the reference pipeline computes
 * with PIL (Pillow 9/10 C code, libImaging Geometry.c, Filter.c, Blend.c,
 * Convert.c, and PIL/ImageOps.py, ImageEnhance.py) on uint8 pixels.
 *
 * Interpolation, per op, as in the reference (not chosen here):
 *   ShearX/Y     PIL BICUBIC (Image.transform(..., Image.BICUBIC)): Keys cubic
 *                with a = -1 (PIL's BICUBIC macro), sampled at the pixel centre
 *                (x+0.5, y+0.5) mapped through the affine matrix, neighbours
 *                clamped at the borders; result clipped to 0..255 and truncated.
 *                A sample point outside [0,W)x[0,H) gets the fillcolor.
 *   TranslateX/Y PIL NEAREST (no resample argument): ImagingScaleAffine, the
 *                sample position accumulated in double exactly as PIL does.
 *   Rotate       PIL NEAREST (Image.rotate default) in PIL's 16.16 fixed-point
 *                affine path (affine_fixed), matrix entries rounded to 15
 *                decimals as Image.rotate does; 0/90/180/270 degrees take PIL's
 *                transpose shortcuts. Counter-clockwise, positive angle only
 *                (the reference's rotate has no random sign), fill 128.
 * Every other op is a per-pixel LUT or blend reproduced in PIL's integer/float
 * arithmetic. Known approximations:
 *   - Color/Contrast use PIL's current RGB->L conversion (L24: rounded
 *     19595 R + 38470 G + 7471 B >> 16); Pillow < 4 used (299 R + 587 G + 114 B)/1000.
 *   - Single-channel images (not CIFAR) use the RGB code path per channel.
 *   - The blend factor is a C float as in ImagingBlend; the SMOOTH kernel
 *     weights are float 1/13 and 5/13 with +0.5 rounding as in ImagingFilter3x3.
 */
#include "augment_cifar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the policy (Cubuk et al. 2019, Appendix; CIFAR10Policy order) ---- */

const AaSubPolicy aa_cifar10_policy[AA_CIFAR10_NUM_POLICIES] = {
    {AA_INVERT, 0.1, 7, AA_CONTRAST, 0.2, 6},
    {AA_ROTATE, 0.7, 2, AA_TRANSLATE_X, 0.3, 9},
    {AA_SHARPNESS, 0.8, 1, AA_SHARPNESS, 0.9, 3},
    {AA_SHEAR_Y, 0.5, 8, AA_TRANSLATE_Y, 0.7, 9},
    {AA_AUTOCONTRAST, 0.5, 8, AA_EQUALIZE, 0.9, 2},

    {AA_SHEAR_Y, 0.2, 7, AA_POSTERIZE, 0.3, 7},
    {AA_COLOR, 0.4, 3, AA_BRIGHTNESS, 0.6, 7},
    {AA_SHARPNESS, 0.3, 9, AA_BRIGHTNESS, 0.7, 9},
    {AA_EQUALIZE, 0.6, 5, AA_EQUALIZE, 0.5, 1},
    {AA_CONTRAST, 0.6, 7, AA_SHARPNESS, 0.6, 5},

    {AA_COLOR, 0.7, 7, AA_TRANSLATE_X, 0.5, 8},
    {AA_EQUALIZE, 0.3, 7, AA_AUTOCONTRAST, 0.4, 8},
    {AA_TRANSLATE_Y, 0.4, 3, AA_SHARPNESS, 0.2, 6},
    {AA_BRIGHTNESS, 0.9, 6, AA_COLOR, 0.2, 8},
    {AA_SOLARIZE, 0.5, 2, AA_INVERT, 0.0, 3},

    {AA_EQUALIZE, 0.2, 0, AA_AUTOCONTRAST, 0.6, 0},
    {AA_EQUALIZE, 0.2, 8, AA_EQUALIZE, 0.6, 4},
    {AA_COLOR, 0.9, 9, AA_EQUALIZE, 0.6, 6},
    {AA_AUTOCONTRAST, 0.8, 4, AA_SOLARIZE, 0.2, 8},
    {AA_BRIGHTNESS, 0.1, 3, AA_COLOR, 0.7, 0},

    {AA_SOLARIZE, 0.4, 5, AA_AUTOCONTRAST, 0.9, 3},
    {AA_TRANSLATE_Y, 0.9, 9, AA_TRANSLATE_Y, 0.7, 9},
    {AA_AUTOCONTRAST, 0.9, 2, AA_SOLARIZE, 0.8, 3},
    {AA_EQUALIZE, 0.8, 8, AA_INVERT, 0.1, 3},
    {AA_TRANSLATE_Y, 0.7, 9, AA_AUTOCONTRAST, 0.9, 1},
};

static const char *const OP_NAMES[AA_NUM_OPS] = {
    "shearX", "shearY", "translateX", "translateY", "rotate", "color", "posterize",
    "solarize", "contrast", "sharpness", "brightness", "autocontrast", "equalize", "invert",
};

const char *aa_op_name(AaOp op) { return (op >= 0 && op < AA_NUM_OPS) ? OP_NAMES[op] : "?"; }

int aa_op_signed(AaOp op) {
    switch (op) {
    case AA_SHEAR_X: case AA_SHEAR_Y: case AA_TRANSLATE_X: case AA_TRANSLATE_Y:
    case AA_COLOR: case AA_CONTRAST: case AA_SHARPNESS: case AA_BRIGHTNESS:
        return 1;
    default:
        return 0;
    }
}

/* np.linspace(start, stop, 10)[i]: i * ((stop - start) / 9) + start, the last exactly stop */
static double linspace10(double start, double stop, int i) {
    if (i >= 9) return stop;
    return (double)i * ((stop - start) / 9.0) + start;
}

double aa_magnitude(AaOp op, int idx) {
    if (idx < 0) idx = 0;
    if (idx > 9) idx = 9;
    switch (op) {
    case AA_SHEAR_X: case AA_SHEAR_Y: return linspace10(0.0, 0.3, idx);
    case AA_TRANSLATE_X: case AA_TRANSLATE_Y: return linspace10(0.0, 150.0 / 331.0, idx);
    case AA_ROTATE: return linspace10(0.0, 30.0, idx);
    case AA_COLOR: case AA_CONTRAST: case AA_SHARPNESS: case AA_BRIGHTNESS: return linspace10(0.0, 0.9, idx);
    case AA_POSTERIZE: return nearbyint(linspace10(8.0, 4.0, idx)); /* np.round: half to even */
    case AA_SOLARIZE: return linspace10(256.0, 0.0, idx);
    default: return 0.0;
    }
}

/* ---- helpers ---- */

#define FLOORI(v) ((v) < 0.0 ? (int)floor(v) : (int)(v))
#define COORD(v) ((v) < 0.0 ? -1 : (int)(v))

static void apply_lut(uint8_t *plane, size_t n, const uint8_t lut[256]) {
    for (size_t k = 0; k < n; k++) plane[k] = lut[plane[k]];
}

/* PIL ImagingBlend(im1, im2, alpha) in place on im2: im1 + alpha (im2 - im1), float */
static uint8_t blend_px(int in1, int in2, float alpha) {
    if (alpha >= 0 && alpha <= 1.0) return (uint8_t)((float)in1 + alpha * (float)(in2 - in1));
    float t = (float)in1 + alpha * (float)(in2 - in1);
    if (t <= 0.0f) return 0;
    if (t >= 255.0f) return 255;
    return (uint8_t)t;
}

/* RGB -> L (Convert.c L24), into l [H*W]; one channel: itself */
static void to_luma(const uint8_t *img, int C, size_t n, uint8_t *l) {
    if (C < 3) {
        memcpy(l, img, n);
        return;
    }
    for (size_t k = 0; k < n; k++)
        l[k] = (uint8_t)(((uint32_t)img[k] * 19595u + (uint32_t)img[n + k] * 38470u + (uint32_t)img[2 * n + k] * 7471u +
                          0x8000u) >> 16);
}

/* PIL's BICUBIC of one channel at (xin, yin) (Geometry.c bicubic_filter32RGB);
 * returns 0 when the point is outside the image (then the fill is used) */
static double cubic(double v1, double v2, double v3, double v4, double d) {
    double p1 = v2;
    double p2 = -v1 + v3;
    double p3 = 2 * (v1 - v2) + v3 - v4;
    double p4 = -v1 + v2 - v3 + v4;
    return p1 + d * (p2 + d * (p3 + d * p4));
}

static int bicubic_px(const uint8_t *p, int H, int W, double xin, double yin, uint8_t *out) {
    if (xin < 0.0 || xin >= W || yin < 0.0 || yin >= H) return 0;
    xin -= 0.5;
    yin -= 0.5;
    int x = FLOORI(xin), y = FLOORI(yin);
    double dx = xin - x, dy = yin - y;
    x--, y--;
    int xs[4];
    for (int k = 0; k < 4; k++) xs[k] = x + k < 0 ? 0 : (x + k < W ? x + k : W - 1);
    double v[4];
    for (int r = 0; r < 4; r++) {
        int yy = y + r;
        if (r == 0) yy = yy < 0 ? 0 : (yy < H ? yy : H - 1);
        else if (yy < 0 || yy >= H) { /* rows after the first outside the image repeat the previous one */
            v[r] = v[r - 1];
            continue;
        }
        const uint8_t *row = p + (size_t)yy * W;
        v[r] = cubic(row[xs[0]], row[xs[1]], row[xs[2]], row[xs[3]], dx);
    }
    double r = cubic(v[0], v[1], v[2], v[3], dy);
    *out = r <= 0.0 ? 0 : (r >= 255.0 ? 255 : (uint8_t)r);
    return 1;
}

/* Image.transform(size, AFFINE, a, BICUBIC, fillcolor=fill) */
static void affine_bicubic(uint8_t *img, uint8_t *tmp, int C, int H, int W, const double a[6], const uint8_t *fill) {
    const size_t n = (size_t)H * W;
    for (int c = 0; c < C; c++) {
        const uint8_t *src = img + c * n;
        uint8_t *dst = tmp + c * n;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double xi = x + 0.5, yi = y + 0.5;
                double xo = a[0] * xi + a[1] * yi + a[2];
                double yo = a[3] * xi + a[4] * yi + a[5];
                if (!bicubic_px(src, H, W, xo, yo, &dst[(size_t)y * W + x])) dst[(size_t)y * W + x] = fill[c];
            }
    }
    memcpy(img, tmp, (size_t)C * n);
}

/* Image.transform(size, AFFINE, (1, 0, tx, 0, 1, ty), NEAREST, fillcolor=fill):
 * ImagingScaleAffine with its double accumulation */
static void translate_nearest(uint8_t *img, uint8_t *tmp, int C, int H, int W, double tx, double ty,
                              const uint8_t *fill) {
    const size_t n = (size_t)H * W;
    int xintab[1024];
    int *xt = W <= 1024 ? xintab : malloc(sizeof(int) * (size_t)W);
    if (!xt) return;
    double xo = tx + 1.0 * 0.5;
    for (int x = 0; x < W; x++) {
        int xi = COORD(xo);
        xt[x] = (xi >= 0 && xi < W) ? xi : -1;
        xo += 1.0;
    }
    for (int c = 0; c < C; c++) {
        const uint8_t *src = img + c * n;
        uint8_t *dst = tmp + c * n;
        double yo = ty + 1.0 * 0.5;
        for (int y = 0; y < H; y++) {
            int yi = COORD(yo);
            uint8_t *row = dst + (size_t)y * W;
            for (int x = 0; x < W; x++)
                row[x] = (yi >= 0 && yi < H && xt[x] >= 0) ? src[(size_t)yi * W + xt[x]] : fill[c];
            yo += 1.0;
        }
    }
    if (xt != xintab) free(xt);
    memcpy(img, tmp, (size_t)C * n);
}

/* Python's round(v, 15): correctly rounded through the decimal string */
static double round15(double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.15f", v);
    double r = strtod(buf, NULL);
    return r == 0.0 ? 0.0 : r; /* -0.0 -> 0.0 makes no difference below, but keep it tidy */
}

static int floor_shift16(int v) { return v >= 0 ? v >> 16 : ~((~v) >> 16); }

void aa_rotate(uint8_t *img, uint8_t *tmp, int C, int H, int W, double deg, uint8_t fill_value) {
    const size_t n = (size_t)H * W;
    double angle = fmod(deg, 360.0);
    if (angle < 0) angle += 360.0; /* Python's % */
    if (angle == 0.0) return;
    if (angle == 180.0 || ((angle == 90.0 || angle == 270.0) && W == H)) {
        for (int c = 0; c < C; c++) {
            const uint8_t *s = img + c * n;
            uint8_t *d = tmp + c * n;
            for (int r = 0; r < H; r++)
                for (int q = 0; q < W; q++) {
                    uint8_t v;
                    if (angle == 180.0) v = s[(size_t)(H - 1 - r) * W + (W - 1 - q)];
                    else if (angle == 90.0) v = s[(size_t)q * W + (W - 1 - r)];   /* ImagingRotate90 */
                    else v = s[(size_t)(H - 1 - q) * W + r];                      /* ImagingRotate270 */
                    d[(size_t)r * W + q] = v;
                }
        }
        memcpy(img, tmp, (size_t)C * n);
        return;
    }
    /* Image.rotate: inverse matrix about the centre (w/2, h/2) */
    double cx = W / 2.0, cy = H / 2.0;
    double t = -(angle * M_PI / 180.0); /* -math.radians(angle) */
    double m[6] = {round15(cos(t)), round15(sin(t)), 0.0, round15(-sin(t)), round15(cos(t)), 0.0};
    double m2 = m[0] * (-cx) + m[1] * (-cy) + m[2];
    double m5 = m[3] * (-cx) + m[4] * (-cy) + m[5];
    m[2] = m2 + cx;
    m[5] = m5 + cy;
    /* affine_fixed: 16.16 fixed point */
#define FIX(v) FLOORI((v) * 65536.0 + 0.5)
    int a0 = FIX(m[0]), a1 = FIX(m[1]), a3 = FIX(m[3]), a4 = FIX(m[4]);
    int a2 = FIX(m[2] + m[0] * 0.5 + m[1] * 0.5);
    int a5 = FIX(m[5] + m[3] * 0.5 + m[4] * 0.5);
#undef FIX
    for (int y = 0; y < H; y++) {
        int xx = a2, yy = a5;
        for (int x = 0; x < W; x++) {
            int xin = floor_shift16(xx), yin = floor_shift16(yy);
            int inside = xin >= 0 && xin < W && yin >= 0 && yin < H;
            for (int c = 0; c < C; c++)
                tmp[c * n + (size_t)y * W + x] = inside ? img[c * n + (size_t)yin * W + xin] : fill_value;
            xx += a0;
            yy += a3;
        }
        a2 += a1;
        a5 += a4;
    }
    memcpy(img, tmp, (size_t)C * n);
}

/* ImageOps.autocontrast(img) (cutoff 0), per channel */
static void autocontrast(uint8_t *img, int C, size_t n) {
    for (int c = 0; c < C; c++) {
        uint8_t *p = img + c * n;
        long h[256] = {0};
        for (size_t k = 0; k < n; k++) h[p[k]]++;
        int lo = 0, hi = 255;
        while (lo < 256 && !h[lo]) lo++;
        while (hi >= 0 && !h[hi]) hi--;
        if (hi <= lo) continue;
        double scale = 255.0 / (hi - lo);
        double offset = -lo * scale;
        uint8_t lut[256];
        for (int ix = 0; ix < 256; ix++) {
            double v = ix * scale + offset;
            long iv = (long)v; /* int(): toward zero */
            lut[ix] = (uint8_t)(iv < 0 ? 0 : (iv > 255 ? 255 : iv));
        }
        apply_lut(p, n, lut);
    }
}

/* ImageOps.equalize(img), per channel */
static void equalize(uint8_t *img, int C, size_t n) {
    for (int c = 0; c < C; c++) {
        uint8_t *p = img + c * n;
        long h[256] = {0};
        for (size_t k = 0; k < n; k++) h[p[k]]++;
        long total = 0, last = 0, nonzero = 0;
        for (int i = 0; i < 256; i++)
            if (h[i]) total += h[i], last = h[i], nonzero++;
        if (nonzero <= 1) continue;
        long step = (total - last) / 255;
        if (!step) continue;
        long acc = step / 2;
        uint8_t lut[256];
        for (int i = 0; i < 256; i++) {
            long v = acc / step;
            lut[i] = (uint8_t)(v > 255 ? 255 : v); /* values > 255 only for levels absent from the image */
            acc += h[i];
        }
        apply_lut(p, n, lut);
    }
}

/* ImageFilter.SMOOTH (3x3 [1 1 1; 1 5 1; 1 1 1] / 13), borders copied */
static void smooth(const uint8_t *img, uint8_t *out, int C, int H, int W) {
    const size_t n = (size_t)H * W;
    const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
    memcpy(out, img, (size_t)C * n);
    for (int c = 0; c < C; c++) {
        const uint8_t *p = img + c * n;
        uint8_t *o = out + c * n;
        for (int y = 1; y < H - 1; y++) {
            const uint8_t *rm = p + (size_t)(y - 1) * W, *r0 = p + (size_t)y * W, *rp = p + (size_t)(y + 1) * W;
            for (int x = 1; x < W - 1; x++) {
                float ss = 0.5f;
                ss += (float)rp[x - 1] * k1 + (float)rp[x] * k1 + (float)rp[x + 1] * k1;
                ss += (float)r0[x - 1] * k1 + (float)r0[x] * k5 + (float)r0[x + 1] * k1;
                ss += (float)rm[x - 1] * k1 + (float)rm[x] * k1 + (float)rm[x + 1] * k1;
                o[(size_t)y * W + x] = ss <= 0.0f ? 0 : (ss >= 255.0f ? 255 : (uint8_t)ss);
            }
        }
    }
}

void aa_apply(AaOp op, double mag, int sign, uint8_t *img, uint8_t *tmp, int C, int H, int W, const uint8_t *fill) {
    const size_t n = (size_t)H * W;
    const double s = sign < 0 ? -1.0 : 1.0;
    uint8_t lut[256];
    switch (op) {
    case AA_SHEAR_X: {
        double a[6] = {1, mag * s, 0, 0, 1, 0};
        affine_bicubic(img, tmp, C, H, W, a, fill);
        break;
    }
    case AA_SHEAR_Y: {
        double a[6] = {1, 0, 0, mag * s, 1, 0};
        affine_bicubic(img, tmp, C, H, W, a, fill);
        break;
    }
    case AA_TRANSLATE_X: translate_nearest(img, tmp, C, H, W, mag * W * s, 0.0, fill); break;
    case AA_TRANSLATE_Y: translate_nearest(img, tmp, C, H, W, 0.0, mag * H * s, fill); break;
    case AA_ROTATE: aa_rotate(img, tmp, C, H, W, mag, AA_ROTATE_FILL); break;
    case AA_POSTERIZE: {
        int bits = (int)mag;
        uint8_t mask = (uint8_t)~((1u << (8 - bits)) - 1u);
        for (int i = 0; i < 256; i++) lut[i] = (uint8_t)(i & mask);
        apply_lut(img, (size_t)C * n, lut);
        break;
    }
    case AA_SOLARIZE:
        for (int i = 0; i < 256; i++) lut[i] = (uint8_t)(i < mag ? i : 255 - i);
        apply_lut(img, (size_t)C * n, lut);
        break;
    case AA_INVERT:
        for (int i = 0; i < 256; i++) lut[i] = (uint8_t)(255 - i);
        apply_lut(img, (size_t)C * n, lut);
        break;
    case AA_AUTOCONTRAST: autocontrast(img, C, n); break;
    case AA_EQUALIZE: equalize(img, C, n); break;
    case AA_COLOR: case AA_CONTRAST: case AA_BRIGHTNESS: case AA_SHARPNESS: {
        float f = (float)(1.0 + mag * s);
        /* the degenerate image into tmp [C, H, W] */
        if (op == AA_COLOR) {
            to_luma(img, C, n, tmp);
            for (int c = 1; c < C; c++) memcpy(tmp + c * n, tmp, n);
        } else if (op == AA_CONTRAST) {
            to_luma(img, C, n, tmp);
            double sum = 0.0;
            for (size_t k = 0; k < n; k++) sum += tmp[k];
            int mean = (int)(sum / (double)n + 0.5);
            memset(tmp, mean, (size_t)C * n);
        } else if (op == AA_BRIGHTNESS) {
            memset(tmp, 0, (size_t)C * n);
        } else {
            smooth(img, tmp, C, H, W);
        }
        for (size_t k = 0; k < (size_t)C * n; k++) img[k] = blend_px(tmp[k], img[k], f);
        break;
    }
    default: break;
    }
}

int aa_cifar10_apply(uint8_t *img, uint8_t *tmp, int C, int H, int W, const uint8_t *fill, Rng *rng, int *fired) {
    int k = (int)rng_below(rng, AA_CIFAR10_NUM_POLICIES);
    const AaSubPolicy *sp = &aa_cifar10_policy[k];
    int f = 0;
    if (rng_uniform(rng) < sp->p1) {
        int sign = aa_op_signed(sp->op1) ? ((rng_u64(rng) >> 63) ? -1 : 1) : 1;
        aa_apply(sp->op1, aa_magnitude(sp->op1, sp->m1), sign, img, tmp, C, H, W, fill);
        f |= 1;
    }
    if (rng_uniform(rng) < sp->p2) {
        int sign = aa_op_signed(sp->op2) ? ((rng_u64(rng) >> 63) ? -1 : 1) : 1;
        aa_apply(sp->op2, aa_magnitude(sp->op2, sp->m2), sign, img, tmp, C, H, W, fill);
        f |= 2;
    }
    if (fired) *fired = f;
    return k;
}

/* ---- crop, flip, Cutout, the pipeline ---- */

void cifar_crop_flip(const uint8_t *src, uint8_t *dst, int C, int H, int W, int dy, int dx, int flip,
                     const uint8_t *fill) {
    const size_t n = (size_t)H * W;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            int sy = y + dy;
            uint8_t *row = dst + c * n + (size_t)y * W;
            for (int x = 0; x < W; x++) {
                int sx = (flip ? W - 1 - x : x) + dx;
                row[x] = (sy < 0 || sy >= H || sx < 0 || sx >= W) ? fill[c] : src[c * n + (size_t)sy * W + sx];
            }
        }
}

void cutout_rect(int H, int W, int len, int cy, int cx, int *y0, int *y1, int *x0, int *x1) {
    int h = len / 2;
#define CLIP(v, hi) ((v) < 0 ? 0 : ((v) > (hi) ? (hi) : (v)))
    *y0 = CLIP(cy - h, H);
    *y1 = CLIP(cy + h, H);
    *x0 = CLIP(cx - h, W);
    *x1 = CLIP(cx + h, W);
#undef CLIP
}

void cifar_mean_u8(const float *mean, int C, uint8_t *out) {
    for (int c = 0; c < C; c++) {
        float v = 255.0f * mean[c]; /* int(255 * data_mean[c]) on a float32 tensor */
        out[c] = (uint8_t)(v <= 0.0f ? 0 : (v >= 255.0f ? 255 : (int)v));
    }
}

void cifar_augment(const uint8_t *src, real *out, int C, int H, int W, const float *mean, const float *std,
                   const Augment *aug, Rng *rng) {
    const size_t n = (size_t)H * W;
    uint8_t stack_a[3 * 32 * 32], stack_b[3 * 32 * 32];
    uint8_t *a = stack_a, *b = stack_b;
    const int big = (size_t)C * n > sizeof stack_a;
    if (big) {
        a = malloc((size_t)C * n);
        b = malloc((size_t)C * n);
        if (!a || !b) { /* no memory: a blank sample is better than a crash */
            free(a), free(b);
            memset(out, 0, sizeof(real) * (size_t)C * n);
            return;
        }
    }
    uint8_t mean_u8[3] = {0, 0, 0}, zero[3] = {0, 0, 0};
    cifar_mean_u8(mean, C < 3 ? C : 3, mean_u8);

    int hole = 0, hy0 = 0, hy1 = 0, hx0 = 0, hx1 = 0;
    if (aug && rng) {
        int dy = 0, dx = 0, flip = 0;
        if (aug->crop_pad > 0) {
            uint64_t span = 2 * (uint64_t)aug->crop_pad + 1;
            dy = (int)rng_below(rng, span) - aug->crop_pad;
            dx = (int)rng_below(rng, span) - aug->crop_pad;
        }
        if (aug->flip) flip = (int)(rng_u64(rng) >> 63);
        cifar_crop_flip(src, a, C, H, W, dy, dx, flip, aug->crop_fill_mean ? mean_u8 : zero);
        if (aug->autoaugment) aa_cifar10_apply(a, b, C, H, W, mean_u8, rng, NULL);
        if (aug->cutout > 0) {
            int cy = (int)rng_below(rng, (uint64_t)H), cx = (int)rng_below(rng, (uint64_t)W);
            cutout_rect(H, W, aug->cutout, cy, cx, &hy0, &hy1, &hx0, &hx1);
            hole = 1;
        }
    } else {
        memcpy(a, src, (size_t)C * n);
    }

    const int normalize = aug && aug->normalize;
    for (int c = 0; c < C; c++) {
        /* the same arithmetic as dataset_get_u8, so crop/flip alone give identical bits */
        real scale = (real)(1.0 / 255.0), shift = 0;
        if (normalize) {
            double s = std[c] > 0 ? std[c] : 1.0;
            scale = (real)(1.0 / (255.0 * s));
            shift = (real)(-mean[c] / s);
        }
        const uint8_t *p = a + c * n;
        real *o = out + c * n;
        for (size_t k = 0; k < n; k++) o[k] = (real)p[k] * scale + shift;
        if (hole) {
            /* CutoutAfterToTensor: img * mask + (1 - mask) * mean, on [0,1] floats */
            real v = normalize ? 0 : (real)mean[c];
            for (int y = hy0; y < hy1; y++)
                for (int x = hx0; x < hx1; x++) o[(size_t)y * W + x] = v;
        }
    }
    if (big) free(a), free(b);
}
