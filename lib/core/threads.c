/* The process-wide thread count: OpenBLAS's, which libcvis's own parallel
 * loops follow too. */
#include <cblas.h>
#include <unistd.h>

#include "error.h"

CVIS_API cvis_status cvis_set_num_threads(int n)
{
    if (n < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "thread count must not be negative");
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    openblas_set_num_threads(n);
    return CVIS_OK;
}

CVIS_API int cvis_get_num_threads(void)
{
    return openblas_get_num_threads();
}
