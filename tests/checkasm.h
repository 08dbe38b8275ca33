/* checkasm: every kernel of every table against its C reference (the idea of
 * dav1d's checkasm, written for this project).
 *
 * A kernel family registers each kernel ONCE (CkKernel below): a case
 * generator (shape and inputs; a fixed list of edge shapes first, then random
 * ones), the reference, and a runner that calls the table's function for a
 * CPU mask. The harness loops over the CPU levels core/cpu.h names (c, avx2,
 * avx-vnni, avx512, native) that this machine has, lowers cpu_features() to
 * each (cpu_set_mask_for_tests, so dispatch inside a kernel follows too), runs
 * every case with 1 and 2 OpenMP threads, and compares the outputs bitwise. A
 * mismatch prints one line: table, kernel, shape, threads, and the first
 * differing element (index, got, want). Levels that select a table already
 * checked for a kernel are skipped for it (same name).
 *
 * Adding a SIMD kernel: put it in its family's table (behind a cpu.h mask),
 * then add a CkKernel in tests/checkasm_<family>.c (or extend the family's
 * runner if it is a new table entry of a registered kernel) and list it in
 * checkasm.c's family list. */
#ifndef CBNN_CHECKASM_H
#define CBNN_CHECKASM_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"
#include "rng.h"

typedef enum { CK_REAL, CK_U8, CK_I32, CK_U64 } CkType;

/* one output array; the harness frees data (malloc'd) */
typedef struct {
    const char *label;
    CkType type;
    void *data;
    size_t n;
} CkBuf;

#define CK_MAXOUT 4
typedef struct {
    int n;
    CkBuf buf[CK_MAXOUT];
} CkOut;

/* add an output of n elements of type t to o, filled with garbage (kernels
 * must overwrite what they own); returns its data */
void *ck_out(CkOut *o, const char *label, CkType t, size_t n);

typedef struct {
    const char *name;  /* "bconv_bwd_int8.dgrad" */
    int n_fixed;       /* cases 0..n_fixed-1 are the family's fixed list */
    int n_random;      /* then this many random ones */
    /* case i: a shape and inputs drawn from r; shape: a short description for messages */
    void *(*gen)(int i, Rng *r, char *shape, size_t shape_len);
    void (*ref)(const void *c, CkOut *want);
    /* the table name that mask selects for this kernel (the harness runs each
     * distinct name once); NULL: a kernel that dispatches inside, run at every level */
    const char *(*table)(unsigned mask);
    /* the selected table's function on case c (the mask is also cpu_features() now) */
    void (*run)(unsigned mask, const void *c, CkOut *got);
    void (*free_case)(void *c);
} CkKernel;

/* run every kernel of ks[0..n) at every level; returns the number of failing (kernel, table) pairs */
int checkasm_run(const CkKernel *ks, int n, uint64_t seed);

/* the families (tests/checkasm_*.c) */
extern const CkKernel ck_bconv_packed[];
extern const int ck_bconv_packed_n;
extern const CkKernel ck_bconv_bwd_int8[];
extern const int ck_bconv_bwd_int8_n;
extern const CkKernel ck_elementwise[]; /* AdamW's FMA clone, the AVX2 activation codes */
extern const int ck_elementwise_n;

/* the self-test's corruption: while ck_corrupt_kernel names a kernel, the
 * harness flips one bit of its first output in every non-C table (tests/checkasm.c) */
extern const char *ck_corrupt_kernel;
void ck_maybe_corrupt(const char *kernel, unsigned mask, CkOut *got);

#endif
