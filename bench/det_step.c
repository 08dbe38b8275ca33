/* One training step of the binary Faster R-CNN (tasks/detect.h), timed by
 * phase (issue 14): what the detector's step costs, and how much of it is
 * the glue between the two graphs.
 *
 *   det_step [--shape standin|paper] [--mode cyclebnn|fp32] [--batch N] [--bits K] [--grad-bits G]
 *            [--steps S] [--reps R] [--warmup W] [--threads T] [--json]
 *
 * Shapes: standin = experiments/quick/detect_synth.yaml (width 16, 192 x 256
 * canvas: a 375 x 500 VOC image at shorter side 192, batch 8, anchor scales
 * {2, 4, 8}, 64 RoIs per image); paper = Table 3 (width 64, 600 x 800, batch
 * 1, anchor scales {8, 16, 32}, 256 RoIs per image). --mode cyclebnn: the
 * backbone's binary convs are CycleBNN convs at --bits / --grad-bits
 * (faithful options) and the RPN conv is BiDet's; fp32: every conv fp32, the
 * RPN conv too (the stand-in's fp32 run). The other options are the
 * reference's (12000 / 2000 proposals before / after NMS in training).
 *
 * The batch is built by hand, not loaded: random normalised pixels and three
 * random GT boxes per image, the same every step (keyed by the image index).
 * The weights are the untrained initialisation (no optimizer step is timed:
 * AdamW is a separate, small pass), so the RPN's scores are near 0.5
 * everywhere and NMS sees as many overlapping candidates as it can.
 *
 * Reported: img/s (median and best of --reps repetitions of --steps steps,
 * after --warmup steps: the machine is shared, best-of is the least
 * disturbed), ms per phase (Detector.phase_s; median and minimum over the
 * timed steps), the glue's share of the step, and the MACs of a training
 * image (tasks/detect_cost.h) with the rate they run at. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "benchutil.h"
#include "binary_conv.h"
#include "blas.h"
#include "cpu.h"
#include "detect.h"
#include "detect_cost.h"
#include "rng.h"

#define MAX_REPS 64
#define N_GT 3

static const char *const PHASE_NAMES[DETECT_N_PHASES] = {
    "base forward", "glue: RPN decode, proposals, anchor targets, RoI sampling", "RoIAlign forward", "head forward",
    "losses (RPN + head, with gradients)", "head backward", "RoIAlign backward", "base backward"};
static const char *const PHASE_KEYS[DETECT_N_PHASES] = {"base_fwd", "glue",     "roi_fwd", "head_fwd",
                                                        "losses",   "head_bwd", "roi_bwd", "base_bwd"};

static void usage(FILE *f) {
    fprintf(f,
            "usage: det_step [--shape standin|paper] [--mode cyclebnn|fp32] [--batch N] [--bits K] [--grad-bits G]\n"
            "                [--steps S] [--reps R] [--warmup W] [--threads T] [--json]\n"
            "One detector training step (tasks/detect.h) timed by phase on a hand-built batch;\n"
            "defaults: standin (width 16, 192x256, batch 8, 64 RoIs/image), cyclebnn, bits 4, grad bits 8,\n"
            "steps 3, reps 3, warmup 1; paper: width 64, 600x800, batch 1, 256 RoIs/image.\n");
}

/* a batch of B random H x W images with N_GT boxes each, as det_batch_load lays it out */
static int make_batch(DetBatch *b, int B, int H, int W, double scale) {
    memset(b, 0, sizeof *b);
    b->B = B, b->H = H, b->W = W, b->max_gt = DET_MAX_GT;
    const size_t n = (size_t)B * 3 * H * W;
    b->images = malloc(n * sizeof *b->images);
    b->im_info = malloc((size_t)B * 3 * sizeof *b->im_info);
    b->gt = calloc((size_t)B * DET_MAX_GT * 5, sizeof *b->gt);
    b->difficult = calloc((size_t)B * DET_MAX_GT, 1);
    b->num_boxes = malloc((size_t)B * sizeof *b->num_boxes);
    b->entry = malloc((size_t)B * sizeof *b->entry);
    b->offset = calloc((size_t)B * 2, sizeof *b->offset);
    if (!b->images || !b->im_info || !b->gt || !b->difficult || !b->num_boxes || !b->entry || !b->offset) return -1;
    for (int i = 0; i < B; i++) {
        Rng r = rng_stream(7, 0, (uint64_t)i, 0);
        real *x = b->images + (size_t)i * 3 * H * W;
        for (size_t p = 0; p < (size_t)3 * H * W; p++) x[p] = (real)(4 * rng_uniform(&r) - 2);
        b->im_info[3 * i] = (float)H, b->im_info[3 * i + 1] = (float)W, b->im_info[3 * i + 2] = (float)scale;
        for (int g = 0; g < N_GT; g++) {
            /* boxes of a sixth to a half of the shorter side, inside the image */
            const int side = H < W ? H : W;
            const int bw = side / 6 + (int)(rng_uniform(&r) * side / 3), bh = side / 6 + (int)(rng_uniform(&r) * side / 3);
            const int x1 = (int)(rng_uniform(&r) * (W - bw - 1)), y1 = (int)(rng_uniform(&r) * (H - bh - 1));
            float *row = b->gt + ((size_t)i * DET_MAX_GT + g) * 5;
            row[0] = (float)x1, row[1] = (float)y1, row[2] = (float)(x1 + bw), row[3] = (float)(y1 + bh);
            row[4] = (float)(1 + (i * N_GT + g) % 20);
        }
        b->num_boxes[i] = N_GT;
        b->entry[i] = i;
    }
    return 0;
}

static double min_of(const double *t, int n) {
    double m = t[0];
    for (int i = 1; i < n; i++) m = t[i] < m ? t[i] : m;
    return m;
}

int main(int argc, char **argv) {
    if (cpu_env_error()) {
        fprintf(stderr, "det_step: %s\n", cpu_env_error());
        return 2;
    }
    const char *shape = "standin", *mode = "cyclebnn";
    int B = 0, steps = 3, reps = 3, warmup = 1, threads = 0, json = 0;
    double bits = 4, grad_bits = 8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (has && !strcmp(a, "--shape")) shape = argv[++i];
        else if (has && !strcmp(a, "--mode")) mode = argv[++i];
        else if (has && !strcmp(a, "--batch")) B = atoi(argv[++i]);
        else if (has && !strcmp(a, "--bits")) bits = atof(argv[++i]);
        else if (has && !strcmp(a, "--grad-bits")) grad_bits = atof(argv[++i]);
        else if (has && !strcmp(a, "--steps")) steps = atoi(argv[++i]);
        else if (has && !strcmp(a, "--reps")) reps = atoi(argv[++i]);
        else if (has && !strcmp(a, "--warmup")) warmup = atoi(argv[++i]);
        else if (has && !strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "det_step: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    const int paper = !strcmp(shape, "paper"), cyclebnn = !strcmp(mode, "cyclebnn");
    if ((!paper && strcmp(shape, "standin")) || (!cyclebnn && strcmp(mode, "fp32"))) {
        fprintf(stderr, "det_step: --shape is standin or paper, --mode cyclebnn or fp32\n");
        return 2;
    }
    if (B == 0) B = paper ? 1 : 8;
    if (B < 1 || B > DETECT_MAX_BATCH || steps < 1 || reps < 1 || reps > MAX_REPS || warmup < 0) {
        fprintf(stderr, "det_step: bad --batch (1..%d), --steps, --reps (1..%d) or --warmup\n", DETECT_MAX_BATCH,
                MAX_REPS);
        return 2;
    }
    if (threads > 0) engine_set_threads(threads);

    DetectOptions o = detect_defaults();
    const int H = paper ? 600 : 192, W = paper ? 800 : 256;
    o.width = paper ? 64 : 16;
    o.binary_kind = cyclebnn ? CONV_BINARY : CONV_FP32;
    o.rpn_conv = cyclebnn ? RPN_CONV_BIDET : RPN_CONV_FP32;
    if (!paper) {
        o.scales[0] = 2, o.scales[1] = 4, o.scales[2] = 8;
        o.tgt.rois_per_image = 64;
    }
    /* the IB terms on, as after the first lr decay: their cost is in the losses */
    o.w_rpn_prior = o.w_rpn_reg = o.w_head_prior = o.w_head_reg = 1e-3;
    char err[256];
    Detector d;
    if (detector_init(&d, &o, B, H, W, 1, err, sizeof err)) {
        fprintf(stderr, "det_step: %s\n", err);
        return 1;
    }
    d.base.bconv = d.head.bconv = binary_conv_faithful();
    Model *ms[2] = {&d.base, &d.head};
    for (int k = 0; k < 2; k++) {
        ms[k]->bconv.save_act_codes = cyclebnn && bits >= 1 && bits <= 8; /* as the training loop decides it */
        ms[k]->bits = cyclebnn ? bits : 0;
        ms[k]->grad_bits = cyclebnn ? grad_bits : 0;
    }
    DetBatch bt;
    if (make_batch(&bt, B, H, W, paper ? 1.6 : 0.512)) {
        fprintf(stderr, "det_step: out of memory for the batch\n");
        return 1;
    }
    DetectCost cost;
    detect_cost_of(&d.base, &d.head, o.tgt.post_nms_test, o.tgt.rois_per_image, 0, 0, &cost);

    const int total = warmup + reps * steps;
    double *ph = calloc((size_t)total * DETECT_N_PHASES, sizeof *ph), *t_step = calloc((size_t)total, sizeof *t_step);
    double rate[MAX_REPS];
    DetectLosses L;
    memset(&L, 0, sizeof L);
    long step = 0;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        const int n = r < 0 ? warmup : steps;
        double sum = 0;
        for (int s = 0; s < n; s++, step++) {
            d.phase_s = ph + (size_t)step * DETECT_N_PHASES;
            for (int k = 0; k < 2; k++) ms[k]->step = step;
            const double t0 = bench_now();
            if (detect_train_step(&d, &bt, 1, step, &L, err, sizeof err)) {
                fprintf(stderr, "det_step: %s\n", err);
                return 1;
            }
            t_step[step] = bench_now() - t0;
            sum += t_step[step];
        }
        if (r >= 0) rate[r] = steps * B / sum;
    }
    d.phase_s = NULL;

    const int nt = reps * steps;
    /* per phase, and what no phase holds (step - the phases' sum, per step: medians do not add up) */
    double med[DETECT_N_PHASES + 1], best[DETECT_N_PHASES + 1];
    double *col = malloc((size_t)nt * sizeof *col);
    for (int p = 0; p <= DETECT_N_PHASES && col; p++) {
        for (int i = 0; i < nt; i++) {
            const double *t = ph + (size_t)(warmup + i) * DETECT_N_PHASES;
            double rest = t_step[warmup + i];
            for (int q = 0; q < DETECT_N_PHASES; q++) rest -= t[q];
            col[i] = p < DETECT_N_PHASES ? t[p] : rest;
        }
        med[p] = 1e3 * bench_median(col, nt);
        best[p] = 1e3 * min_of(col, nt);
    }
    free(col);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double step_med = 1e3 * bench_median(t_step + warmup, nt), step_best = 1e3 * min_of(t_step + warmup, nt);
    const double ips = bench_median(rate, reps);
    double ips_max = rate[0];
    for (int r = 1; r < reps; r++) ips_max = rate[r] > ips_max ? rate[r] : ips_max;
    const double glue = med[DETECT_PHASE_GLUE] / step_med;
    const double gmacs = cost.train.total * B / (step_best * 1e-3) / 1e9;

    if (json) {
        printf("{\"shape\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"H\": %d, \"W\": %d, \"width\": %d, \"threads\": %d, "
               "\"steps\": %d, \"reps\": %d, \"img_per_s\": %.4f, \"img_per_s_best\": %.4f, \"step_ms\": %.3f, "
               "\"step_ms_best\": %.3f, \"glue_share\": %.4f, \"peak_rss_mib\": %.1f, \"ms\": {",
               shape, mode, B, H, W, o.width, omp_get_max_threads(), steps, reps, ips, ips_max, step_med, step_best,
               glue, ru.ru_maxrss / 1024.0);
        for (int p = 0; p < DETECT_N_PHASES; p++) printf("%s\"%s\": %.3f", p ? ", " : "", PHASE_KEYS[p], med[p]);
        printf("}, \"train_gmac_per_image\": %.3f, \"loss\": %.6f}\n", cost.train.total / 1e9, L.total);
    } else {
        printf("det_step %s %s: width %d, %dx%d, batch %d, %d RoIs/image, %d threads, bits %g/%g, %ld params\n", shape,
               mode, o.width, H, W, B, o.tgt.rois_per_image, omp_get_max_threads(), d.base.bits, d.base.grad_bits,
               detector_params(&d));
        printf("img/s over %d reps of %d steps: median %.3f, best %.3f; step ms median %.1f, best %.1f\n", reps, steps,
               ips, ips_max, step_med, step_best);
        printf("%-60s %10s %10s %6s\n", "phase (ms per step)", "median", "min", "share");
        for (int p = 0; p < DETECT_N_PHASES; p++)
            printf("%-60s %10.2f %10.2f %5.1f%%\n", PHASE_NAMES[p], med[p], best[p], 100 * med[p] / step_med);
        printf("%-60s %10.2f %10.2f %5.1f%%\n", "(rest of the step: no phase)", med[DETECT_N_PHASES],
               best[DETECT_N_PHASES], 100 * med[DETECT_N_PHASES] / step_med);
        printf("glue share of the step: %.1f%% (medians), %.1f%% (minima); peak RSS %.0f MiB\n", 100 * glue,
               100 * best[DETECT_PHASE_GLUE] / step_best, ru.ru_maxrss / 1024.0);
        printf("MACs per training image: %.2f G (forward %.2f = base %.2f + %d x head %.4f; err %.2f; wgrad %.2f); "
               "%.1f GMAC/s at the best step\n",
               cost.train.total / 1e9, cost.train_fwd.total / 1e9, cost.base.total / 1e9, cost.train_rois,
               cost.head.total / 1e9, cost.train_err.total / 1e9, cost.train_wgrad.total / 1e9, gmacs);
        printf("last step: loss %.4f (rpn fg %ld bg %ld, RoI fg %ld bg %ld)\n", L.total, L.rpn_fg, L.rpn_bg, L.roi_fg,
               L.roi_bg);
    }
    det_batch_free(&bt);
    detector_free(&d);
    free(ph);
    free(t_step);
    return isfinite(L.total) ? 0 : 1;
}
