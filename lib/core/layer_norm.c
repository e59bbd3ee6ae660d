/* Layer normalization over the trailing axes, with a scale and an
 * optional shift of the normalized axes' shape. */
#include <math.h>

#include "error.h"
#include "ops.h"

static cvis_status ln_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    const cvis__layer_norm_attr *a = attr;
    if (n_in != 1 || a->n_axes < 1 || a->n_axes > in[0].ndim)
        return cvis__fail(CVIS_E_SHAPE, "layer norm over %d axes of a rank-%d input", a->n_axes,
                          in[0].ndim);
    *out = in[0];
    return CVIS_OK;
}

static int64_t group_size(const cvis__layer_norm_attr *a, const cvis_tensor *x)
{
    int64_t n = 1;
    for (int i = x->ndim - a->n_axes; i < x->ndim; i++)
        n *= x->shape[i];
    return n;
}

static cvis_status check_params(const cvis__op_args *args, int64_t n)
{
    const cvis__layer_norm_attr *a = args->attr;
    if (args->n_params != 1 + (a->has_beta ? 1 : 0) || args->params[0]->size != n ||
        (a->has_beta && args->params[1]->size != n))
        return cvis__fail(CVIS_E_SHAPE, "layer norm weights do not match %lld normalized values",
                          (long long)n);
    return CVIS_OK;
}

static cvis_status ln_forward(cvis__op_args *args)
{
    const cvis__layer_norm_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    int64_t n = group_size(a, x), rows = n ? x->size / n : 0;
    CVIS_TRY(check_params(args, n));
    const float *gamma = args->params[0]->data, *beta = a->has_beta ? args->params[1]->data : NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *v = x->data + r * n;
        float *y = args->out->data + r * n;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++)
            mean += v[i];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++)
            var += (v[i] - mean) * (v[i] - mean);
        var /= (double)n;
        double inv = 1.0 / sqrt(var + a->eps);
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)((v[i] - mean) * inv) * gamma[i] + (beta ? beta[i] : 0.0f);
    }
    return CVIS_OK;
}

static cvis_status ln_backward(cvis__op_args *args)
{
    const cvis__layer_norm_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    int64_t n = group_size(a, x), rows = n ? x->size / n : 0;
    CVIS_TRY(check_params(args, n));
    const float *gamma = args->params[0]->data;
    float *dx = args->din[0];
    float *dgamma = args->dparams ? args->dparams[0] : NULL;
    float *dbeta = args->dparams && a->has_beta ? args->dparams[1] : NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *v = x->data + r * n, *dy = args->dout + r * n;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++)
            mean += v[i];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++)
            var += (v[i] - mean) * (v[i] - mean);
        var /= (double)n;
        double inv = 1.0 / sqrt(var + a->eps);
        /* dx = inv * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma */
        double mg = 0, mgx = 0;
        for (int64_t i = 0; i < n; i++) {
            double xh = (v[i] - mean) * inv, g = (double)dy[i] * gamma[i];
            mg += g;
            mgx += g * xh;
            if (dgamma)
                dgamma[i] += (float)(dy[i] * xh);
            if (dbeta)
                dbeta[i] += dy[i];
        }
        mg /= (double)n;
        mgx /= (double)n;
        if (dx)
            for (int64_t i = 0; i < n; i++) {
                double xh = (v[i] - mean) * inv, g = (double)dy[i] * gamma[i];
                dx[r * n + i] += (float)(inv * (g - mg - xh * mgx));
            }
    }
    return CVIS_OK;
}

const cvis__op cvis__op_layer_norm = {"layer_norm", ln_shape, ln_forward, ln_backward, 0};
