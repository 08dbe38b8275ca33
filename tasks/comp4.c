/* comp4 detection result files (tasks/comp4.h). */
#include "comp4.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "voc.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void main_dir(const char *results_dir, const char *year, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/VOC%s/Main", results_dir, year);
}

void comp4_path(const char *results_dir, const char *year, const char *set, const char *cls, char *out,
                size_t outlen) {
    snprintf(out, outlen, "%s/VOC%s/Main/comp4_det_%s_%s.txt", results_dir, year, set, cls);
}

static int mkdir_p(const char *path, char *err, size_t errlen) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return fail(err, errlen, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) goto bad;
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) goto bad;
    return 0;
bad:
    return fail(err, errlen, "cannot create directory %s: %s", tmp, strerror(errno));
}

/* ------------------------------------------------------------ writing */

static int check_dets(const char *const *ids, long n_images, const VocDet *dets, long n, char *err, size_t errlen) {
    for (long i = 0; i < n_images; i++)
        if (!ids[i] || !ids[i][0] || strpbrk(ids[i], " \t\r\n\v\f"))
            return fail(err, errlen, "image %ld: id '%s' is empty or has a blank: it cannot be read back", i,
                        ids[i] ? ids[i] : "");
    for (long i = 0; i < n; i++) {
        const VocDet *d = &dets[i];
        if (d->label < 0 || d->label >= VOC_NUM_CLASSES)
            return fail(err, errlen, "detection %ld: class %d is outside 0..%d", i, d->label, VOC_NUM_CLASSES - 1);
        if (d->image < 0 || d->image >= n_images)
            return fail(err, errlen, "detection %ld: image %ld is outside [0, %ld)", i, d->image, n_images);
        if (!isfinite(d->score) || !isfinite(d->box[0]) || !isfinite(d->box[1]) || !isfinite(d->box[2]) ||
            !isfinite(d->box[3]))
            return fail(err, errlen, "detection %ld (image %s, class %s): non-finite score or box", i,
                        ids[d->image], VOC_CLASSES[d->label]);
    }
    return 0;
}

/* one class's lines into the open temporary f */
static int write_class(FILE *f, int cls, int digits, const char *const *ids, const VocDet *dets, long n) {
    for (long i = 0; i < n; i++) {
        const VocDet *d = &dets[i];
        if (d->label != cls) continue;
        /* float32 as the reference's arrays: the +1 happens in float */
        double c[4];
        for (int k = 0; k < 4; k++) c[k] = (double)((float)d->box[k] + 1.0f);
        if (fprintf(f, "%s %.*f %.1f %.1f %.1f %.1f\n", ids[d->image], digits, (double)(float)d->score, c[0], c[1],
                    c[2], c[3]) < 0)
            return -1;
    }
    return 0;
}

int comp4_write(const char *results_dir, const char *year, const char *set, int digits, const char *const *image_ids,
                long n_images, const VocDet *dets, long n_dets, char *err, size_t errlen) {
    if (digits < 0 || digits > COMP4_MAX_DIGITS)
        return fail(err, errlen, "digits %d is outside 0..%d", digits, COMP4_MAX_DIGITS);
    if (check_dets(image_ids, n_images, dets, n_dets, err, errlen)) return -1;
    char dir[4096];
    main_dir(results_dir, year, dir, sizeof dir);
    if (mkdir_p(dir, err, errlen)) return -1;
    char final[VOC_NUM_CLASSES][4096], tmp[VOC_NUM_CLASSES][4200];
    int made = 0, rc = 0;
    for (int c = 0; c < VOC_NUM_CLASSES && !rc; c++) {
        comp4_path(results_dir, year, set, VOC_CLASSES[c], final[c], sizeof final[c]);
        snprintf(tmp[c], sizeof tmp[c], "%s.XXXXXX", final[c]);
        int fd = mkstemp(tmp[c]);
        if (fd < 0) {
            rc = fail(err, errlen, "cannot create %s: %s", tmp[c], strerror(errno));
            break;
        }
        made = c + 1;
        FILE *f = fdopen(fd, "w");
        if (!f) close(fd);
        int bad = !f || fchmod(fd, 0644) != 0 || write_class(f, c, digits, image_ids, dets, n_dets) != 0 ||
                  fflush(f) != 0 || fsync(fd) != 0;
        int e = errno;
        if ((f && fclose(f) != 0) || bad)
            rc = fail(err, errlen, "cannot write %s: %s", tmp[c], strerror(bad ? e : errno));
    }
    /* all complete: publish them */
    for (int c = 0; c < made && !rc; c++)
        if (rename(tmp[c], final[c]) != 0) rc = fail(err, errlen, "cannot rename %s: %s", tmp[c], strerror(errno));
    if (rc)
        for (int c = 0; c < made; c++) unlink(tmp[c]); /* the ones not yet renamed */
    return rc;
}

/* ------------------------------------------------------------ reading */

typedef struct {
    const char *id;
    long index;
} IdEntry;

static int id_cmp(const void *a, const void *b) { return strcmp(((const IdEntry *)a)->id, ((const IdEntry *)b)->id); }

/* the image ids sorted for lookup; NULL on a duplicate id or out of memory */
static IdEntry *id_table(const char *const *ids, long n, char *err, size_t errlen) {
    IdEntry *t = malloc(sizeof *t * (size_t)(n ? n : 1));
    if (!t) {
        fail(err, errlen, "out of memory for %ld image ids", n);
        return NULL;
    }
    for (long i = 0; i < n; i++) t[i].id = ids[i], t[i].index = i;
    qsort(t, (size_t)n, sizeof *t, id_cmp);
    for (long i = 1; i < n; i++)
        if (!strcmp(t[i].id, t[i - 1].id)) {
            fail(err, errlen, "image id '%s' appears twice in the image set", t[i].id);
            free(t);
            return NULL;
        }
    return t;
}

static long id_find(const IdEntry *t, long n, const char *id) {
    IdEntry key = {id, 0};
    const IdEntry *e = bsearch(&key, t, (size_t)n, sizeof *t, id_cmp);
    return e ? e->index : -1;
}

/* a decimal number as Python's float() reads the devkit's files (no hex, no
 * nan/inf): 0, -1 not a number, -2 not finite */
static int parse_num(const char *s, double *v) {
    if (strpbrk(s, "xXpP")) return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end) return -1;
    return isfinite(*v) ? 0 : -2;
}

/* one line, split in place: 0 and the detection, or -1 with the message */
static int parse_line(char *line, const char *path, long lineno, const IdEntry *ids, long n_ids, int cls,
                      int one_based, VocDet *d, char *err, size_t errlen) {
    char *field[6], *save = NULL;
    int nf = 0;
    for (char *tok = strtok_r(line, " \t\r\n\v\f", &save); tok; tok = strtok_r(NULL, " \t\r\n\v\f", &save)) {
        if (nf < 6) field[nf] = tok;
        nf++;
    }
    if (nf != 6)
        return fail(err, errlen, "%s:%ld: %d fields, expected 6 (id score x1 y1 x2 y2)", path, lineno, nf);
    d->image = id_find(ids, n_ids, field[0]);
    if (d->image < 0)
        return fail(err, errlen, "%s:%ld: unknown image id '%s' (not in the image set)", path, lineno, field[0]);
    double v[5];
    for (int k = 0; k < 5; k++) {
        int r = parse_num(field[k + 1], &v[k]);
        if (r == -1) return fail(err, errlen, "%s:%ld: '%s' is not a number", path, lineno, field[k + 1]);
        if (r == -2) return fail(err, errlen, "%s:%ld: '%s' is not finite", path, lineno, field[k + 1]);
    }
    d->label = cls;
    d->score = v[0];
    for (int k = 0; k < 4; k++) d->box[k] = one_based ? v[k + 1] : v[k + 1] - 1.0;
    return 0;
}

typedef struct {
    VocDet *d;
    long n, cap;
} DetList;

static int read_class(const char *path, int cls, const IdEntry *ids, long n_ids, int one_based, DetList *l,
                      char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        if (l->n == l->cap) {
            long nc = l->cap ? 2 * l->cap : 1024;
            VocDet *p = realloc(l->d, sizeof *p * (size_t)nc);
            if (!p) {
                rc = fail(err, errlen, "%s:%ld: out of memory", path, lineno);
                break;
            }
            l->d = p, l->cap = nc;
        }
        rc = parse_line(line, path, lineno, ids, n_ids, cls, one_based, &l->d[l->n], err, errlen);
        if (!rc) l->n++;
    }
    if (!rc && ferror(f)) rc = fail(err, errlen, "%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

/* a comp4_det_<set>_<name>.txt in the directory whose name is not a class */
static int check_dir(const char *results_dir, const char *year, const char *set, char *err, size_t errlen) {
    char dir[4096], prefix[512];
    main_dir(results_dir, year, dir, sizeof dir);
    snprintf(prefix, sizeof prefix, "comp4_det_%s_", set);
    DIR *dp = opendir(dir);
    if (!dp) return fail(err, errlen, "%s: cannot open the results directory: %s", dir, strerror(errno));
    int rc = 0;
    size_t lp = strlen(prefix);
    for (struct dirent *e; !rc && (e = readdir(dp));) {
        size_t len = strlen(e->d_name);
        if (len < lp + 4 || strncmp(e->d_name, prefix, lp) || strcmp(e->d_name + len - 4, ".txt")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - lp - 4), e->d_name + lp);
        int known = 0;
        for (int c = 0; c < VOC_NUM_CLASSES; c++) known |= !strcmp(name, VOC_CLASSES[c]);
        if (!known)
            rc = fail(err, errlen, "%s/%s: unknown class '%s' (not one of the 20 VOC classes)", dir, e->d_name, name);
    }
    closedir(dp);
    return rc;
}

int comp4_read(const char *results_dir, const char *year, const char *set, const char *const *image_ids,
               long n_images, const int *cls, int n_cls, int one_based, VocDet **out, long *n_out, char *err,
               size_t errlen) {
    *out = NULL, *n_out = 0;
    if (check_dir(results_dir, year, set, err, errlen)) return -1;
    IdEntry *ids = id_table(image_ids, n_images, err, errlen);
    if (!ids) return -1;
    DetList l = {0};
    int rc = 0, n = cls ? n_cls : VOC_NUM_CLASSES;
    for (int k = 0; k < n && !rc; k++) {
        int c = cls ? cls[k] : k;
        if (c < 0 || c >= VOC_NUM_CLASSES) {
            rc = fail(err, errlen, "class %d is outside 0..%d", c, VOC_NUM_CLASSES - 1);
            break;
        }
        char path[4096];
        comp4_path(results_dir, year, set, VOC_CLASSES[c], path, sizeof path);
        rc = read_class(path, c, ids, n_images, one_based, &l, err, errlen);
    }
    free(ids);
    if (rc) {
        free(l.d);
        return -1;
    }
    *out = l.d, *n_out = l.n;
    return 0;
}
