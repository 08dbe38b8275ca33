/* Architecture builders (one file each), called through model_build(). Each
 * returns 0, or -1 with a message in err: its own refusal of the input
 * geometry, or the first layer builder's error (model_build_check). */
#ifndef CBNN_MODELS_H
#define CBNN_MODELS_H

#include "model.h"

int build_cifar_resnet(Model *m, const int *blocks, const int *widths, int n_stages, char *err, size_t errlen);
int build_imagenet_resnet18(Model *m, char *err, size_t errlen);
int build_vgg_small(Model *m, char *err, size_t errlen);
/* stage s (1..4) of build_imagenet_resnet18 on layer x: its output layer (-1 on a builder error) */
int imagenet_resnet18_stage(Model *m, int x, int s, int planes, int stride, real g0);

#endif
