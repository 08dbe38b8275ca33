/* HDF5 results files (schema: experiments/results_h5.h, results/README.md).
 *
 * Crash safety comes from the file system, not from HDF5: a session writes
 * only to the working copy PATH.tmp. results_commit() publishes it (H5Fflush,
 * copy to PATH.commit, fsync, rename over PATH) and results_close(commit = 1)
 * renames the working copy itself. rename() is atomic, so a reader sees
 * either the previous complete file or the new complete one, never a
 * half-written HDF5 file (which HDF5 itself may be unable to open at all).
 * One session at a time: PATH.lock is flock'ed before PATH.tmp is touched.
 *
 * Errors: HDF5's own stack printing is switched off; every failing call is
 * turned into one message (ours + the innermost HDF5 description, which for
 * I/O failures carries errno, e.g. "No space left on device"). The first error
 * is sticky: a file that missed a write is never committed. */
#include "results_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build_info.h"
#include "build_rev.h"
#include "h5_attr.h"
#include "real.h"

void (*results_fault_hook)(const char *where) = NULL;

/* records buffered per run before a write; also the chunk size, so that a
 * flush of a full buffer touches exactly one chunk per column */
#define RH5_BUF 1024

enum { TR_STEP, TR_LOSS, TR_LR, TR_TIME, TR_BITS, TR_GBITS, TR_CR, TR_TOP1, TR_NCOL };
/* the evaluation tables: val/ has the first EV_NCOL_VAL columns, test/ all */
enum { EV_STEP, EV_TOP1, EV_LOSS, EV_BITS, EV_ROLE, EV_FIXED, EV_NCOL };
enum { EV_NCOL_VAL = EV_BITS + 1 };
enum { EV_VAL, EV_TEST, N_EVTAB };
static const char *const EV_TABLE[N_EVTAB] = {"val", "test"};
static const struct { const char *name, *units; int is_int; } EVAL_COLS[EV_NCOL] = {
    [EV_STEP] = {"step", "optimizer steps", 1},
    [EV_TOP1] = {"top1", "percent", 0},
    [EV_LOSS] = {"loss", "nats (mean cross-entropy)", 0},
    [EV_BITS] = {"bits", "bits (weights and activations) the evaluation ran at; 32 = full precision", 0},
    [EV_ROLE] = {"role", "0 periodic (val_split 0), 1 selected checkpoint, 2 final weights", 1},
    [EV_FIXED] = {"fixed", "0 at precision.eval, 1 at the fixed eval_bits_fixed", 1},
};
static const int EV_TABLE_NCOL[N_EVTAB] = {EV_NCOL_VAL, EV_NCOL};

/* one evaluation table of an open run: its columns and the rows buffered */
typedef struct {
    hid_t ds[EV_NCOL];
    hsize_t len;                 /* rows already in the file */
    int n;                       /* rows buffered */
    int64_t step[RH5_BUF], role[RH5_BUF], fixed[RH5_BUF];
    double top1[RH5_BUF], loss[RH5_BUF], bits[RH5_BUF];
} EvalTable;

struct RunLog {
    ResultsFile *f;
    RunLog *next;       /* the file's list of open runs */
    char *name;
    hid_t group;
    hid_t train[TR_NCOL];
    EvalTable ev[N_EVTAB];       /* val/, test/ */
    hsize_t train_len;           /* rows already in the file */
    int train_n;                 /* rows buffered */
    int64_t train_step[RH5_BUF];
    double train_loss[RH5_BUF], train_lr[RH5_BUF], train_time[RH5_BUF];
    double train_bits[RH5_BUF], train_gbits[RH5_BUF], train_cr[RH5_BUF], train_top1[RH5_BUF];
};

struct ResultsFile {
    hid_t file, runs;
    char *path, *tmp, *commit;  /* PATH, its working copy, the copy being published */
    char *lock;                 /* PATH.lock, flock'ed for the session (-1 fd: read-only) */
    int lock_fd;
    int readonly;               /* results_open_readonly: PATH itself, nothing written */
    int busy;                   /* the lock is held by another session */
    RunLog *open_runs;
    int failed;        /* sticky: the first error, kept for results_close */
    int reported;      /* already printed to stderr */
    char err[2048];
};

static void copy_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* ---- HDF5 error stack -> text ---- */

typedef struct {
    char desc[512];
    char api[128];
} H5ErrText;

/* HDF5's I/O errors read "file write failed: time = ..., filename = ...,
 * file descriptor = 4, errno = 28, error message = 'No space left on device',
 * buf = 0x..., ..." : keep what a user can act on, "file write failed: No
 * space left on device" (the file is named by our own message). */
static void condense_io_error(char *desc, size_t cap) {
    const char *key = "error message = '";
    char *m = strstr(desc, key), *head_end = strstr(desc, ": time = ");
    if (!m || !head_end || head_end > m) return;
    m += strlen(key);
    char *q = strchr(m, '\'');
    if (!q) return;
    char out[512];
    snprintf(out, sizeof out, "%.*s: %.*s", (int)(head_end - desc), desc, (int)(q - m), m);
    snprintf(desc, cap, "%s", out);
}

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    H5ErrText *t = data;
    /* walking upward: entry 0 is where the error was detected (the useful
     * description), the last one is the API call that failed */
    if (n == 0) {
        char minor[128] = "";
        H5Eget_msg(e->min_num, NULL, minor, sizeof minor);
        snprintf(t->desc, sizeof t->desc, "%s%s%s", e->desc ? e->desc : "", *minor ? " / " : "", minor);
        condense_io_error(t->desc, sizeof t->desc);
    }
    if (e->func_name) snprintf(t->api, sizeof t->api, "%s", e->func_name);
    return 0;
}

/* Every error is one line: HDF5's descriptions (and file names) can carry
 * newlines, e.g. the disk-full text "...\n    No space left on device". */
static void one_line(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        char c = (*r == '\n' || *r == '\r' || *r == '\t') ? ' ' : *r;
        if (c == ' ' && w > s && w[-1] == ' ') continue; /* runs of blanks -> one */
        *w++ = c;
    }
    while (w > s && w[-1] == ' ') w--;
    *w = '\0';
}

/* Record an error on f: our message plus what HDF5 says (when with_h5). */
static void fail(ResultsFile *f, int with_h5, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    H5ErrText t = {"", ""};
    if (with_h5) {
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &t);
        H5Eclear2(H5E_DEFAULT);
    }
    if (f->failed) return;
    f->failed = 1;
    /* long messages are cut, which is fine: the start says what failed */
    int n;
    if (*t.desc) n = snprintf(f->err, sizeof f->err, "results %s: %s: %s: %s", f->path, msg, t.api, t.desc);
    else n = snprintf(f->err, sizeof f->err, "results %s: %s", f->path, msg);
    (void)n;
    one_line(f->err);
}

/* Functions without an err argument can only tell the user on stderr; once
 * is enough, results_close repeats it in its err. Passes rc through. */
static int report(ResultsFile *f, int rc) {
    if (f->failed && !f->reported) {
        f->reported = 1;
        fprintf(stderr, "%s\n", f->err);
    }
    return rc || f->failed ? -1 : 0;
}

/* ---- attributes ---- */

/* Variable-length UTF-8 strings: h5py reads them as str (fixed-length ones
 * come back as bytes) and h5dump prints them as text. */
static int attr_str(ResultsFile *f, hid_t obj, const char *name, const char *value) {
    if (!value) value = "";
    int rc = -1;
    hid_t type = -1, space = -1, attr = -1;
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) goto out;
    if ((type = H5Tcopy(H5T_C_S1)) < 0) goto out;
    if (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0) goto out;
    if ((space = H5Screate(H5S_SCALAR)) < 0) goto out;
    if ((attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto out;
    if (H5Awrite(attr, type, &value) < 0) goto out;
    rc = 0;
out:
    if (rc) fail(f, 1, "writing attribute %s", name);
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    return rc;
}

static int attr_num(ResultsFile *f, hid_t obj, const char *name, hid_t filetype, hid_t memtype, const void *v) {
    int rc = -1;
    hid_t space = -1, attr = -1;
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) goto out;
    if ((space = H5Screate(H5S_SCALAR)) < 0) goto out;
    if ((attr = H5Acreate2(obj, name, filetype, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto out;
    if (H5Awrite(attr, memtype, v) < 0) goto out;
    rc = 0;
out:
    if (rc) fail(f, 1, "writing attribute %s", name);
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    return rc;
}

static int attr_int(ResultsFile *f, hid_t obj, const char *name, int v) {
    return attr_num(f, obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v);
}

static int attr_double(ResultsFile *f, hid_t obj, const char *name, double v) {
    return attr_num(f, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

/* ---- datasets ---- */

/* 1-D, empty, unlimited, chunked column; deflate when the library has it
 * (losses and steps compress well, and files get copied around) */
static hid_t column_create(ResultsFile *f, hid_t group, const char *name, hid_t filetype, const char *units) {
    hsize_t dim0 = 0, maxdim = H5S_UNLIMITED, chunk = RH5_BUF;
    hid_t space = -1, dcpl = -1, ds = -1;
    if ((space = H5Screate_simple(1, &dim0, &maxdim)) < 0) goto out;
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0) goto out;
    if (H5Pset_chunk(dcpl, 1, &chunk) < 0) goto out;
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        if (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 4) < 0) goto out;
    }
    ds = H5Dcreate2(group, name, filetype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
out:
    if (ds < 0) fail(f, 1, "creating dataset %s", name);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (ds >= 0 && attr_str(f, ds, "units", units) != 0) {
        H5Dclose(ds);
        ds = -1;
    }
    return ds;
}

/* append n values at rows [len, len + n) */
static int column_append(ResultsFile *f, hid_t ds, const char *name, hid_t memtype, hsize_t len, int n,
                         const void *buf) {
    if (n <= 0) return 0;
    hsize_t newlen = len + (hsize_t)n, start = len, count = (hsize_t)n;
    hid_t fspace = -1, mspace = -1;
    int rc = -1;
    if (H5Dset_extent(ds, &newlen) < 0) goto out;
    if ((fspace = H5Dget_space(ds)) < 0) goto out;
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0) goto out;
    if ((mspace = H5Screate_simple(1, &count, NULL)) < 0) goto out;
    if (H5Dwrite(ds, memtype, mspace, fspace, H5P_DEFAULT, buf) < 0) goto out;
    rc = 0;
out:
    if (rc) fail(f, 1, "appending %d rows to %s", n, name);
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    return rc;
}

/* overwrite one value at `row` (already in the file) */
static int column_write_at(ResultsFile *f, hid_t ds, const char *name, hsize_t row, double v) {
    hsize_t one = 1;
    hid_t fspace = -1, mspace = -1;
    int rc = -1;
    if ((fspace = H5Dget_space(ds)) < 0) goto out;
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &row, NULL, &one, NULL) < 0) goto out;
    if ((mspace = H5Screate_simple(1, &one, NULL)) < 0) goto out;
    if (H5Dwrite(ds, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, &v) < 0) goto out;
    rc = 0;
out:
    if (rc) fail(f, 1, "writing row %llu of %s", (unsigned long long)row, name);
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    return rc;
}

static int run_flush(RunLog *r) {
    ResultsFile *f = r->f;
    int rc = 0;
    if (r->train_n > 0) {
        rc |= column_append(f, r->train[TR_STEP], "train/step", H5T_NATIVE_INT64, r->train_len, r->train_n, r->train_step);
        rc |= column_append(f, r->train[TR_LOSS], "train/loss", H5T_NATIVE_DOUBLE, r->train_len, r->train_n, r->train_loss);
        rc |= column_append(f, r->train[TR_LR], "train/lr", H5T_NATIVE_DOUBLE, r->train_len, r->train_n, r->train_lr);
        rc |= column_append(f, r->train[TR_TIME], "train/time_s", H5T_NATIVE_DOUBLE, r->train_len, r->train_n, r->train_time);
        rc |= column_append(f, r->train[TR_BITS], "train/bits", H5T_NATIVE_DOUBLE, r->train_len, r->train_n, r->train_bits);
        rc |= column_append(f, r->train[TR_GBITS], "train/grad_bits", H5T_NATIVE_DOUBLE, r->train_len, r->train_n,
                            r->train_gbits);
        rc |= column_append(f, r->train[TR_CR], "train/cost_ratio", H5T_NATIVE_DOUBLE, r->train_len, r->train_n,
                            r->train_cr);
        rc |= column_append(f, r->train[TR_TOP1], "train/top1", H5T_NATIVE_DOUBLE, r->train_len, r->train_n,
                            r->train_top1);
        r->train_len += (hsize_t)r->train_n;
        r->train_n = 0;
    }
    for (int t = 0; t < N_EVTAB; t++) {
        EvalTable *e = &r->ev[t];
        if (e->n == 0) continue;
        const void *data[EV_NCOL] = {e->step, e->top1, e->loss, e->bits, e->role, e->fixed};
        for (int c = 0; c < EV_TABLE_NCOL[t]; c++) {
            char name[32];
            snprintf(name, sizeof name, "%s/%s", EV_TABLE[t], EVAL_COLS[c].name);
            rc |= column_append(f, e->ds[c], name, EVAL_COLS[c].is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE,
                                e->len, e->n, data[c]);
        }
        e->len += (hsize_t)e->n;
        e->n = 0;
    }
    return rc ? -1 : 0;
}

/* close the run's handles, take it off the file's list, free it */
static void run_release(RunLog *r) {
    for (int i = 0; i < TR_NCOL; i++)
        if (r->train[i] >= 0) H5Dclose(r->train[i]);
    for (int t = 0; t < N_EVTAB; t++)
        for (int i = 0; i < EV_NCOL; i++)
            if (r->ev[t].ds[i] >= 0) H5Dclose(r->ev[t].ds[i]);
    if (r->group >= 0) H5Gclose(r->group);
    for (RunLog **p = &r->f->open_runs; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    free(r->name);
    free(r);
}

/* ---- file ---- */

/* mkdir -p of the directory part of path */
static int make_parent_dirs(const char *path, char *err, size_t errlen) {
    char *dir = strdup(path);
    if (!dir) {
        copy_err(err, errlen, "results: out of memory");
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) { /* "x.h5" or "/x.h5": nothing to create */
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            struct stat st;
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
                if (err && errlen)
                    snprintf(err, errlen, "results %s: cannot create directory %s: %s", path, dir, strerror(errno));
                free(dir);
                return -1;
            }
            if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
                if (err && errlen)
                    snprintf(err, errlen, "results %s: cannot create directory %s: %s", path, dir,
                             "a file of that name is in the way");
                free(dir);
                return -1;
            }
            *p = saved;
            if (saved == '\0') break;
        }
    }
    free(dir);
    return 0;
}

static void cpu_model(char *out, size_t len) {
    snprintf(out, len, "unknown");
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return;
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == ' ')) v[--n] = '\0';
        snprintf(out, len, "%s", v);
        break;
    }
    fclose(fp);
}

/* Copy src to dst (created or truncated) and fsync it. Returns 0, or -1 with
 * errno set; dst may then be partial, and the caller removes it. */
static int copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        int e = errno;
        close(in);
        errno = e;
        return -1;
    }
    struct stat st;
    off_t size = fstat(in, &st) == 0 ? st.st_size : 0, done = 0;
    int hooked = 0, rc = 0;
    static char buf[1 << 16];
    for (;;) {
        ssize_t got = read(in, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { rc = -1; break; }
        if (got == 0) break;
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(out, buf + off, (size_t)(got - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { rc = -1; break; }
            off += w;
        }
        if (rc) break;
        done += got;
        if (!hooked && results_fault_hook && done >= size / 2) {
            hooked = 1;
            results_fault_hook("commit-copy");
        }
    }
    if (!rc && fsync(out) != 0) rc = -1;
    int e = errno;
    close(in);
    if (close(out) != 0 && !rc) { rc = -1; e = errno; }
    errno = e;
    return rc;
}

static void results_free(ResultsFile *f) {
    if (f->lock_fd >= 0) {
        /* unlinked while still held: a session waiting on it fails its
         * flock or gets a fresh file, never a half-used one */
        unlink(f->lock);
        close(f->lock_fd);
    }
    free(f->path);
    free(f->tmp);
    free(f->commit);
    free(f->lock);
    free(f);
}

/* One session per results file: a second one would overwrite the first's
 * working copy. The lock is taken before PATH.tmp is touched.
 *
 * A session unlinks PATH.lock while it still holds it (results_free), so that
 * no lock file is left behind. A session that open()ed the old lock just
 * before that can then flock() the unlinked inode while a third session has
 * created and locked a new PATH.lock: two holders. So after flock() succeeds
 * the lock counts only if PATH.lock still names the inode we hold; otherwise
 * it was a finished session's, and we start again on the new one. */
static int take_lock(ResultsFile *f) {
    for (int attempt = 0; attempt < 64; attempt++) {
        int fd = open(f->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) {
            fail(f, 0, "cannot create the lock file %s: %s", f->lock, strerror(errno));
            return -1;
        }
        if (results_fault_hook) results_fault_hook("lock-opened");
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK) {
                f->busy = 1;
                fail(f, 0, "another cyclebnn session is writing this file (it holds %s); wait for it to finish", f->lock);
            } else {
                fail(f, 0, "cannot lock %s: %s", f->lock, strerror(e));
            }
            return -1;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(f->lock, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino) {
            f->lock_fd = fd;
            return 0;
        }
        close(fd); /* a finished session's lock, unlinked under us: take the one the path names now */
    }
    fail(f, 0, "cannot lock %s: it was replaced 64 times in a row", f->lock);
    return -1;
}

static int read_attr_str(hid_t obj, const char *name, char *out, size_t cap);

static ResultsFile *results_alloc(const char *path, char *err, size_t errlen) {
    ResultsFile *f = calloc(1, sizeof(*f));
    size_t plen = strlen(path);
    if (f) {
        f->file = f->runs = -1;
        f->lock_fd = -1;
        f->path = strdup(path);
        f->tmp = malloc(plen + 5);
        f->commit = malloc(plen + 8);
        f->lock = malloc(plen + 6);
    }
    if (!f || !f->path || !f->tmp || !f->commit || !f->lock) {
        copy_err(err, errlen, "results: out of memory");
        if (f) results_free(f);
        return NULL;
    }
    memcpy(f->tmp, path, plen);
    memcpy(f->tmp + plen, ".tmp", 5);
    memcpy(f->commit, path, plen);
    memcpy(f->commit + plen, ".commit", 8);
    memcpy(f->lock, path, plen);
    memcpy(f->lock + plen, ".lock", 6);
    return f;
}

/* the file's schema_version attribute, -1 if absent */
static int schema_version_of(hid_t file) {
    int version = -1;
    hid_t a = H5Aexists(file, "schema_version") > 0 ? H5Aopen(file, "schema_version", H5P_DEFAULT) : -1;
    if (a >= 0) {
        if (H5Aread(a, H5T_NATIVE_INT, &version) < 0) version = -1;
        H5Aclose(a);
    }
    H5Eclear2(H5E_DEFAULT);
    return version;
}

/* What PATH is, before anything is written. A results file is a regular
 * file; a symlink is resolved once, and the working copy, the commit and the
 * lock go beside its target (a commit renamed over the link would replace it
 * with a regular file, and the target would silently stop being updated).
 * *resolved (malloc'd) is the path to use; *size is -1 when nothing is there. */
static int inspect_path(const char *path, char **resolved, off_t *size, char *err, size_t errlen) {
    struct stat st;
    *resolved = NULL;
    *size = -1;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            if (err && errlen) snprintf(err, errlen, "results %s: %s", path, strerror(errno));
            return -1;
        }
        *resolved = strdup(path);
    } else if (S_ISLNK(st.st_mode)) {
        char *target = realpath(path, NULL);
        if (!target) {
            char link[PATH_MAX] = "";
            ssize_t n = readlink(path, link, sizeof link - 1);
            if (n > 0) link[n] = '\0';
            if (err && errlen)
                snprintf(err, errlen, "results %s: is a symbolic link to '%s', which cannot be followed: %s", path,
                         link, strerror(errno));
            return -1;
        }
        *resolved = target;
        if (stat(target, &st) != 0) {
            if (err && errlen) snprintf(err, errlen, "results %s: %s: %s", path, target, strerror(errno));
            free(target);
            *resolved = NULL;
            return -1;
        }
    } else {
        *resolved = strdup(path);
    }
    if (!*resolved) {
        copy_err(err, errlen, "results: out of memory");
        return -1;
    }
    if (*size == -1 && lstat(*resolved, &st) == 0) {
        if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
            if (err && errlen)
                snprintf(err, errlen, "results %s: is a %s, not a results file: move it away or use another --results "
                                      "directory", path, S_ISDIR(st.st_mode) ? "directory" : "special file");
            free(*resolved);
            *resolved = NULL;
            return -1;
        }
        *size = st.st_size;
    }
    return 0;
}

/* the message for a file that exists but cannot be a results file */
static int refuse_empty(const char *path, off_t size, char *err, size_t errlen) {
    if (size != 0) return 0;
    if (err && errlen)
        snprintf(err, errlen, "results %s: is empty (0 bytes), not a results file: move it away or start over with "
                              "--fresh", path);
    return -1;
}

/* the schema check of an existing file, as one message */
static int check_schema(ResultsFile *f, hid_t file, const char *what) {
    int version = schema_version_of(file);
    if (version == RESULTS_SCHEMA_VERSION) return 0;
    if (version < 0)
        fail(f, 0, "it is an HDF5 file without a schema_version attribute, not a cyclebnn results file%s", what);
    else
        fail(f, 0, "it has schema version %d, this build %s version %d%s", version, f->readonly ? "reads" : "writes",
             RESULTS_SCHEMA_VERSION, what);
    return -1;
}

ResultsFile *results_open_readonly(const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        copy_err(err, errlen, "results: empty path");
        return NULL;
    }
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char *real;
    off_t size;
    if (inspect_path(path, &real, &size, err, errlen)) return NULL;
    if (size < 0) {
        if (err && errlen) snprintf(err, errlen, "results %s: no such file", path);
        free(real);
        return NULL;
    }
    if (refuse_empty(path, size, err, errlen)) {
        free(real);
        return NULL;
    }
    ResultsFile *f = results_alloc(real, err, errlen);
    free(real);
    if (!f) return NULL;
    f->readonly = 1;
    f->file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) {
        fail(f, 1, "cannot open it as HDF5");
        goto bad;
    }
    if (check_schema(f, f->file, "")) goto bad;
    f->runs = H5Gopen2(f->file, "runs", H5P_DEFAULT);
    if (f->runs < 0) {
        fail(f, 1, "it has no /runs group");
        goto bad;
    }
    return f;
bad:
    copy_err(err, errlen, f->err);
    if (f->runs >= 0) H5Gclose(f->runs);
    if (f->file >= 0) H5Fclose(f->file);
    results_free(f);
    return NULL;
}

/* An existing file's experiment must be the one we write. */
static int check_experiment(ResultsFile *f, hid_t file, const char *experiment) {
    char exp_in_file[256] = "";
    read_attr_str(file, "experiment", exp_in_file, sizeof exp_in_file);
    if (strcmp(exp_in_file, experiment ? experiment : "") == 0) return 0;
    fail(f, 0, "it holds experiment '%s', not '%s': move it away or start over with --fresh", exp_in_file,
         experiment ? experiment : "");
    return -1;
}

typedef struct {
    ResultsFile *f;
    hid_t from, to;
    const ResultsOpenArgs *a;
    int dropped;
} KeepRuns;

static herr_t keep_run_cb(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)group;
    (void)info;
    KeepRuns *k = data;
    if (k->a->reset(name, k->a->reset_ctx)) {
        k->dropped++;
        return 0;
    }
    if (H5Ocopy(k->from, name, k->to, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
        fail(k->f, 1, "copying run /runs/%s into %s", name, k->f->tmp);
        return -1;
    }
    return 0;
}

/* The working copy of PATH without the runs a->reset names (--fresh --only):
 * a new file into which every other run is copied whole, so that the dropped
 * runs' space is not carried along. Returns the new file, or -1. */
static hid_t rebuild_without(ResultsFile *f, const ResultsOpenArgs *a, hid_t fapl) {
    hid_t old = -1, old_runs = -1, file = -1;
    char *first = NULL;
    int ok = 0;
    old = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (old < 0) {
        fail(f, 1, "cannot open it as HDF5");
        goto out;
    }
    if (check_schema(f, old, ": move it away or start over with --fresh") || check_experiment(f, old, a->experiment))
        goto out;
    if ((old_runs = H5Gopen2(old, "runs", H5P_DEFAULT)) < 0) {
        fail(f, 1, "it has no /runs group");
        goto out;
    }
    file = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) {
        fail(f, 1, "cannot create %s", f->tmp);
        goto out;
    }
    first = h5_attr_strdup(old, "first_start_time");
    if (attr_int(f, file, "schema_version", RESULTS_SCHEMA_VERSION) || attr_str(f, file, "experiment", a->experiment) ||
        attr_str(f, file, "first_start_time", first ? first : ""))
        goto out;
    if ((f->runs = H5Gcreate2(file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        fail(f, 1, "creating group /runs");
        goto out;
    }
    KeepRuns k = {f, old_runs, f->runs, a, 0};
    if (H5Literate(old_runs, H5_INDEX_NAME, H5_ITER_INC, NULL, keep_run_cb, &k) < 0) {
        if (!f->failed) fail(f, 1, "listing /runs");
        goto out;
    }
    ok = 1;
out:
    free(first);
    if (old_runs >= 0) H5Gclose(old_runs);
    if (old >= 0) H5Fclose(old);
    if (!ok && file >= 0) {
        if (f->runs >= 0) H5Gclose(f->runs);
        f->runs = -1;
        H5Fclose(file);
        file = -1;
    }
    return file;
}

ResultsFile *results_open(const char *path, const char *experiment, const char *experiment_yaml, int omp_threads,
                          int fresh, char *err, size_t errlen) {
    ResultsOpenArgs a = {.path = path, .experiment = experiment, .experiment_yaml = experiment_yaml,
                         .omp_threads = omp_threads, .fresh = fresh};
    return results_open_args(&a, err, errlen);
}

ResultsFile *results_open_args(ResultsOpenArgs *a, char *err, size_t errlen) {
    a->busy = 0;
    const char *path = a->path;
    if (!path || !*path) {
        copy_err(err, errlen, "results: empty path");
        return NULL;
    }
    /* A working copy whose writes failed (disk full) cannot be closed by
     * HDF5, and the library's atexit clean-up then crashes flushing it again
     * (HDF5 1.10.8). We close every file we mean to keep ourselves, so the
     * clean-up is not needed; this only takes effect before HDF5 initialises. */
    H5dont_atexit();
    /* our messages replace HDF5's stack dumps on stderr */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (make_parent_dirs(path, err, errlen) != 0) return NULL;
    char *real;
    off_t size;
    if (inspect_path(path, &real, &size, err, errlen)) return NULL;
    const int fresh = a->fresh;
    /* keep: PATH is copied whole; rebuild: PATH less the runs to reset; else a new file */
    const int keep = !fresh && !a->reset && size >= 0, rebuild = !fresh && a->reset && size >= 0;
    if ((keep || rebuild) && refuse_empty(path, size, err, errlen)) {
        free(real);
        return NULL;
    }
    ResultsFile *f = results_alloc(real, err, errlen);
    free(real);
    if (!f) return NULL;
    if (take_lock(f)) {
        a->busy = f->busy;
        copy_err(err, errlen, f->err);
        results_free(f);
        return NULL;
    }

    /* CLOSE_STRONG: H5Fclose really closes the file even if a handle were
     * leaked somewhere, so the fsync after it sees every byte */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t use_fapl = fapl >= 0 ? fapl : H5P_DEFAULT;
    if (keep) {
        if (copy_file(f->path, f->tmp) != 0) {
            fail(f, 0, "cannot copy it to %s: %s", f->tmp, strerror(errno));
            if (fapl >= 0) H5Pclose(fapl);
            goto bad;
        }
        f->file = H5Fopen(f->tmp, H5F_ACC_RDWR, use_fapl);
    } else if (rebuild) {
        f->file = rebuild_without(f, a, use_fapl);
    } else {
        errno = 0;
        f->file = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, use_fapl);
    }
    int open_errno = errno;
    if (fapl >= 0) H5Pclose(fapl);
    if (f->file < 0) {
        /* HDF5's own text for a failed create is "unable to truncate a file" and the like: say errno's */
        if (!f->failed && !keep && open_errno)
            fail(f, 0, "cannot create %s: %s", f->tmp, strerror(open_errno));
        else if (!f->failed)
            fail(f, 1, keep ? "cannot open %s (a copy of it) as HDF5" : "cannot create %s", keep ? f->path : f->tmp);
        goto bad;
    }

    hid_t root = f->file;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (keep) {
        if (check_schema(f, root, ": move it away or start over with --fresh") ||
            check_experiment(f, root, a->experiment))
            goto bad;
        f->runs = H5Gopen2(f->file, "runs", H5P_DEFAULT);
        if (f->runs < 0) {
            fail(f, 1, "it has no /runs group");
            goto bad;
        }
    } else if (!rebuild) {
        if (attr_int(f, root, "schema_version", RESULTS_SCHEMA_VERSION) ||
            attr_str(f, root, "experiment", a->experiment) || attr_str(f, root, "first_start_time", when))
            goto bad;
        f->runs = H5Gcreate2(f->file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (f->runs < 0) {
            fail(f, 1, "creating group /runs");
            goto bad;
        }
    }
    /* this session's build and machine */
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    if (attr_str(f, root, "experiment_yaml", a->experiment_yaml) || attr_str(f, root, "git_revision", CBNN_GIT_REV) ||
        attr_str(f, root, "compiler", CBNN_COMPILER) ||
        attr_str(f, root, "build", CBNN_BUILDTYPE " real=" REAL_NAME) ||
        attr_int(f, root, "omp_threads", a->omp_threads) || attr_str(f, root, "cpu_model", cpu) ||
        attr_str(f, root, "start_time", when))
        goto bad;
    return f;
bad:
    copy_err(err, errlen, f->err);
    if (f->runs >= 0) H5Gclose(f->runs);
    if (f->file >= 0) H5Fclose(f->file);
    unlink(f->tmp);
    results_free(f);
    return NULL;
}

ResultsFile *results_create(const char *path, const char *experiment, const char *experiment_yaml,
                            int omp_threads, char *err, size_t errlen) {
    return results_open(path, experiment, experiment_yaml, omp_threads, 1, err, errlen);
}

/* a name usable as one HDF5 path component */
static int plain_component(const char *s) {
    return s && *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static const struct { const char *name, *units; int is_int; } TRAIN_COLS[TR_NCOL] = {
    [TR_STEP] = {"step", "optimizer steps", 1},
    [TR_LOSS] = {"loss", "nats (mean cross-entropy)", 0},
    [TR_LR] = {"lr", "learning rate", 0},
    [TR_TIME] = {"time_s", "s since the run began", 0},
    [TR_BITS] = {"bits", "bits (weights and activations)", 0},
    [TR_GBITS] = {"grad_bits", "bits (error)", 0},
    [TR_CR] = {"cost_ratio", "fraction of an fp32 step", 0},
    [TR_TOP1] = {"top1", "percent (the step's training minibatch)", 0},
};

/* the run attributes that are NaN until the run ends (results/README.md) */
static const char *const RUN_NAN_ATTRS[] = {
    "final_test_top1", "paper_best_top1", "test_top1_at_selected", "val_top1_at_selected", "selected_step",
    "final_test_top1_fixed", "test_top1_at_selected_fixed", "eval_bits_fixed", "val_split", "wall_time_s",
    "mean_cost_ratio", "bit_macs", "fp32_macs", "images_per_s", "peak_rss_bytes", "train_memory_bytes",
    "train_memory_fp32_bytes", "train_memory_ratio", NULL};

/* /runs/<name> with status pending, NaN results and empty train/ val/ test/ columns */
static int create_run_group(ResultsFile *f, const char *run_name, const char *config_yaml) {
    hid_t g = -1, tg = -1, eg[N_EVTAB] = {-1, -1};
    int rc = -1;
    g = H5Gcreate2(f->runs, run_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        fail(f, 1, "creating group /runs/%s", run_name);
        goto out;
    }
    /* final values are NaN until runlog_end: a run that never finished says so */
    if (attr_str(f, g, "config", config_yaml) || attr_str(f, g, "status", "pending") || attr_str(f, g, "message", ""))
        goto out;
    for (int i = 0; RUN_NAN_ATTRS[i]; i++)
        if (attr_double(f, g, RUN_NAN_ATTRS[i], NAN)) goto out;
    tg = H5Gcreate2(g, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int t = 0; t < N_EVTAB; t++) eg[t] = H5Gcreate2(g, EV_TABLE[t], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (tg < 0 || eg[EV_VAL] < 0 || eg[EV_TEST] < 0) {
        fail(f, 1, "creating groups under /runs/%s", run_name);
        goto out;
    }
    for (int i = 0; i < TR_NCOL; i++) {
        hid_t d = column_create(f, tg, TRAIN_COLS[i].name, TRAIN_COLS[i].is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE,
                                TRAIN_COLS[i].units);
        if (d < 0) goto out;
        H5Dclose(d);
    }
    for (int t = 0; t < N_EVTAB; t++)
        for (int i = 0; i < EV_TABLE_NCOL[t]; i++) {
            hid_t d = column_create(f, eg[t], EVAL_COLS[i].name,
                                    EVAL_COLS[i].is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE, EVAL_COLS[i].units);
            if (d < 0) goto out;
            H5Dclose(d);
        }
    rc = 0;
out:
    if (tg >= 0) H5Gclose(tg);
    for (int t = 0; t < N_EVTAB; t++)
        if (eg[t] >= 0) H5Gclose(eg[t]);
    if (g >= 0) H5Gclose(g);
    return rc;
}

static int valid_run_name(ResultsFile *f, const char *run_name) {
    /* one path component: a '/' would silently create nested groups */
    if (plain_component(run_name)) return 1;
    /* a caller's mistake that leaves the file intact: not sticky */
    fprintf(stderr, "results %s: invalid run name \"%s\"\n", f->path, run_name ? run_name : "(null)");
    return 0;
}

int results_run_declare(ResultsFile *f, const char *run_name, const char *config_yaml) {
    if (!f || f->file < 0 || f->failed || f->readonly) return -1;
    if (!valid_run_name(f, run_name)) return -1;
    if (H5Lexists(f->runs, run_name, H5P_DEFAULT) > 0) return 0;
    return report(f, create_run_group(f, run_name, config_yaml)) ? -1 : 1;
}

static hsize_t column_len(hid_t ds) {
    hsize_t n = 0;
    hid_t sp = H5Dget_space(ds);
    if (sp >= 0) {
        H5Sget_simple_extent_dims(sp, &n, NULL);
        H5Sclose(sp);
    }
    return n;
}

RunLog *results_run_begin(ResultsFile *f, const char *run_name, const char *config_yaml) {
    if (!f || f->file < 0 || f->readonly) return NULL;
    if (!valid_run_name(f, run_name)) return NULL;
    for (RunLog *o = f->open_runs; o; o = o->next) {
        if (!strcmp(o->name, run_name)) {
            fprintf(stderr, "results %s: run \"%s\" is already open\n", f->path, run_name);
            return NULL;
        }
    }
    RunLog *r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(run_name))) {
        free(r);
        fail(f, 0, "out of memory");
        report(f, -1);
        return NULL;
    }
    r->f = f;
    r->group = -1;
    for (int i = 0; i < TR_NCOL; i++) r->train[i] = -1;
    for (int t = 0; t < N_EVTAB; t++)
        for (int i = 0; i < EV_NCOL; i++) r->ev[t].ds[i] = -1;
    r->next = f->open_runs;
    f->open_runs = r;

    if (H5Lexists(f->runs, run_name, H5P_DEFAULT) <= 0 && create_run_group(f, run_name, config_yaml)) goto bad;
    r->group = H5Gopen2(f->runs, run_name, H5P_DEFAULT);
    if (r->group < 0) {
        fail(f, 1, "opening group /runs/%s", run_name);
        goto bad;
    }
    /* a landscape of this run was computed on weights that training now
     * moves on from: it would be drawn as the trained run's (issue 12, 3) */
    for (int i = 0; i < 2; i++) {
        const char *g = i ? "landscape1d" : "landscape";
        if (H5Lexists(r->group, g, H5P_DEFAULT) > 0) {
            if (H5Ldelete(r->group, g, H5P_DEFAULT) < 0) {
                fail(f, 1, "removing the stale /runs/%s/%s", run_name, g);
                goto bad;
            }
            fprintf(stderr, "results %s: run %s trains on: its %s (of an unfinished state) is removed\n", f->path,
                    run_name, g);
        }
    }
    if (attr_str(f, r->group, "config", config_yaml) || attr_str(f, r->group, "status", "running") ||
        attr_str(f, r->group, "message", ""))
        goto bad;
    /* the build that starts the training (a resumed run keeps its starter's) */
    if (H5Aexists(r->group, "git_revision") <= 0 && attr_str(f, r->group, "git_revision", CBNN_GIT_REV)) goto bad;
    char path[64];
    for (int i = 0; i < TR_NCOL; i++) {
        snprintf(path, sizeof path, "train/%s", TRAIN_COLS[i].name);
        if ((r->train[i] = H5Dopen2(r->group, path, H5P_DEFAULT)) < 0) {
            fail(f, 1, "opening /runs/%s/%s", run_name, path);
            goto bad;
        }
    }
    for (int t = 0; t < N_EVTAB; t++) {
        for (int i = 0; i < EV_TABLE_NCOL[t]; i++) {
            snprintf(path, sizeof path, "%s/%s", EV_TABLE[t], EVAL_COLS[i].name);
            if ((r->ev[t].ds[i] = H5Dopen2(r->group, path, H5P_DEFAULT)) < 0) {
                fail(f, 1, "opening /runs/%s/%s", run_name, path);
                goto bad;
            }
        }
        r->ev[t].len = column_len(r->ev[t].ds[EV_STEP]);
    }
    r->train_len = column_len(r->train[TR_STEP]);
    return r;
bad:
    run_release(r);
    report(f, -1);
    return NULL;
}

static int read_attr_str(hid_t obj, const char *name, char *out, size_t cap) {
    char *v = h5_attr_strdup(obj, name);
    out[0] = 0;
    if (!v) return -1;
    snprintf(out, cap, "%s", v);
    free(v);
    return 0;
}

static long checkpoint_step(hid_t run) {
    if (H5Lexists(run, "checkpoint", H5P_DEFAULT) <= 0) return -1;
    hid_t g = H5Gopen2(run, "checkpoint", H5P_DEFAULT);
    if (g < 0) return -1;
    double complete = h5_attr_double(g, "complete"), step = h5_attr_double(g, "step");
    H5Gclose(g);
    return complete == 1.0 && step >= 0 ? (long)step : -1;
}

int results_run_info(ResultsFile *f, const char *run_name, RunInfo *out) {
    memset(out, 0, sizeof *out);
    out->checkpoint_step = -1;
    out->final_top1 = out->best_top1 = out->wall_time_s = out->mean_cost_ratio = NAN;
    out->bit_macs = out->fp32_macs = out->images_per_s = NAN;
    out->test_top1_at_selected = out->val_top1_at_selected = out->selected_step = NAN;
    out->final_test_top1_fixed = out->test_top1_at_selected_fixed = out->eval_bits_fixed = out->val_split = NAN;
    if (!f || f->file < 0 || !plain_component(run_name)) return -1;
    if (H5Lexists(f->runs, run_name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    hid_t g = H5Gopen2(f->runs, run_name, H5P_DEFAULT);
    if (g < 0) return -1;
    out->exists = 1;
    read_attr_str(g, "status", out->status, sizeof out->status);
    read_attr_str(g, "message", out->message, sizeof out->message);
    if (H5Aexists(g, "git_revision") > 0) read_attr_str(g, "git_revision", out->git_revision, sizeof out->git_revision);
    out->config = h5_attr_strdup(g, "config");
    out->final_top1 = h5_attr_double(g, "final_test_top1");
    out->best_top1 = h5_attr_double(g, "paper_best_top1");
    out->test_top1_at_selected = h5_attr_double(g, "test_top1_at_selected");
    out->val_top1_at_selected = h5_attr_double(g, "val_top1_at_selected");
    out->selected_step = h5_attr_double(g, "selected_step");
    out->final_test_top1_fixed = h5_attr_double(g, "final_test_top1_fixed");
    out->test_top1_at_selected_fixed = h5_attr_double(g, "test_top1_at_selected_fixed");
    out->eval_bits_fixed = h5_attr_double(g, "eval_bits_fixed");
    out->val_split = h5_attr_double(g, "val_split");
    out->wall_time_s = h5_attr_double(g, "wall_time_s");
    out->mean_cost_ratio = h5_attr_double(g, "mean_cost_ratio");
    out->bit_macs = h5_attr_double(g, "bit_macs");
    out->fp32_macs = h5_attr_double(g, "fp32_macs");
    out->images_per_s = h5_attr_double(g, "images_per_s");
    out->checkpoint_step = checkpoint_step(g);
    H5Gclose(g);
    H5Eclear2(H5E_DEFAULT);
    return 0;
}

void run_info_free(RunInfo *ri) {
    if (!ri) return;
    free(ri->config);
    ri->config = NULL;
}

int runlog_train_row(RunLog *r, const TrainRow *row) {
    if (!r) return -1;
    /* A full buffer is written out before the next row rather than right
     * after the last one, so that runlog_train_precision still finds the row
     * it completes in memory (the usual case: one H5Dwrite per column per
     * 1024 rows either way). */
    int rc = r->train_n == RH5_BUF ? run_flush(r) : 0;
    int i = r->train_n;
    r->train_step[i] = row->step;
    r->train_loss[i] = row->loss;
    r->train_lr[i] = row->lr;
    r->train_time[i] = row->time_s;
    r->train_bits[i] = row->bits;
    r->train_gbits[i] = row->grad_bits;
    r->train_cr[i] = row->cost_ratio;
    r->train_top1[i] = row->metric;
    r->train_n++;
    return report(r->f, rc);
}

int runlog_train(RunLog *r, long step, double loss, double lr, double time_s) {
    /* NaN = "no precision logged for this step" until runlog_train_precision */
    const TrainRow row = {step, loss, lr, time_s, NAN, NAN, NAN, NAN};
    return runlog_train_row(r, &row);
}

int runlog_train_precision(RunLog *r, double bits, double grad_bits, double cost_ratio) {
    if (!r) return -1;
    if (r->train_n > 0) {
        int i = r->train_n - 1;
        r->train_bits[i] = bits;
        r->train_gbits[i] = grad_bits;
        r->train_cr[i] = cost_ratio;
        return report(r->f, 0);
    }
    if (r->train_len == 0) {
        /* a caller's mistake that leaves the file intact: not sticky */
        fprintf(stderr, "results %s: runlog_train_precision before any runlog_train in run \"%s\"\n", r->f->path,
                r->name);
        return -1;
    }
    /* results_flush ran between runlog_train and this call: the row is in the file */
    const hsize_t row = r->train_len - 1;
    int rc = column_write_at(r->f, r->train[TR_BITS], "train/bits", row, bits);
    rc |= column_write_at(r->f, r->train[TR_GBITS], "train/grad_bits", row, grad_bits);
    rc |= column_write_at(r->f, r->train[TR_CR], "train/cost_ratio", row, cost_ratio);
    return report(r->f, rc);
}

int runlog_train_top1(RunLog *r, double top1) {
    if (!r) return -1;
    if (r->train_n > 0) {
        r->train_top1[r->train_n - 1] = top1;
        return report(r->f, 0);
    }
    if (r->train_len == 0) {
        fprintf(stderr, "results %s: runlog_train_top1 before any runlog_train in run \"%s\"\n", r->f->path, r->name);
        return -1;
    }
    return report(r->f, column_write_at(r->f, r->train[TR_TOP1], "train/top1", r->train_len - 1, top1));
}

int runlog_mean_cost_ratio(RunLog *r, double mean_cost_ratio) {
    if (!r) return -1;
    return report(r->f, attr_double(r->f, r->group, "mean_cost_ratio", mean_cost_ratio));
}

/* one fixed-size column of a table */
static int table_column(ResultsFile *f, hid_t g, const char *group, const ResultsColumn *c, long nrows) {
    hsize_t n = (hsize_t)nrows;
    hid_t space = -1, ftype = -1, mtype = -1, ds = -1;
    const char **strs = NULL;
    const void *buf = c->data;
    int rc = -1;
    if (c->type == RCOL_STRING) {
        if ((ftype = H5Tcopy(H5T_C_S1)) < 0) goto out;
        if (H5Tset_size(ftype, H5T_VARIABLE) < 0 || H5Tset_cset(ftype, H5T_CSET_UTF8) < 0) goto out;
        if ((mtype = H5Tcopy(ftype)) < 0) goto out;
        /* HDF5 would store a NULL pointer as a null string, which h5py reads
         * back as b''; "" keeps every row a str */
        strs = malloc(sizeof *strs * (nrows ? (size_t)nrows : 1));
        if (!strs) {
            fail(f, 0, "out of memory writing %s/%s", group, c->name);
            goto out;
        }
        const char *const *src = c->data;
        for (long i = 0; i < nrows; i++) strs[i] = src[i] ? src[i] : "";
        buf = strs;
    } else if (c->type == RCOL_INT64) {
        if ((ftype = H5Tcopy(H5T_STD_I64LE)) < 0 || (mtype = H5Tcopy(H5T_NATIVE_INT64)) < 0) goto out;
    } else {
        if ((ftype = H5Tcopy(H5T_IEEE_F64LE)) < 0 || (mtype = H5Tcopy(H5T_NATIVE_DOUBLE)) < 0) goto out;
    }
    if ((space = H5Screate_simple(1, &n, NULL)) < 0) goto out;
    if ((ds = H5Dcreate2(g, c->name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto out;
    if (n > 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) goto out;
    rc = 0;
out:
    if (rc) fail(f, 1, "writing table column %s/%s", group, c->name);
    if (rc == 0 && attr_str(f, ds, "units", c->units ? c->units : "") != 0) rc = -1;
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    free(strs);
    return rc;
}

/* a table group under an open run group (see runlog_table) */
static int write_table(ResultsFile *f, hid_t run_group, const char *run_name, const char *group, long nrows,
                       const ResultsColumn *cols, int ncols, const ResultsAttr *attrs, int nattrs) {
    /* caller mistakes leave the file intact: reported, not sticky */
    const char *why = NULL;
    if (!plain_component(group)) why = "invalid table name";
    else if (!strcmp(group, "train") || !strcmp(group, "val") || !strcmp(group, "test") ||
             !strcmp(group, "checkpoint"))
        why = "train, val, test and checkpoint are not tables";
    else if (nrows < 0 || ncols < 0 || (ncols > 0 && !cols) || nattrs < 0 || (nattrs > 0 && !attrs))
        why = "invalid size";
    for (int c = 0; !why && c < ncols; c++) {
        if (!plain_component(cols[c].name)) why = "invalid column name";
        else if (nrows > 0 && !cols[c].data) why = "column without data";
        else if (cols[c].type != RCOL_INT64 && cols[c].type != RCOL_FLOAT64 && cols[c].type != RCOL_STRING)
            why = "invalid column type";
        for (int d = 0; !why && d < c; d++)
            if (!strcmp(cols[c].name, cols[d].name)) why = "duplicate column name";
    }
    for (int a = 0; !why && a < nattrs; a++)
        if (!attrs[a].name || !*attrs[a].name) why = "attribute without a name";
    if (why) {
        fprintf(stderr, "results %s: table \"%s\" of run \"%s\": %s\n", f->path, group ? group : "(null)", run_name,
                why);
        return -1;
    }
    /* written again (e.g. a cost table refreshed during the run): the new one replaces it */
    if (H5Lexists(run_group, group, H5P_DEFAULT) > 0 && H5Ldelete(run_group, group, H5P_DEFAULT) < 0) {
        fail(f, 1, "replacing table %s", group);
        return report(f, -1);
    }
    hid_t g = H5Gcreate2(run_group, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        fail(f, 1, "creating table %s", group);
        return report(f, -1);
    }
    int rc = 0;
    for (int c = 0; c < ncols && rc == 0; c++) rc = table_column(f, g, group, &cols[c], nrows);
    for (int a = 0; a < nattrs && rc == 0; a++)
        rc = attrs[a].text ? attr_str(f, g, attrs[a].name, attrs[a].text)
                           : attr_double(f, g, attrs[a].name, attrs[a].value);
    H5Gclose(g);
    return report(f, rc);
}

int runlog_table(RunLog *r, const char *group, long nrows, const ResultsColumn *cols, int ncols) {
    if (!r) return -1;
    return write_table(r->f, r->group, r->name, group, nrows, cols, ncols, NULL, 0);
}

int results_run_table(ResultsFile *f, const char *run_name, const char *group, long nrows,
                      const ResultsColumn *cols, int ncols, const ResultsAttr *attrs, int nattrs) {
    if (!f || f->file < 0 || f->readonly || f->failed || !plain_component(run_name)) return -1;
    for (RunLog *o = f->open_runs; o; o = o->next)
        if (!strcmp(o->name, run_name)) return write_table(f, o->group, run_name, group, nrows, cols, ncols, attrs, nattrs);
    if (H5Lexists(f->runs, run_name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        fprintf(stderr, "results %s: no run \"%s\"\n", f->path, run_name);
        return -1;
    }
    hid_t g = H5Gopen2(f->runs, run_name, H5P_DEFAULT);
    if (g < 0) {
        fail(f, 1, "opening /runs/%s", run_name);
        return report(f, -1);
    }
    int rc = write_table(f, g, run_name, group, nrows, cols, ncols, attrs, nattrs);
    H5Gclose(g);
    return rc;
}

int results_table(ResultsFile *f, const char *group, long nrows, const ResultsColumn *cols, int ncols,
                  const ResultsAttr *attrs, int nattrs) {
    if (!f || f->file < 0 || f->readonly || f->failed) return -1;
    if (!group || !strcmp(group, "runs")) {
        fprintf(stderr, "results %s: \"%s\" cannot be a root table\n", f->path, group ? group : "(null)");
        return -1;
    }
    return write_table(f, f->file, "/", group, nrows, cols, ncols, attrs, nattrs);
}

static int eval_row(RunLog *r, int t, long step, double top1, double loss, double bits, int role, int fixed) {
    if (!r) return -1;
    EvalTable *e = &r->ev[t];
    const int i = e->n;
    e->step[i] = step;
    e->top1[i] = top1;
    e->loss[i] = loss;
    e->bits[i] = bits;
    e->role[i] = role;
    e->fixed[i] = fixed;
    e->n++;
    return report(r->f, e->n == RH5_BUF ? run_flush(r) : 0);
}

int runlog_val(RunLog *r, long step, double top1, double loss, double bits) {
    return eval_row(r, EV_VAL, step, top1, loss, bits, 0, 0);
}

int runlog_test(RunLog *r, long step, double top1, double loss, double bits, TestRole role, int fixed) {
    return eval_row(r, EV_TEST, step, top1, loss, bits, (int)role, fixed);
}

int runlog_attr(RunLog *r, const char *name, double v) {
    if (!r) return -1;
    return report(r->f, attr_double(r->f, r->group, name, v));
}

int runlog_attr_text(RunLog *r, const char *name, const char *v) {
    if (!r) return -1;
    return report(r->f, attr_str(r->f, r->group, name, v));
}

/* rows [0, keep) of a column group stay; the rest go */
static int shrink_columns(ResultsFile *f, hid_t *cols, int ncols, hsize_t keep) {
    for (int i = 0; i < ncols; i++)
        if (H5Dset_extent(cols[i], &keep) < 0) {
            fail(f, 1, "truncating a column to %llu rows", (unsigned long long)keep);
            return -1;
        }
    return 0;
}

/* rows whose step column is <= step (rows are in step order) */
static int rows_upto(ResultsFile *f, hid_t step_col, hsize_t len, long step, hsize_t *keep) {
    *keep = 0;
    if (len == 0) return 0;
    int64_t *steps = malloc(sizeof *steps * (size_t)len);
    if (!steps) {
        fail(f, 0, "out of memory reading a step column");
        return -1;
    }
    if (H5Dread(step_col, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps) < 0) {
        free(steps);
        fail(f, 1, "reading a step column");
        return -1;
    }
    hsize_t k = 0;
    while (k < len && steps[k] <= step) k++;
    free(steps);
    *keep = k;
    return 0;
}

int runlog_truncate(RunLog *r, long step) {
    if (!r) return -1;
    ResultsFile *f = r->f;
    if (run_flush(r)) return report(f, -1);
    hsize_t keep;
    if (rows_upto(f, r->train[TR_STEP], r->train_len, step, &keep) ||
        (keep < r->train_len && shrink_columns(f, r->train, TR_NCOL, keep)))
        return report(f, -1);
    r->train_len = keep;
    for (int t = 0; t < N_EVTAB; t++) {
        EvalTable *e = &r->ev[t];
        if (rows_upto(f, e->ds[EV_STEP], e->len, step, &keep) ||
            (keep < e->len && shrink_columns(f, e->ds, EV_TABLE_NCOL[t], keep)))
            return report(f, -1);
        e->len = keep;
    }
    return report(f, 0);
}

static void ckpt_types(CkptType t, hid_t *ftype, hid_t *mtype) {
    switch (t) {
    case CK_REAL:
        *ftype = REAL_IS_DOUBLE ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
        *mtype = REAL_IS_DOUBLE ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
        break;
    case CK_F64: *ftype = H5T_IEEE_F64LE; *mtype = H5T_NATIVE_DOUBLE; break;
    default: *ftype = H5T_STD_I64LE; *mtype = H5T_NATIVE_INT64; break;
    }
}

static int ckpt_set_flag(ResultsFile *f, hid_t g, int complete, long step) {
    return attr_double(f, g, "complete", complete) || attr_double(f, g, "step", (double)step) ? -1 : 0;
}

int runlog_checkpoint_save(RunLog *r, long step, const CkptArray *a, int n) {
    if (!r) return -1;
    ResultsFile *f = r->f;
    if (f->failed) return -1;
    hid_t g = H5Lexists(r->group, "checkpoint", H5P_DEFAULT) > 0
                  ? H5Gopen2(r->group, "checkpoint", H5P_DEFAULT)
                  : H5Gcreate2(r->group, "checkpoint", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        fail(f, 1, "opening /runs/%s/checkpoint", r->name);
        return report(f, -1);
    }
    int rc = ckpt_set_flag(f, g, 0, step);
    for (int i = 0; i < n && !rc; i++) {
        hid_t ftype, mtype, ds = -1, space = -1;
        ckpt_types(a[i].type, &ftype, &mtype);
        hsize_t len = (hsize_t)a[i].n;
        if (H5Lexists(g, a[i].name, H5P_DEFAULT) > 0) {
            ds = H5Dopen2(g, a[i].name, H5P_DEFAULT);
            if (ds >= 0 && column_len(ds) != len) {
                /* a run's tensors never change size; this would be a bug */
                fail(f, 0, "checkpoint/%s holds %llu values, not %zu", a[i].name,
                     (unsigned long long)column_len(ds), a[i].n);
                H5Dclose(ds);
                rc = -1;
                break;
            }
        } else if ((space = H5Screate_simple(1, &len, NULL)) >= 0) {
            ds = H5Dcreate2(g, a[i].name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Sclose(space);
        }
        if (ds < 0 || (len > 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, a[i].data) < 0)) {
            fail(f, 1, "writing /runs/%s/checkpoint/%s", r->name, a[i].name);
            rc = -1;
        }
        if (ds >= 0) H5Dclose(ds);
        if (i == 0 && results_fault_hook) results_fault_hook("checkpoint-write");
    }
    if (!rc) rc = ckpt_set_flag(f, g, 1, step);
    H5Gclose(g);
    return report(f, rc);
}

/* the complete checkpoint of an open run group into a; 1, 0 (none), -1 */
static int checkpoint_read(ResultsFile *f, hid_t run, const char *run_name, long *step, const CkptArray *a, int n,
                           char *err, size_t errlen) {
    long s = checkpoint_step(run);
    H5Eclear2(H5E_DEFAULT);
    if (s < 0) return 0;
    hid_t g = H5Gopen2(run, "checkpoint", H5P_DEFAULT);
    if (g < 0) {
        if (err && errlen) snprintf(err, errlen, "results %s: cannot open /runs/%s/checkpoint", f->path, run_name);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        hid_t ftype, mtype;
        ckpt_types(a[i].type, &ftype, &mtype);
        hid_t ds = H5Lexists(g, a[i].name, H5P_DEFAULT) > 0 ? H5Dopen2(g, a[i].name, H5P_DEFAULT) : -1;
        if (ds < 0 || column_len(ds) != (hsize_t)a[i].n) {
            if (err && errlen)
                snprintf(err, errlen, "results %s: /runs/%s/checkpoint/%s is missing or holds %llu values, not %zu",
                         f->path, run_name, a[i].name, ds < 0 ? 0ULL : (unsigned long long)column_len(ds), a[i].n);
            rc = -1;
        } else if (a[i].n > 0 && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, a[i].data) < 0) {
            if (err && errlen)
                snprintf(err, errlen, "results %s: cannot read /runs/%s/checkpoint/%s", f->path, run_name, a[i].name);
            rc = -1;
        }
        if (ds >= 0) H5Dclose(ds);
    }
    H5Gclose(g);
    H5Eclear2(H5E_DEFAULT);
    if (rc) return -1;
    *step = s;
    return 1;
}

int runlog_checkpoint_load(RunLog *r, long *step, const CkptArray *a, int n, char *err, size_t errlen) {
    if (!r) return -1;
    return checkpoint_read(r->f, r->group, r->name, step, a, n, err, errlen);
}

int results_checkpoint_read(ResultsFile *f, const char *run_name, long *step, const CkptArray *a, int n, char *err,
                            size_t errlen) {
    if (!f || f->file < 0 || !plain_component(run_name)) return -1;
    if (H5Lexists(f->runs, run_name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        if (err && errlen) snprintf(err, errlen, "results %s: no run '%s'", f->path, run_name);
        return -1;
    }
    hid_t g = H5Gopen2(f->runs, run_name, H5P_DEFAULT);
    if (g < 0) return -1;
    int rc = checkpoint_read(f, g, run_name, step, a, n, err, errlen);
    H5Gclose(g);
    return rc;
}

char *results_root_attr_text(ResultsFile *f, const char *name) {
    if (!f || f->file < 0 || !name) return NULL;
    char *v = h5_attr_strdup(f->file, name);
    H5Eclear2(H5E_DEFAULT);
    return v;
}

static void fsync_parent(const char *path);

int results_commit(ResultsFile *f, char *err, size_t errlen) {
    if (!f || f->file < 0 || f->readonly) {
        copy_err(err, errlen, "results: no file");
        return -1;
    }
    int rc = 0;
    for (RunLog *r = f->open_runs; r; r = r->next) rc |= run_flush(r);
    /* GLOBAL: every object's metadata reaches the working copy, which is then
     * a complete HDF5 file on disk that the copy below can take */
    if (!rc && H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0) {
        fail(f, 1, "flushing %s", f->tmp);
        rc = -1;
    }
    if (!rc && !f->failed) {
        if (copy_file(f->tmp, f->commit) != 0) {
            fail(f, 0, "writing %s: %s (the last committed %s is intact)", f->commit, strerror(errno), f->path);
            unlink(f->commit);
        } else if (rename(f->commit, f->path) != 0) {
            fail(f, 0, "rename %s -> %s: %s", f->commit, f->path, strerror(errno));
            unlink(f->commit);
        } else {
            fsync_parent(f->path);
        }
    }
    if (f->failed) {
        copy_err(err, errlen, f->err);
        report(f, -1);
        return -1;
    }
    return 0;
}

int runlog_commit(RunLog *r) {
    if (!r) return -1;
    return results_commit(r->f, NULL, 0);
}

int results_is_readonly(const ResultsFile *f) { return f && f->readonly; }

const char *results_error(const ResultsFile *f) { return f && f->failed ? f->err : ""; }

int runlog_end(RunLog *r, const char *status, double final_top1, double best_top1, double wall_time_s) {
    if (!r) return -1;
    ResultsFile *f = r->f;
    int rc = run_flush(r);
    if (attr_str(f, r->group, "status", status ? status : "complete") ||
        attr_double(f, r->group, "final_test_top1", final_top1) ||
        attr_double(f, r->group, "paper_best_top1", best_top1) ||
        attr_double(f, r->group, "wall_time_s", wall_time_s))
        rc = -1;
    run_release(r);
    return report(f, rc);
}

int results_flush(ResultsFile *f) {
    if (!f || f->file < 0) return -1;
    int rc = 0;
    for (RunLog *r = f->open_runs; r; r = r->next) rc |= run_flush(r);
    /* also push HDF5's metadata to the .tmp file, so that what was flushed
     * would be readable there after a crash (for post-mortems) */
    if (H5Fflush(f->file, H5F_SCOPE_LOCAL) < 0) {
        fail(f, 1, "flushing %s", f->tmp);
        rc = -1;
    }
    return report(f, rc);
}

/* fsync a path (the file, then its directory for the rename) */
static int fsync_path(const char *p, int dir) {
    int fd = open(p, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* make a rename in path's directory durable; the data is already safe, so a
 * failure here is not worth failing the run for */
static void fsync_parent(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (!slash) fsync_path(".", 1);
    else {
        if (slash == dir) slash[1] = '\0';
        else *slash = '\0';
        fsync_path(dir, 1);
    }
    free(dir);
}

int results_close(ResultsFile *f, int commit, char *err, size_t errlen) {
    if (!f) {
        copy_err(err, errlen, "results: no file");
        return -1;
    }
    if (f->readonly) {
        if (f->runs >= 0) H5Gclose(f->runs);
        if (f->file >= 0) H5Fclose(f->file);
        results_free(f);
        return 0;
    }
    /* runs never ended keep whatever status they had ("running") and are
     * ended here; their RunLog pointers are invalid afterwards */
    while (f->open_runs) {
        RunLog *r = f->open_runs;
        if (commit) run_flush(r);
        run_release(r);
    }
    if (f->runs >= 0 && H5Gclose(f->runs) < 0 && commit) fail(f, 1, "closing /runs");
    f->runs = -1;
    /* the metadata cache is written here: this is where a full disk usually shows */
    if (f->file >= 0 && H5Fclose(f->file) < 0 && commit) fail(f, 1, "closing %s", f->tmp);
    f->file = -1;

    int rc = 0;
    if (commit && !f->failed) {
        if (fsync_path(f->tmp, 0) != 0) {
            fail(f, 0, "fsync %s: %s", f->tmp, strerror(errno));
        } else if (rename(f->tmp, f->path) != 0) {
            fail(f, 0, "rename %s -> %s: %s", f->tmp, f->path, strerror(errno));
        } else {
            fsync_parent(f->path);
        }
    }
    if (!commit || f->failed) {
        unlink(f->tmp); /* PATH stays as it was: the previous complete file or nothing */
        if (commit) rc = -1;
    }
    if (rc) copy_err(err, errlen, f->err);
    results_free(f);
    return rc;
}

/* ------------------------------------------------------------ part files */

/* FNV-1a, 64 bits: a content hash for "is this run the same as that one",
 * not a defence against forgery */
static void fnv(uint64_t *h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * 0x100000001b3ULL;
}

/* The value of a dataset or attribute (id, is_attr) into h: its type class,
 * element size and count, then the elements in native form; variable-length
 * strings by their text. -1 when it cannot be read. */
static int hash_value(hid_t id, int is_attr, uint64_t *h) {
    hid_t ft = is_attr ? H5Aget_type(id) : H5Dget_type(id);
    hid_t sp = is_attr ? H5Aget_space(id) : H5Dget_space(id);
    hid_t mt = -1;
    void *buf = NULL;
    int rc = -1;
    if (ft < 0 || sp < 0) goto out;
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    const int cls = (int)H5Tget_class(ft), vstr = cls == H5T_STRING && H5Tis_variable_str(ft) > 0;
    if (np < 0) goto out;
    int64_t head[2] = {cls, np};
    fnv(h, head, sizeof head);
    if (vstr) {
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0) goto out;
    } else {
        mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
        if (mt < 0) goto out;
    }
    const size_t esz = vstr ? sizeof(char *) : H5Tget_size(mt);
    if (!vstr) fnv(h, &esz, sizeof esz);
    buf = calloc((size_t)np ? (size_t)np : 1, esz ? esz : 1);
    if (!buf) goto out;
    if (np > 0 && (is_attr ? H5Aread(id, mt, buf) : H5Dread(id, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)) < 0)
        goto out;
    if (vstr) {
        char **s = buf;
        for (hssize_t i = 0; i < np; i++) fnv(h, s[i] ? s[i] : "", strlen(s[i] ? s[i] : "") + 1);
        if (np > 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
    } else {
        fnv(h, buf, (size_t)np * esz);
    }
    rc = 0;
out:
    free(buf);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    return rc;
}

typedef struct {
    uint64_t *h;
    int failed;
} HashCtx;

static herr_t hash_attr_cb(hid_t obj, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    HashCtx *c = data;
    fnv(c->h, name, strlen(name) + 1);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0 || hash_value(a, 1, c->h)) c->failed = 1;
    if (a >= 0) H5Aclose(a);
    return c->failed ? -1 : 0;
}

static int hash_object(hid_t obj, uint64_t *h);

static herr_t hash_link_cb(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    HashCtx *c = data;
    fnv(c->h, name, strlen(name) + 1);
    hid_t o = H5Oopen(group, name, H5P_DEFAULT);
    if (o < 0 || hash_object(o, c->h)) c->failed = 1;
    if (o >= 0) H5Oclose(o);
    return c->failed ? -1 : 0;
}

/* An object's attributes (by name), then a dataset's values or a group's
 * members (by name, recursively): equal hashes = the same content, whatever
 * the storage layout or the order things were written in. */
static int hash_object(hid_t obj, uint64_t *h) {
    HashCtx c = {h, 0};
    const H5I_type_t t = H5Iget_type(obj);
    fnv(h, &t, sizeof t);
    hsize_t idx = 0;
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, hash_attr_cb, &c) < 0 || c.failed) return -1;
    if (t == H5I_DATASET) return hash_value(obj, 0, h);
    if (t != H5I_GROUP) return -1;
    idx = 0;
    if (H5Literate(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, hash_link_cb, &c) < 0 || c.failed) return -1;
    return 0;
}

int results_run_hash(ResultsFile *f, const char *run_name, uint64_t *hash) {
    if (!f || f->runs < 0 || !plain_component(run_name) || H5Lexists(f->runs, run_name, H5P_DEFAULT) <= 0) return -1;
    hid_t g = H5Gopen2(f->runs, run_name, H5P_DEFAULT);
    *hash = 0xcbf29ce484222325ULL;
    const int rc = g >= 0 ? hash_object(g, hash) : -1;
    if (g >= 0) H5Gclose(g);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

static herr_t first_run_cb(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)group, (void)info;
    char *out = data;
    if (out[0]) return 1; /* a second run: not a part file */
    snprintf(out, 256, "%s", name);
    return 0;
}

/* A part file's one run: its name into out[256]; -1 when it holds none or several */
static int part_run_name(hid_t runs, char *out) {
    out[0] = 0;
    hsize_t idx = 0;
    const herr_t rc = H5Literate(runs, H5_INDEX_NAME, H5_ITER_INC, &idx, first_run_cb, out);
    return rc == 0 && out[0] ? 0 : -1;
}

/* remove a finished part: PATH, and what a killed writer may have left beside it */
static void remove_part(const ResultsFile *p) {
    unlink(p->path);
    unlink(p->tmp);
    unlink(p->commit);
    fsync_parent(p->path);
}

/* The run of an open part file p against f: outcome and the copy (see results_h5.h). */
static int merge_run(ResultsFile *f, ResultsFile *p, PartMerge *out, char *err, size_t errlen) {
    RunInfo in_part, in_main;
    results_run_info(p, out->run, &in_part);
    results_run_info(f, out->run, &in_main);
    snprintf(out->status, sizeof out->status, "%s", in_part.status);
    int rc = 0;
    if (strcmp(in_part.status, "complete") != 0) {
        out->outcome = PART_NOT_COMPLETE;
    } else if (!strcmp(in_main.status, "complete")) {
        uint64_t a, b;
        const int same = !results_run_hash(f, out->run, &a) && !results_run_hash(p, out->run, &b) && a == b;
        out->outcome = same ? PART_SAME : PART_DIFFERS;
        if (same) remove_part(p);
    } else if (in_main.exists && in_main.config && in_part.config && strcmp(in_main.config, in_part.config) != 0) {
        out->outcome = PART_OTHER_CONFIG;
    } else {
        /* the declared (pending) run is replaced by the part's whole group */
        if (in_main.exists && H5Ldelete(f->runs, out->run, H5P_DEFAULT) < 0) fail(f, 1, "removing /runs/%s", out->run);
        else if (H5Ocopy(p->runs, out->run, f->runs, out->run, H5P_DEFAULT, H5P_DEFAULT) < 0)
            fail(f, 1, "copying run %s from %s", out->run, p->path);
        /* commit first: the part goes only once the main file holds its run */
        if (f->failed || results_commit(f, NULL, 0)) {
            copy_err(err, errlen, f->err);
            rc = -1;
        } else {
            out->outcome = PART_MERGED;
            remove_part(p);
        }
    }
    run_info_free(&in_part);
    run_info_free(&in_main);
    return rc;
}

int results_merge_part(ResultsFile *f, const char *part_path, PartMerge *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!f || f->file < 0 || f->readonly || f->failed) {
        copy_err(err, errlen, f && f->failed ? f->err : "results: no file open for writing");
        return -1;
    }
    ResultsFile *p = results_alloc(part_path, err, errlen);
    if (!p) return -1;
    int rc = -1;
    /* without waiting: a part whose lock is held is being trained (or merged by another session) */
    if (take_lock(p)) {
        if (p->busy) {
            out->outcome = PART_BUSY;
            rc = 0;
        } else {
            copy_err(err, errlen, p->err);
        }
        results_free(p);
        return rc;
    }
    struct stat st;
    if (stat(p->path, &st) != 0) { /* merged (and removed) by another session since it was listed */
        out->outcome = PART_GONE;
        results_free(p);
        return 0;
    }
    p->file = H5Fopen(p->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char exp_part[256] = "", exp_main[256] = "";
    if (p->file < 0) fail(p, 1, "cannot open it as HDF5");
    else if (!check_schema(p, p->file, "")) {
        read_attr_str(p->file, "experiment", exp_part, sizeof exp_part);
        read_attr_str(f->file, "experiment", exp_main, sizeof exp_main);
        if (strcmp(exp_part, exp_main) != 0) fail(p, 0, "it holds experiment '%s', not '%s'", exp_part, exp_main);
        else if ((p->runs = H5Gopen2(p->file, "runs", H5P_DEFAULT)) < 0) fail(p, 1, "it has no /runs group");
        else if (part_run_name(p->runs, out->run)) fail(p, 0, "it does not hold exactly one run");
    }
    if (p->failed) {
        if (err && errlen) snprintf(err, errlen, "part file %s: %s (kept)", p->path, p->err);
        out->outcome = PART_UNREADABLE;
        rc = 0;
    } else {
        rc = merge_run(f, p, out, err, errlen);
    }
    if (p->runs >= 0) H5Gclose(p->runs);
    if (p->file >= 0) H5Fclose(p->file);
    H5Eclear2(H5E_DEFAULT);
    results_free(p);
    return rc;
}

int results_copy_run(ResultsFile *to, ResultsFile *from, const char *run_name) {
    if (!to || to->file < 0 || to->readonly || to->failed || !from || from->runs < 0) return -1;
    if (!valid_run_name(to, run_name) || H5Lexists(from->runs, run_name, H5P_DEFAULT) <= 0) return -1;
    if (H5Lexists(to->runs, run_name, H5P_DEFAULT) > 0 && H5Ldelete(to->runs, run_name, H5P_DEFAULT) < 0)
        fail(to, 1, "removing /runs/%s", run_name);
    else if (H5Ocopy(from->runs, run_name, to->runs, run_name, H5P_DEFAULT, H5P_DEFAULT) < 0)
        fail(to, 1, "copying run %s from %s", run_name, from->path);
    return report(to, to->failed ? -1 : 0);
}

int results_remove_part(const char *part_path, char *err, size_t errlen) {
    ResultsFile *p = results_alloc(part_path, err, errlen);
    if (!p) return -1;
    int rc = 0;
    if (take_lock(p)) {
        rc = p->busy ? 1 : -1;
        copy_err(err, errlen, p->err);
    } else {
        remove_part(p);
    }
    results_free(p);
    return rc;
}
