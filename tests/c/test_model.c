/* Models through the public API: builders and names, the layer table,
 * every error path (status and message), submodels, prediction against a
 * pass, model gradients against finite differences, optimizers against
 * hand-computed updates, cross-entropy, a few training steps, and a sweep
 * of allocation failures. */
#include <pthread.h>

#include "check.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

/* ------------------------------------------------------------ helpers */

static cvis__rng rng;

/* Forgets the last message, so that a failure must write its own. */
static void clear_error(void)
{
    cvis__fail(CVIS_OK, "%s", "");
}

static void expect_fail(const char *file, int line, const char *expr, cvis_status got,
                        cvis_status want, const char *needle)
{
    const char *msg = cvis_last_error();
    int ok = got == want && msg && msg[0] && (!needle || strstr(msg, needle));
    if (ok) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "%s:%d: %s -> %s, expected %s with a message naming \"%s\" (got \"%s\")\n",
                file, line, expr, cvis_status_string(got), cvis_status_string(want),
                needle ? needle : "", msg ? msg : "(null)");
    }
}

/* A call that must fail with `status` and a fresh message containing
 * `needle` (NULL: any non-empty message). */
#define EXPECT_FAIL(call, status, needle)                                        \
    do {                                                                         \
        clear_error();                                                           \
        cvis_status st__ = (call);                                               \
        expect_fail(__FILE__, __LINE__, #call, st__, (status), (needle));        \
    } while (0)

static cvis_tensor *tensor4(int64_t b, int64_t h, int64_t w, int64_t c)
{
    int64_t s[4] = {b, h, w, c};
    cvis_tensor *t = NULL;
    if (cvis_tensor_create(4, s, &t) != CVIS_OK)
        return NULL;
    return t;
}

static cvis_tensor *tensor_n(int ndim, const int64_t *shape)
{
    cvis_tensor *t = NULL;
    if (cvis_tensor_create(ndim, shape, &t) != CVIS_OK)
        return NULL;
    return t;
}

static void fill_uniform(cvis_tensor *t, double lo, double hi)
{
    float *d = cvis_tensor_data(t);
    for (int64_t i = 0; i < cvis_tensor_size(t); i++)
        d[i] = (float)(lo + (hi - lo) * cvis__rng_uniform(&rng));
}

/* Sets weight k of a layer to uniform random values in [lo, hi). */
static void set_weight_uniform(cvis_model *m, int layer, int k, double lo, double hi)
{
    cvis_tensor *w = NULL;
    CHECK_OK(cvis_model_get_weight(m, layer, k, &w));
    if (!w)
        return;
    fill_uniform(w, lo, hi);
    CHECK_OK(cvis_model_set_weight(m, layer, k, w));
    cvis_tensor_free(w);
}

static int same_tensor(const cvis_tensor *a, const cvis_tensor *b)
{
    if (!a || !b || cvis_tensor_ndim(a) != cvis_tensor_ndim(b) ||
        cvis_tensor_size(a) != cvis_tensor_size(b))
        return 0;
    for (int i = 0; i < cvis_tensor_ndim(a); i++)
        if (cvis_tensor_dim(a, i) != cvis_tensor_dim(b, i))
            return 0;
    return !memcmp(cvis_tensor_data(a), cvis_tensor_data(b),
                   (size_t)cvis_tensor_size(a) * sizeof(float));
}

/* The tutorial's network: Conv2D(8,7,relu) Conv2D(8,5,relu) Conv2D(8,3,relu)
 * Flatten Dense(128,relu) Dense(classes,softmax) on (h,w,3). */
static cvis_model *tutorial(int64_t h, int64_t w, int classes)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(h, w, 3, &m));
    if (!m)
        return NULL;
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 7, 7, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 5, 5, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 128, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, classes, CVIS_ACT_SOFTMAX, NULL));
    return m;
}

/* ------------------------------------------------------ version, status */

static void test_version_and_status(void)
{
    CHECK(cvis_version() == CVIS_VERSION_NUMBER);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", CVIS_VERSION_MAJOR, CVIS_VERSION_MINOR,
             CVIS_VERSION_PATCH);
    CHECK(!strcmp(cvis_version_string(), buf));
    for (int s = 0; s <= CVIS_E_INTERNAL; s++)
        CHECK(!strncmp(cvis_status_string((cvis_status)s), s ? "CVIS_E_" : "CVIS_OK", 7));
    CHECK(!strcmp(cvis_status_string((cvis_status)999), "unknown status"));
    CHECK(strstr(cvis_status_string(CVIS_E_SHAPE), "shape") != NULL);
}

/* ------------------------------------------------- builders and names */

static void test_builders_and_names(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(16, 16, 3, &m));
    int idx = -5, c0, c1, p0, a0;
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 4, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, &c0));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_LINEAR, &c1));
    CHECK(c0 == 0 && c1 == 1);
    /* a user name that the automatic scheme would give next is skipped */
    CHECK_OK(cvis_model_add_conv2d(m, "conv2d_2", CVIS_PREV, 4, 1, 1, 1, CVIS_PADDING_VALID,
                                   CVIS_ACT_LINEAR, &idx));
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 4, 1, 1, 1, CVIS_PADDING_VALID,
                                   CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_add_conv2d_ex(m, NULL, CVIS_PREV, 8, 3, 3, 1, 1, 1, 1, 4,
                                      CVIS_PADDING_SAME, 0, 0, 0, 0, 1, CVIS_ACT_RELU6, NULL));
    CHECK_OK(cvis_model_add_conv2d_ex(m, NULL, CVIS_PREV, 8, 3, 3, 1, 1, 1, 1, 2,
                                      CVIS_PADDING_EXPLICIT, 1, 1, 1, 1, 0, CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_add_batch_norm(m, NULL, CVIS_PREV, 1e-3f, NULL));
    CHECK_OK(cvis_model_add_activation(m, NULL, CVIS_PREV, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_activation(m, NULL, CVIS_PREV, CVIS_ACT_TANH, NULL));
    CHECK_OK(cvis_model_add_leaky_relu(m, NULL, CVIS_PREV, 0.2f, NULL));
    CHECK_OK(cvis_model_add_pool2d(m, NULL, CVIS_PREV, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_VALID, &p0));
    CHECK_OK(cvis_model_add_pool2d(m, NULL, CVIS_PREV, CVIS_POOL_AVG, 3, 3, 1, 1, CVIS_PADDING_SAME, NULL));
    CHECK_OK(cvis_model_add_pool2d(m, NULL, CVIS_PREV, CVIS_POOL_MAX, 3, 3, 1, 1, CVIS_PADDING_SAME, NULL));
    CHECK_OK(cvis_model_add_zero_padding(m, NULL, CVIS_PREV, 1, 0, 0, 1, NULL));
    CHECK_OK(cvis_model_add_add(m, NULL, CVIS_PREV, CVIS_PREV, &a0));
    CHECK_OK(cvis_model_add_multiply(m, NULL, a0, a0, NULL));
    int cat_in[2] = {a0, a0 + 1};
    CHECK_OK(cvis_model_add_concat(m, NULL, 2, cat_in, NULL));
    CHECK_OK(cvis_model_add_dropout(m, NULL, CVIS_PREV, 0.25f, NULL));
    CHECK_OK(cvis_model_add_global_avg_pool(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 5, CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_add_activation(m, NULL, CVIS_PREV, CVIS_ACT_SOFTMAX, NULL));
    CHECK_OK(cvis_model_add_flatten(m, "my flatten", CVIS_PREV, NULL));

    static const char *names[] = {
        "conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "depthwise_conv2d", "conv2d_4",
        "batch_normalization", "re_lu", "activation", "leaky_re_lu", "max_pooling2d",
        "average_pooling2d", "max_pooling2d_1", "zero_padding2d", "add", "multiply",
        "concatenate", "dropout", "global_average_pooling2d", "dense", "softmax", "my flatten"};
    static const char *types[] = {
        "Conv2D", "Conv2D", "Conv2D", "Conv2D", "DepthwiseConv2D", "Conv2D", "BatchNormalization",
        "ReLU", "Activation", "LeakyReLU", "MaxPooling2D", "AveragePooling2D", "MaxPooling2D",
        "ZeroPadding2D", "Add", "Multiply", "Concatenate", "Dropout", "GlobalAveragePooling2D",
        "Dense", "Softmax", "Flatten"};
    int n = (int)(sizeof names / sizeof *names);
    CHECK(cvis_model_layer_count(m) == n);
    for (int i = 0; i < n && i < cvis_model_layer_count(m); i++) {
        const char *nm = cvis_model_layer_name(m, i), *ty = cvis_model_layer_type(m, i);
        if (!nm || strcmp(nm, names[i]) || !ty || strcmp(ty, types[i]))
            fprintf(stderr, "layer %d: %s (%s), expected %s (%s)\n", i, nm ? nm : "NULL",
                    ty ? ty : "NULL", names[i], types[i]);
        CHECK(nm && !strcmp(nm, names[i]));
        CHECK(ty && !strcmp(ty, types[i]));
        int want_conv = !strncmp(types[i], "Conv2D", 6) || !strcmp(types[i], "DepthwiseConv2D");
        CHECK(cvis_model_layer_is_conv(m, i) == want_conv);
    }
    /* output shapes of a few */
    int nd;
    int64_t s[CVIS_MAX_DIMS];
    CHECK_OK(cvis_model_layer_output_shape(m, 4, &nd, s));
    CHECK(nd == 3 && s[0] == 16 && s[1] == 16 && s[2] == 8);
    CHECK_OK(cvis_model_layer_output_shape(m, p0, &nd, s));
    CHECK(nd == 3 && s[0] == 8 && s[1] == 8 && s[2] == 8);
    CHECK_OK(cvis_model_layer_output_shape(m, 13, &nd, s)); /* zero padding */
    CHECK(nd == 3 && s[0] == 9 && s[1] == 9 && s[2] == 8);
    CHECK_OK(cvis_model_layer_output_shape(m, 16, &nd, s)); /* concat */
    CHECK(nd == 3 && s[2] == 16);
    CHECK_OK(cvis_model_layer_output_shape(m, -1, &nd, s));
    CHECK(nd == 1 && s[0] == 5);
    /* weights: names, counts, the Keras layouts */
    CHECK(cvis_model_weight_count(m, 0) == 2);
    CHECK(!strcmp(cvis_model_weight_name(m, 0, 0), "kernel"));
    CHECK(!strcmp(cvis_model_weight_name(m, 0, 1), "bias"));
    CHECK(cvis_model_weight_count(m, 5) == 1); /* no bias */
    CHECK(cvis_model_weight_count(m, 6) == 4);
    CHECK(!strcmp(cvis_model_weight_name(m, 6, 3), "moving_variance"));
    CHECK(cvis_model_weight_count(m, 7) == 0);
    CHECK(cvis_model_weight_name(m, 0, 2) == NULL);
    cvis_tensor *f = NULL, *b = NULL;
    CHECK_OK(cvis_model_get_filters(m, 4, &f, &b)); /* depthwise: (3,3,1,8) */
    CHECK(f && cvis_tensor_ndim(f) == 4 && cvis_tensor_dim(f, 0) == 3 && cvis_tensor_dim(f, 2) == 1 &&
          cvis_tensor_dim(f, 3) == 8);
    CHECK(b && cvis_tensor_ndim(b) == 1 && cvis_tensor_dim(b, 0) == 8);
    cvis_tensor_free(f);
    cvis_tensor_free(b);
    f = b = NULL;
    CHECK_OK(cvis_model_get_filters(m, 5, &f, &b)); /* grouped, no bias: zero bias */
    CHECK(f && cvis_tensor_dim(f, 2) == 4 && cvis_tensor_dim(f, 3) == 8);
    CHECK(b && cvis_tensor_dim(b, 0) == 8 && cvis_tensor_data(b)[3] == 0);
    cvis_tensor_free(f);
    cvis_tensor_free(b);
    /* Glorot-uniform init is deterministic per seed, batch norm identity */
    cvis_tensor *k1 = NULL, *k2 = NULL, *gamma = NULL;
    CHECK_OK(cvis_model_init_weights(m, 5));
    CHECK_OK(cvis_model_get_weight(m, 0, 0, &k1));
    CHECK_OK(cvis_model_init_weights(m, 5));
    CHECK_OK(cvis_model_get_weight(m, 0, 0, &k2));
    CHECK(same_tensor(k1, k2));
    double limit = sqrt(6.0 / (3 * 3 * 3 + 3 * 3 * 4)), mx = 0;
    for (int64_t i = 0; k1 && i < cvis_tensor_size(k1); i++)
        mx = fmax(mx, fabs(cvis_tensor_data(k1)[i]));
    CHECK(mx <= limit && mx > 0.5 * limit);
    cvis_tensor_free(k2);
    k2 = NULL;
    CHECK_OK(cvis_model_init_weights(m, 6));
    CHECK_OK(cvis_model_get_weight(m, 0, 0, &k2));
    CHECK(!same_tensor(k1, k2));
    CHECK_OK(cvis_model_get_weight(m, 6, 0, &gamma));
    CHECK(gamma && cvis_tensor_data(gamma)[0] == 1.0f);
    cvis_tensor_free(k1);
    cvis_tensor_free(k2);
    cvis_tensor_free(gamma);

    /* the model runs: softmax rows sum to 1 */
    cvis_tensor *x = tensor4(2, 16, 16, 3), *y = NULL;
    fill_uniform(x, 0, 1);
    CHECK_OK(cvis_model_predict(m, x, &y));
    CHECK(y && cvis_tensor_ndim(y) == 2 && cvis_tensor_dim(y, 0) == 2 && cvis_tensor_dim(y, 1) == 5);
    for (int r = 0; y && r < 2; r++) {
        double sum = 0;
        for (int k = 0; k < 5; k++)
            sum += cvis_tensor_data(y)[r * 5 + k];
        CHECK_NEAR(sum, 1.0, 1e-5);
    }
    cvis_tensor_free(y);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

static void test_layer_table(void)
{
    cvis_model *m = tutorial(128, 128, 3);
    if (!m)
        return;
    static const int64_t want[6][3] = {{122, 122, 8}, {118, 118, 8}, {116, 116, 8},
                                       {116 * 116 * 8}, {128}, {3}};
    static const int want_nd[6] = {3, 3, 3, 1, 1, 1};
    static const char *types[6] = {"Conv2D", "Conv2D", "Conv2D", "Flatten", "Dense", "Dense"};
    static const char *names[6] = {"conv2d", "conv2d_1", "conv2d_2", "flatten", "dense", "dense_1"};
    CHECK(cvis_model_layer_count(m) == 6);
    for (int i = 0; i < 6; i++) {
        int nd = 0;
        int64_t s[CVIS_MAX_DIMS];
        CHECK_OK(cvis_model_layer_output_shape(m, i, &nd, s));
        CHECK(nd == want_nd[i]);
        for (int d = 0; d < nd && d < 3; d++)
            CHECK(s[d] == want[i][d]);
        CHECK(!strcmp(cvis_model_layer_type(m, i), types[i]));
        CHECK(!strcmp(cvis_model_layer_name(m, i), names[i]));
        CHECK(cvis_model_layer_is_conv(m, i) == (i < 3));
        int found = -1;
        CHECK_OK(cvis_model_find_layer(m, names[i], &found));
        CHECK(found == i);
        /* negative indices count from the end */
        CHECK(!strcmp(cvis_model_layer_name(m, i - 6), names[i]));
        CHECK(cvis_model_layer_is_conv(m, i - 6) == (i < 3));
    }
    int64_t hwc[3];
    CHECK_OK(cvis_model_input_shape(m, hwc));
    CHECK(hwc[0] == 128 && hwc[1] == 128 && hwc[2] == 3);
    CHECK(cvis_model_output_count(m) == 1 && cvis_model_output_layer(m, 0) == 5);
    CHECK(cvis_model_output_layer(m, 1) == -1);
    cvis_tensor *f = NULL, *b = NULL;
    CHECK_OK(cvis_model_get_filters(m, 1, &f, &b));
    CHECK(f && cvis_tensor_dim(f, 0) == 5 && cvis_tensor_dim(f, 1) == 5 && cvis_tensor_dim(f, 2) == 8 &&
          cvis_tensor_dim(f, 3) == 8);
    cvis_tensor_free(f);
    cvis_tensor_free(b);
    f = NULL;
    CHECK_OK(cvis_model_get_filters(m, -6, &f, NULL)); /* either output may be NULL */
    CHECK(f && cvis_tensor_dim(f, 0) == 7 && cvis_tensor_dim(f, 2) == 3);
    cvis_tensor_free(f);
    cvis_model_free(m);
}

/* ------------------------------------------------------------- errors */

static void test_error_paths(void)
{
    cvis_model *m = NULL, *none = NULL;
    CHECK_OK(cvis_model_new(8, 8, 2, &m));
    if (!m)
        return;
    int c = -1;
    CHECK_OK(cvis_model_add_conv2d(m, "first", CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, &c));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL));
    int n_layers = cvis_model_layer_count(m), out = 123;

    /* unknown layer name */
    EXPECT_FAIL(cvis_model_find_layer(m, "conv2d_9", &out), CVIS_E_NOT_FOUND, "conv2d_9");
    CHECK(out == 123);
    /* index out of range */
    int nd;
    int64_t s[CVIS_MAX_DIMS];
    EXPECT_FAIL(cvis_model_layer_output_shape(m, 3, &nd, s), CVIS_E_RANGE, "3");
    EXPECT_FAIL(cvis_model_layer_output_shape(m, -4, &nd, s), CVIS_E_RANGE, "-4");
    cvis_tensor *t = NULL;
    EXPECT_FAIL(cvis_model_get_weight(m, 7, 0, &t), CVIS_E_RANGE, "7");
    EXPECT_FAIL(cvis_model_get_weight(m, 0, 2, &t), CVIS_E_RANGE, "first");
    EXPECT_FAIL(cvis_model_get_weight(m, 1, 0, &t), CVIS_E_RANGE, NULL);
    CHECK(t == NULL);
    int bad_out = 3;
    EXPECT_FAIL(cvis_model_set_outputs(m, 1, &bad_out), CVIS_E_RANGE, "3");
    CHECK(cvis_model_output_layer(m, 0) == 2);
    EXPECT_FAIL(cvis_model_submodel(m, 1, &bad_out, &none), CVIS_E_RANGE, NULL);
    CHECK(none == NULL);
    EXPECT_FAIL(cvis_model_add_dense(m, NULL, 17, 3, CVIS_ACT_LINEAR, NULL), CVIS_E_RANGE, "17");
    EXPECT_FAIL(cvis_model_add_add(m, NULL, 0, 9, NULL), CVIS_E_RANGE, "9");
    EXPECT_FAIL(cvis_model_get_filters(m, 5, &t, NULL), CVIS_E_RANGE, NULL);
    CHECK(cvis_model_layer_name(m, 3) == NULL && cvis_model_layer_type(m, -4) == NULL);
    CHECK(cvis_model_layer_is_conv(m, 99) == 0 && cvis_model_weight_count(m, 99) == 0);
    /* wrong kind of layer */
    EXPECT_FAIL(cvis_model_get_filters(m, 2, &t, NULL), CVIS_E_LAYER_KIND, "dense");
    /* incompatible shapes */
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, 2, 4, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                CVIS_E_SHAPE, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 4, 9, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                CVIS_E_SHAPE, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d_ex(m, NULL, CVIS_INPUT, 4, 3, 3, 1, 1, 1, 1, 3,
                                         CVIS_PADDING_SAME, 0, 0, 0, 0, 1, CVIS_ACT_LINEAR, NULL),
                CVIS_E_SHAPE, "groups");
    EXPECT_FAIL(cvis_model_add_add(m, NULL, 0, CVIS_INPUT, NULL), CVIS_E_SHAPE, NULL);
    EXPECT_FAIL(cvis_model_add_multiply(m, NULL, 0, 2, NULL), CVIS_E_SHAPE, NULL);
    int cat[2] = {0, CVIS_INPUT};
    EXPECT_FAIL(cvis_model_add_concat(m, NULL, 2, cat, NULL), CVIS_E_SHAPE, NULL);
    EXPECT_FAIL(cvis_model_add_pool2d(m, NULL, CVIS_INPUT, CVIS_POOL_MAX, 9, 2, 1, 1, CVIS_PADDING_VALID, NULL),
                CVIS_E_SHAPE, NULL);
    EXPECT_FAIL(cvis_model_add_zero_padding(m, NULL, 2, 1, 1, 1, 1, NULL), CVIS_E_SHAPE, NULL);
    EXPECT_FAIL(cvis_model_add_global_avg_pool(m, NULL, 1, NULL), CVIS_E_SHAPE, NULL);
    cvis_tensor *w3 = tensor4(3, 3, 2, 5);
    EXPECT_FAIL(cvis_model_set_weight(m, 0, 0, w3), CVIS_E_SHAPE, "kernel");
    cvis_tensor_free(w3);
    /* the model is unchanged by the failures */
    CHECK(cvis_model_layer_count(m) == n_layers);

    /* NaN and infinity */
    cvis_tensor *k = NULL;
    CHECK_OK(cvis_model_get_weight(m, 0, 0, &k));
    cvis_tensor *k_before = NULL;
    CHECK_OK(cvis_tensor_clone(k, &k_before));
    cvis_tensor_data(k)[5] = NAN;
    EXPECT_FAIL(cvis_model_set_weight(m, 0, 0, k), CVIS_E_NONFINITE, "NaN");
    cvis_tensor_data(k)[5] = INFINITY;
    EXPECT_FAIL(cvis_model_set_weight(m, 0, 0, k), CVIS_E_NONFINITE, "infinity");
    cvis_tensor_free(k);
    k = NULL;
    CHECK_OK(cvis_model_get_weight(m, 0, 0, &k));
    CHECK(same_tensor(k, k_before)); /* untouched */
    cvis_tensor_free(k);
    cvis_tensor_free(k_before);

    cvis_tensor *x = tensor4(1, 8, 8, 2), *y = NULL;
    fill_uniform(x, 0, 1);
    cvis_tensor_data(x)[17] = NAN;
    EXPECT_FAIL(cvis_model_predict(m, x, &y), CVIS_E_NONFINITE, "input");
    CHECK(y == NULL);
    cvis_tensor_data(x)[17] = 0.5f;
    cvis_tensor *x_bad = tensor4(1, 8, 9, 2);
    EXPECT_FAIL(cvis_model_predict(m, x_bad, &y), CVIS_E_SHAPE, "8x9x2");
    cvis_tensor_free(x_bad);
    int64_t s3[3] = {8, 8, 2};
    cvis_tensor *x3 = tensor_n(3, s3);
    EXPECT_FAIL(cvis_model_predict(m, x3, &y), CVIS_E_SHAPE, "rank 3");
    cvis_tensor_free(x3);
    cvis_tensor *x0 = tensor4(0, 8, 8, 2);
    EXPECT_FAIL(cvis_model_predict(m, x0, &y), CVIS_E_SHAPE, NULL);
    cvis_tensor_free(x0);
    CHECK(y == NULL);

    /* passes */
    cvis_pass *p = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    EXPECT_FAIL(cvis_pass_backward(p, 1, NULL), CVIS_E_STATE, "forward");
    CHECK(cvis_pass_output(p, 0) == NULL && cvis_pass_input_grad(p) == NULL);
    CHECK_OK(cvis_pass_forward(p, x));
    int64_t sd[2] = {1, 4};
    cvis_tensor *d_bad = tensor_n(2, sd), *d = NULL;
    int64_t sd3[2] = {1, 3};
    d = tensor_n(2, sd3);
    const cvis_tensor *dl[1] = {d_bad};
    EXPECT_FAIL(cvis_pass_backward(p, 1, dl), CVIS_E_SHAPE, "(1, 4)");
    dl[0] = d;
    EXPECT_FAIL(cvis_pass_backward(p, 2, dl), CVIS_E_INVALID_ARG, "2");
    cvis_tensor_data(d)[1] = NAN;
    EXPECT_FAIL(cvis_pass_backward(p, 1, dl), CVIS_E_NONFINITE, "gradient");
    cvis_tensor_data(d)[1] = 1;
    CHECK_OK(cvis_pass_backward(p, 1, dl));
    CHECK(cvis_pass_input_grad(p) != NULL);
    EXPECT_FAIL(cvis_pass_set_int(p, CVIS_PASS_GRAD_LAYER, 3), CVIS_E_RANGE, "3");
    EXPECT_FAIL(cvis_pass_set_int(p, CVIS_PASS_DROP_ACTIVATION, -2), CVIS_E_RANGE, NULL);
    EXPECT_FAIL(cvis_pass_set_int(p, (cvis_pass_option)77, 1), CVIS_E_INVALID_ARG, "77");
    CHECK(cvis_pass_layer_output(p, 7) == NULL && cvis_pass_layer_grad(p, -9) == NULL);
    CHECK(cvis_pass_weight_grad(p, 0, 0) == NULL); /* weight gradients were not asked for */
    cvis_tensor_free(d_bad);
    cvis_tensor_free(d);
    cvis_pass_free(p);

    /* bad arguments */
    EXPECT_FAIL(cvis_model_new(0, 8, 3, &none), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_new(8, -1, 3, &none), CVIS_E_INVALID_ARG, NULL);
    CHECK(none == NULL);
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 0, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 4, 3, 3, 0, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 4, 3, 3, 1, (cvis_padding)9, CVIS_ACT_RELU, NULL),
                CVIS_E_INVALID_ARG, "9");
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 4, 3, 3, 1, CVIS_PADDING_EXPLICIT, CVIS_ACT_RELU, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 4, 3, 3, 1, CVIS_PADDING_VALID, (cvis_activation)42, NULL),
                CVIS_E_INVALID_ARG, "42");
    EXPECT_FAIL(cvis_model_add_conv2d(m, NULL, CVIS_INPUT, 4, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_HARD_SWISH, NULL),
                CVIS_E_UNSUPPORTED, "hard_swish");
    EXPECT_FAIL(cvis_model_add_conv2d_ex(m, NULL, CVIS_INPUT, 4, 3, 3, 1, 1, 1, 1, 1,
                                         CVIS_PADDING_EXPLICIT, -1, 0, 0, 0, 1, CVIS_ACT_LINEAR, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_dense(m, NULL, CVIS_PREV, 0, CVIS_ACT_LINEAR, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_activation(m, NULL, CVIS_PREV, (cvis_activation)-3, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_leaky_relu(m, NULL, CVIS_PREV, NAN, NULL), CVIS_E_INVALID_ARG, "alpha");
    EXPECT_FAIL(cvis_model_add_pool2d(m, NULL, CVIS_INPUT, (cvis_pool)5, 2, 2, 2, 2, CVIS_PADDING_VALID, NULL),
                CVIS_E_INVALID_ARG, "5");
    EXPECT_FAIL(cvis_model_add_pool2d(m, NULL, CVIS_INPUT, CVIS_POOL_AVG, 2, 0, 2, 2, CVIS_PADDING_VALID, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_pool2d(m, NULL, CVIS_INPUT, CVIS_POOL_AVG, 2, 2, 2, 2, CVIS_PADDING_EXPLICIT, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_batch_norm(m, NULL, CVIS_PREV, 0.0f, NULL), CVIS_E_INVALID_ARG, "epsilon");
    EXPECT_FAIL(cvis_model_add_dropout(m, NULL, CVIS_PREV, 1.0f, NULL), CVIS_E_INVALID_ARG, "rate");
    EXPECT_FAIL(cvis_model_add_zero_padding(m, NULL, CVIS_INPUT, 1, -1, 0, 0, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_concat(m, NULL, 0, cat, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_concat(m, NULL, -2, cat, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d(m, "first", CVIS_INPUT, 4, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                CVIS_E_INVALID_ARG, "first");
    EXPECT_FAIL(cvis_model_add_flatten(m, "", CVIS_PREV, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_set_outputs(m, 0, &c), CVIS_E_INVALID_ARG, NULL);
    int64_t neg[2] = {2, -1}, big[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_FAIL(cvis_tensor_create(2, neg, &t), CVIS_E_INVALID_ARG, "negative");
    EXPECT_FAIL(cvis_tensor_create(9, big, &t), CVIS_E_INVALID_ARG, "rank");
    EXPECT_FAIL(cvis_tensor_create(-1, big, &t), CVIS_E_INVALID_ARG, "rank");
    EXPECT_FAIL(cvis_set_num_threads(-1), CVIS_E_INVALID_ARG, NULL);
    int labels[1] = {3};
    double loss = -1;
    cvis_tensor *z = tensor_n(2, sd3);
    EXPECT_FAIL(cvis_softmax_cross_entropy(z, labels, &loss, NULL), CVIS_E_RANGE, "3");
    labels[0] = 1;
    cvis_tensor *dz_bad = tensor_n(2, sd);
    EXPECT_FAIL(cvis_softmax_cross_entropy(z, labels, &loss, dz_bad), CVIS_E_SHAPE, NULL);
    EXPECT_FAIL(cvis_softmax_cross_entropy(x, labels, &loss, NULL), CVIS_E_SHAPE, NULL);
    cvis_tensor_data(z)[0] = INFINITY;
    EXPECT_FAIL(cvis_softmax_cross_entropy(z, labels, &loss, NULL), CVIS_E_NONFINITE, "logits");
    CHECK(loss == -1);
    cvis_tensor_free(z);
    cvis_tensor_free(dz_bad);

    /* NULL pointers: a status and a message, never a crash */
    EXPECT_FAIL(cvis_model_new(8, 8, 3, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d(NULL, NULL, CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_conv2d_ex(NULL, NULL, CVIS_PREV, 4, 3, 3, 1, 1, 1, 1, 1, CVIS_PADDING_VALID,
                                         0, 0, 0, 0, 1, CVIS_ACT_RELU, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_dense(NULL, NULL, CVIS_PREV, 3, CVIS_ACT_LINEAR, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_activation(NULL, NULL, CVIS_PREV, CVIS_ACT_RELU, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_leaky_relu(NULL, NULL, CVIS_PREV, 0.1f, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_pool2d(NULL, NULL, CVIS_PREV, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_VALID, NULL),
                CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_global_avg_pool(NULL, NULL, CVIS_PREV, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_batch_norm(NULL, NULL, CVIS_PREV, 1e-3f, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_flatten(NULL, NULL, CVIS_PREV, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_dropout(NULL, NULL, CVIS_PREV, 0.5f, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_zero_padding(NULL, NULL, CVIS_PREV, 1, 1, 1, 1, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_add(NULL, NULL, 0, 0, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_multiply(NULL, NULL, 0, 0, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_concat(NULL, NULL, 2, cat, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_add_concat(m, NULL, 2, NULL, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_set_outputs(NULL, 1, &c), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_set_outputs(m, 1, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_init_weights(NULL, 1), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_layer_output_shape(NULL, 0, &nd, s), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_layer_output_shape(m, 0, NULL, s), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_find_layer(m, NULL, &out), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_find_layer(NULL, "first", &out), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_find_layer(m, "first", NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_input_shape(NULL, s), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_get_weight(NULL, 0, 0, &t), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_get_weight(m, 0, 0, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_set_weight(m, 0, 0, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_set_weight(NULL, 0, 0, x), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_get_filters(NULL, 0, &t, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_submodel(NULL, 1, &c, &none), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_submodel(m, 1, &c, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_predict(NULL, x, &y), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_predict(m, NULL, &y), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_predict(m, x, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_predict_all(m, x, 1, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_model_predict_all(m, x, 2, &y), CVIS_E_INVALID_ARG, "2");
    EXPECT_FAIL(cvis_pass_new(NULL, &p), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_pass_new(m, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_pass_set_int(NULL, CVIS_PASS_LOGITS, 1), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_pass_forward(NULL, x), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_pass_backward(NULL, 1, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_tensor_create(1, s, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_tensor_create(2, NULL, &t), CVIS_E_INVALID_ARG, NULL);
    int64_t four = 4;
    EXPECT_FAIL(cvis_tensor_wrap(NULL, 1, &four, &t), CVIS_E_INVALID_ARG, "data");
    EXPECT_FAIL(cvis_tensor_clone(NULL, &t), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_tensor_shape(NULL, s), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_new(CVIS_OPTIMIZER_SGD, 0.1, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_set(NULL, CVIS_OPTIM_LEARNING_RATE, 0.1), CVIS_E_INVALID_ARG, NULL);
    float fw[1] = {0}, fg[1] = {0};
    EXPECT_FAIL(cvis_optimizer_step(NULL, 0, fw, fg, 1), CVIS_E_INVALID_ARG, NULL);
    cvis_optimizer *opt = NULL;
    CHECK_OK(cvis_optimizer_new(CVIS_OPTIMIZER_SGD, 0.1, &opt));
    EXPECT_FAIL(cvis_optimizer_step(opt, 0, NULL, fg, 1), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_step(opt, 0, fw, NULL, 1), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_step_model(opt, NULL, NULL), CVIS_E_INVALID_ARG, NULL);
    cvis_optimizer_free(opt);
    EXPECT_FAIL(cvis_optimizer_step_model(NULL, m, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_softmax_cross_entropy(NULL, labels, &loss, NULL), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_softmax_cross_entropy(x, NULL, &loss, NULL), CVIS_E_INVALID_ARG, NULL);
    CHECK(t == NULL && none == NULL);
    /* queries on NULL answer "nothing" */
    CHECK(cvis_model_layer_count(NULL) == 0 && cvis_model_layer_name(NULL, 0) == NULL);
    CHECK(cvis_model_output_count(NULL) == 0 && cvis_model_output_layer(NULL, 0) == -1);
    CHECK(cvis_model_weight_name(NULL, 0, 0) == NULL && cvis_model_weight_count(NULL, 0) == 0);
    CHECK(cvis_tensor_data(NULL) == NULL && cvis_tensor_ndim(NULL) == 0 && cvis_tensor_dim(NULL, 0) == -1);
    CHECK(cvis_tensor_size(NULL) == 0 && cvis_tensor_dim(x, 4) == -1 && cvis_tensor_dim(x, -5) == -1);
    CHECK(cvis_pass_output(NULL, 0) == NULL && cvis_pass_layer_output(NULL, 0) == NULL);
    CHECK(cvis_pass_input_grad(NULL) == NULL && cvis_pass_layer_grad(NULL, 0) == NULL &&
          cvis_pass_weight_grad(NULL, 0, 0) == NULL);
    cvis_model_free(NULL);
    cvis_tensor_free(NULL);
    cvis_pass_free(NULL);
    cvis_optimizer_free(NULL);

    /* the allocation limit: refused before anything is allocated */
    uint64_t old = cvis_get_alloc_limit();
    CHECK_OK(cvis_set_alloc_limit(1 << 20));
    CHECK(cvis_get_alloc_limit() == 1 << 20);
    int64_t huge[2] = {1024, 1024};
    EXPECT_FAIL(cvis_tensor_create(2, huge, &t), CVIS_E_LIMIT, "limit");
    EXPECT_FAIL(cvis_model_add_dense(m, NULL, 1, 4096, CVIS_ACT_LINEAR, NULL), CVIS_E_LIMIT, NULL);
    CHECK_OK(cvis_set_alloc_limit(0));
    CHECK(cvis_get_alloc_limit() == old);
    int64_t overflow[4] = {INT64_MAX / 2, 4, 1, 1};
    EXPECT_FAIL(cvis_tensor_create(4, overflow, &t), CVIS_E_LIMIT, NULL);
    CHECK(t == NULL);
    CHECK(cvis_model_layer_count(m) == n_layers);

    cvis_tensor_free(x);
    cvis_model_free(m);
}

/* A model that a submodel shares can no longer grow; a pass made before
 * the model changed refuses to hand out stale results. */
static void test_model_changes(void)
{
    cvis_model *m = NULL, *sub = NULL;
    CHECK_OK(cvis_model_new(6, 6, 1, &m));
    if (!m)
        return;
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 2, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_global_avg_pool(m, NULL, CVIS_PREV, NULL));
    cvis_pass *p = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    cvis_tensor *x = tensor4(1, 6, 6, 1);
    fill_uniform(x, 0, 1);
    CHECK_OK(cvis_pass_forward(p, x));
    CHECK(cvis_pass_output(p, 0) != NULL);
    /* the model grows after the forward: stale outputs must not be read */
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 3, CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 4, CVIS_ACT_LINEAR, NULL));
    CHECK(cvis_pass_output(p, 0) == NULL);
    EXPECT_FAIL(cvis_pass_backward(p, 1, NULL), CVIS_E_STATE, NULL);
    EXPECT_FAIL(cvis_pass_forward(p, x), CVIS_E_STATE, "changed");
    cvis_pass_free(p);
    /* outputs changed after a forward */
    p = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    CHECK_OK(cvis_pass_forward(p, x));
    int first = 0;
    CHECK_OK(cvis_model_set_outputs(m, 1, &first));
    CHECK(cvis_pass_output(p, 0) == NULL);
    int64_t sd[4] = {1, 4, 4, 2};
    cvis_tensor *d = tensor_n(4, sd);
    const cvis_tensor *dl[1] = {d};
    EXPECT_FAIL(cvis_pass_backward(p, 1, dl), CVIS_E_STATE, NULL);
    CHECK_OK(cvis_pass_forward(p, x)); /* a new forward follows the new outputs */
    CHECK(cvis_pass_output(p, 0) != NULL && cvis_tensor_dim(cvis_pass_output(p, 0), 3) == 2);
    CHECK_OK(cvis_pass_backward(p, 1, dl));
    cvis_tensor_free(d);
    cvis_pass_free(p);
    /* submodel: the graph is shared, so no more layers */
    int outs[1] = {1};
    CHECK_OK(cvis_model_submodel(m, 1, outs, &sub));
    EXPECT_FAIL(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL), CVIS_E_STATE, "submodel");
    EXPECT_FAIL(cvis_model_add_flatten(sub, NULL, CVIS_PREV, NULL), CVIS_E_STATE, NULL);
    cvis_model_free(sub);
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL)); /* free again */
    cvis_tensor_free(x);
    cvis_model_free(m);
}

/* The message is per thread: a failure elsewhere does not overwrite it. */
static void *fail_in_thread(void *arg)
{
    (void)arg;
    cvis_model *none = NULL;
    cvis_status st = cvis_model_new(-7, 1, 1, &none);
    return (void *)(intptr_t)(st == CVIS_E_INVALID_ARG && strstr(cvis_last_error(), "-7"));
}

static void test_thread_local_errors(void)
{
    int out;
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(4, 4, 1, &m));
    EXPECT_FAIL(cvis_model_find_layer(m, "mine", &out), CVIS_E_NOT_FOUND, "mine");
    pthread_t th;
    void *ok = NULL;
    CHECK(pthread_create(&th, NULL, fail_in_thread, NULL) == 0);
    CHECK(pthread_join(th, &ok) == 0);
    CHECK(ok != NULL);
    CHECK(strstr(cvis_last_error(), "mine") != NULL);
    cvis_model_free(m);
}

/* ---------------------------------------------- submodels and prediction */

static void test_submodels_and_predict(void)
{
    cvis_model *m = tutorial(24, 20, 3);
    if (!m)
        return;
    CHECK_OK(cvis_model_init_weights(m, 3));
    for (int l = 0; l < 6; l++)
        if (cvis_model_weight_count(m, l) == 2)
            set_weight_uniform(m, l, 1, -0.1, 0.2);
    cvis_tensor *x = tensor4(2, 24, 20, 3);
    fill_uniform(x, 0, 1);
    /* predict agrees bit for bit with a pass */
    cvis_tensor *y = NULL;
    CHECK_OK(cvis_model_predict(m, x, &y));
    cvis_pass *p = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    CHECK_OK(cvis_pass_forward(p, x));
    CHECK(same_tensor(y, cvis_pass_output(p, 0)));
    CHECK(same_tensor(y, cvis_pass_layer_output(p, -1)));
    /* and with a predict of the images one at a time */
    int64_t s1[4] = {1, 24, 20, 3};
    cvis_tensor *x1 = NULL, *y1 = NULL;
    CHECK_OK(cvis_tensor_wrap(cvis_tensor_data(x) + 24 * 20 * 3, 4, s1, &x1));
    CHECK_OK(cvis_model_predict(m, x1, &y1));
    for (int k = 0; y && y1 && k < 3; k++)
        CHECK_NEAR(cvis_tensor_data(y1)[k], cvis_tensor_data(y)[3 + k], 1e-6);
    cvis_tensor_free(x1);
    cvis_tensor_free(y1);

    /* a submodel with the outputs of several layers */
    int layers[3] = {0, 2, -2};
    cvis_model *sub = NULL;
    CHECK_OK(cvis_model_submodel(m, 3, layers, &sub));
    CHECK(cvis_model_output_count(sub) == 3 && cvis_model_output_layer(sub, 2) == 4);
    CHECK(cvis_model_layer_count(sub) == 6);
    cvis_tensor *outs[3] = {NULL, NULL, NULL};
    CHECK_OK(cvis_model_predict_all(sub, x, 3, outs));
    CHECK(same_tensor(outs[0], cvis_pass_layer_output(p, 0)));
    CHECK(same_tensor(outs[1], cvis_pass_layer_output(p, 2)));
    CHECK(same_tensor(outs[2], cvis_pass_layer_output(p, 4)));
    CHECK(outs[1] && cvis_tensor_dim(outs[1], 1) == 12 && cvis_tensor_dim(outs[1], 2) == 8);
    cvis_tensor *first = NULL;
    CHECK_OK(cvis_model_predict(sub, x, &first)); /* several outputs: the first */
    CHECK(same_tensor(first, outs[0]));
    cvis_tensor_free(first);
    for (int k = 0; k < 3; k++)
        cvis_tensor_free(outs[k]);
    cvis_pass_free(p);

    /* shared weights: a change through the parent is seen by the submodel */
    cvis_tensor *b = NULL, *b0 = NULL, *before = NULL, *after = NULL;
    CHECK_OK(cvis_model_predict(sub, x, &before));
    CHECK_OK(cvis_model_get_weight(m, 0, 1, &b));
    CHECK_OK(cvis_tensor_clone(b, &b0));
    cvis_tensor_data(b)[0] += 1.0f;
    CHECK_OK(cvis_model_set_weight(m, 0, 1, b));
    CHECK_OK(cvis_model_predict(sub, x, &after));
    CHECK(before && after && !same_tensor(before, after));
    /* ... and through the submodel by the parent */
    CHECK_OK(cvis_model_set_weight(sub, 0, 1, b0));
    cvis_tensor_free(b0);
    cvis_tensor *back = NULL;
    CHECK_OK(cvis_model_predict(m, x, &back));
    CHECK(same_tensor(back, y));
    cvis_tensor_free(back);
    cvis_tensor_free(b);
    cvis_tensor_free(after);

    /* the parent freed first: the submodel keeps the layers alive */
    cvis_model_free(m);
    after = NULL;
    CHECK_OK(cvis_model_predict(sub, x, &after));
    CHECK(same_tensor(before, after));
    CHECK(!strcmp(cvis_model_layer_name(sub, 3), "flatten"));
    /* a submodel of a submodel */
    cvis_model *sub2 = NULL;
    int last = -1;
    CHECK_OK(cvis_model_submodel(sub, 1, &last, &sub2));
    cvis_model_free(sub);
    cvis_tensor *y2 = NULL;
    CHECK_OK(cvis_model_predict(sub2, x, &y2));
    CHECK(same_tensor(y2, y));
    cvis_tensor_free(y2);
    cvis_model_free(sub2);
    cvis_tensor_free(before);
    cvis_tensor_free(after);
    cvis_tensor_free(y);
    cvis_tensor_free(x);
}

/* A built model is read-only: threads predict and run passes over it at
 * once, each with its own pass, and all get the single-thread answer. */
typedef struct predict_job {
    const cvis_model *m;
    const cvis_tensor *x, *want;
    int ok;
} predict_job;

static void *predict_in_thread(void *arg)
{
    predict_job *j = arg;
    j->ok = 1;
    for (int r = 0; r < 4; r++) {
        cvis_tensor *y = NULL;
        cvis_pass *p = NULL;
        if (cvis_model_predict(j->m, j->x, &y) != CVIS_OK || cvis_pass_new(j->m, &p) != CVIS_OK ||
            cvis_pass_forward(p, j->x) != CVIS_OK || cvis_pass_backward(p, 1, NULL) != CVIS_OK) {
            j->ok = 0;
        } else {
            const cvis_tensor *o = cvis_pass_output(p, 0);
            for (int64_t i = 0; i < cvis_tensor_size(y); i++) {
                float w = cvis_tensor_data(j->want)[i];
                if (fabsf(cvis_tensor_data(y)[i] - w) > 1e-6f * (1 + fabsf(w)) ||
                    fabsf(cvis_tensor_data(o)[i] - w) > 1e-6f * (1 + fabsf(w)))
                    j->ok = 0;
            }
        }
        cvis_pass_free(p);
        cvis_tensor_free(y);
    }
    return NULL;
}

static void test_concurrent_predict(void)
{
    cvis_model *m = tutorial(20, 20, 4);
    if (!m)
        return;
    cvis_tensor *x = tensor4(2, 20, 20, 3), *want = NULL;
    fill_uniform(x, 0, 1);
    CHECK_OK(cvis_model_predict(m, x, &want));
    pthread_t th[4];
    predict_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (predict_job){m, x, want, 0};
        CHECK(pthread_create(&th[i], NULL, predict_in_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        CHECK(jobs[i].ok);
    }
    cvis_tensor_free(want);
    cvis_tensor_free(x);
    cvis_model_free(m);
}

/* --------------------------------------- gradients by finite differences */

/* A small model with every layer kind.  Biases keep every ReLU and leaky
 * ReLU's pre-activation away from its kink (much farther than a finite-
 * difference step moves it), and the max pools read the input, whose
 * values are spread so that no step changes a window's maximum: central
 * differences are then exact up to truncation and rounding. */
#define N_KINKED 2 /* the layers with a kink: a ReLU convolution, a leaky ReLU's input */

static cvis_model *every_kind(int *kinked)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(8, 8, 3, &m));
    if (!m)
        return NULL;
    int zp, c1, bn, th, dw, c2, lk, mp, ap, mp2, cat4[4], c3, add, mul, avg, drop, fl, gap, cat2[2],
        d1, d2, sm;
    CHECK_OK(cvis_model_add_zero_padding(m, NULL, CVIS_INPUT, 1, 1, 2, 0, &zp));                      /* 10x10 */
    CHECK_OK(cvis_model_add_conv2d(m, NULL, zp, 4, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, &c1));   /* 8x8x4 */
    CHECK_OK(cvis_model_add_batch_norm(m, NULL, c1, 1e-3f, &bn));
    CHECK_OK(cvis_model_add_activation(m, NULL, bn, CVIS_ACT_TANH, &th));
    CHECK_OK(cvis_model_add_conv2d_ex(m, NULL, th, 8, 3, 3, 1, 1, 2, 2, 4, CVIS_PADDING_SAME, 0, 0, 0,
                                      0, 1, CVIS_ACT_SIGMOID, &dw));                                  /* depthwise x2 */
    CHECK_OK(cvis_model_add_conv2d_ex(m, NULL, dw, 6, 3, 3, 2, 2, 1, 1, 1, CVIS_PADDING_SAME, 0, 0, 0,
                                      0, 1, CVIS_ACT_LINEAR, &c2));                                   /* 4x4x6 */
    CHECK_OK(cvis_model_add_leaky_relu(m, NULL, c2, 0.2f, &lk));
    CHECK_OK(cvis_model_add_pool2d(m, NULL, CVIS_INPUT, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_VALID, &mp));
    CHECK_OK(cvis_model_add_pool2d(m, NULL, CVIS_INPUT, CVIS_POOL_AVG, 3, 3, 2, 2, CVIS_PADDING_SAME, &ap));
    CHECK_OK(cvis_model_add_pool2d(m, NULL, CVIS_INPUT, CVIS_POOL_MAX, 3, 3, 2, 2, CVIS_PADDING_SAME, &mp2));
    cat4[0] = lk, cat4[1] = mp, cat4[2] = ap, cat4[3] = mp2;
    CHECK_OK(cvis_model_add_concat(m, NULL, 4, cat4, NULL));                                          /* 4x4x15 */
    int cat = cvis_model_layer_count(m) - 1;
    CHECK_OK(cvis_model_add_conv2d_ex(m, NULL, cat, 15, 1, 1, 1, 1, 1, 1, 1, CVIS_PADDING_VALID, 0, 0,
                                      0, 0, 1, CVIS_ACT_TANH, &c3));
    CHECK_OK(cvis_model_add_add(m, NULL, cat, c3, &add));
    CHECK_OK(cvis_model_add_multiply(m, NULL, add, cat, &mul));
    CHECK_OK(cvis_model_add_pool2d(m, NULL, mul, CVIS_POOL_AVG, 2, 2, 2, 2, CVIS_PADDING_VALID, &avg)); /* 2x2 */
    CHECK_OK(cvis_model_add_dropout(m, NULL, avg, 0.3f, &drop));
    CHECK_OK(cvis_model_add_flatten(m, NULL, drop, &fl));                                             /* 60 */
    CHECK_OK(cvis_model_add_global_avg_pool(m, NULL, mul, &gap));                                     /* 15 */
    cat2[0] = fl, cat2[1] = gap;
    CHECK_OK(cvis_model_add_concat(m, NULL, 2, cat2, NULL));                                          /* 75 */
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 6, CVIS_ACT_TANH, &d1));
    CHECK_OK(cvis_model_add_dense(m, NULL, d1, 3, CVIS_ACT_LINEAR, &d2));
    CHECK_OK(cvis_model_add_activation(m, NULL, d2, CVIS_ACT_SOFTMAX, &sm));
    (void)ap, (void)mp2, (void)sm;
    /* weights: moderate kernels; biases far from the kinks */
    for (int l = 0; l < cvis_model_layer_count(m); l++)
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            const char *nm = cvis_model_weight_name(m, l, k);
            if (!strcmp(nm, "kernel"))
                set_weight_uniform(m, l, k, -0.4, 0.4);
            else if (!strcmp(nm, "bias"))
                set_weight_uniform(m, l, k, -0.3, 0.3);
            else if (!strcmp(nm, "gamma") || !strcmp(nm, "moving_variance"))
                set_weight_uniform(m, l, k, 0.6, 1.4);
            else
                set_weight_uniform(m, l, k, -0.3, 0.3);
        }
    set_weight_uniform(m, c1, 0, -0.3, 0.3);
    set_weight_uniform(m, c2, 0, -0.05, 0.05);
    set_weight_uniform(m, d1, 0, -0.1, 0.1);
    set_weight_uniform(m, d2, 0, -0.5, 0.5);
    kinked[0] = c1, kinked[1] = c2;
    static const float offset[N_KINKED] = {3.0f, 1.0f};
    for (int i = 0; i < N_KINKED; i++) {
        cvis_tensor *b = NULL;
        CHECK_OK(cvis_model_get_weight(m, kinked[i], 1, &b));
        for (int64_t j = 0; b && j < cvis_tensor_size(b); j++)
            cvis_tensor_data(b)[j] = (j % 2) ? -offset[i] : offset[i];
        CHECK_OK(cvis_model_set_weight(m, kinked[i], 1, b));
        cvis_tensor_free(b);
    }
    /* batch norm centres the first convolution's output, so that the tanh
     * after it does not saturate */
    cvis_tensor *mean = NULL;
    CHECK_OK(cvis_model_get_weight(m, bn, 2, &mean));
    for (int64_t j = 0; mean && j < cvis_tensor_size(mean); j++)
        cvis_tensor_data(mean)[j] += (j % 2) ? 0.0f : offset[0];
    CHECK_OK(cvis_model_set_weight(m, bn, 2, mean));
    cvis_tensor_free(mean);
    return m;
}

/* Input values on a grid where the 9 pixels of any 3x3 window differ by at
 * least 1/9 (less a little noise), so that no finite-difference step
 * changes which pixel is a pooling window's maximum. */
static cvis_tensor *spread_input(void)
{
    cvis_tensor *x = tensor4(2, 8, 8, 3);
    float *d = cvis_tensor_data(x);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++)
                for (int c = 0; c < 3; c++) {
                    int level = (i + 3 * j + 2 * c + 5 * b) % 9;
                    d[((b * 8 + i) * 8 + j) * 3 + c] =
                        (float)((level + 0.5) / 9.0 + 0.01 * cvis__rng_uniform(&rng));
                }
    return x;
}

/* The layers whose sign pattern decides the ReLU gates, and that pattern
 * at the unperturbed point: a finite-difference step that changes it has
 * crossed a kink, and its difference means nothing. */
static struct {
    int n, layer[4];
    unsigned char *sign[4];
    int64_t size[4];
    int crossings;
} kink_guard;

static void kink_guard_check(cvis_pass *p, int record)
{
    for (int i = 0; i < kink_guard.n; i++) {
        const cvis_tensor *z = cvis_pass_layer_output(p, kink_guard.layer[i]);
        if (!z)
            continue;
        if (record) {
            kink_guard.size[i] = cvis_tensor_size(z);
            kink_guard.sign[i] = malloc((size_t)kink_guard.size[i]);
        }
        for (int64_t j = 0; j < kink_guard.size[i]; j++) {
            unsigned char pos = cvis_tensor_data(z)[j] > 0;
            if (record)
                kink_guard.sign[i][j] = pos;
            else if (pos != kink_guard.sign[i][j])
                kink_guard.crossings++;
        }
    }
}

/* sum(output * R) in double. */
static double weighted_output(cvis_pass *p, const cvis_tensor *x, const cvis_tensor *R)
{
    if (cvis_pass_forward(p, x) != CVIS_OK)
        return NAN;
    kink_guard_check(p, 0);
    const cvis_tensor *y = cvis_pass_output(p, 0);
    double s = 0;
    for (int64_t i = 0; i < cvis_tensor_size(y); i++)
        s += (double)cvis_tensor_data(y)[i] * cvis_tensor_data(R)[i];
    return s;
}

/* ||analytic - numeric|| / ||numeric|| over the elements of v (the
 * measure of gradcheck.h), central differences with step eps. */
static double fd_error(cvis_pass *p, const cvis_tensor *x, const cvis_tensor *R, float *v, int64_t n,
                       const float *analytic, float eps, void (*commit)(void *), void *ctx)
{
    double diff2 = 0, num2 = 0;
    for (int64_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + eps;
        if (commit)
            commit(ctx);
        double lp = weighted_output(p, x, R);
        v[i] = keep - eps;
        if (commit)
            commit(ctx);
        double lm = weighted_output(p, x, R);
        v[i] = keep;
        double num = (lp - lm) / (2.0 * eps);
        diff2 += (num - analytic[i]) * (num - analytic[i]);
        num2 += num * num;
    }
    if (commit)
        commit(ctx);
    return num2 > 0 ? sqrt(diff2 / num2) : INFINITY;
}

typedef struct weight_ctx {
    cvis_model *m;
    int layer, k;
    cvis_tensor *w;
} weight_ctx;

static void commit_weight(void *ctx)
{
    weight_ctx *c = ctx;
    cvis_model_set_weight(c->m, c->layer, c->k, c->w);
}

static void test_model_gradients(void)
{
    int kinked[N_KINKED];
    /* its own seed, so that the figures do not depend on the tests run
     * before (CVIS_TEST_SEED tries others: 1..20 all pass) */
    cvis__rng_seed(&rng, getenv("CVIS_TEST_SEED") ? strtoull(getenv("CVIS_TEST_SEED"), NULL, 10) : 7);
    cvis_model *m = every_kind(kinked);
    if (!m)
        return;
    cvis_tensor *x = spread_input();
    cvis_pass *p = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    CHECK_OK(cvis_pass_set_int(p, CVIS_PASS_WEIGHT_GRADS, 1));
    /* on the logits (the final softmax dropped): float32 probabilities
     * would drown small gradients in rounding */
    CHECK_OK(cvis_pass_set_int(p, CVIS_PASS_LOGITS, 1));
    CHECK_OK(cvis_pass_forward(p, x));
    kink_guard.n = N_KINKED;
    memcpy(kink_guard.layer, kinked, sizeof kinked);
    kink_guard_check(p, 1);
    const cvis_tensor *y = cvis_pass_output(p, 0);
    CHECK(y && cvis_tensor_dim(y, 0) == 2 && cvis_tensor_dim(y, 1) == 3);
    int64_t rs[2] = {2, 3};
    cvis_tensor *R = tensor_n(2, rs);
    fill_uniform(R, -1, 1);
    /* the kinks are far: every (leaky) ReLU's pre-activation is > 0.2
     * away, much more than a finite-difference step moves it (and the
     * kink guard checks every step) */
    for (int i = 0; i < N_KINKED; i++) {
        cvis_pass *q = NULL;
        CHECK_OK(cvis_pass_new(m, &q));
        CHECK_OK(cvis_pass_set_int(q, CVIS_PASS_DROP_ACTIVATION, kinked[i]));
        CHECK_OK(cvis_pass_forward(q, x));
        const cvis_tensor *z = cvis_pass_layer_output(q, kinked[i]);
        double closest = INFINITY;
        for (int64_t j = 0; z && j < cvis_tensor_size(z); j++)
            closest = fmin(closest, fabs(cvis_tensor_data(z)[j]));
        if (!(closest > 0.2))
            fprintf(stderr, "layer %d: pre-activation %g from the kink\n", kinked[i], closest);
        CHECK(closest > 0.2);
        cvis_pass_free(q);
    }
    const cvis_tensor *dl[1] = {R};
    CHECK_OK(cvis_pass_backward(p, 1, dl));
    /* a layer's gradient: behind the first convolution's ReLU, summed over
     * positions, it is that convolution's bias gradient */
    {
        const cvis_tensor *g = cvis_pass_layer_grad(p, kinked[0]);
        const cvis_tensor *a = cvis_pass_layer_output(p, kinked[0]);
        const cvis_tensor *db = cvis_pass_weight_grad(p, kinked[0], 1);
        CHECK(g && a && db && cvis_tensor_size(g) == 2 * 8 * 8 * 4);
        for (int c = 0; g && a && db && c < 4; c++) {
            double sum = 0;
            for (int64_t j = c; j < cvis_tensor_size(g); j += 4)
                sum += cvis_tensor_data(a)[j] > 0 ? cvis_tensor_data(g)[j] : 0;
            CHECK_NEAR(sum, cvis_tensor_data(db)[c], 1e-5 * (1 + fabs(sum)));
        }
    }
    /* copies of the analytic gradients: the finite differences reuse p */
    cvis_tensor *gx = NULL;
    CHECK_OK(cvis_tensor_clone(cvis_pass_input_grad(p), &gx));
    int n_layers = cvis_model_layer_count(m), n_checked = 0;
    cvis_tensor *gw[64][4], *gl[64];
    memset(gw, 0, sizeof gw);
    memset(gl, 0, sizeof gl);
    for (int l = 0; l < n_layers && l < 64; l++) {
        if (!cvis_model_weight_count(m, l))
            continue;
        CHECK_OK(cvis_tensor_clone(cvis_pass_layer_grad(p, l), &gl[l]));
        for (int k = 0; k < cvis_model_weight_count(m, l) && k < 4; k++)
            if (cvis_pass_weight_grad(p, l, k))
                CHECK_OK(cvis_tensor_clone(cvis_pass_weight_grad(p, l, k), &gw[l][k]));
    }
    /* the input gradient, through every layer */
    if (gx) {
        double rel = fd_error(p, x, R, cvis_tensor_data(x), cvis_tensor_size(x),
                              cvis_tensor_data(gx), 3e-2f, NULL, NULL);
        if (!(rel < 1e-3) || getenv("CVIS_TEST_VERBOSE"))
            fprintf(stderr, "input gradient: relative error %g\n", rel);
        CHECK(rel < 1e-3);
    }
    /* Weight gradients.  Central differences of the whole model's output
     * are lost in float32 rounding for the early layers (their gradients
     * are ~1e-3 of the output), so each layer's weights are checked in two
     * steps: (1) the submodel ending at the layer, seeded with the whole
     * model's gradient at that layer, gives exactly the whole model's
     * weight gradients; (2) the same submodel's weight gradients, for a
     * random seed, agree with central differences of its output. */
    for (int l = 0; l < n_layers && l < 64; l++) {
        if (!cvis_model_weight_count(m, l))
            continue;
        cvis_model *sub = NULL;
        cvis_pass *q = NULL;
        CHECK_OK(cvis_model_submodel(m, 1, &l, &sub));
        CHECK_OK(cvis_pass_new(sub, &q));
        CHECK_OK(cvis_pass_set_int(q, CVIS_PASS_WEIGHT_GRADS, 1));
        CHECK_OK(cvis_pass_forward(q, x));
        const cvis_tensor *seed[1] = {gl[l]};
        CHECK_OK(cvis_pass_backward(q, 1, seed));
        for (int k = 0; k < cvis_model_weight_count(m, l) && k < 4; k++) {
            const char *nm = cvis_model_weight_name(m, l, k);
            const cvis_tensor *g = cvis_pass_weight_grad(q, l, k);
            if (!strcmp(nm, "moving_mean") || !strcmp(nm, "moving_variance")) {
                /* not trained: no gradient flows into them */
                CHECK(gw[l][k] == NULL || cvis_tensor_data(gw[l][k])[0] == 0);
                continue;
            }
            CHECK(g && gw[l][k] && cvis_tensor_size(g) == cvis_tensor_size(gw[l][k]));
            double worst = 0, scale = 0;
            for (int64_t i = 0; g && gw[l][k] && i < cvis_tensor_size(g); i++) {
                worst = fmax(worst, fabs(cvis_tensor_data(g)[i] - cvis_tensor_data(gw[l][k])[i]));
                scale = fmax(scale, fabs(cvis_tensor_data(gw[l][k])[i]));
            }
            CHECK(scale > 0 && worst <= 1e-6 * scale);
        }
        cvis_tensor *Rl = NULL, *ana[4] = {NULL, NULL, NULL, NULL};
        CHECK_OK(cvis_tensor_clone(cvis_pass_output(q, 0), &Rl));
        fill_uniform(Rl, -1, 1);
        seed[0] = Rl;
        CHECK_OK(cvis_pass_backward(q, 1, seed));
        for (int k = 0; k < 2 && k < cvis_model_weight_count(m, l); k++) /* kernel, bias; gamma, beta */
            CHECK_OK(cvis_tensor_clone(cvis_pass_weight_grad(q, l, k), &ana[k]));
        for (int k = 0; k < 2 && k < cvis_model_weight_count(m, l); k++) {
            weight_ctx c = {m, l, k, NULL};
            CHECK_OK(cvis_model_get_weight(m, l, k, &c.w));
            double rel = c.w && ana[k] ? fd_error(q, x, Rl, cvis_tensor_data(c.w), cvis_tensor_size(c.w),
                                                  cvis_tensor_data(ana[k]), 1e-2f, commit_weight, &c)
                                       : INFINITY;
            if (!(rel < 1e-3) || getenv("CVIS_TEST_VERBOSE"))
                fprintf(stderr, "layer %d (%s) %s: relative error %g\n", l,
                        cvis_model_layer_name(m, l), cvis_model_weight_name(m, l, k), rel);
            CHECK(rel < 1e-3);
            n_checked++;
            cvis_tensor_free(c.w);
            cvis_tensor_free(ana[k]);
        }
        cvis_tensor_free(Rl);
        cvis_pass_free(q);
        cvis_model_free(sub);
    }
    CHECK(n_checked == 14); /* 7 kernels and biases, gamma and beta */
    if (kink_guard.crossings)
        fprintf(stderr, "finite differences crossed %d ReLU kinks\n", kink_guard.crossings);
    CHECK(kink_guard.crossings == 0);
    for (int i = 0; i < kink_guard.n; i++)
        free(kink_guard.sign[i]);
    for (int l = 0; l < n_layers && l < 64; l++) {
        cvis_tensor_free(gl[l]);
        for (int k = 0; k < 4; k++)
            cvis_tensor_free(gw[l][k]);
    }
    cvis_tensor_free(gx);
    cvis_tensor_free(R);
    cvis_tensor_free(x);
    cvis_pass_free(p);
    cvis_model_free(m);
}

/* ------------------------------------------------------------ optimizers */

/* Keras's update rules, written out in double for a few steps. */
typedef struct ref_opt {
    int kind;
    double lr, b1, b2, eps, rho, mom;
    double m[4], v[4];
    int t;
} ref_opt;

static void ref_step(ref_opt *o, double *w, const double *g, int n)
{
    o->t++;
    for (int i = 0; i < n; i++) {
        if (o->kind == CVIS_OPTIMIZER_SGD) {
            o->m[i] = o->mom * o->m[i] - o->lr * g[i]; /* velocity */
            w[i] += o->m[i];
        } else if (o->kind == CVIS_OPTIMIZER_RMSPROP) {
            o->v[i] = o->rho * o->v[i] + (1 - o->rho) * g[i] * g[i];
            w[i] -= o->lr * g[i] / (sqrt(o->v[i]) + o->eps);
        } else {
            double lr_t = o->lr * sqrt(1 - pow(o->b2, o->t)) / (1 - pow(o->b1, o->t));
            o->m[i] = o->b1 * o->m[i] + (1 - o->b1) * g[i];
            o->v[i] = o->b2 * o->v[i] + (1 - o->b2) * g[i] * g[i];
            w[i] -= lr_t * o->m[i] / (sqrt(o->v[i]) + o->eps);
        }
    }
}

static void check_optimizer(int kind, double lr, int n_opts, const int *keys, const double *vals)
{
    cvis_optimizer *o = NULL;
    CHECK_OK(cvis_optimizer_new((cvis_optimizer_kind)kind, lr, &o));
    if (!o)
        return;
    ref_opt r = {kind, lr, 0.9, 0.999, 1e-7, 0.9, 0.0, {0}, {0}, 0};
    for (int i = 0; i < n_opts; i++) {
        CHECK_OK(cvis_optimizer_set(o, (cvis_optimizer_option)keys[i], vals[i]));
        switch (keys[i]) {
        case CVIS_OPTIM_LEARNING_RATE: r.lr = vals[i]; break;
        case CVIS_OPTIM_BETA_1: r.b1 = vals[i]; break;
        case CVIS_OPTIM_BETA_2: r.b2 = vals[i]; break;
        case CVIS_OPTIM_EPSILON: r.eps = vals[i]; break;
        case CVIS_OPTIM_RHO: r.rho = vals[i]; break;
        case CVIS_OPTIM_MOMENTUM: r.mom = vals[i]; break;
        }
    }
    static const double grads[3][4] = {{0.5, -0.25, 2.0, 0.0}, {-1.0, 0.5, 1.5, 1e-3},
                                       {0.3, 0.3, -4.0, -2.0}};
    double w[4] = {1.0, -2.0, 0.5, 3.0};
    float wf[4] = {1.0f, -2.0f, 0.5f, 3.0f}, other[2] = {7, 7};
    for (int s = 0; s < 3; s++) {
        float gf[4];
        for (int i = 0; i < 4; i++)
            gf[i] = (float)grads[s][i];
        CHECK_OK(cvis_optimizer_step(o, 2, wf, gf, 4));
        ref_step(&r, w, grads[s], 4);
        /* float32 state: (1 - beta) alone is rounded by ~1e-5 of itself
         * for beta = 0.999, hence the part proportional to the step */
        for (int i = 0; i < 4; i++)
            CHECK_NEAR(wf[i], w[i], 2e-6 * (1 + fabs(w[i])) + 2e-5 * r.lr * (s + 1));
        /* another slot keeps its own state */
        CHECK_OK(cvis_optimizer_step(o, 0, other, gf, 2));
    }
    float g2[3] = {1, 1, 1};
    EXPECT_FAIL(cvis_optimizer_step(o, 2, wf, g2, 3), CVIS_E_SHAPE, "slot 2");
    EXPECT_FAIL(cvis_optimizer_step(o, -1, wf, g2, 3), CVIS_E_RANGE, "-1");
    EXPECT_FAIL(cvis_optimizer_step(o, 2, wf, g2, -3), CVIS_E_INVALID_ARG, NULL);
    float keep[4];
    memcpy(keep, wf, sizeof keep);
    float gnan[4] = {0.1f, NAN, 0.1f, 0.1f};
    EXPECT_FAIL(cvis_optimizer_step(o, 2, wf, gnan, 4), CVIS_E_NONFINITE, "NaN");
    CHECK(!memcmp(keep, wf, sizeof keep)); /* untouched */
    cvis_optimizer_free(o);
}

static void test_optimizers(void)
{
    check_optimizer(CVIS_OPTIMIZER_SGD, 0.1, 0, NULL, NULL);
    int mk[1] = {CVIS_OPTIM_MOMENTUM};
    double mv[1] = {0.9};
    check_optimizer(CVIS_OPTIMIZER_SGD, 0.1, 1, mk, mv);
    check_optimizer(CVIS_OPTIMIZER_RMSPROP, 0.01, 0, NULL, NULL);
    int rk[2] = {CVIS_OPTIM_RHO, CVIS_OPTIM_EPSILON};
    double rv[2] = {0.5, 1e-3};
    check_optimizer(CVIS_OPTIMIZER_RMSPROP, 0.01, 2, rk, rv);
    check_optimizer(CVIS_OPTIMIZER_ADAM, 1e-3, 0, NULL, NULL);
    /* the tutorial's activation maximization: Adam(1.0, beta_1 0.999) */
    int ak[2] = {CVIS_OPTIM_BETA_1, CVIS_OPTIM_LEARNING_RATE};
    double av[2] = {0.999, 1.0};
    check_optimizer(CVIS_OPTIMIZER_ADAM, 0.5, 2, ak, av);

    /* hand-computed: SGD with momentum, two steps; Adam's first step is
     * about lr * sign(g) */
    cvis_optimizer *o = NULL;
    CHECK_OK(cvis_optimizer_new(CVIS_OPTIMIZER_SGD, 0.1, &o));
    CHECK_OK(cvis_optimizer_set(o, CVIS_OPTIM_MOMENTUM, 0.9));
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f};
    CHECK_OK(cvis_optimizer_step(o, 0, w, g, 2));
    CHECK_NEAR(w[0], 0.95, 1e-6);
    CHECK_NEAR(w[1], -2.025, 1e-6);
    CHECK_OK(cvis_optimizer_step(o, 0, w, g, 2));
    CHECK_NEAR(w[0], 0.855, 1e-6);
    CHECK_NEAR(w[1], -2.0725, 1e-6);
    cvis_optimizer_free(o);
    o = NULL;
    CHECK_OK(cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, 1e-3, &o));
    float a[2] = {1.0f, 1.0f}, ga[2] = {0.5f, -8.0f};
    CHECK_OK(cvis_optimizer_step(o, 0, a, ga, 2));
    CHECK_NEAR(a[0], 0.999, 1e-7);
    CHECK_NEAR(a[1], 1.001, 1e-7);
    cvis_optimizer_free(o);
    o = NULL;
    CHECK_OK(cvis_optimizer_new(CVIS_OPTIMIZER_RMSPROP, 0.01, &o));
    float rw[1] = {1.0f}, rg[1] = {0.5f};
    CHECK_OK(cvis_optimizer_step(o, 0, rw, rg, 1)); /* v = 0.025: 1 - 0.01*0.5/sqrt(0.025) */
    CHECK_NEAR(rw[0], 0.96837722, 1e-6);
    /* bad options */
    EXPECT_FAIL(cvis_optimizer_set(o, CVIS_OPTIM_RHO, 1.0), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_set(o, CVIS_OPTIM_BETA_1, -0.1), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_set(o, CVIS_OPTIM_EPSILON, 0), CVIS_E_INVALID_ARG, "epsilon");
    EXPECT_FAIL(cvis_optimizer_set(o, CVIS_OPTIM_LEARNING_RATE, NAN), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_set(o, (cvis_optimizer_option)17, 1), CVIS_E_INVALID_ARG, "17");
    cvis_optimizer_free(o);
    o = NULL;
    EXPECT_FAIL(cvis_optimizer_new((cvis_optimizer_kind)3, 0.1, &o), CVIS_E_INVALID_ARG, "3");
    EXPECT_FAIL(cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, 0, &o), CVIS_E_INVALID_ARG, NULL);
    EXPECT_FAIL(cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, INFINITY, &o), CVIS_E_INVALID_ARG, NULL);
    CHECK(o == NULL);
}

/* cvis_optimizer_step_model steps the trainable weights with the pass's
 * gradients, and leaves the batch-norm statistics alone. */
static void test_step_model(void)
{
    cvis_model *m = NULL, *other = NULL;
    CHECK_OK(cvis_model_new(5, 5, 2, &m));
    if (!m)
        return;
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 3, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_TANH, NULL));
    CHECK_OK(cvis_model_add_batch_norm(m, NULL, CVIS_PREV, 1e-3f, NULL));
    CHECK_OK(cvis_model_add_global_avg_pool(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 2, CVIS_ACT_LINEAR, NULL));
    set_weight_uniform(m, 1, 2, -0.5, 0.5);
    set_weight_uniform(m, 1, 3, 0.5, 1.5);
    cvis_tensor *x = tensor4(3, 5, 5, 2);
    fill_uniform(x, -1, 1);
    cvis_pass *p = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    CHECK_OK(cvis_pass_set_int(p, CVIS_PASS_WEIGHT_GRADS, 1));
    CHECK_OK(cvis_pass_forward(p, x));
    int64_t ds[2] = {3, 2};
    cvis_tensor *d = tensor_n(2, ds);
    fill_uniform(d, -1, 1);
    const cvis_tensor *dl[1] = {d};
    CHECK_OK(cvis_pass_backward(p, 1, dl));
    /* expected: w - 0.5 * g for trainable weights */
    cvis_tensor *want[4][4];
    memset(want, 0, sizeof want);
    for (int l = 0; l < 4; l++)
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            CHECK_OK(cvis_model_get_weight(m, l, k, &want[l][k]));
            const cvis_tensor *g = cvis_pass_weight_grad(p, l, k);
            int trained = !(l == 1 && k >= 2);
            CHECK(g != NULL);
            for (int64_t i = 0; g && trained && i < cvis_tensor_size(g); i++)
                cvis_tensor_data(want[l][k])[i] -= 0.5f * cvis_tensor_data(g)[i];
        }
    cvis_optimizer *o = NULL;
    CHECK_OK(cvis_optimizer_new(CVIS_OPTIMIZER_SGD, 0.5, &o));
    /* a pass of another model is refused */
    CHECK_OK(cvis_model_new(5, 5, 2, &other));
    CHECK_OK(cvis_model_add_dense(other, NULL, CVIS_PREV, 300, CVIS_ACT_LINEAR, NULL));
    cvis_pass *po = NULL;
    CHECK_OK(cvis_pass_new(other, &po));
    EXPECT_FAIL(cvis_optimizer_step_model(o, m, po), CVIS_E_INVALID_ARG, "pass");
    CHECK_OK(cvis_optimizer_step_model(o, m, p));
    for (int l = 0; l < 4; l++)
        for (int k = 0; k < cvis_model_weight_count(m, l); k++) {
            cvis_tensor *now = NULL;
            CHECK_OK(cvis_model_get_weight(m, l, k, &now));
            double worst = 0;
            for (int64_t i = 0; now && i < cvis_tensor_size(now); i++)
                worst = fmax(worst, fabs(cvis_tensor_data(now)[i] - cvis_tensor_data(want[l][k])[i]));
            CHECK(worst < 1e-6);
            cvis_tensor_free(now);
            cvis_tensor_free(want[l][k]);
        }
    cvis_pass_free(po);
    cvis_model_free(other);
    cvis_optimizer_free(o);
    cvis_tensor_free(d);
    cvis_tensor_free(x);
    cvis_pass_free(p);
    cvis_model_free(m);
}

static void test_cross_entropy(void)
{
    int64_t s[2] = {2, 3};
    cvis_tensor *z = tensor_n(2, s), *d = tensor_n(2, s);
    if (!z || !d)
        return;
    const float zv[6] = {1, 2, 3, 0.5f, -1, 2};
    memcpy(cvis_tensor_data(z), zv, sizeof zv);
    int labels[2] = {2, 0};
    double loss = 0;
    CHECK_OK(cvis_softmax_cross_entropy(z, labels, &loss, d));
    double want = 0, dwant[6];
    for (int b = 0; b < 2; b++) {
        double sum = 0;
        for (int k = 0; k < 3; k++)
            sum += exp(zv[b * 3 + k]);
        want += (log(sum) - zv[b * 3 + labels[b]]) / 2;
        for (int k = 0; k < 3; k++)
            dwant[b * 3 + k] = (exp(zv[b * 3 + k]) / sum - (k == labels[b])) / 2;
    }
    CHECK_NEAR(loss, want, 1e-6);
    /* by hand for the first row: log(e + e^2 + e^3) - 3 = 0.40760596 */
    CHECK_NEAR(log(exp(1) + exp(2) + exp(3)) - 3, 0.40760596, 1e-7);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(cvis_tensor_data(d)[i], dwant[i], 1e-7);
    /* the gradient against central differences of the loss */
    for (int i = 0; i < 6; i++) {
        double lp, lm;
        float keep = cvis_tensor_data(z)[i];
        cvis_tensor_data(z)[i] = keep + 1e-3f;
        CHECK_OK(cvis_softmax_cross_entropy(z, labels, &lp, NULL));
        cvis_tensor_data(z)[i] = keep - 1e-3f;
        CHECK_OK(cvis_softmax_cross_entropy(z, labels, &lm, NULL));
        cvis_tensor_data(z)[i] = keep;
        CHECK_NEAR((lp - lm) / 2e-3, cvis_tensor_data(d)[i], 1e-4);
    }
    /* extreme logits stay finite */
    const float big[6] = {1000, 0, -1000, -1000, 0, 1000};
    memcpy(cvis_tensor_data(z), big, sizeof big);
    CHECK_OK(cvis_softmax_cross_entropy(z, labels, &loss, d));
    CHECK_NEAR(loss, (2000.0 + 2000.0) / 2, 1e-3);
    CHECK(isfinite(cvis_tensor_data(d)[0]) && fabs(cvis_tensor_data(d)[0] - 0.5) < 1e-6);
    cvis_tensor_free(z);
    cvis_tensor_free(d);
}

/* A few Adam steps on a toy problem (which half of the image is bright)
 * lower the loss. */
static void test_training(void)
{
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(4, 4, 1, &m));
    if (!m)
        return;
    CHECK_OK(cvis_model_add_conv2d(m, NULL, CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, NULL));
    CHECK_OK(cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL));
    CHECK_OK(cvis_model_add_dense(m, NULL, CVIS_PREV, 2, CVIS_ACT_LINEAR, NULL));
    CHECK_OK(cvis_model_init_weights(m, 11));
    cvis_tensor *x = tensor4(8, 4, 4, 1);
    int labels[8];
    for (int b = 0; b < 8; b++) {
        labels[b] = b % 2;
        for (int i = 0; i < 16; i++) {
            int right = (i % 4) >= 2;
            cvis_tensor_data(x)[b * 16 + i] =
                (float)((right == labels[b] ? 0.8 : 0.2) + 0.1 * (cvis__rng_uniform(&rng) - 0.5));
        }
    }
    cvis_pass *p = NULL;
    cvis_optimizer *o = NULL;
    CHECK_OK(cvis_pass_new(m, &p));
    CHECK_OK(cvis_pass_set_int(p, CVIS_PASS_WEIGHT_GRADS, 1));
    CHECK_OK(cvis_pass_set_int(p, CVIS_PASS_INPUT_GRAD, 0));
    CHECK_OK(cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, 0.05, &o));
    int64_t ds[2] = {8, 2};
    cvis_tensor *d = tensor_n(2, ds);
    double first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        CHECK_OK(cvis_pass_forward(p, x));
        double loss = 0;
        CHECK_OK(cvis_softmax_cross_entropy(cvis_pass_output(p, 0), labels, &loss, d));
        if (step == 0)
            first = loss;
        last = loss;
        const cvis_tensor *dl[1] = {d};
        CHECK_OK(cvis_pass_backward(p, 1, dl));
        CHECK(cvis_pass_input_grad(p) == NULL); /* not asked for */
        CHECK_OK(cvis_optimizer_step_model(o, m, p));
    }
    if (!(last < 0.3 * first))
        fprintf(stderr, "training: loss %g -> %g\n", first, last);
    CHECK(first > 0.3 && last < 0.3 * first);
    cvis_tensor_free(d);
    cvis_tensor_free(x);
    cvis_optimizer_free(o);
    cvis_pass_free(p);
    cvis_model_free(m);
}

/* ---------------------------------------------------- allocation failures */

/* Builds a model, predicts, runs a submodel, a pass forward and backward
 * with weight gradients, and an optimizer step; frees everything on every
 * path. */
static cvis_status alloc_scenario(void)
{
    cvis_model *m = NULL, *sub = NULL;
    cvis_tensor *x = NULL, *y = NULL, *d = NULL, *outs[2] = {NULL, NULL};
    cvis_pass *p = NULL;
    cvis_optimizer *o = NULL;
    int c1 = 0, a = 0, cat[2];
    cvis_status st = cvis_model_new(10, 10, 3, &m);
    if (st == CVIS_OK)
        st = cvis_model_add_conv2d(m, NULL, CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_SAME, CVIS_ACT_RELU, &c1);
    if (st == CVIS_OK)
        st = cvis_model_add_batch_norm(m, "bn", CVIS_PREV, 1e-3f, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_conv2d_ex(m, NULL, CVIS_PREV, 4, 3, 3, 1, 1, 1, 1, 4, CVIS_PADDING_SAME,
                                      0, 0, 0, 0, 1, CVIS_ACT_LINEAR, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_add(m, NULL, c1, CVIS_PREV, &a);
    if (st == CVIS_OK)
        st = cvis_model_add_pool2d(m, NULL, CVIS_PREV, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_SAME, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_pool2d(m, NULL, a, CVIS_POOL_AVG, 2, 2, 2, 2, CVIS_PADDING_VALID, NULL);
    cat[0] = cvis_model_layer_count(m) - 2;
    cat[1] = cvis_model_layer_count(m) - 1;
    if (st == CVIS_OK)
        st = cvis_model_add_concat(m, NULL, 2, cat, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_dense(m, NULL, CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL);
    if (st == CVIS_OK) {
        int64_t s[4] = {2, 10, 10, 3};
        st = cvis_tensor_create(4, s, &x);
    }
    if (st == CVIS_OK) {
        for (int i = 0; i < 600; i++)
            cvis_tensor_data(x)[i] = (float)((i * 37) % 101) / 101.0f;
        st = cvis_model_predict(m, x, &y);
    }
    if (st == CVIS_OK) {
        int layers[2] = {c1, -1};
        st = cvis_model_submodel(m, 2, layers, &sub);
    }
    if (st == CVIS_OK)
        st = cvis_model_predict_all(sub, x, 2, outs);
    if (st == CVIS_OK)
        st = cvis_pass_new(m, &p);
    if (st == CVIS_OK)
        st = cvis_pass_set_int(p, CVIS_PASS_WEIGHT_GRADS, 1);
    if (st == CVIS_OK)
        st = cvis_pass_forward(p, x);
    if (st == CVIS_OK)
        st = cvis_tensor_clone(cvis_pass_output(p, 0), &d);
    if (st == CVIS_OK) {
        const cvis_tensor *dl[1] = {d};
        st = cvis_pass_backward(p, 1, dl);
    }
    if (st == CVIS_OK && !cvis_pass_input_grad(p))
        st = cvis__fail(CVIS_E_INTERNAL, "no input gradient");
    if (st == CVIS_OK)
        st = cvis_optimizer_new(CVIS_OPTIMIZER_ADAM, 0.01, &o);
    if (st == CVIS_OK)
        st = cvis_optimizer_step_model(o, m, p);
    cvis_optimizer_free(o);
    cvis_pass_free(p);
    cvis_tensor_free(outs[0]);
    cvis_tensor_free(outs[1]);
    cvis_tensor_free(d);
    cvis_tensor_free(y);
    cvis_tensor_free(x);
    cvis_model_free(sub);
    cvis_model_free(m);
    return st;
}

static void test_allocation_failures(void)
{
    int64_t n = 1, wrong = 0;
    cvis_status st = CVIS_E_NOMEM;
    for (; n < 5000; n++) {
        cvis__alloc_fail_after(n);
        clear_error();
        st = alloc_scenario();
        cvis__alloc_fail_after(0);
        if (st == CVIS_OK)
            break;
        if (st != CVIS_E_NOMEM || !cvis_last_error()[0]) {
            if (wrong++ < 10)
                fprintf(stderr, "allocation %lld failing: %s (%s)\n", (long long)n,
                        cvis_status_string(st), cvis_last_error());
        }
    }
    CHECK(st == CVIS_OK);
    CHECK(wrong == 0);
    CHECK(n > 30); /* the sweep really went through many allocations */
    if (getenv("CVIS_TEST_VERBOSE"))
        printf("allocation sweep: %lld failure points\n", (long long)n - 1);
    /* and the scenario runs again cleanly */
    CHECK_OK(alloc_scenario());
}

TEST_MAIN({
    cvis__rng_seed(&rng, 2024);
    test_version_and_status();
    test_builders_and_names();
    test_layer_table();
    test_error_paths();
    test_model_changes();
    test_thread_local_errors();
    test_submodels_and_predict();
    test_concurrent_predict();
    test_model_gradients();
    test_optimizers();
    test_step_model();
    test_cross_entropy();
    test_training();
    test_allocation_failures();
})
