/* Transpose: any permutation of the axes.  Output axis i is input axis
 * perm[i]; the gradient is the inverse permutation. */
#include <string.h>

#include "error.h"
#include "ops.h"

static cvis_status transpose_shape(const void *attr, int n_in, const cvis__shape *in,
                                   cvis__shape *out)
{
    const cvis__transpose_attr *a = attr;
    if (n_in != 1 || a->ndim != in[0].ndim)
        return cvis__fail(CVIS_E_SHAPE, "transpose of %d axes applied to a rank-%d input",
                          a->ndim, in[0].ndim);
    unsigned seen = 0;
    out->ndim = a->ndim;
    for (int i = 0; i < a->ndim; i++) {
        int p = a->perm[i];
        if (p < 0 || p >= a->ndim || (seen & (1u << p)))
            return cvis__fail(CVIS_E_SHAPE, "transpose: invalid permutation");
        seen |= 1u << p;
        out->d[i] = in[0].d[p];
    }
    return CVIS_OK;
}

/* Walks the output in order; the input offset advances by the input stride
 * of the axis that each output axis takes. */
static void permute(const cvis__transpose_attr *a, const cvis_tensor *x, const cvis_tensor *y,
                    const float *from, float *to, int backward)
{
    int64_t in_stride[CVIS_MAX_DIMS], st[CVIS_MAX_DIMS];
    int64_t s = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        in_stride[i] = s;
        s *= x->shape[i];
    }
    for (int i = 0; i < a->ndim; i++)
        st[i] = in_stride[a->perm[i]];
    cvis__strided_gather(y, st, 0, from, to, backward);
}

static cvis_status transpose_forward(cvis__op_args *args)
{
    permute(args->attr, args->in[0], args->out, args->in[0]->data, args->out->data, 0);
    return CVIS_OK;
}

static cvis_status transpose_backward(cvis__op_args *args)
{
    if (args->din[0])
        permute(args->attr, args->in[0], args->out, args->dout, args->din[0], 1);
    return CVIS_OK;
}

const cvis__op cvis__op_transpose = {"transpose", transpose_shape, transpose_forward,
                                     transpose_backward, 0};
