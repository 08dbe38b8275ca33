/* Detection batches (datasets/detect_batch.c): the reference's roidb, sampler
 * and roibatchLoader, checked against numbers worked out by hand.
 *
 * 1. Arithmetic: the inclusive box conversion and its flip, the truncation of
 *    fractional coordinates, the target ratio of a group, the canvas sizes
 *    (float32: 600 * (float)(4/3) -> 800, not 801).
 * 2. A hand-made devkit of six images with known sizes (min_size 64) plus one
 *    without boxes: the skip count, the ranking, the block contents, every
 *    batch's size, im_info, gt rows (crop shift, clamps, dropped degenerate
 *    boxes, zero rows), crop offsets and pixels (against voc_get directly),
 *    for batch sizes 2 and 3 and the flipped copies; max_gt caps and the gt
 *    shuffle; train_difficult.
 * 3. A generated devkit: ranking and ratio clipping, each epoch visits every
 *    drawn entry once and leaves the leftover out, epochs differ, the
 *    reference's invariants on every batch, bitwise determinism (twice, and 1
 *    vs 2 threads), the test loader, and the errors (an image too small for
 *    the stride, a missing JPEG). */
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/detect_batch.h"
#include "datasets/jpeg_io.h"
#include "datasets/voc.h"
#include "testutil.h"

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL, "cannot write %s", path);
    if (!fp) return;
    fputs(text, fp);
    fclose(fp);
}

static void mkdirs(const char *root) {
    char p[1200];
    mkdir(root, 0777);
    const char *sub[5] = {"VOC2007", "VOC2007/ImageSets", "VOC2007/ImageSets/Main", "VOC2007/Annotations",
                          "VOC2007/JPEGImages"};
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/%s", root, sub[k]);
        mkdir(p, 0777);
    }
}

/* an image with a pattern that differs from column to column and row to row,
 * and its annotation: objs = "name x1 y1 x2 y2 difficult;..." (VOC numbers) */
static void write_image(const char *dk, const char *id, int W, int H, const char *objs) {
    uint8_t *px = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = px + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(x * 3 + y), p[1] = (uint8_t)(y * 5), p[2] = (uint8_t)((x * 7) ^ (y * 2));
        }
    char path[1200], err[1024];
    snprintf(path, sizeof path, "%s/VOC2007/JPEGImages/%s.jpg", dk, id);
    CHECK(jpeg_encode_file(path, px, W, H, 3, 95, err, sizeof err) == 0, "encode %s: %s", path, err);
    free(px);

    char text[8192], name[32];
    int n = snprintf(text, sizeof text,
                     "<annotation><filename>%s.jpg</filename>\n"
                     "<size><width>%d</width><height>%d</height><depth>3</depth></size>\n",
                     id, W, H);
    const char *p = objs;
    int x1, y1, x2, y2, diff, used;
    while (p && sscanf(p, " %31s %d %d %d %d %d%n", name, &x1, &y1, &x2, &y2, &diff, &used) == 6) {
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%d</xmin><ymin>%d</ymin>"
                      "<xmax>%d</xmax><ymax>%d</ymax></bndbox></object>\n",
                      name, diff, x1, y1, x2, y2);
        p += used;
        p = strchr(p, ';');
        if (p) p++;
    }
    snprintf(text + n, sizeof text - (size_t)n, "</annotation>\n");
    snprintf(path, sizeof path, "%s/VOC2007/Annotations/%s.xml", dk, id);
    write_text(path, text);
}

static int near(double a, double b) { return fabs(a - b) <= 1e-4 * (1 + fabs(b)); }

static int row_is(const DetBatch *b, int i, int k, double x1, double y1, double x2, double y2, int cls) {
    const float *g = b->gt + ((size_t)i * b->max_gt + k) * 5;
    return near(g[0], x1) && near(g[1], y1) && near(g[2], x2) && near(g[3], y2) && g[4] == (float)cls;
}

static int rows_zero_from(const DetBatch *b, int i, int k0) {
    for (int k = k0; k < b->max_gt; k++)
        for (int c = 0; c < 5; c++)
            if (b->gt[((size_t)i * b->max_gt + k) * 5 + c] != 0.0f) return 0;
    return 1;
}

/* slot i of the batch holds rows [y0, y0+ph) x cols [x0, x0+pw) of the
 * resized (and flipped) image as voc_get gives it, and zeros elsewhere */
static int pixels_ok(const VocSet *s, const DetData *d, const DetBatch *b, int i, int ph, int pw, int y0, int x0,
                     int min_size) {
    DetEntryInfo info;
    if (det_data_entry(d, b->entry[i], &info) != 0) return 0;
    VocSample smp = {0};
    VocTransform t = {.min_size = min_size, .flip = info.flipped ? VOC_FLIP_ALWAYS : VOC_FLIP_NONE, .normalize = 1};
    if (voc_get(s, info.image, &smp, &t, NULL) != 0) return 0;
    int ok = 1;
    for (int c = 0; c < 3 && ok; c++)
        for (int y = 0; y < b->H && ok; y++)
            for (int x = 0; x < b->W && ok; x++) {
                real got = b->images[(((size_t)i * 3 + c) * b->H + y) * b->W + x];
                real want = y < ph && x < pw ? smp.image[((size_t)c * smp.height + y0 + y) * smp.width + x0 + x] : 0;
                ok = got == want;
            }
    voc_sample_free(&smp);
    return ok;
}

/* ------------------------------------------------------------ arithmetic */

static void test_arithmetic(void) {
    float b[4];
    VocObject o = {.label = 14, .xmin = 11, .ymin = 21, .xmax = 50, .ymax = 80};
    det_box_convert(&o, 300, 0, 1.0, b);
    CHECK(b[0] == 10 && b[1] == 20 && b[2] == 49 && b[3] == 79, "inclusive 0-based: %g %g %g %g", b[0], b[1], b[2], b[3]);
    /* flip in a 300-wide image: x1' = 300 - 49 - 1 = 250, x2' = 300 - 10 - 1 = 289 */
    det_box_convert(&o, 300, 1, 1.0, b);
    CHECK(b[0] == 250 && b[1] == 20 && b[2] == 289 && b[3] == 79, "flipped: %g %g %g %g", b[0], b[1], b[2], b[3]);
    det_box_convert(&o, 300, 1, 2.0, b);
    CHECK(b[0] == 500 && b[1] == 40 && b[2] == 578 && b[3] == 158, "flipped x2: %g %g %g %g", b[0], b[1], b[2], b[3]);
    /* the flip of the flip is the box again: 300 - 289 - 1 = 10 */
    VocObject of = {.xmin = 251, .ymin = 21, .xmax = 290, .ymax = 80};
    det_box_convert(&of, 300, 1, 1.0, b);
    CHECK(b[0] == 10 && b[2] == 49, "flip of the flip: %g %g", b[0], b[2]);
    det_box_convert(&o, 300, 0, 0.64, b);
    CHECK(b[0] == (float)(0.64 * 10) && b[2] == (float)(0.64 * 49) && b[3] == (float)(0.64 * 79),
          "scale 0.64: %.9g %.9g (the product in double, then float)", b[0], b[2]);
    /* a fractional file number is truncated (the reference's uint16 roidb) */
    VocObject f = {.xmin = 2.5f, .ymin = 3.9f, .xmax = 20.7f, .ymax = 30};
    det_box_convert(&f, 100, 0, 1.0, b);
    CHECK(b[0] == 1 && b[1] == 2 && b[2] == 19 && b[3] == 29, "truncated: %g %g %g %g", b[0], b[1], b[2], b[3]);
    det_box_convert(&f, 100, 1, 1.0, b);
    CHECK(b[0] == 80 && b[2] == 98, "truncated then flipped: 100-19-1 = 80, 100-1-1 = 98: %g %g", b[0], b[2]);

    /* target ratios of a group */
    CHECK(det_target_ratio(0.5, 0.8) == 0.5f, "all below 1: the smallest");
    CHECK(det_target_ratio(1.2, 2.0) == 2.0f, "all above 1: the largest");
    CHECK(det_target_ratio(0.5, 1.0) == 1.0f && det_target_ratio(1.0, 2.0) == 1.0f &&
              det_target_ratio(0.9, 1.1) == 1.0f,
          "across (or touching) 1: square");
    CHECK(det_target_ratio(375.0 / 500, 0.8) == 0.75f, "0.75");

    /* canvases */
    int h, w;
    det_canvas_size(128, 64, 0.5f, &h, &w);
    CHECK(h == 128 && w == 64, "tall: ceil(64 / 0.5) x 64: %dx%d", h, w);
    det_canvas_size(64, 77, 2.0f, &h, &w);
    CHECK(h == 64 && w == 128, "wide: 64 x ceil(64 * 2): %dx%d", h, w);
    det_canvas_size(64, 77, 1.0f, &h, &w);
    CHECK(h == 64 && w == 64, "square: min side: %dx%d", h, w);
    det_canvas_size(800, 600, 0.75f, &h, &w);
    CHECK(h == 800 && w == 600, "375x500 group: %dx%d", h, w);
    /* (float)(4/3) = 1.33333337; 600 * that = 800.0000238 rounds to 800.0f in
     * float32 (half an ulp at 800 is 3.05e-5), so ceil gives 800; the same
     * product in double would give 801 */
    float r43 = det_target_ratio(500.0 / 375, 500.0 / 375);
    det_canvas_size(600, 800, r43, &h, &w);
    CHECK(h == 600 && w == 800, "500x375 group: float32 canvas %dx%d (not 801)", h, w);
    CHECK(ceil(600.0 * (double)r43) == 801, "(and in double it would be 801)");
    /* a tall group whose ratio does not divide the width: ceil */
    det_canvas_size(200, 64, 0.6f, &h, &w);
    CHECK(h == 107 && w == 64, "64 / 0.6 = 106.67 -> 107: %dx%d", h, w);
}

/* ------------------------------------------------------------ hand-made devkit */

static void test_hand(const char *tmp) {
    char dk[1024], err[4096], p[1200];
    snprintf(dk, sizeof dk, "%s/hand", tmp);
    mkdirs(dk);
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/blocks.txt", dk);
    write_text(p, "a\nb\nc\nd\ne\nf\ng\n");
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/many.txt", dk);
    write_text(p, "h\n");
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/diff.txt", dk);
    write_text(p, "a\nk\n");
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/crop.txt", dk);
    write_text(p, "m\nn\n");
    /* every image with shorter side 100 (scale 64/100 = 0.64) except c (150) and h */
    write_image(dk, "a", 200, 100, "person 11 21 50 80 0");                      /* ratio 2 */
    write_image(dk, "b", 100, 200, "dog 11 21 50 80 0");                         /* 0.5 */
    write_image(dk, "c", 150, 150, "cat 1 1 150 150 0");                         /* 1 */
    write_image(dk, "d", 300, 100, "car 201 11 300 90 0");                       /* 3 -> 2, crop */
    write_image(dk, "e", 100, 300, "dog 1 1 100 100 0; bird 1 251 100 300 0");   /* 1/3 -> 0.5, crop */
    write_image(dk, "f", 120, 100, "cat 61 1 120 100 0; cat 111 1 120 100 0");   /* 1.2 */
    write_image(dk, "g", 150, 120, "");                                          /* no box */
    write_image(dk, "h", 160, 160,
                "car 1 1 20 20 0; dog 21 21 40 40 0; cat 41 41 60 60 1; bird 61 61 80 80 0; "
                "cow 81 81 100 100 0; horse 101 101 120 120 0");
    write_image(dk, "k", 160, 160, "bottle 11 11 40 60 1");                      /* only a difficult box */
    write_image(dk, "m", 400, 100, "boat 101 1 200 100 0");                      /* 4 -> 2, crop */
    write_image(dk, "n", 400, 100, "boat 11 1 250 100 0");                       /* 4 -> 2, crop */

    const char *sp[] = {"VOC2007/blocks", NULL};
    VocSet *s = voc_open(dk, sp, 1, err, sizeof err);
    CHECK(s != NULL, "open hand: %s", err);
    if (!s) return;
    CHECK(s->n == 7, "7 images listed, %ld", s->n);

    DetDataOptions o = det_data_options_default(1);
    CHECK(o.min_size == 600 && o.flip == 1 && o.train_difficult == 1 && o.max_gt == 20, "defaults");
    o.min_size = 64, o.flip = 0, o.max_gt = 4;
    DetData *d = det_data_open(s, &o, err, sizeof err);
    CHECK(d != NULL, "det_data_open: %s", err);
    if (!d) {
        voc_close(s);
        return;
    }
    /* g has no box: skipped; entries a b c d e f = 0..5 */
    CHECK(det_data_entries(d) == 6 && det_data_skipped(d) == 1, "entries %ld, skipped %ld", det_data_entries(d),
          det_data_skipped(d));
    DetEntryInfo in;
    CHECK(det_data_entry(d, 3, &in) == 0 && strcmp(in.id, "d") == 0 && in.width == 300 && in.height == 100 &&
              in.data_width == 192 && in.data_height == 64 && in.scale == 0.64 && in.ratio == 2.0 &&
              in.need_crop == 1 && in.flipped == 0 && in.image == 3,
          "entry d: %s %dx%d -> %dx%d scale %g ratio %g crop %d", in.id, in.width, in.height, in.data_width,
          in.data_height, in.scale, in.ratio, in.need_crop);
    CHECK(det_data_entry(d, 5, &in) == 0 && strcmp(in.id, "f") == 0 && in.data_width == 77 && in.need_crop == 0 &&
              in.ratio == 1.2,
          "entry f: 120 * 0.64 = 76.8 -> 77 wide, ratio 1.2");
    CHECK(det_data_entry(d, 2, &in) == 0 && in.scale == 64.0 / 150 && in.data_width == 64 && in.data_height == 64,
          "entry c: scale 64/150");
    CHECK(det_data_entry(d, 6, &in) == -1, "entry 6 out of range");
    /* ranking: b e (0.5), c (1), f (1.2), a d (2); ties in entry order */
    const long want_rank[6] = {1, 4, 2, 5, 0, 3};
    const double want_ratio[6] = {0.5, 0.5, 1.0, 1.2, 2.0, 2.0};
    int rank_ok = 1;
    for (long k = 0; k < 6; k++)
        rank_ok &= det_data_ranked_entry(d, k) == want_rank[k] && det_data_ranked_ratio(d, k) == want_ratio[k];
    CHECK(rank_ok, "ranked b e c f a d with ratios .5 .5 1 1.2 2 2");

    /* batch 2: three blocks {b,e} {c,f} {a,d}; each epoch visits all three */
    CHECK(det_data_batches(d, 2) == 3 && det_data_batches(d, 4) == 1 && det_data_batches(d, 7) == 0,
          "batches per epoch: floor(6 / B)");
    int32_t ent[8];
    int seen[6] = {0};
    for (long b = 0; b < 3; b++) {
        CHECK(det_data_batch_entries(d, 2, 5, 1, b, ent) == 2, "batch %ld of 2", b);
        long pos = -1;
        for (long k = 0; k < 6; k++)
            if (want_rank[k] == ent[0]) pos = k;
        CHECK(pos % 2 == 0 && ent[1] == want_rank[pos + 1], "batch %ld is a block: %d %d", b, ent[0], ent[1]);
        seen[ent[0]]++, seen[ent[1]]++;
    }
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1 && seen[4] == 1 && seen[5] == 1,
          "every entry once");
    CHECK(det_data_batch_entries(d, 2, 5, 1, 3, ent) == -1 && det_data_batch_entries(d, 2, 5, 1, -1, ent) == -1,
          "batch index out of range");
    int mh, mw;
    det_data_max_size(d, 2, &mh, &mw);
    CHECK(mh == 128 && mw == 128, "max size, batch 2: %dx%d (128x64 and 64x128 canvases)", mh, mw);
    det_data_max_size(d, 3, &mh, &mw);
    CHECK(mh == 64 && mw == 128, "max size, batch 3: %dx%d", mh, mw);
    det_data_max_size(d, 4, &mh, &mw);
    CHECK(mh == 64 && mw == 128, "max size, batch 4 (the leftover {a,d} included): %dx%d", mh, mw);

    DetBatch bt = {0};
    /* {b, e}: r = 0.5, canvas 128 x 64. b fits exactly; e (64 x 192) is cut
     * to floor(64 / 0.5) = 128 rows from y0 = 0 (its dog box starts at row 0);
     * its bird box (rows 160..191.36) clamps to 127..127 and is dropped */
    int32_t be[2] = {1, 4};
    CHECK(det_batch_load(d, be, 2, 6, 1, &bt, err, sizeof err) == 0, "load {b,e}: %s", err);
    CHECK(bt.B == 2 && bt.H == 128 && bt.W == 64 && bt.max_gt == 4, "{b,e}: %dx%dx%d", bt.B, bt.H, bt.W);
    CHECK(bt.im_info[0] == 128 && bt.im_info[1] == 64 && bt.im_info[2] == 0.64f && bt.im_info[3] == 128 &&
              bt.im_info[4] == 64 && bt.im_info[5] == 0.64f,
          "{b,e} im_info");
    CHECK(bt.num_boxes[0] == 1 && row_is(&bt, 0, 0, 6.4, 12.8, 31.36, 50.56, 12) && rows_zero_from(&bt, 0, 1),
          "b: dog (class 11 + 1) at 0.64 * (10, 20, 49, 79), rows 1..3 zero");
    CHECK(bt.num_boxes[1] == 1 && row_is(&bt, 1, 0, 0, 0, 63.36, 63.36, 12) && rows_zero_from(&bt, 1, 1),
          "e: the dog kept, the bird dropped");
    CHECK(bt.offset[2] == 0 && bt.offset[3] == 0, "e: crop at row 0");
    CHECK(pixels_ok(s, d, &bt, 0, 128, 64, 0, 0, 64) && pixels_ok(s, d, &bt, 1, 128, 64, 0, 0, 64), "{b,e} pixels");

    /* {c, f}: across 1 -> square 64 x 64. f (77 x 64) keeps its top-left
     * 64 x 64; its boxes clamp to [0, 64]: the first 0.64 * (60, 0, 119, 99) =
     * (38.4, 0, 76.16, 63.36) -> x2 = 64, the second (70.4 .. 76.16) -> 64..64 dropped */
    int32_t cf[2] = {2, 5};
    CHECK(det_batch_load(d, cf, 2, 6, 1, &bt, err, sizeof err) == 0, "load {c,f}: %s", err);
    CHECK(bt.H == 64 && bt.W == 64 && bt.im_info[3] == 64 && bt.im_info[4] == 64, "{c,f}: %dx%d", bt.H, bt.W);
    CHECK(bt.num_boxes[0] == 1 && row_is(&bt, 0, 0, 0, 0, 149 * (64.0 / 150), 149 * (64.0 / 150), 8) &&
              bt.im_info[2] == (float)(64.0 / 150),
          "c: cat (7 + 1) at 64/150 * (0, 0, 149, 149)");
    CHECK(bt.num_boxes[1] == 1 && row_is(&bt, 1, 0, 38.4, 0, 64, 63.36, 8) && rows_zero_from(&bt, 1, 1),
          "f: one box clamped to 64, one dropped");
    CHECK(pixels_ok(s, d, &bt, 0, 64, 64, 0, 0, 64) && pixels_ok(s, d, &bt, 1, 64, 64, 0, 0, 64), "{c,f} pixels");

    /* {a, d}: r = 2, canvas 64 x 128. d (192 x 64) is cut to ceil(64 * 2) =
     * 128 columns. Its box spans x 128..191.36 (ints 128..191, 64 < 128 wide):
     * the offset is drawn from range(max(191 - 128, 0), min(128, 192 - 128)) =
     * range(63, 64), i.e. 63; the box becomes (65, 6.4, 128.36 -> 127, 56.96) */
    int32_t ad[2] = {0, 3};
    CHECK(det_batch_load(d, ad, 2, 6, 1, &bt, err, sizeof err) == 0, "load {a,d}: %s", err);
    CHECK(bt.H == 64 && bt.W == 128 && bt.im_info[0] == 64 && bt.im_info[1] == 128, "{a,d}: %dx%d", bt.H, bt.W);
    CHECK(bt.num_boxes[0] == 1 && row_is(&bt, 0, 0, 6.4, 12.8, 31.36, 50.56, 15), "a: person (14 + 1)");
    CHECK(bt.offset[2] == 0 && bt.offset[3] == 63, "d: crop at column %d (63)", bt.offset[3]);
    CHECK(bt.num_boxes[1] == 1 && row_is(&bt, 1, 0, 65, 6.4, 127, 56.96, 7), "d: car (6 + 1) shifted and clamped");
    CHECK(pixels_ok(s, d, &bt, 0, 64, 128, 0, 0, 64) && pixels_ok(s, d, &bt, 1, 64, 128, 0, 63, 64), "{a,d} pixels");

    /* batch 3: {b, e, c} across 1 -> 64 x 64 squares. e is "cropped" on
     * columns to min(ceil(192 * 1), 64) = 64 from 0: its dog x2 63.36 clamps
     * to 63, then the square clamps y to [0, 64]; the bird (y 160..191.36)
     * becomes 64..64 and is dropped */
    CHECK(det_data_batches(d, 3) == 2, "batch 3: 2 per epoch");
    int32_t bec[3] = {1, 4, 2};
    CHECK(det_batch_load(d, bec, 3, 6, 1, &bt, err, sizeof err) == 0, "load {b,e,c}: %s", err);
    CHECK(bt.B == 3 && bt.H == 64 && bt.W == 64, "{b,e,c}: %dx%d", bt.H, bt.W);
    CHECK(bt.num_boxes[0] == 1 && row_is(&bt, 0, 0, 6.4, 12.8, 31.36, 50.56, 12), "b in a square");
    CHECK(bt.num_boxes[1] == 1 && row_is(&bt, 1, 0, 0, 0, 63, 63.36, 12), "e in a square: (0, 0, 63, 63.36)");
    CHECK(pixels_ok(s, d, &bt, 0, 64, 64, 0, 0, 64) && pixels_ok(s, d, &bt, 1, 64, 64, 0, 0, 64), "{b,e,c} pixels");
    /* {f, a, d}: lo = 1.2 > 1 -> r = 2, 64 x 128; f (77 wide) padded with
     * zeros from column 77, its boxes not clamped (both kept) */
    int32_t fad[3] = {5, 0, 3};
    CHECK(det_batch_load(d, fad, 3, 6, 1, &bt, err, sizeof err) == 0, "load {f,a,d}: %s", err);
    CHECK(bt.H == 64 && bt.W == 128 && bt.im_info[0] == 64 && bt.im_info[1] == 128, "{f,a,d}: %dx%d", bt.H, bt.W);
    CHECK(bt.num_boxes[0] == 2 && rows_zero_from(&bt, 0, 2), "f: both boxes kept (%d)", bt.num_boxes[0]);
    int f_rows = (row_is(&bt, 0, 0, 38.4, 0, 76.16, 63.36, 8) && row_is(&bt, 0, 1, 70.4, 0, 76.16, 63.36, 8)) ||
                 (row_is(&bt, 0, 1, 38.4, 0, 76.16, 63.36, 8) && row_is(&bt, 0, 0, 70.4, 0, 76.16, 63.36, 8));
    CHECK(f_rows, "f: its two boxes, unclamped, in some order");
    CHECK(pixels_ok(s, d, &bt, 0, 64, 77, 0, 0, 64) && pixels_ok(s, d, &bt, 2, 64, 128, 0, 63, 64), "{f,a,d} pixels");
    det_data_close(d);

    /* with the flipped copies: entries 6..11 = a'..f' */
    o.flip = 1;
    d = det_data_open(s, &o, err, sizeof err);
    CHECK(d != NULL, "open with flip: %s", err);
    if (d) {
        const long want_flip_rank[12] = {1, 4, 7, 10, 2, 8, 5, 11, 0, 3, 6, 9};
        int ok = det_data_entries(d) == 12 && det_data_skipped(d) == 1;
        for (long k = 0; k < 12; k++) ok &= det_data_ranked_entry(d, k) == want_flip_rank[k];
        CHECK(ok, "12 entries ranked b e b' e' c c' f f' a d a' d'");
        CHECK(det_data_entry(d, 9, &in) == 0 && in.flipped == 1 && strcmp(in.id, "d") == 0 && in.image == 3,
              "entry 9 = d flipped");
        /* {a', d'}: d' has its car at x 300-299-1 = 0 .. 300-200-1 = 99, so
         * min_x = 0 and the crop starts at column 0: (0, 6.4, 63.36, 56.96);
         * a' has its person at 200-49-1 = 150 .. 200-10-1 = 189 */
        int32_t adf[2] = {6, 9};
        CHECK(det_batch_load(d, adf, 2, 6, 1, &bt, err, sizeof err) == 0, "load {a',d'}: %s", err);
        CHECK(bt.num_boxes[0] == 1 && row_is(&bt, 0, 0, 96, 12.8, 120.96, 50.56, 15), "a' flipped box");
        CHECK(bt.num_boxes[1] == 1 && row_is(&bt, 1, 0, 0, 6.4, 63.36, 56.96, 7) && bt.offset[3] == 0,
              "d' flipped box, crop at 0");
        CHECK(pixels_ok(s, d, &bt, 0, 64, 128, 0, 0, 64) && pixels_ok(s, d, &bt, 1, 64, 128, 0, 0, 64), "{a',d'} pixels");
        det_data_close(d);
    }
    voc_close(s);

    /* max_gt: h has 6 boxes; the gt rows are a shuffle of them */
    const char *sm[] = {"VOC2007/many", NULL};
    s = voc_open(dk, sm, 1, err, sizeof err);
    CHECK(s != NULL, "open many: %s", err);
    if (s) {
        o = det_data_options_default(1);
        o.min_size = 160, o.flip = 0, o.max_gt = 8;
        d = det_data_open(s, &o, err, sizeof err);
        CHECK(d != NULL, "open many: %s", err);
        int32_t e0 = 0;
        int orders_differ = 0;
        float first[6 * 5];
        for (long ep = 0; d && ep < 6; ep++) {
            CHECK(det_batch_load(d, &e0, 1, 11, ep, &bt, err, sizeof err) == 0, "load h: %s", err);
            CHECK(bt.num_boxes[0] == 6 && rows_zero_from(&bt, 0, 6), "h: 6 rows then 2 zero rows");
            const int cls[6] = {7, 12, 8, 3, 10, 13};
            int mask = 0;
            for (int k = 0; k < 6; k++)
                for (int j = 0; j < 6; j++)
                    if (row_is(&bt, 0, k, 20 * j, 20 * j, 20 * j + 19, 20 * j + 19, cls[j])) mask |= 1 << j;
            CHECK(mask == 63, "h: the rows are the six boxes (mask %x)", mask);
            if (ep == 0) memcpy(first, bt.gt, sizeof first);
            else orders_differ += memcmp(first, bt.gt, sizeof first) != 0;
            CHECK(bt.difficult[0] + bt.difficult[1] + bt.difficult[2] + bt.difficult[3] + bt.difficult[4] +
                          bt.difficult[5] ==
                      1,
                  "h: one difficult row (the cat)");
        }
        CHECK(orders_differ > 0, "the gt rows are shuffled differently in other epochs");
        det_data_close(d);
        /* max_gt 4: four distinct of the six */
        o.max_gt = 4;
        d = det_data_open(s, &o, err, sizeof err);
        if (d && det_batch_load(d, &e0, 1, 11, 0, &bt, err, sizeof err) == 0) {
            int distinct = bt.num_boxes[0] == 4;
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < k; j++) distinct &= bt.gt[k * 5] != bt.gt[j * 5];
            CHECK(distinct && bt.max_gt == 4, "capped at 4 distinct rows");
        } else CHECK(0, "max_gt 4: %s", err);
        det_data_close(d);
        /* test mode: file order, no shuffle */
        o = det_data_options_default(0);
        o.min_size = 160, o.max_gt = 8;
        d = det_data_open(s, &o, err, sizeof err);
        if (d && det_batch_load(d, &e0, 1, 11, 0, &bt, err, sizeof err) == 0) {
            const int cls[6] = {7, 12, 8, 3, 10, 13};
            int inorder = bt.num_boxes[0] == 6;
            for (int k = 0; k < 6; k++) inorder &= row_is(&bt, 0, k, 20 * k, 20 * k, 20 * k + 19, 20 * k + 19, cls[k]);
            CHECK(inorder && bt.difficult[2] == 1 && bt.im_info[0] == 160 && bt.im_info[1] == 160 &&
                      bt.im_info[2] == 1.0f,
                  "test: the boxes in file order, scale 1");
        } else CHECK(0, "test mode: %s", err);
        det_data_close(d);
        voc_close(s);
    }

    /* train_difficult: k's only box is difficult */
    const char *sd[] = {"VOC2007/diff", NULL};
    s = voc_open(dk, sd, 1, err, sizeof err);
    CHECK(s != NULL, "open diff: %s", err);
    if (s) {
        o = det_data_options_default(1);
        o.min_size = 64, o.flip = 0;
        d = det_data_open(s, &o, err, sizeof err);
        CHECK(d && det_data_entries(d) == 2 && det_data_skipped(d) == 0, "difficult kept: 2 entries");
        int32_t e1 = 1;
        CHECK(d && det_batch_load(d, &e1, 1, 1, 0, &bt, err, sizeof err) == 0 && bt.num_boxes[0] == 1 &&
                  bt.difficult[0] == 1 && bt.gt[4] == 5,
              "k: its difficult bottle (4 + 1) is a gt row");
        det_data_close(d);
        o.train_difficult = 0;
        d = det_data_open(s, &o, err, sizeof err);
        CHECK(d && det_data_entries(d) == 1 && det_data_skipped(d) == 1, "difficult dropped: k skipped");
        det_data_close(d);
        voc_close(s);
    }

    /* random crop offsets: m and n are 256 x 64 after resizing, cut to 128
     * columns. m's boat spans x 64..127.36 (ints 64..127, 64 wide): the offset
     * is drawn from range(max(127 - 128, 0), min(64, 256 - 128)) = 0..63, the
     * box then at (64 - s, 127.36 - s). n's boat spans 6.4..159.36 (ints
     * 6..159, 154 >= 128 wide): drawn from range(6, 6 + (154 - 128) / 2) =
     * 6..18, the box then clamped to (max(6.4 - s, 0), min(159.36 - s, 127)). */
    const char *sc[] = {"VOC2007/crop", NULL};
    s = voc_open(dk, sc, 1, err, sizeof err);
    CHECK(s != NULL, "open crop: %s", err);
    if (s) {
        o = det_data_options_default(1);
        o.min_size = 64, o.flip = 0;
        d = det_data_open(s, &o, err, sizeof err);
        int32_t mn[2] = {0, 1};
        int range_ok = 1, box_ok = 1, pix_ok = 1, distinct_m = 0, distinct_n = 0, prev_m = -1, prev_n = -1;
        for (long ep = 0; d && ep < 12; ep++) {
            if (det_batch_load(d, mn, 2, 99, ep, &bt, err, sizeof err) != 0) {
                CHECK(0, "load {m,n}: %s", err);
                break;
            }
            const int sm = bt.offset[1], sn = bt.offset[3];
            range_ok &= bt.H == 64 && bt.W == 128 && bt.offset[0] == 0 && bt.offset[2] == 0 && sm >= 0 &&
                        sm <= 63 && sn >= 6 && sn <= 18;
            box_ok &= bt.num_boxes[0] == 1 && row_is(&bt, 0, 0, 64 - sm, 0, 127.36 - sm, 63.36, 4);
            box_ok &= bt.num_boxes[1] == 1 &&
                      row_is(&bt, 1, 0, fmax(6.4 - sn, 0), 0, fmin(159.36 - sn, 127), 63.36, 4);
            pix_ok &= pixels_ok(s, d, &bt, 0, 64, 128, 0, sm, 64) && pixels_ok(s, d, &bt, 1, 64, 128, 0, sn, 64);
            distinct_m += prev_m >= 0 && sm != prev_m;
            distinct_n += prev_n >= 0 && sn != prev_n;
            prev_m = sm, prev_n = sn;
        }
        CHECK(range_ok, "crop offsets in their ranges");
        CHECK(box_ok, "boxes shifted by the offset and clamped to [0, 127]");
        CHECK(pix_ok, "pixels from the offset");
        CHECK(distinct_m > 0 && distinct_n > 0, "the offsets vary with the epoch");
        det_data_close(d);
        voc_close(s);
    }
    det_batch_free(&bt);
}

/* ------------------------------------------------------------ generated devkit */

static int same_batch(const DetBatch *a, const DetBatch *b) {
    if (a->B != b->B || a->H != b->H || a->W != b->W || a->max_gt != b->max_gt) return 0;
    size_t ni = (size_t)a->B * 3 * a->H * a->W, ng = (size_t)a->B * a->max_gt;
    return memcmp(a->images, b->images, ni * sizeof(real)) == 0 && memcmp(a->gt, b->gt, ng * 5 * sizeof(float)) == 0 &&
           memcmp(a->im_info, b->im_info, (size_t)a->B * 3 * sizeof(float)) == 0 &&
           memcmp(a->num_boxes, b->num_boxes, (size_t)a->B * sizeof(int32_t)) == 0 &&
           memcmp(a->difficult, b->difficult, ng) == 0 && memcmp(a->offset, b->offset, (size_t)a->B * 8) == 0;
}

static void test_generated(const char *tmp) {
    char dir[1024], dk[1100], err[4096];
    snprintf(dir, sizeof dir, "%s/gen", tmp);
    CHECK(synth_voc_write(dir, 16, 3, err, sizeof err) == 0, "synth: %s", err);
    snprintf(dk, sizeof dk, "%s/VOCdevkit", dir);
    const char *sp[] = {"VOC2007/trainval", "VOC2012/trainval", NULL};
    VocSet *s = voc_open(dk, sp, 1, err, sizeof err);
    CHECK(s != NULL, "open generated: %s", err);
    if (!s) return;
    DetDataOptions o = det_data_options_default(1);
    o.min_size = 96;
    DetData *d = det_data_open(s, &o, err, sizeof err);
    CHECK(d != NULL, "det_data_open generated: %s", err);
    if (!d) {
        voc_close(s);
        return;
    }
    const long n = det_data_entries(d);
    CHECK(n == 2 * s->n && det_data_skipped(d) == 0, "every generated image has boxes: %ld = 2 x %ld", n, s->n);

    /* ranking: ascending, each the clipped ratio of its entry, each entry once */
    int *count = calloc((size_t)n, sizeof *count);
    int rank_ok = 1, clip_ok = 1;
    for (long k = 0; k < n; k++) {
        long e = det_data_ranked_entry(d, k);
        DetEntryInfo in;
        if (e < 0 || e >= n || det_data_entry(d, e, &in) != 0) {
            rank_ok = 0;
            continue;
        }
        count[e]++;
        double raw = (double)in.width / in.height;
        double want = raw > 2 ? 2 : raw < 0.5 ? 0.5 : raw;
        clip_ok &= in.ratio == want && in.need_crop == (raw > 2 || raw < 0.5) &&
                   det_data_ranked_ratio(d, k) == want;
        if (k > 0) rank_ok &= det_data_ranked_ratio(d, k - 1) <= det_data_ranked_ratio(d, k);
        /* a flip's twin has the same size */
        DetEntryInfo tw;
        det_data_entry(d, e < n / 2 ? e + n / 2 : e - n / 2, &tw);
        clip_ok &= tw.image == in.image && tw.flipped != in.flipped;
    }
    for (long e = 0; e < n; e++) rank_ok &= count[e] == 1;
    CHECK(rank_ok, "ranked ascending, a permutation of the entries");
    CHECK(clip_ok, "ratios clipped to [0.5, 2], need_crop where clipped, flips paired");

    /* block shuffling: batch 2 divides 2m, so every entry once per epoch */
    const int B = 2;
    const long nb = det_data_batches(d, B);
    CHECK(nb == n / 2, "%ld batches", nb);
    int32_t *order[2] = {malloc((size_t)n * sizeof(int32_t)), malloc((size_t)n * sizeof(int32_t))};
    for (int ep = 0; ep < 2; ep++) {
        memset(count, 0, (size_t)n * sizeof *count);
        for (long b = 0; b < nb; b++) {
            int got = det_data_batch_entries(d, B, 42, ep, b, order[ep] + b * B);
            CHECK(got == B, "batch size %d", got);
            for (int k = 0; k < B; k++) count[order[ep][b * B + k]]++;
        }
        int once = 1;
        for (long e = 0; e < n; e++) once &= count[e] == 1;
        CHECK(once, "epoch %d: every entry exactly once", ep);
    }
    CHECK(memcmp(order[0], order[1], (size_t)n * sizeof(int32_t)) != 0, "epochs 0 and 1 in different orders");
    int32_t again[4];
    det_data_batch_entries(d, B, 42, 1, 3, again);
    CHECK(again[0] == order[1][6] && again[1] == order[1][7], "the same (seed, epoch, b) gives the same batch");
    /* batch 3 (2m = 2 x images: a leftover when 3 does not divide it): the
     * drawn entries are exactly the first floor(n / 3) * 3 ranked */
    const long nb3 = det_data_batches(d, 3);
    memset(count, 0, (size_t)n * sizeof *count);
    for (long b = 0; b < nb3; b++) {
        int32_t e3[3];
        det_data_batch_entries(d, 3, 42, 0, b, e3);
        for (int k = 0; k < 3; k++) count[e3[k]]++;
    }
    int left_ok = 1;
    for (long k = 0; k < n; k++) left_ok &= count[det_data_ranked_entry(d, k)] == (k < nb3 * 3 ? 1 : 0);
    CHECK(left_ok && nb3 == n / 3, "batch 3: %ld blocks, the %ld leftover never drawn", nb3, n % 3);

    /* every batch of an epoch with batch 4: the reference's invariants */
    const int B4 = 4;
    int mh, mw;
    det_data_max_size(d, B4, &mh, &mw);
    DetBatch b1 = {0}, b2 = {0};
    int inv_ok = 1, loads_ok = 1;
    for (long b = 0; b < det_data_batches(d, B4); b++) {
        int32_t e4[4];
        det_data_batch_entries(d, B4, 7, 2, b, e4);
        if (det_batch_load(d, e4, B4, 7, 2, &b1, err, sizeof err) != 0) {
            loads_ok = 0;
            CHECK(0, "load batch %ld: %s", b, err);
            continue;
        }
        inv_ok &= b1.H <= mh && b1.W <= mw && b1.H >= 96 && b1.W >= 96;
        for (int i = 0; i < B4; i++) {
            /* one canvas for the whole block */
            inv_ok &= b1.im_info[3 * i] == b1.H && b1.im_info[3 * i + 1] == b1.W;
            DetEntryInfo in;
            det_data_entry(d, e4[i], &in);
            inv_ok &= b1.im_info[3 * i + 2] == (float)in.scale && b1.entry[i] == e4[i];
            inv_ok &= b1.num_boxes[i] >= 0 && b1.num_boxes[i] <= 20 && rows_zero_from(&b1, i, b1.num_boxes[i]);
            for (int k = 0; k < b1.num_boxes[i]; k++) {
                const float *g = b1.gt + ((size_t)i * 20 + k) * 5;
                inv_ok &= g[0] >= 0 && g[1] >= 0 && g[0] <= g[2] && g[1] <= g[3] && g[2] <= b1.W && g[3] <= b1.H &&
                          (g[0] != g[2]) && (g[1] != g[3]) && g[4] >= 1 && g[4] <= 20;
            }
        }
    }
    CHECK(loads_ok && inv_ok, "every batch: one canvas per block, gt inside it, rows after num_boxes zero");

    /* determinism: twice, and 1 vs 2 threads */
    int32_t e4[4];
    det_data_batch_entries(d, B4, 7, 3, 0, e4);
    omp_set_num_threads(1);
    CHECK(det_batch_load(d, e4, B4, 7, 3, &b1, err, sizeof err) == 0, "load 1 thread: %s", err);
    omp_set_num_threads(2);
    CHECK(det_batch_load(d, e4, B4, 7, 3, &b2, err, sizeof err) == 0, "load 2 threads: %s", err);
    CHECK(same_batch(&b1, &b2), "1 vs 2 threads bitwise");
    CHECK(det_batch_load(d, e4, B4, 7, 3, &b2, err, sizeof err) == 0 && same_batch(&b1, &b2), "twice bitwise");
    det_data_close(d);

    /* too small: shorter side 16 < 32 */
    o.min_size = 16;
    d = det_data_open(s, &o, err, sizeof err);
    CHECK(d == NULL && strstr(err, "JPEGImages/") && strstr(err, "under 32 px"), "too small: %s", err);
    det_data_close(d);

    /* the test loader: set order, no flip, no crop, one image per batch */
    voc_close(s);
    const char *st[] = {"VOC2007/test", NULL};
    s = voc_open(dk, st, 1, err, sizeof err);
    CHECK(s != NULL, "open test split: %s", err);
    if (s) {
        o = det_data_options_default(0);
        o.min_size = 96;
        d = det_data_open(s, &o, err, sizeof err);
        CHECK(d && det_data_entries(d) == s->n && det_data_batches(d, 1) == s->n && det_data_batches(d, 4) ==
                                                                                        (s->n + 3) / 4,
              "test: one entry per image");
        int test_ok = 1;
        for (long k = 0; d && k < s->n; k++) {
            int32_t e;
            test_ok &= det_data_batch_entries(d, 1, 0, 0, k, &e) == 1 && e == k;
            if (det_batch_load(d, &e, 1, 0, 0, &b1, err, sizeof err) != 0) {
                test_ok = 0;
                continue;
            }
            DetEntryInfo in;
            det_data_entry(d, k, &in);
            const VocAnnotation *a = &s->images[k].ann;
            test_ok &= strcmp(in.id, s->images[k].id) == 0 && in.flipped == 0 && in.width == a->width &&
                       b1.H == in.data_height && b1.W == in.data_width && b1.im_info[0] == b1.H &&
                       b1.im_info[1] == b1.W && b1.im_info[2] == (float)in.scale &&
                       fmin(in.data_width, in.data_height) == 96;
            /* dividing by im_scale gives back the file's box minus 1 */
            for (int j = 0; j < b1.num_boxes[0]; j++)
                test_ok &= fabs(b1.gt[5 * j] / b1.im_info[2] - (a->obj[j].xmin - 1)) < 1e-3 &&
                           fabs(b1.gt[5 * j + 3] / b1.im_info[2] - (a->obj[j].ymax - 1)) < 1e-3;
            test_ok &= pixels_ok(s, d, &b1, 0, b1.H, b1.W, 0, 0, 96);
        }
        CHECK(test_ok, "test batches: set order, own size, im_info (h, w, scale), boxes map back");
        /* a missing JPEG: the message names it */
        char path[2048];
        voc_image_path(s, 1, path, sizeof path);
        remove(path);
        int32_t e1 = 1;
        CHECK(d && det_batch_load(d, &e1, 1, 0, 0, &b1, err, sizeof err) != 0 && strstr(err, path),
              "missing JPEG: %s", err);
        det_data_close(d);
        voc_close(s);
    }
    det_batch_free(&b1);
    det_batch_free(&b2);
    free(count), free(order[0]), free(order[1]);
}

int main(void) {
    char tmp[] = "/tmp/test_detect_batch_XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_arithmetic();
    test_hand(tmp);
    test_generated(tmp);
    rm_rf(tmp);
    return tu_finish("detect_batch");
}
