/* A graph with two outputs and losses outside the model (double engine):
 *
 *   input 2x6x6 -> conv3x3+bias -> BN (frozen) -> relu -> conv3x3 -> BN -> hardtanh    (the trunk)
 *      classification head: global avgpool -> linear(3)               softmax CE against labels
 *      regression head:     conv3x3+bias -> relu -> maxpool 2 -> linear(4)  smooth L1 against targets
 *   loss = 1.0 * CE + 0.5 * smoothL1 (beta 0.5, mean over the 4N values)
 *
 * Checked against central finite differences in double, in training mode:
 * the gradient of every trainable parameter and of the input. The frozen BN:
 * zero gradient, running statistics unchanged by a training run (the other
 * BN's do change), its parameters outside [0, n_trainable), untouched by an
 * AdamW step over [0, n_trainable) with weight decay. An output whose
 * gradient is never asked for gets none; model_backward_from is
 * model_output_grad + model_backward_outputs. The loss functions on
 * hand-computed values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "optim.h"
#include "testutil.h"

enum { N = 3, C_IN = 2, SIDE = 6, CLASSES = 3, REG = 4 };
static const double BETA = 0.5, W_CE = 1.0, W_REG = 0.5;

typedef struct {
    int conv1, bn1, conv2, bn2, cls_fc, reg_conv, reg_fc;
} Net;

static Net build(Model *m) {
    Net t;
    model_init(m, "two_head", C_IN, SIDE, SIDE, CLASSES);
    int x = model_input(m);
    t.conv1 = model_conv_bias(m, x, 3, 3, 1, 1, "trunk.conv1");
    t.bn1 = model_bn(m, t.conv1, 1, "trunk.bn1");
    x = model_relu(m, t.bn1, "trunk.relu");
    t.conv2 = model_conv(m, x, 4, 3, 1, 1, CONV_FP32, "trunk.conv2");
    t.bn2 = model_bn(m, t.conv2, 1, "trunk.bn2");
    int trunk = model_hardtanh(m, t.bn2, "trunk.ht");
    int g = model_global_avgpool(m, trunk, "cls.gap");
    t.cls_fc = model_linear(m, g, CLASSES, "cls.fc");
    t.reg_conv = model_conv_bias(m, trunk, 2, 3, 1, 1, "reg.conv");
    int r = model_relu(m, t.reg_conv, "reg.relu");
    r = model_maxpool(m, r, 2, 2, 0, "reg.pool");
    t.reg_fc = model_linear(m, r, REG, "reg.fc");
    CHECK(model_mark_output(m, t.cls_fc) == 0, "the classification head is output 0");
    CHECK(model_mark_output(m, t.reg_fc) == 1, "the regression head is output 1");
    CHECK(model_mark_output(m, t.cls_fc) == 0, "marking again gives the same index");
    CHECK(model_freeze(m, t.bn1) == 0, "model_freeze");
    CHECK(model_input_grad(m, 1) == 0, "model_input_grad");
    char err[256];
    CHECK(model_build_check(m, err, sizeof err) == 0, "build: %s", err);
    return t;
}

typedef struct {
    real x[N * C_IN * SIDE * SIDE];
    int32_t y[N];
    real target[N * REG];
    real probs[N * CLASSES];
} Batch;

/* loss = W_CE * CE(output 0) + W_REG * smoothL1(output 1); with grad, also
 * the two output gradients and the backward */
static double step(Model *m, Batch *b, int grad) {
    CHECK(model_run(m, b->x, N, 1) == 0, "model_run: %s", m->run_err);
    const real *logits = model_output(m, 0), *reg = model_output(m, 1);
    double ce = softmax_ce_forward(b->probs, logits, b->y, N, CLASSES);
    double sl1 = smooth_l1_forward(reg, b->target, NULL, N * REG, BETA, N * REG);
    if (grad) {
        softmax_ce_backward(model_output_grad(m, 0), b->probs, b->y, N, CLASSES, (real)W_CE);
        smooth_l1_backward(model_output_grad(m, 1), reg, b->target, NULL, N * REG, BETA, N * REG, W_REG);
        model_backward_outputs(m);
    }
    return W_CE * ce + W_REG * sl1;
}

/* analytic vs central difference of one value; counts and prints the bad ones */
static void compare(const char *what, size_t j, double an, double fd, double *worst, long *bad) {
    double err = fabs(fd - an) / fmax(1e-3, fabs(fd) + fabs(an));
    if (err > *worst) *worst = err;
    if (err > 1e-4) {
        if (*bad < 5) fprintf(stderr, "  %s[%zu]: analytic %.9g, finite difference %.9g\n", what, j, an, fd);
        (*bad)++;
    }
}

static void check_gradients(Model *m, Net *t, Batch *b) {
    step(m, b, 1);
    real *an = malloc(m->n_params * sizeof *an), *an_x = malloc(sizeof b->x);
    memcpy(an, m->grads, m->n_params * sizeof *an);
    memcpy(an_x, model_input_grad_buf(m), sizeof b->x);

    const double h = 1e-6;
    double worst = 0.0;
    long checked = 0, bad = 0;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        if (l->frozen) continue;
        const size_t offs[2] = {l->w_off, l->b_off}, cnt[2] = {l->w_n, l->b_n};
        for (int k = 0; k < 2; k++)
            for (size_t j = 0; j < cnt[k]; j++) {
                real *p = &m->params[offs[k] + j], v = *p;
                *p = v + h;
                double lp = step(m, b, 0);
                *p = v - h;
                double lm = step(m, b, 0);
                *p = v;
                compare(l->name, j, an[offs[k] + j], (lp - lm) / (2 * h), &worst, &bad);
                checked++;
            }
    }
    printf("parameters: %ld checked, worst relative error %.3g\n", checked, worst);
    CHECK(bad == 0 && checked > 200, "%ld of %ld parameter gradients disagree with finite differences", bad, checked);

    worst = 0.0, bad = 0;
    for (size_t j = 0; j < sizeof b->x / sizeof *b->x; j++) {
        real v = b->x[j];
        b->x[j] = v + h;
        double lp = step(m, b, 0);
        b->x[j] = v - h;
        double lm = step(m, b, 0);
        b->x[j] = v;
        compare("input", j, an_x[j], (lp - lm) / (2 * h), &worst, &bad);
    }
    printf("input: %zu values checked, worst relative error %.3g\n", sizeof b->x / sizeof *b->x, worst);
    CHECK(bad == 0, "%ld input gradients disagree with finite differences", bad);

    /* the frozen BN: no gradient, and its parameters after the trainable ones */
    const Layer *f = &m->layers[t->bn1];
    int nonzero = 0;
    for (int c = 0; c < f->C; c++) nonzero += an[f->w_off + c] != 0 || an[f->b_off + c] != 0;
    CHECK(nonzero == 0, "the frozen BN has %d nonzero gradients", nonzero);
    CHECK(f->w_off >= m->n_trainable && f->b_off >= m->n_trainable && m->n_trainable < m->n_params,
          "frozen gamma at %zu, beta at %zu, n_trainable %zu of %zu", f->w_off, f->b_off, m->n_trainable, m->n_params);
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        if (!l->frozen && (l->w_n || l->b_n))
            CHECK((!l->w_n || l->w_off + l->w_n <= m->n_trainable) && (!l->b_n || l->b_off + l->b_n <= m->n_trainable),
                  "%s is trainable but lies outside [0, n_trainable)", l->name);
    }
    free(an);
    free(an_x);
}

/* running statistics: the frozen BN's stay, the other BN's move */
static void check_frozen_stats(Model *m, Net *t, Batch *b) {
    const Layer *f = &m->layers[t->bn1], *g = &m->layers[t->bn2];
    real before_f[8], before_g[8];
    memcpy(before_f, m->buffers + f->buf_off, f->buf_n * sizeof(real));
    memcpy(before_g, m->buffers + g->buf_off, g->buf_n * sizeof(real));
    step(m, b, 1);
    CHECK(!memcmp(before_f, m->buffers + f->buf_off, f->buf_n * sizeof(real)),
          "a training run changed the frozen BN's running statistics");
    CHECK(memcmp(before_g, m->buffers + g->buf_off, g->buf_n * sizeof(real)) != 0,
          "a training run left the trainable BN's running statistics as they were");

    /* AdamW with weight decay over [0, n_trainable): the frozen parameters stay */
    real *frozen = malloc((m->n_params - m->n_trainable) * sizeof *frozen);
    memcpy(frozen, m->params + m->n_trainable, (m->n_params - m->n_trainable) * sizeof *frozen);
    const real w0 = m->params[m->layers[t->conv1].w_off];
    AdamWConfig c = {0.9, 0.999, 1e-8, 0.1};
    adamw_step(m->params, m->grads, m->opt_m, m->opt_v, m->n_trainable, 1e-2, &c, 1);
    CHECK(!memcmp(frozen, m->params + m->n_trainable, (m->n_params - m->n_trainable) * sizeof *frozen),
          "the optimizer over [0, n_trainable) moved a frozen parameter");
    CHECK(m->params[m->layers[t->conv1].w_off] != w0, "the optimizer did not move a trainable parameter");
    free(frozen);
}

/* an output not asked for gets a zero gradient (not the last step's);
 * model_backward_from adds given gradients */
static void check_outputs(Model *m, Net *t, Batch *b) {
    step(m, b, 1); /* both heads: the regression output's gradient buffer is nonzero now */
    CHECK(model_run(m, b->x, N, 1) == 0, "model_run: %s", m->run_err);
    softmax_ce_forward(b->probs, model_output(m, 0), b->y, N, CLASSES);
    softmax_ce_backward(model_output_grad(m, 0), b->probs, b->y, N, CLASSES, 1);
    model_backward_outputs(m); /* output 1 never asked for */
    const Layer *r = &m->layers[t->reg_fc], *rc = &m->layers[t->reg_conv];
    int nonzero = 0;
    for (size_t j = 0; j < r->w_n; j++) nonzero += m->grads[r->w_off + j] != 0;
    for (size_t j = 0; j < rc->w_n; j++) nonzero += m->grads[rc->w_off + j] != 0;
    CHECK(nonzero == 0, "the regression head got %d nonzero gradients from a loss on the other head", nonzero);
    CHECK(m->grads[m->layers[t->cls_fc].w_off] != 0, "the classification head got no gradient");

    /* the same step through model_backward_from */
    real *g_ref = malloc(m->n_params * sizeof *g_ref), dlog[N * CLASSES], dreg[N * REG];
    memset(dlog, 0, sizeof dlog), memset(dreg, 0, sizeof dreg);
    step(m, b, 1);
    memcpy(g_ref, m->grads, m->n_params * sizeof *g_ref);
    CHECK(model_run(m, b->x, N, 1) == 0, "model_run: %s", m->run_err);
    softmax_ce_forward(b->probs, model_output(m, 0), b->y, N, CLASSES);
    softmax_ce_backward(dlog, b->probs, b->y, N, CLASSES, (real)W_CE);
    smooth_l1_backward(dreg, model_output(m, 1), b->target, NULL, N * REG, BETA, N * REG, W_REG);
    const real *douts[2] = {dlog, dreg};
    model_backward_from(m, douts);
    CHECK(!memcmp(g_ref, m->grads, m->n_params * sizeof *g_ref), "model_backward_from differs from the step");
    free(g_ref);
}

/* the losses on values worked by hand */
static void check_losses(void) {
    /* beta 1: x = -2, -0.5, 0, 0.25, 3 -> 1.5, 0.125, 0, 0.03125, 2.5; weights 1, 2, 1, 4, 0.5 */
    const real pred[5] = {-2, 0.5, 1, 1.25, 3}, target[5] = {0, 1, 1, 1, 0}, w[5] = {1, 2, 1, 4, 0.5};
    double l = smooth_l1_forward(pred, target, NULL, 5, 1.0, 5);
    CHECK(fabs(l - (1.5 + 0.125 + 0 + 0.03125 + 2.5) / 5) < 1e-15, "smooth L1 mean %.17g", l);
    l = smooth_l1_forward(pred, target, w, 5, 1.0, 1);
    CHECK(fabs(l - (1.5 + 0.25 + 0 + 0.125 + 1.25)) < 1e-15, "weighted smooth L1 sum %.17g", l);
    real g[5] = {0};
    smooth_l1_backward(g, pred, target, w, 5, 1.0, 2, 3.0); /* 3/2 * w * (-1, -0.5, 0, 0.25, 1) */
    const double eg[5] = {-1.5, -1.5, 0, 1.5, 0.75};
    int bad = 0;
    for (int i = 0; i < 5; i++) bad += fabs(g[i] - eg[i]) > 1e-15;
    CHECK(bad == 0, "smooth L1 gradient: %d wrong", bad);
    /* beta 0: plain L1 */
    l = smooth_l1_forward(pred, target, NULL, 5, 0.0, 1);
    CHECK(fabs(l - (2 + 0.5 + 0 + 0.25 + 3)) < 1e-15, "smooth L1 with beta 0 is L1: %.17g", l);
    /* a label out of range: NAN, no abort */
    real logits[6] = {0}, probs[6];
    int32_t y[2] = {1, 3};
    CHECK(isnan(softmax_ce_forward(probs, logits, y, 2, 3)) && softmax_ce_bad_label(y, 2, 3) == 1,
          "softmax_ce with label 3 of 3 classes");
}

int main(void) {
    check_losses();
    Model m;
    Net t = build(&m);
    CHECK(model_alloc(&m, N) == 0, "model_alloc");
    model_init_params(&m, 21);
    /* random BN parameters and running statistics, so the frozen BN is not the identity */
    Rng r = rng_stream(21, RNG_TEST, 1, 0);
    for (int i = 0; i < m.n_layers; i++) {
        Layer *l = &m.layers[i];
        if (strcmp(l->kind->name, "bn")) continue;
        for (int c = 0; c < l->C; c++) {
            m.params[l->w_off + c] = (real)(0.5 + rng_uniform(&r));
            m.params[l->b_off + c] = (real)(0.2 * (rng_uniform(&r) - 0.5));
            m.buffers[l->buf_off + c] = (real)(0.3 * (rng_uniform(&r) - 0.5));
            m.buffers[l->buf_off + l->C + c] = (real)(0.5 + rng_uniform(&r));
        }
    }
    Batch b;
    tu_fill_uniform(b.x, sizeof b.x / sizeof *b.x, -1, 1, &r);
    tu_fill_uniform(b.target, N * REG, -1, 1, &r);
    for (int n = 0; n < N; n++) b.y[n] = (int32_t)rng_below(&r, CLASSES);

    check_gradients(&m, &t, &b);
    check_outputs(&m, &t, &b);
    check_frozen_stats(&m, &t, &b);

    /* graph options after model_alloc are building errors */
    CHECK(model_freeze(&m, t.bn2) == -1 && strstr(m.err, "after model_alloc"), "model_freeze after alloc: '%s'",
          m.err);
    model_free(&m);
    return tu_finish("graph_two_head");
}
