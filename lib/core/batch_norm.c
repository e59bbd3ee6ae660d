/* Inference batch normalization over the last axis:
 * y = (x - mean) / sqrt(var + eps) * gamma + beta. */
#include <math.h>

#include "error.h"
#include "ops.h"

static cvis_status bn_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    (void)attr;
    if (n_in != 1 || in[0].ndim < 1)
        return cvis__fail(CVIS_E_SHAPE, "batch norm expects one input with a channel axis");
    *out = in[0];
    return CVIS_OK;
}

static cvis_status bn_forward(cvis__op_args *a)
{
    const cvis__bn_attr *at = a->attr;
    const cvis_tensor *x = a->in[0];
    int64_t C = x->shape[x->ndim - 1], rows = C ? x->size / C : 0;
    const float *gamma = a->params[0]->data, *beta = a->params[1]->data;
    const float *mean = a->params[2]->data, *var = a->params[3]->data;
    float *y = a->out->data;
    for (int64_t c = 0; c < C; c++) {
        float s = gamma[c] / sqrtf(var[c] + at->eps), t = beta[c] - mean[c] * s;
        for (int64_t r = 0; r < rows; r++)
            y[r * C + c] = x->data[r * C + c] * s + t;
    }
    return CVIS_OK;
}

static cvis_status bn_backward(cvis__op_args *a)
{
    const cvis__bn_attr *at = a->attr;
    const cvis_tensor *x = a->in[0];
    int64_t C = x->shape[x->ndim - 1], rows = C ? x->size / C : 0;
    const float *gamma = a->params[0]->data;
    const float *mean = a->params[2]->data, *var = a->params[3]->data;
    for (int64_t c = 0; c < C; c++) {
        float inv = 1.0f / sqrtf(var[c] + at->eps), s = gamma[c] * inv;
        double dg = 0, dbeta = 0;
        for (int64_t r = 0; r < rows; r++) {
            float d = a->dout[r * C + c];
            if (a->din[0])
                a->din[0][r * C + c] += d * s;
            dg += (double)d * (x->data[r * C + c] - mean[c]) * inv;
            dbeta += d;
        }
        if (a->dparams) {
            a->dparams[0][c] += (float)dg;
            a->dparams[1][c] += (float)dbeta;
        }
    }
    return CVIS_OK;
}

const cvis__op cvis__op_batch_norm = {"batch_norm", bn_shape, bn_forward, bn_backward, 0};
