/* Matrix products on libcvis's worker pool.  OpenBLAS runs one thread per
 * call; a large product is cut into row (or column) blocks, one per pool
 * thread.  OpenBLAS's own threading splits the thin products of a
 * convolution poorly and its idle threads spin between calls, competing
 * with the pool for the same cores. */
#ifndef CVIS_CORE_GEMM_H
#define CVIS_CORE_GEMM_H

#include <cblas.h>

/* C = alpha op(A) op(B) + beta C, row-major, as cblas_sgemm. */
void cvis__sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                 float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);

/* C = alpha A B + beta C (neither transposed, row-major) without packing B,
 * where the CPU has AVX-512F (lib/core/gemm_few_rows.c); returns 0, having
 * done nothing, elsewhere. */
int cvis__sgemm_few_rows(int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc);

/* Takes the BLAS thread count as the pool's (once, at first use) and sets
 * OpenBLAS to one thread. */
void cvis__threads_init(void);

#endif
