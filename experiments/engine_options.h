/* The one place a RunConfig (the YAML schema, experiments/config.h) becomes
 * the plain option structs the engine, the loaders and the tasks take. Nothing
 * below experiments/ sees a RunConfig: core/ gets a BinaryConvOptions, a
 * PrecSchedule, an LRSchedule, optimizer settings; datasets/ an Augment; the
 * training loop a TrainOptions. The analysis tools rebuild a trained run's
 * model through the same functions, so they cannot disagree with training. */
#ifndef CBNN_ENGINE_OPTIONS_H
#define CBNN_ENGINE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "binary_conv.h"
#include "config.h"
#include "dataset.h"
#include "detect.h"
#include "lr_schedule.h"
#include "model.h"
#include "optim.h"
#include "precision.h"

/* Everything a training run needs besides its data, for a training set of
 * n_train samples. */
typedef struct {
    /* the model */
    char arch[CFG_STR];
    ConvKind binary_kind;          /* model.conv */
    BinaryConvOptions bconv;       /* binary.* (save_act_codes from the precision, see below) */
    /* the schedules */
    long total;                    /* iterations */
    long per_epoch;                /* whole batches in the training set */
    PrecSchedule prec;
    PrecEval prec_eval;
    /* the second test evaluation of a cyclic run (issue 16): at the fixed
     * precision.eval_bits, beside the faithful one (fixed_eval_too 0: none) */
    PrecEval fixed_eval;
    int fixed_eval_too;
    LRSchedule lr;
    OptimKind optim;
    AdamWConfig adamw;
    SGDConfig sgd;
    /* the data */
    Augment aug, eval_aug;
    int loader_workers;
    /* the loop */
    int batch, eval_batch;
    long eval_every, log_every;    /* iterations */
    uint64_t seed;
    int threads;                   /* 0 = OMP_NUM_THREADS / all cores */
    int shards;                    /* train.shards (core/shard.h) */
    int memory_lean;               /* train.memory: Model.memory_lean */
    int fp32_conv;                 /* model.fp32_conv: Model.fp32_conv */
    /* names for the progress lines (the YAML names: config_enum_name, static strings) */
    const char *conv_name, *optim_name, *lr_name, *prec_name;
} TrainOptions;

/* TrainOptions of config c over a training set of n_train samples. 0, or -1
 * with a one-line message (a batch larger than the set, too many iterations). */
int train_options_from_config(const RunConfig *c, long n_train, TrainOptions *o, char *err, size_t errlen);

/* The pieces, for the tools that need one of them. */
ConvKind conv_kind_from_config(const RunConfig *c);
void binary_options_from_config(BinaryConvOptions *o, const RunConfig *c);
/* precision.* of c with the run's total iterations I (train_total_iterations)
 * and schedule.cyclic_warmup as W. The warm-up grad bits are 0 (the
 * reference's --num_grad_bits default). Either output may be NULL. */
void prec_from_config(const RunConfig *c, long total_iters, PrecSchedule *s, PrecEval *e);
void lr_schedule_from_config(const RunConfig *c, long total_iters, LRSchedule *s);
void train_augment_from_config(const RunConfig *c, Augment *train, Augment *eval);

/* The data of a run: data.dataset's loader at data.path (ImageNet with
 * data.image_size and data.skip_bad), cut to data.train_subset and
 * data.test_subset. 0, or -1 with the loader's message. */
int data_from_config(const RunConfig *c, Dataset *train, Dataset *test, char *err, size_t errlen);
/* The same with the validation hold-out of data.val_split (datasets/split.h):
 * *val holds it (n = 0 when there is none), *train the rest, then
 * data.train_subset. data_from_config is this with val freed. */
int data_from_config_split(const RunConfig *c, Dataset *train, Dataset *val, Dataset *test, char *err,
                           size_t errlen);
/* The published shape of data.dataset and the training-set size a run will
 * see (data.train_subset applied), without loading: for estimates. -1 for a
 * dataset without a published size. */
int data_shape_from_config(const RunConfig *c, DatasetShape *shape, long *n_train);

/* The model of a run: built for (C, H, W, classes), its binary convs set up
 * as the config says (the seed keys the error quantizer's noise). 0, or -1
 * with a message. Not allocated. */
int model_from_config(Model *m, const RunConfig *c, int C, int H, int W, int num_classes, char *err, size_t errlen);

/* Iterations a config trains for, given the training-set size: train.iterations,
 * or ceil(train.epochs * (n_train / batch_size)). Never overflows: a count
 * over CFG_MAX_ITERATIONS comes back as CFG_MAX_ITERATIONS + 1, which
 * train_check_iterations refuses. */
long train_total_iterations(const RunConfig *c, long n_train);
/* 0 when that count is at most CFG_MAX_ITERATIONS; else -1 with a one-line
 * message (key, value, images, batch) in err. experiment_load checks the same
 * with the dataset's published size; this is for the size actually loaded. */
int train_check_iterations(const RunConfig *c, long n_train, char *err, size_t errlen);

/* What a run will cost, computed from its config without training (the
 * same accounting the training loop logs): for --dry-run. */
typedef struct {
    long iterations;
    long fwd_macs;          /* forward MACs per sample */
    double fp32_macs;       /* training MACs (forward + error + weight gradient), all at fp32 */
    double bit_macs;        /* the same, bit-weighted by the precision schedule (method.md 6.3) */
    double mean_cost_ratio; /* mean cr over the iterations */
} TrainEstimate;
int train_estimate(const RunConfig *c, int channels, int height, int width, int num_classes, long n_train,
                   TrainEstimate *out, char *err, size_t errlen);

/* Detection (model.arch frcnn_resnet18): the DetectOptions of a config
 * (every detect.* key, model.width/conv, data.max_gt_boxes), and what a run
 * costs on the dataset's published size at the nominal 4:3 image of shorter
 * side data.min_size (tasks/detect_cost.h): fwd_macs is a training image's
 * forward (base + rois_per_image RoIs). */
void detect_options_from_config(const RunConfig *c, DetectOptions *o);
int detect_estimate(const RunConfig *c, TrainEstimate *out, char *err, size_t errlen);

#endif
