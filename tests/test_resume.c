/* Checkpoint and resume: a run that is stopped or killed and then resumed
 * gives bitwise the same per-step losses, evaluations and final weights as
 * one that ran straight through.
 *
 * The run: binary ResNet-8 (CycleBNN conv, cyclic 2-6 bits, stochastic 8-bit
 * errors), flip + crop augmentation, 48 iterations over 3 epochs of a
 * Fashion-MNIST subset, checkpoints every 8 iterations. Compared with the
 * straight run:
 *   1. a Ctrl-C-style stop (train_stop_requested) right after the first
 *      commit: the run stops at step 9, writes a checkpoint there, and is
 *      resumed in the same process, on 1 thread instead of 2;
 *   2. kill -9 halfway through copying the file being published at the third
 *      commit (step 24): the results file must still be the whole commit of
 *      step 16, and the resumed run continues from there;
 *   3. kill -9 in the middle of writing the arrays of the second checkpoint
 *      (step 16) into the working copy: the file keeps the checkpoint of step 8.
 * The kills happen in a forked child, through results_fault_hook.
 * The runs have no validation split (train_run_ctl without TrainControl.val),
 * so the periodic evaluations (every 12 steps) are test/ rows, role 0 and the
 * last role 2, followed by the final weights at the fixed bits (cyclic
 * schedule); the selection on a validation split across a stop and resume is
 * tests/test_val_selection.c's and tests/test_dp_train.c's. */
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blas.h"
#include "datasets/dataset.h"
#include "experiments/config.h"
#include "results_h5.h"
#include "testutil.h"
#include "train_run.h"

#define STEPS 48
#define EVERY 8
#define EVAL_EVERY 12
#define TEST_ROWS (STEPS / EVAL_EVERY + 1) /* the periodic evaluations + the final one at the fixed bits */

static Dataset g_train, g_test;

static void config(RunConfig *c, int threads) {
    config_defaults(c);
    tu_config_cyclebnn(c, 4);
    snprintf(c->arch, sizeof c->arch, "cifar_resnet8");
    c->iterations = STEPS;
    c->batch_size = 32;
    c->eval_interval = EVAL_EVERY;
    c->eval_batch_size = 32;
    c->aug_flip = 1;
    c->aug_crop_pad = 2;
    c->threads = threads;
    c->seed = 11;
}

/* One session: open (fresh or resume), train, end, close. Returns train_run's rc. */
static int session(const char *path, int fresh, int threads, TrainResult *res) {
    RunConfig c;
    config(&c, threads);
    char err[1024] = "";
    ResultsFile *rf = results_open(path, "resume", "", threads, fresh, err, sizeof err);
    CHECK(rf != NULL, "results_open %s: %s", path, err);
    if (!rf) return -1;
    char *yaml = config_to_yaml(&c);
    RunLog *log = results_run_begin(rf, "run", yaml);
    free(yaml);
    CHECK(log != NULL, "results_run_begin");
    TrainControl ctl = {.checkpoint_every = EVERY, .resume = 1};
    int rc = train_run_ctl(&c, "run", &g_train, &g_test, log, &ctl, NULL, res, err, sizeof err);
    CHECK(rc >= 0, "train_run_ctl: %s", err);
    runlog_end(log, rc == 0 ? "complete" : "interrupted", res->final_top1, res->best_top1, res->wall_time_s);
    CHECK(results_close(rf, 1, err, sizeof err) == 0, "results_close: %s", err);
    return rc;
}

/* a whole dataset of the file as doubles (malloc'd), its length in *n */
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

/* the named series of two files are the same numbers, bit for bit */
static void same_series(const char *a, const char *b, const char *dset, size_t expect_n, const char *what) {
    size_t na, nb;
    double *x = read_all(a, dset, &na), *y = read_all(b, dset, &nb);
    /* expect_n 0: any length, the same in both */
    CHECK(x && y && na == nb && (expect_n ? na == expect_n : na > 0), "%s: %s has %zu and %zu rows, expected %zu",
          what, dset, na, nb, expect_n);
    if (x && y && na == nb) {
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < na; i++)
            if (memcmp(&x[i], &y[i], sizeof x[i]) && !bad++) first = i;
        CHECK(bad == 0, "%s: %s differs in %zu of %zu values (first at %zu: %.17g vs %.17g)", what, dset, bad, na,
              first, x[first], y[first]);
    }
    free(x);
    free(y);
}

static long checkpoint_step_of(const char *path) {
    char err[512];
    ResultsFile *rf = results_open(path, "resume", "", 1, 0, err, sizeof err);
    CHECK(rf != NULL, "reopening %s after the kill: %s", path, err);
    if (!rf) return -2;
    RunInfo ri;
    results_run_info(rf, "run", &ri);
    long s = ri.checkpoint_step;
    CHECK(!strcmp(ri.status, "running"), "status after a kill is '%s', expected 'running'", ri.status);
    run_info_free(&ri);
    results_close(rf, 0, err, sizeof err);
    return s;
}

/* ---- fault hooks ---- */

static int g_hook_count;
static const char *g_hook_where;
static int g_hook_at;

static void kill_hook(const char *where) {
    if (strcmp(where, g_hook_where)) return;
    if (++g_hook_count == g_hook_at) raise(SIGKILL);
}

static void stop_hook(const char *where) {
    if (!strcmp(where, "commit-copy")) train_stop_requested = 1;
}

/* Run a fresh session in a child process that kills itself at the n-th
 * `where`. The child is this program exec'd anew (--child): a forked copy of a
 * process that already ran OpenMP regions deadlocks in its first parallel
 * region (libgomp's pool does not survive fork). */
static void killed_session(const char *path, const char *where, int n) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", n);
        execl("/proc/self/exe", "test_resume", "--child", path, where, count, (char *)NULL);
        _exit(4);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child was not killed at %s #%d (status %d)", where, n, st);
}

static int child_main(const char *path, const char *where, int n) {
    tu_load_fmnist(&g_train, &g_test, 512, 128);
    g_hook_where = where;
    g_hook_at = n;
    g_hook_count = 0;
    results_fault_hook = kill_hook;
    TrainResult res;
    session(path, 1, 2, &res);
    return 3; /* the hook never fired */
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--child")) return child_main(argv[2], argv[3], atoi(argv[4]));
    tu_load_fmnist(&g_train, &g_test, 512, 128);
    char dir[] = "/tmp/cbnn_resume_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char straight[256], stopped[256], killed_commit[256], killed_ckpt[256];
    snprintf(straight, sizeof straight, "%s/straight.h5", dir);
    snprintf(stopped, sizeof stopped, "%s/stopped.h5", dir);
    snprintf(killed_commit, sizeof killed_commit, "%s/killed_commit.h5", dir);
    snprintf(killed_ckpt, sizeof killed_ckpt, "%s/killed_ckpt.h5", dir);

    TrainResult ref, r1, r2;
    CHECK(session(straight, 1, 2, &ref) == 0, "the straight run did not complete");
    CHECK(ref.resumed_from == 0, "the straight run resumed from %ld", ref.resumed_from);

    /* 1. stop at step 9, resume on 1 thread */
    results_fault_hook = stop_hook;
    int rc = session(stopped, 1, 2, &r1);
    results_fault_hook = NULL;
    train_stop_requested = 0;
    CHECK(rc == 1 && r1.iterations == EVERY + 1, "the stop: rc %d after %ld iterations, expected 1 after %d", rc,
          r1.iterations, EVERY + 1);
    rc = session(stopped, 0, 1, &r2);
    CHECK(rc == 0 && r2.resumed_from == EVERY + 1, "the resumed run: rc %d, resumed from %ld", rc, r2.resumed_from);
    CHECK(!memcmp(&r2.final_top1, &ref.final_top1, sizeof ref.final_top1) &&
              !memcmp(&r2.best_top1, &ref.best_top1, sizeof ref.best_top1),
          "stop/resume: top-1 %.4f / best %.4f, straight %.4f / %.4f", r2.final_top1, r2.best_top1, ref.final_top1,
          ref.best_top1);
    CHECK(r2.has_fixed && ref.has_fixed && !memcmp(&r2.final_top1_fixed, &ref.final_top1_fixed, sizeof(double)),
          "stop/resume: top-1 at the fixed bits %.4f, straight %.4f", r2.final_top1_fixed, ref.final_top1_fixed);
    CHECK(!memcmp(&r2.mean_cost_ratio, &ref.mean_cost_ratio, sizeof(double)) &&
              !memcmp(&r2.bit_macs, &ref.bit_macs, sizeof(double)),
          "stop/resume: cost accounting %.9g %.9g vs %.9g %.9g", r2.mean_cost_ratio, r2.bit_macs,
          ref.mean_cost_ratio, ref.bit_macs);

    /* 2. kill -9 while publishing the commit of step 24 */
    killed_session(killed_commit, "commit-copy", 3);
    long s = checkpoint_step_of(killed_commit);
    CHECK(s == 2 * EVERY, "after the kill in commit 3 the file's checkpoint is at step %ld, expected %d", s, 2 * EVERY);
    TrainResult r3;
    rc = session(killed_commit, 0, 2, &r3);
    CHECK(rc == 0 && r3.resumed_from == 2 * EVERY, "after kill in commit: rc %d, resumed from %ld", rc,
          r3.resumed_from);

    /* 3. kill -9 while writing the arrays of the checkpoint of step 16 */
    killed_session(killed_ckpt, "checkpoint-write", 2);
    s = checkpoint_step_of(killed_ckpt);
    CHECK(s == EVERY, "after the kill in checkpoint 2 the file's checkpoint is at step %ld, expected %d", s, EVERY);
    TrainResult r4;
    rc = session(killed_ckpt, 0, 2, &r4);
    CHECK(rc == 0 && r4.resumed_from == EVERY, "after kill in checkpoint: rc %d, resumed from %ld", rc,
          r4.resumed_from);

    /* the straight run's test/ rows: (step, role, fixed) = (12, 0, 0), (24, 0, 0), (36, 0, 0), (48, 2, 0), (48, 2, 1) */
    size_t ns, nr, nf;
    double *st = read_all(straight, "/runs/run/test/step", &ns), *ro = read_all(straight, "/runs/run/test/role", &nr),
           *fx = read_all(straight, "/runs/run/test/fixed", &nf);
    int layout = st && ro && fx && ns == TEST_ROWS && nr == TEST_ROWS && nf == TEST_ROWS;
    for (size_t i = 0; layout && i < TEST_ROWS; i++) {
        const int last = i + 1 == TEST_ROWS;
        layout &= st[i] == (last ? STEPS : (double)(i + 1) * EVAL_EVERY) && ro[i] == (i + 2 >= TEST_ROWS ? 2 : 0) &&
                  fx[i] == last;
    }
    CHECK(layout, "the straight run's test/ rows are not the periodic evaluations then the fixed-bits one (%zu rows)",
          ns);
    free(st);
    free(ro);
    free(fx);

    static const char *const test_cols[] = {"/runs/run/test/step", "/runs/run/test/top1", "/runs/run/test/loss",
                                            "/runs/run/test/bits", "/runs/run/test/role", "/runs/run/test/fixed"};
    const char *resumed[3] = {stopped, killed_commit, killed_ckpt};
    const char *what[3] = {"stop at 9 + resume on 1 thread", "kill in commit + resume", "kill in checkpoint + resume"};
    for (int k = 0; k < 3; k++) {
        same_series(straight, resumed[k], "/runs/run/train/loss", STEPS, what[k]);
        same_series(straight, resumed[k], "/runs/run/train/bits", STEPS, what[k]);
        same_series(straight, resumed[k], "/runs/run/train/step", STEPS, what[k]);
        for (int c = 0; c < 6; c++) same_series(straight, resumed[k], test_cols[c], TEST_ROWS, what[k]);
        same_series(straight, resumed[k], "/runs/run/checkpoint/params", 0, what[k]);
    }
    unlink(straight);
    unlink(stopped);
    unlink(killed_commit);
    unlink(killed_ckpt);
    rmdir(dir);
    dataset_free(&g_train);
    dataset_free(&g_test);
    return tu_finish("resume");
}
