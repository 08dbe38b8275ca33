/* JPEG decoding/encoding with libjpeg-turbo (shared by the ImageNet and VOC
 * loaders and the fuzzers). Owner: the ImageNet loader; keep the API stable.
 *
 * Decoding always yields 8-bit interleaved RGB (HWC):
 *  - YCbCr / RGB JPEGs: libjpeg's own conversion;
 *  - grayscale: the gray value replicated to R = G = B;
 *  - CMYK / YCCK (Adobe): converted to RGB as PIL does,
 *    R = (255 - C)(255 - K)/255 (same for G with M, B with Y), with the
 *    Adobe convention that a file carrying an Adobe APP14 marker stores
 *    inverted CMYK (what Photoshop writes); without the marker the values
 *    are taken as plain CMYK.
 * Errors never exit(): libjpeg's error_exit longjmps back and the function
 * returns -1 with a message naming the file (or the buffer's name).
 * Warnings (e.g. "Premature end of JPEG file" for truncated data, "Corrupt
 * JPEG data: N extraneous bytes") do not fail the decode: they are counted in
 * JpegImage.warnings and the first is kept in JpegImage.warning.
 *
 * DCT scaling: scale_num M in 1..8 decodes at M/8 of the full size
 * (libjpeg's scale_num/scale_denom; output side = ceil(side * M / 8)); the
 * IDCT does the reduction, much cheaper than decoding the full image. */
#ifndef CBNN_JPEG_IO_H
#define CBNN_JPEG_IO_H

#include <stddef.h>
#include <stdint.h>

#define JPEG_IO_MSG 512
/* decodes larger than this many pixels (after DCT scaling) are refused with an
 * error instead of a multi-GB allocation (garbage or hostile headers) */
#define JPEG_IO_MAX_PIXELS (100 * 1000 * 1000)

typedef struct {
    int width, height;        /* decoded size (after DCT scaling) */
    int orig_width, orig_height; /* size stored in the file */
    int scale_num;            /* M of M/8 actually used */
    int src_components;       /* 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK */
    uint8_t *rgb;             /* [height][width][3], malloc'd; jpeg_image_free releases */
    int warnings;             /* libjpeg warnings seen while decoding */
    char warning[JPEG_IO_MSG];/* the first warning, "" if none */
} JpegImage;

/* Header only: stored size and number of components. Returns 0 or -1 (+err). */
int jpeg_info_mem(const void *buf, size_t len, const char *name, int *width, int *height, int *components,
                  char *err, size_t errlen);
int jpeg_info_file(const char *path, int *width, int *height, int *components, char *err, size_t errlen);

/* Decode to RGB at scale_num/8 (scale_num outside 1..8 means 8 = full size).
 * name labels the buffer in messages (NULL: "<memory>"). img is zeroed first;
 * on failure img->rgb is NULL. Returns 0 or -1 (+err naming the file). */
int jpeg_decode_mem(const void *buf, size_t len, const char *name, int scale_num, JpegImage *img, char *err,
                    size_t errlen);
int jpeg_decode_file(const char *path, int scale_num, JpegImage *img, char *err, size_t errlen);
void jpeg_image_free(JpegImage *img);

/* The size libjpeg produces for an image of width x height at M/8. */
void jpeg_scaled_dims(int width, int height, int scale_num, int *out_w, int *out_h);
/* The smallest M in 1..8 such that a region of rw x rh stored pixels still
 * spans at least need_w x need_h decoded pixels (8 when none smaller does).
 * For RandomResizedCrop: rw x rh = the crop box, need = the output size. */
int jpeg_pick_scale(int width, int height, double rw, double rh, int need_w, int need_h);

/* Read a whole file into a malloc'd buffer (for jpeg_decode_mem). */
int jpeg_read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen);

/* Encode interleaved pixels: components 1 (gray), 3 (RGB -> YCbCr JPEG) or
 * 4 (CMYK bytes written as given, JCS_CMYK with an Adobe marker; pass inverted
 * CMYK for the Photoshop convention the decoder assumes). quality 1..100.
 * jpeg_encode_mem returns a malloc'd buffer in *out (free() it). */
int jpeg_encode_mem(const uint8_t *pix, int width, int height, int components, int quality, uint8_t **out,
                    size_t *outlen, char *err, size_t errlen);
int jpeg_encode_file(const char *path, const uint8_t *pix, int width, int height, int components, int quality,
                     char *err, size_t errlen);

#endif
