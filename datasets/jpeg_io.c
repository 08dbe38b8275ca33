/* JPEG decode/encode with libjpeg-turbo; see jpeg_io.h for the contract.
 *
 * libjpeg reports fatal errors through error_exit, which by default calls
 * exit(): here it longjmps back to the caller of the decode, which cleans up
 * and returns -1 with libjpeg's message prefixed by the file name. Pointers
 * that are assigned after setjmp and used after the longjmp live in the
 * (non-local) context struct, so they are not clobbered. */
#include "jpeg_io.h"
#include "dataset.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int warnings;
    char warning[JMSG_LENGTH_MAX];
    uint8_t *row;   /* scratch freed on any exit */
    uint8_t *rgb;   /* output freed on failure */
    const char *name; /* the file named in messages */
    int scale_num;
} ErrCtx;


static void on_error_exit(j_common_ptr cinfo) {
    ErrCtx *e = (ErrCtx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
    ErrCtx *e = (ErrCtx *)cinfo->err;
    if (level >= 0) return; /* trace messages: ignore */
    /* warnings: count them all (libjpeg's num_warnings), keep the first text */
    if (e->warnings == 0) (*cinfo->err->format_message)(cinfo, e->warning);
    e->warnings++;
    cinfo->err->num_warnings++;
}

static void init_err(ErrCtx *e) {
    memset(e, 0, sizeof(*e));
    jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error_exit;
    e->pub.emit_message = on_emit_message;
}

/* A buffer that cannot be JPEG: say so plainly instead of libjpeg's
 * "Not a JPEG file: starts with 0x.. 0x.." (which we still add). */
static int check_soi(const void *buf, size_t len, const char *name, char *err, size_t errlen) {
    const unsigned char *p = buf;
    if (!buf || len == 0) {
        dataset_errf(err, errlen, "%s: empty file, not a JPEG", name);
        return -1;
    }
    if (len < 4 || p[0] != 0xFF || p[1] != 0xD8) {
        const char *what = "";
        if (len >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) what = " (it is a PNG)";
        else if (len >= 4 && (!memcmp(p, "GIF8", 4))) what = " (it is a GIF)";
        else if (len >= 2 && p[0] == 'B' && p[1] == 'M') what = " (it is a BMP)";
        dataset_errf(err, errlen, "%s: not a JPEG file: starts with 0x%02x 0x%02x, expected the SOI marker 0xff 0xd8%s",
                name, p[0], len > 1 ? p[1] : 0, what);
        return -1;
    }
    return 0;
}

void jpeg_scaled_dims(int width, int height, int scale_num, int *out_w, int *out_h) {
    if (scale_num < 1 || scale_num > 8) scale_num = 8;
    /* jdiv_round_up(image_width * scale_num, 8), as jpeg_calc_output_dimensions */
    if (out_w) *out_w = (int)(((long)width * scale_num + 7) / 8);
    if (out_h) *out_h = (int)(((long)height * scale_num + 7) / 8);
}

int jpeg_pick_scale(int width, int height, double rw, double rh, int need_w, int need_h) {
    if (width <= 0 || height <= 0) return 8;
    for (int m = 1; m < 8; m++) {
        int sw, sh;
        jpeg_scaled_dims(width, height, m, &sw, &sh);
        /* the region's extent in decoded pixels (the decoded image spans the
         * stored one, so coordinates scale by sw / width) */
        if (rw * sw / width >= need_w && rh * sh / height >= need_h) return m;
    }
    return 8;
}

int jpeg_info_mem(const void *buf, size_t len, const char *name, int *width, int *height, int *components,
                  char *err, size_t errlen) {
    if (!name) name = "<memory>";
    if (check_soi(buf, len, name, err, errlen) != 0) return -1;
    struct jpeg_decompress_struct ci;
    static __thread ErrCtx e; /* per thread: get() runs in an OpenMP loop */
    init_err(&e);
    e.name = name;
    ci.err = &e.pub;
    jpeg_create_decompress(&ci);
    if (setjmp(e.jb)) {
        dataset_errf(err, errlen, "%s: corrupt JPEG: %s", e.name, e.msg);
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    jpeg_mem_src(&ci, (unsigned char *)buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    if (width) *width = (int)ci.image_width;
    if (height) *height = (int)ci.image_height;
    if (components) *components = ci.num_components;
    jpeg_destroy_decompress(&ci);
    return 0;
}

int jpeg_read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        dataset_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz > 0) cap = (size_t)sz + 1;
        rewind(f);
    }
    b = malloc(cap);
    if (!b) {
        fclose(f);
        dataset_errf(err, errlen, "%s: out of memory reading %zu bytes", path, cap);
        return -1;
    }
    for (;;) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        uint8_t *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            fclose(f);
            dataset_errf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        b = nb;
        cap *= 2;
    }
    if (ferror(f)) {
        dataset_errf(err, errlen, "%s: read error: %s", path, strerror(errno));
        free(b);
        fclose(f);
        return -1;
    }
    fclose(f);
    *buf = b;
    *len = n;
    return 0;
}

int jpeg_info_file(const char *path, int *width, int *height, int *components, char *err, size_t errlen) {
    /* the header is near the start, but EXIF/ICC blocks can be large: read it all */
    uint8_t *b;
    size_t n;
    if (jpeg_read_file(path, &b, &n, err, errlen) != 0) return -1;
    int rc = jpeg_info_mem(b, n, path, width, height, components, err, errlen);
    free(b);
    return rc;
}

static inline uint8_t mul255(unsigned a, unsigned b) {
    unsigned t = a * b + 128; /* round(a * b / 255) */
    return (uint8_t)((t + (t >> 8)) >> 8);
}

int jpeg_decode_mem(const void *buf, size_t len, const char *name, int scale_num, JpegImage *img, char *err,
                    size_t errlen) {
    memset(img, 0, sizeof(*img));
    if (!name) name = "<memory>";
    if (check_soi(buf, len, name, err, errlen) != 0) return -1;
    if (scale_num < 1 || scale_num > 8) scale_num = 8;
    struct jpeg_decompress_struct ci;
    static __thread ErrCtx e;
    init_err(&e);
    e.name = name;
    e.scale_num = scale_num;
    ci.err = &e.pub;
    jpeg_create_decompress(&ci);
    if (setjmp(e.jb)) {
        dataset_errf(err, errlen, "%s: corrupt JPEG: %s", e.name, e.msg);
        jpeg_destroy_decompress(&ci);
        free(e.row);
        free(e.rgb);
        e.row = e.rgb = NULL;
        memset(img, 0, sizeof(*img));
        return -1;
    }
    jpeg_mem_src(&ci, (unsigned char *)buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    img->orig_width = (int)ci.image_width;
    img->orig_height = (int)ci.image_height;
    img->src_components = ci.num_components;
    int cmyk = 0;
    switch (ci.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        ci.out_color_space = JCS_RGB; /* libjpeg-turbo replicates gray to RGB itself */
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        ci.out_color_space = JCS_CMYK; /* YCCK -> CMYK by libjpeg, CMYK -> RGB below */
        cmyk = 1;
        break;
    default:
        dataset_errf(err, errlen, "%s: unsupported JPEG colour space %d (%d components)", e.name, (int)ci.jpeg_color_space,
                ci.num_components);
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    ci.scale_num = (unsigned)e.scale_num;
    ci.scale_denom = 8;
    jpeg_calc_output_dimensions(&ci);
    if ((double)ci.output_width * ci.output_height > JPEG_IO_MAX_PIXELS) {
        dataset_errf(err, errlen, "%s: image too large (%ux%u decoded pixels, limit %d)", e.name, ci.output_width,
                ci.output_height, JPEG_IO_MAX_PIXELS);
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    jpeg_start_decompress(&ci);
    const int W = (int)ci.output_width, H = (int)ci.output_height, nc = ci.output_components;
    if ((!cmyk && nc != 3) || (cmyk && nc != 4)) {
        dataset_errf(err, errlen, "%s: libjpeg produced %d components, expected %d", e.name, nc, cmyk ? 4 : 3);
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    e.rgb = malloc((size_t)W * H * 3);
    if (cmyk) e.row = malloc((size_t)W * 4);
    if (!e.rgb || (cmyk && !e.row)) {
        free(e.rgb);
        free(e.row);
        e.rgb = e.row = NULL;
        dataset_errf(err, errlen, "%s: out of memory for a %dx%d image", e.name, W, H);
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    const int inverted = cmyk && ci.saw_Adobe_marker;
    while (ci.output_scanline < ci.output_height) {
        int y = (int)ci.output_scanline;
        uint8_t *dst = e.rgb + (size_t)y * W * 3;
        JSAMPROW rows[1] = {cmyk ? e.row : dst};
        if (jpeg_read_scanlines(&ci, rows, 1) != 1) break; /* suspension cannot happen with a memory source */
        if (cmyk) {
            for (int x = 0; x < W; x++) {
                const uint8_t *s = e.row + 4 * x;
                /* ink-free fraction: 255 - ink, stored as such when inverted */
                unsigned c = inverted ? s[0] : 255u - s[0], m = inverted ? s[1] : 255u - s[1],
                         yy = inverted ? s[2] : 255u - s[2], k = inverted ? s[3] : 255u - s[3];
                dst[3 * x] = mul255(c, k);
                dst[3 * x + 1] = mul255(m, k);
                dst[3 * x + 2] = mul255(yy, k);
            }
        }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(e.row);
    e.row = NULL;
    img->rgb = e.rgb;
    e.rgb = NULL;
    img->width = W;
    img->height = H;
    img->scale_num = e.scale_num;
    img->warnings = e.warnings;
    if (e.warnings) snprintf(img->warning, sizeof img->warning, "%s: %s", e.name, e.warning);
    return 0;
}

int jpeg_decode_file(const char *path, int scale_num, JpegImage *img, char *err, size_t errlen) {
    memset(img, 0, sizeof(*img));
    uint8_t *b;
    size_t n;
    if (jpeg_read_file(path, &b, &n, err, errlen) != 0) return -1;
    int rc = jpeg_decode_mem(b, n, path, scale_num, img, err, errlen);
    free(b);
    return rc;
}

void jpeg_image_free(JpegImage *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof(*img));
}

int jpeg_encode_mem(const uint8_t *pix, int width, int height, int components, int quality, uint8_t **out,
                    size_t *outlen, char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    if (!pix || width <= 0 || height <= 0 || (components != 1 && components != 3 && components != 4)) {
        dataset_errf(err, errlen, "jpeg encode: bad arguments (%dx%d, %d components)", width, height, components);
        return -1;
    }
    struct jpeg_compress_struct ci;
    static __thread ErrCtx e;
    /* static so they survive the longjmp (libjpeg writes through their addresses) */
    static __thread unsigned char *mem;
    static __thread unsigned long memlen;
    init_err(&e);
    mem = NULL;
    memlen = 0;
    ci.err = &e.pub;
    jpeg_create_compress(&ci);
    if (setjmp(e.jb)) {
        dataset_errf(err, errlen, "jpeg encode: %s", e.msg);
        jpeg_destroy_compress(&ci);
        free(mem);
        mem = NULL;
        return -1;
    }
    jpeg_mem_dest(&ci, &mem, &memlen);
    ci.image_width = (JDIMENSION)width;
    ci.image_height = (JDIMENSION)height;
    ci.input_components = components;
    ci.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci); /* CMYK in -> CMYK JPEG with an Adobe marker */
    jpeg_set_quality(&ci, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row[1] = {(JSAMPROW)(pix + (size_t)ci.next_scanline * width * components)};
        jpeg_write_scanlines(&ci, row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *out = (uint8_t *)mem;
    *outlen = memlen;
    mem = NULL;
    return 0;
}

int jpeg_encode_file(const char *path, const uint8_t *pix, int width, int height, int components, int quality,
                     char *err, size_t errlen) {
    uint8_t *b;
    size_t n;
    if (jpeg_encode_mem(pix, width, height, components, quality, &b, &n, err, errlen) != 0) return -1;
    FILE *f = fopen(path, "wb");
    if (!f) {
        dataset_errf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        free(b);
        return -1;
    }
    size_t w = fwrite(b, 1, n, f);
    free(b);
    if (fclose(f) != 0 || w != n) {
        dataset_errf(err, errlen, "%s: write error: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
