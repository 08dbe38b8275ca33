/* The oneDNN backend of the fp32 conv (model.fp32_conv: onednn); the
 * contract is core/ops/conv2d_onednn.h.
 *
 * Per shape (N, C, H, W, O, K, stride, pad, and the thread count: oneDNN
 * bakes its thread count into a primitive's blocking) one cache entry holds
 * three primitives, created once with every layout left to oneDNN
 * (format_tag_any), which is what PyTorch does through ideep:
 *   forward:          dst = conv(src, weights)
 *   backward data:    diff_src = conv^T(diff_dst, weights)
 *   backward weights: diff_weights = wgrad(src, diff_dst)
 * Each tensor argument whose chosen layout is not the plain NCHW / OIHW one
 * gets a cached reorder into (inputs) or out of (outputs) a buffer of the
 * workspace. The backward outputs go to plain temporaries and are added into
 * dinp / dweight (the engine's backward accumulates; oneDNN overwrites), one
 * elementwise pass whose bits do not depend on the thread count.
 *
 * Memory: one workspace for every entry (the kernels run one at a time),
 * grown to the largest pass seen: the reordered tensors, oneDNN's scratchpad
 * (scratchpad_mode_user: it is ours, not the library's hidden one), the
 * accumulation temporaries. conv2d_onednn_workspace_bytes reports it.
 *
 * Calls are serialised by one mutex (the engine calls its kernels from
 * serial code; a test may not). */
#include "conv2d_onednn.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(CBNN_HAVE_ONEDNN) && !REAL_IS_DOUBLE
#define ONEDNN_ON 1
#else
#define ONEDNN_ON 0
#endif

int conv2d_onednn_available(void) { return ONEDNN_ON; }

const char *conv2d_backend_error(int backend) {
    if (backend == FP32_CONV_NATIVE) return NULL;
    if (backend == FP32_CONV_ONEDNN) {
        if (ONEDNN_ON) return NULL;
        return REAL_IS_DOUBLE ? "model.fp32_conv: onednn: oneDNN has no f64 conv (this is the double build)"
                              : "model.fp32_conv: onednn: this build has no oneDNN (install libdnnl-dev, "
                                "then reconfigure: meson setup --reconfigure <builddir>)";
    }
    return "model.fp32_conv: unknown backend";
}

#if !ONEDNN_ON

/* unreachable: conv2d_forward/backward only come here after
 * conv2d_backend_error said yes */
static void no_onednn(void) {
    fprintf(stderr, "cyclebnn: %s\n", conv2d_backend_error(FP32_CONV_ONEDNN));
    abort();
}
void conv2d_onednn_forward(real *out, const real *inp, const real *weight, const ConvDims *d) { no_onednn(); }
void conv2d_onednn_backward(real *dinp, real *dweight, const real *dout, const real *inp, const real *weight,
                            const ConvDims *d) {
    no_onednn();
}
size_t conv2d_onednn_workspace_bytes(void) { return 0; }
void conv2d_onednn_release(void) {}

#else

#include <pthread.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>

static void check(dnnl_status_t st, const char *what) {
    if (st == dnnl_success) return;
    fprintf(stderr, "cyclebnn: oneDNN %s failed: %s (model.fp32_conv: onednn)\n", what, dnnl_status2str(st));
    abort();
}
#define CK(call) check((call), #call)

/* one tensor argument of a primitive */
typedef struct {
    int arg;                     /* DNNL_ARG_* */
    int out;                     /* an output (reordered prim -> plain after the primitive) */
    dnnl_memory_desc_t plain;    /* NCHW / OIHW */
    dnnl_memory_desc_t pmd;      /* the primitive's layout */
    dnnl_memory_t user, prim;    /* handles set per call; prim NULL = the plain layout is the primitive's */
    dnnl_primitive_t reorder;    /* plain -> prim (inputs), prim -> plain (outputs); NULL with prim */
    size_t off;                  /* the prim-layout buffer in the workspace */
} Arg;

typedef struct {
    dnnl_primitive_t p;
    dnnl_memory_t scratchpad;
    size_t scratch_off;
    Arg a[3];
} Pass;

typedef struct Entry {
    int key[9];
    Pass fwd, bwd_d, bwd_w;
    size_t fwd_need, bwd_need;   /* workspace bytes of the forward call, of the backward call */
    size_t dsrc_tmp, dw_tmp;     /* backward: the plain temporaries the outputs land in */
    struct Entry *next;
} Entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static Entry *cache;
static char *ws;                 /* the workspace */
static size_t ws_size;

static size_t take(size_t *cursor, size_t bytes) {
    size_t off = *cursor;
    *cursor += (bytes + 63) / 64 * 64;
    return off;
}

static void md_plain(dnnl_memory_desc_t *md, int64_t a, int64_t b, int64_t c, int64_t d, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {a, b, c, d};
    CK(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag));
}

/* the argument `arg` of pd: plain layout `plain`; a reorder and a buffer
 * (taken from *cursor) when the primitive chose another */
static void arg_init(Arg *A, const_dnnl_primitive_desc_t pd, dnnl_query_t q, int arg, int out,
                     const dnnl_memory_desc_t *plain, size_t *cursor) {
    const dnnl_memory_desc_t *pmd = dnnl_primitive_desc_query_md(pd, q, 0);
    A->arg = arg;
    A->out = out;
    A->plain = *plain;
    A->pmd = *pmd;
    A->prim = NULL;
    A->reorder = NULL;
    CK(dnnl_memory_create(&A->user, plain, engine, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(pmd, plain)) return;
    CK(dnnl_memory_create(&A->prim, pmd, engine, DNNL_MEMORY_NONE));
    A->off = take(cursor, dnnl_memory_desc_get_size(pmd));
    dnnl_primitive_desc_t rpd;
    if (out)
        CK(dnnl_reorder_primitive_desc_create(&rpd, pmd, engine, plain, engine, NULL));
    else
        CK(dnnl_reorder_primitive_desc_create(&rpd, plain, engine, pmd, engine, NULL));
    CK(dnnl_primitive_create(&A->reorder, rpd));
    CK(dnnl_primitive_desc_destroy(rpd));
}

/* the primitive of pd, its scratchpad in the workspace */
static void pass_init(Pass *P, const_dnnl_primitive_desc_t pd, size_t *cursor) {
    CK(dnnl_primitive_create(&P->p, pd));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    CK(dnnl_memory_create(&P->scratchpad, smd, engine, DNNL_MEMORY_NONE));
    P->scratch_off = take(cursor, dnnl_memory_desc_get_size(smd));
}

static dnnl_primitive_attr_t user_scratchpad(void) {
    dnnl_primitive_attr_t attr;
    CK(dnnl_primitive_attr_create(&attr));
    CK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    return attr;
}

static Entry *entry_build(const ConvDims *d, const int key[9]) {
    Entry *e = calloc(1, sizeof *e);
    if (!e) check(dnnl_out_of_memory, "the cache entry");
    memcpy(e->key, key, sizeof e->key);
    dnnl_memory_desc_t src, wei, dst, src_any, wei_any, dst_any;
    md_plain(&src, d->N, d->C, d->H, d->W, dnnl_nchw);
    md_plain(&wei, d->O, d->C, d->KH, d->KW, dnnl_oihw);
    md_plain(&dst, d->N, d->O, d->OH, d->OW, dnnl_nchw);
    md_plain(&src_any, d->N, d->C, d->H, d->W, dnnl_format_tag_any);
    md_plain(&wei_any, d->O, d->C, d->KH, d->KW, dnnl_format_tag_any);
    md_plain(&dst_any, d->N, d->O, d->OH, d->OW, dnnl_format_tag_any);
    /* right padding so that oneDNN's output size is ours: the rows a stride
     * does not reach are dropped, as the native conv drops them */
    dnnl_dims_t strides = {d->stride, d->stride}, pad_l = {d->pad, d->pad};
    dnnl_dims_t pad_r = {(int64_t)(d->OH - 1) * d->stride + d->KH - d->H - d->pad,
                         (int64_t)(d->OW - 1) * d->stride + d->KW - d->W - d->pad};
    dnnl_primitive_attr_t attr = user_scratchpad();

    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t fpd, dpd, wpd;
    CK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src_any, &wei_any,
                                          NULL, &dst_any, strides, pad_l, pad_r));
    CK(dnnl_primitive_desc_create(&fpd, &cd, attr, engine, NULL));
    CK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src_any, &wei_any, &dst_any, strides,
                                                pad_l, pad_r));
    CK(dnnl_primitive_desc_create(&dpd, &cd, attr, engine, fpd));
    CK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src_any, &wei_any, NULL, &dst_any,
                                                   strides, pad_l, pad_r));
    CK(dnnl_primitive_desc_create(&wpd, &cd, attr, engine, fpd));

    size_t cur = 0;
    pass_init(&e->fwd, fpd, &cur);
    arg_init(&e->fwd.a[0], fpd, dnnl_query_src_md, DNNL_ARG_SRC, 0, &src, &cur);
    arg_init(&e->fwd.a[1], fpd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, 0, &wei, &cur);
    arg_init(&e->fwd.a[2], fpd, dnnl_query_dst_md, DNNL_ARG_DST, 1, &dst, &cur);
    e->fwd_need = cur;

    /* backward: both passes in one workspace layout (dout is reordered once
     * when both chose the same layout for it) */
    cur = 0;
    e->dsrc_tmp = take(&cur, dnnl_memory_desc_get_size(&src));
    e->dw_tmp = take(&cur, dnnl_memory_desc_get_size(&wei));
    pass_init(&e->bwd_d, dpd, &cur);
    arg_init(&e->bwd_d.a[0], dpd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, 0, &dst, &cur);
    arg_init(&e->bwd_d.a[1], dpd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, 0, &wei, &cur);
    arg_init(&e->bwd_d.a[2], dpd, dnnl_query_diff_src_md, DNNL_ARG_DIFF_SRC, 1, &src, &cur);
    pass_init(&e->bwd_w, wpd, &cur);
    arg_init(&e->bwd_w.a[0], wpd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, 0, &dst, &cur);
    arg_init(&e->bwd_w.a[1], wpd, dnnl_query_src_md, DNNL_ARG_SRC, 0, &src, &cur);
    arg_init(&e->bwd_w.a[2], wpd, dnnl_query_diff_weights_md, DNNL_ARG_DIFF_WEIGHTS, 1, &wei, &cur);
    e->bwd_need = cur;

    CK(dnnl_primitive_desc_destroy(fpd));
    CK(dnnl_primitive_desc_destroy(dpd));
    CK(dnnl_primitive_desc_destroy(wpd));
    CK(dnnl_primitive_attr_destroy(attr));
    return e;
}

static void ws_reserve(size_t bytes) {
    if (bytes <= ws_size) return;
    free(ws);
    ws = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!ws) check(dnnl_out_of_memory, "the workspace");
    ws_size = bytes;
}

/* the entry of d at the current thread count; called with the lock held */
static Entry *entry_get(const ConvDims *d) {
    if (!engine) {
        CK(dnnl_engine_create(&engine, dnnl_cpu, 0));
        CK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    }
    const int key[9] = {d->N, d->C, d->H, d->W, d->O, d->KH, d->stride, d->pad, omp_get_max_threads()};
    for (Entry *e = cache; e; e = e->next)
        if (!memcmp(e->key, key, sizeof key)) return e;
    Entry *e = entry_build(d, key);
    e->next = cache;
    cache = e;
    ws_reserve(e->fwd_need > e->bwd_need ? e->fwd_need : e->bwd_need);
    return e;
}

static void exec(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    CK(dnnl_primitive_execute(p, stream, n, args));
}

static void reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    exec(r, 2, args);
}

/* points the argument at the caller's plain tensor `p`; reorders an input
 * into its buffer (skipped with `have`: the same layout was just filled) */
static void arg_bind(Arg *A, const void *p, int have) {
    CK(dnnl_memory_set_data_handle(A->user, (void *)p));
    if (!A->prim) return;
    CK(dnnl_memory_set_data_handle(A->prim, ws + A->off));
    if (!A->out && !have) reorder(A->reorder, A->user, A->prim);
}

static dnnl_memory_t arg_mem(const Arg *A) { return A->prim ? A->prim : A->user; }

/* runs the pass on its bound arguments; reorders its output to plain */
static void pass_run(Pass *P) {
    CK(dnnl_memory_set_data_handle(P->scratchpad, ws + P->scratch_off));
    dnnl_exec_arg_t args[4] = {{P->a[0].arg, arg_mem(&P->a[0])},
                               {P->a[1].arg, arg_mem(&P->a[1])},
                               {P->a[2].arg, arg_mem(&P->a[2])},
                               {DNNL_ARG_SCRATCHPAD, P->scratchpad}};
    exec(P->p, 4, args);
    const Arg *o = &P->a[2];
    if (o->prim) reorder(o->reorder, o->prim, o->user);
}

void conv2d_onednn_forward(real *out, const real *inp, const real *weight, const ConvDims *d) {
    if (d->OH <= 0 || d->OW <= 0 || d->N <= 0) return;
    pthread_mutex_lock(&lock);
    Entry *e = entry_get(d);
    arg_bind(&e->fwd.a[0], inp, 0);
    arg_bind(&e->fwd.a[1], weight, 0);
    arg_bind(&e->fwd.a[2], out, 0);
    pass_run(&e->fwd);
    CK(dnnl_stream_wait(stream));
    pthread_mutex_unlock(&lock);
}

/* y += t, elementwise (any thread count gives the same bits) */
static void add_into(real *y, const real *t, size_t n) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) y[i] += t[i];
}

void conv2d_onednn_backward(real *dinp, real *dweight, const real *dout, const real *inp, const real *weight,
                            const ConvDims *d) {
    if (d->OH <= 0 || d->OW <= 0 || d->N <= 0 || (!dinp && !dweight)) return;
    pthread_mutex_lock(&lock);
    Entry *e = entry_get(d);
    real *dx = (real *)(ws + e->dsrc_tmp), *dw = (real *)(ws + e->dw_tmp);
    int dout_ready = 0; /* bwd_d's reordered dout, in the layout bwd_w wants too */
    if (dinp) {
        arg_bind(&e->bwd_d.a[0], dout, 0);
        arg_bind(&e->bwd_d.a[1], weight, 0);
        arg_bind(&e->bwd_d.a[2], dx, 0);
        pass_run(&e->bwd_d);
        const Arg *a = &e->bwd_d.a[0], *b = &e->bwd_w.a[0];
        dout_ready = a->prim && b->prim && dnnl_memory_desc_equal(&a->pmd, &b->pmd);
    }
    if (dweight) {
        Arg *g = &e->bwd_w.a[0];
        arg_bind(g, dout, dout_ready);
        if (dout_ready) {
            /* read bwd_d's copy: point bwd_w's prim memory at it */
            CK(dnnl_memory_set_data_handle(g->prim, ws + e->bwd_d.a[0].off));
        }
        arg_bind(&e->bwd_w.a[1], inp, 0);
        arg_bind(&e->bwd_w.a[2], dw, 0);
        pass_run(&e->bwd_w);
    }
    CK(dnnl_stream_wait(stream));
    if (dinp) add_into(dinp, dx, (size_t)d->N * d->C * d->H * d->W);
    if (dweight) add_into(dweight, dw, (size_t)d->O * d->C * d->KH * d->KW);
    pthread_mutex_unlock(&lock);
}

size_t conv2d_onednn_workspace_bytes(void) {
    pthread_mutex_lock(&lock);
    size_t b = ws_size;
    pthread_mutex_unlock(&lock);
    return b;
}

static void pass_free(Pass *P) {
    dnnl_primitive_destroy(P->p);
    dnnl_memory_destroy(P->scratchpad);
    for (int i = 0; i < 3; i++) {
        Arg *A = &P->a[i];
        dnnl_memory_destroy(A->user);
        if (A->prim) {
            dnnl_memory_destroy(A->prim);
            dnnl_primitive_destroy(A->reorder);
        }
    }
}

void conv2d_onednn_release(void) {
    pthread_mutex_lock(&lock);
    while (cache) {
        Entry *e = cache;
        cache = e->next;
        pass_free(&e->fwd);
        pass_free(&e->bwd_d);
        pass_free(&e->bwd_w);
        free(e);
    }
    free(ws);
    ws = NULL;
    ws_size = 0;
    if (engine) {
        dnnl_stream_destroy(stream);
        dnnl_engine_destroy(engine);
        engine = NULL;
    }
    pthread_mutex_unlock(&lock);
}

#endif
