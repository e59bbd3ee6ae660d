/* Occlusion (Captum's definition): square windows of side w start at
 * i*stride for i = 0 .. ceil((H - w) / stride) along each axis (the last
 * one clipped at the edge); each window, over all channels, is set to the
 * baseline value; a pixel's attribution is the mean score drop
 * s(X) - s(X occluded) over the windows that cover it.  Maps (B,H,W). */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

static cvis_status occlusion_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                 const cvis_score *const *scores, float *out)
{
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3], per = H * W * C;
    int64_t side = H < W ? H : W;
    int64_t win = c->o.window ? c->o.window : (int64_t)llround((double)side / 8.0);
    if (win < 1)
        win = 1;
    int64_t stride = c->o.stride ? c->o.stride : (win / 2 > 1 ? win / 2 : 1);
    if (win > side)
        return cvis__fail(CVIS_E_INVALID_ARG, "the occlusion window (%lld) is larger than the "
                                              "image (%lldx%lld)",
                          (long long)win, (long long)H, (long long)W);
    int64_t ny = (H - win + stride - 1) / stride + 1, nx = (W - win + stride - 1) / stride + 1;
    int64_t n_win = ny * nx, bs = c->o.batch_size, total = B * n_win;
    double *s0;
    CVIS_TRY(cvis__info_row(c, CVIS_INFO_SCORE, B, &s0));
    CVIS_TRY(cvis__explain_pass(c, &c->pass, 0, -1));
    int64_t bytes;
    CVIS_TRY(cvis__mul_size(bs, per, "occlusion batch", &bytes));
    CVIS_TRY(cvis__mul_size(bytes + bs + B, (int64_t)sizeof(float), "occlusion", &bytes));
    char *mem;
    CVIS_TRY(cvis__alloc((size_t)bytes + (size_t)(B * H * W) * sizeof(double) +
                             (size_t)(H * W) * sizeof(int) + (size_t)(2 * bs) * sizeof(int),
                         "occlusion", (void **)&mem));
    double *acc = (double *)mem;
    float *batch = (float *)(acc + B * H * W), *sv = batch + bs * per;
    int *count = (int *)(sv + (bs > B ? bs : B)), *image_of = count + H * W, *win_of = image_of + bs;
    memset(acc, 0, (size_t)(B * H * W) * sizeof(double));
    memset(count, 0, (size_t)(H * W) * sizeof(int));
    cvis_status st = cvis__explain_rows(c, c->pass, x, NULL, B, n_scores, scores, sv, 0);
    for (int64_t b = 0; st == CVIS_OK && b < B; b++)
        s0[b] = sv[b];
    int64_t rows = 0;
    float base = (float)c->o.baseline_value;
    for (int64_t item = 0; st == CVIS_OK && item < total; item++) {
        int64_t b = item / n_win, j = item % n_win;
        int64_t y0 = (j / nx) * stride, x0 = (j % nx) * stride;
        int64_t y1 = y0 + win < H ? y0 + win : H, x1 = x0 + win < W ? x0 + win : W;
        float *dst = batch + rows * per;
        memcpy(dst, x->data + b * per, (size_t)per * sizeof(float));
        for (int64_t y = y0; y < y1; y++)
            for (int64_t i = (y * W + x0) * C; i < (y * W + x1) * C; i++)
                dst[i] = base;
        image_of[rows] = (int)b;
        win_of[rows] = (int)j;
        rows++;
        if (rows < bs && item < total - 1)
            continue;
        cvis_tensor xt;
        int64_t shape[4] = {rows, H, W, C};
        cvis__tensor_view(&xt, batch, 4, shape);
        st = cvis__explain_rows(c, c->pass, &xt, image_of, B, n_scores, scores, sv, 0);
        for (int64_t r = 0; st == CVIS_OK && r < rows; r++) {
            int64_t rb = image_of[r], rj = win_of[r];
            int64_t ry0 = (rj / nx) * stride, rx0 = (rj % nx) * stride;
            int64_t ry1 = ry0 + win < H ? ry0 + win : H, rx1 = rx0 + win < W ? rx0 + win : W;
            double drop = s0[rb] - sv[r];
            for (int64_t y = ry0; y < ry1; y++)
                for (int64_t xx = rx0; xx < rx1; xx++)
                    acc[(rb * H + y) * W + xx] += drop;
        }
        if (st == CVIS_OK)
            st = cvis__explain_progress(c, item + 1, total, "occlusion");
        rows = 0;
    }
    if (st == CVIS_OK) {
        for (int64_t j = 0; j < n_win; j++) {
            int64_t y0 = (j / nx) * stride, x0 = (j % nx) * stride;
            int64_t y1 = y0 + win < H ? y0 + win : H, x1 = x0 + win < W ? x0 + win : W;
            for (int64_t y = y0; y < y1; y++)
                for (int64_t xx = x0; xx < x1; xx++)
                    count[y * W + xx]++;
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t p = 0; p < H * W; p++)
                out[b * H * W + p] = count[p] ? (float)(acc[b * H * W + p] / count[p]) : 0.0f;
        if (c->o.normalize)
            cvis__normalize(out, B, H * W);
    }
    cvis__free(mem);
    return st;
}

const cvis__method cvis__method_occlusion = {"occlusion", cvis__pixel_output_shape, occlusion_run, NULL, 0};
