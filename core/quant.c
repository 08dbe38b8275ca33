/* The named quantizers, binarizers and standardisations of core/quant.h.
 *
 * Floating-point order. The min-max quantizer reproduces, one rounding per
 * step, the in-place op sequence of CPT's UniformQuantize on a float32
 * tensor: sub, div, (add noise), clamp, round, mul, add. The build uses ISO
 * C11 (-std=c11, so GCC does not contract a*b + c into an FMA) and no -march,
 * and x86-64 evaluates float in float (FLT_EVAL_METHOD 0), so each C
 * expression below rounds exactly where PyTorch's elementwise kernels do.
 * That is what lets the f32 forward pass match PyTorch bit for bit.
 *
 * Determinism. Rows (channels, samples) are independent work units; sums
 * inside a row run in a fixed order in double. The global min/max runs over
 * fixed chunks (their size depends on n only) combined in chunk order, so
 * even the sign of a zero minimum does not depend on the thread count. */
#include "quant.h"

#include <math.h>
#include <string.h>

#include "cpu.h"
#include "rng.h"
#include "rowsum.h"

#ifdef CBNN_DOUBLE
#define R_SQRT sqrt
#define R_FLOOR floor
#define R_COPYSIGN copysign
#else
#define R_SQRT sqrtf
#define R_FLOOR floorf
#define R_COPYSIGN copysignf
#endif

/* elementwise loops smaller than this stay on one thread: the fork costs more */
#define PAR_MIN 32768

static const real STD_EPS = (real)1e-5; /* 1e-5 added to the variance: a Python scalar, so a real */
static const real MIN_SCALE = (real)1e-8;

/* ------------------------------------------------------ min-max uniform */

real quant_qmax(double bits) { return (real)(pow(2.0, bits) - 1.0); }

real quant_scale(real range, double bits) {
    real s = range / quant_qmax(bits);
    return s < MIN_SCALE ? MIN_SCALE : s; /* torch.max(scale, 1e-8); a NaN stays NaN */
}

static inline real round_he(real y) {
    /* Adding then subtracting 2^(mantissa bits) rounds |y| to an integer in the
     * current rounding mode (to nearest, ties to even); at or above it every
     * value already is an integer. Inlined: glibc's rint is a call per element.
     * copysign keeps the sign of a result that rounds to zero, as rint does. */
    const real big = REAL_IS_DOUBLE ? (real)0x1p52 : (real)0x1p23;
    const real a = y < 0 ? -y : y;
    const real r = R_COPYSIGN((a + big) - big, y);
    return a < big ? r : y; /* else already an integer, or inf/NaN; a select, not a branch: loops vectorise */
}
real quant_round_half_even(real y) { return round_he(y); }

/* the level of x: round(clamp((x - zp)/s [+ noise], 0, qmax)), an integer in [0, qmax] (or NaN) */
static inline real quant_level(real x, real zp, real s, real qmax, const real *noise) {
    real y = (x - zp) / s;
    if (noise) y = y + *noise;
    y = y < 0 ? (real)0 : y > qmax ? qmax : y; /* torch.clamp; NaN passes through */
    return round_he(y);
}

/* the elementwise core: out = level * s + zp */
static void quantize_core(real *out, const real *x, size_t n, real zp, real s, real qmax, const real *noise) {
    if (noise) {
        #pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            real y = quant_level(x[i], zp, s, qmax, noise + i);
            real t = y * s;
            out[i] = t + zp;
        }
    } else {
        #pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            real y = quant_level(x[i], zp, s, qmax, NULL);
            real t = y * s;
            out[i] = t + zp;
        }
    }
}

static void codes_span(uint8_t *codes, const real *x, size_t n, real zp, real s, real qmax) {
    for (size_t i = 0; i < n; i++) {
        const real y = quant_level(x[i], zp, s, qmax, NULL);
        codes[i] = y == y ? (uint8_t)y : 0; /* a NaN input has no code: 0 (the loss is NaN anyway) */
    }
}

#if !REAL_IS_DOUBLE && defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QUANT_HAVE_AVX2 1
/* codes_span, 8 at a time: the same IEEE operations as quant_level (a true
 * division, the clamp with NaN passing, round half to even by adding and
 * subtracting 2^23 under the sign of y, kept only where |y| < 2^23), so the
 * same codes; the scalar loop does the tail. */
__attribute__((target("avx2"))) static void codes_span_avx2(uint8_t *codes, const float *x, size_t n, float zp,
                                                            float s, float qmax) {
    const __m256 vzp = _mm256_set1_ps(zp), vs = _mm256_set1_ps(s), vq = _mm256_set1_ps(qmax);
    const __m256 zero = _mm256_setzero_ps(), big = _mm256_set1_ps(0x1p23f), sign = _mm256_set1_ps(-0.0f);
    const __m256i gather = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vzp), vs);
        y = _mm256_blendv_ps(y, vq, _mm256_cmp_ps(y, vq, _CMP_GT_OQ));  /* y > qmax ? qmax */
        y = _mm256_blendv_ps(y, zero, _mm256_cmp_ps(y, zero, _CMP_LT_OQ)); /* y < 0 ? 0 (NaN stays) */
        const __m256 a = _mm256_andnot_ps(sign, y);
        __m256 r = _mm256_sub_ps(_mm256_add_ps(a, big), big);
        r = _mm256_or_ps(_mm256_andnot_ps(sign, r), _mm256_and_ps(sign, y)); /* copysign(r, y) */
        y = _mm256_blendv_ps(y, r, _mm256_cmp_ps(a, big, _CMP_LT_OQ));
        /* NaN -> 0, else the integer value 0..255 */
        const __m256 ok = _mm256_cmp_ps(y, y, _CMP_ORD_Q);
        __m256i v = _mm256_and_si256(_mm256_cvttps_epi32(y), _mm256_castps_si256(ok));
        v = _mm256_packus_epi32(v, v);    /* 16-bit: [0-3 0-3 | 4-7 4-7] */
        v = _mm256_packus_epi16(v, v);    /* 8-bit: dword 0 = codes 0-3, dword 4 = codes 4-7 */
        v = _mm256_permutevar8x32_epi32(v, gather);
        _mm_storel_epi64((__m128i *)(void *)(codes + i), _mm256_castsi256_si128(v));
    }
    codes_span(codes + i, x + i, n - i, zp, s, qmax);
}
#endif

void quant_codes_u8(uint8_t *codes /* [n] */, const real *x /* [n] */, size_t n, real zp, real s, real qmax) {
    void (*span)(uint8_t *, const real *, size_t, real, real, real) = codes_span;
#ifdef QUANT_HAVE_AVX2
    if (cpu_features() & CPU_AVX2) span = codes_span_avx2;
#endif
    /* fixed chunks: the split does not change any code */
    const size_t len = 16384;
    const long nch = (long)((n + len - 1) / len);
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (long c = 0; c < nch; c++) {
        const size_t lo = (size_t)c * len, hi = lo + len < n ? lo + len : n;
        span(codes + lo, x + lo, hi - lo, zp, s, qmax);
    }
}

/* codes_span of x / dv (one more IEEE division first: the a0 = x / sigma of E3) */
static void codes_span_div(uint8_t *codes, const real *x, size_t n, real dv, real zp, real s, real qmax) {
    for (size_t i = 0; i < n; i++) {
        const real y = quant_level(x[i] / dv, zp, s, qmax, NULL);
        codes[i] = y == y ? (uint8_t)y : 0;
    }
}

#ifdef QUANT_HAVE_AVX2
__attribute__((target("avx2"))) static void codes_span_div_avx2(uint8_t *codes, const float *x, size_t n, float dv,
                                                                float zp, float s, float qmax) {
    const __m256 vd = _mm256_set1_ps(dv), vzp = _mm256_set1_ps(zp), vs = _mm256_set1_ps(s), vq = _mm256_set1_ps(qmax);
    const __m256 zero = _mm256_setzero_ps(), big = _mm256_set1_ps(0x1p23f), sign = _mm256_set1_ps(-0.0f);
    const __m256i gather = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 a0 = _mm256_div_ps(_mm256_loadu_ps(x + i), vd);
        __m256 y = _mm256_div_ps(_mm256_sub_ps(a0, vzp), vs);
        y = _mm256_blendv_ps(y, vq, _mm256_cmp_ps(y, vq, _CMP_GT_OQ));
        y = _mm256_blendv_ps(y, zero, _mm256_cmp_ps(y, zero, _CMP_LT_OQ));
        const __m256 a = _mm256_andnot_ps(sign, y);
        __m256 r = _mm256_sub_ps(_mm256_add_ps(a, big), big);
        r = _mm256_or_ps(_mm256_andnot_ps(sign, r), _mm256_and_ps(sign, y));
        y = _mm256_blendv_ps(y, r, _mm256_cmp_ps(a, big, _CMP_LT_OQ));
        const __m256 ok = _mm256_cmp_ps(y, y, _CMP_ORD_Q);
        __m256i v = _mm256_and_si256(_mm256_cvttps_epi32(y), _mm256_castps_si256(ok));
        v = _mm256_packus_epi32(v, v);
        v = _mm256_packus_epi16(v, v);
        v = _mm256_permutevar8x32_epi32(v, gather);
        _mm_storel_epi64((__m128i *)(void *)(codes + i), _mm256_castsi256_si128(v));
    }
    codes_span_div(codes + i, x + i, n - i, dv, zp, s, qmax);
}
#endif

void quant_codes_u8_rows(uint8_t *codes /* [rows, m] */, const real *x /* [rows, m] */, int rows, size_t m,
                         const real *div /* [rows] */, real zp, real s, real qmax) {
    void (*span)(uint8_t *, const real *, size_t, real, real, real, real) = codes_span_div;
#ifdef QUANT_HAVE_AVX2
    if (cpu_features() & CPU_AVX2) span = codes_span_div_avx2;
#endif
    const size_t len = 16384, per = (m + len - 1) / len;
    const long nch = (long)((size_t)rows * per);
    #pragma omp parallel for schedule(static) if ((size_t)rows * m > PAR_MIN)
    for (long c = 0; c < nch; c++) {
        const size_t r = (size_t)c / per, lo = (size_t)c % per * len, hi = lo + len < m ? lo + len : m;
        span(codes + r * m + lo, x + r * m + lo, hi - lo, div[r], zp, s, qmax);
    }
}

void quant_dequant_lut(real lut[256], real zp, real s, real qmax) {
    for (int c = 0; c < 256; c++) {
        const real y = (real)c > qmax ? qmax : (real)c;
        real t = y * s;
        lut[c] = t + zp;
    }
}

/* fixed chunking for global reductions: a function of n only, at most MAX_CHUNKS */
#define MAX_CHUNKS 256
#define MIN_CHUNK 65536
static size_t chunk_len(size_t n) {
    size_t c = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    return c < MIN_CHUNK ? MIN_CHUNK : c;
}

/* min and max of x[0..n), n >= 1, over 8 interleaved lanes (they vectorise:
 * v < m ? v : m is exactly minps), combined in lane order. Every lane starts
 * at x[0], so a NaN counts only there, as in a serial scan. Ties between -0
 * and +0 may keep the other zero than a serial scan would. */
static void span_min_max(const real *x, size_t n, real *mn_out, real *mx_out) {
    real mn[8], mx[8];
    for (int k = 0; k < 8; k++) mn[k] = mx[k] = x[0];
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            const real v = x[i + (size_t)k];
            mn[k] = v < mn[k] ? v : mn[k];
            mx[k] = v > mx[k] ? v : mx[k];
        }
    for (; i < n; i++) {
        mn[0] = x[i] < mn[0] ? x[i] : mn[0];
        mx[0] = x[i] > mx[0] ? x[i] : mx[0];
    }
    real a = mn[0], b = mx[0];
    for (int k = 1; k < 8; k++) {
        a = mn[k] < a ? mn[k] : a;
        b = mx[k] > b ? mx[k] : b;
    }
    *mn_out = a;
    *mx_out = b;
}

/* min and max of the non-NaN elements of x[0..n) (x[0] when there are none), serially:
 * only for a hooked reduction whose first element is NaN */
static void minmax_skip_nan(const real *x, size_t n, real *mn, real *mx) {
    real a = x[0], b = x[0];
    int have = 0;
    for (size_t i = 0; i < n; i++) {
        const real v = x[i];
        if (v != v) continue;
        if (!have) a = b = v;
        have = 1;
        a = v < a ? v : a;
        b = v > b ? v : b;
    }
    *mn = a;
    *mx = b;
}

void quant_minmax_params(real *zp, real *range, const real *x /* [n] */, size_t n) {
    quant_minmax_params_ex(zp, range, x, n, NULL, NULL);
}

void quant_minmax_params_ex(real *zp, real *range, const real *x /* [n] */, size_t n, QuantRangeHook hook,
                            void *ctx) {
    if (n == 0) {
        /* an empty tensor has the range 0, 0; a hook still runs (the other ranks wait for it) */
        real a = 0, b = 0;
        if (hook) hook(&a, &b, (real)0, ctx);
        *zp = a;
        *range = b - a;
        return;
    }
    const size_t len = chunk_len(n);
    const long nch = (long)((n + len - 1) / len);
    real mn[MAX_CHUNKS], mx[MAX_CHUNKS];
    #pragma omp parallel for schedule(static) if (nch > 1)
    for (long c = 0; c < nch; c++) {
        size_t lo = (size_t)c * len, hi = lo + len < n ? lo + len : n;
        span_min_max(x + lo, hi - lo, &mn[c], &mx[c]);
    }
    real a = mn[0], b = mx[0];
    for (long c = 1; c < nch; c++) {
        if (mn[c] < a) a = mn[c];
        if (mx[c] > b) b = mx[c];
    }
    if (hook) {
        if (x[0] != x[0]) minmax_skip_nan(x, n, &a, &b); /* a NaN first element hid this part's numbers */
        hook(&a, &b, x[0], ctx);
    }
    *zp = a;
    *range = b - a;
}

void minmax_uniform_apply(real *out, const real *x, size_t n, real zp, real range, double bits) {
    if (bits == 0) {
        if (out != x) memmove(out, x, n * sizeof(real));
        return;
    }
    quantize_core(out, x, n, zp, quant_scale(range, bits), quant_qmax(bits), NULL);
}

void minmax_uniform_row(real *o /* [n] */, real *zp, real *range, const real *xr /* [n] */, size_t n, double bits,
                        real qmax) {
    if (bits == 0) {
        if (o != xr) memmove(o, xr, n * sizeof(real));
        return;
    }
    real a, b;
    span_min_max(xr, n, &a, &b);
    const real z = a, R = b - a;
    if (zp) *zp = z;
    if (range) *range = R;
    const real s = quant_scale(R, bits);
    for (size_t i = 0; i < n; i++) {
        real y = quant_level(xr[i], z, s, qmax, NULL);
        real t = y * s;
        o[i] = t + z;
    }
}

void minmax_uniform_per_channel(real *out /* [rows, n] */, real *zp /* [rows] */, real *range /* [rows] */,
                                const real *x /* [rows, n] */, int rows, size_t n, double bits) {
    const real qmax = bits == 0 ? 0 : quant_qmax(bits);
    /* one row is short (C*KH*KW): each is quantized serially inside its thread */
    #pragma omp parallel for schedule(static) if (bits != 0 && (size_t)rows * n > PAR_MIN)
    for (int r = 0; r < rows; r++)
        minmax_uniform_row(out + (size_t)r * n, zp ? &zp[r] : NULL, range ? &range[r] : NULL, x + (size_t)r * n, n,
                           bits, qmax);
}

/* ------------------------------------------- the weight path's sign row (E4, E5, sign) */

/* b8[i] = sign(Q_k(x[i])) of one weight row: the values minmax_uniform_row
 * then sign_value give, as int8 (Wq itself is not needed by the packed path) */
static void sign_row_c(int8_t *b8, const real *x, size_t n, real z, real s, real qmax, int quant, int zplus) {
    for (size_t i = 0; i < n; i++) {
        real v = x[i];
        if (quant) {
            const real y = quant_level(x[i], z, s, qmax, NULL);
            const real t = y * s;
            v = t + z;
        }
        b8[i] = (int8_t)sign_value(v, zplus);
    }
}

#ifdef QUANT_HAVE_AVX2
/* span_min_max with one 8-lane vector: v < m ? v : m is exactly minps(v, m)
 * (the second operand on NaN and on equal zeros), so the same lanes, the same
 * tail on lane 0 and the same combination give the same bits */
__attribute__((target("avx2"))) static void span_min_max_avx2(const float *x, size_t n, float *mn_out,
                                                              float *mx_out) {
    if (n < 8) {
        span_min_max(x, n, mn_out, mx_out);
        return;
    }
    __m256 mn = _mm256_set1_ps(x[0]), mx = mn;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        mn = _mm256_min_ps(v, mn);
        mx = _mm256_max_ps(v, mx);
    }
    float a8[8], b8[8];
    _mm256_storeu_ps(a8, mn);
    _mm256_storeu_ps(b8, mx);
    for (; i < n; i++) {
        a8[0] = x[i] < a8[0] ? x[i] : a8[0];
        b8[0] = x[i] > b8[0] ? x[i] : b8[0];
    }
    float a = a8[0], b = b8[0];
    for (int k = 1; k < 8; k++) {
        a = a8[k] < a ? a8[k] : a;
        b = b8[k] > b ? b8[k] : b;
    }
    *mn_out = a;
    *mx_out = b;
}

/* sign_row_c, 8 at a time: quant_level's operations as in codes_span_avx2,
 * then t = y*s, v = t + z, and sign(v) (NaN and zeros: zplus) */
__attribute__((target("avx2"))) static void sign_row_avx2(int8_t *b8, const float *x, size_t n, float z, float s,
                                                          float qmax, int quant, int zplus) {
    const __m256 vz = _mm256_set1_ps(z), vs = _mm256_set1_ps(s), vq = _mm256_set1_ps(qmax);
    const __m256 zero = _mm256_setzero_ps(), big = _mm256_set1_ps(0x1p23f), sign = _mm256_set1_ps(-0.0f);
    const __m256i one = _mm256_set1_epi32(1), none = _mm256_set1_epi32(zplus ? 1 : 0);
    const __m256i gather = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (quant) {
            __m256 y = _mm256_div_ps(_mm256_sub_ps(v, vz), vs);
            y = _mm256_blendv_ps(y, vq, _mm256_cmp_ps(y, vq, _CMP_GT_OQ));
            y = _mm256_blendv_ps(y, zero, _mm256_cmp_ps(y, zero, _CMP_LT_OQ));
            const __m256 a = _mm256_andnot_ps(sign, y);
            __m256 r = _mm256_sub_ps(_mm256_add_ps(a, big), big);
            r = _mm256_or_ps(_mm256_andnot_ps(sign, r), _mm256_and_ps(sign, y));
            y = _mm256_blendv_ps(y, r, _mm256_cmp_ps(a, big, _CMP_LT_OQ));
            v = _mm256_add_ps(_mm256_mul_ps(y, vs), vz);
        }
        const __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_GT_OQ));
        const __m256i lt = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
        /* +1 where v > 0, -1 where v < 0, else zplus */
        __m256i r = _mm256_blendv_epi8(none, one, gt);
        r = _mm256_blendv_epi8(r, lt, lt);
        r = _mm256_packs_epi32(r, r);
        r = _mm256_packs_epi16(r, r);
        r = _mm256_permutevar8x32_epi32(r, gather);
        _mm_storel_epi64((__m128i *)(void *)(b8 + i), _mm256_castsi256_si128(r));
    }
    sign_row_c(b8 + i, x + i, n - i, z, s, qmax, quant, zplus);
}
#endif

void quant_sign_row_i8(int8_t *b8 /* [n] */, const real *x /* [n] */, size_t n, double bits, real qmax, int zplus) {
    void (*mm)(const real *, size_t, real *, real *) = span_min_max;
    void (*row)(int8_t *, const real *, size_t, real, real, real, int, int) = sign_row_c;
#ifdef QUANT_HAVE_AVX2
    if (cpu_features() & CPU_AVX2) {
        mm = span_min_max_avx2;
        row = sign_row_avx2;
    }
#endif
    if (n == 0) return;
    real z = 0, s = 1;
    if (bits != 0) {
        real a, b;
        mm(x, n, &a, &b);
        z = a;
        s = quant_scale(b - a, bits);
    }
    row(b8, x, n, z, s, qmax, bits != 0, zplus);
}

void minmax_per_tensor_params(real *zp_used, real *range_used, real *running /* [2] */, const real *x /* [n] */,
                              size_t n, int train) {
    minmax_per_tensor_params_ex(zp_used, range_used, running, x, n, train, NULL, NULL);
}

/* running.mul_(momentum).add_(value * (1 - momentum)): the Python scalars
 * 0.9 and 1 - 0.9 become reals; two products, one sum */
static void running_update(real *running /* [2] */, real zp, real R) {
    const real m = (real)0.9, m1 = (real)(1.0 - 0.9);
    real a = running[0] * m, b = zp * m1;
    running[0] = a + b;
    a = running[1] * m;
    b = R * m1;
    running[1] = a + b;
}

void minmax_per_tensor_params_known(real *zp_used, real *range_used, real *running /* [2] */, real mn, real mx,
                                    real first, QuantRangeHook hook, void *ctx) {
    if (hook) hook(&mn, &mx, first, ctx);
    *zp_used = mn;
    *range_used = mx - mn;
    running_update(running, mn, mx - mn);
}

void minmax_per_tensor_params_ex(real *zp_used, real *range_used, real *running /* [2] */, const real *x /* [n] */,
                                 size_t n, int train, QuantRangeHook hook, void *ctx) {
    real zp, R;
    if (train) {
        quant_minmax_params_ex(&zp, &R, x, n, hook, ctx);
        running_update(running, zp, R);
    } else {
        zp = running[0];
        R = running[1];
    }
    *zp_used = zp;
    *range_used = R;
}

void minmax_uniform_per_tensor(real *out /* [n] */, real *running /* [2] */, real *zp_used, real *range_used,
                               const real *x /* [n] */, size_t n, double bits, int train) {
    minmax_uniform_per_tensor_ex(out, running, zp_used, range_used, x, n, bits, train, NULL, NULL);
}

void minmax_uniform_per_tensor_ex(real *out /* [n] */, real *running /* [2] */, real *zp_used, real *range_used,
                                  const real *x /* [n] */, size_t n, double bits, int train, QuantRangeHook hook,
                                  void *ctx) {
    if (bits == 0) {
        if (out != x) memmove(out, x, n * sizeof(real));
        if (zp_used) *zp_used = 0;
        if (range_used) *range_used = 0;
        return;
    }
    real zp, R;
    minmax_per_tensor_params_ex(&zp, &R, running, x, n, train, hook, ctx);
    if (zp_used) *zp_used = zp;
    if (range_used) *range_used = R;
    quantize_core(out, x, n, zp, quant_scale(R, bits), quant_qmax(bits), NULL);
}

void minmax_uniform_backward(real *dx /* [n] */, const real *dout /* [n] */, size_t n) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += dout[i];
}

/* ------------------------------------------------------ error quantizer */

void grad_quant(real *out /* [n] */, const real *g /* [n] */, size_t n, double bits, const real *noise) {
    grad_quant_ex(out, g, n, bits, noise, NULL, NULL);
}

void grad_quant_ex(real *out /* [n] */, const real *g /* [n] */, size_t n, double bits, const real *noise,
                   QuantRangeHook hook, void *ctx) {
    if (bits == 0) {
        if (out != g) memmove(out, g, n * sizeof(real));
        return;
    }
    real zp, R;
    quant_minmax_params_ex(&zp, &R, g, n, hook, ctx);
    quantize_core(out, g, n, zp, quant_scale(R, bits), quant_qmax(bits), noise);
}

void quant_fill_noise(real *noise /* [n] */, size_t n, uint64_t seed, uint64_t key1, uint64_t key2) {
    quant_fill_noise_range(noise, 0, n, seed, key1, key2);
}

/* elements [lo, hi) of chunk c's draws into dst[0 .. hi - lo) (the chunk's
 * draws before lo are made and dropped); sub is the base stream's first draw */
static void noise_chunk(real *dst, uint64_t sub, long c, size_t lo, size_t hi) {
    Rng r = rng_stream(sub, RNG_STOCHASTIC, (uint64_t)c, 0);
    for (size_t i = (size_t)c * NOISE_CHUNK; i < lo; i++) (void)rng_u64(&r);
    for (size_t i = lo; i < hi; i++) {
        /* an integer in [-2^(p-1), 2^(p-1)) times 2^-p, p = the mantissa
         * width: exact in `real`, so the draw is in [-0.5, 0.5) */
#if REAL_IS_DOUBLE
        int64_t v = (int64_t)(rng_u64(&r) >> 11) - ((int64_t)1 << 52);
        dst[i - lo] = (real)v * 0x1p-53;
#else
        int32_t v = (int32_t)(rng_u64(&r) >> 40) - (1 << 23);
        dst[i - lo] = (real)v * 0x1p-24f;
#endif
    }
}

/* one stream for (seed, key1, key2); its first draw seeds the per-chunk
 * streams, so chunk keys never collide with the caller's keys */
static uint64_t noise_sub(uint64_t seed, uint64_t key1, uint64_t key2) {
    Rng base = rng_stream(seed, RNG_STOCHASTIC, key1, key2);
    return rng_u64(&base);
}

void quant_fill_noise_range(real *noise /* [n] */, size_t off, size_t n, uint64_t seed, uint64_t key1, uint64_t key2) {
    const uint64_t sub = noise_sub(seed, key1, key2);
    const long c0 = (long)(off / NOISE_CHUNK), c1 = (long)((off + n + NOISE_CHUNK - 1) / NOISE_CHUNK);
    #pragma omp parallel for schedule(static) if (c1 - c0 > 1)
    for (long c = c0; c < c1; c++) {
        const size_t clo = (size_t)c * NOISE_CHUNK, chi = clo + NOISE_CHUNK;
        const size_t lo = clo > off ? clo : off, hi = chi < off + n ? chi : off + n;
        noise_chunk(noise + (lo - off), sub, c, lo, hi);
    }
}

void quant_noise_get(real *buf /* [n] */, const QuantNoise *q, size_t lo, size_t n) {
    if (q->draws) {
        memcpy(buf, q->draws + lo, n * sizeof(real));
        return;
    }
    /* serial: the callers run it per block inside their own parallel loops */
    const uint64_t sub = noise_sub(q->seed, q->key1, q->key2);
    const size_t g0 = q->off + lo, g1 = g0 + n;
    for (size_t clo = g0 / NOISE_CHUNK * NOISE_CHUNK; clo < g1; clo += NOISE_CHUNK) {
        const size_t a = clo > g0 ? clo : g0, b = clo + NOISE_CHUNK < g1 ? clo + NOISE_CHUNK : g1;
        noise_chunk(buf + (a - g0), sub, (long)(clo / NOISE_CHUNK), a, b);
    }
}

void grad_quant_nz(real *out /* [n] */, const real *g /* [n] */, size_t n, double bits, const QuantNoise *q,
                   QuantRangeHook hook, void *ctx) {
    if (q == NULL || q->draws || bits == 0) {
        grad_quant_ex(out, g, n, bits, q ? q->draws : NULL, hook, ctx);
        return;
    }
    real zp, R;
    quant_minmax_params_ex(&zp, &R, g, n, hook, ctx);
    const real s = quant_scale(R, bits), qmax = quant_qmax(bits);
    /* blocks on the stream's chunk grid (no draw made twice), each drawn
     * into the thread's buffer; quantize_core on a block is serial */
    const size_t off = q->off;
    const long c0 = (long)(off / NOISE_CHUNK), c1 = (long)((off + n + NOISE_CHUNK - 1) / NOISE_CHUNK);
    #pragma omp parallel if (n > PAR_MIN)
    {
        real buf[NOISE_CHUNK];
        #pragma omp for schedule(static)
        for (long c = c0; c < c1; c++) {
            const size_t clo = (size_t)c * NOISE_CHUNK, chi = clo + NOISE_CHUNK;
            const size_t lo = (clo > off ? clo : off) - off, hi = (chi < off + n ? chi : off + n) - off;
            quant_noise_get(buf, q, lo, hi - lo);
            quantize_core(out + lo, g + lo, hi - lo, zp, s, qmax, buf);
        }
    }
}

real quant_threshold(real zp, real range, double bits) {
    real s = quant_scale(range, bits);
    real j = R_FLOOR(((real)0 - zp) / s);
    return zp + (j + (real)0.5) * s;
}

/* ------------------------------------------------------------------- sign */

void sign_forward(real *out /* [n] */, const real *x /* [n] */, size_t n, int zero_is_plus_one) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = sign_value(x[i], zero_is_plus_one);
}

void ste_sign_backward(real *dx /* [n] */, const real *dout /* [n] */, size_t n) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += dout[i];
}

void approx_sign_backward(real *dx /* [n] */, const real *dout /* [n] */, const real *xq /* [n] */, size_t n) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += dout[i] * approx_sign_grad(xq[i]);
}

/* ------------------------------------------------- standardisations (E2, E3) */

/* mean and unbiased variance of a row, two passes in double */
/* row statistics with ROWSUM8 (core/rowsum.h): eight accumulators, not one chain */
static double row_sum(const real *x, size_t n) {
    double s;
    ROWSUM8(s, n, (double)x[i]);
    return s;
}
static double row_sumsq_dev(const real *x, size_t n, double m) {
    double s;
    ROWSUM8(s, n, ((double)x[i] - m) * ((double)x[i] - m));
    return s;
}
static double row_dot(const real *g, const real *x, size_t n) {
    double s;
    ROWSUM8(s, n, (double)g[i] * (double)x[i]);
    return s;
}
static double row_dot_centered(const real *g, const real *x, real mr, size_t n) {
    double s;
    ROWSUM8(s, n, (double)g[i] * (double)(x[i] - mr));
    return s;
}

static void row_mean_var(const real *x, size_t n, double *mean, double *var) {
    const double m = row_sum(x, n) / (double)n;
    *mean = m;
    *var = row_sumsq_dev(x, n, m) / (double)(n - 1);
}

void weight_standardize_row(real *y /* [n] */, real *sigma, real *mean, const real *x /* [n] */, size_t n,
                            int center) {
    const real sqrt2 = (real)M_SQRT2; /* math.sqrt(2), a Python scalar */
    double mu, var;
    row_mean_var(x, n, &mu, &var);
    *mean = (real)mu;
    const real *src = x;
    if (center) {
        /* W0 = W - mean (in real, as a float tensor op), and its own variance */
        const real mr = (real)mu;
        for (size_t i = 0; i < n; i++) y[i] = x[i] - mr;
        double mu0;
        row_mean_var(y, n, &mu0, &var);
        src = y;
    }
    real s = R_SQRT((real)var + STD_EPS);
    *sigma = s;
    /* the reference's op order: W0 / (sqrt(var + eps) / 2 / sqrt(2)) */
    real den = s / (real)2 / sqrt2;
    for (size_t i = 0; i < n; i++) y[i] = src[i] / den;
}

void weight_standardize_forward(real *w1 /* [O,n] */, real *sigma /* [O] */, real *mean /* [O] */,
                                const real *w /* [O,n] */, int O, size_t n, int center) {
    #pragma omp parallel for schedule(static) if ((size_t)O * n > PAR_MIN)
    for (int o = 0; o < O; o++)
        weight_standardize_row(w1 + (size_t)o * n, &sigma[o], &mean[o], w + (size_t)o * n, n, center);
}

void weight_standardize_backward(real *dw /* [O,n] */, const real *dw1 /* [O,n] */, const real *w /* [O,n] */,
                                 const real *sigma /* [O] */, const real *mean /* [O] */, int O, size_t n,
                                 int center) {
    const double c = 2.0 * M_SQRT2;
    #pragma omp parallel for schedule(static) if ((size_t)O * n > PAR_MIN)
    for (int o = 0; o < O; o++) {
        const real *x = w + (size_t)o * n, *g = dw1 + (size_t)o * n;
        real *dx = dw + (size_t)o * n;
        const double sg = (double)sigma[o], mu = (double)mean[o];
        const real mr = mean[o];
        /* dot = sum_j dW1_j * W0_j, with W0 the values that were divided */
        const double dot = center ? row_dot_centered(g, x, mr, n) : row_dot(g, x, n);
        const double a = c / sg, b = c * dot / (sg * sg * sg * (double)(n - 1));
        /* W_i - mean is W0_i - mean(W0) in both cases (centering leaves a zero-mean row) */
        if (!center) {
            for (size_t i = 0; i < n; i++) dx[i] = (real)((double)dx[i] + a * (double)g[i] - b * ((double)x[i] - mu));
        } else {
            /* then through W0 = W - mean(W): subtract the row mean of dW0 */
            double gm = 0.0;
            for (size_t i = 0; i < n; i++) gm += a * (double)g[i] - b * ((double)x[i] - mu);
            gm /= (double)n;
            for (size_t i = 0; i < n; i++)
                dx[i] = (real)((double)dx[i] + a * (double)g[i] - b * ((double)x[i] - mu) - gm);
        }
    }
}

real recu_clamp_q(const real *w1 /* [n] */, size_t n, double tau) {
    if (tau >= 1.0) return (real)INFINITY; /* log(0) = -inf: no clamp */
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += fabs((double)w1[i]);
    double ew = n ? s / (double)n : 0.0;
    return (real)(-ew * log(2.0 - 2.0 * tau));
}

void recu_clamp_forward(real *w2 /* [n] */, const real *w1 /* [n] */, size_t n, real q) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        real v = w1[i] < -q ? -q : w1[i];
        w2[i] = v > q ? q : v;
    }
}

void recu_clamp_backward(real *dw1 /* [n] */, const real *dw2 /* [n] */, const real *w1 /* [n] */, size_t n,
                         real q) {
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        if (w1[i] >= -q && w1[i] <= q) dw1[i] += dw2[i];
}

/* act_normalize_forward's rows, each also giving the min and max of the a0
 * it writes over 8 lanes (exact values: the order does not matter for them) */
static void act_norm_row_mm(real *y, real *sigma, real *mean, real *mn, real *mx, const real *x, size_t m) {
    double mu, var;
    row_mean_var(x, m, &mu, &var);
    *mean = (real)mu;
    const real s = R_SQRT((real)var + STD_EPS);
    *sigma = s;
    real ln[8], lx[8];
    for (int k = 0; k < 8; k++) ln[k] = (real)INFINITY, lx[k] = (real)-INFINITY;
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int k = 0; k < 8; k++) {
            const real v = x[i + (size_t)k] / s;
            y[i + (size_t)k] = v;
            ln[k] = v < ln[k] ? v : ln[k];
            lx[k] = v > lx[k] ? v : lx[k];
        }
    for (; i < m; i++) {
        const real v = x[i] / s;
        y[i] = v;
        ln[0] = v < ln[0] ? v : ln[0];
        lx[0] = v > lx[0] ? v : lx[0];
    }
    for (int k = 1; k < 8; k++) {
        ln[0] = ln[k] < ln[0] ? ln[k] : ln[0];
        lx[0] = lx[k] > lx[0] ? lx[k] : lx[0];
    }
    *mn = ln[0];
    *mx = lx[0];
}

int act_normalize_forward_minmax(real *a0 /* [N,m] */, real *sigma /* [N] */, real *mean /* [N] */, real *mn_out,
                                 real *mx_out, const real *a /* [N,m] */, int N, size_t m) {
    real rmn[N > 0 ? N : 1], rmx[N > 0 ? N : 1];
    #pragma omp parallel for schedule(static) if ((size_t)N * m > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = a + (size_t)n * m;
        if (a0) {
            act_norm_row_mm(a0 + (size_t)n * m, &sigma[n], &mean[n], &rmn[n], &rmx[n], x, m);
            continue;
        }
        /* no a0: x's extremes divided by sigma, which are a0's (division by
         * sigma > 0 is monotone, x <= y gives x/s <= y/s after rounding) */
        double mu, var;
        row_mean_var(x, m, &mu, &var);
        mean[n] = (real)mu;
        const real sg = R_SQRT((real)var + STD_EPS);
        sigma[n] = sg;
        real xmn, xmx;
        span_min_max(x, m, &xmn, &xmx);
        rmn[n] = xmn / sg;
        rmx[n] = xmx / sg;
    }
    if (N <= 0) return 0;
    real mn = rmn[0], mx = rmx[0];
    int ok = 1;
    for (int n = 0; n < N; n++) {
        /* sigma finite (and > 0: sqrt(var + 1e-5)) <=> every x of the row finite: then no a0 is NaN */
        if (!isfinite(sigma[n])) ok = 0;
        mn = rmn[n] < mn ? rmn[n] : mn;
        mx = rmx[n] > mx ? rmx[n] : mx;
    }
    *mn_out = mn;
    *mx_out = mx;
    /* a zero extreme's sign depends on the scan's order: the caller scans */
    return ok && mn != 0 && mx != 0;
}

void act_normalize_forward(real *a0 /* [N,m] */, real *sigma /* [N] */, real *mean /* [N] */,
                           const real *a /* [N,m] */, int N, size_t m) {
    #pragma omp parallel for schedule(static) if ((size_t)N * m > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = a + (size_t)n * m;
        real *y = a0 + (size_t)n * m;
        double mu, var;
        row_mean_var(x, m, &mu, &var);
        mean[n] = (real)mu;
        real s = R_SQRT((real)var + STD_EPS);
        sigma[n] = s;
        for (size_t i = 0; i < m; i++) y[i] = x[i] / s;
    }
}

void act_normalize_backward(real *da /* [N,m] */, const real *da0 /* [N,m] */, const real *a /* [N,m] */,
                            const real *sigma /* [N] */, const real *mean /* [N] */, int N, size_t m) {
    #pragma omp parallel for schedule(static) if ((size_t)N * m > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = a + (size_t)n * m, *g = da0 + (size_t)n * m;
        real *dx = da + (size_t)n * m;
        const double sg = (double)sigma[n], mu = (double)mean[n];
        const double dot = row_dot(g, x, m);
        const double a1 = 1.0 / sg, b = dot / (sg * sg * sg * (double)(m - 1));
        for (size_t i = 0; i < m; i++) dx[i] = (real)((double)dx[i] + a1 * (double)g[i] - b * ((double)x[i] - mu));
    }
}
