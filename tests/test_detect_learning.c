/* The detector learns (issue 14): the whole Faster R-CNN of tasks/detect.c
 * (fp32 convs, width 16, shorter side 192, anchor scales {2, 4, 8}, 64 RoIs
 * per image) overfits 8 synthetic VOC images (datasets/synth_voc.c) in 300
 * steps: the train-set mAP07 goes from <= 0.05 untrained to >= 0.9.
 * Also: two steps from the same seed give bitwise the same losses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "detect.h"
#include "optim.h"
#include "testutil.h"

static char g_err[4096];

/* mAP07 over the classes with GT, detections of every test entry */
static double evaluate(Detector *d, const VocSet *s, const DetData *test, const VocGtSet *g) {
    DetBatch b = {0};
    Detection *dets = NULL;
    VocDet *all = NULL;
    int dcap = 0;
    long n_all = 0, cap = 0;
    double map = -1;
    if (detect_dataset(d, test, det_data_entries(test), 1, &b, &dets, &dcap, &all, &n_all, &cap, NULL, g_err,
                       sizeof g_err) == 0) {
        double ap[20];
        int na = 0;
        for (int c = 1; c <= 20; c++) {
            VocApResult r;
            if (voc_ap_class(g->img, s->n, all, n_all, c, 0.5, &r, g_err, sizeof g_err)) break;
            ap[na++] = r.ap07;
        }
        if (na == 20) map = voc_ap_mean(ap, na);
    }
    if (map < 0) printf("FAIL evaluate: %s\n", g_err);
    free(all);
    free(dets);
    det_batch_free(&b);
    return map;
}

static void adam(Model *m, double lr, long t) {
    AdamWConfig a = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
    adamw_step(m->params, m->grads, m->opt_m, m->opt_v, m->n_trainable, lr, &a, t);
}

int main(void) {
    char dir[] = "/tmp/cbnn_detlearn_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    if (synth_voc_write(dir, 16, 7, g_err, sizeof g_err)) {
        printf("FAIL synth: %s\n", g_err);
        return 1;
    }
    char dk[600];
    snprintf(dk, sizeof dk, "%s/VOCdevkit", dir);
    const char *sp[] = {"VOC2012/trainval", NULL};
    VocSet *s = voc_open(dk, sp, 1, g_err, sizeof g_err);
    CHECK(s != NULL, "open: %s", g_err);
    if (!s) return 1;
    DetDataOptions to = det_data_options_default(1), eo = det_data_options_default(0);
    to.min_size = eo.min_size = 192;
    to.flip = 0;
    DetData *train = det_data_open(s, &to, g_err, sizeof g_err), *test = det_data_open(s, &eo, g_err, sizeof g_err);
    CHECK(train && test, "det_data_open: %s", g_err);
    const long n = det_data_entries(train);
    printf("overfitting %ld synthetic images\n", n);
    int mh, mw, th, tw;
    const int B = (int)(n < 8 ? n : 8);
    det_data_max_size(train, B, &mh, &mw);
    det_data_max_size(test, 1, &th, &tw);
    mh = mh > th ? mh : th;
    mw = mw > tw ? mw : tw;

    DetectOptions o = detect_defaults();
    o.width = 16;
    o.binary_kind = CONV_FP32;
    o.rpn_conv = RPN_CONV_FP32;
    o.bn_gamma = 1;
    o.scales[0] = 2, o.scales[1] = 4, o.scales[2] = 8;
    o.tgt.rois_per_image = 64;
    Detector d;
    CHECK(detector_init(&d, &o, B, mh, mw, 1, g_err, sizeof g_err) == 0, "init: %s", g_err);
    VocGtSet g;
    CHECK(voc_gt_from_set(s, &g) == 0, "out of memory");
    const double map0 = evaluate(&d, s, test, &g);
    printf("untrained mAP07 %.4f\n", map0);
    CHECK(map0 >= 0 && map0 <= 0.05, "untrained mAP07 %.4f should be <= 0.05", map0);

    DetBatch b = {0};
    int32_t ent[8];
    const double t0 = now_seconds();
    const int steps = 300;
    for (long i = 0; i < steps; i++) {
        const long per = det_data_batches(train, B);
        det_data_batch_entries(train, B, 1, i / per, i % per, ent);
        if (det_batch_load(train, ent, B, 1, i / per, &b, g_err, sizeof g_err)) {
            printf("FAIL load: %s\n", g_err);
            return 1;
        }
        DetectLosses L;
        if (detect_train_step(&d, &b, 1, i, &L, g_err, sizeof g_err)) {
            printf("FAIL step %ld: %s\n", i, g_err);
            return 1;
        }
        const double lr = i < 250 ? 2e-3 : 2e-4;
        adam(&d.base, lr, i + 1);
        adam(&d.head, lr, i + 1);
        if (i % 25 == 0 || i == steps - 1)
            printf("step %3ld loss %.4f (rpn %.4f %.4f, rcnn %.4f %.4f) fg %ld/%ld  %.1fs\n", i, L.total, L.rpn_cls,
                   L.rpn_box, L.rcnn_cls, L.rcnn_box, L.rpn_fg, L.roi_fg, now_seconds() - t0);
    }
    const double map1 = evaluate(&d, s, test, &g);
    printf("trained mAP07 %.4f after %d steps, %.1f s\n", map1, steps, now_seconds() - t0);
    CHECK(map1 >= 0.9, "trained mAP07 %.4f should be >= 0.9", map1);
    det_batch_free(&b);
    detector_free(&d);
    voc_gt_free(&g);
    det_data_close(train);
    det_data_close(test);
    voc_close(s);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return tu_finish("detect_learning");
}
