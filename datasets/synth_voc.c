/* A synthetic VOCdevkit in the real on-disk format (see voc.h): shapes a
 * detector can learn, boxes known exactly, deterministic from the seed. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "jpeg_io.h"
#include "dataset.h"
#include "rng.h"
#include "voc.h"

/* car, person, dog, bird, bottle, tvmonitor */
const int SYNTH_VOC_CLASS_IDS[SYNTH_VOC_CLASSES] = {6, 14, 11, 2, 4, 19};
enum { SH_RECT, SH_ELLIPSE, SH_TRIANGLE, SH_DIAMOND, SH_PLUS, SH_MONITOR };
static const uint8_t COLOUR[SYNTH_VOC_CLASSES][3] = {
    {210, 30, 30}, {40, 60, 200}, {30, 170, 40}, {230, 210, 40}, {200, 40, 190}, {50, 50, 50}};
static const uint8_t SCREEN[3] = {120, 200, 230};

/* rng stream id of the generator ("VOC") */
#define RNG_SYNTH_VOC 0x564F43u


static int mkdir_p(const char *path, char *err, size_t errlen) {
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) goto fail;
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) goto fail;
    return 0;
fail:
    dataset_errf(err, errlen, "make_voc: cannot create directory %s: %s", tmp, strerror(errno));
    return -1;
}

static int irange(Rng *r, int lo, int hi) { return lo + (int)rng_below(r, (uint64_t)(hi - lo + 1)); }

/* is pixel (x, y) of the box [x0, x1] x [y0, y1] (inclusive) inside the shape? */
static int inside(int shape, int x, int y, int x0, int y0, int x1, int y1, int *screen) {
    double cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1);
    double rx = 0.5 * (x1 - x0) + 0.5, ry = 0.5 * (y1 - y0) + 0.5;
    double dx = fabs(x - cx), dy = fabs(y - cy);
    *screen = 0;
    switch (shape) {
    case SH_RECT: return 1;
    case SH_ELLIPSE: return (dx / rx) * (dx / rx) + (dy / ry) * (dy / ry) <= 1.0;
    case SH_TRIANGLE: return dx <= rx * (double)(y - y0 + 1) / (double)(y1 - y0 + 1);
    case SH_DIAMOND: return dx / rx + dy / ry <= 1.0;
    case SH_PLUS: return dx <= rx / 3.0 || dy <= ry / 3.0;
    case SH_MONITOR: {
        int bx = (x1 - x0 + 1) / 7 + 1, by = (y1 - y0 + 1) / 7 + 1;
        *screen = x >= x0 + bx && x <= x1 - bx && y >= y0 + by && y <= y1 - by;
        return 1;
    }
    }
    return 0;
}

typedef struct {
    int cls, difficult;
    int xmin, ymin, xmax, ymax; /* 1-based inclusive, of the pixels drawn */
} SynObj;

/* draw one image; returns the number of objects */
static int draw_image(Rng *r, uint8_t *px, int W, int H, SynObj *objs) {
    /* background: a gradient between two dull colours plus noise */
    uint8_t c0[3], c1[3];
    for (int c = 0; c < 3; c++) c0[c] = (uint8_t)irange(r, 60, 190), c1[c] = (uint8_t)irange(r, 60, 190);
    int vertical = (int)rng_below(r, 2);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double t = vertical ? (double)y / (H - 1) : (double)x / (W - 1);
            for (int c = 0; c < 3; c++) {
                int v = (int)lround(c0[c] + t * (c1[c] - c0[c])) + irange(r, -10, 10);
                px[((size_t)y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    int want = irange(r, 1, 4), n = 0;
    int smin = (W < H ? W : H) / 8;
    if (smin < 16) smin = 16;
    for (int k = 0; k < want; k++) {
        int k_cls = (int)rng_below(r, SYNTH_VOC_CLASSES);
        int difficult = rng_uniform(r) < 0.15;
        int x0 = 0, y0 = 0, x1 = 0, y1 = 0, ok = 0;
        for (int attempt = 0; attempt < 20 && !ok; attempt++) {
            int bw = irange(r, smin, (int)(W * 0.6)), bh = irange(r, smin, (int)(H * 0.6));
            if (k_cls == 4 && bh < bw) { int t = bw; bw = bh; bh = t; } /* bottles stand upright */
            if (bw > W - 2) bw = W - 2;
            if (bh > H - 2) bh = H - 2;
            x0 = irange(r, 0, W - bw), y0 = irange(r, 0, H - bh);
            x1 = x0 + bw - 1, y1 = y0 + bh - 1;
            ok = 1;
            for (int j = 0; j < n && ok; j++) { /* at most 20% IoU with an earlier object */
                int ix = (x1 < objs[j].xmax - 1 ? x1 : objs[j].xmax - 1) - (x0 > objs[j].xmin - 1 ? x0 : objs[j].xmin - 1) + 1;
                int iy = (y1 < objs[j].ymax - 1 ? y1 : objs[j].ymax - 1) - (y0 > objs[j].ymin - 1 ? y0 : objs[j].ymin - 1) + 1;
                if (ix <= 0 || iy <= 0) continue;
                double inter = (double)ix * iy;
                double a = (double)bw * bh, b = (double)(objs[j].xmax - objs[j].xmin + 1) * (objs[j].ymax - objs[j].ymin + 1);
                if (inter / (a + b - inter) > 0.2) ok = 0;
            }
        }
        if (!ok) continue;
        int mnx = W, mny = H, mxx = -1, mxy = -1;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                int scr;
                if (!inside(k_cls, x, y, x0, y0, x1, y1, &scr)) continue;
                const uint8_t *col = scr ? SCREEN : COLOUR[k_cls];
                uint8_t *p = px + ((size_t)y * W + x) * 3;
                for (int c = 0; c < 3; c++) {
                    double v = difficult ? 0.35 * col[c] + 0.65 * p[c] : col[c];
                    p[c] = (uint8_t)lround(v);
                }
                if (x < mnx) mnx = x;
                if (x > mxx) mxx = x;
                if (y < mny) mny = y;
                if (y > mxy) mxy = y;
            }
        if (mxx <= mnx || mxy <= mny) continue;
        objs[n++] = (SynObj){SYNTH_VOC_CLASS_IDS[k_cls], difficult, mnx + 1, mny + 1, mxx + 1, mxy + 1};
    }
    return n;
}

static int write_xml(const char *path, const char *year, const char *id, int W, int H, const SynObj *o, int n,
                     char *err, size_t errlen) {
    FILE *fp = fopen(path, "w");
    if (!fp) {
        dataset_errf(err, errlen, "make_voc: cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(fp, "<annotation>\n\t<folder>%s</folder>\n\t<filename>%s.jpg</filename>\n", year, id);
    fprintf(fp, "\t<source>\n\t\t<database>CycleBNN synthetic VOC</database>\n\t</source>\n");
    fprintf(fp, "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n\t\t<depth>3</depth>\n\t</size>\n", W, H);
    fprintf(fp, "\t<segmented>0</segmented>\n");
    for (int j = 0; j < n; j++)
        fprintf(fp,
                "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
                "\t\t<difficult>%d</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>%d</xmin>\n\t\t\t<ymin>%d</ymin>\n"
                "\t\t\t<xmax>%d</xmax>\n\t\t\t<ymax>%d</ymax>\n\t\t</bndbox>\n\t</object>\n",
                VOC_CLASSES[o[j].cls], o[j].difficult, o[j].xmin, o[j].ymin, o[j].xmax, o[j].ymax);
    fprintf(fp, "</annotation>\n");
    if (fclose(fp) != 0) {
        dataset_errf(err, errlen, "make_voc: cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int synth_voc_write(const char *dir, long images, uint64_t seed, char *err, size_t errlen) {
    if (images < 8) {
        dataset_errf(err, errlen, "make_voc: need at least 8 images (got %ld)", images);
        return -1;
    }
    static const char *const YEARS[2] = {"VOC2007", "VOC2012"};
    static const char *const SPLITS[4] = {"train", "val", "trainval", "test"};
    const long per_year[2] = {images / 2, images - images / 2};
    char path[2048];
    uint8_t *px = malloc((size_t)500 * 500 * 3);
    if (!px) {
        dataset_errf(err, errlen, "make_voc: out of memory");
        return -1;
    }
    int rc = 0;
    for (int y = 0; y < 2 && rc == 0; y++) {
        const char *sub[3] = {"ImageSets/Main", "Annotations", "JPEGImages"};
        for (int k = 0; k < 3 && rc == 0; k++) {
            snprintf(path, sizeof path, "%s/VOCdevkit/%s/%s", dir, YEARS[y], sub[k]);
            rc = mkdir_p(path, err, errlen);
        }
        if (rc) break;
        FILE *sf[4] = {NULL, NULL, NULL, NULL};
        int nsplit = y == 0 ? 4 : 3;
        for (int k = 0; k < nsplit; k++) {
            snprintf(path, sizeof path, "%s/VOCdevkit/%s/ImageSets/Main/%s.txt", dir, YEARS[y], SPLITS[k]);
            sf[k] = fopen(path, "w");
            if (!sf[k]) {
                dataset_errf(err, errlen, "make_voc: cannot write %s: %s", path, strerror(errno));
                rc = -1;
            }
        }
        long n_trainval = 0;
        for (long i = 0; i < per_year[y] && rc == 0; i++) {
            char id[48];
            if (y == 0) snprintf(id, sizeof id, "%06ld", i + 1);
            else snprintf(id, sizeof id, "2008_%06ld", i + 1);
            Rng r = rng_stream(seed, RNG_SYNTH_VOC, (uint64_t)y, (uint64_t)i);
            int landscape = rng_uniform(&r) < 0.7;
            int lo = irange(&r, 300, 500), sh = irange(&r, 160, lo);
            int W = landscape ? lo : sh, H = landscape ? sh : lo;
            SynObj objs[4];
            int n = draw_image(&r, px, W, H, objs);
            snprintf(path, sizeof path, "%s/VOCdevkit/%s/JPEGImages/%s.jpg", dir, YEARS[y], id);
            if (jpeg_encode_file(path, px, W, H, 3, 92, err, errlen) != 0) {
                rc = -1;
                break;
            }
            snprintf(path, sizeof path, "%s/VOCdevkit/%s/Annotations/%s.xml", dir, YEARS[y], id);
            if (write_xml(path, YEARS[y], id, W, H, objs, n, err, errlen) != 0) {
                rc = -1;
                break;
            }
            /* VOC2007: every other id is a test image; trainval alternates train / val */
            if (y == 0 && i % 2 == 1) {
                fprintf(sf[3], "%s\n", id);
            } else {
                fprintf(sf[n_trainval % 2], "%s\n", id);
                fprintf(sf[2], "%s\n", id);
                n_trainval++;
            }
        }
        for (int k = 0; k < nsplit; k++)
            if (sf[k] && fclose(sf[k]) != 0 && rc == 0) {
                dataset_errf(err, errlen, "make_voc: cannot write the split files of %s/VOCdevkit/%s", dir, YEARS[y]);
                rc = -1;
            }
    }
    free(px);
    return rc;
}
