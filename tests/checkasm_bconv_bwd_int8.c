/* checkasm family: the integer backward of the binary conv (core/bconv_bwd_int8.h).
 *
 * dgrad (on its direct path where it applies, and forced onto the GEMM +
 * col2im path), wgrad (its mode by the dims, and forced onto the phase
 * planes read in place and onto the compact rows): every table against the int64 direct-loop references,
 * on the 267 shapes of checkasm_bwd8_shapes.h (odd C and O, K 1, 3, 5, strides
 * 1-3, wide pads, tiny and empty outputs, all-255 codes with all-(+1)/(-1)
 * operands, reductions past one AVX2 chunk and one wgrad K chunk), then 40
 * random shapes.
 *
 * quant_codes: the codes dequantized as fl(fl(code * s) + zp) against grad_quant
 * of dout * alpha, bitwise, with grad_quant's zp and s (a zero zp compared by
 * value: its sign may differ, which changes no code), and no code above
 * round(qmax):
 * 8, 4, 2 and 7.5 bits x noise or not x in place or not on three sizes (scalar
 * tails, odd chunks, more than PAR_MIN); a zero minimum (-0 first / +0 first in
 * different blocks); the refusals (bits 0 and 9, a NaN first and inside a SIMD
 * block: rc -1 and g = dout * alpha); then 30 random sizes and bit widths.
 * The noise goes in as an array of draws or as the stream's key (QuantNoise:
 * the codes loop draws them per block), at a random first element off (off
 * the stream's chunk grid too); the reference gets the same draws as an
 * array (quant_fill_noise_range at off). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bconv_bwd_int8.h"
#include "checkasm.h"
#include "checkasm_bwd8_shapes.h"
#include "quant.h"

static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 64) / 64 * 64);
    if (!p) {
        fprintf(stderr, "oom\n");
        exit(2);
    }
    return p;
}

/* ------------------------------------------------------------ dgrad, wgrad */
typedef struct {
    ConvDims d;
    uint8_t *codes;
    int8_t *bw, *ba;
    real s, zp;
} B8Case;

static void fill_tern(int8_t *x, size_t n, Rng *r) {
    for (size_t i = 0; i < n; i++) {
        uint64_t k = rng_below(r, 3);
        x[i] = k == 0 ? -1 : k == 1 ? 1 : 0;
    }
}

static void *b8_gen(int i, Rng *r, char *shape, size_t len) {
    static Bwd8Shape fixed[BWD8_N_SHAPES];
    static int nf = -1;
    if (nf < 0) nf = bwd8_shapes(fixed);
    Bwd8Shape sh;
    if (i < nf) {
        sh = fixed[i];
    } else {
        static const int ks[] = {1, 3, 5};
        do {
            sh = (Bwd8Shape){1 + (int)rng_below(r, 3), 1 + (int)rng_below(r, 80), 1 + (int)rng_below(r, 14),
                             1 + (int)rng_below(r, 14), 1 + (int)rng_below(r, 80), ks[rng_below(r, 3)],
                             1 + (int)rng_below(r, 3), 0, 0, 0};
            sh.p = (int)rng_below(r, (uint64_t)sh.K / 2 + 2);
        } while (sh.H + 2 * sh.p < sh.K || sh.W + 2 * sh.p < sh.K);
    }
    B8Case *c = calloc(1, sizeof *c);
    c->d = conv_dims(sh.N, sh.C, sh.H, sh.W, sh.O, sh.K, sh.st, sh.p);
    const size_t nin = (size_t)sh.N * sh.C * sh.H * sh.W, nw = (size_t)sh.O * sh.C * sh.K * sh.K;
    const size_t nout = (size_t)sh.N * sh.O * (c->d.OH > 0 ? c->d.OH : 0) * (c->d.OW > 0 ? c->d.OW : 0);
    c->codes = xalloc(nout + 1);
    c->bw = xalloc(nw + 1);
    c->ba = xalloc(nin + 1);
    if (sh.fill == 0) {
        for (size_t k = 0; k < nout; k++) c->codes[k] = (uint8_t)rng_below(r, 256);
        fill_tern(c->bw, nw, r);
        fill_tern(c->ba, nin, r);
    } else {
        memset(c->codes, 255, nout);
        memset(c->bw, sh.fill == 1 ? 1 : -1, nw);
        memset(c->ba, sh.fill == 1 ? 1 : -1, nin);
    }
    c->s = (real)(0.001 + 0.01 * rng_uniform(r));
    c->zp = (real)(-0.5 * c->s * 255 * (0.5 + rng_uniform(r)));
    snprintf(shape, len, "N%d C%d %dx%d O%d K%d s%d p%d fill%d", sh.N, sh.C, sh.H, sh.W, sh.O, sh.K, sh.st, sh.p,
             sh.fill);
    return c;
}

static void b8_free(void *cv) {
    B8Case *c = cv;
    free(c->codes), free(c->bw), free(c->ba), free(c);
}

static size_t nin(const ConvDims *d) { return (size_t)d->N * d->C * d->H * d->W; }
static size_t nwt(const ConvDims *d) { return (size_t)d->O * d->C * d->KH * d->KW; }

/* the table name of a kernel under mask: the lowest table with the same function */
#define B8_TABLE_FN(field)                                                                                   \
    static const char *b8_table_##field(unsigned mask) {                                                     \
        BconvBwdInt8Fns f, g;                                                                                \
        bconv_bwd_int8_init_fns(&f, mask);                                                                   \
        const unsigned lv[] = {0, BWD8_CPU_AVX2, BWD8_CPU_AVX2 | BWD8_CPU_AVXVNNI,                           \
                               BWD8_CPU_AVX2 | BWD8_CPU_AVX512VNNI};                                         \
        for (int i = 0; i < 4; i++) {                                                                        \
            bconv_bwd_int8_init_fns(&g, lv[i]);                                                              \
            if (g.field == f.field) return g.name;                                                           \
        }                                                                                                    \
        return f.name;                                                                                       \
    }
B8_TABLE_FN(dgrad)
B8_TABLE_FN(wgrad)
B8_TABLE_FN(quant_codes)

static void dgrad_ref(const void *cv, CkOut *o) {
    const B8Case *c = cv;
    bconv_bwd_int8_dgrad_ref(ck_out(o, "dx", CK_REAL, nin(&c->d)), c->codes, c->bw, c->zp, c->s, &c->d);
}
static void dgrad_run_path(unsigned mask, const B8Case *c, CkOut *o, int direct) {
    BconvBwdInt8Fns f;
    bconv_bwd_int8_init_fns(&f, mask);
    bconv_bwd_int8_set_dgrad_direct(direct);
    f.dgrad(ck_out(o, "dx", CK_REAL, nin(&c->d)), c->codes, c->bw, c->zp, c->s, &c->d);
    bconv_bwd_int8_set_dgrad_direct(1);
}
static void dgrad_run(unsigned mask, const void *c, CkOut *o) { dgrad_run_path(mask, c, o, 1); }
static void dgrad_col2im_run(unsigned mask, const void *c, CkOut *o) { dgrad_run_path(mask, c, o, 0); }

static void wgrad_ref(const void *cv, CkOut *o) {
    const B8Case *c = cv;
    bconv_bwd_int8_wgrad_ref(ck_out(o, "dw", CK_REAL, nwt(&c->d)), c->codes, c->ba, c->zp, c->s, &c->d);
}
/* compact: -1 by the dims, 0 the phase planes read in place, 1 the rows copied without dead columns */
static void wgrad_run_mode(unsigned mask, const B8Case *c, CkOut *o, int compact) {
    BconvBwdInt8Fns f;
    bconv_bwd_int8_init_fns(&f, mask);
    bconv_bwd_int8_set_wgrad_compact(compact);
    f.wgrad(ck_out(o, "dw", CK_REAL, nwt(&c->d)), c->codes, c->ba, c->zp, c->s, &c->d);
    bconv_bwd_int8_set_wgrad_compact(-1);
}
static void wgrad_run(unsigned mask, const void *c, CkOut *o) { wgrad_run_mode(mask, c, o, -1); }
static void wgrad_planes_run(unsigned mask, const void *c, CkOut *o) { wgrad_run_mode(mask, c, o, 0); }
static void wgrad_compact_run(unsigned mask, const void *c, CkOut *o) { wgrad_run_mode(mask, c, o, 1); }

/* ------------------------------------------------------------ quant_codes */
typedef struct {
    int N, O, OHW;
    double bits;
    int noise_on, inplace; /* noise_on: 0 none, 1 an array of draws, 2 the stream's key */
    size_t off;            /* the first element's index in the noise stream */
    real *dout, *alpha, *noise;
} QCase;

enum { Q_GRID = 4 * 2 * 2 * 3, Q_ZERO_MIN = 2, Q_REFUSE = 4, Q_FIXED = Q_GRID + Q_ZERO_MIN + Q_REFUSE };

static void *q_gen(int i, Rng *r, char *shape, size_t len) {
    QCase *c = calloc(1, sizeof *c);
    int zero_min = -1;
    if (i < Q_GRID) {
        static const double bitss[] = {8.0, 4.0, 2.0, 7.5};
        static const int sizes[][3] = {{2, 5, 7}, {3, 7, 333}, {16, 64, 1024}}; /* tails; odd chunks; > PAR_MIN */
        const int sz = i % 3;
        c->N = sizes[sz][0], c->O = sizes[sz][1], c->OHW = sizes[sz][2];
        c->bits = bitss[i / 12];
        c->noise_on = (i / 6) % 2 ? 1 + i % 2 : 0;
        c->inplace = (i / 3) % 2;
    } else if (i < Q_GRID + Q_ZERO_MIN) {
        zero_min = i - Q_GRID; /* rows of 3000: blocks of 5 rows */
        c->N = 4, c->O = 8, c->OHW = 3000, c->bits = 8.0;
    } else if (i < Q_FIXED) {
        static const double rb[] = {0.0, 9.0, 8.0, 8.0}; /* the last two get a NaN */
        const int k = i - Q_GRID - Q_ZERO_MIN;
        c->N = k == 3 ? 4 : 1, c->O = k == 3 ? 16 : 3, c->OHW = k == 3 ? 9 : 5, c->bits = rb[k];
    } else {
        static const double rbits[] = {1, 2, 3, 4, 5, 6, 7, 8, 7.5, 3.3};
        c->N = 1 + (int)rng_below(r, 4), c->O = 1 + (int)rng_below(r, 40), c->OHW = 1 + (int)rng_below(r, 600);
        c->bits = rbits[rng_below(r, 10)];
        c->noise_on = (int)rng_below(r, 3);
        c->inplace = (int)rng_below(r, 2);
    }
    c->off = rng_below(r, 2) ? 0 : (size_t)rng_below(r, 3 * NOISE_CHUNK);
    const size_t n = (size_t)c->N * c->O * c->OHW;
    c->dout = xalloc((n + 1) * sizeof(real));
    c->alpha = xalloc(((size_t)c->O + 1) * sizeof(real));
    c->noise = xalloc((n + 1) * sizeof(real));
    if (zero_min >= 0) {
        for (size_t k = 0; k < n; k++) c->dout[k] = (real)(0.001 + 0.999 * rng_uniform(r));
        for (int o = 0; o < c->O; o++) c->alpha[o] = (real)(0.1 + 0.9 * rng_uniform(r));
        c->dout[20000] = zero_min ? (real)-0.0 : (real)0.0; /* in the second block */
        c->dout[50000] = zero_min ? (real)0.0 : (real)-0.0;
    } else {
        for (size_t k = 0; k < n; k++) c->dout[k] = (real)(-0.02 + 0.05 * rng_uniform(r));
        for (size_t k = 0; k < n; k += 17) c->dout[k] = 0; /* exact zeros, as dead ReLU paths give */
        for (int o = 0; o < c->O; o++) c->alpha[o] = (real)rng_uniform(r);
        if (i >= Q_GRID + Q_ZERO_MIN && i < Q_FIXED) {
            const int k = i - Q_GRID - Q_ZERO_MIN;
            if (k == 2) c->dout[7] = (real)NAN;
            if (k == 3) c->dout[37] = (real)NAN; /* inside a SIMD block: only the codes pass sees it */
        }
    }
    quant_fill_noise_range(c->noise, c->off, n, 99, 3, (uint64_t)n);
    snprintf(shape, len, "N%d O%d OHW%d bits %g noise %d off %zu inplace %d%s", c->N, c->O, c->OHW, c->bits,
             c->noise_on, c->off, c->inplace,
             zero_min >= 0 ? (zero_min ? " zero min, -0 first" : " zero min, +0 first") : "");
    return c;
}

static void q_free(void *cv) {
    QCase *c = cv;
    free(c->dout), free(c->alpha), free(c->noise), free(c);
}

/* the definition: grad_quant of x = dout * alpha, refused (rc -1, g = x) when
 * the codes cannot hold it: bits 0, 2^bits - 1 > 255, a non-finite x */
static void q_ref(const void *cv, CkOut *o) {
    const QCase *c = cv;
    const size_t n = (size_t)c->N * c->O * c->OHW;
    int32_t *rc = ck_out(o, "rc", CK_I32, 1);
    real *x = xalloc((n + 1) * sizeof(real));
    int finite = 1;
    for (size_t k = 0; k < n; k++) {
        x[k] = c->dout[k] * c->alpha[(k / (size_t)c->OHW) % (size_t)c->O];
        finite &= isfinite(x[k]) != 0;
    }
    *rc = c->bits == 0 || pow(2.0, c->bits) - 1 > 255 || !finite ? -1 : 0;
    if (*rc) {
        memcpy(ck_out(o, "g", CK_REAL, n), x, n * sizeof(real));
    } else {
        real zp, range;
        quant_minmax_params(&zp, &range, x, n);
        real *zs = ck_out(o, "zp, s", CK_REAL, 2);
        zs[0] = zp == 0 ? (real)0 : zp;
        zs[1] = quant_scale(range, c->bits);
        grad_quant(ck_out(o, "dequantized codes", CK_REAL, n), x, n, c->bits, c->noise_on ? c->noise : NULL);
        *(int32_t *)ck_out(o, "codes above round(qmax)", CK_I32, 1) = 0;
    }
    free(x);
}

static void q_run(unsigned mask, const void *cv, CkOut *o) {
    const QCase *c = cv;
    const size_t n = (size_t)c->N * c->O * c->OHW;
    BconvBwdInt8Fns f;
    bconv_bwd_int8_init_fns(&f, mask);
    int32_t *rc = ck_out(o, "rc", CK_I32, 1);
    uint8_t *codes = xalloc(n + 1);
    real *g = xalloc((n + 1) * sizeof(real)), zp, s;
    if (c->inplace) memcpy(g, c->dout, n * sizeof(real));
    const QuantNoise arr = {.draws = c->noise}, key = {.seed = 99, .key1 = 3, .key2 = (uint64_t)n, .off = c->off};
    *rc = f.quant_codes(codes, &zp, &s, g, c->inplace ? g : c->dout, c->alpha, c->N, c->O, (size_t)c->OHW, c->bits,
                        c->noise_on == 1 ? &arr : c->noise_on == 2 ? &key : NULL);
    if (*rc) {
        memcpy(ck_out(o, "g", CK_REAL, n), g, n * sizeof(real));
    } else {
        real *zs = ck_out(o, "zp, s", CK_REAL, 2);
        zs[0] = zp == 0 ? (real)0 : zp;
        zs[1] = s;
        real *deq = ck_out(o, "dequantized codes", CK_REAL, n);
        /* clamped to qmax, then rounded: with fractional bits a code may be round(qmax) > qmax */
        const real top = quant_round_half_even(quant_qmax(c->bits));
        int32_t over = 0;
        for (size_t k = 0; k < n; k++) {
            real t = (real)codes[k] * s;
            deq[k] = t + zp;
            over += (real)codes[k] > top;
        }
        *(int32_t *)ck_out(o, "codes above round(qmax)", CK_I32, 1) = over;
    }
    free(codes);
    free(g);
}

const CkKernel ck_bconv_bwd_int8[] = {
    {"bconv_bwd_int8.dgrad", BWD8_N_SHAPES, 40, b8_gen, dgrad_ref, b8_table_dgrad, dgrad_run, b8_free},
    {"bconv_bwd_int8.dgrad (col2im path)", BWD8_N_SHAPES, 40, b8_gen, dgrad_ref, b8_table_dgrad, dgrad_col2im_run,
     b8_free},
    {"bconv_bwd_int8.wgrad", BWD8_N_SHAPES, 40, b8_gen, wgrad_ref, b8_table_wgrad, wgrad_run, b8_free},
    {"bconv_bwd_int8.wgrad (planes)", BWD8_N_SHAPES, 40, b8_gen, wgrad_ref, b8_table_wgrad, wgrad_planes_run, b8_free},
    {"bconv_bwd_int8.wgrad (compact)", BWD8_N_SHAPES, 40, b8_gen, wgrad_ref, b8_table_wgrad, wgrad_compact_run,
     b8_free},
    {"bconv_bwd_int8.quant_codes", Q_FIXED, 30, q_gen, q_ref, b8_table_quant_codes, q_run, q_free},
};
const int ck_bconv_bwd_int8_n = sizeof ck_bconv_bwd_int8 / sizeof ck_bconv_bwd_int8[0];
