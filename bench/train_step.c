/* End-to-end training step of the engine, as experiments/train_run.c runs it: load a
 * batch (CIFAR-10 recipe augmentation), forward + loss, backward, AdamW. The
 * C side of bench/run_step_bench (which runs bench/peer/torch_step.py beside it).
 *
 *   train_step [--arch A] [--mode cyclebnn|fp32] [--memory fast|lean] [--fp32-conv native|onednn]
 *              [--batch N] [--size S] [--classes K] [--bits K] [--grad-bits G]
 *              [--steps S] [--reps R] [--warmup W] [--threads T] [--layers] [--json]
 *
 * --mode cyclebnn: every binary conv is the CycleBNN conv (faithful options,
 * k = --bits, error at --grad-bits); --mode fp32: the same net with fp32 convs
 * (config model.conv: fp32). --memory and --fp32-conv are train.memory and
 * model.fp32_conv, set on the Model before model_alloc as the training loop
 * does. Data: synthetic CIFAR-10 images (datasets/synth_cifar10.c) held in
 * memory as uint8. At --size 32 (the default) 1024 of them, augmented per
 * sample (crop with mean fill, flip, AutoAugment, Cutout) exactly as CIFAR
 * training does; at any other size (--arch imagenet_resnet18 --size 224) as
 * many as fit in 32 MiB, scaled up (nearest pixel) and only flipped: no JPEG
 * decoding or RandomResizedCrop, which the img/s without the loader leaves
 * out anyway. --classes defaults to 10, and to 1000 for imagenet_resnet18.
 *
 * Reported: img/s of the step without the loader (what PyTorch's peer
 * measures) and with it, medians over --reps repetitions of --steps steps
 * after --warmup steps; the phase breakdown (medians of per-step ms): loader,
 * forward, backward, optimizer, and inside the binary convs quantize/pack,
 * 1-bit conv, error quantization, backward products, Jacobians (from
 * binary_conv_set_profile); peak RSS of the process (one config per process);
 * the training arenas (model_train_bytes: acts, dacts, saved, scratch, noise,
 * and "other" for any arena the plan adds beyond those five) beside those of
 * the fp32 twin (the same architecture and input with fp32 convs, train.memory
 * fast, native conv, planned with model_layout at the same batch and never
 * allocated) and their ratio, the issue-17 memory target.
 * --layers adds the per-layer-kind split of forward and backward time.
 *
 * --fp32-conv onednn is refused (exit status 3, "unavailable") when no oneDNN
 * library is mapped into the process after the first step: a build without
 * the backend would otherwise time the native conv under the other name. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "arena.h"
#include "benchutil.h"
#include "binary_conv.h"
#include "blas.h"
#include "cpu.h"
#include "cifar10.h"
#include "classify.h"
#include "dataset.h"
#include "model.h"
#include "ops.h"
#include "optim.h"

#define N_IMAGES_CIFAR 1024
#define SYNTH_BYTES (32u << 20) /* in-memory images at other sizes */
#define MAX_REPS 64



static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: train_step [--arch A] [--mode cyclebnn|fp32] [--memory fast|lean] [--fp32-conv native|onednn]\n"
            "                  [--batch N] [--size S] [--classes K] [--bits K] [--grad-bits G]\n"
            "                  [--steps S] [--reps R] [--warmup W] [--threads T] [--layers] [--json]\n"
            "One training step of the engine (loader, forward, backward, AdamW) timed on synthetic\n"
            "images; defaults: cifar_resnet18, cyclebnn, memory fast, fp32 conv native, batch 16,\n"
            "size 32, classes 10 (imagenet_resnet18: 1000), bits 4, grad bits 8, steps 8, reps 5,\n"
            "warmup 2, threads from OMP_NUM_THREADS. Exit status 3: --fp32-conv onednn is unavailable.\n");
}

/* the in-memory synthetic training split: CIFAR-10 images at 32x32 (1024 of
 * them), else the same images scaled up to size x size by the nearest pixel,
 * as many as SYNTH_BYTES holds (at least 16); labels below `classes` (the
 * CIFAR-10 label modulo the class count) */
static void synth_dataset(Dataset *ds, int size, int classes) {
    const size_t img_bytes = (size_t)3 * size * size;
    long n = size == CIFAR10_SIDE ? N_IMAGES_CIFAR : (long)(SYNTH_BYTES / img_bytes);
    if (n < 16) n = 16;
    memset(ds, 0, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "synthetic cifar10 %dx%d", size, size);
    ds->n = n;
    ds->channels = 3;
    ds->height = ds->width = size;
    ds->num_classes = classes;
    ds->images = malloc((size_t)n * img_bytes);
    ds->labels = malloc((size_t)n);
    if (!ds->images || !ds->labels) {
        fprintf(stderr, "train_step: out of memory\n");
        exit(1);
    }
    double sum[3] = {0, 0, 0};
    for (long i = 0; i < n; i++) {
        uint8_t rec[CIFAR10_RECORD_BYTES];
        cifar10_synth_sample(1, 0, i, rec);
        ds->labels[i] = (uint8_t)(rec[0] % classes);
        uint8_t *img = ds->images + (size_t)i * img_bytes;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    const int sy = y * CIFAR10_SIDE / size, sx = x * CIFAR10_SIDE / size;
                    const uint8_t v = rec[1 + (c * CIFAR10_SIDE + sy) * CIFAR10_SIDE + sx];
                    img[((size_t)c * size + y) * size + x] = v;
                    sum[c] += v;
                }
    }
    for (int c = 0; c < 3; c++) {
        ds->mean[c] = (float)(sum[c] / (255.0 * (double)n * size * size));
        ds->std[c] = 0.25f;
    }
    ds->get = size == CIFAR10_SIDE ? cifar10_get : dataset_get_u8;
}

/* The oneDNN backend's probes (core/ops/conv2d_onednn.h), declared weak so
 * that this program also builds and runs against an engine without that file:
 * then both are NULL and onednn_mapped() is the only check. */
const char *conv2d_backend_error(int backend) __attribute__((weak));
size_t conv2d_onednn_workspace_bytes(void) __attribute__((weak));

/* 1 when a oneDNN shared library is mapped into this process (Debian's
 * libdnnl.so.2): whether --fp32-conv onednn can have run the library at all */
static int onednn_mapped(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, "libdnnl") || strstr(line, "libmkldnn");
    fclose(f);
    return found;
}

/* the parameters model_summary counts (no arena padding): what the PyTorch
 * peer's parameter count is checked against */
static long summary_params(const Model *m) {
    SummaryRow *rows = calloc((size_t)m->n_layers, sizeof *rows);
    long n = 0;
    if (!rows) return -1;
    const int nr = model_summary_rows(m, rows);
    for (int i = 0; i < nr; i++) n += rows[i].params_1bit + rows[i].params_32bit;
    free(rows);
    return n;
}

/* the fp32 twin's training arenas: same architecture and input, every conv
 * fp32, train.memory fast, native conv, planned for `batch` rows and never
 * allocated (as experiments/train_run.c computes the recorded ratio); 0 if it
 * cannot be planned */
static size_t fp32_twin_train_bytes(const char *arch, int size, int classes, int batch) {
    Model twin;
    char err[256];
    size_t bytes = 0;
    if (model_build(&twin, arch, CONV_FP32, 3, size, size, classes, err, sizeof err) == 0 &&
        model_layout(&twin, batch) == 0)
        bytes = model_train_bytes(&twin);
    model_free(&twin);
    return bytes;
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
    const char *arch = "cifar_resnet18", *mode = "cyclebnn", *memory = "fast", *fp32_conv = "native";
    int B = 16, steps = 8, reps = 5, warmup = 2, threads = 0, json = 0, per_layer = 0, size = CIFAR10_SIDE;
    int classes = 0; /* 0: the architecture's default */
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
        else if (has && !strcmp(a, "--memory")) memory = argv[++i];
        else if (has && !strcmp(a, "--fp32-conv")) fp32_conv = argv[++i];
        else if (has && !strcmp(a, "--batch")) B = atoi(argv[++i]);
        else if (has && !strcmp(a, "--size")) size = atoi(argv[++i]);
        else if (has && !strcmp(a, "--classes")) classes = atoi(argv[++i]);
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
    if (strcmp(memory, "fast") && strcmp(memory, "lean")) {
        fprintf(stderr, "train_step: --memory '%s': expected fast or lean\n", memory);
        return 2;
    }
    if (strcmp(fp32_conv, "native") && strcmp(fp32_conv, "onednn")) {
        fprintf(stderr, "train_step: --fp32-conv '%s': expected native or onednn\n", fp32_conv);
        return 2;
    }
    if (classes == 0) classes = !strcmp(arch, "imagenet_resnet18") ? 1000 : 10;
    if (size < 8 || size > 1024 || classes < 1) {
        fprintf(stderr, "train_step: bad --size (8..1024) or --classes\n");
        return 2;
    }
    const int want_onednn = !strcmp(fp32_conv, "onednn");
    if (want_onednn && conv2d_backend_error && conv2d_backend_error(FP32_CONV_ONEDNN)) {
        fprintf(stderr, "train_step: --fp32-conv onednn unavailable: %s\n", conv2d_backend_error(FP32_CONV_ONEDNN));
        return 3;
    }
    if (threads > 0) engine_set_threads(threads);

    Dataset ds;
    synth_dataset(&ds, size, classes);
    /* the high-water mark before the model exists: libraries, OpenMP, the in-memory images */
    const double setup_rss = peak_rss_mib();
    Augment aug;
    memset(&aug, 0, sizeof aug);
    aug.flip = 1;
    if (size == CIFAR10_SIDE) { /* the CIFAR recipe; other sizes are only flipped (synth_dataset) */
        aug.crop_pad = 4;
        aug.crop_fill_mean = 1;
        aug.autoaugment = 1;
        aug.cutout = 16;
    }

    Model m;
    char err[256];
    if (model_build(&m, arch, cyclebnn ? CONV_BINARY : CONV_FP32, 3, size, size, classes, err, sizeof err)) {
        fprintf(stderr, "train_step: %s\n", err);
        return 2;
    }
    m.bconv = binary_conv_faithful();
    m.bconv.save_act_codes = cyclebnn && bits >= 1 && bits <= 8; /* as experiments/train_run.c decides it */
    m.memory_lean = !strcmp(memory, "lean");
    m.fp32_conv = want_onednn ? FP32_CONV_ONEDNN : FP32_CONV_NATIVE;
    if (model_alloc(&m, B)) {
        fprintf(stderr, "train_step: cannot allocate the model for batch %d%s%s\n", B, m.err[0] ? ": " : "", m.err);
        return want_onednn ? 3 : 1;
    }
    model_init_params(&m, 1);
    m.seed = 1;
    m.bits = cyclebnn ? bits : 0;
    m.grad_bits = cyclebnn ? grad_bits : 0;
    const size_t train_bytes = model_train_bytes(&m);
    const size_t twin_bytes = fp32_twin_train_bytes(arch, size, classes, B);
    /* the five arenas as model_train_bytes rounds them; "other" is whatever it counts beyond them */
    const size_t R = sizeof(real);
    const size_t ar[5] = {arena_round(m.n_acts * R), arena_round(m.n_dacts * R), arena_round(m.n_saved * R),
                          arena_round(m.n_scratch * R), arena_round(m.n_noise * R)};
    const size_t ar_sum = ar[0] + ar[1] + ar[2] + ar[3] + ar[4];
    const double other_bytes = (double)train_bytes - (double)ar_sum;
    double *lf = calloc((size_t)m.n_layers, sizeof *lf), *lb = calloc((size_t)m.n_layers, sizeof *lb);
    if (per_layer) {
        m.prof_fwd = lf;
        m.prof_bwd = lb;
    }
    AdamWConfig adamw = {0.9, 0.999, 1e-8, 1e-5};
    real *x = malloc((size_t)B * 3 * size * size * sizeof *x);
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
            for (int b = 0; b < B; b++) idx[b] = (int32_t)((step * B + b) % ds.n);
            if (dataset_batch(&ds, idx, B, x, y, &aug, 1, 1, step * B / ds.n, err, sizeof err)) {
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
            if (step == 0) {
                loss0 = loss;
                /* not timed under a name it does not run: the backend must have
                 * built its workspace in the first step, or (an engine without
                 * the probe) at least have the library loaded */
                if (want_onednn && (conv2d_onednn_workspace_bytes ? conv2d_onednn_workspace_bytes() == 0
                                                                  : !onednn_mapped())) {
                    fprintf(stderr, "train_step: --fp32-conv onednn unavailable: the first step did not run "
                                    "oneDNN (%s)\n", conv2d_onednn_workspace_bytes ? "its workspace is empty"
                                                                                : "no oneDNN library is loaded");
                    return 3;
                }
            }
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

    double ips_min = rate_step[0], ips_max = rate_step[0];
    for (int r = 1; r < reps; r++) {
        ips_min = rate_step[r] < ips_min ? rate_step[r] : ips_min;
        ips_max = rate_step[r] > ips_max ? rate_step[r] : ips_max;
    }
    const double mib = 1048576.0;
    const double twin_ratio = twin_bytes ? (double)train_bytes / (double)twin_bytes : NAN;

    if (json) {
        printf("{\"engine\": \"cyclebnn-c\", \"arch\": \"%s\", \"mode\": \"%s\", \"memory\": \"%s\", "
               "\"fp32_conv\": \"%s\", \"onednn_loaded\": %s, \"batch\": %d, \"size\": %d, \"classes\": %d, "
               "\"threads\": %d, \"bits\": %g, \"grad_bits\": %g, \"steps\": %d, \"reps\": %d, \"warmup\": %d, "
               "\"img_per_s\": %.4f, \"img_per_s_min\": %.4f, \"img_per_s_max\": %.4f, "
               "\"img_per_s_with_loader\": %.4f, \"reps_img_per_s\": [",
               arch, mode, memory, fp32_conv, onednn_mapped() ? "true" : "false", B, size, classes,
               omp_get_max_threads(), m.bits, m.grad_bits, steps, reps, warmup, ips, ips_min, ips_max, ips_all);
        for (int r = 0; r < reps; r++) printf("%s%.4f", r ? ", " : "", rate_step[r]);
        printf("], \"ms\": {\"loader\": %.4f, \"forward\": %.4f, \"backward\": %.4f, \"optimizer\": %.4f, "
               "\"bconv_weight_prep\": %.4f, \"bconv_act_prep\": %.4f, \"bconv_conv\": %.4f, "
               "\"bconv_err_quant\": %.4f, \"bconv_products\": %.4f, \"bconv_jacobians\": %.4f}, ",
               med[0], med[1], med[2], med[3], med[4], med[5], med[6], med[7], med[8], med[9]);
        printf("\"train_bytes\": %zu, \"arena_bytes\": {\"acts\": %zu, \"dacts\": %zu, \"saved\": %zu, "
               "\"scratch\": %zu, \"noise\": %zu, \"other\": %.0f}, \"fp32_twin_train_bytes\": %zu, ",
               train_bytes, ar[0], ar[1], ar[2], ar[3], ar[4], other_bytes, twin_bytes);
        if (conv2d_onednn_workspace_bytes) printf("\"onednn_workspace_bytes\": %zu, ", conv2d_onednn_workspace_bytes());
        else printf("\"onednn_workspace_bytes\": null, ");
        if (isfinite(twin_ratio)) printf("\"train_ratio_fp32_twin\": %.6f, ", twin_ratio);
        else printf("\"train_ratio_fp32_twin\": null, ");
        printf("\"peak_rss_mib\": %.2f, \"setup_rss_mib\": %.2f, \"params\": %zu, \"params_model\": %ld, "
               "\"loss_first\": %.6f, \"loss_last\": %.6f}\n",
               rss, setup_rss, m.n_params, summary_params(&m), loss0, loss_last);
    } else {
        printf("engine %s %s batch %d at %dx%d, %d classes, %d threads, memory %s, fp32 conv %s, bits %g/%g, "
               "%ld params, %ld fp32 + %ld binary MACs/img\n",
               arch, mode, B, size, size, classes, omp_get_max_threads(), memory, fp32_conv, m.bits, m.grad_bits,
               summary_params(&m), fp32_macs, bin_macs);
        printf("img/s (median of %d reps of %d steps): %.2f without loader (reps %.2f-%.2f), %.2f with\n", reps,
               steps, ips, ips_min, ips_max, ips_all);
        printf("per-step medians, ms: loader %.2f  forward %.2f  backward %.2f  optimizer %.2f\n", med[0], med[1],
               med[2], med[3]);
        if (cyclebnn)
            printf("  in the binary convs: weights E2+quant+sign+pack %.2f  acts E3+quant+pack %.2f  1-bit conv %.2f\n"
                   "                      | error quant %.2f  products %.2f  jacobians %.2f\n",
                   med[4], med[5], med[6], med[7], med[8], med[9]);
        printf("peak RSS %.1f MiB (%.1f before the model); loss %.4f -> %.4f\n", rss, setup_rss, loss0, loss_last);
        printf("arenas MiB: params %.1f grads %.1f opt %.1f | training: acts %.1f dacts %.1f saved %.1f scratch %.1f "
               "noise %.1f other %.1f = %.1f\n",
               m.n_params * R / mib, m.n_params * R / mib, 2 * m.n_params * R / mib, ar[0] / mib, ar[1] / mib,
               ar[2] / mib, ar[3] / mib, ar[4] / mib, other_bytes / mib, train_bytes / mib);
        printf("fp32 twin's training arenas %.1f MiB (fp32 convs, memory fast, native): ratio %.3f\n",
               twin_bytes / mib, twin_ratio);
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
