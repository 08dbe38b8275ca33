/* Fashion-MNIST from its four IDX files (Zalando's distribution format, as
 * shipped gzip'd by Debian's dataset-fashion-mnist).
 *
 * IDX: a big-endian header (magic 0x000008DD: 0x08 = unsigned byte data,
 * DD = number of dimensions; then one uint32 per dimension) followed by exactly
 * prod(dims) bytes. zlib's gzread reads plain files transparently, so the same
 * code serves .gz and uncompressed copies.
 *
 * Everything is validated before a byte is trusted: a wrong file in the data
 * directory must fail here, with its name, not as a mysterious accuracy later. */
#include "dataset.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define FM_SIDE 28
#define FM_CLASSES 10
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
/* no real IDX split is anywhere near this; it bounds malloc on a garbage header */
#define FM_MAX_ITEMS 100000000L


static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Read up to n bytes; gzread takes an unsigned count, so go in pieces.
 * Returns the bytes read, or -1 on a decompression/read error. */
static long long gz_read_all(gzFile g, void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t want = n - done;
        if (want > (size_t)1 << 30) want = (size_t)1 << 30;
        int got = gzread(g, (unsigned char *)buf + done, (unsigned)want);
        if (got < 0) return -1;
        if (got == 0) break;
        done += (size_t)got;
    }
    return (long long)done;
}

static const char *gz_msg(gzFile g) {
    int code = 0;
    const char *m = gzerror(g, &code);
    if (code == Z_ERRNO) return strerror(errno);
    return m && *m ? m : "unknown zlib error";
}

/* Find dir/name.gz, else dir/name; path receives the one used (or the .gz
 * name looked for, when neither exists). */
static gzFile open_idx(const char *dir, const char *name, char *path, size_t pathlen, char *err, size_t errlen) {
    struct stat st;
    snprintf(path, pathlen, "%s/%s.gz", dir, name);
    if (stat(path, &st) != 0) {
        char plain[4096];
        snprintf(plain, sizeof plain, "%s/%s", dir, name);
        if (stat(plain, &st) != 0) {
            dataset_errf(err, errlen,
                    "fashion-mnist: %s not found (nor %s without .gz); "
                    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or set data.path",
                    path, name);
            return NULL;
        }
        snprintf(path, pathlen, "%s", plain);
    }
    gzFile g = gzopen(path, "rb");
    if (!g) {
        dataset_errf(err, errlen, "fashion-mnist: cannot open %s: %s", path, strerror(errno ? errno : ENOMEM));
        return NULL;
    }
    gzbuffer(g, 1 << 18); /* fewer, larger reads: the 47 MB image file decodes faster */
    return g;
}

/* Read one IDX file of unsigned bytes with ndims dimensions into a new buffer. */
static int read_idx(const char *dir, const char *name, uint32_t magic, int ndims, uint32_t dims[3],
                    uint8_t **data, char *path, size_t pathlen, char *err, size_t errlen) {
    *data = NULL;
    gzFile g = open_idx(dir, name, path, pathlen, err, errlen);
    if (!g) return -1;

    unsigned char hdr[16];
    size_t hdrlen = 4 + 4 * (size_t)ndims;
    long long got = gz_read_all(g, hdr, hdrlen);
    if (got < 0) {
        dataset_errf(err, errlen, "fashion-mnist: %s: read error: %s", path, gz_msg(g));
        goto fail;
    }
    if (got < 4) {
        dataset_errf(err, errlen, "fashion-mnist: %s: truncated: %lld bytes, too short for an IDX header", path, got);
        goto fail;
    }
    if (be32(hdr) != magic) {
        dataset_errf(err, errlen, "fashion-mnist: %s: bad magic number 0x%08x (expected 0x%08x, IDX unsigned byte %d-D)",
                path, be32(hdr), magic, ndims);
        goto fail;
    }
    if ((size_t)got < hdrlen) {
        dataset_errf(err, errlen, "fashion-mnist: %s: truncated: IDX header needs %zu bytes, file holds %lld",
                path, hdrlen, got);
        goto fail;
    }
    size_t total = 1;
    for (int d = 0; d < ndims; d++) {
        dims[d] = be32(hdr + 4 + 4 * d);
        total *= dims[d];
        if (dims[d] == 0 || dims[d] > FM_MAX_ITEMS || total > (size_t)FM_MAX_ITEMS * FM_SIDE * FM_SIDE) {
            dataset_errf(err, errlen, "fashion-mnist: %s: implausible dimension %d = %u in header", path, d, dims[d]);
            goto fail;
        }
    }
    /* an image file's items are 28x28: checked before anything is allocated */
    if (ndims == 3 && (dims[1] != FM_SIDE || dims[2] != FM_SIDE)) {
        dataset_errf(err, errlen, "fashion-mnist: %s: images are %ux%u, expected %dx%d", path, dims[1], dims[2], FM_SIDE,
                FM_SIDE);
        goto fail;
    }
    /* The buffer grows as bytes arrive (doubling from 1 MB, capped at the
     * announced size), so a 20-byte file whose header announces gigabytes
     * costs nothing (found by fuzz/fuzz_idx). */
    size_t cap = total < ((size_t)1 << 20) ? total : ((size_t)1 << 20), have = 0;
    *data = malloc(cap);
    if (!*data) {
        dataset_errf(err, errlen, "fashion-mnist: %s: out of memory for %zu bytes", path, cap);
        goto fail;
    }
    for (;;) {
        long long n = gz_read_all(g, *data + have, cap - have);
        if (n < 0) {
            dataset_errf(err, errlen, "fashion-mnist: %s: read error: %s", path, gz_msg(g));
            goto fail;
        }
        have += (size_t)n;
        if (have < cap || cap == total) break; /* short read: end of file; or all announced bytes */
        size_t ncap = cap * 2 < total ? cap * 2 : total;
        uint8_t *nd = realloc(*data, ncap);
        if (!nd) {
            dataset_errf(err, errlen, "fashion-mnist: %s: out of memory for %zu bytes", path, ncap);
            goto fail;
        }
        *data = nd;
        cap = ncap;
    }
    got = (long long)have;
    if ((size_t)got != total) {
        /* zlib flags a compressed stream that stops mid-way (Z_BUF_ERROR) as
         * opposed to a complete gzip of a short file: say which */
        int code = Z_OK;
        gzerror(g, &code);
        dataset_errf(err, errlen, "fashion-mnist: %s: truncated: the header announces %zu data bytes, the file holds %lld%s",
                path, total, got, code == Z_BUF_ERROR ? " before its gzip stream breaks off" : "");
        goto fail;
    }
    /* exactly the announced size: extra bytes mean a header that lies or a
     * concatenation of files, either way not data to train on */
    unsigned char extra;
    got = gz_read_all(g, &extra, 1);
    if (got != 0) {
        if (got < 0) dataset_errf(err, errlen, "fashion-mnist: %s: read error: %s", path, gz_msg(g));
        else dataset_errf(err, errlen, "fashion-mnist: %s: trailing data after the %zu data bytes the header announces",
                     path, total);
        goto fail;
    }
    if (gzclose(g) != Z_OK) {
        dataset_errf(err, errlen, "fashion-mnist: %s: error at close (corrupt gzip stream?)", path);
        free(*data);
        *data = NULL;
        return -1;
    }
    return 0;
fail:
    free(*data);
    *data = NULL;
    gzclose(g);
    return -1;
}

/* One split: images and labels, checked against each other. */
static int load_split(Dataset *ds, const char *dir, const char *img_name, const char *lab_name, const char *split,
                      char *err, size_t errlen) {
    char ipath[4096], lpath[4096];
    uint32_t idims[3], ldims[3];
    uint8_t *images = NULL, *labels = NULL;
    memset(ds, 0, sizeof(*ds));
    if (read_idx(dir, img_name, IDX_MAGIC_IMAGES, 3, idims, &images, ipath, sizeof ipath, err, errlen) != 0)
        return -1;
    if (idims[1] != FM_SIDE || idims[2] != FM_SIDE) {
        dataset_errf(err, errlen, "fashion-mnist: %s: images are %ux%u, expected %dx%d", ipath, idims[1], idims[2],
                FM_SIDE, FM_SIDE);
        goto fail;
    }
    if (read_idx(dir, lab_name, IDX_MAGIC_LABELS, 1, ldims, &labels, lpath, sizeof lpath, err, errlen) != 0)
        goto fail;
    if (ldims[0] != idims[0]) {
        dataset_errf(err, errlen, "fashion-mnist: %s holds %u labels but %s holds %u images", lpath, ldims[0], ipath,
                idims[0]);
        goto fail;
    }
    for (uint32_t i = 0; i < ldims[0]; i++) {
        if (labels[i] >= FM_CLASSES) {
            dataset_errf(err, errlen, "fashion-mnist: %s: label %u of sample %u is outside 0..%d", lpath, labels[i], i,
                    FM_CLASSES - 1);
            goto fail;
        }
    }
    snprintf(ds->name, sizeof ds->name, "fashion-mnist/%s", split);
    /* a very long path is cut: source is for people to read */
    size_t len = strnlen(ipath, sizeof ds->source - 1);
    memcpy(ds->source, ipath, len);
    ds->source[len] = '\0';
    ds->n = idims[0];
    ds->channels = 1;
    ds->height = FM_SIDE;
    ds->width = FM_SIDE;
    ds->num_classes = FM_CLASSES;
    ds->images = images;
    ds->labels = labels;
    ds->get = dataset_get_u8;
    return 0;
fail:
    free(images);
    free(labels);
    memset(ds, 0, sizeof(*ds));
    return -1;
}

int fashion_mnist_load(Dataset *train, Dataset *test, const char *dir, char *err, size_t errlen) {
    if (!train) {
        dataset_errf(err, errlen, "fashion-mnist: no training Dataset given");
        return -1;
    }
    /* both come back empty on any failure, so dataset_free on them is safe */
    memset(train, 0, sizeof(*train));
    if (test) memset(test, 0, sizeof(*test));
    if (!dir || !*dir) dir = FASHION_MNIST_DEFAULT_DIR;
    if (load_split(train, dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "train", err, errlen) != 0)
        return -1;
    if (test && load_split(test, dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "test", err, errlen) != 0) {
        dataset_free(train);
        return -1;
    }

    /* Normalisation statistics from the training images only (the test split
     * must not leak into preprocessing). A histogram of the 256 byte values
     * makes the sums exact, whatever the summation order. */
    uint64_t hist[256] = {0};
    size_t npix = (size_t)train->n * FM_SIDE * FM_SIDE;
    for (size_t i = 0; i < npix; i++) hist[train->images[i]]++;
    double s1 = 0.0, s2 = 0.0;
    for (int v = 0; v < 256; v++) {
        double x = v / 255.0;
        s1 += (double)hist[v] * x;
        s2 += (double)hist[v] * x * x;
    }
    double mean = s1 / (double)npix;
    double var = s2 / (double)npix - mean * mean;
    float std = (float)sqrt(var > 0 ? var : 0);
    if (!(std > 0)) std = 1.0f; /* a constant image set: leave the scale alone */
    train->mean[0] = (float)mean;
    train->std[0] = std;
    if (test) {
        test->mean[0] = (float)mean;
        test->std[0] = std;
    }
    return 0;
}
