/* libFuzzer target: the Fashion-MNIST IDX parser (datasets/fashion_mnist.c)
 * through its file entry point fashion_mnist_load (train split only).
 *
 * Input: [2 bytes big-endian L][L bytes: train-images-idx3-ubyte][rest:
 * train-labels-idx1-ubyte] (L clamped to what is there). The files are
 * written without .gz: zlib's gzread reads gzip'd content transparently, so
 * an input that is a gzip stream fuzzes the decompression path too.
 * On success every sample is read back through dataset_get_u8 with crop +
 * flip + normalise, and the loader's contract is checked. */

#include "dataset.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t L = ((size_t)data[0] << 8) | data[1];
    data += 2, size -= 2;
    if (L > size) L = size;
    fz_write("train-images-idx3-ubyte", data, L);
    fz_write("train-labels-idx1-ubyte", data + L, size - L);
    Dataset train;
    char err[512] = "";
    if (fashion_mnist_load(&train, NULL, fz_tmpdir(), err, sizeof err) == 0) {
        FZ_CHECK(train.n > 0 && train.channels == 1 && train.height == 28 && train.width == 28);
        FZ_CHECK(train.std[0] > 0);
        real out[28 * 28];
        Augment aug = {.flip = 1, .crop_pad = 4, .normalize = 1};
        for (long i = 0; i < train.n && i < 4; i++) {
            Rng r = rng_stream(1, RNG_AUGMENT, 0, (uint64_t)i);
            int32_t lab = -1;
            FZ_CHECK(dataset_get_u8(&train, i, out, &lab, &aug, &r) == 0);
            FZ_CHECK(lab >= 0 && lab < 10);
        }
        dataset_free(&train);
    } else {
        FZ_CHECK(err[0] != '\0');          /* every failure says why */
        FZ_CHECK(train.images == NULL && train.n == 0);
    }
    return 0;
}
