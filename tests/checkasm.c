/* checkasm: the harness and its main (tests/checkasm.h).
 *
 *   checkasm [--seed N] [FAMILY...]   every kernel of the families (all when none named)
 *   checkasm --selftest               the harness must catch broken kernels (below)
 *
 * Exit status 0 when every (kernel, table) pair matched its reference. */
#include "checkasm.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/* the levels of core/cpu.h, lowest first */
static const struct {
    const char *name;
    unsigned mask;
} levels[] = {
    {"c", CPU_LEVEL_C},           {"avx2", CPU_LEVEL_AVX2},     {"avx-vnni", CPU_LEVEL_AVXVNNI},
    {"avx512", CPU_LEVEL_AVX512}, {"native", CPU_LEVEL_NATIVE},
};
#define N_LEVELS ((int)(sizeof levels / sizeof levels[0]))

static const size_t type_size[] = {sizeof(real), 1, 4, 8};

/* ref outputs and table outputs start with different garbage: an element
 * neither writes cannot pass for a written one */
static int filling_ref;

void *ck_out(CkOut *o, const char *label, CkType t, size_t n) {
    if (o->n >= CK_MAXOUT) {
        fprintf(stderr, "checkasm: more than %d outputs\n", CK_MAXOUT);
        exit(2);
    }
    const size_t bytes = n * type_size[t];
    void *p = aligned_alloc(64, (bytes + 64) / 64 * 64);
    if (!p) {
        fprintf(stderr, "checkasm: out of memory\n");
        exit(2);
    }
    memset(p, filling_ref ? 0x5A : 0xA5, (bytes + 64) / 64 * 64);
    o->buf[o->n++] = (CkBuf){label, t, p, n};
    return p;
}

static void free_out(CkOut *o) {
    for (int i = 0; i < o->n; i++) free(o->buf[i].data);
    o->n = 0;
}

static void print_elem(char *s, size_t len, CkType t, const void *base, size_t i) {
    const unsigned char *p = (const unsigned char *)base + i * type_size[t];
    if (t == CK_REAL) {
        real v;
        memcpy(&v, p, sizeof v);
        if (sizeof(real) == 4) {
            uint32_t b;
            memcpy(&b, p, 4);
            snprintf(s, len, "%.9g (0x%08x)", (double)v, b);
        } else {
            uint64_t b;
            memcpy(&b, p, 8);
            snprintf(s, len, "%.17g (0x%016llx)", (double)v, (unsigned long long)b);
        }
    } else if (t == CK_U8) {
        snprintf(s, len, "%u", *p);
    } else if (t == CK_I32) {
        int32_t v;
        memcpy(&v, p, 4);
        snprintf(s, len, "%d", v);
    } else {
        uint64_t v;
        memcpy(&v, p, 8);
        snprintf(s, len, "0x%016llx", (unsigned long long)v);
    }
}

/* what the self-test reads back: the last mismatch */
static struct {
    char table[32], kernel[64], label[32];
    size_t index;
    long count;
} last_fail;

/* 0 when got == want bitwise; else prints the first differing element */
static int compare(const CkOut *got, const CkOut *want, const char *table, const char *kernel, const char *shape,
                   int threads) {
    if (got->n != want->n) {
        printf("FAIL table %s  %s  [%s] threads %d: %d outputs, want %d\n", table, kernel, shape, threads, got->n,
               want->n);
        return 1;
    }
    for (int k = 0; k < want->n; k++) {
        const CkBuf *g = &got->buf[k], *w = &want->buf[k];
        if (g->type != w->type || g->n != w->n) {
            printf("FAIL table %s  %s  [%s] threads %d: output %s has %zu elements, want %zu\n", table, kernel, shape,
                   threads, w->label, g->n, w->n);
            return 1;
        }
        const size_t sz = type_size[w->type];
        if (w->n == 0 || memcmp(g->data, w->data, w->n * sz) == 0) continue;
        size_t i = 0;
        while (memcmp((const char *)g->data + i * sz, (const char *)w->data + i * sz, sz) == 0) i++;
        size_t ndiff = 0;
        for (size_t j = i; j < w->n; j++)
            ndiff += memcmp((const char *)g->data + j * sz, (const char *)w->data + j * sz, sz) != 0;
        char gs[64], ws[64];
        print_elem(gs, sizeof gs, w->type, g->data, i);
        print_elem(ws, sizeof ws, w->type, w->data, i);
        printf("FAIL table %s  %s  [%s] threads %d: %s[%zu] = %s, want %s (%zu of %zu differ)\n", table, kernel,
               shape, threads, w->label, i, gs, ws, ndiff, w->n);
        snprintf(last_fail.table, sizeof last_fail.table, "%s", table);
        snprintf(last_fail.kernel, sizeof last_fail.kernel, "%s", kernel);
        snprintf(last_fail.label, sizeof last_fail.label, "%s", w->label);
        last_fail.index = i;
        last_fail.count++;
        return 1;
    }
    return 0;
}

/* the self-test's corruption of a real kernel: one bit of element 3 (or the
 * last) of the first output, in every table but C */
const char *ck_corrupt_kernel;
void ck_maybe_corrupt(const char *kernel, unsigned mask, CkOut *got) {
    if (!ck_corrupt_kernel || strcmp(kernel, ck_corrupt_kernel) != 0 || mask == 0 || got->n == 0) return;
    CkBuf *b = &got->buf[0];
    if (b->n == 0) return;
    const size_t i = b->n > 3 ? 3 : b->n - 1;
    ((unsigned char *)b->data)[i * type_size[b->type]] ^= 1;
}

#define MAX_TABLES 8
typedef struct {
    const char *name;
    long runs, fails;
} TabStat;
int checkasm_run(const CkKernel *ks, int n, uint64_t seed) {
    const unsigned have = cpu_features();
    const int saved_threads = omp_get_max_threads();
    int failing = 0;
    for (int k = 0; k < n; k++) {
        const CkKernel *K = &ks[k];
        TabStat st[MAX_TABLES];
        int nst = 0;
        Rng r = rng_stream(seed, RNG_TEST, 7000 + (uint64_t)k, 0);
        const int ncases = K->n_fixed + K->n_random;
        for (int i = 0; i < ncases; i++) {
            char shape[160] = "";
            void *c = K->gen(i, &r, shape, sizeof shape);
            CkOut want = {0};
            filling_ref = 1;
            K->ref(c, &want);
            filling_ref = 0;
            unsigned ran_masks[N_LEVELS];
            int nrm = 0;
            for (int l = 0; l < N_LEVELS; l++) {
                if ((levels[l].mask & have) != levels[l].mask && levels[l].mask != CPU_LEVEL_NATIVE) continue;
                const unsigned m = levels[l].mask & have;
                int dup = 0; /* native on an AVX2 machine is the avx2 level */
                for (int q = 0; q < nrm; q++) dup |= ran_masks[q] == m;
                if (dup) continue;
                ran_masks[nrm++] = m;
                const char *t = K->table ? K->table(m) : levels[l].name;
                int s = 0;
                while (s < nst && strcmp(st[s].name, t) != 0) s++;
                if (s < nst && st[s].runs > i) continue; /* this table already ran this case */
                if (s == nst) {
                    if (nst == MAX_TABLES) continue;
                    st[nst++] = (TabStat){t, 0, 0};
                }
                cpu_set_mask_for_tests(m);
                int bad = 0;
                for (int th = 1; th <= 2; th++) {
                    omp_set_num_threads(th);
                    CkOut got = {0};
                    K->run(m, c, &got);
                    ck_maybe_corrupt(K->name, m, &got);
                    bad |= compare(&got, &want, t, K->name, shape, th);
                    free_out(&got);
                }
                cpu_set_mask_for_tests(CPU_LEVEL_NATIVE);
                st[s].runs++;
                st[s].fails += bad;
            }
            free_out(&want);
            K->free_case(c);
        }
        printf("%-34s", K->name);
        for (int s = 0; s < nst; s++) {
            printf(" %s %s%s", st[s].name, st[s].fails ? "FAILED" : "ok", s + 1 < nst ? "," : "");
            failing += st[s].fails != 0;
        }
        printf("  (%d cases x 1, 2 threads)\n", ncases);
    }
    omp_set_num_threads(saved_threads);
    return failing;
}

/* ------------------------------------------------------------ self-test */
/* A kernel with a tail bug: its "simd" table doubles x like the reference but
 * drops the last element when n % 8 == 5 (a remainder loop off by one), and
 * writes nothing there. Only some random lengths hit it. */
typedef struct {
    size_t n;
    real *x;
} TailCase;

static void *tail_gen(int i, Rng *r, char *shape, size_t len) {
    TailCase *c = malloc(sizeof *c);
    c->n = i < 3 ? (size_t)(8 * (i + 1)) : 1 + rng_below(r, 100);
    c->x = malloc(c->n * sizeof(real));
    for (size_t j = 0; j < c->n; j++) c->x[j] = (real)rng_uniform(r);
    snprintf(shape, len, "n %zu", c->n);
    return c;
}
static void tail_ref(const void *cv, CkOut *o) {
    const TailCase *c = cv;
    real *y = ck_out(o, "y", CK_REAL, c->n);
    for (size_t j = 0; j < c->n; j++) y[j] = 2 * c->x[j];
}
static const char *tail_table(unsigned mask) { return "simd-with-tail-bug"; }
static void tail_run(unsigned mask, const void *cv, CkOut *o) {
    const TailCase *c = cv;
    real *y = ck_out(o, "y", CK_REAL, c->n);
    const size_t end = c->n % 8 == 5 ? c->n - 1 : c->n;
    for (size_t j = 0; j < end; j++) y[j] = 2 * c->x[j];
}
static void tail_free(void *cv) {
    TailCase *c = cv;
    free(c->x);
    free(c);
}

static int selftest(void) {
    int bad = 0;
    /* 1. the tail bug: every failing case names the table and index n - 1 */
    const CkKernel tail = {"selftest.tail_bug", 3, 200, tail_gen, tail_ref, tail_table, tail_run, tail_free};
    memset(&last_fail, 0, sizeof last_fail);
    printf("-- self-test 1: a kernel with a tail bug (the FAIL lines below are expected)\n");
    int f = checkasm_run(&tail, 1, 1);
    if (f != 1 || last_fail.count == 0 || strcmp(last_fail.table, "simd-with-tail-bug") != 0 ||
        strcmp(last_fail.label, "y") != 0 || last_fail.index % 8 != 4) {
        printf("SELFTEST FAILED: the tail bug was not reported as expected (%d failing pairs, %ld mismatches)\n", f,
               last_fail.count);
        bad++;
    }
    /* 2. a real kernel with one output bit flipped in its SIMD tables
     * (skipped, and said so, on a machine without any) */
    const unsigned have = cpu_features();
    printf("-- self-test 2: bconv_bwd_int8.wgrad with one bit of dw[3] flipped in the non-C tables\n");
    if (have == 0) {
        printf("   (no SIMD level on this machine: skipped)\n");
    } else {
        for (int k = 0; k < ck_bconv_bwd_int8_n; k++)
            if (!strcmp(ck_bconv_bwd_int8[k].name, "bconv_bwd_int8.wgrad")) {
                CkKernel w = ck_bconv_bwd_int8[k];
                w.n_fixed = 2;
                w.n_random = 2;
                ck_corrupt_kernel = w.name;
                memset(&last_fail, 0, sizeof last_fail);
                f = checkasm_run(&w, 1, 1);
                ck_corrupt_kernel = NULL;
                if (f == 0 || strcmp(last_fail.label, "dw") != 0 || last_fail.index != 3 ||
                    !strcmp(last_fail.table, "c")) {
                    printf("SELFTEST FAILED: the flipped bit was not reported (%d failing pairs)\n", f);
                    bad++;
                }
            }
    }
    printf("checkasm self-test: %s\n", bad ? "FAILED" : "ok (the harness reports broken kernels)");
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (cpu_env_error()) { /* a mistyped CBNN_SIMD would check the C tables only and pass */
        fprintf(stderr, "checkasm: %s\n", cpu_env_error());
        return 2;
    }
    uint64_t seed = 1;
    int self = 0, nsel = 0;
    const char *sel[8];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--selftest"))
            self = 1;
        else if (nsel < 8)
            sel[nsel++] = argv[i];
    }
    char a[160], b[160];
    printf("cpu: detected %s; in use %s\n", cpu_feature_names(cpu_detected(), a, sizeof a),
           cpu_feature_names(cpu_features(), b, sizeof b));
    if (self) return selftest();
    static const struct {
        const char *name;
        const CkKernel *ks;
        const int *n;
    } fams[] = {
        {"bconv_packed", ck_bconv_packed, &ck_bconv_packed_n},
        {"bconv_bwd_int8", ck_bconv_bwd_int8, &ck_bconv_bwd_int8_n},
        {"elementwise", ck_elementwise, &ck_elementwise_n},
    };
    int failing = 0, ran = 0;
    for (size_t fi = 0; fi < sizeof fams / sizeof fams[0]; fi++) {
        int want = nsel == 0;
        for (int s = 0; s < nsel; s++) want |= !strcmp(sel[s], fams[fi].name);
        if (!want) continue;
        failing += checkasm_run(fams[fi].ks, *fams[fi].n, seed);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "checkasm: no family named; families: bconv_packed bconv_bwd_int8 elementwise\n");
        return 2;
    }
    printf("checkasm: %s (seed %llu)\n", failing ? "FAILED" : "every table matches its reference",
           (unsigned long long)seed);
    return failing ? 1 : 0;
}
