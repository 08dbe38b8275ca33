/* libFuzzer target: the CIFAR-10 binary record parser (datasets/cifar10.c)
 * through cifar10_load on a temporary directory, then cifar10_get (the CIFAR
 * augmentation pipeline, datasets/augment_cifar.c) on the loaded samples.
 *
 * Input: batches.meta.txt up to the first NUL byte; then 1 byte of
 * augmentation switches; then 6 big-endian uint16 lengths in records*8 + extra
 * form (see below) for data_batch_1..5.bin and test_batch.bin; then the bytes
 * that fill those files in turn (a file gets what is left if short). */

#include "cifar10.h"
#include "fuzz_common.h"

static const char *const FILES[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                     "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) return 0;
    size_t mlen = (size_t)(nul - data);
    fz_write("batches.meta.txt", data, mlen);
    data = nul + 1, size -= mlen + 1;
    if (size < 13) return 0;
    uint8_t sw = data[0];
    size_t len[6];
    for (int f = 0; f < 6; f++) {
        unsigned v = ((unsigned)data[1 + 2 * f] << 8) | data[2 + 2 * f];
        /* top 3 bits: whole records (0..7); low 13 bits: extra bytes when
         * bit 12 is set (so most lengths are whole records) */
        len[f] = (size_t)(v >> 13) * CIFAR10_RECORD_BYTES + ((v & 0x1000) ? (v & 0xfff) : 0);
    }
    data += 13, size -= 13;
    for (int f = 0; f < 6; f++) {
        size_t n = len[f] < size ? len[f] : size;
        fz_write(FILES[f], data, n);
        data += n, size -= n;
    }
    Dataset train, test;
    char err[1024] = "";
    if (cifar10_load(&train, &test, fz_tmpdir(), err, sizeof err) == 0) {
        FZ_CHECK(train.n > 0 && test.n > 0 && train.channels == 3 && train.height == 32 && train.width == 32);
        for (int k = 0; k < 10; k++) FZ_CHECK(cifar10_class_name(&train, k)[0] != '\0');
        static real out[CIFAR10_IMAGE_BYTES];
        Augment aug = {.crop_pad = (sw & 1) ? 4 : 0, .crop_fill_mean = (sw >> 1) & 1, .flip = (sw >> 2) & 1,
                       .autoaugment = (sw >> 3) & 1, .cutout = (sw >> 4) & 1 ? 16 : 0, .normalize = (sw >> 5) & 1};
        for (long i = 0; i < train.n && i < 3; i++) {
            Rng r = rng_stream(sw, RNG_AUGMENT, 0, (uint64_t)i);
            int32_t lab = -1;
            FZ_CHECK(cifar10_get(&train, i, out, &lab, &aug, &r) == 0);
            FZ_CHECK(lab >= 0 && lab < 10);
        }
        dataset_free(&train);
        dataset_free(&test);
    } else {
        FZ_CHECK(err[0] != '\0');
        FZ_CHECK(train.images == NULL && test.images == NULL);
    }
    return 0;
}
