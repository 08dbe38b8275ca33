/* cyclebnn: run an experiment file.
 *
 *   build/cyclebnn [options] EXPERIMENT.yaml
 *
 * Loads and validates the YAML and expands its grid (nothing runs and no file
 * is touched if anything is wrong), then trains the runs one at a time into
 * results/<experiment>.h5 and prints a results table. Each run is a
 * self-contained unit: its config, its dataset, its log and its checkpoint.
 *
 * Rerunning the same command continues: complete runs are skipped, an
 * unfinished one resumes from its checkpoint (bitwise the same numbers as an
 * uninterrupted run), pending ones start. A run whose configuration in the
 * file differs from the YAML's is refused before anything runs. `./run_experiment`
 * is the wrapper that builds first and resolves bare names against experiments/. */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "blas.h"
#include "build_info.h"
#include "build_rev.h"
#include "config.h"
#include "cpu.h"
#include "datasets/cifar10.h"
#include "datasets/dataset.h"
#include "datasets/imagenet.h"
#include "progress.h"
#include "results_h5.h"
#include "run_record.h"
#include "detect_run.h"
#include "dry_run.h"
#include "train_run.h"


static void usage(FILE *f) {
    fprintf(f,
            "usage: cyclebnn [options] EXPERIMENT.yaml\n"
            "\n"
            "Train the runs an experiment file describes (its grid:, seeds: and runs:\n"
            "expanded) one after the other into results/<name>.h5, then print a\n"
            "results table. Rerunning the same command skips complete runs and resumes\n"
            "an unfinished one from its last checkpoint.\n"
            "\n"
            "options:\n"
            "  --only PATTERN    only the runs whose name matches the shell glob PATTERN\n"
            "                    (a PATTERN without * ? [ matches any name containing it)\n"
            "  --dry-run         list the runs with their iterations, MACs and estimated\n"
            "                    time, and their status in the results file; train nothing\n"
            "  --threads N       OpenMP threads (overrides train.threads; results do not\n"
            "                    depend on it)\n"
            "  --fresh           start over instead of resuming: with --only, only the\n"
            "                    selected runs (the others are kept as they are); without,\n"
            "                    the whole file (replaced once the new one lists the runs)\n"
            "  --retry-failed    train the selected runs that failed again, from their last\n"
            "                    checkpoint (a failed run is otherwise skipped; --fresh --only\n"
            "                    RUN starts one over from step 0)\n"
            "  --results DIR     where the .h5 file goes (default: results)\n"
            "  --print-results-path  print the results file's path and stop (for scripts)\n"
            "  --help-config     every configuration key with its type, default and range\n"
            "  -h, --help        this help\n"
            "\n"
            "Ctrl-C (or SIGTERM, SIGHUP) stops after the current step, writes a checkpoint and\n"
            "marks the run 'interrupted'; a second Ctrl-C leaves at once (the results\n"
            "file keeps its last checkpoint). The experiment schema is documented in\n"
            "experiments/README.md, the results file's in results/README.md.\n"
            "\n"
            "exit status: 0 all selected runs complete, 1 a run failed or an error,\n"
            "2 bad usage or configuration, 3 the results file is in use by another\n"
            "session (nothing was done), 130 interrupted.\n");
}

static void on_signal(int sig) {
    (void)sig;
    if (train_stop_requested) _exit(130); /* second Ctrl-C: leave now (results keep their last commit) */
    train_stop_requested = 1;
}

/* the loaded dataset, kept while consecutive runs share it */
typedef struct {
    int loaded;
    char dataset[CFG_STR], path[CFG_PATH];
    long train_subset, test_subset;
    int image_size, skip_bad;
    Dataset train, test;
} DataCache;

static int load_dataset(DataCache *dc, const RunConfig *c, char *err, size_t errlen) {
    if (dc->loaded && !strcmp(dc->dataset, c->dataset) && !strcmp(dc->path, c->data_path) &&
        dc->train_subset == c->train_subset && dc->test_subset == c->test_subset &&
        dc->image_size == c->image_size && dc->skip_bad == c->skip_bad)
        return 0;
    if (dc->loaded) {
        dataset_free(&dc->train);
        dataset_free(&dc->test);
        dc->loaded = 0;
    }
    if (data_from_config(c, &dc->train, &dc->test, err, errlen)) return -1;
    snprintf(dc->dataset, sizeof dc->dataset, "%s", c->dataset);
    snprintf(dc->path, sizeof dc->path, "%s", c->data_path);
    dc->train_subset = c->train_subset;
    dc->test_subset = c->test_subset;
    dc->image_size = c->image_size;
    dc->skip_bad = c->skip_bad;
    dc->loaded = 1;
    return 0;
}

static int name_matches(const char *pattern, const char *name) {
    if (!pattern) return 1;
    if (strpbrk(pattern, "*?[")) return fnmatch(pattern, name, 0) == 0;
    return strstr(name, pattern) != NULL;
}

/* The part of a config that decides a run's numbers: threads, printing and
 * checkpoint spacing do not (training is deterministic across thread counts). */
static void identity(RunConfig *c) {
    c->threads = 0;
    c->log_interval = 0;
    c->checkpoint_interval = 0;
    c->loader_workers = 0;
}

/* The stored config of an existing run against the YAML's: 0 when they give
 * the same numbers, else 1 with the first differing line in diff. */
static int config_changed(const char *stored, const RunConfig *now, char *diff, size_t cap) {
    ExperimentConfig old;
    char err[512];
    if (!stored || experiment_parse(&old, stored, strlen(stored), "stored-config", err, sizeof err)) {
        snprintf(diff, cap, "its stored configuration cannot be read by this build (%s)", stored ? err : "missing");
        return 1;
    }
    RunConfig a = old.base, b = *now;
    experiment_free(&old);
    identity(&a);
    identity(&b);
    if (!memcmp(&a, &b, sizeof a)) return 0;
    char *ya = config_to_yaml(&a), *yb = config_to_yaml(&b);
    snprintf(diff, cap, "the configurations differ");
    if (ya && yb) {
        /* first differing line, with the keys' nesting kept */
        const char *p = ya, *q = yb;
        while (*p && *q) {
            size_t lp = strcspn(p, "\n"), lq = strcspn(q, "\n");
            if (lp != lq || memcmp(p, q, lp)) {
                snprintf(diff, cap, "in the file: '%.*s', in the YAML: '%.*s'", (int)lp, p, (int)lq, q);
                break;
            }
            p += lp + (p[lp] == '\n');
            q += lq + (q[lq] == '\n');
        }
    }
    free(ya);
    free(yb);
    return 1;
}

static void print_table_header(void) {
    printf("\n%-30s %-11s %10s %10s %10s %11s %11s %9s\n", "run", "status", "final top1", "best top1", "cost ratio",
           "bit-MACs", "fp32 MACs", "wall");
}

/* a number for the table, "-" where the run has none (NaN: not finished) */
static const char *cell(char *buf, size_t cap, const char *fmt, double v) {
    if (isfinite(v)) snprintf(buf, cap, fmt, v);
    else snprintf(buf, cap, "-");
    return buf;
}

static void print_table_row(const char *name, const RunInfo *ri) {
    char wall[32] = "-", a[32], b[32], c[32], d[32], e[32];
    if (isfinite(ri->wall_time_s)) format_duration(wall, sizeof wall, ri->wall_time_s);
    printf("%-30s %-11s %10s %10s %10s %11s %11s %9s\n", name, ri->status, cell(a, sizeof a, "%.2f%%", ri->final_top1),
           cell(b, sizeof b, "%.2f%%", ri->best_top1), cell(c, sizeof c, "%.5f", ri->mean_cost_ratio),
           cell(d, sizeof d, "%.3e", ri->bit_macs), cell(e, sizeof e, "%.3e", ri->fp32_macs), wall);
    if (!strcmp(ri->status, "failed") && ri->message[0]) printf("%-30s   %s\n", "", ri->message);
}

/* How run_grid treats what the results file already has. */
typedef struct {
    int fresh;          /* --fresh */
    int only;           /* --only was given: --fresh resets the selected runs alone */
    int retry_failed;   /* --retry-failed */
} GridMode;

static int run_grid(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
                    const GridMode *mode);

/* Under ./run_experiment (which sets CBNN_PARENT_PID): leave like on SIGTERM,
 * with a checkpoint, when the wrapper dies, so that no orphan keeps training
 * and holding the results file's lock after a kill -9 of the wrapper. */
static void die_with_wrapper(void) {
    const char *v = getenv("CBNN_PARENT_PID");
    if (!v || !*v) return;
    long want = strtol(v, NULL, 10);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return;
    if (want > 0 && getppid() != (pid_t)want) raise(SIGTERM); /* it died before the prctl */
}

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        fprintf(stderr, "cyclebnn: %s\n", cpu_env_error());
        return 2;
    }
    int threads = -1, dry = 0, fresh = 0, print_path = 0, retry_failed = 0;
    const char *results_dir = "results", *only = NULL;
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"results", required_argument, 0, 'r'},
                                         {"only", required_argument, 0, 'o'},
                                         {"dry-run", no_argument, 0, 'n'},
                                         {"fresh", no_argument, 0, 'f'},
                                         {"retry-failed", no_argument, 0, 'R'},
                                         {"print-results-path", no_argument, 0, 'p'},
                                         {"help-config", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1024) {
                fprintf(stderr, "cyclebnn: --threads expects an integer in [1, 1024], got '%s'\n", optarg);
                return 2;
            }
            threads = (int)v;
            break;
        }
        case 'r':
            /* an unset variable ($RESULTS) would put the file in / */
            if (!*optarg) {
                fprintf(stderr, "cyclebnn: --results expects a directory, got an empty string\n");
                return 2;
            }
            results_dir = optarg;
            break;
        case 'o': only = optarg; break;
        case 'n': dry = 1; break;
        case 'f': fresh = 1; break;
        case 'R': retry_failed = 1; break;
        case 'p': print_path = 1; break;
        case 'c': config_print_schema(stdout); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    char err[2048] = "";
    ExperimentConfig e;
    die_with_wrapper();
    if (experiment_load(&e, argv[optind], err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        return 2;
    }
    int *sel = malloc(sizeof *sel * (size_t)e.n_runs), nsel = 0, rc;
    if (!sel) {
        fprintf(stderr, "cyclebnn: out of memory\n");
        experiment_free(&e);
        return 1;
    }
    for (int k = 0; k < e.n_runs; k++)
        if (name_matches(only, e.runs[k].name)) sel[nsel++] = k;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.h5", results_dir, e.name);
    engine_set_threads(threads > 0 ? threads : e.base.threads);
    if (print_path) {
        printf("%s\n", path);
        rc = 0;
    } else if (nsel == 0) {
        fprintf(stderr, "cyclebnn: --only '%s' matches none of the %d runs of %s:\n", only, e.n_runs, e.path);
        for (int k = 0; k < e.n_runs; k++) fprintf(stderr, "  %s\n", e.runs[k].name);
        rc = 2;
    } else if (dry) {
        rc = dry_run(&e, sel, nsel, path, engine_threads(), NULL);
    } else {
        GridMode mode = {.fresh = fresh, .only = only != NULL, .retry_failed = retry_failed};
        rc = run_grid(&e, sel, nsel, path, threads, &mode);
    }
    free(sel);
    experiment_free(&e);
    return rc;
}

/* --fresh --only: the selected runs start over, the file's others stay */
typedef struct {
    const ExperimentConfig *e;
    const int *sel;
    int nsel;
} Selection;

static int selected_run(const char *run_name, void *ctx) {
    const Selection *s = ctx;
    for (int k = 0; k < s->nsel; k++)
        if (!strcmp(s->e->runs[s->sel[k]].name, run_name)) return 1;
    return 0;
}

/* A grid being trained: the selection, its results file, the runs' YAML
 * (serialised once, for declaring and for starting each run), the
 * iterations left for the ETA, the data kept between runs, the tally. */
typedef struct {
    const ExperimentConfig *e;
    const int *sel;
    int nsel;
    const char *path;
    int threads;
    const GridMode *mode;
    ResultsFile *rf;
    char **yaml;                  /* [e->n_runs] config_to_yaml of each run */
    long *iters;                  /* [nsel] iterations of each selected run (0: unknown) */
    DataCache dc;
    int exit_code, n_done, n_skipped, n_failed;
} Grid;

/* open (or create) the results file; the exit status when it cannot be */
static int grid_open(Grid *g, char *err, size_t errlen) {
    Selection selection = {g->e, g->sel, g->nsel};
    ResultsOpenArgs oa = {.path = g->path, .experiment = g->e->name, .experiment_yaml = g->e->yaml_text,
                          .omp_threads = engine_threads()};
    if (g->mode->fresh && g->mode->only) {
        oa.reset = selected_run;
        oa.reset_ctx = &selection;
    } else {
        oa.fresh = g->mode->fresh;
    }
    g->rf = results_open_args(&oa, err, errlen);
    if (!g->rf) return oa.busy ? 3 : 1;
    if (g->mode->fresh && g->mode->only)
        fprintf(stderr, "cyclebnn: --fresh --only: the %d selected run%s start%s over; the file's other runs are kept\n",
                g->nsel, g->nsel == 1 ? "" : "s", g->nsel == 1 ? "s" : "");
    return 0;
}

/* Every run of the file is checked before anything trains: a changed
 * configuration under an existing name would mix two experiments. 0, or 2
 * (the exit status) after saying which runs changed. */
static int grid_check_configs(Grid *g) {
    int refused = 0;
    for (int k = 0; k < g->e->n_runs; k++) {
        RunInfo ri;
        results_run_info(g->rf, g->e->runs[k].name, &ri);
        char diff[1024];
        if (ri.exists && config_changed(ri.config, &g->e->runs[k].c, diff, sizeof diff)) {
            fprintf(stderr, "cyclebnn: run '%s' in %s was trained with another configuration: %s.\n",
                    g->e->runs[k].name, g->path, diff);
            refused = 1;
        }
        run_info_free(&ri);
    }
    if (!refused) return 0;
    fprintf(stderr, "cyclebnn: nothing was run. Start over with --fresh, give the changed runs other names, "
                    "or use another --results directory.\n");
    return 2;
}

/* The whole grid is in the file (as pending runs) before the first trains;
 * a file that already lists every run is not republished here, only at the
 * next checkpoint or run end (or the final close). Serialises every run's
 * YAML, once. 0 or -1. */
static int grid_declare(Grid *g, char *err, size_t errlen) {
    int declared = 0, failed = 0;
    g->yaml = calloc((size_t)g->e->n_runs, sizeof *g->yaml);
    if (!g->yaml) return snprintf(err, errlen, "out of memory"), -1;
    for (int k = 0; k < g->e->n_runs && !failed; k++) {
        g->yaml[k] = config_to_yaml(&g->e->runs[k].c);
        const int rc = g->yaml[k] ? results_run_declare(g->rf, g->e->runs[k].name, g->yaml[k]) : -1;
        if (rc < 0) failed = 1;
        else declared += rc;
    }
    if (failed) snprintf(err, errlen, "declaring the runs in %s failed", g->path);
    if ((declared || failed) && results_commit(g->rf, err, errlen)) return -1;
    return failed ? -1 : 0;
}

/* iterations of the selected runs, for the grid's ETA */
static void grid_iterations(Grid *g) {
    g->iters = calloc((size_t)g->nsel, sizeof *g->iters);
    for (int k = 0; k < g->nsel && g->iters; k++) {
        const RunConfig *c = &g->e->runs[g->sel[k]].c;
        DatasetShape ds;
        long n;
        if (data_shape_from_config(c, &ds, &n) == 0) g->iters[k] = train_total_iterations(c, n);
    }
}

/* 1 when selected run k trains now; 0 when its status says to skip it */
static int grid_should_train(Grid *g, int k) {
    const RunSpec *run = &g->e->runs[g->sel[k]];
    RunInfo ri;
    results_run_info(g->rf, run->name, &ri);
    int train = 1;
    if (!strcmp(ri.status, "complete")) {
        fprintf(stderr, "== run %d/%d %s: complete, skipped (--fresh starts over)\n", k + 1, g->nsel, run->name);
        g->n_skipped++;
        train = 0;
    } else if (!strcmp(ri.status, "failed") && g->mode->retry_failed) {
        fprintf(stderr, "== run %d/%d %s: failed earlier (%s); retried (--retry-failed)%s\n", k + 1, g->nsel,
                run->name, ri.message, ri.checkpoint_step > 0 ? ", from its last checkpoint" : "");
    } else if (!strcmp(ri.status, "failed")) {
        fprintf(stderr, "== run %d/%d %s: failed earlier (%s), skipped (--retry-failed trains it again from "
                        "its last checkpoint, --fresh --only '%s' starts it over)\n",
                k + 1, g->nsel, run->name, ri.message, run->name);
        g->n_failed++;
        g->exit_code = 1;
        train = 0;
    }
    /* a resume is bitwise an uninterrupted run only within one build: say so when the build changed */
    if (train && ri.checkpoint_step > 0 && strcmp(ri.git_revision, CBNN_GIT_REV) != 0)
        fprintf(stderr,
                "cyclebnn: warning: run %s was started by %s%s and resumes from step %ld with build %s: the "
                "steps from there on follow this build's arithmetic, so its numbers can differ from an "
                "uninterrupted run of either build (--fresh starts it over)\n",
                run->name, *ri.git_revision ? "build " : "a build that did not record its revision",
                ri.git_revision, ri.checkpoint_step, CBNN_GIT_REV);
    run_info_free(&ri);
    return train;
}

/* Train selected run k. 0 to go on with the grid, -1 to stop it (the data
 * or the results file failed; the exit status is set). */
static int grid_train_one(Grid *g, int k) {
    const RunSpec *run = &g->e->runs[g->sel[k]];
    char err[2048] = "";
    RunConfig c = run->c;
    if (g->threads > 0) c.threads = g->threads;
    if (!detect_config(&c) && load_dataset(&g->dc, &c, err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s: run %s: %s\n", g->e->path, run->name, err);
        g->exit_code = 1;
        return -1;
    }
    RunLog *log = results_run_begin(g->rf, run->name, g->yaml[g->sel[k]]);
    if (!log) {
        fprintf(stderr, "cyclebnn: cannot start run %s in %s\n", run->name, g->path);
        g->exit_code = 1;
        return -1;
    }
    TrainControl ctl = {.checkpoint_every = c.checkpoint_interval, .resume = 1, .run_index = k + 1,
                        .n_runs = g->nsel};
    for (int j = k + 1; j < g->nsel && g->iters; j++) ctl.grid_iters_after += (double)g->iters[j];
    TrainResult res;
    const int rc = detect_config(&c) ? detect_run(&c, run->name, log, &ctl, stderr, &res, err, sizeof err)
                                     : train_run_ctl(&c, run->name, &g->dc.train, &g->dc.test, log, &ctl, stderr,
                                                     &res, err, sizeof err);
    if (rc < 0 && *results_error(g->rf)) {
        /* the results file itself failed (disk full, ...): nothing more can be saved */
        fprintf(stderr, "cyclebnn: run %s: %s\n", run->name, err); /* the file's error is printed already */
        results_close(g->rf, 0, err, sizeof err);
        g->rf = NULL;
        fprintf(stderr, "cyclebnn: %s keeps its last checkpoint; rerun the same command to resume once the "
                        "problem is fixed\n", g->path);
        g->exit_code = 1;
        return -1;
    }
    if (rc < 0) fprintf(stderr, "cyclebnn: run %s failed: %s (the grid continues)\n", run->name, err);
    static const Dataset voc = {.name = "voc"};
    if (detect_config(&c)) run_record_end(log, rc, &res, err, &voc, &voc);
    else run_record_end(log, rc, &res, err, &g->dc.train, &g->dc.test);
    if (rc == 0) g->n_done++;
    else if (rc == 1) g->exit_code = 130;
    else {
        g->n_failed++;
        g->exit_code = 1;
    }
    if (results_commit(g->rf, err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        results_close(g->rf, 0, err, sizeof err);
        g->rf = NULL;
        g->exit_code = 1;
        return -1;
    }
    if (rc == 1)
        fprintf(stderr, "cyclebnn: interrupted at step %ld of run %s; rerun the same command to resume\n",
                res.iterations, run->name);
    return 0;
}

/* the results table of the selection, then close (and publish) the file */
static void grid_report(Grid *g, double t_grid) {
    char err[2048] = "";
    print_table_header();
    for (int k = 0; k < g->nsel; k++) {
        RunInfo ri;
        results_run_info(g->rf, g->e->runs[g->sel[k]].name, &ri);
        print_table_row(g->e->runs[g->sel[k]].name, &ri);
        run_info_free(&ri);
    }
    char wall[32];
    format_duration(wall, sizeof wall, now_seconds() - t_grid);
    printf("%d trained, %d skipped as complete, %d failed; %s this session\n", g->n_done, g->n_skipped, g->n_failed,
           wall);
    if (results_close(g->rf, 1, err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        g->exit_code = 1;
    }
    g->rf = NULL;
    printf("results: %s\n", g->path);
}

static void grid_free(Grid *g) {
    char err[512];
    if (g->rf) results_close(g->rf, 0, err, sizeof err);
    if (g->dc.loaded) {
        dataset_free(&g->dc.train);
        dataset_free(&g->dc.test);
    }
    for (int k = 0; g->yaml && k < g->e->n_runs; k++) free(g->yaml[k]);
    free(g->yaml);
    free(g->iters);
}

/* Train the selected runs into path; returns the exit status. */
static int run_grid(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
                    const GridMode *mode) {
    Grid g = {.e = e, .sel = sel, .nsel = nsel, .path = path, .threads = threads, .mode = mode};
    char err[2048] = "";
    int rc = grid_open(&g, err, sizeof err);
    if (rc) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        return rc;
    }
    if ((rc = grid_check_configs(&g)) != 0 || (grid_declare(&g, err, sizeof err) && (rc = 1))) {
        if (rc == 1) fprintf(stderr, "cyclebnn: %s\n", err);
        grid_free(&g);
        return rc;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    grid_iterations(&g);
    const double t_grid = now_seconds();
    for (int k = 0; k < nsel && !train_stop_requested; k++)
        if (grid_should_train(&g, k) && grid_train_one(&g, k)) break;
    if (g.rf) {
        if (train_stop_requested && g.exit_code == 0) g.exit_code = 130;
        grid_report(&g, t_grid);
    }
    grid_free(&g);
    return g.exit_code;
}
