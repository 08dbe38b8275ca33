/* libFuzzer target: the JPEG wrapper (datasets/jpeg_io.c: libjpeg-turbo with
 * longjmp error handling, gray/CMYK/YCCK conversion, DCT scaling) from memory.
 *
 * Input: 1 byte (low 4 bits: scale_num, 0 and 9..15 mean full size), then the
 * JPEG. Checks jpeg_info_mem against jpeg_decode_mem and the decoded size
 * against jpeg_scaled_dims, and reads every output byte (ASan/MSan see an
 * undersized buffer). */

#include "fuzz_common.h"
#include "jpeg_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int scale = data[0] & 15;
    data++, size--;
    /* images claiming huge sizes would only measure malloc: libjpeg reads the
     * header first, so bound the area like a real loader would have to */
    int w = 0, h = 0, comp = 0;
    char err[JPEG_IO_MSG * 2] = "";
    int info = jpeg_info_mem(data, size, "fuzz.jpg", &w, &h, &comp, err, sizeof err);
    if (info == 0) {
        FZ_CHECK(w > 0 && h > 0 && (comp == 1 || comp == 3 || comp == 4));
        if ((double)w * h > 4e6) return 0;
    }
    JpegImage img;
    if (jpeg_decode_mem(data, size, "fuzz.jpg", scale, &img, err, sizeof err) == 0) {
        FZ_CHECK(info == 0 && img.orig_width == w && img.orig_height == h && img.src_components == comp);
        int ew, eh;
        jpeg_scaled_dims(w, h, img.scale_num, &ew, &eh);
        FZ_CHECK(img.width == ew && img.height == eh && img.rgb);
        unsigned sum = 0;
        for (size_t k = 0; k < (size_t)img.width * img.height * 3; k++) sum += img.rgb[k];
        (void)sum;
        jpeg_image_free(&img);
    } else {
        FZ_CHECK(err[0] != '\0' && img.rgb == NULL);
    }
    return 0;
}
