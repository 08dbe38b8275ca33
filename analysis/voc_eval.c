/* cbnn_voc_eval: score comp4 detection files against a VOCdevkit's
 * annotations, as py-faster-rcnn's voc_eval.py does (tasks/voc_ap.h).
 *
 *   cbnn_voc_eval --devkit DIR [--year 2007] [--set test] --results DIR
 *                 [--iou 0.5] [--classes LIST]
 *
 * DIR is the VOCdevkit directory (holding VOC2007/); the image set is
 * DIR/VOC<year>/ImageSets/Main/<set>.txt, the annotations are read with
 * difficult objects kept (and flagged), the detections from
 * RESULTS/VOC<year>/Main/comp4_det_<set>_<class>.txt (tasks/comp4.h).
 *
 * Coordinates: compared in the devkit's 1-based system, as voc_eval.py does:
 * the XML numbers and the file's numbers are used as they are, no arithmetic
 * on either side (so the IoUs are the reference's to the bit).
 *
 * Prints one row per class (n_gt = non-difficult boxes, n_det, AP07, the
 * all-point AP, the final recall) and the mean over the classes that have
 * ground truth (a class without any is NaN, printed "nan", left out). The
 * reference uses AP07 for years before 2010 and the all-point AP after;
 * both are printed. Exit 0, 1 on bad data (a message naming the file and
 * line), 2 on a bad command line. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/voc.h"
#include "tasks/comp4.h"
#include "tasks/voc_ap.h"

#define ERRLEN 8192

static void usage(FILE *o) {
    fprintf(o,
            "usage: cbnn_voc_eval --devkit DIR [--year 2007] [--set test] --results DIR [--iou 0.5] [--classes LIST]\n"
            "Scores the detection files RESULTS/VOC<year>/Main/comp4_det_<set>_<class>.txt (cbnn_voc_results\n"
            "writes them; 1-based boxes, as the devkit) against DIR/VOC<year> (DIR = the VOCdevkit directory;\n"
            "datasets/fetch_voc.sh downloads it), as py-faster-rcnn's voc_eval.py: a detection is a true\n"
            "positive when its best-overlapping box of the class has IoU > --iou (default 0.5) and is not\n"
            "taken yet; difficult boxes are ignored. Prints per class n_gt (non-difficult boxes), n_det, the\n"
            "VOC07 11-point AP, the all-point AP (VOC2010+) and the recall, and their means over the classes\n"
            "with ground truth. --classes: comma-separated VOC class names (default: all 20).\n");
}

/* "car,person" -> class indices; -1 with a message on an unknown name */
static int parse_classes(const char *list, int *cls, int *n, char *err) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf) {
        snprintf(err, ERRLEN, "--classes: list too long");
        return -1;
    }
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int c = -1;
        for (int k = 0; k < VOC_NUM_CLASSES; k++)
            if (!strcmp(t, VOC_CLASSES[k])) c = k;
        if (c < 0) {
            snprintf(err, ERRLEN, "--classes: '%s' is not a VOC class (aeroplane ... tvmonitor)", t);
            return -1;
        }
        for (int k = 0; k < *n; k++)
            if (cls[k] == c) {
                snprintf(err, ERRLEN, "--classes: '%s' is listed twice", t);
                return -1;
            }
        cls[(*n)++] = c;
    }
    if (*n == 0) {
        snprintf(err, ERRLEN, "--classes: empty list");
        return -1;
    }
    return 0;
}

/* the devkit is there, or a message naming what is missing and the fetch script */
static int check_devkit(const char *devkit, const char *year, const char *set, char *err) {
    char split[4096];
    struct stat st;
    snprintf(split, sizeof split, "%s/VOC%s/ImageSets/Main/%s.txt", devkit, year, set);
    if (stat(devkit, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, ERRLEN,
                 "no VOCdevkit directory at %s: datasets/fetch_voc.sh DEST downloads PASCAL VOC (then --devkit "
                 "DEST/VOCdevkit); build/make_voc writes a synthetic one",
                 devkit);
        return -1;
    }
    if (stat(split, &st) != 0) {
        snprintf(err, ERRLEN, "%s: %s: %s is not a complete VOCdevkit (datasets/fetch_voc.sh downloads VOC2007 "
                 "test and trainval)", split, strerror(errno), devkit);
        return -1;
    }
    return 0;
}

typedef struct {
    VocSet *set;
    VocGtImage *gt;
    const char **ids;
    double *boxes;
    int32_t *labels;
    uint8_t *difficult;
} Truth;

static void truth_free(Truth *t) {
    if (t->set) voc_close(t->set);
    free(t->gt);
    free(t->ids);
    free(t->boxes);
    free(t->labels);
    free(t->difficult);
}

/* the annotations as VocGtImages, boxes exactly as the XML has them (1-based) */
static int load_truth(const char *devkit, const char *year, const char *set, Truth *t, char *err) {
    memset(t, 0, sizeof *t);
    char split[512];
    snprintf(split, sizeof split, "VOC%s/%s", year, set);
    const char *splits[] = {split, NULL};
    VocOpenOptions o = {.keep_difficult = 1, .skip_bad = 0, .check_images = 0};
    t->set = voc_open_ex(devkit, splits, &o, err, ERRLEN);
    if (!t->set) return -1;
    long n = t->set->n, m = t->set->n_objects;
    t->gt = calloc((size_t)n, sizeof *t->gt);
    t->ids = calloc((size_t)n, sizeof *t->ids);
    t->boxes = calloc((size_t)m * 4 + 1, sizeof *t->boxes);
    t->labels = calloc((size_t)m + 1, sizeof *t->labels);
    t->difficult = calloc((size_t)m + 1, 1);
    if (!t->gt || !t->ids || !t->boxes || !t->labels || !t->difficult) {
        snprintf(err, ERRLEN, "out of memory for %ld annotations", n);
        return -1;
    }
    long k = 0;
    for (long i = 0; i < n; i++) {
        const VocAnnotation *a = &t->set->images[i].ann;
        t->ids[i] = t->set->images[i].id;
        t->gt[i] = (VocGtImage){a->n, t->boxes + 4 * k, t->labels + k, t->difficult + k};
        for (int j = 0; j < a->n; j++, k++) {
            const VocObject *ob = &a->obj[j];
            double *b = t->boxes + 4 * k;
            b[0] = ob->xmin, b[1] = ob->ymin, b[2] = ob->xmax, b[3] = ob->ymax;
            t->labels[k] = ob->label;
            t->difficult[k] = ob->difficult != 0;
        }
    }
    return 0;
}

static const char *fmt_ap(char *buf, double v) {
    if (isnan(v)) return "nan";
    snprintf(buf, 32, "%.4f", v);
    return buf;
}

#define AP(v) fmt_ap((char[32]){0}, (v))

/* every class first, then the table: an error prints no partial table */
static int evaluate(const Truth *t, const VocDet *dets, long nd, const int *cls, int n_cls, double iou,
                    char *err) {
    VocApResult r[VOC_NUM_CLASSES];
    double ap07[VOC_NUM_CLASSES], apall[VOC_NUM_CLASSES], rec[VOC_NUM_CLASSES];
    long sum_gt = 0, sum_det = 0;
    int with_gt = 0;
    for (int k = 0; k < n_cls; k++) {
        if (voc_ap_class(t->gt, t->set->n, dets, nd, cls[k], iou, &r[k], err, ERRLEN)) return -1;
        ap07[k] = r[k].ap07, apall[k] = r[k].ap_all, rec[k] = r[k].recall;
        sum_gt += r[k].n_gt, sum_det += r[k].n_det;
        with_gt += r[k].n_gt > 0;
    }
    printf("%-12s %7s %7s %8s %8s %8s\n", "class", "n_gt", "n_det", "AP07", "AP_all", "recall");
    for (int k = 0; k < n_cls; k++)
        printf("%-12s %7ld %7ld %8s %8s %8s\n", VOC_CLASSES[cls[k]], r[k].n_gt, r[k].n_det, AP(r[k].ap07),
               AP(r[k].ap_all), AP(r[k].recall));
    char label[32];
    snprintf(label, sizeof label, "mean(%d)", with_gt);
    printf("%-12s %7ld %7ld %8s %8s %8s\n", label, sum_gt, sum_det, AP(voc_ap_mean(ap07, n_cls)),
           AP(voc_ap_mean(apall, n_cls)), AP(voc_ap_mean(rec, n_cls)));
    return 0;
}

int main(int argc, char **argv) {
    const char *devkit = NULL, *results = NULL, *year = "2007", *set = "test", *classes = NULL;
    double iou = 0.5;
    char err[ERRLEN];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        const char **dst = !strcmp(a, "--devkit")    ? &devkit
                           : !strcmp(a, "--results") ? &results
                           : !strcmp(a, "--year")    ? &year
                           : !strcmp(a, "--set")     ? &set
                           : !strcmp(a, "--classes") ? &classes
                                                     : NULL;
        int is_iou = !strcmp(a, "--iou");
        if (!dst && !is_iou) {
            fprintf(stderr, "cbnn_voc_eval: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cbnn_voc_eval: %s needs a value\n", a);
            return 2;
        }
        if (dst) {
            *dst = argv[++i];
            continue;
        }
        char *end;
        iou = strtod(argv[++i], &end);
        if (end == argv[i] || *end || !(iou >= 0.0 && iou < 1.0)) {
            fprintf(stderr, "cbnn_voc_eval: --iou %s: expected a number in [0, 1)\n", argv[i]);
            return 2;
        }
    }
    if (!devkit || !results) {
        fprintf(stderr, "cbnn_voc_eval: --devkit and --results are required\n");
        usage(stderr);
        return 2;
    }
    if (!*year || strpbrk(year, "/") || !*set || strpbrk(set, "/")) {
        fprintf(stderr, "cbnn_voc_eval: --year and --set are names, not paths\n");
        return 2;
    }
    int cls[VOC_NUM_CLASSES], n_cls = VOC_NUM_CLASSES;
    for (int k = 0; k < VOC_NUM_CLASSES; k++) cls[k] = k;
    if (classes && parse_classes(classes, cls, &n_cls, err)) {
        fprintf(stderr, "cbnn_voc_eval: %s\n", err);
        return 2;
    }
    if (check_devkit(devkit, year, set, err)) {
        fprintf(stderr, "cbnn_voc_eval: %s\n", err);
        return 1;
    }
    Truth t;
    VocDet *dets = NULL;
    long nd = 0;
    int rc = 1;
    if (load_truth(devkit, year, set, &t, err) ||
        comp4_read(results, year, set, t.ids, t.set->n, cls, n_cls, 1, &dets, &nd, err, ERRLEN)) {
        fprintf(stderr, "cbnn_voc_eval: %s\n", err);
        goto out;
    }
    printf("# cbnn_voc_eval: %s VOC%s/%s (%ld images), detections %s, IoU > %g, boxes 1-based as the devkit\n",
           devkit, year, set, t.set->n, results, iou);
    fflush(stdout);
    if (evaluate(&t, dets, nd, cls, n_cls, iou, err)) {
        fprintf(stderr, "cbnn_voc_eval: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    free(dets);
    truth_free(&t);
    return rc;
}
