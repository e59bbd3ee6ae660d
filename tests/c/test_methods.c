/* The methods through the public API: bad input gets its own status and
 * leaves the caller's buffer untouched; constant maps are zeros; huge
 * logits stay finite; seeds reproduce; callbacks stop runs. */
#include "../../examples/tutorial_model.h"
#include "check.h"

static cvis_model *tutorial(void)
{
    cvis_model *m = NULL;
    CHECK_OK(tutorial_model(3, &m));
    CHECK_OK(cvis_model_init_weights(m, 1));
    return m;
}

static cvis_tensor *batch(int64_t b, int64_t h, int64_t w, int64_t c, unsigned seed)
{
    int64_t shape[4] = {b, h, w, c};
    cvis_tensor *x = NULL;
    CHECK_OK(cvis_tensor_create(4, shape, &x));
    float *d = cvis_tensor_data(x);
    for (int64_t i = 0; i < cvis_tensor_size(x); i++) {
        seed = seed * 1103515245u + 12345u;
        d[i] = (float)((seed >> 8) & 0xffff) / 65535.0f;
    }
    return x;
}

static cvis_tensor *maps_for(cvis_explainer *e, const cvis_tensor *x, float fill)
{
    int nd;
    int64_t shape[CVIS_MAX_DIMS];
    cvis_tensor *out = NULL;
    CHECK_OK(cvis_explainer_output_shape(e, x, &nd, shape));
    CHECK_OK(cvis_tensor_create(nd, shape, &out));
    for (int64_t i = 0; i < cvis_tensor_size(out); i++)
        cvis_tensor_data(out)[i] = fill;
    return out;
}

static int untouched(const cvis_tensor *t, float fill)
{
    for (int64_t i = 0; i < cvis_tensor_size(t); i++)
        if (cvis_tensor_data(t)[i] != fill)
            return 0;
    return 1;
}

/* Runs method with score and expects `want`, with `out` left as filled. */
static void expect_failure(cvis_explainer *e, const cvis_tensor *x, const cvis_score *s,
                           cvis_status want)
{
    cvis_tensor *out = maps_for(e, x, 123.0f);
    CHECK_STATUS(cvis_explainer_run(e, x, 1, &s, out), want);
    CHECK(untouched(out, 123.0f));
    cvis_tensor_free(out);
}

static void test_bad_input(void)
{
    cvis_model *m = tutorial();
    cvis_tensor *x = batch(3, 128, 128, 3, 1);
    cvis_score *ok, *far, *short_list;
    int idx[3] = {0, 1, 2}, bad = 5, two[2] = {0, 1};
    CHECK_OK(cvis_score_categorical(3, idx, &ok));
    CHECK_OK(cvis_score_categorical(1, &bad, &far));
    CHECK_OK(cvis_score_categorical(2, two, &short_list));
    cvis_explainer *e;
    CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_GRADCAM, &e));
    /* a class index out of range, a list of the wrong length */
    expect_failure(e, x, far, CVIS_E_RANGE);
    expect_failure(e, x, short_list, CVIS_E_SHAPE);
    /* a layer that gives no maps */
    CHECK_OK(cvis_explainer_set_string(e, CVIS_OPT_LAYER_NAME, "flatten"));
    expect_failure(e, x, ok, CVIS_E_LAYER_KIND);
    CHECK_STATUS(cvis_explainer_set_string(e, CVIS_OPT_LAYER_NAME, "nope"), CVIS_E_NOT_FOUND);
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_LAYER, -1));
    /* non-finite values and a zero-size image */
    cvis_tensor_data(x)[77] = NAN;
    expect_failure(e, x, ok, CVIS_E_NONFINITE);
    cvis_tensor_data(x)[77] = INFINITY;
    expect_failure(e, x, ok, CVIS_E_NONFINITE);
    cvis_tensor_data(x)[77] = 0.5f;
    {
        int64_t zshape[4] = {1, 0, 128, 3};
        cvis_tensor *z = NULL, *out = NULL;
        int64_t oshape[3] = {1, 128, 128};
        CHECK_OK(cvis_tensor_create(4, zshape, &z));
        CHECK_OK(cvis_tensor_create(3, oshape, &out));
        CHECK_STATUS(cvis_explainer_run(e, z, 1, (const cvis_score *const *)&ok, out), CVIS_E_SHAPE);
        cvis_tensor_free(z);
        cvis_tensor_free(out);
    }
    /* an output tensor of the wrong shape */
    {
        int64_t oshape[3] = {3, 64, 64};
        cvis_tensor *out = NULL;
        CHECK_OK(cvis_tensor_create(3, oshape, &out));
        CHECK_STATUS(cvis_explainer_run(e, x, 1, (const cvis_score *const *)&ok, out), CVIS_E_SHAPE);
        cvis_tensor_free(out);
    }
    /* the wrong number of scores, NULL arguments, unknown keys */
    {
        cvis_tensor *out = maps_for(e, x, 0);
        const cvis_score *pair[2] = {ok, ok};
        CHECK_STATUS(cvis_explainer_run(e, x, 2, pair, out), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_run(e, x, 1, NULL, out), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_run(NULL, x, 1, pair, out), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_int(e, (cvis_option)999, 1), CVIS_E_INVALID_ARG);
        CHECK_STATUS(cvis_explainer_set_float(e, CVIS_OPT_SMOOTH_NOISE, NAN), CVIS_E_INVALID_ARG);
        CHECK_OK(cvis_explainer_run(e, x, 1, pair, out));
        cvis_tensor_free(out);
    }
    cvis_explainer_free(e);
    /* max_N outside [1, K] (K = 8) */
    CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_SCORECAM, &e));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_MAX_N, 0));
    expect_failure(e, x, ok, CVIS_E_RANGE);
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_MAX_N, 9));
    expect_failure(e, x, ok, CVIS_E_RANGE);
    cvis_explainer_free(e);
    /* a model without convolutions has no layer for CAM methods */
    {
        cvis_model *d = NULL;
        CHECK_OK(cvis_model_new(4, 4, 1, &d));
        CHECK_OK(cvis_model_add_flatten(d, NULL, CVIS_PREV, NULL));
        CHECK_OK(cvis_model_add_dense(d, NULL, CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL));
        cvis_tensor *xs = batch(3, 4, 4, 1, 2);
        cvis_explainer *de;
        CHECK_OK(cvis_explainer_new(d, CVIS_METHOD_LAYERCAM, &de));
        int64_t oshape[3] = {3, 4, 4};
        cvis_tensor *out = NULL;
        CHECK_OK(cvis_tensor_create(3, oshape, &out));
        CHECK_STATUS(cvis_explainer_run(de, xs, 1, (const cvis_score *const *)&ok, out),
                     CVIS_E_LAYER_KIND);
        cvis_explainer_free(de);
        cvis_tensor_free(out);
        cvis_tensor_free(xs);
        cvis_model_free(d);
    }
    cvis_score_free(ok);
    cvis_score_free(far);
    cvis_score_free(short_list);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

static int stop_at_3(void *user, int step, int total, int n, const float *values)
{
    (void)total;
    (void)n;
    (void)values;
    int *calls = user;
    (*calls)++;
    return step >= 3;
}

static void test_callbacks_and_seeds(void)
{
    cvis_model *m = tutorial();
    int seven = 7, layer = 2;
    cvis_score *s;
    CHECK_OK(cvis_score_categorical(1, &seven, &s));
    cvis_explainer *e;
    CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_ACTIVATION_MAXIMIZATION, &e));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_OUTPUT_LAYER, layer));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_STEPS, 10));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_SEED, 42));
    CHECK_OK(cvis_explainer_set_float(e, CVIS_OPT_INPUT_MAX, 1.0));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_JITTER, 16));
    cvis_tensor *a = maps_for(e, NULL, 0), *b = maps_for(e, NULL, 0), *c = maps_for(e, NULL, 0);
    CHECK(cvis_tensor_ndim(a) == 4 && cvis_tensor_dim(a, 1) == 128 && cvis_tensor_dim(a, 3) == 3);
    CHECK_OK(cvis_explainer_run(e, NULL, 1, (const cvis_score *const *)&s, a));
    CHECK_OK(cvis_explainer_run(e, NULL, 1, (const cvis_score *const *)&s, b));
    CHECK(memcmp(cvis_tensor_data(a), cvis_tensor_data(b), (size_t)cvis_tensor_size(a) * 4) == 0);
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_SEED, 43));
    CHECK_OK(cvis_explainer_run(e, NULL, 1, (const cvis_score *const *)&s, c));
    CHECK(memcmp(cvis_tensor_data(a), cvis_tensor_data(c), (size_t)cvis_tensor_size(a) * 4) != 0);
    /* the output stays in the input range */
    float lo = 1e9f, hi = -1e9f;
    for (int64_t i = 0; i < cvis_tensor_size(a); i++) {
        float v = cvis_tensor_data(a)[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    CHECK(lo >= 0.0f && hi <= 1.0f);
    /* a callback that stops at step 3 */
    int calls = 0;
    CHECK_OK(cvis_explainer_set_progress(e, stop_at_3, &calls));
    for (int64_t i = 0; i < cvis_tensor_size(c); i++)
        cvis_tensor_data(c)[i] = -1;
    CHECK_STATUS(cvis_explainer_run(e, NULL, 1, (const cvis_score *const *)&s, c), CVIS_E_CANCELLED);
    CHECK(calls == 3);
    CHECK(untouched(c, -1));
    cvis_explainer_free(e);
    /* Score-CAM's callback per batch */
    int idx[2] = {0, 1};
    cvis_score *s2;
    CHECK_OK(cvis_score_categorical(2, idx, &s2));
    cvis_tensor *x = batch(2, 128, 128, 3, 5);
    CHECK_OK(cvis_explainer_new(m, CVIS_METHOD_SCORECAM, &e));
    CHECK_OK(cvis_explainer_set_int(e, CVIS_OPT_BATCH_SIZE, 4));
    calls = 0;
    CHECK_OK(cvis_explainer_set_progress(e, stop_at_3, &calls));
    cvis_tensor *out = maps_for(e, x, 9);
    /* 2 images x 8 channels in batches of 4: steps 4, 8 -> stop at 8 */
    CHECK_STATUS(cvis_explainer_run(e, x, 1, (const cvis_score *const *)&s2, out), CVIS_E_CANCELLED);
    CHECK(calls == 1 && untouched(out, 9));
    cvis_explainer_free(e);
    cvis_tensor_free(out);
    cvis_tensor_free(x);
    cvis_score_free(s2);
    cvis_tensor_free(a);
    cvis_tensor_free(b);
    cvis_tensor_free(c);
    cvis_score_free(s);
    cvis_model_free(m);
}

/* Zero weights give constant maps: all zeros, never NaN.  Logits near 1000
 * keep Grad-CAM++ finite. */
static void test_numerics(void)
{
    cvis_model *m = tutorial();
    cvis_tensor *x = batch(2, 128, 128, 3, 9);
    int idx[2] = {0, 2};
    cvis_score *s;
    CHECK_OK(cvis_score_categorical(2, idx, &s));
    cvis_method all[] = {CVIS_METHOD_SALIENCY, CVIS_METHOD_GRADCAM, CVIS_METHOD_GRADCAM_PLUS_PLUS,
                         CVIS_METHOD_SCORECAM, CVIS_METHOD_LAYERCAM};
    for (int layer = 0; layer < cvis_model_layer_count(m); layer++)
        for (int k = 0; k < cvis_model_weight_count(m, layer); k++) {
            cvis_tensor *w;
            CHECK_OK(cvis_model_get_weight(m, layer, k, &w));
            memset(cvis_tensor_data(w), 0, (size_t)cvis_tensor_size(w) * sizeof(float));
            CHECK_OK(cvis_model_set_weight(m, layer, k, w));
            cvis_tensor_free(w);
        }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        cvis_tensor *maps = NULL;
        CHECK_OK(cvis_explain(m, all[i], x, s, &maps));
        CHECK(maps && untouched(maps, 0.0f));
        cvis_tensor_free(maps);
    }
    /* huge logits: scale the network up until the logits reach ~1000 */
    CHECK_OK(cvis_model_init_weights(m, 3));
    cvis_tensor *w;
    CHECK_OK(cvis_model_get_weight(m, 5, 0, &w));
    cvis_tensor *p = NULL;
    CHECK_OK(cvis_model_predict(m, x, &p));
    cvis_tensor_free(p);
    cvis_pass *pass;
    CHECK_OK(cvis_pass_new(m, &pass));
    CHECK_OK(cvis_pass_set_int(pass, CVIS_PASS_LOGITS, 1));
    CHECK_OK(cvis_pass_forward(pass, x));
    const cvis_tensor *z = cvis_pass_output(pass, 0);
    float zmax = 0;
    for (int64_t i = 0; i < cvis_tensor_size(z); i++)
        zmax = fabsf(cvis_tensor_data(z)[i]) > zmax ? fabsf(cvis_tensor_data(z)[i]) : zmax;
    float scale = 1000.0f / (zmax > 0 ? zmax : 1);
    for (int64_t i = 0; i < cvis_tensor_size(w); i++)
        cvis_tensor_data(w)[i] *= scale;
    CHECK_OK(cvis_model_set_weight(m, 5, 0, w));
    CHECK_OK(cvis_pass_forward(pass, x));
    z = cvis_pass_output(pass, 0);
    zmax = 0;
    for (int64_t i = 0; i < cvis_tensor_size(z); i++)
        zmax = fabsf(cvis_tensor_data(z)[i]) > zmax ? fabsf(cvis_tensor_data(z)[i]) : zmax;
    CHECK(zmax > 900);
    cvis_tensor *maps = NULL;
    CHECK_OK(cvis_explain(m, CVIS_METHOD_GRADCAM_PLUS_PLUS, x, s, &maps));
    int finite = maps != NULL;
    for (int64_t i = 0; maps && i < cvis_tensor_size(maps); i++)
        finite &= isfinite(cvis_tensor_data(maps)[i]) != 0;
    CHECK(finite);
    cvis_tensor_free(maps);
    cvis_pass_free(pass);
    cvis_tensor_free(w);
    cvis_score_free(s);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

static void test_names_and_filters(void)
{
    cvis_method m;
    CHECK_OK(cvis_method_from_name("gradcam++", &m));
    CHECK(m == CVIS_METHOD_GRADCAM_PLUS_PLUS);
    CHECK(!strcmp(cvis_method_name(CVIS_METHOD_FASTER_SCORECAM), "faster-scorecam"));
    CHECK_STATUS(cvis_method_from_name("gradcam+++", &m), CVIS_E_NOT_FOUND);
    cvis_model *model = tutorial();
    cvis_tensor *f;
    CHECK_OK(cvis_model_get_filters_normalized(model, 1, &f));
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < cvis_tensor_size(f); i++) {
        lo = cvis_tensor_data(f)[i] < lo ? cvis_tensor_data(f)[i] : lo;
        hi = cvis_tensor_data(f)[i] > hi ? cvis_tensor_data(f)[i] : hi;
    }
    CHECK(lo == 0.0f && hi == 1.0f && cvis_tensor_dim(f, 0) == 5 && cvis_tensor_dim(f, 2) == 8);
    cvis_tensor_free(f);
    CHECK_STATUS(cvis_model_get_filters_normalized(model, 3, &f), CVIS_E_LAYER_KIND);
    cvis_tensor *x = batch(1, 128, 128, 3, 4), *outs[3];
    int layers[3] = {0, 1, 2};
    CHECK_OK(cvis_model_feature_maps(model, x, 3, layers, outs));
    CHECK(cvis_tensor_dim(outs[0], 1) == 122 && cvis_tensor_dim(outs[1], 1) == 118 &&
          cvis_tensor_dim(outs[2], 1) == 116 && cvis_tensor_dim(outs[2], 3) == 8);
    for (int i = 0; i < 3; i++)
        cvis_tensor_free(outs[i]);
    cvis_tensor_free(x);
    cvis_model_free(model);
}

TEST_MAIN({
    test_bad_input();
    test_callbacks_and_seeds();
    test_numerics();
    test_names_and_filters();
})
