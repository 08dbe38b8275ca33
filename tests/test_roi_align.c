/* RoIAlign (core/detect/roi_align.h), f64 engine:
 *
 * 1. A linear ramp f(y, x) = a x + b y + c: bilinear interpolation is exact
 *    on it, so a bin's mean over its samples is the ramp at the mean sample
 *    position, the bin centre, where no sample is clamped; hand-computed
 *    numbers at the map's edges (a sample in [-1, 0] clamps to 0, one below
 *    -1 is dropped, one past W - 1 clamps to W - 1).
 * 2. The fast forward and backward against the plain *_ref loops on random
 *    data with many RoIs (every option), bitwise, with 1 and 2 threads.
 * 3. Against torchvision 0.14's roi_align (tests/golden/roi_align_golden.py):
 *    outputs and the feature gradient of five cases, float64.
 * 4. The backward by the adjoint identity <F f, g> = <f, F^T g> and by
 *    central finite differences on a few feature entries; it accumulates.
 * 5. Edges: a RoI fully outside, an aligned inverted RoI and a bad batch
 *    index give zeros; R = 0 writes nothing.
 * Then (release builds only) the time at the paper's shape, printed. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "roi_align.h"
#include "testutil.h"

#if !REAL_IS_DOUBLE
#error "test_roi_align must link the f64 engine"
#endif

static uint64_t stream_key = 0;
static Rng next_rng(void) { return rng_stream(1414, RNG_TEST, stream_key++, 0); }

static RoIAlignOptions opts(int PH, int PW, double scale, int sampling, int aligned) {
    RoIAlignOptions o = {.PH = PH, .PW = PW, .spatial_scale = scale, .sampling_ratio = sampling, .aligned = aligned};
    return o;
}

static double dot(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

static size_t count_diff(const real *a, const real *b, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += !(a[i] == b[i]);
    return k;
}

/* -------------------------------------------------------------- 1. ramp */

#define RA 0.5
#define RB (-2.0)
#define RC 3.0

static real *ramp_map(int N, int C, int H, int W) {
    real *f = tu_alloc((size_t)N * C * H * W);
    for (int p = 0; p < N * C; p++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) f[((long)p * H + y) * W + x] = RA * x + RB * y + RC;
    return f;
}

/* RoIs (in cells) whose samples all lie inside [0, H-1] x [0, W-1] give the
 * ramp at each bin centre start + (p + 1/2) * bin */
static void test_ramp_centres(void) {
    const int N = 2, C = 2, H = 20, W = 24;
    real *f = ramp_map(N, C, H, W);
    /* cells: (x1, y1, x2, y2); grids 1x1, 2x2, 3x2, 1x1 (min size), 2x3 (sampling 2x... fixed) */
    const float cells[][4] = {{1.0f, 2.0f, 8.0f, 9.0f},    {2.0f, 3.0f, 16.0f, 17.0f}, {0.25f, 0.5f, 20.5f, 13.75f},
                              {5.2f, 6.1f, 5.5f, 6.3f},     {3.3f, 1.7f, 11.9f, 18.2f}};
    const int nroi = 5;
    for (int aligned = 0; aligned <= 1; aligned++) {
        for (int sr = 0; sr <= 3; sr += 3) {
            for (int ri = 0; ri < nroi; ri++) {
                /* image pixels at scale 1/16: exact (powers of two) */
                float roi[5] = {(float)(ri % 2), cells[ri][0] * 16, cells[ri][1] * 16, cells[ri][2] * 16,
                                cells[ri][3] * 16};
                if (aligned) /* shift by half a cell so the samples stay inside */
                    for (int k = 1; k < 5; k++) roi[k] += 8.0f;
                const int PH = 7, PW = 5;
                RoIAlignOptions o = opts(PH, PW, 1.0 / 16, sr, aligned);
                real out[2 * 7 * 5];
                roi_align_forward(out, f, N, C, H, W, roi, 1, &o);
                double x1 = cells[ri][0], y1 = cells[ri][1], w = cells[ri][2] - x1, h = cells[ri][3] - y1;
                if (!aligned) { /* the minimum size 1 */
                    w = w < 1 ? 1 : w;
                    h = h < 1 ? 1 : h;
                }
                double worst = 0;
                for (int c = 0; c < C; c++)
                    for (int ph = 0; ph < PH; ph++)
                        for (int pw = 0; pw < PW; pw++) {
                            double xc = x1 + (pw + 0.5) * w / PW, yc = y1 + (ph + 0.5) * h / PH;
                            double e = fabs((double)out[(c * PH + ph) * PW + pw] - (RA * xc + RB * yc + RC));
                            if (e > worst) worst = e;
                        }
                CHECK(worst <= 1e-12, "ramp roi %d aligned %d sampling %d: max error %.3e at bin centres", ri,
                      aligned, sr, worst);
            }
        }
    }
    /* one number by hand: cells (1, 2)-(8, 9), 7x7 bins of 1 cell, 1 sample
     * at the bin centre: bin (0, 0) at (x, y) = (1.5, 2.5): 0.75 - 5 + 3 */
    float roi[5] = {1, 16, 32, 128, 144};
    RoIAlignOptions o = opts(7, 7, 1.0 / 16, 0, 0);
    real out[2 * 49];
    roi_align_forward(out, f, N, C, H, W, roi, 1, &o);
    CHECK(out[0] == -1.25 && out[49] == -1.25, "ramp bin (0,0) = %.17g, expected -1.25", (double)out[0]);
    /* bin (6, 6): (7.5, 8.5): 3.75 - 17 + 3 = -10.25 */
    CHECK(out[48] == -10.25, "ramp bin (6,6) = %.17g, expected -10.25", (double)out[48]);
    free(f);
}

/* at the edges, by hand: cells, 7 bins of one cell, one sample each */
static void test_ramp_edges(void) {
    const int H = 9, W = 11;
    real *f = ramp_map(1, 1, H, W);
    RoIAlignOptions o = opts(1, 7, 1.0, 0, 0);
    real out[7];
    /* x from -1.5: samples at -1 (kept, clamped to 0), 0, 1, ..., 5; y: one
     * sample at 4 (h = 1 cell from 3.5) */
    float r1[5] = {0, -1.5f, 3.5f, 5.5f, 4.5f};
    roi_align_forward(out, f, 1, 1, H, W, r1, 1, &o);
    const double base = RB * 4 + RC; /* -5 */
    const double want1[7] = {base, base, base + 0.5, base + 1, base + 1.5, base + 2, base + 2.5};
    for (int i = 0; i < 7; i++)
        CHECK(out[i] == want1[i], "edge left: bin %d = %.17g, expected %.17g", i, (double)out[i], want1[i]);
    /* x from -2.5: the first sample at -2 is dropped (bin 0 is 0), the next at -1 clamps */
    float r2[5] = {0, -2.5f, 3.5f, 4.5f, 4.5f};
    roi_align_forward(out, f, 1, 1, H, W, r2, 1, &o);
    const double want2[7] = {0, base, base, base + 0.5, base + 1, base + 1.5, base + 2};
    for (int i = 0; i < 7; i++)
        CHECK(out[i] == want2[i], "edge dropped: bin %d = %.17g, expected %.17g", i, (double)out[i], want2[i]);
    /* x from 5.5: samples 6 ... 12; 10.x clamps to 10 = W - 1 for x >= 10,
     * 11 = W is kept (clamped), 12 > W dropped */
    float r3[5] = {0, 5.5f, 3.5f, 12.5f, 4.5f};
    roi_align_forward(out, f, 1, 1, H, W, r3, 1, &o);
    const double want3[7] = {base + 3, base + 3.5, base + 4, base + 4.5, base + 5, base + 5, 0};
    for (int i = 0; i < 7; i++)
        CHECK(out[i] == want3[i], "edge right: bin %d = %.17g, expected %.17g", i, (double)out[i], want3[i]);
    free(f);
}

/* ------------------------------------------------------- random RoI sets */

/* R RoIs in image pixels for a map of H x W cells at scale s: inside, partly
 * and fully outside, sub-pixel, larger than the map, inverted */
static void random_rois(float *rois, int R, int N, int H, int W, double s, Rng *rng) {
    for (int r = 0; r < R; r++) {
        float *q = rois + 5L * r;
        double x1 = -4 + (W + 8) * rng_uniform(rng), y1 = -4 + (H + 8) * rng_uniform(rng);
        double kind = rng_uniform(rng), w, h;
        if (kind < 0.2) { w = 0.6 * rng_uniform(rng); h = 0.6 * rng_uniform(rng); }           /* sub-pixel */
        else if (kind < 0.3) { x1 = -6; y1 = -5; w = W + 12; h = H + 10; }                        /* large */
        else if (kind < 0.35) { w = -2 * rng_uniform(rng); h = 3 * rng_uniform(rng); }        /* inverted */
        else { w = 0.5 + 0.7 * W * rng_uniform(rng); h = 0.5 + 0.7 * H * rng_uniform(rng); }  /* general */
        q[0] = (float)rng_below(rng, (uint64_t)N);
        q[1] = (float)(x1 / s);
        q[2] = (float)(y1 / s);
        q[3] = (float)((x1 + w) / s);
        q[4] = (float)((y1 + h) / s);
    }
}

/* ------------------------------------------------------- 2. fast vs ref */

static void test_fast_vs_ref(void) {
    const int N = 2, C = 5, H = 13, W = 17, R = 80;
    const RoIAlignOptions cases[] = {opts(7, 7, 1.0 / 16, 0, 0), opts(7, 7, 1.0 / 16, 0, 1), opts(7, 7, 0.25, 0, 0),
                                     opts(3, 5, 0.25, 2, 1), opts(2, 4, 0.25, 0, 0)};
    Rng rng = next_rng();
    const size_t nf = (size_t)N * C * H * W;
    real *feat = tu_alloc_rand(nf, &rng), *prefill = tu_alloc_rand(nf, &rng);
    float *rois = malloc(5 * sizeof(float) * R);
    real *out_ref = tu_alloc((size_t)R * C * 49), *out_1 = tu_alloc((size_t)R * C * 49),
         *out_2 = tu_alloc((size_t)R * C * 49), *dout = tu_alloc((size_t)R * C * 49);
    real *df_ref = tu_alloc(nf), *df_1 = tu_alloc(nf), *df_2 = tu_alloc(nf);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const RoIAlignOptions *o = &cases[k];
        const size_t no = (size_t)R * C * o->PH * o->PW;
        random_rois(rois, R, N, H, W, o->spatial_scale, &rng);
        tu_fill_uniform(dout, no, -1, 1, &rng);
        roi_align_forward_ref(out_ref, feat, N, C, H, W, rois, R, o);
        memcpy(df_ref, prefill, nf * sizeof(real));
        roi_align_backward_ref(df_ref, dout, N, C, H, W, rois, R, o);
        for (int t = 1; t <= 2; t++) {
            real *out = t == 1 ? out_1 : out_2, *df = t == 1 ? df_1 : df_2;
            omp_set_num_threads(t);
            for (size_t i = 0; i < no; i++) out[i] = NAN; /* every output is written */
            roi_align_forward(out, feat, N, C, H, W, rois, R, o);
            memcpy(df, prefill, nf * sizeof(real));
            roi_align_backward(df, dout, N, C, H, W, rois, R, o);
            CHECK(count_diff(out, out_ref, no) == 0, "case %zu, %d thread(s): forward differs from _ref in %zu of %zu",
                  k, t, count_diff(out, out_ref, no), no);
            CHECK(count_diff(df, df_ref, nf) == 0, "case %zu, %d thread(s): backward differs from _ref in %zu of %zu",
                  k, t, count_diff(df, df_ref, nf), nf);
        }
        CHECK(count_diff(out_1, out_2, no) == 0 && count_diff(df_1, df_2, nf) == 0, "case %zu: 1 vs 2 threads differ",
              k);
        /* the data exercised something: not all zeros */
        CHECK(dot(out_ref, out_ref, no) > 0, "case %zu: all outputs zero", k);
    }
    omp_set_num_threads(2);
    free(feat), free(prefill), free(rois), free(out_ref), free(out_1), free(out_2), free(dout);
    free(df_ref), free(df_1), free(df_2);
}

/* ---------------------------------------------------- 3. torchvision goldens */

typedef struct {
    char name[64];
    int ndim, dims[4];
    size_t n;
    real *data;
} GTensor;

#define MAX_GT 32
static GTensor gt[MAX_GT];
static int ngt = 0;

typedef struct {
    char name[32], rois[16];
    int ph, pw, scale_inv, sampling, aligned;
} GCase;

#define MAX_GC 8
static GCase gcs[MAX_GC];
static int ngc = 0;
static char golden_versions[128] = "?";

static FILE *open_golden(void) {
    const char *rel = "tests/golden/roi_align_golden.bin";
    const char *root = getenv("CBNN_SOURCE_ROOT");
    const char *prefixes[] = {root, ".", "..", "../.."};
    char path[1024];
    for (int i = 0; i < 4; i++) {
        if (!prefixes[i]) continue;
        snprintf(path, sizeof path, "%s/%s", prefixes[i], rel);
        FILE *f = fopen(path, "rb");
        if (f) return f;
    }
    return NULL;
}

static int read_f64(FILE *f, real *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char b[8];
        if (fread(b, 1, 8, f) != 8) return 0;
        uint64_t u = 0;
        for (int k = 7; k >= 0; k--) u = u << 8 | b[k];
        double v;
        memcpy(&v, &u, 8);
        dst[i] = (real)v;
    }
    return 1;
}

static int parse_tensor(FILE *f, const char *line) {
    if (ngt == MAX_GT) return 0;
    GTensor *t = &gt[ngt];
    char shape[64];
    if (sscanf(line, "tensor %63s %63s", t->name, shape) != 2) return 0;
    t->ndim = 0;
    t->n = 1;
    for (char *p = shape; *p && t->ndim < 4;) {
        long v = strtol(p, &p, 10);
        t->dims[t->ndim++] = (int)v;
        t->n *= (size_t)v;
        if (*p == 'x') p++;
    }
    t->data = tu_alloc(t->n);
    if (!read_f64(f, t->data, t->n)) return 0;
    ngt++;
    return 1;
}

static int load_golden(void) {
    FILE *f = open_golden();
    if (!f) {
        fprintf(stderr, "cannot open tests/golden/roi_align_golden.bin (set CBNN_SOURCE_ROOT)\n");
        return 0;
    }
    char line[256];
    int ok = 0;
    if (fgets(line, sizeof line, f) && strncmp(line, "CBNN-GOLDEN-V1 float64-le", 25) == 0) {
        snprintf(golden_versions, sizeof golden_versions, "%.120s", line + 26);
        golden_versions[strcspn(golden_versions, "\n")] = 0;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "end", 3) == 0) { ok = 1; break; }
            if (strncmp(line, "tensor ", 7) == 0) {
                if (!parse_tensor(f, line)) break;
            } else if (strncmp(line, "case ", 5) == 0 && ngc < MAX_GC) {
                GCase *c = &gcs[ngc];
                if (sscanf(line, "case %31s rois=%15s ph=%d pw=%d scale_inv=%d sampling=%d aligned=%d", c->name, c->rois,
                           &c->ph, &c->pw, &c->scale_inv, &c->sampling, &c->aligned) != 7)
                    break;
                ngc++;
            } else {
                break;
            }
        }
    }
    if (!ok) fprintf(stderr, "malformed golden file near: %s\n", line);
    fclose(f);
    return ok;
}

static GTensor *need_t(const char *prefix, const char *what) {
    char name[128];
    snprintf(name, sizeof name, "%.60s%s%.60s", prefix, *prefix ? "/" : "", what);
    for (int i = 0; i < ngt; i++)
        if (strcmp(gt[i].name, name) == 0) return &gt[i];
    fprintf(stderr, "golden tensor %s missing\n", name);
    exit(1);
}

/* the upstream gradient the generator used, from its formula */
static void dout_pattern(real *d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = (real)((double)((long)((37 * (uint64_t)i) % 101) - 50) / 50.0);
}

static void test_goldens(void) {
    if (!load_golden()) {
        CHECK(0, "golden file could not be loaded");
        return;
    }
    printf("goldens (%s): %d cases\n", golden_versions, ngc);
    CHECK(ngc == 5, "expected 5 golden cases, found %d", ngc);
    GTensor *feat = need_t("", "feat");
    const int N = feat->dims[0], C = feat->dims[1], H = feat->dims[2], W = feat->dims[3];
    for (int k = 0; k < ngc; k++) {
        const GCase *gc = &gcs[k];
        GTensor *gr = need_t("", gc->rois), *gout = need_t(gc->name, "out"), *gdf = need_t(gc->name, "dfeat");
        const int R = gr->dims[0];
        float *rois = malloc(sizeof(float) * 5 * R);
        for (int i = 0; i < 5 * R; i++) rois[i] = (float)gr->data[i]; /* exact: the generator rounded to float32 */
        RoIAlignOptions o = opts(gc->ph, gc->pw, 1.0 / gc->scale_inv, gc->sampling, gc->aligned);
        const size_t no = (size_t)R * C * gc->ph * gc->pw;
        CHECK(gout->n == no && gdf->n == feat->n, "%s: golden sizes", gc->name);
        if (gout->n != no || gdf->n != feat->n) { free(rois); continue; }
        real *out = tu_alloc(no), *dout = tu_alloc(no), *df = tu_alloc(feat->n);
        dout_pattern(dout, no);
        for (int ref = 0; ref <= 1; ref++) {
            memset(df, 0, feat->n * sizeof(real));
            if (ref) {
                roi_align_forward_ref(out, feat->data, N, C, H, W, rois, R, &o);
                roi_align_backward_ref(df, dout, N, C, H, W, rois, R, &o);
            } else {
                roi_align_forward(out, feat->data, N, C, H, W, rois, R, &o);
                roi_align_backward(df, dout, N, C, H, W, rois, R, &o);
            }
            double eo = tu_max_rel_err(out, gout->data, no), ed = tu_max_rel_err(df, gdf->data, feat->n);
            CHECK(eo <= 1e-12, "%s%s: forward vs torchvision max error %.3e", gc->name, ref ? " (_ref)" : "", eo);
            CHECK(ed <= 1e-12, "%s%s: dfeat vs torchvision max error %.3e", gc->name, ref ? " (_ref)" : "", ed);
            if (!ref)
                printf("  %-10s forward %zu/%zu bitwise, dfeat %zu/%zu bitwise (max err %.1e, %.1e)\n", gc->name,
                       no - count_diff(out, gout->data, no), no, feat->n - count_diff(df, gdf->data, feat->n),
                       feat->n, eo, ed);
        }
        free(rois), free(out), free(dout), free(df);
    }
}

/* ------------------------------------------------------ 4. adjoint and fd */

typedef struct {
    int N, C, H, W, R;
    const float *rois;
    const RoIAlignOptions *o;
    real *feat, *out;
    const real *g;
} LinCtx;

static double loss(LinCtx *c) {
    roi_align_forward(c->out, c->feat, c->N, c->C, c->H, c->W, c->rois, c->R, c->o);
    return dot(c->out, c->g, (size_t)c->R * c->C * c->o->PH * c->o->PW);
}

static void test_adjoint_fd(void) {
    const int N = 2, C = 3, H = 11, W = 14, R = 40;
    const RoIAlignOptions cases[] = {opts(7, 7, 1.0 / 16, 0, 0), opts(7, 7, 0.25, 0, 1), opts(3, 5, 0.25, 2, 0)};
    Rng rng = next_rng();
    const size_t nf = (size_t)N * C * H * W, nomax = (size_t)R * C * 49;
    real *feat = tu_alloc_rand(nf, &rng), *out = tu_alloc(nomax), *g = tu_alloc(nomax);
    real *df = tu_alloc(nf), *pre = tu_alloc_rand(nf, &rng);
    float *rois = malloc(sizeof(float) * 5 * R);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const RoIAlignOptions *o = &cases[k];
        const size_t no = (size_t)R * C * o->PH * o->PW;
        random_rois(rois, R, N, H, W, o->spatial_scale, &rng);
        tu_fill_uniform(g, no, -1, 1, &rng);
        memcpy(df, pre, nf * sizeof(real));
        roi_align_backward(df, g, N, C, H, W, rois, R, o);
        for (size_t i = 0; i < nf; i++) df[i] -= pre[i]; /* what backward added: it accumulates */
        LinCtx ctx = {N, C, H, W, R, rois, o, feat, out, g};
        const double lhs = loss(&ctx), rhs = dot(feat, df, nf);
        const double scale_ = fabs(lhs) > 1 ? fabs(lhs) : 1;
        CHECK(fabs(lhs - rhs) <= 1e-12 * scale_, "case %zu: <F f, g> = %.17g but <f, F^T g> = %.17g", k, lhs, rhs);
        /* the loss is linear in feat: a central difference is exact up to rounding */
        double worst = 0;
        for (int t = 0; t < 12; t++) {
            const size_t i = (size_t)rng_below(&rng, nf);
            const real fi = feat[i], h = 1e-3;
            feat[i] = fi + h;
            const double lp = loss(&ctx);
            feat[i] = fi - h;
            const double lm = loss(&ctx);
            feat[i] = fi;
            const double e = fabs((lp - lm) / (2 * h) - (double)df[i]) / (fabs((double)df[i]) > 1 ? fabs((double)df[i]) : 1);
            if (e > worst) worst = e;
        }
        CHECK(worst <= 1e-9, "case %zu: finite differences vs backward max error %.3e", k, worst);
        CHECK(dot(df, df, nf) > 0, "case %zu: zero gradient", k);
    }
    free(feat), free(out), free(g), free(df), free(pre), free(rois);
}

/* ------------------------------------------------------------ 5. edges */

static void test_edges(void) {
    const int N = 2, C = 2, H = 6, W = 8;
    Rng rng = next_rng();
    real *feat = tu_alloc_rand((size_t)N * C * H * W, &rng);
    real out[2 * 2 * 49], df[2 * 2 * 6 * 8], dout[2 * 2 * 49];
    for (int i = 0; i < 2 * 2 * 49; i++) dout[i] = 1;
    const float outside[][5] = {
        {0, -100, -90, -20, -17},  /* left of and above the map at 1/16 (x, y < -1) */
        {1, 140, 10, 300, 80},     /* right of it: x > W = 8 */
        {1, 10, 104, 60, 200},     /* below it: y > H = 6 */
        {5, 10, 10, 60, 60},       /* batch index 5 of 2 */
        {-1, 10, 10, 60, 60},      /* batch index -1 */
    };
    for (int aligned = 0; aligned <= 1; aligned++) {
        RoIAlignOptions o = opts(7, 7, 1.0 / 16, 0, aligned);
        for (int k = 0; k < 5; k++) {
            for (int i = 0; i < 98; i++) out[i] = 7;
            roi_align_forward(out, feat, N, C, H, W, outside[k], 1, &o);
            int nz = 0;
            for (int i = 0; i < 98; i++) nz += out[i] != 0;
            memset(df, 0, sizeof df);
            roi_align_backward(df, dout, N, C, H, W, outside[k], 1, &o);
            int gnz = 0;
            for (int i = 0; i < N * C * H * W; i++) gnz += df[i] != 0;
            CHECK(nz == 0 && gnz == 0, "RoI %d outside (aligned %d): %d outputs, %d gradients nonzero", k, aligned, nz,
                  gnz);
        }
    }
    /* aligned and inverted: no samples, zeros; not aligned: w clamped to 1, not zero */
    const float inv[5] = {0, 60, 40, 30, 50};
    RoIAlignOptions oa = opts(7, 7, 1.0 / 16, 0, 1), on = opts(7, 7, 1.0 / 16, 0, 0);
    roi_align_forward(out, feat, N, C, H, W, inv, 1, &oa);
    CHECK(dot(out, out, 98) == 0, "inverted aligned RoI: nonzero output");
    roi_align_forward(out, feat, N, C, H, W, inv, 1, &on);
    CHECK(dot(out, out, 98) > 0, "inverted RoI, not aligned: all zero (w, h should clamp to 1)");
    /* R = 0: nothing written */
    for (int i = 0; i < 98; i++) out[i] = 7;
    for (int i = 0; i < N * C * H * W; i++) df[i] = 3;
    roi_align_forward(out, feat, N, C, H, W, NULL, 0, &on);
    roi_align_backward(df, dout, N, C, H, W, NULL, 0, &on);
    roi_align_forward_ref(out, feat, N, C, H, W, NULL, 0, &on);
    roi_align_backward_ref(df, dout, N, C, H, W, NULL, 0, &on);
    int touched = 0;
    for (int i = 0; i < 98; i++) touched += out[i] != 7;
    for (int i = 0; i < N * C * H * W; i++) touched += df[i] != 3;
    CHECK(touched == 0, "R = 0 wrote %d values", touched);
    free(feat);
}

/* ------------------------------------------------------------- timing */

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

#ifndef SANITIZED
/* process CPU time: with one thread it is the kernel's time, less disturbed
 * than the wall clock on a machine other jobs share */
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#endif

/* the paper's shape: feat [2, 256, 38, 50] (600 x 800 at stride 16), 512
 * RoIs of 32 to 400 pixels, 7x7 at 1/16, one thread; printed, not asserted */
static void time_paper_shape(void) {
#ifndef SANITIZED
    const int N = 2, C = 256, H = 38, W = 50, R = 512;
    Rng rng = next_rng();
    const size_t nf = (size_t)N * C * H * W, no = (size_t)R * C * 49;
    real *feat = tu_alloc_rand(nf, &rng), *out = tu_alloc(no), *df = tu_alloc(nf);
    float *rois = malloc(sizeof(float) * 5 * R);
    for (int r = 0; r < R; r++) {
        double w = 32 + 368 * rng_uniform(&rng), h = 32 + 368 * rng_uniform(&rng);
        double x = (800 - w) * rng_uniform(&rng), y = (600 - h) * rng_uniform(&rng);
        float q[5] = {(float)(r % 2), (float)x, (float)y, (float)(x + w), (float)(y + h)};
        memcpy(rois + 5 * r, q, sizeof q);
    }
    RoIAlignOptions o = opts(7, 7, 1.0 / 16, 0, 0);
    omp_set_num_threads(1);
    double t0 = cpu_seconds();
    roi_align_forward(out, feat, N, C, H, W, rois, R, &o);
    double t1 = cpu_seconds();
    roi_align_backward(df, out, N, C, H, W, rois, R, &o);
    double t2 = cpu_seconds();
    printf("paper shape [2,256,38,50], 512 RoIs, 1 thread, %s, CPU time: forward %.1f ms, backward %.1f ms\n", REAL_NAME,
           1e3 * (t1 - t0), 1e3 * (t2 - t1));
    omp_set_num_threads(2);
    free(feat), free(out), free(df), free(rois);
#endif
}

int main(void) {
    test_ramp_centres();
    test_ramp_edges();
    test_fast_vs_ref();
    test_goldens();
    test_adjoint_fd();
    test_edges();
    time_paper_shape();
    return tu_finish("test_roi_align");
}
