/* Run configuration: the YAML schema, parsed with libyaml, validated, defaults filled.
 *
 * An experiment file is a mapping with top-level keys
 *   name:        experiment name (string; default: the file's base name)
 *   description: free text
 *   base:        the run configuration (below)
 *   grid:        axes to sweep: `precision.cycles: [2, 4, 8]` (dotted paths of
 *                keys of base:, each with a non-empty list of values)
 *   seeds:       [1, 2, 3]: a grid axis on train.seed, always the innermost
 *   runs:        named runs, each a mapping of overrides written like base:
 * The file expands into runs: every runs: entry (file order, outermost) times
 * every combination of the grid axes (the first axis varies slowest) times
 * every seed. A run's configuration is base, then its runs: overrides, then
 * its grid values, then its seed; its name joins the runs: name, `key=value`
 * per grid axis and `seed=N` with commas (`fixed,cycles=8,seed=1`). A file
 * with none of grid/seeds/runs describes exactly one run, named after the
 * experiment.
 *
 * Every key of `base:` has a dotted path, a type, a default and a range; the
 * table in config.c is the single source of truth and `cyclebnn --help-config`
 * prints it. Unknown keys, wrong types and out-of-range values are errors that
 * name the file, line, column and key (and the nearest valid key). */
#ifndef CBNN_CONFIG_H
#define CBNN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "binary_conv.h" /* SignZero, ActGrad */
#include "frcnn.h"       /* RpnConvKind (detect.rpn_conv) */
#include "lr_schedule.h" /* LRKind */
#include "model.h"       /* ConvKind */
#include "optim.h"       /* OptimKind */
#include "precision.h"   /* PrecKind, PrecEvalKind */

#define CFG_STR 64
#define CFG_PATH 512
#define CFG_RUN_NAME 256  /* an expanded run's name, NUL included */
#define CFG_MAX_RUNS 4096 /* a file expands to at most this many runs */
#define CFG_MAX_AXES 8    /* grid axes, seeds: counting as one */
/* The most iterations a run may train for, 2^40 (~10^12; Table 2's ImageNet
 * run is 9 * 10^6): train.iterations, and train.epochs times the steps of an
 * epoch, are refused above it. Counts derived from it stay far inside a long
 * (4 * schedule.cyclic_warmup, the images seen: 2^40 * 65536 = 2^56) and the
 * cost sums stay exact in a double (core/train.c, train_estimate). */
#define CFG_MAX_ITERATIONS (1L << 40)
/* The most numbers a list-valued key holds (detect.anchor_scales, ...). */
#define CFG_LIST_MAX 8

/* A bit width or a range of them: `precision.bits: 4` is {4, 4}, `[2, 6]` is
 * {2, 6} (min <= max, both in [1, 32]). */
typedef struct {
    int min, max;
} BitRange;

/* binary.pad and binary.backward (BinaryConvOptions.pad_minus_one, .bwd_fp32) */
typedef enum { BIN_PAD_ZERO = 0, BIN_PAD_MINUS_ONE = 1 } BinPad;
typedef enum { BIN_BACKWARD_INT8 = 0, BIN_BACKWARD_FP32 = 1 } BinBackward;

/* The detector's enum-valued keys (issue 14). The values are those of
 * tasks/detect.h (BoxNoise: BOX_NOISE_ALWAYS/TRAIN/OFF = 0/1/2), restated
 * here so that this header stays free of the task's headers. */
/* detect.box_noise: when BiDet's sampled boxes get their noise */
typedef enum { DET_NOISE_ALWAYS = 0, DET_NOISE_TRAIN = 1, DET_NOISE_OFF = 2 } DetBoxNoise;
/* detect.rpn_weight: the RPN box loss divided by the labelled anchors of the
 * batch's last image (the reference) or of each image */
typedef enum { DET_RPN_WEIGHT_LAST_IMAGE = 0, DET_RPN_WEIGHT_PER_IMAGE = 1 } DetRpnWeight;
/* detect.ib_start: when the IB terms get their weights */
typedef enum { DET_IB_FIRST_DECAY = 0, DET_IB_ALWAYS = 1, DET_IB_NEVER = 2 } DetIbStart;

/* The keys with a fixed list of values are enums, set once when the file is
 * parsed; config_enum_name gives back the YAML name of a value (for printing:
 * the results table, progress lines, messages). model.arch and data.dataset
 * stay strings: they are names looked up in registries. */

typedef struct {
    /* model */
    char arch[CFG_STR];          /* model.arch: cifar_resnet18 | cifar_resnet20 | cifar_resnet8 | imagenet_resnet18 | vgg_small
                                  * | frcnn_resnet18 (the detector of issue 14) */
    ConvKind conv;               /* model.conv: fp32 (CONV_FP32) | cyclebnn (CONV_BINARY, the binary conv of method.md 3) */
    int fp32_conv;               /* model.fp32_conv: native (FP32_CONV_NATIVE) | onednn (FP32_CONV_ONEDNN) */
    int width;                   /* model.width: base channel width of the detector's ResNet-18 (64 = paper) */
    /* binary conv options (model.conv: cyclebnn); defaults are the authors' code */
    SignZero sign_zero;          /* binary.sign_zero: zero | plus_one (sign(0)) */
    BinBackward bin_backward;    /* binary.backward: int8 | fp32 (how the two backward products run) */
    BinPad bin_pad;              /* binary.pad: zero | minus_one (padding of the binary input) */
    ActGrad act_grad;            /* binary.act_grad: approx_sign | ste */
    int act_norm;                /* binary.act_norm: per-sample activation normalisation (E3) */
    int weight_center;           /* binary.weight_center: ReCU per-channel mean subtraction */
    int recu_clamp;              /* binary.recu_clamp: ReCU clamp at clamp_tau */
    double clamp_tau;            /* binary.clamp_tau */
    int grad_quant;              /* binary.grad_quant: quantize the error at the conv output (E8) */
    int grad_stochastic;         /* binary.grad_stochastic: stochastic rounding of that error */
    /* data */
    char dataset[CFG_STR];       /* data.dataset: fashion_mnist | cifar10 | imagenet | voc | synth_voc */
    char data_path[CFG_PATH];    /* data.path: "" = the dataset's default location */
    long train_subset;           /* data.train_subset: first N training images (0 = all) */
    long test_subset;            /* data.test_subset: first N test images (0 = all) */
    double val_split;            /* data.val_split: images held out for validation: N >= 1, a fraction in (0, 1),
                                  * 0 = none, -1 = the dataset's default (config_val_split) */
    uint64_t split_seed;         /* data.split_seed: draws the validation images; independent of train.seed */
    int normalize;               /* data.normalize: subtract the dataset mean, divide by std */
    int aug_flip;                /* data.augment.flip: random horizontal flip */
    int aug_crop_pad;            /* data.augment.crop_pad: random crop with this zero padding (0 = off) */
    int aug_crop_fill_mean;      /* data.augment.crop_fill_mean: pad with the mean pixel (CIFAR recipe) */
    int aug_autoaugment;         /* data.augment.autoaugment: AutoAugment CIFAR-10 policy */
    int aug_cutout;              /* data.augment.cutout: Cutout hole side in pixels (0 = off) */
    int aug_rrc;                 /* data.augment.random_resized_crop: RandomResizedCrop to data.image_size */
    double rrc_scale_min, rrc_scale_max;   /* data.augment.rrc_scale_min / _max */
    double rrc_ratio_min, rrc_ratio_max;   /* data.augment.rrc_ratio_min / _max */
    int aug_lighting;            /* data.augment.lighting: AlexNet PCA lighting (faithful to the original) */
    int image_size;              /* data.image_size: output side of streaming datasets (ImageNet 224) */
    int eval_resize;             /* data.eval_resize: eval resizes the shorter side to this, then centre-crops */
    int skip_bad;                /* data.skip_bad: skip unreadable images (counted) instead of failing */
    int loader_workers;          /* data.loader_workers: background decode threads (0 = in the step) */
    /* detection data (data.dataset voc | synth_voc) */
    int min_size;                /* data.min_size: shorter side after resizing */
    int det_flip;                /* data.flip: add each training image's horizontal flip (the reference doubles the roidb) */
    int train_difficult;         /* data.train_difficult: keep difficult objects in training */
    int max_gt_boxes;            /* data.max_gt_boxes */
    long synth_images;           /* data.synth_images: images synth_voc generates */
    /* optimizer */
    OptimKind optimizer;         /* optim.name: adamw | sgd */
    double lr;                   /* optim.lr */
    double weight_decay;         /* optim.weight_decay */
    double beta1, beta2, eps;    /* optim.beta1, optim.beta2, optim.eps (AdamW) */
    double momentum, dampening;  /* optim.momentum, optim.dampening (SGD) */
    int nesterov;                /* optim.nesterov (SGD) */
    /* lr schedule */
    LRKind lr_schedule;          /* schedule.lr: cosine | step | constant */
    double eta_min;              /* schedule.eta_min */
    double num_cyclic_annealing; /* schedule.num_cyclic_annealing (divides the cosine horizon) */
    long step_size;              /* schedule.step_size (iterations) */
    double gamma;                /* schedule.gamma */
    long warmup_iters;           /* schedule.warmup_iters (linear warm-up) */
    long cyclic_warmup;          /* schedule.cyclic_warmup (the reference code's W) */
    /* schedule.step_epochs: lr x gamma after each of these epochs (schedule.lr
     * step; strictly increasing; n = 0: none). The count follows the array
     * directly: the key's bytes are one span (config.c). */
    double step_epochs[CFG_LIST_MAX];
    int n_step_epochs;
    /* precision schedule (core/precision.h) */
    PrecKind prec_schedule;      /* precision.schedule: cyclic | fixed | full */
    BitRange bits;               /* precision.bits: [min, max] (cyclic) or one width (fixed) */
    BitRange grad_bits;          /* precision.grad_bits: same, for the error */
    int prec_cycles;             /* precision.cycles: N_cyc */
    int warmup_bits;             /* precision.warmup_bits: bits of the first 4W iterations (0 = none) */
    PrecEvalKind prec_eval;      /* precision.eval: faithful | fixed */
    int eval_bits;               /* precision.eval_bits: the fixed evaluation precision (precision.eval: fixed,
                                  * and the second test evaluation of cyclic runs); 0 = the top of precision.bits */
    /* training loop */
    long iterations;             /* train.iterations (0 = use train.epochs) */
    double epochs;               /* train.epochs (used when iterations = 0) */
    int batch_size;              /* train.batch_size */
    int eval_batch_size;         /* train.eval_batch_size */
    long eval_interval;          /* train.eval_interval: iterations between test evaluations (0 = once per epoch) */
    long log_interval;           /* train.log_interval: iterations between progress lines / loss records */
    long checkpoint_interval;    /* train.checkpoint_interval: iterations between checkpoints (0 = at the end / on a stop) */
    uint64_t seed;               /* train.seed */
    int threads;                 /* train.threads (0 = OMP_NUM_THREADS / all cores) */
    int shards;                  /* train.shards: shards of the batch's float reductions (core/shard.h) */
    int train_memory;            /* train.memory: fast (0) | lean (1): Model.memory_lean */
    /* the detector (model.arch frcnn_resnet18; defaults = the reference) */
    RpnConvKind rpn_conv;        /* detect.rpn_conv: bidet | cyclebnn | fp32 */
    double anchor_scales[CFG_LIST_MAX]; /* detect.anchor_scales: [8, 16, 32] */
    int n_anchor_scales;
    double anchor_ratios[CFG_LIST_MAX]; /* detect.anchor_ratios: [0.5, 1, 2] */
    int n_anchor_ratios;
    double rpn_pos_iou;          /* detect.rpn_pos_iou: an anchor at IoU >= this is foreground */
    double rpn_neg_iou;          /* detect.rpn_neg_iou: below this, background */
    int rpn_batch;               /* detect.rpn_batch: anchors labelled per image */
    double rpn_fg_fraction;      /* detect.rpn_fg_fraction */
    int pre_nms_train, post_nms_train; /* detect.pre_nms_train, detect.post_nms_train */
    int pre_nms_test, post_nms_test;   /* detect.pre_nms_test, detect.post_nms_test */
    double rpn_nms;              /* detect.rpn_nms: the proposals' NMS threshold */
    double proposal_min_size;    /* detect.proposal_min_size (0 = no filter, as the reference) */
    int rois_per_image;          /* detect.rois_per_image */
    double roi_fg_fraction;      /* detect.roi_fg_fraction */
    double roi_fg_iou;           /* detect.roi_fg_iou: a RoI at IoU >= this is foreground */
    double roi_bg_hi, roi_bg_lo; /* detect.roi_bg_hi / _lo: background at IoU in [lo, hi) */
    int roi_aligned;             /* detect.roi_aligned: RoIAlign's half-pixel offset */
    int pool_size;               /* detect.pool_size: RoIAlign output side */
    double rpn_sigma, rcnn_sigma; /* detect.rpn_sigma, detect.rcnn_sigma: smooth-L1 sigmas */
    double sample_sigma;         /* detect.sample_sigma: BiDet's box-sampling sigma */
    DetBoxNoise box_noise;       /* detect.box_noise: always | train | off */
    DetRpnWeight rpn_weight;     /* detect.rpn_weight: last_image | per_image */
    int head_prior_zero;         /* detect.head_prior_zero: no qualifying class gives 0, not NaN */
    int nms_ge;                  /* detect.nms_ge: suppress at IoU >= t instead of > t */
    double delta_clamp;          /* detect.delta_clamp: clamp of dw, dh when decoding (0 = none) */
    double ib_rpn_prior, ib_rpn_reg, ib_head_prior, ib_head_reg; /* detect.ib_*: the IB terms' weights */
    DetIbStart ib_start;         /* detect.ib_start: first_decay | always | never */
    double head_prior_score;     /* detect.head_prior_score */
    double test_nms;             /* detect.test_nms */
    double test_score;           /* detect.test_score */
    int max_per_image;           /* detect.max_per_image */
    double bn_gamma_init;        /* detect.bn_gamma_init: BN gamma of a backbone trained from scratch */
    char backbone_init[CFG_PATH]; /* detect.backbone_init: "RESULTS.h5:RUN" or "" */
} RunConfig;

/* One run of an experiment, after expansion of grid:, seeds: and runs:. The
 * name is non-empty and unique within the experiment. A file without grid:,
 * seeds: and runs: has one run named after the experiment (name: verbatim);
 * otherwise names are built from runs: names ([A-Za-z0-9_.+=-]) and grid
 * values joined by ',', every other character of a string value becoming
 * '_', so that they can name HDF5 groups and files. */
typedef struct {
    char name[CFG_RUN_NAME];
    RunConfig c;                 /* validated, cross-checked */
} RunSpec;

typedef struct {
    char name[CFG_STR];          /* [A-Za-z0-9_.+=-], not starting with '.' or '-': it names files */
    char description[512];
    char path[CFG_PATH];         /* the file it came from */
    char *yaml_text;             /* the file's text, verbatim (owned) */
    RunConfig base;              /* base: alone (not cross-checked when the file expands to other runs) */
    RunSpec *runs;               /* the expanded runs, in order (owned); at least one */
    int n_runs;
    /* the keys the runs vary over: the grid axes in file order, then
     * train.seed when seeds: is given (dotted paths) */
    int n_axes;
    char axis_names[CFG_MAX_AXES][CFG_STR];
    /* the statistics (issue 16; experiments/stats.h) */
    char compare_to[CFG_RUN_NAME]; /* compare_to: the reference configuration (a run name without seed=N); "" = none */
    double target_top1;          /* target_top1: validation top-1 (percent) for time-to-accuracy; 0 = none */
} ExperimentConfig;

/* Fill every field with its default. */
void config_defaults(RunConfig *c);

/* The validation images of a run whose training file has n_train images:
 * data.val_split resolved (-1: 5,000 for fashion_mnist and cifar10, 10,000
 * for imagenet, 0 for the detection datasets; a fraction: rounded down). */
long config_val_split(const RunConfig *c, long n_train);
/* the fixed evaluation precision of a run (precision.eval_bits, 0 = the top
 * of precision.bits; 32 for full precision) */
int config_eval_bits(const RunConfig *c);

/* Parse, validate and expand a file. On error returns -1 and writes one
 * message "FILE:LINE:COL: what is wrong (hint)" into err; a constraint between
 * keys that fails in one expanded run reads "FILE:LINE:COL: in run 'NAME':
 * ...", pointing at the grid value or runs: override to blame. Nothing else
 * is touched on error. On success free with experiment_free. */
int experiment_load(ExperimentConfig *e, const char *path, char *err, size_t errlen);
/* Same, from a string (tests, fuzzing); `path` is used in messages only. */
int experiment_parse(ExperimentConfig *e, const char *text, size_t len, const char *path, char *err, size_t errlen);
/* Frees yaml_text and runs (and clears them: calling it twice is harmless). */
void experiment_free(ExperimentConfig *e);

/* The resolved configuration as YAML (every key, defaults included), for the
 * results file. Returns a malloc'd string. */
char *config_to_yaml(const RunConfig *c);
/* Print the schema table (key, type, default, range, description). */
void config_print_schema(FILE *f);
/* The YAML name of value `value` of the enum-valued key `key` (a dotted path:
 * config_enum_name("precision.schedule", PREC_CYCLIC) is "cyclic"), a static
 * string; "?" when key has no list of values or value is none of them. */
const char *config_enum_name(const char *key, int value);

#endif
