/* Box arithmetic of the detector (core/detect/boxes.h) against values worked
 * out by hand from the reference's formulas (generate_anchors.py,
 * bbox_transform.py, the NMS kernel):
 *   IoU with the +1 convention, touching boxes, the masked matrix;
 *   the 9 anchors of base 16, ratios {0.5,1,2}, scales {8,16,32}, and a
 *   base-15 case where numpy's round half to even decides a side;
 *   the shift order k*A + a; encode by hand, decode(encode) = gt + (0,0,1,1);
 *   clip (NaN kept); NMS of three hand-made boxes at t = 0.5 / 0.49 / >= 0.5,
 *   stable ties, non-finite boxes dropped; NMS against a direct transcription
 *   of the reference's suppress-forward loop on random boxes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "boxes.h"
#include "testutil.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static void test_iou(void) {
    const float a[4] = {0, 0, 9, 9}, b[4] = {0, 0, 9, 19};
    CHECK(box_iou(a, b) == 0.5f, "IoU([0,0,9,9],[0,0,9,19]) = %.9g, want 0.5", box_iou(a, b));
    CHECK(box_iou(b, a) == 0.5f, "IoU not symmetric: %.9g", box_iou(b, a));
    CHECK(box_iou(a, a) == 1.0f, "IoU(a, a) = %.9g", box_iou(a, a));
    const float touch_x[4] = {10, 0, 19, 9}, touch_y[4] = {0, 10, 9, 19}, corner[4] = {10, 10, 19, 19};
    CHECK(box_iou(a, touch_x) == 0.0f, "touching in x: %.9g", box_iou(a, touch_x));
    CHECK(box_iou(a, touch_y) == 0.0f, "touching in y: %.9g", box_iou(a, touch_y));
    CHECK(box_iou(a, corner) == 0.0f, "touching at a corner: %.9g", box_iou(a, corner));
    /* sharing one column (x = 9): inter 1*10, union 100 + 100 - 10 */
    const float one_col[4] = {9, 0, 18, 9};
    CHECK(near(box_iou(a, one_col), 10.0 / 190.0, 1e-7), "one shared column: %.9g, want 10/190", box_iou(a, one_col));
    /* a single pixel is an ordinary 1x1 box for box_iou: 1/100 */
    const float px[4] = {5, 5, 5, 5};
    CHECK(near(box_iou(a, px), 0.01, 1e-8), "pixel inside a: %.9g, want 0.01", box_iou(a, px));

    /* bbox_overlaps_batch's masks: a single-pixel gt column -> 0, a
     * single-pixel candidate row -> -1 (over the 0 too) */
    const float cand[3 * 4] = {0, 0, 9, 9, 0, 0, 0, 0, 0, 0, 9, 19};
    const float gt[2 * 4] = {0, 0, 9, 19, 5, 5, 5, 5};
    float ov[6];
    box_iou_matrix(cand, 3, gt, 2, ov);
    const float want[6] = {0.5f, 0.0f, -1.0f, -1.0f, 1.0f, 0.0f};
    for (int i = 0; i < 6; i++) CHECK(ov[i] == want[i], "iou_matrix[%d] = %g, want %g", i, ov[i], want[i]);
}

static void test_anchors(void) {
    const double ratios[3] = {0.5, 1, 2}, scales[3] = {8, 16, 32};
    float an[9 * 4];
    anchors_base(16, ratios, 3, scales, 3, an);
    /* by hand: centre 7.5; ratio 0.5: w = round(sqrt(512)) = 23, h = round(11.5)
     * = 12; ratio 1: 16 x 16; ratio 2: w = round(sqrt(128)) = 11, h = 22; each
     * times the scale, x1 = 7.5 - (w-1)/2, x2 = 7.5 + (w-1)/2 */
    const float want[9][4] = {
        {-84, -40, 99, 55},    {-176, -88, 191, 103},   {-360, -184, 375, 199},
        {-56, -56, 71, 71},    {-120, -120, 135, 135},  {-248, -248, 263, 263},
        {-36, -80, 51, 95},    {-80, -168, 95, 183},    {-168, -344, 183, 359},
    };
    for (int r = 0; r < 9; r++)
        for (int c = 0; c < 4; c++)
            CHECK(an[4 * r + c] == want[r][c], "anchor row %d col %d = %g, want %g", r, c, an[4 * r + c],
                  want[r][c]);
    /* half to even decides: base 15 (centre 7), ratio 0.5: w = round(sqrt(450))
     * = 21, h = round(10.5) = 10 (half away from zero would give 11, y 2 .. 12) */
    const double r05 = 0.5, s1 = 1.0;
    float b15[4];
    anchors_base(15, &r05, 1, &s1, 1, b15);
    const float w15[4] = {-3, 2.5f, 17, 11.5f};
    for (int c = 0; c < 4; c++) CHECK(b15[c] == w15[c], "base 15 anchor col %d = %g, want %g", c, b15[c], w15[c]);

    /* shifts: A = 2 base anchors on a 2 x 3 map, stride 16: anchor k*A + a with
     * k = y*3 + x is base a + 16 (x, y, x, y) */
    const float base[2 * 4] = {-8, -8, 7, 7, -1, -2, 3, 4};
    float all[2 * 3 * 2 * 4];
    anchors_shift(base, 2, 2, 3, 16, all);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int a = 0; a < 2; a++) {
                const float *g = all + 4 * ((y * 3 + x) * 2 + a);
                const float w4[4] = {base[4 * a] + 16 * x, base[4 * a + 1] + 16 * y, base[4 * a + 2] + 16 * x,
                                     base[4 * a + 3] + 16 * y};
                CHECK(memcmp(g, w4, sizeof w4) == 0, "shift (y %d, x %d, a %d) = %g %g %g %g", y, x, a, g[0], g[1],
                      g[2], g[3]);
            }
    /* the hand example: k = 4 (y 1, x 1), a 1 -> row 9 = (15, 14, 19, 20) */
    CHECK(all[36] == 15 && all[37] == 14 && all[38] == 19 && all[39] == 20, "row 9 = %g %g %g %g", all[36],
          all[37], all[38], all[39]);
}

static void test_transform(void) {
    /* ex w = h = 10, ctr (5, 5); gt w 10, h 20, ctr (10, 10) */
    const float ex[4] = {0, 0, 9, 9}, gt[4] = {5, 0, 14, 19};
    float t[4];
    box_encode(ex, gt, t);
    CHECK(t[0] == 0.5f && t[1] == 0.5f && t[2] == 0.0f && near(t[3], log(2.0), 1e-7),
          "encode = %g %g %g %g, want 0.5 0.5 0 log2", t[0], t[1], t[2], t[3]);
    float back[4];
    box_decode(ex, t, 0.0, back);
    /* the reference's inverse puts x2 at ctr + w/2: one more than the gt's */
    const float want[4] = {5, 0, 15, 20};
    for (int c = 0; c < 4; c++) CHECK(near(back[c], want[c], 1e-5), "decode[%d] = %.9g, want %g", c, back[c], want[c]);

    /* random round trips: decode(encode(gt)) = gt + (0, 0, 1, 1) */
    Rng r = rng_stream(7, RNG_TEST, 1, 0);
    double worst = 0.0;
    for (int n = 0; n < 1000; n++) {
        float e[4], g[4], d[4], o[4];
        e[0] = (float)(rng_uniform(&r) * 500 - 100), e[1] = (float)(rng_uniform(&r) * 500 - 100);
        e[2] = e[0] + (float)(rng_uniform(&r) * 300), e[3] = e[1] + (float)(rng_uniform(&r) * 300);
        g[0] = (float)(rng_uniform(&r) * 500), g[1] = (float)(rng_uniform(&r) * 500);
        g[2] = g[0] + (float)(rng_uniform(&r) * 300), g[3] = g[1] + (float)(rng_uniform(&r) * 300);
        box_encode(e, g, d);
        box_decode(e, d, 0.0, o);
        for (int c = 0; c < 4; c++) {
            const double err = fabs(o[c] - (g[c] + (c >= 2 ? 1.0 : 0.0)));
            if (err > worst) worst = err;
        }
    }
    CHECK(worst < 2e-3, "decode(encode(gt)) - (gt + (0,0,1,1)) up to %g px", worst);

    /* the optional clamp: dw = dh = 5 > log(1000/16) -> w = 10 * 62.5 = 625 */
    const float big[4] = {0, 0, 5, 5};
    float cl[4], un[4];
    box_decode(ex, big, log(1000.0 / 16.0), cl);
    box_decode(ex, big, 0.0, un);
    CHECK(near(cl[0], 5 - 312.5, 1e-3) && near(cl[2], 5 + 312.5, 1e-3), "clamped decode x = %g %g", cl[0], cl[2]);
    CHECK(near(un[0], 5 - 5 * exp(5.0), 1e-2) && near(un[3], 5 + 5 * exp(5.0), 1e-2), "unclamped decode = %g %g",
          un[0], un[3]);
    /* the clamp is an upper bound only: a negative dw is untouched */
    const float small[4] = {0, 0, -1, -1};
    float sm[4];
    box_decode(ex, small, log(1000.0 / 16.0), sm);
    CHECK(near(sm[2] - sm[0], 10 * exp(-1.0), 1e-5), "clamp touched a negative dw: w %g", sm[2] - sm[0]);

    /* clip to [0, W-1] x [0, H-1] */
    float b[4] = {-5, -3, 70, 50};
    box_clip(b, 64, 48);
    CHECK(b[0] == 0 && b[1] == 0 && b[2] == 63 && b[3] == 47, "clip = %g %g %g %g, want 0 0 63 47", b[0], b[1], b[2],
          b[3]);
    float in[4] = {1.5f, 2, 62.5f, 46};
    box_clip(in, 64, 48);
    CHECK(in[0] == 1.5f && in[1] == 2 && in[2] == 62.5f && in[3] == 46, "clip moved an inside box");
    float nb[4] = {NAN, -1, 3, 100};
    box_clip(nb, 64, 48);
    CHECK(isnan(nb[0]) && nb[1] == 0 && nb[3] == 47, "clip of a NaN box: %g %g %g %g", nb[0], nb[1], nb[2], nb[3]);
}

/* The reference's CPU loop transcribed directly (suppress forward in score
 * order), with > or >=; stable order from a plain insertion sort. */
static int nms_direct(const float *boxes, const float *scores, int n, float t, int ge, int *keep) {
    int order[64], sup[64] = {0};
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && scores[order[j - 1]] < scores[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    int nk = 0;
    for (int a = 0; a < n; a++) {
        const int i = order[a];
        if (sup[i]) continue;
        keep[nk++] = i;
        for (int b = a + 1; b < n; b++) {
            const int j = order[b];
            const float o = box_iou(boxes + 4 * i, boxes + 4 * j);
            if (ge ? o >= t : o > t) sup[j] = 1;
        }
    }
    return nk;
}

static void test_nms(void) {
    /* stored as C, A, B: A [0,0,9,9] .9, B [0,0,9,19] .8, C [0,10,9,19] .7;
     * IoU(A,B) = IoU(B,C) = 0.5, IoU(A,C) = 0 (touching) */
    const float boxes[3 * 4] = {0, 10, 9, 19, 0, 0, 9, 9, 0, 0, 9, 19};
    const float scores[3] = {0.7f, 0.9f, 0.8f};
    int keep[8], bad = -1;
    int n = nms(boxes, scores, 3, 0.5f, 0, keep, 8, &bad);
    CHECK(n == 3 && keep[0] == 1 && keep[1] == 2 && keep[2] == 0 && bad == 0,
          "t = 0.5 (>): %d kept (%d %d %d), want 3: A B C (1 2 0)", n, keep[0], keep[1], keep[2]);
    /* at 0.49 B goes; C survives: B was suppressed, so it suppresses nothing */
    n = nms(boxes, scores, 3, 0.49f, 0, keep, 8, NULL);
    CHECK(n == 2 && keep[0] == 1 && keep[1] == 0, "t = 0.49: %d kept (%d %d), want A C (1 0)", n, keep[0], keep[1]);
    n = nms(boxes, scores, 3, 0.5f, 1, keep, 8, NULL);
    CHECK(n == 2 && keep[0] == 1 && keep[1] == 0, "t = 0.5 (>=): %d kept (%d %d), want A C (1 0)", n, keep[0], keep[1]);
    n = nms(boxes, scores, 3, 0.5f, 0, keep, 2, NULL);
    CHECK(n == 2 && keep[0] == 1 && keep[1] == 2, "max_keep 2: %d kept (%d %d), want 1 2", n, keep[0], keep[1]);

    /* ties: equal scores keep index order; of two identical boxes with equal
     * scores the lower index stays */
    const float tb[4 * 4] = {0, 0, 9, 9, 50, 50, 59, 59, 20, 20, 29, 29, 20, 20, 29, 29};
    const float ts[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    n = nms(tb, ts, 4, 0.7f, 0, keep, 8, NULL);
    CHECK(n == 3 && keep[0] == 0 && keep[1] == 1 && keep[2] == 2, "ties: %d kept (%d %d %d), want 0 1 2", n, keep[0],
          keep[1], keep[2]);
    int order[5];
    const float os[5] = {0.5f, NAN, 0.9f, 0.5f, -1.0f};
    argsort_desc(os, 5, order);
    CHECK(order[0] == 2 && order[1] == 0 && order[2] == 3 && order[3] == 4 && order[4] == 1,
          "argsort_desc = %d %d %d %d %d, want 2 0 3 4 1", order[0], order[1], order[2], order[3], order[4]);

    /* non-finite: a NaN box with the top score would suppress box 1 if kept;
     * an inf coordinate and a NaN score are dropped too */
    const float nb[5 * 4] = {0, 0, NAN, 9, 0, 0, 9, 9, 30, 30, INFINITY, 40, 60, 60, 69, 69, 100, 100, 109, 109};
    const float ns[5] = {0.99f, 0.5f, 0.9f, NAN, 0.1f};
    n = nms(nb, ns, 5, 0.5f, 0, keep, 8, &bad);
    CHECK(n == 2 && keep[0] == 1 && keep[1] == 4 && bad == 3, "non-finite: %d kept (%d %d), %d bad; want 1 4, 3 bad",
          n, keep[0], keep[1], bad);
    n = nms(nb, ns, 0, 0.5f, 0, keep, 8, &bad);
    CHECK(n == 0 && bad == 0, "empty: %d kept, %d bad", n, bad);

    /* against the direct loop on random boxes on a coarse grid (many exact
     * ties of scores and of IoU = threshold) */
    Rng r = rng_stream(11, RNG_TEST, 2, 0);
    int mismatches = 0;
    for (int trial = 0; trial < 300; trial++) {
        const int nn = 2 + (int)rng_below(&r, 40);
        float bx[64 * 4], sc[64];
        for (int i = 0; i < nn; i++) {
            bx[4 * i] = (float)rng_below(&r, 8) * 5, bx[4 * i + 1] = (float)rng_below(&r, 8) * 5;
            bx[4 * i + 2] = bx[4 * i] + 4 + (float)rng_below(&r, 4) * 5;
            bx[4 * i + 3] = bx[4 * i + 1] + 4 + (float)rng_below(&r, 4) * 5;
            sc[i] = (float)rng_below(&r, 6) / 5.0f;
        }
        const float t = trial % 3 == 0 ? 0.5f : trial % 3 == 1 ? 0.3f : 0.7f;
        const int ge = trial % 2;
        int k1[64], k2[64];
        const int n1 = nms(bx, sc, nn, t, ge, k1, 64, NULL);
        const int n2 = nms_direct(bx, sc, nn, t, ge, k2);
        if (n1 != n2 || memcmp(k1, k2, (size_t)n1 * sizeof(int)) != 0) mismatches++;
    }
    CHECK(mismatches == 0, "NMS differs from the direct loop in %d of 300 random sets", mismatches);
}

int main(void) {
    test_iou();
    test_anchors();
    test_transform();
    test_nms();
    return tu_finish("boxes");
}
