/* ImageNet loader (datasets/imagenet.c, jpeg_io.c, augment_imagenet.c) on a
 * generated tree of real JPEGs (datasets/synth_imagenet.c). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "datasets/augment_imagenet.h"
#include "datasets/imagenet.h"
#include "datasets/jpeg_io.h"

static char g_tmp[256];

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    if (system(cmd) != 0) fprintf(stderr, "warning: '%s' failed\n", cmd);
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(b, 1, n, f);
    fclose(f);
}

static int near(const uint8_t *p, const uint8_t *c, int tol) {
    for (int k = 0; k < 3; k++)
        if (abs((int)p[k] - (int)c[k]) > tol) return 0;
    return 1;
}

static void test_tree(const char *root) {
    Dataset tr, va;
    char err[1024];
    int rc = imagenet_load(&tr, &va, root, 64, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (rc) return;
    CHECK(tr.num_classes == 4 && va.num_classes == 4, "classes %d %d", tr.num_classes, va.num_classes);
    CHECK(tr.n == 16 && va.n == 8, "sizes %ld %ld", tr.n, va.n);
    CHECK(!strcmp(imagenet_class_wnid(&tr, 0), "n00000001") && !strcmp(imagenet_class_wnid(&tr, 3), "n00000004"),
          "wnids");
    CHECK(imagenet_class_wnid(&tr, 4) == NULL, "wnid out of range");
    for (long i = 0; i < tr.n; i++) CHECK(imagenet_label(&tr, i) == i / 4, "train label %ld", i);
    /* val: ILSVRC2012_val_%08d sorted = generation order, label v % 4 */
    for (long i = 0; i < va.n; i++) CHECK(imagenet_label(&va, i) == i % 4, "val label %ld", i);
    char buf[4096];
    CHECK(strstr(imagenet_file(&tr, 5, buf, sizeof buf), "train/n00000002/n00000002_2.JPEG") != NULL, "file %s",
          buf);
    CHECK(tr.channels == 3 && tr.height == 64 && tr.width == 64, "shape");
    CHECK(fabsf(tr.mean[0] - 0.485f) < 1e-7 && fabsf(tr.std[2] - 0.225f) < 1e-7, "mean/std");

    /* every sample decodes (grayscale and CMYK included), eval colours match */
    real *out = tu_alloc(3 * 64 * 64);
    for (long i = 0; i < tr.n; i++) {
        int32_t lab = -9;
        rc = tr.get(&tr, i, out, &lab, NULL, NULL);
        CHECK(rc == 0 && lab == i / 4, "get %ld rc %d lab %d", i, rc, lab);
        /* bottom-right corner: background colour 0 of the class */
        uint8_t c0[3];
        synth_imagenet_colour((int)(i / 4), 0, c0);
        if ((i % 4) == 1 && i / 4 == 0) { /* grayscale: luma replicated */
            int y = (299 * c0[0] + 587 * c0[1] + 114 * c0[2] + 500) / 1000;
            c0[0] = c0[1] = c0[2] = (uint8_t)y;
        }
        uint8_t px[3];
        for (int c = 0; c < 3; c++) px[c] = (uint8_t)lrint(out[c * 64 * 64 + 60 * 64 + 60] * 255);
        CHECK(near(px, c0, 6), "sample %ld corner (%d,%d,%d) vs (%d,%d,%d)", i, px[0], px[1], px[2], c0[0], c0[1],
              c0[2]);
    }
    int32_t lab;
    CHECK(tr.get(&tr, tr.n, out, &lab, NULL, NULL) != 0, "index out of range");
    free(out);
    dataset_free(&tr);
    dataset_free(&va);
}

static void test_decode(const char *root) {
    char path[1024], err[1024];
    JpegImage img;
    uint8_t c0[3], c1[3];
    /* colour image: flat regions within tolerance */
    snprintf(path, sizeof path, "%s/train/n00000003/n00000003_1.JPEG", root);
    int rc = jpeg_decode_file(path, 8, &img, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) return;
    synth_imagenet_colour(2, 0, c0);
    synth_imagenet_colour(2, 1, c1);
    int w = img.width, h = img.height;
    CHECK(img.src_components == 3 && img.warnings == 0, "components %d warnings %d", img.src_components,
          img.warnings);
    CHECK(near(img.rgb + ((size_t)(3 * h / 4) * w + 3 * w / 4) * 3, c0, 4), "background pixel");
    CHECK(near(img.rgb + ((size_t)(3 * h / 8) * w + 3 * w / 8) * 3, c1, 4), "block pixel");
    jpeg_image_free(&img);
    /* grayscale -> RGB replicated */
    snprintf(path, sizeof path, "%s/train/n00000001/n00000001_2.JPEG", root);
    rc = jpeg_decode_file(path, 8, &img, err, sizeof err);
    CHECK(rc == 0 && img.src_components == 1, "gray: %s", err);
    if (!rc) {
        int same = 1;
        for (size_t p = 0; p < (size_t)img.width * img.height; p++)
            same &= img.rgb[3 * p] == img.rgb[3 * p + 1] && img.rgb[3 * p] == img.rgb[3 * p + 2];
        CHECK(same, "gray replicated to R=G=B");
        synth_imagenet_colour(0, 1, c1);
        uint8_t y = (uint8_t)((299 * c1[0] + 587 * c1[1] + 114 * c1[2] + 500) / 1000), yy[3] = {y, y, y};
        CHECK(near(img.rgb + ((size_t)(3 * img.height / 8) * img.width + 3 * img.width / 8) * 3, yy, 3),
              "gray block");
    }
    jpeg_image_free(&img);
    /* CMYK (inverted, Adobe) -> RGB */
    snprintf(path, sizeof path, "%s/train/n00000002/n00000002_2.JPEG", root);
    rc = jpeg_decode_file(path, 8, &img, err, sizeof err);
    CHECK(rc == 0 && img.src_components == 4, "cmyk: %s", err);
    if (!rc) {
        synth_imagenet_colour(1, 0, c0);
        synth_imagenet_colour(1, 1, c1);
        const uint8_t *p0 = img.rgb + ((size_t)(3 * img.height / 4) * img.width + 3 * img.width / 4) * 3;
        const uint8_t *p1 = img.rgb + ((size_t)(3 * img.height / 8) * img.width + 3 * img.width / 8) * 3;
        CHECK(near(p0, c0, 6) && near(p1, c1, 6), "cmyk colours (%d,%d,%d) (%d,%d,%d)", p0[0], p0[1], p0[2], p1[0],
              p1[1], p1[2]);
    }
    jpeg_image_free(&img);

    /* memory API and DCT scaling vs full decode + downscale, on a smooth 401x301 image */
    const int W = 401, H = 301;
    uint8_t *pix = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = pix + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(40 + 170 * x / W);
            p[1] = (uint8_t)(40 + 170 * y / H);
            p[2] = (uint8_t)(128 + 60 * sin(x / 25.0) * cos(y / 30.0));
        }
    uint8_t *jb;
    size_t jn;
    CHECK(jpeg_encode_mem(pix, W, H, 3, 95, &jb, &jn, err, sizeof err) == 0, "encode: %s", err);
    JpegImage full, half;
    CHECK(jpeg_decode_mem(jb, jn, "smooth", 8, &full, err, sizeof err) == 0, "%s", err);
    CHECK(jpeg_decode_mem(jb, jn, "smooth", 3, &half, err, sizeof err) == 0, "%s", err);
    int sw, shh;
    jpeg_scaled_dims(W, H, 3, &sw, &shh);
    CHECK(sw == 151 && shh == 113 && half.width == 151 && half.height == 113 && half.orig_width == W,
          "3/8 dims %dx%d", half.width, half.height);
    uint8_t *down = malloc((size_t)sw * shh * 3);
    inet_resample(full.rgb, W, H, 0, 0, W, H, sw, shh, 0, 0, down, sw, shh);
    double mad = 0;
    int mx = 0;
    for (size_t k = 0; k < (size_t)sw * shh * 3; k++) {
        int d = abs((int)down[k] - (int)half.rgb[k]);
        mad += d;
        if (d > mx) mx = d;
    }
    mad /= (double)sw * shh * 3;
    CHECK(mad < 1.5 && mx < 16, "DCT 3/8 vs full+downscale: mean |d| %.3f max %d", mad, mx);
    printf("DCT-scaled 3/8 decode vs full decode + PIL-bilinear downscale: mean |diff| %.3f, max %d\n", mad, mx);
    /* jpeg_pick_scale: a 200x200 crop of a 1600x1200 image needs >= 64 px: 3/8 gives 75 */
    CHECK(jpeg_pick_scale(1600, 1200, 200, 200, 64, 64) == 3, "pick %d", jpeg_pick_scale(1600, 1200, 200, 200, 64, 64));
    CHECK(jpeg_pick_scale(500, 375, 300, 300, 224, 224) == 6, "pick %d", jpeg_pick_scale(500, 375, 300, 300, 224, 224));
    CHECK(jpeg_pick_scale(500, 375, 100, 100, 224, 224) == 8, "pick for upscaling");
    jpeg_image_free(&full);
    jpeg_image_free(&half);
    free(down);
    free(jb);
    free(pix);
}

static void test_geometry(void) {
    /* fixed scale and ratio: w = h = round(sqrt(0.5 * 100 * 80)) = round(63.25) = 63 */
    Rng r = rng_stream(7, RNG_TEST, 1, 2), r2 = r;
    int i, j, h, w;
    int att = inet_rrc_params(100, 80, 0.5, 0.5, 1.0, 1.0, &r, &i, &j, &h, &w);
    rng_uniform(&r2);
    rng_uniform(&r2);
    int ei = (int)rng_below(&r2, 80 - 63 + 1), ej = (int)rng_below(&r2, 100 - 63 + 1);
    CHECK(att == 0 && h == 63 && w == 63 && i == ei && j == ej, "rrc box (%d,%d,%d,%d) expected (%d,%d,63,63)", i,
          j, h, w, ei, ej);
    CHECK(!memcmp(&r, &r2, sizeof r), "rrc consumed exactly 4 draws");
    /* ratio 4: w = round(sqrt(2000 * 4)) = 89, h = round(sqrt(2000 / 4)) = round(22.36) = 22 */
    r = rng_stream(8, RNG_TEST, 1, 2);
    att = inet_rrc_params(100, 80, 0.25, 0.25, 4.0, 4.0, &r, &i, &j, &h, &w);
    CHECK(att == 0 && w == 89 && h == 22 && i >= 0 && i <= 58 && j >= 0 && j <= 11, "rrc ratio 4: %d %d %d %d", i,
          j, h, w);
    /* impossible scale -> fallback; 100x80 (ratio 1.25 inside [3/4,4/3]) -> whole image */
    r = rng_stream(9, RNG_TEST, 0, 0);
    att = inet_rrc_params(100, 80, 2.0, 2.0, 0.75, 4.0 / 3.0, &r, &i, &j, &h, &w);
    CHECK(att == 10 && i == 0 && j == 0 && h == 80 && w == 100, "fallback whole: %d %d %d %d", i, j, h, w);
    /* 300x100 (ratio 3 > 4/3): h = 100, w = round(133.33) = 133, j = (300 - 133) / 2 = 83 */
    att = inet_rrc_params(300, 100, 2.0, 2.0, 0.75, 4.0 / 3.0, &r, &i, &j, &h, &w);
    CHECK(att == 10 && i == 0 && j == 83 && h == 100 && w == 133, "fallback wide: %d %d %d %d", i, j, h, w);
    /* 100x300: w = 100, h = round(100 / 0.75) = 133, i = 83 */
    att = inet_rrc_params(100, 300, 2.0, 2.0, 0.75, 4.0 / 3.0, &r, &i, &j, &h, &w);
    CHECK(att == 10 && i == 83 && j == 0 && h == 133 && w == 100, "fallback tall: %d %d %d %d", i, j, h, w);
    /* eval: 500x375 -> Resize(256) = 341x256 (int(256 * 500 / 375)), crop 224 at top round(16) = 16,
     * left round(58.5) = 58 (Python rounds half to even) */
    int rw, rh, top, left;
    inet_eval_geometry(500, 375, 256, 224, &rw, &rh, &top, &left);
    CHECK(rw == 341 && rh == 256 && top == 16 && left == 58, "eval geometry %d %d %d %d", rw, rh, top, left);
    inet_eval_geometry(300, 450, 256, 224, &rw, &rh, &top, &left);
    CHECK(rw == 256 && rh == 384 && top == 80 && left == 16, "eval tall %d %d %d %d", rw, rh, top, left);
    /* resampling: identity at scale 1, a constant stays constant */
    uint8_t src[6 * 4 * 3], dst[6 * 4 * 3];
    for (int k = 0; k < 72; k++) src[k] = (uint8_t)(k * 3);
    inet_resample(src, 6, 4, 0, 0, 6, 4, 6, 4, 0, 0, dst, 6, 4);
    CHECK(!memcmp(src, dst, sizeof src), "identity resample");
    /* 2x downscale of [a b] pairs with the antialiased triangle: support 2 */
    memset(src, 100, sizeof src);
    inet_resample(src, 6, 4, 1, 1, 5, 3, 3, 3, 0, 0, dst, 3, 3);
    int cst = 1;
    for (int k = 0; k < 27; k++) cst &= dst[k] == 100;
    CHECK(cst, "constant stays constant");
}

/* eval geometry on a known image: left part red, right part blue, boundary
 * at x = 200 of a 400x300 image -> resized 341x256, boundary 170.5, in the
 * crop (left 58) at 112.5 */
static void test_eval_known(void) {
    char dir[512], path[1024], err[1024];
    snprintf(dir, sizeof dir, "%s/known", g_tmp);
    sh("mkdir -p %s/train/n00000001 %s/val/n00000001", dir, dir);
    const int W = 400, H = 300;
    uint8_t *pix = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = pix + ((size_t)y * W + x) * 3;
            p[0] = x < 200 ? 200 : 30;
            p[1] = 60;
            p[2] = x < 200 ? 30 : 200;
        }
    snprintf(path, sizeof path, "%s/train/n00000001/a.JPEG", dir);
    CHECK(jpeg_encode_file(path, pix, W, H, 3, 95, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/val/n00000001/b.jpg", dir);
    CHECK(jpeg_encode_file(path, pix, W, H, 3, 95, err, sizeof err) == 0, "%s", err);
    Dataset tr, va;
    int rc = imagenet_load(&tr, &va, dir, 224, err, sizeof err);
    CHECK(rc == 0 && va.n == 1 && imagenet_label(&va, 0) == 0, "val class folders: %s", err);
    if (rc) return;
    real *out = tu_alloc(3 * 224 * 224), *n1 = tu_alloc(3 * 224 * 224);
    Augment ev = {.eval_resize = 256};
    int32_t lab;
    CHECK(va.get(&va, 0, out, &lab, &ev, NULL) == 0, "eval get");
    const size_t P = 224 * 224;
    CHECK(out[100 * 224 + 108] > 0.7 && out[2 * P + 100 * 224 + 108] < 0.2, "x=108 red");
    CHECK(out[100 * 224 + 117] < 0.2 && out[2 * P + 100 * 224 + 117] > 0.7, "x=117 blue");
    /* the windowed resize equals a full Resize(256) followed by CenterCrop(224)
     * (exactly with DCT scaling off; with it on, 400x300 decodes at 7/8 =
     * 350x263 first: within a few grey levels) */
    JpegImage img;
    jpeg_decode_file(path, 8, &img, err, sizeof err);
    uint8_t *big = malloc(341 * 256 * 3);
    inet_resample(img.rgb, W, H, 0, 0, W, H, 341, 256, 0, 0, big, 341, 256);
    Dataset va_full;
    ImagenetOptions nodct;
    imagenet_default_options(&nodct);
    nodct.dct_scaling = 0;
    CHECK(imagenet_load_opts(NULL, &va_full, dir, 224, &nodct, err, sizeof err) == 0, "%s", err);
    va_full.get(&va_full, 0, n1, &lab, &ev, NULL);
    int same = 1;
    double mad = 0;
    for (int y = 0; y < 224; y++)
        for (int x = 0; x < 224; x++)
            for (int c = 0; c < 3; c++) {
                double ref = big[((size_t)(y + 16) * 341 + x + 58) * 3 + c] / 255.0;
                same &= fabs(n1[c * P + y * 224 + x] - ref) < 1e-6;
                mad += fabs(out[c * P + y * 224 + x] - ref);
            }
    mad = mad * 255 / (3.0 * P);
    CHECK(same, "windowed eval == resize then centre crop");
    CHECK(mad < 1.0, "eval with DCT 7/8: mean |diff| %.3f levels", mad);
    printf("eval 400x300 -> 224: DCT 7/8 decode vs full decode: mean |diff| %.3f grey levels\n", mad);
    dataset_free(&va_full);
    /* eval_resize 0 means round(224 * 256 / 224) = 256 too, and DCT scaling off gives the same (400x300 < 2x) */
    Augment ev0 = {0};
    CHECK(va.get(&va, 0, n1, &lab, &ev0, NULL) == 0 && !memcmp(out, n1, P * 3 * sizeof(real)), "default eval 256");
    /* normalisation */
    Augment evn = {.eval_resize = 256, .normalize = 1};
    va.get(&va, 0, n1, &lab, &evn, NULL);
    double mx = 0;
    for (int c = 0; c < 3; c++)
        for (size_t k = 0; k < P; k++) {
            double want = (out[c * P + k] - INET_MEAN[c]) / INET_STD[c];
            double d = fabs(n1[c * P + k] - want);
            if (d > mx) mx = d;
        }
    CHECK(mx < 1e-5, "normalize: max err %g", mx);
    /* flip: with rrc off the only draw is the flip; each output is the
     * unflipped one or its exact mirror, and both occur */
    Augment fl = {.eval_resize = 256, .flip = 1};
    int seen[2] = {0, 0};
    for (int s = 0; s < 16; s++) {
        Rng r = rng_stream((uint64_t)s, RNG_AUGMENT, 0, 0);
        va.get(&va, 0, n1, &lab, &fl, &r);
        int eq = !memcmp(out, n1, P * 3 * sizeof(real)), mir = 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 224; y++)
                for (int x = 0; x < 224; x++) mir &= n1[c * P + y * 224 + x] == out[c * P + y * 224 + 223 - x];
        CHECK(eq || mir, "flip output is neither identity nor mirror");
        seen[mir && !eq]++;
        if (eq) seen[0]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0, "flip both ways (%d, %d)", seen[0], seen[1]);
    /* Lighting as the original computes it on uint8: per channel 0 or -1/255 */
    Augment li = {.eval_resize = 256, .lighting = 1};
    int dec[3] = {0, 0, 0};
    for (int s = 0; s < 8; s++) {
        Rng r = rng_stream((uint64_t)s, RNG_AUGMENT, 1, 0), r2 = r;
        va.get(&va, 0, n1, &lab, &li, &r);
        double inc[3];
        inet_lighting_offsets(&r2, INET_LIGHTING_STD, inc);
        for (int c = 0; c < 3; c++) {
            CHECK(fabs(inc[c]) < 0.2, "lighting offset %g", inc[c]);
            int ok = 1;
            for (size_t k = 0; k < P; k++) {
                double d = (n1[c * P + k] - out[c * P + k]) * 255.0;
                double want = (inc[c] < 0 && out[c * P + k] > 0) ? -1.0 : 0.0;
                ok &= fabs(d - want) < 1e-3;
            }
            CHECK(ok, "lighting channel %d (inc %g): expected %s", c, inc[c], inc[c] < 0 ? "-1/255" : "no change");
            dec[c] += inc[c] < 0;
        }
    }
    printf("lighting: 8 draws, channels decremented by 1/255: R %d G %d B %d times\n", dec[0], dec[1], dec[2]);
    uint8_t px[6] = {0, 10, 255, 0, 10, 255};
    double inc2[3] = {-0.01, 0.01, 0.5};
    inet_lighting_apply(px, 2, inc2);
    CHECK(px[0] == 0 && px[1] == 10 && px[2] == 255 && px[3] == 0 && px[4] == 10 && px[5] == 255,
          "lighting apply (0-0.01 -> 0, 10+0.01 -> 10, 255+.5 -> 255)");
    uint8_t px2[3] = {100, 100, 100};
    double inc3[3] = {-0.01, 0.99, -1.5};
    inet_lighting_apply(px2, 1, inc3);
    CHECK(px2[0] == 99 && px2[1] == 100 && px2[2] == 98, "lighting truncation %d %d %d", px2[0], px2[1], px2[2]);
    jpeg_image_free(&img);
    free(big);
    free(out);
    free(n1);
    free(pix);
    dataset_free(&tr);
    dataset_free(&va);
}

static void expect_load_error(const char *root, const char *what, const char *needle, const char *needle2) {
    Dataset tr, va;
    char err[1024] = "";
    int rc = imagenet_load(&tr, &va, root, 32, err, sizeof err);
    CHECK(rc != 0, "%s: load should fail", what);
    CHECK(strstr(err, needle) && (!needle2 || strstr(err, needle2)), "%s: message '%s' lacks '%s'", what, err,
          needle);
    printf("  %-22s -> %s\n", what, err);
    if (rc == 0) {
        dataset_free(&tr);
        dataset_free(&va);
    }
}

static void test_bad(void) {
    char root[512], path[1024], err[1024];
    printf("error messages:\n");
    snprintf(root, sizeof root, "%s/nonexistent", g_tmp);
    expect_load_error(root, "missing root", "nonexistent", "not found");

    snprintf(root, sizeof root, "%s/bad", g_tmp);
    CHECK(synth_imagenet_write(root, 3, 2, 1, 5, err, sizeof err) == 0, "%s", err);
    /* empty class folder */
    sh("mkdir -p %s/train/n00000009", root, "");
    expect_load_error(root, "empty class folder", "train/n00000009", "empty class folder");
    sh("rmdir %s/train/n00000009", root, "");
    /* unknown wnid in the val label file */
    sh("cp %s/val/val_labels.txt %s/val/labels.bak", root, root);
    sh("sed -i 's/ILSVRC2012_val_00000002.JPEG n00000002/ILSVRC2012_val_00000002.JPEG n09999999/' %s/val/val_labels.txt",
       root, "");
    expect_load_error(root, "unknown wnid", "val_labels.txt:3", "n09999999");
    /* the Kaggle CSV instead */
    sh("rm %s/val/val_labels.txt; printf 'ImageId,PredictionString\\nILSVRC2012_val_00000001,n00000001 1 2 3 4\\n"
       "ILSVRC2012_val_00000003,n00000003 5 6 7 8\\nILSVRC2012_val_00000002,n00000002 1 1 9 9\\n' > %s/LOC_val_solution.csv",
       root, root);
    {
        Dataset tr, va;
        int rc = imagenet_load(&tr, &va, root, 32, err, sizeof err);
        CHECK(rc == 0 && va.n == 3 && imagenet_label(&va, 1) == 1 && imagenet_label(&va, 2) == 2, "csv labels: %s",
              err);
        if (!rc) {
            dataset_free(&tr);
            dataset_free(&va);
        }
    }
    sh("rm %s/LOC_val_solution.csv%s", root, "");
    sh("mv %s/val/labels.bak %s/val/val_labels.txt", root, root);
    /* a non-JPEG renamed .JPEG and a corrupt JPEG */
    snprintf(path, sizeof path, "%s/train/n00000002/fake.JPEG", root);
    write_bytes(path, "\x89PNG\r\n\x1a\n not really an image", 28);
    snprintf(path, sizeof path, "%s/train/n00000003/corrupt.JPEG", root);
    {
        uint8_t junk[600];
        for (int k = 0; k < 600; k++) junk[k] = (uint8_t)(k * 37 + 11);
        junk[0] = 0xFF;
        junk[1] = 0xD8;
        junk[2] = 0xFF;
        junk[3] = 0xC0; /* SOF0 with a garbage length/body */
        write_bytes(path, junk, sizeof junk);
    }
    Dataset tr;
    int rc = imagenet_load(&tr, NULL, root, 32, err, sizeof err);
    CHECK(rc == 0 && tr.n == 8, "streaming load lists the bad files: %s", err);
    if (!rc) {
        real *out = tu_alloc(3 * 32 * 32);
        int32_t lab = 7;
        char msg[1024];
        /* sorted: n00000002/fake.JPEG is index 2 */
        rc = tr.get(&tr, 2, out, &lab, NULL, NULL);
        imagenet_last_error(&tr, msg, sizeof msg);
        CHECK(rc != 0 && strstr(msg, "fake.JPEG") && strstr(msg, "not a JPEG") && strstr(msg, "PNG"),
              "non-JPEG: '%s'", msg);
        printf("  %-22s -> %s\n", "non-JPEG .JPEG", msg);
        rc = tr.get(&tr, 5, out, &lab, NULL, NULL);
        imagenet_last_error(&tr, msg, sizeof msg);
        CHECK(rc != 0 && strstr(msg, "corrupt.JPEG") && strstr(msg, "corrupt JPEG"), "corrupt: '%s'", msg);
        printf("  %-22s -> %s\n", "corrupt JPEG", msg);
        /* dataset_batch fails the batch, naming the sample, its position and the file (dataset.h: the one
         * meaning of a failed sample; no label marks it) */
        int32_t idx[3] = {0, 5, 2}, labs[3];
        real *bo = tu_alloc(3 * 3 * 32 * 32);
        Augment aug = {.rrc = 1, .flip = 1};
        rc = dataset_batch(&tr, idx, 3, bo, labs, &aug, 1, 1, 0, msg, sizeof msg);
        CHECK(rc == -1 && strstr(msg, "reading sample 5 failed") && strstr(msg, "position 1 of a training batch of 3"),
              "batch with two bad files: rc %d '%s'", rc, msg);
        printf("  %-22s -> %s\n", "batch with bad files", msg);
        CHECK(imagenet_bad_count(&tr) == 2, "bad count %ld", imagenet_bad_count(&tr));
        free(bo);
        dataset_free(&tr);
        /* skip_bad: the next file stands in, counted once */
        ImagenetOptions o;
        imagenet_default_options(&o);
        o.skip_bad = 1;
        rc = imagenet_load_opts(&tr, NULL, root, 32, &o, err, sizeof err);
        CHECK(rc == 0, "%s", err);
        if (!rc) {
            int r1 = tr.get(&tr, 2, out, &lab, NULL, NULL);
            CHECK(r1 == 0 && lab == 1 && imagenet_bad_count(&tr) == 1, "skip_bad: rc %d label %d count %ld", r1, lab,
                  imagenet_bad_count(&tr));
            tr.get(&tr, 2, out, &lab, NULL, NULL);
            tr.get(&tr, 5, out, &lab, NULL, NULL);
            CHECK(imagenet_bad_count(&tr) == 2, "skip_bad counts files once: %ld", imagenet_bad_count(&tr));
            dataset_free(&tr);
        }
        /* verify: the load itself names the first bad file; with skip_bad it drops them */
        o.skip_bad = 0;
        o.verify = 1;
        rc = imagenet_load_opts(&tr, NULL, root, 32, &o, err, sizeof err);
        CHECK(rc != 0 && strstr(err, "fake.JPEG"), "verify: '%s'", err);
        printf("  %-22s -> %s\n", "verify at load", err);
        o.skip_bad = 1;
        rc = imagenet_load_opts(&tr, NULL, root, 32, &o, err, sizeof err);
        CHECK(rc == 0 && tr.n == 6 && imagenet_bad_count(&tr) == 2, "verify+skip: n %ld bad %ld", tr.n,
              imagenet_bad_count(&tr));
        if (!rc) dataset_free(&tr);
        free(out);
    }
    /* direct API: garbage in memory, an empty buffer, a missing file, a truncated JPEG (warning only) */
    JpegImage img;
    CHECK(jpeg_decode_mem("hello world", 11, "buf.JPEG", 8, &img, err, sizeof err) != 0 && strstr(err, "buf.JPEG") &&
              img.rgb == NULL,
          "garbage: %s", err);
    CHECK(jpeg_decode_mem("", 0, NULL, 8, &img, err, sizeof err) != 0 && strstr(err, "<memory>"), "empty: %s", err);
    CHECK(jpeg_decode_file("/nonexistent/x.JPEG", 8, &img, err, sizeof err) != 0 && strstr(err, "/nonexistent/x.JPEG"),
          "missing: %s", err);
    snprintf(path, sizeof path, "%s/train/n00000001/n00000001_1.JPEG", root);
    uint8_t *b;
    size_t n;
    jpeg_read_file(path, &b, &n, err, sizeof err);
    rc = jpeg_decode_mem(b, n * 2 / 3, path, 8, &img, err, sizeof err);
    CHECK(rc == 0 && img.warnings > 0 && strstr(img.warning, "n00000001_1.JPEG"), "truncated: rc %d warnings %d '%s'",
          rc, img.warnings, img.warning);
    printf("  %-22s -> warning: %s\n", "truncated JPEG", img.warning);
    jpeg_image_free(&img);
    /* truncated inside the headers: an error */
    rc = jpeg_decode_mem(b, 100, path, 8, &img, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "n00000001_1.JPEG"), "header-truncated: %s", err);
    printf("  %-22s -> %s\n", "cut inside the header", err);
    free(b);
}

static void test_determinism(const char *root) {
    Dataset tr;
    char err[1024];
    ImagenetOptions o;
    imagenet_default_options(&o);
    if (imagenet_load_opts(&tr, NULL, root, 96, &o, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    Augment aug = {.rrc = 1, .rrc_scale_min = 0.08, .rrc_scale_max = 1.25, .rrc_ratio_min = 0.75,
                   .rrc_ratio_max = 4.0 / 3.0, .flip = 1, .lighting = 1, .normalize = 1};
    int32_t idx[16], l1[16], l2[16];
    for (int b = 0; b < 16; b++) idx[b] = (b * 7) % 16;
    size_t sz = 16 * 3 * 96 * 96;
    real *o1 = tu_alloc(sz), *o2 = tu_alloc(sz);
    omp_set_num_threads(1);
    CHECK(dataset_batch(&tr, idx, 16, o1, l1, &aug, 1, 42, 3, NULL, 0) == 0, "dataset_batch");
    omp_set_num_threads(2);
    CHECK(dataset_batch(&tr, idx, 16, o2, l2, &aug, 1, 42, 3, NULL, 0) == 0, "dataset_batch");
    CHECK(!memcmp(o1, o2, sz * sizeof(real)) && !memcmp(l1, l2, sizeof l1), "batch differs between 1 and 2 threads");
    for (int b = 0; b < 16; b++) CHECK(l1[b] == idx[b] / 4, "batch label %d", b);
    /* a different epoch gives different crops */
    CHECK(dataset_batch(&tr, idx, 16, o2, l2, &aug, 1, 42, 4, NULL, 0) == 0, "dataset_batch");
    CHECK(memcmp(o1, o2, sz * sizeof(real)) != 0, "epochs differ");
    /* DCT scaling off: same geometry, pixels within a few levels (these images are small: mostly 8/8 anyway) */
    Dataset t2;
    o.dct_scaling = 0;
    imagenet_load_opts(&t2, NULL, root, 96, &o, err, sizeof err);
    CHECK(dataset_batch(&t2, idx, 16, o2, l2, &aug, 1, 42, 3, NULL, 0) == 0, "dataset_batch");
    double mad = 0;
    for (size_t k = 0; k < sz; k++) mad += fabs(o1[k] - o2[k]);
    mad /= (double)sz;
    CHECK(mad < 0.05, "dct on/off mean |diff| %g (normalised units)", mad);
    dataset_free(&t2);
    free(o1);
    free(o2);
    dataset_free(&tr);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/test_imagenet.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char root[512], err[1024];
    snprintf(root, sizeof root, "%s/tree", g_tmp);
    if (synth_imagenet_write(root, 4, 4, 2, 123, err, sizeof err) != 0) {
        fprintf(stderr, "generator: %s\n", err);
        return 1;
    }
    test_tree(root);
    test_decode(root);
    test_geometry();
    test_eval_known();
    test_bad();
    test_determinism(root);
    /* default root */
    char def[512];
    setenv("CBNN_DATA", "/some/where", 1);
    imagenet_default_root(def, sizeof def);
    CHECK(!strcmp(def, "/some/where/imagenet"), "default root %s", def);
    unsetenv("CBNN_DATA");
    imagenet_default_root(def, sizeof def);
    CHECK(!strcmp(def, "data/imagenet"), "default root %s", def);
    sh("rm -rf %s%s", g_tmp, "");
    return tu_finish("imagenet");
}
