/* The task-generic pieces: setup and evaluation over a dataset. */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int task_setup(Task *t, const TaskKind *kind, const Model *m, const Dataset *ds, int max_batch, char *err,
               size_t errlen) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
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
