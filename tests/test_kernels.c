/* Fast kernels vs their plain reference twins (float engine).
 *
 *  - gemm vs gemm_ref: all four transpose combinations, padded leading
 *    dimensions, beta = 0 (C must be ignored: it starts as NaN), 1 and -0.5.
 *  - conv2d forward/backward vs _ref on fixed edge shapes and random ones:
 *    K = 1,3,5,7, stride 1/2, pad 0..3 (also pad >= K, where some outputs only
 *    see padding), batch 1, odd C/O, non-square H/W. Backward starts from
 *    non-zero gradients (it must accumulate) and is also run with dinp = NULL.
 *    Outputs and scratch start as NaN so a kernel that reads what it should
 *    overwrite fails loudly.
 *  - linear forward/backward vs _ref, with and without bias.
 *  - bitwise identical results with 1 and 2 OpenMP threads for the fast
 *    kernels, on shapes big enough that the per-sample / per-block loops
 *    really go parallel. OpenBLAS's own threaded sgemm is NOT bitwise
 *    thread-count invariant (0.3.21, Haswell kernels), which is why gemm()
 *    always runs it single-threaded (core/blas.c); the probe below checks that
 *    gemm() itself is invariant, and every 1-vs-2 difference is a failure.
 *    CBNN_STRICT_THREADS=0 turns differences whose GEMM alone also differs
 *    into warnings (for investigating another BLAS).
 * (AdamW's FMA clone and the AVX2 activation codes against their scalar
 * definitions moved to checkasm's elementwise family, tests/checkasm_elementwise.c.)
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "ops.h"
#include "testutil.h"

#define TOL 1e-4 /* float, reference accumulates in double */

static void fill_nan(real *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (real)NAN;
}

static real *dup(const real *src, size_t n) {
    real *p = tu_alloc(n);
    memcpy(p, src, n * sizeof(real));
    return p;
}

/* ------------------------------------------------- thread-count invariance */

static int strict_threads = 1;     /* CBNN_STRICT_THREADS=0 relaxes */
static int blas_variant_outputs = 0; /* outputs that differ because the BLAS does */

/* does gemm() itself give bitwise different C with 1 and 2 threads on this shape? */
static int gemm_thread_variant(int ta, int tb, int M, int N, int K, real beta) {
    Rng r = rng_stream(5, RNG_TEST, (uint64_t)M * 1000003u + (uint64_t)N * 1009u + (uint64_t)K, (uint64_t)(ta * 2 + tb));
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    real *A = tu_alloc_rand(na, &r), *B = tu_alloc_rand(nb, &r), *C1 = tu_alloc_rand(nc, &r);
    real *C2 = dup(C1, nc);
    int lda = ta ? M : K, ldb = tb ? K : N;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    gemm(ta, tb, M, N, K, (real)1, A, lda, B, ldb, beta, C1, N);
    omp_set_num_threads(2);
    gemm(ta, tb, M, N, K, (real)1, A, lda, B, ldb, beta, C2, N);
    omp_set_num_threads(saved);
    int variant = memcmp(C1, C2, nc * sizeof(real)) != 0;
    free(A); free(B); free(C1); free(C2);
    return variant;
}

/* a1/a2: the same output computed with 1 and 2 threads; blas_variant: the
 * GEMM that produced it is not invariant by itself */
static void check_same_threads(const char *what, const char *name, const real *a1, const real *a2, size_t n,
                               int blas_variant) {
    if (memcmp(a1, a2, n * sizeof(real)) == 0) {
        CHECK(1, "%s", "bitwise equal");
        return;
    }
    double e = tu_max_rel_err(a1, a2, n);
    if (blas_variant && !strict_threads) {
        blas_variant_outputs++;
        printf("WARNING (BLAS) %s %s: 1 vs 2 threads differ, max rel %.2g; sgemm alone differs on this shape\n",
               what, name, e);
        CHECK(e < TOL, "%s %s: 1 vs 2 threads differ beyond rounding: %.3g", what, name, e);
        return;
    }
    CHECK(0, "%s %s: 1 vs 2 threads differ (max rel %.2g)%s", what, name, e,
          blas_variant ? " [the BLAS alone differs too; strict mode]" : " [not the BLAS: our code]");
}

/* ------------------------------------------------------------------ gemm */

static void test_gemm_case(int ta, int tb, int M, int N, int K, real alpha, real beta, Rng *r) {
    /* stored shapes: A [M,K] or [K,M]; B [K,N] or [N,K]; each row padded */
    int arows = ta ? K : M, acols = ta ? M : K;
    int brows = tb ? N : K, bcols = tb ? K : N;
    int lda = acols + 3, ldb = bcols + 1, ldc = N + 2;
    real *A = tu_alloc_rand((size_t)arows * lda, r);
    real *B = tu_alloc_rand((size_t)brows * ldb, r);
    real *C0 = tu_alloc_rand((size_t)M * ldc, r);
    if (beta == 0) /* C must not be read; the padding columns stay finite */
        for (int i = 0; i < M; i++) fill_nan(C0 + (size_t)i * ldc, N);
    real *C = dup(C0, (size_t)M * ldc);
    real *Cref = dup(C0, (size_t)M * ldc);
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cref, ldc);
    double err = tu_max_rel_err(C, Cref, (size_t)M * ldc);
    CHECK(err < TOL, "gemm ta=%d tb=%d M=%d N=%d K=%d beta=%g: rel err %.3g", ta, tb, M, N, K,
          (double)beta, err);
    free(A); free(B); free(C0); free(C); free(Cref);
}

static void test_gemm(void) {
    Rng r = rng_stream(1, RNG_TEST, 1, 0);
    static const int shapes[][3] = {{1, 1, 1}, {1, 9, 4}, {7, 1, 3}, {7, 13, 5}, {33, 17, 65},
                                    {64, 100, 300}, {129, 65, 257}, {10, 512, 1}};
    static const real betas[] = {0, 1, (real)-0.5};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int b = 0; b < 3; b++)
                    test_gemm_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], (real)0.7, betas[b], &r);
}

/* ---------------------------------------------------------------- conv2d */

typedef struct { int N, C, H, W, O, K, stride, pad; } ConvCase;

static void describe(char *buf, size_t n, const ConvCase *c) {
    snprintf(buf, n, "N=%d C=%d H=%d W=%d O=%d K=%d s=%d p=%d", c->N, c->C, c->H, c->W, c->O, c->K,
             c->stride, c->pad);
}

/* fast forward + backward (with dinp) at a given thread count, into fresh buffers */
static void conv_fast_run(real *out, real *dinp, real *dw, const real *inp, const real *w, const real *dout,
                          const real *dinp0, const real *dw0, const ConvDims *d, real *scratch, size_t nscratch) {
    size_t nin = (size_t)d->N * d->C * d->H * d->W, nw = (size_t)d->O * d->C * d->KH * d->KW;
    fill_nan(scratch, nscratch);
    conv2d_forward(out, inp, w, d, scratch);
    memcpy(dinp, dinp0, nin * sizeof(real));
    memcpy(dw, dw0, nw * sizeof(real));
    fill_nan(scratch, nscratch);
    conv2d_backward(dinp, dw, dout, inp, w, d, scratch);
}

static void test_conv_case(const ConvCase *cc, uint64_t k, int check_threads) {
    char name[128];
    describe(name, sizeof(name), cc);
    ConvDims d = conv_dims(cc->N, cc->C, cc->H, cc->W, cc->O, cc->K, cc->stride, cc->pad);
    size_t nin = (size_t)d.N * d.C * d.H * d.W;
    size_t nw = (size_t)d.O * d.C * d.KH * d.KW;
    size_t nout = (size_t)d.N * d.O * d.OH * d.OW;
    size_t nscratch = conv2d_scratch_size(&d);
    Rng r = rng_stream(2, RNG_TEST, k, 0);
    real *inp = tu_alloc_rand(nin, &r), *w = tu_alloc_rand(nw, &r), *dout = tu_alloc_rand(nout, &r);
    real *dinp0 = tu_alloc_rand(nin, &r), *dw0 = tu_alloc_rand(nw, &r); /* non-zero: must accumulate */
    real *scratch = tu_alloc(nscratch);

    /* forward */
    real *out = tu_alloc(nout), *out_ref = tu_alloc(nout);
    fill_nan(out, nout);
    fill_nan(out_ref, nout);
    fill_nan(scratch, nscratch);
    conv2d_forward(out, inp, w, &d, scratch);
    conv2d_forward_ref(out_ref, inp, w, &d);
    double e = tu_max_rel_err(out, out_ref, nout);
    CHECK(e < TOL, "conv fwd %s: rel err %.3g", name, e);

    /* backward, accumulating onto non-zero gradients */
    real *dinp = dup(dinp0, nin), *dw = dup(dw0, nw);
    real *dinp_ref = dup(dinp0, nin), *dw_ref = dup(dw0, nw);
    fill_nan(scratch, nscratch);
    conv2d_backward(dinp, dw, dout, inp, w, &d, scratch);
    conv2d_backward_ref(dinp_ref, dw_ref, dout, inp, w, &d);
    e = tu_max_rel_err(dinp, dinp_ref, nin);
    CHECK(e < TOL, "conv bwd dinp %s: rel err %.3g", name, e);
    e = tu_max_rel_err(dw, dw_ref, nw);
    CHECK(e < TOL, "conv bwd dweight %s: rel err %.3g", name, e);

    /* dinp = NULL: the weight gradient is unchanged (bitwise: same GEMMs) */
    real *dw_nul = dup(dw0, nw), *dw_nul_ref = dup(dw0, nw);
    fill_nan(scratch, nscratch);
    conv2d_backward(NULL, dw_nul, dout, inp, w, &d, scratch);
    conv2d_backward_ref(NULL, dw_nul_ref, dout, inp, w, &d);
    CHECK(memcmp(dw_nul, dw, nw * sizeof(real)) == 0, "conv bwd dinp=NULL %s: dweight differs", name);
    e = tu_max_rel_err(dw_nul_ref, dw_ref, nw);
    CHECK(e < TOL, "conv bwd_ref dinp=NULL %s: rel err %.3g", name, e);

    /* thread-count invariance of the fast path */
    if (check_threads) {
        real *o1 = tu_alloc(nout), *di1 = tu_alloc(nin), *dw1 = tu_alloc(nw);
        real *o2 = tu_alloc(nout), *di2 = tu_alloc(nin), *dw2 = tu_alloc(nw);
        int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        conv_fast_run(o1, di1, dw1, inp, w, dout, dinp0, dw0, &d, scratch, nscratch);
        omp_set_num_threads(2);
        conv_fast_run(o2, di2, dw2, inp, w, dout, dinp0, dw0, &d, scratch, nscratch);
        omp_set_num_threads(saved);
        /* the GEMMs conv2d issues (see core/ops/conv2d.c) */
        int CK = d.C * d.KH * d.KW, OHW = d.OH * d.OW;
        int pw = d.KH == 1 && d.KW == 1 && d.stride == 1 && d.pad == 0;
        int v_fwd = gemm_thread_variant(0, 0, d.O, OHW, CK, 0);
        int v_dw = gemm_thread_variant(0, 1, d.O, CK, OHW, 1);
        int v_dx = gemm_thread_variant(1, 0, CK, OHW, d.O, pw ? 1 : 0);
        check_same_threads("conv fwd", name, o1, o2, nout, v_fwd);
        check_same_threads("conv bwd dinp", name, di1, di2, nin, v_dx);
        check_same_threads("conv bwd dweight", name, dw1, dw2, nw, v_dw);
        free(o1); free(di1); free(dw1); free(o2); free(di2); free(dw2);
    }

    free(inp); free(w); free(dout); free(dinp0); free(dw0); free(scratch);
    free(out); free(out_ref); free(dinp); free(dw); free(dinp_ref); free(dw_ref);
    free(dw_nul); free(dw_nul_ref);
}

static void test_conv(void) {
    static const ConvCase fixed[] = {
        /* N  C   H   W   O  K  s  p */
        {1, 1, 1, 1, 1, 1, 1, 0},      /* smallest */
        {2, 3, 7, 5, 4, 1, 1, 0},      /* pointwise GEMM path */
        {2, 5, 9, 6, 3, 1, 2, 0},      /* 1x1 stride 2 (ResNet shortcut) */
        {1, 3, 8, 8, 5, 1, 1, 1},      /* 1x1 padded: border outputs are 0 */
        {3, 3, 11, 7, 6, 3, 1, 1},
        {1, 7, 13, 10, 9, 5, 2, 2},
        {2, 2, 9, 12, 3, 7, 1, 3},
        {1, 4, 6, 5, 3, 7, 2, 3},      /* kernel bigger than the image */
        {2, 3, 5, 5, 2, 3, 1, 3},      /* pad >= K: outputs that see only padding */
        {1, 2, 4, 9, 3, 3, 2, 0},      /* stride leaves the last columns unused */
        {2, 32, 15, 17, 40, 3, 2, 1},
        {1, 3, 32, 32, 16, 3, 1, 1},   /* CIFAR stem-like */
    };
    uint64_t k = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) test_conv_case(&fixed[i], k++, 1);

    /* random small shapes */
    Rng r = rng_stream(3, RNG_TEST, 0, 0);
    static const int ks[] = {1, 3, 5, 7};
    int done = 0;
    while (done < 40) {
        ConvCase c;
        c.N = 1 + (int)rng_below(&r, 3);
        c.C = 1 + (int)rng_below(&r, 13);
        c.H = 1 + (int)rng_below(&r, 14);
        c.W = 1 + (int)rng_below(&r, 14);
        c.O = 1 + (int)rng_below(&r, 13);
        c.K = ks[rng_below(&r, 4)];
        c.stride = 1 + (int)rng_below(&r, 2);
        c.pad = (int)rng_below(&r, 4);
        if (c.H + 2 * c.pad < c.K || c.W + 2 * c.pad < c.K) continue;
        test_conv_case(&c, k++, 1);
        done++;
    }

    /* CIFAR ResNet-18 layer shapes at batch 2: big enough that OpenBLAS splits
     * the GEMMs over both threads and im2col/col2im fork */
    static const ConvCase resnet[] = {
        {2, 64, 32, 32, 64, 3, 1, 1},
        {2, 64, 32, 32, 128, 3, 2, 1},
        {2, 64, 32, 32, 128, 1, 2, 0},
        {2, 128, 16, 16, 128, 3, 1, 1},
        {2, 256, 8, 8, 256, 3, 1, 1},
        {2, 512, 4, 4, 512, 3, 1, 1},
        {2, 256, 8, 8, 256, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof(resnet) / sizeof(resnet[0]); i++) test_conv_case(&resnet[i], k++, 1);

    /* O = 1 keeps every GEMM under OpenBLAS's threading threshold (M*N*K <=
     * 4 * 65536), so the BLAS runs on one thread either way while im2col and
     * col2im still fork: any 1-vs-2 difference here is ours, never excused */
    static const ConvCase ours[] = {
        {2, 64, 16, 16, 1, 3, 1, 1},
        {1, 64, 32, 32, 1, 3, 2, 1},
        {2, 37, 13, 19, 1, 5, 1, 2},
        {1, 96, 17, 15, 1, 7, 2, 3},
    };
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) test_conv_case(&ours[i], k++, 1);
}

/* ---------------------------------------------------------------- linear */

static void test_linear_case(int N, int IN, int OUT, uint64_t k) {
    Rng r = rng_stream(4, RNG_TEST, k, 0);
    size_t nin = (size_t)N * IN, nw = (size_t)OUT * IN, nout = (size_t)N * OUT;
    real *inp = tu_alloc_rand(nin, &r), *w = tu_alloc_rand(nw, &r), *b = tu_alloc_rand(OUT, &r);
    real *dout = tu_alloc_rand(nout, &r);
    real *dinp0 = tu_alloc_rand(nin, &r), *dw0 = tu_alloc_rand(nw, &r), *db0 = tu_alloc_rand(OUT, &r);
    real *out = tu_alloc(nout), *out_ref = tu_alloc(nout);

    for (int with_bias = 0; with_bias < 2; with_bias++) {
        const real *bias = with_bias ? b : NULL;
        fill_nan(out, nout);
        fill_nan(out_ref, nout);
        linear_forward(out, inp, w, bias, N, IN, OUT);
        linear_forward_ref(out_ref, inp, w, bias, N, IN, OUT);
        double e = tu_max_rel_err(out, out_ref, nout);
        CHECK(e < TOL, "linear fwd N=%d IN=%d OUT=%d bias=%d: rel err %.3g", N, IN, OUT, with_bias, e);
    }

    /* full backward, then without dinp and dbias */
    for (int full = 1; full >= 0; full--) {
        real *dinp = dup(dinp0, nin), *dw = dup(dw0, nw), *db = dup(db0, OUT);
        real *dinp_ref = dup(dinp0, nin), *dw_ref = dup(dw0, nw), *db_ref = dup(db0, OUT);
        linear_backward(full ? dinp : NULL, dw, full ? db : NULL, dout, inp, w, N, IN, OUT);
        linear_backward_ref(full ? dinp_ref : NULL, dw_ref, full ? db_ref : NULL, dout, inp, w, N, IN, OUT);
        double e = tu_max_rel_err(dw, dw_ref, nw);
        CHECK(e < TOL, "linear bwd dweight N=%d IN=%d OUT=%d full=%d: rel err %.3g", N, IN, OUT, full, e);
        if (full) {
            e = tu_max_rel_err(dinp, dinp_ref, nin);
            CHECK(e < TOL, "linear bwd dinp N=%d IN=%d OUT=%d: rel err %.3g", N, IN, OUT, e);
            e = tu_max_rel_err(db, db_ref, OUT);
            CHECK(e < TOL, "linear bwd dbias N=%d IN=%d OUT=%d: rel err %.3g", N, IN, OUT, e);
        } else {
            CHECK(memcmp(dinp, dinp0, nin * sizeof(real)) == 0 && memcmp(db, db0, OUT * sizeof(real)) == 0,
                  "linear bwd: untouched buffers changed");
        }
        free(dinp); free(dw); free(db); free(dinp_ref); free(dw_ref); free(db_ref);
    }

    /* thread-count invariance */
    real *o[2], *di[2], *dw[2], *db[2];
    int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        o[t] = tu_alloc(nout);
        di[t] = dup(dinp0, nin); dw[t] = dup(dw0, nw); db[t] = dup(db0, OUT);
        linear_forward(o[t], inp, w, b, N, IN, OUT);
        linear_backward(di[t], dw[t], db[t], dout, inp, w, N, IN, OUT);
    }
    omp_set_num_threads(saved);
    char name[96];
    snprintf(name, sizeof(name), "N=%d IN=%d OUT=%d", N, IN, OUT);
    check_same_threads("linear fwd", name, o[0], o[1], nout, gemm_thread_variant(0, 1, N, OUT, IN, 1));
    check_same_threads("linear bwd dinp", name, di[0], di[1], nin, gemm_thread_variant(0, 0, N, IN, OUT, 1));
    check_same_threads("linear bwd dweight", name, dw[0], dw[1], nw, gemm_thread_variant(1, 0, OUT, IN, N, 1));
    check_same_threads("linear bwd dbias", name, db[0], db[1], OUT, 0); /* our loop, no BLAS */
    for (int t = 0; t < 2; t++) { free(o[t]); free(di[t]); free(dw[t]); free(db[t]); }

    free(inp); free(w); free(b); free(dout); free(dinp0); free(dw0); free(db0); free(out); free(out_ref);
}

static void test_linear(void) {
    static const int shapes[][3] = {{1, 1, 1}, {1, 7, 3}, {3, 17, 10}, {16, 512, 10},
                                    {5, 33, 65}, {64, 300, 129}, {256, 512, 100}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        test_linear_case(shapes[i][0], shapes[i][1], shapes[i][2], i);
}

int main(void) {
    const char *strict = getenv("CBNN_STRICT_THREADS");
    strict_threads = !(strict != NULL && strict[0] == '0');
    printf("kernels_vs_ref: %d OpenMP threads available, thread checks %s\n", omp_get_max_threads(),
           strict_threads ? "strict" : "attribute BLAS differences");
    test_gemm();
    test_conv();
    test_linear();
    if (blas_variant_outputs)
        printf("NOTE: %d outputs differ bitwise between 1 and 2 threads only because the BLAS's sgemm does "
               "(our im2col/col2im/bias code is invariant); see the WARNING lines\n", blas_variant_outputs);
    return tu_finish("kernels_vs_ref");
}
