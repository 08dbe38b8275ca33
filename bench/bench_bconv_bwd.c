/* The binary conv's two backward products: the fp32 path binary_conv_backward
 * runs today against the integer kernels of core/bconv_bwd_int8.h, on the
 * binary conv layers of CIFAR-10 ResNet-18 at batch 16 (3x3, pad 1).
 *
 *   bench_bconv_bwd [reps [--c]]   (default 5: median of reps after 1 warm-up; --c adds the C table)
 *   BENCH_LAYER=i runs layer i (0-6) only; CBNN_BWD8_NO_DIRECT=1 forces dgrad's col2im path;
 *   CBNN_BWD8_WGRAD_COMPACT=0/1 forces wgrad's phase planes / compact rows (default: by the dims).
 *
 * Inputs: dout ~ U(-0.01, 0.01), alpha ~ U(0, 1), stochastic-rounding noise,
 * Aq with ~6% exact zeros (Ba = sign(Aq) in {-1, 0, +1}), Bw in {-1, +1}.
 * Columns (ms, median over reps):
 *   conv  = conv2d_backward (dinp + dweight, with its im2col / col2im): what the engine's fp32 path runs
 *   fp32  = the whole fp32 step: dy = dout*alpha, grad_quant (8 bits), Ba = sign(Aq) as reals,
 *           zeroing dBa / dBw, conv2d_backward
 *   quant = bconv_bwd_quant_codes (dy = dout*alpha, min/max, codes)
 *   sign  = Ba and Bw to int8 (bconv_bwd_sign_i8)
 *   dgrad, wgrad = the best table's kernels; int8 = quant + sign + dgrad + wgrad
 *   vnni / avx2 (/ C) = the same int8 total with the AVX-VNNI, AVX2 (and C) tables
 * GMAC/s = 2 * conv_macs (both products) / time, for conv and dgrad + wgrad.
 * x = fp32 / int8 (whole step), "x conv" = conv / (dgrad + wgrad).
 * Every table's output is checked bitwise against the best table's, and the
 * best table's against the fp32 path (max |diff| / max |fp32|). Threads from OMP_NUM_THREADS. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "cpu.h"
#include "bconv_bwd_int8.h"
#include "ops.h"
#include "quant.h"
#include "rng.h"

#define BATCH 16
#define MAXR 64


static real *ralloc(size_t n) {
    real *p = malloc((n ? n : 1) * sizeof(real));
    if (!p) abort();
    return p;
}

/* the int8 step with table f; returns the 4 phase times */
static void run_int8(const BconvBwdInt8Fns *f, real *dx, real *dw, uint8_t *codes, real *g, int8_t *ba8, int8_t *bw8,
                     const real *dout, const real *alpha, const real *noise, const real *aq, const real *bw,
                     const ConvDims *d, double t[4]) {
    const size_t OHW = (size_t)d->OH * d->OW, nin = (size_t)d->N * d->C * d->H * d->W;
    const size_t nw = (size_t)d->O * d->C * d->KH * d->KW;
    real zp, s;
    double t0 = bench_now();
    const QuantNoise arr = {.draws = noise};
    if (bconv_bwd_quant_codes(codes, &zp, &s, g, dout, alpha, d->N, d->O, OHW, 8.0, &arr) != 0) {
        fprintf(stderr, "quant_codes refused\n");
        exit(1);
    }
    double t1 = bench_now();
    bconv_bwd_sign_i8(ba8, aq, nin, 0);
    bconv_bwd_sign_i8(bw8, bw, nw, 0);
    double t2 = bench_now();
    f->dgrad(dx, codes, bw8, zp, s, d);
    double t3 = bench_now();
    f->wgrad(dw, codes, ba8, zp, s, d);
    double t4 = bench_now();
    t[0] = t1 - t0; t[1] = t2 - t1; t[2] = t3 - t2; t[3] = t4 - t3;
}

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD must not run (and time) other kernels than asked */
        fprintf(stderr, "bench_bconv_bwd: %s\n", cpu_env_error());
        return 2;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const int with_c = argc > 2 && strcmp(argv[2], "--c") == 0;
    if (reps < 1) reps = 1;
    if (reps > MAXR) reps = MAXR;
    Rng r = rng_stream(11, RNG_TEST, 0, 0);
    BconvBwdInt8Fns best = *bconv_bwd_int8_fns(), vnni, avx2, cf;
    bconv_bwd_int8_init_fns(&vnni, BWD8_CPU_AVX2 | BWD8_CPU_AVXVNNI);
    bconv_bwd_int8_init_fns(&avx2, BWD8_CPU_AVX2);
    bconv_bwd_int8_init_fns(&cf, 0);
    printf("batch %d, %d threads, best table %s, median of %d\n", BATCH, omp_get_max_threads(), best.name, reps);
    printf("%-18s %7s %7s %6s %6s %7s %7s %7s %7s %7s%s %6s %6s %6s %6s %8s\n", "layer", "conv", "fp32", "quant", "sign",
           "dgrad", "wgrad", "int8", vnni.name, avx2.name, with_c ? "       C" : "", "GMAC32", "GMAC8", "x", "x conv",
           "maxrel");
    double T_conv = 0, T_f = 0, T_q = 0, T_s = 0, T_dg = 0, T_wg = 0, T_i = 0, T_v = 0, T_a = 0, T_c = 0;
    const char *only = getenv("BENCH_LAYER"); /* BENCH_LAYER=i: only layer i (0-6), for profiling */
    for (size_t li = 0; li < (size_t)BENCH_N_BIN_LAYERS; li++) {
        if (only && *only && (size_t)atoi(only) != li) continue;
        const BenchBinLayer *L = &bench_bin_layers[li];
        ConvDims d = conv_dims(BATCH, L->C, L->H, L->H, L->O, 3, L->stride, 1);
        const size_t nin = (size_t)BATCH * L->C * L->H * L->H, nw = (size_t)L->O * L->C * 9;
        const size_t OHW = (size_t)d.OH * d.OW, nout = (size_t)BATCH * L->O * OHW;
        real *dout = ralloc(nout), *alpha = ralloc(L->O), *noise = ralloc(nout), *aq = ralloc(nin), *bw = ralloc(nw);
        for (size_t i = 0; i < nout; i++) dout[i] = (real)(0.02 * rng_uniform(&r) - 0.01);
        for (int o = 0; o < L->O; o++) alpha[o] = (real)rng_uniform(&r);
        quant_fill_noise(noise, nout, 5, li, 0);
        for (size_t i = 0; i < nin; i++) {
            uint64_t k = rng_below(&r, 16);
            aq[i] = k == 0 ? (real)0 : (real)((k & 1) ? 1 : -1) * (real)(0.1 + rng_uniform(&r));
        }
        for (size_t i = 0; i < nw; i++) bw[i] = rng_below(&r, 2) ? (real)1 : (real)-1;
        /* fp32 buffers */
        real *dy = ralloc(nout), *ba = ralloc(nin), *dba = ralloc(nin), *dbw = ralloc(nw);
        real *scratch = ralloc(conv2d_scratch_size(&d));
        /* int8 buffers */
        uint8_t *codes = malloc(nout);
        int8_t *ba8 = malloc(nin), *bw8 = malloc(nw);
        real *g = ralloc(nout), *dx = ralloc(nin), *dw = ralloc(nw), *dx2 = ralloc(nin), *dw2 = ralloc(nw);
        double tc[MAXR], tf[MAXR], tq[MAXR], ts[MAXR], tdg[MAXR], twg[MAXR], tv[MAXR], ta[MAXR], tcc[MAXR];
        int bad = 0;
        for (int it = -1; it < reps; it++) {
            /* fp32 step */
            double t0 = bench_now();
            #pragma omp parallel for schedule(static)
            for (long no = 0; no < (long)BATCH * L->O; no++)
                for (size_t i = 0; i < OHW; i++) dy[no * OHW + i] = dout[no * OHW + i] * alpha[no % L->O];
            grad_quant(dy, dy, nout, 8.0, noise);
            sign_forward(ba, aq, nin, 0);
            memset(dba, 0, nin * sizeof(real));
            memset(dbw, 0, nw * sizeof(real));
            double t1 = bench_now();
            conv2d_backward(dba, dbw, dy, ba, bw, &d, scratch);
            double t2 = bench_now();
            double t4[4];
            run_int8(&best, dx, dw, codes, g, ba8, bw8, dout, alpha, noise, aq, bw, &d, t4);
            double tt[4];
            run_int8(&vnni, dx2, dw2, codes, g, ba8, bw8, dout, alpha, noise, aq, bw, &d, tt);
            bad |= memcmp(dx, dx2, nin * sizeof(real)) || memcmp(dw, dw2, nw * sizeof(real));
            double tv1 = tt[0] + tt[1] + tt[2] + tt[3];
            run_int8(&avx2, dx2, dw2, codes, g, ba8, bw8, dout, alpha, noise, aq, bw, &d, tt);
            bad |= memcmp(dx, dx2, nin * sizeof(real)) || memcmp(dw, dw2, nw * sizeof(real));
            double ta1 = tt[0] + tt[1] + tt[2] + tt[3], tc1 = 0;
            if (with_c && it < 1) { /* the C table: one timed rep (slow) */
                run_int8(&cf, dx2, dw2, codes, g, ba8, bw8, dout, alpha, noise, aq, bw, &d, tt);
                bad |= memcmp(dx, dx2, nin * sizeof(real)) || memcmp(dw, dw2, nw * sizeof(real));
                tc1 = tt[0] + tt[1] + tt[2] + tt[3];
            }
            if (it >= 0) {
                tc[it] = t2 - t1; tf[it] = t2 - t0;
                tq[it] = t4[0]; ts[it] = t4[1]; tdg[it] = t4[2]; twg[it] = t4[3];
                tv[it] = tv1; ta[it] = ta1; tcc[it] = with_c ? tcc[0] : 0;
                if (it == 0) tcc[0] = tc1;
            }
        }
        if (bad) {
            fprintf(stderr, "MISMATCH between tables on %s\n", L->name);
            return 1;
        }
        /* against the fp32 path */
        double mx = 0, md = 0;
        for (size_t i = 0; i < nin; i++) {
            if (fabs(dba[i]) > mx) mx = fabs(dba[i]);
            if (fabs(dba[i] - dx[i]) > md) md = fabs(dba[i] - dx[i]);
        }
        double mx2 = 0, md2 = 0;
        for (size_t i = 0; i < nw; i++) {
            if (fabs(dbw[i]) > mx2) mx2 = fabs(dbw[i]);
            if (fabs(dbw[i] - dw[i]) > md2) md2 = fabs(dbw[i] - dw[i]);
        }
        const double rel = fmax(md / (mx > 0 ? mx : 1), md2 / (mx2 > 0 ? mx2 : 1));
        const double c = bench_median(tc, reps), f = bench_median(tf, reps), q = bench_median(tq, reps), s = bench_median(ts, reps);
        const double dg = bench_median(tdg, reps), wg = bench_median(twg, reps), v = bench_median(tv, reps), a = bench_median(ta, reps);
        const double cc = with_c ? tcc[0] : 0, i8 = q + s + dg + wg;
        const double macs = 2.0 * (double)conv_macs(&d);
        printf("%-18s %7.3f %7.3f %6.3f %6.3f %7.3f %7.3f %7.3f %7.3f %7.3f", L->name, c * 1e3, f * 1e3, q * 1e3,
               s * 1e3, dg * 1e3, wg * 1e3, i8 * 1e3, v * 1e3, a * 1e3);
        if (with_c) printf(" %7.1f", cc * 1e3);
        printf(" %6.1f %6.1f %6.2f %6.2f %8.1e\n", macs / c * 1e-9, macs / (dg + wg) * 1e-9, f / i8, c / (dg + wg), rel);
        T_conv += c; T_f += f; T_q += q; T_s += s; T_dg += dg; T_wg += wg; T_i += i8; T_v += v; T_a += a; T_c += cc;
        free(dout); free(alpha); free(noise); free(aq); free(bw); free(dy); free(ba); free(dba); free(dbw);
        free(scratch); free(codes); free(ba8); free(bw8); free(g); free(dx); free(dw); free(dx2); free(dw2);
    }
    printf("%-18s %7.3f %7.3f %6.3f %6.3f %7.3f %7.3f %7.3f %7.3f %7.3f", "total", T_conv * 1e3, T_f * 1e3, T_q * 1e3,
           T_s * 1e3, T_dg * 1e3, T_wg * 1e3, T_i * 1e3, T_v * 1e3, T_a * 1e3);
    if (with_c) printf(" %7.1f", T_c * 1e3);
    printf("   %-13s %6.2f %6.2f\n", "", T_f / T_i, T_conv / (T_dg + T_wg));
    printf("whole step fp32 %.2f ms -> int8 %s %.2f ms (x%.2f), %s %.2f ms (x%.2f), %s %.2f ms (x%.2f)\n", T_f * 1e3,
           best.name, T_i * 1e3, T_f / T_i, vnni.name, T_v * 1e3, T_f / T_v, avx2.name, T_a * 1e3, T_f / T_a);
    return 0;
}
