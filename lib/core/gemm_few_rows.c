/* C = alpha A B + beta C for a few rows of A and a large B, on AVX-512F:
 * a dense layer's forward pass at a small batch.  OpenBLAS's sgemm copies
 * B into its packed layout on every call; at a few rows that copy is much
 * of the time (the tutorial network's 107,648 x 128 kernel, 55 MB, at
 * batch 8: 5.6 ms, against 2 to 3 ms for its sgemv with one row).  Here B
 * is read in place, a block of rows at a time that stays in cache while
 * every pair of rows of A passes over it.  Only for N a multiple of 128. */
#include "gemm.h"
#include "isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Rows of B per block: 128 rows of 128 columns are 64 KiB (measured
 * best of 16 to 256 at 8 rows of A). */
#define KB 128

#define LOADB(q) __m512 b##q = _mm512_loadu_ps(b + 16 * (q))
#define FMA2(q)                                                                            \
    u##q = _mm512_fmadd_ps(x0, b##q, u##q);                                                \
    v##q = _mm512_fmadd_ps(x1, b##q, v##q)
#define STORE(c, r, q)                                                                     \
    _mm512_storeu_ps(c + 16 * (q), _mm512_fmadd_ps(al, r##q, _mm512_loadu_ps(c + 16 * (q))))
#define STORE_ROW(c, r)                                                                    \
    do {                                                                                   \
        STORE(c, r, 0);                                                                    \
        STORE(c, r, 1);                                                                    \
        STORE(c, r, 2);                                                                    \
        STORE(c, r, 3);                                                                    \
        STORE(c, r, 4);                                                                    \
        STORE(c, r, 5);                                                                    \
        STORE(c, r, 6);                                                                    \
        STORE(c, r, 7);                                                                    \
    } while (0)

/* Rows m and m+1 of C (m+1 only when `two`), columns n0..n0+127, over B's
 * rows k0..k1-1: 16 accumulators, each load of B used twice.  The first
 * pass over a block (`fetch`) asks for B's rows a few ahead, as they come
 * from memory. */
__attribute__((target("avx512f"))) static void rows2(int two, int fetch, int64_t m, int64_t n0,
                                                    int64_t k0, int64_t k1, float alpha,
                                                    const float *A, int64_t lda, const float *B,
                                                    int64_t ldb, float *C, int64_t ldc)
{
    __m512 u0 = _mm512_setzero_ps(), u1 = u0, u2 = u0, u3 = u0, u4 = u0, u5 = u0, u6 = u0,
           u7 = u0;
    __m512 v0 = u0, v1 = u0, v2 = u0, v3 = u0, v4 = u0, v5 = u0, v6 = u0, v7 = u0;
    const float *a0 = A + m * lda, *a1 = two ? a0 + lda : a0;
    for (int64_t k = k0; k < k1; k++) {
        const float *b = B + k * ldb + n0;
        if (fetch)
            for (int l = 0; l < 8; l++)
                _mm_prefetch((const char *)(b + 8 * ldb + 16 * l), _MM_HINT_T0);
        LOADB(0);
        LOADB(1);
        LOADB(2);
        LOADB(3);
        LOADB(4);
        LOADB(5);
        LOADB(6);
        LOADB(7);
        __m512 x0 = _mm512_set1_ps(a0[k]), x1 = _mm512_set1_ps(a1[k]);
        FMA2(0);
        FMA2(1);
        FMA2(2);
        FMA2(3);
        FMA2(4);
        FMA2(5);
        FMA2(6);
        FMA2(7);
    }
    __m512 al = _mm512_set1_ps(alpha);
    float *c = C + m * ldc + n0;
    STORE_ROW(c, u);
    if (two)
        STORE_ROW(c + ldc, v);
}

int cvis__sgemm_few_rows(int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc)
{
    if (N % 128 || cvis__isa() < CVIS__ISA_AVX512)
        return 0;
    /* beta C first (beta = 0 overwrites C, NaN included); each block's
     * products are then added, so every value sums its blocks in the
     * order of k, whatever the thread count */
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float *c = C + m * ldc + n;
            *c = beta == 0.0f ? 0.0f : beta * *c;
        }
    for (int64_t n0 = 0; n0 < N; n0 += 128)
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            int64_t k1 = K - k0 < KB ? K : k0 + KB;
            for (int64_t m = 0; m < M; m += 2)
                rows2(m + 1 < M, m == 0, m, n0, k0, k1, alpha, A, lda, B, ldb, C, ldc);
        }
    return 1;
}

#else
int cvis__sgemm_few_rows(int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb, (void)beta;
    (void)C, (void)ldc;
    return 0;
}
#endif
