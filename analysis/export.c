/* cbnn_export: results/<experiment>.h5 (schema v4, results/README.md) -> plain
 * text for gnuplot and Markdown tables.
 *
 *   cbnn_export [--out DIR] [--md-dir DIR] RESULTS.h5 [RESULTS.h5 ...]
 *   cbnn_export [--out DIR] --paper
 *
 * For each file, with K its name without .h5 (results/X_old.h5: K = X_old, so
 * that a copy of an experiment's file never overwrites the original's
 * outputs), it writes into DIR/K/ (DIR defaults to plots/out/data):
 *   runs.csv                one row per run, in the order of the experiment's grid
 *   <file>.train.dat        # step loss lr bits grad_bits cost_ratio top1
 *   <file>.val.dat          # step top1 loss bits: the periodic evaluations, from val/ (from test/
 *                           when the run has no validation split: runs.csv says which, curve_split)
 *   <file>.test.dat         # step top1 loss bits role fixed: every test/ row
 *   <file>.landscape.dat    # alpha beta loss top1 flips  (N x N, blank line after every N rows)
 *   <file>.landscape1d.dat  # alpha loss top1 flips
 *                           (only a landscape of the run's checkpoint now: one of other
 *                           weights, e.g. computed before the run was resumed, is stale
 *                           and left out with a warning naming the run and both steps)
 *   groups.csv              per configuration (complete runs): mean, sd, 95 % t-interval and
 *                           olympic mean of the test top-1s, the paired difference against the
 *                           YAML's compare_to, time to the YAML's target_top1 (experiments/stats.h)
 *   efficiency.csv/.md      bit-MACs per phase vs fp32, a memory estimate, measured time and RSS
 * and MDDIR/K.md (MDDIR defaults to results/): the comparison table, which is
 * also printed on stdout. --paper writes DIR/paper_arithmetic.md: the
 * arithmetic behind the paper's reductions (method.md 6), computed here.
 * The column definitions are in analysis/README.md.
 *
 * Every file is read and checked completely before anything is written, and
 * every output is written to NAME.tmp and renamed over NAME, so an error
 * leaves no partial output behind. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "experiments/config.h"
#include "experiments/detect_run.h"
#include "experiments/stats.h"
#include "h5_attr.h"
#include "model.h"
#include "precision.h"
#include "train_run.h"

#define ERRLEN 2048

/* ------------------------------------------------------------------ data */

typedef struct {
    size_t n;
    int64_t *step;
    double *loss, *lr, *time_s, *bits, *grad_bits, *cost_ratio, *top1;
} TrainRows;

/* val/ rows, or the periodic test/ rows of a run without a validation split */
typedef struct {
    size_t n;
    int64_t *step;
    double *top1, *loss, *bits;
} EvalRows;

typedef struct {
    size_t n;
    int64_t *step, *role, *fixed;
    double *top1, *loss, *bits;
} TestRows;

typedef struct {
    size_t n;
    char **name, **kind;
    int64_t *fwd_macs;
    double *fwd, *err, *wgrad;
} CostTable;

typedef struct {
    int present;                  /* read and fresh: written out */
    long checkpoint_step;         /* the step of the weights it was computed on (-1: not recorded) */
    size_t n;
    long grid_n; /* 2-D only */
    double *alpha, *beta, *loss, *top1, *flips;
} Landscape;

typedef struct {
    int ok;                       /* computed (complete run with a cost/ table) */
    int model_matched;            /* the cost/ rows are the layers of the rebuilt model */
    long iterations, batch;
    double samples;               /* iterations x batch */
    double bit[3], fp[3];         /* fwd, err, wgrad: bit-weighted and fp32 MACs */
    double bit_total, fp_total, ratio, reduction_pct;
    int peak_bits, peak_grad_bits;
    double params, mem_state, mem_act_fp32, mem_act_est, mem_err_fp32, mem_err_est, mem_fp32, mem_est, mem_ratio;
} Efficiency;

/* The run attributes summarised over seeds (results/README.md, "Statistics
 * over seeds"); M_SEL is the number to report. */
enum { M_SEL, M_FINAL, M_PAPER, M_SEL_FIXED, M_FINAL_FIXED, M_N };
static const char *const METRIC[M_N] = {"test_top1_at_selected", "final_test_top1", "paper_best_top1",
                                        "test_top1_at_selected_fixed", "final_test_top1_fixed"};
#define LEVEL 0.95 /* of every interval */

/* How a time-to-accuracy's seconds were found (tta_rule, below). */
typedef enum { TTA_NONE = 0, TTA_LOGGED, TTA_INTERPOLATED, TTA_EARLIER } TtaRule;
static const char *const TTA_RULE[] = {"", "logged", "interpolated", "earlier row"};

typedef struct {
    char *name;
    char file[CFG_RUN_NAME];
    char *group;
    int group_index;
    int group_row;                /* its group's row in groups.csv (0-based), -1 = not listed */
    char status[32];
    long checkpoint_step;         /* of its complete checkpoint now, -1 = none */
    char *config;
    RunConfig c;
    double metric[M_N];           /* the run attributes of METRIC */
    double val_top1_at_selected, selected_step, eval_bits_fixed, val_split;
    double mean_cost_ratio, bit_macs, fp32_macs, wall_time_s, images_per_s, peak_rss_bytes;
    /* measured training arenas (issue 17): the run's, its fp32 twin's, the ratio; mode lean/fast ("" = before) */
    double train_mem, train_mem_fp32, train_mem_ratio;
    char train_memory[8];
    TrainRows tr;
    EvalRows ev;                  /* the periodic evaluations (the training curve) */
    int ev_on_test;               /* 1: they are test/ rows (val_split 0), 0: val/ rows */
    TestRows te;
    int has_cost;
    CostTable cost;
    Landscape ls2, ls1;
    Efficiency eff;
    int tta;                      /* time to accuracy: 1 reached, 0 not, -1 not computed (no target, not complete) */
    double tta_steps, tta_s;
    TtaRule tta_rule;
} Run;

typedef struct {
    char *name;
    int first_run;                /* index of its first run (for the config columns) */
    int n;                        /* complete runs */
    int n_all;
    SeedStats st[M_N];            /* over its complete runs' metric[] */
    int is_ref;                   /* it is the experiment's compare_to */
    PairedStats diff;             /* test_top1_at_selected minus compare_to's, seed by seed (n = 0: none) */
    int tta_reached;              /* complete runs that reached target_top1 */
    SeedStats tta_steps, tta_s;   /* over those */
    double eval_bits_fixed;       /* of its first complete run (NaN: not cyclic) */
    int curve_on_test;            /* some run's periodic evaluations are on the test set (val_split 0) */
    double cr, bit_macs, fp32_macs, wall, rss, mem_est;
    double eff_bit;               /* mean cost/ sum (efficiency), the reference for ratios */
} Group;

typedef struct {
    const char *path;
    char key[256];                /* the file's name without .h5: names its outputs */
    int schema;
    char *experiment, *start_time, *first_start_time, *cpu_model, *git_revision, *yaml, *build, *compiler;
    int omp_threads;
    char compare_to[CFG_RUN_NAME]; /* the YAML's compare_to: ("" none) */
    double target_top1;           /* the YAML's target_top1 (0 none) */
    int cmp_group;                /* compare_to's group, -1 = none in the file */
    int stats_ok;                 /* experiments/stats.c answered (it returns -1 before it is built) */
    Run *runs;
    int n_runs;
    Group *groups;
    int n_groups;
    int ref_group;                /* the full-precision group, -1 = none */
    int grid_order;               /* run order from experiment_yaml (else by name) */
} ExpFile;

static void warnf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cbnn_export: warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static int errf(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ERRLEN, fmt, ap);
    va_end(ap);
    return -1;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "cbnn_export: out of memory\n");
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s) {
    char *p = strdup(s ? s : "");
    if (!p) {
        fprintf(stderr, "cbnn_export: out of memory\n");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------ formatting */

/* The shortest decimal that reads back as the same double (%.15g, %.16g or
 * %.17g); nan, inf and -inf for the others. */
static const char *num(char *buf, double v) {
    if (isnan(v)) return strcpy(buf, "nan");
    if (isinf(v)) return strcpy(buf, v > 0 ? "inf" : "-inf");
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, 32, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

#define NUM(v) num((char[32]){0}, (v))

/* a number for a Markdown table: printf format, or "–" for NaN */
static const char *mdnum(char *buf, const char *fmt, double v) {
    if (isnan(v)) return "–";
    snprintf(buf, 48, fmt, v);
    return buf;
}

#define MD(fmt, v) mdnum((char[48]){0}, (fmt), (v))

/* a CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180) */
static void csv_field(FILE *o, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, o);
        return;
    }
    fputc('"', o);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', o);
        fputc(*p, o);
    }
    fputc('"', o);
}

/* run name -> file stem: every character outside [A-Za-z0-9_.-] becomes '_' */
static void file_stem(const char *name, char *out, size_t cap) {
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++) {
        char ch = name[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                 ch == '.' || ch == '-';
        out[i] = ok ? ch : '_';
    }
    out[i] = 0;
}

/* ---------------------------------------------------------- output files */

/* An output file: written to PATH.tmp, renamed over PATH by out_close. */
typedef struct {
    FILE *f;
    char path[4096], tmp[4200];
} Out;

static int out_open(Out *o, const char *path, char *err) {
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    o->f = fopen(o->tmp, "w");
    if (!o->f) return errf(err, "%s: cannot create: %s", o->tmp, strerror(errno));
    return 0;
}

static int out_close(Out *o, char *err) {
    int bad = ferror(o->f);
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad) {
        int e = errno;
        remove(o->tmp);
        return errf(err, "%s: write failed: %s", o->tmp, strerror(e));
    }
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        remove(o->tmp);
        return errf(err, "%s: cannot rename to %s: %s", o->tmp, o->path, strerror(e));
    }
    return 0;
}

/* an output path: DIR/NAME built with a format; an error if it does not fit */
static int path_fmt(char *out, size_t cap, char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) return errf(err, "output path too long: %.200s...", out);
    return 0;
}

static int mkdir_p(const char *dir, char *err) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    size_t len = strlen(buf);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char keep = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return errf(err, "%s: cannot create directory: %s", buf,
                                                                        strerror(errno));
            buf[i] = keep;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return errf(err, "%s: not a directory", dir);
    return 0;
}

/* ------------------------------------------------------------ HDF5 reads */


/* Length of a 1-D dataset g/name: -1 if absent, -2 if unreadable. */
static long col_len(hid_t g, const char *name) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return -2;
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[1] = {0};
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return rank == 1 ? (long)dims[0] : -2;
}

/* Read the 1-D column g/name of n rows as memtype into buf (converted by HDF5). */
static int col_read(hid_t g, const char *name, hid_t memtype, void *buf, size_t n) {
    if (n == 0) return 0;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    int rc = H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    H5Dclose(ds);
    return rc;
}

/* A numeric column of exactly n rows as doubles; absent and optional = NaN. */
static int col_double(hid_t g, const char *grp, const char *name, size_t n, int optional, double **out, char *err,
                      const char *where) {
    *out = xcalloc(n, sizeof **out);
    long len = col_len(g, name);
    if (len == -1 && optional) {
        for (size_t i = 0; i < n; i++) (*out)[i] = NAN;
        return 0;
    }
    if (len < 0) return errf(err, "%s: %s/%s is missing or unreadable", where, grp, name);
    if ((size_t)len != n)
        return errf(err, "%s: %s/%s has %ld rows, %s/%s has %zu", where, grp, name, len, grp, "step", n);
    if (col_read(g, name, H5T_NATIVE_DOUBLE, *out, n)) return errf(err, "%s: cannot read %s/%s", where, grp, name);
    return 0;
}

static int col_i64(hid_t g, const char *grp, const char *name, size_t n, int64_t **out, char *err,
                   const char *where) {
    *out = xcalloc(n, sizeof **out);
    if (col_read(g, name, H5T_NATIVE_INT64, *out, n)) return errf(err, "%s: cannot read %s/%s", where, grp, name);
    return 0;
}

static int col_str(hid_t g, const char *grp, const char *name, size_t n, char ***out, char *err, const char *where) {
    *out = xcalloc(n, sizeof **out);
    if (n == 0) return 0;
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds < 0) return errf(err, "%s: %s/%s is missing", where, grp, name);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char **tmp = xcalloc(n, sizeof *tmp);
    int rc = 0;
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) < 0) {
        rc = errf(err, "%s: cannot read %s/%s as strings", where, grp, name);
    } else {
        for (size_t i = 0; i < n; i++) (*out)[i] = xstrdup(tmp[i]);
        hid_t sp = H5Dget_space(ds);
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, tmp);
        H5Sclose(sp);
    }
    free(tmp);
    H5Tclose(mt);
    H5Dclose(ds);
    return rc;
}

static int read_train(hid_t run, TrainRows *t, char *err, const char *where) {
    memset(t, 0, sizeof *t);
    if (H5Lexists(run, "train", H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(run, "train", H5P_DEFAULT);
    if (g < 0) return errf(err, "%s: cannot open train/", where);
    long n = col_len(g, "step");
    int rc = 0;
    if (n < 0) rc = errf(err, "%s: train/step is missing or unreadable", where);
    if (!rc) {
        t->n = (size_t)n;
        rc = col_i64(g, "train", "step", t->n, &t->step, err, where);
        if (!rc) rc = col_double(g, "train", "loss", t->n, 0, &t->loss, err, where);
        if (!rc) rc = col_double(g, "train", "lr", t->n, 0, &t->lr, err, where);
        if (!rc) rc = col_double(g, "train", "time_s", t->n, 1, &t->time_s, err, where);
        if (!rc) rc = col_double(g, "train", "bits", t->n, 1, &t->bits, err, where);
        if (!rc) rc = col_double(g, "train", "grad_bits", t->n, 1, &t->grad_bits, err, where);
        if (!rc) rc = col_double(g, "train", "cost_ratio", t->n, 1, &t->cost_ratio, err, where);
        if (!rc) rc = col_double(g, "train", "top1", t->n, 1, &t->top1, err, where);
    }
    H5Gclose(g);
    return rc;
}

static int read_val(hid_t run, EvalRows *e, char *err, const char *where) {
    memset(e, 0, sizeof *e);
    if (H5Lexists(run, "val", H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(run, "val", H5P_DEFAULT);
    if (g < 0) return errf(err, "%s: cannot open val/", where);
    long n = col_len(g, "step");
    int rc = 0;
    if (n < 0) rc = errf(err, "%s: val/step is missing or unreadable", where);
    if (!rc) {
        e->n = (size_t)n;
        rc = col_i64(g, "val", "step", e->n, &e->step, err, where);
        if (!rc) rc = col_double(g, "val", "top1", e->n, 0, &e->top1, err, where);
        if (!rc) rc = col_double(g, "val", "loss", e->n, 0, &e->loss, err, where);
        if (!rc) rc = col_double(g, "val", "bits", e->n, 1, &e->bits, err, where);
    }
    H5Gclose(g);
    return rc;
}

static int read_test(hid_t run, TestRows *t, char *err, const char *where) {
    memset(t, 0, sizeof *t);
    if (H5Lexists(run, "test", H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(run, "test", H5P_DEFAULT);
    if (g < 0) return errf(err, "%s: cannot open test/", where);
    long n = col_len(g, "step");
    int rc = 0;
    if (n < 0) rc = errf(err, "%s: test/step is missing or unreadable", where);
    if (!rc && (col_len(g, "role") != n || col_len(g, "fixed") != n))
        rc = errf(err, "%s: test/role and test/fixed must have the %ld rows of test/step", where, n);
    if (!rc) {
        t->n = (size_t)n;
        rc = col_i64(g, "test", "step", t->n, &t->step, err, where);
        if (!rc) rc = col_i64(g, "test", "role", t->n, &t->role, err, where);
        if (!rc) rc = col_i64(g, "test", "fixed", t->n, &t->fixed, err, where);
        if (!rc) rc = col_double(g, "test", "top1", t->n, 0, &t->top1, err, where);
        if (!rc) rc = col_double(g, "test", "loss", t->n, 0, &t->loss, err, where);
        if (!rc) rc = col_double(g, "test", "bits", t->n, 1, &t->bits, err, where);
    }
    H5Gclose(g);
    return rc;
}

/* The training curve of a run without a validation split: its periodic test
 * evaluations (results/README.md: role 0, the last one role 2), at the
 * evaluation precision (fixed 0), in step order as written. */
static void curve_from_test(Run *r) {
    const TestRows *t = &r->te;
    EvalRows *e = &r->ev;
    e->step = xcalloc(t->n, sizeof *e->step);
    e->top1 = xcalloc(t->n, sizeof *e->top1);
    e->loss = xcalloc(t->n, sizeof *e->loss);
    e->bits = xcalloc(t->n, sizeof *e->bits);
    e->n = 0;
    for (size_t k = 0; k < t->n; k++) {
        if (t->fixed[k] != 0 || t->role[k] == TEST_SELECTED) continue;
        e->step[e->n] = t->step[k];
        e->top1[e->n] = t->top1[k];
        e->loss[e->n] = t->loss[k];
        e->bits[e->n] = t->bits[k];
        e->n++;
    }
    r->ev_on_test = 1;
}

static int read_cost(hid_t run, Run *r, char *err, const char *where) {
    CostTable *c = &r->cost;
    memset(c, 0, sizeof *c);
    r->has_cost = 0;
    if (H5Lexists(run, "cost", H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(run, "cost", H5P_DEFAULT);
    if (g < 0) return errf(err, "%s: cannot open cost/", where);
    long n = col_len(g, "fwd_macs");
    int rc = 0;
    if (n < 0) rc = errf(err, "%s: cost/fwd_macs is missing or unreadable", where);
    if (!rc) {
        c->n = (size_t)n;
        if (col_len(g, "name") != n || col_len(g, "kind") != n)
            rc = errf(err, "%s: cost/name and cost/kind must have the %ld rows of cost/fwd_macs", where, n);
        if (!rc) rc = col_str(g, "cost", "name", c->n, &c->name, err, where);
        if (!rc) rc = col_str(g, "cost", "kind", c->n, &c->kind, err, where);
        if (!rc) rc = col_i64(g, "cost", "fwd_macs", c->n, &c->fwd_macs, err, where);
        if (!rc) rc = col_double(g, "cost", "fwd_bitmacs", c->n, 0, &c->fwd, err, where);
        if (!rc) rc = col_double(g, "cost", "err_bitmacs", c->n, 0, &c->err, err, where);
        if (!rc) rc = col_double(g, "cost", "wgrad_bitmacs", c->n, 0, &c->wgrad, err, where);
        if (!rc) r->has_cost = 1;
    }
    H5Gclose(g);
    return rc;
}

/* landscape (2-D, grid_n x grid_n rows, alpha-major) or landscape1d */
static int read_landscape(hid_t run, const char *grp, int two_d, Landscape *l, char *err, const char *where) {
    memset(l, 0, sizeof *l);
    if (H5Lexists(run, grp, H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(run, grp, H5P_DEFAULT);
    if (g < 0) return errf(err, "%s: cannot open %s/", where, grp);
    long n = col_len(g, "alpha");
    int rc = 0;
    if (n < 0) rc = errf(err, "%s: %s/alpha is missing or unreadable", where, grp);
    if (!rc) {
        l->n = (size_t)n;
        rc = col_double(g, grp, "alpha", l->n, 0, &l->alpha, err, where);
        if (!rc && two_d) rc = col_double(g, grp, "beta", l->n, 0, &l->beta, err, where);
        if (!rc) rc = col_double(g, grp, "loss", l->n, 0, &l->loss, err, where);
        if (!rc) rc = col_double(g, grp, "top1", l->n, 1, &l->top1, err, where);
        if (!rc) rc = col_double(g, grp, "flips", l->n, 1, &l->flips, err, where);
    }
    if (!rc && two_d) {
        double gn = h5_attr_double(g, "grid_n");
        if (isnan(gn)) { /* no attribute: a square table */
            long s = lround(sqrt((double)n));
            gn = s * s == n ? (double)s : NAN;
        }
        if (isnan(gn) || gn < 1 || gn != floor(gn) || (long)gn * (long)gn != n)
            rc = errf(err, "%s: %s/ has %ld rows, not grid_n x grid_n (grid_n = %s)", where, grp, n, NUM(gn));
        else
            l->grid_n = (long)gn;
    }
    if (!rc) {
        double cs = h5_attr_double(g, "checkpoint_step");
        l->checkpoint_step = isnan(cs) ? -1 : (long)cs;
        l->present = 1;
    }
    H5Gclose(g);
    return rc;
}

/* A landscape is of the weights of the run's checkpoint at the step it
 * records; when the checkpoint has moved on since (the run was resumed and
 * trained further) or the step is not recorded, the table shows other weights
 * than the run's: it is left out, said in one line. */
static void drop_stale(const char *where, const Run *r, const char *grp, Landscape *l) {
    if (!l->present || (l->checkpoint_step >= 0 && l->checkpoint_step == r->checkpoint_step)) return;
    char at[64], now[64];
    if (l->checkpoint_step >= 0) snprintf(at, sizeof at, "step %ld", l->checkpoint_step);
    else snprintf(at, sizeof at, "an unrecorded step");
    if (r->checkpoint_step >= 0) snprintf(now, sizeof now, "step %ld", r->checkpoint_step);
    else snprintf(now, sizeof now, "no complete checkpoint");
    warnf("%s: %s/ is stale: computed on the weights at %s, the run (%s) is now at %s; not exported (rerun "
          "cbnn_landscape)", where, grp, at, r->status, now);
    l->present = 0;
}

typedef struct {
    char **names;
    int n, cap;
} NameList;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    NameList *l = data;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->names = realloc(l->names, sizeof *l->names * (size_t)l->cap);
        if (!l->names) return -1;
    }
    l->names[l->n++] = xstrdup(name);
    return 0;
}

/* ------------------------------------------------------------ efficiency */

/* Per-phase fp32 MACs, bit-weighted sums and the memory estimate of a
 * complete run (analysis/README.md). */
static void compute_efficiency(const ExpFile *f, Run *r) {
    Efficiency *e = &r->eff;
    memset(e, 0, sizeof *e);
    if (strcmp(r->status, "complete") || !r->has_cost) return;
    const RunConfig *c = &r->c;
    const CostTable *ct = &r->cost;
    DatasetShape ds;
    long n_train;
    if (detect_config(c)) { /* its costs are in cost/ and the run's attributes; this table rebuilds classifiers */
        warnf("%s: run '%s': a detection run, no efficiency row", f->path, r->name);
        return;
    }
    if (data_shape_from_config(c, &ds, &n_train)) {
        warnf("%s: run '%s': unknown dataset '%s', no efficiency row", f->path, r->name, c->dataset);
        return;
    }
    e->iterations = train_total_iterations(c, n_train);
    e->batch = c->batch_size;
    e->samples = (double)e->iterations * (double)e->batch;

    /* the model of the run, rebuilt from its config (no arenas allocated) */
    Model m;
    char err[ERRLEN];
    int have_model =
        model_build(&m, c->arch, c->conv, ds.channels, ds.height, ds.width, ds.num_classes, err, sizeof err) == 0;
    if (!have_model) warnf("%s: run '%s': %s (no memory estimate)", f->path, r->name, err);
    e->model_matched = have_model && (size_t)m.n_layers == ct->n;
    for (size_t i = 0; e->model_matched && i < ct->n; i++)
        if (strcmp(m.layers[i].name, ct->name[i]) || m.layers[i].kind->macs(&m.layers[i]) != ct->fwd_macs[i])
            e->model_matched = 0;
    if (have_model && !e->model_matched)
        warnf("%s: run '%s': cost/ rows are not the layers of the %s model of its config; the first layer after "
              "the input is taken as the one reading the input", f->path, r->name, c->arch);

    /* raw MACs per sample of each phase: core/train.c layer_costs_init --
     * err = 0 for a layer that reads the input image, wgrad only for layers
     * with a weight (conv, binary_conv, linear) */
    int input_seen = 0, reader_done = 0;
    for (size_t i = 0; i < ct->n; i++) {
        double macs = (double)ct->fwd_macs[i];
        int reads_input, has_weight;
        if (e->model_matched) {
            reads_input = m.layers[i].in0 == 0;
            has_weight = m.layers[i].kind->has_weights;
        } else {
            const char *k = ct->kind[i];
            reads_input = 0;
            if (!strcmp(k, "input")) {
                input_seen = 1;
            } else if (input_seen && !reader_done) {
                reads_input = 1;
                reader_done = 1;
            }
            const LayerKind *lk = layer_kind_find(k); /* a row's kind name; unknown: no weight */
            has_weight = lk && lk->has_weights;
        }
        e->fp[0] += e->samples * macs;
        e->fp[1] += e->samples * (reads_input ? 0 : macs);
        e->fp[2] += e->samples * (has_weight ? macs : 0);
        e->bit[0] += ct->fwd[i];
        e->bit[1] += ct->err[i];
        e->bit[2] += ct->wgrad[i];
    }
    e->bit_total = e->bit[0] + e->bit[1] + e->bit[2];
    e->fp_total = e->fp[0] + e->fp[1] + e->fp[2];
    e->ratio = e->bit_total / e->fp_total;
    e->reduction_pct = 100.0 * (1.0 - e->ratio);
    if (!isnan(r->fp32_macs) && fabs(e->fp_total - r->fp32_macs) > 1e-9 * r->fp32_macs)
        warnf("%s: run '%s': fp32 MACs recomputed from cost/ and the config (%s) differ from the fp32_macs "
              "attribute (%s)", f->path, r->name, NUM(e->fp_total), NUM(r->fp32_macs));
    if (!isnan(r->bit_macs) && fabs(e->bit_total - r->bit_macs) > 1e-9 * r->bit_macs)
        warnf("%s: run '%s': the cost/ sums (%s) differ from the bit_macs attribute (%s)", f->path, r->name,
              NUM(e->bit_total), NUM(r->bit_macs));

    /* peak bits over the schedule (0 = no k-bit quantization counts as 32) */
    PrecSchedule s;
    prec_from_config(c, e->iterations, &s, NULL);
    double pb = 0, pg = 0;
    for (long i = 0; i < e->iterations; i++) {
        PrecBits b = prec_at(&s, i);
        double bb = b.bits == 0 ? 32 : b.bits, gg = b.grad_bits == 0 ? 32 : b.grad_bits;
        if (bb > pb) pb = bb;
        if (gg > pg) pg = gg;
    }
    if (!c->grad_quant) pg = 32;
    e->peak_bits = (int)pb;
    e->peak_grad_bits = (int)pg;

    /* memory estimate (bytes, one training step at the run's batch) */
    e->params = e->mem_state = e->mem_fp32 = e->mem_est = e->mem_ratio = NAN;
    e->mem_act_fp32 = e->mem_act_est = e->mem_err_fp32 = e->mem_err_est = NAN;
    if (have_model) {
        double P = 0, bufs = 0;
        int n = m.n_layers;
        char *feeds_bconv = xcalloc((size_t)n, 1);
        for (int i = 0; i < n; i++) {
            const Layer *l = &m.layers[i];
            P += (double)(l->w_n + l->b_n);
            bufs += (double)l->buf_n;
            if (l->kind->binary && l->in0 >= 0) feeds_bconv[l->in0] = 1;
        }
        double opt_slots = c->optimizer == OPTIM_ADAMW ? 2 : (c->momentum > 0 ? 1 : 0);
        double B = (double)e->batch;
        e->params = P;
        e->mem_state = 4.0 * (P + P + opt_slots * P + bufs);
        e->mem_act_fp32 = e->mem_act_est = e->mem_err_fp32 = e->mem_err_est = 0;
        for (int i = 0; i < n; i++) {
            const Layer *l = &m.layers[i];
            double elems = B * (double)l->C * l->H * l->W;
            e->mem_act_fp32 += 4.0 * elems;
            e->mem_err_fp32 += 4.0 * elems;
            e->mem_act_est += elems * (feeds_bconv[i] ? pb / 8.0 : 4.0);
            e->mem_err_est += elems * (l->kind->binary ? pg / 8.0 : 4.0);
        }
        free(feeds_bconv);
        e->mem_fp32 = e->mem_state + e->mem_act_fp32 + e->mem_err_fp32;
        e->mem_est = e->mem_state + e->mem_act_est + e->mem_err_est;
        e->mem_ratio = e->mem_est / e->mem_fp32;
    }
    model_free(&m); /* also after a failed build: it frees the layers made so far */
    e->ok = 1;
}

/* ------------------------------------------------------------ load a file */

static int load_run(ExpFile *f, hid_t runs, const char *name, Run *r, char *err) {
    memset(r, 0, sizeof *r);
    r->name = xstrdup(name);
    file_stem(name, r->file, sizeof r->file);
    char where[4096];
    snprintf(where, sizeof where, "%s: run '%s'", f->path, name);
    hid_t g = H5Gopen2(runs, name, H5P_DEFAULT);
    if (g < 0) return errf(err, "%s: cannot open /runs/%s", where, name);
    int rc = 0;
    char *status = h5_attr_strdup(g, "status");
    r->config = h5_attr_strdup(g, "config");
    if (!status) rc = errf(err, "%s: no status attribute", where);
    if (!rc && !r->config) rc = errf(err, "%s: no config attribute", where);
    if (!rc) {
        snprintf(r->status, sizeof r->status, "%s", status);
        for (int m = 0; m < M_N; m++) r->metric[m] = h5_attr_double(g, METRIC[m]);
        r->val_top1_at_selected = h5_attr_double(g, "val_top1_at_selected");
        r->selected_step = h5_attr_double(g, "selected_step");
        r->eval_bits_fixed = h5_attr_double(g, "eval_bits_fixed");
        r->val_split = h5_attr_double(g, "val_split");
        r->mean_cost_ratio = h5_attr_double(g, "mean_cost_ratio");
        r->bit_macs = h5_attr_double(g, "bit_macs");
        r->fp32_macs = h5_attr_double(g, "fp32_macs");
        r->wall_time_s = h5_attr_double(g, "wall_time_s");
        r->images_per_s = h5_attr_double(g, "images_per_s");
        r->peak_rss_bytes = h5_attr_double(g, "peak_rss_bytes");
        r->train_mem = h5_attr_double(g, "train_memory_bytes");
        r->train_mem_fp32 = h5_attr_double(g, "train_memory_fp32_bytes");
        r->train_mem_ratio = h5_attr_double(g, "train_memory_ratio");
        char *tm = h5_attr_strdup(g, "train_memory"); /* NULL before issue 17 */
        snprintf(r->train_memory, sizeof r->train_memory, "%s", tm ? tm : "");
        free(tm);
        ExperimentConfig ce;
        char cerr[ERRLEN], label[4200];
        snprintf(label, sizeof label, "%s:/runs/%s/config", f->path, name);
        if (experiment_parse(&ce, r->config, strlen(r->config), label, cerr, sizeof cerr)) {
            rc = errf(err, "%s: its config does not parse: %s", where, cerr);
        } else {
            r->c = ce.base;
            experiment_free(&ce);
        }
    }
    free(status);
    if (!rc) rc = read_train(g, &r->tr, err, where);
    if (!rc) rc = read_val(g, &r->ev, err, where);
    if (!rc) rc = read_test(g, &r->te, err, where);
    /* the curve: val/, or the periodic test/ rows of a run evaluated on test (val_split 0, or no
     * val/ rows at all: e.g. a detection run) */
    if (!rc && r->ev.n == 0 && !(r->val_split > 0)) {
        free(r->ev.step), free(r->ev.top1), free(r->ev.loss), free(r->ev.bits);
        curve_from_test(r);
    }
    if (!rc) rc = read_cost(g, r, err, where);
    r->checkpoint_step = -1;
    if (!rc && H5Lexists(g, "checkpoint", H5P_DEFAULT) > 0) {
        /* only a complete checkpoint counts (results/README.md: complete = 1) */
        hid_t ck = H5Gopen2(g, "checkpoint", H5P_DEFAULT);
        if (ck >= 0) {
            double done = h5_attr_double(ck, "complete"), step = h5_attr_double(ck, "step");
            if (done == 1.0 && step >= 0) r->checkpoint_step = (long)step;
            H5Gclose(ck);
        }
    }
    if (!rc) rc = read_landscape(g, "landscape", 1, &r->ls2, err, where);
    if (!rc) rc = read_landscape(g, "landscape1d", 0, &r->ls1, err, where);
    if (!rc) drop_stale(where, r, "landscape", &r->ls2);
    if (!rc) drop_stale(where, r, "landscape1d", &r->ls1);
    if (!rc && !strcmp(r->status, "complete") && r->te.n == 0)
        rc = errf(err, "%s: the run is complete but has no test/ rows", where);
    if (!rc && !strcmp(r->status, "complete") && !r->has_cost)
        warnf("%s: complete run without a cost/ table: no efficiency row", where);
    H5Gclose(g);
    return rc;
}

/* The seconds of training at a step, from the train/time_s of the row logged
 * at that step (TTA_LOGGED). The rows are logged every train.log_interval
 * steps, so a step between two rows gets the linear interpolation between
 * them (TTA_INTERPOLATED; the later row's time may include part of an
 * evaluation's time), and a step after the last row that row's time
 * (TTA_EARLIER, a lower bound). NaN and TTA_NONE without an earlier row. */
static double seconds_at(const TrainRows *t, long step, TtaRule *rule) {
    long before = -1, after = -1; /* rows: the last at or before step, the first after it */
    for (size_t k = 0; k < t->n; k++) {
        if (isnan(t->time_s[k])) continue;
        if (t->step[k] <= step && (before < 0 || t->step[k] >= t->step[before])) before = (long)k;
        if (t->step[k] > step && (after < 0 || t->step[k] < t->step[after])) after = (long)k;
    }
    if (before < 0) {
        *rule = TTA_NONE;
        return NAN;
    }
    if (t->step[before] == step) {
        *rule = TTA_LOGGED;
        return t->time_s[before];
    }
    if (after < 0) {
        *rule = TTA_EARLIER;
        return t->time_s[before];
    }
    *rule = TTA_INTERPOLATED;
    const double s0 = (double)t->step[before], s1 = (double)t->step[after];
    return t->time_s[before] + (t->time_s[after] - t->time_s[before]) * ((double)step - s0) / (s1 - s0);
}

/* Time to accuracy of a complete run (MLPerf's metric): the first periodic
 * evaluation (validation; test for a run without a validation split) with
 * top-1 >= the YAML's target_top1 (experiments/stats.h). */
static void compute_tta(ExpFile *f, Run *r) {
    r->tta = -1;
    r->tta_steps = r->tta_s = NAN;
    r->tta_rule = TTA_NONE;
    if (!(f->target_top1 > 0) || strcmp(r->status, "complete")) return;
    const EvalRows *e = &r->ev;
    long *steps = xcalloc(e->n, sizeof *steps);
    double *secs = xcalloc(e->n, sizeof *secs);
    TtaRule *rules = xcalloc(e->n, sizeof *rules);
    for (size_t k = 0; k < e->n; k++) {
        steps[k] = (long)e->step[k];
        secs[k] = seconds_at(&r->tr, steps[k], &rules[k]);
    }
    long st = -1;
    double sec = NAN;
    const int rc = stats_time_to_accuracy(steps, e->top1, secs, (int)e->n, f->target_top1, &st, &sec);
    if (rc < 0) {
        f->stats_ok = 0;
    } else if (rc == 0) {
        r->tta = 1;
        r->tta_steps = (double)st;
        r->tta_s = sec;
        for (size_t k = 0; k < e->n; k++)
            if (steps[k] == st) {
                r->tta_rule = rules[k];
                break;
            }
    } else {
        r->tta = 0;
    }
    free(steps), free(secs), free(rules);
}

/* stats_summary of v[0..n); all NaN (and stats_ok cleared) when the
 * statistics are not there (experiments/stats.c returns -1 then) */
static void summarise(ExpFile *f, const double *v, int n, SeedStats *out) {
    if (stats_summary(v, n, LEVEL, out) != 0) {
        f->stats_ok = 0;
        *out = (SeedStats){0, NAN, NAN, NAN, NAN, NAN, NAN};
    }
}

static int run_counts(const Run *r, int gi) { return r->group_index == gi && !strcmp(r->status, "complete"); }

/* test_top1_at_selected of group gi minus the reference's, seed by seed
 * (train.seed of the runs' configs) */
static void paired_diff(ExpFile *f, int gi, int ref, double *a, double *b) {
    Group *g = &f->groups[gi];
    int n = 0;
    for (int i = 0; i < f->n_runs; i++) {
        const Run *r = &f->runs[i];
        if (!run_counts(r, gi)) continue;
        for (int k = 0; k < f->n_runs; k++) {
            const Run *q = &f->runs[k];
            if (run_counts(q, ref) && q->c.seed == r->c.seed) {
                a[n] = r->metric[M_SEL];
                b[n] = q->metric[M_SEL];
                n++;
                break;
            }
        }
    }
    if (stats_paired(a, b, n, LEVEL, &g->diff) != 0) {
        f->stats_ok = 0;
        g->diff = (PairedStats){0, NAN, NAN, NAN, NAN, NAN, 0, NAN};
    }
}

static void build_groups(ExpFile *f) {
    f->groups = xcalloc((size_t)f->n_runs, sizeof *f->groups);
    f->n_groups = 0;
    f->stats_ok = 1;
    for (int i = 0; i < f->n_runs; i++) {
        Run *r = &f->runs[i];
        char *gname = xcalloc(strlen(r->name) + 1, 1);
        stats_group_name(r->name, gname, strlen(r->name) + 1);
        if (!*gname) {
            free(gname);
            gname = xstrdup(f->experiment);
        }
        int gi = -1;
        for (int k = 0; k < f->n_groups; k++)
            if (!strcmp(f->groups[k].name, gname)) gi = k;
        if (gi < 0) {
            gi = f->n_groups++;
            f->groups[gi].name = xstrdup(gname);
            f->groups[gi].first_run = i;
        }
        free(gname);
        r->group = f->groups[gi].name;
        r->group_index = gi;
        f->groups[gi].n_all++;
        compute_tta(f, r);
    }
    double *a = xcalloc((size_t)f->n_runs, sizeof *a), *b = xcalloc((size_t)f->n_runs, sizeof *b);
    f->ref_group = -1;
    f->cmp_group = -1;
    for (int gi = 0; gi < f->n_groups; gi++)
        if (*f->compare_to && !strcmp(f->groups[gi].name, f->compare_to)) f->cmp_group = gi;
    if (*f->compare_to && f->cmp_group < 0)
        warnf("%s: compare_to '%s' names no configuration of the file: no paired comparison", f->path, f->compare_to);
    int listed = 0;
    for (int gi = 0; gi < f->n_groups; gi++) {
        Group *g = &f->groups[gi];
        int n = 0;
        double cr = 0, bm = 0, fm = 0, wall = 0, rss = 0, mem = 0, eb = 0;
        int n_rss = 0, n_mem = 0, n_eb = 0;
        g->eval_bits_fixed = NAN;
        for (int i = 0; i < f->n_runs; i++) {
            Run *r = &f->runs[i];
            if (!run_counts(r, gi)) continue;
            cr += r->mean_cost_ratio;
            bm += r->bit_macs;
            fm += r->fp32_macs;
            wall += r->wall_time_s;
            if (!isnan(r->peak_rss_bytes)) rss += r->peak_rss_bytes, n_rss++;
            if (r->eff.ok && !isnan(r->eff.mem_est)) mem += r->eff.mem_est, n_mem++;
            if (r->eff.ok) eb += r->eff.bit_total, n_eb++;
            if (isnan(g->eval_bits_fixed)) g->eval_bits_fixed = r->eval_bits_fixed;
            g->curve_on_test |= r->ev_on_test;
            n++;
        }
        g->n = n;
        for (int m = 0; m < M_N; m++) {
            int k = 0;
            for (int i = 0; i < f->n_runs; i++)
                if (run_counts(&f->runs[i], gi)) a[k++] = f->runs[i].metric[m];
            summarise(f, a, k, &g->st[m]);
        }
        /* time to accuracy: over the runs that reached the target */
        int k = 0;
        for (int i = 0; i < f->n_runs; i++)
            if (run_counts(&f->runs[i], gi) && f->runs[i].tta == 1) a[k] = f->runs[i].tta_steps, b[k++] = f->runs[i].tta_s;
        g->tta_reached = k;
        summarise(f, a, k, &g->tta_steps);
        summarise(f, b, k, &g->tta_s);
        g->is_ref = gi == f->cmp_group;
        g->diff = (PairedStats){0, NAN, NAN, NAN, NAN, NAN, 0, NAN};
        if (f->cmp_group >= 0 && !g->is_ref && n > 0) paired_diff(f, gi, f->cmp_group, a, b);
        g->cr = n ? cr / n : NAN;
        g->bit_macs = n ? bm / n : NAN;
        g->fp32_macs = n ? fm / n : NAN;
        g->wall = n ? wall / n : NAN;
        g->rss = n_rss ? rss / n_rss : NAN;
        g->mem_est = n_mem ? mem / n_mem : NAN;
        g->eff_bit = n_eb ? eb / n_eb : NAN;
        const RunConfig *c = &f->runs[g->first_run].c;
        if (f->ref_group < 0 && n > 0 && (c->prec_schedule == PREC_FULL || c->conv == CONV_FP32))
            f->ref_group = gi;
        /* groups.csv lists the groups with a complete run; runs.csv points at their rows */
        for (int i = 0; i < f->n_runs; i++)
            if (f->runs[i].group_index == gi) f->runs[i].group_row = n > 0 ? listed : -1;
        if (n > 0) listed++;
    }
    if (!f->stats_ok)
        warnf("%s: the statistics over seeds are not available (experiments/stats.c answered -1): means, "
              "intervals, paired differences and times to accuracy are written as nan", f->path);
    free(a);
    free(b);
}

/* The name a file's outputs go by: its base name without .h5. */
static int file_key(const char *path, char *key, size_t cap, char *err) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 3 && !strcmp(b + n - 3, ".h5")) n -= 3;
    if (n == 0 || b[0] == '.' || n >= cap)
        return errf(err, "%s: its name (without .h5) cannot name its outputs (empty, starts with '.' or too long)",
                    path);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b[i] < 0x20 || b[i] == 0x7f)
            return errf(err, "%s: its name has a control character: rename the file", path);
    memcpy(key, b, n);
    key[n] = 0;
    return 0;
}

static int load_file(const char *path, ExpFile *f, char *err) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->ref_group = -1;
    if (file_key(path, f->key, sizeof f->key, err)) return -1;
    if (access(path, R_OK) != 0) return errf(err, "%s: cannot read: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0) return errf(err, "%s: not an HDF5 file", path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return errf(err, "%s: cannot open as HDF5", path);
    int rc = 0;
    hid_t runs = -1;
    double sv = h5_attr_double(file, "schema_version");
    if (isnan(sv)) {
        rc = errf(err, "%s: no schema_version attribute: not a results file", path);
        goto out;
    }
    f->schema = (int)sv;
    if (f->schema != RESULTS_SCHEMA_VERSION) {
        rc = errf(err, "%s: schema version %d, cbnn_export reads version %d (results/README.md); train it again "
                  "with --fresh or into another --results directory", path, f->schema, RESULTS_SCHEMA_VERSION);
        goto out;
    }
    f->experiment = h5_attr_strdup(file, "experiment");
    if (!f->experiment || !*f->experiment) {
        rc = errf(err, "%s: no experiment attribute", path);
        goto out;
    }
    /* (the experiment names no output: the file's key does, so any name is shown as it is) */
    f->start_time = h5_attr_strdup(file, "start_time");
    f->first_start_time = h5_attr_strdup(file, "first_start_time");
    f->cpu_model = h5_attr_strdup(file, "cpu_model");
    f->git_revision = h5_attr_strdup(file, "git_revision");
    f->yaml = h5_attr_strdup(file, "experiment_yaml");
    f->build = h5_attr_strdup(file, "build");
    f->compiler = h5_attr_strdup(file, "compiler");
    double th = h5_attr_double(file, "omp_threads");
    f->omp_threads = isnan(th) ? 0 : (int)th;
    if (H5Lexists(file, "runs", H5P_DEFAULT) <= 0) {
        rc = errf(err, "%s: no /runs group", path);
        goto out;
    }
    runs = H5Gopen2(file, "runs", H5P_DEFAULT);
    NameList names = {0};
    if (runs < 0 || H5Literate(runs, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &names) < 0) {
        rc = errf(err, "%s: cannot list /runs", path);
        goto out;
    }
    /* order: the grid of experiment_yaml, then the others by name */
    int *order = xcalloc((size_t)names.n, sizeof *order), n_ord = 0;
    char *used = xcalloc((size_t)names.n, 1);
    ExperimentConfig e;
    char perr[ERRLEN];
    if (f->yaml && experiment_parse(&e, f->yaml, strlen(f->yaml), path, perr, sizeof perr) == 0) {
        f->grid_order = 1;
        snprintf(f->compare_to, sizeof f->compare_to, "%s", e.compare_to);
        f->target_top1 = e.target_top1;
        for (int k = 0; k < e.n_runs; k++)
            for (int i = 0; i < names.n; i++)
                if (!used[i] && !strcmp(names.names[i], e.runs[k].name)) {
                    order[n_ord++] = i;
                    used[i] = 1;
                }
        experiment_free(&e);
    } else {
        warnf("%s: experiment_yaml %s; runs in name order", path, f->yaml ? perr : "is missing");
    }
    for (int i = 0; i < names.n; i++)
        if (!used[i]) order[n_ord++] = i;
    f->runs = xcalloc((size_t)names.n, sizeof *f->runs);
    for (int k = 0; k < n_ord && !rc; k++) {
        rc = load_run(f, runs, names.names[order[k]], &f->runs[k], err);
        f->n_runs = k + 1;
    }
    for (int i = 0; i < names.n; i++) free(names.names[i]);
    free(names.names);
    free(order);
    free(used);
    if (rc) goto out;
    for (int i = 0; i < f->n_runs; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(f->runs[i].file, f->runs[k].file)) {
                rc = errf(err, "%s: runs '%s' and '%s' map to the same file name '%s'", path, f->runs[k].name,
                          f->runs[i].name, f->runs[i].file);
                goto out;
            }
    for (int i = 0; i < f->n_runs; i++) compute_efficiency(f, &f->runs[i]);
    build_groups(f);
out:
    if (runs >= 0) H5Gclose(runs);
    H5Fclose(file);
    return rc;
}

static void free_file(ExpFile *f) {
    for (int i = 0; i < f->n_runs; i++) {
        Run *r = &f->runs[i];
        free(r->name);
        free(r->config);
        free(r->tr.step), free(r->tr.loss), free(r->tr.lr), free(r->tr.bits), free(r->tr.grad_bits);
        free(r->tr.cost_ratio), free(r->tr.top1), free(r->tr.time_s);
        free(r->ev.step), free(r->ev.top1), free(r->ev.loss), free(r->ev.bits);
        free(r->te.step), free(r->te.role), free(r->te.fixed), free(r->te.top1), free(r->te.loss), free(r->te.bits);
        for (size_t k = 0; k < r->cost.n; k++) {
            if (r->cost.name) free(r->cost.name[k]);
            if (r->cost.kind) free(r->cost.kind[k]);
        }
        free(r->cost.name), free(r->cost.kind), free(r->cost.fwd_macs);
        free(r->cost.fwd), free(r->cost.err), free(r->cost.wgrad);
        Landscape *ls[2] = {&r->ls2, &r->ls1};
        for (int k = 0; k < 2; k++) {
            free(ls[k]->alpha), free(ls[k]->beta), free(ls[k]->loss), free(ls[k]->top1), free(ls[k]->flips);
        }
    }
    free(f->runs);
    for (int g = 0; g < f->n_groups; g++) free(f->groups[g].name);
    free(f->groups);
    free(f->experiment), free(f->start_time), free(f->first_start_time), free(f->cpu_model);
    free(f->git_revision), free(f->yaml), free(f->build), free(f->compiler);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------ writers */

static const char *S(const char *s) { return s && *s ? s : "unknown"; }

static int write_runs_csv(const ExpFile *f, const char *dir, char *err) {
    char path[4096];
    Out o;
    if (path_fmt(path, sizeof path, err, "%s/runs.csv", dir) || out_open(&o, path, err)) return -1;
    fprintf(o.f, "run,file,status,group,group_row,arch,conv,schedule,bits_min,bits_max,grad_bits,cycles,seed,"
                 "val_split,test_top1_at_selected,final_test_top1,paper_best_top1,test_top1_at_selected_fixed,"
                 "final_test_top1_fixed,eval_bits_fixed,val_top1_at_selected,selected_step,curve_split,"
                 "tta_reached,tta_steps,tta_seconds,tta_seconds_from,mean_cost_ratio,bit_macs,fp32_macs,"
                 "wall_time_s,images_per_s,peak_rss_bytes,checkpoint_step,landscape_step,landscape1d_step\n");
    for (int i = 0; i < f->n_runs; i++) {
        const Run *r = &f->runs[i];
        const RunConfig *c = &r->c;
        csv_field(o.f, r->name);
        fputc(',', o.f);
        csv_field(o.f, r->file);
        fputc(',', o.f);
        csv_field(o.f, r->status);
        fputc(',', o.f);
        csv_field(o.f, r->group);
        fputc(',', o.f);
        if (r->group_row >= 0) fprintf(o.f, "%d", r->group_row);
        fprintf(o.f, ",%s,%s,%s,%d,%d,%d,%d,%llu,%s", c->arch, config_enum_name("model.conv", c->conv),
                config_enum_name("precision.schedule", c->prec_schedule), c->bits.min, c->bits.max,
                c->grad_bits.max, c->prec_cycles, (unsigned long long)c->seed, NUM(r->val_split));
        for (int m = 0; m < M_N; m++) fprintf(o.f, ",%s", NUM(r->metric[m]));
        fprintf(o.f, ",%s,%s,%s,%s", NUM(r->eval_bits_fixed), NUM(r->val_top1_at_selected), NUM(r->selected_step),
                r->ev.n == 0 ? "" : r->ev_on_test ? "test" : "val");
        if (r->tta < 0)
            fprintf(o.f, ",,nan,nan,");
        else
            fprintf(o.f, ",%d,%s,%s,%s", r->tta, NUM(r->tta_steps), NUM(r->tta_s), TTA_RULE[r->tta_rule]);
        fprintf(o.f, ",%s,%s,%s,%s,%s,%s", NUM(r->mean_cost_ratio), NUM(r->bit_macs), NUM(r->fp32_macs),
                NUM(r->wall_time_s), NUM(r->images_per_s), NUM(r->peak_rss_bytes));
        /* steps: empty when there is none (no checkpoint; no landscape exported) */
        fputc(',', o.f);
        if (r->checkpoint_step >= 0) fprintf(o.f, "%ld", r->checkpoint_step);
        fputc(',', o.f);
        if (r->ls2.present) fprintf(o.f, "%ld", r->ls2.checkpoint_step);
        fputc(',', o.f);
        if (r->ls1.present) fprintf(o.f, "%ld", r->ls1.checkpoint_step);
        fputc('\n', o.f);
    }
    return out_close(&o, err);
}

static int write_dats(const ExpFile *f, const char *dir, char *err) {
    char path[4096];
    for (int i = 0; i < f->n_runs; i++) {
        const Run *r = &f->runs[i];
        Out o;
        if (r->tr.n > 0) {
            if (path_fmt(path, sizeof path, err, "%s/%s.train.dat", dir, r->file) || out_open(&o, path, err)) return -1;
            fprintf(o.f, "# step loss lr bits grad_bits cost_ratio top1 time_s\n");
            for (size_t k = 0; k < r->tr.n; k++)
                fprintf(o.f, "%lld %s %s %s %s %s %s %s\n", (long long)r->tr.step[k], NUM(r->tr.loss[k]),
                        NUM(r->tr.lr[k]), NUM(r->tr.bits[k]), NUM(r->tr.grad_bits[k]), NUM(r->tr.cost_ratio[k]),
                        NUM(r->tr.top1[k]), NUM(r->tr.time_s[k]));
            if (out_close(&o, err)) return -1;
        }
        if (r->ev.n > 0) {
            if (path_fmt(path, sizeof path, err, "%s/%s.val.dat", dir, r->file) || out_open(&o, path, err)) return -1;
            fprintf(o.f, "# step top1 loss bits (%s)\n",
                    r->ev_on_test ? "test set: the run has no validation split" : "validation split");
            for (size_t k = 0; k < r->ev.n; k++)
                fprintf(o.f, "%lld %s %s %s\n", (long long)r->ev.step[k], NUM(r->ev.top1[k]), NUM(r->ev.loss[k]),
                        NUM(r->ev.bits[k]));
            if (out_close(&o, err)) return -1;
        }
        if (r->te.n > 0) {
            if (path_fmt(path, sizeof path, err, "%s/%s.test.dat", dir, r->file) || out_open(&o, path, err)) return -1;
            fprintf(o.f, "# step top1 loss bits role fixed (role 0 periodic, 1 selected, 2 final; fixed 1: at "
                         "eval_bits_fixed)\n");
            for (size_t k = 0; k < r->te.n; k++)
                fprintf(o.f, "%lld %s %s %s %lld %lld\n", (long long)r->te.step[k], NUM(r->te.top1[k]),
                        NUM(r->te.loss[k]), NUM(r->te.bits[k]), (long long)r->te.role[k], (long long)r->te.fixed[k]);
            if (out_close(&o, err)) return -1;
        }
        if (r->ls2.present) {
            const Landscape *l = &r->ls2;
            if (path_fmt(path, sizeof path, err, "%s/%s.landscape.dat", dir, r->file) || out_open(&o, path, err)) return -1;
            fprintf(o.f, "# alpha beta loss top1 flips\n");
            for (size_t k = 0; k < l->n; k++) {
                fprintf(o.f, "%s %s %s %s %s\n", NUM(l->alpha[k]), NUM(l->beta[k]), NUM(l->loss[k]), NUM(l->top1[k]),
                        NUM(l->flips[k]));
                if ((k + 1) % (size_t)l->grid_n == 0) fputc('\n', o.f);
            }
            if (out_close(&o, err)) return -1;
        }
        if (r->ls1.present) {
            const Landscape *l = &r->ls1;
            if (path_fmt(path, sizeof path, err, "%s/%s.landscape1d.dat", dir, r->file) || out_open(&o, path, err)) return -1;
            fprintf(o.f, "# alpha loss top1 flips\n");
            for (size_t k = 0; k < l->n; k++)
                fprintf(o.f, "%s %s %s %s\n", NUM(l->alpha[k]), NUM(l->loss[k]), NUM(l->top1[k]), NUM(l->flips[k]));
            if (out_close(&o, err)) return -1;
        }
    }
    return 0;
}

static int write_groups_csv(const ExpFile *f, const char *dir, char *err) {
    char path[4096];
    Out o;
    if (path_fmt(path, sizeof path, err, "%s/groups.csv", dir) || out_open(&o, path, err)) return -1;
    fprintf(o.f, "group,n,n_runs");
    for (int m = 0; m < M_N; m++)
        fprintf(o.f, ",%s_mean,%s_sd,%s_ci_lo,%s_ci_hi,%s_olympic", METRIC[m], METRIC[m], METRIC[m], METRIC[m],
                METRIC[m]);
    fprintf(o.f, ",reference,pairs,diff_mean,diff_ci_lo,diff_ci_hi,diff_t,diff_p,eval_bits_fixed,tta_target,"
                 "tta_reached,tta_steps_mean,tta_steps_olympic,tta_seconds_mean,tta_seconds_olympic,"
                 "mean_cost_ratio,bit_macs,fp32_macs,wall_time_s,schedule,bits_min,bits_max,cycles\n");
    for (int gi = 0; gi < f->n_groups; gi++) {
        const Group *g = &f->groups[gi];
        if (g->n == 0) continue;
        const RunConfig *c = &f->runs[g->first_run].c;
        csv_field(o.f, g->name);
        fprintf(o.f, ",%d,%d", g->n, g->n_all);
        for (int m = 0; m < M_N; m++) {
            const SeedStats *st = &g->st[m];
            fprintf(o.f, ",%s,%s,%s,%s,%s", NUM(st->mean), NUM(st->sd), NUM(st->ci_lo), NUM(st->ci_hi),
                    NUM(st->olympic_mean));
        }
        fputc(',', o.f);
        if (f->cmp_group >= 0 && !g->is_ref) csv_field(o.f, f->compare_to);
        const PairedStats *d = &g->diff;
        fprintf(o.f, ",%d,%s,%s,%s,%s,%s,%s", d->n, NUM(d->mean_diff), NUM(d->ci_lo), NUM(d->ci_hi), NUM(d->t),
                NUM(d->p_two_sided), NUM(g->eval_bits_fixed));
        if (f->target_top1 > 0)
            fprintf(o.f, ",%s,%d,%s,%s,%s,%s", NUM(f->target_top1), g->tta_reached, NUM(g->tta_steps.mean),
                    NUM(g->tta_steps.olympic_mean), NUM(g->tta_s.mean), NUM(g->tta_s.olympic_mean));
        else
            fprintf(o.f, ",nan,0,nan,nan,nan,nan");
        fprintf(o.f, ",%s,%s,%s,%s,%s,%d,%d,%d\n", NUM(g->cr), NUM(g->bit_macs), NUM(g->fp32_macs), NUM(g->wall),
                config_enum_name("precision.schedule", c->prec_schedule), c->bits.min, c->bits.max, c->prec_cycles);
    }
    return out_close(&o, err);
}

/* "2-6" or "4": the bits of a run's schedule as a label */
static void bits_label(const RunConfig *c, char *out, size_t cap) {
    if (c->prec_schedule == PREC_FULL)
        snprintf(out, cap, "32/32");
    else if (c->bits.min == c->bits.max)
        snprintf(out, cap, "%d/%d", c->bits.min, c->grad_bits.max);
    else
        snprintf(out, cap, "%d-%d/%d", c->bits.min, c->bits.max, c->grad_bits.max);
}

static double ratio_or_nan(double a, double b) { return isnan(a) || isnan(b) || b == 0 ? NAN : a / b; }

static int write_efficiency(const ExpFile *f, const char *dir, char *err) {
    char path[4096];
    const Group *ref = f->ref_group >= 0 ? &f->groups[f->ref_group] : NULL;
    Out o;
    if (path_fmt(path, sizeof path, err, "%s/efficiency.csv", dir) || out_open(&o, path, err)) return -1;
    fprintf(o.f, "run,file,group,schedule,bits_min,bits_max,grad_bits,iterations,batch,mean_cost_ratio,"
                 "fwd_bitmacs,err_bitmacs,wgrad_bitmacs,bit_macs,fwd_fp32_macs,err_fp32_macs,wgrad_fp32_macs,"
                 "fp32_macs,fwd_ratio,err_ratio,wgrad_ratio,bitmacs_ratio,reduction_pct,peak_bits,peak_grad_bits,"
                 "params,mem_state_bytes,mem_act_fp32_bytes,mem_act_est_bytes,mem_err_fp32_bytes,mem_err_est_bytes,"
                 "mem_fp32_bytes,mem_est_bytes,mem_ratio,wall_time_s,images_per_s,peak_rss_bytes,test_top1_at_selected,"
                 "ref_group,bitmacs_vs_ref,reduction_vs_ref_pct,wall_vs_ref,rss_vs_ref,mem_vs_ref,top1_minus_ref,"
                 "train_memory,train_memory_bytes,train_memory_fp32_bytes,train_memory_ratio\n");
    for (int i = 0; i < f->n_runs; i++) {
        const Run *r = &f->runs[i];
        const Efficiency *e = &r->eff;
        const RunConfig *c = &r->c;
        if (!e->ok) continue;
        csv_field(o.f, r->name);
        fputc(',', o.f);
        csv_field(o.f, r->file);
        fputc(',', o.f);
        csv_field(o.f, r->group);
        fprintf(o.f, ",%s,%d,%d,%d,%ld,%ld,%s", config_enum_name("precision.schedule", c->prec_schedule), c->bits.min,
                c->bits.max, c->grad_bits.max, e->iterations, e->batch, NUM(r->mean_cost_ratio));
        for (int k = 0; k < 3; k++) fprintf(o.f, ",%s", NUM(e->bit[k]));
        fprintf(o.f, ",%s", NUM(e->bit_total));
        for (int k = 0; k < 3; k++) fprintf(o.f, ",%s", NUM(e->fp[k]));
        fprintf(o.f, ",%s", NUM(e->fp_total));
        for (int k = 0; k < 3; k++) fprintf(o.f, ",%s", NUM(ratio_or_nan(e->bit[k], e->fp[k])));
        fprintf(o.f, ",%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s", NUM(e->ratio), NUM(e->reduction_pct),
                e->peak_bits, e->peak_grad_bits, NUM(e->params), NUM(e->mem_state), NUM(e->mem_act_fp32),
                NUM(e->mem_act_est), NUM(e->mem_err_fp32), NUM(e->mem_err_est), NUM(e->mem_fp32), NUM(e->mem_est),
                NUM(e->mem_ratio), NUM(r->wall_time_s), NUM(r->images_per_s), NUM(r->peak_rss_bytes),
                NUM(r->metric[M_SEL]));
        if (ref) {
            double bv = ratio_or_nan(e->bit_total, ref->eff_bit);
            fputc(',', o.f);
            csv_field(o.f, ref->name);
            fprintf(o.f, ",%s,%s,%s,%s,%s,%s", NUM(bv), NUM(100.0 * (1.0 - bv)),
                    NUM(ratio_or_nan(r->wall_time_s, ref->wall)), NUM(ratio_or_nan(r->peak_rss_bytes, ref->rss)),
                    NUM(ratio_or_nan(e->mem_est, ref->mem_est)), NUM(r->metric[M_SEL] - ref->st[M_SEL].mean));
        } else {
            fprintf(o.f, ",,nan,nan,nan,nan,nan,nan");
        }
        fprintf(o.f, ",%s,%s,%s,%s\n", r->train_memory, NUM(r->train_mem), NUM(r->train_mem_fp32),
                NUM(r->train_mem_ratio));
    }
    if (out_close(&o, err)) return -1;

    if (path_fmt(path, sizeof path, err, "%s/efficiency.md", dir) || out_open(&o, path, err)) return -1;
    fprintf(o.f, "# Training efficiency: %s\n\n", f->experiment);
    fprintf(o.f, "From `%s` (results of %s, machine %s, %d OpenMP threads, git %s). Complete runs only.\n\n",
            f->path, S(f->start_time), S(f->cpu_model), f->omp_threads, S(f->git_revision));
    fprintf(o.f, "Training MACs (fp32-MAC equivalents, method.md 6.3): the bit-weighted sums of the `cost/` "
                 "columns of each phase against the same phases counted at fp32 (`cost/fwd_macs` x iterations x "
                 "batch; no error MACs for the layer that reads the image, weight-gradient MACs only for conv, "
                 "binary conv and linear layers, as `core/train.c` counts them).\n\n");
    fprintf(o.f, "| run | bits W-A/err | cr | fwd bit/fp32 | err bit/fp32 | wgrad bit/fp32 | bit-MACs | fp32 MACs | "
                 "bit/fp32 | reduction | memory est. (MiB) | fp32 est. (MiB) | est. ratio | measured arenas (MiB) | "
                 "measured ratio | wall (s) | peak RSS (MiB) |\n");
    fprintf(o.f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < f->n_runs; i++) {
        const Run *r = &f->runs[i];
        const Efficiency *e = &r->eff;
        if (!e->ok) continue;
        char bl[64];
        bits_label(&r->c, bl, sizeof bl);
        char mr[48];
        snprintf(mr, sizeof mr, "%s%s%s", MD("%.3f", r->train_mem_ratio), r->train_memory[0] ? " " : "",
                 r->train_memory);
        fprintf(o.f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->name, bl,
                MD("%.5f", r->mean_cost_ratio), MD("%.4f", ratio_or_nan(e->bit[0], e->fp[0])),
                MD("%.4f", ratio_or_nan(e->bit[1], e->fp[1])), MD("%.4f", ratio_or_nan(e->bit[2], e->fp[2])),
                MD("%.3E", e->bit_total), MD("%.3E", e->fp_total), MD("%.4f", e->ratio),
                MD("%.2f %%", e->reduction_pct), MD("%.2f", e->mem_est / 1048576.0),
                MD("%.2f", e->mem_fp32 / 1048576.0), MD("%.3f", e->mem_ratio), MD("%.2f", r->train_mem / 1048576.0),
                mr, MD("%.1f", r->wall_time_s), MD("%.1f", r->peak_rss_bytes / 1048576.0));
    }
    if (ref) {
        fprintf(o.f, "\nAgainst the full-precision group `%s` (mean of its %d complete run%s): bit-MACs %s, wall "
                     "%s s, estimated memory %s MiB, test top-1 at the selected checkpoint %s %%.\n\n",
                ref->name, ref->n, ref->n == 1 ? "" : "s", MD("%.4E", ref->eff_bit), MD("%.1f", ref->wall),
                MD("%.2f", ref->mem_est / 1048576.0), MD("%.2f", ref->st[M_SEL].mean));
        fprintf(o.f, "| run | bit-MACs / ref | reduction vs ref | wall / ref | peak RSS / ref | memory est. / ref | "
                     "test top-1 at selected − ref (pp) |\n|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < f->n_runs; i++) {
            const Run *r = &f->runs[i];
            const Efficiency *e = &r->eff;
            if (!e->ok) continue;
            double bv = ratio_or_nan(e->bit_total, ref->eff_bit);
            fprintf(o.f, "| %s | %s | %s | %s | %s | %s | %s |\n", r->name, MD("%.4f", bv),
                    MD("%.2f %%", 100.0 * (1 - bv)), MD("%.3f", ratio_or_nan(r->wall_time_s, ref->wall)),
                    MD("%.3f", ratio_or_nan(r->peak_rss_bytes, ref->rss)),
                    MD("%.3f", ratio_or_nan(e->mem_est, ref->mem_est)), MD("%+.2f", r->metric[M_SEL] - ref->st[M_SEL].mean));
        }
    } else {
        fprintf(o.f, "\nThis experiment has no full-precision run (precision.schedule: full or model.conv: fp32), "
                     "so there are no ratios against one.\n");
    }
    fprintf(o.f,
            "\n**The memory figures are an estimate, not a measurement.** They count, for one training step at "
            "the run's batch B: the latent fp32 weights, their fp32 gradients, the optimizer state (AdamW 2, SGD "
            "with momentum 1 fp32 slot per parameter) and the BN/quantizer buffers, all at 4 bytes; plus every "
            "layer output (saved for the backward pass) and its gradient, B x C x H x W each. The fp32 estimate "
            "keeps all of these at 4 bytes, as a fake-quant implementation does (this engine keeps less: "
            "activation codes, int16 Y, shared buffers; bench/README.md). The method estimate stores the tensors that feed "
            "a binary conv at the peak k bits of the run's schedule (the binary conv's backward needs only "
            "Q_k(A0)) and the error at each binary conv output at the peak error bits, the rest at 4 bytes. "
            "Peak bits: the maximum over the schedule's iterations (0 bits = none counted as 32). The measured "
            "peak RSS is the process's (getrusage), which includes the dataset in memory and, in a grid, the "
            "largest of the runs before it.\n\n"
            "**The measured columns** are the run's own training arenas (`train_memory_bytes`: activations, their "
            "gradients, what backward saves, scratch and noise; not parameters, gradients or optimizer state) as "
            "the engine plans and allocates them for the run's batch in one process, and their ratio to the run's "
            "fp32 twin (the same architecture with fp32 convs, planned at the same batch: "
            "`train_memory_fp32_bytes`), with the run's `train.memory` "
            "setting. They differ from the estimate where the engine keeps more than the paper's count: its exact "
            "backward also needs the fp32 input of each binary conv for the E3 Jacobian (results/README.md).\n");
    return out_close(&o, err);
}

/* "mean ± sd" of a seed summary ("mean" for one seed, "–" for none) */
static const char *mean_sd(char *buf, size_t cap, const SeedStats *st) {
    if (st->n >= 2 && !isnan(st->sd))
        snprintf(buf, cap, "%.2f ± %.2f", st->mean, st->sd);
    else if (st->n >= 1 && !isnan(st->mean))
        snprintf(buf, cap, "%.2f", st->mean);
    else
        snprintf(buf, cap, "–");
    return buf;
}

#define MEAN_SD(st) mean_sd((char[64]){0}, 64, (st))

/* the 95 % interval of a summary: none for one seed */
static const char *interval(char *buf, size_t cap, const SeedStats *st) {
    if (st->n >= 2 && !isnan(st->ci_lo))
        snprintf(buf, cap, "[%.2f, %.2f]", st->ci_lo, st->ci_hi);
    else if (st->n == 1)
        snprintf(buf, cap, "– (n = 1)");
    else
        snprintf(buf, cap, "–");
    return buf;
}

/* a p-value: three decimals, or the exponent below 0.001 */
static const char *pvalue(char *buf, size_t cap, double p) {
    if (isnan(p))
        snprintf(buf, cap, "–");
    else if (p < 0.001)
        snprintf(buf, cap, "%.1e", p);
    else
        snprintf(buf, cap, "%.3f", p);
    return buf;
}

/* the time-to-accuracy cell of a group */
static const char *tta_cell(char *buf, size_t cap, const Group *g) {
    if (g->tta_reached == 0) {
        snprintf(buf, cap, "not reached (0 of %d)", g->n);
        return buf;
    }
    int k = snprintf(buf, cap, "%.0f steps", g->tta_steps.mean);
    if (!isnan(g->tta_s.mean)) k += snprintf(buf + k, cap - (size_t)k, ", %.1f s", g->tta_s.mean);
    if (g->tta_reached < g->n) k += snprintf(buf + k, cap - (size_t)k, " (%d of %d reached)", g->tta_reached, g->n);
    if (!isnan(g->tta_steps.olympic_mean)) {
        k += snprintf(buf + k, cap - (size_t)k, "; olympic %.0f steps", g->tta_steps.olympic_mean);
        if (!isnan(g->tta_s.olympic_mean)) snprintf(buf + k, cap - (size_t)k, ", %.1f s", g->tta_s.olympic_mean);
    }
    return buf;
}

/* the comparison table (Markdown): one row per configuration, the columns
 * that apply (the paired difference with a compare_to, the fixed-bits test
 * top-1 with a cyclic configuration, the time to accuracy with a
 * target_top1), and the legend of every column */
static void comparison_table(const ExpFile *f, FILE *o) {
    const int has_cmp = f->cmp_group >= 0, has_tta = f->target_top1 > 0;
    int has_fixed = 0, on_test = 0;
    for (int gi = 0; gi < f->n_groups; gi++) {
        has_fixed |= !isnan(f->groups[gi].eval_bits_fixed);
        on_test |= f->groups[gi].curve_on_test;
    }
    fprintf(o, "## %s\n\n", f->experiment);
    fprintf(o, "Results file `%s`: experiment `%s`, results of %s (file created %s), machine %s (%d OpenMP threads), "
               "git %s, build %s, %s.\n\n",
            f->path, f->experiment, S(f->start_time), S(f->first_start_time), S(f->cpu_model), f->omp_threads,
            S(f->git_revision), S(f->build), S(f->compiler));
    if (!f->stats_ok)
        fprintf(o, "**The statistics over seeds were not available to this build (experiments/stats.c): the "
                   "means and intervals below are missing.**\n\n");
    int ncol = 5;
    fprintf(o, "| configuration | bits W-A/err | n seeds | test top-1 at selected (%%), mean ± sd | 95 %% CI |");
    if (has_cmp) fprintf(o, " Δ vs %s (pp), 95 %% CI | p |", f->compare_to), ncol += 2;
    fprintf(o, " final test top-1 (%%) |"), ncol++;
    if (has_fixed) fprintf(o, " test top-1 at fixed bits (%%) |"), ncol++;
    fprintf(o, " best test top-1 (selected on test) (%%) |"), ncol++;
    if (has_tta) fprintf(o, " time to %g %% %s top-1 |", f->target_top1, on_test ? "val (or test)" : "val"), ncol++;
    fprintf(o, " cost ratio cr | bit-MACs | wall time (s) |\n|");
    ncol += 3;
    for (int c = 0; c < ncol; c++) fprintf(o, "---|");
    fputc('\n', o);
    for (int gi = 0; gi < f->n_groups; gi++) {
        const Group *g = &f->groups[gi];
        char bl[64];
        bits_label(&f->runs[g->first_run].c, bl, sizeof bl);
        if (g->n == 0) {
            fprintf(o, "| %s | %s | 0 of %d complete |", g->name, bl, g->n_all);
            for (int c = 3; c < ncol; c++) fprintf(o, " – |");
            fputc('\n', o);
            continue;
        }
        char nl[32];
        if (g->n == g->n_all)
            snprintf(nl, sizeof nl, "%d", g->n);
        else
            snprintf(nl, sizeof nl, "%d of %d", g->n, g->n_all);
        fprintf(o, "| %s | %s | %s | %s | %s |", g->name, bl, nl, MEAN_SD(&g->st[M_SEL]),
                interval((char[64]){0}, 64, &g->st[M_SEL]));
        if (has_cmp) {
            const PairedStats *d = &g->diff;
            char dc[96];
            if (g->is_ref)
                snprintf(dc, sizeof dc, "reference");
            else if (d->n >= 2 && !isnan(d->ci_lo))
                snprintf(dc, sizeof dc, "%+.2f [%+.2f, %+.2f]", d->mean_diff, d->ci_lo, d->ci_hi);
            else if (d->n == 1)
                snprintf(dc, sizeof dc, "%+.2f (1 seed in common, no interval)", d->mean_diff);
            else
                snprintf(dc, sizeof dc, "– (no seed in common)");
            fprintf(o, " %s | %s |", dc, g->is_ref ? "–" : pvalue((char[32]){0}, 32, d->p_two_sided));
        }
        fprintf(o, " %s |", MEAN_SD(&g->st[M_FINAL]));
        if (has_fixed) {
            if (isnan(g->eval_bits_fixed))
                fprintf(o, " – |");
            else
                fprintf(o, " %s (%g bits) |", MEAN_SD(&g->st[M_SEL_FIXED]), g->eval_bits_fixed);
        }
        fprintf(o, " %s |", MEAN_SD(&g->st[M_PAPER]));
        if (has_tta) fprintf(o, " %s |", tta_cell((char[160]){0}, 160, g));
        fprintf(o, " %s | %s | %s |\n", MD("%.5f", g->cr), MD("%.3E", g->bit_macs), MD("%.1f", g->wall));
    }
    fprintf(o, "\n**Columns.** *configuration*: the run name without `seed=N`. *bits W-A/err*: the weight and "
               "activation bits of the schedule / the error bits. *n seeds*: complete runs (\"k of n\" when some "
               "are not complete); every number is over them. *test top-1 at selected*: the test top-1 of the "
               "checkpoint with the best validation top-1 (`test_top1_at_selected`; the final weights for runs "
               "without a validation split): the number to report; mean ± sample standard deviation. *95 %% CI*: "
               "the t-interval of the mean, mean ± t(0.975, n − 1) · sd / √n (GSL's `gsl_cdf_tdist_Pinv`); none "
               "for n = 1.");
    if (has_cmp)
        fprintf(o, " *Δ vs %s*: the paired difference in percentage points, seed by seed (same `train.seed`): "
                   "the mean of this configuration's test top-1 at selected minus %s's over the seeds both "
                   "have, with its 95 %% t-interval; *p*: the two-sided paired t-test (`gsl_cdf_tdist_Q`; – when "
                   "undefined: one pair, or equal differences).",
                f->compare_to, f->compare_to);
    fprintf(o, " *final test top-1*: the final weights' (`final_test_top1`).");
    if (has_fixed)
        fprintf(o, " *test top-1 at fixed bits*: cyclic configurations only, the selected checkpoint evaluated at "
                   "the fixed precision `eval_bits_fixed` (`test_top1_at_selected_fixed`), since the faithful rule "
                   "evaluates at the bits where the schedule ends.");
    fprintf(o, " *best test top-1 (selected on test)*: the paper's metric (`paper_best_top1`), the best of the test "
               "evaluations: chosen by looking at the test set, so it is optimistic and not an estimate of "
               "accuracy.");
    if (has_tta)
        fprintf(o, " *time to %g %%*: MLPerf's time to accuracy, per run the first validation evaluation with "
                   "top-1 ≥ %g %% (`target_top1`)%s: its step and seconds of training (train/time_s at that step; "
                   "analysis/README.md), averaged over the runs that reached it; the olympic mean drops the fastest "
                   "and the slowest run (≥ 5 runs reached).",
                f->target_top1, f->target_top1,
                on_test ? " (the test evaluations for runs without a validation split)" : "");
    fprintf(o, " *cost ratio cr*: CPT's mean per-iteration cost ratio (binary convs only, method.md 6.1). "
               "*bit-MACs*: bit-weighted training MACs of the whole network, fp32 layers included (6.3). *wall "
               "time*: mean per run.\n\n");
}

static int write_md(const ExpFile *f, const char *md_dir, char *err) {
    char path[4096];
    Out o;
    if (path_fmt(path, sizeof path, err, "%s/%s.md", md_dir, f->key) || out_open(&o, path, err)) return -1;
    fprintf(o.f, "<!-- written by cbnn_export from %s; do not edit -->\n\n", f->path);
    comparison_table(f, o.f);
    return out_close(&o, err);
}

static int export_file(const ExpFile *f, const char *out_dir, const char *md_dir, char *err) {
    char dir[4096];
    if (path_fmt(dir, sizeof dir, err, "%s/%s", out_dir, f->key) || mkdir_p(dir, err)) return -1;
    if (write_runs_csv(f, dir, err) || write_dats(f, dir, err) || write_groups_csv(f, dir, err) ||
        write_efficiency(f, dir, err))
        return -1;
    if (mkdir_p(md_dir, err) || write_md(f, md_dir, err)) return -1;
    comparison_table(f, stdout);
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------ --paper */

/* the paper's table entries (method.md 7, read from res.jpg in the authors' repository) */
typedef struct {
    const char *what;
    double fp, adabin, cyc;
    const char *stated;
    const char *source;
} PaperRow;

/* x given to 3 significant digits: the half-unit of its last digit */
static double half_ulp3(double x) { return 0.5 * pow(10.0, floor(log10(fabs(x))) - 2); }

static void paper_arith(FILE *o) {
    static const PaperRow rows[] = {
        {"CIFAR-10 ResNet-18", 1.05e15, 1.08e15, 1.20e14, "−88.88 %", "Table 1, Training MACs"},
        {"ImageNet ResNet-18", 2.74e16, 2.81e16, 1.05e15, "−96.09 %", "Table 2, Training MACs"},
        {"VOC Faster R-CNN (training column)", 1.15e9, 1.16e9, 4.42e7, "−96.09 %", "Table 3, MACs Training"},
    };
    fprintf(o, "# The arithmetic of the paper's efficiency claims\n\n");
    fprintf(o, "Written by `cbnn_export --paper`. The paper's table entries are quoted (method.md §7, read from "
               "`res.jpg` in the authors' repository, which shows Tables 1–3); every other number below is computed "
               "by this program.\n\n");
    fprintf(o, "## Reductions from the table entries (method.md §6.2)\n\n");
    fprintf(o, "| Table | FP (quoted) | AdaBin (quoted) | CycleBNN (quoted) | 1 − Cyc/FP | 1 − Cyc/AdaBin | "
               "paper says |\n|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const PaperRow *p = &rows[i];
        fprintf(o, "| %s: %s | %.2E | %.2E | %.2E | %.4f %% | %.4f %% | %s |\n", p->what, p->source, p->fp, p->adabin,
                p->cyc, 100 * (1 - p->cyc / p->fp), 100 * (1 - p->cyc / p->adabin), p->stated);
    }
    const PaperRow *c = &rows[0];
    double r = 1 - c->cyc / c->adabin;
    fprintf(o, "\n**CIFAR-10, −88.88 %%.** 1 − %.2E / %.2E = 1 − %.10f = %.10f, i.e. %.6f %%: truncated to two "
               "decimals %.2f %% (rounded it would be %.2f %%). So the paper's −88.88 %% is CycleBNN against AdaBin "
               "(the most expensive baseline), truncated; against full precision it would be %.2f %%.\n\n",
            c->cyc, c->adabin, c->cyc / c->adabin, r, 100 * r, floor(100 * 100 * r) / 100, round(100 * 100 * r) / 100,
            100 * (1 - c->cyc / c->fp));

    fprintf(o, "**ImageNet and VOC, −96.09 %%.** The entries are given to three significant digits, so each true "
               "value lies within half a unit of its last digit. The reduction the entries allow:\n\n");
    fprintf(o, "| Table | against | Cyc/ref, entries | Cyc/ref range | reduction range | contains 96.09 %%? |\n"
               "|---|---|---|---|---|---|\n");
    for (size_t i = 1; i < sizeof rows / sizeof rows[0]; i++) {
        const PaperRow *p = &rows[i];
        const double refs[2] = {p->fp, p->adabin};
        const char *rn[2] = {"FP", "AdaBin"};
        for (int k = 0; k < 2; k++) {
            double hc = half_ulp3(p->cyc), hr = half_ulp3(refs[k]);
            double lo = (p->cyc - hc) / (refs[k] + hr), hi = (p->cyc + hc) / (refs[k] - hr);
            int contains = 100 * (1 - hi) <= 96.09 && 96.09 <= 100 * (1 - lo);
            fprintf(o, "| %s | %s | %.5f | %.5f – %.5f | %.3f %% – %.3f %% | %s |\n", p->what, rn[k], p->cyc / refs[k],
                    lo, hi, 100 * (1 - hi), 100 * (1 - lo), contains ? "yes" : "no");
        }
    }
    const PaperRow *in = &rows[1], *voc = &rows[2];
    double f9609 = 1 - 0.9609;
    fprintf(o, "\nA reduction of 96.09 %% needs Cyc/ref = %.4f. Against the ImageNet FP entry that is %.4E MACs "
               "(it would print as %.2E, not %.2E); against AdaBin %.4E (%.2E). For VOC: %.4E (%.2E) against FP, "
               "%.4E (%.2E) against AdaBin, not %.2E. So −96.09 %% does not follow from Table 2's or Table 3's "
               "entries, whichever reference is used: the entries give %.2f–%.2f %%. The ImageNet and VOC ratios "
               "are nearly the same (%.5f and %.5f against FP), so one common factor was applied to both; its formula "
               "was not recovered (method.md §6.2).\n\n",
            f9609, f9609 * in->fp, f9609 * in->fp, in->cyc, f9609 * in->adabin, f9609 * in->adabin, f9609 * voc->fp,
            f9609 * voc->fp, f9609 * voc->adabin, f9609 * voc->adabin, voc->cyc,
            fmin(100 * (1 - in->cyc / in->fp), 100 * (1 - voc->cyc / voc->fp)),
            fmax(100 * (1 - in->cyc / in->adabin), 100 * (1 - voc->cyc / voc->adabin)), in->cyc / in->fp,
            voc->cyc / voc->fp);
    fprintf(o, "A numerical coincidence, unconfirmed by anything seen (method.md §6.2): 1 − (5·8)/(32·32) = %.5f %%, "
               "a 5-bit × 8-bit MAC against a 32 × 32 one.\n\n",
            100 * (1 - 5.0 * 8 / (32.0 * 32)));
    fprintf(o, "Fig. 1b's \"×27 savings\" (ImageNet, against AdaBin): %.2E / %.2E = %.2f.\n\n", in->adabin, in->cyc,
            in->adabin / in->cyc);
    fprintf(o, "Memory 0.25× (−75 %%, all three tables): 8 / 32 = %.2f, 1 − 8/32 = %.0f %%, consistent with 8-bit "
               "errors against 32-bit ones (an inference, method.md §6.2).\n\n",
            8.0 / 32, 100 * (1 - 8.0 / 32));

    /* CPT's cr over the 2-6 / 8-bit schedule, with the engine's functions */
    fprintf(o, "## CPT's cost ratio cr over a 2–6 / 8-bit, 8-cycle run (method.md §6.1)\n\n");
    fprintf(o, "cr = (b² + 2·b·g) / (3·32²) per iteration (`prec_cost_ratio`), b from `prec_at` over the whole "
               "schedule, averaged with `prec_cost_add` / `prec_cost_mean` (core/precision.h).\n\n");
    fprintf(o, "| iterations I | cycle P | mean b | mean b² | (E[b²] + 16·E[b]) / 3072 | mean cr | 1 − cr |\n"
               "|---|---|---|---|---|---|---|\n");
    static const struct {
        long iters;
        const char *what;
    } runs[] = {{1000000, "10^6 (the continuous limit, method.md §2.1)"},
                {187500, "187,500 (CIFAR-10 README run, §5.2)"},
                {9000000, "9,000,000 (ImageNet README run, §5.1)"}};
    double cr_first = NAN;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        PrecSchedule s = {0};
        s.kind = PREC_CYCLIC;
        s.bits_min = 2, s.bits_max = 6, s.grad_min = 8, s.grad_max = 8;
        s.cycles = 8;
        s.total_iters = runs[i].iters;
        PrecCostMean acc = {0, 0, 0};
        double sb = 0, sb2 = 0;
        for (long it = 0; it < runs[i].iters; it++) {
            PrecBits b = prec_at(&s, it);
            prec_cost_add(&acc, prec_cost_ratio(b.bits, b.grad_bits));
            sb += b.bits;
            sb2 += b.bits * b.bits;
        }
        double eb = sb / runs[i].iters, eb2 = sb2 / runs[i].iters, cr = prec_cost_mean(&acc);
        if (i == 0) cr_first = cr;
        fprintf(o, "| %s | %ld | %.4f | %.4f | %.6f | %.6f | %.2f %% |\n", runs[i].what, prec_cycle_length(&s), eb,
                eb2, (eb2 + 16 * eb) / 3072, cr, 100 * (1 - cr));
    }
    fprintf(o, "\nSo the reference code's own metric gives cr = %.6f, a %.2f %% reduction, not the paper's 96.09 %%. "
               "Fully fp32 GEMMs give cr = %.0f (`prec_cost_ratio(32, 32)`); a fixed 5/8 run gives %.6f.\n\n",
            cr_first, 100 * (1 - cr_first), prec_cost_ratio(32, 32), prec_cost_ratio(5, 8));

    /* this suite's whole-network accounting of the README runs */
    fprintf(o, "## This suite's whole-network count of the README runs (core/train.h `train_estimate`)\n\n");
    fprintf(o, "Bit-weighted MACs of every layer (fp32 stem, BN, shortcuts and classifier at weight 1; binary convs "
               "at b·b/1024 forward, b·g/1024 backward), for the README recipes (batch 16, cyclic 2–6 / 8 bits, 8 "
               "cycles):\n\n");
    fprintf(o, "| run | iterations | fwd MACs / image | fp32 training MACs | bit-weighted MACs | bit/fp32 | "
               "reduction | paper's CycleBNN / FP entries |\n|---|---|---|---|---|---|---|---|\n");
    static const struct {
        const char *arch, *dataset, *what;
        long iters;
        const PaperRow *paper;
    } est[] = {{"cifar_resnet18", "cifar10", "CIFAR-10 ResNet-18", 187500, &rows[0]},
               {"imagenet_resnet18", "imagenet", "ImageNet ResNet-18", 9000000, &rows[1]}};
    for (size_t i = 0; i < sizeof est / sizeof est[0]; i++) {
        RunConfig c;
        config_defaults(&c);
        snprintf(c.arch, sizeof c.arch, "%s", est[i].arch);
        c.conv = CONV_BINARY;
        snprintf(c.dataset, sizeof c.dataset, "%s", est[i].dataset);
        c.prec_schedule = PREC_CYCLIC;
        c.bits.min = 2, c.bits.max = 6, c.grad_bits.min = c.grad_bits.max = 8;
        c.prec_cycles = 8;
        c.iterations = est[i].iters;
        c.batch_size = 16;
        DatasetShape ds;
        TrainEstimate te;
        char err[ERRLEN] = "";
        if (dataset_nominal(c.dataset, &ds) ||
            train_estimate(&c, ds.channels, ds.height, ds.width, ds.num_classes, ds.n_train, &te, err, sizeof err)) {
            fprintf(o, "| %s | (could not estimate: %s) |||||||\n", est[i].what, err);
            continue;
        }
        fprintf(o, "| %s | %ld | %.4E | %.3E | %.3E | %.4f | %.2f %% | %.2E / %.2E |\n", est[i].what, te.iterations,
                (double)te.fwd_macs, te.fp32_macs, te.bit_macs, te.bit_macs / te.fp32_macs,
                100 * (1 - te.bit_macs / te.fp32_macs), est[i].paper->cyc, est[i].paper->fp);
    }
    fprintf(o, "\nThe absolute counts are not the paper's (its \"adjusted MACs\" formula was not recovered, method.md "
               "§6.2); the fp32 layers that CycleBNN leaves at full precision keep the whole-network ratio above cr.\n");
}

static int paper_mode(const char *out_dir, char *err) {
    if (mkdir_p(out_dir, err)) return -1;
    char path[4096];
    Out o;
    if (path_fmt(path, sizeof path, err, "%s/paper_arithmetic.md", out_dir) || out_open(&o, path, err)) return -1;
    paper_arith(o.f);
    if (out_close(&o, err)) return -1;
    paper_arith(stdout);
    fflush(stdout);
    fprintf(stderr, "cbnn_export: wrote %s\n", path);
    return 0;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *o) {
    fprintf(o, "usage: cbnn_export [--out DIR] [--md-dir DIR] RESULTS.h5 [RESULTS.h5 ...]\n"
               "       cbnn_export [--out DIR] --paper\n"
               "Exports results files (schema v4) to DIR/K/ (default DIR plots/out/data), K the file's name\n"
               "without .h5: runs.csv, <run>.train.dat, <run>.val.dat, <run>.test.dat, <run>.landscape*.dat (only those of\n"
               "the run's checkpoint now), groups.csv, efficiency.csv and .md; and the comparison table to\n"
               "MDDIR/K.md (default results/) and stdout.\n"
               "--paper prints the arithmetic of the paper's reductions and writes DIR/paper_arithmetic.md.\n"
               "Columns: analysis/README.md.\n");
}

int main(int argc, char **argv) {
    const char *out_dir = "plots/out/data", *md_dir = "results";
    int paper = 0, nfiles = 0;
    const char **files = xcalloc((size_t)argc, sizeof *files);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--md-dir")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cbnn_export: %s needs a directory\n", argv[i]);
                return 2;
            }
            if (!strcmp(argv[i], "--out"))
                out_dir = argv[++i];
            else
                md_dir = argv[++i];
        } else if (!strcmp(argv[i], "--paper")) {
            paper = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            free(files);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "cbnn_export: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    char err[ERRLEN] = "";
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (paper) {
        int rc = paper_mode(out_dir, err);
        if (rc) fprintf(stderr, "cbnn_export: %s\n", err);
        if (rc || nfiles == 0) {
            free(files);
            return rc ? 1 : 0;
        }
    }
    if (nfiles == 0) {
        usage(stderr);
        free(files);
        return 2;
    }
    /* read and check everything first: an error leaves no output behind */
    ExpFile *fs = xcalloc((size_t)nfiles, sizeof *fs);
    int rc = 0;
    for (int i = 0; i < nfiles && !rc; i++) {
        if (load_file(files[i], &fs[i], err)) rc = 1;
        for (int k = 0; k < i && !rc; k++)
            if (!strcmp(fs[k].key, fs[i].key))
                rc = 1, errf(err, "%s and %s have the same name '%s': their outputs would overwrite each other; "
                             "export them separately", files[k], files[i], fs[i].key);
    }
    if (rc) fprintf(stderr, "cbnn_export: %s\n", err);
    for (int i = 0; i < nfiles && !rc; i++) {
        if (export_file(&fs[i], out_dir, md_dir, err)) {
            fprintf(stderr, "cbnn_export: %s\n", err);
            rc = 1;
        } else {
            fprintf(stderr, "cbnn_export: %s -> %s/%s/ and %s/%s.md\n", files[i], out_dir, fs[i].key, md_dir,
                    fs[i].key);
        }
    }
    for (int i = 0; i < nfiles; i++) free_file(&fs[i]);
    free(fs);
    free(files);
    return rc;
}
