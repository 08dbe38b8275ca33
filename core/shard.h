/* Shards of a batch (issue 15, config train.shards): the arithmetic that lets
 * R ranks train one run and get the bits of one process.
 *
 * The global batch of B samples is S shards of B/S consecutive samples (S a
 * power of two dividing B; S = 1 is the arithmetic the engine always had).
 * Every float reduction over the batch -- BN's sums, the alpha and fp32
 * weight gradients, the loss -- is computed per shard with the one-shard
 * kernel, and the S partials are added in one fixed pairwise tree in shard
 * order:
 *      ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))       (S = 8)
 * A rank owning R | S ranks' worth of consecutive shards (S/R of them) adds
 * its own subtree here, and the ranks add the rest of the same tree
 * (dist_tree_sum_*). So the result depends on S, never on R or on threads.
 *
 * Reductions that are exact (max/min ranges, integer sums of the binary
 * conv's backward, counts) are not sharded: each rank reduces its rows, and
 * the ranks combine with dist_max_d / dist_sum_i64.
 *
 * The plan lives in Model.shard (core/model.h). An op that gets a NULL plan,
 * or a plan with shards = local_shards = 1 and no communicator, runs exactly
 * the code it always ran. */
#ifndef CBNN_SHARD_H
#define CBNN_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "real.h"

typedef struct ShardPlan {
    int shards;              /* S, shards of the global batch (config train.shards) */
    int local_shards;        /* S/R: shards among this rank's rows */
    int ranks;               /* R: ranks training the run (1: one process) */
    int rank;                /* this rank's index among them */
    const DistComm *comm;    /* NULL: one process */
    /* Workspace for the partials, sized by model_set_shards (core/model.h)
     * for the model's largest reduction (ws_n >= every layer's w_n, b_n and
     * 2C): ws_r[(local_shards + 1) * ws_n] reals, ws_d[(local_shards + 1) *
     * ws_n] doubles, ws_i[2 * ws_n] int64; the last slot of each is the
     * exchange scratch (tmp). NULL when no plan was set. */
    real *ws_r;
    double *ws_d;
    int64_t *ws_i;
    size_t ws_n;
    /* doubles per slot of ws_d when it is smaller than ws_n (0: ws_n). The
     * double partials are per channel (BN's 2C, biases, alpha), never a
     * weight tensor: sizing them like ws_r cost ~0.3 GB at S = 16. */
    size_t ws_dn;
} ShardPlan;

/* the slot size of ws_d, in doubles */
static inline size_t shard_ws_dn(const ShardPlan *p) { return p->ws_dn ? p->ws_dn : p->ws_n; }

/* the plan of one process and one shard (what model_init sets) */
ShardPlan shard_plan_single(void);
/* S shards over the ranks of comm (NULL: one process). 0, or -1 with a
 * message: S not a power of two, R not dividing S, batch not divisible by S. */
int shard_plan_make(ShardPlan *p, int shards, int batch, const DistComm *comm, char *err, size_t errlen);
/* 1 when the plan is today's arithmetic (one shard, one rank) */
int shard_plan_trivial(const ShardPlan *p);

/* rows per shard for a local batch of N rows (N / local_shards) */
int shard_rows(const ShardPlan *p, int N);
/* the first global row of this rank's local batch of N rows (noise slices,
 * augmentation keys): rank * N */
long shard_row0(const ShardPlan *p, int N);
/* the global batch of a local batch of N rows (the loss's divisor): N * ranks */
long shard_global_rows(const ShardPlan *p, int N);

/* partials[local_shards * n], shard s at s*n: on return partials[0..n) holds
 * the sum of all S shards in the tree above (local subtree, then the ranks').
 * tmp[n] is scratch for the exchange (may be NULL with one rank). */
void shard_sum_d(const ShardPlan *p, double *partials, size_t n, double *tmp);
void shard_sum_r(const ShardPlan *p, real *partials, size_t n, real *tmp);
/* exact combinations over the ranks (no-ops on one rank) */
void shard_max_d(const ShardPlan *p, double *v, size_t n);
void shard_sum_i64(const ShardPlan *p, int64_t *v, size_t n);

/* The partials' workspace of one reduction of n values: parts[local_shards *
 * n] (shard s at s*n) and tmp[n] for the exchange. The plan's ws_* when
 * ws_n >= n (the model's, sized by model_set_shards), else one malloc'd block
 * (a plan made without a model: tests, tools), returned in *owned for the
 * caller to free (NULL when the plan's). Out of memory: a message and
 * dist_abort (exit 3) -- the other ranks would wait for this one's partials
 * forever, and a kernel has no error return. */
double *shard_ws_d(const ShardPlan *p, size_t n, double **tmp, void **owned);
real *shard_ws_r(const ShardPlan *p, size_t n, real **tmp, void **owned);

/* The local pairwise tree alone: parts[count * n] -> parts[0..n) (count a
 * power of two). Exposed for kernels that stream their shards. */
void shard_tree_local_d(double *parts, int count, size_t n);
void shard_tree_local_r(real *parts, int count, size_t n);

#endif
