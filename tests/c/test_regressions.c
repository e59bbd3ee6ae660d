/* Defects found in the core and the model layer, each reproduced by the
 * smallest program that showed it (the fixing commit added it).  Several
 * only fail loudly under `make check-asan`. */
#include "check.h"

static cvis_tensor *filled(int64_t b, int64_t h, int64_t w, int64_t c, float v)
{
    int64_t s[4] = {b, h, w, c};
    cvis_tensor *t = NULL;
    if (cvis_tensor_create(4, s, &t) != CVIS_OK)
        return NULL;
    for (int64_t i = 0; i < cvis_tensor_size(t); i++)
        cvis_tensor_data(t)[i] = v;
    return t;
}

/* A builder that failed after its weights were made (a duplicate name, a
 * kernel larger than its input) freed a NULL weight array walked up to
 * n_w entries: a crash instead of a status. */
static void test_failed_builder_with_weights(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(4, 4, 1, &m));
    CHECK_OK(cvis_model_add_conv2d(m, "c", CVIS_PREV, 2, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_STATUS(cvis_model_add_conv2d(m, "c", CVIS_PREV, 2, 1, 1, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                 CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_model_add_dense(m, "c", CVIS_PREV, 3, CVIS_ACT_LINEAR, NULL), CVIS_E_INVALID_ARG);
    CHECK_STATUS(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 2, 5, 5, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                 CVIS_E_SHAPE);
    CHECK(cvis_model_layer_count(m) == 1);
    cvis_model_free(m);
}

/* cvis__tape_push kept pointers to its input slots across the growth of
 * the slot array: with more than 16 values on the tape, a layer read its
 * inputs from freed memory. */
static void test_long_model_inputs_survive_tape_growth(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(2, 2, 1, &m));
    int first = -1;
    CHECK_OK(cvis_model_add_activation(m, NULL, CVIS_PREV, CVIS_ACT_LINEAR, &first));
    for (int i = 0; i < 40; i++)
        CHECK_OK(cvis_model_add_activation(m, NULL, CVIS_PREV, CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_add_add(m, NULL, first, CVIS_PREV, NULL));
    cvis_tensor *x = filled(1, 2, 2, 1, 1.5f), *y = NULL;
    CHECK_OK(cvis_model_predict(m, x, &y));
    for (int i = 0; y && i < 4; i++)
        CHECK(cvis_tensor_data(y)[i] == 3.0f);
    cvis_tensor_free(y);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

/* Add and multiply broadcast: a (C) input against an (H,W,C) one was
 * accepted, and with a batch of 2 and W == 2 it mixed the two images. */
static void test_add_needs_equal_shapes(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(4, 2, 3, &m));
    int conv = -1, gap = -1;
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 3, 1, 1, 1, CVIS_PADDING_VALID, CVIS_ACT_LINEAR, &conv));
    CHECK_OK(cvis_model_add_global_avg_pool(m, NULL, CVIS_INPUT, &gap));
    CHECK_STATUS(cvis_model_add_add(m, NULL, conv, gap, NULL), CVIS_E_SHAPE);
    CHECK(strstr(cvis_last_error(), "(-1, 4, 2, 3)") && strstr(cvis_last_error(), "(-1, 3)"));
    CHECK_STATUS(cvis_model_add_multiply(m, NULL, gap, conv, NULL), CVIS_E_SHAPE);
    CHECK_OK(cvis_model_add_multiply(m, NULL, conv, CVIS_INPUT, NULL));
    cvis_model_free(m);
}

/* A pass kept answering after layers were added or outputs set: its
 * output lookup indexed past its slot table (garbage or a heap overflow)
 * and backward dereferenced a layer it never computed. */
static void test_pass_after_model_change(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(3, 3, 1, &m));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    cvis_pass *p = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    cvis_tensor *x = filled(1, 3, 3, 1, 1.0f);
    CHECK_OK(cvis_pass_forward(p, x));
    CHECK(cvis_pass_output(p, 0) != NULL);
    for (int i = 0; i < 3; i++)
        CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 2, CVIS_ACT_LINEAR, NULL));
    CHECK(cvis_pass_output(p, 0) == NULL);
    CHECK(cvis_pass_input_grad(p) == NULL);
    CHECK_STATUS(cvis_pass_backward(p, 1, NULL), CVIS_E_STATE);
    CHECK_STATUS(cvis_pass_forward(p, x), CVIS_E_STATE);
    cvis_pass_free(p);
    /* outputs moved to a layer this pass skipped */
    p = NULL;
    int flat = 0, last = 3;
    CHECK_OK(cvis_model_set_outputs(m, 1, &flat));
    CHECK_OK(cvis_pass_new(m, &p));
    CHECK_OK(cvis_pass_forward(p, x));
    CHECK_OK(cvis_model_set_outputs(m, 1, &last));
    CHECK(cvis_pass_output(p, 0) == NULL);
    int64_t s[2] = {1, 2};
    cvis_tensor *d = NULL;
    CHECK_OK(cvis_tensor_create(2, s, &d));
    const cvis_tensor *dl[1] = {d};
    CHECK_STATUS(cvis_pass_backward(p, 1, dl), CVIS_E_STATE);
    CHECK_OK(cvis_pass_forward(p, x));
    CHECK_OK(cvis_pass_backward(p, 1, dl));
    cvis_tensor_free(d);
    cvis_pass_free(p);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

/* An optimizer stepped NaN gradients into the weights; step_model took a
 * pass of any model (reading gradients sized for another model's weights)
 * and did nothing, silently, without weight gradients. */
static void test_optimizer_guards(void)
{
    cvis_optimizer *o = NULL;
    CHECK_OK(cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, 0.1, &o));
    float w[2] = {1, 2}, g[2] = {NAN, 1};
    CHECK_STATUS(cvis_optimizer_step(o, 0, w, g, 2), CVIS_E_NONFINITE);
    CHECK(w[0] == 1 && w[1] == 2);

    cvis_model *a = NULL, *b = NULL;
    CHECK_OK(cvis_model_new(2, 2, 1, &a));
    CHECK_OK(cvis_model_add_flatten(a, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(a, NULL, CVIS_PREV, 2, CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_new(2, 2, 1, &b));
    CHECK_OK(cvis_model_add_flatten(b, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(b, NULL, CVIS_PREV, 50, CVIS_ACT_LINEAR, NULL));
    cvis_pass *pa = NULL, *pb = NULL;
    CHECK_OK(cvis_pass_new(a, &pa));
    CHECK_OK(cvis_pass_new(b, &pb));
    cvis_tensor *x = filled(1, 2, 2, 1, 1.0f);
    CHECK_OK(cvis_pass_forward(pa, x));
    CHECK_OK(cvis_pass_backward(pa, 1, NULL));
    CHECK_STATUS(cvis_optimizer_step_model(o, a, pa), CVIS_E_STATE); /* no weight gradients */
    CHECK_OK(cvis_pass_set_int(pb, CVIS_PASS_WEIGHT_GRADS, 1));
    CHECK_OK(cvis_pass_forward(pb, x));
    CHECK_OK(cvis_pass_backward(pb, 1, NULL));
    CHECK_STATUS(cvis_optimizer_step_model(o, a, pb), CVIS_E_INVALID_ARG);
    CHECK_OK(cvis_optimizer_step_model(o, b, pb));
    /* a submodel's pass steps the shared weights */
    cvis_model *sub = NULL;
    int last = -1;
    CHECK_OK(cvis_model_submodel(b, 1, &last, &sub));
    cvis_pass *ps = NULL;
    CHECK_OK(cvis_pass_new(sub, &ps));
    CHECK_OK(cvis_pass_set_int(ps, CVIS_PASS_WEIGHT_GRADS, 1));
    CHECK_OK(cvis_pass_forward(ps, x));
    CHECK_OK(cvis_pass_backward(ps, 1, NULL));
    CHECK_OK(cvis_optimizer_step_model(o, b, ps));
    cvis_pass_free(ps);
    cvis_model_free(sub);
    cvis_tensor_free(x);
    cvis_pass_free(pa);
    cvis_pass_free(pb);
    cvis_model_free(a);
    cvis_model_free(b);
    cvis_optimizer_free(o);
}

TEST_MAIN({
    test_failed_builder_with_weights();
    test_long_model_inputs_survive_tape_growth();
    test_add_needs_equal_shapes();
    test_pass_after_model_change();
    test_optimizer_guards();
})
