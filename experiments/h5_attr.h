/* Reading attributes of a results file with the HDF5 API: the two helpers
 * every reader needs (results_h5.c, analysis/export.c, tests). */
#ifndef CBNN_H5_ATTR_H
#define CBNN_H5_ATTR_H

#include <hdf5.h>

/* A numeric attribute as a double; NaN when absent or unreadable. */
double h5_attr_double(hid_t obj, const char *name);
/* A string attribute (variable- or fixed-length) as a malloc'd copy; NULL
 * when absent, not a string, unreadable or out of memory. */
char *h5_attr_strdup(hid_t obj, const char *name);

#endif
