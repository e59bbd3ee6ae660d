/* The tutorial's network, built through the public API:
 *   Conv2D(8,7,relu) Conv2D(8,5,relu) Conv2D(8,3,relu) Flatten
 *   Dense(128,relu) Dense(3,softmax) on 128x128x3 input.
 * Shared by the examples; returns CVIS_OK or the failing status. */
#ifndef CVIS_EXAMPLE_TUTORIAL_MODEL_H
#define CVIS_EXAMPLE_TUTORIAL_MODEL_H

#include "cvis.h"

static cvis_status tutorial_model(int classes, cvis_model **out)
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

#endif
