/* Whole-model gradient check (double engine): the analytic gradient of the
 * mean cross-entropy of a tiny ResNet w.r.t. EVERY parameter against central
 * finite differences, in training mode (BN with batch statistics).
 *
 * Two graphs: a two-stage CIFAR-style ResNet from the real builder (identity
 * and option-A shortcuts, hardtanh, BN1d head), and a hand-built graph with the
 * ImageNet-style pieces (strided stem, max-pool, 1x1 downsample conv, relu,
 * avg-pool, residual add around each conv). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "model.h"
#include "models/models.h"
#include "testutil.h"

static void check_model(Model *m, int N, const char *what, uint64_t seed) {
    if (model_alloc(m, N)) {
        CHECK(0, "alloc failed");
        return;
    }
    model_init_params(m, seed);
    /* random gamma/beta so BN's affine gradients are not at a special point */
    Rng r = rng_stream(seed, RNG_TEST, 1, 0);
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        if (!strcmp(l->kind->name, "bn"))
            for (int c = 0; c < l->C; c++) {
                m->params[l->w_off + c] = (real)(0.5 + rng_uniform(&r));
                m->params[l->b_off + c] = (real)(0.2 * (rng_uniform(&r) - 0.5));
            }
    }
    size_t in_n = (size_t)N * m->in_C * m->in_H * m->in_W;
    real *x = malloc(in_n * sizeof *x);
    int32_t *y = malloc((size_t)N * sizeof *y);
    tu_fill_uniform(x, in_n, -1, 1, &r);
    for (int n = 0; n < N; n++) y[n] = (int32_t)rng_below(&r, (uint64_t)m->num_classes);

    real *probs = malloc((size_t)N * m->num_classes * sizeof *probs);
    classify_forward(m, x, y, N, 1, probs);
    classify_backward(m, probs, y, N);
    real *analytic = malloc(m->n_params * sizeof *analytic);
    memcpy(analytic, m->grads, m->n_params * sizeof *analytic);

    const double h = 1e-6;
    double worst = 0.0;
    long checked = 0, bad = 0;
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        size_t offs[2] = {l->w_off, l->b_off}, cnt[2] = {l->w_n, l->b_n};
        for (int t = 0; t < 2; t++)
            for (size_t j = 0; j < cnt[t]; j++) {
                real *p = &m->params[offs[t] + j];
                real saved = *p;
                *p = saved + h;
                double lp = classify_forward(m, x, y, N, 1, probs);
                *p = saved - h;
                double lm = classify_forward(m, x, y, N, 1, probs);
                *p = saved;
                double fd = (lp - lm) / (2 * h), an = analytic[offs[t] + j];
                double err = fabs(fd - an) / fmax(1e-3, fabs(fd) + fabs(an));
                if (err > worst) worst = err;
                checked++;
                if (err > 1e-4) {
                    if (bad < 5)
                        fprintf(stderr, "  %s %s[%zu]: analytic %.9g, finite difference %.9g\n", l->name,
                                t ? "bias/beta" : "weight/gamma", j, an, fd);
                    bad++;
                }
            }
    }
    printf("%s: %ld parameters checked, worst relative error %.3g\n", what, checked, worst);
    CHECK(bad == 0, "%s: %ld of %ld parameter gradients disagree with finite differences", what, bad, checked);
    CHECK(checked > 100, "%s: too few parameters checked (%ld)", what, checked);
    free(analytic);
    free(x);
    free(y);
    free(probs);
}

int main(void) {
    /* CIFAR-style: stem 1->4, stage widths 4 and 8 with one block each (identity
     * shortcut in stage 1, option A in stage 2), 6x6 input, 3 classes, batch 3 */
    {
        static const int blocks[2] = {1, 1}, widths[2] = {4, 8};
        char err[256];
        Model m;
        model_init(&m, "tiny_cifar_resnet", 1, 6, 6, 3);
        CHECK(build_cifar_resnet(&m, blocks, widths, 2, err, sizeof err) == 0, "build: %s", err);
        check_model(&m, 3, "tiny CIFAR ResNet", 11);
        model_free(&m);
    }
    /* ImageNet-style pieces: conv 5x5 s2 p2 -> BN -> relu -> maxpool 3 s2 p1 ->
     * [conv3x3 s2 -> BN] + [conv1x1 s2 -> BN] -> hardtanh -> conv3x3 -> BN, + skip
     * -> hardtanh -> avgpool 2 -> linear, on 2x13x11 input, batch 2 */
    {
        Model m;
        model_init(&m, "tiny_graph", 2, 13, 11, 4);
        int x = model_input(&m);
        x = model_conv(&m, x, 3, 5, 2, 2, CONV_FP32, "stem");
        x = model_bn(&m, x, 1, "stem.bn");
        x = model_relu(&m, x, "stem.relu");
        x = model_maxpool(&m, x, 3, 2, 1, "maxpool");
        int a = model_conv(&m, x, 5, 3, 2, 1, CONV_BINARY, "b.conv1");
        a = model_bn(&m, a, 1, "b.bn1");
        int d = model_conv(&m, x, 5, 1, 2, 0, CONV_FP32, "b.down");
        d = model_bn(&m, d, 1, "b.down.bn");
        a = model_add(&m, a, d, "b.add1");
        int o = model_hardtanh(&m, a, "b.ht1");
        int b = model_conv(&m, o, 5, 3, 1, 1, CONV_BINARY, "b.conv2");
        b = model_bn(&m, b, 1, "b.bn2");
        b = model_add(&m, b, o, "b.add2");
        b = model_hardtanh(&m, b, "b.ht2");
        b = model_avgpool(&m, b, 2, 1, 0, "avgpool");
        model_linear(&m, b, 4, "fc");
        check_model(&m, 2, "tiny ImageNet-style graph", 12);
        model_free(&m);
    }
    /* building errors are values (issue 13 item 6): a shape mismatch in an add
     * is kept in m.err naming the layer, later builders do nothing, model_alloc
     * refuses, and the process goes on */
    {
        char err[256] = "";
        Model m;
        model_init(&m, "bad_graph", 2, 8, 8, 3);
        int x = model_input(&m);
        int a = model_conv(&m, x, 4, 3, 1, 1, CONV_FP32, "a.conv");
        int b = model_conv(&m, x, 4, 3, 2, 1, CONV_FP32, "b.conv");
        int s = model_add(&m, a, b, "block.add");
        CHECK(a >= 0 && b >= 0 && s == -1, "add of 4x8x8 and 4x4x4: index %d (want -1)", s);
        int n_before = m.n_layers;
        int h = model_hardtanh(&m, s, "after.ht");
        int l = model_linear(&m, a, 3, "after.fc"); /* a valid input: still refused, the first error is kept */
        CHECK(h == -1 && l == -1 && m.n_layers == n_before, "builders after the error: %d %d, %d layers (want %d)", h,
              l, m.n_layers, n_before);
        CHECK(model_build_check(&m, err, sizeof err) == -1 &&
                  !strcmp(err, "building bad_graph: block.add: add of a.conv (4x8x8) and b.conv (4x4x4): the shapes "
                               "differ"),
              "model_build_check: '%s'", err);
        CHECK(model_alloc(&m, 2) == -1, "model_alloc of a graph with a building error");
        printf("shape mismatch: %s\n", err);
        model_free(&m);
        /* a window larger than its input names its layer too */
        model_init(&m, "small_input", 1, 2, 2, 3);
        model_conv(&m, model_input(&m), 4, 5, 1, 1, CONV_FP32, "stem");
        CHECK(model_build_check(&m, err, sizeof err) == -1 && strstr(err, "stem: kernel 5 with pad 1 does not fit"),
              "conv larger than its input: '%s'", err);
        model_free(&m);
        /* and a real architecture through model_build's err */
        CHECK(model_build(&m, "vgg_small", CONV_BINARY, 3, 4, 4, 10, err, sizeof err) == -1 && strstr(err, "8x8"),
              "vgg_small on 4x4: '%s'", err);
        model_free(&m);
        CHECK(model_build(&m, "cifar_resnet8", CONV_BINARY, 1, 28, 28, 10, err, sizeof err) == 0, "resnet8: %s", err);
        model_free(&m);
    }
    return tu_finish("grad_model");
}
