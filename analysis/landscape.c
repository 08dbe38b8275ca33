/* cbnn_landscape: the loss landscape of a trained run (method.md 8, Li et al.
 * 2018), written back into its results file as /runs/<run>/landscape (2-D) or
 * /runs/<run>/landscape1d. The work is in landscape_core.c (landscape.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "landscape.h"
#include "cpu.h"
#include "progress.h"

/* binary ResNet-8 on Fashion-MNIST in eval mode, grid points over 2 threads, on this
 * project's 2-core machine: 51x51 x 1000 (+1000) images took 823 CPU-s (2026-12-05,
 * analysis/README.md), 3,160 images per CPU-second, so about 6,300/s on two free cores */
#define NOMINAL_IMG_PER_S 6300.0

static void usage(FILE *f) {
    fprintf(f,
            "usage: cbnn_landscape [options] RESULTS.h5 RUN\n"
            "\n"
            "Loss landscape of RUN's complete checkpoint (Li et al. 2018, filter-normalised random\n"
            "directions; method.md 8), written into RESULTS.h5 as /runs/RUN/landscape (columns alpha,\n"
            "beta, loss, top1, flips; row i*N+j is alpha_i, beta_j) or /runs/RUN/landscape1d.\n"
            "RUN must be complete (its checkpoint then holds the trained weights).\n"
            "\n"
            "options:\n"
            "  --grid N      N x N points over [-R, R]^2 (default 51; N points with --1d)\n"
            "  --range R     half-width of the grid (default 1)\n"
            "  --1d          a 1-D sweep along the first direction instead\n"
            "  --bits B      evaluation bit width (default: the run's own eval rule, prec_eval_bits\n"
            "                at the checkpoint's step)\n"
            "  --subset N    the first N images of the split (default 1000)\n"
            "  --split S     test (default), train (the images the run trained on; method.md 8 asks for\n"
            "                the training loss) or val (its data.val_split hold-out)\n"
            "  --seed S      the directions' seed (default 1)\n"
            "  --threads N   OpenMP threads over grid points (default: OMP_NUM_THREADS / all cores)\n"
            "  --allow-unfinished  accept an interrupted, running or failed run: its last checkpoint is\n"
            "                evaluated and the table is marked unfinished = 1 (the figure says so)\n"
            "  --export-surface FILE  compute nothing: write RUN's stored landscape (2-D; with --1d the 1-D\n"
            "                one) as a surface file of tomgoldstein/loss-landscape, which its plot_2D.py,\n"
            "                plot_1D.py and h52vtp.py read: xcoordinates, ycoordinates, P_loss, P_acc\n"
            "                (float64, accuracy in percent, -1 = not computed), 2-D arrays (ny, nx) with x\n"
            "                fastest, P the split it was evaluated on (train or test: --surf_name test_loss\n"
            "                for a test-split landscape), plus attributes run, split, subset,\n"
            "                directions_seed, results_file, git_revision. Written as FILE.tmp, then renamed.\n"
            "  --surface-prefix P  with --export-surface: name the datasets P_loss / P_acc instead of by\n"
            "                the split (e.g. train, for plot_1D.py, which reads only train_loss; the\n"
            "                `split` attribute still says what was evaluated)\n"
            "  --help        this text\n"
            "\n"
            "Cost: grid^2 x subset image evaluations (+ subset for the origin); binary ResNet-8 on\n"
            "Fashion-MNIST runs about %.0f img/s on 2 free cores (from its CPU time), so 51x51 x 1000\n"
            "takes ~7 min there and 21x21 x 500 ~35 s; more on a loaded machine.\n",
            NOMINAL_IMG_PER_S);
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s ? s : "", &end, 10);
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "cbnn_landscape: %s needs an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s ? s : "", &end);
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "cbnn_landscape: %s needs a number in [%g, %g], got '%s'\n", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        fprintf(stderr, "cbnn_landscape: %s\n", cpu_env_error());
        return 2;
    }
    LandscapeOptions o;
    landscape_defaults(&o);
    o.progress = stderr;
    const char *pos[2] = {NULL, NULL};
    const char *surface = NULL, *prefix = NULL, *compute_opt = NULL;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long lv;
        if (!strcmp(a, "--export-surface") || !strcmp(a, "--surface-prefix")) {
            if (!v || !*v) {
                fprintf(stderr, "cbnn_landscape: %s needs a value\n", a);
                return 2;
            }
            if (a[2] == 'e') surface = v;
            else prefix = v;
            i++;
            continue;
        }
        if (strcmp(a, "--1d") && strcmp(a, "--allow-unfinished") && a[0] == '-' && a[1] == '-') compute_opt = a;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--grid")) {
            if (parse_long(a, v, 1, 10000, &lv)) return 2;
            o.grid_n = (int)lv;
            i++;
        } else if (!strcmp(a, "--range")) {
            if (parse_double(a, v, 1e-12, 1e12, &o.range)) return 2;
            i++;
        } else if (!strcmp(a, "--allow-unfinished")) {
            o.allow_unfinished = 1;
        } else if (!strcmp(a, "--1d")) {
            o.one_d = 1;
        } else if (!strcmp(a, "--bits")) {
            if (parse_double(a, v, 0, 32, &o.bits)) return 2;
            if (o.bits != floor(o.bits)) {
                fprintf(stderr, "cbnn_landscape: --bits needs a whole number of bits, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--subset")) {
            if (parse_long(a, v, 1, 100000000, &o.subset)) return 2;
            i++;
        } else if (!strcmp(a, "--split")) {
            if (!v || (strcmp(v, "test") && strcmp(v, "train") && strcmp(v, "val"))) {
                fprintf(stderr, "cbnn_landscape: --split is test, train or val, got '%s'\n", v ? v : "");
                return 2;
            }
            o.split = !strcmp(v, "train") ? LANDSCAPE_TRAIN : !strcmp(v, "val") ? LANDSCAPE_VAL : LANDSCAPE_TEST;
            i++;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v ? v : "", &end, 10);
            if (!v || !*v || *end || errno || v[0] == '-') {
                fprintf(stderr, "cbnn_landscape: --seed needs a non-negative integer, got '%s'\n", v ? v : "");
                return 2;
            }
            o.seed = (uint64_t)s;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (parse_long(a, v, 1, 1024, &lv)) return 2;
            o.threads = (int)lv;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cbnn_landscape: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "cbnn_landscape: too many arguments ('%s'); usage: cbnn_landscape [options] RESULTS.h5 RUN\n",
                    a);
            return 2;
        }
    }
    if (npos != 2) {
        usage(stderr);
        return 2;
    }
    const char *path = pos[0], *run = pos[1];
    char err[2048] = "";
    if (prefix && !surface) {
        fprintf(stderr, "cbnn_landscape: --surface-prefix goes with --export-surface FILE\n");
        return 2;
    }
    if (surface) {
        if (compute_opt) {
            fprintf(stderr, "cbnn_landscape: %s computes a landscape, --export-surface only exports the one stored "
                    "in %s: run them as two commands\n", compute_opt, path);
            return 2;
        }
        LandscapeSurfaceInfo si;
        if (landscape_export_surface(path, run, o.one_d, prefix, surface, &si, err, sizeof err)) {
            fprintf(stderr, "cbnn_landscape: %s\n", err);
            return 1;
        }
        if (o.one_d)
            printf("written: %s (%s, %s: %ld points, %ld computed; split %s) from %s /runs/%s/landscape1d\n", surface,
                   si.names[0], si.names[1], si.nx, si.filled, si.split, path, run);
        else
            printf("written: %s (%s, %s: %ld x %ld, ycoordinates x xcoordinates, x fastest; %ld computed; split %s) "
                   "from %s /runs/%s/landscape\n", surface, si.names[0], si.names[1], si.ny, si.nx, si.filled,
                   si.split, path, run);
        return 0;
    }
    LandscapeRun r;
    if (landscape_read_run(path, run, &r, err, sizeof err)) {
        fprintf(stderr, "cbnn_landscape: %s\n", err);
        return 1;
    }
    /* refused before the data is loaded and the grid computed, not only when writing */
    if (landscape_check_status(path, run, r.status, r.step, o.allow_unfinished, err, sizeof err)) {
        fprintf(stderr, "cbnn_landscape: %s\n", err);
        landscape_run_free(&r);
        return 1;
    }
    if (strcmp(r.status, "complete"))
        fprintf(stderr, "cbnn_landscape: warning: run '%s' in %s is %s, not complete (--allow-unfinished): the table "
                "is marked unfinished = 1, of the checkpoint at step %ld\n", run, path, r.status, r.step);
    Dataset train, val, test;
    if (landscape_load_data(&r.c, &train, &val, &test, err, sizeof err)) {
        fprintf(stderr, "cbnn_landscape: run '%s' in %s: %s\n", run, path, err);
        landscape_run_free(&r);
        return 1;
    }
    const Dataset *ds = o.split == LANDSCAPE_TRAIN ? &train : o.split == LANDSCAPE_VAL ? &val : &test;
    if (ds->n < 1) {
        fprintf(stderr, "cbnn_landscape: run '%s' in %s: its %s split is empty%s\n", run, path,
                landscape_split_name(o.split),
                o.split == LANDSCAPE_VAL ? " (it holds out no validation images: data.val_split 0)" : "");
        dataset_free(&train);
        dataset_free(&val);
        dataset_free(&test);
        landscape_run_free(&r);
        return 1;
    }
    const long subset = o.subset > ds->n ? ds->n : o.subset;
    const long npts = o.one_d ? o.grid_n : (long)o.grid_n * o.grid_n;
    char est[32];
    format_duration(est, sizeof est, (double)(npts + 1) * subset / NOMINAL_IMG_PER_S);
    char rule[256];
    double bits = landscape_eval_bits(&r.c, r.step, train.n, o.bits, rule, sizeof rule);
    fprintf(stderr,
            "cbnn_landscape: run %s of %s (%s, %s convs, checkpoint at step %ld)\n"
            "  %s %ld points over [-%g, %g]%s x %ld %s images%s = %.3g image evaluations (~%s at %.0f img/s)\n"
            "  bits %g (%s), directions seed %llu (%s)\n",
            run, path, r.c.arch, config_enum_name("model.conv", r.c.conv), r.step, o.one_d ? "1-D" : "2-D", npts, o.range, o.range,
            o.one_d ? "" : "^2", subset, o.split == LANDSCAPE_TRAIN ? "training" : o.split == LANDSCAPE_VAL ? "validation" : "test",
            subset < o.subset ? " (all there are)" : "", (double)(npts + 1) * subset, est, NOMINAL_IMG_PER_S, bits,
            rule, (unsigned long long)o.seed, LANDSCAPE_DIRECTIONS);
    LandscapeTable t;
    int rc = landscape_compute(&r, &train, &val, &test, &o, &t, err, sizeof err);
    if (rc) {
        fprintf(stderr, "cbnn_landscape: run '%s' in %s: %s\n", run, path, err);
    } else {
        long imin = 0, imax = 0;
        int64_t fmax = 0;
        for (long k = 0; k < t.n_rows; k++) {
            if (t.loss[k] < t.loss[imin]) imin = k;
            if (t.loss[k] > t.loss[imax]) imax = k;
            if (t.flips[k] > fmax) fmax = t.flips[k];
        }
        char took[32];
        format_duration(took, sizeof took, t.seconds);
        const double ips = t.seconds > 0 ? (double)(t.n_rows + 1) * t.subset / t.seconds : 0;
        if (o.one_d) {
            printf("landscape1d of %s: loss at origin %.6f (top-1 %.2f%%), min %.6f at alpha %g, max %.6f at alpha %g; "
                   "max flips %lld of %ld binary weights; %ld points x %ld images in %s (%.0f img/s, %d threads)\n",
                   run, t.origin_loss, t.origin_top1, t.loss[imin], t.alpha[imin], t.loss[imax], t.alpha[imax],
                   (long long)fmax, t.n_binary_weights, t.n_rows, t.subset, took, ips, t.threads);
        } else {
            printf("landscape of %s: loss at origin %.6f (top-1 %.2f%%), min %.6f at (%g, %g), max %.6f at (%g, %g); "
                   "max flips %lld of %ld binary weights; %ld points x %ld images in %s (%.0f img/s, %d threads)\n",
                   run, t.origin_loss, t.origin_top1, t.loss[imin], t.alpha[imin], t.beta[imin], t.loss[imax],
                   t.alpha[imax], t.beta[imax], (long long)fmax, t.n_binary_weights, t.n_rows, t.subset, took, ips,
                   t.threads);
        }
        rc = landscape_write(path, &r, &o, &t, err, sizeof err);
        if (rc) fprintf(stderr, "cbnn_landscape: %s\n", err);
        else printf("written: %s /runs/%s/%s\n", path, run, o.one_d ? "landscape1d" : "landscape");
        landscape_table_free(&t);
    }
    dataset_free(&train);
    dataset_free(&val);
    dataset_free(&test);
    landscape_run_free(&r);
    return rc ? 1 : 0;
}
