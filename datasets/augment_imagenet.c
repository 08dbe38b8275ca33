/* ImageNet preprocessing; see augment_imagenet.h for what and why. */
#include "augment_imagenet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const float INET_MEAN[3] = {0.485f, 0.456f, 0.406f};
const float INET_STD[3] = {0.229f, 0.224f, 0.225f};
/* AlexNet's PCA of ImageNet RGB (as in the PyTorch ImageNet examples / ReCU) */
const double INET_PCA_EIGVAL[3] = {0.2175, 0.0188, 0.0045};
const double INET_PCA_EIGVEC[3][3] = {
    {-0.5675, 0.7192, 0.4009},
    {-0.5808, -0.0045, -0.8140},
    {-0.5836, -0.6948, 0.4203},
};

/* Python's round(): half to even (rint in the default rounding mode) */
static int pyround(double x) { return (int)rint(x); }

int inet_rrc_params(int width, int height, double scale_min, double scale_max, double ratio_min, double ratio_max,
                    Rng *rng, int *i, int *j, int *h, int *w) {
    const double area = (double)height * width;
    const double lr0 = log(ratio_min), lr1 = log(ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale_min + (scale_max - scale_min) * rng_uniform(rng));
        double aspect = exp(lr0 + (lr1 - lr0) * rng_uniform(rng));
        int ww = pyround(sqrt(target * aspect));
        int hh = pyround(sqrt(target / aspect));
        if (ww > 0 && ww <= width && hh > 0 && hh <= height) {
            *i = (int)rng_below(rng, (uint64_t)(height - hh + 1));
            *j = (int)rng_below(rng, (uint64_t)(width - ww + 1));
            *h = hh;
            *w = ww;
            return attempt;
        }
    }
    double in_ratio = (double)width / height;
    int ww, hh;
    if (in_ratio < ratio_min) {
        ww = width;
        hh = pyround(ww / ratio_min);
    } else if (in_ratio > ratio_max) {
        hh = height;
        ww = pyround(hh * ratio_max);
    } else {
        ww = width;
        hh = height;
    }
    *i = (height - hh) / 2;
    *j = (width - ww) / 2;
    *h = hh;
    *w = ww;
    return 10;
}

void inet_eval_geometry(int width, int height, int resize, int crop, int *rw, int *rh, int *top, int *left) {
    int ow, oh;
    if (width <= height) {
        ow = resize;
        oh = (int)((long)resize * height / width); /* int(size * long / short) */
    } else {
        oh = resize;
        ow = (int)((long)resize * width / height);
    }
    *rw = ow;
    *rh = oh;
    *top = pyround((oh - crop) / 2.0);
    *left = pyround((ow - crop) / 2.0);
}

/* Pillow's precompute_coeffs for the bilinear (triangle) filter, restricted
 * to the outputs [off, off + n) of a resize of [in0, in1) to out_size, taps
 * clamped to [lo, hi). Fixed-point weights (PRECISION_BITS = 22). */
#define PREC 22
typedef struct {
    int *start, *len, *k;
    int ksize;
} Coeffs;

static double triangle(double x) {
    if (x < 0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int coeffs(double in0, double in1, int out_size, int off, int n, int lo, int hi, Coeffs *c) {
    double scale = (in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->start = malloc(sizeof(int) * (size_t)n);
    c->len = malloc(sizeof(int) * (size_t)n);
    c->k = malloc(sizeof(int) * (size_t)n * ksize);
    double *w = malloc(sizeof(double) * (size_t)ksize);
    if (!c->start || !c->len || !c->k || !w) {
        free(w);
        return -1;
    }
    double ss = 1.0 / filterscale;
    for (int o = 0; o < n; o++) {
        double center = in0 + (o + off + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < lo) xmin = lo;
        int xmax = (int)(center + support + 0.5);
        if (xmax > hi) xmax = hi;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize;
        if (xmax < 1) { /* degenerate region: nearest in-range pixel */
            xmin = (int)center < lo ? lo : (int)center >= hi ? hi - 1 : (int)center;
            xmax = 1;
            w[0] = 1.0;
        } else {
            double ww = 0;
            for (int x = 0; x < xmax; x++) {
                w[x] = triangle((x + xmin - center + 0.5) * ss);
                ww += w[x];
            }
            if (ww > 0)
                for (int x = 0; x < xmax; x++) w[x] /= ww;
        }
        c->start[o] = xmin;
        c->len[o] = xmax;
        int *kk = c->k + (size_t)o * ksize;
        for (int x = 0; x < ksize; x++) kk[x] = 0;
        for (int x = 0; x < xmax; x++)
            kk[x] = (int)(w[x] < 0 ? -0.5 + w[x] * (1 << PREC) : 0.5 + w[x] * (1 << PREC));
    }
    free(w);
    return 0;
}

static void coeffs_free(Coeffs *c) {
    free(c->start);
    free(c->len);
    free(c->k);
}

static inline uint8_t clip8(int v) {
    v >>= PREC;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int inet_resample(const uint8_t *src, int src_w, int src_h, double x0, double y0, double x1, double y1, int vw,
                  int vh, int ox, int oy, uint8_t *dst, int dw, int dh) {
    if (!src || !dst || src_w <= 0 || src_h <= 0 || vw <= 0 || vh <= 0 || dw <= 0 || dh <= 0 || !(x1 > x0) ||
        !(y1 > y0) || ox < 0 || oy < 0 || ox + dw > vw || oy + dh > vh)
        return -1;
    int xlo = (int)floor(x0), xhi = (int)ceil(x1), ylo = (int)floor(y0), yhi = (int)ceil(y1);
    if (xlo < 0) xlo = 0;
    if (ylo < 0) ylo = 0;
    if (xhi > src_w) xhi = src_w;
    if (yhi > src_h) yhi = src_h;
    if (xhi <= xlo || yhi <= ylo) return -1;
    Coeffs cx = {0}, cy = {0};
    uint8_t *tmp = NULL;
    int rc = -1;
    if (coeffs(x0, x1, vw, ox, dw, xlo, xhi, &cx) != 0 || coeffs(y0, y1, vh, oy, dh, ylo, yhi, &cy) != 0) goto out;
    /* the source rows the vertical pass reads */
    int rfirst = cy.start[0], rlast = cy.start[dh - 1] + cy.len[dh - 1];
    for (int o = 0; o < dh; o++) {
        if (cy.start[o] < rfirst) rfirst = cy.start[o];
        if (cy.start[o] + cy.len[o] > rlast) rlast = cy.start[o] + cy.len[o];
    }
    int nrows = rlast - rfirst;
    tmp = malloc((size_t)nrows * dw * 3);
    if (!tmp) goto out;
    /* horizontal pass into uint8 (as Pillow), then vertical */
    for (int r = 0; r < nrows; r++) {
        const uint8_t *srow = src + (size_t)(r + rfirst) * src_w * 3;
        uint8_t *trow = tmp + (size_t)r * dw * 3;
        for (int o = 0; o < dw; o++) {
            const int *kk = cx.k + (size_t)o * cx.ksize;
            const uint8_t *s = srow + (size_t)cx.start[o] * 3;
            int s0 = 1 << (PREC - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < cx.len[o]; x++) {
                s0 += s[3 * x] * kk[x];
                s1 += s[3 * x + 1] * kk[x];
                s2 += s[3 * x + 2] * kk[x];
            }
            trow[3 * o] = clip8(s0);
            trow[3 * o + 1] = clip8(s1);
            trow[3 * o + 2] = clip8(s2);
        }
    }
    for (int o = 0; o < dh; o++) {
        const int *kk = cy.k + (size_t)o * cy.ksize;
        const uint8_t *t = tmp + (size_t)(cy.start[o] - rfirst) * dw * 3;
        uint8_t *drow = dst + (size_t)o * dw * 3;
        for (int x = 0; x < dw * 3; x++) {
            int s = 1 << (PREC - 1);
            for (int y = 0; y < cy.len[o]; y++) s += t[(size_t)y * dw * 3 + x] * kk[y];
            drow[x] = clip8(s);
        }
    }
    rc = 0;
out:
    free(tmp);
    coeffs_free(&cx);
    coeffs_free(&cy);
    return rc;
}

void inet_lighting_offsets(Rng *rng, double alphastd, double inc[3]) {
    double v[3];
    for (int k = 0; k < 3; k++) {
        /* np.random.randn(3) * alphastd, cast to float32 */
        float a = (float)(rng_normal(rng) * alphastd);
        v[k] = (double)a * INET_PCA_EIGVAL[k];
    }
    for (int c = 0; c < 3; c++)
        inc[c] = INET_PCA_EIGVEC[c][0] * v[0] + INET_PCA_EIGVEC[c][1] * v[1] + INET_PCA_EIGVEC[c][2] * v[2];
}

void inet_lighting_apply(uint8_t *rgb, size_t npix, const double inc[3]) {
    /* a lookup per channel: v -> (uint8) clip(v + inc, 0, 255), truncation */
    uint8_t lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            double x = v + inc[c];
            x = x < 0 ? 0 : x > 255 ? 255 : x;
            lut[c][v] = (uint8_t)x;
        }
    for (size_t p = 0; p < npix; p++)
        for (int c = 0; c < 3; c++) rgb[3 * p + c] = lut[c][rgb[3 * p + c]];
}

void inet_to_chw(const uint8_t *rgb, int w, int h, int flip, int normalize, const float mean[3], const float std[3],
                 real *out) {
    const size_t plane = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        /* per-value table: ToTensor then Normalize, in float as torchvision */
        real lut[256];
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f;
            if (normalize) x = (x - mean[c]) / std[c];
            lut[v] = (real)x;
        }
        real *dst = out + c * plane;
        for (int y = 0; y < h; y++) {
            const uint8_t *srow = rgb + (size_t)y * w * 3 + c;
            real *drow = dst + (size_t)y * w;
            if (flip)
                for (int x = 0; x < w; x++) drow[x] = lut[srow[3 * (w - 1 - x)]];
            else
                for (int x = 0; x < w; x++) drow[x] = lut[srow[3 * x]];
        }
    }
}
