/* Grad-CAM: cam = relu(sum_k mean_hw(dT/dA_k) * A_k). */
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

cvis_status cvis__cam_gradients(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *svals,
                                const cvis_tensor **A, const cvis_tensor **g)
{
    int l;
    CVIS_TRY(cvis__explain_cam_layer(c, &l));
    c->layer = l;
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 0, l));
    CVIS_TRY(cvis__explain_backward(c, c->pass, x, n_scores, scores, svals));
    *A = cvis__pass_layer_output(c->pass, l);
    *g = cvis__pass_layer_grad(c->pass, l);
    if (!*A || !*g)
        return cvis__fail(CVIS_E_INTERNAL, "the CAM layer's gradient was not computed");
    return CVIS_OK;
}

cvis_status cvis__gradcam_map(const cvis_tensor *A, const cvis_tensor *g, float *cam)
{
    int64_t B = A->shape[0], hw = A->shape[1] * A->shape[2], K = A->shape[3];
    double *w;
    float *alpha;
    CVIS_TRY(cvis__alloc((size_t)(B * K) * sizeof(double) + (size_t)K * sizeof(float), "grad-cam",
                         (void **)&w));
    alpha = (float *)(w + B * K);
    for (int64_t b = 0; b < B; b++) {
        const float *gb = g->data + b * hw * K;
        for (int64_t k = 0; k < K; k++)
            alpha[k] = 0;
        for (int64_t p = 0; p < hw; p++)
            for (int64_t k = 0; k < K; k++)
                alpha[k] += gb[p * K + k];
        for (int64_t k = 0; k < K; k++)
            w[b * K + k] = alpha[k] / (float)hw;
    }
    cvis__cam_combine(A, w, cam);
    cvis__free(w);
    return CVIS_OK;
}

static cvis_status gradcam_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                               const cvis_score *const *scores, float *out)
{
    const cvis_tensor *A, *g;
    CVIS_TRY(cvis__cam_gradients(c, x, n_scores, scores, NULL, &A, &g));
    int64_t B = A->shape[0], h = A->shape[1], w = A->shape[2];
    float *cam;
    CVIS_TRY(cvis__alloc((size_t)(B * h * w) * sizeof(float), "grad-cam", (void **)&cam));
    cvis_status st = cvis__gradcam_map(A, g, cam);
    if (st == CVIS_OK)
        st = cvis__finish_cam(c, cam, B, h, w, x->shape[1], x->shape[2], out);
    cvis__free(cam);
    return st;
}

const cvis__method cvis__method_gradcam = {"gradcam", cvis__cam_output_shape, gradcam_run, NULL, 0};
