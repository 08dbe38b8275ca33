/* The processes of a session (issue 15): who we are among the ranks, and the
 * few collectives the suite needs, each of them exact or in a fixed order so
 * that a result never depends on the number of ranks or on MPI's algorithms.
 *
 * Two builds of one interface: core/dist.c is the one-rank build (meson
 * -Dmpi=disabled, or no MPI found); core/dist_mpi.c is Open MPI's. In the
 * one-rank build every collective is the identity and dist_init never fails,
 * so the rest of the suite is written once.
 *
 * Float sums never use MPI_Allreduce (its association depends on the rank
 * count and the algorithm, open-mpi/ompi#11721, #12258): dist_tree_sum_* adds
 * in a fixed pairwise tree, exchanging partials point to point. Max and
 * integer sums are exact in any order; the max is still combined in rank
 * order so that even the sign of a zero does not depend on MPI.
 *
 * A collective that does not complete within the communicator's stall timeout
 * (--stall-timeout, default 600 s) makes the rank that notices it print
 *   <prefix>: <collective> waited more than N s for rank(s) R (host H), ...; aborting
 * and abort the job (MPI_Abort, exit 3). The small collectives go through
 * rank 0, which therefore names the late ranks; in the tree sums a rank names
 * the partner it waits for. Collectives are called from one thread (FUNNELED),
 * in the same order on every rank of a communicator. */
#ifndef CBNN_DIST_H
#define CBNN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"

typedef struct {
    int rank, size;            /* this process in the communicator, and its size */
    void *comm;                /* the MPI communicator (owned); NULL in the one-rank build */
    double stall_timeout_s;    /* a collective waiting longer aborts the job (0: wait forever) */
} DistComm;

/* Start: MPI_Init_thread(FUNNELED) when built with MPI (also when not launched
 * by mpirun: a singleton of one rank). Idempotent. 0, or -1 with a message. */
int dist_init(int *argc, char ***argv, char *err, size_t errlen);
/* MPI_Finalize; safe to call when dist_init was not */
void dist_finalize(void);
/* 1 when this build has MPI (core/dist_mpi.c) */
int dist_built_with_mpi(void);
/* the MPI library's version string ("" in the one-rank build) */
const char *dist_mpi_version(void);

/* the session: every process; valid after dist_init (before: one rank) */
const DistComm *dist_world(void);
void dist_set_stall_timeout(double seconds);   /* the world's, and of communicators split later */
const char *dist_host(void);                   /* this process's host name */
/* "cyclebnn[r/N host]" (world rank and size): the prefix of every message a
 * rank prints when the session has more than one rank; "cyclebnn" otherwise */
const char *dist_prefix(void);

/* Split parent into groups of consecutive ranks: color = group index,
 * ranks ordered by key (MPI_Comm_split; collective over parent). The group
 * inherits parent's stall timeout. 0, or -1 with a message. */
int dist_split(const DistComm *parent, int color, int key, DistComm *out, char *err, size_t errlen);
void dist_comm_free(DistComm *c);   /* a group of dist_split (the world is left alone) */
/* end the whole job (MPI_Abort) with exit code `code`; exit(code) in the one-rank build */
void dist_abort(const DistComm *c, int code);

/* ---------------------------------------------------------------- exact */
void dist_barrier(const DistComm *c);
void dist_bcast(const DistComm *c, void *buf, size_t bytes, int root);
/* all[size * bytes]: every rank's `bytes` bytes, in rank order (`mine` may lie in `all`) */
void dist_allgather(const DistComm *c, const void *mine, size_t bytes, void *all);
/* v[n] := elementwise max over ranks, combined in rank order with the rule
 * "b replaces a when b > a, or when a is NaN" (a NaN stays only when all are) */
void dist_max_d(const DistComm *c, double *v, size_t n);
/* v[n] := the sum over ranks (integers: exact in any order) */
void dist_sum_i64(const DistComm *c, int64_t *v, size_t n);
/* 1 when flag is nonzero on any rank (stop requests, errors) */
int dist_any(const DistComm *c, int flag);

/* ---------------------------------------------------------- the fixed tree */
/* The ranks' values are the leaves of one complete binary tree in rank order
 * (size must be a power of two): on return v[n] holds the root, the same bits
 * on every rank:
 *   level 0: v(r) + v(r ^ 1) for the pair, level 1: pairs of pairs, ...
 * (recursive doubling: at level l each rank exchanges its partial with rank
 * ^ 2^l and adds lower + upper). tmp[n] is scratch (NULL: the communicator's
 * own). With one rank: nothing. A size that is not a power of two aborts. */
void dist_tree_sum_d(const DistComm *c, double *v, size_t n, double *tmp);
void dist_tree_sum_r(const DistComm *c, real *v, size_t n, real *tmp);

#endif
