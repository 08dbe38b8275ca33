/* Everything a training run writes to its results file, in one place: the
 * train/ and eval/ rows (experiments/results_h5.h, one call per row), the
 * checkpoint (model tensors and the loop's state), the cost and summary
 * tables, and the run's end (its attributes and status). The loop
 * (train_run.c) and the driver (run_experiment.c) write through these only. */
#ifndef CBNN_RUN_RECORD_H
#define CBNN_RUN_RECORD_H

#include <stdint.h>

#include "cost.h"
#include "dataset.h"
#include "model.h"
#include "precision.h"
#include "results_h5.h"

typedef struct {
    /* percent, the task's metric 0, on the test set at the evaluation precision:
     * final_top1 of the final weights (final_test_top1), best_top1 the best
     * over the run's test evaluations (paper_best_top1: selected on test) */
    double final_top1, best_top1;
    double final_loss;             /* test loss of the final weights */
    /* the selection (issue 16; results/README.md): the checkpoint of the best
     * validation top-1 and its test top-1. selection 0: no validation split,
     * the selected checkpoint is the final one. */
    int selection;
    long selected_step;            /* 0 = the last iteration */
    double val_top1_at_selected, test_top1_at_selected;
    /* the test top-1 at the fixed precision eval_bits_fixed (has_fixed: cyclic runs) */
    int has_fixed;
    double eval_bits_fixed, final_top1_fixed, selected_top1_fixed;
    long val_split;                /* images held out for validation */
    long iterations;
    double wall_time_s;
    double images_per_s;           /* training throughput (train steps only) */
    double mean_cost_ratio;        /* CPT's cr averaged over the iterations (method.md 6.1) */
    double bit_macs;               /* bit-weighted training MACs of the run, fp32-MAC equivalents (6.3) */
    double fp32_macs;              /* the same run counted at full precision */
    /* the training arenas (model_train_bytes) of this run's model and of its
     * fp32 twin (the same architecture with model.conv fp32, train.memory
     * fast, planned at the same batch, never allocated); memory_lean, fp32_conv
     * as configured */
    double train_memory_bytes, train_memory_fp32_bytes;
    int memory_lean, fp32_conv;
    int status;                    /* 0 complete, 1 interrupted (SIGINT), -1 failed */
    long resumed_from;             /* step the run continued from (0 = it started fresh) */
} TrainResult;

/* The loop's own state beside the model's tensors: what a checkpoint keeps. */
typedef struct {
    long step;                     /* iterations done */
    double best, metric, loss;     /* best and last periodic evaluation (validation, or test without one) */
    double train_time;             /* seconds in training steps */
    double wall_before;            /* wall seconds of the earlier sessions */
    PrecCostMean cost_mean;
    /* flat copies for the checkpoint's arrays */
    double loop[8];
    int64_t counts[8];
    double *lc_flat;               /* [3 * n_layers]: the per-layer bit-weighted sums */
    /* the selected checkpoint (run_state_enable_selection; NULL: no validation
     * split): the weights of the first periodic evaluation with the best
     * validation top-1, and sel = {step, validation top-1, loss, bits} */
    real *sel_params, *sel_buffers;
    double sel[4];
} RunState;
enum { SEL_STEP, SEL_TOP1, SEL_LOSS, SEL_BITS };

int run_state_init(RunState *s, const Model *m);  /* best = -1, the rest 0; -1 when out of memory */
void run_state_free(RunState *s);
/* keep a selected checkpoint (a copy of m's parameters and buffers, saved in
 * each checkpoint); -1 when out of memory */
int run_state_enable_selection(RunState *s, const Model *m);
/* the model's parameters and buffers become the selected ones (best = the
 * periodic evaluation's top-1, at step after `step` iterations) */
void run_state_select(RunState *s, const Model *m, long step, double top1, double loss, double bits);

/* 1 = loaded into m, s and lc (step set), 0 = no checkpoint, -1 = error.
 * run_state_check then says whether it belongs to this run: 0 yes, -1 no. */
int run_checkpoint_load(RunLog *log, Model *m, RunState *s, LayerCost *lc, long *step, char *err, size_t errlen);
int run_state_check(const RunState *s, long step, uint64_t seed, long total, long per_epoch);
/* the state from its flat arrays (loop, counts, lc_flat) as a load leaves
 * them: a rank that received them from the one that read the checkpoint */
void run_state_unpack(RunState *s, const Model *m, LayerCost *lc);
/* write the checkpoint at s->step (s->loop/counts are filled from s here) */
int run_checkpoint_save(RunLog *log, Model *m, RunState *s, const LayerCost *lc, uint64_t seed, long per_epoch);

/* The run's end: mean cost ratio, the cost/ and summary/ tables, and, when
 * it completed, bit_macs, fp32_macs, images_per_s, peak_rss_bytes. 0 or -1. */
int run_record_results(RunLog *log, const Model *m, const LayerCost *lc, const TrainResult *res);
/* the same from summary rows and costs the caller assembled (a detector's two
 * graphs: the base's rows, then the head's per image) */
int run_record_results_rows(RunLog *log, const SummaryRow *rows, const LayerCost *lc, int n, const TrainResult *res);
/* Close the run: the data set's counters (ImageNet's skipped images and
 * libjpeg warnings), then status complete (rc 0, with the final and best
 * metric), interrupted (1) or failed (-1, with `message`). Frees log. */
int run_record_end(RunLog *log, int rc, const TrainResult *res, const char *message, const Dataset *train,
                   const Dataset *test);

#endif
