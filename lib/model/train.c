/* Training support: the cross-entropy loss and stepping a model's weights. */
#include <math.h>

#include "core/error.h"
#include "core/optimizer.h"
#include "model.h"
#include "pass.h"

/* Steps layers [first, last]; every gradient is checked before any weight
 * moves, so that a failure changes nothing. */
static cvis_status step_layers(cvis_optimizer *o, cvis_model *m, const cvis_pass *p, int first,
                               int last)
{
    CVIS_CHECK_ARG(o && m && p, "optimizer, model or pass is NULL");
    if (cvis__pass_model(p)->g != m->g)
        return cvis__fail(CVIS_E_INVALID_ARG, "the pass was made for another model");
    if (!cvis__pass_has_weight_grads(p))
        return cvis__fail(CVIS_E_STATE, "the pass holds no weight gradients: set "
                                        "CVIS_PASS_WEIGHT_GRADS and run forward and backward");
    for (int i = first; i <= last; i++) {
        const cvis__layer *l = &m->g->layers[i];
        for (int k = 0; k < l->n_w; k++) {
            const cvis_tensor *g = cvis__pass_weight_grad((cvis_pass *)p, i, k);
            if (l->w_trainable[k] && g)
                CVIS_TRY(cvis__check_finite(g->data, g->size, "a weight gradient"));
        }
    }
    int slot = 0;
    for (int i = 0; i < first; i++)
        slot += m->g->layers[i].n_w;
    for (int i = first; i <= last; i++) {
        cvis__layer *l = &m->g->layers[i];
        for (int k = 0; k < l->n_w; k++, slot++) {
            if (!l->w_trainable[k])
                continue;
            const cvis_tensor *g = cvis__pass_weight_grad((cvis_pass *)p, i, k);
            if (!g)
                continue;
            CVIS_TRY(cvis__optimizer_step(o, slot, l->w[k]->data, g->data, l->w[k]->size));
        }
    }
    return CVIS_OK;
}

CVIS_API cvis_status cvis_optimizer_step_model(cvis_optimizer *o, cvis_model *m, const cvis_pass *p)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    return step_layers(o, m, p, 0, m->g->n_layers - 1);
}

CVIS_API cvis_status cvis_optimizer_step_layer(cvis_optimizer *o, cvis_model *m, const cvis_pass *p,
                                               int layer)
{
    CVIS_CHECK_ARG(m, "model is NULL");
    CVIS_TRY(cvis__model_check_layer(m, &layer));
    return step_layers(o, m, p, layer, layer);
}

CVIS_API cvis_status cvis_softmax_cross_entropy(const cvis_tensor *logits, const int *labels,
                                                double *loss, cvis_tensor *d_logits)
{
    CVIS_CHECK_ARG(logits && labels && loss, "logits, labels or loss is NULL");
    if (logits->ndim != 2 || logits->shape[0] < 1 || logits->shape[1] < 1)
        return cvis__fail(CVIS_E_SHAPE, "logits must be (B, classes)");
    int64_t B = logits->shape[0], K = logits->shape[1];
    if (d_logits && (d_logits->ndim != 2 || d_logits->shape[0] != B || d_logits->shape[1] != K))
        return cvis__fail(CVIS_E_SHAPE, "d_logits must have the shape of logits");
    for (int64_t b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= K)
            return cvis__fail(CVIS_E_RANGE, "label %d of image %lld outside 0..%lld", labels[b],
                              (long long)b, (long long)K - 1);
    CVIS_TRY(cvis__check_finite(logits->data, logits->size, "the logits"));
    double total = 0;
    for (int64_t b = 0; b < B; b++) {
        const float *z = logits->data + b * K;
        double mx = z[0], sum = 0;
        for (int64_t k = 1; k < K; k++)
            mx = z[k] > mx ? z[k] : mx;
        for (int64_t k = 0; k < K; k++)
            sum += exp(z[k] - mx);
        double lse = mx + log(sum);
        total += lse - z[labels[b]];
        if (d_logits)
            for (int64_t k = 0; k < K; k++)
                d_logits->data[b * K + k] =
                    (float)((exp(z[k] - lse) - (k == labels[b] ? 1.0 : 0.0)) / (double)B);
    }
    *loss = total / (double)B;
    return CVIS_OK;
}
