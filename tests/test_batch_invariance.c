/* Batch invariance (issue 15 c): "a forward of 2N samples equals two forwards
 * of N, for every architecture" -- what lets R ranks, each running its rows,
 * give the bits of one process.
 *
 * For every architecture model_build knows (CIFAR ResNet-8/20/18 and
 * VGG-small on 8x8 inputs, ImageNet ResNet-18 on 64x64, its smallest), with
 * model.conv fp32 and cyclebnn:
 *  - eval mode, after two train-mode forwards (so the running statistics
 *    and the binary convs' running ranges are not their initial values), with
 *    the model's plan at train.shards = 2 (what a run over ranks has): the
 *    outputs of one forward of 2N random samples equal, row for row and
 *    bitwise, those of two forwards of N (rows 0..N-1, then N..2N-1), and
 *    (ResNet-8/20) of 2N forwards of one. (With the trivial plan -- one
 *    process, today's arithmetic -- the linear layer is one sgemm over the
 *    batch, whose rows OpenBLAS rounds differently for different row
 *    counts; a plan makes it one row per call: core/ops/linear.c.)
 * Train mode couples the samples (BN statistics, the loss mean, the weight
 * gradients are sums over the batch), so what is invariant there is the
 * shard tree's: with train.shards S = 2 every such sum is p(first half) +
 * p(second half), and float addition commutes, so a training step on [A; B]
 * and one on [B; A] give the same loss, parameter gradients and running
 * statistics bitwise and the outputs with their halves swapped. Checked for
 * the fp32 models (a binary model's stochastic error noise is keyed by the
 * row's position in the batch, so swapping rows changes it by design). At S
 * = 1 the sums run sample after sample and the swap shows in the last bits
 * of the gradients (checked on ResNet-8: the property above is not free). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "ops.h"
#include "testutil.h"

enum { N = 2, CLASSES = 10 };

typedef struct {
    const char *arch;
    int side;
    int singles; /* also 2N forwards of one row (the small models: seconds in ASan) */
} Arch;

static const Arch ARCHS[] = {
    {"cifar_resnet8", 8, 1}, {"cifar_resnet20", 8, 1}, {"cifar_resnet18", 8, 0}, {"vgg_small", 8, 0},
    {"imagenet_resnet18", 64, 0},
};

static real *copy(const real *src, size_t n) {
    real *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) exit(2);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static int same(const real *a, const real *b, size_t n) { return memcmp(a, b, n * sizeof(real)) == 0; }

static int build(Model *m, const Arch *a, ConvKind kind) {
    char err[256];
    if (model_build(m, a->arch, kind, 3, a->side, a->side, CLASSES, err, sizeof err)) {
        CHECK(0, "%s: %s", a->arch, err);
        return -1;
    }
    m->seed = 7;
    m->bits = 4; /* the binary convs quantize their input to 4 bits, the error to 8 */
    m->grad_bits = 8;
    if (model_alloc(m, 2 * N)) {
        CHECK(0, "%s: out of memory", a->arch);
        return -1;
    }
    model_init_params(m, 3);
    return 0;
}

/* the model's plan: S shards of 2N rows on one process */
static void set_plan(Model *m, int S) {
    char err[200];
    ShardPlan p;
    CHECK(shard_plan_make(&p, S, 2 * N, NULL, err, sizeof err) == 0 && model_set_shards(m, &p, err, sizeof err) == 0,
          "plan S=%d: %s", S, err);
}

/* one forward of 2N rows in eval mode against two of N and 2N of one */
static void check_eval(Model *m, const Arch *a, const char *kind, Rng *r) {
    const size_t in = (size_t)3 * a->side * a->side;
    set_plan(m, 2);
    real *x = tu_alloc(2 * N * in);
    for (int k = 0; k < 2; k++) { /* train-mode forwards: running statistics and ranges move */
        tu_fill_uniform(x, 2 * N * in, -1, 1, r);
        m->step = k;
        CHECK(model_run(m, x, 2 * N, 1) == 0, "%s %s: train run: %s", a->arch, kind, m->run_err);
    }
    tu_fill_uniform(x, 2 * N * in, -1, 1, r);
    CHECK(model_run(m, x, 2 * N, 0) == 0, "%s %s: eval run of 2N: %s", a->arch, kind, m->run_err);
    real *whole = copy(model_output(m, 0), 2 * N * CLASSES);
    for (int h = 0; h < 2; h++) {
        CHECK(model_run(m, x + (size_t)h * N * in, N, 0) == 0, "%s %s: eval run of N: %s", a->arch, kind,
              m->run_err);
        CHECK(same(model_output(m, 0), whole + (size_t)h * N * CLASSES, N * CLASSES),
              "%s %s: eval rows %d..%d of one forward of 2N differ from a forward of those N", a->arch, kind, h * N,
              h * N + N - 1);
    }
    for (int n = 0; a->singles && n < 2 * N; n++) {
        CHECK(model_run(m, x + (size_t)n * in, 1, 0) == 0, "%s %s: eval run of 1: %s", a->arch, kind, m->run_err);
        CHECK(same(model_output(m, 0), whole + (size_t)n * CLASSES, CLASSES),
              "%s %s: eval row %d of one forward of 2N differs from a forward of it alone", a->arch, kind, n);
    }
    set_plan(m, 1);
    free(whole), free(x);
}

typedef struct {
    real *out, *grads, *buffers;
    double loss;
} Step;

static void step_free(Step *s) { free(s->out), free(s->grads), free(s->buffers); }

/* one training step on x (2N rows) from the running statistics buf0: CE over the global batch */
static Step train_step(Model *m, const real *x, const int32_t *y, const real *buf0) {
    Step s;
    memcpy(m->buffers, buf0, m->n_buffers * sizeof(real));
    m->step = 5;
    CHECK(model_run(m, x, 2 * N, 1) == 0, "train run: %s", m->run_err);
    real probs[2 * N * CLASSES];
    s.loss = softmax_ce_forward_sp(probs, model_output(m, 0), y, 2 * N, CLASSES, &m->shard);
    softmax_ce_backward_sp(model_output_grad(m, 0), probs, y, 2 * N, CLASSES, 1, &m->shard);
    model_backward_outputs(m);
    s.out = copy(model_output(m, 0), 2 * N * CLASSES);
    s.grads = copy(m->grads, m->n_params);
    s.buffers = copy(m->buffers, m->n_buffers);
    return s;
}

/* halves swapped: the step on [B; A] against the step on [A; B]; returns 1
 * when the gradients are bitwise the same */
static int check_swap(Model *m, const Arch *a, int S, Rng *r, int expect_equal) {
    set_plan(m, S);
    const size_t in = (size_t)3 * a->side * a->side;
    real *x = tu_alloc(2 * N * in), *xs = tu_alloc(2 * N * in), *buf0 = copy(m->buffers, m->n_buffers);
    int32_t y[2 * N], ys[2 * N];
    tu_fill_uniform(x, 2 * N * in, -1, 1, r);
    for (int n = 0; n < 2 * N; n++) y[n] = (int32_t)rng_below(r, CLASSES);
    memcpy(xs, x + N * in, N * in * sizeof(real)), memcpy(xs + N * in, x, N * in * sizeof(real));
    memcpy(ys, y + N, N * sizeof *y), memcpy(ys + N, y, N * sizeof *y);
    Step s0 = train_step(m, x, y, buf0), s1 = train_step(m, xs, ys, buf0);
    const int grads_same = same(s0.grads, s1.grads, m->n_params);
    if (expect_equal) {
        CHECK(same(s0.out, s1.out + N * CLASSES, N * CLASSES) && same(s0.out + N * CLASSES, s1.out, N * CLASSES),
              "%s S=%d: train outputs of [B; A] are not those of [A; B] swapped", a->arch, S);
        CHECK(memcmp(&s0.loss, &s1.loss, sizeof s0.loss) == 0, "%s S=%d: loss %.17g vs %.17g swapped", a->arch, S,
              s0.loss, s1.loss);
        CHECK(grads_same, "%s S=%d: parameter gradients differ when the halves swap", a->arch, S);
        CHECK(same(s0.buffers, s1.buffers, m->n_buffers), "%s S=%d: running statistics differ when the halves swap",
              a->arch, S);
        CHECK(isfinite(s0.loss), "%s S=%d: loss %g", a->arch, S, s0.loss);
    }
    set_plan(m, 1); /* back to the trivial plan */
    memcpy(m->buffers, buf0, m->n_buffers * sizeof(real));
    step_free(&s0), step_free(&s1), free(x), free(xs), free(buf0);
    return grads_same;
}

int main(void) {
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS; i++) {
        for (int kind = CONV_FP32; kind <= CONV_BINARY; kind++) {
            const char *kname = kind == CONV_FP32 ? "fp32" : "cyclebnn";
            Rng r = rng_stream(21, RNG_TEST, i, (uint64_t)kind);
            Model m;
            if (build(&m, &ARCHS[i], (ConvKind)kind) == 0) {
                check_eval(&m, &ARCHS[i], kname, &r);
                if (kind == CONV_FP32) {
                    check_swap(&m, &ARCHS[i], 2, &r, 1);
                    if (i == 0)
                        CHECK(!check_swap(&m, &ARCHS[i], 1, &r, 0),
                              "%s S=1: swapping the halves left every gradient bit: the S=2 check proves nothing",
                              ARCHS[i].arch);
                }
            }
            model_free(&m);
            printf("%s %s: done (%.1f s of CPU so far)\n", ARCHS[i].arch, kname, (double)clock() / CLOCKS_PER_SEC);
            fflush(stdout);
        }
    }
    return tu_finish("batch_invariance");
}
