/* Packed binary conv forward; see bconv_packed.h and bitpack.h for the layouts. */
#include "bconv_packed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

#if !REAL_IS_DOUBLE && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define BCONV_HAVE_AVX2 1
#endif

/* portable popcount (no -mpopcnt in the reference: the compiler lowers it) */
static inline int pc64(uint64_t v) { return __builtin_popcountll(v); }

/* ------------------------------------------------------------ C reference */
void bconv_packed_fwd_c(real *out, const uint64_t *act, const uint64_t *wt, const real *alpha, const ConvDims *d) {
    const int O = d->O, KH = d->KH, KW = d->KW, OH = d->OH, OW = d->OW, s = d->stride;
    const int CW = bitpack_cw(d->C), LW = bitpack_lw(d);
    const int Hp = d->H + 2 * d->pad, Wp = d->W + 2 * d->pad;
    if (OH <= 0 || OW <= 0) return;
    #pragma omp parallel for schedule(static) collapse(2)
    for (int n = 0; n < d->N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int o = 0; o < O; o++) {
                const uint64_t *ws = wt + (size_t)o * 2 * LW, *wm = ws + LW;
                for (int ox = 0; ox < OW; ox++) {
                    long sum = 0;
                    for (int ky = 0; ky < KH; ky++)
                        for (int kx = 0; kx < KW; kx++) {
                            const uint64_t *px = act + (((size_t)n * Hp + oy * s + ky) * Wp + ox * s + kx) * 2 * CW;
                            const int t = ky * KW + kx;
                            for (int j = 0; j < CW; j++) {
                                const uint64_t m = px[CW + j] & wm[t * CW + j];
                                const uint64_t x = (px[j] ^ ws[t * CW + j]) & m;
                                sum += pc64(m) - 2 * pc64(x);
                            }
                        }
                    const real y = (real)sum;
                    out[(((size_t)n * O + o) * OH + oy) * OW + ox] = alpha ? y * alpha[o] : y;
                }
            }
}

/* ------------------------------------------------------------------ AVX2 */
#ifdef BCONV_HAVE_AVX2
/* The SIMD kernels work on one output row (n, oy) at a time: the patches of
 * its OW pixels are gathered into buf[OW][2][Lp] (sign plane, then mask plane,
 * laid out like a filter, tail words zero), then for each block of 4 filters
 * the row's pixels are swept: the 4 filters stay in L1 and the outputs go to
 * 4 contiguous rows of out (storing pixel by pixel across the O planes would
 * hit one cache set, the planes being a power of two apart). */
static void gather_row(uint64_t *buf, int Lp, const uint64_t *act, const ConvDims *d, int n, int oy) {
    const int KH = d->KH, KW = d->KW, s = d->stride, CW = bitpack_cw(d->C);
    const int Hp = d->H + 2 * d->pad, Wp = d->W + 2 * d->pad;
    for (int ox = 0; ox < d->OW; ox++) {
        uint64_t *ps = buf + (size_t)ox * 2 * Lp, *pm = ps + Lp;
        for (int ky = 0; ky < KH; ky++) {
            const uint64_t *px = act + (((size_t)n * Hp + oy * s + ky) * Wp + ox * s) * 2 * CW;
            uint64_t *qs = ps + ky * KW * CW, *qm = pm + ky * KW * CW;
            for (int kx = 0; kx < KW; kx++, px += 2 * CW, qs += CW, qm += CW)
                for (int j = 0; j < CW; j++) {
                    qs[j] = px[j];
                    qm[j] = px[CW + j];
                }
        }
    }
}
#define AVX2 __attribute__((target("avx2,popcnt")))

/* dense[o] = 1 when filter o has no zero weight (its mask holds every real
 * channel at every tap: the faithful weights, continuous before sign, almost
 * always). Then m = ma & mw = ma (the activation mask has no bits beyond C),
 * so popcount(m) is the patch's own count, computed once per pixel, and the
 * filter costs one popcount per word instead of two. */
static AVX2 uint8_t *dense_filters(const uint64_t *wt, const ConvDims *d) {
    const int LW = bitpack_lw(d);
    const long full = (long)d->KH * d->KW * d->C;
    uint8_t *dense = malloc(d->O > 0 ? (size_t)d->O : 1);
    if (dense == NULL) abort();
    for (int o = 0; o < d->O; o++) {
        const uint64_t *wm = wt + (size_t)o * 2 * LW + LW;
        long c = 0;
        for (int i = 0; i < LW; i++) c += __builtin_popcountll(wm[i]);
        dense[o] = c == full;
    }
    return dense;
}

/* per-byte popcount, pshufb nibble table */
static AVX2 inline __m256i pc8(__m256i v, __m256i lut, __m256i low) {
    const __m256i lo = _mm256_and_si256(v, low);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

/* per byte: popcount(m) - 2*popcount(x) + 16, in [8, 24] where m = am & wm,
 * x = (as ^ ws) & m; byte sums of up to 10 steps stay below 256 and are then
 * reduced by psadbw (the +16 per byte, 512 per 256-bit step, removed at the end) */
static AVX2 inline __m256i tern_bytes(__m256i as, __m256i am, const uint64_t *ws, const uint64_t *wm,
                                      __m256i lut, __m256i low, __m256i c16) {
    const __m256i m = _mm256_and_si256(am, _mm256_loadu_si256((const __m256i *)wm));
    const __m256i x = _mm256_and_si256(_mm256_xor_si256(as, _mm256_loadu_si256((const __m256i *)ws)), m);
    const __m256i px = pc8(x, lut, low);
    return _mm256_add_epi8(pc8(m, lut, low), _mm256_sub_epi8(c16, _mm256_add_epi8(px, px)));
}

#define BYTE_STEPS 10 /* 10 * 24 < 256 */

/* dense filter (wm covers every real channel): per byte 16 - 2*popcount(x),
 * x = (as ^ ws) & am, in [0, 16]; +16 per byte removed at the end */
static AVX2 inline __m256i tern_bytes_dense(__m256i as, __m256i am, const uint64_t *ws, __m256i lut, __m256i low,
                                            __m256i c16) {
    const __m256i x = _mm256_and_si256(_mm256_xor_si256(as, _mm256_loadu_si256((const __m256i *)ws)), am);
    const __m256i px = pc8(x, lut, low);
    return _mm256_sub_epi8(c16, _mm256_add_epi8(px, px));
}

static AVX2 inline __m256i sad0(__m256i v) { return _mm256_sad_epu8(v, _mm256_setzero_si256()); }

/* [sum of a0's lanes, a1's, a2's, a3's] as four 32-bit ints */
static AVX2 inline __m128i hsum4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    const __m256i t01 = _mm256_add_epi64(_mm256_unpacklo_epi64(a0, a1), _mm256_unpackhi_epi64(a0, a1));
    const __m256i t23 = _mm256_add_epi64(_mm256_unpacklo_epi64(a2, a3), _mm256_unpackhi_epi64(a2, a3));
    const __m256i u = _mm256_add_epi64(_mm256_permute2x128_si256(t01, t23, 0x20),
                                       _mm256_permute2x128_si256(t01, t23, 0x31));
    /* the sums fit in 32 bits (|Y| + bias < 2^31): keep the low dwords */
    const __m256i lo = _mm256_permutevar8x32_epi32(u, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
    return _mm256_castsi256_si128(lo);
}

static AVX2 inline long hsum64(__m256i v) {
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return (long)(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
}

/* one thread's share of the team's work (an orphaned omp for inside: clang does
 * not carry the target attribute into an outlined parallel region) */
static AVX2 void fwd_avx2_team(real *out, const uint64_t *act, const uint64_t *wt, const real *alpha, const ConvDims *d,
                                  const uint8_t *dense, int steps, int bias, size_t ostride) {
    const int O = d->O, OH = d->OH, OW = d->OW, LW = bitpack_lw(d);
    const size_t bufw = (size_t)OW * 2 * LW;
    uint64_t *buf = aligned_alloc(32, sizeof(uint64_t) * bufw);
    int *pcm = malloc(sizeof(int) * (size_t)OW); /* popcount of each pixel's patch mask */
    if (buf == NULL || pcm == NULL) abort();
    memset(buf, 0, sizeof(uint64_t) * bufw); /* the tail words stay 0 */
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f), c16 = _mm256_set1_epi8(16);
    const __m128i vbias = _mm_set1_epi32(bias);
    #pragma omp for schedule(static) collapse(2)
    for (int n = 0; n < d->N; n++)
        for (int oy = 0; oy < OH; oy++) {
            gather_row(buf, LW, act, d, n, oy);
            for (int ox = 0; ox < OW; ox++) {
                const uint64_t *pm = buf + (size_t)ox * 2 * LW + LW;
                int c = 0;
                for (int i = 0; i < LW; i++) c += __builtin_popcountll(pm[i]);
                pcm[ox] = c;
            }
            real *dst = out + ((size_t)n * O * OH + oy) * OW; /* + o*OH*OW + ox */
            int o = 0;
            for (; o + 4 <= O; o += 4) {
                const uint64_t *w0 = wt + (size_t)o * 2 * LW;
                const uint64_t *w1 = w0 + 2 * LW, *w2 = w1 + 2 * LW, *w3 = w2 + 2 * LW;
                const __m128 al = alpha ? _mm_loadu_ps(alpha + o) : _mm_set1_ps(1.0f);
                if (dense[o] & dense[o + 1] & dense[o + 2] & dense[o + 3]) {
                    for (int ox = 0; ox < OW; ox++) {
                        const uint64_t *ps = buf + (size_t)ox * 2 * LW, *pm = ps + LW;
                        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
                        for (int i0 = 0; i0 < steps; i0 += BYTE_STEPS) {
                            const int i1 = steps - i0 < BYTE_STEPS ? steps : i0 + BYTE_STEPS;
                            __m256i b0 = _mm256_setzero_si256(), b1 = b0, b2 = b0, b3 = b0;
                            for (int i = 4 * i0; i < 4 * i1; i += 4) {
                                const __m256i as = _mm256_load_si256((const __m256i *)(ps + i));
                                const __m256i am = _mm256_load_si256((const __m256i *)(pm + i));
                                b0 = _mm256_add_epi8(b0, tern_bytes_dense(as, am, w0 + i, lut, low, c16));
                                b1 = _mm256_add_epi8(b1, tern_bytes_dense(as, am, w1 + i, lut, low, c16));
                                b2 = _mm256_add_epi8(b2, tern_bytes_dense(as, am, w2 + i, lut, low, c16));
                                b3 = _mm256_add_epi8(b3, tern_bytes_dense(as, am, w3 + i, lut, low, c16));
                            }
                            a0 = _mm256_add_epi64(a0, sad0(b0));
                            a1 = _mm256_add_epi64(a1, sad0(b1));
                            a2 = _mm256_add_epi64(a2, sad0(b2));
                            a3 = _mm256_add_epi64(a3, sad0(b3));
                        }
                        /* Y = pcm - 2*sum pc(x) = pcm + (byte sums - bias) */
                        const __m128i yi = _mm_add_epi32(_mm_sub_epi32(hsum4(a0, a1, a2, a3), vbias), _mm_set1_epi32(pcm[ox]));
                        const __m128 y = _mm_mul_ps(_mm_cvtepi32_ps(yi), al);
                        float f[4];
                        _mm_storeu_ps(f, y);
                        dst[(size_t)(o + 0) * ostride + ox] = f[0];
                        dst[(size_t)(o + 1) * ostride + ox] = f[1];
                        dst[(size_t)(o + 2) * ostride + ox] = f[2];
                        dst[(size_t)(o + 3) * ostride + ox] = f[3];
                    }
                    continue;
                }
                for (int ox = 0; ox < OW; ox++) {
                    const uint64_t *ps = buf + (size_t)ox * 2 * LW, *pm = ps + LW;
                    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
                    for (int i0 = 0; i0 < steps; i0 += BYTE_STEPS) {
                        const int i1 = steps - i0 < BYTE_STEPS ? steps : i0 + BYTE_STEPS;
                        __m256i b0 = _mm256_setzero_si256(), b1 = b0, b2 = b0, b3 = b0;
                        for (int i = 4 * i0; i < 4 * i1; i += 4) {
                            const __m256i as = _mm256_load_si256((const __m256i *)(ps + i));
                            const __m256i am = _mm256_load_si256((const __m256i *)(pm + i));
                            b0 = _mm256_add_epi8(b0, tern_bytes(as, am, w0 + i, w0 + LW + i, lut, low, c16));
                            b1 = _mm256_add_epi8(b1, tern_bytes(as, am, w1 + i, w1 + LW + i, lut, low, c16));
                            b2 = _mm256_add_epi8(b2, tern_bytes(as, am, w2 + i, w2 + LW + i, lut, low, c16));
                            b3 = _mm256_add_epi8(b3, tern_bytes(as, am, w3 + i, w3 + LW + i, lut, low, c16));
                        }
                        a0 = _mm256_add_epi64(a0, sad0(b0));
                        a1 = _mm256_add_epi64(a1, sad0(b1));
                        a2 = _mm256_add_epi64(a2, sad0(b2));
                        a3 = _mm256_add_epi64(a3, sad0(b3));
                    }
                    /* exact integers to float, then one multiply by alpha, as the fp32 path
                     * (alpha NULL: times 1.0f, exact) */
                    const __m128 y = _mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(hsum4(a0, a1, a2, a3), vbias)), al);
                    float f[4];
                    _mm_storeu_ps(f, y);
                    dst[(size_t)(o + 0) * ostride + ox] = f[0];
                    dst[(size_t)(o + 1) * ostride + ox] = f[1];
                    dst[(size_t)(o + 2) * ostride + ox] = f[2];
                    dst[(size_t)(o + 3) * ostride + ox] = f[3];
                }
            }
            for (; o < O; o++) {
                const uint64_t *w0 = wt + (size_t)o * 2 * LW;
                for (int ox = 0; ox < OW; ox++) {
                    const uint64_t *ps = buf + (size_t)ox * 2 * LW, *pm = ps + LW;
                    __m256i a0 = _mm256_setzero_si256();
                    for (int i = 0; i < LW; i += 4) {
                        const __m256i as = _mm256_load_si256((const __m256i *)(ps + i));
                        const __m256i am = _mm256_load_si256((const __m256i *)(pm + i));
                        a0 = _mm256_add_epi64(a0, sad0(tern_bytes(as, am, w0 + i, w0 + LW + i, lut, low, c16)));
                    }
                    const real y0 = (real)(hsum64(a0) - bias);
                    dst[(size_t)o * ostride + ox] = alpha ? y0 * alpha[o] : y0;
                }
            }
        }
    free(pcm);
    free(buf);
}

static void bconv_packed_fwd_avx2(real *out, const uint64_t *act, const uint64_t *wt, const real *alpha,
                                  const ConvDims *d) {
    const int OH = d->OH, OW = d->OW, LW = bitpack_lw(d);
    if (OH <= 0 || OW <= 0) return;
    const int steps = LW / 4;
    const int bias = 512 * steps;
    const size_t ostride = (size_t)OH * OW;
    uint8_t *dense = dense_filters(wt, d);
    #pragma omp parallel
    fwd_avx2_team(out, act, wt, alpha, d, dense, steps, bias, ostride);
    free(dense);
}
#endif

/* --------------------------------------------- AVX-512 VPOPCNTDQ (Zen 4/5, Ice Lake+) */
#ifdef BCONV_HAVE_AVX2
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512vpopcntdq")))

/* as the AVX2 kernel, with 512-bit steps and a native 64-bit popcount:
 * acc_m += popcount(m), acc_x += popcount(x), Y = sum(acc_m - 2*acc_x).
 * The patch planes are rounded up to 8 words (zero tail); the filters' last
 * partial vector is read with a masked load (no read past the buffer). */
/* one thread's share of the team's work (an orphaned omp for inside: clang does
 * not carry the target attribute into an outlined parallel region) */
static AVX512 void fwd_avx512_team(real *out, const uint64_t *act, const uint64_t *wt, const real *alpha,
                                      const ConvDims *d, const uint8_t *dense, int L8, int full, __mmask8 tail,
                                      size_t ostride) {
    const int O = d->O, OH = d->OH, OW = d->OW, LW = bitpack_lw(d);
    const size_t bufw = (size_t)OW * 2 * L8;
    uint64_t *buf = aligned_alloc(64, sizeof(uint64_t) * bufw);
    long *pcm = malloc(sizeof(long) * (size_t)OW); /* popcount of each pixel's patch mask */
    if (buf == NULL || pcm == NULL) abort();
    memset(buf, 0, sizeof(uint64_t) * bufw);
    #pragma omp for schedule(static) collapse(2)
    for (int n = 0; n < d->N; n++)
        for (int oy = 0; oy < OH; oy++) {
            gather_row(buf, L8, act, d, n, oy);
            for (int ox = 0; ox < OW; ox++) {
                const uint64_t *pm = buf + (size_t)ox * 2 * L8 + L8;
                __m512i c = _mm512_setzero_si512();
                for (int i = 0; i < L8; i += 8) c = _mm512_add_epi64(c, _mm512_popcnt_epi64(_mm512_load_si512(pm + i)));
                pcm[ox] = _mm512_reduce_add_epi64(c);
            }
            real *dst = out + ((size_t)n * O * OH + oy) * OW;
            int o = 0;
            for (; o + 4 <= O; o += 4) {
                const uint64_t *w[4];
                for (int k = 0; k < 4; k++) w[k] = wt + (size_t)(o + k) * 2 * LW;
                if (dense[o] & dense[o + 1] & dense[o + 2] & dense[o + 3]) {
                    /* zero-free filters: m = ma, Y = pcm - 2 * popcount((as ^ ws) & am) */
                    for (int ox = 0; ox < OW; ox++) {
                        const uint64_t *ps = buf + (size_t)ox * 2 * L8, *pm = ps + L8;
                        __m512i ax[4];
                        for (int k = 0; k < 4; k++) ax[k] = _mm512_setzero_si512();
                        int i = 0;
                        for (; i < full; i += 8) {
                            const __m512i as = _mm512_load_si512(ps + i), an = _mm512_load_si512(pm + i);
                            for (int k = 0; k < 4; k++)
                                ax[k] = _mm512_add_epi64(ax[k], _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(
                                                                    as, _mm512_loadu_si512(w[k] + i), an, 0x28)));
                        }
                        if (tail) {
                            const __m512i as = _mm512_load_si512(ps + i), an = _mm512_load_si512(pm + i);
                            for (int k = 0; k < 4; k++)
                                ax[k] = _mm512_add_epi64(ax[k], _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(
                                                                    as, _mm512_maskz_loadu_epi64(tail, w[k] + i), an, 0x28)));
                        }
                        for (int k = 0; k < 4; k++) {
                            const real yf = (real)(pcm[ox] - 2 * (long)_mm512_reduce_add_epi64(ax[k]));
                            dst[(size_t)(o + k) * ostride + ox] = alpha ? yf * alpha[o + k] : yf;
                        }
                    }
                    continue;
                }
                for (int ox = 0; ox < OW; ox++) {
                    const uint64_t *ps = buf + (size_t)ox * 2 * L8, *pm = ps + L8;
                    __m512i am[4], ax[4];
                    for (int k = 0; k < 4; k++) am[k] = ax[k] = _mm512_setzero_si512();
                    int i = 0;
                    for (; i < full; i += 8) {
                        const __m512i as = _mm512_load_si512(ps + i), an = _mm512_load_si512(pm + i);
                        for (int k = 0; k < 4; k++) {
                            const __m512i m = _mm512_and_si512(an, _mm512_loadu_si512(w[k] + LW + i));
                            /* x = (as ^ ws) & m */
                            const __m512i x = _mm512_ternarylogic_epi64(as, _mm512_loadu_si512(w[k] + i), m, 0x28);
                            am[k] = _mm512_add_epi64(am[k], _mm512_popcnt_epi64(m));
                            ax[k] = _mm512_add_epi64(ax[k], _mm512_popcnt_epi64(x));
                        }
                    }
                    if (tail) {
                        const __m512i as = _mm512_load_si512(ps + i), an = _mm512_load_si512(pm + i);
                        for (int k = 0; k < 4; k++) {
                            const __m512i m = _mm512_and_si512(an, _mm512_maskz_loadu_epi64(tail, w[k] + LW + i));
                            const __m512i x =
                                _mm512_ternarylogic_epi64(as, _mm512_maskz_loadu_epi64(tail, w[k] + i), m, 0x28);
                            am[k] = _mm512_add_epi64(am[k], _mm512_popcnt_epi64(m));
                            ax[k] = _mm512_add_epi64(ax[k], _mm512_popcnt_epi64(x));
                        }
                    }
                    for (int k = 0; k < 4; k++) {
                        const long y = _mm512_reduce_add_epi64(_mm512_sub_epi64(am[k], _mm512_slli_epi64(ax[k], 1)));
                        const real yf = (real)y;
                        dst[(size_t)(o + k) * ostride + ox] = alpha ? yf * alpha[o + k] : yf;
                    }
                }
            }
            for (; o < O; o++) {
                const uint64_t *w0 = wt + (size_t)o * 2 * LW;
                for (int ox = 0; ox < OW; ox++) {
                    const uint64_t *ps = buf + (size_t)ox * 2 * L8, *pm = ps + L8;
                    __m512i am0 = _mm512_setzero_si512(), ax0 = am0;
                    for (int i = 0; i < LW; i += 8) {
                        const __mmask8 k8 = i + 8 <= LW ? (__mmask8)0xff : tail;
                        const __m512i m =
                            _mm512_and_si512(_mm512_load_si512(pm + i), _mm512_maskz_loadu_epi64(k8, w0 + LW + i));
                        const __m512i x = _mm512_ternarylogic_epi64(_mm512_load_si512(ps + i),
                                                                    _mm512_maskz_loadu_epi64(k8, w0 + i), m, 0x28);
                        am0 = _mm512_add_epi64(am0, _mm512_popcnt_epi64(m));
                        ax0 = _mm512_add_epi64(ax0, _mm512_popcnt_epi64(x));
                    }
                    const real yf = (real)_mm512_reduce_add_epi64(_mm512_sub_epi64(am0, _mm512_slli_epi64(ax0, 1)));
                    dst[(size_t)o * ostride + ox] = alpha ? yf * alpha[o] : yf;
                }
            }
        }
    free(pcm);
    free(buf);
}

static void bconv_packed_fwd_avx512(real *out, const uint64_t *act, const uint64_t *wt, const real *alpha,
                                    const ConvDims *d) {
    const int OH = d->OH, OW = d->OW, LW = bitpack_lw(d), L8 = (LW + 7) / 8 * 8;
    if (OH <= 0 || OW <= 0) return;
    const size_t ostride = (size_t)OH * OW;
    const int full = LW / 8 * 8;                                 /* words covered by whole 512-bit loads */
    const __mmask8 tail = (__mmask8)((1u << (LW - full)) - 1u); /* 0 or 0x0f */
    uint8_t *dense = dense_filters(wt, d);
    #pragma omp parallel
    fwd_avx512_team(out, act, wt, alpha, d, dense, L8, full, tail, ostride);
    free(dense);
}
#endif

/* ------------------------------------------------------------ dispatch */
/* The tables, worst to best, each needing every feature bit of its mask (the
 * AVX-512 table keeps the AVX2 packer). The CPU mask comes from core/cpu.h. */
static const struct {
    const char *name;
    unsigned need;
} levels[] = {
    {"c", 0},
#ifdef BCONV_HAVE_AVX2
    {"avx2", BCONV_CPU_AVX2},
    {"avx512-vpopcntdq", BCONV_CPU_AVX2 | BCONV_CPU_AVX512},
#endif
};
#define N_LEVELS ((int)(sizeof levels / sizeof levels[0]))

static int best_level(unsigned mask) {
    int i = N_LEVELS - 1;
    while (i > 0 && (levels[i].need & mask) != levels[i].need) i--;
    return i;
}

static void fill_level(BconvPackedFns *f, int level) {
    f->pack_act = bitpack_act_c;
    f->pack_weight = bitpack_weight_c;
    f->pack_weight_i8 = bitpack_weight_row_i8_c;
    f->pack_act_codes = bitpack_act_codes_c;
    f->conv_fwd = bconv_packed_fwd_c;
    f->name = levels[level].name;
#ifdef BCONV_HAVE_AVX2
    if (level >= 1) {
        f->pack_act = bitpack_act_avx2;
        f->pack_weight_i8 = bitpack_weight_row_i8_avx2;
        f->pack_act_codes = bitpack_act_codes_avx2;
        f->conv_fwd = bconv_packed_fwd_avx2;
    }
    if (level >= 2) f->conv_fwd = bconv_packed_fwd_avx512;
#endif
}

unsigned bconv_packed_cpu_flags(void) {
    const unsigned m = cpu_features();
    unsigned f = 0;
    if ((m & BCONV_CPU_AVX2) == BCONV_CPU_AVX2) f |= BCONV_CPU_AVX2;
    if ((m & BCONV_CPU_AVX512) == BCONV_CPU_AVX512) f |= BCONV_CPU_AVX512;
    return f;
}

void bconv_packed_init_fns(BconvPackedFns *f, unsigned cpu_mask) { fill_level(f, best_level(cpu_mask & cpu_features())); }

/* one table per level, built once; each call picks by the current mask (a load
 * and a few ANDs), so a test that lowers the mask gets the lower table */
static BconvPackedFns tables[N_LEVELS];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static void build_tables(void) {
    for (int i = 0; i < N_LEVELS; i++) fill_level(&tables[i], i);
}

const BconvPackedFns *bconv_packed_fns(void) {
    pthread_once(&tables_once, build_tables);
    return &tables[best_level(cpu_features())];
}
