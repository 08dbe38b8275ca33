/* Per-layer training cost (core/cost.h). */
#include "cost.h"

void layer_costs_raw(LayerCost *lc, const Model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        double macs = (double)l->kind->macs(l);
        lc[i].raw.fwd = macs;
        /* the layer reading the input has an error product only when the graph computes the input's gradient */
        lc[i].raw.err = l->in0 == 0 && !m->input_grad ? 0 : macs;
        lc[i].raw.wgrad = l->kind->has_weights && !l->frozen ? macs : 0;
        lc[i].binary = l->kind->binary;
    }
}

void layer_costs_init(LayerCost *lc, const Model *m) {
    layer_costs_raw(lc, m);
    for (int i = 0; i < m->n_layers; i++) lc[i].weighted.fwd = lc[i].weighted.err = lc[i].weighted.wgrad = 0;
}

void layer_costs_add(LayerCost *lc, int n, int batch, double bits, double grad_bits) {
    for (int i = 0; i < n; i++) {
        PrecMacs w = prec_weighted_macs(lc[i].raw, lc[i].binary, bits, grad_bits);
        lc[i].weighted.fwd += batch * w.fwd;
        lc[i].weighted.err += batch * w.err;
        lc[i].weighted.wgrad += batch * w.wgrad;
    }
}
