/* Elementwise activations. Every element is independent, so the parallel
 * loops trivially give the same result for any thread count. */
#include <stdint.h>
#include <string.h>

#include "ops.h"

/* below this many elements a parallel region costs more than it saves */
#define ACT_PAR_MIN 32768

static inline real hardtanh1(real x) { return x < (real)-1 ? (real)-1 : (x > (real)1 ? (real)1 : x); }

void hardtanh_forward(real *out /* [n] */, const real *inp /* [n] */, size_t n) {
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
    for (long i = 0; i < len; i++) out[i] = hardtanh1(inp[i]);
}

/* the same on the calling thread alone: for rows inside another op's parallel
 * loop (a nested region per row costs more than the row) */
void hardtanh_forward_serial(real *out, const real *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = hardtanh1(inp[i]);
}

/* The gradient masks as bit operations on the float's bits, so that the
 * loops vectorise. A float compare in a C conditional does not: GCC keeps
 * (with the default -ftrapping-math) a branch per element, and a branch that
 * mispredicts at every sign change of the mask cost hardtanh's backward ten
 * times its forward. Bits, not compares, give the same masks:
 *   strictly inside (-1, 1)  <=>  |x|'s bits < 1.0's (0x3f800000 in fp32): +-0 and
 *                                 denormals in, +-1, +-inf and every NaN out
 *   x > 0                    <=>  bits - 1 < +inf's bits (unsigned): +0 wraps
 *                                 to the top, -0 and negatives are >= 2^31,
 *                                 +inf in, NaNs (> 0x7f800000) out
 * and g = dout & mask is dout or +0, the `mask ? dout : 0` of always. */
#if REAL_IS_DOUBLE /* the f64 engine: the same tests on binary64's fields */
typedef uint64_t rbits;
#define RB_ABS 0x7fffffffffffffffull
#define RB_ONE 0x3ff0000000000000ull
#define RB_INF 0x7ff0000000000000ull
#else
typedef uint32_t rbits;
#define RB_ABS 0x7fffffffu
#define RB_ONE 0x3f800000u
#define RB_INF 0x7f800000u
#endif
static inline rbits r_bits(real x) {
    rbits u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline real r_from(rbits u) {
    real x;
    memcpy(&x, &u, sizeof x);
    return x;
}
/* all ones where the gradient passes, else 0 */
static inline rbits hardtanh_pass(real x) { return (rbits)0 - (rbits)((r_bits(x) & RB_ABS) < RB_ONE); }
static inline rbits relu_pass(real x) { return (rbits)0 - (rbits)(r_bits(x) - 1u < RB_INF); }

/* PyTorch passes the gradient only strictly inside (-1, 1): at exactly +-1 it
 * is 0. store = 1 writes 0 + g, bitwise what += gives on a zeroed buffer,
 * without reading dinp; the loops are split on it so neither reads dinp
 * conditionally. */
static void hardtanh_grad(real *dinp, const real *dout, const real *inp, size_t n,
                          int store) {
    if (!dinp) return;
    const long len = (long)n;
    if (store) {
        #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
        for (long i = 0; i < len; i++) dinp[i] = (real)0 + r_from(r_bits(dout[i]) & hardtanh_pass(inp[i]));
    } else {
        #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
        for (long i = 0; i < len; i++) dinp[i] = dinp[i] + r_from(r_bits(dout[i]) & hardtanh_pass(inp[i]));
    }
}

void hardtanh_backward_store_serial(real *dinp, const real *dout, const real *inp, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = (real)0 + r_from(r_bits(dout[i]) & hardtanh_pass(inp[i]));
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
void relu_backward(real *dinp /* [n] or NULL */, const real *dout /* [n] */,
                   const real *inp /* [n] */,
                   size_t n) {
    if (!dinp) return;
    const long len = (long)n;
    #pragma omp parallel for schedule(static) if (len >= ACT_PAR_MIN)
    for (long i = 0; i < len; i++) dinp[i] += r_from(r_bits(dout[i]) & relu_pass(inp[i]));
}
