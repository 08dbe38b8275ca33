/* Batch normalisation over [N, C, HW] with PyTorch semantics.
 *
 * One channel is reduced by one thread, over n then hw in a fixed order, with
 * double accumulators (eight interleaved per sample's row, core/rowsum.h, in
 * the C table; the SIMD tables below hold the same eight as vector lanes): the
 * result is the same bitwise for any thread count and any table,
 * and float inputs with a large mean do not lose the variance to cancellation
 * (the variance is taken in a second pass around the mean, not as E[x^2]-E[x]^2).
 *
 * Shards (issue 15, core/shard.h). With a non-trivial BNDims.sp every sum over
 * the batch -- the mean's, the variance's, and backward's sum dy and sum dy *
 * xhat -- is taken per shard of N/local_shards consecutive samples with the
 * one-shard arithmetic above (rows in sample order, ROWSUM8 within a row),
 * and the shards' partials are added by shard_sum_d: the fixed pairwise tree
 * in shard order, this rank's subtree here, the ranks' above it. The mean and
 * variance divide by the global count, and every rank then holds the same
 * statistics, running ones included. So the bits depend on S (train.shards),
 * never on the number of ranks R or of threads: one rank with S shards adds
 * exactly the tree R ranks add together. The pass structure is forced by the
 * tree (it spans ranks): partials of every channel, one tree call outside the
 * parallel loop, then the channels again. With sp NULL (or trivial) the code
 * below the sharded functions is the one of always. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu.h"
#include "ops.h"
#include "rowsum.h"
#include "shard.h"

/* ------------------------------------------------------------ row kernels
 *
 * Everything BN does to the values is one of these over a row of HW values of
 * one sample and one channel (contiguous); the callers add the rows in sample
 * order. Tables: the C one (ROWSUM8 and the plain loops, the definition), and
 * AVX2 / AVX-512 ones whose eight double lanes ARE ROWSUM8's eight
 * accumulators (element i of the body goes to lane i % 8, the tail to lanes
 * 0.. in scalar code, the lanes combined by ROWSUM8's tree), each expression
 * with the C one's operations in its order (mul and add apart, never an FMA:
 * the build has -ffp-contract=off under -std=c11). So every table gives the
 * same bits; tests/checkasm_elementwise.c checks it at every level. */
typedef struct {
    const char *name;
    /* ROWSUM8 of (double)x[i] */
    double (*sum)(const real *x, int n);
    /* ROWSUM8 of ((double)x[i] - mu)^2 */
    double (*ssd)(const real *x, int n, double mu);
    /* out[i] = (real)(((double)x[i] - mu) * scale + b) */
    void (*norm)(real *out, const real *x, int n, double mu, double scale, double b);
    /* ROWSUM8 of dy[i] and of dy[i] * (x[i] - mu) * rs, in one pass */
    void (*sums2)(double *s_dy, double *s_dyxhat, const real *dy, const real *x, int n, double mu, double rs);
    /* v = (real)(k * ((dy - mdy) - ((x - mu) * rs) * mdx)); dx = 0 + v (store) or dx + v */
    void (*dx)(real *dx, const real *x, const real *dy, int n, double mu, double rs, double k, double mdy,
               double mdx, int store);
    /* v = (real)(k * dy); dx = 0 + v (store) or dx + v */
    void (*dx_eval)(real *dx, const real *dy, int n, double k, int store);
} BnRowFns;

static double row_sum_c(const real *x, int n) {
    double r;
    ROWSUM8(r, n, (double)x[i]);
    return r;
}
static double row_ssd_c(const real *x, int n, double mu) {
    double r;
    ROWSUM8(r, n, ((double)x[i] - mu) * ((double)x[i] - mu));
    return r;
}
static void row_norm_c(real *out, const real *x, int n, double mu, double scale, double b) {
    for (int i = 0; i < n; i++) out[i] = (real)(((double)x[i] - mu) * scale + b);
}
static void row_sums2_c(double *s_dy, double *s_dyxhat, const real *dy, const real *x, int n, double mu,
                        double rs) {
    ROWSUM8(*s_dy, n, (double)dy[i]);
    ROWSUM8(*s_dyxhat, n, (double)dy[i] * ((double)x[i] - mu) * rs);
}
static void row_dx_c(real *dx, const real *x, const real *dy, int n, double mu, double rs, double k, double mdy,
                     double mdx, int store) {
    for (int i = 0; i < n; i++) {
        const double xhat = ((double)x[i] - mu) * rs;
        const real v = (real)(k * ((double)dy[i] - mdy - xhat * mdx));
        dx[i] = store ? (real)0 + v : dx[i] + v; /* 0 + v: what += gives on zeros, -0 included */
    }
}
static void row_dx_eval_c(real *dx, const real *dy, int n, double k, int store) {
    for (int i = 0; i < n; i++) {
        const real v = (real)(k * (double)dy[i]);
        dx[i] = store ? (real)0 + v : dx[i] + v;
    }
}
static const BnRowFns BN_ROWS_C = {"c", row_sum_c, row_ssd_c, row_norm_c, row_sums2_c, row_dx_c, row_dx_eval_c};

#if defined(__x86_64__) && defined(__GNUC__) && !REAL_IS_DOUBLE
#include <immintrin.h>
#define BN_HAVE_SIMD 1

/* ROWSUM8's tree over the eight lanes a[0..8) */
static inline double rowsum8_tree(const double *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* --- AVX2: the eight lanes in two registers, lo = lanes 0-3, hi = 4-7 */
#define BN_T2 __attribute__((target("avx2")))
BN_T2 static inline void cvt8_avx2(__m256d *lo, __m256d *hi, const real *p) {
    const __m256 v = _mm256_loadu_ps(p);
    *lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    *hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}
BN_T2 static inline void store8_avx2(double *a, __m256d lo, __m256d hi) {
    _mm256_storeu_pd(a, lo);
    _mm256_storeu_pd(a + 4, hi);
}
BN_T2 static double row_sum_avx2(const real *x, int n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), lo, hi;
    int b = 0;
    for (; b + 8 <= n; b += 8) {
        cvt8_avx2(&lo, &hi, x + b);
        s0 = _mm256_add_pd(s0, lo);
        s1 = _mm256_add_pd(s1, hi);
    }
    double a[8];
    store8_avx2(a, s0, s1);
    for (int k = 0; b < n; b++, k++) a[k] += (double)x[b];
    return rowsum8_tree(a);
}
BN_T2 static double row_ssd_avx2(const real *x, int n, double mu) {
    const __m256d m = _mm256_set1_pd(mu);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), lo, hi;
    int b = 0;
    for (; b + 8 <= n; b += 8) {
        cvt8_avx2(&lo, &hi, x + b);
        lo = _mm256_sub_pd(lo, m);
        hi = _mm256_sub_pd(hi, m);
        s0 = _mm256_add_pd(s0, _mm256_mul_pd(lo, lo));
        s1 = _mm256_add_pd(s1, _mm256_mul_pd(hi, hi));
    }
    double a[8];
    store8_avx2(a, s0, s1);
    for (int k = 0; b < n; b++, k++) a[k] += ((double)x[b] - mu) * ((double)x[b] - mu);
    return rowsum8_tree(a);
}
BN_T2 static void row_norm_avx2(real *out, const real *x, int n, double mu, double scale, double b) {
    const __m256d m = _mm256_set1_pd(mu), s = _mm256_set1_pd(scale), bb = _mm256_set1_pd(b);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d lo, hi;
        cvt8_avx2(&lo, &hi, x + i);
        lo = _mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(lo, m), s), bb);
        hi = _mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(hi, m), s), bb);
        _mm256_storeu_ps(out + i, _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo)));
    }
    row_norm_c(out + i, x + i, n - i, mu, scale, b);
}
BN_T2 static void row_sums2_avx2(double *s_dy, double *s_dyxhat, const real *dy, const real *x, int n, double mu,
                                 double rs) {
    const __m256d m = _mm256_set1_pd(mu), r = _mm256_set1_pd(rs);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), b0 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd();
    int b = 0;
    for (; b + 8 <= n; b += 8) {
        __m256d dlo, dhi, xlo, xhi;
        cvt8_avx2(&dlo, &dhi, dy + b);
        cvt8_avx2(&xlo, &xhi, x + b);
        a0 = _mm256_add_pd(a0, dlo);
        a1 = _mm256_add_pd(a1, dhi);
        b0 = _mm256_add_pd(b0, _mm256_mul_pd(_mm256_mul_pd(dlo, _mm256_sub_pd(xlo, m)), r));
        b1 = _mm256_add_pd(b1, _mm256_mul_pd(_mm256_mul_pd(dhi, _mm256_sub_pd(xhi, m)), r));
    }
    double a[8], c[8];
    store8_avx2(a, a0, a1);
    store8_avx2(c, b0, b1);
    for (int k = 0; b < n; b++, k++) {
        a[k] += (double)dy[b];
        c[k] += (double)dy[b] * ((double)x[b] - mu) * rs;
    }
    *s_dy = rowsum8_tree(a);
    *s_dyxhat = rowsum8_tree(c);
}
/* four values: (real)(k * ((dy - mdy) - ((x - mu) * rs) * mdx)) */
BN_T2 static inline __m128 dx4_avx2(__m256d x, __m256d dy, __m256d m, __m256d r, __m256d k, __m256d mdy,
                                    __m256d mdx) {
    const __m256d xhat = _mm256_mul_pd(_mm256_sub_pd(x, m), r);
    return _mm256_cvtpd_ps(_mm256_mul_pd(k, _mm256_sub_pd(_mm256_sub_pd(dy, mdy), _mm256_mul_pd(xhat, mdx))));
}
BN_T2 static void row_dx_avx2(real *dx, const real *x, const real *dy, int n, double mu, double rs, double k,
                              double mdy, double mdx, int store) {
    const __m256d vm = _mm256_set1_pd(mu), vr = _mm256_set1_pd(rs), vk = _mm256_set1_pd(k);
    const __m256d vmdy = _mm256_set1_pd(mdy), vmdx = _mm256_set1_pd(mdx);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d xlo, xhi, dlo, dhi;
        cvt8_avx2(&xlo, &xhi, x + i);
        cvt8_avx2(&dlo, &dhi, dy + i);
        const __m256 v = _mm256_set_m128(dx4_avx2(xhi, dhi, vm, vr, vk, vmdy, vmdx),
                                         dx4_avx2(xlo, dlo, vm, vr, vk, vmdy, vmdx));
        const __m256 base = store ? _mm256_setzero_ps() : _mm256_loadu_ps(dx + i);
        _mm256_storeu_ps(dx + i, _mm256_add_ps(base, v));
    }
    row_dx_c(dx + i, x + i, dy + i, n - i, mu, rs, k, mdy, mdx, store);
}
BN_T2 static void row_dx_eval_avx2(real *dx, const real *dy, int n, double k, int store) {
    const __m256d vk = _mm256_set1_pd(k);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d lo, hi;
        cvt8_avx2(&lo, &hi, dy + i);
        const __m256 v = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_mul_pd(vk, hi)), _mm256_cvtpd_ps(_mm256_mul_pd(vk, lo)));
        const __m256 base = store ? _mm256_setzero_ps() : _mm256_loadu_ps(dx + i);
        _mm256_storeu_ps(dx + i, _mm256_add_ps(base, v));
    }
    row_dx_eval_c(dx + i, dy + i, n - i, k, store);
}
static const BnRowFns BN_ROWS_AVX2 = {"avx2",         row_sum_avx2,   row_ssd_avx2,    row_norm_avx2,
                                      row_sums2_avx2, row_dx_avx2,    row_dx_eval_avx2};

/* --- AVX-512: the eight lanes in one register */
#define BN_T5 __attribute__((target("avx512f")))
BN_T5 static inline __m512d cvt8_avx512(const real *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
BN_T5 static double row_sum_avx512(const real *x, int n) {
    __m512d s = _mm512_setzero_pd();
    int b = 0;
    for (; b + 8 <= n; b += 8) s = _mm512_add_pd(s, cvt8_avx512(x + b));
    double a[8];
    _mm512_storeu_pd(a, s);
    for (int k = 0; b < n; b++, k++) a[k] += (double)x[b];
    return rowsum8_tree(a);
}
BN_T5 static double row_ssd_avx512(const real *x, int n, double mu) {
    const __m512d m = _mm512_set1_pd(mu);
    __m512d s = _mm512_setzero_pd();
    int b = 0;
    for (; b + 8 <= n; b += 8) {
        const __m512d d = _mm512_sub_pd(cvt8_avx512(x + b), m);
        s = _mm512_add_pd(s, _mm512_mul_pd(d, d));
    }
    double a[8];
    _mm512_storeu_pd(a, s);
    for (int k = 0; b < n; b++, k++) a[k] += ((double)x[b] - mu) * ((double)x[b] - mu);
    return rowsum8_tree(a);
}
BN_T5 static void row_norm_avx512(real *out, const real *x, int n, double mu, double scale, double b) {
    const __m512d m = _mm512_set1_pd(mu), s = _mm512_set1_pd(scale), bb = _mm512_set1_pd(b);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(_mm512_sub_pd(cvt8_avx512(x + i), m), s), bb)));
    row_norm_c(out + i, x + i, n - i, mu, scale, b);
}
BN_T5 static void row_sums2_avx512(double *s_dy, double *s_dyxhat, const real *dy, const real *x, int n, double mu,
                                   double rs) {
    const __m512d m = _mm512_set1_pd(mu), r = _mm512_set1_pd(rs);
    __m512d sa = _mm512_setzero_pd(), sb = _mm512_setzero_pd();
    int b = 0;
    for (; b + 8 <= n; b += 8) {
        const __m512d d = cvt8_avx512(dy + b);
        sa = _mm512_add_pd(sa, d);
        sb = _mm512_add_pd(sb, _mm512_mul_pd(_mm512_mul_pd(d, _mm512_sub_pd(cvt8_avx512(x + b), m)), r));
    }
    double a[8], c[8];
    _mm512_storeu_pd(a, sa);
    _mm512_storeu_pd(c, sb);
    for (int k = 0; b < n; b++, k++) {
        a[k] += (double)dy[b];
        c[k] += (double)dy[b] * ((double)x[b] - mu) * rs;
    }
    *s_dy = rowsum8_tree(a);
    *s_dyxhat = rowsum8_tree(c);
}
BN_T5 static void row_dx_avx512(real *dx, const real *x, const real *dy, int n, double mu, double rs, double k,
                                double mdy, double mdx, int store) {
    const __m512d vm = _mm512_set1_pd(mu), vr = _mm512_set1_pd(rs), vk = _mm512_set1_pd(k);
    const __m512d vmdy = _mm512_set1_pd(mdy), vmdx = _mm512_set1_pd(mdx);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512d xhat = _mm512_mul_pd(_mm512_sub_pd(cvt8_avx512(x + i), vm), vr);
        const __m512d t = _mm512_sub_pd(_mm512_sub_pd(cvt8_avx512(dy + i), vmdy), _mm512_mul_pd(xhat, vmdx));
        const __m256 v = _mm512_cvtpd_ps(_mm512_mul_pd(vk, t));
        const __m256 base = store ? _mm256_setzero_ps() : _mm256_loadu_ps(dx + i);
        _mm256_storeu_ps(dx + i, _mm256_add_ps(base, v));
    }
    row_dx_c(dx + i, x + i, dy + i, n - i, mu, rs, k, mdy, mdx, store);
}
BN_T5 static void row_dx_eval_avx512(real *dx, const real *dy, int n, double k, int store) {
    const __m512d vk = _mm512_set1_pd(k);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm512_cvtpd_ps(_mm512_mul_pd(vk, cvt8_avx512(dy + i)));
        const __m256 base = store ? _mm256_setzero_ps() : _mm256_loadu_ps(dx + i);
        _mm256_storeu_ps(dx + i, _mm256_add_ps(base, v));
    }
    row_dx_eval_c(dx + i, dy + i, n - i, k, store);
}
static const BnRowFns BN_ROWS_AVX512 = {"avx512",         row_sum_avx512, row_ssd_avx512,    row_norm_avx512,
                                        row_sums2_avx512, row_dx_avx512,  row_dx_eval_avx512};
#endif

/* the table for cpu_features() (CBNN_SIMD, a test's mask) */
static const BnRowFns *bn_rows(void) {
#ifdef BN_HAVE_SIMD
    const unsigned f = cpu_features();
    if (f & CPU_AVX512F) return &BN_ROWS_AVX512;
    if (f & CPU_AVX2) return &BN_ROWS_AVX2;
#endif
    return &BN_ROWS_C;
}

const char *batchnorm_table_name(void) { return bn_rows()->name; }

void batchnorm_row_sums(double out[4], const real *x, const real *dy, int n, double mu, double rs) {
    const BnRowFns *f = bn_rows();
    out[0] = f->sum(x, n);
    out[1] = f->ssd(x, n, mu);
    f->sums2(&out[2], &out[3], dy, x, n, mu, rs);
}

/* ---------------------------------------------------------------- shards */

static int bn_sharded(const BNDims *d) { return !shard_plan_trivial(d->sp); }

/* sum over rows [0, rows) of one channel (x at the channel's first value of
 * the shard's first sample): the one-shard pass 1 */
static inline double bn_rows_sum(const BnRowFns *f, const real *x, int rows, int HW, long cstride) {
    double sum = 0.0;
    for (int n = 0; n < rows; n++) sum += f->sum(x + n * cstride, HW);
    return sum;
}

/* sum of (x - mu)^2 over rows [0, rows): the one-shard pass 2 */
static inline double bn_rows_ssd(const BnRowFns *f, const real *x, int rows, int HW, long cstride, double mu) {
    double ss = 0.0;
    for (int n = 0; n < rows; n++) ss += f->ssd(x + n * cstride, HW, mu);
    return ss;
}

/* out = (x - mu) * scale + b over the channel's N rows; clamp: then
 * hardtanh on each row while it is in L1 (the fused BN -> hardtanh, bitwise
 * hardtanh_forward on the BN output; serial: we are in the channel loop) */
static inline void bn_rows_norm(const BnRowFns *f, real *out, const real *x, int N, int HW, long cstride, double mu,
                                double scale, double b, int clamp) {
    for (int n = 0; n < N; n++) {
        f->norm(out + n * cstride, x + n * cstride, HW, mu, scale, b);
        if (clamp) hardtanh_forward_serial(out + n * cstride, out + n * cstride, (size_t)HW);
    }
}

/* Train forward over shards. Workspace: 2C doubles a slot; pass 1's partials
 * at stride C, the means kept at parts + ls*C (inside the ls slots, past what
 * pass 2's partials use), pass 2's partials at stride C again. */
static void bn_forward_train_sharded(real *out, real *mean, real *rstd, real *running_mean, real *running_var,
                                     const real *inp, const real *gamma, const real *beta, const BNDims *d,
                                     int clamp) {
    const ShardPlan *sp = d->sp;
    const int N = d->N, C = d->C, HW = d->HW, ls = sp->local_shards, rows = shard_rows(sp, N);
    const long M = shard_global_rows(sp, N) * HW; /* values per channel over the global batch */
    const long cstride = (long)C * HW;
    const long sstride = (long)rows * cstride; /* distance between shards */
    const double m = (double)d->momentum;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(sp, 2 * (size_t)C, &tmp, &owned);
    double *mus = parts + (size_t)ls * C;
    const BnRowFns *f = bn_rows();

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int s = 0; s < ls; s++) parts[(size_t)s * C + c] = bn_rows_sum(f, inp + (long)c * HW + s * sstride, rows, HW, cstride);
    shard_sum_d(sp, parts, (size_t)C, tmp);
    for (int c = 0; c < C; c++) mus[c] = parts[c] / (double)M;

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int s = 0; s < ls; s++)
            parts[(size_t)s * C + c] = bn_rows_ssd(f, inp + (long)c * HW + s * sstride, rows, HW, cstride, mus[c]);
    shard_sum_d(sp, parts, (size_t)C, tmp);

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = mus[c], ss = parts[c];
        const double var = ss / (double)M; /* biased: what normalises */
        const double rs = 1.0 / sqrt(var + (double)d->eps);
        const double g = gamma ? (double)gamma[c] : 1.0;
        const double b = beta ? (double)beta[c] : 0.0;
        const double scale = g * rs;
        bn_rows_norm(f, out + (long)c * HW, inp + (long)c * HW, N, HW, cstride, mu, scale, b, clamp);
        mean[c] = (real)mu;
        rstd[c] = (real)rs;
        const double var_unbiased = M > 1 ? ss / (double)(M - 1) : var; /* as the one-shard path */
        if (running_mean) running_mean[c] = (real)((1.0 - m) * (double)running_mean[c] + m * mu);
        if (running_var) running_var[c] = (real)((1.0 - m) * (double)running_var[c] + m * var_unbiased);
    }
    free(owned);
}

static void bn_forward_train(real *out /* [N,C,HW] */, real *mean /* [C] saved */, real *rstd /* [C] saved */,
                             real *running_mean /* [C] */, real *running_var /* [C] */,
                             const real *inp /* [N,C,HW] */, const real *gamma /* [C] */,
                             const real *beta /* [C] */, const BNDims *d, int clamp) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = (long)N * HW; /* values per channel */
    const long cstride = (long)C * HW; /* distance between samples */
    const double m = (double)d->momentum;
    if (bn_sharded(d)) {
        bn_forward_train_sharded(out, mean, rstd, running_mean, running_var, inp, gamma, beta, d, clamp);
        return;
    }

    const BnRowFns *f = bn_rows();
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const real *x = inp + (long)c * HW;
        double mu = bn_rows_sum(f, x, N, HW, cstride) / (double)M;
        double ss = bn_rows_ssd(f, x, N, HW, cstride, mu);
        double var = ss / (double)M; /* biased: what normalises */
        double rs = 1.0 / sqrt(var + (double)d->eps);

        double g = gamma ? (double)gamma[c] : 1.0;
        double b = beta ? (double)beta[c] : 0.0;
        double scale = g * rs;
        bn_rows_norm(f, out + (long)c * HW, x, N, HW, cstride, mu, scale, b, clamp);

        mean[c] = (real)mu;
        rstd[c] = (real)rs;
        /* running_var tracks the unbiased variance (PyTorch). With a single
         * value per channel (M = 1) that is 0/0; PyTorch refuses such a batch in
         * training, we fall back to the biased value (0) instead of a NaN. */
        double var_unbiased = M > 1 ? ss / (double)(M - 1) : var;
        if (running_mean) running_mean[c] = (real)((1.0 - m) * (double)running_mean[c] + m * mu);
        if (running_var) running_var[c] = (real)((1.0 - m) * (double)running_var[c] + m * var_unbiased);
    }
}

void batchnorm_forward_train(real *out, real *mean, real *rstd, real *running_mean, real *running_var,
                             const real *inp, const real *gamma, const real *beta, const BNDims *d) {
    bn_forward_train(out, mean, rstd, running_mean, running_var, inp, gamma, beta, d, 0);
}

void batchnorm_hardtanh_forward_train(real *out, real *mean, real *rstd, real *running_mean, real *running_var,
                                      const real *inp, const real *gamma, const real *beta, const BNDims *d) {
    bn_forward_train(out, mean, rstd, running_mean, running_var, inp, gamma, beta, d, 1);
}

static void bn_forward_eval(real *out /* [N,C,HW] */, const real *inp /* [N,C,HW] */,
                            const real *gamma /* [C] */, const real *beta /* [C] */,
                            const real *running_mean /* [C] */, const real *running_var /* [C] */,
                            const BNDims *d, int clamp) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long cstride = (long)C * HW;
    const BnRowFns *f = bn_rows();

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu = (double)running_mean[c];
        double rs = 1.0 / sqrt((double)running_var[c] + (double)d->eps);
        double g = gamma ? (double)gamma[c] : 1.0;
        double b = beta ? (double)beta[c] : 0.0;
        double scale = g * rs;
        bn_rows_norm(f, out + (long)c * HW, inp + (long)c * HW, N, HW, cstride, mu, scale, b, clamp);
    }
}

void batchnorm_forward_eval(real *out, const real *inp, const real *gamma, const real *beta, const real *running_mean,
                            const real *running_var, const BNDims *d) {
    bn_forward_eval(out, inp, gamma, beta, running_mean, running_var, d, 0);
}

void batchnorm_hardtanh_forward_eval(real *out, const real *inp, const real *gamma, const real *beta,
                                     const real *running_mean, const real *running_var, const BNDims *d) {
    bn_forward_eval(out, inp, gamma, beta, running_mean, running_var, d, 1);
}

/* ------------------------------------------------------------- backward */

/* Where backward's dy comes from: dout itself (plain BN), or, fused behind a
 * hardtanh (ht: its output), dy = 0 + (dout masked by -1 < ht < 1), bitwise
 * what hardtanh_backward_store writes into the BN output's gradient. A row of
 * it is made in tmp (HW values, the thread's) when needed. */
typedef struct {
    const real *dout, *ht;
} BnDy;

static inline BnDy bn_dy_at(BnDy s, long off) {
    BnDy r = {s.dout + off, s.ht ? s.ht + off : NULL};
    return r;
}
static inline const real *bn_dy_row(BnDy s, long o, int HW, real *tmp) {
    if (!s.ht) return s.dout + o;
    hardtanh_backward_store_serial(tmp, s.dout + o, s.ht + o, (size_t)HW);
    return tmp;
}
/* the rows' scratch of every thread (NULL when not fused); *oom set on failure */
static real *bn_dy_scratch(BnDy s, int HW, int *oom) {
    *oom = 0;
    if (!s.ht) return NULL;
    real *t = malloc((size_t)omp_get_max_threads() * (size_t)HW * sizeof(real));
    *oom = t == NULL;
    return t;
}
static inline real *bn_dy_tmp(real *scratch, int HW) {
    return scratch ? scratch + (size_t)omp_get_thread_num() * (size_t)HW : NULL;
}

/* Train-mode backward. With xhat = (x - mean) * rstd and y = gamma * xhat + beta,
 *   dbeta  = sum dy,  dgamma = sum dy * xhat,
 *   dx     = gamma * rstd * (dy - mean(dy) - xhat * mean(dy * xhat))
 * (the two mean terms are the gradient flowing through the batch mean and the
 * batch variance). Sums are over the M = N*HW values of the channel. */
/* Of channel c: sum dy and sum dy * xhat, xhat = (x - mu) * rs, each row
 * summed with ROWSUM8 and the rows added in sample order (the training and the
 * eval-mode backward share it, so their parameter gradients round alike). */
static inline void bn_channel_sums(const BnRowFns *f, double *sum_dy, double *sum_dy_xhat, BnDy dy,
                                   const real *inp, int c, int N, int HW, long cstride, double mu, double rs,
                                   real *tmp) {
    double a = 0.0, b = 0.0;
    for (int n = 0; n < N; n++) {
        double r1, r2;
        const long o = (long)c * HW + n * cstride;
        f->sums2(&r1, &r2, bn_dy_row(dy, o, HW, tmp), inp + o, HW, mu, rs);
        a += r1;
        b += r2;
    }
    *sum_dy = a;
    *sum_dy_xhat = b;
}

/* a channel's statistics as the backward uses them: the saved mean and rstd
 * (train), or the running ones with rstd = 1/sqrt(running_var + eps) (eval) */
static inline void bn_stats(double *mu, double *rs, const real *a, const real *b, int eval, const BNDims *d, int c) {
    *mu = (double)a[c];
    *rs = eval ? 1.0 / sqrt((double)b[c] + (double)d->eps) : (double)b[c];
}

/* Sharded backward sums: parts[s*2C + c] = shard s's sum dy of channel c,
 * parts[s*2C + C + c] its sum dy * xhat, each by bn_channel_sums on the
 * shard's rows; one tree over the 2C values leaves the batch's sums in
 * parts[0..2C). a, b, eval: the statistics, as bn_stats reads them. */
static void bn_sums_sharded(double *parts, double *tmp, BnDy dout, real *scratch, const real *inp, const real *a,
                            const real *b, int eval, const BNDims *d) {
    const ShardPlan *sp = d->sp;
    const int C = d->C, HW = d->HW, ls = sp->local_shards, rows = shard_rows(sp, d->N);
    const long cstride = (long)C * HW, sstride = (long)rows * cstride;
    const BnRowFns *f = bn_rows();
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu, rs;
        bn_stats(&mu, &rs, a, b, eval, d, c);
        for (int s = 0; s < ls; s++)
            bn_channel_sums(f, &parts[(size_t)s * 2 * C + c], &parts[(size_t)s * 2 * C + C + c],
                            bn_dy_at(dout, s * sstride), inp + s * sstride, c, rows, HW, cstride, mu, rs,
                            bn_dy_tmp(scratch, HW));
    }
    shard_sum_d(sp, parts, 2 * (size_t)C, tmp);
}

/* Train backward over shards: the sums through the tree, then dgamma, dbeta
 * and dx per channel as in bn_backward, with the global count */
static void bn_backward_sharded(real *dinp, real *dgamma, real *dbeta, BnDy dout, real *scratch, const real *inp,
                                const real *mean, const real *rstd, const real *gamma, const BNDims *d, int store) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = shard_global_rows(d->sp, N) * HW;
    const long cstride = (long)C * HW;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(d->sp, 2 * (size_t)C, &tmp, &owned);
    bn_sums_sharded(parts, tmp, dout, scratch, inp, mean, rstd, 0, d);
    const BnRowFns *f = bn_rows();

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = (double)mean[c], rs = (double)rstd[c];
        const double sum_dy = parts[c], sum_dy_xhat = parts[C + c];
        if (dbeta) dbeta[c] += (real)sum_dy;
        if (dgamma) dgamma[c] += (real)sum_dy_xhat;
        if (!dinp) continue;
        const double k = (gamma ? (double)gamma[c] : 1.0) * rs;
        const double mean_dy = sum_dy / (double)M, mean_dy_xhat = sum_dy_xhat / (double)M;
        for (int n = 0; n < N; n++) {
            const long o = (long)c * HW + n * cstride;
            f->dx(dinp + o, inp + o, bn_dy_row(dout, o, HW, bn_dy_tmp(scratch, HW)), HW, mu, rs, k, mean_dy,
                  mean_dy_xhat, store);
        }
    }
    free(owned);
}

/* Eval-mode backward's parameter sums over shards (dx is per sample: the
 * one-shard code does it) */
static void bn_backward_eval_sums_sharded(real *dgamma, real *dbeta, BnDy dout, real *scratch, const real *inp,
                                          const real *running_mean, const real *running_var, const BNDims *d) {
    const int C = d->C;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(d->sp, 2 * (size_t)C, &tmp, &owned);
    bn_sums_sharded(parts, tmp, dout, scratch, inp, running_mean, running_var, 1, d);
    for (int c = 0; c < C; c++) {
        if (dbeta) dbeta[c] += (real)parts[c];
        if (dgamma) dgamma[c] += (real)parts[C + c];
    }
    free(owned);
}

/* store = 1: dinp is written as 0 + v instead of read and accumulated (a fresh buffer) */
static int bn_backward(real *dinp /* [N,C,HW] or NULL */, real *dgamma /* [C] or NULL */,
                       real *dbeta /* [C] or NULL */, BnDy dout /* [N,C,HW] */,
                       const real *inp /* [N,C,HW] */, const real *mean /* [C] */,
                       const real *rstd /* [C] */, const real *gamma /* [C] */, const BNDims *d, int store) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long M = (long)N * HW;
    const long cstride = (long)C * HW;
    int oom;
    real *scratch = bn_dy_scratch(dout, HW, &oom);
    if (oom) return -1;
    if (bn_sharded(d)) {
        bn_backward_sharded(dinp, dgamma, dbeta, dout, scratch, inp, mean, rstd, gamma, d, store);
        free(scratch);
        return 0;
    }
    const BnRowFns *f = bn_rows();

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = (double)mean[c], rs = (double)rstd[c];
        double sum_dy, sum_dy_xhat;
        bn_channel_sums(f, &sum_dy, &sum_dy_xhat, dout, inp, c, N, HW, cstride, mu, rs, bn_dy_tmp(scratch, HW));
        if (dbeta) dbeta[c] += (real)sum_dy;
        if (dgamma) dgamma[c] += (real)sum_dy_xhat;
        if (!dinp) continue;

        double g = gamma ? (double)gamma[c] : 1.0;
        double k = g * rs;
        double mean_dy = sum_dy / (double)M, mean_dy_xhat = sum_dy_xhat / (double)M;
        for (int n = 0; n < N; n++) {
            const long o = (long)c * HW + n * cstride;
            f->dx(dinp + o, inp + o, bn_dy_row(dout, o, HW, bn_dy_tmp(scratch, HW)), HW, mu, rs, k, mean_dy,
                  mean_dy_xhat, store);
        }
    }
    free(scratch);
    return 0;
}

void batchnorm_backward(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp, const real *mean,
                        const real *rstd, const real *gamma, const BNDims *d) {
    const BnDy dy = {dout, NULL};
    bn_backward(dinp, dgamma, dbeta, dy, inp, mean, rstd, gamma, d, 0);
}

void batchnorm_backward_store(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                              const real *mean, const real *rstd, const real *gamma, const BNDims *d) {
    const BnDy dy = {dout, NULL};
    bn_backward(dinp, dgamma, dbeta, dy, inp, mean, rstd, gamma, d, 1);
}

int batchnorm_hardtanh_backward(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *out,
                                const real *inp, const real *mean, const real *rstd, const real *gamma,
                                const BNDims *d, int store) {
    const BnDy dy = {dout, out};
    return bn_backward(dinp, dgamma, dbeta, dy, inp, mean, rstd, gamma, d, store);
}

/* Eval-mode backward: the running statistics are constants, so y = x * k + b'
 * per channel with k = gamma * rstd_running, rstd_running = 1/sqrt(running_var
 * + eps) as the eval forward computes it:
 *   dx = dy * k,  dgamma = sum dy * xhat (xhat = (x - running_mean) * rstd_running),  dbeta = sum dy
 * For a frozen BN (no parameter gradients: dgamma, dbeta NULL) and for a
 * backward after an eval-mode forward. store as in bn_backward. */
static int bn_backward_eval(real *dinp /* [N,C,HW] or NULL */, real *dgamma /* [C] or NULL */,
                            real *dbeta /* [C] or NULL */, BnDy dout /* [N,C,HW] */,
                            const real *inp /* [N,C,HW] */, const real *gamma /* [C] */,
                            const real *running_mean /* [C] */, const real *running_var /* [C] */,
                            const BNDims *d, int store) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long cstride = (long)C * HW;
    int oom;
    real *scratch = bn_dy_scratch(dout, HW, &oom);
    if (oom) return -1;
    /* sharded: the parameter sums through the tree first, then dx alone below */
    const int sharded = bn_sharded(d) && (dgamma || dbeta);
    if (sharded) bn_backward_eval_sums_sharded(dgamma, dbeta, dout, scratch, inp, running_mean, running_var, d);
    const BnRowFns *f = bn_rows();

    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mu = (double)running_mean[c];
        const double rs = 1.0 / sqrt((double)running_var[c] + (double)d->eps);
        if (!sharded && (dgamma || dbeta)) {
            double sum_dy, sum_dy_xhat;
            bn_channel_sums(f, &sum_dy, &sum_dy_xhat, dout, inp, c, N, HW, cstride, mu, rs, bn_dy_tmp(scratch, HW));
            if (dbeta) dbeta[c] += (real)sum_dy;
            if (dgamma) dgamma[c] += (real)sum_dy_xhat;
        }
        if (!dinp) continue;
        const double k = (gamma ? (double)gamma[c] : 1.0) * rs;
        for (int n = 0; n < N; n++) {
            const long o = (long)c * HW + n * cstride;
            f->dx_eval(dinp + o, bn_dy_row(dout, o, HW, bn_dy_tmp(scratch, HW)), HW, k, store);
        }
    }
    free(scratch);
    return 0;
}

void batchnorm_backward_eval(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                             const real *gamma, const real *running_mean, const real *running_var, const BNDims *d) {
    const BnDy dy = {dout, NULL};
    bn_backward_eval(dinp, dgamma, dbeta, dy, inp, gamma, running_mean, running_var, d, 0);
}

void batchnorm_backward_eval_store(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *inp,
                                   const real *gamma, const real *running_mean, const real *running_var,
                                   const BNDims *d) {
    const BnDy dy = {dout, NULL};
    bn_backward_eval(dinp, dgamma, dbeta, dy, inp, gamma, running_mean, running_var, d, 1);
}

int batchnorm_hardtanh_backward_eval(real *dinp, real *dgamma, real *dbeta, const real *dout, const real *out,
                                     const real *inp, const real *gamma, const real *running_mean,
                                     const real *running_var, const BNDims *d, int store) {
    const BnDy dy = {dout, out};
    return bn_backward_eval(dinp, dgamma, dbeta, dy, inp, gamma, running_mean, running_var, d, store);
}
