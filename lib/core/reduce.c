/* Mean, sum or max over a set of axes, keeping them as size 1 or dropping
 * them.  The max passes its gradient to the first maximum in scan order,
 * as max pooling does. */
#include <float.h>
#include <string.h>

#include "error.h"
#include "ops.h"

static cvis_status reduce_shape(const void *attr, int n_in, const cvis__shape *in,
                                cvis__shape *out)
{
    const cvis__reduce_attr *a = attr;
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "reduce takes one input");
    if (a->axes >> in[0].ndim)
        return cvis__fail(CVIS_E_SHAPE, "reduce over an axis outside a rank-%d input",
                          in[0].ndim);
    out->ndim = 0;
    for (int i = 0; i < in[0].ndim; i++) {
        if (a->axes & (1u << i)) {
            if (a->kind == CVIS__REDUCE_MAX && in[0].d[i] == 0)
                return cvis__fail(CVIS_E_SHAPE, "max over an empty axis");
            if (a->keepdims)
                out->d[out->ndim++] = 1;
        } else {
            out->d[out->ndim++] = in[0].d[i];
        }
    }
    return CVIS_OK;
}

/* Output strides seen from the input: 0 on reduced axes. */
static void reduced_strides(const cvis__reduce_attr *a, const cvis_tensor *x, int64_t *st,
                            int64_t *group)
{
    int64_t s = 1;
    *group = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        if (a->axes & (1u << i)) {
            st[i] = 0;
            *group *= x->shape[i];
        } else {
            st[i] = s;
            s *= x->shape[i];
        }
    }
}

#define FOR_EACH_INPUT(x, st, BODY)                                             \
    do {                                                                        \
        int64_t idx_[CVIS_MAX_DIMS] = {0}, o = 0;                               \
        for (int64_t i = 0; i < (x)->size; i++) {                               \
            BODY;                                                               \
            for (int ax = (x)->ndim - 1; ax >= 0; ax--) {                       \
                idx_[ax]++;                                                     \
                o += st[ax];                                                    \
                if (idx_[ax] < (x)->shape[ax])                                  \
                    break;                                                      \
                o -= st[ax] * idx_[ax];                                         \
                idx_[ax] = 0;                                                   \
            }                                                                   \
        }                                                                       \
    } while (0)

static cvis_status reduce_forward(cvis__op_args *args)
{
    const cvis__reduce_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    float *y = args->out->data;
    int64_t st[CVIS_MAX_DIMS], group;
    reduced_strides(a, x, st, &group);
    int64_t n = args->out->size;
    if (a->kind == CVIS__REDUCE_MAX) {
        for (int64_t i = 0; i < n; i++)
            y[i] = -FLT_MAX;
        FOR_EACH_INPUT(x, st, if (x->data[i] > y[o]) y[o] = x->data[i]);
        return CVIS_OK;
    }
    /* sums in double: reductions over whole feature maps are long */
    double *acc;
    CVIS_TRY(cvis__ws_get(args->ws, (size_t)(2 * n), (float **)&acc));
    memset(acc, 0, (size_t)n * sizeof(double));
    FOR_EACH_INPUT(x, st, acc[o] += x->data[i]);
    double scale = a->kind == CVIS__REDUCE_MEAN ? (group ? 1.0 / (double)group : 0.0) : 1.0;
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)(acc[i] * scale);
    return CVIS_OK;
}

static cvis_status reduce_backward(cvis__op_args *args)
{
    const cvis__reduce_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    float *dx = args->din[0];
    if (!dx)
        return CVIS_OK;
    int64_t st[CVIS_MAX_DIMS], group;
    reduced_strides(a, x, st, &group);
    const float *dy = args->dout, *y = args->out->data;
    if (a->kind == CVIS__REDUCE_MAX) {
        float *taken;
        CVIS_TRY(cvis__ws_get(args->ws, (size_t)args->out->size, &taken));
        memset(taken, 0, (size_t)args->out->size * sizeof(float));
        FOR_EACH_INPUT(x, st, {
            if (!taken[o] && x->data[i] == y[o]) {
                dx[i] += dy[o];
                taken[o] = 1;
            }
        });
        return CVIS_OK;
    }
    float scale = a->kind == CVIS__REDUCE_MEAN ? (group ? 1.0f / (float)group : 0.0f) : 1.0f;
    FOR_EACH_INPUT(x, st, dx[i] += dy[o] * scale);
    return CVIS_OK;
}

const cvis__op cvis__op_reduce = {"reduce", reduce_shape, reduce_forward, reduce_backward, 0};
