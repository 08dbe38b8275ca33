/* The task-generic pieces: setup and evaluation over a dataset. */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int task_setup(Task *t, const TaskKind *kind, const Model *m, const Dataset *ds, int max_batch, char *err,
               size_t errlen) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->max_batch = max_batch;
    return kind->setup(t, m, ds, max_batch, err, errlen);
}

void task_release(Task *t) {
    if (t->kind && t->kind->release) t->kind->release(t);
    memset(t, 0, sizeof *t);
}

int task_evaluate(Task *t, Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *values,
                  double *loss, char *err, size_t errlen) {
    if (n <= 0 || n > ds->n) n = ds->n;
    if (batch > m->max_batch) batch = m->max_batch;
    if (batch < 1) batch = 1;
    int32_t *idx = malloc((size_t)batch * sizeof *idx);
    TaskMetric acc;
    memset(&acc, 0, sizeof acc);
    int rc = idx ? 0 : -1;
    if (rc) snprintf(err, errlen, "out of memory for an evaluation batch of %d", batch);
    for (long start = 0; start < n && rc == 0; start += batch) {
        const int B = (int)((n - start) < batch ? (n - start) : batch);
        for (int b = 0; b < B; b++) idx[b] = (int32_t)(start + b);
        const BatchSource src = {.ds = ds, .idx = idx, .n = B, .aug = aug, .train = 0};
        double l = 0.0;
        rc = t->kind->batch(t, &src, err, errlen);
        if (rc == 0) rc = t->kind->forward(t, m, B, 0, &l, err, errlen);
        if (rc) break;
        acc.loss_sum += l * B;
        acc.n += B;
        t->kind->metric_add(t, m, B, &acc);
    }
    /* over the n samples asked for, as before: a failed batch leaves numbers
     * nobody reads (rc says so) */
    acc.n = n;
    t->kind->metric_values(&acc, values);
    *loss = acc.loss_sum / (double)n;
    free(idx);
    return rc;
}

/* One evaluation batch's numbers, as task_evaluate adds them: its mean loss
 * and size, its metric sums, and whether it failed. Doubles throughout, so
 * that the ranks gather one array. */
enum { EV_LOSS, EV_N, EV_FAIL, EV_SUMS, EV_LEN = EV_SUMS + TASK_MAX_METRICS };

/* batch k = [k*batch, min(n, (k+1)*batch)) into rec[EV_LEN]; -1 with err */
static int eval_one(Task *t, Model *m, const Dataset *ds, long n, int batch, long k, const Augment *aug,
                    int32_t *idx, double *rec, char *err, size_t errlen) {
    const long start = k * batch;
    const int B = (int)((n - start) < batch ? (n - start) : batch);
    for (int b = 0; b < B; b++) idx[b] = (int32_t)(start + b);
    const BatchSource src = {.ds = ds, .idx = idx, .n = B, .aug = aug, .train = 0};
    double l = 0.0;
    int rc = t->kind->batch(t, &src, err, errlen);
    if (rc == 0) rc = t->kind->forward(t, m, B, 0, &l, err, errlen);
    TaskMetric one;
    memset(&one, 0, sizeof one);
    if (rc == 0) t->kind->metric_add(t, m, B, &one);
    rec[EV_LOSS] = l;
    rec[EV_N] = B;
    rec[EV_FAIL] = rc != 0;
    for (int j = 0; j < TASK_MAX_METRICS; j++) rec[EV_SUMS + j] = one.sums[j];
    return rc;
}

/* every rank's message, gathered when one failed: the first failing rank's
 * goes into err on every rank */
static void eval_fail_message(const DistComm *g, int failed_here, char *err, size_t errlen) {
    enum { MSG = 400 };
    char mine[MSG] = "", *all = malloc((size_t)g->size * MSG);
    if (failed_here) snprintf(mine, sizeof mine, "%s", err);
    if (!all) dist_abort(g, 3); /* the others are in the gather: no way to leave it alone */
    dist_allgather(g, mine, MSG, all);
    for (int q = 0; q < g->size; q++)
        if (all[(size_t)q * MSG]) {
            snprintf(err, errlen, "evaluation on rank %d of the run: %.*s", q, MSG, all + (size_t)q * MSG);
            break;
        }
    free(all);
}

int task_evaluate_group(Task *t, Model *m, const Dataset *ds, long n, int batch, const Augment *aug,
                        const DistComm *group, double *values, double *loss, char *err, size_t errlen) {
    if (!group || group->size <= 1) return task_evaluate(t, m, ds, n, batch, aug, values, loss, err, errlen);
    const int R = group->size, me = group->rank;
    if (n <= 0 || n > ds->n) n = ds->n;
    if (batch > t->max_batch) batch = t->max_batch;
    if (batch < 1) batch = 1;
    const long nb = (n + batch - 1) / batch, slots = (nb + R - 1) / R;
    /* the allocations are the same on every rank; one that fails still takes
     * part in the gathers with its batches marked failed */
    int32_t *idx = malloc((size_t)batch * sizeof *idx);
    double *mine = calloc((size_t)(slots ? slots : 1) * EV_LEN, sizeof *mine);
    double *all = malloc((size_t)R * (size_t)(slots ? slots : 1) * EV_LEN * sizeof *all);
    int failed = 0;
    if (!idx || !mine || !all) {
        snprintf(err, errlen, "out of memory for an evaluation batch of %d", batch);
        failed = 1;
    }
    for (long k = me, s = 0; k < nb && !failed; k += R, s++)
        failed = eval_one(t, m, ds, n, batch, k, aug, idx, mine + s * EV_LEN, err, errlen) != 0;
    int any = dist_any(group, failed);
    if (!any) {
        dist_allgather(group, mine, (size_t)slots * EV_LEN * sizeof *mine, all);
        TaskMetric acc;
        memset(&acc, 0, sizeof acc);
        /* batch k lives on rank k % R in slot k / R: added in batch order,
         * as task_evaluate adds them */
        for (long k = 0; k < nb; k++) {
            const double *rec = all + ((size_t)(k % R) * slots + (size_t)(k / R)) * EV_LEN;
            acc.loss_sum += rec[EV_LOSS] * (int)rec[EV_N];
            for (int j = 0; j < TASK_MAX_METRICS; j++) acc.sums[j] += rec[EV_SUMS + j];
        }
        acc.n = n;
        t->kind->metric_values(&acc, values);
        *loss = acc.loss_sum / (double)n;
    } else {
        eval_fail_message(group, failed, err, errlen);
    }
    free(idx);
    free(mine);
    free(all);
    return any ? -1 : 0;
}
