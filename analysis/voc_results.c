/* cbnn_voc_results: the detections a detection run stored in its results
 * file -> the devkit's comp4 files (tasks/comp4.h), so the official devkit,
 * py-faster-rcnn's voc_eval.py or cbnn_voc_eval can score them.
 *
 *   cbnn_voc_results RESULTS.h5 --run NAME --out DIR [--digits 3] [--year 2007] [--set test]
 *
 * Reads two tables of the run (experiments/results_h5.h runlog_table: one
 * 1-D dataset per column, all of a table's columns equally long):
 *   /runs/NAME/detections        image  int64    index into detection_images
 *                                class  int64    1..20: VOC_CLASSES order + 1 (0 is the background)
 *                                score  float64
 *                                x1 y1 x2 y2 float64  0-based inclusive pixels of the original image
 *   /runs/NAME/detection_images  id     variable-length string: the VOC ids, one row per test image
 * and writes DIR/VOC<year>/Main/comp4_det_<set>_<class>.txt, the 20 of them,
 * boxes +1 (1-based) and scores with --digits decimals (py-faster-rcnn: 3).
 * Everything is read and checked before anything is written; the files
 * appear whole or not at all. Exit 0, 1 on bad data, 2 on a bad command line. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/voc.h"
#include "tasks/comp4.h"

#define ERRLEN 8192

static void usage(FILE *o) {
    fprintf(o, "usage: cbnn_voc_results RESULTS.h5 --run NAME --out DIR [--digits 3] [--year 2007] [--set test]\n"
               "Writes the detections of run NAME (the tables /runs/NAME/detections: image, class 1..20, score,\n"
               "x1 y1 x2 y2 0-based; and /runs/NAME/detection_images: id) as the VOC devkit's result files\n"
               "DIR/VOC<year>/Main/comp4_det_<set>_<class>.txt (`id score x1 y1 x2 y2`, boxes 1-based, scores\n"
               "with --digits decimals), which cbnn_voc_eval and the official devkit score.\n");
}

static const char *const BOX_COLS[4] = {"x1", "y1", "x2", "y2"};

typedef struct {
    long n, n_images;
    int64_t *image, *cls;
    double *score, *box[4];
    char **ids;
} Stored;

static void stored_free(Stored *s) {
    free(s->image);
    free(s->cls);
    free(s->score);
    for (int k = 0; k < 4; k++) free(s->box[k]);
    for (long i = 0; s->ids && i < s->n_images; i++) free(s->ids[i]);
    free(s->ids);
}

/* Open column `name` of table g (named `where` in messages): a 1-D dataset
 * whose stored type is of class want (H5T_INTEGER, H5T_FLOAT, H5T_STRING) and,
 * when *n >= 0, *n rows long (else *n is set). -1 with a message otherwise. */
static hid_t open_column(hid_t g, const char *where, const char *name, H5T_class_t want, long *n, char *err) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) {
        snprintf(err, ERRLEN, "%s has no column '%s'", where, name);
        return -1;
    }
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) {
        snprintf(err, ERRLEN, "%s/%s is not a dataset", where, name);
        return -1;
    }
    hid_t sp = H5Dget_space(ds), ft = H5Dget_type(ds);
    hsize_t d[1] = {0};
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (rank == 1) H5Sget_simple_extent_dims(sp, d, NULL);
    H5T_class_t got = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
    int vlen = got == H5T_STRING && H5Tis_variable_str(ft) > 0;
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    const char *what = want == H5T_INTEGER ? "an integer (int64)" : want == H5T_FLOAT ? "a float64"
                                                                                      : "a variable-length string";
    if (rank != 1 || got != want || (want == H5T_STRING && !vlen)) {
        snprintf(err, ERRLEN, "%s/%s is not %s column (rank %d)", where, name, what, rank);
    } else if (*n >= 0 && (long)d[0] != *n) {
        snprintf(err, ERRLEN, "%s/%s has %llu rows, the table's first column %ld", where, name,
                 (unsigned long long)d[0], *n);
    } else {
        *n = (long)d[0];
        return ds;
    }
    H5Dclose(ds);
    return -1;
}

/* a number column read whole as memtype (NATIVE_INT64 or NATIVE_DOUBLE) */
static void *read_numbers(hid_t g, const char *where, const char *name, int is_int, long *n, char *err) {
    hid_t ds = open_column(g, where, name, is_int ? H5T_INTEGER : H5T_FLOAT, n, err);
    if (ds < 0) return NULL;
    size_t elem = is_int ? sizeof(int64_t) : sizeof(double);
    void *buf = calloc((size_t)*n + 1, elem);
    if (!buf) {
        snprintf(err, ERRLEN, "out of memory for %s/%s", where, name);
    } else if (*n && H5Dread(ds, is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                             buf) < 0) {
        snprintf(err, ERRLEN, "%s/%s cannot be read", where, name);
        free(buf);
        buf = NULL;
    }
    H5Dclose(ds);
    return buf;
}

/* detection_images/id: the ids as malloc'd strings (NULL reads as "") */
static int read_ids(hid_t g, const char *where, Stored *s, char *err) {
    s->n_images = -1;
    hid_t ds = open_column(g, where, "id", H5T_STRING, &s->n_images, err);
    if (ds < 0) return -1;
    int rc = -1;
    hid_t mt = H5Tcopy(H5T_C_S1), sp = H5Dget_space(ds);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char **v = calloc((size_t)s->n_images + 1, sizeof *v);
    s->ids = calloc((size_t)s->n_images + 1, sizeof *s->ids);
    if (v && s->ids && (s->n_images == 0 || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0)) {
        rc = 0;
        for (long i = 0; i < s->n_images; i++)
            if (!(s->ids[i] = strdup(v[i] ? v[i] : ""))) rc = -1;
        if (s->n_images) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
    }
    if (rc) snprintf(err, ERRLEN, "%s/id cannot be read as strings", where);
    free(v);
    H5Sclose(sp);
    H5Tclose(mt);
    H5Dclose(ds);
    return rc;
}

/* group `name` of run group rg, or -1 with a message naming what is missing */
static hid_t open_table(hid_t f, const char *path, const char *run, const char *name, char *where, size_t wlen,
                        char *err) {
    char grp[600];
    snprintf(grp, sizeof grp, "/runs/%s/%s", run, name);
    snprintf(where, wlen, "%s: %s", path, grp);
    hid_t g = -1;
    if (H5Lexists(f, grp, H5P_DEFAULT) <= 0 || (g = H5Gopen2(f, grp, H5P_DEFAULT)) < 0)
        snprintf(err, ERRLEN, "%s: run '%s' has no %s (no group %s): not a detection run, or it has not finished",
                 path, run, name, grp);
    return g;
}

static int read_detections(const char *path, const char *run, Stored *s, char *err) {
    memset(s, 0, sizeof *s);
    if (access(path, R_OK) != 0 || H5Fis_hdf5(path) <= 0) {
        snprintf(err, ERRLEN, "%s: missing, unreadable or not an HDF5 file", path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, ERRLEN, "%s: cannot open as HDF5", path);
        return -1;
    }
    int rc = -1;
    hid_t g = -1;
    char where[1200], rg[600];
    /* each link on the path checked in turn: H5Lexists fails on a missing parent */
    snprintf(rg, sizeof rg, "/runs/%s", run);
    if (H5Lexists(f, "runs", H5P_DEFAULT) <= 0 || H5Lexists(f, rg, H5P_DEFAULT) <= 0) {
        snprintf(err, ERRLEN, "%s: no run '%s' (no group %s)", path, run, rg);
        goto out;
    }
    if ((g = open_table(f, path, run, "detections", where, sizeof where, err)) < 0) goto out;
    s->n = -1;
    if (!(s->image = read_numbers(g, where, "image", 1, &s->n, err)) ||
        !(s->cls = read_numbers(g, where, "class", 1, &s->n, err)) ||
        !(s->score = read_numbers(g, where, "score", 0, &s->n, err)))
        goto out;
    for (int k = 0; k < 4; k++)
        if (!(s->box[k] = read_numbers(g, where, BOX_COLS[k], 0, &s->n, err))) goto out;
    H5Gclose(g);
    if ((g = open_table(f, path, run, "detection_images", where, sizeof where, err)) < 0 ||
        read_ids(g, where, s, err))
        goto out;
    rc = 0;
out:
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return rc;
}

/* the stored rows as VocDets, each checked (row named on an error) */
static VocDet *to_dets(const Stored *s, const char *where, char *err) {
    VocDet *d = calloc((size_t)s->n + 1, sizeof *d);
    if (!d) {
        snprintf(err, ERRLEN, "out of memory for %ld detections", s->n);
        return NULL;
    }
    for (long i = 0; i < s->n; i++) {
        const double b[4] = {s->box[0][i], s->box[1][i], s->box[2][i], s->box[3][i]};
        const char *bad = NULL;
        if (s->image[i] < 0 || s->image[i] >= s->n_images)
            bad = "image is outside [0, rows of detection_images)";
        else if (s->cls[i] < 1 || s->cls[i] > VOC_NUM_CLASSES)
            bad = "class is outside 1..20";
        else if (!isfinite(s->score[i]) || !isfinite(b[0]) || !isfinite(b[1]) || !isfinite(b[2]) || !isfinite(b[3]))
            bad = "a non-finite score or box";
        if (bad) {
            snprintf(err, ERRLEN, "%s row %ld: %s (image %lld of %ld, class %lld, score %g, box %g %g %g %g)", where,
                     i, bad, (long long)s->image[i], s->n_images, (long long)s->cls[i], s->score[i], b[0], b[1],
                     b[2], b[3]);
            free(d);
            return NULL;
        }
        d[i].image = (long)s->image[i];
        d[i].label = (int)(s->cls[i] - 1);
        d[i].score = s->score[i];
        for (int k = 0; k < 4; k++) d[i].box[k] = b[k];
    }
    return d;
}

int main(int argc, char **argv) {
    const char *h5 = NULL, *run = NULL, *out = NULL, *year = "2007", *set = "test";
    int digits = COMP4_DEFAULT_DIGITS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        const char **dst = !strcmp(a, "--run")    ? &run
                           : !strcmp(a, "--out")  ? &out
                           : !strcmp(a, "--year") ? &year
                           : !strcmp(a, "--set")  ? &set
                                                  : NULL;
        int is_digits = !strcmp(a, "--digits");
        if (!dst && !is_digits) {
            if (a[0] == '-' || h5) {
                fprintf(stderr, "cbnn_voc_results: unexpected argument %s\n", a);
                usage(stderr);
                return 2;
            }
            h5 = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cbnn_voc_results: %s needs a value\n", a);
            return 2;
        }
        if (dst) {
            *dst = argv[++i];
            continue;
        }
        char *end;
        long v = strtol(argv[++i], &end, 10);
        if (end == argv[i] || *end || v < 0 || v > COMP4_MAX_DIGITS) {
            fprintf(stderr, "cbnn_voc_results: --digits %s: expected 0..%d\n", argv[i], COMP4_MAX_DIGITS);
            return 2;
        }
        digits = (int)v;
    }
    if (!h5 || !run || !out) {
        fprintf(stderr, "cbnn_voc_results: RESULTS.h5, --run and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (!*run || strchr(run, '/') || !*year || strchr(year, '/') || !*set || strchr(set, '/')) {
        fprintf(stderr, "cbnn_voc_results: --run, --year and --set are names, not paths\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char err[ERRLEN], where[1200];
    snprintf(where, sizeof where, "%s: /runs/%s/detections", h5, run);
    Stored s;
    VocDet *d = NULL;
    int rc = 1;
    if (read_detections(h5, run, &s, err) || !(d = to_dets(&s, where, err)) ||
        comp4_write(out, year, set, digits, (const char *const *)s.ids, s.n_images, d, s.n, err, ERRLEN)) {
        fprintf(stderr, "cbnn_voc_results: %s\n", err);
    } else {
        fprintf(stderr, "cbnn_voc_results: %ld detections of %ld images -> %s/VOC%s/Main/comp4_det_%s_<class>.txt\n",
                s.n, s.n_images, out, year, set);
        rc = 0;
    }
    free(d);
    stored_free(&s);
    return rc;
}
