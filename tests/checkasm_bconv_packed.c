/* checkasm family: the packed binary conv forward (core/bconv_packed.h).
 *
 * Kernels: pack_act (zero and -1 padding), pack_weight, pack_weight_i8 (per
 * filter from int8, against the C pack_weight of the same reals), pack_act_codes
 * (k-bit codes and their class table: bands, all-zero and arbitrary tables), conv_fwd (with
 * alpha and with alpha = NULL, the raw Y), each table against the C table's kernel.
 * Fixed cases: the grid test_bconv_packed.c ran every table on until the
 * harness took over (C 3, 63, 64, 65, 130 x K 1, 3 x stride 1, 2 x pad 0, 1 x
 * 7x5, 9x11, 1x3 x with and without exact zeros, O 5, 8, 13; each padded shape
 * also with -1 padding), then the four big-sum shapes (C*K*K = 4608, CIFAR-like);
 * filters 0-3 and every third one zero-free (the SIMD kernels' dense path).
 * Then random shapes: C 1-200, H, W 1-13, O 1-20, K 1, 3, 5, stride 1-3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bconv_packed.h"
#include "checkasm.h"
#include "checkasm_packed_shapes.h"

typedef struct {
    ConvDims d;
    int pad_m1;
    real *a, *w, *alpha;
    uint64_t *pa, *pw; /* the C packers' words (the conv's inputs) */
    uint8_t *codes;    /* pack_act_codes: k-bit codes [N,C,H,W] and their classes */
    uint8_t cls[256];
} PkCase;


#define PK_FIXED 368 /* build_fixed(): 240 grid shapes + 120 with -1 padding + 4 big + 4 with -1 padding */
#define PK_MAX_FIXED 400
static PkShape fixed[PK_MAX_FIXED];
static int n_fixed_built = -1;

static void add_shape(PkShape sh) {
    fixed[n_fixed_built++] = sh;
    if (sh.p > 0) {
        sh.pad_m1 = 1;
        fixed[n_fixed_built++] = sh;
    }
}

static int build_fixed(void) {
    if (n_fixed_built >= 0) return n_fixed_built;
    n_fixed_built = 0;
    PkShape base[PK_N_SHAPES];
    const int nb = pk_shapes(base);
    for (int k = 0; k < nb; k++) add_shape(base[k]);
    return n_fixed_built;
}

static void fill_ternary(real *x, size_t n, int with_zeros, Rng *r) {
    for (size_t i = 0; i < n; i++) {
        uint64_t k = rng_below(r, with_zeros ? 3 : 2);
        x[i] = k == 0 ? (real)-1 : k == 1 ? (real)1 : (real)0;
    }
}

static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 64) / 64 * 64);
    if (!p) {
        fprintf(stderr, "oom\n");
        exit(2);
    }
    return p;
}

/* codes of 1-8 bits with their classes: bands -1 | 0 | +1 as monotone levels
 * give (zero band of width 0, 1 or 2, at the ends too, or all zero: a NaN
 * grid), and 1 case in 8 a table of another form (the SIMD packers' C
 * fallback). Their own stream, so the shapes drawn for the other kernels stay. */
static void gen_codes(PkCase *c, size_t nin, int i) {
    Rng r = rng_stream(17, RNG_TEST, (uint64_t)i, 0);
    const int bits = 1 + (int)rng_below(&r, 8), qmax = (1 << bits) - 1;
    const uint64_t kind = rng_below(&r, 8);
    int lo = (int)rng_below(&r, (uint64_t)qmax + 2), hi = lo + (int)rng_below(&r, 3);
    if (kind == 1) lo = 0, hi = 256;
    if (hi > 256) hi = 256;
    for (int k = 0; k < 256; k++) c->cls[k] = k < lo ? 2 : k < hi ? 0 : 3;
    if (kind == 0)
        for (int k = 0; k < 256; k++) c->cls[k] = (uint8_t)rng_below(&r, 4);
    c->codes = xalloc(nin + 1);
    for (size_t k = 0; k < nin; k++) c->codes[k] = (uint8_t)rng_below(&r, kind == 0 ? 256 : (uint64_t)qmax + 1);
}

static void *pk_gen(int i, Rng *r, char *shape, size_t len) {
    PkShape sh;
    if (build_fixed() != PK_FIXED) {
        fprintf(stderr, "checkasm_bconv_packed: %d fixed shapes, PK_FIXED says %d\n", build_fixed(), PK_FIXED);
        exit(2);
    }
    if (i < PK_FIXED) {
        sh = fixed[i];
    } else {
        static const int ks[] = {1, 3, 5};
        do {
            sh.N = 1 + (int)rng_below(r, 3);
            sh.C = 1 + (int)rng_below(r, 200);
            sh.H = 1 + (int)rng_below(r, 13);
            sh.W = 1 + (int)rng_below(r, 13);
            sh.O = 1 + (int)rng_below(r, 20);
            sh.K = ks[rng_below(r, 3)];
            sh.s = 1 + (int)rng_below(r, 3);
            sh.p = (int)rng_below(r, (uint64_t)sh.K / 2 + 2);
        } while (sh.H + 2 * sh.p < sh.K || sh.W + 2 * sh.p < sh.K);
        sh.zeros = (int)rng_below(r, 2);
        sh.pad_m1 = sh.p > 0 && rng_below(r, 2);
    }
    PkCase *c = calloc(1, sizeof *c);
    c->d = conv_dims(sh.N, sh.C, sh.H, sh.W, sh.O, sh.K, sh.s, sh.p);
    c->pad_m1 = sh.pad_m1;
    const size_t nin = (size_t)sh.N * sh.C * sh.H * sh.W, per_o = (size_t)sh.C * sh.K * sh.K;
    const size_t nw = (size_t)sh.O * per_o;
    c->a = xalloc(nin * sizeof(real));
    c->w = xalloc(nw * sizeof(real));
    c->alpha = xalloc((size_t)sh.O * sizeof(real));
    fill_ternary(c->a, nin, sh.zeros, r);
    fill_ternary(c->w, nw, sh.zeros, r);
    /* zero-free filters mixed within and across the 4-filter blocks */
    for (int o = 0; o < sh.O; o++)
        if (o < 4 || o % 3 == 0)
            for (size_t k = 0; k < per_o; k++)
                if (c->w[o * per_o + k] == 0) c->w[o * per_o + k] = (k & 1) ? 1 : -1;
    for (int o = 0; o < sh.O; o++) c->alpha[o] = (real)(0.01 + 1.99 * rng_uniform(r));
    gen_codes(c, nin, i);
    c->pa = xalloc(bitpack_act_words(&c->d) * 8);
    c->pw = xalloc(bitpack_weight_words(&c->d) * 8);
    bitpack_act_c(c->pa, c->a, &c->d, c->pad_m1);
    bitpack_weight_c(c->pw, c->w, &c->d);
    snprintf(shape, len, "N%d C%d %dx%d O%d K%d s%d p%d%s zeros %d", sh.N, sh.C, sh.H, sh.W, sh.O, sh.K, sh.s, sh.p,
             sh.pad_m1 ? " (-1)" : "", sh.zeros);
    return c;
}

static void pk_free(void *cv) {
    PkCase *c = cv;
    free(c->a), free(c->w), free(c->alpha), free(c->pa), free(c->pw), free(c->codes), free(c);
}

/* a kernel's table: the lowest table with the same function as mask's (so one
 * function runs once: the AVX-512 table keeps the AVX2 packer) */
#define PK_TABLE_FN(field)                                                                                   \
    static const char *pk_table_##field(unsigned mask) {                                                     \
        BconvPackedFns f, g;                                                                                 \
        bconv_packed_init_fns(&f, mask);                                                                     \
        const unsigned lv[] = {0, BCONV_CPU_AVX2, BCONV_CPU_AVX2 | BCONV_CPU_AVX512};                        \
        for (int i = 0; i < 3; i++) {                                                                        \
            bconv_packed_init_fns(&g, lv[i]);                                                                \
            if (g.field == f.field) return g.name;                                                           \
        }                                                                                                    \
        return f.name;                                                                                       \
    }
PK_TABLE_FN(pack_act)
PK_TABLE_FN(pack_weight)
PK_TABLE_FN(pack_weight_i8)
PK_TABLE_FN(pack_act_codes)
PK_TABLE_FN(conv_fwd)

static void pack_act_ref(const void *cv, CkOut *o) {
    const PkCase *c = cv;
    bitpack_act_c(ck_out(o, "act words", CK_U64, bitpack_act_words(&c->d)), c->a, &c->d, c->pad_m1);
}
static void pack_act_run(unsigned mask, const void *cv, CkOut *o) {
    const PkCase *c = cv;
    BconvPackedFns f;
    bconv_packed_init_fns(&f, mask);
    f.pack_act(ck_out(o, "act words", CK_U64, bitpack_act_words(&c->d)), c->a, &c->d, c->pad_m1);
}

static void pack_weight_ref(const void *cv, CkOut *o) {
    const PkCase *c = cv;
    bitpack_weight_c(ck_out(o, "weight words", CK_U64, bitpack_weight_words(&c->d)), c->w, &c->d);
}
static void pack_weight_run(unsigned mask, const void *cv, CkOut *o) {
    const PkCase *c = cv;
    BconvPackedFns f;
    bconv_packed_init_fns(&f, mask);
    f.pack_weight(ck_out(o, "weight words", CK_U64, bitpack_weight_words(&c->d)), c->w, &c->d);
}

/* pack_weight_i8 (per filter, from int8 weights) against the C packer of the same weights as reals */
static void pack_weight_i8_ref(const void *cv, CkOut *o) { pack_weight_ref(cv, o); }
static void pack_weight_i8_run(unsigned mask, const void *cv, CkOut *o) {
    const PkCase *c = cv;
    BconvPackedFns f;
    bconv_packed_init_fns(&f, mask);
    const size_t per_o = (size_t)c->d.C * c->d.KH * c->d.KW, LW = (size_t)bitpack_lw(&c->d);
    uint64_t *dst = ck_out(o, "weight words", CK_U64, bitpack_weight_words(&c->d));
    int8_t *w8 = malloc(per_o * (size_t)c->d.O + 1);
    for (size_t k = 0; k < per_o * (size_t)c->d.O; k++) w8[k] = (int8_t)c->w[k];
    for (int oc = 0; oc < c->d.O; oc++) f.pack_weight_i8(dst + (size_t)oc * 2 * LW, w8 + (size_t)oc * per_o, &c->d);
    free(w8);
}

static void pack_act_codes_ref(const void *cv, CkOut *o) {
    const PkCase *c = cv;
    bitpack_act_codes_c(ck_out(o, "act words", CK_U64, bitpack_act_words(&c->d)), c->codes, c->cls, &c->d, c->pad_m1);
}
static void pack_act_codes_run(unsigned mask, const void *cv, CkOut *o) {
    const PkCase *c = cv;
    BconvPackedFns f;
    bconv_packed_init_fns(&f, mask);
    f.pack_act_codes(ck_out(o, "act words", CK_U64, bitpack_act_words(&c->d)), c->codes, c->cls, &c->d, c->pad_m1);
}

static size_t nout(const PkCase *c) { return (size_t)c->d.N * c->d.O * (c->d.OH > 0 ? c->d.OH : 0) * (c->d.OW > 0 ? c->d.OW : 0); }

static void conv_ref(const void *cv, CkOut *o) {
    const PkCase *c = cv;
    bconv_packed_fwd_c(ck_out(o, "out", CK_REAL, nout(c)), c->pa, c->pw, c->alpha, &c->d);
    bconv_packed_fwd_c(ck_out(o, "Y (alpha NULL)", CK_REAL, nout(c)), c->pa, c->pw, NULL, &c->d);
}
static void conv_run(unsigned mask, const void *cv, CkOut *o) {
    const PkCase *c = cv;
    BconvPackedFns f;
    bconv_packed_init_fns(&f, mask);
    f.conv_fwd(ck_out(o, "out", CK_REAL, nout(c)), c->pa, c->pw, c->alpha, &c->d);
    f.conv_fwd(ck_out(o, "Y (alpha NULL)", CK_REAL, nout(c)), c->pa, c->pw, NULL, &c->d);
}

const CkKernel ck_bconv_packed[] = {
    {"bconv_packed.pack_act", PK_FIXED, 100, pk_gen, pack_act_ref, pk_table_pack_act, pack_act_run, pk_free},
    {"bconv_packed.pack_weight", PK_FIXED, 100, pk_gen, pack_weight_ref, pk_table_pack_weight, pack_weight_run,
     pk_free},
    {"bconv_packed.pack_weight_i8", PK_FIXED, 100, pk_gen, pack_weight_i8_ref, pk_table_pack_weight_i8,
     pack_weight_i8_run, pk_free},
    {"bconv_packed.pack_act_codes", PK_FIXED, 100, pk_gen, pack_act_codes_ref, pk_table_pack_act_codes,
     pack_act_codes_run, pk_free},
    {"bconv_packed.conv_fwd", PK_FIXED, 100, pk_gen, conv_ref, pk_table_conv_fwd, conv_run, pk_free},
};
const int ck_bconv_packed_n = sizeof ck_bconv_packed / sizeof ck_bconv_packed[0];
