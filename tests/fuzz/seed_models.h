/* Small models built through the public API: the seed generator saves
 * them (as ONNX, and their weights as NPZ), and the NPZ target loads
 * weights into the first one.  Each returns NULL on failure. */
#ifndef CVIS_FUZZ_SEED_MODELS_H
#define CVIS_FUZZ_SEED_MODELS_H

#include "cvis.h"

#define SEED_TRY(call)              \
    do {                            \
        if ((call) != CVIS_OK)      \
            goto fail;              \
    } while (0)

/* conv -> batch norm -> global average pool -> dense: every kind of weight. */
static inline cvis_model *seed_npz_model(void)
{
    cvis_model *m = NULL;
    SEED_TRY(cvis_model_new(8, 8, 3, &m));
    SEED_TRY(cvis_model_add_conv2d(m, "conv", CVIS_PREV, 4, 3, 3, 1, CVIS_PADDING_SAME,
                                   CVIS_ACT_RELU, NULL));
    SEED_TRY(cvis_model_add_batch_norm(m, "bn", CVIS_PREV, 1e-3f, NULL));
    SEED_TRY(cvis_model_add_global_avg_pool(m, "gap", CVIS_PREV, NULL));
    SEED_TRY(cvis_model_add_dense(m, "fc", CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL));
    SEED_TRY(cvis_model_init_weights(m, 7));
    return m;
fail:
    cvis_model_free(m);
    return NULL;
}

/* The tutorial's shape at a small size: conv, conv, conv, flatten, dense. */
static inline cvis_model *seed_tutorial_model(void)
{
    cvis_model *m = NULL;
    SEED_TRY(cvis_model_new(16, 16, 3, &m));
    SEED_TRY(cvis_model_add_conv2d(m, "conv2d", CVIS_PREV, 4, 5, 5, 1, CVIS_PADDING_VALID,
                                   CVIS_ACT_RELU, NULL));
    SEED_TRY(cvis_model_add_conv2d(m, "conv2d_1", CVIS_PREV, 4, 3, 3, 2, CVIS_PADDING_VALID,
                                   CVIS_ACT_RELU, NULL));
    SEED_TRY(cvis_model_add_flatten(m, "flatten", CVIS_PREV, NULL));
    SEED_TRY(cvis_model_add_dense(m, "dense", CVIS_PREV, 8, CVIS_ACT_RELU, NULL));
    SEED_TRY(cvis_model_add_dense(m, "dense_1", CVIS_PREV, 3, CVIS_ACT_SOFTMAX, NULL));
    SEED_TRY(cvis_model_init_weights(m, 11));
    return m;
fail:
    cvis_model_free(m);
    return NULL;
}

/* Branches and the rarer builders: depthwise and dilated convolutions,
 * explicit pads, pools, concat, add, multiply, zero padding, dropout and
 * activations of every kind. */
static inline cvis_model *seed_branchy_model(void)
{
    cvis_model *m = NULL;
    int a, b, c, d;
    SEED_TRY(cvis_model_new(12, 12, 3, &m));
    SEED_TRY(cvis_model_add_conv2d(m, "stem", CVIS_PREV, 6, 3, 3, 1, CVIS_PADDING_SAME,
                                   CVIS_ACT_LINEAR, &a));
    SEED_TRY(cvis_model_add_batch_norm(m, "stem_bn", a, 1e-3f, &a));
    SEED_TRY(cvis_model_add_leaky_relu(m, "stem_act", a, 0.1f, &a));
    SEED_TRY(cvis_model_add_conv2d_ex(m, "dw", a, 6, 3, 3, 1, 1, 1, 1, 6, CVIS_PADDING_SAME, 0,
                                      0, 0, 0, 1, CVIS_ACT_RELU6, &b));
    SEED_TRY(cvis_model_add_conv2d_ex(m, "dilated", a, 6, 3, 3, 1, 1, 2, 2, 1,
                                      CVIS_PADDING_EXPLICIT, 2, 2, 2, 2, 0,
                                      CVIS_ACT_LINEAR, &c));
    SEED_TRY(cvis_model_add_activation(m, "hswish", c, CVIS_ACT_HARD_SWISH, &c));
    SEED_TRY(cvis_model_add_add(m, "sum", b, c, &d));
    SEED_TRY(cvis_model_add_multiply(m, "gate", d, a, &d));
    SEED_TRY(cvis_model_add_activation(m, "sig", d, CVIS_ACT_SIGMOID, &b));
    SEED_TRY(cvis_model_add_activation(m, "tanh", d, CVIS_ACT_TANH, &c));
    SEED_TRY(cvis_model_add_concat(m, "cat", 2, (int[]){b, c}, &d));
    SEED_TRY(cvis_model_add_zero_padding(m, "pad", d, 1, 0, 0, 1, &d));
    SEED_TRY(cvis_model_add_pool2d(m, "max", d, CVIS_POOL_MAX, 2, 2, 2, 2, CVIS_PADDING_SAME,
                                   &b));
    SEED_TRY(cvis_model_add_pool2d(m, "avg", d, CVIS_POOL_AVG, 3, 3, 2, 2, CVIS_PADDING_VALID,
                                   &c));
    SEED_TRY(cvis_model_add_conv2d(m, "head_conv", b, 4, 1, 1, 1, CVIS_PADDING_VALID,
                                   CVIS_ACT_HARD_SIGMOID, &b));
    SEED_TRY(cvis_model_add_global_avg_pool(m, "gap", b, &b));
    SEED_TRY(cvis_model_add_flatten(m, "flat", c, &c));
    SEED_TRY(cvis_model_add_dropout(m, "drop", c, 0.5f, &c));
    SEED_TRY(cvis_model_add_dense(m, "fc_a", b, 3, CVIS_ACT_SOFTMAX, &b));
    SEED_TRY(cvis_model_add_dense(m, "fc_b", c, 2, CVIS_ACT_LINEAR, &c));
    SEED_TRY(cvis_model_set_outputs(m, 2, (int[]){b, c}));
    SEED_TRY(cvis_model_init_weights(m, 5));
    return m;
fail:
    cvis_model_free(m);
    return NULL;
}

#endif
