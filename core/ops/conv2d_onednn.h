/* The oneDNN backend of the fp32 conv (model.fp32_conv: onednn), behind
 * conv2d_forward / conv2d_backward, which dispatch on ConvDims.backend.
 *
 * Same contract as the native conv (core/ops.h): NCHW fp32 in and out, no
 * bias, forward overwrites out, backward accumulates into dinp and dweight.
 * Primitives, reorders and their buffers are oneDNN's business and live in a
 * per-shape cache of this file (one shared workspace, sized to the largest
 * shape seen); the caller's conv scratch is not used.
 *
 * Thread count. oneDNN plans a primitive for the thread count it sees; for
 * the forward and dX that changes which thread computes an output, not how
 * its sum is formed (measured bitwise equal at 1, 2, 3 threads), but its dW
 * splits the batch reduction by thread. So dW runs in chunks fixed by the
 * shape: sample chunks (at most CONV2D_ONEDNN_WGRAD_CHUNKS, fewer where a chunk
 * would have under 256 output pixels; ceil(N / chunks) samples each; their
 * partials added in chunk order), or, where the batch has too few pixels and
 * O is a multiple of 64 (>= 128), chunks of 64 output channels over the whole
 * batch; each chunk through a oneDNN primitive planned and run on one thread.
 * The bits then depend on the shape, not on the thread count (tests/test_conv_onednn.c checks it; the measurement and
 * the cost are in bench/README.md, "fp32 conv backends"). The bits differ from
 * the native backend's (another summation order), so native stays the
 * default. */
#ifndef CBNN_CONV2D_ONEDNN_H
#define CBNN_CONV2D_ONEDNN_H

#include <stddef.h>

#include "ops.h"

/* 1 when this build can run the backend (oneDNN found at configure time and
 * real = float: oneDNN has no f64 conv), else 0 */
int conv2d_onednn_available(void);

/* NULL when `backend` (FP32_CONV_*) can run in this build, else a message
 * naming the config key, for the caller to refuse the run before it starts */
const char *conv2d_backend_error(int backend);

/* the three products; only called when conv2d_onednn_available().
 * A oneDNN failure here is a broken install, not a bad input: it prints the
 * call and status and aborts. */
void conv2d_onednn_forward(real *out /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                           const real *weight /* [O,C,KH,KW] */, const ConvDims *d);
/* dinp += dgrad(dout, weight) unless dinp is NULL, dweight += wgrad(dout,
 * inp) unless dweight is NULL; dout is reordered once for both */
void conv2d_onednn_backward(real *dinp /* [N,C,H,W] or NULL */, real *dweight /* [O,C,KH,KW] or NULL */,
                            const real *dout /* [N,O,OH,OW] */, const real *inp /* [N,C,H,W] */,
                            const real *weight /* [O,C,KH,KW] */, const ConvDims *d);

/* the dW chunk target: the chunks run concurrently, so more chunks than
 * threads keeps the threads busy; each sample chunk costs one partial dW
 * (the weights' size) in the workspace */
#define CONV2D_ONEDNN_WGRAD_CHUNKS 8
#define CONV2D_ONEDNN_WGRAD_CHUNKS_MAX 64
/* benchmarks only: set the chunk target (1..MAX; clamped), or 0 for round
 * one's dW (one oneDNN primitive at the caller's thread count, NOT
 * independent of the thread count). The bits depend on it; runs never set it. */
void conv2d_onednn_set_wgrad_chunks(int chunks);

/* bytes the backend holds now (the workspace: reordered tensors, oneDNN's
 * scratchpad, the accumulation temporaries), for the memory reports */
size_t conv2d_onednn_workspace_bytes(void);
/* frees every cached primitive and the workspace (tests, leak checkers) */
void conv2d_onednn_release(void);

#endif
