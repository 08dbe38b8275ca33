/* ImageNet loader throughput: JPEG decode + RandomResizedCrop(224) (+ flip,
 * Lighting, normalise) through dataset_batch, in images per second.
 *
 *   build/bench/loader_throughput [--images N] [--passes P] [--threads T] [--size S]
 *
 * Writes N 500x375 JPEGs (quality 90, textured content so the files are
 * ImageNet-like in size, ~50-100 KB) to a temporary tree, then times P passes
 * of dataset_batch over them in batches of 16: train (RandomResizedCrop scale
 * (0.08, 1.25)) and eval (Resize 256 + CenterCrop 224). Defaults: 128 images,
 * 3 passes, 2 threads, S = 224. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "datasets/imagenet.h"
#include "datasets/jpeg_io.h"


static double run(const Dataset *ds, const Augment *aug, int train, int passes) {
    const int B = 16;
    real *out = malloc(sizeof(real) * B * 3 * ds->height * ds->width);
    int32_t idx[16], lab[16];
    long done = 0;
    double t0 = bench_now();
    for (int p = 0; p < passes; p++)
        for (long s = 0; s + B <= ds->n; s += B) {
            for (int b = 0; b < B; b++) idx[b] = (int32_t)(s + b);
            char err[512];
            if (dataset_batch(ds, idx, B, out, lab, aug, train, 1, p, err, sizeof err)) {
                fprintf(stderr, "loader_throughput: %s\n", err); /* a program, not the library: stop here */
                exit(1);
            }
            done += B;
        }
    double dt = bench_now() - t0;
    free(out);
    return done / dt;
}

int main(int argc, char **argv) {
    int n = 128, passes = 3, threads = 2, S = 224;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--images")) n = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--passes")) passes = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--threads")) threads = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--size")) S = atoi(argv[a + 1]);
    }
    if (n < 16) n = 16;
    char dir[256], path[512], err[1024];
    snprintf(dir, sizeof dir, "/tmp/loader_throughput.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/train", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/train/n00000001", dir);
    mkdir(path, 0777);
    const int W = 500, H = 375;
    uint8_t *pix = malloc((size_t)W * H * 3);
    size_t bytes = 0;
    Rng r = rng_stream(1, RNG_TEST, 0, 0);
    for (int i = 0; i < n; i++) {
        double f1 = 0.02 + 0.1 * rng_uniform(&r), f2 = 0.02 + 0.1 * rng_uniform(&r), ph = 6.28 * rng_uniform(&r);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *p = pix + ((size_t)y * W + x) * 3;
                double v = sin(x * f1 + ph) * cos(y * f2) + 0.5 * sin((x + y) * f1 * 0.37);
                int noise = (int)(rng_u64(&r) >> 59) - 16; /* texture: +-16 */
                for (int c = 0; c < 3; c++) {
                    int q = (int)(128 + 70 * v * (c == 0 ? 1.0 : c == 1 ? 0.7 : -0.5) + noise);
                    p[c] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
                }
            }
        snprintf(path, sizeof path, "%s/train/n00000001/img_%05d.JPEG", dir, i);
        if (jpeg_encode_file(path, pix, W, H, 3, 90, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        struct stat st;
        if (stat(path, &st) == 0) bytes += (size_t)st.st_size;
    }
    free(pix);
    omp_set_num_threads(threads);
    Dataset ds;
    if (imagenet_load(&ds, NULL, dir, S, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    Augment train = {.rrc = 1, .rrc_scale_min = 0.08, .rrc_scale_max = 1.25, .rrc_ratio_min = 0.75,
                     .rrc_ratio_max = 4.0 / 3.0, .flip = 1, .lighting = 1, .normalize = 1};
    Augment eval = {.eval_resize = S * 256 / 224, .normalize = 1};
    run(&ds, &train, 1, 1); /* warm the page cache */
    double tr = run(&ds, &train, 1, passes);
    double ev = run(&ds, &eval, 0, passes);
    printf("loader_throughput: %d JPEGs %dx%d (mean %.0f KB), %d threads, %d passes, output %d\n", n, W, H,
           bytes / 1024.0 / n, threads, passes, S);
    printf("  train (decode + RandomResizedCrop + flip + Lighting + normalize): %.1f img/s (%.2f ms/img/thread)\n", tr,
           1000.0 * threads / tr);
    printf("  eval  (decode + Resize %d + CenterCrop %d + normalize):           %.1f img/s\n", eval.eval_resize, S, ev);
    dataset_free(&ds);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
