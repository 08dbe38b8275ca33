/* Generic dataset helpers: the get() of in-memory uint8 datasets (with
 * augmentation), batching, truncation, freeing.
 *
 * Determinism: a sample's augmentation depends only on the Rng handed to get(),
 * and dataset_batch derives that Rng from (seed, epoch, sample index), never
 * from the thread or the position in the batch. So a batch is bit-identical
 * for any OpenMP thread count and any batch composition. */
#include "dataset.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dataset_get_u8(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng) {
    if (!ds || !ds->images || i < 0 || i >= ds->n) return -1;
    const int C = ds->channels, H = ds->height, W = ds->width;
    const size_t plane = (size_t)H * W;
    const uint8_t *img = ds->images + (size_t)i * C * plane;

    /* Random draws, always in this order and only for what is enabled:
     * crop row offset, crop column offset, flip. With no rng (evaluation)
     * nothing random is applied. Offsets are in [0, 2*pad] of the zero-padded
     * image, so oy - pad is the shift in [-pad, pad] (0 = no shift). */
    int dy = 0, dx = 0, flip = 0;
    if (aug && rng) {
        if (aug->crop_pad > 0) {
            uint64_t span = 2 * (uint64_t)aug->crop_pad + 1;
            dy = (int)rng_below(rng, span) - aug->crop_pad;
            dx = (int)rng_below(rng, span) - aug->crop_pad;
        }
        if (aug->flip) flip = (int)(rng_u64(rng) >> 63); /* top bit: p = 0.5 */
    }
    const int normalize = aug && aug->normalize;

    for (int c = 0; c < C; c++) {
        const uint8_t *src = img + c * plane;
        real *dst = out + c * plane;
        /* value of a zero pixel after scaling (and normalisation): the padding */
        real scale = (real)(1.0 / 255.0), shift = 0;
        if (normalize) {
            double s = ds->std[c] > 0 ? ds->std[c] : 1.0;
            scale = (real)(1.0 / (255.0 * s));
            shift = (real)(-ds->mean[c] / s);
        }
        for (int y = 0; y < H; y++) {
            int sy = y + dy;
            real *row = dst + (size_t)y * W;
            if (sy < 0 || sy >= H) {
                for (int x = 0; x < W; x++) row[x] = shift;
                continue;
            }
            const uint8_t *srow = src + (size_t)sy * W;
            for (int x = 0; x < W; x++) {
                /* the flip is of the cropped output, i.e. of the padded image
                 * around the crop window's centre */
                int ox = flip ? W - 1 - x : x;
                int sx = ox + dx;
                row[x] = (sx < 0 || sx >= W) ? shift : (real)srow[sx] * scale + shift;
            }
        }
    }
    if (label) *label = ds->labels ? (int32_t)ds->labels[i] : -1;
    return 0;
}

void dataset_truncate(Dataset *ds, long n) {
    /* only the count changes: the buffers keep their size, which costs some
     * memory but keeps pointers into them valid */
    if (!ds || n <= 0 || n >= ds->n) return;
    ds->n = n;
}

int dataset_batch(const Dataset *ds, const int32_t *idx, int B, real *out, int32_t *labels, const Augment *aug,
                  int train, uint64_t seed, long epoch, char *err, size_t errlen) {
    const size_t sample = (size_t)ds->channels * ds->height * ds->width;
    int first_bad = B; /* the lowest failed position, whatever the thread order: one message for a given batch */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        Rng rng = rng_stream(seed, RNG_AUGMENT, (uint64_t)epoch, (uint64_t)(uint32_t)idx[b]);
        int32_t lab = 0;
        real *dst = out + (size_t)b * sample;
        if (ds->get(ds, idx[b], dst, &lab, aug, train ? &rng : NULL) != 0) {
            /* zeroed so that nothing reads stale memory, but the return value,
             * not the contents, says the batch is unusable */
            memset(dst, 0, sample * sizeof(real));
            lab = 0;
#pragma omp critical(dataset_batch_bad)
            if (b < first_bad) first_bad = b;
        }
        if (labels) labels[b] = lab;
    }
    if (first_bad == B) return 0;
    char where[96];
    snprintf(where, sizeof where, "position %d of a%s batch of %d", first_bad, train ? " training" : "n evaluation", B);
    dataset_sample_errf(ds, idx[first_bad], where, err, errlen);
    return -1;
}

void dataset_sample_errf(const Dataset *ds, long i, const char *where, char *err, size_t errlen) {
    char why[400] = "";
    if (ds->last_error) ds->last_error(ds, why, sizeof why);
    dataset_errf(err, errlen, "%s: reading sample %ld failed (%s)%s%s", ds->name[0] ? ds->name : "dataset", i, where,
                 why[0] ? ": " : "", why);
}

void dataset_free(Dataset *ds) {
    if (!ds) return;
    /* destroy releases what only the dataset knows about (files, decoders,
     * whatever impl points to); impl itself and the arrays are freed here */
    if (ds->destroy) ds->destroy(ds);
    free(ds->images);
    free(ds->labels);
    free(ds->impl);
    memset(ds, 0, sizeof(*ds));
}

int dataset_nominal(const char *name, DatasetShape *out) {
    /* ImageNet: ILSVRC-2012 train / val; the training resolution is the crop */
    static const struct { const char *name; DatasetShape s; } known[] = {
        {"fashion_mnist", {1, 28, 28, 10, 60000, 10000}},
        {"cifar10", {3, 32, 32, 10, 50000, 10000}},
        {"imagenet", {3, 224, 224, 1000, 1281167, 50000}}, /* the side is data.image_size (224 default) */
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!strcmp(known[i].name, name)) {
            *out = known[i].s;
            return 0;
        }
    }
    return -1;
}

void dataset_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
