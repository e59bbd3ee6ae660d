/* Selections along axes: strided slices (ONNX Slice, Split) and gathers
 * of listed indices along one axis (ONNX Gather).  Backward scatters the
 * gradient back into the selected positions. */
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "ops.h"

/* First index and count of a slice of an axis of size d. */
static void slice_axis(int64_t d, int64_t start, int64_t end, int64_t step, int64_t *first,
                       int64_t *count)
{
    if (start < 0)
        start = start < -d ? 0 : start + d;
    if (end < 0)
        end = end < -d ? -1 : end + d;
    /* counts written so that no huge step overflows */
    if (step > 0) {
        start = start > d ? d : start;
        end = end > d ? d : (end < 0 ? 0 : end);
        *count = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        start = start > d - 1 ? d - 1 : start;
        end = end > d - 1 ? d - 1 : end;
        *count = start > end ? (step == INT64_MIN ? 1 : (start - end - 1) / (-step) + 1) : 0;
    }
    *first = start;
}

static cvis_status slice_shape(const void *attr, int n_in, const cvis__shape *in,
                               cvis__shape *out)
{
    const cvis__slice_attr *a = attr;
    if (n_in != 1 || a->ndim != in[0].ndim)
        return cvis__fail(CVIS_E_SHAPE, "slice of %d axes applied to a rank-%d input", a->ndim,
                          in[0].ndim);
    out->ndim = a->ndim;
    for (int i = 0; i < a->ndim; i++) {
        if (a->step[i] == 0)
            return cvis__fail(CVIS_E_SHAPE, "slice with step 0");
        int64_t first;
        slice_axis(in[0].d[i], a->start[i], a->end[i], a->step[i], &first, &out->d[i]);
    }
    return CVIS_OK;
}

/* Input offsets of the output elements, walked in order. */
static void slice_walk(const cvis__slice_attr *a, const cvis_tensor *x, const cvis_tensor *y,
                       const float *from, float *to, int backward)
{
    int64_t st[CVIS_MAX_DIMS], s = 1, off = 0;
    for (int i = x->ndim - 1; i >= 0; i--) {
        int64_t first, count;
        slice_axis(x->shape[i], a->start[i], a->end[i], a->step[i], &first, &count);
        off += first * s;
        st[i] = count > 1 ? a->step[i] * s : 0; /* a step beyond the axis is never taken */
        s *= x->shape[i];
    }
    cvis__strided_gather(y, st, off, from, to, backward);
}

static cvis_status slice_forward(cvis__op_args *args)
{
    slice_walk(args->attr, args->in[0], args->out, args->in[0]->data, args->out->data, 0);
    return CVIS_OK;
}

static cvis_status slice_backward(cvis__op_args *args)
{
    if (args->din[0])
        slice_walk(args->attr, args->in[0], args->out, args->dout, args->din[0], 1);
    return CVIS_OK;
}

const cvis__op cvis__op_slice = {"slice", slice_shape, slice_forward, slice_backward, 0};

static cvis_status gather_shape(const void *attr, int n_in, const cvis__shape *in,
                                cvis__shape *out)
{
    const cvis__gather_attr *a = attr;
    if (n_in != 1 || a->axis < 0 || a->axis >= in[0].ndim)
        return cvis__fail(CVIS_E_SHAPE, "gather along axis %d of a rank-%d input", a->axis,
                          in[0].ndim);
    int64_t d = in[0].d[a->axis];
    for (int64_t k = 0; k < a->n; k++)
        if (a->idx[k] < -d || a->idx[k] >= d)
            return cvis__fail(CVIS_E_RANGE, "gather index %lld outside an axis of %lld",
                              (long long)a->idx[k], (long long)d);
    *out = in[0];
    out->d[a->axis] = a->n;
    return CVIS_OK;
}

static void gather_walk(const cvis__gather_attr *a, const cvis_tensor *x, const float *from,
                        float *to, int backward)
{
    int64_t outer = 1, inner = 1, d = x->shape[a->axis];
    for (int i = 0; i < a->axis; i++)
        outer *= x->shape[i];
    for (int i = a->axis + 1; i < x->ndim; i++)
        inner *= x->shape[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < a->n; k++) {
            int64_t j = a->idx[k] < 0 ? a->idx[k] + d : a->idx[k];
            const int64_t xo = (o * d + j) * inner, yo = (o * a->n + k) * inner;
            if (backward)
                for (int64_t i = 0; i < inner; i++)
                    to[xo + i] += from[yo + i];
            else
                memcpy(to + yo, from + xo, (size_t)inner * sizeof(float));
        }
}

static cvis_status gather_forward(cvis__op_args *args)
{
    gather_walk(args->attr, args->in[0], args->in[0]->data, args->out->data, 0);
    return CVIS_OK;
}

static cvis_status gather_backward(cvis__op_args *args)
{
    if (args->din[0])
        gather_walk(args->attr, args->in[0], args->dout, args->din[0], 1);
    return CVIS_OK;
}

const cvis__op cvis__op_gather = {"gather", gather_shape, gather_forward, gather_backward, 0};
