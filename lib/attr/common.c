/* What the methods share: target model and score checks, the CAM layer
 * choice, a forward + score + backward step, resize and normalize. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "model/pass.h"

cvis_status cvis__explain_target(cvis__explain_ctx *c)
{
    int want = -1;
    if (c->o.output_layer_name)
        CVIS_TRY(cvis_model_find_layer(c->model, c->o.output_layer_name, &want));
    else if (c->o.output_layer_set) {
        want = c->o.output_layer;
        CVIS_TRY(cvis__model_check_layer(c->model, &want));
    }
    int current = c->submodel ? c->submodel->out[0] : -1;
    if (want != current) {
        cvis__pass_free(c->pass);
        cvis__pass_free(c->aux);
        c->pass = c->aux = NULL;
        for (int k = 0; k < 16; k++) {
            cvis_tensor_free(c->seeds[k]);
            c->seeds[k] = NULL;
        }
        cvis_model_free(c->submodel);
        c->submodel = NULL;
        c->target = c->model;
        if (want >= 0) {
            CVIS_TRY(cvis_model_submodel(c->model, 1, &want, &c->submodel));
            c->target = c->submodel;
        }
    }
    return CVIS_OK;
}

cvis_status cvis__explain_prepare(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                                  const cvis_score *const *scores)
{
    CVIS_TRY(cvis__explain_target(c));
    int n_out = c->target->n_out;
    if (n_out > 16)
        return cvis__fail(CVIS_E_UNSUPPORTED, "models with more than 16 outputs");
    if (n_scores != n_out)
        return cvis__fail(CVIS_E_INVALID_ARG, "the model has %d output%s; give one score each, not %d",
                          n_out, n_out == 1 ? "" : "s", n_scores);
    if (!scores)
        return cvis__fail(CVIS_E_INVALID_ARG, "scores is NULL");
    int64_t B = x ? x->shape[0] : c->o.batch;
    for (int k = 0; k < n_scores; k++)
        CVIS_TRY(cvis__score_check(scores[k], B));
    return CVIS_OK;
}

cvis_status cvis__explain_pass(cvis__explain_ctx *c, cvis_pass **slot, int input_grad, int grad_layer)
{
    if (!*slot)
        CVIS_TRY(cvis__pass_new(c->target, slot));
    CVIS_TRY(cvis__pass_set(*slot, CVIS_PASS_LOGITS, c->o.logits));
    CVIS_TRY(cvis__pass_set(*slot, CVIS_PASS_INPUT_GRAD, input_grad));
    CVIS_TRY(cvis__pass_set(*slot, CVIS_PASS_GRAD_LAYER, grad_layer));
    /* a method that reads only the input's gradient lets every layer's
     * gradient go back as soon as backward has used it */
    cvis__pass_set_input_grads_only(*slot, input_grad && grad_layer < 0);
    return CVIS_OK;
}

cvis_status cvis__explain_cam_layer(cvis__explain_ctx *c, int *layer)
{
    const cvis_model *m = c->target;
    int l;
    if (c->o.layer_name) {
        CVIS_TRY(cvis_model_find_layer(m, c->o.layer_name, &l));
    } else {
        l = c->o.layer;
        CVIS_TRY(cvis__model_check_layer(m, &l));
        if (c->o.seek) {
            int start = l;
            while (l >= 0 && !cvis__model_layer(m, l)->conv_like)
                l--;
            if (l < 0)
                return cvis__fail(CVIS_E_LAYER_KIND,
                                  "no convolution-like layer at or before layer %d \"%s\"", start,
                                  cvis__model_layer(m, start)->name);
        }
    }
    const cvis__shape *s = cvis__model_layer_shape(m, l);
    if (s->ndim != 4)
        return cvis__fail(CVIS_E_LAYER_KIND,
                          "layer %d \"%s\" (%s) does not output (h, w, channels) maps", l,
                          cvis__model_layer(m, l)->name, cvis__model_layer(m, l)->type);
    /* the layer must feed the scored outputs */
    for (int k = 0; k < m->n_out; k++)
        if (m->out[k] >= l) {
            *layer = l;
            return CVIS_OK;
        }
    return cvis__fail(CVIS_E_LAYER_KIND, "layer %d \"%s\" comes after the scored output", l,
                      cvis__model_layer(m, l)->name);
}

cvis_status cvis__explain_rows(cvis__explain_ctx *c, cvis_pass *pass, const cvis_tensor *rows,
                               const int *image_of, int64_t n_images, int n_scores,
                               const cvis_score *const *scores, float *svals, int backward)
{
    CVIS_TRY(cvis__pass_forward(pass, rows));
    int64_t R = rows->shape[0];
    float tmp[256], *s = tmp;
    if (R > 256)
        CVIS_TRY(cvis__alloc((size_t)R * sizeof(float), "scores", (void **)&s));
    if (svals)
        memset(svals, 0, (size_t)R * sizeof(float));
    cvis_status st = CVIS_OK;
    for (int k = 0; k < n_scores && st == CVIS_OK; k++) {
        const cvis_tensor *o = cvis__pass_output(pass, k);
        cvis_tensor *seed = c->seeds[k];
        if (!seed || seed->size != o->size) {
            cvis_tensor_free(seed);
            c->seeds[k] = NULL;
            st = cvis__tensor_new(o->ndim, o->shape, 0, &c->seeds[k]);
            if (st != CVIS_OK)
                break;
            seed = c->seeds[k];
        }
        cvis__tensor_view(seed, seed->data, o->ndim, o->shape);
        seed->owns = 1;
        st = cvis__score_eval(scores[k], o, image_of, n_images, s, backward ? seed->data : NULL);
        if (st == CVIS_OK && svals)
            for (int64_t r = 0; r < R; r++)
                svals[r] += s[r];
    }
    if (s != tmp)
        cvis__free(s);
    CVIS_TRY(st);
    if (!backward)
        return CVIS_OK;
    return cvis__pass_backward(pass, n_scores, (const cvis_tensor *const *)c->seeds);
}

cvis_status cvis__explain_backward(cvis__explain_ctx *c, cvis_pass *pass, const cvis_tensor *x,
                                   int n_scores, const cvis_score *const *scores, float *svals)
{
    return cvis__explain_rows(c, pass, x, NULL, x->shape[0], n_scores, scores, svals, 1);
}

cvis_status cvis__explain_progress(cvis__explain_ctx *c, int64_t done, int64_t total,
                                   const char *what)
{
    if (c->o.progress && c->o.progress(c->o.progress_user, (int)done, (int)total, 0, NULL) != 0)
        return cvis__fail(CVIS_E_CANCELLED, "%s stopped by the progress callback", what);
    return CVIS_OK;
}

cvis_status cvis__info_row(cvis__explain_ctx *c, cvis_info key, int64_t B, double **row)
{
    if ((int)key < 0 || (int)key >= CVIS__N_INFO)
        return cvis__fail(CVIS_E_INTERNAL, "unknown info %d", (int)key);
    if (B > c->info_cap) {
        int64_t n;
        CVIS_TRY(cvis__mul_size(B, CVIS__N_INFO * (int64_t)sizeof(double), "run figures", &n));
        double *buf;
        CVIS_TRY(cvis__alloc((size_t)n, "run figures", (void **)&buf));
        cvis__free(c->info_buf);
        c->info_buf = buf;
        c->info_cap = B;
        cvis__info_clear(c);
    }
    if (c->info_n != B)
        cvis__info_clear(c);
    c->info_n = B;
    c->info_valid[key] = 1;
    *row = c->info_buf + (int64_t)key * c->info_cap;
    return CVIS_OK;
}

void cvis__info_clear(cvis__explain_ctx *c)
{
    for (int k = 0; k < CVIS__N_INFO; k++)
        c->info_valid[k] = 0;
}

void cvis__normalize(float *a, int64_t batch, int64_t per)
{
    for (int64_t b = 0; b < batch; b++) {
        float *v = a + b * per;
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < per; i++) {
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
        double scale = 1.0 / ((double)hi - lo + CVIS__EPS);
        for (int64_t i = 0; i < per; i++)
            v[i] = (float)(((double)v[i] - lo) * scale);
    }
}

/* Source coordinate and weight of output index o along an axis. */
static void aligned(int64_t o, int64_t n_in, int64_t n_out, int64_t *i0, int64_t *i1, double *f)
{
    double t = n_out > 1 ? (double)o * (double)(n_in - 1) / (double)(n_out - 1) : 0.0;
    int64_t lo = (int64_t)floor(t);
    if (lo > n_in - 1)
        lo = n_in - 1;
    if (lo < 0)
        lo = 0;
    *i0 = lo;
    *i1 = lo + 1 < n_in ? lo + 1 : n_in - 1;
    *f = t - (double)lo;
}

void cvis__resize_map(const float *src, int64_t h, int64_t w, float *dst, int64_t H, int64_t W)
{
    for (int64_t y = 0; y < H; y++) {
        int64_t y0, y1;
        double fy;
        aligned(y, h, H, &y0, &y1, &fy);
        for (int64_t x = 0; x < W; x++) {
            int64_t x0, x1;
            double fx;
            aligned(x, w, W, &x0, &x1, &fx);
            double top = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
            double bot = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
            dst[y * W + x] = (float)(top * (1 - fy) + bot * fy);
        }
    }
}

cvis_status cvis__finish_cam(cvis__explain_ctx *c, const float *cam, int64_t B, int64_t h,
                             int64_t w, int64_t H, int64_t W, float *out)
{
    if (c->o.expand) {
        for (int64_t b = 0; b < B; b++)
            cvis__resize_map(cam + b * h * w, h, w, out + b * H * W, H, W);
        if (c->o.normalize)
            cvis__normalize(out, B, H * W);
    } else {
        memcpy(out, cam, (size_t)(B * h * w) * sizeof(float));
        if (c->o.normalize)
            cvis__normalize(out, B, h * w);
    }
    return CVIS_OK;
}

cvis_status cvis__cam_output_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out)
{
    out->ndim = 3;
    out->d[0] = x->d[0];
    if (c->o.expand) {
        out->d[1] = x->d[1];
        out->d[2] = x->d[2];
        return CVIS_OK;
    }
    int l;
    CVIS_TRY(cvis__explain_cam_layer(c, &l));
    const cvis__shape *s = cvis__model_layer_shape(c->target, l);
    if (s->d[1] < 0 || s->d[2] < 0)
        return cvis__fail(CVIS_E_UNSUPPORTED,
                          "the layer's size depends on the input: run once to learn it");
    out->d[1] = s->d[1];
    out->d[2] = s->d[2];
    return CVIS_OK;
}

void cvis__cam_combine(const cvis_tensor *A, const double *w, float *cam)
{
    int64_t B = A->shape[0], hw = A->shape[1] * A->shape[2], K = A->shape[3];
    for (int64_t b = 0; b < B; b++) {
        const float *ab = A->data + b * hw * K;
        const double *wb = w + b * K;
        for (int64_t p = 0; p < hw; p++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += wb[k] * ab[p * K + k];
            cam[b * hw + p] = s > 0 ? (float)s : 0.0f;
        }
    }
}

void cvis__reduce_channels(const float *raw, int64_t n_pix, int64_t C, int reduce, float *out)
{
    for (int64_t p = 0; p < n_pix; p++) {
        const float *v = raw + p * C;
        if (reduce == CVIS_REDUCE_MAX_ABS) {
            float m = fabsf(v[0]);
            for (int64_t k = 1; k < C; k++)
                m = fabsf(v[k]) > m ? fabsf(v[k]) : m;
            out[p] = m;
        } else {
            double s = 0;
            for (int64_t k = 0; k < C; k++)
                s += v[k];
            out[p] = (float)(reduce == CVIS_REDUCE_ABS_SUM ? fabs(s) : s);
        }
    }
}

cvis_status cvis__input_output_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out)
{
    *out = *x;
    if (!c->o.keepdims)
        out->ndim = 3;
    return CVIS_OK;
}

cvis_status cvis__pixel_output_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out)
{
    *out = *x;
    out->ndim = 3;
    return CVIS_OK;
}
