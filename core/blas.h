/* Row-major GEMM on `real`, forwarded to the BLAS (OpenBLAS, OpenMP build).
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
 *
 * op(X) = X or X^T as trans_a / trans_b say; lda/ldb/ldc are the row strides
 * of the matrices as stored. gemm_ref is the plain triple loop the fast path
 * is tested against. */
#ifndef CBNN_BLAS_H
#define CBNN_BLAS_H

#include "real.h"

void gemm(int trans_a, int trans_b, int M, int N, int K, real alpha,
          const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc);
void gemm_ref(int trans_a, int trans_b, int M, int N, int K, real alpha,
              const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc);

/* threads of our own OpenMP loops (0 = leave the default); the BLAS stays single-threaded */
void engine_set_threads(int n);
int engine_threads(void);

#endif
