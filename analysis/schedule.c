/* cbnn_schedule: the engine's own precision schedule as a data file, for
 * plots/fig2_schedule.gp (the paper's Fig. 2).
 *
 *   cbnn_schedule [--bits MIN MAX] [--grad-bits MIN MAX] [--cycles N] [--epochs E]
 *                 [--iters-per-epoch K] [--batch B] [--warmup W] [--warmup-bits N]
 *                 [--every N | --all] [--out FILE]
 *
 * Nothing here re-implements the schedule: a RunConfig is filled with
 * config_defaults() and the options, the run's total iterations come from
 * train_total_iterations() and the schedule from prec_from_config(), exactly
 * as core/train.c builds them, and every row is prec_at() of that schedule.
 *
 * Defaults = the Fig. 2 caption's setting (method.md 2.2): 2-6 bits, 8-bit
 * errors, 8 cycles, 600 epochs. The caption gives epochs, not iterations; an
 * epoch is taken as the paper's CIFAR-10 one, 50,000 images at batch 16 =
 * 3,125 iterations (method.md 5.2), so I = 1,875,000 and P = 234,375.
 *
 * Output (whitespace columns, gnuplot `with steps`):
 *   # epoch iteration bits grad_bits
 * By default one row where the bits change (the first iteration at a new
 * width), plus the first and the last iteration, plus a closing row at
 * iteration I (epoch E, "end of training", carrying the last iteration's
 * bits) so that a step plot reaches the right edge. --every N writes every
 * N-th iteration instead (and the last one and the closing row); --all is
 * --every 1. The epoch column is iteration / K. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/precision.h"
#include "../experiments/engine_options.h"
#include "../experiments/config.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cbnn_schedule [options]\n"
            "Print the engine's cyclic precision schedule (core/precision.h, built like core/train.c does)\n"
            "as rows '# epoch iteration bits grad_bits' for gnuplot 'with steps'.\n"
            "  --bits MIN MAX          forward (weight/activation) bits range   (default 2 6)\n"
            "  --grad-bits MIN MAX     error bits range                         (default 8 8)\n"
            "  --cycles N              number of cycles N_cyc                   (default 8)\n"
            "  --epochs E              training length in epochs                (default 600)\n"
            "  --iters-per-epoch K     iterations per epoch (default 3125 = CIFAR-10's 50,000 images / batch 16)\n"
            "  --batch B               batch size, only used to size the epoch  (default 16)\n"
            "  --warmup W              schedule.cyclic_warmup: the first 4W iterations run at --warmup-bits (default 0)\n"
            "  --warmup-bits N         precision.warmup_bits (default 0 = no k-bit quantization)\n"
            "  --every N               one row every N iterations instead of one per change of bits\n"
            "  --all                   every iteration (--every 1)\n"
            "  --out FILE              write to FILE instead of standard output\n"
            "  -h, --help              this text\n"
            "Defaults = the paper's Fig. 2 caption: 2-6 bits, 8 cycles, 600 epochs (method.md 2.2).\n");
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

static void row(FILE *f, long it, long k, PrecBits b) {
    fprintf(f, "%.6f %ld %g %g\n", (double)it / (double)k, it, b.bits, b.grad_bits);
}

int main(int argc, char **argv) {
    long bmin = 2, bmax = 6, gmin = 8, gmax = 8, cycles = 8, k = 3125, batch = 16, warmup = 0, wbits = 0,
         every = 0;
    double epochs = 600;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int need = (!strcmp(a, "--bits") || !strcmp(a, "--grad-bits")) ? 2
                   : (!strcmp(a, "--cycles") || !strcmp(a, "--epochs") || !strcmp(a, "--iters-per-epoch") ||
                      !strcmp(a, "--batch") || !strcmp(a, "--warmup") || !strcmp(a, "--warmup-bits") ||
                      !strcmp(a, "--every") || !strcmp(a, "--out"))
                       ? 1
                       : 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--all")) {
            every = 1;
            continue;
        }
        if (!need) {
            fprintf(stderr, "cbnn_schedule: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (i + need >= argc) {
            fprintf(stderr, "cbnn_schedule: %s needs %d value%s\n", a, need, need > 1 ? "s" : "");
            return 2;
        }
        int bad = 0;
        if (!strcmp(a, "--bits"))
            bad = parse_long(argv[i + 1], 1, 32, &bmin) || parse_long(argv[i + 2], 1, 32, &bmax) || bmin > bmax;
        else if (!strcmp(a, "--grad-bits"))
            bad = parse_long(argv[i + 1], 1, 32, &gmin) || parse_long(argv[i + 2], 1, 32, &gmax) || gmin > gmax;
        else if (!strcmp(a, "--cycles"))
            bad = parse_long(argv[i + 1], 1, INT_MAX, &cycles);
        else if (!strcmp(a, "--epochs"))
            bad = parse_double(argv[i + 1], 1e-9, 1e9, &epochs);
        else if (!strcmp(a, "--iters-per-epoch"))
            bad = parse_long(argv[i + 1], 1, 1000000000L, &k);
        else if (!strcmp(a, "--batch"))
            bad = parse_long(argv[i + 1], 1, 65536, &batch);
        else if (!strcmp(a, "--warmup"))
            bad = parse_long(argv[i + 1], 0, 1000000000L, &warmup);
        else if (!strcmp(a, "--warmup-bits"))
            bad = parse_long(argv[i + 1], 0, 32, &wbits);
        else if (!strcmp(a, "--every"))
            bad = parse_long(argv[i + 1], 1, LONG_MAX, &every);
        else if (!strcmp(a, "--out"))
            out = argv[i + 1];
        if (bad) {
            fprintf(stderr, "cbnn_schedule: bad value for %s: '%s%s%s'\n", a, argv[i + 1], need > 1 ? " " : "",
                    need > 1 ? argv[i + 2] : "");
            return 2;
        }
        i += need;
    }

    /* the run configuration, as an experiment file would give it */
    RunConfig c;
    config_defaults(&c);
    c.prec_schedule = PREC_CYCLIC;
    c.bits.min = (int)bmin;
    c.bits.max = (int)bmax;
    c.grad_bits.min = (int)gmin;
    c.grad_bits.max = (int)gmax;
    c.prec_cycles = (int)cycles;
    c.cyclic_warmup = warmup;
    c.warmup_bits = (int)wbits;
    c.iterations = 0;
    c.epochs = epochs;
    c.batch_size = (int)batch;
    if ((double)k * (double)batch > 9e18) {
        fprintf(stderr, "cbnn_schedule: --iters-per-epoch x --batch is too large\n");
        return 2;
    }
    const long total = train_total_iterations(&c, k * batch); /* a training set of K batches */
    if (total < 1) {
        fprintf(stderr, "cbnn_schedule: %g epochs of %ld iterations is no iteration at all\n", epochs, k);
        return 2;
    }
    if (total - 4 * warmup < cycles) {
        fprintf(stderr,
                "cbnn_schedule: %ld iterations (after 4 x %ld warm-up) are fewer than %ld cycles: "
                "a cycle needs at least one iteration (experiments/README.md, constraints between keys)\n",
                total, warmup, cycles);
        return 2;
    }
    PrecSchedule s;
    prec_from_config(&c, total, &s, NULL);

    FILE *f = stdout;
    if (out && !(f = fopen(out, "w"))) {
        fprintf(stderr, "cbnn_schedule: cannot write %s: %s\n", out, strerror(errno));
        return 1;
    }
    fprintf(f, "# cbnn_schedule: cyclic %ld-%ld bits, errors %ld-%ld bits, %ld cycles, %g epochs x %ld iterations "
               "= I %ld, warm-up W %ld (%ld iterations at %ld bits), cycle length P %ld iterations (%.4g epochs)\n",
            bmin, bmax, gmin, gmax, cycles, epochs, k, total, warmup, 4 * warmup, wbits, prec_cycle_length(&s),
            (double)prec_cycle_length(&s) / (double)k);
    fprintf(f, "# rows: %s; the last row is iteration I (end of training) with the last iteration's bits\n",
            every ? "every N-th iteration and the last one" : "the first iteration at each new width, and the last");
    fprintf(f, "# epoch iteration bits grad_bits\n");
    PrecBits prev = prec_at(&s, 0);
    row(f, 0, k, prev);
    for (long it = 1; it < total; it++) {
        PrecBits b = prec_at(&s, it);
        int changed = b.bits != prev.bits || b.grad_bits != prev.grad_bits;
        if (every ? (it % every == 0 || it == total - 1) : (changed || it == total - 1)) row(f, it, k, b);
        prev = b;
    }
    row(f, total, k, prev);
    if (f != stdout && fclose(f)) {
        fprintf(stderr, "cbnn_schedule: error writing %s\n", out);
        return 1;
    }
    if (f == stdout && fflush(stdout)) return 1;
    return 0;
}
