/* train.memory lean (Model.memory_lean, core/model.c lean_plan): outputs a
 * backward reads but whose kind rebuilds them exactly (the binary conv's
 * Y * alpha from its saved int16 Y; BN, hardtanh, relu, add, the shortcut,
 * the fp32 stem conv from their inputs) are not kept, and
 * model_backward_outputs rebuilds them; the binary convs' codes and int8 Bw
 * are not saved but rebuilt in backward, nor, where the conv's input is
 * kept, its Y: the 1-bit conv runs again (BinaryConvOptions.lean_saved).
 * The option's whole contract is that nothing else changes:
 *
 *  - for every architecture model_build knows (small inputs), the detector's
 *    base graph (four outputs, a frozen conv and BN) and a small graph with a
 *    frozen BN that a backward reads (its rebuild in eval mode), the fast and
 *    the lean model from one initialisation, trained side by side on the same
 *    batches for several AdamW steps, with the binary convs' codes saved or
 *    not, at train.shards 1 and 2: the same loss, parameter gradients,
 *    running statistics, updated parameters and outputs, bit for bit; an
 *    eval run between the steps gives the same outputs, and a backward after
 *    it (eval-mode rebuilds) the same gradients; and every kind's rebuild,
 *    called on the fast model right after a run, gives back each kept
 *    output bitwise (a direct check of the hooks, train and eval mode);
 *  - the plan: what lean keeps is what fast keeps less the rebuilt outputs
 *    (layer fields, byte for byte); each binary conv's saved block is
 *    fast's less its Bw and codes (and its Y where its input is kept: the
 *    conv runs again), its scratch fast's plus them and less the padded
 *    border fast reserves in Ba, dBa and the int8 Ba; dacts and
 *    noise are the same, every other layer's saved and scratch too, and the
 *    CIFAR ResNet-18 keeps, of its activations, only the input, the blocks'
 *    outputs (the residual stream, which the E3 Jacobian of the next binary
 *    conv reads in fp32) and the logits: the expected sizes are computed
 *    here from the layers' shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "frcnn.h"
#include "layers.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "testutil.h"

enum { CLASSES = 10, STEPS = 3 };

typedef struct {
    const char *arch; /* a model_build name, or "frcnn_base", "frozen_bn" */
    int side, batch, shards, codes;
} Case;

static const Case CASES[] = {
    {"cifar_resnet8", 8, 4, 1, 1},     {"cifar_resnet8", 8, 4, 2, 0}, {"cifar_resnet18", 8, 2, 1, 1},
    {"cifar_resnet18", 8, 4, 2, 1},    {"vgg_small", 8, 2, 1, 1},     {"imagenet_resnet18", 64, 2, 1, 1},
    {"frcnn_base", 64, 2, 1, 1},       {"frozen_bn", 6, 4, 2, 1},
};

/* input 3x6x6 -> conv -> BN (frozen: eval mode, read by hardtanh's and the
 * binary conv's backward through its rebuilt output) -> hardtanh -> binary
 * conv -> BN -> hardtanh -> global pool -> linear */
static int build_frozen_bn(Model *m, int side, char *err, size_t errlen) {
    model_init(m, "frozen_bn", 3, side, side, CLASSES);
    m->binary_kind = CONV_BINARY;
    int x = model_input(m);
    x = model_conv(m, x, 8, 3, 1, 1, CONV_FP32, "conv1");
    const int bn1 = model_bn(m, x, 1, "bn1");
    x = model_hardtanh(m, bn1, "ht1");
    x = model_conv(m, x, 8, 3, 1, 1, CONV_BINARY, "bconv");
    x = model_bn(m, x, 1, "bn2");
    x = model_hardtanh(m, x, "ht2");
    x = model_global_avgpool(m, x, "gap");
    model_linear(m, x, CLASSES, "fc");
    model_freeze(m, bn1);
    return model_build_check(m, err, errlen);
}

static int build(Model *m, const Case *c, int lean) {
    char err[256];
    int rc;
    if (!strcmp(c->arch, "frcnn_base"))
        rc = frcnn_build_base(m, 8, RPN_CONV_CYCLEBNN, CONV_BINARY, c->side, c->side, 3, 1, err, sizeof err);
    else if (!strcmp(c->arch, "frozen_bn"))
        rc = build_frozen_bn(m, c->side, err, sizeof err);
    else
        rc = model_build(m, c->arch, CONV_BINARY, 3, c->side, c->side, CLASSES, err, sizeof err);
    if (rc) {
        CHECK(0, "%s: %s", c->arch, err);
        return -1;
    }
    m->memory_lean = lean;
    m->seed = 11;
    m->bits = 4;
    m->grad_bits = 8;
    m->bconv.save_act_codes = c->codes;
    if (model_alloc(m, c->batch)) {
        CHECK(0, "%s: out of memory", c->arch);
        return -1;
    }
    model_init_params(m, 5);
    if (c->shards > 1) {
        ShardPlan p;
        CHECK(shard_plan_make(&p, c->shards, c->batch, NULL, err, sizeof err) == 0 &&
                  model_set_shards(m, &p, err, sizeof err) == 0,
              "%s: plan S=%d: %s", c->arch, c->shards, err);
    }
    return 0;
}

static int same(const real *a, const real *b, size_t n) { return memcmp(a, b, n * sizeof(real)) == 0; }

static size_t out_numel(const Model *m, int k) {
    const Layer *l = &m->layers[m->outputs[k]];
    return (size_t)m->batch * l->C * l->H * l->W;
}

/* a loss over every output: CE of output 0 against y when it is the logits
 * (a vector per sample), plus sum(w_k * out_k) with fixed weights for the
 * others (their gradient is w_k). Returns it; with grad, backward too. */
static double loss_and_backward(Model *m, const int32_t *y, const real *w, int grad) {
    double loss = 0;
    for (int k = 0; k < m->n_outputs; k++) {
        const Layer *l = &m->layers[m->outputs[k]];
        const real *o = model_output(m, k);
        const size_t n = out_numel(m, k);
        if (k == 0 && l->H == 1 && l->W == 1) {
            real *probs = tu_alloc(n);
            loss += softmax_ce_forward_sp(probs, o, y, m->batch, l->C, &m->shard);
            if (grad) softmax_ce_backward_sp(model_output_grad(m, 0), probs, y, m->batch, l->C, 1, &m->shard);
            free(probs);
            continue;
        }
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)w[i] * (double)o[i];
        loss += s;
        if (grad) {
            real *g = model_output_grad(m, k);
            for (size_t i = 0; i < n; i++) g[i] += w[i];
        }
    }
    if (grad) model_backward_outputs(m);
    return loss;
}

static void compare(const Model *f, const Model *l, const char *what, const char *arch, int step) {
    CHECK(same(f->grads, l->grads, f->n_params), "%s step %d (%s): parameter gradients differ", arch, step, what);
    CHECK(same(f->buffers, l->buffers, f->n_buffers), "%s step %d (%s): running statistics differ", arch, step, what);
    for (int k = 0; k < f->n_outputs; k++)
        CHECK(same(model_output(f, k), model_output(l, k), out_numel(f, k)), "%s step %d (%s): output %d differs",
              arch, step, what, k);
}

/* every kind's rebuild on the fast model (everything a backward reads is
 * kept there): right after a run, each output a kind can rebuild is rebuilt
 * in place, bitwise what the forward wrote (in the run's mode) */
static void check_rebuilds(Model *m, const char *arch, const char *mode) {
    int checked = 0;
    for (int j = 1; j < m->n_layers; j++) {
        Layer *l = &m->layers[j];
        /* only kept outputs (and inputs) still hold the forward's values */
        if (!l->kind->recompute || l->out_last_use != -1) continue;
        if (l->kind->recompute_reads_inputs &&
            (m->layers[l->in0].out_last_use != -1 || (l->in1 >= 0 && m->layers[l->in1].out_last_use != -1)))
            continue;
        const size_t n = (size_t)m->batch * l->C * l->H * l->W;
        real *keep = tu_alloc(n);
        memcpy(keep, layer_out(m, l), n * sizeof(real));
        for (size_t i = 0; i < n; i++) layer_out(m, l)[i] = (real)NAN;
        l->kind->recompute(l, m);
        CHECK(same(keep, layer_out(m, l), n), "%s (%s): %s (%s) rebuilt differs from its forward", arch, mode,
              l->name, l->kind->name);
        free(keep);
        checked++;
    }
    CHECK(checked > 0, "%s (%s): no rebuild could be checked", arch, mode);
}

static void run_case(const Case *c, int ci) {
    Model f, l;
    if (build(&f, c, 0) || build(&l, c, 1)) {
        model_free(&f);
        model_free(&l);
        return;
    }
    CHECK(f.n_params == l.n_params && same(f.params, l.params, f.n_params), "%s: initial parameters differ", c->arch);
    CHECK(model_train_bytes(&l) < model_train_bytes(&f), "%s: lean plans %zu training bytes, fast %zu", c->arch,
          model_train_bytes(&l), model_train_bytes(&f));
    Rng r = rng_stream(33, RNG_TEST, (uint64_t)ci, 0);
    const size_t in = (size_t)f.layers[0].C * f.layers[0].H * f.layers[0].W;
    real *x = tu_alloc((size_t)c->batch * in), *w = tu_alloc(1 << 16);
    int32_t y[64];
    tu_fill_uniform(w, 1 << 16, -0.01, 0.01, &r);
    AdamWConfig ac = {0.9, 0.999, 1e-8, 5e-4};
    for (int s = 0; s < STEPS; s++) {
        tu_fill_uniform(x, (size_t)c->batch * in, -1, 1, &r);
        for (int n = 0; n < c->batch; n++) y[n] = (int32_t)rng_below(&r, CLASSES);
        f.step = l.step = s;
        CHECK(model_run(&f, x, c->batch, 1) == 0 && model_run(&l, x, c->batch, 1) == 0, "%s: run: %s %s", c->arch,
              f.run_err, l.run_err);
        if (s == 0) check_rebuilds(&f, c->arch, "train");
        const double lf = loss_and_backward(&f, y, w, 1), ll = loss_and_backward(&l, y, w, 1);
        CHECK(memcmp(&lf, &ll, sizeof lf) == 0 && isfinite(lf), "%s step %d: loss %.17g (fast) vs %.17g (lean)",
              c->arch, s, lf, ll);
        compare(&f, &l, "train", c->arch, s);
        adamw_step(f.params, f.grads, f.opt_m, f.opt_v, f.n_trainable, 1e-2, &ac, s + 1);
        adamw_step(l.params, l.grads, l.opt_m, l.opt_v, l.n_trainable, 1e-2, &ac, s + 1);
        CHECK(same(f.params, l.params, f.n_params), "%s step %d: updated parameters differ", c->arch, s);
        if (s == 1) { /* an eval run between steps, and a backward after it */
            tu_fill_uniform(x, (size_t)c->batch * in, -1, 1, &r);
            CHECK(model_run(&f, x, c->batch, 0) == 0 && model_run(&l, x, c->batch, 0) == 0, "%s: eval run",
                  c->arch);
            check_rebuilds(&f, c->arch, "eval");
            const double ef = loss_and_backward(&f, y, w, 1), el = loss_and_backward(&l, y, w, 1);
            CHECK(memcmp(&ef, &el, sizeof ef) == 0, "%s eval: loss %.17g vs %.17g", c->arch, ef, el);
            compare(&f, &l, "eval", c->arch, s);
        }
    }
    free(x);
    free(w);
    model_free(&f);
    model_free(&l);
}

/* ------------------------------------------------------------------ plan */

static size_t act_bytes(const Layer *l, int B) {
    return arena_round((size_t)B * l->C * l->H * l->W * sizeof(real));
}

/* kept = out_last_use -1 (core/model.c layout_acts) */
static size_t kept_bytes(const Model *m) {
    size_t b = 0;
    for (int j = 0; j < m->n_layers; j++)
        if (m->layers[j].out_last_use == -1) b += act_bytes(&m->layers[j], m->max_batch);
    return b;
}

static void check_plan(const char *arch, int side, int B, int codes) {
    Model f, l;
    char err[256];
    size_t total[2];
    Model *ms[2] = {&f, &l};
    for (int k = 0; k < 2; k++) {
        CHECK(model_build(ms[k], arch, CONV_BINARY, 3, side, side, CLASSES, err, sizeof err) == 0, "%s", err);
        ms[k]->memory_lean = k;
        ms[k]->bconv.save_act_codes = codes;
        CHECK(model_layout(ms[k], B) == 0, "%s: layout", arch);
        total[k] = model_train_bytes(ms[k]);
    }
    /* what lean rebuilds, fast keeps: fast's kept less those is lean's kept */
    size_t rebuilt = 0, resnet18_kept = 0;
    for (int j = 0; j < l.n_layers; j++) {
        const Layer *lj = &l.layers[j];
        if (lj->rc_step >= 0) { /* a backward reads it (fast keeps it), or a rebuild does */
            CHECK(lj->rc_step >= j && lj->out_last_use >= 0, "%s: %s: rebuilt at step %d", arch, lj->name,
                  lj->rc_step);
            if (f.layers[j].out_last_use == -1) rebuilt += act_bytes(lj, B);
        } else {
            CHECK((f.layers[j].out_last_use == -1) == (lj->out_last_use == -1),
                  "%s: %s is neither rebuilt nor planned as in fast", arch, lj->name);
        }
        /* the residual stream, input and logits (the stem conv is rebuilt) */
        const char *n = lj->name;
        const size_t len = strlen(n);
        if (j == 0 || j == l.n_layers - 1 || (len > 4 && !strcmp(n + len - 4, ".ht2")))
            resnet18_kept += act_bytes(lj, B);
    }
    const size_t kf = kept_bytes(&f), kl = kept_bytes(&l);
    CHECK(kl + rebuilt == kf, "%s b%d: lean keeps %zu bytes, fast %zu, the rebuilt ones it keeps %zu", arch, B, kl, kf, rebuilt);
    CHECK(f.n_dacts == l.n_dacts && f.n_noise == l.n_noise, "%s: lean changed dacts or noise", arch);
    /* the binary convs: saved less the int8 Bw and (codes) the codes, which
     * scratch holds instead, each a whole number of reals, 64-byte blocks,
     * and less Y where the input is kept */
    for (int j = 0; j < l.n_layers; j++) {
        const Layer *fj = &f.layers[j], *lj = &l.layers[j];
        if (lj->kind != &LAYER_BCONV) {
            CHECK(fj->save_i_n == lj->save_i_n && fj->scratch_n == lj->scratch_n, "%s: %s: lean changed its saved "
                  "or scratch", arch, lj->name);
            continue;
        }
        const size_t R = sizeof(real), bw = (size_t)lj->C * lj->inC * lj->K * lj->K;
        const size_t nin = (size_t)B * layer_numel(&l.layers[lj->in0]);
        const size_t bw_r = (bw + R - 1) / R, nin_r = (nin + R - 1) / R, blk = 64 / R;
        /* and Y (int16 here) where the input is kept: the conv runs again from it */
        const size_t y = lj->rc_from_input ? ((size_t)B * layer_numel(lj) * 2 + R - 1) / R * R : 0;
        CHECK(lj->rc_from_input == (l.layers[lj->in0].out_last_use == -1), "%s: %s: rc_from_input %d", arch,
              lj->name, lj->rc_from_input);
        CHECK(fj->save_i_n - lj->save_i_n == bw_r * R + (codes ? nin_r * R : 0) + y, "%s: %s: lean saves %zu bytes, "
              "fast %zu", arch, lj->name, lj->save_i_n, fj->save_i_n);
        /* and ba, dba (reals) and ba8 (bytes) without the Hp rows and columns
         * fast reserves (no -1 padding here) */
        const size_t inC = (size_t)lj->inC, inH = (size_t)lj->inH, inW = (size_t)lj->inW, p2 = 2 * (size_t)lj->pad;
        const size_t pad_r = (size_t)B * inC * ((inH + p2) * (inW + p2) - inH * inW);
        const size_t r64 = blk, ba8_f = ((size_t)B * inC * (inH + p2) * (inW + p2) + R - 1) / R,
                     ba8_l = nin_r;
        const size_t ba8_d = (ba8_f + r64 - 1) / r64 * r64 - (ba8_l + r64 - 1) / r64 * r64;
        CHECK(lj->scratch_n + 2 * pad_r + ba8_d - fj->scratch_n ==
                  (bw_r + blk - 1) / blk * blk + (nin_r + blk - 1) / blk * blk,
              "%s: %s: lean scratch %zu reals, fast %zu", arch, lj->name, lj->scratch_n, fj->scratch_n);
    }
    const size_t R = sizeof(real);
    CHECK(arena_round(f.n_acts * R) - arena_round(l.n_acts * R) + arena_round(f.n_saved * R) -
                  arena_round(l.n_saved * R) ==
              total[0] - total[1] + arena_round(l.n_scratch * R) - arena_round(f.n_scratch * R),
          "%s: the saving is not acts' and saved's less scratch's", arch);
    if (!strcmp(arch, "cifar_resnet18"))
        CHECK(kl == resnet18_kept, "%s b%d: lean keeps %zu bytes, expected %zu (input, blocks' outputs, logits)",
              arch, B, kl, resnet18_kept);
    const double MiB = 1048576.0;
    printf("%s b%d codes %d: acts fast %.1f MiB (kept %.1f), lean %.1f MiB (kept %.1f, rebuilt %.1f); saved "
           "fast %.1f lean %.1f, scratch fast %.1f lean %.1f; training bytes fast %.1f MiB, lean %.1f MiB\n",
           arch, B, codes, f.n_acts * sizeof(real) / MiB, kf / MiB, l.n_acts * sizeof(real) / MiB, kl / MiB,
           rebuilt / MiB, f.n_saved * R / MiB, l.n_saved * R / MiB, f.n_scratch * R / MiB, l.n_scratch * R / MiB,
           total[0] / MiB, total[1] / MiB);
    CHECK(total[1] < total[0], "%s: lean %zu >= fast %zu", arch, total[1], total[0]);
    model_free(&f);
    model_free(&l);
}

int main(void) {
    check_plan("cifar_resnet18", 32, 64, 1);
    check_plan("cifar_resnet8", 32, 16, 0);
    check_plan("vgg_small", 32, 8, 1);
    check_plan("imagenet_resnet18", 64, 4, 1);
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        run_case(&CASES[i], (int)i);
        printf("%s (batch %d, shards %d, codes %d): done\n", CASES[i].arch, CASES[i].batch, CASES[i].shards,
               CASES[i].codes);
        fflush(stdout);
    }
    return tu_finish("memory_lean");
}
