/* Per-layer training cost, accumulated over a run (method.md 6.3): for every
 * layer the three GEMM-like products of a step (forward, error back-prop,
 * weight gradient), raw and bit-weighted. Raw counts per sample: forward =
 * the layer's forward MACs; error = the same when the layer has an input
 * gradient to compute (not for the layer reading the input unless the graph
 * computes the input's gradient: model_input_grad); weight gradient = the
 * same for layers with a weight tensor (conv, binary conv, linear) that train
 * (not frozen ones), else 0. */
#ifndef CBNN_COST_H
#define CBNN_COST_H

#include "model.h"
#include "precision.h"

typedef struct {
    PrecMacs raw;       /* per sample per step */
    PrecMacs weighted;  /* summed over the run, times the batch */
    int binary;
} LayerCost;

/* lc[m->n_layers]: raw counts from the layer kinds, weighted sums zero */
void layer_costs_init(LayerCost *lc, const Model *m);
/* the raw counts alone, at the model's current input size (the weighted sums
 * are kept: a detector's images change size from batch to batch) */
void layer_costs_raw(LayerCost *lc, const Model *m);
/* one step of `batch` samples at (bits, grad_bits) */
void layer_costs_add(LayerCost *lc, int n, int batch, double bits, double grad_bits);

#endif
