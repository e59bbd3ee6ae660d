/* The input-space methods' common run, and the noise tunnel over them.
 * A method gives its per-channel attribution a(X) (B,H,W,C); with the
 * tunnel on, a is computed on S noisy copies X + N(0, stdev^2) (one draw per
 * element, sample and image, from the call's generator) and combined:
 * SmoothGrad mean a_s, SmoothGrad-squared mean a_s^2, VarGrad
 * mean a_s^2 - (mean a_s)^2 (Captum's NoiseTunnel).  Then, unless keepdims,
 * the channels are reduced, and each map is normalized. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

static cvis_status tunnel(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                          const cvis_score *const *scores, float *raw)
{
    int64_t n = x->size;
    int S = c->o.nt_samples;
    if (S < 1)
        return cvis__fail(CVIS_E_INVALID_ARG, "the noise tunnel needs at least one sample");
    if (c->o.smooth_samples > 0)
        return cvis__fail(CVIS_E_INVALID_ARG,
                          "the noise tunnel and SmoothGrad's samples cannot be combined: "
                          "set CVIS_OPT_SMOOTH_SAMPLES to 0");
    float *noisy, *one;
    double *sum, *sq;
    int64_t bytes;
    CVIS_TRY(cvis__mul_size(n, 2 * (int64_t)sizeof(float) + 2 * (int64_t)sizeof(double),
                            "noise tunnel", &bytes));
    CVIS_TRY(cvis__alloc((size_t)bytes, "noise tunnel", (void **)&sum));
    sq = sum + n;
    noisy = (float *)(sq + n);
    one = noisy + n;
    memset(sum, 0, (size_t)n * 2 * sizeof(double));
    cvis__rng rng;
    cvis__rng_seed(&rng, c->o.seed);
    cvis_tensor xn;
    cvis__tensor_view(&xn, noisy, x->ndim, x->shape);
    cvis_status st = CVIS_OK;
    for (int s = 0; s < S && st == CVIS_OK; s++) {
        for (int64_t i = 0; i < n; i++)
            noisy[i] = (float)(x->data[i] + c->o.nt_stdev * cvis__rng_normal(&rng));
        st = c->impl->attribute(c, &xn, n_scores, scores, one);
        for (int64_t i = 0; st == CVIS_OK && i < n; i++) {
            sum[i] += one[i];
            sq[i] += (double)one[i] * one[i];
        }
        if (st == CVIS_OK)
            st = cvis__explain_progress(c, s + 1, S, "the noise tunnel");
    }
    for (int64_t i = 0; st == CVIS_OK && i < n; i++) {
        double mean = sum[i] / S, msq = sq[i] / S;
        switch (c->o.nt_type) {
        case CVIS_NT_SMOOTHGRAD: raw[i] = (float)mean; break;
        case CVIS_NT_SMOOTHGRAD_SQ: raw[i] = (float)msq; break;
        default: raw[i] = (float)(msq - mean * mean); break;
        }
    }
    cvis__free(sum);
    /* per-run figures of one noisy sample mean nothing for the tunnel */
    cvis__info_clear(c);
    return st;
}

cvis_status cvis__input_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                            const cvis_score *const *scores, float *out)
{
    int64_t B = x->shape[0], C = x->shape[3], n = x->size, per = n / B;
    float *raw;
    CVIS_TRY(cvis__alloc((size_t)n * sizeof(float), "attributions", (void **)&raw));
    cvis_status st;
    if (c->o.nt_type != CVIS_NT_NONE)
        st = tunnel(c, x, n_scores, scores, raw);
    else
        st = c->impl->attribute(c, x, n_scores, scores, raw);
    if (st == CVIS_OK) {
        if (c->o.keepdims)
            memcpy(out, raw, (size_t)n * sizeof(float));
        else
            cvis__reduce_channels(raw, n / C, C, c->o.reduce_set ? c->o.reduce : c->impl->reduce,
                                  out);
        if (c->o.normalize)
            cvis__normalize(out, B, c->o.keepdims ? per : per / C);
    }
    cvis__free(raw);
    return st;
}
