/* The detector's two graphs (core/detect/frcnn.h). */
#include "frcnn.h"

#include <stdio.h>

#include "bidet_conv.h"
#include "models.h"

int frcnn_build_base(Model *m, int width, RpnConvKind rpn, ConvKind binary_kind, int H, int W, int n_anchors,
                     real bn_gamma, char *err, size_t errlen) {
    model_init(m, "frcnn_resnet18_base", 3, H, W, 2);
    m->binary_kind = binary_kind;
    int x = model_input(m);
    x = model_conv(m, x, width, 7, 2, 3, CONV_FP32, "conv1");
    const int conv1 = x;
    x = model_bn(m, x, bn_gamma, "bn1");
    const int bn1 = x;
    x = model_maxpool(m, x, 3, 2, 1, "maxpool");
    for (int s = 0; s < 3; s++) x = imagenet_resnet18_stage(m, x, s + 1, width << s, s > 0 ? 2 : 1, bn_gamma);
    const int feat = x;
    const int rpn_ch = 8 * width;
    int r;
    if (rpn == RPN_CONV_BIDET) r = model_bidet_conv(m, feat, rpn_ch, 3, 1, 1, "rpn.conv");
    else if (rpn == RPN_CONV_CYCLEBNN) r = model_conv(m, feat, rpn_ch, 3, 1, 1, CONV_BINARY, "rpn.conv");
    else r = model_conv_bias(m, feat, rpn_ch, 3, 1, 1, "rpn.conv");
    if (r >= 0) m->layers[r].init_std = 0.01;
    r = model_bn(m, r, 1, "rpn.bn");
    const int rpn_feat = r;
    int cls = model_conv_bias(m, rpn_feat, 2 * n_anchors, 1, 1, 0, "rpn.cls_score");
    int box = model_conv_bias(m, rpn_feat, 8 * n_anchors, 1, 1, 0, "rpn.bbox_pred");
    if (cls >= 0) m->layers[cls].init_std = 0.01;
    if (box >= 0) m->layers[box].init_std = 0.01;
    /* the order of the marks is the FRCNN_* output order */
    model_mark_output(m, feat);
    model_mark_output(m, rpn_feat);
    model_mark_output(m, cls);
    model_mark_output(m, box);
    /* fix_real_conv: conv1 and bn1 are not trained (bn1 in eval mode) */
    model_freeze(m, conv1);
    model_freeze(m, bn1);
    if (model_build_check(m, err, errlen)) return -1;
    if (m->layers[feat].H < 2 || m->layers[feat].W < 2) {
        snprintf(err, errlen, "frcnn_resnet18: a %dx%d image gives a %dx%d feature map at stride 16; it needs at "
                 "least 2x2 (images of at least 32x32)", W, H, m->layers[feat].W, m->layers[feat].H);
        return -1;
    }
    return 0;
}

int frcnn_build_head(Model *m, int width, ConvKind binary_kind, int pool, int num_classes, real bn_gamma,
                     char *err, size_t errlen) {
    model_init(m, "frcnn_resnet18_head", 4 * width, pool, pool, num_classes);
    m->binary_kind = binary_kind;
    int x = model_input(m);
    x = imagenet_resnet18_stage(m, x, 4, 8 * width, 2, bn_gamma);
    const int fc7 = model_global_avgpool(m, x, "fc7");
    const int cls = model_linear(m, fc7, num_classes, "cls_score");
    const int box = model_linear(m, fc7, 8, "bbox_pred");
    if (cls >= 0) m->layers[cls].init_std = 0.01;
    if (box >= 0) m->layers[box].init_std = 0.001;
    model_mark_output(m, cls);
    model_mark_output(m, box);
    model_mark_output(m, fc7);
    model_input_grad(m, 1); /* RoIAlign's backward needs the RoI features' gradient */
    return model_build_check(m, err, errlen);
}
