/* VOC detection AP as voc_eval.py computes it (tasks/voc_ap.h). */
#include "voc_ap.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

double voc_ap07_threshold(int i) {
    /* numpy's arange fills element i with start + i * delta, delta = (start +
     * step) - start = 0.1: so 3 * 0.1, not the literal 0.3 */
    return 0.0 + (double)i * 0.1;
}

double voc_iou(const double *a, const double *b) {
    double ixmin = fmax(b[0], a[0]), iymin = fmax(b[1], a[1]);
    double ixmax = fmin(b[2], a[2]), iymax = fmin(b[3], a[3]);
    double iw = fmax(ixmax - ixmin + 1.0, 0.0), ih = fmax(iymax - iymin + 1.0, 0.0);
    double inters = iw * ih;
    /* the reference's order: detection area + GT area - intersection */
    double uni = (a[2] - a[0] + 1.0) * (a[3] - a[1] + 1.0) + (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0) - inters;
    return inters / uni;
}

/* numpy's pairwise summation of a contiguous float64 array (its add.reduce
 * inner loop: 8 accumulators up to 128 terms, halves above), started from
 * the identity 0 */
static double pairwise_sum(const double *a, long n) {
    if (n < 8) {
        double res = 0.0;
        for (long i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        long i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    long n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

double voc_ap_11point(const double *rec, const double *prec, long n) {
    double ap = 0.0;
    for (int i = 0; i <= 10; i++) {
        double t = voc_ap07_threshold(i), p = 0.0;
        int any = 0;
        for (long k = 0; k < n; k++)
            if (rec[k] >= t) {
                if (!any || prec[k] > p) p = prec[k];
                any = 1;
            }
        ap = ap + p / 11.0;
    }
    return ap;
}

double voc_ap_allpoint(const double *rec, const double *prec, long n) {
    double *mrec = malloc(sizeof *mrec * (size_t)(n + 2)), *mpre = malloc(sizeof *mpre * (size_t)(n + 2));
    double *terms = malloc(sizeof *terms * (size_t)(n + 1));
    double ap = NAN;
    if (!mrec || !mpre || !terms) goto out;
    mrec[0] = 0.0, mpre[0] = 0.0;
    for (long k = 0; k < n; k++) mrec[k + 1] = rec[k], mpre[k + 1] = prec[k];
    mrec[n + 1] = 1.0, mpre[n + 1] = 0.0;
    /* the envelope, right to left */
    for (long i = n + 1; i > 0; i--)
        if (mpre[i] > mpre[i - 1]) mpre[i - 1] = mpre[i];
    /* the points where recall changes, summed as np.sum does */
    long m = 0;
    for (long i = 0; i < n + 1; i++)
        if (mrec[i + 1] != mrec[i]) terms[m++] = (mrec[i + 1] - mrec[i]) * mpre[i + 1];
    ap = 0.0 + pairwise_sum(terms, m);
out:
    free(mrec);
    free(mpre);
    free(terms);
    return ap;
}

double voc_ap_mean(const double *ap, int n) {
    double s = 0.0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(ap[i])) s += ap[i], k++;
    return k ? s / k : NAN;
}

static int box_finite(const double *b) {
    return isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]);
}

typedef struct {
    double score;
    long idx;
} Order;

/* descending score, ties in input order: a total order, so qsort is stable here */
static int order_cmp(const void *pa, const void *pb) {
    const Order *a = pa, *b = pb;
    if (a->score > b->score) return -1;
    if (a->score < b->score) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* the detections of class cls, checked, in the order they are taken */
static Order *sorted_dets(long n_images, const VocDet *dets, long n_dets, int cls, long *n_out, char *err,
                          size_t errlen) {
    long n = 0;
    for (long i = 0; i < n_dets; i++) {
        if (dets[i].label != cls) continue;
        if (dets[i].image < 0 || dets[i].image >= n_images) {
            fail(err, errlen, "detection %ld: image %ld is outside [0, %ld)", i, dets[i].image, n_images);
            return NULL;
        }
        if (!isfinite(dets[i].score) || !box_finite(dets[i].box)) {
            fail(err, errlen, "detection %ld (image %ld, class %d): non-finite score or box (%g; %g %g %g %g)", i,
                 dets[i].image, cls, dets[i].score, dets[i].box[0], dets[i].box[1], dets[i].box[2], dets[i].box[3]);
            return NULL;
        }
        n++;
    }
    Order *o = malloc(sizeof *o * (size_t)(n ? n : 1));
    if (!o) {
        fail(err, errlen, "out of memory for %ld detections", n);
        return NULL;
    }
    n = 0;
    for (long i = 0; i < n_dets; i++)
        if (dets[i].label == cls) o[n].score = dets[i].score, o[n].idx = i, n++;
    qsort(o, (size_t)n, sizeof *o, order_cmp);
    *n_out = n;
    return o;
}

/* npos and the offsets of each image's flags; -1 on a non-finite GT box */
static long count_gt(const VocGtImage *gt, long n_images, int cls, long *offset, char *err, size_t errlen) {
    long npos = 0, total = 0;
    for (long i = 0; i < n_images; i++) {
        offset[i] = total;
        total += gt[i].n;
        for (int j = 0; j < gt[i].n; j++) {
            if (gt[i].labels[j] != cls) continue;
            if (!box_finite(gt[i].boxes + 4 * j))
                return fail(err, errlen, "image %ld: ground-truth box %d of class %d is not finite", i, j, cls);
            if (!(gt[i].difficult && gt[i].difficult[j])) npos++;
        }
    }
    offset[n_images] = total;
    return npos;
}

/* +1 TP, -1 FP, 0 neither (a difficult box) for detection d */
static int match_one(const VocGtImage *g, const VocDet *d, int cls, double iou_thresh, uint8_t *taken) {
    double ovmax = -INFINITY;
    int jmax = -1;
    for (int j = 0; j < g->n; j++) {
        if (g->labels[j] != cls) continue;
        double ov = voc_iou(d->box, g->boxes + 4 * j);
        /* np.max / np.argmax: the first maximum; a NaN is the maximum */
        if (isnan(ov)) {
            ovmax = ov, jmax = j;
            break;
        }
        if (jmax < 0 || ov > ovmax) ovmax = ov, jmax = j;
    }
    if (!(ovmax > iou_thresh)) return -1;
    if (g->difficult && g->difficult[jmax]) return 0;
    if (taken[jmax]) return -1;
    taken[jmax] = 1;
    return 1;
}

int voc_ap_class(const VocGtImage *gt, long n_images, const VocDet *dets, long n_dets, int cls, double iou_thresh,
                 VocApResult *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    long nd = 0, *offset = malloc(sizeof *offset * (size_t)(n_images + 1));
    if (!offset) return fail(err, errlen, "out of memory for %ld images", n_images);
    long npos = count_gt(gt, n_images, cls, offset, err, errlen);
    Order *o = npos < 0 ? NULL : sorted_dets(n_images, dets, n_dets, cls, &nd, err, errlen);
    uint8_t *taken = o ? calloc((size_t)offset[n_images] + 1, 1) : NULL;
    double *rec = o ? malloc(sizeof *rec * (size_t)(nd + 1)) : NULL;
    double *prec = o ? malloc(sizeof *prec * (size_t)(nd + 1)) : NULL;
    int rc = -1;
    if (o && (!taken || !rec || !prec)) fail(err, errlen, "out of memory for %ld detections", nd);
    if (!o || !taken || !rec || !prec) goto out;
    long tp = 0, fp = 0;
    for (long k = 0; k < nd; k++) {
        const VocDet *d = &dets[o[k].idx];
        int r = match_one(&gt[d->image], d, cls, iou_thresh, taken + offset[d->image]);
        tp += r > 0, fp += r < 0;
        rec[k] = (double)tp / (double)npos;
        prec[k] = (double)tp / fmax((double)(tp + fp), DBL_EPSILON);
    }
    out->n_gt = npos, out->n_det = nd, out->n_tp = tp, out->n_fp = fp;
    if (npos == 0) {
        out->ap07 = out->ap_all = out->recall = NAN;
    } else {
        out->ap07 = voc_ap_11point(rec, prec, nd);
        out->ap_all = voc_ap_allpoint(rec, prec, nd);
        out->recall = (double)tp / (double)npos;
        if (isnan(out->ap_all)) {
            fail(err, errlen, "out of memory for the precision envelope (%ld points)", nd);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc) memset(out, 0, sizeof *out);
    free(offset);
    free(o);
    free(taken);
    free(rec);
    free(prec);
    return rc;
}

double voc_box_recall(const VocGtImage *gt, long n_images, const double *const *boxes, const int *counts,
                      double thresh) {
    long n = 0, hit = 0;
    for (long i = 0; i < n_images; i++)
        for (int j = 0; j < gt[i].n; j++) {
            if (gt[i].difficult && gt[i].difficult[j]) continue;
            n++;
            double best = -INFINITY;
            for (int k = 0; k < counts[i]; k++) best = fmax(best, voc_iou(boxes[i] + 4 * k, gt[i].boxes + 4 * j));
            hit += best >= thresh;
        }
    return n ? (double)hit / (double)n : NAN;
}

int voc_gt_from_set(const VocSet *s, VocGtSet *g) {
    long nb = 0;
    for (long i = 0; i < s->n; i++) nb += s->images[i].ann.n;
    g->img = calloc((size_t)s->n + 1, sizeof *g->img);
    g->boxes = malloc(((size_t)nb + 1) * 4 * sizeof *g->boxes);
    g->labels = malloc(((size_t)nb + 1) * sizeof *g->labels);
    g->difficult = malloc((size_t)nb + 1);
    if (!g->img || !g->boxes || !g->labels || !g->difficult) {
        voc_gt_free(g);
        return -1;
    }
    long k = 0;
    for (long i = 0; i < s->n; i++) {
        const VocAnnotation *a = &s->images[i].ann;
        g->img[i] = (VocGtImage){.n = a->n, .boxes = g->boxes + 4 * k, .labels = g->labels + k,
                                 .difficult = g->difficult + k};
        for (int j = 0; j < a->n; j++, k++) {
            const VocObject *o = &a->obj[j];
            g->boxes[4 * k] = o->xmin - 1, g->boxes[4 * k + 1] = o->ymin - 1;
            g->boxes[4 * k + 2] = o->xmax - 1, g->boxes[4 * k + 3] = o->ymax - 1;
            g->labels[k] = o->label + 1;
            g->difficult[k] = (uint8_t)o->difficult;
        }
    }
    return 0;
}

void voc_gt_free(VocGtSet *g) {
    free(g->img);
    free(g->boxes);
    free(g->labels);
    free(g->difficult);
    memset(g, 0, sizeof *g);
}
