/* A tape whose slot array grows while an op is pushed: the op must read
 * its inputs from the grown array (under `make check-asan` the old
 * array is poisoned, so reading it is caught). */
#include "check.h"
#include "core/ops.h"
#include "core/tape.h"

static void test_growth(void)
{
    cvis__tape *t = NULL;
    CHECK_OK(cvis__tape_new(&t));
    int64_t shape[2] = {1, 4};
    cvis_tensor *x = NULL;
    CHECK_OK(cvis_tensor_create(2, shape, &x));
    for (int i = 0; i < 4; i++)
        cvis_tensor_data(x)[i] = (float)(i + 1);
    int first, prev;
    CHECK_OK(cvis__tape_leaf(t, x, 1, &first));
    prev = first;
    cvis__binary_attr add = {CVIS__BIN_ADD};
    /* slot k holds x * (k + 1); 100 pushes cross several doublings */
    for (int k = 1; k <= 100; k++) {
        int in[2] = {prev, first}, out;
        CHECK_OK(cvis__tape_push(t, &cvis__op_binary, &add, 2, in, 0, NULL, 0, 0, &out));
        const cvis_tensor *y = cvis__tape_value(t, out);
        CHECK(y && cvis_tensor_data(y)[3] == 4.0f * (float)(k + 1));
        prev = out;
    }
    float seed[4] = {1, 1, 1, 1};
    const float *seeds[1] = {seed};
    CHECK_OK(cvis__tape_backward(t, 1, &prev, seeds, CVIS__RELU_NORMAL));
    const cvis_tensor *g = cvis__tape_grad(t, first);
    CHECK(g && cvis_tensor_data(g)[0] == 101.0f);
    cvis_tensor_free(x);
    cvis__tape_free(t);
}

TEST_MAIN({ test_growth(); })
