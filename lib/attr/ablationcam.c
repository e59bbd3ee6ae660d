/* Ablation-CAM: w_k = (s - s_k) / s, where s_k is the score with channel k
 * of the CAM layer set to zero; cam = relu(sum_k w_k A_k).  No gradients.
 * Each (image, channel) pair is one row of a forward pass whose CAM layer
 * output is edited on the way; rows run in batches.  A zero score s gives
 * zero weights (and a zero map). */
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

typedef struct ablation {
    const int *chan_of; /* per row: the channel to zero */
} ablation;

static void zero_channel(void *ctx, cvis_tensor *v)
{
    const ablation *a = ctx;
    int64_t R = v->shape[0], K = v->shape[v->ndim - 1], per = v->size / R;
    for (int64_t r = 0; r < R; r++)
        for (int64_t p = a->chan_of[r]; p < per; p += K)
            v->data[r * per + p] = 0;
}

static cvis_status ablationcam_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                   const cvis_score *const *scores, float *out)
{
    int l;
    CVIS_TRY(cvis__explain_cam_layer(c, &l));
    c->layer = l;
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3], per = H * W * C;
    int64_t bs = c->o.batch_size;
    double *s0;
    CVIS_TRY(cvis__info_row(c, CVIS_INFO_SCORE, B, &s0));
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 0, -1));
    float *sv;
    CVIS_TRY(cvis__alloc((size_t)(B > bs ? B : bs) * sizeof(float), "ablation-cam", (void **)&sv));
    cvis_status st = cvis__explain_rows(c, c->pass, x, NULL, B, n_scores, scores, sv, 0);
    const cvis_tensor *A = st == CVIS_OK ? cvis__pass_layer_output(c->pass, l) : NULL;
    int64_t h = A ? A->shape[1] : 0, w = A ? A->shape[2] : 0, K = A ? A->shape[3] : 0;
    for (int64_t b = 0; st == CVIS_OK && b < B; b++)
        s0[b] = sv[b];
    char *mem = NULL;
    if (st == CVIS_OK) {
        int64_t bytes;
        st = cvis__mul_size(bs, per, "ablation-cam batch", &bytes);
        if (st == CVIS_OK)
            st = cvis__mul_size(bytes + B * h * w, (int64_t)sizeof(float), "ablation-cam", &bytes);
        if (st == CVIS_OK)
            st = cvis__alloc((size_t)bytes + (size_t)(B * K) * sizeof(double) +
                                 (size_t)(2 * bs) * sizeof(int),
                             "ablation-cam", (void **)&mem);
    }
    if (st == CVIS_OK)
        st = cvis__explain_pass(c, &c->aux, 0, -1);
    if (st != CVIS_OK) {
        cvis__free(sv);
        cvis__free(mem);
        return st;
    }
    double *wk = (double *)mem;
    float *batch = (float *)(wk + B * K), *cam = batch + bs * per;
    int *image_of = (int *)(cam + B * h * w), *chan_of = image_of + bs;
    ablation ab = {chan_of};
    cvis__pass_set_edit(c->aux, l, zero_channel, &ab);
    int64_t total = B * K, rows = 0;
    for (int64_t item = 0; st == CVIS_OK && item < total; item++) {
        int64_t b = item / K;
        memcpy(batch + rows * per, x->data + b * per, (size_t)per * sizeof(float));
        image_of[rows] = (int)b;
        chan_of[rows] = (int)(item % K);
        rows++;
        if (rows < bs && item < total - 1)
            continue;
        cvis_tensor xt;
        int64_t shape[4] = {rows, H, W, C};
        cvis__tensor_view(&xt, batch, 4, shape);
        st = cvis__explain_rows(c, c->aux, &xt, image_of, B, n_scores, scores, sv, 0);
        for (int64_t r = 0; st == CVIS_OK && r < rows; r++) {
            double s = s0[image_of[r]];
            wk[image_of[r] * K + chan_of[r]] = s != 0 ? (s - sv[r]) / s : 0.0;
        }
        if (st == CVIS_OK)
            st = cvis__explain_progress(c, item + 1, total, "ablation-cam");
        rows = 0;
    }
    cvis__pass_set_edit(c->aux, -1, NULL, NULL);
    if (st == CVIS_OK) {
        cvis__cam_combine(A, wk, cam);
        st = cvis__finish_cam(c, cam, B, h, w, H, W, out);
    }
    cvis__free(sv);
    cvis__free(mem);
    return st;
}

const cvis__method cvis__method_ablationcam = {"ablationcam", cvis__cam_output_shape,
                                               ablationcam_run, NULL, 0};
