/* AdamW and SGD updates reproducing torch.optim (1.13, single-tensor path).
 *
 * Every element is computed in double and stored back as `real`. The order of
 * the floating-point operations follows PyTorch's in-place tensor ops one for
 * one, including where ATen's CPU kernels fuse a multiply-add. Measured on
 * torch 1.13 float64 (AVX2 kernels; CUDA's nvcc-compiled kernels contract the
 * same expressions), with x the tensor being updated:
 *   x.mul_(s), x / s, x + s      -> plain x*s, x/s (a true division), x+s
 *   x.add_(y, alpha=a)           -> fma(a, y, x)
 *   x.addcmul_(y, z, value=c)    -> fma(c*y, z, x)
 *   x.addcdiv_(y, z, value=c)    -> x + (c*y)/z   (not fused)
 * With these, the double build reproduces torch float64 trajectories bit for
 * bit (tests/test_optim.c), and the float build stays within a rounding of
 * torch float32. fma() is exact in C whatever the CPU (glibc uses the
 * instruction when present), so results do not depend on the machine; the
 * project compiles with -std=c11, where GCC does not contract the remaining
 * expressions on its own.
 *
 * Scalar coefficients (1 - lr*wd, 1 - beta, lr / bias_correction) are formed
 * in double first, as Python does before handing them to the kernel.
 * Intermediates stay in double; only what is written back (parameters and
 * optimizer state) is rounded to `real`, and the update then uses the stored
 * state, as torch reads it back from the state tensor. In the double build the
 * roundings are no-ops.
 *
 * The loops are elementwise and independent, so an OpenMP parallel-for gives
 * bit-identical results for any thread count. Small tensors (biases, BN
 * affine parameters) stay serial: forking a team would cost more than the
 * update. */
#include "optim.h"

#include <math.h>

#include "cpu.h"

/* Below this many elements the update runs on the calling thread only. */
#define OPTIM_PAR_MIN 32768

/* The elementwise AdamW loop. fma() is correctly rounded either way; compiled
 * for FMA it is one instruction instead of a libm call per use and the loop
 * vectorises: bitwise the same results, faster on this memory-bound update.
 * The FMA clone runs when cpu_features() has AVX2 and FMA (core/cpu.h). */
#define ADAMW_LOOP_BODY                                                               \
    for (ptrdiff_t i = 0; i < nn; i++) {                                              \
        const double g = (double)grad[i];                                             \
        /* param.mul_(1 - lr*wd): decoupled decay, before the moments are used */    \
        const double p = (double)param[i] * decay;                                    \
        /* exp_avg.mul_(b1).add_(g, alpha=1-b1) */                                    \
        m[i] = (real)fma(one_m_b1, g, (double)m[i] * b1);                             \
        /* exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) */                          \
        v[i] = (real)fma(one_m_b2 * g, g, (double)v[i] * b2);                         \
        /* denom = exp_avg_sq.sqrt() / sqrt(bc2) + eps, on the stored moments */     \
        const double denom = sqrt((double)v[i]) / bias_correction2_sqrt + eps;       \
        /* param.addcdiv_(exp_avg, denom, value=-step_size) */                        \
        param[i] = (real)(p + (neg_step_size * (double)m[i]) / denom);               \
    }

typedef struct {
    double decay, b1, b2, one_m_b1, one_m_b2, bias_correction2_sqrt, eps, neg_step_size;
} AdamWScalars;

static void adamw_chunk(real *restrict param, const real *restrict grad, real *restrict m, real *restrict v,
                        ptrdiff_t nn, const AdamWScalars *k) {
    const double decay = k->decay, b1 = k->b1, b2 = k->b2, one_m_b1 = k->one_m_b1, one_m_b2 = k->one_m_b2;
    const double bias_correction2_sqrt = k->bias_correction2_sqrt, eps = k->eps, neg_step_size = k->neg_step_size;
    ADAMW_LOOP_BODY
}

#if defined(__x86_64__) && defined(__GNUC__) && !REAL_IS_DOUBLE
#include <immintrin.h>
#define OPTIM_HAVE_FMA_CLONE 1
/* The same loop, 4 elements at a time in double: every operation is the IEEE
 * one the scalar loop performs (fma, sqrt, division, float<->double
 * conversions round to nearest), so the results are bitwise the same. */
__attribute__((target("avx2,fma"))) static void adamw_chunk_fma(real *restrict param, const real *restrict grad,
                                                                real *restrict m, real *restrict v, ptrdiff_t nn,
                                                                const AdamWScalars *k) {
    const __m256d decay = _mm256_set1_pd(k->decay), b1 = _mm256_set1_pd(k->b1), b2 = _mm256_set1_pd(k->b2);
    const __m256d om1 = _mm256_set1_pd(k->one_m_b1), om2 = _mm256_set1_pd(k->one_m_b2);
    const __m256d bc2 = _mm256_set1_pd(k->bias_correction2_sqrt), eps = _mm256_set1_pd(k->eps);
    const __m256d nss = _mm256_set1_pd(k->neg_step_size);
    ptrdiff_t i = 0;
    for (; i + 4 <= nn; i += 4) {
        const __m256d g = _mm256_cvtps_pd(_mm_loadu_ps(grad + i));
        const __m256d p = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(param + i)), decay);
        const __m128 mf = _mm256_cvtpd_ps(_mm256_fmadd_pd(om1, g, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(m + i)), b1)));
        const __m128 vf = _mm256_cvtpd_ps(
            _mm256_fmadd_pd(_mm256_mul_pd(om2, g), g, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(v + i)), b2)));
        _mm_storeu_ps(m + i, mf);
        _mm_storeu_ps(v + i, vf);
        const __m256d denom = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(_mm256_cvtps_pd(vf)), bc2), eps);
        const __m256d upd = _mm256_div_pd(_mm256_mul_pd(nss, _mm256_cvtps_pd(mf)), denom);
        _mm_storeu_ps(param + i, _mm256_cvtpd_ps(_mm256_add_pd(p, upd)));
    }
    adamw_chunk(param + i, grad + i, m + i, v + i, nn - i, k);
}
#endif

void adamw_step(real *param, const real *grad, real *m, real *v, size_t n, double lr,
                const AdamWConfig *c, long t) {
    const double b1 = c->beta1, b2 = c->beta2;
    /* Scalars exactly as torch computes them in Python (step is a float there,
     * so beta ** step is C pow on a double; integral steps are exact). */
    AdamWScalars k;
    k.decay = 1.0 - lr * c->weight_decay;
    k.b1 = b1;
    k.b2 = b2;
    k.one_m_b1 = 1.0 - b1;
    k.one_m_b2 = 1.0 - b2;
    const double bias_correction1 = 1.0 - pow(b1, (double)t);
    const double bias_correction2 = 1.0 - pow(b2, (double)t);
    const double step_size = lr / bias_correction1;
    k.bias_correction2_sqrt = sqrt(bias_correction2);
    k.eps = c->eps;
    k.neg_step_size = -step_size;
    void (*chunk)(real *, const real *, real *, real *, ptrdiff_t, const AdamWScalars *) = adamw_chunk;
#ifdef OPTIM_HAVE_FMA_CLONE
    if ((cpu_features() & (CPU_AVX2 | CPU_FMA)) == (CPU_AVX2 | CPU_FMA)) chunk = adamw_chunk_fma;
#endif
    /* fixed chunks, each on one thread: the work split does not change any value */
    const ptrdiff_t nn = (ptrdiff_t)n, len = 16384, nch = (nn + len - 1) / len;
#pragma omp parallel for schedule(static) if (nn >= OPTIM_PAR_MIN)
    for (ptrdiff_t ci = 0; ci < nch; ci++) {
        const ptrdiff_t lo = ci * len, hi = lo + len < nn ? lo + len : nn;
        chunk(param + lo, grad + lo, m + lo, v + lo, hi - lo, &k);
    }
}

void sgd_step(real *param, const real *grad, real *buf, size_t n, double lr, const SGDConfig *c,
              long t) {
    const double wd = c->weight_decay;
    const double mom = c->momentum;
    const double one_m_damp = 1.0 - c->dampening;
    const int nesterov = c->nesterov;
    /* torch creates the momentum buffer as a copy of the first (decayed)
     * gradient; with fresh state that is exactly the first step */
    const int first = (t <= 1);
    const double neg_lr = -lr;
    const ptrdiff_t nn = (ptrdiff_t)n;

#pragma omp parallel for schedule(static) if (nn >= OPTIM_PAR_MIN)
    for (ptrdiff_t i = 0; i < nn; i++) {
        double d = (double)grad[i];
        const double p = (double)param[i];
        /* d_p.add(param, alpha=wd); torch skips it when wd == 0, which matters
         * only for non-finite parameters (0 * inf = NaN): mirror that */
        if (wd != 0.0) d = fma(wd, p, d);
        if (mom != 0.0) {
            /* buf = clone(d_p) on the first step, else buf.mul_(mom).add_(d_p, alpha=1-damp) */
            buf[i] = first ? (real)d : (real)fma(one_m_damp, d, (double)buf[i] * mom);
            const double b = (double)buf[i]; /* use what is stored, as torch does */
            /* nesterov: d_p.add(buf, alpha=mom); else d_p = buf */
            d = nesterov ? fma(mom, b, d) : b;
        }
        /* param.add_(d_p, alpha=-lr) */
        param[i] = (real)fma(neg_lr, d, p);
    }
}
