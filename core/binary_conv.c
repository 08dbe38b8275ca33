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
 * saved (per layer, what backward needs): one block of bytes holding typed
 * fields, each at an offset aligned to sizeof(real) (so the block's byte
 * layout is what it was when it was counted in reals):
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
 *   dba[N*C*Hp*Wp]  dBa; in a codes forward, A0 (E3's output) when its range needs a scan (NaN, inf or a zero extreme)
 *   dy[N*O*OH*OW]   quantized error
 *   dbw[O*CK], dw1[O*CK]  (in forward, dw1 holds Bw as reals for the fp32 conv and the unfused weight path)
 *   w1[O*CK], wsig[O], wmean[O]   W1 and its statistics (forward; clamp backward)
 *   conv            conv2d scratch (the padded and unpadded shapes need the same)
 *   pa, pw          packed forward operands, uint64 words (bitpack_act_words,
 *                   bitpack_weight_words), 64-byte aligned offsets
 *   ba8, codes      the integer backward's operands (bytes): Ba [N*C*Hp*Wp] as
 *                   int8, the error codes [N*O*OH*OW]
 * Hp = H + 2*pad is reserved whatever the option, so the sizes depend on the
 * dims (and, for saved, opt->save_act_codes) alone.
 *
 * Shards and ranks (issue 15, core/shard.h). d->sp NULL is the code this file
 * always ran. With a plan (train.shards S > 1, or several ranks training one
 * run; d->N is then this rank's rows, rank r holding global rows r*N ..), the
 * batch's reductions split in two kinds, so that any R | S gives the bits of
 * one process at the same S:
 *   exact, not sharded, combined over the ranks:
 *   - the activation quantizer's min/max (forward, training) and the error
 *     quantizer's min/max (backward, both paths): each rank reduces its rows
 *     as ever, then range_over_ranks makes one shard_max_d of (-min, max, a
 *     NaN flag, the NaN's bits) as doubles (reals convert exactly), and every
 *     rank uses the batch's range, so the running range updates identically
 *     everywhere. Max/min of the same reals are the same whatever the split,
 *     with two details. (1) NaN: one process's scan (quant_minmax_params)
 *     gives NaN exactly when the tensor's first element is NaN, i.e. rank 0's
 *     first row; so only rank 0 raises the flag, and sends that NaN's bits,
 *     and every rank then takes that NaN as the min and max, as one process
 *     does. Otherwise the scan skips NaNs, and so do the ranks: a rank whose
 *     own first element is NaN sends the min and max of its other elements
 *     (QuantRangeHook), and an all-NaN rank's NaNs lose in dist_max_d's rule.
 *     One residual case differs: the scan runs in chunks of >= 65536
 *     elements and drops a chunk whose first element is NaN (its lanes start
 *     there), so a NaN at such a chunk start of a big tensor hides that
 *     chunk's numbers from one process but not from the ranks; the step's
 *     loss is NaN then anyway, and the divergence stops the run on every
 *     rank. The integer path's error range refuses any NaN (or inf) as one
 *     process does: every rank takes the fp32 fallback (its flag is "NaN
 *     anywhere", from every rank), whose grad_quant follows the rule above.
 *     (2) the sign of a zero extreme may differ from one process's (which
 *     zero a scan keeps depends on its chunking, a function of the local
 *     size, and the ranks keep the first rank's): nothing depends on it
 *     (x - (+-0) and y*s + (+-0) give the same values, the scale is floored
 *     at 1e-8, and running*0.9 + (+-0)*0.1 is the same unless running is -0,
 *     which updates from the initial +0 never make; the integer path's note
 *     in bconv_bwd_int8.c says the same; only hdr's saved zp may keep the
 *     other zero). With one rank
 *     the hook hands back its own min and max unchanged (-(-x) is x, zeros
 *     included): a plan on one process gives sp NULL's bits.
 *   - the integer backward's weight gradient: bconv_bwd_int8 forms I and S
 *     (exact integer sums over this rank's samples), they are added over the
 *     ranks with shard_sum_i64 (int64, exact in any order) and only then is
 *     the float formed, by the kernels' one expression: the result does not
 *     depend on S or R at all. The exchange is blocking, per layer, right
 *     after the local sums and before E2's Jacobian (no overlap with other
 *     work: the simple form the issue allows). Whether the integer path runs
 *     (bconv_bwd_int8_fits) is decided on the global batch.
 *   sharded (float sums over samples): per shard of N/local_shards rows with
 *   the one-shard arithmetic into sp's workspace, then the fixed tree of
 *   shard_sum_* (local subtree, then the ranks'), then added where the code
 *   writes without a plan:
 *   - dalpha: each shard's sum in double (today's accumulator), the tree in
 *     double (ws_d), rounded to real once and added;
 *   - the fp32 backward's dBw (conv2d_backward's wgrad, the samples in
 *     order): per shard from zero in ws_r, the tree in real. dBa is per
 *     sample (conv2d_backward's dgrad is one GEMM per sample), computed once
 *     over this rank's rows.
 *   Everything else is per sample (E3 and its Jacobian, the 1-bit conv, dBa)
 *   or per weight (E2, the weight quantizer), so needs nothing. The error
 *   quantizer's noise is indexed by this rank's local element: the caller
 *   keys this rank's slice of the whole batch's draws (layers.c: a
 *   QuantNoise at off = row0 * O*OH*OW, drawn per block where the codes
 *   are made), so local element i gets the draw of global element
 *   row0*O*OH*OW + i, as one process uses it. */
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
#include "shard.h"

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
    o.lean_saved = 0;
    o.bwd_fp32 = 0;
    return o;
}

/* byte offsets of the saved block's fields */
typedef struct { size_t hdr, sig_w, mean_w, sig_a, mean_a, bw8, act, y, total; int y16; } SavedLayout;
typedef struct { size_t ba, dba, dy, dbw, dw1, w1, wsig, wmean, conv, pa, pw, ba8, codes, acodes, bw8, total; } ScratchLayout;

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

/* n bytes rounded up to whole reals: every field of saved starts aligned for a real */
static size_t real_aligned(size_t n) { return bytes_in_reals(n) * sizeof(real); }

/* lean (opt->lean_saved 1): no bw8 and no codes (they live in scratch);
 * lean 2 also no Y (rebuilt by the 1-bit conv again); Aq, when it is what
 * act holds, stays */
static SavedLayout saved_layout(const ConvDims *d, int codes, int lean) {
    const size_t R = sizeof(real);
    SavedLayout L;
    size_t o = 0;
    L.y16 = ck_of(d) <= 32767;
    L.hdr = o; o += HDR_N * R;
    L.sig_w = o; o += (size_t)d->O * R;
    L.mean_w = o; o += (size_t)d->O * R;
    L.sig_a = o; o += (size_t)d->N * R;
    L.mean_a = o; o += (size_t)d->N * R;
    L.bw8 = o; o += lean ? 0 : real_aligned((size_t)d->O * ck_of(d));
    L.act = o; o += codes ? (lean ? 0 : real_aligned(nin_of(d))) : nin_of(d) * R;
    L.y = o; o += lean == 2 ? 0 : L.y16 ? real_aligned(nout_of(d) * sizeof(int16_t)) : nout_of(d) * R;
    L.total = o;
    return L;
}

/* The typed views of one saved block. The backward only reads them (it gets
 * the block const and casts the const away to share this one struct). */
typedef struct {
    real *hdr, *sig_w, *mean_w, *sig_a, *mean_a;
    int8_t *bw8;     /* Bw [O*CK] */
    real *aq;        /* Aq [N*C*H*W] as reals, or NULL */
    uint8_t *codes;  /* or its k-bit codes */
    int16_t *y16;    /* Y [N*O*OH*OW] as int16, or NULL */
    real *yr;        /* or as reals */
} SavedView;

/* lean: bw8 and codes are pointed at their scratch (S) by the caller's
 * lean_view */
static SavedView saved_view(void *saved, const ConvDims *d, int codes, int lean) {
    const SavedLayout L = saved_layout(d, codes, lean);
    unsigned char *b = saved;
    SavedView v;
    v.hdr = (real *)(void *)(b + L.hdr);
    v.sig_w = (real *)(void *)(b + L.sig_w);
    v.mean_w = (real *)(void *)(b + L.mean_w);
    v.sig_a = (real *)(void *)(b + L.sig_a);
    v.mean_a = (real *)(void *)(b + L.mean_a);
    v.bw8 = (int8_t *)(void *)(b + L.bw8);
    v.aq = codes ? NULL : (real *)(void *)(b + L.act);
    v.codes = codes ? b + L.act : NULL;
    v.y16 = L.y16 ? (int16_t *)(void *)(b + L.y) : NULL;
    v.yr = L.y16 ? NULL : (real *)(void *)(b + L.y);
    return v;
}

static int lean_of(const BinaryConvOptions *opt) { return opt ? opt->lean_saved : 0; }
/* lean: sized under opt (Hp only where the -1 padding is on); else for
 * the dims alone */
static ScratchLayout scratch_layout(const ConvDims *d, const BinaryConvOptions *opt) {
    const int lean = lean_of(opt);
    ScratchLayout S;
    ConvDims p = padded_dims(d);
    size_t cs = conv2d_scratch_size(d), cp = conv2d_scratch_size(&p);
    const size_t nba = lean && !pad_m1(d, opt) ? nin_of(d) : nin_padded(d);
    size_t o = 0;
    S.ba = o; o += nba;
    S.dba = o; o += nba;
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
    S.ba8 = o; o += round_up_reals(bytes_in_reals(nba));
    S.codes = o; o += round_up_reals(bytes_in_reals(nout_of(d)));
    /* lean: the activation codes [N*C*H*W] and Bw [O*CK] (bytes) saved would
     * hold, written by forward and rebuilt by backward */
    S.acodes = S.bw8 = o;
    if (lean) {
        S.acodes = o; o += round_up_reals(bytes_in_reals(nin_of(d)));
        S.bw8 = o; o += round_up_reals(bytes_in_reals((size_t)d->O * ck_of(d)));
    }
    S.total = o;
    return S;
}

static int codes_of(const BinaryConvOptions *opt) { return opt && opt->save_act_codes; }
size_t binary_conv_saved_bytes(const ConvDims *d, const BinaryConvOptions *opt) {
    return saved_layout(d, codes_of(opt), lean_of(opt)).total;
}
/* every field is real-aligned, so the block is a whole number of reals */
size_t binary_conv_saved_size(const ConvDims *d, const BinaryConvOptions *opt) {
    return binary_conv_saved_bytes(d, opt) / sizeof(real);
}
void binary_conv_saved_bw(real *out, const void *saved, const ConvDims *d, const BinaryConvOptions *opt) {
    const int8_t *b = (const int8_t *)saved + saved_layout(d, codes_of(opt), 0).bw8;
    for (size_t i = 0; i < (size_t)d->O * ck_of(d); i++) out[i] = (real)b[i];
}
size_t binary_conv_scratch_size(const ConvDims *d) { return scratch_layout(d, NULL).total; }
size_t binary_conv_scratch_size_opt(const ConvDims *d, const BinaryConvOptions *opt) {
    return scratch_layout(d, opt).total;
}

/* lean: the view's Bw and codes in their scratch; lean 2: Y (as reals,
 * rebuilt by backward for dalpha) in dy's, and forward saves no Y */
static void lean_view(SavedView *s, real *scratch, const ScratchLayout *S, int lean) {
    s->bw8 = (int8_t *)(void *)(scratch + S->bw8);
    if (s->codes) s->codes = (uint8_t *)(void *)(scratch + S->acodes);
    if (lean == 2) {
        s->y16 = NULL;
        s->yr = scratch + S->dy;
    }
}

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

/* ----------------------------------------------------------------- shards */

/* a real's bits as an integer and back (the NaN the ranks agree on) */
#if REAL_IS_DOUBLE
typedef uint64_t RealBits;
#else
typedef uint32_t RealBits;
#endif
static uint64_t real_bits(real x) {
    RealBits b;
    memcpy(&b, &x, sizeof b);
    return b;
}
static real real_of_bits(uint64_t v) {
    const RealBits b = (RealBits)v;
    real x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* QuantRangeHook (core/quant.h) over the ranks of the plan ctx: this rank's
 * min and max in (of its numbers when its first element is NaN), the
 * batch's out (see the top of this file for NaN and for the sign of zero).
 * One shard_max_d of five doubles: -min, max, the NaN flag and the first
 * element's bits in two 32-bit halves (exact in a double). */
static void range_over_ranks(real *mn, real *mx, real first, void *ctx) {
    const ShardPlan *sp = ctx;
    const int nan_first = sp->rank == 0 && first != first; /* rank 0 holds the batch's first row */
    const uint64_t b = nan_first ? real_bits(first) : 0;
    double v[5] = {-(double)*mn, (double)*mx, (double)nan_first, (double)(b >> 32), (double)(b & 0xffffffffu)};
    shard_max_d(sp, v, 5);
    if (v[2] != 0) {
        *mn = *mx = real_of_bits(((uint64_t)v[3] << 32) | (uint64_t)v[4]);
        return;
    }
    *mn = (real)-v[0];
    *mx = (real)v[1];
}

/* the plan the backward follows: NULL for today's code; a trivial plan
 * without a workspace (what a model with one shard on one process could
 * carry) is today's code too */
static const ShardPlan *bwd_plan(const ConvDims *d) {
    const ShardPlan *sp = d->sp;
    if (sp && shard_plan_trivial(sp) && !sp->ws_r) return NULL;
    if (sp && (!sp->ws_r || !sp->ws_d || !sp->ws_i || d->N % sp->local_shards != 0 ||
               sp->ws_n < (size_t)d->O * ck_of(d) || shard_ws_dn(sp) < (size_t)d->O)) {
        /* a caller's error (model_set_shards sizes the workspace, the loop
         * keeps the batch a multiple of the shards): never a silent other sum */
        fprintf(stderr, "binary_conv_backward: shard plan without a workspace for O*CK = %zu, or %d rows not in %d "
                        "shards\n", (size_t)d->O * ck_of(d), d->N, sp->local_shards);
        abort();
    }
    return sp;
}

/* ---------------------------------------------------------------- forward */

/* Weights: E2 (train and eval), the optional ReCU clamp, k-bit per output
 * channel (E4/E5), sign. Leaves Bw as int8 in saved, as reals in bw (scratch,
 * for the fp32 conv) and, when packed, in pw. Returns the clamp bound q
 * (+inf without the clamp). */
static real fwd_weights(SavedView *s, real *w1 /* [O*CK] */, real *bw /* [O*CK] */, uint64_t *pw,
                        const real *weight /* [O,C,K,K] */, const ConvDims *d, double bits, int packed,
                        const BinaryConvOptions *opt) {
    const int O = d->O, zplus = opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE;
    const size_t CK = ck_of(d);
    if (packed && !opt->recu_clamp) {
        /* every step is per output channel: one pass, channel by channel, the
         * row staying in cache (the same row functions as the unfused path,
         * so the same values), ending in the int8 Bw and its packed bits;
         * Bw as reals is not written (the packed conv does not read it) */
        (void)bw;
        const real qmax = bits == 0 ? 0 : quant_qmax(bits);
        const size_t LW = (size_t)bitpack_lw(d);
        const BconvPackedFns *f = bconv_packed_fns();
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < O; o++) {
            real *w1o = w1 + (size_t)o * CK;
            int8_t *b8 = s->bw8 + (size_t)o * CK;
            weight_standardize_row(w1o, s->sig_w + o, s->mean_w + o, weight + (size_t)o * CK, CK, opt->weight_center);
            quant_sign_row_i8(b8, w1o, CK, bits, qmax, zplus); /* Bw = sign(Wq) */
            f->pack_weight_i8(pw + (size_t)o * 2 * LW, b8, d);
        }
        return (real)INFINITY;
    }
    real q = (real)INFINITY;
    weight_standardize_forward(w1, s->sig_w, s->mean_w, weight, O, CK, opt->weight_center);
    const real *w2 = w1;
    if (opt->recu_clamp) {
        q = recu_clamp_q(w1, (size_t)O * CK, opt->clamp_tau);
        recu_clamp_forward(bw, w1, (size_t)O * CK, q);
        w2 = bw;
    }
    minmax_uniform_per_channel(bw, NULL, NULL, w2, O, CK, bits); /* Wq (bw used as the buffer) */
    sign_forward(bw, bw, (size_t)O * CK, zplus);                /* Bw */
    bconv_bwd_sign_i8(s->bw8, bw, (size_t)O * CK, 0);           /* saved for backward as int8 */
    if (packed) bconv_packed_fns()->pack_weight(pw, bw, d);
    return q;
}

/* Activations: E3 (training with act_norm only), then k-bit per tensor with
 * the batch range (train) or the running range (eval): Aq into saved, as reals
 * or as codes (with their tables in tab). a0 is scratch for E3's output in the
 * codes case. Sets *zp, *range; returns whether E3 ran. */
static int fwd_acts(SavedView *s, CodeTables *tab, real *zp, real *range, real *running /* [2] */, real *a0buf,
                    const real *inp /* [N,C,H,W] */, const ConvDims *d, double bits, int train,
                    const BinaryConvOptions *opt) {
    const int N = d->N, normed = train && opt->act_norm;
    const size_t nin = nin_of(d), CHW = (size_t)d->C * d->H * d->W;
    /* the batch's range over the ranks (the hook runs in training only) */
    const QuantRangeHook hook = d->sp ? range_over_ranks : NULL;
    if (s->codes) {
        real mn, mx;
        if (normed && act_normalize_forward_minmax(NULL, s->sig_a, s->mean_a, &mn, &mx, inp, N, CHW)) {
            /* E3's statistics gave A0's range, and the codes divide by sigma
             * themselves: A0 is never stored (normed implies train) */
            const real first = inp[0] / s->sig_a[0];
            minmax_per_tensor_params_known(zp, range, running, mn, mx, first, hook, (void *)d->sp);
            quant_codes_u8_rows(s->codes, inp, N, CHW, s->sig_a, *zp, quant_scale(*range, bits), quant_qmax(bits));
        } else {
            const real *a0 = inp;
            if (normed) { /* NaN, inf or a zero extreme: A0 stored and scanned */
                act_normalize_forward(a0buf, s->sig_a, s->mean_a, inp, N, CHW);
                a0 = a0buf;
            }
            minmax_per_tensor_params_ex(zp, range, running, a0, nin, train, hook, (void *)d->sp);
            quant_codes_u8(s->codes, a0, nin, *zp, quant_scale(*range, bits), quant_qmax(bits));
        }
        code_tables(tab, *zp, *range, bits, opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE);
    } else {
        if (normed) act_normalize_forward(s->aq, s->sig_a, s->mean_a, inp, N, CHW);
        else memcpy(s->aq, inp, nin * sizeof(real));
        minmax_uniform_per_tensor_ex(s->aq, running, zp, range, s->aq, nin, bits, train, hook, (void *)d->sp); /* Aq */
    }
    if (!normed)
        for (int n = 0; n < N; n++) {
            s->sig_a[n] = 1;
            s->mean_a[n] = 0;
        }
    return normed;
}

/* The 1-bit conv Y = conv(Ba, Bw) into out, on the fp32 conv or the packed
 * kernels; Y is an exact integer either way. */
static void fwd_conv(real *out /* [N,O,OH,OW] */, const SavedView *s, const CodeTables *tab, real *scratch,
                     const ScratchLayout *S, const ConvDims *d, int packed, const BinaryConvOptions *opt,
                     double *tp) {
    real *ba = scratch + S->ba;
    if (!packed) {
        make_ba(ba, s->aq, s->codes, tab->sval, d, opt);
        ConvDims dc = pad_m1(d, opt) ? padded_dims(d) : *d;
        dc.sp = NULL; /* per sample: nothing to shard */
        conv2d_forward(out, ba, scratch + S->dw1 /* Bw as reals */, &dc, scratch + S->conv);
        return;
    }
    /* packed: sign(v) with sign(0) = 0 is what pack_act stores, so Aq packs
     * as Ba directly; sign(0) = +1 packs Ba = sign(Aq) (unpadded, in ba);
     * codes pack through their table. -1 padding is the packed border. */
    const BconvPackedFns *f = bconv_packed_fns();
    uint64_t *pa = (uint64_t *)(void *)(scratch + S->pa);
    if (s->codes) {
        f->pack_act_codes(pa, s->codes, tab->cls, d, pad_m1(d, opt));
    } else {
        const real *asrc = s->aq;
        if (opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE) {
            sign_forward(ba, s->aq, nin_of(d), 1);
            asrc = ba;
        }
        f->pack_act(pa, asrc, d, pad_m1(d, opt));
    }
    PROF_LAP(fwd_act, *tp);
    f->conv_fwd(out, pa, (const uint64_t *)(const void *)(scratch + S->pw), NULL, d);
}

/* Y saved (int16 or reals; not under lean 2) for dalpha, then out = Y * alpha in place (the
 * error-quantization hook sits between them and is the identity here) */
static void fwd_save_y_scale(real *out /* [N,O,OH,OW] */, SavedView *s, const real *alpha /* [O] */,
                             const ConvDims *d, int save) {
    const int O = d->O;
    const size_t OHW = (size_t)d->OH * d->OW;
    #pragma omp parallel for schedule(static)
    for (long no = 0; no < (long)d->N * O; no++) {
        const real a = alpha[no % O];
        real *dst = out + (size_t)no * OHW;
        if (save && s->y16)
            for (size_t i = 0; i < OHW; i++) s->y16[(size_t)no * OHW + i] = (int16_t)dst[i];
        else if (save)
            memcpy(s->yr + (size_t)no * OHW, dst, OHW * sizeof(real));
        for (size_t i = 0; i < OHW; i++) dst[i] = dst[i] * a;
    }
}

int binary_conv_forward(real *out /* [N,O,OH,OW] */, void *saved, real *running /* [2] */,
                        const real *inp /* [N,C,H,W] */, const real *weight /* [O,C,K,K] */,
                        const real *alpha /* [O] */, const ConvDims *d, double bits, int train,
                        const BinaryConvOptions *opt, real *scratch) {
    const int codes_mode = codes_of(opt);
    /* the saved space was sized for 8-bit codes (the caller decides it from the schedule) */
    if (codes_mode && !(bits >= 1 && bits <= 8)) return -1;
    SavedView s = saved_view(saved, d, codes_mode, lean_of(opt));
    const ScratchLayout S = scratch_layout(d, opt);
    if (lean_of(opt)) lean_view(&s, scratch, &S, lean_of(opt));
    double tp = g_prof ? omp_get_wtime() : 0.0;
    if (g_prof) g_prof->calls_fwd++;
    const int packed = !(opt->conv_fp32 || env_forces_fp32());

    const real q = fwd_weights(&s, scratch + S.w1, scratch + S.dw1, (uint64_t *)(void *)(scratch + S.pw), weight, d,
                               bits, packed, opt);
    PROF_LAP(fwd_weight, tp);
    real zp = 0, range = 0;
    CodeTables tab;
    const int normed = fwd_acts(&s, &tab, &zp, &range, running, scratch + S.dba, inp, d, bits, train, opt);
    PROF_LAP(fwd_act, tp);
    fwd_conv(out, &s, &tab, scratch, &S, d, packed, opt, &tp);
    fwd_save_y_scale(out, &s, alpha, d, lean_of(opt) != 2);
    PROF_LAP(fwd_conv, tp);

    for (int i = 0; i < HDR_N; i++) s.hdr[i] = 0;
    s.hdr[H_ACT_NORMED] = (real)normed;
    s.hdr[H_ACT_ZP] = zp;
    s.hdr[H_ACT_RANGE] = range;
    s.hdr[H_RECU_Q] = q;
    s.hdr[H_BITS] = (real)bits;
    s.hdr[H_CODES] = (real)codes_mode;
    return 0;
}

void binary_conv_output_from_saved(real *out /* [N,O,OH,OW] */, const void *saved, const real *alpha /* [O] */,
                                   const ConvDims *d, const BinaryConvOptions *opt) {
    const SavedView s = saved_view((void *)saved, d, codes_of(opt), lean_of(opt)); /* read only */
    const int O = d->O;
    const size_t OHW = (size_t)d->OH * d->OW;
    #pragma omp parallel for schedule(static)
    for (long no = 0; no < (long)d->N * O; no++) {
        const real a = alpha[no % O];
        real *dst = out + (size_t)no * OHW;
        /* the forward's dst[i] * a with dst[i] = Y: int16 -> real is exact */
        if (s.y16)
            for (size_t i = 0; i < OHW; i++) dst[i] = (real)s.y16[(size_t)no * OHW + i] * a;
        else
            for (size_t i = 0; i < OHW; i++) dst[i] = s.yr[(size_t)no * OHW + i] * a;
    }
}

/* --------------------------------------------------------------- backward */

/* sum_{n in [n0, n1), h, w} dout * Y for channel o, in double, samples in order */
static double dalpha_rows(const real *dout /* [N,O,OH,OW] */, const SavedView *s, const ConvDims *d, int o, int n0,
                          int n1) {
    const int O = d->O;
    const size_t OHW = (size_t)d->OH * d->OW;
    double acc = 0.0;
    for (int n = n0; n < n1; n++) {
        const size_t base = ((size_t)n * O + o) * OHW;
        const real *g = dout + base;
        if (s->y16)
            for (size_t i = 0; i < OHW; i++) acc += (double)g[i] * (double)s->y16[base + i];
        else
            for (size_t i = 0; i < OHW; i++) acc += (double)g[i] * (double)s->yr[base + i];
    }
    return acc;
}

/* dalpha[o] += sum dout * Y (fp32 result, summed in double in a fixed order).
 * With a plan: one double per shard (ws_d), the shard tree in double, then
 * rounded once and added. */
static void bwd_dalpha(real *dalpha /* [O] */, const real *dout /* [N,O,OH,OW] */, const SavedView *s,
                       const ConvDims *d, const ShardPlan *sp) {
    const int O = d->O, N = d->N;
    if (!sp) {
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < O; o++) dalpha[o] += (real)dalpha_rows(dout, s, d, o, 0, N);
        return;
    }
    const int L = sp->local_shards, Ns = N / L;
    double *part = sp->ws_d; /* [L][O]: shard_sum_d's layout, shard k's channel o at k*O + o */
    #pragma omp parallel for schedule(static)
    for (long ko = 0; ko < (long)L * O; ko++) {
        const int k = (int)(ko / O), o = (int)(ko % O);
        part[ko] = dalpha_rows(dout, s, d, o, k * Ns, (k + 1) * Ns);
    }
    shard_sum_d(sp, part, (size_t)O, sp->ws_d + (size_t)L * shard_ws_dn(sp));
    for (int o = 0; o < O; o++) dalpha[o] += (real)part[o];
}

/* dy = dout * alpha[o] (one real product) */
static void mul_alpha(real *dy, const real *dout, const real *alpha, const ConvDims *d) {
    const int O = d->O;
    const size_t OHW = (size_t)d->OH * d->OW;
    #pragma omp parallel for schedule(static)
    for (long no = 0; no < (long)d->N * O; no++) {
        const real a = alpha[no % O];
        const real *g = dout + (size_t)no * OHW;
        real *dst = dy + (size_t)no * OHW;
        for (size_t i = 0; i < OHW; i++) dst[i] = g[i] * a;
    }
}

/* The integer products with a plan: the error range over the ranks (any NaN
 * or inf anywhere, or a batch beyond the int32 sums, sends every rank to the
 * fp32 fallback together), the codes and dBa on this rank's rows, dBw's
 * integer sums added over the ranks (blocking), then its floats. Returns 0,
 * or -1 with dy = dout * alpha unquantized (the caller's fallback). */
static int bwd_int8_sharded(real *dba /* or NULL */, real *dbw /* or NULL */, real *dy, uint8_t *codes,
                            const real *dout, const real *alpha, const QuantNoise *nz, double grad_bits, const int8_t *ba8,
                            const int8_t *bw8, const ConvDims *dc, const ShardPlan *sp) {
    const BconvBwdInt8Fns *f = bconv_bwd_int8_fns();
    const int N = dc->N, O = dc->O;
    const size_t OHW = (size_t)dc->OH * dc->OW, CK = ck_of(dc);
    ConvDims dg = *dc;
    dg.N = (int)shard_global_rows(sp, N); /* the same decision on every rank and for any R */
    if (!bconv_bwd_int8_fits(&dg)) {
        mul_alpha(dy, dout, alpha, dc);
        return -1;
    }
    real mn = 0, mx = 0;
    int bad = 0;
    if ((size_t)N * O * OHW > 0) bad = f->err_minmax(&mn, &mx, dout, alpha, N, O, OHW);
    /* the integer path's own range exchange: here any NaN refuses (flag max) */
    double v[3] = {-(double)mn, (double)mx, (double)bad};
    shard_max_d(sp, v, 3);
    const real zp = (real)-v[0], R = (real)v[1] - zp;
    const real sc = quant_scale(R, grad_bits), qmax = quant_qmax(grad_bits);
    if (v[2] != 0 || !(qmax <= (real)255) || !isfinite(zp) || !isfinite(R) || !isfinite(sc)) {
        mul_alpha(dy, dout, alpha, dc);
        return -1;
    }
    if (f->err_codes(codes, dout, alpha, nz, N, O, OHW, zp, sc, qmax)) {
        /* a NaN y from finite x, zp, s and noise cannot happen; if it did, a
         * lone rank falling back would leave the others in another exchange */
        if (sp->ranks > 1) {
            fprintf(stderr, "binary_conv_backward: NaN error code from finite values on rank %d\n", sp->rank);
            abort();
        }
        mul_alpha(dy, dout, alpha, dc);
        return -1;
    }
    if (dba) f->dgrad(dba, codes, bw8, zp, sc, dc);
    if (!dbw) return 0;
    int64_t *isum = sp->ws_i, *ssum = sp->ws_i + (size_t)O * CK; /* O*CK + CK <= 2 ws_n */
    f->wgrad_sums(isum, ssum, codes, ba8, dc);
    shard_sum_i64(sp, isum, (size_t)O * CK + CK);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)((size_t)O * CK); i++)
        dbw[i] = bconv_bwd_int8_out(sc, zp, isum[i], ssum[(size_t)i % CK]);
    return 0;
}

/* The fp32 products with a plan: dBa over this rank's rows at once (one
 * GEMM per sample whatever the batch), dBw per shard from zero into ws_r
 * (conv2d_backward adds the samples in order), the shard tree, into dbw.
 * dba and dbw are zeroed here, as the unsharded call gets them. */
static void bwd_fp32_sharded(real *dba /* or NULL */, real *dbw /* or NULL */, const real *dy, const real *ba,
                             const real *bw, const ConvDims *dc, size_t nba, real *conv_scratch,
                             const ShardPlan *sp) {
    ConvDims dl = *dc;
    dl.sp = NULL; /* conv2d runs its one-shard code on what it is given */
    if (dba) {
        memset(dba, 0, nba * sizeof(real));
        conv2d_backward(dba, NULL, dy, ba, bw, &dl, conv_scratch);
    }
    if (!dbw) return;
    const int L = sp->local_shards, Ns = dc->N / L;
    const size_t wn = (size_t)dc->O * ck_of(dc);
    const size_t in_rows = (size_t)Ns * dc->C * dc->H * dc->W, out_rows = (size_t)Ns * dc->O * dc->OH * dc->OW;
    ConvDims ds = dl;
    ds.N = Ns;
    for (int k = 0; k < L; k++) { /* [L][wn]: shard_sum_r's layout */
        real *p = sp->ws_r + (size_t)k * wn;
        memset(p, 0, wn * sizeof(real));
        conv2d_backward(NULL, p, dy + (size_t)k * out_rows, ba + (size_t)k * in_rows, bw, &ds, conv_scratch);
    }
    shard_sum_r(sp, sp->ws_r, wn, sp->ws_r + (size_t)L * sp->ws_n);
    memcpy(dbw, sp->ws_r, wn * sizeof(real));
}

/* dBw = conv_wgrad(Ba, dY) into scratch dbw and, when want_dba, dBa =
 * conv_dgrad(dY, Bw) into scratch dba, with dY = Q_g(dout * alpha) (E8): by
 * default on the error's codes with integer kernels, else (error not
 * quantized to 1..8 bits, a non-finite error, or opt->bwd_fp32) as fp32 GEMMs.
 * With a plan (sp): the error range over the ranks and the batch sums as the
 * top of this file says; want_dbw 0 then skips dBw and its exchange. */
static void bwd_products(const SavedView *s, const CodeTables *tab, const real *dout /* [N,O,OH,OW] */,
                         const real *alpha /* [O] */, const QuantNoise *noise, int want_dba, int want_dbw, real *scratch,
                         const ScratchLayout *S, const ConvDims *d, double grad_bits, const BinaryConvOptions *opt,
                         const ShardPlan *sp, double *tp) {
    const int O = d->O, pm1 = pad_m1(d, opt);
    const size_t CK = ck_of(d), nout = nout_of(d);
    const ConvDims dc = pm1 ? padded_dims(d) : *d;
    const size_t nba = pm1 ? nin_padded(d) : nin_of(d);
    const int quant = opt->grad_quant && grad_bits != 0;
    const QuantNoise *nz = opt->grad_stochastic ? noise : NULL;
    real *ba = scratch + S->ba, *dba = scratch + S->dba, *dy = scratch + S->dy, *dbw = scratch + S->dbw;
    if (quant && !opt->bwd_fp32 && grad_bits >= 1 && grad_bits <= 8) {
        int8_t *ba8 = (int8_t *)(void *)(scratch + S->ba8);
        uint8_t *codes = (uint8_t *)(void *)(scratch + S->codes);
        make_ba8(ba8, s->aq, s->codes, tab->sval, d, opt);
        PROF_LAP(bwd_products, *tp);
        const int done = sp ? bwd_int8_sharded(want_dba ? dba : NULL, want_dbw ? dbw : NULL, dy, codes, dout, alpha,
                                               nz, grad_bits, ba8, s->bw8, &dc, sp) == 0
                            : bconv_bwd_int8_products_nz(want_dba ? dba : NULL, dbw, dy, codes, dout, alpha, nz,
                                                         grad_bits, ba8, s->bw8, &dc) == 0;
        PROF_LAP(bwd_products, *tp);
        if (done) {
            PROF_LAP(bwd_err, *tp);
            return;
        }
        /* on failure dy = dout * alpha already: quantize it, then the fp32 products */
        grad_quant_nz(dy, dy, nout, grad_bits, nz, sp ? range_over_ranks : NULL, (void *)sp);
    } else {
        mul_alpha(dy, dout, alpha, d);
        if (quant) {
            grad_quant_nz(dy, dy, nout, grad_bits, nz, sp ? range_over_ranks : NULL, (void *)sp);
        }
    }
    PROF_LAP(bwd_err, *tp);
    make_ba(ba, s->aq, s->codes, tab->sval, d, opt);
    real *bw = scratch + S->w1; /* Bw as reals (W1 is recomputed later if the clamp needs it) */
    for (size_t i = 0; i < (size_t)O * CK; i++) bw[i] = (real)s->bw8[i];
    if (sp) {
        bwd_fp32_sharded(want_dba ? dba : NULL, want_dbw ? dbw : NULL, dy, ba, bw, &dc, nba, scratch + S->conv, sp);
    } else {
        memset(dbw, 0, (size_t)O * CK * sizeof(real));
        if (want_dba) memset(dba, 0, nba * sizeof(real));
        ConvDims dl = dc;
        dl.sp = NULL;
        conv2d_backward(want_dba ? dba : NULL, dbw, dy, ba, bw, &dl, scratch + S->conv);
    }
    PROF_LAP(bwd_products, *tp);
}

/* weights: STE through sign and Q_k (dW2 = dBw), the clamp's mask (on W1,
 * recomputed: the same function of the same W as in forward), then E2's Jacobian */
static void bwd_weights(real *dweight /* [O,C,K,K] */, const SavedView *s, const real *weight, real *scratch,
                        const ScratchLayout *S, const ConvDims *d, const BinaryConvOptions *opt) {
    const int O = d->O;
    const size_t CK = ck_of(d);
    const real *dbw = scratch + S->dbw, *dw1 = dbw;
    if (opt->recu_clamp) {
        real *w1 = scratch + S->w1, *t = scratch + S->dw1;
        weight_standardize_forward(w1, scratch + S->wsig, scratch + S->wmean, weight, O, CK, opt->weight_center);
        memset(t, 0, (size_t)O * CK * sizeof(real));
        recu_clamp_backward(t, dbw, w1, (size_t)O * CK, s->hdr[H_RECU_Q]);
        dw1 = t;
    }
    weight_standardize_backward(dweight, dw1, weight, s->sig_w, s->mean_w, O, CK, opt->weight_center);
}

/* activations: crop dBa (scratch dba), times the ApproxSign factor at Aq (or
 * 1: STE), STE through Q_k, then E3's Jacobian if E3 ran. dA0 goes where Ba
 * was (scratch ba). */
static void bwd_acts(real *dinp /* [N,C,H,W] */, const SavedView *s, const CodeTables *tab,
                     const real *inp /* [N,C,H,W] */, real *scratch, const ScratchLayout *S, const ConvDims *d,
                     const BinaryConvOptions *opt) {
    const int N = d->N, C = d->C, H = d->H, W = d->W;
    const size_t CHW = (size_t)C * H * W;
    const real *dba = scratch + S->dba;
    real *da0 = scratch + S->ba;
    const int p = pad_m1(d, opt) ? d->pad : 0, Wp = W + 2 * p, Hp = H + 2 * p;
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
                else dst[k] = g * (s->codes ? tab->fac[s->codes[k0 + k]] : approx_sign_grad(s->aq[k0 + k]));
            }
    }
    if (s->hdr[H_ACT_NORMED] != 0) {
        act_normalize_backward(dinp, da0, inp, s->sig_a, s->mean_a, N, CHW);
    } else {
        /* eval-mode forward (A0 = A): dinp += dA0 */
        const size_t nin = (size_t)N * CHW;
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nin; i++) dinp[i] += da0[i];
    }
}

/* lean: Bw (int8) and the activation codes rebuilt into their scratch (s
 * points there) by the forward's own functions on the same W, input, bits,
 * statistics and range, so the same bytes: E2 .. sign with the statistics
 * into scratch (saved keeps the forward's), and E3 (recomputed: the same
 * function of the same input) into dba, then the codes. dba, dy, w1, dw1 and
 * pw are free until bwd_products. */
static void bwd_lean_rebuild(SavedView *s, const real *inp, const real *weight, real *scratch, const ScratchLayout *S,
                             const ConvDims *d, double bits, const BinaryConvOptions *opt) {
    SavedView w = *s;
    w.sig_w = scratch + S->wsig;
    w.mean_w = scratch + S->wmean;
    const int packed = !(opt->conv_fp32 || env_forces_fp32());
    fwd_weights(&w, scratch + S->w1, scratch + S->dw1, (uint64_t *)(void *)(scratch + S->pw), weight, d, bits, packed,
                opt);
    if (!s->codes) return;
    const int N = d->N;
    const size_t nin = nin_of(d), CHW = (size_t)d->C * d->H * d->W;
    const real *a0 = inp;
    if (s->hdr[H_ACT_NORMED] != 0) {
        real *a0buf = scratch + S->dba, *sig = scratch + S->dy, *mean = sig + N; /* dy holds >= 2N reals */
        act_normalize_forward(a0buf, sig, mean, inp, N, CHW);
        a0 = a0buf;
    }
    quant_codes_u8(s->codes, a0, nin, s->hdr[H_ACT_ZP], quant_scale(s->hdr[H_ACT_RANGE], bits), quant_qmax(bits));
}

/* lean: Y = conv(Ba, Bw) again into y (reals) from the rebuilt codes (or
 * the saved Aq) and Bw, through the forward's fwd_conv (packed when the
 * forward was), so the same exact integers */
static void lean_conv_y(real *y /* [N,O,OH,OW] */, const SavedView *s, real *scratch, const ScratchLayout *S,
                        const ConvDims *d, double bits, const BinaryConvOptions *opt) {
    CodeTables tab;
    if (s->codes)
        code_tables(&tab, s->hdr[H_ACT_ZP], s->hdr[H_ACT_RANGE], bits, opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE);
    double tp = 0.0;
    BinaryConvProfile *p = g_prof; /* a rebuild: the forward's laps stay the forward's */
    g_prof = NULL;
    fwd_conv(y, s, &tab, scratch, S, d, !(opt->conv_fp32 || env_forces_fp32()), opt, &tp);
    g_prof = p;
}

void binary_conv_output_rebuild(real *out /* [N,O,OH,OW] */, const void *saved, const real *inp,
                                const real *weight, const real *alpha /* [O] */, const ConvDims *d, double bits,
                                const BinaryConvOptions *opt, real *scratch) {
    if (lean_of(opt) != 2) {
        binary_conv_output_from_saved(out, saved, alpha, d, opt);
        return;
    }
    SavedView s = saved_view((void *)saved, d, codes_of(opt), 2); /* read only */
    const ScratchLayout S = scratch_layout(d, opt);
    lean_view(&s, scratch, &S, 2);
    bwd_lean_rebuild(&s, inp, weight, scratch, &S, d, bits, opt);
    lean_conv_y(out, &s, scratch, &S, d, bits, opt);
    /* the forward's dst[i] * a on the same Y */
    const int O = d->O;
    const size_t OHW = (size_t)d->OH * d->OW;
    #pragma omp parallel for schedule(static)
    for (long no = 0; no < (long)d->N * O; no++) {
        const real a = alpha[no % O];
        real *dst = out + (size_t)no * OHW;
        for (size_t i = 0; i < OHW; i++) dst[i] = dst[i] * a;
    }
}

void binary_conv_backward_nz(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,K,K] or NULL */,
                           real *dalpha /* [O] or NULL */, const real *dout /* [N,O,OH,OW] */,
                           const real *inp /* [N,C,H,W] */, const real *weight /* [O,C,K,K] */,
                           const real *alpha /* [O] */, const void *saved, const ConvDims *d, double bits,
                           double grad_bits, const BinaryConvOptions *opt, const QuantNoise *noise,
                           real *scratch) {
    /* the k-bit quantizers are straight-through: k enters backward only
     * where lean rebuilds the forward's codes and Bw (the forward's k) */
    SavedView s = saved_view((void *)saved, d, codes_of(opt), lean_of(opt)); /* read only */
    const ScratchLayout S = scratch_layout(d, opt);
    if (lean_of(opt)) lean_view(&s, scratch, &S, lean_of(opt)); /* filled by bwd_lean_rebuild */
    CodeTables tab;
    if (s.hdr[H_CODES] != 0)
        code_tables(&tab, s.hdr[H_ACT_ZP], s.hdr[H_ACT_RANGE], (double)s.hdr[H_BITS],
                    opt->sign_zero == SIGN_ZERO_IS_PLUS_ONE);
    double tp = g_prof ? omp_get_wtime() : 0.0;
    if (g_prof) g_prof->calls_bwd++;

    const ShardPlan *sp = bwd_plan(d);
    if (lean_of(opt) && (dalpha || dweight || dinp)) {
        bwd_lean_rebuild(&s, inp, weight, scratch, &S, d, bits, opt);
        /* Y into dy, free until bwd_products */
        if (dalpha && lean_of(opt) == 2) lean_conv_y(s.yr, &s, scratch, &S, d, bits, opt);
    }
    if (dalpha) bwd_dalpha(dalpha, dout, &s, d, sp);
    if (!dweight && !dinp) return; /* a frozen conv whose input needs no gradient */
    bwd_products(&s, &tab, dout, alpha, noise, dinp != NULL, dweight != NULL, scratch, &S, d, grad_bits, opt, sp,
                 &tp);
    if (dweight) bwd_weights(dweight, &s, weight, scratch, &S, d, opt);
    PROF_LAP(bwd_jacobians, tp);
    if (dinp == NULL) return;
    bwd_acts(dinp, &s, &tab, inp, scratch, &S, d, opt);
    PROF_LAP(bwd_jacobians, tp);
}

void binary_conv_backward(real *dinp, real *dweight, real *dalpha, const real *dout, const real *inp,
                          const real *weight, const real *alpha, const void *saved, const ConvDims *d, double bits,
                          double grad_bits, const BinaryConvOptions *opt, const real *noise, real *scratch) {
    const QuantNoise q = {.draws = noise};
    binary_conv_backward_nz(dinp, dweight, dalpha, dout, inp, weight, alpha, saved, d, bits, grad_bits, opt,
                            noise ? &q : NULL, scratch);
}
