/* Defects found in the core and the model layer, each reproduced by the
 * smallest program that showed it (the fixing commit added it).  Several
 * only fail loudly under `make check-asan`. */
#include "check.h"

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

TEST_MAIN({
    test_failed_builder_with_weights();
})
