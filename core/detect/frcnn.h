/* The binary Faster R-CNN of Table 3 (method.md 4.4; issue 14) as two graphs,
 * because its head runs on a different batch (the RoIs) than its base (the
 * images):
 *
 *   base  image [3, H, W]
 *           conv1 7x7/2 (fp32) -> bn1 (frozen: eval mode, no gradient) -> maxpool 3/2
 *           (no stem Hardtanh: the detector drops it) -> layer1 -> layer2 -> layer3
 *           = feat [4w, H/16, W/16]                                        output 0
 *         RPN: conv 3x3 4w -> 8w (detect.rpn_conv: BiDet's binary conv with a bias,
 *           CycleBNN's binary conv, or fp32 with a bias) -> BN = rpn_feat  output 1
 *           -> 1x1 cls 2A (bias)                                           output 2
 *           -> 1x1 box 8A (bias; per anchor a: 8a..8a+3 log sigma^2, 8a+4..8a+7 mu)  output 3
 *   head  RoI features [4w, 7, 7] -> layer4 (8w, stride 2) -> spatial mean = fc7  output 2
 *           -> Linear 21 (cls)                                             output 0
 *           -> Linear 8 (box: 4 log sigma^2 then 4 mu, class-agnostic)      output 1
 *
 * w = model.width (64 at paper scale: 256 -> 512 RPN, 512-d fc7). Init: the
 * backbone as the ImageNet ResNet-18 (or from a checkpoint, detect.backbone_init),
 * the RPN conv and 1x1 convs and the cls Linear N(0, 0.01), the box Linear
 * N(0, 0.001), biases 0. Layer names follow the PyTorch modules (conv1, bn1,
 * layer3.1.conv2, ...), so a classification checkpoint maps by name. */
#ifndef CBNN_FRCNN_H
#define CBNN_FRCNN_H

#include "model.h"

typedef enum { RPN_CONV_BIDET = 0, RPN_CONV_CYCLEBNN = 1, RPN_CONV_FP32 = 2 } RpnConvKind;

enum { FRCNN_FEAT = 0, FRCNN_RPN_FEAT = 1, FRCNN_RPN_CLS = 2, FRCNN_RPN_BOX = 3 };
enum { FRCNN_HEAD_CLS = 0, FRCNN_HEAD_BOX = 1, FRCNN_HEAD_FC7 = 2 };

/* Build (not allocate) the base for images of H x W and n_anchors anchors per
 * position, and the head for RoI features of pool x pool with num_classes
 * (21: background + 20). binary_kind: what the backbone's binary convs run
 * (model.conv). bn_gamma: the backbone's BN gamma init (1e-8 as the ImageNet
 * recipe). 0, or -1 with a message. */
int frcnn_build_base(Model *m, int width, RpnConvKind rpn, ConvKind binary_kind, int H, int W, int n_anchors,
                     real bn_gamma, char *err, size_t errlen);
int frcnn_build_head(Model *m, int width, ConvKind binary_kind, int pool, int num_classes, real bn_gamma,
                     char *err, size_t errlen);

#endif
