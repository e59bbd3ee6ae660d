/* XGrad-CAM: w_k = sum_hw(g_k * A_k) / (sum_hw A_k + eps),
 * cam = relu(sum_k w_k A_k). */
#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

static cvis_status xgradcam_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *out)
{
    const cvis_tensor *A, *g;
    CVIS_TRY(cvis__cam_gradients(c, x, n_scores, scores, NULL, &A, &g));
    int64_t B = A->shape[0], h = A->shape[1], w = A->shape[2], K = A->shape[3], hw = h * w;
    double *wk, *asum;
    float *cam;
    CVIS_TRY(cvis__alloc((size_t)(2 * B * K) * sizeof(double) + (size_t)(B * hw) * sizeof(float),
                         "xgrad-cam", (void **)&wk));
    asum = wk + B * K;
    cam = (float *)(asum + B * K);
    for (int64_t i = 0; i < 2 * B * K; i++)
        wk[i] = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < hw; p++)
            for (int64_t k = 0; k < K; k++) {
                int64_t i = (b * hw + p) * K + k;
                wk[b * K + k] += (double)g->data[i] * A->data[i];
                asum[b * K + k] += A->data[i];
            }
    for (int64_t i = 0; i < B * K; i++)
        wk[i] /= asum[i] + CVIS__EPS;
    cvis__cam_combine(A, wk, cam);
    cvis_status st = cvis__finish_cam(c, cam, B, h, w, x->shape[1], x->shape[2], out);
    cvis__free(wk);
    return st;
}

const cvis__method cvis__method_xgradcam = {"xgradcam", cvis__cam_output_shape, xgradcam_run, NULL, 0};
