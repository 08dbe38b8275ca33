/* Precision schedules and cost counting (contract and formulas in precision.h). */
#include "precision.h"

#include <math.h>
#include <string.h>

static const double kPi = 3.14159265358979323846; /* rounds to numpy's np.pi */

/* numpy.rint in its default mode: nearest, ties to even. Written out rather
 * than calling rint() so that the schedule stays a pure function even if
 * something changes the floating-point rounding mode. */
static double round_half_even(double x) {
    double f = floor(x);
    double d = x - f;
    if (d > 0.5) return f + 1.0;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

long prec_cycle_length(const PrecSchedule *s) {
    if (s->kind != PREC_CYCLIC) return 0;
    /* Python's int((I - 4W) / N_cyc): true division, then truncation toward 0 */
    const int n = s->cycles > 0 ? s->cycles : 1;
    long p = (long)((double)(s->total_iters - 4 * s->cyclic_warmup) / (double)n);
    /* the reference would divide by zero here; b_min is the least surprising value */
    return p < 1 ? 1 : p;
}

/* one half-cosine ramp from lo (phase 0) towards hi (phase 1), in the
 * reference's association: lo + 0.5*(hi - lo)*(1 + cos(pi*phase + pi)) */
static double ramp(double lo, double hi, double phase) {
    return round_half_even(lo + 0.5 * (hi - lo) * (1.0 + cos(kPi * phase + kPi)));
}

PrecBits prec_at(const PrecSchedule *s, long iter) {
    PrecBits b;
    if (iter < 0) iter = 0;
    switch (s->kind) {
    case PREC_CYCLIC: {
        const long hold = 4 * s->cyclic_warmup;
        if (iter < hold) {
            b.bits = s->warmup_bits;
            b.grad_bits = s->warmup_grad_bits;
            break;
        }
        const long p = prec_cycle_length(s);
        /* (t % P) / P as Python computes it: integer remainder, float division */
        const double phase = (double)((iter - hold) % p) / (double)p;
        b.bits = ramp(s->bits_min, s->bits_max, phase);
        b.grad_bits = ramp(s->grad_min, s->grad_max, phase);
        break;
    }
    case PREC_FIXED:
        b.bits = s->bits_min;
        b.grad_bits = s->grad_min;
        break;
    case PREC_FULL:
    default:
        b.bits = 32.0;
        b.grad_bits = 32.0;
        break;
    }
    return b;
}

double prec_eval_bits(const PrecSchedule *s, const PrecEval *e, long iters_done) {
    if (e && e->kind == PREC_EVAL_FIXED) return e->bits;
    if (iters_done <= 0) {
        /* nothing has run yet: the value the schedule's state starts from */
        if (s->kind == PREC_CYCLIC) return s->warmup_bits;
        return prec_at(s, 0).bits;
    }
    return prec_at(s, iters_done - 1).bits;
}

static int within(double b, double lo, double hi) { return b >= lo && b <= hi; }

int prec_bits_within(const PrecSchedule *s, const PrecEval *e, double lo, double hi) {
    int ok;
    switch (s->kind) {
    case PREC_FULL: ok = within(32.0, lo, hi); break;
    case PREC_FIXED: ok = within(s->bits_min, lo, hi); break;
    default: /* the ramp's rounded values lie between its ends */
        ok = within(s->bits_min, lo, hi) && within(s->bits_max, lo, hi) &&
             (s->cyclic_warmup <= 0 || within(s->warmup_bits, lo, hi));
    }
    if (e && e->kind == PREC_EVAL_FIXED) ok = ok && within(e->bits, lo, hi);
    return ok;
}

/* 0 bits = not quantized = a full-precision GEMM operand */
static double effective_bits(double b) { return b == 0.0 ? 32.0 : b; }

double prec_cost_ratio(double bits, double grad_bits) {
    const double b = effective_bits(bits), g = effective_bits(grad_bits);
    return (b * b + 2.0 * b * g) / (3.0 * 32.0 * 32.0);
}

void prec_cost_add(PrecCostMean *a, double cr) {
    /* Kahan: the running sum reaches ~10^5 while each term is ~10^-2 */
    const double y = cr - a->comp;
    const double t = a->sum + y;
    a->comp = (t - a->sum) - y;
    a->sum = t;
    a->n++;
}

double prec_cost_mean(const PrecCostMean *a) { return a->n > 0 ? a->sum / (double)a->n : NAN; }

PrecMacs prec_weighted_macs(PrecMacs raw, int binary, double bits, double grad_bits) {
    if (!binary) return raw;
    const double b = effective_bits(bits), g = effective_bits(grad_bits);
    PrecMacs w;
    w.fwd = raw.fwd * (b * b / 1024.0);
    w.err = raw.err * (b * g / 1024.0);
    w.wgrad = raw.wgrad * (b * g / 1024.0);
    return w;
}

static int same_bits(PrecBits a, PrecBits b) { return a.bits == b.bits && a.grad_bits == b.grad_bits; }

/* End of the constant stretch of a cycle that starts at offset a (offsets
 * count from the end of the warm-up `hold`): the first offset in (a, limit)
 * whose widths differ from a's, else limit. Both widths are monotone over a
 * cycle, so "differs from a's" is false, then true: a bisection finds the
 * switch in log2(P) evaluations of prec_at itself, the very function the
 * training loop calls, so the boundaries are the loop's to the iteration. */
static long stretch_end(const PrecSchedule *s, long hold, long a, long limit) {
    const PrecBits first = prec_at(s, hold + a);
    long same = a, differs = limit; /* widths equal first's at `same`; `differs` is past the stretch */
    while (differs - same > 1) {
        const long mid = same + (differs - same) / 2;
        if (same_bits(prec_at(s, hold + mid), first)) same = mid;
        else differs = mid;
    }
    return differs;
}

static int tally_add(PrecTally *out, int *n, int cap, PrecBits b, long count) {
    if (count <= 0) return 0;
    if (*n >= cap) return -1;
    out[*n].b = b;
    out[*n].count = count;
    (*n)++;
    return 0;
}

int prec_tally(const PrecSchedule *s, long iters, PrecTally *out, int cap) {
    int n = 0;
    if (iters <= 0) return 0;
    if (s->kind != PREC_CYCLIC) return tally_add(out, &n, cap, prec_at(s, 0), iters) ? -1 : n;
    /* the warm-up: the first 4W iterations */
    const long hold = 4 * s->cyclic_warmup;
    const long warm = iters < hold ? iters : hold;
    PrecBits wb = {s->warmup_bits, s->warmup_grad_bits};
    if (tally_add(out, &n, cap, wb, warm)) return -1;
    const long rest = iters - (warm > 0 ? warm : 0);
    if (rest <= 0) return n;
    /* then `full` whole cycles of P and a partial one of `part`, which repeats
     * the start of a cycle (prec_at takes the offset modulo P) */
    const long p = prec_cycle_length(s);
    const long full = rest / p, part = rest % p;
    const long limit = full > 0 ? p : part;
    for (long a = 0, b; a < limit; a = b) {
        b = stretch_end(s, hold, a, limit);
        const long in_part = part > a ? (part < b ? part : b) - a : 0;
        if (tally_add(out, &n, cap, prec_at(s, hold + a), full * (b - a) + in_part)) return -1;
    }
    return n;
}

double prec_tally_cost_mean(const PrecTally *t, int n) {
    /* whole numerators, one division: no per-iteration rounding to carry */
    double num = 0.0, count = 0.0;
    for (int i = 0; i < n; i++) {
        const double b = effective_bits(t[i].b.bits), g = effective_bits(t[i].b.grad_bits);
        num += (double)t[i].count * (b * b + 2.0 * b * g);
        count += (double)t[i].count;
    }
    return count > 0 ? num / (3.0 * 32.0 * 32.0 * count) : NAN;
}

void prec_bit_shares(const PrecSchedule *s, long iters, double share[PREC_MAX_BITS + 1]) {
    for (int b = 0; b <= PREC_MAX_BITS; b++) share[b] = 0.0;
    if (iters <= 0) return;
    /* counts first, one division at the end: exact fractions of whole counts */
    long count[PREC_MAX_BITS + 1];
    memset(count, 0, sizeof count);
    PrecTally t[PREC_TALLY_MAX];
    const int n = prec_tally(s, iters, t, PREC_TALLY_MAX);
    if (n >= 0) {
        for (int i = 0; i < n; i++) {
            double v = round_half_even(t[i].b.bits);
            count[v < 0 ? 0 : v > PREC_MAX_BITS ? PREC_MAX_BITS : (int)v] += t[i].count;
        }
    } else {
        /* wider than any config allows: walk the iterations */
        for (long i = 0; i < iters; i++) {
            double v = round_half_even(prec_at(s, i).bits);
            count[v < 0 ? 0 : v > PREC_MAX_BITS ? PREC_MAX_BITS : (int)v]++;
        }
    }
    for (int b = 0; b <= PREC_MAX_BITS; b++) share[b] = (double)count[b] / (double)iters;
}
