/* Reference images: Integrated Gradients' baselines and what deletion and
 * insertion put where pixels are removed.  Blur, uniform noise within the
 * image's range, each channel's mean, zero, or the caller's tensor. */
#include <math.h>
#include <string.h>

#include "attr.h"
#include "core/alloc.h"
#include "core/error.h"

/* Half-sample symmetric reflection: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ... */
static int64_t reflect(int64_t i, int64_t n)
{
    int64_t period = 2 * n;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - 1 - i;
}

void cvis__gaussian_blur(const float *img, int64_t H, int64_t W, int64_t C, double sigma,
                         float *out, float *tmp)
{
    int r = (int)ceil(3.0 * sigma);
    if (r > 1024)
        r = 1024; /* the kernel is flat over any image long before */
    double k[2 * 1024 + 1], total = 0;
    for (int i = -r; i <= r; i++) {
        k[i + r] = exp(-0.5 * (double)i * i / (sigma * sigma));
        total += k[i + r];
    }
    for (int i = 0; i <= 2 * r; i++)
        k[i] /= total;
    /* along the width into tmp, then along the height into out */
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++)
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int i = -r; i <= r; i++)
                    s += k[i + r] * img[(y * W + reflect(x + i, W)) * C + c];
                tmp[(y * W + x) * C + c] = (float)s;
            }
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++)
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int i = -r; i <= r; i++)
                    s += k[i + r] * tmp[(reflect(y + i, H) * W + x) * C + c];
                out[(y * W + x) * C + c] = (float)s;
            }
}

cvis_status cvis__make_baseline(int kind, const cvis_tensor *x, double sigma, const cvis_tensor *t,
                                cvis__rng *rng, float *out)
{
    int64_t B = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int64_t per = H * W * C;
    switch (kind) {
    case CVIS_BASELINE_ZERO:
        memset(out, 0, (size_t)x->size * sizeof(float));
        return CVIS_OK;
    case CVIS_BASELINE_BLUR: {
        if (!(sigma > 0) || !isfinite(sigma))
            return cvis__fail(CVIS_E_INVALID_ARG, "the blur's sigma must be positive, not %g", sigma);
        float *tmp;
        CVIS_TRY(cvis__alloc((size_t)per * sizeof(float), "blur", (void **)&tmp));
        for (int64_t b = 0; b < B; b++)
            cvis__gaussian_blur(x->data + b * per, H, W, C, sigma, out + b * per, tmp);
        cvis__free(tmp);
        return CVIS_OK;
    }
    case CVIS_BASELINE_UNIFORM:
        for (int64_t b = 0; b < B; b++) {
            const float *xb = x->data + b * per;
            float lo = xb[0], hi = xb[0];
            for (int64_t i = 1; i < per; i++) {
                lo = xb[i] < lo ? xb[i] : lo;
                hi = xb[i] > hi ? xb[i] : hi;
            }
            for (int64_t i = 0; i < per; i++)
                out[b * per + i] = (float)(lo + ((double)hi - lo) * cvis__rng_uniform(rng));
        }
        return CVIS_OK;
    case CVIS_BASELINE_MEAN:
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int64_t p = 0; p < H * W; p++)
                    s += x->data[b * per + p * C + c];
                float m = (float)(s / (double)(H * W));
                for (int64_t p = 0; p < H * W; p++)
                    out[b * per + p * C + c] = m;
            }
        return CVIS_OK;
    case CVIS_BASELINE_TENSOR: {
        if (!t)
            return cvis__fail(CVIS_E_STATE,
                              "the baseline is a tensor, but none was given (CVIS_OPT_BASELINE_TENSOR)");
        int same = t->ndim == 4 && (t->shape[0] == 1 || t->shape[0] == B) && t->shape[1] == H &&
                   t->shape[2] == W && t->shape[3] == C;
        if (!same) {
            char a[96], s2[96];
            cvis__shape ts = cvis__tensor_get_shape(t), xs = cvis__tensor_get_shape(x);
            return cvis__fail(CVIS_E_SHAPE, "the baseline tensor is %s; the input is %s (give one "
                                            "baseline for all images or one per image)",
                              cvis__shape_str(&ts, a, sizeof a), cvis__shape_str(&xs, s2, sizeof s2));
        }
        for (int64_t b = 0; b < B; b++)
            memcpy(out + b * per, t->data + (t->shape[0] == 1 ? 0 : b * per),
                   (size_t)per * sizeof(float));
        return CVIS_OK;
    }
    default:
        return cvis__fail(CVIS_E_INVALID_ARG, "unknown baseline %d", kind);
    }
}
