/* Dense (fully connected) layer on the last axis: y = act(x W + b). */
#include <string.h>

#include "error.h"
#include "gemm.h"
#include "ops.h"

static cvis_status dense_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    const cvis__dense_attr *a = attr;
    if (n_in != 1 || in[0].ndim < 2)
        return cvis__fail(CVIS_E_SHAPE, "dense expects an input of rank 2 or more");
    *out = in[0];
    out->d[out->ndim - 1] = a->units;
    return CVIS_OK;
}

static cvis_status dense_forward(cvis__op_args *args)
{
    const cvis__dense_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    int64_t in = x->shape[x->ndim - 1], rows = in ? x->size / in : 0;
    const cvis_tensor *w = args->params[0];
    if (w->ndim != 2 || w->shape[0] != in || w->shape[1] != a->units)
        return cvis__fail(CVIS_E_SHAPE, "dense kernel does not match an input of %lld features",
                          (long long)in);
    float *y = args->out->data;
    cvis__sgemm(CblasNoTrans, CblasNoTrans, (int)rows, a->units, (int)in, 1.0f,
                x->data, (int)in, w->data, a->units, 0.0f, y, a->units);
    if (a->has_bias) {
        const float *b = args->params[1]->data;
        for (int64_t r = 0; r < rows; r++)
            for (int u = 0; u < a->units; u++)
                y[r * a->units + u] += b[u];
    }
    if (!args->drop_act)
        cvis__act_apply(a->act, a->alpha, y, args->out->size, a->units);
    return CVIS_OK;
}

static cvis_status dense_backward(cvis__op_args *args)
{
    const cvis__dense_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    int64_t in = x->shape[x->ndim - 1], rows = in ? x->size / in : 0;
    int64_t n = args->out->size;
    float *dpre;
    CVIS_TRY(cvis__ws_get(args->ws, (size_t)n, &dpre));
    cvis__act_grad(args->drop_act ? CVIS_ACT_LINEAR : a->act, a->alpha, NULL, args->out->data,
                   args->dout, dpre, n, a->units, args->relu_mode, 0);
    if (args->dparams) {
        cvis__sgemm(CblasTrans, CblasNoTrans, (int)in, a->units, (int)rows, 1.0f,
                    x->data, (int)in, dpre, a->units, 1.0f, args->dparams[0], a->units);
        if (a->has_bias)
            for (int64_t r = 0; r < rows; r++)
                for (int u = 0; u < a->units; u++)
                    args->dparams[1][u] += dpre[r * a->units + u];
    }
    if (args->din[0])
        cvis__sgemm(CblasNoTrans, CblasTrans, (int)rows, (int)in, a->units, 1.0f,
                    dpre, a->units, args->params[0]->data, a->units, 1.0f, args->din[0], (int)in);
    return CVIS_OK;
}

const cvis__op cvis__op_dense = {"dense", dense_shape, dense_forward, dense_backward, 0};
