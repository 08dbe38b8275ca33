/* Fashion-MNIST loader and dataset batching.
 *
 * 1. The real Debian files (dataset-fashion-mnist): sizes, label histograms,
 *    known values, normalisation statistics. Absent files are a FAILURE, not a
 *    skip: CI installs the package, and a silently skipped data test hides a
 *    broken setup.
 * 2. The loader's validation, on small IDX files written here and corrupted
 *    one way at a time: each must give -1 and a message naming the file.
 * 3. Augmentation and batching: exact crop/flip/normalise semantics on a
 *    synthetic image whose pixels are all distinct, independence from the
 *    thread count, dependence on the epoch. */
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "datasets/dataset.h"
#include "testutil.h"

static const char *FILES[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                               "t10k-labels-idx1-ubyte"};
enum { TRI, TRL, TEI, TEL };

/* ---- helpers ---- */

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

typedef struct {
    uint8_t *b;
    size_t len;
} Buf;

static Buf idx_images(uint32_t magic, uint32_t n, uint32_t h, uint32_t w, uint32_t salt) {
    Buf b = {malloc(16 + (size_t)n * h * w), 16 + (size_t)n * h * w};
    put_be32(b.b, magic), put_be32(b.b + 4, n), put_be32(b.b + 8, h), put_be32(b.b + 12, w);
    for (size_t i = 0; i < (size_t)n * h * w; i++) b.b[16 + i] = (uint8_t)(i * 31 + salt + i / 97);
    return b;
}

static Buf idx_labels(uint32_t magic, uint32_t n, uint32_t salt) {
    Buf b = {malloc(8 + n), 8 + n};
    put_be32(b.b, magic), put_be32(b.b + 4, n);
    for (uint32_t i = 0; i < n; i++) b.b[8 + i] = (uint8_t)((i * 7 + salt) % 10);
    return b;
}

static void write_file(const char *dir, const char *name, const Buf *b, int gz) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    if (gz) {
        gzFile g = gzopen(path, "wb");
        CHECK(g != NULL, "gzopen %s", path);
        if (!g) return;
        CHECK(gzwrite(g, b->b, (unsigned)b->len) == (int)b->len, "gzwrite %s", path);
        gzclose(g);
    } else {
        FILE *fp = fopen(path, "wb");
        CHECK(fp != NULL, "fopen %s", path);
        if (!fp) return;
        CHECK(fwrite(b->b, 1, b->len, fp) == b->len, "fwrite %s", path);
        fclose(fp);
    }
}

/* the four files of a small valid set: 100 train, 20 test images */
#define SYN_TRAIN 100
#define SYN_TEST 20
static void valid_set(Buf f[4]) {
    f[TRI] = idx_images(0x803, SYN_TRAIN, 28, 28, 3);
    f[TRL] = idx_labels(0x801, SYN_TRAIN, 1);
    f[TEI] = idx_images(0x803, SYN_TEST, 28, 28, 5);
    f[TEL] = idx_labels(0x801, SYN_TEST, 4);
}

static void free_set(Buf f[4]) {
    for (int i = 0; i < 4; i++) free(f[i].b);
}

/* write a set into a new subdir of root; skip = index of a file not to write */
static void write_set(char *dir, size_t dirlen, const char *root, const char *sub, Buf f[4], int gz, int skip) {
    snprintf(dir, dirlen, "%s/%s", root, sub);
    CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    for (int i = 0; i < 4; i++)
        if (i != skip) write_file(dir, FILES[i], &f[i], gz);
}

/* the load must fail, leave both datasets empty, and mention every needle */
static void expect_fail(const char *what, const char *dir, const char *n1, const char *n2, const char *n3) {
    Dataset tr, te;
    memset(&tr, 0x5a, sizeof tr), memset(&te, 0x5a, sizeof te); /* garbage in: load must not trust it */
    char err[1024] = "";
    int rc = fashion_mnist_load(&tr, &te, dir, err, sizeof err);
    CHECK(rc == -1, "%s: load returned %d", what, rc);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i]) CHECK(strstr(err, needles[i]) != NULL, "%s: message lacks \"%s\": %s", what, needles[i], err);
    printf("  %-22s -> %s\n", what, err);
    if (rc == 0) {
        dataset_free(&tr);
        dataset_free(&te);
    } else {
        CHECK(tr.images == NULL && te.images == NULL && tr.n == 0, "%s: datasets not left empty", what);
    }
}

/* ---- 1. the real files ---- */

static void test_real(Dataset *tr, Dataset *te, int *ok) {
    char err[1024] = "";
    double t0 = omp_get_wtime();
    int rc = fashion_mnist_load(tr, te, NULL, err, sizeof err);
    double dt = omp_get_wtime() - t0;
    *ok = rc == 0;
    CHECK(rc == 0, "loading the Debian Fashion-MNIST from %s failed: %s", FASHION_MNIST_DEFAULT_DIR, err);
    if (rc) return;
    printf("loaded %s (%ld) + %s (%ld) in %.3f s\n", tr->source, tr->n, te->source, te->n, dt);

    CHECK(tr->n == 60000 && te->n == 10000, "sizes %ld/%ld", tr->n, te->n);
    CHECK(tr->channels == 1 && tr->height == 28 && tr->width == 28 && tr->num_classes == 10, "geometry");
    CHECK(te->channels == 1 && te->height == 28 && te->width == 28 && te->num_classes == 10, "test geometry");
    CHECK(tr->get == dataset_get_u8 && te->get == dataset_get_u8, "get");
    CHECK(strstr(tr->name, "train") && strstr(te->name, "test"), "names %s %s", tr->name, te->name);
    CHECK(strstr(tr->source, "train-images-idx3-ubyte") != NULL, "source %s", tr->source);
    long htr[10] = {0}, hte[10] = {0};
    for (long i = 0; i < tr->n; i++) htr[tr->labels[i]]++;
    for (long i = 0; i < te->n; i++) hte[te->labels[i]]++;
    for (int c = 0; c < 10; c++) {
        CHECK(htr[c] == 6000, "train class %d has %ld", c, htr[c]);
        CHECK(hte[c] == 1000, "test class %d has %ld", c, hte[c]);
    }
    CHECK(tr->labels[0] == 9, "first training label %d (expected 9, ankle boot)", tr->labels[0]);
    CHECK(te->labels[0] == 9, "first test label %d (expected 9)", te->labels[0]);

    /* Reference values computed once from the same files with an independent
     * reader (Python's gzip + numpy): the byte sum of all 47,040,000 training
     * pixels is 3431114169, of the 7,840,000 test pixels 573469082, and the
     * first training image's pixels sum to 76247. Any mis-read offset, lost
     * block or byte-order mix-up changes these. */
    uint64_t s = 0, st = 0, s0 = 0;
    for (size_t i = 0; i < (size_t)tr->n * 784; i++) s += tr->images[i];
    for (size_t i = 0; i < (size_t)te->n * 784; i++) st += te->images[i];
    for (size_t i = 0; i < 784; i++) s0 += tr->images[i];
    CHECK(s == 3431114169ULL, "train pixel sum %llu", (unsigned long long)s);
    CHECK(st == 573469082ULL, "test pixel sum %llu", (unsigned long long)st);
    CHECK(s0 == 76247, "first image pixel sum %llu", (unsigned long long)s0);

    /* the well-known statistics (0.2860, 0.3530); numpy gives 0.28604060, 0.35302424 */
    printf("mean %.6f std %.6f\n", tr->mean[0], tr->std[0]);
    CHECK(fabs(tr->mean[0] - 0.2860406) < 1e-5, "mean %f", tr->mean[0]);
    CHECK(fabs(tr->std[0] - 0.3530242) < 1e-5, "std %f", tr->std[0]);
    CHECK(te->mean[0] == tr->mean[0] && te->std[0] == tr->std[0], "test split must use the training statistics");

    /* get() without augmentation gives bytes / 255 */
    real img[784];
    int32_t lab = -1;
    CHECK(dataset_get_u8(tr, 0, img, &lab, NULL, NULL) == 0 && lab == 9, "get 0");
    double maxerr = 0;
    for (int i = 0; i < 784; i++) maxerr = fmax(maxerr, fabs(img[i] - tr->images[i] / 255.0));
    CHECK(maxerr < 1e-6, "scaling error %g", maxerr);
    CHECK(dataset_get_u8(tr, 60000, img, &lab, NULL, NULL) == -1, "out of range index must fail");
    CHECK(dataset_get_u8(tr, -1, img, &lab, NULL, NULL) == -1, "negative index must fail");
}

static void test_batches_real(const Dataset *tr) {
    enum { B = 512 };
    int32_t idx[B], lab1[B], lab2[B];
    Rng r = rng_stream(7, RNG_TEST, 0, 0);
    for (int b = 0; b < B; b++) idx[b] = (int32_t)rng_below(&r, (uint64_t)tr->n);
    size_t S = 784;
    real *a = malloc(B * S * sizeof(real)), *c = malloc(B * S * sizeof(real)), *d = malloc(B * S * sizeof(real));
    Augment aug = {.flip = 1, .crop_pad = 2, .normalize = 1};

    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK(dataset_batch(tr, idx, B, a, lab1, &aug, 1, 1234, 3, NULL, 0) == 0, "dataset_batch");
    omp_set_num_threads(2);
    CHECK(dataset_batch(tr, idx, B, c, lab2, &aug, 1, 1234, 3, NULL, 0) == 0, "dataset_batch");
    CHECK(memcmp(a, c, B * S * sizeof(real)) == 0, "batch differs between 1 and 2 threads");
    CHECK(memcmp(lab1, lab2, sizeof lab1) == 0, "labels differ between 1 and 2 threads");
    for (int b = 0; b < B; b++) CHECK(lab1[b] == tr->labels[idx[b]], "label of sample %d", b);

    /* a sample's augmentation depends on (seed, epoch, index), not on its slot */
    int32_t ridx[B];
    for (int b = 0; b < B; b++) ridx[b] = idx[B - 1 - b];
    CHECK(dataset_batch(tr, ridx, B, d, lab2, &aug, 1, 1234, 3, NULL, 0) == 0, "dataset_batch");
    int same = 1;
    for (int b = 0; b < B; b++) same &= memcmp(a + b * S, d + (B - 1 - b) * S, S * sizeof(real)) == 0;
    CHECK(same, "reordered batch gives different samples");

    CHECK(dataset_batch(tr, idx, B, d, lab2, &aug, 1, 1234, 4, NULL, 0) == 0, "dataset_batch");
    CHECK(memcmp(a, d, B * S * sizeof(real)) != 0, "epoch 4 gives the same batch as epoch 3");
    CHECK(dataset_batch(tr, idx, B, d, lab2, &aug, 1, 1235, 3, NULL, 0) == 0, "dataset_batch");
    CHECK(memcmp(a, d, B * S * sizeof(real)) != 0, "another seed gives the same batch");

    /* augmentation changes pixels for most samples; evaluation mode does not augment */
    Augment none = {.normalize = 1};
    CHECK(dataset_batch(tr, idx, B, d, lab2, &none, 1, 1234, 3, NULL, 0) == 0, "dataset_batch");
    int changed = 0;
    for (int b = 0; b < B; b++) changed += memcmp(a + b * S, d + b * S, S * sizeof(real)) != 0;
    /* identity needs dy = dx = 0 and no flip: 1/50 of samples */
    CHECK(changed > B * 8 / 10, "only %d of %d samples changed by augmentation", changed, B);
    CHECK(dataset_batch(tr, idx, B, c, lab2, &aug, 0, 1234, 3, NULL, 0) == 0, "dataset_batch");
    CHECK(memcmp(c, d, B * S * sizeof(real)) == 0, "train=0 must only normalise");

    /* normalised over a big random batch: mean ~0, std ~1 (train=1 with flips
     * only, which keep the pixel statistics) */
    enum { BIG = 8192 };
    int32_t *bidx = malloc(BIG * sizeof(int32_t)), *blab = malloc(BIG * sizeof(int32_t));
    real *big = malloc((size_t)BIG * S * sizeof(real));
    for (int b = 0; b < BIG; b++) bidx[b] = (int32_t)rng_below(&r, (uint64_t)tr->n);
    Augment fl = {.flip = 1, .normalize = 1};
    CHECK(dataset_batch(tr, bidx, BIG, big, blab, &fl, 1, 99, 0, NULL, 0) == 0, "dataset_batch");
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < (size_t)BIG * S; i++) s1 += big[i], s2 += (double)big[i] * big[i];
    double m = s1 / ((double)BIG * S), sd = sqrt(s2 / ((double)BIG * S) - m * m);
    printf("normalised batch of %d: mean %.4f std %.4f\n", BIG, m, sd);
    CHECK(fabs(m) < 0.02, "normalised mean %f", m);
    CHECK(fabs(sd - 1) < 0.02, "normalised std %f", sd);
    free(bidx), free(blab), free(big);
    omp_set_num_threads(saved);
    free(a), free(c), free(d);
}

/* ---- 2. validation on corrupted copies ---- */

static void test_validation(const char *root) {
    char dir[1024];
    Buf f[4];

    /* valid, gzip'd and plain: loads and reads back exactly */
    for (int gz = 1; gz >= 0; gz--) {
        valid_set(f);
        write_set(dir, sizeof dir, root, gz ? "valid_gz" : "valid_raw", f, gz, -1);
        Dataset tr, te;
        char err[1024] = "";
        int rc = fashion_mnist_load(&tr, &te, dir, err, sizeof err);
        CHECK(rc == 0, "valid %s set: %s", gz ? "gzip" : "plain", err);
        if (rc == 0) {
            CHECK(tr.n == SYN_TRAIN && te.n == SYN_TEST, "synthetic sizes %ld %ld", tr.n, te.n);
            CHECK(memcmp(tr.images, f[TRI].b + 16, SYN_TRAIN * 784) == 0, "train images differ");
            CHECK(memcmp(te.images, f[TEI].b + 16, SYN_TEST * 784) == 0, "test images differ");
            CHECK(memcmp(tr.labels, f[TRL].b + 8, SYN_TRAIN) == 0, "train labels differ");
            CHECK(memcmp(te.labels, f[TEL].b + 8, SYN_TEST) == 0, "test labels differ");
            CHECK(strstr(tr.source, gz ? ".gz" : "ubyte") != NULL, "source %s", tr.source);
            double s1 = 0, s2 = 0;
            for (int i = 0; i < SYN_TRAIN * 784; i++) s1 += f[TRI].b[16 + i] / 255.0;
            double mean = s1 / (SYN_TRAIN * 784);
            for (int i = 0; i < SYN_TRAIN * 784; i++) s2 += pow(f[TRI].b[16 + i] / 255.0 - mean, 2);
            double sd = sqrt(s2 / (SYN_TRAIN * 784));
            CHECK(fabs(tr.mean[0] - mean) < 1e-6 && fabs(tr.std[0] - sd) < 1e-6, "stats %f %f vs %f %f",
                  tr.mean[0], tr.std[0], mean, sd);
            dataset_free(&tr);
            dataset_free(&te);
        }
        free_set(f);
    }

    valid_set(f);
    put_be32(f[TRI].b, 0x00000801);
    write_set(dir, sizeof dir, root, "bad_magic", f, 1, -1);
    expect_fail("wrong magic", dir, "train-images-idx3-ubyte", "magic", NULL);
    free_set(f);

    valid_set(f);
    f[TRI].len = 16 + SYN_TRAIN * 784 / 2; /* gzip of a file cut in the middle */
    write_set(dir, sizeof dir, root, "truncated", f, 1, -1);
    expect_fail("truncated images", dir, "train-images-idx3-ubyte", "78400", "39200");
    free_set(f);

    valid_set(f);
    f[TEI].b = realloc(f[TEI].b, f[TEI].len + 10);
    memset(f[TEI].b + f[TEI].len, 0, 10);
    f[TEI].len += 10;
    write_set(dir, sizeof dir, root, "trailing", f, 0, -1);
    expect_fail("trailing data", dir, "t10k-images-idx3-ubyte", "trailing", NULL);
    free_set(f);

    valid_set(f);
    free(f[TRL].b);
    f[TRL] = idx_labels(0x801, SYN_TRAIN - 1, 1);
    write_set(dir, sizeof dir, root, "count_mismatch", f, 1, -1);
    expect_fail("label count mismatch", dir, "train-labels-idx1-ubyte", "99", NULL);
    free_set(f);

    valid_set(f);
    f[TEL].b[8 + 5] = 12;
    write_set(dir, sizeof dir, root, "label12", f, 1, -1);
    expect_fail("label 12", dir, "t10k-labels-idx1-ubyte", "12", NULL);
    free_set(f);

    valid_set(f);
    free(f[TEI].b);
    f[TEI] = idx_images(0x803, SYN_TEST, 32, 32, 5);
    write_set(dir, sizeof dir, root, "dims", f, 1, -1);
    expect_fail("32x32 images", dir, "t10k-images-idx3-ubyte", "32x32", NULL);
    free_set(f);

    valid_set(f);
    write_set(dir, sizeof dir, root, "missing", f, 1, TEL);
    expect_fail("missing file", dir, "missing/t10k-labels-idx1-ubyte",
                "apt-get install dataset-fashion-mnist", "data.path");
    free_set(f);
    expect_fail("missing directory", "/nonexistent/fmnist", "/nonexistent/fmnist/train-images-idx3-ubyte",
                "dataset-fashion-mnist", NULL);

    /* a .gz whose compressed stream is cut: zlib must report it, not us read garbage */
    valid_set(f);
    write_set(dir, sizeof dir, root, "cut_gzip", f, 1, -1);
    char p[1200];
    snprintf(p, sizeof p, "%s/%s.gz", dir, FILES[TRI]);
    struct stat st;
    CHECK(stat(p, &st) == 0 && truncate(p, st.st_size / 2) == 0, "truncate %s", p);
    expect_fail("cut gzip stream", dir, "train-images-idx3-ubyte", NULL, NULL);
    free_set(f);
}

/* ---- 3. augmentation semantics on a synthetic image ---- */

/* 3 channels of 8x8, all pixels distinct and nonzero, so that the transform
 * that produced an output is identifiable exactly (padding shows as 0) */
#define SC 3
#define SH 8
#define SW 8
static void synth(Dataset *ds, uint8_t *images, uint8_t *labels, int n) {
    memset(ds, 0, sizeof *ds);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < SC * SH * SW; k++) images[i * SC * SH * SW + k] = (uint8_t)(1 + k + i);
    for (int i = 0; i < n; i++) labels[i] = (uint8_t)(i % 10);
    ds->n = n, ds->channels = SC, ds->height = SH, ds->width = SW, ds->num_classes = 10;
    ds->images = images, ds->labels = labels, ds->get = dataset_get_u8;
    for (int c = 0; c < SC; c++) ds->mean[c] = 0.1f + 0.2f * c, ds->std[c] = 0.5f + 0.25f * c;
}

/* the reference: shift by (dy, dx) with zero padding, then mirror */
static double ref_pixel(const uint8_t *img, int c, int y, int x, int dy, int dx, int flip) {
    int sy = y + dy, sx = (flip ? SW - 1 - x : x) + dx;
    if (sy < 0 || sy >= SH || sx < 0 || sx >= SW) return 0.0;
    return img[(c * SH + sy) * SW + sx] / 255.0;
}

static void test_augment(void) {
    enum { N = 4 };
    uint8_t images[N * SC * SH * SW], labels[N];
    Dataset ds;
    synth(&ds, images, labels, N);
    const int pad = 2, T = 4000;
    Augment aug = {.flip = 1, .crop_pad = pad, .normalize = 0};
    real out[SC * SH * SW];
    long hy[2 * 2 + 1] = {0}, hx[2 * 2 + 1] = {0}, flips = 0, unmatched = 0, ambiguous = 0;
    for (int t = 0; t < T; t++) {
        Rng r = rng_stream(5, RNG_TEST, (uint64_t)t, 0);
        int32_t lab;
        long i = t % N;
        CHECK(dataset_get_u8(&ds, i, out, &lab, &aug, &r) == 0 && lab == labels[i], "get");
        int matches = 0, my = 0, mx = 0, mf = 0;
        for (int dy = -pad; dy <= pad; dy++)
            for (int dx = -pad; dx <= pad; dx++)
                for (int fl = 0; fl < 2; fl++) {
                    int ok = 1;
                    for (int c = 0; c < SC && ok; c++)
                        for (int y = 0; y < SH && ok; y++)
                            for (int x = 0; x < SW && ok; x++)
                                ok = fabs(out[(c * SH + y) * SW + x] -
                                          ref_pixel(images + i * SC * SH * SW, c, y, x, dy, dx, fl)) < 1e-6;
                    if (ok) matches++, my = dy, mx = dx, mf = fl;
                }
        if (matches == 0) unmatched++;
        if (matches > 1) ambiguous++;
        if (matches == 1) hy[my + pad]++, hx[mx + pad]++, flips += mf;
    }
    CHECK(unmatched == 0, "%ld outputs are no crop/flip of the input", unmatched);
    CHECK(ambiguous == 0, "%ld outputs match several transforms", ambiguous);
    /* uniform offsets: each of 5 values ~800 of 4000; flips ~2000 (binomial sd ~32) */
    for (int k = 0; k < 2 * pad + 1; k++) {
        CHECK(hy[k] > 650 && hy[k] < 950, "row offset %d drawn %ld times", k - pad, hy[k]);
        CHECK(hx[k] > 650 && hx[k] < 950, "column offset %d drawn %ld times", k - pad, hx[k]);
    }
    CHECK(flips > 1850 && flips < 2150, "flipped %ld of %d", flips, T);

    /* the draws come from the given Rng only: same state -> same output */
    real o2[SC * SH * SW];
    Rng r1 = rng_stream(9, RNG_TEST, 1, 1), r2 = r1;
    int32_t lab;
    dataset_get_u8(&ds, 1, out, &lab, &aug, &r1);
    dataset_get_u8(&ds, 1, o2, &lab, &aug, &r2);
    CHECK(memcmp(out, o2, sizeof out) == 0 && memcmp(&r1, &r2, sizeof r1) == 0, "same Rng, different output");

    /* normalise: (x - mean[c]) / std[c], padding included (it is a 0 pixel) */
    Augment norm = {.flip = 0, .crop_pad = pad, .normalize = 1};
    Augment crop = {.flip = 0, .crop_pad = pad, .normalize = 0};
    for (int t = 0; t < 20; t++) {
        Rng ra = rng_stream(11, RNG_TEST, (uint64_t)t, 0), rb = ra;
        dataset_get_u8(&ds, 2, out, &lab, &crop, &ra);
        dataset_get_u8(&ds, 2, o2, &lab, &norm, &rb);
        double e = 0;
        for (int c = 0; c < SC; c++)
            for (int k = 0; k < SH * SW; k++)
                e = fmax(e, fabs(o2[c * SH * SW + k] - (out[c * SH * SW + k] - ds.mean[c]) / ds.std[c]));
        CHECK(e < 1e-5, "normalisation error %g", e);
    }

    /* no rng or no aug: plain scaling */
    dataset_get_u8(&ds, 3, out, &lab, &aug, NULL);
    dataset_get_u8(&ds, 3, o2, &lab, NULL, NULL);
    CHECK(memcmp(out, o2, sizeof out) == 0, "aug without rng must not augment");
    CHECK(fabs(out[5] - images[3 * SC * SH * SW + 5] / 255.0) < 1e-7, "scaling");

    /* per-channel mean ~0 after normalising with the data's own statistics */
    enum { M = 64 };
    uint8_t *im2 = malloc(M * SC * SH * SW), lab2[M];
    Dataset d2;
    synth(&d2, im2, lab2, M);
    Rng r = rng_stream(3, RNG_TEST, 0, 0);
    for (int k = 0; k < M * SC * SH * SW; k++) im2[k] = (uint8_t)(rng_below(&r, 100) + 60 * (k / (SH * SW) % SC));
    for (int c = 0; c < SC; c++) {
        double s1 = 0, s2 = 0;
        for (int i = 0; i < M; i++)
            for (int k = 0; k < SH * SW; k++) {
                double v = im2[(i * SC + c) * SH * SW + k] / 255.0;
                s1 += v, s2 += v * v;
            }
        double m = s1 / (M * SH * SW);
        d2.mean[c] = (float)m, d2.std[c] = (float)sqrt(s2 / (M * SH * SW) - m * m);
    }
    int32_t idx[M], lb[M];
    for (int i = 0; i < M; i++) idx[i] = i;
    real *bo = malloc(sizeof(real) * M * SC * SH * SW);
    Augment fl = {.flip = 1, .normalize = 1};
    CHECK(dataset_batch(&d2, idx, M, bo, lb, &fl, 1, 1, 0, NULL, 0) == 0, "dataset_batch");
    for (int c = 0; c < SC; c++) {
        double s1 = 0;
        for (int i = 0; i < M; i++)
            for (int k = 0; k < SH * SW; k++) s1 += bo[(i * SC + c) * SH * SW + k];
        CHECK(fabs(s1 / (M * SH * SW)) < 1e-4, "channel %d normalised mean %g", c, s1 / (M * SH * SW));
    }
    /* a bad index fails the batch with a message naming it (no label marks it) */
    idx[0] = M + 5;
    char msg[512] = "";
    int rc = dataset_batch(&d2, idx, 2, bo, lb, &fl, 0, 1, 0, msg, sizeof msg);
    char want[128];
    snprintf(want, sizeof want, "reading sample %d failed (position 0 of an evaluation batch of 2)", M + 5);
    CHECK(rc == -1 && strstr(msg, want), "bad index in batch: rc %d '%s'", rc, msg);
    free(bo);
    free(im2);

    /* truncate and free */
    Dataset z;
    memset(&z, 0, sizeof z);
    dataset_free(&z); /* zeroed: must be safe */
    dataset_free(NULL);
    Dataset h;
    memset(&h, 0, sizeof h);
    h.n = 100;
    h.images = malloc(100);
    h.labels = malloc(100);
    dataset_truncate(&h, 0);
    CHECK(h.n == 100, "truncate(0) changed n");
    dataset_truncate(&h, 200);
    CHECK(h.n == 100, "truncate(200) changed n");
    dataset_truncate(&h, 30);
    CHECK(h.n == 30, "truncate(30) gave %ld", h.n);
    dataset_free(&h);
    CHECK(h.images == NULL && h.n == 0, "free must zero the Dataset");
}

int main(void) {
    Dataset tr, te;
    int ok = 0;
    test_real(&tr, &te, &ok);
    if (ok) {
        test_batches_real(&tr);
        dataset_free(&tr);
        dataset_free(&te);
    }

    const char *tmp = getenv("TMPDIR");
    char root[1024];
    snprintf(root, sizeof root, "%s/cbnn_fmnist_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(root)) {
        test_validation(root);
        rm_rf(root);
    } else {
        CHECK(0, "mkdtemp %s", root);
    }
    test_augment();
    return tu_finish("fashion_mnist");
}
