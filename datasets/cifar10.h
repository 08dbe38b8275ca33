/* CIFAR-10, binary version (cifar-10-binary.tar.gz -> cifar-10-batches-bin/).
 *
 * Files: data_batch_1.bin .. data_batch_5.bin (train, 10,000 records each),
 * test_batch.bin (10,000), batches.meta.txt (the 10 class names, one a line).
 * A record is 1 label byte (0..9) then 3072 image bytes: the 32x32 R plane,
 * then G, then B (CHW, row-major), which is exactly the in-memory layout.
 *
 * Directory: dir as given; NULL or "" = $CBNN_DATA/cifar-10-batches-bin when
 * CBNN_DATA is set and non-empty, else data/cifar-10-batches-bin (relative to
 * the working directory). datasets/fetch_cifar10.sh downloads and unpacks it.
 *
 * The datasets' get() applies the CIFAR recipe (datasets/augment_cifar.h):
 * it honours Augment.crop_pad, crop_fill_mean, flip, autoaugment, cutout and
 * normalize (and ignores the ImageNet fields). */
#ifndef CBNN_CIFAR10_H
#define CBNN_CIFAR10_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "rng.h"

#define CIFAR10_SIDE 32
#define CIFAR10_CLASSES 10
#define CIFAR10_IMAGE_BYTES (3 * CIFAR10_SIDE * CIFAR10_SIDE)
#define CIFAR10_RECORD_BYTES (1 + CIFAR10_IMAGE_BYTES)
#define CIFAR10_SUBDIR "cifar-10-batches-bin"
#define CIFAR10_TRAIN_FILES 5

/* Load the train (50,000) and test (10,000; test may be NULL) splits as uint8
 * in memory, name "cifar10", mean/std per channel over the training split
 * (copied into test). Returns 0, or -1 with err naming the file and what is
 * wrong (missing file with the path looked at and the fetch script; a size that
 * is not a whole number of 3073-byte records; a label > 9 with its record). */
int cifar10_load(Dataset *train, Dataset *test, const char *dir, char *err, size_t errlen);

/* the directory cifar10_load reads for dir (resolving the default) */
void cifar10_resolve_dir(const char *dir, char *out, size_t outlen);

/* class name k of a loaded CIFAR-10 Dataset (from batches.meta.txt), or "?" */
const char *cifar10_class_name(const Dataset *ds, int k);

/* the get() of CIFAR-10 datasets (also usable on any in-memory uint8 Dataset
 * with <= 3 channels): the CIFAR pipeline of augment_cifar.h */
int cifar10_get(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng);

/* ---- synthetic CIFAR-10 (datasets/synth_cifar10.c; build/make_cifar10) ---- */

/* one synthetic record (label byte + CHW image) of class label: each class a
 * distinct coloured shape on a textured background, position and colours
 * jittered and noise added from r */
void cifar10_synth_record(uint8_t rec[CIFAR10_RECORD_BYTES], int label, Rng *r);
/* sample i of a split (0 = train, 1 = test) for a seed: label and record */
void cifar10_synth_sample(uint64_t seed, int split, long i, uint8_t rec[CIFAR10_RECORD_BYTES]);
/* write root/cifar-10-batches-bin/ with n_train records split over the 5
 * data_batch files, n_test in test_batch.bin and batches.meta.txt. Returns 0,
 * or -1 with err. */
int cifar10_synth_write(const char *root, long n_train, long n_test, uint64_t seed, char *err, size_t errlen);

#endif
