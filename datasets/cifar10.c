/* CIFAR-10 from its binary distribution (see cifar10.h for the format).
 *
 * Everything is validated before a byte is trusted: each file must exist and
 * hold a whole, non-zero number of 3073-byte records, and every label must be
 * 0..9; a failure names the file (and record or byte count). */
#include "cifar10.h"
#include "dataset.h"

#include "augment_cifar.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char names[CIFAR10_CLASSES][32];
} Cifar10Impl;


void cifar10_resolve_dir(const char *dir, char *out, size_t outlen) {
    if (dir && *dir) {
        snprintf(out, outlen, "%s", dir);
        return;
    }
    const char *root = getenv("CBNN_DATA");
    if (root && *root) snprintf(out, outlen, "%s/%s", root, CIFAR10_SUBDIR);
    else snprintf(out, outlen, "data/%s", CIFAR10_SUBDIR);
}

static int missing(const char *path, char *err, size_t errlen) {
    dataset_errf(err, errlen,
            "cifar10: %s not found (%s); datasets/fetch_cifar10.sh [DIR] fetches CIFAR-10 into "
            "DIR/cifar-10-batches-bin (default DIR: $CBNN_DATA or data), or set data.path",
            path, strerror(errno));
    return -1;
}

/* read a whole batch file; *nrec = its number of records */
static uint8_t *read_batch(const char *path, long *nrec, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        missing(path, err, errlen);
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        dataset_errf(err, errlen, "cifar10: %s: not a regular file", path);
        fclose(fp);
        return NULL;
    }
    long long size = (long long)st.st_size;
    if (size == 0 || size % CIFAR10_RECORD_BYTES != 0) {
        dataset_errf(err, errlen,
                "cifar10: %s: %lld bytes is not a whole number of %d-byte records (1 label + 3072 pixels)%s",
                path, size, CIFAR10_RECORD_BYTES, size == 0 ? ": the file is empty" : " (truncated or not CIFAR-10 binary)");
        fclose(fp);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)size);
    if (!buf) {
        dataset_errf(err, errlen, "cifar10: %s: out of memory for %lld bytes", path, size);
        fclose(fp);
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)size, fp);
    if (got != (size_t)size) {
        dataset_errf(err, errlen, "cifar10: %s: read %zu of %lld bytes: %s", path, got, size,
                ferror(fp) ? strerror(errno) : "unexpected end of file");
        free(buf);
        fclose(fp);
        return NULL;
    }
    fclose(fp);
    *nrec = (long)(size / CIFAR10_RECORD_BYTES);
    return buf;
}

/* append the records of files[0..nfiles) to ds */
static int load_split(Dataset *ds, const char *dir, const char *const *files, int nfiles, char *err, size_t errlen) {
    char path[4200];
    uint8_t *bufs[CIFAR10_TRAIN_FILES] = {0};
    long counts[CIFAR10_TRAIN_FILES] = {0}, total = 0;
    int rc = -1;
    for (int f = 0; f < nfiles; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        bufs[f] = read_batch(path, &counts[f], err, errlen);
        if (!bufs[f]) goto done;
        for (long r = 0; r < counts[f]; r++) {
            uint8_t lab = bufs[f][(size_t)r * CIFAR10_RECORD_BYTES];
            if (lab >= CIFAR10_CLASSES) {
                dataset_errf(err, errlen, "cifar10: %s: record %ld (byte offset %ld) has label %u, outside 0..%d", path, r,
                        r * (long)CIFAR10_RECORD_BYTES, lab, CIFAR10_CLASSES - 1);
                goto done;
            }
        }
        total += counts[f];
    }
    if (total <= 0 || total > 100000000L) {
        dataset_errf(err, errlen, "cifar10: %s: implausible number of records %ld", dir, total);
        goto done;
    }
    ds->images = malloc((size_t)total * CIFAR10_IMAGE_BYTES);
    ds->labels = malloc((size_t)total);
    if (!ds->images || !ds->labels) {
        dataset_errf(err, errlen, "cifar10: %s: out of memory for %ld images", dir, total);
        goto done;
    }
    long k = 0;
    for (int f = 0; f < nfiles; f++)
        for (long r = 0; r < counts[f]; r++, k++) {
            const uint8_t *rec = bufs[f] + (size_t)r * CIFAR10_RECORD_BYTES;
            ds->labels[k] = rec[0];
            memcpy(ds->images + (size_t)k * CIFAR10_IMAGE_BYTES, rec + 1, CIFAR10_IMAGE_BYTES);
        }
    snprintf(ds->name, sizeof ds->name, "cifar10");
    size_t len = strnlen(dir, sizeof ds->source - 1);
    memcpy(ds->source, dir, len);
    ds->source[len] = '\0';
    ds->n = total;
    ds->channels = 3;
    ds->height = CIFAR10_SIDE;
    ds->width = CIFAR10_SIDE;
    ds->num_classes = CIFAR10_CLASSES;
    ds->get = cifar10_get;
    rc = 0;
done:
    for (int f = 0; f < nfiles; f++) free(bufs[f]);
    return rc;
}

/* batches.meta.txt: 10 non-empty lines (trailing blank lines allowed) */
static int read_meta(const char *dir, Cifar10Impl *impl, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) return missing(path, err, errlen);
    char line[256];
    int k = 0;
    while (fgets(line, sizeof line, fp)) {
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = '\0';
        if (l == 0) continue;
        if (k >= CIFAR10_CLASSES) {
            dataset_errf(err, errlen, "cifar10: %s: more than %d class names (\"%s\")", path, CIFAR10_CLASSES, line);
            fclose(fp);
            return -1;
        }
        snprintf(impl->names[k++], sizeof impl->names[0], "%s", line);
    }
    fclose(fp);
    if (k != CIFAR10_CLASSES) {
        dataset_errf(err, errlen, "cifar10: %s: %d class names, expected %d", path, k, CIFAR10_CLASSES);
        return -1;
    }
    return 0;
}

int cifar10_load(Dataset *train, Dataset *test, const char *dir_in, char *err, size_t errlen) {
    static const char *const train_files[CIFAR10_TRAIN_FILES] = {"data_batch_1.bin", "data_batch_2.bin",
                                                                 "data_batch_3.bin", "data_batch_4.bin",
                                                                 "data_batch_5.bin"};
    static const char *const test_files[1] = {"test_batch.bin"};
    if (!train) {
        dataset_errf(err, errlen, "cifar10: no training Dataset given");
        return -1;
    }
    memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    char dir[4096];
    cifar10_resolve_dir(dir_in, dir, sizeof dir);

    Cifar10Impl meta;
    if (read_meta(dir, &meta, err, errlen) != 0) return -1;
    if (load_split(train, dir, train_files, CIFAR10_TRAIN_FILES, err, errlen) != 0) goto fail;
    if (test && load_split(test, dir, test_files, 1, err, errlen) != 0) goto fail;
    train->impl = malloc(sizeof meta);
    if (test) test->impl = malloc(sizeof meta);
    if (!train->impl || (test && !test->impl)) {
        dataset_errf(err, errlen, "cifar10: out of memory");
        goto fail;
    }
    memcpy(train->impl, &meta, sizeof meta);
    if (test) memcpy(test->impl, &meta, sizeof meta);

    /* per-channel statistics of the training images on [0,1], exact through
     * a histogram of byte values (independent of summation order) */
    const size_t plane = (size_t)CIFAR10_SIDE * CIFAR10_SIDE;
    for (int c = 0; c < 3; c++) {
        uint64_t hist[256] = {0};
        for (long i = 0; i < train->n; i++) {
            const uint8_t *p = train->images + (size_t)i * CIFAR10_IMAGE_BYTES + c * plane;
            for (size_t k = 0; k < plane; k++) hist[p[k]]++;
        }
        double s1 = 0.0, s2 = 0.0, npix = (double)train->n * (double)plane;
        for (int v = 0; v < 256; v++) {
            double x = v / 255.0;
            s1 += (double)hist[v] * x;
            s2 += (double)hist[v] * x * x;
        }
        double mean = s1 / npix, var = s2 / npix - mean * mean;
        float sd = (float)sqrt(var > 0 ? var : 0);
        if (!(sd > 0)) sd = 1.0f;
        train->mean[c] = (float)mean;
        train->std[c] = sd;
        if (test) test->mean[c] = (float)mean, test->std[c] = sd;
    }
    return 0;
fail:
    dataset_free(train);
    if (test) dataset_free(test);
    return -1;
}

const char *cifar10_class_name(const Dataset *ds, int k) {
    if (!ds || !ds->impl || k < 0 || k >= CIFAR10_CLASSES || strcmp(ds->name, "cifar10") != 0) return "?";
    return ((const Cifar10Impl *)ds->impl)->names[k];
}

int cifar10_get(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng) {
    if (!ds || !ds->images || i < 0 || i >= ds->n || ds->channels < 1 || ds->channels > 3) return -1;
    const size_t sample = (size_t)ds->channels * ds->height * ds->width;
    cifar_augment(ds->images + (size_t)i * sample, out, ds->channels, ds->height, ds->width, ds->mean, ds->std, aug,
                  rng);
    if (label) *label = ds->labels ? (int32_t)ds->labels[i] : -1;
    return 0;
}
