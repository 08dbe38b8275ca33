/* Integer backward of the binary conv on 8-bit error codes; see bconv_bwd_int8.h. */
#include "bconv_bwd_int8.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "quant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BWD8_X86 1
#endif

/* GEMM shapes the drivers hand to the micro-kernels */
#define MPAD 12     /* rows padded to a multiple of 12 (every kernel's MR, 4 or 6, divides it) */
#define NPAD 16     /* columns padded to a multiple of 16 */
#define WG_ROWS 24  /* wgrad work unit: 24 rows of (c, kh, kw) (a multiple of MPAD) */

static size_t rup(size_t x, size_t m) { return (x + m - 1) / m * m; }

static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, rup(bytes ? bytes : 1, 64));
    if (p == NULL) {
        fprintf(stderr, "bconv_bwd_int8: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return p;
}

/* The micro-kernel contract (every table):
 *   C[i][j] = (accumulate ? C[i][j] : 0)
 *           + sum_{t < nseg} sum_{k < Kseg} arow[i][aoff[t] + k] * b[boff[t] + (k/4)*4*ldb + 4*j + k%4]
 * for i < M, j < ncols: a reduction split in nseg segments of Kseg (a
 * multiple of 4), each with its own offset into every A row and into B.
 * A bytes are int8 (the ternary operand, broadcast 4 bytes at a time), B
 * bytes uint8 (codes, packed in groups of 4 along k; ldb columns per group).
 * M is a multiple of MPAD, ncols a multiple of NPAD. The kernels read A rows
 * [aoff[t], aoff[t] + Kseg) and B columns [0, ncols) of each group. */
typedef void (*GemmFn)(int32_t *c, size_t ldc, const int8_t *const *arow, int nseg, const ptrdiff_t *aoff,
                       const ptrdiff_t *boff, int Kseg, const uint8_t *b, size_t ldb, int M, int ncols, int accumulate);

/* ------------------------------------------------------------ C micro-kernel */
static void gemm_c(int32_t *c, size_t ldc, const int8_t *const *arow, int nseg, const ptrdiff_t *aoff,
                   const ptrdiff_t *boff, int Kseg, const uint8_t *b, size_t ldb, int M, int ncols, int accumulate) {
    for (int i = 0; i < M; i++) {
        int32_t *restrict ci = c + (size_t)i * ldc;
        if (!accumulate) memset(ci, 0, sizeof(int32_t) * (size_t)ncols);
        for (int t = 0; t < nseg; t++) {
            const int8_t *ai = arow[i] + aoff[t];
            for (int k = 0; k < Kseg; k += 4) {
                const int32_t a0 = ai[k], a1 = ai[k + 1], a2 = ai[k + 2], a3 = ai[k + 3];
                if ((a0 | a1 | a2 | a3) == 0) continue;
                const uint8_t *restrict bk = b + boff[t] + (size_t)(k >> 2) * 4 * ldb;
                for (int j = 0; j < ncols; j++)
                    ci[j] += a0 * bk[4 * j] + a1 * bk[4 * j + 1] + a2 * bk[4 * j + 2] + a3 * bk[4 * j + 3];
            }
        }
    }
}

/* ------------------------------------------------------------ x86 micro-kernels */
#ifdef BWD8_X86
#define T_AVX2 __attribute__((target("avx2")))
#define T_AVXVNNI __attribute__((target("avx2,avxvnni")))
#define T_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))

static inline int32_t ld32(const int8_t *p) {
    int32_t t;
    memcpy(&t, p, 4);
    return t;
}

/* AVX2: vpmaddubsw(codes u8, ternary s8) gives int16 pairs |.| <= 510; up to
 * 64 k-steps of them are summed in int16 (64*510 = 32640 < 32767, no wrap),
 * then widened with vpmaddwd(., 1) into the int32 tile, which lives in C (L1).
 * Tile 4 rows x 16 columns (2 ymm), 8 int16 accumulators. */
#define AVX2_MR 4
#define AVX2_CHUNK 64 /* k-steps of 4 bytes per int16 partial sum */
static T_AVX2 void gemm_avx2(int32_t *c, size_t ldc, const int8_t *const *arow, int nseg, const ptrdiff_t *aoff,
                             const ptrdiff_t *boff, int Kseg, const uint8_t *b, size_t ldb, int M, int ncols,
                             int accumulate) {
    const __m256i ones = _mm256_set1_epi16(1);
    const size_t bstep = 4 * ldb;
    for (int j0 = 0; j0 < ncols; j0 += 16)
        for (int i0 = 0; i0 < M; i0 += AVX2_MR) {
            int32_t *c0 = c + (size_t)i0 * ldc + j0;
            int stored = accumulate; /* C holds a partial sum to add to */
            int cnt = 0;             /* k-steps in the int16 sums */
            __m256i t[AVX2_MR][2];
            for (int r = 0; r < AVX2_MR; r++) t[r][0] = t[r][1] = _mm256_setzero_si256();
#define AVX2_FLUSH()                                                                   \
    do {                                                                               \
        for (int r = 0; r < AVX2_MR; r++)                                              \
            for (int v = 0; v < 2; v++) {                                              \
                __m256i *p = (__m256i *)(c0 + (size_t)r * ldc + 8 * v);                \
                __m256i w = _mm256_madd_epi16(t[r][v], ones);                          \
                if (stored) w = _mm256_add_epi32(w, _mm256_loadu_si256(p));            \
                _mm256_storeu_si256(p, w);                                             \
                t[r][v] = _mm256_setzero_si256();                                      \
            }                                                                          \
        stored = 1;                                                                    \
        cnt = 0;                                                                       \
    } while (0)
            for (int sg = 0; sg < nseg; sg++) {
                const int8_t *ar[AVX2_MR];
                for (int r = 0; r < AVX2_MR; r++) ar[r] = arow[i0 + r] + aoff[sg];
                for (int k0 = 0; k0 < Kseg; k0 += 4 * AVX2_CHUNK) {
                    const int k1 = Kseg - k0 < 4 * AVX2_CHUNK ? Kseg : k0 + 4 * AVX2_CHUNK;
                    if (cnt + (k1 - k0) / 4 > AVX2_CHUNK) AVX2_FLUSH();
                    const uint8_t *bk = b + boff[sg] + (size_t)(k0 >> 2) * bstep + 4 * (size_t)j0;
                    for (int k = k0; k < k1; k += 4, bk += bstep) {
                        const __m256i b0 = _mm256_loadu_si256((const __m256i *)bk);
                        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bk + 32));
#pragma GCC unroll 4
                        for (int r = 0; r < AVX2_MR; r++) {
                            const __m256i av = _mm256_set1_epi32(ld32(ar[r] + k));
                            t[r][0] = _mm256_add_epi16(t[r][0], _mm256_maddubs_epi16(b0, av));
                            t[r][1] = _mm256_add_epi16(t[r][1], _mm256_maddubs_epi16(b1, av));
                        }
                    }
                    cnt += (k1 - k0) / 4;
                }
            }
            AVX2_FLUSH();
#undef AVX2_FLUSH
        }
}

/* AVX-VNNI: ymm vpdpbusd, tile 6 rows x 16 columns in 12 int32 accumulators */
#define VNNI_MR 6
static T_AVXVNNI void gemm_avxvnni(int32_t *c, size_t ldc, const int8_t *const *arow, int nseg, const ptrdiff_t *aoff,
                                   const ptrdiff_t *boff, int Kseg, const uint8_t *b, size_t ldb, int M, int ncols,
                                   int accumulate) {
    const size_t bstep = 4 * ldb;
    for (int j0 = 0; j0 < ncols; j0 += 16)
        for (int i0 = 0; i0 < M; i0 += VNNI_MR) {
            int32_t *c0 = c + (size_t)i0 * ldc + j0;
            __m256i acc[VNNI_MR][2];
            for (int r = 0; r < VNNI_MR; r++)
                for (int v = 0; v < 2; v++)
                    acc[r][v] = accumulate ? _mm256_loadu_si256((const __m256i *)(c0 + (size_t)r * ldc + 8 * v))
                                           : _mm256_setzero_si256();
            for (int sg = 0; sg < nseg; sg++) {
                const int8_t *ar[VNNI_MR];
                for (int r = 0; r < VNNI_MR; r++) ar[r] = arow[i0 + r] + aoff[sg];
                const uint8_t *bk = b + boff[sg] + 4 * (size_t)j0;
                for (int k = 0; k < Kseg; k += 4, bk += bstep) {
                    const __m256i b0 = _mm256_loadu_si256((const __m256i *)bk);
                    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bk + 32));
#pragma GCC unroll 6
                    for (int r = 0; r < VNNI_MR; r++) {
                        const __m256i av = _mm256_set1_epi32(ld32(ar[r] + k));
                        acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], b0, av);
                        acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], b1, av);
                    }
                }
            }
            for (int r = 0; r < VNNI_MR; r++)
                for (int v = 0; v < 2; v++) _mm256_storeu_si256((__m256i *)(c0 + (size_t)r * ldc + 8 * v), acc[r][v]);
        }
}

/* AVX-512 VNNI: zmm vpdpbusd, tile 6 rows x 64 columns (24 accumulators),
 * then 6 x 16 for the last columns */
#define Z_MR 6
static T_AVX512 void gemm_avx512vnni(int32_t *c, size_t ldc, const int8_t *const *arow, int nseg,
                                     const ptrdiff_t *aoff, const ptrdiff_t *boff, int Kseg, const uint8_t *b,
                                     size_t ldb, int M, int ncols, int accumulate) {
    const size_t bstep = 4 * ldb;
    int j0 = 0;
    for (; j0 + 64 <= ncols; j0 += 64)
        for (int i0 = 0; i0 < M; i0 += Z_MR) {
            int32_t *c0 = c + (size_t)i0 * ldc + j0;
            __m512i acc[Z_MR][4];
#pragma GCC unroll 6
            for (int r = 0; r < Z_MR; r++)
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++)
                    acc[r][v] = accumulate ? _mm512_loadu_si512(c0 + (size_t)r * ldc + 16 * v) : _mm512_setzero_si512();
            for (int sg = 0; sg < nseg; sg++) {
                const int8_t *ar[Z_MR];
#pragma GCC unroll 6
                for (int r = 0; r < Z_MR; r++) ar[r] = arow[i0 + r] + aoff[sg];
                const uint8_t *bk = b + boff[sg] + 4 * (size_t)j0;
                for (int k = 0; k < Kseg; k += 4, bk += bstep) {
                    const __m512i b0 = _mm512_loadu_si512(bk), b1 = _mm512_loadu_si512(bk + 64);
                    const __m512i b2 = _mm512_loadu_si512(bk + 128), b3 = _mm512_loadu_si512(bk + 192);
#pragma GCC unroll 6
                    for (int r = 0; r < Z_MR; r++) {
                        const __m512i av = _mm512_set1_epi32(ld32(ar[r] + k));
                        acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, av);
                        acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, av);
                        acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], b2, av);
                        acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], b3, av);
                    }
                }
            }
#pragma GCC unroll 6
            for (int r = 0; r < Z_MR; r++)
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++) _mm512_storeu_si512(c0 + (size_t)r * ldc + 16 * v, acc[r][v]);
        }
    for (; j0 < ncols; j0 += 16)
        for (int i0 = 0; i0 < M; i0 += Z_MR) {
            int32_t *c0 = c + (size_t)i0 * ldc + j0;
            __m512i acc[Z_MR];
#pragma GCC unroll 6
            for (int r = 0; r < Z_MR; r++)
                acc[r] = accumulate ? _mm512_loadu_si512(c0 + (size_t)r * ldc) : _mm512_setzero_si512();
            for (int sg = 0; sg < nseg; sg++) {
                const int8_t *ar[Z_MR];
#pragma GCC unroll 6
                for (int r = 0; r < Z_MR; r++) ar[r] = arow[i0 + r] + aoff[sg];
                const uint8_t *bk = b + boff[sg] + 4 * (size_t)j0;
                for (int k = 0; k < Kseg; k += 4, bk += bstep) {
                    const __m512i b0 = _mm512_loadu_si512(bk);
#pragma GCC unroll 6
                    for (int r = 0; r < Z_MR; r++)
                        acc[r] = _mm512_dpbusd_epi32(acc[r], b0, _mm512_set1_epi32(ld32(ar[r] + k)));
                }
            }
#pragma GCC unroll 6
            for (int r = 0; r < Z_MR; r++) _mm512_storeu_si512(c0 + (size_t)r * ldc, acc[r]);
        }
}
#endif

/* ------------------------------------------------------------ geometry helpers */
/* first and one-past-last output coordinate whose input coordinate o*stride - pad + k
 * lies in [0, size) (as core/ops/conv2d.c) */
static void valid_range(int k, int stride, int pad, int size, int out_size, int *lo, int *hi) {
    int a = pad - k;
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int b = size - 1 + pad - k;
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > out_size) h = out_size;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* I[c, ih, iw] += src[ck][oh*OW + ow] over the taps (adjoint of im2col), int32,
 * for the channels c in [c0, c1): rows ck = ((c - c0)*KH + kh)*KW + kw of src with
 * stride ld */
static inline __attribute__((always_inline)) void col2im_body(int32_t *I, const int32_t *src, size_t ld,
                                                               const ConvDims *d, int c0, int c1) {
    const int H = d->H, W = d->W, KH = d->KH, KW = d->KW, OH = d->OH, OW = d->OW, s = d->stride, p = d->pad;
    for (int c = c0; c < c1; c++) {
        int32_t *plane = I + (size_t)c * H * W;
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const size_t ck = ((size_t)(c - c0) * KH + kh) * KW + kw;
                int lo, hi;
                valid_range(kw, s, p, W, OW, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    const int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H) continue;
                    int32_t *restrict drow = plane + (size_t)ih * W;
                    const int off = kw - p; /* iw = ow*s + off, in [0, W) for ow in [lo, hi) */
                    const int32_t *restrict srow = src + ck * ld + (size_t)oh * OW;
                    if (s == 1) {
                        if (hi > lo) {
                            int32_t *restrict dd = drow + lo + off;
                            const int32_t *restrict ss = srow + lo;
                            for (int k = 0; k < hi - lo; k++) dd[k] += ss[k];
                        }
                    } else {
                        for (int ow = lo; ow < hi; ow++) drow[ow * s + off] += srow[ow];
                    }
                }
            }
    }
}

/* out[i*os] = s*I[i] + zp*S[i*os] for i < n (the float formed as bconv_bwd_int8_out) */
static inline __attribute__((always_inline)) void epi_body(real *out, size_t os, const int32_t *I, const int32_t *S,
                                                           size_t n, real s, real zp) {
    if (os == 1)
        for (size_t i = 0; i < n; i++) out[i] = bconv_bwd_int8_out(s, zp, I[i], S[i]);
    else
        for (size_t i = 0; i < n; i++) out[i * os] = bconv_bwd_int8_out(s, zp, I[i], S[i * os]);
}

/* the drivers' elementwise helpers, compiled for each target (the same
 * integer adds and the same double operations: the same bits) */
typedef void (*Col2imFn)(int32_t *I, const int32_t *src, size_t ld, const ConvDims *d, int c0, int c1);
typedef void (*EpiFn)(real *out, size_t os, const int32_t *I, const int32_t *S, size_t n, real s, real zp);
typedef struct {
    GemmFn gemm;
    Col2imFn col2im;
    EpiFn epi;
} Kern;
#define DEFINE_HELPERS(sfx, attr)                                                                                  \
    static attr void col2im_##sfx(int32_t *I, const int32_t *src, size_t ld, const ConvDims *d, int c0, int c1) {  \
        col2im_body(I, src, ld, d, c0, c1);                                                                        \
    }                                                                                                              \
    static attr void epi_##sfx(real *out, size_t os, const int32_t *I, const int32_t *S, size_t n, real s,         \
                               real zp) {                                                                          \
        epi_body(out, os, I, S, n, s, zp);                                                                         \
    }
DEFINE_HELPERS(c, )
#ifdef BWD8_X86
DEFINE_HELPERS(avx2, T_AVX2)
DEFINE_HELPERS(avx512, T_AVX512)

/* col2im for maps of at most 16 pixels (CIFAR's 4x4 stage; an input plane
 * and an output plane of one sample each fit one zmm): per channel, every
 * tap's 16 int32 of the GEMM block are moved to the input pixels they reach
 * by one masked permute (vpermd, zero where the tap reaches no output) and
 * added. The generic loop spends most of its time on runs of 3-4 pixels
 * there (as long as the GEMM itself at 512->512 4x4). The same integer adds. */
static T_AVX512 void col2im_avx512_small(int32_t *I, const int32_t *src, size_t ld, const ConvDims *d, int c0,
                                         int c1) {
    const int H = d->H, W = d->W, KH = d->KH, KW = d->KW, OH = d->OH, OW = d->OW, st = d->stride, p = d->pad;
    const int T = KH * KW, HW = H * W;
    int32_t idx[T][16];
    __mmask16 msk[T];
    for (int t = 0; t < T; t++) {
        const int kh = t / KW, kw = t % KW;
        unsigned m = 0;
        for (int i = 0; i < 16; i++) {
            idx[t][i] = 0;
            if (i >= HW) continue;
            const int th = i / W + p - kh, tw = i % W + p - kw; /* = oh*st, ow*st when the tap reaches (h, w) */
            if (th < 0 || tw < 0 || th % st || tw % st || th / st >= OH || tw / st >= OW) continue;
            idx[t][i] = th / st * OW + tw / st;
            m |= 1u << i;
        }
        msk[t] = (__mmask16)m;
    }
    const __mmask16 pin = (__mmask16)((1u << HW) - 1), pout = (__mmask16)((1u << (OH * OW)) - 1);
    for (int c = c0; c < c1; c++) {
        int32_t *plane = I + (size_t)c * HW;
        __m512i acc = _mm512_maskz_loadu_epi32(pin, plane);
        const int32_t *sc = src + (size_t)(c - c0) * T * ld;
        for (int t = 0; t < T; t++) {
            const __m512i v = _mm512_maskz_loadu_epi32(pout, sc + (size_t)t * ld);
            const __m512i ix = _mm512_loadu_si512(idx[t]);
            acc = _mm512_add_epi32(acc, _mm512_maskz_permutexvar_epi32(msk[t], ix, v));
        }
        _mm512_mask_storeu_epi32(plane, pin, acc);
    }
}
static T_AVX512 void col2im_avx512x(int32_t *I, const int32_t *src, size_t ld, const ConvDims *d, int c0, int c1) {
    if (d->H * d->W <= 16 && d->OH * d->OW <= 16) col2im_avx512_small(I, src, ld, d, c0, c1);
    else col2im_avx512(I, src, ld, d, c0, c1);
}
#endif

/* S[c][h][w] = sum of colsum[c][kh][kw] over the taps that reach (h, w) from
 * some output pixel: the tap's validity is a row condition times a column
 * condition ((h + pad - kh) divisible by the stride, quotient in [0, OH)), so
 * the sum is separable: per row, the kh-sums r[kw] of the valid rows, then per
 * pixel the sum of r over the valid kw. (= col2im of the column sums) */
static void tap_sums(int32_t *S /* [C,H,W] */, const int32_t *colsum /* [C,KH,KW] */, const ConvDims *d) {
    const int C = d->C, H = d->H, W = d->W, KH = d->KH, KW = d->KW, st = d->stride, p = d->pad;
    uint8_t *vr = xalloc((size_t)KH * H), *vc = xalloc((size_t)KW * W);
    for (int kh = 0; kh < KH; kh++)
        for (int h = 0; h < H; h++) {
            const int t = h + p - kh;
            vr[(size_t)kh * H + h] = t >= 0 && t % st == 0 && t / st < d->OH;
        }
    for (int kw = 0; kw < KW; kw++)
        for (int w = 0; w < W; w++) {
            const int t = w + p - kw;
            vc[(size_t)kw * W + w] = t >= 0 && t % st == 0 && t / st < d->OW;
        }
    #pragma omp parallel
    {
        int32_t *r = xalloc(sizeof(int32_t) * (size_t)KW);
        #pragma omp for schedule(static)
        for (int c = 0; c < C; c++) {
            const int32_t *cs = colsum + (size_t)c * KH * KW;
            for (int h = 0; h < H; h++) {
                for (int kw = 0; kw < KW; kw++) {
                    int32_t t = 0;
                    for (int kh = 0; kh < KH; kh++)
                        if (vr[(size_t)kh * H + h]) t += cs[kh * KW + kw];
                    r[kw] = t;
                }
                int32_t *row = S + ((size_t)c * H + h) * W;
                for (int w = 0; w < W; w++) row[w] = 0;
                for (int kw = 0; kw < KW; kw++) {
                    const uint8_t *v = vc + (size_t)kw * W;
                    const int32_t rk = r[kw];
                    for (int w = 0; w < W; w++) row[w] += v[w] ? rk : 0;
                }
            }
        }
        free(r);
    }
    free(vr);
    free(vc);
}

static void fill_zero_out(real *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (real)0;
}

/* ------------------------------------------------------------ drivers */
/* CBNN_BWD8_NO_DIRECT=1: dgrad always takes the GEMM + col2im path (tests and benchmarks of both paths) */
static int no_direct_override = -1; /* -1: read the environment once */
static int getenv_int_cached_no_direct(void) {
    int v = no_direct_override;
    if (v < 0) {
        const char *e = getenv("CBNN_BWD8_NO_DIRECT");
        v = e && e[0] == '1';
        no_direct_override = v;
    }
    return v;
}
void bconv_bwd_int8_set_dgrad_direct(int enable) { no_direct_override = !enable; }

/* dgrad without col2im (any stride and pad; used when H*W >= 64): the
 * transposed conv as correlations on zero-bordered codes, one per output
 * stride phase. With h + pad = a*st + ry (ry the row phase), the taps that
 * reach row h are kh = ry + st*t, from output row oh = a - t (t = 0, 1, ...);
 * the same for columns (rx, b, kw = rx + st*u, ow = b - u). The codes of
 * sample n go into a grid G[o][Y][X] (Hg x Wg), G[o][oh + TY][ow + UX] =
 * code[n,o,oh,ow], 0 elsewhere (TY = ceil(KH/st) - 1, UX = ceil(KW/st) - 1), so
 *   I[c][h][w] = sum_{t,u} sum_o Bw[o,c,ry+st*t,rx+st*u] * G[o][a - t + TY][b - u + UX]
 * For each phase, one GEMM over columns j = (a - a_lo)*Wg + b - b_lo with one
 * reduction segment per tap of the phase: the tap reads B shifted by
 * (a_lo + TY - t)*Wg + b_lo + UX - m - u columns (m: see below) and
 * A_tap[c][o] = Bw[o,c,kh,kw]. Columns b outside the phase's range are
 * computed and dropped (about (Wg - W/st)/Wg extra work). S as in dgrad_drv.
 * Unit: one sample. */
static int dgrad_direct_ok(const ConvDims *d) {
    /* at least 64 outputs per phase: one 64-column tile (fewer: the GEMM + col2im path wins) */
    return (long)d->H * d->W >= 64L * d->stride * d->stride && d->OH > 0 && d->OW > 0 && d->O > 0 && d->C > 0;
}

/* the outputs of phase r along one axis: a in [lo, hi) with a*st + r - pad in [0, size) */
static void phase_range(int r, int st, int pad, int size, int *lo, int *hi) {
    const int l0 = pad - r; /* a*st >= pad - r */
    int l = l0 <= 0 ? 0 : (l0 + st - 1) / st;
    const int h0 = size - 1 + pad - r; /* a*st <= size - 1 + pad - r */
    int h = h0 < 0 ? 0 : h0 / st + 1;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* The direct path's plan: the grid and GEMM extents (from the dims only) and
 * the per-call tables every sample reads (A, its row pointers, each phase's
 * tap offsets, S). Built before the parallel region, read-only inside it. */
typedef struct {
    int K, Cp, T;           /* reduction (O padded to 4), GEMM rows (C padded to MPAD), taps KH*KW */
    int TY, UX;             /* grid rows above / columns left of the codes: ceil(KH/st) - 1, ceil(KW/st) - 1 */
    int m;                  /* grid columns dropped at the left (see direct_grid) */
    int Hg, Wg;             /* grid extent */
    int ncmax;              /* the widest phase's GEMM columns */
    size_t ldb;             /* B columns per group of 4 channels */
    int8_t *A;              /* A[t][c][o] = Bw[o, c, t], o padded to K */
    int32_t *colsum;        /* [C][T]: sum over o of Bw[o, c, t] */
    const int8_t **arow;    /* [Cp]: the GEMM's A rows (padding rows: row 0, dropped) */
    ptrdiff_t *aoff, *boff; /* [st*st][T]: each phase's taps, as reduction segments */
    int *nseg;              /* [st*st]: taps per phase */
    int32_t *S;             /* [C,H,W]: the tap sums of colsum (the zero-point term) */
} DirectPlan;

/* the grid extent: the codes and every phase's outputs. Columns are shifted
 * left by m = min(UX, the phases' first b) (the columns left of every
 * phase's first read are never used): X = ow + UX - m, and output column b
 * reads X = b - u + UX - m >= 0. */
static void direct_grid(DirectPlan *pl, const ConvDims *d) {
    const int H = d->H, W = d->W, KH = d->KH, KW = d->KW, OH = d->OH, OW = d->OW, st = d->stride, p = d->pad;
    const int TY = (KH + st - 1) / st - 1, UX = (KW + st - 1) / st - 1;
    int amax = OH, bmax = OW, m = UX, blomax = 0;
    for (int r = 0; r < st; r++) {
        int lo, hi;
        phase_range(r, st, p, H, &lo, &hi);
        if (hi > amax) amax = hi;
        phase_range(r, st, p, W, &lo, &hi);
        if (hi > bmax) bmax = hi;
        if (lo < m) m = lo;
        if (lo > blomax) blomax = lo;
    }
    const int Hg = amax + TY, Wg = (OW > bmax ? OW : bmax) + UX - m;
    int ncmax = NPAD;
    for (int r = 0; r < st; r++) {
        int lo, hi;
        phase_range(r, st, p, H, &lo, &hi);
        const int nc = (int)rup((size_t)(hi - lo) * Wg, NPAD);
        if (nc > ncmax) ncmax = nc;
    }
    pl->K = (int)rup((size_t)d->O, 4);
    pl->Cp = (int)rup((size_t)d->C, MPAD);
    pl->T = KH * KW;
    pl->TY = TY;
    pl->UX = UX;
    pl->m = m;
    pl->Hg = Hg;
    pl->Wg = Wg;
    pl->ncmax = ncmax;
    /* every read is below (ahi + TY)*Wg + blo + UX - m + NPAD <= Hg*Wg + blomax + UX - m + NPAD */
    pl->ldb = rup((size_t)Hg * Wg + (size_t)(blomax + UX - m) + 2 * NPAD, NPAD);
}

/* A[t][c][o] = Bw[o, c, t] and the column sums of Bw for S; the row pointers */
static void direct_weights(DirectPlan *pl, const int8_t *bw, const ConvDims *d) {
    const int C = d->C, O = d->O, T = pl->T, K = pl->K, Cp = pl->Cp;
    int8_t *A = pl->A = xalloc((size_t)T * C * K);
    int32_t *colsum = pl->colsum = xalloc(sizeof(int32_t) * (size_t)C * T);
    #pragma omp parallel for schedule(static) if ((size_t)C * T * O > 65536)
    for (int c = 0; c < C; c++)
        for (int t = 0; t < T; t++) {
            int8_t *row = A + ((size_t)t * C + c) * K;
            int32_t sum = 0;
            for (int o = 0; o < O; o++) {
                row[o] = bw[((size_t)o * C + c) * T + t];
                sum += row[o];
            }
            for (int o = O; o < K; o++) row[o] = 0;
            colsum[(size_t)c * T + t] = sum;
        }
    const int8_t **arow = xalloc(sizeof(int8_t *) * (size_t)Cp);
    for (int c = 0; c < Cp; c++) arow[c] = A + (size_t)(c < C ? c : 0) * K; /* padding rows: dropped */
    pl->arow = arow;
}

/* per phase (ry, rx): its taps kh = ry + st*t, kw = rx + st*u as reduction
 * segments: A_tap's rows and B shifted by (alo + TY - t)*Wg + blo + UX - m - u columns */
static void direct_phase_taps(DirectPlan *pl, const ConvDims *d) {
    const int H = d->H, W = d->W, C = d->C, KH = d->KH, KW = d->KW, st = d->stride, p = d->pad;
    const int T = pl->T, K = pl->K, TY = pl->TY, UX = pl->UX, m = pl->m, Wg = pl->Wg;
    const int NPH = st * st;
    ptrdiff_t *aoff = xalloc(sizeof(ptrdiff_t) * (size_t)T * NPH), *boff = xalloc(sizeof(ptrdiff_t) * (size_t)T * NPH);
    int *nseg = xalloc(sizeof(int) * NPH);
    for (int ry = 0; ry < st; ry++)
        for (int rx = 0; rx < st; rx++) {
            const int ph = ry * st + rx;
            int alo, ahi, blo, bhi;
            phase_range(ry, st, p, H, &alo, &ahi);
            phase_range(rx, st, p, W, &blo, &bhi);
            int k = 0;
            for (int kh = ry; kh < KH; kh += st)
                for (int kw = rx; kw < KW; kw += st, k++) {
                    const int t = (kh - ry) / st, u = (kw - rx) / st;
                    aoff[(size_t)ph * T + k] = (ptrdiff_t)(kh * KW + kw) * C * K;
                    boff[(size_t)ph * T + k] = 4 * ((ptrdiff_t)(alo + TY - t) * Wg + (blo + UX - m - u));
                }
            nseg[ph] = k;
        }
    pl->aoff = aoff;
    pl->boff = boff;
    pl->nseg = nseg;
}

/* sample n's codes into the grid, G packed [K/4][ldb][4]: G[o][oh + TY][ow + UX - m]
 * (the rest of B, the border, stays 0 from the thread's memset) */
static inline void direct_pack_sample(uint8_t *B, const uint8_t *codes, int n, const DirectPlan *pl,
                                      const ConvDims *d) {
    const int O = d->O, OH = d->OH, OW = d->OW, K = pl->K, TY = pl->TY, UX = pl->UX, m = pl->m, Wg = pl->Wg;
    const size_t ldb = pl->ldb;
    for (int g4 = 0; g4 < K / 4; g4++) {
        uint32_t *restrict dst = (uint32_t *)(void *)(B + (size_t)g4 * 4 * ldb);
        const uint8_t *src[4];
        static const uint8_t zeros[1] = {0};
        int step[4];
        for (int t = 0; t < 4; t++) {
            const int o = 4 * g4 + t;
            src[t] = o < O ? codes + ((size_t)n * O + o) * OH * OW : zeros;
            step[t] = o < O;
        }
        for (int oh = 0; oh < OH; oh++) {
            uint32_t *restrict drow = dst + (size_t)(oh + TY) * Wg + UX - m;
            const int q0 = oh * OW;
            if (step[3]) {
                const uint8_t *restrict s0 = src[0] + q0, *restrict s1 = src[1] + q0, *restrict s2 = src[2] + q0,
                                        *restrict s3 = src[3] + q0;
                for (int ow = 0; ow < OW; ow++)
                    drow[ow] = (uint32_t)s0[ow] | (uint32_t)s1[ow] << 8 | (uint32_t)s2[ow] << 16 |
                               (uint32_t)s3[ow] << 24;
            } else {
                for (int ow = 0; ow < OW; ow++) {
                    const int q = q0 + ow;
                    drow[ow] = (uint32_t)src[0][q * step[0]] | (uint32_t)src[1][q * step[1]] << 8 |
                               (uint32_t)src[2][q * step[2]] << 16 | (uint32_t)src[3][q * step[3]] << 24;
                }
            }
        }
    }
}

/* one sample's outputs out [C,H,W] from its grid B: per phase one GEMM over
 * columns j = (a - alo)*Wg + b - blo into Cb, then the epilogue of the rows
 * the phase owns (every st-th output from w0) */
static inline void direct_sample_phases(const Kern *kn, real *out, int32_t *Cb, const uint8_t *B,
                                        const DirectPlan *pl, real zp, real s, const ConvDims *d) {
    const int C = d->C, H = d->H, W = d->W, st = d->stride, p = d->pad;
    const int T = pl->T, K = pl->K, Cp = pl->Cp, Wg = pl->Wg;
    for (int ry = 0; ry < st; ry++)
        for (int rx = 0; rx < st; rx++) {
            const int ph = ry * st + rx;
            int alo, ahi, blo, bhi;
            phase_range(ry, st, p, H, &alo, &ahi);
            phase_range(rx, st, p, W, &blo, &bhi);
            if (ahi <= alo || bhi <= blo) continue;
            const int nc = (int)rup((size_t)(ahi - alo) * Wg, NPAD); /* j = (a - alo)*Wg + b - blo */
            kn->gemm(Cb, (size_t)nc, pl->arow, pl->nseg[ph], pl->aoff + (size_t)ph * T, pl->boff + (size_t)ph * T, K,
                     B, pl->ldb, Cp, nc, 0);
            const int w0 = blo * st + rx - p;
            for (int c = 0; c < C; c++)
                for (int a = alo; a < ahi; a++) {
                    const size_t o0 = ((size_t)c * H + (size_t)(a * st + ry - p)) * W + w0;
                    kn->epi(out + o0, (size_t)st, Cb + (size_t)c * nc + (size_t)(a - alo) * Wg, pl->S + o0,
                            (size_t)(bhi - blo), s, zp);
                }
        }
}

/* the plan is built once per call (serial except the weight transpose); the
 * parallel unit is one sample, each thread with its own grid B (zeroed once:
 * the border never changes) and GEMM block Cb */
static void dgrad_direct(const Kern *kn, real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s,
                         const ConvDims *d) {
    const int N = d->N;
    const size_t CHW = (size_t)d->C * d->H * d->W;
    DirectPlan pl;
    direct_grid(&pl, d);
    direct_weights(&pl, bw, d);
    direct_phase_taps(&pl, d);
    pl.S = xalloc(sizeof(int32_t) * CHW);
    tap_sums(pl.S, pl.colsum, d);
    #pragma omp parallel
    {
        uint8_t *B = xalloc((size_t)pl.K * pl.ldb);                       /* G packed [K/4][ldb][4] */
        int32_t *Cb = xalloc(sizeof(int32_t) * (size_t)pl.Cp * pl.ncmax); /* [Cp, ncols] */
        memset(B, 0, (size_t)pl.K * pl.ldb);                              /* the border stays 0 */
        #pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            direct_pack_sample(B, codes, n, &pl, d);
            direct_sample_phases(kn, dx + (size_t)n * CHW, Cb, B, &pl, zp, s, d);
        }
        free(B);
        free(Cb);
    }
    free(pl.A);
    free(pl.colsum);
    free(pl.arow);
    free(pl.aoff);
    free(pl.boff);
    free(pl.nseg);
    free(pl.S);
}

static void check_fits(const ConvDims *d);

/* A = Bw^T [CKp, K] (zero padded), its row pointers, and the column sums of
 * Bw (for S): 16 rows of A per unit, so the reads of bw come in 16-byte runs */
static void gemm_weights(int8_t *A, const int8_t **arow, int32_t *colsum, const int8_t *bw, int CK, int CKp, int O,
                         int K) {
    #pragma omp parallel for schedule(static) if ((size_t)CK * O > 65536)
    for (int c0 = 0; c0 < CKp; c0 += 16) {
        const int c1 = c0 + 16 < CKp ? c0 + 16 : CKp;
        memset(A + (size_t)c0 * K, 0, (size_t)(c1 - c0) * K);
        for (int o = 0; o < O; o++) {
            const int8_t *src = bw + (size_t)o * CK;
            for (int ck = c0; ck < c1 && ck < CK; ck++) A[(size_t)ck * K + o] = src[ck];
        }
        for (int ck = c0; ck < c1; ck++) {
            arow[ck] = A + (size_t)ck * K;
            if (ck >= CK) continue;
            int32_t t = 0;
            for (int o = 0; o < O; o++) t += A[(size_t)ck * K + o];
            colsum[ck] = t;
        }
    }
}

/* work unit: a group of *NB samples side by side in the GEMM columns (small
 * outputs fill a 64-column tile and share one pass over A); rows in chunks
 * of *RC, whole channels (a multiple of MPAD and of KH*KW) whose int32 block
 * stays near 256 KB, each scattered by col2im before the next. Both depend
 * on the dims only (so which thread computes what does too). */
static void dgrad_units(const ConvDims *d, int CKp, int OHWp, int *NB, int *RC) {
    const int N = d->N, KK = d->KH * d->KW;
    const int nb = OHWp >= 64 ? 1 : 64 / OHWp < N ? 64 / OHWp : N;
    const int ncols = nb * OHWp;
    int l = MPAD; /* lcm(MPAD, KK) */
    while (l % KK) l += MPAD;
    int rc = l * (int)((65536 / ((size_t)l * ncols)) > 0 ? 65536 / ((size_t)l * ncols) : 1);
    if (rc > CKp) rc = CKp;
    *NB = nb;
    *RC = rc;
}

/* the codes of samples n0 .. n0+nb-1 into B [K/4][NB*OHWp][4]: group g4 of 4
 * channels, 32-bit word j = codes of o = 4g4..4g4+3 at column j (little
 * endian); zero columns past OHW and for the NB - nb missing samples */
static inline void pack_group_codes(uint8_t *B, const uint8_t *codes, int n0, int nb, int NB, int O, int K, int OHW,
                                    int OHWp) {
    const int ncols = NB * OHWp;
    for (int g4 = 0; g4 < K / 4; g4++)
        for (int b = 0; b < NB; b++) {
            uint32_t *restrict dst = (uint32_t *)(void *)(B + (size_t)g4 * 4 * ncols) + (size_t)b * OHWp;
            if (b >= nb) {
                memset(dst, 0, sizeof(uint32_t) * OHWp);
                continue;
            }
            const int n = n0 + b;
            const uint8_t *src[4];
            static const uint8_t zeros[1] = {0};
            int step[4];
            for (int t = 0; t < 4; t++) {
                const int o = 4 * g4 + t;
                src[t] = o < O ? codes + ((size_t)n * O + o) * OHW : zeros;
                step[t] = o < O;
            }
            if (step[3]) {
                const uint8_t *restrict s0 = src[0], *restrict s1 = src[1], *restrict s2 = src[2],
                                        *restrict s3 = src[3];
                for (int q = 0; q < OHW; q++)
                    dst[q] = (uint32_t)s0[q] | (uint32_t)s1[q] << 8 | (uint32_t)s2[q] << 16 | (uint32_t)s3[q] << 24;
            } else {
                for (int q = 0; q < OHW; q++)
                    dst[q] = (uint32_t)src[0][q * step[0]] | (uint32_t)src[1][q * step[1]] << 8 |
                             (uint32_t)src[2][q * step[2]] << 16 | (uint32_t)src[3][q * step[3]] << 24;
            }
            for (int q = OHW; q < OHWp; q++) dst[q] = 0;
        }
}

/* one group's integer sums I [nb][C,H,W] from its packed codes B: the GEMM
 * in chunks of RC rows into Cb, each scattered by col2im (channels c0..c1
 * of every sample) before the next */
static inline void dgrad_group_sums(const Kern *kn, int32_t *I, int32_t *Cb, const uint8_t *B,
                                    const int8_t *const *arow, int nb, int ncols, int OHWp, int K, int CK, int CKp,
                                    int RC, const ConvDims *d) {
    const size_t CHW = (size_t)d->C * d->H * d->W;
    const int KK = d->KH * d->KW;
    const ptrdiff_t zero_off = 0;
    memset(I, 0, sizeof(int32_t) * CHW * nb);
    for (int r0 = 0; r0 < CKp; r0 += RC) {
        const int rows = CKp - r0 < RC ? CKp - r0 : RC;
        kn->gemm(Cb, (size_t)ncols, arow + r0, 1, &zero_off, &zero_off, K, B, (size_t)ncols, rows, ncols, 0);
        const int c0 = r0 / KK, c1 = (r0 + rows < CK ? r0 + rows : CK) / KK;
        for (int b = 0; b < nb; b++)
            kn->col2im(I + (size_t)b * CHW, Cb + (size_t)b * OHWp, (size_t)ncols, d, c0, c1);
    }
}

/* dgrad: the direct path when it fits (dgrad_direct_ok), else the GEMM
 * Bw^T x codes per group of samples, col2im, and the epilogue s*I + zp*S
 * (S = col2im of the column sums of Bw) */
static void dgrad_drv(const Kern *kn, real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s,
                      const ConvDims *d) {
    check_fits(d);
    const int N = d->N, O = d->O, OHW = d->OH * d->OW;
    const size_t CHW = (size_t)d->C * d->H * d->W;
    const int CK = d->C * d->KH * d->KW;
    if (N <= 0 || CHW == 0) return;
    if (OHW <= 0 || O <= 0 || CK <= 0) { /* no term: the sums are 0 */
        fill_zero_out(dx, (size_t)N * CHW);
        return;
    }
    if (dgrad_direct_ok(d) && !getenv_int_cached_no_direct()) {
        dgrad_direct(kn, dx, codes, bw, zp, s, d);
        return;
    }
    const int K = (int)rup((size_t)O, 4), CKp = (int)rup((size_t)CK, MPAD), OHWp = (int)rup((size_t)OHW, NPAD);
    int8_t *A = xalloc((size_t)CKp * K);
    const int8_t **arow = xalloc(sizeof(int8_t *) * (size_t)CKp);
    int32_t *colsum = xalloc(sizeof(int32_t) * (size_t)CK);
    gemm_weights(A, arow, colsum, bw, CK, CKp, O, K);
    int32_t *S = xalloc(sizeof(int32_t) * CHW);
    tap_sums(S, colsum, d);
    int NB, RC;
    dgrad_units(d, CKp, OHWp, &NB, &RC);
    const int groups = (N + NB - 1) / NB, ncols = NB * OHWp;
    #pragma omp parallel
    {
        uint8_t *B = xalloc((size_t)K * ncols);                     /* codes packed [K/4][ncols][4] */
        int32_t *Cb = xalloc(sizeof(int32_t) * (size_t)RC * ncols); /* [RC, ncols] */
        int32_t *I = xalloc(sizeof(int32_t) * CHW * NB);
        #pragma omp for schedule(static)
        for (int gi = 0; gi < groups; gi++) {
            const int n0 = gi * NB, nb = N - n0 < NB ? N - n0 : NB;
            pack_group_codes(B, codes, n0, nb, NB, O, K, OHW, OHWp);
            dgrad_group_sums(kn, I, Cb, B, arow, nb, ncols, OHWp, K, CK, CKp, RC, d);
            for (int b = 0; b < nb; b++) {
                real *out = dx + (size_t)(n0 + b) * CHW;
                const int32_t *Ib = I + (size_t)b * CHW;
                kn->epi(out, 1, Ib, S, CHW, s, zp);
            }
        }
        free(B);
        free(Cb);
        free(I);
    }
    free(A);
    free(arow);
    free(colsum);
    free(S);
}

/* wgrad without im2col. Ba is rewritten once per call, zero-padded and split
 * in stride x stride phases: P[n][c][ry*st + rx][y][x] = Ba[n, c, y*st + ry - pad, x*st + rx - pad]
 * (0 outside), planes of Hq x Wq = ceil((H + 2 pad)/st) x ceil((W + 2 pad)/st). Then the
 * im2col row of tap (c, kh, kw) for sample n is CONTIGUOUS in P: it starts at
 *   P[n][c][(kh%st)*st + kw%st] + (kh/st)*Wq + kw/st
 * and runs over k = oh*Wq + x, x < Wq; the columns x >= OW read the next
 * pixels, which meet zero codes (the codes are packed with Wq per output row).
 * So the GEMM reads Ba straight from P (one segment per sample), and
 * S[c,kh,kw] = sum over n and the window of the phase planes summed over n.
 * Compact mode (small images, where the Wq - OW dead columns cost 25 % or
 * more of the MACs: 50 % at 4x4, 25 % at 8x8): each work unit copies its
 * rows' OW live bytes per output row out of P into a small buffer (a row of
 * ns*Knp bytes per tap for a chunk of ns samples, Knp = OH*OW padded to 4),
 * and the codes are packed with OW per output row: the same integer sums
 * from fewer MACs, in one segment per chunk. */
/* wgrad's layout (from the dims only): the phase planes P and the packed codes B */
typedef struct {
    int Hq, Wq, S2;  /* phase plane rows, columns; st*st phases */
    size_t PQ;       /* Hq*Wq */
    size_t nstride;  /* P's bytes per sample: C*S2*PQ */
    int pitch;       /* codes per output row in B: Wq, or OW in compact mode */
    int compact;     /* 1: the A rows are copied out of P without the dead columns */
    int Knp;         /* reduction per sample: OH*pitch padded to 4 */
    size_t Op;       /* O padded to NPAD (the GEMM columns) */
    int CKp;         /* C*KH*KW padded to MPAD (the GEMM rows) */
    size_t bsz;      /* B's bytes per sample: Knp*Op */
} WgradGeom;

/* CBNN_BWD8_WGRAD_COMPACT=0/1 in the environment or bconv_bwd_int8_set_wgrad_compact:
 * -1 by the dims (the default), 0 never, 1 always */
static int wgrad_compact_override = -2; /* -2: read the environment once */
static int wgrad_compact_mode(void) {
    int v = wgrad_compact_override;
    if (v == -2) {
        const char *e = getenv("CBNN_BWD8_WGRAD_COMPACT");
        v = e && e[0] == '0' ? 0 : e && e[0] == '1' ? 1 : -1;
        wgrad_compact_override = v;
    }
    return v;
}
void bconv_bwd_int8_set_wgrad_compact(int mode) { wgrad_compact_override = mode < 0 ? -1 : mode > 0; }

static void wgrad_geom(WgradGeom *g, const ConvDims *d) {
    const int st = d->stride, p = d->pad;
    g->Hq = (d->H + 2 * p + st - 1) / st;
    g->Wq = (d->W + 2 * p + st - 1) / st;
    g->S2 = st * st;
    g->PQ = (size_t)g->Hq * g->Wq;
    g->nstride = (size_t)d->C * g->S2 * g->PQ;
    const int mode = wgrad_compact_mode();
    /* the copy costs OH runs per row and sample; it pays where the dead columns are >= 1/4
     * of the live ones (measured: a loss at 16x16, where they are 1/8) */
    g->compact = mode >= 0 ? mode : 4 * (g->Wq - d->OW) >= d->OW;
    g->pitch = g->compact ? d->OW : g->Wq;
    g->Knp = (int)rup((size_t)d->OH * g->pitch, 4);
    g->Op = rup((size_t)d->O, NPAD);
    g->CKp = (int)rup((size_t)d->C * d->KH * d->KW, MPAD);
    g->bsz = (size_t)g->Knp * g->Op;
}

/* P[n][c][ry*st + rx][y][x] = Ba[n, c, y*st + ry - pad, x*st + rx - pad] (0 outside) */
static void wgrad_phase_planes(int8_t *P, const int8_t *ba, const ConvDims *d, const WgradGeom *g) {
    const int N = d->N, C = d->C, H = d->H, W = d->W, st = d->stride, p = d->pad;
    const int Hq = g->Hq, Wq = g->Wq, S2 = g->S2;
    const size_t PQ = g->PQ;
    #pragma omp parallel for schedule(static)
    for (long nc = 0; nc < (long)N * C; nc++) {
        const int8_t *src = ba + (size_t)nc * H * W;
        int8_t *dst = P + (size_t)nc * S2 * PQ;
        for (int ry = 0; ry < st; ry++)
            for (int rx = 0; rx < st; rx++, dst += PQ)
                for (int y = 0; y < Hq; y++) {
                    int8_t *drow = dst + (size_t)y * Wq;
                    const int iy = y * st + ry - p;
                    if (iy < 0 || iy >= H) {
                        memset(drow, 0, (size_t)Wq);
                        continue;
                    }
                    const int8_t *srow = src + (size_t)iy * W;
                    if (st == 1) { /* [0, p) zeros, W values, zeros to Wq */
                        memset(drow, 0, (size_t)p);
                        memcpy(drow + p, srow, (size_t)W);
                        memset(drow + p + W, 0, (size_t)(Wq - p - W));
                        continue;
                    }
                    for (int x = 0; x < Wq; x++) {
                        const int ix = x * st + rx - p;
                        drow[x] = ix >= 0 && ix < W ? srow[ix] : 0;
                    }
                }
    }
}

/* codes packed per sample: B[n][Knp/4][Op][4], k = oh*pitch + ow (0 for ow >= OW, o >= O, k >= Kn) */
static void wgrad_pack_codes(uint8_t *B, const uint8_t *codes, const ConvDims *d, const WgradGeom *g) {
    const int N = d->N, O = d->O, OH = d->OH, OW = d->OW, Wq = g->pitch, Knp = g->Knp;
    const size_t Op = g->Op, bsz = g->bsz;
    #pragma omp parallel
    {
        uint8_t *line = xalloc((size_t)Knp); /* one channel's codes laid out with Wq per row */
        #pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            uint8_t *bn = B + (size_t)n * bsz;
            if (Op > (size_t)O) /* padding channels */
                for (int g4 = 0; g4 < Knp / 4; g4++) memset(bn + (size_t)g4 * 4 * Op + 4 * (size_t)O, 0, 4 * (Op - O));
            memset(line, 0, (size_t)Knp);
            for (int o = 0; o < O; o++) {
                const uint8_t *src = codes + ((size_t)n * O + o) * OH * OW;
                for (int oh = 0; oh < OH; oh++) memcpy(line + (size_t)oh * Wq, src + (size_t)oh * OW, (size_t)OW);
                uint32_t *restrict dst = (uint32_t *)(void *)(bn + 4 * (size_t)o);
                for (int g4 = 0; g4 < Knp / 4; g4++) {
                    uint32_t w;
                    memcpy(&w, line + 4 * (size_t)g4, 4);
                    dst[(size_t)g4 * Op] = w;
                }
            }
        }
        free(line);
    }
}

/* Ssum[c,kh,kw] = sum over n and the window: Q = the phase planes summed over
 * samples (one channel per unit), then window sums of Q */
static void wgrad_tap_sums(int32_t *Ssum, const int8_t *P, const ConvDims *d, const WgradGeom *g) {
    const int N = d->N, C = d->C, KH = d->KH, KW = d->KW, OH = d->OH, OW = d->OW, st = d->stride;
    const int Wq = g->Wq, S2 = g->S2;
    const size_t PQ = g->PQ, nstride = g->nstride;
    #pragma omp parallel
    {
        int32_t *Q = xalloc(sizeof(int32_t) * S2 * PQ);
        #pragma omp for schedule(static)
        for (int c = 0; c < C; c++) {
            memset(Q, 0, sizeof(int32_t) * S2 * PQ);
            for (int n = 0; n < N; n++) {
                const int8_t *src = P + (size_t)n * nstride + (size_t)c * S2 * PQ;
                for (size_t i = 0; i < (size_t)S2 * PQ; i++) Q[i] += src[i];
            }
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    const int32_t *q = Q + (size_t)((kh % st) * st + kw % st) * PQ + (size_t)(kh / st) * Wq + kw / st;
                    int32_t t = 0;
                    for (int oh = 0; oh < OH; oh++)
                        for (int ow = 0; ow < OW; ow++) t += q[(size_t)oh * Wq + ow];
                    Ssum[(c * KH + kh) * KW + kw] = t;
                }
        }
        free(Q);
    }
}

/* the A rows of unit rows r0 .. r0+rows-1: tap (c, kh, kw)'s im2col row in P */
static inline void wgrad_unit_rows(const int8_t **arow, const int8_t *P, int r0, int rows, const ConvDims *d,
                                   const WgradGeom *g) {
    const int KH = d->KH, KW = d->KW, st = d->stride, CK = d->C * KH * KW, Wq = g->Wq, S2 = g->S2;
    const size_t PQ = g->PQ;
    for (int r = 0; r < rows; r++) {
        const int ck = r0 + r < CK ? r0 + r : 0; /* padding rows read row 0; their sums are dropped */
        const int kw = ck % KW, kh = (ck / KW) % KH, c = ck / (KW * KH);
        arow[r] = P + ((size_t)c * S2 + (size_t)(kh % st) * st + kw % st) * PQ + (size_t)(kh / st) * Wq + kw / st;
    }
}

/* compact mode: A[r][n*Knp + oh*OW + ow] = the tap row arow[r]'s live bytes of
 * sample n0 + n (P at row pitch Wq), n < ns; zeros to Knp */
static inline void wgrad_compact_rows(int8_t *A, size_t lda, const int8_t *const *arow, int rows, int n0, int ns,
                                      const ConvDims *d, const WgradGeom *g) {
    const int OH = d->OH, OW = d->OW, Wq = g->Wq, Knp = g->Knp;
    const size_t nstride = g->nstride;
    for (int r = 0; r < rows; r++)
        for (int n = 0; n < ns; n++) {
            const int8_t *src = arow[r] + (size_t)(n0 + n) * nstride;
            int8_t *dst = A + (size_t)r * lda + (size_t)n * Knp;
            if (OW == 4)
                for (int oh = 0; oh < OH; oh++) memcpy(dst + 4 * oh, src + (size_t)oh * Wq, 4);
            else if (OW == 8)
                for (int oh = 0; oh < OH; oh++) memcpy(dst + 8 * oh, src + (size_t)oh * Wq, 8);
            else
                for (int oh = 0; oh < OH; oh++) memcpy(dst + (size_t)oh * OW, src + (size_t)oh * Wq, (size_t)OW);
            for (int k = OH * OW; k < Knp; k++) dst[k] = 0;
        }
}

/* the GEMM P-rows x codes: unit = WG_ROWS rows of (c, kh, kw), one reduction
 * segment per sample, nsc samples per GEMM call so that a 64-column panel of
 * B stays near 256 KB (L2); then the unit's outputs dw[o][r0 .. r0+rows) */
static void wgrad_gemm(const Kern *kn, real *dw, int64_t *isum, const int8_t *P, const uint8_t *B,
                       const int32_t *Ssum, real zp, real s, const ConvDims *d, const WgradGeom *g) {
    const int N = d->N, O = d->O, CK = d->C * d->KH * d->KW, Knp = g->Knp, CKp = g->CKp;
    const size_t Op = g->Op;
    ptrdiff_t *aoff = xalloc(sizeof(ptrdiff_t) * (size_t)N), *boff = xalloc(sizeof(ptrdiff_t) * (size_t)N);
    for (int n = 0; n < N; n++) {
        aoff[n] = (ptrdiff_t)((size_t)n * g->nstride);
        boff[n] = (ptrdiff_t)((size_t)n * g->bsz);
    }
    int nsc = (int)((256 * 1024) / ((size_t)Knp * 64));
    if (nsc < 1) nsc = 1;
    const int units = (CKp + WG_ROWS - 1) / WG_ROWS;
    const size_t lda = (size_t)nsc * Knp; /* compact: one A row of a chunk */
    #pragma omp parallel
    {
        int32_t *Cb = xalloc(sizeof(int32_t) * WG_ROWS * Op);
        const int8_t *arow[WG_ROWS], *crow[WG_ROWS];
        int8_t *Ab = g->compact ? xalloc((size_t)WG_ROWS * lda) : NULL;
        if (Ab)
            for (int r = 0; r < WG_ROWS; r++) crow[r] = Ab + (size_t)r * lda;
        #pragma omp for schedule(static)
        for (int u = 0; u < units; u++) {
            const int r0 = u * WG_ROWS, rows = CKp - r0 < WG_ROWS ? CKp - r0 : WG_ROWS;
            wgrad_unit_rows(arow, P, r0, rows, d, g);
            for (int n0 = 0; n0 < N; n0 += nsc) {
                const int ns = N - n0 < nsc ? N - n0 : nsc;
                if (!Ab) {
                    kn->gemm(Cb, Op, arow, ns, aoff + n0, boff + n0, Knp, B, Op, rows, (int)Op, n0 > 0);
                    continue;
                }
                wgrad_compact_rows(Ab, lda, arow, rows, n0, ns, d, g);
                const ptrdiff_t a0 = 0, b0 = boff[n0];
                kn->gemm(Cb, Op, crow, 1, &a0, &b0, ns * Knp, B, Op, rows, (int)Op, n0 > 0);
            }
            /* dw[o][r0 .. r0+rows): runs of `rows` contiguous outputs per o (the
             * other order strides by C*KH*KW floats: a cache line and a TLB entry per store) */
            const int rv = CK - r0 < rows ? CK - r0 : rows;
            if (isum) { /* the sums themselves (wgrad_sums) */
                for (int o = 0; o < O; o++) {
                    int64_t *dst = isum + (size_t)o * CK + r0;
                    for (int r = 0; r < rv; r++) dst[r] = Cb[(size_t)r * Op + o];
                }
                continue;
            }
            for (int o = 0; o < O; o++) {
                real *dst = dw + (size_t)o * CK + r0;
                for (int r = 0; r < rv; r++) dst[r] = bconv_bwd_int8_out(s, zp, Cb[(size_t)r * Op + o], Ssum[r0 + r]);
            }
        }
        free(Cb);
        free(Ab);
    }
    free(aoff);
    free(boff);
}

/* wgrad: the layout above, built in three parallel passes, then the GEMM.
 * isum non-NULL: the integer sums I into isum [O*CK] and S into ssum [CK]
 * instead of the floats into dw (wgrad_sums) */
static void wgrad_drv_any(const Kern *kn, real *dw, int64_t *isum, int64_t *ssum, const uint8_t *codes,
                          const int8_t *ba, real zp, real s, const ConvDims *d) {
    check_fits(d);
    const int N = d->N, O = d->O, CK = d->C * d->KH * d->KW;
    if (O <= 0 || CK <= 0) return;
    if (N <= 0 || d->OH <= 0 || d->OW <= 0) {
        if (isum) {
            memset(isum, 0, sizeof(int64_t) * (size_t)O * CK);
            memset(ssum, 0, sizeof(int64_t) * (size_t)CK);
        } else {
            fill_zero_out(dw, (size_t)O * CK);
        }
        return;
    }
    WgradGeom g;
    wgrad_geom(&g, d);
    /* a row reads at most KW/st + 4 bytes past its plane: slack after the last one */
    const size_t slack = (size_t)d->KW + 64;
    int8_t *P = xalloc((size_t)N * g.nstride + slack);
    memset(P + (size_t)N * g.nstride, 0, slack);
    wgrad_phase_planes(P, ba, d, &g);
    uint8_t *B = xalloc((size_t)N * g.bsz);
    wgrad_pack_codes(B, codes, d, &g);
    int32_t *Ssum = xalloc(sizeof(int32_t) * (size_t)CK);
    wgrad_tap_sums(Ssum, P, d, &g);
    wgrad_gemm(kn, dw, isum, P, B, Ssum, zp, s, d, &g);
    if (isum)
        for (int i = 0; i < CK; i++) ssum[i] = Ssum[i];
    free(P);
    free(B);
    free(Ssum);
}
static void wgrad_drv(const Kern *kn, real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s,
                      const ConvDims *d) {
    wgrad_drv_any(kn, dw, NULL, NULL, codes, ba, zp, s, d);
}

/* ------------------------------------------------------------ table entries */
static void dgrad_c(real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_c, col2im_c, epi_c};
    dgrad_drv(&k, dx, codes, bw, zp, s, d);
}
static void wgrad_c(real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_c, col2im_c, epi_c};
    wgrad_drv(&k, dw, codes, ba, zp, s, d);
}
static void wgrad_sums_c(int64_t *isum, int64_t *ssum, const uint8_t *codes, const int8_t *ba, const ConvDims *d) {
    static const Kern k = {gemm_c, col2im_c, epi_c};
    wgrad_drv_any(&k, NULL, isum, ssum, codes, ba, 0, 0, d);
}
#ifdef BWD8_X86
static void dgrad_avx2(real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_avx2, col2im_avx2, epi_avx2};
    dgrad_drv(&k, dx, codes, bw, zp, s, d);
}
static void wgrad_avx2(real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_avx2, col2im_avx2, epi_avx2};
    wgrad_drv(&k, dw, codes, ba, zp, s, d);
}
static void wgrad_sums_avx2(int64_t *isum, int64_t *ssum, const uint8_t *codes, const int8_t *ba,
                            const ConvDims *d) {
    static const Kern k = {gemm_avx2, col2im_avx2, epi_avx2};
    wgrad_drv_any(&k, NULL, isum, ssum, codes, ba, 0, 0, d);
}
static void dgrad_avxvnni(real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_avxvnni, col2im_avx2, epi_avx2};
    dgrad_drv(&k, dx, codes, bw, zp, s, d);
}
static void wgrad_avxvnni(real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_avxvnni, col2im_avx2, epi_avx2};
    wgrad_drv(&k, dw, codes, ba, zp, s, d);
}
static void wgrad_sums_avxvnni(int64_t *isum, int64_t *ssum, const uint8_t *codes, const int8_t *ba,
                               const ConvDims *d) {
    static const Kern k = {gemm_avxvnni, col2im_avx2, epi_avx2};
    wgrad_drv_any(&k, NULL, isum, ssum, codes, ba, 0, 0, d);
}
static void dgrad_avx512(real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_avx512vnni, col2im_avx512x, epi_avx512};
    dgrad_drv(&k, dx, codes, bw, zp, s, d);
}
static void wgrad_avx512(real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s, const ConvDims *d) {
    static const Kern k = {gemm_avx512vnni, col2im_avx512x, epi_avx512};
    wgrad_drv(&k, dw, codes, ba, zp, s, d);
}
static void wgrad_sums_avx512(int64_t *isum, int64_t *ssum, const uint8_t *codes, const int8_t *ba,
                              const ConvDims *d) {
    static const Kern k = {gemm_avx512vnni, col2im_avx512x, epi_avx512};
    wgrad_drv_any(&k, NULL, isum, ssum, codes, ba, 0, 0, d);
}
#endif

/* ------------------------------------------------------------ references */
void bconv_bwd_int8_dgrad_ref(real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s, const ConvDims *d) {
    const int N = d->N, C = d->C, H = d->H, W = d->W, O = d->O, KH = d->KH, KW = d->KW;
    const int OH = d->OH, OW = d->OW, st = d->stride, p = d->pad;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int ih = 0; ih < H; ih++)
                for (int iw = 0; iw < W; iw++) {
                    long long I = 0, S = 0;
                    for (int o = 0; o < O; o++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                const int th = ih + p - kh, tw = iw + p - kw;
                                if (th < 0 || tw < 0 || th % st != 0 || tw % st != 0) continue;
                                const int oh = th / st, ow = tw / st;
                                if (oh >= OH || ow >= OW) continue;
                                const int wv = bw[(((size_t)o * C + c) * KH + kh) * KW + kw];
                                I += (long long)codes[(((size_t)n * O + o) * OH + oh) * OW + ow] * wv;
                                S += wv;
                            }
                    dx[(((size_t)n * C + c) * H + ih) * W + iw] = bconv_bwd_int8_out(s, zp, I, S);
                }
}

void bconv_bwd_int8_wgrad_ref(real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s, const ConvDims *d) {
    const int N = d->N, C = d->C, H = d->H, W = d->W, O = d->O, KH = d->KH, KW = d->KW;
    const int OH = d->OH, OW = d->OW, st = d->stride, p = d->pad;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    long long I = 0, S = 0;
                    for (int n = 0; n < N; n++)
                        for (int oh = 0; oh < OH; oh++)
                            for (int ow = 0; ow < OW; ow++) {
                                const int ih = oh * st - p + kh, iw = ow * st - p + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                const int av = ba[(((size_t)n * C + c) * H + ih) * W + iw];
                                I += (long long)codes[(((size_t)n * O + o) * OH + oh) * OW + ow] * av;
                                S += av;
                            }
                    dw[(((size_t)o * C + c) * KH + kh) * KW + kw] = bconv_bwd_int8_out(s, zp, I, S);
                }
}

/* ------------------------------------------------------------ quantizer, sign */
/* the codes of x = dout[i] * a for i < n: quantize_core's steps, one rounding each:
 *   x = dout * a,  y = (x - zp) / s [+ noise],  clamp to [0, qmax],  round half even
 * returns 1 when some y is NaN (its code is 0). The C version rounds by
 * adding and subtracting 2^(mantissa bits), as core/quant.c's round_he does
 * to |y| (y >= 0 here); the SIMD ones use the round-to-nearest-even
 * instruction: the same integer for every y in [0, 255]. The SIMD clamp
 * (max with 0, then min with qmax) differs from the C one only for y = -0
 * (gives +0) and NaN: both code 0. */
typedef int (*CodesFn)(uint8_t *codes, const real *dout, real a, const real *noise, size_t n, real zp, real s,
                       real qmax);

static int codes_c(uint8_t *codes, const real *dout, real a, const real *noise, size_t n, real zp, real s,
                   real qmax) {
    const real big = REAL_IS_DOUBLE ? (real)0x1p52 : (real)0x1p23;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const real x = dout[i] * a;
        real y = (x - zp) / s;
        if (noise) y = y + noise[i];
        y = y < 0 ? (real)0 : y > qmax ? qmax : y;
        const int nan = y != y;
        bad |= nan;
        y = nan ? (real)0 : y;
        const real r = (y + big) - big;
        codes[i] = (uint8_t)(int)r;
    }
    return bad;
}

#if defined(BWD8_X86) && !REAL_IS_DOUBLE
static T_AVX2 int codes_avx2(uint8_t *codes, const real *dout, real a, const real *noise, size_t n, real zp,
                             real s, real qmax) {
    const __m256 va = _mm256_set1_ps(a), vz = _mm256_set1_ps(zp), vs = _mm256_set1_ps(s), vq = _mm256_set1_ps(qmax);
    const __m256 z = _mm256_setzero_ps();
    __m256 nanacc = z;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(dout + i), va);
        __m256 y = _mm256_div_ps(_mm256_sub_ps(x, vz), vs);
        if (noise) y = _mm256_add_ps(y, _mm256_loadu_ps(noise + i));
        nanacc = _mm256_or_ps(nanacc, _mm256_cmp_ps(y, y, _CMP_UNORD_Q));
        y = _mm256_min_ps(_mm256_max_ps(y, z), vq);
        y = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i q = _mm256_cvtps_epi32(y);
        q = _mm256_packus_epi32(q, q); /* per 128-bit lane: 4 words, twice */
        q = _mm256_packus_epi16(q, q); /* per lane: 4 bytes, 4 times */
        const uint32_t w0 = (uint32_t)_mm256_extract_epi32(q, 0), w1 = (uint32_t)_mm256_extract_epi32(q, 4);
        memcpy(codes + i, &w0, 4);
        memcpy(codes + i + 4, &w1, 4);
    }
    const int bad = _mm256_movemask_ps(nanacc) != 0;
    return bad | codes_c(codes + i, dout + i, a, noise ? noise + i : NULL, n - i, zp, s, qmax);
}

static T_AVX512 int codes_avx512(uint8_t *codes, const real *dout, real a, const real *noise, size_t n, real zp,
                                 real s, real qmax) {
    const __m512 va = _mm512_set1_ps(a), vz = _mm512_set1_ps(zp), vs = _mm512_set1_ps(s), vq = _mm512_set1_ps(qmax);
    const __m512 z = _mm512_setzero_ps();
    __mmask16 nanm = 0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(dout + i), va);
        __m512 y = _mm512_div_ps(_mm512_sub_ps(x, vz), vs);
        if (noise) y = _mm512_add_ps(y, _mm512_loadu_ps(noise + i));
        nanm |= _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q);
        y = _mm512_min_ps(_mm512_max_ps(y, z), vq);
        y = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(codes + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(y)));
    }
    return (nanm != 0) | codes_c(codes + i, dout + i, a, noise ? noise + i : NULL, n - i, zp, s, qmax);
}
#endif

/* min and max of x = dout[i] * a over [lo, hi) into *mn, *mx (updated);
 * returns 1 when some x is NaN. The versions may differ in the sign of a
 * zero extreme only (see quant_codes_drv: it does not matter). */
typedef int (*MinmaxFn)(const real *dout, real a, size_t lo, size_t hi, real *mn, real *mx);

static int minmax_c(const real *dout, real a, size_t lo, size_t hi, real *mn, real *mx) {
    real l = *mn, h = *mx;
    int nan = 0;
    for (size_t i = lo; i < hi; i++) {
        const real x = dout[i] * a;
        nan |= x != x;
        if (x < l) l = x;
        if (x > h) h = x;
    }
    *mn = l;
    *mx = h;
    return nan;
}

#if defined(BWD8_X86) && !REAL_IS_DOUBLE
static T_AVX2 int minmax_avx2(const real *dout, real a, size_t lo, size_t hi, real *mn, real *mx) {
    const __m256 va = _mm256_set1_ps(a);
    __m256 l = _mm256_set1_ps(*mn), h = _mm256_set1_ps(*mx), nan = _mm256_setzero_ps();
    size_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(dout + i), va);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        l = _mm256_min_ps(l, x);
        h = _mm256_max_ps(h, x);
    }
    float lv[8], hv[8];
    _mm256_storeu_ps(lv, l);
    _mm256_storeu_ps(hv, h);
    real L = lv[0], Hh = hv[0];
    for (int k = 1; k < 8; k++) {
        if (lv[k] < L) L = lv[k];
        if (hv[k] > Hh) Hh = hv[k];
    }
    *mn = L;
    *mx = Hh;
    return (_mm256_movemask_ps(nan) != 0) | minmax_c(dout, a, i, hi, mn, mx);
}

static T_AVX512 int minmax_avx512(const real *dout, real a, size_t lo, size_t hi, real *mn, real *mx) {
    const __m512 va = _mm512_set1_ps(a);
    __m512 l = _mm512_set1_ps(*mn), h = _mm512_set1_ps(*mx);
    __mmask16 nan = 0;
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(dout + i), va);
        nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        l = _mm512_min_ps(l, x);
        h = _mm512_max_ps(h, x);
    }
    *mn = _mm512_reduce_min_ps(l);
    *mx = _mm512_reduce_max_ps(h);
    return (nan != 0) | minmax_c(dout, a, i, hi, mn, mx);
}
#endif

/* g = dout * alpha[o] (what binary_conv_backward computes; for the fp32 fallback) */
static void mul_alpha(real *g, const real *dout, const real *alpha, int N, int O, size_t OHW) {
    #pragma omp parallel for schedule(static) if ((size_t)N * O * OHW > 32768)
    for (long no = 0; no < (long)N * O; no++) {
        const real a = alpha[no % O];
        const real *src = dout + (size_t)no * OHW;
        real *dst = g + (size_t)no * OHW;
        for (size_t i = 0; i < OHW; i++) dst[i] = src[i] * a;
    }
}

/* Two passes over dout, no dY tensor: (1) min and max of x = dout * alpha[o]
 * in blocks of whole rows, (2) the codes. The min and max are the values
 * quant_minmax_params(dout * alpha) gives (min/max of the same floats), up to
 * the sign of a zero extreme, which changes nothing: x - (+0) and x - (-0)
 * give the same code, fl(code*s) + (+-0) the same dequantized value (+0 for
 * code 0), R = max - min the same scale, and in the integer outputs s*I +
 * zp*S the zero term adds nothing (s*I is never -0). A NaN makes this
 * function refuse (the fallback runs grad_quant itself). */
#define CODES_BLOCK 16384 /* elements per parallel unit (rounded to whole rows) */
/* rows per block and the number of blocks of N*O rows of OHW elements */
static void codes_blocks(long *ru, long *nb, int N, int O, size_t OHW) {
    const long rows = (long)N * O;
    *ru = OHW >= CODES_BLOCK ? 1 : (long)(CODES_BLOCK / (OHW ? OHW : 1));
    *nb = rows > 0 && OHW > 0 ? (rows + *ru - 1) / *ru : 0;
}

/* pass (1): per block, then combined in block order; N*O*OHW > 0. Returns 1 on a NaN. */
static int err_minmax_drv(MinmaxFn mmfn, real *mn_out, real *mx_out, const real *dout, const real *alpha, int N,
                          int O, size_t OHW) {
    const size_t n = (size_t)N * O * OHW;
    const long rows = (long)N * O;
    long ru, nb;
    codes_blocks(&ru, &nb, N, O, OHW);
    int bad = 0;
    real *mn = xalloc(sizeof(real) * (size_t)nb), *mx = xalloc(sizeof(real) * (size_t)nb);
    #pragma omp parallel for schedule(static) reduction(| : bad) if (n > 32768)
    for (long b = 0; b < nb; b++) {
        const long r0 = b * ru, r1 = r0 + ru < rows ? r0 + ru : rows;
        real lo = dout[(size_t)r0 * OHW] * alpha[r0 % O], hi = lo;
        int nan = 0;
        for (long r = r0; r < r1; r++)
            nan |= mmfn(dout, alpha[r % O], (size_t)r * OHW, (size_t)(r + 1) * OHW, &lo, &hi);
        mn[b] = lo;
        mx[b] = hi;
        bad |= nan;
    }
    real zp = mn[0], b1 = mx[0];
    for (long b = 1; b < nb; b++) {
        if (mn[b] < zp) zp = mn[b];
        if (mx[b] > b1) b1 = mx[b];
    }
    free(mn);
    free(mx);
    *mn_out = zp;
    *mx_out = b1;
    return bad;
}

/* pass (2): the codes with zp, s; returns 1 when some y is NaN. The noise
 * is drawn per block (quant_noise_get) into the thread's buffer, where it is
 * used: no whole-tensor noise (the blocks are 16384 elements, on the
 * stream's 4096-element chunk grid whenever OHW divides 16384 and the
 * rank's first element is on it, as in every power-of-two shape). */
static int err_codes_drv(CodesFn fn, uint8_t *codes, const real *dout, const real *alpha, const QuantNoise *noise,
                         int N, int O, size_t OHW, real zp, real s, real qmax) {
    const size_t n = (size_t)N * O * OHW;
    const long rows = (long)N * O;
    long ru, nb;
    codes_blocks(&ru, &nb, N, O, OHW);
    int bad = 0;
    #pragma omp parallel reduction(| : bad) if (n > 32768)
    {
        real *buf = noise ? xalloc(sizeof(real) * (size_t)ru * OHW) : NULL;
        #pragma omp for schedule(static)
        for (long b = 0; b < nb; b++) {
            const long r0 = b * ru, r1 = r0 + ru < rows ? r0 + ru : rows;
            if (buf) quant_noise_get(buf, noise, (size_t)r0 * OHW, (size_t)(r1 - r0) * OHW);
            for (long r = r0; r < r1; r++)
                bad |= fn(codes + (size_t)r * OHW, dout + (size_t)r * OHW, alpha[r % O],
                          buf ? buf + (size_t)(r - r0) * OHW : NULL, OHW, zp, s, qmax);
        }
        free(buf);
    }
    return bad;
}

/* Two passes over dout, no dY tensor: (1) min and max of x = dout * alpha[o]
 * in blocks of whole rows, (2) the codes. The min and max are the values
 * quant_minmax_params(dout * alpha) gives (min/max of the same floats), up to
 * the sign of a zero extreme, which changes nothing: x - (+0) and x - (-0)
 * give the same code, fl(code*s) + (+-0) the same dequantized value (+0 for
 * code 0), R = max - min the same scale, and in the integer outputs s*I +
 * zp*S the zero term adds nothing (s*I is never -0). A NaN makes this
 * function refuse (the fallback runs grad_quant itself). */
static int quant_codes_drv(MinmaxFn mmfn, CodesFn fn, uint8_t *codes, real *zp_out, real *s_out, real *g,
                           const real *dout, const real *alpha, int N, int O, size_t OHW, double bits,
                           const QuantNoise *noise) {
    real zp = 0, R = 0;
    int bad = 0;
    if ((size_t)N * O * OHW > 0) {
        real b1;
        bad = err_minmax_drv(mmfn, &zp, &b1, dout, alpha, N, O, OHW);
        R = b1 - zp;
    }
    *zp_out = zp;
    const real s = bits == 0 ? (real)0 : quant_scale(R, bits), qmax = quant_qmax(bits);
    *s_out = s;
    if (bad || bits == 0 || !(bits > 0) || !(qmax <= (real)255) || !isfinite(zp) || !isfinite(R) || !isfinite(s)) {
        mul_alpha(g, dout, alpha, N, O, OHW);
        return -1;
    }
    if (err_codes_drv(fn, codes, dout, alpha, noise, N, O, OHW, zp, s, qmax)) {
        mul_alpha(g, dout, alpha, N, O, OHW);
        return -1;
    }
    return 0;
}

int bconv_bwd_quant_codes(uint8_t *codes, real *zp, real *s, real *g, const real *dout, const real *alpha, int N,
                          int O, size_t OHW, double bits, const QuantNoise *noise) {
    return bconv_bwd_int8_fns()->quant_codes(codes, zp, s, g, dout, alpha, N, O, OHW, bits, noise);
}

static int quant_codes_c(uint8_t *codes, real *zp, real *s, real *g, const real *dout, const real *alpha, int N, int O,
                         size_t OHW, double bits, const QuantNoise *noise) {
    return quant_codes_drv(minmax_c, codes_c, codes, zp, s, g, dout, alpha, N, O, OHW, bits, noise);
}
static int err_minmax_c(real *mn, real *mx, const real *dout, const real *alpha, int N, int O, size_t OHW) {
    return err_minmax_drv(minmax_c, mn, mx, dout, alpha, N, O, OHW);
}
static int err_codes_c(uint8_t *codes, const real *dout, const real *alpha, const QuantNoise *noise, int N, int O,
                       size_t OHW, real zp, real s, real qmax) {
    return err_codes_drv(codes_c, codes, dout, alpha, noise, N, O, OHW, zp, s, qmax);
}
#if defined(BWD8_X86) && !REAL_IS_DOUBLE
static int quant_codes_avx2(uint8_t *codes, real *zp, real *s, real *g, const real *dout, const real *alpha, int N,
                            int O, size_t OHW, double bits, const QuantNoise *noise) {
    return quant_codes_drv(minmax_avx2, codes_avx2, codes, zp, s, g, dout, alpha, N, O, OHW, bits, noise);
}
static int quant_codes_avx512(uint8_t *codes, real *zp, real *s, real *g, const real *dout, const real *alpha, int N,
                              int O, size_t OHW, double bits, const QuantNoise *noise) {
    return quant_codes_drv(minmax_avx512, codes_avx512, codes, zp, s, g, dout, alpha, N, O, OHW, bits, noise);
}
static int err_minmax_avx2(real *mn, real *mx, const real *dout, const real *alpha, int N, int O, size_t OHW) {
    return err_minmax_drv(minmax_avx2, mn, mx, dout, alpha, N, O, OHW);
}
static int err_codes_avx2(uint8_t *codes, const real *dout, const real *alpha, const QuantNoise *noise, int N, int O,
                          size_t OHW, real zp, real s, real qmax) {
    return err_codes_drv(codes_avx2, codes, dout, alpha, noise, N, O, OHW, zp, s, qmax);
}
static int err_minmax_avx512(real *mn, real *mx, const real *dout, const real *alpha, int N, int O, size_t OHW) {
    return err_minmax_drv(minmax_avx512, mn, mx, dout, alpha, N, O, OHW);
}
static int err_codes_avx512(uint8_t *codes, const real *dout, const real *alpha, const QuantNoise *noise, int N, int O,
                            size_t OHW, real zp, real s, real qmax) {
    return err_codes_drv(codes_avx512, codes, dout, alpha, noise, N, O, OHW, zp, s, qmax);
}
#endif

void bconv_bwd_sign_i8(int8_t *dst, const real *src, size_t n, int zero_is_plus_one) {
    /* sign_value's cases as comparisons (vectorised): NaN is neither > 0 nor < 0, so it
     * gets the zero case (0, or +1), as sign_value gives it */
    if (zero_is_plus_one) {
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dst[i] = (int8_t)(1 - 2 * (src[i] < 0));
    } else {
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dst[i] = (int8_t)((src[i] > 0) - (src[i] < 0));
    }
}

void bconv_bwd_i8_from_codes(int8_t *dst, const uint8_t *codes, size_t n, const real *sval) {
    int8_t lut[256];
    for (int c = 0; c < 256; c++) lut[c] = (int8_t)(sval[c] > 0 ? 1 : sval[c] < 0 ? -1 : 0);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = lut[codes[i]];
}

int bconv_bwd_int8_fits(const ConvDims *d) {
    const long long lim = 2147483647LL / 255;
    return (long long)d->O * d->KH * d->KW <= lim && (long long)d->N * d->OH * d->OW <= lim;
}

static void check_fits(const ConvDims *d) {
    if (!bconv_bwd_int8_fits(d)) {
        fprintf(stderr, "bconv_bwd_int8: dims beyond int32 sums (O*KH*KW = %lld, N*OH*OW = %lld)\n",
                (long long)d->O * d->KH * d->KW, (long long)d->N * d->OH * d->OW);
        abort();
    }
}

int bconv_bwd_int8_products_nz(real *dba, real *dbw, real *g, uint8_t *codes, const real *dout, const real *alpha,
                               const QuantNoise *noise, double grad_bits, const int8_t *ba, const int8_t *bw,
                               const ConvDims *d) {
    if (!bconv_bwd_int8_fits(d)) {
        mul_alpha(g, dout, alpha, d->N, d->O, (size_t)d->OH * d->OW);
        return -1;
    }
    const BconvBwdInt8Fns *f = bconv_bwd_int8_fns();
    real zp, s;
    if (f->quant_codes(codes, &zp, &s, g, dout, alpha, d->N, d->O, (size_t)d->OH * d->OW, grad_bits, noise) != 0)
        return -1;
    if (dba) f->dgrad(dba, codes, bw, zp, s, d);
    f->wgrad(dbw, codes, ba, zp, s, d);
    return 0;
}

int bconv_bwd_int8_products(real *dba, real *dbw, real *g, uint8_t *codes, const real *dout, const real *alpha,
                            const real *noise, double grad_bits, const int8_t *ba, const int8_t *bw,
                            const ConvDims *d) {
    const QuantNoise q = {.draws = noise};
    return bconv_bwd_int8_products_nz(dba, dbw, g, codes, dout, alpha, noise ? &q : NULL, grad_bits, ba, bw, d);
}

/* ------------------------------------------------------------ dispatch */
/* The tables, worst to best, each needing every feature bit of its mask
 * (core/cpu.h). The AVX-VNNI table keeps the AVX2 codes loop; the AVX-512
 * one replaces all three kernels. */
static const struct {
    const char *name;
    unsigned need;
} levels[] = {
    {"c", 0},
#ifdef BWD8_X86
    {"avx2", BWD8_CPU_AVX2},
    {"avx-vnni", BWD8_CPU_AVX2 | BWD8_CPU_AVXVNNI},
    {"avx512-vnni", BWD8_CPU_AVX2 | BWD8_CPU_AVX512VNNI},
#endif
};
#define N_LEVELS ((int)(sizeof levels / sizeof levels[0]))

static int best_level(unsigned mask) {
    int i = N_LEVELS - 1;
    while (i > 0 && (levels[i].need & mask) != levels[i].need) i--;
    return i;
}

static void fill_level(BconvBwdInt8Fns *f, int level) {
    f->dgrad = dgrad_c;
    f->wgrad = wgrad_c;
    f->quant_codes = quant_codes_c;
    f->err_minmax = err_minmax_c;
    f->err_codes = err_codes_c;
    f->wgrad_sums = wgrad_sums_c;
    f->name = levels[level].name;
#ifdef BWD8_X86
    if (level == 1 || level == 2) {
        f->dgrad = level == 1 ? dgrad_avx2 : dgrad_avxvnni;
        f->wgrad = level == 1 ? wgrad_avx2 : wgrad_avxvnni;
        f->wgrad_sums = level == 1 ? wgrad_sums_avx2 : wgrad_sums_avxvnni;
#if !REAL_IS_DOUBLE
        f->quant_codes = quant_codes_avx2;
        f->err_minmax = err_minmax_avx2;
        f->err_codes = err_codes_avx2;
#endif
    }
    if (level == 3) {
        f->dgrad = dgrad_avx512;
        f->wgrad = wgrad_avx512;
        f->wgrad_sums = wgrad_sums_avx512;
#if !REAL_IS_DOUBLE
        f->quant_codes = quant_codes_avx512;
        f->err_minmax = err_minmax_avx512;
        f->err_codes = err_codes_avx512;
#endif
    }
#endif
}

unsigned bconv_bwd_int8_cpu_flags(void) {
    const unsigned m = cpu_features();
    unsigned f = 0;
    if ((m & BWD8_CPU_AVX2) == BWD8_CPU_AVX2) f |= BWD8_CPU_AVX2;
    if ((m & BWD8_CPU_AVXVNNI) == BWD8_CPU_AVXVNNI) f |= BWD8_CPU_AVXVNNI;
    if ((m & BWD8_CPU_AVX512VNNI) == BWD8_CPU_AVX512VNNI) f |= BWD8_CPU_AVX512VNNI;
    return f;
}

void bconv_bwd_int8_init_fns(BconvBwdInt8Fns *f, unsigned cpu_mask) {
    fill_level(f, best_level(cpu_mask & cpu_features()));
}

/* one table per level, built once; each call picks by the current mask (a load
 * and a few ANDs), so a test that lowers the mask gets the lower table */
static BconvBwdInt8Fns tables[N_LEVELS];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static void build_tables(void) {
    for (int i = 0; i < N_LEVELS; i++) fill_level(&tables[i], i);
}

const BconvBwdInt8Fns *bconv_bwd_int8_fns(void) {
    pthread_once(&tables_once, build_tables);
    return &tables[best_level(cpu_features())];
}

int bconv_bwd_int8_simd(void) { return bconv_bwd_int8_fns()->dgrad != dgrad_c; }
