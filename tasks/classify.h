/* Classification: a batch is images and labels, the loss is softmax
 * cross-entropy on the model's first output (the logits), the metric is
 * top-1 accuracy in percent (the results' train/top1 and eval/top1). */
#ifndef CBNN_CLASSIFY_H
#define CBNN_CLASSIFY_H

#include "task.h"

extern const TaskKind TASK_CLASSIFY;

/* Top-1 (percent) and mean loss of m on the first n samples of ds (n <= 0:
 * all), in eval mode: task_evaluate with a classification task of its own.
 * 0, or -1 with the message in err. */
int classify_evaluate(Model *m, const Dataset *ds, long n, int batch, const Augment *aug, double *top1, double *loss,
                      char *err, size_t errlen);

/* correct top-1 predictions of the model's logits (output 0) against labels */
int classify_correct(const Model *m, const int32_t *labels, int n);

#endif
