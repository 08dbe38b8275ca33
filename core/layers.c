/* Layer kinds: each wires one op of core/ops.h to the model's arenas.
 * forward reads the outputs of its inputs and overwrites its own output;
 * backward accumulates into its inputs' dacts (NULL when the input is the image). */
#include "layers.h"

#include <string.h>

#include "quant.h"

static const real *in_act(const Model *m, const Layer *l, int which) {
    return layer_out(m, &m->layers[which ? l->in1 : l->in0]);
}
/* gradient buffer of an input, or NULL when the input is the image (layer 0):
 * nothing upstream needs it, and skipping it saves the first conv's col2im */
static real *in_dact(const Model *m, const Layer *l, int which) {
    int idx = which ? l->in1 : l->in0;
    return idx == 0 ? NULL : layer_dout(m, &m->layers[idx]);
}

/* ---------------------------------------------------------------- input */
static void input_forward(Layer *l, Model *m, int train) {}
static void input_backward(Layer *l, Model *m) {}
static long no_macs(const Layer *l) { return 0; }
const LayerKind LAYER_INPUT = {"input", input_forward, input_backward, no_macs, 0, 0, 0};

/* ----------------------------------------------------------------- conv */
static ConvDims layer_conv_dims(const Layer *l, int N) {
    return conv_dims(N, l->inC, l->inH, l->inW, l->C, l->K, l->stride, l->pad);
}
static void conv_forward(Layer *l, Model *m, int train) {
    ConvDims d = layer_conv_dims(l, m->batch);
    conv2d_forward(layer_out(m, l), in_act(m, l, 0), m->params + l->w_off, &d, m->scratch);
}
static void conv_backward(Layer *l, Model *m) {
    ConvDims d = layer_conv_dims(l, m->batch);
    conv2d_backward(in_dact(m, l, 0), m->grads + l->w_off, layer_dout(m, l), in_act(m, l, 0),
                    m->params + l->w_off, &d, m->scratch);
}
static long conv_layer_macs(const Layer *l) {
    ConvDims d = layer_conv_dims(l, 1);
    return conv_macs(&d);
}
const LayerKind LAYER_CONV = {"conv", conv_forward, conv_backward, conv_layer_macs, 1, 0, 0};

/* ---------------------------------------------------------- binary conv */
/* core/binary_conv.h at the model's precision of this step (m->bits,
 * m->grad_bits). The error quantizer's noise comes from the run's
 * stochastic-rounding stream keyed by (step, layer index). */
static void bconv_forward(Layer *l, Model *m, int train) {
    ConvDims d = layer_conv_dims(l, m->batch);
    binary_conv_forward(layer_out(m, l), m->saved + l->save_off, m->buffers + l->buf_off, in_act(m, l, 0),
                        m->params + l->w_off, m->params + l->b_off, &d, m->bits, train, &m->bconv, m->scratch);
}
static void bconv_backward(Layer *l, Model *m) {
    ConvDims d = layer_conv_dims(l, m->batch);
    const real *noise = NULL;
    if (m->bconv.grad_quant && m->bconv.grad_stochastic) {
        size_t n = (size_t)m->batch * layer_numel(l);
        quant_fill_noise(m->noise, n, m->seed, (uint64_t)m->step, (uint64_t)(l - m->layers));
        noise = m->noise;
    }
    binary_conv_backward(in_dact(m, l, 0), m->grads + l->w_off, m->grads + l->b_off, layer_dout(m, l),
                         in_act(m, l, 0), m->params + l->w_off, m->params + l->b_off, m->saved + l->save_off, &d,
                         m->bits, m->grad_bits, &m->bconv, noise, m->scratch);
}
const LayerKind LAYER_BCONV = {"binary_conv", bconv_forward, bconv_backward, conv_layer_macs, 1, 0, 0};

/* ------------------------------------------------------------ batchnorm */
static BNDims layer_bn_dims(const Layer *l, int N) {
    BNDims d = {N, l->C, l->H * l->W, (real)1e-5, (real)0.1};
    return d;
}
static void bn_forward(Layer *l, Model *m, int train) {
    BNDims d = layer_bn_dims(l, m->batch);
    real *running_mean = m->buffers + l->buf_off, *running_var = running_mean + l->C;
    if (train) {
        real *mean = m->saved + l->save_off, *rstd = mean + l->C;
        batchnorm_forward_train(layer_out(m, l), mean, rstd, running_mean, running_var, in_act(m, l, 0),
                                m->params + l->w_off, m->params + l->b_off, &d);
    } else {
        batchnorm_forward_eval(layer_out(m, l), in_act(m, l, 0), m->params + l->w_off, m->params + l->b_off,
                               running_mean, running_var, &d);
    }
}
static void bn_backward(Layer *l, Model *m) {
    BNDims d = layer_bn_dims(l, m->batch);
    const real *mean = m->saved + l->save_off, *rstd = mean + l->C;
    (m->bwd_store_input ? batchnorm_backward_store : batchnorm_backward)(
        in_dact(m, l, 0), m->grads + l->w_off, m->grads + l->b_off, layer_dout(m, l), in_act(m, l, 0), mean, rstd,
        m->params + l->w_off, &d);
}
static long bn_macs(const Layer *l) { return (long)l->C * l->H * l->W; }
const LayerKind LAYER_BN = {"bn", bn_forward, bn_backward, bn_macs, 1, 0, 1};

/* ---------------------------------------------------------- activations */
static void hardtanh_fwd(Layer *l, Model *m, int train) {
    hardtanh_forward(layer_out(m, l), in_act(m, l, 0), (size_t)m->batch * layer_numel(l));
}
/* The gradient mask -1 < x < 1 is read off the output: y = clamp(x, -1, 1) is
 * strictly inside (-1, 1) exactly when x is (and NaN in both), so backward
 * needs the output, which the next layer keeps anyway, not the input. */
static void hardtanh_bwd(Layer *l, Model *m) {
    real *dinp = in_dact(m, l, 0);
    if (dinp)
        (m->bwd_store_input ? hardtanh_backward_store : hardtanh_backward)(dinp, layer_dout(m, l), layer_out(m, l),
                                                                          (size_t)m->batch * layer_numel(l));
}
const LayerKind LAYER_HARDTANH = {"hardtanh", hardtanh_fwd, hardtanh_bwd, no_macs, 0, 1, 1};

static void relu_fwd(Layer *l, Model *m, int train) {
    relu_forward(layer_out(m, l), in_act(m, l, 0), (size_t)m->batch * layer_numel(l));
}
static void relu_bwd(Layer *l, Model *m) {
    real *dinp = in_dact(m, l, 0);
    /* x > 0 exactly when relu(x) = max(x, 0) > 0 (NaN: neither): read the output, as hardtanh does */
    if (dinp) relu_backward(dinp, layer_dout(m, l), layer_out(m, l), (size_t)m->batch * layer_numel(l));
}
const LayerKind LAYER_RELU = {"relu", relu_fwd, relu_bwd, no_macs, 0, 1, 0};

/* ---------------------------------------------------------------- pools */
static PoolDims layer_pool_dims(const Layer *l, int N) {
    return pool_dims(N, l->inC, l->inH, l->inW, l->K, l->stride, l->pad);
}
static void maxpool_fwd(Layer *l, Model *m, int train) {
    PoolDims d = layer_pool_dims(l, m->batch);
    maxpool_forward(layer_out(m, l), (int32_t *)(m->saved + l->save_off), in_act(m, l, 0), &d);
}
static void maxpool_bwd(Layer *l, Model *m) {
    PoolDims d = layer_pool_dims(l, m->batch);
    real *dinp = in_dact(m, l, 0);
    if (dinp) maxpool_backward(dinp, layer_dout(m, l), (const int32_t *)(m->saved + l->save_off), &d);
}
static long pool_macs(const Layer *l) { return (long)l->C * l->H * l->W * l->K * l->K; }
const LayerKind LAYER_MAXPOOL = {"maxpool", maxpool_fwd, maxpool_bwd, no_macs, 0, 0, 0};

static void avgpool_fwd(Layer *l, Model *m, int train) {
    PoolDims d = layer_pool_dims(l, m->batch);
    avgpool_forward(layer_out(m, l), in_act(m, l, 0), &d);
}
static void avgpool_bwd(Layer *l, Model *m) {
    PoolDims d = layer_pool_dims(l, m->batch);
    real *dinp = in_dact(m, l, 0);
    if (dinp) avgpool_backward(dinp, layer_dout(m, l), &d);
}
const LayerKind LAYER_AVGPOOL = {"avgpool", avgpool_fwd, avgpool_bwd, pool_macs, 0, 0, 0};

static void gap_fwd(Layer *l, Model *m, int train) {
    global_avgpool_forward(layer_out(m, l), in_act(m, l, 0), m->batch, l->inC, l->inH * l->inW);
}
static void gap_bwd(Layer *l, Model *m) {
    real *dinp = in_dact(m, l, 0);
    if (dinp) global_avgpool_backward(dinp, layer_dout(m, l), m->batch, l->inC, l->inH * l->inW);
}
static long gap_macs(const Layer *l) { return (long)l->inC * l->inH * l->inW; }
const LayerKind LAYER_GAP = {"avgpool_global", gap_fwd, gap_bwd, gap_macs, 0, 0, 0};

/* --------------------------------------------------------------- linear */
static void linear_fwd(Layer *l, Model *m, int train) {
    int IN = l->inC * l->inH * l->inW;
    linear_forward(layer_out(m, l), in_act(m, l, 0), m->params + l->w_off, m->params + l->b_off, m->batch, IN, l->C);
}
static void linear_bwd(Layer *l, Model *m) {
    int IN = l->inC * l->inH * l->inW;
    linear_backward(in_dact(m, l, 0), m->grads + l->w_off, m->grads + l->b_off, layer_dout(m, l), in_act(m, l, 0),
                    m->params + l->w_off, m->batch, IN, l->C);
}
static long linear_macs(const Layer *l) { return (long)l->inC * l->inH * l->inW * l->C; }
const LayerKind LAYER_LINEAR = {"linear", linear_fwd, linear_bwd, linear_macs, 1, 0, 0};

/* ------------------------------------------------------------- residual */
static void add_fwd(Layer *l, Model *m, int train) {
    add_forward(layer_out(m, l), in_act(m, l, 0), in_act(m, l, 1), (size_t)m->batch * layer_numel(l));
}
static void add_bwd(Layer *l, Model *m) {
    add_backward(in_dact(m, l, 0), in_dact(m, l, 1), layer_dout(m, l), (size_t)m->batch * layer_numel(l));
}
const LayerKind LAYER_ADD = {"add", add_fwd, add_bwd, no_macs, 0, 0, 0};

static void shortcut_fwd(Layer *l, Model *m, int train) {
    shortcut_a_forward(layer_out(m, l), in_act(m, l, 0), m->batch, l->inC, l->inH, l->inW, l->stride, l->C,
                       l->pad_before);
}
static void shortcut_bwd(Layer *l, Model *m) {
    real *dinp = in_dact(m, l, 0);
    if (dinp)
        shortcut_a_backward(dinp, layer_dout(m, l), m->batch, l->inC, l->inH, l->inW, l->stride, l->C,
                            l->pad_before);
}
const LayerKind LAYER_SHORTCUT_A = {"shortcut_a", shortcut_fwd, shortcut_bwd, no_macs, 0, 0, 0};
