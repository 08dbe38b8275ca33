/* A model: a list of layers in execution order, each reading the outputs of
 * earlier layers by index (so residual blocks are just an `add` of two
 * indices), built once into arenas whose sizes are computed first.
 *
 *   Model m; model_init(&m, "net", C, H, W, classes);
 *   int x = model_input(&m);
 *   x = model_conv(&m, x, 16, 3, 1, 1, CONV_FP32, "conv1"); ...
 *   model_mark_output(&m, logits);  model_mark_output(&m, boxes);   (none marked: the last layer is output 0)
 *   model_freeze(&m, bn0);  model_input_grad(&m, 1);                 (optional, before model_alloc)
 *   model_alloc(&m, max_batch);  model_init_params(&m, seed);
 *
 * One step, the losses outside the model (core/ops.h's loss functions):
 *   model_run(&m, images, N, train);                  the graph only: 0, or -1 with m.run_err
 *   loss = softmax_ce_forward(probs, model_output(&m, 0), labels, N, K)
 *        + 0.5 * smooth_l1_forward(model_output(&m, 1), targets, NULL, 4 * N, 1.0, 4 * N);
 *   softmax_ce_backward(model_output_grad(&m, 0), probs, labels, N, K, 1);
 *   smooth_l1_backward(model_output_grad(&m, 1), model_output(&m, 1), targets, NULL, 4 * N, 1.0, 4 * N, 0.5);
 *   model_backward_outputs(&m);                       zero grads, backprop every output's gradient
 *   adamw_step(m.params, m.grads, m.opt_m, m.opt_v, m.n_trainable, ...);
 * An output's gradient buffer ([N, C*H*W] of its layer) is zeroed on its first
 * model_output_grad after a run, so several losses may accumulate into it; an
 * output never asked for gets a zero gradient.
 *
 * Frozen layers (model_freeze) keep their parameters and buffers: a frozen BN
 * or binary conv runs in eval mode (running statistics, no update) in training
 * too, and no frozen layer gets a parameter gradient. Parameters are laid out
 * trainable first, frozen after: [0, n_trainable) is what an optimizer steps
 * (with no frozen layer, n_trainable = n_params and the layout is unchanged).
 *
 * Shapes: the builders fix every layer's shape for the model_init input size;
 * model_alloc plans every tensor for that size (or model_plan's larger one) at
 * max_batch. model_set_input_size then changes the input size within that plan
 * (every layer's H, W recomputed by its kind's shape rule), and a run takes any
 * N <= max_batch rows.
 *
 * Arenas (one aligned allocation each): params, grads (same layout), optimizer
 * state (two slots per parameter), buffers (BN running statistics), acts (layer
 * outputs for max_batch; an output no backward reads shares space with others
 * of disjoint lifetimes; the input and the outputs are kept), dacts (their
 * gradients: a gradient lives from the backward of its layer's last consumer
 * (an output's: from the run) to the layer's own backward, and gradients whose
 * lifetimes do not overlap share space; the input's only with model_input_grad),
 * saved (what a backward needs besides outputs, one block per layer: reals such
 * as BN's mean/rstd, then typed bytes such as max-pool's int32 argmax and the
 * binary conv's block), scratch (the largest per-layer kernel scratch; not
 * zeroed: every kernel writes its scratch before reading it, and pages no layer
 * touches never become resident).
 *
 * train.memory lean (memory_lean = 1): an output a backward reads but whose
 * kind can rebuild it exactly (LayerKind.recompute: the binary conv's Y *
 * alpha from its saved int16 Y; BN, hardtanh, relu, add, the shortcut, the
 * fp32 stem conv from their inputs) is not kept: it lives in acts' shared
 * part twice, over its forward lifetime and, rebuilt by model_backward_outputs
 * before the first backward that reads it, until the last one (a chain of at
 * most LEAN_MAX_DEPTH rebuilds from kept tensors, so the residual stream
 * stays kept). The binary convs also save no codes and no int8 Bw: they live
 * in scratch and backward rebuilds them (BinaryConvOptions.lean_saved).
 * Dacts and noise as in fast; bitwise the same results. */
#ifndef CBNN_MODEL_H
#define CBNN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "binary_conv.h"
#include "ops.h"
#include "real.h"
#include "rng.h"
#include "shard.h"

typedef struct Model Model;
typedef struct Layer Layer;

/* The kind of a convolution. The paper's models mark every conv inside the
 * residual blocks CONV_BINARY; what such a conv runs is the model's
 * binary_kind (config model.conv): the fp32 conv (CONV_FP32, "fp32") or the
 * CycleBNN binary conv of core/binary_conv.h (CONV_BINARY, "cyclebnn"). */
typedef enum { CONV_FP32 = 0, CONV_BINARY = 1 } ConvKind;

typedef struct {
    const char *name;                            /* "conv", "bn", ... */
    /* 0, or -1 with the reason in m->run_err (a call its layer cannot run) */
    int (*forward)(Layer *l, Model *m, int train);
    void (*backward)(Layer *l, Model *m);
    long (*macs)(const Layer *l);                /* forward multiply-accumulates per sample */
    /* what backward reads of the forward's activations: the outputs of the
     * layer's inputs, its own output. An output nobody's backward reads is
     * transient: it lives only until its last consumer's forward, and
     * transient outputs of disjoint lifetimes share space in acts. */
    int bwd_reads_inputs, bwd_reads_output;
    /* its backward can write its input's gradient without reading it (when
     * Model.bwd_store_input says the buffer is fresh: no zeroing needed) */
    int bwd_can_store;
    /* Everything else the engine needs to know about a kind is asked here, so
     * that adding a kind is one entry in core/layers.c and nothing outside it
     * compares kinds. */
    /* a weight tensor (w) whose gradient is a GEMM as large as the forward:
     * the training cost counts its weight-gradient MACs, the landscape
     * perturbs it (conv, binary conv, linear; not BN's per-channel gamma) */
    int has_weights;
    /* the CycleBNN binary conv: 1-bit weights and input at inference, its
     * MACs are the binary ones, its output gradient is quantized to grad_bits
     * (the precision cost model, the summary, the landscape's binary weights) */
    int binary;
    /* sets l->H, l->W from the input's (l->inH, l->inW) and the geometry: the
     * one shape rule of the kind, used by the builders and by
     * model_set_input_size. 0, or -1 with the reason in why (a window that
     * does not fit, inputs whose shapes differ). NULL: the input's H, W. */
    int (*out_shape)(Layer *l, const Model *m, char *why, size_t whylen);
    /* sets w_n, b_n, buf_n from the layer's shape and geometry (NULL: none) */
    void (*params)(Layer *l);
    /* initial parameters and buffers from the layer's own stream r (NULL: none) */
    void (*init)(Layer *l, Model *m, Rng *r);
    /* reals needed at max_batch (NULL: none): saved for the backward, kernel
     * scratch (the arena holds the largest), error-quantizer noise (the same);
     * saved_bytes: bytes of typed (not real) data saved for the backward,
     * after the layer's saved reals */
    size_t (*saved_n)(const Layer *l, const Model *m, int max_batch);
    size_t (*saved_bytes)(const Layer *l, const Model *m, int max_batch);
    size_t (*scratch_n)(const Layer *l, const Model *m, int max_batch);
    size_t (*noise_n)(const Layer *l, int max_batch);
    /* the summary's kind column (NULL: name) */
    const char *(*label)(const Layer *l);
    /* train.memory lean: rebuild the layer's output in place (layer_out),
     * bitwise what its forward of the last run wrote, from its saved block
     * and, when recompute_reads_inputs, its inputs' outputs (kept, or rebuilt
     * first by the engine). NULL: the kind cannot; its output is then kept
     * whenever a backward reads it. */
    void (*recompute)(Layer *l, Model *m);
    int recompute_reads_inputs;
    /* NULL: recompute serves every layer of the kind; else only those it
     * returns 1 for (a rebuild worth its time: the fp32 conv's stem) */
    int (*recompute_if)(const Layer *l);
    /* lean: when the layer's one input is kept, its rebuild may read it
     * instead of a saved copy (Layer.rc_from_input; the binary conv then
     * saves no Y and runs the 1-bit conv again) */
    int recompute_from_kept_input;
} LayerKind;

struct Layer {
    const LayerKind *kind;
    char name[48];
    int in0, in1;              /* input layer indices (-1: none) */
    int inC, inH, inW;         /* shape of in0 per sample */
    int C, H, W;               /* output shape per sample */
    /* parameters (offsets in reals into params/grads/opt state), count 0 = none */
    size_t w_off, w_n;         /* conv/linear weight; BN gamma */
    size_t b_off, b_n;         /* linear bias; conv bias (model_conv_bias); BN beta; binary conv alpha */
    size_t buf_off, buf_n;     /* BN running_mean then running_var; binary conv running_zp, running_range */
    size_t out_off;            /* output in acts, max_batch * C*H*W reals */
    int out_last_use;          /* forward index of its last consumer if the output is transient, else -1 */
    int rc_step;               /* lean: the backward step (a layer index) before which the output is rebuilt
                                * (LayerKind.recompute), else -1 */
    int rc_from_input;         /* lean: its kind's recompute_from_kept_input applies (the input is kept) */
    size_t dout_off;           /* its gradient in dacts (buffers of disjoint lifetimes share space) */
    int dout_birth;            /* backward step before which dout is zeroed: the last consumer's index
                                * (n_layers for the top layer, the layer itself if nothing consumes it) */
    size_t out_cap;            /* planned output values per sample (acts, dacts hold max_batch of them) */
    size_t save_off, save_n;   /* the layer's block in saved: reals at save_off (in reals), save_n planned */
    size_t save_i_off, save_i_n; /* then its typed bytes at save_i_off (in bytes from the arena's start) */
    size_t scratch_n;          /* reals of scratch needed at max_batch */
    ConvKind conv_kind;
    int K, stride, pad;        /* conv / pool geometry */
    int pad_before;            /* option-A shortcut */
    real gamma_init;           /* BN gamma initial value */
    double init_std;           /* conv/linear: N(0, init_std) instead of PyTorch's default (0 = default) */
    int is_bn1d;               /* BN after flatten: reported as BatchNorm1d */
    int bias;                  /* conv: has a bias (model_conv_bias) */
    int frozen;                /* model_freeze: no parameter gradient, eval mode for BN and binary conv */
};

#define MODEL_MAX_OUTPUTS 8

struct Model {
    char arch[32];
    int in_C, in_H, in_W, num_classes;
    ConvKind binary_kind;      /* what CONV_BINARY layers run (model.conv) */
    BinaryConvOptions bconv;   /* options of every binary conv (config binary.*) */
    /* train.memory (set before model_alloc: it changes the plan): 0 = fast
     * (every output backward reads is kept in acts), 1 = lean (outputs a layer
     * can recompute exactly from what it saved are not kept; backward
     * recomputes them). Bitwise the same results either way. */
    int memory_lean;
    /* model.fp32_conv: the fp32 conv's backend, FP32_CONV_NATIVE (ours,
     * bitwise independent of the thread count) or FP32_CONV_ONEDNN (a
     * library's, recorded in the run) */
    int fp32_conv;
    /* precision of the current forward/backward: set by the training loop
     * before each step and before evaluation (precision is data, not state) */
    double bits, grad_bits;
    long step;                 /* iteration index: keys the stochastic-rounding noise */
    uint64_t seed;             /* the run's seed (noise streams) */
    /* how the batch's float reductions are split and where the other shards
     * are (core/shard.h): model_init sets one shard, one process; the loop
     * sets train.shards and the run's ranks. batch is this rank's rows. */
    ShardPlan shard;
    Layer *layers;
    int n_layers, cap;
    int n_outputs;             /* marked outputs (model_alloc marks the last layer if none) */
    int outputs[MODEL_MAX_OUTPUTS]; /* their layer indices */
    unsigned char out_grad_ready[MODEL_MAX_OUTPUTS]; /* output k's gradient was zeroed since the last run */
    int input_grad;            /* model_input_grad: the backward also computes the input's gradient */
    int max_batch, batch;      /* allocation size; size of the current batch */
    int run_train;             /* the train flag of the last run (a backward after an eval run is eval's) */
    size_t n_params, n_buffers, n_acts, n_dacts, n_saved, n_scratch; /* in reals, at max_batch */
    size_t n_trainable;        /* params [0, n_trainable) are trainable, the frozen ones follow */
    size_t n_noise;            /* reals of the largest binary-conv output at max_batch */
    Arena a_params, a_grads, a_opt, a_buffers, a_acts, a_dacts, a_saved, a_scratch, a_noise;
    Arena a_shard;             /* the shard plan's workspace (model_set_shards) */
    real *params, *grads, *opt_m, *opt_v, *buffers, *acts, *dacts, *saved, *scratch;
    real *noise;               /* U(-0.5, 0.5) draws for the error quantizer of one binary conv */
    /* optional per-layer timing (bench/train_step): when non-NULL, model_run
     * and model_backward_outputs add each layer's wall seconds to prof_fwd[i] / prof_bwd[i]
     * ([n_layers] each, owned by the caller). NULL (the default) costs nothing. */
    double *prof_fwd, *prof_bwd;
    /* set by model_backward_outputs around a layer's backward: 1 when that layer is the
     * first writer of its (single) input's gradient and the buffer was not
     * zeroed, so the layer stores instead of accumulating (kinds with bwd_can_store) */
    int bwd_store_input;
    /* the first error of a builder ("" = none), kept: once set, every builder
     * returns -1 and adds nothing, and model_alloc refuses, so a graph is
     * written as a plain sequence of calls checked once at the end
     * (model_build_check, or model_build's err) */
    char err[200];
    /* the error of the last model_run ("" = none) */
    char run_err[200];
};

void model_init(Model *m, const char *arch, int C, int H, int W, int num_classes);
void model_free(Model *m);

/* builders: return the new layer's index, or -1 when this or an earlier
 * builder failed (m->err names the layer and what is wrong: input shapes that
 * differ, an output smaller than 1x1, an input index that is not a layer, out
 * of memory). Indices of -1 passed on are refused without a second message. */
int model_input(Model *m);
int model_conv(Model *m, int x, int out_channels, int k, int stride, int pad, ConvKind kind, const char *name);
/* an fp32 conv with a bias, PyTorch's default init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for it */
int model_conv_bias(Model *m, int x, int out_channels, int k, int stride, int pad, const char *name);
/* BiDet's binary conv with a bias (core/detect/bidet_conv.h, kind "bidet_conv":
 * sign input padded with -1, Wb = mean|W_o| sign(W)); init N(0, init_std) and a
 * zero bias when the layer's init_std is set, else nn.Conv2d's default */
int model_bidet_conv(Model *m, int x, int out_channels, int k, int stride, int pad, const char *name);
int model_bn(Model *m, int x, real gamma_init, const char *name);
int model_hardtanh(Model *m, int x, const char *name);
int model_relu(Model *m, int x, const char *name);
int model_maxpool(Model *m, int x, int k, int stride, int pad, const char *name);
int model_avgpool(Model *m, int x, int k, int stride, int pad, const char *name);
int model_global_avgpool(Model *m, int x, const char *name);
int model_linear(Model *m, int x, int out_features, const char *name);
int model_add(Model *m, int a, int b, const char *name);
int model_shortcut_a(Model *m, int x, int stride, int out_channels, const char *name);
/* 0 when every builder so far succeeded, else -1 with "building <arch>: <m->err>" in err */
int model_build_check(const Model *m, char *err, size_t errlen);

/* Before model_alloc, like the builders (-1 and m->err on a bad index or
 * after model_alloc): mark layer as an output, returning its output index
 * k = 0, 1, ... (the same k if marked again); its activation is kept whole.
 * Freeze a layer (0). Ask for the input's gradient (on = 1) or not (0, the
 * default: the first layer then skips it, e.g. the first conv's col2im). */
int model_mark_output(Model *m, int layer);
int model_freeze(Model *m, int layer);
int model_input_grad(Model *m, int on);

/* After model_alloc: split the batch's float reductions into p's shards
 * (core/shard.h; the loop calls it with train.shards and the run's ranks)
 * and allocate the partials' workspace for this model into m->shard.
 * model_alloc's batch is this rank's rows. 0, or -1 with a message. */
int model_set_shards(Model *m, const ShardPlan *p, char *err, size_t errlen);

/* Size and allocate the arenas for batches up to max_batch. 0 on success;
 * -1 when out of memory or the graph has a building error (m->err). */
int model_alloc(Model *m, int max_batch);
/* model_alloc's planning alone (every layer's offsets and the arena sizes
 * n_acts ... n_noise), allocating nothing: for a twin model whose memory is
 * compared (model_train_bytes) without being resident. 0, or -1 as model_alloc. */
int model_layout(Model *m, int max_batch);
/* bytes of the training arenas after model_layout/model_alloc: everything but
 * params, grads, optimizer state and buffers (acts, dacts, saved, scratch,
 * noise, and any arena train.memory adds). This is what the issue-17 memory
 * target compares between the CycleBNN net and its fp32 twin. */
size_t model_train_bytes(const Model *m);
/* model_alloc planned for inputs up to maxH x maxW (every layer's tensors at
 * that size) instead of the build size, which stays the current one. 0, or -1
 * with a message in err. */
int model_plan(Model *m, int max_batch, int maxH, int maxW, char *err, size_t errlen);
/* After model_alloc: the input size of the next runs. Every layer's H, W
 * follows its kind's shape rule. 0, or -1 with a message naming the first
 * layer whose window does not fit, whose inputs differ, whose parameters were
 * sized for another input, or whose output, saved, scratch or noise exceeds
 * the plan; the model is then unchanged. */
int model_set_input_size(Model *m, int H, int W, char *err, size_t errlen);
/* PyTorch's initialisations (kaiming_normal fan_in for every conv, binary ones
 * included; binary conv alpha ~ U[0,1) (torch.rand); default Linear; BN gamma =
 * gamma_init, beta 0, running stats 0/1; activation-quantizer running range 0),
 * each layer from its own stream rng_stream(seed, RNG_INIT, layer index, 0). */
void model_init_params(Model *m, uint64_t seed);

/* Run the graph on input [N, C, H, W] (N <= max_batch rows): every layer's
 * forward, no loss. 0, or -1 with the reason in m->run_err (N outside
 * [0, max_batch], a layer that cannot run). */
int model_run(Model *m, const real *input, int N, int train);
/* output k of the last run: [batch, C*H*W] of its layer (NULL: no such k) */
const real *model_output(const Model *m, int k);
/* output k's gradient for the current batch, [batch, C*H*W]: zeroed on the
 * first call after a run, so losses accumulate into it (NULL: no such k) */
real *model_output_grad(Model *m, int k);
/* zero the parameter gradients, then backprop from every output's gradient
 * (an output not asked for since the run: zero). Frozen parameters get none. */
void model_backward_outputs(Model *m);
/* the same with dout[k] added into output k's gradient (NULL entries: none) */
void model_backward_from(Model *m, const real *const *dout);
/* after a backward with model_input_grad on: the loss's gradient w.r.t. the
 * input, [batch, C, H, W]; NULL when off */
const real *model_input_grad_buf(const Model *m);

/* Build a named architecture (core/models/): "cifar_resnet18", "cifar_resnet20",
 * "cifar_resnet8", "imagenet_resnet18", "vgg_small". Returns 0, or -1 with a message. */
int model_build(Model *m, const char *arch, ConvKind binary_kind, int C, int H, int W, int num_classes,
                char *err, size_t errlen);
int model_arch_known(const char *arch);

/* the kind named `name` (LayerKind.name, as the cost/ rows of a results file
 * store it), or NULL when no kind has that name */
const LayerKind *layer_kind_find(const char *name);

/* forward MACs per sample, total and split by conv kind */
long model_macs(const Model *m, long *fp32_macs, long *binary_macs);
/* One row of the larq-style model summary, at inference precision: a binary
 * conv's weights and input are 1-bit; its alpha, and every other layer's
 * parameters, are 32-bit. */
typedef struct {
    char name[48], kind[24];
    int input_bits;               /* 1 for a binary conv's input, 32 otherwise */
    char output_shape[32];        /* CxHxW per sample */
    long params_1bit, params_32bit;
    double memory_bytes;          /* parameters at inference: 1/8 byte or 4 bytes each */
    long macs_1bit, macs_32bit;   /* forward MACs per sample */
} SummaryRow;

/* rows[m->n_layers]; returns the number of rows (= n_layers) */
int model_summary_rows(const Model *m, SummaryRow *rows);
/* print the table with totals and the compression against an all-fp32 model */
void model_summary(const Model *m, FILE *f);

#endif
