/* The loss landscape (analysis/landscape_core.c) on a tiny trained run.
 *
 * A binary ResNet-8 (CycleBNN conv, cyclic 2-6 bits) trains 20 iterations on
 * 256 Fashion-MNIST images into a temporary results file, which then holds its
 * final checkpoint. Checked:
 *   1. the landscape at alpha = beta = 0 is the run's own eval loss and top-1,
 *      computed independently with classify_evaluate() on the same subset at the same
 *      bits, exactly; on the whole test split it is the training loop's final
 *      evaluation, exactly;
 *   2. filter normalisation: every filter (row) of both directions has the
 *      norm of the weight's filter (1e-5 relative), every other entry (BN,
 *      biases, binary-conv alpha, padding) is 0, and the directions depend on
 *      the seed and architecture only (another theta rescales the same rows);
 *   3. flips: 0 at the origin, > 0 away from it, and equal to a count made on
 *      the binary weights the binary convs actually used in a forward pass;
 *   4. the table is bitwise the same with 1 and 2 threads;
 *   5. the written HDF5 tables (2-D and 1-D) read back with the right shape,
 *      values and attributes;
 *   6. a run without a checkpoint, a missing run, a missing file and an
 *      unloadable dataset give clear errors;
 *   7. a run that is not complete (its status set to interrupted) is refused
 *      (landscape_check_status and landscape_write, nothing written) unless
 *      allow_unfinished is set, and then the table says so (unfinished = 1,
 *      run_status, checkpoint_step). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/landscape.h"
#include "model.h"
#include "precision.h"
#include "h5_attr.h"
#include "results_h5.h"
#include "testutil.h"
#include "classify.h"
#include "train_run.h"

#define STEPS 20
#define SUBSET 64
#define GRID 5

static Dataset g_train, g_test;

static void config(RunConfig *c) {
    config_defaults(c);
    tu_config_cyclebnn(c, 2);
    snprintf(c->arch, sizeof c->arch, "cifar_resnet8");
    c->iterations = STEPS;
    c->batch_size = 32;
    c->eval_interval = 10;
    c->eval_batch_size = 24; /* not a divisor of SUBSET: the last batch is partial */
    c->train_subset = 256;
    c->test_subset = 96;
    c->threads = 2;
    c->seed = 5;
}

/* train the run into path, declare a second one that never trains */
static int make_results(const char *path, TrainResult *res) {
    RunConfig c;
    config(&c);
    char err[1024] = "";
    ResultsFile *rf = results_open(path, "landscape_test", "name: landscape_test\n", 2, 1, err, sizeof err);
    CHECK(rf != NULL, "results_open %s: %s", path, err);
    if (!rf) return -1;
    char *yaml = config_to_yaml(&c);
    RunLog *log = results_run_begin(rf, "run", yaml);
    CHECK(log != NULL, "results_run_begin");
    int rc = train_run_ctl(&c, "run", &g_train, &g_test, log, NULL, NULL, res, err, sizeof err);
    CHECK(rc == 0, "train_run_ctl: %s", err);
    runlog_end(log, "complete", res->final_top1, res->best_top1, res->wall_time_s);
    CHECK(results_run_declare(rf, "nockpt", yaml) == 1, "declaring run nockpt");
    free(yaml);
    CHECK(results_close(rf, 1, err, sizeof err) == 0, "results_close: %s", err);
    return rc;
}

static int same_doubles(const double *a, const double *b, long n) { return !memcmp(a, b, sizeof(double) * (size_t)n); }

static double *read_dset(hid_t g, const char *name, hid_t memtype, size_t elsize, hsize_t *len) {
    *len = 0;
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t s = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(s);
    H5Sget_simple_extent_dims(s, len, NULL);
    void *out = rank == 1 ? malloc(elsize * (*len ? *len : 1)) : NULL;
    if (out && H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        free(out);
        out = NULL;
    }
    H5Sclose(s);
    H5Dclose(d);
    return out;
}


static void attr_text(hid_t g, const char *name, char *out, size_t cap) {
    out[0] = 0;
    if (H5Aexists(g, name) <= 0) return;
    hid_t a = H5Aopen(g, name, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *v = NULL;
    if (H5Aread(a, t, &v) >= 0 && v) snprintf(out, cap, "%s", v);
    if (v) H5free_memory(v);
    H5Tclose(t);
    H5Aclose(a);
}

/* the table group of the file against t (5) */
static void check_written(const char *path, const LandscapeTable *t, const LandscapeOptions *o, long n_bin) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "H5Fopen %s", path);
    if (f < 0) return;
    const char *gname = t->one_d ? "/runs/run/landscape1d" : "/runs/run/landscape";
    hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
    CHECK(g >= 0, "no group %s", gname);
    if (g >= 0) {
        const char *dcols[4] = {"alpha", "beta", "loss", "top1"};
        const double *want[4] = {t->alpha, t->beta, t->loss, t->top1};
        for (int k = 0; k < 4; k++) {
            hsize_t len;
            double *v = read_dset(g, dcols[k], H5T_NATIVE_DOUBLE, sizeof(double), &len);
            if (k == 1 && t->one_d) {
                CHECK(v == NULL, "%s has a beta column", gname);
            } else {
                CHECK(v && len == (hsize_t)t->n_rows, "%s/%s: %llu rows, expected %ld", gname, dcols[k],
                      (unsigned long long)len, t->n_rows);
                if (v && len == (hsize_t)t->n_rows)
                    CHECK(same_doubles(v, want[k], t->n_rows), "%s/%s differs from the table computed", gname,
                          dcols[k]);
            }
            free(v);
        }
        hsize_t len;
        int64_t *fl = (int64_t *)read_dset(g, "flips", H5T_NATIVE_INT64, sizeof(int64_t), &len);
        CHECK(fl && len == (hsize_t)t->n_rows && !memcmp(fl, t->flips, sizeof(int64_t) * (size_t)t->n_rows),
              "%s/flips: %llu rows or values differ", gname, (unsigned long long)len);
        free(fl);
        CHECK(h5_attr_double(g, "seed") == (double)o->seed, "attr seed %g", h5_attr_double(g, "seed"));
        CHECK(h5_attr_double(g, "bits") == t->bits, "attr bits %g, expected %g", h5_attr_double(g, "bits"), t->bits);
        CHECK(h5_attr_double(g, "subset") == SUBSET, "attr subset %g", h5_attr_double(g, "subset"));
        CHECK(h5_attr_double(g, "grid_n") == t->grid_n, "attr grid_n %g", h5_attr_double(g, "grid_n"));
        CHECK(h5_attr_double(g, "range") == o->range, "attr range %g", h5_attr_double(g, "range"));
        CHECK(h5_attr_double(g, "checkpoint_step") == STEPS, "attr checkpoint_step %g", h5_attr_double(g, "checkpoint_step"));
        CHECK(h5_attr_double(g, "n_binary_weights") == (double)n_bin, "attr n_binary_weights %g, expected %ld",
              h5_attr_double(g, "n_binary_weights"), n_bin);
        char txt[512];
        attr_text(g, "directions", txt, sizeof txt);
        CHECK(!strcmp(txt, LANDSCAPE_DIRECTIONS), "attr directions '%s'", txt);
        attr_text(g, "bits_rule", txt, sizeof txt);
        CHECK(strstr(txt, "eval rule") != NULL, "attr bits_rule '%s'", txt);
        attr_text(g, "run_status", txt, sizeof txt);
        CHECK(!strcmp(txt, "complete"), "attr run_status '%s'", txt);
        CHECK(h5_attr_double(g, "unfinished") == 0, "attr unfinished %g", h5_attr_double(g, "unfinished"));
        H5Gclose(g);
    }
    /* the run itself is untouched */
    hid_t run = H5Gopen2(f, "/runs/run", H5P_DEFAULT);
    char status[64];
    attr_text(run, "status", status, sizeof status);
    CHECK(!strcmp(status, "complete"), "the run's status is now '%s'", status);
    H5Gclose(run);
    H5Fclose(f);
}

static int contains(const char *s, const char *what) { return s && strstr(s, what) != NULL; }

/* Replace the run's status attribute (a variable-length UTF-8 string, as
 * results_h5 writes it) in the committed file: a run stopped before its end
 * without training one. */
static void set_status(const char *path, const char *run, const char *status) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0, "H5Fopen %s read-write", path);
    if (f < 0) return;
    char name[256];
    snprintf(name, sizeof name, "/runs/%s", run);
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    CHECK(g >= 0 && H5Adelete(g, "status") >= 0, "deleting the status of %s", name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, "status", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, t, &status) >= 0, "writing status '%s' of %s", status, name);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Gclose(g);
    H5Fclose(f);
}

/* 7: an interrupted run is refused unless allow_unfinished, which the table records */
static void check_unfinished(const char *path, const LandscapeOptions *o, const LandscapeTable *t) {
    set_status(path, "run", "interrupted");
    LandscapeRun r;
    char err[2048] = "";
    int rc = landscape_read_run(path, "run", &r, err, sizeof err);
    CHECK(rc == 0 && !strcmp(r.status, "interrupted"), "landscape_read_run of the interrupted run: rc %d, status '%s' %s",
          rc, rc ? "" : r.status, err);
    if (rc) return;
    rc = landscape_check_status(path, "run", r.status, r.step, 0, err, sizeof err);
    CHECK(rc == -1 && contains(err, "'run'") && contains(err, path) && contains(err, "interrupted") &&
              contains(err, "--allow-unfinished") && !strchr(err, '\n'),
          "an interrupted run is refused with a one-line message: rc %d, '%s'", rc, err);
    LandscapeOptions ou = *o;
    ou.allow_unfinished = 0;
    rc = landscape_write(path, &r, &ou, t, err, sizeof err);
    CHECK(rc == -1 && contains(err, "interrupted"), "landscape_write refuses the interrupted run: rc %d, '%s'", rc, err);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = f >= 0 ? H5Gopen2(f, "/runs/run/landscape", H5P_DEFAULT) : -1;
    char txt[64] = "";
    if (g >= 0) attr_text(g, "run_status", txt, sizeof txt);
    CHECK(g >= 0 && !strcmp(txt, "complete") && h5_attr_double(g, "unfinished") == 0,
          "the refused write left the table as it was (run_status '%s')", txt);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    CHECK(landscape_check_status(path, "run", r.status, r.step, 1, err, sizeof err) == 0,
          "allow_unfinished accepts the interrupted run");
    ou.allow_unfinished = 1;
    rc = landscape_write(path, &r, &ou, t, err, sizeof err);
    CHECK(rc == 0, "landscape_write with allow_unfinished: %s", err);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    g = f >= 0 ? H5Gopen2(f, "/runs/run/landscape", H5P_DEFAULT) : -1;
    txt[0] = 0;
    if (g >= 0) attr_text(g, "run_status", txt, sizeof txt);
    CHECK(g >= 0 && !strcmp(txt, "interrupted") && h5_attr_double(g, "unfinished") == 1 &&
              h5_attr_double(g, "checkpoint_step") == STEPS,
          "the unfinished table records run_status '%s', unfinished %g, checkpoint_step %g", txt,
          g >= 0 ? h5_attr_double(g, "unfinished") : NAN, g >= 0 ? h5_attr_double(g, "checkpoint_step") : NAN);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    landscape_run_free(&r);
    set_status(path, "run", "complete");
}

/* Bw of every binary conv as the last forward left it in `saved`
 * (core/binary_conv.c's layout: hdr[8], sig_w[O], mean_w[O], sig_a[N], mean_a[N], w1[O*CK], bw[O*CK]) */
static size_t forward_bw(const Model *m, real *out) {
    size_t off = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (!l->kind->binary) continue;
        /* the layout of the last forward: its batch, as layers.c passes it */
        const ConvDims d = conv_dims(m->batch, l->inC, l->inH, l->inW, l->C, l->K, l->stride, l->pad);
        binary_conv_saved_bw(out + off, m->saved + l->save_off, &d, &m->bconv);
        off += l->w_n;
    }
    return off;
}


int main(void) {
    tu_load_fmnist(&g_train, &g_test, 256, 96);
    char dir[] = "/tmp/cbnn_landscape_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/land.h5", dir);
    TrainResult res;
    if (make_results(path, &res) != 0) return tu_finish("landscape");

    char err[2048] = "";
    LandscapeRun r;
    int rc = landscape_read_run(path, "run", &r, err, sizeof err);
    CHECK(rc == 0, "landscape_read_run: %s", err);
    if (rc) return tu_finish("landscape");
    CHECK(r.step == STEPS, "checkpoint step %ld", r.step);
    CHECK(r.experiment && !strcmp(r.experiment, "landscape_test"), "experiment '%s'", r.experiment);

    /* ---- the independent reference: the run's model from the file, classify_evaluate() ---- */
    RunConfig c;
    config(&c);
    Model m;
    CHECK(model_build(&m, c.arch, CONV_BINARY, 1, 28, 28, 10, err, sizeof err) == 0, "model_build: %s", err);
    binary_options_from_config(&m.bconv, &c);
    CHECK(model_alloc(&m, c.batch_size) == 0, "model_alloc");
    model_init_params(&m, c.seed);
    real *init = malloc(m.n_params * sizeof *init);
    memcpy(init, m.params, m.n_params * sizeof *init);
    {
        ResultsFile *rf = results_open_readonly(path, err, sizeof err);
        CHECK(rf != NULL, "results_open_readonly: %s", err);
        CkptArray a[2] = {{"params", CK_REAL, m.n_params, m.params}, {"buffers", CK_REAL, m.n_buffers, m.buffers}};
        long step = 0;
        CHECK(results_checkpoint_read(rf, "run", &step, a, 2, err, sizeof err) == 1 && step == STEPS,
              "results_checkpoint_read: %s", err);
        results_close(rf, 0, err, sizeof err);
    }
    CHECK(!memcmp(m.params, r.params, m.n_params * sizeof(real)), "landscape_read_run's params differ");
    PrecSchedule ps;
    PrecEval pe;
    prec_from_config(&c, train_total_iterations(&c, g_train.n), &ps, &pe);
    const double bits = prec_eval_bits(&ps, &pe, STEPS);
    m.bits = bits;
    const Augment aug = {.normalize = c.normalize};
    double ref_top1, ref_loss;
    CHECK(classify_evaluate(&m, &g_test, SUBSET, c.eval_batch_size, &aug, &ref_top1, &ref_loss, err, sizeof err) == 0, "evaluate: %s", err);

    /* ---- the landscape on 1 and 2 threads ---- */
    LandscapeOptions o;
    landscape_defaults(&o);
    o.grid_n = GRID;
    o.subset = SUBSET;
    o.seed = 3;
    LandscapeTable t1, t2;
    o.threads = 1;
    rc = landscape_compute(&r, &g_train, NULL, &g_test, &o, &t1, err, sizeof err);
    CHECK(rc == 0, "landscape_compute (1 thread): %s", err);
    if (rc) return tu_finish("landscape");
    o.threads = 2;
    rc = landscape_compute(&r, &g_train, NULL, &g_test, &o, &t2, err, sizeof err);
    CHECK(rc == 0, "landscape_compute (2 threads): %s", err);
    if (rc) return tu_finish("landscape");
    CHECK(t1.threads == 1 && t2.threads == 2, "threads used: %d and %d", t1.threads, t2.threads);
    const long origin = (GRID / 2) * GRID + GRID / 2;
    CHECK(t1.n_rows == GRID * GRID && t1.alpha[origin] == 0 && t1.beta[origin] == 0, "row %ld is not the origin",
          origin);
    CHECK(t1.alpha[0] == -1 && t1.beta[0] == -1 && t1.alpha[GRID * GRID - 1] == 1 && t1.beta[1] == -0.5 &&
              t1.alpha[GRID] == -0.5,
          "grid is not alpha-major over [-1, 1]");

    /* 1. the origin */
    CHECK(t1.bits == bits, "landscape bits %g, the run's eval rule gives %g", t1.bits, bits);
    CHECK(!memcmp(&t1.loss[origin], &ref_loss, sizeof ref_loss) && !memcmp(&t1.top1[origin], &ref_top1, sizeof ref_top1),
          "origin: loss %.17g top-1 %.17g, classify_evaluate() gives %.17g %.17g", t1.loss[origin], t1.top1[origin], ref_loss,
          ref_top1);
    CHECK(!memcmp(&t1.origin_loss, &ref_loss, sizeof ref_loss), "origin_loss %.17g vs %.17g", t1.origin_loss,
          ref_loss);
    {
        LandscapeOptions o1 = o;
        o1.grid_n = 1;
        o1.subset = 0; /* the whole (96-image) test split, as the training loop's final evaluation */
        LandscapeTable tw;
        rc = landscape_compute(&r, &g_train, NULL, &g_test, &o1, &tw, err, sizeof err);
        CHECK(rc == 0, "landscape_compute (whole split): %s", err);
        if (!rc) {
            CHECK(tw.subset == g_test.n, "subset %ld", tw.subset);
            CHECK(!memcmp(&tw.loss[0], &res.final_loss, sizeof(double)) &&
                      !memcmp(&tw.top1[0], &res.final_top1, sizeof(double)),
                  "whole split: %.17g / %.17g, the run's final eval %.17g / %.17g", tw.loss[0], tw.top1[0],
                  res.final_loss, res.final_top1);
            landscape_table_free(&tw);
        }
    }

    /* 2. filter normalisation */
    real *d = malloc(m.n_params * sizeof *d), *dinit = malloc(m.n_params * sizeof *d);
    char *is_w = calloc(m.n_params, 1);
    for (int which = 0; which < 2; which++) {
        landscape_direction(&m, r.params, o.seed, which, d);
        landscape_direction(&m, init, o.seed, which, dinit);
        double worst = 0, worst_same = 0;
        int n_filters = 0;
        for (int i = 0; i < m.n_layers; i++) {
            const Layer *l = &m.layers[i];
            if (!l->kind->has_weights) continue;
            const size_t O = (size_t)l->C, row = l->w_n / O;
            memset(is_w + l->w_off, 1, l->w_n);
            for (size_t oo = 0; oo < O; oo++) {
                double nd = 0, nw = 0, ndi = 0, nwi = 0;
                const size_t b = l->w_off + oo * row;
                for (size_t j = 0; j < row; j++) {
                    nd += (double)d[b + j] * d[b + j];
                    nw += (double)r.params[b + j] * r.params[b + j];
                    ndi += (double)dinit[b + j] * dinit[b + j];
                    nwi += (double)init[b + j] * init[b + j];
                }
                double rel = fabs(sqrt(nd) - sqrt(nw)) / sqrt(nw);
                if (rel > worst) worst = rel;
                /* the same direction row, scaled to another theta */
                for (size_t j = 0; j < row; j++) {
                    double u = d[b + j] / sqrt(nw), v = dinit[b + j] / sqrt(nwi);
                    double e = fabs(u - v) / (fabs(v) + 1e-3);
                    if (e > worst_same) worst_same = e;
                }
                n_filters++;
            }
        }
        long nonzero = 0;
        for (size_t j = 0; j < m.n_params; j++)
            if (!is_w[j] && d[j] != 0) nonzero++;
        CHECK(n_filters > 50, "only %d filters", n_filters);
        CHECK(worst < 1e-5, "direction %d: a filter's norm is off by %.3g relative", which, worst);
        CHECK(nonzero == 0, "direction %d: %ld BN/bias/alpha/padding entries are not 0", which, nonzero);
        CHECK(worst_same < 1e-5, "direction %d depends on theta beyond the filter scale (%.3g)", which, worst_same);
    }
    {
        real *d0 = malloc(m.n_params * sizeof *d0);
        landscape_direction(&m, r.params, o.seed, 0, d0);
        landscape_direction(&m, r.params, o.seed, 1, d);
        CHECK(memcmp(d0, d, m.n_params * sizeof *d) != 0, "d1 == d2");
        landscape_direction(&m, r.params, o.seed + 1, 0, d);
        CHECK(memcmp(d0, d, m.n_params * sizeof *d) != 0, "the seed does not change d1");
        free(d0);
    }

    /* 3. flips, against the binary weights the forward used */
    long n_bin = 0;
    for (int i = 0; i < m.n_layers; i++)
        if (m.layers[i].kind->binary) n_bin += (long)m.layers[i].w_n;
    CHECK(t1.n_binary_weights == n_bin && n_bin > 0, "n_binary_weights %ld, expected %ld", t1.n_binary_weights, n_bin);
    CHECK(t1.flips[origin] == 0, "flips at the origin: %lld", (long long)t1.flips[origin]);
    int64_t fmax = 0;
    for (long k = 0; k < t1.n_rows; k++)
        if (t1.flips[k] > fmax) fmax = t1.flips[k];
    CHECK(fmax > 0, "no flips anywhere on the grid");
    {
        real *bw0 = malloc(n_bin * sizeof *bw0), *bwf = malloc(n_bin * sizeof *bwf), *bwl = malloc(n_bin * sizeof *bwl);
        real *x = malloc((size_t)8 * 28 * 28 * sizeof *x);
        int32_t y[8], idx[8];
        for (int b = 0; b < 8; b++) idx[b] = b;
        CHECK(dataset_batch(&g_test, idx, 8, x, y, &aug, 0, 0, 0, NULL, 0) == 0, "dataset_batch");
        model_run(&m, x, 8, 0); /* at theta */
        forward_bw(&m, bw0);
        CHECK(landscape_binary_weights(&m, m.params, bits, bwl) == (size_t)n_bin &&
                  !memcmp(bwl, bw0, n_bin * sizeof *bw0),
              "landscape_binary_weights at theta differs from the forward's");
        /* the grid's corner (1, 1) */
        real *d1 = malloc(m.n_params * sizeof *d1), *d2 = malloc(m.n_params * sizeof *d2);
        landscape_direction(&m, r.params, o.seed, 0, d1);
        landscape_direction(&m, r.params, o.seed, 1, d2);
        for (size_t j = 0; j < m.n_params; j++) {
            double dv = 1.0 * d1[j] + 1.0 * (double)d2[j];
            m.params[j] = dv == 0 ? r.params[j] : (real)((double)r.params[j] + dv);
        }
        model_run(&m, x, 8, 0);
        forward_bw(&m, bwf);
        CHECK(landscape_binary_weights(&m, m.params, bits, bwl) == (size_t)n_bin &&
                  !memcmp(bwl, bwf, n_bin * sizeof *bwf),
              "landscape_binary_weights at (1, 1) differs from the forward's");
        long flips = 0, pm = 0;
        for (long j = 0; j < n_bin; j++) {
            flips += bwf[j] != bw0[j];
            pm += bw0[j] == 1 || bw0[j] == -1 || bw0[j] == 0;
        }
        CHECK(pm == n_bin, "binary weights outside {-1, 0, 1}");
        CHECK(flips == t1.flips[GRID * GRID - 1], "flips at (1, 1): forward %ld, table %lld", flips,
              (long long)t1.flips[GRID * GRID - 1]);
        memcpy(m.params, r.params, m.n_params * sizeof(real));
        free(bw0); free(bwf); free(bwl); free(x); free(d1); free(d2);
    }

    /* 4. 1 and 2 threads */
    CHECK(same_doubles(t1.loss, t2.loss, t1.n_rows) && same_doubles(t1.top1, t2.top1, t1.n_rows) &&
              !memcmp(t1.flips, t2.flips, sizeof(int64_t) * (size_t)t1.n_rows) &&
              same_doubles(t1.alpha, t2.alpha, t1.n_rows) && same_doubles(t1.beta, t2.beta, t1.n_rows),
          "the tables on 1 and 2 threads differ");
    long moved = 0;
    for (long k = 0; k < t1.n_rows; k++) moved += t1.loss[k] != t1.loss[origin];
    CHECK(moved > 0, "the loss is the same everywhere");
    printf("landscape: %dx%d, %ld images, %g bits: origin loss %.5f top-1 %.2f%%, corner loss %.5f, max flips %lld "
           "of %ld, %.2fs (1 thread) %.2fs (2 threads)\n",
           GRID, GRID, t1.subset, t1.bits, t1.loss[origin], t1.top1[origin], t1.loss[GRID * GRID - 1],
           (long long)fmax, n_bin, t1.seconds, t2.seconds);

    /* 5. written and read back; the 1-D sweep too */
    o.threads = 2;
    rc = landscape_write(path, &r, &o, &t2, err, sizeof err);
    CHECK(rc == 0, "landscape_write: %s", err);
    check_written(path, &t2, &o, n_bin);
    LandscapeOptions o1 = o;
    o1.one_d = 1;
    o1.grid_n = 7;
    LandscapeTable t3;
    rc = landscape_compute(&r, &g_train, NULL, &g_test, &o1, &t3, err, sizeof err);
    CHECK(rc == 0, "landscape_compute (1-D): %s", err);
    if (!rc) {
        CHECK(t3.n_rows == 7 && t3.beta == NULL && t3.alpha[3] == 0, "1-D table shape");
        CHECK(!memcmp(&t3.loss[3], &ref_loss, sizeof ref_loss) && t3.flips[3] == 0, "1-D origin %.17g vs %.17g",
              t3.loss[3], ref_loss);
        /* alpha = +-1 along d1 is the 2-D table's (+-1, 0) */
        CHECK(!memcmp(&t3.loss[6], &t1.loss[(GRID - 1) * GRID + GRID / 2], sizeof(double)) &&
                  t3.flips[0] == t1.flips[GRID / 2],
              "1-D sweep differs from the 2-D grid's beta = 0 column");
        CHECK(landscape_write(path, &r, &o1, &t3, err, sizeof err) == 0, "landscape_write (1-D): %s", err);
        check_written(path, &t3, &o1, n_bin);
        landscape_table_free(&t3);
    }
    /* the 2-D table is still there next to the 1-D one */
    check_written(path, &t2, &o, n_bin);

    /* 7. not complete: refused, or recorded as unfinished */
    check_unfinished(path, &o, &t2);

    /* 6. errors */
    LandscapeRun bad;
    rc = landscape_read_run(path, "nockpt", &bad, err, sizeof err);
    CHECK(rc == -1 && contains(err, "nockpt") && contains(err, "no complete checkpoint") && contains(err, path),
          "run without a checkpoint: rc %d, '%s'", rc, err);
    rc = landscape_read_run(path, "absent", &bad, err, sizeof err);
    CHECK(rc == -1 && contains(err, "no run 'absent'") && contains(err, path), "missing run: rc %d, '%s'", rc, err);
    char nofile[300];
    snprintf(nofile, sizeof nofile, "%s/none.h5", dir);
    rc = landscape_read_run(nofile, "run", &bad, err, sizeof err);
    CHECK(rc == -1 && contains(err, nofile), "missing file: rc %d, '%s'", rc, err);
    {
        RunConfig c2 = r.c;
        snprintf(c2.data_path, sizeof c2.data_path, "%s/no_such_dir", dir);
        Dataset a, v, b;
        rc = landscape_load_data(&c2, &a, &v, &b, err, sizeof err);
        CHECK(rc == -1 && contains(err, "not loadable") && contains(err, "no_such_dir"), "unloadable dataset: '%s'",
              err);
    }
    printf("error messages, e.g.: %s\n", err);

    landscape_table_free(&t1);
    landscape_table_free(&t2);
    landscape_run_free(&r);
    model_free(&m);
    free(init);
    free(d);
    free(dinit);
    free(is_w);
    char lock[300];
    snprintf(lock, sizeof lock, "%s.lock", path);
    unlink(lock);
    unlink(path);
    rmdir(dir);
    dataset_free(&g_train);
    dataset_free(&g_test);
    return tu_finish("landscape");
}
