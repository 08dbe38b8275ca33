/* The CycleBNN binary convolution (method.md 3.1-3.2; the authors'
 * lowbinary/bin_recu.py BinarizeConv2d), forward and backward, with every
 * deviation from the authors' code a named option whose default is faithful.
 *
 * Forward (training), in execution order:
 *   W1 = W * 2*sqrt(2) / sqrt(var_unbiased(W[o]) + 1e-5)        weight standardisation (E2), per out channel
 *        (optional: ReCU balancing subtracts the channel mean first; ReCU clamp)
 *   A0 = A / sqrt(var_unbiased(A[n]) + 1e-5)                     per-sample normalisation (E3), train only
 *   Wq = minmax_uniform(k) per output channel of W1              (E4, E5)
 *   Aq = minmax_uniform(k) per tensor of A0, range from the batch (train) or the 0.9 running range (eval)
 *   Bw = sign(Wq), Ba = sign(Aq)                                  sign(0) = 0 (faithful) or +1
 *   Y  = conv2d(Ba, Bw), zero padding (faithful) or -1 padding
 *   out = Y * alpha[o]
 * Backward:
 *   dalpha[o] += sum dout * Y
 *   dY = grad_quant(dout * alpha, g bits, stochastic)              (E8), per-tensor min/max
 *   dBw = conv_wgrad(Ba, dY),  dBa = conv_dgrad(dY, Bw)
 *   dW1 = dBw (ste_sign, STE through Q_k);  dW += Jacobian_E2^T dW1
 *   dA0 = dBa * max(0, 2 - 2|Aq|) (approx_sign at the quantized value, E10) or dBa (ste_sign)
 *   dA += Jacobian_E3^T dA0
 * bits = 0 skips the k-bit quantizers (the reference code's --num_bits 0 before warm-up).
 * Backward accumulates (+=) into dinp, dweight, dalpha like every op (core/ops.h). */
#ifndef CBNN_BINARY_CONV_H
#define CBNN_BINARY_CONV_H

#include <stddef.h>

#include "ops.h"
#include "quant.h"
#include "real.h"

typedef enum { SIGN_ZERO_IS_ZERO = 0, SIGN_ZERO_IS_PLUS_ONE = 1 } SignZero;
typedef enum { ACT_GRAD_APPROX_SIGN = 0, ACT_GRAD_STE = 1 } ActGrad;

typedef struct {
    SignZero sign_zero;     /* faithful: SIGN_ZERO_IS_ZERO (torch.sign) */
    int pad_minus_one;      /* faithful: 0 (PyTorch zero padding of the binary input) */
    ActGrad act_grad;       /* faithful: ACT_GRAD_APPROX_SIGN */
    int act_norm;           /* faithful: 1 (E3 in training) */
    int weight_center;      /* ReCU balancing (per-channel mean subtraction); faithful: 0 (commented out upstream) */
    int recu_clamp;         /* ReCU clamp with tau = clamp_tau; faithful: 0 (the upstream clamp is inert) */
    double clamp_tau;       /* used only when recu_clamp = 1 */
    int grad_quant;         /* quantize the error at the conv output; faithful: 1 */
    int grad_stochastic;    /* stochastic rounding of the error; faithful: 1 */
    int conv_fp32;          /* forward 1-bit conv: 0 = bit-packed (core/bconv_packed.h), 1 = the fp32 conv of
                             * Ba and Bw; bitwise the same out and saved. Default 0; CBNN_BCONV_FP32=1 in the
                             * environment forces 1 for every call. Not a method option (no effect on results). */
    int bwd_fp32;           /* backward products: 0 = integer kernels on the 8-bit error codes
                             * (core/bconv_bwd_int8.h: exact sums, rounded once), used whenever the error is
                             * quantized to 1..8 bits; 1 = fp32 GEMMs (conv2d_backward) of the dequantized
                             * error, as the authors' code computes them (in another summation order). The
                             * two differ by float rounding only. Default 0 (config binary.backward). */
    int save_act_codes;     /* memory: save the activations' k-bit codes (1 byte each) for backward instead of
                             * Aq (4 bytes); every call must then have 1 <= bits <= 8 (forward refuses
                             * otherwise), and saved must be sized with this option. Bitwise the same results. Default 0; the
                             * training loop turns it on when the precision schedule allows (prec_bits_within). */
    int lean_saved;         /* memory (train.memory lean, set per layer by core/layers.c): 1 = the int8 Bw and
                             * the activation codes are not saved but live in scratch; backward rebuilds them
                             * from W and the input with the saved E2/E3 statistics and quantizer range (the
                             * forward's own functions, so the same bytes); 2 = also no Y: the 1-bit conv runs
                             * again (binary_conv_output_rebuild, and backward for dalpha; the input must be
                             * alive then). Saved and scratch must be sized with it. Bitwise the same results.
                             * Default 0. */
} BinaryConvOptions;

/* the faithful defaults */
BinaryConvOptions binary_conv_faithful(void);

/* Sizes. `saved` is what backward needs: one block of bytes holding reals
 * (statistics, Aq), int8 (Bw), uint8 (activation codes) and int16 (Y), each
 * field aligned for a real; binary_conv_saved_bytes is its size for a batch of
 * d->N under opt (opt->save_act_codes and opt->lean_saved matter; NULL = 0), and
 * binary_conv_saved_size the same block counted in reals (it is a whole
 * number of them), for callers that allocate reals. scratch is in reals. */
size_t binary_conv_saved_bytes(const ConvDims *d, const BinaryConvOptions *opt);
size_t binary_conv_saved_size(const ConvDims *d, const BinaryConvOptions *opt);
size_t binary_conv_scratch_size(const ConvDims *d);
/* the scratch under opt (opt->lean_saved adds the rebuilt codes and Bw; NULL: as above) */
size_t binary_conv_scratch_size_opt(const ConvDims *d, const BinaryConvOptions *opt);

/* out [O,C,K,K] = Bw of the last forward, read from saved (sized for d and
 * opt, not lean_saved: a lean block holds no Bw): the binary weights it used,
 * for tools that count sign flips */
void binary_conv_saved_bw(real *out, const void *saved, const ConvDims *d, const BinaryConvOptions *opt);

/* out [N,O,OH,OW]; saved [binary_conv_saved_bytes], aligned for a real;
 * running [2] = (running_zp, running_range) of the activation quantizer,
 * updated in training (momentum 0.9) and read in eval; inp [N,C,H,W];
 * weight [O,C,K,K]; alpha [O]. Returns 0, or -1 (nothing written) when
 * opt->save_act_codes is set and bits is outside [1, 8]: saved was sized for
 * 8-bit codes, a caller's error. */
int binary_conv_forward(real *out, void *saved, real *running, const real *inp, const real *weight,
                        const real *alpha, const ConvDims *d, double bits, int train, const BinaryConvOptions *opt,
                        real *scratch);

/* out [N,O,OH,OW] = Y * alpha again, bitwise what the last binary_conv_forward
 * into saved (sized for d and opt) wrote into its out, from the Y it saved:
 * train.memory lean keeps the saved block, not the output (Y is an exact
 * integer, held exactly as int16 or as a real). */
void binary_conv_output_from_saved(real *out, const void *saved, const real *alpha, const ConvDims *d,
                                   const BinaryConvOptions *opt);
/* the same under opt->lean_saved 2 (no Y saved): the codes and Bw rebuilt from
 * inp and weight, the 1-bit conv run again, times alpha (below 2:
 * binary_conv_output_from_saved); scratch as backward's */
void binary_conv_output_rebuild(real *out, const void *saved, const real *inp, const real *weight,
                                const real *alpha, const ConvDims *d, double bits, const BinaryConvOptions *opt,
                                real *scratch);

/* noise: the U(-0.5, 0.5) draw of each element of the error [N,O,OH,OW] for
 * stochastic rounding (NULL: deterministic rounding), an array or a key of
 * the run's stochastic-rounding stream (QuantNoise, core/quant.h): the
 * engine passes the key and the quantizer draws a block at a time where it
 * uses them, so no whole-tensor noise is stored; tests pass the array they
 * feed PyTorch. dinp, dweight and dalpha may each be NULL (not needed: a
 * frozen conv gets no parameter gradients), skipping what only they need. */
void binary_conv_backward_nz(real *dinp, real *dweight, real *dalpha, const real *dout, const real *inp,
                             const real *weight, const real *alpha, const void *saved, const ConvDims *d,
                             double bits, double grad_bits, const BinaryConvOptions *opt, const QuantNoise *noise,
                             real *scratch);
/* the same with the draws as an array noise [N*O*OH*OW] (or NULL) */
void binary_conv_backward(real *dinp, real *dweight, real *dalpha, const real *dout, const real *inp,
                          const real *weight, const real *alpha, const void *saved, const ConvDims *d,
                          double bits, double grad_bits, const BinaryConvOptions *opt, const real *noise,
                          real *scratch);

/* Optional phase timing of every binary conv, for bench/train_step's breakdown:
 * wall seconds summed over calls into *p until set back to NULL (the default,
 * which costs one branch per phase). One global sink: a benchmark hook, not
 * for concurrent models. */
typedef struct {
    double fwd_weight;    /* E2, k-bit weights, sign, weight packing */
    double fwd_act;       /* E3, k-bit activations, activation packing */
    double fwd_conv;      /* the 1-bit conv Y, and out = Y * alpha */
    double bwd_err;       /* dalpha, dY = dout * alpha, error quantization */
    double bwd_products;  /* Ba and the two products dBw = wgrad(Ba, dY), dBa = dgrad(dY, Bw) */
    double bwd_jacobians; /* the pseudo-gradients and E2 / E3 Jacobians */
    long calls_fwd, calls_bwd;
} BinaryConvProfile;
void binary_conv_set_profile(BinaryConvProfile *p);

#endif
