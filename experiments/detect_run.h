/* A detection run (issue 14): the binary Faster R-CNN of tasks/detect.h
 * trained on PASCAL VOC (data.dataset: voc, a VOCdevkit at data.path) or on
 * the synthetic stand-in (synth_voc: datasets/synth_voc.c writes a VOCdevkit
 * of data.synth_images images into data.path once), evaluated by VOC07 AP.
 *
 * What it writes beside the train/ and eval/ rows (train/loss = the total
 * detection loss, eval/top1 = mAP07 in percent):
 *   detect_train/   per step: rpn_cls rpn_box rcnn_cls rcnn_box rpn_prior
 *                   rpn_reg head_prior head_reg rpn_fg roi_fg
 *   detect_eval/    per evaluation: step map07 map_all map07_iou70 recall50
 *   ap/             the last evaluation per class: class n_gt n_det ap07 ap_all
 *   detections/     its detections: image class score x1 y1 x2 y2 (original
 *                   0-based inclusive pixels); detection_images/ id
 * (analysis/cbnn_voc_results turns the last two into the devkit's comp4 files.)
 * The checkpoint holds both graphs' tensors, the optimizer moments and the
 * loop's state; a rerun resumes from it bitwise. */
#ifndef CBNN_DETECT_RUN_H
#define CBNN_DETECT_RUN_H

#include <stdio.h>

#include "config.h"
#include "run_record.h"
#include "train_run.h"

/* 1 when c describes a detection run (model.arch frcnn_resnet18) */
int detect_config(const RunConfig *c);

/* Train and evaluate run `run_name` of c. Returns 0 (complete), 1 (stopped
 * on request, checkpoint written) or -1 with a message; res as train_run's. */
int detect_run(const RunConfig *c, const char *run_name, RunLog *log, const TrainControl *ctl, FILE *progress,
               TrainResult *res, char *err, size_t errlen);

#endif
