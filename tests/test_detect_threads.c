/* The detector does not depend on the thread count (issue 14): two detectors
 * from the same seed, one run with 1 OpenMP thread and one with 2, train 3
 * steps each (AdamW on both graphs) on the same synthetic VOC batches, then
 * detect on two test images. The losses, every parameter and BN buffer of
 * both graphs, and the detections must be bitwise equal.
 *
 * The configuration exercises every random and every threaded path: the
 * CycleBNN binary convs (cyclic-style precision: bits 4, grad_bits 8, so the
 * activation quantizer and the error quantizer's stochastic rounding run),
 * BiDet's binary RPN conv, box noise on in training and at test
 * (BOX_NOISE_ALWAYS, the reference), the IB terms with nonzero weights (the
 * head prior's NMS included), anchor and RoI sampling. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "detect.h"
#include "optim.h"
#include "testutil.h"

static char g_err[4096];

#define STEPS 3
#define TEST_IMAGES 2

typedef struct {
    DetectLosses L[STEPS];
    Detection *det[TEST_IMAGES];
    int n_det[TEST_IMAGES];
    real *params[2], *buffers[2];
    size_t n_params[2], n_buffers[2];
} RunOut;

static void adam(Model *m, double lr, long t) {
    AdamWConfig a = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-4};
    adamw_step(m->params, m->grads, m->opt_m, m->opt_v, m->n_trainable, lr, &a, t);
}

static real *dup(const real *x, size_t n) {
    real *p = tu_alloc(n);
    memcpy(p, x, n * sizeof *p);
    return p;
}

/* a fresh detector, trained and run with `threads` threads; 0 or -1 */
static int run(int threads, const DetectOptions *o, DetData *train, DetData *test, int B, int mh, int mw, RunOut *out) {
    engine_set_threads(threads);
    CHECK(omp_get_max_threads() == threads, "asked for %d threads, OpenMP gives %d", threads, omp_get_max_threads());
    Detector d;
    if (detector_init(&d, o, B, mh, mw, 11, g_err, sizeof g_err)) {
        printf("FAIL init: %s\n", g_err);
        return -1;
    }
    DetBatch b = {0};
    int32_t ent[8];
    Model *ms[2] = {&d.base, &d.head};
    for (long i = 0; i < STEPS; i++) {
        det_data_batch_entries(train, B, 2, 0, i % det_data_batches(train, B), ent);
        if (det_batch_load(train, ent, B, 2, 0, &b, g_err, sizeof g_err)) {
            printf("FAIL load: %s\n", g_err);
            return -1;
        }
        for (int k = 0; k < 2; k++) ms[k]->bits = 4, ms[k]->grad_bits = 8, ms[k]->step = i;
        if (detect_train_step(&d, &b, 2, i, &out->L[i], g_err, sizeof g_err)) {
            printf("FAIL step %ld (%d threads): %s\n", i, threads, g_err);
            return -1;
        }
        adam(&d.base, 1e-3, i + 1);
        adam(&d.head, 1e-3, i + 1);
    }
    for (int e = 0; e < TEST_IMAGES; e++) {
        int32_t one = e;
        if (det_batch_load(test, &one, 1, 2, 0, &b, g_err, sizeof g_err)) {
            printf("FAIL load test: %s\n", g_err);
            return -1;
        }
        int cap = 0;
        out->det[e] = NULL;
        out->n_det[e] = detect_image(&d, &b, 2, e, &out->det[e], &cap, NULL, g_err, sizeof g_err);
        if (out->n_det[e] < 0) {
            printf("FAIL detect: %s\n", g_err);
            return -1;
        }
    }
    for (int k = 0; k < 2; k++) {
        out->n_params[k] = ms[k]->n_params, out->n_buffers[k] = ms[k]->n_buffers;
        out->params[k] = dup(ms[k]->params, ms[k]->n_params);
        out->buffers[k] = dup(ms[k]->buffers, ms[k]->n_buffers);
    }
    det_batch_free(&b);
    detector_free(&d);
    return 0;
}

static void run_free(RunOut *r) {
    for (int e = 0; e < TEST_IMAGES; e++) free(r->det[e]);
    for (int k = 0; k < 2; k++) free(r->params[k]), free(r->buffers[k]);
}

int main(void) {
    char dir[] = "/tmp/cbnn_detthreads_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    if (synth_voc_write(dir, 8, 3, g_err, sizeof g_err)) {
        printf("FAIL synth: %s\n", g_err);
        return 1;
    }
    char dk[600];
    snprintf(dk, sizeof dk, "%s/VOCdevkit", dir);
    const char *sp[] = {"VOC2012/trainval", NULL};
    VocSet *s = voc_open(dk, sp, 1, g_err, sizeof g_err);
    if (!s) {
        printf("FAIL open: %s\n", g_err);
        return 1;
    }
    DetDataOptions to = det_data_options_default(1), eo = det_data_options_default(0);
    to.min_size = eo.min_size = 96;
    DetData *train = det_data_open(s, &to, g_err, sizeof g_err), *test = det_data_open(s, &eo, g_err, sizeof g_err);
    if (!train || !test) {
        printf("FAIL det_data_open: %s\n", g_err);
        return 1;
    }
    const int B = 2;
    int mh, mw, th, tw;
    det_data_max_size(train, B, &mh, &mw);
    det_data_max_size(test, 1, &th, &tw);
    mh = mh > th ? mh : th;
    mw = mw > tw ? mw : tw;

    DetectOptions o = detect_defaults();
    o.width = 8;
    o.binary_kind = CONV_BINARY;
    o.rpn_conv = RPN_CONV_BIDET;
    o.bn_gamma = 1; /* not the recipe's 1e-8: every residual branch carries signal */
    o.box_noise = BOX_NOISE_ALWAYS;
    o.scales[0] = 2, o.scales[1] = 4, o.scales[2] = 8;
    o.tgt.rois_per_image = 32;
    o.tgt.pre_nms_train = 300, o.tgt.post_nms_train = 60;
    o.tgt.pre_nms_test = 300, o.tgt.post_nms_test = 40;
    o.w_rpn_prior = 0.2, o.w_rpn_reg = 0.1, o.w_head_prior = 0.2, o.w_head_reg = 0.1;
    o.head_prior_score = 0.0; /* an untrained head's scores are ~1/21: let them all into the prior */
    o.test_score = 0.0;

    RunOut r1, r2;
    if (run(1, &o, train, test, B, mh, mw, &r1) || run(2, &o, train, test, B, mh, mw, &r2)) return 1;
    for (int i = 0; i < STEPS; i++) {
        printf("step %d: loss %.9g (rpn %.6g %.6g rcnn %.6g %.6g, priors %.6g %.6g, regs %.6g %.6g)\n", i,
               r1.L[i].total, r1.L[i].rpn_cls, r1.L[i].rpn_box, r1.L[i].rcnn_cls, r1.L[i].rcnn_box, r1.L[i].rpn_prior,
               r1.L[i].head_prior, r1.L[i].rpn_reg, r1.L[i].head_reg);
        CHECK(memcmp(&r1.L[i], &r2.L[i], sizeof r1.L[i]) == 0, "step %d: losses differ with 1 and 2 threads "
              "(total %.17g vs %.17g)", i, r1.L[i].total, r2.L[i].total);
        CHECK(r1.L[i].total > 0 && r1.L[i].head_prior != 0 && r1.L[i].rpn_fg > 0 && r1.L[i].roi_fg > 0,
              "step %d: every term should take part", i);
    }
    static const char *names[2] = {"base", "head"};
    for (int k = 0; k < 2; k++) {
        CHECK(r1.n_params[k] == r2.n_params[k] &&
                  memcmp(r1.params[k], r2.params[k], r1.n_params[k] * sizeof(real)) == 0,
              "%s: parameters differ with 1 and 2 threads after %d steps", names[k], STEPS);
        CHECK(r1.n_buffers[k] == r2.n_buffers[k] &&
                  memcmp(r1.buffers[k], r2.buffers[k], r1.n_buffers[k] * sizeof(real)) == 0,
              "%s: BN / quantizer buffers differ with 1 and 2 threads", names[k]);
    }
    for (int e = 0; e < TEST_IMAGES; e++) {
        printf("test image %d: %d detections\n", e, r1.n_det[e]);
        CHECK(r1.n_det[e] > 0, "test image %d: no detection to compare", e);
        CHECK(r1.n_det[e] == r2.n_det[e] &&
                  (r1.n_det[e] <= 0 || memcmp(r1.det[e], r2.det[e], (size_t)r1.n_det[e] * sizeof(Detection)) == 0),
              "test image %d: detections differ with 1 and 2 threads (%d vs %d)", e, r1.n_det[e], r2.n_det[e]);
    }
    run_free(&r1);
    run_free(&r2);
    det_data_close(train);
    det_data_close(test);
    voc_close(s);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return tu_finish("detect_threads");
}
