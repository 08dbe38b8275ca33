/* linear (fully connected): out[n,o] = sum_i inp[n,i] * weight[o,i] + bias[o]
 * weight is [OUT, IN] as in PyTorch, so both directions are one GEMM each.
 * The bias gradient is a plain loop over n in a fixed order; the GEMMs are
 * the BLAS's (see core/ops/conv2d.c on its thread-count invariance).
 *
 * Shards (issue 15, core/shard.h): linear_backward_sp with a non-trivial plan
 * computes dweight and dbias, the two sums over the batch, per shard of
 * N/local_shards consecutive rows -- dW by today's GEMM on the shard's rows
 * into a zeroed partial, dbias as today's double sum over the shard's rows --
 * adds the partials in the fixed pairwise tree (shard_sum_r / shard_sum_d:
 * this rank's subtree, then the ranks'), and adds the root into the gradient.
 * One process with S shards adds the tree R ranks add together: the bits
 * depend on S, not on R.
 *
 * Rows. OpenBLAS's sgemm does not give a row of C the same bits for every M
 * (measured: out[4, 10] = inp[4, IN] x W^T differs from two calls of 2 rows,
 * IN = 16 .. 2048), so the one-call forward and dinp of a batch depend on how
 * the batch is split -- over ranks, or into evaluation pieces. With a
 * non-trivial plan they run one row per GEMM call instead (linear_forward_sp,
 * and dinp in linear_backward_sp): a row's bits are then those of its own
 * values whatever the batch, the property a forward of 2N = two forwards of N
 * (tests/test_batch_invariance.c). The classifier is a sliver of a model's
 * work, so the row-by-row call costs nothing measurable; sp NULL keeps the
 * one call of always. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "ops.h"
#include "shard.h"

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

/* one GEMM call per row (see "Rows" above): rows in parallel, each its own unit */
static void linear_forward_rows(real *out /* [N,OUT] */, const real *inp /* [N,IN] */,
                                const real *weight /* [OUT,IN] */, const real *bias /* [OUT] or NULL */,
                                int N, int IN, int OUT) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *o = out + (long)n * OUT;
        real beta = 0;
        if (bias != NULL) {
            for (int k = 0; k < OUT; k++) o[k] = bias[k];
            beta = 1;
        }
        gemm(0, 1, 1, OUT, IN, (real)1, inp + (long)n * IN, IN, weight, IN, beta, o, OUT);
    }
}

void linear_forward_sp(real *out /* [N,OUT] */, const real *inp /* [N,IN] */, const real *weight /* [OUT,IN] */,
                       const real *bias /* [OUT] or NULL */, int N, int IN, int OUT, const ShardPlan *sp) {
    if (shard_plan_trivial(sp)) linear_forward(out, inp, weight, bias, N, IN, OUT);
    else linear_forward_rows(out, inp, weight, bias, N, IN, OUT);
}

void linear_backward_sp(real *dinp /* [N,IN] or NULL */, real *dweight /* [OUT,IN] or NULL */,
                        real *dbias /* [OUT] or NULL */, const real *dout /* [N,OUT] */,
                        const real *inp /* [N,IN] */, const real *weight /* [OUT,IN] */,
                        int N, int IN, int OUT, const ShardPlan *sp) {
    if (shard_plan_trivial(sp)) {
        linear_backward(dinp, dweight, dbias, dout, inp, weight, N, IN, OUT);
        return;
    }
    const int ls = sp->local_shards, rows = shard_rows(sp, N);
    /* dinp[n, IN] += dout[n, OUT] x weight[OUT, IN], one row per call ("Rows" above) */
    if (dinp != NULL) {
        #pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            gemm(0, 0, 1, IN, OUT, (real)1, dout + (long)n * OUT, OUT, weight, IN, (real)1, dinp + (long)n * IN, IN);
    }
    if (dweight != NULL) {
        const size_t wn = (size_t)OUT * IN;
        real *tmp;
        void *owned;
        real *parts = shard_ws_r(sp, wn, &tmp, &owned);
        for (int s = 0; s < ls; s++) {
            real *p = parts + (size_t)s * wn;
            memset(p, 0, wn * sizeof(real));
            /* p[OUT, IN] += dout_s^T[OUT, rows] x inp_s[rows, IN]: today's call on the shard */
            gemm(1, 0, OUT, IN, rows, (real)1, dout + (long)s * rows * OUT, OUT, inp + (long)s * rows * IN, IN,
                 (real)1, p, IN);
        }
        shard_sum_r(sp, parts, wn, tmp);
        for (size_t i = 0; i < wn; i++) dweight[i] += parts[i];
        free(owned);
    }
    if (dbias != NULL) {
        double *tmp;
        void *owned;
        double *parts = shard_ws_d(sp, (size_t)OUT, &tmp, &owned);
        for (int s = 0; s < ls; s++)
            for (int o = 0; o < OUT; o++) {
                double acc = 0.0;
                for (int n = s * rows; n < (s + 1) * rows; n++) acc += (double)dout[(long)n * OUT + o];
                parts[(size_t)s * OUT + o] = acc;
            }
        shard_sum_d(sp, parts, (size_t)OUT, tmp);
        for (int o = 0; o < OUT; o++) dbias[o] = (real)((double)dbias[o] + parts[o]);
        free(owned);
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
