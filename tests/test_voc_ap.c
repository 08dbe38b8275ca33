/* VOC detection AP (tasks/voc_ap.c), the comp4 files (tasks/comp4.c) and the
 * two tools cbnn_voc_results / cbnn_voc_eval, against hand-computed values.
 *
 * 1. The 11 thresholds are numpy's arange(0., 1.1, 0.1): 0.30000000000000004,
 *    0.6000000000000001, 0.7000000000000001 (start + i * step).
 * 2. The issue's case: 10 images with one GT each; detections TP .9 .8 .7,
 *    FP .6, TP .5 (given shuffled, so the sort matters). By hand:
 *      tp = 1 2 3 3 4, fp = 0 0 0 1 1, rec = .1 .2 .3 .3 .4,
 *      prec = 1 1 1 .75 .8.
 *      AP07: t = 0, .1, .2 -> max prec = 1 each; t3 = 0.30000000000000004 >
 *      rec 3/10 = 0.29999999999999998890, so only rec .4 counts -> .8;
 *      t4 = 0.4 = 4/10 -> .8; t5..t10 -> 0. (1+1+1+.8+.8)/11 = 4.6/11
 *      = 0.41818... (a threshold of exactly 0.3 would give 4.8/11).
 *      All-point: mrec = 0 .1 .2 .3 .3 .4 1, mpre = 0 1 1 1 .75 .8 0,
 *      envelope 1 1 1 1 .8 .8 0; recall changes at 0->.1, .1->.2, .2->.3,
 *      .3->.4, .4->1: .1*1 + .1*1 + .1*1 + .1*.8 + .6*0 = 0.38.
 * 3. Recall exactly 0.3 (3 TPs of 10) falls below t3: AP07 = 3/11, not 4/11.
 *    The all-point sum is numpy's pairwise one: a 20-detection curve gives
 *    numpy's bits (voc_eval.py run with numpy 1.24), not the left-to-right sum's.
 * 4. A difficult GT: its detection is neither TP nor FP (AP 1, not .5).
 * 5. A duplicate detection is FP; a taken GT stays taken even when another
 *    free GT overlaps the detection (the reference does not fall back).
 * 6. IoU exactly 0.5 ([0,0,9,9] vs [0,0,9,19]: 100/200) is no match; IoU
 *    threshold 0.7 as a parameter.
 * 7. A class without GT is NaN and the mean skips it; non-finite input is
 *    refused. Proposal recall (IoU >= t) by hand.
 * 8. comp4 files: exact text of the lines (float32, +1, half-even rounding),
 *    read back to the same detections and the same AP bits; no temporary
 *    left; bad line / unknown id / non-finite / hex / unknown class file /
 *    missing class file: errors naming file:line.
 * 9. The tools end to end on a synthetic devkit (datasets/synth_voc.c):
 *    detections stored in a results file as a detection run writes them
 *    (runlog_table: detections/ image class score x1 y1 x2 y2,
 *    detection_images/ id), written by cbnn_voc_results, scored by
 *    cbnn_voc_eval: detections = GT boxes give AP 1 for every class present,
 *    NaN for the others; with false positives ranked in between, the printed
 *    APs equal the in-memory ones; errors (no devkit, a bad class or image
 *    row, a missing column or table, a bad file) exit 1, name the culprit
 *    and write nothing. The tool binaries are found beside this test's build
 *    directory (../analysis/ of /proc/self/exe), or given as argv[1] argv[2]. */
#include <dirent.h>
#include <float.h>
#include <ftw.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/voc.h"
#include "experiments/results_h5.h"
#include "tasks/comp4.h"
#include "tasks/voc_ap.h"
#include "testutil.h"

static char g_tmp[256];

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

/* n images with one GT box [0,0,9,9] of class 0 each */
typedef struct {
    double boxes[64][4];
    int32_t labels[64];
    uint8_t difficult[64];
    VocGtImage gt[64];
} OneEach;

static void one_each(OneEach *o, int n) {
    for (int i = 0; i < n; i++) {
        double b[4] = {0, 0, 9, 9};
        memcpy(o->boxes[i], b, sizeof b);
        o->labels[i] = 0;
        o->difficult[i] = 0;
        o->gt[i] = (VocGtImage){1, o->boxes[i], &o->labels[i], &o->difficult[i]};
    }
}

static VocDet det(long image, int label, double score, double x1, double y1, double x2, double y2) {
    return (VocDet){image, label, score, {x1, y1, x2, y2}};
}

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

static void test_thresholds(void) {
    const double numpy[11] = {0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001, 0.7000000000000001,
                              0.8, 0.9, 1.0};
    for (int i = 0; i <= 10; i++)
        CHECK(voc_ap07_threshold(i) == numpy[i], "t_%d = %.17g, numpy %.17g", i, voc_ap07_threshold(i), numpy[i]);
    CHECK(voc_ap07_threshold(3) > 0.3 && 3.0 / 10.0 < voc_ap07_threshold(3), "t3 above 0.3 and above 3/10");
}

static void test_issue_case(void) {
    OneEach o;
    one_each(&o, 10);
    VocDet d[5] = {det(4, 0, .5, 0, 0, 9, 9), det(0, 0, .9, 0, 0, 9, 9), det(3, 0, .6, 30, 30, 39, 39),
                   det(2, 0, .7, 0, 0, 9, 9), det(1, 0, .8, 0, 0, 9, 9)};
    VocApResult r;
    char err[512] = "";
    CHECK(voc_ap_class(o.gt, 10, d, 5, 0, 0.5, &r, err, sizeof err) == 0, "issue case: %s", err);
    CHECK(near(r.ap07, 4.6 / 11.0), "AP07 = %.17g, expected 4.6/11 = %.17g", r.ap07, 4.6 / 11.0);
    CHECK(near(r.ap_all, 0.38), "AP all-point = %.17g, expected 0.38", r.ap_all);
    CHECK(r.n_gt == 10 && r.n_det == 5 && r.n_tp == 4 && r.n_fp == 1, "counts %ld %ld %ld %ld", r.n_gt, r.n_det,
          r.n_tp, r.n_fp);
    CHECK(near(r.recall, 0.4), "recall %.17g", r.recall);
    /* the curve itself through the public helpers */
    double rec[5] = {.1, .2, 3.0 / 10, 3.0 / 10, .4}, prec[5] = {1, 1, 1, .75, .8};
    CHECK(near(voc_ap_11point(rec, prec, 5), 4.6 / 11), "voc_ap_11point %.17g", voc_ap_11point(rec, prec, 5));
    CHECK(near(voc_ap_allpoint(rec, prec, 5), 0.38), "voc_ap_allpoint %.17g", voc_ap_allpoint(rec, prec, 5));
    /* the same detections at another class: not this class's */
    for (int k = 0; k < 5; k++) d[k].label = 3;
    CHECK(voc_ap_class(o.gt, 10, d, 5, 0, 0.5, &r, err, sizeof err) == 0 && r.n_det == 0 && r.ap07 == 0 &&
              r.ap_all == 0 && r.recall == 0,
          "no detection of the class: AP 0 (%g %g)", r.ap07, r.ap_all);
}

/* numpy's pairwise summation: a curve whose all-point terms sum to
 * 0.8576923076923078 in numpy (voc_eval.py's voc_ap, run here with numpy
 * 1.24) and to ...079 added left to right: 17 GT, 20 detections in the
 * TP/FP pattern 11011111111110110011 */
static void test_numpy_sum(void) {
    OneEach o;
    one_each(&o, 17);
    const char *pat = "11011111111110110011";
    VocDet d[20];
    for (int k = 0, img = 0; k < 20; k++)
        d[k] = pat[k] == '1' ? det(img++, 0, 1.0 - 0.01 * k, 0, 0, 9, 9) : det(16, 0, 1.0 - 0.01 * k, 50, 50, 60, 60);
    VocApResult r;
    char err[512] = "";
    CHECK(voc_ap_class(o.gt, 17, d, 20, 0, 0.5, &r, err, sizeof err) == 0 && r.n_tp == 16 && r.n_gt == 17, "%s", err);
    CHECK(r.ap_all == 0.8576923076923078, "all-point %.17g, numpy 0.8576923076923078", r.ap_all);
    CHECK(r.ap07 == 0.8375874125874128, "AP07 %.17g, numpy 0.8375874125874128", r.ap07);
}

static void test_recall_03(void) {
    OneEach o;
    one_each(&o, 10);
    VocDet d[3] = {det(0, 0, .9, 0, 0, 9, 9), det(1, 0, .8, 0, 0, 9, 9), det(2, 0, .7, 0, 0, 9, 9)};
    VocApResult r;
    char err[512] = "";
    CHECK(voc_ap_class(o.gt, 10, d, 3, 0, 0.5, &r, err, sizeof err) == 0, "%s", err);
    /* t = 0, .1, .2 give 1; t3 = 0.30000000000000004 > rec 0.3: none */
    double want = 0.0 + 1.0 / 11 + 1.0 / 11 + 1.0 / 11;
    CHECK(r.ap07 == want, "recall 0.3: AP07 = %.17g, expected 3/11 = %.17g (4/11 = %.17g if t3 were 0.3)", r.ap07,
          want, 4.0 / 11);
    CHECK(r.recall == 0.3 && r.recall < voc_ap07_threshold(3), "recall %.17g", r.recall);
    CHECK(near(r.ap_all, 0.3), "all-point %.17g", r.ap_all);
}

static void test_difficult(void) {
    OneEach o;
    one_each(&o, 2);
    o.difficult[1] = 1;
    VocDet d[2] = {det(1, 0, .9, 0, 0, 9, 9), det(0, 0, .8, 0, 0, 9, 9)};
    VocApResult r;
    char err[512] = "";
    CHECK(voc_ap_class(o.gt, 2, d, 2, 0, 0.5, &r, err, sizeof err) == 0, "%s", err);
    /* rec = 0 1, prec = 0/eps = 0, 1: every threshold has prec 1 (a FP would make it .5) */
    CHECK(r.n_gt == 1 && r.n_det == 2 && r.n_tp == 1 && r.n_fp == 0, "difficult: counts %ld %ld %ld %ld", r.n_gt,
          r.n_det, r.n_tp, r.n_fp);
    CHECK(near(r.ap07, 1.0) && near(r.ap_all, 1.0), "difficult ignored: AP %.17g %.17g", r.ap07, r.ap_all);
    /* the max-IoU box decides: a detection closest to a difficult box is ignored
     * even though it also overlaps a free non-difficult box above 0.5 */
    double boxes[2][4] = {{0, 0, 9, 9}, {0, 0, 9, 11}};
    int32_t labels[2] = {0, 0};
    uint8_t diff[2] = {1, 0};
    VocGtImage g = {2, boxes[0], labels, diff};
    VocDet e[1] = {det(0, 0, .9, 0, 0, 9, 9)}; /* IoU 1 with the difficult one, 100/120 with the other */
    CHECK(voc_ap_class(&g, 1, e, 1, 0, 0.5, &r, err, sizeof err) == 0 && r.n_tp == 0 && r.n_fp == 0 && r.n_gt == 1,
          "best match difficult: tp %ld fp %ld", r.n_tp, r.n_fp);
}

static void test_duplicate(void) {
    OneEach o;
    one_each(&o, 2);
    VocDet d[3] = {det(0, 0, .9, 0, 0, 9, 9), det(0, 0, .8, 0, 0, 9, 9), det(1, 0, .7, 0, 0, 9, 9)};
    VocApResult r;
    char err[512] = "";
    CHECK(voc_ap_class(o.gt, 2, d, 3, 0, 0.5, &r, err, sizeof err) == 0, "%s", err);
    /* tp 1 1 2, fp 0 1 1: rec .5 .5 1, prec 1 .5 2/3: all-point .5 + .5 * 2/3 */
    CHECK(r.n_tp == 2 && r.n_fp == 1, "duplicate: tp %ld fp %ld", r.n_tp, r.n_fp);
    CHECK(near(r.ap_all, 0.5 + 0.5 * 2.0 / 3.0), "duplicate: all-point %.17g", r.ap_all);
    /* 6 thresholds up to .5 see prec 1, 5 above see 2/3 */
    CHECK(near(r.ap07, (6 + 5 * 2.0 / 3.0) / 11), "duplicate: AP07 %.17g", r.ap07);
    /* two GT boxes, the second taken detection's best is the taken one: FP,
     * although the other box (IoU 100/130) is free */
    double boxes[2][4] = {{0, 0, 9, 9}, {0, 0, 9, 12}};
    int32_t labels[2] = {0, 0};
    VocGtImage g = {2, boxes[0], labels, NULL};
    VocDet e[2] = {det(0, 0, .9, 0, 0, 9, 9), det(0, 0, .8, 0, 0, 9, 9)};
    CHECK(voc_ap_class(&g, 1, e, 2, 0, 0.5, &r, err, sizeof err) == 0 && r.n_tp == 1 && r.n_fp == 1 && r.n_gt == 2,
          "no fall back to the second box: tp %ld fp %ld", r.n_tp, r.n_fp);
}

static void test_iou_threshold(void) {
    double a[4] = {0, 0, 9, 9}, b[4] = {0, 0, 9, 19}, c[4] = {10, 0, 19, 9};
    CHECK(voc_iou(a, b) == 0.5, "IoU([0,0,9,9],[0,0,9,19]) = %.17g", voc_iou(a, b));
    CHECK(voc_iou(a, c) == 0.0, "touching boxes: %.17g", voc_iou(a, c));
    OneEach o;
    one_each(&o, 1);
    VocApResult r;
    char err[512] = "";
    VocDet d = det(0, 0, .9, 0, 0, 9, 19);
    CHECK(voc_ap_class(o.gt, 1, &d, 1, 0, 0.5, &r, err, sizeof err) == 0 && r.n_tp == 0 && r.n_fp == 1 &&
              r.ap07 == 0 && r.ap_all == 0,
          "IoU exactly 0.5 is no match: tp %ld, AP %g", r.n_tp, r.ap07);
    d.box[3] = 18; /* 100/190 */
    CHECK(voc_ap_class(o.gt, 1, &d, 1, 0, 0.5, &r, err, sizeof err) == 0 && r.n_tp == 1 && near(r.ap07, 1.0),
          "IoU 0.526 matches");
    d.box[3] = 13; /* 100/140 = 0.714 */
    CHECK(voc_ap_class(o.gt, 1, &d, 1, 0, 0.7, &r, err, sizeof err) == 0 && r.n_tp == 1, "IoU .714 > .7");
    d.box[3] = 14; /* 100/150 = 0.667 */
    CHECK(voc_ap_class(o.gt, 1, &d, 1, 0, 0.7, &r, err, sizeof err) == 0 && r.n_tp == 0 && r.n_fp == 1,
          "IoU .667 at 0.7: FP");
    CHECK(voc_ap_class(o.gt, 1, &d, 1, 0, 0.5, &r, err, sizeof err) == 0 && r.n_tp == 1, "IoU .667 at 0.5: TP");
}

/* proposal recall: IoU >= thresh counts (0.5 exactly does), difficult boxes
 * are not counted, any class's box may cover a GT */
static void test_box_recall(void) {
    double g0[3][4] = {{0, 0, 9, 9}, {20, 20, 29, 29}, {40, 40, 49, 49}}, g1[1][4] = {{0, 0, 9, 9}};
    int32_t l0[3] = {0, 1, 2}, l1[1] = {3};
    uint8_t d0[3] = {0, 1, 0}, d1[1] = {0};
    VocGtImage gt[2] = {{3, g0[0], l0, d0}, {1, g1[0], l1, d1}};
    double p0[2][4] = {{0, 0, 9, 19}, {20, 20, 29, 29}}, p1[1][4] = {{0, 0, 9, 20}};
    const double *boxes[2] = {p0[0], p1[0]};
    int counts[2] = {2, 1};
    /* non-difficult: [0,0,9,9] (IoU .5 with p0[0]), [40,40,49,49] (0), image 1's (100/210) */
    double r5 = voc_box_recall(gt, 2, boxes, counts, 0.5);
    CHECK(r5 == 1.0 / 3, "recall at .5: %g", r5);
    CHECK(voc_box_recall(gt, 2, boxes, counts, 0.47) == 2.0 / 3, "recall at .47");
    CHECK(voc_box_recall(gt, 2, boxes, counts, 0.7) == 0.0, "recall at .7");
    d0[0] = d0[2] = d1[0] = 1;
    CHECK(isnan(voc_box_recall(gt, 2, boxes, counts, 0.5)), "no non-difficult GT: NaN");
}

static void test_nan_and_bad(void) {
    OneEach o;
    one_each(&o, 2);
    VocDet d[2] = {det(0, 5, .9, 0, 0, 9, 9), det(1, 0, .8, 0, 0, 9, 9)};
    VocApResult r;
    char err[512] = "";
    CHECK(voc_ap_class(o.gt, 2, d, 2, 5, 0.5, &r, err, sizeof err) == 0 && isnan(r.ap07) && isnan(r.ap_all) &&
              isnan(r.recall) && r.n_gt == 0 && r.n_det == 1,
          "class without GT: NaN (%g %g)", r.ap07, r.ap_all);
    double aps[3] = {0.5, NAN, 0.7}, none[2] = {NAN, NAN};
    CHECK(near(voc_ap_mean(aps, 3), 0.6), "mean skips NaN: %g", voc_ap_mean(aps, 3));
    CHECK(isnan(voc_ap_mean(none, 2)), "mean of NaNs is NaN");
    d[1].score = NAN;
    err[0] = 0;
    CHECK(voc_ap_class(o.gt, 2, d, 2, 0, 0.5, &r, err, sizeof err) != 0 && strstr(err, "non-finite"),
          "NaN score refused: %s", err);
    d[1].score = .8, d[1].box[2] = INFINITY;
    err[0] = 0;
    CHECK(voc_ap_class(o.gt, 2, d, 2, 0, 0.5, &r, err, sizeof err) != 0 && strstr(err, "non-finite"),
          "infinite box refused: %s", err);
    d[1].box[2] = 9, d[1].image = 2;
    err[0] = 0;
    CHECK(voc_ap_class(o.gt, 2, d, 2, 0, 0.5, &r, err, sizeof err) != 0 && strstr(err, "outside"),
          "image index out of range refused: %s", err);
    o.boxes[0][1] = NAN;
    d[1].image = 1;
    err[0] = 0;
    CHECK(voc_ap_class(o.gt, 2, d, 2, 0, 0.5, &r, err, sizeof err) != 0 && strstr(err, "not finite"),
          "non-finite GT refused: %s", err);
}

/* ------------------------------------------------------------ comp4 */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* files in dir: count, and whether any is not a comp4_det_*.txt */
static int count_files(const char *dir, int *other) {
    DIR *d = opendir(dir);
    int n = 0;
    *other = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        n++;
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "comp4_det_", 10) || l < 4 || strcmp(e->d_name + l - 4, ".txt")) *other = 1;
    }
    closedir(d);
    return n;
}

/* the GT of 4 images (0-based), 3 classes, and detections with .5 / integer
 * boxes and scores distinct at 3 decimals: everything survives the text */
static void comp4_case(double boxes[][4], int32_t *labels, uint8_t *diff, VocGtImage *gt, VocDet *d, long *nd) {
    double b[6][4] = {{10, 20, 50, 60}, {0, 0, 99, 49}, {5, 5, 30, 30},
                      {40, 40, 80, 90}, {1, 2, 3, 4},   {60, 10, 90, 40}};
    int32_t l[6] = {6, 14, 6, 14, 2, 6};
    uint8_t df[6] = {0, 0, 0, 1, 0, 0};
    int per[4] = {2, 1, 2, 1};
    memcpy(boxes, b, sizeof b);
    memcpy(labels, l, sizeof l);
    memcpy(diff, df, sizeof df);
    for (int i = 0, k = 0; i < 4; k += per[i], i++) gt[i] = (VocGtImage){per[i], boxes[k], labels + k, diff + k};
    long n = 0;
    d[n++] = det(0, 6, 0.9, 10, 20, 50, 60.5);
    d[n++] = det(0, 14, 0.75, 0, 0, 99, 49);
    d[n++] = det(1, 6, 0.625, 4.5, 5, 30, 31);
    d[n++] = det(2, 14, 0.5, 40, 40, 80, 90);   /* the difficult one */
    d[n++] = det(2, 6, 0.8, 2, 2, 3, 4);        /* FP */
    d[n++] = det(3, 6, 0.55, 60, 10, 90, 40);
    d[n++] = det(3, 6, 0.4, 60, 10, 90, 40);    /* duplicate */
    d[n++] = det(1, 3, 0.3, 0, 0, 10, 10);      /* boat: a class without GT */
    *nd = n;
}

static void test_comp4(void) {
    double boxes[6][4];
    int32_t labels[6];
    uint8_t diff[6];
    VocGtImage gt[4];
    VocDet d[16];
    long nd = 0;
    comp4_case(boxes, labels, diff, gt, d, &nd);
    const char *ids[4] = {"000001", "000002", "2008_000003", "000004"};
    char res[512], main_dir[600], err[1024] = "";
    snprintf(res, sizeof res, "%s/res", g_tmp);
    snprintf(main_dir, sizeof main_dir, "%s/VOC2007/Main", res);
    CHECK(comp4_write(res, "2007", "test", 3, ids, 4, d, nd, err, sizeof err) == 0, "comp4_write: %s", err);
    int other = 0;
    CHECK(count_files(main_dir, &other) == VOC_NUM_CLASSES && !other, "20 class files and nothing else");
    char path[1024];
    comp4_path(res, "2007", "test", "car", path, sizeof path);
    char *car = slurp(path);
    /* +1 in float32, one decimal; 0.625 -> "0.625", 60.5+1 -> "61.5"; 4.5+1 = 5.5 */
    const char *want_car = "000001 0.900 11.0 21.0 51.0 61.5\n"
                           "000002 0.625 5.5 6.0 31.0 32.0\n"
                           "2008_000003 0.800 3.0 3.0 4.0 5.0\n"
                           "000004 0.550 61.0 11.0 91.0 41.0\n"
                           "000004 0.400 61.0 11.0 91.0 41.0\n";
    CHECK(car && !strcmp(car, want_car), "car file:\n%s\nexpected:\n%s", car ? car : "(none)", want_car);
    free(car);
    comp4_path(res, "2007", "test", "aeroplane", path, sizeof path);
    char *aero = slurp(path);
    CHECK(aero && !aero[0], "a class without detections: an empty file");
    free(aero);

    /* read back (0-based): the same detections, the same AP bits */
    VocDet *back = NULL;
    long nb = 0;
    CHECK(comp4_read(res, "2007", "test", ids, 4, NULL, 0, 0, &back, &nb, err, sizeof err) == 0, "comp4_read: %s",
          err);
    CHECK(nb == nd, "read %ld detections, wrote %ld", nb, nd);
    for (int cls = 0; cls < VOC_NUM_CLASSES; cls++) {
        VocApResult a, b;
        int ra = voc_ap_class(gt, 4, d, nd, cls, 0.5, &a, err, sizeof err);
        int rb = voc_ap_class(gt, 4, back, nb, cls, 0.5, &b, err, sizeof err);
        int same = ra == 0 && rb == 0 && a.n_det == b.n_det && a.n_gt == b.n_gt && a.n_tp == b.n_tp &&
                   ((isnan(a.ap07) && isnan(b.ap07)) || a.ap07 == b.ap07) &&
                   ((isnan(a.ap_all) && isnan(b.ap_all)) || a.ap_all == b.ap_all);
        CHECK(same, "class %s: in memory AP %.17g %.17g, from the files %.17g %.17g", VOC_CLASSES[cls], a.ap07,
              a.ap_all, b.ap07, b.ap_all);
        /* car by score: .9 TP (IoU 1681/1701.5), .8 FP (no car in image 2),
         * .625 TP (676/715.5), .55 TP, .4 the duplicate: FP */
        if (cls == 6)
            CHECK(a.n_gt == 3 && a.n_tp == 3 && a.n_fp == 2, "car counts %ld %ld %ld", a.n_gt, a.n_tp, a.n_fp);
        if (cls == 14) /* person: one TP, the difficult one neither */
            CHECK(a.n_gt == 1 && a.n_tp == 1 && a.n_fp == 0 && a.n_det == 2, "person counts");
        if (cls == 3) CHECK(isnan(a.ap07) && a.n_det == 1, "boat: no GT, NaN");
    }
    /* the box survived exactly, and the one-based view is the file's */
    int found = 0;
    for (long i = 0; i < nb; i++)
        if (back[i].label == 6 && back[i].image == 1)
            found = back[i].box[0] == 4.5 && back[i].box[3] == 31 && back[i].score == 0.625;
    CHECK(found, "car on 000002 read back as written");
    free(back);
    CHECK(comp4_read(res, "2007", "test", ids, 4, (int[]){6}, 1, 1, &back, &nb, err, sizeof err) == 0 && nb == 5 &&
              back[0].box[0] == 11.0 && back[0].box[3] == 61.5 && back[0].image == 0,
          "one_based keeps the file's numbers");
    free(back);
    /* digits: 0.8125 has an exact binary value: half-even gives 0.812 (Python
     * too); 7 digits */
    VocDet e[1] = {det(0, 0, 0.8125, 2.25, 0, 9, 9)};
    CHECK(comp4_write(res, "2007", "test", 3, ids, 4, e, 1, err, sizeof err) == 0, "%s", err);
    comp4_path(res, "2007", "test", "aeroplane", path, sizeof path);
    aero = slurp(path);
    CHECK(aero && !strcmp(aero, "000001 0.812 3.2 1.0 10.0 10.0\n"), "half-even: '%s'", aero ? aero : "");
    free(aero);
    CHECK(comp4_write(res, "2007", "test", 7, ids, 4, e, 1, err, sizeof err) == 0, "%s", err);
    aero = slurp(path);
    CHECK(aero && !strcmp(aero, "000001 0.8125000 3.2 1.0 10.0 10.0\n"), "--digits 7: '%s'", aero ? aero : "");
    free(aero);
    /* refused input writes nothing: the old files stay */
    e[0].score = NAN;
    CHECK(comp4_write(res, "2007", "test", 3, ids, 4, e, 1, err, sizeof err) != 0 && strstr(err, "non-finite"),
          "NaN score refused: %s", err);
    aero = slurp(path);
    CHECK(aero && !strcmp(aero, "000001 0.8125000 3.2 1.0 10.0 10.0\n"), "old file kept: '%s'", aero ? aero : "");
    free(aero);
    CHECK(count_files(main_dir, &other) == VOC_NUM_CLASSES && !other, "no temporary left");
}

/* one bad thing in the car file (line 2) -> an error naming file:2 */
static void bad_car(const char *res, const char *const *ids, const char *line2, const char *want) {
    char path[1024], text[512], err[1024] = "";
    comp4_path(res, "2007", "test", "car", path, sizeof path);
    snprintf(text, sizeof text, "000001 0.900 11.0 21.0 51.0 61.5\n%s\n", line2);
    write_text(path, text);
    VocDet *d = NULL;
    long n = 0;
    int rc = comp4_read(res, "2007", "test", ids, 4, NULL, 0, 0, &d, &n, err, sizeof err);
    char where[1100];
    snprintf(where, sizeof where, "%s:2:", path);
    CHECK(rc != 0 && strstr(err, where) && strstr(err, want) && !d, "'%s': %s (want %s ... %s)", line2, err, where,
          want);
    free(d);
}

static void test_comp4_errors(void) {
    const char *ids[4] = {"000001", "000002", "2008_000003", "000004"};
    char res[512], path[1024], err[1024] = "";
    snprintf(res, sizeof res, "%s/bad", g_tmp);
    CHECK(comp4_write(res, "2007", "test", 3, ids, 4, NULL, 0, err, sizeof err) == 0, "%s", err);
    bad_car(res, ids, "000002 0.5 1 2 3", "5 fields");
    bad_car(res, ids, "", "0 fields");
    bad_car(res, ids, "000009 0.5 1 2 3 4", "unknown image id '000009'");
    bad_car(res, ids, "000002 nan 1 2 3 4", "not finite");
    bad_car(res, ids, "000002 0.5 1 inf 3 4", "not finite");
    bad_car(res, ids, "000002 0.5 1 0x2 3 4", "not a number");
    bad_car(res, ids, "000002 0.5 1 2 3 4 5", "7 fields");
    bad_car(res, ids, "000002 0.5 1 2,0 3 4", "not a number");
    comp4_path(res, "2007", "test", "car", path, sizeof path);
    write_text(path, "000002\t0.5  1 2 3 4\r\n");
    VocDet *d = NULL;
    long n = 0;
    CHECK(comp4_read(res, "2007", "test", ids, 4, NULL, 0, 0, &d, &n, err, sizeof err) == 0 && n == 1 &&
              d[0].box[0] == 0 && d[0].image == 1,
          "tabs, double blanks, CRLF accepted: %s", err);
    free(d);
    d = NULL;
    comp4_path(res, "2007", "test", "unicorn", path, sizeof path);
    write_text(path, "");
    CHECK(comp4_read(res, "2007", "test", ids, 4, NULL, 0, 0, &d, &n, err, sizeof err) != 0 &&
              strstr(err, "comp4_det_test_unicorn.txt") && strstr(err, "unknown class"),
          "unknown class file: %s", err);
    remove(path);
    comp4_path(res, "2007", "test", "dog", path, sizeof path);
    remove(path);
    CHECK(comp4_read(res, "2007", "test", ids, 4, NULL, 0, 0, &d, &n, err, sizeof err) != 0 && strstr(err, path),
          "missing class file: %s", err);
    CHECK(comp4_read(res, "2007", "test", ids, 4, (int[]){6}, 1, 0, &d, &n, err, sizeof err) == 0,
          "only the classes asked for are read: %s", err);
    free(d);
    const char *dup[2] = {"000001", "000001"};
    CHECK(comp4_read(res, "2007", "test", dup, 2, (int[]){6}, 1, 0, &d, &n, err, sizeof err) != 0 &&
              strstr(err, "twice"),
          "duplicate image ids refused: %s", err);
    const char *blank[1] = {"00 1"};
    CHECK(comp4_write(res, "2007", "test", 3, blank, 1, NULL, 0, err, sizeof err) != 0 && strstr(err, "blank"),
          "an id with a blank refused: %s", err);
}

/* ------------------------------------------------------------ the tools */

static int run_cmd(char *const argv[], const char *out, const char *errp) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(errp, "w", stderr)) _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct {
    long n;
    int64_t image[4096], cls[4096];
    double score[4096], box[4][4096]; /* box[c]: column x1, y1, x2 or y2 */
} DetRows;

static void add_row(DetRows *r, long image, int cls1, float score, const float *b) {
    if (r->n >= 4096) return;
    r->image[r->n] = image, r->cls[r->n] = cls1, r->score[r->n] = score;
    for (int c = 0; c < 4; c++) r->box[c][r->n] = b[c];
    r->n++;
}

/* /runs/<run>/detections and detection_images as a detection run writes
 * them (experiments/detect_run.c: runlog_table); skip names a detections
 * column left out, images = 0 leaves out detection_images. */
static void write_run(ResultsFile *f, const char *run, const DetRows *d, const char *const *ids, long n_images,
                      const char *skip, int images) {
    RunLog *r = results_run_begin(f, run, "");
    CHECK(r != NULL, "results_run_begin %s: %s", run, results_error(f));
    if (!r) return;
    const ResultsColumn all[7] = {{"image", RCOL_INT64, "index into detection_images", d->image},
                                  {"class", RCOL_INT64, "1..20", d->cls},
                                  {"score", RCOL_FLOAT64, "probability", d->score},
                                  {"x1", RCOL_FLOAT64, "pixels", d->box[0]},
                                  {"y1", RCOL_FLOAT64, "pixels", d->box[1]},
                                  {"x2", RCOL_FLOAT64, "pixels", d->box[2]},
                                  {"y2", RCOL_FLOAT64, "pixels", d->box[3]}};
    ResultsColumn cols[7];
    int nc = 0;
    for (int k = 0; k < 7; k++)
        if (!skip || strcmp(skip, all[k].name)) cols[nc++] = all[k];
    CHECK(runlog_table(r, "detections", d->n, cols, nc) == 0, "%s/detections: %s", run, results_error(f));
    const ResultsColumn ic[1] = {{"id", RCOL_STRING, "VOC image id", ids}};
    if (images)
        CHECK(runlog_table(r, "detection_images", n_images, ic, 1) == 0, "%s/detection_images: %s", run,
              results_error(f));
    CHECK(runlog_end(r, "complete", NAN, NAN, 0) == 0, "runlog_end %s", run);
}

/* runs `run` of h5 through cbnn_voc_results (out dir res): exit 1, stderr
 * naming every string of want, nothing written */
static void expect_refused(const char *exe, const char *h5, const char *run, const char *res, const char *so,
                           const char *se, const char *const *want) {
    int rc = run_cmd((char *[]){(char *)exe, (char *)h5, "--run", (char *)run, "--out", (char *)res, NULL}, so, se);
    char *e = slurp(se);
    int named = e != NULL;
    for (int k = 0; want[k] && named; k++) named = strstr(e, want[k]) != NULL;
    struct stat st;
    CHECK(rc == 1 && named && stat(res, &st) != 0, "run %s refused, named, nothing written: rc %d: %s", run, rc,
          e ? e : "");
    free(e);
}

/* the row of class name in the tool's table: n_gt n_det ap07 ap_all as text */
static int table_row(const char *out, const char *name, long *n_gt, long *n_det, char *ap07, char *apall) {
    char key[64];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(out, key);
    if (!p) return -1;
    char nm[64];
    return sscanf(p + 1, "%63s %ld %ld %31s %31s", nm, n_gt, n_det, ap07, apall) == 5 ? 0 : -1;
}

static void test_tools(const char *results_exe, const char *eval_exe) {
    char devroot[512], devkit[600], err[1024] = "";
    snprintf(devroot, sizeof devroot, "%s/synth", g_tmp);
    snprintf(devkit, sizeof devkit, "%s/VOCdevkit", devroot);
    CHECK(synth_voc_write(devroot, 40, 11, err, sizeof err) == 0, "synth_voc_write: %s", err);
    const char *splits[] = {"VOC2007/test", NULL};
    VocSet *s = voc_open(devkit, splits, 1, err, sizeof err);
    CHECK(s != NULL, "voc_open: %s", err);
    if (!s) return;
    /* GT in memory (0-based: xmin - 1 ...) and the stored detections */
    long m = s->n_objects;
    double *gb = calloc((size_t)m * 4 + 4, sizeof *gb);
    int32_t *gl = calloc((size_t)m + 1, sizeof *gl);
    uint8_t *gd = calloc((size_t)m + 1, 1);
    VocGtImage *gt = calloc((size_t)s->n, sizeof *gt);
    const char **ids = calloc((size_t)s->n, sizeof *ids);
    DetRows *exact = calloc(1, sizeof *exact), *noisy = calloc(1, sizeof *noisy);
    long npos[VOC_NUM_CLASSES] = {0}, ndet[VOC_NUM_CLASSES] = {0};
    int present[VOC_NUM_CLASSES] = {0};
    for (long i = 0, k = 0; i < s->n; i++) {
        const VocAnnotation *a = &s->images[i].ann;
        ids[i] = s->images[i].id;
        gt[i] = (VocGtImage){a->n, gb + 4 * k, gl + k, gd + k};
        for (int j = 0; j < a->n; j++, k++) {
            const VocObject *o = &a->obj[j];
            float b[4] = {o->xmin - 1, o->ymin - 1, o->xmax - 1, o->ymax - 1};
            for (int c = 0; c < 4; c++) gb[4 * k + c] = b[c];
            gl[k] = o->label, gd[k] = (uint8_t)o->difficult;
            npos[o->label] += !o->difficult;
            present[o->label] |= !o->difficult;
            ndet[o->label]++;
            float sc = 0.9f - 0.001f * (float)k;
            add_row(exact, i, o->label + 1, sc, b);
            add_row(noisy, i, o->label + 1, sc, b);
            /* a false positive ranked among them: a 2x2 box in the corner */
            if (j == 0) add_row(noisy, i, o->label + 1, sc - 0.0005f, (float[4]){0, 0, 1, 1});
        }
    }
    /* the exact run gets one lowest-scored false positive per class present: still AP 1 */
    for (int c = 0; c < VOC_NUM_CLASSES; c++)
        if (ndet[c]) add_row(exact, 0, c + 1, 0.01f, (float[4]){0, 0, 1, 1}), ndet[c]++;
    char h5[600];
    snprintf(h5, sizeof h5, "%s/det.h5", g_tmp);
    ResultsFile *f = results_create(h5, "voc_ap_test", "", 1, err, sizeof err);
    CHECK(f != NULL, "results_create: %s", err);
    DetRows *bad = calloc(1, sizeof *bad);
    add_row(bad, 0, 21, 0.5f, (float[4]){0, 0, 1, 1});
    if (f) {
        write_run(f, "exact", exact, ids, s->n, NULL, 1);
        write_run(f, "noisy", noisy, ids, s->n, NULL, 1);
        write_run(f, "badclass", bad, ids, s->n, NULL, 1);
        write_run(f, "nox2", exact, ids, s->n, "x2", 1);
        write_run(f, "noimages", exact, ids, s->n, NULL, 0);
        bad->cls[0] = 1, bad->image[0] = s->n; /* one past the last image */
        write_run(f, "badimage", bad, ids, s->n, NULL, 1);
        RunLog *r = results_run_begin(f, "classify", "");
        CHECK(r && runlog_end(r, "complete", 50, 50, 1) == 0, "run classify");
        CHECK(results_close(f, 1, err, sizeof err) == 0, "results_close: %s", err);
    }

    char so[600], se[600], res[600], res2[600], res3[600];
    snprintf(so, sizeof so, "%s/stdout.txt", g_tmp);
    snprintf(se, sizeof se, "%s/stderr.txt", g_tmp);
    snprintf(res, sizeof res, "%s/res_exact", g_tmp);
    snprintf(res2, sizeof res2, "%s/res_noisy", g_tmp);
    snprintf(res3, sizeof res3, "%s/res_bad", g_tmp);
    int rc = run_cmd((char *[]){(char *)results_exe, h5, "--run", "exact", "--out", res, NULL}, so, se);
    char *e = slurp(se);
    CHECK(rc == 0, "cbnn_voc_results exact: rc %d: %s", rc, e ? e : "");
    free(e);
    rc = run_cmd((char *[]){(char *)eval_exe, "--devkit", devkit, "--results", res, NULL}, so, se);
    char *out = slurp(so);
    e = slurp(se);
    CHECK(rc == 0 && out, "cbnn_voc_eval exact: rc %d: %s", rc, e ? e : "");
    int n_present = 0;
    for (int c = 0; c < VOC_NUM_CLASSES && out; c++) {
        long g = -1, nd = -1;
        char a7[32] = "", aa[32] = "";
        CHECK(table_row(out, VOC_CLASSES[c], &g, &nd, a7, aa) == 0, "no row for %s in:\n%s", VOC_CLASSES[c], out);
        CHECK(g == npos[c] && nd == ndet[c], "%s: n_gt %ld n_det %ld, expected %ld %ld", VOC_CLASSES[c], g, nd,
              npos[c], ndet[c]);
        if (present[c]) {
            n_present++;
            CHECK(!strcmp(a7, "1.0000") && !strcmp(aa, "1.0000"), "%s: AP %s %s, expected 1", VOC_CLASSES[c], a7, aa);
        } else {
            CHECK(!strcmp(a7, "nan") && !strcmp(aa, "nan"), "%s without GT: AP %s %s, expected nan", VOC_CLASSES[c],
                  a7, aa);
        }
    }
    CHECK(n_present >= 3, "the synthetic test set has %d classes (expected several)", n_present);
    char meanrow[32];
    snprintf(meanrow, sizeof meanrow, "\nmean(%d) ", n_present);
    CHECK(out && strstr(out, meanrow) && strstr(strstr(out, meanrow), "1.0000   1.0000"), "mean row:\n%s", out);
    free(out);
    free(e);

    /* noisy: the printed APs are the in-memory ones (0-based, float32 boxes) */
    rc = run_cmd((char *[]){(char *)results_exe, h5, "--run", "noisy", "--out", res2, "--digits", "4", NULL}, so, se);
    CHECK(rc == 0, "cbnn_voc_results noisy: rc %d", rc);
    rc = run_cmd((char *[]){(char *)eval_exe, "--devkit", devkit, "--results", res2, "--iou", "0.5", "--classes",
                            "car,person,dog,aeroplane", NULL},
                 so, se);
    out = slurp(so);
    e = slurp(se);
    CHECK(rc == 0 && out, "cbnn_voc_eval noisy: rc %d: %s", rc, e ? e : "");
    VocDet *dets = calloc((size_t)noisy->n, sizeof *dets);
    for (long i = 0; i < noisy->n; i++) {
        dets[i] = det(noisy->image[i], (int)noisy->cls[i] - 1, noisy->score[i], noisy->box[0][i], noisy->box[1][i],
                      noisy->box[2][i], noisy->box[3][i]);
    }
    const int chosen[4] = {6, 14, 11, 0};
    int below_one = 0;
    for (int k = 0; k < 4 && out; k++) {
        VocApResult r;
        CHECK(voc_ap_class(gt, s->n, dets, noisy->n, chosen[k], 0.5, &r, err, sizeof err) == 0, "%s", err);
        char w7[32], wa[32], a7[32] = "", aa[32] = "";
        long g = -1, nd = -1;
        snprintf(w7, sizeof w7, "%.4f", r.ap07);
        snprintf(wa, sizeof wa, "%.4f", r.ap_all);
        if (isnan(r.ap07)) strcpy(w7, "nan"), strcpy(wa, "nan");
        CHECK(table_row(out, VOC_CLASSES[chosen[k]], &g, &nd, a7, aa) == 0 && !strcmp(a7, w7) && !strcmp(aa, wa) &&
                  g == r.n_gt && nd == r.n_det,
              "%s: tool %s %s, in memory %s %s", VOC_CLASSES[chosen[k]], a7, aa, w7, wa);
        if (present[chosen[k]]) CHECK(r.n_fp > 0, "%s: the false positives count", VOC_CLASSES[chosen[k]]);
        below_one += r.ap07 < 1.0;
    }
    CHECK(below_one > 0, "some class's AP is lowered by the false positives");
    CHECK(out && !strstr(out, "\nbird "), "--classes limits the table");
    free(out);
    free(e);

    /* errors */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no_such_devkit", g_tmp);
    rc = run_cmd((char *[]){(char *)eval_exe, "--devkit", missing, "--results", res, NULL}, so, se);
    e = slurp(se);
    CHECK(rc == 1 && e && strstr(e, missing) && strstr(e, "fetch_voc.sh"), "missing devkit: rc %d: %s", rc,
          e ? e : "");
    free(e);
    char car[1024];
    comp4_path(res, "2007", "test", "car", car, sizeof car);
    write_text(car, "no_such_image 0.5 1 1 5 5\n");
    rc = run_cmd((char *[]){(char *)eval_exe, "--devkit", devkit, "--results", res, NULL}, so, se);
    e = slurp(se);
    char where[1100];
    snprintf(where, sizeof where, "%s:1:", car);
    CHECK(rc == 1 && e && strstr(e, where), "bad comp4 file: rc %d: %s", rc, e ? e : "");
    free(e);
    expect_refused(results_exe, h5, "badclass", res3, so, se, (const char *[]){"row 0", "class", NULL});
    expect_refused(results_exe, h5, "badimage", res3, so, se, (const char *[]){"row 0", "image", NULL});
    expect_refused(results_exe, h5, "nox2", res3, so, se, (const char *[]){"/runs/nox2/detections", "'x2'", NULL});
    expect_refused(results_exe, h5, "noimages", res3, so, se, (const char *[]){"no detection_images", NULL});
    rc = run_cmd((char *[]){(char *)results_exe, h5, "--run", "classify", "--out", res3, NULL}, so, se);
    e = slurp(se);
    CHECK(rc == 1 && e && strstr(e, "no detections"), "run without detections: rc %d: %s", rc, e ? e : "");
    free(e);
    rc = run_cmd((char *[]){(char *)results_exe, h5, "--run", "nope", "--out", res3, NULL}, so, se);
    e = slurp(se);
    CHECK(rc == 1 && e && strstr(e, "no run 'nope'"), "unknown run: rc %d: %s", rc, e ? e : "");
    free(e);
    rc = run_cmd((char *[]){(char *)results_exe, "--help", NULL}, so, se);
    out = slurp(so);
    CHECK(rc == 0 && out && strstr(out, "usage: cbnn_voc_results"), "--help");
    free(out);
    rc = run_cmd((char *[]){(char *)eval_exe, "--help", NULL}, so, se);
    out = slurp(so);
    CHECK(rc == 0 && out && strstr(out, "usage: cbnn_voc_eval"), "--help");
    free(out);
    rc = run_cmd((char *[]){(char *)eval_exe, "--devkit", devkit, "--results", res, "--classes", "cat,unicorn", NULL},
                 so, se);
    e = slurp(se);
    CHECK(rc == 2 && e && strstr(e, "unicorn"), "--classes unicorn: rc %d: %s", rc, e ? e : "");
    free(e);

    free(dets);
    free(gb);
    free(gl);
    free(gd);
    free(gt);
    free(ids);
    free(exact);
    free(noisy);
    free(bad);
    voc_close(s);
}

/* the tools: argv, else ../analysis/ of this executable's directory (the build tree) */
static void tool_path(char *out, size_t n, int argc, char **argv, int k, const char *name) {
    if (argc > k) {
        if (!realpath(argv[k], out)) snprintf(out, n, "%s", argv[k]);
        return;
    }
    char self[4096];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    self[l > 0 ? l : 0] = 0;
    snprintf(out, n, "%s/../analysis/%s", dirname(self), name);
}

int main(int argc, char **argv) {
    char results_exe[4200], eval_exe[4200];
    tool_path(results_exe, sizeof results_exe, argc, argv, 1, "cbnn_voc_results");
    tool_path(eval_exe, sizeof eval_exe, argc, argv, 2, "cbnn_voc_eval");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/cbnn_test_voc_ap.XXXXXX");
    if (!mkdtemp(g_tmp)) return 2;
    test_thresholds();
    test_issue_case();
    test_recall_03();
    test_numpy_sum();
    test_difficult();
    test_duplicate();
    test_iou_threshold();
    test_nan_and_bad();
    test_box_recall();
    test_comp4();
    test_comp4_errors();
    CHECK(access(results_exe, X_OK) == 0 && access(eval_exe, X_OK) == 0, "tools %s and %s not found", results_exe,
          eval_exe);
    if (access(results_exe, X_OK) == 0 && access(eval_exe, X_OK) == 0) test_tools(results_exe, eval_exe);
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return tu_finish("test_voc_ap");
}
