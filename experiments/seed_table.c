/* The statistics over seeds of an experiment (experiments/seed_table.h):
 * group the runs of e by configuration, summarise each metric over the
 * complete runs, pair each configuration with compare_to by seed, write the
 * rows to /stats and print them. */
#include "seed_table.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define LEVEL 0.95

/* The run attributes summarised, in the order of /stats's rows. The last two
 * exist for cyclic runs only (NaN otherwise). */
enum { M_SEL, M_FINAL, M_PAPER, M_SEL_FIXED, M_FINAL_FIXED, N_METRICS };
static const char *const METRIC_NAME[N_METRICS] = {"test_top1_at_selected", "final_test_top1", "paper_best_top1",
                                                   "test_top1_at_selected_fixed", "final_test_top1_fixed"};

/* What the table needs of one run of e. */
typedef struct {
    int complete;
    uint64_t seed;           /* train.seed of its configuration: the key of the pairing */
    double v[N_METRICS];
    double eval_bits_fixed;
} RunVals;

/* A configuration: its runs (indices into e->runs) and its rows' statistics. */
typedef struct {
    char name[CFG_RUN_NAME];
    int *runs, nruns;
    int n_complete;
    int has[N_METRICS];      /* a row for the metric (the fixed ones: some complete run has them) */
    SeedStats s[N_METRICS];
    PairedStats p[N_METRICS];
    double eval_bits_fixed;  /* of its first complete cyclic run, for the printed label */
} Group;

static double metric_of(const RunInfo *ri, int m) {
    switch (m) {
    case M_SEL: return ri->test_top1_at_selected;
    case M_FINAL: return ri->final_top1;
    case M_PAPER: return ri->best_top1;
    case M_SEL_FIXED: return ri->test_top1_at_selected_fixed;
    default: return ri->final_test_top1_fixed;
    }
}

/* The configurations of e in the order they first appear ("" -> e's name).
 * Returns the number of groups, or -1 when out of memory (nothing left
 * allocated). */
static int make_groups(const ExperimentConfig *e, Group *g) {
    int ng = 0;
    for (int i = 0; i < e->n_runs; i++) {
        char name[CFG_RUN_NAME];
        stats_group_name(e->runs[i].name, name, sizeof name);
        if (!name[0]) snprintf(name, sizeof name, "%s", e->name);
        int k = 0;
        while (k < ng && strcmp(g[k].name, name)) k++;
        if (k == ng) {
            memset(&g[ng], 0, sizeof g[ng]);
            snprintf(g[ng].name, sizeof g[ng].name, "%s", name);
            g[ng].eval_bits_fixed = NAN;
            if (!(g[ng].runs = malloc(sizeof *g[ng].runs * (size_t)e->n_runs))) {
                for (int j = 0; j < ng; j++) free(g[j].runs);
                return -1;
            }
            ng++;
        }
        g[k].runs[g[k].nruns++] = i;
    }
    return ng;
}

/* The reference's value for metric m on a run. A configuration evaluated at
 * fixed bits is compared with the reference's own fixed-bits value; a
 * reference that is not cyclic has none, and its evaluation precision is
 * already fixed, so its plain value stands in. */
static double reference_value(const RunVals *r, int m) {
    if (m >= M_SEL_FIXED && isnan(r->v[m]) && isnan(r->eval_bits_fixed)) return r->v[m - M_SEL_FIXED + M_SEL];
    return r->v[m];
}

/* Scratch arrays of n_runs values, allocated once. */
typedef struct {
    double *x, *a, *b;
} Scratch;

/* d = this minus the reference over the seeds both have complete */
static void pair_with(const Group *g, const Group *ref, const RunVals *rv, int m, Scratch *w, PairedStats *out) {
    int k = 0;
    for (int i = 0; i < g->nruns; i++) {
        const RunVals *x = &rv[g->runs[i]];
        if (!x->complete || !isfinite(x->v[m])) continue;
        for (int j = 0; j < ref->nruns; j++) {
            const RunVals *y = &rv[ref->runs[j]];
            if (y->seed != x->seed || !y->complete) continue;
            const double yv = reference_value(y, m);
            if (isfinite(yv)) {
                w->a[k] = x->v[m];
                w->b[k] = yv;
                k++;
            }
            break; /* the first complete run of that seed is the partner */
        }
    }
    stats_paired(w->a, w->b, k, LEVEL, out);
}

static void summarise(Group *g, const Group *ref, const RunVals *rv, Scratch *w) {
    for (int i = 0; i < g->nruns; i++) {
        const RunVals *r = &rv[g->runs[i]];
        g->n_complete += r->complete;
        if (r->complete && isnan(g->eval_bits_fixed) && isfinite(r->eval_bits_fixed))
            g->eval_bits_fixed = r->eval_bits_fixed;
    }
    for (int m = 0; m < N_METRICS; m++) {
        g->has[m] = m < M_SEL_FIXED;
        for (int i = 0; i < g->nruns; i++) {
            const RunVals *r = &rv[g->runs[i]];
            w->x[i] = r->complete ? r->v[m] : NAN;
            g->has[m] |= isfinite(w->x[i]);
        }
        stats_summary(w->x, g->nruns, LEVEL, &g->s[m]);
        if (ref && ref != g) pair_with(g, ref, rv, m, w, &g->p[m]);
        else stats_paired(NULL, NULL, 0, LEVEL, &g->p[m]);
    }
}

/* ---------------------------------------------------------------- /stats */

static int write_stats(ResultsFile *f, const ExperimentConfig *e, const Group *g, int ng, int n_complete) {
    long nrows = 0;
    for (int k = 0; k < ng; k++)
        for (int m = 0; m < N_METRICS; m++) nrows += g[k].has[m];
    const size_t n = (size_t)nrows + 1;
    const char **config = calloc(n, sizeof *config), **metric = calloc(n, sizeof *metric),
               **reference = calloc(n, sizeof *reference);
    int64_t *cnt = calloc(n, sizeof *cnt), *pairs = calloc(n, sizeof *pairs);
    double *col[10];
    int ok = config && metric && reference && cnt && pairs;
    for (int c = 0; c < 10; c++) ok &= (col[c] = calloc(n, sizeof(double))) != NULL;
    long r = 0;
    for (int k = 0; ok && k < ng; k++) {
        const int is_ref = !strcmp(g[k].name, e->compare_to);
        for (int m = 0; m < N_METRICS; m++) {
            if (!g[k].has[m]) continue;
            const SeedStats *s = &g[k].s[m];
            const PairedStats *p = &g[k].p[m];
            config[r] = g[k].name;
            metric[r] = METRIC_NAME[m];
            reference[r] = is_ref ? "" : e->compare_to;
            cnt[r] = s->n;
            pairs[r] = p->n;
            const double v[10] = {s->mean, s->sd, s->ci_lo, s->ci_hi, s->olympic_mean,
                                  p->mean_diff, p->ci_lo, p->ci_hi, p->t, p->p_two_sided};
            for (int c = 0; c < 10; c++) col[c][r] = v[c];
            r++;
        }
    }
    int rc = -1;
    if (ok) {
        const ResultsColumn cols[] = {
            {"config", RCOL_STRING, "", config},           {"metric", RCOL_STRING, "", metric},
            {"n", RCOL_INT64, "runs", cnt},                {"mean", RCOL_FLOAT64, "percent", col[0]},
            {"sd", RCOL_FLOAT64, "percent", col[1]},       {"ci_lo", RCOL_FLOAT64, "percent", col[2]},
            {"ci_hi", RCOL_FLOAT64, "percent", col[3]},    {"olympic_mean", RCOL_FLOAT64, "percent", col[4]},
            {"reference", RCOL_STRING, "", reference},     {"pairs", RCOL_INT64, "seeds", pairs},
            {"diff_mean", RCOL_FLOAT64, "percent", col[5]}, {"diff_ci_lo", RCOL_FLOAT64, "percent", col[6]},
            {"diff_ci_hi", RCOL_FLOAT64, "percent", col[7]}, {"t", RCOL_FLOAT64, "", col[8]},
            {"p", RCOL_FLOAT64, "", col[9]},
        };
        const ResultsAttr attrs[] = {{"level", LEVEL, NULL}, {"compare_to", 0, e->compare_to},
                                     {"n_complete", n_complete, NULL}};
        /* a file another session holds (a --max-runs job's view of it) is
         * only read: the table is printed, the session that writes it
         * writes /stats */
        rc = results_is_readonly(f) ? 0
                                    : results_table(f, "stats", nrows, cols, (int)(sizeof cols / sizeof cols[0]),
                                                    attrs, 3);
    }
    free(config), free(metric), free(reference), free(cnt), free(pairs);
    for (int c = 0; c < 10; c++) free(col[c]);
    return ok ? rc : -2;
}

/* ---------------------------------------------------------------- printing */

#define NAME_W_MAX 40
#define DASH "\xe2\x80\x93" /* – */
#define PM "\xc2\xb1"       /* ± */

/* characters, not bytes: the cells hold ± and – */
static int display_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* append s to line, padded with spaces to w characters (right-aligned when right) */
static void put(char *line, size_t cap, const char *s, int w, int right) {
    size_t o = strlen(line);
    const int pad = w - display_width(s);
    if (right)
        for (int i = 0; i < pad && o + 1 < cap; i++) line[o++] = ' ';
    o += (size_t)snprintf(line + o, o < cap ? cap - o : 0, "%s", s);
    if (o >= cap) return;
    if (!right)
        for (int i = 0; i < pad && o + 1 < cap; i++) line[o++] = ' ';
    line[o] = 0;
}

static const char *mean_sd(char *b, size_t cap, const SeedStats *s) {
    if (s->n == 0 || !isfinite(s->mean)) snprintf(b, cap, DASH);
    else if (s->n == 1 || !isfinite(s->sd)) snprintf(b, cap, "%.2f", s->mean);
    else snprintf(b, cap, "%.2f " PM " %.2f", s->mean, s->sd);
    return b;
}

static const char *interval(char *b, size_t cap, double lo, double hi, const char *fmt) {
    char f[32];
    if (!isfinite(lo) || !isfinite(hi)) snprintf(b, cap, DASH);
    else snprintf(f, sizeof f, "[%s, %s]", fmt, fmt), snprintf(b, cap, f, lo, hi);
    return b;
}

static const char *diff_cell(char *b, size_t cap, const PairedStats *p, int n) {
    char ci[64];
    if (p->n == 0) return snprintf(b, cap, DASH), b;
    int o = snprintf(b, cap, "%+.2f", p->mean_diff);
    if (p->n >= 2 && o > 0 && (size_t)o < cap)
        o += snprintf(b + o, cap - (size_t)o, " %s", interval(ci, sizeof ci, p->ci_lo, p->ci_hi, "%+.2f"));
    /* fewer pairs than values: some seed has no complete partner */
    if (p->n != n && o > 0 && (size_t)o < cap)
        snprintf(b + o, cap - (size_t)o, " (%d pair%s)", p->n, p->n == 1 ? "" : "s");
    return b;
}

static const char *p_cell(char *b, size_t cap, double p) {
    if (!isfinite(p)) snprintf(b, cap, DASH);
    else if (p >= 0.001) snprintf(b, cap, "%.3f", p);
    else snprintf(b, cap, "%.1e", p);
    return b;
}

/* the label of a cyclic configuration's second line: the same at fixed bits */
static const char *fixed_label(char *b, size_t cap, const Group *g) {
    if (isfinite(g->eval_bits_fixed)) snprintf(b, cap, "  at fixed %g bits", g->eval_bits_fixed);
    else snprintf(b, cap, "  at fixed bits");
    return b;
}

static int has_fixed(const Group *g) {
    return g->has[M_SEL_FIXED] || g->has[M_FINAL_FIXED];
}

enum { W_N = 3, W_MSD = 15, W_CI = 16, W_DIFF = 30, W_P = 7, W_FIN = 15 };

static void print_row(FILE *out, const char *label, int name_w, const Group *g, int m_sel, int m_fin, int m_paper,
                      int compare) {
    char line[512] = "", cell[128], nb[16];
    char name[NAME_W_MAX + 8];
    if ((int)strlen(label) > name_w) snprintf(name, sizeof name, "%.*s" "\xe2\x80\xa6", name_w - 1, label);
    else snprintf(name, sizeof name, "%s", label);
    const SeedStats *s = &g->s[m_sel];
    put(line, sizeof line, name, name_w, 0);
    snprintf(nb, sizeof nb, "%d", s->n);
    put(line, sizeof line, nb, W_N + 1, 1);
    put(line, sizeof line, "  ", 2, 0);
    put(line, sizeof line, mean_sd(cell, sizeof cell, s), W_MSD, 0);
    put(line, sizeof line, " ", 1, 0);
    put(line, sizeof line, interval(cell, sizeof cell, s->ci_lo, s->ci_hi, "%.2f"), W_CI, 0);
    if (compare) {
        put(line, sizeof line, " ", 1, 0);
        if (compare < 0) put(line, sizeof line, "(reference)", W_DIFF, 0);
        else put(line, sizeof line, diff_cell(cell, sizeof cell, &g->p[m_sel], s->n), W_DIFF, 0);
        put(line, sizeof line, " ", 1, 0);
        put(line, sizeof line, compare < 0 ? DASH : p_cell(cell, sizeof cell, g->p[m_sel].p_two_sided), W_P, 0);
    }
    put(line, sizeof line, " ", 1, 0);
    put(line, sizeof line, mean_sd(cell, sizeof cell, &g->s[m_fin]), W_FIN, 0);
    put(line, sizeof line, " ", 1, 0);
    put(line, sizeof line, m_paper >= 0 ? mean_sd(cell, sizeof cell, &g->s[m_paper]) : DASH, 0, 0);
    fprintf(out, "%s\n", line);
}

static void print_table(FILE *out, const ExperimentConfig *e, const Group *g, int ng, int n_complete) {
    const int compare = e->compare_to[0] != 0;
    int name_w = (int)strlen("configuration");
    for (int k = 0; k < ng; k++) {
        char label[64];
        int w = (int)strlen(g[k].name);
        if (has_fixed(&g[k]) && (int)strlen(fixed_label(label, sizeof label, &g[k])) > w) w = (int)strlen(label);
        if (w > name_w) name_w = w;
    }
    if (name_w > NAME_W_MAX) name_w = NAME_W_MAX;
    fprintf(out, "\nStatistics over seeds: %d complete run%s of %d, %d configuration%s; 95%% t-intervals%s%s\n",
            n_complete, n_complete == 1 ? "" : "s", e->n_runs, ng, ng == 1 ? "" : "s",
            compare ? "; paired by seed against " : "", e->compare_to);
    char line[512] = "", hd[CFG_RUN_NAME + 32];
    put(line, sizeof line, "configuration", name_w, 0);
    put(line, sizeof line, "n", W_N + 1, 1);
    put(line, sizeof line, "  ", 2, 0);
    put(line, sizeof line, "test@sel " PM " sd", W_MSD, 0);
    put(line, sizeof line, " ", 1, 0);
    put(line, sizeof line, "95% CI", W_CI, 0);
    if (compare) {
        snprintf(hd, sizeof hd, "vs %.14s: diff [95%% CI]", e->compare_to);
        put(line, sizeof line, " ", 1, 0);
        put(line, sizeof line, hd, W_DIFF, 0);
        put(line, sizeof line, " ", 1, 0);
        put(line, sizeof line, "p", W_P, 0);
    }
    put(line, sizeof line, " ", 1, 0);
    put(line, sizeof line, "final test", W_FIN, 0);
    put(line, sizeof line, " paper best*", 0, 0);
    fprintf(out, "%s\n", line);
    for (int k = 0; k < ng; k++) {
        const int cmp = !compare ? 0 : !strcmp(g[k].name, e->compare_to) ? -1 : 1;
        if (g[k].n_complete == 0) {
            char name[NAME_W_MAX + 8];
            snprintf(name, sizeof name, "%.*s", name_w, g[k].name);
            fprintf(out, "%-*s %*d  no complete run yet (%d declared)\n", name_w, name, W_N, 0, g[k].nruns);
            continue;
        }
        print_row(out, g[k].name, name_w, &g[k], M_SEL, M_FINAL, M_PAPER, cmp);
        if (has_fixed(&g[k])) {
            char label[64];
            print_row(out, fixed_label(label, sizeof label, &g[k]), name_w, &g[k], M_SEL_FIXED, M_FINAL_FIXED, -1, cmp);
        }
    }
    fprintf(out, "test@sel: test top-1 %% of the checkpoint SELECTED ON VALIDATION, mean " PM
                 " sample sd over seeds, and the t-interval of its mean;\n");
    if (compare)
        fprintf(out, "diff: this minus %s seed by seed, mean and t-interval; p: paired t-test, two-sided;\n",
                e->compare_to);
    int any_fixed = 0;
    for (int k = 0; k < ng; k++) any_fixed |= has_fixed(&g[k]) && g[k].n_complete > 0;
    if (any_fixed)
        fprintf(out, "at fixed N bits: the same runs evaluated at precision.eval_bits%s\n",
                compare ? "; diff against the reference at fixed bits, or its test@sel when it is not cyclic" : "");
    fprintf(out, "final test: the final weights; paper best*: the paper's metric, the best test evaluation, "
                 "SELECTED ON TEST; " DASH ": undefined (n < 2, no pair, no spread)\n");
}

/* ---------------------------------------------------------------- entry */

int seed_table_write(ResultsFile *f, const ExperimentConfig *e, FILE *out, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!f || !e || e->n_runs <= 0) {
        if (err && errlen) snprintf(err, errlen, "statistics over seeds: no results file or no runs");
        return -1;
    }
    const size_t n = (size_t)e->n_runs;
    RunVals *rv = calloc(n, sizeof *rv);
    Group *g = calloc(n, sizeof *g);
    Scratch w = {malloc(n * sizeof(double)), malloc(n * sizeof(double)), malloc(n * sizeof(double))};
    int rc = -1, n_complete = 0;
    const int ng = rv && g && w.x && w.a && w.b ? make_groups(e, g) : -1;
    if (ng < 0) {
        if (err && errlen) snprintf(err, errlen, "statistics over seeds: out of memory");
        goto done;
    }
    for (int i = 0; i < e->n_runs; i++) {
        RunInfo ri;
        const int got = results_run_info(f, e->runs[i].name, &ri);
        rv[i].complete = got == 0 && ri.exists && !strcmp(ri.status, "complete");
        rv[i].seed = e->runs[i].c.seed;
        for (int m = 0; m < N_METRICS; m++) rv[i].v[m] = metric_of(&ri, m);
        rv[i].eval_bits_fixed = ri.eval_bits_fixed;
        n_complete += rv[i].complete;
        run_info_free(&ri);
        if (got != 0) {
            if (err && errlen) snprintf(err, errlen, "statistics over seeds: reading run %s failed", e->runs[i].name);
            goto done;
        }
    }
    const Group *ref = NULL;
    for (int k = 0; k < ng; k++)
        if (e->compare_to[0] && !strcmp(g[k].name, e->compare_to)) ref = &g[k];
    for (int k = 0; k < ng; k++) summarise(&g[k], ref, rv, &w);
    if (out) print_table(out, e, g, ng, n_complete);
    rc = write_stats(f, e, g, ng, n_complete);
    if (rc && err && errlen) {
        const char *why = rc == -2 ? "out of memory" : results_error(f);
        snprintf(err, errlen, "statistics over seeds: writing /stats: %s", why && *why ? why : "failed");
    }
    if (rc) rc = -1;
done:
    for (int k = 0; k < ng; k++) free(g[k].runs);
    free(g), free(rv), free(w.x), free(w.a), free(w.b);
    return rc;
}
