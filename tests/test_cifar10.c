/* CIFAR-10 loader, synthetic generator and the CIFAR augmentations.
 *
 * 1. A synthetic set written by cifar10_synth_write (what build/make_cifar10
 *    writes) loads back bit for bit: labels, CHW pixels, class names, the
 *    per-channel mean/std; it is learnable (nearest class centroid).
 * 2. Each malformed set fails with a message naming the file: truncated file,
 *    wrong size, empty file, missing file, label > 9, empty directory.
 * 3. Every augmentation on known images against hand-computed pixels: crop
 *    with mean fill, flip, Cutout, and AutoAugment's ShearX, TranslateY,
 *    Rotate (90 via transpose and via the fixed-point path), Posterize,
 *    Solarize, Invert, Equalize, AutoContrast, Brightness.
 * 4. Determinism: dataset_batch with 1 and 2 OpenMP threads. */
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/augment_cifar.h"
#include "datasets/cifar10.h"
#include "testutil.h"

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

#define NTR 103
#define NTE 7
#define SEED 42

static void make_set(char *dir, size_t len, const char *root, const char *name) {
    char sub[1024], err[1024];
    snprintf(sub, sizeof sub, "%s/%s", root, name);
    int rc = cifar10_synth_write(sub, NTR, NTE, SEED, err, sizeof err);
    CHECK(rc == 0, "synth_write %s: %s", sub, err);
    snprintf(dir, len, "%s/%s", sub, CIFAR10_SUBDIR);
}

static void expect_fail(const char *what, const char *dir, const char *s1, const char *s2) {
    Dataset tr, te;
    char err[2048] = "";
    int rc = cifar10_load(&tr, &te, dir, err, sizeof err);
    CHECK(rc == -1, "%s: load succeeded", what);
    CHECK(tr.images == NULL && te.images == NULL && tr.n == 0, "%s: datasets not left empty", what);
    CHECK(strstr(err, s1) != NULL, "%s: message lacks \"%s\": %s", what, s1, err);
    if (s2) CHECK(strstr(err, s2) != NULL, "%s: message lacks \"%s\": %s", what, s2, err);
    if (rc == 0) dataset_free(&tr), dataset_free(&te);
}

/* ---- 1. loading ---- */
static void test_load(const char *root) {
    char dir[1200];
    make_set(dir, sizeof dir, root, "good");
    Dataset tr, te;
    char err[2048] = "";
    int rc = cifar10_load(&tr, &te, dir, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (rc != 0) return;
    CHECK(tr.n == NTR && te.n == NTE, "sizes %ld %ld", tr.n, te.n);
    CHECK(tr.channels == 3 && tr.height == 32 && tr.width == 32 && tr.num_classes == 10, "shape");
    CHECK(!strcmp(tr.name, "cifar10") && !strcmp(te.name, "cifar10"), "name %s", tr.name);
    CHECK(!strcmp(cifar10_class_name(&tr, 0), "airplane") && !strcmp(cifar10_class_name(&te, 9), "truck"),
          "class names %s %s", cifar10_class_name(&tr, 0), cifar10_class_name(&te, 9));
    uint8_t rec[CIFAR10_RECORD_BYTES];
    long bad = 0, hist[10] = {0};
    for (long i = 0; i < NTR; i++) {
        cifar10_synth_sample(SEED, 0, i, rec);
        bad += tr.labels[i] != rec[0] || memcmp(tr.images + i * 3072, rec + 1, 3072) != 0;
        hist[tr.labels[i]]++;
    }
    for (long i = 0; i < NTE; i++) {
        cifar10_synth_sample(SEED, 1, i, rec);
        bad += te.labels[i] != rec[0] || memcmp(te.images + i * 3072, rec + 1, 3072) != 0;
    }
    CHECK(bad == 0, "%ld samples differ from what was written", bad);
    int classes = 0;
    for (int k = 0; k < 10; k++) classes += hist[k] > 0;
    CHECK(classes >= 9, "only %d classes among %d samples", classes, NTR);
    /* a known pixel through get(): R plane first, CHW */
    real out[3072];
    int32_t lab;
    CHECK(tr.get(&tr, 5, out, &lab, NULL, NULL) == 0 && lab == tr.labels[5], "get");
    CHECK(fabs(out[2048 + 32 * 7 + 3] - tr.images[5 * 3072 + 2048 + 32 * 7 + 3] / 255.0) < 1e-7, "B plane pixel");
    /* mean/std per channel over the training split */
    for (int c = 0; c < 3; c++) {
        double s1 = 0, s2 = 0, N = (double)NTR * 1024;
        for (long i = 0; i < NTR; i++)
            for (int k = 0; k < 1024; k++) s1 += tr.images[i * 3072 + c * 1024 + k] / 255.0;
        double m = s1 / N;
        for (long i = 0; i < NTR; i++)
            for (int k = 0; k < 1024; k++) s2 += pow(tr.images[i * 3072 + c * 1024 + k] / 255.0 - m, 2);
        double sd = sqrt(s2 / N);
        CHECK(fabs(tr.mean[c] - m) < 1e-6 && fabs(tr.std[c] - sd) < 1e-6 && te.mean[c] == tr.mean[c] &&
                  te.std[c] == tr.std[c],
              "channel %d stats %f %f vs %f %f", c, tr.mean[c], tr.std[c], m, sd);
    }
    /* learnable: nearest class centroid on raw pixels classifies the test split */
    static double cent[10][3072];
    memset(cent, 0, sizeof cent);
    for (long i = 0; i < NTR; i++)
        for (int k = 0; k < 3072; k++) cent[tr.labels[i]][k] += tr.images[i * 3072 + k] / (double)hist[tr.labels[i]];
    /* a bigger test split for this, straight from the generator */
    int right = 0, T = 200;
    for (int i = 0; i < T; i++) {
        cifar10_synth_sample(SEED, 1, 1000 + i, rec);
        int best = -1;
        double bd = 1e300;
        for (int k = 0; k < 10; k++) {
            if (!hist[k]) continue;
            double d = 0;
            for (int q = 0; q < 3072; q++) d += (rec[1 + q] - cent[k][q]) * (rec[1 + q] - cent[k][q]);
            if (d < bd) bd = d, best = k;
        }
        right += best == rec[0];
    }
    CHECK(right > T * 6 / 10, "nearest centroid: %d of %d right", right, T);
    printf("cifar10 synthetic: nearest-centroid accuracy %d/%d\n", right, T);
    dataset_free(&tr);
    dataset_free(&te);

    /* default directory: $CBNN_DATA/cifar-10-batches-bin */
    char rootgood[1100];
    snprintf(rootgood, sizeof rootgood, "%s/good", root);
    char *old = getenv("CBNN_DATA") ? strdup(getenv("CBNN_DATA")) : NULL;
    setenv("CBNN_DATA", rootgood, 1);
    rc = cifar10_load(&tr, NULL, NULL, err, sizeof err);
    CHECK(rc == 0 && tr.n == NTR, "default dir via CBNN_DATA: %s", err);
    if (rc == 0) dataset_free(&tr);
    unsetenv("CBNN_DATA");
    char d[256];
    cifar10_resolve_dir("", d, sizeof d);
    CHECK(!strcmp(d, "data/cifar-10-batches-bin"), "default dir %s", d);
    if (old) setenv("CBNN_DATA", old, 1), free(old);
}

/* ---- 2. malformed sets ---- */
static void truncate_by(const char *dir, const char *file, long delta) {
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    struct stat st;
    CHECK(stat(p, &st) == 0 && truncate(p, st.st_size + delta) == 0, "truncate %s", p);
}

static void test_errors(const char *root) {
    char dir[1200], p[1400], num[64];
    make_set(dir, sizeof dir, root, "trunc");
    truncate_by(dir, "data_batch_3.bin", -100);
    /* 103 train records: file 3 holds records 41..60, 20 records = 61460 bytes, minus 100 */
    snprintf(num, sizeof num, "%d", 20 * 3073 - 100);
    expect_fail("truncated", dir, "data_batch_3.bin", num);

    make_set(dir, sizeof dir, root, "long");
    truncate_by(dir, "test_batch.bin", 5);
    snprintf(num, sizeof num, "%d", 7 * 3073 + 5);
    expect_fail("wrong size", dir, "test_batch.bin", num);

    make_set(dir, sizeof dir, root, "empty_file");
    snprintf(p, sizeof p, "%s/data_batch_2.bin", dir);
    CHECK(truncate(p, 0) == 0, "truncate");
    expect_fail("empty file", dir, "data_batch_2.bin", "empty");

    make_set(dir, sizeof dir, root, "missing");
    snprintf(p, sizeof p, "%s/data_batch_5.bin", dir);
    CHECK(remove(p) == 0, "remove");
    expect_fail("missing file", dir, p, "datasets/fetch_cifar10.sh");

    make_set(dir, sizeof dir, root, "label");
    snprintf(p, sizeof p, "%s/data_batch_2.bin", dir);
    FILE *fp = fopen(p, "r+b");
    CHECK(fp != NULL, "open %s", p);
    if (fp) {
        fseek(fp, 2L * 3073, SEEK_SET);
        fputc(10, fp);
        fclose(fp);
    }
    expect_fail("label 10", dir, "data_batch_2.bin", "record 2 ");

    snprintf(p, sizeof p, "%s/emptydir", root);
    mkdir(p, 0777);
    expect_fail("empty directory", p, "emptydir/", "datasets/fetch_cifar10.sh");
    expect_fail("no directory", "/nonexistent/cifar", "/nonexistent/cifar/", "fetch_cifar10.sh");
}

/* ---- 3. augmentations ---- */
static void test_crop_flip_cutout(void) {
    /* mean pixel: int(255 * mean) as the reference (125, 122, 113) */
    float m[3] = {0.4913997551666284f, 0.48215855929893703f, 0.4465309133731618f};
    uint8_t mu[3];
    cifar_mean_u8(m, 3, mu);
    CHECK(mu[0] == 125 && mu[1] == 122 && mu[2] == 113, "mean pixel %u %u %u", mu[0], mu[1], mu[2]);

    /* 4x4 x 2 channels, pixel value 10*(y*4+x)+c+1; shift (dy, dx) = (-1, 2) */
    enum { C = 2, H = 4, W = 4 };
    uint8_t src[C * H * W], dst[C * H * W], fill[2] = {200, 201};
    for (int c = 0; c < C; c++)
        for (int k = 0; k < H * W; k++) src[c * 16 + k] = (uint8_t)(10 * k + c + 1);
    cifar_crop_flip(src, dst, C, H, W, -1, 2, 0, fill);
    /* out(y, x) = in(y-1, x+2): row 0 all fill; x >= 2 fill */
    int ok = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sy = y - 1, sx = x + 2;
            for (int c = 0; c < C; c++) {
                int e = (sy < 0 || sx >= W) ? fill[c] : 10 * (sy * 4 + sx) + c + 1;
                ok &= dst[c * 16 + y * 4 + x] == e;
            }
        }
    CHECK(ok && dst[4] == 21 && dst[16 + 5] == 32, "crop (-1, 2) with fill: dst[4]=%u", dst[4]);
    /* flip, then the same shift: out(y, x) = in(y-1, (3-x)+2) */
    cifar_crop_flip(src, dst, C, H, W, -1, 2, 1, fill);
    CHECK(dst[4] == 200 && dst[5] == 200 && dst[6] == 31 && dst[7] == 21 && dst[0] == 200, "flip+crop %u %u %u %u",
          dst[4], dst[5], dst[6], dst[7]);

    /* cutout geometry: rows [cy-8, cy+8) clipped */
    int y0, y1, x0, x1;
    cutout_rect(32, 32, 16, 3, 30, &y0, &y1, &x0, &x1);
    CHECK(y0 == 0 && y1 == 11 && x0 == 22 && x1 == 32, "cutout rect %d %d %d %d", y0, y1, x0, x1);
    cutout_rect(32, 32, 16, 16, 8, &y0, &y1, &x0, &x1);
    CHECK(y0 == 8 && y1 == 24 && x0 == 0 && x1 == 16, "cutout rect %d %d %d %d", y0, y1, x0, x1);

    /* the pipeline: crop_fill_mean crop + flip + cutout on a 32x32 image,
     * against the draws replayed from a copy of the Rng */
    static uint8_t img[3072];
    for (int k = 0; k < 3072; k++) img[k] = (uint8_t)(k * 7 + k / 1024 * 50 + 3);
    float sd[3] = {0.25f, 0.25f, 0.25f};
    Augment aug = {.crop_pad = 4, .crop_fill_mean = 1, .flip = 1, .cutout = 16};
    real out[3072];
    int checked = 0, bad = 0;
    for (int t = 0; t < 50; t++) {
        Rng r = rng_stream(7, RNG_TEST, (uint64_t)t, 0), rr = r;
        cifar_augment(img, out, 3, 32, 32, m, sd, &aug, &r);
        int dy = (int)rng_below(&rr, 9) - 4, dx = (int)rng_below(&rr, 9) - 4, fl = (int)(rng_u64(&rr) >> 63);
        int cy = (int)rng_below(&rr, 32), cx = (int)rng_below(&rr, 32);
        CHECK(memcmp(&r, &rr, sizeof r) == 0, "draw count differs");
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    int sy = y + dy, sx = (fl ? 31 - x : x) + dx;
                    double e = (sy < 0 || sy > 31 || sx < 0 || sx > 31) ? mu[c] / 255.0 : img[c * 1024 + sy * 32 + sx] / 255.0;
                    int inhole = y >= cy - 8 && y < cy + 8 && x >= cx - 8 && x < cx + 8;
                    if (inhole) e = m[c];
                    bad += fabs(out[c * 1024 + y * 32 + x] - e) > 1e-6;
                    checked++;
                }
    }
    CHECK(bad == 0, "pipeline crop/flip/cutout: %d of %d pixels wrong", bad, checked);

    /* without the CIFAR extras, get() equals dataset_get_u8 bit for bit */
    uint8_t lab[1] = {3};
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = 1, ds.channels = 3, ds.height = 32, ds.width = 32, ds.num_classes = 10, ds.images = img, ds.labels = lab;
    for (int c = 0; c < 3; c++) ds.mean[c] = m[c], ds.std[c] = sd[c];
    Augment plain = {.crop_pad = 4, .flip = 1, .normalize = 1};
    real o2[3072];
    int same = 1;
    for (int t = 0; t < 20; t++) {
        Rng a = rng_stream(8, RNG_TEST, (uint64_t)t, 0), b = a;
        int32_t l1, l2;
        cifar10_get(&ds, 0, out, &l1, &plain, &a);
        dataset_get_u8(&ds, 0, o2, &l2, &plain, &b);
        same &= memcmp(out, o2, sizeof out) == 0 && l1 == 3 && l2 == 3;
    }
    CHECK(same, "cifar10_get != dataset_get_u8 for crop/flip/normalize");
    /* normalize: the cutout hole becomes 0 (the mean) */
    Augment cn = {.cutout = 16, .normalize = 1};
    Rng r = rng_stream(9, RNG_TEST, 0, 0), rr = r;
    cifar_augment(img, out, 3, 32, 32, m, sd, &cn, &r);
    int cy = (int)rng_below(&rr, 32), cx = (int)rng_below(&rr, 32);
    CHECK(out[1024 + cy * 32 + cx] == 0 && fabs(out[0 + (cy < 16 ? 31 : 0) * 32] - (img[(cy < 16 ? 31 : 0) * 32] / 255.0 - m[0]) / 0.25) < 1e-5,
          "normalised cutout");
}

static int eq(const uint8_t *a, const int *e, int n) {
    for (int k = 0; k < n; k++)
        if (a[k] != e[k]) return 0;
    return 1;
}

static void print_u8(const char *what, const uint8_t *a, int n) {
    fprintf(stderr, "  %s:", what);
    for (int k = 0; k < n; k++) fprintf(stderr, " %u", a[k]);
    fprintf(stderr, "\n");
}

static void test_autoaugment_ops(void) {
    uint8_t tmp[3 * 32 * 32];
    uint8_t fill1[1] = {99}, fill3[3] = {125, 122, 113};

    /* magnitudes (np.linspace ranges) */
    CHECK(aa_magnitude(AA_POSTERIZE, 7) == 5 && aa_magnitude(AA_POSTERIZE, 0) == 8 && aa_magnitude(AA_POSTERIZE, 9) == 4 &&
              aa_magnitude(AA_POSTERIZE, 2) == 7,
          "posterize bits");
    CHECK(fabs(aa_magnitude(AA_SOLARIZE, 2) - (256 - 512.0 / 9)) < 1e-9 && aa_magnitude(AA_SOLARIZE, 9) == 0,
          "solarize thresholds");
    CHECK(fabs(aa_magnitude(AA_ROTATE, 2) - 20.0 / 3) < 1e-12 && fabs(aa_magnitude(AA_SHEAR_Y, 8) - 0.3 * 8 / 9) < 1e-12 &&
              aa_magnitude(AA_TRANSLATE_Y, 9) == 150.0 / 331.0,
          "geometric magnitudes");

    /* ShearX, magnitude 1 (each sample falls half way between pixels, where
     * PIL's cubic (a = -1) is (-v1 + 5 v2 + 5 v3 - v4) / 8), fill 99 */
    {
        uint8_t im[8] = {0, 80, 160, 240, 0, 80, 160, 240};
        aa_apply(AA_SHEAR_X, 1.0, +1, im, tmp, 1, 2, 4, fill1);
        int e[8] = {30, 120, 210, 99, 120, 210, 99, 99};
        CHECK(eq(im, e, 8), "ShearX +1");
        if (!eq(im, e, 8)) print_u8("got", im, 8);
        uint8_t im2[8] = {0, 80, 160, 240, 0, 80, 160, 240};
        aa_apply(AA_SHEAR_X, 1.0, -1, im2, tmp, 1, 2, 4, fill1);
        /* row 0: x_in = x, sampled at x - 0.5; row 1: x - 1.5 (x = 0 outside) */
        int e2[8] = {0, 30, 120, 210, 99, 0, 30, 120};
        CHECK(eq(im2, e2, 8), "ShearX -1");
        if (!eq(im2, e2, 8)) print_u8("got", im2, 8);
    }
    /* TranslateY by half the height (tx = 2 rows), both signs, 3 channels */
    {
        uint8_t im[3 * 16];
        for (int k = 0; k < 48; k++) im[k] = (uint8_t)(k + 1);
        uint8_t a[48], b[48];
        memcpy(a, im, 48), memcpy(b, im, 48);
        aa_apply(AA_TRANSLATE_Y, 0.5, +1, a, tmp, 3, 4, 4, fill3);
        aa_apply(AA_TRANSLATE_Y, 0.5, -1, b, tmp, 3, 4, 4, fill3);
        int ok = 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++) {
                    int ea = y < 2 ? im[c * 16 + (y + 2) * 4 + x] : fill3[c];
                    int eb = y >= 2 ? im[c * 16 + (y - 2) * 4 + x] : fill3[c];
                    ok &= a[c * 16 + y * 4 + x] == ea && b[c * 16 + y * 4 + x] == eb;
                }
        CHECK(ok, "TranslateY 0.5");
        /* the policy's magnitude 9 on 32 rows: 14.5 px, nearest at pixel centres:
         * +: rows 0..16 <- 15..31; -: rows 15..31 <- 0..16 (15 vs 14... rows filled) */
        static uint8_t big[1024], p[1024], q[1024];
        for (int k = 0; k < 1024; k++) big[k] = (uint8_t)(k / 32 + 1);
        memcpy(p, big, 1024), memcpy(q, big, 1024);
        double mg = aa_magnitude(AA_TRANSLATE_Y, 9);
        aa_apply(AA_TRANSLATE_Y, mg, +1, p, tmp, 1, 32, 32, fill1);
        aa_apply(AA_TRANSLATE_Y, mg, -1, q, tmp, 1, 32, 32, fill1);
        CHECK(p[0] == 16 && p[16 * 32] == 32 && p[17 * 32] == 99 && q[14 * 32] == 99 && q[15 * 32] == 1 &&
                  q[31 * 32] == 17,
              "TranslateY magnitude 9: %u %u %u | %u %u %u", p[0], p[16 * 32], p[17 * 32], q[14 * 32], q[15 * 32],
              q[31 * 32]);
    }
    /* Rotate: 90 degrees counter-clockwise (PIL's transpose shortcut on a square) */
    {
        uint8_t im[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        aa_rotate(im, tmp, 1, 3, 3, 90.0, 128);
        int e[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7};
        CHECK(eq(im, e, 9), "Rotate 90");
        uint8_t im2[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        aa_rotate(im2, tmp, 1, 3, 3, 270.0, 128);
        int e2[9] = {7, 4, 1, 8, 5, 2, 9, 6, 3};
        CHECK(eq(im2, e2, 9), "Rotate 270");
        /* 90 degrees on a 4x2 image: the fixed-point affine path; the central
         * 2x2 block turns, the rest is the fill 128 */
        uint8_t im3[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        aa_rotate(im3, tmp, 1, 2, 4, 90.0, 128);
        int e3[8] = {128, 3, 7, 128, 128, 2, 6, 128};
        CHECK(eq(im3, e3, 8), "Rotate 90 non-square");
        if (!eq(im3, e3, 8)) print_u8("got", im3, 8);
        /* the op: positive angle only, fill 128 whatever the policy fill */
        uint8_t im4[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        aa_apply(AA_ROTATE, 90.0, -1, im4, tmp, 1, 3, 3, fill1);
        CHECK(eq(im4, e, 9), "Rotate op ignores the sign");
        /* a small angle keeps the centre and fills some corner with 128 */
        static uint8_t r32[1024];
        for (int k = 0; k < 1024; k++) r32[k] = (uint8_t)(k % 97 + 1);
        uint8_t centre = r32[16 * 32 + 16];
        aa_apply(AA_ROTATE, aa_magnitude(AA_ROTATE, 2), 1, r32, tmp, 1, 32, 32, fill1);
        CHECK(r32[16 * 32 + 16] == centre && r32[0] == 128 && r32[31 * 32 + 31] == 128, "Rotate 6.67: %u %u %u",
              r32[16 * 32 + 16], r32[0], r32[1023]);
    }
    /* Posterize 4 and 5 bits, Solarize at 199.1, Invert */
    {
        uint8_t im[6] = {0x37, 255, 15, 16, 200, 128};
        aa_apply(AA_POSTERIZE, 4, 1, im, tmp, 1, 1, 6, fill1);
        int e[6] = {0x30, 0xF0, 0, 16, 192, 128};
        CHECK(eq(im, e, 6), "Posterize 4");
        uint8_t im2[6] = {0x37, 255, 15, 16, 200, 7};
        aa_apply(AA_POSTERIZE, aa_magnitude(AA_POSTERIZE, 7), 1, im2, tmp, 1, 1, 6, fill1);
        int e2[6] = {0x30, 0xF8, 8, 16, 200, 0};
        CHECK(eq(im2, e2, 6), "Posterize 5");
        uint8_t im3[6] = {0, 199, 200, 255, 100, 128};
        aa_apply(AA_SOLARIZE, aa_magnitude(AA_SOLARIZE, 2), 1, im3, tmp, 1, 1, 6, fill1);
        int e3[6] = {0, 199, 55, 0, 100, 128};
        CHECK(eq(im3, e3, 6), "Solarize 199.1");
        uint8_t im4[4] = {0, 1, 128, 255};
        aa_apply(AA_INVERT, 0, 1, im4, tmp, 1, 1, 4, fill1);
        int e4[4] = {255, 254, 127, 0};
        CHECK(eq(im4, e4, 4), "Invert");
    }
    /* Equalize: 1024 pixels, 300 x 10, 300 x 20, 424 x 30: step = (1024-424)//255 = 2,
     * lut[10] = 1//2 = 0, lut[20] = 301//2 = 150, lut[30] = 601//2 = 300 -> 255 */
    {
        static uint8_t im[1024];
        for (int k = 0; k < 1024; k++) im[k] = k < 300 ? 10 : (k < 600 ? 20 : 30);
        aa_apply(AA_EQUALIZE, 0, 1, im, tmp, 1, 32, 32, fill1);
        CHECK(im[0] == 0 && im[299] == 0 && im[300] == 150 && im[600] == 255 && im[1023] == 255,
              "Equalize %u %u %u", im[0], im[300], im[600]);
        /* too few pixels for a step: unchanged */
        uint8_t sm[4] = {1, 2, 3, 4};
        aa_apply(AA_EQUALIZE, 0, 1, sm, tmp, 1, 2, 2, fill1);
        int e[4] = {1, 2, 3, 4};
        CHECK(eq(sm, e, 4), "Equalize small");
    }
    /* AutoContrast per channel: [20, 71] -> [0, 255] (scale 5), a full-range
     * channel and a constant channel unchanged */
    {
        uint8_t im[3 * 4] = {20, 30, 71, 40, 0, 255, 7, 9, 50, 50, 50, 50};
        aa_apply(AA_AUTOCONTRAST, 0, 1, im, tmp, 3, 2, 2, fill3);
        int e[12] = {0, 50, 255, 100, 0, 255, 7, 9, 50, 50, 50, 50};
        CHECK(eq(im, e, 12), "AutoContrast");
        if (!eq(im, e, 12)) print_u8("got", im, 12);
    }
    /* Brightness 1.5 (blend with black, float, truncated and clipped) and 0.5 */
    {
        uint8_t im[4] = {100, 101, 200, 3};
        aa_apply(AA_BRIGHTNESS, 0.5, 1, im, tmp, 1, 1, 4, fill1);
        int e[4] = {150, 151, 255, 4};
        CHECK(eq(im, e, 4), "Brightness 1.5");
        uint8_t im2[4] = {100, 101, 200, 3};
        aa_apply(AA_BRIGHTNESS, 0.5, -1, im2, tmp, 1, 1, 4, fill1);
        int e2[4] = {50, 50, 100, 1};
        CHECK(eq(im2, e2, 4), "Brightness 0.5");
    }
    /* Color 0 on RGB = the grey L = (19595 R + 38470 G + 7471 B + 32768) >> 16 */
    {
        uint8_t im[3] = {255, 0, 0};
        aa_apply(AA_COLOR, 1.0, -1, im, tmp, 3, 1, 1, fill3);
        CHECK(im[0] == 76 && im[1] == 76 && im[2] == 76, "Color 0: %u %u %u", im[0], im[1], im[2]);
    }
    /* the policy: 25 sub-policies, valid entries; same Rng, same result */
    {
        int okp = 1;
        for (int k = 0; k < AA_CIFAR10_NUM_POLICIES; k++) {
            const AaSubPolicy *s = &aa_cifar10_policy[k];
            okp &= s->op1 < AA_NUM_OPS && s->op2 < AA_NUM_OPS && s->p1 >= 0 && s->p1 <= 1 && s->p2 >= 0 && s->p2 <= 1;
        }
        CHECK(okp && aa_cifar10_policy[14].op1 == AA_SOLARIZE && aa_cifar10_policy[14].p2 == 0.0, "policy table");
        static uint8_t a[3072], b[3072];
        long cnt[25] = {0};
        for (int t = 0; t < 2500; t++) {
            for (int k = 0; k < 3072; k++) a[k] = b[k] = (uint8_t)((k * 13 + t) % 251);
            Rng r1 = rng_stream(3, RNG_TEST, (uint64_t)t, 0), r2 = r1;
            int k1 = aa_cifar10_apply(a, tmp, 3, 32, 32, fill3, &r1, NULL);
            int k2 = aa_cifar10_apply(b, tmp, 3, 32, 32, fill3, &r2, NULL);
            okp &= k1 == k2 && memcmp(a, b, 3072) == 0;
            cnt[k1]++;
        }
        CHECK(okp, "policy not deterministic");
        for (int k = 0; k < 25; k++) CHECK(cnt[k] > 60 && cnt[k] < 140, "sub-policy %d drawn %ld of 2500", k, cnt[k]);
    }
}

/* ---- 4. determinism across thread counts ---- */
static void test_threads(const char *root) {
    char dir[1200];
    make_set(dir, sizeof dir, root, "threads");
    Dataset tr;
    char err[1024];
    if (cifar10_load(&tr, NULL, dir, err, sizeof err) != 0) {
        CHECK(0, "load: %s", err);
        return;
    }
    enum { B = 64 };
    int32_t idx[B], l1[B], l2[B];
    for (int i = 0; i < B; i++) idx[i] = (int32_t)((i * 37) % NTR);
    real *o1 = malloc(sizeof(real) * B * 3072), *o2 = malloc(sizeof(real) * B * 3072);
    Augment aug = {.crop_pad = 4, .crop_fill_mean = 1, .flip = 1, .autoaugment = 1, .cutout = 16};
    int maxt = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK(dataset_batch(&tr, idx, B, o1, l1, &aug, 1, 5, 3, NULL, 0) == 0, "dataset_batch");
    omp_set_num_threads(2);
    CHECK(dataset_batch(&tr, idx, B, o2, l2, &aug, 1, 5, 3, NULL, 0) == 0, "dataset_batch");
    omp_set_num_threads(maxt);
    CHECK(memcmp(o1, o2, sizeof(real) * B * 3072) == 0 && memcmp(l1, l2, sizeof l1) == 0, "1 vs 2 threads differ");
    CHECK(dataset_batch(&tr, idx, B, o2, l2, &aug, 1, 5, 4, NULL, 0) == 0, "dataset_batch");
    CHECK(memcmp(o1, o2, sizeof(real) * B * 3072) != 0, "epoch does not change the augmentation");
    /* evaluation: no augmentation at all */
    CHECK(dataset_batch(&tr, idx, 2, o2, l2, &aug, 0, 5, 3, NULL, 0) == 0, "dataset_batch");
    CHECK(fabs(o2[100] - tr.images[(size_t)idx[0] * 3072 + 100] / 255.0) < 1e-7, "eval batch is augmented");
    for (int i = 0; i < B * 3072; i++)
        if (!(o1[i] >= 0 && o1[i] <= 1)) {
            CHECK(0, "value %g outside [0,1] at %d", (double)o1[i], i);
            break;
        }
    free(o1);
    free(o2);
    dataset_free(&tr);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    char root[1024];
    snprintf(root, sizeof root, "%s/cbnn_cifar_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        CHECK(0, "mkdtemp %s", root);
        return tu_finish("cifar10");
    }
    test_load(root);
    test_errors(root);
    test_crop_flip_cutout();
    test_autoaugment_ops();
    test_threads(root);
    rm_rf(root);
    return tu_finish("cifar10");
}
