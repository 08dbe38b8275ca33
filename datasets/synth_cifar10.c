/* Synthetic CIFAR-10 in the real binary format (build/make_cifar10, tests).
 *
 * Class k is a shape of its own (square, disc, ring, horizontal bars, vertical
 * bars, diagonal stripes, cross, triangle, checkerboard, frame) in a colour of
 * its own, on a background of random grey level; position, size and colours
 * are jittered and uniform noise is added, all from an Rng derived from
 * (seed, split, sample index), so a set is a pure function of the seed and
 * a classifier can learn it (the shape alone identifies the class). */
#include "cifar10.h"
#include "dataset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SYNTH_STREAM 0x43494641u /* "CIFA": the generator's own stream id */

static const char *const CLASS_NAMES[CIFAR10_CLASSES] = {"airplane", "automobile", "bird", "cat", "deer",
                                                         "dog", "frog", "horse", "ship", "truck"};
static const uint8_t CLASS_RGB[CIFAR10_CLASSES][3] = {
    {230, 40, 40}, {40, 200, 40}, {40, 60, 230}, {230, 220, 40}, {220, 40, 220},
    {40, 220, 220}, {240, 140, 20}, {140, 60, 200}, {250, 250, 250}, {120, 80, 40}};

static int inside(int k, int x, int y, int cx, int cy, int r) {
    int dx = x - cx, dy = y - cy, adx = dx < 0 ? -dx : dx, ady = dy < 0 ? -dy : dy;
    switch (k) {
    case 0: return adx <= r && ady <= r;                                  /* square */
    case 1: return dx * dx + dy * dy <= r * r;                            /* disc */
    case 2: return dx * dx + dy * dy <= r * r && dx * dx + dy * dy >= (r - 3) * (r - 3); /* ring */
    case 3: return adx <= r && ady <= r && ((y / 3) % 2 == 0);            /* horizontal bars */
    case 4: return adx <= r && ady <= r && ((x / 3) % 2 == 0);            /* vertical bars */
    case 5: return adx <= r && ady <= r && (((x + y) / 3) % 2 == 0);      /* diagonal stripes */
    case 6: return (adx <= 2 && ady <= r) || (ady <= 2 && adx <= r);      /* cross */
    case 7: return dy >= -r && dy <= r && adx <= (dy + r) / 2;            /* triangle */
    case 8: return adx <= r && ady <= r && (((x / 4) + (y / 4)) % 2 == 0); /* checkerboard */
    default: return adx <= r && ady <= r && (adx >= r - 2 || ady >= r - 2); /* frame */
    }
}

void cifar10_synth_record(uint8_t rec[CIFAR10_RECORD_BYTES], int label, Rng *r) {
    const int S = CIFAR10_SIDE;
    rec[0] = (uint8_t)label;
    int bg = 40 + (int)rng_below(r, 120);
    int cx = S / 2 - 4 + (int)rng_below(r, 9), cy = S / 2 - 4 + (int)rng_below(r, 9);
    int rad = 8 + (int)rng_below(r, 5);
    int jit[3];
    for (int c = 0; c < 3; c++) jit[c] = (int)rng_below(r, 41) - 20;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int in = inside(label, x, y, cx, cy, rad);
            for (int c = 0; c < 3; c++) {
                int v = in ? CLASS_RGB[label][c] + jit[c] : bg + ((x + 2 * y + c) % 7) * 3;
                v += (int)rng_below(r, 33) - 16;
                rec[1 + (size_t)c * S * S + (size_t)y * S + x] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
            }
        }
}

void cifar10_synth_sample(uint64_t seed, int split, long i, uint8_t rec[CIFAR10_RECORD_BYTES]) {
    Rng r = rng_stream(seed, SYNTH_STREAM, (uint64_t)split, (uint64_t)i);
    int label = (int)rng_below(&r, CIFAR10_CLASSES);
    cifar10_synth_record(rec, label, &r);
}


static int write_records(const char *path, uint64_t seed, int split, long from, long to, char *err, size_t errlen) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        dataset_errf(err, errlen, "make_cifar10: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t rec[CIFAR10_RECORD_BYTES];
    for (long i = from; i < to; i++) {
        cifar10_synth_sample(seed, split, i, rec);
        if (fwrite(rec, 1, sizeof rec, fp) != sizeof rec) {
            dataset_errf(err, errlen, "make_cifar10: write error on %s: %s", path, strerror(errno));
            fclose(fp);
            return -1;
        }
    }
    if (fclose(fp) != 0) {
        dataset_errf(err, errlen, "make_cifar10: write error on %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cifar10_synth_write(const char *root, long n_train, long n_test, uint64_t seed, char *err, size_t errlen) {
    if (n_train < CIFAR10_TRAIN_FILES || n_test < 1) {
        dataset_errf(err, errlen, "make_cifar10: need at least %d training and 1 test image (got %ld, %ld)",
                CIFAR10_TRAIN_FILES, n_train, n_test);
        return -1;
    }
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, CIFAR10_SUBDIR);
    if (mkdir(root, 0777) != 0 && errno != EEXIST) {
        dataset_errf(err, errlen, "make_cifar10: cannot create %s: %s", root, strerror(errno));
        return -1;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        dataset_errf(err, errlen, "make_cifar10: cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    /* the global training index runs across the files: file f holds [f*N/5, (f+1)*N/5) */
    for (int f = 0; f < CIFAR10_TRAIN_FILES; f++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f + 1);
        if (write_records(path, seed, 0, n_train * f / CIFAR10_TRAIN_FILES, n_train * (f + 1) / CIFAR10_TRAIN_FILES,
                          err, errlen) != 0)
            return -1;
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    if (write_records(path, seed, 1, 0, n_test, err, errlen) != 0) return -1;
    snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
    FILE *fp = fopen(path, "w");
    if (!fp) {
        dataset_errf(err, errlen, "make_cifar10: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    for (int k = 0; k < CIFAR10_CLASSES; k++) fprintf(fp, "%s\n", CLASS_NAMES[k]);
    fprintf(fp, "\n"); /* the real file ends with a blank line too */
    if (fclose(fp) != 0) {
        dataset_errf(err, errlen, "make_cifar10: write error on %s", path);
        return -1;
    }
    return 0;
}
