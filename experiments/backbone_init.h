/* The detector's backbone from a trained classification run (config key
 * detect.backbone_init = "RESULTS.h5:RUN"; method.md 4.4: the reference starts
 * its binary Faster R-CNN from the CycleBNN ImageNet checkpoint).
 *
 * RUN must be an imagenet_resnet18 run of RESULTS.h5 with a complete
 * checkpoint. Its model is rebuilt from its stored config (model_from_config),
 * its checkpoint's params and buffers are read into it, and every backbone
 * layer of the detector's two graphs (core/detect/frcnn.h: conv1, bn1,
 * layer1.* .. layer3.* in the base, layer4.* in the head) takes the tensors of
 * the classification layer of the same name: weight (w), bias (b: BN beta, the
 * binary conv's alpha) and buffers (BN running statistics, the binary conv's
 * quantizer range). The RPN and the head's Linear layers are not backbone and
 * keep their init; the classifier's bn_head and fc are not used.
 *
 * Matching is by name, then by size, as PyTorch's load_state_dict after the
 * reference's filtering of keys: a tensor the two layers both have must have
 * the same size (else an error names the layer and both shapes: a detector of
 * model.width 16 against a real ResNet-18 fails at conv1, 64 vs 16 channels);
 * a b or buffer that only one side has (a binary conv against an fp32 conv:
 * model.conv differs between the runs) keeps its init and is counted in
 * `kept`. A backbone layer of the detector that the checkpoint lacks is an
 * error naming it. Everything is checked before anything is copied: on error
 * the detector is unchanged. */
#ifndef CBNN_BACKBONE_INIT_H
#define CBNN_BACKBONE_INIT_H

#include <stddef.h>

#include "model.h"

typedef struct {
    int layers;          /* detector layers that took checkpoint tensors */
    size_t params;       /* parameter values copied (w and b) */
    size_t buffers;      /* buffer values copied */
    int kept;            /* tensors (b or buffers) only one side has, left at their init */
    long step;           /* the checkpoint's step */
} BackboneInitStats;

/* base and head: built by frcnn_build_base / frcnn_build_head, allocated
 * (model_alloc) and initialised (model_init_params): what is not copied keeps
 * that init. spec: "FILE:RUN", split at the last ':' (so FILE may hold ':';
 * run names never do). Returns 0 with a one-line summary in msg ("backbone
 * from FILE:RUN (imagenet_resnet18 cyclebnn, step S): L layers, P parameters
 * and B buffer values"), or -1 with the error in msg: the spec malformed, FILE
 * missing or not a results file, RUN not in it, RUN without a config or a
 * complete checkpoint, RUN of another model.arch, a layer missing or of
 * another size. */
int backbone_init(Model *base, Model *head, const char *spec, char *msg, size_t msglen);
/* The same, with the counts in *st (may be NULL). */
int backbone_init_stats(Model *base, Model *head, const char *spec, BackboneInitStats *st, char *msg,
                        size_t msglen);

#endif
