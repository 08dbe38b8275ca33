/* A small ImageNet-style tree of real JPEGs for tests and benchmarks; see
 * synth_imagenet_write in imagenet.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imagenet.h"
#include "dataset.h"
#include "jpeg_io.h"
#include "rng.h"


static int mkdir_p(const char *path, char *err, size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            dataset_errf(err, errlen, "synth_imagenet: cannot create %s: %s", tmp, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
        dataset_errf(err, errlen, "synth_imagenet: cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

void synth_imagenet_colour(int k, int which, uint8_t rgb[3]) {
    /* well separated, mid-range (no clipping of JPEG ringing at 0/255) */
    static const uint8_t pal[8][2][3] = {
        {{200, 40, 40}, {40, 200, 200}},  {{40, 180, 60}, {220, 220, 40}}, {{50, 60, 200}, {230, 150, 30}},
        {{190, 190, 190}, {30, 30, 30}},  {{150, 40, 170}, {60, 200, 120}}, {{120, 80, 30}, {180, 200, 240}},
        {{20, 110, 110}, {240, 120, 160}}, {{90, 90, 20}, {100, 30, 220}},
    };
    const uint8_t *c = pal[k % 8][which ? 1 : 0];
    rgb[0] = c[0];
    rgb[1] = c[1];
    rgb[2] = c[2];
}

/* one image: colour 0 with the block [w/4, w/2) x [h/4, h/2) in colour 1 */
static int write_image(const char *path, int k, int w, int h, int mode, char *err, size_t errlen) {
    uint8_t c0[3], c1[3];
    synth_imagenet_colour(k, 0, c0);
    synth_imagenet_colour(k, 1, c1);
    int comps = mode == 1 ? 1 : mode == 2 ? 4 : 3;
    uint8_t *pix = malloc((size_t)w * h * comps);
    if (!pix) {
        dataset_errf(err, errlen, "synth_imagenet: out of memory");
        return -1;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int in = x >= w / 4 && x < w / 2 && y >= h / 4 && y < h / 2;
            const uint8_t *c = in ? c1 : c0;
            uint8_t *p = pix + ((size_t)y * w + x) * comps;
            if (mode == 1) {
                p[0] = (uint8_t)((299 * c[0] + 587 * c[1] + 114 * c[2] + 500) / 1000);
            } else if (mode == 2) {
                /* inverted CMYK (Photoshop/Adobe): stored = 255 - ink */
                int mx = c[0] > c[1] ? c[0] : c[1];
                if (c[2] > mx) mx = c[2];
                for (int j = 0; j < 3; j++) p[j] = (uint8_t)(mx ? (c[j] * 255 + mx / 2) / mx : 0);
                p[3] = (uint8_t)mx;
            } else {
                memcpy(p, c, 3);
            }
        }
    int rc = jpeg_encode_file(path, pix, w, h, comps, 95, err, errlen);
    free(pix);
    return rc;
}

static void pick_size(Rng *r, int *w, int *h) {
    static const double aspects[] = {4.0 / 3.0, 3.0 / 4.0, 1.0, 16.0 / 9.0, 2.0 / 3.0, 1.5};
    *w = 120 + (int)rng_below(r, 381); /* 120..500 */
    double a = aspects[rng_below(r, sizeof aspects / sizeof aspects[0])];
    *h = (int)(*w / a + 0.5);
    if (*h < 90) *h = 90;
    if (*h > 500) *h = 500;
}

int synth_imagenet_write(const char *dir, int n_classes, int per_class, int per_class_val, uint64_t seed, char *err,
                         size_t errlen) {
    if (n_classes < 1 || n_classes > 1000 || per_class < 1 || per_class_val < 0) {
        dataset_errf(err, errlen, "synth_imagenet: bad counts (%d classes, %d per class, %d val per class)", n_classes,
                per_class, per_class_val);
        return -1;
    }
    char path[4096];
    Rng r = rng_stream(seed, RNG_TEST, 0x1a6e7, 0);
    for (int k = 0; k < n_classes; k++) {
        snprintf(path, sizeof path, "%s/train/n%08d", dir, k + 1);
        if (mkdir_p(path, err, errlen) != 0) return -1;
        for (int i = 0; i < per_class; i++) {
            int w, h;
            pick_size(&r, &w, &h);
            int mode = (i == 1 && k == 0) ? 1 : (i == 1 && k == 1) ? 2 : 0;
            snprintf(path, sizeof path, "%s/train/n%08d/n%08d_%d.JPEG", dir, k + 1, k + 1, i + 1);
            if (write_image(path, k, w, h, mode, err, errlen) != 0) return -1;
        }
    }
    if (per_class_val > 0) {
        snprintf(path, sizeof path, "%s/val", dir);
        if (mkdir_p(path, err, errlen) != 0) return -1;
        snprintf(path, sizeof path, "%s/val/val_labels.txt", dir);
        FILE *f = fopen(path, "w");
        if (!f) {
            dataset_errf(err, errlen, "synth_imagenet: cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        fprintf(f, "# filename wnid (ImageNet-style validation labels)\n");
        int nv = n_classes * per_class_val;
        for (int v = 0; v < nv; v++) {
            int k = v % n_classes, w, h;
            pick_size(&r, &w, &h);
            char name[64];
            snprintf(name, sizeof name, "ILSVRC2012_val_%08d.JPEG", v + 1);
            fprintf(f, "%s n%08d\n", name, k + 1);
            snprintf(path, sizeof path, "%s/val/%s", dir, name);
            if (write_image(path, k, w, h, 0, err, errlen) != 0) {
                fclose(f);
                return -1;
            }
        }
        if (fclose(f) != 0) {
            dataset_errf(err, errlen, "synth_imagenet: write error on %s/val/val_labels.txt", dir);
            return -1;
        }
    }
    return 0;
}
