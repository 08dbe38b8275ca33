/* Selection on a validation split, never on test (issue 16, results/README.md):
 *
 *   1. the hold-out (datasets/split.c): validation and training splits are
 *      disjoint and cover the file, each view's sample i is the file's sample
 *      map[i] pixel for pixel, the validation images depend on data.split_seed
 *      alone (two train.seed values, the same split), data.train_subset takes
 *      the first N of what is left;
 *   2. the loop (experiments/train_run.c) with a validation split: periodic
 *      evaluations go to val/, the selected step is the first best validation
 *      top-1, and the test set is read exactly once per test row: the final
 *      weights and the selected ones, each at the evaluation precision and at
 *      the fixed one (a counting wrapper around the test set; nothing reads it
 *      before the end). The selected checkpoint's test top-1 equals an
 *      independent evaluation of the weights of a run stopped at the selected
 *      step (a stopped run is bitwise the uninterrupted one, test_resume);
 *   3. a run stopped after its selection and resumed selects and reports the
 *      same as the straight run;
 *   4. data.val_split 0: the periodic evaluations are test rows (role 0, the
 *      last role 2), paper_best_top1 is their maximum, selected_step the last. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify.h"
#include "datasets/dataset.h"
#include "engine_options.h"
#include "experiments/config.h"
#include "results_h5.h"
#include "run_record.h"
#include "split.h"
#include "testutil.h"
#include "train_run.h"

#define STEPS 60
#define EVERY 6

static Dataset g_train, g_val, g_test_inner;
static Dataset g_test;            /* g_test_inner behind a counter of get() calls */
static long g_test_gets;

static int counting_get(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng) {
    (void)ds;
    __atomic_fetch_add(&g_test_gets, 1, __ATOMIC_RELAXED);
    return g_test_inner.get(&g_test_inner, i, out, label, aug, rng);
}

/* ------------------------------------------------------------ 1. the split */

static void check_split(void) {
    RunConfig c;
    config_defaults(&c);
    char err[512];
    Dataset tr, va, te, tr2, va2, te2, tr3, va3, te3, full, fte;
    /* the file itself, no hold-out */
    c.val_split = 0;
    if (data_from_config(&c, &full, &fte, err, sizeof err)) {
        CHECK(0, "loading Fashion-MNIST: %s", err);
        return;
    }
    c.val_split = -1; /* the default: 5,000 */
    c.seed = 1;
    int rc = data_from_config_split(&c, &tr, &va, &te, err, sizeof err);
    c.seed = 2;
    rc |= data_from_config_split(&c, &tr2, &va2, &te2, err, sizeof err);
    c.split_seed = 7;
    c.train_subset = 1000;
    rc |= data_from_config_split(&c, &tr3, &va3, &te3, err, sizeof err);
    CHECK(rc == 0, "data_from_config_split: %s", err);
    if (rc) return;
    CHECK(va.n == 5000 && tr.n == full.n - 5000 && te.n == fte.n, "sizes: val %ld train %ld test %ld (file %ld)", va.n,
          tr.n, te.n, full.n);
    /* disjoint, covering, ascending */
    unsigned char *seen = calloc((size_t)full.n, 1);
    long dup = 0, order = 0;
    for (long i = 0; i < va.n; i++) {
        const long f = dataset_file_index(&va, i);
        dup += seen[f]++;
        order += i > 0 && f <= dataset_file_index(&va, i - 1);
    }
    for (long i = 0; i < tr.n; i++) {
        const long f = dataset_file_index(&tr, i);
        dup += seen[f]++;
        order += i > 0 && f <= dataset_file_index(&tr, i - 1);
    }
    long missing = 0;
    for (long f = 0; f < full.n; f++) missing += !seen[f];
    CHECK(dup == 0 && missing == 0 && order == 0, "split: %ld in both, %ld in neither, %ld out of file order", dup,
          missing, order);
    free(seen);
    /* another train.seed: the same validation images; another split seed: others */
    long same = 0, same3 = 0;
    for (long i = 0; i < va.n; i++) {
        same += dataset_file_index(&va, i) == dataset_file_index(&va2, i);
        same3 += dataset_file_index(&va, i) == dataset_file_index(&va3, i);
    }
    CHECK(same == va.n, "train.seed moved the validation split (%ld of %ld the same)", same, va.n);
    CHECK(same3 < va.n / 2, "data.split_seed 7 drew nearly the same validation images (%ld of %ld)", same3, va.n);
    CHECK(tr3.n == 1000, "train_subset after the hold-out: %ld images", tr3.n);
    /* pixels and labels: the view's sample i is the file's map[i] */
    const size_t px = (size_t)full.channels * full.height * full.width;
    real *a = malloc(sizeof *a * px), *b = malloc(sizeof *b * px);
    long bad = 0;
    for (long k = 0; k < 200; k++) {
        const Dataset *v = k % 2 ? &va : &tr;
        const long i = (k * 7919) % v->n;
        int32_t la = -1, lb = -2;
        v->get(v, i, a, &la, NULL, NULL);
        full.get(&full, dataset_file_index(v, i), b, &lb, NULL, NULL);
        bad += la != lb || memcmp(a, b, sizeof *a * px) != 0;
    }
    CHECK(bad == 0, "%ld of 200 view samples differ from the file's", bad);
    free(a);
    free(b);
    /* the first training image is the first one of the file not held out */
    long first = 0;
    for (long i = 0; i < va.n && dataset_file_index(&va, i) == first; i++) first++;
    CHECK(dataset_file_index(&tr, 0) == first, "training split starts at file index %ld, expected %ld",
          dataset_file_index(&tr, 0), first);
    /* too large a hold-out: a clear message naming the key */
    RunConfig big = c;
    big.val_split = 60000;
    Dataset x, y, z;
    rc = data_from_config_split(&big, &x, &y, &z, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "data.val_split") && strstr(err, "no training image"),
          "hold-out of the whole file: rc %d '%s'", rc, err);
    Dataset *all[] = {&tr, &va, &te, &tr2, &va2, &te2, &tr3, &va3, &te3, &full, &fte};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) dataset_free(all[k]);
}

/* ------------------------------------------------------------ 2-4. the loop */

static void config(RunConfig *c, long val) {
    config_defaults(c);
    tu_config_cyclebnn(c, 4);
    snprintf(c->arch, sizeof c->arch, "cifar_resnet8");
    c->iterations = STEPS;
    c->batch_size = 32;
    c->eval_interval = EVERY;
    c->eval_batch_size = 50;
    c->aug_flip = 1;
    c->seed = 5;
    /* a constant, large step: validation accuracy moves up and down, so the
     * best evaluation is not simply the last */
    c->lr_schedule = LR_CONSTANT;
    c->lr = 0.02; /* validation top-1 here peaks at step 36 of 60 */
    c->val_split = (double)val;
}

typedef struct {
    TrainResult res;
    RunInfo ri;
    int rc;
} Outcome;

/* one session into path (fresh or resumed), ended as run_experiment ends it */
static void session(const char *path, int fresh, const RunConfig *c, const Dataset *val, long stop_after, Outcome *o) {
    char err[1024] = "";
    memset(o, 0, sizeof *o);
    ResultsFile *rf = results_open(path, "sel", "", 2, fresh, err, sizeof err);
    CHECK(rf != NULL, "results_open %s: %s", path, err);
    if (!rf) return;
    char *yaml = config_to_yaml(c);
    RunLog *log = results_run_begin(rf, "run", yaml);
    free(yaml);
    TrainControl ctl = {.checkpoint_every = EVERY, .resume = 1, .val = val, .stop_after = stop_after};
    o->rc = train_run_ctl(c, "run", &g_train, &g_test, log, &ctl, NULL, &o->res, err, sizeof err);
    CHECK(o->rc >= 0, "train_run_ctl: %s", err);
    run_record_end(log, o->rc, &o->res, err, &g_train, &g_test);
    results_run_info(rf, "run", &o->ri);
    CHECK(results_close(rf, 1, err, sizeof err) == 0, "results_close: %s", err);
}

/* column `col` of /runs/run/<grp> as doubles (malloc'd), its length in *n */
static double *column(const char *path, const char *grp, const char *col, size_t *n) {
    char name[128];
    snprintf(name, sizeof name, "/runs/run/%s/%s", grp, col);
    *n = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    double *out = NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        hsize_t len = 0;
        H5Sget_simple_extent_dims(s, &len, NULL);
        out = malloc(sizeof *out * (len + 1));
        if (out && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0) *n = len;
        H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
    return out;
}

/* run attribute `name` of /runs/run (NaN when absent) */
static double run_attr(const char *path, const char *name) {
    double v = NAN;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return v;
    hid_t g = H5Gopen2(f, "/runs/run", H5P_DEFAULT);
    if (g >= 0 && H5Aexists(g, name) > 0) {
        hid_t a = H5Aopen(g, name, H5P_DEFAULT);
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
        H5Aclose(a);
    }
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return v;
}

/* the training arenas of c's arch built as `kind` on the loop's images with the
 * loop's binary-conv and memory options (fp32 twin: fast), planned for its batch */
static double planned_train_bytes(const RunConfig *c, ConvKind kind) {
    Model m;
    TrainOptions o;
    char err[200];
    double b = NAN;
    if (train_options_from_config(c, g_train.n, &o, err, sizeof err)) return b;
    if (model_build(&m, c->arch, kind, g_train.channels, g_train.height, g_train.width, g_train.num_classes, err,
                    sizeof err) == 0) {
        m.bconv = o.bconv;
        m.memory_lean = kind == CONV_BINARY ? o.memory_lean : 0;
        if (model_layout(&m, c->batch_size) == 0) b = (double)model_train_bytes(&m);
    }
    model_free(&m);
    return b;
}

/* issue 17: the run records its training arenas, its fp32 twin's and their ratio */
static void check_memory_attrs(const char *path, const RunConfig *c) {
    const double bytes = run_attr(path, "train_memory_bytes"), fp32 = run_attr(path, "train_memory_fp32_bytes"),
                 ratio = run_attr(path, "train_memory_ratio");
    const double want = planned_train_bytes(c, CONV_BINARY), want_fp32 = planned_train_bytes(c, CONV_FP32);
    CHECK(bytes == want && fp32 == want_fp32 && ratio == bytes / fp32 && bytes > 0 && fp32 > 0,
          "train_memory_bytes %g (model %g), fp32 twin %g (model %g), ratio %g", bytes, want, fp32, want_fp32, ratio);
}

/* the test/ row with this role and fixed flag: its index, or -1 (and how many) */
static int test_row(const double *role, const double *fixed, size_t n, int r, int fx, int *count) {
    int at = -1;
    *count = 0;
    for (size_t k = 0; k < n; k++)
        if ((int)role[k] == r && (int)fixed[k] == fx) {
            if (at < 0) at = (int)k;
            ++*count;
        }
    return at;
}

static void check_selection(const char *dir) {
    RunConfig c;
    config(&c, 400);
    char p1[600], p2[600], p3[600];
    snprintf(p1, sizeof p1, "%s/straight.h5", dir);
    snprintf(p2, sizeof p2, "%s/stopped.h5", dir);
    snprintf(p3, sizeof p3, "%s/probe.h5", dir);

    Outcome s;
    g_test_gets = 0;
    session(p1, 1, &c, &g_val, 0, &s);
    if (s.rc != 0) return;
    /* val/: one row per periodic evaluation, the selected step its first maximum */
    size_t nv, n2, n3;
    double *vstep = column(p1, "val", "step", &nv), *vtop = column(p1, "val", "top1", &n2),
           *vbits = column(p1, "val", "bits", &n3);
    CHECK(nv == STEPS / EVERY && n2 == nv && n3 == nv, "val/ has %zu rows, expected %d", nv, STEPS / EVERY);
    long sel = 0;
    double best = -1;
    for (size_t k = 0; k < nv; k++)
        if (vtop[k] > best) best = vtop[k], sel = (long)vstep[k];
    CHECK(s.ri.selected_step == (double)sel && s.ri.val_top1_at_selected == best,
          "selected step %g (val %g), the first best validation evaluation is step %ld (%g)", s.ri.selected_step,
          s.ri.val_top1_at_selected, sel, best);
    CHECK(sel != STEPS, "the selected step is the last one (%ld): this test needs an earlier best to test the "
          "selected checkpoint's evaluation (change the seed or lr)", sel);
    /* test/: exactly the final and selected weights, each at the evaluation
     * precision and at the fixed one, and the test set read once for each */
    size_t nt, nr, nf, ntop, nb;
    double *tstep = column(p1, "test", "step", &nt), *trole = column(p1, "test", "role", &nr),
           *tfix = column(p1, "test", "fixed", &nf), *ttop = column(p1, "test", "top1", &ntop),
           *tbits = column(p1, "test", "bits", &nb);
    const int want_rows = sel == STEPS ? 2 : 4;
    CHECK(nt == (size_t)want_rows && nr == nt && nf == nt && ntop == nt && nb == nt, "test/ has %zu rows, expected %d",
          nt, want_rows);
    int cnt[4], at[4];
    at[0] = test_row(trole, tfix, nt, TEST_FINAL, 0, &cnt[0]);
    at[1] = test_row(trole, tfix, nt, TEST_FINAL, 1, &cnt[1]);
    at[2] = test_row(trole, tfix, nt, TEST_SELECTED, 0, &cnt[2]);
    at[3] = test_row(trole, tfix, nt, TEST_SELECTED, 1, &cnt[3]);
    CHECK(cnt[0] == 1 && cnt[1] == 1 && cnt[2] == 1 && cnt[3] == 1, "test rows per (role, fixed): %d %d %d %d",
          cnt[0], cnt[1], cnt[2], cnt[3]);
    /* one read of the test set per evaluation: a fixed-bits row at the bits
     * its twin already ran at repeats that evaluation's numbers, unread */
    int evals = 0, dups = 0;
    for (int k = 0; k < 4; k++) {
        if (at[k] < 0) continue;
        const int twin = k % 2 ? at[k - 1] : -1;
        const int dup = twin >= 0 && tbits[at[k]] == tbits[twin];
        if (dup) CHECK(ttop[at[k]] == ttop[twin], "a repeated fixed-bits row differs from its twin");
        dups += dup;
        evals += !dup;
    }
    CHECK(g_test_gets == (long)evals * g_test.n, "the test set was read %ld times for %d evaluations of %ld images",
          g_test_gets, evals, g_test.n);
    CHECK(dups >= 1 && evals >= 3, "this run should end at the top of its range (the final fixed-bits row repeats "
          "the final one) and select at other bits: %d repeated, %d evaluated", dups, evals);
    if (at[0] >= 0 && at[2] >= 0 && at[1] >= 0 && at[3] >= 0) {
        CHECK(tstep[at[0]] == STEPS && tstep[at[2]] == sel, "test rows at steps %g and %g", tstep[at[0]], tstep[at[2]]);
        CHECK(ttop[at[0]] == s.ri.final_top1 && ttop[at[2]] == s.ri.test_top1_at_selected &&
                  ttop[at[1]] == s.ri.final_test_top1_fixed && ttop[at[3]] == s.ri.test_top1_at_selected_fixed,
              "attributes and test rows disagree");
        CHECK(s.ri.best_top1 == fmax(ttop[at[0]], ttop[at[2]]), "paper_best_top1 %g is not the best test row",
              s.ri.best_top1);
    }
    CHECK(s.ri.eval_bits_fixed == 6 && s.ri.val_split == 400, "eval_bits_fixed %g, val_split %g", s.ri.eval_bits_fixed,
          s.ri.val_split);

    /* the selected checkpoint evaluated independently: a run stopped at the
     * selected step has the weights the straight run had there */
    Outcome probe;
    g_test_gets = 0;
    session(p3, 1, &c, &g_val, sel, &probe);
    CHECK(probe.rc == 1 && g_test_gets == 0, "a stopped run: rc %d, test read %ld times (expected 0)", probe.rc,
          g_test_gets);
    {
        char err[512];
        ResultsFile *rf = results_open(p3, "sel", "", 2, 0, err, sizeof err);
        Model m;
        memset(&m, 0, sizeof m);
        CHECK(rf && model_from_config(&m, &c, g_train.channels, g_train.height, g_train.width, g_train.num_classes,
                                      err, sizeof err) == 0 && model_alloc(&m, 50) == 0,
              "model for the probe: %s", err);
        long step = 0;
        CkptArray a[2] = {{"params", CK_REAL, m.n_params, m.params}, {"buffers", CK_REAL, m.n_buffers, m.buffers}};
        CHECK(results_checkpoint_read(rf, "run", &step, a, 2, err, sizeof err) == 1 && step == sel,
              "the probe's checkpoint at step %ld (expected %ld): %s", step, sel, err);
        TrainOptions o;
        train_options_from_config(&c, g_train.n, &o, err, sizeof err);
        Task t = {.kind = &TASK_CLASSIFY};
        double top1 = NAN, loss = NAN;
        PrecEval faithful = {PREC_EVAL_FAITHFUL, 0};
        m.bits = prec_eval_bits(&o.prec, &faithful, sel);
        if (task_setup(&t, &TASK_CLASSIFY, &m, &g_train, 50, err, sizeof err) == 0) {
            task_evaluate(&t, &m, &g_test, 0, 50, &o.eval_aug, &top1, &loss, err, sizeof err);
            task_release(&t);
        }
        CHECK(top1 == s.ri.test_top1_at_selected, "the selected checkpoint's test top-1 %.17g, evaluated "
              "independently %.17g", s.ri.test_top1_at_selected, top1);
        model_free(&m);
        if (rf) results_close(rf, 0, err, sizeof err);
    }

    /* 3. stopped after the selection, resumed: the same selection and tests */
    Outcome a, b;
    session(p2, 1, &c, &g_val, sel + EVERY, &a);
    session(p2, 0, &c, &g_val, 0, &b);
    CHECK(a.rc == 1 && b.rc == 0, "stop/resume rc %d %d", a.rc, b.rc);
    CHECK(b.ri.selected_step == s.ri.selected_step && b.ri.test_top1_at_selected == s.ri.test_top1_at_selected &&
              b.ri.final_top1 == s.ri.final_top1 && b.ri.val_top1_at_selected == s.ri.val_top1_at_selected &&
              b.ri.test_top1_at_selected_fixed == s.ri.test_top1_at_selected_fixed,
          "resumed: selected %g test@sel %.17g final %.17g, straight: %g %.17g %.17g", b.ri.selected_step,
          b.ri.test_top1_at_selected, b.ri.final_top1, s.ri.selected_step, s.ri.test_top1_at_selected,
          s.ri.final_top1);
    free(vstep), free(vtop), free(vbits), free(tstep), free(trole), free(tfix), free(ttop), free(tbits);
    for (Outcome *o = &s; o; o = o == &s ? &probe : o == &probe ? &a : o == &a ? &b : NULL) run_info_free(&o->ri);
}

static void check_no_split(const char *dir) {
    RunConfig c;
    config(&c, 0);
    char p[600];
    snprintf(p, sizeof p, "%s/nosplit.h5", dir);
    Outcome s;
    g_test_gets = 0;
    session(p, 1, &c, NULL, 0, &s);
    if (s.rc != 0) return;
    check_memory_attrs(p, &c);
    size_t nv, nt, nr, nf, ntop;
    double *vstep = column(p, "val", "step", &nv);
    double *trole = column(p, "test", "role", &nr), *tfix = column(p, "test", "fixed", &nf),
           *ttop = column(p, "test", "top1", &ntop), *tstep = column(p, "test", "step", &nt);
    /* 10 periodic test evaluations (the last the final one) + the fixed-bits one */
    CHECK(nv == 0 && nt == STEPS / EVERY + 1 && nr == nt && nf == nt, "val/ %zu rows, test/ %zu rows", nv, nt);
    double best = -1;
    int bad = 0;
    for (size_t k = 0; k + 1 < nt && k < nr; k++) {
        bad += (int)tfix[k] != 0 || (int)trole[k] != (k + 2 == nt ? TEST_FINAL : TEST_PERIODIC);
        if (ttop[k] > best) best = ttop[k];
    }
    CHECK(!bad && nt > 0 && (int)tfix[nt - 1] == 1 && tstep[nt - 1] == STEPS, "row roles/fixed flags wrong");
    CHECK(s.ri.best_top1 == best && s.ri.selected_step == STEPS && s.ri.test_top1_at_selected == s.ri.final_top1 &&
              isnan(s.ri.val_top1_at_selected) && s.ri.val_split == 0,
          "val_split 0: paper best %g (max %g), selected %g, test@sel %g final %g", s.ri.best_top1, best,
          s.ri.selected_step, s.ri.test_top1_at_selected, s.ri.final_top1);
    size_t nb;
    double *tbits = column(p, "test", "bits", &nb);
    const int dup = nb == nt && nt >= 2 && tbits[nt - 1] == tbits[nt - 2]; /* the fixed row repeats the final one */
    CHECK(g_test_gets == (long)(nt - (size_t)dup) * g_test.n, "test read %ld times for %zu evaluations", g_test_gets,
          nt - (size_t)dup);
    free(tbits);
    free(vstep), free(trole), free(tfix), free(ttop), free(tstep);
    run_info_free(&s.ri);
}

int main(void) {
    check_split();
    /* the loop's data: a training file cut into train and validation views */
    Dataset full;
    tu_load_fmnist(&full, &g_test_inner, 1400, 300);
    char err[512];
    CHECK(dataset_holdout(&full, 400, 3, &g_train, &g_val, err, sizeof err) == 0, "holdout: %s", err);
    g_test = g_test_inner;
    g_test.get = counting_get;
    g_test.destroy = NULL;
    g_test.images = NULL; /* owned by g_test_inner */
    g_test.labels = NULL;
    g_test.impl = NULL;
    char dir[] = "/tmp/cbnn_valsel_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    check_selection(dir);
    check_no_split(dir);
    dataset_free(&g_train);
    dataset_free(&g_val);
    dataset_free(&g_test_inner);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("val_selection");
}
