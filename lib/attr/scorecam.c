/* Score-CAM and Faster Score-CAM.  Each chosen channel k of the CAM layer,
 * upsampled to the input and min-max scaled, masks image b; the target's
 * softmax score on the masked image weighs A_k: cam = relu(sum_k w_k A_k).
 * No gradients.  The masked images run through the model in batches. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

/* Faster Score-CAM's channel set: per image the max_n channels with the
 * largest population standard deviation over (h,w) (ties to the lower
 * index), united over the batch.  Writes the set in increasing order. */
static cvis_status choose_channels(const cvis_tensor *A, int max_n, int *chosen, int *n_chosen)
{
    int64_t B = A->shape[0], hw = A->shape[1] * A->shape[2], K = A->shape[3];
    double *sd;
    int *order;
    unsigned char *in_set;
    CVIS_TRY(cvis__alloc((size_t)K * (sizeof(double) + sizeof(int) + 1), "channel choice",
                         (void **)&sd));
    order = (int *)(sd + K);
    in_set = (unsigned char *)(order + K);
    memset(in_set, 0, (size_t)K);
    for (int64_t b = 0; b < B; b++) {
        const float *ab = A->data + b * hw * K;
        for (int64_t k = 0; k < K; k++) {
            double m = 0, v = 0;
            for (int64_t p = 0; p < hw; p++)
                m += ab[p * K + k];
            m /= (double)hw;
            for (int64_t p = 0; p < hw; p++)
                v += (ab[p * K + k] - m) * (ab[p * K + k] - m);
            sd[k] = sqrt(v / (double)hw);
            order[k] = (int)k;
        }
        /* partial selection sort: largest first, the lower index on ties */
        for (int i = 0; i < max_n; i++) {
            int best = i;
            for (int j = i + 1; j < K; j++)
                if (sd[order[j]] > sd[order[best]] ||
                    (sd[order[j]] == sd[order[best]] && order[j] < order[best]))
                    best = j;
            int t = order[i];
            order[i] = order[best];
            order[best] = t;
            in_set[order[i]] = 1;
        }
    }
    *n_chosen = 0;
    for (int64_t k = 0; k < K; k++)
        if (in_set[k])
            chosen[(*n_chosen)++] = (int)k;
    cvis__free(sd);
    return CVIS_OK;
}

/* Softmax over the last axis of every output, then each score on its rows;
 * adds the sum over outputs into w. */
static cvis_status masked_scores(cvis__explain_ctx *c, int n_scores, const cvis_score *const *scores,
                                 const int *image_of, int64_t B, int64_t rows, float *tmp,
                                 float *w)
{
    for (int64_t r = 0; r < rows; r++)
        w[r] = 0;
    for (int k = 0; k < n_scores; k++) {
        const cvis_tensor *o = cvis__pass_output(c->aux, k);
        cvis_tensor *soft = c->seeds[k];
        if (!soft || soft->size < o->size) {
            cvis_tensor_free(soft);
            c->seeds[k] = NULL;
            CVIS_TRY(cvis__tensor_new(o->ndim, o->shape, 0, &c->seeds[k]));
            soft = c->seeds[k];
        }
        float *data = soft->data;
        cvis__tensor_view(soft, data, o->ndim, o->shape);
        soft->owns = 1;
        memcpy(data, o->data, (size_t)o->size * sizeof(float));
        cvis__act_apply(CVIS_ACT_SOFTMAX, 0, data, o->size, o->shape[o->ndim - 1]);
        CVIS_TRY(cvis__score_eval(scores[k], soft, image_of, B, tmp, NULL));
        for (int64_t r = 0; r < rows; r++)
            w[r] += tmp[r];
    }
    return CVIS_OK;
}

static cvis_status scorecam_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                const cvis_score *const *scores, float *out)
{
    int l;
    CVIS_TRY(cvis__explain_cam_layer(c, &l));
    c->layer = l;
    if (c->o.batch_size < 1)
        return cvis__fail(CVIS_E_INVALID_ARG, "batch size must be positive");
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 0, -1));
    CVIS_TRY(cvis__pass_forward(c->pass, x));
    const cvis_tensor *A = cvis__pass_layer_output(c->pass, l);
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t h = A->shape[1], w = A->shape[2], K = A->shape[3], hw = h * w, HW = H * W;
    int max_n = (int)K;
    if (c->o.max_n_set && c->o.max_n != -1) {
        if (c->o.max_n < 1 || c->o.max_n > K)
            return cvis__fail(CVIS_E_RANGE, "max_N %d outside [1, %lld], the layer's channel count",
                              c->o.max_n, (long long)K);
        max_n = c->o.max_n;
    } else if (c->method == CVIS_METHOD_FASTER_SCORECAM) {
        max_n = K < 10 ? (int)K : 10;
    }
    int64_t bs = c->o.batch_size;
    /* one allocation (all 4-byte elements): the channel list, the weights
     * (B,K), one channel and its upsampled mask, per-row bookkeeping of a
     * batch, the masked batch itself and the final cam */
    size_t bytes = sizeof(float) * (size_t)(K + B * K + hw + HW + 4 * bs + bs * HW * C + B * hw);
    char *mem;
    CVIS_TRY(cvis__alloc(bytes, "score-cam", (void **)&mem));
    int *chosen = (int *)mem;
    float *weights = (float *)(chosen + K);
    float *chan = weights + B * K, *up = chan + hw;
    int *image_of = (int *)(up + HW);
    int *chan_of = image_of + bs;
    float *wrow = (float *)(chan_of + bs), *tmp = wrow + bs;
    float *batch = tmp + bs, *cam = batch + bs * HW * C;
    int n_chosen = (int)K;
    cvis_status st = CVIS_OK;
    if (max_n < K)
        st = choose_channels(A, max_n, chosen, &n_chosen);
    else
        for (int k = 0; k < K; k++)
            chosen[k] = k;
    /* the masked batches run through a second pass, so A stays valid */
    if (st == CVIS_OK)
        st = cvis__explain_pass(c, &c->aux, 0, -1);
    /* the masked batches need their scores only */
    if (st == CVIS_OK)
        cvis__pass_set_lean(c->aux, 1);
    int64_t total = B * n_chosen, done = 0;
    int64_t rows = 0;
    for (int64_t item = 0; st == CVIS_OK && item < total; item++) {
        int64_t b = item / n_chosen;
        int k = chosen[item % n_chosen];
        const float *ab = A->data + b * hw * K;
        float lo = INFINITY, hi = -INFINITY;
        /* upsample channel k, then min-max it into a mask */
        for (int64_t p = 0; p < hw; p++)
            chan[p] = ab[p * K + k];
        cvis__resize_map(chan, h, w, up, H, W);
        for (int64_t p = 0; p < HW; p++) {
            lo = up[p] < lo ? up[p] : lo;
            hi = up[p] > hi ? up[p] : hi;
        }
        double scale = 1.0 / ((double)hi - lo + CVIS__EPS);
        float *dst = batch + rows * HW * C;
        const float *xb = x->data + b * HW * C;
        for (int64_t p = 0; p < HW; p++) {
            float m = (float)((up[p] - lo) * scale);
            for (int64_t ch = 0; ch < C; ch++)
                dst[p * C + ch] = xb[p * C + ch] * m;
        }
        image_of[rows] = (int)b;
        chan_of[rows] = k;
        rows++;
        if (rows == bs || item == total - 1) {
            cvis_tensor xt;
            int64_t shape[4] = {rows, H, W, C};
            cvis__tensor_view(&xt, batch, 4, shape);
            st = cvis__pass_forward(c->aux, &xt);
            if (st == CVIS_OK)
                st = masked_scores(c, n_scores, scores, image_of, B, rows, tmp, wrow);
            for (int64_t r = 0; st == CVIS_OK && r < rows; r++)
                weights[image_of[r] * K + chan_of[r]] = wrow[r];
            done += rows;
            rows = 0;
            if (st == CVIS_OK && c->o.progress &&
                c->o.progress(c->o.progress_user, (int)done, (int)total, 0, NULL) != 0)
                st = cvis__fail(CVIS_E_CANCELLED, "score-cam stopped by the progress callback");
        }
    }
    if (st == CVIS_OK) {
        for (int64_t b = 0; b < B; b++) {
            const float *ab = A->data + b * hw * K;
            for (int64_t p = 0; p < hw; p++) {
                double s = 0;
                for (int i = 0; i < n_chosen; i++)
                    s += (double)weights[b * K + chosen[i]] * ab[p * K + chosen[i]];
                cam[b * hw + p] = s > 0 ? (float)s : 0.0f;
            }
        }
        st = cvis__finish_cam(c, cam, B, h, w, H, W, out);
    }
    cvis__free(mem);
    return st;
}

const cvis__method cvis__method_scorecam = {"scorecam", cvis__cam_output_shape, scorecam_run, NULL, 0};
