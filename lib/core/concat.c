/* Concatenation of several inputs along one axis. */
#include <string.h>

#include "error.h"
#include "ops.h"

static int norm_axis(int axis, int ndim)
{
    return axis < 0 ? axis + ndim : axis;
}

static cvis_status concat_shape(const void *attr, int n_in, const cvis__shape *in,
                                cvis__shape *out)
{
    const cvis__concat_attr *a = attr;
    if (n_in < 1)
        return cvis__fail(CVIS_E_SHAPE, "concat needs at least one input");
    int ax = norm_axis(a->axis, in[0].ndim);
    if (ax < 0 || ax >= in[0].ndim)
        return cvis__fail(CVIS_E_SHAPE, "concat axis %d outside a rank-%d input", a->axis,
                          in[0].ndim);
    *out = in[0];
    for (int k = 1; k < n_in; k++) {
        if (in[k].ndim != in[0].ndim)
            return cvis__fail(CVIS_E_SHAPE, "concat of inputs with different ranks");
        for (int i = 0; i < in[0].ndim; i++)
            if (i != ax && in[k].d[i] != in[0].d[i]) {
                char s0[96], sk[96];
                return cvis__fail(CVIS_E_SHAPE, "concat along axis %d of %s and %s", ax,
                                  cvis__shape_str(&in[0], s0, sizeof s0),
                                  cvis__shape_str(&in[k], sk, sizeof sk));
            }
        out->d[ax] += in[k].d[ax];
    }
    return CVIS_OK;
}

/* outer = product of axes before `ax`; inner(t) = product from `ax` on. */
static void split_axes(const cvis_tensor *t, int ax, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (i < ax)
            *outer *= t->shape[i];
        else
            *inner *= t->shape[i];
    }
}

static cvis_status concat_forward(cvis__op_args *args)
{
    const cvis__concat_attr *a = args->attr;
    int ax = norm_axis(a->axis, args->out->ndim);
    int64_t outer, out_inner;
    split_axes(args->out, ax, &outer, &out_inner);
    int64_t off = 0;
    for (int k = 0; k < args->n_in; k++) {
        int64_t o, inner;
        split_axes(args->in[k], ax, &o, &inner);
        for (int64_t r = 0; r < outer; r++)
            memcpy(args->out->data + r * out_inner + off, args->in[k]->data + r * inner,
                   (size_t)inner * sizeof(float));
        off += inner;
    }
    return CVIS_OK;
}

static cvis_status concat_backward(cvis__op_args *args)
{
    const cvis__concat_attr *a = args->attr;
    int ax = norm_axis(a->axis, args->out->ndim);
    int64_t outer, out_inner;
    split_axes(args->out, ax, &outer, &out_inner);
    int64_t off = 0;
    for (int k = 0; k < args->n_in; k++) {
        int64_t o, inner;
        split_axes(args->in[k], ax, &o, &inner);
        if (args->din[k])
            for (int64_t r = 0; r < outer; r++) {
                const float *src = args->dout + r * out_inner + off;
                float *dst = args->din[k] + r * inner;
                for (int64_t i = 0; i < inner; i++)
                    dst[i] += src[i];
            }
        off += inner;
    }
    return CVIS_OK;
}

const cvis__op cvis__op_concat = {"concat", concat_shape, concat_forward, concat_backward, 0};
