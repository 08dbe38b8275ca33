/* model_build(): architecture names of the YAML (model.arch) -> builders. */
#include <stdio.h>
#include <string.h>

#include "models.h"

static const int RESNET18_BLOCKS[4] = {2, 2, 2, 2}, RESNET18_WIDTHS[4] = {64, 128, 256, 512};
static const int RESNET20_BLOCKS[3] = {3, 3, 3}, RESNET20_WIDTHS[3] = {16, 32, 64};
static const int RESNET8_BLOCKS[3] = {1, 1, 1};

static const char *const ARCHS[] = {"cifar_resnet18", "cifar_resnet20", "cifar_resnet8", "imagenet_resnet18",
                                    "vgg_small"};

int model_arch_known(const char *arch) {
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS; i++)
        if (!strcmp(arch, ARCHS[i])) return 1;
    return 0;
}

int model_build(Model *m, const char *arch, ConvKind binary_kind, int C, int H, int W, int num_classes, char *err,
                size_t errlen) {
    model_init(m, arch, C, H, W, num_classes);
    m->binary_kind = binary_kind;
    int rc;
    if (!strcmp(arch, "cifar_resnet18")) rc = build_cifar_resnet(m, RESNET18_BLOCKS, RESNET18_WIDTHS, 4, err, errlen);
    else if (!strcmp(arch, "cifar_resnet20")) rc = build_cifar_resnet(m, RESNET20_BLOCKS, RESNET20_WIDTHS, 3, err, errlen);
    else if (!strcmp(arch, "cifar_resnet8")) rc = build_cifar_resnet(m, RESNET8_BLOCKS, RESNET20_WIDTHS, 3, err, errlen);
    else if (!strcmp(arch, "imagenet_resnet18")) rc = build_imagenet_resnet18(m, err, errlen);
    else if (!strcmp(arch, "vgg_small")) rc = build_vgg_small(m, err, errlen);
    else {
        snprintf(err, errlen, "unknown architecture '%s' (known: cifar_resnet18, cifar_resnet20, cifar_resnet8, "
                 "imagenet_resnet18, vgg_small)", arch);
        return -1;
    }
    /* the builders end with model_build_check; checked again so that a builder
     * which forgets cannot hand out a half-built graph */
    return rc ? rc : model_build_check(m, err, errlen);
}
