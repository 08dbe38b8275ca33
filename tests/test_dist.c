/* core/dist.h over the ranks of the session (issue 15). Run by meson under
 * `mpirun -np 2`; run as one plain process it checks the one-rank behaviour
 * (and that is all the -Dmpi=disabled build can check).
 *
 *   - the fixed tree: S = 2, 4, 8 shards spread over the ranks; shard_sum_*
 *     with the plan of shard_plan_make gives, on every rank, the bits of the
 *     one-process shard_tree_local_* over all S (values of wildly different
 *     magnitudes, so another association gives other bits: checked too);
 *     buffers above one message (16 MiB); with two ranks a + b exactly;
 *   - max with NaNs and signed zeros (dist.h's rank-order rule), integer sums
 *     near 2^62 (exact: beyond double precision), allgather order (also with
 *     `mine` inside `all`), a 40 MB bcast from the last rank, dist_any, a
 *     barrier that really waits, groups of one rank and a reversed group;
 *   - noise slices: quant_fill_noise_range of one rank's rows (and unaligned
 *     offsets) equals that part of quant_fill_noise of the whole, bitwise.
 *
 * `test_dist --stall any|tree` (tests/test_dist_stall.sh): rank 1 sleeps 5 s
 * before a collective with a 1 s stall timeout; rank 0 must name it and the
 * job must end with a nonzero status. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist.h"
#include "quant.h"
#include "rng.h"
#include "shard.h"
#include "testutil.h"

static int R, me;   /* ranks of the session, this one */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "FAIL test_dist: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* +-(1 + u) * 2^e, e in [-emax, emax]: sums of these lose low bits in an
 * order-dependent way */
static double wild(Rng *r, int emax) {
    const double m = 1.0 + rng_uniform(r);
    const int e = (int)rng_below(r, (uint64_t)(2 * emax + 1)) - emax;
    return (rng_u64(r) & 1 ? -1.0 : 1.0) * ldexp(m, e);
}

/* ------------------------------------------------------------ the tree */

/* S shards of n values each (every rank draws all of them: the reference
 * needs them); the one-process tree, and the left-to-right sum that must
 * differ from it */
static void tree_case(const DistComm *W, int S, size_t n, uint64_t seed) {
    if (S % R != 0) {
        if (me == 0) printf("test_dist: S = %d skipped over %d ranks (R must divide S)\n", S, R);
        return;
    }
    Rng rg = rng_stream(seed, RNG_TEST, (uint64_t)S, n);
    double *all_d = xmalloc(sizeof(double) * (size_t)S * n);
    real *all_r = xmalloc(sizeof(real) * (size_t)S * n);
    for (size_t i = 0; i < (size_t)S * n; i++) {
        all_d[i] = wild(&rg, 40);
        all_r[i] = (real)wild(&rg, 20);
    }
    double *seq_d = xmalloc(sizeof(double) * n);
    real *seq_r = xmalloc(sizeof(real) * n);
    for (size_t i = 0; i < n; i++) {
        double a = all_d[i];
        real b = all_r[i];
        for (int s = 1; s < S; s++) a = a + all_d[(size_t)s * n + i], b = b + all_r[(size_t)s * n + i];
        seq_d[i] = a, seq_r[i] = b;
    }
    /* this rank's S/R consecutive shards, before the reference overwrites them */
    const int L = S / R;
    double *part_d = xmalloc(sizeof(double) * (size_t)L * n), *tmp_d = xmalloc(sizeof(double) * n);
    real *part_r = xmalloc(sizeof(real) * (size_t)L * n), *tmp_r = xmalloc(sizeof(real) * n);
    memcpy(part_d, all_d + (size_t)me * L * n, sizeof(double) * (size_t)L * n);
    memcpy(part_r, all_r + (size_t)me * L * n, sizeof(real) * (size_t)L * n);
    shard_tree_local_d(all_d, S, n);
    shard_tree_local_r(all_r, S, n);
    if (S == 2) {
        /* one node: the tree is p0 + p1, which the sequential sum also is */
        CHECK(!memcmp(all_d, seq_d, sizeof(double) * n), "S = 2: the tree is not p0 + p1");
    } else if (n >= 100) {   /* one element may add up the same either way by chance */
        CHECK(memcmp(all_d, seq_d, sizeof(double) * n) != 0,
              "S = %d: the data cannot tell the tree from a sequential sum (doubles)", S);
        CHECK(memcmp(all_r, seq_r, sizeof(real) * n) != 0,
              "S = %d: the data cannot tell the tree from a sequential sum (reals)", S);
    }

    ShardPlan p;
    char err[256];
    CHECK(shard_plan_make(&p, S, 3 * S, W, err, sizeof err) == 0, "shard_plan_make(S = %d): %s", S, err);
    CHECK(p.local_shards == L && p.ranks == R && p.rank == me, "plan of S = %d: %d local shards, %d ranks", S,
          p.local_shards, p.ranks);
    shard_sum_d(&p, part_d, n, tmp_d);
    shard_sum_r(&p, part_r, n, tmp_r);
    size_t bad_d = 0, bad_r = 0;
    for (size_t i = 0; i < n; i++) {
        bad_d += memcmp(&part_d[i], &all_d[i], sizeof(double)) != 0;
        bad_r += memcmp(&part_r[i], &all_r[i], sizeof(real)) != 0;
    }
    CHECK(bad_d == 0, "rank %d, S = %d, n = %zu: shard_sum_d differs from the one-process tree at %zu of %zu", me,
          S, n, bad_d, n);
    CHECK(bad_r == 0, "rank %d, S = %d, n = %zu: shard_sum_r differs from the one-process tree at %zu of %zu", me,
          S, n, bad_r, n);
    free(all_d), free(all_r), free(seq_d), free(seq_r), free(part_d), free(part_r), free(tmp_d), free(tmp_r);
}

static void test_tree(const DistComm *W) {
    for (int S = 2; S <= 8; S *= 2) {
        tree_case(W, S, 1, 11);
        tree_case(W, S, 1000, 12);
    }
    /* more than one 16 MiB message per exchange: 4.5 M floats, 36 M bytes of doubles */
    if ((R & (R - 1)) == 0) tree_case(W, R > 2 ? R : 2, (size_t)9 << 19, 13);

    /* two ranks: exactly a + b, on both, with and without scratch */
    const double a[4] = {1e16, 0x1p-30, -3.25, 1.0 / 3.0}, b[4] = {1.0, 0x1p30, 3.25, 2.0 / 3.0};
    double v[4], tmp[4];
    for (int k = 0; k < 2; k++) {
        memcpy(v, me == 0 ? a : b, sizeof v);
        dist_tree_sum_d(W, v, 4, k ? NULL : tmp);
        for (int i = 0; i < 4; i++) {
            const double want = R == 2 ? a[i] + b[i] : (R == 1 ? a[i] : v[i]);
            CHECK(!memcmp(&v[i], &want, sizeof want), "rank %d: tree sum of 2 ranks [%d] = %.17g, not a + b = %.17g",
                  me, i, v[i], want);
        }
    }
}

/* ------------------------------------------------------------ exact */

static void test_max(const DistComm *W) {
    const double nan = NAN;
    double v[7];
    v[0] = me == 0 ? nan : (double)me;            /* NaN on rank 0 only: the others' max */
    v[1] = me == R - 1 ? nan : -(double)me - 1;   /* NaN on the last rank only: it never replaces */
    v[2] = nan;                                   /* NaN everywhere: stays */
    v[3] = me == 0 ? -0.0 : 0.0;                  /* +0 > -0 is false: rank 0's -0 stays */
    v[4] = me == 0 ? 0.0 : -0.0;                  /* rank 0's +0 stays */
    v[5] = me == R - 1 ? INFINITY : -INFINITY;
    v[6] = -1e300 * (me + 1);
    dist_max_d(W, v, 7);
    if (R == 1) {
        CHECK(isnan(v[0]) && isnan(v[1]), "one rank: max changed a NaN");
    } else {
        CHECK(v[0] == R - 1, "max with NaN on rank 0: %g, want %d", v[0], R - 1);
        CHECK(v[1] == -1.0, "max with NaN on the last rank: %g, want -1", v[1]);
    }
    CHECK(isnan(v[2]), "max of NaNs on every rank: %g, want NaN", v[2]);
    CHECK(v[3] == 0 && signbit(v[3]), "max of -0 (rank 0) and +0: %g with sign %d, want -0", v[3], !!signbit(v[3]));
    CHECK(v[4] == 0 && !signbit(v[4]), "max of +0 (rank 0) and -0: %g with sign %d, want +0", v[4],
          !!signbit(v[4]));
    CHECK(v[5] == INFINITY, "max of -inf and +inf (last rank): %g", v[5]);
    CHECK(v[6] == -1e300, "max of -1e300 * (r + 1): %g", v[6]);
}

static int64_t i64_value(int r, size_t i) {
    const int64_t big = (int64_t)1 << 62;
    switch (i) {
    case 0: return r == 0 ? big - 12345 : (r == 1 ? big + 7 : -(int64_t)r);   /* sum 2^63 - 12338 - ... */
    case 1: return r == 0 ? -big : (r == 1 ? -big + 1 : (int64_t)r);          /* sum near -2^63 */
    case 2: return ((int64_t)1 << 53) + 1 + r;                                /* beyond a double's 53 bits */
    default: return (int64_t)((i * 0x9E3779B97F4A7C15ull) >> 4) - (int64_t)(r * 977);
    }
}

static void test_sum_i64(const DistComm *W) {
    const size_t n = 300000;
    int64_t *v = xmalloc(sizeof(int64_t) * n);
    for (size_t i = 0; i < n; i++) v[i] = i64_value(me, i);
    dist_sum_i64(W, v, n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t want = 0;   /* the exact sum over the ranks (it fits in int64 for R <= 2^60) */
        for (int r = 0; r < R; r++) want += (uint64_t)i64_value(r, i);
        if (v[i] != (int64_t)want) {
            if (bad++ < 3)
                fprintf(stderr, "FAIL dist_sum_i64[%zu] = %lld, want %lld\n", i, (long long)v[i], (long long)want);
        }
    }
    CHECK(bad == 0, "dist_sum_i64 wrong at %zu of %zu", bad, n);
    if (R == 2) {
        CHECK(v[0] == INT64_MAX - 12337, "2 ranks: 2^62 - 12345 + 2^62 + 7 = %lld", (long long)v[0]);
        CHECK(v[1] == INT64_MIN + 1, "2 ranks: -2^62 + (-2^62 + 1) = %lld", (long long)v[1]);
        CHECK(v[2] == ((int64_t)1 << 54) + 3, "2 ranks: (2^53 + 1) + (2^53 + 2) = %lld", (long long)v[2]);
    }
    free(v);
}

static void test_allgather(const DistComm *W) {
    unsigned char mine[5] = {(unsigned char)me, (unsigned char)(0x5A ^ me), (unsigned char)(3 * me), 'x',
                             (unsigned char)R};
    unsigned char *all = xmalloc(5 * (size_t)R);
    memset(all, 0xEE, 5 * (size_t)R);
    dist_allgather(W, mine, 5, all);
    int bad = 0;
    for (int r = 0; r < R; r++) {
        const unsigned char want[5] = {(unsigned char)r, (unsigned char)(0x5A ^ r), (unsigned char)(3 * r), 'x',
                                       (unsigned char)R};
        bad += memcmp(all + 5 * r, want, 5) != 0;
    }
    CHECK(bad == 0, "allgather: %d ranks' bytes out of place", bad);
    /* in place: this rank's part already in `all` */
    int *ids = xmalloc(sizeof(int) * (size_t)R);
    for (int r = 0; r < R; r++) ids[r] = -1;
    ids[me] = 1000 + me;
    dist_allgather(W, &ids[me], sizeof(int), ids);
    bad = 0;
    for (int r = 0; r < R; r++) bad += ids[r] != 1000 + r;
    CHECK(bad == 0, "allgather in place: %d ranks wrong", bad);
    free(all), free(ids);
}

static void test_bcast(const DistComm *W) {
    const size_t bytes = (size_t)40 << 20;
    const int root = R - 1;
    uint64_t *buf = xmalloc(bytes), *want = xmalloc(bytes);
    Rng rg = rng_stream(77, RNG_TEST, 1, 2);
    for (size_t i = 0; i < bytes / 8; i++) want[i] = rng_u64(&rg);
    if (me == root) memcpy(buf, want, bytes);
    else memset(buf, 0, bytes);
    dist_bcast(W, buf, bytes, root);
    CHECK(!memcmp(buf, want, bytes), "rank %d: the 40 MB bcast from rank %d differs", me, root);
    char small[3] = {0};
    if (me == 0) memcpy(small, "ab", 3);
    dist_bcast(W, small, 3, 0);
    CHECK(!strcmp(small, "ab"), "rank %d: a 3-byte bcast from rank 0 gave '%.3s'", me, small);
    free(buf), free(want);
}

static void test_any_barrier(const DistComm *W) {
    CHECK(dist_any(W, 0) == 0, "dist_any of no flag is set");
    CHECK(dist_any(W, me == R - 1 ? 7 : 0) == 1, "dist_any of a flag on the last rank is not set");
    CHECK(dist_any(W, me == 0) == 1, "dist_any of a flag on rank 0 is not set");
    if (R < 2) return;
    /* a barrier waits for the last rank to arrive */
    dist_barrier(W);
    const double t0 = now_s();
    if (me == R - 1) usleep(300000);
    dist_barrier(W);
    const double waited = now_s() - t0;
    if (me != R - 1) CHECK(waited > 0.25, "rank %d left the barrier after %.3f s, before the last rank came (0.3 s)",
                           me, waited);
}

static void test_split(const DistComm *W) {
    char err[256];
    dist_set_stall_timeout(123.0);
    DistComm one, rev;
    CHECK(dist_split(W, W->rank, 0, &one, err, sizeof err) == 0, "split into groups of one: %s", err);
    CHECK(one.size == 1 && one.rank == 0, "group of one: rank %d of %d", one.rank, one.size);
    CHECK(one.stall_timeout_s == 123.0, "group of one: stall timeout %g, not the world's 123", one.stall_timeout_s);
    double v[3] = {1.5, NAN, -0.0}, t[3];
    const double v0[3] = {1.5, NAN, -0.0};
    dist_tree_sum_d(&one, v, 3, t);
    dist_max_d(&one, v, 3);
    CHECK(!memcmp(v, v0, sizeof v), "a group of one changed values in its tree sum or max");
    int64_t k[2] = {((int64_t)1 << 62) + 1, -5};
    dist_sum_i64(&one, k, 2);
    CHECK(k[0] == ((int64_t)1 << 62) + 1 && k[1] == -5, "a group of one changed an integer sum");
    int mine = 42 + me, got = 0;
    dist_allgather(&one, &mine, sizeof mine, &got);
    CHECK(got == mine, "a group of one: allgather %d, want %d", got, mine);
    CHECK(dist_any(&one, 0) == 0 && dist_any(&one, 3) == 1, "a group of one: dist_any is not the flag");
    dist_barrier(&one);
    dist_comm_free(&one);
    CHECK(one.comm == NULL && one.size == 1, "dist_comm_free left a communicator");

    /* one group, ranks in reverse order */
    CHECK(dist_split(W, 0, R - 1 - me, &rev, err, sizeof err) == 0, "reversed split: %s", err);
    CHECK(rev.size == R && rev.rank == R - 1 - me, "reversed group: rank %d of %d, want %d", rev.rank, rev.size,
          R - 1 - me);
    int *ids = xmalloc(sizeof(int) * (size_t)R);
    dist_allgather(&rev, &me, sizeof me, ids);
    int bad = 0;
    for (int r = 0; r < R; r++) bad += ids[r] != R - 1 - r;
    CHECK(bad == 0, "reversed group: allgather not in the group's rank order");
    CHECK(dist_any(&rev, me == 0) == 1, "reversed group: dist_any");
    free(ids);
    dist_comm_free(&rev);
    dist_set_stall_timeout(60.0);
}

static void test_identity(const DistComm *W) {
    CHECK(W->size == R && W->rank >= 0 && W->rank < R, "world: rank %d of %d", W->rank, W->size);
    char want[256];
    if (R > 1) snprintf(want, sizeof want, "cyclebnn[%d/%d %s]", me, R, dist_host());
    else snprintf(want, sizeof want, "cyclebnn");
    CHECK(!strcmp(dist_prefix(), want), "prefix '%s', want '%s'", dist_prefix(), want);
    CHECK(dist_host()[0] != '\0', "empty host name");
    /* the MPI build has a communicator even as a singleton; the one-rank build never */
    const int mpi = dist_built_with_mpi();
    /* an MPI build has a world communicator when launched by mpirun (a plain
     * process stays one rank without MPI: core/dist_mpi.c, launched_by_mpi) */
    const int launched = getenv("OMPI_COMM_WORLD_SIZE") != NULL;
    CHECK((mpi && launched) == (W->comm != NULL), "dist_built_with_mpi() = %d, launched %d, but the world's "
          "communicator is %p", mpi, launched, W->comm);
    const char *v = dist_mpi_version();
    if (mpi) CHECK(strstr(v, "MPI") && !strchr(v, '\n'), "MPI version '%s': not one line naming MPI", v);
    else CHECK(v[0] == '\0', "one-rank build: MPI version '%s', want \"\"", v);
}

/* ------------------------------------------------------------ noise slices */

static void test_noise(void) {
    const size_t n = 6 * NOISE_CHUNK + 777;
    const uint64_t seed = 1234, k1 = 56, k2 = 7;
    real *whole = tu_alloc(n), *part = tu_alloc(n);
    quant_fill_noise(whole, n, seed, k1, k2);
    /* each of R' ranks' rows, for R' = 2 and 4 (rows of a batch need not be whole chunks) */
    for (int ranks = 2; ranks <= 4; ranks *= 2)
        for (int r = 0; r < ranks; r++) {
            const size_t lo = n * (size_t)r / (size_t)ranks, hi = n * (size_t)(r + 1) / (size_t)ranks;
            quant_fill_noise_range(part, lo, hi - lo, seed, k1, k2);
            CHECK(!memcmp(part, whole + lo, sizeof(real) * (hi - lo)),
                  "noise of rank %d of %d, [%zu, %zu), differs from the whole fill", r, ranks, lo, hi);
        }
    const size_t offs[] = {4095, 4096, 4097, 10001}, lens[] = {1, 2, 4095, 4096, 5000, 9000};
    for (size_t a = 0; a < sizeof offs / sizeof *offs; a++)
        for (size_t b = 0; b < sizeof lens / sizeof *lens; b++) {
            const size_t off = offs[a], len = lens[b];
            quant_fill_noise_range(part, off, len, seed, k1, k2);
            CHECK(!memcmp(part, whole + off, sizeof(real) * len), "noise [%zu, %zu) differs from the whole fill", off,
                  off + len);
        }
    /* other keys give other noise (the comparison above can fail) */
    quant_fill_noise_range(part, 4097, 100, seed, k1, k2 + 1);
    CHECK(memcmp(part, whole + 4097, sizeof(real) * 100) != 0, "noise does not depend on its key");
    free(whole), free(part);
}

/* ------------------------------------------------------------ the stall */

static int stall_mode(const DistComm *W, const char *what) {
    if (R < 2) {
        fprintf(stderr, "FAIL test_dist --stall needs 2 ranks (mpirun -np 2)\n");
        return 1;
    }
    if (me == 1) sleep(5);
    if (!strcmp(what, "tree")) {
        double v[8] = {0}, t[8];
        dist_tree_sum_d(W, v, 8, t);
    } else {
        (void)dist_any(W, me);
    }
    /* with a 1 s timeout and 5 s of lateness the job must be gone by now */
    fprintf(stderr, "FAIL test_dist --stall %s: rank %d came back from the collective\n", what, me);
    return 0;
}

int main(int argc, char **argv) {
    char err[256];
    if (dist_init(&argc, &argv, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL dist_init: %s\n", err);
        return 1;
    }
    CHECK(dist_init(&argc, &argv, err, sizeof err) == 0, "dist_init twice: %s", err);
    const DistComm *W = dist_world();
    R = W->size, me = W->rank;
    if (argc >= 3 && !strcmp(argv[1], "--stall")) {
        dist_set_stall_timeout(1.0);
        const int rc = stall_mode(W, argv[2]);
        dist_finalize();
        return rc;
    }
    /* a test that hangs should end with names, not at meson's timeout */
    dist_set_stall_timeout(60.0);
    CHECK(W->stall_timeout_s == 60.0, "dist_set_stall_timeout did not set the world's");
    test_identity(W);
    test_tree(W);
    test_max(W);
    test_sum_i64(W);
    test_allgather(W);
    test_bcast(W);
    test_any_barrier(W);
    test_split(W);
    if (me == 0) test_noise();
    /* every rank's verdict, so that rank 0's status is the job's */
    const int failed = dist_any(W, tu_failures != 0);
    CHECK(!failed || tu_failures, "another rank failed");
    char name[64];
    snprintf(name, sizeof name, "test_dist (rank %d of %d)", me, R);
    const int rc = tu_finish(name);
    dist_finalize();
    dist_finalize();   /* safe twice */
    return rc;
}
