/* cbnn_voc_results: the detections a detection run stored in its results
 * file -> the devkit's comp4 files (tasks/comp4.h), so the official devkit,
 * py-faster-rcnn's voc_eval.py or cbnn_voc_eval can score them.
 *
 *   cbnn_voc_results RESULTS.h5 --run NAME --out DIR [--digits 3] [--year 2007] [--set test]
 *
 * Reads /runs/NAME/detections (the layout detection runs write):
 *   image      int64   [n]     index into image_ids
 *   class      int32   [n]     1..20: VOC_CLASSES order + 1 (0 is the background)
 *   score      float32 [n]
 *   box        float32 [n][4]  x1 y1 x2 y2, 0-based inclusive pixels of the original image
 *   image_ids  strings [n_images] (variable- or fixed-length): the VOC ids
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
               "Writes the detections of run NAME (/runs/NAME/detections: image, class 1..20, score, box\n"
               "0-based, image_ids) as the VOC devkit's result files DIR/VOC<year>/Main/comp4_det_<set>_<class>.txt\n"
               "(`id score x1 y1 x2 y2`, boxes 1-based, scores with --digits decimals), which cbnn_voc_eval\n"
               "and the official devkit score.\n");
}

typedef struct {
    long n, n_images;
    int64_t *image;
    int32_t *cls;
    float *score, *box;
    char **ids;
} Stored;

static void stored_free(Stored *s) {
    free(s->image);
    free(s->cls);
    free(s->score);
    free(s->box);
    for (long i = 0; s->ids && i < s->n_images; i++) free(s->ids[i]);
    free(s->ids);
}

/* dims of g/name: its rank, or -1 if absent or unreadable */
static int ds_dims(hid_t g, const char *name, hsize_t dims[2]) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (rank >= 1 && rank <= 2)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    else
        rank = -1;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return rank;
}

/* g/name of rank `rank`, dims[0] = n (and dims[1] = cols) read as memtype into a new buffer */
static void *read_ds(hid_t g, const char *where, const char *name, int rank, long *n, hsize_t cols, hid_t memtype,
                     size_t elem, char *err) {
    hsize_t d[2] = {0, 0};
    int r = ds_dims(g, name, d);
    if (r < 0) {
        snprintf(err, ERRLEN, "%s/%s is missing or unreadable", where, name);
        return NULL;
    }
    if (r != rank) {
        snprintf(err, ERRLEN, "%s/%s has rank %d, expected %d", where, name, r, rank);
        return NULL;
    }
    if (rank == 2 && d[1] != cols) {
        snprintf(err, ERRLEN, "%s/%s has %llu columns, expected %llu", where, name, (unsigned long long)d[1],
                 (unsigned long long)cols);
        return NULL;
    }
    if (*n >= 0 && (long)d[0] != *n) {
        snprintf(err, ERRLEN, "%s/%s has %llu rows, %s/image has %ld", where, name, (unsigned long long)d[0], where,
                 *n);
        return NULL;
    }
    *n = (long)d[0];
    size_t count = (size_t)d[0] * (rank == 2 ? cols : 1);
    void *buf = calloc(count ? count : 1, elem);
    if (!buf) {
        snprintf(err, ERRLEN, "out of memory for %s/%s", where, name);
        return NULL;
    }
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    int bad = count && H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0;
    H5Dclose(ds);
    if (bad) {
        snprintf(err, ERRLEN, "%s/%s cannot be read as a number column", where, name);
        free(buf);
        return NULL;
    }
    return buf;
}

/* g/name: a 1-D dataset of strings, variable- or fixed-length */
static int read_ids(hid_t g, const char *where, Stored *s, char *err) {
    hsize_t d[2] = {0, 0};
    if (ds_dims(g, "image_ids", d) != 1) {
        snprintf(err, ERRLEN, "%s/image_ids is missing or not a 1-D dataset", where);
        return -1;
    }
    s->n_images = (long)d[0];
    s->ids = calloc((size_t)s->n_images + 1, sizeof *s->ids);
    hid_t ds = H5Dopen2(g, "image_ids", H5P_DEFAULT), ft = H5Dget_type(ds);
    int rc = -1;
    if (!s->ids || ft < 0 || H5Tget_class(ft) != H5T_STRING) {
        snprintf(err, ERRLEN, "%s/image_ids is not a string dataset", where);
        goto out;
    }
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    if (H5Tis_variable_str(ft) > 0) {
        char **v = calloc((size_t)s->n_images + 1, sizeof *v);
        H5Tset_size(mt, H5T_VARIABLE);
        if (v && (s->n_images == 0 || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0)) {
            rc = 0;
            for (long i = 0; i < s->n_images; i++)
                if (!(s->ids[i] = strdup(v[i] ? v[i] : ""))) rc = -1;
            hid_t sp = H5Dget_space(ds);
            if (s->n_images) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
            H5Sclose(sp);
        }
        free(v);
    } else {
        size_t w = H5Tget_size(ft);
        char *v = calloc((size_t)s->n_images * (w + 1) + 1, 1);
        H5Tset_size(mt, w + 1); /* room for the terminator */
        if (v && (s->n_images == 0 || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0)) {
            rc = 0;
            for (long i = 0; i < s->n_images; i++)
                if (!(s->ids[i] = strdup(v + (size_t)i * (w + 1)))) rc = -1;
        }
        free(v);
    }
    H5Tclose(mt);
    if (rc) snprintf(err, ERRLEN, "%s/image_ids cannot be read as strings", where);
out:
    if (ft >= 0) H5Tclose(ft);
    H5Dclose(ds);
    return rc;
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
    char where[1024], grp[600];
    snprintf(grp, sizeof grp, "/runs/%s/detections", run);
    snprintf(where, sizeof where, "%s: %s", path, grp);
    int rc = -1;
    hid_t g = -1;
    /* each link on the path checked in turn: H5Lexists fails on a missing parent */
    char rg[600];
    snprintf(rg, sizeof rg, "/runs/%s", run);
    if (H5Lexists(f, "runs", H5P_DEFAULT) <= 0 || H5Lexists(f, rg, H5P_DEFAULT) <= 0) {
        snprintf(err, ERRLEN, "%s: no run '%s' (no group %s)", path, run, rg);
        goto out;
    }
    if (H5Lexists(f, grp, H5P_DEFAULT) <= 0 || (g = H5Gopen2(f, grp, H5P_DEFAULT)) < 0) {
        snprintf(err, ERRLEN, "%s: run '%s' has no detections (no group %s): not a detection run, or it has not "
                 "finished", path, run, grp);
        goto out;
    }
    s->n = -1;
    if (!(s->image = read_ds(g, where, "image", 1, &s->n, 0, H5T_NATIVE_INT64, sizeof *s->image, err)) ||
        !(s->cls = read_ds(g, where, "class", 1, &s->n, 0, H5T_NATIVE_INT32, sizeof *s->cls, err)) ||
        !(s->score = read_ds(g, where, "score", 1, &s->n, 0, H5T_NATIVE_FLOAT, sizeof *s->score, err)) ||
        !(s->box = read_ds(g, where, "box", 2, &s->n, 4, H5T_NATIVE_FLOAT, sizeof *s->box, err)) ||
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
        const float *b = s->box + 4 * i;
        const char *bad = NULL;
        if (s->image[i] < 0 || s->image[i] >= s->n_images)
            bad = "image is outside [0, n_images)";
        else if (s->cls[i] < 1 || s->cls[i] > VOC_NUM_CLASSES)
            bad = "class is outside 1..20";
        else if (!isfinite(s->score[i]) || !isfinite(b[0]) || !isfinite(b[1]) || !isfinite(b[2]) || !isfinite(b[3]))
            bad = "a non-finite score or box";
        if (bad) {
            snprintf(err, ERRLEN, "%s row %ld: %s (image %lld of %ld, class %d, score %g, box %g %g %g %g)", where, i,
                     bad, (long long)s->image[i], s->n_images, (int)s->cls[i], (double)s->score[i], (double)b[0],
                     (double)b[1], (double)b[2], (double)b[3]);
            free(d);
            return NULL;
        }
        d[i].image = (long)s->image[i];
        d[i].label = s->cls[i] - 1;
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
