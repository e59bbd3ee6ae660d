/* Average drop and increase in confidence (Grad-CAM++'s measures): the
 * confidence Y on each image against O on the image times its map,
 * min-max normalized to [0, 1], so that only the explained region stays. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "metrics.h"

CVIS_API cvis_status cvis_metric_average_drop(const cvis_model *m, const cvis_tensor *x,
                                              const cvis_score *score, const cvis_tensor *maps,
                                              double *average_drop, double *increase,
                                              cvis_tensor *confidences)
{
    CVIS_TRY(cvis__metric_check(m, x, score, maps));
    int64_t B = x->shape[0], HW = x->shape[1] * x->shape[2], C = x->shape[3];
    if (confidences && (confidences->ndim != 2 || confidences->shape[0] != B ||
                        confidences->shape[1] != 2))
        return cvis__fail(CVIS_E_SHAPE, "the confidences tensor must be (%lld, 2)", (long long)B);
    float *kept, *y, *o, *norm;
    CVIS_TRY(cvis__alloc((size_t)(x->size + B * HW + 2 * B) * sizeof(float), "average drop",
                         (void **)&kept));
    norm = kept + x->size;
    y = norm + B * HW;
    o = y + B;
    memcpy(norm, maps->data, (size_t)(B * HW) * sizeof(float));
    cvis__normalize(norm, B, HW);
    for (int64_t p = 0; p < B * HW; p++)
        for (int64_t k = 0; k < C; k++)
            kept[p * C + k] = x->data[p * C + k] * norm[p];
    cvis__confidence cf;
    cvis_status st = cvis__confidence_new(m, &cf);
    if (st == CVIS_OK) {
        st = cvis__confidence_eval(&cf, x, NULL, B, score, y);
        if (st == CVIS_OK) {
            cvis_tensor kt;
            cvis__tensor_view(&kt, kept, 4, x->shape);
            st = cvis__confidence_eval(&cf, &kt, NULL, B, score, o);
        }
        cvis__confidence_free(&cf);
    }
    if (st == CVIS_OK) {
        double drop = 0, up = 0;
        for (int64_t b = 0; b < B; b++) {
            if (y[b] > 0 && y[b] > o[b])
                drop += ((double)y[b] - o[b]) / y[b];
            up += o[b] > y[b];
            if (confidences) {
                confidences->data[2 * b] = y[b];
                confidences->data[2 * b + 1] = o[b];
            }
        }
        if (average_drop)
            *average_drop = 100.0 * drop / (double)B;
        if (increase)
            *increase = 100.0 * up / (double)B;
    }
    cvis__free(kept);
    return st;
}
