/* Bit-packing of ternary tensors {-1, 0, +1} for the packed binary conv
 * (core/bconv_packed.h). Two planes of 64-bit words:
 *   sign bit = (v > 0),   mask bit = (v != 0)
 * so a value is  0 (mask 0),  +1 (mask 1, sign 1),  -1 (mask 1, sign 0).
 * Packing reads any real and stores sign(v) with sign(0) = 0; a tensor already
 * in {-1,0,+1} (or {-1,+1} for the sign(0) = +1 option) packs as itself.
 *
 * Channels run along the bit axis: channel c is bit (c % 64) of word c / 64,
 * CW = ceil(C / 64) words per plane. Bits of channels >= C are 0 in both planes
 * (mask 0: they contribute nothing, whatever the other operand holds).
 *
 * Activations, pixel-major with the conv's padding border materialised:
 *   act[N][Hp][Wp][2][CW],  Hp = H + 2*pad, Wp = W + 2*pad
 *   [..][0][cw] = sign words, [..][1][cw] = mask words of pixel (n, y, x);
 *   padded pixel (y+pad, x+pad) holds input pixel (y, x).
 *   Border pixels: zero padding (faithful) = mask 0 and sign 0 everywhere;
 *   -1 padding = mask 1, sign 0 on the C real channels.
 * Weights, one filter per output channel, taps (ky, kx) major, channels minor:
 *   wt[O][2][LW],  LW = round_up(KH*KW*CW, 4) (a whole number of 256-bit vectors)
 *   [o][0][(ky*KW + kx)*CW + cw] = sign words, [o][1][...] = mask words; words
 *   from KH*KW*CW to LW are 0.
 * Buffers are uint64_t, allocated by the caller (sizes below, in words);
 * 32-byte alignment helps the AVX2 kernels but is not required. */
#ifndef CBNN_BITPACK_H
#define CBNN_BITPACK_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "real.h"

static inline int bitpack_cw(int C) { return (C + 63) / 64; }
static inline int bitpack_lw(const ConvDims *d) { return (d->KH * d->KW * bitpack_cw(d->C) + 3) / 4 * 4; }
size_t bitpack_act_words(const ConvDims *d);    /* N*Hp*Wp*2*CW */
size_t bitpack_weight_words(const ConvDims *d); /* O*2*LW */

/* C reference packers (the table in bconv_packed.h may hold faster ones) */
void bitpack_act_c(uint64_t *dst /* [bitpack_act_words] */, const real *src /* [N,C,H,W] */,
                   const ConvDims *d, int pad_minus_one);
/* the same from 8-bit codes: cls[code] holds the packed value's bits, 1 = sign (v > 0),
 * 2 = mask (v != 0); one table per tensor maps each code to its sign */
void bitpack_act_codes_c(uint64_t *dst /* [bitpack_act_words] */, const uint8_t *codes /* [N,C,H,W] */,
                         const uint8_t cls[256], const ConvDims *d, int pad_minus_one);
/* cls as two thresholds: cls[c] = 2 (-1) for c < lo, 0 for lo <= c < hi, 3 (+1) for c >= hi
 * (the table of monotone levels c*s + zp); returns 0 when cls has another form */
int bitpack_cls_bands(const uint8_t cls[256], int *lo, int *hi);
/* one filter: dst = the [2][LW] words of output channel o, wo its [C,KH,KW] weights */
void bitpack_weight_row_c(uint64_t *dst /* [2*LW] */, const real *wo /* [C,KH,KW] */, const ConvDims *d);
void bitpack_weight_c(uint64_t *dst /* [bitpack_weight_words] */, const real *w /* [O,C,KH,KW] */,
                      const ConvDims *d);
/* one filter from int8 weights in {-1, 0, +1} (the same words as bitpack_weight_row_c of their reals) */
void bitpack_weight_row_i8_c(uint64_t *dst /* [2*LW] */, const int8_t *wo /* [C,KH,KW] */, const ConvDims *d);
#if !REAL_IS_DOUBLE
/* AVX2 activation packer (float engine only); call only when the CPU has AVX2 */
void bitpack_act_avx2(uint64_t *dst, const real *src, const ConvDims *d, int pad_minus_one);
void bitpack_weight_row_i8_avx2(uint64_t *dst, const int8_t *wo, const ConvDims *d);
/* bitpack_act_codes_c with AVX2 (any cls: one not of bitpack_cls_bands' form takes the C loop) */
void bitpack_act_codes_avx2(uint64_t *dst, const uint8_t *codes, const uint8_t cls[256], const ConvDims *d,
                            int pad_minus_one);
#endif

#endif
