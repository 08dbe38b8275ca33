/* The one-rank build of core/dist.h (meson -Dmpi=disabled, or no MPI found):
 * one process, every collective the identity. core/dist_mpi.c is the MPI one. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static DistComm g_world = {.rank = 0, .size = 1, .comm = NULL, .stall_timeout_s = 600.0};
static char g_host[64];

int dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    (void)argc, (void)argv, (void)err, (void)errlen;
    return 0;
}
void dist_finalize(void) {}
int dist_built_with_mpi(void) { return 0; }
const char *dist_mpi_version(void) { return ""; }

const DistComm *dist_world(void) { return &g_world; }
void dist_set_stall_timeout(double seconds) { g_world.stall_timeout_s = seconds; }

const char *dist_host(void) {
    if (!g_host[0] && gethostname(g_host, sizeof g_host - 1) != 0) strcpy(g_host, "?");
    return g_host;
}
const char *dist_prefix(void) { return "cyclebnn"; }

int dist_split(const DistComm *parent, int color, int key, DistComm *out, char *err, size_t errlen) {
    (void)color, (void)key, (void)err, (void)errlen;
    *out = *parent;
    out->rank = 0;
    out->size = 1;
    out->comm = NULL;
    return 0;
}
void dist_comm_free(DistComm *c) { (void)c; }
void dist_abort(const DistComm *c, int code) {
    (void)c;
    exit(code);
}

void dist_barrier(const DistComm *c) { (void)c; }
void dist_bcast(const DistComm *c, void *buf, size_t bytes, int root) { (void)c, (void)buf, (void)bytes, (void)root; }
void dist_allgather(const DistComm *c, const void *mine, size_t bytes, void *all) {
    (void)c;
    if (bytes) memmove(all, mine, bytes);
}
void dist_max_d(const DistComm *c, double *v, size_t n) { (void)c, (void)v, (void)n; }
void dist_sum_i64(const DistComm *c, int64_t *v, size_t n) { (void)c, (void)v, (void)n; }
int dist_any(const DistComm *c, int flag) {
    (void)c;
    return flag != 0;
}
void dist_tree_sum_d(const DistComm *c, double *v, size_t n, double *tmp) { (void)c, (void)v, (void)n, (void)tmp; }
void dist_tree_sum_r(const DistComm *c, real *v, size_t n, real *tmp) { (void)c, (void)v, (void)n, (void)tmp; }
