/* Forward-only (lean) passes, as Score-CAM's masked batches use them:
 * values go back to the tape once no later layer reads them.  The outputs
 * must be bit for bit those of an ordinary pass, on a graph with a value
 * read twice by one layer, a residual branch and a view (flatten); fewer
 * buffers must be allocated; a second forward must allocate nothing; the
 * freed layers' outputs are no longer readable and backward is refused.
 * And backward that keeps the input's gradient only (saliency and
 * SmoothGrad): the same input gradient, bit for bit, with fewer gradient
 * buffers, none new on the next call, and no layer gradients. */
#include <string.h>

#include "check.h"
#include "core/alloc.h"
#include "model/pass.h"

static cvis_model *residual_model(void)
{
    cvis_model *m = NULL;
    int c1, c2, c3, c4, sq, res;
    CHECK_OK(cvis_model_new(12, 12, 3, &m));
    CHECK_OK(cvis_model_add_conv2d(m, "c1", CVIS_INPUT, 4, 3, 3, 1, CVIS_PADDING_SAME,
                                   CVIS_ACT_RELU, &c1));
    CHECK_OK(cvis_model_add_conv2d(m, "c2", c1, 4, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, &c2));
    CHECK_OK(cvis_model_add_conv2d(m, "c3", c2, 4, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, &c3));
    /* c3 * c3: one layer reading a value twice */
    CHECK_OK(cvis_model_add_multiply(m, "sq", c3, c3, &sq));
    CHECK_OK(cvis_model_add_add(m, "res", sq, c1, &res));
    CHECK_OK(cvis_model_add_conv2d(m, "c4", res, 4, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, &c4));
    CHECK_OK(cvis_model_add_flatten(m, "flat", c4, NULL));
    CHECK_OK(cvis_model_add_dense(m, "out", CVIS_PREV, 5, CVIS_ACT_SOFTMAX, NULL));
    CHECK_OK(cvis_model_init_weights(m, 7));
    return m;
}

static cvis_tensor *input(int64_t b)
{
    int64_t shape[4] = {b, 12, 12, 3};
    cvis_tensor *x = NULL;
    CHECK_OK(cvis_tensor_create(4, shape, &x));
    for (int64_t i = 0; i < cvis_tensor_size(x); i++)
        cvis_tensor_data(x)[i] = (float)((i * 37) % 101) / 101.0f - 0.3f;
    return x;
}

static void test_lean_matches(void)
{
    cvis_model *m = residual_model();
    cvis_tensor *x = input(3);
    cvis_pass *full = NULL, *lean = NULL;
    CHECK_OK(cvis__pass_new(m, &full));
    CHECK_OK(cvis__pass_new(m, &lean));
    CHECK_OK(cvis__pass_set(full, CVIS_PASS_INPUT_GRAD, 0));
    CHECK_OK(cvis__pass_set(lean, CVIS_PASS_INPUT_GRAD, 0));
    CHECK_OK(cvis_pass_set_int(lean, CVIS_PASS_FORWARD_ONLY, 1));

    cvis__alloc_fail_after(0);
    CHECK_OK(cvis__pass_forward(full, x));
    int64_t full_allocs = cvis__alloc_attempts();
    cvis__alloc_fail_after(0);
    CHECK_OK(cvis__pass_forward(lean, x));
    int64_t lean_allocs = cvis__alloc_attempts();
    /* the ordinary pass holds one buffer per layer that is not a view
     * (7) plus the input; the lean one reuses them */
    CHECK(lean_allocs + 3 <= full_allocs);

    const cvis_tensor *a = cvis__pass_output(full, 0), *b = cvis__pass_output(lean, 0);
    CHECK(a && b && cvis_tensor_size(a) == 15 && cvis_tensor_size(b) == 15);
    CHECK(memcmp(cvis_tensor_data(a), cvis_tensor_data(b), 15 * sizeof(float)) == 0);

    /* the same shapes again: nothing new, and the same values */
    cvis__alloc_fail_after(0);
    CHECK_OK(cvis__pass_forward(lean, x));
    CHECK(cvis__alloc_attempts() == 0);
    b = cvis__pass_output(lean, 0);
    CHECK(b && memcmp(cvis_tensor_data(a), cvis_tensor_data(b), 15 * sizeof(float)) == 0);

    /* a bigger batch, then the smaller one again */
    cvis_tensor *x5 = input(5);
    CHECK_OK(cvis__pass_forward(full, x5));
    CHECK_OK(cvis__pass_forward(lean, x5));
    a = cvis__pass_output(full, 0);
    b = cvis__pass_output(lean, 0);
    CHECK(a && b && memcmp(cvis_tensor_data(a), cvis_tensor_data(b), 25 * sizeof(float)) == 0);
    CHECK_OK(cvis__pass_forward(lean, x));
    CHECK_OK(cvis__pass_forward(full, x));
    a = cvis__pass_output(full, 0);
    b = cvis__pass_output(lean, 0);
    CHECK(a && b && memcmp(cvis_tensor_data(a), cvis_tensor_data(b), 15 * sizeof(float)) == 0);

    /* freed layers are not readable; backward is refused */
    int c2;
    CHECK_OK(cvis_model_find_layer(m, "c2", &c2));
    CHECK(cvis__pass_layer_output(full, c2) != NULL);
    CHECK(cvis__pass_layer_output(lean, c2) == NULL);
    CHECK_STATUS(cvis__pass_backward(lean, 1, NULL), CVIS_E_STATE);

    /* asking for gradients makes the pass ordinary again */
    CHECK_OK(cvis__pass_set(lean, CVIS_PASS_INPUT_GRAD, 1));
    CHECK_OK(cvis__pass_forward(lean, x));
    CHECK(cvis__pass_layer_output(lean, c2) != NULL);
    CHECK_OK(cvis__pass_backward(lean, 1, NULL));

    /* an allocation failure inside a lean forward is reported, not a crash */
    CHECK_OK(cvis__pass_set(lean, CVIS_PASS_INPUT_GRAD, 0));
    cvis_tensor *x9 = input(9);
    cvis__alloc_fail_after(2);
    cvis_status st = cvis__pass_forward(lean, x9);
    cvis__alloc_fail_after(0);
    CHECK(st == CVIS_E_NOMEM || st == CVIS_OK);
    CHECK_OK(cvis__pass_forward(lean, x9));
    CHECK_OK(cvis__pass_forward(full, x9));
    a = cvis__pass_output(full, 0);
    b = cvis__pass_output(lean, 0);
    CHECK(a && b && memcmp(cvis_tensor_data(a), cvis_tensor_data(b), 45 * sizeof(float)) == 0);

    cvis_tensor_free(x9);
    cvis_tensor_free(x5);
    cvis_tensor_free(x);
    cvis__pass_free(full);
    cvis__pass_free(lean);
    cvis_model_free(m);
}

static void test_input_grads_only(void)
{
    cvis_model *m = residual_model();
    cvis_tensor *x = input(3);
    cvis_pass *full = NULL, *slim = NULL;
    CHECK_OK(cvis__pass_new(m, &full));
    CHECK_OK(cvis__pass_new(m, &slim));
    cvis__pass_set_input_grads_only(slim, 1);
    int64_t ds[2] = {3, 5};
    cvis_tensor *d = NULL;
    CHECK_OK(cvis_tensor_create(2, ds, &d));
    for (int i = 0; i < 15; i++)
        cvis_tensor_data(d)[i] = (float)(i % 4) - 1.5f;
    const cvis_tensor *seeds[1] = {d};
    CHECK_OK(cvis__pass_forward(full, x));
    CHECK_OK(cvis__pass_forward(slim, x));
    cvis__alloc_fail_after(0);
    CHECK_OK(cvis__pass_backward(full, 1, seeds));
    int64_t full_allocs = cvis__alloc_attempts();
    cvis__alloc_fail_after(0);
    CHECK_OK(cvis__pass_backward(slim, 1, seeds));
    int64_t slim_allocs = cvis__alloc_attempts();
    /* one gradient buffer per layer that is not a view (9 allocations
     * with the input's and the workspace), against those alive at once
     * (7: c4's buffer serves sq, res's c3, sq's c2) */
    CHECK(slim_allocs + 2 <= full_allocs);
    const cvis_tensor *a = cvis__pass_input_grad(full), *b = cvis__pass_input_grad(slim);
    int64_t n = cvis_tensor_size(x);
    CHECK(a && b && cvis_tensor_size(b) == n);
    CHECK(a && b && memcmp(cvis_tensor_data(a), cvis_tensor_data(b), (size_t)n * sizeof(float)) == 0);
    double sum = 0;
    for (int64_t i = 0; b && i < n; i++)
        sum += cvis_tensor_data(b)[i] < 0 ? -cvis_tensor_data(b)[i] : cvis_tensor_data(b)[i];
    CHECK(sum > 0);
    int c2;
    CHECK_OK(cvis_model_find_layer(m, "c2", &c2));
    CHECK(cvis__pass_layer_grad(full, c2) != NULL);
    CHECK(cvis__pass_layer_grad(slim, c2) == NULL);
    /* the next call takes the given-back buffers: nothing new, same bits */
    CHECK_OK(cvis__pass_forward(slim, x));
    cvis__alloc_fail_after(0);
    CHECK_OK(cvis__pass_backward(slim, 1, seeds));
    CHECK(cvis__alloc_attempts() == 0);
    b = cvis__pass_input_grad(slim);
    CHECK(a && b && memcmp(cvis_tensor_data(a), cvis_tensor_data(b), (size_t)n * sizeof(float)) == 0);
    cvis_tensor_free(d);
    cvis_tensor_free(x);
    cvis__pass_free(full);
    cvis__pass_free(slim);
    cvis_model_free(m);
}

TEST_MAIN({
    test_lean_matches();
    test_input_grads_only();
})
