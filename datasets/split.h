/* The validation hold-out (issue 16): N samples of a training file, drawn
 * by a split seed alone, become the validation split; the training split is
 * the rest in file order. Every run of a grid with the same split seed sees
 * the same validation images, whatever its train.seed.
 *
 * Both splits are views of the one loaded dataset (shared, freed with the
 * last view): sample i of a view is sample map[i] of the file, produced by
 * the file's own get(), so a split costs no copy and works for in-memory and
 * streaming datasets alike. */
#ifndef CBNN_SPLIT_H
#define CBNN_SPLIT_H

#include <stdint.h>

#include "dataset.h"

/* Move *full into two views: *val holds n_val samples drawn by split_seed (in
 * ascending file order), *train the other full->n - n_val (file order).
 * *full is left empty (freed with the views). n_val must be in [1, n - 1].
 * 0, or -1 with a message (full is then untouched). */
int dataset_holdout(Dataset *full, long n_val, uint64_t split_seed, Dataset *train, Dataset *val, char *err,
                    size_t errlen);

/* The file index behind sample i of a view made by dataset_holdout (i itself
 * for any other dataset): for tests and messages. */
long dataset_file_index(const Dataset *ds, long i);

#endif
