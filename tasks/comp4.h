/* The VOC devkit's detection result files ("comp4": own training data),
 * as py-faster-rcnn's pascal_voc._write_voc_results_file writes them and
 * voc_eval.py reads them (issue 14):
 *
 *   RESULTS/VOC<year>/Main/comp4_det_<set>_<class>.txt, one file per VOC class
 *   (empty when the class has no detection), one line per detection:
 *       <image id> <score> <x1> <y1> <x2> <y2>
 *   score with `digits` decimals ("{:.3f}" upstream), the box 1-based as the
 *   devkit expects: x + 1 with one decimal ("{:.1f}").
 *
 * Values are rounded to float32 before writing, as the reference's float32
 * detection arrays: the score is printed as (float)score, a coordinate as
 * (float)x + 1.0f (the +1 in float32, then printed exactly: glibc's printf
 * and Python's format both round the exact binary value half-even).
 * Lines of a class are written in the order of the detection list (the
 * reference: by image, then the detector's order).
 *
 * Nothing half-written: every file is written to a temporary name beside it
 * (<file>.XXXXXX, which the reader ignores) and fsync'd; only when all 20
 * are complete are they renamed over the old ones. On an error the
 * temporaries are removed and the old files are left as they were.
 *
 * Reading is stricter about content, looser about spacing than voc_eval.py:
 * fields separated by any run of blanks (the reference splits on single
 * spaces), exactly 6 fields, decimal numbers only. Errors name file:line. */
#ifndef CBNN_COMP4_H
#define CBNN_COMP4_H

#include <stddef.h>

#include "voc_ap.h"

#define COMP4_DEFAULT_DIGITS 3
#define COMP4_MAX_DIGITS 17

/* RESULTS/VOC<year>/Main/comp4_det_<set>_<cls>.txt into out */
void comp4_path(const char *results_dir, const char *year, const char *set, const char *cls, char *out,
                size_t outlen);

/* Write the 20 files. dets[i].label is 0..19 (VOC_CLASSES order),
 * dets[i].image an index into image_ids, the box 0-based inclusive (written
 * +1). Refused (nothing written): a label or image index out of range, a
 * non-finite score or coordinate, an image id that is empty or holds a blank,
 * digits outside 0..COMP4_MAX_DIGITS. Creates the directories. Returns 0 or
 * -1 with a message. */
int comp4_write(const char *results_dir, const char *year, const char *set, int digits, const char *const *image_ids,
                long n_images, const VocDet *dets, long n_dets, char *err, size_t errlen);

/* Read the files of the classes cls[0..n_cls) (0..19; cls = NULL: all 20)
 * into *out (malloc'd, *n_out entries, label = the class of the file, image =
 * the index of its id in image_ids), the box converted to 0-based (x - 1) or,
 * with one_based = 1, kept as the file has it. Before reading, the directory
 * is checked: a comp4_det_<set>_<name>.txt whose name is not a VOC class is
 * an error. Errors (file:line where there is a line): a requested class file
 * missing, a line without exactly 6 fields, an unknown image id, a field that
 * is not a decimal number, a non-finite number. Returns 0 or -1. */
int comp4_read(const char *results_dir, const char *year, const char *set, const char *const *image_ids,
               long n_images, const int *cls, int n_cls, int one_based, VocDet **out, long *n_out, char *err,
               size_t errlen);

#endif
