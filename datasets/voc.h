/* PASCAL VOC detection data (method.md 4.4, 5.3): VOCdevkit trees of
 * ImageSets/Main/<split>.txt id lists, Annotations/<id>.xml (libxml2) and
 * JPEGImages/<id>.jpg (datasets/jpeg_io, libjpeg-turbo).
 *
 * VOC is not a classification Dataset (dataset.h): a sample is an image of
 * its own size plus a variable number of boxes, so it has its own API.
 *
 * Coordinates. A VocObject holds the bndbox numbers exactly as the XML file
 * has them: VOC's 1-based, inclusive pixel indices (xmin = 1 is the first
 * column, xmax = width the last). A VocSample (what a detector sees) holds
 * boxes in 0-based CONTINUOUS pixel-edge coordinates of the resized image:
 *     x1 = sx * (xmin - 1),  y1 = sy * (ymin - 1),  x2 = sx * xmax,  y2 = sy * ymax
 * i.e. the box covers the pixel columns [x1, x2) (the usual loaders' "x - 1"
 * for the left/top edge; the right/bottom edge is the far side of the last
 * pixel, so width = x2 - x1 with no "+1"). sx = W'/W and sy = H'/H are the
 * exact per-axis resize factors of the output grid (W' = round(s W)), so a box
 * lies on exactly the pixels it covered before resizing.
 * Horizontal flip of a W'-wide image: column c -> W' - 1 - c, and a box
 * [x1, x2) -> [W' - x2, W' - x1), i.e. x' = W' - x for each edge.
 * (py-faster-rcnn / faster-rcnn.pytorch, the paper's BiDet base, use
 * inclusive 0-based x2 = xmax - 1, flip x' = W - x - 1 and scale by s
 * uniformly: their x2 is ours minus s, and their widths add the 1 back.)
 *
 * Resizing (method.md 4.4): shorter side -> min_size (600), the aspect ratio
 * kept; max_size caps the longer side (Faster R-CNN's 1000) when > 0. The
 * paper's code has the max-1000 rule commented out, so voc_transform_paper()
 * sets max_size = 0; VOC_FRCNN_MAX_SIZE is the standard value. Resampling is
 * bilinear with half-pixel centres (cv2.resize INTER_LINEAR, no antialias).
 * Normalisation: (x/255 - mean) / std with the ImageNet mean/std.
 *
 * Thread safety: a VocSet is read-only after voc_open; voc_get may run
 * concurrently on one set with distinct VocSamples. */
#ifndef CBNN_VOC_H
#define CBNN_VOC_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"
#include "rng.h"

#define VOC_NUM_CLASSES 20
/* the standard order (aeroplane = 0 ... tvmonitor = 19); a detector's
 * background class is not among them */
extern const char *const VOC_CLASSES[VOC_NUM_CLASSES];
/* class index of a name (ASCII case and surrounding blanks ignored, as
 * py-faster-rcnn's .lower().strip()), -1 if not a VOC class */
int voc_class_index(const char *name);

#define VOC_MIN_SIZE 600
#define VOC_FRCNN_MAX_SIZE 1000
/* the ImageNet statistics of method.md 4.4 (RGB, on [0,1] pixels) */
extern const float VOC_MEAN[3], VOC_STD[3];

/* ---- annotations ---- */

typedef struct {
    int label;      /* 0..19, VOC_CLASSES order */
    int difficult;  /* <difficult>1</difficult>; absent = 0 */
    float xmin, ymin, xmax, ymax; /* exactly as in the file: 1-based inclusive pixel indices */
} VocObject;

typedef struct {
    int width, height, depth; /* <size>; depth 0 when the file has none */
    int n;                    /* objects */
    VocObject *obj;           /* [n] */
} VocAnnotation;

/* Parse one annotation from memory (for the fuzzers; voc_open uses it too).
 * name is the file named in error messages (NULL = "<memory>"). Checks: well
 * formed XML with an <annotation> root; <size> with 0 < width, height <= 65535;
 * every <object> (direct children only: VOC2012 <part> boxes are ignored) has a
 * VOC class <name>, <difficult> 0/1 if present, and a <bndbox> of four numbers
 * with 1 <= xmin < xmax <= width, 1 <= ymin < ymax <= height. keep_difficult = 0
 * drops difficult objects (the training setting). Network access and entity
 * substitution are off; at most VOC_MAX_OBJECTS objects.
 * Returns 0, or -1 with *out empty and a message naming the file and the
 * problem; *kind (may be NULL) receives the VocErr of the failure. */
#define VOC_MAX_OBJECTS 4096
typedef enum { VOC_OK = 0, VOC_ERR_XML, VOC_ERR_BOX, VOC_ERR_CLASS, VOC_ERR_IMAGE, VOC_ERR_IO, VOC_ERR_COUNT } VocErr;
extern const char *const VOC_ERR_NAMES[VOC_ERR_COUNT];
int voc_parse_annotation_mem(const char *buf, size_t len, const char *name, int keep_difficult,
                             VocAnnotation *out, VocErr *kind, char *err, size_t errlen);
/* the same from a file */
int voc_parse_annotation_file(const char *path, int keep_difficult, VocAnnotation *out, VocErr *kind,
                              char *err, size_t errlen);
void voc_annotation_free(VocAnnotation *a);

/* ---- a set of images ---- */

typedef struct {
    char id[48];        /* the line of the split file, e.g. "000005", "2008_000008" */
    int root;           /* index into VocSet.roots: VOC2007, VOC2012, ... */
    VocAnnotation ann;
} VocImage;

#define VOC_MAX_ROOTS 8
typedef struct {
    char devkit[1024];
    int n_roots;
    char roots[VOC_MAX_ROOTS][64];  /* "VOC2007", "VOC2012" */
    long n;                         /* images kept */
    VocImage *images;               /* [n], in split-file order, the splits concatenated */
    long n_objects;                 /* over all kept images (after dropping difficult ones if asked) */
    long n_difficult;               /* difficult objects among them */
    long class_count[VOC_NUM_CLASSES];
    int keep_difficult;
    /* skip_bad: images left out and why (a missing image, malformed XML, ...) */
    long n_skipped;
    long skipped_by[VOC_ERR_COUNT];
    char first_skip[4096];          /* the message of the first skipped image */
} VocSet;

typedef struct {
    int keep_difficult;  /* keep difficult objects (flagged); 0 = drop them (training) */
    int skip_bad;        /* leave out (and count) images whose annotation is bad or JPEG missing, instead of failing */
    int check_images;    /* stat() every JPEG at open (a missing one is an error / a skip); default on in voc_open */
} VocOpenOptions;

/* splits: NULL-terminated list of "<year dir>/<split>", e.g.
 * {"VOC2007/trainval", "VOC2012/trainval", NULL}, read from
 * devkit/<year dir>/ImageSets/Main/<split>.txt. devkit is the VOCdevkit
 * directory itself. Every annotation is parsed here (the JPEGs are decoded in
 * voc_get). Returns NULL with a message naming the file on an error: a split
 * file missing or empty or with a malformed id; without skip_bad also any bad
 * annotation or missing JPEG. */
VocSet *voc_open(const char *devkit, const char *const *splits, int keep_difficult, char *err, size_t errlen);
VocSet *voc_open_ex(const char *devkit, const char *const *splits, const VocOpenOptions *opt, char *err,
                    size_t errlen);
/* The paper's split (method.md 4.4): train = VOC2007/trainval + VOC2012/trainval
 * (difficult objects dropped), test = VOC2007/test (difficult objects kept and
 * flagged: VOC07 AP ignores them). */
typedef enum { VOC_TRAIN = 0, VOC_TEST = 1 } VocPart;
VocSet *voc_open_paper_split(const char *devkit, VocPart part, char *err, size_t errlen);
void voc_close(VocSet *s);

/* paths of image i's files */
void voc_image_path(const VocSet *s, long i, char *path, size_t pathlen);
void voc_annotation_path(const VocSet *s, long i, char *path, size_t pathlen);

/* ---- samples ---- */

enum { VOC_FLIP_NONE = 0, VOC_FLIP_RANDOM = 1, VOC_FLIP_ALWAYS = 2 };

typedef struct {
    int min_size;    /* shorter side after resizing; 0 = keep the original size */
    int max_size;    /* cap on the longer side (takes precedence); 0 = none */
    int flip;        /* VOC_FLIP_*: RANDOM draws p = 0.5 from the rng (top bit of one rng_u64) */
    int normalize;   /* (x/255 - VOC_MEAN) / VOC_STD; else x/255 */
} VocTransform;

/* train: 600, no max, random flip, normalised; test: the same without flip.
 * (The reference doubles the training roidb with flipped copies instead of
 * flipping at random: VOC_FLIP_ALWAYS for i >= n emulates that.) */
VocTransform voc_transform_paper(int train);

typedef struct {
    real *image;           /* [3, height, width] */
    int height, width;     /* after resizing */
    int orig_height, orig_width;
    double scale_x, scale_y; /* width / orig_width, height / orig_height */
    int flipped;
    int n;                 /* boxes */
    float *boxes;          /* [n][4] x1, y1, x2, y2 (see the top of this file) */
    int32_t *labels;       /* [n] 0..19 */
    uint8_t *difficult;    /* [n] */
    long index;
    char err[4096];        /* why voc_get failed */
    /* buffers reused across calls */
    size_t image_cap, box_cap;
} VocSample;

/* Sample i with transform t (NULL = original size, no flip, x/255) and the
 * random draws from rng (NULL = no random flip). out must be zeroed before
 * its first use ({0}); its buffers are reused and grown by later calls.
 * Decodes the JPEG; fails (-1, out->err naming the file) if it is missing,
 * corrupt, or not the size its annotation says. */
int voc_get(const VocSet *s, long i, VocSample *out, const VocTransform *t, Rng *rng);
void voc_sample_free(VocSample *out);

/* Output size for an image of w x h under t (the rule above). */
void voc_resize_dims(int w, int h, const VocTransform *t, int *out_w, int *out_h);

/* ---- a synthetic VOCdevkit (datasets/synth_voc.c, build/make_voc) ----
 * Writes dir/VOCdevkit/VOC2007 (ImageSets/Main train, val, trainval, test) and
 * dir/VOCdevkit/VOC2012 (train, val, trainval: like the real devkit, 2012 has
 * no test annotations), Annotations/<id>.xml in the VOC format and real
 * JPEGImages/<id>.jpg: `images` images in all, half VOC2007 (every other id
 * in test) and half VOC2012, each 160..500 px a side on a smooth noisy
 * background with 1..4 filled shapes, one shape and colour per class:
 *     car        red rectangle        person     blue ellipse
 *     dog        green triangle       bird       yellow diamond
 *     bottle     magenta plus sign    tvmonitor  dark frame, light-blue screen
 * A box is the exact extent of the pixels drawn (VOC 1-based inclusive).
 * About 15% of the objects are drawn faded (35% colour) and marked difficult.
 * Everything is a function of the seed. images >= 8. */
#define SYNTH_VOC_CLASSES 6
extern const int SYNTH_VOC_CLASS_IDS[SYNTH_VOC_CLASSES];
int synth_voc_write(const char *dir, long images, uint64_t seed, char *err, size_t errlen);

#endif
