/* The classification task (tasks/classify.h). */
#include "classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int max_batch, num_classes;
    size_t sample;       /* reals per image */
    real *x;             /* [max_batch, C, H, W] */
    int32_t *y;          /* [max_batch] */
} Classify;

static int cls_setup(Task *t, const Model *m, const Dataset *ds, int max_batch, char *err, size_t errlen) {
    Classify *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    t->state = s;
    s->max_batch = max_batch;
    s->num_classes = ds->num_classes;
    s->sample = (size_t)ds->channels * ds->height * ds->width;
    s->x = malloc((size_t)max_batch * s->sample * sizeof *s->x);
    s->y = malloc((size_t)max_batch * sizeof *s->y);
    if (s->x && s->y) return 0;
oom:
    snprintf(err, errlen, "out of memory for a batch of %d images", max_batch);
    return -1;
}

static void cls_release(Task *t) {
    Classify *s = t->state;
    if (!s) return;
    free(s->x);
    free(s->y);
    free(s);
    t->state = NULL;
}

static int cls_batch(Task *t, const BatchSource *src, char *err, size_t errlen) {
    Classify *s = t->state;
    if (src->loader) {
        long got = -1;
        if (loader_next(src->loader, s->x, s->y, &got) != 0 || got != src->step) {
            snprintf(err, errlen, "the background loader failed at step %ld: %s", src->step, loader_error(src->loader));
            return -1;
        }
        return 0;
    }
    return dataset_batch(src->ds, src->idx, src->n, s->x, s->y, src->aug, src->train, src->seed, src->epoch, err,
                         errlen);
}

static int cls_forward(Task *t, Model *m, int n, int train, double *loss, char *err, size_t errlen) {
    Classify *s = t->state;
    for (int i = 0; i < n; i++)
        if (s->y[i] < 0 || s->y[i] >= s->num_classes) {
            /* a wrong label is a bug in the data path, not something to train through */
            snprintf(err, errlen, "label %d of sample %d of the batch is outside [0, %d)", (int)s->y[i], i,
                     s->num_classes);
            return -1;
        }
    *loss = model_forward(m, s->x, s->y, n, train);
    return 0;
}

int classify_correct(const Model *m, const int32_t *labels, int n) { return model_correct(m, labels, n); }

static void cls_metric_add(Task *t, const Model *m, int n, TaskMetric *acc) {
    Classify *s = t->state;
    acc->sums[0] += classify_correct(m, s->y, n);
}

static void cls_metric_values(const TaskMetric *acc, double *values) {
    values[0] = 100.0 * acc->sums[0] / (double)acc->n;
}

const TaskKind TASK_CLASSIFY = {
    .name = "classification",
    .n_metrics = 1,
    .metric_names = {"top1"},
    .metric_units = {"percent"},
    .setup = cls_setup,
    .release = cls_release,
    .batch = cls_batch,
    .forward = cls_forward,
    .metric_add = cls_metric_add,
    .metric_values = cls_metric_values,
};

int classify_evaluate(Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *top1, double *loss,
                      char *err, size_t errlen) {
    Task t;
    if (batch > m->max_batch) batch = m->max_batch;
    if (task_setup(&t, &TASK_CLASSIFY, m, ds, batch, err, errlen)) {
        task_release(&t);
        return -1;
    }
    int rc = task_evaluate(&t, m, ds, n, batch, aug, top1, loss, err, errlen);
    task_release(&t);
    return rc;
}
