/* --dry-run (experiments/dry_run.h): the expanded runs, their cost and their
 * estimated time. */
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

/* Training throughput used by --dry-run when the results file has no
 * finished run to measure it from: fp32-equivalent training MACs per second
 * per thread (everything is emulated in fp32). Measured with
 * experiments/fmnist_quick.yaml (binary ResNet-8, batch 64) on the 2-core
 * AMD EPYC (Zen 5) development machine: 1.66e12 MACs in 70 s on 2 threads. */
#define DRY_RUN_MACS_PER_S_PER_THREAD 1.2e10
/* The same for the detector at paper shape (600 x 800, width 64, 256 RoIs:
 * larger convs run nearer the machine's peak): bench/det_step's paper-shape
 * step, 148.3 GMAC per training image at 0.378 img/s on 2 threads
 * (bench/RESULTS.md, issue 14) = 2.8e10 per thread. */
#define DRY_RUN_DET_MACS_PER_S_PER_THREAD 2.8e10

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

static int dry_run_cluster(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
                           const DryRunCluster *cl);

/* --dry-run: the expanded runs, their cost and estimated time */
int dry_run(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
            const DryRunCluster *cluster) {
    if (cluster && cluster->nodes > 0) return dry_run_cluster(e, sel, nsel, path, threads, cluster);
    /* measured rate from the file's complete runs, when it has some */
    double rate = 0, sum_macs = 0, sum_time = 0;
    char err[1024];
    RunInfo *infos = load_infos(e, sel, nsel, path);
    if (!infos) return 1;
    for (int k = 0; k < nsel; k++)
        if (!strcmp(infos[k].status, "complete") && infos[k].fp32_macs > 0 && infos[k].wall_time_s > 0) {
            sum_macs += infos[k].fp32_macs;
            sum_time += infos[k].wall_time_s;
        }
    if (sum_time > 0) rate = sum_macs / sum_time;
    const char *rate_from = "measured from this file's complete runs";
    if (rate <= 0) {
        rate = DRY_RUN_MACS_PER_S_PER_THREAD * threads;
        rate_from = "the built-in rate measured on a 2-core Zen 5, scaled by threads";
    }
    printf("%s: %d run%s selected of %d\n\n", e->name, nsel, nsel == 1 ? "" : "s", e->n_runs);
    printf("%-4s %-34s %-11s %10s %11s %11s %11s %8s %9s\n", "#", "run", "status", "iterations", "MACs/img",
           "fp32 MACs", "bit-MACs", "cr", "est. time");
    double total_time = 0, total_macs = 0;
    int rc = 0, has_detect = 0;
    for (int k = 0; k < nsel; k++) {
        const RunSpec *r = &e->runs[sel[k]];
        DatasetShape ds;
        TrainEstimate est;
        long n_train;
        if (!detect_config(&r->c) && data_shape_from_config(&r->c, &ds, &n_train)) {
            printf("%-4d %-34s unknown dataset %s\n", k + 1, r->name, r->c.dataset);
            rc = 1;
            continue;
        }
        if (detect_config(&r->c) ? detect_estimate(&r->c, &est, err, sizeof err)
                                 : train_estimate(&r->c, ds.channels, ds.height, ds.width, ds.num_classes, n_train,
                                                  &est, err, sizeof err)) {
            printf("%-4d %-34s %s\n", k + 1, r->name, err);
            rc = 1;
            continue;
        }
        const char *status = infos[k].exists ? infos[k].status : "new";
        double t = est.fp32_macs / rate;
        if (detect_config(&r->c) && sum_time <= 0) t = est.fp32_macs / (DRY_RUN_DET_MACS_PER_S_PER_THREAD * threads);
        has_detect |= detect_config(&r->c);
        if (!strcmp(status, "complete")) t = 0;
        else if (infos[k].checkpoint_step > 0 && est.iterations > 0)
            t *= 1.0 - (double)infos[k].checkpoint_step / (double)est.iterations;
        char when[32];
        format_duration(when, sizeof when, t);
        total_time += t;
        total_macs += est.fp32_macs;
        printf("%-4d %-34s %-11s %10ld %11.3e %11.3e %11.3e %8.5f %9s\n", k + 1, r->name, status, est.iterations,
               (double)est.fwd_macs, est.fp32_macs, est.bit_macs, est.mean_cost_ratio, when);
    }
    char tt[32];
    format_duration(tt, sizeof tt, total_time);
    printf("\ntotal: %.3e training MACs, estimated %s to train what is not complete (%.2e MACs/s, %s; evaluation "
           "and data loading not included)\nresults: %s\n",
           total_macs, tt, rate, rate_from, path);
    if (has_detect && sum_time <= 0)
        printf("(detection runs: %.2e MACs/s, bench/det_step's paper-shape rate on a 2-core Zen 5, scaled by threads)\n",
               DRY_RUN_DET_MACS_PER_S_PER_THREAD * threads);
    for (int k = 0; k < nsel; k++) run_info_free(&infos[k]);
    free(infos);
    return rc;
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

static const StepTable *machine_table(const Machine *mc, const char *name) {
    for (int i = 0; i < mc->n_tab; i++)
        if (!strcmp(mc->tab[i].name, name)) return &mc->tab[i];
    return NULL;
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

/* evaluation cost per image at batch b on M threads: the table's own
 * loader + forward time, or (when it has none, as the ImageNet table) its
 * step time times the forward share of a table of the same kind that has it */
static double eval_per_image(const Machine *mc, const StepTable *t, const char *kind, double b, double M,
                             int *extrap, const char **borrowed) {
    double f = t_step(t, b, M, 1, extrap);
    if (f > 0) return f / b;
    for (int i = 0; i < mc->n_tab; i++) {
        const char *slash = strrchr(mc->tab[i].name, '/');
        if (!slash || strcmp(slash + 1, kind)) continue;
        const double fw = t_step(&mc->tab[i], b, M, 1, extrap), st = t_step(&mc->tab[i], b, M, 0, extrap);
        if (fw > 0 && st > 0) {
            *borrowed = mc->tab[i].name;
            return fw / st * t_step(t, b, M, 0, extrap) / b;
        }
    }
    return NAN;
}

typedef struct {
    double step, sync, eval, total; /* s: per step, per step, the whole run's evaluations, the run */
    double bytes, small;            /* V = parameters x 4, small synchronisations per step */
    long b, iters;                  /* batch per rank, iterations */
} RunCost;

/* one run's time from the cost model; 0, or -1 with a message */
static int run_cost(const Machine *mc, const RunConfig *c, int R, double M, RunCost *rc, int *extrap,
                    const char **borrowed, int *no_sync, int *no_eval, char *err, size_t errlen) {
    DatasetShape ds;
    long n_train;
    char name[160];
    const char *kind = run_kind(c);
    if (detect_config(c) || data_shape_from_config(c, &ds, &n_train))
        return snprintf(err, errlen, "no cost model for this run (dataset %s)", c->dataset), -1;
    snprintf(name, sizeof name, "%s/%s", c->arch, kind);
    const StepTable *t = machine_table(mc, name);
    if (!t) return snprintf(err, errlen, "%s has no measured step for %s", mc->path, name), -1;
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
    rc->step = t_step(t, (double)rc->b, M, 0, extrap);
    rc->sync = 0;
    if (R > 1 && mc->alpha >= 0 && mc->beta > 0)
        rc->sync = 2.0 * (R - 1) / R * 4.0 * V / mc->beta + small * ceil(log2((double)R)) * mc->alpha;
    else if (R > 1) *no_sync = 1;
    /* evaluations: every eval_interval (0: once per epoch) and at the end, the test set split over the ranks */
    const long every = c->eval_interval > 0 ? c->eval_interval : n_train / c->batch_size;
    const double n_eval = every > 0 ? (double)(I / every + (I % every != 0)) : 1;
    const long n_test = c->test_subset > 0 && c->test_subset < ds.n_test ? c->test_subset : ds.n_test;
    const double per_img = eval_per_image(mc, t, kind, c->eval_batch_size > 0 ? c->eval_batch_size : c->batch_size,
                                          M, extrap, borrowed);
    rc->eval = n_eval * ceil((double)n_test / R) * (per_img > 0 ? per_img : 0);
    *no_eval |= !(per_img > 0);
    rc->total = (double)I * (rc->step + rc->sync) + rc->eval;
    return 0;
}

static void machine_describe(const Machine *mc, double M, int extrap) {
    const Json *mach = json_get(&mc->root, "machine"), *cpu = json_get(mach, "cpu");
    const Json *date = json_get(&mc->root, "date"), *rev = json_get(&mc->root, "revision");
    printf("machine figures: %s (%s, %g cores, %s, git %s)\n", mc->path, cpu && cpu->str ? cpu->str : "?",
           json_num(mach, "cores"), date && date->str ? date->str : "?", rev && rev->str ? rev->str : "?");
    if (extrap)
        printf("t(b, %g) is extrapolated beyond the measured %g threads: Amdahl's law fitted per batch to the "
               "measured parallel efficiency\n", M, mc->max_threads);
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
    if (!infos) {
        if (groups <= 0) fprintf(stderr, "cyclebnn: %d ranks per run need at least %d nodes\n", R, R);
        json_free(&mc->root);
        free(mc);
        return groups <= 0 ? 2 : 1;
    }
    printf("%s: %d run%s selected of %d, on %d node%s x %g cores: %d rank%s (node%s) per run, %d group%s\n\n", e->name,
           nsel, nsel == 1 ? "" : "s", e->n_runs, cl->nodes, cl->nodes == 1 ? "" : "s", M, R, R == 1 ? "" : "s",
           R == 1 ? "" : "s", groups, groups == 1 ? "" : "s");
    printf("%-4s %-34s %-11s %10s %7s %9s %7s %6s %9s %9s %9s\n", "#", "run", "status", "iterations", "b/rank",
           "step s", "V MB", "syncs", "sync s", "eval", "est. time");
    double total = 0, longest = 0;
    int rc = 0, extrap = 0, no_sync = 0, no_eval = 0;
    const char *borrowed = NULL;
    for (int k = 0; k < nsel; k++) {
        const RunSpec *r = &e->runs[sel[k]];
        RunCost c;
        if (run_cost(mc, &r->c, R, M, &c, &extrap, &borrowed, &no_sync, &no_eval, err, sizeof err)) {
            printf("%-4d %-34s %s\n", k + 1, r->name, err);
            rc = 1;
            continue;
        }
        const char *status = infos[k].exists ? infos[k].status : "new";
        double t = c.total;
        if (!strcmp(status, "complete")) t = 0;
        else if (infos[k].checkpoint_step > 0 && c.iters > 0)
            t *= 1.0 - (double)infos[k].checkpoint_step / (double)c.iters;
        char when[32], ev[32];
        format_duration(when, sizeof when, t);
        format_duration(ev, sizeof ev, c.eval);
        printf("%-4d %-34s %-11s %10ld %7ld %9.4f %7.1f %6.0f %9.5f %9s %9s\n", k + 1, r->name, status, c.iters,
               c.b, c.step, c.bytes / 1e6, c.small, c.sync, ev, when);
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
    json_free(&mc->root);
    free(mc);
    return rc;
}
