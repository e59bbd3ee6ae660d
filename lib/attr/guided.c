/* Guided backpropagation and deconvnet: dT/dX with every ReLU's backward
 * replaced (including the ReLUs fused into convolution and dense layers):
 * guided passes dy * [dy > 0] * [x > 0], deconvnet relu(dy).  Other
 * activations (ReLU6, leaky ReLU, ...) keep their true gradient, as in
 * Captum, which replaces only ReLU modules. */
#include <string.h>

#include "attr.h"
#include "core/error.h"
#include "model/pass.h"

cvis_status cvis__modified_gradient(cvis__explain_ctx *c, cvis_pass **slot, cvis__relu_mode mode,
                                    const cvis_tensor *x, int n_scores,
                                    const cvis_score *const *scores, float *raw)
{
    CVIS_TRY(cvis__explain_pass(c, slot, 1, -1));
    cvis__pass_set_relu_mode(*slot, mode);
    CVIS_TRY(cvis__explain_backward(c, *slot, x, n_scores, scores, NULL));
    memcpy(raw, cvis__pass_input_grad(*slot)->data, (size_t)x->size * sizeof(float));
    return CVIS_OK;
}

static cvis_status guided_attribute(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                    const cvis_score *const *scores, float *raw)
{
    return cvis__modified_gradient(c, &c->pass, CVIS__RELU_GUIDED, x, n_scores, scores, raw);
}

static cvis_status deconv_attribute(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                    const cvis_score *const *scores, float *raw)
{
    return cvis__modified_gradient(c, &c->pass, CVIS__RELU_DECONV, x, n_scores, scores, raw);
}

const cvis__method cvis__method_guided_backprop = {
    "guided-backprop", cvis__input_output_shape, cvis__input_run, guided_attribute, CVIS_REDUCE_SUM};
const cvis__method cvis__method_deconvnet = {
    "deconvnet", cvis__input_output_shape, cvis__input_run, deconv_attribute, CVIS_REDUCE_SUM};
