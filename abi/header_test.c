/* The public header on its own, compiled as C99, C11 and C++17 by
 * abi/check.sh: it must need nothing else and warn about nothing. */
#include "cvis.h"

int main(void)
{
    cvis_tensor *t = NULL;
    int64_t shape[2] = {2, 3};
    cvis_status st = cvis_tensor_create(2, shape, &t);
    cvis_tensor_free(t);
    return st == CVIS_OK ? 0 : 1;
}
