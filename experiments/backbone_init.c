/* The detector's backbone from a classification checkpoint (backbone_init.h). */
#include "backbone_init.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dataset.h"
#include "engine_options.h"
#include "results_h5.h"

#define BI_ARCH "imagenet_resnet18"

/* The three tensors of a layer a checkpoint carries. */
enum { T_W, T_B, T_BUF, T_N };
static const char *const TENSOR_NAME[T_N] = {"weight", "bias", "buffers"};

static size_t tensor_n(const Layer *l, int t) { return t == T_W ? l->w_n : t == T_B ? l->b_n : l->buf_n; }

static real *tensor_ptr(const Model *m, const Layer *l, int t) {
    return t == T_BUF ? m->buffers + l->buf_off : m->params + (t == T_W ? l->w_off : l->b_off);
}

/* The backbone of frcnn.h, by its PyTorch names: the stem (conv1, bn1) and
 * the four stages (layer<digit>.*). */
static int is_backbone(const char *name) {
    return !strcmp(name, "conv1") || !strcmp(name, "bn1") ||
           (!strncmp(name, "layer", 5) && name[5] >= '1' && name[5] <= '9' && name[6] == '.');
}

static int has_tensors(const Layer *l) { return l->w_n || l->b_n || l->buf_n; }

static const Layer *find_layer(const Model *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name)) return &m->layers[i];
    return NULL;
}

/* A tensor's shape as PyTorch prints it: a conv weight [out, in, k, k], a
 * Linear's [out, in], anything else its length. */
static void shape_str(const Layer *l, int t, char *buf, size_t n) {
    const size_t len = tensor_n(l, t);
    if (t == T_W && !strcmp(l->kind->name, "linear"))
        snprintf(buf, n, "[%d, %zu]", l->C, len / (size_t)(l->C > 0 ? l->C : 1));
    else if (t == T_W && l->K > 0 && len == (size_t)l->C * l->inC * l->K * l->K)
        snprintf(buf, n, "[%d, %d, %d, %d]", l->C, l->inC, l->K, l->K);
    else
        snprintf(buf, n, "[%zu]", len);
}

/* 0 when layer d of the detector can take layer c of the checkpoint: every
 * tensor both have is of the same size; else -1 with a message. Counts the
 * tensors only one side has in *kept. */
static int check_pair(const Layer *d, const Layer *c, int *kept, const char *where, char *msg, size_t msglen) {
    for (int t = 0; t < T_N; t++) {
        const size_t nd = tensor_n(d, t), nc = tensor_n(c, t);
        if (nd == nc) continue;
        if (t != T_W && (nd == 0 || nc == 0)) { /* a binary conv against an fp32 one: alpha, quantizer range */
            (*kept)++;
            continue;
        }
        char sd[64], sc[64], hint[160] = "";
        shape_str(d, t, sd, sizeof sd);
        shape_str(c, t, sc, sizeof sc);
        if (d->C != c->C)
            snprintf(hint, sizeof hint, " (%d vs %d channels: the detector's model.width must match the "
                     "checkpoint's, 64 for an ImageNet ResNet-18)", c->C, d->C);
        snprintf(msg, msglen, "%s: layer %s: the checkpoint's %s %s is %s, the detector's is %s%s", where, d->name,
                 c->kind->name, TENSOR_NAME[t], sc, sd, hint);
        return -1;
    }
    return 0;
}

/* Check (copy = 0) or copy (copy = 1) every backbone layer of m from cls. */
static int pair_model(Model *m, const Model *cls, int copy, BackboneInitStats *st, const char *where, char *msg,
                      size_t msglen) {
    for (int i = 0; i < m->n_layers; i++) {
        Layer *d = &m->layers[i];
        if (!has_tensors(d) || !is_backbone(d->name)) continue;
        const Layer *c = find_layer(cls, d->name);
        if (!c || !has_tensors(c)) {
            snprintf(msg, msglen, "%s: the detector's backbone layer %s (%s) is not in the checkpoint", where,
                     d->name, d->kind->name);
            return -1;
        }
        if (!copy) {
            if (check_pair(d, c, &st->kept, where, msg, msglen)) return -1;
            continue;
        }
        for (int t = 0; t < T_N; t++) {
            const size_t n = tensor_n(d, t);
            if (n == 0 || n != tensor_n(c, t)) continue;
            memcpy(tensor_ptr(m, d, t), tensor_ptr(cls, c, t), n * sizeof(real));
            if (t == T_BUF) st->buffers += n;
            else st->params += n;
        }
        st->layers++;
    }
    return 0;
}

/* "FILE:RUN" split at the last ':' into file (a copy) and *run. */
static int split_spec(const char *spec, char *file, size_t filelen, const char **run, char *msg, size_t msglen) {
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon || colon == spec || !colon[1] || (size_t)(colon - spec) >= filelen) {
        snprintf(msg, msglen, "detect.backbone_init '%s': expected RESULTS.h5:RUN (a results file, ':', a run of it)",
                 spec ? spec : "");
        return -1;
    }
    memcpy(file, spec, (size_t)(colon - spec));
    file[colon - spec] = 0;
    *run = colon + 1;
    return 0;
}

/* The run's stored config, checked to be an imagenet_resnet18 with a
 * checkpoint; its step in *step. */
static int read_run_config(ResultsFile *f, const char *file, const char *run, RunConfig *c, long *step, char *msg,
                           size_t msglen) {
    RunInfo ri;
    if (results_run_info(f, run, &ri) != 0 || !ri.exists) {
        run_info_free(&ri);
        snprintf(msg, msglen, "detect.backbone_init: %s has no run '%s'", file, run);
        return -1;
    }
    int rc = -1;
    ExperimentConfig e;
    char e2[600], where[CFG_PATH + CFG_RUN_NAME + 32];
    snprintf(where, sizeof where, "%s:/runs/%s/config", file, run);
    if (!ri.config) {
        snprintf(msg, msglen, "detect.backbone_init: run '%s' of %s has no stored config", run, file);
    } else if (experiment_parse(&e, ri.config, strlen(ri.config), where, e2, sizeof e2)) {
        snprintf(msg, msglen, "detect.backbone_init: the config of run '%s' of %s cannot be read: %s", run, file, e2);
    } else {
        *c = e.runs[0].c;
        experiment_free(&e);
        if (strcmp(c->arch, BI_ARCH))
            snprintf(msg, msglen, "detect.backbone_init: run '%s' of %s is a %s, not an %s: the detector's backbone "
                     "is the ImageNet ResNet-18", run, file, c->arch, BI_ARCH);
        else if (ri.checkpoint_step < 0)
            snprintf(msg, msglen, "detect.backbone_init: run '%s' of %s has no complete checkpoint (status %s)", run,
                     file, ri.status[0] ? ri.status : "unknown");
        else {
            *step = ri.checkpoint_step;
            rc = 0;
        }
    }
    run_info_free(&ri);
    return rc;
}

/* The classification model of config c, built (not allocated) at
 * data.image_size for the dataset's classes: its layers' names and tensor
 * sizes, which do not depend on the input size. */
static int build_classifier(const char *file, const char *run, const RunConfig *c, Model *cls, char *msg,
                            size_t msglen) {
    DatasetShape sh;
    if (dataset_nominal(c->dataset, &sh)) {
        snprintf(msg, msglen, "detect.backbone_init: run '%s' of %s trained on '%s', a dataset without a known "
                 "number of classes", run, file, c->dataset);
        return -1;
    }
    const int side = c->image_size > 0 ? c->image_size : 224;
    char e2[400];
    if (model_from_config(cls, c, 3, side, side, sh.num_classes, e2, sizeof e2)) {
        snprintf(msg, msglen, "detect.backbone_init: rebuilding run '%s' of %s: %s", run, file, e2);
        return -1;
    }
    return 0;
}

/* cls allocated for one image, with the checkpoint's params and buffers */
static int load_checkpoint(ResultsFile *f, const char *file, const char *run, const RunConfig *c, Model *cls,
                           long *step, char *msg, size_t msglen) {
    if (model_alloc(cls, 1)) {
        snprintf(msg, msglen, "detect.backbone_init: out of memory for the %s of run '%s'", c->arch, run);
        return -1;
    }
    char e2[600];
    const CkptArray a[2] = {{"params", CK_REAL, cls->n_params, cls->params},
                            {"buffers", CK_REAL, cls->n_buffers, cls->buffers}};
    const int got = results_checkpoint_read(f, run, step, a, 2, e2, sizeof e2);
    if (got == 1) return 0;
    if (got == 0)
        snprintf(msg, msglen, "detect.backbone_init: run '%s' of %s has no complete checkpoint", run, file);
    else
        snprintf(msg, msglen, "detect.backbone_init: reading the checkpoint of run '%s' (a %s) from %s: %s", run,
                 c->arch, file, e2[0] ? e2 : "HDF5 error");
    return -1;
}

int backbone_init_stats(Model *base, Model *head, const char *spec, BackboneInitStats *st, char *msg,
                        size_t msglen) {
    BackboneInitStats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    st->step = -1;
    if (!base || !head || !base->params || !head->params) {
        snprintf(msg, msglen, "detect.backbone_init: the detector's base and head must be allocated first");
        return -1;
    }
    char file[CFG_PATH];
    const char *run;
    if (split_spec(spec, file, sizeof file, &run, msg, msglen)) return -1;
    char e2[600] = "";
    ResultsFile *f = results_open_readonly(file, e2, sizeof e2);
    if (!f) {
        snprintf(msg, msglen, "detect.backbone_init: cannot read results file %s: %s", file, e2);
        return -1;
    }
    RunConfig c;
    Model cls;
    memset(&cls, 0, sizeof cls);
    long step = -1;
    char where[CFG_PATH + 32];
    snprintf(where, sizeof where, "detect.backbone_init %s", spec);
    BackboneInitStats check = {0};
    /* names and sizes are checked on the built model, before its ~200 MB are
     * allocated and read, and before anything is copied: an error leaves the
     * detector as it was */
    int rc = read_run_config(f, file, run, &c, &step, msg, msglen);
    if (!rc) rc = build_classifier(file, run, &c, &cls, msg, msglen);
    if (!rc) rc = pair_model(base, &cls, 0, &check, where, msg, msglen);
    if (!rc) rc = pair_model(head, &cls, 0, &check, where, msg, msglen);
    if (!rc) rc = load_checkpoint(f, file, run, &c, &cls, &step, msg, msglen);
    results_close(f, 0, e2, sizeof e2);
    if (!rc) {
        pair_model(base, &cls, 1, st, where, msg, msglen);
        pair_model(head, &cls, 1, st, where, msg, msglen);
        st->kept = check.kept;
        st->step = step;
        snprintf(msg, msglen, "backbone from %s (%s %s, step %ld): %d layers, %zu parameters and %zu buffer values"
                 "%s", spec, c.arch, config_enum_name("model.conv", c.conv), step, st->layers, st->params,
                 st->buffers, st->kept ? "; the tensors of the other conv kind keep their init" : "");
    }
    model_free(&cls);
    return rc;
}

int backbone_init(Model *base, Model *head, const char *spec, char *msg, size_t msglen) {
    return backbone_init_stats(base, head, spec, NULL, msg, msglen);
}
