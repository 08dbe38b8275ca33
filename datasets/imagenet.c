/* ImageNet from JPEG folders, streaming: the file list is built at load, the
 * pixels are decoded in get(). See imagenet.h for the layout and contract. */
#include "imagenet.h"
#include "dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "augment_imagenet.h"
#include "jpeg_io.h"

#define WNID_MAX 64

typedef struct {
    char *root;          /* split directory, e.g. <root>/train */
    char *names;         /* NUL-separated paths relative to root */
    size_t *off;         /* [n] offsets into names */
    int32_t *label;      /* [n] */
    long n;
    int nclass;
    char (*wnid)[WNID_MAX];
    int out_size;
    ImagenetOptions opt;
    unsigned char *bad;  /* [n] 1 once the file failed to decode */
    long bad_count, warn_count;
    char last_err[1024], last_warn[1024];
} Impl;


/* ---- a growable list of strings ---- */
typedef struct {
    char **v;
    size_t n, cap;
} StrList;

static int sl_push(StrList *l, const char *s) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

static void sl_free(StrList *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_jpeg_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return 0;
    return !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpg");
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Entries of dir: subdirectories into dirs, JPEG files into files (either may
 * be NULL = not wanted), both sorted. */
static int list_dir(const char *dir, StrList *dirs, StrList *files, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        dataset_errf(err, errlen, "imagenet: cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        int isd;
        if (de->d_type == DT_DIR) isd = 1;
        else if (de->d_type == DT_REG) isd = 0;
        else {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            isd = is_dir(path);
        }
        StrList *l = isd ? dirs : (is_jpeg_name(de->d_name) ? files : NULL);
        if (l && sl_push(l, de->d_name) != 0) {
            closedir(d);
            dataset_errf(err, errlen, "imagenet: out of memory listing %s", dir);
            return -1;
        }
    }
    closedir(d);
    if (dirs && dirs->n > 1) qsort(dirs->v, dirs->n, sizeof(char *), cmp_str);
    if (files && files->n > 1) qsort(files->v, files->n, sizeof(char *), cmp_str);
    return 0;
}

/* ---- building a split ---- */
typedef struct {
    char *names;
    size_t len, cap;
    size_t *off;
    int32_t *label;
    long n, ncap;
} Builder;

static int b_add(Builder *b, const char *rel, int32_t label) {
    size_t l = strlen(rel) + 1;
    if (b->len + l > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1 << 16;
        while (nc < b->len + l) nc *= 2;
        char *nn = realloc(b->names, nc);
        if (!nn) return -1;
        b->names = nn;
        b->cap = nc;
    }
    if (b->n == b->ncap) {
        long nc = b->ncap ? b->ncap * 2 : 1024;
        size_t *no = realloc(b->off, (size_t)nc * sizeof *no);
        if (!no) return -1;
        b->off = no;
        int32_t *nl = realloc(b->label, (size_t)nc * sizeof *nl);
        if (!nl) return -1;
        b->label = nl;
        b->ncap = nc;
    }
    memcpy(b->names + b->len, rel, l);
    b->off[b->n] = b->len;
    b->label[b->n] = label;
    b->len += l;
    b->n++;
    return 0;
}

static void b_free(Builder *b) {
    free(b->names);
    free(b->off);
    free(b->label);
    memset(b, 0, sizeof(*b));
}

static int find_wnid(const StrList *classes, const char *w) {
    size_t lo = 0, hi = classes->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(classes->v[mid], w);
        if (!c) return (int)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* class folders dir/<wnid>/ -> builder; every folder must be a known class
 * (classes) and hold at least one JPEG */
static int add_class_folders(Builder *b, const char *dir, const StrList *subdirs, const StrList *classes,
                             char *err, size_t errlen) {
    char path[4096], rel[4096];
    for (size_t c = 0; c < subdirs->n; c++) {
        int k = find_wnid(classes, subdirs->v[c]);
        snprintf(path, sizeof path, "%s/%s", dir, subdirs->v[c]);
        if (k < 0) {
            dataset_errf(err, errlen, "imagenet: %s: unknown wnid '%s' (not a class folder of train/)", path,
                    subdirs->v[c]);
            return -1;
        }
        StrList files = {0};
        if (list_dir(path, NULL, &files, err, errlen) != 0) return -1;
        if (files.n == 0) {
            dataset_errf(err, errlen, "imagenet: %s: empty class folder (no .JPEG/.jpg files)", path);
            sl_free(&files);
            return -1;
        }
        for (size_t f = 0; f < files.n; f++) {
            snprintf(rel, sizeof rel, "%s/%s", subdirs->v[c], files.v[f]);
            if (b_add(b, rel, k) != 0) {
                sl_free(&files);
                dataset_errf(err, errlen, "imagenet: out of memory listing %s", path);
                return -1;
            }
        }
        sl_free(&files);
    }
    return 0;
}

/* ---- flat val + label file ---- */
typedef struct {
    char *stem;
    int k;
    int used;
    long line;
} LabelEntry;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const LabelEntry *)a)->stem, ((const LabelEntry *)b)->stem);
}

static void strip_ext(char *s) {
    char *dot = strrchr(s, '.');
    if (dot && is_jpeg_name(s)) *dot = '\0';
}

static int read_label_file(const char *path, int csv, const StrList *classes, LabelEntry **out, long *nout,
                           char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        dataset_errf(err, errlen, "imagenet: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    LabelEntry *e = NULL;
    long n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    int rc = -1;
    while (getline(&line, &lcap, f) >= 0) {
        lineno++;
        char *p = line;
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        char name[1024], wnid[WNID_MAX + 2];
        if (csv) {
            if (lineno == 1 && !strncmp(p, "ImageId", 7)) continue; /* header */
            char *comma = strchr(p, ',');
            if (!comma || (size_t)(comma - p) >= sizeof name) {
                dataset_errf(err, errlen, "imagenet: %s:%ld: expected 'ImageId,wnid ...'", path, lineno);
                goto out;
            }
            memcpy(name, p, (size_t)(comma - p));
            name[comma - p] = '\0';
            if (sscanf(comma + 1, "%65s", wnid) != 1) {
                dataset_errf(err, errlen, "imagenet: %s:%ld: no wnid after the image id '%s'", path, lineno, name);
                goto out;
            }
        } else if (sscanf(p, "%1023s %65s", name, wnid) != 2) {
            dataset_errf(err, errlen, "imagenet: %s:%ld: expected 'filename wnid'", path, lineno);
            goto out;
        }
        int k = find_wnid(classes, wnid);
        if (k < 0) {
            dataset_errf(err, errlen, "imagenet: %s:%ld: unknown wnid '%s' for %s (not a class folder of train/)", path,
                    lineno, wnid, name);
            goto out;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            LabelEntry *ne = realloc(e, (size_t)cap * sizeof *ne);
            if (!ne) {
                dataset_errf(err, errlen, "imagenet: out of memory reading %s", path);
                goto out;
            }
            e = ne;
        }
        strip_ext(name);
        if (!(e[n].stem = strdup(name))) {
            dataset_errf(err, errlen, "imagenet: out of memory reading %s", path);
            goto out;
        }
        e[n].k = k;
        e[n].used = 0;
        e[n].line = lineno;
        n++;
    }
    if (n == 0) {
        dataset_errf(err, errlen, "imagenet: %s: no labels in the file", path);
        goto out;
    }
    qsort(e, (size_t)n, sizeof *e, cmp_entry);
    for (long i = 1; i < n; i++)
        if (!strcmp(e[i].stem, e[i - 1].stem)) {
            dataset_errf(err, errlen, "imagenet: %s: '%s' is labelled twice (lines %ld and %ld)", path, e[i].stem,
                    e[i - 1].line, e[i].line);
            goto out;
        }
    rc = 0;
out:
    free(line);
    fclose(f);
    if (rc != 0) {
        for (long i = 0; i < n; i++) free(e[i].stem);
        free(e);
        e = NULL;
        n = 0;
    }
    *out = e;
    *nout = n;
    return rc;
}

static int add_flat_val(Builder *b, const char *root, const char *vdir, const StrList *files,
                        const StrList *classes, char *err, size_t errlen) {
    const char *cands[4][2] = {{vdir, "val_labels.txt"}, {root, "val_labels.txt"},
                               {vdir, "LOC_val_solution.csv"}, {root, "LOC_val_solution.csv"}};
    char path[4096] = "";
    int csv = 0, found = 0;
    for (int c = 0; c < 4 && !found; c++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", cands[c][0], cands[c][1]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            found = 1;
            csv = c >= 2;
        }
    }
    if (!found) {
        dataset_errf(err, errlen,
                "imagenet: %s holds flat images but no label file: expected %s/val_labels.txt "
                "(\"filename wnid\" lines) or LOC_val_solution.csv (in %s or %s), or class folders val/<wnid>/",
                vdir, vdir, vdir, root);
        return -1;
    }
    LabelEntry *e;
    long ne;
    if (read_label_file(path, csv, classes, &e, &ne, err, errlen) != 0) return -1;
    int rc = -1;
    char stem[1024];
    for (size_t f = 0; f < files->n; f++) {
        snprintf(stem, sizeof stem, "%s", files->v[f]);
        strip_ext(stem);
        LabelEntry key = {.stem = stem};
        LabelEntry *hit = bsearch(&key, e, (size_t)ne, sizeof *e, cmp_entry);
        if (!hit) {
            dataset_errf(err, errlen, "imagenet: %s/%s has no label in %s", vdir, files->v[f], path);
            goto out;
        }
        if (hit->used) {
            dataset_errf(err, errlen, "imagenet: %s: two image files share the name '%s' (%s)", vdir, stem, files->v[f]);
            goto out;
        }
        hit->used = 1;
        if (b_add(b, files->v[f], hit->k) != 0) {
            dataset_errf(err, errlen, "imagenet: out of memory listing %s", vdir);
            goto out;
        }
    }
    for (long i = 0; i < ne; i++)
        if (!e[i].used) {
            dataset_errf(err, errlen, "imagenet: %s:%ld labels '%s' but there is no such image in %s", path, e[i].line,
                    e[i].stem, vdir);
            goto out;
        }
    rc = 0;
out:
    for (long i = 0; i < ne; i++) free(e[i].stem);
    free(e);
    return rc;
}

/* ---- Dataset glue ---- */
static int get_cb(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng) {
    char err[1024];
    return imagenet_read(ds, i, out, label, aug, rng, err, sizeof err);
}

static void destroy_cb(Dataset *ds) {
    Impl *im = ds->impl;
    if (!im) return;
    free(im->root);
    free(im->names);
    free(im->off);
    free(im->label);
    free(im->wnid);
    free(im->bad);
}

static int make_dataset(Dataset *ds, Builder *b, const char *dir, const char *split, const StrList *classes,
                        int out_size, const ImagenetOptions *opt, char *err, size_t errlen) {
    Impl *im = calloc(1, sizeof *im);
    if (!im) goto oom;
    ds->impl = im;
    ds->destroy = destroy_cb;
    ds->get = get_cb;
    ds->last_error = imagenet_last_error;
    im->root = strdup(dir);
    im->wnid = calloc(classes->n, sizeof *im->wnid);
    im->bad = calloc((size_t)(b->n > 0 ? b->n : 1), 1);
    if (!im->root || !im->wnid || !im->bad) goto oom;
    for (size_t k = 0; k < classes->n; k++) snprintf(im->wnid[k], WNID_MAX, "%s", classes->v[k]);
    im->nclass = (int)classes->n;
    im->names = b->names;
    im->off = b->off;
    im->label = b->label;
    im->n = b->n;
    memset(b, 0, sizeof(*b));
    im->out_size = out_size;
    im->opt = *opt;
    snprintf(ds->name, sizeof ds->name, "imagenet/%s", split);
    snprintf(ds->source, sizeof ds->source, "%s", dir);
    ds->n = im->n;
    ds->channels = 3;
    ds->height = ds->width = out_size;
    ds->num_classes = im->nclass;
    for (int c = 0; c < 3; c++) {
        ds->mean[c] = INET_MEAN[c];
        ds->std[c] = INET_STD[c];
    }
    if (opt->verify) {
        /* header check of every file: drop (skip_bad) or fail */
        char path[4096], msg[1024];
        long keep = 0;
        for (long i = 0; i < im->n; i++) {
            snprintf(path, sizeof path, "%s/%s", im->root, im->names + im->off[i]);
            int w, h, nc;
            if (jpeg_info_file(path, &w, &h, &nc, msg, sizeof msg) != 0) {
                if (!opt->skip_bad) {
                    dataset_errf(err, errlen, "imagenet: %s", msg);
                    return -1;
                }
                im->bad_count++;
                snprintf(im->last_err, sizeof im->last_err, "%s", msg);
                continue;
            }
            im->off[keep] = im->off[i];
            im->label[keep] = im->label[i];
            keep++;
        }
        im->n = ds->n = keep;
        if (keep == 0) {
            dataset_errf(err, errlen, "imagenet: %s: no decodable image (last error: %s)", dir, im->last_err);
            return -1;
        }
    }
    return 0;
oom:
    dataset_errf(err, errlen, "imagenet: out of memory building %s", dir);
    return -1;
}

void imagenet_default_options(ImagenetOptions *opt) {
    memset(opt, 0, sizeof(*opt));
    opt->dct_scaling = 1;
}

void imagenet_default_root(char *buf, size_t len) {
    const char *d = getenv("CBNN_DATA");
    if (d && *d) snprintf(buf, len, "%s/imagenet", d);
    else snprintf(buf, len, "%s", IMAGENET_DEFAULT_ROOT);
}

int imagenet_load(Dataset *train, Dataset *val, const char *root, int out_size, char *err, size_t errlen) {
    ImagenetOptions o;
    imagenet_default_options(&o);
    return imagenet_load_opts(train, val, root, out_size, &o, err, errlen);
}

int imagenet_load_opts(Dataset *train, Dataset *val, const char *root, int out_size, const ImagenetOptions *opt,
                       char *err, size_t errlen) {
    if (train) memset(train, 0, sizeof(*train));
    if (val) memset(val, 0, sizeof(*val));
    ImagenetOptions dflt;
    if (!opt) {
        imagenet_default_options(&dflt);
        opt = &dflt;
    }
    if (out_size < 8 || out_size > 4096) {
        dataset_errf(err, errlen, "imagenet: output size %d outside 8..4096", out_size);
        return -1;
    }
    char rootbuf[4096], tdir[4200], vdir[4200];
    if (!root || !*root) {
        imagenet_default_root(rootbuf, sizeof rootbuf);
        root = rootbuf;
    }
    if (!is_dir(root)) {
        dataset_errf(err, errlen,
                "imagenet: data directory %s not found (expected %s/train/<wnid>/*.JPEG and %s/val/; "
                "set data.path or $CBNN_DATA, or generate a small tree with build/make_imagenet DIR)",
                root, root, root);
        return -1;
    }
    snprintf(tdir, sizeof tdir, "%s/train", root);
    snprintf(vdir, sizeof vdir, "%s/val", root);
    if (!is_dir(tdir)) {
        dataset_errf(err, errlen, "imagenet: %s not found: the classes are the wnid folders of train/", tdir);
        return -1;
    }
    StrList classes = {0}, vdirs = {0}, vfiles = {0}, tfiles = {0};
    Builder tb = {0}, vb = {0};
    int rc = -1;
    if (list_dir(tdir, &classes, &tfiles, err, errlen) != 0) goto out;
    if (classes.n == 0) {
        dataset_errf(err, errlen, "imagenet: %s holds no class folders (train/<wnid>/*.JPEG)", tdir);
        goto out;
    }
    for (size_t k = 0; k < classes.n; k++)
        if (strlen(classes.v[k]) >= WNID_MAX) {
            dataset_errf(err, errlen, "imagenet: %s/%s: class folder name longer than %d characters", tdir, classes.v[k],
                    WNID_MAX - 1);
            goto out;
        }
    if (classes.n > 1000000) {
        dataset_errf(err, errlen, "imagenet: %s: too many class folders (%zu)", tdir, classes.n);
        goto out;
    }
    if (train) {
        if (add_class_folders(&tb, tdir, &classes, &classes, err, errlen) != 0) goto out;
        if (make_dataset(train, &tb, tdir, "train", &classes, out_size, opt, err, errlen) != 0) goto out;
    }
    if (val) {
        if (!is_dir(vdir)) {
            dataset_errf(err, errlen, "imagenet: %s not found (val/<wnid>/*.JPEG or flat val/*.JPEG + label file)", vdir);
            goto out;
        }
        if (list_dir(vdir, &vdirs, &vfiles, err, errlen) != 0) goto out;
        if (vdirs.n > 0) {
            if (vfiles.n > 0) {
                dataset_errf(err, errlen, "imagenet: %s mixes class folders and flat images (e.g. %s): use one layout",
                        vdir, vfiles.v[0]);
                goto out;
            }
            if (add_class_folders(&vb, vdir, &vdirs, &classes, err, errlen) != 0) goto out;
        } else {
            if (vfiles.n == 0) {
                dataset_errf(err, errlen, "imagenet: %s holds no images (.JPEG/.jpg) and no class folders", vdir);
                goto out;
            }
            if (add_flat_val(&vb, root, vdir, &vfiles, &classes, err, errlen) != 0) goto out;
        }
        if (make_dataset(val, &vb, vdir, "val", &classes, out_size, opt, err, errlen) != 0) goto out;
    }
    rc = 0;
out:
    sl_free(&classes);
    sl_free(&vdirs);
    sl_free(&vfiles);
    sl_free(&tfiles);
    b_free(&tb);
    b_free(&vb);
    if (rc != 0) {
        if (train) dataset_free(train);
        if (val) dataset_free(val);
    }
    return rc;
}

/* ---- introspection ---- */
const char *imagenet_class_wnid(const Dataset *ds, int k) {
    const Impl *im = ds ? ds->impl : NULL;
    return im && k >= 0 && k < im->nclass ? im->wnid[k] : NULL;
}

const char *imagenet_file(const Dataset *ds, long i, char *buf, size_t len) {
    const Impl *im = ds ? ds->impl : NULL;
    if (!im || i < 0 || i >= im->n) return NULL;
    snprintf(buf, len, "%s/%s", im->root, im->names + im->off[i]);
    return buf;
}

int32_t imagenet_label(const Dataset *ds, long i) {
    const Impl *im = ds ? ds->impl : NULL;
    return im && i >= 0 && i < im->n ? im->label[i] : -1;
}

long imagenet_bad_count(const Dataset *ds) {
    const Impl *im = ds ? ds->impl : NULL;
    return im ? __atomic_load_n(&im->bad_count, __ATOMIC_RELAXED) : 0;
}

long imagenet_warning_count(const Dataset *ds) {
    const Impl *im = ds ? ds->impl : NULL;
    return im ? __atomic_load_n(&im->warn_count, __ATOMIC_RELAXED) : 0;
}

void imagenet_last_error(const Dataset *ds, char *buf, size_t len) {
    Impl *im = ds ? ds->impl : NULL;
    if (!len) return;
    buf[0] = '\0';
    if (!im) return;
#pragma omp critical(imagenet_msg)
    snprintf(buf, len, "%s", im->last_err);
}

void imagenet_last_warning(const Dataset *ds, char *buf, size_t len) {
    Impl *im = ds ? ds->impl : NULL;
    if (!len) return;
    buf[0] = '\0';
    if (!im) return;
#pragma omp critical(imagenet_msg)
    snprintf(buf, len, "%s", im->last_warn);
}

/* ---- decoding one sample ---- */

/* Decode file i into out; 0 or -1 (+err). */
static int read_one(const Dataset *ds, Impl *im, long i, real *out, const Augment *aug, Rng *rng, char *err,
                    size_t errlen) {
    const int S = im->out_size;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", im->root, im->names + im->off[i]);
    uint8_t *buf = NULL, *crop = NULL;
    size_t len;
    JpegImage img = {0};
    int rc = -1;
    if (jpeg_read_file(path, &buf, &len, err, errlen) != 0) goto out;
    int W, H, nc;
    if (jpeg_info_mem(buf, len, path, &W, &H, &nc, err, errlen) != 0) goto out;
    if (W <= 0 || H <= 0) {
        dataset_errf(err, errlen, "%s: empty image (%dx%d)", path, W, H);
        goto out;
    }
    /* geometry in stored pixels: region [bx0, bx1) x [by0, by1) resized to a
     * virtual vw x vh image whose window (ox, oy, S, S) is the output */
    double bx0, by0, bx1, by1;
    int vw, vh, ox, oy;
    if (rng && aug && aug->rrc) {
        double s0 = aug->rrc_scale_min, s1 = aug->rrc_scale_max, r0 = aug->rrc_ratio_min, r1 = aug->rrc_ratio_max;
        if (!(s1 > 0)) {
            s0 = 0.08;
            s1 = 1.0;
        }
        if (!(r0 > 0) || !(r1 >= r0)) {
            r0 = 3.0 / 4.0;
            r1 = 4.0 / 3.0;
        }
        int ci, cj, ch, cw;
        inet_rrc_params(W, H, s0, s1, r0, r1, rng, &ci, &cj, &ch, &cw);
        bx0 = cj;
        by0 = ci;
        bx1 = cj + cw;
        by1 = ci + ch;
        vw = vh = S;
        ox = oy = 0;
    } else {
        int R = aug && aug->eval_resize > 0 ? aug->eval_resize : (int)lround(S * 256.0 / 224.0);
        if (R < S) R = S;
        inet_eval_geometry(W, H, R, S, &vw, &vh, &oy, &ox);
        if (ox < 0 || oy < 0 || ox + S > vw || oy + S > vh) {
            dataset_errf(err, errlen, "%s: %dx%d image cannot give a %d centre crop after resizing to %dx%d", path, W, H, S,
                    vw, vh);
            goto out;
        }
        bx0 = by0 = 0;
        bx1 = W;
        by1 = H;
    }
    int m = im->opt.dct_scaling ? jpeg_pick_scale(W, H, bx1 - bx0, by1 - by0, vw, vh) : 8;
    if (jpeg_decode_mem(buf, len, path, m, &img, err, errlen) != 0) goto out;
    if (img.warnings) {
        __atomic_add_fetch(&im->warn_count, 1, __ATOMIC_RELAXED);
#pragma omp critical(imagenet_msg)
        snprintf(im->last_warn, sizeof im->last_warn, "%s", img.warning);
    }
    double fx = (double)img.width / W, fy = (double)img.height / H;
    crop = malloc((size_t)S * S * 3);
    if (!crop || inet_resample(img.rgb, img.width, img.height, bx0 * fx, by0 * fy, bx1 * fx, by1 * fy, vw, vh, ox, oy,
                               crop, S, S) != 0) {
        dataset_errf(err, errlen, "%s: resampling failed (out of memory?)", path);
        goto out;
    }
    int flip = 0;
    if (rng && aug && aug->flip) flip = (int)(rng_u64(rng) >> 63);
    if (rng && aug && aug->lighting) {
        double inc[3];
        inet_lighting_offsets(rng, INET_LIGHTING_STD, inc);
        inet_lighting_apply(crop, (size_t)S * S, inc);
    }
    inet_to_chw(crop, S, S, flip, aug && aug->normalize, ds->mean, ds->std, out);
    rc = 0;
out:
    free(buf);
    free(crop);
    jpeg_image_free(&img);
    return rc;
}

int imagenet_read(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng, char *err,
                  size_t errlen) {
    Impl *im = ds ? ds->impl : NULL;
    if (!im || i < 0 || i >= im->n) {
        dataset_errf(err, errlen, "imagenet: sample %ld out of range", i);
        return -1;
    }
    const Rng start = rng ? *rng : (Rng){{0}};
    /* with skip_bad, up to 16 following files stand in for a bad one; the
     * augmentation draws restart from the same stream for each, so the result
     * depends only on (i, rng) */
    int tries = im->opt.skip_bad ? 16 : 1;
    for (int t = 0; t < tries; t++) {
        long j = (i + t) % im->n;
        if (rng) *rng = start;
        if (t > 0 && __atomic_load_n(&im->bad[j], __ATOMIC_RELAXED)) continue;
        if (read_one(ds, im, j, out, aug, rng, err, errlen) == 0) {
            if (label) *label = im->label[j];
            return 0;
        }
        if (!__atomic_exchange_n(&im->bad[j], 1, __ATOMIC_RELAXED)) __atomic_add_fetch(&im->bad_count, 1, __ATOMIC_RELAXED);
#pragma omp critical(imagenet_msg)
        snprintf(im->last_err, sizeof im->last_err, "imagenet: %s", err);
    }
    return -1; /* the return is the failure; *label is left as it was */
}
