/* The oneDNN backend of the fp32 conv (model.fp32_conv: onednn); the
 * contract is core/ops/conv2d_onednn.h.
 *
 * Per shape (N, C, H, W, O, K, stride, pad, the thread count: oneDNN
 * bakes its thread count into a primitive's blocking, and the dW chunk
 * target) one cache entry holds three primitives (dW: see below), created once with every layout left to oneDNN
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
 * accumulation temporaries, one partial dW per chunk. conv2d_onednn_workspace_bytes reports it.
 *
 * Weight gradient. oneDNN's dW, planned for T threads, splits the batch
 * reduction between them, so its bits follow T (measured: bench/README.md,
 * "fp32 conv backends"). Ours runs in chunks fixed by the shape (wg_plan):
 * sample chunks (up to CONV2D_ONEDNN_WGRAD_CHUNKS, each with >= WG_MIN_PIXELS
 * output pixels), or, where the batch has too few pixels for that and the
 * filters are many (the 4x4 layers), chunks of WG_CHANNELS output channels
 * over the whole batch; each chunk's dW through a primitive planned for one
 * thread (chunk_init: created while this thread's
 * omp_get_max_threads() is 1, which is what oneDNN's OpenMP runtime reads)
 * and run on one thread (chunk_run, inside our OpenMP loop: oneDNN runs a
 * parallel section met inside a parallel region on the calling thread, and
 * the task's own thread count is 1 there too). A sample chunk's partial dW
 * goes to its own slice of the workspace and the partials are then added per
 * weight in chunk order; a channel chunk's filters are whole sums, written to
 * their rows. Which thread ran a chunk changes nothing, so dW depends on the
 * shape only. The forward and dX need no such care: oneDNN splits their
 * outputs between threads, never a sum (bitwise equal at 1, 2, 3 threads in
 * tests/test_conv_onednn.c). conv2d_onednn_set_wgrad_chunks(0) brings back
 * one multi-threaded dW primitive, for the benchmark's comparison.
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
void conv2d_onednn_set_wgrad_chunks(int chunks) { (void)chunks; }

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

/* dW of one sample chunk: a primitive created single-threaded (see the
 * "Weight gradient" note above), its input reorders, and the sizes of what
 * each chunk's slice of the workspace holds */
typedef struct {
    int n, ob;                       /* samples, output channels in the chunk */
    dnnl_primitive_t p;
    dnnl_memory_desc_t src, dst;     /* plain NCHW of the chunk (dst: its ob channels of O) */
    dnnl_memory_desc_t dw;           /* plain OIHW of the chunk's ob filters */
    dnnl_primitive_t r_dw;           /* channel chunks: dw_p -> dw; NULL when the same or sample chunks */
    dnnl_memory_desc_t src_p, dst_p; /* the primitive's layouts */
    dnnl_memory_desc_t dw_p, scratch;
    dnnl_primitive_t r_src, r_dst;   /* plain -> primitive; NULL when the same */
} Chunk;

typedef struct Entry {
    int key[10];
    Pass fwd, bwd_d, bwd_w;
    size_t fwd_need, bwd_need;   /* workspace bytes of the forward call, of the backward call */
    size_t dsrc_tmp, dw_tmp;     /* backward: the plain temporaries the outputs land in */
    /* dW by chunks (wg_nc > 0; else bwd_w, one multi-threaded primitive) */
    int wg_cs, wg_nc;            /* samples per chunk (the last may have fewer), chunk count */
    int wg_ob;                   /* output channels per chunk: O (sample chunks) or O / wg_nc */
    size_t wg_srcsh;             /* channel chunks: the input reordered once for all */
    Chunk wg[2];                 /* [0]: wg_cs samples; [1]: the last chunk's, when smaller */
    dnnl_primitive_t wg_out;     /* the summed partial (wg[0].dw_p) -> plain OIHW; NULL when plain */
    size_t wg_off, wg_stride;    /* chunk j's slice: ws + wg_off + j * wg_stride */
    size_t wg_src, wg_dst, wg_scr; /* in a slice: the reordered src, dst, the scratchpad (dW at 0) */
    struct Entry *next;
} Entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static Entry *cache;
static char *ws;                 /* the workspace */
static size_t ws_size;
static int wg_chunks = CONV2D_ONEDNN_WGRAD_CHUNKS; /* conv2d_onednn_set_wgrad_chunks */
static dnnl_stream_t wg_stream[CONV2D_ONEDNN_WGRAD_CHUNKS_MAX]; /* one per chunk: a stream is not shared between threads */

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

/* the padding geometry of d, as oneDNN takes it: right padding so that
 * oneDNN's output size is ours (the rows a stride does not reach are
 * dropped, as the native conv drops them) */
static void geometry(const ConvDims *d, dnnl_dims_t strides, dnnl_dims_t pad_l, dnnl_dims_t pad_r) {
    strides[0] = strides[1] = d->stride;
    pad_l[0] = pad_l[1] = d->pad;
    pad_r[0] = (int64_t)(d->OH - 1) * d->stride + d->KH - d->H - d->pad;
    pad_r[1] = (int64_t)(d->OW - 1) * d->stride + d->KW - d->W - d->pad;
}

/* a reorder from -> to, NULL when the layouts are the same. Its scratchpad
 * is ours (user mode) and must be empty: the chunk reorders run
 * concurrently and a library-held scratchpad would be shared. */
static dnnl_primitive_t reorder_make(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    if (dnnl_memory_desc_equal(from, to)) return NULL;
    dnnl_primitive_attr_t attr = user_scratchpad();
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    CK(dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, attr));
    if (dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(rpd, dnnl_query_scratchpad_md, 0)) != 0)
        check(dnnl_unimplemented, "a reorder without scratchpad");
    CK(dnnl_primitive_create(&r, rpd));
    CK(dnnl_primitive_desc_destroy(rpd));
    CK(dnnl_primitive_attr_destroy(attr));
    return r;
}

/* the dW primitive of a chunk of n samples; its weights layout oneDNN's
 * choice (wei_p NULL) or *wei_p. Created while this thread's OpenMP thread
 * count is 1: oneDNN (OpenMP runtime) reads omp_get_max_threads() when it
 * plans a primitive (its thread split and the reduction buffers that go with
 * it), so this one is planned for one thread, whatever the caller's count. */
static dnnl_status_t chunk_init(Chunk *k, const ConvDims *d, int n, int ob, const dnnl_memory_desc_t *wei_p) {
    memset(k, 0, sizeof *k);
    k->n = n, k->ob = ob;
    dnnl_memory_desc_t src_any, wei_any, dst_any;
    md_plain(&k->src, n, d->C, d->H, d->W, dnnl_nchw);
    /* ob of the O channels of each sample: NCHW strides of the whole tensor */
    const dnnl_dims_t ddims = {n, ob, d->OH, d->OW};
    const dnnl_dims_t dstr = {(int64_t)d->O * d->OH * d->OW, (int64_t)d->OH * d->OW, d->OW, 1};
    CK(dnnl_memory_desc_init_by_strides(&k->dst, 4, ddims, dnnl_f32, dstr));
    md_plain(&k->dw, ob, d->C, d->KH, d->KW, dnnl_oihw);
    md_plain(&src_any, n, d->C, d->H, d->W, dnnl_format_tag_any);
    md_plain(&wei_any, ob, d->C, d->KH, d->KW, dnnl_format_tag_any);
    md_plain(&dst_any, n, ob, d->OH, d->OW, dnnl_format_tag_any);
    dnnl_dims_t strides, pad_l, pad_r;
    geometry(d, strides, pad_l, pad_r);
    dnnl_primitive_attr_t attr = user_scratchpad();
    const int T = omp_get_max_threads();
    omp_set_num_threads(1);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t fpd = NULL, wpd = NULL;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                                          &src_any, &wei_any, NULL, &dst_any, strides, pad_l, pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&fpd, &cd, attr, engine, NULL);
    if (st == dnnl_success)
        st = dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src_any,
                                                         wei_p ? wei_p : &wei_any, NULL, &dst_any, strides, pad_l,
                                                         pad_r);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&wpd, &cd, attr, engine, fpd);
    if (st == dnnl_success) {
        k->src_p = *dnnl_primitive_desc_query_md(wpd, dnnl_query_src_md, 0);
        k->dst_p = *dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_dst_md, 0);
        k->dw_p = *dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0);
        k->scratch = *dnnl_primitive_desc_query_md(wpd, dnnl_query_scratchpad_md, 0);
        CK(dnnl_primitive_create(&k->p, wpd));
        k->r_src = reorder_make(&k->src, &k->src_p);
        k->r_dst = reorder_make(&k->dst, &k->dst_p);
        if (ob < d->O) k->r_dw = reorder_make(&k->dw_p, &k->dw);
    }
    omp_set_num_threads(T);
    if (fpd) CK(dnnl_primitive_desc_destroy(fpd));
    if (wpd) CK(dnnl_primitive_desc_destroy(wpd));
    CK(dnnl_primitive_attr_destroy(attr));
    return st;
}

static void chunk_free_reorder_src(Chunk *k) {
    if (k->r_src) dnnl_primitive_destroy(k->r_src);
    k->r_src = NULL;
}

static void chunk_free(Chunk *k) {
    if (k->p) dnnl_primitive_destroy(k->p);
    if (k->r_src) dnnl_primitive_destroy(k->r_src);
    if (k->r_dst) dnnl_primitive_destroy(k->r_dst);
    if (k->r_dw) dnnl_primitive_destroy(k->r_dw);
    memset(k, 0, sizeof *k);
}

/* the chunk plan of d's batch for a target of `target` chunks: fewer when
 * a chunk would have under WG_MIN_PIXELS output pixels (there the partial
 * dW, as big as the weights, costs about as much to add as to compute, and
 * oneDNN's kernel runs short rows), then ceil(N / chunks) samples per
 * chunk, the last one possibly fewer. A function of the shape and the
 * constants only, never of the thread count. */
enum { WG_MIN_PIXELS = 256, WG_CHANNELS = 64 };
static void wg_plan(const ConvDims *d, int target, int *cs, int *nc, int *ob) {
    *ob = d->O;
    if (target <= 0) {
        *cs = d->N, *nc = 0;
        return;
    }
    const long px = (long)d->N * d->OH * d->OW, most = px / WG_MIN_PIXELS > 1 ? px / WG_MIN_PIXELS : 1;
    if (most < target && d->O % WG_CHANNELS == 0 && d->O / WG_CHANNELS >= 2 &&
        d->O / WG_CHANNELS <= CONV2D_ONEDNN_WGRAD_CHUNKS_MAX) {
        /* few pixels, many filters: chunks of WG_CHANNELS output channels
         * over the whole batch instead; each weight's sum is then one
         * chunk's, no partials to add */
        *cs = d->N, *ob = WG_CHANNELS, *nc = d->O / WG_CHANNELS;
        return;
    }
    if (target > most) target = (int)most;
    *cs = (d->N + target - 1) / target;
    *nc = (d->N + *cs - 1) / *cs;
}

static size_t md_bytes(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }
static size_t max_z(size_t a, size_t b) { return a > b ? a : b; }

/* e's chunked dW: the chunk primitives (one per chunk size, the same
 * weights layout for both, so that the partials add elementwise) and the
 * workspace slices from *cursor */
static void wg_build(Entry *e, const ConvDims *d, const dnnl_memory_desc_t *wei, size_t *cursor) {
    wg_plan(d, e->key[9], &e->wg_cs, &e->wg_nc, &e->wg_ob);
    if (!e->wg_nc) return;
    if (e->wg_ob < d->O) {
        CK(chunk_init(&e->wg[0], d, d->N, e->wg_ob, NULL));
        const Chunk *k = &e->wg[0];
        if (k->r_src) { /* one reorder of the input for every chunk, before
                         * them: made again here, planned for the caller's
                         * thread count (a copy: any plan gives its bits) */
            e->wg_srcsh = take(cursor, md_bytes(&k->src_p));
            chunk_free_reorder_src(&e->wg[0]);
            e->wg[0].r_src = reorder_make(&e->wg[0].src, &e->wg[0].src_p);
        }
        size_t c = 0;
        take(&c, md_bytes(&k->dw_p));
        e->wg_src = 0;
        e->wg_dst = take(&c, k->r_dst ? md_bytes(&k->dst_p) : 0);
        e->wg_scr = take(&c, md_bytes(&k->scratch));
        e->wg_stride = c;
        e->wg_off = take(cursor, c * (size_t)e->wg_nc);
        return;
    }
    const int last = d->N - (e->wg_nc - 1) * e->wg_cs;
    CK(chunk_init(&e->wg[0], d, e->wg_cs, d->O, NULL));
    if (last != e->wg_cs && chunk_init(&e->wg[1], d, last, d->O, &e->wg[0].dw_p) != dnnl_success) {
        /* no kernel for the last chunk in the first's layout: both plain */
        chunk_free(&e->wg[0]);
        CK(chunk_init(&e->wg[0], d, e->wg_cs, d->O, wei));
        CK(chunk_init(&e->wg[1], d, last, d->O, wei));
    }
    size_t src = 0, dst = 0, scr = 0;
    for (int i = 0; i < 2; i++) {
        const Chunk *k = &e->wg[i];
        if (!k->p) continue;
        if (k->r_src) src = max_z(src, md_bytes(&k->src_p));
        if (k->r_dst) dst = max_z(dst, md_bytes(&k->dst_p));
        scr = max_z(scr, md_bytes(&k->scratch));
    }
    size_t c = 0;
    take(&c, md_bytes(&e->wg[0].dw_p));
    e->wg_src = take(&c, src);
    e->wg_dst = take(&c, dst);
    e->wg_scr = take(&c, scr);
    e->wg_stride = c;
    e->wg_off = take(cursor, c * (size_t)e->wg_nc);
    e->wg_out = reorder_make(&e->wg[0].dw_p, wei);
}

static Entry *entry_build(const ConvDims *d, const int key[10]) {
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
    dnnl_dims_t strides, pad_l, pad_r;
    geometry(d, strides, pad_l, pad_r);
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
    /* dW: the chunks, or (no chunks) one primitive at the caller's thread
     * count; either after bwd_d's buffers, never both in one call */
    size_t wcur = cur;
    wg_build(e, d, &wei, &wcur);
    if (!e->wg_nc) {
        pass_init(&e->bwd_w, wpd, &cur);
        arg_init(&e->bwd_w.a[0], wpd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, 0, &dst, &cur);
        arg_init(&e->bwd_w.a[1], wpd, dnnl_query_src_md, DNNL_ARG_SRC, 0, &src, &cur);
        arg_init(&e->bwd_w.a[2], wpd, dnnl_query_diff_weights_md, DNNL_ARG_DIFF_WEIGHTS, 1, &wei, &cur);
    }
    e->bwd_need = max_z(cur, wcur);

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
    const int key[10] = {d->N, d->C, d->H, d->W, d->O, d->KH, d->stride, d->pad, omp_get_max_threads(), wg_chunks};
    for (Entry *e = cache; e; e = e->next)
        if (!memcmp(e->key, key, sizeof key)) return e;
    Entry *e = entry_build(d, key);
    e->next = cache;
    cache = e;
    ws_reserve(e->fwd_need > e->bwd_need ? e->fwd_need : e->bwd_need);
    for (int j = 0; j < e->wg_nc; j++)
        if (!wg_stream[j]) CK(dnnl_stream_create(&wg_stream[j], engine, dnnl_stream_default_flags));
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

static dnnl_memory_t mem_at(const dnnl_memory_desc_t *md, const void *p) {
    dnnl_memory_t m;
    CK(dnnl_memory_create(&m, md, engine, (void *)p));
    return m;
}

static void run_on(dnnl_stream_t s, dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    CK(dnnl_primitive_execute(p, s, n, args));
}

/* chunk j's dW into its slice, on one thread: the caller runs it inside an
 * OpenMP loop (oneDNN then never forks: its OpenMP runtime runs nested
 * parallel sections on the calling thread) with this task's thread count
 * set to 1 (what oneDNN reads where it asks how many threads it has) */
static void chunk_run(const Entry *e, int j, const real *dout, const real *inp, const ConvDims *d) {
    const Chunk *k = &e->wg[j == e->wg_nc - 1 && e->wg[1].p ? 1 : 0];
    char *sl = ws + e->wg_off + (size_t)j * e->wg_stride;
    const int chan = e->wg_ob < d->O; /* channel chunks: all samples, channels o0.. */
    const size_t n0 = chan ? 0 : (size_t)j * e->wg_cs, o0 = chan ? (size_t)j * e->wg_ob : 0;
    dnnl_stream_t s = wg_stream[j];
    dnnl_memory_t src = mem_at(&k->src, inp + n0 * d->C * d->H * d->W);
    dnnl_memory_t dst = mem_at(&k->dst, dout + n0 * d->O * d->OH * d->OW + o0 * d->OH * d->OW);
    dnnl_memory_t src_p = src, dst_p = dst;
    if (chan && k->r_src) {
        src_p = mem_at(&k->src_p, ws + e->wg_srcsh); /* reordered before the chunks */
    } else if (k->r_src) {
        src_p = mem_at(&k->src_p, sl + e->wg_src);
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, src_p}};
        run_on(s, k->r_src, 2, a);
    }
    if (k->r_dst) {
        dst_p = mem_at(&k->dst_p, sl + e->wg_dst);
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, dst}, {DNNL_ARG_TO, dst_p}};
        run_on(s, k->r_dst, 2, a);
    }
    dnnl_memory_t dw = mem_at(&k->dw_p, sl), scr = mem_at(&k->scratch, sl + e->wg_scr);
    dnnl_exec_arg_t a[4] = {
        {DNNL_ARG_DIFF_DST, dst_p}, {DNNL_ARG_SRC, src_p}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_SCRATCHPAD, scr}};
    run_on(s, k->p, 4, a);
    if (chan) { /* the chunk's filters straight to their rows of the plain dW */
        real *to = (real *)(ws + e->dw_tmp) + o0 * d->C * d->KH * d->KW;
        dnnl_memory_t out = mem_at(&k->dw, to);
        if (k->r_dw) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, dw}, {DNNL_ARG_TO, out}};
            run_on(s, k->r_dw, 2, r);
        } else {
            memcpy(to, sl, md_bytes(&k->dw));
        }
        CK(dnnl_stream_wait(s));
        dnnl_memory_destroy(out);
    }
    CK(dnnl_stream_wait(s));
    if (src_p != src) dnnl_memory_destroy(src_p);
    if (dst_p != dst) dnnl_memory_destroy(dst_p);
    dnnl_memory_destroy(src), dnnl_memory_destroy(dst), dnnl_memory_destroy(dw), dnnl_memory_destroy(scr);
}

/* dweight += the chunks' dW: each chunk on one thread (any thread may take
 * any chunk: its bits are the same), then per weight the partials added in
 * chunk order, ((p0 + p1) + p2) + ..., elementwise; so the bits depend on
 * N and the chunk constant, not on the thread count */
static void wgrad_chunked(const Entry *e, real *dweight, const real *dout, const real *inp, const ConvDims *d) {
    const int chan = e->wg_ob < d->O;
    if (chan && e->wg[0].r_src) {
        dnnl_memory_t from = mem_at(&e->wg[0].src, inp), to = mem_at(&e->wg[0].src_p, ws + e->wg_srcsh);
        reorder(e->wg[0].r_src, from, to);
        CK(dnnl_stream_wait(stream));
        dnnl_memory_destroy(from), dnnl_memory_destroy(to);
    }
    #pragma omp parallel for schedule(dynamic, 1)
    for (int j = 0; j < e->wg_nc; j++) {
        omp_set_num_threads(1); /* this task's count; the caller's is untouched */
        chunk_run(e, j, dout, inp, d);
    }
    if (chan) { /* every weight is one chunk's: no partials */
        add_into(dweight, (real *)(ws + e->dw_tmp), (size_t)d->O * d->C * d->KH * d->KW);
        return;
    }
    const size_t n = md_bytes(&e->wg[0].dw_p) / sizeof(real), stride = e->wg_stride / sizeof(real);
    real *p0 = (real *)(ws + e->wg_off);
    const int nc = e->wg_nc;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        real acc = p0[i];
        for (int j = 1; j < nc; j++) acc += p0[(size_t)j * stride + i];
        p0[i] = acc;
    }
    const size_t nw = (size_t)d->O * d->C * d->KH * d->KW;
    if (!e->wg_out) { /* the partials are plain OIHW */
        add_into(dweight, p0, nw);
        return;
    }
    real *dw = (real *)(ws + e->dw_tmp);
    dnnl_memory_t from = mem_at(&e->wg[0].dw_p, p0), to = mem_at(&e->wg[0].dw_p, dw);
    dnnl_memory_desc_t plain;
    md_plain(&plain, d->O, d->C, d->KH, d->KW, dnnl_oihw);
    CK(dnnl_memory_destroy(to));
    to = mem_at(&plain, dw);
    reorder(e->wg_out, from, to);
    CK(dnnl_stream_wait(stream));
    dnnl_memory_destroy(from), dnnl_memory_destroy(to);
    add_into(dweight, dw, nw);
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
        dout_ready = !e->wg_nc && a->prim && b->prim && dnnl_memory_desc_equal(&a->pmd, &b->pmd);
    }
    if (dweight && e->wg_nc) {
        CK(dnnl_stream_wait(stream));
        wgrad_chunked(e, dweight, dout, inp, d);
        dweight = NULL;
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

void conv2d_onednn_set_wgrad_chunks(int chunks) {
    pthread_mutex_lock(&lock);
    wg_chunks = chunks < 0 ? 0 : chunks > CONV2D_ONEDNN_WGRAD_CHUNKS_MAX ? CONV2D_ONEDNN_WGRAD_CHUNKS_MAX : chunks;
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
        if (!e->wg_nc) pass_free(&e->bwd_w);
        chunk_free(&e->wg[0]);
        chunk_free(&e->wg[1]);
        if (e->wg_out) dnnl_primitive_destroy(e->wg_out);
        free(e);
    }
    free(ws);
    ws = NULL;
    ws_size = 0;
    for (int j = 0; j < CONV2D_ONEDNN_WGRAD_CHUNKS_MAX; j++)
        if (wg_stream[j]) dnnl_stream_destroy(wg_stream[j]), wg_stream[j] = NULL;
    if (engine) {
        dnnl_stream_destroy(stream);
        dnnl_engine_destroy(engine);
        engine = NULL;
    }
    pthread_mutex_unlock(&lock);
}

#endif
