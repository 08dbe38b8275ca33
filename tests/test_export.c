/* cbnn_export (analysis/export.c) end to end: a small results file of schema 4
 * is written with the experiments/results_h5 API (no training: 2 configurations
 * x 3 seeds in the grid, a one-seed configuration without a validation split
 * and a five-seed one outside the grid, known train/, val/ and test/ rows, the
 * selection attributes, cost/ tables, a loss-landscape table and a pending
 * run), exported by the cbnn_export binary given as argv[1], and every output
 * is read back:
 *   - <file>.train.dat / .val.dat / .test.dat: the HDF5 values, row for row,
 *     exactly (values chosen not to be short decimals, so the printing must
 *     round-trip); a run without a validation split gets its periodic test/
 *     rows as its curve, said in the header;
 *   - runs.csv: header, the schema-4 attributes, the grid's order (not HDF5's
 *     name order), the runs outside the grid last, NaN as nan, quoted names,
 *     each run's time to accuracy (reached by the row logged at that step, by
 *     interpolation between logged rows, by the last earlier row; not reached);
 *   - groups.csv against hand-computed statistics (computed here, not by
 *     experiments/stats.c): means, sample sds, 95 % t-intervals with the t
 *     quantiles typed in (4.302652729749464 for n = 3, 2.7764451051977987 for
 *     n = 5), equal values (sd 0, the interval the mean), n = 1 (no sd, no
 *     interval), the olympic mean of 5 seeds, the paired difference against
 *     compare_to seed by seed with its interval, t and p (df = 2: the t CDF in
 *     closed form, p = 1 - |t| / sqrt(t^2 + 2)), time to accuracy per group;
 *   - efficiency.csv: the per-phase fp32 MACs and bit-MACs ratios of a run with a
 *     hand-made cost/ table, the fp32 MACs of a run with the real model's table
 *     against train_estimate(), the ratios against the full-precision group;
 *   - <file>.landscape.dat: a blank line after every grid_n rows; landscape1d;
 *     a landscape of an older checkpoint than the run's (stale) is left out with
 *     a warning naming the run and both steps; runs.csv gives the steps;
 *   - MDDIR/<file>.md and the same table on stdout: the rows as the statistics
 *     print them (n = 1 with no interval), the column "best test top-1
 *     (selected on test)", "not reached", the legend;
 *   - outputs are keyed by file: a copy exptest_old.h5 of the same experiment
 *     exported beside it gets its own DIR/exptest_old/ and exptest_old.md (and
 *     leaves exptest's alone); two files of the same name are refused;
 *   - --paper: 88.88 %;
 *   - errors (missing file, schema version 3, a complete run without test/
 *     rows, a good file next to a bad one): a message naming the file (and
 *     run), a non-zero exit and no output at all. */
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
#define NGRID 6  /* the grid: zcyc and afull x seeds 1, 2, 3 */
#define NRUNS 12 /* complete: the grid, lone, many,seed=1..5 (then the pending orphan) */
#define T2 4.302652729749464  /* t(0.975, 2) */
#define T4 2.7764451051977987 /* t(0.975, 4) */
#define TARGET 75.0

static const char *EXP_YAML = "name: exptest\n"
                              "compare_to: afull\n"
                              "target_top1: 75\n"
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
                              "seeds: [1, 2, 3]\n";

/* the grid's order, then the runs outside it by name; HDF5 lists them by name (afull first) */
static const char *RUN[NRUNS] = {"zcyc,seed=1",  "zcyc,seed=2",  "zcyc,seed=3", "afull,seed=1",
                                 "afull,seed=2", "afull,seed=3", "lone",        "many,seed=1",
                                 "many,seed=2",  "many,seed=3",  "many,seed=4", "many,seed=5"};
static const char *STEM[NRUNS] = {"zcyc_seed_1",  "zcyc_seed_2",  "zcyc_seed_3", "afull_seed_1",
                                  "afull_seed_2", "afull_seed_3", "lone",        "many_seed_1",
                                  "many_seed_2",  "many_seed_3",  "many_seed_4", "many_seed_5"};
static const int SEED[NRUNS] = {1, 2, 3, 1, 2, 3, 1, 1, 2, 3, 4, 5};
static int is_zcyc(int i) { return i < 3; }
static int is_afull(int i) { return i >= 3 && i < 6; }
#define LONE 6 /* one seed, no validation split: its curve is its periodic test rows */
static int is_many(int i) { return i > LONE; }
static int is_cyclic(int i) { return is_zcyc(i) || is_many(i); }
static const char *group_of(int i) { return is_zcyc(i) ? "zcyc" : is_afull(i) ? "afull" : i == LONE ? "lone" : "many"; }

/* run attributes: test top-1 at the selected checkpoint, final, paper's best (selected on test) */
static const double SEL[NRUNS] = {70, 71, 75, 81, 81.5, 84.5, 76, 60, 62, 64, 66, 98};
static const double FINAL[NRUNS] = {69.5, 70.25, 71.75, 80, 81, 82, 76, 59, 61, 63, 65, 97};
static const double PAPER[NRUNS] = {72, 73.5, 75, 85, 85, 85, 76, 60.5, 62.5, 64.5, 66.5, 98.5};
static const double SEL_FIXED[3] = {71, 72, 73}, FINAL_FIXED[3] = {70, 71, 72};
static const double WALL[NRUNS] = {10.5, 11.5, 12.5, 20, 22, 24, 5, 1, 2, 3, 4, 5};
static const double RSS[NRUNS] = {1e8, 1.1e8, 1.2e8, 2e8, 2e8, 2e8, 1e8, 1e8, 1e8, 1e8, 1e8, 1e8};
/* validation top-1 at steps 5 and 10 (lone: its periodic test evaluations) */
static const double VAL[NRUNS][2] = {{60, 74.5},   {60.5, 74}, {61, 74.75}, {75, 80},   {76, 81},   {74.9, 77},
                                     {70, 76},     {75.5, 80}, {75.5, 80},  {70, 80},   {70, 80},   {70, 80}};

/* train/ rows of run i: every step, but afull,seed=2 every 3rd (1, 4, 7, 10) and afull,seed=3 only up to
 * step 8; time_s = step^2/8 + i/4, not linear in the step, so an interpolation shows */
static int stride(int i) { return i == 4 ? 3 : 1; }
static int n_train(int i) { return is_zcyc(i) ? 7 + i : i == 4 ? 4 : i == 5 ? 8 : 10; }
static long tr_step(int i, int k) { return 1 + (long)k * stride(i); }
static double tr_time(int i, long step) { return (double)(step * step) / 8.0 + i / 4.0; }
static double tr_loss(int i, int k) { return 2.5 / (1.0 + k) + i / 3.0; }
static double tr_lr(int i, int k) { return 0.1 * pow(0.999, k) / (i + 1); }
static double tr_bits(int i, int k) { return is_cyclic(i) ? 2 + k % 5 : 32; }
static double tr_gbits(int i, int k) { return is_cyclic(i) ? 8 : 32; }
static double tr_cr(int i, int k) { return prec_cost_ratio(tr_bits(i, k), tr_gbits(i, k)); }
static double tr_top1(int i, int k) { return is_cyclic(i) ? 100.0 * (k + 1) / 7.0 : NAN; } /* full: not logged */
static long ck_step(int i) { return tr_step(i, n_train(i) - 1); } /* zcyc runs: a checkpoint at the last row */
static long ev_step(int k) { return 5L * (k + 1); }
static double ev_loss(int i, int k) { return 1.0 / (3.0 + k + i); }
static double ev_bits(int i) { return is_cyclic(i) ? 6 : 32; }
/* test/ rows: (step, top1, role, fixed); lone: periodic (role 0) at 5, final (2) at 10 */
typedef struct {
    long step;
    double top1;
    int role, fixed;
} TestRow;
static int test_rows(int i, TestRow *t) {
    if (i == LONE) {
        t[0] = (TestRow){5, VAL[i][0], 0, 0};
        t[1] = (TestRow){10, VAL[i][1], 2, 0};
        return 2;
    }
    int n = 0;
    t[n++] = (TestRow){5, SEL[i], 1, 0};
    if (is_zcyc(i)) t[n++] = (TestRow){5, SEL_FIXED[i], 1, 1};
    t[n++] = (TestRow){10, FINAL[i], 2, 0};
    if (is_zcyc(i)) t[n++] = (TestRow){10, FINAL_FIXED[i], 2, 1};
    return n;
}
static double te_loss(int i, int k) { return 1.0 / (7.0 + k + i); }

/* time to 75 %: the first evaluation at or above it, and the seconds the rule gives */
static int tta_reached(int i) { return VAL[i][0] >= TARGET || VAL[i][1] >= TARGET; }
static long tta_step(int i) { return VAL[i][0] >= TARGET ? 5 : 10; }
static double tta_secs(int i) {
    if (i == 4) return tr_time(4, 4) + (tr_time(4, 7) - tr_time(4, 4)) / 3.0; /* step 5 between rows 4 and 7 */
    if (i == 5) return tr_time(5, 8);                                         /* step 10 after the last row, 8 */
    return tr_time(i, tta_step(i));                                           /* logged at that step */
}
static const char *tta_rule(int i) { return i == 4 ? "interpolated" : i == 5 ? "earlier row" : "logged"; }

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
    CHECK(e.n_runs == NGRID, "%d runs", e.n_runs);
    for (int i = 0; i < NGRID && i < e.n_runs; i++)
        CHECK(!strcmp(e.runs[i].name, RUN[i]), "run %d is %s, want %s", i, e.runs[i].name, RUN[i]);
    CHECK(!strcmp(e.compare_to, "afull") && e.target_top1 == TARGET, "compare_to '%s', target_top1 %g", e.compare_to,
          e.target_top1);
    ResultsFile *f = results_create(path, "exptest", EXP_YAML, 2, err, sizeof err);
    CHECK(f != NULL, "results_create: %s", err);
    if (!f) exit(1);
    /* write them in another order than the grid's */
    static const int write_order[NRUNS] = {3, 0, 11, 4, 1, 6, 5, 2, 7, 8, 10, 9};
    for (int w = 0; w < NRUNS; w++) {
        int i = write_order[w];
        /* outside the grid: lone is a full-precision run, the many runs cyclic ones, each of its seed */
        RunConfig c = e.runs[i < NGRID ? i : i == LONE ? 3 : 0].c;
        c.seed = (uint64_t)SEED[i];
        char *cfg = config_to_yaml(&c);
        RunLog *r = results_run_begin(f, RUN[i], cfg);
        CHECK(r != NULL, "begin %s", RUN[i]);
        free(cfg);
        if (!r) continue;
        for (int k = 0; k < n_train(i); k++) {
            runlog_train(r, tr_step(i, k), tr_loss(i, k), tr_lr(i, k), tr_time(i, tr_step(i, k)));
            runlog_train_precision(r, tr_bits(i, k), tr_gbits(i, k), tr_cr(i, k));
            if (is_cyclic(i)) runlog_train_top1(r, tr_top1(i, k));
        }
        if (i != LONE)
            for (int k = 0; k < 2; k++) runlog_val(r, ev_step(k), VAL[i][k], ev_loss(i, k), ev_bits(i));
        TestRow t[4];
        int nt = test_rows(i, t);
        for (int k = 0; k < nt; k++)
            runlog_test(r, t[k].step, t[k].top1, te_loss(i, k), t[k].fixed ? 6 : ev_bits(i), (TestRole)t[k].role,
                        t[k].fixed);
        if (is_zcyc(i)) {
            /* the zcyc runs end with a checkpoint at their last step (7, 8, 9); the others have none */
            double wt[3] = {0.5, -0.25, 1.0 / 3.0};
            CkptArray ck = {"params", CK_F64, 3, wt};
            CHECK(runlog_checkpoint_save(r, ck_step(i), &ck, 1) == 0, "checkpoint %s", RUN[i]);
            CHECK(write_cost_fake(r) == 0, "cost %s", RUN[i]);
            runlog_mean_cost_ratio(r, 0.02676);
            runlog_attr(r, "bit_macs", FK_BIT_FWD + FK_BIT_ERR + FK_BIT_WG);
            runlog_attr(r, "fp32_macs", FK_FP_FWD + FK_FP_ERR + FK_FP_WG);
        } else if (is_afull(i)) {
            CHECK(write_cost_model(r, &c) == 0, "cost %s", RUN[i]);
            DatasetShape ds;
            dataset_nominal(c.dataset, &ds);
            CHECK(train_estimate(&c, ds.channels, ds.height, ds.width, ds.num_classes, ds.n_train, &g_full_est, err,
                                 sizeof err) == 0, "train_estimate: %s", err);
            runlog_mean_cost_ratio(r, 1.0);
            /* bit_macs = the sum of the columns written above: fwd + (fwd - stem) + fwd/2 */
            runlog_attr(r, "bit_macs", NAN);
            runlog_attr(r, "fp32_macs", g_full_est.fp32_macs);
        } else {
            runlog_mean_cost_ratio(r, is_cyclic(i) ? 0.02676 : 1.0); /* no cost/ table: no efficiency row */
        }
        runlog_attr(r, "images_per_s", 123.25 + i);
        runlog_attr(r, "peak_rss_bytes", RSS[i]);
        runlog_attr(r, "test_top1_at_selected", SEL[i]);
        runlog_attr(r, "val_top1_at_selected", i == LONE ? NAN : VAL[i][0]);
        runlog_attr(r, "selected_step", i == LONE ? 10 : 5);
        runlog_attr(r, "test_top1_at_selected_fixed", is_zcyc(i) ? SEL_FIXED[i] : NAN);
        runlog_attr(r, "final_test_top1_fixed", is_zcyc(i) ? FINAL_FIXED[i] : NAN);
        runlog_attr(r, "eval_bits_fixed", is_zcyc(i) ? 6 : NAN);
        runlog_attr(r, "val_split", i == LONE ? 0 : 5000);
        CHECK(runlog_end(r, "complete", FINAL[i], PAPER[i], WALL[i]) == 0, "end %s", RUN[i]);
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

/* a results file whose complete run has no test/ rows */
static void make_notest(const char *path) {
    char err[1024] = "";
    ResultsFile *f = results_create(path, "notest", "name: notest\n", 1, err, sizeof err);
    CHECK(f != NULL, "create notest: %s", err);
    if (!f) return;
    RunConfig c;
    config_defaults(&c);
    char *cfg = config_to_yaml(&c);
    RunLog *r = results_run_begin(f, "lonely", cfg);
    free(cfg);
    runlog_train(r, 1, 2.0, 0.1, 0.0);
    runlog_val(r, 1, 50, 1.0, 32);
    runlog_end(r, "complete", 50, 50, 1);
    CHECK(results_close(f, 1, err, sizeof err) == 0, "close notest: %s", err);
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

/* ---- the statistics by hand ---- */

/* mean, sample sd and the t-interval (t given) of v[0..n), two passes, nothing shared with stats.c */
typedef struct {
    double mean, sd, lo, hi;
} Hand;
static Hand hand(const double *v, int n, double t) {
    Hand h = {0, NAN, NAN, NAN};
    for (int k = 0; k < n; k++) h.mean += v[k];
    h.mean /= n;
    if (n < 2) return h;
    double ss = 0;
    for (int k = 0; k < n; k++) ss += (v[k] - h.mean) * (v[k] - h.mean);
    h.sd = sqrt(ss / (n - 1));
    h.lo = h.mean - t * h.sd / sqrt(n);
    h.hi = h.mean + t * h.sd / sqrt(n);
    return h;
}
/* the values of a group's runs */
static int group_values(const char *g, const double *of, double *v) {
    int n = 0;
    for (int i = 0; i < NRUNS; i++)
        if (!strcmp(group_of(i), g)) v[n++] = of[i];
    return n;
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
    CHECK(n > 0 && !strcmp(l[0], "# step loss lr bits grad_bits cost_ratio top1 time_s"), "%s header '%s'", p,
          n ? l[0] : "");
    for (int k = 0; k + 1 < n && k < n_train(i); k++) {
        long step;
        char v[7][64];
        int got = sscanf(l[k + 1], "%ld %63s %63s %63s %63s %63s %63s %63s", &step, v[0], v[1], v[2], v[3], v[4], v[5],
                         v[6]);
        double d[7];
        for (int j = 0; j < 7; j++) d[j] = strtod(v[j], NULL);
        CHECK(got == 8 && step == tr_step(i, k) && same(d[0], tr_loss(i, k)) && same(d[1], tr_lr(i, k)) &&
                  same(d[2], tr_bits(i, k)) && same(d[3], tr_gbits(i, k)) && same(d[4], tr_cr(i, k)) &&
                  same(d[5], tr_top1(i, k)) && same(d[6], tr_time(i, step)),
              "%s row %d: '%s'", p, k, l[k + 1]);
    }
    free(l);
    free(s);
}

/* the curve: val/ rows, or lone's periodic test rows (role 0 and the final 2, at fixed 0) */
static void check_dat_val(int i) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.val.dat", g_dir, STEM[i]);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    CHECK(n == 3, "%s: %d lines", p, n);
    const char *want = i == LONE ? "# step top1 loss bits (test set: the run has no validation split)"
                                 : "# step top1 loss bits (validation split)";
    CHECK(n > 0 && !strcmp(l[0], want), "%s header '%s'", p, n ? l[0] : "");
    for (int k = 0; k + 1 < n && k < 2; k++) {
        long step;
        double t, lo, b;
        int got = sscanf(l[k + 1], "%ld %lf %lf %lf", &step, &t, &lo, &b);
        double want_loss = i == LONE ? te_loss(i, k) : ev_loss(i, k);
        CHECK(got == 4 && step == ev_step(k) && t == VAL[i][k] && lo == want_loss && b == ev_bits(i),
              "%s row %d: '%s'", p, k, l[k + 1]);
    }
    free(l);
    free(s);
}

static void check_dat_test(int i) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.test.dat", g_dir, STEM[i]);
    char *s = slurp(p), **l;
    CHECK(s != NULL, "%s missing", p);
    if (!s) return;
    int n = split_lines(s, &l);
    TestRow t[4];
    int nt = test_rows(i, t);
    CHECK(n == 1 + nt, "%s: %d lines, want %d", p, n, 1 + nt);
    CHECK(n > 0 && !strncmp(l[0], "# step top1 loss bits role fixed", 32), "%s header '%s'", p, n ? l[0] : "");
    for (int k = 0; k + 1 < n && k < nt; k++) {
        long step, role, fixed;
        double top1, lo, b;
        int got = sscanf(l[k + 1], "%ld %lf %lf %lf %ld %ld", &step, &top1, &lo, &b, &role, &fixed);
        CHECK(got == 6 && step == t[k].step && top1 == t[k].top1 && lo == te_loss(i, k) &&
                  b == (t[k].fixed ? 6 : ev_bits(i)) && role == t[k].role && fixed == t[k].fixed,
              "%s row %d: '%s'", p, k, l[k + 1]);
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
    CHECK(!strcmp(l[0], "run,file,status,group,group_row,arch,conv,schedule,bits_min,bits_max,grad_bits,cycles,seed,"
                        "val_split,test_top1_at_selected,final_test_top1,paper_best_top1,test_top1_at_selected_fixed,"
                        "final_test_top1_fixed,eval_bits_fixed,val_top1_at_selected,selected_step,curve_split,"
                        "tta_reached,tta_steps,tta_seconds,tta_seconds_from,mean_cost_ratio,bit_macs,fp32_macs,"
                        "wall_time_s,images_per_s,peak_rss_bytes,checkpoint_step,landscape_step,landscape1d_step"),
          "runs.csv header '%s'", l[0]);
    char hb[2048], *h[64];
    int nh = csv_split(l[0], hb, h, 64);
    CHECK(nh == 36, "runs.csv: %d columns", nh);
#define F(name) v[col(h, nh, name)]
#define D(name) strtod(F(name), NULL)
    for (int i = 0; i < NRUNS + 1 && i + 1 < n; i++) {
        char b[4096], *v[64];
        int nv = csv_split(l[i + 1], b, v, 64);
        CHECK(nv == nh, "runs.csv row %d: %d fields", i, nv);
        if (nv != nh) continue;
        if (i == NRUNS) { /* the pending run outside the grid: last */
            CHECK(!strcmp(F("run"), "orphan") && !strcmp(F("status"), "pending") && !strcmp(F("group"), "orphan") &&
                      !strcmp(F("group_row"), "") && !strcmp(F("test_top1_at_selected"), "nan") &&
                      !strcmp(F("curve_split"), "") && !strcmp(F("tta_reached"), "") &&
                      !strcmp(F("peak_rss_bytes"), "nan"),
                  "orphan row '%s'", l[i + 1]);
            continue;
        }
        CHECK(!strcmp(F("run"), RUN[i]), "row %d run '%s', want '%s' (grid order, then by name)", i, v[0], RUN[i]);
        if (strchr(RUN[i], ',')) CHECK(l[i + 1][0] == '"', "a run name with a comma is quoted: '%s'", l[i + 1]);
        CHECK(!strcmp(F("file"), STEM[i]), "row %d file '%s'", i, v[1]);
        CHECK(!strcmp(F("status"), "complete"), "row %d status", i);
        static const char *rows[] = {"0", "1", "2", "3"};
        CHECK(!strcmp(F("group"), group_of(i)) &&
                  !strcmp(F("group_row"), rows[is_zcyc(i) ? 0 : is_afull(i) ? 1 : i == LONE ? 2 : 3]),
              "row %d group '%s' row '%s'", i, F("group"), F("group_row"));
        CHECK(!strcmp(F("arch"), "cifar_resnet8") && !strcmp(F("conv"), "cyclebnn"), "row %d arch/conv", i);
        CHECK(!strcmp(F("schedule"), is_cyclic(i) ? "cyclic" : "full"), "row %d schedule", i);
        CHECK(!strcmp(F("bits_min"), "2") && !strcmp(F("bits_max"), "6") && !strcmp(F("grad_bits"), "8") &&
                  !strcmp(F("cycles"), "2"),
              "row %d bits", i);
        CHECK(atoi(F("seed")) == SEED[i], "row %d seed %s", i, F("seed"));
        CHECK(D("val_split") == (i == LONE ? 0 : 5000) && D("test_top1_at_selected") == SEL[i] &&
                  D("final_test_top1") == FINAL[i] && D("paper_best_top1") == PAPER[i] &&
                  same(D("test_top1_at_selected_fixed"), is_zcyc(i) ? SEL_FIXED[i] : NAN) &&
                  same(D("final_test_top1_fixed"), is_zcyc(i) ? FINAL_FIXED[i] : NAN) &&
                  same(D("eval_bits_fixed"), is_zcyc(i) ? 6 : NAN) &&
                  same(D("val_top1_at_selected"), i == LONE ? NAN : VAL[i][0]) &&
                  D("selected_step") == (i == LONE ? 10 : 5),
              "row %d selection attributes '%s'", i, l[i + 1]);
        CHECK(!strcmp(F("curve_split"), i == LONE ? "test" : "val"), "row %d curve_split '%s'", i, F("curve_split"));
        /* time to 75 %: zcyc never; afull,seed=2 between logged rows, afull,seed=3 after the last one */
        if (tta_reached(i))
            CHECK(!strcmp(F("tta_reached"), "1") && D("tta_steps") == tta_step(i) &&
                      close_rel(D("tta_seconds"), tta_secs(i), 1e-15) && !strcmp(F("tta_seconds_from"), tta_rule(i)),
                  "row %d time to accuracy '%s %s %s %s', want step %ld, %.17g s, %s", i, F("tta_reached"),
                  F("tta_steps"), F("tta_seconds"), F("tta_seconds_from"), tta_step(i), tta_secs(i), tta_rule(i));
        else
            CHECK(!strcmp(F("tta_reached"), "0") && !strcmp(F("tta_steps"), "nan") &&
                      !strcmp(F("tta_seconds"), "nan") && !strcmp(F("tta_seconds_from"), ""),
                  "row %d: target not reached '%s'", i, l[i + 1]);
        CHECK(D("wall_time_s") == WALL[i] && D("images_per_s") == 123.25 + i && D("peak_rss_bytes") == RSS[i],
              "row %d numbers '%s'", i, l[i + 1]);
        CHECK(D("mean_cost_ratio") == (is_cyclic(i) ? 0.02676 : 1.0), "row %d cr", i);
        if (is_afull(i)) CHECK(!strcmp(F("bit_macs"), "nan"), "row %d bit_macs NaN -> nan", i);
        /* steps: the checkpoint's, and the exported landscapes' (none for the stale one of row 1) */
        char want_ck[16] = "";
        if (is_zcyc(i)) snprintf(want_ck, sizeof want_ck, "%ld", ck_step(i));
        const char *ls = i == 0 ? want_ck : "";
        CHECK(!strcmp(F("checkpoint_step"), want_ck) && !strcmp(F("landscape_step"), ls) &&
                  !strcmp(F("landscape1d_step"), ls),
              "row %d steps '%s' '%s' '%s', want '%s' '%s' '%s'", i, F("checkpoint_step"), F("landscape_step"),
              F("landscape1d_step"), want_ck, ls, ls);
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
    CHECK(n == 5, "groups.csv: %d lines (the pending group has no complete run)", n);
    char hb[4096], *h[64];
    int nh = csv_split(l[0], hb, h, 64);
    CHECK(nh == 3 + 5 * 5 + 7 + 1 + 6 + 8, "groups.csv: %d columns", nh);
    static const char *G[4] = {"zcyc", "afull", "lone", "many"};
    static const int N[4] = {3, 3, 1, 5};
    static const double T[4] = {T2, T2, NAN, T4};
    for (int g = 0; g < 4 && g + 1 < n; g++) {
        char b[8192], *v[64];
        int nv = csv_split(l[g + 1], b, v, 64);
        CHECK(nv == nh, "groups.csv row %d: %d fields", g, nv);
        if (nv != nh) continue;
        CHECK(!strcmp(F("group"), G[g]) && atoi(F("n")) == N[g] && atoi(F("n_runs")) == N[g], "group row '%s'",
              l[g + 1]);
        /* each metric against its hand statistics */
        static const char *M[3] = {"test_top1_at_selected", "final_test_top1", "paper_best_top1"};
        const double *of[3] = {SEL, FINAL, PAPER};
        for (int m = 0; m < 3; m++) {
            double x[NRUNS];
            int k = group_values(G[g], of[m], x);
            Hand w = hand(x, k, T[g]);
            char c[5][96];
            const char *sfx[5] = {"_mean", "_sd", "_ci_lo", "_ci_hi", "_olympic"};
            for (int j = 0; j < 5; j++) snprintf(c[j], sizeof c[j], "%s%s", M[m], sfx[j]);
            int ok = close_rel(D(c[0]), w.mean, 1e-14);
            ok &= isnan(w.sd) ? !strcmp(F(c[1]), "nan") && !strcmp(F(c[2]), "nan") && !strcmp(F(c[3]), "nan")
                              : close_rel(D(c[1]), w.sd, 1e-13) && close_rel(D(c[2]), w.lo, 1e-13) &&
                                    close_rel(D(c[3]), w.hi, 1e-13);
            CHECK(ok, "group %s %s: %s %s [%s, %s], want %.17g %.17g [%.17g, %.17g]", G[g], M[m], F(c[0]), F(c[1]),
                  F(c[2]), F(c[3]), w.mean, w.sd, w.lo, w.hi);
            if (N[g] < 5) CHECK(!strcmp(F(c[4]), "nan"), "group %s %s: no olympic mean under 5 seeds", G[g], M[m]);
        }
    }
    /* typed by hand: zcyc 70, 71, 75 -> mean 72, sd sqrt(7), 72 -+ 4.302652729749464 sqrt(7/3) */
    char b[8192], *v[64];
    if (n > 1 && csv_split(l[1], b, v, 64) == nh) {
        CHECK(D("test_top1_at_selected_mean") == 72 && close_rel(D("test_top1_at_selected_sd"), sqrt(7.0), 1e-15) &&
                  close_rel(D("test_top1_at_selected_ci_lo"), 72 - T2 * sqrt(7.0 / 3.0), 1e-14) &&
                  close_rel(D("test_top1_at_selected_ci_hi"), 72 + T2 * sqrt(7.0 / 3.0), 1e-14),
              "zcyc: 72 +- sqrt(7), [%s, %s]", F("test_top1_at_selected_ci_lo"), F("test_top1_at_selected_ci_hi"));
        CHECK(D("test_top1_at_selected_fixed_mean") == 72 && D("test_top1_at_selected_fixed_sd") == 1 &&
                  D("final_test_top1_fixed_mean") == 71 && D("eval_bits_fixed") == 6,
              "zcyc fixed bits: %s %s", F("test_top1_at_selected_fixed_mean"), F("test_top1_at_selected_fixed_sd"));
        /* paired against afull (81, 81.5, 84.5): -11, -10.5, -9.5 -> mean -31/3, sd sqrt(7/12); df 2:
         * p = 1 - |t| / sqrt(t^2 + 2) */
        const double dm = -31.0 / 3.0, dsd = sqrt(7.0 / 12.0), t = dm / (dsd / sqrt(3.0));
        const double pw = 1.0 - fabs(t) / sqrt(t * t + 2.0);
        CHECK(!strcmp(F("reference"), "afull") && atoi(F("pairs")) == 3 && close_rel(D("diff_mean"), dm, 1e-14) &&
                  close_rel(D("diff_ci_lo"), dm - T2 * dsd / sqrt(3.0), 1e-13) &&
                  close_rel(D("diff_ci_hi"), dm + T2 * dsd / sqrt(3.0), 1e-13) && close_rel(D("diff_t"), t, 1e-12) &&
                  fabs(D("diff_p") - pw) <= 1e-9 * pw,
              "zcyc - afull: %s [%s, %s] t %s p %s, want %.17g [%.17g, %.17g] t %.17g p %.17g", F("diff_mean"),
              F("diff_ci_lo"), F("diff_ci_hi"), F("diff_t"), F("diff_p"), dm, dm - T2 * dsd / sqrt(3.0),
              dm + T2 * dsd / sqrt(3.0), t, pw);
        CHECK(D("tta_target") == TARGET && atoi(F("tta_reached")) == 0 && !strcmp(F("tta_steps_mean"), "nan"),
              "zcyc: target not reached");
        CHECK(!strcmp(F("schedule"), "cyclic") && !strcmp(F("cycles"), "2") && D("fp32_macs") == 129400.0,
              "zcyc config columns");
    }
    /* afull: the reference (no comparison with itself); equal values 85, 85, 85: sd 0, the interval [85, 85] */
    if (n > 2 && csv_split(l[2], b, v, 64) == nh) {
        CHECK(!strcmp(F("reference"), "") && atoi(F("pairs")) == 0 && !strcmp(F("diff_mean"), "nan"),
              "afull is the reference: '%s' %s", F("reference"), F("pairs"));
        CHECK(D("paper_best_top1_mean") == 85 && D("paper_best_top1_sd") == 0 && D("paper_best_top1_ci_lo") == 85 &&
                  D("paper_best_top1_ci_hi") == 85,
              "equal values: %s %s [%s, %s]", F("paper_best_top1_mean"), F("paper_best_top1_sd"),
              F("paper_best_top1_ci_lo"), F("paper_best_top1_ci_hi"));
        CHECK(atoi(F("tta_reached")) == 3 && close_rel(D("tta_steps_mean"), 20.0 / 3.0, 1e-15) &&
                  close_rel(D("tta_seconds_mean"), (tta_secs(3) + tta_secs(4) + tta_secs(5)) / 3, 1e-14) &&
                  !strcmp(F("tta_steps_olympic"), "nan"),
              "afull time to accuracy %s %s %s", F("tta_reached"), F("tta_steps_mean"), F("tta_seconds_mean"));
        CHECK(!strcmp(F("eval_bits_fixed"), "nan") && !strcmp(F("test_top1_at_selected_fixed_mean"), "nan"),
              "afull: no fixed-bits numbers");
        CHECK(D("fp32_macs") == g_full_est.fp32_macs && !strcmp(F("schedule"), "full"), "afull config columns");
    }
    /* lone: one seed, one pair with afull (seed 1): 76 - 81 */
    if (n > 3 && csv_split(l[3], b, v, 64) == nh)
        CHECK(atoi(F("pairs")) == 1 && D("diff_mean") == -5 && !strcmp(F("diff_ci_lo"), "nan") &&
                  !strcmp(F("diff_p"), "nan") && atoi(F("tta_reached")) == 1 && D("tta_steps_mean") == 10 &&
                  D("tta_seconds_mean") == tta_secs(LONE),
              "lone: '%s'", l[3]);
    /* many: 5 seeds, olympic means: 60 62 64 66 98 -> 64; steps 5 5 10 10 10 -> 25/3 */
    if (n > 4 && csv_split(l[4], b, v, 64) == nh) {
        CHECK(D("test_top1_at_selected_olympic") == 64 && D("test_top1_at_selected_mean") == 70 &&
                  close_rel(D("test_top1_at_selected_sd"), sqrt(250.0), 1e-15) &&
                  close_rel(D("test_top1_at_selected_ci_hi"), 70 + T4 * sqrt(50.0), 1e-14),
              "many: olympic %s, mean %s, sd %s", F("test_top1_at_selected_olympic"), F("test_top1_at_selected_mean"),
              F("test_top1_at_selected_sd"));
        double secs[5], sm = 0;
        for (int k = 0; k < 5; k++) secs[k] = tta_secs(7 + k), sm += secs[k];
        CHECK(atoi(F("tta_reached")) == 5 && D("tta_steps_mean") == 8 &&
                  close_rel(D("tta_steps_olympic"), 25.0 / 3.0, 1e-15) && close_rel(D("tta_seconds_mean"), sm / 5, 1e-15) &&
                  close_rel(D("tta_seconds_olympic"), (secs[1] + secs[2] + secs[3]) / 3, 1e-15),
              "many time to accuracy: %s %s %s %s %s", F("tta_reached"), F("tta_steps_mean"), F("tta_steps_olympic"),
              F("tta_seconds_mean"), F("tta_seconds_olympic"));
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
    CHECK(n == 1 + NGRID, "efficiency.csv: %d lines (the runs with a cost/ table)", n);
    char hb[4096], *h[64];
    int nh = csv_split(l[0], hb, h, 64);
#define V(name) strtod(v[col(h, nh, name)], NULL)
    double ref_bit = 0, ref_top1 = (SEL[3] + SEL[4] + SEL[5]) / 3, ref_wall = (WALL[3] + WALL[4] + WALL[5]) / 3;
    for (int i = 0; i < NGRID && i + 1 < n; i++) {
        char b[8192], *v[64];
        int nv = csv_split(l[i + 1], b, v, 64);
        CHECK(nv == nh, "efficiency row %d: %d of %d fields", i, nv, nh);
        if (nv != nh) continue;
        CHECK(!strcmp(v[col(h, nh, "run")], RUN[i]), "efficiency row %d is %s", i, v[0]);
        CHECK(V("iterations") == ITERS && V("batch") == BATCH, "row %d iterations/batch", i);
        if (is_zcyc(i)) {
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
            ref_bit += V("bit_macs") / 3;
        }
        CHECK(!strcmp(v[col(h, nh, "ref_group")], "afull"), "row %d ref group", i);
        CHECK(V("test_top1_at_selected") == SEL[i] && close_rel(V("top1_minus_ref"), SEL[i] - ref_top1, 1e-14),
              "row %d top1 - ref", i);
        CHECK(close_rel(V("wall_vs_ref"), WALL[i] / ref_wall, 1e-14) && close_rel(V("rss_vs_ref"), RSS[i] / 2e8, 1e-14),
              "row %d wall/rss vs ref", i);
        CHECK(V("mem_state_bytes") > 0 && V("params") > 70000 && V("params") < 80000, "row %d params %s", i,
              v[col(h, nh, "params")]);
    }
    /* the zcyc rows against the full group's bit-MACs */
    for (int i = 0; i < 3 && i + 1 < n; i++) {
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

/* the start of a group's row of the comparison table, as the statistics print it */
static void check_md(const char *md_path, const char *stdout_path, const char *h5) {
    char *s = slurp(md_path), *o = slurp(stdout_path);
    CHECK(s != NULL, "%s missing", md_path);
    CHECK(o != NULL, "stdout missing");
    if (s && o) {
        CHECK(strstr(s, h5) != NULL, "E.md names the file");
        CHECK(strstr(s, "results of ") && strstr(s, "machine ") && strstr(s, "git "), "E.md header line");
        CHECK(strstr(s, "| configuration | bits W-A/err | n seeds | test top-1 at selected (%), mean ± sd | 95 % CI | "
                        "Δ vs afull (pp), 95 % CI | p | final test top-1 (%) | test top-1 at fixed bits (%) | "
                        "best test top-1 (selected on test) (%) | time to 75 % val (or test) top-1 | cost ratio cr | "
                        "bit-MACs | wall time (s) |"),
              "E.md header:\n%s", s);
        /* zcyc: 72 +- sqrt(7) = 2.65, [72 -+ 6.57]; -31/3 [..]; p (df 2) */
        const double dm = -31.0 / 3.0, dh = T2 * sqrt(7.0 / 12.0) / sqrt(3.0), t = dm / (sqrt(7.0 / 12.0) / sqrt(3.0));
        char want[512];
        snprintf(want, sizeof want, "| zcyc | 2-6/8 | 3 | 72.00 ± 2.65 | [%.2f, %.2f] | %+.2f [%+.2f, %+.2f] | %.3f | "
                 "70.50 ± 1.15 | 72.00 ± 1.00 (6 bits) | 73.50 ± 1.50 | not reached (0 of 3) |",
                 72 - T2 * sqrt(7.0 / 3.0), 72 + T2 * sqrt(7.0 / 3.0), dm, dm - dh, dm + dh,
                 1.0 - fabs(t) / sqrt(t * t + 2.0));
        CHECK(strstr(s, want) != NULL, "E.md zcyc row, want\n%s\nin\n%s", want, s);
        double x[NRUNS];
        int k = group_values("afull", SEL, x);
        Hand w = hand(x, k, T2);
        snprintf(want, sizeof want, "| afull | 32/32 | 3 | %.2f ± %.2f | [%.2f, %.2f] | reference | – | 81.00 ± 1.00 | "
                 "– | 85.00 ± 0.00 | 7 steps, %.1f s |", w.mean, w.sd, w.lo, w.hi,
                 (tta_secs(3) + tta_secs(4) + tta_secs(5)) / 3);
        CHECK(strstr(s, want) != NULL, "E.md afull row, want\n%s", want);
        /* n = 1: no sd, no interval */
        CHECK(strstr(s, "| lone | 32/32 | 1 | 76.00 | – (n = 1) | -5.00 (1 seed in common, no interval) | – | 76.00 | "
                        "– | 76.00 | 10 steps, 14.0 s |"),
              "E.md lone row (n = 1)");
        CHECK(strstr(s, "| many | 2-6/8 | 5 | 70.00 ± 15.81 |") && strstr(s, "8 steps, 11.0 s; olympic 8 steps,"),
              "E.md many row");
        CHECK(strstr(s, "| orphan |") && strstr(s, "0 of 1 complete"), "E.md pending group");
        CHECK(strstr(s, "**Columns.**") && strstr(s, "*best test top-1 (selected on test)*") &&
                  strstr(s, "*95 % CI*") && strstr(s, "*p*") && strstr(s, "*time to 75 %*"),
              "E.md legend");
        /* stdout has the same table */
        const char *tt = strstr(s, "## exptest");
        CHECK(tt && strstr(o, tt), "stdout holds the table of E.md");
    }
    free(s);
    free(o);
}
#undef F
#undef D

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
        for (int i = 0; i < NRUNS; i++) check_dat_train(i), check_dat_val(i), check_dat_test(i);
        char p[1024];
        snprintf(p, sizeof p, "%s/orphan.train.dat", g_dir);
        CHECK(!exists(p), "a pending run has no .dat files");
        snprintf(p, sizeof p, "%s/orphan.val.dat", g_dir);
        CHECK(!exists(p), "a pending run has no .val.dat");
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
        char eout[128], emd[128], missing[128], bad[128], notest[128];
        snprintf(eout, sizeof eout, "%s/eout", g_tmp);
        snprintf(emd, sizeof emd, "%s/emd", g_tmp);
        snprintf(missing, sizeof missing, "%s/nope.h5", g_tmp);
        snprintf(bad, sizeof bad, "%s/v3.h5", g_tmp);
        snprintf(notest, sizeof notest, "%s/notest.h5", g_tmp);
        copy_file(h5, bad);
        set_schema(bad, 3);
        make_notest(notest);
        struct {
            const char *file, *want1, *want2;
        } cases[] = {{missing, "nope.h5", "cannot read"},
                     {bad, "v3.h5", "schema version 3, cbnn_export reads version 4"},
                     {notest, "notest.h5", "run 'lonely'"}};
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            /* the good file first: nothing of it may be written either */
            char *av[] = {exe, "--out", eout, "--md-dir", emd, h5, (char *)cases[c].file, NULL};
            int rc = run_cmd(av, so, se);
            char *e = slurp(se);
            CHECK(rc != 0, "%s: exit %d", cases[c].file, rc);
            CHECK(e && strstr(e, cases[c].want1) && strstr(e, cases[c].want2), "%s: message '%s'", cases[c].file,
                  e ? e : "");
            if (c == 2) CHECK(e && strstr(e, "no test/ rows"), "no-test message '%s'", e ? e : "");
            /* one line: the message and nothing else */
            if (c == 1) {
                /* one line naming the file and its version, the last of stderr (the good file's warnings before it) */
                char head[200];
                snprintf(head, sizeof head, "cbnn_export: %s: schema version 3", bad);
                const char *at = e ? strstr(e, head) : NULL;
                CHECK(at && (at == e || at[-1] == '\n') && strchr(at, '\n') == e + strlen(e) - 1,
                      "old schema: one line '%s'", e ? e : "");
            }
            CHECK(!exists(eout) && !exists(emd), "%s: output left behind", cases[c].file);
            free(e);
        }
    }

    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return tu_finish("export");
}
