/* Seeds for fuzz_jpeg: small JPEGs of every kind the wrapper handles
 * (baseline 4:2:0 and 4:4:4 YCbCr, grayscale, progressive, restart markers,
 * Adobe CMYK), each prefixed with the scale byte the target reads.
 * Build: cc gen_jpeg_seeds.c -ljpeg; run: ./a.out corpus/fuzz_jpeg */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static void emit(const char *dir, const char *name, int scale, int w, int h, J_COLOR_SPACE cs, int comps,
                 int progressive, int restart, int h_samp) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *buf = NULL;
    unsigned long len = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &len);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
    c.input_components = comps, c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 75, TRUE);
    if (comps == 3) c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = h_samp;
    if (progressive) jpeg_simple_progression(&c);
    c.restart_interval = (unsigned)restart;
    if (cs == JCS_CMYK) c.write_Adobe_marker = TRUE;
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w * comps);
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < w * comps; x++) row[x] = (unsigned char)(x * 5 + c.next_scanline * 9);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    unsigned char s = (unsigned char)scale;
    if (!f || fwrite(&s, 1, 1, f) != 1 || fwrite(buf, 1, len, f) != len || fclose(f)) {
        perror(path);
        exit(1);
    }
    free(row);
    free(buf);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    emit(dir, "rgb420_16x12", 8, 16, 12, JCS_RGB, 3, 0, 0, 2);
    emit(dir, "rgb444_9x7_half", 4, 9, 7, JCS_RGB, 3, 0, 0, 1);
    emit(dir, "gray_13x5_eighth", 1, 13, 5, JCS_GRAYSCALE, 1, 0, 0, 1);
    emit(dir, "progressive_24x24", 3, 24, 24, JCS_RGB, 3, 1, 0, 2);
    emit(dir, "restart_32x8", 8, 32, 8, JCS_RGB, 3, 0, 1, 2);
    emit(dir, "cmyk_adobe_8x8", 8, 8, 8, JCS_CMYK, 4, 0, 0, 1);
    return 0;
}
