/* End-to-end training step of the engine, as experiments/train_run.c runs it: load a
 * batch (CIFAR-10 recipe augmentation), forward + loss, backward, AdamW. The
 * C side of bench/run_step_bench (which runs bench/peer/torch_step.py beside it).
 *
 *   train_step [--arch A] [--mode cyclebnn|fp32] [--batch N] [--bits K] [--grad-bits G]
 *              [--steps S] [--reps R] [--warmup W] [--threads T] [--layers] [--json]
 *
 * --mode cyclebnn: every binary conv is the CycleBNN conv (faithful options,
 * k = --bits, error at --grad-bits); --mode fp32: the same net with fp32 convs
 * (config model.conv: fp32). Data: 1024 synthetic CIFAR-10 images
 * (datasets/synth_cifar10.c) held in memory as uint8, augmented per sample
 * (crop with mean fill, flip, AutoAugment, Cutout) exactly as training does.
 *
 * Reported: img/s of the step without the loader (what PyTorch's peer
 * measures) and with it, medians over --reps repetitions of --steps steps
 * after --warmup steps; the phase breakdown (medians of per-step ms): loader,
 * forward, backward, optimizer, and inside the binary convs quantize/pack,
 * 1-bit conv, error quantization, backward products, Jacobians (from
 * binary_conv_set_profile); peak RSS of the process (one config per process).
 * --layers adds the per-layer-kind split of forward and backward time. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "benchutil.h"
#include "binary_conv.h"
#include "blas.h"
#include "cpu.h"
#include "cifar10.h"
#include "classify.h"
#include "dataset.h"
#include "model.h"
#include "optim.h"

#define N_IMAGES 1024
#define MAX_REPS 64



static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: train_step [--arch A] [--mode cyclebnn|fp32] [--batch N] [--bits K] [--grad-bits G]\n"
            "                  [--steps S] [--reps R] [--warmup W] [--threads T] [--layers] [--json]\n"
            "One training step of the engine (loader, forward, backward, AdamW) timed on synthetic\n"
            "CIFAR-10 images; defaults: cifar_resnet18, cyclebnn, batch 16, bits 4, grad bits 8,\n"
            "steps 8, reps 5, warmup 2, threads from OMP_NUM_THREADS.\n");
}

/* the in-memory synthetic CIFAR-10 training split */
static void synth_dataset(Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "synthetic cifar10");
    ds->n = N_IMAGES;
    ds->channels = 3;
    ds->height = ds->width = CIFAR10_SIDE;
    ds->num_classes = 10;
    ds->images = malloc((size_t)N_IMAGES * CIFAR10_IMAGE_BYTES);
    ds->labels = malloc(N_IMAGES);
    if (!ds->images || !ds->labels) {
        fprintf(stderr, "train_step: out of memory\n");
        exit(1);
    }
    double sum[3] = {0, 0, 0};
    for (long i = 0; i < N_IMAGES; i++) {
        uint8_t rec[CIFAR10_RECORD_BYTES];
        cifar10_synth_sample(1, 0, i, rec);
        ds->labels[i] = rec[0];
        memcpy(ds->images + i * CIFAR10_IMAGE_BYTES, rec + 1, CIFAR10_IMAGE_BYTES);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < CIFAR10_SIDE * CIFAR10_SIDE; p++) sum[c] += rec[1 + c * CIFAR10_SIDE * CIFAR10_SIDE + p];
    }
    for (int c = 0; c < 3; c++) {
        ds->mean[c] = (float)(sum[c] / (255.0 * N_IMAGES * CIFAR10_SIDE * CIFAR10_SIDE));
        ds->std[c] = 0.25f;
    }
    ds->get = cifar10_get;
}

typedef struct {
    double load, fwd, bwd, opt;
    BinaryConvProfile bc;
} StepTimes;

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        fprintf(stderr, "train_step: %s\n", cpu_env_error());
        return 2;
    }
    const char *arch = "cifar_resnet18", *mode = "cyclebnn";
    int B = 16, steps = 8, reps = 5, warmup = 2, threads = 0, json = 0, per_layer = 0;
    double bits = 4, grad_bits = 8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--layers")) per_layer = 1;
        else if (has && !strcmp(a, "--arch")) arch = argv[++i];
        else if (has && !strcmp(a, "--mode")) mode = argv[++i];
        else if (has && !strcmp(a, "--batch")) B = atoi(argv[++i]);
        else if (has && !strcmp(a, "--bits")) bits = atof(argv[++i]);
        else if (has && !strcmp(a, "--grad-bits")) grad_bits = atof(argv[++i]);
        else if (has && !strcmp(a, "--steps")) steps = atoi(argv[++i]);
        else if (has && !strcmp(a, "--reps")) reps = atoi(argv[++i]);
        else if (has && !strcmp(a, "--warmup")) warmup = atoi(argv[++i]);
        else if (has && !strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "train_step: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    const int cyclebnn = !strcmp(mode, "cyclebnn");
    if ((!cyclebnn && strcmp(mode, "fp32")) || B < 1 || steps < 1 || reps < 1 || reps > MAX_REPS || warmup < 0) {
        fprintf(stderr, "train_step: bad --mode, --batch, --steps, --reps (1..%d) or --warmup\n", MAX_REPS);
        return 2;
    }
    if (threads > 0) engine_set_threads(threads);

    Dataset ds;
    synth_dataset(&ds);
    /* the high-water mark before the model exists: libraries, OpenMP, the in-memory images */
    const double setup_rss = peak_rss_mib();
    Augment aug;
    memset(&aug, 0, sizeof aug);
    aug.flip = 1;
    aug.crop_pad = 4;
    aug.crop_fill_mean = 1;
    aug.autoaugment = 1;
    aug.cutout = 16;

    Model m;
    char err[256];
    if (model_build(&m, arch, cyclebnn ? CONV_BINARY : CONV_FP32, 3, CIFAR10_SIDE, CIFAR10_SIDE, 10, err,
                    sizeof err)) {
        fprintf(stderr, "train_step: %s\n", err);
        return 2;
    }
    m.bconv = binary_conv_faithful();
    m.bconv.save_act_codes = cyclebnn && bits >= 1 && bits <= 8; /* as experiments/train_run.c decides it */
    if (model_alloc(&m, B)) {
        fprintf(stderr, "train_step: cannot allocate the model for batch %d\n", B);
        return 1;
    }
    model_init_params(&m, 1);
    m.seed = 1;
    m.bits = cyclebnn ? bits : 0;
    m.grad_bits = cyclebnn ? grad_bits : 0;
    double *lf = calloc((size_t)m.n_layers, sizeof *lf), *lb = calloc((size_t)m.n_layers, sizeof *lb);
    if (per_layer) {
        m.prof_fwd = lf;
        m.prof_bwd = lb;
    }
    AdamWConfig adamw = {0.9, 0.999, 1e-8, 1e-5};
    real *x = malloc((size_t)B * 3 * CIFAR10_SIDE * CIFAR10_SIDE * sizeof *x);
    int32_t *y = malloc((size_t)B * sizeof *y), *idx = malloc((size_t)B * sizeof *idx);
    real *probs = malloc((size_t)B * m.num_classes * sizeof *probs); /* the softmax, for the backward */

    const int total = warmup + reps * steps;
    double *t_load = calloc((size_t)total, sizeof(double)), *t_fwd = calloc((size_t)total, sizeof(double));
    double *t_bwd = calloc((size_t)total, sizeof(double)), *t_opt = calloc((size_t)total, sizeof(double));
    double *bc[6];
    for (int k = 0; k < 6; k++) bc[k] = calloc((size_t)total, sizeof(double));
    double rate_step[MAX_REPS], rate_all[MAX_REPS];
    double loss0 = 0, loss_last = 0;
    long step = 0;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        const int n_steps = r < 0 ? warmup : steps;
        double sum_step = 0, sum_all = 0;
        for (int s = 0; s < n_steps; s++, step++) {
            BinaryConvProfile p;
            memset(&p, 0, sizeof p);
            binary_conv_set_profile(&p);
            const double t0 = bench_now();
            for (int b = 0; b < B; b++) idx[b] = (int32_t)((step * B + b) % N_IMAGES);
            if (dataset_batch(&ds, idx, B, x, y, &aug, 1, 1, step * B / N_IMAGES, err, sizeof err)) {
                fprintf(stderr, "train_step: %s\n", err);
                return 1;
            }
            const double t1 = bench_now();
            m.step = step;
            const double loss = classify_forward(&m, x, y, B, 1, probs);
            const double t2 = bench_now();
            classify_backward(&m, probs, y, B);
            const double t3 = bench_now();
            adamw_step(m.params, m.grads, m.opt_m, m.opt_v, m.n_trainable, 1e-3, &adamw, step + 1);
            const double t4 = bench_now();
            binary_conv_set_profile(NULL);
            if (!isfinite(loss)) {
                fprintf(stderr, "train_step: loss %g at step %ld\n", loss, step);
                return 1;
            }
            if (step == 0) loss0 = loss;
            loss_last = loss;
            t_load[step] = t1 - t0;
            t_fwd[step] = t2 - t1;
            t_bwd[step] = t3 - t2;
            t_opt[step] = t4 - t3;
            bc[0][step] = p.fwd_weight;
            bc[1][step] = p.fwd_act;
            bc[2][step] = p.fwd_conv;
            bc[3][step] = p.bwd_err;
            bc[4][step] = p.bwd_products;
            bc[5][step] = p.bwd_jacobians;
            sum_step += t4 - t1;
            sum_all += t4 - t0;
        }
        if (r >= 0) {
            rate_step[r] = steps * B / sum_step;
            rate_all[r] = steps * B / sum_all;
        }
    }
    const double rss = peak_rss_mib();

    /* medians over the timed steps (after warm-up) */
    const int nt = reps * steps;
    double med[10];
    double *cols[10] = {t_load, t_fwd, t_bwd, t_opt, bc[0], bc[1], bc[2], bc[3], bc[4], bc[5]};
    for (int k = 0; k < 10; k++) med[k] = 1e3 * bench_median(cols[k] + warmup, nt);
    const double ips = bench_median(rate_step, reps), ips_all = bench_median(rate_all, reps);
    long fp32_macs = 0, bin_macs = 0;
    model_macs(&m, &fp32_macs, &bin_macs);

    if (json) {
        printf("{\"engine\": \"cyclebnn-c\", \"arch\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"threads\": %d, "
               "\"bits\": %g, \"grad_bits\": %g, \"steps\": %d, \"reps\": %d, \"img_per_s\": %.4f, "
               "\"img_per_s_with_loader\": %.4f, \"reps_img_per_s\": [",
               arch, mode, B, omp_get_max_threads(), m.bits, m.grad_bits, steps, reps, ips, ips_all);
        for (int r = 0; r < reps; r++) printf("%s%.4f", r ? ", " : "", rate_step[r]);
        printf("], \"ms\": {\"loader\": %.4f, \"forward\": %.4f, \"backward\": %.4f, \"optimizer\": %.4f, "
               "\"bconv_weight_prep\": %.4f, \"bconv_act_prep\": %.4f, \"bconv_conv\": %.4f, "
               "\"bconv_err_quant\": %.4f, \"bconv_products\": %.4f, \"bconv_jacobians\": %.4f}, "
               "\"peak_rss_mib\": %.2f, \"setup_rss_mib\": %.2f, \"params\": %zu, \"loss_first\": %.6f, \"loss_last\": %.6f}\n",
               med[0], med[1], med[2], med[3], med[4], med[5], med[6], med[7], med[8], med[9], rss, setup_rss, m.n_params, loss0,
               loss_last);
    } else {
        printf("engine %s %s batch %d, %d threads, bits %g/%g, %zu params, %ld fp32 + %ld binary MACs/img\n", arch,
               mode, B, omp_get_max_threads(), m.bits, m.grad_bits, m.n_params, fp32_macs, bin_macs);
        printf("img/s (median of %d reps of %d steps): %.2f without loader, %.2f with\n", reps, steps, ips, ips_all);
        printf("per-step medians, ms: loader %.2f  forward %.2f  backward %.2f  optimizer %.2f\n", med[0], med[1],
               med[2], med[3]);
        if (cyclebnn)
            printf("  in the binary convs: weights E2+quant+sign+pack %.2f  acts E3+quant+pack %.2f  1-bit conv %.2f\n"
                   "                      | error quant %.2f  products %.2f  jacobians %.2f\n",
                   med[4], med[5], med[6], med[7], med[8], med[9]);
        printf("peak RSS %.1f MiB (%.1f before the model); loss %.4f -> %.4f\n", rss, setup_rss, loss0, loss_last);
        printf("arenas MiB: params %.1f grads %.1f opt %.1f acts %.1f dacts %.1f saved %.1f scratch %.1f noise %.1f\n",
               m.n_params * 4 / 1048576.0, m.n_params * 4 / 1048576.0, 2 * m.n_params * 4 / 1048576.0,
               m.n_acts * 4 / 1048576.0, m.n_dacts * 4 / 1048576.0, m.n_saved * 4 / 1048576.0, m.n_scratch * 4 / 1048576.0, m.n_noise * 4 / 1048576.0);
    }
    if (per_layer) {
        /* seconds summed per layer kind over every step, warm-up included */
        const char *kinds[32];
        double kf[32], kb[32];
        int nk = 0;
        for (int i = 1; i < m.n_layers; i++) {
            const char *k = m.layers[i].kind->name;
            int j = 0;
            while (j < nk && strcmp(kinds[j], k)) j++;
            if (j == nk && nk < 32) {
                kinds[nk] = k;
                kf[nk] = kb[nk] = 0;
                nk++;
            }
            if (j < nk) {
                kf[j] += lf[i];
                kb[j] += lb[i];
            }
        }
        fprintf(json ? stderr : stdout, "per layer kind, ms per step (forward / backward):\n");
        for (int j = 0; j < nk; j++)
            fprintf(json ? stderr : stdout, "  %-14s %8.2f %8.2f\n", kinds[j], 1e3 * kf[j] / total,
                    1e3 * kb[j] / total);
    }
    model_free(&m);
    dataset_free(&ds);
    free(lf), free(lb), free(x), free(y), free(idx), free(probs);
    free(t_load), free(t_fwd), free(t_bwd), free(t_opt);
    for (int k = 0; k < 6; k++) free(bc[k]);
    return 0;
}
