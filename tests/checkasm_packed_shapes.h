/* The fixed shapes of the packed binary conv (core/bconv_packed.h): checkasm
 * runs every table on them (tests/checkasm_bconv_packed.c, each padded one
 * also with -1 padding), and test_bconv_packed.c compares the C table with
 * the fp32 conv on them. One list, so the two cannot drift apart. */
#ifndef CBNN_CHECKASM_PACKED_SHAPES_H
#define CBNN_CHECKASM_PACKED_SHAPES_H

typedef struct {
    int N, C, H, W, O, K, s, p, zeros, pad_m1;
} PkShape;

#define PK_N_SHAPES 244

/* fills s[PK_N_SHAPES] (pad_m1 = 0); returns the count */
static inline int pk_shapes(PkShape *s) {
    /* the odd-shape grid: C around the 64-bit word, K 1 and 3, stride 1 and 2, pad 0 and 1,
     * odd and 1-wide images, with and without exact zeros */
    const int Cs[] = {3, 63, 64, 65, 130};
    const int HWs[][2] = {{7, 5}, {9, 11}, {1, 3}};
    const int Os[] = {5, 8, 13};
    int n = 0;
    for (int ci = 0; ci < 5; ci++)
        for (int K = 1; K <= 3; K += 2)
            for (int st = 1; st <= 2; st++)
                for (int p = 0; p <= 1; p++)
                    for (int h = 0; h < 3; h++)
                        for (int z = 0; z <= 1; z++, n++)
                            s[n] = (PkShape){2, Cs[ci], HWs[h][0], HWs[h][1], Os[n % 3], K, st, p, !z, 0};
    /* big sums: C*K*K = 4608 (LW = 72: several byte-accumulator flushes), CIFAR-like shapes */
    s[n++] = (PkShape){2, 512, 4, 4, 9, 3, 1, 1, 1, 0};
    s[n++] = (PkShape){1, 256, 8, 8, 6, 3, 2, 1, 0, 0};
    s[n++] = (PkShape){2, 64, 17, 17, 7, 3, 1, 1, 1, 0};
    s[n++] = (PkShape){1, 1000, 3, 3, 4, 3, 1, 1, 1, 0};
    return n;
}

#endif
