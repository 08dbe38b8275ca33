/* Anchor targets, proposals and RoI sampling (core/detect/box_targets.h) on
 * hand-made cases whose every number is worked out below from the reference's
 * rules (anchor_target_layer.py, proposal_layer.py,
 * proposal_target_layer_cascade.py):
 *   a 64 x 64 image with one GT and a dozen anchors: labels (inside test,
 *   thresholds, each GT's tied maxima, the 1e-5 rule), targets, weights, the
 *   count; sampling caps with a seeded Rng, determinism, the draws spread;
 *   proposals: score order, NMS 0.7, pre/post NMS cuts, zero rows, min size,
 *   a NaN box; RoI sampling: gt appended, fg without / bg with replacement,
 *   targets / stds, padding rows never sampled, the corner cases. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "box_targets.h"
#include "boxes.h"
#include "testutil.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

/* ---------------------------------------------------------- anchor targets */

/* 64 x 64 image, GT [4,0,19,15] (16 x 16, centre (12, 8)), class 3 */
#define NA 12
static const float anchors12[NA][4] = {
    {0, 0, 15, 15},   /* 0: IoU 192/320 = 0.6, the GT's max (tied with 6) -> fg */
    {16, 0, 31, 15},  /* 1: 64/448 = 0.143 -> bg */
    {0, 16, 15, 31},  /* 2: touches the GT below -> 0 -> bg */
    {-8, 0, 7, 15},   /* 3: x1 < 0: outside -> -1 */
    {48, 48, 63, 63}, /* 4: x2 = y2 = 63 < 64: inside, IoU 0 -> bg */
    {48, 48, 64, 63}, /* 5: x2 = 64 = W: outside */
    {8, 0, 23, 15},   /* 6: 192/320 = 0.6 -> fg (tie) */
    {0, 0, 31, 31},   /* 7: 256/1024 = 0.25 -> bg */
    {12, 0, 27, 15},  /* 8: 128/384 = 0.333 -> ignored */
    {0, 48, 15, 63},  /* 9: inside, 0 -> bg */
    {0, 49, 15, 64},  /* 10: y2 = 64 = H: outside */
    {0, -1, 15, 14},  /* 11: y1 < 0: outside (IoU 0.88 would make it fg) */
};
/* box_encode(anchor, GT) by hand: GT centre (12, 8), w = h = 16 */
static const float targets12[NA][4] = {
    {0.25f, 0, 0, 0},   {-0.75f, 0, 0, 0}, {0.25f, -1, 0, 0},        {0, 0, 0, 0},
    {-2.75f, -3, 0, 0}, {0, 0, 0, 0},      {-0.25f, 0, 0, 0},        {-0.125f, -0.25f, -0.693147f, -0.693147f},
    {-0.5f, 0, 0, 0},   {0.25f, -3, 0, 0}, {0, 0, 0, 0},             {0, 0, 0, 0},
};

static void check_targets(const char *what, const float *t, const float (*want)[4], int n) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 4; c++)
            CHECK(near(t[4 * i + c], want[i][c], 1e-6), "%s: target[%d][%d] = %.9g, want %.9g", what, i, c,
                  t[4 * i + c], want[i][c]);
}

static void test_anchor_targets_by_hand(void) {
    const DetectTargetOptions o = detect_target_defaults();
    const float gt[5] = {4, 0, 19, 15, 3};
    int8_t lab[NA + 1];
    float tg[(NA + 1) * 4], w[NA + 1];
    int nfg = -1;
    Rng r = rng_stream(1, RNG_TEST, 0, 0);
    int n = anchor_targets(&o, &anchors12[0][0], NA, 64, 64, gt, 1, &r, lab, tg, w, &nfg);
    const int8_t want[NA] = {1, 0, 0, -1, 0, -1, 1, 0, -1, 0, -1, -1};
    for (int i = 0; i < NA; i++) CHECK(lab[i] == want[i], "one GT: label[%d] = %d, want %d", i, lab[i], want[i]);
    CHECK(n == 7 && nfg == 2, "one GT: %d labelled, %d fg; want 7, 2", n, nfg);
    check_targets("one GT", tg, targets12, NA);
    for (int i = 0; i < NA; i++)
        CHECK(w[i] == (want[i] == 1 ? 1.0f : 0.0f), "one GT: inside_w[%d] = %g", i, w[i]);

    /* add anchor 12 = [2,0,17,15]: 224/288 = 0.778 >= 0.7 -> fg and the new
     * maximum, so 0 and 6 (0.6) fall back to ignored */
    float an13[(NA + 1) * 4];
    memcpy(an13, anchors12, sizeof anchors12);
    const float a12[4] = {2, 0, 17, 15};
    memcpy(an13 + 4 * NA, a12, sizeof a12);
    n = anchor_targets(&o, an13, NA + 1, 64, 64, gt, 1, &r, lab, tg, w, &nfg);
    const int8_t want13[NA + 1] = {-1, 0, 0, -1, 0, -1, -1, 0, -1, 0, -1, -1, 1};
    for (int i = 0; i <= NA; i++) CHECK(lab[i] == want13[i], "with a 0.78 anchor: label[%d] = %d, want %d", i, lab[i], want13[i]);
    CHECK(n == 6 && nfg == 1, "with a 0.78 anchor: %d labelled, %d fg; want 6, 1", n, nfg);
    CHECK(near(tg[4 * 12], (12.0 - 10.0) / 16.0, 1e-7) && w[12] == 1.0f && w[0] == 0.0f,
          "with a 0.78 anchor: target dx %g, w %g %g", tg[48], w[12], w[0]);

    /* a small GT [20,0,27,7] (8 x 8): anchors 1 [16..31] and 8 [12..27] hold
     * it whole (64/256 = 0.25, tied maximum), 6 [8..23] takes 4 of its columns
     * (32/288 = 0.111), 7 holds it in 1024 (0.0625): 1 and 8 are fg although
     * below 0.3; with clobber_positives the bg rule runs last and wins */
    const float gt2[5] = {20, 0, 27, 7, 5};
    DetectTargetOptions oc = o;
    n = anchor_targets(&o, &anchors12[0][0], NA, 64, 64, gt2, 1, &r, lab, tg, w, &nfg);
    CHECK(lab[1] == 1 && lab[8] == 1 && lab[6] == 0 && lab[7] == 0 && nfg == 2 && n == 8,
          "small GT: labels 1 %d, 6 %d, 7 %d, 8 %d; %d fg, %d labelled; want 1 0 0 1, 2, 8", lab[1], lab[6], lab[7],
          lab[8], nfg, n);
    oc.rpn_clobber_positives = 1;
    n = anchor_targets(&oc, &anchors12[0][0], NA, 64, 64, gt2, 1, &r, lab, tg, w, &nfg);
    CHECK(lab[1] == 0 && lab[8] == 0 && nfg == 0 && n == 8 && w[8] == 0.0f,
          "clobber: labels 1 %d, 8 %d, %d fg, %d labelled; want 0 0, 0, 8", lab[1], lab[8], nfg, n);

    /* a GT that overlaps no inside anchor: its max 0 -> 1e-5 matches nothing,
     * so every inside anchor is bg (not fg by "IoU == max") */
    const float gt3[5] = {40, 0, 47, 7, 2};
    n = anchor_targets(&o, &anchors12[0][0], NA, 64, 64, gt3, 1, &r, lab, tg, w, &nfg);
    int bad = 0;
    for (int i = 0; i < NA; i++) bad += lab[i] != (want[i] == -1 && i != 8 ? -1 : 0);
    CHECK(bad == 0 && n == 8 && nfg == 0, "GT overlapping nothing: %d wrong labels, %d labelled, %d fg", bad, n, nfg);
    /* a single-pixel GT inside anchor 0: masked to IoU 0 -> no fg either */
    const float gt4[5] = {5, 5, 5, 5, 2};
    n = anchor_targets(&o, &anchors12[0][0], NA, 64, 64, gt4, 1, &r, lab, tg, w, &nfg);
    CHECK(lab[0] == 0 && nfg == 0 && n == 8, "single-pixel GT: label 0 = %d, %d fg, %d labelled", lab[0], nfg, n);
    /* no GT: inside anchors bg, targets 0 */
    n = anchor_targets(&o, &anchors12[0][0], NA, 64, 64, NULL, 0, &r, lab, tg, w, &nfg);
    float tsum = 0;
    for (int i = 0; i < 4 * NA; i++) tsum += fabsf(tg[i]);
    CHECK(n == 8 && nfg == 0 && lab[0] == 0 && lab[3] == -1 && tsum == 0.0f, "no GT: %d labelled, %d fg, targets |%g|",
          n, nfg, tsum);
    /* a smaller image: 32 x 32 leaves 0, 1, 2, 6, 7, 8 (x2, y2 <= 31) inside:
     * fg 0, 6; bg 1, 2, 7; 8 ignored; 4 and 9 now outside (targets 0) */
    n = anchor_targets(&o, &anchors12[0][0], NA, 32, 32, gt, 1, &r, lab, tg, w, &nfg);
    CHECK(n == 5 && nfg == 2 && lab[4] == -1 && lab[9] == -1 && lab[7] == 0 && tg[4 * 4] == 0.0f &&
              tg[4 * 9 + 1] == 0.0f,
          "32 x 32: %d labelled, %d fg, labels 4 %d 7 %d 9 %d; want 5, 2, -1 0 -1", n, nfg, lab[4], lab[7], lab[9]);
}

/* 49 anchors [x, 0, x+15, 15], x = 0..48, GT [20,0,35,15]: IoU at offset d =
 * |x - 20| is (16-d)/(16+d): fg (>= 0.7) for d <= 2 (5 anchors, x 18..22),
 * bg (< 0.3) for d >= 9 (x 0..11 and 29..48: 32 anchors), ignored between. */
static void test_anchor_sampling(void) {
    float an[49 * 4];
    for (int x = 0; x < 49; x++) {
        an[4 * x] = (float)x, an[4 * x + 1] = 0, an[4 * x + 2] = (float)x + 15, an[4 * x + 3] = 15;
    }
    const float gt[5] = {20, 0, 35, 15, 1};
    DetectTargetOptions o = detect_target_defaults();
    int8_t lab[49], lab2[49];
    float tg[49 * 4], w[49];
    int nfg;
    Rng r = rng_stream(3, RNG_TEST, 0, 0);
    int n = anchor_targets(&o, an, 49, 64, 64, gt, 1, &r, lab, tg, w, &nfg);
    CHECK(n == 37 && nfg == 5, "no cap reached: %d labelled, %d fg; want 37, 5", n, nfg);

    /* batch 8, fraction 0.5: 4 of the 5 fg, then 8 - 4 = 4 of the 32 bg */
    o.rpn_batch = 8;
    int dropped[49] = {0}, picked_bg[49] = {0}, wrong = 0;
    const int seeds = 500;
    for (int s = 0; s < seeds; s++) {
        Rng rs = rng_stream(100 + s, RNG_TEST, 0, 0);
        n = anchor_targets(&o, an, 49, 64, 64, gt, 1, &rs, lab, tg, w, &nfg);
        int f = 0, b = 0;
        for (int x = 0; x < 49; x++) {
            const int d = x > 20 ? x - 20 : 20 - x;
            if (lab[x] == 1) f++, wrong += d > 2;
            if (lab[x] == 0) b++, wrong += d < 9, picked_bg[x]++;
            if (lab[x] == -1 && d <= 2) dropped[x]++;
            if (lab[x] == -1 && d >= 3 && d <= 8) continue;
            wrong += (lab[x] == 1) != (w[x] == 1.0f);
        }
        wrong += f != 4 || b != 4 || n != 8 || nfg != 4;
    }
    CHECK(wrong == 0, "capped sampling: %d violations (want 4 fg among x 18..22, 4 bg among d >= 9, count 8)", wrong);
    /* every fg anchor is the dropped one about 1/5 of the time, every bg
     * anchor picked about 4/32 of the time (binomial: mean 100, sd 9; mean
     * 62.5, sd 7.4) */
    for (int x = 18; x <= 22; x++) CHECK(dropped[x] > 55 && dropped[x] < 145, "fg x=%d dropped %d/500", x, dropped[x]);
    for (int x = 0; x < 49; x++)
        if (x <= 11 || x >= 29) CHECK(picked_bg[x] > 25 && picked_bg[x] < 100, "bg x=%d picked %d/500", x, picked_bg[x]);

    /* bg fills rpn_batch - fg: batch 16 -> cap 8 > 5 fg, so 11 bg */
    o.rpn_batch = 16;
    Rng r1 = rng_stream(5, RNG_TEST, 0, 0), r2 = rng_stream(5, RNG_TEST, 0, 0), r3 = rng_stream(6, RNG_TEST, 0, 0);
    n = anchor_targets(&o, an, 49, 64, 64, gt, 1, &r1, lab, tg, w, &nfg);
    CHECK(n == 16 && nfg == 5, "batch 16: %d labelled, %d fg; want 16, 5", n, nfg);
    anchor_targets(&o, an, 49, 64, 64, gt, 1, &r2, lab2, tg, w, &nfg);
    CHECK(memcmp(lab, lab2, sizeof lab) == 0, "same seed, different labels");
    int differs = 0;
    for (int s = 0; s < 5 && !differs; s++) {
        anchor_targets(&o, an, 49, 64, 64, gt, 1, &r3, lab2, tg, w, &nfg);
        differs = memcmp(lab, lab2, sizeof lab) != 0;
    }
    CHECK(differs, "five other draws all gave the same bg subset");
}

/* -------------------------------------------------------------- proposals */

static void test_proposals(void) {
    /* decode(anchor, 0) = anchor + (0, 0, 1, 1) (x2 = ctr + w/2) */
    const float L2 = (float)log(2.0);
    const float an[9][4] = {
        {0, 0, 15, 15},     /* 0: [0,0,16,16], .6: IoU with 1 = 1 -> suppressed */
        {0, 0, 15, 15},     /* 1: [0,0,16,16], .9 -> kept first */
        {40, 40, 55, 55},   /* 2: dx .5 -> [48,40,64,56] -> clip x2 63, .8 -> kept */
        {-10, -10, 5, 5},   /* 3: [-10,-10,6,6] -> [0,0,6,6], .7: 49/289 with 1 -> kept */
        {20, 20, 35, 35},   /* 4: dw log 2 -> w 32 around 28: [12,20,44,36], .5 -> kept */
        {20, 48, 35, 63},   /* 5: [20,48,36,64] -> y2 63, .5 (tie with 4: after it) -> kept */
        {30, 0, 45, 15},    /* 6: NaN dx, .95 -> dropped */
        {2, 0, 17, 15},     /* 7: [2,0,18,16], .85: 255/323 = 0.79 with 1 -> suppressed */
        {5, 0, 20, 15},     /* 8: [5,0,21,16], .65: 204/374 = 0.545 with 1 -> kept */
    };
    float d[9][4] = {{0}};
    d[2][0] = 0.5f;
    d[4][2] = L2;
    d[6][0] = NAN;
    const float fg[9] = {0.6f, 0.9f, 0.8f, 0.7f, 0.5f, 0.5f, 0.95f, 0.85f, 0.65f};
    DetectTargetOptions o = detect_target_defaults();
    o.post_nms_train = 8;
    float rois[8 * 4], sc[8];
    memset(rois, 0x7f, sizeof rois);
    int n = proposals(&o, 1, &an[0][0], fg, &d[0][0], 9, 64, 64, 1.0, rois, sc);
    const float want[6][4] = {{0, 0, 16, 16},   {48, 40, 63, 56},  {0, 0, 6, 6},
                              {5, 0, 21, 16},   {12, 20, 44, 36},  {20, 48, 36, 63}};
    const float wsc[6] = {0.9f, 0.8f, 0.7f, 0.65f, 0.5f, 0.5f};
    CHECK(n == 6, "proposals: %d, want 6", n);
    for (int k = 0; k < 6; k++) {
        for (int c = 0; c < 4; c++)
            CHECK(near(rois[4 * k + c], want[k][c], 1e-4), "proposal %d col %d = %.9g, want %g", k, c, rois[4 * k + c],
                  want[k][c]);
        CHECK(sc[k] == wsc[k], "proposal %d score %g, want %g", k, sc[k], wsc[k]);
    }
    int nz = 0;
    for (int k = 6; k < 8; k++) nz += rois[4 * k] != 0 || rois[4 * k + 1] != 0 || rois[4 * k + 2] != 0 ||
                                      rois[4 * k + 3] != 0 || sc[k] != 0;
    CHECK(nz == 0, "rows past the count are not zero");

    /* post_nms 2: the first two kept */
    o.post_nms_train = 2;
    n = proposals(&o, 1, &an[0][0], fg, &d[0][0], 9, 64, 64, 1.0, rois, sc);
    CHECK(n == 2 && rois[4] == 48 && sc[1] == 0.8f, "post_nms 2: %d, second x1 %g", n, rois[4]);
    /* pre_nms 3 happens before NMS: the top 3 are 6 (NaN, dropped), 1, 7
     * (suppressed by 1): one proposal */
    o.post_nms_train = 8;
    o.pre_nms_train = 3;
    n = proposals(&o, 1, &an[0][0], fg, &d[0][0], 9, 64, 64, 1.0, rois, sc);
    CHECK(n == 1 && sc[0] == 0.9f && rois[4] == 0 && sc[1] == 0, "pre_nms 3: %d, want 1 (score %g)", n, sc[0]);
    /* train = 0 takes the test counts */
    o.pre_nms_test = 0;
    o.post_nms_test = 3;
    n = proposals(&o, 0, &an[0][0], fg, &d[0][0], 9, 64, 64, 1.0, rois, sc);
    CHECK(n == 3 && sc[2] == 0.7f, "test counts: %d, want 3", n);
    /* min_size 8 at scale 1 drops proposal 3 (7 px); at scale 0.5 (4 px) not */
    o.pre_nms_train = 12000;
    o.min_size = 8;
    n = proposals(&o, 1, &an[0][0], fg, &d[0][0], 9, 64, 64, 1.0, rois, sc);
    CHECK(n == 5 && sc[2] == 0.65f, "min_size 8: %d, third score %g; want 5, 0.65", n, sc[2]);
    n = proposals(&o, 1, &an[0][0], fg, &d[0][0], 9, 64, 64, 0.5, rois, sc);
    CHECK(n == 6, "min_size 8 at scale 0.5: %d, want 6", n);
    /* NMS at 0.5 instead of 0.7 also removes 8 (0.545 with 1) */
    o.min_size = 0;
    o.rpn_nms = 0.5f;
    n = proposals(&o, 1, &an[0][0], fg, &d[0][0], 9, 64, 64, 1.0, rois, sc);
    CHECK(n == 5 && sc[3] == 0.5f, "rpn_nms 0.5: %d, want 5", n);
}

/* ----------------------------------------------------------- RoI sampling */

/* GT 0 [0,0,15,15] class 3, GT 1 [32,32,47,47] class 7; candidates:
 *   r0 [0,0,15,15]    IoU 1 with G0      fg 3, targets 0
 *   r1 [4,0,19,15]    192/320 = .6, G0   fg 3, dx (8-12)/16 = -.25 -> /.1 = -2.5
 *   r2 [32,32,47,51]  256/320 = .8, G1   fg 7, dy (40-42)/20 -> -1, dh log(.8)/.2
 *   r3 [8,0,23,15]    128/384 = .33      bg
 *   r4 [50,50,60,60]  0                  bg
 *   r5, r6 [0,0,0,0]  padding: -1        never
 *   7 = G0, 8 = G1 appended               fg, targets 0 */
static const float rois7[7][4] = {{0, 0, 15, 15}, {4, 0, 19, 15}, {32, 32, 47, 51}, {8, 0, 23, 15},
                                  {50, 50, 60, 60}, {0, 0, 0, 0}, {0, 0, 0, 0}};
static const float gt2[2][5] = {{0, 0, 15, 15, 3}, {32, 32, 47, 47, 7}};

/* which candidate a sampled row is (by its box); -1 if none */
static int which_cand(const float *b) {
    static const float cands[9][4] = {{0, 0, 15, 15}, {4, 0, 19, 15}, {32, 32, 47, 51}, {8, 0, 23, 15},
                                      {50, 50, 60, 60}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 15, 15}, {32, 32, 47, 47}};
    for (int i = 0; i < 9; i++)
        if (memcmp(b, cands[i], sizeof cands[i]) == 0) return i;
    return -1;
}

/* an index for counting: -1 (no candidate) goes to slot 6, a padding row's
 * twin that which_cand never returns */
static int cand_slot(const float *b) {
    const int c = which_cand(b);
    return c < 0 ? 6 : c;
}

static void check_rows(const char *what, const float *rr, const int32_t *lab, const float *t, const float *w, int R,
                       int n_fg) {
    const double dh = log(0.8) / 0.2;
    int bad = 0;
    for (int k = 0; k < R; k++) {
        const int c = which_cand(rr + 4 * k);
        const float *tk = t + 4 * k;
        if (k < n_fg) {
            /* r0 and G0 share a box: both fg class 3 with targets 0 */
            const int cls = c == 2 || c == 8 ? 7 : 3;
            float want[4] = {0, 0, 0, 0};
            if (c == 1) want[0] = -2.5f;
            if (c == 2) want[1] = -1.0f, want[3] = (float)dh;
            const int ok = (c == 0 || c == 1 || c == 2 || c == 7 || c == 8) && lab[k] == cls && w[k] == 1.0f &&
                           near(tk[0], want[0], 1e-5) && near(tk[1], want[1], 1e-5) && near(tk[2], want[2], 1e-5) &&
                           near(tk[3], want[3], 1e-5);
            if (!ok) {
                bad++;
                fprintf(stderr, "%s row %d (fg): cand %d label %d w %g t %g %g %g %g\n", what, k, c, lab[k], w[k],
                        tk[0], tk[1], tk[2], tk[3]);
            }
        } else {
            const int ok = (c == 3 || c == 4) && lab[k] == 0 && w[k] == 0.0f && tk[0] == 0 && tk[1] == 0 &&
                           tk[2] == 0 && tk[3] == 0;
            if (!ok) {
                bad++;
                fprintf(stderr, "%s row %d (bg): cand %d label %d w %g\n", what, k, c, lab[k], w[k]);
            }
        }
    }
    CHECK(bad == 0, "%s: %d wrong rows", what, bad);
}

static void test_roi_sample(void) {
    DetectTargetOptions o = detect_target_defaults();
    float rr[256 * 4], t[256 * 4], w[256];
    int32_t lab[256];
    Rng r = rng_stream(9, RNG_TEST, 0, 0);

    /* defaults: cap round(.25 * 256) = 64 > 5 fg: all five, each once; 251 bg */
    int nf = roi_sample(&o, &rois7[0][0], 7, &gt2[0][0], 2, &r, rr, lab, t, w);
    CHECK(nf == 5, "defaults: %d fg, want 5", nf);
    check_rows("defaults", rr, lab, t, w, 256, 5);
    /* r0 and G0 are the same box (both read as 0): counts 2, 1, 1, 1 */
    int cnt[9] = {0};
    for (int k = 0; k < 5; k++) cnt[cand_slot(rr + 4 * k)]++;
    CHECK(cnt[0] == 2 && cnt[1] == 1 && cnt[2] == 1 && cnt[8] == 1,
          "defaults: fg rows r0/G0 %d, r1 %d, r2 %d, G1 %d; want 2 1 1 1", cnt[0], cnt[1], cnt[2], cnt[8]);

    /* 8 rows, cap round(.25 * 8) = 2: 2 distinct fg, 6 bg drawn from 2 */
    o.rois_per_image = 8;
    int distinct_fail = 0, bg_counts[9] = {0}, fg_first[9] = {0};
    for (int s = 0; s < 400; s++) {
        Rng rs = rng_stream(200 + s, RNG_TEST, 0, 0);
        nf = roi_sample(&o, &rois7[0][0], 7, &gt2[0][0], 2, &rs, rr, lab, t, w);
        if (nf != 2) distinct_fail++;
        check_rows("8 rows", rr, lab, t, w, 8, 2);
        if (memcmp(rr, rr + 4, 4 * sizeof(float)) == 0 && lab[0] == lab[1] &&
            !(which_cand(rr) == 0 || which_cand(rr) == 7))
            distinct_fail++; /* the same fg candidate twice (r0/G0 share a box) */
        fg_first[cand_slot(rr)]++;
        for (int k = 2; k < 8; k++) bg_counts[cand_slot(rr + 4 * k)]++;
    }
    CHECK(distinct_fail == 0, "8 rows: %d draws with a wrong fg count or a repeated fg", distinct_fail);
    /* with replacement: 2400 bg draws from {r3, r4}, about half each; fg
     * first row spread over the 5 (r0 and G0 both read as 0) */
    CHECK(bg_counts[3] > 1000 && bg_counts[4] > 1000 && bg_counts[3] + bg_counts[4] == 2400,
          "bg draws r3 %d r4 %d of 2400", bg_counts[3], bg_counts[4]);
    CHECK(fg_first[0] > 100 && fg_first[1] > 40 && fg_first[2] > 40 && fg_first[8] > 40,
          "first fg row spread: r0/G0 %d r1 %d r2 %d G1 %d of 400", fg_first[0], fg_first[1], fg_first[2],
          fg_first[8]);

    /* same seed, same rows */
    float rr2[8 * 4], t2[8 * 4], w2[8];
    int32_t lab2[8];
    Rng ra = rng_stream(42, RNG_TEST, 0, 0), rb = rng_stream(42, RNG_TEST, 0, 0);
    roi_sample(&o, &rois7[0][0], 7, &gt2[0][0], 2, &ra, rr, lab, t, w);
    roi_sample(&o, &rois7[0][0], 7, &gt2[0][0], 2, &rb, rr2, lab2, t2, w2);
    CHECK(memcmp(rr, rr2, sizeof rr2) == 0 && memcmp(lab, lab2, sizeof lab2) == 0 && memcmp(t, t2, sizeof t2) == 0,
          "same seed, different RoIs");

    /* round half to even: .25 * 10 = 2.5 -> 2 fg */
    o.rois_per_image = 10;
    nf = roi_sample(&o, &rois7[0][0], 7, &gt2[0][0], 2, &r, rr, lab, t, w);
    CHECK(nf == 2, "10 rows: %d fg, want round(2.5) = 2", nf);
    check_rows("10 rows", rr, lab, t, w, 10, 2);
    /* a cap of round(.01 * 8) = 0 becomes 1 */
    o.rois_per_image = 8;
    o.roi_fg_fraction = 0.01f;
    nf = roi_sample(&o, &rois7[0][0], 7, &gt2[0][0], 2, &r, rr, lab, t, w);
    CHECK(nf == 1, "fraction .01: %d fg, want 1", nf);
    check_rows("fraction .01", rr, lab, t, w, 8, 1);
    o.roi_fg_fraction = 0.25f;

    /* fg but no bg (proposals r0, r1 only, G0): 8 fg rows with replacement */
    nf = roi_sample(&o, &rois7[0][0], 2, &gt2[0][0], 1, &r, rr, lab, t, w);
    CHECK(nf == 8, "fg only: %d fg, want 8", nf);
    check_rows("fg only", rr, lab, t, w, 8, 8);
    /* no GT: r3, r4 (and r0..r2) are bg with IoU 0, padding never sampled */
    nf = roi_sample(&o, &rois7[3][0], 4, NULL, 0, &r, rr, lab, t, w);
    CHECK(nf == 0, "no GT: %d fg, want 0", nf);
    check_rows("no GT", rr, lab, t, w, 8, 0);
    /* neither: only padding rows and no GT; or bg_lo 0.1 with no GT */
    nf = roi_sample(&o, &rois7[5][0], 2, NULL, 0, &r, rr, lab, t, w);
    CHECK(nf == -1, "padding only: %d, want -1", nf);
    o.roi_bg_lo = 0.1f;
    nf = roi_sample(&o, &rois7[3][0], 4, NULL, 0, &r, rr, lab, t, w);
    CHECK(nf == -1, "no GT, bg_lo 0.1: %d, want -1", nf);
    /* with bg_lo 0.1 the IoU-0 r4 is no bg any more: only r3 */
    o.roi_bg_lo = 0.1f;
    nf = roi_sample(&o, &rois7[0][0], 7, &gt2[0][0], 2, &r, rr, lab, t, w);
    int only_r3 = 1;
    for (int k = nf; k < 8; k++) only_r3 &= which_cand(rr + 4 * k) == 3;
    CHECK(nf == 2 && only_r3, "bg_lo 0.1: %d fg, bg only r3: %d", nf, only_r3);
}

int main(void) {
    test_anchor_targets_by_hand();
    test_anchor_sampling();
    test_proposals();
    test_roi_sample();
    return tu_finish("box_targets");
}
