/* RoIAlign (core/detect/roi_align.h): torchvision's roi_align semantics.
 *
 * Every sample's bilinear weights are separable: the y part (row pair and
 * fractions) depends only on (ph, iy) and the x part only on (pw, ix), and a
 * sample is dropped when either coordinate is outside [-1, size]. The fast
 * path therefore builds, once per RoI, one table of PH*gh row taps and one of
 * PW*gw column taps, shared by all channels; the reference recomputes both for
 * every sample. Both then evaluate the same expressions in the same order
 * (the weights as products hy*hx, hy*lx, ly*hx, ly*lx, the four terms summed
 * left to right, samples iy-major, the sum divided by the count at the end;
 * in the backward g*w/count added to the four corners in that order), so the
 * two are bitwise equal, and equal to torchvision's CPU kernel up to the
 * order of its additions, which is the same. */
#include "roi_align.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A RoI with more samples per bin axis than this is refused (zeros, no
 * gradient): only absurd coordinates get there, and the int arithmetic of
 * the sample counts must not overflow. */
#define ROI_MAX_GRID (1 << 20)

/* one RoI mapped onto the feature map */
typedef struct {
    int b;                  /* batch index; -1: the RoI contributes nothing */
    real start_h, start_w;  /* top-left corner in feature cells */
    real bin_h, bin_w;      /* bin size in feature cells */
    int gh, gw;             /* samples per bin along y and x (may be 0) */
    real count;             /* divisor of a bin's sum: max(gh * gw, 1) */
} RoiGeom;

/* one coordinate of one sample: the two neighbouring rows (or columns) and
 * the fractions towards them; lo = -1 marks a sample outside the map */
typedef struct {
    int lo, hi;
    real l, h; /* weight of hi is l, of lo is h = 1 - l */
} Tap;

static RoiGeom roi_geometry(const float *roi /* [5] */, int N, int PH, int PW, const RoIAlignOptions *o) {
    RoiGeom g = {.b = -1};
    for (int k = 0; k < 5; k++)
        if (!isfinite(roi[k])) return g;
    /* torchvision reads the batch index as an integer-valued float and does
     * not check it; an index outside the batch is refused here instead */
    if (!(roi[0] >= 0.0f && roi[0] < (float)N)) return g;
    /* all arithmetic in `real`, as torchvision's kernel does in the input's
     * dtype (its spatial_scale is cast to that dtype too) */
    const real scale = (real)o->spatial_scale;
    const real offset = o->aligned ? (real)0.5 : (real)0.0;
    g.start_w = (real)roi[1] * scale - offset;
    g.start_h = (real)roi[2] * scale - offset;
    const real end_w = (real)roi[3] * scale - offset;
    const real end_h = (real)roi[4] * scale - offset;
    real roi_w = end_w - g.start_w, roi_h = end_h - g.start_h;
    if (!o->aligned) { /* the legacy behaviour: malformed RoIs become at least 1 x 1 */
        if (!(roi_w >= (real)1)) roi_w = (real)1;
        if (!(roi_h >= (real)1)) roi_h = (real)1;
    }
    g.bin_h = roi_h / (real)PH;
    g.bin_w = roi_w / (real)PW;
    double gh = o->sampling_ratio > 0 ? (double)o->sampling_ratio : ceil((double)(roi_h / (real)PH));
    double gw = o->sampling_ratio > 0 ? (double)o->sampling_ratio : ceil((double)(roi_w / (real)PW));
    if (!(gh <= ROI_MAX_GRID && gw <= ROI_MAX_GRID)) return g;
    /* an aligned RoI of negative size gives a grid <= 0: no samples, zeros */
    g.gh = gh > 0 ? (int)gh : 0;
    g.gw = gw > 0 ? (int)gw : 0;
    const long cnt = (long)g.gh * g.gw;
    g.count = (real)(cnt > 1 ? cnt : 1);
    g.b = (int)roi[0];
    return g;
}

/* the coordinate of sample i of bin p along one axis */
static real sample_coord(real start, real bin, int p, int i, int grid) {
    return start + (real)p * bin + ((real)i + (real)0.5) * bin / (real)grid;
}

/* bilinear taps of coordinate v on an axis of `size` cells: outside
 * [-1, size] nothing; inside, v <= 0 clamps to 0 and a v at or past the last
 * cell clamps onto it (both neighbours the last cell) */
static Tap axis_tap(real v, int size) {
    Tap t = {.lo = -1, .hi = -1, .l = 0, .h = 0};
    if (v < (real)-1 || v > (real)size) return t;
    if (v <= (real)0) v = (real)0;
    t.lo = (int)v;
    if (t.lo >= size - 1) {
        t.lo = t.hi = size - 1;
        v = (real)t.lo;
    } else {
        t.hi = t.lo + 1;
    }
    t.l = v - (real)t.lo;
    t.h = (real)1 - t.l;
    return t;
}

/* the bilinear sum of one bin over its samples, from its row and column taps */
static real bin_sum(const real *plane /* [H,W] */, int W, const Tap *ty /* [gh] */, int gh, const Tap *tx /* [gw] */,
                    int gw) {
    real acc = 0;
    for (int iy = 0; iy < gh; iy++) {
        if (ty[iy].lo < 0) continue;
        const real hy = ty[iy].h, ly = ty[iy].l;
        const real *rlo = plane + (long)ty[iy].lo * W, *rhi = plane + (long)ty[iy].hi * W;
        for (int ix = 0; ix < gw; ix++) {
            if (tx[ix].lo < 0) continue;
            const real hx = tx[ix].h, lx = tx[ix].l;
            const real w1 = hy * hx, w2 = hy * lx, w3 = ly * hx, w4 = ly * lx;
            acc += w1 * rlo[tx[ix].lo] + w2 * rlo[tx[ix].hi] + w3 * rhi[tx[ix].lo] + w4 * rhi[tx[ix].hi];
        }
    }
    return acc;
}

/* the adjoint of bin_sum / count: g * w / count onto the four corners.
 * Those four divisions per sample dominate the backward; when count is a
 * power of two, (g * w) * (1 / count) is the same correctly rounded number
 * as (g * w) / count (scaling by 2^-k rounds the same exact value), so that
 * case multiplies instead and stays bitwise equal to the reference. */
static void bin_scatter(real *plane /* [H,W] */, int W, real g, real count, const Tap *ty, int gh, const Tap *tx,
                        int gw) {
    const long n = (long)count;
    const int pow2 = (n & (n - 1)) == 0;
    const real inv = (real)1 / count;
    for (int iy = 0; iy < gh; iy++) {
        if (ty[iy].lo < 0) continue;
        const real hy = ty[iy].h, ly = ty[iy].l;
        real *rlo = plane + (long)ty[iy].lo * W, *rhi = plane + (long)ty[iy].hi * W;
        for (int ix = 0; ix < gw; ix++) {
            if (tx[ix].lo < 0) continue;
            const real hx = tx[ix].h, lx = tx[ix].l;
            const real w1 = hy * hx, w2 = hy * lx, w3 = ly * hx, w4 = ly * lx;
            if (pow2) {
                rlo[tx[ix].lo] += g * w1 * inv;
                rlo[tx[ix].hi] += g * w2 * inv;
                rhi[tx[ix].lo] += g * w3 * inv;
                rhi[tx[ix].hi] += g * w4 * inv;
            } else {
                rlo[tx[ix].lo] += g * w1 / count;
                rlo[tx[ix].hi] += g * w2 / count;
                rhi[tx[ix].lo] += g * w3 / count;
                rhi[tx[ix].hi] += g * w4 / count;
            }
        }
    }
}

/* ------------------------------------------------------------ fast path */

/* the geometry of every RoI and its tap tables: RoI r's row taps start at
 * taps + off[r] (PH*gh of them, bin-major), its column taps follow (PW*gw) */
typedef struct {
    RoiGeom *geom; /* [R] */
    long *off;     /* [R] */
    Tap *taps;
} RoiPlan;

static void plan_free(RoiPlan *p) {
    free(p->geom);
    free(p->off);
    free(p->taps);
}

/* 0 on success; -1 when out of memory (the caller then runs the reference) */
static int plan_build(RoiPlan *p, int N, int H, int W, const float *rois, int R, const RoIAlignOptions *o) {
    const int PH = o->PH, PW = o->PW;
    p->geom = malloc((size_t)R * sizeof *p->geom);
    p->off = malloc((size_t)R * sizeof *p->off);
    p->taps = NULL;
    if (!p->geom || !p->off) return -1;
    long total = 0;
    for (int r = 0; r < R; r++) {
        p->geom[r] = roi_geometry(rois + 5L * r, N, PH, PW, o);
        p->off[r] = total;
        if (p->geom[r].b >= 0) total += (long)PH * p->geom[r].gh + (long)PW * p->geom[r].gw;
    }
    p->taps = malloc((size_t)(total > 0 ? total : 1) * sizeof *p->taps);
    if (!p->taps) return -1;
    for (int r = 0; r < R; r++) {
        const RoiGeom *g = &p->geom[r];
        if (g->b < 0) continue;
        Tap *t = p->taps + p->off[r];
        for (int ph = 0; ph < PH; ph++)
            for (int iy = 0; iy < g->gh; iy++) *t++ = axis_tap(sample_coord(g->start_h, g->bin_h, ph, iy, g->gh), H);
        for (int pw = 0; pw < PW; pw++)
            for (int ix = 0; ix < g->gw; ix++) *t++ = axis_tap(sample_coord(g->start_w, g->bin_w, pw, ix, g->gw), W);
    }
    return 0;
}

static int bad_dims(int N, int C, int H, int W, int R, const RoIAlignOptions *o) {
    return R <= 0 || N <= 0 || C <= 0 || H <= 0 || W <= 0 || o->PH <= 0 || o->PW <= 0;
}

void roi_align_forward(real *out, const real *feat, int N, int C, int H, int W, const float *rois, int R,
                       const RoIAlignOptions *o) {
    if (bad_dims(N, C, H, W, R, o)) return;
    RoiPlan p;
    if (plan_build(&p, N, H, W, rois, R, o)) {
        plan_free(&p);
        roi_align_forward_ref(out, feat, N, C, H, W, rois, R, o); /* same values, no tables */
        return;
    }
    const int PH = o->PH, PW = o->PW;
    const long units = (long)R * C, HW = (long)H * W;
    /* one (RoI, channel) per unit: each writes its own PH x PW outputs */
#pragma omp parallel for schedule(static)
    for (long u = 0; u < units; u++) {
        const int r = (int)(u / C), c = (int)(u % C);
        real *o_rc = out + u * PH * PW;
        const RoiGeom *g = &p.geom[r];
        if (g->b < 0) {
            memset(o_rc, 0, (size_t)PH * PW * sizeof *o_rc);
            continue;
        }
        const real *plane = feat + ((long)g->b * C + c) * HW;
        const Tap *ty = p.taps + p.off[r], *tx = ty + (long)PH * g->gh;
        for (int ph = 0; ph < PH; ph++)
            for (int pw = 0; pw < PW; pw++)
                o_rc[ph * PW + pw] = bin_sum(plane, W, ty + (long)ph * g->gh, g->gh, tx + (long)pw * g->gw, g->gw) /
                                     g->count;
    }
    plan_free(&p);
}

void roi_align_backward(real *dfeat, const real *dout, int N, int C, int H, int W, const float *rois, int R,
                        const RoIAlignOptions *o) {
    if (bad_dims(N, C, H, W, R, o)) return;
    RoiPlan p;
    if (plan_build(&p, N, H, W, rois, R, o)) {
        plan_free(&p);
        roi_align_backward_ref(dfeat, dout, N, C, H, W, rois, R, o);
        return;
    }
    const int PH = o->PH, PW = o->PW;
    const long HW = (long)H * W;
    /* one feature plane (b, c) per unit, owned by one thread; the RoIs of
     * that image are added in ascending order, as the reference does */
#pragma omp parallel for schedule(static)
    for (long u = 0; u < (long)N * C; u++) {
        const int b = (int)(u / C), c = (int)(u % C);
        real *plane = dfeat + u * HW;
        for (int r = 0; r < R; r++) {
            const RoiGeom *g = &p.geom[r];
            if (g->b != b) continue;
            const real *d_rc = dout + ((long)r * C + c) * PH * PW;
            const Tap *ty = p.taps + p.off[r], *tx = ty + (long)PH * g->gh;
            for (int ph = 0; ph < PH; ph++)
                for (int pw = 0; pw < PW; pw++)
                    bin_scatter(plane, W, d_rc[ph * PW + pw], g->count, ty + (long)ph * g->gh, g->gh,
                                tx + (long)pw * g->gw, g->gw);
        }
    }
    plan_free(&p);
}

/* ------------------------------------------------------------ reference */

/* the weights of one sample, recomputed from scratch; 0 when it is outside */
static int sample_taps(const RoiGeom *g, int ph, int pw, int iy, int ix, int H, int W, Tap *ty, Tap *tx) {
    *ty = axis_tap(sample_coord(g->start_h, g->bin_h, ph, iy, g->gh), H);
    *tx = axis_tap(sample_coord(g->start_w, g->bin_w, pw, ix, g->gw), W);
    return ty->lo >= 0 && tx->lo >= 0;
}

void roi_align_forward_ref(real *out, const real *feat, int N, int C, int H, int W, const float *rois, int R,
                           const RoIAlignOptions *o) {
    if (bad_dims(N, C, H, W, R, o)) return;
    const int PH = o->PH, PW = o->PW;
    for (int r = 0; r < R; r++) {
        const RoiGeom g = roi_geometry(rois + 5L * r, N, PH, PW, o);
        for (int c = 0; c < C; c++) {
            for (int ph = 0; ph < PH; ph++) {
                for (int pw = 0; pw < PW; pw++) {
                    real acc = 0;
                    if (g.b >= 0) {
                        const real *plane = feat + ((long)g.b * C + c) * H * W;
                        for (int iy = 0; iy < g.gh; iy++) {
                            for (int ix = 0; ix < g.gw; ix++) {
                                Tap ty, tx;
                                if (!sample_taps(&g, ph, pw, iy, ix, H, W, &ty, &tx)) continue;
                                const real w1 = ty.h * tx.h, w2 = ty.h * tx.l, w3 = ty.l * tx.h, w4 = ty.l * tx.l;
                                acc += w1 * plane[ty.lo * W + tx.lo] + w2 * plane[ty.lo * W + tx.hi] +
                                       w3 * plane[ty.hi * W + tx.lo] + w4 * plane[ty.hi * W + tx.hi];
                            }
                        }
                        acc /= g.count;
                    }
                    out[(((long)r * C + c) * PH + ph) * PW + pw] = acc;
                }
            }
        }
    }
}

void roi_align_backward_ref(real *dfeat, const real *dout, int N, int C, int H, int W, const float *rois, int R,
                            const RoIAlignOptions *o) {
    if (bad_dims(N, C, H, W, R, o)) return;
    const int PH = o->PH, PW = o->PW;
    for (int r = 0; r < R; r++) {
        const RoiGeom g = roi_geometry(rois + 5L * r, N, PH, PW, o);
        if (g.b < 0) continue;
        for (int c = 0; c < C; c++) {
            real *plane = dfeat + ((long)g.b * C + c) * H * W;
            for (int ph = 0; ph < PH; ph++) {
                for (int pw = 0; pw < PW; pw++) {
                    const real gr = dout[(((long)r * C + c) * PH + ph) * PW + pw];
                    for (int iy = 0; iy < g.gh; iy++) {
                        for (int ix = 0; ix < g.gw; ix++) {
                            Tap ty, tx;
                            if (!sample_taps(&g, ph, pw, iy, ix, H, W, &ty, &tx)) continue;
                            const real w1 = ty.h * tx.h, w2 = ty.h * tx.l, w3 = ty.l * tx.h, w4 = ty.l * tx.l;
                            plane[ty.lo * W + tx.lo] += gr * w1 / g.count;
                            plane[ty.lo * W + tx.hi] += gr * w2 / g.count;
                            plane[ty.hi * W + tx.lo] += gr * w3 / g.count;
                            plane[ty.hi * W + tx.hi] += gr * w4 / g.count;
                        }
                    }
                }
            }
        }
    }
}
