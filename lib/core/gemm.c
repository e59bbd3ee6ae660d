/* cvis__sgemm: one cblas_sgemm per block of rows (or columns) of C, the
 * blocks on the worker pool. */
#include "gemm.h"

#include "parallel.h"

/* Below this many multiply-adds a product is not worth waking the pool. */
#define MIN_PARALLEL_MACS ((int64_t)1 << 21)
/* Blocks are whole multiples of this many rows or columns (a multiple of
 * OpenBLAS's register blocks), so that only the last block has a ragged
 * edge. */
#define UNIT 32
/* Products of at most FEW_ROWS rows with a B of at least BIG_B values (a
 * dense layer at a small batch) go to cvis__sgemm_few_rows, which reads B
 * in place: at 8 rows of a 107,648 x 128 B it took 4.3 ms against 5.6 ms
 * for OpenBLAS's sgemm, at 32 rows 13 ms against 11 ms; at one row 2.1 ms
 * against 2.5 to 2.9 ms for OpenBLAS's sgemv. */
#define FEW_ROWS 8
#define BIG_B ((int64_t)1 << 20)

typedef struct {
    enum CBLAS_TRANSPOSE ta, tb;
    int M, N, K, by_rows;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
} gemm_job;

/* One product on this thread.  A single row or column goes to sgemv
 * (unless the few-rows product takes it):
 * OpenBLAS's sgemm is 2 to 4 times slower on those (a dense layer at batch
 * 1: 1x25088 by 25088x4096 took 52 ms against 15 ms). */
static void product(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc)
{
    /* one row only for one block of columns, which reads B straight
     * through; across 4096 columns sgemv's row by row streaming is twice
     * as fast (1 x 25088 x 4096: 15 against 29 ms) */
    if (ta == CblasNoTrans && tb == CblasNoTrans && M >= 1 && M <= FEW_ROWS &&
        (M > 1 || N <= 128) && (int64_t)K * N >= BIG_B &&
        cvis__sgemm_few_rows(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    if ((M == 1 || N == 1) && K > 0) {
        /* beta = 0 must overwrite C, whatever it holds (NaN included) */
        if (beta == 0.0f)
            for (int i = 0; i < (M == 1 ? N : M); i++)
                C[(int64_t)i * (M == 1 ? 1 : ldc)] = 0.0f;
        if (M == 1) /* c = op(B)^T a, a with stride 1 (or lda when stored as a column) */
            cblas_sgemv(CblasRowMajor, tb == CblasNoTrans ? CblasTrans : CblasNoTrans,
                        tb == CblasNoTrans ? K : N, tb == CblasNoTrans ? N : K, alpha, B, ldb, A,
                        ta == CblasNoTrans ? 1 : lda, beta, C, 1);
        else /* c = op(A) b, b with stride ldb (or 1 when stored as a row) */
            cblas_sgemv(CblasRowMajor, ta, ta == CblasNoTrans ? M : K, ta == CblasNoTrans ? K : M,
                        alpha, A, lda, B, tb == CblasNoTrans ? ldb : 1, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void gemm_block(void *ctx, int64_t begin, int64_t end)
{
    const gemm_job *j = ctx;
    int64_t total = j->by_rows ? j->M : j->N;
    int lo = (int)(begin * UNIT), hi = (int)(end * UNIT < total ? end * UNIT : total);
    if (j->by_rows) { /* rows lo..hi of op(A) and of C */
        const float *a = j->ta == CblasNoTrans ? j->A + (int64_t)lo * j->lda : j->A + lo;
        product(j->ta, j->tb, hi - lo, j->N, j->K, j->alpha, a, j->lda, j->B, j->ldb, j->beta,
                j->C + (int64_t)lo * j->ldc, j->ldc);
    } else { /* columns lo..hi of op(B) and of C */
        const float *b = j->tb == CblasNoTrans ? j->B + lo : j->B + (int64_t)lo * j->ldb;
        product(j->ta, j->tb, j->M, hi - lo, j->K, j->alpha, j->A, j->lda, b, j->ldb, j->beta,
                j->C + lo, j->ldc);
    }
}

void cvis__sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                 float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc)
{
    cvis__threads_init();
    gemm_job j = {ta, tb, M, N, K, 1, alpha, beta, A, B, C, lda, ldb, ldc};
    int64_t macs = (int64_t)M * N * K;
    int64_t row_units = (M + UNIT - 1) / UNIT, col_units = (N + UNIT - 1) / UNIT;
    /* cut the longer side: a convolution's many pixels, a dense layer's
     * units */
    j.by_rows = row_units >= col_units;
    int64_t units = j.by_rows ? row_units : col_units;
    int ways = cvis__parallel_ways(units, 1);
    if (ways < 2 || macs < MIN_PARALLEL_MACS) {
        product(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cvis__parallel_run(units, ways, gemm_block, &j);
}
