/* Loss landscape core (landscape.h). */
#include "landscape.h"

#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "model.h"
#include "precision.h"
#include "progress.h"
#include "quant.h"
#include "results_h5.h"
#include "rng.h"
#include "classify.h"
#include "train_run.h"

void landscape_defaults(LandscapeOptions *o) {
    memset(o, 0, sizeof *o);
    o->grid_n = 51;
    o->range = 1.0;
    o->bits = -1.0;
    o->subset = 1000;
    o->seed = 1;
}

void landscape_run_free(LandscapeRun *r) {
    if (!r) return;
    free(r->params);
    free(r->buffers);
    free(r->experiment);
    free(r->experiment_yaml);
    r->params = r->buffers = NULL;
    r->experiment = r->experiment_yaml = NULL;
}

static int is_weight_layer(const Layer *l) { return l->kind->has_weights; }

static int build_model(Model *m, const RunConfig *c, int C, int H, int W, int classes, const real *params,
                       const real *buffers, char *err, size_t errlen) {
    if (model_from_config(m, c, C, H, W, classes, err, errlen)) return -1;
    if (model_alloc(m, c->batch_size)) {
        snprintf(err, errlen, "out of memory allocating %s for batch %d", c->arch, c->batch_size);
        model_free(m);
        return -1;
    }
    model_init_params(m, c->seed);
    if (params) memcpy(m->params, params, m->n_params * sizeof(real));
    if (buffers) memcpy(m->buffers, buffers, m->n_buffers * sizeof(real));
    return 0;
}

int landscape_model(Model *m, const RunConfig *c, const Dataset *ds, const real *params, const real *buffers,
                    char *err, size_t errlen) {
    return build_model(m, c, ds->channels, ds->height, ds->width, ds->num_classes, params, buffers, err, errlen);
}

typedef struct {
    char *buf;
    size_t cap, len;
    int n;
} NameList;

static herr_t add_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    NameList *l = data;
    int w = snprintf(l->buf + l->len, l->cap - l->len, "%s%s", l->n++ ? ", " : "", name);
    if (w > 0) l->len += (size_t)w < l->cap - l->len ? (size_t)w : l->cap - l->len - 1;
    return 0;
}

/* the runs of a results file, comma-separated, into buf ("" if none or unreadable) */
static void list_runs(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return;
    hid_t g = H5Gopen2(f, "runs", H5P_DEFAULT);
    if (g >= 0) {
        NameList l = {buf, cap, 0, 0};
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, add_name, &l);
        H5Gclose(g);
    }
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
}

int landscape_check_status(const char *path, const char *run, const char *status, long step, int allow_unfinished,
                           char *err, size_t errlen) {
    if (!strcmp(status, "complete") || allow_unfinished) return 0;
    snprintf(err, errlen,
             "run '%s' in %s is %s, not complete (checkpoint at step %ld): its landscape would not be of the trained "
             "weights; finish the run first, or pass --allow-unfinished to evaluate that checkpoint anyway",
             run, path, status[0] ? status : "of unknown status", step);
    return -1;
}

int landscape_read_run(const char *path, const char *run, LandscapeRun *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", run);
    char e2[1024] = "";
    ResultsFile *f = results_open_readonly(path, e2, sizeof e2);
    if (!f) {
        snprintf(err, errlen, "cannot read results file %s: %s", path, e2);
        return -1;
    }
    RunInfo ri;
    int rc = -1;
    memset(&ri, 0, sizeof ri);
    if (results_run_info(f, run, &ri) != 0 || !ri.exists) {
        char names[512];
        list_runs(path, names, sizeof names);
        snprintf(err, errlen, "%s has no run '%s' (its runs: %s)", path, run, names[0] ? names : "none");
        goto out;
    }
    if (ri.checkpoint_step < 0) {
        snprintf(err, errlen, "run '%s' in %s has no complete checkpoint (status %s): nothing to evaluate", run, path,
                 ri.status[0] ? ri.status : "unknown");
        goto out;
    }
    if (!ri.config) {
        snprintf(err, errlen, "run '%s' in %s has no stored config", run, path);
        goto out;
    }
    ExperimentConfig e;
    char where[1200];
    snprintf(where, sizeof where, "%s:/runs/%s/config", path, run);
    if (experiment_parse(&e, ri.config, strlen(ri.config), where, e2, sizeof e2)) {
        snprintf(err, errlen, "the config of run '%s' in %s cannot be read by this build: %s", run, path, e2);
        goto out;
    }
    r->c = e.base;
    experiment_free(&e);
    DatasetShape sh;
    if (dataset_nominal(r->c.dataset, &sh)) {
        snprintf(err, errlen, "run '%s' in %s: unknown dataset '%s'", run, path, r->c.dataset);
        goto out;
    }
    Model m;
    if (build_model(&m, &r->c, sh.channels, sh.height, sh.width, sh.num_classes, NULL, NULL, e2, sizeof e2)) {
        snprintf(err, errlen, "run '%s' in %s: %s", run, path, e2);
        goto out;
    }
    r->n_params = m.n_params;
    r->n_buffers = m.n_buffers;
    model_free(&m);
    r->params = malloc((r->n_params ? r->n_params : 1) * sizeof(real));
    r->buffers = malloc((r->n_buffers ? r->n_buffers : 1) * sizeof(real));
    if (!r->params || !r->buffers) {
        snprintf(err, errlen, "out of memory reading the checkpoint of run '%s'", run);
        goto out;
    }
    CkptArray a[2] = {{"params", CK_REAL, r->n_params, r->params}, {"buffers", CK_REAL, r->n_buffers, r->buffers}};
    long step = -1;
    int got = results_checkpoint_read(f, run, &step, a, 2, e2, sizeof e2);
    if (got == 0) {
        snprintf(err, errlen, "run '%s' in %s has no complete checkpoint", run, path);
        goto out;
    }
    if (got < 0) {
        snprintf(err, errlen, "reading the checkpoint of run '%s' (a %s %s) from %s: %s", run, r->c.arch,
                 config_enum_name("model.conv", r->c.conv), path, e2[0] ? e2 : "HDF5 error");
        goto out;
    }
    r->step = step;
    snprintf(r->status, sizeof r->status, "%s", ri.status);
    r->experiment = results_root_attr_text(f, "experiment");
    r->experiment_yaml = results_root_attr_text(f, "experiment_yaml");
    if (!r->experiment) {
        snprintf(err, errlen, "%s has no root attribute 'experiment'", path);
        goto out;
    }
    rc = 0;
out:
    run_info_free(&ri);
    results_close(f, 0, e2, sizeof e2);
    if (rc) landscape_run_free(r);
    return rc;
}

int landscape_load_data(const RunConfig *c, Dataset *train, Dataset *test, char *err, size_t errlen) {
    char e2[1024];
    if (data_from_config(c, train, test, e2, sizeof e2)) {
        snprintf(err, errlen, "dataset %s (data.path '%s') is not loadable: %s", c->dataset, c->data_path, e2);
        return -1;
    }
    return 0;
}

void landscape_direction(const Model *m, const real *theta, uint64_t seed, int which, real *d) {
    memset(d, 0, m->n_params * sizeof(real));
    for (int li = 0; li < m->n_layers; li++) {
        const Layer *l = &m->layers[li];
        if (!is_weight_layer(l) || l->w_n == 0) continue;
        Rng r = rng_stream(seed, RNG_LANDSCAPE, (uint64_t)which, (uint64_t)li);
        real *dw = d + l->w_off;
        const real *w = theta + l->w_off;
        for (size_t j = 0; j < l->w_n; j++) dw[j] = (real)rng_normal(&r);
        const int O = l->C; /* output channels (conv) or features (linear) */
        const size_t row = l->w_n / (size_t)O;
        for (int o = 0; o < O; o++) {
            double nd = 0.0, nw = 0.0;
            for (size_t j = 0; j < row; j++) {
                nd += (double)dw[o * row + j] * (double)dw[o * row + j];
                nw += (double)w[o * row + j] * (double)w[o * row + j];
            }
            const double s = nd > 0 ? sqrt(nw) / sqrt(nd) : 0.0;
            for (size_t j = 0; j < row; j++) dw[o * row + j] = (real)((double)dw[o * row + j] * s);
        }
    }
}

size_t landscape_binary_weights(const Model *m, const real *params, double bits, real *bw) {
    size_t total = 0, maxn = 0;
    int maxO = 0;
    for (int li = 0; li < m->n_layers; li++) {
        const Layer *l = &m->layers[li];
        if (!l->kind->binary) continue;
        total += l->w_n;
        if (l->w_n > maxn) maxn = l->w_n;
        if (l->C > maxO) maxO = l->C;
    }
    if (!bw || total == 0) return total;
    real *w1 = malloc(maxn * sizeof *w1), *w2 = malloc(maxn * sizeof *w2), *sig = malloc((size_t)maxO * sizeof *sig),
         *mean = malloc((size_t)maxO * sizeof *mean);
    if (!w1 || !w2 || !sig || !mean) {
        free(w1); free(w2); free(sig); free(mean);
        return (size_t)-1;
    }
    const BinaryConvOptions *opt = &m->bconv;
    const int zplus = opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE;
    size_t off = 0;
    /* the weight path of binary_conv_forward (core/binary_conv.c), in its order */
    for (int li = 0; li < m->n_layers; li++) {
        const Layer *l = &m->layers[li];
        if (!l->kind->binary) continue;
        const int O = l->C;
        const size_t CK = l->w_n / (size_t)O;
        weight_standardize_forward(w1, sig, mean, params + l->w_off, O, CK, opt->weight_center);
        const real *wq_in = w1;
        if (opt->recu_clamp) {
            real q = recu_clamp_q(w1, l->w_n, opt->clamp_tau);
            recu_clamp_forward(w2, w1, l->w_n, q);
            wq_in = w2;
        }
        minmax_uniform_per_channel(bw + off, NULL, NULL, wq_in, O, CK, bits);
        sign_forward(bw + off, bw + off, l->w_n, zplus);
        off += l->w_n;
    }
    free(w1); free(w2); free(sig); free(mean);
    return total;
}

double landscape_eval_bits(const RunConfig *c, long step, long n_train, double bits, char *rule, size_t rulelen) {
    if (bits >= 0) {
        if (rule) snprintf(rule, rulelen, "--bits %g", bits);
        return bits;
    }
    const long total = train_total_iterations(c, n_train);
    PrecSchedule s;
    PrecEval e;
    prec_from_config(c, total, &s, &e);
    double b = prec_eval_bits(&s, &e, step);
    if (rule)
        snprintf(rule, rulelen, "the run's eval rule: precision.eval %s, schedule %s, at checkpoint step %ld of %ld",
                 config_enum_name("precision.eval", c->prec_eval),
                 config_enum_name("precision.schedule", c->prec_schedule), step, total);
    return b;
}

void landscape_table_free(LandscapeTable *t) {
    if (!t) return;
    free(t->alpha);
    free(t->beta);
    free(t->loss);
    free(t->top1);
    free(t->flips);
    t->alpha = t->beta = t->loss = t->top1 = NULL;
    t->flips = NULL;
}

/* axis point i of n over [-R, R]: exactly 0 in the middle of an odd n, symmetric */
static double axis_point(int i, int n, double R) {
    if (n <= 1) return 0.0;
    return R * (double)(2 * i - (n - 1)) / (double)(n - 1);
}

int landscape_compute(const LandscapeRun *r, const Dataset *train, const Dataset *test, const LandscapeOptions *o,
                      LandscapeTable *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    const RunConfig *c = &r->c;
    const Dataset *ds = o->split_train ? train : test;
    const int N = o->grid_n;
    if (N < 1 || N > 10000) {
        snprintf(err, errlen, "--grid %d: need 1 to 10000 points per axis", N);
        return -1;
    }
    if (!(o->range > 0) || !isfinite(o->range)) {
        snprintf(err, errlen, "--range %g: need a positive range", o->range);
        return -1;
    }
    if (ds->n < 1) {
        snprintf(err, errlen, "the %s split of %s is empty", o->split_train ? "training" : "test", ds->name);
        return -1;
    }
    const long subset = o->subset <= 0 || o->subset > ds->n ? ds->n : o->subset;
    const long npts = o->one_d ? N : (long)N * N;
    const int T_all = o->threads > 0 ? o->threads : omp_get_max_threads();
    int T = T_all;
    if (T > npts) T = (int)npts;
    if (T < 1) T = 1;
    t->n_rows = npts;
    t->grid_n = N;
    t->one_d = o->one_d;
    t->threads = T;
    t->subset = subset;
    t->checkpoint_step = r->step;
    t->bits = landscape_eval_bits(c, r->step, train->n, o->bits, t->bits_rule, sizeof t->bits_rule);
    const double bits = t->bits;

    t->alpha = malloc(sizeof(double) * npts);
    t->beta = o->one_d ? NULL : malloc(sizeof(double) * npts);
    t->loss = malloc(sizeof(double) * npts);
    t->top1 = malloc(sizeof(double) * npts);
    t->flips = malloc(sizeof(int64_t) * npts);
    Model *models = calloc((size_t)T, sizeof *models);
    int n_models = 0, rc = -1;
    real *d1 = NULL, *d2 = NULL, *bw0 = NULL, *bwt = NULL;
    if (!t->alpha || (!o->one_d && !t->beta) || !t->loss || !t->top1 || !t->flips || !models) {
        snprintf(err, errlen, "out of memory for a table of %ld points", npts);
        goto out;
    }
    for (long k = 0; k < npts; k++) {
        t->alpha[k] = axis_point(o->one_d ? (int)k : (int)(k / N), N, o->range);
        if (!o->one_d) t->beta[k] = axis_point((int)(k % N), N, o->range);
    }
    for (; n_models < T; n_models++) {
        char e2[512];
        if (landscape_model(&models[n_models], c, ds, r->params, r->buffers, e2, sizeof e2)) {
            snprintf(err, errlen, "run '%s': %s", r->name, e2);
            goto out;
        }
        models[n_models].bits = bits;
        models[n_models].grad_bits = 0;
        models[n_models].step = r->step;
    }
    if (models[0].n_params != r->n_params || models[0].n_buffers != r->n_buffers) {
        snprintf(err, errlen, "run '%s': the model on %s has %zu parameters / %zu buffers, the checkpoint %zu / %zu",
                 r->name, ds->name, models[0].n_params, models[0].n_buffers, r->n_params, r->n_buffers);
        goto out;
    }
    const size_t P = r->n_params;
    d1 = malloc(P * sizeof *d1);
    d2 = malloc(P * sizeof *d2);
    const size_t nbin = landscape_binary_weights(&models[0], r->params, bits, NULL);
    t->n_binary_weights = (long)nbin;
    bw0 = malloc((nbin ? nbin : 1) * sizeof *bw0);
    bwt = malloc((nbin ? nbin : 1) * (size_t)T * sizeof *bwt);
    if (!d1 || !d2 || !bw0 || !bwt || landscape_binary_weights(&models[0], r->params, bits, bw0) != nbin) {
        snprintf(err, errlen, "out of memory for the directions");
        goto out;
    }
    landscape_direction(&models[0], r->params, o->seed, 0, d1);
    landscape_direction(&models[0], r->params, o->seed, 1, d2);

    const double t0 = now_seconds();
    engine_set_threads(T_all);
    Augment train_aug_unused, aug;
    train_augment_from_config(c, &train_aug_unused, &aug);
    /* the origin: theta itself (the grid holds it only for odd N) */
    if (classify_evaluate(&models[0], ds, subset, c->eval_batch_size, &aug, &t->origin_top1, &t->origin_loss, err, errlen))
        goto out;

    const int old_levels = omp_get_max_active_levels();
    omp_set_max_active_levels(1); /* each thread's engine calls run single-threaded */
    int nested_on = 0, failed = 0;
    long done = 0;
    double last_print = now_seconds();
    #pragma omp parallel num_threads(T)
    {
        const int tid = omp_get_thread_num();
        if (omp_get_num_threads() > 1) {
            int inner = 1;
            #pragma omp parallel
            {
                #pragma omp single
                inner = omp_get_num_threads();
            }
            if (inner > 1) {
                #pragma omp atomic write
                nested_on = 1;
            }
        }
        #pragma omp barrier
        Model *m = &models[tid];
        real *bw = bwt + (size_t)tid * (nbin ? nbin : 1);
        const real *th = r->params;
        #pragma omp for schedule(dynamic, 1)
        for (long k = 0; k < npts; k++) {
            int stop;
            #pragma omp atomic read
            stop = failed;
            if (stop || nested_on) continue;
            const double a = t->alpha[k], b = o->one_d ? 0.0 : t->beta[k];
            real *p = m->params;
            for (size_t j = 0; j < P; j++) {
                const double dv = a * (double)d1[j] + b * (double)d2[j];
                p[j] = dv == 0.0 ? th[j] : (real)((double)th[j] + dv);
            }
            char eerr[512];
            if (classify_evaluate(m, ds, subset, c->eval_batch_size, &aug, &t->top1[k], &t->loss[k], eerr, sizeof eerr)) {
                #pragma omp critical(landscape_eval_error)
                {
                    int f;
                    #pragma omp atomic read
                    f = failed;
                    if (!f) {
                        snprintf(err, errlen, "%s", eerr); /* the first failure's message */
                        #pragma omp atomic write
                        failed = 2;
                    }
                }
                continue;
            }
            int64_t flips = 0;
            if (nbin) {
                if (landscape_binary_weights(m, m->params, bits, bw) != nbin) {
                    #pragma omp atomic write
                    failed = 1;
                    continue;
                }
                for (size_t j = 0; j < nbin; j++) flips += bw[j] != bw0[j];
            }
            t->flips[k] = flips;
            long now_done;
            #pragma omp atomic capture
            now_done = ++done;
            if (o->progress) {
                #pragma omp critical(landscape_progress)
                {
                    double now = now_seconds();
                    if (now - last_print >= 5.0 || now_done == npts) {
                        double el = now - t0, rate = now_done / (el > 0 ? el : 1e-9);
                        char eta[32], els[32];
                        format_duration(eta, sizeof eta, (npts - now_done) / rate);
                        format_duration(els, sizeof els, el);
                        fprintf(o->progress,
                                "[landscape %s] %ld/%ld points (%.1f%%) | %.0f img/s | %s elapsed | ETA %s\n",
                                r->name, now_done, npts, 100.0 * now_done / npts, rate * subset, els, eta);
                        fflush(o->progress);
                        last_print = now;
                    }
                }
            }
        }
    }
    omp_set_max_active_levels(old_levels);
    if (nested_on) {
        snprintf(err, errlen, "nested OpenMP parallelism is on (the engine's loops would run inside the grid's "
                 "threads with more threads each); cannot guarantee thread-count-independent results");
        goto out;
    }
    if (failed == 1) snprintf(err, errlen, "out of memory computing the binary weights");
    if (failed) goto out; /* 2: an evaluation failed, err holds its message */
    t->seconds = now_seconds() - t0;
    rc = 0;
out:
    for (int i = 0; i < n_models; i++) model_free(&models[i]);
    free(models);
    free(d1);
    free(d2);
    free(bw0);
    free(bwt);
    if (rc) landscape_table_free(t);
    return rc;
}

int landscape_write(const char *path, const LandscapeRun *r, const LandscapeOptions *o, const LandscapeTable *t,
                    char *err, size_t errlen) {
    char e2[1024] = "";
    ResultsFile *f = results_open(path, r->experiment ? r->experiment : "",
                                  r->experiment_yaml ? r->experiment_yaml : "", t->threads, 0, e2, sizeof e2);
    if (!f) {
        snprintf(err, errlen, "cannot open %s for writing: %s", path, e2);
        return -1;
    }
    RunInfo ri;
    results_run_info(f, r->name, &ri);
    const long now_step = ri.exists ? ri.checkpoint_step : -2;
    char status[sizeof ri.status];
    snprintf(status, sizeof status, "%s", ri.status);
    run_info_free(&ri);
    if (now_step != t->checkpoint_step) {
        snprintf(err, errlen, "run '%s' in %s changed while the landscape was computed (checkpoint step %ld, now %ld): "
                 "nothing written", r->name, path, t->checkpoint_step, now_step);
        results_close(f, 0, e2, sizeof e2);
        return -1;
    }
    /* checked again on the status now: the caller may not have (a test, a library user) */
    if (landscape_check_status(path, r->name, status, now_step, o->allow_unfinished, err, errlen)) {
        results_close(f, 0, e2, sizeof e2);
        return -1;
    }
    const int unfinished = strcmp(status, "complete") != 0;
    const char *group = t->one_d ? "landscape1d" : "landscape";
    ResultsColumn cols[5];
    int nc = 0;
    cols[nc++] = (ResultsColumn){"alpha", RCOL_FLOAT64, "multiples of direction d1", t->alpha};
    if (!t->one_d) cols[nc++] = (ResultsColumn){"beta", RCOL_FLOAT64, "multiples of direction d2", t->beta};
    cols[nc++] = (ResultsColumn){"loss", RCOL_FLOAT64, "mean cross-entropy (nats)", t->loss};
    cols[nc++] = (ResultsColumn){"top1", RCOL_FLOAT64, "percent", t->top1};
    cols[nc++] = (ResultsColumn){"flips", RCOL_INT64, "binary weights differing from those at the origin", t->flips};
    char split[256];
    snprintf(split, sizeof split, "%s, first %ld images, eval mode, no augmentation",
             o->split_train ? "train" : "test", t->subset);
    ResultsAttr attrs[] = {
        {"seed", (double)o->seed, NULL},
        {"bits", t->bits, NULL},
        {"bits_rule", 0, t->bits_rule},
        {"subset", (double)t->subset, NULL},
        {"split", 0, split},
        {"grid_n", (double)t->grid_n, NULL},
        {"range", o->range, NULL},
        {"checkpoint_step", (double)t->checkpoint_step, NULL},
        {"run_status", 0, status},
        {"unfinished", (double)unfinished, NULL},
        {"n_binary_weights", (double)t->n_binary_weights, NULL},
        {"origin_loss", t->origin_loss, NULL},
        {"origin_top1", t->origin_top1, NULL},
        {"directions", 0, LANDSCAPE_DIRECTIONS},
    };
    if (results_run_table(f, r->name, group, t->n_rows, cols, nc, attrs, (int)(sizeof attrs / sizeof *attrs))) {
        snprintf(err, errlen, "writing /runs/%s/%s into %s failed: %s", r->name, group, path,
                 results_error(f)[0] ? results_error(f) : "see above");
        results_close(f, 0, e2, sizeof e2);
        return -1;
    }
    if (results_close(f, 1, e2, sizeof e2)) {
        snprintf(err, errlen, "committing %s failed: %s", path, e2);
        return -1;
    }
    return 0;
}
