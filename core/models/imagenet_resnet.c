/* ImageNet ResNet-18 with binary convs (method.md 4.2; ReCU ImageNet ResNet):
 *
 *   stem   conv7x7(C_in -> 64, s2, p3, fp32) -> BN -> HT -> maxpool(3, s2, p1)
 *   stages [64,128,256,512] x 2 blocks, first-block strides [1,2,2,2]
 *   block  (Bi-Real-style shortcut around EACH binary conv)
 *          out  = BN1(BConv1(x));  res = downsample(x) or x;  out  = HT(out + res)
 *          out2 = BN2(BConv2(out));                           out2 = HT(out2 + out)
 *          downsample = fp32 conv1x1(stride 2) -> BN (first block of stages 2-4)
 *   head   global average pool (AvgPool2d(7) at 224x224) -> BatchNorm1d -> Linear
 *   init   every BatchNorm2d gamma = 1e-8 (stem and downsample included); BN1d default */
#include <stdio.h>

#include "models.h"

/* Stage s (1..4) of the ResNet-18 above: two blocks of `planes` channels, the
 * first with stride `stride` (and the fp32 downsample when the shape changes).
 * Layer names "layer<s>.<b>...", as the PyTorch module's, so a checkpoint maps
 * by name (the detector of core/models/frcnn.c reuses stages 1-4). */
int imagenet_resnet18_stage(Model *m, int x, int s, int planes, int stride, real g0) {
    char name[48];
    for (int b = 0; b < 2 && x >= 0; b++) { /* x < 0: a builder failed, m->err says which */
        const int st = b == 0 ? stride : 1;
        int res = x;
        snprintf(name, sizeof name, "layer%d.%d.conv1", s, b);
        int y = model_conv(m, x, planes, 3, st, 1, CONV_BINARY, name);
        snprintf(name, sizeof name, "layer%d.%d.bn1", s, b);
        y = model_bn(m, y, g0, name);
        if (st != 1 || m->layers[x].C != planes) {
            snprintf(name, sizeof name, "layer%d.%d.downsample.conv", s, b);
            res = model_conv(m, x, planes, 1, st, 0, CONV_FP32, name);
            snprintf(name, sizeof name, "layer%d.%d.downsample.bn", s, b);
            res = model_bn(m, res, g0, name);
        }
        snprintf(name, sizeof name, "layer%d.%d.add1", s, b);
        y = model_add(m, y, res, name);
        snprintf(name, sizeof name, "layer%d.%d.ht1", s, b);
        int out = model_hardtanh(m, y, name);
        snprintf(name, sizeof name, "layer%d.%d.conv2", s, b);
        y = model_conv(m, out, planes, 3, 1, 1, CONV_BINARY, name);
        snprintf(name, sizeof name, "layer%d.%d.bn2", s, b);
        y = model_bn(m, y, g0, name);
        snprintf(name, sizeof name, "layer%d.%d.add2", s, b);
        y = model_add(m, y, out, name);
        snprintf(name, sizeof name, "layer%d.%d.ht2", s, b);
        x = model_hardtanh(m, y, name);
    }
    return x;
}

int build_imagenet_resnet18(Model *m, char *err, size_t errlen) {
    static const int widths[4] = {64, 128, 256, 512};
    const real g0 = (real)1e-8;
    int x = model_input(m);
    x = model_conv(m, x, 64, 7, 2, 3, CONV_FP32, "conv1");
    x = model_bn(m, x, g0, "bn1");
    x = model_hardtanh(m, x, "ht1");
    x = model_maxpool(m, x, 3, 2, 1, "maxpool");
    if (x < 0) return model_build_check(m, err, errlen);
    if (m->layers[x].H < 8) {
        snprintf(err, errlen, "imagenet_resnet18 needs inputs of at least 64x64 (got %dx%d)", m->in_H, m->in_W);
        return -1;
    }
    for (int s = 0; s < 4; s++) x = imagenet_resnet18_stage(m, x, s + 1, widths[s], s > 0 ? 2 : 1, g0);
    x = model_global_avgpool(m, x, "avgpool");
    x = model_bn(m, x, 1, "bn_head");
    model_linear(m, x, m->num_classes, "fc");
    return model_build_check(m, err, errlen);
}
