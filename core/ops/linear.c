/* linear (fully connected): out[n,o] = sum_i inp[n,i] * weight[o,i] + bias[o]
 * weight is [OUT, IN] as in PyTorch, so both directions are one GEMM each.
 * The bias gradient is a plain loop over n in a fixed order; the GEMMs are
 * the BLAS's (see core/ops/conv2d.c on its thread-count invariance). */
#include <stddef.h>

#include "blas.h"
#include "ops.h"

void linear_forward(real *out /* [N,OUT] */, const real *inp /* [N,IN] */,
                    const real *weight /* [OUT,IN] */, const real *bias /* [OUT] or NULL */,
                    int N, int IN, int OUT) {
    /* seed every row with the bias and let the GEMM add onto it (beta = 1):
     * saves a second pass over out */
    real beta = 0;
    if (bias != NULL) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) out[(long)n * OUT + o] = bias[o];
        beta = 1;
    }
    /* out[N, OUT] (+)= inp[N, IN] x weight^T[IN, OUT] */
    gemm(0, 1, N, OUT, IN, (real)1, inp, IN, weight, IN, beta, out, OUT);
}

void linear_backward(real *dinp /* [N,IN] or NULL */, real *dweight /* [OUT,IN] */,
                     real *dbias /* [OUT] or NULL */, const real *dout /* [N,OUT] */,
                     const real *inp /* [N,IN] */, const real *weight /* [OUT,IN] */,
                     int N, int IN, int OUT) {
    /* dinp[N, IN] += dout[N, OUT] x weight[OUT, IN] */
    if (dinp != NULL) gemm(0, 0, N, IN, OUT, (real)1, dout, OUT, weight, IN, (real)1, dinp, IN);
    /* dweight[OUT, IN] += dout^T[OUT, N] x inp[N, IN] (NULL: a frozen layer) */
    if (dweight != NULL) gemm(1, 0, OUT, IN, N, (real)1, dout, OUT, inp, IN, (real)1, dweight, IN);
    if (dbias != NULL) {
        for (int o = 0; o < OUT; o++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) acc += (double)dout[(long)n * OUT + o];
            dbias[o] = (real)((double)dbias[o] + acc);
        }
    }
}

/* ------------------------------------------------------------ reference */

void linear_forward_ref(real *out /* [N,OUT] */, const real *inp /* [N,IN] */,
                        const real *weight /* [OUT,IN] */, const real *bias /* [OUT] or NULL */,
                        int N, int IN, int OUT) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double acc = bias != NULL ? (double)bias[o] : 0.0;
            for (int i = 0; i < IN; i++)
                acc += (double)inp[(long)n * IN + i] * (double)weight[(long)o * IN + i];
            out[(long)n * OUT + o] = (real)acc;
        }
}

void linear_backward_ref(real *dinp /* [N,IN] or NULL */, real *dweight /* [OUT,IN] */,
                         real *dbias /* [OUT] or NULL */, const real *dout /* [N,OUT] */,
                         const real *inp /* [N,IN] */, const real *weight /* [OUT,IN] */,
                         int N, int IN, int OUT) {
    if (dinp != NULL) {
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IN; i++) {
                double acc = 0.0;
                for (int o = 0; o < OUT; o++)
                    acc += (double)dout[(long)n * OUT + o] * (double)weight[(long)o * IN + i];
                dinp[(long)n * IN + i] = (real)((double)dinp[(long)n * IN + i] + acc);
            }
    }
    if (dweight != NULL)
        for (int o = 0; o < OUT; o++)
            for (int i = 0; i < IN; i++) {
                double acc = 0.0;
                for (int n = 0; n < N; n++)
                    acc += (double)dout[(long)n * OUT + o] * (double)inp[(long)n * IN + i];
                dweight[(long)o * IN + i] = (real)((double)dweight[(long)o * IN + i] + acc);
            }
    if (dbias != NULL) {
        for (int o = 0; o < OUT; o++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) acc += (double)dout[(long)n * OUT + o];
            dbias[o] = (real)((double)dbias[o] + acc);
        }
    }
}
