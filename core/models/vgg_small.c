/* VGG-small with binary convs (method.md 4.3; arch cifar10_vgg_small):
 *
 *   conv0 fp32 C_in->128 -> BN -> HT
 *   BConv 128->128 -> MaxPool2 -> BN -> HT
 *   BConv 128->256 -> BN -> HT
 *   BConv 256->256 -> MaxPool2 -> BN -> HT
 *   BConv 256->512 -> BN -> HT
 *   BConv 512->512 -> MaxPool2 -> BN -> HT
 *   Linear(512 * H/8 * W/8 -> classes), fp32 (8192 at 32x32)
 *   init: convs N(0, sqrt(2 / (k*k*C_out))), BN gamma 1, Linear N(0, 0.01) with zero bias */
#include <math.h>
#include <stdio.h>

#include "models.h"

int build_vgg_small(Model *m, char *err, size_t errlen) {
    static const int out_ch[6] = {128, 128, 256, 256, 512, 512};
    static const int pool_after[6] = {0, 1, 0, 1, 0, 1};
    if (m->in_H < 8 || m->in_W < 8) {
        snprintf(err, errlen, "vgg_small needs inputs of at least 8x8 (got %dx%d)", m->in_H, m->in_W);
        return -1;
    }
    char name[48];
    int x = model_input(m);
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "conv%d", i);
        x = model_conv(m, x, out_ch[i], 3, 1, 1, i == 0 ? CONV_FP32 : CONV_BINARY, name);
        if (x < 0) return model_build_check(m, err, errlen);
        m->layers[x].init_std = sqrt(2.0 / (9.0 * out_ch[i]));
        if (pool_after[i]) {
            snprintf(name, sizeof name, "pool%d", i);
            x = model_maxpool(m, x, 2, 2, 0, name);
        }
        snprintf(name, sizeof name, "bn%d", i);
        x = model_bn(m, x, 1, name);
        snprintf(name, sizeof name, "ht%d", i);
        x = model_hardtanh(m, x, name);
    }
    x = model_linear(m, x, m->num_classes, "fc");
    if (x >= 0) m->layers[x].init_std = 0.01;
    return model_build_check(m, err, errlen);
}
