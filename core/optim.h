/* Optimizers, exactly PyTorch's update rules (torch.optim.AdamW, torch.optim.SGD,
 * single-tensor "for-loop" implementation, maximize=False, amsgrad=False).
 * Each step updates n parameters in place; `t` is the 1-based step count. */
#ifndef CBNN_OPTIM_H
#define CBNN_OPTIM_H

#include <stddef.h>

#include "real.h"

/* which update rule a run uses (config optim.name) */
typedef enum { OPTIM_ADAMW = 0, OPTIM_SGD } OptimKind;

typedef struct {
    double beta1, beta2, eps, weight_decay;
} AdamWConfig;

/* AdamW (decoupled weight decay):
 *   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
void adamw_step(real *param, const real *grad, real *m /* state */, real *v /* state */, size_t n,
                double lr, const AdamWConfig *c, long t);

typedef struct {
    double momentum, dampening, weight_decay;
    int nesterov;
} SGDConfig;

/* SGD: g += wd*p; buf = (t==1) ? g : momentum*buf + (1-dampening)*g;
 *      g = nesterov ? g + momentum*buf : buf;  p -= lr*g   (momentum 0: p -= lr*g) */
void sgd_step(real *param, const real *grad, real *buf /* state */, size_t n, double lr,
              const SGDConfig *c, long t);

#endif
