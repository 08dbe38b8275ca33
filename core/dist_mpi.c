/* Open MPI's build of core/dist.h. Placeholder: the one-rank build until the
 * MPI collectives land (issue 15). */
#include "dist.c"
