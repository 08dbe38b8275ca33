/* Data-parallel training (issue 15 (b)): a run over 2 ranks gives the bits of
 * one process at the same train.shards.
 *
 * Run as `mpirun -np 2` (tests/meson.build). Every rank first trains the
 * one-process reference itself (its own group of one, from dist_split with
 * color = world rank), then the 2-rank run (group = world), and compares:
 * 20 steps of a binary ResNet-8 (cyclic 2-6 bits, stochastic 8-bit errors,
 * flip + crop augmentation, 2.5 epochs of a small synthetic set), batch 8,
 * train.shards 2, checkpoints every 5 steps (each one a replica-hash check),
 * evaluation at 10 and 20 in batches of 6 (more than a rank's 4 rows: the
 * eval forward runs in pieces) over 38 test images (7 batches: uneven over
 * the ranks). Equal bit for bit: the per-step losses and train top-1 rows,
 * the evaluations, and on every rank the final parameters, both optimizer
 * moments and the buffers -- for binary.backward int8 and fp32, and
 * model.conv fp32. These runs have no validation split, so their periodic
 * evaluations are test/ rows (role 0, the last role 2) and the cyclic
 * schedule adds the final weights at the fixed bits (results/README.md).
 * The background loader (data.loader_workers 2) must give
 * each rank the same slice. Then resume: 10 steps on 2 ranks then 10 on 1,
 * and 10 on 1 then 10 on 2, each equal to 20 on one. With a validation split
 * (TrainControl.val, issue 16: evaluations on it split over the ranks, the
 * selected weights kept on every rank and broadcast on resume, the test set
 * at the final and selected weights) the 2-rank run and the resumes from 2
 * ranks to 1 and from 1 to 2 equal one process too. R = 2 with train.shards 1 must be
 * refused, naming both.
 *
 * Run as one process the "2-rank" runs are runs of one rank, so it checks the
 * S = 2 one-process path, the loader, the evaluation and the resume path
 * (that S = 2 is not S = 1's arithmetic is checked either way). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "dist.h"
#include "experiments/config.h"
#include "results_h5.h"
#include "testutil.h"
#include "train_run.h"

#define STEPS 20
#define HALF 10
#define N_TRAIN 64
#define N_TEST 38
#define N_VAL 30
#define SIDE 16
#define CLASSES 4

static char g_dir[128];
static Dataset g_train, g_test, g_val;

/* ------------------------------------------------------------------ data */

/* A small learnable set: each class a bright square in its own quadrant of
 * one channel, on noise; every pixel from a stream keyed by (seed, sample). */
static void synth_set(Dataset *ds, long n, uint64_t seed, const char *name) {
    memset(ds, 0, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    ds->n = n;
    ds->channels = 3;
    ds->height = ds->width = SIDE;
    ds->num_classes = CLASSES;
    for (int c = 0; c < 3; c++) ds->mean[c] = 0.3f, ds->std[c] = 0.25f;
    const size_t img = 3 * SIDE * SIDE;
    ds->images = malloc(n * img);
    ds->labels = malloc(n);
    if (!ds->images || !ds->labels) exit(2);
    for (long i = 0; i < n; i++) {
        Rng r = rng_stream(seed, 0, (uint64_t)i, 0);
        const int y = (int)(i % CLASSES);
        ds->labels[i] = (uint8_t)y;
        uint8_t *p = ds->images + i * img;
        for (size_t k = 0; k < img; k++) p[k] = (uint8_t)rng_below(&r, 100);
        const int y0 = (y / 2) * SIDE / 2, x0 = (y % 2) * SIDE / 2;
        for (int h = y0 + 2; h < y0 + SIDE / 2 - 2; h++)
            for (int w = x0 + 2; w < x0 + SIDE / 2 - 2; w++) p[(y % 3) * SIDE * SIDE + h * SIDE + w] = 230;
    }
    ds->get = dataset_get_u8;
}

/* ---------------------------------------------------------------- a run */

typedef enum { V_INT8, V_FP32_BWD, V_FP32_CONV } Variant;
static const char *const VNAME[] = {"binary.backward int8", "binary.backward fp32", "model.conv fp32"};

static void config(RunConfig *c, Variant v, int shards, int loader_workers) {
    config_defaults(c);
    tu_config_cyclebnn(c, 2);
    if (v == V_FP32_BWD) c->bin_backward = BIN_BACKWARD_FP32;
    if (v == V_FP32_CONV) c->conv = CONV_FP32;
    snprintf(c->arch, sizeof c->arch, "cifar_resnet8");
    c->iterations = STEPS;
    c->batch_size = 8;
    c->shards = shards;
    c->eval_interval = HALF;
    c->eval_batch_size = 6;
    c->aug_flip = 1;
    c->aug_crop_pad = 2;
    c->threads = 1;
    c->seed = 5;
    c->loader_workers = loader_workers;
}

/* what a run ends with, on every rank */
typedef struct {
    real *p, *m, *v, *b;
    size_t np, nb;
} State;

static void grab(const Model *m, void *arg) {
    State *s = arg;
    s->np = m->n_params;
    s->nb = m->n_buffers;
    s->p = malloc(s->np * sizeof *s->p);
    s->m = malloc(s->np * sizeof *s->m);
    s->v = malloc(s->np * sizeof *s->v);
    s->b = malloc((s->nb ? s->nb : 1) * sizeof *s->b);
    if (!s->p || !s->m || !s->v || !s->b) exit(2);
    memcpy(s->p, m->params, s->np * sizeof *s->p);
    memcpy(s->m, m->opt_m, s->np * sizeof *s->m);
    memcpy(s->v, m->opt_v, s->np * sizeof *s->v);
    memcpy(s->b, m->buffers, s->nb * sizeof *s->b);
}

static void state_free(State *s) {
    free(s->p);
    free(s->m);
    free(s->v);
    free(s->b);
    memset(s, 0, sizeof *s);
}

/* One session of run "run" in path over group: its rank 0 opens the file
 * (fresh or to resume) and logs, the others pass no log. val: the validation
 * split (NULL: none). Returns the rc; the result in *out when out is given. */
static int session_val(const RunConfig *c, const char *path, int fresh, const DistComm *group, long stop_after,
                       State *st, const Dataset *val, TrainResult *out) {
    char err[1024] = "";
    ResultsFile *rf = NULL;
    RunLog *log = NULL;
    if (group->rank == 0) {
        rf = results_open(path, "dp_train", "", 1, fresh, err, sizeof err);
        CHECK(rf != NULL, "results_open %s: %s", path, err);
        if (!rf) exit(2); /* the other rank would wait forever: a hard stop */
        log = results_run_begin(rf, "run", "");
        if (!log) exit(2);
    }
    TrainControl ctl = {.checkpoint_every = 5, .resume = !fresh, .group = group, .stop_after = stop_after,
                        .on_end = grab, .on_end_arg = st, .val = val};
    TrainResult res;
    const int rc = train_run_ctl(c, "run", &g_train, &g_test, log, &ctl, NULL, &res, err, sizeof err);
    CHECK(rc >= 0, "%s: train_run_ctl over %d rank(s): %s", path, group->size, err);
    if (log) runlog_end(log, rc == 0 ? "complete" : "interrupted", res.final_top1, res.best_top1, res.wall_time_s);
    if (rf) CHECK(results_close(rf, 1, err, sizeof err) == 0, "results_close: %s", err);
    if (out) *out = res;
    return rc;
}

static int session(const RunConfig *c, const char *path, int fresh, const DistComm *group, long stop_after,
                   State *st) {
    return session_val(c, path, fresh, group, stop_after, st, NULL, NULL);
}

/* ------------------------------------------------------------ comparisons */

/* /runs/run/<dset> as doubles (malloc'd), its length in *n */
static double *read_all(const char *path, const char *dset, size_t *n) {
    *n = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    double *out = NULL;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        hsize_t len = 0;
        H5Sget_simple_extent_dims(s, &len, NULL);
        out = malloc(sizeof *out * (len ? len : 1));
        if (out && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0) *n = len;
        H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
    return out;
}

static void same_series(const char *a, const char *b, const char *dset, size_t expect_n, const char *what) {
    size_t na, nb;
    double *x = read_all(a, dset, &na), *y = read_all(b, dset, &nb);
    CHECK(x && y && na == expect_n && nb == expect_n, "%s: %s has %zu and %zu values, expected %zu", what, dset, na,
          nb, expect_n);
    if (x && y && na == nb)
        for (size_t i = 0; i < na; i++)
            if (memcmp(&x[i], &y[i], sizeof x[i])) {
                CHECK(0, "%s: %s[%zu] is %.17g, one process %.17g", what, dset, i, y[i], x[i]);
                break;
            }
    free(x);
    free(y);
}

static void same_reals(const real *a, const real *b, size_t n, const char *what, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i])) {
            CHECK(0, "%s: %s[%zu] is %.9g, one process %.9g", what, name, i, (double)b[i], (double)a[i]);
            return;
        }
}

static void same_state(const State *ref, const State *got, const char *what) {
    CHECK(ref->np == got->np && ref->nb == got->nb && ref->np > 0, "%s: %zu/%zu parameters/buffers, one process %zu/%zu",
          what, got->np, got->nb, ref->np, ref->nb);
    if (ref->np != got->np || ref->nb != got->nb) return;
    same_reals(ref->p, got->p, ref->np, what, "params");
    same_reals(ref->m, got->m, ref->np, what, "opt_m");
    same_reals(ref->v, got->v, ref->np, what, "opt_v");
    same_reals(ref->b, got->b, ref->nb, what, "buffers");
}

/* Without a validation split the test/ rows are the periodic evaluations
 * (steps 10 and 20) and the final weights at the fixed bits (the schedule is
 * cyclic): 3 rows. */
#define TEST_ROWS_NO_VAL (STEPS / HALF + 1)

static const char *const TEST_COLS[] = {"/runs/run/test/step", "/runs/run/test/top1", "/runs/run/test/loss",
                                        "/runs/run/test/bits", "/runs/run/test/role", "/runs/run/test/fixed"};
static const char *const VAL_COLS[] = {"/runs/run/val/step", "/runs/run/val/top1", "/runs/run/val/loss",
                                       "/runs/run/val/bits"};

/* the one-process run's file against another's: rows, evaluations (val/ rows
 * val_rows, test/ rows test_rows), checkpoint (with the selected weights when
 * there is a validation split) */
static void same_files_rows(const char *ref, const char *got, size_t val_rows, size_t test_rows, const char *what) {
    same_series(ref, got, "/runs/run/train/loss", STEPS, what);
    same_series(ref, got, "/runs/run/train/top1", STEPS, what);
    for (int k = 0; k < 6; k++) same_series(ref, got, TEST_COLS[k], test_rows, what);
    if (val_rows)
        for (int k = 0; k < 4; k++) same_series(ref, got, VAL_COLS[k], val_rows, what);
    size_t n;
    double *p = read_all(ref, "/runs/run/checkpoint/params", &n);
    free(p);
    same_series(ref, got, "/runs/run/checkpoint/params", n, what);
    same_series(ref, got, "/runs/run/checkpoint/opt_v", n, what);
    if (val_rows) {
        same_series(ref, got, "/runs/run/checkpoint/selected_params", n, what);
        same_series(ref, got, "/runs/run/checkpoint/selected_state", 4, what);
    }
}

static void same_files(const char *ref, const char *got, const char *what) {
    same_files_rows(ref, got, 0, TEST_ROWS_NO_VAL, what);
}

/* the reference file's test/ rows are the ones described above TEST_ROWS_NO_VAL:
 * (step, role, fixed) = (10, 0, 0), (20, 2, 0), (20, 2, 1) */
static void check_test_layout(const char *path) {
    static const double want[3][3] = {{HALF, 0, 0}, {STEPS, 2, 0}, {STEPS, 2, 1}};
    size_t n[3];
    double *col[3] = {read_all(path, TEST_COLS[0], &n[0]), read_all(path, TEST_COLS[4], &n[1]),
                      read_all(path, TEST_COLS[5], &n[2])};
    int ok = n[0] == 3 && n[1] == 3 && n[2] == 3;
    for (int i = 0; ok && i < 3; i++)
        for (int k = 0; k < 3; k++) ok &= col[k][i] == want[i][k];
    CHECK(ok, "%s: test/ (step, role, fixed) rows are not (10,0,0), (20,2,0), (20,2,1)", path);
    for (int k = 0; k < 3; k++) free(col[k]);
}

/* ------------------------------------------------------------------ main */

static const DistComm *g_world;
static DistComm g_self;

static void path_of(char *out, size_t cap, const char *name, int per_rank) {
    if (per_rank) snprintf(out, cap, "%s/%s_r%d.h5", g_dir, name, g_world->rank);
    else snprintf(out, cap, "%s/%s.h5", g_dir, name);
}

/* one variant: the reference on each rank, the run over the world, compared */
static void check_variant(Variant v, State *ref_out, char *ref_path, size_t cap) {
    RunConfig c;
    config(&c, v, 2, 0);
    char name[32], dp[256], what[128];
    snprintf(name, sizeof name, "ref%d", (int)v);
    path_of(ref_path, cap, name, 1);
    snprintf(name, sizeof name, "dp%d", (int)v);
    path_of(dp, sizeof dp, name, 0);
    State got = {0};
    CHECK(session(&c, ref_path, 1, &g_self, 0, ref_out) == 0, "%s: the one-process run did not complete", VNAME[v]);
    CHECK(session(&c, dp, 1, g_world, 0, &got) == 0, "%s: the %d-rank run did not complete", VNAME[v], g_world->size);
    dist_barrier(g_world); /* rank 0 has closed the file */
    snprintf(what, sizeof what, "%s, %d ranks vs 1 (rank %d)", VNAME[v], g_world->size, g_world->rank);
    check_test_layout(ref_path);
    same_files(ref_path, dp, what);
    same_state(ref_out, &got, what);
    state_free(&got);
    size_t n;
    double *loss = read_all(ref_path, "/runs/run/train/loss", &n);
    CHECK(loss && n == STEPS && loss[0] != loss[STEPS - 1], "%s: the loss did not move over %d steps", VNAME[v],
          STEPS);
    free(loss);
    dist_barrier(g_world);
}

/* the background loader's slices are the batches of the in-step path */
static void check_loader(const char *ref_path, const State *ref) {
    RunConfig c;
    config(&c, V_INT8, 2, 2);
    char dp[256], what[96];
    path_of(dp, sizeof dp, "loader", 0);
    State got = {0};
    CHECK(session(&c, dp, 1, g_world, 0, &got) == 0, "the run with loader workers did not complete");
    dist_barrier(g_world);
    snprintf(what, sizeof what, "%d ranks with data.loader_workers 2 (rank %d)", g_world->size, g_world->rank);
    same_files(ref_path, dp, what);
    same_state(ref, &got, what);
    state_free(&got);
    dist_barrier(g_world);
}

/* train.shards 1 is another arithmetic: the plan reaches the kernels */
static void check_shards_matter(const char *ref_path) {
    RunConfig c;
    config(&c, V_INT8, 1, 0);
    char s1[256];
    path_of(s1, sizeof s1, "s1", 1);
    State st = {0};
    CHECK(session(&c, s1, 1, &g_self, 0, &st) == 0, "the S = 1 run did not complete");
    state_free(&st);
    size_t na, nb;
    double *a = read_all(ref_path, "/runs/run/train/loss", &na), *b = read_all(s1, "/runs/run/train/loss", &nb);
    CHECK(a && b && na == STEPS && nb == STEPS && memcmp(a, b, STEPS * sizeof *a) != 0,
          "train.shards 2 gave the losses of train.shards 1: the shard plan did not reach the kernels");
    free(a);
    free(b);
}

/* 10 steps on `first`, 10 on `second`, against 20 on one process */
static void check_resume(const DistComm *first, const DistComm *second, const char *name, const char *ref_path,
                         const State *ref) {
    RunConfig c;
    config(&c, V_INT8, 2, 0);
    char path[256], what[128];
    path_of(path, sizeof path, name, 0);
    snprintf(what, sizeof what, "%d rank(s) then %d (rank %d)", first->size, second->size, g_world->rank);
    State a = {0}, b = {0};
    /* a rank outside a group of one waits at the barrier */
    if (first->size > 1 || g_world->rank == 0)
        CHECK(session(&c, path, 1, first, HALF, &a) == 1, "%s: the first half did not stop at step %d", what, HALF);
    dist_barrier(g_world);
    if (second->size > 1 || g_world->rank == 0) {
        CHECK(session(&c, path, 0, second, 0, &b) == 0, "%s: the resumed half did not complete", what);
        same_state(ref, &b, what);
    }
    dist_barrier(g_world);
    same_files(ref_path, path, what);
    state_free(&a);
    state_free(&b);
    dist_barrier(g_world);
}

/* With a validation split: the one-process run, the run over the world, and
 * 10 steps on the world then 10 on one process and the other way round, all
 * equal. The test/ rows are the final weights and, when the selection is not
 * the last evaluation, the selected ones, each at the evaluation and the
 * fixed precision. A selection at step 10 makes the resume on 2 ranks depend
 * on the selected weights reaching rank 1 (read by rank 0, broadcast). */
static void check_val(void) {
    RunConfig c;
    config(&c, V_INT8, 2, 0);
    char ref[256], dp[256], rs[256], what[128];
    path_of(ref, sizeof ref, "val_ref", 1);
    path_of(dp, sizeof dp, "val_dp", 0);
    path_of(rs, sizeof rs, "val_resume", 0);
    State sr = {0}, sd = {0}, sa = {0}, sb = {0};
    TrainResult rr, rd;
    CHECK(session_val(&c, ref, 1, &g_self, 0, &sr, &g_val, &rr) == 0, "val: the one-process run did not complete");
    CHECK(rr.selection == 1 && (rr.selected_step == HALF || rr.selected_step == STEPS),
          "val: selection %d at step %ld, expected a periodic evaluation's step", rr.selection, rr.selected_step);
    const size_t test_rows = rr.selected_step == STEPS ? 2 : 4;
    CHECK(session_val(&c, dp, 1, g_world, 0, &sd, &g_val, &rd) == 0, "val: the %d-rank run did not complete",
          g_world->size);
    CHECK(!memcmp(&rd.test_top1_at_selected, &rr.test_top1_at_selected, sizeof(double)) &&
              rd.selected_step == rr.selected_step,
          "val: %d ranks selected step %ld (test top-1 %.4f), one process %ld (%.4f)", g_world->size,
          rd.selected_step, rd.test_top1_at_selected, rr.selected_step, rr.test_top1_at_selected);
    dist_barrier(g_world);
    snprintf(what, sizeof what, "val split, %d ranks vs 1 (rank %d)", g_world->size, g_world->rank);
    same_files_rows(ref, dp, STEPS / HALF, test_rows, what);
    same_state(&sr, &sd, what);
    if (g_world->rank == 0) printf("val: selected step %ld of %d\n", rr.selected_step, STEPS);
    for (int dir = 0; dir < 2; dir++) {
        const DistComm *first = dir ? &g_self : g_world, *second = dir ? g_world : &g_self;
        path_of(rs, sizeof rs, dir ? "val_resume_1_then_w" : "val_resume_w_then_1", 0);
        snprintf(what, sizeof what, "val split, %d rank(s) then %d (rank %d)", first->size, second->size,
                 g_world->rank);
        if (first->size > 1 || g_world->rank == 0)
            CHECK(session_val(&c, rs, 1, first, HALF, &sa, &g_val, NULL) == 1, "%s: the first half did not stop at %d",
                  what, HALF);
        dist_barrier(g_world);
        if (second->size > 1 || g_world->rank == 0) {
            CHECK(session_val(&c, rs, 0, second, 0, &sb, &g_val, NULL) == 0, "%s: the resumed half did not complete",
                  what);
            same_state(&sr, &sb, what);
        }
        dist_barrier(g_world);
        same_files_rows(ref, rs, STEPS / HALF, test_rows, what);
        state_free(&sa);
        state_free(&sb);
        dist_barrier(g_world);
    }
    state_free(&sr);
    state_free(&sd);
}

/* R ranks that do not divide S: refused before anything runs, naming both */
static void check_refusal(void) {
    if (g_world->size < 2) return;
    RunConfig c;
    config(&c, V_INT8, 1, 0);
    TrainControl ctl = {.group = g_world};
    TrainResult res;
    char err[512] = "";
    const int rc = train_run_ctl(&c, "run", &g_train, &g_test, NULL, &ctl, NULL, &res, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "2 ranks") && strstr(err, "train.shards is 1"),
          "2 ranks at train.shards 1: rc %d, '%s'", rc, err);
}

int main(int argc, char **argv) {
    char err[512];
    if (dist_init(&argc, &argv, err, sizeof err)) {
        fprintf(stderr, "FAIL dist_init: %s\n", err);
        return 1;
    }
    g_world = dist_world();
    CHECK(g_world->size <= 2, "run on 1 or 2 ranks, not %d", g_world->size);
    if (dist_split(g_world, g_world->rank, 0, &g_self, err, sizeof err)) {
        fprintf(stderr, "FAIL dist_split: %s\n", err);
        return 1;
    }
    if (g_world->rank == 0) {
        snprintf(g_dir, sizeof g_dir, "/tmp/cbnn_dp_train_XXXXXX");
        if (!mkdtemp(g_dir)) g_dir[0] = '\0';
    }
    dist_bcast(g_world, g_dir, sizeof g_dir, 0);
    CHECK(g_dir[0] != '\0', "mkdtemp");
    if (!g_dir[0]) return 1;
    synth_set(&g_train, N_TRAIN, 21, "synth_train");
    synth_set(&g_test, N_TEST, 22, "synth_test");
    synth_set(&g_val, N_VAL, 23, "synth_val");

    State ref = {0}, other = {0};
    char ref_path[256], other_path[256];
    check_variant(V_INT8, &ref, ref_path, sizeof ref_path);
    check_variant(V_FP32_BWD, &other, other_path, sizeof other_path);
    state_free(&other);
    check_variant(V_FP32_CONV, &other, other_path, sizeof other_path);
    state_free(&other);
    check_loader(ref_path, &ref);
    check_shards_matter(ref_path);
    check_resume(g_world, &g_self, "resume_w_then_1", ref_path, &ref);
    check_resume(&g_self, g_world, "resume_1_then_w", ref_path, &ref);
    check_val();
    check_refusal();
    state_free(&ref);

    dist_barrier(g_world);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_world->rank == 0 && tu_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    dataset_free(&g_train);
    dataset_free(&g_test);
    dataset_free(&g_val);
    char name[64];
    snprintf(name, sizeof name, "dp_train (rank %d of %d)", g_world->rank, g_world->size);
    const int rc = tu_finish(name);
    dist_comm_free(&g_self);
    dist_finalize();
    return rc;
}
