/* ImageNet (ILSVRC-2012) as JPEG folders, decoded on the fly in get().
 *
 * Layout under root:
 *   train/<wnid>/<name>.JPEG     class folders; the classes are the sorted
 *                                wnids (folder names) of train/, label = rank
 *   val/<wnid>/<name>.JPEG       either class folders (wnids must be train's),
 *   val/<name>.JPEG + label file or flat, labelled by the first found of
 *       val/val_labels.txt, root/val_labels.txt: "filename wnid" per line
 *           (whitespace separated; blank lines and '#' comments skipped;
 *           filename with or without its extension)
 *       val/LOC_val_solution.csv, root/LOC_val_solution.csv: Kaggle's
 *           "ImageId,PredictionString" with the wnid the first token of
 *           PredictionString ("ILSVRC2012_val_00000001,n01751748 ...")
 * Image files: extension .jpeg / .jpg in any case; other files are ignored.
 * Files are listed once at load, sorted by name (classes, then files), so the
 * index -> file map is deterministic.
 *
 * Default root (NULL or ""): $CBNN_DATA/imagenet when CBNN_DATA is set and
 * non-empty, else data/imagenet (relative to the working directory).
 *
 * get(ds, i, out, label, aug, rng) -> out [3, S, S] (S = out_size):
 *   train geometry when rng && aug && aug->rrc: RandomResizedCrop(S,
 *     scale (rrc_scale_min, rrc_scale_max), ratio (rrc_ratio_min, rrc_ratio_max));
 *     zeros select torchvision's defaults (0.08, 1.0) and (3/4, 4/3);
 *   otherwise (evaluation): Resize(R) + CenterCrop(S), R = aug->eval_resize if
 *     > 0, else round(S * 256 / 224) (= 256 for S = 224);
 *   then, with rng: aug->flip (p = 0.5), aug->lighting (AlexNet PCA, std 0.1,
 *     on uint8 as the original: see augment_imagenet.h); always /255; with
 *     aug->normalize, ImageNet mean/std (ds->mean, ds->std).
 * Large JPEGs are decoded at a reduced DCT scale (M/8) when the region the
 * output is taken from still spans at least the output size at that scale
 * (ImagenetOptions.dct_scaling, on by default); the result then differs from
 * a full-size decode by JPEG-IDCT rounding / filtering (a few grey levels).
 *
 * Errors: load returns -1 with a message naming the directory/file. A file
 * that fails to decode in get(): returns -1 (dataset_batch and the loader then
 * fail the batch, dataset.h) with the message in imagenet_last_error, or, with
 * skip_bad, the next file of the list (i+1, i+2, ... wrapping) is used instead
 * and the bad file is counted once in imagenet_bad_count. libjpeg warnings
 * (truncated data, extraneous bytes) are not errors: they are counted
 * (imagenet_warning_count) and the first is kept (imagenet_last_warning). */
#ifndef CBNN_IMAGENET_H
#define CBNN_IMAGENET_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#define IMAGENET_DEFAULT_ROOT "data/imagenet"

typedef struct {
    int skip_bad;     /* 1: replace undecodable files by the next one and count them (default 0: error) */
    int dct_scaling;  /* 1 (default): decode large JPEGs at reduced DCT scale when the output allows */
    int verify;       /* 1: parse every file's JPEG header at load (slow on the full set; default 0);
                         bad files then fail the load, or with skip_bad are dropped and counted */
} ImagenetOptions;

void imagenet_default_options(ImagenetOptions *opt);
/* train and/or val (either may be NULL) from root; out_size = S (224). */
int imagenet_load(Dataset *train, Dataset *val, const char *root, int out_size, char *err, size_t errlen);
int imagenet_load_opts(Dataset *train, Dataset *val, const char *root, int out_size, const ImagenetOptions *opt,
                       char *err, size_t errlen);
/* The root used for root == NULL / "" (into buf). */
void imagenet_default_root(char *buf, size_t len);

/* Introspection of a loaded ImageNet Dataset (ds->impl) */
const char *imagenet_class_wnid(const Dataset *ds, int k);  /* NULL when out of range */
const char *imagenet_file(const Dataset *ds, long i, char *buf, size_t len); /* full path of sample i */
int32_t imagenet_label(const Dataset *ds, long i);
long imagenet_bad_count(const Dataset *ds);      /* distinct undecodable files met (skipped with skip_bad) */
long imagenet_warning_count(const Dataset *ds);  /* decodes that produced libjpeg warnings */
void imagenet_last_error(const Dataset *ds, char *buf, size_t len);
void imagenet_last_warning(const Dataset *ds, char *buf, size_t len);
/* get() with an error message (what get() calls) */
int imagenet_read(const Dataset *ds, long i, real *out, int32_t *label, const Augment *aug, Rng *rng, char *err,
                  size_t errlen);

/* datasets/synth_imagenet.c: a small ImageNet-style tree of real JPEGs under
 * dir (train/<wnid>/, val/ flat + val/val_labels.txt), deterministic from
 * seed. n_classes (3..5 used by the tests) wnids n00000001.., per_class train
 * images per class and per_class_val val images per class; widths 120..500,
 * varied aspect ratios; one train image is grayscale and one CMYK. Each image
 * (w x h) is class k's colour 0 with the block [w/4, w/2) x [h/4, h/2) in its
 * colour 1 (synth_imagenet_colour). Train image 1 of class 0 is grayscale
 * (the luma of the colours), train image 1 of class 1 is CMYK (inverted,
 * Adobe convention) when per_class >= 2. Returns 0 or -1 (+err). */
int synth_imagenet_write(const char *dir, int n_classes, int per_class, int per_class_val, uint64_t seed, char *err,
                         size_t errlen);
/* the background (which = 0) and block (which = 1) colour of class k */
void synth_imagenet_colour(int k, int which, uint8_t rgb[3]);

#endif
