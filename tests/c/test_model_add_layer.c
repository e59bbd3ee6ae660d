/* cvis__model_add_layer's failure paths: whatever fails, the attribute and
 * the weights handed over are freed once, nothing crashes or leaks (run
 * under `make check-asan`). */
#include "check.h"
#include "core/alloc.h"
#include "model/model.h"

/* A convolution of the model's input whose kernel expects `cin` channels. */
static cvis_status add_conv(cvis_model *m, int cin)
{
    cvis__conv_attr *a = cvis__calloc(1, sizeof *a);
    cvis_tensor *w[2] = {NULL, NULL};
    if (!a)
        return CVIS_E_NOMEM;
    *a = (cvis__conv_attr){3, 3, 1, 1, 1, 1, 1, CVIS__PAD_SAME_UPPER, 0, 0, 0, 0, 2, 1, 0, 0,
                           CVIS_ACT_LINEAR, 0};
    cvis_status st = cvis__tensor_new(4, (int64_t[]){3, 3, cin, 2}, 1, &w[0]);
    if (st == CVIS_OK)
        st = cvis__tensor_new(1, (int64_t[]){2}, 1, &w[1]);
    if (st != CVIS_OK) {
        cvis__free(a);
        cvis_tensor_free(w[0]);
        return st;
    }
    const char *names[2] = {"kernel", "bias"};
    /* the groups do not divide a 5-channel input: a shape error */
    if (cin == 5)
        a->groups = 2;
    return cvis__model_add_layer(m, NULL, "conv2d", "Conv2D", &cvis__op_conv2d, a, 1,
                                 (int[]){CVIS_INPUT}, 2, w, names, NULL, 1, NULL);
}

TEST_MAIN({
    cvis_model *m = NULL;
    CHECK_OK(cvis_model_new(8, 8, 5, &m));
    /* shape inference fails before the weights are taken over */
    CHECK_STATUS(add_conv(m, 5), CVIS_E_SHAPE);
    CHECK(cvis_model_layer_count(m) == 0);
    cvis_model_free(m);
    CHECK_OK(cvis_model_new(8, 8, 3, &m));
    CHECK_OK(add_conv(m, 3));
    /* every allocation of the call failing in turn */
    int ok = 0;
    for (int k = 1; k < 40; k++) {
        cvis__alloc_fail_after(k);
        cvis_status st = add_conv(m, 3);
        cvis__alloc_fail_after(0);
        CHECK(st == CVIS_OK || st == CVIS_E_NOMEM);
        ok += st == CVIS_OK;
    }
    CHECK(ok > 0 && cvis_model_layer_count(m) == 1 + ok);
    cvis_model_free(m);
})
