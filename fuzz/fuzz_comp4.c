/* libFuzzer target: the comp4 detection-file reader (tasks/comp4.c,
 * comp4_read).
 *
 * Input: the text of one class file, written as
 * <tmp>/VOC2007/Main/comp4_det_test_car.txt; the other 19 class files exist
 * and are empty (created once: comp4_read needs every requested file). Each
 * input is read twice: class "car" alone with the boxes made 0-based, and
 * all 20 classes with the boxes kept 1-based. Contract checked:
 *  - both reads agree (the other files add nothing): same result, same error;
 *  - a refusal names the car file and a line that exists ("PATH:LINE: ..."),
 *    and leaves the output empty;
 *  - an acceptance gives one detection per line, in order, of class car,
 *    whose image is the index of the line's first field in the id list, with
 *    a finite score and box; the 0-based box is the 1-based one minus 1.
 * FZ_VERBOSE=1 in the environment prints each input's outcome. */
#include <math.h>
#include <sys/stat.h>

#include "comp4.h"
#include "fuzz_common.h"
#include "voc.h"

#define CAR 6 /* VOC_CLASSES[6] */

static const char *const ids[] = {"000005", "000007", "000009", "2008_000001", "a"};
#define N_IDS ((long)(sizeof ids / sizeof ids[0]))

static char main_dir[1024], car_path[1200];

static void comp4_cleanup(void) {
    char p[1200];
    for (int c = 0; c < VOC_NUM_CLASSES; c++) {
        snprintf(p, sizeof p, "%s/comp4_det_test_%s.txt", main_dir, VOC_CLASSES[c]);
        unlink(p);
    }
    rmdir(main_dir);
    snprintf(p, sizeof p, "%s/VOC2007", fz_tmpdir());
    rmdir(p);
}

/* the directory and the 19 empty files, once per process; registered after
 * fz_tmpdir's own cleanup, so it runs before it (atexit is last in, first out) */
static void setup(void) {
    if (main_dir[0]) return;
    char p[1024];
    snprintf(p, sizeof p, "%s/VOC2007", fz_tmpdir());
    snprintf(main_dir, sizeof main_dir, "%s/Main", p);
    if (mkdir(p, 0777) || mkdir(main_dir, 0777)) {
        perror(main_dir);
        abort();
    }
    atexit(comp4_cleanup);
    for (int c = 0; c < VOC_NUM_CLASSES; c++) {
        snprintf(p, sizeof p, "VOC2007/Main/comp4_det_test_%s.txt", VOC_CLASSES[c]);
        fz_write(p, NULL, 0);
    }
    snprintf(car_path, sizeof car_path, "%s/comp4_det_test_car.txt", main_dir);
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f'; }

/* the lines of the input as getline sees them: each '\n' ends one, and a
 * non-empty tail without one is a last line */
static long count_lines(const uint8_t *p, size_t n) {
    long k = 0;
    for (size_t i = 0; i < n; i++) k += p[i] == '\n';
    return k + (n && p[n - 1] != '\n');
}

/* the first field of the line at *pos (the reader's tokenizer stops at a NUL
 * as at a blank), and *pos moved to the next line */
static void first_field(const uint8_t *p, size_t n, size_t *pos, const char **tok, size_t *len) {
    size_t i = *pos, end = i;
    while (end < n && p[end] != '\n') end++;
    while (i < end && is_blank((char)p[i])) i++;
    size_t j = i;
    while (j < end && p[j] && !is_blank((char)p[j])) j++;
    *tok = (const char *)p + i, *len = j - i;
    *pos = end + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    fz_write("VOC2007/Main/comp4_det_test_car.txt", data, size);
    const int car = CAR;
    VocDet *a = NULL, *b = NULL;
    long na = -1, nb = -1;
    char ea[1024] = "", eb[1024] = "";
    const char *root = fz_tmpdir();
    int ra = comp4_read(root, "2007", "test", ids, N_IDS, &car, 1, 0, &a, &na, ea, sizeof ea);
    int rb = comp4_read(root, "2007", "test", ids, N_IDS, NULL, 0, 1, &b, &nb, eb, sizeof eb);
    FZ_CHECK(ra == rb && (ra == 0 || ra == -1));
    long lines = count_lines(data, size);
    if (getenv("FZ_VERBOSE")) fprintf(stderr, "rc %d, %ld detections: %s\n", ra, na, ra ? ea : "ok");
    if (ra) {
        FZ_CHECK(a == NULL && na == 0 && b == NULL && nb == 0);
        FZ_CHECK(strcmp(ea, eb) == 0);
        size_t lp = strlen(car_path);
        FZ_CHECK(strncmp(ea, car_path, lp) == 0 && ea[lp] == ':');
        char *end;
        long line = strtol(ea + lp + 1, &end, 10);
        FZ_CHECK(end != ea + lp + 1 && *end == ':' && line >= 1 && line <= lines);
        return 0;
    }
    FZ_CHECK(na == lines && nb == lines && (lines == 0 || (a && b)));
    size_t pos = 0;
    for (long i = 0; i < na; i++) {
        const VocDet *d = &a[i], *e = &b[i];
        FZ_CHECK(d->label == CAR && e->label == CAR);
        FZ_CHECK(d->image >= 0 && d->image < N_IDS && e->image == d->image);
        const char *tok;
        size_t len;
        first_field(data, size, &pos, &tok, &len);
        FZ_CHECK(strlen(ids[d->image]) == len && memcmp(ids[d->image], tok, len) == 0);
        FZ_CHECK(isfinite(d->score) && e->score == d->score);
        for (int k = 0; k < 4; k++) FZ_CHECK(isfinite(e->box[k]) && isfinite(d->box[k]) && d->box[k] == e->box[k] - 1.0);
    }
    free(a);
    free(b);
    return 0;
}
