/* HiRes-CAM: cam = relu(sum_k g_k * A_k), element-wise, the gradient taken
 * as it is (Layer-CAM would clip it at zero first). */
#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

static cvis_status hirescam_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *out)
{
    const cvis_tensor *A, *g;
    CVIS_TRY(cvis__cam_gradients(c, x, n_scores, scores, NULL, &A, &g));
    int64_t B = A->shape[0], h = A->shape[1], w = A->shape[2], K = A->shape[3];
    float *cam;
    CVIS_TRY(cvis__alloc((size_t)(B * h * w) * sizeof(float), "hires-cam", (void **)&cam));
    for (int64_t p = 0; p < B * h * w; p++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
            s += (double)g->data[p * K + k] * A->data[p * K + k];
        cam[p] = s > 0 ? (float)s : 0.0f;
    }
    cvis_status st = cvis__finish_cam(c, cam, B, h, w, x->shape[1], x->shape[2], out);
    cvis__free(cam);
    return st;
}

const cvis__method cvis__method_hirescam = {"hirescam", cvis__cam_output_shape, hirescam_run, NULL, 0};
