/* Shards of a batch: the fixed pairwise tree of core/shard.h. */
#include "shard.h"

#include <stdio.h>
#include <stdlib.h>

ShardPlan shard_plan_single(void) { return (ShardPlan){.shards = 1, .local_shards = 1, .ranks = 1, .rank = 0}; }

static int is_pow2(long v) { return v > 0 && (v & (v - 1)) == 0; }

int shard_plan_make(ShardPlan *p, int shards, int batch, const DistComm *comm, char *err, size_t errlen) {
    const int R = comm ? comm->size : 1;
    if (!is_pow2(shards)) {
        snprintf(err, errlen, "train.shards is %d: it must be a power of two (1, 2, 4, ...)", shards);
        return -1;
    }
    if (batch % shards != 0) {
        snprintf(err, errlen, "train.shards is %d: it must divide the batch (%d)", shards, batch);
        return -1;
    }
    if (shards % R != 0) {
        snprintf(err, errlen, "%d ranks train this run but train.shards is %d: the ranks must divide the shards", R,
                 shards);
        return -1;
    }
    *p = (ShardPlan){.shards = shards, .local_shards = shards / R, .ranks = R, .rank = comm ? comm->rank : 0,
                     .comm = R > 1 ? comm : NULL};
    return 0;
}

int shard_plan_trivial(const ShardPlan *p) { return !p || (p->shards == 1 && p->ranks == 1); }

int shard_rows(const ShardPlan *p, int N) { return p ? N / p->local_shards : N; }
long shard_row0(const ShardPlan *p, int N) { return p ? (long)p->rank * N : 0; }
long shard_global_rows(const ShardPlan *p, int N) { return p ? (long)N * p->ranks : N; }

void shard_tree_local_d(double *parts, int count, size_t n) {
    for (int w = 1; w < count; w *= 2)
        for (int s = 0; s + w < count; s += 2 * w) {
            double *a = parts + (size_t)s * n;
            const double *b = parts + (size_t)(s + w) * n;
            for (size_t i = 0; i < n; i++) a[i] = a[i] + b[i];
        }
}

void shard_tree_local_r(real *parts, int count, size_t n) {
    for (int w = 1; w < count; w *= 2)
        for (int s = 0; s + w < count; s += 2 * w) {
            real *a = parts + (size_t)s * n;
            const real *b = parts + (size_t)(s + w) * n;
            for (size_t i = 0; i < n; i++) a[i] = a[i] + b[i];
        }
}

void shard_sum_d(const ShardPlan *p, double *partials, size_t n, double *tmp) {
    if (!p) return;
    shard_tree_local_d(partials, p->local_shards, n);
    if (p->comm && p->ranks > 1) dist_tree_sum_d(p->comm, partials, n, tmp);
}

void shard_sum_r(const ShardPlan *p, real *partials, size_t n, real *tmp) {
    if (!p) return;
    shard_tree_local_r(partials, p->local_shards, n);
    if (p->comm && p->ranks > 1) dist_tree_sum_r(p->comm, partials, n, tmp);
}

void shard_max_d(const ShardPlan *p, double *v, size_t n) {
    if (p && p->comm && p->ranks > 1) dist_max_d(p->comm, v, n);
}

void shard_sum_i64(const ShardPlan *p, int64_t *v, size_t n) {
    if (p && p->comm && p->ranks > 1) dist_sum_i64(p->comm, v, n);
}

/* one block of (local_shards + 1) * n elements of `size` bytes, or the plan's */
static void *shard_ws(const ShardPlan *p, void *ws, size_t slot, size_t n, size_t size, void **tmp, void **owned) {
    const size_t ls = (size_t)p->local_shards;
    *owned = NULL;
    *tmp = NULL;
    if (ws && slot >= n) {
        *tmp = (char *)ws + ls * slot * size; /* the last slot */
        return ws;
    }
    char *b = malloc((ls + 1) * (n ? n : 1) * size);
    if (!b) {
        fprintf(stderr, "%s: out of memory for %zu shard partials of %zu values\n", dist_prefix(), ls, n);
        dist_abort(p->comm ? p->comm : dist_world(), 3);
        return NULL;
    }
    *owned = b;
    *tmp = b + ls * n * size;
    return b;
}

double *shard_ws_d(const ShardPlan *p, size_t n, double **tmp, void **owned) {
    void *t;
    double *w = shard_ws(p, p->ws_d, shard_ws_dn(p), n, sizeof(double), &t, owned);
    *tmp = t;
    return w;
}

real *shard_ws_r(const ShardPlan *p, size_t n, real **tmp, void **owned) {
    void *t;
    real *w = shard_ws(p, p->ws_r, p->ws_n, n, sizeof(real), &t, owned);
    *tmp = t;
    return w;
}
