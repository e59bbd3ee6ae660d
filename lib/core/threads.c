/* The process-wide thread count: the size of libcvis's worker pool, which
 * runs its loops and its matrix products (OpenBLAS itself is kept at one
 * thread, see gemm.h). */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "error.h"
#include "gemm.h"

static _Atomic int pool_threads; /* 0 until the first use */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* The pool starts with the count OpenBLAS was given (OPENBLAS_NUM_THREADS,
 * or one per core), and OpenBLAS goes to one thread. */
static void take_blas_threads(void)
{
    int n = openblas_get_num_threads();
    int unset = 0;
    atomic_compare_exchange_strong(&pool_threads, &unset, n > 0 ? n : 1);
    openblas_set_num_threads(1);
}

void cvis__threads_init(void)
{
    pthread_once(&blas_once, take_blas_threads);
}

CVIS_API cvis_status cvis_set_num_threads(int n)
{
    if (n < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "thread count must not be negative");
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    cvis__threads_init();
    atomic_store(&pool_threads, n);
    return CVIS_OK;
}

CVIS_API int cvis_get_num_threads(void)
{
    cvis__threads_init();
    return atomic_load(&pool_threads);
}
