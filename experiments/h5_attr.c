#include "h5_attr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double h5_attr_double(hid_t obj, const char *name) {
    double v = NAN;
    if (H5Aexists(obj, name) <= 0) return v;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return v;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
    H5Aclose(a);
    return v;
}

char *h5_attr_strdup(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t ft = H5Aget_type(a);
    char *copy = NULL;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (H5Tis_variable_str(ft) > 0) {
            char *v = NULL;
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &v) >= 0) copy = strdup(v ? v : "");
            if (v) H5free_memory(v);
        } else {
            /* fixed-length: one byte more for the terminator */
            size_t n = H5Tget_size(ft);
            char *v = calloc(n + 1, 1);
            H5Tset_size(mt, n + 1);
            if (v && H5Aread(a, mt, v) >= 0) copy = strdup(v);
            free(v);
        }
        H5Tclose(mt);
    }
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return copy;
}
