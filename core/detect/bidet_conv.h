/* BiDet's binary convolution (the RPN conv of the reference detector,
 * binary_utils.BinarizeConv2d with its defaults weight_magnitude_aware and
 * activation_value_aware; method.md 4.4), which is not CycleBNN's:
 *   Ba = sign(x), sign(0) = 0 (torch.sign), and the sign map is padded with
 *        -1 (F.pad(value=-1)) before an unpadded conv
 *   Wb = a_o * sign(W), a_o = mean |W[o]| over the channel's C*K*K weights
 *   y  = conv2d(Ba, Wb) + bias
 * Backward, as autograd computes it through their Functions:
 *   dx = dBa * (2 - 2|x|) for |x| < 1, else 0; at x = 0 it is 2 (SignTwoOrders:
 *        2 - 2x on [0, 1), 2 + 2x on [-1, 0), 0 elsewhere = max(0, 2 - 2|x|)),
 *        dBa = conv_dgrad(dy, Wb) on the interior only: the -1 border is a
 *        constant, so its gradient goes nowhere
 *   dW = a_o * gW + sign(W) / n * sum_j(gW_j * sign(W_j)) over the channel,
 *        gW = conv_wgrad(padded Ba, dy), n = C*K*K: the straight-through
 *        sign (SignSTEWeight passes the gradient unchanged) times a_o, plus
 *        the path through mean|W| (d|w|/dw = sign(w), 0 at 0)
 *   dbias = sum dy
 * Built on core/ops' conv2d on a padded copy of the sign map (pad 0 there).
 * Nothing is saved between forward and backward: the backward recomputes
 * the sign map and Wb from x and W (both cheap next to the convs).
 * The layer: model_bidet_conv (core/model.h), kind "bidet_conv". */
#ifndef CBNN_BIDET_CONV_H
#define CBNN_BIDET_CONV_H

#include <stddef.h>

#include "ops.h"
#include "real.h"

/* d: the conv as a layer sees it, on the unpadded input [N, C, H, W] with
 * d->pad the width of the -1 border (conv_dims(N, C, H, W, O, K, stride, pad)).
 * The scratch, in reals, both directions need (the backward's is the larger). */
size_t bidet_conv_scratch_size(const ConvDims *d);

/* torch.sign: -1, 0, +1 (NaN stays NaN) */
static inline real bidet_sign(real x) { return x > 0 ? (real)1 : x < 0 ? (real)-1 : x == 0 ? (real)0 : x; }
/* SignTwoOrders' derivative: max(0, 2 - 2|x|) */
static inline real bidet_sign_grad(real x) {
    const real a = x < 0 ? -x : x;
    return a < 1 ? (real)2 - 2 * a : (real)0;
}

/* wb[o, :] = a_o * sign(w[o, :]), a_o = mean |w[o, :]| (double, fixed order);
 * alpha [O] receives a_o when not NULL */
void bidet_weight_binarize(real *wb /* [O, CK] */, real *alpha /* [O] or NULL */, const real *w /* [O, CK] */, int O,
                           size_t CK);

/* out = conv2d(pad_-1(sign(inp)), Wb) + bias (bias NULL: none); overwrites out */
void bidet_conv_forward(real *out /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                        const real *weight /* [O,C,K,K] */, const real *bias /* [O] or NULL */, const ConvDims *d,
                        real *scratch);
/* accumulates (+=) into dinp, dweight, dbias; each may be NULL (not needed /
 * a frozen layer) */
void bidet_conv_backward(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,K,K] or NULL */,
                         real *dbias /* [O] or NULL */, const real *dout /* [N,O,OH,OW] */,
                         const real *inp /* [N,C,H,W] */, const real *weight /* [O,C,K,K] */, const ConvDims *d,
                         real *scratch);

#endif
