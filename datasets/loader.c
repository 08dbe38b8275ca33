/* Background batch loader (see loader.h for the contract).
 *
 * One mutex guards the ring; two condition variables: `ready` (a slot became
 * READY: the consumer waits on it) and `space` (the consumer released a slot
 * or stop was requested: workers wait on it). Step s lives in slot s % depth.
 * A worker claims the lowest unclaimed step s once s < released + depth, i.e.
 * once the consumer has handed back step s - depth, fills the slot without
 * holding the lock, then marks it READY. The consumer waits for slot
 * next % depth to hold step `next` in state READY.
 *
 * Each worker keeps its own copy of the epoch permutation and recomputes it
 * when it claims a step of another epoch (n int32 per worker; one
 * rng_permutation per epoch per worker), so workers share nothing but the
 * ring. */
#include "loader.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY };

typedef struct {
    real *x;
    int32_t *y;
    long step;
    int state;
    int status;      /* 0, or -1: msg says what failed */
    char msg[512];
} Slot;

typedef struct {
    Loader *l;
    int32_t *perm;
    long perm_epoch;
    pthread_t tid;
    int started;
} Worker;

struct Loader {
    const Dataset *ds;
    int B, depth, n_workers, have_aug;
    int row0, rows;                    /* this rank's rows of each batch of B (loader_start_rows) */
    Augment aug;
    uint64_t seed;
    long per_epoch, total, sample;     /* sample = C*H*W reals */

    pthread_mutex_t mu;
    pthread_cond_t ready, space;
    Slot *slots;
    long next_claim;   /* lowest step no worker has taken */
    long released;     /* steps < released have been handed back by the consumer */
    long next_deliver; /* the step loader_next returns next */
    int held;          /* the consumer holds slot of step next_deliver - 1 (loader_next_ref) */
    int failed;        /* a worker hit an error: claim nothing more */
    atomic_int stop;
    char err[512];     /* sticky consumer-side error */

    double wait_s;
    long delivered;
    Worker *workers;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fill slot s with step `step`; runs without the lock. Returns 0, 1 if
 * abandoned because of stop, -1 with s->msg on a get() failure. */
static int fill(Worker *w, Slot *s, long step) {
    Loader *l = w->l;
    const Dataset *ds = l->ds;
    long epoch = step / l->per_epoch, pos = step % l->per_epoch;
    if (w->perm_epoch != epoch) {
        Rng r = rng_stream(l->seed, RNG_SHUFFLE, (uint64_t)epoch, 0);
        rng_permutation(&r, w->perm, ds->n);
        w->perm_epoch = epoch;
    }
    const int32_t *idx = w->perm + pos * l->B + l->row0;
    const Augment *aug = l->have_aug ? &l->aug : NULL;
    /* exactly dataset_batch's per-sample body, serially */
    for (int b = 0; b < l->rows; b++) {
        if (atomic_load_explicit(&l->stop, memory_order_relaxed)) return 1;
        Rng rng = rng_stream(l->seed, RNG_AUGMENT, (uint64_t)epoch, (uint64_t)(uint32_t)idx[b]);
        int32_t lab = 0;
        real *dst = s->x + (size_t)b * l->sample;
        if (ds->get(ds, idx[b], dst, &lab, aug, &rng) != 0) {
            char where[128];
            snprintf(where, sizeof where, "step %ld = epoch %ld, position %d of batch %ld", step, epoch, l->row0 + b,
                     pos);
            memcpy(s->msg, "loader: ", 9);
            dataset_sample_errf(ds, idx[b], where, s->msg + 8, sizeof s->msg - 8);
            return -1;
        }
        s->y[b] = lab;
    }
    return 0;
}

static void *worker_main(void *arg) {
    Worker *w = arg;
    Loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!atomic_load(&l->stop) && !l->failed && l->next_claim < l->total &&
               l->next_claim >= l->released + l->depth)
            pthread_cond_wait(&l->space, &l->mu);
        if (atomic_load(&l->stop) || l->failed || l->next_claim >= l->total) break;
        long step = l->next_claim++;
        Slot *s = &l->slots[step % l->depth];
        s->step = step;
        s->state = SLOT_FILLING;
        s->status = 0;
        s->msg[0] = '\0';
        pthread_mutex_unlock(&l->mu);

        int rc = fill(w, s, step);

        pthread_mutex_lock(&l->mu);
        if (rc == 1) break; /* stopping: the slot is never read */
        if (rc < 0) {
            s->status = -1;
            l->failed = 1;
            pthread_cond_broadcast(&l->space); /* idle workers: nothing more to claim */
        }
        s->state = SLOT_READY;
        pthread_cond_broadcast(&l->ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void release_locked(Loader *l) {
    if (!l->held) return;
    Slot *s = &l->slots[(l->next_deliver - 1) % l->depth];
    s->state = SLOT_FREE;
    l->released = l->next_deliver;
    l->held = 0;
    pthread_cond_broadcast(&l->space);
}

void loader_release(Loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    release_locked(l);
    pthread_mutex_unlock(&l->mu);
}

int loader_next_ref(Loader *l, const real **x, const int32_t **y, long *step) {
    if (!l) return -1;
    pthread_mutex_lock(&l->mu);
    release_locked(l);
    if (l->err[0]) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    if (l->next_deliver >= l->total) {
        pthread_mutex_unlock(&l->mu);
        return 1;
    }
    long want = l->next_deliver;
    Slot *s = &l->slots[want % l->depth];
    if (!(s->state == SLOT_READY && s->step == want)) {
        double t0 = now_s();
        while (!(s->state == SLOT_READY && s->step == want)) pthread_cond_wait(&l->ready, &l->mu);
        l->wait_s += now_s() - t0;
    }
    if (s->status != 0) {
        snprintf(l->err, sizeof l->err, "%s", s->msg);
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    l->next_deliver = want + 1;
    l->held = 1;
    l->delivered++;
    pthread_mutex_unlock(&l->mu);
    /* the slot is ours until released: the workers never touch a held slot */
    if (x) *x = s->x;
    if (y) *y = s->y;
    if (step) *step = want;
    return 0;
}

int loader_next(Loader *l, real *x, int32_t *y, long *step) {
    const real *sx;
    const int32_t *sy;
    int rc = loader_next_ref(l, &sx, &sy, step);
    if (rc != 0) return rc;
    if (x) memcpy(x, sx, (size_t)l->rows * (size_t)l->sample * sizeof *x);
    if (y) memcpy(y, sy, (size_t)l->rows * sizeof *y);
    loader_release(l);
    return 0;
}

const char *loader_error(const Loader *l) { return l ? l->err : "loader: NULL"; }

void loader_stats(const Loader *l, double *wait_seconds, long *delivered) {
    if (!l) return;
    pthread_mutex_lock((pthread_mutex_t *)&l->mu);
    if (wait_seconds) *wait_seconds = l->wait_s;
    if (delivered) *delivered = l->delivered;
    pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
}

static void free_loader(Loader *l) {
    if (l->slots) {
        for (int i = 0; i < l->depth; i++) {
            free(l->slots[i].x);
            free(l->slots[i].y);
        }
        free(l->slots);
    }
    if (l->workers) {
        for (int i = 0; i < l->n_workers; i++) free(l->workers[i].perm);
        free(l->workers);
    }
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->space);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void loader_stop(Loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    atomic_store(&l->stop, 1);
    pthread_cond_broadcast(&l->space);
    pthread_cond_broadcast(&l->ready);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_workers; i++)
        if (l->workers[i].started) pthread_join(l->workers[i].tid, NULL);
    free_loader(l);
}

Loader *loader_start(const Dataset *ds, int B, const Augment *aug, uint64_t seed, long start_step,
                     long total_steps, int n_workers, int depth, char *err, size_t errlen) {
    return loader_start_rows(ds, B, 0, B, aug, seed, start_step, total_steps, n_workers, depth, err, errlen);
}

Loader *loader_start_rows(const Dataset *ds, int B, int row0, int rows, const Augment *aug, uint64_t seed,
                          long start_step, long total_steps, int n_workers, int depth, char *err, size_t errlen) {
#define FAIL(...)                                              \
    do {                                                       \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
        goto fail;                                             \
    } while (0)
    Loader *l = NULL;
    if (err && errlen) err[0] = '\0';
    if (!ds || !ds->get) {
        if (err && errlen) snprintf(err, errlen, "loader: no dataset");
        return NULL;
    }
    if (B < 1 || ds->n / B < 1) {
        if (err && errlen)
            snprintf(err, errlen, "loader: batch size %d does not fit the %ld samples of %s", B, ds->n, ds->name);
        return NULL;
    }
    if (row0 < 0 || rows < 1 || row0 + rows > B) {
        if (err && errlen) snprintf(err, errlen, "loader: rows %d..%d are not within a batch of %d", row0, row0 + rows, B);
        return NULL;
    }
    if (ds->n > INT32_MAX) {
        if (err && errlen) snprintf(err, errlen, "loader: %s has %ld samples, more than int32 indices hold", ds->name, ds->n);
        return NULL;
    }
    if (n_workers == 0) n_workers = 1;
    if (n_workers < 1 || n_workers > 64 || depth < 1 || depth > 16 || start_step < 0 || total_steps < start_step) {
        if (err && errlen)
            snprintf(err, errlen, "loader: bad arguments (workers %d in 1..64, depth %d in 1..16, steps %ld..%ld)",
                     n_workers, depth, start_step, total_steps);
        return NULL;
    }
    l = calloc(1, sizeof *l);
    if (!l) {
        if (err && errlen) snprintf(err, errlen, "loader: out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->ready, NULL);
    pthread_cond_init(&l->space, NULL);
    atomic_init(&l->stop, 0);
    l->ds = ds;
    l->B = B;
    l->row0 = row0;
    l->rows = rows;
    l->depth = depth;
    l->n_workers = n_workers;
    if (aug) l->aug = *aug, l->have_aug = 1;
    l->seed = seed;
    l->per_epoch = ds->n / B;
    l->total = total_steps;
    l->sample = (long)ds->channels * ds->height * ds->width;
    l->next_claim = l->released = l->next_deliver = start_step;

    l->slots = calloc((size_t)depth, sizeof *l->slots);
    l->workers = calloc((size_t)n_workers, sizeof *l->workers);
    if (!l->slots || !l->workers) FAIL("loader: out of memory");
    for (int i = 0; i < depth; i++) {
        l->slots[i].x = malloc((size_t)rows * (size_t)l->sample * sizeof(real));
        l->slots[i].y = malloc((size_t)rows * sizeof(int32_t));
        l->slots[i].step = -1;
        if (!l->slots[i].x || !l->slots[i].y)
            FAIL("loader: out of memory for %d batches of %d x %ld values", depth, rows, l->sample);
    }
    for (int i = 0; i < n_workers; i++) {
        l->workers[i].l = l;
        l->workers[i].perm_epoch = -1;
        l->workers[i].perm = malloc((size_t)ds->n * sizeof(int32_t));
        if (!l->workers[i].perm) FAIL("loader: out of memory for the permutation of %ld samples", ds->n);
    }
    for (int i = 0; i < n_workers; i++) {
        int rc = pthread_create(&l->workers[i].tid, NULL, worker_main, &l->workers[i]);
        if (rc != 0) FAIL("loader: cannot start worker thread %d: %s", i, strerror(rc));
        l->workers[i].started = 1;
    }
    return l;
fail:
    if (l) loader_stop(l); /* joins whatever started, frees the rest */
    return NULL;
#undef FAIL
}
