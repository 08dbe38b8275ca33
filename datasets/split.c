/* The validation hold-out (datasets/split.h). */
#include "split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a view keeps: the file's dataset (shared by both views, freed with
 * the last one) and its own map from view index to file index. */
typedef struct {
    Dataset *base;
    int *refs;          /* views alive on base */
    int32_t *map;       /* [n] file indices, ascending */
} SplitView;

static int view_get(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng) {
    const SplitView *v = ds->impl;
    if (i < 0 || i >= ds->n) return -1;
    return v->base->get(v->base, v->map[i], out, label, aug, rng);
}

static void view_last_error(const Dataset *ds, char *buf, size_t len) {
    const SplitView *v = ds->impl;
    buf[0] = 0;
    if (v->base->last_error) v->base->last_error(v->base, buf, len);
}

static void view_destroy(Dataset *ds) {
    SplitView *v = ds->impl;
    if (!v) return;
    free(v->map);
    if (--*v->refs == 0) {
        dataset_free(v->base);
        free(v->base);
        free(v->refs);
    }
    /* impl itself is freed by dataset_free */
}

long dataset_file_index(const Dataset *ds, long i) {
    if (ds->get != view_get || i < 0 || i >= ds->n) return i;
    return ((const SplitView *)ds->impl)->map[i];
}

/* a view of base with the given map: geometry and statistics of the file */
static int make_view(Dataset *out, Dataset *base, int *refs, int32_t *map, long n, const char *suffix) {
    SplitView *v = calloc(1, sizeof *v);
    if (!v) return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%.*s%s", (int)(sizeof out->name - 1 - strlen(suffix)), base->name, suffix);
    snprintf(out->source, sizeof out->source, "%s", base->source);
    out->n = n;
    out->channels = base->channels;
    out->height = base->height;
    out->width = base->width;
    out->num_classes = base->num_classes;
    memcpy(out->mean, base->mean, sizeof out->mean);
    memcpy(out->std, base->std, sizeof out->std);
    out->get = view_get;
    out->destroy = view_destroy;
    out->last_error = view_last_error;
    v->base = base;
    v->refs = refs;
    v->map = map;
    out->impl = v;
    return 0;
}

int dataset_holdout(Dataset *full, long n_val, uint64_t split_seed, Dataset *train, Dataset *val, char *err,
                    size_t errlen) {
    const long n = full->n;
    if (n_val < 1 || n_val >= n) {
        dataset_errf(err, errlen, "%s: cannot hold out %ld of %ld images for validation (data.val_split): it leaves "
                     "%s", full->name, n_val, n, n_val < 1 ? "no validation image" : "no training image");
        return -1;
    }
    if (n > INT32_MAX) {
        dataset_errf(err, errlen, "%s: %ld images are more than a split can index", full->name, n);
        return -1;
    }
    /* The first n_val of a permutation drawn by the split seed alone are
     * validation; both maps list their file indices in ascending order, so
     * the training split keeps the file's order (and data.train_subset its
     * meaning: the first N of what is left). */
    int32_t *perm = malloc(sizeof *perm * (size_t)n);
    unsigned char *is_val = calloc((size_t)n, 1);
    int32_t *vmap = malloc(sizeof *vmap * (size_t)n_val), *tmap = malloc(sizeof *tmap * (size_t)(n - n_val));
    Dataset *base = malloc(sizeof *base);
    int *refs = malloc(sizeof *refs);
    int rc = -1;
    if (!perm || !is_val || !vmap || !tmap || !base || !refs) {
        dataset_errf(err, errlen, "%s: out of memory for the validation split", full->name);
        goto out;
    }
    Rng g = rng_stream(split_seed, RNG_SPLIT, 0, 0);
    rng_permutation(&g, perm, n);
    for (long k = 0; k < n_val; k++) is_val[perm[k]] = 1;
    long nv = 0, nt = 0;
    for (long i = 0; i < n; i++) {
        if (is_val[i]) vmap[nv++] = (int32_t)i;
        else tmap[nt++] = (int32_t)i;
    }
    *base = *full;
    *refs = 2;
    Dataset tv = {0}, vv = {0};
    if (make_view(&tv, base, refs, tmap, nt, "") || make_view(&vv, base, refs, vmap, nv, ":val")) {
        free(tv.impl);
        dataset_errf(err, errlen, "%s: out of memory for the validation split", full->name);
        goto out;
    }
    memset(full, 0, sizeof *full);
    *train = tv;
    *val = vv;
    tmap = vmap = NULL;
    base = NULL;
    refs = NULL;
    rc = 0;
out:
    free(perm);
    free(is_val);
    free(vmap);
    free(tmap);
    free(base);
    free(refs);
    return rc;
}
