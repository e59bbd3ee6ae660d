/* Models built with the C API, saved as ONNX and loaded back, give the same
 * outputs bit for bit; layer names survive; free input sizes stay free. */
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "core/rng.h"
#include "model/model.h"

/* The tutorial's network (examples/tutorial_model.h), 3 classes. */
static cvis_model *tutorial(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(128, 128, 3, &m));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 7, 7, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 5, 5, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 128, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL));
    CHECK_OK(cvis_model_init_weights(m, 11));
    return m;
}

/* Sets every weight to seeded random values (batch norm variances
 * positive), so that nothing is an identity. */
static void randomize(cvis_model *m, uint64_t seed)
{
    cvis__rng r;
    cvis__rng_seed(&r, seed);
    for (int l = 0; l < cvis_model_layer_count(m); l++)
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            cvis_tensor *w;
            CHECK_OK(cvis_model_get_weight(m, l, k, &w));
            const char *name = cvis_model_weight_name(m, l, k);
            int positive = !strcmp(name, "moving_variance") || !strcmp(name, "gamma");
            for (int64_t i = 0; i < cvis_tensor_size(w); i++)
                cvis_tensor_data(w)[i] = (float)(positive ? 0.5 + cvis__rng_uniform(&r)
                                                          : cvis__rng_uniform(&r) - 0.5);
            CHECK_OK(cvis_model_set_weight(m, l, k, w));
            cvis_tensor_free(w);
        }
}

/* A residual network with batch norm, pooling, a depthwise convolution,
 * padding, concatenation, a product, dropout and global pooling. */
static cvis_model *residual(int64_t h, int64_t w)
{
    cvis_model *m = NULL;
    int stem, bn, act, dw, pw, sum, pool, avg, cat, pad, gate, mul, top;
    CHECK_OK(cvis_model_new(h > 0 ? h : 32, w > 0 ? w : 32, 3, &m));
    if (h < 0) /* the same network with free sizes, through the internal constructor */
        m->g->in_shape[0] = m->g->in_shape[1] = -1;
    CHECK_OK(cvis_model_add_conv2d(m, "stem", CVIS_PREV, 16, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_LINEAR, &stem));
    CHECK_OK(cvis_model_add_batch_norm(m, "stem_bn", stem, 1e-3f, &bn));
    CHECK_OK(cvis_model_add_activation(m, "stem_relu", bn, CVIS_ACT_RELU, &act));
    CHECK_OK(cvis_model_add_conv2d_ex(m, "depthwise", act, 16, 3, 3, 1, 1, 1, 1, 16, CVIS_PADDING_EXPLICIT, 1, 1, 1, 1, 1, CVIS_ACT_RELU6, &dw));
    CHECK_OK(cvis_model_add_conv2d_ex(m, "pointwise", dw, 16, 1, 1, 1, 1, 1, 1, 1, CVIS_PADDING_VALID, 0, 0, 0, 0, 0, CVIS_ACT_LINEAR, &pw));
    CHECK_OK(cvis_model_add_add(m, "residual", act, pw, &sum));
    CHECK_OK(cvis_model_add_pool2d(m, "maxpool", sum, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_VALID, &pool));
    CHECK_OK(cvis_model_add_pool2d(m, "avgpool", sum, CVIS_POOL_AVG, 3, 3, 2, 2, CVIS_PADDING_SAME, &avg));
    CHECK_OK(cvis_model_add_concat(m, "concat", 2, (int[]){pool, avg}, &cat));
    CHECK_OK(cvis_model_add_zero_padding(m, "pad", cat, 1, 0, 2, 1, &pad));
    CHECK_OK(cvis_model_add_conv2d_ex(m, "gate", pad, 32, 3, 3, 2, 2, 2, 2, 2, CVIS_PADDING_SAME, 0, 0, 0, 0, 1, CVIS_ACT_SIGMOID, &gate));
    CHECK_OK(cvis_model_add_conv2d(m, "top", pad, 32, 3, 3, 2, CVIS_PADDING_SAME, CVIS_ACT_LINEAR, &top));
    CHECK_OK(cvis_model_add_leaky_relu(m, "leaky", top, 0.2f, &top));
    CHECK_OK(cvis_model_add_multiply(m, "gated", top, gate, &mul));
    CHECK_OK(cvis_model_add_activation(m, "swish", mul, CVIS_ACT_HARD_SWISH, NULL));
    CHECK_OK(cvis_model_add_global_avg_pool(m, "gap", CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dropout(m, "dropout", CVIS_PREV, 0.3f, NULL));
    CHECK_OK(cvis_model_add_dense(m, "logits", CVIS_PREV, 5, CVIS_ACT_SOFTMAX, NULL));
    randomize(m, 5);
    return m;
}

static cvis_tensor *random_input(int64_t b, int64_t h, int64_t w, uint64_t seed)
{
    cvis_tensor *x = NULL;
    CHECK_OK(cvis_tensor_create(4, (int64_t[]){b, h, w, 3}, &x));
    cvis__rng r;
    cvis__rng_seed(&r, seed);
    for (int64_t i = 0; x && i < cvis_tensor_size(x); i++)
        cvis_tensor_data(x)[i] = (float)(2 * cvis__rng_uniform(&r) - 1);
    return x;
}

/* Predictions of a and b on x, equal bit for bit. */
static void same_outputs(const cvis_model *a, const cvis_model *b, const cvis_tensor *x)
{
    cvis_tensor *ya = NULL, *yb = NULL;
    CHECK_OK(cvis_model_predict(a, x, &ya));
    CHECK_OK(cvis_model_predict(b, x, &yb));
    if (ya && yb) {
        CHECK(cvis_tensor_size(ya) == cvis_tensor_size(yb));
        CHECK(!memcmp(cvis_tensor_data(ya), cvis_tensor_data(yb),
                      (size_t)cvis_tensor_size(ya) * sizeof(float)));
    }
    cvis_tensor_free(ya);
    cvis_tensor_free(yb);
}

static cvis_model *round_trip(const cvis_model *m)
{
    void *data = NULL;
    size_t size = 0;
    cvis_model *r = NULL;
    CHECK_OK(cvis_model_save_onnx_memory(m, &data, &size));
    CHECK(size > 0);
    if (data)
        CHECK_OK(cvis_model_load_onnx_memory(data, size, &r));
    cvis_free(data);
    return r;
}

static void test_tutorial(void)
{
    cvis_model *m = tutorial();
    char path[] = "/tmp/cvis_onnx_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK_OK(cvis_model_save_onnx(m, path));
    cvis_model *r = NULL;
    CHECK_OK(cvis_model_load_onnx(path, &r));
    remove(path);
    if (r) {
        cvis_tensor *x = random_input(2, 128, 128, 3);
        same_outputs(m, r, x);
        cvis_tensor_free(x);
        CHECK(cvis_model_layer_count(r) == 6);
        for (int l = 0; l < 6; l++)
            CHECK(!strcmp(cvis_model_layer_name(m, l), cvis_model_layer_name(r, l)));
        CHECK(cvis_model_layer_is_conv(r, 2) && !cvis_model_layer_is_conv(r, 3));
        /* filters come back as they were */
        cvis_tensor *f0, *f1;
        CHECK_OK(cvis_model_get_filters(m, 1, &f0, NULL));
        CHECK_OK(cvis_model_get_filters(r, 1, &f1, NULL));
        CHECK(!memcmp(cvis_tensor_data(f0), cvis_tensor_data(f1), 8 * 8 * 25 * sizeof(float)));
        cvis_tensor_free(f0);
        cvis_tensor_free(f1);
        int64_t hwc[3];
        CHECK_OK(cvis_model_input_shape(r, hwc));
        CHECK(hwc[0] == 128 && hwc[1] == 128 && hwc[2] == 3);
    }
    cvis_model_free(r);
    cvis_model_free(m);
    CHECK_STATUS(cvis_model_save_onnx(NULL, "x.onnx"), CVIS_E_INVALID_ARG);
}

static void test_residual(void)
{
    cvis_model *m = residual(32, 32);
    cvis_model *r = round_trip(m);
    if (r) {
        cvis_tensor *x = random_input(3, 32, 32, 9);
        same_outputs(m, r, x);
        cvis_tensor_free(x);
        /* conv + batch norm + relu became one layer answering to all names */
        int stem, bn, relu;
        CHECK_OK(cvis_model_find_layer(r, "stem", &stem));
        CHECK_OK(cvis_model_find_layer(r, "stem_bn", &bn));
        CHECK_OK(cvis_model_find_layer(r, "stem_relu", &relu));
        CHECK(stem == bn && bn == relu);
        /* and a second round trip changes nothing */
        cvis_model *r2 = round_trip(r);
        if (r2) {
            CHECK(cvis_model_layer_count(r2) == cvis_model_layer_count(r));
            cvis_tensor *x2 = random_input(1, 32, 32, 10);
            same_outputs(r, r2, x2);
            cvis_tensor_free(x2);
        }
        cvis_model_free(r2);
    }
    cvis_model_free(r);
    cvis_model_free(m);
}

static void test_free_sizes(void)
{
    cvis_model *m = residual(-1, -1);
    cvis_model *r = round_trip(m);
    if (r) {
        int64_t hwc[3];
        CHECK_OK(cvis_model_input_shape(r, hwc));
        CHECK(hwc[0] == -1 && hwc[1] == -1 && hwc[2] == 3);
        cvis_tensor *x = random_input(2, 40, 24, 4);
        same_outputs(m, r, x);
        cvis_tensor_free(x);
    }
    cvis_model_free(r);
    cvis_model_free(m);
}

TEST_MAIN({
    test_tutorial();
    test_residual();
    test_free_sizes();
})
