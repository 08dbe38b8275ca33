/* The quantizers, binarizers and standardisations of core/quant.h, on the
 * double engine (`real` is double, so finite differences are taken in double).
 *
 *  - E2 (weight standardisation, plain and mean-centred) and E3 (per-sample
 *    normalisation): backward against central finite differences,
 *    h = 1e-6, |analytic - numeric| <= 1e-6 * max(1, |numeric|).
 *  - The threshold identity sign(Q_k(x)) == sign(x - theta_k), k = 2..6, on
 *    random data with asymmetric ranges: exact, zero mismatches.
 *  - min-max fake quantization on hand-worked examples (arithmetic in the
 *    comments), including round-half-to-even ties, the 1e-8 scale floor, the
 *    eval-mode clamp, bits = 0, and the running-range EMA over two batches.
 *  - round half to even against nearbyint() on ties and ordinary values.
 *  - the error quantizer: every draw lands on one of the two grid points
 *    around g and inside [min, max], and the mean over many draws is g
 *    (unbiasedness; fixed seed, tolerance 5 standard errors of the worst case
 *    f(1-f) <= 1/4). Noise before the clamp: with the tensor's own range, y
 *    lies in [0, qmax] and noise in [-0.5, 0.5) rounds back onto the grid
 *    whichever comes first, EXCEPT where the division overshoots, y = qmax + ulp:
 *    a hand-found case checks that the maximum then stays the maximum.
 *  - the noise helper: range, exactness, thread-count and length invariance.
 *  - E3 with the range from its own pass (act_normalize_forward_minmax, with
 *    and without writing a0, and minmax_per_tensor_params_known) bitwise against
 *    E3 then the scan, with and without a range hook; NaN, inf and zero extremes
 *    must ask for the scan; quant_codes_u8_rows(x, sigma) against the codes of a0.
 *  - ApproxSign factor values at grid points; sign(0); STE accumulation;
 *    the ReCU clamp on a hand example. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "testutil.h"

#if !REAL_IS_DOUBLE
#error "test_quant must link the double engine (cbnn_f64)"
#endif

#define FD_H 1e-6
#define FD_TOL 1e-6

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

/* ------------------------------------------------ finite differences */

/* f(x) -> y over rows; L = sum R*y; checks dL/dx from the analytic backward */
typedef void (*RowFwd)(real *y, const real *x, int rows, size_t n, int flag);

static void w_std_fwd(real *y, const real *x, int rows, size_t n, int center) {
    real *s = tu_alloc(rows), *m = tu_alloc(rows);
    weight_standardize_forward(y, s, m, x, rows, n, center);
    free(s), free(m);
}
static void a_norm_fwd(real *y, const real *x, int rows, size_t n, int unused) {
    real *s = tu_alloc(rows), *m = tu_alloc(rows);
    act_normalize_forward(y, s, m, x, rows, n);
    free(s), free(m);
}

static void fd_check(const char *what, RowFwd fwd, const real *analytic, real *x, const real *R, int rows, size_t n,
                     int flag) {
    const size_t tot = (size_t)rows * n;
    real *yp = tu_alloc(tot), *ym = tu_alloc(tot);
    double worst = 0;
    for (size_t i = 0; i < tot; i++) {
        real keep = x[i];
        x[i] = keep + FD_H;
        fwd(yp, x, rows, n, flag);
        x[i] = keep - FD_H;
        fwd(ym, x, rows, n, flag);
        x[i] = keep;
        /* only the row of x[i] changes; sum the differences, not two large sums */
        size_t r0 = (i / n) * n;
        double num = 0;
        for (size_t j = r0; j < r0 + n; j++) num += ((double)yp[j] - (double)ym[j]) * (double)R[j];
        num /= 2 * FD_H;
        double e = fabs((double)analytic[i] - num) / fmax(1.0, fabs(num));
        if (e > worst) worst = e;
    }
    CHECK(worst <= FD_TOL, "%s: finite-difference error %.3g > %g", what, worst, FD_TOL);
    printf("  %-32s max FD error %.2e\n", what, worst);
    free(yp), free(ym);
}

static void test_fd(void) {
    Rng r = rng_stream(3, RNG_TEST, 1, 0);
    /* E2: 3 channels of 12 weights with an offset (so centering matters) */
    {
        const int O = 3;
        const size_t n = 12, tot = O * n;
        real *w = tu_alloc(tot), *R = tu_alloc_rand(tot, &r);
        tu_fill_uniform(w, tot, -0.05, 0.15, &r);
        for (int center = 0; center < 2; center++) {
            real *y = tu_alloc(tot), *s = tu_alloc(O), *m = tu_alloc(O), *dw = tu_alloc(tot);
            weight_standardize_forward(y, s, m, w, O, n, center);
            weight_standardize_backward(dw, R, w, s, m, O, n, center);
            fd_check(center ? "E2 weight standardisation, centred" : "E2 weight standardisation", w_std_fwd, dw, w,
                     R, O, n, center);
            free(y), free(s), free(m), free(dw);
        }
        free(w), free(R);
    }
    /* E3: 2 samples of 20 activations, hardtanh-like values around 0.3 */
    {
        const int N = 2;
        const size_t m = 20, tot = N * m;
        real *a = tu_alloc(tot), *R = tu_alloc_rand(tot, &r), *y = tu_alloc(tot), *s = tu_alloc(N),
             *mu = tu_alloc(N), *da = tu_alloc(tot);
        tu_fill_uniform(a, tot, -0.7, 1.0, &r);
        act_normalize_forward(y, s, mu, a, N, m);
        act_normalize_backward(da, R, a, s, mu, N, m);
        fd_check("E3 activation normalisation", a_norm_fwd, da, a, R, N, m, 0);
        /* accumulation: a second call adds the same again */
        act_normalize_backward(da, R, a, s, mu, N, m);
        real *da1 = tu_alloc(tot);
        act_normalize_backward(da1, R, a, s, mu, N, m);
        int bad = 0;
        for (size_t i = 0; i < tot; i++) bad += !near(da[i], 2 * da1[i], 1e-14 * fmax(1, fabs(da1[i])));
        CHECK(bad == 0, "E3 backward does not accumulate");
        free(a), free(R), free(y), free(s), free(mu), free(da), free(da1);
    }
    /* E2 values: a row {1, 2, 3}: mean 2, unbiased var 1, sigma = sqrt(1 + 1e-5),
     * W1 = W * 2*sqrt(2) / sigma */
    {
        real w[3] = {1, 2, 3}, y[3], s, m;
        weight_standardize_forward(y, &s, &m, w, 1, 3, 0);
        double sg = sqrt(1 + 1e-5);
        CHECK(near(s, sg, 1e-15) && near(m, 2, 1e-15), "E2 statistics of {1,2,3}");
        CHECK(near(y[2], 3 * 2 * sqrt(2) / sg, 1e-14), "E2 value %.17g", y[2]);
        weight_standardize_forward(y, &s, &m, w, 1, 3, 1); /* centred: {-1, 0, 1} */
        CHECK(near(y[0], -2 * sqrt(2) / sg, 1e-14) && y[1] == 0, "E2 centred values");
    }
}

/* ------------------------------------------------ threshold identity */

static void test_threshold(void) {
    Rng r = rng_stream(3, RNG_TEST, 2, 0);
    const size_t n = 20000;
    const double ranges[][2] = {{-0.3, 1.7}, {-2.0, 0.25}, {-1.0, 1.0}, {-0.05, 3.0}, {0.2, 1.0}, {-1.3, -0.1}};
    real *x = tu_alloc(n), *q = tu_alloc(n);
    long total = 0, mismatches = 0;
    for (int k = 2; k <= 6; k++)
        for (size_t ri = 0; ri < sizeof ranges / sizeof ranges[0]; ri++) {
            tu_fill_uniform(x, n, ranges[ri][0], ranges[ri][1], &r);
            real zp, R;
            quant_minmax_params(&zp, &R, x, n);
            minmax_uniform_apply(q, x, n, zp, R, k);
            real th = quant_threshold(zp, R, k), s = quant_scale(R, k);
            long mis = 0, flips = 0;
            for (size_t i = 0; i < n; i++) {
                if (sign_value(q[i], 0) != sign_value(x[i] - th, 0)) mis++;
                if (sign_value(q[i], 0) != sign_value(x[i], 0)) flips++;
            }
            total += n;
            mismatches += mis;
            CHECK(mis == 0, "k=%d range [%g, %g]: %ld of %zu signs disagree with sign(x - theta)", k, ranges[ri][0],
                  ranges[ri][1], mis, n);
            if (zp <= 0 && zp + R >= 0)
                CHECK(th > -s / 2 && th <= s / 2, "k=%d: theta %g outside (-s/2, s/2], s = %g", k, th, s);
            if (k == 2 && ri == 0)
                printf("  k=2 on [-0.3, 1.7]: theta = %.4f, s = %.4f, %ld of %zu signs flipped by Q_k\n", th, s,
                       flips, n);
        }
    printf("  threshold identity: %ld mismatches in %ld elements (k = 2..6, 6 ranges)\n", mismatches, total);
    free(x), free(q);
}

/* ------------------------------------------------ min-max by hand */

static int all_equal(const real *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void test_minmax_hand(void) {
    real out[8];
    /* (a) k = 3: zp = -2, R = 7, qmax = 7, s = 1.
     *     y = x + 2 = {0, 0.5, 1.5, 2.5, 3.5, 4.5, 7}; half to even: {0, 0, 2, 2, 4, 4, 7}
     *     x' = y - 2 = {-2, -2, 0, 0, 2, 2, 5} */
    {
        real x[7] = {-2, -1.5, -0.5, 0.5, 1.5, 2.5, 5};
        double want[7] = {-2, -2, 0, 0, 2, 2, 5};
        real run[2] = {0, 0}, zp, R;
        minmax_uniform_per_tensor(out, run, &zp, &R, x, 7, 3.0, 1);
        CHECK(zp == -2 && R == 7 && all_equal(out, want, 7), "hand (a): k=3 ties");
    }
    /* (b) k = 2: zp = 0, R = 1.5, qmax = 3, s = 0.5.
     *     y = 2x = {0, 0.5, 1, 1.5, 3}; half to even {0, 0, 1, 2, 3}; x' = y/2 = {0, 0, 0.5, 1, 1.5} */
    {
        real x[5] = {0, 0.25, 0.5, 0.75, 1.5};
        double want[5] = {0, 0, 0.5, 1, 1.5};
        minmax_uniform_apply(out, x, 5, 0, 1.5, 2.0);
        CHECK(all_equal(out, want, 5), "hand (b): k=2 ties");
    }
    /* (c) no ties, k = 2: zp = 1, R = 3, s = 1. y = {0, 0.2, 0.9, 2.6, 3} -> {0, 0, 1, 3, 3};
     *     x' = {1, 1, 2, 4, 4} */
    {
        real x[5] = {1, 1.2, 1.9, 3.6, 4};
        double want[5] = {1, 1, 2, 4, 4};
        real zp, R;
        quant_minmax_params(&zp, &R, x, 5);
        minmax_uniform_apply(out, x, 5, zp, R, 2.0);
        CHECK(zp == 1 && R == 3 && all_equal(out, want, 5), "hand (c)");
    }
    /* (d) per channel, k = 2, each row its own grid:
     *     row 0 = (b): {0, 0, 0.5, 1, 1.5}
     *     row 1 {-1, -0.5, 0, 0.5, 2}: zp = -1, R = 3, s = 1, y = {0, 0.5, 1, 1.5, 3}
     *           -> {0, 0, 1, 2, 3} -> {-1, -1, 0, 1, 2} */
    {
        real x[10] = {0, 0.25, 0.5, 0.75, 1.5, -1, -0.5, 0, 0.5, 2}, o2[10], zp[2], R[2];
        double want[10] = {0, 0, 0.5, 1, 1.5, -1, -1, 0, 1, 2};
        minmax_uniform_per_channel(o2, zp, R, x, 2, 5, 2.0);
        CHECK(all_equal(o2, want, 10) && zp[0] == 0 && R[0] == 1.5 && zp[1] == -1 && R[1] == 3,
              "hand (d): per channel");
        /* in place gives the same */
        minmax_uniform_per_channel(x, NULL, NULL, x, 2, 5, 2.0);
        CHECK(all_equal(x, want, 10), "hand (d): per channel in place");
    }
    /* (e) eval: running zp = 0, R = 3, k = 2, s = 1. x = {-1, 0.4, 2.5, 7}:
     *     y = {-1, 0.4, 2.5, 7} -> clamp {0, 0.4, 2.5, 3} -> round {0, 0, 2, 3}; running unchanged */
    {
        real x[4] = {-1, 0.4, 2.5, 7}, run[2] = {0, 3};
        double want[4] = {0, 0, 2, 3};
        minmax_uniform_per_tensor(out, run, NULL, NULL, x, 4, 2.0, 0);
        CHECK(all_equal(out, want, 4) && run[0] == 0 && run[1] == 3, "hand (e): eval clamp");
    }
    /* (f) bits = 0: identity, no running update */
    {
        real x[3] = {-0.3, 0.1, 0.77}, run[2] = {0.5, 0.25};
        double want[3] = {-0.3, 0.1, 0.77};
        minmax_uniform_per_tensor(out, run, NULL, NULL, x, 3, 0.0, 1);
        CHECK(all_equal(out, want, 3) && run[0] == 0.5 && run[1] == 0.25, "hand (f): bits 0");
        grad_quant(out, x, 3, 0.0, NULL);
        CHECK(all_equal(out, want, 3), "grad_quant bits 0 is the identity");
    }
    /* (g) a constant tensor: R = 0, s = max(0/3, 1e-8) = 1e-8, y = 0, x' = 0*1e-8 + 0.7 = 0.7 */
    {
        real x[3] = {0.7, 0.7, 0.7};
        double want[3] = {0.7, 0.7, 0.7};
        CHECK(quant_scale(0, 2.0) == (real)1e-8, "scale floor");
        minmax_uniform_apply(out, x, 3, 0.7, 0, 2.0);
        CHECK(all_equal(out, want, 3), "hand (g): R = 0");
    }
    /* qmax as a real: 2^k - 1 for k = 2, 8, 32 */
    CHECK(quant_qmax(2.0) == 3 && quant_qmax(8.0) == 255 && quant_qmax(32.0) == 4294967295.0, "qmax");
    /* (h) the running-range EMA over two batches, k = 2, buffers start at 0:
     *     batch 1 {-1, 0, 2}: zp = -1, R = 3 -> running = (0.1*-1, 0.1*3) = (-0.1, 0.3)
     *     batch 2 {-2, 1, 2}: zp = -2, R = 4 -> running = (0.9*-0.1 + 0.1*-2, 0.9*0.3 + 0.1*4) = (-0.29, 0.67)
     *     batch 2 is quantized with its own range: s = 4/3, y = {0, 2.25, 3} -> {0, 2, 3}
     *     -> x' = {-2, 2*4/3 - 2 = 2/3, 2} */
    {
        real b1[3] = {-1, 0, 2}, b2[3] = {-2, 1, 2}, run[2] = {0, 0};
        minmax_uniform_per_tensor(out, run, NULL, NULL, b1, 3, 2.0, 1);
        CHECK(near(run[0], -0.1, 1e-15) && near(run[1], 0.3, 1e-15), "EMA after batch 1: (%.17g, %.17g)", run[0],
              run[1]);
        minmax_uniform_per_tensor(out, run, NULL, NULL, b2, 3, 2.0, 1);
        CHECK(near(run[0], -0.29, 1e-15) && near(run[1], 0.67, 1e-15), "EMA after batch 2: (%.17g, %.17g)", run[0],
              run[1]);
        CHECK(out[0] == -2 && near(out[1], 2.0 / 3.0, 1e-15) && out[2] == 2, "batch 2 values");
    }
}

static void test_round(void) {
    Rng r = rng_stream(3, RNG_TEST, 3, 0);
    int bad = 0, n = 0;
    for (int j = -20; j <= 20; j++) {
        double v[3] = {j + 0.5, j + 0.49999999999999994, nextafter(j + 0.5, 1e300)};
        for (int t = 0; t < 3; t++, n++) {
            double a = quant_round_half_even(v[t]), b = nearbyint(v[t]);
            if (memcmp(&a, &b, sizeof a) != 0) bad++;
        }
    }
    double special[] = {0.0, -0.0, -0.3, 0x1p52, 0x1p52 + 1, 0x1p53 + 2, 4503599627370495.5, 1e300, -1e300};
    for (size_t t = 0; t < sizeof special / sizeof special[0]; t++, n++) {
        double a = quant_round_half_even(special[t]), b = nearbyint(special[t]);
        if (memcmp(&a, &b, sizeof a) != 0) bad++;
    }
    for (int t = 0; t < 100000; t++, n++) {
        double v = (rng_uniform(&r) - 0.5) * 600;
        double a = quant_round_half_even(v), b = nearbyint(v);
        if (memcmp(&a, &b, sizeof a) != 0) bad++;
    }
    CHECK(bad == 0, "round half even differs from nearbyint on %d of %d values", bad, n);
    CHECK(quant_round_half_even(2.5) == 2 && quant_round_half_even(3.5) == 4 && quant_round_half_even(-2.5) == -2,
          "half to even");
}

/* ------------------------------------------------ error quantizer */

static void test_grad_quant(void) {
    const size_t n = 64;
    const int M = 20000;
    real *g = tu_alloc(n), *q = tu_alloc(n), *noise = tu_alloc(n), *det = tu_alloc(n);
    double *sum = calloc(n, sizeof(double));
    Rng r = rng_stream(3, RNG_TEST, 4, 0);
    tu_fill_uniform(g, n, -0.3, 1.1, &r);
    g[5] = 0;      /* an exact zero: generally not a grid point */
    g[9] = -0.3;   /* the extremes are grid points */
    g[10] = 1.1;
    const double bitss[2] = {2.0, 8.0};
    for (int b = 0; b < 2; b++) {
        const double bits = bitss[b];
        real zp, R;
        quant_minmax_params(&zp, &R, g, n);
        const double s = quant_scale(R, bits);
        memset(sum, 0, n * sizeof(double));
        long off_grid = 0, outside = 0;
        for (int t = 0; t < M; t++) {
            quant_fill_noise(noise, n, 99, (uint64_t)t, (uint64_t)b);
            grad_quant(q, g, n, bits, noise);
            for (size_t i = 0; i < n; i++) {
                sum[i] += q[i];
                /* one of the two grid points around g */
                double lo = zp + floor(((double)g[i] - zp) / s) * s;
                if (!(near(q[i], lo, 1e-12) || near(q[i], lo + s, 1e-12))) off_grid++;
                if (q[i] < zp - 1e-12 || q[i] > zp + R + 1e-12) outside++;
            }
        }
        /* stochastic rounding to y in {floor, floor+1} has variance f(1-f) s^2 <= s^2/4,
         * so the mean of M draws has standard error <= s / (2 sqrt(M)); allow 5 of them */
        const double tol = 5 * s / (2 * sqrt((double)M));
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs(sum[i] / M - g[i]);
            if (e > worst) worst = e;
        }
        CHECK(off_grid == 0, "bits %g: %ld draws not on the two grid points around g", bits, off_grid);
        CHECK(outside == 0, "bits %g: %ld draws outside [min, max] (noise must come before the clamp)", bits,
              outside);
        CHECK(worst <= tol, "bits %g: mean of %d stochastic roundings off by %.3g > %.3g", bits, M, worst, tol);
        printf("  grad_quant bits %g: s = %.4g, worst |mean - g| = %.2e (tolerance %.2e, %d draws)\n", bits, s, worst,
               tol, M);
        /* deterministic rounding = the plain min-max quantizer with the tensor's own range */
        grad_quant(q, g, n, bits, NULL);
        minmax_uniform_apply(det, g, n, zp, R, bits);
        CHECK(memcmp(q, det, n * sizeof(real)) == 0, "bits %g: deterministic grad_quant != minmax", bits);
    }
    /* by hand, bits 2: g = {0, 0.3, 3}: zp = 0, R = 3, s = 1, y = {0, 0.3, 3};
     * noise {0.4, 0.25, 0.45}: y + noise = {0.4, 0.55, 3.45} -> clamp {0.4, 0.55, 3} -> {0, 1, 3};
     * noise {-0.5, -0.4, -0.5}: {-0.5, -0.1, 2.5} -> clamp {0, 0, 2.5} -> {0, 0, 2} (tie to even) */
    {
        real gg[3] = {0, 0.3, 3}, nz1[3] = {0.4, 0.25, 0.45}, nz2[3] = {-0.5, -0.4, -0.5}, o[3];
        double w1[3] = {0, 1, 3}, w2[3] = {0, 0, 2};
        grad_quant(o, gg, 3, 2.0, nz1);
        CHECK(all_equal(o, w1, 3), "grad_quant by hand (1): %g %g %g", o[0], o[1], o[2]);
        grad_quant(o, gg, 3, 2.0, nz2);
        CHECK(all_equal(o, w2, 3), "grad_quant by hand (2): %g %g %g", o[0], o[1], o[2]);
    }
    /* the order noise -> clamp: find R with y_max = R / (R/7) > 7 in double
     * (bits 3; the division overshoots by an ulp for about 8% of ranges, never
     * for qmax = 3), then give that element the largest draw 0.5 - 2^-53.
     * Clamp first would give y = 7 + ulp + 0.5 - 2^-53, which rounds to 8: a
     * value above the maximum. Noise first clamps to 7. */
    {
        real gg[2] = {0, 0}, nz[2] = {0, 0.5 - 0x1p-53}, o[2];
        int found = 0;
        for (int j = 1; j < 100000 && !found; j++) {
            real R = 1 + j * 0x1p-20;
            if (R / quant_scale(R, 3.0) > 7) {
                gg[1] = R;
                found = 1;
            }
        }
        CHECK(found, "no overshooting range found");
        grad_quant(o, gg, 2, 3.0, nz);
        CHECK(o[0] == 0 && o[1] <= gg[1] * (1 + 1e-15) && o[1] >= gg[1] * (1 - 1e-15),
              "noise must be added before the clamp: max %.17g became %.17g", gg[1], o[1]);
    }
    free(g), free(q), free(noise), free(det), free(sum);
}

static void test_noise(void) {
    const size_t n = 3 * NOISE_CHUNK + 17;
    real *a = tu_alloc(n), *b = tu_alloc(n), *c = tu_alloc(n);
    omp_set_num_threads(1);
    quant_fill_noise(a, n, 42, 7, 1);
    omp_set_num_threads(2);
    quant_fill_noise(b, n, 42, 7, 1);
    CHECK(memcmp(a, b, n * sizeof(real)) == 0, "noise depends on the thread count");
    quant_fill_noise(c, NOISE_CHUNK + 5, 42, 7, 1);
    CHECK(memcmp(a, c, (NOISE_CHUNK + 5) * sizeof(real)) == 0, "noise of a shorter tensor is not a prefix");
    quant_fill_noise(c, n, 42, 7, 2);
    CHECK(memcmp(a, c, n * sizeof(real)) != 0, "another key gives the same noise");
    double mean = 0, mn = 1, mx = -1;
    long inexact = 0;
    for (size_t i = 0; i < n; i++) {
        mean += a[i];
        if (a[i] < mn) mn = a[i];
        if (a[i] > mx) mx = a[i];
        if (ldexp(a[i], 53) != floor(ldexp(a[i], 53))) inexact++;
    }
    mean /= n;
    /* U(-0.5, 0.5) has sd 1/sqrt(12); allow 5 standard errors */
    CHECK(fabs(mean) < 5 / sqrt(12.0 * n), "noise mean %g", mean);
    CHECK(mn >= -0.5 && mx < 0.5 && mn < -0.49 && mx > 0.49, "noise range [%g, %g]", mn, mx);
    CHECK(inexact == 0, "noise values not multiples of 2^-53");
    free(a), free(b), free(c);
}

/* ------------------------------------------------ sign, ApproxSign, STE, clamp */

static void test_sign_and_friends(void) {
    /* sign */
    real x[5] = {-2, -0.0, 0.0, 3, 1e-300}, o[5];
    double w0[5] = {-1, 0, 0, 1, 1}, w1[5] = {-1, 1, 1, 1, 1};
    sign_forward(o, x, 5, 0);
    CHECK(all_equal(o, w0, 5), "sign with sign(0) = 0");
    sign_forward(o, x, 5, 1);
    CHECK(all_equal(o, w1, 5), "sign with sign(0) = +1");

    /* ApproxSign factor max(0, 2 - 2|x|) at the grid points of
     * k = 2, zp = -1, R = 1.5 (s = 0.5): grid {-1, -0.5, 0, 0.5} -> {0, 1, 2, 1};
     * k = 3, zp = -1, R = 1.75 (s = 0.25): grid -1 .. 0.75 -> {0, .5, 1, 1.5, 2, 1.5, 1, .5}.
     * The values fed in are off-grid; Q_k moves them onto the grid first. */
    {
        real v2[4] = {-0.9, -0.6, 0.2, 0.5}, q2[4], d2[4] = {1, 1, 1, 1}, g2[4] = {2, 2, 2, 2};
        minmax_uniform_apply(q2, v2, 4, -1, 1.5, 2.0);
        double grid2[4] = {-1, -0.5, 0, 0.5}, want2[4] = {1 + 0, 1 + 2, 1 + 4, 1 + 2};
        CHECK(all_equal(q2, grid2, 4), "k=2 grid points");
        approx_sign_backward(d2, g2, q2, 4); /* dx = 1 + 2 * factor */
        CHECK(all_equal(d2, want2, 4), "ApproxSign at the k=2 grid: %g %g %g %g", d2[0], d2[1], d2[2], d2[3]);
        real v3[8] = {-1, -0.8, -0.45, -0.3, 0.1, 0.2, 0.55, 0.75}, q3[8];
        minmax_uniform_apply(q3, v3, 8, -1, 1.75, 3.0);
        double f3[8] = {0, 0.5, 1, 1.5, 2, 1.5, 1, 0.5};
        int bad = 0;
        for (int i = 0; i < 8; i++) bad += approx_sign_grad(q3[i]) != f3[i];
        CHECK(bad == 0, "ApproxSign at the k=3 grid");
        CHECK(approx_sign_grad(1.5) == 0 && approx_sign_grad(-3) == 0 && approx_sign_grad(0) == 2, "factor range");
    }
    /* STE: dx += dout */
    {
        real dx[3] = {1, 2, 3}, g[3] = {0.5, -1, 0};
        double want[3] = {1.5, 1, 3};
        ste_sign_backward(dx, g, 3);
        CHECK(all_equal(dx, want, 3), "ste_sign accumulates");
        minmax_uniform_backward(dx, g, 3);
        double want2[3] = {2, 0, 3};
        CHECK(all_equal(dx, want2, 3), "minmax STE accumulates");
    }
    /* ReCU clamp: w1 = {-3, -1, 0, 1, 3}: mean|w1| = 8/5 = 1.6; tau = 0.75:
     * Q = -1.6 * log(2 - 1.5) = 1.6 log 2 = 1.1090...; clamp -> {-Q, -1, 0, 1, Q};
     * backward passes the gradient only where -Q <= w1 <= Q: {0, 1, 1, 1, 0}. tau = 1: Q = inf. */
    {
        real w[5] = {-3, -1, 0, 1, 3}, w2[5], dw[5] = {0}, g[5] = {1, 1, 1, 1, 1};
        real q = recu_clamp_q(w, 5, 0.75);
        CHECK(near(q, 1.6 * log(2.0), 1e-15), "ReCU Q = %.17g", q);
        recu_clamp_forward(w2, w, 5, q);
        double want[5] = {-q, -1, 0, 1, q}, wantg[5] = {0, 1, 1, 1, 0};
        CHECK(all_equal(w2, want, 5), "ReCU clamp values");
        recu_clamp_backward(dw, g, w, 5, q);
        CHECK(all_equal(dw, wantg, 5), "ReCU clamp mask");
        CHECK(isinf(recu_clamp_q(w, 5, 1.0)), "tau = 1 must give Q = inf");
    }
}

/* act_normalize_forward_minmax against act_normalize_forward then the scan
 * (minmax_per_tensor_params_ex), bitwise: a0, sigma, mean, and through
 * minmax_per_tensor_params_known the zp, range and running range, with and
 * without a range hook; NaN rows and zero extremes must send the caller to the scan. */
static void widen_hook(real *mn, real *mx, real first, void *ctx) {
    (void)first, (void)ctx;
    *mn = *mn - (real)0.5;
    *mx = *mx * (real)2;
}
static int same_bits(real a, real b) { return memcmp(&a, &b, sizeof a) == 0; }
static void test_e3_minmax(void) {
    Rng r = rng_stream(5, RNG_TEST, 3, 0);
    int known = 0, scanned = 0;
    for (int it = 0; it < 120; it++) {
        const int N = 1 + (int)rng_below(&r, 6), kind = it % 6;
        const size_t m = 2 + rng_below(&r, 3000), n = (size_t)N * m;
        real *x = malloc(n * sizeof(real)), *y1 = malloc(n * sizeof(real)), *y2 = malloc(n * sizeof(real));
        real s1[8], m1[8], s2[8], m2[8], mn = 0, mx = 0;
        for (size_t i = 0; i < n; i++) x[i] = (real)(3 * rng_uniform(&r) - 1);
        if (kind == 1) /* all >= 0 with exact zeros: a zero minimum */
            for (size_t i = 0; i < n; i++) x[i] = i % 7 == 0 ? (real)0 : (real)fabs((double)x[i]);
        if (kind == 2) x[rng_below(&r, n)] = (real)NAN;
        if (kind == 3) x[rng_below(&r, n)] = (real)INFINITY;
        if (kind == 4) /* all <= 0 with -0: a zero maximum */
            for (size_t i = 0; i < n; i++) x[i] = i % 5 == 0 ? (real)-0.0 : -(real)fabs((double)x[i]);
        act_normalize_forward(y1, s1, m1, x, N, m);
        const int ok = act_normalize_forward_minmax(y2, s2, m2, &mn, &mx, x, N, m);
        CHECK(memcmp(y1, y2, n * sizeof(real)) == 0 && memcmp(s1, s2, (size_t)N * sizeof(real)) == 0 &&
                  memcmp(m1, m2, (size_t)N * sizeof(real)) == 0,
              "E3 minmax: a0/sigma/mean differ from act_normalize_forward (N %d m %zu kind %d)", N, m, kind);
        /* without a0: the same statistics, verdict and extremes (x's divided by sigma) */
        real s3[8], m3[8], mn3 = 0, mx3 = 0;
        const int ok3 = act_normalize_forward_minmax(NULL, s3, m3, &mn3, &mx3, x, N, m);
        CHECK(ok3 == ok && memcmp(s1, s3, (size_t)N * sizeof(real)) == 0 &&
                  memcmp(m1, m3, (size_t)N * sizeof(real)) == 0 && (!ok || (same_bits(mn, mn3) && same_bits(mx, mx3))),
              "E3 minmax without a0: differs from the a0 pass (N %d m %zu kind %d)", N, m, kind);
        if (ok) { /* the codes from x / sigma equal the codes of a0 */
            const real zs = mn, sc = quant_scale(mx - mn, 4), qm = quant_qmax(4);
            uint8_t *c1 = malloc(n), *c2 = malloc(n);
            quant_codes_u8(c1, y1, n, zs, sc, qm);
            quant_codes_u8_rows(c2, x, N, m, s1, zs, sc, qm);
            CHECK(memcmp(c1, c2, n) == 0, "quant_codes_u8_rows differs from the codes of a0 (N %d m %zu)", N, m);
            free(c1), free(c2);
        }
        if (kind >= 1 && kind <= 4) CHECK(!ok, "E3 minmax: kind %d (NaN, inf or a zero extreme) must ask for the scan", kind);
        if (kind == 0 || kind == 5) CHECK(ok, "E3 minmax: plain data must give the range (N %d m %zu)", N, m);
        if (ok) {
            for (int h = 0; h < 2; h++) {
                real za, ra, zb, rb, runa[2] = {(real)0.3, (real)1.7}, runb[2] = {(real)0.3, (real)1.7};
                minmax_per_tensor_params_ex(&za, &ra, runa, y1, n, 1, h ? widen_hook : NULL, NULL);
                minmax_per_tensor_params_known(&zb, &rb, runb, mn, mx, y2[0], h ? widen_hook : NULL, NULL);
                CHECK(same_bits(za, zb) && same_bits(ra, rb) && same_bits(runa[0], runb[0]) &&
                          same_bits(runa[1], runb[1]),
                      "E3 minmax: zp/range/running differ from the scan (N %d m %zu hook %d)", N, m, h);
            }
            known++;
        } else {
            scanned++;
        }
        free(x), free(y1), free(y2);
    }
    CHECK(known > 0 && scanned > 0, "E3 minmax: both outcomes exercised (%d, %d)", known, scanned);
}

int main(void) {
    test_fd();
    test_threshold();
    test_minmax_hand();
    test_round();
    test_grad_quant();
    test_noise();
    test_sign_and_friends();
    test_e3_minmax();
    return tu_finish("quant");
}
