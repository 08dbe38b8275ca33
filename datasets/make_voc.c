/* build/make_voc DIR [--images N] [--seed S]: a synthetic VOCdevkit in
 * DIR/VOCdevkit (datasets/synth_voc.c; open it with voc_open(DIR "/VOCdevkit", ...)). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voc.h"

static int usage(void) {
    fprintf(stderr, "usage: make_voc DIR [--images N] [--seed S]\n"
                    "  writes DIR/VOCdevkit/VOC2007 (train/val/trainval/test) and VOC2012 (train/val/trainval):\n"
                    "  N images in all (default 200, at least 8), deterministic from the seed (default 1)\n");
    return 2;
}

static int parse_num(const char *s, unsigned long long *v) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return -1;
    *v = strtoull(s, &end, 10);
    return *end || errno ? -1 : 0;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    unsigned long long images = 200, seed = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--images") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], &images) != 0 || images > 10000000ULL) return usage();
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], &seed) != 0) return usage();
        } else if (argv[i][0] == '-' || dir) {
            return usage();
        } else {
            dir = argv[i];
        }
    }
    if (!dir) return usage();
    char err[1024];
    if (synth_voc_write(dir, (long)images, seed, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("make_voc: %llu images (seed %llu) in %s/VOCdevkit\n", images, seed, dir);
    return 0;
}
