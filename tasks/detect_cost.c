/* The detector's MACs (tasks/detect_cost.h). */
#include "detect_cost.h"

#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "layers.h"

static void macs_add(DetMacs *to, const Layer *l, double macs) {
    to->total += macs;
    if (l->kind->binary) to->binary += macs;
    else to->fp32 += macs;
    if (l->kind == &LAYER_BIDET_CONV) to->bidet += macs;
}

static DetMacs macs_scaled(DetMacs a, double k) {
    return (DetMacs){.total = a.total * k, .fp32 = a.fp32 * k, .binary = a.binary * k, .bidet = a.bidet * k};
}

static DetMacs macs_sum(DetMacs a, DetMacs b) {
    return (DetMacs){.total = a.total + b.total, .fp32 = a.fp32 + b.fp32, .binary = a.binary + b.binary,
                     .bidet = a.bidet + b.bidet};
}

/* Forward, err and wgrad MACs per sample of one graph: layer_costs_init's
 * rules, with the two things it does not know about: frozen layers compute
 * no weight gradient, and a graph with an input gradient computes its first
 * layers' err. */
static void graph_macs(const Model *m, DetMacs *fwd, DetMacs *errg, DetMacs *wgrad) {
    memset(fwd, 0, sizeof *fwd);
    memset(errg, 0, sizeof *errg);
    memset(wgrad, 0, sizeof *wgrad);
    LayerCost *lc = malloc((size_t)m->n_layers * sizeof *lc);
    if (lc) layer_costs_init(lc, m);
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        double f, e, w;
        if (lc) {
            f = lc[i].raw.fwd, e = lc[i].raw.err, w = lc[i].raw.wgrad;
        } else { /* out of memory for ~100 entries: layer_costs_init's rules inline */
            f = (double)l->kind->macs(l);
            e = l->in0 == 0 ? 0 : f;
            w = l->kind->has_weights ? f : 0;
        }
        if (l->in0 == 0 && m->input_grad) e = f;
        if (l->frozen) w = 0;
        macs_add(fwd, l, f);
        macs_add(errg, l, e);
        macs_add(wgrad, l, w);
    }
    free(lc);
}

void detect_cost_of(const Model *base, const Model *head, int test_rois, int train_rois, long images_per_epoch,
                    double epochs, DetectCost *c) {
    memset(c, 0, sizeof *c);
    c->H = base->in_H, c->W = base->in_W;
    const Layer *f = &base->layers[base->outputs[FRCNN_FEAT]];
    c->feat_H = f->H, c->feat_W = f->W;
    c->test_rois = test_rois, c->train_rois = train_rois;
    DetMacs be, bw, he, hw;
    graph_macs(base, &c->base, &be, &bw);
    graph_macs(head, &c->head, &he, &hw);
    c->infer = macs_sum(c->base, macs_scaled(c->head, test_rois));
    c->train_fwd = macs_sum(c->base, macs_scaled(c->head, train_rois));
    c->train_err = macs_sum(be, macs_scaled(he, train_rois));
    c->train_wgrad = macs_sum(bw, macs_scaled(hw, train_rois));
    c->train = macs_sum(macs_sum(c->train_fwd, c->train_err), c->train_wgrad);
    c->images_per_epoch = images_per_epoch;
    c->epochs = epochs;
    c->run = c->train.total * (double)images_per_epoch * epochs;
}

int detect_cost(const DetectOptions *o, int H, int W, long images_per_epoch, double epochs, DetectCost *c, char *err,
                size_t errlen) {
    Model base, head;
    memset(&base, 0, sizeof base);
    memset(&head, 0, sizeof head);
    const int A = o->n_ratios * o->n_scales;
    /* the builders fix every layer's shape for H x W: model_macs needs no arena */
    int rc = frcnn_build_base(&base, o->width, o->rpn_conv, o->binary_kind, H, W, A, (real)o->bn_gamma, err, errlen);
    if (!rc)
        rc = frcnn_build_head(&head, o->width, o->binary_kind, o->roi.PH, o->num_classes, (real)o->bn_gamma, err,
                              errlen);
    if (!rc) detect_cost_of(&base, &head, o->tgt.post_nms_test, o->tgt.rois_per_image, images_per_epoch, epochs, c);
    model_free(&base);
    model_free(&head);
    return rc;
}
