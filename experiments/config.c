/* Run configuration: the YAML schema (see config.h).
 *
 * Everything about a key of `base:` -- dotted path, type, default, range,
 * description -- lives in the KEYS table below; defaults, parsing, validation,
 * config_to_yaml and config_print_schema are all driven by it, so adding a key
 * means adding one row (and a RunConfig field).
 *
 * The file is read with libyaml's event API rather than its document API: the
 * document loader silently resolves aliases (including recursive ones) and
 * does not report duplicate keys, while with events we see every alias and
 * every key with its position, and we stop at the first thing that does not
 * fit the schema, so hostile input never makes us walk deep structures.
 *
 * grid:, seeds: and runs: (see config.h) are read into axes and run
 * definitions while parsing, because base: may come after them in the file;
 * the runs are expanded and cross-checked once the whole file is read.
 * Every list the file can grow (axis values, runs) is capped at
 * CFG_MAX_RUNS entries as it is read, so the linear scans for duplicates
 * stay small; the expanded names are checked for repeats by sorting.
 *
 * Scalar rules (documented in experiments/README.md):
 *   integers  [+-]?digits, single '_' allowed between digits (60_000)
 *   numbers   [+-]?(digits[.digits]|.digits)([eE][+-]?digits), '_' as above;
 *             .inf/.nan and anything overflowing to infinity are rejected
 *   booleans  true/false, yes/no, on/off (any case)
 *   bits      one integer n (= [n, n]) or a sequence of two integers [min, max]
 *   lists     a sequence (flow or block) of up to CFG_LIST_MAX numbers, each
 *             range-checked like a number key; [] only where the key allows it
 *   numbers and booleans must be unquoted; strings may be either
 *   an empty value, ~ or null means "" for strings and {} for mappings
 *   tags are ignored; aliases are rejected; dotted keys (optim.lr: 0.1) are
 *   accepted and mean the same as nesting. */
#include "ops/conv2d_onednn.h"
#include "config.h"
#include "stats.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "engine_options.h" /* data_shape_from_config: the training-set size behind train.epochs */

/* T_BITS: a BitRange, written as one integer (n = [n, n]) or a list [min, max].
 * T_ENUM: one of a list of names, stored as the matching value of an enum
 * field (an int-sized one); it reads, prints and is described like a string
 * with a list of allowed values.
 * T_DLIST: a list of up to CFG_LIST_MAX numbers, each in the key's range,
 * stored as `double x[CFG_LIST_MAX]; int n_x;` with the count right after the
 * array: the key's field is that whole span (DLIST_FIELD), so that every
 * generic copy and comparison of a key's bytes (runs: overrides, grid values,
 * duplicate values) carries the count with the numbers. Unused elements stay
 * 0, so configs still compare with memcmp. */
typedef enum { T_STR, T_INT, T_LONG, T_DOUBLE, T_BOOL, T_U64, T_BITS, T_ENUM, T_DLIST } KeyType;

typedef struct {
    const char *key;             /* dotted path under base: */
    KeyType type;
    size_t off, size;            /* field in RunConfig */
    const char *const *choices;  /* T_STR: allowed values (NULL-terminated), NULL = free text;
                                  * T_ENUM: the names of its values, in the order messages list them */
    const int *values;           /* T_ENUM: the value of each name of choices */
    const char *def;             /* default, as YAML text, parsed by the same code as file values */
    char lo_kind, hi_kind;       /* 0 = unbounded; '[' ']' inclusive, '(' ')' exclusive */
    double lo, hi;               /* T_DLIST: the range of each element */
    int list_min;                /* T_DLIST: fewest elements (0 allows []) */
    int list_increasing;         /* T_DLIST: the elements must be strictly increasing */
    const char *help;
} KeyDef;

static const char *const ARCHS[] = {"cifar_resnet18", "cifar_resnet20", "cifar_resnet8",
                                    "imagenet_resnet18", "vgg_small", "frcnn_resnet18", NULL};
/* cifar10 and imagenet have no loader yet: the driver says so when it loads them */
static const char *const DATASETS[] = {"fashion_mnist", "cifar10", "imagenet", "voc", "synth_voc", NULL};
/* the detector and the datasets it reads (cross_check pairs them) */
#define DETECT_ARCH "frcnn_resnet18"
static int is_detection_dataset(const char *d) { return !strcmp(d, "voc") || !strcmp(d, "synth_voc"); }

/* The enum-valued keys: the names (in the order the schema and the messages
 * list them) and, at the same index, the value each name stands for. */
static const char *const CONVS[] = {"fp32", "cyclebnn", NULL};
static const int CONV_VALUES[] = {CONV_FP32, CONV_BINARY};
static const char *const OPTIMIZERS[] = {"adamw", "sgd", NULL};
static const int OPTIMIZER_VALUES[] = {OPTIM_ADAMW, OPTIM_SGD};
static const char *const SCHEDULES[] = {"cosine", "step", "constant", NULL};
static const int SCHEDULE_VALUES[] = {LR_COSINE, LR_STEP, LR_CONSTANT};
static const char *const PREC_SCHEDULES[] = {"cyclic", "fixed", "full", NULL};
static const int PREC_SCHEDULE_VALUES[] = {PREC_CYCLIC, PREC_FIXED, PREC_FULL};
static const char *const PREC_EVALS[] = {"faithful", "fixed", NULL};
static const int PREC_EVAL_VALUES[] = {PREC_EVAL_FAITHFUL, PREC_EVAL_FIXED};
static const char *const SIGN_ZEROS[] = {"zero", "plus_one", NULL};
static const int SIGN_ZERO_VALUES[] = {SIGN_ZERO_IS_ZERO, SIGN_ZERO_IS_PLUS_ONE};
static const char *const PADS[] = {"zero", "minus_one", NULL};
static const int PAD_VALUES[] = {BIN_PAD_ZERO, BIN_PAD_MINUS_ONE};
static const char *const ACT_GRADS[] = {"approx_sign", "ste", NULL};
static const int ACT_GRAD_VALUES[] = {ACT_GRAD_APPROX_SIGN, ACT_GRAD_STE};
static const char *const BACKWARDS[] = {"int8", "fp32", NULL};
static const int BACKWARD_VALUES[] = {BIN_BACKWARD_INT8, BIN_BACKWARD_FP32};
static const char *const FP32_CONVS[] = {"native", "onednn", NULL};
static const int FP32_CONV_VALUES[] = {FP32_CONV_NATIVE, FP32_CONV_ONEDNN};
static const char *const MEMORIES[] = {"fast", "lean", NULL};
static const int MEMORY_VALUES[] = {0, 1};
static const char *const RPN_CONVS[] = {"bidet", "cyclebnn", "fp32", NULL};
static const int RPN_CONV_VALUES[] = {RPN_CONV_BIDET, RPN_CONV_CYCLEBNN, RPN_CONV_FP32};
static const char *const BOX_NOISES[] = {"always", "train", "off", NULL};
static const int BOX_NOISE_VALUES[] = {DET_NOISE_ALWAYS, DET_NOISE_TRAIN, DET_NOISE_OFF};
static const char *const RPN_WEIGHTS[] = {"last_image", "per_image", NULL};
static const int RPN_WEIGHT_VALUES[] = {DET_RPN_WEIGHT_LAST_IMAGE, DET_RPN_WEIGHT_PER_IMAGE};
static const char *const IB_STARTS[] = {"first_decay", "always", "never", NULL};
static const int IB_START_VALUES[] = {DET_IB_FIRST_DECAY, DET_IB_ALWAYS, DET_IB_NEVER};

/* every name has a value */
#define SAME_LENGTH(names, values) \
    _Static_assert(sizeof names / sizeof names[0] == sizeof values / sizeof values[0] + 1, #names)
SAME_LENGTH(CONVS, CONV_VALUES);
SAME_LENGTH(OPTIMIZERS, OPTIMIZER_VALUES);
SAME_LENGTH(SCHEDULES, SCHEDULE_VALUES);
SAME_LENGTH(PREC_SCHEDULES, PREC_SCHEDULE_VALUES);
SAME_LENGTH(PREC_EVALS, PREC_EVAL_VALUES);
SAME_LENGTH(SIGN_ZEROS, SIGN_ZERO_VALUES);
SAME_LENGTH(PADS, PAD_VALUES);
SAME_LENGTH(ACT_GRADS, ACT_GRAD_VALUES);
SAME_LENGTH(BACKWARDS, BACKWARD_VALUES);
SAME_LENGTH(FP32_CONVS, FP32_CONV_VALUES);
SAME_LENGTH(MEMORIES, MEMORY_VALUES);
SAME_LENGTH(RPN_CONVS, RPN_CONV_VALUES);
SAME_LENGTH(BOX_NOISES, BOX_NOISE_VALUES);
SAME_LENGTH(RPN_WEIGHTS, RPN_WEIGHT_VALUES);
SAME_LENGTH(IB_STARTS, IB_START_VALUES);

/* a T_ENUM field is stored and read as an int */
#define INT_SIZED(f) _Static_assert(sizeof(((RunConfig *)0)->f) == sizeof(int), "RunConfig." #f " is not int-sized")
INT_SIZED(conv);
INT_SIZED(sign_zero);
INT_SIZED(bin_pad);
INT_SIZED(act_grad);
INT_SIZED(bin_backward);
INT_SIZED(fp32_conv);
INT_SIZED(train_memory);
INT_SIZED(optimizer);
INT_SIZED(lr_schedule);
INT_SIZED(prec_schedule);
INT_SIZED(prec_eval);
INT_SIZED(rpn_conv);
INT_SIZED(box_noise);
INT_SIZED(rpn_weight);
INT_SIZED(ib_start);

#define FIELD(f) .off = offsetof(RunConfig, f), .size = sizeof(((RunConfig *)0)->f)
/* a T_DLIST key: the array and its count, one span of bytes */
#define DLIST_SIZE (CFG_LIST_MAX * sizeof(double) + sizeof(int))
#define DLIST_FIELD(f) .off = offsetof(RunConfig, f), .size = DLIST_SIZE
#define DLIST_SPAN(f, n)                                                                                        \
    _Static_assert(sizeof(((RunConfig *)0)->f) == CFG_LIST_MAX * sizeof(double) &&                              \
                       offsetof(RunConfig, n) == offsetof(RunConfig, f) + CFG_LIST_MAX * sizeof(double) &&      \
                       sizeof(((RunConfig *)0)->n) == sizeof(int),                                              \
                   "RunConfig." #n " does not follow " #f)
DLIST_SPAN(step_epochs, n_step_epochs);
DLIST_SPAN(anchor_scales, n_anchor_scales);
DLIST_SPAN(anchor_ratios, n_anchor_ratios);
#define GE(a) .lo_kind = '[', .lo = (a)
#define GT(a) .lo_kind = '(', .lo = (a)
#define LE(b) .hi_kind = ']', .hi = (b)
#define LT(b) .hi_kind = ')', .hi = (b)

/* Keys sharing a prefix must be contiguous: config_to_yaml opens each
 * mapping once (the round-trip test would catch a violation). */
static const KeyDef KEYS[] = {
    {"model.arch", T_STR, FIELD(arch), .choices = ARCHS, .def = "cifar_resnet20",
     .help = "network architecture"},
    {"model.conv", T_ENUM, FIELD(conv), .choices = CONVS, .values = CONV_VALUES, .def = "fp32",
     .help = "convolution of the binary layers (cyclebnn = method.md 3)"},
    {"model.fp32_conv", T_ENUM, FIELD(fp32_conv), .choices = FP32_CONVS, .values = FP32_CONV_VALUES, .def = "native",
     .help = "backend of the fp32 convs: ours (bitwise independent of the thread count) or oneDNN"},
    {"model.width", T_INT, FIELD(width), .def = "64", GE(4), LE(512),
     .help = "detector: base channel width of its ResNet-18 (64 = the paper)"},

    /* options of the cyclebnn conv; every default is what the authors' code does */
    {"binary.sign_zero", T_ENUM, FIELD(sign_zero), .choices = SIGN_ZEROS, .values = SIGN_ZERO_VALUES, .def = "zero",
     .help = "sign(0): 0 as torch.sign, or +1"},
    {"binary.pad", T_ENUM, FIELD(bin_pad), .choices = PADS, .values = PAD_VALUES, .def = "zero",
     .help = "padding of the binary conv input: 0 (PyTorch) or -1"},
    {"binary.act_grad", T_ENUM, FIELD(act_grad), .choices = ACT_GRADS, .values = ACT_GRAD_VALUES, .def = "approx_sign",
     .help = "activation sign gradient: Bi-Real ApproxSign or identity STE"},
    {"binary.act_norm", T_BOOL, FIELD(act_norm), .def = "true",
     .help = "per-sample activation normalisation in training (E3)"},
    {"binary.weight_center", T_BOOL, FIELD(weight_center), .def = "false",
     .help = "ReCU per-channel mean subtraction (commented out upstream)"},
    {"binary.recu_clamp", T_BOOL, FIELD(recu_clamp), .def = "false",
     .help = "ReCU weight clamp at clamp_tau (inert upstream)"},
    /* Q = -mean|W| log(2 - 2 tau) is a positive bound only for tau > 0.5; tau = 1 is no clamp */
    {"binary.clamp_tau", T_DOUBLE, FIELD(clamp_tau), .def = "0.99", GT(0.5), LE(1),
     .help = "ReCU tau (with recu_clamp)"},
    {"binary.grad_quant", T_BOOL, FIELD(grad_quant), .def = "true",
     .help = "quantize the error at the conv output to grad bits (E8)"},
    {"binary.grad_stochastic", T_BOOL, FIELD(grad_stochastic), .def = "true",
     .help = "stochastic rounding of that error"},
    {"binary.backward", T_ENUM, FIELD(bin_backward), .choices = BACKWARDS, .values = BACKWARD_VALUES, .def = "int8",
     .help = "backward products: exact integer sums of the 8-bit error codes (int8), or fp32 GEMMs"},

    {"data.dataset", T_STR, FIELD(dataset), .choices = DATASETS, .def = "fashion_mnist",
     .help = "dataset"},
    {"data.path", T_STR, FIELD(data_path), .def = "",
     .help = "dataset directory (\"\" = the dataset's default location)"},
    {"data.train_subset", T_LONG, FIELD(train_subset), .def = "0", GE(0),
     .help = "use only the first N training images (0 = all)"},
    {"data.test_subset", T_LONG, FIELD(test_subset), .def = "0", GE(0),
     .help = "use only the first N test images (0 = all)"},
    {"data.val_split", T_DOUBLE, FIELD(val_split), .def = "-1", GE(-1), LE(1e9),
     .help = "training images held out for validation (selection): N, a fraction in (0, 1), 0 = none (evaluate "
             "on test, the authors' practice), -1 = the dataset's default (5000 fashion_mnist/cifar10, 10000 "
             "imagenet, 0 voc)"},
    {"data.split_seed", T_U64, FIELD(split_seed), .def = "0",
     .help = "draws the validation images; independent of train.seed, so every run of a grid shares them"},
    {"data.normalize", T_BOOL, FIELD(normalize), .def = "true",
     .help = "subtract the dataset mean, divide by its std"},
    {"data.augment.flip", T_BOOL, FIELD(aug_flip), .def = "false",
     .help = "random horizontal flip"},
    {"data.augment.crop_pad", T_INT, FIELD(aug_crop_pad), .def = "0", GE(0), LE(64),
     .help = "random crop after padding by this many pixels (0 = off)"},
    {"data.augment.crop_fill_mean", T_BOOL, FIELD(aug_crop_fill_mean), .def = "false",
     .help = "pad the crop with the mean pixel instead of 0 (CIFAR recipe)"},
    {"data.augment.autoaugment", T_BOOL, FIELD(aug_autoaugment), .def = "false",
     .help = "AutoAugment CIFAR-10 policy, fill = mean (CIFAR-10)"},
    {"data.augment.cutout", T_INT, FIELD(aug_cutout), .def = "0", GE(0), LE(64),
     .help = "Cutout: one square hole of this side (0 = off; CIFAR recipe 16)"},
    {"data.augment.random_resized_crop", T_BOOL, FIELD(aug_rrc), .def = "false",
     .help = "RandomResizedCrop to data.image_size (ImageNet)"},
    {"data.augment.rrc_scale_min", T_DOUBLE, FIELD(rrc_scale_min), .def = "0.08", GT(0), LE(10),
     .help = "RandomResizedCrop area fraction, lower end"},
    {"data.augment.rrc_scale_max", T_DOUBLE, FIELD(rrc_scale_max), .def = "1.25", GT(0), LE(10),
     .help = "RandomResizedCrop area fraction, upper end (the recipe's 1.25)"},
    {"data.augment.rrc_ratio_min", T_DOUBLE, FIELD(rrc_ratio_min), .def = "0.75", GT(0), LE(10),
     .help = "RandomResizedCrop aspect ratio, lower end"},
    {"data.augment.rrc_ratio_max", T_DOUBLE, FIELD(rrc_ratio_max), .def = "1.3333333333333333", GT(0), LE(10),
     .help = "RandomResizedCrop aspect ratio, upper end"},
    {"data.augment.lighting", T_BOOL, FIELD(aug_lighting), .def = "false",
     .help = "AlexNet PCA lighting as the original applies it (ImageNet)"},
    {"data.image_size", T_INT, FIELD(image_size), .def = "224", GE(8), LE(1024),
     .help = "output side of streaming datasets (ImageNet crops)"},
    {"data.eval_resize", T_INT, FIELD(eval_resize), .def = "256", GE(8), LE(2048),
     .help = "evaluation: shorter side resized to this, then centre crop of image_size"},
    {"data.skip_bad", T_BOOL, FIELD(skip_bad), .def = "false",
     .help = "skip unreadable images (counted in the run's log) instead of failing"},
    {"data.loader_workers", T_INT, FIELD(loader_workers), .def = "0", GE(0), LE(64),
     .help = "threads decoding batches ahead of the step (0 = in the step; same numbers either way)"},
    /* detection datasets (voc, synth_voc) */
    {"data.min_size", T_INT, FIELD(min_size), .def = "600", GE(32), LE(4096),
     .help = "detection: shorter side after resizing"},
    {"data.flip", T_BOOL, FIELD(det_flip), .def = "true",
     .help = "detection: add each training image's horizontal flip (the reference doubles the roidb)"},
    {"data.train_difficult", T_BOOL, FIELD(train_difficult), .def = "true",
     .help = "detection: keep difficult objects in training (their filter is commented out upstream)"},
    {"data.max_gt_boxes", T_INT, FIELD(max_gt_boxes), .def = "20", GE(1), LE(1000),
     .help = "detection: most ground-truth boxes kept per image"},
    {"data.synth_images", T_LONG, FIELD(synth_images), .def = "800", GE(8), LE(1000000),
     .help = "synth_voc: images generated"},

    {"optim.name", T_ENUM, FIELD(optimizer), .choices = OPTIMIZERS, .values = OPTIMIZER_VALUES, .def = "adamw",
     .help = "optimizer"},
    {"optim.lr", T_DOUBLE, FIELD(lr), .def = "1e-3", GT(0),
     .help = "initial learning rate"},
    {"optim.weight_decay", T_DOUBLE, FIELD(weight_decay), .def = "1e-5", GE(0),
     .help = "weight decay (decoupled for adamw, L2 for sgd)"},
    {"optim.beta1", T_DOUBLE, FIELD(beta1), .def = "0.9", GE(0), LT(1),
     .help = "AdamW first-moment decay"},
    {"optim.beta2", T_DOUBLE, FIELD(beta2), .def = "0.999", GE(0), LT(1),
     .help = "AdamW second-moment decay"},
    {"optim.eps", T_DOUBLE, FIELD(eps), .def = "1e-8", GT(0), LE(1),
     .help = "AdamW denominator epsilon"},
    {"optim.momentum", T_DOUBLE, FIELD(momentum), .def = "0.9", GE(0), LT(1),
     .help = "SGD momentum (0 = plain SGD)"},
    {"optim.dampening", T_DOUBLE, FIELD(dampening), .def = "0", GE(0), LE(1),
     .help = "SGD dampening"},
    {"optim.nesterov", T_BOOL, FIELD(nesterov), .def = "false",
     .help = "SGD Nesterov momentum (needs momentum > 0, dampening = 0)"},

    {"schedule.lr", T_ENUM, FIELD(lr_schedule), .choices = SCHEDULES, .values = SCHEDULE_VALUES, .def = "cosine",
     .help = "learning-rate schedule"},
    {"schedule.eta_min", T_DOUBLE, FIELD(eta_min), .def = "0", GE(0),
     .help = "cosine: lowest learning rate"},
    {"schedule.num_cyclic_annealing", T_DOUBLE, FIELD(num_cyclic_annealing), .def = "1", GT(0),
     .help = "cosine: the horizon is divided by this (T < I makes the lr rise again)"},
    {"schedule.step_size", T_LONG, FIELD(step_size), .def = "0", GE(0),
     .help = "step: iterations between decays (must be > 0 for step)"},
    {"schedule.gamma", T_DOUBLE, FIELD(gamma), .def = "0.1", GT(0), LE(1),
     .help = "step: decay factor"},
    {"schedule.warmup_iters", T_LONG, FIELD(warmup_iters), .def = "0", GE(0),
     .help = "linear warm-up iterations, any schedule (0 = off)"},
    {"schedule.cyclic_warmup", T_LONG, FIELD(cyclic_warmup), .def = "0", GE(0), LE(CFG_MAX_ITERATIONS / 4),
     .help = "cosine: the reference code's W; 4W iterations at lr before annealing"},
    {"schedule.step_epochs", T_DLIST, DLIST_FIELD(step_epochs), .def = "[]", GT(0), LE(1e9), .list_min = 0,
     .list_increasing = 1,
     .help = "step: lr x gamma after each of these epochs (the detector's recipe [6, 12, 18, 24])"},

    {"precision.schedule", T_ENUM, FIELD(prec_schedule), .choices = PREC_SCHEDULES, .values = PREC_SCHEDULE_VALUES,
     .def = "full",
     .help = "bits of the binary convs over training (full = 32/32)"},
    {"precision.bits", T_BITS, FIELD(bits), .def = "[2, 6]", GE(1), LE(32),
     .help = "cyclic: [min, max]; fixed: one width"},
    {"precision.grad_bits", T_BITS, FIELD(grad_bits), .def = "8", GE(1), LE(32),
     .help = "error bits: cyclic [min, max] or one width"},
    {"precision.cycles", T_INT, FIELD(prec_cycles), .def = "8", GE(1),
     .help = "cyclic: number of cycles N_cyc"},
    {"precision.warmup_bits", T_INT, FIELD(warmup_bits), .def = "0", GE(0), LE(32),
     .help = "cyclic: bits of the first 4W iterations (0 = none)"},
    {"precision.eval", T_ENUM, FIELD(prec_eval), .choices = PREC_EVALS, .values = PREC_EVAL_VALUES, .def = "faithful",
     .help = "evaluation bits: those of the last training step, or eval_bits"},
    {"precision.eval_bits", T_INT, FIELD(eval_bits), .def = "0", GE(0), LE(32),
     .help = "fixed evaluation bits: those of precision.eval fixed, and of every cyclic run's second test "
             "evaluation (0 = the top of precision.bits)"},

    {"train.iterations", T_LONG, FIELD(iterations), .def = "0", GE(0), LE(CFG_MAX_ITERATIONS),
     .help = "iterations to train (0 = use train.epochs; at most 2^40)"},
    {"train.epochs", T_DOUBLE, FIELD(epochs), .def = "1", GE(0),
     .help = "epochs to train when iterations = 0 (fractions allowed; must then be > 0)"},
    {"train.batch_size", T_INT, FIELD(batch_size), .def = "16", GE(1), LE(65536),
     .help = "training mini-batch size"},
    {"train.eval_batch_size", T_INT, FIELD(eval_batch_size), .def = "256", GE(1), LE(65536),
     .help = "evaluation batch size (capped at train.batch_size: activations are sized for it)"},
    {"train.eval_interval", T_LONG, FIELD(eval_interval), .def = "0", GE(0),
     .help = "iterations between test evaluations (0 = once per epoch)"},
    {"train.log_interval", T_LONG, FIELD(log_interval), .def = "50", GE(1),
     .help = "iterations between progress lines / loss records"},
    {"train.seed", T_U64, FIELD(seed), .def = "1",
     .help = "seed of every random stream"},
    {"train.checkpoint_interval", T_LONG, FIELD(checkpoint_interval), .def = "0", GE(0),
     .help = "iterations between checkpoints in the results file (0 = only at the end and on a stop)"},
    {"train.threads", T_INT, FIELD(threads), .def = "0", GE(0), LE(1024),
     .help = "OpenMP threads (0 = OMP_NUM_THREADS / all cores)"},
    {"train.shards", T_INT, FIELD(shards), .def = "1", GE(1), LE(65536),
     .help = "float batch reductions per shard of batch/shards samples, added in a fixed tree: any ranks "
             "dividing it give the same bits (a power of two dividing the batch; 1 = one shard)"},
    {"train.memory", T_ENUM, FIELD(train_memory), .choices = MEMORIES, .values = MEMORY_VALUES, .def = "fast",
     .help = "what backward keeps: every output it reads (fast), or only what it cannot recompute exactly (lean); "
             "the same bits either way"},

    /* the detector (model.arch frcnn_resnet18); every default is the reference's */
    {"detect.rpn_conv", T_ENUM, FIELD(rpn_conv), .choices = RPN_CONVS, .values = RPN_CONV_VALUES, .def = "bidet",
     .help = "RPN 3x3 conv: BiDet's binary conv, CycleBNN's, or fp32"},
    {"detect.anchor_scales", T_DLIST, DLIST_FIELD(anchor_scales), .def = "[8, 16, 32]", GT(0), LE(1e4),
     .list_min = 1, .help = "anchor scales (times the 16-pixel base anchor)"},
    {"detect.anchor_ratios", T_DLIST, DLIST_FIELD(anchor_ratios), .def = "[0.5, 1, 2]", GT(0), LE(1e3),
     .list_min = 1, .help = "anchor aspect ratios (height / width)"},
    {"detect.rpn_pos_iou", T_DOUBLE, FIELD(rpn_pos_iou), .def = "0.7", GT(0), LE(1),
     .help = "an anchor at IoU >= this with a GT box is foreground"},
    {"detect.rpn_neg_iou", T_DOUBLE, FIELD(rpn_neg_iou), .def = "0.3", GE(0), LT(1),
     .help = "an anchor below this IoU with every GT box is background"},
    {"detect.rpn_batch", T_INT, FIELD(rpn_batch), .def = "256", GE(1), LE(100000),
     .help = "anchors labelled per image"},
    {"detect.rpn_fg_fraction", T_DOUBLE, FIELD(rpn_fg_fraction), .def = "0.5", GT(0), LE(1),
     .help = "most foreground share of those"},
    {"detect.pre_nms_train", T_INT, FIELD(pre_nms_train), .def = "12000", GE(1), LE(1000000),
     .help = "training: top proposals by score before NMS"},
    {"detect.post_nms_train", T_INT, FIELD(post_nms_train), .def = "2000", GE(1), LE(1000000),
     .help = "training: proposals kept after NMS"},
    {"detect.pre_nms_test", T_INT, FIELD(pre_nms_test), .def = "6000", GE(1), LE(1000000),
     .help = "test: top proposals by score before NMS"},
    {"detect.post_nms_test", T_INT, FIELD(post_nms_test), .def = "300", GE(1), LE(1000000),
     .help = "test: proposals kept after NMS"},
    {"detect.rpn_nms", T_DOUBLE, FIELD(rpn_nms), .def = "0.7", GT(0), LE(1),
     .help = "IoU threshold of the proposals' NMS"},
    {"detect.proposal_min_size", T_DOUBLE, FIELD(proposal_min_size), .def = "0", GE(0), LE(1e4),
     .help = "drop proposals smaller than this (0 = no filter, as the reference)"},
    {"detect.rois_per_image", T_INT, FIELD(rois_per_image), .def = "256", GE(1), LE(100000),
     .help = "RoIs sampled per image for the head"},
    {"detect.roi_fg_fraction", T_DOUBLE, FIELD(roi_fg_fraction), .def = "0.25", GT(0), LE(1),
     .help = "most foreground share of those"},
    {"detect.roi_fg_iou", T_DOUBLE, FIELD(roi_fg_iou), .def = "0.5", GT(0), LE(1),
     .help = "a RoI at IoU >= this is foreground"},
    {"detect.roi_bg_hi", T_DOUBLE, FIELD(roi_bg_hi), .def = "0.5", GE(0), LE(1),
     .help = "a RoI at IoU in [roi_bg_lo, roi_bg_hi) is background"},
    {"detect.roi_bg_lo", T_DOUBLE, FIELD(roi_bg_lo), .def = "0.0", GE(0), LE(1),
     .help = "lower end of that interval"},
    {"detect.roi_aligned", T_BOOL, FIELD(roi_aligned), .def = "false",
     .help = "RoIAlign with the half-pixel offset (the reference: false)"},
    {"detect.pool_size", T_INT, FIELD(pool_size), .def = "7", GE(1), LE(64),
     .help = "RoIAlign output side"},
    {"detect.rpn_sigma", T_DOUBLE, FIELD(rpn_sigma), .def = "3", GT(0), LE(100),
     .help = "smooth-L1 sigma of the RPN box loss"},
    {"detect.rcnn_sigma", T_DOUBLE, FIELD(rcnn_sigma), .def = "1", GT(0), LE(100),
     .help = "smooth-L1 sigma of the head box loss"},
    {"detect.sample_sigma", T_DOUBLE, FIELD(sample_sigma), .def = "0.001", GE(0), LE(10),
     .help = "BiDet's box sampling: noise scale of the sampled boxes"},
    {"detect.box_noise", T_ENUM, FIELD(box_noise), .choices = BOX_NOISES, .values = BOX_NOISE_VALUES,
     .def = "always", .help = "when the sampled boxes get noise (the reference: in training and test)"},
    {"detect.rpn_weight", T_ENUM, FIELD(rpn_weight), .choices = RPN_WEIGHTS, .values = RPN_WEIGHT_VALUES,
     .def = "last_image", .help = "RPN box loss / labelled anchors of the batch's last image (reference) or each"},
    {"detect.head_prior_zero", T_BOOL, FIELD(head_prior_zero), .def = "true",
     .help = "head prior with no qualifying class is 0 (upstream: 0/0 = NaN)"},
    {"detect.nms_ge", T_BOOL, FIELD(nms_ge), .def = "false",
     .help = "NMS suppresses at IoU >= t instead of > t"},
    {"detect.delta_clamp", T_DOUBLE, FIELD(delta_clamp), .def = "0", GE(0), LE(20),
     .help = "clamp of the decoded dw, dh (0 = none, as the reference)"},
    {"detect.ib_rpn_prior", T_DOUBLE, FIELD(ib_rpn_prior), .def = "0.01", GE(0), LE(100),
     .help = "IB weight of the RPN prior term"},
    {"detect.ib_rpn_reg", T_DOUBLE, FIELD(ib_rpn_reg), .def = "0.5", GE(0), LE(100),
     .help = "IB weight of the RPN feature regulariser"},
    {"detect.ib_head_prior", T_DOUBLE, FIELD(ib_head_prior), .def = "0.05", GE(0), LE(100),
     .help = "IB weight of the head prior term"},
    {"detect.ib_head_reg", T_DOUBLE, FIELD(ib_head_reg), .def = "0.02", GE(0), LE(100),
     .help = "IB weight of the head feature regulariser"},
    {"detect.ib_start", T_ENUM, FIELD(ib_start), .choices = IB_STARTS, .values = IB_START_VALUES,
     .def = "first_decay", .help = "IB weights are 0 until the first lr decay (trainval_net.py), or always, never"},
    {"detect.head_prior_score", T_DOUBLE, FIELD(head_prior_score), .def = "0.01", GE(0), LE(1),
     .help = "class scores above this enter the head prior"},
    {"detect.test_nms", T_DOUBLE, FIELD(test_nms), .def = "0.3", GT(0), LE(1),
     .help = "IoU threshold of the per-class NMS at test"},
    {"detect.test_score", T_DOUBLE, FIELD(test_score), .def = "0.0", GE(0), LE(1),
     .help = "a detection needs a score above this"},
    {"detect.max_per_image", T_INT, FIELD(max_per_image), .def = "100", GE(0), LE(100000),
     .help = "most detections kept per image"},
    {"detect.bn_gamma_init", T_DOUBLE, FIELD(bn_gamma_init), .def = "1e-08", GT(0), LE(10),
     .help = "BN gamma init of a backbone not loaded from a checkpoint (1e-8: the ImageNet ResNet-18's; 1: PyTorch's)"},
    {"detect.backbone_init", T_STR, FIELD(backbone_init), .def = "",
     .help = "\"RESULTS.h5:RUN\": backbone from that classification run's checkpoint (\"\" = none)"},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

enum { TOP_NAME, TOP_DESCRIPTION, TOP_BASE, TOP_GRID, TOP_SEEDS, TOP_RUNS, TOP_COMPARE_TO, TOP_TARGET_TOP1, N_TOP };
static const char *const TOP_KEYS[] = {"name", "description", "base", "grid", "seeds", "runs", "compare_to",
                                       "target_top1", NULL};

/* a runs: name is an HDF5 group name: a short word of safe characters */
#define RUN_NAME_MAX 64

/* longest dotted path we ever need to hold (the table's are far shorter) */
#define MAXPATH 128

/* ---------------------------------------------------------------- helpers */

static void fmt_double(char *buf, size_t cap, double v); /* shortest round trip (output section) */

static int is_null_word(const char *s, size_t n) {
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static int ieq(const char *s, size_t n, const char *word) {
    size_t m = strlen(word);
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return 0;
    }
    return 1;
}

/* Text from the file, made safe for a one-line message: control characters
 * escaped, values longer than `limit` bytes cut. */
static const char *show_n(char *buf, size_t cap, const char *s, size_t n, size_t limit) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '\n') strcpy(tmp, "\\n");
        else if (c == '\t') strcpy(tmp, "\\t");
        else if (c < 0x20 || c == 0x7f) snprintf(tmp, sizeof tmp, "\\x%02x", c);
        else { tmp[0] = (char)c; tmp[1] = 0; }
        size_t t = strlen(tmp);
        if (i >= limit || o + t + 4 >= cap) {
            if (o + 4 <= cap) { memcpy(buf + o, "...", 3); o += 3; }
            break;
        }
        memcpy(buf + o, tmp, t);
        o += t;
    }
    buf[o] = 0;
    return buf;
}

static const char *show(char *buf, size_t cap, const char *s, size_t n) { return show_n(buf, cap, s, n, 60); }

/* Levenshtein distance; inputs are cut at 64 bytes (typos are short). */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb) {
    size_t row[65];
    if (na > 64) na = 64;
    if (nb > 64) nb = 64;
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* how far a typo may be from a suggestion, by the length of what was typed */
static size_t typo_budget(size_t typed_len) {
    return typed_len <= 3 ? 1 : typed_len <= 8 ? 2 : 3;
}

static const KeyDef *find_key(const char *path) {
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].key, path)) return &KEYS[i];
    return NULL;
}

/* "optim" and "data.augment" are prefixes: they hold a mapping */
static int is_prefix(const char *path) {
    size_t n = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (!strncmp(KEYS[i].key, path, n) && KEYS[i].key[n] == '.') return 1;
    return 0;
}

static void *field(RunConfig *c, const KeyDef *k) { return (char *)c + k->off; }
static const void *cfield(const RunConfig *c, const KeyDef *k) { return (const char *)c + k->off; }

/* the name of value v of a T_ENUM key; "?" for a value it does not have */
static const char *enum_name(const KeyDef *k, int v) {
    for (int i = 0; k->choices[i]; i++)
        if (k->values[i] == v) return k->choices[i];
    return "?";
}

const char *config_enum_name(const char *key, int value) {
    const KeyDef *k = key ? find_key(key) : NULL;
    return k && k->type == T_ENUM ? enum_name(k, value) : "?";
}

static const char *type_name(const KeyDef *k) {
    switch (k->type) {
    case T_STR: case T_ENUM: return "string";
    case T_INT: case T_LONG: return "int";
    case T_DOUBLE: return "number";
    case T_BOOL: return "bool";
    case T_U64: return "uint64";
    case T_BITS: return "bits";
    case T_DLIST: return "list";
    }
    return "?";
}

/* for "key 'x' expects ..., got ..." */
static const char *expects_what(const KeyDef *k) {
    switch (k->type) {
    case T_STR: case T_ENUM: return "a string";
    case T_BOOL: return "true or false";
    case T_DOUBLE: return "a number";
    case T_U64: return "a non-negative integer";
    case T_BITS: return "a bit width or a list [min, max]";
    case T_DLIST: return "a list of numbers";
    default: return "an integer";
    }
}

/* "[1, 65536]", "> 0", ">= 0", "" (unbounded) */
/* %.15g: a bound such as 2^40 in full, not 1.09951e+12 */
static void range_str(const KeyDef *k, char *buf, size_t cap) {
    if (k->lo_kind && k->hi_kind)
        snprintf(buf, cap, "%c%.15g, %.15g%c", k->lo_kind, k->lo, k->hi, k->hi_kind);
    else if (k->lo_kind)
        snprintf(buf, cap, "%s %.15g", k->lo_kind == '[' ? ">=" : ">", k->lo);
    else if (k->hi_kind)
        snprintf(buf, cap, "%s %.15g", k->hi_kind == ']' ? "<=" : "<", k->hi);
    else
        buf[0] = 0;
}

static int in_range(const KeyDef *k, double v) {
    if (k->lo_kind == '[' && !(v >= k->lo)) return 0;
    if (k->lo_kind == '(' && !(v > k->lo)) return 0;
    if (k->hi_kind == ']' && !(v <= k->hi)) return 0;
    if (k->hi_kind == ')' && !(v < k->hi)) return 0;
    return 1;
}

static void range_error(const KeyDef *k, const char *got, char *msg, size_t cap) {
    char r[96];
    range_str(k, r, sizeof r);
    if (k->lo_kind && k->hi_kind)
        snprintf(msg, cap, "key '%s' must be in %s, got %s", k->key, r, got);
    else
        snprintf(msg, cap, "key '%s' must be %s, got %s", k->key, r, got);
}

/* Reads [0-9](_?[0-9])* at s[*i], appending the digits to out[*o]. Returns
 * the number of digits, or -1 when out is full. */
static int scan_digits(const char *s, size_t n, size_t *i, char *out, size_t *o, size_t cap) {
    int count = 0;
    while (*i < n) {
        char c = s[*i];
        if (c >= '0' && c <= '9') {
            if (*o + 1 >= cap) return -1;
            out[(*o)++] = c;
            count++;
            (*i)++;
        } else if (c == '_' && count > 0 && *i + 1 < n && s[*i + 1] >= '0' && s[*i + 1] <= '9') {
            (*i)++;
        } else {
            break;
        }
    }
    return count;
}

/* Checks the number grammar (see the top of the file) and copies the number
 * without underscores into out. Returns 1 for an integer, 2 for a number with
 * a fraction or exponent, 0 when it is not a number, -1 when it is too long. */
static int scan_number(const char *s, size_t n, char *out, size_t cap) {
    size_t i = 0, o = 0;
    int kind = 1;
    if (i < n && (s[i] == '+' || s[i] == '-')) out[o++] = s[i++];
    int whole = scan_digits(s, n, &i, out, &o, cap);
    if (whole < 0) return -1;
    int frac = 0;
    if (i < n && s[i] == '.') {
        kind = 2;
        if (o + 1 >= cap) return -1;
        out[o++] = s[i++];
        frac = scan_digits(s, n, &i, out, &o, cap);
        if (frac < 0) return -1;
    }
    if (whole + frac == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        kind = 2;
        if (o + 2 >= cap) return -1;
        out[o++] = 'e';
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) out[o++] = s[i++];
        int ex = scan_digits(s, n, &i, out, &o, cap);
        if (ex < 0) return -1;
        if (ex == 0) return 0;
    }
    if (i != n) return 0;
    out[o] = 0;
    return kind;
}

/* .inf, -.Inf, nan, infinity...: numbers, but not finite ones */
static int looks_nonfinite(const char *s, size_t n) {
    if (n && (s[0] == '+' || s[0] == '-')) { s++; n--; }
    if (n && s[0] == '.') { s++; n--; }
    return ieq(s, n, "inf") || ieq(s, n, "infinity") || ieq(s, n, "nan");
}

/* The index of s[0..n) in k->choices, or -1. */
static int choice_index(const KeyDef *k, const char *s, size_t n) {
    for (int i = 0; k->choices[i]; i++)
        if (strlen(k->choices[i]) == n && !memcmp(k->choices[i], s, n)) return i;
    return -1;
}

/* "key '...' must be one of a, b, c; got '...'", with the nearest name when
 * one is close to s[0..n) (shown = s as messages print it). */
static void choice_error(const KeyDef *k, const char *s, size_t n, const char *shown, char *msg, size_t cap) {
    size_t best = (size_t)-1;
    const char *near = NULL;
    char list[256] = "";
    for (const char *const *ch = k->choices; *ch; ch++) {
        size_t d = edit_distance(s, n, *ch, strlen(*ch));
        if (d < best) { best = d; near = *ch; }
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", *ch);
    }
    if (near && best <= typo_budget(n))
        snprintf(msg, cap, "key '%s' must be one of %s; got '%s' (did you mean '%s'?)", k->key, list, shown, near);
    else
        snprintf(msg, cap, "key '%s' must be one of %s; got '%s'", k->key, list, shown);
}

/* T_STR and T_ENUM: text, quoted or not (a plain null word is ""); a key
 * with a list of names takes one of them, a T_ENUM key stores its value. */
static int set_text_value(const KeyDef *k, RunConfig *c, const char *s, size_t n, int plain, const char *shown,
                          char *msg, size_t cap) {
    if (plain && is_null_word(s, n)) n = 0;
    if (memchr(s, 0, n)) {
        snprintf(msg, cap, "key '%s' must not contain a NUL character", k->key);
        return -1;
    }
    if (k->choices) {
        const int i = choice_index(k, s, n);
        if (i < 0) {
            choice_error(k, s, n, shown, msg, cap);
            return -1;
        }
        if (k->type == T_ENUM) {
            memcpy(field(c, k), &k->values[i], sizeof(int));
            return 0;
        }
    } else if (n >= k->size) {
        snprintf(msg, cap, "key '%s' is too long (%zu bytes, at most %zu)", k->key, n, k->size - 1);
        return -1;
    }
    memset(field(c, k), 0, k->size);
    if (n) memcpy(field(c, k), s, n);
    return 0;
}

static int set_bool_value(const KeyDef *k, RunConfig *c, const char *s, size_t n, const char *shown, char *msg,
                          size_t cap) {
    int v;
    if (ieq(s, n, "true") || ieq(s, n, "yes") || ieq(s, n, "on")) v = 1;
    else if (ieq(s, n, "false") || ieq(s, n, "no") || ieq(s, n, "off")) v = 0;
    else {
        snprintf(msg, cap, "key '%s' expects true or false (or yes/no, on/off), got '%s'", k->key, shown);
        return -1;
    }
    *(int *)field(c, k) = v;
    return 0;
}

/* T_DOUBLE: num is s[0..n) without underscores, kind what scan_number said of it */
static int set_double_value(const KeyDef *k, RunConfig *c, const char *s, size_t n, int kind, const char *num,
                            const char *shown, char *msg, size_t cap) {
    if (kind == 0) {
        if (looks_nonfinite(s, n))
            snprintf(msg, cap, "key '%s' expects a finite number, got '%s'", k->key, shown);
        else
            snprintf(msg, cap, "key '%s' expects a number, got '%s'", k->key, shown);
        return -1;
    }
    char *end;
    double v = strtod(num, &end);
    if (*end || !isfinite(v)) {
        snprintf(msg, cap, "key '%s' expects a finite number, got '%s' (overflow)", k->key, shown);
        return -1;
    }
    if (!in_range(k, v)) {
        range_error(k, shown, msg, cap);
        return -1;
    }
    *(double *)field(c, k) = v;
    return 0;
}

/* T_U64: num is an integer without underscores */
static int set_u64_value(const KeyDef *k, RunConfig *c, const char *num, const char *shown, char *msg, size_t cap) {
    /* strtoull would quietly wrap "-1" */
    if (num[0] == '-') {
        snprintf(msg, cap, "key '%s' expects a non-negative integer, got '%s'", k->key, shown);
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(num, &end, 10);
    if (errno == ERANGE || *end) {
        snprintf(msg, cap, "key '%s' must be in [0, %llu], got %s", k->key, (unsigned long long)UINT64_MAX, shown);
        return -1;
    }
    *(uint64_t *)field(c, k) = (uint64_t)v;
    return 0;
}

/* T_INT, T_LONG and T_BITS (one width n, stored as [n, n]): num is an
 * integer without underscores */
static int set_int_value(const KeyDef *k, RunConfig *c, const char *num, const char *shown, char *msg, size_t cap) {
    char *end;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    const int is_int = k->type == T_INT || k->type == T_BITS;
    long long tmin = is_int ? INT_MIN : LONG_MIN;
    long long tmax = is_int ? INT_MAX : LONG_MAX;
    if (errno == ERANGE || *end || v < tmin || v > tmax) {
        /* the C type's limits, combined with the table's */
        long long lo = tmin, hi = tmax;
        if (k->lo_kind) lo = (long long)k->lo + (k->lo_kind == '(');
        if (k->hi_kind) hi = (long long)k->hi - (k->hi_kind == ')');
        snprintf(msg, cap, "key '%s' must be in [%lld, %lld], got %s", k->key, lo, hi, shown);
        return -1;
    }
    if (!in_range(k, (double)v)) {
        range_error(k, shown, msg, cap);
        return -1;
    }
    if (k->type == T_INT) {
        *(int *)field(c, k) = (int)v;
    } else if (k->type == T_BITS) {
        /* one width n is the range [n, n] */
        BitRange r = {(int)v, (int)v};
        memcpy(field(c, k), &r, sizeof r);
    } else {
        *(long *)field(c, k) = (long)v;
    }
    return 0;
}

/* Parses s[0..n) (plain = an unquoted YAML scalar) as the value of key k and
 * stores it in c. On failure writes "key '...' ..." into msg, leaves c alone
 * and returns -1. Used for file values and for the table's defaults alike. */
static int set_value(const KeyDef *k, RunConfig *c, const char *s, size_t n, int plain,
                     char *msg, size_t cap) {
    char shown[96], num[320];
    show(shown, sizeof shown, s, n);
    const char *expects = expects_what(k);

    if (k->type == T_STR || k->type == T_ENUM) return set_text_value(k, c, s, n, plain, shown, msg, cap);
    /* a list arrives here only as a scalar, which it never is (parse_dlist_from reads sequences) */
    if (k->type == T_DLIST) {
        if (plain && is_null_word(s, n))
            snprintf(msg, cap, "key '%s' expects %s, got an empty value%s", k->key, expects,
                     k->list_min == 0 ? " (write [] for none)" : "");
        else
            snprintf(msg, cap, "key '%s' expects %s, got %s'%s' (write [%s] for a list of one)", k->key, expects,
                     plain ? "" : "the quoted string ", shown, shown);
        return -1;
    }

    /* Numbers and booleans are typed by their spelling; a quoted "0.01" is a
     * string in YAML, and accepting it would hide a mistake elsewhere. */
    if (!plain) {
        snprintf(msg, cap, "key '%s' expects %s, got the quoted string \"%s\" (remove the quotes)", k->key,
                 expects, shown);
        return -1;
    }
    if (is_null_word(s, n)) {
        snprintf(msg, cap, "key '%s' expects %s, got an empty value", k->key, expects);
        return -1;
    }
    if (k->type == T_BOOL) return set_bool_value(k, c, s, n, shown, msg, cap);

    int kind = scan_number(s, n, num, sizeof num);
    if (kind < 0) {
        snprintf(msg, cap, "key '%s': number '%s' has too many digits", k->key, shown);
        return -1;
    }
    if (k->type == T_DOUBLE) return set_double_value(k, c, s, n, kind, num, shown, msg, cap);
    if (kind != 1) {
        snprintf(msg, cap, "key '%s' expects %s, got '%s'", k->key, expects, shown);
        return -1;
    }
    if (k->type == T_U64) return set_u64_value(k, c, num, shown, msg, cap);
    return set_int_value(k, c, num, shown, msg, cap);
}

/* ---------------------------------------------------------------- lists of numbers (T_DLIST) */

/* The numbers of a list held in field bytes f (the count clamped to the
 * array, for a field filled by hand); returns the count. */
static int dlist_get(const void *f, double v[CFG_LIST_MAX]) {
    int n;
    memcpy(&n, (const char *)f + CFG_LIST_MAX * sizeof(double), sizeof n);
    if (n < 0) n = 0;
    if (n > CFG_LIST_MAX) n = CFG_LIST_MAX;
    memcpy(v, f, (size_t)n * sizeof(double));
    return n;
}

/* the unused elements are zeroed: configs compare with memcmp */
static void dlist_set(const KeyDef *k, RunConfig *c, const double *v, int n) {
    char *f = field(c, k);
    memset(f, 0, DLIST_SIZE);
    memcpy(f, v, (size_t)n * sizeof(double));
    memcpy(f + CFG_LIST_MAX * sizeof(double), &n, sizeof n);
}

/* One element of list key k, s[0..n): a number in the key's range (read
 * like the value of a number key, so with the same messages) and, where the
 * key asks for it, above the previous element (prev; NULL for the first). */
static int dlist_element(const KeyDef *k, const char *s, size_t n, int plain, const double *prev, double *out,
                         char *msg, size_t cap) {
    KeyDef elem = *k;
    elem.type = T_DOUBLE;
    elem.size = sizeof(double);
    RunConfig scratch;
    if (set_value(&elem, &scratch, s, n, plain, msg, cap)) return -1;
    double v;
    memcpy(&v, cfield(&scratch, &elem), sizeof v);
    if (prev && k->list_increasing && !(v > *prev)) {
        char shown[96], before[40];
        fmt_double(before, sizeof before, *prev);
        snprintf(msg, cap, "key '%s' must be strictly increasing, got %s after %s", k->key,
                 show(shown, sizeof shown, s, n), before);
        return -1;
    }
    *out = v;
    return 0;
}

/* a list written in the key table: "[]" or "[a, b, ...]" */
static int dlist_from_text(const KeyDef *k, RunConfig *c, const char *t, char *msg, size_t cap) {
    size_t len = strlen(t);
    if (len < 2 || t[0] != '[' || t[len - 1] != ']') {
        snprintf(msg, cap, "key '%s': a list default is written [a, b, ...], got '%s'", k->key, t);
        return -1;
    }
    double v[CFG_LIST_MAX];
    int n = 0;
    const char *q = t + 1, *end = t + len - 1;
    while (q < end && *q == ' ') q++;
    while (q < end) {
        const char *comma = memchr(q, ',', (size_t)(end - q));
        const char *stop = comma ? comma : end;
        size_t tl = (size_t)(stop - q);
        while (tl && q[tl - 1] == ' ') tl--;
        if (n == CFG_LIST_MAX) {
            snprintf(msg, cap, "key '%s': more than %d numbers in its default", k->key, CFG_LIST_MAX);
            return -1;
        }
        if (dlist_element(k, q, tl, 1, n ? &v[n - 1] : NULL, &v[n], msg, cap)) return -1;
        n++;
        q = comma ? comma + 1 : end;
        while (q < end && *q == ' ') q++;
    }
    if (n < k->list_min) {
        snprintf(msg, cap, "key '%s': fewer than %d numbers in its default", k->key, k->list_min);
        return -1;
    }
    dlist_set(k, c, v, n);
    return 0;
}

/* ---------------------------------------------------------------- constraints between keys */

/* Each check below returns 0 when its constraints hold; otherwise it writes
 * the message and the keys to blame (the first one the file set is pointed
 * at) and returns -1. */
static int blame_keys(const char *blame[2], const char *first, const char *second) {
    blame[0] = first;
    blame[1] = second;
    return -1;
}

/* the ranges of RandomResizedCrop and the evaluation's centre crop */
static int check_data(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    if (c->rrc_scale_min > c->rrc_scale_max) {
        snprintf(msg, cap, "key 'data.augment.rrc_scale_min' must be <= data.augment.rrc_scale_max, got %g > %g",
                 c->rrc_scale_min, c->rrc_scale_max);
        return blame_keys(blame, "data.augment.rrc_scale_min", "data.augment.rrc_scale_max");
    }
    if (c->rrc_ratio_min > c->rrc_ratio_max) {
        snprintf(msg, cap, "key 'data.augment.rrc_ratio_min' must be <= data.augment.rrc_ratio_max, got %g > %g",
                 c->rrc_ratio_min, c->rrc_ratio_max);
        return blame_keys(blame, "data.augment.rrc_ratio_min", "data.augment.rrc_ratio_max");
    }
    if (c->eval_resize < c->image_size) {
        snprintf(msg, cap, "key 'data.eval_resize' must be >= data.image_size (the centre crop), got %d < %d",
                 c->eval_resize, c->image_size);
        return blame_keys(blame, "data.eval_resize", "data.image_size");
    }
    return 0;
}

/* With iterations: 0 the count is epochs x the steps of an epoch, which the
 * keys' own ranges do not bound (epochs: 1e300 is a valid number). The
 * dataset's published size gives the count the run will have (the driver
 * checks the loaded size again, experiments/engine_options.h
 * train_check_iterations). */
static int check_epochs_total(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    DatasetShape ds;
    long n;
    if (c->iterations != 0 || data_shape_from_config(c, &ds, &n) != 0) return 0;
    const long per_epoch = n / c->batch_size;
    if (ceil(c->epochs * (double)per_epoch) <= (double)CFG_MAX_ITERATIONS) return 0;
    char epochs[40];
    fmt_double(epochs, sizeof epochs, c->epochs);
    snprintf(msg, cap,
             "key 'train.epochs' asks for more than %ld iterations (2^40, the most a run may train "
             "for): %s epochs of %ld steps (%ld %s training images at batch %d)",
             (long)CFG_MAX_ITERATIONS, epochs, per_epoch, n, c->dataset, c->batch_size);
    return blame_keys(blame, "train.epochs", "train.batch_size");
}

/* schedule.step_epochs: the decays of a step schedule, read by the detector's
 * loop only (the classification loop decays every schedule.step_size) */
static int check_step_epochs(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    if (c->n_step_epochs == 0) return 0;
    if (c->lr_schedule != LR_STEP) {
        snprintf(msg, cap, "key 'schedule.step_epochs' needs schedule.lr 'step' (it lists that schedule's decays), got '%s'",
                 enum_name(find_key("schedule.lr"), (int)c->lr_schedule));
        return blame_keys(blame, "schedule.step_epochs", "schedule.lr");
    }
    if (c->step_size > 0) {
        snprintf(msg, cap,
                 "key 'schedule.step_epochs' and schedule.step_size (%ld) both place the decays of the step "
                 "schedule: give one of them",
                 c->step_size);
        return blame_keys(blame, "schedule.step_epochs", "schedule.step_size");
    }
    if (strcmp(c->arch, DETECT_ARCH)) {
        snprintf(msg, cap,
                 "key 'schedule.step_epochs' is read by the detector only (model.arch %s), got model.arch '%s' "
                 "(classification runs decay every schedule.step_size iterations)",
                 DETECT_ARCH, c->arch);
        return blame_keys(blame, "schedule.step_epochs", "model.arch");
    }
    return 0;
}

/* the length of the run and of the learning-rate schedule */
static int check_length(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    /* a step schedule decays every step_size iterations or at the epochs of step_epochs */
    if (c->lr_schedule == LR_STEP && c->step_size <= 0 && c->n_step_epochs == 0) {
        snprintf(msg, cap, "key 'schedule.step_size' must be > 0 when schedule.lr is 'step', got %ld",
                 c->step_size);
        return blame_keys(blame, "schedule.step_size", "schedule.lr");
    }
    if (check_step_epochs(c, msg, cap, blame)) return -1;
    /* a count of images or a fraction of the training file, or -1 (the default) */
    if (c->val_split != -1 && !(c->val_split >= 0 && c->val_split < 1) && c->val_split != floor(c->val_split)) {
        snprintf(msg, cap, "key 'data.val_split' must be a whole number of images, a fraction in (0, 1), 0 or -1, "
                 "got %g", c->val_split);
        return blame_keys(blame, "data.val_split", NULL);
    }
    if (c->val_split != 0 && c->val_split != -1 && is_detection_dataset(c->dataset)) {
        snprintf(msg, cap, "key 'data.val_split' must be 0 or -1 for the detection dataset '%s' (the detector is "
                 "selected as the reference selects it: by its epochs)", c->dataset);
        return blame_keys(blame, "data.val_split", "data.dataset");
    }
    /* core/shard.h: the tree needs a power of two, the shards whole samples */
    if ((c->shards & (c->shards - 1)) != 0 || c->batch_size % c->shards != 0) {
        snprintf(msg, cap, "key 'train.shards' must be a power of two dividing train.batch_size (%d), got %d",
                 c->batch_size, c->shards);
        return blame_keys(blame, "train.shards", "train.batch_size");
    }
    if (c->iterations == 0 && !(c->epochs > 0)) {
        snprintf(msg, cap, "key 'train.epochs' must be > 0 when train.iterations is 0, got %g", c->epochs);
        return blame_keys(blame, "train.epochs", "train.iterations");
    }
    if (check_epochs_total(c, msg, cap, blame)) return -1;
    /* the cosine horizon is (iterations - 4W) / num_cyclic_annealing */
    if (c->lr_schedule == LR_COSINE && c->iterations > 0 && c->cyclic_warmup > (c->iterations - 1) / 4) {
        snprintf(msg, cap,
                 "key 'schedule.cyclic_warmup' leaves no iterations to anneal: 4 * %ld >= train.iterations = %ld",
                 c->cyclic_warmup, c->iterations);
        return blame_keys(blame, "schedule.cyclic_warmup", "train.iterations");
    }
    return 0;
}

/* the precision schedule's bits and cycles */
static int check_precision(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    /* a fixed schedule has one width; [2, 6] there is most likely a forgotten schedule: cyclic */
    if (c->prec_schedule == PREC_FIXED) {
        const BitRange *r[2] = {&c->bits, &c->grad_bits};
        static const char *const names[2] = {"precision.bits", "precision.grad_bits"};
        for (int i = 0; i < 2; i++) {
            if (r[i]->min == r[i]->max) continue;
            snprintf(msg, cap, "key '%s' must be one bit width when precision.schedule is 'fixed', got [%d, %d]",
                     names[i], r[i]->min, r[i]->max);
            return blame_keys(blame, names[i], "precision.schedule");
        }
    }
    /* the cycle length P = (I - 4W) / N_cyc must be at least one iteration (the
     * reference code would divide by zero); with iterations: 0 the total is known
     * only once the dataset is loaded, and core/precision.c falls back to P = 1 */
    if (c->prec_schedule == PREC_CYCLIC && c->iterations > 0 &&
        (c->cyclic_warmup > (c->iterations - 1) / 4 || (c->iterations - 4 * c->cyclic_warmup) / c->prec_cycles < 1)) {
        snprintf(msg, cap,
                 "key 'precision.cycles' needs at least one iteration per cycle: (train.iterations - 4 * "
                 "schedule.cyclic_warmup) / precision.cycles = (%ld - 4 * %ld) / %d < 1",
                 c->iterations, c->cyclic_warmup, c->prec_cycles);
        return blame_keys(blame, "precision.cycles", "train.iterations");
    }
    return 0;
}

/* The detector reads only detection datasets, and they have no classifier */
static int check_task(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    const int detector = !strcmp(c->arch, DETECT_ARCH), detection_data = is_detection_dataset(c->dataset);
    if (detector && !detection_data) {
        snprintf(msg, cap,
                 "key 'model.arch' %s is a detector and needs a detection dataset (data.dataset voc or synth_voc), "
                 "got data.dataset '%s' (a detector with a classification dataset)",
                 DETECT_ARCH, c->dataset);
        return blame_keys(blame, "model.arch", "data.dataset");
    }
    if (!detector && detection_data) {
        snprintf(msg, cap,
                 "key 'data.dataset' %s is a detection dataset and needs model.arch %s, got model.arch '%s' (a "
                 "classifier with a detection dataset)",
                 c->dataset, DETECT_ARCH, c->arch);
        return blame_keys(blame, "data.dataset", "model.arch");
    }
    return 0;
}

/* the detector's thresholds and counts that only make sense in one order */
static int check_detect(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    if (c->rpn_neg_iou > c->rpn_pos_iou) {
        snprintf(msg, cap,
                 "key 'detect.rpn_neg_iou' must be <= detect.rpn_pos_iou (an anchor cannot be background and "
                 "foreground at once), got %g > %g",
                 c->rpn_neg_iou, c->rpn_pos_iou);
        return blame_keys(blame, "detect.rpn_neg_iou", "detect.rpn_pos_iou");
    }
    static const struct { const char *pre, *post; size_t pre_off, post_off; } nms[2] = {
        {"detect.pre_nms_train", "detect.post_nms_train", offsetof(RunConfig, pre_nms_train),
         offsetof(RunConfig, post_nms_train)},
        {"detect.pre_nms_test", "detect.post_nms_test", offsetof(RunConfig, pre_nms_test),
         offsetof(RunConfig, post_nms_test)},
    };
    for (int i = 0; i < 2; i++) {
        int pre, post;
        memcpy(&pre, (const char *)c + nms[i].pre_off, sizeof pre);
        memcpy(&post, (const char *)c + nms[i].post_off, sizeof post);
        if (pre >= post) continue;
        snprintf(msg, cap,
                 "key '%s' must be >= %s (NMS keeps at most that many of the top pre-NMS proposals), got %d < %d",
                 nms[i].pre, nms[i].post, pre, post);
        return blame_keys(blame, nms[i].pre, nms[i].post);
    }
    if (c->roi_bg_lo >= c->roi_bg_hi) {
        snprintf(msg, cap,
                 "key 'detect.roi_bg_lo' must be < detect.roi_bg_hi (background RoIs have IoU in [lo, hi)), got "
                 "%g >= %g",
                 c->roi_bg_lo, c->roi_bg_hi);
        return blame_keys(blame, "detect.roi_bg_lo", "detect.roi_bg_hi");
    }
    if (c->roi_bg_hi > c->roi_fg_iou) {
        snprintf(msg, cap,
                 "key 'detect.roi_bg_hi' must be <= detect.roi_fg_iou (a RoI cannot be background and foreground "
                 "at once), got %g > %g",
                 c->roi_bg_hi, c->roi_fg_iou);
        return blame_keys(blame, "detect.roi_bg_hi", "detect.roi_fg_iou");
    }
    return 0;
}

/* Constraints between keys, in a fixed order (the first that fails is
 * reported). Returns 0 when all hold; otherwise writes the message and the
 * keys to blame (the first one the file set is pointed at). */
static int cross_check(const RunConfig *c, char *msg, size_t cap, const char *blame[2]) {
    blame[0] = blame[1] = NULL;
    if (check_task(c, msg, cap, blame) || check_data(c, msg, cap, blame) || check_length(c, msg, cap, blame) ||
        check_precision(c, msg, cap, blame) || check_detect(c, msg, cap, blame))
        return -1;
    /* a backend this build cannot run (core/ops/conv2d_onednn.h): refused
     * before anything trains */
    const char *be = conv2d_backend_error(c->fp32_conv);
    if (be) {
        snprintf(msg, cap, "key %s", be);
        return blame_keys(blame, "model.fp32_conv", NULL);
    }
    /* PyTorch's SGD refuses the same combination */
    if (c->optimizer == OPTIM_SGD && c->nesterov && (c->momentum <= 0 || c->dampening != 0)) {
        snprintf(msg, cap, "key 'optim.nesterov' needs optim.momentum > 0 and optim.dampening = 0, got %g and %g",
                 c->momentum, c->dampening);
        return blame_keys(blame, "optim.nesterov", "optim.name");
    }
    return 0;
}

void config_defaults(RunConfig *c) {
    /* zero first, padding and string tails included, so that configs compare with memcmp */
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        char msg[256];
        const KeyDef *k = &KEYS[i];
        if (k->type == T_ENUM && (!k->choices || !k->values || k->size != sizeof(int))) {
            fprintf(stderr, "config.c: enum key %s in the key table lacks names, values or an int field\n", k->key);
            abort();
        }
        if (k->type == T_BITS && k->def[0] == '[') {
            /* a list default is not a YAML scalar, so set_value cannot read it */
            BitRange r;
            if (sscanf(k->def, "[%d, %d]", &r.min, &r.max) == 2 && r.min <= r.max && in_range(k, r.min) &&
                in_range(k, r.max)) {
                memcpy(field(c, k), &r, sizeof r);
                continue;
            }
            fprintf(stderr, "config.c: bad default in the key table: %s = %s\n", k->key, k->def);
            abort();
        }
        if (k->type == T_DLIST) {
            if (dlist_from_text(k, c, k->def, msg, sizeof msg) == 0) continue;
            fprintf(stderr, "config.c: bad default in the key table: %s\n", msg);
            abort();
        }
        const int text = k->type == T_STR || k->type == T_ENUM;
        if (set_value(k, c, k->def, strlen(k->def), !text, msg, sizeof msg)) {
            fprintf(stderr, "config.c: bad default in the key table: %s\n", msg);
            abort();
        }
    }
}

/* ---------------------------------------------------------------- parser */

typedef struct { size_t line, col; } Pos; /* 1-based; line 0 = not set */

/* One axis of grid: (or seeds:): a key and its values in file order. A value
 * is kept as the bytes set_value stores in the RunConfig field (strings
 * zero-padded), so applying it is a memcpy whatever the type. */
typedef struct {
    const KeyDef *k;
    Pos at;                  /* the axis' key (or seeds:) in the file */
    int is_seeds;
    size_t n, cap;
    unsigned char *vals;     /* n * k->size bytes */
    Pos *val_at;             /* where each value is */
} Axis;

/* One entry of runs: and the keys it overrides */
typedef struct {
    char name[RUN_NAME_MAX + 1];
    Pos at;
    RunConfig c;             /* the overridden fields (the others are unused) */
    Pos set_at[NKEYS];       /* where each overridden key is; line 0 = not overridden */
} RunDef;

typedef struct {
    yaml_parser_t yp;
    const char *file;
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
    int failed;
    ExperimentConfig *e;
    Pos set_at[NKEYS];   /* where each key of base: was set */
    Pos base_at;
    Pos top_at[N_TOP];   /* each top-level key; line 0 = absent */
    Pos compare_at;      /* compare_to's value */
    int name_given;
    /* where parse_map stores what it reads: base: or one run's overrides */
    RunConfig *dst;
    Pos *dst_at;
    char label[RUN_NAME_MAX + 8]; /* "base" or "runs.NAME", for messages */
    /* every path the mapping being read named (leaves and mappings), for
     * duplicates: a path may be reached through nesting and through a dotted
     * key alike */
    struct { char path[MAXPATH]; Pos at; } seen[2 * NKEYS + 8];
    size_t nseen;
    Axis axes[CFG_MAX_AXES];  /* grid:, in file order */
    size_t naxes;
    Axis seeds;               /* seeds: (n = 0 when absent) */
    RunDef *rdefs;            /* runs:, in file order */
    size_t nrdefs, rcap;
    RunConfig scratch;        /* one grid value at a time */
} Parser;

static Pos pos_of(const yaml_event_t *ev) {
    Pos p = {ev->start_mark.line + 1, ev->start_mark.column + 1};
    return p;
}

static int failf(Parser *p, Pos at, const char *fmt, ...) {
    if (p->failed || !p->err || !p->errlen) { p->failed = 1; return -1; }
    p->failed = 1;
    int n = snprintf(p->err, p->errlen, "%s:%zu:%zu: ", p->file, at.line ? at.line : 1, at.col ? at.col : 1);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* byte offset -> line/column (for libyaml's reader errors, which carry only an offset) */
static Pos offset_pos(const Parser *p, size_t off) {
    Pos at = {1, 1};
    if (off > p->len) off = p->len;
    for (size_t i = 0; i < off; i++) {
        unsigned char c = (unsigned char)p->text[i];
        if (c == '\n') { at.line++; at.col = 1; }
        else if ((c & 0xc0) != 0x80) at.col++; /* count characters, not UTF-8 continuation bytes */
    }
    return at;
}

/* the first byte of the character at a line/column of the text, -1 past its end */
static int char_at(const Parser *p, Pos at) {
    size_t i = 0, line = 1, col = 1;
    for (; i < p->len && line < at.line; i++)
        if (p->text[i] == '\n') line++;
    while (i < p->len && col < at.col && p->text[i] != '\n') {
        i++;
        while (i < p->len && ((unsigned char)p->text[i] & 0xc0) == 0x80) i++; /* the rest of a UTF-8 character */
        col++;
    }
    return i < p->len && line == at.line ? (unsigned char)p->text[i] : -1;
}

/* libyaml words what its grammar expected; this says what the writer most
 * likely did, after a ": " ("" when nothing fits) */
static const char *syntax_hint(const Parser *p, const yaml_parser_t *y, Pos at) {
    const char *problem = y->problem ? y->problem : "", *context = y->context ? y->context : "";
    if (char_at(p, at) == '\t') return ": YAML indents with spaces, not tabs";
    if (strstr(problem, "expected ',' or '}'")) return ": a '{' without its '}', or a ',' missing between two entries";
    if (strstr(problem, "expected ',' or ']'")) return ": a '[' without its ']', or a ',' missing between two values";
    if (strstr(context, "quoted scalar")) return ": a quoted value without its closing quote";
    if (!strcmp(problem, "did not find expected key") || !strcmp(problem, "did not find expected '-' indicator"))
        return ": a line indented less or more than the keys beside it";
    if (!strcmp(problem, "mapping values are not allowed in this context"))
        return ": a key indented under a value, or a value with ': ' in it (quote it)";
    return "";
}

/* libyaml's error in parser y (p's or the pre-scan's), as one message */
static int syntax_error_of(Parser *p, const yaml_parser_t *y) {
    Pos at = {1, 1};
    if (y->error == YAML_MEMORY_ERROR) return failf(p, at, "out of memory while reading the YAML");
    const char *problem = y->problem ? y->problem : "unknown error";
    if (y->error == YAML_READER_ERROR) {
        at = offset_pos(p, y->problem_offset);
        if (y->problem_value != -1)
            return failf(p, at, "YAML syntax error: %s (#%X)", problem, (unsigned)y->problem_value);
        return failf(p, at, "YAML syntax error: %s", problem);
    }
    at.line = y->problem_mark.line + 1;
    at.col = y->problem_mark.column + 1;
    const char *hint = syntax_hint(p, y, at);
    if (y->context)
        return failf(p, at, "YAML syntax error: %s (%s at line %zu, column %zu)%s", problem, y->context,
                     (size_t)y->context_mark.line + 1, (size_t)y->context_mark.column + 1, hint);
    return failf(p, at, "YAML syntax error: %s%s", problem, hint);
}

static int syntax_error(Parser *p) { return syntax_error_of(p, &p->yp); }

/* The whole text through libyaml once, events discarded, before any of it
 * is interpreted: a syntax error anywhere is then what gets reported, and
 * not what the broken syntax happens to make of the keys before it. A flow
 * mapping that misses its '}' otherwise reads as {lr: '0.002 train'} (a
 * plain scalar may run over lines inside [] and {}), and the first complaint
 * would be "key 'optim.lr' expects a number, got '0.002 train'". */
static int syntax_prescan(Parser *p) {
    yaml_parser_t y;
    if (!yaml_parser_initialize(&y)) {
        Pos top = {1, 1};
        return failf(p, top, "out of memory");
    }
    yaml_parser_set_input_string(&y, (const unsigned char *)p->text, p->len);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&y, &ev)) {
            rc = syntax_error_of(p, &y);
            break;
        }
        const int end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (end) break;
    }
    yaml_parser_delete(&y);
    return rc;
}

static int next_event(Parser *p, yaml_event_t *ev) {
    if (!yaml_parser_parse(&p->yp, ev)) {
        memset(ev, 0, sizeof *ev);
        return syntax_error(p);
    }
    return 0;
}

static const char *node_kind(const yaml_event_t *ev) {
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a sequence";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "a scalar";
    }
}

static int alias_error(Parser *p, const yaml_event_t *ev) {
    char a[96];
    const char *name = (const char *)ev->data.alias.anchor;
    return failf(p, pos_of(ev), "aliases are not supported (*%s)", show(a, sizeof a, name, name ? strlen(name) : 0));
}

/* The next event must be a scalar (the value of `key`). On success the caller
 * owns *ev and must delete it. */
static int expect_scalar(Parser *p, const char *key, const char *expects, yaml_event_t *ev) {
    if (next_event(p, ev)) return -1;
    if (ev->type == YAML_SCALAR_EVENT) return 0;
    int rc = ev->type == YAML_ALIAS_EVENT
                 ? alias_error(p, ev)
                 : failf(p, pos_of(ev), "key '%s' expects %s, got %s", key, expects, node_kind(ev));
    yaml_event_delete(ev);
    return rc;
}

static int seen_before(Parser *p, const char *path, Pos at) {
    for (size_t i = 0; i < p->nseen; i++)
        if (!strcmp(p->seen[i].path, path))
            return failf(p, at, "duplicate key '%s' (first given at line %zu, column %zu)", path,
                         p->seen[i].at.line, p->seen[i].at.col);
    /* only paths of the schema get here, so the array cannot fill up */
    if (p->nseen < sizeof p->seen / sizeof p->seen[0]) {
        snprintf(p->seen[p->nseen].path, MAXPATH, "%s", path);
        p->seen[p->nseen].at = at;
        p->nseen++;
    }
    return 0;
}

/* the keys one level below `prefix` ("" = base itself), comma-separated */
static void keys_below(const char *prefix, char *buf, size_t cap) {
    size_t n = strlen(prefix), o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = KEYS[i].key;
        if (n && (strncmp(k, prefix, n) || k[n] != '.')) continue;
        const char *seg = n ? k + n + 1 : k;
        size_t len = strcspn(seg, ".");
        /* skip a segment already listed (keys of one prefix are contiguous) */
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++) {
            const char *kj = KEYS[j].key;
            if (n && (strncmp(kj, prefix, n) || kj[n] != '.')) continue;
            const char *sj = n ? kj + n + 1 : kj;
            dup = strcspn(sj, ".") == len && !strncmp(sj, seg, len);
        }
        if (dup) continue;
        int w = snprintf(buf + o, cap - o, "%s%.*s", o ? ", " : "", (int)len, seg);
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
}

/* "did you mean ...?" for a dotted path `full` that is no key, whose last
 * typed part is seg[0..seglen). With leaves_only, only keys are suggested
 * (a grid axis), otherwise also their prefixes (a mapping in base:). Returns
 * 0 (hint empty) when nothing is close. */
static int near_key(const char *full, const char *seg, size_t seglen, int leaves_only, char *hint, size_t cap) {
    /* 1. a near miss of the whole dotted path (optim.lrr, optm) */
    size_t best = (size_t)-1;
    char near[MAXPATH] = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = KEYS[i].key;
        /* the key and each of its prefixes */
        for (size_t l = leaves_only ? strlen(k) : 1; l <= strlen(k); l++) {
            if (k[l] != '.' && k[l] != 0) continue;
            size_t d = edit_distance(full, strlen(full), k, l);
            if (d < best) {
                best = d;
                snprintf(near, sizeof near, "%.*s", (int)l, k);
            }
        }
    }
    if (near[0] && best <= typo_budget(seglen)) {
        snprintf(hint, cap, "did you mean '%s'?", near);
        return 1;
    }
    /* 2. the right name at the wrong level (lr under base, batch_size under optim) */
    int found = 0;
    size_t o = (size_t)snprintf(hint, cap, "did you mean ");
    for (size_t i = 0; i < NKEYS && o < cap; i++) {
        const char *k = KEYS[i].key, *dot = strrchr(k, '.');
        const char *last = dot ? dot + 1 : k;
        if (strlen(last) == seglen && !memcmp(last, seg, seglen)) {
            int w = snprintf(hint + o, cap - o, "%s'%s'", found ? " or " : "", k);
            if (w > 0) o += (size_t)w;
            found++;
        }
    }
    if (found && o + 1 < cap) {
        strcat(hint, "?");
        return 1;
    }
    hint[0] = 0;
    return 0;
}

static int unknown_key(Parser *p, Pos at, const char *prefix, const char *full, const char *seg, size_t seglen) {
    char shown[96], hint[1024]; /* the keys under detect: take ~600 bytes */
    show(shown, sizeof shown, full, strlen(full));
    if (near_key(full, seg, seglen, 0, hint, sizeof hint))
        return failf(p, at, "unknown key '%s' (%s)", shown, hint);
    /* 3. list what is allowed here */
    keys_below(prefix, hint, sizeof hint);
    return failf(p, at, "unknown key '%s' (allowed under '%s%s%s': %s)", shown, p->label, *prefix ? "." : "", prefix,
                 hint);
}

/* The value of a T_BITS key, stored into dst: one integer (n means [n, n]) or
 * a sequence of two, [min, max] (flow or block style). `ev` is its first
 * event, already read; it is deleted here. Errors point at the offending
 * element, or at the list for a wrong length or min > max. The elements must
 * be scalars, so a hostile nested structure stops at its first event. */
static int parse_bits_from(Parser *p, const KeyDef *k, yaml_event_t *first, RunConfig *dst) {
    yaml_event_t ev = *first;
    char msg[600];
    Pos at = pos_of(&ev);
    int rc = 0;
    if (ev.type == YAML_SCALAR_EVENT) {
        int plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        rc = set_value(k, dst, (const char *)ev.data.scalar.value, ev.data.scalar.length, plain, msg, sizeof msg);
        if (rc) failf(p, at, "%s", msg);
        yaml_event_delete(&ev);
        return rc;
    }
    if (ev.type != YAML_SEQUENCE_START_EVENT) {
        rc = ev.type == YAML_ALIAS_EVENT
                 ? alias_error(p, &ev)
                 : failf(p, at, "key '%s' expects %s, got %s", k->key, expects_what(k), node_kind(&ev));
        yaml_event_delete(&ev);
        return rc;
    }
    yaml_event_delete(&ev);

    /* each element is read as an int key with the same name and range, into a
     * scratch config, so that its messages are those of any integer key */
    KeyDef elem = *k;
    elem.type = T_INT;
    RunConfig scratch;
    memset(&scratch, 0, sizeof scratch);
    int v[2] = {0, 0};
    long count = 0;
    for (;;) {
        if (next_event(p, &ev)) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        Pos eat = pos_of(&ev);
        if (ev.type != YAML_SCALAR_EVENT) {
            rc = ev.type == YAML_ALIAS_EVENT
                     ? alias_error(p, &ev)
                     : failf(p, eat, "key '%s' expects a list of bit widths [min, max], got %s in the list", k->key,
                             node_kind(&ev));
            yaml_event_delete(&ev);
            return rc;
        }
        if (count < 2) {
            int plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (set_value(&elem, &scratch, (const char *)ev.data.scalar.value, ev.data.scalar.length, plain, msg,
                          sizeof msg)) {
                failf(p, eat, "%s", msg);
                yaml_event_delete(&ev);
                return -1;
            }
            v[count] = *(const int *)cfield(&scratch, &elem);
        }
        count++;
        yaml_event_delete(&ev);
    }
    if (count != 2)
        return failf(p, at, "key '%s' expects a list of two bit widths [min, max], got %ld element%s", k->key, count,
                     count == 1 ? "" : "s");
    if (v[0] > v[1])
        return failf(p, at, "key '%s' expects [min, max] with min <= max, got [%d, %d]", k->key, v[0], v[1]);
    BitRange r = {v[0], v[1]};
    memcpy(field(dst, k), &r, sizeof r);
    return 0;
}

static int parse_bits(Parser *p, const KeyDef *k, RunConfig *dst) {
    yaml_event_t ev;
    if (next_event(p, &ev)) return -1;
    return parse_bits_from(p, k, &ev, dst);
}

/* The value of a T_DLIST key, stored into dst: a sequence (flow or block
 * style) of numbers. `first` is its first event, already read; it is deleted
 * here. Errors point at the offending element, or at the list for too few.
 * The elements must be scalars, so a hostile nested structure stops at its
 * first event. */
static int parse_dlist_from(Parser *p, const KeyDef *k, yaml_event_t *first, RunConfig *dst) {
    yaml_event_t ev = *first;
    char msg[600];
    Pos at = pos_of(&ev);
    int rc = -1;
    if (ev.type == YAML_SCALAR_EVENT) {
        /* set_value words why a scalar is not a list */
        int plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        set_value(k, dst, (const char *)ev.data.scalar.value, ev.data.scalar.length, plain, msg, sizeof msg);
        failf(p, at, "%s", msg);
    } else if (ev.type == YAML_ALIAS_EVENT) {
        alias_error(p, &ev);
    } else if (ev.type != YAML_SEQUENCE_START_EVENT) {
        failf(p, at, "key '%s' expects %s, got %s", k->key, expects_what(k), node_kind(&ev));
    } else {
        rc = 0;
    }
    yaml_event_delete(&ev);
    if (rc) return -1;

    double v[CFG_LIST_MAX];
    int n = 0;
    for (;;) {
        if (next_event(p, &ev)) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        Pos eat = pos_of(&ev);
        if (ev.type != YAML_SCALAR_EVENT) {
            rc = ev.type == YAML_ALIAS_EVENT
                     ? alias_error(p, &ev)
                     : failf(p, eat, "key '%s' expects a list of numbers, got %s in the list", k->key, node_kind(&ev));
            yaml_event_delete(&ev);
            return rc;
        }
        if (n == CFG_LIST_MAX) {
            yaml_event_delete(&ev);
            return failf(p, eat, "key '%s' takes at most %d numbers, got more", k->key, CFG_LIST_MAX);
        }
        int plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        rc = dlist_element(k, (const char *)ev.data.scalar.value, ev.data.scalar.length, plain, n ? &v[n - 1] : NULL,
                           &v[n], msg, sizeof msg);
        yaml_event_delete(&ev);
        if (rc) return failf(p, eat, "%s", msg);
        n++;
    }
    if (n < k->list_min)
        return failf(p, at, "key '%s' expects a list of %d to %d numbers, got an empty list", k->key, k->list_min,
                     CFG_LIST_MAX);
    dlist_set(k, dst, v, n);
    return 0;
}

static int parse_dlist(Parser *p, const KeyDef *k, RunConfig *dst) {
    yaml_event_t ev;
    if (next_event(p, &ev)) return -1;
    return parse_dlist_from(p, k, &ev, dst);
}

/* The next key of a mapping: 1 with a scalar key event in *kev (the caller
 * deletes it), 0 at the end of the mapping, -1 on error (message set). */
static int next_key(Parser *p, yaml_event_t *kev) {
    if (next_event(p, kev)) return -1;
    if (kev->type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(kev);
        return 0;
    }
    if (kev->type != YAML_SCALAR_EVENT) {
        int rc = kev->type == YAML_ALIAS_EVENT ? alias_error(p, kev)
                                                : failf(p, pos_of(kev), "a key must be a scalar, got %s", node_kind(kev));
        yaml_event_delete(kev);
        return rc;
    }
    return 1;
}

/* A mapping whose keys extend `prefix` ("" = the top of base: or of a run),
 * stored into p->dst. Recursion depth is bounded by the schema: only known
 * prefixes recurse. */
static int parse_map(Parser *p, const char *prefix) {
    for (;;) {
        yaml_event_t kev, vev;
        int got = next_key(p, &kev);
        if (got <= 0) return got;
        Pos at = pos_of(&kev);
        const char *key = (const char *)kev.data.scalar.value;
        size_t klen = kev.data.scalar.length;
        char full[MAXPATH];
        size_t plen = strlen(prefix);
        int fits = plen + 1 + klen < sizeof full && !memchr(key, 0, klen);
        if (fits) snprintf(full, sizeof full, "%s%s%.*s", prefix, plen ? "." : "", (int)klen, key);
        const KeyDef *k = fits ? find_key(full) : NULL;
        int sub = fits && !k && is_prefix(full);
        if (!k && !sub) {
            int rc;
            if (fits) {
                rc = unknown_key(p, at, prefix, full, key, klen);
            } else {
                char shown[96];
                rc = failf(p, at, "unknown key '%s'", show(shown, sizeof shown, key, klen));
            }
            yaml_event_delete(&kev);
            return rc;
        }
        yaml_event_delete(&kev);
        if (seen_before(p, full, at)) return -1;

        if (k && (k->type == T_BITS || k->type == T_DLIST)) {
            if ((k->type == T_BITS ? parse_bits : parse_dlist)(p, k, p->dst)) return -1;
            p->dst_at[k - KEYS] = at;
            continue;
        }
        if (k) {
            if (expect_scalar(p, full, expects_what(k), &vev)) return -1;
            char msg[600];
            int plain = vev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            int rc = set_value(k, p->dst, (const char *)vev.data.scalar.value, vev.data.scalar.length, plain, msg,
                               sizeof msg);
            if (rc) failf(p, pos_of(&vev), "%s", msg);
            else p->dst_at[k - KEYS] = at;
            yaml_event_delete(&vev);
            if (rc) return -1;
            continue;
        }

        /* a prefix: a nested mapping, or nothing at all */
        if (next_event(p, &vev)) return -1;
        if (vev.type == YAML_MAPPING_START_EVENT) {
            yaml_event_delete(&vev);
            if (parse_map(p, full)) return -1;
            continue;
        }
        int rc = 0;
        if (vev.type == YAML_ALIAS_EVENT) {
            rc = alias_error(p, &vev);
        } else if (vev.type != YAML_SCALAR_EVENT || vev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                   !is_null_word((const char *)vev.data.scalar.value, vev.data.scalar.length)) {
            char keys[1024], shown[96];
            keys_below(full, keys, sizeof keys);
            if (vev.type == YAML_SCALAR_EVENT)
                rc = failf(p, pos_of(&vev), "key '%s' expects a mapping (with keys %s), got the scalar '%s'", full,
                           keys, show(shown, sizeof shown, (const char *)vev.data.scalar.value, vev.data.scalar.length));
            else
                rc = failf(p, pos_of(&vev), "key '%s' expects a mapping (with keys %s), got %s", full, keys,
                           node_kind(&vev));
        }
        yaml_event_delete(&vev);
        if (rc) return -1;
    }
}

static int set_text(Parser *p, const char *key, char *dst, size_t cap, const yaml_event_t *ev) {
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && is_null_word(s, n)) n = 0;
    if (memchr(s, 0, n)) return failf(p, pos_of(ev), "key '%s' must not contain a NUL character", key);
    if (n >= cap) return failf(p, pos_of(ev), "key '%s' is too long (%zu bytes, at most %zu)", key, n, cap - 1);
    memset(dst, 0, cap);
    if (n) memcpy(dst, s, n);
    return 0;
}

/* The value of a key that holds a mapping (base:, grid:, runs:, one run):
 * 1 after its mapping start, 0 for a null value (an empty mapping), -1 on
 * error. `what` names it in messages ("key 'base'", "run 'full'"). */
static int expect_mapping(Parser *p, const char *what, const char *expects) {
    yaml_event_t ev;
    if (next_event(p, &ev)) return -1;
    int rc;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = 1;
    else if (ev.type == YAML_ALIAS_EVENT)
        rc = alias_error(p, &ev);
    else if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
             is_null_word((const char *)ev.data.scalar.value, ev.data.scalar.length))
        rc = 0;
    else if (ev.type == YAML_SCALAR_EVENT) {
        /* often a key whose ':' was forgotten ("optim" alone on its line) */
        char shown[96];
        rc = failf(p, pos_of(&ev), "%s expects %s, got the scalar '%s'", what, expects,
                   show(shown, sizeof shown, (const char *)ev.data.scalar.value, ev.data.scalar.length));
    } else
        rc = failf(p, pos_of(&ev), "%s expects %s, got %s", what, expects, node_kind(&ev));
    yaml_event_delete(&ev);
    return rc;
}

/* ---------------------------------------------------------------- grid:, seeds:, runs: */

/* Text of a value (the bytes of its RunConfig field) for run names and
 * messages: integers in decimal, numbers in their shortest round-trip form,
 * booleans true/false, bits "2-6" or "4", strings verbatim, enums by name. */
static void value_text(const KeyDef *k, const unsigned char *v, char *buf, size_t cap) {
    switch (k->type) {
    case T_STR:
        snprintf(buf, cap, "%.*s", (int)strnlen((const char *)v, k->size), (const char *)v);
        break;
    case T_ENUM: {
        int x;
        memcpy(&x, v, sizeof x);
        snprintf(buf, cap, "%s", enum_name(k, x));
        break;
    }
    case T_INT:
    case T_BOOL: {
        int x;
        memcpy(&x, v, sizeof x);
        if (k->type == T_BOOL) snprintf(buf, cap, "%s", x ? "true" : "false");
        else snprintf(buf, cap, "%d", x);
        break;
    }
    case T_LONG: {
        long x;
        memcpy(&x, v, sizeof x);
        snprintf(buf, cap, "%ld", x);
        break;
    }
    case T_U64: {
        uint64_t x;
        memcpy(&x, v, sizeof x);
        snprintf(buf, cap, "%llu", (unsigned long long)x);
        break;
    }
    case T_DOUBLE: {
        double x;
        memcpy(&x, v, sizeof x);
        fmt_double(buf, cap, x);
        break;
    }
    case T_BITS: {
        BitRange r;
        memcpy(&r, v, sizeof r);
        if (r.min == r.max) snprintf(buf, cap, "%d", r.min);
        else snprintf(buf, cap, "%d-%d", r.min, r.max);
        break;
    }
    case T_DLIST: {
        /* 8_16_32 ('_' joins: the numbers may hold '-' and '.'), none for [] */
        double x[CFG_LIST_MAX];
        const int n = dlist_get(v, x);
        size_t o = 0;
        buf[0] = 0;
        if (n == 0) snprintf(buf, cap, "none");
        for (int i = 0; i < n && o < cap; i++) {
            char num[40];
            fmt_double(num, sizeof num, x[i]);
            int w = snprintf(buf + o, cap - o, "%s%s", i ? "_" : "", num);
            if (w < 0) break;
            o += (size_t)w;
        }
        break;
    }
    }
}

/* Two values of key k, as field bytes. Numbers compare by value (0 and -0
 * would give runs that differ in nothing that matters), strings up to
 * their terminator, the rest byte for byte. */
static int same_value(const KeyDef *k, const unsigned char *a, const unsigned char *b) {
    if (k->type == T_DOUBLE) {
        double x, y;
        memcpy(&x, a, sizeof x);
        memcpy(&y, b, sizeof y);
        return x == y;
    }
    if (k->type == T_STR) return !strncmp((const char *)a, (const char *)b, k->size);
    return !memcmp(a, b, k->size);
}

/* Appends the value p->scratch holds for the axis' key, refusing a repeat. */
static int add_axis_value(Parser *p, Axis *ax, const char *what, Pos at) {
    const KeyDef *k = ax->k;
    const unsigned char *v = (const unsigned char *)cfield(&p->scratch, k);
    for (size_t i = 0; i < ax->n; i++) {
        if (!same_value(k, ax->vals + i * k->size, v)) continue;
        char text[CFG_PATH + 32], shown[96];
        value_text(k, v, text, sizeof text);
        show(shown, sizeof shown, text, strlen(text));
        const int quoted = k->type == T_STR || k->type == T_ENUM;
        return failf(p, at, quoted ? "%s has the value '%s' twice (first at line %zu, column %zu)"
                            : "%s has the value %s twice (first at line %zu, column %zu)",
                     what, shown, ax->val_at[i].line, ax->val_at[i].col);
    }
    if (ax->n == ax->cap) {
        size_t cap = ax->cap ? 2 * ax->cap : 8;
        unsigned char *vals = realloc(ax->vals, cap * k->size);
        if (vals) ax->vals = vals;
        Pos *val_at = vals ? realloc(ax->val_at, cap * sizeof *val_at) : NULL;
        if (val_at) ax->val_at = val_at;
        if (!vals || !val_at) return failf(p, at, "out of memory");
        ax->cap = cap;
    }
    memcpy(ax->vals + ax->n * k->size, v, k->size);
    ax->val_at[ax->n++] = at;
    return 0;
}

/* The values of one axis: a non-empty sequence whose elements are read like a
 * base: value of the key `pk` (for a T_BITS key an element may itself be a
 * list [min, max]). pk names the key in set_value's messages ("seeds" for
 * seeds:); `what` and `expects` word the axis' own messages. */
static int parse_axis_values(Parser *p, Axis *ax, const KeyDef *pk, const char *what, const char *expects) {
    yaml_event_t ev;
    if (next_event(p, &ev)) return -1;
    Pos at = pos_of(&ev);
    if (ev.type != YAML_SEQUENCE_START_EVENT) {
        int rc;
        if (ev.type == YAML_ALIAS_EVENT)
            rc = alias_error(p, &ev);
        else if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                 is_null_word((const char *)ev.data.scalar.value, ev.data.scalar.length))
            rc = failf(p, at, "%s expects %s, got an empty value", what, expects);
        else
            rc = failf(p, at, "%s expects %s, got %s", what, expects, node_kind(&ev));
        yaml_event_delete(&ev);
        return rc;
    }
    yaml_event_delete(&ev);
    for (;;) {
        if (next_event(p, &ev)) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        Pos vat = pos_of(&ev);
        int rc;
        if (ax->n >= CFG_MAX_RUNS) {
            yaml_event_delete(&ev);
            return failf(p, vat, "%s has more than %d values (a file expands to at most %d runs)", what, CFG_MAX_RUNS,
                         CFG_MAX_RUNS);
        }
        if (pk->type == T_BITS && (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)) {
            rc = parse_bits_from(p, pk, &ev, &p->scratch); /* deletes ev */
        } else if (pk->type == T_DLIST && ev.type == YAML_SEQUENCE_START_EVENT) {
            rc = parse_dlist_from(p, pk, &ev, &p->scratch); /* deletes ev */
        } else if (pk->type == T_DLIST && ev.type == YAML_SCALAR_EVENT) {
            /* [8, 16, 32] under a list key is most likely one value written as the axis */
            char shown[96];
            show(shown, sizeof shown, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            rc = failf(p, vat, "%s takes lists as its values, e.g. [[8, 16, 32], [4, 8, 16]]; got the scalar '%s'",
                       what, shown);
            yaml_event_delete(&ev);
        } else if (ev.type == YAML_SCALAR_EVENT) {
            char msg[600];
            int plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            rc = set_value(pk, &p->scratch, (const char *)ev.data.scalar.value, ev.data.scalar.length, plain, msg,
                           sizeof msg);
            if (rc) failf(p, vat, "%s", msg);
            yaml_event_delete(&ev);
        } else {
            rc = ev.type == YAML_ALIAS_EVENT ? alias_error(p, &ev)
                                              : failf(p, vat, "%s expects %s, got %s in the list", what, expects,
                                                      node_kind(&ev));
            yaml_event_delete(&ev);
        }
        if (rc || add_axis_value(p, ax, what, vat)) return -1;
    }
    if (ax->n == 0) return failf(p, at, "%s has an empty list of values (give at least one)", what);
    return 0;
}

/* the first key of the table under `prefix` (for an example) */
static void first_key_under(const char *prefix, char *out, size_t cap) {
    size_t n = strlen(prefix);
    out[0] = 0;
    for (size_t i = 0; i < NKEYS; i++)
        if (!strncmp(KEYS[i].key, prefix, n) && KEYS[i].key[n] == '.') {
            snprintf(out, cap, "%s", KEYS[i].key);
            return;
        }
}

/* A grid axis that names no key (key[0..klen) is what the file wrote, path
 * the same as a string when it fits, else NULL). A group of keys
 * (`precision: {cycles: [...]}`) gets the dotted form suggested, with the key
 * of its nested mapping when it names one. */
static int bad_axis(Parser *p, Pos at, const char *path, const char *key, size_t klen) {
    char shown[96], hint[400];
    if (!path) return failf(p, at, "grid axis '%s' names no key", show(shown, sizeof shown, key, klen));
    show(shown, sizeof shown, path, strlen(path));
    if (is_prefix(path)) {
        char example[MAXPATH];
        first_key_under(path, example, sizeof example);
        yaml_event_t ev;
        if (next_event(p, &ev)) return -1;
        int nested = ev.type == YAML_MAPPING_START_EVENT;
        yaml_event_delete(&ev);
        if (nested) {
            if (next_event(p, &ev)) return -1;
            size_t n = ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.length : 0;
            char cand[MAXPATH];
            if (n && strlen(path) + 1 + n < sizeof cand && !memchr(ev.data.scalar.value, 0, n)) {
                int w = snprintf(cand, sizeof cand, "%s.%.*s", path, (int)n, (const char *)ev.data.scalar.value);
                if (w < 0 || (size_t)w >= sizeof cand) cand[0] = 0; /* cannot happen: checked above */
                if (find_key(cand)) snprintf(example, sizeof example, "%s", cand);
                else if (is_prefix(cand)) first_key_under(cand, example, sizeof example);
            }
            yaml_event_delete(&ev);
        }
        return failf(p, at,
                     "grid axis '%s' is a group of keys, not a key: write the dotted path of one key, e.g. '%s: "
                     "[...]' (grid: takes no nested mappings)",
                     shown, example);
    }
    if (!strncmp(path, "base.", 5) && find_key(path + 5))
        return failf(p, at, "grid axis '%s' names no key (did you mean '%s'? axes are written without 'base.')", shown,
                     path + 5);
    const char *dot = strrchr(path, '.');
    const char *seg = dot ? dot + 1 : path;
    if (near_key(path, seg, strlen(seg), 1, hint, sizeof hint))
        return failf(p, at, "grid axis '%s' names no key (%s)", shown, hint);
    return failf(p, at,
                 "grid axis '%s' names no key (axes are dotted paths of keys of base:, e.g. 'precision.cycles'; "
                 "cyclebnn --help-config lists them)",
                 shown);
}

static int is_seed_key(const KeyDef *k) { return k->off == offsetof(RunConfig, seed); }

/* grid: a mapping of dotted key paths to lists of values */
static int parse_grid(Parser *p) {
    int m = expect_mapping(p, "key 'grid'", "a mapping of dotted keys to lists of values (precision.cycles: [4, 8])");
    if (m <= 0) return m;
    for (;;) {
        yaml_event_t kev;
        int got = next_key(p, &kev);
        if (got <= 0) return got;
        Pos at = pos_of(&kev);
        const char *key = (const char *)kev.data.scalar.value;
        size_t klen = kev.data.scalar.length;
        char path[MAXPATH];
        int fits = klen < sizeof path && !memchr(key, 0, klen);
        if (fits) snprintf(path, sizeof path, "%.*s", (int)klen, key);
        const KeyDef *k = fits ? find_key(path) : NULL;
        if (!k) {
            int rc = bad_axis(p, at, fits ? path : NULL, key, klen);
            yaml_event_delete(&kev);
            return rc;
        }
        yaml_event_delete(&kev);
        for (size_t i = 0; i < p->naxes; i++)
            if (p->axes[i].k == k)
                return failf(p, at, "duplicate grid axis '%s' (first given at line %zu, column %zu)", k->key,
                             p->axes[i].at.line, p->axes[i].at.col);
        const Pos sat = p->top_at[TOP_SEEDS];
        if (is_seed_key(k) && sat.line)
            return failf(p, at, "grid axis 'train.seed' is also given by seeds: (line %zu, column %zu); use one of them",
                         sat.line, sat.col);
        if (p->naxes + (sat.line != 0) >= CFG_MAX_AXES)
            return failf(p, at, "too many grid axes (at most %d, seeds: counting as one)", CFG_MAX_AXES);
        Axis *ax = &p->axes[p->naxes++];
        ax->k = k;
        ax->at = at;
        char what[MAXPATH + 16];
        snprintf(what, sizeof what, "grid axis '%s'", k->key);
        if (parse_axis_values(p, ax, k, what, "a list of values")) return -1;
    }
}

/* seeds: a list of seeds, the innermost grid axis on train.seed */
static int parse_seeds(Parser *p, Pos at) {
    const KeyDef *k = find_key("train.seed");
    for (size_t i = 0; i < p->naxes; i++)
        if (p->axes[i].k == k)
            return failf(p, at, "seeds: is also given as the grid axis 'train.seed' (line %zu, column %zu); use one of them",
                         p->axes[i].at.line, p->axes[i].at.col);
    if (p->naxes >= CFG_MAX_AXES)
        return failf(p, at, "too many grid axes with seeds: (at most %d, seeds: counting as one)", CFG_MAX_AXES);
    Axis *ax = &p->seeds;
    ax->k = k;
    ax->at = at;
    ax->is_seeds = 1;
    /* the elements are train.seed values, named after the key the file wrote */
    KeyDef sk = *k;
    sk.key = "seeds";
    return parse_axis_values(p, ax, &sk, "key 'seeds'", "a list of non-negative integers");
}

static int run_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '+' || c == '=' || c == '-';
}

/* a runs: name becomes (part of) an HDF5 group name */
static int check_run_name(Parser *p, Pos at, const char *s, size_t n) {
    char shown[96];
    show(shown, sizeof shown, s, n);
    if (n == 0) return failf(p, at, "a run name must not be empty");
    if (n > RUN_NAME_MAX)
        return failf(p, at, "run name '%s' is too long (%zu bytes, at most %d)", shown, n, RUN_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if (!run_name_char(s[i]))
            return failf(p, at,
                         "run name '%s' may use only letters, digits and the characters _ . + = - (it names an "
                         "HDF5 group)",
                         shown);
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return failf(p, at, "run name '%s' is not allowed (it names an HDF5 group)", shown);
    return 0;
}

/* The experiment's name becomes a file name (RESULTS/NAME.h5, and the
 * exported tables and figures), a directory and text inside gnuplot scripts
 * and shell commands: run-name characters only, so that no name can leave
 * the results directory ('/', '..'), hide (a leading '.'), read as an option
 * (a leading '-'), or break quoting ('"$`, spaces, newlines). 0 when s[0..n)
 * qualifies, else -1 with what is wrong in why. */
static int experiment_name_problem(const char *s, size_t n, char *why, size_t cap) {
    char shown[96];
    show(shown, sizeof shown, s, n);
    if (n == 0) {
        snprintf(why, cap, "is empty");
        return -1;
    }
    if (n >= CFG_STR) {
        snprintf(why, cap, "is too long (%zu bytes, at most %d)", n, CFG_STR - 1);
        return -1;
    }
    int ok = s[0] != '.' && s[0] != '-';
    for (size_t i = 0; ok && i < n; i++) ok = run_name_char(s[i]);
    if (!ok) {
        snprintf(why, cap,
                 "'%s' may use only letters, digits and the characters _ . + = -, and must not start with '.' or '-' "
                 "(it names the results file and the figures)",
                 shown);
        return -1;
    }
    return 0;
}

/* One entry of runs: its name and a mapping of overrides written like base: */
static int parse_run(Parser *p, const yaml_event_t *kev) {
    Pos at = pos_of(kev);
    const char *s = (const char *)kev->data.scalar.value;
    size_t n = kev->data.scalar.length;
    if (kev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && is_null_word(s, n)) n = 0;
    if (check_run_name(p, at, s, n)) return -1;
    for (size_t i = 0; i < p->nrdefs; i++)
        if (strlen(p->rdefs[i].name) == n && !memcmp(p->rdefs[i].name, s, n))
            return failf(p, at, "duplicate run '%s' (first given at line %zu, column %zu)", p->rdefs[i].name,
                         p->rdefs[i].at.line, p->rdefs[i].at.col);
    if (p->nrdefs >= CFG_MAX_RUNS)
        return failf(p, at, "runs: has more than %d runs (a file expands to at most %d runs)", CFG_MAX_RUNS,
                     CFG_MAX_RUNS);
    if (p->nrdefs == p->rcap) {
        size_t cap = p->rcap ? 2 * p->rcap : 4;
        RunDef *r = realloc(p->rdefs, cap * sizeof *r);
        if (!r) return failf(p, at, "out of memory");
        p->rdefs = r;
        p->rcap = cap;
    }
    RunDef *d = &p->rdefs[p->nrdefs++];
    memset(d, 0, sizeof *d);
    memcpy(d->name, s, n);
    d->at = at;
    char what[RUN_NAME_MAX + 16];
    snprintf(what, sizeof what, "run '%s'", d->name);
    int m = expect_mapping(p, what, "a mapping of keys to override, written like base:");
    if (m <= 0) return m;
    p->dst = &d->c;
    p->dst_at = d->set_at;
    p->nseen = 0;
    snprintf(p->label, sizeof p->label, "runs.%s", d->name);
    return parse_map(p, "");
}

/* runs: a mapping of run names to overrides */
static int parse_runs(Parser *p, Pos at) {
    int m = expect_mapping(p, "key 'runs'", "a mapping of run names to overrides (full: {precision.schedule: full})");
    if (m < 0) return -1;
    while (m) {
        yaml_event_t kev;
        int got = next_key(p, &kev);
        if (got < 0) return -1;
        if (got == 0) break;
        int rc = parse_run(p, &kev);
        yaml_event_delete(&kev);
        if (rc) return -1;
    }
    if (p->nrdefs == 0) return failf(p, at, "key 'runs' names no run (give at least one, e.g. 'full: {}')");
    return 0;
}

static int parse_top(Parser *p) {
    for (;;) {
        yaml_event_t kev, vev;
        int got = next_key(p, &kev);
        if (got <= 0) return got;
        Pos at = pos_of(&kev);
        const char *key = (const char *)kev.data.scalar.value;
        size_t klen = kev.data.scalar.length;
        int which = -1;
        for (int i = 0; TOP_KEYS[i]; i++)
            if (strlen(TOP_KEYS[i]) == klen && !memcmp(TOP_KEYS[i], key, klen)) which = i;
        if (which < 0) {
            char shown[96], path[MAXPATH];
            int rc;
            show(shown, sizeof shown, key, klen);
            int fits = klen < sizeof path && !memchr(key, 0, klen);
            if (fits) snprintf(path, sizeof path, "%.*s", (int)klen, key);
            if (fits && (find_key(path) || is_prefix(path))) {
                rc = failf(p, at, "unknown key '%s' at the top level (did you mean to put it under 'base:'?)", shown);
            } else {
                size_t best = (size_t)-1;
                const char *near = NULL;
                for (int i = 0; TOP_KEYS[i]; i++) {
                    size_t d = edit_distance(key, klen, TOP_KEYS[i], strlen(TOP_KEYS[i]));
                    if (d < best) { best = d; near = TOP_KEYS[i]; }
                }
                if (best <= typo_budget(klen))
                    rc = failf(p, at, "unknown key '%s' (did you mean '%s'?)", shown, near);
                else
                    rc = failf(p, at,
                               "unknown key '%s' (allowed at the top level: name, description, base, grid, seeds, runs, compare_to, target_top1)",
                               shown);
            }
            yaml_event_delete(&kev);
            return rc;
        }
        yaml_event_delete(&kev);
        if (p->top_at[which].line)
            return failf(p, at, "duplicate key '%s' (first given at line %zu, column %zu)", TOP_KEYS[which],
                         p->top_at[which].line, p->top_at[which].col);
        p->top_at[which] = at;

        int rc = 0;
        switch (which) {
        case TOP_NAME:
        case TOP_DESCRIPTION: {
            char *dst = which == TOP_NAME ? p->e->name : p->e->description;
            size_t cap = which == TOP_NAME ? sizeof p->e->name : sizeof p->e->description;
            if (expect_scalar(p, TOP_KEYS[which], "a string", &vev)) return -1;
            rc = set_text(p, TOP_KEYS[which], dst, cap, &vev);
            if (!rc && which == TOP_NAME && !dst[0]) rc = failf(p, pos_of(&vev), "key 'name' must not be empty");
            char why[256];
            if (!rc && which == TOP_NAME && experiment_name_problem(dst, strlen(dst), why, sizeof why))
                rc = failf(p, pos_of(&vev), "key 'name' %s", why);
            if (which == TOP_NAME) p->name_given = 1;
            yaml_event_delete(&vev);
            break;
        }
        case TOP_BASE: {
            char keys[400], expects[440];
            keys_below("", keys, sizeof keys);
            snprintf(expects, sizeof expects, "a mapping (with keys %s)", keys);
            p->base_at = at;
            p->dst = &p->e->base;
            p->dst_at = p->set_at;
            p->nseen = 0;
            snprintf(p->label, sizeof p->label, "base");
            int m = expect_mapping(p, "key 'base'", expects);
            rc = m < 0 ? -1 : m ? parse_map(p, "") : 0;
            break;
        }
        case TOP_COMPARE_TO: {
            if (expect_scalar(p, "compare_to", "a configuration name", &vev)) return -1;
            rc = set_text(p, "compare_to", p->e->compare_to, sizeof p->e->compare_to, &vev);
            p->compare_at = pos_of(&vev);
            yaml_event_delete(&vev);
            break;
        }
        case TOP_TARGET_TOP1: {
            if (expect_scalar(p, "target_top1", "a number (percent)", &vev)) return -1;
            const char *v = (const char *)vev.data.scalar.value;
            char buf[64], *end;
            snprintf(buf, sizeof buf, "%.*s", (int)(vev.data.scalar.length < 63 ? vev.data.scalar.length : 63), v);
            double x = strtod(buf, &end);
            if (end == buf || *end || !(x > 0 && x <= 100))
                rc = failf(p, pos_of(&vev), "key 'target_top1' must be a validation top-1 in percent, in (0, 100], "
                           "got '%s'", buf);
            else
                p->e->target_top1 = x;
            yaml_event_delete(&vev);
            break;
        }
        case TOP_GRID: rc = parse_grid(p); break;
        case TOP_SEEDS: rc = parse_seeds(p, at); break;
        case TOP_RUNS: rc = parse_runs(p, at); break;
        }
        if (rc) return -1;
    }
}

static int parse_stream(Parser *p) {
    yaml_event_t ev;
    Pos first = {1, 1};
    if (next_event(p, &ev)) return -1; /* stream start */
    /* libyaml would read UTF-16 (by its BOM), but the text is kept verbatim
     * as a C string for the results file, which needs UTF-8 */
    int utf16 = ev.data.stream_start.encoding == YAML_UTF16LE_ENCODING ||
                ev.data.stream_start.encoding == YAML_UTF16BE_ENCODING;
    yaml_event_delete(&ev);
    if (utf16) return failf(p, first, "the file is UTF-16; save it as UTF-8");
    if (next_event(p, &ev)) return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return failf(p, first, "empty file (expected a mapping with a 'base:' key)");
    }
    yaml_event_delete(&ev); /* document start */
    if (next_event(p, &ev)) return -1;
    Pos at = pos_of(&ev);
    int rc = 0;
    switch (ev.type) {
    case YAML_MAPPING_START_EVENT:
        yaml_event_delete(&ev);
        if (parse_top(p)) return -1;
        break;
    case YAML_ALIAS_EVENT:
        rc = alias_error(p, &ev);
        yaml_event_delete(&ev);
        return rc;
    case YAML_SCALAR_EVENT:
        if (ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            is_null_word((const char *)ev.data.scalar.value, ev.data.scalar.length)) {
            rc = failf(p, at, "empty document (expected a mapping with a 'base:' key)");
            yaml_event_delete(&ev);
            return rc;
        }
        /* fall through */
    default:
        rc = failf(p, at, "the top level must be a mapping (with keys name, description, base, grid, seeds, runs, compare_to, target_top1), got %s",
                   node_kind(&ev));
        yaml_event_delete(&ev);
        return rc;
    }
    if (next_event(p, &ev)) return -1; /* document end */
    yaml_event_delete(&ev);
    if (next_event(p, &ev)) return -1;
    at = pos_of(&ev);
    int more = ev.type != YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (more) return failf(p, at, "more than one YAML document in the file (only one is allowed)");
    return 0;
}

/* ---------------------------------------------------------------- expansion */

/* Where to point when a run fails cross_check: the grid value or runs:
 * override that set a blamed key (the first blamed key first), else the base:
 * key as for a file without grid/seeds/runs. */
static Pos blame_pos(const Parser *p, const char *const blame[2], const RunDef *rd, const Axis *const *ax,
                     const size_t *vi, size_t na) {
    for (int i = 0; i < 2; i++) {
        const KeyDef *k = blame[i] ? find_key(blame[i]) : NULL;
        if (!k) continue;
        for (size_t a = 0; a < na; a++)
            if (ax[a]->k == k) return ax[a]->val_at[vi[a]];
        if (rd && rd->set_at[k - KEYS].line) return rd->set_at[k - KEYS];
    }
    Pos top = {1, 1};
    Pos at = p->base_at.line ? p->base_at : top;
    for (int i = 1; i >= 0; i--) {
        const KeyDef *k = blame[i] ? find_key(blame[i]) : NULL;
        if (k && p->set_at[k - KEYS].line) at = p->set_at[k - KEYS];
    }
    return at;
}

/* "RUN,short=value,...,seed=N" into out; -1 when it does not fit */
static int build_name(char *out, size_t cap, const char *run, const Axis *const *ax, char (*shortn)[MAXPATH],
                      const size_t *vi, size_t na) {
    size_t o = 0;
    out[0] = 0;
    if (run) {
        int w = snprintf(out, cap, "%s", run);
        if (w < 0 || (size_t)w >= cap) return -1;
        o = (size_t)w;
    }
    for (size_t a = 0; a < na; a++) {
        char val[CFG_PATH + 32];
        const KeyDef *k = ax[a]->k;
        value_text(k, ax[a]->vals + vi[a] * k->size, val, sizeof val);
        /* A string value (data.path) may hold anything. The name names an
         * HDF5 group ('/' would nest one), its parts are split at ',', and it
         * reaches file names, progress lines and figure titles: every
         * character that a runs: name may not use becomes '_'. (The other
         * types print only digits, letters and . + - already.) */
        if (k->type == T_STR || k->type == T_ENUM)
            for (char *q = val; *q; q++)
                if (!run_name_char(*q)) *q = '_';
        int w = snprintf(out + o, cap - o, "%s%s=%s", o ? "," : "", shortn[a], val);
        if (w < 0 || (size_t)w >= cap - o) return -1;
        o += (size_t)w;
    }
    return 0;
}

/* the run index idx as (runs: entry, value index per axis); the last axis varies fastest */
static size_t decode_run(size_t idx, const Axis *const *ax, size_t na, size_t *vi) {
    for (size_t a = na; a-- > 0;) {
        vi[a] = idx % ax[a]->n;
        idx /= ax[a]->n;
    }
    return idx;
}

static int cmp_run_name(const void *a, const void *b) {
    return strcmp((*(const RunSpec *const *)a)->name, (*(const RunSpec *const *)b)->name);
}

/* Names repeat only when string values print alike (a/b, a,b and a_b all
 * give a_b); sorting keeps the check O(n log n). Points at the first value
 * in which the later of two such runs differs from the earlier. */
static int check_unique_names(Parser *p, const RunSpec *runs, size_t n, const Axis *const *ax, size_t na,
                              Pos fallback) {
    const RunSpec **order = malloc(n * sizeof *order);
    if (!order) return failf(p, fallback, "out of memory");
    for (size_t i = 0; i < n; i++) order[i] = &runs[i];
    qsort(order, n, sizeof *order, cmp_run_name);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++) {
        if (strcmp(order[i - 1]->name, order[i]->name)) continue;
        size_t i1 = (size_t)(order[i - 1] - runs), i2 = (size_t)(order[i] - runs);
        if (i1 > i2) { size_t t = i1; i1 = i2; i2 = t; }
        size_t v1[CFG_MAX_AXES], v2[CFG_MAX_AXES];
        decode_run(i1, ax, na, v1);
        decode_run(i2, ax, na, v2);
        Pos at = fallback;
        for (size_t a = 0; a < na; a++)
            if (v1[a] != v2[a]) {
                at = ax[a]->val_at[v2[a]];
                break;
            }
        char shown[4 * CFG_RUN_NAME + 8];
        rc = failf(p, at,
                   "two runs would both be named '%s' (their values print alike; in names, every character but "
                   "letters, digits and _ . + = - becomes '_')",
                   show_n(shown, sizeof shown, order[i]->name, strlen(order[i]->name), CFG_RUN_NAME));
    }
    free(order);
    return rc;
}

/* The runs of the file: runs: entries (outermost) x grid axes (file order)
 * x seeds (innermost), each base + its overrides + its grid values + its
 * seed, named and cross-checked, into e->runs. */
static int expand(Parser *p, ExperimentConfig *e) {
    const Axis *ax[CFG_MAX_AXES];
    size_t na = 0;
    for (size_t i = 0; i < p->naxes; i++) ax[na++] = &p->axes[i];
    if (p->seeds.n) ax[na++] = &p->seeds;
    /* a file without grid/seeds/runs is one run, checked and named as base: alone */
    const int plain = na == 0 && p->nrdefs == 0;

    /* an override of a key the grid sets in every run would be dead */
    for (size_t r = 0; r < p->nrdefs; r++)
        for (size_t a = 0; a < na; a++) {
            Pos o = p->rdefs[r].set_at[ax[a]->k - KEYS];
            if (o.line)
                return failf(p, o,
                             "run '%s' sets key '%s', which %s (line %zu, column %zu) sets in every run: the "
                             "override would have no effect",
                             p->rdefs[r].name, ax[a]->k->key, ax[a]->is_seeds ? "seeds:" : "a grid axis",
                             ax[a]->at.line, ax[a]->at.col);
        }

    /* the count, before anything is allocated; every factor is >= 1 */
    Pos top = {1, 1};
    Pos grid_at = p->top_at[TOP_GRID].line    ? p->top_at[TOP_GRID]
                  : p->top_at[TOP_SEEDS].line ? p->top_at[TOP_SEEDS]
                  : p->top_at[TOP_RUNS].line  ? p->top_at[TOP_RUNS]
                                              : top;
    unsigned long long total = p->nrdefs ? p->nrdefs : 1;
    for (size_t a = 0; a < na; a++) {
        if (total > ULLONG_MAX / ax[a]->n)
            return failf(p, grid_at, "the grid expands to more than %llu runs (at most %d)", ULLONG_MAX, CFG_MAX_RUNS);
        total *= ax[a]->n;
    }
    if (total > CFG_MAX_RUNS)
        return failf(p, grid_at, "the grid expands to %llu runs (at most %d)", total, CFG_MAX_RUNS);

    /* short names: the last segment of the key, unless two axes share it */
    char shortn[CFG_MAX_AXES][MAXPATH];
    for (size_t a = 0; a < na; a++) {
        const char *dot = strrchr(ax[a]->k->key, '.');
        snprintf(shortn[a], MAXPATH, "%s", dot ? dot + 1 : ax[a]->k->key);
    }
    int shared[CFG_MAX_AXES] = {0};
    for (size_t a = 0; a < na; a++)
        for (size_t b = 0; b < na; b++)
            if (a != b) {
                /* compare the segments in the key table itself */
                const char *da = strrchr(ax[a]->k->key, '.'), *db = strrchr(ax[b]->k->key, '.');
                if (!strcmp(da ? da + 1 : ax[a]->k->key, db ? db + 1 : ax[b]->k->key)) shared[a] = 1;
            }
    for (size_t a = 0; a < na; a++)
        if (shared[a]) snprintf(shortn[a], MAXPATH, "%s", ax[a]->k->key);

    RunSpec *runs = calloc((size_t)total, sizeof *runs);
    if (!runs) return failf(p, grid_at, "out of memory");
    for (size_t idx = 0; idx < (size_t)total; idx++) {
        size_t vi[CFG_MAX_AXES];
        size_t r = decode_run(idx, ax, na, vi);
        const RunDef *rd = p->nrdefs ? &p->rdefs[r] : NULL;
        RunSpec *s = &runs[idx];
        s->c = e->base;
        if (rd)
            for (size_t k = 0; k < NKEYS; k++)
                if (rd->set_at[k].line) memcpy(field(&s->c, &KEYS[k]), cfield(&rd->c, &KEYS[k]), KEYS[k].size);
        for (size_t a = 0; a < na; a++)
            memcpy(field(&s->c, ax[a]->k), ax[a]->vals + vi[a] * ax[a]->k->size, ax[a]->k->size);

        if (plain) {
            snprintf(s->name, sizeof s->name, "%s", e->name);
        } else if (build_name(s->name, sizeof s->name, rd ? rd->name : NULL, ax, shortn, vi, na)) {
            char shown[96];
            failf(p, grid_at, "the run name '%s' would be longer than %d bytes (use fewer axes or shorter values)",
                  show(shown, sizeof shown, s->name, strlen(s->name)), CFG_RUN_NAME - 1);
            free(runs);
            return -1;
        }

        char msg[600];
        const char *blame[2];
        if (cross_check(&s->c, msg, sizeof msg, blame)) {
            Pos at = blame_pos(p, blame, rd, ax, vi, na);
            char shown[4 * CFG_RUN_NAME + 8];
            if (plain) failf(p, at, "%s", msg);
            else failf(p, at, "in run '%s': %s", show_n(shown, sizeof shown, s->name, strlen(s->name), CFG_RUN_NAME), msg);
            free(runs);
            return -1;
        }
    }
    if (!plain && check_unique_names(p, runs, (size_t)total, ax, na, grid_at)) {
        free(runs);
        return -1;
    }
    e->runs = runs;
    e->n_runs = (int)total;
    e->n_axes = (int)na;
    for (size_t a = 0; a < na; a++) snprintf(e->axis_names[a], sizeof e->axis_names[a], "%s", ax[a]->k->key);
    return 0;
}

static void parser_free(Parser *p) {
    for (size_t i = 0; i < p->naxes; i++) {
        free(p->axes[i].vals);
        free(p->axes[i].val_at);
    }
    free(p->seeds.vals);
    free(p->seeds.val_at);
    free(p->rdefs);
    free(p);
}

/* the file's base name without .yaml / .yml */
static void default_name(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n >= 5 && !strcmp(b + n - 5, ".yaml")) n -= 5;
    else if (n >= 4 && !strcmp(b + n - 4, ".yml")) n -= 4;
    if (n >= cap) n = cap - 1; /* checked by the caller when it matters */
    memcpy(out, b, n);
    out[n] = 0;
}

int experiment_parse(ExperimentConfig *e, const char *text, size_t len, const char *path, char *err, size_t errlen) {
    if (!path) path = "<string>";
    if (err && errlen) err[0] = 0;

    /* Build into a scratch copy so that *e is untouched on failure. Static
     * would save stack but make the parser non-reentrant. */
    ExperimentConfig tmp;
    memset(&tmp, 0, sizeof tmp);
    config_defaults(&tmp.base);

    Parser *p = calloc(1, sizeof *p);
    if (!p) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    p->file = path;
    p->text = text;
    p->len = text ? len : 0;
    p->err = err;
    p->errlen = errlen;
    p->e = &tmp;
    p->dst = &tmp.base;
    p->dst_at = p->set_at;
    snprintf(p->label, sizeof p->label, "base");
    Pos top = {1, 1};

    int rc = 0;
    if (strlen(path) >= sizeof tmp.path) {
        rc = failf(p, top, "file path is too long (at most %zu bytes)", sizeof tmp.path - 1);
    } else {
        snprintf(tmp.path, sizeof tmp.path, "%s", path);
        default_name(path, tmp.name, sizeof tmp.name);
    }
    if (!rc && (!text || len == 0)) rc = failf(p, top, "empty file (expected a mapping with a 'base:' key)");
    if (!rc) {
        if (!yaml_parser_initialize(&p->yp)) {
            rc = failf(p, top, "out of memory");
        } else {
            yaml_parser_set_input_string(&p->yp, (const unsigned char *)text, len);
            rc = syntax_prescan(p);
            if (!rc) rc = parse_stream(p);
            yaml_parser_delete(&p->yp);
        }
    }
    if (!rc) rc = expand(p, &tmp);
    if (!rc && tmp.compare_to[0]) {
        /* compare_to names a configuration: a run name without its seed=N */
        int found = 0;
        char g[CFG_RUN_NAME];
        for (int i = 0; i < tmp.n_runs && !found; i++)
            found = !strcmp(stats_group_name(tmp.runs[i].name, g, sizeof g), tmp.compare_to) ||
                    (!g[0] && !strcmp(tmp.name, tmp.compare_to));
        if (!found) {
            stats_group_name(tmp.runs[0].name, g, sizeof g);
            rc = failf(p, p->compare_at, "key 'compare_to' names no configuration of this file: '%s' (the "
                       "configurations are the run names without seed=N, e.g. '%s')", tmp.compare_to,
                       g[0] ? g : tmp.name);
        }
        if (rc) free(tmp.runs), tmp.runs = NULL;
    }
    if (!rc && !p->name_given) {
        /* the name comes from the file name, which must give a usable one */
        char full[CFG_PATH];
        default_name(path, full, sizeof full);
        char why[256];
        if (!full[0]) rc = failf(p, top, "the file name gives no experiment name: set name:");
        else if (strlen(full) >= sizeof tmp.name)
            rc = failf(p, top, "the file name gives an experiment name longer than %zu bytes: set name:",
                       sizeof tmp.name - 1);
        else if (experiment_name_problem(full, strlen(full), why, sizeof why))
            rc = failf(p, top, "the experiment name from the file name %s: set name:", why);
    }
    if (!rc) {
        tmp.yaml_text = malloc(len + 1);
        if (!tmp.yaml_text) {
            rc = failf(p, top, "out of memory");
        } else {
            memcpy(tmp.yaml_text, text, len);
            tmp.yaml_text[len] = 0;
            *e = tmp;
        }
    }
    if (rc) free(tmp.runs);
    parser_free(p);
    return rc;
}

int experiment_load(ExperimentConfig *e, const char *path, char *err, size_t errlen) {
    /* a configuration file is a few kB; refuse anything absurd rather than read it */
    const size_t max_size = (size_t)16 << 20;
    if (err && errlen) err[0] = 0;
    if (!path) path = "(null)";
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (n == cap) {
            if (cap >= max_size) {
                if (err && errlen) snprintf(err, errlen, "%s: file is too large for a configuration (> %zu bytes)", path, max_size);
                rc = -1;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                if (err && errlen) snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
                rc = -1;
            }
            break;
        }
    }
    fclose(f);
    if (!buf) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (!rc) rc = experiment_parse(e, buf, n, path, err, errlen);
    free(buf);
    return rc;
}

void experiment_free(ExperimentConfig *e) {
    if (!e) return;
    free(e->yaml_text);
    e->yaml_text = NULL;
    free(e->runs);
    e->runs = NULL;
    e->n_runs = 0;
}

/* ---------------------------------------------------------------- output */

typedef struct { char *p; size_t n, cap; int oom; } Buf;

static void put(Buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w < 0) { b->oom = 1; return; }
        if ((size_t)w < b->cap - b->n) { b->n += (size_t)w; return; }
        size_t nc = b->cap * 2 + (size_t)w;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
}

/* Shortest %.Ng that reads back to the same double; %.17g always does. */
static void fmt_double(char *buf, size_t cap, double v) {
    if (isnan(v)) { snprintf(buf, cap, ".nan"); return; }
    if (isinf(v)) { snprintf(buf, cap, v > 0 ? ".inf" : "-.inf"); return; }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* a string as YAML: plain when it is an identifier-like word YAML will not
 * read as something else, double-quoted with escapes otherwise */
static void put_string(Buf *b, const char *s) {
    int plain = s[0] != 0 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'));
    for (const char *q = s; *q && plain; q++)
        plain = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_';
    size_t n = strlen(s);
    if (plain && (is_null_word(s, n) || ieq(s, n, "true") || ieq(s, n, "false") || ieq(s, n, "yes") ||
                  ieq(s, n, "no") || ieq(s, n, "on") || ieq(s, n, "off") || ieq(s, n, "y") || ieq(s, n, "n")))
        plain = 0;
    if (plain) { put(b, "%s", s); return; }
    put(b, "\"");
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (*q == '"' || *q == '\\') put(b, "\\%c", *q);
        else if (*q == '\n') put(b, "\\n");
        else if (*q == '\t') put(b, "\\t");
        else if (*q < 0x20 || *q == 0x7f) put(b, "\\x%02x", *q);
        else put(b, "%c", *q);
    }
    put(b, "\"");
}

static void put_value(Buf *b, const KeyDef *k, const RunConfig *c) {
    char num[64];
    const void *f = cfield(c, k);
    switch (k->type) {
    case T_STR: {
        /* the field may lack a terminator if filled by hand; never read past it */
        char tmp[CFG_PATH];
        size_t n = strnlen((const char *)f, k->size);
        if (n >= sizeof tmp) n = sizeof tmp - 1;
        memcpy(tmp, f, n);
        tmp[n] = 0;
        put_string(b, tmp);
        break;
    }
    case T_ENUM: {
        int x;
        memcpy(&x, f, sizeof x);
        put_string(b, enum_name(k, x));
        break;
    }
    case T_INT: put(b, "%d", *(const int *)f); break;
    case T_LONG: put(b, "%ld", *(const long *)f); break;
    case T_BOOL: put(b, "%s", *(const int *)f ? "true" : "false"); break;
    case T_U64: put(b, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case T_BITS: {
        /* the scalar form when it says the same: it reads back to the same struct */
        BitRange r;
        memcpy(&r, f, sizeof r);
        if (r.min == r.max) put(b, "%d", r.min);
        else put(b, "[%d, %d]", r.min, r.max);
        break;
    }
    case T_DOUBLE:
        fmt_double(num, sizeof num, *(const double *)f);
        put(b, "%s", num);
        break;
    case T_DLIST: {
        double x[CFG_LIST_MAX];
        const int n = dlist_get(f, x);
        put(b, "[");
        for (int i = 0; i < n; i++) {
            fmt_double(num, sizeof num, x[i]);
            put(b, "%s%s", i ? ", " : "", num);
        }
        put(b, "]");
        break;
    }
    }
}

char *config_to_yaml(const RunConfig *c) {
    Buf b = {malloc(2048), 0, 2048, 0};
    if (!b.p) return NULL;
    b.p[0] = 0;
    put(&b, "base:\n");
    const char *prev = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = KEYS[i].key;
        /* depth of the mapping shared with the previous key */
        size_t common = 0, depth = 0;
        for (size_t j = 0; k[j] && k[j] == prev[j]; j++)
            if (k[j] == '.') { common = j + 1; depth++; }
        /* open the mappings this key needs beyond that */
        const char *seg = k + common;
        for (const char *dot; (dot = strchr(seg, '.')); seg = dot + 1, depth++)
            put(&b, "%*s%.*s:\n", (int)(2 + 2 * depth), "", (int)(dot - seg), seg);
        put(&b, "%*s%s: ", (int)(2 + 2 * depth), "", seg);
        put_value(&b, &KEYS[i], c);
        put(&b, "\n");
        prev = k;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

void config_print_schema(FILE *f) {
    fprintf(f, "Keys of base: (every key optional; the default applies when absent)\n\n");
    fprintf(f, "%-31s %-7s %-15s %-22s %s\n", "key", "type", "default", "range", "description");
    for (size_t i = 0; i < NKEYS; i++) {
        const KeyDef *k = &KEYS[i];
        char range[256] = "", def[64];
        if (k->choices) {
            size_t o = 0;
            for (const char *const *ch = k->choices; *ch; ch++) {
                int w = snprintf(range + o, sizeof range - o, "%s%s", o ? " | " : "", *ch);
                if (w < 0 || (size_t)w >= sizeof range - o) break;
                o += (size_t)w;
            }
        } else if (k->type == T_U64) {
            snprintf(range, sizeof range, "[0, 2^64)");
        } else if (k->type == T_BOOL) {
            snprintf(range, sizeof range, "true | false");
        } else if (k->type == T_DLIST) {
            char r[96];
            range_str(k, r, sizeof r);
            snprintf(range, sizeof range, "%d-%d of %s", k->list_min, CFG_LIST_MAX, r);
        } else {
            range_str(k, range, sizeof range);
        }
        snprintf(def, sizeof def, "%s", k->def[0] ? k->def : "\"\"");
        /* a long list of values gets a line of its own so the columns stay aligned */
        if (strlen(range) > 22)
            fprintf(f, "%-31s %-7s %-15s %-22s %s\n%-56s%s\n", k->key, type_name(k), def, "(below)", k->help,
                    "", range);
        else
            fprintf(f, "%-31s %-7s %-15s %-22s %s\n", k->key, type_name(k), def, range, k->help);
    }
    fprintf(f,
            "\nBesides name:, description: and base:, an experiment file may have\n"
            "  grid:  {KEY: [v1, v2, ...], ...}  KEY a dotted key above (precision.cycles: [2, 4, 8]); the values\n"
            "                                    are read like base: values; a bits value is n or [min, max]\n"
            "  seeds: [s1, s2, ...]              a grid axis on train.seed, always the innermost\n"
            "  runs:  {NAME: {KEY: value, ...}}  named overrides written like base: (NAME: letters, digits, _.+=-)\n"
            "The runs are every runs: entry x every combination of the grid axes (the first varies slowest) x\n"
            "every seed, at most %d: base, then the run's overrides, its grid values, its seed. They are named\n"
            "like 'fixed,cycles=8,bits=2-6,seed=1'; a file without grid/seeds/runs is one run named after it.\n",
            CFG_MAX_RUNS);
}

long config_val_split(const RunConfig *c, long n_train) {
    double v = c->val_split;
    if (v == -1) {
        if (!strcmp(c->dataset, "fashion_mnist") || !strcmp(c->dataset, "cifar10")) v = 5000;
        else if (!strcmp(c->dataset, "imagenet")) v = 10000;
        else v = 0;
    }
    long n = v > 0 && v < 1 ? (long)floor(v * (double)n_train) : (long)v;
    return n < 0 ? 0 : n;
}

int config_eval_bits(const RunConfig *c) {
    if (c->prec_schedule == PREC_FULL) return 32;
    return c->eval_bits > 0 ? c->eval_bits : c->bits.max;
}
