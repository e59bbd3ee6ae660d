/* Input x Gradient: a = X * dT/dX, per channel. */
#include "attr.h"
#include "core/error.h"
#include "model/pass.h"

static cvis_status ixg_attribute(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                 const cvis_score *const *scores, float *raw)
{
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 1, -1));
    CVIS_TRY(cvis__explain_backward(c, c->pass, x, n_scores, scores, NULL));
    const float *g = cvis__pass_input_grad(c->pass)->data;
    for (int64_t i = 0; i < x->size; i++)
        raw[i] = x->data[i] * g[i];
    return CVIS_OK;
}

const cvis__method cvis__method_input_x_gradient = {
    "input-x-gradient", cvis__input_output_shape, cvis__input_run, ixg_attribute, CVIS_REDUCE_SUM};
