/* Bit-packing of ternary tensors; the layouts are documented in bitpack.h. */
#include "bitpack.h"

#include <stdlib.h>
#include <string.h>

#if !REAL_IS_DOUBLE && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define BITPACK_HAVE_AVX2 1
#endif

size_t bitpack_act_words(const ConvDims *d) {
    return (size_t)d->N * (size_t)(d->H + 2 * d->pad) * (size_t)(d->W + 2 * d->pad) * 2 * (size_t)bitpack_cw(d->C);
}

size_t bitpack_weight_words(const ConvDims *d) { return (size_t)d->O * 2 * (size_t)bitpack_lw(d); }

/* the border of sample n (everything but the interior HxW pixels): zero or -1 */
static void pack_border(uint64_t *a /* [Hp][Wp][2][CW] */, const ConvDims *d, int pad_minus_one) {
    const int CW = bitpack_cw(d->C), p = d->pad, Hp = d->H + 2 * p, Wp = d->W + 2 * p;
    for (int y = 0; y < Hp; y++)
        for (int x = 0; x < Wp; x++) {
            if (y >= p && y < p + d->H && x >= p && x < p + d->W) continue;
            uint64_t *px = a + ((size_t)y * Wp + x) * 2 * CW;
            memset(px, 0, sizeof(uint64_t) * 2 * CW);
            if (pad_minus_one)
                for (int c = 0; c < d->C; c++) px[CW + c / 64] |= (uint64_t)1 << (c % 64);
        }
}

/* The C activation packers' one loop, from reals (src) or from codes with
 * their table (cls[code]: 1 = sign, 2 = mask); the source test is the same
 * for the whole call. */
static void pack_act_c(uint64_t *dst, const real *src, const uint8_t *codes, const uint8_t *cls, const ConvDims *d,
                       int pad_minus_one) {
    const int C = d->C, H = d->H, W = d->W, CW = bitpack_cw(C), p = d->pad;
    const int Wp = W + 2 * p;
    const size_t per_n = (size_t)(H + 2 * p) * Wp * 2 * CW;
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < d->N; n++) {
        uint64_t *a = dst + (size_t)n * per_n;
        pack_border(a, d, pad_minus_one);
        for (int y = 0; y < H; y++) {
            uint64_t *row0 = a + ((size_t)(y + p) * Wp + p) * 2 * CW;
            memset(row0, 0, sizeof(uint64_t) * 2 * CW * (size_t)W);
            for (int c = 0; c < C; c++) {
                const size_t off = (((size_t)n * C + c) * H + y) * W;
                const int b = c % 64, wsign = c / 64, wmask = CW + c / 64;
                for (int x = 0; x < W; x++) {
                    uint64_t *px = row0 + (size_t)x * 2 * CW;
                    uint64_t k;
                    if (src) k = (uint64_t)(src[off + x] > 0) | (uint64_t)(src[off + x] != 0) << 1;
                    else k = cls[codes[off + x]];
                    px[wsign] |= (k & 1) << b;
                    px[wmask] |= (k >> 1) << b;
                }
            }
        }
    }
}

void bitpack_act_c(uint64_t *dst, const real *src, const ConvDims *d, int pad_minus_one) {
    pack_act_c(dst, src, NULL, NULL, d, pad_minus_one);
}

void bitpack_act_codes_c(uint64_t *dst, const uint8_t *codes, const uint8_t cls[256], const ConvDims *d,
                         int pad_minus_one) {
    pack_act_c(dst, NULL, codes, cls, d, pad_minus_one);
}

void bitpack_weight_row_c(uint64_t *s, const real *wo, const ConvDims *d) {
    const int C = d->C, KK = d->KH * d->KW, CW = bitpack_cw(C), LW = bitpack_lw(d);
    uint64_t *m = s + LW;
    for (int t = 0; t < KK; t++)
        for (int j = 0; j < CW; j++) {
            /* the word of channels 64j..64j+63 at tap t, built in registers */
            const int c0 = 64 * j, nc = C - c0 < 64 ? C - c0 : 64;
            uint64_t sw = 0, mw = 0;
            for (int b = 0; b < nc; b++) {
                const real v = wo[(size_t)(c0 + b) * KK + t];
                sw |= (uint64_t)(v > 0) << b;
                mw |= (uint64_t)(v != 0) << b;
            }
            s[t * CW + j] = sw;
            m[t * CW + j] = mw;
        }
    for (int i = KK * CW; i < LW; i++) s[i] = m[i] = 0;
}

int bitpack_cls_bands(const uint8_t cls[256], int *lo, int *hi) {
    int c = 0;
    while (c < 256 && cls[c] == 2) c++;
    *lo = c;
    while (c < 256 && cls[c] == 0) c++;
    *hi = c;
    while (c < 256 && cls[c] == 3) c++;
    return c == 256;
}

/* bitpack_weight_row_c from int8 weights in {-1, 0, +1} (binary_conv's saved Bw) */
void bitpack_weight_row_i8_c(uint64_t *s, const int8_t *wo, const ConvDims *d) {
    const int C = d->C, KK = d->KH * d->KW, CW = bitpack_cw(C), LW = bitpack_lw(d);
    uint64_t *m = s + LW;
    for (int t = 0; t < KK; t++)
        for (int j = 0; j < CW; j++) {
            const int c0 = 64 * j, nc = C - c0 < 64 ? C - c0 : 64;
            uint64_t sw = 0, mw = 0;
            for (int b = 0; b < nc; b++) {
                const int8_t v = wo[(size_t)(c0 + b) * KK + t];
                sw |= (uint64_t)(v > 0) << b;
                mw |= (uint64_t)(v != 0) << b;
            }
            s[t * CW + j] = sw;
            m[t * CW + j] = mw;
        }
    for (int i = KK * CW; i < LW; i++) s[i] = m[i] = 0;
}

void bitpack_weight_c(uint64_t *dst, const real *w, const ConvDims *d) {
    const size_t CK = (size_t)d->C * d->KH * d->KW, LW = (size_t)bitpack_lw(d);
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < d->O; o++) bitpack_weight_row_c(dst + (size_t)o * 2 * LW, w + (size_t)o * CK, d);
}

#ifdef BITPACK_HAVE_AVX2
/* 8 pixels x 64 channels at a time: one byte per channel holds the 8 pixels'
 * bits (from _mm256_movemask_ps on a row of 8 floats), then an 8x64 bit
 * transpose by shifting bit x of every byte to its top and _mm256_movemask_epi8. */
__attribute__((target("avx2"))) static void transpose_store(uint64_t *a, size_t px_stride, int nx,
                                                            const uint8_t *bytes /* [64] */, int plane_off) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)bytes);
    const __m256i hi = _mm256_loadu_si256((const __m256i *)(bytes + 32));
    for (int x = 0; x < nx; x++) {
        /* bit x of each byte to bit 7: shift left by 7 - x (bits crossing into the next byte do not matter: movemask reads bit 7 only) */
        const __m128i sh = _mm_cvtsi32_si128(7 - x);
        const uint32_t l = (uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(lo, sh));
        const uint32_t h = (uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(hi, sh));
        a[(size_t)x * px_stride + plane_off] = (uint64_t)l | ((uint64_t)h << 32);
    }
}

/* row y of sample n (the border of n with row 0); a function of its own so
 * that the OpenMP region around it is plain code (clang does not carry the
 * target attribute into an outlined parallel region) */
__attribute__((target("avx2"))) static void pack_row_avx2(uint64_t *dst, const real *src, const ConvDims *d,
                                                          int pad_minus_one, int n, int y) {
    const int C = d->C, H = d->H, W = d->W, CW = bitpack_cw(C), p = d->pad;
    const int Wp = W + 2 * p;
    const size_t per_n = (size_t)(H + 2 * p) * Wp * 2 * CW;
    const size_t HW = (size_t)H * W;
    {
        {
            uint64_t *a = dst + (size_t)n * per_n;
            if (y == 0) pack_border(a, d, pad_minus_one);
            uint8_t sb[64], mb[64];
            const __m256 zero = _mm256_setzero_ps();
            for (int x0 = 0; x0 < W; x0 += 8) {
                const int nx = W - x0 < 8 ? W - x0 : 8;
                uint64_t *px0 = a + ((size_t)(y + p) * Wp + x0 + p) * 2 * CW;
                for (int cw = 0; cw < CW; cw++) {
                    const int c0 = cw * 64, nc = C - c0 < 64 ? C - c0 : 64;
                    memset(sb, 0, sizeof sb);
                    memset(mb, 0, sizeof mb);
                    const real *base = src + ((size_t)n * C + c0) * HW + (size_t)y * W + x0;
                    if (nx == 8) {
                        for (int c = 0; c < nc; c++) {
                            const __m256 v = _mm256_loadu_ps(base + (size_t)c * HW);
                            sb[c] = (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ));
                            mb[c] = (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
                        }
                    } else {
                        for (int c = 0; c < nc; c++) {
                            const real *r = base + (size_t)c * HW;
                            unsigned s = 0, m = 0;
                            for (int x = 0; x < nx; x++) {
                                s |= (unsigned)(r[x] > 0) << x;
                                m |= (unsigned)(r[x] != 0) << x;
                            }
                            sb[c] = (uint8_t)s;
                            mb[c] = (uint8_t)m;
                        }
                    }
                    transpose_store(px0, 2 * (size_t)CW, nx, sb, cw);
                    transpose_store(px0, 2 * (size_t)CW, nx, mb, CW + cw);
                }
            }
        }
    }
}

void bitpack_act_avx2(uint64_t *dst, const real *src, const ConvDims *d, int pad_minus_one) {
    #pragma omp parallel for schedule(static) collapse(2)
    for (int n = 0; n < d->N; n++)
        for (int y = 0; y < d->H; y++) pack_row_avx2(dst, src, d, pad_minus_one, n, y);
}

/* bitpack_weight_row_i8_c: the row transposed to taps-major bytes [KK][CW*64]
 * (channels >= C zero, so their bits are 0 in both planes), then 32 channels
 * per compare and movemask */
__attribute__((target("avx2"))) void bitpack_weight_row_i8_avx2(uint64_t *s, const int8_t *wo, const ConvDims *d) {
    const int C = d->C, KK = d->KH * d->KW, CW = bitpack_cw(C), LW = bitpack_lw(d), CP = 64 * CW;
    int8_t stack_buf[4096]; /* the 3x3 filters up to C = 448; wider ones (and the tests' 512) take malloc */
    int8_t *tb = (size_t)KK * CP <= sizeof stack_buf ? stack_buf : malloc((size_t)KK * CP);
    if (!tb) {
        bitpack_weight_row_i8_c(s, wo, d);
        return;
    }
    for (int t = 0; t < KK; t++) memset(tb + (size_t)t * CP + C, 0, (size_t)(CP - C));
    for (int c = 0; c < C; c++)
        for (int t = 0; t < KK; t++) tb[(size_t)t * CP + c] = wo[(size_t)c * KK + t];
    uint64_t *m = s + LW;
    const __m256i zero = _mm256_setzero_si256();
    for (int t = 0; t < KK; t++)
        for (int j = 0; j < CW; j++) {
            const int8_t *p = tb + (size_t)t * CP + 64 * j;
            const __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
            const __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
            const uint32_t sl = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(lo, zero));
            const uint32_t sh = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(hi, zero));
            const uint32_t zl = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, zero));
            const uint32_t zh = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, zero));
            s[t * CW + j] = (uint64_t)sl | (uint64_t)sh << 32;
            m[t * CW + j] = ~((uint64_t)zl | (uint64_t)zh << 32);
        }
    for (int i = KK * CW; i < LW; i++) s[i] = m[i] = 0;
    if (tb != stack_buf) free(tb);
}

/* bitpack_act_codes_c, 32 pixels of one sample at a time: the classes from two
 * byte thresholds (bitpack_cls_bands), 32 pixels' bits per channel from one
 * compare and movemask, then 8 pixels x 64 channels per transpose_store. The
 * pixels run over the flattened HxW plane, so rows narrower than 8 (4x4
 * layers) fill whole vectors too. */
#define CODES_BLOCK 32
__attribute__((target("avx2"))) static void pack_codes_block_avx2(uint64_t *a /* sample n's [Hp][Wp][2][CW] */,
                                                                  const uint8_t *cn /* sample n's [C][H*W] */,
                                                                  const ConvDims *d, int lo, int hi, int i0) {
    const int C = d->C, W = d->W, CW = bitpack_cw(C), p = d->pad, Wp = W + 2 * p;
    const size_t HW = (size_t)d->H * W;
    const int npx = HW - (size_t)i0 < CODES_BLOCK ? (int)(HW - (size_t)i0) : CODES_BLOCK;
    uint64_t *px[CODES_BLOCK];
    for (int k = 0; k < npx; k++) {
        const int i = i0 + k, y = i / W, x = i % W;
        px[k] = a + ((size_t)(y + p) * Wp + x + p) * 2 * CW;
    }
    const __m256i vhi = _mm256_set1_epi8((char)hi), vlo = _mm256_set1_epi8((char)lo);
    const __m256i vband = _mm256_set1_epi8((char)(hi - lo - 1));
    uint8_t sb[4][64], mb[4][64];
    uint8_t tail[CODES_BLOCK];
    for (int cw = 0; cw < CW; cw++) {
        const int c0 = cw * 64, nc = C - c0 < 64 ? C - c0 : 64;
        for (int c = 0; c < nc; c++) {
            const uint8_t *src = cn + (size_t)(c0 + c) * HW + i0;
            __m256i v;
            if (npx == CODES_BLOCK) {
                v = _mm256_loadu_si256((const __m256i *)(const void *)src);
            } else {
                memset(tail, 0, sizeof tail);
                memcpy(tail, src, (size_t)npx);
                v = _mm256_loadu_si256((const __m256i *)(const void *)tail);
            }
            /* sign: code >= hi; zero: lo <= code < hi, i.e. code - lo <= hi - lo - 1 unsigned */
            const uint32_t sm = hi > 255 ? 0u : (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(v, vhi), v));
            const __m256i dl = _mm256_sub_epi8(v, vlo);
            const uint32_t zm = hi == lo ? 0u : (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(dl, vband), dl));
            for (int g = 0; g < 4; g++) {
                sb[g][c] = (uint8_t)(sm >> (8 * g));
                mb[g][c] = (uint8_t)(~zm >> (8 * g));
            }
        }
        for (int g = 0; g < 4; g++)
            for (int c = nc; c < 64; c++) sb[g][c] = mb[g][c] = 0;
        for (int g = 0; g * 8 < npx; g++) {
            const __m256i sl = _mm256_loadu_si256((const __m256i *)(const void *)sb[g]);
            const __m256i sh = _mm256_loadu_si256((const __m256i *)(const void *)(sb[g] + 32));
            const __m256i ml = _mm256_loadu_si256((const __m256i *)(const void *)mb[g]);
            const __m256i mh = _mm256_loadu_si256((const __m256i *)(const void *)(mb[g] + 32));
            const int nx = npx - 8 * g < 8 ? npx - 8 * g : 8;
            for (int x = 0; x < nx; x++) {
                const __m128i k = _mm_cvtsi32_si128(7 - x); /* bit x of each byte to bit 7 (as transpose_store) */
                uint64_t *w = px[8 * g + x];
                w[cw] = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(sl, k)) |
                        (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(sh, k)) << 32;
                w[CW + cw] = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(ml, k)) |
                             (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(mh, k)) << 32;
            }
        }
    }
}

static void pack_codes_block_entry(uint64_t *dst, const uint8_t *codes, const ConvDims *d, int pad_minus_one, int lo,
                                   int hi, int n, int b) {
    const int p = d->pad, CW = bitpack_cw(d->C);
    const size_t HW = (size_t)d->H * d->W;
    const size_t per_n = (size_t)(d->H + 2 * p) * (d->W + 2 * p) * 2 * CW;
    uint64_t *a = dst + (size_t)n * per_n;
    if (b == 0) pack_border(a, d, pad_minus_one);
    pack_codes_block_avx2(a, codes + (size_t)n * d->C * HW, d, lo, hi, b * CODES_BLOCK);
}

void bitpack_act_codes_avx2(uint64_t *dst, const uint8_t *codes, const uint8_t cls[256], const ConvDims *d,
                            int pad_minus_one) {
    int lo, hi;
    if (!bitpack_cls_bands(cls, &lo, &hi)) { /* not a sign of monotone levels: the general loop */
        bitpack_act_codes_c(dst, codes, cls, d, pad_minus_one);
        return;
    }
    const int nb = (int)(((size_t)d->H * d->W + CODES_BLOCK - 1) / CODES_BLOCK);
    #pragma omp parallel for schedule(static) collapse(2)
    for (int n = 0; n < d->N; n++)
        for (int b = 0; b < nb; b++) pack_codes_block_entry(dst, codes, d, pad_minus_one, lo, hi, n, b);
}
#endif
