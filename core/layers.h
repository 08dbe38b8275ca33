/* The layer kinds (function tables) the model builders use. Private to core/:
 * only the builders of core/model.c name a kind (choosing it is what a builder
 * does); everything else asks the kind's fields (LayerKind, core/model.h). */
#ifndef CBNN_LAYERS_H
#define CBNN_LAYERS_H

#include "model.h"

extern const LayerKind LAYER_INPUT, LAYER_CONV, LAYER_BCONV, LAYER_BN, LAYER_HARDTANH, LAYER_RELU, LAYER_MAXPOOL,
    LAYER_AVGPOOL, LAYER_GAP, LAYER_LINEAR, LAYER_ADD, LAYER_SHORTCUT_A, LAYER_BIDET_CONV;

/* per-batch views of a layer's tensors */
static inline real *layer_out(const Model *m, const Layer *l) { return m->acts + l->out_off; }
static inline real *layer_dout(const Model *m, const Layer *l) { return m->dacts + l->dout_off; }
static inline size_t layer_numel(const Layer *l) { return (size_t)l->C * l->H * l->W; }
/* the layer's saved block: its reals, then its typed bytes */
static inline real *layer_saved(const Model *m, const Layer *l) { return m->saved + l->save_off; }
static inline void *layer_saved_bytes(const Model *m, const Layer *l) {
    return (unsigned char *)(void *)m->saved + l->save_i_off;
}

/* a run's error of layer l into m->run_err ("<layer>: <reason>"); returns -1 */
__attribute__((format(printf, 3, 4))) int layer_run_error(Model *m, const Layer *l, const char *fmt, ...);

#endif
