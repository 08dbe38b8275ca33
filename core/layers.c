/* Layer kinds: each wires one op of core/ops.h to the model's arenas.
 * forward reads the outputs of its inputs and overwrites its own output;
 * backward accumulates into its inputs' dacts (NULL when the input is the
 * image and its gradient was not asked for) and into its parameters'
 * gradients (NULL when the layer is frozen). */
#include "layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bidet_conv.h"
#include "quant.h"
#include "rowsum.h"
#include "shard.h"

static const real *in_act(const Model *m, const Layer *l, int which) {
    return layer_out(m, &m->layers[which ? l->in1 : l->in0]);
}
/* gradient buffer of an input, or NULL when the input is the image (layer 0)
 * and nobody asked for its gradient (model_input_grad): skipping it saves the
 * first conv's col2im */
static real *in_dact(const Model *m, const Layer *l, int which) {
    int idx = which ? l->in1 : l->in0;
    return idx == 0 && !m->input_grad ? NULL : layer_dout(m, &m->layers[idx]);
}
/* the gradient of a parameter tensor at off, or NULL for a frozen layer */
static real *pgrad(const Model *m, const Layer *l, size_t off) { return l->frozen ? NULL : m->grads + off; }
/* a frozen layer with running statistics runs them in eval mode */
static int train_mode(const Layer *l, int train) { return train && !l->frozen; }
/* train.memory lean: kinds whose forward is a pure function of their inputs
 * (and writes its saved block, if any, with the same values again) rebuild
 * their output by running it again */
static void forward_again(Layer *l, Model *m) { (void)l->kind->forward(l, m, m->run_train); }

/* the output side of a k-window with stride and pad over n, or -1 with the reason */
static int window_side(int n, int k, int stride, int pad, char *why, size_t whylen) {
    if (k < 1 || stride < 1 || pad < 0) {
        snprintf(why, whylen, "bad window (kernel %d, stride %d, pad %d)", k, stride, pad);
        return -1;
    }
    if (n + 2 * pad < k) {
        snprintf(why, whylen, "kernel %d with pad %d does not fit the input side %d", k, pad, n);
        return -1;
    }
    return (n + 2 * pad - k) / stride + 1;
}
/* the shape rule of convs and pools */
static int window_shape(Layer *l, const Model *m, char *why, size_t whylen) {
    (void)m;
    const int H = window_side(l->inH, l->K, l->stride, l->pad, why, whylen);
    if (H < 1) return -1;
    const int W = window_side(l->inW, l->K, l->stride, l->pad, why, whylen);
    if (W < 1) return -1;
    l->H = H;
    l->W = W;
    return 0;
}
/* a vector per sample: global pools, linear */
static int vector_shape(Layer *l, const Model *m, char *why, size_t whylen) {
    (void)m, (void)why, (void)whylen;
    l->H = l->W = 1;
    return 0;
}

/* ---------------------------------------------------------------- input */
static int input_shape(Layer *l, const Model *m, char *why, size_t whylen) {
    (void)why, (void)whylen;
    l->H = m->in_H;
    l->W = m->in_W;
    return 0;
}
static int input_forward(Layer *l, Model *m, int train) { return 0; }
static void input_backward(Layer *l, Model *m) {}
static long no_macs(const Layer *l) { return 0; }
const LayerKind LAYER_INPUT = {.name = "input", .forward = input_forward, .backward = input_backward, .macs = no_macs,
                               .out_shape = input_shape};

/* ----------------------------------------------------------------- conv */
/* the model's shard plan rides in the dims (NULL when it is the trivial one,
 * so the kernels see exactly what they always saw) */
static const ShardPlan *layer_plan(const Model *m) { return shard_plan_trivial(&m->shard) ? NULL : &m->shard; }
static ConvDims layer_conv_dims_m(const Layer *l, const Model *m, int N) {
    ConvDims d = conv_dims(N, l->inC, l->inH, l->inW, l->C, l->K, l->stride, l->pad);
    d.sp = layer_plan(m);
    d.backend = m->fp32_conv;
    return d;
}
static ConvDims layer_conv_dims(const Layer *l, int N) {
    return conv_dims(N, l->inC, l->inH, l->inW, l->C, l->K, l->stride, l->pad);
}
static int conv_forward(Layer *l, Model *m, int train) {
    ConvDims d = layer_conv_dims_m(l, m, m->batch);
    conv2d_forward(layer_out(m, l), in_act(m, l, 0), m->params + l->w_off, &d, m->scratch);
    if (l->bias) conv2d_bias_forward(layer_out(m, l), m->params + l->b_off, m->batch, l->C, l->H * l->W);
    return 0;
}
static void conv_backward(Layer *l, Model *m) {
    ConvDims d = layer_conv_dims_m(l, m, m->batch);
    real *dbias = l->bias ? pgrad(m, l, l->b_off) : NULL;
    if (dbias) conv2d_bias_backward_sp(dbias, layer_dout(m, l), m->batch, l->C, l->H * l->W, d.sp);
    conv2d_backward(in_dact(m, l, 0), pgrad(m, l, l->w_off), layer_dout(m, l), in_act(m, l, 0),
                    m->params + l->w_off, &d, m->scratch);
}
static long conv_layer_macs(const Layer *l) {
    ConvDims d = layer_conv_dims(l, 1);
    return conv_macs(&d);
}
static void conv_params(Layer *l) {
    l->w_n = (size_t)l->C * l->inC * l->K * l->K;
    if (l->bias) l->b_n = (size_t)l->C;
}
/* kaiming_normal_(mode='fan_in', nonlinearity='leaky_relu', a=0): std = sqrt(2 / fan_in) */
static void kaiming_normal(real *w, const Layer *l, Rng *r) {
    double std = sqrt(2.0 / ((double)l->inC * l->K * l->K));
    for (size_t j = 0; j < l->w_n; j++) w[j] = (real)(std * rng_normal(r));
}
/* the weights; then a bias, if any, from the same stream: nn.Conv2d's default
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
static void conv_init(Layer *l, Model *m, Rng *r) {
    real *w = m->params + l->w_off;
    if (l->init_std > 0) /* the builder's N(0, init_std) (vgg_small) */
        for (size_t j = 0; j < l->w_n; j++) w[j] = (real)(l->init_std * rng_normal(r));
    else
        kaiming_normal(w, l, r);
    if (!l->bias) return;
    if (l->init_std > 0) { /* the builder's N(0, init_std) comes with a zero bias (the detector's heads) */
        for (size_t j = 0; j < l->b_n; j++) m->params[l->b_off + j] = 0;
        return;
    }
    const double bound = 1.0 / sqrt((double)l->inC * l->K * l->K);
    real *b = m->params + l->b_off;
    for (size_t j = 0; j < l->b_n; j++) b[j] = (real)(bound * (2.0 * rng_uniform(r) - 1.0));
}
static size_t conv_scratch(const Layer *l, const Model *m, int max_batch) {
    (void)m;
    ConvDims d = layer_conv_dims(l, max_batch);
    return conv2d_scratch_size(&d);
}
/* lean: only the stem (a conv of the input images, layer 0) is rebuilt: a
 * few MACs per output value (3 input channels), where holding it costs a
 * whole activation; any other fp32 conv would cost a forward conv again */
static int conv_recompute_if(const Layer *l) { return l->in0 == 0; }
/* a conv the paper binarizes that runs in fp32 here (model.conv = fp32) says so */
static const char *conv_label(const Layer *l) { return l->conv_kind == CONV_BINARY ? "conv(fp32 run)" : "conv"; }
const LayerKind LAYER_CONV = {.name = "conv", .forward = conv_forward, .backward = conv_backward,
                              .macs = conv_layer_macs, .bwd_reads_inputs = 1, .has_weights = 1,
                              .out_shape = window_shape, .params = conv_params, .init = conv_init,
                              .scratch_n = conv_scratch, .label = conv_label, .recompute = forward_again,
                              .recompute_reads_inputs = 1, .recompute_if = conv_recompute_if};

/* ---------------------------------------------------------- binary conv */
/* core/binary_conv.h at the model's precision of this step (m->bits,
 * m->grad_bits). The error quantizer's noise comes from the run's
 * stochastic-rounding stream keyed by (step, layer index), drawn where it
 * is used (no noise arena: noise_n is unset). Its saved block is
 * all typed bytes (reals, int8 Bw, codes, int16 Y). */
/* the model's options, with lean's level for this layer: 2 (no Y saved)
 * where the input is kept, so that the conv can run again from it */
static BinaryConvOptions bconv_opt(const Layer *l, const Model *m) {
    BinaryConvOptions o = m->bconv;
    if (o.lean_saved) o.lean_saved = 1 + (l->rc_from_input != 0);
    return o;
}
static int bconv_forward(Layer *l, Model *m, int train) {
    const BinaryConvOptions o = bconv_opt(l, m);
    ConvDims d = layer_conv_dims_m(l, m, m->batch);
    if (binary_conv_forward(layer_out(m, l), layer_saved_bytes(m, l), m->buffers + l->buf_off, in_act(m, l, 0),
                            m->params + l->w_off, m->params + l->b_off, &d, m->bits, train_mode(l, train), &o,
                            m->scratch))
        return layer_run_error(m, l, "binary conv at %g bits: its saved space holds 1..8-bit activation codes "
                               "(binary.save_act_codes)", m->bits);
    return 0;
}
static void bconv_backward(Layer *l, Model *m) {
    const BinaryConvOptions o = bconv_opt(l, m);
    ConvDims d = layer_conv_dims_m(l, m, m->batch);
    /* the key of this rank's rows of the whole batch's draws (core/shard.h);
     * the quantizer draws them a block at a time where it uses them */
    const QuantNoise key = {.seed = m->seed, .key1 = (uint64_t)m->step, .key2 = (uint64_t)(l - m->layers),
                            .off = (size_t)shard_row0(&m->shard, m->batch) * layer_numel(l)};
    const int noisy = m->bconv.grad_quant && m->bconv.grad_stochastic;
    binary_conv_backward_nz(in_dact(m, l, 0), pgrad(m, l, l->w_off), pgrad(m, l, l->b_off), layer_dout(m, l),
                            in_act(m, l, 0), m->params + l->w_off, m->params + l->b_off, layer_saved_bytes(m, l), &d,
                            m->bits, m->grad_bits, &o, noisy ? &key : NULL, m->scratch);
}
static void bconv_params(Layer *l) {
    conv_params(l);
    l->b_n = (size_t)l->C; /* alpha */
    l->buf_n = 2;          /* running_zp, running_range of the activation quantizer */
}
/* always kaiming (init_std is a builder's choice for fp32 convs only); then
 * alpha ~ U[0, 1) (torch.rand), drawn after the weights from the same stream;
 * the quantizer's running statistics start at 0 */
static void bconv_init(Layer *l, Model *m, Rng *r) {
    kaiming_normal(m->params + l->w_off, l, r);
    real *alpha = m->params + l->b_off;
    for (size_t j = 0; j < l->b_n; j++) alpha[j] = (real)rng_uniform(r);
    for (size_t j = 0; j < l->buf_n; j++) m->buffers[l->buf_off + j] = 0;
}
static size_t bconv_saved(const Layer *l, const Model *m, int max_batch) {
    ConvDims d = layer_conv_dims(l, max_batch);
    const BinaryConvOptions o = bconv_opt(l, m);
    return binary_conv_saved_bytes(&d, &o);
}
static size_t bconv_scratch(const Layer *l, const Model *m, int max_batch) {
    ConvDims d = layer_conv_dims(l, max_batch);
    const BinaryConvOptions o = bconv_opt(l, m);
    return binary_conv_scratch_size_opt(&d, &o);
}
/* lean: out = Y * alpha, the forward's product, from the saved Y or, where
 * the input is kept (lean_saved 2: no Y saved), the 1-bit conv again */
static void bconv_recompute(Layer *l, Model *m) {
    const BinaryConvOptions o = bconv_opt(l, m);
    ConvDims d = layer_conv_dims_m(l, m, m->batch);
    binary_conv_output_rebuild(layer_out(m, l), layer_saved_bytes(m, l), in_act(m, l, 0), m->params + l->w_off,
                               m->params + l->b_off, &d, m->bits, &o, m->scratch);
}
const LayerKind LAYER_BCONV = {.name = "binary_conv", .forward = bconv_forward, .backward = bconv_backward,
                               .macs = conv_layer_macs, .bwd_reads_inputs = 1, .has_weights = 1, .binary = 1,
                               .out_shape = window_shape, .params = bconv_params, .init = bconv_init,
                               .saved_bytes = bconv_saved, .scratch_n = bconv_scratch,
                               .recompute = bconv_recompute, .recompute_from_kept_input = 1};

/* ------------------------------------------------------ BiDet binary conv */
/* core/detect/bidet_conv.h: the RPN conv of the BiDet detector. Not marked
 * `binary`: that flag means the CycleBNN conv (its MACs weighted by the
 * cyclic bits, its error quantized, its weights run through CycleBNN's
 * weight path by the landscape), none of which this conv has; so the cost
 * model and the summary count it as a 32-bit conv. It saves nothing (its
 * backward reads its input and recomputes the sign map and Wb). */
static int bidet_forward(Layer *l, Model *m, int train) {
    (void)train;
    ConvDims d = layer_conv_dims_m(l, m, m->batch);
    bidet_conv_forward(layer_out(m, l), in_act(m, l, 0), m->params + l->w_off, m->params + l->b_off, &d,
                       m->scratch);
    return 0;
}
static void bidet_backward(Layer *l, Model *m) {
    ConvDims d = layer_conv_dims_m(l, m, m->batch);
    bidet_conv_backward(in_dact(m, l, 0), pgrad(m, l, l->w_off), pgrad(m, l, l->b_off), layer_dout(m, l),
                        in_act(m, l, 0), m->params + l->w_off, &d, m->scratch);
}
static void bidet_params(Layer *l) {
    l->w_n = (size_t)l->C * l->inC * l->K * l->K;
    l->b_n = (size_t)l->C;
}
/* the builder's N(0, init_std) and a zero bias (the detector's normal_init);
 * otherwise nn.Conv2d's own reset_parameters: kaiming_uniform(a = sqrt(5)),
 * i.e. weights and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), weights first */
static void bidet_init(Layer *l, Model *m, Rng *r) {
    real *w = m->params + l->w_off, *b = m->params + l->b_off;
    if (l->init_std > 0) {
        for (size_t j = 0; j < l->w_n; j++) w[j] = (real)(l->init_std * rng_normal(r));
        for (size_t j = 0; j < l->b_n; j++) b[j] = 0;
        return;
    }
    const double bound = 1.0 / sqrt((double)l->inC * l->K * l->K);
    for (size_t j = 0; j < l->w_n; j++) w[j] = (real)(bound * (2.0 * rng_uniform(r) - 1.0));
    for (size_t j = 0; j < l->b_n; j++) b[j] = (real)(bound * (2.0 * rng_uniform(r) - 1.0));
}
static size_t bidet_scratch(const Layer *l, const Model *m, int max_batch) {
    (void)m;
    ConvDims d = layer_conv_dims(l, max_batch);
    return bidet_conv_scratch_size(&d);
}
const LayerKind LAYER_BIDET_CONV = {.name = "bidet_conv", .forward = bidet_forward, .backward = bidet_backward,
                                    .macs = conv_layer_macs, .bwd_reads_inputs = 1, .has_weights = 1,
                                    .out_shape = window_shape, .params = bidet_params, .init = bidet_init,
                                    .scratch_n = bidet_scratch};

/* ------------------------------------------------------------ batchnorm */
static BNDims layer_bn_dims(const Layer *l, const Model *m, int N) {
    BNDims d = {N, l->C, l->H * l->W, (real)1e-5, (real)0.1, layer_plan(m)};
    return d;
}
static int bn_forward(Layer *l, Model *m, int train) {
    BNDims d = layer_bn_dims(l, m, m->batch);
    real *running_mean = m->buffers + l->buf_off, *running_var = running_mean + l->C;
    if (train_mode(l, train)) {
        real *mean = layer_saved(m, l), *rstd = mean + l->C;
        batchnorm_forward_train(layer_out(m, l), mean, rstd, running_mean, running_var, in_act(m, l, 0),
                                m->params + l->w_off, m->params + l->b_off, &d);
    } else {
        batchnorm_forward_eval(layer_out(m, l), in_act(m, l, 0), m->params + l->w_off, m->params + l->b_off,
                               running_mean, running_var, &d);
    }
    return 0;
}
/* the backward of the mode the forward ran in: batch statistics (training),
 * or the running ones (frozen, or after an eval run) */
static void bn_backward(Layer *l, Model *m) {
    BNDims d = layer_bn_dims(l, m, m->batch);
    if (!train_mode(l, m->run_train)) {
        const real *running_mean = m->buffers + l->buf_off, *running_var = running_mean + l->C;
        (m->bwd_store_input ? batchnorm_backward_eval_store : batchnorm_backward_eval)(
            in_dact(m, l, 0), pgrad(m, l, l->w_off), pgrad(m, l, l->b_off), layer_dout(m, l), in_act(m, l, 0),
            m->params + l->w_off, running_mean, running_var, &d);
        return;
    }
    const real *mean = layer_saved(m, l), *rstd = mean + l->C;
    (m->bwd_store_input ? batchnorm_backward_store : batchnorm_backward)(
        in_dact(m, l, 0), m->grads + l->w_off, m->grads + l->b_off, layer_dout(m, l), in_act(m, l, 0), mean, rstd,
        m->params + l->w_off, &d);
}
/* lean: BN's output again. Eval mode (frozen, or after an eval run): the
 * same call as the forward's. Training: the forward normalised with its
 * statistics in double (mu, 1/sqrt(var + eps)) and saved them rounded to
 * real, so the apply cannot start from the saved ones: the statistics are
 * summed again, in batchnorm_forward_train's order (core/ops/batchnorm.c,
 * ROWSUM8 per row, rows in sample order; with a shard plan per shard and the
 * shard tree), and checked against the saved ones bit for bit. */
static double bn_rows_sum_rc(const real *x, int rows, int HW, long cstride) {
    double sum = 0.0;
    for (int n = 0; n < rows; n++) {
        const real *xn = x + n * cstride;
        double r;
        ROWSUM8(r, HW, (double)xn[i]);
        sum += r;
    }
    return sum;
}
static double bn_rows_ssd_rc(const real *x, int rows, int HW, long cstride, double mu) {
    double ss = 0.0;
    for (int n = 0; n < rows; n++) {
        const real *xn = x + n * cstride;
        double r;
        ROWSUM8(r, HW, ((double)xn[i] - mu) * ((double)xn[i] - mu));
        ss += r;
    }
    return ss;
}
/* mus[c], vars[c] (biased) of the batch, as batchnorm_forward_train forms them */
static void bn_stats_rc(double *mus, double *vars, const real *inp, const BNDims *d) {
    const int N = d->N, C = d->C, HW = d->HW;
    const long cstride = (long)C * HW;
    if (shard_plan_trivial(d->sp)) {
        const long M = (long)N * HW;
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            const real *x = inp + (long)c * HW;
            const double mu = bn_rows_sum_rc(x, N, HW, cstride) / (double)M;
            mus[c] = mu;
            vars[c] = bn_rows_ssd_rc(x, N, HW, cstride, mu) / (double)M;
        }
        return;
    }
    const ShardPlan *sp = d->sp;
    const int ls = sp->local_shards, rows = shard_rows(sp, N);
    const long M = shard_global_rows(sp, N) * HW, sstride = (long)rows * cstride;
    double *tmp;
    void *owned;
    double *parts = shard_ws_d(sp, 2 * (size_t)C, &tmp, &owned);
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int s = 0; s < ls; s++)
            parts[(size_t)s * C + c] = bn_rows_sum_rc(inp + (long)c * HW + s * sstride, rows, HW, cstride);
    shard_sum_d(sp, parts, (size_t)C, tmp);
    for (int c = 0; c < C; c++) mus[c] = parts[c] / (double)M;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int s = 0; s < ls; s++)
            parts[(size_t)s * C + c] = bn_rows_ssd_rc(inp + (long)c * HW + s * sstride, rows, HW, cstride, mus[c]);
    shard_sum_d(sp, parts, (size_t)C, tmp);
    for (int c = 0; c < C; c++) vars[c] = parts[c] / (double)M;
    free(owned);
}
static void bn_recompute(Layer *l, Model *m) {
    BNDims d = layer_bn_dims(l, m, m->batch);
    const real *gamma = m->params + l->w_off, *beta = m->params + l->b_off, *inp = in_act(m, l, 0);
    real *out = layer_out(m, l);
    if (!train_mode(l, m->run_train)) {
        const real *running_mean = m->buffers + l->buf_off, *running_var = running_mean + l->C;
        batchnorm_forward_eval(out, inp, gamma, beta, running_mean, running_var, &d);
        return;
    }
    const int N = d.N, C = d.C, HW = d.HW;
    const long cstride = (long)C * HW;
    double *mus = malloc(2 * (size_t)C * sizeof *mus), *vars = mus ? mus + C : NULL;
    if (!mus) {
        fprintf(stderr, "%s: out of memory rebuilding its output (train.memory lean)\n", l->name);
        abort();
    }
    bn_stats_rc(mus, vars, inp, &d);
    const real *mean = layer_saved(m, l), *rstd = mean + C;
    int bad = 0;
    #pragma omp parallel for schedule(static) reduction(| : bad)
    for (int c = 0; c < C; c++) {
        const double mu = mus[c], rs = 1.0 / sqrt(vars[c] + (double)d.eps);
        const real mu_r = (real)mu, rs_r = (real)rs;
        /* the statistics the forward saved, bit for bit, or this is not its output */
        bad |= memcmp(&mu_r, &mean[c], sizeof mu_r) != 0 || memcmp(&rs_r, &rstd[c], sizeof rs_r) != 0;
        const double scale = (double)gamma[c] * rs, b = (double)beta[c];
        for (int n = 0; n < N; n++) {
            const real *xn = inp + (long)c * HW + n * cstride;
            real *on = out + (long)c * HW + n * cstride;
            for (int i = 0; i < HW; i++) on[i] = (real)(((double)xn[i] - mu) * scale + b);
        }
    }
    free(mus);
    if (bad) {
        fprintf(stderr, "%s: its rebuilt batch statistics differ from the forward's (train.memory lean)\n",
                l->name);
        abort();
    }
}
static long bn_macs(const Layer *l) { return (long)l->C * l->H * l->W; }
static void bn_params(Layer *l) {
    l->w_n = l->b_n = (size_t)l->inC; /* gamma, beta */
    l->buf_n = 2 * (size_t)l->inC;    /* running_mean, running_var */
}
static void bn_init(Layer *l, Model *m, Rng *r) {
    real *gamma = m->params + l->w_off, *beta = m->params + l->b_off;
    real *running_mean = m->buffers + l->buf_off, *running_var = running_mean + l->C;
    for (int c = 0; c < l->C; c++) {
        gamma[c] = l->gamma_init;
        beta[c] = 0;
        running_mean[c] = 0;
        running_var[c] = 1;
    }
}
/* the batch mean and rstd per channel */
static size_t bn_saved(const Layer *l, const Model *m, int max_batch) { return 2 * (size_t)l->C; }
static const char *bn_label(const Layer *l) { return l->is_bn1d ? "batchnorm1d" : "batchnorm2d"; }
const LayerKind LAYER_BN = {.name = "bn", .forward = bn_forward, .backward = bn_backward, .macs = bn_macs,
                            .bwd_reads_inputs = 1, .bwd_can_store = 1, .params = bn_params, .init = bn_init,
                            .saved_n = bn_saved, .label = bn_label, .recompute = bn_recompute,
                            .recompute_reads_inputs = 1};

/* ---------------------------------------------------------- activations */
static int hardtanh_fwd(Layer *l, Model *m, int train) {
    hardtanh_forward(layer_out(m, l), in_act(m, l, 0), (size_t)m->batch * layer_numel(l));
    return 0;
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
const LayerKind LAYER_HARDTANH = {.name = "hardtanh", .forward = hardtanh_fwd, .backward = hardtanh_bwd,
                                  .macs = no_macs, .bwd_reads_output = 1, .bwd_can_store = 1,
                                  .recompute = forward_again, .recompute_reads_inputs = 1};

static int relu_fwd(Layer *l, Model *m, int train) {
    relu_forward(layer_out(m, l), in_act(m, l, 0), (size_t)m->batch * layer_numel(l));
    return 0;
}
static void relu_bwd(Layer *l, Model *m) {
    real *dinp = in_dact(m, l, 0);
    /* x > 0 exactly when relu(x) = max(x, 0) > 0 (NaN: neither): read the output, as hardtanh does */
    if (dinp) relu_backward(dinp, layer_dout(m, l), layer_out(m, l), (size_t)m->batch * layer_numel(l));
}
const LayerKind LAYER_RELU = {.name = "relu", .forward = relu_fwd, .backward = relu_bwd, .macs = no_macs,
                              .bwd_reads_output = 1, .recompute = forward_again, .recompute_reads_inputs = 1};

/* ---------------------------------------------------------------- pools */
static PoolDims layer_pool_dims(const Layer *l, int N) {
    return pool_dims(N, l->inC, l->inH, l->inW, l->K, l->stride, l->pad);
}
/* the argmax of each output, int32, in the layer's typed bytes */
static int maxpool_fwd(Layer *l, Model *m, int train) {
    PoolDims d = layer_pool_dims(l, m->batch);
    maxpool_forward(layer_out(m, l), layer_saved_bytes(m, l), in_act(m, l, 0), &d);
    return 0;
}
static void maxpool_bwd(Layer *l, Model *m) {
    PoolDims d = layer_pool_dims(l, m->batch);
    real *dinp = in_dact(m, l, 0);
    if (dinp) maxpool_backward(dinp, layer_dout(m, l), layer_saved_bytes(m, l), &d);
}
static long pool_macs(const Layer *l) { return (long)l->C * l->H * l->W * l->K * l->K; }
static size_t maxpool_saved(const Layer *l, const Model *m, int max_batch) {
    return (size_t)max_batch * layer_numel(l) * sizeof(int32_t);
}
const LayerKind LAYER_MAXPOOL = {.name = "maxpool", .forward = maxpool_fwd, .backward = maxpool_bwd,
                                 .macs = no_macs, .out_shape = window_shape, .saved_bytes = maxpool_saved,
                                 .recompute = forward_again, .recompute_reads_inputs = 1};

static int avgpool_fwd(Layer *l, Model *m, int train) {
    PoolDims d = layer_pool_dims(l, m->batch);
    avgpool_forward(layer_out(m, l), in_act(m, l, 0), &d);
    return 0;
}
static void avgpool_bwd(Layer *l, Model *m) {
    PoolDims d = layer_pool_dims(l, m->batch);
    real *dinp = in_dact(m, l, 0);
    if (dinp) avgpool_backward(dinp, layer_dout(m, l), &d);
}
const LayerKind LAYER_AVGPOOL = {.name = "avgpool", .forward = avgpool_fwd, .backward = avgpool_bwd,
                                 .macs = pool_macs, .out_shape = window_shape, .recompute = forward_again,
                                 .recompute_reads_inputs = 1};

static int gap_fwd(Layer *l, Model *m, int train) {
    global_avgpool_forward(layer_out(m, l), in_act(m, l, 0), m->batch, l->inC, l->inH * l->inW);
    return 0;
}
static void gap_bwd(Layer *l, Model *m) {
    real *dinp = in_dact(m, l, 0);
    if (dinp) global_avgpool_backward(dinp, layer_dout(m, l), m->batch, l->inC, l->inH * l->inW);
}
static long gap_macs(const Layer *l) { return (long)l->inC * l->inH * l->inW; }
const LayerKind LAYER_GAP = {.name = "avgpool_global", .forward = gap_fwd, .backward = gap_bwd, .macs = gap_macs,
                             .out_shape = vector_shape, .recompute = forward_again, .recompute_reads_inputs = 1};

/* --------------------------------------------------------------- linear */
static int linear_fwd(Layer *l, Model *m, int train) {
    int IN = l->inC * l->inH * l->inW;
    linear_forward_sp(layer_out(m, l), in_act(m, l, 0), m->params + l->w_off, m->params + l->b_off, m->batch, IN,
                      l->C, layer_plan(m));
    return 0;
}
static void linear_bwd(Layer *l, Model *m) {
    int IN = l->inC * l->inH * l->inW;
    linear_backward_sp(in_dact(m, l, 0), pgrad(m, l, l->w_off), pgrad(m, l, l->b_off), layer_dout(m, l),
                       in_act(m, l, 0), m->params + l->w_off, m->batch, IN, l->C, layer_plan(m));
}
static long linear_macs(const Layer *l) { return (long)l->inC * l->inH * l->inW * l->C; }
static void linear_params(Layer *l) {
    l->w_n = (size_t)l->C * l->inC * l->inH * l->inW;
    l->b_n = (size_t)l->C;
}
static void linear_init(Layer *l, Model *m, Rng *r) {
    real *w = m->params + l->w_off, *b = m->params + l->b_off;
    if (l->init_std > 0) { /* the builder's N(0, init_std) and a zero bias (vgg_small) */
        for (size_t j = 0; j < l->w_n; j++) w[j] = (real)(l->init_std * rng_normal(r));
        for (size_t j = 0; j < l->b_n; j++) b[j] = 0;
        return;
    }
    /* nn.Linear default: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); bias the same bound */
    double bound = 1.0 / sqrt((double)l->inC * l->inH * l->inW);
    for (size_t j = 0; j < l->w_n; j++) w[j] = (real)(bound * (2.0 * rng_uniform(r) - 1.0));
    for (size_t j = 0; j < l->b_n; j++) b[j] = (real)(bound * (2.0 * rng_uniform(r) - 1.0));
}
const LayerKind LAYER_LINEAR = {.name = "linear", .forward = linear_fwd, .backward = linear_bwd,
                                .macs = linear_macs, .bwd_reads_inputs = 1, .has_weights = 1,
                                .out_shape = vector_shape, .params = linear_params, .init = linear_init};

/* ------------------------------------------------------------- residual */
/* both inputs must have one shape, which is the output's */
static int add_shape(Layer *l, const Model *m, char *why, size_t whylen) {
    const Layer *la = &m->layers[l->in0], *lb = &m->layers[l->in1];
    if (la->C != lb->C || la->H != lb->H || la->W != lb->W) {
        snprintf(why, whylen, "add of %s (%dx%dx%d) and %s (%dx%dx%d): the shapes differ", la->name, la->C, la->H,
                 la->W, lb->name, lb->C, lb->H, lb->W);
        return -1;
    }
    l->H = la->H;
    l->W = la->W;
    return 0;
}
static int add_fwd(Layer *l, Model *m, int train) {
    add_forward(layer_out(m, l), in_act(m, l, 0), in_act(m, l, 1), (size_t)m->batch * layer_numel(l));
    return 0;
}
static void add_bwd(Layer *l, Model *m) {
    add_backward(in_dact(m, l, 0), in_dact(m, l, 1), layer_dout(m, l), (size_t)m->batch * layer_numel(l));
}
const LayerKind LAYER_ADD = {.name = "add", .forward = add_fwd, .backward = add_bwd, .macs = no_macs,
                             .out_shape = add_shape, .recompute = forward_again, .recompute_reads_inputs = 1};

/* AvgPool2d(stride) with floor sizes, the channels padded to l->C */
static int shortcut_shape(Layer *l, const Model *m, char *why, size_t whylen) {
    (void)m;
    if (l->stride < 1 || l->inH / l->stride < 1 || l->inW / l->stride < 1 || l->C < l->inC) {
        snprintf(why, whylen, "option-A shortcut from %dx%dx%d to %d channels at stride %d", l->inC, l->inH, l->inW,
                 l->C, l->stride);
        return -1;
    }
    l->H = l->inH / l->stride;
    l->W = l->inW / l->stride;
    return 0;
}
static int shortcut_fwd(Layer *l, Model *m, int train) {
    if (shortcut_a_forward(layer_out(m, l), in_act(m, l, 0), m->batch, l->inC, l->inH, l->inW, l->stride, l->C,
                           l->pad_before))
        return layer_run_error(m, l, "option-A shortcut from %d to %d channels with %d in front does not fit",
                               l->inC, l->C, l->pad_before);
    return 0;
}
static void shortcut_bwd(Layer *l, Model *m) {
    real *dinp = in_dact(m, l, 0);
    /* the forward ran, so the layout fits: the result cannot be -1 here */
    if (dinp)
        (void)shortcut_a_backward(dinp, layer_dout(m, l), m->batch, l->inC, l->inH, l->inW, l->stride, l->C,
                                  l->pad_before);
}
const LayerKind LAYER_SHORTCUT_A = {.name = "shortcut_a", .forward = shortcut_fwd, .backward = shortcut_bwd,
                                    .macs = no_macs, .out_shape = shortcut_shape, .recompute = forward_again,
                                    .recompute_reads_inputs = 1};

/* ---------------------------------------------------------------- table */
static const LayerKind *const ALL_KINDS[] = {&LAYER_INPUT,   &LAYER_CONV, &LAYER_BCONV,  &LAYER_BN,
                                             &LAYER_HARDTANH, &LAYER_RELU, &LAYER_MAXPOOL, &LAYER_AVGPOOL,
                                             &LAYER_GAP,     &LAYER_LINEAR, &LAYER_ADD,  &LAYER_SHORTCUT_A,
                                             &LAYER_BIDET_CONV};

const LayerKind *layer_kind_find(const char *name) {
    for (size_t i = 0; i < sizeof ALL_KINDS / sizeof *ALL_KINDS; i++)
        if (!strcmp(ALL_KINDS[i]->name, name)) return ALL_KINDS[i];
    return NULL;
}
