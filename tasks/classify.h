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

/* The classification step on any model, for tools and tests: run the graph
 * on images [N, C, H, W] and return the mean softmax cross-entropy of output
 * 0 against labels, the softmax into probs [N, num_classes] (NAN when the run
 * fails, m->run_err, or a label is outside [0, num_classes)). */
double classify_forward(Model *m, const real *images, const int32_t *labels, int N, int train, real *probs);
/* backprop that loss (the mean over the batch): output 0's gradient, then the
 * whole graph (model_backward_outputs) */
void classify_backward(Model *m, const real *probs, const int32_t *labels, int N);
/* correct top-1 predictions of the last run's output 0 against labels */
int classify_correct(const Model *m, const int32_t *labels, int N);

#endif
