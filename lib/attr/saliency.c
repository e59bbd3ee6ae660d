/* Vanilla saliency, |dT/dX| with the channel maximum, and SmoothGrad: the
 * mean of |dT/dX'| over noisy copies X' = X + N(0, (noise * range_b)^2).
 * This file gives the per-channel map; the common input-space run
 * (noise_tunnel.c) reduces channels (max by default) and normalizes. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

static cvis_status saliency_attribute(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                      const cvis_score *const *scores, float *acc)
{
    int64_t B = x->shape[0], n = x->size, per = n / B;
    int S = c->o.smooth_samples;
    if (S < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "smooth samples must not be negative");
    if (S > 0 && !(c->o.smooth_noise >= 0))
        return cvis__fail(CVIS_E_INVALID_ARG, "smooth noise must not be negative");
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 1, -1));
    if (S == 0) {
        CVIS_TRY(cvis__explain_backward(c, c->pass, x, n_scores, scores, NULL));
        const float *g = cvis__pass_input_grad(c->pass)->data;
        for (int64_t i = 0; i < n; i++)
            acc[i] = fabsf(g[i]);
        return CVIS_OK;
    }
    float *noisy;
    CVIS_TRY(cvis__alloc((size_t)n * sizeof(float), "smoothgrad input", (void **)&noisy));
    memset(acc, 0, (size_t)n * sizeof(float));
    cvis__rng rng;
    cvis__rng_seed(&rng, c->o.seed);
    cvis_tensor xn;
    cvis__tensor_view(&xn, noisy, x->ndim, x->shape);
    cvis_status st = CVIS_OK;
    for (int s = 0; s < S && st == CVIS_OK; s++) {
        for (int64_t b = 0; b < B; b++) {
            const float *xb = x->data + b * per;
            float lo = xb[0], hi = xb[0];
            for (int64_t i = 1; i < per; i++) {
                lo = xb[i] < lo ? xb[i] : lo;
                hi = xb[i] > hi ? xb[i] : hi;
            }
            double sigma = c->o.smooth_noise * ((double)hi - lo);
            for (int64_t i = 0; i < per; i++)
                noisy[b * per + i] = (float)(xb[i] + sigma * cvis__rng_normal(&rng));
        }
        st = cvis__explain_backward(c, c->pass, &xn, n_scores, scores, NULL);
        if (st == CVIS_OK) {
            const float *g = cvis__pass_input_grad(c->pass)->data;
            for (int64_t i = 0; i < n; i++)
                acc[i] += fabsf(g[i]);
        }
    }
    for (int64_t i = 0; st == CVIS_OK && i < n; i++)
        acc[i] /= (float)S;
    cvis__free(noisy);
    return st;
}

const cvis__method cvis__method_saliency = {"saliency", cvis__input_output_shape, cvis__input_run,
                                            saliency_attribute, CVIS_REDUCE_MAX_ABS};
