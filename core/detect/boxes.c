/* Box arithmetic of the detector: IoU, anchors, the box transform, NMS
 * (boxes.h has the conventions: 0-based inclusive pixels, float arithmetic). */
#include "boxes.h"

#include <math.h>
#include <stdlib.h>

static inline float box_w(const float *b) { return b[2] - b[0] + 1.0f; }
/* plain comparisons: gcc calls libm for fminf/fmaxf unless NaN rules are
 * relaxed, and NMS spends its time here (non-finite boxes never get here) */
static inline float min_f(float a, float b) { return a < b ? a : b; }
static inline float max_f(float a, float b) { return a > b ? a : b; }
static inline float box_h(const float *b) { return b[3] - b[1] + 1.0f; }

float box_iou(const float *a, const float *b) {
    float iw = min_f(a[2], b[2]) - max_f(a[0], b[0]) + 1.0f;
    float ih = min_f(a[3], b[3]) - max_f(a[1], b[1]) + 1.0f;
    if (iw < 0.0f) iw = 0.0f;
    if (ih < 0.0f) ih = 0.0f;
    const float inter = iw * ih;
    /* same order of operations as the reference: (Sa + Sb) - inter */
    return inter / (box_w(a) * box_h(a) + box_w(b) * box_h(b) - inter);
}

/* the reference's test for its padding rows: both sides exactly one pixel */
static int single_pixel(const float *b) { return box_w(b) == 1.0f && box_h(b) == 1.0f; }

void box_iou_matrix(const float *a, int na, const float *b, int nb, float *overlaps) {
    for (int i = 0; i < na; i++) {
        float *row = overlaps + (size_t)i * nb;
        const int a_pad = single_pixel(a + 4 * i);
        for (int j = 0; j < nb; j++) {
            /* masked in the reference's order: gt columns to 0, then rows to -1 */
            if (a_pad) row[j] = -1.0f;
            else if (single_pixel(b + 4 * j)) row[j] = 0.0f;
            else row[j] = box_iou(a + 4 * i, b + 4 * j);
        }
    }
}

/* _mkanchors: a w x h box (the +1 widths) around (cx, cy) */
static void make_anchor(double w, double h, double cx, double cy, float *out) {
    out[0] = (float)(cx - 0.5 * (w - 1.0));
    out[1] = (float)(cy - 0.5 * (h - 1.0));
    out[2] = (float)(cx + 0.5 * (w - 1.0));
    out[3] = (float)(cy + 0.5 * (h - 1.0));
}

void anchors_base(int base_size, const double *ratios, int n_ratios, const double *scales, int n_scales,
                  float *out) {
    /* the base box [0, 0, base-1, base-1]: every anchor shares its centre */
    const double w0 = base_size, h0 = base_size;
    const double cx = 0.5 * (w0 - 1.0), cy = 0.5 * (h0 - 1.0);
    const double area = w0 * h0;
    for (int r = 0; r < n_ratios; r++) {
        /* rint in the default rounding mode is numpy's round half to even */
        const double ws = rint(sqrt(area / ratios[r]));
        const double hs = rint(ws * ratios[r]);
        /* _scale_enum works on the ratio anchor's own w, h, centre: the ratio
         * anchor was built around (cx, cy) with widths ws, hs, so they are
         * the same numbers */
        for (int s = 0; s < n_scales; s++)
            make_anchor(ws * scales[s], hs * scales[s], cx, cy, out + 4 * (r * n_scales + s));
    }
}

void anchors_shift(const float *base, int A, int Hf, int Wf, int stride, float *out) {
    for (int y = 0; y < Hf; y++)
        for (int x = 0; x < Wf; x++) {
            const float sx = (float)(x * stride), sy = (float)(y * stride);
            float *o = out + 4 * ((size_t)(y * Wf + x) * A);
            for (int a = 0; a < A; a++) {
                o[4 * a + 0] = base[4 * a + 0] + sx;
                o[4 * a + 1] = base[4 * a + 1] + sy;
                o[4 * a + 2] = base[4 * a + 2] + sx;
                o[4 * a + 3] = base[4 * a + 3] + sy;
            }
        }
}

void box_encode(const float *ex, const float *gt, float *t) {
    const float ew = box_w(ex), eh = box_h(ex);
    const float ecx = ex[0] + 0.5f * ew, ecy = ex[1] + 0.5f * eh;
    const float gw = box_w(gt), gh = box_h(gt);
    const float gcx = gt[0] + 0.5f * gw, gcy = gt[1] + 0.5f * gh;
    t[0] = (gcx - ecx) / ew;
    t[1] = (gcy - ecy) / eh;
    t[2] = logf(gw / ew);
    t[3] = logf(gh / eh);
}

void box_decode(const float *box, const float *d, double clamp, float *out) {
    const float w = box_w(box), h = box_h(box);
    const float cx = box[0] + 0.5f * w, cy = box[1] + 0.5f * h;
    float dw = d[2], dh = d[3];
    if (clamp > 0.0) {
        const float c = (float)clamp;
        if (dw > c) dw = c;
        if (dh > c) dh = c;
    }
    const float pcx = d[0] * w + cx, pcy = d[1] * h + cy;
    const float pw = expf(dw) * w, ph = expf(dh) * h;
    out[0] = pcx - 0.5f * pw;
    out[1] = pcy - 0.5f * ph;
    out[2] = pcx + 0.5f * pw;
    out[3] = pcy + 0.5f * ph;
}

/* comparisons rather than fminf/fmaxf: those would turn NaN into a bound */
static float clampf_keep_nan(float v, float hi) {
    if (v < 0.0f) return 0.0f;
    if (v > hi) return hi;
    return v;
}

void box_clip(float *box, int W, int H) {
    const float xm = (float)(W - 1), ym = (float)(H - 1);
    box[0] = clampf_keep_nan(box[0], xm);
    box[1] = clampf_keep_nan(box[1], ym);
    box[2] = clampf_keep_nan(box[2], xm);
    box[3] = clampf_keep_nan(box[3], ym);
}

/* ------------------------------------------------------------------ sort */

typedef struct { float s; int i; } ScoreIdx;

/* descending score, NaN last, then ascending index: a total order, so
 * qsort's result is unique and equal to a stable sort's */
static int cmp_desc(const void *pa, const void *pb) {
    const ScoreIdx *a = pa, *b = pb;
    const int na = isnan(a->s), nb = isnan(b->s);
    if (na != nb) return na - nb;
    if (!na) {
        if (a->s > b->s) return -1;
        if (a->s < b->s) return 1;
    }
    return (a->i > b->i) - (a->i < b->i);
}

void argsort_desc(const float *scores, int n, int *order) {
    if (n <= 0) return;
    ScoreIdx *tmp = malloc((size_t)n * sizeof *tmp);
    if (tmp) {
        for (int i = 0; i < n; i++) tmp[i] = (ScoreIdx){scores[i], i};
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_desc);
        for (int i = 0; i < n; i++) order[i] = tmp[i].i;
        free(tmp);
        return;
    }
    /* no memory for the pairs: a stable insertion sort in place, slow but
     * the same result (the function has no error channel) */
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) {
        const int v = order[i];
        const ScoreIdx key = {scores[v], v};
        int j = i - 1;
        while (j >= 0 && cmp_desc(&(ScoreIdx){scores[order[j]], order[j]}, &key) > 0) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
}

/* ------------------------------------------------------------------- NMS */

static int box_finite(const float *b, float s) {
    return isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]) && isfinite(s);
}

int nms(const float *boxes, const float *scores, int n, float thresh, int gt_or_equal, int *keep, int max_keep,
        int *n_bad) {
    int bad = 0;
    for (int i = 0; i < n; i++) bad += !box_finite(boxes + 4 * i, scores[i]);
    if (n_bad) *n_bad = bad;
    if (n <= 0 || max_keep <= 0) return 0;
    int *order = malloc((size_t)n * sizeof *order);
    if (!order) return -1;
    argsort_desc(scores, n, order);
    /* Greedy in score order. A box is suppressed iff a higher-ranked KEPT box
     * overlaps it above the threshold, so comparing each candidate with the
     * kept list gives the same set as the reference's suppress-forward loop
     * and lets us stop at max_keep. */
    /* whether an IoU of 0 can never suppress (every threshold in use) */
    const int zero_never = gt_or_equal ? thresh > 0.0f : thresh >= 0.0f;
    int n_keep = 0;
    for (int r = 0; r < n && n_keep < max_keep; r++) {
        const int i = order[r];
        const float *bi = boxes + 4 * i;
        if (!box_finite(bi, scores[i])) continue;
        int suppressed = 0;
        for (int k = 0; k < n_keep && !suppressed; k++) {
            const float *bk = boxes + 4 * keep[k];
            /* most pairs do not intersect: IoU 0, decided without the
             * division (exactly box_iou's 0, so the same outcome) */
            if (zero_never && (min_f(bk[2], bi[2]) - max_f(bk[0], bi[0]) + 1.0f <= 0.0f ||
                               min_f(bk[3], bi[3]) - max_f(bk[1], bi[1]) + 1.0f <= 0.0f))
                continue;
            const float iou = box_iou(bk, bi);
            suppressed = gt_or_equal ? iou >= thresh : iou > thresh;
        }
        if (!suppressed) keep[n_keep++] = i;
    }
    free(order);
    return n_keep;
}
