/* Forward-only (lean) passes, as Score-CAM's masked batches use them:
 * values go back to the tape once no later layer reads them.  The outputs
 * must be bit for bit those of an ordinary pass, on a graph with a value
 * read twice by one layer, a residual branch and a view (flatten); fewer
 * buffers must be allocated; a second forward must allocate nothing; the
 * freed layers' outputs are no longer readable and backward is refused.
 * And backward that keeps the input's gradient only (saliency and
 * SmoothGrad): the same input gradient, bit for bit, with fewer gradient
 * buffers, none new on the next call, and no layer gradients; every
 * method that reads only the input's gradient runs that way, and the CAM
 * methods keep their layer's gradient. */
#include <string.h>

#include "attr/attr.h"
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

/* The pass an explainer ran its method on: an explainer begins with its
 * context (lib/attr/explainer.c). */
static cvis_pass *explainer_pass(cvis_explainer *e, int aux)
{
    const cvis__explain_ctx *c = (const cvis__explain_ctx *)e;
    return aux ? c->aux : c->pass;
}

static void test_methods_give_gradients_back(void)
{
    cvis_model *m = residual_model();
    cvis_tensor *x = input(2);
    int idx[2] = {1, 3}, c2;
    cvis_score *score = NULL;
    CHECK_OK(cvis_score_categorical(2, idx, &score));
    CHECK_OK(cvis_model_find_layer(m, "c2", &c2));
    const cvis_score *scores[1] = {score};
    static const struct {
        cvis_method method;
        int aux;         /* the input-gradient pass is the second one */
        int keeps_layer; /* backward stops at a CAM layer: its gradient stays */
    } cases[] = {{CVIS_METHOD_SALIENCY, 0, 0},        {CVIS_METHOD_SMOOTHGRAD, 0, 0},
                 {CVIS_METHOD_INPUT_X_GRADIENT, 0, 0}, {CVIS_METHOD_GUIDED_BACKPROP, 0, 0},
                 {CVIS_METHOD_DECONVNET, 0, 0},        {CVIS_METHOD_GUIDED_GRADCAM, 1, 0},
                 {CVIS_METHOD_GRADCAM, 0, 1}};
    /* (Integrated Gradients takes the same pass, but ends its run with
     * forward passes for s(X) and s(X0): no gradient is left to look at.) */
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cvis_explainer *e = NULL;
        CHECK_OK(cvis_explainer_new(m, cases[k].method, &e));
        if (cases[k].method == CVIS_METHOD_SMOOTHGRAD)
            CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_SMOOTH_SAMPLES, 2));
        if (cases[k].method == CVIS_METHOD_GRADCAM || cases[k].method == CVIS_METHOD_GUIDED_GRADCAM)
            CHECK_OK(cvis_explainer_set_string(e, CVIS_OPT_LAYER_NAME, "c2"));
        int ndim;
        int64_t shape[4];
        cvis_tensor *out = NULL;
        CHECK_OK(cvis_explainer_output_shape(e, x, &ndim, shape));
        CHECK_OK(cvis_tensor_create(ndim, shape, &out));
        CHECK_OK(cvis_explainer_run(e, x, 1, scores, out));
        cvis_pass *p = explainer_pass(e, cases[k].aux);
        CHECK(p != NULL);
        if (p && (cvis__pass_layer_grad(p, c2) != NULL) != cases[k].keeps_layer)
            fprintf(stderr, "%s: layer c2's gradient %s\n", cvis_method_name(cases[k].method),
                    cases[k].keeps_layer ? "was given back" : "was kept");
        CHECK(p && (cvis__pass_layer_grad(p, c2) != NULL) == cases[k].keeps_layer);
        cvis_tensor_free(out);
        cvis_explainer_free(e);
    }
    cvis_score_free(score);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

TEST_MAIN({
    test_lean_matches();
    test_input_grads_only();
    test_methods_give_gradients_back();
})
