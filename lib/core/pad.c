/* Constant padding on any axes (zero padding of images is the common case). */
#include <string.h>

#include "error.h"
#include "ops.h"

static cvis_status pad_shape(const void *attr, int n_in, const cvis__shape *in, cvis__shape *out)
{
    const cvis__pad_attr *a = attr;
    if (n_in != 1)
        return cvis__fail(CVIS_E_INTERNAL, "pad takes one input");
    *out = in[0];
    for (int i = 0; i < in[0].ndim; i++) {
        if (a->before[i] < 0 || a->after[i] < 0)
            return cvis__fail(CVIS_E_UNSUPPORTED, "negative padding (cropping)");
        out->d[i] += a->before[i] + a->after[i];
    }
    return CVIS_OK;
}

/* Offset in the output of input element i (row-major). */
static int64_t out_offset(const cvis_tensor *x, const cvis_tensor *y, const cvis__pad_attr *a,
                          int64_t i)
{
    int64_t off = 0, stride = 1;
    for (int ax = x->ndim - 1; ax >= 0; ax--) {
        int64_t c = i % x->shape[ax];
        i /= x->shape[ax];
        off += (c + a->before[ax]) * stride;
        stride *= y->shape[ax];
    }
    return off;
}

static cvis_status pad_forward(cvis__op_args *args)
{
    const cvis__pad_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    cvis_tensor *y = args->out;
    for (int64_t i = 0; i < y->size; i++)
        y->data[i] = a->value;
    int last = x->ndim - 1;
    int64_t run = last >= 0 ? x->shape[last] : 1;
    if (x->size == 0)
        return CVIS_OK;
    for (int64_t i = 0; i < x->size; i += run)
        memcpy(y->data + out_offset(x, y, a, i), x->data + i, (size_t)run * sizeof(float));
    return CVIS_OK;
}

static cvis_status pad_backward(cvis__op_args *args)
{
    const cvis__pad_attr *a = args->attr;
    const cvis_tensor *x = args->in[0];
    if (!args->din[0] || x->size == 0)
        return CVIS_OK;
    int last = x->ndim - 1;
    int64_t run = last >= 0 ? x->shape[last] : 1;
    for (int64_t i = 0; i < x->size; i += run) {
        const float *src = args->dout + out_offset(x, args->out, a, i);
        for (int64_t j = 0; j < run; j++)
            args->din[0][i + j] += src[j];
    }
    return CVIS_OK;
}

const cvis__op cvis__op_pad = {"pad", pad_shape, pad_forward, pad_backward, 0};
