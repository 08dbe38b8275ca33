/* PASCAL VOC detection AP, computed as the official py-faster-rcnn
 * lib/datasets/voc_eval.py computes it (issue 14), in double throughout:
 *
 *   per class, the detections sorted by descending score; each one taken in
 *   turn is matched to the ground-truth box of its image and class with the
 *   largest IoU (+1 convention: w = x2 - x1 + 1; the first of equal maxima;
 *   difficult boxes included). IoU > iou_thresh (strictly) and the box
 *   difficult: neither TP nor FP; not difficult and free: TP, the box is
 *   taken; already taken: FP (even when another free box also overlaps: the
 *   reference does not fall back). IoU <= iou_thresh or no box: FP.
 *   npos = the non-difficult boxes of the class; rec = tp / npos;
 *   prec = tp / max(tp + fp, 2^-52) (numpy's float64 eps).
 *   AP07 (VOC2007's 11 points): sum over t_i = i * 0.1, i = 0..10, in double
 *   (np.arange(0., 1.1, 0.1) fills start + i * step, so t_3 =
 *   0.30000000000000004, t_6 = 0.6000000000000001, t_7 = 0.7000000000000001)
 *   of max(prec[rec >= t_i]) (0 when none) / 11, added one by one.
 *   AP all-point (VOC2010+): the precision envelope of [0, prec.., 0] over
 *   [0, rec.., 1], summed (delta rec * envelope) where recall changes, with
 *   numpy's pairwise summation (the same bits for up to 8192 recall steps).
 *
 * Ordering of equal scores: the reference's np.argsort(-confidence) is
 * numpy's default quicksort (introsort, or the SIMD sort on AVX-512
 * machines), which is not stable once a class has more than 16 detections:
 * its order of ties is an accident of the algorithm. Here the sort is stable
 * (equal scores keep their input order: for comp4 files, the file's order),
 * so tied detections may be taken in a different order than one numpy run.
 *
 * A class without non-difficult GT (npos = 0) gets NaN for both APs and the
 * recall (issue 14's decision). The reference divides 0 by 0 there: its rec
 * is all NaN, which makes its AP07 0 and its all-point AP NaN (0 when the
 * class also has no detection). voc_ap_mean leaves NaN out.
 *
 * Coordinates: any one system, the same for the GT and the detections (the
 * IoU is translation invariant as long as the translation is exact: 0-based
 * or the devkit's 1-based give identical bits for coordinates >= 1). */
#ifndef CBNN_VOC_AP_H
#define CBNN_VOC_AP_H

#include <stddef.h>
#include <stdint.h>

#include "voc.h"

/* numpy's np.arange(0., 1.1, 0.1)[i] */
double voc_ap07_threshold(int i);

/* The ground truth of one image. */
typedef struct {
    int n;                     /* boxes */
    const double *boxes;       /* [n][4] x1 y1 x2 y2, inclusive pixels */
    const int32_t *labels;     /* [n] class, 0..n_classes-1 (VOC_CLASSES order for VOC) */
    const uint8_t *difficult;  /* [n] 1 = difficult; NULL = none is */
} VocGtImage;

/* One detection. */
typedef struct {
    long image;      /* index into the VocGtImage array */
    int label;       /* class */
    double score;
    double box[4];   /* x1 y1 x2 y2, the same coordinates as the GT */
} VocDet;

typedef struct {
    double ap07, ap_all;
    long n_gt;       /* npos: non-difficult GT boxes of the class */
    long n_det;      /* detections of the class */
    long n_tp, n_fp; /* the others matched a difficult box */
    double recall;   /* n_tp / n_gt at the IoU threshold (the last point of the curve); NaN when n_gt = 0 */
} VocApResult;

/* AP of class cls over n_images images. Detections of other classes are
 * skipped. Returns 0, or -1 with a message (a detection with a non-finite
 * score or box, an image index outside [0, n_images), a non-finite GT box,
 * out of memory) and *out zeroed. */
int voc_ap_class(const VocGtImage *gt, long n_images, const VocDet *dets, long n_dets, int cls, double iou_thresh,
                 VocApResult *out, char *err, size_t errlen);

/* The mean of the values that are not NaN; NaN when all are. */
double voc_ap_mean(const double *ap, int n);

/* The AP of recall/precision curves (rec, prec of n points, as the matching
 * above makes them: no NaN): voc_eval.py's voc_ap(), use_07_metric = 1 and 0.
 * voc_ap_allpoint returns NaN when out of memory. */
double voc_ap_11point(const double *rec, const double *prec, long n);
double voc_ap_allpoint(const double *rec, const double *prec, long n);

/* The IoU voc_eval.py computes, in double, +1 convention (may be NaN or
 * infinite for degenerate boxes, as numpy's would). */
double voc_iou(const double *a, const double *b);

/* Proposal recall: the fraction of non-difficult GT boxes (all classes) whose
 * best IoU with any box of its image (boxes[i] of counts[i] boxes, any class)
 * is >= thresh; NaN when there is no such GT box. */
double voc_box_recall(const VocGtImage *gt, long n_images, const double *const *boxes, const int *counts,
                      double thresh);

/* The ground truth of every image of a VocSet as VocGtImages: boxes in
 * 0-based inclusive pixels (the devkit's numbers minus 1, the detector's
 * convention), classes 1..20 (VOC_CLASSES index + 1, 0 being background),
 * difficult flags; img[i] is set image i. 0, or -1 when out of memory. */
typedef struct {
    VocGtImage *img;           /* [n images] */
    double *boxes;
    int32_t *labels;
    uint8_t *difficult;
} VocGtSet;
int voc_gt_from_set(const VocSet *s, VocGtSet *g);
void voc_gt_free(VocGtSet *g);

#endif
