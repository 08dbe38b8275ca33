/* Loss landscape core (landscape.h). */
#include "landscape.h"

#include <errno.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blas.h"
#include "build_rev.h"
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
                       const real *buffers, double bits, char *err, size_t errlen) {
    if (model_from_config(m, c, C, H, W, classes, err, errlen)) return -1;
    /* as train_options_from_config decides it for a run whose forwards are all
     * at 1..8 bits: the binary convs quantize activations straight to 8-bit
     * codes (a vectorised quantizer) and pack those; the same outputs bit for
     * bit as quantizing to reals (tests/test_binary_conv.c, codes vs real),
     * about 1/4 of an evaluation's time less. Set before model_alloc: it
     * sizes the saved space. */
    m->bconv.save_act_codes = bits >= 1 && bits <= 8;
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
                    double bits, char *err, size_t errlen) {
    return build_model(m, c, ds->channels, ds->height, ds->width, ds->num_classes, params, buffers, bits, err,
                       errlen);
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
    if (build_model(&m, &r->c, sh.channels, sh.height, sh.width, sh.num_classes, NULL, NULL, -1, e2, sizeof e2)) {
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

const char *landscape_split_name(int split) {
    return split == LANDSCAPE_TRAIN ? "train" : split == LANDSCAPE_VAL ? "val" : "test";
}

int landscape_load_data(const RunConfig *c, Dataset *train, Dataset *val, Dataset *test, char *err, size_t errlen) {
    char e2[1024];
    if (data_from_config_split(c, train, val, test, e2, sizeof e2)) {
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

/* The evaluation images, converted once. Every grid point evaluates the same
 * batches of the same images, so dataset_batch (reading, conversion to real,
 * data.normalize) runs once for the whole grid, not once per point as
 * classify_evaluate() would; the threads read the one copy. */
typedef struct {
    real *x;       /* [n, sample]; NULL: not cached, read per point from ds */
    int32_t *y;    /* [n] */
    long n;
    int batch, K;
    size_t sample;
    const Dataset *ds;
    const Augment *aug;
} EvalSet;

/* larger evaluation sets (many big images) are read per point instead */
#define EVALSET_MAX_BYTES ((size_t)1 << 30)

static void evalset_free(EvalSet *e) {
    free(e->x);
    free(e->y);
    memset(e, 0, sizeof *e);
}

/* the batches of task_evaluate (tasks/task.c): [start, start + batch) with the
 * batch capped at the model's rows, read in eval mode (train 0, seed 0, epoch 0) */
static int evalset_build(EvalSet *e, const Dataset *ds, long n, int batch, int max_batch, const Augment *aug,
                         char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    if (batch > max_batch) batch = max_batch;
    if (batch < 1) batch = 1;
    e->n = n;
    e->batch = batch;
    e->K = ds->num_classes;
    e->sample = (size_t)ds->channels * ds->height * ds->width;
    e->ds = ds;
    e->aug = aug;
    if ((double)n * (double)e->sample * sizeof(real) > (double)EVALSET_MAX_BYTES) return 0;
    e->x = malloc((size_t)n * e->sample * sizeof *e->x);
    e->y = malloc((size_t)n * sizeof *e->y);
    int32_t *idx = malloc((size_t)batch * sizeof *idx);
    if (!e->x || !e->y || !idx) {
        snprintf(err, errlen, "out of memory for %ld evaluation images", n);
        free(idx);
        evalset_free(e);
        return -1;
    }
    for (long start = 0; start < n; start += batch) {
        const int B = (int)(n - start < batch ? n - start : batch);
        for (int b = 0; b < B; b++) idx[b] = (int32_t)(start + b);
        if (dataset_batch(ds, idx, B, e->x + (size_t)start * e->sample, e->y + start, aug, 0, 0, 0, err, errlen)) {
            free(idx);
            evalset_free(e);
            return -1;
        }
        const int bad = softmax_ce_bad_label(e->y + start, B, e->K);
        if (bad >= 0) {
            snprintf(err, errlen, "label %d of sample %ld is outside [0, %d)", (int)e->y[start + bad], start + bad, e->K);
            free(idx);
            evalset_free(e);
            return -1;
        }
    }
    free(idx);
    return 0;
}

/* classify_evaluate() on the cached batches, with its arithmetic: per batch the
 * mean softmax cross-entropy times the batch size added in double, the correct
 * top-1 counted; loss = sum / n, top-1 = 100 * correct / n. The same numbers
 * bit for bit (tests/test_landscape.c checks the origin against it). */
static int evalset_evaluate(Model *m, const EvalSet *e, real *probs, double *top1, double *loss, char *err,
                            size_t errlen) {
    if (!e->x) /* not cached (too large): read per point, the same numbers */
        return classify_evaluate(m, e->ds, e->n, e->batch, e->aug, top1, loss, err, errlen);
    double loss_sum = 0.0, correct = 0.0;
    for (long start = 0; start < e->n; start += e->batch) {
        const int B = (int)(e->n - start < e->batch ? e->n - start : e->batch);
        const int32_t *y = e->y + start;
        if (model_run(m, e->x + (size_t)start * e->sample, B, 0)) {
            snprintf(err, errlen, "%s", m->run_err);
            return -1;
        }
        const double l = softmax_ce_forward(probs, model_output(m, 0), y, B, e->K);
        loss_sum += l * B;
        correct += classify_correct(m, y, B);
    }
    *top1 = 100.0 * correct / (double)e->n;
    *loss = loss_sum / (double)e->n;
    return 0;
}

/* axis point i of n over [-R, R]: exactly 0 in the middle of an odd n, symmetric */
static double axis_point(int i, int n, double R) {
    if (n <= 1) return 0.0;
    return R * (double)(2 * i - (n - 1)) / (double)(n - 1);
}

int landscape_compute(const LandscapeRun *r, const Dataset *train, const Dataset *val, const Dataset *test,
                      const LandscapeOptions *o, LandscapeTable *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    const RunConfig *c = &r->c;
    const Dataset *ds = o->split == LANDSCAPE_TRAIN ? train : o->split == LANDSCAPE_VAL ? val : test;
    if (!ds || ds->n < 1) {
        snprintf(err, errlen, "the %s split of run '%s' is empty%s", landscape_split_name(o->split), r->name,
                 o->split == LANDSCAPE_VAL ? " (the run holds out no validation images: data.val_split 0)" : "");
        return -1;
    }
    const int N = o->grid_n;
    if (N < 1 || N > 10000) {
        snprintf(err, errlen, "--grid %d: need 1 to 10000 points per axis", N);
        return -1;
    }
    if (!(o->range > 0) || !isfinite(o->range)) {
        snprintf(err, errlen, "--range %g: need a positive range", o->range);
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
    real *d1 = NULL, *d2 = NULL, *bw0 = NULL, *bwt = NULL, *probs = NULL;
    EvalSet es;
    memset(&es, 0, sizeof es);
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
        if (landscape_model(&models[n_models], c, ds, r->params, r->buffers, bits, e2, sizeof e2)) {
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
    if (evalset_build(&es, ds, subset, c->eval_batch_size, models[0].max_batch, &aug, err, errlen)) goto out;
    probs = malloc((size_t)T * es.batch * es.K * sizeof *probs);
    if (!probs) {
        snprintf(err, errlen, "out of memory for the evaluation batches");
        goto out;
    }
    /* the origin: theta itself (the grid holds it only for odd N) */
    if (evalset_evaluate(&models[0], &es, probs, &t->origin_top1, &t->origin_loss, err, errlen)) goto out;

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
            if (evalset_evaluate(m, &es, probs + (size_t)tid * es.batch * es.K, &t->top1[k], &t->loss[k], eerr,
                                 sizeof eerr)) {
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
    free(probs);
    evalset_free(&es);
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
             landscape_split_name(o->split), t->subset);
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

/* ---- surface files of tomgoldstein/loss-landscape (landscape.h) ---- */

/* a string attribute (variable-length, as results_h5 writes them) into out; "" when absent */
static void h5_text_attr(hid_t obj, const char *name, char *out, size_t cap) {
    out[0] = 0;
    if (H5Aexists(obj, name) <= 0) return;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), ft = a >= 0 ? H5Aget_type(a) : -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            char *v = NULL;
            if (H5Aread(a, mt, &v) >= 0 && v) snprintf(out, cap, "%s", v);
            if (v) H5free_memory(v);
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(ft);
            char *v = calloc(n + 1, 1);
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, n);
            if (v && H5Aread(a, mt, v) >= 0) snprintf(out, cap, "%s", v);
            free(v);
            H5Tclose(mt);
        }
    }
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
}

/* a numeric attribute as a double, NaN when absent */
static double h5_num_attr(hid_t obj, const char *name) {
    double v = NAN;
    if (H5Aexists(obj, name) <= 0) return v;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
    if (a >= 0) H5Aclose(a);
    return v;
}

/* column `name` of a table group: nrows values converted to double (int64 flips too); -1 if absent or of another length */
static int h5_column(hid_t g, const char *name, long nrows, double *out) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    int rc = -1;
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1) {
        H5Sget_simple_extent_dims(sp, &n, NULL);
        if ((long)n == nrows && (nrows == 0 || H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0))
            rc = 0;
    }
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

static long h5_rows(hid_t g, const char *name) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    long rows = -1;
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &n, NULL) == 1) rows = (long)n;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return rows;
}

/* the index of v on the axis of n points over [-R, R], -1 when v is not one of its points
 * (bitwise: the table's coordinates come from the same axis_point) */
static long axis_index(double v, int n, double R) {
    if (!isfinite(v)) return -1;
    double t = n <= 1 ? 0.0 : (v / R * (double)(n - 1) + (double)(n - 1)) / 2.0;
    long i = lround(t);
    if (i < 0 || i >= n) return -1;
    return axis_point((int)i, n, R) == v ? i : -1;
}

static int write_f64(hid_t f, const char *name, int rank, const hsize_t *dims, const double *v) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = sp >= 0 ? H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 ? 0 : -1;
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static int write_text_attr(hid_t obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    int rc = -1;
    if (t >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0) {
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = sp >= 0 ? H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
        if (a >= 0 && H5Awrite(a, t, &v) >= 0) rc = 0;
        if (a >= 0) H5Aclose(a);
        if (sp >= 0) H5Sclose(sp);
    }
    if (t >= 0) H5Tclose(t);
    return rc;
}

static int write_num_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int rc = a >= 0 && H5Awrite(a, mtype, v) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

/* OUT must not be the results file, a directory, or in a missing / unwritable directory */
static int check_out_path(const char *results_path, const char *out, char *err, size_t errlen) {
    struct stat so, sr;
    if (!out[0]) {
        snprintf(err, errlen, "--export-surface needs a file name");
        return -1;
    }
    if (stat(out, &so) == 0) {
        if (S_ISDIR(so.st_mode)) {
            snprintf(err, errlen, "surface file %s is a directory", out);
            return -1;
        }
        if (stat(results_path, &sr) == 0 && so.st_dev == sr.st_dev && so.st_ino == sr.st_ino) {
            snprintf(err, errlen, "surface file %s is the results file itself: choose another name", out);
            return -1;
        }
    }
    char *copy = strdup(out);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *dir = dirname(copy);
    struct stat sd;
    int rc = 0;
    if (stat(dir, &sd) != 0 || !S_ISDIR(sd.st_mode)) {
        snprintf(err, errlen, "cannot write surface file %s: directory %s does not exist", out, dir);
        rc = -1;
    } else if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot write surface file %s: directory %s is not writable (%s)", out, dir,
                 strerror(errno));
        rc = -1;
    }
    free(copy);
    return rc;
}

typedef struct {
    double *x, *y, *loss, *acc, *flips;
    double range, seed, subset, bits, step, unfinished, n_binary, origin_loss, origin_top1;
    long N, rows;
    char split_attr[256], bits_rule[256], run_status[16], directions[128];
} SurfaceData;

static void surface_free(SurfaceData *s) {
    free(s->x); free(s->y); free(s->loss); free(s->acc); free(s->flips);
}

/* the table /runs/RUN/<group> of an open file onto the grid (see landscape.h) */
static int surface_read(hid_t file, const char *results_path, const char *run, int one_d, long run_step,
                        SurfaceData *s, char *err, size_t errlen) {
    const char *group = one_d ? "landscape1d" : "landscape", *other = one_d ? "landscape" : "landscape1d";
    char gpath[CFG_RUN_NAME + 32];
    snprintf(gpath, sizeof gpath, "/runs/%s/%s", run, group);
    hid_t rg = H5Gopen2(file, "runs", H5P_DEFAULT);
    hid_t run_g = rg >= 0 ? H5Gopen2(rg, run, H5P_DEFAULT) : -1;
    if (rg >= 0) H5Gclose(rg);
    if (run_g < 0) {
        snprintf(err, errlen, "%s has no run '%s'", results_path, run);
        return -1;
    }
    if (H5Lexists(run_g, group, H5P_DEFAULT) <= 0) {
        const int has_other = H5Lexists(run_g, other, H5P_DEFAULT) > 0;
        snprintf(err, errlen, "run '%s' in %s has no %s landscape (%s): compute it first with cbnn_landscape%s %s %s%s",
                 run, results_path, one_d ? "1-D" : "2-D", gpath, one_d ? " --1d" : "", results_path, run,
                 has_other ? (one_d ? " (it has a 2-D one: drop --1d)" : " (it has a 1-D one: add --1d)") : "");
        H5Gclose(run_g);
        return -1;
    }
    hid_t g = H5Gopen2(run_g, group, H5P_DEFAULT);
    H5Gclose(run_g);
    if (g < 0) {
        snprintf(err, errlen, "cannot open %s in %s", gpath, results_path);
        return -1;
    }
    int rc = -1;
    const double grid_n = h5_num_attr(g, "grid_n");
    s->range = h5_num_attr(g, "range");
    s->seed = h5_num_attr(g, "seed");
    s->subset = h5_num_attr(g, "subset");
    s->bits = h5_num_attr(g, "bits");
    s->step = h5_num_attr(g, "checkpoint_step");
    s->unfinished = h5_num_attr(g, "unfinished");
    s->n_binary = h5_num_attr(g, "n_binary_weights");
    s->origin_loss = h5_num_attr(g, "origin_loss");
    s->origin_top1 = h5_num_attr(g, "origin_top1");
    h5_text_attr(g, "split", s->split_attr, sizeof s->split_attr);
    h5_text_attr(g, "bits_rule", s->bits_rule, sizeof s->bits_rule);
    h5_text_attr(g, "run_status", s->run_status, sizeof s->run_status);
    h5_text_attr(g, "directions", s->directions, sizeof s->directions);
    if (!(grid_n >= 1 && grid_n <= 10000 && grid_n == floor(grid_n)) || !(s->range > 0) || !isfinite(s->range)) {
        snprintf(err, errlen, "%s in %s has no valid grid_n / range attributes", gpath, results_path);
        goto out;
    }
    if (run_step < 0) {
        snprintf(err, errlen, "run '%s' in %s has no complete checkpoint now: its landscape (%s, of step %.0f) is of "
                 "weights the file no longer holds", run, results_path, gpath, s->step);
        goto out;
    }
    if (!(s->step == (double)run_step)) {
        snprintf(err, errlen, "%s in %s is stale: it is of the checkpoint at step %.0f, the run's checkpoint is now "
                 "at step %ld (rerun cbnn_landscape on the new weights)", gpath, results_path, s->step, run_step);
        goto out;
    }
    const long N = (long)grid_n, nx = N, ny = one_d ? 1 : N, npts = nx * ny;
    s->N = N;
    s->rows = h5_rows(g, "alpha");
    if (s->rows < 0 || s->rows > npts) {
        snprintf(err, errlen, "%s in %s has %ld rows, not at most grid_n%s = %ld", gpath, results_path, s->rows,
                 one_d ? "" : "^2", npts);
        goto out;
    }
    const long R = s->rows > 0 ? s->rows : 1;
    double *alpha = malloc(R * sizeof *alpha), *beta = malloc(R * sizeof *beta), *loss = malloc(R * sizeof *loss),
           *top1 = malloc(R * sizeof *top1), *flips = malloc(R * sizeof *flips);
    unsigned char *seen = calloc((size_t)npts, 1);
    s->x = malloc(nx * sizeof *s->x);
    s->y = malloc(ny * sizeof *s->y);
    s->loss = malloc(npts * sizeof *s->loss);
    s->acc = malloc(npts * sizeof *s->acc);
    s->flips = malloc(npts * sizeof *s->flips);
    if (!alpha || !beta || !loss || !top1 || !flips || !seen || !s->x || !s->y || !s->loss || !s->acc || !s->flips) {
        snprintf(err, errlen, "out of memory for a grid of %ld points", npts);
        goto cols;
    }
    const char *missing = h5_column(g, "alpha", s->rows, alpha) ? "alpha"
                          : !one_d && h5_column(g, "beta", s->rows, beta) ? "beta"
                          : h5_column(g, "loss", s->rows, loss) ? "loss"
                          : h5_column(g, "top1", s->rows, top1) ? "top1"
                          : h5_column(g, "flips", s->rows, flips) ? "flips" : NULL;
    if (missing) {
        snprintf(err, errlen, "%s in %s: column %s is missing or not of %ld rows", gpath, results_path, missing, s->rows);
        goto cols;
    }
    for (long i = 0; i < nx; i++) s->x[i] = axis_point((int)i, (int)N, s->range);
    for (long i = 0; i < ny; i++) s->y[i] = one_d ? 0.0 : axis_point((int)i, (int)N, s->range);
    /* -1: not computed (their scheduler's mark of a point still to do) */
    for (long k = 0; k < npts; k++) s->loss[k] = s->acc[k] = s->flips[k] = -1.0;
    /* place every row by its coordinates, not by its position in the table: the
     * table is alpha-major (row i*N + j = alpha_i, beta_j), the surface x-fastest */
    for (long r = 0; r < s->rows; r++) {
        const long ix = axis_index(alpha[r], (int)N, s->range), iy = one_d ? 0 : axis_index(beta[r], (int)N, s->range);
        if (ix < 0 || iy < 0) {
            snprintf(err, errlen, "%s in %s: row %ld (alpha %.17g%s%.17g) is not on the grid of %ld points over "
                     "[-%g, %g]", gpath, results_path, r, alpha[r], one_d ? "" : ", beta ", one_d ? 0.0 : beta[r], N,
                     s->range, s->range);
            goto cols;
        }
        const long k = iy * nx + ix;
        if (seen[k]++) {
            snprintf(err, errlen, "%s in %s: two rows at alpha %g%s%g", gpath, results_path, alpha[r],
                     one_d ? "" : ", beta ", one_d ? 0.0 : beta[r]);
            goto cols;
        }
        s->loss[k] = loss[r];
        s->acc[k] = top1[r]; /* our top1 is already percent, their acc too */
        s->flips[k] = flips[r];
    }
    rc = 0;
cols:
    free(alpha); free(beta); free(loss); free(top1); free(flips); free(seen);
out:
    H5Gclose(g);
    return rc;
}

static int surface_write(const char *tmp, const char *results_path, const char *run, int one_d,
                         const SurfaceData *s, const LandscapeSurfaceInfo *info, const char *run_git,
                         const char *results_git) {
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    const hsize_t nx = (hsize_t)s->N, ny = one_d ? 1 : (hsize_t)s->N;
    const hsize_t d1[1] = {nx}, dy[1] = {ny}, d2[2] = {ny, nx}; /* (ny, nx): row iy holds y_iy, x fastest */
    const int rank = one_d ? 1 : 2;
    const hsize_t *dims = one_d ? d1 : d2;
    int bad = write_f64(f, "xcoordinates", 1, d1, s->x);
    if (!one_d) bad |= write_f64(f, "ycoordinates", 1, dy, s->y);
    bad |= write_f64(f, info->names[0], rank, dims, s->loss);
    bad |= write_f64(f, info->names[1], rank, dims, s->acc);
    bad |= write_f64(f, "flips", rank, dims, s->flips);
    char layout[512];
    if (one_d)
        snprintf(layout, sizeof layout, "1-D: value i is at xcoordinates[i] (alpha, along direction d1); "
                 "-1 = not computed");
    else
        snprintf(layout, sizeof layout, "2-D arrays of shape (len(ycoordinates), len(xcoordinates)): Z[iy, ix] is "
                 "at (xcoordinates[ix], ycoordinates[iy]), flat index iy*nx + ix (x fastest), as "
                 "X, Y = numpy.meshgrid(xcoordinates, ycoordinates); x = alpha (d1), y = beta (d2); -1 = not computed");
    const char *texts[][2] = {
        {"run", run},
        {"split", info->split},
        {"split_detail", s->split_attr},
        {"results_file", results_path},
        {"results_group", one_d ? "landscape1d" : "landscape"},
        {"git_revision", run_git},
        {"results_git_revision", results_git},
        {"export_git_revision", CBNN_GIT_REV},
        {"loss_name", info->names[0]},
        {"acc_name", info->names[1]},
        {"acc_units", "percent"},
        {"loss_units", "mean cross-entropy (nats)"},
        {"layout", layout},
        {"directions", s->directions},
        {"bits_rule", s->bits_rule},
        {"run_status", s->run_status},
        {"producer", "cbnn_landscape --export-surface (layout of tomgoldstein/loss-landscape surface files)"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) bad |= write_text_attr(f, texts[i][0], texts[i][1]);
    const struct { const char *name; double v; } nums[] = {
        {"range", s->range},         {"bits", s->bits},
        {"checkpoint_step", s->step}, {"unfinished", s->unfinished},
        {"n_binary_weights", s->n_binary}, {"origin_loss", s->origin_loss},
        {"origin_top1", s->origin_top1},
    };
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        bad |= write_num_attr(f, nums[i].name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &nums[i].v);
    const uint64_t seed = (uint64_t)s->seed;
    const int64_t subset = (int64_t)s->subset, grid = (int64_t)s->N, filled = info->filled;
    bad |= write_num_attr(f, "directions_seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed);
    bad |= write_num_attr(f, "subset", H5T_STD_I64LE, H5T_NATIVE_INT64, &subset);
    bad |= write_num_attr(f, "grid_n", H5T_STD_I64LE, H5T_NATIVE_INT64, &grid);
    bad |= write_num_attr(f, "filled", H5T_STD_I64LE, H5T_NATIVE_INT64, &filled);
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) bad = 1;
    if (H5Fclose(f) < 0) bad = 1;
    return bad ? -1 : 0;
}

int landscape_export_surface(const char *results_path, const char *run, int one_d, const char *prefix,
                             const char *out_path, LandscapeSurfaceInfo *info, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    if (check_out_path(results_path, out_path, err, errlen)) return -1;
    if (prefix && (!prefix[0] || strlen(prefix) > 16 || strchr(prefix, '/'))) {
        snprintf(err, errlen, "--surface-prefix '%s': need a short name such as train or test", prefix);
        return -1;
    }
    /* the run and its current checkpoint, through the results API (it knows the schema) */
    char e2[1024] = "";
    ResultsFile *rf = results_open_readonly(results_path, e2, sizeof e2);
    if (!rf) {
        snprintf(err, errlen, "cannot read results file %s: %s", results_path, e2);
        return -1;
    }
    RunInfo ri;
    memset(&ri, 0, sizeof ri);
    if (results_run_info(rf, run, &ri) != 0 || !ri.exists) {
        char names[512];
        run_info_free(&ri);
        results_close(rf, 0, e2, sizeof e2);
        list_runs(results_path, names, sizeof names);
        snprintf(err, errlen, "%s has no run '%s' (its runs: %s)", results_path, run, names[0] ? names : "none");
        return -1;
    }
    char run_git[64], *results_git = results_root_attr_text(rf, "git_revision");
    snprintf(run_git, sizeof run_git, "%s", ri.git_revision);
    const long run_step = ri.checkpoint_step;
    run_info_free(&ri);
    results_close(rf, 0, e2, sizeof e2);

    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages name the file; HDF5's stack would only add noise */
    SurfaceData s;
    memset(&s, 0, sizeof s);
    int rc = -1;
    char *tmp = NULL;
    hid_t file = H5Fopen(results_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        snprintf(err, errlen, "cannot open results file %s", results_path);
        goto out;
    }
    int got = surface_read(file, results_path, run, one_d, run_step, &s, err, errlen);
    H5Fclose(file);
    if (got) goto out;
    /* the names their scripts read: the split's own (train_* / test_*), never a relabelling */
    snprintf(info->split, sizeof info->split, "%.*s", (int)strcspn(s.split_attr, ", "), s.split_attr);
    if (strcmp(info->split, "train") && strcmp(info->split, "test") && strcmp(info->split, "val")) {
        snprintf(err, errlen, "/runs/%s/%s in %s: split attribute '%s' names no split (train, test, val)", run,
                 one_d ? "landscape1d" : "landscape", results_path, s.split_attr);
        goto out;
    }
    const char *p = prefix ? prefix : info->split;
    snprintf(info->names[0], sizeof info->names[0], "%s_loss", p);
    snprintf(info->names[1], sizeof info->names[1], "%s_acc", p);
    info->nx = s.N;
    info->ny = one_d ? 1 : s.N;
    info->filled = s.rows;
    const size_t plen = strlen(out_path);
    tmp = malloc(plen + 5);
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(tmp, out_path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    errno = 0;
    if (surface_write(tmp, results_path, run, one_d, &s, info, run_git, results_git ? results_git : "")) {
        snprintf(err, errlen, "writing surface file %s (as %s) failed%s%s", out_path, tmp, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, out_path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, out_path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    surface_free(&s);
    free(tmp);
    free(results_git);
    return rc;
}
