/* One small interface for every dataset.
 *
 * A Dataset knows its size and image geometry and can produce sample i as
 * `real` CHW pixels (scaled to [0,1], optionally mean/std normalised) plus its
 * label, with augmentation drawn from an Rng the caller passes (the run's
 * augmentation stream for (epoch, index), so batches do not depend on threads).
 * In-memory datasets (Fashion-MNIST, CIFAR-10) keep uint8 images; streaming ones
 * (ImageNet, VOC: later issues) decode in get().
 *
 * A failed sample has one meaning: get() returns -1 (a bad index, a file that
 * does not decode), dataset_batch and loader_next then return -1 with a
 * message naming the sample, and the caller stops with that message. A label
 * is never a failure signal, and no batch with a failed sample reaches a loss.
 * Skipping bad files is a dataset's own option (ImageNet skip_bad: the next
 * file stands in and is counted; VOC skip_bad: bad images are left out at
 * open), so get() succeeds for them. */
#ifndef CBNN_DATASET_H
#define CBNN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"
#include "rng.h"

/* The augmentations of method.md 5, each off when zero. A loader applies
 * those that fit its data and ignores the rest; every random draw comes from
 * the Rng handed to get() (the run's augmentation stream for (epoch, index)).
 * Order, CIFAR: crop (pad, fill) -> flip -> AutoAugment -> Cutout -> scale
 * [-> normalize]. ImageNet train: RandomResizedCrop -> flip -> scale ->
 * Lighting -> normalize; eval: resize shorter side -> centre crop. */
typedef struct {
    int flip;        /* random horizontal flip */
    int crop_pad;    /* random crop back to the original size after padding by this many pixels */
    int normalize;   /* subtract mean, divide by std (per channel) */
    /* CIFAR (datasets/augment_cifar.c) */
    int crop_fill_mean;  /* pad with the dataset's mean pixel instead of 0 (the CIFAR recipe) */
    int autoaugment;     /* AutoAugment CIFAR-10 policy (25 sub-policies, fill = mean) */
    int cutout;          /* Cutout: one square hole of this side in pixels (0 = off) */
    /* ImageNet (datasets/augment_imagenet.c) */
    int rrc;             /* RandomResizedCrop to the dataset's output size (train) */
    double rrc_scale_min, rrc_scale_max;   /* area fraction, e.g. 0.08, 1.25 */
    double rrc_ratio_min, rrc_ratio_max;   /* aspect ratio, e.g. 3/4, 4/3 */
    int lighting;        /* AlexNet PCA lighting (std 0.1); see the loader on why it is a no-op upstream */
    int eval_resize;     /* eval: resize the shorter side to this (e.g. 256), then centre-crop */
} Augment;

typedef struct Dataset Dataset;
struct Dataset {
    char name[64];
    char source[512];            /* where it was read from */
    long n;
    int channels, height, width, num_classes;
    float mean[3], std[3];       /* per-channel statistics of the training split, on [0,1] pixels */
    /* in-memory storage (NULL for streaming datasets) */
    uint8_t *images;             /* [n, channels, height, width] */
    uint8_t *labels;             /* [n] */
    /* sample i -> out [channels, height, width], *label; aug may be NULL (no
     * augmentation). 0, or -1 when sample i cannot be produced (out and *label
     * are then unspecified) */
    int (*get)(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng);
    void (*destroy)(Dataset *ds);
    /* optional: the reason of the latest get() failure ("" if none), which
     * dataset_batch and the loader append to their message (ImageNet: the
     * file and libjpeg's complaint). With several failures in flight it may
     * be another sample's; the sample the message names is the first. */
    void (*last_error)(const Dataset *ds, char *buf, size_t len);
    void *impl;
};

/* the get() of in-memory uint8 datasets */
int dataset_get_u8(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng);
/* keep only the first n samples (n <= 0 or n >= ds->n: no change) */
void dataset_truncate(Dataset *ds, long n);
/* batch of B samples idx[0..B) into out [B, C, H, W] and labels [B]; runs in
 * parallel, each sample's augmentation from rng_stream(seed, RNG_AUGMENT, epoch, idx[b]).
 * train = 0 (evaluation): no random augmentation, only aug->normalize applies.
 * Returns 0, or -1 when a sample's get() failed, with a message naming the
 * first such position and sample in err; the batch must then not be used. */
int dataset_batch(const Dataset *ds, const int32_t *idx, int B, real *out, int32_t *labels, const Augment *aug,
                  int train, uint64_t seed, long epoch, char *err, size_t errlen);
void dataset_free(Dataset *ds);

/* "<ds name>: reading sample <i> failed (<where>)[: <ds->last_error>]" into
 * err: the one message of a failed sample (dataset_batch, the loader) */
void dataset_sample_errf(const Dataset *ds, long i, const char *where, char *err, size_t errlen);
/* printf into a loader's error buffer (nothing when err is NULL or empty):
 * every loader's messages go through it */
void dataset_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The published geometry and split sizes of a dataset by its config name
 * (fashion_mnist, cifar10, imagenet), for planning a run without loading it
 * (run_experiment --dry-run). Returns 0, or -1 for an unknown name. */
typedef struct {
    int channels, height, width, num_classes;
    long n_train, n_test;
} DatasetShape;
int dataset_nominal(const char *name, DatasetShape *out);

/* Fashion-MNIST (IDX, gzip'd or raw): dir holds train-images-idx3-ubyte.gz etc.
 * dir NULL or "" = /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist).
 * Returns 0, or -1 with a message naming the file and what is wrong. */
#define FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
int fashion_mnist_load(Dataset *train, Dataset *test, const char *dir, char *err, size_t errlen);

#endif
