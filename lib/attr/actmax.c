/* Activation maximization: an input V is optimized so that the score rises.
 * Each step: input modifiers act on V (they persist: jitter is a random
 * walk); the loss L = -sum_b s_b(V) + TotalVariation2D(V) + Norm(V) is
 * differentiated; the optimizer steps V.  The result is V clipped to the
 * input range.  All randomness comes from one generator seeded per call. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/optimizer.h"
#include "model/pass.h"

static int64_t reflect_index(int64_t i, int64_t n)
{
    /* half-sample symmetric: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ... */
    int64_t period = 2 * n;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - 1 - i;
}

/* np.roll over height and width: out[y][x] = in[y - dy][x - dx]. */
static void jitter(float *v, float *tmp, int64_t B, int64_t H, int64_t W, int64_t C, int64_t dy,
                   int64_t dx)
{
    int64_t per = H * W * C;
    for (int64_t b = 0; b < B; b++) {
        float *img = v + b * per;
        for (int64_t y = 0; y < H; y++) {
            int64_t sy = ((y - dy) % H + H) % H;
            for (int64_t x = 0; x < W; x++) {
                int64_t sx = ((x - dx) % W + W) % W;
                memcpy(tmp + (y * W + x) * C, img + (sy * W + sx) * C, (size_t)C * sizeof(float));
            }
        }
        memcpy(img, tmp, (size_t)per * sizeof(float));
    }
}

/* Bilinear sample of channel c at (sy, sx) with reflected edges. */
static float sample(const float *img, int64_t H, int64_t W, int64_t C, int64_t c, double sy,
                    double sx)
{
    double fy0 = floor(sy), fx0 = floor(sx);
    double fy = sy - fy0, fx = sx - fx0;
    int64_t y0 = reflect_index((int64_t)fy0, H), y1 = reflect_index((int64_t)fy0 + 1, H);
    int64_t x0 = reflect_index((int64_t)fx0, W), x1 = reflect_index((int64_t)fx0 + 1, W);
    double top = img[(y0 * W + x0) * C + c] * (1 - fx) + img[(y0 * W + x1) * C + c] * fx;
    double bot = img[(y1 * W + x0) * C + c] * (1 - fx) + img[(y1 * W + x1) * C + c] * fx;
    return (float)(top * (1 - fy) + bot * fy);
}

/* Rotation by `deg` degrees about the centre, same size, reflected edges. */
static void rotate(float *v, float *tmp, int64_t B, int64_t H, int64_t W, int64_t C, double deg)
{
    double t = deg * M_PI / 180.0, cs = cos(t), sn = sin(t);
    double cy = (H - 1) / 2.0, cx = (W - 1) / 2.0;
    int64_t per = H * W * C;
    for (int64_t b = 0; b < B; b++) {
        float *img = v + b * per;
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                double sy = cs * (y - cy) - sn * (x - cx) + cy;
                double sx = sn * (y - cy) + cs * (x - cx) + cx;
                for (int64_t c = 0; c < C; c++)
                    tmp[(y * W + x) * C + c] = sample(img, H, W, C, c, sy, sx);
            }
        memcpy(img, tmp, (size_t)per * sizeof(float));
    }
}

/* Zoom by f about the centre, back to the same size: a centre crop of the
 * enlarged image, or the reduced image centred on its per-channel mean. */
static void scale(float *v, float *tmp, int64_t B, int64_t H, int64_t W, int64_t C, double f)
{
    int64_t per = H * W * C;
    int64_t nh = (int64_t)llround(H * f), nw = (int64_t)llround(W * f);
    if (nh < 1)
        nh = 1;
    if (nw < 1)
        nw = 1;
    int64_t oy = (nh - H) / 2, ox = (nw - W) / 2; /* crop offset, or minus the pad */
    for (int64_t b = 0; b < B; b++) {
        float *img = v + b * per;
        double mean[16] = {0};
        for (int64_t p = 0; p < H * W; p++)
            for (int64_t c = 0; c < C && c < 16; c++)
                mean[c] += img[p * C + c];
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                int64_t zy = y + oy, zx = x + ox; /* pixel of the zoomed image */
                for (int64_t c = 0; c < C; c++) {
                    float val;
                    if (zy < 0 || zy >= nh || zx < 0 || zx >= nw) {
                        val = c < 16 ? (float)(mean[c] / (double)(H * W)) : 0.0f;
                    } else {
                        double sy = nh > 1 ? (double)zy * (H - 1) / (double)(nh - 1) : 0;
                        double sx = nw > 1 ? (double)zx * (W - 1) / (double)(nw - 1) : 0;
                        val = sample(img, H, W, C, c, sy, sx);
                    }
                    tmp[(y * W + x) * C + c] = val;
                }
            }
        memcpy(img, tmp, (size_t)per * sizeof(float));
    }
}

/* w * TV / (H*W*C) per image, summed, with its gradient added to g. */
static double total_variation(const float *v, float *g, int64_t B, int64_t H, int64_t W, int64_t C,
                              double w)
{
    int64_t per = H * W * C;
    double k = w / (double)per, total = 0;
    for (int64_t b = 0; b < B; b++) {
        const float *img = v + b * per;
        float *gi = g + b * per;
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++)
                for (int64_t c = 0; c < C; c++) {
                    int64_t i = (y * W + x) * C + c;
                    if (y + 1 < H) {
                        double d = img[i + W * C] - img[i];
                        total += k * fabs(d);
                        float s = (float)(k * (d > 0 ? 1 : d < 0 ? -1 : 0));
                        gi[i + W * C] += s;
                        gi[i] -= s;
                    }
                    if (x + 1 < W) {
                        double d = img[i + C] - img[i];
                        total += k * fabs(d);
                        float s = (float)(k * (d > 0 ? 1 : d < 0 ? -1 : 0));
                        gi[i + C] += s;
                        gi[i] -= s;
                    }
                }
    }
    return total;
}

/* w * ||x||_p / N^(1/p) per image, summed, with its gradient added to g. */
static double norm_p(const float *v, float *g, int64_t B, int64_t per, double w, double p)
{
    double total = 0, scale = w / pow((double)per, 1.0 / p);
    for (int64_t b = 0; b < B; b++) {
        const float *img = v + b * per;
        float *gi = g + b * per;
        double sum = 0;
        for (int64_t i = 0; i < per; i++)
            sum += pow(fabs(img[i]), p);
        double norm = pow(sum, 1.0 / p);
        total += scale * norm;
        if (norm == 0)
            continue; /* d|x|/dx at 0 is 0 */
        double k = scale * pow(norm, 1.0 - p);
        for (int64_t i = 0; i < per; i++) {
            double a = fabs(img[i]);
            if (a > 0)
                gi[i] += (float)(k * pow(a, p - 1) * (img[i] > 0 ? 1 : -1));
        }
    }
    return total;
}

static cvis_status actmax_shape(cvis__explain_ctx *c, const cvis__shape *x, cvis__shape *out)
{
    *out = *x;
    return CVIS_OK;
}

static cvis_status check_options(const cvis__explain_opts *o)
{
    if (o->steps < 1)
        return cvis__fail(CVIS_E_INVALID_ARG, "steps must be positive");
    if (!(o->input_max > o->input_min))
        return cvis__fail(CVIS_E_INVALID_ARG, "the input range must have max > min");
    if (o->jitter < 0 || o->rotate < 0 || o->tv_weight < 0 || o->norm_weight < 0)
        return cvis__fail(CVIS_E_INVALID_ARG, "jitter, rotation and regularizer weights must not be negative");
    if (!(o->norm_p >= 1))
        return cvis__fail(CVIS_E_INVALID_ARG, "the norm's p must be at least 1");
    if (!(o->scale_min > 0) || o->scale_max < o->scale_min)
        return cvis__fail(CVIS_E_INVALID_ARG, "the scale range must be positive with max >= min");
    return CVIS_OK;
}

static cvis_status actmax_run(cvis__explain_ctx *c, const cvis_tensor *x, int n_scores,
                              const cvis_score *const *scores, float *out)
{
    const cvis__explain_opts *o = &c->o;
    CVIS_TRY(check_options(o));
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t n = x->size, per = n / B;
    if ((o->jitter && (o->jitter > H || o->jitter > W)))
        return cvis__fail(CVIS_E_INVALID_ARG, "jitter of %d pixels on a %lldx%lld input", o->jitter,
                          (long long)H, (long long)W);
    cvis_optimizer *opt;
    CVIS_TRY(cvis__optimizer_new(o->optimizer, o->learning_rate, &opt));
    cvis_status st = CVIS_OK;
    if (o->optimizer == CVIS_OPTIMIZER_ADAM) {
        st = cvis__optimizer_set(opt, CVIS_OPTIM_BETA_1, o->beta1);
        if (st == CVIS_OK)
            st = cvis__optimizer_set(opt, CVIS_OPTIM_BETA_2, o->beta2);
    } else if (o->optimizer == CVIS_OPTIMIZER_RMSPROP) {
        st = cvis__optimizer_set(opt, CVIS_OPTIM_RHO, o->beta2);
    }
    float *v = NULL, *grad = NULL, *tmp = NULL, *values = NULL;
    if (st == CVIS_OK)
        st = cvis__alloc((size_t)(3 * n + B + 2) * sizeof(float), "activation maximization",
                         (void **)&v);
    if (st != CVIS_OK) {
        cvis__optimizer_free(opt);
        return st;
    }
    grad = v + n;
    tmp = grad + n;
    values = tmp + n;
    memcpy(v, x->data, (size_t)n * sizeof(float));
    /* the explainer drew the random start from the seed; the modifiers use
     * a second stream so that a given seed image changes nothing else */
    cvis__rng rng;
    cvis__rng_seed(&rng, o->seed ^ 0x5A17A5E5ULL);
    st = cvis__explain_pass(c, &c->pass, 1, -1);
    cvis_tensor vt;
    cvis__tensor_view(&vt, v, 4, x->shape);
    for (int step = 0; st == CVIS_OK && step < o->steps; step++) {
        if (o->jitter > 0) {
            int64_t dy = cvis__rng_int(&rng, -o->jitter, o->jitter - 1);
            int64_t dx = cvis__rng_int(&rng, -o->jitter, o->jitter - 1);
            jitter(v, tmp, B, H, W, C, dy, dx);
        }
        if (o->rotate > 0)
            rotate(v, tmp, B, H, W, C, (2 * cvis__rng_uniform(&rng) - 1) * o->rotate);
        if (o->scale_min != 1 || o->scale_max != 1)
            scale(v, tmp, B, H, W, C,
                  o->scale_min + (o->scale_max - o->scale_min) * cvis__rng_uniform(&rng));
        st = cvis__explain_backward(c, c->pass, &vt, n_scores, scores, values);
        if (st != CVIS_OK)
            break;
        const float *g = cvis__pass_input_grad(c->pass)->data;
        for (int64_t i = 0; i < n; i++)
            grad[i] = -g[i];
        values[B] = o->tv_weight > 0 ? (float)total_variation(v, grad, B, H, W, C, o->tv_weight) : 0;
        values[B + 1] = o->norm_weight > 0 ? (float)norm_p(v, grad, B, per, o->norm_weight, o->norm_p)
                                           : 0;
        st = cvis__optimizer_step(opt, 0, v, grad, n);
        if (st == CVIS_OK && o->progress &&
            o->progress(o->progress_user, step + 1, o->steps, (int)B + 2, values) != 0)
            st = cvis__fail(CVIS_E_CANCELLED, "activation maximization stopped by the progress "
                                              "callback at step %d", step + 1);
    }
    if (st == CVIS_OK)
        for (int64_t i = 0; i < n; i++) {
            float val = v[i];
            out[i] = val < o->input_min ? (float)o->input_min
                                        : val > o->input_max ? (float)o->input_max : val;
        }
    cvis__free(v);
    cvis__optimizer_free(opt);
    return st;
}

const cvis__method cvis__method_actmax = {"activation_maximization", actmax_shape, actmax_run, NULL, 0};
