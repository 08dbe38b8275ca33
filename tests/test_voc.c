/* PASCAL VOC loader (datasets/voc.c) and synthetic generator (synth_voc.c).
 *
 * 1. A generated VOCdevkit: deterministic from the seed; ids per split and
 *    the paper's 07+12 union; every class name, difficult flag and box read
 *    back exactly (against a naive scan of the XML text); difficult objects
 *    dropped when asked; the shapes visible in the pixels under their boxes.
 * 2. A hand-made devkit with known sizes: resize to shorter side 600 (and the
 *    max-size cap) scales boxes to hand-computed values; the flip maps each
 *    box edge x -> W' - x and column u -> W' - 1 - u, so the pixels under a
 *    flipped box are exactly the unflipped ones; normalisation.
 * 3. Bad inputs, one at a time: malformed XML, a box outside the image, an
 *    empty box, an unknown class, a missing JPEG, an empty / missing split
 *    file, each a message naming the file; skip_bad counts them instead. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/jpeg_io.h"
#include "datasets/voc.h"
#include "testutil.h"

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) n = 0;
    if (b) b[n] = '\0';
    fclose(fp);
    if (len) *len = (size_t)n;
    return b;
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL, "cannot write %s", path);
    if (!fp) return;
    fputs(text, fp);
    fclose(fp);
}

static void mkdirs(const char *root, const char *year) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, year);
    mkdir(root, 0777);
    mkdir(p, 0777);
    const char *sub[4] = {"ImageSets", "ImageSets/Main", "Annotations", "JPEGImages"};
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "%s/%s/%s", root, year, sub[k]);
        mkdir(p, 0777);
    }
}

/* count the lines of a split file */
static long count_lines(const char *path) {
    char *b = slurp(path, NULL);
    long n = 0;
    for (char *p = b; p && *p; p++) n += *p == '\n';
    free(b);
    return n;
}

/* Naive scan of an annotation: the objects in file order (name, difficult,
 * xmin, ymin, xmax, ymax as written by the generator). */
typedef struct {
    char name[32];
    int difficult, b[4];
} RawObj;
static int scan_xml(const char *path, RawObj *o, int max, int *w, int *h) {
    char *b = slurp(path, NULL);
    if (!b) return -1;
    int n = 0;
    char *p = strstr(b, "<width>");
    *w = p ? atoi(p + 7) : -1;
    p = strstr(b, "<height>");
    *h = p ? atoi(p + 8) : -1;
    for (p = strstr(b, "<object>"); p && n < max; p = strstr(p + 1, "<object>")) {
        char *q = strstr(p, "<name>") + 6;
        size_t l = (size_t)(strchr(q, '<') - q);
        memcpy(o[n].name, q, l);
        o[n].name[l] = '\0';
        o[n].difficult = atoi(strstr(p, "<difficult>") + 11);
        o[n].b[0] = atoi(strstr(p, "<xmin>") + 6);
        o[n].b[1] = atoi(strstr(p, "<ymin>") + 6);
        o[n].b[2] = atoi(strstr(p, "<xmax>") + 6);
        o[n].b[3] = atoi(strstr(p, "<ymax>") + 6);
        n++;
    }
    free(b);
    return n;
}

/* ---- 1. generated tree ---- */

static void test_generated(const char *tmp) {
    char d1[1024], d2[1024], d3[1024], dk[1100], err[4096];
    snprintf(d1, sizeof d1, "%s/gen1", tmp);
    snprintf(d2, sizeof d2, "%s/gen2", tmp);
    snprintf(d3, sizeof d3, "%s/gen3", tmp);
    CHECK(synth_voc_write(d1, 24, 7, err, sizeof err) == 0, "synth: %s", err);
    CHECK(synth_voc_write(d2, 24, 7, err, sizeof err) == 0, "synth: %s", err);
    CHECK(synth_voc_write(d3, 24, 8, err, sizeof err) == 0, "synth: %s", err);
    CHECK(synth_voc_write(d3, 7, 8, err, sizeof err) != 0 && strstr(err, "at least 8"), "7 images refused: %s", err);

    /* deterministic from the seed, different with another seed */
    const char *files[3] = {"VOC2007/Annotations/000003.xml", "VOC2012/JPEGImages/2008_000005.jpg",
                            "VOC2007/ImageSets/Main/test.txt"};
    int same_other_seed = 0;
    for (int k = 0; k < 3; k++) {
        char p1[1200], p2[1200], p3[1200];
        snprintf(p1, sizeof p1, "%s/VOCdevkit/%s", d1, files[k]);
        snprintf(p2, sizeof p2, "%s/VOCdevkit/%s", d2, files[k]);
        snprintf(p3, sizeof p3, "%s/VOCdevkit/%s", d3, files[k]);
        size_t l1 = 0, l2 = 0, l3 = 0;
        char *a = slurp(p1, &l1), *b = slurp(p2, &l2), *c = slurp(p3, &l3);
        CHECK(a && b && l1 == l2 && memcmp(a, b, l1) == 0, "%s identical for the same seed", files[k]);
        if (k < 2) same_other_seed += c && l1 == l3 && memcmp(a, c, l1) == 0;
        free(a), free(b), free(c);
    }
    CHECK(same_other_seed == 0, "another seed gives other images");

    snprintf(dk, sizeof dk, "%s/VOCdevkit", d1);
    char p[1200];
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/trainval.txt", dk);
    long n07tv = count_lines(p);
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/test.txt", dk);
    long n07te = count_lines(p);
    snprintf(p, sizeof p, "%s/VOC2012/ImageSets/Main/trainval.txt", dk);
    long n12tv = count_lines(p);
    CHECK(n07tv == 6 && n07te == 6 && n12tv == 12, "split sizes %ld %ld %ld (expected 6 6 12)", n07tv, n07te, n12tv);

    /* ids per split, in file order */
    const char *s07[] = {"VOC2007/trainval", NULL};
    VocSet *s = voc_open(dk, s07, 1, err, sizeof err);
    CHECK(s != NULL, "open VOC2007/trainval: %s", err);
    if (s) {
        CHECK(s->n == 6, "VOC2007/trainval: %ld images", s->n);
        /* every other id is test: trainval = 000001, 000003, ... */
        for (long i = 0; i < s->n; i++) {
            char want[24];
            snprintf(want, sizeof want, "%06ld", 2 * i + 1);
            CHECK(strcmp(s->images[i].id, want) == 0, "trainval id %ld = %s, expected %s", i, s->images[i].id, want);
        }
        voc_close(s);
    }

    /* the paper's 07+12 union and the 07 test set */
    VocSet *tr = voc_open_paper_split(dk, VOC_TRAIN, err, sizeof err);
    CHECK(tr != NULL, "open 07+12 trainval: %s", err);
    VocSet *te = voc_open_paper_split(dk, VOC_TEST, err, sizeof err);
    CHECK(te != NULL, "open 07 test: %s", err);
    if (!tr || !te) {
        voc_close(tr), voc_close(te);
        return;
    }
    CHECK(tr->n == n07tv + n12tv, "07+12 trainval: %ld images, expected %ld", tr->n, n07tv + n12tv);
    CHECK(tr->n_roots == 2 && strcmp(tr->roots[0], "VOC2007") == 0 && strcmp(tr->roots[1], "VOC2012") == 0,
          "roots of the union");
    CHECK(strcmp(tr->images[0].id, "000001") == 0 && tr->images[0].root == 0, "union starts with VOC2007");
    CHECK(strcmp(tr->images[n07tv].id, "2008_000001") == 0 && tr->images[n07tv].root == 1,
          "union continues with VOC2012: %s", tr->images[n07tv].id);
    CHECK(te->n == n07te && strcmp(te->images[0].id, "000002") == 0, "07 test: %ld images", te->n);
    CHECK(!tr->keep_difficult && te->keep_difficult, "train drops difficult objects, test keeps them");

    /* every object read back exactly; difficult kept (test) or dropped (train) */
    const char *all[] = {"VOC2007/trainval", "VOC2007/test", "VOC2012/trainval", NULL};
    VocSet *keep = voc_open(dk, all, 1, err, sizeof err);
    VocSet *drop = voc_open(dk, all, 0, err, sizeof err);
    CHECK(keep && drop, "open all: %s", err);
    long total = 0, ndiff = 0, mismatches = 0, nclass[VOC_NUM_CLASSES] = {0};
    for (long i = 0; keep && drop && i < keep->n; i++) {
        char xp[1400];
        voc_annotation_path(keep, i, xp, sizeof xp);
        RawObj raw[16];
        int w = -1, h = -1, n = scan_xml(xp, raw, 16, &w, &h);
        const VocAnnotation *a = &keep->images[i].ann, *b = &drop->images[i].ann;
        CHECK(n >= 1 && n == a->n, "%s: %d objects scanned, %d parsed", xp, n, a->n);
        CHECK(a->width == w && a->height == h && a->depth == 3, "%s: size", xp);
        int nd = 0;
        for (int j = 0; j < n && j < a->n; j++) {
            const VocObject *o = &a->obj[j];
            mismatches += strcmp(VOC_CLASSES[o->label], raw[j].name) != 0 || o->difficult != raw[j].difficult ||
                          o->xmin != (float)raw[j].b[0] || o->ymin != (float)raw[j].b[1] ||
                          o->xmax != (float)raw[j].b[2] || o->ymax != (float)raw[j].b[3];
            if (!raw[j].difficult) {
                const VocObject *q = nd < b->n ? &b->obj[nd] : NULL;
                mismatches += !q || q->label != o->label || q->xmin != o->xmin || q->ymax != o->ymax || q->difficult;
                nd++;
            }
            ndiff += raw[j].difficult;
            nclass[o->label]++;
        }
        CHECK(b->n == nd, "%s: %d objects without difficult, expected %d", xp, b->n, nd);
        total += n;
    }
    CHECK(mismatches == 0, "%ld objects differ from the XML text", mismatches);
    CHECK(keep && keep->n_objects == total && keep->n_difficult == ndiff, "object counts %ld/%ld",
          keep ? keep->n_objects : -1, keep ? keep->n_difficult : -1);
    CHECK(ndiff > 0 && drop && drop->n_objects == total - ndiff && drop->n_difficult == 0,
          "difficult objects: %ld of %ld", ndiff, total);
    int used = 0, only_synth = 1;
    for (int c = 0; c < VOC_NUM_CLASSES; c++) {
        int is_synth = 0;
        for (int k = 0; k < SYNTH_VOC_CLASSES; k++) is_synth |= SYNTH_VOC_CLASS_IDS[k] == c;
        used += nclass[c] > 0;
        if (nclass[c] && !is_synth) only_synth = 0;
        CHECK(!keep || keep->class_count[c] == nclass[c], "class_count[%s]", VOC_CLASSES[c]);
    }
    CHECK(used >= 5 && only_synth, "%d classes used, all among the generator's", used);

    /* the shapes are in the pixels: the centre pixel of each non-difficult
     * car (red rectangle) is red, of each tvmonitor light blue (its screen) */
    VocSample smp = {0};
    int checked = 0, wrong = 0;
    for (long i = 0; drop && i < drop->n; i++) {
        if (voc_get(drop, i, &smp, NULL, NULL) != 0) {
            CHECK(0, "voc_get %ld: %s", i, smp.err);
            continue;
        }
        const size_t plane = (size_t)smp.width * smp.height;
        for (int j = 0; j < smp.n; j++) {
            if (smp.labels[j] != 6 && smp.labels[j] != 19) continue;
            int cx = (int)(0.5 * (smp.boxes[4 * j] + smp.boxes[4 * j + 2]));
            int cy = (int)(0.5 * (smp.boxes[4 * j + 1] + smp.boxes[4 * j + 3]));
            double rgb[3];
            for (int c = 0; c < 3; c++) rgb[c] = 255.0 * smp.image[c * plane + (size_t)cy * smp.width + cx];
            const double want[2][3] = {{210, 30, 30}, {120, 200, 230}};
            const double *wv = want[smp.labels[j] == 19];
            /* later shapes may overlap: accept either the colour or count it */
            wrong += fabs(rgb[0] - wv[0]) > 30 || fabs(rgb[1] - wv[1]) > 30 || fabs(rgb[2] - wv[2]) > 30;
            checked++;
        }
    }
    CHECK(checked >= 3 && wrong <= checked / 4, "shape colours under the boxes: %d of %d wrong", wrong, checked);
    voc_sample_free(&smp);
    voc_close(keep), voc_close(drop), voc_close(tr), voc_close(te);
}

/* ---- 2. hand-made tree: resize, flip, normalise ---- */

static void write_jpeg(const char *dk, const char *id, int W, int H, int solid) {
    uint8_t *px = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = px + ((size_t)y * W + x) * 3;
            if (solid) p[0] = 200, p[1] = 100, p[2] = 50;
            else p[0] = (uint8_t)(x * 5 + y), p[1] = (uint8_t)(y * 3), p[2] = (uint8_t)((x * 7) ^ y);
        }
    char path[1200], err[1024];
    snprintf(path, sizeof path, "%s/VOC2007/JPEGImages/%s.jpg", dk, id);
    CHECK(jpeg_encode_file(path, px, W, H, 3, 95, err, sizeof err) == 0, "encode %s: %s", path, err);
    free(px);
}

static const char *OBJ_FMT = "<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%s</xmin><ymin>%s</ymin>"
                             "<xmax>%s</xmax><ymax>%s</ymax></bndbox></object>\n";

static void write_xml(const char *dk, const char *id, int W, int H, const char *objects) {
    char path[1200], text[8192];
    snprintf(path, sizeof path, "%s/VOC2007/Annotations/%s.xml", dk, id);
    snprintf(text, sizeof text,
             "<annotation>\n<folder>VOC2007</folder><filename>%s.jpg</filename>\n"
             "<size><width>%d</width><height>%d</height><depth>3</depth></size>\n%s</annotation>\n",
             id, W, H, objects);
    write_text(path, text);
}

static void obj(char *dst, size_t cap, const char *name, int diff, const char *x0, const char *y0, const char *x1,
                const char *y1) {
    size_t l = strlen(dst);
    snprintf(dst + l, cap - l, OBJ_FMT, name, diff, x0, y0, x1, y1);
}

static int near(double a, double b) { return fabs(a - b) <= 1e-4 * (1 + fabs(b)); }

static int box_is(const VocSample *s, int j, double x1, double y1, double x2, double y2) {
    const float *b = s->boxes + 4 * j;
    return near(b[0], x1) && near(b[1], y1) && near(b[2], x2) && near(b[3], y2);
}

static void test_transform(const char *tmp) {
    char dk[1024], err[4096], objs[4096];
    snprintf(dk, sizeof dk, "%s/hand/VOCdevkit", tmp);
    char hand[1024];
    snprintf(hand, sizeof hand, "%s/hand", tmp);
    mkdir(hand, 0777);
    mkdirs(dk, "VOC2007");
    char p[1200];
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/hand.txt", dk);
    write_text(p, "a1\n  a2  \n\na3\na4\n"); /* blanks and empty lines tolerated */

    /* a1: 300 x 200, scale 3 -> 900 x 600 */
    objs[0] = '\0';
    obj(objs, sizeof objs, "person", 1, "11", "21", "50", "80");
    obj(objs, sizeof objs, " Car ", 0, "1", "1", "300", "200");
    write_xml(dk, "a1", 300, 200, objs);
    write_jpeg(dk, "a1", 300, 200, 0);
    /* a2: 500 x 375, scale 1.6 -> 800 x 600; a VOC2012-style <part> box is ignored */
    objs[0] = '\0';
    obj(objs, sizeof objs, "dog", 0, "101", "51", "400", "300");
    size_t l = strlen(objs);
    snprintf(objs + l, sizeof objs - l,
             "<object><name>person</name><bndbox><xmin>2.5</xmin><ymin>3</ymin><xmax>20</xmax><ymax>30</ymax>"
             "</bndbox><part><name>head</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>999</xmax><ymax>999</ymax>"
             "</bndbox></part></object>\n");
    write_xml(dk, "a2", 500, 375, objs);
    write_jpeg(dk, "a2", 500, 375, 0);
    /* a3: 300 x 100, shorter side 600 would make it 1800 wide: max_size 1000 -> 1000 x 333 */
    objs[0] = '\0';
    obj(objs, sizeof objs, "tvmonitor", 0, "31", "11", "150", "90");
    write_xml(dk, "a3", 300, 100, objs);
    write_jpeg(dk, "a3", 300, 100, 0);
    /* a4: solid colour, for the normalisation */
    objs[0] = '\0';
    obj(objs, sizeof objs, "bottle", 0, "5", "5", "20", "40");
    write_xml(dk, "a4", 64, 48, objs);
    write_jpeg(dk, "a4", 64, 48, 1);

    const char *sp[] = {"VOC2007/hand", NULL};
    VocSet *s = voc_open(dk, sp, 1, err, sizeof err);
    CHECK(s != NULL, "open hand: %s", err);
    if (!s) return;
    CHECK(s->n == 4 && strcmp(s->images[1].id, "a2") == 0, "hand: %ld images", s->n);
    const VocAnnotation *a1 = &s->images[0].ann, *a2 = &s->images[1].ann;
    CHECK(a1->n == 2 && a1->obj[0].label == 14 && a1->obj[0].difficult == 1 && a1->obj[1].label == 6 &&
              a1->obj[1].difficult == 0,
          "a1: labels / difficult");
    CHECK(a1->obj[0].xmin == 11 && a1->obj[0].ymin == 21 && a1->obj[0].xmax == 50 && a1->obj[0].ymax == 80,
          "a1: raw box");
    CHECK(a2->n == 2 && a2->obj[1].label == 14 && a2->obj[1].difficult == 0 && a2->obj[1].xmin == 2.5f &&
              a2->obj[1].xmax == 20,
          "a2: the person's own box (not its head part), no <difficult> = 0, fractional coordinates kept");

    int w, h;
    VocTransform t600 = {.min_size = 600};
    voc_resize_dims(300, 200, &t600, &w, &h);
    CHECK(w == 900 && h == 600, "300x200 -> %dx%d", w, h);
    voc_resize_dims(375, 500, &t600, &w, &h);
    CHECK(w == 600 && h == 800, "375x500 (portrait) -> %dx%d", w, h);
    voc_resize_dims(333, 500, &t600, &w, &h);
    CHECK(w == 600 && h == 901, "333x500 -> %dx%d (round(500*600/333) = 901)", w, h);
    VocTransform tcap = {.min_size = 600, .max_size = VOC_FRCNN_MAX_SIZE};
    voc_resize_dims(300, 100, &tcap, &w, &h);
    CHECK(w == 1000 && h == 333, "300x100 capped -> %dx%d", w, h);
    voc_resize_dims(500, 375, &tcap, &w, &h);
    CHECK(w == 800 && h == 600, "500x375 under the cap -> %dx%d", w, h);
    VocTransform paper = voc_transform_paper(1);
    CHECK(paper.min_size == 600 && paper.max_size == 0 && paper.flip == VOC_FLIP_RANDOM && paper.normalize,
          "paper transform");
    CHECK(voc_transform_paper(0).flip == VOC_FLIP_NONE, "test transform: no flip");

    VocSample u = {0}, f = {0};
    VocTransform tf = {.min_size = 600, .flip = VOC_FLIP_ALWAYS};
    /* a1 at scale 3 */
    CHECK(voc_get(s, 0, &u, &t600, NULL) == 0, "get a1: %s", u.err);
    CHECK(voc_get(s, 0, &f, &tf, NULL) == 0, "get a1 flipped: %s", f.err);
    CHECK(u.width == 900 && u.height == 600 && u.orig_width == 300 && u.scale_x == 3.0 && u.scale_y == 3.0 &&
              !u.flipped && f.flipped,
          "a1 geometry %dx%d", u.width, u.height);
    CHECK(u.n == 2 && u.labels[0] == 14 && u.labels[1] == 6 && u.difficult[0] == 1 && u.difficult[1] == 0,
          "a1 labels");
    /* (xmin - 1) * 3, (ymin - 1) * 3, xmax * 3, ymax * 3 */
    CHECK(box_is(&u, 0, 30, 60, 150, 240), "a1 person resized: %g %g %g %g", u.boxes[0], u.boxes[1], u.boxes[2],
          u.boxes[3]);
    CHECK(box_is(&u, 1, 0, 0, 900, 600), "a1 car (the whole image) resized");
    /* flip: x' = W' - x, the edges swap: [900 - 150, 900 - 30) */
    CHECK(box_is(&f, 0, 750, 60, 870, 240), "a1 person flipped: %g %g %g %g", f.boxes[0], f.boxes[1], f.boxes[2],
          f.boxes[3]);
    CHECK(box_is(&f, 1, 0, 0, 900, 600), "a1 car flipped");
    /* every pixel: flipped column W'-1-u is unflipped column u, so the pixels
     * under a flipped box are exactly those under the original box */
    long diff = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 600; y++)
            for (int x = 0; x < 900; x++)
                diff += f.image[((size_t)c * 600 + y) * 900 + (899 - x)] != u.image[((size_t)c * 600 + y) * 900 + x];
    CHECK(diff == 0, "%ld flipped pixels differ from their mirror", diff);
    double su = 0, sf = 0;
    for (int y = 60; y < 240; y++)
        for (int x = 0; x < 120; x++) su += u.image[(size_t)y * 900 + 30 + x], sf += f.image[(size_t)y * 900 + 750 + x];
    CHECK(su == sf && su != 0, "sum of R under the person box %g, flipped %g", su, sf);
    /* the image is the resized decode: output pixel (1, 1) of scale 3 sits on
     * source pixel (0, 0)'s centre ((1 + 0.5) / 3 - 0.5 = 0) */
    JpegImage jp;
    char jpath[1400];
    voc_image_path(s, 0, jpath, sizeof jpath);
    CHECK(jpeg_decode_file(jpath, 8, &jp, err, sizeof err) == 0, "decode: %s", err);
    if (jp.rgb) {
        CHECK(fabs(u.image[1 * 900 + 1] - jp.rgb[0] / 255.0) < 1e-6, "pixel (1,1) = source (0,0)");
        CHECK(fabs(u.image[(size_t)2 * 600 * 900 + 4 * 900 + 7] - jp.rgb[(1 * 300 + 2) * 3 + 2] / 255.0) < 1e-6,
              "pixel (7,4) B = source (2,1) B");
        jpeg_image_free(&jp);
    }

    /* a2 at scale 1.6 */
    CHECK(voc_get(s, 1, &u, &t600, NULL) == 0, "get a2: %s", u.err);
    CHECK(u.width == 800 && u.height == 600 && u.n == 2, "a2 %dx%d", u.width, u.height);
    CHECK(box_is(&u, 0, 160, 80, 640, 480), "a2 dog: %g %g %g %g", u.boxes[0], u.boxes[1], u.boxes[2], u.boxes[3]);
    CHECK(box_is(&u, 1, 2.4, 3.2, 32, 48), "a2 person (fractional xmin 2.5)");
    CHECK(voc_get(s, 1, &f, &tf, NULL) == 0 && box_is(&f, 0, 160, 80, 640, 480), "a2 dog flipped: symmetric box");

    /* a3 with the max-size cap: sx = 1000/300, sy = 333/100 */
    CHECK(voc_get(s, 2, &u, &tcap, NULL) == 0, "get a3: %s", u.err);
    CHECK(u.width == 1000 && u.height == 333, "a3 %dx%d", u.width, u.height);
    CHECK(box_is(&u, 0, 100, 10 * 3.33, 500, 90 * 3.33), "a3 capped: %g %g %g %g", u.boxes[0], u.boxes[1],
          u.boxes[2], u.boxes[3]);
    VocTransform tcapf = tcap;
    tcapf.flip = VOC_FLIP_ALWAYS;
    CHECK(voc_get(s, 2, &f, &tcapf, NULL) == 0 && box_is(&f, 0, 500, 33.3, 900, 299.7), "a3 capped, flipped");
    /* no transform: the original pixels, boxes only shifted to 0-based edges */
    CHECK(voc_get(s, 2, &u, NULL, NULL) == 0 && u.width == 300 && u.height == 100 && box_is(&u, 0, 30, 10, 150, 90),
          "a3 untransformed");

    /* normalisation on the solid image (JPEG keeps a flat colour within 2 levels) */
    VocTransform tn = {.normalize = 1};
    CHECK(voc_get(s, 3, &u, &tn, NULL) == 0, "get a4: %s", u.err);
    const double col[3] = {200, 100, 50};
    double maxerr = 0;
    for (int c = 0; c < 3; c++) {
        double want = (col[c] / 255.0 - VOC_MEAN[c]) / VOC_STD[c];
        for (size_t k = 0; k < (size_t)64 * 48; k++) {
            double e = fabs(u.image[c * 64 * 48 + k] - want) * VOC_STD[c] * 255.0;
            if (e > maxerr) maxerr = e;
        }
    }
    CHECK(maxerr <= 2.5, "normalised solid colour off by %g levels", maxerr);

    /* random flip: about half, deterministic per stream */
    VocTransform tr = {.min_size = 0, .flip = VOC_FLIP_RANDOM};
    int flips = 0, same = 1;
    for (int k = 0; k < 64; k++) {
        Rng r1 = rng_stream(5, RNG_AUGMENT, 0, (uint64_t)k), r2 = r1;
        voc_get(s, 3, &u, &tr, &r1);
        voc_get(s, 3, &f, &tr, &r2);
        flips += u.flipped;
        same &= u.flipped == f.flipped;
    }
    CHECK(same && flips > 16 && flips < 48, "random flip: %d of 64", flips);
    CHECK(voc_get(s, 3, &u, &tr, NULL) == 0 && !u.flipped, "random flip without an rng: none");
    CHECK(voc_get(s, 99, &u, NULL, NULL) != 0 && strstr(u.err, "out of range"), "index out of range: %s", u.err);

    /* a JPEG whose size is not the annotated one, and one removed after open */
    write_jpeg(dk, "a4", 48, 64, 1);
    CHECK(voc_get(s, 3, &u, NULL, NULL) != 0 && strstr(u.err, "a4.jpg") && strstr(u.err, "48x64") &&
              strstr(u.err, "64x48"),
          "size mismatch: %s", u.err);
    voc_image_path(s, 3, jpath, sizeof jpath);
    remove(jpath);
    CHECK(voc_get(s, 3, &u, NULL, NULL) != 0 && strstr(u.err, "a4.jpg") && strstr(u.err, "missing"),
          "JPEG gone: %s", u.err);
    snprintf(p, sizeof p, "%s/VOC2007/JPEGImages/a3.jpg", dk);
    write_text(p, "not a jpeg at all");
    CHECK(voc_get(s, 2, &u, NULL, NULL) != 0 && strstr(u.err, "a3.jpg"), "corrupt JPEG: %s", u.err);
    voc_sample_free(&u);
    voc_sample_free(&f);
    voc_close(s);
}

/* ---- 3. bad inputs ---- */

static void test_bad(const char *tmp) {
    char dk[1024], err[4096], objs[4096], p[1200];
    snprintf(p, sizeof p, "%s/bad", tmp);
    mkdir(p, 0777);
    snprintf(dk, sizeof dk, "%s/bad/VOCdevkit", tmp);
    mkdirs(dk, "VOC2007");

    objs[0] = '\0';
    obj(objs, sizeof objs, "cat", 0, "1", "1", "10", "10");
    write_xml(dk, "good", 32, 32, objs);
    write_jpeg(dk, "good", 32, 32, 1);
    /* malformed: the closing tag of bndbox missing */
    snprintf(p, sizeof p, "%s/VOC2007/Annotations/bad_xml.xml", dk);
    write_text(p, "<annotation><size><width>32</width><height>32</height></size>\n<object><name>cat</name>"
                  "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></object></annotation>\n");
    write_jpeg(dk, "bad_xml", 32, 32, 1);
    objs[0] = '\0';
    obj(objs, sizeof objs, "cat", 0, "1", "1", "33", "10"); /* xmax > width */
    write_xml(dk, "bad_box", 32, 32, objs);
    write_jpeg(dk, "bad_box", 32, 32, 1);
    objs[0] = '\0';
    obj(objs, sizeof objs, "cat", 0, "0", "1", "10", "10"); /* xmin 0: VOC is 1-based */
    write_xml(dk, "bad_zero", 32, 32, objs);
    write_jpeg(dk, "bad_zero", 32, 32, 1);
    objs[0] = '\0';
    obj(objs, sizeof objs, "cat", 0, "10", "1", "10", "10"); /* xmin == xmax */
    write_xml(dk, "bad_empty", 32, 32, objs);
    write_jpeg(dk, "bad_empty", 32, 32, 1);
    objs[0] = '\0';
    obj(objs, sizeof objs, "cat", 0, "1", "1", "10", "10");
    obj(objs, sizeof objs, "unicorn", 0, "1", "1", "10", "10");
    write_xml(dk, "bad_class", 32, 32, objs);
    write_jpeg(dk, "bad_class", 32, 32, 1);
    objs[0] = '\0';
    obj(objs, sizeof objs, "cat", 0, "1", "1", "10", "10");
    write_xml(dk, "no_jpeg", 32, 32, objs); /* no JPEG written */

    struct {
        const char *id, *want1, *want2;
        VocErr kind;
    } cases[] = {
        {"bad_xml", "Annotations/bad_xml.xml", "malformed XML", VOC_ERR_XML},
        {"bad_box", "Annotations/bad_box.xml", "outside the image", VOC_ERR_BOX},
        {"bad_zero", "Annotations/bad_zero.xml", "outside the image", VOC_ERR_BOX},
        {"bad_empty", "Annotations/bad_empty.xml", "empty box", VOC_ERR_BOX},
        {"bad_class", "Annotations/bad_class.xml", "unknown class \"unicorn\"", VOC_ERR_CLASS},
        {"no_jpeg", "JPEGImages/no_jpeg.jpg", "missing", VOC_ERR_IMAGE},
        {"no_xml", "Annotations/no_xml.xml", "missing", VOC_ERR_IO},
    };
    const int NC = (int)(sizeof cases / sizeof cases[0]);
    char all[1024] = "good\n";
    for (int k = 0; k < NC; k++) {
        snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/one.txt", dk);
        char text[128];
        snprintf(text, sizeof text, "good\n%s\n", cases[k].id);
        write_text(p, text);
        strcat(all, cases[k].id), strcat(all, "\n");
        const char *sp[] = {"VOC2007/one", NULL};
        err[0] = '\0';
        VocSet *s = voc_open(dk, sp, 1, err, sizeof err);
        CHECK(s == NULL && strstr(err, cases[k].want1) && strstr(err, cases[k].want2), "%s: \"%s\"", cases[k].id,
              err);
        printf("  %-9s -> %s\n", cases[k].id, err);
        voc_close(s);
    }
    /* skip_bad: everything but good left out and counted by kind */
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/all.txt", dk);
    write_text(p, all);
    const char *spa[] = {"VOC2007/all", NULL};
    VocOpenOptions o = {.keep_difficult = 1, .skip_bad = 1, .check_images = 1};
    VocSet *s = voc_open_ex(dk, spa, &o, err, sizeof err);
    CHECK(s != NULL, "skip_bad open: %s", err);
    if (s) {
        CHECK(s->n == 1 && strcmp(s->images[0].id, "good") == 0 && s->n_skipped == NC, "kept %ld, skipped %ld",
              s->n, s->n_skipped);
        long want[VOC_ERR_COUNT] = {0};
        for (int k = 0; k < NC; k++) want[cases[k].kind]++;
        for (int k = 0; k < VOC_ERR_COUNT; k++)
            CHECK(s->skipped_by[k] == want[k], "skipped as %s: %ld, expected %ld", VOC_ERR_NAMES[k], s->skipped_by[k],
                  want[k]);
        CHECK(strstr(s->first_skip, "bad_xml.xml") != NULL, "first skip: %s", s->first_skip);
        printf("  skip_bad: kept %ld, skipped %ld (xml %ld, box %ld, class %ld, image %ld, annotation %ld)\n", s->n,
               s->n_skipped, s->skipped_by[VOC_ERR_XML], s->skipped_by[VOC_ERR_BOX], s->skipped_by[VOC_ERR_CLASS],
               s->skipped_by[VOC_ERR_IMAGE], s->skipped_by[VOC_ERR_IO]);
        voc_close(s);
    }
    /* all bad: nothing left is an error even with skip_bad */
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/allbad.txt", dk);
    write_text(p, "bad_xml\nno_jpeg\n");
    const char *spb[] = {"VOC2007/allbad", NULL};
    s = voc_open_ex(dk, spb, &o, err, sizeof err);
    CHECK(s == NULL && strstr(err, "no usable image"), "all skipped: %s", err);

    /* split files: empty, missing, malformed, bad split names, no devkit */
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/empty.txt", dk);
    write_text(p, "\n  \n");
    const char *spe[] = {"VOC2007/empty", NULL};
    s = voc_open(dk, spe, 1, err, sizeof err);
    CHECK(s == NULL && strstr(err, "ImageSets/Main/empty.txt") && strstr(err, "empty"), "empty split: %s", err);
    printf("  empty     -> %s\n", err);
    const char *spm[] = {"VOC2007/nosuch", NULL};
    s = voc_open(dk, spm, 1, err, sizeof err);
    CHECK(s == NULL && strstr(err, "ImageSets/Main/nosuch.txt") && strstr(err, "not found"), "missing split: %s", err);
    printf("  nosplit   -> %s\n", err);
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/cat_trainval.txt", dk);
    write_text(p, "good  1\n");
    const char *spc[] = {"VOC2007/cat_trainval", NULL};
    s = voc_open(dk, spc, 1, err, sizeof err);
    CHECK(s == NULL && strstr(err, "cat_trainval.txt line 1"), "two-column split: %s", err);
    snprintf(p, sizeof p, "%s/VOC2007/ImageSets/Main/evil.txt", dk);
    write_text(p, "../../../etc/passwd\n");
    const char *spv[] = {"VOC2007/evil", NULL};
    s = voc_open(dk, spv, 1, err, sizeof err);
    CHECK(s == NULL && strstr(err, "evil.txt line 1"), "path in an id: %s", err);
    const char *spn[] = {"trainval", NULL};
    s = voc_open(dk, spn, 1, err, sizeof err);
    CHECK(s == NULL && strstr(err, "<year dir>/<split>"), "split without a year dir: %s", err);
    snprintf(p, sizeof p, "%s/nonexistent", tmp);
    s = voc_open(p, spn, 1, err, sizeof err);
    CHECK(s == NULL && strstr(err, "nonexistent"), "no devkit: %s", err);
    s = voc_open_paper_split(p, VOC_TRAIN, err, sizeof err);
    CHECK(s == NULL && strstr(err, "nonexistent"), "no devkit (paper split): %s", err);
}

/* ---- the parser on memory buffers (the fuzzers' entry point) ---- */

static void test_mem(void) {
    VocAnnotation a;
    VocErr kind;
    char err[2048];
    const char *ok = "<annotation><size><width>10</width><height>10</height></size>"
                     "<object><name>bus</name><bndbox><xmin> 1 </xmin><ymin>2</ymin><xmax>10</xmax><ymax>10</ymax>"
                     "</bndbox></object></annotation>";
    CHECK(voc_parse_annotation_mem(ok, strlen(ok), "x.xml", 0, &a, &kind, err, sizeof err) == 0 && a.n == 1 &&
              a.obj[0].label == 5 && a.obj[0].xmin == 1 && a.depth == 0 && kind == VOC_OK,
          "minimal annotation: %s", err);
    voc_annotation_free(&a);
    /* only len bytes are read: a prefix is malformed */
    CHECK(voc_parse_annotation_mem(ok, strlen(ok) - 5, "x.xml", 0, &a, &kind, err, sizeof err) != 0 &&
              kind == VOC_ERR_XML && a.obj == NULL && a.n == 0,
          "truncated buffer: %s", err);
    CHECK(voc_parse_annotation_mem(ok, 0, "x.xml", 0, &a, &kind, err, sizeof err) != 0 && kind == VOC_ERR_XML,
          "empty buffer");
    CHECK(voc_parse_annotation_mem(NULL, 3, NULL, 0, &a, &kind, err, sizeof err) != 0 && strstr(err, "<memory>"),
          "NULL buffer: %s", err);
    const struct {
        const char *xml, *want;
        VocErr kind;
    } bad[] = {
        {"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e \"bus\">]><annotation><size><width>10</width><height>10"
         "</height></size><object><name>&e;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
         "</bndbox></object></annotation>",
         "DOCTYPE", VOC_ERR_XML},
        {"<annotation><size><width>10</width></size></annotation>", "<height>", VOC_ERR_XML},
        {"<annotation><size><width>0</width><height>10</height></size></annotation>", "<width>", VOC_ERR_XML},
        {"<notvoc/>", "<annotation>", VOC_ERR_XML},
        {"<annotation><size><width>10</width><height>10</height></size><object><name>bus</name><bndbox><xmin>1e999"
         "</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
         "<xmin>", VOC_ERR_XML},
        {"<annotation><size><width>10</width><height>10</height></size><object><name>bus</name><difficult>2"
         "</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
         "<difficult>", VOC_ERR_XML},
        {"<annotation><size><width>10</width><height>10</height></size><object><name>bus</name></object>"
         "</annotation>",
         "<bndbox>", VOC_ERR_XML},
        {"<annotation><size><width>10</width><height>10</height></size><object><name>bus</name><bndbox><xmin>1"
         "</xmin><ymin>5</ymin><xmax>2</xmax><ymax>4</ymax></bndbox></object></annotation>",
         "empty box", VOC_ERR_BOX},
        {"<annotation><size><width>10</width><height>10</height></size><object><name>bus\x01</name></object>"
         "</annotation>",
         "malformed", VOC_ERR_XML},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = voc_parse_annotation_mem(bad[k].xml, strlen(bad[k].xml), "m.xml", 1, &a, &kind, err, sizeof err);
        CHECK(rc != 0 && kind == bad[k].kind && strstr(err, "m.xml") && strstr(err, bad[k].want),
              "bad xml %zu: kind %d, \"%s\"", k, (int)kind, err);
        CHECK(a.obj == NULL && a.n == 0, "bad xml %zu leaves an empty annotation", k);
    }
    CHECK(voc_class_index("TVMonitor") == 19 && voc_class_index(" aeroplane\n") == 0 &&
              voc_class_index("tv monitor") == -1 && voc_class_index(NULL) == -1,
          "class names");
    CHECK(strcmp(VOC_CLASSES[0], "aeroplane") == 0 && strcmp(VOC_CLASSES[14], "person") == 0 &&
              strcmp(VOC_CLASSES[19], "tvmonitor") == 0,
          "class order");
}

int main(void) {
    char tmp[] = "/tmp/test_voc_XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_mem();
    test_generated(tmp);
    test_transform(tmp);
    test_bad(tmp);
    rm_rf(tmp);
    return tu_finish("voc");
}
