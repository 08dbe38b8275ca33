/* The binary conv with a shard plan (issue 15 (b), core/binary_conv.c's
 * "Shards and ranks"), on one process: plans from shard_plan_make(.., comm
 * NULL) for S = 1, 2, 4 with a workspace laid out as model_set_shards lays it.
 *
 * For binary.backward int8 and fp32, 4-bit weights and activations, 8-bit
 * stochastic errors, shapes with 3x3 stride 1 and 2 and 1x1 convs (some with
 * the activations saved as codes), every output against an independent
 * computation, bitwise:
 *   - forward out, saved block and running range: the unsharded kernel on the
 *     whole batch (the ranges are exact; on one process they are this rank's);
 *   - dinp: the unsharded kernel (per sample; the error range is the batch's);
 *   - dalpha: a plain loop here, per shard in double in sample order, the
 *     fixed tree ((p0 + p1) + (p2 + p3)) in double, rounded once, added to the
 *     initial dalpha; Y read back from the unsharded out (Y = out / alpha,
 *     an integer);
 *   - dweight, integer path: the unsharded kernel at every S (exact sums);
 *   - dweight, fp32 path: composed here from core/quant.h and conv2d_backward
 *     on each shard's rows (Aq from E3 and the batch range, Ba = sign(Aq), dY
 *     = grad_quant of dout*alpha over the batch, Bw from E2 and the k-bit
 *     weights), the same tree in real, then E2's Jacobian. At S = 1 this
 *     composition must also equal the unsharded kernel (a check of the
 *     composition itself).
 * Also: S = 1 with a plan equals sp NULL in every output; fp32 dweight at
 * S = 2 is within last-bit rounding of S = 1 (a different tree, not a
 * different gradient); a NaN in the input or the error gives the same bits
 * (NaN payloads included) with a plan as without; QuantRangeHook's contract
 * (what the ranks' exchange is handed and what the quantizers use). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binary_conv.h"
#include "ops.h"
#include "quant.h"
#include "shard.h"
#include "testutil.h"

#define BITS 4.0
#define GRAD_BITS 8.0

typedef struct {
    int N, C, H, W, O, K, stride, pad, codes;
} Shape;

static const Shape shapes[] = {
    {8, 6, 7, 7, 5, 3, 1, 1, 0},  /* 3x3 stride 1 */
    {8, 4, 9, 8, 6, 3, 2, 1, 1},  /* 3x3 stride 2, activations as codes */
    {8, 8, 5, 5, 7, 1, 1, 0, 0},  /* 1x1 */
    {8, 5, 6, 6, 9, 1, 2, 0, 1},  /* 1x1 stride 2 (a downsample), codes */
};

/* a plan of S shards on one process with its workspace (model_set_shards' layout) */
typedef struct {
    ShardPlan p;
    real *ws_r;
    double *ws_d;
    int64_t *ws_i;
} TestPlan;

static void plan_make(TestPlan *t, int S, const ConvDims *d) {
    char err[256];
    const int rc = shard_plan_make(&t->p, S, d->N, NULL, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "FAIL shard_plan_make(%d, %d): %s\n", S, d->N, err);
        exit(1);
    }
    size_t n = 64;
    const size_t wn = (size_t)d->O * d->C * d->KH * d->KW;
    if (wn > n) n = wn;
    if (2 * (size_t)d->O > n) n = 2 * (size_t)d->O;
    const size_t slots = (size_t)t->p.local_shards + 1;
    t->ws_r = tu_alloc(slots * n);
    t->ws_d = calloc(slots * n, sizeof(double));
    t->ws_i = calloc(2 * n, sizeof(int64_t));
    if (!t->ws_d || !t->ws_i) exit(1);
    t->p.ws_r = t->ws_r;
    t->p.ws_d = t->ws_d;
    t->p.ws_i = t->ws_i;
    t->p.ws_n = n;
}
static void plan_free(TestPlan *t) {
    free(t->ws_r);
    free(t->ws_d);
    free(t->ws_i);
}

/* the inputs of one case, and the outputs of one run */
typedef struct {
    ConvDims d;
    BinaryConvOptions opt;
    size_t nin, nout, nw, nsaved, nscr;
    real *inp, *weight, *alpha, *dout, *noise, *run0, *dinp0, *dw0, *da0;
} Case;

typedef struct {
    real *out, *saved, *running, *dinp, *dw, *da, *scratch;
} Run;

static real *aligned_reals(size_t n) {
    const size_t bytes = ((n ? n : 1) * sizeof(real) + 63) / 64 * 64;
    real *p = aligned_alloc(64, bytes);
    if (!p) exit(1);
    memset(p, 0, bytes);
    return p;
}

static void case_make(Case *c, const Shape *sh, int bwd_fp32, Rng *r) {
    c->d = conv_dims(sh->N, sh->C, sh->H, sh->W, sh->O, sh->K, sh->stride, sh->pad);
    c->opt = binary_conv_faithful();
    c->opt.bwd_fp32 = bwd_fp32;
    c->opt.save_act_codes = sh->codes;
    const ConvDims *d = &c->d;
    c->nin = (size_t)d->N * d->C * d->H * d->W;
    c->nout = (size_t)d->N * d->O * d->OH * d->OW;
    c->nw = (size_t)d->O * d->C * d->KH * d->KW;
    c->nsaved = binary_conv_saved_size(d, &c->opt);
    c->nscr = binary_conv_scratch_size(d);
    c->inp = tu_alloc_rand(c->nin, r);
    c->weight = tu_alloc_rand(c->nw, r);
    c->alpha = tu_alloc(d->O);
    tu_fill_uniform(c->alpha, d->O, 0.5, 1.0, r);
    c->dout = tu_alloc_rand(c->nout, r);
    c->noise = tu_alloc(c->nout);
    quant_fill_noise(c->noise, c->nout, 1234, 7, 3);
    c->run0 = tu_alloc(2);
    c->run0[0] = (real)-0.3;
    c->run0[1] = (real)1.2;
    /* the gradients accumulate: start them away from zero */
    c->dinp0 = tu_alloc_rand(c->nin, r);
    c->dw0 = tu_alloc_rand(c->nw, r);
    c->da0 = tu_alloc_rand(d->O, r);
}

static void case_free(Case *c) {
    free(c->inp), free(c->weight), free(c->alpha), free(c->dout), free(c->noise);
    free(c->run0), free(c->dinp0), free(c->dw0), free(c->da0);
}

static void run_alloc(Run *u, const Case *c) {
    u->out = tu_alloc(c->nout);
    u->saved = aligned_reals(c->nsaved);
    u->running = tu_alloc(2);
    u->dinp = tu_alloc(c->nin);
    u->dw = tu_alloc(c->nw);
    u->da = tu_alloc(c->d.O);
    u->scratch = aligned_reals(c->nscr);
}
static void run_free(Run *u) {
    free(u->out), free(u->saved), free(u->running), free(u->dinp), free(u->dw), free(u->da), free(u->scratch);
}

/* one training forward and backward with plan sp (NULL: today's path) */
static void run_case(Run *u, const Case *c, const ShardPlan *sp, const real *inp, const real *dout) {
    ConvDims d = c->d;
    d.sp = sp;
    memcpy(u->running, c->run0, 2 * sizeof(real));
    memcpy(u->dinp, c->dinp0, c->nin * sizeof(real));
    memcpy(u->dw, c->dw0, c->nw * sizeof(real));
    memcpy(u->da, c->da0, (size_t)d.O * sizeof(real));
    const int rc = binary_conv_forward(u->out, u->saved, u->running, inp, c->weight, c->alpha, &d, BITS, 1, &c->opt,
                                       u->scratch);
    CHECK(rc == 0, "forward refused");
    binary_conv_backward(u->dinp, u->dw, u->da, dout, inp, c->weight, c->alpha, u->saved, &d, BITS, GRAD_BITS,
                         &c->opt, c->noise, u->scratch);
}

static int same(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* parts[count * n]: the fixed tree ((p0 + p1) + (p2 + p3)), written out for count 1, 2, 4 */
static double tree_d(const double *p, int count, size_t stride) {
    if (count == 1) return p[0];
    if (count == 2) return p[0] + p[stride];
    return (p[0] + p[stride]) + (p[2 * stride] + p[3 * stride]);
}
static real tree_r(const real *p, int count, size_t stride) {
    if (count == 1) return p[0];
    if (count == 2) return p[0] + p[stride];
    return (p[0] + p[stride]) + (p[2 * stride] + p[3 * stride]);
}

/* dalpha by a plain loop: per shard of N/S samples, in double in sample
 * order, the tree, rounded once, added to the initial values */
static void dalpha_reference(real *da, const Case *c, const real *out_ref, int S) {
    const ConvDims *d = &c->d;
    const int O = d->O, Ns = d->N / S;
    const size_t OHW = (size_t)d->OH * d->OW;
    double part[4];
    for (int o = 0; o < O; o++) {
        for (int k = 0; k < S; k++) {
            double acc = 0.0;
            for (int n = k * Ns; n < (k + 1) * Ns; n++)
                for (size_t i = 0; i < OHW; i++) {
                    const size_t at = ((size_t)n * O + o) * OHW + i;
                    const real y = rintf(out_ref[at] / c->alpha[o]); /* Y, an integer, |Y| <= C*K*K */
                    acc += (double)c->dout[at] * (double)y;
                }
            part[k] = acc;
        }
        da[o] = c->da0[o] + (real)tree_d(part, S, 1);
    }
}

/* the fp32 path's dweight composed from core/quant.h and conv2d_backward per
 * shard (see the top) */
static void dweight_fp32_reference(real *dw, const Case *c, int S) {
    const ConvDims *d = &c->d;
    const int O = d->O, N = d->N, Ns = N / S;
    const size_t CK = (size_t)d->C * d->KH * d->KW, CHW = (size_t)d->C * d->H * d->W;
    real *a0 = tu_alloc(c->nin), *ba = tu_alloc(c->nin), *dy = tu_alloc(c->nout);
    real *sig_a = tu_alloc(N), *mean_a = tu_alloc(N), run[2] = {c->run0[0], c->run0[1]};
    act_normalize_forward(a0, sig_a, mean_a, c->inp, N, CHW);                    /* E3 */
    minmax_uniform_per_tensor(a0, run, NULL, NULL, a0, c->nin, BITS, 1);        /* Aq, the batch range */
    sign_forward(ba, a0, c->nin, 0);                                            /* Ba */
    real *w1 = tu_alloc(c->nw), *bw = tu_alloc(c->nw), *sig_w = tu_alloc(O), *mean_w = tu_alloc(O);
    weight_standardize_forward(w1, sig_w, mean_w, c->weight, O, CK, 0);         /* E2 */
    minmax_uniform_per_channel(bw, NULL, NULL, w1, O, CK, BITS);
    sign_forward(bw, bw, c->nw, 0);                                             /* Bw */
    const size_t OHW = (size_t)d->OH * d->OW;
    for (size_t i = 0; i < c->nout; i++) dy[i] = c->dout[i] * c->alpha[(i / OHW) % (size_t)O];
    grad_quant(dy, dy, c->nout, GRAD_BITS, c->noise);                           /* dY, the batch range */
    ConvDims ds = *d;
    ds.N = Ns;
    real *parts = tu_alloc((size_t)S * c->nw), *conv_scratch = tu_alloc(conv2d_scratch_size(d));
    for (int k = 0; k < S; k++)
        conv2d_backward(NULL, parts + (size_t)k * c->nw, dy + (size_t)k * Ns * O * OHW, ba + (size_t)k * Ns * CHW, bw,
                        &ds, conv_scratch);
    real *dbw = tu_alloc(c->nw);
    for (size_t i = 0; i < c->nw; i++) dbw[i] = tree_r(parts + i, S, c->nw);
    memcpy(dw, c->dw0, c->nw * sizeof(real));
    weight_standardize_backward(dw, dbw, c->weight, sig_w, mean_w, O, CK, 0);
    free(a0), free(ba), free(dy), free(sig_a), free(mean_a), free(w1), free(bw), free(sig_w), free(mean_w);
    free(parts), free(conv_scratch), free(dbw);
}

static double max_abs(const real *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
    return m;
}

static void test_case(const Shape *sh, int bwd_fp32, Rng *r) {
    Case c;
    case_make(&c, sh, bwd_fp32, r);
    const char *mode = bwd_fp32 ? "fp32" : "int8";
    const ConvDims *d = &c.d;
    Run ref, u, s1;
    run_alloc(&ref, &c);
    run_alloc(&u, &c);
    run_alloc(&s1, &c);
    run_case(&ref, &c, NULL, c.inp, c.dout);
    real *da_ref = tu_alloc(d->O), *dw_ref = tu_alloc(c.nw);
    for (int S = 1; S <= 4; S *= 2) {
        TestPlan tp;
        plan_make(&tp, S, d);
        Run *v = S == 1 ? &s1 : &u;
        run_case(v, &c, &tp.p, c.inp, c.dout);
        const char *fmt = "%s %dx%d/%d C%d O%d S=%d: %s";
#define WHERE(what) fmt, mode, sh->K, sh->K, sh->stride, sh->C, sh->O, S, what
        CHECK(same(v->out, ref.out, c.nout * sizeof(real)), WHERE("forward out != unsharded"));
        CHECK(same(v->saved, ref.saved, c.nsaved * sizeof(real)), WHERE("saved block != unsharded"));
        CHECK(same(v->running, ref.running, 2 * sizeof(real)), WHERE("running range != unsharded"));
        CHECK(!same(v->running, c.run0, 2 * sizeof(real)), WHERE("running range not updated"));
        CHECK(same(v->dinp, ref.dinp, c.nin * sizeof(real)), WHERE("dinp != unsharded"));
        dalpha_reference(da_ref, &c, ref.out, S);
        CHECK(same(v->da, da_ref, (size_t)d->O * sizeof(real)), WHERE("dalpha != per-shard loop and tree"));
        if (!bwd_fp32) {
            CHECK(same(v->dw, ref.dw, c.nw * sizeof(real)), WHERE("integer dweight != unsharded (exact sums)"));
        } else {
            dweight_fp32_reference(dw_ref, &c, S);
            CHECK(same(v->dw, dw_ref, c.nw * sizeof(real)), WHERE("fp32 dweight != per-shard conv2d and tree"));
        }
        if (S == 1) {
            CHECK(same(v->da, ref.da, (size_t)d->O * sizeof(real)), WHERE("dalpha with a plan != sp NULL"));
            CHECK(same(v->dw, ref.dw, c.nw * sizeof(real)), WHERE("dweight with a plan != sp NULL"));
            if (bwd_fp32)
                CHECK(same(dw_ref, ref.dw, c.nw * sizeof(real)), WHERE("the composed reference != the kernel"));
        }
        if (S == 2 && bwd_fp32) {
            /* another tree over the same products: only the last bits move */
            double worst = 0, scale = max_abs(s1.dw, c.nw);
            size_t differ = 0;
            for (size_t i = 0; i < c.nw; i++) {
                const double e = fabs((double)u.dw[i] - (double)s1.dw[i]);
                worst = e > worst ? e : worst;
                differ += u.dw[i] != s1.dw[i];
            }
            CHECK(worst <= 1e-5 * scale, WHERE("fp32 dweight S=2 vs S=1 beyond rounding"));
            printf("  %s %dx%d/%d: fp32 dweight S=2 vs S=1: %zu of %zu differ, max %.2e of max |dw| %.2e\n", mode,
                   sh->K, sh->K, sh->stride, differ, c.nw, worst, scale);
        }
#undef WHERE
        plan_free(&tp);
    }
    free(da_ref), free(dw_ref);
    run_free(&ref), run_free(&u), run_free(&s1);
    case_free(&c);
}

/* NaN: a NaN first input makes the activation range NaN (one process's
 * scan), a NaN inside the error sends the integer path to its fallback and
 * a NaN first error makes the error range NaN: the same bits with a plan. */
static void test_nan(Rng *r) {
    const Shape sh = shapes[0];
    for (int bwd_fp32 = 0; bwd_fp32 <= 1; bwd_fp32++)
        for (int which = 0; which < 3; which++) {
            Case c;
            case_make(&c, &sh, bwd_fp32, r);
            real *inp = tu_alloc(c.nin), *dout = tu_alloc(c.nout);
            memcpy(inp, c.inp, c.nin * sizeof(real));
            memcpy(dout, c.dout, c.nout * sizeof(real));
            if (which == 0) inp[0] = NAN;
            if (which == 1) dout[5] = -NAN;
            if (which == 2) dout[0] = NAN;
            Run ref, u;
            run_alloc(&ref, &c);
            run_alloc(&u, &c);
            run_case(&ref, &c, NULL, inp, dout);
            TestPlan tp;
            plan_make(&tp, 1, &c.d);
            run_case(&u, &c, &tp.p, inp, dout);
            const char *what[3] = {"NaN input[0]", "NaN error[5]", "NaN error[0]"};
            CHECK(same(u.out, ref.out, c.nout * sizeof(real)), "%s (%d): out", what[which], bwd_fp32);
            CHECK(same(u.saved, ref.saved, c.nsaved * sizeof(real)), "%s (%d): saved", what[which], bwd_fp32);
            CHECK(same(u.running, ref.running, 2 * sizeof(real)), "%s (%d): running", what[which], bwd_fp32);
            CHECK(same(u.dinp, ref.dinp, c.nin * sizeof(real)), "%s (%d): dinp", what[which], bwd_fp32);
            CHECK(same(u.dw, ref.dw, c.nw * sizeof(real)), "%s (%d): dweight", what[which], bwd_fp32);
            CHECK(same(u.da, ref.da, (size_t)c.d.O * sizeof(real)), "%s (%d): dalpha", what[which], bwd_fp32);
            if (which == 0) CHECK(isnan(ref.running[0]), "NaN input[0]: the running zp is NaN (the scan's rule)");
            plan_free(&tp);
            run_free(&ref), run_free(&u);
            free(inp), free(dout);
            case_free(&c);
        }
}

/* QuantRangeHook's contract (core/quant.h), which the ranks rely on: the
 * hook sees the reduction's min and max and x[0]; when x[0] is NaN, the min
 * and max of the other elements instead (NaN when all are NaN); and what it
 * hands back is what zp and range are formed from. */
typedef struct {
    real mn, mx, first;
    int calls;
} HookSeen;
static void record_hook(real *mn, real *mx, real first, void *ctx) {
    HookSeen *h = ctx;
    h->mn = *mn, h->mx = *mx, h->first = first, h->calls++;
    *mn = (real)-2; /* the "batch's" range: the caller must use these */
    *mx = (real)3;
}
static void test_range_hook(void) {
    real x[70];
    for (int i = 0; i < 70; i++) x[i] = (real)((i * 37) % 70) / 10 - (real)3; /* -3 .. 3.9 */
    x[0] = NAN;
    x[11] = NAN;
    HookSeen h = {0};
    real zp, R;
    quant_minmax_params_ex(&zp, &R, x, 70, record_hook, &h);
    real lo = INFINITY, hi = -INFINITY;
    for (int i = 1; i < 70; i++)
        if (x[i] == x[i]) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    CHECK(h.calls == 1 && isnan(h.first), "hook: called once with x[0] (NaN)");
    CHECK(h.mn == lo && h.mx == hi, "hook: NaN x[0]: the other elements' min %g max %g, got %g %g", lo, hi, h.mn, h.mx);
    CHECK(zp == (real)-2 && R == (real)5, "hook: zp, range from the hook's values (%g %g)", zp, R);
    /* no NaN first: the reduction's own values, which are quant_minmax_params' */
    x[0] = (real)0.25;
    real zp0, R0;
    quant_minmax_params(&zp0, &R0, x, 70);
    h.calls = 0;
    quant_minmax_params_ex(&zp, &R, x, 70, record_hook, &h);
    CHECK(h.calls == 1 && h.mn == zp0 && h.mx - h.mn == R0 && h.first == (real)0.25, "hook: plain reduction values");
    /* all NaN: NaN in, NaN first */
    for (int i = 0; i < 5; i++) x[i] = NAN;
    quant_minmax_params_ex(&zp, &R, x, 5, record_hook, &h);
    CHECK(isnan(h.mn) && isnan(h.mx) && isnan(h.first), "hook: all NaN gives NaN");
    /* grad_quant_ex and minmax_uniform_per_tensor_ex use the hook's range */
    real g[4] = {0.1f, 0.2f, 0.3f, 0.4f}, q[4], q_ref[4], run[2] = {0, 0}, run_ref[2] = {0, 0};
    grad_quant_ex(q, g, 4, 2.0, NULL, record_hook, &h);
    minmax_uniform_apply(q_ref, g, 4, (real)-2, (real)5, 2.0);
    CHECK(same(q, q_ref, sizeof q), "grad_quant_ex: quantized on the hook's range");
    minmax_uniform_per_tensor_ex(q, run, NULL, NULL, g, 4, 2.0, 1, record_hook, &h);
    const real m = (real)0.9, m1 = (real)(1.0 - 0.9);
    run_ref[0] = run_ref[0] * m + (real)-2 * m1;
    run_ref[1] = run_ref[1] * m + (real)5 * m1;
    CHECK(same(q, q_ref, sizeof q) && same(run, run_ref, sizeof run), "per_tensor_ex: output and running from the hook");
}

int main(void) {
    Rng r = rng_stream(20240915, RNG_TEST, 15, 2);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bwd_fp32 = 0; bwd_fp32 <= 1; bwd_fp32++) test_case(&shapes[i], bwd_fp32, &r);
    test_nan(&r);
    test_range_hook();
    return tu_finish("shard_bconv");
}
