/* --dry-run (experiments/dry_run.h): the expanded runs, their cost and their
 * estimated time.
 *
 * The time of a run comes from a measured training step, never from a
 * built-in rate: one run on R ranks of M threads (R = 1 and M = this
 * machine's threads without --nodes) takes
 *   I * (t(B/R, M) + t_sync) + evaluation,
 * t(b, T) and the forward time per image read from bench/scaling.json (the
 * cost model of bench/README.md). A run whose architecture and input shape
 * were not measured takes a measured entry of its conv kind scaled by the
 * ratio of MACs per image (labelled so). A results file's complete runs of
 * the same architecture, conv kind and dataset give their own measured rate
 * instead (one-machine estimates only). Detection runs have no entry in the
 * machine file: bench/det_step's paper-shape rate, as bench/RESULTS.md has
 * it. Every estimate prints where its rates came from. */
#include "dry_run.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_options.h"
#include "progress.h"
#include "results_h5.h"
#include "detect_run.h"

/* Detection runs: bench/det_step's paper-shape step (600 x 800, width 64,
 * 256 RoIs), 148.3 GMAC per training image at 0.378 img/s on 2 threads
 * (bench/RESULTS.md, "Detection step", issue 14) = 2.8e10 fp32-equivalent
 * MACs per second per thread. The machine file has no detection entry
 * (bench/run_scaling_bench does not measure one); the line printed with the
 * estimate names this source. */
#define DRY_RUN_DET_MACS_PER_S_PER_THREAD 2.8e10

enum { SRC_LEN = 2048 }; /* one printed rate source */

/* each selected run's state in the results file at path (all "" when the
 * file does not exist); NULL when out of memory */
static RunInfo *load_infos(const ExperimentConfig *e, const int *sel, int nsel, const char *path) {
    char err[1024];
    ResultsFile *rf = NULL;
    struct stat st;
    if (stat(path, &st) == 0) {
        rf = results_open_readonly(path, err, sizeof err);
        if (!rf) printf("(the existing results file is not readable as this build's: %s)\n", err);
    }
    RunInfo *infos = calloc((size_t)(nsel > 0 ? nsel : 1), sizeof *infos);
    for (int k = 0; k < nsel && rf && infos; k++) results_run_info(rf, e->runs[sel[k]].name, &infos[k]);
    if (rf) results_close(rf, 0, err, sizeof err);
    return infos;
}

/* ---- --nodes N --cores M: the cost model of bench/README.md ----
 *
 * A run on R ranks (one per node, M threads each) takes
 *   I * (t(B/R, M) + t_sync) + evaluation,
 *   t_sync = 2(R-1)/R * V/beta + (small syncs per step) * ceil(log2 R) * alpha,
 * with t(b, T), alpha and beta measured by bench/run_scaling_bench into
 * bench/scaling.json; a grid's makespan is about max(longest run, total / groups). */

/* A small JSON reader for the machine file: objects, arrays, numbers,
 * strings (escapes kept as written: the file's keys and values have none that
 * matter), true/false/null. */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct Json {
    int type, n;
    double num;
    char *str, *key;  /* key: the member name when inside an object */
    struct Json *kid; /* n children of an array or object */
} Json;

static void json_free(Json *j) {
    for (int i = 0; i < j->n; i++) json_free(&j->kid[i]);
    free(j->kid);
    free(j->str);
    free(j->key);
}

static void json_ws(const char **p) {
    while (isspace((unsigned char)**p)) (*p)++;
}

static char *json_string(const char **p) {
    const char *s = ++*p; /* after the opening quote */
    while (**p && **p != '"') *p += (**p == '\\' && (*p)[1]) ? 2 : 1;
    if (**p != '"') return NULL;
    char *out = malloc((size_t)(*p - s) + 1);
    if (out) memcpy(out, s, (size_t)(*p - s)), out[*p - s] = 0;
    (*p)++;
    return out;
}

static int json_value(const char **p, Json *j, int depth);

/* the members of an object or the items of an array, up to `close` */
static int json_items(const char **p, Json *j, char close, int depth) {
    (*p)++;
    json_ws(p);
    if (**p == close) return (*p)++, 0;
    for (;;) {
        Json *k = realloc(j->kid, (size_t)(j->n + 1) * sizeof *k);
        if (!k) return -1;
        j->kid = k;
        Json *it = &j->kid[j->n];
        memset(it, 0, sizeof *it);
        j->n++;
        json_ws(p);
        if (close == '}') {
            if (**p != '"' || !(it->key = json_string(p))) return -1;
            json_ws(p);
            if (*(*p)++ != ':') return -1;
        }
        if (json_value(p, it, depth + 1)) return -1;
        json_ws(p);
        if (**p == ',') (*p)++;
        else if (**p == close) return (*p)++, 0;
        else return -1;
    }
}

static int json_value(const char **p, Json *j, int depth) {
    json_ws(p);
    if (depth > 32) return -1;
    if (**p == '{') return j->type = J_OBJ, json_items(p, j, '}', depth);
    if (**p == '[') return j->type = J_ARR, json_items(p, j, ']', depth);
    if (**p == '"') return j->type = J_STR, (j->str = json_string(p)) ? 0 : -1;
    static const char *const lit[] = {"null", "true", "false"};
    for (int i = 0; i < 3; i++)
        if (!strncmp(*p, lit[i], strlen(lit[i]))) {
            j->type = i ? J_BOOL : J_NULL;
            j->num = i == 1;
            *p += strlen(lit[i]);
            return 0;
        }
    char *end;
    j->type = J_NUM;
    j->num = strtod(*p, &end);
    if (end == *p) return -1;
    *p = end;
    return 0;
}

static const Json *json_get(const Json *o, const char *key) {
    for (int i = 0; o && o->type == J_OBJ && i < o->n; i++)
        if (!strcmp(o->kid[i].key, key)) return &o->kid[i];
    return NULL;
}

static double json_num(const Json *o, const char *key) {
    const Json *v = json_get(o, key);
    return v && v->type == J_NUM ? v->num : NAN;
}

/* one measured point of t(b, T) */
typedef struct {
    double b, T, step, fwd; /* fwd: loader + forward of the same step (NAN: not measured) */
} StepPoint;

typedef struct {
    const char *name; /* "arch/kind" */
    const StepPoint *pt;
    int n;
} StepTable;

typedef struct {
    Json root;
    StepTable tab[32];
    StepPoint pts[1024];
    int n_tab, n_pts;
    double alpha, beta; /* s per message, bytes/s; NAN when not measured */
    double max_threads; /* the most threads measured */
    char path[700];
} Machine;

/* the machine file: cl->machine, else bench/scaling.json under
 * $CBNN_SOURCE_ROOT, the directory above the executable (build-x/cyclebnn), or here */
static void machine_path(const DryRunCluster *cl, char *buf, size_t len) {
    const char *root = getenv("CBNN_SOURCE_ROOT");
    char self[600];
    ssize_t l;
    if (cl->machine) snprintf(buf, len, "%s", cl->machine);
    else if (root && *root) snprintf(buf, len, "%s/bench/scaling.json", root);
    else if ((l = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
        self[l] = 0;
        char *slash = strrchr(self, '/');
        if (slash) *slash = 0;
        snprintf(buf, len, "%s/../bench/scaling.json", self);
        char *real = realpath(buf, NULL); /* named without the build directory's ".." */
        if (real && strlen(real) < len) snprintf(buf, len, "%s", real);
        else if (!real) snprintf(buf, len, "bench/scaling.json");
        free(real);
    } else snprintf(buf, len, "bench/scaling.json");
}

static int machine_tables(Machine *mc, const Json *steps, char *err, size_t errlen) {
    for (int i = 0; steps && i < steps->n && mc->n_tab < 32; i++) {
        const Json *a = &steps->kid[i];
        StepTable *t = &mc->tab[mc->n_tab++];
        t->name = a->key;
        t->pt = mc->pts + mc->n_pts;
        for (int k = 0; a->type == J_ARR && k < a->n && mc->n_pts < 1024; k++) {
            StepPoint p = {json_num(&a->kid[k], "batch"), json_num(&a->kid[k], "threads"),
                           json_num(&a->kid[k], "step_s"), json_num(&a->kid[k], "forward_s")};
            if (!(p.b >= 1 && p.T >= 1 && p.step > 0)) {
                snprintf(err, errlen, "%s: steps.%s[%d] needs batch >= 1, threads >= 1, step_s > 0", mc->path,
                         a->key, k);
                return -1;
            }
            if (p.T > mc->max_threads) mc->max_threads = p.T;
            mc->pts[mc->n_pts++] = p;
            t->n++;
        }
    }
    if (mc->n_tab == 0) snprintf(err, errlen, "%s has no measured step times (\"steps\")", mc->path);
    return mc->n_tab ? 0 : -1;
}

static int machine_load(Machine *mc, const DryRunCluster *cl, char *err, size_t errlen) {
    memset(mc, 0, sizeof *mc);
    machine_path(cl, mc->path, sizeof mc->path);
    FILE *f = fopen(mc->path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read the machine file %s (bench/run_scaling_bench writes it; --machine FILE)",
                 mc->path);
        return -1;
    }
    char *text = NULL;
    size_t n = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *t = n + got + 1 > cap ? realloc(text, cap = 2 * (n + got + 1)) : text;
        if (!t) break;
        text = t;
        memcpy(text + n, chunk, got);
        n += got;
    }
    fclose(f);
    if (!text) return snprintf(err, errlen, "%s is empty", mc->path), -1;
    text[n] = 0;
    const char *p = text;
    const int bad = json_value(&p, &mc->root, 0) || mc->root.type != J_OBJ;
    free(text);
    if (bad) return snprintf(err, errlen, "%s is not a JSON object", mc->path), -1;
    mc->alpha = json_num(&mc->root, "alpha_s");
    mc->beta = json_num(&mc->root, "beta_bytes_per_s");
    return machine_tables(mc, json_get(&mc->root, "steps"), err, errlen);
}

/* t(b) at exactly T threads: piecewise linear in b between measured batches,
 * linear from the two nearest beyond them (proportional to b with one point,
 * or when the line would reach zero); NAN when T was not measured */
static double interp_b(const StepTable *t, double T, double b, int fwd) {
    double lo_b = 0, lo = NAN, hi_b = 1e300, hi = NAN, b1 = 1e300, v1 = NAN, b2 = 1e300, v2 = NAN;
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        const StepPoint *p = &t->pt[i];
        const double v = fwd ? p->fwd : p->step;
        if (p->T != T || !(v > 0)) continue;
        n++;
        if (p->b <= b && p->b >= lo_b) lo_b = p->b, lo = v;
        if (p->b >= b && p->b <= hi_b) hi_b = p->b, hi = v;
        /* the two measured batches nearest to b (for extrapolation) */
        if (fabs(p->b - b) < fabs(b1 - b)) b2 = b1, v2 = v1, b1 = p->b, v1 = v;
        else if (fabs(p->b - b) < fabs(b2 - b)) b2 = p->b, v2 = v;
    }
    if (n == 0) return NAN;
    if (!isnan(lo) && !isnan(hi)) return hi_b == lo_b ? lo : lo + (hi - lo) * (b - lo_b) / (hi_b - lo_b);
    if (n == 1 || b2 == b1) return v1 * b / b1;
    const double v = v1 + (v2 - v1) * (b - b1) / (b2 - b1);
    return v > 0 ? v : v1 * b / b1;
}

/* t(b, M): through the measured thread counts nearest M, t(T) = A + B/T
 * (Amdahl's law, fitted per batch to two measured T); beyond the measured
 * threads that is an extrapolation, flagged in *extrap */
static double t_step(const StepTable *t, double b, double M, int fwd, int *extrap) {
    double Ts[64];
    int nT = 0;
    for (int i = 0; i < t->n; i++) {
        int seen = 0;
        for (int k = 0; k < nT; k++) seen |= Ts[k] == t->pt[i].T;
        if (!seen && nT < 64) Ts[nT++] = t->pt[i].T;
    }
    double lo = 0, hi = 1e300; /* the measured T just below / above M, else the two extremes */
    for (int k = 0; k < nT; k++) {
        if (Ts[k] == M) return interp_b(t, M, b, fwd);
        if (Ts[k] < M && Ts[k] > lo) lo = Ts[k];
        if (Ts[k] > M && Ts[k] < hi) hi = Ts[k];
    }
    double Tmin = 1e300, Tmax = 0;
    for (int k = 0; k < nT; k++) Tmin = Ts[k] < Tmin ? Ts[k] : Tmin, Tmax = Ts[k] > Tmax ? Ts[k] : Tmax;
    if (hi == 1e300) hi = Tmax, lo = Tmin, *extrap |= M > Tmax; /* beyond: the widest measured span */
    if (lo == 0) lo = Tmin, hi = Tmax;
    const double tl = interp_b(t, lo, b, fwd), th = interp_b(t, hi, b, fwd);
    if (lo == hi || isnan(th)) return isnan(th) ? tl : th;
    double B = (tl - th) / (1.0 / lo - 1.0 / hi), A = th - B / hi;
    if (B < 0) B = 0, A = th;          /* no speed-up measured: none assumed */
    if (A < 0) A = 0, B = th * hi;     /* better than linear measured: linear assumed */
    return A + B / M;
}

/* conv kind of a run's table: the three the benchmark measures */
static const char *run_kind(const RunConfig *c) {
    if (conv_kind_from_config(c) == CONV_FP32) return "fp32";
    const int full = c->prec_schedule == PREC_FULL || c->bits.max > 8 || c->grad_bits.max > 8;
    return full ? "full" : "cyclebnn";
}

/* the input a run trains on: the dataset's published shape, ImageNet at
 * data.image_size (dataset_nominal has 224) */
static int run_shape(const RunConfig *c, DatasetShape *ds, long *n_train) {
    if (data_shape_from_config(c, ds, n_train)) return -1;
    if (!strcmp(c->dataset, "imagenet") && c->image_size > 0) ds->height = ds->width = c->image_size;
    return 0;
}

/* The input a machine-file entry was measured at (bench/run_scaling_bench:
 * the CIFAR-10 ResNet-18 on 32-px CIFAR-10 images, the ImageNet one on
 * 224-px crops): the dataset its architecture's name begins with. */
static int entry_shape(const char *arch, DatasetShape *ds) {
    return dataset_nominal(!strncmp(arch, "imagenet_", 9) ? "imagenet" : "cifar10", ds);
}

/* training (forward + error + weight-gradient) and forward MACs per image
 * of config c with architecture arch at input ds, by the loop's accounting */
static int macs_per_image(const RunConfig *c, const char *arch, const DatasetShape *ds, double *train, double *fwd,
                          char *err, size_t errlen) {
    RunConfig one = *c;
    TrainEstimate est;
    snprintf(one.arch, sizeof one.arch, "%s", arch);
    one.iterations = 1; /* the count is per image: one step, divided by its batch */
    if (train_estimate(&one, ds->channels, ds->height, ds->width, ds->num_classes, one.batch_size, &est, err,
                       errlen))
        return -1;
    *train = est.fp32_macs / (double)one.batch_size;
    *fwd = (double)est.fwd_macs;
    return 0;
}

/* Where a run's step and forward times come from: a machine-file entry,
 * scaled by the MACs ratio when the entry is not the run's architecture at
 * its input (scale 1 when it is). */
typedef struct {
    const StepTable *t;
    double scale_step, scale_fwd;
    char what[SRC_LEN]; /* the printed source */
} StepSource;

static int step_source(const Machine *mc, const RunConfig *c, const DatasetShape *ds, StepSource *src, char *err,
                       size_t errlen) {
    const char *kind = run_kind(c);
    const int imagenet = !strcmp(c->dataset, "imagenet");
    const StepTable *best = NULL;
    int best_score = -1;
    DatasetShape es;
    /* the run's own arch/kind at its input, else one of its kind: its own
     * architecture at another input, then one of its dataset's family */
    for (int i = 0; i < mc->n_tab; i++) {
        const char *slash = strrchr(mc->tab[i].name, '/');
        if (!slash || strcmp(slash + 1, kind)) continue;
        const size_t la = (size_t)(slash - mc->tab[i].name);
        char arch[CFG_STR];
        snprintf(arch, sizeof arch, "%.*s", (int)la, mc->tab[i].name);
        if (entry_shape(arch, &es)) continue;
        const int same_arch = !strcmp(arch, c->arch);
        const int same_in = es.channels == ds->channels && es.height == ds->height && es.width == ds->width &&
                            es.num_classes == ds->num_classes;
        const int score = 4 * (same_arch && same_in) + 2 * same_arch + ((!strncmp(arch, "imagenet_", 9)) == imagenet);
        if (score > best_score) best_score = score, best = &mc->tab[i];
    }
    if (!best) return snprintf(err, errlen, "%s has no measured step of conv kind %s", mc->path, kind), -1;
    src->t = best;
    src->scale_step = src->scale_fwd = 1;
    if (best_score >= 4) {
        snprintf(src->what, sizeof src->what, "measured: %s, steps[\"%s\"]", mc->path, best->name);
        return 0;
    }
    char arch[CFG_STR];
    snprintf(arch, sizeof arch, "%.*s", (int)(strrchr(best->name, '/') - best->name), best->name);
    double run_tr, run_fw, cal_tr, cal_fw;
    if (entry_shape(arch, &es) || macs_per_image(c, c->arch, ds, &run_tr, &run_fw, err, errlen) ||
        macs_per_image(c, arch, &es, &cal_tr, &cal_fw, err, errlen))
        return -1;
    if (!(cal_tr > 0 && cal_fw > 0)) return snprintf(err, errlen, "no MACs for %s", best->name), -1;
    src->scale_step = run_tr / cal_tr;
    src->scale_fwd = run_fw / cal_fw;
    snprintf(src->what, sizeof src->what,
             "MACs-based (no measured step for %s/%s at %dx%dx%d): %s, steps[\"%s\"] (%dx%dx%d) scaled by the "
             "training MACs per image %.3e / %.3e = %.4f (evaluation: forward MACs %.3e / %.3e)%s",
             c->arch, kind, ds->channels, ds->height, ds->width, mc->path, best->name, es.channels, es.height,
             es.width, run_tr, cal_tr, src->scale_step, run_fw, cal_fw,
             src->scale_step < 1 ? "; a smaller network runs at fewer MACs/s (per-layer overheads do not shrink "
                                   "with its MACs): likely an underestimate"
                                 : "");
    return 0;
}

/* V (parameters) and the small synchronisations per step of a run's model:
 * BN statistics (2 forward, 1 backward per BN layer), the quantizer ranges of
 * every binary conv (forward and backward), the loss */
static int run_sync_counts(const RunConfig *c, const DatasetShape *ds, double *params, double *small, char *err,
                           size_t errlen) {
    Model m;
    if (model_build(&m, c->arch, conv_kind_from_config(c), ds->channels, ds->height, ds->width, ds->num_classes,
                    err, errlen))
        return -1;
    int n_bn = 0, n_bconv = 0;
    size_t np = 0; /* the parameters the gradient tree carries (the arena adds alignment padding) */
    for (int i = 0; i < m.n_layers; i++) {
        np += m.layers[i].w_n + m.layers[i].b_n;
        n_bn += !strcmp(m.layers[i].kind->name, "bn");
        n_bconv += !strcmp(m.layers[i].kind->name, "binary_conv");
    }
    *params = (double)np;
    *small = 3.0 * n_bn + 2.0 * n_bconv + 1;
    model_free(&m);
    return 0;
}

/* forward time per image at batch b on M threads: the entry's own loader +
 * forward time, or (when it has none, as the ImageNet entry) its step time
 * times the forward share of an entry of the same kind that has it */
static double fwd_per_image(const Machine *mc, const StepTable *t, double b, double M, int *extrap,
                            const char **borrowed) {
    double f = t_step(t, b, M, 1, extrap);
    if (f > 0) return f / b;
    const char *kind = strrchr(t->name, '/');
    for (int i = 0; kind && i < mc->n_tab; i++) {
        const char *slash = strrchr(mc->tab[i].name, '/');
        if (!slash || strcmp(slash, kind)) continue;
        const double fw = t_step(&mc->tab[i], b, M, 1, extrap), st = t_step(&mc->tab[i], b, M, 0, extrap);
        if (fw > 0 && st > 0) {
            *borrowed = mc->tab[i].name;
            return fw / st * t_step(t, b, M, 0, extrap) / b;
        }
    }
    return NAN;
}

/* What a run evaluates (results/README.md, "Validation, selection and when
 * the test set is evaluated"): every eval_interval (0: once per epoch) and at
 * the end on the validation split (on test with val_split 0); then the test
 * set at the final and the selected weights (at most 2: once when they are
 * the same), each again at the fixed precision for cyclic runs. Without a
 * validation split the last periodic evaluation is the final test one and
 * only its fixed-precision twin is added. */
typedef struct {
    long n_periodic, periodic_imgs; /* evaluations x images of the split they run on */
    long n_test, test_imgs;         /* the test set's evaluations (an upper bound) x images */
} EvalPlan;

static void eval_plan(const RunConfig *c, const DatasetShape *ds, long n_train, long iters, EvalPlan *p) {
    const long every = c->eval_interval > 0 ? c->eval_interval : n_train / (c->batch_size > 0 ? c->batch_size : 1);
    const long n_val = config_val_split(c, ds->n_train);
    const long n_test = c->test_subset > 0 && c->test_subset < ds->n_test ? c->test_subset : ds->n_test;
    const int fixed_too = c->prec_schedule == PREC_CYCLIC && c->prec_eval != PREC_EVAL_FIXED;
    p->n_periodic = every > 0 ? iters / every + (iters % every != 0) : 1;
    p->periodic_imgs = n_val > 0 ? n_val : n_test;
    p->n_test = n_val > 0 ? 2 * (1 + fixed_too) : fixed_too;
    p->test_imgs = n_test;
}

typedef struct {
    double step, sync, eval, total; /* s: per step, per step, the whole run's evaluations, the run */
    double bytes, small;            /* V = parameters x 4, small synchronisations per step */
    long b, iters;                  /* batch per rank, iterations */
    EvalPlan ev;
} RunCost;

/* one run's time from the cost model on R ranks of M threads; 0, or -1 with
 * a message */
static int run_cost(const Machine *mc, const RunConfig *c, int R, double M, RunCost *rc, StepSource *src,
                    int *extrap, const char **borrowed, int *no_sync, int *no_eval, char *err, size_t errlen) {
    DatasetShape ds;
    long n_train;
    if (detect_config(c) || run_shape(c, &ds, &n_train))
        return snprintf(err, errlen, "no cost model for this run (dataset %s)", c->dataset), -1;
    if (step_source(mc, c, &ds, src, err, errlen)) return -1;
    if (c->shards % R) /* a run trains on R ranks only when R divides its shards (core/shard.h) */
        return snprintf(err, errlen, "%d ranks do not divide train.shards %d (batch %d)", R, c->shards,
                        c->batch_size), -1;
    double V, small;
    if (run_sync_counts(c, &ds, &V, &small, err, errlen)) return -1;
    const long I = train_total_iterations(c, n_train);
    rc->b = c->batch_size / R;
    rc->iters = I;
    rc->bytes = 4.0 * V;
    rc->small = small;
    rc->step = src->scale_step * t_step(src->t, (double)rc->b, M, 0, extrap);
    rc->sync = 0;
    if (R > 1 && mc->alpha >= 0 && mc->beta > 0)
        rc->sync = 2.0 * (R - 1) / R * 4.0 * V / mc->beta + small * ceil(log2((double)R)) * mc->alpha;
    else if (R > 1) *no_sync = 1;
    /* the evaluations' images split over the ranks */
    eval_plan(c, &ds, n_train, I, &rc->ev);
    const double per_img = src->scale_fwd * fwd_per_image(mc, src->t, c->eval_batch_size > 0 ? c->eval_batch_size
                                                                                         : c->batch_size,
                                                          M, extrap, borrowed);
    const double imgs = (double)rc->ev.n_periodic * ceil((double)rc->ev.periodic_imgs / R) +
                        (double)rc->ev.n_test * ceil((double)rc->ev.test_imgs / R);
    rc->eval = imgs * (per_img > 0 ? per_img : 0);
    *no_eval |= !(per_img > 0);
    rc->total = (double)I * (rc->step + rc->sync) + rc->eval;
    return 0;
}

/* the index of text in the list of distinct sources (added when new), 1-based */
static int source_index(char (*list)[SRC_LEN], int *n, int cap, const char *text) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], text)) return i + 1;
    if (*n >= cap) return 0;
    snprintf(list[*n], SRC_LEN, "%s", text);
    return ++*n;
}

static void machine_describe(const Machine *mc, double M, int extrap) {
    const Json *mach = json_get(&mc->root, "machine"), *cpu = json_get(mach, "cpu");
    const Json *date = json_get(&mc->root, "date"), *rev = json_get(&mc->root, "revision");
    const Json *load = json_get(&mc->root, "load_average");
    printf("machine figures: %s (%s, %g cores, %s, git %s", mc->path, cpu && cpu->str ? cpu->str : "?",
           json_num(mach, "cores"), date && date->str ? date->str : "?", rev && rev->str ? rev->str : "?");
    if (load && load->type == J_ARR && load->n > 0) {
        printf(", load average");
        for (int i = 0; i < load->n; i++) printf("%s%.2f", i ? "-" : " ", load->kid[i].num);
    }
    printf(")\n");
    if (extrap)
        printf("t(b, %g) is extrapolated beyond the measured %g threads: Amdahl's law fitted per batch to the "
               "measured parallel efficiency\n", M, mc->max_threads);
}

static void print_sources(char (*list)[SRC_LEN], int n) {
    for (int i = 0; i < n; i++) printf("  [%d] %s\n", i + 1, list[i]);
}

static void eval_text(char *buf, size_t len, const EvalPlan *p) {
    snprintf(buf, len, "%ldx%ld+%ldx%ld", p->n_periodic, p->periodic_imgs, p->n_test, p->test_imgs);
}

static int dry_run_cluster(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
                           const DryRunCluster *cl);

/* a complete run of the results file with the same architecture, conv kind
 * and dataset as c: its measured fp32 MACs per second (evaluation included);
 * 0 when there is none */
static double file_rate(const ExperimentConfig *e, const int *sel, int nsel, const RunInfo *infos,
                        const RunConfig *c, char *names, size_t len) {
    double macs = 0, secs = 0;
    names[0] = 0;
    for (int k = 0; k < nsel; k++) {
        const RunConfig *o = &e->runs[sel[k]].c;
        if (strcmp(infos[k].status, "complete") || !(infos[k].fp32_macs > 0) || !(infos[k].wall_time_s > 0) ||
            strcmp(o->arch, c->arch) || strcmp(run_kind(o), run_kind(c)) || strcmp(o->dataset, c->dataset))
            continue;
        macs += infos[k].fp32_macs;
        secs += infos[k].wall_time_s;
        const size_t l = strlen(names);
        snprintf(names + l, len - l, "%s%s", l ? ", " : "", e->runs[sel[k]].name);
    }
    return secs > 0 ? macs / secs : 0;
}

/* --dry-run: the expanded runs, their cost and estimated time */
int dry_run(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
            const DryRunCluster *cluster) {
    if (cluster && cluster->nodes > 0) return dry_run_cluster(e, sel, nsel, path, threads, cluster);
    const DryRunCluster here = {.machine = cluster ? cluster->machine : NULL};
    char err[1024], merr[1024];
    Machine *mc = calloc(1, sizeof *mc);
    RunInfo *infos = mc ? load_infos(e, sel, nsel, path) : NULL;
    if (!infos) return free(mc), 1;
    const int have_mc = machine_load(mc, &here, merr, sizeof merr) == 0;
    char(*srcs)[SRC_LEN] = calloc(64, sizeof *srcs);
    int nsrc = 0;
    printf("%s: %d run%s selected of %d\n\n", e->name, nsel, nsel == 1 ? "" : "s", e->n_runs);
    printf("%-4s %-34s %-11s %10s %11s %11s %11s %8s %9s %21s %9s %9s %4s\n", "#", "run", "status", "iterations",
           "MACs/img", "fp32 MACs", "bit-MACs", "cr", "step s", "evaluations", "eval", "est. time", "src");
    double total_time = 0, total_macs = 0;
    int rc = 0, extrap = 0, no_eval = 0, unknown = 0;
    const char *borrowed = NULL;
    for (int k = 0; k < nsel; k++) {
        const RunSpec *r = &e->runs[sel[k]];
        const int det = detect_config(&r->c);
        DatasetShape ds;
        TrainEstimate est;
        long n_train;
        if (!det && run_shape(&r->c, &ds, &n_train)) {
            printf("%-4d %-34s unknown dataset %s\n", k + 1, r->name, r->c.dataset);
            rc = 1;
            continue;
        }
        if (det ? detect_estimate(&r->c, &est, err, sizeof err)
                : train_estimate(&r->c, ds.channels, ds.height, ds.width, ds.num_classes, n_train, &est, err,
                                 sizeof err)) {
            printf("%-4d %-34s %s\n", k + 1, r->name, err);
            rc = 1;
            continue;
        }
        /* the time: a complete run of the same kind in this file, else the
         * machine file's measured step (detection: bench/det_step's rate) */
        char names[512], what[SRC_LEN], evs[48] = "-", steps[16] = "-", evt[32] = "-";
        double t = NAN;
        const double frate = file_rate(e, sel, nsel, infos, &r->c, names, sizeof names);
        if (frate > 0) {
            t = est.fp32_macs / frate;
            snprintf(what, sizeof what, "measured: this results file's complete runs %s, %.3e fp32 MACs/s "
                     "(evaluation included)", names, frate);
        } else if (det) {
            t = est.fp32_macs / (DRY_RUN_DET_MACS_PER_S_PER_THREAD * threads);
            snprintf(what, sizeof what, "bench/RESULTS.md (\"The detector's training step by phase\": bench/det_step "
                     "at paper shape, 0.378 img/s x 148.3 GMAC on 2 threads, measured under load) = %.2e MACs/s "
                     "per thread x %d; evaluation not included", DRY_RUN_DET_MACS_PER_S_PER_THREAD, threads);
        } else if (have_mc) {
            RunCost c;
            StepSource src;
            if (run_cost(mc, &r->c, 1, threads, &c, &src, &extrap, &borrowed, &(int){0}, &no_eval, err,
                         sizeof err) == 0) {
                t = c.total;
                snprintf(what, sizeof what, "%s", src.what);
                snprintf(steps, sizeof steps, "%.4f", c.step);
                eval_text(evs, sizeof evs, &c.ev);
                format_duration(evt, sizeof evt, c.eval);
            } else snprintf(what, sizeof what, "no estimate: %s", err);
        } else snprintf(what, sizeof what, "no estimate: %s", merr);
        const char *status = infos[k].exists ? infos[k].status : "new";
        if (!strcmp(status, "complete")) t = 0;
        else if (infos[k].checkpoint_step > 0 && est.iterations > 0)
            t *= 1.0 - (double)infos[k].checkpoint_step / (double)est.iterations;
        char when[32] = "?";
        if (!isnan(t)) format_duration(when, sizeof when, t), total_time += t;
        else unknown++;
        total_macs += est.fp32_macs;
        printf("%-4d %-34s %-11s %10ld %11.3e %11.3e %11.3e %8.5f %9s %21s %9s %9s %4d\n", k + 1, r->name, status,
               est.iterations, (double)est.fwd_macs, est.fp32_macs, est.bit_macs, est.mean_cost_ratio, steps, evs, evt,
               when, source_index(srcs, &nsrc, 64, what));
    }
    char tt[32];
    format_duration(tt, sizeof tt, total_time);
    printf("\ntotal: %.3e training MACs, estimated %s to train what is not complete on %d thread%s, evaluations "
           "included%s\n", total_macs, tt, threads, threads == 1 ? "" : "s",
           unknown ? " (runs marked ? have no estimate)" : "");
    printf("evaluations: periodic x images (validation split; test without one) + test evaluations at the end "
           "(final and selected weights, each also at fixed bits for cyclic runs: an upper bound) x test images\n");
    printf("src (step and evaluation times):\n");
    print_sources(srcs, nsrc);
    if (have_mc) machine_describe(mc, threads, extrap);
    if (borrowed) printf("evaluation: the step time x the forward share measured for %s\n", borrowed);
    if (no_eval) printf("%s has no measured forward time for some runs: their evaluation is left out\n", mc->path);
    printf("results: %s\n", path);
    for (int k = 0; k < nsel; k++) run_info_free(&infos[k]);
    free(infos);
    free(srcs);
    json_free(&mc->root);
    free(mc);
    return rc;
}

static int dry_run_cluster(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
                           const DryRunCluster *cl) {
    char err[1024];
    Machine *mc = calloc(1, sizeof *mc);
    if (!mc) return 1;
    if (machine_load(mc, cl, err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        json_free(&mc->root);
        free(mc);
        return 1;
    }
    const int R = cl->ranks_per_run > 0 ? cl->ranks_per_run : 1, groups = cl->nodes / R;
    const double M = cl->cores > 0 ? cl->cores : threads;
    RunInfo *infos = groups > 0 ? load_infos(e, sel, nsel, path) : NULL;
    char(*srcs)[SRC_LEN] = calloc(64, sizeof *srcs);
    int nsrc = 0;
    if (!infos || !srcs) {
        if (groups <= 0) fprintf(stderr, "cyclebnn: %d ranks per run need at least %d nodes\n", R, R);
        free(infos);
        free(srcs);
        json_free(&mc->root);
        free(mc);
        return groups <= 0 ? 2 : 1;
    }
    printf("%s: %d run%s selected of %d, on %d node%s x %g cores: %d rank%s (node%s) per run, %d group%s\n\n", e->name,
           nsel, nsel == 1 ? "" : "s", e->n_runs, cl->nodes, cl->nodes == 1 ? "" : "s", M, R, R == 1 ? "" : "s",
           R == 1 ? "" : "s", groups, groups == 1 ? "" : "s");
    printf("%-4s %-34s %-11s %10s %7s %9s %7s %6s %9s %21s %9s %9s %4s\n", "#", "run", "status", "iterations",
           "b/rank", "step s", "V MB", "syncs", "sync s", "evaluations", "eval", "est. time", "src");
    double total = 0, longest = 0;
    int rc = 0, extrap = 0, no_sync = 0, no_eval = 0;
    const char *borrowed = NULL;
    for (int k = 0; k < nsel; k++) {
        const RunSpec *r = &e->runs[sel[k]];
        RunCost c;
        StepSource src;
        if (run_cost(mc, &r->c, R, M, &c, &src, &extrap, &borrowed, &no_sync, &no_eval, err, sizeof err)) {
            printf("%-4d %-34s %s\n", k + 1, r->name, err);
            rc = 1;
            continue;
        }
        const char *status = infos[k].exists ? infos[k].status : "new";
        double t = c.total;
        if (!strcmp(status, "complete")) t = 0;
        else if (infos[k].checkpoint_step > 0 && c.iters > 0)
            t *= 1.0 - (double)infos[k].checkpoint_step / (double)c.iters;
        char when[32], ev[32], evs[48];
        format_duration(when, sizeof when, t);
        format_duration(ev, sizeof ev, c.eval);
        eval_text(evs, sizeof evs, &c.ev);
        printf("%-4d %-34s %-11s %10ld %7ld %9.4f %7.1f %6.0f %9.5f %21s %9s %9s %4d\n", k + 1, r->name, status,
               c.iters, c.b, c.step, c.bytes / 1e6, c.small, c.sync, evs, ev, when,
               source_index(srcs, &nsrc, 64, src.what));
        total += t;
        longest = t > longest ? t : longest;
    }
    const double span = fmax(longest, total / groups);
    char a[32], b[32], s[32];
    format_duration(a, sizeof a, longest);
    format_duration(b, sizeof b, total / groups);
    format_duration(s, sizeof s, span);
    printf("\nmakespan ~ max(longest run %s, total / %d group%s %s) = %s (cost model: bench/README.md)\n", a, groups,
           groups == 1 ? "" : "s", b, s);
    printf("evaluations: periodic x images (validation split; test without one) + test evaluations at the end "
           "(an upper bound) x test images, split over the ranks\n");
    printf("src (step and evaluation times):\n");
    print_sources(srcs, nsrc);
    machine_describe(mc, M, extrap);
    if (borrowed) printf("evaluation: the step time x the forward share measured for %s\n", borrowed);
    if (no_eval) printf("%s has no measured forward time for some runs: their evaluation is left out\n", mc->path);
    if (no_sync)
        printf("%s has no measured alpha/beta (bench/dist_bench): t_sync is left out, multi-rank runs are "
               "estimated too short\n", mc->path);
    printf("not modelled: network contention between groups, data loading beyond the measured step's, checkpoints\n"
           "results: %s\n", path);
    for (int k = 0; k < nsel; k++) run_info_free(&infos[k]);
    free(infos);
    free(srcs);
    json_free(&mc->root);
    free(mc);
    return rc;
}
