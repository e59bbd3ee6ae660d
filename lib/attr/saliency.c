/* Vanilla saliency, |dT/dX| with the channel maximum, and SmoothGrad: the
 * mean of |dT/dX'| over noisy copies X' = X + N(0, (noise * range_b)^2). */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

static cvis_status saliency_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out)
{
    *out = *x;
    if (!c->o.keepdims)
        out->ndim = 3;
    return CVIS_OK;
}

static cvis_status saliency_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *out)
{
    int64_t B = x->shape[0], C = x->shape[3], n = x->size, per = n / B;
    int S = c->o.smooth_samples;
    if (S < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "smooth samples must not be negative");
    if (S > 0 && !(c->o.smooth_noise >= 0))
        return cvis__fail(CVIS_E_INVALID_ARG, "smooth noise must not be negative");
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 1, -1));
    float *acc = NULL, *noisy = NULL;
    cvis_status st = cvis__alloc_zero((size_t)n * sizeof(float), "saliency", (void **)&acc);
    if (st == CVIS_OK && S > 0)
        st = cvis__alloc((size_t)n * sizeof(float), "smoothgrad input", (void **)&noisy);
    if (st != CVIS_OK) {
        cvis__free(acc);
        return st;
    }
    if (S == 0) {
        st = cvis__explain_backward(c, c->pass, x, n_scores, scores, NULL);
        if (st == CVIS_OK) {
            const float *g = cvis__pass_input_grad(c->pass)->data;
            for (int64_t i = 0; i < n; i++)
                acc[i] = fabsf(g[i]);
        }
    } else {
        cvis__rng rng;
        cvis__rng_seed(&rng, c->o.seed);
        cvis_tensor xn;
        cvis__tensor_view(&xn, noisy, x->ndim, x->shape);
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
    }
    if (st == CVIS_OK) {
        if (c->o.keepdims) {
            memcpy(out, acc, (size_t)n * sizeof(float));
        } else {
            for (int64_t p = 0; p < n / C; p++) {
                float mx = acc[p * C];
                for (int64_t k = 1; k < C; k++)
                    mx = acc[p * C + k] > mx ? acc[p * C + k] : mx;
                out[p] = mx;
            }
        }
        if (c->o.normalize)
            cvis__normalize(out, B, c->o.keepdims ? per : per / C);
    }
    cvis__free(acc);
    cvis__free(noisy);
    return st;
}

const cvis__method cvis__method_saliency = {"saliency", saliency_shape, saliency_run};
