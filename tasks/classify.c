/* The classification task (tasks/classify.h). */
#include "classify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int max_batch, num_classes;
    size_t sample;       /* reals per image */
    real *x;             /* [max_batch, C, H, W] */
    int32_t *y;          /* [max_batch] */
    real *probs;         /* [max_batch, num_classes]: the softmax of the last forward (its backward reads it) */
    real *logits;        /* [max_batch, num_classes]: an eval forward run in pieces gathers its logits here */
    const real *last;    /* the logits of the last forward (the model's output, or logits) */
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
    s->probs = malloc((size_t)max_batch * s->num_classes * sizeof *s->probs);
    s->logits = malloc((size_t)max_batch * s->num_classes * sizeof *s->logits);
    if (s->x && s->y && s->probs && s->logits) return 0;
oom:
    snprintf(err, errlen, "out of memory for a batch of %d images", max_batch);
    return -1;
}

static void cls_release(Task *t) {
    Classify *s = t->state;
    if (!s) return;
    free(s->x);
    free(s->y);
    free(s->probs);
    free(s->logits);
    free(s);
    t->state = NULL;
}

/* a wrong label is a bug in the data path, not something to train through */
static int check_labels(const Classify *s, int n, char *err, size_t errlen) {
    const int bad = softmax_ce_bad_label(s->y, n, s->num_classes);
    if (bad < 0) return 0;
    snprintf(err, errlen, "label %d of sample %d of the batch is outside [0, %d)", (int)s->y[bad], bad,
             s->num_classes);
    return -1;
}

/* The labels are checked here, with the data, so that a rank of a run over
 * several (issue 15) learns of a bad one before the forward's collectives. */
static int cls_batch(Task *t, const BatchSource *src, char *err, size_t errlen) {
    Classify *s = t->state;
    if (src->loader) {
        long got = -1;
        if (loader_next(src->loader, s->x, s->y, &got) != 0 || got != src->step) {
            snprintf(err, errlen, "the background loader failed at step %ld: %s", src->step, loader_error(src->loader));
            return -1;
        }
        return check_labels(s, src->n, err, errlen);
    }
    if (dataset_batch(src->ds, src->idx, src->n, s->x, s->y, src->aug, src->train, src->seed, src->epoch, err,
                      errlen))
        return -1;
    return check_labels(s, src->n, err, errlen);
}

static void cls_blank(Task *t, int n) {
    Classify *s = t->state;
    memset(s->x, 0, (size_t)n * s->sample * sizeof *s->x);
    memset(s->y, 0, (size_t)n * sizeof *s->y);
}

double classify_forward(Model *m, const real *images, const int32_t *labels, int N, int train, real *probs) {
    if (model_run(m, images, N, train)) return NAN;
    return softmax_ce_forward(probs, model_output(m, 0), labels, N, m->num_classes);
}

void classify_backward(Model *m, const real *probs, const int32_t *labels, int N) {
    softmax_ce_backward(model_output_grad(m, 0), probs, labels, N, m->num_classes, (real)1);
    model_backward_outputs(m);
}

static int count_correct(const real *logits, const int32_t *labels, int N, int K) {
    int correct = 0;
    for (int n = 0; n < N; n++) {
        const real *z = logits + (size_t)n * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        correct += best == labels[n];
    }
    return correct;
}

int classify_correct(const Model *m, const int32_t *labels, int N) {
    return count_correct(model_output(m, 0), labels, N, m->num_classes);
}

/* An eval batch larger than the model's rows (a rank of a run over several
 * ranks evaluates the one-process batches on a model allocated for its share
 * of the training batch): the graph in pieces, the logits gathered. */
static int run_pieces(Classify *s, Model *m, int n, char *err, size_t errlen) {
    const int K = s->num_classes;
    for (int c0 = 0; c0 < n; c0 += m->max_batch) {
        const int nc = n - c0 < m->max_batch ? n - c0 : m->max_batch;
        if (model_run(m, s->x + (size_t)c0 * s->sample, nc, 0)) {
            snprintf(err, errlen, "%s", m->run_err);
            return -1;
        }
        memcpy(s->logits + (size_t)c0 * K, model_output(m, 0), (size_t)nc * K * sizeof *s->logits);
    }
    s->last = s->logits;
    return 0;
}

/* the graph, then the loss; in training also the logits' gradient (the loop
 * then runs model_backward_outputs) */
static int cls_forward(Task *t, Model *m, int n, int train, double *loss, char *err, size_t errlen) {
    Classify *s = t->state;
    if (check_labels(s, n, err, errlen)) return -1;
    if (!train && n > m->max_batch) {
        if (run_pieces(s, m, n, err, errlen)) return -1;
    } else {
        if (model_run(m, s->x, n, train)) {
            snprintf(err, errlen, "%s", m->run_err);
            return -1;
        }
        s->last = model_output(m, 0);
    }
    /* training with a shard plan: the mean over the global batch, per shard
     * and added in the plan's tree (the same value on every rank); eval
     * batches are whole on one rank and take the plain loss */
    const ShardPlan *sp = train && !shard_plan_trivial(&m->shard) ? &m->shard : NULL;
    *loss = softmax_ce_forward_sp(s->probs, s->last, s->y, n, s->num_classes, sp);
    if (train) softmax_ce_backward_sp(model_output_grad(m, 0), s->probs, s->y, n, s->num_classes, (real)1, sp);
    return 0;
}

static void cls_metric_add(Task *t, const Model *m, int n, TaskMetric *acc) {
    Classify *s = t->state;
    (void)m;
    acc->sums[0] += count_correct(s->last, s->y, n, s->num_classes);
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
    .blank = cls_blank,
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
