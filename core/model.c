/* Model building, arena layout, initialisation, running the graph forward
 * and backward. */
#include "model.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

void model_init(Model *m, const char *arch, int C, int H, int W, int num_classes) {
    memset(m, 0, sizeof *m);
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    m->in_C = C;
    m->in_H = H;
    m->in_W = W;
    m->num_classes = num_classes;
    m->binary_kind = CONV_FP32;
    m->bconv = binary_conv_faithful();
    m->bits = m->grad_bits = 32;
    m->shard = shard_plan_single();
}

void model_free(Model *m) {
    arena_free(&m->a_params);
    arena_free(&m->a_grads);
    arena_free(&m->a_opt);
    arena_free(&m->a_buffers);
    arena_free(&m->a_acts);
    arena_free(&m->a_dacts);
    arena_free(&m->a_saved);
    arena_free(&m->a_scratch);
    arena_free(&m->a_noise);
    arena_free(&m->a_shard);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* Record a building error of layer `name` unless one is already kept: the
 * first error is the cause, later ones would only be its consequences.
 * Returns -1, what a failed builder returns. */
__attribute__((format(printf, 3, 4))) static int build_error(Model *m, const char *name, const char *fmt, ...) {
    if (m->err[0]) return -1;
    int n = snprintf(m->err, sizeof m->err, "%s: ", name ? name : "?");
    if (n < 0 || (size_t)n >= sizeof m->err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err + n, sizeof m->err - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

int layer_run_error(Model *m, const Layer *l, const char *fmt, ...) {
    int n = snprintf(m->run_err, sizeof m->run_err, "%s: ", l->name);
    if (n < 0 || (size_t)n >= sizeof m->run_err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->run_err + n, sizeof m->run_err - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* 1 when a builder may go on: no earlier error and x an existing layer */
static int input_ok(Model *m, int x, const char *name) {
    if (m->err[0]) return 0;
    if (x < 0 || x >= m->n_layers) {
        build_error(m, name, "input %d is not a layer (the model has %d)", x, m->n_layers);
        return 0;
    }
    return 1;
}

int model_build_check(const Model *m, char *err, size_t errlen) {
    if (!m->err[0]) return 0;
    if (err && errlen) snprintf(err, errlen, "building %s: %s", m->arch, m->err);
    return -1;
}

/* append a layer reading x (-1: none) with C output channels; its H, W come
 * from its kind's shape rule in finish(). NULL (m->err set) when out of memory */
static Layer *push(Model *m, const LayerKind *kind, int x, int C, const char *name) {
    if (m->n_layers == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        Layer *nl = realloc(m->layers, (size_t)cap * sizeof *nl);
        if (!nl) {
            build_error(m, name, "out of memory for %d layers", cap);
            return NULL;
        }
        m->layers = nl;
        m->cap = cap;
    }
    Layer *l = &m->layers[m->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->in0 = x;
    l->in1 = -1;
    if (x >= 0) {
        const Layer *in = &m->layers[x];
        l->inC = in->C;
        l->inH = in->H;
        l->inW = in->W;
    }
    l->C = C;
    return l;
}

/* l's H, W from its inputs' by its kind's shape rule; 0, or -1 with the reason */
static int layer_shape(Layer *l, const Model *m, char *why, size_t whylen) {
    if (l->kind->out_shape) return l->kind->out_shape(l, m, why, whylen);
    l->H = l->inH;
    l->W = l->inW;
    return 0;
}

/* the new layer l (the last one), its geometry set: its kind gives its shape
 * and sizes its parameters; returns its index, or -1 (the layer taken back)
 * when the shape rule refuses */
static int finish(Model *m, Layer *l) {
    char why[160];
    if (layer_shape(l, m, why, sizeof why)) {
        m->n_layers--;
        return build_error(m, l->name, "%s", why);
    }
    if (l->kind->params) l->kind->params(l);
    return m->n_layers - 1;
}

int model_input(Model *m) {
    if (m->err[0]) return -1;
    Layer *l = push(m, &LAYER_INPUT, -1, m->in_C, "input");
    return l ? finish(m, l) : -1;
}

static int conv(Model *m, int x, int out_channels, int k, int stride, int pad, ConvKind kind, int bias,
                const char *name) {
    if (!input_ok(m, x, name)) return -1;
    /* the one place a conv's kind is chosen: what CONV_BINARY runs is the model's choice */
    int binary = kind == CONV_BINARY && m->binary_kind == CONV_BINARY;
    Layer *l = push(m, binary ? &LAYER_BCONV : &LAYER_CONV, x, out_channels, name);
    if (!l) return -1;
    l->K = k;
    l->stride = stride;
    l->pad = pad;
    l->conv_kind = kind;
    l->bias = bias;
    return finish(m, l);
}
int model_conv(Model *m, int x, int out_channels, int k, int stride, int pad, ConvKind kind, const char *name) {
    return conv(m, x, out_channels, k, stride, pad, kind, 0, name);
}
int model_conv_bias(Model *m, int x, int out_channels, int k, int stride, int pad, const char *name) {
    return conv(m, x, out_channels, k, stride, pad, CONV_FP32, 1, name);
}
int model_bidet_conv(Model *m, int x, int out_channels, int k, int stride, int pad, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    Layer *l = push(m, &LAYER_BIDET_CONV, x, out_channels, name);
    if (!l) return -1;
    l->K = k;
    l->stride = stride;
    l->pad = pad;
    l->bias = 1;
    return finish(m, l);
}

/* a layer of `kind` reading x with x's channels */
static int same_channels(Model *m, const LayerKind *kind, int x, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    Layer *l = push(m, kind, x, m->layers[x].C, name);
    return l ? finish(m, l) : -1;
}

int model_bn(Model *m, int x, real gamma_init, const char *name) {
    int i = same_channels(m, &LAYER_BN, x, name);
    if (i < 0) return -1;
    Layer *l = &m->layers[i];
    l->gamma_init = gamma_init;
    l->is_bn1d = l->inH == 1 && l->inW == 1;
    return i;
}
int model_hardtanh(Model *m, int x, const char *name) { return same_channels(m, &LAYER_HARDTANH, x, name); }
int model_relu(Model *m, int x, const char *name) { return same_channels(m, &LAYER_RELU, x, name); }
int model_global_avgpool(Model *m, int x, const char *name) { return same_channels(m, &LAYER_GAP, x, name); }

static int pool(Model *m, const LayerKind *kind, int x, int k, int stride, int pad, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    Layer *l = push(m, kind, x, m->layers[x].C, name);
    if (!l) return -1;
    l->K = k;
    l->stride = stride;
    l->pad = pad;
    return finish(m, l);
}
int model_maxpool(Model *m, int x, int k, int stride, int pad, const char *name) {
    return pool(m, &LAYER_MAXPOOL, x, k, stride, pad, name);
}
int model_avgpool(Model *m, int x, int k, int stride, int pad, const char *name) {
    return pool(m, &LAYER_AVGPOOL, x, k, stride, pad, name);
}

int model_linear(Model *m, int x, int out_features, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    Layer *l = push(m, &LAYER_LINEAR, x, out_features, name);
    return l ? finish(m, l) : -1;
}

int model_add(Model *m, int a, int b, const char *name) {
    if (!input_ok(m, a, name) || !input_ok(m, b, name)) return -1;
    Layer *l = push(m, &LAYER_ADD, a, m->layers[a].C, name);
    if (!l) return -1;
    l->in1 = b;
    return finish(m, l);
}

int model_shortcut_a(Model *m, int x, int stride, int out_channels, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    Layer *l = push(m, &LAYER_SHORTCUT_A, x, out_channels, name);
    if (!l) return -1;
    l->stride = stride;
    l->K = stride;
    /* ReCU resnet2: planes//4 zeros on each side, i.e. (out - in)/2 for a doubling */
    l->pad_before = (out_channels - l->inC) / 2;
    return finish(m, l);
}

/* 1 when a graph option may still be set: no building error, not yet
 * allocated (the layout depends on it), and layer (unless -1) a layer */
static int option_ok(Model *m, int layer, const char *what) {
    if (m->err[0]) return 0;
    if (m->max_batch) build_error(m, what, "after model_alloc (the layout is fixed)");
    else if (layer != -1 && (layer < 0 || layer >= m->n_layers))
        build_error(m, what, "%d is not a layer (the model has %d)", layer, m->n_layers);
    return !m->err[0];
}

int model_mark_output(Model *m, int layer) {
    if (layer == -1 || !option_ok(m, layer, "model_mark_output")) return -1;
    for (int k = 0; k < m->n_outputs; k++)
        if (m->outputs[k] == layer) return k;
    if (layer == 0) return build_error(m, "model_mark_output", "the input is not an output");
    if (m->n_outputs == MODEL_MAX_OUTPUTS)
        return build_error(m, m->layers[layer].name, "more than %d outputs", MODEL_MAX_OUTPUTS);
    m->outputs[m->n_outputs] = layer;
    return m->n_outputs++;
}

int model_freeze(Model *m, int layer) {
    if (layer == -1 || !option_ok(m, layer, "model_freeze")) return -1;
    m->layers[layer].frozen = 1;
    return 0;
}

int model_input_grad(Model *m, int on) {
    if (!option_ok(m, -1, "model_input_grad")) return -1;
    m->input_grad = on != 0;
    return 0;
}

/* ------------------------------------------------------------------ arenas */

static size_t round_reals(size_t n) { return arena_round(n * sizeof(real)) / sizeof(real); }

static int is_output(const Model *m, int j) {
    for (int k = 0; k < m->n_outputs; k++)
        if (m->outputs[k] == j) return 1;
    return 0;
}

/* A tensor placed in an arena: offset and length in reals, and the range of
 * times [lo, hi] over which it is alive, plus a second range [lo2, hi2]
 * (empty when lo2 > hi2: only train.memory lean's rebuilt outputs have one). */
typedef struct { size_t off, len; int lo, hi, lo2, hi2; } Block;

static int ranges_meet(int lo, int hi, int qlo, int qhi) { return lo <= hi && qlo <= qhi && lo <= qhi && qlo <= hi; }
static int lives_meet(const Block *q, int lo, int hi, int lo2, int hi2) {
    return ranges_meet(lo, hi, q->lo, q->hi) || ranges_meet(lo, hi, q->lo2, q->hi2) ||
           ranges_meet(lo2, hi2, q->lo, q->hi) || ranges_meet(lo2, hi2, q->lo2, q->hi2);
}

/* the lowest offset >= base where `len` reals alive over [lo, hi] and
 * [lo2, hi2] overlap none of the n placed blocks alive at the same time
 * (first fit) */
static size_t first_fit2(const Block *placed, int n, size_t base, size_t len, int lo, int hi, int lo2, int hi2) {
    size_t off = base;
    for (int moved = 1; moved;) {
        moved = 0;
        for (int k = 0; k < n; k++) {
            const Block *q = &placed[k];
            if (lives_meet(q, lo, hi, lo2, hi2) && off < q->off + q->len && q->off < off + len) {
                off = q->off + q->len;
                moved = 1;
            }
        }
    }
    return off;
}
static size_t first_fit(const Block *placed, int n, size_t base, size_t len, int lo, int hi) {
    return first_fit2(placed, n, base, len, lo, hi, 1, 0);
}

/* the longest chain of rebuilds from kept tensors a lean plan allows: a
 * ResNet block's BN -> hardtanh after its binary conv (3), not the residual
 * stream (whose rebuild would reach back through every block) */
enum { LEAN_MAX_DEPTH = 3 };

/* train.memory lean: which outputs are rebuilt instead of kept. need[j]: a
 * backward reads output j (the fast plan keeps it). depth[j]: rebuilds in
 * the chain that makes j from kept tensors and saved blocks (0: kept; above
 * LEAN_MAX_DEPTH: not rebuildable). Clears need[j] of the rebuilt ones;
 * sets every layer's rc_step, the step before whose backward it is rebuilt,
 * and returns each one's backward lifetime in [blo, bhi] (layer indices). */
static void lean_plan(Model *m, int *need, int *blo, int *bhi) {
    const int n = m->n_layers, inf = LEAN_MAX_DEPTH + 1;
    int *depth = malloc((size_t)n * sizeof *depth), *kept = malloc((size_t)n * sizeof *kept);
    for (int j = 0; j < n; j++) {
        const Layer *l = &m->layers[j];
        int d = inf;
        if (j > 0 && !is_output(m, j) && l->kind->recompute && (!l->kind->recompute_if || l->kind->recompute_if(l))) {
            d = 1;
            if (l->kind->recompute_reads_inputs) {
                const int ins[2] = {l->in0, l->in1};
                for (int k = 0; k < 2; k++)
                    if (ins[k] >= 0 && depth[ins[k]] + 1 > d) d = depth[ins[k]] + 1;
            }
        }
        kept[j] = j == 0 || is_output(m, j) || (need[j] && d > LEAN_MAX_DEPTH);
        depth[j] = kept[j] ? 0 : d;
        m->layers[j].rc_from_input = j > 0 && l->kind->recompute_from_kept_input && l->in1 < 0 && kept[l->in0];
    }
    for (int j = 0; j < n; j++) {
        blo[j] = n;
        bhi[j] = -1;
        m->layers[j].rc_step = -1;
    }
    /* the backward reads of what is not kept */
    for (int i = 1; i < n; i++) {
        const Layer *l = &m->layers[i];
        const int ins[3] = {l->in0, l->in1, i};
        for (int k = 0; k < 3; k++) {
            const int u = ins[k];
            if (u < 0 || kept[u] || !(k < 2 ? l->kind->bwd_reads_inputs : l->kind->bwd_reads_output)) continue;
            if (i > bhi[u]) bhi[u] = i;
            if (i < blo[u]) blo[u] = i;
        }
    }
    /* rebuilding t at step bhi[t] needs its inputs alive then: from the top
     * down, so that an input's range is final before its own turn */
    for (int t = n - 1; t >= 1; t--) {
        Layer *l = &m->layers[t];
        if (kept[t] || bhi[t] < 0) continue;
        l->rc_step = bhi[t];
        if (!l->kind->recompute_reads_inputs) continue;
        const int ins[2] = {l->in0, l->in1};
        for (int k = 0; k < 2; k++) {
            const int u = ins[k];
            if (u < 0 || kept[u]) continue;
            if (bhi[t] > bhi[u]) bhi[u] = bhi[t];
            if (bhi[t] < blo[u]) blo[u] = bhi[t];
        }
    }
    for (int j = 0; j < n; j++) need[j] = kept[j];
    free(depth);
    free(kept);
}

/* Offsets of the outputs in acts. An output is kept (its own space) when a
 * backward reads it: a consumer's that reads its inputs, or its own; the
 * input images and the model's outputs always. The others are transient,
 * alive from their layer's forward to their last consumer's, and share space
 * first fit (in a ResNet block: the BN outputs feeding hardtanh or the
 * residual add, the add itself, the shortcut). In a lean plan, outputs that
 * lean_plan rebuilds are transient too, with a second life in backward: time
 * runs 0 .. n-1 through the forward, then n + (n - i) at layer i's backward.
 * Returns the arena size in reals. */
static size_t layout_acts(Model *m, int max_batch) {
    const int n = m->n_layers;
    if (n < 1) return 0;
    for (int j = 0; j < n; j++) m->layers[j].out_last_use = j, m->layers[j].rc_step = -1, m->layers[j].rc_from_input = 0;
    int *kept = calloc((size_t)n, sizeof *kept), np = 0;
    int *blo = malloc((size_t)n * sizeof *blo), *bhi = malloc((size_t)n * sizeof *bhi);
    Block *placed = malloc((size_t)n * sizeof *placed);
    kept[0] = 1;
    for (int k = 0; k < m->n_outputs; k++) kept[m->outputs[k]] = 1;
    for (int i = 1; i < n; i++) {
        const Layer *l = &m->layers[i];
        if (l->kind->bwd_reads_output) kept[i] = 1;
        const int ins[2] = {l->in0, l->in1};
        for (int k = 0; k < 2; k++) {
            if (ins[k] < 0) continue;
            if (l->kind->bwd_reads_inputs) kept[ins[k]] = 1;
            if (m->layers[ins[k]].out_last_use < i) m->layers[ins[k]].out_last_use = i;
        }
    }
    if (m->memory_lean) lean_plan(m, kept, blo, bhi);
    size_t total = 0;
    for (int j = 0; j < n; j++) { /* kept outputs, in order */
        Layer *l = &m->layers[j];
        if (!kept[j]) continue;
        l->out_off = total;
        l->out_last_use = -1;
        total += round_reals((size_t)max_batch * layer_numel(l));
    }
    const size_t base = total;
    for (int j = 0; j < n; j++) { /* transient ones, first fit above the kept ones */
        Layer *l = &m->layers[j];
        if (kept[j]) continue;
        const size_t len = round_reals((size_t)max_batch * layer_numel(l));
        /* a rebuilt output's backward life (else an empty range) */
        const int lo2 = l->rc_step >= 0 ? 2 * n - bhi[j] : 1, hi2 = l->rc_step >= 0 ? 2 * n - blo[j] : 0;
        const size_t off = first_fit2(placed, np, base, len, j, l->out_last_use, lo2, hi2);
        l->out_off = off;
        placed[np++] = (Block){off, len, j, l->out_last_use, lo2, hi2};
        if (off + len > total) total = off + len;
    }
    free(kept);
    free(blo);
    free(bhi);
    free(placed);
    return total;
}

/* Offsets of the output gradients in dacts. Backward runs layers from the last
 * to the first; layer j's gradient is written first by the backward of its
 * last consumer (dout_birth) and read last by j's own backward, so it is live
 * over the steps [j, dout_birth]. An output's gradient is written by the
 * caller before any backward (dout_birth = n_layers). Gradients whose step
 * ranges are disjoint share space: first fit, in order of birth. A ResNet
 * needs a few tensors' worth instead of one per layer. The input's gradient
 * has a place only when asked for (model_input_grad). Returns the arena size
 * in reals. */
static size_t layout_dacts(Model *m, int max_batch) {
    const int n = m->n_layers, first = m->input_grad ? 0 : 1;
    if (n < 1) return 0;
    for (int j = 0; j < n; j++) m->layers[j].dout_birth = is_output(m, j) ? n : j;
    for (int i = 1; i < n; i++) {
        const Layer *l = &m->layers[i];
        if (l->in0 >= 0 && m->layers[l->in0].dout_birth < i) m->layers[l->in0].dout_birth = i;
        if (l->in1 >= 0 && m->layers[l->in1].dout_birth < i) m->layers[l->in1].dout_birth = i;
    }
    Block *placed = malloc((size_t)n * sizeof *placed);
    int np = 0;
    size_t total = 0;
    for (int birth = n; birth >= first; birth--)
        for (int j = n - 1; j >= first; j--) {
            Layer *l = &m->layers[j];
            if (l->dout_birth != birth) continue;
            const size_t len = round_reals((size_t)max_batch * layer_numel(l));
            /* lowest offset clear of every placed gradient alive at the same time */
            const size_t off = first_fit(placed, np, 0, len, j, l->dout_birth);
            l->dout_off = off;
            placed[np++] = (Block){off, len, j, l->dout_birth, 1, 0};
            if (off + len > total) total = off + len;
        }
    free(placed);
    return total;
}

/* Parameters: trainable layers' first, in layer order, then the frozen ones'
 * (with none frozen, the layout of every earlier version); every tensor starts
 * on an ARENA_ALIGN boundary. Returns the count, n_trainable in *n_trainable. */
static size_t layout_params(Model *m, size_t *n_trainable) {
    size_t np = 0;
    for (int frozen = 0; frozen <= 1; frozen++) {
        for (int i = 0; i < m->n_layers; i++) {
            Layer *l = &m->layers[i];
            if (l->frozen != frozen) continue;
            if (l->w_n) { l->w_off = np; np += round_reals(l->w_n); }
            if (l->b_n) { l->b_off = np; np += round_reals(l->b_n); }
        }
        if (!frozen) *n_trainable = np;
    }
    return np;
}

/* Saved: one block per layer, its reals then its typed bytes, each part
 * ARENA_ALIGN-aligned (so a block of bytes only starts where its reals would).
 * Also each layer's scratch and the noise, planned at max_batch. Returns the
 * arena size in bytes. */
static size_t layout_saved(Model *m, int max_batch) {
    size_t bytes = 0;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        const LayerKind *k = l->kind;
        l->save_n = k->saved_n ? k->saved_n(l, m, max_batch) : 0;
        l->save_i_n = k->saved_bytes ? k->saved_bytes(l, m, max_batch) : 0;
        l->save_off = bytes / sizeof(real);
        bytes += arena_round(l->save_n * sizeof(real));
        l->save_i_off = bytes;
        bytes += arena_round(l->save_i_n);
        if (!l->save_n && !l->save_i_n) l->save_off = l->save_i_off = 0;
        l->scratch_n = k->scratch_n ? k->scratch_n(l, m, max_batch) : 0;
        if (l->scratch_n > m->n_scratch) m->n_scratch = l->scratch_n;
        size_t noise_n = k->noise_n ? k->noise_n(l, max_batch) : 0;
        if (noise_n > m->n_noise) m->n_noise = noise_n;
    }
    return bytes;
}

int model_layout(Model *m, int max_batch) {
    if (m->err[0] || m->n_layers < 1 || max_batch < 1) return -1; /* a half-built graph has no layout */
    if (m->n_outputs == 0) m->outputs[m->n_outputs++] = m->n_layers - 1; /* the logits */
    m->max_batch = max_batch;
    /* lean: the binary convs' codes and int8 Bw live in scratch, rebuilt in backward */
    m->bconv.lean_saved = m->memory_lean;
    for (int i = 0; i < m->n_layers; i++) m->layers[i].out_cap = layer_numel(&m->layers[i]);
    size_t nb = 0;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        if (l->buf_n) { l->buf_off = nb; nb += round_reals(l->buf_n); }
    }
    const size_t np = layout_params(m, &m->n_trainable);
    m->n_params = np;
    m->n_buffers = nb;
    m->n_acts = layout_acts(m, max_batch);
    m->n_dacts = layout_dacts(m, max_batch);
    m->n_scratch = m->n_noise = 0;
    const size_t saved_bytes = layout_saved(m, max_batch);
    m->n_saved = saved_bytes / sizeof(real);
    return 0;
}

size_t model_train_bytes(const Model *m) {
    const size_t R = sizeof(real);
    return arena_round(m->n_acts * R) + arena_round(m->n_dacts * R) + arena_round(m->n_saved * R) +
           arena_round(m->n_scratch * R) + arena_round(m->n_noise * R);
}

int model_alloc(Model *m, int max_batch) {
    if (model_layout(m, max_batch)) return -1;
    const size_t np = m->n_params, nb = m->n_buffers, saved_bytes = m->n_saved * sizeof(real);
    size_t R = sizeof(real);
    if (arena_alloc(&m->a_params, np * R) || arena_alloc(&m->a_grads, np * R) ||
        arena_alloc(&m->a_opt, 2 * np * R) || arena_alloc(&m->a_buffers, nb * R) ||
        arena_alloc(&m->a_acts, m->n_acts * R) || arena_alloc(&m->a_dacts, m->n_dacts * R) ||
        arena_alloc(&m->a_saved, saved_bytes) || arena_alloc_uninit(&m->a_scratch, m->n_scratch * R) ||
        arena_alloc(&m->a_noise, m->n_noise * R))
        return -1;
    m->params = m->a_params.base;
    m->grads = m->a_grads.base;
    m->opt_m = m->a_opt.base;
    m->opt_v = m->opt_m + np;
    m->buffers = m->a_buffers.base;
    m->acts = m->a_acts.base;
    m->dacts = m->a_dacts.base;
    m->saved = m->a_saved.base;
    m->scratch = m->a_scratch.base;
    m->noise = m->a_noise.base;
    return 0;
}

int model_set_shards(Model *m, const ShardPlan *p, char *err, size_t errlen) {
    if (m->max_batch <= 0) {
        snprintf(err, errlen, "model_set_shards before model_alloc");
        return -1;
    }
    if (m->max_batch % p->local_shards != 0) {
        snprintf(err, errlen, "%d rows per rank do not split into %d shards", m->max_batch, p->local_shards);
        return -1;
    }
    arena_free(&m->a_shard);
    m->shard = *p;
    m->shard.ws_r = NULL;
    m->shard.ws_d = NULL;
    m->shard.ws_i = NULL;
    m->shard.ws_n = 0;
    m->shard.ws_dn = 0;
    if (shard_plan_trivial(p)) return 0; /* the kernels take today's path: no partials */
    /* reals: a weight tensor's partials (the fp32 weight gradients); doubles:
     * per-channel ones only (BN's 2C, bias sums, the binary conv's alpha) */
    size_t n = 64, nd = 64;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (l->w_n > n) n = l->w_n;
        if (l->b_n > n) n = l->b_n;
        if (2 * (size_t)l->C > n) n = 2 * (size_t)l->C;
        if (l->b_n > nd) nd = l->b_n;
        if (2 * (size_t)l->C > nd) nd = 2 * (size_t)l->C;
    }
    const size_t slots = (size_t)p->local_shards + 1;
    /* each block rounded to the arena's alignment: ws_r and ws_i stay aligned */
    const size_t bytes_r = arena_round(slots * n * sizeof(real));
    const size_t bytes_d = arena_round(slots * nd * sizeof(double));
    if (arena_alloc(&m->a_shard, bytes_r + bytes_d + 2 * n * sizeof(int64_t))) {
        snprintf(err, errlen, "out of memory for the shard workspace (%zu MiB)",
                 (bytes_r + bytes_d + 2 * n * sizeof(int64_t)) >> 20);
        return -1;
    }
    char *base = m->a_shard.base;
    m->shard.ws_d = (double *)base;
    m->shard.ws_r = (real *)(base + bytes_d);
    m->shard.ws_i = (int64_t *)(base + bytes_d + bytes_r);
    m->shard.ws_n = n;
    m->shard.ws_dn = nd;
    return 0;
}

void model_init_params(Model *m, uint64_t seed) {
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        /* each layer its own stream: a layer's draws do not depend on the others */
        Rng r = rng_stream(seed, RNG_INIT, (uint64_t)i, 0);
        if (l->kind->init) l->kind->init(l, m, &r);
    }
}

/* ------------------------------------------------------------ input sizes */

/* every layer's shape, to put back when a new size is refused */
typedef struct { int H, W, inH, inW; } Shape;

static Shape *shapes_save(const Model *m) {
    Shape *s = malloc((size_t)m->n_layers * sizeof *s);
    if (s)
        for (int i = 0; i < m->n_layers; i++) {
            const Layer *l = &m->layers[i];
            s[i] = (Shape){l->H, l->W, l->inH, l->inW};
        }
    return s;
}
static void shapes_restore(Model *m, const Shape *s, int in_H, int in_W) {
    m->in_H = in_H;
    m->in_W = in_W;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        l->H = s[i].H, l->W = s[i].W, l->inH = s[i].inH, l->inW = s[i].inW;
    }
}

/* Every layer's H, W for an input of H x W, in order, by its kind's shape
 * rule; a layer whose parameters would change size (a linear reading a
 * feature map) is refused. 0, or -1 with a message naming the layer (the
 * shapes are then partly changed: the caller restores them). */
static int reshape(Model *m, int H, int W, char *err, size_t errlen) {
    char why[160];
    m->in_H = H;
    m->in_W = W;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        if (l->in0 >= 0) {
            const int inH = l->inH, inW = l->inW;
            l->inH = m->layers[l->in0].H;
            l->inW = m->layers[l->in0].W;
            if (l->kind->params) {
                Layer t = *l;
                t.w_n = t.b_n = t.buf_n = 0;
                l->kind->params(&t);
                if (t.w_n != l->w_n || t.b_n != l->b_n || t.buf_n != l->buf_n) {
                    snprintf(err, errlen, "layer %s: its parameters were sized for an input of %dx%dx%d, not %dx%dx%d",
                             l->name, l->inC, inH, inW, l->inC, l->inH, l->inW);
                    return -1;
                }
            }
        }
        if (layer_shape(l, m, why, sizeof why)) {
            snprintf(err, errlen, "layer %s: %s", l->name, why);
            return -1;
        }
    }
    return 0;
}

/* 0 when every layer's tensors at the current shapes fit the plan of
 * model_alloc, else -1 naming the first layer that does not */
static int within_plan(const Model *m, char *err, size_t errlen) {
    const int B = m->max_batch;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        const LayerKind *k = l->kind;
        const struct { const char *what; size_t need, have; } c[5] = {
            {"output (values per sample)", layer_numel(l), l->out_cap},
            {"saved reals", k->saved_n ? k->saved_n(l, m, B) : 0, l->save_n},
            {"saved bytes", k->saved_bytes ? k->saved_bytes(l, m, B) : 0, l->save_i_n},
            {"scratch (reals)", k->scratch_n ? k->scratch_n(l, m, B) : 0, m->n_scratch},
            {"noise (reals)", k->noise_n ? k->noise_n(l, B) : 0, m->n_noise},
        };
        for (int j = 0; j < 5; j++)
            if (c[j].need > c[j].have) {
                snprintf(err, errlen, "layer %s: its %s at %dx%dx%d, %zu, exceeds the %zu planned by model_alloc "
                         "(model_plan plans for a larger input)", l->name, c[j].what, l->C, l->H, l->W, c[j].need,
                         c[j].have);
                return -1;
            }
    }
    return 0;
}

/* The layers' shapes saved (for shapes_restore by the caller), then every
 * layer reshaped for an H x W input: *rc is reshape's result. NULL (m
 * untouched) when out of memory. */
static Shape *save_and_reshape(Model *m, int H, int W, int *rc, char *err, size_t errlen) {
    Shape *s = shapes_save(m);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *rc = reshape(m, H, W, err, errlen);
    return s;
}

int model_set_input_size(Model *m, int H, int W, char *err, size_t errlen) {
    if (!m->max_batch) {
        snprintf(err, errlen, "model_set_input_size before model_alloc");
        return -1;
    }
    if (H < 1 || W < 1) {
        snprintf(err, errlen, "input size %dx%d", H, W);
        return -1;
    }
    const int in_H = m->in_H, in_W = m->in_W;
    int rc;
    Shape *s = save_and_reshape(m, H, W, &rc, err, errlen);
    if (!s) return -1;
    if (rc == 0) rc = within_plan(m, err, errlen);
    if (rc) shapes_restore(m, s, in_H, in_W);
    free(s);
    return rc;
}

int model_plan(Model *m, int max_batch, int maxH, int maxW, char *err, size_t errlen) {
    if (model_build_check(m, err, errlen)) return -1;
    if (maxH < m->in_H || maxW < m->in_W) {
        snprintf(err, errlen, "planned size %dx%d is smaller than the build size %dx%d", maxH, maxW, m->in_H, m->in_W);
        return -1;
    }
    const int in_H = m->in_H, in_W = m->in_W;
    int rc;
    Shape *s = save_and_reshape(m, maxH, maxW, &rc, err, errlen);
    if (!s) return -1;
    if (rc == 0 && model_alloc(m, max_batch)) {
        snprintf(err, errlen, "out of memory for %s at %dx%d, batch %d", m->arch, maxH, maxW, max_batch);
        rc = -1;
    }
    shapes_restore(m, s, in_H, in_W); /* back to the build size, which the plan holds */
    free(s);
    return rc ? rc : within_plan(m, err, errlen);
}

/* ----------------------------------------------------------- forward/backward */

int model_run(Model *m, const real *input, int N, int train) {
    m->run_err[0] = 0;
    if (!m->acts) {
        snprintf(m->run_err, sizeof m->run_err, "model_run before model_alloc");
        return -1;
    }
    if (N < 0 || N > m->max_batch) {
        snprintf(m->run_err, sizeof m->run_err, "a batch of %d rows: the model was allocated for 0..%d", N,
                 m->max_batch);
        return -1;
    }
    m->batch = N;
    m->run_train = train;
    for (int k = 0; k < m->n_outputs; k++) m->out_grad_ready[k] = 0;
    if (N > 0) memcpy(layer_out(m, &m->layers[0]), input, (size_t)N * layer_numel(&m->layers[0]) * sizeof(real));
    for (int i = 1; i < m->n_layers; i++) {
        const double t0 = m->prof_fwd ? omp_get_wtime() : 0.0;
        if (m->layers[i].kind->forward(&m->layers[i], m, train)) return -1;
        if (m->prof_fwd) m->prof_fwd[i] += omp_get_wtime() - t0;
    }
    return 0;
}

const real *model_output(const Model *m, int k) {
    return k >= 0 && k < m->n_outputs ? layer_out(m, &m->layers[m->outputs[k]]) : NULL;
}

real *model_output_grad(Model *m, int k) {
    if (k < 0 || k >= m->n_outputs || !m->dacts) return NULL;
    const Layer *l = &m->layers[m->outputs[k]];
    if (!m->out_grad_ready[k]) { /* only the live batch of it, as every gradient */
        memset(layer_dout(m, l), 0, (size_t)m->batch * layer_numel(l) * sizeof(real));
        m->out_grad_ready[k] = 1;
    }
    return layer_dout(m, l);
}

void model_backward_outputs(Model *m) {
    memset(m->grads, 0, m->n_params * sizeof(real));
    for (int k = 0; k < m->n_outputs; k++) model_output_grad(m, k); /* zero the ones not asked for */
    /* every layer's backward accumulates into its inputs' gradients: zero each
     * gradient when it comes alive (its space is shared with gradients that
     * are dead by then), only the live batch of it (the arena is laid out for
     * max_batch, the evaluation batch, often far more than a step uses) */
    const int first = m->input_grad ? 0 : 1;
    for (int i = m->n_layers - 1; i >= 1; i--) {
        const Layer *li = &m->layers[i];
        m->bwd_store_input = 0;
        for (int j = first; j < i; j++) { /* the gradients born at step i (usually one or two) */
            if (m->layers[j].dout_birth != i) continue;
            if (li->kind->bwd_can_store && j == li->in0 && li->in1 < 0) {
                m->bwd_store_input = 1; /* the layer writes all of it: no zeroing */
                continue;
            }
            memset(layer_dout(m, &m->layers[j]), 0, (size_t)m->batch * layer_numel(&m->layers[j]) * sizeof(real));
        }
        if (m->layers[i].dout_birth == i) /* nothing consumes layer i: its gradient is zero */
            memset(layer_dout(m, &m->layers[i]), 0, (size_t)m->batch * layer_numel(&m->layers[i]) * sizeof(real));
        const double t0 = m->prof_bwd ? omp_get_wtime() : 0.0;
        /* lean: the outputs this backward needs that were not kept, rebuilt
         * in forward order (inputs before what is made of them) */
        for (int j = 1; j <= i; j++)
            if (m->layers[j].rc_step == i) m->layers[j].kind->recompute(&m->layers[j], m);
        m->layers[i].kind->backward(&m->layers[i], m);
        if (m->prof_bwd) m->prof_bwd[i] += omp_get_wtime() - t0;
    }
    m->bwd_store_input = 0;
    if (m->input_grad && m->layers[0].dout_birth == 0) /* nothing reads the input: zero gradient */
        memset(layer_dout(m, &m->layers[0]), 0, (size_t)m->batch * layer_numel(&m->layers[0]) * sizeof(real));
    /* the output gradients are spent: their space may now hold others */
    for (int k = 0; k < m->n_outputs; k++) m->out_grad_ready[k] = 0;
}

void model_backward_from(Model *m, const real *const *dout) {
    for (int k = 0; k < m->n_outputs; k++) {
        real *g = model_output_grad(m, k);
        if (!dout[k]) continue;
        const size_t n = (size_t)m->batch * layer_numel(&m->layers[m->outputs[k]]);
        for (size_t i = 0; i < n; i++) g[i] += dout[k][i];
    }
    model_backward_outputs(m);
}

const real *model_input_grad_buf(const Model *m) {
    return m->input_grad && m->dacts ? layer_dout(m, &m->layers[0]) : NULL;
}

/* ------------------------------------------- classification (moving to tasks/) */

/* ----------------------------------------------------------------- summary */

long model_macs(const Model *m, long *fp32_macs, long *binary_macs) {
    long total = 0, fp = 0, bin = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        long macs = l->kind->macs(l);
        total += macs;
        if (l->kind->binary) bin += macs;
        else fp += macs;
    }
    if (fp32_macs) *fp32_macs = fp;
    if (binary_macs) *binary_macs = bin;
    return total;
}

static const char *layer_kind_label(const Layer *l) { return l->kind->label ? l->kind->label(l) : l->kind->name; }

static void human(char *buf, size_t n, double x) {
    if (x >= 1e9) snprintf(buf, n, "%.2f G", x / 1e9);
    else if (x >= 1e6) snprintf(buf, n, "%.2f M", x / 1e6);
    else if (x >= 1e3) snprintf(buf, n, "%.1f K", x / 1e3);
    else snprintf(buf, n, "%.0f", x);
}

int model_summary_rows(const Model *m, SummaryRow *rows) {
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        SummaryRow *r = &rows[i];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", l->name);
        snprintf(r->kind, sizeof r->kind, "%s", layer_kind_label(l));
        snprintf(r->output_shape, sizeof r->output_shape, "%dx%dx%d", l->C, l->H, l->W);
        int binary = l->kind->binary;
        r->input_bits = binary ? 1 : 32;
        r->params_1bit = binary ? (long)l->w_n : 0;
        r->params_32bit = binary ? (long)l->b_n : (long)(l->w_n + l->b_n);
        r->memory_bytes = r->params_1bit / 8.0 + 4.0 * r->params_32bit;
        long macs = l->kind->macs(l);
        r->macs_1bit = binary ? macs : 0;
        r->macs_32bit = binary ? 0 : macs;
    }
    return m->n_layers;
}

static void human_bytes(char *buf, size_t n, double b) {
    if (b >= 1e6) snprintf(buf, n, "%.2f MB", b / 1e6);
    else if (b >= 1e3) snprintf(buf, n, "%.2f KB", b / 1e3);
    else snprintf(buf, n, "%.0f B", b);
}

void model_summary(const Model *m, FILE *f) {
    SummaryRow *rows = calloc((size_t)m->n_layers, sizeof *rows);
    if (!rows) return;
    model_summary_rows(m, rows);
    fprintf(f, "%-26s %-15s %7s %-11s %11s %12s %10s %11s %11s\n", "layer", "kind", "in bits", "output", "1-bit par.",
            "32-bit par.", "memory", "1-bit MACs", "32-bit MACs");
    SummaryRow tot;
    memset(&tot, 0, sizeof tot);
    for (int i = 0; i < m->n_layers; i++) {
        const SummaryRow *r = &rows[i];
        char mem[32], mb[32], mf[32];
        human_bytes(mem, sizeof mem, r->memory_bytes);
        human(mb, sizeof mb, (double)r->macs_1bit);
        human(mf, sizeof mf, (double)r->macs_32bit);
        char bits[8];
        if (r->input_bits == 1) snprintf(bits, sizeof bits, "1");
        else snprintf(bits, sizeof bits, "-");
        fprintf(f, "%-26s %-15s %7s %-11s %11ld %12ld %10s %11s %11s\n", r->name, r->kind, bits, r->output_shape,
                r->params_1bit, r->params_32bit, mem, mb, mf);
        tot.params_1bit += r->params_1bit;
        tot.params_32bit += r->params_32bit;
        tot.memory_bytes += r->memory_bytes;
        tot.macs_1bit += r->macs_1bit;
        tot.macs_32bit += r->macs_32bit;
    }
    char mem[32], mb[32], mf[32], fpmem[32];
    human_bytes(mem, sizeof mem, tot.memory_bytes);
    human(mb, sizeof mb, (double)tot.macs_1bit);
    human(mf, sizeof mf, (double)tot.macs_32bit);
    double fp32_bytes = 4.0 * (double)(tot.params_1bit + tot.params_32bit);
    human_bytes(fpmem, sizeof fpmem, fp32_bytes);
    fprintf(f, "%-26s %-15s %7s %-11s %11ld %12ld %10s %11s %11s\n", "total", "", "", "", tot.params_1bit,
            tot.params_32bit, mem, mb, mf);
    fprintf(f, "parameters: %ld; memory at inference %s vs %s as fp32 (%.2fx smaller); MACs/sample: %s 1-bit, %s "
            "32-bit\n",
            tot.params_1bit + tot.params_32bit, mem, fpmem, fp32_bytes / (tot.memory_bytes > 0 ? tot.memory_bytes : 1),
            mb, mf);
    if (m->binary_kind != CONV_BINARY)
        fprintf(f, "(model.conv = fp32: the convs the paper binarizes run in fp32 here, counted as 32-bit)\n");
    free(rows);
}
