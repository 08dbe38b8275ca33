/* Runtime input sizes within a planned capacity (float engine, what trains).
 *
 * The two-head graph of test_graph_two_head.c, its trunk's second conv a
 * CycleBNN binary conv and its regression head pooled globally (so no
 * parameter depends on the input size), allocated once for 8x8 inputs: run at
 * 8x8, then 6x6 and 7x7, then 8x8 again in that one allocation. At 6x6 the
 * outputs, the parameter and input gradients and the running statistics are
 * bitwise those of a model built directly for 6x6 with the same parameters;
 * back at 8x8 they are bitwise the first 8x8 step's. Refused with a message
 * naming the layer: an input above the capacity, a window that does not fit,
 * a linear whose input features would change; a batch above max_batch. A
 * model built at 6x6 with model_plan for 8x8 runs 8x8 as the 8x8 model does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"

enum { B = 3, C_IN = 2, CLASSES = 3, REG = 4 };

static void build(Model *m, int side) {
    model_init(m, "sizes", C_IN, side, side, CLASSES);
    m->binary_kind = CONV_BINARY;
    m->bits = 4;
    m->grad_bits = 8;
    m->seed = 5;
    int x = model_input(m);
    x = model_conv_bias(m, x, 3, 3, 1, 1, "trunk.conv1");
    int bn1 = model_bn(m, x, 1, "trunk.bn1");
    x = model_relu(m, bn1, "trunk.relu");
    x = model_conv(m, x, 4, 3, 1, 1, CONV_BINARY, "trunk.conv2");
    x = model_bn(m, x, 1, "trunk.bn2");
    int trunk = model_hardtanh(m, x, "trunk.ht");
    int g = model_global_avgpool(m, trunk, "cls.gap");
    int cls = model_linear(m, g, CLASSES, "cls.fc");
    int r = model_conv_bias(m, trunk, 2, 3, 1, 1, "reg.conv");
    r = model_relu(m, r, "reg.relu");
    r = model_maxpool(m, r, 2, 2, 0, "reg.pool");
    r = model_global_avgpool(m, r, "reg.gap");
    int reg = model_linear(m, r, REG, "reg.fc");
    model_mark_output(m, cls);
    model_mark_output(m, reg);
    model_freeze(m, bn1);
    model_input_grad(m, 1);
    char err[256];
    CHECK(model_build_check(m, err, sizeof err) == 0, "build: %s", err);
}

/* everything one step leaves: both outputs, the gradients, the input's, the running statistics */
typedef struct {
    real *out0, *out1, *grads, *dx, *buffers;
    double loss;
} Result;

static void result_free(Result *r) { free(r->out0), free(r->out1), free(r->grads), free(r->dx), free(r->buffers); }

static real *copy(const real *src, size_t n) {
    real *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

/* one training step on n images of side x side: CE on output 0, smooth L1 on output 1 */
static Result step(Model *m, const real *x, const int32_t *y, const real *target, int n, int side) {
    Result r;
    CHECK(model_run(m, x, n, 1) == 0, "model_run at %dx%d: %s", side, side, m->run_err);
    real probs[B * CLASSES];
    const real *reg = model_output(m, 1);
    r.loss = softmax_ce_forward(probs, model_output(m, 0), y, n, CLASSES) +
             smooth_l1_forward(reg, target, NULL, (size_t)n * REG, 1.0, n * REG);
    softmax_ce_backward(model_output_grad(m, 0), probs, y, n, CLASSES, 1);
    smooth_l1_backward(model_output_grad(m, 1), reg, target, NULL, (size_t)n * REG, 1.0, n * REG, 1.0);
    model_backward_outputs(m);
    r.out0 = copy(model_output(m, 0), (size_t)n * CLASSES);
    r.out1 = copy(reg, (size_t)n * REG);
    r.grads = copy(m->grads, m->n_params);
    r.dx = copy(model_input_grad_buf(m), (size_t)n * C_IN * side * side);
    r.buffers = copy(m->buffers, m->n_buffers);
    return r;
}

static int same(const Result *a, const Result *b, const Model *m, int n, int side) {
    return !memcmp(&a->loss, &b->loss, sizeof a->loss) && !memcmp(a->out0, b->out0, (size_t)n * CLASSES * sizeof(real)) &&
           !memcmp(a->out1, b->out1, (size_t)n * REG * sizeof(real)) &&
           !memcmp(a->grads, b->grads, m->n_params * sizeof(real)) &&
           !memcmp(a->dx, b->dx, (size_t)n * C_IN * side * side * sizeof(real)) &&
           !memcmp(a->buffers, b->buffers, m->n_buffers * sizeof(real));
}

int main(void) {
    Rng rng = rng_stream(3, RNG_TEST, 2, 0);
    real *x8 = tu_alloc((size_t)B * C_IN * 8 * 8), *x6 = tu_alloc((size_t)B * C_IN * 6 * 6);
    real *x7 = tu_alloc((size_t)B * C_IN * 7 * 7), target[B * REG];
    int32_t y[B] = {0, 2, 1};
    tu_fill_uniform(x8, (size_t)B * C_IN * 64, -1, 1, &rng);
    tu_fill_uniform(x6, (size_t)B * C_IN * 36, -1, 1, &rng);
    tu_fill_uniform(x7, (size_t)B * C_IN * 49, -1, 1, &rng);
    tu_fill_uniform(target, B * REG, -1, 1, &rng);
    char err[256];

    Model m, m6;
    build(&m, 8);
    CHECK(model_alloc(&m, B) == 0, "model_alloc at 8x8");
    model_init_params(&m, 9);
    real *buffers0 = copy(m.buffers, m.n_buffers);
    build(&m6, 6);
    CHECK(model_alloc(&m6, B) == 0, "model_alloc at 6x6");
    CHECK(m6.n_params == m.n_params && m6.n_buffers == m.n_buffers, "the 6x6 model has other parameters");
    memcpy(m6.params, m.params, m.n_params * sizeof(real));
    memcpy(m6.buffers, m.buffers, m.n_buffers * sizeof(real));

    /* 8x8, then 6x6 against the model built for it */
    Result r8 = step(&m, x8, y, target, B, 8);
    memcpy(m.buffers, buffers0, m.n_buffers * sizeof(real));
    CHECK(model_set_input_size(&m, 6, 6, err, sizeof err) == 0, "set 6x6: %s", err);
    Result a6 = step(&m, x6, y, target, B, 6), b6 = step(&m6, x6, y, target, B, 6);
    CHECK(same(&a6, &b6, &m, B, 6), "6x6 in the 8x8 allocation differs from the model built for 6x6");
    Result a6n = step(&m, x6, y, target, 2, 6), b6n = step(&m6, x6, y, target, 2, 6);
    CHECK(same(&a6n, &b6n, &m, 2, 6), "6x6 with 2 of 3 rows differs from the model built for 6x6");

    /* 7x7 (odd: the pool floors) runs; then 8x8 again is the first step */
    CHECK(model_set_input_size(&m, 7, 7, err, sizeof err) == 0, "set 7x7: %s", err);
    Result a7 = step(&m, x7, y, target, B, 7);
    const Layer *pool = &m.layers[11];
    CHECK(!strcmp(pool->name, "reg.pool") && pool->inH == 7 && pool->H == 3 && isfinite(a7.loss),
          "7x7 step: %s %dx%d -> %dx%d, loss %g", pool->name, pool->inH, pool->inW, pool->H, pool->W, a7.loss);
    CHECK(model_set_input_size(&m, 8, 8, err, sizeof err) == 0, "set 8x8: %s", err);
    memcpy(m.buffers, buffers0, m.n_buffers * sizeof(real));
    Result again = step(&m, x8, y, target, B, 8);
    CHECK(same(&r8, &again, &m, B, 8), "8x8 after 6x6 and 7x7 differs from the first 8x8 step");

    /* refusals, each naming a layer, the model unchanged */
    CHECK(model_set_input_size(&m, 9, 8, err, sizeof err) == -1 && strstr(err, "layer input") &&
              strstr(err, "exceeds"),
          "9x8 in an 8x8 plan: '%s'", err);
    printf("above capacity: %s\n", err);
    CHECK(model_set_input_size(&m, 1, 1, err, sizeof err) == -1 && strstr(err, "layer reg.pool") &&
              strstr(err, "does not fit"),
          "1x1 through a 2x2 pool: '%s'", err);
    printf("window: %s\n", err);
    CHECK(m.in_H == 8 && pool->inH == 8 && pool->H == 4, "a refused size changed the shapes");
    CHECK(model_run(&m, x8, B + 1, 1) == -1 && strstr(m.run_err, "batch of 4"), "N > max_batch: '%s'", m.run_err);
    printf("batch: %s\n", m.run_err);
    memcpy(m.buffers, buffers0, m.n_buffers * sizeof(real));
    Result after = step(&m, x8, y, target, B, 8);
    CHECK(same(&r8, &after, &m, B, 8), "8x8 after the refusals differs");

    /* model_plan: built at 6x6, planned for 8x8, runs 8x8 as the 8x8 model */
    Model mp;
    build(&mp, 6);
    CHECK(model_plan(&mp, B, 8, 8, err, sizeof err) == 0, "model_plan: %s", err);
    CHECK(mp.in_H == 6 && mp.layers[1].H == 6, "model_plan left the size at %dx%d", mp.in_H, mp.layers[1].H);
    memcpy(mp.params, m.params, m.n_params * sizeof(real));
    memcpy(mp.buffers, buffers0, m.n_buffers * sizeof(real));
    CHECK(model_set_input_size(&mp, 8, 8, err, sizeof err) == 0, "planned 8x8: %s", err);
    Result p8 = step(&mp, x8, y, target, B, 8);
    CHECK(same(&r8, &p8, &m, B, 8), "8x8 in a 6x6 model planned for 8x8 differs from the 8x8 model");

    /* a linear reading a feature map: its weights fix the size */
    Model ml;
    model_init(&ml, "flat", 1, 6, 6, 2);
    model_linear(&ml, model_conv(&ml, model_input(&ml), 2, 3, 1, 1, CONV_FP32, "conv"), 2, "fc");
    CHECK(model_alloc(&ml, 2) == 0, "model_alloc");
    CHECK(model_set_input_size(&ml, 4, 4, err, sizeof err) == -1 && strstr(err, "layer fc") &&
              strstr(err, "parameters"),
          "a linear on a 2x4x4 map sized for 2x6x6: '%s'", err);
    printf("linear: %s\n", err);

    Result *all[] = {&r8, &a6, &b6, &a6n, &b6n, &a7, &again, &after, &p8};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) result_free(all[i]);
    free(buffers0), free(x8), free(x6), free(x7);
    model_free(&m), model_free(&m6), model_free(&mp), model_free(&ml);
    return tu_finish("graph_sizes");
}
