/* cyclebnn: run an experiment file.
 *
 *   build/cyclebnn [options] EXPERIMENT.yaml
 *   mpirun -np N build/cyclebnn [--ranks-per-run K] [options] EXPERIMENT.yaml
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
 * is the wrapper that builds first and resolves bare names against experiments/.
 *
 * Over MPI ranks (issue 15 (a)): the N ranks form N/K groups of K consecutive
 * ranks; each group trains one run at a time in the run's own part file,
 * results/<experiment>.parts/<run>.h5 (experiments/parts.h), written by the
 * group's rank 0. There is no coordinator: a group walks the grid in order
 * and trains the first run whose part it can lock without waiting (a run
 * complete, failed, or locked by another group is passed over), so groups
 * balance themselves, and independent sessions (Slurm job-array tasks,
 * --max-runs) share a grid the same way. World rank 0 alone writes
 * results/<experiment>.h5: it declares the grid before the groups start and
 * merges the complete parts into it (after each of its own runs, and once
 * all groups are done). A one-process session without --max-runs trains into
 * results/<experiment>.h5 as it always did; it merges the parts it finds
 * first and resumes a run that has one in its part. */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
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
#include "dist.h"
#include "fingerprint.h"
#include "parts.h"
#include "progress.h"
#include "results_h5.h"
#include "seed_table.h"
#include "run_record.h"
#include "detect_run.h"
#include "dry_run.h"
#include "train_run.h"


static void usage(FILE *f) {
    fprintf(f,
            "usage: cyclebnn [options] EXPERIMENT.yaml\n"
            "       mpirun -np N cyclebnn [--ranks-per-run K] [options] EXPERIMENT.yaml\n"
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
            "  --nodes N --cores M  with --dry-run: estimate for N nodes of M cores\n"
            "                    (bench/README.md's cost model; --machine FILE: its figures)\n"
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
            "over MPI ranks (mpirun/srun; experiments/README.md 'On a cluster'):\n"
            "  --ranks-per-run K the ranks train in groups of K (K divides the ranks; default\n"
            "                    1), each group one run at a time, in the run's part file\n"
            "                    results/<name>.parts/<run>.h5, merged into results/<name>.h5\n"
            "  --max-runs M      each group trains at most M runs, then stops (Slurm job\n"
            "                    arrays: --max-runs 1); always trains in part files\n"
            "  --merge           only merge the complete part files into results/<name>.h5\n"
            "                    and print the table\n"
            "  --stall-timeout S a rank waiting more than S seconds for the others names\n"
            "                    them and aborts the job (default 600; 0: wait for ever)\n"
            "\n"
            "Ctrl-C (or SIGTERM, SIGHUP, SIGUSR1) stops after the current step, writes a\n"
            "checkpoint and marks the run 'interrupted'; a second one leaves at once (the\n"
            "results file keeps its last checkpoint). The experiment schema is documented in\n"
            "experiments/README.md, the results file's in results/README.md.\n"
            "\n"
            "exit status: 0 all selected runs complete, 1 a run failed or an error,\n"
            "2 bad usage or configuration (or ranks that differ), 3 the results file is in\n"
            "use by another session (nothing was done), 130 interrupted.\n");
}

static void on_signal(int sig) {
    (void)sig;
    if (train_stop_requested) _exit(130); /* second Ctrl-C: leave now (results keep their last commit) */
    train_stop_requested = 1;
}

/* SIGUSR1 too: Slurm's --signal=USR1@T announces the end of the time limit */
static void catch_stop_signals(void) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGUSR1, on_signal);
}

/* the loaded dataset, kept while consecutive runs share it */
typedef struct {
    int loaded;
    char dataset[CFG_STR], path[CFG_PATH];
    long train_subset, test_subset;
    int image_size, skip_bad;
    double val_split;
    uint64_t split_seed;
    Dataset train, val, test;    /* val: the validation hold-out (n = 0: none) */
} DataCache;

static int load_dataset(DataCache *dc, const RunConfig *c, char *err, size_t errlen) {
    if (dc->loaded && !strcmp(dc->dataset, c->dataset) && !strcmp(dc->path, c->data_path) &&
        dc->train_subset == c->train_subset && dc->test_subset == c->test_subset &&
        dc->image_size == c->image_size && dc->skip_bad == c->skip_bad && dc->val_split == c->val_split &&
        dc->split_seed == c->split_seed)
        return 0;
    if (dc->loaded) {
        dataset_free(&dc->train);
        dataset_free(&dc->val);
        dataset_free(&dc->test);
        dc->loaded = 0;
    }
    if (data_from_config_split(c, &dc->train, &dc->val, &dc->test, err, errlen)) return -1;
    dc->val_split = c->val_split;
    dc->split_seed = c->split_seed;
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
    printf("\n%-26s %-9s %8s %8s %8s %10s %9s %10s %10s %10s %7s\n", "run", "status", "val@sel", "sel step",
           "test@sel", "final test", "fixed", "best test*", "cost ratio", "bit-MACs", "wall");
}

static void print_table_legend(void) {
    printf("val@sel: the best validation top-1, at step 'sel step' (the selected checkpoint); test@sel: its test top-1,"
           " the number to report;\nfinal test: the final weights' test top-1; fixed: the same at the fixed "
           "precision.eval_bits (cyclic runs);\nbest test*: the paper's metric, the best test evaluation: SELECTED ON "
           "TEST (with data.val_split 0 over every periodic evaluation)\n");
}

/* a number for the table, "-" where the run has none (NaN: not finished) */
static const char *cell(char *buf, size_t cap, const char *fmt, double v) {
    if (isfinite(v)) snprintf(buf, cap, fmt, v);
    else snprintf(buf, cap, "-");
    return buf;
}

static void print_table_row(const char *name, const RunInfo *ri) {
    char wall[32] = "-", v[32], st[32], ts[32], ft[32], fx[32], b[32], c[32], d[32];
    if (isfinite(ri->wall_time_s)) format_duration(wall, sizeof wall, ri->wall_time_s);
    printf("%-26s %-9s %8s %8s %8s %10s %9s %10s %10s %10s %7s\n", name, ri->status,
           cell(v, sizeof v, "%.2f%%", ri->val_top1_at_selected), cell(st, sizeof st, "%.0f", ri->selected_step),
           cell(ts, sizeof ts, "%.2f%%", ri->test_top1_at_selected), cell(ft, sizeof ft, "%.2f%%", ri->final_top1),
           cell(fx, sizeof fx, "%.2f%%", ri->final_test_top1_fixed), cell(b, sizeof b, "%.2f%%", ri->best_top1),
           cell(c, sizeof c, "%.5f", ri->mean_cost_ratio), cell(d, sizeof d, "%.3e", ri->bit_macs), wall);
    if (!strcmp(ri->status, "failed") && ri->message[0]) printf("%-26s   %s\n", "", ri->message);
}

/* How run_grid treats what the results file already has. */
typedef struct {
    int fresh;          /* --fresh */
    int only;           /* --only was given: --fresh resets the selected runs alone */
    int retry_failed;   /* --retry-failed */
} GridMode;

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
    ResultsFile *rf;              /* results/<exp>.h5 while this process holds it */
    char **yaml;                  /* [e->n_runs] config_to_yaml of each run */
    long *iters;                  /* [nsel] iterations of each selected run (0: unknown) */
    DataCache dc;
    int exit_code, n_done, n_skipped, n_failed;
    int max_runs;                 /* --max-runs (0: no limit) */
    int prepared;                 /* --fresh is done: later opens of the file resume it */
} Grid;

static const char *P(void) { return dist_prefix(); }

/* open (or create) the results file; the exit status when it cannot be. A
 * file held by another session is waited for up to wait_s seconds (sessions
 * over part files hold it only to declare and merge). */
static int grid_open(Grid *g, double wait_s, char *err, size_t errlen) {
    Selection selection = {g->e, g->sel, g->nsel};
    ResultsOpenArgs oa = {.path = g->path, .experiment = g->e->name, .experiment_yaml = g->e->yaml_text,
                          .omp_threads = engine_threads()};
    const int fresh = g->mode->fresh && !g->prepared;
    if (fresh && g->mode->only) {
        oa.reset = selected_run;
        oa.reset_ctx = &selection;
    } else {
        oa.fresh = fresh;
    }
    const double t0 = now_seconds();
    while (!(g->rf = results_open_args(&oa, err, errlen)) && oa.busy && now_seconds() - t0 < wait_s) sleep(1);
    if (!g->rf) return oa.busy ? 3 : 1;
    if (fresh && g->mode->only)
        fprintf(stderr, "%s: --fresh --only: the %d selected run%s start%s over; the file's other runs are kept\n",
                P(), g->nsel, g->nsel == 1 ? "" : "s", g->nsel == 1 ? "s" : "");
    return 0;
}

/* 1 when a file (a part) is there */
static int exists(const char *path) { return access(path, F_OK) == 0; }

/* --fresh: the part files of the runs that start over go too (all of them
 * without --only), each under its lock. 0, 3 when one is being trained by
 * another session, 1 on an error. */
static int grid_fresh_parts(Grid *g) {
    if (!g->mode->fresh) return 0;
    char dir[1024], err[2048] = "", **paths;
    int n;
    if (parts_dir(g->path, dir, sizeof dir) || parts_list(dir, &paths, &n, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), *err ? err : "path too long");
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char name[1024];
        const char *base = strrchr(paths[i], '/') + 1;
        /* --only: a part goes when it is one of the selected runs' (by its file name) */
        int go = !g->mode->only;
        for (int k = 0; k < g->nsel && !go; k++) {
            char mine[1200];
            go = !part_path(g->path, g->e->runs[g->sel[k]].name, mine, sizeof mine) && !strcmp(mine, paths[i]);
        }
        if (!go) continue;
        const int r = results_remove_part(paths[i], err, sizeof err);
        if (r == 1) {
            fprintf(stderr, "%s: %s is being trained by another session (%s); nothing was run\n", P(), paths[i], err);
            rc = 3;
        } else if (r < 0) {
            fprintf(stderr, "%s: removing %s: %s\n", P(), paths[i], err);
            rc = 1;
        } else if (!part_name_decode(base, name, sizeof name)) {
            fprintf(stderr, "%s: --fresh: the part of run %s is removed\n", P(), name);
        }
    }
    parts_list_free(paths, n);
    rmdir(dir);
    return rc;
}

/* the stored config of run k in rf (main file or a part) against the YAML's: 1 when it changed (said) */
static int run_config_refused(Grid *g, ResultsFile *rf, const char *where, int k) {
    RunInfo ri;
    results_run_info(rf, g->e->runs[k].name, &ri);
    char diff[1024];
    int refused = 0;
    if (ri.exists && config_changed(ri.config, &g->e->runs[k].c, diff, sizeof diff)) {
        fprintf(stderr, "%s: run '%s' in %s was trained with another configuration: %s.\n", P(), g->e->runs[k].name,
                where, diff);
        refused = 1;
    }
    run_info_free(&ri);
    return refused;
}

/* Every run of the file, and every part, is checked before anything trains:
 * a changed configuration under an existing name would mix two experiments.
 * 0, or 2 (the exit status) after saying which runs changed. */
static int grid_check_configs(Grid *g) {
    int refused = 0;
    for (int k = 0; k < g->e->n_runs; k++) {
        refused |= run_config_refused(g, g->rf, g->path, k);
        char pp[1200], err[512];
        if (part_path(g->path, g->e->runs[k].name, pp, sizeof pp) || !exists(pp)) continue;
        ResultsFile *pf = results_open_readonly(pp, err, sizeof err);
        if (!pf) continue; /* not a part of this experiment: the merge says so and keeps it */
        refused |= run_config_refused(g, pf, pp, k);
        results_close(pf, 0, err, sizeof err);
    }
    if (!refused) return 0;
    fprintf(stderr, "%s: nothing was run. Start over with --fresh, give the changed runs other names, "
                    "or use another --results directory.\n", P());
    return 2;
}

/* The whole grid is in the file (as pending runs) before the first trains;
 * a file that already lists every run is not republished here, only at the
 * next checkpoint or run end (or the final close). Serialises every run's
 * YAML, once. 0 or -1. */
static int grid_declare(Grid *g, char *err, size_t errlen) {
    int declared = 0, failed = 0;
    if (!g->yaml) g->yaml = calloc((size_t)g->e->n_runs, sizeof *g->yaml);
    if (!g->yaml) return snprintf(err, errlen, "out of memory"), -1;
    for (int k = 0; k < g->e->n_runs && !failed; k++) {
        if (!g->yaml[k]) g->yaml[k] = config_to_yaml(&g->e->runs[k].c);
        const int rc = g->yaml[k] ? results_run_declare(g->rf, g->e->runs[k].name, g->yaml[k]) : -1;
        if (rc < 0) failed = 1;
        else declared += rc;
    }
    if (failed) snprintf(err, errlen, "declaring the runs in %s failed", g->path);
    if ((declared || failed) && results_commit(g->rf, err, errlen)) return -1;
    return failed ? -1 : 0;
}

/* every run's YAML, without a file (the ranks that do not declare) */
static int grid_yaml(Grid *g) {
    if (g->yaml) return 0; /* declared: serialised then */
    g->yaml = calloc((size_t)g->e->n_runs, sizeof *g->yaml);
    for (int k = 0; g->yaml && k < g->e->n_runs; k++)
        if (!(g->yaml[k] = config_to_yaml(&g->e->runs[k].c))) return -1;
    return g->yaml ? 0 : -1;
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
                "%s: warning: run %s was started by %s%s and resumes from step %ld with build %s: the "
                "steps from there on follow this build's arithmetic, so its numbers can differ from an "
                "uninterrupted run of either build (--fresh starts it over)\n",
                P(), run->name, *ri.git_revision ? "build " : "a build that did not record its revision",
                ri.git_revision, ri.checkpoint_step, CBNN_GIT_REV);
    run_info_free(&ri);
    return train;
}

/* The end of a run in its file (the group's rank 0): its record and a
 * commit. 0 to go on, -1 when the file itself failed (it is closed, *rfp
 * NULL). */
static int grid_record_end(Grid *g, const char *run_name, ResultsFile **rfp, const char *where, RunLog *log, int rc,
                           const TrainResult *res, const RunConfig *c, const char *why) {
    char err[2048] = "";
    if (rc < 0 && *results_error(*rfp)) {
        /* the results file itself failed (disk full, ...): nothing more can be saved */
        fprintf(stderr, "%s: run %s: %s\n", P(), run_name, why); /* the file's error is printed already */
        results_close(*rfp, 0, err, sizeof err);
        *rfp = NULL;
        fprintf(stderr, "%s: %s keeps its last checkpoint; rerun the same command to resume once the "
                        "problem is fixed\n", P(), where);
        return -1;
    }
    if (rc < 0) fprintf(stderr, "%s: run %s failed: %s (the grid continues)\n", P(), run_name, why);
    static const Dataset voc = {.name = "voc"};
    if (detect_config(c)) run_record_end(log, rc, res, why, &voc, &voc);
    else run_record_end(log, rc, res, why, &g->dc.train, &g->dc.test);
    if (results_commit(*rfp, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        results_close(*rfp, 0, err, sizeof err);
        *rfp = NULL;
        return -1;
    }
    if (rc == 1)
        fprintf(stderr, "%s: interrupted at step %ld of run %s; rerun the same command to resume\n", P(),
                res->iterations, run_name);
    return 0;
}

/* Train selected run k into *rfp (the results file or the run's part; NULL
 * on the ranks of the group other than its rank 0, which train without a
 * log). 0 to go on with the grid, -1 to stop it (the data or the results
 * file failed; the exit status is set; a failed *rfp is closed and NULL).
 * Every rank of the group returns the same. */
static int grid_train_into(Grid *g, int k, ResultsFile **rfp, const char *where, const DistComm *group) {
    const RunSpec *run = &g->e->runs[g->sel[k]];
    const int R = group ? group->size : 1;
    char err[2048] = "";
    RunConfig c = run->c;
    if (g->threads > 0) c.threads = g->threads;
    int bad = !detect_config(&c) && load_dataset(&g->dc, &c, err, sizeof err);
    if (bad) fprintf(stderr, "%s: %s: run %s: %s\n", P(), g->e->path, run->name, err);
    if (R > 1) bad = dist_any(group, bad);   /* every rank of the group reads the data */
    RunLog *log = NULL;
    if (!bad && *rfp) {
        log = results_run_begin(*rfp, run->name, g->yaml[g->sel[k]]);
        if (!log) fprintf(stderr, "%s: cannot start run %s in %s\n", P(), run->name, where);
        bad = !log;
    }
    if (R > 1) bad = dist_any(group, bad);
    if (bad) {
        g->exit_code = 1;
        return -1;
    }
    TrainControl ctl = {.checkpoint_every = c.checkpoint_interval, .resume = 1, .run_index = k + 1,
                        .n_runs = g->nsel, .group = group, .val = &g->dc.val};
    for (int j = k + 1; j < g->nsel && g->iters; j++) ctl.grid_iters_after += (double)g->iters[j];
    TrainResult res;
    const int rc = detect_config(&c) ? detect_run(&c, run->name, log, &ctl, stderr, &res, err, sizeof err)
                                     : train_run_ctl(&c, run->name, &g->dc.train, &g->dc.test, log, &ctl, stderr,
                                                     &res, err, sizeof err);
    int go = 0;
    if (*rfp) go = grid_record_end(g, run->name, rfp, where, log, rc, &res, &c, err);
    if (rc == 0) g->n_done++;
    else if (rc == 1) g->exit_code = 130;
    else if (go == 0) {
        g->n_failed++;
        g->exit_code = 1;
    }
    if (R > 1) dist_bcast(group, &go, sizeof go, 0); /* rank 0 saw the file */
    if (go) g->exit_code = 1;
    return go;
}

/* ------------------------------------------------------------ part files */

/* Claim selected run k for this group (its rank 0): lock its part without
 * waiting and decide from what the part, or else the results file (`view`:
 * this process's open one, or NULL to read the last published one), says.
 * 1 = claimed (*pf open, the run's state in it: from an earlier part, or
 * copied from the results file's checkpoint), 0 = not this run (complete,
 * failed, or locked by another group; said when `say`), -1 = an error (said). */
static int grid_claim_run(Grid *g, int k, ResultsFile *view, int say, ResultsFile **pf) {
    const RunSpec *run = &g->e->runs[g->sel[k]];
    char pp[1200], err[2048] = "";
    *pf = NULL;
    if (part_path(g->path, run->name, pp, sizeof pp)) {
        fprintf(stderr, "%s: the part file of run %s: path too long\n", P(), run->name);
        return -1;
    }
    ResultsOpenArgs oa = {.path = pp, .experiment = g->e->name, .experiment_yaml = g->e->yaml_text,
                          .omp_threads = engine_threads()};
    ResultsFile *rf = results_open_args(&oa, err, sizeof err);
    if (!rf) {
        if (oa.busy && say)
            fprintf(stderr, "== run %d/%d %s: being trained by another session (it holds %s.lock), skipped\n", k + 1,
                    g->nsel, run->name, pp);
        if (oa.busy) return 0;
        fprintf(stderr, "%s: %s\n", P(), err);
        return -1;
    }
    /* the lock is ours: what the part holds is final until we let it go. With
     * no run in it, a merge may have just moved it: read the results file now */
    RunInfo pi, mi = {0};
    results_run_info(rf, run->name, &pi);
    ResultsFile *ro = NULL;
    if (!pi.exists && !view) ro = results_open_readonly(g->path, err, sizeof err);
    ResultsFile *src = pi.exists ? rf : view ? view : ro;
    if (src && src != rf) results_run_info(src, run->name, &mi);
    const RunInfo *st = pi.exists ? &pi : &mi;
    int take = 1;
    if (!strcmp(st->status, "complete")) {
        take = 0; /* trained: the merge takes it from here */
    } else if (!strcmp(st->status, "failed") && !g->mode->retry_failed) {
        if (say)
            fprintf(stderr, "== run %d/%d %s: failed earlier (%s), skipped (--retry-failed trains it again)\n", k + 1,
                    g->nsel, run->name, st->message);
        take = 0;
    } else if (!pi.exists && mi.exists && mi.checkpoint_step > 0) {
        /* started in the results file by a one-process session: go on from its checkpoint */
        if (results_copy_run(rf, src, run->name) || results_commit(rf, err, sizeof err)) {
            fprintf(stderr, "%s: run %s: copying its checkpoint into %s: %s\n", P(), run->name, pp,
                    results_error(rf));
            take = -1;
        }
    }
    run_info_free(&pi);
    run_info_free(&mi);
    if (ro) results_close(ro, 0, err, sizeof err);
    if (take != 1) {
        results_close(rf, 0, err, sizeof err);
        return take;
    }
    *pf = rf;
    return 1;
}

/* The first run this group can claim, in grid order (its rank 0): the
 * selected index with *pf open, -1 when there is none left, -2 on an error. */
static int grid_claim(Grid *g, ResultsFile **pf) {
    for (int k = 0; k < g->nsel; k++) {
        /* a run complete in the published results file is passed over without touching its part */
        char err[512];
        ResultsFile *ro = results_open_readonly(g->path, err, sizeof err);
        RunInfo ri = {0};
        if (ro) results_run_info(ro, g->e->runs[g->sel[k]].name, &ri);
        const int complete = ro && !strcmp(ri.status, "complete");
        if (ro) {
            run_info_free(&ri);
            results_close(ro, 0, err, sizeof err);
        }
        if (complete) continue;
        const int c = grid_claim_run(g, k, NULL, 0, pf);
        if (c < 0) return -2;
        if (c == 1) return k;
    }
    return -1;
}

/* Merge the complete parts into the results file, opened for it (world rank
 * 0 between runs: another session holding the file just means later). */
static void grid_merge_now(Grid *g, double wait_s) {
    char err[2048] = "";
    if (grid_open(g, wait_s, err, sizeof err)) return;
    if (parts_merge_all(g->rf, g->path, stderr, P(), NULL, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        g->exit_code = 1;
    }
    if (results_close(g->rf, 1, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        g->exit_code = 1;
    }
    g->rf = NULL;
}

/* ------------------------------------------------------------ the table */

/* What the table shows of a run: the results file's record, or, while its
 * part is not merged, the part's. */
static void grid_run_info(Grid *g, const char *name, RunInfo *ri) {
    results_run_info(g->rf, name, ri);
    char pp[1200], err[512];
    if (!strcmp(ri->status, "complete") || part_path(g->path, name, pp, sizeof pp) || !exists(pp)) return;
    ResultsFile *pf = results_open_readonly(pp, err, sizeof err);
    RunInfo pi;
    if (pf && results_run_info(pf, name, &pi) == 0 && pi.exists) {
        run_info_free(ri);
        *ri = pi;
    }
    if (pf) results_close(pf, 0, err, sizeof err);
}

/* the results table of the selection, then close (and publish) the file */
static void grid_report(Grid *g, double t_grid) {
    char err[2048] = "";
    print_table_header();
    for (int k = 0; k < g->nsel; k++) {
        RunInfo ri;
        grid_run_info(g, g->e->runs[g->sel[k]].name, &ri);
        print_table_row(g->e->runs[g->sel[k]].name, &ri);
        run_info_free(&ri);
    }
    print_table_legend();
    /* the statistics over seeds, per configuration: printed and into /stats */
    if (seed_table_write(g->rf, g->e, stdout, err, sizeof err)) {
        fprintf(stderr, "%s: writing the statistics: %s\n", P(), err);
        g->exit_code = 1;
    }
    char wall[32];
    format_duration(wall, sizeof wall, now_seconds() - t_grid);
    printf("%d trained, %d skipped as complete, %d failed; %s this session\n", g->n_done, g->n_skipped, g->n_failed,
           wall);
    if (results_close(g->rf, 1, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        g->exit_code = 1;
    }
    g->rf = NULL;
    printf("results: %s\n", g->path);
}

/* The tally of a session over part files, from the table: runs complete
 * that were not trained now were skipped; failed runs make the status 1. */
static void grid_tally_from_table(Grid *g) {
    int complete = 0, failed = 0;
    for (int k = 0; k < g->nsel; k++) {
        RunInfo ri;
        grid_run_info(g, g->e->runs[g->sel[k]].name, &ri);
        complete += !strcmp(ri.status, "complete");
        failed += !strcmp(ri.status, "failed");
        run_info_free(&ri);
    }
    g->n_skipped = complete > g->n_done ? complete - g->n_done : 0;
    g->n_failed = failed;
    if (failed) g->exit_code = 1;
}

static void grid_free(Grid *g) {
    char err[512];
    if (g->rf) results_close(g->rf, 0, err, sizeof err);
    if (g->dc.loaded) {
        dataset_free(&g->dc.train);
        dataset_free(&g->dc.test);
        dataset_free(&g->dc.val);
    }
    for (int k = 0; g->yaml && k < g->e->n_runs; k++) free(g->yaml[k]);
    free(g->yaml);
    free(g->iters);
}

/* ------------------------------------------------------------ one process */

/* Selected run k has a part left by a session over ranks: train it there
 * (from the part's checkpoint), then merge it. 0 to go on, -1 to stop. */
static int grid_train_leftover_part(Grid *g, int k) {
    ResultsFile *pf;
    const int c = grid_claim_run(g, k, g->rf, 1, &pf);
    if (c <= 0) {
        if (c < 0) g->exit_code = 1;
        return c;
    }
    char pp[1200], err[2048] = "";
    part_path(g->path, g->e->runs[g->sel[k]].name, pp, sizeof pp);
    fprintf(stderr, "== run %d/%d %s: goes on in its part file %s\n", k + 1, g->nsel, g->e->runs[g->sel[k]].name, pp);
    const int go = grid_train_into(g, k, &pf, pp, NULL);
    if (pf && results_close(pf, 1, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        g->exit_code = 1;
        return -1;
    }
    if (parts_merge_all(g->rf, g->path, stderr, P(), NULL, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        results_close(g->rf, 0, err, sizeof err);
        g->rf = NULL;
        g->exit_code = 1;
        return -1;
    }
    return go;
}

/* Open, check, merge the parts left over, declare: what every session does
 * to the results file before training (world rank 0 alone). 0 or the exit
 * status (said). */
static int grid_prepare(Grid *g, double wait_s, int quiet_busy) {
    char err[2048] = "";
    int rc = grid_open(g, wait_s, err, sizeof err);
    if (rc) {
        if (rc != 3 || !quiet_busy) fprintf(stderr, "%s: %s\n", P(), err);
        return rc;
    }
    if ((rc = grid_fresh_parts(g)) || (rc = grid_check_configs(g))) return rc;
    g->prepared = 1;
    if (parts_merge_all(g->rf, g->path, stderr, P(), NULL, err, sizeof err) || grid_declare(g, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        return 1;
    }
    return 0;
}

/* A job-array task (--max-runs) that found the results file held by another
 * session (declaring or merging): that session declares the grid; the
 * configurations are checked on what the file last published (if anything)
 * and on the parts, and the task trains in part files. 0, or the exit
 * status (said). */
static int grid_prepare_busy(Grid *g) {
    char err[2048] = "";
    if (g->mode->fresh) {
        fprintf(stderr, "%s: --fresh: %s is held by another session; nothing was run\n", P(), g->path);
        return 3;
    }
    /* no file yet: its first session is still declaring the grid */
    if (!(g->rf = results_open_readonly(g->path, err, sizeof err)) && exists(g->path)) {
        fprintf(stderr, "%s: %s is held by another session and cannot be read (%s); nothing was run\n", P(),
                g->path, err);
        return 3;
    }
    const int rc = grid_check_configs(g);
    if (g->rf) results_close(g->rf, 0, err, sizeof err);
    g->rf = NULL;
    if (!rc)
        fprintf(stderr, "%s: %s is held by another session (declaring or merging): this session trains in part "
                        "files and leaves the merge to the next session or --merge\n", P(), g->path);
    return rc;
}

/* Train the selected runs into path, one process; returns the exit status. */
static int run_grid(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
                    const GridMode *mode) {
    Grid g = {.e = e, .sel = sel, .nsel = nsel, .path = path, .threads = threads, .mode = mode};
    int rc = grid_prepare(&g, 0, 0);
    if (rc) {
        grid_free(&g);
        return rc;
    }
    catch_stop_signals();
    grid_iterations(&g);
    const double t_grid = now_seconds();
    for (int k = 0; k < nsel && !train_stop_requested && g.rf; k++) {
        char pp[1200];
        if (!part_path(path, e->runs[sel[k]].name, pp, sizeof pp) && exists(pp)) {
            if (grid_train_leftover_part(&g, k)) break;
        } else if (grid_should_train(&g, k) && grid_train_into(&g, k, &g.rf, g.path, NULL)) {
            break;
        }
    }
    if (g.rf) {
        if (train_stop_requested && g.exit_code == 0) g.exit_code = 130;
        grid_report(&g, t_grid);
    }
    grid_free(&g);
    return g.exit_code;
}

/* ------------------------------------------------------------ over ranks */

/* What each rank tells the others at the end. */
typedef struct {
    int32_t exit_code, n_done, is_group_root, pad;
} RankEnd;

/* the session's status from every rank's: a failure wins, then an interruption */
static int combine_exit(const RankEnd *all, int n) {
    int rc = 0;
    for (int r = 0; r < n; r++) {
        const int c = all[r].exit_code;
        if (c == 130 && rc == 0) rc = 130;
        else if (c != 0 && c != 130 && (rc == 0 || rc == 130)) rc = c;
    }
    return rc;
}

/* This group's share of the grid: claim, train, repeat (every rank of the
 * group; world rank 0 merges after each of its runs). */
static void grid_group_loop(Grid *g, const DistComm *group) {
    const int R = group->size, world0 = dist_world()->rank == 0;
    for (int trained = 0;; trained++) {
        int stop = train_stop_requested || (g->max_runs > 0 && trained >= g->max_runs);
        if (R > 1) stop = dist_any(group, stop);
        int k = -1;
        ResultsFile *pf = NULL;
        if (!stop && group->rank == 0) k = grid_claim(g, &pf);
        if (R > 1) dist_bcast(group, &k, sizeof k, 0);
        if (k < 0) {
            if (k == -2) g->exit_code = 1;
            return;
        }
        char pp[1200] = "", err[2048] = "";
        part_path(g->path, g->e->runs[g->sel[k]].name, pp, sizeof pp);
        if (group->rank == 0)
            fprintf(stderr, "%s: == run %d/%d %s: trained by ranks %d-%d in %s\n", P(), k + 1, g->nsel,
                    g->e->runs[g->sel[k]].name, dist_world()->rank, dist_world()->rank + R - 1, pp);
        const int go = grid_train_into(g, k, &pf, pp, group);
        if (pf && results_close(pf, 1, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", P(), err);
            g->exit_code = 1;
        }
        if (world0) grid_merge_now(g, 0);
        if (go) return;
    }
}

/* Train the selected runs over the session's ranks in groups of K (see the
 * top of this file); also a one-process session with --max-runs. */
static int run_grid_ranks(const ExperimentConfig *e, const int *sel, int nsel, const char *path, int threads,
                          const GridMode *mode, int K, int max_runs) {
    const DistComm *world = dist_world();
    Grid g = {.e = e, .sel = sel, .nsel = nsel, .path = path, .threads = threads, .mode = mode, .max_runs = max_runs};
    char err[2048] = "";
    /* rank 0 makes the results file list the grid before any group starts */
    int rc = 0;
    if (world->rank == 0) {
        rc = grid_prepare(&g, max_runs ? 5 : 60, max_runs > 0);
        if (g.rf && results_close(g.rf, 1, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", P(), err);
            if (!rc) rc = 1;
        }
        g.rf = NULL;
        if (rc == 3 && max_runs) rc = grid_prepare_busy(&g);
    }
    dist_bcast(world, &rc, sizeof rc, 0);
    if (!rc && grid_yaml(&g)) {
        fprintf(stderr, "%s: out of memory\n", P());
        dist_abort(world, 1);
    }
    DistComm group;
    if (!rc && dist_split(world, world->rank / K, world->rank % K, &group, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", P(), err);
        dist_abort(world, 1); /* a collective: the others are in it */
    }
    if (rc) {
        grid_free(&g);
        return rc;
    }
    catch_stop_signals();
    grid_iterations(&g);
    const double t_grid = now_seconds();
    grid_group_loop(&g, &group);
    /* the other groups may train for hours yet: this wait is not a stall */
    const double stall = world->stall_timeout_s;
    dist_set_stall_timeout(1e9);
    dist_barrier(world);
    dist_set_stall_timeout(stall);
    RankEnd mine = {g.exit_code, g.n_done, group.rank == 0, 0}, *all = malloc(sizeof *all * (size_t)world->size);
    if (!all) dist_abort(world, 1);
    dist_allgather(world, &mine, sizeof mine, all);
    rc = combine_exit(all, world->size);
    if (world->rank == 0) {
        g.n_done = 0;
        for (int r = 0; r < world->size; r++) g.n_done += all[r].is_group_root ? all[r].n_done : 0;
        g.exit_code = 0;
        /* a job-array task (--max-runs) does not queue for the file: --merge or the next task merges */
        const int orc = grid_open(&g, max_runs ? 0 : 600, err, sizeof err);
        if (orc) {
            char dir[1024] = "";
            parts_dir(path, dir, sizeof dir);
            fprintf(stderr, "%s: %s; the complete parts stay in %s until the next session or --merge\n", P(), err,
                    dir);
            if (orc != 3 || !(g.rf = results_open_readonly(path, err, sizeof err))) g.exit_code = orc;
        } else if (parts_merge_all(g.rf, path, stderr, P(), NULL, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", P(), err);
            g.exit_code = 1;
        }
        if (g.rf) {
            grid_tally_from_table(&g);
            grid_report(&g, t_grid);
        }
        rc = combine_exit((RankEnd[]){{g.exit_code, 0, 0, 0}, {rc, 0, 0, 0}}, 2);
    }
    free(all);
    dist_bcast(world, &rc, sizeof rc, 0);
    dist_comm_free(&group);
    grid_free(&g);
    return rc;
}

/* --merge: the complete parts into the results file, and its table (world
 * rank 0; the others wait for its status). */
static int merge_only(const ExperimentConfig *e, const int *sel, int nsel, const char *path, const GridMode *mode) {
    const DistComm *world = dist_world();
    int rc = 0;
    if (world->rank == 0) {
        Grid g = {.e = e, .sel = sel, .nsel = nsel, .path = path, .mode = mode};
        const double t0 = now_seconds();
        rc = grid_prepare(&g, 60, 0);
        if (!rc) {
            grid_tally_from_table(&g);
            grid_report(&g, t0);
            rc = g.exit_code;
        }
        grid_free(&g);
    }
    dist_bcast(world, &rc, sizeof rc, 0);
    return rc;
}

/* ------------------------------------------------------------ the session */

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

typedef struct {
    int threads, dry, fresh, print_path, retry_failed, merge;
    int ranks_per_run, max_runs, nodes, cores;   /* 0: not given */
    double stall_timeout;                        /* < 0: not given */
    const char *results_dir, *only, *machine;
} Options;

/* An error met before the ranks compare notes: kept, printed once (by the
 * lowest rank that met it) after they did, so that no rank is left waiting. */
typedef struct {
    int status, show_usage;
    char msg[8192];
} Early;

static void early_fail(Early *x, int status, const char *fmt, ...) {
    if (x->status) return; /* the first one counts */
    x->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
}

static void early_print(const Early *x) {
    if (*x->msg) fprintf(stderr, "%s: %s\n", P(), x->msg);
    if (x->show_usage) usage(stderr);
}

static int int_option(const char *name, const char *arg, long lo, long hi, int *out, Early *x) {
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) {
        early_fail(x, 2, "%s expects an integer in [%ld, %ld], got '%s'", name, lo, hi, arg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The options into op. 1 when the session is over (--help printed), else 0
 * (errors in x). */
static int parse_options(int argc, char **argv, Options *op, Early *x) {
    const int talk = dist_world()->rank == 0;
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"results", required_argument, 0, 'r'},
                                         {"only", required_argument, 0, 'o'},
                                         {"dry-run", no_argument, 0, 'n'},
                                         {"fresh", no_argument, 0, 'f'},
                                         {"retry-failed", no_argument, 0, 'R'},
                                         {"print-results-path", no_argument, 0, 'p'},
                                         {"help-config", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {"ranks-per-run", required_argument, 0, 'K'},
                                         {"max-runs", required_argument, 0, 'M'},
                                         {"merge", no_argument, 0, 'm'},
                                         {"stall-timeout", required_argument, 0, 'S'},
                                         {"nodes", required_argument, 0, 'N'},
                                         {"cores", required_argument, 0, 'C'},
                                         {"machine", required_argument, 0, 'X'},
                                         {0, 0, 0, 0}};
    opterr = talk; /* getopt's own messages: once */
    int o;
    while (!x->status && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 't': int_option("--threads", optarg, 1, 1024, &op->threads, x); break;
        case 'r':
            /* an unset variable ($RESULTS) would put the file in / */
            if (!*optarg) early_fail(x, 2, "--results expects a directory, got an empty string");
            op->results_dir = optarg;
            break;
        case 'o': op->only = optarg; break;
        case 'n': op->dry = 1; break;
        case 'f': op->fresh = 1; break;
        case 'R': op->retry_failed = 1; break;
        case 'p': op->print_path = 1; break;
        case 'c':
            if (talk) config_print_schema(stdout);
            return 1;
        case 'h':
            if (talk) usage(stdout);
            return 1;
        case 'K': int_option("--ranks-per-run", optarg, 1, 1 << 20, &op->ranks_per_run, x); break;
        case 'M': int_option("--max-runs", optarg, 1, 1 << 30, &op->max_runs, x); break;
        case 'm': op->merge = 1; break;
        case 'S': {
            char *end;
            op->stall_timeout = strtod(optarg, &end);
            if (end == optarg || *end || !(op->stall_timeout >= 0) || op->stall_timeout > 1e9)
                early_fail(x, 2, "--stall-timeout expects seconds in [0, 1e9] (0: wait for ever), got '%s'", optarg);
            break;
        }
        case 'N': int_option("--nodes", optarg, 1, 1 << 20, &op->nodes, x); break;
        case 'C': int_option("--cores", optarg, 1, 1 << 16, &op->cores, x); break;
        case 'X': op->machine = optarg; break;
        default: x->status = 2, x->show_usage = 1; break;
        }
    }
    if (!x->status && optind != argc - 1) x->status = 2, x->show_usage = 1;
    if (!x->status && (op->nodes > 0) != (op->cores > 0)) early_fail(x, 2, "--nodes and --cores go together");
    if (!x->status && (op->nodes || op->machine) && !op->dry)
        early_fail(x, 2, "--nodes, --cores and --machine describe a cluster for --dry-run");
    if (!x->status && op->merge && (op->dry || op->max_runs || op->fresh || op->retry_failed))
        early_fail(x, 2, "--merge only merges: it goes without --dry-run, --max-runs, --fresh and --retry-failed");
    return 0;
}

/* the runs --only selects into sel (nsel of them); none is an error in x */
static void select_runs(const ExperimentConfig *e, const char *only, int *sel, int *nsel, Early *x) {
    *nsel = 0;
    for (int k = 0; k < e->n_runs; k++)
        if (name_matches(only, e->runs[k].name)) sel[(*nsel)++] = k;
    if (*nsel) return;
    char list[8192];
    size_t n = (size_t)snprintf(list, sizeof list, "--only '%s' matches none of the %d runs of %s:", only, e->n_runs,
                                e->path);
    for (int k = 0; k < e->n_runs && n < sizeof list; k++)
        n += (size_t)snprintf(list + n, sizeof list - n, "\n  %s", e->runs[k].name);
    early_fail(x, 2, "%s", list);
}

/* the options every rank must share, as text for the fingerprint */
static void options_text(const Options *op, char *out, size_t cap) {
    snprintf(out, cap, "K=%d max=%d merge=%d fresh=%d retry=%d dry=%d print=%d only=%s results=%s", op->ranks_per_run,
             op->max_runs, op->merge, op->fresh, op->retry_failed, op->dry, op->print_path, op->only ? op->only : "",
             op->results_dir);
}

/* everything after dist_init; the exit status */
static int session(int argc, char **argv) {
    const DistComm *world = dist_world();
    Options op = {.results_dir = "results", .stall_timeout = -1};
    Early x = {0};
    if (cpu_env_error()) /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        early_fail(&x, 2, "%s", cpu_env_error());
    else if (parse_options(argc, argv, &op, &x))
        return 0;
    if (op.stall_timeout >= 0) dist_set_stall_timeout(op.stall_timeout);
    char err[2048] = "";
    ExperimentConfig e = {0};
    int loaded = 0, nsel = 0, *sel = NULL;
    if (!x.status) {
        die_with_wrapper();
        if (experiment_load(&e, argv[optind], err, sizeof err)) early_fail(&x, 2, "%s", err);
        else loaded = 1;
    }
    if (loaded && !(sel = malloc(sizeof *sel * (size_t)(e.n_runs ? e.n_runs : 1)))) early_fail(&x, 1, "out of memory");
    if (sel) select_runs(&e, op.only, sel, &nsel, &x);
    const int K = op.ranks_per_run ? op.ranks_per_run : 1;
    for (int k = 0; k < nsel && K > 1 && !op.dry && !x.status; k++)
        if (detect_config(&e.runs[sel[k]].c))
            early_fail(&x, 2, "run %s is a detection run: those train on one rank (--ranks-per-run 1)",
                       e.runs[sel[k]].name);
    /* before any file opens, the ranks agree: same build, same experiment,
     * same options, and nobody met an error they would wait on for ever */
    int rc = x.status;
    if (world->size > 1) {
        char opts[4096];
        options_text(&op, opts, sizeof opts);
        Fingerprint fp;
        fingerprint_make(&fp, loaded ? &e : NULL, opts, x.status, x.msg);
        int speak = 0;
        rc = fingerprint_agree(world, &fp, stderr, &speak);
        if (x.status && speak) early_print(&x);
    } else if (rc) {
        early_print(&x);
    }
    /* (with --dry-run, K describes the cluster of the estimate, not this session) */
    if (!rc && !op.dry && !op.print_path && world->size % K) {
        if (world->rank == 0)
            fprintf(stderr, "%s: --ranks-per-run %d does not divide the %d ranks; nothing was run\n", P(), K,
                    world->size);
        rc = 2;
    }
    if (rc) {
        free(sel);
        experiment_free(&e);
        return rc;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.h5", op.results_dir, e.name);
    engine_set_threads(op.threads > 0 ? op.threads : e.base.threads);
    GridMode mode = {.fresh = op.fresh, .only = op.only != NULL, .retry_failed = op.retry_failed};
    if (op.print_path) {
        if (world->rank == 0) printf("%s\n", path);
    } else if (op.dry) {
        DryRunCluster cl = {.nodes = op.nodes, .cores = op.cores, .ranks_per_run = op.ranks_per_run,
                            .machine = op.machine};
        if (world->rank == 0) rc = dry_run(&e, sel, nsel, path, engine_threads(), op.nodes ? &cl : NULL);
    } else if (op.merge) {
        rc = merge_only(&e, sel, nsel, path, &mode);
    } else if (world->size > 1 || op.max_runs > 0) {
        rc = run_grid_ranks(&e, sel, nsel, path, op.threads, &mode, K, op.max_runs);
    } else {
        rc = run_grid(&e, sel, nsel, path, op.threads, &mode);
    }
    free(sel);
    experiment_free(&e);
    return rc;
}

int main(int argc, char **argv) {
    char err[512] = "";
    /* (without a launcher it starts no MPI: a one-process session is today's program) */
    if (dist_init(&argc, &argv, err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        return 2;
    }
    const int rc = session(argc, argv);
    fflush(stdout);
    dist_finalize();
    return rc;
}
