/* AdamW and SGD updates reproducing torch.optim (1.13, single-tensor path).
 *
 * Every element is computed in double and stored back as `real`. The order of
 * the floating-point operations follows PyTorch's in-place tensor ops one for
 * one (mul_, add_(alpha), addcmul_, sqrt, div, add_(eps), addcdiv_), so that
 * the double build reproduces torch float64 results to the last bit or so and
 * the float build stays close to torch float32. In particular:
 *   add_(x, alpha=a)            -> self + a * x
 *   addcmul_(x, y, value=c)     -> self + (c * x) * y
 *   addcdiv_(x, y, value=c)     -> self + (c * x) / y
 * and scalar coefficients (1 - lr*wd, 1 - beta, lr / bias_correction) are
 * formed in double first, as Python does before handing them to the kernel.
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

/* Below this many elements the update runs on the calling thread only. */
#define OPTIM_PAR_MIN 32768

void adamw_step(real *param, const real *grad, real *m, real *v, size_t n, double lr,
                const AdamWConfig *c, long t) {
    const double b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    /* Scalars exactly as torch computes them in Python (step is a float there,
     * so beta ** step is C pow on a double; integral steps are exact). */
    const double decay = 1.0 - lr * c->weight_decay;
    const double one_m_b1 = 1.0 - b1;
    const double one_m_b2 = 1.0 - b2;
    const double bias_correction1 = 1.0 - pow(b1, (double)t);
    const double bias_correction2 = 1.0 - pow(b2, (double)t);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = sqrt(bias_correction2);
    const double neg_step_size = -step_size;
    const ptrdiff_t nn = (ptrdiff_t)n;

#pragma omp parallel for schedule(static) if (nn >= OPTIM_PAR_MIN)
    for (ptrdiff_t i = 0; i < nn; i++) {
        const double g = (double)grad[i];
        /* decoupled weight decay is applied to the parameter before the moments */
        double p = (double)param[i] * decay;
        double mi = (double)m[i] * b1 + one_m_b1 * g;
        double vi = (double)v[i] * b2 + (one_m_b2 * g) * g;
        /* the moments are state: round them to `real` before they are used,
         * as torch reads them back from the tensor it just wrote */
        m[i] = (real)mi;
        v[i] = (real)vi;
        mi = (double)m[i];
        vi = (double)v[i];
        const double denom = sqrt(vi) / bias_correction2_sqrt + eps;
        param[i] = (real)(p + (neg_step_size * mi) / denom);
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
        /* torch skips the add entirely when wd == 0, which matters only for
         * non-finite parameters (0 * inf = NaN); mirror that */
        if (wd != 0.0) d = d + wd * (double)param[i];
        if (mom != 0.0) {
            double b;
            if (first)
                b = d;
            else
                b = (double)buf[i] * mom + one_m_damp * d;
            buf[i] = (real)b;
            b = (double)buf[i]; /* as with AdamW's moments: use what is stored */
            d = nesterov ? d + mom * b : b;
        }
        param[i] = (real)((double)param[i] + neg_lr * d);
    }
}
