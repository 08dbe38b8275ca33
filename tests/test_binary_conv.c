/* The CycleBNN binary convolution (core/binary_conv.h) on the float engine.
 *
 * 1. Against PyTorch (tests/golden/make_bconv_golden.py, an independent
 *    re-implementation of BinarizeConv2d from method.md with autograd):
 *    k = 2..6 and 32, stride 1 and 2, error quantization off / stochastic
 *    (the script's noise draws are fed to the C code) / deterministic, and an
 *    eval-mode forward from given running statistics.
 *    Tolerances:
 *      forward out and the running (zp, R): BITWISE equal. Y is an integer
 *        conv of {-1,0,+1} values, exact in float; alpha scales it with one
 *        rounding; the quantizers run the same float32 operations in the same
 *        order as torch. The only way an element could differ is an input
 *        sitting within an ulp of a quantization boundary (a half-integer of
 *        y = (x - zp)/s), where the C variance (summed in another order) could
 *        move it to the neighbouring grid point; the script redraws its inputs
 *        until every element is at least 1e-3 grid steps from such a tie
 *        (k <= 6) or 1e-3 from 0 (k = 32), so no tolerance is needed here.
 *      dL/dx, dL/dW, dL/dalpha: max|c - t| / max|t| <= 1e-5 per tensor. The
 *        quantized error dY is bitwise the same in both (the same float
 *        product dout*alpha, exact min/max, the same noise); what differs is
 *        only the summation order of the conv backward products, of dalpha
 *        and of the E2/E3 Jacobians (torch sums in float, C in double).
 * 2. Option semantics on hand-checked cases: sign(0) = 0 or +1, zero or -1
 *    padding, bits = 0 (no quantization, no running update) and bits = 32.
 * 3. A reference twin built from core/quant.h and the plain conv2d_*_ref
 *    loops on an explicitly padded input, for every option (pad -1, sign +1,
 *    STE activation gradient, ReCU centering and clamp, no E3, eval).
 * 4. Bitwise identical forward, saved state and backward with 1 and 2 threads.
 * 5. Backward accumulates; dinp = NULL leaves dW and dalpha unchanged.
 * 6. The bit-packed forward and the fp32 conv forward: bitwise equal out and saved, every option.
 * 7. Activations saved as 8-bit codes or as reals: bitwise equal out and gradients, every option.
 * 8. Backward products with integer kernels on the error codes (default) or fp32 GEMMs: within rounding. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binary_conv.h"
#include "quant.h"
#include "testutil.h"

#if REAL_IS_DOUBLE
#error "test_binary_conv compares against float32 PyTorch values: link the float engine (cbnn_f32)"
#endif

#define TOL_GRAD 1e-5
#define TOL_TWIN 1e-5

/* ------------------------------------------------------------ golden file */

typedef struct {
    char name[96];
    int ndim, dims[4];
    size_t n;
    real *data;
} GTensor;

typedef struct {
    char name[64], group[64];
    double bits, grad_bits;
    int stride, pad, grad_quant, noise, train;
} GCase;

#define MAX_GT 512
#define MAX_GC 64
static GTensor gt[MAX_GT];
static int ngt = 0;
static GCase gc[MAX_GC];
static int ngc = 0;
static char golden_torch[64] = "?";

static FILE *open_golden(void) {
    const char *rel = "tests/golden/bconv_golden.bin";
    char path[1024];
    const char *root = getenv("CBNN_SOURCE_ROOT");
    const char *prefixes[] = {root, ".", "..", "../.."};
    for (int i = 0; i < 4; i++) {
        if (prefixes[i] == NULL) continue;
        snprintf(path, sizeof path, "%s/%s", prefixes[i], rel);
        FILE *f = fopen(path, "rb");
        if (f) return f;
    }
    return NULL;
}

/* little-endian float32 payload into reals */
static int read_floats(FILE *f, real *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4];
        if (fread(b, 1, 4, f) != 4) return 0;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        float v;
        memcpy(&v, &u, 4);
        dst[i] = (real)v;
    }
    return 1;
}

static int load_golden(void) {
    FILE *f = open_golden();
    if (!f) {
        fprintf(stderr, "cannot open tests/golden/bconv_golden.bin (set CBNN_SOURCE_ROOT)\n");
        return 0;
    }
    char line[512];
    if (!fgets(line, sizeof line, f) || strncmp(line, "CBNN-GOLDEN-V1 float32-le", 25) != 0) {
        fprintf(stderr, "bad golden header\n");
        fclose(f);
        return 0;
    }
    const char *tv = strstr(line, "torch=");
    if (tv) sscanf(tv + 6, "%63s", golden_torch);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "end", 3) == 0) {
            fclose(f);
            return 1;
        }
        if (strncmp(line, "case ", 5) == 0) {
            if (ngc == MAX_GC) break;
            GCase *c = &gc[ngc];
            int got = sscanf(line,
                             "case %63s inputs=%63s bits=%lf grad_bits=%lf stride=%d pad=%d grad_quant=%d noise=%d "
                             "train=%d",
                             c->name, c->group, &c->bits, &c->grad_bits, &c->stride, &c->pad, &c->grad_quant,
                             &c->noise, &c->train);
            if (got != 9) break;
            ngc++;
        } else if (strncmp(line, "tensor ", 7) == 0) {
            if (ngt == MAX_GT) break;
            GTensor *t = &gt[ngt];
            char shape[128];
            if (sscanf(line, "tensor %95s %127s", t->name, shape) != 2) break;
            t->ndim = 0;
            t->n = 1;
            char *p = shape;
            while (*p && t->ndim < 4) {
                long v = strtol(p, &p, 10);
                t->dims[t->ndim++] = (int)v;
                t->n *= (size_t)v;
                if (*p == 'x') p++;
            }
            t->data = tu_alloc(t->n);
            if (!read_floats(f, t->data, t->n)) break;
            ngt++;
        } else {
            break;
        }
    }
    fprintf(stderr, "malformed golden file near: %s\n", line);
    fclose(f);
    return 0;
}

static GTensor *find_t(const char *prefix, const char *what) {
    char name[128];
    snprintf(name, sizeof name, "%s/%s", prefix, what);
    for (int i = 0; i < ngt; i++)
        if (strcmp(gt[i].name, name) == 0) return &gt[i];
    return NULL;
}

static GTensor *need_t(const char *prefix, const char *what, size_t n) {
    GTensor *t = find_t(prefix, what);
    if (t == NULL) {
        fprintf(stderr, "golden tensor %s/%s missing\n", prefix, what);
        exit(1);
    }
    if (n && t->n != n) {
        fprintf(stderr, "golden tensor %s/%s has %zu elements, expected %zu\n", prefix, what, t->n, n);
        exit(1);
    }
    return t;
}

/* elements that are not bitwise equal (as values: -0 == +0) */
static size_t count_diff(const real *a, const real *b, size_t n, double *maxabs) {
    size_t k = 0;
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(a[i] == b[i])) k++;
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= m)) m = e;
    }
    if (maxabs) *maxabs = m;
    return k;
}

/* max|a - b| / max|b| (norm-wise relative error of a tensor) */
static double rel_err(const real *a, const real *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= num)) num = e;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return num / (den > 0 ? den : 1e-30);
}

static double worst_out = 0, worst_dx = 0, worst_dw = 0, worst_dalpha = 0;

static void run_golden_case(const GCase *c) {
    GTensor *x = need_t(c->group, "x", 0), *w = need_t(c->group, "w", 0);
    ConvDims d = conv_dims(x->dims[0], x->dims[1], x->dims[2], x->dims[3], w->dims[0], w->dims[2], c->stride, c->pad);
    const size_t nin = x->n, nw = w->n, nout = (size_t)d.N * d.O * d.OH * d.OW;
    GTensor *alpha = need_t(c->group, "alpha", (size_t)d.O);
    GTensor *run_in = find_t(c->name, "running_in");
    if (run_in == NULL) run_in = need_t(c->group, "running", 2);
    GTensor *dout = need_t(c->group, "dout", nout), *noise = need_t(c->group, "noise", nout);

    BinaryConvOptions o = binary_conv_faithful();
    o.grad_quant = c->grad_quant;
    o.grad_stochastic = c->noise;
    real *saved = tu_alloc(binary_conv_saved_size(&d, NULL)), *scratch = tu_alloc(binary_conv_scratch_size(&d));
    real *out = tu_alloc(nout), running[2] = {run_in->data[0], run_in->data[1]};
    binary_conv_forward(out, saved, running, x->data, w->data, alpha->data, &d, c->bits, c->train, &o, scratch);

    double mabs;
    size_t nd = count_diff(out, need_t(c->name, "out", nout)->data, nout, &mabs);
    CHECK(nd == 0, "%s: forward out differs from torch in %zu of %zu elements (max |diff| %g)", c->name, nd, nout,
          mabs);
    if (mabs > worst_out) worst_out = mabs;
    const real *run_ref = need_t(c->name, "running", 2)->data;
    CHECK(running[0] == run_ref[0] && running[1] == run_ref[1], "%s: running (%.9g, %.9g) vs torch (%.9g, %.9g)",
          c->name, running[0], running[1], run_ref[0], run_ref[1]);
    if (!c->train) {
        printf("  %-12s out: %zu/%zu differ (max %g); running bitwise %s\n", c->name, nd, nout, mabs,
               running[0] == run_ref[0] && running[1] == run_ref[1] ? "equal" : "DIFFERENT");
        free(saved), free(scratch), free(out);
        return;
    }
    real *dx = tu_alloc(nin), *dw = tu_alloc(nw), *dalpha = tu_alloc((size_t)d.O);
    binary_conv_backward(dx, dw, dalpha, dout->data, x->data, w->data, alpha->data, saved, &d, c->bits, c->grad_bits,
                         &o, c->noise ? noise->data : NULL, scratch);
    double ex = rel_err(dx, need_t(c->name, "dx", nin)->data, nin);
    double ew = rel_err(dw, need_t(c->name, "dw", nw)->data, nw);
    double ea = rel_err(dalpha, need_t(c->name, "dalpha", (size_t)d.O)->data, (size_t)d.O);
    CHECK(ex <= TOL_GRAD, "%s: dx rel err %.3g > %g", c->name, ex, TOL_GRAD);
    CHECK(ew <= TOL_GRAD, "%s: dW rel err %.3g > %g", c->name, ew, TOL_GRAD);
    CHECK(ea <= TOL_GRAD, "%s: dalpha rel err %.3g > %g", c->name, ea, TOL_GRAD);
    if (ex > worst_dx) worst_dx = ex;
    if (ew > worst_dw) worst_dw = ew;
    if (ea > worst_dalpha) worst_dalpha = ea;
    printf("  %-12s out: %zu/%zu differ (max %g); rel err dx %.2e  dW %.2e  dalpha %.2e\n", c->name, nd, nout, mabs,
           ex, ew, ea);
    free(saved), free(scratch), free(out), free(dx), free(dw), free(dalpha);
}

static void test_golden(void) {
    if (!load_golden()) {
        CHECK(0, "golden file could not be loaded");
        return;
    }
    printf("golden (torch %s): %d cases, %d tensors\n", golden_torch, ngc, ngt);
    CHECK(ngc >= 26, "expected at least 26 golden cases, found %d", ngc);
    for (int i = 0; i < ngc; i++) run_golden_case(&gc[i]);
    printf("  worst: out max|diff| %g; rel err dx %.2e  dW %.2e  dalpha %.2e (tolerance %g)\n", worst_out, worst_dx,
           worst_dw, worst_dalpha, TOL_GRAD);
}

/* --------------------------------------------------- the reference twin */

/* Everything binary_conv does, written out with quant.h and the plain
 * reference conv loops on an explicitly padded input: a different
 * composition of the same definitions (padding, cropping, conv kernels,
 * buffer reuse are what it checks). Accumulates like the op. */
static void twin(real *out, real *running, real *dx, real *dw, real *dalpha, const real *x, const real *w,
                 const real *alpha, const real *dout, const ConvDims *d, double bits, double gbits, int train,
                 const BinaryConvOptions *o, const real *noise) {
    const int N = d->N, C = d->C, H = d->H, W = d->W, O = d->O;
    const size_t CK = (size_t)C * d->KH * d->KW, nw = (size_t)O * CK, CHW = (size_t)C * H * W, nin = N * CHW;
    const size_t OHW = (size_t)d->OH * d->OW, nout = (size_t)N * O * OHW;
    const int zplus = o->sign_zero == SIGN_ZERO_IS_PLUS_ONE;
    real *w1 = tu_alloc(nw), *w2 = tu_alloc(nw), *bw = tu_alloc(nw), *sw = tu_alloc(O), *mw = tu_alloc(O);
    weight_standardize_forward(w1, sw, mw, w, O, CK, o->weight_center);
    real q = (real)INFINITY;
    memcpy(w2, w1, nw * sizeof(real));
    if (o->recu_clamp) {
        q = recu_clamp_q(w1, nw, o->clamp_tau);
        recu_clamp_forward(w2, w1, nw, q);
    }
    minmax_uniform_per_channel(bw, NULL, NULL, w2, O, CK, bits);
    for (size_t i = 0; i < nw; i++) bw[i] = sign_value(bw[i], zplus);

    const int normed = train && o->act_norm;
    real *a0 = tu_alloc(nin), *sa = tu_alloc(N), *ma = tu_alloc(N), *aq = tu_alloc(nin);
    if (normed) act_normalize_forward(a0, sa, ma, x, N, CHW);
    else memcpy(a0, x, nin * sizeof(real));
    minmax_uniform_per_tensor(aq, running, NULL, NULL, a0, nin, bits, train);

    const int p = o->pad_minus_one ? d->pad : 0, Hp = H + 2 * p, Wp = W + 2 * p;
    ConvDims dr = conv_dims(N, C, Hp, Wp, O, d->KH, d->stride, o->pad_minus_one ? 0 : d->pad);
    real *ba = tu_alloc((size_t)N * C * Hp * Wp);
    for (int nc = 0; nc < N * C; nc++)
        for (int i = 0; i < Hp; i++)
            for (int j = 0; j < Wp; j++) {
                int in = i >= p && i < H + p && j >= p && j < W + p;
                ba[((size_t)nc * Hp + i) * Wp + j] =
                    in ? sign_value(aq[((size_t)nc * H + i - p) * W + j - p], zplus) : (real)-1;
            }
    real *y = tu_alloc(nout);
    conv2d_forward_ref(y, ba, bw, &dr);
    for (size_t i = 0; i < nout; i++) out[i] = y[i] * alpha[(i / OHW) % O];

    if (dx || dw) {
        for (int oc = 0; oc < O; oc++) {
            double acc = 0;
            for (int n = 0; n < N; n++)
                for (size_t i = 0; i < OHW; i++) acc += (double)dout[((size_t)n * O + oc) * OHW + i] * y[((size_t)n * O + oc) * OHW + i];
            dalpha[oc] += (real)acc;
        }
        real *dy = tu_alloc(nout);
        for (size_t i = 0; i < nout; i++) dy[i] = dout[i] * alpha[(i / OHW) % O];
        if (o->grad_quant) grad_quant(dy, dy, nout, gbits, o->grad_stochastic ? noise : NULL);
        real *dba = tu_alloc((size_t)N * C * Hp * Wp), *dbw = tu_alloc(nw), *dw1 = tu_alloc(nw);
        conv2d_backward_ref(dba, dbw, dy, ba, bw, &dr);
        if (o->recu_clamp) recu_clamp_backward(dw1, dbw, w1, nw, q);
        else memcpy(dw1, dbw, nw * sizeof(real));
        weight_standardize_backward(dw, dw1, w, sw, mw, O, CK, o->weight_center);
        real *da0 = tu_alloc(nin);
        for (int nc = 0; nc < N * C; nc++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    size_t k = ((size_t)nc * H + i) * W + j;
                    real g = dba[((size_t)nc * Hp + i + p) * Wp + j + p];
                    da0[k] = o->act_grad == ACT_GRAD_APPROX_SIGN ? g * approx_sign_grad(aq[k]) : g;
                }
        if (normed) act_normalize_backward(dx, da0, x, sa, ma, N, CHW);
        else
            for (size_t i = 0; i < nin; i++) dx[i] += da0[i];
        free(dy), free(dba), free(dbw), free(dw1), free(da0);
    }
    free(w1), free(w2), free(bw), free(sw), free(mw), free(a0), free(sa), free(ma), free(aq), free(ba), free(y);
}

typedef struct {
    const char *name;
    BinaryConvOptions o;
    double bits;
    int stride, train;
} TwinCase;

static void test_twin(void) {
    Rng r = rng_stream(7, RNG_TEST, 1, 0);
    TwinCase cases[6];
    int nc = 0;
    BinaryConvOptions f = binary_conv_faithful();
    cases[nc++] = (TwinCase){"faithful k3 s1", f, 3.0, 1, 1};
    BinaryConvOptions a = f;
    a.pad_minus_one = 1;
    a.sign_zero = SIGN_ZERO_IS_PLUS_ONE;
    a.act_grad = ACT_GRAD_STE;
    cases[nc++] = (TwinCase){"pad-1 sign+1 STE k2 s2", a, 2.0, 2, 1};
    BinaryConvOptions b = f;
    b.weight_center = 1;
    b.recu_clamp = 1;
    b.clamp_tau = 0.9; /* Q = -mean|W1| log(0.2) ~ 1.6 mean|W1|: clamps the tails */
    b.act_norm = 0;
    b.grad_stochastic = 0;
    cases[nc++] = (TwinCase){"center+clamp no-E3 k4", b, 4.0, 1, 1};
    BinaryConvOptions e = f;
    e.pad_minus_one = 1;
    cases[nc++] = (TwinCase){"pad-1 eval k5", e, 5.0, 1, 0};
    BinaryConvOptions g = f;
    g.grad_quant = 0;
    cases[nc++] = (TwinCase){"no grad quant k6 s2", g, 6.0, 2, 1};
    cases[nc++] = (TwinCase){"bits 0", f, 0.0, 1, 1};

    for (int t = 0; t < nc; t++) {
        const TwinCase *tc = &cases[t];
        ConvDims d = conv_dims(3, 4, 7, 6, 5, 3, tc->stride, 1);
        const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * 9;
        const size_t nout = (size_t)d.N * d.O * d.OH * d.OW;
        real *x = tu_alloc(nin), *w = tu_alloc(nw), *alpha = tu_alloc(d.O), *dout = tu_alloc(nout),
             *noise = tu_alloc(nout);
        tu_fill_uniform(x, nin, -0.7, 1.3, &r);
        tu_fill_uniform(w, nw, -0.04, 0.06, &r);
        tu_fill_uniform(alpha, d.O, 0, 1, &r);
        tu_fill_uniform(dout, nout, -1, 1, &r);
        quant_fill_noise(noise, nout, 11, t, 0);
        real run0[2] = {(real)-0.8, (real)2.1};
        real *saved = tu_alloc(binary_conv_saved_size(&d, NULL)), *scratch = tu_alloc(binary_conv_scratch_size(&d));
        real *out = tu_alloc(nout), *dx = tu_alloc(nin), *dw = tu_alloc(nw), *da = tu_alloc(d.O);
        real *out_r = tu_alloc(nout), *dx_r = tu_alloc(nin), *dw_r = tu_alloc(nw), *da_r = tu_alloc(d.O);
        real run[2] = {run0[0], run0[1]}, run_r[2] = {run0[0], run0[1]};
        binary_conv_forward(out, saved, run, x, w, alpha, &d, tc->bits, tc->train, &tc->o, scratch);
        binary_conv_backward(dx, dw, da, dout, x, w, alpha, saved, &d, tc->bits, 8.0, &tc->o, noise, scratch);
        twin(out_r, run_r, dx_r, dw_r, da_r, x, w, alpha, dout, &d, tc->bits, 8.0, tc->train, &tc->o, noise);
        double mabs;
        size_t nd = count_diff(out, out_r, nout, &mabs);
        CHECK(nd == 0, "twin %s: forward differs in %zu elements (max %g)", tc->name, nd, mabs);
        CHECK(run[0] == run_r[0] && run[1] == run_r[1], "twin %s: running differs", tc->name);
        double ex = rel_err(dx, dx_r, nin), ew = rel_err(dw, dw_r, nw), ea = rel_err(da, da_r, d.O);
        CHECK(ex <= TOL_TWIN && ew <= TOL_TWIN && ea <= TOL_TWIN, "twin %s: rel err dx %.3g dW %.3g dalpha %.3g",
              tc->name, ex, ew, ea);
        printf("  twin %-24s out %zu differ; rel err dx %.2e dW %.2e dalpha %.2e\n", tc->name, nd, ex, ew, ea);
        if (tc->bits == 0) CHECK(run[0] == run0[0] && run[1] == run0[1], "bits 0 must not update the running range");
        if (!tc->train) CHECK(run[0] == run0[0] && run[1] == run0[1], "eval must not update the running range");
        free(x), free(w), free(alpha), free(dout), free(noise), free(saved), free(scratch);
        free(out), free(dx), free(dw), free(da), free(out_r), free(dx_r), free(dw_r), free(da_r);
    }
}

/* ------------------------------------------------ hand-checked semantics */

/* sign(0): bits = 0 makes Ba = sign(x / sigma) = sign(x) and Bw = sign(W), so
 * out must be alpha * conv_ref(sign(x), sign(W)) with the chosen sign(0). */
static void test_sign_zero(void) {
    Rng r = rng_stream(7, RNG_TEST, 2, 0);
    ConvDims d = conv_dims(2, 3, 5, 5, 4, 3, 1, 1);
    const size_t nin = 150, nw = 108, nout = 200;
    real *x = tu_alloc_rand(nin, &r), *w = tu_alloc_rand(nw, &r), *alpha = tu_alloc(4);
    for (size_t i = 0; i < nin; i += 4) x[i] = 0;
    for (size_t i = 0; i < nw; i += 5) w[i] = 0;
    for (int o = 0; o < 4; o++) alpha[o] = (real)(0.25 * (o + 1));
    real *saved = tu_alloc(binary_conv_saved_size(&d, NULL)), *scratch = tu_alloc(binary_conv_scratch_size(&d));
    real *out[2], *ref = tu_alloc(nout), *sx = tu_alloc(nin), *sw = tu_alloc(nw);
    for (int zp1 = 0; zp1 < 2; zp1++) {
        BinaryConvOptions o = binary_conv_faithful();
        o.sign_zero = zp1 ? SIGN_ZERO_IS_PLUS_ONE : SIGN_ZERO_IS_ZERO;
        real run[2] = {0, 0};
        out[zp1] = tu_alloc(nout);
        binary_conv_forward(out[zp1], saved, run, x, w, alpha, &d, 0.0, 1, &o, scratch);
        for (size_t i = 0; i < nin; i++) sx[i] = x[i] > 0 ? 1 : x[i] < 0 ? -1 : (real)zp1;
        for (size_t i = 0; i < nw; i++) sw[i] = w[i] > 0 ? 1 : w[i] < 0 ? -1 : (real)zp1;
        conv2d_forward_ref(ref, sx, sw, &d);
        for (size_t i = 0; i < nout; i++) ref[i] *= alpha[(i / 25) % 4];
        size_t nd = count_diff(out[zp1], ref, nout, NULL);
        CHECK(nd == 0, "sign(0) = %d: %zu outputs differ from alpha*conv(sign x, sign W)", zp1, nd);
        CHECK(run[0] == 0 && run[1] == 0, "bits 0 updated the running range");
    }
    CHECK(count_diff(out[0], out[1], nout, NULL) > 0, "sign(0) option changed nothing");
    free(x), free(w), free(alpha), free(saved), free(scratch), free(out[0]), free(out[1]), free(ref), free(sx), free(sw);
}

/* padding: all-positive x and W, bits 0, C = 2, K = 3, pad 1, alpha 1: an
 * output sees 9 taps of +1*+1 = 1 each, of which the border ones read the
 * padding: zero padding gives 2*(taps inside) = corner 8, edge 12, centre 18;
 * -1 padding gives 2*(inside - border) = corner 2*(4-5) = -2, edge 2*(6-3) = 6,
 * centre 18. */
static void test_padding(void) {
    Rng r = rng_stream(7, RNG_TEST, 3, 0);
    ConvDims d = conv_dims(1, 2, 4, 4, 1, 3, 1, 1);
    real *x = tu_alloc(32), *w = tu_alloc(18), alpha = 1, out[16];
    tu_fill_uniform(x, 32, 0.1, 1.0, &r);
    tu_fill_uniform(w, 18, 0.1, 1.0, &r);
    real *saved = tu_alloc(binary_conv_saved_size(&d, NULL)), *scratch = tu_alloc(binary_conv_scratch_size(&d));
    for (int m1 = 0; m1 < 2; m1++) {
        BinaryConvOptions o = binary_conv_faithful();
        o.pad_minus_one = m1;
        real run[2] = {0, 0};
        binary_conv_forward(out, saved, run, x, w, &alpha, &d, 0.0, 1, &o, scratch);
        real corner = m1 ? -2 : 8, edge = m1 ? 6 : 12, centre = 18;
        int bad = 0;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                int bi = i == 0 || i == 3, bj = j == 0 || j == 3;
                real want = bi && bj ? corner : bi || bj ? edge : centre;
                if (out[i * 4 + j] != want) bad++;
            }
        CHECK(bad == 0, "%s padding: %d of 16 outputs wrong (corner %g, want %g)", m1 ? "-1" : "zero", bad, out[0],
              corner);
    }
    free(x), free(w), free(saved), free(scratch);
}

/* bits = 32: Q_32 moves the sign threshold by < s/2 = R*2^-33 and changes a
 * value by float rounding only, so signs (hence out) equal bits = 0 on random
 * data and the gradients differ only through the ApproxSign factor evaluated
 * at Q_32(A0) instead of A0: within float rounding. */
static void test_bits_32(void) {
    Rng r = rng_stream(7, RNG_TEST, 4, 0);
    ConvDims d = conv_dims(2, 4, 8, 8, 6, 3, 1, 1);
    const size_t nin = 512, nw = 216, nout = 768;
    real *x = tu_alloc(nin), *w = tu_alloc(nw), *alpha = tu_alloc(6), *dout = tu_alloc_rand(nout, &r);
    tu_fill_uniform(x, nin, -0.5, 1.5, &r);
    tu_fill_uniform(w, nw, -0.3, 0.2, &r);
    tu_fill_uniform(alpha, 6, 0, 1, &r);
    BinaryConvOptions o = binary_conv_faithful();
    o.grad_stochastic = 0;
    real *saved = tu_alloc(binary_conv_saved_size(&d, NULL)), *scratch = tu_alloc(binary_conv_scratch_size(&d));
    real *out[2], *dx[2], *dw[2], *da[2];
    const double bits[2] = {0.0, 32.0};
    for (int b = 0; b < 2; b++) {
        real run[2] = {0, 0};
        out[b] = tu_alloc(nout), dx[b] = tu_alloc(nin), dw[b] = tu_alloc(nw), da[b] = tu_alloc(6);
        binary_conv_forward(out[b], saved, run, x, w, alpha, &d, bits[b], 1, &o, scratch);
        binary_conv_backward(dx[b], dw[b], da[b], dout, x, w, alpha, saved, &d, bits[b], 8.0, &o, NULL, scratch);
        if (b == 1) CHECK(run[1] > 0, "bits 32 must update the running range");
    }
    CHECK(count_diff(out[0], out[1], nout, NULL) == 0, "bits 32 forward differs from bits 0");
    CHECK(count_diff(dw[0], dw[1], nw, NULL) == 0 && count_diff(da[0], da[1], 6, NULL) == 0,
          "bits 32: dW/dalpha must equal bits 0 (same Ba, Bw, dY)");
    double e = rel_err(dx[1], dx[0], nin);
    CHECK(e < 1e-5, "bits 32: dx differs from bits 0 by %.3g", e);
    for (int b = 0; b < 2; b++) free(out[b]), free(dx[b]), free(dw[b]), free(da[b]);
    free(x), free(w), free(alpha), free(dout), free(saved), free(scratch);
}

/* ---------------------------------------------------- threads, accumulation */

static void run_all(real *out, real *saved, real *run, real *dx, real *dw, real *da, const real *x, const real *w,
                    const real *alpha, const real *dout, const real *noise, const ConvDims *d,
                    const BinaryConvOptions *o, real *scratch) {
    binary_conv_forward(out, saved, run, x, w, alpha, d, 3.0, 1, o, scratch);
    binary_conv_backward(dx, dw, da, dout, x, w, alpha, saved, d, 3.0, 8.0, o, noise, scratch);
}

/* sizes chosen so that every parallel path forks: > 65536 elements (two
 * min/max chunks, many noise chunks), several conv samples and channel blocks */
static void test_threads(void) {
    Rng r = rng_stream(7, RNG_TEST, 5, 0);
    ConvDims d = conv_dims(4, 16, 34, 34, 16, 3, 1, 1);
    const size_t nin = (size_t)4 * 16 * 34 * 34, nw = 16 * 16 * 9, nout = (size_t)4 * 16 * 34 * 34;
    const size_t ns = binary_conv_saved_size(&d, NULL);
    real *x = tu_alloc(nin), *w = tu_alloc_rand(nw, &r), *alpha = tu_alloc(16), *dout = tu_alloc_rand(nout, &r);
    real *noise[2] = {tu_alloc(nout), tu_alloc(nout)};
    tu_fill_uniform(x, nin, -1.0, 1.0, &r);
    for (size_t i = 0; i < nin; i += 3) x[i] = x[i] > 0 ? 1 : -1; /* hardtanh-saturated inputs, as in the models */
    tu_fill_uniform(alpha, 16, 0, 1, &r);
    real *scratch = tu_alloc(binary_conv_scratch_size(&d));
    BinaryConvOptions opts[2] = {binary_conv_faithful(), binary_conv_faithful()};
    opts[1].pad_minus_one = 1;
    opts[1].recu_clamp = 1;
    opts[1].clamp_tau = 0.95;
    opts[1].weight_center = 1;
    for (int v = 0; v < 2; v++) {
        real *out[2], *saved[2], *dx[2], *dw[2], *da[2], run[2][2];
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t + 1);
            quant_fill_noise(noise[t], nout, 5, 17, 3);
            out[t] = tu_alloc(nout), saved[t] = tu_alloc(ns), dx[t] = tu_alloc(nin), dw[t] = tu_alloc(nw),
            da[t] = tu_alloc(16);
            run[t][0] = (real)-0.5, run[t][1] = (real)1.5;
            run_all(out[t], saved[t], run[t], dx[t], dw[t], da[t], x, w, alpha, dout, noise[t], &d, &opts[v],
                    scratch);
        }
        omp_set_num_threads(2);
        CHECK(memcmp(noise[0], noise[1], nout * sizeof(real)) == 0, "noise differs between 1 and 2 threads");
        CHECK(memcmp(out[0], out[1], nout * sizeof(real)) == 0, "variant %d: out differs between 1 and 2 threads", v);
        CHECK(memcmp(saved[0], saved[1], ns * sizeof(real)) == 0, "variant %d: saved differs with threads", v);
        CHECK(memcmp(run[0], run[1], sizeof run[0]) == 0, "variant %d: running differs with threads", v);
        CHECK(memcmp(dx[0], dx[1], nin * sizeof(real)) == 0, "variant %d: dx differs between 1 and 2 threads", v);
        CHECK(memcmp(dw[0], dw[1], nw * sizeof(real)) == 0, "variant %d: dW differs between 1 and 2 threads", v);
        CHECK(memcmp(da[0], da[1], 16 * sizeof(real)) == 0, "variant %d: dalpha differs with threads", v);

        /* accumulation: a second backward adds the same again; dinp = NULL
         * leaves the weight-side gradients bitwise as they were */
        real *dw2 = tu_alloc(nw), *da2 = tu_alloc(16);
        binary_conv_backward(dx[0], dw[0], da[0], dout, x, w, alpha, saved[0], &d, 3.0, 8.0, &opts[v], noise[0],
                             scratch);
        binary_conv_backward(NULL, dw2, da2, dout, x, w, alpha, saved[0], &d, 3.0, 8.0, &opts[v], noise[0], scratch);
        CHECK(memcmp(dw2, dw[1], nw * sizeof(real)) == 0 && memcmp(da2, da[1], 16 * sizeof(real)) == 0,
              "variant %d: dinp = NULL changed dW or dalpha", v);
        double worst = 0;
        for (size_t i = 0; i < nin; i++) {
            double e = fabs((double)dx[0][i] - 2.0 * dx[1][i]) / (fabs(2.0 * dx[1][i]) + 1e-3);
            if (e > worst) worst = e;
        }
        for (size_t i = 0; i < nw; i++) {
            double e = fabs((double)dw[0][i] - 2.0 * dw[1][i]) / (fabs(2.0 * dw[1][i]) + 1e-3);
            if (e > worst) worst = e;
        }
        CHECK(worst < 1e-6, "variant %d: backward does not accumulate (rel %g)", v, worst);
        for (int t = 0; t < 2; t++) free(out[t]), free(saved[t]), free(dx[t]), free(dw[t]), free(da[t]);
        free(dw2), free(da2);
    }
    free(x), free(w), free(alpha), free(dout), free(noise[0]), free(noise[1]), free(scratch);
}

/* 6. The bit-packed forward (default) against the fp32 conv (conv_fp32 = 1):
 * bitwise-equal out, saved state and running range for every option
 * combination on the models' conv shapes (3x3 and 1x1, stride 1 and 2, C
 * below, at and above a 64-bit word), with exact zeros in x and W so that
 * sign(0) matters. */
/* inputs with the edge cases the bit paths must get right: exact zeros in x
 * and W, hardtanh-saturated +-1 in x, alpha away from 0 */
static void fill_edge_inputs(real *x, size_t nin, real *w, size_t nw, real *alpha, int O, Rng *r) {
    tu_fill_uniform(x, nin, -1.0, 1.0, r);
    for (size_t i = 0; i < nin; i += 5) x[i] = 0;
    for (size_t i = 2; i < nin; i += 7) x[i] = x[i] > 0 ? 1 : -1;
    for (size_t i = 0; i < nw; i += 6) w[i] = 0;
    tu_fill_uniform(alpha, (size_t)O, 0.1, 1.0, r);
}

/* options from the bits of combo: sign(0) = +1, -1 padding, eval, no E3,
 * ReCU centering and clamp; *train from bit 2 */
static BinaryConvOptions combo_options(int combo, int *train) {
    BinaryConvOptions o = binary_conv_faithful();
    o.sign_zero = combo & 1 ? SIGN_ZERO_IS_PLUS_ONE : SIGN_ZERO_IS_ZERO;
    o.pad_minus_one = (combo >> 1) & 1;
    *train = !((combo >> 2) & 1);
    o.act_norm = !((combo >> 3) & 1);
    if ((combo >> 4) & 1) o.weight_center = 1, o.recu_clamp = 1, o.clamp_tau = 0.95;
    return o;
}

static void test_packed_vs_fp32(void) {
    Rng r = rng_stream(7, RNG_TEST, 6, 0);
    static const int shapes[][8] = {
        /* N, C, H, W, O, K, stride, pad */
        {2, 3, 9, 9, 5, 3, 1, 1},   {2, 16, 8, 8, 8, 3, 2, 1}, {3, 64, 6, 6, 4, 3, 1, 1},
        {2, 70, 7, 5, 6, 3, 2, 1},  {2, 16, 8, 8, 8, 1, 2, 0}, {2, 33, 5, 5, 7, 1, 1, 0},
        {1, 128, 4, 4, 9, 3, 1, 1}, {2, 8, 5, 7, 3, 1, 1, 0},
    };
    static const double bitss[] = {0.0, 2.0, 6.0, 32.0};
    int ncase = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int *s = shapes[si];
        ConvDims d = conv_dims(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * d.KH * d.KW;
        const size_t nout = (size_t)d.N * d.O * d.OH * d.OW, ns = binary_conv_saved_size(&d, NULL);
        real *x = tu_alloc(nin), *w = tu_alloc_rand(nw, &r), *alpha = tu_alloc(d.O);
        fill_edge_inputs(x, nin, w, nw, alpha, d.O, &r);
        real *out[2] = {tu_alloc(nout), tu_alloc(nout)}, *saved[2] = {tu_alloc(ns), tu_alloc(ns)};
        const size_t nscr = binary_conv_scratch_size(&d);
        real *scratch = tu_alloc(nscr);
        for (int combo = 0; combo < 32; combo++)
            for (size_t bi = 0; bi < sizeof bitss / sizeof bitss[0]; bi++) {
                int train;
                BinaryConvOptions o = combo_options(combo, &train);
                real run[2][2];
                for (int path = 0; path < 2; path++) {
                    o.conv_fp32 = path;
                    run[path][0] = (real)-0.6, run[path][1] = (real)1.7;
                    memset(saved[path], 0, ns * sizeof(real));
                    for (size_t i = 0; i < nscr; i++) scratch[i] = (real)NAN;
                    binary_conv_forward(out[path], saved[path], run[path], x, w, alpha, &d, bitss[bi], train, &o,
                                        scratch);
                }
                CHECK(memcmp(out[0], out[1], nout * sizeof(real)) == 0 &&
                          memcmp(saved[0], saved[1], ns * sizeof(real)) == 0 &&
                          memcmp(run[0], run[1], sizeof run[0]) == 0,
                      "packed vs fp32 forward differ: shape %zu, sign0+1 %d, pad-1 %d, train %d, act_norm %d, "
                      "recu %d, bits %g",
                      si, combo & 1, (combo >> 1) & 1, train, o.act_norm, (combo >> 4) & 1, bitss[bi]);
                ncase++;
            }
        free(x), free(w), free(alpha), free(out[0]), free(out[1]), free(saved[0]), free(saved[1]), free(scratch);
    }
    CHECK(binary_conv_faithful().conv_fp32 == 0, "the packed forward is not the default");
    printf("packed vs fp32 forward: %d cases bitwise equal\n", ncase);
}

/* 7. Saving the activations as 8-bit codes (save_act_codes, what training
 * uses when every forward has 1..8 bits) against saving Aq as reals: bitwise
 * equal out, running range and all three gradients, for every option, both
 * forward paths, training and eval, k = 1, 2, 5, 8, and the saved size shrinks. */
static void test_codes_vs_real(void) {
    Rng r = rng_stream(7, RNG_TEST, 8, 0);
    static const int shapes[][8] = {
        /* N, C, H, W, O, K, stride, pad */
        {2, 3, 9, 9, 5, 3, 1, 1}, {2, 70, 7, 5, 6, 3, 2, 1}, {2, 33, 5, 5, 7, 1, 1, 0}, {3, 64, 6, 6, 4, 3, 1, 1},
    };
    static const double bitss[] = {1.0, 2.0, 5.0, 8.0};
    int ncase = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int *s = shapes[si];
        ConvDims d = conv_dims(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * d.KH * d.KW;
        const size_t nout = (size_t)d.N * d.O * d.OH * d.OW;
        BinaryConvOptions oc = binary_conv_faithful();
        oc.save_act_codes = 1;
        const size_t ns[2] = {binary_conv_saved_size(&d, NULL), binary_conv_saved_size(&d, &oc)};
        CHECK(ns[1] < ns[0] && ns[0] - ns[1] >= nin / 2, "shape %zu: codes do not shrink saved (%zu vs %zu reals)", si,
              ns[1], ns[0]);
        real *x = tu_alloc(nin), *w = tu_alloc_rand(nw, &r), *alpha = tu_alloc(d.O), *dout = tu_alloc_rand(nout, &r);
        real *noise = tu_alloc(nout);
        quant_fill_noise(noise, nout, 3, 1, 2);
        fill_edge_inputs(x, nin, w, nw, alpha, d.O, &r);
        real *out[2], *saved[2], *dx[2], *dw[2], *da[2];
        for (int k = 0; k < 2; k++)
            out[k] = tu_alloc(nout), saved[k] = tu_alloc(ns[k]), dx[k] = tu_alloc(nin), dw[k] = tu_alloc(nw),
            da[k] = tu_alloc(d.O);
        real *scratch = tu_alloc(binary_conv_scratch_size(&d));
        for (int combo = 0; combo < 64; combo++)
            for (size_t bi = 0; bi < sizeof bitss / sizeof bitss[0]; bi++) {
                int train;
                BinaryConvOptions o = combo_options(combo, &train);
                o.conv_fp32 = (combo >> 5) & 1;
                if (combo & 1) o.act_grad = ACT_GRAD_STE;
                real run[2][2];
                for (int k = 0; k < 2; k++) {
                    o.save_act_codes = k;
                    run[k][0] = (real)-0.6, run[k][1] = (real)1.7;
                    memset(dx[k], 0, nin * sizeof(real)), memset(dw[k], 0, nw * sizeof(real));
                    memset(da[k], 0, d.O * sizeof(real));
                    binary_conv_forward(out[k], saved[k], run[k], x, w, alpha, &d, bitss[bi], train, &o, scratch);
                    binary_conv_backward(dx[k], dw[k], da[k], dout, x, w, alpha, saved[k], &d, bitss[bi], 8.0, &o,
                                         noise, scratch);
                }
                CHECK(memcmp(out[0], out[1], nout * sizeof(real)) == 0 && memcmp(run[0], run[1], sizeof run[0]) == 0 &&
                          memcmp(dx[0], dx[1], nin * sizeof(real)) == 0 &&
                          memcmp(dw[0], dw[1], nw * sizeof(real)) == 0 &&
                          memcmp(da[0], da[1], d.O * sizeof(real)) == 0,
                      "codes vs real saved differ: shape %zu, combo %d, train %d, bits %g", si, combo, train,
                      bitss[bi]);
                ncase++;
            }
        for (int k = 0; k < 2; k++) free(out[k]), free(saved[k]), free(dx[k]), free(dw[k]), free(da[k]);
        free(x), free(w), free(alpha), free(dout), free(noise), free(scratch);
    }
    printf("codes vs real saved activations: %d cases bitwise equal\n", ncase);
}

/* max|a - b| / max|b| over a tensor (the golden comparison's measure) */
static double tensor_rel_err(const real *a, const real *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - (double)b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

/* 8. The backward products on the error's 8-bit codes with integer kernels
 * (default) against the fp32 GEMMs of the dequantized error (binary.backward:
 * fp32): dalpha bitwise equal (the same loop), dx and dW within float rounding
 * of each other, for every option and both saved forms; and the integer path
 * really runs (some gradient differs bitwise somewhere). Error bits 8, 4 and 2;
 * with grad_quant off both run the fp32 GEMMs and must agree bitwise. */
static void test_int8_vs_fp32_backward(void) {
    Rng r = rng_stream(7, RNG_TEST, 9, 0);
    static const int shapes[][8] = {
        {2, 3, 9, 9, 5, 3, 1, 1}, {2, 70, 7, 5, 6, 3, 2, 1}, {2, 33, 5, 5, 7, 1, 1, 0}, {3, 64, 10, 10, 9, 3, 1, 1},
    };
    static const double gbits[] = {8.0, 4.0, 2.0};
    int ncase = 0, differ = 0;
    double worst = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int *s = shapes[si];
        ConvDims d = conv_dims(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.O * d.C * d.KH * d.KW;
        const size_t nout = (size_t)d.N * d.O * d.OH * d.OW;
        const size_t ns = binary_conv_saved_size(&d, NULL); /* the larger layout serves both */
        real *x = tu_alloc(nin), *w = tu_alloc_rand(nw, &r), *alpha = tu_alloc(d.O), *dout = tu_alloc_rand(nout, &r);
        real *noise = tu_alloc(nout), *out = tu_alloc(nout), *saved = tu_alloc(ns);
        quant_fill_noise(noise, nout, 3, 1, 2);
        tu_fill_uniform(x, nin, -1.0, 1.0, &r);
        for (size_t i = 0; i < nin; i += 5) x[i] = 0;
        tu_fill_uniform(alpha, d.O, 0.1, 1.0, &r);
        real *dx[2], *dw[2], *da[2];
        for (int k = 0; k < 2; k++) dx[k] = tu_alloc(nin), dw[k] = tu_alloc(nw), da[k] = tu_alloc(d.O);
        real *scratch = tu_alloc(binary_conv_scratch_size(&d));
        for (int combo = 0; combo < 32; combo++)
            for (size_t gi = 0; gi < sizeof gbits / sizeof gbits[0]; gi++) {
                BinaryConvOptions o = binary_conv_faithful();
                o.sign_zero = combo & 1 ? SIGN_ZERO_IS_PLUS_ONE : SIGN_ZERO_IS_ZERO;
                o.pad_minus_one = (combo >> 1) & 1;
                o.save_act_codes = (combo >> 2) & 1;
                o.grad_stochastic = !((combo >> 3) & 1);
                o.grad_quant = !((combo >> 4) & 1);
                for (int k = 0; k < 2; k++) {
                    o.bwd_fp32 = k;
                    real run[2] = {(real)-0.6, (real)1.7};
                    memset(dx[k], 0, nin * sizeof(real)), memset(dw[k], 0, nw * sizeof(real));
                    memset(da[k], 0, d.O * sizeof(real));
                    binary_conv_forward(out, saved, run, x, w, alpha, &d, 3.0, 1, &o, scratch);
                    binary_conv_backward(dx[k], dw[k], da[k], dout, x, w, alpha, saved, &d, 3.0, gbits[gi], &o, noise,
                                         scratch);
                }
                const int same = !memcmp(dx[0], dx[1], nin * sizeof(real)) && !memcmp(dw[0], dw[1], nw * sizeof(real));
                double e = fmax(tensor_rel_err(dx[0], dx[1], nin), tensor_rel_err(dw[0], dw[1], nw));
                if (e > worst) worst = e;
                CHECK(memcmp(da[0], da[1], d.O * sizeof(real)) == 0, "int8 vs fp32: dalpha differs (shape %zu combo %d)",
                      si, combo);
                CHECK(e <= 1e-5, "int8 vs fp32 backward: rel err %g (shape %zu combo %d grad bits %g)", e, si, combo,
                      gbits[gi]);
                if (!o.grad_quant) CHECK(same, "no error quantization: both paths are the fp32 GEMMs, yet they differ");
                differ += !same;
                ncase++;
            }
        for (int k = 0; k < 2; k++) free(dx[k]), free(dw[k]), free(da[k]);
        free(x), free(w), free(alpha), free(dout), free(noise), free(out), free(saved), free(scratch);
    }
    CHECK(differ > 0, "the integer backward never changed a bit: is it running?");
    CHECK(binary_conv_faithful().bwd_fp32 == 0, "the integer backward is not the default");
    printf("int8 vs fp32 backward products: %d cases, %d differ bitwise, worst rel err %.2e\n", ncase, differ, worst);
}

/* the defaults are the authors' code (method.md 3.1-3.4) */
static void test_faithful_defaults(void) {
    BinaryConvOptions o = binary_conv_faithful();
    CHECK(o.sign_zero == SIGN_ZERO_IS_ZERO && o.pad_minus_one == 0 && o.act_grad == ACT_GRAD_APPROX_SIGN &&
              o.act_norm == 1 && o.weight_center == 0 && o.recu_clamp == 0 && o.grad_quant == 1 &&
              o.grad_stochastic == 1,
          "binary_conv_faithful() is not the faithful configuration");
}

int main(void) {
    test_faithful_defaults();
    test_golden();
    test_twin();
    test_sign_zero();
    test_padding();
    test_bits_32();
    test_threads();
    test_packed_vs_fp32();
    test_codes_vs_real();
    test_int8_vs_fp32_backward();
    return tu_finish("binary_conv");
}
