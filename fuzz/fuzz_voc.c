/* libFuzzer target: the PASCAL VOC annotation parser (datasets/voc.c,
 * voc_parse_annotation_mem; libxml2 underneath).
 *
 * Input: 1 byte (bit 0: keep_difficult), then the XML. On success the
 * documented contract of voc.h is checked for every object. */
#include <string.h>

#include "fuzz_common.h"
#include "voc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int keep = data[0] & 1;
    VocAnnotation a;
    VocErr kind = VOC_OK;
    char err[1024] = "";
    if (voc_parse_annotation_mem((const char *)data + 1, size - 1, "fuzz.xml", keep, &a, &kind, err, sizeof err) == 0) {
        FZ_CHECK(kind == VOC_OK);
        FZ_CHECK(a.width > 0 && a.width <= 65535 && a.height > 0 && a.height <= 65535);
        FZ_CHECK(a.n >= 0 && a.n <= VOC_MAX_OBJECTS && (a.n == 0 || a.obj));
        for (int i = 0; i < a.n; i++) {
            const VocObject *o = &a.obj[i];
            FZ_CHECK(o->label >= 0 && o->label < VOC_NUM_CLASSES);
            FZ_CHECK(o->difficult == 0 || o->difficult == 1);
            FZ_CHECK(keep || !o->difficult);
            FZ_CHECK(1 <= o->xmin && o->xmin < o->xmax && o->xmax <= a.width);
            FZ_CHECK(1 <= o->ymin && o->ymin < o->ymax && o->ymax <= a.height);
        }
        voc_annotation_free(&a);
    } else {
        FZ_CHECK(err[0] != '\0');
        FZ_CHECK(kind > VOC_OK && kind < VOC_ERR_COUNT);
        FZ_CHECK(a.n == 0 && a.obj == NULL);
    }
    return 0;
}
