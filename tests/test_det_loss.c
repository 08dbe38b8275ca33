/* The detector's losses (core/detect/det_loss.h):
 *   - smooth-L1(sigma) values by hand on both sides of 1/sigma^2 for the RPN's
 *     sigma 3 and the head's sigma 1, with inside and outside weights, at the
 *     branch point itself, and an in_w of 0 (an unlabelled anchor);
 *     gradients by finite differences on random data away from the kinks;
 *   - mean square by hand and by finite differences;
 *   - the entropy prior by hand for s = (1, 3), n_gt = 2 (value and the
 *     gradient with sum(s) detached, which finite differences of a
 *     surrogate with the sum frozen confirm), the zero cases;
 *   - box sampling by hand and its gradient by finite differences.
 * Links the f64 engine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "det_loss.h"
#include "testutil.h"

#if !REAL_IS_DOUBLE
#error "test_det_loss must link the f64 engine (finite differences need double)"
#endif

#define FD_H 1e-6
#define FD_TOL 1e-7
#define TOL 1e-12

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fabs(b)); }

/* ------------------------------------------------------------- smooth-L1 */

static void test_smooth_l1_values(void) {
    /* sigma 3, the quadratic piece for |d| < 1/9. d = in_w (pred - target):
     * 0.2 * 0.5 = 0.1 (inside), -0.5 and 0.2 (outside), then in_w 0 */
    const real pred[] = {0.6, -0.5, 0.2, 0.7};
    const float target[] = {0.1f, 0.0f, 0.0f, 0.3f};
    const float in_w[] = {0.2f, 1.0f, 1.0f, 0.0f};
    const float out_w[] = {2.0f, 1.0f, 0.5f, 3.0f};
    double v;
    /* element by element, sigma 3 (sigma^2 = 9) */
    v = smooth_l1_sigma_forward(pred, target, in_w, out_w, 1, 3.0);
    double d0 = (double)in_w[0] * ((double)pred[0] - (double)target[0]); /* ~0.1 in float weights */
    CHECK(near(v, 2.0 * 0.5 * 9.0 * d0 * d0, TOL) && fabs(v - 0.09) < 1e-6, "sl1 s3 inside: %.17g", v);
    v = smooth_l1_sigma_forward(pred + 1, target + 1, in_w + 1, out_w + 1, 1, 3.0);
    CHECK(near(v, 0.5 - 0.5 / 9.0, TOL), "sl1 s3 outside |d| = 0.5: %.17g, want 4/9", v);
    v = smooth_l1_sigma_forward(pred + 2, target + 2, in_w + 2, out_w + 2, 1, 3.0);
    CHECK(near(v, 0.5 * (0.2 - 0.5 / 9.0), TOL), "sl1 s3 outside with out_w 0.5: %.17g", v);
    v = smooth_l1_sigma_forward(pred + 3, target + 3, in_w + 3, out_w + 3, 1, 3.0);
    CHECK(v == 0.0, "in_w 0 gives 0, not %.17g", v);
    /* the sum of elements is the sum of the terms, NULL weights are 1 */
    const real p2[] = {0.5, -2.0, 1.0, 0.0};
    const float t2[] = {0.0f, 0.0f, 0.0f, 0.0f};
    v = smooth_l1_sigma_forward(p2, t2, NULL, NULL, 4, 1.0);
    /* sigma 1: 0.5*0.25 = 0.125; 2 - 0.5 = 1.5; at |d| = 1 the linear piece 1 - 0.5 = 0.5 (flag is |d| < 1); 0 */
    CHECK(near(v, 0.125 + 1.5 + 0.5, TOL), "sl1 s1 sum: %.17g, want 2.125", v);
    v = smooth_l1_sigma_forward(p2, t2, NULL, NULL, 4, 3.0);
    CHECK(near(v, (0.5 - 0.5 / 9) + (2 - 0.5 / 9) + (1 - 0.5 / 9), TOL), "sl1 s3 sum: %.17g", v);

    /* gradients by hand: inside out_w in_w sigma^2 d, outside out_w in_w sign(d) */
    real g[4] = {0.25, 0.25, 0.25, 0.25};
    smooth_l1_sigma_backward(g, p2, t2, NULL, NULL, 4, 1.0, 2.0);
    CHECK(near(g[0], 0.25 + 2 * 0.5, TOL) && near(g[1], 0.25 - 2, TOL) && near(g[2], 0.25 + 2, TOL) &&
              near(g[3], 0.25, TOL),
          "sl1 s1 grads (accumulated on 0.25): %g %g %g %g", g[0], g[1], g[2], g[3]);
    real g1[1] = {0};
    smooth_l1_sigma_backward(g1, pred, target, in_w, out_w, 1, 3.0, 1.0);
    CHECK(near(g1[0], 2.0 * (double)in_w[0] * 9.0 * d0, TOL) && fabs(g1[0] - 0.36) < 1e-5, "sl1 s3 inside grad %.17g",
          g1[0]);
    g1[0] = 0;
    smooth_l1_sigma_backward(g1, pred + 3, target + 3, in_w + 3, out_w + 3, 1, 3.0, 1.0);
    CHECK(g1[0] == 0, "in_w 0: no gradient (%g)", g1[0]);
    smooth_l1_sigma_backward(NULL, p2, t2, NULL, NULL, 4, 1.0, 1.0); /* NULL: nothing, no crash */
}

typedef struct {
    real *pred;
    const float *target, *in_w, *out_w;
    size_t n;
    double sigma;
} SL1;

static void test_smooth_l1_fd(double sigma) {
    enum { n = 40 };
    Rng r = rng_stream(77, RNG_TEST, (uint64_t)(sigma * 10), 0);
    real pred[n], g[n], g0[n];
    float target[n], in_w[n], out_w[n];
    const double s2 = sigma * sigma;
    for (int i = 0; i < n; i++) {
        target[i] = (float)(2 * rng_uniform(&r) - 1);
        in_w[i] = (float)(i % 5 == 0 ? 0.0 : 0.2 + rng_uniform(&r));
        out_w[i] = (float)(0.1 + rng_uniform(&r));
        /* d spread over both pieces, at least 1e-3 from the kinks at 0 and +-1/sigma^2 */
        double d;
        do d = (2 * rng_uniform(&r) - 1) * 3.0 / s2;
        while (fabs(d) < 1e-3 || fabs(fabs(d) - 1 / s2) < 1e-3);
        pred[i] = (real)((double)target[i] + (in_w[i] > 0 ? d / in_w[i] : d));
        g0[i] = g[i] = (real)(rng_uniform(&r) - 0.5);
    }
    const double dloss = 0.7;
    smooth_l1_sigma_backward(g, pred, target, in_w, out_w, n, sigma, dloss);
    double worst = 0;
    int inside = 0;
    for (int i = 0; i < n; i++) {
        const double d = (double)in_w[i] * ((double)pred[i] - (double)target[i]);
        inside += fabs(d) < 1 / s2 && in_w[i] > 0;
        real p = pred[i];
        pred[i] = p + FD_H;
        double lp = smooth_l1_sigma_forward(pred, target, in_w, out_w, n, sigma);
        pred[i] = p - FD_H;
        double lm = smooth_l1_sigma_forward(pred, target, in_w, out_w, n, sigma);
        pred[i] = p;
        double fd = dloss * (lp - lm) / (2 * FD_H), an = (double)g[i] - (double)g0[i];
        double e = fabs(fd - an) / fmax(1, fabs(an));
        if (!(e <= worst)) worst = e;
    }
    CHECK(inside >= 5 && inside <= n - 13, "sigma %g: both pieces sampled (%d inside)", sigma, inside);
    CHECK(worst <= FD_TOL, "smooth-L1 sigma %g: max FD error %.3e", sigma, worst);
}

/* ----------------------------------------------------------- mean square */

static void test_mean_square(void) {
    const real x[] = {1, -2, 3};
    CHECK(near(mean_square_forward(x, 3), 14.0 / 3.0, TOL), "mean square (1,-2,3) = %.17g, want 14/3",
          mean_square_forward(x, 3));
    CHECK(mean_square_forward(x, 0) == 0, "mean square of nothing is 0");
    real g[3] = {1, 1, 1};
    mean_square_backward(g, x, 3, 1.5);
    CHECK(near(g[0], 1 + 1.5 * 2 * 1 / 3.0, TOL) && near(g[1], 1 - 1.5 * 2 * 2 / 3.0, TOL) &&
              near(g[2], 1 + 1.5 * 2 * 3 / 3.0, TOL),
          "mean square grads %g %g %g", g[0], g[1], g[2]);
    enum { n = 17 };
    Rng r = rng_stream(78, RNG_TEST, 0, 0);
    real y[n], gy[n];
    tu_fill_uniform(y, n, -2, 2, &r);
    memset(gy, 0, sizeof gy);
    mean_square_backward(gy, y, n, 1.0);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        real v = y[i];
        y[i] = v + FD_H;
        double lp = mean_square_forward(y, n);
        y[i] = v - FD_H;
        double lm = mean_square_forward(y, n);
        y[i] = v;
        worst = fmax(worst, fabs((lp - lm) / (2 * FD_H) - gy[i]));
    }
    CHECK(worst <= FD_TOL, "mean square FD error %.3e", worst);
}

/* --------------------------------------------------------- entropy prior */

/* the loss with the normaliser frozen at S0: what autograd differentiates */
static double prior_frozen(const real *s, int n, double n_gt, double S0) {
    double h = 0;
    for (int i = 0; i < n; i++) {
        double p = (double)s[i] / S0;
        h += p * log(p + 1e-6);
    }
    return -h / n_gt;
}

static void test_entropy_prior(void) {
    const real s[] = {1, 3};
    /* p = (1/4, 3/4): -(0.25 ln 0.250001 + 0.75 ln 0.750001) / 2 (python, double);
     * the entropy itself H = 0.5623351446... nats, halved 0.28116757230940415, and
     * the +1e-6 inside the logs lowers it by 2e-6 / 2 */
    double v = entropy_prior_forward(s, 2, 2.0);
    CHECK(near(v, 0.2811665723107375, 1e-14), "entropy prior (1, 3) / 2 = %.17g", v);
    real g[2] = {0.5, 0.5};
    entropy_prior_backward(g, s, 2, 2.0, 1.0);
    /* -(ln(p + 1e-6) + p / (p + 1e-6)) / (S n_gt), S = 4 detached */
    CHECK(near(g[0] - 0.5, 0.04828679513898633, 1e-12) && near(g[1] - 0.5, -0.08903974094363849, 1e-12),
          "entropy prior grads %.17g %.17g", g[0] - 0.5, g[1] - 0.5);
    /* with S a variable the gradient would sum to ~0 (p sums to 1): detached, it does not */
    CHECK(fabs((g[0] - 0.5) + (g[1] - 0.5)) > 0.04, "the sum is detached: grads sum to %g", g[0] + g[1] - 1);

    /* FD of the frozen-sum surrogate on random scores, with dloss */
    enum { n = 12 };
    Rng r = rng_stream(79, RNG_TEST, 0, 0);
    real sc[n], gs[n];
    tu_fill_uniform(sc, n, 0.01, 1.0, &r);
    memset(gs, 0, sizeof gs);
    const double dloss = 0.3, ngt = 3;
    entropy_prior_backward(gs, sc, n, ngt, dloss);
    double S0 = 0, worst = 0;
    for (int i = 0; i < n; i++) S0 += sc[i];
    CHECK(near(entropy_prior_forward(sc, n, ngt), prior_frozen(sc, n, ngt, S0), 1e-13), "forward = surrogate at S0");
    for (int i = 0; i < n; i++) {
        real v0 = sc[i];
        sc[i] = v0 + FD_H;
        double lp = prior_frozen(sc, n, ngt, S0);
        sc[i] = v0 - FD_H;
        double lm = prior_frozen(sc, n, ngt, S0);
        sc[i] = v0;
        worst = fmax(worst, fabs(dloss * (lp - lm) / (2 * FD_H) - gs[i]));
    }
    CHECK(worst <= FD_TOL, "entropy prior FD (sum frozen) error %.3e", worst);

    /* zero cases: no scores, scores summing to 0, no GT: 0 and no gradient */
    const real z[] = {0, 0};
    real gz[2] = {0.125, 0.125};
    CHECK(entropy_prior_forward(s, 0, 2.0) == 0 && entropy_prior_forward(z, 2, 2.0) == 0 &&
              entropy_prior_forward(s, 2, 0.0) == 0,
          "zero cases give 0");
    entropy_prior_backward(gz, s, 0, 2.0, 1.0);
    entropy_prior_backward(gz, z, 2, 2.0, 1.0);
    entropy_prior_backward(gz, s, 2, 0.0, 1.0);
    CHECK(gz[0] == 0.125 && gz[1] == 0.125, "zero cases add no gradient");
    /* a zero score contributes 0 * log(1e-6) = 0 to the value: (0, 1, 3) is (1, 3) */
    const real s0[] = {0, 1, 3};
    CHECK(near(entropy_prior_forward(s0, 3, 2.0), 0.2811665723107375, 1e-14), "a zero score adds nothing");
    /* one score: p = 1, -ln(1 + 1e-6) / n_gt */
    const real one[] = {0.4};
    CHECK(near(entropy_prior_forward(one, 1, 1.0), -log(1.000001), 1e-14), "single score");
}

/* ---------------------------------------------------------- box sampling */

static void test_box_sample(void) {
    /* mu 0.5, log_var ln 4 (sigma 2), eps 1.5, sample_sigma 0.001: 0.5 + 1.5 * 2 * 0.001 */
    const real mu[] = {0.5, -1.0}, lv[] = {log(4.0), 0.0}, eps[] = {1.5, -2.0};
    real out[2];
    box_sample_forward(out, mu, lv, eps, 2, 0.001);
    CHECK(near(out[0], 0.503, TOL) && near(out[1], -1.002, TOL), "box sample %.17g %.17g", out[0], out[1]);
    real dmu[2] = {0, 0}, dlv[2] = {0, 0};
    const real dout[] = {1, 1};
    box_sample_backward(dmu, dlv, dout, lv, eps, 2, 0.001);
    /* dlv = eps * sample_sigma * 0.5 * exp(lv / 2): 1.5 * 0.001 * 0.5 * 2, -2 * 0.001 * 0.5 */
    CHECK(dmu[0] == 1 && dmu[1] == 1 && near(dlv[0], 0.0015, TOL) && near(dlv[1], -0.001, TOL),
          "box sample grads %g %g %g %g", dmu[0], dmu[1], dlv[0], dlv[1]);

    enum { n = 16 };
    Rng r = rng_stream(80, RNG_TEST, 0, 0);
    real m[n], l[n], e[n], R[n], o[n], gm[n], gl[n], gm0[n], gl0[n];
    tu_fill_uniform(m, n, -1, 1, &r);
    tu_fill_uniform(l, n, -2, 2, &r);
    tu_fill_uniform(e, n, -2, 2, &r);
    tu_fill_uniform(R, n, -1, 1, &r);
    tu_fill_uniform(gm, n, -1, 1, &r);
    tu_fill_uniform(gl, n, -1, 1, &r);
    memcpy(gm0, gm, sizeof gm);
    memcpy(gl0, gl, sizeof gl);
    const double ss = 0.5; /* large enough that the log_var gradient is not tiny */
    box_sample_backward(gm, gl, R, l, e, n, ss);
    double worst = 0;
    for (int which = 0; which < 2; which++)
        for (int i = 0; i < n; i++) {
            real *x = which ? l : m;
            real v = x[i];
            double L[2];
            for (int k = 0; k < 2; k++) {
                x[i] = v + (k ? -FD_H : FD_H);
                box_sample_forward(o, m, l, e, n, ss);
                L[k] = 0;
                for (int j = 0; j < n; j++) L[k] += (double)R[j] * o[j];
            }
            x[i] = v;
            double an = which ? gl[i] - gl0[i] : gm[i] - gm0[i];
            worst = fmax(worst, fabs((L[0] - L[1]) / (2 * FD_H) - an));
        }
    CHECK(worst <= FD_TOL, "box sample FD error %.3e", worst);
    /* NULL targets are skipped */
    box_sample_backward(NULL, gl, R, l, e, n, ss);
    box_sample_backward(gm, NULL, R, l, e, n, ss);
}

int main(void) {
    test_smooth_l1_values();
    test_smooth_l1_fd(3.0);
    test_smooth_l1_fd(1.0);
    test_mean_square();
    test_entropy_prior();
    test_box_sample();
    return tu_finish("test_det_loss");
}
