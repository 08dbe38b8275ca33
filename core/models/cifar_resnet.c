/* CIFAR-10 ResNets with binary convs (method.md 4.1; ReCU resnet2.py):
 *
 *   stem   conv3x3(C_in -> w0, s1, p1, fp32) -> BN            (no activation after the stem)
 *   stages widths w_s, blocks n_s, first-block stride 1 then 2
 *   block  out = HT(BN1(BConv1(x)));  out = BN2(BConv2(out));  out = HT(out + shortcut(x))
 *          shortcut = identity, or option A when the stride or the width changes:
 *          AvgPool2d(2) then zero channels, planes/4 on each side
 *   head   global average pool -> flatten -> BatchNorm1d -> Linear(-> classes)
 *
 * ResNet-18: blocks [2,2,2,2], widths [64,128,256,512]. ResNet-20: [3,3,3],
 * [16,32,64]. ResNet-8: [1,1,1], [16,32,64] (a small member of the family
 * for quick runs).
 *
 * Inputs whose side is not a multiple of 2^(stages-1) (28x28 Fashion-MNIST in
 * ResNet-18) would reach a stride-2 stage with an odd size, where AvgPool2d(2)
 * and the strided conv disagree. The stem's padding then grows by the missing
 * amount / 2, which is exactly zero-padding the (normalised) image to the next
 * multiple (28 -> 32 for ResNet-18) before the stem. */
#include <stdio.h>

#include "models.h"

int build_cifar_resnet(Model *m, const int *blocks, const int *widths, int n_stages, char *err, size_t errlen) {
    int mult = 1 << (n_stages - 1);
    int padded = (m->in_H + mult - 1) / mult * mult;
    if (m->in_H != m->in_W || (padded - m->in_H) % 2) {
        snprintf(err, errlen, "%s needs a square input whose side can be padded evenly to a multiple of %d (got %dx%d)",
                 m->arch, mult, m->in_H, m->in_W);
        return -1;
    }
    int stem_pad = 1 + (padded - m->in_H) / 2;
    char name[48];
    int x = model_input(m);
    x = model_conv(m, x, widths[0], 3, 1, stem_pad, CONV_FP32, "conv1");
    x = model_bn(m, x, 1, "bn1");
    for (int s = 0; s < n_stages && x >= 0; s++) { /* x < 0: a builder failed, m->err says which */
        for (int b = 0; b < blocks[s] && x >= 0; b++) {
            int stride = (s > 0 && b == 0) ? 2 : 1;
            int planes = widths[s];
            int in_planes = m->layers[x].C;
            int block_in = x;
            snprintf(name, sizeof name, "layer%d.%d.conv1", s + 1, b);
            int y = model_conv(m, x, planes, 3, stride, 1, CONV_BINARY, name);
            snprintf(name, sizeof name, "layer%d.%d.bn1", s + 1, b);
            y = model_bn(m, y, 1, name);
            snprintf(name, sizeof name, "layer%d.%d.ht1", s + 1, b);
            y = model_hardtanh(m, y, name);
            snprintf(name, sizeof name, "layer%d.%d.conv2", s + 1, b);
            y = model_conv(m, y, planes, 3, 1, 1, CONV_BINARY, name);
            snprintf(name, sizeof name, "layer%d.%d.bn2", s + 1, b);
            y = model_bn(m, y, 1, name);
            int sc = block_in;
            if (stride != 1 || in_planes != planes) {
                snprintf(name, sizeof name, "layer%d.%d.shortcut", s + 1, b);
                sc = model_shortcut_a(m, block_in, stride, planes, name);
            }
            snprintf(name, sizeof name, "layer%d.%d.add", s + 1, b);
            y = model_add(m, y, sc, name);
            snprintf(name, sizeof name, "layer%d.%d.ht2", s + 1, b);
            x = model_hardtanh(m, y, name);
        }
    }
    x = model_global_avgpool(m, x, "avgpool");
    x = model_bn(m, x, 1, "bn_head");
    model_linear(m, x, m->num_classes, "fc");
    return model_build_check(m, err, errlen);
}
