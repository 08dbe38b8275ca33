/* Model building, arena layout, initialisation, forward and backward. */
#include "model.h"

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
    free(m->layers);
    free(m->labels);
    free(m->probs);
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

/* append a layer reading x, with output shape (C, H, W); NULL (m->err set)
 * when out of memory */
static Layer *push(Model *m, const LayerKind *kind, int x, int C, int H, int W, const char *name) {
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
    l->H = H;
    l->W = W;
    return l;
}

static int last(const Model *m) { return m->n_layers - 1; }

/* the new layer l (the last one), its geometry set: its kind sizes its
 * parameters; returns its index */
static int finish(Model *m, Layer *l) {
    if (l->kind->params) l->kind->params(l);
    return last(m);
}

/* the output side of a k-window with stride and pad over n; < 1 (an error
 * naming the layer) when the window does not fit */
static int window_out(Model *m, int n, int k, int stride, int pad, const char *name) {
    if (k < 1 || stride < 1 || pad < 0)
        return build_error(m, name, "bad window (kernel %d, stride %d, pad %d)", k, stride, pad);
    if (n + 2 * pad < k)
        return build_error(m, name, "kernel %d with pad %d does not fit the input side %d", k, pad, n);
    return (n + 2 * pad - k) / stride + 1;
}

int model_input(Model *m) {
    if (m->err[0]) return -1;
    Layer *l = push(m, &LAYER_INPUT, -1, m->in_C, m->in_H, m->in_W, "input");
    return l ? finish(m, l) : -1;
}

int model_conv(Model *m, int x, int out_channels, int k, int stride, int pad, ConvKind kind, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    const Layer *in = &m->layers[x];
    int OH = window_out(m, in->H, k, stride, pad, name), OW = window_out(m, in->W, k, stride, pad, name);
    if (OH < 1 || OW < 1) return -1;
    /* the one place a conv's kind is chosen: what CONV_BINARY runs is the model's choice */
    int binary = kind == CONV_BINARY && m->binary_kind == CONV_BINARY;
    Layer *l = push(m, binary ? &LAYER_BCONV : &LAYER_CONV, x, out_channels, OH, OW, name);
    if (!l) return -1;
    l->K = k;
    l->stride = stride;
    l->pad = pad;
    l->conv_kind = kind;
    return finish(m, l);
}

int model_bn(Model *m, int x, real gamma_init, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    const Layer *in = &m->layers[x];
    Layer *l = push(m, &LAYER_BN, x, in->C, in->H, in->W, name);
    if (!l) return -1;
    l->gamma_init = gamma_init;
    l->is_bn1d = l->inH == 1 && l->inW == 1; /* l->in*, not in->*: push() may have moved the layers */
    return finish(m, l);
}

int model_hardtanh(Model *m, int x, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    const Layer *in = &m->layers[x];
    Layer *l = push(m, &LAYER_HARDTANH, x, in->C, in->H, in->W, name);
    return l ? finish(m, l) : -1;
}

int model_relu(Model *m, int x, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    const Layer *in = &m->layers[x];
    Layer *l = push(m, &LAYER_RELU, x, in->C, in->H, in->W, name);
    return l ? finish(m, l) : -1;
}

static int pool(Model *m, const LayerKind *kind, int x, int k, int stride, int pad, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    const Layer *in = &m->layers[x];
    int OH = window_out(m, in->H, k, stride, pad, name), OW = window_out(m, in->W, k, stride, pad, name);
    if (OH < 1 || OW < 1) return -1;
    Layer *l = push(m, kind, x, in->C, OH, OW, name);
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

int model_global_avgpool(Model *m, int x, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    const Layer *in = &m->layers[x];
    Layer *l = push(m, &LAYER_GAP, x, in->C, 1, 1, name);
    return l ? finish(m, l) : -1;
}

int model_linear(Model *m, int x, int out_features, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    Layer *l = push(m, &LAYER_LINEAR, x, out_features, 1, 1, name);
    return l ? finish(m, l) : -1;
}

int model_add(Model *m, int a, int b, const char *name) {
    if (!input_ok(m, a, name) || !input_ok(m, b, name)) return -1;
    const Layer *la = &m->layers[a], *lb = &m->layers[b];
    if (la->C != lb->C || la->H != lb->H || la->W != lb->W)
        return build_error(m, name, "add of %s (%dx%dx%d) and %s (%dx%dx%d): the shapes differ", la->name, la->C,
                           la->H, la->W, lb->name, lb->C, lb->H, lb->W);
    /* la's shape copied before push() may move the layers */
    int C = la->C, H = la->H, W = la->W;
    Layer *l = push(m, &LAYER_ADD, a, C, H, W, name);
    if (!l) return -1;
    l->in1 = b;
    return finish(m, l);
}

int model_shortcut_a(Model *m, int x, int stride, int out_channels, const char *name) {
    if (!input_ok(m, x, name)) return -1;
    const Layer *in = &m->layers[x];
    if (stride < 1 || in->H / stride < 1 || in->W / stride < 1 || out_channels < in->C)
        return build_error(m, name, "option-A shortcut from %dx%dx%d to %d channels at stride %d", in->C, in->H,
                           in->W, out_channels, stride);
    Layer *l = push(m, &LAYER_SHORTCUT_A, x, out_channels, in->H / stride, in->W / stride, name);
    if (!l) return -1;
    l->stride = stride;
    l->K = stride;
    /* ReCU resnet2: planes//4 zeros on each side, i.e. (out - in)/2 for a doubling */
    l->pad_before = (out_channels - l->inC) / 2; /* not in->C: push() may have moved the layers */
    return finish(m, l);
}

/* ------------------------------------------------------------------ arenas */

static size_t round_reals(size_t n) { return arena_round(n * sizeof(real)) / sizeof(real); }

/* A tensor placed in an arena: offset and length in reals, and the range of
 * layer indices [lo, hi] over which it is alive. */
typedef struct { size_t off, len; int lo, hi; } Block;

/* the lowest offset >= base where `len` reals alive over [lo, hi] overlap none
 * of the n placed blocks alive at the same time (first fit) */
static size_t first_fit(const Block *placed, int n, size_t base, size_t len, int lo, int hi) {
    size_t off = base;
    for (int moved = 1; moved;) {
        moved = 0;
        for (int k = 0; k < n; k++) {
            const Block *q = &placed[k];
            if (lo <= q->hi && q->lo <= hi && off < q->off + q->len && q->off < off + len) {
                off = q->off + q->len;
                moved = 1;
            }
        }
    }
    return off;
}

/* Offsets of the outputs in acts. An output is kept (its own space) when a
 * backward reads it: a consumer's that reads its inputs, or its own; the
 * input images and the logits always. The others are transient, alive from
 * their layer's forward to their last consumer's, and share space first fit
 * (in a ResNet block: the BN outputs feeding hardtanh or the residual add, the
 * add itself, the shortcut). Returns the arena size in reals. */
static size_t layout_acts(Model *m, int max_batch) {
    const int n = m->n_layers;
    if (n < 1) return 0;
    for (int j = 0; j < n; j++) m->layers[j].out_last_use = j;
    int *kept = calloc((size_t)n, sizeof *kept), np = 0;
    Block *placed = malloc((size_t)n * sizeof *placed);
    kept[0] = kept[n - 1] = 1;
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
        const size_t off = first_fit(placed, np, base, len, j, l->out_last_use);
        l->out_off = off;
        placed[np++] = (Block){off, len, j, l->out_last_use};
        if (off + len > total) total = off + len;
    }
    free(kept);
    free(placed);
    return total;
}

/* Offsets of the output gradients in dacts. Backward runs layers from the last
 * to the first; layer j's gradient is written first by the backward of its
 * last consumer (dout_birth) and read last by j's own backward, so it is live
 * over the steps [j, dout_birth]. Gradients whose step ranges are disjoint share
 * space: first fit, in order of birth. A ResNet needs a few tensors' worth
 * instead of one per layer. Returns the arena size in reals. */
static size_t layout_dacts(Model *m, int max_batch) {
    const int n = m->n_layers;
    if (n < 1) return 0;
    for (int j = 0; j < n; j++) m->layers[j].dout_birth = j;
    m->layers[n - 1].dout_birth = n; /* the loss gradient is written before any backward */
    for (int i = 1; i < n; i++) {
        const Layer *l = &m->layers[i];
        if (l->in0 >= 0 && m->layers[l->in0].dout_birth < i) m->layers[l->in0].dout_birth = i;
        if (l->in1 >= 0 && m->layers[l->in1].dout_birth < i) m->layers[l->in1].dout_birth = i;
    }
    Block *placed = malloc((size_t)n * sizeof *placed);
    int np = 0;
    size_t total = 0;
    for (int birth = n; birth >= 1; birth--)
        for (int j = n - 1; j >= 1; j--) {
            Layer *l = &m->layers[j];
            if (l->dout_birth != birth) continue;
            const size_t len = round_reals((size_t)max_batch * layer_numel(l));
            /* lowest offset clear of every placed gradient alive at the same time */
            const size_t off = first_fit(placed, np, 0, len, j, l->dout_birth);
            l->dout_off = off;
            placed[np++] = (Block){off, len, j, l->dout_birth};
            if (off + len > total) total = off + len;
        }
    free(placed);
    return total;
}

int model_alloc(Model *m, int max_batch) {
    if (m->err[0] || m->n_layers < 1) return -1; /* a half-built graph has no layout */
    m->max_batch = max_batch;
    size_t np = 0, nb = 0, ns = 0, nscr = 0;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        /* every tensor starts on an ARENA_ALIGN boundary */
        if (l->w_n) { l->w_off = np; np += round_reals(l->w_n); }
        if (l->b_n) { l->b_off = np; np += round_reals(l->b_n); }
        if (l->buf_n) { l->buf_off = nb; nb += round_reals(l->buf_n); }
        const LayerKind *k = l->kind;
        l->save_n = k->saved_n ? k->saved_n(l, m, max_batch) : 0;
        if (l->save_n) { l->save_off = ns; ns += round_reals(l->save_n); }
        l->scratch_n = k->scratch_n ? k->scratch_n(l, max_batch) : 0;
        if (l->scratch_n > nscr) nscr = l->scratch_n;
        size_t noise_n = k->noise_n ? k->noise_n(l, max_batch) : 0;
        if (noise_n > m->n_noise) m->n_noise = noise_n;
    }
    m->n_params = np;
    m->n_buffers = nb;
    m->n_acts = layout_acts(m, max_batch);
    m->n_dacts = layout_dacts(m, max_batch);
    m->n_saved = ns;
    m->n_scratch = nscr;
    size_t R = sizeof(real);
    if (arena_alloc(&m->a_params, np * R) || arena_alloc(&m->a_grads, np * R) ||
        arena_alloc(&m->a_opt, 2 * np * R) || arena_alloc(&m->a_buffers, nb * R) ||
        arena_alloc(&m->a_acts, m->n_acts * R) || arena_alloc(&m->a_dacts, m->n_dacts * R) ||
        arena_alloc(&m->a_saved, ns * R) || arena_alloc_uninit(&m->a_scratch, nscr * R) ||
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
    m->labels = calloc((size_t)max_batch, sizeof *m->labels);
    m->probs = calloc((size_t)max_batch * m->num_classes, sizeof *m->probs);
    return (m->labels && m->probs) ? 0 : -1;
}

void model_init_params(Model *m, uint64_t seed) {
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        /* each layer its own stream: a layer's draws do not depend on the others */
        Rng r = rng_stream(seed, RNG_INIT, (uint64_t)i, 0);
        if (l->kind->init) l->kind->init(l, m, &r);
    }
}

/* ----------------------------------------------------------- forward/backward */

double model_forward(Model *m, const real *images, const int32_t *labels, int N, int train) {
    m->batch = N;
    memcpy(layer_out(m, &m->layers[0]), images, (size_t)N * layer_numel(&m->layers[0]) * sizeof(real));
    for (int i = 1; i < m->n_layers; i++) {
        const double t0 = m->prof_fwd ? omp_get_wtime() : 0.0;
        m->layers[i].kind->forward(&m->layers[i], m, train);
        if (m->prof_fwd) m->prof_fwd[i] += omp_get_wtime() - t0;
    }
    m->loss = 0.0;
    if (labels) {
        memcpy(m->labels, labels, (size_t)N * sizeof *labels);
        m->loss = softmax_ce_forward(m->probs, model_logits(m), labels, N, m->num_classes);
    }
    return m->loss;
}

void model_backward(Model *m) {
    memset(m->grads, 0, m->n_params * sizeof(real));
    /* every layer's backward accumulates into its inputs' gradients: zero each
     * gradient when it comes alive (its space is shared with gradients that
     * are dead by then), only the live batch of it (the arena is laid out for
     * max_batch, the evaluation batch, often far more than a step uses) */
    const Layer *top = &m->layers[m->n_layers - 1];
    memset(layer_dout(m, top), 0, (size_t)m->batch * layer_numel(top) * sizeof(real));
    softmax_ce_backward(layer_dout(m, top), m->probs, m->labels, m->batch, m->num_classes, (real)1);
    for (int i = m->n_layers - 1; i >= 1; i--) {
        const Layer *li = &m->layers[i];
        m->bwd_store_input = 0;
        for (int j = 1; j < i; j++) { /* the gradients born at step i (usually one or two) */
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
        m->layers[i].kind->backward(&m->layers[i], m);
        if (m->prof_bwd) m->prof_bwd[i] += omp_get_wtime() - t0;
    }
    m->bwd_store_input = 0;
}

const real *model_logits(const Model *m) { return layer_out(m, &m->layers[m->n_layers - 1]); }

int model_correct(const Model *m, const int32_t *labels, int N) {
    const real *logits = model_logits(m);
    int correct = 0;
    for (int n = 0; n < N; n++) {
        const real *z = logits + (size_t)n * m->num_classes;
        int best = 0;
        for (int k = 1; k < m->num_classes; k++)
            if (z[k] > z[best]) best = k;
        correct += best == labels[n];
    }
    return correct;
}

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
