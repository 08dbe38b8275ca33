#include "blas.h"

#include <cblas.h>
#include <omp.h>

static void blas_gemm(int trans_a, int trans_b, int M, int N, int K, real alpha,
                      const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc) {
#if REAL_IS_DOUBLE
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* Always single-threaded (see engine_set_threads). OpenBLAS's OpenMP build
 * runs a call made inside an active parallel region on one thread, and a call
 * made outside one on omp_get_max_threads() threads; openblas_set_num_threads(1)
 * would also set OpenMP's own thread count to 1. So a call from serial code is
 * wrapped in a parallel region whose single thread makes it. */
void gemm(int trans_a, int trans_b, int M, int N, int K, real alpha,
          const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc) {
    if (M == 0 || N == 0) return;
    if (omp_in_parallel() || omp_get_max_threads() == 1) {
        blas_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    #pragma omp parallel num_threads(2)
    {
        #pragma omp single
        blas_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

void gemm_ref(int trans_a, int trans_b, int M, int N, int K, real alpha,
              const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                real a = trans_a ? A[(long)k * lda + i] : A[(long)i * lda + k];
                real b = trans_b ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
                acc += (double)a * (double)b;
            }
            real *c = &C[(long)i * ldc + j];
            *c = (real)(alpha * acc + (beta == 0 ? 0.0 : (double)beta * (double)*c));
        }
    }
}

/* The BLAS always runs single-threaded (gemm above): OpenBLAS's threaded
 * sgemm gives results that change in the last bits with the number of
 * threads, seen on this project's 2-core AMD EPYC machine for every conv shape
 * tried. The kernels parallelise themselves instead (core/ops/conv2d.c), over
 * work units whose shapes do not depend on the thread count, so results do
 * not depend on OMP_NUM_THREADS. */
void engine_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

int engine_threads(void) { return omp_get_max_threads(); }
