/* A grid over ranks (issue 15 (a)): one part file per run under
 * results/<exp>.parts/, claimed by its lock, merged into results/<exp>.h5 by
 * world rank 0 (experiments/run_experiment.c drives it).
 *
 * A part is a results file of today's schema holding the one run, written
 * by today's writer, so everything that reads a results file reads a part.
 * Its file name is the run's name made safe for any file system; the name
 * itself is the name of the file's one group under /runs, which is what a
 * merge goes by. */
#ifndef CBNN_PARTS_H
#define CBNN_PARTS_H

#include <stddef.h>
#include <stdio.h>

#include "results_h5.h"

/* results/<exp>.h5 -> results/<exp>.parts. 0, or -1 when it does not fit. */
int parts_dir(const char *results_path, char *out, size_t cap);

/* The file name of a run's part: the bytes [A-Za-z0-9,=+_.-] are kept (a
 * leading '.' is not), every other byte is %XX (uppercase hex), then ".h5":
 * "bits=2-6,seed=1" -> "bits=2-6,seed=1.h5", "a/b c" -> "a%2Fb%20c.h5".
 * part_name_decode reverses it. A name whose encoding would pass 200 bytes
 * is cut and ends in "~" and 16 hex digits of a hash of the whole name (not
 * reversible: the run's name inside the file says which run it is).
 * 0, or -1 when out is too small. */
int part_file_name(const char *run_name, char *out, size_t cap);
/* "a%2Fb%20c.h5" -> "a/b c"; -1 when it is not an encoding of part_file_name */
int part_name_decode(const char *file_name, char *out, size_t cap);
/* results/<exp>.parts/<part_file_name(run)> */
int part_path(const char *results_path, const char *run_name, char *out, size_t cap);

/* The part files of a folder (names ending in .h5; a missing folder has
 * none), sorted, as one malloc'd array of malloc'd full paths: free with
 * parts_list_free. 0, or -1 (message in err). */
int parts_list(const char *dir, char ***paths, int *n, char *err, size_t errlen);
void parts_list_free(char **paths, int n);

/* Merge every complete part of results_path's parts folder into f (open for
 * writing): results_merge_part on each, a line on `msg` (prefixed) for each
 * part merged, removed as a duplicate, or kept for a reason the user must
 * act on; the folder is removed once empty. *merged counts the parts merged
 * (may be NULL). 0, or -1 when f failed (message in err). */
int parts_merge_all(ResultsFile *f, const char *results_path, FILE *msg, const char *prefix, int *merged, char *err,
                    size_t errlen);

#endif
