/* Forward of the CycleBNN binary conv on bit-packed operands (forward only;
 * binary_conv_forward's default path, core/binary_conv.c).
 *
 * Operands are ternary {-1, 0, +1} tensors packed by core/bitpack.h (sign and
 * mask planes, channels along the bit axis, padding border materialised):
 *   Y[n][o][y][x] = sum over taps (ky, kx) and channel words of
 *                   popcount(ma & mw) - 2 * popcount((sa ^ sw) & ma & mw)
 *   out = alpha[o] * (real)Y      (alpha NULL: out = (real)Y, the Y that
 *                                  binary_conv saves for dalpha)
 * Y is an exact integer; binary_conv_forward computes the same Y exactly in
 * fp32 (|Y| <= C*K*K < 2^24) and multiplies by alpha[o] once, so the result is
 * bit for bit the faithful path's (tests/test_bconv_packed.c checks it).
 * Zero padding is border mask 0; -1 padding (option) is a border of -1
 * values, chosen at pack time.
 *
 * dav1d style: a table of kernels filled with the C reference, with AVX2
 * versions swapped in when the CPU supports them (pack_act, conv_fwd), and
 * an AVX-512 VPOPCNTDQ conv_fwd on top where present. The SIMD convs gather
 * each output row's patches into filter-shaped buffers, sweep 4 filters over
 * the row, and give blocks of 4 zero-free filters (the faithful case: sign of
 * continuous weights) a one-popcount path: with mw full, ma & mw = ma, whose
 * popcount is counted once per pixel. That relies on the layout invariant
 * that bits of channels >= C are 0 in the activation mask (bitpack.h). Every entry of every table
 * produces identical bits. */
#ifndef CBNN_BCONV_PACKED_H
#define CBNN_BCONV_PACKED_H

#include <stdint.h>

#include "bitpack.h"
#include "cpu.h"
#include "ops.h"
#include "real.h"

typedef struct {
    /* dst [bitpack_act_words(d)] from src [N,C,H,W] (pad and stride from d) */
    void (*pack_act)(uint64_t *dst, const real *src, const ConvDims *d, int pad_minus_one);
    /* dst [bitpack_weight_words(d)] from w [O,C,KH,KW] */
    void (*pack_weight)(uint64_t *dst, const real *w, const ConvDims *d);
    /* one filter's [2][LW] words from its int8 weights [C,KH,KW] in {-1, 0, +1} (the
     * forward's fused weight path, per output channel inside its own parallel loop) */
    void (*pack_weight_i8)(uint64_t *dst, const int8_t *wo, const ConvDims *d);
    /* dst [bitpack_act_words(d)] from k-bit codes [N,C,H,W] and their classes
     * (bitpack_act_codes_c: cls[code] 1 = sign, 2 = mask) */
    void (*pack_act_codes)(uint64_t *dst, const uint8_t *codes, const uint8_t cls[256], const ConvDims *d,
                           int pad_minus_one);
    /* out [N,O,OH,OW]; alpha [O] or NULL; OpenMP over output rows, results
     * independent of the thread count (integer sums) */
    void (*conv_fwd)(real *out, const uint64_t *act, const uint64_t *wt, const real *alpha, const ConvDims *d);
    const char *name; /* "c", "avx2", "avx512-vpopcntdq" */
} BconvPackedFns;

/* what the tables need, as core/cpu.h masks: AVX2 = AVX2 + POPCNT (pack_act and
 * conv_fwd); AVX512 = AVX-512 F + VL + VPOPCNTDQ (conv_fwd; Zen 4/5, Ice Lake and
 * later), on top of the AVX2 table */
#define BCONV_CPU_AVX2 (CPU_AVX2 | CPU_POPCNT)
#define BCONV_CPU_AVX512 (CPU_AVX512F | CPU_AVX512VL | CPU_AVX512VPOPCNTDQ)

/* the BCONV_CPU_* groups that cpu_features() holds whole */
unsigned bconv_packed_cpu_flags(void);
/* the best table whose features are all in cpu_mask & cpu_features() (the C
 * reference when none: cpu_mask = 0 forces C) */
void bconv_packed_init_fns(BconvPackedFns *f, unsigned cpu_mask);
/* the best table for cpu_features() (CBNN_SIMD / CBNN_NO_SIMD, and a test's
 * lowered mask, core/cpu.h); thread-safe */
const BconvPackedFns *bconv_packed_fns(void);

/* the C reference conv (also in the C table) */
void bconv_packed_fwd_c(real *out, const uint64_t *act, const uint64_t *wt, const real *alpha, const ConvDims *d);

#endif
