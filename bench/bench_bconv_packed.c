/* The packed binary conv forward (core/bconv_packed.h) against the fp32
 * conv2d_forward the faithful binary conv runs on, on the binary conv layers
 * of CIFAR-10 ResNet-18 at batch 16 (3x3).
 *
 *   bench_bconv_packed [reps [--wzeros]]   (default 7: median of reps after 1 warm-up)
 *
 * Activations in {-1, 0, +1} with ~6% zeros; weights in {-1, +1} (default:
 * what sign of the continuous standardised weights gives) or with ~6% zeros
 * (--wzeros).
 *
 * Columns (ms, median): fp32 = conv2d_forward + the alpha scale (what
 * binary_conv_forward does after sign); pack = pack_act of the sign tensor;
 * conv = the packed conv with alpha; wpack = pack_weight (once per step);
 * packed = pack + conv; "avx2 p+c" and "C p+c" the same with the AVX2-level
 * table (what AVX2-only machines get) and the C table. GOPS-eq = 2 * MACs /
 * time (one ternary MAC counted as two ops, like an fp32 MAC). Ratios are
 * fp32 / (pack + conv) per table; "x conv" = fp32 / conv alone (best table).
 * Every table's output is checked bitwise against the fp32 path. Threads from OMP_NUM_THREADS. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "cpu.h"
#include "bconv_packed.h"
#include "ops.h"
#include "rng.h"

#define BATCH 16


/* zero_share = 1/16: ~6% exact zeros; 0: {-1, +1} only */
static real *ternary(size_t n, int zeros, Rng *r) {
    real *x = malloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) {
        uint64_t k = rng_below(r, 16);
        x[i] = (zeros && k == 0) ? 0 : (k & 1) ? 1 : -1;
    }
    return x;
}

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        fprintf(stderr, "bench_bconv_packed: %s\n", cpu_env_error());
        return 2;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    /* --wzeros: weights with ~6% zeros too (the general two-popcount path);
     * default zero-free weights, as the faithful path makes them (sign of
     * continuous standardised weights), so the SIMD kernels' dense path runs */
    const int wzeros = argc > 2 && strcmp(argv[2], "--wzeros") == 0;
    if (reps < 1) reps = 1;
    Rng r = rng_stream(7, RNG_TEST, 0, 0);
    BconvPackedFns cf, af, bf = *bconv_packed_fns();
    bconv_packed_init_fns(&cf, 0);
    bconv_packed_init_fns(&af, BCONV_CPU_AVX2);
    const unsigned fl = bconv_packed_cpu_flags();
    printf("batch %d, %d threads, weights %s, best table: %s, median of %d\n", BATCH, omp_get_max_threads(),
           wzeros ? "with zeros" : "zero-free",
           fl & BCONV_CPU_AVX512 ? "avx512-vpopcntdq conv + avx2 pack" : fl & BCONV_CPU_AVX2 ? "avx2" : "C", reps);
    printf("%-18s %8s %8s %8s %8s %9s %8s %9s %9s %7s %7s %7s %7s\n", "layer", "fp32 ms", "pack ms", "conv ms",
           "wpack ms", "avx2 p+c", "C p+c", "fp32 GOPS", "best GOPS", "x best", "x conv", "x avx2", "x C");
    double tot_f = 0, tot_b = 0, tot_c = 0, tot_a = 0;
    for (size_t li = 0; li < (size_t)BENCH_N_BIN_LAYERS; li++) {
        const BenchBinLayer *L = &bench_bin_layers[li];
        ConvDims d = conv_dims(BATCH, L->C, L->H, L->H, L->O, 3, L->stride, 1);
        const size_t nin = (size_t)BATCH * L->C * L->H * L->H, nw = (size_t)L->O * L->C * 9;
        const size_t nout = (size_t)BATCH * L->O * d.OH * d.OW, ohw = (size_t)d.OH * d.OW;
        real *a = ternary(nin, 1, &r), *w = ternary(nw, wzeros, &r), *alpha = malloc(L->O * sizeof(real));
        for (int o = 0; o < L->O; o++) alpha[o] = (real)(0.5 + rng_uniform(&r));
        real *y = malloc(nout * sizeof(real)), *out = malloc(nout * sizeof(real)), *out2 = malloc(nout * sizeof(real));
        real *scratch = malloc(conv2d_scratch_size(&d) * sizeof(real));
        uint64_t *pa = aligned_alloc(32, (bitpack_act_words(&d) * 8 + 31) / 32 * 32);
        uint64_t *pw = aligned_alloc(32, (bitpack_weight_words(&d) * 8 + 31) / 32 * 32);
        double tf[64], tp[64], tc[64], tw[64], tcc[64], ta[64];
        if (reps > 64) reps = 64;
        for (int it = -1; it < reps; it++) {
            double t0 = bench_now();
            conv2d_forward(y, a, w, &d, scratch);
            #pragma omp parallel for schedule(static)
            for (long no = 0; no < (long)BATCH * L->O; no++)
                for (size_t i = 0; i < ohw; i++) out[no * ohw + i] = y[no * ohw + i] * alpha[no % L->O];
            double t1 = bench_now();
            bf.pack_weight(pw, w, &d);
            double t2 = bench_now();
            bf.pack_act(pa, a, &d, 0);
            double t3 = bench_now();
            bf.conv_fwd(out2, pa, pw, alpha, &d);
            double t4 = bench_now();
            cf.pack_act(pa, a, &d, 0);
            cf.conv_fwd(out2, pa, pw, alpha, &d);
            double t5 = bench_now();
            af.pack_act(pa, a, &d, 0);
            af.conv_fwd(out2, pa, pw, alpha, &d);
            double t6 = bench_now();
            if (it >= 0) {
                tf[it] = t1 - t0; tw[it] = t2 - t1; tp[it] = t3 - t2; tc[it] = t4 - t3; tcc[it] = t5 - t4; ta[it] = t6 - t5;
            }
        }
        /* out2 now holds the AVX2 table's result; the best one's is checked too */
        int bad = memcmp(out, out2, nout * sizeof(real)) != 0;
        bf.pack_act(pa, a, &d, 0);
        bf.conv_fwd(out2, pa, pw, alpha, &d);
        bad |= memcmp(out, out2, nout * sizeof(real)) != 0;
        if (bad) {
            fprintf(stderr, "MISMATCH on %s\n", L->name);
            return 1;
        }
        double f = bench_median(tf, reps), p = bench_median(tp, reps), c = bench_median(tc, reps), wp = bench_median(tw, reps);
        double cc = bench_median(tcc, reps), av = bench_median(ta, reps);
        double ops = 2.0 * (double)conv_macs(&d);
        printf("%-18s %8.3f %8.3f %8.3f %8.3f %9.3f %8.2f %9.1f %9.1f %7.2f %7.2f %7.2f %7.2f\n", L->name, f * 1e3,
               p * 1e3, c * 1e3, wp * 1e3, av * 1e3, cc * 1e3, ops / f * 1e-9, ops / (p + c) * 1e-9, f / (p + c), f / c,
               f / av, f / cc);
        tot_f += f; tot_b += p + c; tot_c += cc; tot_a += av;
        free(a); free(w); free(alpha); free(y); free(out); free(out2); free(scratch); free(pa); free(pw);
    }
    printf("total: fp32 %.3f ms, packed best %.3f ms (x%.2f), packed avx2 %.3f ms (x%.2f), packed C %.3f ms (x%.2f)\n",
           tot_f * 1e3, tot_b * 1e3, tot_f / tot_b, tot_a * 1e3, tot_f / tot_a, tot_c * 1e3, tot_f / tot_c);
    return 0;
}
