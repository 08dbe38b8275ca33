/* Detection batches: the reference's roidb, sampler and roibatchLoader over a
 * VocSet (see detect_batch.h for the rules and where they come from). */
#include "detect_batch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long image;          /* VocSet index */
    int flipped;
    int w, h;            /* original */
    int dw, dh;          /* resized */
    double scale, ratio; /* im_scale; clipped w / h */
    int need_crop;
    long obj_off;        /* into DetData.obj */
    int n_boxes;
} Entry;

struct DetData {
    const VocSet *s;
    DetDataOptions o;
    long n, skipped;
    Entry *e;            /* [n] */
    int32_t *obj;        /* kept object indices of each image, concatenated (shared by an entry and its flip) */
    int32_t *ranked;     /* [n] entries by ratio */
    double *ranked_ratio;/* [n] */
};

DetDataOptions det_data_options_default(int train) {
    return (DetDataOptions){
        .train = train != 0, .min_size = VOC_MIN_SIZE, .flip = train != 0, .train_difficult = 1, .max_gt = DET_MAX_GT};
}

void det_box_convert(const VocObject *o, int width, int flipped, double scale, float out[4]) {
    /* the reference parses float(text) - 1 into a uint16 array: truncation */
    long x1 = (long)(o->xmin - 1.0), y1 = (long)(o->ymin - 1.0);
    long x2 = (long)(o->xmax - 1.0), y2 = (long)(o->ymax - 1.0);
    if (flipped) {
        long f1 = width - x2 - 1, f2 = width - x1 - 1;
        x1 = f1, x2 = f2;
    }
    out[0] = (float)(scale * (double)x1);
    out[1] = (float)(scale * (double)y1);
    out[2] = (float)(scale * (double)x2);
    out[3] = (float)(scale * (double)y2);
}

float det_target_ratio(double lo, double hi) {
    /* roibatchLoader: a group entirely below 1 keeps its smallest ratio (the
     * tallest canvas), entirely above 1 its largest (the widest), a group
     * across 1 becomes square */
    double r = hi < 1 ? lo : lo > 1 ? hi : 1.0;
    return (float)r; /* ratio_list_batch is a float32 tensor */
}

void det_canvas_size(int h, int w, float r, int *canvas_h, int *canvas_w) {
    /* float32 arithmetic on purpose: the reference multiplies an int by a
     * float32 tensor, and e.g. 600 * (float)(4/3) decides ceil() */
    if (r < 1.0f) *canvas_h = (int)ceilf((float)w / r), *canvas_w = w;
    else if (r > 1.0f) *canvas_h = h, *canvas_w = (int)ceilf((float)h * r);
    else *canvas_h = *canvas_w = h < w ? h : w;
}

/* ---- the roidb ---- */

typedef struct {
    double r;
    int32_t i;
} RankKey;

static int rank_cmp(const void *a, const void *b) {
    const RankKey *x = a, *y = b;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i); /* ties in entry order: a stable sort */
}

static void entry_dims(const DetDataOptions *o, int w, int h, Entry *e) {
    e->w = w, e->h = h;
    VocTransform t = {.min_size = o->min_size, .max_size = 0};
    voc_resize_dims(w, h, &t, &e->dw, &e->dh);
    /* prep_im_for_blob: float(target) / float(shorter side), no max-size cap */
    e->scale = o->min_size > 0 ? (double)o->min_size / (double)(w < h ? w : h) : 1.0;
    double ratio = (double)w / (double)h;
    e->need_crop = ratio > DET_RATIO_LARGE || ratio < DET_RATIO_SMALL;
    e->ratio = ratio > DET_RATIO_LARGE ? DET_RATIO_LARGE : ratio < DET_RATIO_SMALL ? DET_RATIO_SMALL : ratio;
}

DetData *det_data_open(const VocSet *s, const DetDataOptions *o, char *err, size_t errlen) {
    if (errlen) err[0] = '\0';
    if (!s || !o) {
        snprintf(err, errlen, "detect: no set or no options");
        return NULL;
    }
    if (o->min_size < 0 || o->min_size > 65535 || o->max_gt < 1 || o->max_gt > VOC_MAX_OBJECTS) {
        snprintf(err, errlen, "detect: min_size %d (0..65535) or max_gt %d (1..%d) out of range", o->min_size,
                 o->max_gt, VOC_MAX_OBJECTS);
        return NULL;
    }
    DetData *d = calloc(1, sizeof *d);
    long total_obj = 0;
    for (long i = 0; i < s->n; i++) total_obj += s->images[i].ann.n;
    const int copies = o->train && o->flip ? 2 : 1;
    if (d) {
        d->e = calloc((size_t)(s->n > 0 ? s->n : 1) * copies, sizeof *d->e);
        d->obj = malloc((size_t)(total_obj > 0 ? total_obj : 1) * sizeof *d->obj);
    }
    if (!d || !d->e || !d->obj) {
        snprintf(err, errlen, "detect: out of memory for a roidb of %ld images", s->n);
        det_data_close(d);
        return NULL;
    }
    d->s = s, d->o = *o;

    /* the images, in set order; at training those without a box are left out */
    long m = 0, no = 0;
    for (long i = 0; i < s->n; i++) {
        const VocAnnotation *a = &s->images[i].ann;
        Entry *e = &d->e[m];
        memset(e, 0, sizeof *e);
        e->image = i, e->obj_off = no;
        for (int j = 0; j < a->n; j++) {
            if (o->train && !o->train_difficult && a->obj[j].difficult) continue;
            d->obj[no++] = j;
        }
        e->n_boxes = (int)(no - e->obj_off);
        if (o->train && e->n_boxes == 0) {
            d->skipped++;
            continue;
        }
        entry_dims(o, a->width, a->height, e);
        if ((e->dw < e->dh ? e->dw : e->dh) < DET_MIN_SIDE) {
            char path[2048];
            voc_image_path(s, i, path, sizeof path);
            snprintf(err, errlen,
                     "detect: image %s is %dx%d, %dx%d after resizing to shorter side %d: under %d px a side "
                     "(a stride-16 feature map needs 2x2)",
                     path, a->width, a->height, e->dw, e->dh, o->min_size, DET_MIN_SIDE);
            det_data_close(d);
            return NULL;
        }
        m++;
    }
    /* append_flipped_images: the same images again, flipped */
    d->n = m;
    if (copies == 2) {
        for (long k = 0; k < m; k++) {
            d->e[m + k] = d->e[k];
            d->e[m + k].flipped = 1;
        }
        d->n = 2 * m;
    }

    /* rank_roidb_ratio */
    RankKey *key = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *key);
    d->ranked = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *d->ranked);
    d->ranked_ratio = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *d->ranked_ratio);
    if (!key || !d->ranked || !d->ranked_ratio) {
        free(key);
        snprintf(err, errlen, "detect: out of memory for a roidb of %ld entries", d->n);
        det_data_close(d);
        return NULL;
    }
    for (long k = 0; k < d->n; k++) key[k] = (RankKey){d->e[k].ratio, (int32_t)k};
    qsort(key, (size_t)d->n, sizeof *key, rank_cmp);
    for (long k = 0; k < d->n; k++) d->ranked[k] = key[k].i, d->ranked_ratio[k] = key[k].r;
    free(key);
    return d;
}

void det_data_close(DetData *d) {
    if (!d) return;
    free(d->e);
    free(d->obj);
    free(d->ranked);
    free(d->ranked_ratio);
    free(d);
}

long det_data_entries(const DetData *d) { return d ? d->n : 0; }
long det_data_skipped(const DetData *d) { return d ? d->skipped : 0; }

long det_data_batches(const DetData *d, int batch) {
    if (!d || batch <= 0) return 0;
    return d->o.train ? d->n / batch : (d->n + batch - 1) / batch;
}

int det_data_batch_entries(const DetData *d, int batch, uint64_t seed, long epoch, long b, int32_t *entries) {
    long nb = det_data_batches(d, batch);
    if (b < 0 || b >= nb) return -1;
    if (!d->o.train) {
        long lo = b * batch, hi = lo + batch < d->n ? lo + batch : d->n;
        for (long k = lo; k < hi; k++) entries[k - lo] = (int32_t)k;
        return (int)(hi - lo);
    }
    /* the sampler: a random order of the whole blocks, drawn afresh per epoch */
    int32_t *perm = malloc((size_t)nb * sizeof *perm);
    if (!perm) return -1;
    Rng r = rng_stream(seed, RNG_SHUFFLE, (uint64_t)epoch, 1);
    rng_permutation(&r, perm, nb);
    long start = (long)perm[b] * batch;
    free(perm);
    for (int k = 0; k < batch; k++) entries[k] = d->ranked[start + k];
    return batch;
}

void det_data_max_size(const DetData *d, int batch, int *max_h, int *max_w) {
    int mh = 0, mw = 0;
    if (d && batch > 0) {
        for (long start = 0; start < d->n; start += batch) {
            long end = start + batch < d->n ? start + batch : d->n;
            float r = d->o.train ? det_target_ratio(d->ranked_ratio[start], d->ranked_ratio[end - 1]) : 0;
            for (long k = start; k < end; k++) {
                const Entry *e = &d->e[d->ranked[k]];
                int h = e->dh, w = e->dw;
                if (d->o.train) det_canvas_size(e->dh, e->dw, r, &h, &w);
                if (h > mh) mh = h;
                if (w > mw) mw = w;
            }
        }
    }
    *max_h = mh, *max_w = mw;
}

int det_data_entry(const DetData *d, long entry, DetEntryInfo *out) {
    if (!d || entry < 0 || entry >= d->n) return -1;
    const Entry *e = &d->e[entry];
    *out = (DetEntryInfo){.image = e->image,
                          .id = d->s->images[e->image].id,
                          .flipped = e->flipped,
                          .width = e->w,
                          .height = e->h,
                          .data_width = e->dw,
                          .data_height = e->dh,
                          .scale = e->scale,
                          .ratio = e->ratio,
                          .need_crop = e->need_crop,
                          .n_boxes = e->n_boxes};
    return 0;
}

long det_data_ranked_entry(const DetData *d, long pos) {
    return d && pos >= 0 && pos < d->n ? d->ranked[pos] : -1;
}
double det_data_ranked_ratio(const DetData *d, long pos) {
    return d && pos >= 0 && pos < d->n ? d->ranked_ratio[pos] : NAN;
}

/* ---- one image of a batch ---- */

/* The crop's origin along one axis (roibatchLoader): keep the boxes' extent
 * [lo, hi] (truncated to ints) inside the trim-long window when it fits, at a
 * random offset; otherwise start at most half the excess into it. len is the
 * resized image's length on that axis. The final clamp only matters where the
 * reference itself would fail (an empty np.random.choice range, a window past
 * the edge); it cannot trigger for boxes inside an image scaled by > 0.5. */
static int crop_origin(const float *g, int nb, int axis, int len, int trim, Rng *rng) {
    float mn = g[axis], mx = g[axis + 2];
    for (int j = 1; j < nb; j++) {
        if (g[5 * j + axis] < mn) mn = g[5 * j + axis];
        if (g[5 * j + axis + 2] > mx) mx = g[5 * j + axis + 2];
    }
    const int lo = (int)mn, hi = (int)mx, region = hi - lo + 1;
    int s;
    if (lo == 0) s = 0;
    else if (region < trim) {
        int smin = hi - trim > 0 ? hi - trim : 0;
        int smax = lo < len - trim ? lo : len - trim;
        s = smax > smin ? smin + (int)rng_below(rng, (uint64_t)(smax - smin)) : smin;
    } else {
        int add = (region - trim) / 2;
        s = add == 0 ? lo : lo + (int)rng_below(rng, (uint64_t)add);
    }
    if (s > len - trim) s = len - trim;
    return s < 0 ? 0 : s;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Entry e into slot i of out (already sized and zeroed). r: the batch's
 * target ratio (training); ch x cw: this image's canvas. */
static int load_one(const DetData *d, int32_t ei, float r, int ch, int cw, uint64_t seed, long epoch, DetBatch *out,
                    int i, char *msg, size_t msglen) {
    const Entry *e = &d->e[ei];
    const VocImage *im = &d->s->images[e->image];
    const int train = d->o.train, max_gt = out->max_gt;
    VocTransform t = {.min_size = d->o.min_size,
                      .max_size = 0,
                      .flip = e->flipped ? VOC_FLIP_ALWAYS : VOC_FLIP_NONE,
                      .normalize = 1};
    VocSample smp = {0};
    float *g = malloc((size_t)(e->n_boxes > 0 ? e->n_boxes : 1) * 5 * sizeof *g);
    uint8_t *df = malloc((size_t)(e->n_boxes > 0 ? e->n_boxes : 1));
    int32_t *perm = malloc((size_t)(e->n_boxes > 0 ? e->n_boxes : 1) * sizeof *perm);
    int rc = -1;
    if (!g || !df || !perm) {
        snprintf(msg, msglen, "detect: out of memory loading image %s", im->id);
        goto done;
    }
    if (voc_get(d->s, e->image, &smp, &t, NULL) != 0) {
        snprintf(msg, msglen, "%s", smp.err);
        goto done;
    }
    if (smp.width != e->dw || smp.height != e->dh) { /* cannot happen: both from voc_resize_dims */
        snprintf(msg, msglen, "detect: image %s resized to %dx%d, expected %dx%d", im->id, smp.width, smp.height,
                 e->dw, e->dh);
        goto done;
    }
    const int nb = e->n_boxes;
    for (int j = 0; j < nb; j++) perm[j] = j;
    int y0 = 0, x0 = 0, rows = e->dh, cols = e->dw;
    if (train) {
        Rng rng = rng_stream(seed, RNG_AUGMENT, (uint64_t)epoch, (uint64_t)ei);
        rng_permutation(&rng, perm, nb); /* np.random.shuffle(gt_boxes) */
        for (int j = 0; j < nb; j++) {
            const VocObject *ob = &im->ann.obj[d->obj[e->obj_off + perm[j]]];
            det_box_convert(ob, e->w, e->flipped, e->scale, g + 5 * j);
            g[5 * j + 4] = (float)(ob->label + 1);
            df[j] = (uint8_t)(ob->difficult != 0);
        }
        if (e->need_crop && nb > 0) {
            /* rows when the batch is tall, columns otherwise (also at r = 1) */
            const int axis = r < 1.0f ? 1 : 0;
            const int len = axis ? e->dh : e->dw;
            int trim = axis ? (int)floorf((float)e->dw / r) : (int)ceilf((float)e->dh * r);
            if (trim > len) trim = len;
            const int s = crop_origin(g, nb, axis, len, trim, &rng);
            for (int j = 0; j < nb; j++) {
                g[5 * j + axis] = clampf(g[5 * j + axis] - (float)s, 0.0f, (float)(trim - 1));
                g[5 * j + axis + 2] = clampf(g[5 * j + axis + 2] - (float)s, 0.0f, (float)(trim - 1));
            }
            if (axis) y0 = s, rows = trim;
            else x0 = s, cols = trim;
        }
        if (!(r < 1.0f) && !(r > 1.0f)) { /* the square canvas: boxes clamped to [0, side] */
            const float side = (float)(e->dh < e->dw ? e->dh : e->dw);
            for (int j = 0; j < nb; j++)
                for (int c = 0; c < 4; c++) g[5 * j + c] = clampf(g[5 * j + c], 0.0f, side);
        }
    } else {
        for (int j = 0; j < nb; j++) {
            const VocObject *ob = &im->ann.obj[d->obj[e->obj_off + j]];
            det_box_convert(ob, e->w, 0, e->scale, g + 5 * j);
            g[5 * j + 4] = (float)(ob->label + 1);
            df[j] = (uint8_t)(ob->difficult != 0);
        }
    }

    /* the pixels: the (cropped) image in the canvas's top-left corner */
    const int H = out->H, W = out->W;
    const int ph = rows < ch ? rows : ch, pw = cols < cw ? cols : cw;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < ph; y++)
            memcpy(out->images + (((size_t)i * 3 + c) * H + y) * W,
                   smp.image + ((size_t)c * e->dh + y0 + y) * e->dw + x0, (size_t)pw * sizeof(real));

    /* the gt rows: degenerate boxes dropped (training), the first max_gt kept */
    int k = 0;
    for (int j = 0; j < nb && k < max_gt; j++) {
        const float *b = g + 5 * j;
        if (train && (b[0] == b[2] || b[1] == b[3])) continue;
        memcpy(out->gt + ((size_t)i * max_gt + k) * 5, b, 5 * sizeof *b);
        out->difficult[(size_t)i * max_gt + k] = df[j];
        k++;
    }
    out->num_boxes[i] = k;
    out->entry[i] = ei;
    out->offset[2 * i] = y0, out->offset[2 * i + 1] = x0;
    out->im_info[3 * i] = (float)ch;
    out->im_info[3 * i + 1] = (float)cw;
    out->im_info[3 * i + 2] = (float)e->scale;
    rc = 0;
done:
    voc_sample_free(&smp);
    free(g), free(df), free(perm);
    return rc;
}

static int batch_reserve(DetBatch *b, int B, int max_gt, size_t nimg) {
    if (b->cap_images < nimg) {
        real *p = realloc(b->images, nimg * sizeof *p);
        if (!p) return -1;
        b->images = p, b->cap_images = nimg;
    }
    if (b->cap_b < (size_t)B || b->max_gt != max_gt) {
        float *info = realloc(b->im_info, (size_t)B * 3 * sizeof *info);
        if (info) b->im_info = info;
        float *gt = realloc(b->gt, (size_t)B * max_gt * 5 * sizeof *gt);
        if (gt) b->gt = gt;
        uint8_t *df = realloc(b->difficult, (size_t)B * max_gt);
        if (df) b->difficult = df;
        int32_t *nbx = realloc(b->num_boxes, (size_t)B * sizeof *nbx);
        if (nbx) b->num_boxes = nbx;
        int32_t *en = realloc(b->entry, (size_t)B * sizeof *en);
        if (en) b->entry = en;
        int32_t *of = realloc(b->offset, (size_t)B * 2 * sizeof *of);
        if (of) b->offset = of;
        if (!info || !gt || !df || !nbx || !en || !of) {
            b->cap_b = 0; /* some grew, some did not: size them all again next time */
            return -1;
        }
        b->cap_b = (size_t)B, b->max_gt = max_gt;
    }
    return 0;
}

int det_batch_load(const DetData *d, const int32_t *entries, int B, uint64_t seed, long epoch, DetBatch *out,
                   char *err, size_t errlen) {
    if (errlen) err[0] = '\0';
    if (!d || !entries || !out || B < 1) {
        snprintf(err, errlen, "detect: det_batch_load: no data, entries or batch (B = %d)", B);
        return -1;
    }
    /* the batch's target ratio from its smallest and largest clipped ratios */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < B; i++) {
        if (entries[i] < 0 || entries[i] >= d->n) {
            snprintf(err, errlen, "detect: entry %ld out of range (%ld entries)", (long)entries[i], d->n);
            return -1;
        }
        const double r = d->e[entries[i]].ratio;
        if (r < lo) lo = r;
        if (r > hi) hi = r;
    }
    const float r = d->o.train ? det_target_ratio(lo, hi) : 1.0f;
    int *canvas = malloc((size_t)B * 2 * sizeof *canvas);
    int *rc = malloc((size_t)B * sizeof *rc);
    char *msg = calloc((size_t)B, 4096);
    if (!canvas || !rc || !msg) {
        free(canvas), free(rc), free(msg);
        snprintf(err, errlen, "detect: out of memory for a batch of %d", B);
        return -1;
    }
    int H = 0, W = 0;
    for (int i = 0; i < B; i++) {
        const Entry *e = &d->e[entries[i]];
        int ch = e->dh, cw = e->dw;
        if (d->o.train) det_canvas_size(e->dh, e->dw, r, &ch, &cw);
        canvas[2 * i] = ch, canvas[2 * i + 1] = cw;
        if (ch > H) H = ch;
        if (cw > W) W = cw;
    }
    const int max_gt = d->o.max_gt;
    const size_t nimg = (size_t)B * 3 * H * W;
    if (batch_reserve(out, B, max_gt, nimg) != 0) {
        free(canvas), free(rc), free(msg);
        snprintf(err, errlen, "detect: out of memory for a %dx3x%dx%d batch", B, H, W);
        return -1;
    }
    out->B = B, out->H = H, out->W = W, out->max_gt = max_gt;
    memset(out->images, 0, nimg * sizeof *out->images);
    memset(out->gt, 0, (size_t)B * max_gt * 5 * sizeof *out->gt);
    memset(out->difficult, 0, (size_t)B * max_gt);

    /* each image draws from its own stream, so the thread count cannot matter */
#pragma omp parallel for schedule(dynamic, 1) if (B > 1)
    for (int i = 0; i < B; i++)
        rc[i] = load_one(d, entries[i], r, canvas[2 * i], canvas[2 * i + 1], seed, epoch, out, i,
                         msg + (size_t)i * 4096, 4096);

    int ret = 0;
    for (int i = 0; i < B && ret == 0; i++)
        if (rc[i] != 0) {
            snprintf(err, errlen, "%s", msg + (size_t)i * 4096);
            ret = -1;
        }
    free(canvas), free(rc), free(msg);
    return ret;
}

void det_batch_free(DetBatch *b) {
    if (!b) return;
    free(b->images);
    free(b->im_info);
    free(b->gt);
    free(b->difficult);
    free(b->num_boxes);
    free(b->entry);
    free(b->offset);
    memset(b, 0, sizeof *b);
}
