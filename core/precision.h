/* Precision schedules, evaluation precision and training-cost counting, as
 * pure functions of the 0-based iteration index (method.md 2, 5.4, 6).
 *
 * The reference code keeps the bits in global state (args.num_bits), set at the
 * start of every iteration; here the same values are recomputed from the
 * iteration, so a resumed run, a test and the training loop agree without
 * carrying state around (the style of lr_schedule.h).
 *
 * cyclic (E1, CPT's cyclic_adjust_precision):
 *     P      = (long)((I - 4W) / N_cyc)               truncated; cycle length in iterations
 *     t      = i - 4W                                 only for i >= 4W
 *     phase  = (t mod P) / P                          in [0, 1)
 *     b(i)   = rint(b_min + 0.5*(b_max - b_min)*(1 + cos(pi*phase + pi)))   rint: half to even
 *     g(i)   = the same with g_min, g_max
 *   For i < 4W the bits are warmup_bits / warmup_grad_bits (the reference's
 *   --num_bits / --num_grad_bits, default 0 = no k-bit quantization). The
 *   I - N_cyc*P iterations left over by the truncation start a partial cycle
 *   at b_min. A cycle shorter than one iteration (P < 1, which the config
 *   layer rejects when the total is known) is treated as P = 1: b_min always.
 * fixed: bits and grad bits constant.
 * full:  32 and 32.
 * Bits are doubles (2.0, 3.0, ...) because the reference uses them as floats
 * (2.**k); they are always whole numbers here. */
#ifndef CBNN_PRECISION_H
#define CBNN_PRECISION_H


#define PREC_MAX_BITS 32

typedef enum { PREC_FULL = 0, PREC_FIXED, PREC_CYCLIC } PrecKind;

typedef struct {
    PrecKind kind;
    double bits_min, bits_max;          /* cyclic: b_min, b_max; fixed: bits_min is the value */
    double grad_min, grad_max;          /* cyclic: g_min, g_max; fixed: grad_min is the value */
    int cycles;                         /* N_cyc (cyclic) */
    long total_iters;                   /* I (cyclic) */
    long cyclic_warmup;                 /* W: the first 4W iterations run at the warm-up bits (cyclic) */
    double warmup_bits, warmup_grad_bits; /* the reference's --num_bits, --num_grad_bits (0 = none) */
} PrecSchedule;

typedef struct {
    double bits, grad_bits;
} PrecBits;

/* Bits of iteration `iter` (0-based; iter < 0 counts as 0). */
PrecBits prec_at(const PrecSchedule *s, long iter);
/* P of the cyclic schedule in iterations (at least 1); 0 for fixed and full. */
long prec_cycle_length(const PrecSchedule *s);

/* ---- evaluation precision (method.md 5.4) ----
 * faithful: the bits the schedule gave the last training iteration before the
 *   evaluation, i.e. prec_at(iters_done - 1): the reference evaluates with
 *   whatever args.num_bits the last iteration left behind (2 bits at the end
 *   of the CIFAR README run, 6 at the end of the ImageNet one). Before any
 *   iteration (iters_done <= 0) that is the state the schedule starts from:
 *   warmup_bits for cyclic, the constant for fixed and full.
 * fixed: `bits`, whatever the schedule did. */
typedef enum { PREC_EVAL_FAITHFUL = 0, PREC_EVAL_FIXED } PrecEvalKind;

typedef struct {
    PrecEvalKind kind;
    double bits;                        /* PREC_EVAL_FIXED only */
} PrecEval;

double prec_eval_bits(const PrecSchedule *s, const PrecEval *e, long iters_done);

/* 1 if every iteration's bits, and every evaluation's after at least one
 * iteration (prec_eval_bits with iters_done >= 1), lie in [lo, hi]. The
 * training loop asks it for [1, 8] to let binary convs save 8-bit codes. */
int prec_bits_within(const PrecSchedule *s, const PrecEval *e, double lo, double hi);

/* ---- cost (method.md 6, E12) ----
 * cr(b, g) = (b*b + 2*b*g) / (3*32*32): forward GEMM at b x b bits, error
 * back-prop and weight-gradient GEMMs at b x g bits, as a fraction of an fp32
 * step. A width of 0 (no k-bit quantization: the reference's warm-up state) is
 * counted as 32 bits, since those GEMMs then run at full precision; the
 * reference code would count it as 0, which no hardware could achieve. */
double prec_cost_ratio(double bits, double grad_bits);

/* Running mean of cr over iterations, compensated (Kahan) so that 10^7 small
 * terms keep every digit that matters. Zero-initialise, then add. */
typedef struct {
    long n;
    double sum, comp;
} PrecCostMean;

void prec_cost_add(PrecCostMean *a, double cr);
double prec_cost_mean(const PrecCostMean *a); /* NaN before the first add */

/* Bit-weighted MACs of one layer for one iteration (method.md 6.3), in fp32-MAC
 * equivalents. Given the layer's raw MAC counts of the three GEMMs:
 *   binary conv: forward * b*b/1024 (weights and activations both at b bits),
 *                error back-prop * b*g/1024, weight gradient * b*g/1024
 *   fp32 layer:  weight 1.0 for all three (nothing of it is quantized)
 * with 0 bits counted as 32, as in prec_cost_ratio. */
typedef struct {
    double fwd, err, wgrad;
} PrecMacs;

PrecMacs prec_weighted_macs(PrecMacs raw, int binary, double bits, double grad_bits);

/* ---- closed-form totals over a run ----
 * The iterations [0, iters) grouped by their (bits, grad_bits): one entry per
 * constant stretch of the schedule, each with how many iterations it covers
 * (the warm-up; then each stretch of a cycle, counted once per whole cycle
 * plus its overlap with the partial cycle at the end). Sums over a run are
 * then a few multiplications instead of a loop over its iterations, which at
 * 10^12 iterations would never end (--dry-run). The entries are the same as
 * grouping prec_at(s, i) for every i: within one cycle the rounded ramp is
 * monotone in the iteration (rint and cos(pi*phase + pi) on [0, 1) are), so
 * each stretch's end is found by bisection on prec_at itself. Entries with a
 * count of 0 are left out; counts sum to iters (0 entries when iters <= 0).
 * A schedule built from a config (widths in [0, 32]) has at most
 * PREC_TALLY_MAX entries; returns the number written, or -1 if `cap` was too
 * small (a hand-built schedule with wider ranges). */
typedef struct {
    PrecBits b;
    long count;
} PrecTally;

#define PREC_TALLY_MAX (2 * PREC_MAX_BITS + 2)

int prec_tally(const PrecSchedule *s, long iters, PrecTally *out, int cap);

/* Mean of cr over the iterations of a tally: sum count * (b*b + 2*b*g) / 3072
 * over the entries, divided by the total count once (NaN for an empty tally).
 * With whole widths every product and sum is an exact integer in a double
 * (counts below 2^40), so this is the correctly rounded mean; the per-
 * iteration Kahan mean (prec_cost_add) of the same iterations agrees with it
 * to within float rounding (a few units in the last place), not bitwise. */
double prec_tally_cost_mean(const PrecTally *t, int n);

/* Fraction of the iterations [0, iters) spent at each bit width (forward bits,
 * rounded to a whole number and clamped to 0..PREC_MAX_BITS):
 * share[b] for b = 0..PREC_MAX_BITS, summing to 1 (all 0 when iters <= 0). */
void prec_bit_shares(const PrecSchedule *s, long iters, double share[PREC_MAX_BITS + 1]);


#endif
