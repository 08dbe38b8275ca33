/* Backward of the CycleBNN binary conv on 8-bit error codes (integer kernels).
 *
 * In binary_conv_backward the quantized error is dY = fl(fl(code * s) + zp)
 * (grad_quant, core/quant.c) with code an integer in [0, qmax], qmax <= 255
 * for grad_bits <= 8, and both conv products multiply it by ternary tensors
 * (Ba, Bw in {-1, 0, +1}). Split dY = s*code + zp (exact real arithmetic):
 *
 *   dgrad  dBa[n,c,h,w] = s * I + zp * S,
 *          I = sum_{o,kh,kw} code[n,o,oh,ow] * Bw[o,c,kh,kw],   S = sum_{o,kh,kw} Bw[o,c,kh,kw]
 *          over the (oh, ow) with oh*stride - pad + kh = h, ow*stride - pad + kw = w
 *   wgrad  dBw[o,c,kh,kw] = s * I + zp * S,
 *          I = sum_{n,oh,ow} code[n,o,oh,ow] * Ba[n,c,ih,iw],  S = sum_{n,oh,ow} Ba[n,c,ih,iw]
 *          with ih = oh*stride - pad + kh, iw = ow*stride - pad + kw (zero outside the input)
 *
 * I and S are exact integers (int32 accumulation; int64 in the reference).
 * The float is formed ONCE per output, in double, then rounded to real:
 *
 *   out = (real)((double)s * (double)I + (double)zp * (double)S)
 *
 * (no FMA: the build is -std=c11, so no contraction). Every table computes
 * the same I and S and forms the float with this one expression (common C
 * code), so every table gives bitwise the same output, for any thread count.
 * Compared with the fp32 path (conv2d_backward of the dequantized dY) the
 * result differs only by that path's rounding: it rounds each dY element to
 * real and then the sgemm sum, here the sum is exact and rounded once (double
 * products of a 24-bit s by an integer < 2^31 are within 2^-53 relative).
 *
 * Limits: |I| must fit int32: 255 * O*KH*KW (dgrad) and 255 * N*OH*OW (wgrad)
 * below 2^31 (N*OH*OW < 8.4M; ResNet-18/ImageNet at batch 256 is 0.8M):
 * bconv_bwd_int8_fits; dgrad/wgrad abort beyond it, bconv_bwd_int8_products
 * refuses (falls back).
 * The int8 operands must be in {-1, 0, +1} (the AVX2 kernel's vpmaddubsw pairs
 * and int16 partial sums rely on |w| <= 1). Zero padding only; -1 padding is
 * had by passing an explicitly -1-padded Ba with pad 0 (as the fp32 path does).
 *
 * Operand layouts (the engine's NCHW):
 *   codes u8 [N, O, OH, OW]   from bconv_bwd_quant_codes
 *   bw    s8 [O, C, KH, KW]   Bw (bconv_bwd_sign_i8 of the saved fp32 Bw)
 *   ba    s8 [N, C, H, W]     Ba (bconv_bwd_sign_i8 of Aq, sign(0) per option)
 * Outputs are STORED (=), not accumulated: no zeroing needed.
 *
 * Kernels. Both products run as an int8 GEMM with one operand broadcast four
 * bytes at a time (s8, the ternary one) and the other packed in groups of 4
 * along the reduction (u8, the codes), the reduction split in segments that
 * each shift the A rows and the B columns by their own offset. One
 * micro-kernel per table: C loops; AVX2 vpmaddubsw + int16 partial sums (at
 * most 64 steps: 64*510 < 2^15) + vpmaddwd; AVX-VNNI ymm vpdpbusd (6x16
 * tile); AVX-512 VNNI zmm vpdpbusd (6x64 tile). Common drivers (their
 * elementwise helpers compiled per target):
 *   dgrad, direct (H*W >= 64 * stride^2), one sample per unit: the codes go
 *          into a zero-bordered grid and, per output stride phase, I[c][a*Wg + b]
 *          = sum over the phase's taps of A_tap[c][o] x grid shifted by the tap:
 *          no im2col, no col2im;
 *   dgrad, otherwise, groups of samples side by side in the columns (64 columns
 *          at least), C[CK, cols] = Bw^T x codes in row chunks of whole channels,
 *          each scattered by an int32 col2im into I[C, H, W] (AVX-512, maps
 *          of at most 16 pixels: one masked vpermd + add per tap and channel);
 *          S in both: the column sums of Bw summed over the taps that reach each
 *          input pixel (separable in rows and columns), once per call;
 *   wgrad, units of 24 rows (c,kh,kw): Ba is rewritten once per call into
 *          zero-padded stride-phase planes, where every im2col row of a tap is
 *          contiguous (rows of Wq = ceil((W + 2 pad)/stride) pixels; the codes
 *          get zeros in the Wq - OW extra columns): C[rows, O] = rows x codes^T
 *          with one segment per sample, no im2col; S = window sums of the
 *          planes summed over samples. Where the Wq - OW dead columns are
 *          1/4 of OW or more (4x4, 8x8 maps), each unit copies its rows'
 *          live bytes out of the planes per chunk of samples instead (codes
 *          packed with OW per row): up to 1/3 fewer MACs.
 * Each output is owned by one work unit whose shape depends on the dims only,
 * and the sums are integers: the results do not depend on OMP_NUM_THREADS.
 *
 * Memory: the kernels allocate their own buffers per call (aligned_alloc):
 * about N*C*(H+2p)*(W+2p) + N*OH*Wq*round16(O) bytes for wgrad, O*C*KH*KW
 * bytes + 4*C*H*W*(1 + threads) + a 256 KB int32 block per thread for dgrad.
 *
 * Use in binary_conv_backward (see bconv_bwd_int8_products):
 *   codes, zp, s = bconv_bwd_quant_codes(dout, alpha, noise)   (instead of dy = dout*alpha; grad_quant;
 *                  the noise drawn per block where it is used: QuantNoise)
 *   ba8 = sign of Aq as int8 (bconv_bwd_sign_i8, or bconv_bwd_i8_from_codes from the saved activation codes)
 *   bw8 = Bw as int8 (bconv_bwd_sign_i8 of the saved Bw; or saved as int8 by the forward)
 *   dBa = dgrad(codes, bw8), dBw = wgrad(codes, ba8)            (instead of conv2d_backward)
 * and the fp32 path when bconv_bwd_quant_codes returns nonzero. */
#ifndef CBNN_BCONV_BWD_INT8_H
#define CBNN_BCONV_BWD_INT8_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "ops.h"
#include "quant.h"
#include "real.h"

typedef struct {
    /* dx [N,C,H,W] = dgrad (see above); codes [N,O,OH,OW]; bw [O,C,KH,KW] */
    void (*dgrad)(real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s, const ConvDims *d);
    /* dw [O,C,KH,KW] = wgrad; codes [N,O,OH,OW]; ba [N,C,H,W] */
    void (*wgrad)(real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s, const ConvDims *d);
    /* bconv_bwd_quant_codes (below) with this table's codes loop (C, AVX2 or AVX-512; same codes) */
    int (*quant_codes)(uint8_t *codes, real *zp, real *s, real *g, const real *dout, const real *alpha, int N, int O,
                       size_t OHW, double bits, const QuantNoise *noise);
    /* The pieces of quant_codes and wgrad a sharded backward needs (issue 15,
     * binary_conv.c: the range is the whole batch's, over the ranks, and the
     * integer sums are added over the ranks before the float is formed):
     * err_minmax: quant_codes' first pass, the min and max of x = dout * alpha[o]
     *   over these rows (the same blocks and combination, so the same values);
     *   returns 1 when some x is NaN. N*O*OHW > 0.
     * err_codes: its second pass with a given zp, s (finite), qmax <= 255;
     *   returns 1 when some y is NaN (not possible when every x, zp, s and
     *   noise draw is finite).
     * wgrad_sums: wgrad's exact sums before the float, isum [O,C,KH,KW] = I,
     *   ssum [C,KH,KW] = S (S does not depend on o); then
     *   dw = bconv_bwd_int8_out(s, zp, I, S) is wgrad's output, bitwise. */
    int (*err_minmax)(real *mn, real *mx, const real *dout, const real *alpha, int N, int O, size_t OHW);
    int (*err_codes)(uint8_t *codes, const real *dout, const real *alpha, const QuantNoise *noise, int N, int O,
                     size_t OHW, real zp, real s, real qmax);
    void (*wgrad_sums)(int64_t *isum, int64_t *ssum, const uint8_t *codes, const int8_t *ba, const ConvDims *d);
    const char *name;
} BconvBwdInt8Fns;

/* what the kernels need, as core/cpu.h masks (the AVX-VNNI and AVX-512 tables also need AVX2) */
#define BWD8_CPU_AVX2 CPU_AVX2          /* AVX2: vpmaddubsw / vpmaddwd */
#define BWD8_CPU_AVXVNNI CPU_AVXVNNI    /* AVX-VNNI: VEX vpdpbusd on ymm (Alder Lake, Zen 5) */
#define BWD8_CPU_AVX512VNNI (CPU_AVX512F | CPU_AVX512BW | CPU_AVX512VL | CPU_AVX512VNNI) /* zmm vpdpbusd (Ice Lake, Zen 4/5) */

/* the BWD8_CPU_* groups that cpu_features() holds whole */
unsigned bconv_bwd_int8_cpu_flags(void);
/* the best table ("c", "avx2", "avx-vnni", "avx512-vnni") whose features are all in
 * cpu_mask & cpu_features(); cpu_mask = 0 forces C */
void bconv_bwd_int8_init_fns(BconvBwdInt8Fns *f, unsigned cpu_mask);
/* the best table for cpu_features() (CBNN_SIMD / CBNN_NO_SIMD, and a test's
 * lowered mask, core/cpu.h); thread-safe */
const BconvBwdInt8Fns *bconv_bwd_int8_fns(void);
/* 1 when that table is a SIMD one. The C table is a portable reference, about
 * 5x SLOWER than the fp32 BLAS path (155 vs 30 ms on 128->128 16x16, batch 16):
 * an engine should take the integer path only when this is 1 (the results
 * differ from the fp32 path's by float rounding only, so the choice is free). */
int bconv_bwd_int8_simd(void);

/* The error quantizer emitting codes, fused with dY = dout * alpha[o] (the best table's):
 *   x = dout * alpha[o]                       (one real product, as binary_conv_backward)
 *   zp, R = min x, max x - min x              (the values of quant_minmax_params(x), grad_quant's
 *                                             reduction; a zero zp may have the other sign, which
 *                                             changes no code and no output)
 *   s = quant_scale(R, bits), qmax = quant_qmax(bits)
 *   y = (x - zp) / s [+ draw i], clamp to [0, qmax], round half even -> code
 * exactly grad_quant's steps, so fl(fl(code * s) + zp) == grad_quant(x) bitwise. Two
 * passes over dout (min/max, then codes); no dY tensor is written.
 * dout [N*O*OHW], codes [N*O*OHW], noise: element i's U(-0.5, 0.5) draw (an array, or
 * drawn from the stream per block of rows into a small per-thread buffer, see
 * QuantNoise in core/quant.h; bitwise the same codes) or NULL (deterministic
 * rounding), g [N*O*OHW] scratch for the fallback (may be dout).
 * Returns 0 on success (g untouched); -1 when the codes cannot represent the
 * quantizer: bits == 0 or 2^bits - 1 > 255, or a NaN / inf in x or the range.
 * Then g = dout * alpha (the engine's dY before grad_quant) and the caller runs
 * the fp32 path (grad_quant(g) + conv2d_backward); codes are undefined. */
int bconv_bwd_quant_codes(uint8_t *codes, real *zp, real *s, real *g, const real *dout, const real *alpha, int N,
                          int O, size_t OHW, double bits, const QuantNoise *noise);

/* dst = sign(src) as int8: +1, -1, and for 0: 0 (zero_is_plus_one = 0, torch.sign) or +1
 * (a NaN gets the zero case, as sign_value) */
void bconv_bwd_sign_i8(int8_t *dst, const real *src, size_t n, int zero_is_plus_one);
/* dst[i] = (int8)sval[codes[i]]: Ba from saved k-bit activation codes, sval[256] the sign of each
 * code's dequantized value (binary_conv's CodeTables.sval), values in {-1, 0, +1} */
void bconv_bwd_i8_from_codes(int8_t *dst, const uint8_t *codes, size_t n, const real *sval);

/* The whole pair with the best table: quantize the error to codes (g [N*O*OH*OW] and
 * codes [N*O*OH*OW] are caller scratch), then dba = dgrad (skipped when dba is NULL)
 * and dbw = wgrad, both STORED. ba [N,C,H,W] and bw [O,C,KH,KW] int8 in {-1, 0, +1}.
 * Returns 0; or -1 when the codes cannot represent the error (bits 0 or > 8, a
 * non-finite value: see bconv_bwd_quant_codes) or the dims do not fit int32
 * sums (bconv_bwd_int8_fits), with dba/dbw untouched and g =
 * dout * alpha: the caller then runs grad_quant(g) and conv2d_backward. */
int bconv_bwd_int8_products_nz(real *dba, real *dbw, real *g, uint8_t *codes, const real *dout, const real *alpha,
                               const QuantNoise *noise, double grad_bits, const int8_t *ba, const int8_t *bw,
                               const ConvDims *d);
/* the same with the draws as an array noise [N*O*OH*OW] (or NULL) */
int bconv_bwd_int8_products(real *dba, real *dbw, real *g, uint8_t *codes, const real *dout, const real *alpha,
                            const real *noise, double grad_bits, const int8_t *ba, const int8_t *bw,
                            const ConvDims *d);

/* 1 when the int32 sums cannot overflow for these dims (see Limits above) */
int bconv_bwd_int8_fits(const ConvDims *d);

/* dgrad's direct path (H*W >= 64 * stride^2: no col2im) on (1, the
 * default) or off (0: the GEMM + col2im path everywhere, for tests and benchmarks;
 * CBNN_BWD8_NO_DIRECT=1 in the environment sets off). Both give the same bits.
 * Not thread-safe: call before the kernels run. */
void bconv_bwd_int8_set_dgrad_direct(int enable);

/* wgrad's compact mode (see bconv_bwd_int8.c: the A rows copied out of the
 * phase planes without their dead columns, for small images): -1 by the dims
 * (the default), 0 never, 1 always (tests and benchmarks of both; the
 * environment's CBNN_BWD8_WGRAD_COMPACT=0/1 sets 0/1). Every mode gives the
 * same bits. Not thread-safe: call before the kernels run. */
void bconv_bwd_int8_set_wgrad_compact(int mode);

/* the direct-loop definitions (int64 sums, the float formed as above); the tables are tested against them */
void bconv_bwd_int8_dgrad_ref(real *dx, const uint8_t *codes, const int8_t *bw, real zp, real s, const ConvDims *d);
void bconv_bwd_int8_wgrad_ref(real *dw, const uint8_t *codes, const int8_t *ba, real zp, real s, const ConvDims *d);

/* the float of one output (shared by every table and the references) */
static inline real bconv_bwd_int8_out(real s, real zp, long long isum, long long ssum) {
    return (real)((double)s * (double)isum + (double)zp * (double)ssum);
}

#endif
