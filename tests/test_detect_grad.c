/* The whole detector's gradient by finite differences (issue 14): after
 * detect_train_step, both models' m->grads must be d(L.total)/d(param): the
 * RPN losses, the head losses and the IB regularisers (rpn_reg, head_reg),
 * through the head, the RoIAlign adjoint and the base.
 *
 * f64 engine. The loss is made a function of the parameters only: fp32 convs
 * everywhere (backbone and RPN), box noise off, freeze_targets (the anchor
 * labels, proposals and sampled RoIs of the first step are reused, so no NMS
 * or sampling decision moves under a perturbation), the priors off
 * (rpn_prior has no gradient by design; head_prior runs an NMS on the head's
 * own boxes and scores, so it is piecewise). What is left non-smooth are
 * kinks: the Hardtanh after every residual add (about 10^4 activations in
 * the base and, through RoIAlign, 3 x 10^4 in the head's layer4, so a base
 * weight's +-1e-6 moves some of them across +-1 often: in some parameters a
 * kink every ~1e-5), and smooth-L1's |d| = 1/sigma^2 switch. (The max-pool's
 * input is conv1 -> bn1, both frozen: a constant.)
 *
 * For a sample of every trainable layer's weights and biases (BN gamma and
 * beta, conv/linear biases included; conv1 and bn1 are frozen and excluded:
 * params [n_trainable, n_params) get no gradient), the central difference
 * fd(h) = (L(p + h) - L(p - h)) / 2h is compared with the analytic gradient:
 *     err = |fd - an| / max(|fd|, |an|, floor)   must be <= 1e-6.
 * The floor: the difference quotient's own rounding error in double is about
 * 1e-15 / h absolute (|L| ~ 5, summed over many terms): ~1e-9 at h = 1e-6.
 * So the check is relative (1e-6) above |gradient| = 5e-3 and absolute
 * (5e-9) below: floor = 5e-3 at h = 1e-6, scaled by 1e-6 / h with h.
 * Kinks are detected, not averaged away (no median): at a smooth point
 * fd(h) - fd(2h) is O(h^2) ~ 1e-12, with a kink inside +-2h it is of the size
 * of the kink's jump. So h = 1e-6 is tried first; if fd(h) and fd(2h)
 * disagree beyond the tolerance, h = 1e-7, then 1e-8 (a kink 10x, 100x less
 * likely inside; the floor 10x, 100x higher); if all three disagree the
 * parameter is redrawn from the same tensor (at most MAX_DRAWS draws), and
 * every tensor must end with all its samples checked. A loss that is not
 * smooth almost everywhere (say a float-rounded intermediate in the f64
 * engine: a step every 1e-7 relative) cannot pass by being skipped: it fails
 * there. Every checked sample must pass; the worst error is printed.
 * argv[1]: another seed (model, images, sample); seeds 1..16 pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "detect.h"
#include "testutil.h"

#if !REAL_IS_DOUBLE
#error "test_detect_grad must link the f64 engine (finite differences need double)"
#endif

#define FD_H 1e-6
#define FD_TOL 1e-6
#define FD_FLOOR 5e-3

static char g_err[4096];

/* Two hand-made images of 64 x 80 (H x W), U(-1, 1) pixels, with boxes that
 * anchors of 32..128 px overlap, so both images have fg anchors and RoIs. */
static void make_batch(DetBatch *b, int max_gt, Rng *r) {
    const int B = 2, H = 64, W = 80;
    memset(b, 0, sizeof *b);
    b->B = B, b->H = H, b->W = W, b->max_gt = max_gt;
    b->images = tu_alloc((size_t)B * 3 * H * W);
    tu_fill_uniform(b->images, (size_t)B * 3 * H * W, -1, 1, r);
    b->im_info = calloc((size_t)B * 3, sizeof *b->im_info);
    b->gt = calloc((size_t)B * max_gt * 5, sizeof *b->gt);
    b->difficult = calloc((size_t)B * max_gt, 1);
    b->num_boxes = calloc((size_t)B, sizeof *b->num_boxes);
    b->entry = calloc((size_t)B, sizeof *b->entry);
    b->offset = calloc((size_t)B * 2, sizeof *b->offset);
    static const float boxes[2][2][5] = {{{4, 6, 40, 44, 7}, {44, 20, 75, 60, 12}},
                                         {{10, 2, 58, 50, 3}, {0, 0, 0, 0, 0}}};
    static const int nb[2] = {2, 1};
    for (int i = 0; i < B; i++) {
        b->im_info[3 * i] = (float)H, b->im_info[3 * i + 1] = (float)W, b->im_info[3 * i + 2] = 1;
        b->num_boxes[i] = nb[i];
        b->entry[i] = i;
        for (int g = 0; g < nb[i]; g++) memcpy(b->gt + ((size_t)i * max_gt + g) * 5, boxes[i][g], 5 * sizeof(float));
    }
}

static double loss_at(Detector *d, const DetBatch *b) {
    DetectLosses L;
    if (detect_train_step(d, b, 3, 0, &L, g_err, sizeof g_err)) {
        fprintf(stderr, "FAIL step: %s\n", g_err);
        exit(1);
    }
    return L.total;
}

typedef struct {
    int n, skipped, failed, n_big, kinks; /* kinks: steps h rejected (fd(h) != fd(2h)) */
    double worst, worst_big; /* worst_big: over |gradient| above the floor (a purely relative error) */
    char worst_at[200];
} Tally;

/* the central difference of L in parameter i of m with step h */
static double central(Detector *d, const DetBatch *b, Model *m, size_t i, double h) {
    const real p = m->params[i];
    m->params[i] = p + h;
    const double lp = loss_at(d, b);
    m->params[i] = p - h;
    const double lm = loss_at(d, b);
    m->params[i] = p;
    return (lp - lm) / (2 * h);
}

/* FD-check parameter i of m (analytic gradient an): 1 checked (a failure is
 * reported), 0 at a kink for every step tried. Steps h = 1e-6, 1e-7, 1e-8:
 * the first one where fd(h) and fd(2h) agree (no kink within +-2h) is used,
 * with the floor scaled by 1e-6 / h (the rounding error grows as 1/h). */
static int check_param(Detector *d, const DetBatch *b, Model *m, size_t i, double an, const char *what, Tally *t) {
    for (double h = FD_H, floor = FD_FLOOR; h >= FD_H / 100; h /= 10, floor *= 10) {
        const double fd = central(d, b, m, i, h), fd2 = central(d, b, m, i, 2 * h);
        double den = fabs(fd) > fabs(an) ? fabs(fd) : fabs(an);
        den = den > floor ? den : floor;
        if (fabs(fd - fd2) / den > FD_TOL) {
            t->kinks++;
            continue;
        }
        const double e = fabs(fd - an) / den;
        t->n++;
        if (e > t->worst) {
            t->worst = e;
            snprintf(t->worst_at, sizeof t->worst_at, "%s[%zu] h %g fd %.12g an %.12g", what, i, h, fd, an);
        }
        if (den > floor) {
            t->n_big++;
            t->worst_big = e > t->worst_big ? e : t->worst_big;
        }
        if (e > FD_TOL) {
            t->failed++;
            CHECK(0, "%s param %zu: fd %.12g analytic %.12g (h %g, err %.3e)", what, i, fd, an, h, e);
        }
        return 1;
    }
    t->skipped++;
    return 0;
}

/* nw weights and nb biases (or all there are) of every trainable layer of m,
 * at random, a draw at a kink replaced by another (see the top) */
#define MAX_DRAWS 12
static void check_model(Detector *d, const DetBatch *b, Model *m, const real *grad, int nw, int nbias, Rng *r,
                        Tally *t) {
    for (int li = 0; li < m->n_layers; li++) {
        const Layer *l = &m->layers[li];
        if (l->frozen) {
            CHECK(l->w_n == 0 || l->w_off >= m->n_trainable, "%s: frozen but trainable", l->name);
            continue;
        }
        const size_t off[2] = {l->w_off, l->b_off}, cnt[2] = {l->w_n, l->b_n};
        const int want[2] = {nw, nbias};
        for (int k = 0; k < 2; k++) {
            if (!cnt[k]) continue;
            CHECK(off[k] + cnt[k] <= m->n_trainable, "%s: a trainable layer's params past n_trainable", l->name);
            char what[96];
            snprintf(what, sizeof what, "%s.%s.%s", m->arch, l->name, k ? "b" : "w");
            const int need = (size_t)want[k] < cnt[k] ? want[k] : (int)cnt[k];
            int done = 0, draws = 0;
            while (done < need && draws < MAX_DRAWS) {
                const size_t i = off[k] + (size_t)(rng_uniform(r) * (double)cnt[k]) % cnt[k];
                draws++;
                done += check_param(d, b, m, i, grad[i], what, t);
            }
            CHECK(done == need, "%s: %d of %d draws at a kink (fd(h) != fd(2h)): the loss is not smooth there",
                  what, draws - done, draws);
        }
    }
}

int main(int argc, char **argv) {
    /* one thread: the check is of the arithmetic, and 1 vs 2 threads bitwise is test_detect_threads' (the
     * barriers of tiny parallel loops on a loaded 2-core machine would make this run 10x longer) */
    engine_set_threads(1);
    /* argv[1]: another seed for the model, the images and the sample (the default 7 is the test) */
    const uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 7;
    DetectOptions o = detect_defaults();
    o.width = 4;
    o.binary_kind = CONV_FP32;
    o.rpn_conv = RPN_CONV_FP32;
    o.bn_gamma = 1; /* 1e-8 would leave every residual branch's gradient ~0: nothing to check */
    o.box_noise = BOX_NOISE_OFF;
    o.freeze_targets = 1;
    o.scales[0] = 2, o.scales[1] = 4, o.scales[2] = 8;
    o.tgt.rois_per_image = 8;
    o.tgt.pre_nms_train = 60, o.tgt.post_nms_train = 20;
    o.tgt.pre_nms_test = 60, o.tgt.post_nms_test = 20;
    o.w_rpn_reg = 0.3, o.w_head_reg = 0.2;
    o.w_rpn_prior = o.w_head_prior = 0;
    Rng r = rng_stream(seed, RNG_TEST, 0, 0);
    DetBatch b;
    make_batch(&b, o.max_gt, &r);
    Detector d;
    if (detector_init(&d, &o, 2, b.H, b.W, seed + 1, g_err, sizeof g_err)) {
        printf("FAIL init: %s\n", g_err);
        return 1;
    }
    /* the head's Linear layers start at N(0, 0.01) (cls) and N(0, 0.001)
     * (box): 30x, so that the class scores and the box outputs (log-variance
     * and mu) are not ~0 and their gradients not negligible */
    for (int li = 0; li < d.head.n_layers; li++)
        if (!strcmp(d.head.layers[li].name, "bbox_pred") || !strcmp(d.head.layers[li].name, "cls_score"))
            for (size_t i = 0; i < d.head.layers[li].w_n; i++) d.head.params[d.head.layers[li].w_off + i] *= 30;
    DetectLosses L;
    CHECK(detect_train_step(&d, &b, 3, 0, &L, g_err, sizeof g_err) == 0, "step: %s", g_err);
    printf("loss %.6f: rpn_cls %.5f rpn_box %.5f rcnn_cls %.5f rcnn_box %.5f rpn_reg %.5f head_reg %.5f; "
           "fg anchors %ld, bg %ld, fg RoIs %ld, bg %ld\n",
           L.total, L.rpn_cls, L.rpn_box, L.rcnn_cls, L.rcnn_box, L.rpn_reg, L.head_reg, L.rpn_fg, L.rpn_bg, L.roi_fg,
           L.roi_bg);
    CHECK(L.rpn_fg > 0 && L.rpn_bg > 0 && L.roi_fg > 0 && L.roi_bg > 0 && L.rpn_box > 0 && L.rcnn_box > 0 &&
              L.rpn_reg > 0 && L.head_reg > 0,
          "every loss term must take part (anchors fg %ld bg %ld, RoIs fg %ld bg %ld)", L.rpn_fg, L.rpn_bg, L.roi_fg,
          L.roi_bg);
    /* the analytic gradients of the frozen targets' loss (a second step: the same) */
    const double l0 = loss_at(&d, &b);
    CHECK(l0 == L.total, "frozen targets: the same parameters give the same loss (%.17g vs %.17g)", l0, L.total);
    real *gb = tu_alloc(d.base.n_params), *gh = tu_alloc(d.head.n_params);
    memcpy(gb, d.base.grads, d.base.n_params * sizeof *gb);
    memcpy(gh, d.head.grads, d.head.n_params * sizeof *gh);

    Tally t = {0};
    check_model(&d, &b, &d.base, gb, 2, 1, &r, &t);
    check_model(&d, &b, &d.head, gh, 2, 1, &r, &t);
    printf("%d parameters checked (%d steps h rejected at a kink, %d more draws skipped at one), %d failed; worst "
           "error %.3e (%s); worst relative error of the %d gradients above the floor: %.3e\n", t.n, t.kinks,
           t.skipped, t.failed, t.worst, t.worst_at, t.n_big, t.worst_big);
    CHECK(t.n >= 100, "only %d parameters sampled", t.n);
    free(gb);
    free(gh);
    detector_free(&d);
    det_batch_free(&b);
    return tu_finish("detect_grad");
}
