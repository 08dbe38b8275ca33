/* build/make_imagenet DIR [--classes K] [--per-class N] [--val-per-class V] [--seed S]
 * writes a small ImageNet-style tree of real JPEGs (synth_imagenet_write):
 * DIR/train/n0000000k/<name>.JPEG and a flat DIR/val/ with val_labels.txt.
 * Defaults: 4 classes, 6 train and 2 val images per class, seed 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagenet.h"

static void usage(void) {
    fprintf(stderr, "usage: make_imagenet DIR [--classes K] [--per-class N] [--val-per-class V] [--seed S]\n");
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    long classes = 4, per = 6, val = 2;
    unsigned long long seed = 1;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a];
        long *target = !strcmp(o, "--classes") ? &classes : !strcmp(o, "--per-class") ? &per
                     : !strcmp(o, "--val-per-class") ? &val : NULL;
        if (target || !strcmp(o, "--seed")) {
            if (a + 1 >= argc) {
                usage();
                return 2;
            }
            char *end;
            const char *v = argv[++a];
            if (target) *target = strtol(v, &end, 10);
            else seed = strtoull(v, &end, 10);
            if (*end || end == v) {
                fprintf(stderr, "make_imagenet: %s needs an integer, got '%s'\n", o, v);
                return 2;
            }
        } else if (o[0] == '-') {
            usage();
            return 2;
        } else if (!dir) {
            dir = o;
        } else {
            usage();
            return 2;
        }
    }
    if (!dir) {
        usage();
        return 2;
    }
    char err[1024];
    if (synth_imagenet_write(dir, (int)classes, (int)per, (int)val, seed, err, sizeof err) != 0) {
        fprintf(stderr, "make_imagenet: %s\n", err);
        return 1;
    }
    printf("make_imagenet: %ld classes x %ld train + %ld val images in %s (seed %llu)\n", classes, per, val, dir, seed);
    return 0;
}
