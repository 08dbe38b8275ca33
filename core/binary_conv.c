/* The CycleBNN binary convolution of core/binary_conv.h, composed from the
 * named quantizers of core/quant.c and the fp32 conv kernels of core/ops.h.
 *
 * The forward 1-bit conv runs on the bit-packed kernels of core/bconv_packed.h
 * (Y an exact integer sum of popcounts), or with opt->conv_fp32 = 1 (or
 * CBNN_BCONV_FP32=1 in the environment) on the fp32 conv kernel: Ba and Bw hold
 * values in {-1, 0, +1}, so every product is exact and every partial sum is an
 * integer far below 2^24; Y is exact in float whatever the summation order, so
 * both paths give bitwise the same Y, out and saved. The two
 * backward products reuse conv2d_backward with inp = Ba, weight = Bw and
 * dout = the quantized error; it accumulates, so it gets zeroed buffers and
 * the pseudo-gradients are applied afterwards.
 *
 * -1 padding (option): Ba is materialised with a -1 border of width pad and
 * the conv runs unpadded on it; the gradient reaching that border is a
 * constant's and is dropped when dBa is cropped back.
 *
 * saved (per layer, what backward needs), in reals:
 *   hdr[HDR_N]   flags and scalars of this forward pass (see enum below)
 *   sig_w[O], mean_w[O]     E2 statistics
 *   sig_a[N], mean_a[N]     E3 statistics (unused in eval)
 *   bw8[O*CK]    Bw as int8 {-1, 0, +1} (the integer backward's operand as it is)
 *   act          what the activation side of backward needs, one of
 *                  codes[N*C*H*W] uint8: the k-bit codes of Aq (opt->save_act_codes,
 *                    1 <= k <= 8): Aq = lut[code] exactly (quant_dequant_lut with
 *                    the zp and range in hdr), so Ba = sign(Aq) and the
 *                    ApproxSign factor are 256-entry tables
 *                  aq[N*C*H*W] real: Aq itself (any k, including 0 and 32)
 *                One input-sized tensor either way, instead of Ba and the factor.
 *   y[N*O*OH*OW] Y, for dalpha: int16 when |Y| <= C*KH*KW fits (every model
 *                here), else real
 * Weights W1 (E2's output) are not saved: only the ReCU clamp's mask needs
 * them, and its backward recomputes them (the same function of the same W).
 * scratch (shared between layers):
 *   ba[N*C*Hp*Wp]   Ba (padded when pad -1); in backward then the cropped dA0
 *   dba[N*C*Hp*Wp]  dBa; in a codes forward, A0 (E3's output)
 *   dy[N*O*OH*OW]   quantized error
 *   dbw[O*CK], dw1[O*CK]  (in forward, dw1 holds Bw as reals for packing / the fp32 conv)
 *   w1[O*CK], wsig[O], wmean[O]   W1 and its statistics (forward; clamp backward)
 *   conv            conv2d scratch (the padded and unpadded shapes need the same)
 *   pa, pw          packed forward operands, uint64 words (bitpack_act_words,
 *                   bitpack_weight_words), 64-byte aligned offsets
 *   ba8, codes      the integer backward's operands (bytes): Ba [N*C*Hp*Wp] as
 *                   int8, the error codes [N*O*OH*OW]
 * Hp = H + 2*pad is reserved whatever the option, so the sizes depend on the
 * dims (and, for saved, opt->save_act_codes) alone. */
#include "binary_conv.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bconv_bwd_int8.h"
#include "bconv_packed.h"
#include "bitpack.h"
#include "quant.h"

enum {
    H_ACT_NORMED = 0, /* 1 if E3 ran (training with act_norm): backward applies its Jacobian */
    H_ACT_ZP,         /* activation quantizer zero point used */
    H_ACT_RANGE,      /* and its range */
    H_RECU_Q,         /* ReCU clamp bound (inf when off) */
    H_BITS,           /* k of this forward */
    H_CODES,          /* 1 if act holds codes (else Aq) */
    HDR_N = 8
};

BinaryConvOptions binary_conv_faithful(void) {
    BinaryConvOptions o;
    o.sign_zero = SIGN_ZERO_IS_ZERO;
    o.pad_minus_one = 0;
    o.act_grad = ACT_GRAD_APPROX_SIGN;
    o.act_norm = 1;
    o.weight_center = 0;
    o.recu_clamp = 0;
    o.clamp_tau = 1.0; /* the upstream buffer's initial value (Q = +inf) */
    o.grad_quant = 1;
    o.grad_stochastic = 1;
    o.conv_fp32 = 0;
    o.save_act_codes = 0;
    o.bwd_fp32 = 0;
    return o;
}

typedef struct { size_t hdr, sig_w, mean_w, sig_a, mean_a, bw8, act, y, total; int y16; } SavedLayout;
typedef struct { size_t ba, dba, dy, dbw, dw1, w1, wsig, wmean, conv, pa, pw, ba8, codes, total; } ScratchLayout;

static size_t ck_of(const ConvDims *d) { return (size_t)d->C * d->KH * d->KW; }
static size_t nin_of(const ConvDims *d) { return (size_t)d->N * d->C * d->H * d->W; }
static size_t nout_of(const ConvDims *d) { return (size_t)d->N * d->O * d->OH * d->OW; }
static size_t nin_padded(const ConvDims *d) {
    return (size_t)d->N * d->C * (size_t)(d->H + 2 * d->pad) * (size_t)(d->W + 2 * d->pad);
}
/* the conv on a Ba that already carries its (-1) border */
static ConvDims padded_dims(const ConvDims *d) {
    ConvDims p = *d;
    p.H += 2 * d->pad;
    p.W += 2 * d->pad;
    p.pad = 0;
    return p;
}
static int pad_m1(const ConvDims *d, const BinaryConvOptions *opt) { return opt->pad_minus_one && d->pad > 0; }

/* reals holding n uint64 words; offsets rounded to 64 bytes */
static size_t words_in_reals(size_t n) { return (n * sizeof(uint64_t) + sizeof(real) - 1) / sizeof(real); }
static size_t round_up_reals(size_t n) {
    const size_t a = 64 / sizeof(real);
    return (n + a - 1) / a * a;
}

/* reals holding n bytes */
static size_t bytes_in_reals(size_t n) { return (n + sizeof(real) - 1) / sizeof(real); }

static SavedLayout saved_layout(const ConvDims *d, int codes) {
    SavedLayout L;
    size_t o = 0;
    L.y16 = ck_of(d) <= 32767;
    L.hdr = o; o += HDR_N;
    L.sig_w = o; o += (size_t)d->O;
    L.mean_w = o; o += (size_t)d->O;
    L.sig_a = o; o += (size_t)d->N;
    L.mean_a = o; o += (size_t)d->N;
    L.bw8 = o; o += bytes_in_reals((size_t)d->O * ck_of(d));
    L.act = o; o += codes ? bytes_in_reals(nin_of(d)) : nin_of(d);
    L.y = o; o += L.y16 ? bytes_in_reals(nout_of(d) * sizeof(int16_t)) : nout_of(d);
    L.total = o;
    return L;
}

static ScratchLayout scratch_layout(const ConvDims *d) {
    ScratchLayout S;
    ConvDims p = padded_dims(d);
    size_t cs = conv2d_scratch_size(d), cp = conv2d_scratch_size(&p);
    size_t o = 0;
    S.ba = o; o += nin_padded(d);
    S.dba = o; o += nin_padded(d);
    S.dy = o; o += nout_of(d);
    S.dbw = o; o += (size_t)d->O * ck_of(d);
    S.dw1 = o; o += (size_t)d->O * ck_of(d);
    S.w1 = o; o += (size_t)d->O * ck_of(d);
    S.wsig = o; o += (size_t)d->O;
    S.wmean = o; o += (size_t)d->O;
    S.conv = o; o += cs > cp ? cs : cp;
    /* the packed forward's operands (uint64 words), each 64-byte aligned
     * relative to the (arena-aligned) scratch base */
    o = round_up_reals(o);
    S.pa = o; o += round_up_reals(words_in_reals(bitpack_act_words(d)));
    S.pw = o; o += round_up_reals(words_in_reals(bitpack_weight_words(d)));
    /* the integer backward's operands (bytes): Ba as int8, the error codes */
    S.ba8 = o; o += round_up_reals(bytes_in_reals(nin_padded(d)));
    S.codes = o; o += round_up_reals(bytes_in_reals(nout_of(d)));
    S.total = o;
    return S;
}

static int codes_of(const BinaryConvOptions *opt) { return opt && opt->save_act_codes; }
size_t binary_conv_saved_size(const ConvDims *d, const BinaryConvOptions *opt) {
    return saved_layout(d, codes_of(opt)).total;
}
void binary_conv_saved_bw(real *out, const real *saved, const ConvDims *d, const BinaryConvOptions *opt) {
    const int8_t *b = (const int8_t *)(const void *)(saved + saved_layout(d, codes_of(opt)).bw8);
    for (size_t i = 0; i < (size_t)d->O * ck_of(d); i++) out[i] = (real)b[i];
}
size_t binary_conv_scratch_size(const ConvDims *d) { return scratch_layout(d).total; }

/* Ba = sign(Aq): [N,C,H,W], or [N,C,H+2p,W+2p] with a -1 border. Aq is given
 * as reals (aq) or as codes with sval[code] = sign(lut[code]). */
static void make_ba(real *ba, const real *aq /* [N,C,H,W] or NULL */, const uint8_t *codes /* or this */,
                    const real sval[256], const ConvDims *d, const BinaryConvOptions *opt) {
    const int zplus = opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE;
    const int H = d->H, W = d->W, p = pad_m1(d, opt) ? d->pad : 0, Hp = H + 2 * p, Wp = W + 2 * p;
    if (!p && aq) {
        sign_forward(ba, aq, nin_of(d), zplus);
        return;
    }
    const long planes = (long)d->N * d->C;
    #pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        real *dst = ba + (size_t)pl * Hp * Wp;
        for (int i = 0; i < Hp; i++) {
            real *row = dst + (size_t)i * Wp;
            if (i < p || i >= H + p) {
                for (int j = 0; j < Wp; j++) row[j] = (real)-1;
                continue;
            }
            const size_t k0 = (size_t)pl * H * W + (size_t)(i - p) * W;
            for (int j = 0; j < p; j++) row[j] = (real)-1;
            if (aq)
                for (int j = 0; j < W; j++) row[p + j] = sign_value(aq[k0 + j], zplus);
            else
                for (int j = 0; j < W; j++) row[p + j] = sval[codes[k0 + j]];
            for (int j = W + p; j < Wp; j++) row[j] = (real)-1;
        }
    }
}

/* make_ba as int8 (the integer backward's operand) */
static void make_ba8(int8_t *ba, const real *aq, const uint8_t *codes, const real sval[256], const ConvDims *d,
                     const BinaryConvOptions *opt) {
    const int zplus = opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE;
    const int H = d->H, W = d->W, p = pad_m1(d, opt) ? d->pad : 0, Hp = H + 2 * p, Wp = W + 2 * p;
    if (!p) {
        if (codes) bconv_bwd_i8_from_codes(ba, codes, nin_of(d), sval);
        else bconv_bwd_sign_i8(ba, aq, nin_of(d), zplus);
        return;
    }
    const long planes = (long)d->N * d->C;
    #pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        int8_t *dst = ba + (size_t)pl * Hp * Wp;
        memset(dst, -1, (size_t)Hp * Wp);
        for (int i = 0; i < H; i++) {
            const size_t k0 = (size_t)pl * H * W + (size_t)i * W;
            int8_t *row = dst + (size_t)(i + p) * Wp + p;
            if (codes) bconv_bwd_i8_from_codes(row, codes + k0, (size_t)W, sval);
            else bconv_bwd_sign_i8(row, aq + k0, (size_t)W, zplus);
        }
    }
}

/* the tables of a codes tensor: Aq = lut[code], sval = sign(Aq), cls = its
 * packed bits (1 = sign, 2 = mask: bitpack_act_codes_c), fac = the ApproxSign factor */
typedef struct {
    real lut[256], sval[256], fac[256];
    uint8_t cls[256];
} CodeTables;

static void code_tables(CodeTables *t, real zp, real range, double bits, int zplus) {
    quant_dequant_lut(t->lut, zp, quant_scale(range, bits), quant_qmax(bits));
    for (int c = 0; c < 256; c++) {
        const real v = sign_value(t->lut[c], zplus);
        t->sval[c] = v;
        t->cls[c] = (uint8_t)((v > 0 ? 1 : 0) | (v != 0 ? 2 : 0));
        t->fac[c] = approx_sign_grad(t->lut[c]);
    }
}

static BinaryConvProfile *g_prof;
void binary_conv_set_profile(BinaryConvProfile *p) { g_prof = p; }
/* add the seconds since *t to the phase `field` and restart the clock */
#define PROF_LAP(field, t)                          \
    do {                                            \
        if (g_prof) {                               \
            const double now_ = omp_get_wtime();    \
            g_prof->field += now_ - (t);            \
            (t) = now_;                             \
        }                                           \
    } while (0)

/* CBNN_BCONV_FP32=1 forces the fp32 conv everywhere; read once, not per layer call */
static int env_forces_fp32(void) {
    static int forced = -1;
    if (forced < 0) {
        const char *e = getenv("CBNN_BCONV_FP32");
        forced = e && e[0] == '1';
    }
    return forced;
}

void binary_conv_forward(real *out /* [N,O,OH,OW] */, real *saved, real *running /* [2] */,
                         const real *inp /* [N,C,H,W] */, const real *weight /* [O,C,K,K] */,
                         const real *alpha /* [O] */, const ConvDims *d, double bits, int train,
                         const BinaryConvOptions *opt, real *scratch) {
    const int codes_mode = codes_of(opt);
    const SavedLayout L = saved_layout(d, codes_mode);
    const ScratchLayout S = scratch_layout(d);
    const int O = d->O, N = d->N;
    const size_t CK = ck_of(d), nin = nin_of(d), CHW = (size_t)d->C * d->H * d->W;
    const size_t OHW = (size_t)d->OH * d->OW;
    const int zplus = opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE;
    real *hdr = saved + L.hdr, *w1 = scratch + S.w1, *bw = scratch + S.dw1;
    int8_t *bw8 = (int8_t *)(void *)(saved + L.bw8);
    real *ba = scratch + S.ba;
    double tp = g_prof ? omp_get_wtime() : 0.0;
    if (g_prof) g_prof->calls_fwd++;
    if (codes_mode && !(bits >= 1 && bits <= 8)) {
        /* a caller bug: the saved space was sized for 8-bit codes (model.c decides it from the schedule) */
        fprintf(stderr, "binary_conv_forward: save_act_codes needs 1 <= bits <= 8, got %g\n", bits);
        abort();
    }

    /* weights: E2 (train and eval), optional ReCU clamp, k-bit per channel (E4/E5), sign */
    real q = (real)INFINITY;
    const int packed = !(opt->conv_fp32 || env_forces_fp32());
    uint64_t *pw = (uint64_t *)(void *)(scratch + S.pw);
    if (packed && !opt->recu_clamp) {
        /* every step is per output channel: one pass, channel by channel, the
         * row staying in cache (the same row functions as the unfused path,
         * so the same values), ending in the int8 Bw and its packed bits */
        const real qmax = bits == 0 ? 0 : quant_qmax(bits);
        const size_t LW = (size_t)bitpack_lw(d);
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < O; o++) {
            real *w1o = w1 + (size_t)o * CK, *bwo = bw + (size_t)o * CK;
            weight_standardize_row(w1o, saved + L.sig_w + o, saved + L.mean_w + o, weight + (size_t)o * CK, CK,
                                   opt->weight_center);
            minmax_uniform_row(bwo, NULL, NULL, w1o, CK, bits, qmax); /* Wq */
            int8_t *b8 = bw8 + (size_t)o * CK;
            for (size_t i = 0; i < CK; i++) {
                bwo[i] = sign_value(bwo[i], zplus); /* Bw */
                b8[i] = (int8_t)bwo[i];
            }
            bitpack_weight_row_c(pw + (size_t)o * 2 * LW, bwo, d);
        }
    } else {
        weight_standardize_forward(w1, saved + L.sig_w, saved + L.mean_w, weight, O, CK, opt->weight_center);
        const real *w2 = w1;
        if (opt->recu_clamp) {
            q = recu_clamp_q(w1, (size_t)O * CK, opt->clamp_tau);
            recu_clamp_forward(bw, w1, (size_t)O * CK, q);
            w2 = bw;
        }
        minmax_uniform_per_channel(bw, NULL, NULL, w2, O, CK, bits); /* Wq (bw used as the buffer) */
        sign_forward(bw, bw, (size_t)O * CK, zplus);                /* Bw */
        bconv_bwd_sign_i8(bw8, bw, (size_t)O * CK, 0);              /* saved for backward as int8 */
        if (packed) bconv_packed_fns()->pack_weight(pw, bw, d);
    }
    PROF_LAP(fwd_weight, tp);

    /* activations: E3 (training only), k-bit per tensor with the batch range
     * (train) or the running range (eval), then Ba */
    const int normed = train && opt->act_norm;
    real zp = 0, range = 0;
    real *aq = NULL;                /* Aq as reals (fp32 saved) */
    uint8_t *codes = NULL;          /* or its codes */
    CodeTables tab;
    if (codes_mode) {
        codes = (uint8_t *)(void *)(saved + L.act);
        const real *a0 = inp;
        if (normed) {
            real *t = scratch + S.dba;
            act_normalize_forward(t, saved + L.sig_a, saved + L.mean_a, inp, N, CHW);
            a0 = t;
        }
        minmax_per_tensor_params(&zp, &range, running, a0, nin, train);
        quant_codes_u8(codes, a0, nin, zp, quant_scale(range, bits), quant_qmax(bits));
        code_tables(&tab, zp, range, bits, zplus);
    } else {
        aq = saved + L.act;
        if (normed) act_normalize_forward(aq, saved + L.sig_a, saved + L.mean_a, inp, N, CHW);
        else memcpy(aq, inp, nin * sizeof(real));
        minmax_uniform_per_tensor(aq, running, &zp, &range, aq, nin, bits, train); /* Aq */
    }
    if (!normed)
        for (int n = 0; n < N; n++) {
            saved[L.sig_a + n] = 1;
            saved[L.mean_a + n] = 0;
        }
    PROF_LAP(fwd_act, tp);

    /* the 1-bit conv Y (into out), then out = Y * alpha (the error-quantization
     * hook sits between them and is the identity here). Y is an exact integer
     * either way. */
    if (!packed) {
        make_ba(ba, aq, codes, tab.sval, d, opt);
        ConvDims dc = pad_m1(d, opt) ? padded_dims(d) : *d;
        conv2d_forward(out, ba, bw, &dc, scratch + S.conv);
    } else {
        /* packed: sign(v) with sign(0) = 0 is what pack_act stores, so Aq packs
         * as Ba directly; sign(0) = +1 packs Ba = sign(Aq) (unpadded, in ba);
         * codes pack through their table. -1 padding is the packed border. */
        const BconvPackedFns *f = bconv_packed_fns();
        uint64_t *pa = (uint64_t *)(void *)(scratch + S.pa);
        if (codes) {
            bitpack_act_codes_c(pa, codes, tab.cls, d, pad_m1(d, opt));
        } else {
            const real *asrc = aq;
            if (zplus) {
                sign_forward(ba, aq, nin, 1);
                asrc = ba;
            }
            f->pack_act(pa, asrc, d, pad_m1(d, opt));
        }
        PROF_LAP(fwd_act, tp);
        f->conv_fwd(out, pa, pw, NULL, d);
    }
    int16_t *y16 = L.y16 ? (int16_t *)(void *)(saved + L.y) : NULL;
    real *yr = L.y16 ? NULL : saved + L.y;
    #pragma omp parallel for schedule(static)
    for (long no = 0; no < (long)N * O; no++) {
        const real a = alpha[no % O];
        real *dst = out + (size_t)no * OHW;
        if (y16)
            for (size_t i = 0; i < OHW; i++) y16[(size_t)no * OHW + i] = (int16_t)dst[i];
        else
            memcpy(yr + (size_t)no * OHW, dst, OHW * sizeof(real));
        for (size_t i = 0; i < OHW; i++) dst[i] = dst[i] * a;
    }

    PROF_LAP(fwd_conv, tp);
    for (int i = 0; i < HDR_N; i++) hdr[i] = 0;
    hdr[H_ACT_NORMED] = (real)normed;
    hdr[H_ACT_ZP] = zp;
    hdr[H_ACT_RANGE] = range;
    hdr[H_RECU_Q] = q;
    hdr[H_BITS] = (real)bits;
    hdr[H_CODES] = (real)codes_mode;
}

void binary_conv_backward(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,K,K] */,
                          real *dalpha /* [O] */, const real *dout /* [N,O,OH,OW] */,
                          const real *inp /* [N,C,H,W] */, const real *weight /* [O,C,K,K] */,
                          const real *alpha /* [O] */, const real *saved, const ConvDims *d, double bits,
                          double grad_bits, const BinaryConvOptions *opt, const real *noise /* [N,O,OH,OW] */,
                          real *scratch) {
    (void)bits; /* the k-bit quantizers are straight-through: k does not enter backward */
    const SavedLayout L = saved_layout(d, codes_of(opt));
    const ScratchLayout S = scratch_layout(d);
    const int O = d->O, N = d->N, C = d->C, H = d->H, W = d->W;
    const size_t CK = ck_of(d), nout = nout_of(d), CHW = (size_t)C * H * W;
    const size_t OHW = (size_t)d->OH * d->OW;
    const real *hdr = saved + L.hdr;
    const int8_t *bw8 = (const int8_t *)(const void *)(saved + L.bw8);
    const int codes_mode = hdr[H_CODES] != 0;
    const real *aq = codes_mode ? NULL : saved + L.act;
    const uint8_t *codes = codes_mode ? (const uint8_t *)(const void *)(saved + L.act) : NULL;
    CodeTables tab;
    if (codes_mode)
        code_tables(&tab, hdr[H_ACT_ZP], hdr[H_ACT_RANGE], (double)hdr[H_BITS], opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE);
    real *ba = scratch + S.ba, *dba = scratch + S.dba, *dy = scratch + S.dy, *dbw = scratch + S.dbw;
    double tp = g_prof ? omp_get_wtime() : 0.0;
    if (g_prof) g_prof->calls_bwd++;

    /* dalpha[o] += sum_{n,h,w} dout * Y (fp32 result, summed in double in a fixed order) */
    const int16_t *y16 = L.y16 ? (const int16_t *)(const void *)(saved + L.y) : NULL;
    const real *yr = L.y16 ? NULL : saved + L.y;
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) {
        double acc = 0.0;
        for (int n = 0; n < N; n++) {
            const size_t base = ((size_t)n * O + o) * OHW;
            const real *g = dout + base;
            if (y16)
                for (size_t i = 0; i < OHW; i++) acc += (double)g[i] * (double)y16[base + i];
            else
                for (size_t i = 0; i < OHW; i++) acc += (double)g[i] * (double)yr[base + i];
        }
        dalpha[o] += (real)acc;
    }

    /* dBw = conv_wgrad(Ba, dY), dBa = conv_dgrad(dY, Bw) with dY = Q_g(dout * alpha) (E8):
     * by default on the error's codes with integer kernels, else (error not
     * quantized to 1..8 bits, a non-finite error, or opt->bwd_fp32) as fp32 GEMMs */
    const int pm1 = pad_m1(d, opt);
    ConvDims dc = pm1 ? padded_dims(d) : *d;
    const size_t nba = pm1 ? nin_padded(d) : nin_of(d);
    const int quant = opt->grad_quant && grad_bits != 0;
    int done = 0;
    if (quant && !opt->bwd_fp32 && grad_bits >= 1 && grad_bits <= 8) {
        int8_t *ba8 = (int8_t *)(void *)(scratch + S.ba8);
        make_ba8(ba8, aq, codes, tab.sval, d, opt);
        PROF_LAP(bwd_products, tp);
        done = bconv_bwd_int8_products(dinp ? dba : NULL, dbw, dy, (uint8_t *)(void *)(scratch + S.codes), dout,
                                       alpha, opt->grad_stochastic ? noise : NULL, grad_bits, ba8, bw8, &dc) == 0;
        PROF_LAP(bwd_products, tp);
        /* on failure dy = dout * alpha already: quantize it below */
        if (!done && quant) grad_quant(dy, dy, nout, grad_bits, opt->grad_stochastic ? noise : NULL);
    } else {
        #pragma omp parallel for schedule(static)
        for (long no = 0; no < (long)N * O; no++) {
            const real a = alpha[no % O];
            const real *g = dout + (size_t)no * OHW;
            real *dst = dy + (size_t)no * OHW;
            for (size_t i = 0; i < OHW; i++) dst[i] = g[i] * a;
        }
        if (quant) grad_quant(dy, dy, nout, grad_bits, opt->grad_stochastic ? noise : NULL);
    }
    PROF_LAP(bwd_err, tp);
    if (!done) {
        make_ba(ba, aq, codes, tab.sval, d, opt);
        real *bw = scratch + S.w1; /* Bw as reals (W1 is recomputed below if the clamp needs it) */
        for (size_t i = 0; i < (size_t)O * CK; i++) bw[i] = (real)bw8[i];
        memset(dbw, 0, (size_t)O * CK * sizeof(real));
        if (dinp) memset(dba, 0, nba * sizeof(real));
        conv2d_backward(dinp ? dba : NULL, dbw, dy, ba, bw, &dc, scratch + S.conv);
        PROF_LAP(bwd_products, tp);
    }

    /* weights: STE through sign and Q_k (dW2 = dBw), the clamp's mask (on W1,
     * recomputed: the same function of the same W as in forward), then E2's Jacobian */
    const real *dw1 = dbw;
    if (opt->recu_clamp) {
        real *w1 = scratch + S.w1, *t = scratch + S.dw1;
        weight_standardize_forward(w1, scratch + S.wsig, scratch + S.wmean, weight, O, CK, opt->weight_center);
        memset(t, 0, (size_t)O * CK * sizeof(real));
        recu_clamp_backward(t, dbw, w1, (size_t)O * CK, hdr[H_RECU_Q]);
        dw1 = t;
    }
    weight_standardize_backward(dweight, dw1, weight, saved + L.sig_w, saved + L.mean_w, O, CK, opt->weight_center);
    PROF_LAP(bwd_jacobians, tp);

    if (dinp == NULL) return;
    /* activations: crop dBa, times the ApproxSign factor at Aq (or 1: STE),
     * STE through Q_k, then E3's Jacobian if E3 ran. dA0 goes where Ba was. */
    real *da0 = ba;
    const int p = pm1 ? d->pad : 0, Wp = W + 2 * p, Hp = H + 2 * p;
    const int approx = opt->act_grad == ACT_GRAD_APPROX_SIGN;
    #pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)N * C; pl++) {
        const real *src = dba + (size_t)pl * Hp * Wp;
        const size_t k0 = (size_t)pl * H * W;
        real *dst = da0 + k0;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                const real g = src[(size_t)(i + p) * Wp + j + p];
                const size_t k = (size_t)i * W + j;
                if (!approx) dst[k] = g;
                else dst[k] = g * (codes ? tab.fac[codes[k0 + k]] : approx_sign_grad(aq[k0 + k]));
            }
    }
    if (hdr[H_ACT_NORMED] != 0) {
        act_normalize_backward(dinp, da0, inp, saved + L.sig_a, saved + L.mean_a, N, CHW);
    } else {
        /* eval-mode forward (A0 = A): dinp += dA0 */
        const size_t nin = (size_t)N * CHW;
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nin; i++) dinp[i] += da0[i];
    }
    PROF_LAP(bwd_jacobians, tp);
}
