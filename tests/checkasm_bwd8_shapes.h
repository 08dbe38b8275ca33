/* The fixed shapes of the integer backward (core/bconv_bwd_int8.h): checkasm
 * runs every table on them (tests/checkasm_bconv_bwd_int8.c), and
 * test_bconv_bwd_int8.c compares the reference with the fp32 path on them. */
#ifndef CBNN_CHECKASM_BWD8_SHAPES_H
#define CBNN_CHECKASM_BWD8_SHAPES_H

typedef struct {
    int N, C, H, W, O, K, st, p;
    int fill;    /* 0 random codes and ternary, 1 codes 255 and operands +1, 2 codes 255 and operands -1 */
    int vs_fp32; /* also compared with the fp32 path (not the widest shape: its fp32 reference is slow) */
} Bwd8Shape;

#define BWD8_N_SHAPES 267

/* fills s[BWD8_N_SHAPES]; returns the count */
static inline int bwd8_shapes(Bwd8Shape *s) {
    int n = 0;
    /* the odd-shape grid: C and O not multiples of 4/16/32/64, K 1 and 3, stride 1 and 2,
     * pad 0 and 1, 1x1, tiny and empty outputs */
    const int Cs[] = {1, 3, 5, 63, 65, 130};
    const int Os[] = {1, 5, 13, 17, 67};
    const int HWs[][2] = {{1, 1}, {2, 3}, {7, 5}, {9, 11}, {4, 4}};
    const int Ns[] = {1, 2, 3};
    int idx = 0;
    for (int K = 1; K <= 3; K += 2)
        for (int st = 1; st <= 2; st++)
            for (int p = 0; p <= 1; p++)
                for (int ci = 0; ci < 6; ci++)
                    for (int h = 0; h < 5; h++, idx++)
                        s[n++] = (Bwd8Shape){Ns[idx % 3], Cs[ci], HWs[h][0], HWs[h][1], Os[idx % 5], K, st, p, 0, 1};
    /* extremes: codes 255 and all-+1 / all--1 operands (AVX2 int16 partial sums at 64*510) */
    for (int fill = 1; fill <= 2; fill++) {
        s[n++] = (Bwd8Shape){2, 64, 6, 6, 300, 3, 1, 1, fill, 1}; /* dgrad reduction 300 > 256 (several chunks) */
        s[n++] = (Bwd8Shape){1, 7, 5, 5, 64, 3, 2, 1, fill, 1};
        s[n++] = (Bwd8Shape){2, 8, 16, 16, 20, 3, 1, 1, fill, 1}; /* wgrad segments of 72 k-steps (> 64) */
    }
    /* long reductions: dgrad O = 520 (K = 520), wgrad N*OH*OW = 4 * 33 * 33 = 4356 > 4096 */
    s[n++] = (Bwd8Shape){1, 9, 4, 4, 520, 3, 1, 1, 0, 1};
    s[n++] = (Bwd8Shape){4, 5, 33, 33, 18, 3, 1, 1, 0, 1};
    /* dgrad's direct path: odd C/O/widths, pad 0 and 1, K 1 and 3, H*W >= 64 */
    s[n++] = (Bwd8Shape){2, 13, 8, 9, 7, 3, 1, 0, 0, 1};
    s[n++] = (Bwd8Shape){1, 70, 11, 7, 29, 3, 1, 1, 0, 1};
    s[n++] = (Bwd8Shape){3, 5, 13, 5, 67, 1, 1, 0, 0, 1};
    s[n++] = (Bwd8Shape){1, 3, 64, 3, 5, 3, 1, 1, 0, 1};
    /* strides 3, kernel 5, pad wider than the kernel (every path's phase / window arithmetic) */
    s[n++] = (Bwd8Shape){2, 7, 13, 11, 9, 5, 3, 2, 0, 1};
    s[n++] = (Bwd8Shape){1, 4, 10, 10, 6, 3, 3, 1, 0, 1};
    s[n++] = (Bwd8Shape){1, 5, 9, 9, 6, 3, 1, 3, 0, 1};
    s[n++] = (Bwd8Shape){2, 6, 12, 9, 10, 5, 2, 2, 0, 1};
    s[n++] = (Bwd8Shape){1, 3, 6, 5, 4, 1, 3, 0, 0, 1};
    /* CIFAR-like shapes (small batch) */
    s[n++] = (Bwd8Shape){2, 64, 16, 16, 64, 3, 1, 1, 0, 1};
    s[n++] = (Bwd8Shape){2, 64, 16, 16, 128, 3, 2, 1, 0, 1};
    s[n++] = (Bwd8Shape){1, 256, 4, 4, 256, 3, 1, 1, 0, 0};
    /* wgrad's compact mode by the dims (dead columns >= 1/4): 4x4 and 8x8 maps, odd OW, a
     * one-pixel maps (OH*OW = 1 padded to 4 per sample) over 70 samples */
    s[n++] = (Bwd8Shape){5, 33, 4, 4, 37, 3, 1, 1, 0, 1};
    s[n++] = (Bwd8Shape){3, 20, 8, 8, 40, 3, 2, 1, 0, 1};
    s[n++] = (Bwd8Shape){2, 9, 6, 7, 11, 3, 1, 1, 0, 1};
    s[n++] = (Bwd8Shape){70, 3, 1, 1, 5, 3, 1, 1, 0, 1};
    /* the AVX-512 col2im of maps up to 16 pixels (one zmm): K 5 stride 3 on 4x4, 3x5 stride 2 */
    s[n++] = (Bwd8Shape){2, 6, 4, 4, 9, 5, 3, 2, 0, 1};
    s[n++] = (Bwd8Shape){1, 5, 3, 5, 7, 3, 2, 1, 0, 1};
    /* no output pixels (kernel wider than the padded input): everything 0 */
    s[n++] = (Bwd8Shape){2, 3, 1, 2, 4, 3, 1, 0, 0, 1};
    return n;
}

#endif
