/* The collectives of core/dist.h under mpirun (issue 15 (d)): latency and
 * bandwidth of dist_tree_sum_r (the float gradients' fixed tree),
 * dist_sum_i64 (the binary convs' integer sums), dist_bcast (checkpoints)
 * and, for comparison, MPI_Allreduce(MPI_SUM) on floats, for messages of
 * 8 B ... 64 MiB (powers of 4, then 64 MiB).
 *
 *   mpirun --bind-to none -np 2 build/bench/dist_bench [--json FILE] [--reps N]
 *
 * Each figure is the median over repetitions of the slowest rank's time
 * (the ranks start together after a barrier). --json writes the table and the
 * two figures of the cost model in bench/README.md:
 *   alpha: the tree sum's small-message latency (s), its time at 8 B;
 *   beta:  the tree sum's large-message bandwidth (bytes/s), V / (t(V) - alpha)
 *          at V = 64 MiB; with R ranks the tree moves V per level, so
 *          t_sync = 2(R-1)/R V / beta is exact at R = 2 and an estimate beyond. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "dist.h"

enum { OP_TREE, OP_SUM_I64, OP_BCAST, OP_ALLREDUCE, N_OPS };
static const char *op_name[N_OPS] = {"dist_tree_sum_r", "dist_sum_i64", "dist_bcast", "MPI_Allreduce"};

#define N_SIZES 13
static size_t sizes[N_SIZES];   /* 8, 32, ..., 32 MiB, 64 MiB */

/* one run of op on `bytes` of buf (tmp: scratch), timed; the slowest rank's time */
static double time_op(const DistComm *W, int op, void *buf, void *tmp, size_t bytes) {
    MPI_Comm comm = MPI_COMM_WORLD;   /* the same ranks as W */
    MPI_Barrier(comm);
    const double t0 = bench_now();
    switch (op) {
    case OP_TREE: dist_tree_sum_r(W, buf, bytes / sizeof(real), tmp); break;
    case OP_SUM_I64: dist_sum_i64(W, buf, bytes / sizeof(int64_t)); break;
    case OP_BCAST: dist_bcast(W, buf, bytes, 0); break;
    case OP_ALLREDUCE: MPI_Allreduce(MPI_IN_PLACE, buf, (int)(bytes / sizeof(float)), MPI_FLOAT, MPI_SUM, comm); break;
    }
    double t = bench_now() - t0, tmax = 0;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm);
    return tmax;
}

int main(int argc, char **argv) {
    char err[256];
    if (dist_init(&argc, &argv, err, sizeof err) != 0) {
        fprintf(stderr, "dist_bench: %s\n", err);
        return 1;
    }
    const DistComm *W = dist_world();
    const char *json = NULL;
    int reps_max = 50;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps_max = atoi(argv[++i]);
        else {
            if (W->rank == 0) fprintf(stderr, "usage: mpirun -np R dist_bench [--json FILE] [--reps N]\n");
            dist_finalize();
            return 2;
        }
    }
    if (W->size < 2 && W->rank == 0) fprintf(stderr, "dist_bench: one rank: every collective is a no-op (use mpirun -np 2)\n");
    for (int k = 0; k < N_SIZES - 1; k++) sizes[k] = (size_t)8 << (2 * k);
    sizes[N_SIZES - 1] = (size_t)64 << 20;
    const size_t maxb = sizes[N_SIZES - 1];
    /* zeros: sums stay zero, so no denormal or overflow slows a repetition */
    void *buf = calloc(1, maxb), *tmp = calloc(1, maxb);
    double med[N_OPS][N_SIZES];
    double *t = malloc(sizeof(double) * N_OPS * (size_t)(reps_max > 0 ? reps_max : 1));
    if (!buf || !tmp || !t || reps_max < 1) {
        fprintf(stderr, "dist_bench: out of memory or --reps < 1\n");
        dist_abort(W, 1);
    }
    /* the operations take turns within each repetition, so that a busy moment
     * of the machine (other processes) falls on all of them alike */
    for (int k = 0; k < N_SIZES; k++) {
        /* about 64 MiB moved per size, between 5 and reps_max repetitions */
        int reps = (int)(((size_t)64 << 20) / sizes[k]);
        reps = reps < 5 ? 5 : reps;
        reps = reps > reps_max ? reps_max : reps;
        for (int op = 0; op < N_OPS; op++) (void)time_op(W, op, buf, tmp, sizes[k]);   /* warm-up */
        for (int r = 0; r < reps; r++)
            for (int op = 0; op < N_OPS; op++) t[op * reps_max + r] = time_op(W, op, buf, tmp, sizes[k]);
        for (int op = 0; op < N_OPS; op++) med[op][k] = bench_median(t + op * reps_max, reps);
    }
    const double alpha = med[OP_TREE][0];
    const double tv = med[OP_TREE][N_SIZES - 1];
    const double beta = tv > alpha ? (double)maxb / (tv - alpha) : 0.0;
    if (W->rank == 0) {
        printf("dist_bench: %d ranks on %s, %s\n", W->size, dist_host(), dist_mpi_version());
        printf("%10s", "bytes");
        for (int op = 0; op < N_OPS; op++) printf(" | %-16s %9s", op_name[op], "GB/s");
        printf("\n");
        for (int k = 0; k < N_SIZES; k++) {
            printf("%10zu", sizes[k]);
            for (int op = 0; op < N_OPS; op++)
                printf(" | %13.2f us %9.3f", med[op][k] * 1e6, (double)sizes[k] / med[op][k] * 1e-9);
            printf("\n");
        }
        printf("alpha (tree sum at 8 B) = %.3g s, beta (tree sum at 64 MiB) = %.3g bytes/s\n", alpha, beta);
        if (json) {
            FILE *f = fopen(json, "w");
            if (!f) {
                fprintf(stderr, "dist_bench: cannot write %s\n", json);
                dist_abort(W, 1);
            }
            fprintf(f, "{\n  \"ranks\": %d,\n  \"host\": \"%s\",\n  \"mpi\": \"%s\",\n", W->size, dist_host(),
                    dist_mpi_version());
            fprintf(f, "  \"alpha\": %.6g,\n  \"beta\": %.6g,\n", alpha, beta);
            fprintf(f, "  \"alpha_note\": \"s: dist_tree_sum_r at 8 bytes\",\n");
            fprintf(f, "  \"beta_note\": \"bytes/s: dist_tree_sum_r, 64 MiB / (t - alpha)\",\n");
            fprintf(f, "  \"ops\": {\n");
            for (int op = 0; op < N_OPS; op++) {
                fprintf(f, "    \"%s\": [", op_name[op]);
                for (int k = 0; k < N_SIZES; k++)
                    fprintf(f, "%s{\"bytes\": %zu, \"median_s\": %.6g}", k ? ", " : "", sizes[k], med[op][k]);
                fprintf(f, "]%s\n", op + 1 < N_OPS ? "," : "");
            }
            fprintf(f, "  }\n}\n");
            if (fclose(f) != 0) {
                fprintf(stderr, "dist_bench: error writing %s\n", json);
                dist_abort(W, 1);
            }
        }
    }
    free(buf), free(tmp), free(t);
    dist_finalize();
    return 0;
}
