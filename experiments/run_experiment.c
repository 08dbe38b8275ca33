/* cyclebnn: run an experiment file.
 *
 *   build/cyclebnn [options] EXPERIMENT.yaml
 *
 * Loads and validates the YAML (nothing runs if it is wrong), loads the
 * dataset, trains the run, writes results/<experiment>.h5 (through a
 * temporary file: a killed run leaves the previous results untouched) and
 * prints a results table. `./run_experiment` is the wrapper that builds first
 * and resolves bare names against experiments/. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blas.h"
#include "config.h"
#include "datasets/dataset.h"
#include "results_h5.h"
#include "train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cyclebnn [options] EXPERIMENT.yaml\n"
            "\n"
            "Train the run(s) an experiment file describes and write results/<name>.h5.\n"
            "\n"
            "options:\n"
            "  --threads N       OpenMP/BLAS threads (overrides train.threads; default: all cores)\n"
            "  --results DIR     where the .h5 file goes (default: results)\n"
            "  --help-config     print every configuration key with its type, default and range\n"
            "  -h, --help        this help\n"
            "\n"
            "The experiment schema is documented in experiments/README.md; the results\n"
            "file's in results/README.md. Ctrl-C stops after the current step and writes\n"
            "the run as 'interrupted'.\n");
}

static void on_sigint(int sig) {
    (void)sig;
    if (train_stop_requested) _exit(130); /* second Ctrl-C: leave now (results stay as they were) */
    train_stop_requested = 1;
}

static int load_dataset(const RunConfig *c, Dataset *train, Dataset *test, char *err, size_t errlen) {
    if (!strcmp(c->dataset, "fashion_mnist")) {
        if (fashion_mnist_load(train, test, c->data_path, err, errlen)) return -1;
    } else {
        snprintf(err, errlen, "dataset '%s' has no loader yet", c->dataset);
        return -1;
    }
    dataset_truncate(train, c->train_subset);
    dataset_truncate(test, c->test_subset);
    return 0;
}

int main(int argc, char **argv) {
    int threads = -1;
    const char *results_dir = "results";
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"results", required_argument, 0, 'r'},
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
        case 'r': results_dir = optarg; break;
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
    if (experiment_load(&e, argv[optind], err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        return 2;
    }
    RunConfig c = e.base;
    if (threads > 0) c.threads = threads;

    Dataset train, test;
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    if (load_dataset(&c, &train, &test, err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s: %s\n", e.path, err);
        experiment_free(&e);
        return 1;
    }
    if (mkdir(results_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "cyclebnn: cannot create results directory '%s': %s\n", results_dir, strerror(errno));
        return 1;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.h5", results_dir, e.name);
    engine_set_threads(c.threads);
    ResultsFile *rf = results_create(path, e.name, e.yaml_text, engine_threads(), err, sizeof err);
    if (!rf) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        return 1;
    }
    char *resolved = config_to_yaml(&c);
    RunLog *log = results_run_begin(rf, e.name, resolved);
    free(resolved);
    signal(SIGINT, on_sigint);

    TrainResult res;
    int rc = train_run(&c, e.name, &train, &test, log, stderr, &res, err, sizeof err);
    const char *status = rc == 0 ? "complete" : rc == 1 ? "interrupted" : "failed";
    if (rc < 0) fprintf(stderr, "cyclebnn: run %s failed: %s\n", e.name, err);
    if (log) runlog_end(log, status, res.final_top1, res.best_top1, res.wall_time_s);
    if (results_close(rf, 1, err, sizeof err)) {
        fprintf(stderr, "cyclebnn: %s\n", err);
        rc = -1;
    }

    printf("\n%-24s %-12s %10s %10s %10s %12s %12s %8s %9s\n", "run", "status", "final top1", "best top1", "cost ratio",
           "bit-MACs", "fp32 MACs", "img/s", "wall");
    printf("%-24s %-12s %9.2f%% %9.2f%% %10.5f %12.3e %12.3e %8.0f %8.1fs\n", e.name, status, res.final_top1,
           res.best_top1, res.mean_cost_ratio, res.bit_macs, res.fp32_macs, res.images_per_s, res.wall_time_s);
    printf("results: %s\n", path);

    dataset_free(&train);
    dataset_free(&test);
    experiment_free(&e);
    return rc == 0 ? 0 : rc == 1 ? 130 : 1;
}
