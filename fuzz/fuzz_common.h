/* Shared by the file-based fuzz targets: one private temporary directory per
 * fuzzing process (removed at exit), files written into it per input. */
#ifndef CBNN_FUZZ_COMMON_H
#define CBNN_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a contract check that stays on in release builds (NDEBUG): abort() is
 * what libFuzzer reports as a crash, with the input saved */
#define FZ_CHECK(cond)                                                                  \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: contract violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static char fz_dir[512];

static inline void fz_cleanup(void) {
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "batches.meta.txt",
                                        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    char p[1024];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir, names[i]);
        unlink(p);
    }
    rmdir(fz_dir);
}

static inline const char *fz_tmpdir(void) {
    if (!fz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir, sizeof fz_dir, "%s/cbnn-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fz_cleanup);
    }
    return fz_dir;
}

/* write len bytes to dir/name (abort on an I/O error: that is the harness, not the parser) */
static inline void fz_write(const char *name, const uint8_t *p, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(p, 1, len, f) != len) || fclose(f)) {
        perror(path);
        abort();
    }
}

#endif
