/* cbnn_export (analysis/export.c) end to end: a small results file is written
 * with the experiments/results_h5 API (no training: 2 runs x 2 seeds with known
 * rows, cost/ tables, attributes, a loss-landscape table and a pending run
 * outside the grid), exported by the cbnn_export binary given as argv[1],
 * and every output is read back:
 *   - <file>.train.dat / .eval.dat: the HDF5 values, row for row, exactly
 *     (values chosen not to be short decimals, so the printing must round-trip);
 *   - runs.csv: header, column values, the grid's order (not HDF5's name order),
 *     the run outside the grid last, NaN as nan, quoted run names;
 *   - groups.csv: mean and sample std over the seeds against hand-computed values;
 *   - efficiency.csv: the per-phase fp32 MACs and bit-MACs ratios of a run with a
 *     hand-made cost/ table, the fp32 MACs of a run with the real model's table
 *     against train_estimate(), the ratios against the full-precision group;
 *   - <file>.landscape.dat: a blank line after every grid_n rows; landscape1d;
 *     a landscape of an older checkpoint than the run's (stale) is left out with
 *     a warning naming the run and both steps; runs.csv gives the steps;
 *   - MDDIR/<file>.md and the same table on stdout;
 *   - outputs are keyed by file: a copy exptest_old.h5 of the same experiment
 *     exported beside it gets its own DIR/exptest_old/ and exptest_old.md (and
 *     leaves exptest's alone); two files of the same name are refused;
 *   - --paper: 88.88 %;
 *   - errors (missing file, schema version 2, a complete run without eval rows,
 *     a good file next to a bad one): a message naming the file (and run), a
 *     non-zero exit and no output at all. */
#include <errno.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "experiments/config.h"
#include "model.h"
#include "precision.h"
#include "results_h5.h"
#include "testutil.h"
#include "train_run.h"

#define ITERS 10
#define BATCH 4
#define NSAMP ((double)ITERS * BATCH)
#define NRUNS 4 /* the grid */

static const char *EXP_YAML = "name: exptest\n"
                              "base:\n"
                              "  model: {arch: cifar_resnet8, conv: cyclebnn}\n"
                              "  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 2}\n"
                              "  data: {dataset: fashion_mnist}\n"
                              "  optim: {name: adamw, lr: 0.002}\n"
                              "  train: {iterations: 10, batch_size: 4, eval_interval: 5, eval_batch_size: 4, "
                              "log_interval: 1, seed: 1}\n"
                              "runs:\n"
                              "  zcyc: {precision.cycles: 2}\n"
                              "  afull: {precision.schedule: full}\n"
                              "seeds: [1, 2]\n";

/* the grid's order; HDF5 lists them by name (afull first) */
static const char *RUN[NRUNS] = {"zcyc,seed=1", "zcyc,seed=2", "afull,seed=1", "afull,seed=2"};
static const char *STEM[NRUNS] = {"zcyc_seed_1", "zcyc_seed_2", "afull_seed_1", "afull_seed_2"};
static const double FINAL[NRUNS] = {70.25, 71.75, 80.0, 81.0};
static const double BEST[NRUNS] = {72.0, 73.5, 80.5, 81.5};
static const double WALL[NRUNS] = {10.5, 11.5, 20.0, 22.0};
static const double RSS[NRUNS] = {1e8, 1.1e8, 2e8, 2e8};

/* rows of run i: values that are not short decimals */
static int n_train(int i) { return 7 + i; }
static long tr_step(int i, int k) { return k + 1; }
static double tr_loss(int i, int k) { return 2.5 / (1.0 + k) + i / 3.0; }
static double tr_lr(int i, int k) { return 0.1 * pow(0.999, k) / (i + 1); }
static double tr_bits(int i, int k) { return i < 2 ? 2 + k % 5 : 32; }
static double tr_gbits(int i, int k) { return i < 2 ? 8 : 32; }
static double tr_cr(int i, int k) { return prec_cost_ratio(tr_bits(i, k), tr_gbits(i, k)); }
static double tr_top1(int i, int k) { return i < 2 ? 100.0 * (k + 1) / 7.0 : NAN; } /* afull: not logged */
static int n_eval(int i) { return 2; }
static long ck_step(int i) { return tr_step(i, n_train(i) - 1); } /* zcyc runs: a checkpoint at the last row */
static long ev_step(int i, int k) { return 5L * (k + 1); }
static double ev_top1(int i, int k) { return k ? FINAL[i] : FINAL[i] - 1.0 / 3.0; }
static double ev_loss(int i, int k) { return 1.0 / (3.0 + k + i); }

/* ---- helpers ---- */

static char g_tmp[64];

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    return remove(p);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

/* run argv (argv[0] a path); stdout, stderr to files; returns the exit status */
static int run_cmd(char *const argv[], const char *out, const char *errp) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(errp, "w", stderr)) _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* lines of a file (a blank line is an empty string); returns the count */
static int split_lines(char *s, char ***out) {
    int n = 0, cap = 64;
    char **l = malloc(sizeof *l * (size_t)cap);
    char *p = s;
    while (p && *p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        if (n == cap) l = realloc(l, sizeof *l * (size_t)(cap *= 2));
        l[n++] = p;
        p = nl ? nl + 1 : NULL;
    }
    *out = l;
    return n;
}

/* CSV fields of one line (RFC 4180 quotes); fields point into buf */
static int csv_split(const char *line, char *buf, char **fields, int max) {
    int n = 0;
    const char *p = line;
    char *o = buf;
    while (n < max) {
        fields[n++] = o;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '"' && p[1] == '"') {
                    *o++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else if (!*p) {
                    break;
                } else {
                    *o++ = *p++;
                }
            }
        } else {
            while (*p && *p != ',') *o++ = *p++;
        }
        *o++ = 0;
        if (*p != ',') break;
        p++;
    }
    return n;
}

/* index of a CSV column by header name */
static int col(char **hdr, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(hdr[i], name)) return i;
    CHECK(0, "no column %s", name);
    return 0;
}

static int same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }
static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fabs(b)); }

/* ---- the results file ---- */

/* cost/ of a zcyc run: made up, with known sums */
#define NFAKE 5
static const char *FK_NAME[NFAKE] = {"input", "conv1", "bn1", "blk.conv", "fc"};
static const char *FK_KIND[NFAKE] = {"input", "conv", "batchnorm2d", "binary_conv", "linear"};
static const int64_t FK_MACS[NFAKE] = {0, 100, 10, 1000, 5};
static const double FK_FWD[NFAKE] = {0, 4000, 400, 625, 200};
static const double FK_ERR[NFAKE] = {0, 0, 400, 5000, 200};
static const double FK_WG[NFAKE] = {0, 4000, 0, 5000, 200};
/* by hand: fp32 fwd = 40 x (100+10+1000+5), err = 40 x (10+1000+5) (conv1 reads the image),
 * wgrad = 40 x (100+1000+5) (conv, binary_conv, linear) */
#define FK_FP_FWD 44600.0
#define FK_FP_ERR 40600.0
#define FK_FP_WG 44200.0
#define FK_BIT_FWD 5225.0
#define FK_BIT_ERR 5600.0
#define FK_BIT_WG 9200.0

static TrainEstimate g_full_est; /* train_estimate of an afull run */
static double g_full_fwd_sum;    /* its forward MACs per sample, summed over layers */

static int write_cost_fake(RunLog *r) {
    ResultsColumn cols[] = {
        {"name", RCOL_STRING, "", FK_NAME},         {"kind", RCOL_STRING, "", FK_KIND},
        {"fwd_macs", RCOL_INT64, "MACs", FK_MACS},  {"fwd_bitmacs", RCOL_FLOAT64, "", FK_FWD},
        {"err_bitmacs", RCOL_FLOAT64, "", FK_ERR}, {"wgrad_bitmacs", RCOL_FLOAT64, "", FK_WG},
    };
    return runlog_table(r, "cost", NFAKE, cols, 6);
}

/* cost/ of an afull run: the real model's layers, at weight 1 (full precision) */
static int write_cost_model(RunLog *r, const RunConfig *c) {
    DatasetShape ds;
    dataset_nominal(c->dataset, &ds);
    Model m;
    char err[512];
    if (model_build(&m, c->arch, CONV_BINARY, ds.channels, ds.height, ds.width, ds.num_classes, err, sizeof err)) {
        CHECK(0, "model_build: %s", err);
        return -1;
    }
    int n = m.n_layers;
    const char **names = calloc((size_t)n, sizeof *names), **kinds = calloc((size_t)n, sizeof *kinds);
    int64_t *macs = calloc((size_t)n, sizeof *macs);
    double *fw = calloc((size_t)n, sizeof *fw), *er = calloc((size_t)n, sizeof *er), *wg = calloc((size_t)n, sizeof *wg);
    g_full_fwd_sum = 0;
    for (int i = 0; i < n; i++) {
        const Layer *l = &m.layers[i];
        names[i] = l->name;
        kinds[i] = l->kind->name;
        macs[i] = l->kind->macs(l);
        g_full_fwd_sum += (double)macs[i];
        /* any values: the bit-weighted sums are checked against bit_macs below */
        fw[i] = NSAMP * (double)macs[i];
        er[i] = i == 1 ? 0 : fw[i];
        wg[i] = fw[i] / 2;
    }
    ResultsColumn cols[] = {
        {"name", RCOL_STRING, "", names},        {"kind", RCOL_STRING, "", kinds},
        {"fwd_macs", RCOL_INT64, "MACs", macs},  {"fwd_bitmacs", RCOL_FLOAT64, "", fw},
        {"err_bitmacs", RCOL_FLOAT64, "", er}, {"wgrad_bitmacs", RCOL_FLOAT64, "", wg},
    };
    int rc = runlog_table(r, "cost", n, cols, 6);
    free(names), free(kinds), free(macs), free(fw), free(er), free(wg);
    model_free(&m);
    return rc;
}

#define LS_N 3
static double ls_alpha(int k) { return -1.0 + (k / LS_N) * (2.0 / 3.0); }
static double ls_beta(int k) { return -1.0 + (k % LS_N) * (2.0 / 3.0); }
static double ls_loss(int k) { return 0.1 + k / 7.0; }
static double ls_top1(int k) { return 90.0 - k / 3.0; }
static int64_t ls_flips(int k) { return 1000 + k; }

static void make_results(const char *path) {
    ExperimentConfig e;
    char err[2048] = "";
    CHECK(experiment_parse(&e, EXP_YAML, strlen(EXP_YAML), "exptest.yaml", err, sizeof err) == 0, "parse: %s", err);
    CHECK(e.n_runs == NRUNS, "%d runs", e.n_runs);
    for (int i = 0; i < NRUNS && i < e.n_runs; i++)
        CHECK(!strcmp(e.runs[i].name, RUN[i]), "run %d is %s, want %s", i, e.runs[i].name, RUN[i]);
    ResultsFile *f = results_create(path, "exptest", EXP_YAML, 2, err, sizeof err);
    CHECK(f != NULL, "results_create: %s", err);
    if (!f) exit(1);
    /* write them in another order than the grid's */
    static const int write_order[NRUNS] = {2, 0, 3, 1};
    for (int w = 0; w < NRUNS; w++) {
        int i = write_order[w];
        const RunConfig *c = &e.runs[i].c;
        char *cfg = config_to_yaml(c);
        RunLog *r = results_run_begin(f, RUN[i], cfg);
        CHECK(r != NULL, "begin %s", RUN[i]);
        free(cfg);
        if (!r) continue;
        for (int k = 0; k < n_train(i); k++) {
            runlog_train(r, tr_step(i, k), tr_loss(i, k), tr_lr(i, k), 0.01 * k);
            runlog_train_precision(r, tr_bits(i, k), tr_gbits(i, k), tr_cr(i, k));
            if (i < 2) runlog_train_top1(r, tr_top1(i, k));
        }
        for (int k = 0; k < n_eval(i); k++) runlog_val(r, ev_step(i, k), ev_top1(i, k), ev_loss(i, k), 6.0);
        if (i < 2) {
            /* the zcyc runs end with a checkpoint at their last step (7, 8); the afull runs have none */
            double w[3] = {0.5, -0.25, 1.0 / 3.0};
            CkptArray ck = {"params", CK_F64, 3, w};
            CHECK(runlog_checkpoint_save(r, ck_step(i), &ck, 1) == 0, "checkpoint %s", RUN[i]);
            CHECK(write_cost_fake(r) == 0, "cost %s", RUN[i]);
            runlog_mean_cost_ratio(r, 0.02676);
            runlog_attr(r, "bit_macs", FK_BIT_FWD + FK_BIT_ERR + FK_BIT_WG);
            runlog_attr(r, "fp32_macs", FK_FP_FWD + FK_FP_ERR + FK_FP_WG);
        } else {
            CHECK(write_cost_model(r, c) == 0, "cost %s", RUN[i]);
            DatasetShape ds;
            dataset_nominal(c->dataset, &ds);
            CHECK(train_estimate(c, ds.channels, ds.height, ds.width, ds.num_classes, ds.n_train, &g_full_est, err,
                                 sizeof err) == 0, "train_estimate: %s", err);
            runlog_mean_cost_ratio(r, 1.0);
            /* bit_macs = the sum of the columns written above: fwd + (fwd - stem) + fwd/2 */
            runlog_attr(r, "bit_macs", NAN);
            runlog_attr(r, "fp32_macs", g_full_est.fp32_macs);
        }
        runlog_attr(r, "images_per_s", 123.25 + i);
        runlog_attr(r, "peak_rss_bytes", RSS[i]);
        CHECK(runlog_end(r, "complete", FINAL[i], BEST[i], WALL[i]) == 0, "end %s", RUN[i]);
    }
    /* a landscape under zcyc,seed=1 */
    double a[LS_N * LS_N], b[LS_N * LS_N], lo[LS_N * LS_N], t1[LS_N * LS_N];
    int64_t fl[LS_N * LS_N];
    for (int k = 0; k < LS_N * LS_N; k++) a[k] = ls_alpha(k), b[k] = ls_beta(k), lo[k] = ls_loss(k), t1[k] = ls_top1(k),
                                          fl[k] = ls_flips(k);
    ResultsColumn lc[] = {{"alpha", RCOL_FLOAT64, "", a},
                          {"beta", RCOL_FLOAT64, "", b},
                          {"loss", RCOL_FLOAT64, "nats", lo},
                          {"top1", RCOL_FLOAT64, "percent", t1},
                          {"flips", RCOL_INT64, "signs", fl}};
    ResultsAttr la[] = {{"grid_n", LS_N, NULL}, {"bits", 6, NULL}, {"note", 0, "test"}, {"checkpoint_step", ck_step(0), NULL}};
    CHECK(results_run_table(f, RUN[0], "landscape", LS_N * LS_N, lc, 5, la, 4) == 0, "landscape table");
    /* zcyc,seed=2: a landscape of its weights at step 4, before it trained on to its checkpoint at 8: stale */
    ResultsAttr stale[] = {{"grid_n", LS_N, NULL}, {"checkpoint_step", 4, NULL}};
    CHECK(results_run_table(f, RUN[1], "landscape", LS_N * LS_N, lc, 5, stale, 2) == 0, "stale landscape table");
    ResultsColumn lc1[] = {{"alpha", RCOL_FLOAT64, "", a},
                           {"loss", RCOL_FLOAT64, "nats", lo},
                           {"top1", RCOL_FLOAT64, "percent", t1},
                           {"flips", RCOL_INT64, "signs", fl}};
    ResultsAttr la1[] = {{"checkpoint_step", ck_step(0), NULL}};
    CHECK(results_run_table(f, RUN[0], "landscape1d", 5, lc1, 4, la1, 1) == 0, "landscape1d table");
    /* a pending run outside the grid */
    char *cfg = config_to_yaml(&e.runs[0].c);
    CHECK(results_run_declare(f, "orphan", cfg) == 1, "declare orphan");
    free(cfg);
    CHECK(results_close(f, 1, err, sizeof err) == 0, "close: %s", err);
    experiment_free(&e);
}

/* a results file whose complete run has no eval rows */
static void make_noeval(const char *path) {
    char err[1024] = "";
    ResultsFile *f = results_create(path, "noeval", "name: noeval\n", 1, err, sizeof err);
    CHECK(f != NULL, "create noeval: %s", err);
    if (!f) return;
    RunConfig c;
    config_defaults(&c);
    char *cfg = config_to_yaml(&c);
    RunLog *r = results_run_begin(f, "lonely", cfg);
    free(cfg);
    runlog_train(r, 1, 2.0, 0.1, 0.0);
    runlog_end(r, "complete", 50, 50, 1);
    CHECK(results_close(f, 1, err, sizeof err) == 0, "close noeval: %s", err);
}

static void set_schema(const char *path, int v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0, "rewrite schema_version");
    H5Aclose(a);
    H5Fclose(f);
}

static void copy_file(const char *src, const char *dst) {
    FILE *i = fopen(src, "rb"), *o = fopen(dst, "wb");
    CHECK(i && o, "copy %s", src);
    if (i && o) {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, i)) > 0) fwrite(buf, 1, n, o);
    }
    if (i) fclose(i);
    if (o) fclose(o);
}

/* ---- checks ---- */

static char g_dir[256]; /* out/exptest */

static void check_dat_train(int i) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.train.dat", g_dir, STEM[i]);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    CHECK(n == 1 + n_train(i), "%s: %d lines, want %d", p, n, 1 + n_train(i));
    CHECK(n > 0 && !strcmp(l[0], "# step loss lr bits grad_bits cost_ratio top1"), "%s header '%s'", p, n ? l[0] : "");
    for (int k = 0; k + 1 < n && k < n_train(i); k++) {
        long step;
        char v[6][64];
        int got = sscanf(l[k + 1], "%ld %63s %63s %63s %63s %63s %63s", &step, v[0], v[1], v[2], v[3], v[4], v[5]);
        double d[6];
        for (int j = 0; j < 6; j++) d[j] = strtod(v[j], NULL);
        CHECK(got == 7 && step == tr_step(i, k) && same(d[0], tr_loss(i, k)) && same(d[1], tr_lr(i, k)) &&
                  same(d[2], tr_bits(i, k)) && same(d[3], tr_gbits(i, k)) && same(d[4], tr_cr(i, k)) &&
                  same(d[5], tr_top1(i, k)),
              "%s row %d: '%s'", p, k, l[k + 1]);
    }
    free(l);
    free(s);
}

static void check_dat_eval(int i) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.eval.dat", g_dir, STEM[i]);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    CHECK(n == 1 + n_eval(i), "%s: %d lines", p, n);
    CHECK(n > 0 && !strcmp(l[0], "# step top1 loss"), "%s header", p);
    for (int k = 0; k + 1 < n && k < n_eval(i); k++) {
        long step;
        double t, lo;
        int got = sscanf(l[k + 1], "%ld %lf %lf", &step, &t, &lo);
        CHECK(got == 3 && step == ev_step(i, k) && t == ev_top1(i, k) && lo == ev_loss(i, k), "%s row %d: '%s'", p, k,
              l[k + 1]);
    }
    free(l);
    free(s);
}

static void check_landscape(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.landscape.dat", g_dir, STEM[0]);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    /* header, then per alpha: N rows and a blank line */
    CHECK(n == 1 + LS_N * (LS_N + 1), "%s: %d lines", p, n);
    CHECK(n > 0 && !strcmp(l[0], "# alpha beta loss top1 flips"), "%s header", p);
    int k = 0;
    for (int line = 1; line < n; line++) {
        if ((line - 1) % (LS_N + 1) == LS_N) {
            CHECK(l[line][0] == 0, "%s line %d should be blank: '%s'", p, line, l[line]);
            continue;
        }
        double a, b, lo, t, fl;
        int got = sscanf(l[line], "%lf %lf %lf %lf %lf", &a, &b, &lo, &t, &fl);
        CHECK(got == 5 && a == ls_alpha(k) && b == ls_beta(k) && lo == ls_loss(k) && t == ls_top1(k) &&
                  fl == (double)ls_flips(k),
              "%s line %d: '%s'", p, line, l[line]);
        k++;
    }
    CHECK(k == LS_N * LS_N, "%d landscape rows", k);
    free(l);
    free(s);
    snprintf(p, sizeof p, "%s/%s.landscape1d.dat", g_dir, STEM[0]);
    s = slurp(p);
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    n = split_lines(s, &l);
    CHECK(n == 6 && !strcmp(l[0], "# alpha loss top1 flips"), "%s: %d lines", p, n);
    for (int j = 1; j < n; j++) {
        double a, lo, t, fl;
        CHECK(sscanf(l[j], "%lf %lf %lf %lf", &a, &lo, &t, &fl) == 4 && a == ls_alpha(j - 1) && lo == ls_loss(j - 1) &&
                  t == ls_top1(j - 1) && fl == (double)ls_flips(j - 1),
              "%s line %d: '%s'", p, j, l[j]);
    }
    free(l);
    free(s);
    /* the runs without a landscape have no such file, nor the run whose landscape is stale */
    snprintf(p, sizeof p, "%s/%s.landscape.dat", g_dir, STEM[1]);
    CHECK(!exists(p), "%s should not exist (its landscape is of step 4, the run's checkpoint of step 8)", p);
}

static void check_runs_csv(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/runs.csv", g_dir);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    CHECK(n == 1 + NRUNS + 1, "runs.csv: %d lines", n);
    CHECK(!strcmp(l[0], "run,file,status,group,arch,conv,schedule,bits_min,bits_max,grad_bits,cycles,seed,final_top1,"
                        "best_top1,mean_cost_ratio,bit_macs,fp32_macs,wall_time_s,images_per_s,peak_rss_bytes,"
                        "checkpoint_step,landscape_step,landscape1d_step"),
          "runs.csv header '%s'", l[0]);
    char hb[1024], *h[32];
    int nh = csv_split(l[0], hb, h, 32);
    CHECK(nh == 23, "runs.csv: %d columns", nh);
    for (int i = 0; i < NRUNS + 1 && i + 1 < n; i++) {
        char b[2048], *v[32];
        int nv = csv_split(l[i + 1], b, v, 32);
        CHECK(nv == nh, "runs.csv row %d: %d fields", i, nv);
        if (nv != nh) continue;
        if (i == NRUNS) { /* the pending run outside the grid: last */
            CHECK(!strcmp(v[col(h, nh, "run")], "orphan") && !strcmp(v[col(h, nh, "status")], "pending") &&
                      !strcmp(v[col(h, nh, "group")], "orphan") && !strcmp(v[col(h, nh, "final_top1")], "nan") &&
                      !strcmp(v[col(h, nh, "peak_rss_bytes")], "nan"),
                  "orphan row '%s'", l[i + 1]);
            continue;
        }
        CHECK(!strcmp(v[col(h, nh, "run")], RUN[i]), "row %d run '%s', want '%s' (grid order)", i, v[0], RUN[i]);
        CHECK(!strncmp(l[i + 1], "\"", 1), "a run name with a comma is quoted: '%s'", l[i + 1]);
        CHECK(!strcmp(v[col(h, nh, "file")], STEM[i]), "row %d file '%s'", i, v[1]);
        CHECK(!strcmp(v[col(h, nh, "status")], "complete"), "row %d status", i);
        CHECK(!strcmp(v[col(h, nh, "group")], i < 2 ? "zcyc" : "afull"), "row %d group '%s'", i, v[3]);
        CHECK(!strcmp(v[col(h, nh, "arch")], "cifar_resnet8") && !strcmp(v[col(h, nh, "conv")], "cyclebnn"),
              "row %d arch/conv", i);
        CHECK(!strcmp(v[col(h, nh, "schedule")], i < 2 ? "cyclic" : "full"), "row %d schedule", i);
        CHECK(!strcmp(v[col(h, nh, "bits_min")], "2") && !strcmp(v[col(h, nh, "bits_max")], "6") &&
                  !strcmp(v[col(h, nh, "grad_bits")], "8") && !strcmp(v[col(h, nh, "cycles")], "2"),
              "row %d bits", i);
        CHECK(atoi(v[col(h, nh, "seed")]) == 1 + i % 2, "row %d seed", i);
        CHECK(strtod(v[col(h, nh, "final_top1")], NULL) == FINAL[i] &&
                  strtod(v[col(h, nh, "best_top1")], NULL) == BEST[i] &&
                  strtod(v[col(h, nh, "wall_time_s")], NULL) == WALL[i] &&
                  strtod(v[col(h, nh, "images_per_s")], NULL) == 123.25 + i &&
                  strtod(v[col(h, nh, "peak_rss_bytes")], NULL) == RSS[i],
              "row %d numbers '%s'", i, l[i + 1]);
        CHECK(strtod(v[col(h, nh, "mean_cost_ratio")], NULL) == (i < 2 ? 0.02676 : 1.0), "row %d cr", i);
        if (i >= 2) CHECK(!strcmp(v[col(h, nh, "bit_macs")], "nan"), "row %d bit_macs NaN -> nan", i);
        /* steps: the checkpoint's, and the exported landscapes' (none for the stale one of row 1) */
        char want_ck[16] = "";
        if (i < 2) snprintf(want_ck, sizeof want_ck, "%ld", ck_step(i));
        const char *ls = i == 0 ? want_ck : "";
        CHECK(!strcmp(v[col(h, nh, "checkpoint_step")], want_ck) && !strcmp(v[col(h, nh, "landscape_step")], ls) &&
                  !strcmp(v[col(h, nh, "landscape1d_step")], ls),
              "row %d steps '%s' '%s' '%s', want '%s' '%s' '%s'", i, v[col(h, nh, "checkpoint_step")],
              v[col(h, nh, "landscape_step")], v[col(h, nh, "landscape1d_step")], want_ck, ls, ls);
    }
    free(l);
    free(s);
}

static void check_groups_csv(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/groups.csv", g_dir);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    CHECK(n == 3, "groups.csv: %d lines (the pending group has no complete run)", n);
    CHECK(!strcmp(l[0], "group,n,top1_mean,top1_std,best_top1_mean,best_top1_std,mean_cost_ratio,bit_macs,fp32_macs,"
                        "schedule,bits_min,bits_max,cycles"),
          "groups.csv header '%s'", l[0]);
    char hb[1024], *h[32];
    int nh = csv_split(l[0], hb, h, 32);
    /* by hand: zcyc finals 70.25, 71.75 -> mean 71, std 0.75*sqrt(2); bests 72, 73.5 -> 72.75, 0.75*sqrt(2);
     * afull finals 80, 81 -> 80.5, sqrt(0.5); bests 80.5, 81.5 -> 81, sqrt(0.5) */
    static const struct {
        const char *g;
        double m, sd, bm, bsd, fp;
    } want[2] = {{"zcyc", 71.0, 1.0606601717798212, 72.75, 1.0606601717798212, 129400.0},
                 {"afull", 80.5, 0.70710678118654757, 81.0, 0.70710678118654757, -1}};
    for (int g = 0; g < 2 && g + 1 < n; g++) {
        char b[2048], *v[32];
        int nv = csv_split(l[g + 1], b, v, 32);
        CHECK(nv == nh, "groups.csv row %d", g);
        if (nv != nh) continue;
        double fp = want[g].fp < 0 ? g_full_est.fp32_macs : want[g].fp;
        CHECK(!strcmp(v[col(h, nh, "group")], want[g].g) && atoi(v[col(h, nh, "n")]) == 2, "group row '%s'", l[g + 1]);
        CHECK(close_rel(strtod(v[col(h, nh, "top1_mean")], NULL), want[g].m, 1e-14) &&
                  close_rel(strtod(v[col(h, nh, "top1_std")], NULL), want[g].sd, 1e-14) &&
                  close_rel(strtod(v[col(h, nh, "best_top1_mean")], NULL), want[g].bm, 1e-14) &&
                  close_rel(strtod(v[col(h, nh, "best_top1_std")], NULL), want[g].bsd, 1e-14),
              "group %s mean/std: '%s'", want[g].g, l[g + 1]);
        CHECK(strtod(v[col(h, nh, "fp32_macs")], NULL) == fp, "group %s fp32_macs", want[g].g);
        CHECK(!strcmp(v[col(h, nh, "schedule")], g == 0 ? "cyclic" : "full") &&
                  !strcmp(v[col(h, nh, "cycles")], "2"),
              "group %s config columns", want[g].g);
    }
    free(l);
    free(s);
}

static void check_efficiency(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/efficiency.csv", g_dir);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    CHECK(n == 1 + NRUNS, "efficiency.csv: %d lines", n);
    char hb[4096], *h[64];
    int nh = csv_split(l[0], hb, h, 64);
#define V(name) strtod(v[col(h, nh, name)], NULL)
    double ref_bit = 0, ref_top1 = (FINAL[2] + FINAL[3]) / 2;
    for (int i = 0; i < NRUNS && i + 1 < n; i++) {
        char b[8192], *v[64];
        int nv = csv_split(l[i + 1], b, v, 64);
        CHECK(nv == nh, "efficiency row %d: %d of %d fields", i, nv, nh);
        if (nv != nh) continue;
        CHECK(!strcmp(v[col(h, nh, "run")], RUN[i]), "efficiency row %d is %s", i, v[0]);
        CHECK(V("iterations") == ITERS && V("batch") == BATCH, "row %d iterations/batch", i);
        if (i < 2) {
            CHECK(V("fwd_fp32_macs") == FK_FP_FWD && V("err_fp32_macs") == FK_FP_ERR &&
                      V("wgrad_fp32_macs") == FK_FP_WG && V("fp32_macs") == FK_FP_FWD + FK_FP_ERR + FK_FP_WG,
                  "row %d fp32 phases %s %s %s", i, v[col(h, nh, "fwd_fp32_macs")], v[col(h, nh, "err_fp32_macs")],
                  v[col(h, nh, "wgrad_fp32_macs")]);
            CHECK(V("fwd_bitmacs") == FK_BIT_FWD && V("err_bitmacs") == FK_BIT_ERR && V("wgrad_bitmacs") == FK_BIT_WG &&
                      V("bit_macs") == 20025,
                  "row %d bit phases", i);
            CHECK(close_rel(V("bitmacs_ratio"), 20025.0 / 129400.0, 1e-15) &&
                      close_rel(V("reduction_pct"), 100.0 * (1 - 20025.0 / 129400.0), 1e-14) &&
                      close_rel(V("fwd_ratio"), 5225.0 / 44600.0, 1e-15) &&
                      close_rel(V("err_ratio"), 5600.0 / 40600.0, 1e-15) &&
                      close_rel(V("wgrad_ratio"), 9200.0 / 44200.0, 1e-15),
                  "row %d ratios", i);
            CHECK(V("peak_bits") == 6 && V("peak_grad_bits") == 8, "row %d peak bits", i);
            CHECK(V("mem_est_bytes") < V("mem_fp32_bytes") && V("mem_ratio") < 1 && V("mem_ratio") > 0.5,
                  "row %d memory estimate %s of %s", i, v[col(h, nh, "mem_est_bytes")], v[col(h, nh, "mem_fp32_bytes")]);
        } else {
            /* the real model's table: the fp32 MACs are train_estimate's, the forward ones N x sum of fwd_macs */
            CHECK(close_rel(V("fp32_macs"), g_full_est.fp32_macs, 1e-15), "row %d fp32 %s vs train_estimate %.17g", i,
                  v[col(h, nh, "fp32_macs")], g_full_est.fp32_macs);
            CHECK(V("fwd_fp32_macs") == NSAMP * g_full_fwd_sum, "row %d fwd fp32", i);
            /* written at weight 1 (fwd, err: so the fp32 phases equal them) and fwd/2 (wgrad) */
            CHECK(V("fwd_ratio") == 1.0 && V("err_ratio") == 1.0 && V("wgrad_bitmacs") == NSAMP * g_full_fwd_sum / 2,
                  "row %d phase ratios", i);
            CHECK(V("peak_bits") == 32 && V("peak_grad_bits") == 32 && V("mem_ratio") == 1.0, "row %d full memory", i);
            ref_bit += V("bit_macs") / 2;
        }
        CHECK(!strcmp(v[col(h, nh, "ref_group")], "afull"), "row %d ref group", i);
        CHECK(close_rel(V("top1_minus_ref"), FINAL[i] - ref_top1, 1e-14), "row %d top1 - ref", i);
        CHECK(close_rel(V("wall_vs_ref"), WALL[i] / ((WALL[2] + WALL[3]) / 2), 1e-14) &&
                  close_rel(V("rss_vs_ref"), RSS[i] / 2e8, 1e-14),
              "row %d wall/rss vs ref", i);
        CHECK(V("mem_state_bytes") > 0 && V("params") > 70000 && V("params") < 80000, "row %d params %s", i,
              v[col(h, nh, "params")]);
    }
    /* the zcyc rows against the full group's bit-MACs */
    for (int i = 0; i < 2 && i + 1 < n; i++) {
        char b[8192], *v[64];
        if (csv_split(l[i + 1], b, v, 64) != nh) continue;
        CHECK(close_rel(V("bitmacs_vs_ref"), 20025.0 / ref_bit, 1e-14), "row %d bit-MACs vs ref %s", i,
              v[col(h, nh, "bitmacs_vs_ref")]);
    }
#undef V
    free(l);
    free(s);
    snprintf(p, sizeof p, "%s/efficiency.md", g_dir);
    s = slurp(p);
    CHECK(s && strstr(s, "estimate, not a measurement") && strstr(s, "| zcyc,seed=1 |") &&
              strstr(s, "full-precision group `afull`"),
          "efficiency.md");
    free(s);
}

static void check_md(const char *md_path, const char *stdout_path, const char *h5) {
    char *s = slurp(md_path), *o = slurp(stdout_path);
    CHECK(s != NULL, "%s missing", md_path);
    CHECK(o != NULL, "stdout missing");
    if (s && o) {
        CHECK(strstr(s, h5) != NULL, "E.md names the file");
        CHECK(strstr(s, "results of ") && strstr(s, "machine ") && strstr(s, "git "), "E.md header line");
        /* zcyc: 71.00 ± 1.06 final, 72.75 ± 1.06 best; afull 80.50 ± 0.71 */
        CHECK(strstr(s, "| zcyc | 2-6/8 | 2 | 71.00 ± 1.06 | 72.75 ± 1.06 |") != NULL, "E.md zcyc row:\n%s", s);
        CHECK(strstr(s, "| afull | 32/32 | 2 | 80.50 ± 0.71 | 81.00 ± 0.71 |") != NULL, "E.md afull row");
        CHECK(strstr(s, "| orphan |") && strstr(s, "0 of 1 complete"), "E.md pending group");
        /* stdout has the same table */
        const char *t = strstr(s, "## exptest");
        CHECK(t && strstr(o, t), "stdout holds the table of E.md");
    }
    free(s);
    free(o);
}

static int no_tmp_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)type, (void)ftw;
    size_t n = strlen(p);
    return n > 4 && !strcmp(p + n - 4, ".tmp");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_export PATH/TO/cbnn_export\n");
        return 2;
    }
    char exe[4096];
    if (!realpath(argv[1], exe)) {
        fprintf(stderr, "test_export: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/cbnn_test_export.XXXXXX");
    if (!mkdtemp(g_tmp)) return 2;
    char h5[128], out[128], md[128], so[128], se[128];
    snprintf(h5, sizeof h5, "%s/exptest.h5", g_tmp);
    snprintf(out, sizeof out, "%s/out", g_tmp);
    snprintf(md, sizeof md, "%s/md", g_tmp);
    snprintf(so, sizeof so, "%s/stdout.txt", g_tmp);
    snprintf(se, sizeof se, "%s/stderr.txt", g_tmp);
    snprintf(g_dir, sizeof g_dir, "%s/exptest", out);
    make_results(h5);

    /* 1. the export */
    {
        char *av[] = {exe, "--out", out, "--md-dir", md, h5, NULL};
        int rc = run_cmd(av, so, se);
        char *e = slurp(se);
        CHECK(rc == 0, "cbnn_export exit %d: %s", rc, e ? e : "");
        /* the made-up cost/ table is not the model's: said so */
        CHECK(e && strstr(e, "zcyc,seed=1") && strstr(e, "are not the layers"), "warning about the made-up table");
        /* the stale landscape: one line naming the file, the run and both steps */
        const char *w = e ? strstr(e, "is stale") : NULL;
        const char *bol = w;
        while (bol && bol > e && bol[-1] != '\n') bol--;
        const char *eol = w ? strchr(w, '\n') : NULL;
        char line[2048] = "";
        if (bol && eol) snprintf(line, sizeof line, "%.*s", (int)(eol - bol), bol);
        CHECK(strstr(line, h5) && strstr(line, "'zcyc,seed=2'") && strstr(line, "landscape/") &&
                  strstr(line, "at step 4") && strstr(line, "now at step 8"),
              "stale landscape warning: '%s' (stderr %s)", line, e ? e : "");
        free(e);
        for (int i = 0; i < NRUNS; i++) check_dat_train(i), check_dat_eval(i);
        char p[1024];
        snprintf(p, sizeof p, "%s/orphan.train.dat", g_dir);
        CHECK(!exists(p), "a pending run has no .dat files");
        check_landscape();
        check_runs_csv();
        check_groups_csv();
        check_efficiency();
        snprintf(p, sizeof p, "%s/exptest.md", md);
        check_md(p, so, h5);
        CHECK(nftw(out, no_tmp_cb, 16, FTW_PHYS) == 0 && nftw(md, no_tmp_cb, 16, FTW_PHYS) == 0, "no .tmp left");
    }

    /* 1b. keyed by file: a backup exptest_old.h5 of the same experiment, exported together with
     * exptest.h5, gets its own folder and table; two files named alike are refused */
    {
        char old[160], out2[128], md2[128], p[1024];
        snprintf(old, sizeof old, "%s/exptest_old.h5", g_tmp);
        snprintf(out2, sizeof out2, "%s/out2", g_tmp);
        snprintf(md2, sizeof md2, "%s/md2", g_tmp);
        copy_file(h5, old);
        char *av[] = {exe, "--out", out2, "--md-dir", md2, h5, old, NULL};
        int rc = run_cmd(av, so, se);
        char *e = slurp(se);
        CHECK(rc == 0, "exporting exptest.h5 and its copy exptest_old.h5: exit %d: %s", rc, e ? e : "");
        free(e);
        const char *keys[2] = {"exptest", "exptest_old"};
        const char *files[2] = {h5, old};
        for (int k = 0; k < 2; k++) {
            snprintf(p, sizeof p, "%s/%s/runs.csv", out2, keys[k]);
            CHECK(exists(p), "%s missing", p);
            snprintf(p, sizeof p, "%s/%s.md", md2, keys[k]);
            char *m = slurp(p);
            /* each table names its own file: the copy did not overwrite the original's */
            char named[200];
            snprintf(named, sizeof named, "`%s`", files[k]);
            CHECK(m && strstr(m, named), "%s names %s", p, files[k]);
            free(m);
        }
        char sub[128], twin[200], out3[128];
        snprintf(sub, sizeof sub, "%s/sub", g_tmp);
        snprintf(twin, sizeof twin, "%s/exptest.h5", sub);
        snprintf(out3, sizeof out3, "%s/out3", g_tmp);
        mkdir(sub, 0777);
        copy_file(h5, twin);
        char *av2[] = {exe, "--out", out3, "--md-dir", out3, h5, twin, NULL};
        rc = run_cmd(av2, so, se);
        e = slurp(se);
        CHECK(rc != 0 && e && strstr(e, twin) && strstr(e, "same name 'exptest'") && !exists(out3),
              "two files named exptest.h5: exit %d, '%s'", rc, e ? e : "");
        free(e);
    }

    /* 2. --paper */
    {
        char pout[128];
        snprintf(pout, sizeof pout, "%s/paper", g_tmp);
        char *av[] = {exe, "--out", pout, "--paper", NULL};
        int rc = run_cmd(av, so, se);
        char *e = slurp(se);
        CHECK(rc == 0, "--paper exit %d: %.600s", rc, e ? e : "");
        free(e);
        char p[1024];
        snprintf(p, sizeof p, "%s/paper_arithmetic.md", pout);
        char *s = slurp(p), *o = slurp(so);
        CHECK(s && strstr(s, "1 − 1.20E+14 / 1.08E+15") && strstr(s, "truncated to two decimals 88.88 %") &&
                  strstr(s, "88.8889 %"),
              "paper_arithmetic.md: 88.88 %%");
        CHECK(s && strstr(s, "96.1679 %") && strstr(s, "contains 96.09 %?") && !strstr(s, "| yes |"),
              "96.09 %% does not follow from the entries");
        CHECK(s && strstr(s, "| 0.026764 | 97.32 % |"), "CPT cr 0.026764 = 97.32 %%");
        CHECK(o && s && !strcmp(o, s), "--paper prints what it writes");
        free(s);
        free(o);
    }

    /* 3. errors: a message naming the file (and run), no output at all */
    {
        char eout[128], emd[128], missing[128], bad[128], noev[128];
        snprintf(eout, sizeof eout, "%s/eout", g_tmp);
        snprintf(emd, sizeof emd, "%s/emd", g_tmp);
        snprintf(missing, sizeof missing, "%s/nope.h5", g_tmp);
        snprintf(bad, sizeof bad, "%s/v2.h5", g_tmp);
        snprintf(noev, sizeof noev, "%s/noeval.h5", g_tmp);
        copy_file(h5, bad);
        set_schema(bad, 2);
        make_noeval(noev);
        struct {
            const char *file, *want1, *want2;
        } cases[] = {{missing, "nope.h5", "cannot read"},
                     {bad, "v2.h5", "schema version 2"},
                     {noev, "noeval.h5", "run 'lonely'"}};
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            /* the good file first: nothing of it may be written either */
            char *av[] = {exe, "--out", eout, "--md-dir", emd, h5, (char *)cases[c].file, NULL};
            int rc = run_cmd(av, so, se);
            char *e = slurp(se);
            CHECK(rc != 0, "%s: exit %d", cases[c].file, rc);
            CHECK(e && strstr(e, cases[c].want1) && strstr(e, cases[c].want2), "%s: message '%s'", cases[c].file,
                  e ? e : "");
            if (c == 2) CHECK(e && strstr(e, "no eval/ rows"), "no-eval message '%s'", e ? e : "");
            CHECK(!exists(eout) && !exists(emd), "%s: output left behind", cases[c].file);
            free(e);
        }
    }

    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return tu_finish("export");
}
