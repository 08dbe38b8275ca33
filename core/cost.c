/* Per-layer training cost (core/cost.h). */
#include "cost.h"

void layer_costs_init(LayerCost *lc, const Model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        double macs = (double)l->kind->macs(l);
        lc[i].raw.fwd = macs;
        lc[i].raw.err = l->in0 == 0 ? 0 : macs;
        lc[i].raw.wgrad = l->kind->has_weights ? macs : 0;
        lc[i].weighted.fwd = lc[i].weighted.err = lc[i].weighted.wgrad = 0;
        lc[i].binary = l->kind->binary;
    }
}

void layer_costs_add(LayerCost *lc, int n, int batch, double bits, double grad_bits) {
    for (int i = 0; i < n; i++) {
        PrecMacs w = prec_weighted_macs(lc[i].raw, lc[i].binary, bits, grad_bits);
        lc[i].weighted.fwd += batch * w.fwd;
        lc[i].weighted.err += batch * w.err;
        lc[i].weighted.wgrad += batch * w.wgrad;
    }
}
