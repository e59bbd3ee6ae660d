/* Guided Grad-CAM: guided backpropagation times the Grad-CAM map expanded
 * to the input (bilinear, aligned corners, before normalization), per
 * channel.  The Grad-CAM part takes true gradients through the main pass;
 * the guided gradient its own pass. */
#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

static cvis_status ggc_attribute(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                 const cvis_score *const *scores, float *raw)
{
    const cvis_tensor *A, *g;
    CVIS_TRY(cvis__cam_gradients(c, x, n_scores, scores, NULL, &A, &g));
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t h = A->shape[1], w = A->shape[2];
    float *cam, *up;
    CVIS_TRY(cvis__alloc((size_t)(B * (h * w + H * W)) * sizeof(float), "guided grad-cam",
                         (void **)&cam));
    up = cam + B * h * w;
    cvis_status st = cvis__gradcam_map(A, g, cam);
    for (int64_t b = 0; st == CVIS_OK && b < B; b++)
        cvis__resize_map(cam + b * h * w, h, w, up + b * H * W, H, W);
    if (st == CVIS_OK)
        st = cvis__modified_gradient(c, &c->aux, CVIS__RELU_GUIDED, x, n_scores, scores, raw);
    for (int64_t p = 0; st == CVIS_OK && p < B * H * W; p++)
        for (int64_t k = 0; k < C; k++)
            raw[p * C + k] *= up[p];
    cvis__free(cam);
    return st;
}

const cvis__method cvis__method_guided_gradcam = {
    "guided-gradcam", cvis__input_output_shape, cvis__input_run, ggc_attribute, CVIS_REDUCE_SUM};
