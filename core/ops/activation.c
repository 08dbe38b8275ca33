/* Elementwise activations. Every element is independent, so the parallel
 * loops trivially give the same result for any thread count. */
#include "ops.h"

/* below this many elements a parallel region costs more than it saves */
#define ACT_PAR_MIN 32768

void hardtanh_forward(real *out /* [n] */, const real *inp /* [n] */, size_t n) {
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
    for (long i = 0; i < len; i++) {
        real x = inp[i];
        out[i] = x < (real)-1 ? (real)-1 : (x > (real)1 ? (real)1 : x);
    }
}

/* PyTorch passes the gradient only strictly inside (-1, 1): at exactly +-1 it
 * is 0. store = 1 writes 0 + g, bitwise what += gives on a zeroed buffer,
 * without reading dinp. Branch-free so that the loops vectorise. */
static void hardtanh_grad(real *dinp, const real *dout, const real *inp, size_t n, int store) {
    if (!dinp) return;
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
    for (long i = 0; i < len; i++) {
        const real x = inp[i];
        const real g = (x > (real)-1 && x < (real)1) ? dout[i] : (real)0;
        dinp[i] = (store ? (real)0 : dinp[i]) + g;
    }
}

void hardtanh_backward(real *dinp /* [n] or NULL */, const real *dout /* [n] */, const real *inp /* [n] */,
                       size_t n) {
    hardtanh_grad(dinp, dout, inp, n, 0);
}

void hardtanh_backward_store(real *dinp /* [n] or NULL */, const real *dout /* [n] */, const real *inp /* [n] */,
                             size_t n) {
    hardtanh_grad(dinp, dout, inp, n, 1);
}

void relu_forward(real *out /* [n] */, const real *inp /* [n] */, size_t n) {
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
    for (long i = 0; i < len; i++) out[i] = inp[i] > (real)0 ? inp[i] : (real)0;
}

/* gradient 0 at x = 0 (PyTorch) */
void relu_backward(real *dinp /* [n] or NULL */, const real *dout /* [n] */, const real *inp /* [n] */,
                   size_t n) {
    if (!dinp) return;
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
    for (long i = 0; i < len; i++)
        dinp[i] += inp[i] > (real)0 ? dout[i] : (real)0;
}
