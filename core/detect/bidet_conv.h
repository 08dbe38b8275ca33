/* BiDet's binary convolution (the RPN conv of the reference detector,
 * binary_utils.BinarizeConv2d; method.md 4.4), which is not CycleBNN's:
 *   Ba = sign(x), sign(0) = 0, and the sign map is padded with -1
 *   Wb = a_o * sign(W), a_o = mean |W[o]| per output channel (XNOR scaling)
 *   y  = conv2d(Ba, Wb) + bias
 * Backward (their SignTwoOrders / weight STE):
 *   dx = (conv_dgrad(dy, Wb)) * max(0, 2 - 2|x|)
 *   dW = a_o * gW + sign(W) / n * sum(gW * sign(W)) over the channel, gW =
 *        conv_wgrad(Ba, dy), n = the channel's weight count
 *   dbias = sum dy
 * The layer: model_bidet_conv (core/model.h), kind "bidet_conv". */
#ifndef CBNN_BIDET_CONV_H
#define CBNN_BIDET_CONV_H

#include "ops.h"
#include "real.h"

#endif
