/* The tutorial's network, built through the public API:
 *   Conv2D(8,7,relu) Conv2D(8,5,relu) Conv2D(8,3,relu) Flatten
 *   Dense(128,relu) Dense(3,softmax) on 128x128x3 input.
 * Shared by the examples; returns CVIS_OK or the failing status. */
#ifndef CVIS_EXAMPLE_TUTORIAL_MODEL_H
#define CVIS_EXAMPLE_TUTORIAL_MODEL_H

#include "cvis.h"

static inline cvis_status tutorial_model(int classes, cvis_model **out)
{
    cvis_model *m = NULL;
    cvis_status st = cvis_model_new(128, 128, 3, &m);
    if (st == CVIS_OK)
        st = cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 7, 7, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 5, 5, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_conv2d(m, NULL, CVIS_PREV, 8, 3, 3, 1, CVIS_PADDING_VALID, CVIS_ACT_RELU, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_flatten(m, NULL, CVIS_PREV, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_dense(m, NULL, CVIS_PREV, 128, CVIS_ACT_RELU, NULL);
    if (st == CVIS_OK)
        st = cvis_model_add_dense(m, NULL, CVIS_PREV, classes, CVIS_ACT_SOFTMAX, NULL);
    if (st != CVIS_OK) {
        cvis_model_free(m);
        return st;
    }
    *out = m;
    return CVIS_OK;
}

/* The tutorial's activation maximization of a filter of layer `layer`:
 * Jitter(16), Rotate2D(1), TotalVariation2D(1.0), Norm(0.3, p=1) and
 * Adam(1.0, 0.999) -- Keras's positional order, so beta_1 = 0.999 -- for
 * `steps` steps.  Caller frees *out with cvis_explainer_free. */
static inline cvis_status tutorial_maximization(const cvis_model *m, int layer, int steps,
                                                cvis_explainer **out)
{
    cvis_explainer *e = NULL;
    cvis_status st = cvis_explainer_new(m, CVIS_METHOD_ACTIVATION_MAXIMIZATION, &e);
    if (st == CVIS_OK)
        st = cvis_explainer_set_int(e, CVIS_OPT_OUTPUT_LAYER, layer);
    if (st == CVIS_OK)
        st = cvis_explainer_set_int(e, CVIS_OPT_STEPS, steps);
    if (st == CVIS_OK)
        st = cvis_explainer_set_int(e, CVIS_OPT_JITTER, 16);
    if (st == CVIS_OK)
        st = cvis_explainer_set_float(e, CVIS_OPT_ROTATE, 1);
    if (st == CVIS_OK)
        st = cvis_explainer_set_float(e, CVIS_OPT_TV_WEIGHT, 1.0);
    if (st == CVIS_OK)
        st = cvis_explainer_set_float(e, CVIS_OPT_NORM_WEIGHT, 0.3);
    if (st == CVIS_OK)
        st = cvis_explainer_set_float(e, CVIS_OPT_NORM_P, 1);
    if (st == CVIS_OK)
        st = cvis_explainer_set_int(e, CVIS_OPT_OPTIMIZER, CVIS_OPTIMIZER_ADAM);
    if (st == CVIS_OK)
        st = cvis_explainer_set_float(e, CVIS_OPT_LEARNING_RATE, 1.0);
    if (st == CVIS_OK)
        st = cvis_explainer_set_float(e, CVIS_OPT_BETA_1, 0.999);
    if (st != CVIS_OK) {
        cvis_explainer_free(e);
        return st;
    }
    *out = e;
    return CVIS_OK;
}

#endif
