/* Results files: write through experiments/results_h5, read back with the plain HDF5
 * API, and check the crash-safety rule (PATH is only ever a complete file):
 * a commit replaces it, an abort or a killed writer or a full disk leaves it
 * as it was. */
#include <errno.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "results_h5.h"
#include "testutil.h"

/* more than one in-memory buffer (1024 rows) of train records, not a multiple of it */
#define NTRAIN_A 3000
#define NEVAL_A 25
#define NTRAIN_B 1500
#define NEVAL_B 3
/* mean_cost_ratio of run alpha (the others never set it: NaN) */
#define MEAN_CR 0.026763916015625
/* rows of the cost and summary tables of run alpha */
#define NLAYERS 5

static const char *EXP_YAML = "name: unit\nmodel: vgg_small\n# unicode: \xc3\xa9\xe2\x9c\x93\n";
static const char *CFG_A = "lr: 0.1\nepochs: 3\n";
static const char *CFG_B = "lr: 0.05\nepochs: 2\n";

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* the values logged for row i of a run (seeded by run), exactly representable
 * in float64 so that the read-back can compare with == */
static long tr_step(int run, int i) { return 10L * i + run; }
static double tr_loss(int run, int i) { return 2.5 / (1.0 + i) + run; }
static double tr_lr(int run, int i) { return 0.1 * pow(0.999, i) / (run + 1); }
static double tr_time(int run, int i) { return 0.013 * i + run; }
/* precision of row i; run 2 (gamma) logs none, so its columns are NaN */
static double tr_bits(int run, int i) { return 2 + (i + run) % 5; }
static double tr_gbits(int run, int i) { return 8 + run; }
static double tr_cr(int run, int i) { return (tr_bits(run, i) * tr_bits(run, i) + 2 * tr_bits(run, i) * tr_gbits(run, i)) / 3072; }
static long ev_step(int run, int k) { return 100L * k + run; }
static double ev_top1(int run, int k) { return 10.0 + 0.75 * k + run; }
static double ev_loss(int run, int k) { return 2.0 / (k + 1.0); }

/* ---- read-back helpers (plain HDF5 API) ---- */

static int read_str_attr(hid_t obj, const char *name, char *out, size_t len) {
    out[0] = '\0';
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a);
    int rc = -1;
    if (H5Tget_class(ft) == H5T_STRING) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        if (H5Tis_variable_str(ft) > 0) {
            char *s = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(ft));
            if (H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(out, len, "%s", s);
                H5free_memory(s);
                rc = 0;
            }
        } else {
            size_t n = H5Tget_size(ft);
            char *s = calloc(1, n + 1);
            H5Tset_size(mt, n);
            if (H5Aread(a, mt, s) >= 0) snprintf(out, len, "%s", s), rc = 0;
            free(s);
        }
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static double read_num_attr(hid_t obj, const char *name, hid_t *class_out) {
    double v = -12345;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return v;
    hid_t ft = H5Aget_type(a);
    if (class_out) *class_out = H5Tget_class(ft);
    H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Tclose(ft);
    H5Aclose(a);
    return v;
}

/* whole 1-D dataset as double (and its length) */
static double *read_column(hid_t file, const char *path, long *n, int *chunked_unlimited) {
    *n = -1;
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t sp = H5Dget_space(d);
    hsize_t dim = 0, maxdim = 0;
    int nd = H5Sget_simple_extent_dims(sp, &dim, &maxdim);
    hid_t pl = H5Dget_create_plist(d);
    if (chunked_unlimited) *chunked_unlimited = nd == 1 && maxdim == H5S_UNLIMITED && H5Pget_layout(pl) == H5D_CHUNKED;
    double *v = malloc(sizeof(double) * (dim ? dim : 1));
    if (dim > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        free(v);
        v = NULL;
    }
    *n = (long)dim;
    H5Pclose(pl);
    H5Sclose(sp);
    H5Dclose(d);
    return v;
}

/* whole 1-D string dataset; free with free_strs */
static char **read_str_column(hid_t file, const char *path, long *n) {
    *n = -1;
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    hsize_t dim = 0;
    H5Sget_simple_extent_dims(sp, &dim, NULL);
    char **v = NULL;
    if (H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0 && H5Tget_cset(ft) == H5T_CSET_UTF8) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8);
        v = calloc(dim ? dim : 1, sizeof *v);
        if (dim > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            free(v);
            v = NULL;
        }
        H5Tclose(mt);
        *n = (long)dim;
    }
    H5Tclose(ft);
    H5Sclose(sp);
    H5Dclose(d);
    return v;
}

static void free_strs(char **v, long n) {
    for (long i = 0; v && i < n; i++) H5free_memory(v[i]);
    free(v);
}

static int dataset_is_int64(hid_t file, const char *path) {
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t t = H5Dget_type(d);
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 8;
    H5Tclose(t);
    H5Dclose(d);
    return ok;
}

/* ---- writing ---- */

static void log_run(RunLog *r, int run, int ntrain, int neval) {
    int bad = 0, k = 0;
    for (int i = 0; i < ntrain; i++) {
        bad |= runlog_train(r, tr_step(run, i), tr_loss(run, i), tr_lr(run, i), tr_time(run, i)) != 0;
        if (run != 2) bad |= runlog_train_precision(r, tr_bits(run, i), tr_gbits(run, i), tr_cr(run, i)) != 0;
        /* evals interleaved with training, as in a real run: exactly neval of them */
        for (; k < neval && (long)k * ntrain / neval <= i; k++)
            bad |= runlog_val(r, ev_step(run, k), ev_top1(run, k), ev_loss(run, k), 6.0) != 0;
    }
    CHECK(!bad, "run %d: an append failed", run);
}

static void check_run(hid_t file, const char *name, int run, int ntrain, int neval, const char *cfg,
                      const char *status, double final, double best, double wall) {
    char p[256], s[1024];
    snprintf(p, sizeof p, "/runs/%s", name);
    hid_t g = H5Gopen2(file, p, H5P_DEFAULT);
    CHECK(g >= 0, "group %s missing", p);
    if (g < 0) return;
    CHECK(read_str_attr(g, "config", s, sizeof s) == 0 && !strcmp(s, cfg), "%s config \"%s\"", name, s);
    CHECK(read_str_attr(g, "status", s, sizeof s) == 0 && !strcmp(s, status), "%s status \"%s\"", name, s);
    double v;
    v = read_num_attr(g, "final_test_top1", NULL);
    CHECK(isnan(final) ? isnan(v) : v == final, "%s final_top1 %g", name, v);
    v = read_num_attr(g, "paper_best_top1", NULL);
    CHECK(isnan(best) ? isnan(v) : v == best, "%s best_top1 %g", name, v);
    v = read_num_attr(g, "wall_time_s", NULL);
    CHECK(isnan(wall) ? isnan(v) : v == wall, "%s wall_time_s %g", name, v);
    hid_t cls = -1;
    v = read_num_attr(g, "mean_cost_ratio", &cls);
    double want_cr = run == 0 ? MEAN_CR : NAN;
    CHECK((isnan(want_cr) ? isnan(v) : v == want_cr) && cls == H5T_FLOAT, "%s mean_cost_ratio %g", name, v);
    H5Gclose(g);

    const char *tcols[7] = {"step", "loss", "lr", "time_s", "bits", "grad_bits", "cost_ratio"};
    const char *ecols[3] = {"step", "top1", "loss"};
    for (int c = 0; c < 7; c++) {
        snprintf(p, sizeof p, "/runs/%s/train/%s", name, tcols[c]);
        long n;
        int cu = 0;
        double *x = read_column(file, p, &n, &cu);
        CHECK(x && n == ntrain, "%s: length %ld, expected %d", p, n, ntrain);
        CHECK(cu, "%s is not chunked and extendible", p);
        long wrong = 0;
        for (long i = 0; x && i < n && i < ntrain; i++) {
            double want = c == 0 ? (double)tr_step(run, (int)i) : c == 1 ? tr_loss(run, (int)i)
                        : c == 2 ? tr_lr(run, (int)i) : c == 3 ? tr_time(run, (int)i)
                        : run == 2 ? NAN : c == 4 ? tr_bits(run, (int)i) : c == 5 ? tr_gbits(run, (int)i)
                        : tr_cr(run, (int)i);
            wrong += isnan(want) ? !isnan(x[i]) : x[i] != want;
        }
        CHECK(wrong == 0, "%s: %ld wrong values", p, wrong);
        free(x);
    }
    for (int c = 0; c < 3; c++) {
        snprintf(p, sizeof p, "/runs/%s/val/%s", name, ecols[c]);
        long n;
        int cu = 0;
        double *x = read_column(file, p, &n, &cu);
        CHECK(n == neval, "%s: length %ld, expected %d", p, n, neval);
        CHECK(cu, "%s is not chunked and extendible", p);
        long wrong = 0;
        for (long k = 0; x && k < n && k < neval; k++) {
            double want = c == 0 ? (double)ev_step(run, (int)k) : c == 1 ? ev_top1(run, (int)k) : ev_loss(run, (int)k);
            wrong += x[k] != want;
        }
        CHECK(wrong == 0, "%s: %ld wrong values", p, wrong);
        free(x);
    }
    snprintf(p, sizeof p, "/runs/%s/train/step", name);
    CHECK(dataset_is_int64(file, p), "%s is not int64", p);
    snprintf(p, sizeof p, "/runs/%s/val/step", name);
    CHECK(dataset_is_int64(file, p), "%s is not int64", p);
}

/* ---- tables ---- */

static const char *const LNAME[NLAYERS] = {"conv1", "layer1.0.conv1", "layer1.0.bn1", NULL, "fc \xc3\xa9"};
static const char *const LKIND[NLAYERS] = {"conv", "binary_conv", "batchnorm2d", "add", "linear"};
static const char *const LSHAPE[NLAYERS] = {"16x32x32", "16x32x32", "16x32x32", "16x32x32", "10x1x1"};
static int64_t l_fwd(int i) { return (int64_t)1 << (33 + i); } /* beyond 32 bits */
static double l_bw(int i, int which) { return (double)l_fwd(i) * (which + 1) / 1024.0 * 0.5; }

/* cost/ and summary/ of alpha; cost written twice (the second replaces the first) */
static void write_tables(RunLog *a, RunLog *b) {
    int64_t fwd[NLAYERS], ib[NLAYERS], p1[NLAYERS], p32[NLAYERS], m1[NLAYERS], m32[NLAYERS];
    double bw[3][NLAYERS], mem[NLAYERS];
    for (int i = 0; i < NLAYERS; i++) {
        fwd[i] = l_fwd(i);
        for (int w = 0; w < 3; w++) bw[w][i] = l_bw(i, w);
        ib[i] = i == 1 ? 1 : 32;
        p1[i] = i == 1 ? 2304 : 0;
        p32[i] = i == 1 ? 16 : 432 + i;
        mem[i] = p1[i] / 8.0 + 4.0 * p32[i];
        m1[i] = i == 1 ? fwd[i] : 0;
        m32[i] = i == 1 ? 0 : fwd[i];
    }
    /* a first version with different columns and length, replaced below */
    double junk[2] = {1, 2};
    ResultsColumn first[1] = {{"junk", RCOL_FLOAT64, "", junk}};
    CHECK(runlog_table(a, "cost", 2, first, 1) == 0, "first cost table");
    ResultsColumn cost[6] = {
        {"name", RCOL_STRING, "", LNAME},
        {"kind", RCOL_STRING, "", LKIND},
        {"fwd_macs", RCOL_INT64, "MACs per sample", fwd},
        {"fwd_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", bw[0]},
        {"err_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", bw[1]},
        {"wgrad_bitmacs", RCOL_FLOAT64, "fp32-MAC equivalents", bw[2]},
    };
    CHECK(runlog_table(a, "cost", NLAYERS, cost, 6) == 0, "cost table");
    ResultsColumn summary[9] = {
        {"name", RCOL_STRING, "", LNAME},
        {"kind", RCOL_STRING, "", LKIND},
        {"input_bits", RCOL_INT64, "bits", ib},
        {"output_shape", RCOL_STRING, "", LSHAPE},
        {"params_1bit", RCOL_INT64, "parameters", p1},
        {"params_32bit", RCOL_INT64, "parameters", p32},
        {"memory_bytes", RCOL_FLOAT64, "bytes", mem},
        {"macs_1bit", RCOL_INT64, "MACs per sample", m1},
        {"macs_32bit", RCOL_INT64, "MACs per sample", m32},
    };
    CHECK(runlog_table(a, "summary", NLAYERS, summary, 9) == 0, "summary table");
    /* an empty table is a table */
    CHECK(runlog_table(b, "cost", 0, cost, 6) == 0, "empty table");
    /* caller mistakes: refused, and the file stays good (checked by the commit) */
    CHECK(runlog_table(a, "train", NLAYERS, cost, 6) == -1, "table over train/ accepted");
    CHECK(runlog_table(a, "x/y", NLAYERS, cost, 6) == -1, "table name with / accepted");
    ResultsColumn dup[2] = {cost[0], cost[0]};
    CHECK(runlog_table(a, "dup", NLAYERS, dup, 2) == -1, "duplicate column accepted");
    ResultsColumn nodata[1] = {{"x", RCOL_INT64, "", NULL}};
    CHECK(runlog_table(a, "nodata", 1, nodata, 1) == -1, "column without data accepted");
}

static void check_strs(hid_t file, const char *path, const char *const *want, long nwant) {
    long n;
    char **v = read_str_column(file, path, &n);
    CHECK(v && n == nwant, "%s: length %ld (want %ld), or not variable-length UTF-8", path, n, nwant);
    for (long i = 0; v && i < n && i < nwant; i++) {
        const char *w = want[i] ? want[i] : "";
        CHECK(v[i] && !strcmp(v[i], w), "%s[%ld] = \"%s\", want \"%s\"", path, i, v[i] ? v[i] : "(null)", w);
    }
    free_strs(v, n);
}

static void check_nums(hid_t file, const char *path, int is_int, double (*want)(int, int), int arg) {
    long n;
    double *x = read_column(file, path, &n, NULL);
    CHECK(x && n == NLAYERS, "%s: length %ld", path, n);
    long wrong = 0;
    for (long i = 0; x && i < n && i < NLAYERS; i++) wrong += x[i] != want((int)i, arg);
    CHECK(wrong == 0, "%s: %ld wrong values", path, wrong);
    CHECK(dataset_is_int64(file, path) == is_int, "%s: wrong type", path);
    free(x);
}

static double want_fwd(int i, int arg) { (void)arg; return (double)l_fwd(i); }
static double want_bw(int i, int which) { return l_bw(i, which); }
static double want_ib(int i, int arg) { (void)arg; return i == 1 ? 1 : 32; }
static double want_p32(int i, int arg) { (void)arg; return i == 1 ? 16 : 432 + i; }
static double want_mem(int i, int arg) { (void)arg; return (i == 1 ? 2304 / 8.0 : 0) + 4.0 * want_p32(i, 0); }

static void check_tables(hid_t f) {
    check_strs(f, "/runs/alpha/cost/name", LNAME, NLAYERS);
    check_strs(f, "/runs/alpha/cost/kind", LKIND, NLAYERS);
    check_nums(f, "/runs/alpha/cost/fwd_macs", 1, want_fwd, 0);
    check_nums(f, "/runs/alpha/cost/fwd_bitmacs", 0, want_bw, 0);
    check_nums(f, "/runs/alpha/cost/err_bitmacs", 0, want_bw, 1);
    check_nums(f, "/runs/alpha/cost/wgrad_bitmacs", 0, want_bw, 2);
    CHECK(H5Lexists(f, "/runs/alpha/cost/junk", H5P_DEFAULT) == 0, "the replaced cost table is still there");
    check_strs(f, "/runs/alpha/summary/name", LNAME, NLAYERS);
    check_strs(f, "/runs/alpha/summary/output_shape", LSHAPE, NLAYERS);
    check_nums(f, "/runs/alpha/summary/input_bits", 1, want_ib, 0);
    check_nums(f, "/runs/alpha/summary/params_32bit", 1, want_p32, 0);
    check_nums(f, "/runs/alpha/summary/memory_bytes", 0, want_mem, 0);
    hid_t d = H5Dopen2(f, "/runs/alpha/summary/memory_bytes", H5P_DEFAULT);
    char s[64] = "";
    CHECK(d >= 0 && read_str_attr(d, "units", s, sizeof s) == 0 && !strcmp(s, "bytes"), "units \"%s\"", s);
    if (d >= 0) H5Dclose(d);
    const char *cols[] = {"kind", "params_1bit", "macs_1bit", "macs_32bit"};
    for (int i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof p, "/runs/alpha/summary/%s", cols[i]);
        CHECK(H5Lexists(f, p, H5P_DEFAULT) > 0, "%s missing", p);
    }
    long n;
    double *x = read_column(f, "/runs/beta/cost/fwd_bitmacs", &n, NULL);
    CHECK(n == 0, "empty table: length %ld", n);
    free(x);
    char **e = read_str_column(f, "/runs/beta/cost/name", &n);
    CHECK(n == 0, "empty string column: length %ld", n);
    free_strs(e, n);
    CHECK(H5Lexists(f, "/runs/alpha/dup", H5P_DEFAULT) == 0 && H5Lexists(f, "/runs/alpha/nodata", H5P_DEFAULT) == 0,
          "a refused table left a group");
    CHECK(H5Lexists(f, "/runs/gamma/cost", H5P_DEFAULT) == 0, "gamma has no tables");
}

/* The committed file of test_commit, read back completely. */
static void check_file(const char *path, const char *experiment) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "cannot reopen %s", path);
    if (f < 0) return;
    char s[1024];
    hid_t cls = -1;
    CHECK(read_num_attr(f, "schema_version", &cls) == RESULTS_SCHEMA_VERSION && cls == H5T_INTEGER, "schema_version");
    CHECK(read_num_attr(f, "omp_threads", &cls) == 3 && cls == H5T_INTEGER, "omp_threads");
    CHECK(read_str_attr(f, "experiment", s, sizeof s) == 0 && !strcmp(s, experiment), "experiment \"%s\"", s);
    CHECK(read_str_attr(f, "experiment_yaml", s, sizeof s) == 0 && !strcmp(s, EXP_YAML), "experiment_yaml \"%s\"", s);
    const char *nonempty[] = {"git_revision", "compiler", "build", "cpu_model"};
    for (int i = 0; i < 4; i++) {
        CHECK(read_str_attr(f, nonempty[i], s, sizeof s) == 0 && s[0], "%s empty or missing", nonempty[i]);
        printf("  %-13s %s\n", nonempty[i], s);
    }
    CHECK(read_str_attr(f, "start_time", s, sizeof s) == 0, "start_time missing");
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    CHECK(end && *end == '\0', "start_time \"%s\" is not ISO 8601 UTC", s);
    if (end) {
        double age = difftime(time(NULL), timegm(&tm));
        CHECK(age >= -2 && age < 600, "start_time %s is %g s away from now", s, age);
    }

    check_run(f, "alpha", 0, NTRAIN_A, NEVAL_A, CFG_A, "complete", 91.25, 92.5, 123.5);
    check_run(f, "beta", 1, NTRAIN_B, NEVAL_B, CFG_B, "failed", 12.5, 15.0, 7.25);
    /* never ended: flushed at close, still "running", finals NaN */
    check_run(f, "gamma", 2, 10, 1, "", "running", NAN, NAN, NAN);
    check_tables(f);
    H5Fclose(f);
}

static void write_committed(const char *path, const char *experiment) {
    char err[1024] = "", tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ResultsFile *f = results_create(path, experiment, EXP_YAML, 3, err, sizeof err);
    CHECK(f != NULL, "results_create: %s", err);
    if (!f) return;
    CHECK(exists(tmp), "%s not created", tmp);
    RunLog *a = results_run_begin(f, "alpha", CFG_A);
    RunLog *b = results_run_begin(f, "beta", CFG_B);
    CHECK(a && b, "run_begin");
    if (!a || !b) return;
    CHECK(results_run_begin(f, "alpha", CFG_A) == NULL, "duplicate run name accepted");
    CHECK(results_run_begin(f, "a/b", CFG_A) == NULL, "run name with / accepted");
    log_run(a, 0, NTRAIN_A / 2, NEVAL_A / 2);
    log_run(b, 1, NTRAIN_B, NEVAL_B);
    CHECK(results_flush(f) == 0, "results_flush");
    /* the rest of alpha, continuing the same row numbering; a flush between
     * runlog_train and runlog_train_precision (the row is then in the file) */
    int bad = 0;
    for (int i = NTRAIN_A / 2; i < NTRAIN_A; i++) {
        bad |= runlog_train(a, tr_step(0, i), tr_loss(0, i), tr_lr(0, i), tr_time(0, i)) != 0;
        if (i == NTRAIN_A / 2 || i == NTRAIN_A - 1) bad |= results_flush(f) != 0;
        bad |= runlog_train_precision(a, tr_bits(0, i), tr_gbits(0, i), tr_cr(0, i)) != 0;
    }
    CHECK(runlog_mean_cost_ratio(a, MEAN_CR) == 0, "runlog_mean_cost_ratio");
    write_tables(a, b);
    for (int k = NEVAL_A / 2; k < NEVAL_A; k++) bad |= runlog_val(a, ev_step(0, k), ev_top1(0, k), ev_loss(0, k), 6.0) != 0;
    CHECK(!bad, "appends after flush");
    CHECK(!exists(path) || strstr(path, "replace"), "%s exists before commit", path);
    CHECK(runlog_end(a, "complete", 91.25, 92.5, 123.5) == 0, "runlog_end alpha");
    CHECK(runlog_end(b, "failed", 12.5, 15.0, 7.25) == 0, "runlog_end beta");
    RunLog *g = results_run_begin(f, "gamma", "");
    CHECK(g != NULL, "run_begin gamma");
    /* no row yet: refused, and not an error of the file */
    CHECK(g && runlog_train_precision(g, 2, 8, 0.1) == -1, "runlog_train_precision before runlog_train accepted");
    if (g) log_run(g, 2, 10, 1);
    CHECK(results_close(f, 1, err, sizeof err) == 0, "results_close commit: %s", err);
    CHECK(exists(path), "%s missing after commit", path);
    CHECK(!exists(tmp), "%s left behind after commit", tmp);
}

/* ---- the tests ---- */

static void test_commit(const char *root, char *path, size_t len) {
    /* results/ does not exist yet: results_create makes it */
    snprintf(path, len, "%s/results/unit.h5", root);
    write_committed(path, "unit");
    check_file(path, "unit");

    /* the two readers results/README.md promises; their packages (hdf5-tools,
     * python3-h5py) are installed by scripts/bootstrap.sh, so their absence is
     * a failure, not a skip */
    CHECK(system("command -v h5dump >/dev/null 2>&1") == 0, "h5dump not found (Debian package hdf5-tools)");
    {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "h5dump -A '%s' >/dev/null", path);
        int st = system(cmd);
        CHECK(st == 0, "h5dump -A %s exited with %d", path, st);
    }
    /* h5py must see the strings as str, not bytes (why they are variable-length) */
    CHECK(system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") == 0,
          "/usr/bin/python3 cannot import h5py (Debian package python3-h5py)");
    {
        char cmd[2000];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import h5py,sys; f=h5py.File('%s','r'); "
                 "assert isinstance(f.attrs['experiment'], str) and f.attrs['experiment']=='unit'; "
                 "assert isinstance(f['runs/alpha'].attrs['status'], str); "
                 "assert f['runs/alpha/val/top1'].shape==(%d,); assert f.attrs['schema_version']==%d; "
                 "assert list(f['runs/alpha/cost/name'].asstr()[:3])==['conv1','layer1.0.conv1','layer1.0.bn1']; "
                 "assert f['runs/alpha/train/bits'].shape==(%d,); "
                 "assert abs(f['runs/alpha'].attrs['mean_cost_ratio']-0.026763916015625)<1e-15\"",
                 path, NEVAL_A, RESULTS_SCHEMA_VERSION, NTRAIN_A);
        int st = system(cmd);
        CHECK(st == 0, "h5py read-back failed (%d)", st);
    }
}

static void test_abort(const char *root) {
    char path[1024], tmp[1100], err[1024] = "";
    snprintf(path, sizeof path, "%s/aborted.h5", root);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ResultsFile *f = results_create(path, "aborted", "", 1, err, sizeof err);
    CHECK(f != NULL, "create: %s", err);
    if (!f) return;
    RunLog *r = results_run_begin(f, "r", "");
    if (r) log_run(r, 0, 2000, 2);
    CHECK(results_close(f, 0, err, sizeof err) == 0, "close(commit=0): %s", err);
    CHECK(!exists(path), "commit=0 left %s", path);
    CHECK(!exists(tmp), "commit=0 left %s", tmp);
}

static void test_bad_dir(const char *root) {
    char blocker[1024], path[1200], err[1024] = "";
    snprintf(blocker, sizeof blocker, "%s/blocker", root);
    FILE *fp = fopen(blocker, "w");
    CHECK(fp != NULL, "fopen %s", blocker);
    if (fp) fclose(fp);
    /* a regular file where a directory should be: fails even for root */
    snprintf(path, sizeof path, "%s/sub/x.h5", blocker);
    ResultsFile *f = results_create(path, "x", "", 1, err, sizeof err);
    CHECK(f == NULL, "results_create under a regular file succeeded");
    CHECK(strstr(err, "blocker") != NULL, "message does not name the directory: %s", err);
    printf("  bad directory -> %s\n", err);
    if (f) results_close(f, 0, err, sizeof err);
}

/* A writer killed mid-run (no close): PATH must be what it was before. */
static void test_killed(const char *root, const char *committed) {
    char fresh[1024];
    snprintf(fresh, sizeof fresh, "%s/killed_fresh.h5", root);
    const char *targets[2] = {committed, fresh};
    for (int t = 0; t < 2; t++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            char err[1024];
            ResultsFile *f = results_create(targets[t], "killed", "", 1, err, sizeof err);
            if (!f) _exit(3);
            RunLog *r = results_run_begin(f, "alpha", "lr: 1\n");
            if (!r) _exit(4);
            for (int i = 0; i < 5000; i++) runlog_train(r, i, 1.0, 0.1, i);
            results_flush(f);
            for (int i = 0; i < 100; i++) runlog_train(r, i, 1.0, 0.1, i);
            _exit(1); /* no results_close: as if killed */
        }
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 1, "child status %d", st);
    }
    /* the earlier complete file is untouched and still reads back entirely */
    check_file(committed, "unit");
    CHECK(!exists(fresh), "%s exists after a killed first run", fresh);
}

/* A full disk (simulated with RLIMIT_FSIZE: writes past it fail with EFBIG
 * like ENOSPC would): results_close(commit) must fail with a message, remove
 * PATH.tmp and leave PATH as it was. Runs in a child so the limit stays there. */
static void test_disk_full(const char *root, const char *committed) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 * 1024, 64 * 1024};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
        char err[1024] = "", tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", committed);
        ResultsFile *f = results_create(committed, "full", "", 1, err, sizeof err);
        if (!f) _exit(11);
        RunLog *r = results_run_begin(f, "alpha", "");
        if (!r) _exit(12);
        Rng g = rng_stream(1, RNG_TEST, 0, 0);
        int append_failed = 0;
        /* random doubles do not compress: ~1.6 MB of data into a 64 KiB limit */
        for (int i = 0; i < 50000; i++)
            append_failed |= runlog_train(r, i, rng_uniform(&g), rng_uniform(&g), rng_uniform(&g)) != 0;
        runlog_end(r, "complete", 1, 1, 1);
        int rc = results_close(f, 1, err, sizeof err);
        fprintf(stderr, "  disk full -> close returned %d (appends %s): %s\n", rc,
                append_failed ? "failed too" : "succeeded", err);
        if (rc != -1) _exit(13);
        if (!strstr(err, "File too large") && !strstr(err, "errno")) _exit(14);
        if (exists(tmp)) _exit(15);
        _exit(0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "disk-full child: status %d (exit %d)",
          st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    check_file(committed, "unit");
}


/* ---- issue 12: the lock protocol, and what may stand at PATH ---- */

/* Session B stalls between open(PATH.lock) and flock() (results_fault_hook
 * "lock-opened"), while session A, which holds the lock, finishes (it unlinks
 * PATH.lock) and session C starts (it creates and locks a new PATH.lock).
 * B then locks the unlinked inode; before the fix it went on as a second
 * writer beside C. It must be refused as "in use", with busy set. */
static int g_stall_in = -1, g_stall_out = -1;
static void stall_hook(const char *where) {
    if (strcmp(where, "lock-opened") || g_stall_in < 0) return;
    char c = 'o';
    if (write(g_stall_out, &c, 1) != 1) _exit(20);   /* "I have opened the old lock" */
    if (read(g_stall_in, &c, 1) != 1) _exit(21);     /* wait for A to end and C to start */
    g_stall_in = -1;                                 /* a retry does not stall again */
}

static void test_lock_interleaving(const char *root) {
    char path[1024], err[1024] = "";
    snprintf(path, sizeof path, "%s/lockrace.h5", root);
    int to_b[2], from_b[2], result[2];
    if (pipe(to_b) || pipe(from_b) || pipe(result)) {
        CHECK(0, "pipe: %s", strerror(errno));
        return;
    }
    /* B is forked before A exists: a child forked later would inherit A's
     * locked descriptor, and with it A's flock */
    fflush(NULL);
    pid_t b = fork();
    if (b == 0) {
        close(to_b[1]);
        close(from_b[0]);
        close(result[0]);
        char c;
        if (read(to_b[0], &c, 1) != 1) _exit(23);        /* A holds the lock now */
        g_stall_in = to_b[0];
        g_stall_out = from_b[1];
        results_fault_hook = stall_hook;
        ResultsOpenArgs oa = {.path = path, .experiment = "race", .experiment_yaml = "", .omp_threads = 1};
        char berr[1024] = "";
        ResultsFile *f = results_open_args(&oa, berr, sizeof berr);
        /* report: 'W' = B became a writer (the defect), 'B' = refused as busy, 'E' = another error */
        char verdict = f ? 'W' : (oa.busy && strstr(berr, "another cyclebnn session is writing") ? 'B' : 'E');
        if (write(result[1], &verdict, 1) != 1) _exit(22);
        if (f) results_close(f, 0, berr, sizeof berr);
        _exit(0);
    }
    close(to_b[0]);
    close(from_b[1]);
    close(result[1]);
    ResultsFile *a = results_create(path, "race", "", 1, err, sizeof err);
    CHECK(a != NULL, "session A: %s", err);
    char c = 's';
    CHECK(write(to_b[1], &c, 1) == 1, "starting session B");
    c = 0;
    CHECK(read(from_b[0], &c, 1) == 1 && c == 'o', "session B did not reach the lock");
    /* A ends: its lock file is unlinked while held, then released */
    if (a) CHECK(results_close(a, 1, err, sizeof err) == 0, "session A close: %s", err);
    /* C starts: a new PATH.lock */
    ResultsFile *cs = results_open(path, "race", "", 1, 0, err, sizeof err);
    CHECK(cs != NULL, "session C: %s", err);
    c = 'g';
    CHECK(write(to_b[1], &c, 1) == 1, "releasing session B");
    char verdict = 0;
    CHECK(read(result[0], &verdict, 1) == 1, "no verdict from session B");
    CHECK(verdict == 'B', "session B after the interleaving: %s",
          verdict == 'W' ? "became a second writer beside session C (two holders of one lock)"
                         : "failed with another error than 'in use'");
    int st = 0;
    waitpid(b, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "session B exit status %d", st);
    if (cs) CHECK(results_close(cs, 1, err, sizeof err) == 0, "session C close: %s", err);
    close(to_b[1]);
    close(from_b[0]);
    close(result[0]);
    /* with no session left, a lock file would only be litter */
    char lock[1100];
    snprintf(lock, sizeof lock, "%s.lock", path);
    CHECK(!exists(lock), "%s left behind", lock);
}

/* one line, naming the path the user gave */
static void expect_open_error(const char *what, const char *path, int fresh, const char *want) {
    char err[1024] = "";
    ResultsFile *f = results_open(path, "x", "", 1, fresh, err, sizeof err);
    CHECK(f == NULL, "%s: opened", what);
    if (f) results_close(f, 0, err, sizeof err);
    CHECK(strstr(err, want) != NULL, "%s: got \"%s\", want \"%s\"", what, err, want);
    CHECK(strchr(err, '\n') == NULL, "%s: the message is more than one line", what);
    char ro[1024] = "";
    if (!fresh) {
        ResultsFile *r = results_open_readonly(path, ro, sizeof ro);
        CHECK(r == NULL && strstr(ro, want), "%s, read-only: got \"%s\"", what, ro);
        if (r) results_close(r, 0, ro, sizeof ro);
    }
    printf("  %s -> %s\n", what, err);
}

static void test_what_is_at_path(const char *root) {
    char path[1024], msg[1400], err[1024] = "";
    /* a directory: named as such, not "cannot copy it to X.h5.tmp"; not even --fresh may replace it */
    snprintf(path, sizeof path, "%s/adir.h5", root);
    mkdir(path, 0777);
    snprintf(msg, sizeof msg, "results %s: is a directory, not a results file", path);
    expect_open_error("a directory at PATH", path, 0, msg);
    expect_open_error("a directory at PATH (fresh)", path, 1, msg);
    /* an empty file: not "schema version -1" */
    snprintf(path, sizeof path, "%s/empty.h5", root);
    fclose(fopen(path, "w"));
    snprintf(msg, sizeof msg, "results %s: is empty (0 bytes), not a results file", path);
    expect_open_error("an empty file at PATH", path, 0, msg);
    /* ... which --fresh replaces */
    ResultsFile *f = results_open(path, "x", "", 1, 1, err, sizeof err);
    CHECK(f != NULL, "--fresh over an empty file: %s", err);
    if (f) CHECK(results_close(f, 1, err, sizeof err) == 0, "close: %s", err);
    /* an HDF5 file that is not ours */
    snprintf(path, sizeof path, "%s/foreign.h5", root);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(h);
    expect_open_error("a foreign HDF5 file", path, 0, "without a schema_version attribute, not a cyclebnn results file");
    /* a dangling symlink */
    snprintf(path, sizeof path, "%s/dangling.h5", root);
    CHECK(symlink("nowhere/x.h5", path) == 0, "symlink: %s", strerror(errno));
    expect_open_error("a dangling symlink", path, 0, "is a symbolic link to 'nowhere/x.h5', which cannot be followed");
}

/* results/X.h5 a symlink to a file elsewhere: a commit must update the
 * target (it used to replace the link with a regular file) */
static void test_symlink(const char *root) {
    char target_dir[1024], target[1100], link[1024], err[1024] = "";
    snprintf(target_dir, sizeof target_dir, "%s/store", root);
    mkdir(target_dir, 0777);
    snprintf(target, sizeof target, "%s/real.h5", target_dir);
    snprintf(link, sizeof link, "%s/linked.h5", root);
    write_committed(target, "unit");
    CHECK(symlink(target, link) == 0, "symlink: %s", strerror(errno));
    ResultsFile *f = results_open(link, "unit", EXP_YAML, 1, 0, err, sizeof err);
    CHECK(f != NULL, "open through the link: %s", err);
    if (!f) return;
    RunLog *r = results_run_begin(f, "added", "x: 1\n");
    CHECK(r != NULL, "begin through the link");
    if (r) runlog_end(r, "complete", 1, 1, 1);
    CHECK(results_commit(f, err, sizeof err) == 0, "commit through the link: %s", err);
    CHECK(results_close(f, 1, err, sizeof err) == 0, "close through the link: %s", err);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link was replaced by a regular file");
    ResultsFile *ro = results_open_readonly(target, err, sizeof err);
    CHECK(ro != NULL, "reopen the target: %s", err);
    if (ro) {
        RunInfo ri;
        results_run_info(ro, "added", &ri);
        CHECK(ri.exists && !strcmp(ri.status, "complete"), "the target did not get the new run");
        run_info_free(&ri);
        results_close(ro, 0, err, sizeof err);
    }
    char stray[1200];
    snprintf(stray, sizeof stray, "%s.tmp", link);
    CHECK(!exists(stray), "a working copy beside the link");
}

/* --fresh --only: the named runs go, the others stay whole (first_start_time too) */
static int drop_b(const char *run, void *ctx) {
    (void)ctx;
    return !strcmp(run, "beta");
}

static void test_reset_some(const char *root, const char *committed) {
    char path[1024], err[1024] = "";
    snprintf(path, sizeof path, "%s/reset.h5", root);
    write_committed(path, "unit");
    ResultsOpenArgs oa = {.path = path, .experiment = "unit", .experiment_yaml = EXP_YAML, .omp_threads = 1,
                          .reset = drop_b};
    ResultsFile *f = results_open_args(&oa, err, sizeof err);
    CHECK(f != NULL, "reset open: %s", err);
    if (!f) return;
    RunInfo ri;
    results_run_info(f, "beta", &ri);
    CHECK(!ri.exists, "the reset run is still there");
    run_info_free(&ri);
    results_run_info(f, "alpha", &ri);
    CHECK(ri.exists && !strcmp(ri.status, "complete"), "the kept run lost its state");
    run_info_free(&ri);
    RunLog *r = results_run_begin(f, "beta", CFG_B);   /* what the driver does next */
    CHECK(r != NULL, "beta begins again");
    if (r) runlog_end(r, "complete", 1, 1, 1);
    CHECK(results_close(f, 1, err, sizeof err) == 0, "close: %s", err);
    (void)committed;
    /* the kept runs read back exactly as written; beta is the new one */
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(h >= 0, "reopen %s", path);
    if (h < 0) return;
    check_run(h, "alpha", 0, NTRAIN_A, NEVAL_A, CFG_A, "complete", 91.25, 92.5, 123.5);
    check_run(h, "gamma", 2, 10, 1, "", "running", NAN, NAN, NAN);
    check_strs(h, "/runs/alpha/cost/name", LNAME, NLAYERS);
    check_nums(h, "/runs/alpha/summary/memory_bytes", 0, want_mem, 0);
    CHECK(H5Lexists(h, "/runs/beta/cost", H5P_DEFAULT) == 0, "the reset run kept its old tables");
    H5Fclose(h);
}

/* A second commit over an existing complete file replaces it atomically. */
static void test_replace(const char *root) {
    char path[1024];
    snprintf(path, sizeof path, "%s/replace.h5", root);
    write_committed(path, "first");
    write_committed(path, "second");
    check_file(path, "second");
}

int main(void) {
    const char *tmpenv = getenv("TMPDIR");
    char root[512], committed[1024];
    snprintf(root, sizeof root, "%s/cbnn_results_XXXXXX", tmpenv && *tmpenv ? tmpenv : "/tmp");
    if (!mkdtemp(root)) {
        CHECK(0, "mkdtemp %s: %s", root, strerror(errno));
        return tu_finish("results_h5");
    }
    test_commit(root, committed, sizeof committed);
    test_abort(root);
    test_bad_dir(root);
    test_killed(root, committed);
    test_disk_full(root, committed);
    test_replace(root);
    test_lock_interleaving(root);
    test_what_is_at_path(root);
    test_symlink(root);
    test_reset_some(root, committed);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    H5close(); /* HDF5's global state, so LeakSanitizer reports only real leaks */
    return tu_finish("results_h5");
}
