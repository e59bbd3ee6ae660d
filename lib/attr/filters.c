/* The tutorial's first half: normalized filters and feature maps. */
#include <math.h>

#include "attr.h"
#include "core/error.h"

CVIS_API cvis_status cvis_model_get_filters_normalized(const cvis_model *m, int layer,
                                                       cvis_tensor **out)
{
    CVIS_CHECK_ARG(m && out, "model or out is NULL");
    cvis_tensor *f;
    CVIS_TRY(cvis_model_get_filters(m, layer, &f, NULL));
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < f->size; i++) {
        lo = f->data[i] < lo ? f->data[i] : lo;
        hi = f->data[i] > hi ? f->data[i] : hi;
    }
    /* (f - min) / (max - min) over the whole layer; a constant layer is 0 */
    float range = hi - lo;
    for (int64_t i = 0; i < f->size; i++)
        f->data[i] = range > 0 ? (f->data[i] - lo) / range : 0.0f;
    *out = f;
    return CVIS_OK;
}

CVIS_API cvis_status cvis_model_feature_maps(const cvis_model *m, const cvis_tensor *x, int n,
                                             const int *layers, cvis_tensor **outs)
{
    CVIS_CHECK_ARG(m && x && layers && outs, "model, input, layers or outs is NULL");
    cvis_model *sub;
    CVIS_TRY(cvis_model_submodel(m, n, layers, &sub));
    cvis_status st = cvis_model_predict_all(sub, x, n, outs);
    cvis_model_free(sub);
    return st;
}
