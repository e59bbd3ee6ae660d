/* Grad-CAM++ in the reference's form, computed without its overflow:
 * with S = exp(s_b), alpha = S g^2 / (2 S g^2 + S g^3 sum_hw A) reduces to
 * 1 / (2 + g * sum_hw A) where g != 0 (0 where g == 0), and relu(S g) only
 * needs the sign of g, so S never appears.  The denominator can come close
 * to 0 on real models: it is formed in double and alpha is 0 where
 * |2 + g*sum_hw A| < GUARD. */
#include <math.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

#define GUARD 1e-6

static cvis_status gradcam_pp_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                  const cvis_score *const *scores, float *out)
{
    const cvis_tensor *A, *g;
    CVIS_TRY(cvis__cam_gradients(c, x, n_scores, scores, NULL, &A, &g));
    int64_t B = A->shape[0], h = A->shape[1], w = A->shape[2], K = A->shape[3], hw = h * w;
    float *cam;
    double *sa, *asum, *wk;
    CVIS_TRY(cvis__alloc((size_t)(B * hw) * sizeof(float), "grad-cam++", (void **)&cam));
    if (cvis__alloc((size_t)(3 * K) * sizeof(double), "grad-cam++", (void **)&sa) != CVIS_OK) {
        cvis__free(cam);
        return CVIS_E_NOMEM;
    }
    asum = sa + K;
    wk = asum + K;
    for (int64_t b = 0; b < B; b++) {
        const float *gb = g->data + b * hw * K, *ab = A->data + b * hw * K;
        for (int64_t k = 0; k < K; k++)
            sa[k] = asum[k] = wk[k] = 0;
        for (int64_t p = 0; p < hw; p++)
            for (int64_t k = 0; k < K; k++)
                sa[k] += ab[p * K + k];
        /* alpha's per-channel sum, then the weights with alpha normalized */
        for (int pass = 0; pass < 2; pass++)
            for (int64_t p = 0; p < hw; p++)
                for (int64_t k = 0; k < K; k++) {
                    double gv = gb[p * K + k];
                    if (gv == 0)
                        continue;
                    double den = 2.0 + gv * sa[k];
                    double alpha = fabs(den) < GUARD ? 0.0 : 1.0 / den;
                    if (pass == 0)
                        asum[k] += alpha;
                    else if (gv > 0)
                        wk[k] += alpha / (asum[k] != 0 ? asum[k] : 1.0) * gv;
                }
        for (int64_t p = 0; p < hw; p++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += wk[k] * ab[p * K + k];
            cam[b * hw + p] = s > 0 ? (float)s : 0.0f;
        }
    }
    cvis_status st = cvis__finish_cam(c, cam, B, h, w, x->shape[1], x->shape[2], out);
    cvis__free(cam);
    cvis__free(sa);
    return st;
}

const cvis__method cvis__method_gradcam_pp = {"gradcam++", cvis__cam_output_shape, gradcam_pp_run, NULL, 0};
