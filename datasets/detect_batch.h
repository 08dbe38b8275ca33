/* Detection batches for the Faster R-CNN task (issue 14, method.md 4.4), built
 * on datasets/voc.h the way the reference's data path builds them
 * (faster-rcnn.pytorch as BiDet ships it: roi_data_layer/roidb.py,
 * roibatchLoader.py, minibatch.py, datasets/imdb.py, trainval_net.py's
 * `sampler`, test_net.py).
 *
 * The "roidb". Training (o->train = 1): the set's images that have at least
 * one box (the others are skipped and counted, filter_roidb), entries
 * 0..m-1 in set order, then, with o->flip, entries m..2m-1 their horizontal
 * flips (append_flipped_images: the training set is doubled, no random flip).
 * Test (o->train = 0): every image, in set order, no flip, none skipped.
 * Each entry has the aspect ratio w/h of its original image clipped to
 * [0.5, 2] (need_crop = 1 when clipped) and the entries are ranked by it,
 * ascending, ties in entry order (rank_roidb_ratio; the reference's argsort
 * is not stable, ours is).
 *
 * Boxes (det_box_convert, the one place that converts): 0-based INCLUSIVE
 * pixel indices as the reference stores them, x1 = xmin - 1, x2 = xmax - 1
 * (truncated to integers: the reference's roidb keeps them as uint16);
 * flipped x1' = W - x2 - 1, x2' = W - x1 - 1 in the original W-wide image;
 * then multiplied by the uniform im_scale = min_size / shorter side (no
 * max-size cap: the reference's MAX_SIZE rule is commented out). A box is
 * `x2 - x1 + 1` wide. Classes are 1..20 (VOC_CLASSES index + 1), 0 is the
 * background. Difficult objects are kept in training by default
 * (train_difficult = 1: the reference's use_diff filter is commented out).
 *
 * Training batches (trainval_net.py `sampler`). With batch size B the ranked
 * list is cut into floor(n / B) consecutive blocks of B; each epoch visits
 * the blocks in a random order (rng_permutation on
 * rng_stream(seed, RNG_SHUFFLE, epoch, 1), the reference's torch.randperm).
 * The n mod B leftover entries (the highest ratios) are never drawn: the
 * reference appends them after the shuffled blocks but its epoch stops after
 * n // B iterations. So det_data_batches = floor(n / B) in training.
 * A batch's target ratio r (roibatchLoader, from the block's smallest and
 * largest clipped ratios lo, hi): hi < 1 -> r = lo; lo > 1 -> r = hi; else
 * r = 1; stored as float32 like the reference's ratio_list_batch, and every
 * size below is computed in float32 as there. Each image: resized
 * (shorter side min_size, flipped entries flipped), normalised; its gt boxes
 * shuffled (np.random.shuffle); then
 *   need_crop and r < 1: rows cropped to floor(w'/r) from an offset y0 drawn
 *     as the reference does (keeping the boxes' extent when it fits), box y
 *     shifted and clamped to [0, trim - 1];
 *   need_crop and r >= 1: the same on columns, trim = ceil(h' r);
 *   canvas: r < 1 -> ceil(w'/r) x w' (H x W); r > 1 -> h' x ceil(h' r);
 *     r = 1 -> the top-left min(h', w') square, boxes clamped to
 *     [0, min(h', w')] (sic: the size, not size - 1, as the reference);
 *   the image copied into the canvas's top-left corner, the rest 0 (the
 *     reference pads with zeros after normalisation);
 *   boxes with x1 == x2 or y1 == y2 dropped, the first max_gt kept, the rows
 *     after num_boxes zero.
 * im_info = (canvas H, canvas W, im_scale as float32). All images of a block
 * get the same canvas; det_batch_load sizes the batch as the largest canvas
 * (equal for a block; arbitrary entry lists are padded to the largest).
 * Random draws of entry e in epoch t come from rng_stream(seed, RNG_AUGMENT,
 * t, e): first the box shuffle, then the crop offset. So a batch is a
 * function of (seed, epoch, entries) only, bitwise, whatever the thread count.
 *
 * Test batches (test_net.py, batch 1): entries in set order, no flip, no
 * crop, im_info = (h', w', im_scale); gt holds the first max_gt boxes in file
 * order (difficult ones included and flagged; the reference passes none:
 * they are informational, the model must not use them at test). With B > 1
 * the images are zero-padded to the batch's largest H and W (as
 * im_list_to_blob); B = 1 is the reference. Detections map back to the
 * original image by dividing by im_info[2] (det_data_entry: size and id).
 *
 * Errors: det_data_open refuses an image whose resized shorter side is under
 * DET_MIN_SIDE px (a stride-16 backbone needs a 2x2 feature map), naming the
 * file; det_batch_load fails with voc_get's message (missing or corrupt JPEG,
 * naming the file). Bad annotations are voc_open's to report.
 *
 * Thread safety: a DetData is read-only after det_data_open; det_batch_load
 * runs its images in parallel (OpenMP) and may be called concurrently with
 * distinct DetBatches. */
#ifndef CBNN_DETECT_BATCH_H
#define CBNN_DETECT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"
#include "voc.h"

#define DET_MIN_SIDE 32
#define DET_MAX_GT 20           /* cfg.MAX_NUM_GT_BOXES */
#define DET_RATIO_SMALL 0.5     /* rank_roidb_ratio's ratio_small / ratio_large */
#define DET_RATIO_LARGE 2.0

typedef struct {
    int train;           /* 1: training roidb and batches; 0: test */
    int min_size;        /* shorter side after resizing (TRAIN/TEST.SCALES: 600); 0 = original size */
    int flip;            /* training: append the flipped copies (TRAIN.USE_FLIPPED) */
    int train_difficult; /* training: keep difficult objects (the reference: 1); 0 drops them */
    int max_gt;          /* gt rows per image (MAX_NUM_GT_BOXES) */
} DetDataOptions;

/* the reference's values: min_size 600, flip (training), difficult kept, max_gt 20 */
DetDataOptions det_data_options_default(int train);

typedef struct DetData DetData;

/* The roidb over s (which must outlive it). s's keep_difficult decides what
 * there is to keep: train_difficult cannot bring back objects voc_open
 * dropped. NULL with a message on an error (options out of range, an image
 * too small, out of memory). */
DetData *det_data_open(const VocSet *s, const DetDataOptions *o, char *err, size_t errlen);
void det_data_close(DetData *d);

long det_data_entries(const DetData *d);
/* images left out because they have no box (training; 0 at test). The entries
 * removed are this many times 2 with flip. */
long det_data_skipped(const DetData *d);
/* batches per epoch: training floor(entries / batch) (the leftover is never
 * drawn, as the reference), test ceil(entries / batch); 0 if batch <= 0 */
long det_data_batches(const DetData *d, int batch);
/* Entries of batch b (0-based) of epoch `epoch`: writes them to entries[]
 * (room for `batch`) and returns how many (batch, or fewer for the last test
 * batch), -1 when b is out of range. Test batches ignore seed and epoch. */
int det_data_batch_entries(const DetData *d, int batch, uint64_t seed, long epoch, long b, int32_t *entries);
/* The largest canvas H and W any batch of this size can have (for sizing
 * the model's buffers); training covers every block, the leftover too. */
void det_data_max_size(const DetData *d, int batch, int *max_h, int *max_w);

typedef struct {
    long image;          /* index into the VocSet */
    const char *id;      /* its id ("000005") */
    int flipped;
    int width, height;   /* original size */
    int data_width, data_height; /* after resizing */
    double scale;        /* im_scale = min_size / shorter side (1 when min_size = 0) */
    double ratio;        /* width / height clipped to [0.5, 2] */
    int need_crop;       /* the ratio was clipped */
    int n_boxes;         /* gt boxes (after the difficult filter) */
} DetEntryInfo;
/* 0, or -1 when entry is out of range */
int det_data_entry(const DetData *d, long entry, DetEntryInfo *out);
/* the ranking: pos-th entry by ratio, and its clipped ratio (-1 / NaN out of range) */
long det_data_ranked_entry(const DetData *d, long pos);
double det_data_ranked_ratio(const DetData *d, long pos);

/* The reference's box of object o of an image `width` px wide: inclusive
 * 0-based, flipped if asked, times scale (see the top of this file):
 *   x1 = trunc(xmin - 1), x2 = trunc(xmax - 1)  (likewise y)
 *   flipped: (x1, x2) <- (width - x2 - 1, width - x1 - 1)
 *   out = (float)(scale * (x1, y1, x2, y2))  (the product in double) */
void det_box_convert(const VocObject *o, int width, int flipped, double scale, float out[4]);

/* A batch's target ratio from its smallest and largest clipped ratio (float32
 * as the reference stores it) and the canvas of an h x w resized image under
 * it (the rule at the top). */
float det_target_ratio(double lo, double hi);
void det_canvas_size(int h, int w, float r, int *canvas_h, int *canvas_w);

typedef struct {
    int B, H, W, max_gt;
    real *images;        /* [B][3][H][W], normalised, zero padding */
    float *im_info;      /* [B][3]: canvas H, canvas W, im_scale */
    float *gt;           /* [B][max_gt][5]: x1 y1 x2 y2 class (1..20); rows >= num_boxes zero */
    uint8_t *difficult;  /* [B][max_gt]: the gt row's object is difficult */
    int32_t *num_boxes;  /* [B] */
    int32_t *entry;      /* [B] the roidb entries */
    int32_t *offset;     /* [B][2]: (y0, x0) of the crop in the resized image (0, 0 uncropped) */
    size_t cap_images, cap_b; /* buffers reused across calls */
} DetBatch;

/* Load entries[0..B-1] (training: normally det_data_batch_entries' block)
 * into out, which must be zeroed ({0}) before its first use. seed and epoch
 * key the random draws (training only). 0, or -1 with a message. */
int det_batch_load(const DetData *d, const int32_t *entries, int B, uint64_t seed, long epoch, DetBatch *out,
                   char *err, size_t errlen);
void det_batch_free(DetBatch *b);

#endif
